//! `fedq node …`: a department node ([`fedq_node`]): serve, and the operator's work beside
//! it ([`fedq_node::admin`]).

use std::future::Future;
use std::path::PathBuf;

use fedq_node::admin::{self, ImportRequest};
use fedq_node::config::NodeConfig;
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
    /// Record a credit repair (长政办发〔2017〕62号 §十): the record stops being disclosed at once.
    Repair {
        /// The node's config file.
        #[arg(long)]
        config: PathBuf,
        /// The dataset.
        #[arg(long)]
        dataset: String,
        /// The record key (the catalogue's `key` field, e.g. the case number).
        #[arg(long)]
        record: String,
        /// Why (kept in the store; the audit log records that a repair happened).
        #[arg(long)]
        reason: String,
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
        NodeCommand::Repair {
            config,
            dataset,
            record,
            reason,
        } => {
            let config = NodeConfig::load(&config)?;
            let qualified = admin::repair(&config, &dataset, &record, &reason).await?;
            println!(
                "recorded a credit repair of record `{record}` in `{qualified}`; it is no longer disclosed"
            );
        }
    }
    Ok(())
}
