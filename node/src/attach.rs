//! Attach mode: a dataset answered from the department's **own** PostgreSQL tables through
//! a read-only query, so the department need not copy anything into fedq.
//!
//! ```toml
//! [[attach]]
//! dataset = "court.dishonest_debtors"
//! database = "postgres://fedq_reader@db.court.internal/enforcement"
//! query = """
//! SELECT case_no, id_number AS resident_id, listed_on, removed_on, performance_status
//! FROM enforcement.dishonest WHERE id_number = $1"""
//! ```
//!
//! - The query takes the subject's resident ID as `$1` and names its columns after the
//!   dataset's catalogue fields (alias with `AS`). At start the node prepares it on the live
//!   database: a column that is not a field, a missing required field (the dataset's key,
//!   subject and required fields) or a wrong parameter count is a config error, found before
//!   the socket is bound.
//! - Every column is read as text (the node wraps the query and casts each column with
//!   `::text`) and validated with [`fedq_policy::Value::parse`] against its field. A row
//!   with an invalid value, an empty required field, or about another person than the one
//!   asked for (a mapping mistake) makes the dataset *unverified* for that lookup
//!   ([`Evidence::Unverified`]), with a warning naming the dataset and field, never the
//!   value: nothing of it is released, and the requester is told it could not be checked
//!   rather than "no record".
//! - The database is never written to: sessions run with `default_transaction_read_only`
//!   and a statement timeout; operators should also connect as a role granted `SELECT` only.
//! - Attached datasets have no operator credit repair (`fedq node repair`) and no import:
//!   the department's own system is the record of truth; repair by status (the catalogue's
//!   `repair` field) and the statutory window are enforced as for stored records.

use std::collections::BTreeSet;

use fedq_policy::catalogue::Dataset;
use fedq_policy::{Catalogue, Record, Value};
use sqlx::postgres::{PgConnectOptions, PgPool, PgTypeInfo};
use sqlx::{AssertSqlSafe, Column, Either, Executor, Row, SqlSafeStr, SqlStr, Statement};

use crate::config::AttachSpec;
use crate::evidence::Evidence;

/// How long one attached query may run on the department's database.
pub const STATEMENT_TIMEOUT: &str = "5s";

/// Attach-mode errors. Messages name datasets, fields and columns, never values.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// The `[[attach]]` entry does not fit the catalogue or the database.
    #[error("[[attach]] `{dataset}`: {reason}")]
    Config {
        /// The dataset as written in the config.
        dataset: String,
        /// What is wrong and what to do.
        reason: String,
        /// The error it comes from (the URL's, the database's), if any; none for a
        /// mapping that does not fit the catalogue.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The department's database failed while answering.
    #[error("attached dataset `{dataset}` ({database}): {reason}")]
    Query {
        /// The qualified dataset.
        dataset: String,
        /// `postgres://HOST:PORT/DATABASE`.
        database: String,
        /// What failed.
        reason: String,
        /// The error it comes from, if no subject was part of the query: a database's
        /// error about a lookup may quote the resident ID, so only `reason` (with the ID
        /// blanked out) is kept of it.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

/// A dataset mapped onto the department's database, checked and ready to answer.
#[derive(Debug, Clone)]
pub struct Attached {
    dataset: Dataset,
    database: String,
    options: PgConnectOptions,
    pool: PgPool,
    sql: SqlStr,
    /// For each column of `sql`, the index of its field in `dataset.fields`.
    fields: Vec<usize>,
}

/// The catalogue dataset an `[[attach]]` entry names (`court.x` or `x`).
pub fn dataset_of<'c>(
    spec: &AttachSpec,
    catalogue: &'c Catalogue,
) -> Result<&'c Dataset, AttachError> {
    let local = match spec.dataset.split_once('.') {
        Some((dept, local)) if dept == catalogue.department => local,
        Some((dept, _)) => {
            return Err(AttachError::Config {
                dataset: spec.dataset.clone(),
                reason: format!(
                    "department `{dept}` is not this node's (`{}`); attach only this department's datasets",
                    catalogue.department
                ),
                source: None,
            })
        }
        None => spec.dataset.as_str(),
    };
    catalogue.dataset(local).ok_or_else(|| AttachError::Config {
        dataset: spec.dataset.clone(),
        reason: format!(
            "not a dataset of the catalogue (datasets: {})",
            catalogue
                .datasets
                .iter()
                .map(|d| d.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        source: None,
    })
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl Attached {
    /// Checks `spec` against the catalogue and the live database (connects, prepares the
    /// query, checks its parameter and columns) and keeps the connection pool.
    pub async fn open(spec: &AttachSpec, catalogue: &Catalogue) -> Result<Self, AttachError> {
        let dataset = dataset_of(spec, catalogue)?.clone();
        let config = |reason: String| AttachError::Config {
            dataset: spec.dataset.clone(),
            reason,
            source: None,
        };
        let because =
            |reason: String, error: Box<dyn std::error::Error + Send + Sync>| AttachError::Config {
                dataset: spec.dataset.clone(),
                reason,
                source: Some(error),
            };
        let options = crate::pg::parse_url(&spec.database)
            .map_err(|e| because(format!("`database`: {e}"), e.into()))?
            .options([
                ("default_transaction_read_only", "on"),
                ("statement_timeout", STATEMENT_TIMEOUT),
                // Dates as text are `YYYY-MM-DD` whatever the database's own default.
                ("DateStyle", "ISO, YMD"),
            ]);
        let database = crate::pg::redacted(&options);
        let pool = crate::pg::pool_options()
            .connect_with(options.clone())
            .await
            .map_err(|e| {
                because(format!(
                    "cannot connect to {database}: {e}; check `database`, that the server runs and that it accepts this user"
                ), e.into())
            })?;
        let query = spec.query.trim().trim_end_matches(';').trim_end();
        let described = pool
            .prepare(AssertSqlSafe(query.to_owned()).into_sql_str())
            .await
            .map_err(|e| {
                because(
                    format!("the query does not prepare on {database}: {e}"),
                    e.into(),
                )
            })?;
        let params = match described.parameters() {
            Some(Either::Left(types)) => types.len(),
            Some(Either::Right(n)) => n,
            None => 0,
        };
        if params != 1 {
            return Err(config(format!(
                "the query takes {params} parameters; it must take exactly one, `$1`, the subject's resident ID"
            )));
        }
        let mut seen = BTreeSet::new();
        let mut fields = Vec::new();
        for column in described.columns() {
            let name = column.name();
            let Some(index) = dataset.fields.iter().position(|f| f.name == name) else {
                return Err(config(format!(
                    "the query's column `{name}` is not a field of `{}` (fields: {}); rename it with AS, or drop it",
                    dataset.qualified,
                    dataset.fields.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", ")
                )));
            };
            if !seen.insert(name.to_owned()) {
                return Err(config(format!("the query returns column `{name}` twice")));
            }
            fields.push(index);
        }
        for f in &dataset.fields {
            let needed = f.required || f.name == dataset.key || f.name == dataset.subject;
            if needed && !seen.contains(&f.name) {
                return Err(config(format!(
                    "required column `{}` is missing from the query (a required field, the key or the subject of `{}`)",
                    f.name, dataset.qualified
                )));
            }
        }
        let columns: Vec<String> = fields
            .iter()
            .filter_map(|&i| dataset.fields.get(i))
            .map(|f| {
                let q = quote_ident(&f.name);
                format!("fedq_attached.{q}::text AS {q}")
            })
            .collect();
        let wrapped = format!(
            "SELECT {} FROM (\n{query}\n) AS fedq_attached",
            columns.join(", ")
        );
        pool.prepare_with(
            AssertSqlSafe(wrapped.clone()).into_sql_str(),
            &[PgTypeInfo::with_name("text")],
        )
        .await
        .map_err(|e| {
            because(format!(
                "the query cannot serve as a read-only subquery taking the resident ID as text in `$1` ({e}); compare `$1` with a text column (or cast it), and do not modify data"
            ), e.into())
        })?;
        Ok(Self {
            dataset,
            database,
            options,
            pool,
            sql: AssertSqlSafe(wrapped).into_sql_str(),
            fields,
        })
    }

    /// The same mapping on a new pool that connects on first use, in the current tokio
    /// runtime (the node checks its mappings on a helper runtime before binding its socket,
    /// then serves on its own).
    pub fn reopen_lazily(&self) -> Result<Self, AttachError> {
        let pool = crate::pg::lazy_pool(self.options.clone()).map_err(|e| AttachError::Query {
            dataset: self.dataset.qualified.clone(),
            database: self.database.clone(),
            reason: e.to_string(),
            source: Some(e.into()),
        })?;
        Ok(Self {
            pool,
            ..self.clone()
        })
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Opens one connection now, so the first lookup does not pay for it.
    pub async fn warm_up(&self) -> Result<(), AttachError> {
        self.pool.acquire().await.map(drop).map_err(|e| self.err(e))
    }

    /// The catalogue dataset.
    pub fn dataset(&self) -> &Dataset {
        &self.dataset
    }

    /// `postgres://HOST:PORT/DATABASE`.
    pub fn database(&self) -> &str {
        &self.database
    }

    fn err(&self, e: sqlx::Error) -> AttachError {
        AttachError::Query {
            dataset: self.dataset.qualified.clone(),
            database: self.database.clone(),
            reason: e.to_string(),
            source: Some(e.into()),
        }
    }

    /// A query error, with the subject's ID blanked out should the database have quoted
    /// it (e.g. a mapping that casts `$1` to a number fails on an `X` check character).
    fn query_err(&self, e: sqlx::Error, subject: &str) -> AttachError {
        AttachError::Query {
            dataset: self.dataset.qualified.clone(),
            database: self.database.clone(),
            reason: crate::pg::without(&e.to_string(), subject),
            source: None,
        }
    }

    /// What the department's database holds about `subject`: one query. A row that
    /// cannot be read as the catalogue says (a value not of its field's type, a required
    /// field empty) or that is about another person makes the dataset
    /// [`Evidence::Unverified`] — never a silently shorter list that would read as "no
    /// record". The warning names the dataset and field, never the value.
    pub async fn records_of(&self, subject: &str) -> Result<Evidence, AttachError> {
        let rows = sqlx::query(self.sql.clone())
            .bind(subject)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.query_err(e, subject))?;
        let ds = &self.dataset;
        let mut out = Evidence::Records(Vec::with_capacity(rows.len()));
        let unreadable = |field: &str, why: &str| {
            format!(
                "a row of attached dataset `{}` cannot be read: field `{field}` {why}",
                ds.qualified
            )
        };
        for row in rows {
            let mut record = Record::new();
            let mut bad = None;
            for (column, &index) in self.fields.iter().enumerate() {
                let Some(field) = ds.fields.get(index) else {
                    continue;
                };
                let text: Option<String> = row
                    .try_get(column)
                    .map_err(|e| self.query_err(e, subject))?;
                let needed = field.required || field.name == ds.key || field.name == ds.subject;
                match Value::parse(text.as_deref().unwrap_or(""), field) {
                    Ok(Some(v)) => {
                        record.insert(field.name.clone(), v);
                    }
                    Ok(None) if needed => {
                        tracing::warn!(dataset = %ds.qualified, field = %field.name, "attached row unreadable: required field is empty; the dataset is answered as unverified");
                        bad = Some(unreadable(&field.name, "is empty but required"));
                        break;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(dataset = %ds.qualified, field = %field.name, expected = %e.expected, "attached row unreadable: value is not of the field's type; the dataset is answered as unverified");
                        bad = Some(unreadable(
                            &field.name,
                            &format!("is not a valid {}", e.expected),
                        ));
                        break;
                    }
                }
            }
            if bad.is_none() && record.get(&ds.subject).and_then(Value::as_text) != Some(subject) {
                tracing::warn!(dataset = %ds.qualified, field = %ds.subject, "attached row about another person than the one asked for; the query must filter on `$1`; the dataset is answered as unverified");
                bad = Some(format!(
                    "the attached query for `{}` returned a row about another person (field `{}`); it must filter on `$1`",
                    ds.qualified, ds.subject
                ));
            }
            match bad {
                Some(why) => out.unverified(why),
                None => out.push(record),
            }
        }
        Ok(out)
    }
}
