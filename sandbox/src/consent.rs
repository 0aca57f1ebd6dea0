//! Consent tokens: one the federation's consent authority signs, and the same shape
//! signed with another key, as a party without the authority's key could make it.

use crate::build::{Federation, SandboxError};
use crate::reference::CONSENT_AUTHORITY;

/// A consent token signed by the federation's consent authority ([`CONSENT_AUTHORITY`]):
/// `subject` consents to `requester` asking for `targets` (`view:NAME` or
/// `department.dataset`) under `purpose`, once per node, for an hour.
pub fn consent_token(
    fed: &Federation,
    subject: &str,
    requester: &str,
    purpose: &str,
    targets: &[&str],
) -> Result<String, SandboxError> {
    let pki = fed.layout.pki();
    let key = fedq_certs::jws::CertificateKey::load(
        &fedq_certs::pki::cert_path(&pki, CONSENT_AUTHORITY),
        &fedq_certs::pki::key_path(&pki, CONSENT_AUTHORITY),
    )?;
    let grant = fedq_certs::consent::ConsentGrant {
        subject: subject.to_owned(),
        requester: requester.to_owned(),
        purpose: purpose.to_owned(),
        targets: targets.iter().map(|t| (*t).to_owned()).collect(),
        valid_for_secs: 3600,
        max_uses: 1,
    };
    fedq_certs::consent::issue(
        &key,
        &grant,
        time::OffsetDateTime::now_utc().unix_timestamp(),
    )
    .map(|(token, _)| token)
    .map_err(SandboxError::from)
}

/// The same shape of token signed with another key than the consent authority's (here
/// the asking office's own requester key): what a requester or a taken-over coordinator
/// could make by itself.
pub fn forged_consent_token(
    fed: &Federation,
    signer: &str,
    subject: &str,
    requester: &str,
    purpose: &str,
    targets: &[&str],
) -> Result<String, SandboxError> {
    let pki = fed.layout.pki();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = fedq_certs::consent::ConsentClaims {
        iss: format!("fedq://changsha/consent-authority/{CONSENT_AUTHORITY}"),
        sub: subject.to_owned(),
        jti: "forged-0001".into(),
        iat: now,
        nbf: now,
        exp: now + 3600,
        authorization_details: vec![fedq_certs::consent::AuthorizationDetail {
            kind: fedq_certs::consent::DETAIL_TYPE.into(),
            requester: requester.to_owned(),
            purpose: purpose.to_owned(),
            targets: targets.iter().map(|t| (*t).to_owned()).collect(),
            max_uses: 1000,
        }],
    };
    let key = fedq_certs::jws::CertificateKey::load(
        &fedq_certs::pki::cert_path(&pki, signer),
        &fedq_certs::pki::key_path(&pki, signer),
    )?;
    let payload = serde_json::to_vec(&claims)?;
    Ok(fedq_certs::jws::sign_es256(
        &key,
        fedq_certs::consent::TYP,
        &payload,
    )?)
}
