//! The node's records.
//!
//! [`Store`] is what the service and the CLI use: an [`SqliteStore`] (the embedded default)
//! or a [`crate::postgres::PgStore`] (`store = "postgres://…"`), with the same operations
//! and the same behaviour (one body of tests runs against both).
//!
//! SQLite (through rusqlite) is the embedded default. The node's hot path is one indexed
//! lookup per request; through sqlx's SQLite driver that costs ~124 µs at the median on
//! this hardware against ~7 µs for a synchronous binding (see `shared/FLOORS.md`), because
//! sqlx hands every statement to a worker thread. So the embedded store is synchronous and
//! runs its lookup inline, and sqlx is kept for PostgreSQL, where the network dominates.
//!
//! Records are stored as validated JSON bodies keyed by (dataset, record key), indexed by
//! subject. A credit repair recorded by the operator marks the row; a repaired row is
//! never read for an answer again.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use fedq_policy::Record;
use rusqlite::{params, Connection, OptionalExtension};

use crate::config::StoreLocation;
use crate::postgres::PgStore;

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[include_str!("../migrations/sqlite/0001_records.sql")];

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

/// Opens a connection with the node's pragmas and runs pending migrations.
pub fn connect(path: &Path) -> Result<Connection, StoreError> {
    let err = db_err(path);
    let conn = Connection::open(path).map_err(&err)?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000; PRAGMA foreign_keys=ON;",
    )
    .map_err(&err)?;
    let applied: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(&err)?;
    for (i, sql) in MIGRATIONS.iter().enumerate() {
        let version = i64::try_from(i).unwrap_or(i64::MAX) + 1;
        if version > applied {
            conn.execute_batch(&format!(
                "BEGIN; {sql}; PRAGMA user_version = {version}; COMMIT;"
            ))
            .map_err(&err)?;
        }
    }
    Ok(conn)
}

fn db_err(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |e| StoreError::Database {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// The SQLite store.
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    reader: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(Self {
            path: path.to_owned(),
            reader: Mutex::new(connect(path)?),
        })
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every unrepaired record of `subject` in `datasets` (qualified names). One indexed
    /// statement.
    pub fn records_of(
        &self,
        subject: &str,
        datasets: &[&str],
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let err = db_err(&self.path);
        let conn = self.reader.lock().map_err(|_| StoreError::Database {
            path: self.path.display().to_string(),
            reason: "store lock poisoned".into(),
        })?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT dataset, record_key, body FROM records WHERE subject = ?1 AND repaired_at IS NULL",
            )
            .map_err(&err)?;
        let mut rows = stmt.query(params![subject]).map_err(&err)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(&err)? {
            let dataset: String = row.get(0).map_err(&err)?;
            if !datasets.contains(&dataset.as_str()) {
                continue;
            }
            let body: String = row.get(2).map_err(&err)?;
            let record: Record = serde_json::from_str(&body).map_err(|e| StoreError::Corrupt {
                path: self.path.display().to_string(),
                dataset: dataset.clone(),
                key: row.get::<_, String>(1).unwrap_or_default(),
                reason: unreadable(&e),
            })?;
            out.push(StoredRecord { dataset, record });
        }
        Ok(out)
    }

    /// Records a credit repair (seed §十): the record stops being disclosed at once.
    /// Returns the record's subject (for the audit entry's pseudonym).
    pub fn repair(
        &self,
        dataset: &str,
        key: &str,
        reason: &str,
        at: &str,
    ) -> Result<String, StoreError> {
        let err = db_err(&self.path);
        let conn = self.reader.lock().map_err(|_| StoreError::Database {
            path: self.path.display().to_string(),
            reason: "store lock poisoned".into(),
        })?;
        let subject: Option<String> = conn
            .query_row(
                "UPDATE records SET repaired_at = ?3, repair_reason = ?4 WHERE dataset = ?1 AND record_key = ?2 RETURNING subject",
                params![dataset, key, at, reason],
                |r| r.get(0),
            )
            .optional()
            .map_err(&err)?;
        subject.ok_or_else(|| StoreError::NoSuchRecord {
            dataset: dataset.to_owned(),
            key: key.to_owned(),
        })
    }

    /// Number of stored records of a dataset.
    pub fn count(&self, dataset: &str) -> Result<u64, StoreError> {
        let conn = self.reader.lock().map_err(|_| StoreError::Database {
            path: self.path.display().to_string(),
            reason: "store lock poisoned".into(),
        })?;
        conn.query_row(
            "SELECT count(*) FROM records WHERE dataset = ?1",
            params![dataset],
            |r| r.get::<_, i64>(0),
        )
        .map(i64::unsigned_abs)
        .map_err(db_err(&self.path))
    }
}

/// The node's store: SQLite or PostgreSQL, chosen by the config's `store`.
///
/// The SQLite arm runs inline and synchronously (its `async fn`s never yield), so the
/// embedded default's lookup stays one in-thread statement with no hand-off.
#[derive(Debug)]
pub enum Store {
    /// An SQLite file.
    Sqlite(SqliteStore),
    /// A PostgreSQL database.
    Postgres(PgStore),
}

impl Store {
    /// Opens (creating and migrating if needed) the store at `location`.
    pub async fn open(location: &StoreLocation) -> Result<Self, StoreError> {
        match location {
            StoreLocation::Sqlite(path) => SqliteStore::open(path).map(Store::Sqlite),
            StoreLocation::Postgres(url) => PgStore::open(url).await.map(Store::Postgres),
        }
    }

    /// Where the store is (a file, or `postgres://HOST:PORT/DATABASE`), for messages.
    pub fn label(&self) -> String {
        match self {
            Store::Sqlite(s) => s.path().display().to_string(),
            Store::Postgres(p) => p.label().to_owned(),
        }
    }

    /// Every unrepaired record of `subject` in `datasets` (qualified names). One indexed
    /// statement.
    pub async fn records_of(
        &self,
        subject: &str,
        datasets: &[&str],
    ) -> Result<Vec<StoredRecord>, StoreError> {
        match self {
            Store::Sqlite(s) => s.records_of(subject, datasets),
            Store::Postgres(p) => p.records_of(subject, datasets).await,
        }
    }

    /// Records a credit repair; returns the record's subject. `at` is RFC 3339.
    pub async fn repair(
        &self,
        dataset: &str,
        key: &str,
        reason: &str,
        at: &str,
    ) -> Result<String, StoreError> {
        match self {
            Store::Sqlite(s) => s.repair(dataset, key, reason, at),
            Store::Postgres(p) => p.repair(dataset, key, reason, at).await,
        }
    }

    /// Number of stored records of a dataset.
    pub async fn count(&self, dataset: &str) -> Result<u64, StoreError> {
        match self {
            Store::Sqlite(s) => s.count(dataset),
            Store::Postgres(p) => p.count(dataset).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `public-security.identity_basics` is keyed by `resident_id`: a broken record there
    /// must not put the key (or the body) into the error, which the node logs.
    #[test]
    fn an_unreadable_record_is_reported_without_its_key_or_contents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let store = SqliteStore::open(&path).unwrap();
        let id = "430102198001011233";
        let other = "430102198001011241";
        for (body, kind) in [
            (format!("{{\"{id}"), "truncated"),
            (
                format!("{{\"resident_id\": \"{id}\", \"name\": "),
                "not a record",
            ),
            (format!("[\"{other}\"]"), "not a record"),
            (
                format!("{{\"resident_id\": {{\"{other}\": 1}}}}"),
                "not a record",
            ),
        ] {
            let conn = connect(&path).unwrap();
            conn.execute("DELETE FROM records", []).unwrap();
            conn.execute(
                "INSERT INTO records (dataset, record_key, subject, body) VALUES ('public-security.identity_basics', ?1, ?1, ?2)",
                params![id, body],
            )
            .unwrap();
            let err = store
                .records_of(id, &["public-security.identity_basics"])
                .unwrap_err();
            assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
            let text = err.to_string();
            assert!(text.contains(kind), "expected `{kind}` in `{text}`");
            assert!(text.contains("public-security.identity_basics"), "{text}");
            assert!(!text.contains(id) && !text.contains(other), "{text}");
            assert!(!text.contains("430102"), "{text}");
        }
        let err = store
            .repair(
                "public-security.identity_basics",
                other,
                "r",
                "2026-01-01T00:00:00Z",
            )
            .unwrap_err();
        assert!(matches!(err, StoreError::NoSuchRecord { .. }), "{err}");
        assert!(!err.to_string().contains(other), "{err}");
    }
}
