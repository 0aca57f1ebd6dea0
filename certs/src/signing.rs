//! Security officers' signatures: signing with an officer's key, and verifying that a
//! signature was made by an officer certificate of this federation.
//!
//! Officer certificates carry the code-signing extended key usage; a signature is ECDSA
//! P-256 with SHA-256 (ASN.1 DER), made with the key `fedq certs issue --role officer`
//! wrote. What is signed is the caller's business (policy bundles sign a domain-separated
//! content hash); this module only binds bytes to an officer.

use std::path::Path;

use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use rustls::pki_types::{CertificateDer, UnixTime};
use zeroize::Zeroizing;

use crate::identity::{Identity, Role};
use crate::tls::{Credentials, FederationTrust, TlsError};

/// id-kp-codeSigning (1.3.6.1.5.5.7.3.3), DER value bytes: the EKU officer certificates carry.
pub const CODE_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03];
/// id-kp-clientAuth (1.3.6.1.5.5.7.3.2), DER value bytes: the EKU requester certificates carry.
pub const CLIENT_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];
/// id-kp-serverAuth (1.3.6.1.5.5.7.3.1), DER value bytes: the EKU node certificates carry.
pub const SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];

/// Why an officer's signature does not count.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OfficerError {
    /// The certificate could not be parsed or carries no fedq identity.
    #[error("the certificate is not a fedq certificate: {0}")]
    Malformed(String),
    /// Not issued by this federation's CA, expired, not yet valid, or without the
    /// code-signing key usage.
    #[error("the certificate is not valid for signing in this federation: {0}")]
    Untrusted(String),
    /// Issued by this CA, but not to an officer.
    #[error("the certificate is a {0} certificate, not an officer's")]
    NotOfficer(Role),
    /// Issued by this CA, but to another role than the one that may sign this.
    #[error("the certificate is a {found} certificate, not a {expected} certificate")]
    WrongRole {
        /// The certificate's role.
        found: Role,
        /// The role that may sign.
        expected: Role,
    },
    /// Another federation's identity.
    #[error("the certificate belongs to federation `{found}`, not `{expected}`")]
    OtherFederation {
        /// The certificate's federation.
        found: String,
        /// This federation.
        expected: String,
    },
    /// The CRL lists it.
    #[error("the officer's certificate (serial {0}) has been revoked")]
    Revoked(String),
    /// The signature does not verify with the certificate's key.
    #[error("the signature does not match the signed content and the officer's key")]
    BadSignature,
    /// The CRL is past its `nextUpdate` and grace period, so a revocation of this officer
    /// might be missing from it.
    #[error("cannot tell whether the officer's certificate is revoked: {0}")]
    StaleCrl(String),
}

/// An officer certificate that verified: who signed, and with which certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Officer {
    /// The officer's identity.
    pub identity: Identity,
    /// The certificate's serial, lower-case hex.
    pub serial: String,
    /// SHA-256 of the certificate's public key ([`key_fingerprint`]).
    pub key_sha256: String,
}

/// SHA-256 of a certificate's SubjectPublicKeyInfo, lower-case hex: names an officer's
/// *key*, whatever name or serial a certificate for it carries.
pub fn key_fingerprint(der: &[u8]) -> Result<String, OfficerError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| OfficerError::Malformed(e.to_string()))?;
    let digest = ring::digest::digest(&ring::digest::SHA256, cert.tbs_certificate.subject_pki.raw);
    Ok(digest.as_ref().iter().map(|b| format!("{b:02x}")).collect())
}

/// When a certificate became valid: verifying at this instant checks its chain and key
/// usage but not whether it has expired since (for re-checking a signature made earlier).
pub fn not_before(der: &[u8]) -> Result<UnixTime, OfficerError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| OfficerError::Malformed(e.to_string()))?;
    let secs = cert.validity().not_before.timestamp();
    Ok(UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        u64::try_from(secs).unwrap_or(0),
    )))
}

impl FederationTrust {
    /// Checks that `cert` is an officer certificate of this federation, valid at `at`
    /// (chain to the CA, validity period, code-signing usage) and, when `revocation` is
    /// set, not on the CRL (and the CRL not past its `nextUpdate` and grace period); then
    /// that `signature` is its key's signature over `message`.
    pub fn verify_officer_signature(
        &self,
        cert: &[u8],
        message: &[u8],
        signature: &[u8],
        at: UnixTime,
        revocation: bool,
    ) -> Result<Officer, OfficerError> {
        let der = CertificateDer::from(cert);
        let (end_entity, officer) =
            self.check_signer(&der, Role::Officer, CODE_SIGNING, at, revocation)?;
        end_entity
            .verify_signature(webpki::ring::ECDSA_P256_SHA256, message, signature)
            .map_err(|_| OfficerError::BadSignature)?;
        Ok(officer)
    }

    /// Checks that `cert` (DER) is a node's or the coordinator's certificate of this
    /// federation — chained to its CA, with the server-auth usage both carry, valid at
    /// `at` and, when `revocation` is set, not revoked by a fresh CRL — and returns its
    /// identity and public key (the uncompressed P-256 point). That key signs the
    /// process's audit checkpoints and its witness cosignatures (issue 18), so whoever
    /// checks either derives the key and the name from a certificate checked here, never
    /// from what a relay says.
    pub fn verify_process_certificate(
        &self,
        cert: &[u8],
        at: UnixTime,
        revocation: bool,
    ) -> Result<(Identity, Vec<u8>), OfficerError> {
        let der = CertificateDer::from(cert);
        let claimed = Identity::from_certificate_der(&der)
            .map_err(|e| OfficerError::Malformed(e.to_string()))?;
        let role = match claimed.role {
            Role::Node | Role::Coordinator => claimed.role,
            found => {
                return Err(OfficerError::WrongRole {
                    found,
                    expected: Role::Node,
                })
            }
        };
        let (_, checked) = self.check_signer(&der, role, SERVER_AUTH, at, revocation)?;
        let key = certificate_public_key(cert)
            .ok_or_else(|| OfficerError::Malformed("the certificate has no public key".into()))?;
        Ok((checked.identity, key))
    }

    /// Checks that `cert` is a `role` certificate of this federation with the extended key
    /// usage `eku` (DER value bytes), valid at `at`, and — when `revocation` is set — not
    /// revoked by a fresh CRL. Returns the parsed certificate, to verify a signature with.
    pub(crate) fn check_signer<'a>(
        &self,
        der: &'a CertificateDer<'a>,
        role: Role,
        eku: &'static [u8],
        at: UnixTime,
        revocation: bool,
    ) -> Result<(webpki::EndEntityCert<'a>, Officer), OfficerError> {
        let cert: &[u8] = der.as_ref();
        let identity = Identity::from_certificate_der(der)
            .map_err(|e| OfficerError::Malformed(e.to_string()))?;
        let end_entity = webpki::EndEntityCert::try_from(der)
            .map_err(|e| OfficerError::Malformed(e.to_string()))?;
        end_entity
            .verify_for_usage(
                &[webpki::ring::ECDSA_P256_SHA256],
                self.anchors(),
                &[],
                at,
                webpki::KeyUsage::required(eku),
                None,
                None,
            )
            .map_err(|e| OfficerError::Untrusted(e.to_string()))?;
        if identity.role != role {
            return Err(if role == Role::Officer {
                OfficerError::NotOfficer(identity.role)
            } else {
                OfficerError::WrongRole {
                    found: identity.role,
                    expected: role,
                }
            });
        }
        if identity.federation != self.federation() {
            return Err(OfficerError::OtherFederation {
                found: identity.federation,
                expected: self.federation().to_owned(),
            });
        }
        let serial = crate::tls::serial_hex(cert).map_err(OfficerError::Malformed)?;
        if revocation {
            if let Some(stale) = self.stale_crl(at) {
                return Err(OfficerError::StaleCrl(stale.to_string()));
            }
        }
        if revocation && self.is_revoked(&serial) {
            return Err(OfficerError::Revoked(serial));
        }
        let key_sha256 = key_fingerprint(cert)?;
        Ok((
            end_entity,
            Officer {
                identity,
                serial,
                key_sha256,
            },
        ))
    }
}

/// An officer's signing key, loaded with its certificate.
pub struct OfficerKey {
    key: EcdsaKeyPair,
    certificate: CertificateDer<'static>,
    identity: Identity,
}

impl std::fmt::Debug for OfficerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OfficerKey")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl OfficerKey {
    /// Loads an officer's certificate and key; refuses any other role's certificate, and a
    /// key that is not the certificate's.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, TlsError> {
        let creds = Credentials::load(cert_path, key_path)?;
        if creds.identity().role != Role::Officer {
            return Err(TlsError::Invalid {
                path: cert_path.display().to_string(),
                why: format!(
                    "a {} certificate cannot sign policies; use an officer certificate (`fedq certs issue --role officer NAME`)",
                    creds.identity().role
                ),
            });
        }
        let (chain, key) = creds.chain_and_key();
        let pkcs8 = Zeroizing::new(key.secret_der().to_vec());
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_ASN1_SIGNING,
            &pkcs8,
            &SystemRandom::new(),
        )
        .map_err(|e| TlsError::Invalid {
            path: key_path.display().to_string(),
            why: format!("not an ECDSA P-256 key in PKCS#8: {e}"),
        })?;
        let certificate = chain.into_iter().next().ok_or_else(|| TlsError::Invalid {
            path: cert_path.display().to_string(),
            why: "no PEM certificate in file".into(),
        })?;
        let this = Self {
            key,
            certificate,
            identity: creds.identity().clone(),
        };
        // A key that is not the certificate's would sign something nobody can verify.
        let probe = this.sign(b"fedq officer key check")?;
        let end_entity =
            webpki::EndEntityCert::try_from(&this.certificate).map_err(|e| TlsError::Invalid {
                path: cert_path.display().to_string(),
                why: e.to_string(),
            })?;
        end_entity
            .verify_signature(
                webpki::ring::ECDSA_P256_SHA256,
                b"fedq officer key check",
                &probe,
            )
            .map_err(|_| TlsError::Invalid {
                path: key_path.display().to_string(),
                why: format!("this key does not belong to `{}`", cert_path.display()),
            })?;
        Ok(this)
    }

    /// Who signs.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The officer's certificate (DER).
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.certificate
    }

    /// Signs `message` (ECDSA P-256, SHA-256, ASN.1 DER signature).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, TlsError> {
        self.key
            .sign(&SystemRandom::new(), message)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| TlsError::Invalid {
                path: "officer key".into(),
                why: "signing failed".into(),
            })
    }
}

/// The public key of a certificate (DER): for a federation certificate, the uncompressed
/// P-256 point. `None` if the certificate does not parse.
pub fn certificate_public_key(der: &[u8]) -> Option<Vec<u8>> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(
        cert.tbs_certificate
            .subject_pki
            .subject_public_key
            .data
            .to_vec(),
    )
}
