//! Consent tokens: the subject's consent to one kind of query, signed by the federation's
//! consent authority (the identity-verification step at the service window, or the city's
//! citizen app).
//!
//! A token is a compact ES256 JWS ([`crate::jws`]) of type [`TYP`] whose `x5c` certificate
//! is a `consent-authority` certificate of this federation (code-signing usage). Its
//! claims follow OAuth Rich Authorization Requests (RFC 9396), so other systems can mint
//! them with any JOSE library:
//!
//! ```json
//! { "iss": "fedq://changsha/consent-authority/service-window",
//!   "sub": "430102199003076318", "jti": "…16 random bytes, base64url…",
//!   "iat": 1780000000, "nbf": 1780000000, "exp": 1780003600,
//!   "authorization_details": [{ "type": "fedq_query",
//!       "requester": "public-service.self-service", "purpose": "self-query",
//!       "targets": ["view:credit-report"], "max_uses": 1 }] }
//! ```
//!
//! Verifying ([`FederationTrust::verify_consent`]) checks the signer, the CRL and the
//! validity period; [`Consent::covers`] then checks the token against one query (subject,
//! requester, purpose, target). Counting uses is the node's business (it alone knows what
//! it answered). No error quotes the token or its subject.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::rand::SecureRandom as _;
use rustls::pki_types::UnixTime;
use serde::{Deserialize, Serialize};

use crate::identity::Role;
use crate::jws::{self, CertificateKey, JwsError};
use crate::signing::{OfficerError, CODE_SIGNING};
use crate::tls::{FederationTrust, TlsError};

/// The JWS `typ` of a consent token.
pub const TYP: &str = "fedq-consent+jwt";
/// The `type` of the one `authorization_details` entry a consent token carries.
pub const DETAIL_TYPE: &str = "fedq_query";
/// How far a verifier's clock may be from the authority's when it checks `nbf` and `exp`.
pub const CLOCK_ALLOWANCE_SECS: i64 = 60;
/// Longest validity period (`exp − nbf`) a token may have: 90 days.
pub const MAX_VALIDITY_SECS: i64 = 90 * 24 * 3600;
/// Most uses one token may grant.
pub const MAX_USES: u32 = 1000;
/// Most targets one token may name.
pub const MAX_TARGETS: usize = 64;
/// Longest `jti` accepted, in characters (`[A-Za-z0-9_-]` only).
pub const MAX_JTI_LEN: usize = 64;
/// Longest requester, purpose or target name accepted in a token, in bytes.
const MAX_NAME_LEN: usize = 128;

/// A consent token's claims.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentClaims {
    /// The issuing authority's identity URI (`fedq://FEDERATION/consent-authority/NAME`).
    pub iss: String,
    /// The subject's resident ID.
    pub sub: String,
    /// The token's id (random; recorded in every audit entry of a query carrying it).
    pub jti: String,
    /// Issued at (unix seconds).
    pub iat: i64,
    /// Not before (unix seconds).
    pub nbf: i64,
    /// Expires at (unix seconds).
    pub exp: i64,
    /// Exactly one entry of type [`DETAIL_TYPE`].
    pub authorization_details: Vec<AuthorizationDetail>,
}

impl std::fmt::Debug for ConsentClaims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The subject is a resident ID: never printed.
        f.debug_struct("ConsentClaims")
            .field("iss", &self.iss)
            .field("jti", &self.jti)
            .field("nbf", &self.nbf)
            .field("exp", &self.exp)
            .field("authorization_details", &self.authorization_details)
            .finish_non_exhaustive()
    }
}

/// What the subject consented to (RFC 9396 `authorization_details` entry).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizationDetail {
    /// Always [`DETAIL_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
    /// The office that may ask (`agency.office`).
    pub requester: String,
    /// The purpose it may ask for.
    pub purpose: String,
    /// What it may ask: `view:NAME` or `department.dataset` items.
    pub targets: Vec<String>,
    /// How many answered queries the token allows, per node.
    pub max_uses: u32,
}

/// What a consent authority is asked to sign.
#[derive(Clone, PartialEq, Eq)]
pub struct ConsentGrant {
    /// The subject's resident ID (validated by the caller).
    pub subject: String,
    /// `agency.office`.
    pub requester: String,
    /// The purpose.
    pub purpose: String,
    /// `view:NAME` or `department.dataset` items.
    pub targets: Vec<String>,
    /// Validity from now, in seconds.
    pub valid_for_secs: i64,
    /// Uses allowed.
    pub max_uses: u32,
}

impl std::fmt::Debug for ConsentGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsentGrant")
            .field("requester", &self.requester)
            .field("purpose", &self.purpose)
            .field("targets", &self.targets)
            .finish_non_exhaustive()
    }
}

/// The claim of a token that did not match the query it came with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentClaim {
    /// `sub`: the token is for another person.
    Subject,
    /// `authorization_details[0].requester`: for another office.
    Requester,
    /// `authorization_details[0].purpose`: for another purpose.
    Purpose,
    /// `authorization_details[0].targets`: does not cover what is asked.
    Targets,
}

impl ConsentClaim {
    /// The claim's name as the token writes it.
    pub fn claim(self) -> &'static str {
        match self {
            ConsentClaim::Subject => "sub",
            ConsentClaim::Requester => "authorization_details.requester",
            ConsentClaim::Purpose => "authorization_details.purpose",
            ConsentClaim::Targets => "authorization_details.targets",
        }
    }

    fn what(self) -> &'static str {
        match self {
            ConsentClaim::Subject => "is for another person than the query's subject",
            ConsentClaim::Requester => "names another office than the one asking",
            ConsentClaim::Purpose => "names another purpose than the query's",
            ConsentClaim::Targets => "does not cover what the query asks for",
        }
    }
}

/// Why a consent token does not count for a query. Never quotes the token or its subject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsentError {
    /// Not a consent token, or its signature or signer does not verify.
    #[error("the consent token does not verify: {0}")]
    Token(String),
    /// The signer is the consent authority, but its certificate was revoked or the CRL
    /// is too old to tell.
    #[error("the consent token's authority does not count: {0}")]
    Authority(String),
    /// A claim is missing or out of shape (named).
    #[error("the consent token's claims are not a fedq consent: {0}")]
    Claims(String),
    /// `nbf` is in the future.
    #[error("the consent token is not valid yet (`nbf` is in the future)")]
    NotYetValid,
    /// `exp` has passed.
    #[error(
        "the consent token has expired (`exp` has passed); ask the consent authority for a new one"
    )]
    Expired,
    /// A claim does not match the query.
    #[error("the consent token's `{}` {}", .0.claim(), .0.what())]
    Mismatch(ConsentClaim),
    /// The node answered `max_uses` queries under this token already.
    #[error("the consent token is used up (`max_uses` {max_uses} reached at this node); ask the consent authority for a new one")]
    UsedUp {
        /// The token's `max_uses`.
        max_uses: u32,
    },
}

impl ConsentError {
    /// A short stable code naming what failed, for audit entries and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            ConsentError::Token(_) => "signature",
            ConsentError::Authority(_) => "authority",
            ConsentError::Claims(_) => "claims",
            ConsentError::NotYetValid => "nbf",
            ConsentError::Expired => "exp",
            ConsentError::Mismatch(c) => c.claim(),
            ConsentError::UsedUp { .. } => "max_uses",
        }
    }
}

/// What one query asks, for [`Consent::covers`].
#[derive(Clone, Copy, Debug)]
pub enum ConsentTarget<'a> {
    /// A view by name (covered by `view:NAME`).
    View(&'a str),
    /// Datasets (`department.dataset`), each of which must be named.
    Datasets(&'a [&'a str]),
    /// One of the person's rights by name (covered by `rights:NAME`, e.g.
    /// `rights:register`).
    Rights(&'a str),
}

/// A consent token that verified: its signer and claims.
#[derive(Clone, Debug)]
pub struct Consent {
    /// The claims.
    pub claims: ConsentClaims,
    /// Their one authorization detail.
    detail: AuthorizationDetail,
    /// The authority's certificate serial.
    pub authority_serial: String,
}

impl Consent {
    /// The token's id.
    pub fn jti(&self) -> &str {
        &self.claims.jti
    }

    /// The one authorization detail.
    pub fn detail(&self) -> &AuthorizationDetail {
        &self.detail
    }

    /// Checks the token against one query: subject, requester, purpose and target, in
    /// that order; the error names the first claim that does not match.
    pub fn covers(
        &self,
        subject: &str,
        requester: &str,
        purpose: &str,
        target: ConsentTarget<'_>,
    ) -> Result<(), ConsentError> {
        let detail = self.detail();
        if !self.claims.sub.eq_ignore_ascii_case(subject) {
            return Err(ConsentError::Mismatch(ConsentClaim::Subject));
        }
        if detail.requester != requester {
            return Err(ConsentError::Mismatch(ConsentClaim::Requester));
        }
        if detail.purpose != purpose {
            return Err(ConsentError::Mismatch(ConsentClaim::Purpose));
        }
        let named = |t: &str| detail.targets.iter().any(|x| x == t);
        let covered = match target {
            ConsentTarget::View(v) => named(&format!("view:{v}")),
            ConsentTarget::Rights(r) => named(&format!("rights:{r}")),
            ConsentTarget::Datasets(ds) => !ds.is_empty() && ds.iter().all(|d| named(d)),
        };
        if !covered {
            return Err(ConsentError::Mismatch(ConsentClaim::Targets));
        }
        Ok(())
    }
}

fn valid_jti(jti: &str) -> bool {
    !jti.is_empty()
        && jti.len() <= MAX_JTI_LEN
        && jti
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_NAME_LEN && s.bytes().all(|b| b.is_ascii_graphic() && b != b'"')
}

/// Checks the shape of a grant or of verified claims' detail; the error names the field.
fn check_detail(
    requester: &str,
    purpose: &str,
    targets: &[String],
    max_uses: u32,
) -> Result<(), String> {
    if !valid_name(requester) {
        return Err("`requester` must be an office name (`agency.office`)".into());
    }
    if !valid_name(purpose) {
        return Err("`purpose` must be a purpose name".into());
    }
    if targets.is_empty() || targets.len() > MAX_TARGETS {
        return Err(format!(
            "`targets` must name 1 to {MAX_TARGETS} views (`view:NAME`) or datasets (`department.dataset`)"
        ));
    }
    for t in targets {
        let ok = match (t.strip_prefix("view:"), t.strip_prefix("rights:")) {
            (Some(view), _) => valid_name(view),
            (_, Some(right)) => valid_name(right) && !right.contains(':'),
            _ => valid_name(t) && t.split('.').count() == 2 && !t.contains(':'),
        };
        if !ok {
            return Err(
                "each of `targets` must be `view:NAME`, `rights:RIGHT` or `department.dataset`"
                    .into(),
            );
        }
    }
    if max_uses == 0 || max_uses > MAX_USES {
        return Err(format!("`max_uses` must be 1 to {MAX_USES}"));
    }
    Ok(())
}

/// Signs a consent token for `grant` at `now` (unix seconds) with a consent authority's
/// key. Returns the token and its claims.
pub fn issue(
    key: &CertificateKey,
    grant: &ConsentGrant,
    now: i64,
) -> Result<(String, ConsentClaims), ConsentError> {
    if key.identity().role != Role::ConsentAuthority {
        return Err(ConsentError::Token(format!(
            "a {} certificate cannot issue consent tokens; use a consent-authority certificate (`fedq certs issue --role consent-authority`)",
            key.identity().role
        )));
    }
    check_detail(
        &grant.requester,
        &grant.purpose,
        &grant.targets,
        grant.max_uses,
    )
    .map_err(ConsentError::Claims)?;
    if grant.valid_for_secs <= 0 || grant.valid_for_secs > MAX_VALIDITY_SECS {
        return Err(ConsentError::Claims(format!(
            "the validity must be more than 0 and at most {} days",
            MAX_VALIDITY_SECS / 86400
        )));
    }
    let mut id = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut id)
        .map_err(|_| ConsentError::Token("no randomness available for the token id".into()))?;
    let claims = ConsentClaims {
        iss: key.identity().to_uri(),
        sub: grant.subject.clone(),
        jti: URL_SAFE_NO_PAD.encode(id),
        iat: now,
        nbf: now,
        exp: now + grant.valid_for_secs,
        authorization_details: vec![AuthorizationDetail {
            kind: DETAIL_TYPE.into(),
            requester: grant.requester.clone(),
            purpose: grant.purpose.clone(),
            targets: grant.targets.clone(),
            max_uses: grant.max_uses,
        }],
    };
    let payload = serde_json::to_vec(&claims).map_err(|e| ConsentError::Claims(e.to_string()))?;
    let token = jws::sign_es256(key, TYP, &payload)
        .map_err(|e: TlsError| ConsentError::Token(e.to_string()))?;
    Ok((token, claims))
}

/// Reads a token's claims **without verifying anything** (for `fedq consent show`).
pub fn inspect(token: &str) -> Result<ConsentClaims, ConsentError> {
    let parts =
        jws::parse(token.trim(), "ES256", TYP).map_err(|e| ConsentError::Token(e.to_string()))?;
    parse_claims(&parts.payload)
}

fn parse_claims(payload: &[u8]) -> Result<ConsentClaims, ConsentError> {
    // serde's messages may quote a value: only say which claim is out of shape.
    serde_json::from_slice::<ConsentClaims>(payload).map_err(|e| {
        let kind = if e.is_syntax() || e.is_eof() {
            "the payload is not a JSON object"
        } else {
            "a claim is missing, unknown or of the wrong type (`iss`, `sub`, `jti`, `iat`, `nbf`, `exp`, `authorization_details` with `type`, `requester`, `purpose`, `targets`, `max_uses`)"
        };
        ConsentError::Claims(kind.into())
    })
}

impl FederationTrust {
    /// Verifies a consent token at `now` (unix seconds): an ES256 JWS of type [`TYP`]
    /// signed by a `consent-authority` certificate of this federation with code-signing
    /// usage, valid now and (with `revocation`) not revoked by a fresh CRL; `iss` is the
    /// signer; the claims are in shape; `nbf` and `exp` hold within
    /// [`CLOCK_ALLOWANCE_SECS`]. What the token covers is checked by [`Consent::covers`].
    pub fn verify_consent(
        &self,
        token: &str,
        now: i64,
        revocation: bool,
    ) -> Result<Consent, ConsentError> {
        let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            u64::try_from(now).unwrap_or(0),
        ));
        let verified = self
            .verify_es256(
                token.trim(),
                TYP,
                Role::ConsentAuthority,
                CODE_SIGNING,
                at,
                revocation,
            )
            .map_err(|e| match e {
                JwsError::Signer(OfficerError::Revoked(serial)) => ConsentError::Authority(
                    format!("its certificate (serial {serial}) has been revoked"),
                ),
                JwsError::Signer(OfficerError::StaleCrl(why)) => ConsentError::Authority(format!(
                    "cannot tell whether its certificate is revoked: {why}"
                )),
                JwsError::Signer(OfficerError::WrongRole { found, .. })
                | JwsError::Signer(OfficerError::NotOfficer(found)) => ConsentError::Token(
                    format!("it is signed by a certificate of role `{found}`, not by the consent authority"),
                ),
                other => ConsentError::Token(other.to_string()),
            })?;
        let claims = parse_claims(&verified.payload)?;
        if claims.iss != verified.signer.identity.to_uri() {
            return Err(ConsentError::Claims(
                "`iss` is not the identity of the certificate that signed it".into(),
            ));
        }
        if !valid_jti(&claims.jti) {
            return Err(ConsentError::Claims(format!(
                "`jti` must be 1 to {MAX_JTI_LEN} characters of A-Z, a-z, 0-9, `-` and `_`"
            )));
        }
        if claims.sub.is_empty() || claims.sub.len() > 64 {
            return Err(ConsentError::Claims("`sub` must be a resident ID".into()));
        }
        let [detail] = claims.authorization_details.as_slice() else {
            return Err(ConsentError::Claims(
                "`authorization_details` must hold exactly one entry".into(),
            ));
        };
        if detail.kind != DETAIL_TYPE {
            return Err(ConsentError::Claims(format!(
                "the `authorization_details` entry's `type` must be `{DETAIL_TYPE}`"
            )));
        }
        check_detail(
            &detail.requester,
            &detail.purpose,
            &detail.targets,
            detail.max_uses,
        )
        .map_err(ConsentError::Claims)?;
        if claims.exp <= claims.nbf || claims.exp - claims.nbf > MAX_VALIDITY_SECS {
            return Err(ConsentError::Claims(format!(
                "`exp` must be after `nbf` and at most {} days later",
                MAX_VALIDITY_SECS / 86400
            )));
        }
        if claims.nbf > now + CLOCK_ALLOWANCE_SECS || claims.iat > now + CLOCK_ALLOWANCE_SECS {
            return Err(ConsentError::NotYetValid);
        }
        if claims.exp <= now - CLOCK_ALLOWANCE_SECS {
            return Err(ConsentError::Expired);
        }
        let detail = detail.clone();
        Ok(Consent {
            claims,
            detail,
            authority_serial: verified.signer.serial,
        })
    }
}

/// A validity that [`parse_duration`] does not accept; its text says what is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "a validity is a number and a unit: `90s`, `30m`, `1h` or `7d` (at most {} days)",
    MAX_VALIDITY_SECS / 86400
)]
pub struct InvalidDuration;

/// Parses `1h`, `30m`, `7d` or `90s` into seconds; the error says what is accepted.
pub fn parse_duration(s: &str) -> Result<i64, InvalidDuration> {
    let s = s.trim();
    let (number, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = number.parse().map_err(|_| InvalidDuration)?;
    let secs = match unit {
        "s" => n,
        "m" => n.checked_mul(60).ok_or(InvalidDuration)?,
        "h" => n.checked_mul(3600).ok_or(InvalidDuration)?,
        "d" => n.checked_mul(86400).ok_or(InvalidDuration)?,
        _ => return Err(InvalidDuration),
    };
    if secs <= 0 || secs > MAX_VALIDITY_SECS {
        return Err(InvalidDuration);
    }
    Ok(secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::{CertificateAuthority, IssueOptions};
    use crate::tls::TrustFiles;

    const SUBJECT: &str = "430102199003076318";

    struct Fed {
        dir: tempfile::TempDir,
        ca: CertificateAuthority,
    }

    impl Fed {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let ca = CertificateAuthority::init(dir.path(), "changsha", false).unwrap();
            for (role, name) in [
                (Role::ConsentAuthority, "service-window"),
                (Role::Requester, "public-service.self-service"),
                (Role::Officer, "officer-li"),
            ] {
                ca.issue(role, name, &IssueOptions::default()).unwrap();
            }
            Self { dir, ca }
        }
        fn key(&self, name: &str) -> CertificateKey {
            CertificateKey::load(
                &self.dir.path().join(format!("{name}.crt")),
                &self.dir.path().join(format!("{name}.key")),
            )
            .unwrap()
        }
        fn trust(&self) -> FederationTrust {
            FederationTrust::load(&TrustFiles::in_dir(self.dir.path())).unwrap()
        }
    }

    fn grant() -> ConsentGrant {
        ConsentGrant {
            subject: SUBJECT.into(),
            requester: "public-service.self-service".into(),
            purpose: "self-query".into(),
            targets: vec!["view:credit-report".into(), "court.judgments".into()],
            valid_for_secs: 3600,
            max_uses: 2,
        }
    }

    fn now() -> i64 {
        UnixTime::now().as_secs() as i64
    }

    #[test]
    fn a_token_verifies_and_covers_exactly_what_it_names() {
        let fed = Fed::new();
        let (token, claims) = issue(&fed.key("service-window"), &grant(), now()).unwrap();
        assert_eq!(
            claims.iss,
            "fedq://changsha/consent-authority/service-window"
        );
        let consent = fed.trust().verify_consent(&token, now(), true).unwrap();
        assert_eq!(consent.jti(), claims.jti);
        let ok = |s, r, p, t| consent.covers(s, r, p, t);
        ok(
            SUBJECT,
            "public-service.self-service",
            "self-query",
            ConsentTarget::View("credit-report"),
        )
        .unwrap();
        ok(
            SUBJECT,
            "public-service.self-service",
            "self-query",
            ConsentTarget::Datasets(&["court.judgments"]),
        )
        .unwrap();
        let mismatch = |s, r, p, t| match ok(s, r, p, t) {
            Err(ConsentError::Mismatch(c)) => c,
            other => panic!("expected a mismatch, got {other:?}"),
        };
        let view = ConsentTarget::View("credit-report");
        assert_eq!(
            mismatch(
                "110105194912310025",
                "public-service.self-service",
                "self-query",
                view
            ),
            ConsentClaim::Subject
        );
        assert_eq!(
            mismatch(SUBJECT, "court.enforcement", "self-query", view),
            ConsentClaim::Requester
        );
        assert_eq!(
            mismatch(SUBJECT, "public-service.self-service", "statistics", view),
            ConsentClaim::Purpose
        );
        assert_eq!(
            mismatch(
                SUBJECT,
                "public-service.self-service",
                "self-query",
                ConsentTarget::View("blacklist-check")
            ),
            ConsentClaim::Targets
        );
        assert_eq!(
            mismatch(
                SUBJECT,
                "public-service.self-service",
                "self-query",
                ConsentTarget::Datasets(&["court.judgments", "tax.arrears"])
            ),
            ConsentClaim::Targets
        );
        // The error names the claim, never the subject.
        let e = ok(
            "110105194912310025",
            "public-service.self-service",
            "self-query",
            view,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("`sub`") && !e.contains("110105") && !e.contains(SUBJECT),
            "{e}"
        );
    }

    #[test]
    fn validity_is_checked_with_a_small_allowance() {
        let fed = Fed::new();
        let trust = fed.trust();
        let (token, _) = issue(&fed.key("service-window"), &grant(), now()).unwrap();
        let t = now();
        trust
            .verify_consent(&token, t + 3600 + CLOCK_ALLOWANCE_SECS - 1, true)
            .unwrap();
        assert_eq!(
            trust
                .verify_consent(&token, t + 3600 + CLOCK_ALLOWANCE_SECS + 1, true)
                .unwrap_err(),
            ConsentError::Expired
        );
        assert_eq!(
            trust
                .verify_consent(&token, t - CLOCK_ALLOWANCE_SECS - 5, true)
                .unwrap_err(),
            ConsentError::NotYetValid
        );
    }

    #[test]
    fn another_roles_key_an_altered_claim_or_a_revoked_authority_is_refused() {
        let fed = Fed::new();
        let trust = fed.trust();
        // The requester (or an officer) signs a token of the right shape itself.
        for name in ["public-service.self-service", "officer-li"] {
            let mut claims = issue(&fed.key("service-window"), &grant(), now())
                .unwrap()
                .1;
            claims.iss = format!("fedq://changsha/consent-authority/{name}");
            let forged =
                jws::sign_es256(&fed.key(name), TYP, &serde_json::to_vec(&claims).unwrap())
                    .unwrap();
            let err = trust.verify_consent(&forged, now(), true).unwrap_err();
            assert!(matches!(err, ConsentError::Token(_)), "{err}");
            assert_eq!(err.code(), "signature");
        }
        // The authority cannot be impersonated by issue() with another key either.
        assert!(issue(&fed.key("officer-li"), &grant(), now()).is_err());
        // A claim altered after signing.
        let (token, mut claims) = issue(&fed.key("service-window"), &grant(), now()).unwrap();
        claims.authorization_details[0].max_uses = 1000;
        let parts: Vec<&str> = token.split('.').collect();
        let altered = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap()),
            parts[2]
        );
        assert!(matches!(
            trust.verify_consent(&altered, now(), true).unwrap_err(),
            ConsentError::Token(_)
        ));
        // Revoked authority: refused once the CRL says so.
        fed.ca.revoke("service-window").unwrap();
        let err = fed.trust().verify_consent(&token, now(), true).unwrap_err();
        assert!(matches!(err, ConsentError::Authority(_)), "{err}");
    }

    #[test]
    fn claims_out_of_shape_are_named_without_quoting() {
        let fed = Fed::new();
        let key = fed.key("service-window");
        let sign = |v: serde_json::Value| {
            jws::sign_es256(&key, TYP, &serde_json::to_vec(&v).unwrap()).unwrap()
        };
        let base = serde_json::to_value(issue(&key, &grant(), now()).unwrap().1).unwrap();
        let mut two = base.clone();
        let d = two["authorization_details"][0].clone();
        two["authorization_details"] = serde_json::json!([d.clone(), d]);
        let mut other_type = base.clone();
        other_type["authorization_details"][0]["type"] = "payment_initiation".into();
        let mut extra = base.clone();
        extra["authorization_details"][0]["locations"] = serde_json::json!(["x"]);
        let mut bad_jti = base.clone();
        bad_jti["jti"] = "430102199003076318 with spaces".into();
        let mut wrong_iss = base.clone();
        wrong_iss["iss"] = "fedq://changsha/consent-authority/citizen-app".into();
        for (v, what) in [
            (two, "exactly one"),
            (other_type, "`type`"),
            (extra, "a claim is missing"),
            (bad_jti, "`jti`"),
            (wrong_iss, "`iss`"),
        ] {
            let err = fed
                .trust()
                .verify_consent(&sign(v), now(), true)
                .unwrap_err()
                .to_string();
            assert!(err.contains(what), "{err}");
            assert!(!err.contains("430102"), "{err}");
        }
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("1h").unwrap(), 3600);
        assert_eq!(parse_duration("7d").unwrap(), 7 * 86400);
        assert_eq!(parse_duration("30m").unwrap(), 1800);
        for bad in ["", "h", "0h", "-1h", "1w", "91d", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
