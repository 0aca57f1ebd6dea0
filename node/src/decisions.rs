//! Officers' signed decisions on the persons' filings (issue 19): an objection's
//! resolution by the department's officer, a credit repair's approval, rejection or
//! reversal by the credit-repair review office's officers. Each is a compact ES256 JWS
//! signed with the officer certificate's key (the certificate in `x5c`), which the node
//! verifies against its CA and CRL before it records anything; the record keeps the
//! officer's certificate name, key fingerprint and the signature itself, so anyone can
//! check it again later.

use std::collections::BTreeMap;
use std::path::Path;

use fedq_certs::identity::Role;
use fedq_certs::jws::CertificateKey;
use fedq_certs::signing::CODE_SIGNING;
use fedq_certs::FederationTrust;
use serde::{Deserialize, Serialize};

/// The JWS type of an objection's resolution.
pub const RESOLUTION_TYP: &str = "fedq-objection-resolution+jwt";
/// The JWS type of a credit-repair decision.
pub const REPAIR_DECISION_TYP: &str = "fedq-repair-decision+jwt";

/// How long a signed decision may wait before the node records it.
pub const MAX_DECISION_AGE_SECS: i64 = 7 * 24 * 3600;

/// What an officer signs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionClaims {
    /// The node the filing is at.
    pub node: String,
    /// The objection's or the repair application's id.
    pub filing: String,
    /// For an objection: `upheld`, `corrected` or `removed`; for a repair: `approve`,
    /// `reject` or `reverse`.
    pub decision: String,
    /// Why, in the officer's words.
    pub note: String,
    /// A correction's new cells (field → value as the import file would hold it).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub corrections: BTreeMap<String, String>,
    /// When signed (unix seconds).
    pub iat: i64,
}

/// A decision whose signature verified.
#[derive(Clone, Debug)]
pub struct Signed {
    /// What was signed.
    pub claims: DecisionClaims,
    /// The officer's certificate name.
    pub officer: String,
    /// SHA-256 of the officer's public key (hex).
    pub officer_key: String,
    /// The compact JWS.
    pub token: String,
}

/// Why a decision does not count. Never quotes the token.
#[derive(Debug, thiserror::Error)]
pub enum DecisionError {
    /// The officer's files could not be loaded.
    #[error("the officer's certificate and key: {0}")]
    Key(String),
    /// The signature, certificate, role or CRL does not hold.
    #[error("the signed decision does not verify: {0}")]
    Signature(String),
    /// The claims are not for this filing, node or kind of decision.
    #[error("the signed decision does not fit: {0}")]
    Mismatch(String),
}

/// Signs `claims` with the officer certificate and key at these paths.
pub fn sign(
    cert: &Path,
    key: &Path,
    typ: &str,
    claims: &DecisionClaims,
) -> Result<String, DecisionError> {
    let key = CertificateKey::load(cert, key).map_err(|e| DecisionError::Key(e.to_string()))?;
    if key.identity().role != Role::Officer {
        return Err(DecisionError::Key(format!(
            "a {} certificate cannot sign a decision; use an officer's (`fedq certs issue --role officer`)",
            key.identity().role
        )));
    }
    let payload = serde_json::to_vec(claims).map_err(|e| DecisionError::Key(e.to_string()))?;
    fedq_certs::jws::sign_es256(&key, typ, &payload).map_err(|e| DecisionError::Key(e.to_string()))
}

/// Verifies a decision of type `typ` at `now` (unix seconds): an officer certificate of
/// this federation, unrevoked under a fresh CRL, signed it; it is for `node` and
/// `filing`; it is not older than [`MAX_DECISION_AGE_SECS`] nor from the future.
pub fn verify(
    trust: &FederationTrust,
    token: &str,
    typ: &str,
    node: &str,
    filing: &str,
    now: i64,
) -> Result<Signed, DecisionError> {
    let at = fedq_wire::proof::UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        now.max(0).unsigned_abs(),
    ));
    let verified = trust
        .verify_es256(token.trim(), typ, Role::Officer, CODE_SIGNING, at, true)
        .map_err(|e| DecisionError::Signature(e.to_string()))?;
    let claims: DecisionClaims = serde_json::from_slice(&verified.payload)
        .map_err(|_| DecisionError::Mismatch("its claims are not a decision's".into()))?;
    if claims.node != node {
        return Err(DecisionError::Mismatch(format!(
            "it is for node `{}`, not `{node}`",
            claims.node
        )));
    }
    if claims.filing != filing {
        return Err(DecisionError::Mismatch(
            "it is about another objection or application".into(),
        ));
    }
    if claims.iat > now + 60 || now - claims.iat > MAX_DECISION_AGE_SECS {
        return Err(DecisionError::Mismatch(format!(
            "it was signed more than {} days ago or in the future; have it signed again",
            MAX_DECISION_AGE_SECS / 86_400
        )));
    }
    Ok(Signed {
        claims,
        officer: verified.signer.identity.name.clone(),
        officer_key: verified.signer.key_sha256.clone(),
        token: token.trim().to_owned(),
    })
}
