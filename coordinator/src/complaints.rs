//! Complaints (issue 19 §4; 长政办发〔2017〕62号 §九, complaint and remedy channels): the queue the
//! coordinator keeps beside its audit log, the three endpoints that fill and change it,
//! and the officers' tools.
//!
//! - Filing (`POST /v1/complaints`, any requester certificate; a person files at the
//!   citizen-service window): about a query — by the coordinator's id of it or by the id a
//!   node recorded it under, which is what a person's register shows — routed to the
//!   departments that query concerned, as the coordinator's own `query` entry records
//!   them ([`fedq_audit::find_query`]); or about a leak, routed to every department.
//! - The filer alone reads its status (`GET /v1/complaints/{id}`; anyone else gets the
//!   404 an unknown id gets).
//! - An officer changes its status (`POST /v1/complaints/{id}/status`, an officer
//!   certificate) with a [`StatusStatement`] signed by their officer key, verified here
//!   against the federation CA and CRL before anything is recorded; the statement and the
//!   signature are kept, so the change can be checked again later.
//!
//! Every filing and every status change is registered in the coordinator's audit log as a
//! `complaint` entry with the complaint's id, the departments and the statuses only:
//! **never the text, the contact or a note** (those stay in the queue, a private 0600
//! database). The queue row and the entry commit together: the row's transaction is
//! committed only after the entry is durable, and rolled back if it is not.
//!
//! Officers read the queue with `fedq complaints list | show` on the coordinator's host
//! ([`list`], [`show`], reading the file); they change it only through the running
//! coordinator ([`update`]), the one writer of its audit log.

use std::path::{Path, PathBuf};
use std::sync::RwLock;

use base64::Engine as _;
use fedq_audit::{AuditRecord, EntryKind, Outcome};
use fedq_certs::tls::FederationTrust;
use fedq_certs::{Identity, Role};
use fedq_client::complaint::{
    ComplaintAbout, ComplaintFiled, ComplaintRequest, ComplaintState, ComplaintStatus,
    StatusChange, StatusStatement, StatusUpdate, MAX_CONTACT_BYTES, MAX_NOTE_BYTES, MAX_TEXT_BYTES,
};
use rusqlite::{params, Connection, OptionalExtension};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::outcome::Reply;
use crate::problem::{Kind, Problem};
use crate::service::Coordinator;

pub use fedq_client::complaint;

/// Largest complaint body read (the text's 4 KiB, JSON-escaped, and the rest).
pub const MAX_COMPLAINT_BODY: usize = 32 * 1024;

/// Largest status update body (a statement, a signature and an officer certificate).
pub const MAX_UPDATE_BODY: usize = 32 * 1024;

/// How far a status statement's `signed_at` may be from the coordinator's clock.
pub const SIGNED_AT_TOLERANCE_SECS: i64 = 300;

/// Why the queue cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ComplaintError {
    /// The file cannot be created, opened, read or written.
    #[error("complaint queue `{path}`: {reason}")]
    Store {
        /// The queue file.
        path: PathBuf,
        /// Why: SQLite's (or the file system's) error as the source, or a message.
        #[source]
        reason: fedq_audit::Cause,
    },
    /// No complaint with that id.
    #[error("no complaint has that id; `fedq complaint list` shows the ids")]
    NotFound,
}

fn store_err(path: &Path) -> impl Fn(rusqlite::Error) -> ComplaintError + '_ {
    move |e| ComplaintError::Store {
        path: path.to_owned(),
        reason: fedq_audit::Cause::of(e),
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS complaints (
    id TEXT PRIMARY KEY,
    filed_at TEXT NOT NULL,
    filed_by TEXT NOT NULL,
    about_kind TEXT NOT NULL,
    about_query TEXT,
    departments TEXT NOT NULL,
    text TEXT NOT NULL,
    contact TEXT,
    status TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS complaint_history (
    complaint_id TEXT NOT NULL REFERENCES complaints(id),
    seq INTEGER NOT NULL,
    at TEXT NOT NULL,
    status TEXT NOT NULL,
    officer TEXT,
    officer_key_sha256 TEXT,
    officer_serial TEXT,
    note TEXT,
    statement TEXT,
    signature TEXT,
    PRIMARY KEY (complaint_id, seq)
);
CREATE UNIQUE INDEX IF NOT EXISTS complaint_signatures
    ON complaint_history(signature) WHERE signature IS NOT NULL;
";

/// Opens (creating if needed, owner-only) the queue at `path`.
fn open_queue(path: &Path) -> Result<Connection, ComplaintError> {
    fedq_certs::fsutil::prepare_private_database(path).map_err(|e| ComplaintError::Store {
        path: path.to_owned(),
        reason: fedq_audit::Cause::explained(format!("cannot create it owner-only: {e}"), e),
    })?;
    let conn = Connection::open(path).map_err(store_err(path))?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;",
    )
    .map_err(store_err(path))?;
    conn.execute_batch(SCHEMA).map_err(store_err(path))?;
    Ok(conn)
}

/// Opens an existing queue for the officers' tools; a missing file is an error, never a
/// new queue.
fn open_existing(path: &Path) -> Result<Connection, ComplaintError> {
    if !path.exists() {
        return Err(ComplaintError::Store {
            path: path.to_owned(),
            reason: "no such file (the coordinator creates it when it starts)".into(),
        });
    }
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)
        .map_err(store_err(path))?;
    conn.execute_batch("PRAGMA busy_timeout=5000;")
        .map_err(store_err(path))?;
    Ok(conn)
}

/// A complaint as its officers see it: everything the queue holds.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Complaint {
    /// Its id.
    pub id: String,
    /// When it was filed (RFC 3339).
    pub filed_at: String,
    /// The requester who filed it (`agency.office`).
    pub filed_by: String,
    /// What it is about.
    pub about: ComplaintAbout,
    /// The departments it is routed to.
    pub departments: Vec<String>,
    /// What the filer wrote.
    pub text: String,
    /// How to reach them, if given.
    pub contact: Option<String>,
    /// Its status now.
    pub status: ComplaintStatus,
    /// Every status it has had, oldest first.
    pub history: Vec<StatusChange>,
}

impl Complaint {
    /// What its filer is shown: no text or contact (they wrote them), the rest as is.
    pub fn state(&self) -> ComplaintState {
        ComplaintState {
            complaint_id: self.id.clone(),
            filed_at: self.filed_at.clone(),
            about: self.about.clone(),
            departments: self.departments.clone(),
            status: self.status,
            history: self.history.clone(),
        }
    }
}

fn status_of(text: &str) -> ComplaintStatus {
    // Only this module writes the column; anything else reads as closed (nothing changes it).
    text.parse().unwrap_or(ComplaintStatus::Closed)
}

fn read_complaint(conn: &Connection, path: &Path, id: &str) -> Result<Complaint, ComplaintError> {
    let err = store_err(path);
    let row = conn
        .query_row(
            "SELECT id, filed_at, filed_by, about_kind, about_query, departments, text, contact, status
             FROM complaints WHERE id = ?1",
            params![id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, Option<String>>(7)?,
                    r.get::<_, String>(8)?,
                ))
            },
        )
        .optional()
        .map_err(&err)?
        .ok_or(ComplaintError::NotFound)?;
    let (id, filed_at, filed_by, kind, query, departments, text, contact, status) = row;
    let about = match (kind.as_str(), query) {
        ("query", Some(q)) => ComplaintAbout::Query(q),
        _ => ComplaintAbout::Leak(true),
    };
    let mut stmt = conn
        .prepare(
            "SELECT at, status, officer, officer_key_sha256, note FROM complaint_history
             WHERE complaint_id = ?1 ORDER BY seq",
        )
        .map_err(&err)?;
    let history = stmt
        .query_map(params![id], |r| {
            Ok(StatusChange {
                at: r.get(0)?,
                status: status_of(&r.get::<_, String>(1)?),
                officer: r.get(2)?,
                officer_key_sha256: r.get(3)?,
                note: r.get(4)?,
            })
        })
        .map_err(&err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(&err)?;
    Ok(Complaint {
        id,
        filed_at,
        filed_by,
        about,
        departments: serde_json::from_str(&departments).unwrap_or_default(),
        text,
        contact,
        status: status_of(&status),
        history,
    })
}

/// The filters of `fedq complaint list`.
#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    /// Only complaints routed to this department.
    pub department: Option<String>,
    /// Only complaints with this status.
    pub status: Option<ComplaintStatus>,
}

/// `fedq complaint list`: the complaints in the queue at `path`, oldest first.
pub fn list(path: &Path, filter: &ListFilter) -> Result<Vec<Complaint>, ComplaintError> {
    let conn = open_existing(path)?;
    let ids: Vec<String> = {
        let mut stmt = conn
            .prepare("SELECT id FROM complaints ORDER BY filed_at, id")
            .map_err(store_err(path))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(store_err(path))?;
        rows.collect::<Result<_, _>>().map_err(store_err(path))?
    };
    let mut out = Vec::new();
    for id in ids {
        let c = read_complaint(&conn, path, &id)?;
        let department = filter
            .department
            .as_ref()
            .is_none_or(|d| c.departments.contains(d));
        let status = filter.status.is_none_or(|s| c.status == s);
        if department && status {
            out.push(c);
        }
    }
    Ok(out)
}

/// `fedq complaint show`: one complaint of the queue at `path`.
pub fn show(path: &Path, id: &str) -> Result<Complaint, ComplaintError> {
    let conn = open_existing(path)?;
    read_complaint(&conn, path, id)
}

/// One line per complaint, for `fedq complaint list` (no text: `show` prints it).
pub fn render_list(complaints: &[Complaint]) -> String {
    if complaints.is_empty() {
        return "no complaints\n".into();
    }
    let mut out = String::new();
    for c in complaints {
        let about = match &c.about {
            ComplaintAbout::Query(q) => format!("query {q}"),
            ComplaintAbout::Leak(_) => "leak".into(),
        };
        out.push_str(&format!(
            "{}  {:<9}  {}  by {}  about {}  → {}\n",
            c.id,
            c.status.as_str(),
            c.filed_at,
            c.filed_by,
            about,
            c.departments.join(", ")
        ));
    }
    out
}

/// One complaint in full, for `fedq complaint show`.
pub fn render_complaint(c: &Complaint) -> String {
    let about = match &c.about {
        ComplaintAbout::Query(q) => format!("query {q} (the coordinator's id)"),
        ComplaintAbout::Leak(_) => "a leak".into(),
    };
    let mut out = format!(
        "complaint {}\n  filed:       {} by {}\n  about:       {}\n  departments: {}\n  status:      {}\n  contact:     {}\n  text:\n",
        c.id,
        c.filed_at,
        c.filed_by,
        about,
        c.departments.join(", "),
        c.status,
        c.contact.as_deref().unwrap_or("-"),
    );
    for line in c.text.lines() {
        out.push_str(&format!("    {line}\n"));
    }
    out.push_str("  history:\n");
    for h in &c.history {
        match &h.officer {
            Some(officer) => out.push_str(&format!(
                "    {}  {:<9}  by {} (key {})  {}\n",
                h.at,
                h.status.as_str(),
                officer,
                h.officer_key_sha256.as_deref().unwrap_or("-"),
                h.note.as_deref().unwrap_or("")
            )),
            None => out.push_str(&format!("    {}  {:<9}  filed\n", h.at, h.status.as_str())),
        }
    }
    out
}

/// The queue a running coordinator writes: one connection behind an async lock, held
/// across the audit append so that a row is committed only with its entry.
pub struct Queue {
    conn: tokio::sync::Mutex<Connection>,
    path: PathBuf,
    /// Filings per requester under the policy's `rate_limit` for it, counted apart from
    /// its queries: a complaint about a query scans the audit log once, so filings are
    /// throttled like queries are, and an undeclared requester files none.
    filings: std::sync::Mutex<Option<fedq_policy::ratelimit::RateLimiter>>,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn now_text(now: OffsetDateTime) -> String {
    now.format(&Rfc3339)
        .unwrap_or_else(|_| now.unix_timestamp().to_string())
}

fn random_id() -> Option<String> {
    let mut bytes = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).ok()?;
    Some(hex::encode(bytes))
}

fn bad(message: impl Into<String>) -> Reply {
    Reply::problem(Problem::new(Kind::MalformedRequest, 400, message))
}

fn unavailable(what: &str) -> Reply {
    Reply::problem(Problem::new(
        Kind::AuditUnavailable,
        503,
        format!("{what}; nothing was recorded; retry later"),
    ))
}

fn no_such_complaint() -> Reply {
    Reply::problem(Problem::new(
        Kind::ComplaintNotFound,
        404,
        "no complaint of yours has that id; use the id `POST /v1/complaints` answered",
    ))
}

/// A query id as a person may have it: the coordinator's or a node's (hex), bounded.
fn is_query_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A complaint id as this module draws them.
fn is_complaint_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

const SHAPE: &str = "send {\"about\": {\"query\": ID} or {\"leak\": true}, \"text\": TEXT, \"contact\": optional}; no other fields";

/// Whether `text` holds a control character other than a line break or a tab (which
/// would reach an officer's terminal through `fedq complaint show`).
fn controls(text: &str) -> bool {
    text.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
}

/// The complaint in `body`, checked; a refusal never quotes the body.
fn parse_complaint(body: &[u8]) -> Result<ComplaintRequest, Reply> {
    let request: ComplaintRequest = serde_json::from_slice(body)
        .map_err(|_| bad(format!("the body is not a complaint; {SHAPE}")))?;
    match &request.about {
        ComplaintAbout::Query(id) if !is_query_id(id) => {
            return Err(bad(
                "`about.query` is not a query id; give the id the register or the answer showed",
            ))
        }
        ComplaintAbout::Leak(false) => {
            return Err(bad(
                "`about.leak` must be true for a complaint about a leak",
            ))
        }
        _ => {}
    }
    if controls(&request.text) || request.contact.as_deref().is_some_and(controls) {
        return Err(bad(
            "`text` and `contact` may hold no control characters but line breaks and tabs",
        ));
    }
    if request.text.trim().is_empty() {
        return Err(bad("`text` is empty; say what happened"));
    }
    if request.text.len() > MAX_TEXT_BYTES {
        return Err(bad(format!(
            "`text` is over {MAX_TEXT_BYTES} bytes; shorten it"
        )));
    }
    if let Some(contact) = &request.contact {
        if contact.trim().is_empty() || contact.len() > MAX_CONTACT_BYTES {
            return Err(bad(format!(
                "`contact` must be 1 to {MAX_CONTACT_BYTES} bytes, or left out"
            )));
        }
    }
    Ok(request)
}

/// A `complaint` audit entry: the complaint's id, who filed or changed it, the
/// departments and statuses — nothing the filer or an officer wrote.
fn entry(
    coordinator: &Coordinator,
    at: OffsetDateTime,
    id: &str,
    who: &str,
    outcome: serde_json::Value,
) -> AuditRecord {
    AuditRecord {
        at,
        kind: EntryKind::Complaint,
        query_id: id.to_owned(),
        requester: who.to_owned(),
        purpose: "-".into(),
        legal_basis: None,
        subject: "-".into(),
        target: "complaint".into(),
        outcome: Outcome::json(&outcome),
        policy_version: coordinator.policy().label(),
        case_reference: None,
        consent_id: None,
        node_query_ids: Default::default(),
        answer_sha256: None,
    }
}

impl Queue {
    /// Opens (creating, owner-only) the queue at `path`.
    pub fn open(path: &Path) -> Result<Self, ComplaintError> {
        Ok(Self {
            conn: tokio::sync::Mutex::new(open_queue(path)?),
            path: path.to_owned(),
            filings: std::sync::Mutex::new(None),
        })
    }

    /// `POST /v1/complaints` by `who` (a requester): checked, routed, stored and
    /// registered; 201 with the id and the departments.
    pub async fn file(&self, coordinator: &Coordinator, who: &Identity, body: &[u8]) -> Reply {
        let request = match parse_complaint(body) {
            Ok(r) => r,
            Err(reply) => return reply,
        };
        let limited = match self.filings.lock() {
            Ok(mut filings) => {
                let policy = coordinator.policy();
                let policy = policy.engine.policy();
                let filings =
                    filings.get_or_insert_with(|| fedq_policy::ratelimit::RateLimiter::new(policy));
                filings.set_limits(policy);
                filings
                    .check(&who.name, OffsetDateTime::now_utc())
                    .map_err(|e| e.to_string())
            }
            Err(_) => Err("the rate limiter is unavailable; retry later".to_owned()),
        };
        if let Err(why) = limited {
            return Reply::problem(Problem::new(Kind::RateLimited, 429, why));
        }
        let (about, departments) = match &request.about {
            ComplaintAbout::Leak(_) => {
                let all: Vec<String> = coordinator
                    .config()
                    .nodes
                    .iter()
                    .map(|n| n.name.clone())
                    .collect();
                (ComplaintAbout::Leak(true), all)
            }
            ComplaintAbout::Query(id) => {
                let audit = coordinator.config().audit.clone();
                let id = id.clone();
                let found =
                    tokio::task::spawn_blocking(move || fedq_audit::find_query(&audit, &id)).await;
                match found {
                    Ok(Ok(Some(found))) => (ComplaintAbout::Query(found.query_id), found.departments),
                    Ok(Ok(None)) => {
                        return Reply::problem(Problem::new(
                            Kind::QueryNotFound,
                            404,
                            "no query is registered under that id; give the id the register or the answer showed",
                        ))
                    }
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "the audit log cannot be read to route a complaint");
                        return unavailable("the audit log cannot be read to route the complaint");
                    }
                    Err(_) => return unavailable("the complaint could not be routed"),
                }
            }
        };
        let Some(id) = random_id() else {
            return unavailable("no randomness available for a complaint id");
        };
        let now = OffsetDateTime::now_utc();
        let at = now_text(now);
        let (kind, query) = match &about {
            ComplaintAbout::Query(q) => ("query", Some(q.clone())),
            ComplaintAbout::Leak(_) => ("leak", None),
        };
        let routed = serde_json::to_string(&departments).unwrap_or_else(|_| "[]".into());
        let conn = self.conn.lock().await;
        let staged = (|| -> rusqlite::Result<()> {
            conn.execute_batch("BEGIN IMMEDIATE")?;
            conn.execute(
                "INSERT INTO complaints (id, filed_at, filed_by, about_kind, about_query, departments, text, contact, status)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![id, at, who.name, kind, query, routed, request.text, request.contact, ComplaintStatus::Open.as_str()],
            )?;
            conn.execute(
                "INSERT INTO complaint_history (complaint_id, seq, at, status) VALUES (?1, 1, ?2, ?3)",
                params![id, at, ComplaintStatus::Open.as_str()],
            )?;
            Ok(())
        })();
        if let Err(e) = staged {
            let _ = conn.execute_batch("ROLLBACK");
            tracing::error!(error = %e, "the complaint queue cannot be written");
            return unavailable("the complaint queue cannot be written");
        }
        let record = entry(
            coordinator,
            now,
            &id,
            &who.name,
            serde_json::json!({
                "http": 201,
                "event": "filed",
                "about": kind,
                "departments": departments,
                "status": ComplaintStatus::Open.as_str(),
            }),
        );
        if let Err(e) = coordinator.audit().append(record).await {
            let _ = conn.execute_batch("ROLLBACK");
            tracing::error!(error = %e, "audit log unavailable while registering a complaint");
            return unavailable("the audit log is unavailable");
        }
        if let Err(e) = conn.execute_batch("COMMIT") {
            let _ = conn.execute_batch("ROLLBACK");
            tracing::error!(error = %e, "the complaint queue cannot be written");
            return unavailable("the complaint queue cannot be written");
        }
        drop(conn);
        metrics::counter!("fedq_complaints_total", "event" => "filed").increment(1);
        let filed = ComplaintFiled {
            complaint_id: id,
            status: ComplaintStatus::Open,
            departments,
        };
        match serde_json::to_value(&filed) {
            Ok(body) => Reply { status: 201, body },
            Err(_) => unavailable("the answer could not be encoded"),
        }
    }

    /// `GET /v1/complaints/{id}` by `who`: the status and history, to its filer only.
    pub async fn state(&self, who: &Identity, id: &str) -> Reply {
        if !is_complaint_id(id) {
            return no_such_complaint();
        }
        let conn = self.conn.lock().await;
        match read_complaint(&conn, &self.path, id) {
            Ok(c) if c.filed_by == who.name && who.role == Role::Requester => Reply::ok(&c.state()),
            Ok(_) | Err(ComplaintError::NotFound) => no_such_complaint(),
            Err(e) => {
                tracing::error!(error = %e, "the complaint queue cannot be read");
                unavailable("the complaint queue cannot be read")
            }
        }
    }

    /// `POST /v1/complaints/{id}/status` by `who` (an officer on this connection): the
    /// signed statement verified against the CA and CRL in force, its signer the officer
    /// of the connection, then the change stored and registered.
    pub async fn update(
        &self,
        coordinator: &Coordinator,
        trust: &RwLock<FederationTrust>,
        who: &Identity,
        id: &str,
        body: &[u8],
    ) -> Reply {
        let update: StatusUpdate = match serde_json::from_slice(body) {
            Ok(u) => u,
            Err(_) => return bad("the body is not a status update; send {\"statement\", \"signature\", \"certificate\"} as `fedq complaint update` does"),
        };
        let b64 = base64::engine::general_purpose::STANDARD;
        let (Ok(certificate), Ok(signature)) = (
            b64.decode(&update.certificate),
            b64.decode(&update.signature),
        ) else {
            return bad("`certificate` and `signature` must be base64");
        };
        let now = OffsetDateTime::now_utc();
        let verified = match trust.read() {
            Ok(t) => t.verify_officer_signature(
                &certificate,
                update.statement.as_bytes(),
                &signature,
                rustls::pki_types::UnixTime::now(),
                true,
            ),
            Err(_) => return unavailable("the federation's trust cannot be read"),
        };
        let officer = match verified {
            Ok(o) => o,
            Err(e) => {
                metrics::counter!("fedq_complaints_total", "event" => "signature_refused")
                    .increment(1);
                tracing::warn!(error = %e, "a complaint status change with a signature that does not verify was refused");
                return Reply::problem(Problem::new(
                    Kind::OfficerSignatureRefused,
                    403,
                    format!("{e}; nothing was changed"),
                ));
            }
        };
        if officer.identity != *who {
            return Reply::problem(Problem::new(
                Kind::OfficerSignatureRefused,
                403,
                "the statement is signed by another officer than the certificate of this connection; sign with your own key",
            ));
        }
        let statement: StatusStatement = match serde_json::from_str(&update.statement) {
            Ok(s) => s,
            Err(_) => return bad("the signed statement is not a complaint status statement"),
        };
        if statement.purpose != StatusStatement::PURPOSE || statement.complaint_id != id {
            return bad("the signed statement is not about this complaint's status");
        }
        if (statement.signed_at - now.unix_timestamp()).abs() > SIGNED_AT_TOLERANCE_SECS {
            return bad(format!(
                "the statement was signed more than {SIGNED_AT_TOLERANCE_SECS} s from the coordinator's clock; check your clock and sign again"
            ));
        }
        if statement.note.trim().is_empty()
            || statement.note.len() > MAX_NOTE_BYTES
            || controls(&statement.note)
        {
            return bad(format!(
                "the note must be 1 to {MAX_NOTE_BYTES} bytes, with no control characters but line breaks and tabs"
            ));
        }
        let conn = self.conn.lock().await;
        let current = match read_complaint(&conn, &self.path, id) {
            Ok(c) => c,
            Err(ComplaintError::NotFound) => {
                return Reply::problem(Problem::new(
                    Kind::ComplaintNotFound,
                    404,
                    "no complaint has that id; `fedq complaint list` shows them",
                ))
            }
            Err(e) => {
                tracing::error!(error = %e, "the complaint queue cannot be read");
                return unavailable("the complaint queue cannot be read");
            }
        };
        if !current.status.may_become(statement.status) {
            return Reply::problem(Problem::new(
                Kind::ComplaintStatusConflict,
                409,
                format!(
                    "the complaint is {} and cannot become {}; a complaint goes open → in-review → closed",
                    current.status, statement.status
                ),
            ));
        }
        let at = now_text(now);
        let seq = current.history.len() as i64 + 1;
        let signature_text = b64.encode(&signature);
        let staged = (|| -> rusqlite::Result<()> {
            conn.execute_batch("BEGIN IMMEDIATE")?;
            conn.execute(
                "UPDATE complaints SET status = ?2 WHERE id = ?1",
                params![id, statement.status.as_str()],
            )?;
            conn.execute(
                "INSERT INTO complaint_history (complaint_id, seq, at, status, officer, officer_key_sha256, officer_serial, note, statement, signature)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    id,
                    seq,
                    at,
                    statement.status.as_str(),
                    officer.identity.name,
                    officer.key_sha256,
                    officer.serial,
                    statement.note,
                    update.statement,
                    signature_text
                ],
            )?;
            Ok(())
        })();
        if let Err(e) = staged {
            let _ = conn.execute_batch("ROLLBACK");
            if matches!(&e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation)
            {
                return Reply::problem(Problem::new(
                    Kind::ComplaintStatusConflict,
                    409,
                    "this signed statement was recorded already; sign a new one",
                ));
            }
            tracing::error!(error = %e, "the complaint queue cannot be written");
            return unavailable("the complaint queue cannot be written");
        }
        let record = entry(
            coordinator,
            now,
            id,
            &officer.identity.name,
            serde_json::json!({
                "http": 200,
                "event": "status",
                "from": current.status.as_str(),
                "status": statement.status.as_str(),
                "departments": current.departments,
                "officer_key_sha256": officer.key_sha256,
            }),
        );
        if let Err(e) = coordinator.audit().append(record).await {
            let _ = conn.execute_batch("ROLLBACK");
            tracing::error!(error = %e, "audit log unavailable while registering a complaint's status");
            return unavailable("the audit log is unavailable");
        }
        if let Err(e) = conn.execute_batch("COMMIT") {
            let _ = conn.execute_batch("ROLLBACK");
            tracing::error!(error = %e, "the complaint queue cannot be written");
            return unavailable("the complaint queue cannot be written");
        }
        let updated = read_complaint(&conn, &self.path, id);
        drop(conn);
        metrics::counter!("fedq_complaints_total", "event" => "status").increment(1);
        match updated {
            Ok(c) => Reply::ok(&c.state()),
            Err(_) => unavailable("the complaint queue cannot be read"),
        }
    }
}

/// The statement an officer signs, and the update that carries it, made with `key`.
pub fn signed_update(
    key: &fedq_certs::signing::OfficerKey,
    id: &str,
    status: ComplaintStatus,
    note: &str,
    signed_at: i64,
) -> Result<StatusUpdate, fedq_certs::TlsError> {
    let statement = StatusStatement {
        purpose: StatusStatement::PURPOSE.into(),
        complaint_id: id.to_owned(),
        status,
        note: note.to_owned(),
        signed_at,
    };
    let text = serde_json::to_string(&statement).unwrap_or_default();
    let signature = key.sign(text.as_bytes())?;
    let b64 = base64::engine::general_purpose::STANDARD;
    Ok(StatusUpdate {
        statement: text,
        signature: b64.encode(signature),
        certificate: b64.encode(key.certificate().as_ref()),
    })
}

/// What `fedq complaint update` is given.
#[derive(Clone, Debug)]
pub struct UpdateArgs {
    /// The coordinator's config (for its address, CA and queue).
    pub config: PathBuf,
    /// The coordinator's URL, if not the config's `listen` address.
    pub coordinator: Option<String>,
    /// The complaint.
    pub id: String,
    /// The status it goes to.
    pub status: ComplaintStatus,
    /// The officer's note.
    pub note: String,
    /// The officer's certificate.
    pub officer_cert: PathBuf,
    /// Its key.
    pub officer_key: PathBuf,
}

/// Why `fedq complaint update` or `fedq complaint …` did not get its answer.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The arguments or files cannot be used.
    #[error("{0}")]
    Usage(String),
    /// The coordinator could not be reached or refused.
    #[error(transparent)]
    Api(#[from] fedq_client::Error),
}

/// `fedq complaint update`: signs the change with the officer's key and sends it to the
/// running coordinator (the one writer of its audit log) under the officer's certificate;
/// the coordinator verifies the signature against the federation CA before recording it.
pub async fn update(args: &UpdateArgs) -> Result<ComplaintState, ToolError> {
    let config = crate::config::CoordinatorConfig::load(&args.config)
        .map_err(|e| ToolError::Usage(e.to_string()))?;
    let key = fedq_certs::signing::OfficerKey::load(&args.officer_cert, &args.officer_key)
        .map_err(|e| ToolError::Usage(e.to_string()))?;
    if !is_complaint_id(&args.id) {
        return Err(ToolError::Usage(
            "a complaint id is 32 hex digits, as `fedq complaint list` shows".into(),
        ));
    }
    if args.note.trim().is_empty() || args.note.len() > MAX_NOTE_BYTES {
        return Err(ToolError::Usage(format!(
            "--note must be 1 to {MAX_NOTE_BYTES} bytes"
        )));
    }
    let update = signed_update(
        &key,
        &args.id,
        args.status,
        &args.note,
        OffsetDateTime::now_utc().unix_timestamp(),
    )
    .map_err(|e| ToolError::Usage(e.to_string()))?;
    let url = match &args.coordinator {
        Some(url) => url.clone(),
        None => local_url(config.listen),
    };
    let mut api = fedq_client::Client::connect(
        &url,
        &config.tls.trust.ca,
        Some((&args.officer_cert, &args.officer_key)),
    )
    .await?;
    Ok(api.update_complaint(&args.id, &update).await?)
}

/// The coordinator's URL from its `listen` address (an unspecified address is reached on
/// loopback).
fn local_url(listen: std::net::SocketAddr) -> String {
    let ip = match listen.ip() {
        std::net::IpAddr::V4(v4) if v4.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(v6) if v6.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    format!("https://{}", std::net::SocketAddr::new(ip, listen.port()))
}

/// `fedq complaint file`: files a complaint under the requester certificate of `api`.
pub async fn file(
    api: &crate::client::ApiArgs,
    request: &ComplaintRequest,
) -> Result<ComplaintFiled, ToolError> {
    let mut client =
        fedq_client::Client::connect(&api.coordinator, &api.ca, Some((&api.cert, &api.key)))
            .await?;
    Ok(client.file_complaint(request).await?)
}

/// `fedq complaint status`: the status of a complaint the requester of `api` filed.
pub async fn status(api: &crate::client::ApiArgs, id: &str) -> Result<ComplaintState, ToolError> {
    let mut client =
        fedq_client::Client::connect(&api.coordinator, &api.ca, Some((&api.cert, &api.key)))
            .await?;
    Ok(client.complaint(id).await?)
}

/// A complaint's state for its filer, as `fedq complaint status` prints it.
pub fn render_state(s: &ComplaintState) -> String {
    let about = match &s.about {
        ComplaintAbout::Query(q) => format!("query {q}"),
        ComplaintAbout::Leak(_) => "a leak".into(),
    };
    let mut out = format!(
        "complaint {}  {}\n  filed {} about {}, routed to {}\n",
        s.complaint_id,
        s.status,
        s.filed_at,
        about,
        s.departments.join(", ")
    );
    for h in &s.history {
        match &h.officer {
            Some(o) => out.push_str(&format!(
                "  {}  {:<9}  by {o}: {}\n",
                h.at,
                h.status.as_str(),
                h.note.as_deref().unwrap_or("")
            )),
            None => out.push_str(&format!("  {}  {:<9}  filed\n", h.at, h.status.as_str())),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_complaint_body_is_checked_without_quoting_it() {
        let ok = parse_complaint(br#"{"about": {"query": "ab12"}, "text": "who looked?"}"#);
        assert!(ok.is_ok());
        let leak =
            parse_complaint(br#"{"about": {"leak": true}, "text": "x", "contact": "c"}"#).unwrap();
        assert_eq!(leak.about, ComplaintAbout::Leak(true));
        let long = format!(
            r#"{{"about": {{"leak": true}}, "text": "{}"}}"#,
            "x".repeat(MAX_TEXT_BYTES + 1)
        );
        for body in [
            br#"{"about": {"leak": false}, "text": "x"}"#.to_vec(),
            br#"{"about": {"leak": true}, "text": "  "}"#.to_vec(),
            br#"{"about": {"query": "a b%"}, "text": "SECRET-WORD"}"#.to_vec(),
            br#"{"about": {"query": "ab"}, "text": "x", "extra": "SECRET-WORD"}"#.to_vec(),
            br#"{"about": {"query": "ab", "leak": true}, "text": "x"}"#.to_vec(),
            br#"{"about": {"leak": true}, "text": "x", "contact": ""}"#.to_vec(),
            br#"not json SECRET-WORD"#.to_vec(),
            b"{\"about\": {\"leak\": true}, \"text\": \"SECRET-WORD \\u001b[2J\"}".to_vec(),
            long.into_bytes(),
        ] {
            let Err(reply) = parse_complaint(&body) else {
                panic!("accepted {}", String::from_utf8_lossy(&body))
            };
            assert_eq!(reply.status, 400);
            let text = reply.body.to_string();
            assert!(!text.contains("SECRET-WORD"), "{text}");
            assert!(!text.contains('\n'), "{text}");
        }
    }

    #[test]
    fn statuses_go_one_way() {
        use ComplaintStatus::*;
        assert!(
            Open.may_become(InReview) && Open.may_become(Closed) && InReview.may_become(Closed)
        );
        assert!(!Closed.may_become(Open) && !Closed.may_become(InReview));
        assert!(!InReview.may_become(Open) && !Open.may_become(Open));
    }

    #[test]
    fn the_local_url_of_an_unspecified_listen_address_is_loopback() {
        assert_eq!(
            local_url("0.0.0.0:8443".parse().unwrap()),
            "https://127.0.0.1:8443"
        );
        assert_eq!(
            local_url("10.0.0.5:8443".parse().unwrap()),
            "https://10.0.0.5:8443"
        );
    }
}
