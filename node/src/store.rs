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
//!
//! A store comes into being only through [`Store::init`] (`fedq node init`): opening one
//! that does not exist, or that was never initialised, is an error, so a mistyped `store`
//! path can never serve an empty store as if the department had no records. Opening an
//! initialised store still runs the migrations it lacks (an upgrade, not a creation).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use fedq_ops::CheckFailed;
use fedq_policy::Record;
use rusqlite::{params, Connection, OptionalExtension};

use crate::config::StoreLocation;
use crate::evidence::Evidence;
use crate::postgres::PgStore;
use crate::stored::{empty_evidence, read_body, unreadable};
pub use crate::stored::{StoreError, StoredRecord};

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[include_str!("../migrations/sqlite/0001_records.sql")];

/// Opens a connection to an existing, initialised store with the node's pragmas, and
/// runs the migrations it lacks. Never creates a file: a store that does not exist or was
/// never initialised is [`StoreError::NotInitialised`]. The file and its `-wal` and `-shm`
/// are owner-only (0600) whatever the umask: they hold records.
pub fn connect(path: &Path) -> Result<Connection, StoreError> {
    let missing = |what: &str| StoreError::NotInitialised {
        store: path.display().to_string(),
        what: what.to_owned(),
    };
    if !path.is_file() {
        return Err(missing(if path.exists() {
            "is not a file"
        } else {
            "does not exist"
        }));
    }
    // Tighten a file (and its -wal/-shm) that others can read; it exists, so nothing is created.
    fedq_certs::fsutil::prepare_private_database(path).map_err(|e| StoreError::Database {
        path: path.display().to_string(),
        reason: format!("cannot make it owner-only: {e}"),
    })?;
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
        | rusqlite::OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags).map_err(db_err(path))?;
    migrate(&conn, path, false)?;
    Ok(conn)
}

/// Creates the store at `path` (and its directory) if it does not exist, and runs every
/// migration it lacks: `fedq node init`. Returns whether the schema had to be created.
pub fn create(path: &Path) -> Result<bool, StoreError> {
    // The directory (if missing) 0700, the file and its `-wal`/`-shm` 0600, before SQLite
    // creates anything with the umask's modes.
    fedq_certs::fsutil::prepare_private_database(path).map_err(|e| StoreError::Database {
        path: path.display().to_string(),
        reason: format!("cannot create it owner-only: {e}"),
    })?;
    let conn = Connection::open(path).map_err(db_err(path))?;
    migrate(&conn, path, true)
}

/// Sets the node's pragmas and runs pending migrations; a store with none applied is
/// initialised only when `create` says so. Returns whether it was.
fn migrate(conn: &Connection, path: &Path, create: bool) -> Result<bool, StoreError> {
    let err = db_err(path);
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000; PRAGMA foreign_keys=ON;",
    )
    .map_err(&err)?;
    let applied: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(&err)?;
    if applied == 0 && !create {
        return Err(StoreError::NotInitialised {
            store: path.display().to_string(),
            what: "was never initialised (it holds no fedq schema)".into(),
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate() {
        let version = i64::try_from(i).unwrap_or(i64::MAX) + 1;
        if version > applied {
            conn.execute_batch(&format!(
                "BEGIN; {sql}; PRAGMA user_version = {version}; COMMIT;"
            ))
            .map_err(&err)?;
        }
    }
    Ok(applied == 0)
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
    /// The file opened, to notice it removed or replaced under the running node.
    file: fedq_certs::fsutil::FileIdentity,
}

impl SqliteStore {
    /// Opens the existing store at `path`, running the migrations it lacks (see
    /// [`connect`]).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let reader = Mutex::new(connect(path)?);
        let file =
            fedq_certs::fsutil::FileIdentity::of(path).map_err(|e| StoreError::Database {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            path: path.to_owned(),
            reader,
            file,
        })
    }

    /// Whether the store answers a cheap read, and is still the file at its path (a node
    /// keeps reading a file removed under it, which the next start cannot find). The
    /// error names the file and what to do, never a record.
    pub fn check(&self) -> Result<String, CheckFailed> {
        let shown = self.path.display();
        let conn = self.reader.lock().map_err(|_| {
            CheckFailed::new(format!(
                "the store `{shown}` is unusable (its lock is poisoned); restart the node"
            ))
        })?;
        conn.query_row(
            "SELECT COUNT(*) FROM (SELECT 1 FROM records LIMIT 1)",
            [],
            |row| row.get::<_, i64>(0),
        )
        .map_err(|e| {
            CheckFailed::new(format!("the store `{shown}` cannot be read: {e}")).because(e)
        })?;
        drop(conn);
        self.file
            .still_at(&self.path, "the store")
            .map_err(CheckFailed::of)?;
        Ok(format!("SQLite store `{shown}` answers a read"))
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

    /// Every unrepaired record of one dataset (qualified name) with its subject, by record
    /// key: for a publication or a statistic, which read a whole dataset. A body that does
    /// not read back as a record is an error (never a record left out).
    pub fn records_in(&self, dataset: &str) -> Result<Vec<(String, Record)>, StoreError> {
        let err = db_err(&self.path);
        let conn = self.reader.lock().map_err(|_| StoreError::Database {
            path: self.path.display().to_string(),
            reason: "store lock poisoned".into(),
        })?;
        let mut stmt = conn
            .prepare(
                "SELECT subject, record_key, body FROM records WHERE dataset = ?1 AND repaired_at IS NULL ORDER BY record_key",
            )
            .map_err(&err)?;
        let mut rows = stmt.query(params![dataset]).map_err(&err)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(&err)? {
            let subject: String = row.get(0).map_err(&err)?;
            let body: String = row.get(2).map_err(&err)?;
            let record: Record = serde_json::from_str(&body).map_err(|e| StoreError::Corrupt {
                path: self.path.display().to_string(),
                dataset: dataset.to_owned(),
                key: row.get::<_, String>(1).unwrap_or_default(),
                reason: unreadable(&e),
            })?;
            out.push((subject, record));
        }
        Ok(out)
    }

    /// What the store holds about `subject` in each of `datasets` (qualified names), for
    /// an answer: a dataset with a stored body that cannot be read back as a record is
    /// [`Evidence::Unverified`] (never silently short of that record). One indexed
    /// statement.
    pub fn evidence_of(
        &self,
        subject: &str,
        datasets: &[&str],
    ) -> Result<BTreeMap<String, Evidence>, StoreError> {
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
        let mut out = empty_evidence(datasets);
        while let Some(row) = rows.next().map_err(&err)? {
            let dataset: String = row.get(0).map_err(&err)?;
            let Some(evidence) = out.get_mut(&dataset) else {
                continue;
            };
            let body = row.get_ref(2).ok().and_then(|v| v.as_str().ok());
            read_body(&dataset, body, evidence);
        }
        Ok(out)
    }

    /// Records a credit repair (长政办发〔2017〕62号 §十): the record stops being disclosed at once.
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

    /// Reverses a recorded repair of one record (it is disclosed again under the window).
    pub fn unrepair(&self, dataset: &str, key: &str) -> Result<String, StoreError> {
        let err = db_err(&self.path);
        let conn = self.reader.lock().map_err(|_| StoreError::Database {
            path: self.path.display().to_string(),
            reason: "store lock poisoned".into(),
        })?;
        let subject: Option<String> = conn
            .query_row(
                "UPDATE records SET repaired_at = NULL, repair_reason = NULL WHERE dataset = ?1 AND record_key = ?2 RETURNING subject",
                params![dataset, key],
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
    /// Opens the existing store at `location`, running the migrations it lacks. A store
    /// that does not exist or was never initialised is [`StoreError::NotInitialised`].
    pub async fn open(location: &StoreLocation) -> Result<Self, StoreError> {
        match location {
            StoreLocation::Sqlite(path) => SqliteStore::open(path).map(Store::Sqlite),
            StoreLocation::Postgres(url) => PgStore::open(url).await.map(Store::Postgres),
        }
    }

    /// Creates the store at `location` if needed and runs every migration it lacks
    /// (`fedq node init`). Returns whether the schema had to be created; running it on an
    /// initialised store changes nothing.
    pub async fn init(location: &StoreLocation) -> Result<bool, StoreError> {
        match location {
            StoreLocation::Sqlite(path) => create(path),
            StoreLocation::Postgres(url) => PgStore::create(url).await,
        }
    }

    /// Where the store is (a file, or `postgres://HOST:PORT/DATABASE`), for messages.
    pub fn label(&self) -> String {
        match self {
            Store::Sqlite(s) => s.path().display().to_string(),
            Store::Postgres(p) => p.label().to_owned(),
        }
    }

    /// Whether the store answers a cheap read now (for `/health`); the error says what
    /// is wrong, never a record.
    pub async fn check(&self) -> Result<String, CheckFailed> {
        match self {
            Store::Sqlite(s) => s.check(),
            Store::Postgres(p) => p.check().await,
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

    /// Every unrepaired record of one dataset with its subject (see
    /// [`SqliteStore::records_in`]).
    pub async fn records_in(&self, dataset: &str) -> Result<Vec<(String, Record)>, StoreError> {
        match self {
            Store::Sqlite(s) => s.records_in(dataset),
            Store::Postgres(p) => p.records_in(dataset).await,
        }
    }

    /// What the store holds about `subject` in each of `datasets`, for an answer (see
    /// [`SqliteStore::evidence_of`]). One indexed statement.
    pub async fn evidence_of(
        &self,
        subject: &str,
        datasets: &[&str],
    ) -> Result<BTreeMap<String, Evidence>, StoreError> {
        match self {
            Store::Sqlite(s) => s.evidence_of(subject, datasets),
            Store::Postgres(p) => p.evidence_of(subject, datasets).await,
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

    /// Reverses a recorded repair of one record.
    pub async fn unrepair(&self, dataset: &str, key: &str) -> Result<String, StoreError> {
        match self {
            Store::Sqlite(s) => s.unrepair(dataset, key),
            Store::Postgres(p) => p.unrepair(dataset, key).await,
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
        create(&path).unwrap();
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
