//! `fedq node …`.

use std::path::PathBuf;

use fedq_wire::transport::Limits;

use crate::config::{NodeConfig, StoreLocation};
use crate::import::{ImportOptions, ImportReport};

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
    /// The dataset is attached (read from the department's own database).
    #[error("dataset `{dataset}` is attached to the department's own database (`[[attach]]` in the node config), which fedq only reads: {what}")]
    Attached {
        /// The qualified dataset.
        dataset: String,
        /// What was refused and what to do instead.
        what: String,
    },
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

/// Refuses to write to an attached dataset.
fn refuse_attached(
    catalogue: &fedq_policy::Catalogue,
    config: &NodeConfig,
    ds: &fedq_policy::Dataset,
    what: &str,
) -> Result<(), NodeCliError> {
    let attached = config.attach.iter().any(|spec| {
        crate::attach::dataset_of(spec, catalogue).is_ok_and(|d| d.qualified == ds.qualified)
    });
    if attached {
        return Err(NodeCliError::Attached {
            dataset: ds.qualified.clone(),
            what: what.to_owned(),
        });
    }
    Ok(())
}

fn current_thread_runtime() -> Result<tokio::runtime::Runtime, NodeCliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| NodeCliError::Runtime(e.to_string()))
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
        NodeCommand::Init { config } => {
            let config = NodeConfig::load(&config)?;
            let created =
                current_thread_runtime()?.block_on(crate::store::Store::init(&config.store))?;
            let label = match &config.store {
                StoreLocation::Sqlite(path) => path.display().to_string(),
                StoreLocation::Postgres(url) => crate::postgres::parse_url(url)
                    .map(|o| crate::postgres::redacted(&o))
                    .unwrap_or_else(|_| "the PostgreSQL store".into()),
            };
            if created {
                println!(
                    "created store `{label}`; import the department's data with `fedq node import`"
                );
            } else {
                println!("store `{label}` is already initialised; nothing changed");
            }
            Ok(())
        }
        NodeCommand::Serve { config } => {
            let config = NodeConfig::load(&config)?;
            // One thread: a node's work per request is a short lookup and an audit hand-off
            // to the writer thread; cross-thread hand-offs cost more than they save here
            // (fan-out-6 p50 1.90 → 1.58 ms in `fedq bench`, same host, same run set-up).
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| NodeCliError::Runtime(e.to_string()))?;
            runtime.block_on(async {
                let node = crate::service::Node::start(config, Limits::default())?;
                let addr = node
                    .local_addr()
                    .map_err(|e| NodeCliError::Runtime(e.to_string()))?;
                match node.ops_addr() {
                    Some(ops) => eprintln!("node serving on udp {addr} (health and metrics on http://{ops}); Ctrl-C to stop"),
                    None => eprintln!("node serving on udp {addr}; Ctrl-C to stop"),
                }
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
            refuse_attached(
                &catalogue,
                &config,
                ds,
                "import is refused; its records are read from there, so load them into that database instead",
            )?;
            let options = ImportOptions {
                skip_invalid,
                rejects,
                progress: true,
                today: Some(config.today()),
            };
            let report = match &config.store {
                StoreLocation::Sqlite(path) => crate::import::import(path, ds, &file, &options)?,
                StoreLocation::Postgres(url) => current_thread_runtime()?.block_on(async {
                    let store = crate::postgres::PgStore::open(url).await?;
                    let report = crate::import::import_postgres(&store, ds, &file, &options).await;
                    store.close().await;
                    report
                })?,
            };
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
            refuse_attached(
                &catalogue,
                &config,
                ds,
                "fedq cannot record a repair there; record it in the department's system (e.g. its performance status), and the next lookup sees it",
            )?;
            let pseudonyms = fedq_audit::Pseudonymizer::load_or_create(&config.pseudonym_key)?;
            let now = time::OffsetDateTime::now_utc();
            let at = now
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            let runtime = current_thread_runtime()?;
            let subject = runtime.block_on(async {
                let store = crate::store::Store::open(&config.store).await?;
                let subject = store.repair(&ds.qualified, &record, &reason, &at).await;
                if let crate::store::Store::Postgres(pg) = &store {
                    pg.close().await;
                }
                subject
            })?;
            runtime.block_on(async {
                let audit = fedq_audit::AuditLog::open(&config.audit)?;
                audit
                    .append(fedq_audit::AuditRecord {
                        at: now,
                        kind: fedq_audit::EntryKind::Repair,
                        query_id: String::new(),
                        requester: "operator".into(),
                        purpose: "credit-repair".into(),
                        legal_basis: None,
                        case_reference: None,
                        subject: pseudonyms.pseudonym(&subject),
                        target: ds.qualified.clone(),
                        outcome: fedq_audit::Outcome::json(
                            &serde_json::json!({ "repaired": true }),
                        ),
                        policy_version: String::new(),
                        consent_id: None,
                        node_query_ids: Default::default(),
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
