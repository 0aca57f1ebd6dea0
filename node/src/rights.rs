//! The person's rights at a node (issue 19): the register of queries about them, built
//! from the node's own audit log with the policy's covert periods applied
//! ([`register`]); their objections (异议) and repair applications, kept in the node's
//! rights file ([`RightsFile`], owner-only SQLite beside the audit log, keyed by the
//! subject's pseudonym, never the resident ID); and what an open objection, a correction
//! or a removal does to the records a lookup reads ([`overlay`]).
//!
//! The decisions are plain functions over data; only [`RightsFile`] touches a disk.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use base64::Engine as _;
use fedq_audit::{AuditEntry, EntryKind};
use fedq_policy::{Dataset, Policy, Record, Value};
use fedq_wire::rights::{
    Decision, Filing, HiddenEntries, ObjectionState, ObjectionStatus, RegisterEntry, RepairGrounds,
    RepairState, RepairStatus, Right, MAX_REGISTER_ENTRIES,
};
use rusqlite::{params, Connection, OptionalExtension};

/// Why the rights file could not be read or written. Never quotes a record key or the
/// person's words.
#[derive(Debug, thiserror::Error)]
pub enum RightsError {
    /// The database failed.
    #[error("rights file `{path}`: {reason}")]
    Database {
        /// The file.
        path: String,
        /// What failed: SQLite's (or the file system's) error as the source, or a
        /// message.
        #[source]
        reason: fedq_audit::Cause,
    },
    /// No objection or application with this id.
    #[error("no {what} with this id in `{path}`; list them with `fedq node objections --config NODE.toml`")]
    Unknown {
        /// `objection` or `repair application`.
        what: &'static str,
        /// The file.
        path: String,
    },
    /// It was already decided.
    #[error("the {what} is {status} already; only an open one can be resolved")]
    Decided {
        /// `objection` or `repair application`.
        what: &'static str,
        /// Its status.
        status: &'static str,
    },
}

/// The node's rights file: objections and repair applications, by subject pseudonym.
pub struct RightsFile {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// Whether any objection was ever filed here: until one is, no lookup reads the file.
    any: AtomicBool,
}

impl std::fmt::Debug for RightsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RightsFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS objections (
    id TEXT PRIMARY KEY,
    subject TEXT NOT NULL,
    dataset TEXT NOT NULL,
    record_key TEXT NOT NULL,
    reason TEXT NOT NULL,
    evidence TEXT NOT NULL,
    filed_at TEXT NOT NULL,
    status TEXT NOT NULL,
    resolution TEXT,
    correction TEXT
);
CREATE INDEX IF NOT EXISTS objections_subject ON objections(subject);
CREATE TABLE IF NOT EXISTS repairs (
    id TEXT PRIMARY KEY,
    subject TEXT NOT NULL,
    dataset TEXT NOT NULL,
    record_key TEXT NOT NULL,
    grounds TEXT NOT NULL,
    reason TEXT NOT NULL,
    evidence TEXT NOT NULL,
    filed_at TEXT NOT NULL,
    status TEXT NOT NULL,
    decisions TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS repairs_subject ON repairs(subject);
";

/// What the rights file says of one subject's records: which are disputed, corrected
/// (field → the corrected cell, as imported text) or removed, by (dataset, record key).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Marks {
    /// Open objections.
    pub disputed: BTreeSet<(String, String)>,
    /// Objections resolved by removing the record.
    pub removed: BTreeSet<(String, String)>,
    /// Objections resolved by correcting the record.
    pub corrected: BTreeMap<(String, String), BTreeMap<String, String>>,
}

impl Marks {
    /// Whether nothing is marked.
    pub fn is_empty(&self) -> bool {
        self.disputed.is_empty() && self.removed.is_empty() && self.corrected.is_empty()
    }
}

/// A new id: 16 random bytes, hex.
pub fn new_id(prefix: &str) -> Option<String> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 12];
    ring::rand::SystemRandom::new().fill(&mut bytes).ok()?;
    Some(format!(
        "{prefix}-{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

impl RightsFile {
    /// Opens (creating, owner-only) the rights file.
    pub fn open(path: &Path) -> Result<Self, RightsError> {
        let err = |e: rusqlite::Error| RightsError::Database {
            path: path.display().to_string(),
            reason: fedq_audit::Cause::of(e),
        };
        fedq_certs::fsutil::prepare_private_database(path).map_err(|e| RightsError::Database {
            path: path.display().to_string(),
            reason: fedq_audit::Cause::of(e),
        })?;
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")
            .map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        let any: i64 = conn
            .query_row("SELECT count(*) FROM objections", [], |r| r.get(0))
            .map_err(err)?;
        Ok(Self {
            path: path.to_owned(),
            conn: Mutex::new(conn),
            any: AtomicBool::new(any > 0),
        })
    }

    fn err(&self, e: impl std::error::Error + Send + Sync + 'static) -> RightsError {
        RightsError::Database {
            path: self.path.display().to_string(),
            reason: fedq_audit::Cause::of(e),
        }
    }

    fn conn(&self) -> Result<std::sync::MutexGuard<'_, Connection>, RightsError> {
        self.conn.lock().map_err(|_| RightsError::Database {
            path: self.path.display().to_string(),
            reason: "lock poisoned".into(),
        })
    }

    /// What the file says of one subject's records (nothing read until an objection was
    /// filed here).
    pub fn marks(&self, subject: &str) -> Result<Marks, RightsError> {
        self.marks_of(Some(subject))
    }

    /// What the file says of every record (for a publication or a statistic, which read
    /// whole datasets).
    pub fn all_marks(&self) -> Result<Marks, RightsError> {
        self.marks_of(None)
    }

    fn marks_of(&self, subject: Option<&str>) -> Result<Marks, RightsError> {
        let mut marks = Marks::default();
        if !self.any.load(Ordering::Acquire) {
            return Ok(marks);
        }
        let conn = self.conn()?;
        let (sql, args) = match subject {
            Some(subject) => (
                "SELECT dataset, record_key, status, correction FROM objections WHERE subject = ?1",
                vec![subject],
            ),
            None => (
                "SELECT dataset, record_key, status, correction FROM objections",
                Vec::new(),
            ),
        };
        let mut stmt = conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args), |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        for row in rows {
            let (dataset, key, status, correction) = row.map_err(|e| self.err(e))?;
            let at = (dataset, key);
            match ObjectionStatus::parse(&status) {
                Some(ObjectionStatus::Open) => {
                    marks.disputed.insert(at);
                }
                Some(ObjectionStatus::Removed) => {
                    marks.removed.insert(at);
                }
                Some(ObjectionStatus::Corrected) => {
                    let cells: BTreeMap<String, String> = correction
                        .as_deref()
                        .and_then(|c| serde_json::from_str(c).ok())
                        .unwrap_or_default();
                    marks.corrected.insert(at, cells);
                }
                Some(ObjectionStatus::Upheld) => {}
                // A status this build does not know: the record is treated as disputed
                // (it counts in no verdict) rather than as clean.
                None => {
                    marks.disputed.insert(at);
                }
            }
        }
        Ok(marks)
    }

    /// Files an objection to one of the subject's records.
    pub fn file_objection(
        &self,
        id: &str,
        subject: &str,
        dataset: &str,
        filing: &Filing,
        at: &str,
    ) -> Result<(), RightsError> {
        let conn = self.conn()?;
        conn.execute(
            "INSERT INTO objections (id, subject, dataset, record_key, reason, evidence, filed_at, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'open')",
            params![id, subject, dataset, filing.record, filing.reason, filing.evidence, at],
        )
        .map_err(|e| self.err(e))?;
        self.any.store(true, Ordering::Release);
        Ok(())
    }

    /// Files a repair application for one of the subject's records.
    pub fn file_repair(
        &self,
        id: &str,
        subject: &str,
        dataset: &str,
        filing: &Filing,
        at: &str,
    ) -> Result<(), RightsError> {
        let grounds = filing.grounds.map_or("", RepairGrounds::as_str);
        let conn = self.conn()?;
        conn.execute(
            "INSERT INTO repairs (id, subject, dataset, record_key, grounds, reason, evidence, filed_at, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'applied')",
            params![id, subject, dataset, filing.record, grounds, filing.reason, filing.evidence, at],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The subject's objections and repair applications, oldest first.
    pub fn of_subject(
        &self,
        subject: &str,
    ) -> Result<(Vec<ObjectionState>, Vec<RepairState>), RightsError> {
        let conn = self.conn()?;
        let objections =
            objections_where(&conn, "subject = ?1", subject).map_err(|e| self.err(e))?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, dataset, record_key, grounds, reason, evidence, filed_at, status, decisions FROM repairs WHERE subject = ?1 ORDER BY filed_at, id",
            )
            .map_err(|e| self.err(e))?;
        let repairs = stmt
            .query_map(params![subject], |r| {
                let status: String = r.get(7)?;
                let decisions: String = r.get(8)?;
                Ok(RepairState {
                    id: r.get(0)?,
                    dataset: r.get(1)?,
                    record: r.get(2)?,
                    grounds: RepairGrounds::parse(&r.get::<_, String>(3)?)
                        .unwrap_or(RepairGrounds::Performance),
                    reason: r.get(4)?,
                    evidence: r.get(5)?,
                    filed_at: r.get(6)?,
                    status: match status.as_str() {
                        "repaired" => RepairStatus::Repaired,
                        "rejected" => RepairStatus::Rejected,
                        "reversed" => RepairStatus::Reversed,
                        _ => RepairStatus::Applied,
                    },
                    decisions: serde_json::from_str(&decisions).unwrap_or_default(),
                })
            })
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        Ok((objections, repairs))
    }

    /// Every objection with `status` (all: `None`), oldest first, with its subject's
    /// pseudonym: the department's queue.
    pub fn objections(
        &self,
        status: Option<ObjectionStatus>,
    ) -> Result<Vec<(String, ObjectionState)>, RightsError> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare(
                "SELECT subject, id FROM objections WHERE ?1 IS NULL OR status = ?1 ORDER BY filed_at, id",
            )
            .map_err(|e| self.err(e))?;
        let ids = stmt
            .query_map(params![status.map(ObjectionStatus::as_str)], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        let mut out = Vec::with_capacity(ids.len());
        for (subject, id) in ids {
            let mut one = objections_where(&conn, "id = ?1", &id).map_err(|e| self.err(e))?;
            if let Some(o) = one.pop() {
                out.push((subject, o));
            }
        }
        Ok(out)
    }

    /// One objection and its subject's pseudonym.
    pub fn objection(&self, id: &str) -> Result<(String, ObjectionState), RightsError> {
        let conn = self.conn()?;
        let subject: Option<String> = conn
            .query_row(
                "SELECT subject FROM objections WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let unknown = || RightsError::Unknown {
            what: "objection",
            path: self.path.display().to_string(),
        };
        let subject = subject.ok_or_else(unknown)?;
        let state = objections_where(&conn, "id = ?1", id)
            .map_err(|e| self.err(e))?
            .pop()
            .ok_or_else(unknown)?;
        Ok((subject, state))
    }

    /// Records an open objection's resolution (and, for a correction, the corrected
    /// cells), in one statement that changes nothing unless the objection is open.
    pub fn resolve_objection(
        &self,
        id: &str,
        status: ObjectionStatus,
        decision: &Decision,
        correction: Option<&BTreeMap<String, String>>,
    ) -> Result<(), RightsError> {
        let (_, current) = self.objection(id)?;
        if current.status != ObjectionStatus::Open {
            return Err(RightsError::Decided {
                what: "objection",
                status: current.status.as_str(),
            });
        }
        let resolution = serde_json::to_string(decision).map_err(|e| self.err(e))?;
        let correction = correction
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| self.err(e))?;
        let conn = self.conn()?;
        let changed = conn
            .execute(
                "UPDATE objections SET status = ?2, resolution = ?3, correction = ?4 WHERE id = ?1 AND status = 'open'",
                params![id, status.as_str(), resolution, correction],
            )
            .map_err(|e| self.err(e))?;
        if changed != 1 {
            return Err(RightsError::Decided {
                what: "objection",
                status: "resolved",
            });
        }
        Ok(())
    }
}

impl RightsFile {
    /// One repair application and its subject's pseudonym.
    pub fn repair(&self, id: &str) -> Result<(String, RepairState), RightsError> {
        let conn = self.conn()?;
        let subject: Option<String> = conn
            .query_row(
                "SELECT subject FROM repairs WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        drop(conn);
        let unknown = || RightsError::Unknown {
            what: "repair application",
            path: self.path.display().to_string(),
        };
        let subject = subject.ok_or_else(unknown)?;
        let (_, repairs) = self.of_subject(&subject)?;
        let state = repairs
            .into_iter()
            .find(|r| r.id == id)
            .ok_or_else(unknown)?;
        Ok((subject, state))
    }

    /// Every repair application, oldest first, with its subject's pseudonym: the queue
    /// the review office's decisions are applied from.
    pub fn repairs(&self) -> Result<Vec<(String, RepairState)>, RightsError> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare("SELECT DISTINCT subject FROM repairs")
            .map_err(|e| self.err(e))?;
        let subjects = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        drop(stmt);
        drop(conn);
        let mut out = Vec::new();
        for subject in subjects {
            let (_, repairs) = self.of_subject(&subject)?;
            out.extend(repairs.into_iter().map(|r| (subject.clone(), r)));
        }
        out.sort_by(|a, b| (&a.1.filed_at, &a.1.id).cmp(&(&b.1.filed_at, &b.1.id)));
        Ok(out)
    }

    /// Moves a repair application from `from` to `to`, adding `decisions` to its history,
    /// in one statement that changes nothing if it is no longer at `from`.
    pub fn decide_repair(
        &self,
        id: &str,
        from: RepairStatus,
        to: RepairStatus,
        decisions: &[Decision],
    ) -> Result<(), RightsError> {
        let (_, current) = self.repair(id)?;
        if current.status != from {
            return Err(RightsError::Decided {
                what: "repair application",
                status: current.status.as_str(),
            });
        }
        let mut history = current.decisions;
        history.extend(decisions.iter().cloned());
        let history = serde_json::to_string(&history).map_err(|e| self.err(e))?;
        let conn = self.conn()?;
        let changed = conn
            .execute(
                "UPDATE repairs SET status = ?3, decisions = ?4 WHERE id = ?1 AND status = ?2",
                params![id, from.as_str(), to.as_str(), history],
            )
            .map_err(|e| self.err(e))?;
        if changed != 1 {
            return Err(RightsError::Decided {
                what: "repair application",
                status: "decided",
            });
        }
        Ok(())
    }
}

fn objections_where(
    conn: &Connection,
    condition: &str,
    value: &str,
) -> rusqlite::Result<Vec<ObjectionState>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT id, dataset, record_key, reason, evidence, filed_at, status, resolution FROM objections WHERE {condition} ORDER BY filed_at, id"
    ))?;
    let rows = stmt.query_map(params![value], |r| {
        let status: String = r.get(6)?;
        let resolution: Option<String> = r.get(7)?;
        Ok(ObjectionState {
            id: r.get(0)?,
            dataset: r.get(1)?,
            record: r.get(2)?,
            reason: r.get(3)?,
            evidence: r.get(4)?,
            filed_at: r.get(5)?,
            status: ObjectionStatus::parse(&status).unwrap_or(ObjectionStatus::Open),
            resolution: resolution.and_then(|r| serde_json::from_str(&r).ok()),
        })
    })?;
    rows.collect()
}

/// A record's key, as text (what a filing names).
pub fn record_key(dataset: &Dataset, record: &Record) -> Option<String> {
    match record.get(&dataset.key)? {
        Value::Text(s) | Value::Month(s) | Value::Bucket(s) => Some(s.clone()),
        Value::Masked(_) => None,
        Value::Date(d) => Some(d.to_string()),
        Value::Amount(n) | Value::Integer(n) => Some(n.to_string()),
        Value::Year(y) => Some(y.to_string()),
    }
}

/// The subject's `records` of `dataset` as the marks leave them: removed ones dropped,
/// corrected ones with their corrected cells (a cell that does not read as its field's
/// type is left as it was), and the disputed ones apart. Returns (undisputed, disputed).
pub fn overlay(
    dataset: &Dataset,
    records: Vec<Record>,
    marks: &Marks,
) -> (Vec<Record>, Vec<Record>) {
    if marks.is_empty() {
        return (records, Vec::new());
    }
    let mut clean = Vec::with_capacity(records.len());
    let mut disputed = Vec::new();
    for mut record in records {
        let Some(key) = record_key(dataset, &record) else {
            clean.push(record);
            continue;
        };
        let at = (dataset.qualified.clone(), key);
        if marks.removed.contains(&at) {
            continue;
        }
        if let Some(cells) = marks.corrected.get(&at) {
            for (name, text) in cells {
                if let Some(field) = dataset.field(name) {
                    match Value::parse(text, field) {
                        Ok(Some(v)) => {
                            record.insert(name.clone(), v);
                        }
                        Ok(None) => {
                            record.remove(name);
                        }
                        Err(_) => {}
                    }
                }
            }
        }
        if marks.disputed.contains(&at) {
            disputed.push(record);
        } else {
            clean.push(record);
        }
    }
    (clean, disputed)
}

/// The person's register at this node: `entries` (the log's entries about them, oldest
/// first, each with its inclusion proof — empty for one past the checkpoint), with the
/// entries of a purpose the policy hides from the subject (`hidden_from_subject`) for
/// `days` after the query counted instead of listed, per purpose, until the day the last
/// of them shows. Only queries are listed (answers and refusals), newest first, at most
/// [`MAX_REGISTER_ENTRIES`].
pub fn register(
    entries: Vec<(AuditEntry, Vec<fedq_audit::merkle::Hash>)>,
    policy: &Policy,
    today: time::Date,
) -> (Vec<RegisterEntry>, u64, Vec<HiddenEntries>) {
    let mut listed = Vec::new();
    let mut hidden: BTreeMap<String, HiddenEntries> = BTreeMap::new();
    for (entry, proof) in entries.into_iter().rev() {
        let r = &entry.record;
        if entry.shredded || !matches!(r.kind, EntryKind::Answer | EntryKind::Refusal) {
            continue;
        }
        let named = policy.purposes.iter().find(|p| p.name == r.purpose);
        // A refusal says nothing of the purpose but what was declared: one by a requester
        // that asks under a hidden purpose is hidden as that purpose's entries are, unless
        // it names a hidden purpose itself.
        let purpose = match named {
            Some(p) if p.hidden_from_subject.is_some() || r.kind != EntryKind::Refusal => Some(p),
            _ => covert_purpose_of(policy, &r.requester).or(named),
        };
        if let Some((name, h)) =
            purpose.and_then(|p| p.hidden_from_subject.as_ref().map(|h| (&p.name, h)))
        {
            // Days are the city's: the query's date there, as `today` is.
            let until =
                fedq_policy::calendar::date_in_city(r.at) + time::Duration::days(i64::from(h.days));
            if until > today {
                let group = hidden.entry(name.clone()).or_insert_with(|| HiddenEntries {
                    purpose: name.clone(),
                    count: 0,
                    until: until.to_string(),
                    reason: h.reason.clone(),
                });
                group.count += 1;
                // ISO dates order as text.
                if until.to_string() > group.until {
                    group.until = until.to_string();
                }
                continue;
            }
        }
        listed.push(RegisterEntry {
            at: r
                .at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            query_id: r.query_id.clone(),
            requester: r.requester.clone(),
            purpose: r.purpose.clone(),
            legal_basis: r.legal_basis.clone(),
            case_reference: r.case_reference.clone(),
            target: r.target.clone(),
            kind: r.kind.as_str().to_owned(),
            released: r.kind == EntryKind::Answer,
            index: entry.seq.saturating_sub(1),
            entry_hash: entry.hash.clone(),
            proof: proof
                .iter()
                .map(|h| base64::engine::general_purpose::STANDARD.encode(h))
                .collect(),
        });
    }
    let older = listed.len().saturating_sub(MAX_REGISTER_ENTRIES) as u64;
    listed.truncate(MAX_REGISTER_ENTRIES);
    (listed, older, hidden.into_values().collect())
}

/// The purpose a refusal of no hidden purpose (recorded before its purpose was read, `-`,
/// or under one the requester may not use) is hidden as, when its requester may ask under
/// a purpose hidden from the subject: the longest hidden of those. Otherwise such a
/// refusal would show at once, with the requester's name, the inquiry the policy hides.
fn covert_purpose_of<'p>(
    policy: &'p Policy,
    requester: &str,
) -> Option<&'p fedq_policy::policy::Purpose> {
    policy
        .requesters
        .iter()
        .find(|q| q.name == requester)?
        .purposes
        .iter()
        .filter_map(|&i| policy.purposes.get(i))
        .filter(|p| p.hidden_from_subject.is_some())
        .max_by_key(|p| p.hidden_from_subject.as_ref().map(|h| h.days))
}

/// Whether `right` may file about `dataset`: an objection about any dataset of this
/// department; a repair application only where the catalogue records repair.
pub fn may_file(right: Right, dataset: &Dataset) -> Result<(), String> {
    if right == Right::ApplyRepair && dataset.repair.is_none() {
        return Err(format!(
            "dataset `{}` records no credit repair (its catalogue declares no `repair`), so its records cannot be repaired; object to a wrong record instead",
            dataset.qualified
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    fn entry(
        seq: u64,
        requester: &str,
        purpose: &str,
    ) -> (AuditEntry, Vec<fedq_audit::merkle::Hash>) {
        let record = fedq_audit::AuditRecord {
            at: time::OffsetDateTime::now_utc(),
            kind: EntryKind::Refusal,
            query_id: format!("q{seq}"),
            requester: requester.into(),
            purpose: purpose.into(),
            legal_basis: None,
            subject: "p".into(),
            target: "-".into(),
            outcome: fedq_audit::Outcome::json(&serde_json::json!({})),
            policy_version: "1".into(),
            case_reference: None,
            consent_id: None,
            node_query_ids: BTreeMap::new(),
            answer_sha256: None,
        };
        let entry = AuditEntry {
            seq,
            record,
            prev_hash: String::new(),
            hash: format!("{seq:064x}"),
            shredded: false,
        };
        (entry, Vec::new())
    }

    /// A refusal recorded before its purpose was read (`-`) of a requester that asks under
    /// a purpose hidden from the subject is hidden as that purpose's entries are; another
    /// requester's is listed.
    #[test]
    fn a_refusal_of_no_purpose_by_a_covert_requester_is_hidden_not_listed() {
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../reference/changsha/policy.toml");
        let policy = fedq_policy::load::load_policy(&file, None).unwrap();
        let today = fedq_policy::calendar::today_in_city();
        let (listed, _, hidden) = register(
            vec![
                entry(1, "court.enforcement", "-"),
                entry(2, "market-regulation.licensing", "-"),
                entry(3, "court.enforcement", "administrative-licensing"),
            ],
            &policy,
            today,
        );
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed[0].requester, "market-regulation.licensing");
        assert_eq!(hidden.len(), 1, "{hidden:?}");
        assert_eq!(hidden[0].purpose, "judgment-enforcement");
        assert_eq!(hidden[0].count, 2);
    }
}
