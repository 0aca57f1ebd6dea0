//! `fedq node …`.

use std::path::PathBuf;

use fedq_wire::transport::Limits;

use crate::config::{NodeConfig, StoreLocation};
use crate::import::{ImportOptions, ImportReport};

/// The `fedq node` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum NodeCommand {
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
    /// Record a credit repair (seed §十): the record stops being disclosed at once.
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

/// Errors of `fedq node`.
#[derive(Debug, thiserror::Error)]
pub enum NodeCliError {
    /// Bad config.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Catalogue or policy.
    #[error(transparent)]
    Policy(#[from] fedq_policy::load::LoadError),
    /// Unknown dataset.
    #[error("dataset `{dataset}` is not in catalogue `{catalogue}` (datasets: {known})")]
    UnknownDataset {
        /// As given.
        dataset: String,
        /// The catalogue file.
        catalogue: String,
        /// Its datasets.
        known: String,
    },
    /// Import failed.
    #[error(transparent)]
    Import(#[from] crate::import::ImportError),
    /// Store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Serving failed.
    #[error(transparent)]
    Serve(#[from] crate::service::ServeError),
    /// Audit failed.
    #[error(transparent)]
    Audit(#[from] fedq_audit::AuditError),
    /// Runtime.
    #[error("{0}")]
    Runtime(String),
}

fn sqlite_path(config: &NodeConfig) -> Result<PathBuf, NodeCliError> {
    match &config.store {
        StoreLocation::Sqlite(p) => Ok(p.clone()),
        StoreLocation::Postgres(_) => Err(NodeCliError::Runtime(
            "this command works on an SQLite store in this build; PostgreSQL stores are not available yet".into(),
        )),
    }
}

fn dataset<'c>(
    catalogue: &'c fedq_policy::Catalogue,
    config: &NodeConfig,
    name: &str,
) -> Result<&'c fedq_policy::Dataset, NodeCliError> {
    let local = name
        .strip_prefix(&format!("{}.", catalogue.department))
        .unwrap_or(name);
    catalogue
        .dataset(local)
        .ok_or_else(|| NodeCliError::UnknownDataset {
            dataset: name.to_owned(),
            catalogue: config.catalogue.display().to_string(),
            known: catalogue
                .datasets
                .iter()
                .map(|d| d.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Prints an import report.
pub fn describe(report: &ImportReport) -> String {
    let secs = report.elapsed.as_secs_f64().max(1e-9);
    let mut s = format!(
        "imported {} rows in {:.2} s ({:.0} rows/s): {} written, {} unchanged",
        report.rows,
        secs,
        report.rows as f64 / secs,
        report.written,
        report.unchanged
    );
    if let Some(path) = &report.rejects {
        s.push_str(&format!(
            ", {} rejected (see {})",
            report.rejected,
            path.display()
        ));
    }
    s
}

/// Runs one `fedq node` subcommand.
pub fn run(cmd: NodeCommand) -> Result<(), NodeCliError> {
    match cmd {
        NodeCommand::Serve { config } => {
            let config = NodeConfig::load(&config)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| NodeCliError::Runtime(e.to_string()))?;
            runtime.block_on(async {
                let node = crate::service::Node::start(config, Limits::default())?;
                let addr = node
                    .local_addr()
                    .map_err(|e| NodeCliError::Runtime(e.to_string()))?;
                eprintln!("node serving on udp {addr}; Ctrl-C to stop");
                node.serve(None, shutdown_signal()).await;
                eprintln!("node stopped");
                Ok(())
            })
        }
        NodeCommand::Import {
            config,
            dataset: name,
            file,
            skip_invalid,
            rejects,
        } => {
            let config = NodeConfig::load(&config)?;
            let catalogue = fedq_policy::load::load_catalogue(&config.catalogue)?;
            let ds = dataset(&catalogue, &config, &name)?;
            let report = crate::import::import(
                &sqlite_path(&config)?,
                ds,
                &file,
                &ImportOptions {
                    skip_invalid,
                    rejects,
                    progress: true,
                },
            )?;
            println!("{}", describe(&report));
            Ok(())
        }
        NodeCommand::Repair {
            config,
            dataset: name,
            record,
            reason,
        } => {
            let config = NodeConfig::load(&config)?;
            let catalogue = fedq_policy::load::load_catalogue(&config.catalogue)?;
            let ds = dataset(&catalogue, &config, &name)?;
            let store = crate::store::SqliteStore::open(&sqlite_path(&config)?)?;
            let pseudonyms = fedq_audit::Pseudonymizer::load_or_create(&config.pseudonym_key)?;
            let now = time::OffsetDateTime::now_utc();
            let at = now
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            let subject = store.repair(&ds.qualified, &record, &reason, &at)?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .map_err(|e| NodeCliError::Runtime(e.to_string()))?;
            runtime.block_on(async {
                let audit = fedq_audit::AuditLog::open(&config.audit)?;
                audit
                    .append(fedq_audit::AuditRecord {
                        at: now,
                        kind: "repair".into(),
                        query_id: String::new(),
                        requester: "operator".into(),
                        purpose: "credit-repair".into(),
                        legal_basis: None,
                        subject: pseudonyms.pseudonym(&subject),
                        target: ds.qualified.clone(),
                        outcome: serde_json::json!({ "repaired": true }).to_string(),
                        policy_version: String::new(),
                    })
                    .await
                    .map(|_| ())
            })?;
            println!(
                "recorded a credit repair of record `{record}` in `{}`; it is no longer disclosed",
                ds.qualified
            );
            Ok(())
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
