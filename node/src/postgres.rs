//! The node's records on PostgreSQL, for large departments (`store = "postgres://…"`).
//!
//! The same logical schema and operations as the SQLite store ([`crate::store::SqliteStore`]): one row per
//! record keyed by (dataset, record key), indexed by subject, `body` as JSONB. Migrations live
//! in `migrations/postgres/` and are embedded in the binary; they run when the store is
//! opened. The connection is sqlx's (rustls on ring); the network dominates the cost of a
//! lookup here, so sqlx's async driver costs nothing that matters.
//!
//! Nothing here logs or returns a record value or a resident ID; a database URL is shown
//! only as `postgres://HOST:PORT/DATABASE` (never its user or password).

use std::borrow::Cow;
use std::collections::BTreeMap;

use fedq_ops::CheckFailed;
use fedq_policy::Record;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::PgPool;
use sqlx::{Row, SqlSafeStr};

use crate::evidence::Evidence;
use crate::pg::{lazy_pool, pool_options, without};
/// The URL helpers, where callers of this store (the `fedq node` commands) have found them.
pub use crate::pg::{parse_url, redacted};
use crate::stored::{empty_evidence, read_body, unreadable, StoreError, StoredRecord};

/// The schema migrations, embedded: (version, description, SQL).
const MIGRATIONS: &[(i64, &str, &str)] = &[(
    1,
    "records",
    include_str!("../migrations/postgres/0001_records.sql"),
)];

/// The node's store on PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgStore {
    label: String,
    pool: PgPool,
}

impl PgStore {
    /// Connects to the initialised store at `url` and runs the migrations it lacks. A
    /// database without fedq's schema is [`StoreError::NotInitialised`]: only
    /// [`PgStore::create`] (`fedq node init`) creates it.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let store = Self::connect(url).await?;
        if !store.initialised().await? {
            store.close().await;
            return Err(StoreError::NotInitialised {
                store: store.label,
                what: "holds no fedq schema (the database exists, but the store was never initialised)".into(),
            });
        }
        store.migrate().await?;
        Ok(store)
    }

    /// Connects to `url` and runs every migration it lacks, creating the schema in an empty
    /// database: `fedq node init`. Returns whether the schema had to be created.
    pub async fn create(url: &str) -> Result<bool, StoreError> {
        let store = Self::connect(url).await?;
        let created = !store.initialised().await?;
        let migrated = store.migrate().await;
        store.close().await;
        migrated.map(|()| created)
    }

    /// Whether the first migration has run on this database.
    async fn initialised(&self) -> Result<bool, StoreError> {
        let table: Option<String> =
            sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
                .fetch_one(&self.pool)
                .await
                .map_err(|e| self.err(e))?;
        if table.is_none() {
            return Ok(false);
        }
        sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM _sqlx_migrations WHERE version = 1 AND success)",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(|e| self.err(e))
    }

    async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = parse_url(url).map_err(|e| StoreError::Database {
            path: "postgres store".into(),
            reason: e.to_string(),
        })?;
        let label = redacted(&options);
        let pool = pool_options()
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Database {
                path: label.clone(),
                reason: format!("cannot connect: {e}; check the URL, that the server runs and that it accepts this user"),
            })?;
        Ok(Self { label, pool })
    }

    /// A store on `url` whose pool connects on first use, for a node whose store was
    /// already checked with [`PgStore::open`]. Needs a running tokio runtime.
    pub fn open_lazy(url: &str) -> Result<Self, StoreError> {
        let options = parse_url(url).map_err(|e| StoreError::Database {
            path: "postgres store".into(),
            reason: e.to_string(),
        })?;
        let label = redacted(&options);
        let pool = lazy_pool(options).map_err(|e| StoreError::Database {
            path: label.clone(),
            reason: e.to_string(),
        })?;
        Ok(Self { label, pool })
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let migrations = MIGRATIONS
            .iter()
            .map(|(version, description, sql)| {
                Migration::new(
                    *version,
                    Cow::Borrowed(*description),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect();
        Migrator::with_migrations(migrations)
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Database {
                path: self.label.clone(),
                reason: format!("migrations failed: {e}"),
            })
    }

    /// The store as `postgres://HOST:PORT/DATABASE`.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The connection pool (for the importer).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Opens one connection now, so the first lookup does not pay for it.
    pub async fn warm_up(&self) -> Result<(), StoreError> {
        self.pool.acquire().await.map(drop).map_err(|e| self.err(e))
    }

    /// Whether the database answers `SELECT 1` now (within the pool's 1 s wait for a
    /// connection).
    pub async fn check(&self) -> Result<String, CheckFailed> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| format!("PostgreSQL store `{}` answers a read", self.label))
            .map_err(|e| {
                let e = self.err(e);
                CheckFailed::new(format!(
                    "the store: {e}; lookups answer `unavailable` until it is back"
                ))
                .because(e)
            })
    }

    /// Closes the pool's connections.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub(crate) fn err(&self, e: sqlx::Error) -> StoreError {
        StoreError::Database {
            path: self.label.clone(),
            reason: e.to_string(),
        }
    }

    /// Every unrepaired record of `subject` in `datasets` (qualified names). One indexed
    /// statement (prepared once per connection).
    pub async fn records_of(
        &self,
        subject: &str,
        datasets: &[&str],
    ) -> Result<Vec<StoredRecord>, StoreError> {
        if datasets.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT dataset, record_key, body::text FROM records \
             WHERE subject = $1 AND dataset = ANY($2) AND repaired_at IS NULL",
        )
        .bind(subject)
        .bind(datasets)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| StoreError::Database {
            path: self.label.clone(),
            reason: without(&e.to_string(), subject),
        })?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let dataset: String = row.try_get(0).map_err(|e| self.err(e))?;
            let body: String = row.try_get(2).map_err(|e| self.err(e))?;
            let record: Record = serde_json::from_str(&body).map_err(|e| StoreError::Corrupt {
                path: self.label.clone(),
                dataset: dataset.clone(),
                key: row.try_get::<String, _>(1).unwrap_or_default(),
                reason: unreadable(&e),
            })?;
            out.push(StoredRecord { dataset, record });
        }
        Ok(out)
    }

    /// Every unrepaired record of one dataset with its subject, by record key.
    pub async fn records_in(&self, dataset: &str) -> Result<Vec<(String, Record)>, StoreError> {
        let rows = sqlx::query(
            "SELECT subject, record_key, body::text FROM records \
             WHERE dataset = $1 AND repaired_at IS NULL ORDER BY record_key",
        )
        .bind(dataset)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let subject: String = row.try_get(0).map_err(|e| self.err(e))?;
            let body: String = row.try_get(2).map_err(|e| self.err(e))?;
            let record: Record = serde_json::from_str(&body).map_err(|e| StoreError::Corrupt {
                path: self.label.clone(),
                dataset: dataset.to_owned(),
                key: row.try_get::<String, _>(1).unwrap_or_default(),
                reason: unreadable(&e),
            })?;
            out.push((subject, record));
        }
        Ok(out)
    }

    /// What the store holds about `subject` in each of `datasets`, for an answer: a
    /// dataset with a body that cannot be read back as a record is unverified. One indexed
    /// statement.
    pub async fn evidence_of(
        &self,
        subject: &str,
        datasets: &[&str],
    ) -> Result<BTreeMap<String, Evidence>, StoreError> {
        let mut out = empty_evidence(datasets);
        if datasets.is_empty() {
            return Ok(out);
        }
        let rows = sqlx::query(
            "SELECT dataset, body::text FROM records \
             WHERE subject = $1 AND dataset = ANY($2) AND repaired_at IS NULL",
        )
        .bind(subject)
        .bind(datasets)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| StoreError::Database {
            path: self.label.clone(),
            reason: without(&e.to_string(), subject),
        })?;
        for row in rows {
            let dataset: String = row.try_get(0).map_err(|e| self.err(e))?;
            let body: Option<String> = row.try_get(1).ok();
            if let Some(evidence) = out.get_mut(&dataset) {
                read_body(&dataset, body.as_deref(), evidence);
            }
        }
        Ok(out)
    }

    /// Records a credit repair (长政办发〔2017〕62号 §十): the record stops being disclosed at once.
    /// Returns the record's subject (for the audit entry's pseudonym). `at` is RFC 3339.
    pub async fn repair(
        &self,
        dataset: &str,
        key: &str,
        reason: &str,
        at: &str,
    ) -> Result<String, StoreError> {
        let subject: Option<String> = sqlx::query_scalar(
            "UPDATE records SET repaired_at = $3::timestamptz, repair_reason = $4 \
             WHERE dataset = $1 AND record_key = $2 RETURNING subject",
        )
        .bind(dataset)
        .bind(key)
        .bind(at)
        .bind(reason)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| StoreError::Database {
            path: self.label.clone(),
            reason: without(&e.to_string(), key),
        })?;
        subject.ok_or_else(|| StoreError::NoSuchRecord {
            dataset: dataset.to_owned(),
            key: key.to_owned(),
        })
    }

    /// Reverses a recorded repair of one record (it is disclosed again under the window).
    pub async fn unrepair(&self, dataset: &str, key: &str) -> Result<String, StoreError> {
        let subject: Option<String> = sqlx::query_scalar(
            "UPDATE records SET repaired_at = NULL, repair_reason = NULL \
             WHERE dataset = $1 AND record_key = $2 RETURNING subject",
        )
        .bind(dataset)
        .bind(key)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| StoreError::Database {
            path: self.label.clone(),
            reason: without(&e.to_string(), key),
        })?;
        subject.ok_or_else(|| StoreError::NoSuchRecord {
            dataset: dataset.to_owned(),
            key: key.to_owned(),
        })
    }

    /// Number of stored records of a dataset.
    pub async fn count(&self, dataset: &str) -> Result<u64, StoreError> {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM records WHERE dataset = $1")
            .bind(dataset)
            .fetch_one(&self.pool)
            .await
            .map(i64::unsigned_abs)
            .map_err(|e| self.err(e))
    }
}

/// Upserts one batch of validated rows inside `tx` as a single statement (arrays unnested
/// server-side), returning how many rows were inserted or changed. Rows must have distinct
/// record keys (the importer keeps the last of duplicates within a batch).
pub(crate) async fn upsert_batch(
    tx: &mut sqlx::PgConnection,
    label: &str,
    dataset: &str,
    keys: &[String],
    subjects: &[String],
    bodies: &[String],
) -> Result<u64, StoreError> {
    if keys.is_empty() {
        return Ok(0);
    }
    sqlx::query(
        "INSERT INTO records (dataset, record_key, subject, body) \
         SELECT $1, k, s, b::jsonb FROM UNNEST($2::text[], $3::text[], $4::text[]) AS t(k, s, b) \
         ON CONFLICT (dataset, record_key) DO UPDATE SET subject = excluded.subject, body = excluded.body \
         WHERE records.body IS DISTINCT FROM excluded.body OR records.subject IS DISTINCT FROM excluded.subject",
    )
    .bind(dataset)
    .bind(keys)
    .bind(subjects)
    .bind(bodies)
    .execute(tx)
    .await
    .map(|r| r.rows_affected())
    .map_err(|e| StoreError::Database {
        path: label.to_owned(),
        reason: e.to_string(),
    })
}
