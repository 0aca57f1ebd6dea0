//! The department's side of aggregate queries (issue 20 §2): the privacy-budget ledger,
//! each requester's ε spent per period in `statistics_state` (SQLite, owner-only, one
//! immediate transaction per spend so that two queries cannot both spend the last of a
//! budget), and the counting of its own datasets for a query
//! ([`fedq_policy::statistics`] does the counting and the noise; this module reads).
//!
//! A query's ε is spent **before** anything is counted: a query that then fails has
//! still spent it (the conservative side), and a spent budget answers the remaining ε
//! and the day it renews.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use fedq_policy::statistics::{AggregateTarget, CellKey, MicroEpsilon, Statistics};
use rusqlite::{params, Connection, OptionalExtension};

/// The ledger could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("the statistics ledger `{path}`: {reason}")]
pub struct LedgerError {
    path: String,
    reason: fedq_audit::Cause,
}

/// What a spend came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spend {
    /// Spent; this much is left this period.
    Paid {
        /// ε left (millionths).
        left: MicroEpsilon,
    },
    /// Not enough left; nothing was spent.
    Refused {
        /// ε left (millionths).
        left: MicroEpsilon,
    },
}

/// Each requester's ε spent per period at this node.
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl Ledger {
    /// Opens (creating, owner-only) the ledger.
    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        let err = |e: rusqlite::Error| LedgerError {
            path: path.display().to_string(),
            reason: fedq_audit::Cause::of(e),
        };
        fedq_certs::fsutil::prepare_private_database(path).map_err(|e| LedgerError {
            path: path.display().to_string(),
            reason: fedq_audit::Cause::of(e),
        })?;
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
             CREATE TABLE IF NOT EXISTS spent (
                 requester TEXT NOT NULL,
                 period TEXT NOT NULL,
                 epsilon INTEGER NOT NULL,
                 PRIMARY KEY (requester, period)
             );",
        )
        .map_err(err)?;
        Ok(Self {
            path: path.to_owned(),
            conn: Mutex::new(conn),
        })
    }

    fn err(&self, e: rusqlite::Error) -> LedgerError {
        LedgerError {
            path: self.path.display().to_string(),
            reason: fedq_audit::Cause::of(e),
        }
    }

    /// Spends `cost` of `requester`'s `budget` in `period`, durably, if it is left.
    pub fn spend(
        &self,
        requester: &str,
        period: &str,
        cost: MicroEpsilon,
        budget: MicroEpsilon,
    ) -> Result<Spend, LedgerError> {
        let mut conn = self.conn.lock().map_err(|_| LedgerError {
            path: self.path.display().to_string(),
            reason: "lock poisoned".into(),
        })?;
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let spent: i64 = tx
            .query_row(
                "SELECT epsilon FROM spent WHERE requester = ?1 AND period = ?2",
                params![requester, period],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?
            .unwrap_or(0);
        let spent = u64::try_from(spent).unwrap_or(u64::MAX);
        let left = budget.saturating_sub(spent);
        if cost > left {
            return Ok(Spend::Refused { left });
        }
        let now = spent.saturating_add(cost);
        tx.execute(
            "INSERT INTO spent (requester, period, epsilon) VALUES (?1, ?2, ?3)
             ON CONFLICT (requester, period) DO UPDATE SET epsilon = excluded.epsilon",
            params![requester, period, i64::try_from(now).unwrap_or(i64::MAX)],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(Spend::Paid { left: left - cost })
    }
}

/// This department's datasets of `target` (in the order asked).
pub fn own_datasets<'t>(department: &str, target: &'t AggregateTarget) -> Vec<&'t str> {
    let prefix = format!("{department}.");
    target
        .datasets
        .iter()
        .filter(|d| d.starts_with(&prefix))
        .map(String::as_str)
        .collect()
}

/// The true counts of this department's datasets of `target` at `today`, read from the
/// store (repaired records are not read), the rights file's marks applied (removed and
/// disputed records left out, corrections applied). A dataset the catalogue does not hold
/// or that is attached is an error naming it.
pub async fn count(
    sources: &crate::source::Sources,
    catalogue: &[fedq_policy::Dataset],
    rights: &crate::rights::RightsFile,
    statistics: &Statistics,
    target: &AggregateTarget,
    datasets: &[&str],
    today: time::Date,
) -> Result<std::collections::BTreeMap<CellKey, u64>, String> {
    let marks = rights
        .all_marks()
        .map_err(|_| "its rights file is unavailable".to_owned())?;
    let mut cells = std::collections::BTreeMap::new();
    for name in datasets {
        let dataset = catalogue
            .iter()
            .find(|d| d.qualified == *name)
            .ok_or_else(|| format!("it holds no dataset `{name}`"))?;
        if sources.is_attached(name) {
            return Err(format!(
                "dataset `{name}` is attached to the department's own database; aggregate counts read imported datasets only"
            ));
        }
        let records = sources
            .store()
            .records_in(name)
            .await
            .map_err(|_| format!("its store could not be read for `{name}`"))?;
        // The marks are by (dataset, record key): subjects are kept beside the records.
        let (subjects, records): (Vec<String>, Vec<_>) = records.into_iter().unzip();
        let keyed: Vec<(String, fedq_policy::Record)> = subjects
            .into_iter()
            .zip(records)
            .filter_map(|(subject, record)| {
                let (clean, _) = crate::rights::overlay(dataset, vec![record], &marks);
                clean.into_iter().next().map(|r| (subject, r))
            })
            .collect();
        cells.extend(statistics.count_cells(dataset, target, &keyed, today));
    }
    Ok(cells)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_budget_is_spent_once_and_refused_with_what_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join("s.db")).unwrap();
        let spend = |cost| {
            ledger
                .spend("statistics.bureau", "2026-12", cost, 2_000_000)
                .unwrap()
        };
        assert_eq!(spend(500_000), Spend::Paid { left: 1_500_000 });
        assert_eq!(spend(1_500_000), Spend::Paid { left: 0 });
        assert_eq!(spend(1), Spend::Refused { left: 0 });
        // Another period, another budget; kept across a reopen.
        drop(ledger);
        let ledger = Ledger::open(&dir.path().join("s.db")).unwrap();
        assert_eq!(
            ledger
                .spend("statistics.bureau", "2026-12", 1, 2_000_000)
                .unwrap(),
            Spend::Refused { left: 0 }
        );
        assert_eq!(
            ledger
                .spend("statistics.bureau", "2027-01", 500_000, 2_000_000)
                .unwrap(),
            Spend::Paid { left: 1_500_000 }
        );
    }
}
