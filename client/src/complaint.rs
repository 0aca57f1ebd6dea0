//! Complaints (issue 19 §4; 长政办发〔2017〕62号 §九): a requester — the citizen-service window on a
//! person's behalf, or any office — files a complaint about a query (by the coordinator's
//! id of it or by a node's) or about a leak; the coordinator routes it to the departments
//! concerned and keeps it in a queue, whose status officers change with a signed
//! statement. These are the bodies of `POST /v1/complaints`, `GET /v1/complaints/{id}` and
//! `POST /v1/complaints/{id}/status`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Longest complaint text, in bytes.
pub const MAX_TEXT_BYTES: usize = 4096;

/// Longest contact, in bytes.
pub const MAX_CONTACT_BYTES: usize = 256;

/// Longest officer's note, in bytes.
pub const MAX_NOTE_BYTES: usize = 2048;

/// What a complaint is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum ComplaintAbout {
    /// A query, by the coordinator's id of it or by the id a node recorded it under (what
    /// a person's register shows): routed to the departments the query concerned.
    Query(String),
    /// A leak of the person's data (`true`): routed to every department of the federation.
    Leak(bool),
}

/// `POST /v1/complaints`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ComplaintRequest {
    /// `{"query": "ID"}` or `{"leak": true}`.
    pub about: ComplaintAbout,
    /// What happened, for the departments' security officers: 1 to 4096 bytes. Kept in the
    /// complaint queue only; never in an audit entry or a log.
    pub text: String,
    /// How to reach the person, if they want to be reached (at most 256 bytes). Kept like
    /// the text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
}

/// A complaint's status: `open` → `in-review` → `closed` (or `open` → `closed`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum ComplaintStatus {
    /// Filed, not yet taken up.
    Open,
    /// An officer is looking into it.
    InReview,
    /// Settled; no further change.
    Closed,
}

impl ComplaintStatus {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            ComplaintStatus::Open => "open",
            ComplaintStatus::InReview => "in-review",
            ComplaintStatus::Closed => "closed",
        }
    }

    /// Whether an officer may move a complaint from `self` to `to`.
    pub fn may_become(self, to: ComplaintStatus) -> bool {
        matches!(
            (self, to),
            (ComplaintStatus::Open, ComplaintStatus::InReview)
                | (ComplaintStatus::Open, ComplaintStatus::Closed)
                | (ComplaintStatus::InReview, ComplaintStatus::Closed)
        )
    }
}

impl std::fmt::Display for ComplaintStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ComplaintStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "open" => Ok(ComplaintStatus::Open),
            "in-review" => Ok(ComplaintStatus::InReview),
            "closed" => Ok(ComplaintStatus::Closed),
            _ => Err("a status is one of open, in-review, closed".into()),
        }
    }
}

/// The answer to `POST /v1/complaints` (201).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ComplaintFiled {
    /// The complaint's id (16 random bytes, hex): what `GET /v1/complaints/{id}` takes.
    pub complaint_id: String,
    /// `open`.
    pub status: ComplaintStatus,
    /// The departments it was routed to.
    pub departments: Vec<String>,
}

/// One change of a complaint's status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StatusChange {
    /// When (RFC 3339, UTC).
    pub at: String,
    /// The status it went to.
    pub status: ComplaintStatus,
    /// The officer who changed it (their certificate's name; none for the filing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub officer: Option<String>,
    /// SHA-256 of the officer's certificate key (`fedq certs officers`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub officer_key_sha256: Option<String>,
    /// The officer's note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `GET /v1/complaints/{id}`: the filer's view of their complaint (the text and contact
/// they sent are not sent back).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ComplaintState {
    /// The complaint's id.
    pub complaint_id: String,
    /// When it was filed (RFC 3339, UTC).
    pub filed_at: String,
    /// What it is about: for a query, the coordinator's id of it.
    pub about: ComplaintAbout,
    /// The departments it was routed to.
    pub departments: Vec<String>,
    /// Its status now.
    pub status: ComplaintStatus,
    /// Every status it has had, oldest first, from the filing.
    pub history: Vec<StatusChange>,
}

/// What an officer signs to change a complaint's status: this statement's JSON text is
/// the message of the signature in [`StatusUpdate`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusStatement {
    /// Always [`StatusStatement::PURPOSE`]: a signature over one never counts for another
    /// kind of statement.
    pub purpose: String,
    /// The complaint.
    pub complaint_id: String,
    /// The status it goes to.
    pub status: ComplaintStatus,
    /// The officer's note (1 to 2048 bytes).
    pub note: String,
    /// When it was signed (unix seconds); the coordinator takes it within 300 s of its own
    /// clock.
    pub signed_at: i64,
}

impl StatusStatement {
    /// The statement's purpose.
    pub const PURPOSE: &'static str = "fedq-complaint-status/1";
}

/// `POST /v1/complaints/{id}/status`: an officer's signed status change (an officer
/// certificate on the connection too, the same as the signer's).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusUpdate {
    /// The [`StatusStatement`]'s JSON text, exactly as signed.
    pub statement: String,
    /// The officer's ECDSA P-256 signature over `statement`'s bytes (ASN.1 DER), base64.
    pub signature: String,
    /// The officer's certificate (DER), base64: it must chain to the federation CA, carry
    /// role `officer` and code signing, and not be revoked.
    pub certificate: String,
}
