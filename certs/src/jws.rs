//! JSON Web Signatures (RFC 7515, compact serialization) bound to federation certificates.
//!
//! Two kinds, both in the shape other systems can make and check:
//! - **ES256** (ECDSA P-256, SHA-256, the 64-byte `r‖s` signature of RFC 7518 §3.4) made
//!   with a certificate's own key; the header carries the certificate in `x5c` and the
//!   verifier checks it against this federation's CA, role, extended key usage, validity
//!   and CRL before the signature. Consent tokens and requesters' session grants are these.
//! - **HS256** (HMAC-SHA256) under a key two parties agreed; the header names it in `kid`.
//!   A requester's per-query proof to one node is this.
//!
//! What the payload means is the caller's business; this module only binds bytes to a
//! signer. Every input is bounded ([`MAX_COMPACT_LEN`]) and no error quotes it.

use std::path::Path;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use rustls::pki_types::{CertificateDer, UnixTime};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::identity::{Identity, Role};
use crate::signing::{Officer, OfficerError};
use crate::tls::{Credentials, FederationTrust, TlsError};

/// Longest compact JWS accepted, in bytes (a certificate in `x5c` is under 1 KiB).
pub const MAX_COMPACT_LEN: usize = 16 * 1024;

/// Why a JWS does not count. Never quotes the token.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwsError {
    /// Not three base64url parts with a JSON object header, or over the size limit.
    #[error("not a compact JWS: {0}")]
    Malformed(&'static str),
    /// The header names another algorithm or type than the one expected here.
    #[error("the JWS header is not what this needs: {0}")]
    Header(String),
    /// The certificate in `x5c` does not count (see [`OfficerError`]).
    #[error("the signing certificate does not count: {0}")]
    Signer(#[from] OfficerError),
    /// The signature does not verify.
    #[error("the signature does not match the signed content")]
    BadSignature,
}

/// A certificate's ECDSA P-256 key, for signing JWS (any role).
pub struct CertificateKey {
    key: EcdsaKeyPair,
    certificate: CertificateDer<'static>,
    identity: Identity,
}

impl std::fmt::Debug for CertificateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateKey")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl CertificateKey {
    /// Loads a certificate and its key (the files `fedq certs issue` wrote); refuses a key
    /// that is not the certificate's.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, TlsError> {
        let creds = Credentials::load(cert_path, key_path)?;
        Self::from_credentials(&creds, &key_path.display().to_string())
    }

    /// The signing key of credentials already loaded (`what` names them in errors).
    pub fn from_credentials(creds: &Credentials, what: &str) -> Result<Self, TlsError> {
        let (chain, key) = creds.chain_and_key();
        let pkcs8 = Zeroizing::new(key.secret_der().to_vec());
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &pkcs8,
            &SystemRandom::new(),
        )
        .map_err(|e| TlsError::Invalid {
            path: what.to_owned(),
            why: format!("not an ECDSA P-256 key in PKCS#8: {e}"),
        })?;
        let certificate = chain.into_iter().next().ok_or_else(|| TlsError::Invalid {
            path: what.to_owned(),
            why: "no PEM certificate in file".into(),
        })?;
        let this = Self {
            key,
            certificate,
            identity: creds.identity().clone(),
        };
        // A key that is not the certificate's would sign what nobody can verify.
        let probe = this.sign_raw(b"fedq certificate key check")?;
        if public_key(&this.certificate)
            .map(|k| k.verify(b"fedq certificate key check", &probe).is_ok())
            != Ok(true)
        {
            return Err(TlsError::Invalid {
                path: what.to_owned(),
                why: "this key does not belong to its certificate".into(),
            });
        }
        Ok(this)
    }

    /// Who signs.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The certificate (DER).
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.certificate
    }

    fn sign_raw(&self, message: &[u8]) -> Result<Vec<u8>, TlsError> {
        self.key
            .sign(&SystemRandom::new(), message)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| TlsError::Invalid {
                path: "certificate key".into(),
                why: "signing failed".into(),
            })
    }
}

fn public_key(der: &[u8]) -> Result<ring::signature::UnparsedPublicKey<Vec<u8>>, JwsError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|_| JwsError::Malformed("the x5c certificate does not parse"))?;
    let point = cert
        .tbs_certificate
        .subject_pki
        .subject_public_key
        .data
        .to_vec();
    Ok(ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P256_SHA256_FIXED,
        point,
    ))
}

pub use crate::signing::certificate_public_key;

/// `header.payload.` joined, and the signature appended.
fn compact(
    header: &Map<String, Value>,
    payload: &[u8],
    sign: impl FnOnce(&[u8]) -> Vec<u8>,
) -> String {
    // A map of strings always serializes; an empty header would only fail to verify.
    let header = serde_json::to_vec(header).unwrap_or_default();
    let mut out = URL_SAFE_NO_PAD.encode(header);
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(payload));
    let signature = sign(out.as_bytes());
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(signature));
    out
}

/// Signs `payload` as an ES256 JWS of type `typ`, with the signer's certificate in `x5c`.
pub fn sign_es256(key: &CertificateKey, typ: &str, payload: &[u8]) -> Result<String, TlsError> {
    let mut header = Map::new();
    header.insert("alg".into(), "ES256".into());
    header.insert("typ".into(), typ.into());
    header.insert(
        "x5c".into(),
        Value::Array(vec![STANDARD.encode(key.certificate.as_ref()).into()]),
    );
    let mut failure = None;
    let out = compact(&header, payload, |input| match key.sign_raw(input) {
        Ok(s) => s,
        Err(e) => {
            failure = Some(e);
            Vec::new()
        }
    });
    match failure {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Signs `payload` as an HS256 JWS of type `typ` under the key named `kid`.
pub fn sign_hs256(key: &[u8], kid: &str, typ: &str, payload: &[u8]) -> String {
    let mut header = Map::new();
    header.insert("alg".into(), "HS256".into());
    header.insert("typ".into(), typ.into());
    header.insert("kid".into(), kid.into());
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    compact(&header, payload, |input| {
        ring::hmac::sign(&key, input).as_ref().to_vec()
    })
}

/// A compact JWS taken apart, not yet verified.
#[derive(Debug)]
pub struct Parts<'a> {
    /// The protected header.
    pub header: Map<String, Value>,
    /// The payload bytes.
    pub payload: Vec<u8>,
    signing_input: &'a str,
    signature: Vec<u8>,
}

/// Takes a compact JWS apart: three base64url parts, a JSON object header whose `alg` is
/// `alg` and whose `typ` is `typ`, and no `crit` (no extension is understood here).
pub fn parse<'a>(token: &'a str, alg: &str, typ: &str) -> Result<Parts<'a>, JwsError> {
    if token.len() > MAX_COMPACT_LEN {
        return Err(JwsError::Malformed("longer than the limit"));
    }
    let mut it = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return Err(JwsError::Malformed("not three dot-separated parts"));
    };
    let decode = |part: &str, what| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| JwsError::Malformed(what))
    };
    let header: Map<String, Value> =
        serde_json::from_slice(&decode(h, "the header is not base64url")?)
            .map_err(|_| JwsError::Malformed("the header is not a JSON object"))?;
    let payload = decode(p, "the payload is not base64url")?;
    let signature = decode(s, "the signature is not base64url")?;
    if header.get("alg").and_then(Value::as_str) != Some(alg) {
        return Err(JwsError::Header(format!("`alg` must be {alg}")));
    }
    if header.get("typ").and_then(Value::as_str) != Some(typ) {
        return Err(JwsError::Header(format!("`typ` must be {typ}")));
    }
    if header.contains_key("crit") {
        return Err(JwsError::Header(
            "`crit` extensions are not understood".into(),
        ));
    }
    Ok(Parts {
        header,
        payload,
        signing_input: &token[..h.len() + 1 + p.len()],
        signature,
    })
}

impl Parts<'_> {
    /// The header's `kid`, if it is a string.
    pub fn kid(&self) -> Option<&str> {
        self.header.get("kid").and_then(Value::as_str)
    }

    /// Checks an HS256 signature under `key` (constant time).
    pub fn verify_hs256(&self, key: &[u8]) -> Result<(), JwsError> {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
        ring::hmac::verify(&key, self.signing_input.as_bytes(), &self.signature)
            .map_err(|_| JwsError::BadSignature)
    }
}

/// An ES256 JWS that verified: who signed it, and what.
#[derive(Debug)]
pub struct Verified {
    /// The signing certificate's identity, serial and key fingerprint.
    pub signer: Officer,
    /// The signing certificate (DER), from `x5c`.
    pub certificate: Vec<u8>,
    /// The protected header.
    pub header: Map<String, Value>,
    /// The payload bytes.
    pub payload: Vec<u8>,
}

impl FederationTrust {
    /// Verifies an ES256 JWS of type `typ` whose `x5c` certificate is a `role` certificate
    /// of this federation with extended key usage `eku` (see [`crate::signing::CLIENT_AUTH`],
    /// [`crate::signing::CODE_SIGNING`]), valid at `at` and, when `revocation` is set, not
    /// revoked by a fresh CRL; then the signature.
    pub fn verify_es256(
        &self,
        token: &str,
        typ: &str,
        role: Role,
        eku: &'static [u8],
        at: UnixTime,
        revocation: bool,
    ) -> Result<Verified, JwsError> {
        let parts = parse(token, "ES256", typ)?;
        let certificate = match parts.header.get("x5c").and_then(Value::as_array) {
            Some(chain) if !chain.is_empty() => chain
                .first()
                .and_then(Value::as_str)
                .and_then(|c| STANDARD.decode(c).ok())
                .ok_or(JwsError::Malformed("`x5c` is not base64 DER"))?,
            _ => {
                return Err(JwsError::Header(
                    "`x5c` must carry the signing certificate".into(),
                ))
            }
        };
        let der = CertificateDer::from(certificate.as_slice());
        let (_, signer) = self.check_signer(&der, role, eku, at, revocation)?;
        public_key(&certificate)?
            .verify(parts.signing_input.as_bytes(), &parts.signature)
            .map_err(|_| JwsError::BadSignature)?;
        Ok(Verified {
            signer,
            certificate,
            header: parts.header,
            payload: parts.payload,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::{CertificateAuthority, IssueOptions};
    use crate::signing::{CLIENT_AUTH, CODE_SIGNING};
    use crate::tls::TrustFiles;

    fn federation() -> (tempfile::TempDir, FederationTrust, CertificateKey) {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::init(dir.path(), "changsha", false).unwrap();
        ca.issue(Role::Requester, "licensing", &IssueOptions::default())
            .unwrap();
        let trust = FederationTrust::load(&TrustFiles::in_dir(dir.path())).unwrap();
        let key = CertificateKey::load(
            &dir.path().join("licensing.crt"),
            &dir.path().join("licensing.key"),
        )
        .unwrap();
        (dir, trust, key)
    }

    #[test]
    fn an_es256_jws_verifies_against_the_ca_and_names_its_signer() {
        let (_dir, trust, key) = federation();
        let token = sign_es256(&key, "test+jwt", b"{\"a\":1}").unwrap();
        let v = trust
            .verify_es256(
                &token,
                "test+jwt",
                Role::Requester,
                CLIENT_AUTH,
                UnixTime::now(),
                true,
            )
            .unwrap();
        assert_eq!(v.payload, b"{\"a\":1}");
        assert_eq!(v.signer.identity.name, "licensing");
    }

    #[test]
    fn an_altered_payload_another_role_usage_or_type_is_refused() {
        let (_dir, trust, key) = federation();
        let token = sign_es256(&key, "test+jwt", b"{\"a\":1}").unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(b"{\"a\":2}"),
            parts[2]
        );
        let now = UnixTime::now();
        assert_eq!(
            trust
                .verify_es256(&forged, "test+jwt", Role::Requester, CLIENT_AUTH, now, true)
                .unwrap_err(),
            JwsError::BadSignature
        );
        assert!(matches!(
            trust
                .verify_es256(
                    &token,
                    "test+jwt",
                    Role::Coordinator,
                    CLIENT_AUTH,
                    now,
                    true
                )
                .unwrap_err(),
            JwsError::Signer(OfficerError::WrongRole { .. })
        ));
        assert!(matches!(
            trust
                .verify_es256(&token, "test+jwt", Role::Requester, CODE_SIGNING, now, true)
                .unwrap_err(),
            JwsError::Signer(OfficerError::Untrusted(_))
        ));
        assert!(matches!(
            trust
                .verify_es256(&token, "other+jwt", Role::Requester, CLIENT_AUTH, now, true)
                .unwrap_err(),
            JwsError::Header(_)
        ));
    }

    #[test]
    fn an_hs256_jws_verifies_only_under_its_key() {
        let token = sign_hs256(&[7; 32], "session-1", "proof+jwt", b"{}");
        let parts = parse(&token, "HS256", "proof+jwt").unwrap();
        assert_eq!(parts.kid(), Some("session-1"));
        parts.verify_hs256(&[7; 32]).unwrap();
        assert_eq!(
            parts.verify_hs256(&[8; 32]).unwrap_err(),
            JwsError::BadSignature
        );
        assert!(parse(&token, "ES256", "proof+jwt").is_err());
        assert!(parse("a.b", "HS256", "proof+jwt").is_err());
        assert!(parse(&"a".repeat(MAX_COMPACT_LEN + 1), "HS256", "proof+jwt").is_err());
    }
}
