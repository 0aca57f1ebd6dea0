//! Tamper-evident audit logs (长政办发〔2017〕62号 §八: every query registered and reviewable).
//!
//! One SQLite file per process (node or coordinator). Each entry carries the SHA-256 of
//! the previous entry, so editing or deleting a row breaks the chain at a point
//! [`verify`] names. Entries are appended by one writer thread that commits them in
//! groups (WAL, `synchronous=FULL`): a caller's [`AuditLog::append`] resolves only after
//! the group holding its entry is durable, so "audit before answer" holds without one
//! fsync per answer.
//!
//! What an entry may hold: who asked, for what purpose and legal basis, a keyed
//! [`Pseudonymizer`] pseudonym of the subject, what was asked and what was released (field
//! names and transforms), outcomes, the policy version. **Never a raw resident ID and
//! never a record value** — callers pass only those; this crate cannot tell, so the
//! types at its callers are built to make the wrong thing hard.
//!
//! Each group commit's time (transaction to durable, fsync included) is recorded as
//! [`COMMIT_SECONDS`], a failed one counted as [`COMMIT_FAILURES`]; [`AuditLog::health`]
//! says whether entries can be written now (for a process's `/health`).

#![warn(missing_docs, unreachable_pub)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub mod checkpoint;
pub mod merkle;
pub mod review;
mod tree;
pub mod witness;
#[cfg(test)]
mod witnessed_tests;
use std::sync::Arc;
use std::time::Duration;

use ring::digest;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use zeroize::Zeroizing;

/// Errors of the audit log.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuditError {
    /// The database could not be opened or written.
    #[error("audit log `{path}`: {reason}")]
    Store {
        /// The file.
        path: String,
        /// What failed, with the error behind it as the source.
        #[source]
        reason: Cause,
    },
    /// The writer thread has stopped; nothing more can be recorded (callers fail closed).
    #[error("audit log writer has stopped; no answer can be released until it is restored")]
    WriterStopped,
    /// The entry's case reference is longer than [`MAX_CASE_REFERENCE_BYTES`] or holds a
    /// control character; nothing was written (callers record only references that have
    /// their purpose's form, which are shorter).
    #[error("audit entry refused: its case reference is {bytes} bytes or holds a control character; at most {MAX_CASE_REFERENCE_BYTES} bytes of printable text are recorded")]
    CaseReference {
        /// Its length.
        bytes: usize,
    },
    /// The entry is larger than [`MAX_RECORD_BYTES`]; nothing was written (callers fail
    /// closed and should have refused the request that made it first).
    #[error("audit entry of {bytes} bytes refused: entries are at most {MAX_RECORD_BYTES} bytes; ask for less in one request")]
    TooLarge {
        /// The entry's size (the sum of its text fields).
        bytes: usize,
    },
    /// The pseudonym key file is unusable.
    #[error("pseudonym key `{path}`: {reason}")]
    Key {
        /// The file.
        path: String,
        /// What is wrong, with the error behind it as the source.
        #[source]
        reason: Cause,
    },
}

/// Why a file of the log failed ([`AuditError::Store`], [`AuditError::Key`]): the error
/// behind it (SQLite's, the file system's, …), kept as the source, or a message where
/// there is none. Cheap to clone, as a failed group commit is cloned to every waiter.
/// Its message is the one the error always had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Cause {
    /// An error, as it says.
    #[error(transparent)]
    Error(Arc<dyn std::error::Error + Send + Sync>),
    /// An error that `message` explains (its text is part of `message`).
    #[error("{message}")]
    Explained {
        /// What failed and why, naming the error.
        message: String,
        /// The error.
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
    /// What is wrong, with no error behind it.
    #[error("{0}")]
    Message(String),
}

impl Cause {
    /// `error` as the cause.
    pub fn of(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Error(Arc::new(error))
    }

    /// `error` as the cause, described by `message` (which names it).
    pub fn explained(
        message: impl Into<String>,
        error: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Explained {
            message: message.into(),
            source: Arc::new(error),
        }
    }
}

impl Cause {
    /// The error behind it, if any (e.g. a `rusqlite::Error` or a `std::io::Error`, to
    /// downcast to).
    pub fn error(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        match self {
            Self::Error(error) | Self::Explained { source: error, .. } => Some(&**error),
            Self::Message(_) => None,
        }
    }
}

impl From<String> for Cause {
    fn from(message: String) -> Self {
        Self::Message(message)
    }
}

impl From<&str> for Cause {
    fn from(message: &str) -> Self {
        Self::Message(message.to_owned())
    }
}

impl AuditError {
    /// The log at `path` failed because of `reason`.
    pub(crate) fn store(path: &Path, reason: impl Into<Cause>) -> Self {
        Self::Store {
            path: path.display().to_string(),
            reason: reason.into(),
        }
    }
}

fn store_err(path: &Path) -> impl Fn(rusqlite::Error) -> AuditError + '_ {
    move |e| AuditError::store(path, Cause::of(e))
}

/// Keyed pseudonyms of resident IDs: HMAC-SHA256 with a process-local secret, so the
/// same person has the same pseudonym in one log ("who looked at me?" works) but
/// different ones in different departments' logs (no stable cross-department pseudonym).
pub struct Pseudonymizer {
    key: ring::hmac::Key,
}

impl std::fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonymizer(..)")
    }
}

impl Pseudonymizer {
    /// Loads the 32-byte key at `path`, creating it (mode 0600, atomically) if absent.
    pub fn load_or_create(path: &Path) -> Result<Self, AuditError> {
        let key_err = |reason: Cause| AuditError::Key {
            path: path.display().to_string(),
            reason,
        };
        let bytes: Zeroizing<Vec<u8>> = match std::fs::read(path) {
            Ok(bytes) => {
                // Whoever reads this key can link pseudonyms back to resident IDs by
                // trying IDs: refuse it, as ssh refuses a readable key.
                fedq_certs::fsutil::check_private_key(path)
                    .map_err(|why| key_err(Cause::of(why)))?;
                Zeroizing::new(bytes)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut fresh = Zeroizing::new(vec![0u8; 32]);
                ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut fresh)
                    .map_err(|_| key_err("no randomness available".into()))?;
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    fedq_certs::fsutil::create_private_dir(dir)
                        .map_err(|e| key_err(Cause::of(e)))?;
                }
                fedq_certs::fsutil::write_atomic(path, &fresh, fedq_certs::fsutil::KEY_MODE)
                    .map_err(|e| key_err(Cause::of(e)))?;
                fresh
            }
            Err(e) => return Err(key_err(Cause::of(e))),
        };
        if bytes.len() != 32 {
            return Err(key_err(format!(
                "expected 32 bytes, found {}; restore it from backup (a new key breaks \"who looked at me?\" for past entries)",
                bytes.len()
            )
            .into()));
        }
        Ok(Self::from_key(&bytes))
    }

    /// A pseudonymizer over raw key bytes.
    pub fn from_key(key: &[u8]) -> Self {
        Self {
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key),
        }
    }

    /// The pseudonym of a subject: 32 hex characters.
    pub fn pseudonym(&self, resident_id: &str) -> String {
        let tag = ring::hmac::sign(&self.key, resident_id.as_bytes());
        hex::encode(tag.as_ref().get(..16).unwrap_or_default())
    }

    /// The key that derives each node's own query id from the coordinator's
    /// ([`NodeQueryIds`]): HMAC-SHA256 under this process's pseudonym key of a fixed label,
    /// so it is as secret as that key, never leaves the process, and never equals a
    /// pseudonym (the label is not a resident ID, and pseudonyms are only made of those).
    pub fn node_query_ids(&self) -> NodeQueryIds {
        let derived = Zeroizing::new(
            ring::hmac::sign(&self.key, NODE_QUERY_ID_LABEL)
                .as_ref()
                .to_vec(),
        );
        NodeQueryIds {
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &derived),
        }
    }
}

const NODE_QUERY_ID_LABEL: &[u8] = b"fedq node query id key v1";

/// Per-node query ids (issue 14 §6): each node asked for one query sees and records its
/// own id — HMAC-SHA256 of the node's name and the coordinator's query id under a key
/// only the coordinator holds, truncated to 12 bytes, hex — so no two departments' logs
/// share an id to join on. The coordinator's own entry keeps the mapping
/// ([`AuditRecord::node_query_ids`]) for an audit that needs to join.
pub struct NodeQueryIds {
    key: ring::hmac::Key,
}

impl std::fmt::Debug for NodeQueryIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeQueryIds(..)")
    }
}

impl NodeQueryIds {
    /// A key over raw bytes (tests).
    pub fn from_key(key: &[u8]) -> Self {
        Self {
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key),
        }
    }

    /// The id `node` sees for the coordinator's query `query_id`: 24 hex characters, the
    /// length of the coordinator's own ids.
    pub fn for_node(&self, query_id: &str, node: &str) -> String {
        let mut ctx = ring::hmac::Context::with_key(&self.key);
        // Length-prefixed, so no (node, id) pair reads as another.
        for part in [node.as_bytes(), query_id.as_bytes()] {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part);
        }
        hex::encode(ctx.sign().as_ref().get(..12).unwrap_or_default())
    }
}

/// What a caller records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When (UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// What the entry registers ([`EntryKind`]; stored as its name).
    pub kind: EntryKind,
    /// This process's id of the query: the coordinator's own, or at a node the node's
    /// own id for it (derived per node; no two departments record the same id).
    pub query_id: String,
    /// `agency.office` of the requester, or the operator for `repair`.
    pub requester: String,
    /// Declared purpose.
    pub purpose: String,
    /// Cited legal basis.
    pub legal_basis: Option<String>,
    /// The case the query served (a licensing application or court case number), only
    /// when it has the form the purpose declares; at most [`MAX_CASE_REFERENCE_BYTES`].
    /// Not personal data: it names a file of the requesting office, not a person.
    #[serde(default)]
    pub case_reference: Option<String>,
    /// The subject's keyed pseudonym.
    pub subject: String,
    /// What was asked: a view or datasets and fields.
    pub target: String,
    /// What happened: released fields and transforms, per-node statuses, refusal reason
    /// ([`Outcome`]; stored as its JSON text).
    pub outcome: Outcome,
    /// Policy version that decided.
    pub policy_version: String,
    /// The `jti` of the consent token the query carried, once its signature verified (a
    /// token that did not verify is not quoted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent_id: Option<String>,
    /// Coordinator `query` entries: each node asked → the query id that node recorded.
    /// Empty elsewhere.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_query_ids: BTreeMap<String, String>,
    /// Node `answer` entries: the SHA-256 of the sealed answer released with this entry
    /// ([`checkpoint::answer_sha256`]), which the entry's hash then commits to
    /// ([`checkpoint::answer_bound_hash`]) so that its receipt checks only with that
    /// answer. Not personal data: a hash of ciphertext only the requester can open.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "hex_digest")]
    pub answer_sha256: Option<merkle::Hash>,
}

/// A 32-byte digest as hex text.
mod hex_digest {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(
        digest: &Option<crate::merkle::Hash>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match digest {
            Some(d) => s.serialize_some(&hex::encode(d)),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<crate::merkle::Hash>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| {
                crate::checkpoint::hex32(&text)
                    .ok_or_else(|| serde::de::Error::custom("not 32 bytes of hex"))
            })
            .transpose()
    }
}

/// What one audit entry registers. Stored (and hashed) as its name, which is the text
/// older logs hold, so logs written before the kind was typed read and verify unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryKind {
    /// A query answered by the coordinator (complete or partial).
    Query,
    /// A node's answer to one lookup (or a lookup it could not serve).
    Answer,
    /// A query or lookup refused before anything was read.
    Refusal,
    /// A credit repair recorded, rejected or reversed on the review office's signed
    /// decision (`fedq node repair`).
    Repair,
    /// A requester's session opened at a node or through the coordinator.
    Session,
    /// A policy bundle that went into force here.
    PolicyInstalled,
    /// A policy bundle refused here.
    PolicyRefused,
    /// A publication's outcome on every node (coordinator).
    Policy,
    /// Entry bodies shredded at the end of the policy's retention period.
    Retention,
    /// An officer's resolution of a person's objection to a record (`fedq node resolve`).
    Objection,
    /// A complaint filed, or its status changed by an officer (coordinator): the
    /// complaint's id and the departments it is routed to, never its text or contact.
    Complaint,
    /// A department's part of a public disclosure made (`fedq disclose part`): the list,
    /// the date and the counts, never a row.
    Disclosure,
    /// An aggregate (statistics) query answered or refused: its cells' count, the ε
    /// spent and the budget left, never a person.
    Statistic,
}

impl EntryKind {
    /// Every kind, in a fixed order.
    pub const ALL: [EntryKind; 13] = [
        EntryKind::Query,
        EntryKind::Answer,
        EntryKind::Refusal,
        EntryKind::Repair,
        EntryKind::Session,
        EntryKind::PolicyInstalled,
        EntryKind::PolicyRefused,
        EntryKind::Policy,
        EntryKind::Retention,
        EntryKind::Objection,
        EntryKind::Complaint,
        EntryKind::Disclosure,
        EntryKind::Statistic,
    ];

    /// Whether retention keeps this kind's body: the entries about the policy (a restarted
    /// process reads its policy floor from them) and about retention itself, which hold
    /// nothing of a person. [`shred`] leaves exactly these.
    pub fn outlives_retention(self) -> bool {
        matches!(
            self,
            EntryKind::PolicyInstalled
                | EntryKind::PolicyRefused
                | EntryKind::Policy
                | EntryKind::Retention
        )
    }

    /// The name the log stores.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Query => "query",
            EntryKind::Answer => "answer",
            EntryKind::Refusal => "refusal",
            EntryKind::Repair => "repair",
            EntryKind::Session => "session",
            EntryKind::PolicyInstalled => "policy-installed",
            EntryKind::PolicyRefused => "policy-refused",
            EntryKind::Policy => "policy",
            EntryKind::Retention => "retention",
            EntryKind::Objection => "objection",
            EntryKind::Complaint => "complaint",
            EntryKind::Disclosure => "disclosure",
            EntryKind::Statistic => "statistic",
        }
    }
}

impl std::fmt::Display for EntryKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The class of an entry's outcome ([`Outcome::class`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutcomeClass {
    /// Not refused: answered, installed, filed.
    Answered,
    /// Refused, other than for a rate limit.
    Refused,
    /// Refused for a rate limit (HTTP 429).
    RateLimited,
}

impl OutcomeClass {
    /// `answered`, `refused` or `rate-limited`.
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeClass::Answered => "answered",
            OutcomeClass::Refused => "refused",
            OutcomeClass::RateLimited => "rate-limited",
        }
    }

    /// The class `s` names (as [`OutcomeClass::as_str`]).
    pub fn parse(s: &str) -> Option<OutcomeClass> {
        [
            OutcomeClass::Answered,
            OutcomeClass::Refused,
            OutcomeClass::RateLimited,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

/// What an entry says happened: released fields and transforms, per-node statuses, a
/// refusal's reason. Written as a JSON text, and stored and hashed as exactly that text,
/// so an entry reads back (and verifies) byte for byte whatever its producer; the type
/// keeps free text from standing in for it ([`Outcome::json`], [`Outcome::of`]) and reads
/// what a restart needs back from it ([`Outcome::installed_version`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Outcome(String);

impl Outcome {
    /// The outcome `value` says, as its compact JSON text.
    pub fn json(value: &serde_json::Value) -> Self {
        Self(value.to_string())
    }

    /// The outcome `value` serializes to (fields in the order it declares them); `{}` if it
    /// cannot be serialized.
    pub fn of(value: &impl Serialize) -> Self {
        Self(serde_json::to_string(value).unwrap_or_else(|_| "{}".into()))
    }

    /// A `policy-installed` entry's outcome: the bundle that went into force.
    pub fn policy_installed(version: u64, content_sha256: &str, approved_by: &[String]) -> Self {
        Self::of(&PolicyInstalled {
            approved_by,
            content_sha256,
            version,
        })
    }

    /// What kind of outcome this is, for reviewers' filters: a refusal (a rate limit's
    /// apart), or anything else the entry records (an answer, an installation, a filing).
    pub fn class(&self) -> OutcomeClass {
        let value: serde_json::Value = serde_json::from_str(&self.0).unwrap_or_default();
        match value.get("refused") {
            None => OutcomeClass::Answered,
            Some(reason) => {
                let limited = value.get("http").and_then(serde_json::Value::as_u64) == Some(429)
                    || reason.as_str().is_some_and(|r| r.contains("rate limit"));
                if limited {
                    OutcomeClass::RateLimited
                } else {
                    OutcomeClass::Refused
                }
            }
        }
    }

    /// The text as a log holds it (read back from the `outcome` column).
    fn stored(text: String) -> Self {
        Self(text)
    }

    /// The stored text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The outcome as JSON, if its text is JSON (every outcome fedq writes is).
    pub fn to_json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.0).ok()
    }

    /// The bundle version a `policy-installed` outcome registers.
    pub fn installed_version(&self) -> Option<u64> {
        self.to_json()?.get("version")?.as_u64()
    }
}

/// A `policy-installed` entry's outcome. Its fields are in the order the entries have
/// always been written in (alphabetical), so the stored text is unchanged.
#[derive(Serialize)]
struct PolicyInstalled<'a> {
    approved_by: &'a [String],
    content_sha256: &'a str,
    version: u64,
}

impl std::ops::Deref for Outcome {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Outcome {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for Outcome {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Outcome {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// A stored kind that is none of [`EntryKind`]'s names.
#[derive(Debug, thiserror::Error)]
#[error("an audit entry's kind is not one fedq writes (expected one of query, answer, refusal, repair, session, policy-installed, policy-refused, policy, retention, objection, complaint)")]
pub struct UnknownKind;

impl std::str::FromStr for EntryKind {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<Self, UnknownKind> {
        EntryKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or(UnknownKind)
    }
}

/// Longest case reference an entry may carry, in bytes (the policy's bound too).
pub const MAX_CASE_REFERENCE_BYTES: usize = 128;

/// Largest entry accepted, counted as the sum of its text fields: an entry names who
/// asked, what and with what outcome, which for the largest lookup a node accepts is a
/// few kilobytes; anything far larger is a request that should have been refused.
pub const MAX_RECORD_BYTES: usize = 64 * 1024;

impl AuditRecord {
    /// The entry's size: the sum of its text fields' lengths in bytes.
    pub fn size(&self) -> usize {
        self.kind.as_str().len()
            + [
                self.query_id.as_str(),
                &self.requester,
                &self.purpose,
                &self.subject,
                &self.target,
                self.outcome.as_str(),
                &self.policy_version,
            ]
            .iter()
            .map(|f| f.len())
            .sum::<usize>()
            + self.legal_basis.as_ref().map_or(0, String::len)
            + self.consent_id.as_ref().map_or(0, String::len)
            + self.case_reference.as_ref().map_or(0, String::len)
            + self
                .node_query_ids
                .iter()
                .map(|(n, id)| n.len() + id.len())
                .sum::<usize>()
    }
}

/// A stored entry: the record with its place in the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// Position, from 1.
    pub seq: u64,
    /// The record.
    #[serde(flatten)]
    pub record: AuditRecord,
    /// Hash of the previous entry (hex; zeros for the first).
    pub prev_hash: String,
    /// Hash of this entry (hex).
    pub hash: String,
    /// Whether the entry's body was deleted at the end of its retention period (its
    /// fields are then empty; its hashes remain).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shredded: bool,
}

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An entry's hash (hex): its content hash ([`content_hash`]), or for an entry bound to
/// an answer the hash of that and the answer's ([`checkpoint::answer_bound_hash`]).
/// Entries without an answer hash as they always did, so older logs verify unchanged.
fn entry_hash(seq: u64, prev_hash: &str, r: &AuditRecord) -> String {
    let content = content_hash(seq, prev_hash, r);
    hex::encode(bound_hash(&content, r))
}

fn bound_hash(content: &merkle::Hash, r: &AuditRecord) -> merkle::Hash {
    match &r.answer_sha256 {
        Some(answer) => checkpoint::answer_bound_hash(content, answer),
        None => *content,
    }
}

/// The hash of an entry's fields, its sequence number and the previous entry's hash
/// (everything but the answer it was written for).
fn content_hash(seq: u64, prev_hash: &str, r: &AuditRecord) -> merkle::Hash {
    let mut ctx = digest::Context::new(&digest::SHA256);
    let mut put = |bytes: &[u8]| {
        ctx.update(&(bytes.len() as u64).to_be_bytes());
        ctx.update(bytes);
    };
    put(b"fedq audit v1");
    put(&seq.to_be_bytes());
    put(prev_hash.as_bytes());
    put(format_time(r.at).as_bytes());
    put(r.kind.as_str().as_bytes());
    put(r.query_id.as_bytes());
    put(r.requester.as_bytes());
    put(r.purpose.as_bytes());
    match &r.legal_basis {
        Some(b) => {
            put(b"1");
            put(b.as_bytes());
        }
        None => put(b"0"),
    }
    put(r.subject.as_bytes());
    put(r.target.as_bytes());
    put(r.outcome.as_str().as_bytes());
    put(r.policy_version.as_bytes());
    // Added later: hashed only when present, so entries written before keep their hashes.
    if let Some(id) = &r.consent_id {
        put(b"consent");
        put(id.as_bytes());
    }
    // Appended only when present, so entries written before the field existed hash (and
    // verify) as they did; every item is length-prefixed, so the two cannot collide.
    if let Some(case) = &r.case_reference {
        put(b"case_reference");
        put(case.as_bytes());
    }
    // Hashed only when present, so entries written before the field existed verify as
    // they were written.
    if !r.node_query_ids.is_empty() {
        put(b"node_query_ids");
        for (node, id) in &r.node_query_ids {
            put(node.as_bytes());
            put(id.as_bytes());
        }
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

fn format_time(t: OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    query_id TEXT NOT NULL,
    requester TEXT NOT NULL,
    purpose TEXT NOT NULL,
    legal_basis TEXT,
    subject TEXT NOT NULL,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL,
    policy_version TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    case_reference TEXT,
    node_query_ids TEXT
);
CREATE TABLE IF NOT EXISTS consent_uses (
    jti TEXT PRIMARY KEY,
    uses INTEGER NOT NULL,
    expires INTEGER NOT NULL
);
";

/// Every append is on a query's path; a reviewer's `fedq audit list` is occasional and
/// reads by filters (`?1 IS NULL OR requester = ?1` …) that no index serves, so it scans in
/// `seq` order. A secondary index would only cost every entry more B-tree pages written
/// and synced; logs created with the old ones lose them on open.
const NO_SECONDARY_INDEXES: &str = "DROP INDEX IF EXISTS audit_subject;
DROP INDEX IF EXISTS audit_requester;
DROP INDEX IF EXISTS audit_case;";

fn open(path: &Path) -> Result<Connection, AuditError> {
    let conn = Connection::open(path).map_err(store_err(path))?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;",
    )
    .map_err(store_err(path))?;
    conn.execute_batch(SCHEMA).map_err(store_err(path))?;
    conn.execute_batch(tree::SCHEMA).map_err(store_err(path))?;
    // Columns later entries carry, added to a log written before them (NULL for its
    // old entries, whose hashes do not include them): the consent token's id, the case
    // reference, each node's own id of a query, the shredded mark of retention (an entry
    // whose body was deleted keeps its row, chain link and hash, the tree's leaf), and the
    // answer an entry was written for.
    for (column, kind) in [
        ("consent_id", "TEXT"),
        ("case_reference", "TEXT"),
        ("node_query_ids", "TEXT"),
        ("shredded", "INTEGER"),
        ("answer_sha256", "TEXT"),
    ] {
        let present = conn
            .prepare("SELECT 1 FROM pragma_table_info('audit') WHERE name = ?1")
            .and_then(|mut s| s.exists([column]))
            .map_err(store_err(path))?;
        if !present {
            conn.execute_batch(&format!("ALTER TABLE audit ADD COLUMN {column} {kind}"))
                .map_err(store_err(path))?;
        }
    }
    conn.execute_batch(NO_SECONDARY_INDEXES)
        .map_err(store_err(path))?;
    Ok(conn)
}

/// An entry to write, the consent use it records (the token's `exp`, with the `jti` in
/// the record) if it is an answer released under a consent token, and who waits for it.
type Pending = (
    AuditRecord,
    Option<i64>,
    oneshot::Sender<Result<Committed, AuditError>>,
);

/// What the writer thread is handed: an entry, or the signing log's clock, so that a log
/// whose entries stopped still keeps a checkpoint of them once the cadence's time is up.
// As large as an entry was on its own before the tick: boxing it would add an
// allocation per entry on the hot path to save nothing.
#[allow(clippy::large_enum_variant)]
enum Work {
    Entry(Pending),
    Tick,
}

/// An entry made durable: its sequence number and, in a log that signs its checkpoints,
/// the receipt for it.
#[derive(Debug, Clone)]
pub struct Committed {
    /// The entry's sequence number.
    pub seq: u64,
    /// The signed commitment to the entry (`None` in a log without a signing key).
    pub receipt: Option<checkpoint::Receipt>,
}

/// How often a signing log keeps a checkpoint for its witnesses: after this many entries
/// or this much time since the last one, whichever comes first (checked at each group
/// commit, and by the writer's clock when no entry comes: the newest entries of a log
/// that fell quiet are checkpointed once the time is up). Every group commit's tree head
/// is signed for its receipts either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cadence {
    /// Entries between kept checkpoints.
    pub entries: u64,
    /// Time between kept checkpoints.
    pub interval: Duration,
}

impl Default for Cadence {
    fn default() -> Self {
        Self {
            entries: 1000,
            interval: Duration::from_secs(60),
        }
    }
}

/// A log's own signing key and checkpoint cadence.
#[derive(Debug)]
pub struct Signing {
    /// The key; its name is the log's origin.
    pub signer: checkpoint::NoteSigner,
    /// When checkpoints are kept.
    pub cadence: Cadence,
}

/// Why a process's certificate key cannot sign its audit log.
#[derive(Debug, thiserror::Error)]
pub enum SigningKeyError {
    /// The certificate or key does not load.
    #[error(transparent)]
    Credentials(#[from] fedq_certs::tls::TlsError),
    /// The key is not one a checkpoint can be signed with.
    #[error("the key `{key}` cannot sign the audit log's checkpoints: {source}")]
    Key {
        /// The key file.
        key: String,
        /// Why.
        #[source]
        source: checkpoint::CheckpointError,
    },
}

impl Signing {
    /// The signing state of a federation process's log: its certificate key (the TLS key
    /// `fedq certs` wrote, PKCS#8 P-256) under the key name `fedq/<federation>/<role>/<name>`
    /// from the certificate ([`checkpoint::log_name`]), so whoever verifies the certificate
    /// can check the log's checkpoints and receipts with it.
    pub fn from_certificate(
        cert: &Path,
        key: &Path,
        cadence: Cadence,
    ) -> Result<Self, SigningKeyError> {
        let signer = certificate_signer(cert, key, |id| {
            checkpoint::log_name(&id.federation, id.role.as_str(), &id.name)
        })?;
        Ok(Self { signer, cadence })
    }

    /// The key a federation process cosigns other logs' checkpoints with as a witness:
    /// the same certificate key as its own log's, under the name
    /// `fedq/<federation>/witness/<name>` ([`checkpoint::witness_name`]).
    pub fn witness_signer(
        cert: &Path,
        key: &Path,
    ) -> Result<checkpoint::NoteSigner, SigningKeyError> {
        certificate_signer(cert, key, |id| {
            checkpoint::witness_name(&id.federation, &id.name)
        })
    }
}

/// A signer with a certificate's key, named from its identity by `name`.
fn certificate_signer(
    cert: &Path,
    key: &Path,
    name: impl FnOnce(&fedq_certs::Identity) -> String,
) -> Result<checkpoint::NoteSigner, SigningKeyError> {
    let creds = fedq_certs::tls::Credentials::load(cert, key)?;
    let name = name(creds.identity());
    let (_, pkcs8) = creds.chain_and_key();
    checkpoint::NoteSigner::from_pkcs8(&name, pkcs8.secret_der()).map_err(|source| {
        SigningKeyError::Key {
            key: key.display().to_string(),
            source,
        }
    })
}

/// The writer's signing state.
struct Signer {
    signing: Signing,
    kept_size: u64,
    kept_at: std::time::Instant,
    /// The key was renewed since the last kept checkpoint: keep the next one.
    renewed: bool,
}

/// Most entries committed in one transaction.
const MAX_GROUP: usize = 1024;

/// Histogram: seconds one group commit took, from its transaction's start until it was
/// durable (the fsync included).
pub const COMMIT_SECONDS: &str = "fedq_audit_commit_seconds";
/// Counter: group commits that failed (every answer in them withheld).
pub const COMMIT_FAILURES: &str = "fedq_audit_commit_failures_total";

/// Describes this crate's metrics to the installed recorder and registers them, so they
/// are exported (at zero) before the first entry is written.
pub fn describe_metrics() {
    metrics::describe_histogram!(
        COMMIT_SECONDS,
        metrics::Unit::Seconds,
        "Time one audit group commit took until durable (fsync included); answers wait for it"
    );
    metrics::describe_counter!(
        COMMIT_FAILURES,
        metrics::Unit::Count,
        "Audit group commits that failed; every answer in them was withheld"
    );
    let _ = metrics::histogram!(COMMIT_SECONDS);
    metrics::counter!(COMMIT_FAILURES).increment(0);
}

/// An open audit log with its group-commit writer.
#[derive(Clone, Debug)]
pub struct AuditLog {
    tx: mpsc::Sender<Work>,
    path: Arc<PathBuf>,
    /// The file opened, to notice it removed or replaced under the running process.
    file: fedq_certs::fsutil::FileIdentity,
    /// Why the last group commit failed; `None` once one succeeds again.
    last_failure: Arc<std::sync::Mutex<Option<AuditError>>>,
    /// A new key for a signing log (its certificate renewed), taken by the writer before
    /// its next group.
    next_signer: Arc<std::sync::Mutex<Option<checkpoint::NoteSigner>>>,
}

/// Why an audit log cannot take entries now ([`AuditLog::health`]), for an operator: it
/// names files, never an entry.
#[derive(Debug, thiserror::Error)]
pub enum Unhealthy {
    /// The writer thread has stopped.
    #[error("the audit log `{}` writer has stopped: nothing can be answered; restart the process", path.display())]
    WriterStopped {
        /// The log's path.
        path: PathBuf,
    },
    /// The last group commit failed.
    #[error("the last commit to the audit log failed ({why}): answers are withheld until one succeeds; check the disk")]
    CommitFailed {
        /// Why: the commit's error, as the writer recorded it.
        #[source]
        why: AuditError,
    },
    /// The file at the log's path is no longer the one it writes.
    #[error(transparent)]
    Moved(#[from] fedq_certs::fsutil::FileMoved),
}

impl AuditLog {
    /// Opens (creating if needed) the log at `path` and starts its writer thread. The file
    /// and its `-wal` and `-shm` are owner-only (0600) whatever the umask.
    pub fn open(path: &Path) -> Result<Self, AuditError> {
        Self::open_with(path, None)
    }

    /// Opens the log at `path` as [`AuditLog::open`] does, signing the tree head of every
    /// group commit with `signing`'s key: each entry's [`Committed`] carries its receipt,
    /// and checkpoints are kept (table `checkpoints`) at the signing cadence.
    pub fn open_signing(path: &Path, signing: Signing) -> Result<Self, AuditError> {
        Self::open_with(path, Some(signing))
    }

    fn open_with(path: &Path, signing: Option<Signing>) -> Result<Self, AuditError> {
        fedq_certs::fsutil::prepare_private_database(path).map_err(|e| {
            AuditError::store(
                path,
                Cause::explained(format!("cannot create it owner-only: {e}"), e),
            )
        })?;
        let conn = open(path)?;
        let (mut seq, mut prev) = conn
            .query_row(
                "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
                [],
                |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)),
            )
            .optional()
            .map_err(store_err(path))?
            .map_or((0u64, GENESIS.to_owned()), |(s, h)| (s.unsigned_abs(), h));
        let mut frontier = tree::open_frontier(&conn, seq).map_err(|e| {
            AuditError::store(
                path,
                Cause::explained(
                    format!(
                        "its Merkle tree cannot be built: {e}; check it with `fedq audit verify`"
                    ),
                    e,
                ),
            )
        })?;
        let file = fedq_certs::fsutil::FileIdentity::of(path)
            .map_err(|e| AuditError::store(path, Cause::of(e)))?;
        let kept_size: u64 = conn
            .query_row(
                "SELECT COALESCE(MAX(size), 0) FROM checkpoints",
                [],
                |row| row.get::<_, i64>(0),
            )
            .map_err(store_err(path))?
            .unsigned_abs();
        let mut signer = signing.map(|signing| Signer {
            signing,
            kept_size,
            kept_at: std::time::Instant::now(),
            renewed: false,
        });
        let last_failure = Arc::new(std::sync::Mutex::new(None));
        let failure = Arc::clone(&last_failure);
        let next_signer = Arc::new(std::sync::Mutex::new(None::<checkpoint::NoteSigner>));
        let handed = Arc::clone(&next_signer);
        let (tx, mut rx) = mpsc::channel::<Work>(8 * MAX_GROUP);
        if let Some(signer) = signer.as_ref() {
            start_clock(path, tx.downgrade(), signer.signing.cadence.interval)?;
        }
        let owned = path.to_owned();
        std::thread::Builder::new()
            .name("fedq-audit-writer".into())
            .spawn(move || {
                let mut conn = conn;
                let mut batch: Vec<Pending> = Vec::with_capacity(MAX_GROUP);
                while let Some(first) = rx.blocking_recv() {
                    if let Some(signer) = signer.as_mut() {
                        if let Some(key) = handed.lock().ok().and_then(|mut k| k.take()) {
                            // Heads from now on are signed with the renewed key, and the
                            // next group (or tick) keeps a checkpoint under it for the
                            // witnesses.
                            signer.signing.signer = key;
                            signer.renewed = true;
                        }
                    }
                    match first {
                        Work::Entry(first) => batch.push(first),
                        Work::Tick => {
                            if let Some(signer) = signer.as_mut() {
                                if let Err(e) = keep_due_checkpoint(&mut conn, &owned, &mut frontier, signer) {
                                    tracing::error!(error = %e, "the audit log's timed checkpoint could not be kept; trying again at the next");
                                }
                            }
                            continue;
                        }
                    }
                    while batch.len() < MAX_GROUP {
                        match rx.try_recv() {
                            Ok(Work::Entry(next)) => batch.push(next),
                            Ok(Work::Tick) => {}
                            Err(_) => break,
                        }
                    }
                    let started = std::time::Instant::now();
                    let result = write_group(
                        &mut conn,
                        &owned,
                        (seq, &prev),
                        &mut frontier,
                        signer.as_mut(),
                        &batch,
                    );
                    if let Ok(mut last) = failure.lock() {
                        *last = result.as_ref().err().cloned();
                    }
                    match result {
                        Ok((last_seq, last_hash, receipts)) => {
                            metrics::histogram!(COMMIT_SECONDS)
                                .record(started.elapsed().as_secs_f64());
                            // After the log's head, wherever this group found it.
                            let first_seq = last_seq + 1 - batch.len() as u64;
                            seq = last_seq;
                            prev = last_hash;
                            let mut receipts = receipts.into_iter();
                            for (i, (_, _, reply)) in batch.drain(..).enumerate() {
                                let _ = reply.send(Ok(Committed {
                                    seq: first_seq + i as u64,
                                    receipt: receipts.next(),
                                }));
                            }
                        }
                        Err(e) => {
                            metrics::counter!(COMMIT_FAILURES).increment(1);
                            tracing::error!(error = %e, "audit group commit failed; answers withheld");
                            for (_, _, reply) in batch.drain(..) {
                                let _ = reply.send(Err(e.clone()));
                            }
                        }
                    }
                }
            })
            .map_err(|e| {
                AuditError::store(
                    path,
                    Cause::explained(format!("cannot start writer thread: {e}"), e),
                )
            })?;
        Ok(Self {
            tx,
            path: Arc::new(path.to_owned()),
            file,
            last_failure,
            next_signer,
        })
    }

    /// Hands a signing log a new key (its process's certificate was renewed with one):
    /// the tree heads of every group after this are signed with it, and the first of them
    /// is kept as a checkpoint. Its name must be the log's: a log has one origin. A log
    /// opened without signing ignores it.
    pub fn follow_signer(&self, signer: checkpoint::NoteSigner) {
        if let Ok(mut next) = self.next_signer.lock() {
            *next = Some(signer);
        }
    }

    /// Whether entries can be written now: the writer thread runs, its last group commit
    /// did not fail, and the file it writes is still the one at the log's path. `Ok` says
    /// where the log is; `Err` says what is wrong and what to do, for an operator (it
    /// names files, never an entry).
    pub fn health(&self) -> Result<String, Unhealthy> {
        if self.tx.is_closed() {
            return Err(Unhealthy::WriterStopped {
                path: self.path.to_path_buf(),
            });
        }
        if let Some(why) = self.last_failure.lock().ok().and_then(|l| l.clone()) {
            return Err(Unhealthy::CommitFailed { why });
        }
        self.file.still_at(&self.path, "the audit log")?;
        Ok(format!(
            "audit log `{}` open; its writer runs and its last commit did not fail",
            self.path.display()
        ))
    }

    /// Appends an entry and waits until it is durable. Returns its sequence number.
    pub async fn append(&self, record: AuditRecord) -> Result<u64, AuditError> {
        Ok(self.append_inner(record, None).await?.seq)
    }

    /// Appends an entry and waits until it is durable; returns its sequence number and,
    /// in a signing log, its receipt.
    pub async fn append_committed(&self, record: AuditRecord) -> Result<Committed, AuditError> {
        self.append_inner(record, None).await
    }

    /// Appends an answer released under the consent token `record.consent_id` (which
    /// expires at `expires`, unix seconds) and counts it as one use of the token, in the
    /// same transaction: once this resolves, [`consent_uses`] counts it, after a restart
    /// too. A record without a `consent_id` is refused.
    pub async fn append_consent_use(
        &self,
        record: AuditRecord,
        expires: i64,
    ) -> Result<u64, AuditError> {
        Ok(self
            .append_consent_use_committed(record, expires)
            .await?
            .seq)
    }

    /// [`AuditLog::append_consent_use`], returning the entry's sequence number and, in a
    /// signing log, its receipt.
    pub async fn append_consent_use_committed(
        &self,
        record: AuditRecord,
        expires: i64,
    ) -> Result<Committed, AuditError> {
        if record.consent_id.is_none() {
            return Err(AuditError::store(
                &self.path,
                "a consent use needs the token's id",
            ));
        }
        self.append_inner(record, Some(expires)).await
    }

    async fn append_inner(
        &self,
        record: AuditRecord,
        consent_expires: Option<i64>,
    ) -> Result<Committed, AuditError> {
        let bytes = record.size();
        if bytes > MAX_RECORD_BYTES {
            return Err(AuditError::TooLarge { bytes });
        }
        if let Some(case) = &record.case_reference {
            if case.len() > MAX_CASE_REFERENCE_BYTES || case.chars().any(char::is_control) {
                return Err(AuditError::CaseReference { bytes: case.len() });
            }
        }
        let (reply, done) = oneshot::channel();
        self.tx
            .send(Work::Entry((record, consent_expires, reply)))
            .await
            .map_err(|_| AuditError::WriterStopped)?;
        done.await.map_err(|_| AuditError::WriterStopped)?
    }

    /// The log's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Shreds the bodies of entries older than `retention_days` before `now` ([`shred`])
    /// and, if any were, registers that in this log (kind `retention`: how many, and
    /// before when, under which policy version), so a reviewer sees when bodies went and
    /// why. Returns how many were shredded.
    pub async fn shred_expired(
        &self,
        retention_days: u32,
        policy_version: &str,
        now: OffsetDateTime,
    ) -> Result<u64, AuditError> {
        let before = now - time::Duration::days(i64::from(retention_days));
        let path = PathBuf::clone(&self.path);
        let shredded = tokio::task::spawn_blocking(move || shred(&path, before))
            .await
            .map_err(|e| AuditError::store(&self.path, Cause::of(e)))??;
        if shredded > 0 {
            self.append(AuditRecord {
                at: now,
                kind: EntryKind::Retention,
                query_id: "-".into(),
                requester: "-".into(),
                purpose: "-".into(),
                legal_basis: None,
                case_reference: None,
                subject: "-".into(),
                target: "audit".into(),
                outcome: Outcome::json(&serde_json::json!({
                    "shredded": shredded,
                    "before": format_time(before),
                    "retention_days": retention_days,
                })),
                policy_version: policy_version.to_owned(),
                consent_id: None,
                node_query_ids: BTreeMap::new(),
                answer_sha256: None,
            })
            .await?;
        }
        Ok(shredded)
    }
}

/// How often a running process looks for entry bodies past their retention period.
pub const RETENTION_CHECK_EVERY: Duration = Duration::from_secs(3600);

/// The retention schedule every process runs: at once and then every `every`, shreds the
/// bodies of `log`'s entries past the period `period` says is in force (its days and the
/// policy version that set it; `None`: keep every body) and registers each shredding
/// ([`AuditLog::shred_expired`]). A failure is logged and tried again next time; it
/// never stops the process (bodies kept longer are not a leak, just kept). Runs until
/// its task is aborted.
pub async fn keep_retention(
    log: AuditLog,
    every: Duration,
    period: impl Fn() -> Option<(u32, String)>,
) {
    loop {
        if let Some((days, version)) = period() {
            match log
                .shred_expired(days, &version, OffsetDateTime::now_utc())
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    shredded = n,
                    retention_days = days,
                    "audit entry bodies past the retention period shredded"
                ),
                Err(e) => tracing::error!(
                    error = %e,
                    "shredding audit entry bodies past the retention period failed; trying again later"
                ),
            }
        }
        tokio::time::sleep(every).await;
    }
}

/// The signing log's clock: a thread that hands the writer a tick every `interval` (at
/// most every second, at least every 50 ms) until the log is closed.
fn start_clock(
    path: &Path,
    writer: mpsc::WeakSender<Work>,
    interval: Duration,
) -> Result<(), AuditError> {
    let every = interval.clamp(Duration::from_millis(50), Duration::from_secs(1));
    std::thread::Builder::new()
        .name("fedq-audit-clock".into())
        .spawn(move || loop {
            std::thread::sleep(every);
            let Some(writer) = writer.upgrade() else {
                return;
            };
            // A full queue means entries are coming: their group keeps what is due.
            let _ = writer.try_send(Work::Tick);
        })
        .map(|_| ())
        .map_err(|e| {
            AuditError::store(
                path,
                Cause::explained(format!("cannot start its checkpoint clock: {e}"), e),
            )
        })
}

/// The tree head of `tree` and its note signed with the log's key.
fn signed_head(
    path: &Path,
    signer: &Signer,
    tree: &merkle::Frontier,
) -> Result<(checkpoint::Checkpoint, String), AuditError> {
    let head = checkpoint::Checkpoint {
        origin: signer.signing.signer.name().to_owned(),
        size: tree.size(),
        root: tree.root(),
    };
    let note = signer
        .signing
        .signer
        .sign_checkpoint(&head)
        .map_err(|e| {
            AuditError::store(
                path,
                Cause::explained(format!("cannot sign its checkpoint: {e}"), e),
            )
        })?
        .to_text();
    Ok((head, note))
}

/// Keeps a checkpoint of the log's tree when the cadence's time is up and entries were
/// written since the last one kept (a log that fell quiet), or the key was renewed. The
/// tree is the log's as it is now: entries another process appended since the writer's
/// last group (an operator's tool recording a decision) are in it.
fn keep_due_checkpoint(
    conn: &mut Connection,
    path: &Path,
    frontier: &mut merkle::Frontier,
    signer: &mut Signer,
) -> Result<(), AuditError> {
    if signer.kept_at.elapsed() < signer.signing.cadence.interval && !signer.renewed {
        return Ok(());
    }
    let err = store_err(path);
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(&err)?;
    let head_seq: u64 = tx
        .query_row("SELECT COALESCE(MAX(seq), 0) FROM audit", [], |row| {
            row.get::<_, i64>(0)
        })
        .map_err(&err)?
        .unsigned_abs();
    if head_seq != frontier.size() {
        *frontier = tree::open_frontier(&tx, head_seq).map_err(|e| {
            AuditError::store(
                path,
                Cause::explained(format!("its Merkle tree cannot be read again: {e}"), e),
            )
        })?;
    }
    if frontier.size() == 0 || (frontier.size() <= signer.kept_size && !signer.renewed) {
        return Ok(());
    }
    let (head, note) = signed_head(path, signer, frontier)?;
    tx.execute(
        "INSERT OR REPLACE INTO checkpoints (size, note) VALUES (?1, ?2)",
        params![head.size as i64, note],
    )
    .map_err(&err)?;
    tx.commit().map_err(&err)?;
    signer.kept_size = head.size;
    signer.kept_at = std::time::Instant::now();
    signer.renewed = false;
    Ok(())
}

/// Writes one group in one transaction: the entries, their consent uses, the tree nodes
/// they finish and, in a signing log, the checkpoint when one is due. Returns the last
/// sequence number and hash, and each entry's receipt in a signing log.
fn write_group(
    conn: &mut Connection,
    path: &Path,
    (mut seq, prev): (u64, &str),
    frontier: &mut merkle::Frontier,
    mut signer: Option<&mut Signer>,
    batch: &[Pending],
) -> Result<(u64, String, Vec<checkpoint::Receipt>), AuditError> {
    let err = store_err(path);
    // Immediate: the head read below stays the head this group is written after.
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(&err)?;
    // Another process may have appended since this writer's last group (an operator's
    // tool recording a decision beside a serving node): the group goes after the log's
    // real head, and the tree is read again from the file.
    let (head_seq, head_hash) = tx
        .query_row(
            "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
            [],
            |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)),
        )
        .optional()
        .map_err(&err)?
        .map_or((0u64, GENESIS.to_owned()), |(s, h)| (s.unsigned_abs(), h));
    let mut prev = prev.to_owned();
    if head_seq != seq {
        tracing::info!(
            from = seq,
            to = head_seq,
            "the audit log grew in another process; writing after its head"
        );
        *frontier = tree::open_frontier(&tx, head_seq).map_err(|e| {
            AuditError::store(
                path,
                Cause::explained(format!("its Merkle tree cannot be read again: {e}"), e),
            )
        })?;
        seq = head_seq;
        prev = head_hash;
    }
    // The tree grows with the entries, in the same transaction; kept only once it commits.
    let mut grown = frontier.clone();
    let mut known = signer
        .as_ref()
        .map(|_| merkle::GroupSubtrees::after(frontier));
    let mut hashes = Vec::with_capacity(batch.len());
    {
        let mut stmt = tx
            .prepare_cached(
                "INSERT INTO audit (seq, at, kind, query_id, requester, purpose, legal_basis, subject, target, outcome, policy_version, prev_hash, hash, consent_id, case_reference, node_query_ids, answer_sha256)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
            )
            .map_err(&err)?;
        let mut uses = tx
            .prepare_cached(
                "INSERT INTO consent_uses (jti, uses, expires) VALUES (?1, 1, ?2)
                 ON CONFLICT(jti) DO UPDATE SET uses = uses + 1",
            )
            .map_err(&err)?;
        for (r, consent_expires, _) in batch {
            seq += 1;
            let content = content_hash(seq, &prev, r);
            let hash = hex::encode(bound_hash(&content, r));
            let node_ids = (!r.node_query_ids.is_empty())
                .then(|| serde_json::to_string(&r.node_query_ids).unwrap_or_default());
            stmt.execute(params![
                seq as i64,
                format_time(r.at),
                r.kind.as_str(),
                r.query_id,
                r.requester,
                r.purpose,
                r.legal_basis,
                r.subject,
                r.target,
                r.outcome.as_str(),
                r.policy_version,
                prev,
                hash,
                r.consent_id,
                r.case_reference,
                node_ids,
                r.answer_sha256.map(hex::encode)
            ])
            .map_err(&err)?;
            if let (Some(jti), Some(expires)) = (&r.consent_id, consent_expires) {
                uses.execute(params![jti, expires]).map_err(&err)?;
            }
            let leaf = tree::entry_leaf(&hash)
                .ok_or_else(|| AuditError::store(path, "an entry hash is not 32 bytes of hex"))?;
            let index = grown.size();
            let finished = grown.push(leaf);
            tree::store_finished(&tx, &finished).map_err(&err)?;
            if let Some(known) = known.as_mut() {
                known.add(index, leaf, &finished);
                // A receipt of an entry bound to its answer carries the content hash the
                // requester recomputes the entry's hash from.
                let content = r.answer_sha256.map(|_| hex::encode(content));
                hashes.push((hash.clone(), content));
            }
            prev = hash;
        }
        drop(uses);
    }
    let mut receipts = Vec::new();
    let mut kept = None;
    if let (Some(signer), Some(known)) = (signer.as_deref_mut(), known.as_ref()) {
        let (head, note) = signed_head(path, signer, &grown)?;
        let first = grown.size() - hashes.len() as u64;
        for (i, (entry_hash, content_hash)) in hashes.into_iter().enumerate() {
            let index = first + i as u64;
            let proof = merkle::inclusion_proof(known, index, head.size).map_err(|e| {
                AuditError::store(
                    path,
                    Cause::explained(format!("cannot prove its new entry: {e}"), e),
                )
            })?;
            receipts.push(checkpoint::Receipt {
                checkpoint: note.clone(),
                index,
                entry_hash,
                content_hash,
                proof: checkpoint::encode_proof(&proof),
            });
        }
        let cadence = signer.signing.cadence;
        if head.size >= signer.kept_size + cadence.entries
            || signer.kept_at.elapsed() >= cadence.interval
            || signer.renewed
        {
            tx.execute(
                "INSERT OR REPLACE INTO checkpoints (size, note) VALUES (?1, ?2)",
                params![head.size as i64, note],
            )
            .map_err(&err)?;
            kept = Some(head.size);
        }
    }
    tx.commit().map_err(&err)?;
    *frontier = grown;
    if let (Some(size), Some(signer)) = (kept, signer) {
        signer.kept_size = size;
        signer.kept_at = std::time::Instant::now();
        signer.renewed = false;
    }
    Ok((seq, prev, receipts))
}

/// Deletes the bodies of entries older than `before` (the retention period's end): who
/// asked, for what, about whom and with what outcome go; the row, its time, kind, chain
/// link and hash stay, so the chain still links and the Merkle tree and every checkpoint
/// over it still verify. Entries about the policy itself (installed, refused, published)
/// and earlier retention entries hold nothing of a person and stay whole: a restarted
/// process reads its policy floor from them. Returns how many entries were shredded now.
pub fn shred(path: &Path, before: OffsetDateTime) -> Result<u64, AuditError> {
    let conn = open_existing(path)?;
    // Overwrite the freed content rather than leave it in free pages.
    conn.execute_batch("PRAGMA secure_delete=ON;")
        .map_err(store_err(path))?;
    // The kinds kept whole, bound as parameters like every kind the log matches on.
    let kept: Vec<&str> = EntryKind::ALL
        .iter()
        .filter(|k| k.outlives_retention())
        .map(|k| k.as_str())
        .collect();
    let placeholders: Vec<String> = (0..kept.len()).map(|i| format!("?{}", i + 2)).collect();
    let cutoff = format_time(before);
    let mut values: Vec<&dyn rusqlite::ToSql> = vec![&cutoff];
    values.extend(kept.iter().map(|k| k as &dyn rusqlite::ToSql));
    let n = conn
        .execute(
            &format!(
                "UPDATE audit SET query_id = '', requester = '', purpose = '', legal_basis = NULL,
                 subject = '', target = '', outcome = '', policy_version = '', consent_id = NULL,
                 case_reference = NULL, node_query_ids = NULL, answer_sha256 = NULL, shredded = 1
             WHERE at < ?1 AND shredded IS NULL AND kind NOT IN ({})",
                placeholders.join(", ")
            ),
            values.as_slice(),
        )
        .map_err(store_err(path))?;
    // And out of the write-ahead log, where the old pages stay until it is checkpointed.
    if n > 0 {
        let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
    }
    Ok(n as u64)
}

/// The entries about one subject (its keyed pseudonym in this log), each with its
/// inclusion proof in the log's tree of `size` entries — a size a witness cosigned, so
/// the person (or whoever serves them) can check each entry against a checkpoint the
/// department alone could not have rewritten. Entries after `size` are not listed.
pub fn entries_about(
    path: &Path,
    subject: &str,
    size: u64,
) -> Result<Vec<(AuditEntry, Vec<merkle::Hash>)>, AuditError> {
    let mut entries = entries_about_all(path, subject, size)?;
    entries.retain(|(e, _)| e.seq <= size);
    Ok(entries)
}

/// [`entries_about`], and the entries after `size` as well, each of those with an empty
/// proof (they are not in the tree of `size` entries yet): what a person's register
/// lists, in one scan of the log.
pub fn entries_about_all(
    path: &Path,
    subject: &str,
    size: u64,
) -> Result<Vec<(AuditEntry, Vec<merkle::Hash>)>, AuditError> {
    let entries = list(
        path,
        &ListFilter {
            subject: Some(subject.to_owned()),
            ..ListFilter::default()
        },
    )?;
    let conn = open_existing(path)?;
    let tree = tree::StoredTree { conn: &conn };
    entries
        .into_iter()
        .map(|e| {
            if e.seq > size {
                return Ok((e, Vec::new()));
            }
            let proof = merkle::inclusion_proof(&tree, e.seq - 1, size)
                .map_err(|err| AuditError::store(path, Cause::of(err)))?;
            Ok((e, proof))
        })
        .collect()
}

/// The checkpoints a signing log kept, oldest first, as signed notes with their sizes.
pub fn checkpoints(path: &Path) -> Result<Vec<(u64, String)>, AuditError> {
    let conn = open_existing(path)?;
    let mut stmt = conn
        .prepare("SELECT size, note FROM checkpoints ORDER BY size")
        .map_err(store_err(path))?;
    let rows = stmt
        .query_map([], |row| {
            Ok((row.get::<_, i64>(0)?.unsigned_abs(), row.get(1)?))
        })
        .map_err(store_err(path))?;
    rows.collect::<Result<_, _>>().map_err(store_err(path))
}

/// The newest checkpoint a signing log kept, with its size (`None` before its first):
/// what it offers its witnesses.
pub fn latest_checkpoint(path: &Path) -> Result<Option<(u64, String)>, AuditError> {
    let conn = open_existing(path)?;
    conn.query_row(
        "SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1",
        [],
        |row| Ok((row.get::<_, i64>(0)?.unsigned_abs(), row.get(1)?)),
    )
    .optional()
    .map_err(store_err(path))
}

/// What a log offers its witnesses: its newest kept checkpoint and the consistency proof
/// to it from the tree of `from` entries (the size a witness last cosigned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The checkpoint's tree size.
    pub size: u64,
    /// The checkpoint, as a signed note.
    pub note: String,
    /// The consistency proof from `from` to `size`; empty when `from` is 0 or not below
    /// `size` (a witness holding more than the log now offers then finds the log cut).
    pub proof: Vec<merkle::Hash>,
}

/// The log's [`Offer`] to a witness that last cosigned its tree of `from` entries; `None`
/// before the log kept its first checkpoint.
pub fn offer(path: &Path, from: u64) -> Result<Option<Offer>, AuditError> {
    let Some((size, note)) = latest_checkpoint(path)? else {
        return Ok(None);
    };
    let proof = if from > 0 && from < size {
        consistency_proof(path, from, size)?
    } else {
        Vec::new()
    };
    Ok(Some(Offer { size, note, proof }))
}

/// The consistency proof between the log's trees of `first` and `second` entries, from
/// its stored tree (what a witness asks for before it cosigns the larger checkpoint).
pub fn consistency_proof(
    path: &Path,
    first: u64,
    second: u64,
) -> Result<Vec<merkle::Hash>, AuditError> {
    let conn = open_existing(path)?;
    merkle::consistency_proof(&tree::StoredTree { conn: &conn }, first, second)
        .map_err(|e| AuditError::store(path, Cause::of(e)))
}

/// The inclusion proof of entry `seq` in the log's tree of `size` entries.
pub fn inclusion_proof(path: &Path, seq: u64, size: u64) -> Result<Vec<merkle::Hash>, AuditError> {
    let conn = open_existing(path)?;
    let index = seq
        .checked_sub(1)
        .ok_or_else(|| AuditError::store(path, "entries are numbered from 1"))?;
    merkle::inclusion_proof(&tree::StoredTree { conn: &conn }, index, size)
        .map_err(|e| AuditError::store(path, Cause::of(e)))
}

/// Where the chain breaks.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    /// An entry's content does not match its hash: it was edited.
    #[error("entry {seq} was altered: its content does not match its hash")]
    Altered {
        /// The entry.
        seq: u64,
    },
    /// Entries are missing before this one.
    #[error("entries {first_missing}..={last_missing} are missing (entry {seq} follows entry {previous})")]
    Missing {
        /// The entry after the gap.
        seq: u64,
        /// The entry before the gap.
        previous: u64,
        /// First missing sequence number.
        first_missing: u64,
        /// Last missing sequence number.
        last_missing: u64,
    },
    /// The entry does not link to the previous one (an entry was replaced or reordered).
    #[error("entry {seq} does not link to entry {previous}: the chain was rewritten here")]
    Unlinked {
        /// The entry.
        seq: u64,
        /// The entry before it.
        previous: u64,
    },
    /// The log's entries up to a witnessed size do not make the tree the witness
    /// cosigned: the first entry that does not match is in `first..=last` (entries before
    /// `first` match the previous witnessed checkpoint, or there is none).
    #[error("entries {first}..={last} do not match the checkpoint `{witness}` cosigned at size {size}: the log was rewritten there (every entry before {first} matches)")]
    Unwitnessed {
        /// The first entry that may differ.
        first: u64,
        /// The last entry that may differ (the checkpoint's size).
        last: u64,
        /// The witnessed size.
        size: u64,
        /// Who cosigned it.
        witness: String,
    },
    /// The log is shorter than a checkpoint a witness cosigned: its newest entries were
    /// cut.
    #[error("the log has {entries} entries but `{witness}` cosigned a checkpoint of {size}: entries {first_missing}..={size} were cut")]
    Truncated {
        /// Entries in the log.
        entries: u64,
        /// The first entry cut.
        first_missing: u64,
        /// The witnessed size.
        size: u64,
        /// Who cosigned it.
        witness: String,
    },
}

/// A checkpoint of this log that another process cosigned (its signatures already
/// checked by whoever read it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Witnessed {
    /// The witness's name.
    pub witness: String,
    /// What it cosigned.
    pub checkpoint: checkpoint::Checkpoint,
}

/// The result of [`verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verification {
    /// Entries checked.
    pub entries: u64,
    /// The first break, if any.
    pub first_break: Option<ChainBreak>,
    /// Hash of the last entry (publish it elsewhere to detect truncation).
    pub head: String,
    /// The Merkle tree root of the entries checked (base64), as a checkpoint states it.
    pub root: String,
    /// How many witnessed checkpoints the log matched.
    pub witnessed: usize,
    /// How many entries' bodies were shredded at the end of their retention period
    /// (their hashes checked as links and leaves, their content no longer there).
    pub shredded: u64,
}

fn row_to_entry(row: &rusqlite::Row<'_>) -> rusqlite::Result<AuditEntry> {
    let at: String = row.get(1)?;
    Ok(AuditEntry {
        seq: row.get::<_, i64>(0)?.unsigned_abs(),
        record: AuditRecord {
            at: OffsetDateTime::parse(&at, &Rfc3339).unwrap_or(OffsetDateTime::UNIX_EPOCH),
            kind: row.get::<_, String>(2)?.parse().map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    2,
                    rusqlite::types::Type::Text,
                    Box::new(e),
                )
            })?,
            query_id: row.get(3)?,
            requester: row.get(4)?,
            purpose: row.get(5)?,
            legal_basis: row.get(6)?,
            case_reference: row.get(14)?,
            subject: row.get(7)?,
            target: row.get(8)?,
            outcome: Outcome::stored(row.get(9)?),
            policy_version: row.get(10)?,
            consent_id: row.get(13)?,
            node_query_ids: match row.get::<_, Option<String>>(15)? {
                // A mapping that does not read back is kept as an empty one: `verify`
                // then reports the entry as altered.
                Some(text) => serde_json::from_str(&text).unwrap_or_default(),
                None => BTreeMap::new(),
            },
            // A digest that does not read back is taken as none: `verify` then reports
            // the entry, whose hash was bound to it, as altered.
            answer_sha256: row
                .get::<_, Option<String>>(17)?
                .as_deref()
                .and_then(checkpoint::hex32),
        },
        prev_hash: row.get(11)?,
        hash: row.get(12)?,
        shredded: row.get::<_, Option<i64>>(16)?.unwrap_or(0) != 0,
    })
}

const SELECT: &str = "SELECT seq, at, kind, query_id, requester, purpose, legal_basis, subject, target, outcome, policy_version, prev_hash, hash, consent_id, case_reference, node_query_ids, shredded, answer_sha256 FROM audit";

/// How many answers the log at `path` records under each consent token not expired before
/// `since` (unix seconds): what a node may still answer under a token survives a restart.
pub fn consent_uses(
    path: &Path,
    since: i64,
) -> Result<std::collections::HashMap<String, (u32, i64)>, AuditError> {
    if !path.exists() {
        return Ok(Default::default());
    }
    let conn = open(path)?;
    let err = store_err(path);
    let mut stmt = conn
        .prepare("SELECT jti, uses, expires FROM consent_uses WHERE expires >= ?1")
        .map_err(&err)?;
    let rows = stmt
        .query_map(params![since], |row| {
            Ok((
                row.get::<_, String>(0)?,
                (
                    u32::try_from(row.get::<_, i64>(1)?).unwrap_or(u32::MAX),
                    row.get::<_, i64>(2)?,
                ),
            ))
        })
        .map_err(&err)?;
    rows.collect::<Result<_, _>>().map_err(&err)
}

/// The bundle version of the newest `policy-installed` entry in the log at `path` (none if
/// the log does not exist or has no such entry): the floor below which a restarted process
/// must not run.
pub fn last_installed_policy(path: &Path) -> Result<Option<u64>, AuditError> {
    if !path.exists() {
        return Ok(None);
    }
    let conn = open(path)?;
    let outcome: Option<String> = conn
        .query_row(
            "SELECT outcome FROM audit WHERE kind = ?1 ORDER BY seq DESC LIMIT 1",
            params![EntryKind::PolicyInstalled.as_str()],
            |row| row.get(0),
        )
        .optional()
        .map_err(store_err(path))?;
    Ok(outcome.and_then(|o| Outcome::stored(o).installed_version()))
}

/// Checks the whole chain of the log at `path` and names the first broken entry.
pub fn verify(path: &Path) -> Result<Verification, AuditError> {
    verify_against(path, &[])
}

/// Verifies the log as [`verify`] does, and its Merkle tree against checkpoints other
/// processes cosigned: a log rewritten and re-hashed throughout still fails here, at the
/// first witnessed checkpoint it no longer matches, and a log cut below a witnessed size
/// is named truncated.
pub fn verify_against(path: &Path, witnessed: &[Witnessed]) -> Result<Verification, AuditError> {
    let conn = open_existing(path)?;
    let err = store_err(path);
    let shred_cutoff = latest_shred_cutoff(&conn).map_err(&err)?;
    let mut witnessed: Vec<&Witnessed> = witnessed.iter().collect();
    witnessed.sort_by_key(|w| w.checkpoint.size);
    let mut pending = witnessed.iter().peekable();
    let mut matched = 0usize;
    let mut matched_size = 0u64;
    let mut frontier = merkle::Frontier::default();
    let mut stmt = conn
        .prepare(&format!("{SELECT} ORDER BY seq"))
        .map_err(&err)?;
    let mut rows = stmt.query([]).map_err(&err)?;
    let mut previous = 0u64;
    let mut prev_hash = GENESIS.to_owned();
    let mut entries = 0u64;
    let mut shredded = 0u64;
    let broken_at = |frontier: &merkle::Frontier, head: String, broken| Verification {
        entries: frontier.size(),
        first_break: Some(broken),
        head,
        root: base64_root(&frontier.root()),
        witnessed: 0,
        shredded: 0,
    };
    // An empty tree is witnessed at size 0 trivially.
    while pending.peek().is_some_and(|w| w.checkpoint.size == 0) {
        pending.next();
    }
    while let Some(row) = rows.next().map_err(&err)? {
        let entry = row_to_entry(row).map_err(&err)?;
        entries += 1;
        let broken = if entry.seq != previous + 1 {
            Some(ChainBreak::Missing {
                seq: entry.seq,
                previous,
                first_missing: previous + 1,
                last_missing: entry.seq.saturating_sub(1),
            })
        } else if entry.shredded && !shredded_as_retention_leaves_it(&entry, shred_cutoff) {
            // A body cannot be checked against its hash once shredded; so a row marked
            // shredded must be exactly what shredding leaves, of a kind it shreds, from
            // before a cutoff the log registered. Otherwise the mark hides an edit.
            Some(ChainBreak::Altered { seq: entry.seq })
        } else if !entry.shredded
            && entry_hash(entry.seq, &entry.prev_hash, &entry.record) != entry.hash
        {
            Some(ChainBreak::Altered { seq: entry.seq })
        } else if entry.prev_hash != prev_hash {
            Some(ChainBreak::Unlinked {
                seq: entry.seq,
                previous,
            })
        } else {
            None
        };
        // A shredded body cannot be checked against its hash; the hash still links the
        // chain and is the tree's leaf, so the witnessed checkpoints still cover it.
        shredded += u64::from(entry.shredded);
        if let Some(broken) = broken {
            let mut v = broken_at(&frontier, entry.hash, broken);
            v.entries = entries;
            v.witnessed = matched;
            return Ok(v);
        }
        let leaf = tree::entry_leaf(&entry.hash).ok_or_else(|| {
            AuditError::store(
                path,
                format!("entry {} has no readable content hash", entry.seq),
            )
        })?;
        frontier.push(leaf);
        // Entries up to the last matched size below this one are known good.
        let below = matched_size;
        while let Some(w) = pending
            .peek()
            .filter(|w| w.checkpoint.size == frontier.size())
        {
            if w.checkpoint.root != frontier.root() {
                let mut v = broken_at(
                    &frontier,
                    entry.hash.clone(),
                    ChainBreak::Unwitnessed {
                        first: below + 1,
                        last: w.checkpoint.size,
                        size: w.checkpoint.size,
                        witness: w.witness.clone(),
                    },
                );
                v.witnessed = matched;
                return Ok(v);
            }
            matched += 1;
            matched_size = w.checkpoint.size;
            pending.next();
        }
        previous = entry.seq;
        prev_hash = entry.hash;
    }
    // The largest witnessed size names every entry cut.
    if let Some(w) = pending.last() {
        let mut v = broken_at(
            &frontier,
            prev_hash,
            ChainBreak::Truncated {
                entries,
                first_missing: entries + 1,
                size: w.checkpoint.size,
                witness: w.witness.clone(),
            },
        );
        v.witnessed = matched;
        return Ok(v);
    }
    Ok(Verification {
        entries,
        first_break: None,
        head: prev_hash,
        root: base64_root(&frontier.root()),
        witnessed: matched,
        shredded,
    })
}

/// The latest `before` a `retention` entry of this log registered: no body of an entry
/// at or after it may have been shredded.
fn latest_shred_cutoff(conn: &Connection) -> rusqlite::Result<Option<OffsetDateTime>> {
    let mut stmt = conn.prepare("SELECT outcome FROM audit WHERE kind = ?1")?;
    let outcomes = stmt
        .query_map(params![EntryKind::Retention.as_str()], |row| {
            row.get::<_, String>(0)
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(outcomes
        .iter()
        .filter_map(|o| serde_json::from_str::<serde_json::Value>(o).ok())
        .filter_map(|o| {
            o.get("before")
                .and_then(|b| b.as_str())
                .and_then(|b| OffsetDateTime::parse(b, &Rfc3339).ok())
        })
        .max())
}

/// Whether a row marked shredded is what [`shred`] leaves: every body field empty, a kind
/// retention shreds, and a time before the latest cutoff the log registered.
fn shredded_as_retention_leaves_it(entry: &AuditEntry, cutoff: Option<OffsetDateTime>) -> bool {
    let r = &entry.record;
    let blank = r.query_id.is_empty()
        && r.requester.is_empty()
        && r.purpose.is_empty()
        && r.legal_basis.is_none()
        && r.subject.is_empty()
        && r.target.is_empty()
        && r.outcome.as_str().is_empty()
        && r.policy_version.is_empty()
        && r.consent_id.is_none()
        && r.case_reference.is_none()
        && r.node_query_ids.is_empty()
        && r.answer_sha256.is_none();
    let shreddable = !r.kind.outlives_retention();
    blank && shreddable && cutoff.is_some_and(|c| r.at < c)
}

fn base64_root(root: &merkle::Hash) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(root)
}

/// Opens an existing log for reading; a missing file is an error, never a new log.
fn open_existing(path: &Path) -> Result<Connection, AuditError> {
    if !path.exists() {
        return Err(AuditError::store(path, "no such file"));
    }
    open(path)
}

/// Filters of `fedq audit list`.
#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    /// Only this requester.
    pub requester: Option<String>,
    /// Only this purpose.
    pub purpose: Option<String>,
    /// Only this subject pseudonym.
    pub subject: Option<String>,
    /// Only entries of queries that served this case.
    pub case_reference: Option<String>,
    /// Only entries at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Only entries before this time.
    pub until: Option<OffsetDateTime>,
    /// Only entries whose outcome is of this class ([`Outcome::class`]).
    pub outcome: Option<OutcomeClass>,
    /// At most this many (newest last).
    pub limit: Option<u64>,
}

/// Reads entries matching `filter`, oldest first.
pub fn list(path: &Path, filter: &ListFilter) -> Result<Vec<AuditEntry>, AuditError> {
    let conn = open(path)?;
    let err = store_err(path);
    let mut stmt = conn
        .prepare(&format!(
            "{SELECT} WHERE (?1 IS NULL OR requester = ?1) AND (?2 IS NULL OR purpose = ?2)
             AND (?3 IS NULL OR subject = ?3) AND (?4 IS NULL OR at >= ?4)
             AND (?5 IS NULL OR case_reference = ?5) AND (?6 IS NULL OR at < ?6) ORDER BY seq"
        ))
        .map_err(&err)?;
    let since = filter.since.map(format_time);
    let until = filter.until.map(format_time);
    let rows = stmt
        .query_map(
            params![
                filter.requester,
                filter.purpose,
                filter.subject,
                since,
                filter.case_reference,
                until
            ],
            row_to_entry,
        )
        .map_err(&err)?;
    let mut out: Vec<AuditEntry> = rows.collect::<Result<_, _>>().map_err(&err)?;
    if let Some(class) = filter.outcome {
        out.retain(|e| e.record.outcome.class() == class);
    }
    if let Some(limit) = filter.limit {
        let keep = usize::try_from(limit).unwrap_or(usize::MAX);
        if out.len() > keep {
            out.drain(..out.len() - keep);
        }
    }
    Ok(out)
}

/// A coordinator `query` entry found by [`find_query`]: the coordinator's id of the query
/// and the departments it concerned (every node asked or reported on).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundQuery {
    /// The coordinator's own id of the query.
    pub query_id: String,
    /// The departments the query concerned, each once, in name order.
    pub departments: Vec<String>,
}

/// Finds the coordinator `query` entry whose id is `id`, or in which some node recorded
/// the query under `id` (its `node_query_ids`): what a complaint about a query is routed
/// by. Scans the log (it has no secondary index, see [`list`]); complaints are rare.
pub fn find_query(path: &Path, id: &str) -> Result<Option<FoundQuery>, AuditError> {
    let conn = open(path)?;
    let err = store_err(path);
    // The id quoted as the mapping's JSON holds it, so a part of an id never matches.
    let quoted = serde_json::Value::String(id.to_owned()).to_string();
    let mut stmt = conn
        .prepare(
            "SELECT query_id, node_query_ids, outcome FROM audit WHERE kind = ?1
             AND (query_id = ?2 OR instr(node_query_ids, ?3) > 0) ORDER BY seq",
        )
        .map_err(&err)?;
    let rows = stmt
        .query_map(params![EntryKind::Query.as_str(), id, quoted], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, Option<String>>(1)?,
                row.get::<_, String>(2)?,
            ))
        })
        .map_err(&err)?;
    for row in rows {
        let (query_id, ids, outcome) = row.map_err(&err)?;
        let ids: BTreeMap<String, String> = ids
            .as_deref()
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or_default();
        if query_id != id && !ids.values().any(|v| v == id) {
            continue;
        }
        let mut departments: std::collections::BTreeSet<String> = ids.into_keys().collect();
        if let Some(nodes) = serde_json::from_str::<serde_json::Value>(&outcome)
            .ok()
            .and_then(|o| o.get("nodes").and_then(|n| n.as_object().cloned()))
        {
            departments.extend(nodes.into_iter().map(|(node, _)| node));
        }
        return Ok(Some(FoundQuery {
            query_id,
            departments: departments.into_iter().collect(),
        }));
    }
    Ok(None)
}

/// How long a test or tool may wait for the writer to drain on shutdown.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: usize) -> AuditRecord {
        AuditRecord {
            at: OffsetDateTime::now_utc(),
            kind: EntryKind::Answer,
            query_id: format!("q{i}"),
            requester: "market-regulation.licensing".into(),
            purpose: "administrative-licensing".into(),
            legal_basis: Some(format!("licence-{i}")),
            case_reference: None,
            subject: Pseudonymizer::from_key(&[7; 32]).pseudonym("11010519491231002X"),
            target: "view:blacklist-check".into(),
            outcome: Outcome::json(&serde_json::json!({})),
            policy_version: "1".into(),
            consent_id: None,
            node_query_ids: BTreeMap::new(),
            answer_sha256: None,
        }
    }

    #[test]
    fn outcome_classes_tell_refusals_and_rate_limits_from_the_rest() {
        let class = |v: serde_json::Value| Outcome::json(&v).class();
        assert_eq!(
            class(serde_json::json!({"http": 200, "complete": true})),
            OutcomeClass::Answered
        );
        assert_eq!(class(serde_json::json!({})), OutcomeClass::Answered);
        assert_eq!(
            class(serde_json::json!({"http": 403, "refused": "no rule"})),
            OutcomeClass::Refused
        );
        assert_eq!(
            class(serde_json::json!({"refused": "denied"})),
            OutcomeClass::Refused
        );
        assert_eq!(
            class(serde_json::json!({"http": 429, "refused": "over"})),
            OutcomeClass::RateLimited
        );
        assert_eq!(
            class(serde_json::json!({"refused": "over the requester's rate limit"})),
            OutcomeClass::RateLimited
        );
        for c in [
            OutcomeClass::Answered,
            OutcomeClass::Refused,
            OutcomeClass::RateLimited,
        ] {
            assert_eq!(OutcomeClass::parse(c.as_str()), Some(c));
        }
        assert_eq!(OutcomeClass::parse("released"), None);
    }

    #[tokio::test]
    async fn entries_are_filtered_by_outcome_and_before_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        let log = AuditLog::open(&path).unwrap();
        for i in 0..3 {
            let mut r = record(i);
            r.at = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000 + i as i64);
            if i == 1 {
                r.outcome = Outcome::json(&serde_json::json!({"refused": "denied"}));
            }
            log.append(r).await.unwrap();
        }
        drop(log);
        let seqs = |filter: ListFilter| -> Vec<u64> {
            list(&path, &filter)
                .unwrap()
                .iter()
                .map(|e| e.seq)
                .collect()
        };
        assert_eq!(
            seqs(ListFilter {
                outcome: Some(OutcomeClass::Refused),
                ..ListFilter::default()
            }),
            [2]
        );
        assert_eq!(
            seqs(ListFilter {
                until: Some(OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_002)),
                ..ListFilter::default()
            }),
            [1, 2]
        );
    }

    #[test]
    fn a_failing_store_keeps_the_error_behind_it_with_the_same_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        std::fs::write(&path, vec![b'x'; 4096]).unwrap();
        let err = list(&path, &ListFilter::default()).unwrap_err();
        let AuditError::Store { reason, .. } = &err else {
            panic!("{err:?}")
        };
        let sqlite = reason
            .error()
            .and_then(|e| e.downcast_ref::<rusqlite::Error>());
        let sqlite = sqlite.expect("SQLite's error is kept");
        assert_eq!(
            err.to_string(),
            format!("audit log `{}`: {sqlite}", path.display())
        );
        let source = std::error::Error::source(&err).expect("a source");
        assert_eq!(source.to_string(), sqlite.to_string());

        let missing = verify(&dir.path().join("absent.db")).unwrap_err();
        assert_eq!(
            missing.to_string(),
            format!(
                "audit log `{}`: no such file",
                dir.path().join("absent.db").display()
            )
        );
        assert!(matches!(
            missing,
            AuditError::Store {
                reason: Cause::Message(_),
                ..
            }
        ));
    }

    #[tokio::test]
    async fn consent_uses_are_counted_with_their_entries_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        let log = AuditLog::open(&path).unwrap();
        let mut used = record(1);
        used.consent_id = Some("tok-1".into());
        log.append_consent_use(used.clone(), 2_000).await.unwrap();
        log.append_consent_use(used.clone(), 2_000).await.unwrap();
        // A refusal under the same token is recorded with its id but is not a use.
        log.append(used.clone()).await.unwrap();
        let mut old = record(2);
        old.consent_id = Some("tok-old".into());
        log.append_consent_use(old, 500).await.unwrap();
        assert!(log.append_consent_use(record(3), 2_000).await.is_err());
        drop(log);
        let uses = consent_uses(&path, 1_000).unwrap();
        assert_eq!(uses.get("tok-1"), Some(&(2, 2_000)));
        assert!(
            !uses.contains_key("tok-old"),
            "expired tokens are not loaded"
        );
        let entries = list(&path, &ListFilter::default()).unwrap();
        assert_eq!(entries[0].record.consent_id.as_deref(), Some("tok-1"));
        assert_eq!(entries.len(), 4);
        // The id is part of the chain: changing it is an alteration.
        assert_eq!(verify(&path).unwrap().first_break, None);
        let conn = Connection::open(&path).unwrap();
        conn.execute("UPDATE audit SET consent_id = 'tok-2' WHERE seq = 1", [])
            .unwrap();
        assert_eq!(
            verify(&path).unwrap().first_break,
            Some(ChainBreak::Altered { seq: 1 })
        );
    }

    #[tokio::test]
    async fn a_log_written_before_consent_ids_opens_and_still_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        {
            // The schema as it was, with one entry hashed as it was.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE audit (seq INTEGER PRIMARY KEY, at TEXT NOT NULL, kind TEXT NOT NULL, query_id TEXT NOT NULL, requester TEXT NOT NULL, purpose TEXT NOT NULL, legal_basis TEXT, subject TEXT NOT NULL, target TEXT NOT NULL, outcome TEXT NOT NULL, policy_version TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);",
            )
            .unwrap();
            let r = record(1);
            let hash = entry_hash(1, GENESIS, &r);
            conn.execute(
                "INSERT INTO audit VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    format_time(r.at),
                    r.kind.as_str(),
                    r.query_id,
                    r.requester,
                    r.purpose,
                    r.legal_basis,
                    r.subject,
                    r.target,
                    r.outcome.as_str(),
                    r.policy_version,
                    GENESIS,
                    hash
                ],
            )
            .unwrap();
        }
        let log = AuditLog::open(&path).unwrap();
        assert_eq!(log.append(record(2)).await.unwrap(), 2);
        let v = verify(&path).unwrap();
        assert_eq!((v.entries, v.first_break), (2, None));
    }

    #[tokio::test]
    async fn a_log_with_the_old_secondary_indexes_loses_them_and_still_lists_and_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        let log = AuditLog::open(&path).unwrap();
        log.append(record(1)).await.unwrap();
        drop(log);
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE INDEX audit_subject ON audit(subject);
                 CREATE INDEX audit_requester ON audit(requester, at);
                 CREATE INDEX audit_case ON audit(case_reference);",
            )
            .unwrap();
        }
        let log = AuditLog::open(&path).unwrap();
        log.append(record(2)).await.unwrap();
        let conn = Connection::open(&path).unwrap();
        let indexes: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit' AND sql IS NOT NULL",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(indexes, 0, "only the seq key is kept");
        let filter = ListFilter {
            subject: Some(record(2).subject),
            ..ListFilter::default()
        };
        assert_eq!(list(&path, &filter).unwrap().len(), 2);
        let v = verify(&path).unwrap();
        assert_eq!((v.entries, v.first_break), (2, None));
    }

    #[tokio::test]
    async fn appends_chain_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        let log = AuditLog::open(&path).unwrap();
        let mut handles = Vec::new();
        for i in 0..50 {
            let log = log.clone();
            handles.push(tokio::spawn(
                async move { log.append(record(i)).await.unwrap() },
            ));
        }
        let mut seqs = Vec::new();
        for h in handles {
            seqs.push(h.await.unwrap());
        }
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=50).collect::<Vec<_>>());
        let v = verify(&path).unwrap();
        assert_eq!((v.entries, v.first_break), (50, None));

        // Reopening continues the chain.
        drop(log);
        let log = AuditLog::open(&path).unwrap();
        assert_eq!(log.append(record(99)).await.unwrap(), 51);
        assert_eq!(verify(&path).unwrap().first_break, None);
    }

    #[tokio::test]
    async fn a_log_appended_to_by_another_process_goes_on_after_its_head() {
        // An operator's tool (here a second writer on the same file) appends while the
        // serving process's writer holds the log open: its next group goes after the
        // real head, the chain stays intact and the stored tree proves every entry.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        let serving = AuditLog::open(&path).unwrap();
        assert_eq!(serving.append(record(1)).await.unwrap(), 1);
        assert_eq!(serving.append(record(2)).await.unwrap(), 2);
        let tool = AuditLog::open(&path).unwrap();
        assert_eq!(tool.append(record(3)).await.unwrap(), 3);
        drop(tool);
        assert_eq!(serving.append(record(4)).await.unwrap(), 4);
        assert_eq!(serving.append(record(5)).await.unwrap(), 5);
        let v = verify(&path).unwrap();
        assert_eq!((v.entries, v.first_break), (5, None));
        use base64::Engine as _;
        let root: merkle::Hash = base64::engine::general_purpose::STANDARD
            .decode(&v.root)
            .unwrap()
            .try_into()
            .unwrap();
        let subject = record(0).subject;
        let about = entries_about(&path, &subject, 5).unwrap();
        assert_eq!(about.len(), 5);
        for (entry, proof) in about {
            let leaf = tree::entry_leaf(&entry.hash).unwrap();
            merkle::verify_inclusion(&leaf, entry.seq - 1, 5, &proof, &root).unwrap();
        }
    }

    #[tokio::test]
    async fn case_references_are_chained_listed_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        // A log written before entries carried a case reference: the column is added on
        // open and the old entries still verify.
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(&SCHEMA.replace(",\n    case_reference TEXT", ""))
                .unwrap();
            let old = record(0);
            let hash = entry_hash(1, GENESIS, &old);
            conn.execute(
                "INSERT INTO audit (seq, at, kind, query_id, requester, purpose, legal_basis, subject, target, outcome, policy_version, prev_hash, hash)
                 VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![format_time(old.at), old.kind.as_str(), old.query_id, old.requester, old.purpose, old.legal_basis, old.subject, old.target, old.outcome.as_str(), old.policy_version, GENESIS, hash],
            )
            .unwrap();
        }
        let log = AuditLog::open(&path).unwrap();
        let case = "(2026)湘01执123号";
        for i in 1..4 {
            let mut r = record(i);
            r.case_reference = (i != 2).then(|| case.to_owned());
            log.append(r).await.unwrap();
        }
        assert_eq!(verify(&path).unwrap().first_break, None);
        let found = list(
            &path,
            &ListFilter {
                case_reference: Some(case.into()),
                ..ListFilter::default()
            },
        )
        .unwrap();
        assert_eq!(
            found.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![2, 4],
            "exactly the entries of that case"
        );
        assert_eq!(found[0].record.case_reference.as_deref(), Some(case));
        // Longer than the bound, or with a control character: refused, nothing written.
        for bad in ["1".repeat(MAX_CASE_REFERENCE_BYTES + 1), "A\n1".to_owned()] {
            let mut r = record(9);
            r.case_reference = Some(bad);
            assert!(matches!(
                log.append(r).await,
                Err(AuditError::CaseReference { .. })
            ));
        }
        assert_eq!(verify(&path).unwrap().entries, 4);
        // The reference is part of the entry's hash: changing it is an edit.
        let conn = Connection::open(&path).unwrap();
        conn.execute(
            "UPDATE audit SET case_reference = '(2026)湘01执124号' WHERE seq = 4",
            [],
        )
        .unwrap();
        assert_eq!(
            verify(&path).unwrap().first_break,
            Some(ChainBreak::Altered { seq: 4 })
        );
    }

    #[tokio::test]
    async fn edits_and_deletions_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        let log = AuditLog::open(&path).unwrap();
        for i in 0..10 {
            log.append(record(i)).await.unwrap();
        }
        let conn = Connection::open(&path).unwrap();
        conn.execute("UPDATE audit SET purpose = 'statistics' WHERE seq = 4", [])
            .unwrap();
        assert_eq!(
            verify(&path).unwrap().first_break,
            Some(ChainBreak::Altered { seq: 4 })
        );
        conn.execute("DELETE FROM audit WHERE seq = 4", []).unwrap();
        assert_eq!(
            verify(&path).unwrap().first_break,
            Some(ChainBreak::Missing {
                seq: 5,
                previous: 3,
                first_missing: 4,
                last_missing: 4
            })
        );
    }

    #[tokio::test]
    async fn an_oversized_entry_is_refused_and_leaves_the_chain_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        let log = AuditLog::open(&path).unwrap();
        log.append(record(1)).await.unwrap();
        let mut big = record(2);
        big.target = "court.x[*] ".repeat(MAX_RECORD_BYTES / 10);
        let err = log.append(big.clone()).await.unwrap_err();
        assert!(
            matches!(err, AuditError::TooLarge { bytes } if bytes == big.size()),
            "{err}"
        );
        // The message names sizes, never the entry's content.
        assert!(!err.to_string().contains("court.x"), "{err}");
        // Exactly at the limit is accepted.
        let mut edge = record(3);
        edge.target = String::new();
        edge.target = "x".repeat(MAX_RECORD_BYTES - edge.size());
        assert_eq!(edge.size(), MAX_RECORD_BYTES);
        assert_eq!(log.append(edge).await.unwrap(), 2);
        let v = verify(&path).unwrap();
        assert_eq!((v.entries, v.first_break), (2, None));
    }

    #[test]
    fn node_query_ids_differ_per_node_and_key_and_never_repeat_the_coordinator_s() {
        let ids = Pseudonymizer::from_key(&[1; 32]).node_query_ids();
        let q = "0123456789abcdef01234567";
        let court = ids.for_node(q, "court");
        let tax = ids.for_node(q, "tax");
        assert_eq!(court, ids.for_node(q, "court"), "the mapping is a function");
        assert_ne!(court, tax);
        assert_ne!(court, q);
        assert_eq!((court.len(), tax.len()), (24, 24));
        assert!(court.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(court, ids.for_node("0123456789abcdef01234568", "court"));
        // Another coordinator key gives other ids; the derived key is not the pseudonym key.
        assert_ne!(
            court,
            Pseudonymizer::from_key(&[2; 32])
                .node_query_ids()
                .for_node(q, "court")
        );
        assert_ne!(court, NodeQueryIds::from_key(&[1; 32]).for_node(q, "court"));
        // Length-prefixed: moving a character between name and id changes the id.
        assert_ne!(ids.for_node("xq", "court"), ids.for_node("q", "courtx"));
    }

    #[tokio::test]
    async fn the_node_id_mapping_is_stored_hashed_and_listed_and_old_logs_still_verify() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        let log = AuditLog::open(&path).unwrap();
        log.append(record(1)).await.unwrap();
        drop(log);
        // A log written before the column existed.
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("ALTER TABLE audit DROP COLUMN node_query_ids")
            .unwrap();
        drop(conn);
        assert_eq!(verify(&path).unwrap().first_break, None);
        let log = AuditLog::open(&path).unwrap();
        let mut mapped = record(2);
        mapped.kind = EntryKind::Query;
        mapped.node_query_ids = BTreeMap::from([
            ("court".to_owned(), "aa".repeat(12)),
            ("tax".to_owned(), "bb".repeat(12)),
        ]);
        log.append(mapped.clone()).await.unwrap();
        let v = verify(&path).unwrap();
        assert_eq!((v.entries, v.first_break), (2, None));
        let listed = list(&path, &ListFilter::default()).unwrap();
        assert!(listed[0].record.node_query_ids.is_empty());
        assert_eq!(listed[1].record.node_query_ids, mapped.node_query_ids);
        let json = serde_json::to_value(&listed[1]).unwrap();
        assert_eq!(json["node_query_ids"]["court"], "aa".repeat(12));
        assert!(serde_json::to_value(&listed[0])
            .unwrap()
            .get("node_query_ids")
            .is_none());
        // The mapping is part of the entry: changing it breaks the chain there.
        let conn = Connection::open(&path).unwrap();
        conn.execute(
            "UPDATE audit SET node_query_ids = replace(node_query_ids, 'tax', 'hrss') WHERE seq = 2",
            [],
        )
        .unwrap();
        assert_eq!(
            verify(&path).unwrap().first_break,
            Some(ChainBreak::Altered { seq: 2 })
        );
    }

    /// The typed outcome is stored as exactly the text written before it was typed, so
    /// old logs verify and reviewers' tools read the same JSON.
    #[tokio::test]
    async fn outcomes_are_stored_as_the_json_text_they_always_were() {
        let approved = vec![
            "officer-zhang (1a)".to_owned(),
            "officer-li (2b)".to_owned(),
        ];
        let typed = Outcome::policy_installed(7, "ab12", &approved);
        let before =
            serde_json::json!({ "version": 7, "content_sha256": "ab12", "approved_by": approved })
                .to_string();
        assert_eq!(typed, before.as_str());
        assert_eq!(typed.installed_version(), Some(7));
        assert_eq!(
            Outcome::json(&serde_json::json!({ "refused": "no" })).as_str(),
            r#"{"refused":"no"}"#
        );
        assert_eq!(
            serde_json::to_value(&typed).unwrap(),
            serde_json::Value::String(before)
        );

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        let log = AuditLog::open(&path).unwrap();
        log.append(record(1)).await.unwrap();
        let mut installed = record(2);
        installed.kind = EntryKind::PolicyInstalled;
        installed.outcome = typed.clone();
        log.append(installed).await.unwrap();
        log.append(record(3)).await.unwrap();
        drop(log);
        assert_eq!(last_installed_policy(&path).unwrap(), Some(7));
        let listed = list(&path, &ListFilter::default()).unwrap();
        assert_eq!(listed[1].record.outcome, typed);
        assert_eq!(verify(&path).unwrap().first_break, None);
        let stored: String = Connection::open(&path)
            .unwrap()
            .query_row("SELECT outcome FROM audit WHERE seq = 2", [], |r| r.get(0))
            .unwrap();
        assert_eq!(stored, typed.as_str());
    }

    #[test]
    fn pseudonyms_are_keyed() {
        let a = Pseudonymizer::from_key(&[1; 32]);
        let b = Pseudonymizer::from_key(&[2; 32]);
        let id = "11010519491231002X";
        assert_eq!(a.pseudonym(id), a.pseudonym(id));
        assert_ne!(a.pseudonym(id), b.pseudonym(id));
        assert!(!a.pseudonym(id).contains("110105"));
    }
}
