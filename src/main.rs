//! `fedq`: one binary, many subcommands. This file only parses arguments and dispatches;
//! every subcommand's logic lives in the crate that owns it.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
        cmd: fedq_certs::cli::CertsCommand,
    },
    /// Security officers' tools: check, test, diff, explain, who-can; bundle, sign,
    /// publish and status for signed policy changes.
    Policy {
        #[command(subcommand)]
        cmd: PolicyCli,
    },
    /// A department node: serve lookups, import data, record credit repairs.
    Node {
        #[command(subcommand)]
        cmd: fedq_node::cli::NodeCommand,
    },
    /// The coordinator: the requester API, fan-out and merge.
    Coordinator {
        #[command(subcommand)]
        cmd: fedq_coordinator::cli::CoordinatorCommand,
    },
    /// Ask the coordinator one authorized question about one person.
    Query(fedq_coordinator::client::QueryArgs),
    /// A requesting agency's gateway: its apps ask through it; it proves, seals, opens and
    /// keeps its own log.
    Gateway {
        #[command(subcommand)]
        cmd: fedq_coordinator::gateway::GatewayCommand,
    },
    /// The consent authority's tokens: issue one, or show what one says.
    Consent {
        #[command(subcommand)]
        cmd: fedq_coordinator::consent::ConsentCommand,
    },
    /// Review and verify a node's or the coordinator's audit log.
    Audit {
        #[command(subcommand)]
        cmd: fedq_audit::cli::AuditCommand,
    },
    /// Write synthetic Changsha data (CSV or JSON Lines) per department.
    GenData(fedq_synth::cli::GenDataArgs),
    /// Measure import, lookup, audit and end-to-end fan-out on this host; writes a report.
    Bench(fedq_bench::BenchArgs),
    /// Build a throwaway federation on 127.0.0.1 and tour what fedq is for.
    Demo(fedq_demo::DemoArgs),
}

#[derive(Debug, Subcommand)]
enum PolicyCli {
    #[command(flatten)]
    Officer(fedq_policy::cli::PolicyCommand),
    /// Put a checked policy into a bundle for officers to sign.
    Bundle(fedq_bundle::cli::BundleArgs),
    /// Show what a bundle changes against the version in force, confirm, and sign it.
    Sign(fedq_bundle::cli::SignArgs),
    /// Hand a signed bundle to the coordinator, which verifies it and sends it to every node.
    Publish(fedq_coordinator::client::PublishArgs),
    /// Which policy version the coordinator and each node run, and what failed to apply.
    Status(fedq_coordinator::client::ApiArgs),
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
    let result: anyhow::Result<ExitCode> = match cli.command {
        Command::Certs { cmd } => fedq_certs::cli::run(cmd)
            .map(|()| ExitCode::SUCCESS)
            .map_err(anyhow::Error::from),
        Command::Policy { cmd } => match cmd {
            PolicyCli::Officer(cmd) => fedq_policy::cli::run(cmd).map_err(|e| anyhow::anyhow!(e)),
            PolicyCli::Bundle(args) => fedq_bundle::cli::bundle(&args)
                .map(|()| ExitCode::SUCCESS)
                .map_err(|e| anyhow::anyhow!(e)),
            PolicyCli::Sign(args) => fedq_bundle::cli::sign(&args)
                .map(|()| ExitCode::SUCCESS)
                .map_err(|e| anyhow::anyhow!(e)),
            PolicyCli::Publish(args) => fedq_coordinator::client::run_publish(args)
                .map(|()| ExitCode::SUCCESS)
                .map_err(anyhow::Error::from),
            PolicyCli::Status(args) => fedq_coordinator::client::run_status(args)
                .map(|()| ExitCode::SUCCESS)
                .map_err(anyhow::Error::from),
        },
        Command::Node { cmd } => fedq_node::cli::run(cmd)
            .map(|()| ExitCode::SUCCESS)
            .map_err(anyhow::Error::from),
        Command::Coordinator { cmd } => {
            fedq_coordinator::cli::run(cmd, fedq_node::cli::shutdown_signal())
                .map(|()| ExitCode::SUCCESS)
                .map_err(anyhow::Error::from)
        }
        Command::Query(args) => fedq_coordinator::client::run(args)
            .map(|()| ExitCode::SUCCESS)
            .map_err(anyhow::Error::from),
        Command::Gateway { cmd } => {
            fedq_coordinator::gateway::run(cmd, fedq_node::cli::shutdown_signal())
                .map(|()| ExitCode::SUCCESS)
                .map_err(anyhow::Error::from)
        }
        Command::Consent { cmd } => fedq_coordinator::consent::run(cmd)
            .map(|()| ExitCode::SUCCESS)
            .map_err(anyhow::Error::from),
        Command::Audit { cmd } => fedq_audit::cli::run(cmd).map_err(anyhow::Error::from),
        Command::GenData(args) => fedq_synth::cli::run(args)
            .map(|()| ExitCode::SUCCESS)
            .map_err(anyhow::Error::from),
        Command::Bench(args) => tokio::runtime::Runtime::new()
            .map_err(anyhow::Error::from)
            .and_then(|rt| {
                rt.block_on(fedq_bench::run(args))
                    .map_err(anyhow::Error::from)
            })
            .map(|()| ExitCode::SUCCESS),
        Command::Demo(args) => tokio::runtime::Runtime::new()
            .map_err(anyhow::Error::from)
            .and_then(|rt| {
                rt.block_on(fedq_demo::run(args, fedq_node::cli::shutdown_signal()))
                    .map_err(anyhow::Error::from)
            }),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
