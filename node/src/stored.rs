//! What a store holds and how reading it fails, shared by the SQLite store
//! ([`crate::store`]) and the PostgreSQL one ([`crate::postgres`]): [`StoreError`], a
//! [`StoredRecord`], and a stored body read back as [`Evidence`].
//!
//! Imports nothing of this crate but [`crate::evidence`], so both stores depend on it and
//! neither on the other. Nothing here puts a record's key or contents into a message or a
//! log line (a dataset may be keyed by resident ID).

use std::collections::BTreeMap;

use fedq_policy::Record;

use crate::evidence::Evidence;

/// Store errors. Messages carry no record contents.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("store `{path}`: {reason}")]
    Database {
        /// The file.
        path: String,
        /// What failed.
        reason: String,
    },
    /// A stored body could not be read back. The message names the dataset and where the
    /// body is broken, never the record's key (a dataset may be keyed by resident ID) nor
    /// any of its contents.
    #[error(
        "store `{path}`: a record of `{dataset}` is unreadable ({reason}); re-import the dataset"
    )]
    Corrupt {
        /// The file.
        path: String,
        /// Dataset.
        dataset: String,
        /// Record key (kept out of the message).
        key: String,
        /// What kind of damage, without contents.
        reason: String,
    },
    /// The store does not exist, or holds no fedq schema.
    #[error("store `{store}` {what}; create it with `fedq node init --config NODE.toml`, then import the department's data (a node never serves, imports into or repairs a store it would have had to create)")]
    NotInitialised {
        /// The file, or `postgres://HOST:PORT/DATABASE`.
        store: String,
        /// `does not exist`, or what is there instead.
        what: String,
    },
    /// `repair` named no record.
    #[error("no such record in dataset `{dataset}`; check the record key (`fedq node repair` takes the catalogue's record key)")]
    NoSuchRecord {
        /// Dataset.
        dataset: String,
        /// Record key (kept out of the message: it may be a resident ID).
        key: String,
    },
}

/// Why a stored body does not read back as a record, without quoting it (serde's
/// messages quote the offending value).
pub(crate) fn unreadable(e: &serde_json::Error) -> String {
    let what = match e.classify() {
        serde_json::error::Category::Io => "it cannot be read",
        serde_json::error::Category::Syntax => "it is not valid JSON",
        serde_json::error::Category::Data => "it is not a record of this dataset's shape",
        serde_json::error::Category::Eof => "it is truncated",
    };
    format!("{what}, at line {} column {}", e.line(), e.column())
}

/// One stored record, as read for an answer.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredRecord {
    /// `department.dataset`.
    pub dataset: String,
    /// The record.
    pub record: Record,
}

/// An empty [`Evidence`] for each of `datasets`.
pub(crate) fn empty_evidence(datasets: &[&str]) -> BTreeMap<String, Evidence> {
    datasets
        .iter()
        .map(|d| ((*d).to_owned(), Evidence::default()))
        .collect()
}

/// Adds one stored body to `evidence`: the record, or — if the body is not a record —
/// the dataset becomes unverified. Neither the body nor the parser's words (which may
/// quote it) go into the reason or the log.
pub(crate) fn read_body(dataset: &str, body: Option<&str>, evidence: &mut Evidence) {
    match body.map(serde_json::from_str::<Record>) {
        Some(Ok(record)) => evidence.push(record),
        _ => {
            tracing::warn!(
                dataset,
                "a stored record cannot be read back; the dataset is answered as unverified"
            );
            evidence.unverified(format!(
                "a stored record of `{dataset}` cannot be read back as a record"
            ));
        }
    }
}
