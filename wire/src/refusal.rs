//! Why a node refused a lookup's proof ([`ProofRefusal`]), as carried on the wire.
//!
//! A type of its own so that [`crate::message`] (which carries it) and [`crate::proof`]
//! (which decides it) do not import each other. Types only: it must never check a proof,
//! and its messages never quote a value.

use serde::{Deserialize, Serialize};

use crate::seal::SealRefusal;

/// A field of a lookup that differs from what its proof names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProofField {
    /// The requester the coordinator names is not the one the session proves.
    Requester,
    /// The sealed subject: not the one whose hash was proven (moved from another lookup).
    Sealed,
    /// The declared purpose.
    Purpose,
    /// The legal basis.
    Basis,
    /// The case reference.
    Case,
    /// The view or datasets and fields asked.
    Target,
}

impl ProofField {
    /// The field's name in messages and audit entries.
    pub fn name(self) -> &'static str {
        match self {
            ProofField::Requester => "requester",
            ProofField::Sealed => "sealed subject",
            ProofField::Purpose => "purpose",
            ProofField::Basis => "legal basis",
            ProofField::Case => "case reference",
            ProofField::Target => "target",
        }
    }
}

/// Why a node refused a lookup's proof. Carried on the wire in
/// [`crate::message::NodeResponse::ProofRefused`]; the message never quotes a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ProofRefusal {
    /// The lookup carries no proof.
    #[error(
        "the lookup carries no requester proof; the requester must prove each query to this node"
    )]
    Missing,
    /// Not an HS256 `fedq-request+jwt` with a `kid`, or its payload is not proof claims.
    #[error("the requester proof is not a fedq-request+jwt HS256 JWS with a session id and proof claims")]
    Malformed,
    /// No live session has the proof's `kid` (never opened, expired, evicted, or closed):
    /// the requester opens a new session and retries once.
    #[error(
        "the requester proof names no live session at this node; open a session again and retry"
    )]
    UnknownSession,
    /// The MAC does not verify under the session's key.
    #[error("the requester proof's MAC does not verify under its session's key")]
    BadMac,
    /// Made for another federation or node.
    #[error("the requester proof was made for another federation or node")]
    Misdirected,
    /// `iat` is more than [`crate::proof::MAX_CLOCK_SKEW_SECS`] from the node's clock.
    #[error(
        "the requester proof was made more than 300 s from this node's clock; make a fresh proof"
    )]
    Stale,
    /// This (session, nonce) was already used.
    #[error("the requester proof was already used; every query needs a fresh proof")]
    Replayed,
    /// The certificate that opened the session is revoked; the session is closed.
    #[error("the certificate that opened this session is revoked; the session is closed")]
    Revoked,
    /// The replay cache is full of proofs still in their window: fail closed.
    #[error("the node's replay cache is full of live proofs; retry shortly")]
    Busy,
    /// The lookup asks something other than what was proven.
    #[error("the lookup's {} differs from what the requester proved", .0.name())]
    Altered(ProofField),
    /// The sealed subject does not open under the session (sealed for another node,
    /// session or query, or altered).
    #[error("the lookup's sealed subject was refused: {0}")]
    Sealed(SealRefusal),
    /// The sealed subject opened but is not a resident ID with an optional consent token
    /// of at most 4096 bytes.
    #[error("the lookup's sealed subject is not a resident ID with an optional consent token of at most 4096 bytes")]
    SealedContent,
}

impl ProofRefusal {
    /// A short stable name for audit entries and metrics (`altered-purpose`, …).
    pub fn code(self) -> &'static str {
        match self {
            ProofRefusal::Missing => "missing",
            ProofRefusal::Malformed => "malformed",
            ProofRefusal::UnknownSession => "unknown-session",
            ProofRefusal::BadMac => "bad-mac",
            ProofRefusal::Misdirected => "misdirected",
            ProofRefusal::Stale => "stale",
            ProofRefusal::Replayed => "replayed",
            ProofRefusal::Revoked => "revoked",
            ProofRefusal::Busy => "busy",
            ProofRefusal::Altered(ProofField::Requester) => "altered-requester",
            ProofRefusal::Altered(ProofField::Sealed) => "altered-sealed",
            ProofRefusal::Altered(ProofField::Purpose) => "altered-purpose",
            ProofRefusal::Altered(ProofField::Basis) => "altered-basis",
            ProofRefusal::Altered(ProofField::Case) => "altered-case",
            ProofRefusal::Altered(ProofField::Target) => "altered-target",
            ProofRefusal::Sealed(SealRefusal::TooLarge) => "sealed-too-large",
            ProofRefusal::Sealed(SealRefusal::Malformed) => "sealed-malformed",
            ProofRefusal::Sealed(SealRefusal::WrongType) => "sealed-wrong-type",
            ProofRefusal::Sealed(SealRefusal::WrongSession) => "sealed-wrong-session",
            ProofRefusal::Sealed(SealRefusal::Misdirected) => "sealed-misdirected",
            ProofRefusal::Sealed(SealRefusal::Moved) => "sealed-moved",
            ProofRefusal::Sealed(SealRefusal::Tampered) => "sealed-tampered",
            ProofRefusal::SealedContent => "sealed-content",
        }
    }
}
