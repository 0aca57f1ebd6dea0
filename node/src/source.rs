//! Where a lookup's records come from, asked one way: every place a node reads records
//! from is a [`RecordSource`] — the SQLite store ([`SqliteStore`]), the PostgreSQL store
//! ([`PgStore`]), either through [`Store`], and each attached department table
//! ([`Attached`]) — and [`Sources`] is the set of them a serving node holds: it finds the
//! source of each dataset a lookup touches, reads them, and names which part failed.
//!
//! A source answers with [`Evidence`] per dataset: the records, or *unverified* when what
//! it holds cannot be read as the catalogue says (an unreadable stored body, a wrong-typed
//! attached value; the lookup's core adds more, such as a window start in the future) —
//! never a silently shorter list that would read as "no record". A failure is a
//! [`SourceError`] whose message names the store or the dataset and database, never a
//! record's key or contents; the lookup then answers `unavailable`, naming the part
//! ([`ReadFailure`]), and the service counts it as
//! `fedq_node_store_errors_total{source="store"|"attached"}`.
//!
//! This module must never decide what is released (that is [`crate::enforce`]'s job) nor
//! read the lookup's request: it is handed a subject and dataset names.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use fedq_ops::CheckFailed;

use crate::attach::{AttachError, Attached};
use crate::evidence::Evidence;
use crate::postgres::PgStore;
use crate::store::{SqliteStore, Store, StoreError};

/// A future a [`RecordSource`] returns: boxed, so sources of different kinds can be held
/// and asked side by side (`&dyn RecordSource`). The SQLite store's is already complete
/// when returned (its statement runs inline, with no hand-off to another thread).
pub type SourceFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a source could not be read. Its message names the store or the attached dataset
/// and its database, never a record's key or contents, nor a resident ID.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The node's own store (SQLite or PostgreSQL).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An attached department database.
    #[error(transparent)]
    Attached(#[from] AttachError),
}

/// A lookup's read that failed: which part of the node, and why (a message naming no
/// record).
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct ReadError {
    /// The part that failed.
    pub part: ReadFailure,
    /// Why.
    #[source]
    pub error: SourceError,
}

/// Which part of the node a source is, and so what a lookup reports when reading it
/// fails: which part, never why in terms of data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadFailure {
    /// The node's store.
    Store,
    /// An attached database.
    AttachedDatabase,
}

impl ReadFailure {
    /// How the lookup's answer and audit entry name it (`{"unavailable": …}`).
    pub fn name(self) -> &'static str {
        match self {
            ReadFailure::Store => "store",
            ReadFailure::AttachedDatabase => "attached database",
        }
    }

    /// Its `source` label on `fedq_node_store_errors_total`.
    pub fn metric_source(self) -> &'static str {
        match self {
            ReadFailure::Store => "store",
            ReadFailure::AttachedDatabase => "attached",
        }
    }
}

/// A place a node reads a subject's records from.
pub trait RecordSource: Send + Sync {
    /// Which part of the node this is.
    fn part(&self) -> ReadFailure;

    /// What the source holds about `subject` in each of `datasets` (qualified names) that
    /// it serves: one entry per such dataset, [`Evidence::Records`] (possibly none) or
    /// [`Evidence::Unverified`]. A dataset it does not serve is left out.
    fn records_of<'a>(
        &'a self,
        subject: &'a str,
        datasets: &'a [&'a str],
    ) -> SourceFuture<'a, Result<BTreeMap<String, Evidence>, SourceError>>;

    /// Whether the source answers now (for `/health`): what it is, or what is wrong and
    /// what to do. Never a record.
    fn check(&self) -> SourceFuture<'_, Result<String, CheckFailed>>;

    /// Opens a connection now, so the first lookup does not pay for it (nothing to do
    /// for a file).
    fn warm_up(&self) -> SourceFuture<'_, Result<(), SourceError>>;
}

impl RecordSource for SqliteStore {
    fn part(&self) -> ReadFailure {
        ReadFailure::Store
    }

    fn records_of<'a>(
        &'a self,
        subject: &'a str,
        datasets: &'a [&'a str],
    ) -> SourceFuture<'a, Result<BTreeMap<String, Evidence>, SourceError>> {
        // Inline: the statement runs here, the future is ready.
        let read = self
            .evidence_of(subject, datasets)
            .map_err(SourceError::from);
        Box::pin(std::future::ready(read))
    }

    fn check(&self) -> SourceFuture<'_, Result<String, CheckFailed>> {
        Box::pin(std::future::ready(SqliteStore::check(self)))
    }

    fn warm_up(&self) -> SourceFuture<'_, Result<(), SourceError>> {
        Box::pin(std::future::ready(Ok(())))
    }
}

impl RecordSource for PgStore {
    fn part(&self) -> ReadFailure {
        ReadFailure::Store
    }

    fn records_of<'a>(
        &'a self,
        subject: &'a str,
        datasets: &'a [&'a str],
    ) -> SourceFuture<'a, Result<BTreeMap<String, Evidence>, SourceError>> {
        Box::pin(async move { Ok(self.evidence_of(subject, datasets).await?) })
    }

    fn check(&self) -> SourceFuture<'_, Result<String, CheckFailed>> {
        Box::pin(PgStore::check(self))
    }

    fn warm_up(&self) -> SourceFuture<'_, Result<(), SourceError>> {
        Box::pin(async move { Ok(PgStore::warm_up(self).await?) })
    }
}

impl RecordSource for Store {
    fn part(&self) -> ReadFailure {
        ReadFailure::Store
    }

    fn records_of<'a>(
        &'a self,
        subject: &'a str,
        datasets: &'a [&'a str],
    ) -> SourceFuture<'a, Result<BTreeMap<String, Evidence>, SourceError>> {
        self.source().records_of(subject, datasets)
    }

    fn check(&self) -> SourceFuture<'_, Result<String, CheckFailed>> {
        RecordSource::check(self.source())
    }

    fn warm_up(&self) -> SourceFuture<'_, Result<(), SourceError>> {
        RecordSource::warm_up(self.source())
    }
}

impl Store {
    /// The store as a record source.
    fn source(&self) -> &dyn RecordSource {
        match self {
            Store::Sqlite(s) => s,
            Store::Postgres(p) => p,
        }
    }
}

impl RecordSource for Attached {
    fn part(&self) -> ReadFailure {
        ReadFailure::AttachedDatabase
    }

    fn records_of<'a>(
        &'a self,
        subject: &'a str,
        datasets: &'a [&'a str],
    ) -> SourceFuture<'a, Result<BTreeMap<String, Evidence>, SourceError>> {
        Box::pin(async move {
            let name = self.dataset().qualified.as_str();
            let mut out = BTreeMap::new();
            if datasets.contains(&name) {
                out.insert(name.to_owned(), Attached::records_of(self, subject).await?);
            }
            Ok(out)
        })
    }

    fn check(&self) -> SourceFuture<'_, Result<String, CheckFailed>> {
        Box::pin(async move {
            let dataset = &self.dataset().qualified;
            match Attached::warm_up(self).await {
                Ok(()) => Ok(format!("the attached database of `{dataset}` is reachable")),
                Err(e) => Err(CheckFailed::new(format!(
                    "the attached database of `{dataset}` cannot be reached ({e}); lookups that touch it answer `unavailable`"
                ))
                .because(e)),
            }
        })
    }

    fn warm_up(&self) -> SourceFuture<'_, Result<(), SourceError>> {
        Box::pin(async move { Ok(Attached::warm_up(self).await?) })
    }
}

/// Every source a serving node reads from: its store, and its attached datasets by
/// qualified name (a dataset attached is read only there, never from the store).
#[derive(Debug)]
pub struct Sources {
    store: Store,
    attached: BTreeMap<String, Attached>,
}

impl Sources {
    /// The node's store and its attached datasets.
    pub fn new(store: Store, attached: impl IntoIterator<Item = Attached>) -> Self {
        let attached = attached
            .into_iter()
            .map(|a| (a.dataset().qualified.clone(), a))
            .collect();
        Self { store, attached }
    }

    /// Whether `dataset` (qualified) is read from an attached database.
    pub fn is_attached(&self, dataset: &str) -> bool {
        self.attached.contains_key(dataset)
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The source of each of `datasets` (qualified names), each with the datasets it is
    /// asked for: the store first, with every dataset not attached (if any), then each
    /// attached dataset's own, in the order given.
    pub fn for_datasets<'a>(
        &'a self,
        datasets: &'a [String],
    ) -> Vec<(&'a dyn RecordSource, Vec<&'a str>)> {
        let mut out: Vec<(&dyn RecordSource, Vec<&str>)> = Vec::new();
        let stored: Vec<&str> = datasets
            .iter()
            .map(String::as_str)
            .filter(|d| !self.attached.contains_key(*d))
            .collect();
        if !stored.is_empty() {
            out.push((&self.store, stored));
        }
        for name in datasets {
            if let Some((name, source)) = self.attached.get_key_value(name) {
                out.push((source, vec![name.as_str()]));
            }
        }
        out
    }

    /// Reads what a lookup needs about `subject` in `datasets`: one statement on the store
    /// (inline for SQLite), one query per attached dataset. Stops at the first failure,
    /// and says which part failed and why (the caller counts and logs it).
    pub async fn read(
        &self,
        subject: &str,
        datasets: &[String],
    ) -> Result<BTreeMap<String, Evidence>, ReadError> {
        let mut by_dataset = BTreeMap::new();
        for (source, names) in self.for_datasets(datasets) {
            match source.records_of(subject, &names).await {
                Ok(found) => by_dataset.extend(found),
                Err(error) => {
                    return Err(ReadError {
                        part: source.part(),
                        error,
                    })
                }
            }
        }
        Ok(by_dataset)
    }

    /// Whether every source answers now (the node's `/health` store check): the store's
    /// state, then each attached database reached; the first that does not, and what to do.
    pub async fn check(&self) -> Result<String, CheckFailed> {
        let mut detail = RecordSource::check(&self.store).await?;
        for source in self.attached.values() {
            RecordSource::check(source).await?;
        }
        if !self.attached.is_empty() {
            detail.push_str(&format!(
                "; {} attached database(s) reachable",
                self.attached.len()
            ));
        }
        Ok(detail)
    }

    /// Opens a connection to each database now, so the first lookup does not pay for it;
    /// one that cannot be reached yet is logged, and lookups retry.
    pub async fn warm_up(&self) {
        if let Err(e) = RecordSource::warm_up(&self.store).await {
            tracing::warn!(error = %e, "cannot connect to the store yet; lookups will retry");
        }
        for a in self.attached.values() {
            if let Err(e) = RecordSource::warm_up(a).await {
                tracing::warn!(error = %e, "cannot connect to an attached database yet; lookups will retry");
            }
        }
    }
}
