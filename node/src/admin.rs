//! The operator's work on a node's store, beside serving: create it (`fedq node init`) and
//! import a department's file into one dataset (`fedq node import`). Credit repairs and
//! objections are recorded on officers' signed decisions only ([`crate::remedies`]).
//! Async, run in the caller's runtime; a dataset attached to the department's own
//! database (`[[attach]]`) is never written.

use std::path::PathBuf;

use crate::config::{NodeConfig, StoreLocation};
use crate::import::{ImportOptions, ImportReport};

/// Errors of the operator's work on a node.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
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
    /// Audit failed.
    #[error(transparent)]
    Audit(#[from] fedq_audit::AuditError),
}

/// Refuses to write to an attached dataset.
pub(crate) fn refuse_attached(
    catalogue: &fedq_policy::Catalogue,
    config: &NodeConfig,
    ds: &fedq_policy::Dataset,
    what: &str,
) -> Result<(), AdminError> {
    let attached = config.attach.iter().any(|spec| {
        crate::attach::dataset_of(spec, catalogue).is_ok_and(|d| d.qualified == ds.qualified)
    });
    if attached {
        return Err(AdminError::Attached {
            dataset: ds.qualified.clone(),
            what: what.to_owned(),
        });
    }
    Ok(())
}

fn dataset<'c>(
    catalogue: &'c fedq_policy::Catalogue,
    config: &NodeConfig,
    name: &str,
) -> Result<&'c fedq_policy::Dataset, AdminError> {
    let local = name
        .strip_prefix(&format!("{}.", catalogue.department))
        .unwrap_or(name);
    catalogue
        .dataset(local)
        .ok_or_else(|| AdminError::UnknownDataset {
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

/// The store as an operator may be shown it: the SQLite path, or the PostgreSQL URL
/// without its password.
pub fn store_label(store: &StoreLocation) -> String {
    match store {
        StoreLocation::Sqlite(path) => path.display().to_string(),
        StoreLocation::Postgres(url) => crate::postgres::parse_url(url)
            .map(|o| crate::postgres::redacted(&o))
            .unwrap_or_else(|_| "the PostgreSQL store".into()),
    }
}

/// `fedq node init`: creates the node's store; `false` if it was initialised already
/// (nothing changed).
pub async fn init(config: &NodeConfig) -> Result<bool, AdminError> {
    Ok(crate::store::Store::init(&config.store).await?)
}

/// What `fedq node import` imports.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    /// The dataset (`dishonest_debtors` or `court.dishonest_debtors`).
    pub dataset: String,
    /// The file (.csv with a header row, or .jsonl).
    pub file: PathBuf,
    /// Import the valid rows; write each invalid one to the reject file.
    pub skip_invalid: bool,
    /// Where rejects go (default: FILE.rejects.csv).
    pub rejects: Option<PathBuf>,
}

/// `fedq node import`: imports one file into one dataset of the node's store (with a
/// progress bar on the terminal), atomic and idempotent.
pub async fn import(config: &NodeConfig, r: ImportRequest) -> Result<ImportReport, AdminError> {
    let catalogue = fedq_policy::load::load_catalogue(&config.catalogue)?;
    let ds = dataset(&catalogue, config, &r.dataset)?;
    refuse_attached(
        &catalogue,
        config,
        ds,
        "import is refused; its records are read from there, so load them into that database instead",
    )?;
    let options = ImportOptions {
        skip_invalid: r.skip_invalid,
        rejects: r.rejects,
        progress: true,
        today: Some(config.today()),
    };
    let report = match &config.store {
        StoreLocation::Sqlite(path) => crate::import::import(path, ds, &r.file, &options)?,
        StoreLocation::Postgres(url) => {
            let store = crate::postgres::PgStore::open(url).await?;
            let report = crate::import::import_postgres(&store, ds, &r.file, &options).await;
            store.close().await;
            report?
        }
    };
    Ok(report)
}

/// An import report in one line, as `fedq node import` prints it.
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
