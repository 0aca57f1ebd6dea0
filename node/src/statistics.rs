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

/// What opened this department's part of an aggregate query (the service's admission:
/// proof, date, policy, rate limit, budget).
#[derive(Debug)]
pub struct Admitted {
    pub(crate) requester: String,
    pub(crate) statistics: Statistics,
    /// This department's datasets counted (one, for a cross count).
    pub(crate) datasets: Vec<String>,
    pub(crate) left: MicroEpsilon,
    pub(crate) renews_on: time::Date,
    pub(crate) period: String,
    pub(crate) today: time::Date,
}

/// How long a cross count opened here (its `Blind` step) waits for its `Count` step.
pub const CROSS_LIFETIME: std::time::Duration = std::time::Duration::from_secs(60);

/// The most cross counts open at once; the oldest is dropped for a new one.
pub const MAX_OPEN_CROSSES: usize = 64;

/// A cross count this node opened as the counting department: its exponent (never sent),
/// the salt, how many points it sent, the other department, and what admitted it.
#[derive(Debug)]
pub struct OpenCross {
    pub(crate) blinder: fedq_wire::psi::Blinder,
    pub(crate) salt: String,
    pub(crate) sent: usize,
    pub(crate) other: String,
    pub(crate) admitted: Admitted,
    /// The request `Blind` admitted: the `Count` step releases and registers under it,
    /// never under what that step's request says.
    pub(crate) request: fedq_wire::message::AggregateRequest,
    /// The SHA-256 of the blinded set sent.
    pub(crate) sent_sha256: String,
    pub(crate) opened: std::time::Instant,
}

/// What both departments of a cross count bind their sets to: SHA-256 (hex) of the
/// query's requester, purpose, legal basis and target.
pub fn query_binding(request: &fedq_wire::message::AggregateRequest) -> String {
    let bytes = serde_json::to_vec(&(
        &request.requester,
        &request.purpose,
        &request.legal_basis,
        &request.target,
    ))
    .unwrap_or_default();
    ring::digest::digest(&ring::digest::SHA256, &bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The cross counts open here, by handle; each taken once, within [`CROSS_LIFETIME`].
#[derive(Debug, Default)]
pub struct OpenCrosses(Mutex<std::collections::HashMap<String, OpenCross>>);

impl OpenCrosses {
    /// Keeps `open` under `handle` (dropping the expired, and the oldest when full).
    pub fn open(&self, handle: String, open: OpenCross) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, c| c.opened.elapsed() < CROSS_LIFETIME);
        if map.len() >= MAX_OPEN_CROSSES {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, c)| c.opened)
                .map(|(h, _)| h.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(handle, open);
    }

    /// Takes the count open under `handle`, if it is still within its lifetime.
    pub fn take(&self, handle: &str) -> Option<OpenCross> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(handle)
            .filter(|c| c.opened.elapsed() < CROSS_LIFETIME)
    }
}

/// How far a signed set's `iat` may be from now.
const SET_SKEW_SECS: u64 = 300;

/// Signs a point set for a cross count with the node's certificate key.
#[allow(clippy::too_many_arguments)]
pub fn sign_set(
    key: &fedq_certs::jws::CertificateKey,
    node: &str,
    kind: &str,
    salt: &str,
    query: &str,
    input: &str,
    points: Vec<[u8; 32]>,
    now: u64,
) -> Result<fedq_wire::psi::SignedSet, String> {
    let claims = fedq_wire::psi::SetClaims {
        node: node.to_owned(),
        kind: kind.to_owned(),
        salt: salt.to_owned(),
        count: points.len() as u64,
        sha256: fedq_wire::psi::points_digest(&points),
        query: query.to_owned(),
        input: input.to_owned(),
        iat: now,
    };
    let payload = serde_json::to_vec(&claims).map_err(|e| e.to_string())?;
    let signature = fedq_certs::jws::sign_es256(key, fedq_wire::psi::SET_TYP, &payload)
        .map_err(|e| e.to_string())?;
    Ok(fedq_wire::psi::SignedSet { points, signature })
}

/// Verifies a point set: signed by the node certificate of department `node` of this
/// federation (unrevoked, under a fresh CRL), of `kind`, for the query `query`, under
/// `salt` when given, its points the ones signed, signed within [`SET_SKEW_SECS`].
/// Returns the claims.
#[allow(clippy::too_many_arguments)]
pub fn verify_set(
    trust: &fedq_certs::FederationTrust,
    set: &fedq_wire::psi::SignedSet,
    node: &str,
    kind: &str,
    query: &str,
    salt: Option<&str>,
    now: u64,
) -> Result<fedq_wire::psi::SetClaims, String> {
    use fedq_certs::identity::Role;
    let at = fedq_wire::proof::UnixTime::since_unix_epoch(std::time::Duration::from_secs(now));
    let verified = trust
        .verify_es256(
            &set.signature,
            fedq_wire::psi::SET_TYP,
            Role::Node,
            fedq_certs::signing::SERVER_AUTH,
            at,
            true,
        )
        .map_err(|e| format!("does not verify: {e}"))?;
    let claims: fedq_wire::psi::SetClaims = serde_json::from_slice(&verified.payload)
        .map_err(|_| "is not a signed point set".to_owned())?;
    if verified.signer.identity.name != node || claims.node != node {
        return Err(format!("is not signed by department `{node}`"));
    }
    if claims.kind != kind {
        return Err(format!("is a `{}` set, not a `{kind}` one", claims.kind));
    }
    if claims.query != query {
        return Err("is for another query".into());
    }
    if salt.is_some_and(|s| s != claims.salt) {
        return Err("is for another count (its salt differs)".into());
    }
    if claims.count != set.points.len() as u64
        || claims.sha256 != fedq_wire::psi::points_digest(&set.points)
    {
        return Err("holds points other than the ones signed".into());
    }
    if claims.iat.abs_diff(now) > SET_SKEW_SECS {
        return Err("was signed too long ago".into());
    }
    Ok(claims)
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

/// One dataset's unrepaired records with their subjects, read from the store, the rights
/// file's marks applied (removed and disputed records left out, corrections applied). A
/// dataset the catalogue does not hold or that is attached is an error naming it.
async fn read_dataset<'c>(
    sources: &crate::source::Sources,
    catalogue: &'c [fedq_policy::Dataset],
    marks: &crate::rights::Marks,
    name: &str,
) -> Result<(&'c fedq_policy::Dataset, Vec<(String, fedq_policy::Record)>), String> {
    let dataset = catalogue
        .iter()
        .find(|d| d.qualified == name)
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
    let keyed = records
        .into_iter()
        .filter_map(|(subject, record)| {
            let (clean, _) = crate::rights::overlay(dataset, vec![record], marks);
            clean.into_iter().next().map(|r| (subject, r))
        })
        .collect();
    Ok((dataset, keyed))
}

fn all_marks(rights: &crate::rights::RightsFile) -> Result<crate::rights::Marks, String> {
    rights
        .all_marks()
        .map_err(|_| "its rights file is unavailable".to_owned())
}

/// The true counts of this department's datasets of `target` at `today` over their
/// domains (see [`read_dataset`] for what is read).
pub async fn count(
    sources: &crate::source::Sources,
    catalogue: &[fedq_policy::Dataset],
    rights: &crate::rights::RightsFile,
    statistics: &Statistics,
    target: &AggregateTarget,
    datasets: &[&str],
    today: time::Date,
) -> Result<std::collections::BTreeMap<CellKey, u64>, String> {
    let marks = all_marks(rights)?;
    let mut cells = std::collections::BTreeMap::new();
    for name in datasets {
        let (dataset, records) = read_dataset(sources, catalogue, &marks, name).await?;
        cells.extend(statistics.count_cells(dataset, target, &records, today));
    }
    Ok(cells)
}

/// The persons (resident IDs) who count in one dataset for `target` at `today`: each
/// once, the same filter as [`count`]'s. For a cross-department count; never logged.
pub async fn persons(
    sources: &crate::source::Sources,
    catalogue: &[fedq_policy::Dataset],
    rights: &crate::rights::RightsFile,
    target: &AggregateTarget,
    name: &str,
    today: time::Date,
) -> Result<Vec<String>, String> {
    let marks = all_marks(rights)?;
    let (dataset, records) = read_dataset(sources, catalogue, &marks, name).await?;
    Ok(
        fedq_policy::statistics::newest_records(dataset, target, &records, today)
            .into_keys()
            .map(str::to_owned)
            .collect(),
    )
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
