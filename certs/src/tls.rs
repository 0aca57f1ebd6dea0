//! rustls configurations for the federation, built only from the files `fedq certs` writes.
//!
//! Every configuration here is TLS 1.3 only, uses the ring provider, requires a client
//! certificate, checks it against the federation CA and its CRL, and then checks the peer's
//! *role* from its `fedq://` identity: a node accepts only coordinators; a coordinator talks
//! only to nodes; the requester API accepts only requesters. 0-RTT is never enabled: a
//! replayed query would be a second audited query.
//!
//! Each refusal is classified into an [`AuthRefusal`] and recorded in a [`RefusalLog`], so
//! an operator (and a test) sees *why* a peer was turned away, not just that it was.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName, UnixTime,
};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme,
};
use zeroize::Zeroizing;

use crate::identity::{Identity, IdentityError, Role};

/// Errors loading credentials or building a TLS configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read `{path}`: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file does not hold what it should.
    #[error("`{path}` is not usable: {why}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// Our own certificate does not carry a usable identity.
    #[error("own certificate `{path}`: {source}")]
    OwnIdentity {
        /// The certificate file.
        path: String,
        /// Why.
        #[source]
        source: IdentityError,
    },
    /// Our own certificate has the wrong role for what we are starting.
    #[error("`{path}` is a {found} certificate, but this process needs a {expected} certificate")]
    OwnRole {
        /// The certificate file.
        path: String,
        /// Its role.
        found: Role,
        /// The role required.
        expected: Role,
    },
    /// Our own certificate belongs to another federation than the CA.
    #[error("`{path}` belongs to federation `{found}`, but the CA is federation `{expected}`")]
    OwnFederation {
        /// The certificate file.
        path: String,
        /// Its federation.
        found: String,
        /// The CA's.
        expected: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration refused: {0}")]
    Config(#[from] rustls::Error),
    /// The verifier could not be built.
    #[error("certificate verifier: {0}")]
    Verifier(#[source] rustls::server::VerifierBuilderError),
    /// A private key file that others may read (the message names it and the fix).
    #[error(transparent)]
    KeyExposed(#[from] crate::fsutil::KeyFileError),
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn invalid(path: &Path, why: impl ToString) -> TlsError {
    TlsError::Invalid {
        path: path.display().to_string(),
        why: why.to_string(),
    }
}

/// Parses every certificate in a PEM buffer.
pub fn read_certificates(
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, rustls::pki_types::pem::Error> {
    CertificateDer::pem_slice_iter(pem).collect()
}

/// When a certificate is valid: `notBefore` and `notAfter`, seconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validity {
    /// `notBefore`.
    pub not_before: i64,
    /// `notAfter`.
    pub not_after: i64,
}

/// A DER certificate x509-parser could not read.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadCertificate(#[source] x509_parser::nom::Err<x509_parser::error::X509Error>);

/// Why [`certificate_file_validity`] could not read a certificate file's validity.
#[derive(Debug, thiserror::Error)]
pub enum ValidityError {
    /// The file could not be read.
    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not PEM.
    #[error("`{}`: {source}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// The file holds no certificate.
    #[error("`{}`: no PEM certificate in file", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// Its first certificate cannot be read.
    #[error("`{}`: {source}", path.display())]
    Certificate {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: BadCertificate,
    },
}

/// The validity of a DER certificate.
pub fn certificate_validity(der: &[u8]) -> Result<Validity, BadCertificate> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(BadCertificate)?;
    let validity = cert.validity();
    Ok(Validity {
        not_before: validity.not_before.timestamp(),
        not_after: validity.not_after.timestamp(),
    })
}

/// The validity of the first certificate of a PEM file (a holder's `NAME.crt`).
pub fn certificate_file_validity(path: &Path) -> Result<Validity, ValidityError> {
    let path_buf = || path.to_path_buf();
    let pem = fs::read(path).map_err(|source| ValidityError::Read {
        path: path_buf(),
        source,
    })?;
    let chain = read_certificates(&pem).map_err(|source| ValidityError::Pem {
        path: path_buf(),
        source,
    })?;
    let leaf = chain
        .first()
        .ok_or_else(|| ValidityError::Empty { path: path_buf() })?;
    certificate_validity(leaf).map_err(|source| ValidityError::Certificate {
        path: path_buf(),
        source,
    })
}

/// The ring crypto provider, the only one fedq uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A holder's certificate chain and private key, with the identity the certificate carries.
pub struct Credentials {
    chain: Vec<CertificateDer<'static>>,
    key: Zeroizing<PrivateKeyDer<'static>>,
    identity: Identity,
    serial: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("identity", &self.identity)
            .field("serial", &self.serial)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Loads `NAME.crt` and `NAME.key`.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, TlsError> {
        let chain = read_certificates(&read(cert_path)?).map_err(|e| invalid(cert_path, e))?;
        let leaf = chain
            .first()
            .ok_or_else(|| invalid(cert_path, "no PEM certificate in file"))?;
        let identity =
            Identity::from_certificate_der(leaf).map_err(|source| TlsError::OwnIdentity {
                path: cert_path.display().to_string(),
                source,
            })?;
        let serial = serial_hex(leaf).map_err(|e| invalid(cert_path, e))?;
        // As ssh does: a key others can read is not used, so the mistake is fixed rather
        // than lived with.
        crate::fsutil::check_private_key(key_path)?;
        let key_pem = Zeroizing::new(read(key_path)?);
        let key = Zeroizing::new(
            PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| invalid(key_path, e))?,
        );
        Ok(Self {
            chain,
            key,
            identity,
            serial,
        })
    }

    /// Loads `DIR/NAME.crt` and `DIR/NAME.key`.
    pub fn load_named(dir: &Path, name: &str) -> Result<Self, TlsError> {
        Self::load(
            &crate::layout::cert_path(dir, name),
            &crate::layout::key_path(dir, name),
        )
    }

    /// The identity our certificate carries.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Our certificate's serial number, lower-case hex.
    pub fn serial(&self) -> &str {
        &self.serial
    }

    /// Refuses to start a process with a certificate of the wrong role or federation.
    pub fn require(
        &self,
        role: Role,
        trust: &FederationTrust,
        path: &Path,
    ) -> Result<(), TlsError> {
        if self.identity.role != role {
            return Err(TlsError::OwnRole {
                path: path.display().to_string(),
                found: self.identity.role,
                expected: role,
            });
        }
        if self.identity.federation != trust.federation {
            return Err(TlsError::OwnFederation {
                path: path.display().to_string(),
                found: self.identity.federation.clone(),
                expected: trust.federation.clone(),
            });
        }
        Ok(())
    }

    /// A copy of the chain and key, to hand to a TLS configuration (which takes ownership).
    pub fn chain_and_key(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        (self.chain.clone(), self.key.clone_key())
    }
}

pub(crate) fn serial_hex(der: &[u8]) -> Result<String, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
    Ok(cert
        .raw_serial()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// What a peer's certificate is, once the handshake has accepted it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerCertificate {
    /// The identity it carries.
    pub identity: Identity,
    /// Its serial number, lower-case hex (matches CRL entries).
    pub serial: String,
}

impl PeerCertificate {
    /// Reads the identity and serial of the first certificate of a verified chain.
    pub fn from_chain(chain: &[CertificateDer<'_>]) -> Result<Self, IdentityError> {
        let leaf = chain.first().ok_or(IdentityError::IdentityCount(0))?;
        Ok(Self {
            identity: Identity::from_certificate_der(leaf)?,
            serial: serial_hex(leaf).map_err(IdentityError::BadCertificate)?,
        })
    }
}

/// The federation's trust: its CA and its current CRL.
#[derive(Clone)]
pub struct FederationTrust {
    federation: String,
    ca: CertificateDer<'static>,
    roots: Arc<RootCertStore>,
    crls: Vec<CertificateRevocationListDer<'static>>,
    revoked: HashSet<String>,
    crl: CrlInfo,
    crl_file: PathBuf,
    crl_grace: Duration,
}

/// What a CRL says about itself: which one it is and how long it claims to be current.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrlInfo {
    /// The CRL number extension (`fedq certs` raises it with every CRL it signs).
    pub number: Option<x509_parser::num_bigint::BigUint>,
    /// `thisUpdate`, seconds since the Unix epoch.
    pub this_update: i64,
    /// `nextUpdate`, seconds since the Unix epoch, if the CRL states one.
    pub next_update: Option<i64>,
}

impl CrlInfo {
    fn number_text(&self) -> String {
        self.number
            .as_ref()
            .map_or_else(|| "none".to_owned(), ToString::to_string)
    }
}

/// A CRL refused because it is older than the one in force (put back from a backup or by
/// someone who wants a revoked certificate to work again).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("refused the CRL `{file}`: it is older than the CRL in force (CRL number {offered}, thisUpdate {offered_at}; in force: number {in_force}, thisUpdate {in_force_at}{kept}); the CRL in force stays; install the newest CRL from the CA (`fedq certs crl`)")]
pub struct CrlRollback {
    /// Where the CRL in force is remembered (`, remembered in `PATH``), or empty.
    pub kept: String,
    /// The CRL file.
    pub file: String,
    /// The refused CRL's number.
    pub offered: String,
    /// Its thisUpdate (RFC 3339).
    pub offered_at: String,
    /// The number of the CRL in force.
    pub in_force: String,
    /// Its thisUpdate (RFC 3339).
    pub in_force_at: String,
}

fn rfc3339_secs(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| secs.to_string())
}

/// A CRL past its `nextUpdate` and grace period: revocations issued since may be missing,
/// so new connections and officers' signatures are refused until it is refreshed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the CRL `{file}` is out of date (its nextUpdate {next_update} has passed, grace {grace_secs} s), so revocations may be missing; refresh it at the CA with `fedq certs crl --dir CA_DIR` and install the new crl.pem here")]
pub struct StaleCrl {
    /// The CRL file.
    pub file: String,
    /// Its nextUpdate (RFC 3339).
    pub next_update: String,
    /// The grace period in force, seconds.
    pub grace_secs: u64,
}

/// The longest grace period a config may give a CRL past its `nextUpdate`.
pub const MAX_CRL_GRACE: Duration = Duration::from_secs(30 * 24 * 3600);

impl fmt::Debug for FederationTrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FederationTrust")
            .field("federation", &self.federation)
            .field("revoked", &self.revoked.len())
            .finish_non_exhaustive()
    }
}

/// Where a process finds the federation's CA certificate and CRL, and how long it keeps
/// using a CRL past its `nextUpdate`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustFiles {
    /// The CA certificate (`ca.crt`).
    pub ca: PathBuf,
    /// The CRL (`crl.pem`).
    pub crl: PathBuf,
    /// How long past the CRL's `nextUpdate` new connections and officers' signatures are
    /// still accepted under it (the `[tls] crl_grace_secs` config key; default 0: a stale
    /// CRL stops them at once).
    pub crl_grace: Duration,
    /// Where this process remembers the newest CRL it has accepted (a copy of it, owner-
    /// only, written atomically), so that a restart on an older `crl.pem` put back does not
    /// forget the revocations issued since: that CRL is refused and the remembered one
    /// stays in force. Nodes and coordinators keep it in their state directory
    /// ([`remembered_crl_in`]); `None` (one-shot tools, tests) remembers it in memory only.
    pub crl_state: Option<PathBuf>,
}

/// The file, in a process's state directory, where it remembers the newest CRL it has
/// accepted.
pub const REMEMBERED_CRL_FILE: &str = "crl-in-force.pem";

/// `STATE_DIR/crl-in-force.pem`.
pub fn remembered_crl_in(state_dir: &Path) -> PathBuf {
    state_dir.join(REMEMBERED_CRL_FILE)
}

impl TrustFiles {
    /// `DIR/ca.crt` and `DIR/crl.pem`, no grace, the CRL in force remembered in memory
    /// only.
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            ca: crate::layout::ca_cert_path(dir),
            crl: crate::layout::crl_path(dir),
            crl_grace: Duration::ZERO,
            crl_state: None,
        }
    }

    /// The same files, with the newest CRL accepted remembered in `state` (see
    /// [`Self::crl_state`]).
    pub fn remembering_crl_in(mut self, state: PathBuf) -> Self {
        self.crl_state = Some(state);
        self
    }
}

/// A CRL file's contents, checked: every CRL in it signed by the CA.
struct ParsedCrl {
    pem: Vec<u8>,
    crls: Vec<CertificateRevocationListDer<'static>>,
    revoked: HashSet<String>,
    info: CrlInfo,
}

enum CrlParseError {
    Malformed(String),
    NotSignedByCa,
}

impl CrlInfo {
    /// Whether this CRL is older than `other`: a lower CRL number, or an earlier
    /// `thisUpdate`.
    fn is_older_than(&self, other: &CrlInfo) -> bool {
        (match (&self.number, &other.number) {
            (Some(new), Some(old)) => new < old,
            _ => false,
        }) || self.this_update < other.this_update
    }
}

impl ParsedCrl {
    fn parse(pem: Vec<u8>, ca_key: &[u8]) -> Result<Self, CrlParseError> {
        let malformed = |e: &dyn fmt::Display| CrlParseError::Malformed(e.to_string());
        let crls = CertificateRevocationListDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| malformed(&e))?;
        let mut revoked = HashSet::new();
        let mut info: Option<CrlInfo> = None;
        for crl in &crls {
            let (_, parsed) = x509_parser::parse_x509_crl(crl).map_err(|e| malformed(&e))?;
            // The CRL's number and dates decide whether a later CRL is accepted, so they
            // are believed only from a CRL this CA signed (webpki checks that again for
            // each certificate; a forged CRL with a huge number would otherwise lock
            // every genuine one out).
            let signed_by_ca = parsed.signature_algorithm.algorithm
                == x509_parser::oid_registry::OID_SIG_ECDSA_WITH_SHA256
                && ring::signature::UnparsedPublicKey::new(
                    &ring::signature::ECDSA_P256_SHA256_ASN1,
                    ca_key,
                )
                .verify(parsed.tbs_cert_list.as_ref(), &parsed.signature_value.data)
                .is_ok();
            if !signed_by_ca {
                return Err(CrlParseError::NotSignedByCa);
            }
            let this = CrlInfo {
                number: parsed.crl_number().cloned(),
                this_update: parsed.last_update().timestamp(),
                next_update: parsed.next_update().map(|t| t.timestamp()),
            };
            // With several CRLs in one file, the newest speaks for the file; the earliest
            // nextUpdate decides when it goes stale.
            info = Some(match info {
                None => this,
                Some(prev) => CrlInfo {
                    number: prev.number.max(this.number),
                    this_update: prev.this_update.max(this.this_update),
                    next_update: match (prev.next_update, this.next_update) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    },
                },
            });
            for entry in parsed.iter_revoked_certificates() {
                revoked.insert(
                    entry
                        .raw_serial()
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect(),
                );
            }
        }
        let info = info.ok_or_else(|| CrlParseError::Malformed("no PEM CRL in file".into()))?;
        Ok(Self {
            pem,
            crls,
            revoked,
            info,
        })
    }
}

/// One read-compare-write of a remembered CRL at a time in this process, so two loaders
/// (the QUIC and HTTPS sides, the policy slot) never write an older CRL over a newer one.
static REMEMBER: Mutex<()> = Mutex::new(());

/// The last rollback logged for each remembered-CRL file: every loader of the process sees
/// the same refused `crl.pem`, and the operator reads it once.
static LOGGED_ROLLBACKS: Mutex<Vec<(PathBuf, String)>> = Mutex::new(Vec::new());

/// Logs `rollback` unless it is the one last logged for `state` (`None`: no rollback now,
/// so the next one is logged again).
fn log_rollback_once(state: &Path, rollback: Option<&CrlRollback>) {
    let mut logged = match LOGGED_ROLLBACKS.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    let text = rollback.map(ToString::to_string);
    let last = logged.iter_mut().find(|(p, _)| p == state);
    match (last, text) {
        (Some((_, seen)), Some(text)) if *seen == text => {}
        (Some(entry), Some(text)) => {
            tracing::error!(error = %text, "CRL rollback refused");
            entry.1 = text;
        }
        (None, Some(text)) => {
            tracing::error!(error = %text, "CRL rollback refused");
            logged.push((state.to_owned(), text));
        }
        (Some(_), None) => logged.retain(|(p, _)| p != state),
        (None, None) => {}
    }
}

/// The CRL to put in force: `on_disk` (the `crl.pem` just read), unless the CRL remembered
/// in `state` is newer — then that one, and the refusal is logged (once). A newer `on_disk`
/// is remembered (written to a temporary file, flushed, renamed over `state`, owner-only)
/// before it goes into force. A remembered file that cannot be read or parsed stops the
/// load: the revocations it holds would otherwise be lost without a word.
fn remember_newest(
    state: &Path,
    crl_file: &Path,
    on_disk: ParsedCrl,
    ca_key: &[u8],
) -> Result<ParsedCrl, TlsError> {
    let _one_at_a_time = match REMEMBER.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    let unusable = |why: String| {
        TlsError::Invalid {
        path: state.display().to_string(),
        why: format!(
            "{why}; this file keeps the newest CRL this process accepted across restarts: restore it from a backup, or, if it is lost, delete it and install the newest CRL from the CA (`fedq certs crl`) as `{}`",
            crl_file.display()
        ),
    }
    };
    let remembered = match fs::read(state) {
        Ok(bytes) => match ParsedCrl::parse(bytes, ca_key) {
            Ok(parsed) => Some(parsed),
            // The federation's CA was replaced: the old CA's CRLs are another sequence.
            Err(CrlParseError::NotSignedByCa) => {
                tracing::warn!(
                    file = %state.display(),
                    "the remembered CRL is not signed by this federation's CA (was the CA replaced?); remembering `{}` instead",
                    crl_file.display()
                );
                None
            }
            Err(CrlParseError::Malformed(why)) => {
                return Err(unusable(format!(
                    "the remembered CRL is unreadable ({why})"
                )))
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(unusable(format!("cannot read the remembered CRL: {e}"))),
    };
    match remembered {
        Some(kept) if on_disk.info.is_older_than(&kept.info) => {
            let rollback = CrlRollback {
                kept: format!(", remembered in `{}`", state.display()),
                file: crl_file.display().to_string(),
                offered: on_disk.info.number_text(),
                offered_at: rfc3339_secs(on_disk.info.this_update),
                in_force: kept.info.number_text(),
                in_force_at: rfc3339_secs(kept.info.this_update),
            };
            log_rollback_once(state, Some(&rollback));
            Ok(kept)
        }
        Some(kept) if kept.pem == on_disk.pem => {
            log_rollback_once(state, None);
            Ok(on_disk)
        }
        _ => {
            if let Some(dir) = state.parent() {
                crate::fsutil::create_private_dir(dir)
                    .map_err(|e| unusable(format!("cannot create its directory: {e}")))?;
            }
            crate::fsutil::write_atomic(state, &on_disk.pem, crate::fsutil::PRIVATE_MODE)
                .map_err(|e| unusable(format!("cannot write it: {e}")))?;
            log_rollback_once(state, None);
            Ok(on_disk)
        }
    }
}

impl FederationTrust {
    /// Loads the CA certificate and the CRL. A missing or unreadable CRL is an error, not
    /// an empty list: a process that cannot see revocations must not start.
    pub fn load(files: &TrustFiles) -> Result<Self, TlsError> {
        let ca_pem = read(&files.ca)?;
        let ca_certs = read_certificates(&ca_pem).map_err(|e| invalid(&files.ca, e))?;
        let ca = ca_certs
            .first()
            .ok_or_else(|| invalid(&files.ca, "no PEM certificate in file"))?;
        let ca_identity = Identity::from_certificate_der(ca).map_err(|e| invalid(&files.ca, e))?;
        if ca_identity.role != Role::Ca {
            return Err(invalid(&files.ca, "not a fedq federation CA certificate"));
        }
        let mut roots = RootCertStore::empty();
        roots.add(ca.clone()).map_err(|e| invalid(&files.ca, e))?;

        let ca_key = {
            let (_, ca_parsed) =
                x509_parser::parse_x509_certificate(ca).map_err(|e| invalid(&files.ca, e))?;
            ca_parsed
                .tbs_certificate
                .subject_pki
                .subject_public_key
                .data
                .to_vec()
        };
        let crl_pem = read(&files.crl)?;
        let on_disk = ParsedCrl::parse(crl_pem, &ca_key).map_err(|e| match e {
            CrlParseError::Malformed(why) => invalid(&files.crl, why),
            CrlParseError::NotSignedByCa => invalid(
                &files.crl,
                "the CRL is not signed by this federation's CA; install the one `fedq certs crl` or `fedq certs revoke` wrote",
            ),
        })?;
        let in_force = match &files.crl_state {
            Some(state) => remember_newest(state, &files.crl, on_disk, &ca_key)?,
            None => on_disk,
        };
        Ok(Self {
            federation: ca_identity.federation,
            ca: ca.clone(),
            roots: Arc::new(roots),
            crls: in_force.crls,
            revoked: in_force.revoked,
            crl: in_force.info,
            crl_file: files.crl.clone(),
            crl_grace: files.crl_grace,
        })
    }

    /// What the CRL in force says about itself.
    pub fn crl_info(&self) -> &CrlInfo {
        &self.crl
    }

    /// `self`, just loaded from disk, as it may go into force while `in_force` is in force:
    /// a CRL from the same CA that is older than the one in force (a lower CRL number, or
    /// an earlier `thisUpdate`) is refused — the CRL in force is kept in the result, and
    /// the refusal returned for the caller to log. The CA, certificate and grace period
    /// are always `self`'s.
    pub fn keep_newest_crl(mut self, in_force: &FederationTrust) -> (Self, Option<CrlRollback>) {
        if self.ca != in_force.ca {
            // Another CA: its CRLs are another sequence.
            return (self, None);
        }
        if !self.crl.is_older_than(&in_force.crl) {
            return (self, None);
        }
        let rollback = CrlRollback {
            kept: String::new(),
            file: self.crl_file.display().to_string(),
            offered: self.crl.number_text(),
            offered_at: rfc3339_secs(self.crl.this_update),
            in_force: in_force.crl.number_text(),
            in_force_at: rfc3339_secs(in_force.crl.this_update),
        };
        self.crls = in_force.crls.clone();
        self.revoked = in_force.revoked.clone();
        self.crl = in_force.crl.clone();
        (self, Some(rollback))
    }

    /// Why the CRL in force may no longer be relied on at `now`: its `nextUpdate` plus the
    /// grace period has passed. `None` while it is current (or states no `nextUpdate`).
    pub fn stale_crl(&self, now: UnixTime) -> Option<StaleCrl> {
        let next = self.crl.next_update?;
        let grace = i64::try_from(self.crl_grace.as_secs()).unwrap_or(i64::MAX);
        let now_secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        (now_secs > next.saturating_add(grace)).then(|| StaleCrl {
            file: self.crl_file.display().to_string(),
            next_update: rfc3339_secs(next),
            grace_secs: self.crl_grace.as_secs(),
        })
    }

    /// The federation's name, from the CA certificate.
    pub fn federation(&self) -> &str {
        &self.federation
    }

    /// Whether the CRL lists this serial.
    pub fn is_revoked(&self, serial: &str) -> bool {
        self.revoked.contains(serial)
    }

    /// The CA as trust anchors, for verifications outside TLS (officers' signatures).
    pub(crate) fn anchors(&self) -> &[rustls_pki_types::TrustAnchor<'static>] {
        &self.roots.roots
    }

    fn client_verifier(
        &self,
        accept: &[Role],
        refusals: &RefusalLog,
    ) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
        let inner = WebPkiClientVerifier::builder_with_provider(self.roots.clone(), provider())
            .with_crls(self.crls.clone())
            .only_check_end_entity_revocation()
            .build()
            .map_err(TlsError::Verifier)?;
        Ok(Arc::new(RoleCheckingClientVerifier {
            inner,
            check: self.peer_check(accept, refusals),
        }))
    }

    fn server_verifier(
        &self,
        accept: &[Role],
        refusals: &RefusalLog,
    ) -> Result<Arc<dyn ServerCertVerifier>, TlsError> {
        let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
            self.roots.clone(),
            provider(),
        )
        .with_crls(self.crls.clone())
        .only_check_end_entity_revocation()
        .build()
        .map_err(TlsError::Verifier)?;
        Ok(Arc::new(RoleCheckingServerVerifier {
            inner,
            check: self.peer_check(accept, refusals),
        }))
    }

    fn peer_check(&self, accept: &[Role], refusals: &RefusalLog) -> PeerCheck {
        PeerCheck {
            federation: self.federation.clone(),
            accept: accept.to_vec(),
            refusals: refusals.clone(),
            freshness: Arc::new(self.clone()),
        }
    }
}

/// A TLS 1.3 server configuration that requires a client certificate of one of `accept`.
pub fn server_config(
    creds: &Credentials,
    trust: &FederationTrust,
    accept: &[Role],
    alpn: &[&[u8]],
    refusals: &RefusalLog,
) -> Result<rustls::ServerConfig, TlsError> {
    let (chain, key) = creds.chain_and_key();
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(trust.client_verifier(accept, refusals)?)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config.max_early_data_size = 0;
    config.send_tls13_tickets = 0;
    Ok(config)
}

/// A TLS 1.3 client configuration that presents our certificate and accepts only a server
/// of role `server_role` in our federation.
pub fn client_config(
    creds: &Credentials,
    trust: &FederationTrust,
    server_role: Role,
    alpn: &[&[u8]],
    refusals: &RefusalLog,
) -> Result<rustls::ClientConfig, TlsError> {
    let (chain, key) = creds.chain_and_key();
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(trust.server_verifier(&[server_role], refusals)?)
        .with_client_auth_cert(chain, key)?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config.enable_early_data = false;
    Ok(config)
}

/// Why a peer was refused, as precisely as the refusing side knows it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthRefusal {
    /// The peer presented no certificate.
    #[error("no certificate presented")]
    NoCertificate,
    /// The certificate was not issued by this federation's CA.
    #[error("certificate not issued by this federation's CA")]
    UnknownIssuer,
    /// The certificate's validity has ended.
    #[error("certificate expired")]
    Expired,
    /// The certificate's validity has not started.
    #[error("certificate not yet valid")]
    NotYetValid,
    /// The peer reported an expired or not-yet-valid certificate (TLS does not say which).
    #[error("certificate expired or not yet valid")]
    NotCurrentlyValid,
    /// The certificate is on the CRL.
    #[error("certificate revoked")]
    Revoked,
    /// The certificate's extended key usage does not allow this use.
    #[error("certificate key usage does not allow this use")]
    WrongKeyUsage,
    /// The identity's role is not accepted here.
    #[error("role `{found}` not accepted here (accepts {accepted})")]
    WrongRole {
        /// The role presented.
        found: Role,
        /// The roles accepted, comma-separated.
        accepted: String,
    },
    /// The peer refused our role (it said "access denied").
    #[error("the peer does not accept this certificate's role")]
    RoleNotAccepted,
    /// The identity belongs to another federation.
    #[error("certificate belongs to federation `{0}`")]
    OtherFederation(String),
    /// The certificate carries no usable fedq identity.
    #[error("certificate carries no usable fedq identity: {0}")]
    NoIdentity(String),
    /// The certificate's signature does not verify.
    #[error("certificate signature invalid")]
    BadSignature,
    /// Our own CRL is past its `nextUpdate` and grace period: no new peer is accepted
    /// until it is refreshed.
    #[error("{0}")]
    StaleCrl(StaleCrl),
    /// Anything else wrong with the certificate.
    #[error("certificate refused: {0}")]
    BadCertificate(String),
}

impl AuthRefusal {
    /// Classifies a rustls error raised while verifying a peer.
    pub fn from_tls_error(error: &rustls::Error) -> Self {
        match error {
            rustls::Error::NoCertificatesPresented => Self::NoCertificate,
            rustls::Error::InvalidCertificate(e) => match e {
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    Self::Expired
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    Self::NotYetValid
                }
                CertificateError::Revoked => Self::Revoked,
                CertificateError::UnknownIssuer => Self::UnknownIssuer,
                CertificateError::InvalidPurpose
                | CertificateError::InvalidPurposeContext { .. } => Self::WrongKeyUsage,
                // While building the chain, a bad signature means the certificate names our
                // CA as issuer but was not signed with our CA's key: another CA.
                #[allow(deprecated)]
                CertificateError::BadSignature => Self::UnknownIssuer,
                CertificateError::ApplicationVerificationFailure => Self::RoleNotAccepted,
                other => Self::BadCertificate(other.to_string()),
            },
            other => Self::BadCertificate(other.to_string()),
        }
    }

    /// Classifies the TLS alert a peer sent when it refused us, if it is about our
    /// certificate.
    pub fn from_alert(alert: u8) -> Option<Self> {
        use rustls::AlertDescription as A;
        let alert = A::from(alert);
        Some(match alert {
            A::CertificateRequired => Self::NoCertificate,
            A::UnknownCA => Self::UnknownIssuer,
            A::CertificateExpired => Self::NotCurrentlyValid,
            A::CertificateRevoked => Self::Revoked,
            A::UnsupportedCertificate => Self::WrongKeyUsage,
            A::AccessDenied => Self::RoleNotAccepted,
            A::DecryptError => Self::BadSignature,
            A::BadCertificate | A::CertificateUnknown => Self::BadCertificate(format!("{alert:?}")),
            _ => return None,
        })
    }
}

/// One refused handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The identity the peer claimed, if its certificate could be read.
    pub claimed: Option<String>,
    /// Why it was refused.
    pub reason: AuthRefusal,
}

#[derive(Default)]
struct RefusalInner {
    entries: Mutex<VecDeque<Refusal>>,
    changed: Condvar,
}

/// The last refusals a process made, newest last (bounded).
#[derive(Clone, Default)]
pub struct RefusalLog(Arc<RefusalInner>);

impl fmt::Debug for RefusalLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RefusalLog")
            .field(&self.snapshot().len())
            .finish()
    }
}

const REFUSAL_LOG_LEN: usize = 256;

impl RefusalLog {
    /// Records a refusal (and logs it: identities are organisations, never persons).
    pub fn record(&self, refusal: Refusal) {
        tracing::warn!(
            claimed = refusal.claimed.as_deref().unwrap_or("-"),
            reason = %refusal.reason,
            "peer refused"
        );
        if let Ok(mut entries) = self.0.entries.lock() {
            if entries.len() == REFUSAL_LOG_LEN {
                entries.pop_front();
            }
            entries.push_back(refusal);
        }
        self.0.changed.notify_all();
    }

    /// A copy of the recorded refusals.
    pub fn snapshot(&self) -> Vec<Refusal> {
        self.0
            .entries
            .lock()
            .map(|e| e.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Waits up to `timeout` for a refusal matching `pred` (blocking; for tests and tools).
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&Refusal) -> bool) -> Option<Refusal> {
        let deadline = Instant::now() + timeout;
        let mut entries = self.0.entries.lock().ok()?;
        loop {
            if let Some(found) = entries.iter().find(|r| pred(r)) {
                return Some(found.clone());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            entries = self.0.changed.wait_timeout(entries, left).ok()?.0;
        }
    }
}

#[derive(Debug)]
struct PeerCheck {
    federation: String,
    accept: Vec<Role>,
    refusals: RefusalLog,
    /// The trust the verifier was built from, for the CRL's freshness at each handshake.
    freshness: Arc<FederationTrust>,
}

impl PeerCheck {
    fn claimed(end_entity: &CertificateDer<'_>) -> Option<String> {
        Identity::from_certificate_der(end_entity)
            .ok()
            .map(|i| i.to_uri())
    }

    /// After the chain is verified: is this identity one we accept?
    fn check_identity(&self, end_entity: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        let reason = match Identity::from_certificate_der(end_entity) {
            Err(e) => AuthRefusal::NoIdentity(e.to_string()),
            Ok(id) if id.federation != self.federation => {
                AuthRefusal::OtherFederation(id.federation)
            }
            Ok(id) if !self.accept.contains(&id.role) => AuthRefusal::WrongRole {
                found: id.role,
                accepted: self
                    .accept
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            },
            Ok(_) => return Ok(()),
        };
        self.refusals.record(Refusal {
            claimed: Self::claimed(end_entity),
            reason,
        });
        Err(rustls::Error::InvalidCertificate(
            CertificateError::ApplicationVerificationFailure,
        ))
    }

    fn verified<T>(
        &self,
        end_entity: &CertificateDer<'_>,
        now: UnixTime,
        result: Result<T, rustls::Error>,
    ) -> Result<T, rustls::Error> {
        // A stale CRL may be missing revocations: fail closed for every new peer, whatever
        // its certificate, and say why (the refusal is logged).
        if let Some(stale) = self.freshness.stale_crl(now) {
            self.refusals.record(Refusal {
                claimed: Self::claimed(end_entity),
                reason: AuthRefusal::StaleCrl(stale),
            });
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::ExpiredRevocationList,
            ));
        }
        match result {
            Ok(ok) => {
                self.check_identity(end_entity)?;
                Ok(ok)
            }
            Err(e) => {
                self.refusals.record(Refusal {
                    claimed: Self::claimed(end_entity),
                    reason: AuthRefusal::from_tls_error(&e),
                });
                Err(e)
            }
        }
    }
}

#[derive(Debug)]
struct RoleCheckingClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    check: PeerCheck,
}

impl ClientCertVerifier for RoleCheckingClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let result = self
            .inner
            .verify_client_cert(end_entity, intermediates, now);
        self.check.verified(end_entity, now, result)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[derive(Debug)]
struct RoleCheckingServerVerifier {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    check: PeerCheck,
}

impl ServerCertVerifier for RoleCheckingServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let result = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        self.check.verified(end_entity, now, result)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

impl Credentials {
    /// A 32-byte secret derived from our private key for one `label`, so a process can
    /// have stable secrets across restarts (e.g. the QUIC stateless-reset key) without
    /// another key file. The key bytes never leave this crate.
    pub fn derive_secret(&self, label: &str) -> Zeroizing<[u8; 32]> {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(b"fedq derived secret v1\0");
        ctx.update(label.as_bytes());
        ctx.update(b"\0");
        ctx.update(self.key.secret_der());
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(ctx.finish().as_ref());
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::pki::CertificateAuthority;

    #[test]
    fn a_crl_not_signed_by_the_ca_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ours = dir.path().join("ours");
        let theirs = dir.path().join("theirs");
        CertificateAuthority::init(&ours, "changsha", false).unwrap();
        let other = CertificateAuthority::init(&theirs, "changsha", false).unwrap();
        // Another CA's CRL with a far higher number, dropped in as ours.
        for _ in 0..5 {
            other.refresh_crl().unwrap();
        }
        std::fs::copy(theirs.join("crl.pem"), ours.join("crl.pem")).unwrap();
        let err = FederationTrust::load(&TrustFiles::in_dir(&ours)).unwrap_err();
        assert!(
            err.to_string()
                .contains("not signed by this federation's CA"),
            "{err}"
        );
    }

    #[test]
    fn an_older_crl_is_kept_out_and_a_newer_one_let_in() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::init(dir.path(), "changsha", false).unwrap();
        let files = TrustFiles::in_dir(dir.path());
        let first = FederationTrust::load(&files).unwrap();
        ca.issue(Role::Node, "court", &crate::pki::IssueOptions::default())
            .unwrap();
        ca.revoke("court").unwrap();
        let second = FederationTrust::load(&files).unwrap();
        assert!(second.crl_info().number > first.crl_info().number);
        let (kept, rollback) = first.clone().keep_newest_crl(&second);
        let rollback = rollback.expect("an older CRL was accepted");
        assert!(rollback.to_string().contains("CRL number 1"), "{rollback}");
        assert_eq!(kept.crl_info(), second.crl_info());
        assert_eq!(kept.revoked, second.revoked);
        let (newer, none) = second.clone().keep_newest_crl(&first);
        assert!(none.is_none());
        assert_eq!(newer.crl_info(), second.crl_info());
    }

    #[test]
    fn a_remembered_crl_outlives_an_older_one_put_back_across_a_restart() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::init(dir.path(), "changsha", false).unwrap();
        ca.issue(Role::Node, "court", &crate::pki::IssueOptions::default())
            .unwrap();
        let serial = Credentials::load_named(dir.path(), "court")
            .unwrap()
            .serial()
            .to_owned();
        let state = dir.path().join("state/court-policy/crl-in-force.pem");
        let files = TrustFiles::in_dir(dir.path()).remembering_crl_in(state.clone());
        let crl = dir.path().join("crl.pem");
        let before = std::fs::read(&crl).unwrap();
        assert!(!FederationTrust::load(&files).unwrap().is_revoked(&serial));
        assert_eq!(std::fs::read(&state).unwrap(), before);
        ca.revoke("court").unwrap();
        let revoking = std::fs::read(&crl).unwrap();
        let accepted = FederationTrust::load(&files).unwrap();
        assert!(accepted.is_revoked(&serial));
        // Remembered durably: the newer CRL itself, owner-only.
        assert_eq!(std::fs::read(&state).unwrap(), revoking);
        let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // "Restart" (a fresh load, nothing in memory) on the older CRL put back.
        std::fs::write(&crl, &before).unwrap();
        let restarted = FederationTrust::load(&files).unwrap();
        assert!(
            restarted.is_revoked(&serial),
            "the revocation was forgotten"
        );
        assert_eq!(restarted.crl_info(), accepted.crl_info());
        assert_eq!(std::fs::read(&state).unwrap(), revoking);
        // Without the remembered copy, the older CRL would have been taken.
        assert!(!FederationTrust::load(&TrustFiles::in_dir(dir.path()))
            .unwrap()
            .is_revoked(&serial));
        // A newer CRL than the remembered one is taken and remembered.
        std::fs::write(&crl, &revoking).unwrap();
        ca.refresh_crl().unwrap();
        let newest = FederationTrust::load(&files).unwrap();
        assert!(newest.crl_info().number > accepted.crl_info().number);
        assert_eq!(std::fs::read(&state).unwrap(), std::fs::read(&crl).unwrap());
    }

    #[test]
    fn an_unreadable_remembered_crl_stops_the_load_and_another_cas_gives_way() {
        let dir = tempfile::tempdir().unwrap();
        let ours = dir.path().join("ours");
        let theirs = dir.path().join("theirs");
        CertificateAuthority::init(&ours, "changsha", false).unwrap();
        let other = CertificateAuthority::init(&theirs, "changsha", false).unwrap();
        let state = dir.path().join("crl-in-force.pem");
        let files = TrustFiles::in_dir(&ours).remembering_crl_in(state.clone());
        std::fs::write(&state, b"not a CRL").unwrap();
        let err = FederationTrust::load(&files).unwrap_err().to_string();
        assert!(
            err.contains("crl-in-force.pem")
                && err.contains("delete it")
                && err.contains("fedq certs crl"),
            "{err}"
        );
        // The CA was replaced: the old CA's CRL (here a higher number) is no sequence of
        // this one's, and the new CA's CRL is remembered instead.
        for _ in 0..3 {
            other.refresh_crl().unwrap();
        }
        std::fs::copy(theirs.join("crl.pem"), &state).unwrap();
        FederationTrust::load(&files).unwrap();
        assert_eq!(
            std::fs::read(&state).unwrap(),
            std::fs::read(ours.join("crl.pem")).unwrap()
        );
    }

    #[test]
    fn a_crl_is_stale_past_next_update_and_grace() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::init(dir.path(), "changsha", false).unwrap();
        let now = time::OffsetDateTime::now_utc();
        ca.refresh_crl_with_validity(Some((
            now - time::Duration::hours(2),
            now - time::Duration::hours(1),
        )))
        .unwrap();
        let mut files = TrustFiles::in_dir(dir.path());
        let at = UnixTime::now();
        let stale = FederationTrust::load(&files)
            .unwrap()
            .stale_crl(at)
            .unwrap();
        assert!(stale.to_string().contains("fedq certs crl"), "{stale}");
        files.crl_grace = Duration::from_secs(2 * 3600);
        assert!(FederationTrust::load(&files)
            .unwrap()
            .stale_crl(at)
            .is_none());
        files.crl_grace = Duration::from_secs(1800);
        assert!(FederationTrust::load(&files)
            .unwrap()
            .stale_crl(at)
            .is_some());
    }
}
