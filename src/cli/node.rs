//! `fedq node …`: a department node ([`fedq_node`]): serve, and the operator's work beside
//! it ([`fedq_node::admin`]).

use std::future::Future;
use std::path::PathBuf;

use fedq_node::admin::{self, ImportRequest};
use fedq_node::config::NodeConfig;
use fedq_node::remedies;
use fedq_node::service::Node;
use fedq_wire::transport::Limits;

/// The `fedq node` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum NodeCommand {
    /// Create the node's store (an SQLite file, or fedq's schema in a PostgreSQL database).
    /// Serve, import and repair refuse a store that was never initialised.
    Init {
        /// The node's config file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Serve authorized lookups from coordinators over QUIC until Ctrl-C.
    Serve {
        /// The node's config file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Import a CSV or JSON Lines file into one dataset (atomic and idempotent).
    Import {
        /// The node's config file.
        #[arg(long)]
        config: PathBuf,
        /// The dataset (`dishonest_debtors` or `court.dishonest_debtors`).
        #[arg(long)]
        dataset: String,
        /// The file (.csv with a header row, or .jsonl).
        file: PathBuf,
        /// Import the valid rows; write each invalid one to the reject file.
        #[arg(long)]
        skip_invalid: bool,
        /// Where rejects go (default: FILE.rejects.csv).
        #[arg(long)]
        rejects: Option<PathBuf>,
    },
    /// The persons' objections to this department's records, oldest first.
    Objections {
        /// The node's config file.
        #[arg(long)]
        config: PathBuf,
        /// Only those with this status: `open`, `upheld`, `corrected`, `removed`.
        #[arg(long)]
        status: Option<String>,
    },
    /// Record an officer's signed resolution of an objection (`fedq decision sign`).
    Resolve {
        /// The node's config file.
        #[arg(long)]
        config: PathBuf,
        /// The objection's id.
        #[arg(long)]
        objection: String,
        /// The signed decision file.
        #[arg(long)]
        decision: PathBuf,
    },
    /// The persons' credit-repair applications here, oldest first.
    Repairs {
        /// The node's config file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Record a credit repair (长政办发〔2017〕62号 §十) on the review office's signed decision:
    /// one `approve` or `reject`, or two `reverse` decisions by two approvers.
    Repair {
        /// The node's config file.
        #[arg(long)]
        config: PathBuf,
        /// The repair application's id.
        #[arg(long)]
        application: String,
        /// A signed decision file (`fedq decision sign`); twice for a reversal.
        #[arg(long, required = true)]
        decision: Vec<PathBuf>,
    },
}

/// Runs one `fedq node` subcommand in the caller's runtime; `serve` until `shutdown`.
pub async fn run(cmd: NodeCommand, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    match cmd {
        NodeCommand::Init { config } => {
            let config = NodeConfig::load(&config)?;
            let created = admin::init(&config).await?;
            let label = admin::store_label(&config.store);
            if created {
                println!(
                    "created store `{label}`; import the department's data with `fedq node import`"
                );
            } else {
                println!("store `{label}` is already initialised; nothing changed");
            }
        }
        NodeCommand::Serve { config } => {
            let config = NodeConfig::load(&config)?;
            let node = Node::start(config, Limits::default()).await?;
            let addr = node.local_addr().map_err(super::message)?;
            match node.ops_addr() {
                Some(ops) => eprintln!("node serving on udp {addr} (health and metrics on http://{ops}); Ctrl-C to stop"),
                None => eprintln!("node serving on udp {addr}; Ctrl-C to stop"),
            }
            node.serve(None, shutdown).await;
            eprintln!("node stopped");
        }
        NodeCommand::Import {
            config,
            dataset,
            file,
            skip_invalid,
            rejects,
        } => {
            let config = NodeConfig::load(&config)?;
            let report = admin::import(
                &config,
                ImportRequest {
                    dataset,
                    file,
                    skip_invalid,
                    rejects,
                },
            )
            .await?;
            println!("{}", admin::describe(&report));
        }
        NodeCommand::Objections { config, status } => {
            let config = NodeConfig::load(&config)?;
            let status = status
                .map(|s| {
                    fedq_wire::rights::ObjectionStatus::parse(&s).ok_or_else(|| {
                        anyhow::anyhow!("`--status` is `open`, `upheld`, `corrected` or `removed`")
                    })
                })
                .transpose()?;
            let list = remedies::objections(&config, status)?;
            if list.is_empty() {
                println!("no objections");
            }
            for o in list {
                println!(
                    "{}  {}  {}  record {}  filed {}  reason: {}  evidence: {}",
                    o.id,
                    o.status.as_str(),
                    o.dataset,
                    o.record,
                    o.filed_at,
                    o.reason,
                    o.evidence
                );
            }
        }
        NodeCommand::Resolve {
            config,
            objection,
            decision,
        } => {
            let config = NodeConfig::load(&config)?;
            let token = read_decision(&decision)?;
            let state = remedies::resolve(&config, &objection, &token).await?;
            let by = state
                .resolution
                .as_ref()
                .map_or("-", |r| r.officer.as_str());
            println!(
                "objection {objection} resolved `{}` by officer `{by}`; the person sees it in their register",
                state.status.as_str()
            );
        }
        NodeCommand::Repairs { config } => {
            let config = NodeConfig::load(&config)?;
            let list = remedies::repairs(&config)?;
            if list.is_empty() {
                println!("no repair applications");
            }
            for r in list {
                println!(
                    "{}  {}  {}  record {}  {}  filed {}  reason: {}  evidence: {}",
                    r.id,
                    r.status.as_str(),
                    r.dataset,
                    r.record,
                    r.grounds.as_str(),
                    r.filed_at,
                    r.reason,
                    r.evidence
                );
            }
        }
        NodeCommand::Repair {
            config,
            application,
            decision,
        } => {
            let config = NodeConfig::load(&config)?;
            let tokens = decision
                .iter()
                .map(|p| read_decision(p))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let state = remedies::repair(&config, &application, &tokens).await?;
            println!(
                "repair application {application} is now `{}` (record `{}` in `{}`)",
                state.status.as_str(),
                state.record,
                state.dataset
            );
        }
    }
    Ok(())
}

/// A signed decision file's token.
fn read_decision(path: &std::path::Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path)
        .map(|t| t.trim().to_owned())
        .map_err(|e| anyhow::anyhow!("cannot read the signed decision `{}`: {e}", path.display()))
}
