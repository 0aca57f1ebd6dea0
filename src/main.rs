//! `fedq`: one binary, many subcommands. This file parses arguments, builds the one tokio
//! runtime a command needs, and dispatches; each subcommand's arguments and output live in
//! [`cli`], and its work in the crate that owns it.

use std::future::Future;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;

#[derive(Debug, Parser)]
#[command(
    name = "fedq",
    version,
    about = "Answer cross-department questions about a person without pooling records",
    long_about = None
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The federation's private PKI: CA, certificates, revocation.
    Certs {
        #[command(subcommand)]
        cmd: cli::certs::CertsCommand,
    },
    /// Security officers' tools: check, test, diff, explain, who-can; bundle, sign,
    /// publish and status for signed policy changes.
    Policy {
        #[command(subcommand)]
        cmd: PolicyCli,
    },
    /// A department node: serve lookups, import data, record objections' resolutions and
    /// credit repairs on officers' signed decisions.
    Node {
        #[command(subcommand)]
        cmd: cli::node::NodeCommand,
    },
    /// The coordinator: the requester API, fan-out and merge.
    Coordinator {
        #[command(subcommand)]
        cmd: cli::coordinator::CoordinatorCommand,
    },
    /// Ask the coordinator one authorized question about one person.
    Query(Box<cli::coordinator::QueryCli>),
    /// Ask the coordinator for counts (an aggregate-only purpose): by dataset, district,
    /// year and category, each department's noisy and with small cells suppressed.
    Statistics(Box<cli::statistics::StatisticsCli>),
    /// A requesting agency's gateway: its apps ask through it; it proves, seals, opens and
    /// keeps its own log.
    Gateway {
        #[command(subcommand)]
        cmd: cli::gateway::GatewayCommand,
    },
    /// Officers' signed decisions on persons' objections and credit-repair applications.
    Decision {
        #[command(subcommand)]
        cmd: cli::decision::DecisionCommand,
    },
    /// Complaints about a query or a leak: file one and follow it (requesters); read the
    /// queue and change a complaint's status with a signed statement (officers).
    Complaint {
        #[command(subcommand)]
        cmd: cli::complaint::ComplaintCommand,
    },
    /// Public disclosure: each department's signed part, one dated publication merged from
    /// them (JSON, CSV, a static HTML page), and its check.
    Disclose {
        #[command(subcommand)]
        cmd: cli::disclose::DiscloseCommand,
    },
    /// The consent authority's tokens: issue one, or show what one says.
    Consent {
        #[command(subcommand)]
        cmd: cli::consent::ConsentCommand,
    },
    /// Review and verify a node's or the coordinator's audit log.
    Audit {
        #[command(subcommand)]
        cmd: cli::audit::AuditCommand,
    },
    /// Write synthetic Changsha data (CSV or JSON Lines) per department.
    GenData(cli::synth::GenDataArgs),
    /// Measure import, lookup, audit and end-to-end fan-out on this host; writes a report.
    Bench(cli::bench::BenchCli),
    /// Build a throwaway federation on 127.0.0.1 and tour what fedq is for.
    Demo(cli::demo::DemoCli),
    /// The security officers' console: policy editing, what changes, approval, audit and
    /// citizens' filings in the browser, on this machine only (127.0.0.1), with your
    /// officer key kept on disk.
    Console(Box<cli::console::ConsoleCli>),
}

#[derive(Debug, Subcommand)]
enum PolicyCli {
    #[command(flatten)]
    Officer(cli::policy::PolicyCommand),
    /// Put a checked policy into a bundle for officers to sign.
    Bundle(cli::bundle::BundleArgs),
    /// Show what a bundle changes against the version in force, confirm, and sign it.
    Sign(cli::bundle::SignArgs),
    /// Hand a signed bundle to the coordinator, which verifies it and sends it to every node.
    Publish(cli::coordinator::PublishCli),
    /// Which policy version the coordinator and each node run, and what failed to apply.
    Status(cli::coordinator::ApiCli),
}

/// The runtime a command runs in: one per process, built here and nowhere else.
#[derive(Debug, Clone, Copy)]
enum Flavor {
    /// One thread: a node (its work per request is a short lookup and an audit hand-off to
    /// the writer thread; cross-thread hand-offs cost more than they save there — fan-out-6
    /// p50 1.90 → 1.58 ms in `fedq bench`), and the one-shot clients.
    CurrentThread,
    /// A worker per core: the coordinator and the gateway.
    MultiThread,
}

/// Runs `work` to completion on a new runtime of `flavor`.
fn block_on<T>(flavor: Flavor, work: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    let runtime = match flavor {
        Flavor::CurrentThread => tokio::runtime::Builder::new_current_thread(),
        Flavor::MultiThread => tokio::runtime::Builder::new_multi_thread(),
    }
    .enable_all()
    .build()
    .map_err(cli::message)?;
    runtime.block_on(work)
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    use Flavor::{CurrentThread, MultiThread};
    let shutdown = fedq_ops::shutdown_signal;
    match command {
        Command::Certs { cmd } => cli::certs::run(cmd)?,
        Command::Policy { cmd } => match cmd {
            PolicyCli::Officer(cmd) => return cli::policy::run(cmd).map_err(cli::message),
            PolicyCli::Bundle(args) => cli::bundle::bundle(args)?,
            PolicyCli::Sign(args) => cli::bundle::sign(args)?,
            PolicyCli::Publish(args) => block_on(CurrentThread, async {
                Ok(cli::coordinator::publish(args).await?)
            })?,
            PolicyCli::Status(args) => block_on(CurrentThread, async {
                Ok(cli::coordinator::status(args).await?)
            })?,
        },
        Command::Node { cmd } => block_on(CurrentThread, cli::node::run(cmd, shutdown()))?,
        Command::Coordinator { cmd } => match cmd {
            cli::coordinator::CoordinatorCommand::Openapi => cli::coordinator::openapi(),
            cli::coordinator::CoordinatorCommand::Serve { config } => {
                let config = fedq_coordinator::config::CoordinatorConfig::load(&config)?;
                block_on(MultiThread, cli::coordinator::serve(config, shutdown()))?
            }
        },
        Command::Query(args) => block_on(CurrentThread, async {
            Ok(cli::coordinator::query(*args).await?)
        })?,
        Command::Statistics(args) => block_on(CurrentThread, async {
            Ok(cli::statistics::run(*args).await?)
        })?,
        Command::Gateway { cmd } => match cmd {
            cli::gateway::GatewayCommand::Serve { config } => {
                let config = fedq_coordinator::gateway::GatewayConfig::load(&config)?;
                block_on(MultiThread, async {
                    Ok(cli::gateway::serve(config, shutdown()).await?)
                })?
            }
            cmd => cli::gateway::set_up(cmd)?,
        },
        Command::Complaint { cmd } => block_on(CurrentThread, cli::complaint::run(cmd))?,
        Command::Consent { cmd } => cli::consent::run(cmd)?,
        Command::Disclose { cmd } => block_on(CurrentThread, cli::disclose::run(cmd))?,
        Command::Decision { cmd } => cli::decision::run(cmd)?,
        Command::Audit { cmd } => return Ok(cli::audit::run(cmd)?),
        Command::GenData(args) => cli::synth::run(args)?,
        Command::Bench(args) => block_on(MultiThread, async {
            Ok(fedq_bench::run(args.into()).await?)
        })?,
        Command::Console(args) => block_on(MultiThread, async {
            Ok(fedq_console::run((*args).into(), shutdown()).await?)
        })?,
        Command::Demo(args) => {
            return block_on(MultiThread, async {
                Ok(fedq_demo::run(args.into(), shutdown()).await?)
            })
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `err` followed by its chain of sources, as `{err:#}` prints it (`message: cause:
/// cause`), up to the first source whose message (whitespace aside) the line already
/// holds: many errors name the error behind them in their own message and keep it as
/// their source too, and what they say of it is said once.
fn with_causes(err: &anyhow::Error) -> String {
    let words = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut line = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if words(&line).contains(&words(&cause)) {
            break;
        }
        line.push_str(": ");
        line.push_str(&cause);
    }
    line
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // ring is the only crypto provider; installing it once makes that explicit for every
    // TLS configuration built without naming one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FEDQ_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli.command) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", with_causes(&err));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::with_causes;

    #[test]
    fn a_cause_is_said_once() {
        let gone = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let named = anyhow::Error::new(fedq_audit::AuditError::Store {
            path: "a.db".into(),
            reason: fedq_audit::Cause::of(gone),
        });
        assert_eq!(with_causes(&named), "audit log `a.db`: gone");
        // A source said in other words (TOML's message on one line) ends the line too,
        // and so do its own sources (SQLite's error code behind its message).
        let config = fedq_ops::config::ConfigFile::at(std::path::Path::new("n.toml"));
        let invalid = config.toml::<serde_json::Value>("name = [").unwrap_err();
        let parser = std::error::Error::source(&invalid).unwrap().to_string();
        assert!(parser.trim().contains('\n'), "{parser}");
        let invalid = anyhow::Error::new(invalid);
        assert_eq!(with_causes(&invalid), invalid.to_string());
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("audit.db");
        std::fs::write(&junk, vec![b'x'; 4096]).unwrap();
        let store = anyhow::Error::new(fedq_audit::verify(&junk).unwrap_err());
        assert!(store.chain().count() >= 3, "{store:#}");
        assert_eq!(with_causes(&store), store.to_string());
        let full = anyhow::Error::new(std::io::Error::other("disk full")).context("cannot write");
        assert_eq!(with_causes(&full), format!("{full:#}"));
        assert_eq!(with_causes(&full), "cannot write: disk full");
    }
}
