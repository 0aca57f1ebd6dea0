//! `fedq certs`: the federation CA, role certificates and revocation, kept in one directory.
//!
//! Layout of `--dir`:
//!
//! | file | what |
//! |---|---|
//! | `ca.crt`, `ca.key` | the federation CA (key 0600) |
//! | `NAME.crt`, `NAME.key` | a holder's certificate and key (key 0600) |
//! | `crl.pem` | the CA-signed X.509 CRL every component loads |
//! | `index.json` | every certificate ever issued: name, role, serial, validity, revocation |
//!
//! **Only this module reads the CA key**, and only for as long as one command runs; the
//! key bytes are zeroized when the [`CertificateAuthority`] is dropped. Every command
//! checks all of its inputs before it writes anything, and writes through
//! [`StagedFile`]s, so a refused command leaves the directory as it was.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SanType, SerialNumber,
};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use crate::fsutil::{StagedFile, KEY_MODE, PUBLIC_MODE};
use crate::identity::{validate_name, Identity, IdentityError, Role};
use crate::layout::{ca_cert_path, ca_key_path, index_path};
pub use crate::layout::{cert_path, crl_path, key_path};

/// Default lifetime of a holder certificate.
pub const DEFAULT_DAYS: u32 = 90;
/// Longest lifetime `fedq certs issue` grants.
pub const MAX_DAYS: u32 = 825;
/// Lifetime of the federation CA.
pub const CA_DAYS: i64 = 3650;
/// How long a CRL claims to be current; `revoke` and `crl` re-sign it.
pub const CRL_DAYS: i64 = 30;

/// Everything that can go wrong in `fedq certs`.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// There is no CA in the directory.
    #[error("no federation CA in `{0}`: run `fedq certs init --dir {0} --federation NAME` first")]
    NoCa(String),
    /// `init` found a CA already there.
    #[error("a federation CA already exists in `{0}`; pass --force to replace it (every certificate it issued stops being trusted)")]
    CaExists(String),
    /// `issue` would overwrite a key.
    #[error("`{0}` already exists; pass --force to replace it")]
    WouldOverwrite(String),
    /// `--dir` exists but is not a directory.
    #[error("`{0}` is not a directory")]
    NotADirectory(String),
    /// A file operation failed.
    #[error("cannot {action} `{path}`: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path involved.
        path: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A name or role is not acceptable.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The CA is not allowed to issue this role.
    #[error("role `{0}` cannot be issued; use one of coordinator, node, requester, officer, consent-authority")]
    RoleNotIssuable(Role),
    /// `--days` out of range.
    #[error("--days must be between 1 and {MAX_DAYS}, got {0}")]
    InvalidDays(u32),
    /// `--host` is neither a DNS name nor an IP address.
    #[error("invalid --host `{0}`: expected a DNS name or an IP address")]
    InvalidHost(String),
    /// `--host` given for a role that is never a TLS server.
    #[error(
        "--host is only for coordinator and node certificates; a {0} is never reached as a server"
    )]
    HostNotAllowed(Role),
    /// `revoke` names no issued certificate.
    #[error("no certificate named `{0}` was issued from this CA; see `fedq certs list`")]
    UnknownName(String),
    /// `revoke` names a certificate already revoked.
    #[error("the certificate of `{0}` is already revoked")]
    AlreadyRevoked(String),
    /// The on-disk state is inconsistent.
    #[error("`{path}` is damaged: {why}")]
    Damaged {
        /// The damaged file.
        path: String,
        /// What is wrong with it.
        why: String,
    },
    /// Certificate generation failed.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// The CA key is readable by others (the message names the file and the fix).
    #[error(transparent)]
    KeyExposed(#[from] crate::fsutil::KeyFileError),
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> PkiError + 'a {
    move |source| PkiError::Io {
        action,
        path: path.display().to_string(),
        source,
    }
}

fn damaged(path: &Path, why: impl ToString) -> PkiError {
    PkiError::Damaged {
        path: path.display().to_string(),
        why: why.to_string(),
    }
}

/// One line of `index.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedCertificate {
    /// Holder name (the file stem).
    pub name: String,
    /// Role carried in the certificate.
    pub role: Role,
    /// Serial number, lower-case hex.
    pub serial: String,
    /// Start of validity (RFC 3339).
    pub not_before: String,
    /// End of validity (RFC 3339).
    pub not_after: String,
    /// When it was revoked, if it was (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    federation: String,
    crl_number: u64,
    certificates: Vec<IssuedCertificate>,
}

/// Options of `fedq certs issue`.
#[derive(Clone, Debug)]
pub struct IssueOptions {
    /// Lifetime in days from now.
    pub days: u32,
    /// Extra DNS names or IP addresses the holder serves under (TLS servers only).
    pub hosts: Vec<String>,
    /// Replace an existing certificate and key of the same name.
    pub force: bool,
    /// Validity override, for tests of expired and not-yet-valid certificates.
    pub validity: Option<(OffsetDateTime, OffsetDateTime)>,
    /// Extended key usage override, for tests of certificates with the wrong key usage.
    pub extended_key_usages: Option<Vec<ExtendedKeyUsagePurpose>>,
}

impl Default for IssueOptions {
    fn default() -> Self {
        Self {
            days: DEFAULT_DAYS,
            hosts: Vec::new(),
            force: false,
            validity: None,
            extended_key_usages: None,
        }
    }
}

/// The extended key usages that match a role.
pub fn role_extended_key_usages(role: Role) -> Vec<ExtendedKeyUsagePurpose> {
    match role {
        Role::Node => vec![ExtendedKeyUsagePurpose::ServerAuth],
        Role::Coordinator => vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
        Role::Requester => vec![ExtendedKeyUsagePurpose::ClientAuth],
        // Officers sign policy bundles, and may hand a signed bundle to the coordinator's
        // API themselves (`fedq policy publish`).
        Role::Officer => vec![
            ExtendedKeyUsagePurpose::CodeSigning,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
        // The consent authority signs consent tokens and never opens a connection.
        Role::ConsentAuthority => vec![ExtendedKeyUsagePurpose::CodeSigning],
        Role::Ca => Vec::new(),
    }
}

fn random_serial() -> Result<SerialNumber, PkiError> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| PkiError::Generate(rcgen::Error::RingUnspecified))?;
    // A positive INTEGER with no leading zero byte.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

fn ensure_dir(dir: &Path, create: bool) -> Result<(), PkiError> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(PkiError::NotADirectory(dir.display().to_string())),
        Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
            fs::create_dir_all(dir).map_err(io_err("create directory", dir))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(PkiError::NoCa(dir.display().to_string()))
        }
        Err(e) => Err(io_err("read", dir)(e)),
    }
}

/// The federation CA, opened for one command.
pub struct CertificateAuthority {
    dir: PathBuf,
    federation: String,
    cert_pem: String,
    key: Zeroizing<KeyPair>,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("dir", &self.dir)
            .field("federation", &self.federation)
            .finish_non_exhaustive()
    }
}

/// A TLS server identity for a listener outside the federation's PKI (a requesting
/// agency's gateway, which its own apps call): a one-off CA, whose certificate the apps
/// trust (`ca`) and whose key is dropped at once, and a server certificate it signed
/// (`cert`, ECDSA P-256, `serverAuth`, the DNS names and IP addresses in `hosts` as subject
/// alternative names, valid for `days`) with its key (`key`, 0600). Making a new identity
/// replaces all three.
pub fn standalone_tls(
    ca: &Path,
    cert: &Path,
    key: &Path,
    name: &str,
    hosts: &[String],
    days: u32,
) -> Result<(), PkiError> {
    let now = OffsetDateTime::now_utc();
    let ca_key = Zeroizing::new(KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?);
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = rcgen::DistinguishedName::new();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("{name} (one-off CA)"));
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    ca_params.not_before = now - Duration::minutes(5);
    ca_params.not_after = now + Duration::days(i64::from(days));
    ca_params.serial_number = Some(random_serial()?);
    let ca_cert = ca_params.self_signed(&*ca_key)?;
    let issuer = Issuer::from_ca_cert_pem(&ca_cert.pem(), &*ca_key)?;
    let pair = Zeroizing::new(KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?);
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.subject_alt_names = hosts
        .iter()
        .map(|h| match h.parse::<IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => h.clone().try_into().map(SanType::DnsName),
        })
        .collect::<Result<_, _>>()?;
    params.not_before = now - Duration::minutes(5);
    params.not_after = now + Duration::days(i64::from(days));
    params.serial_number = Some(random_serial()?);
    let certificate = params.signed_by(&*pair, &issuer)?;
    let key_pem = Zeroizing::new(pair.serialize_pem());
    commit_all([
        StagedFile::write(key, key_pem.as_bytes(), KEY_MODE).map_err(io_err("write", key))?,
        StagedFile::write(cert, certificate.pem().as_bytes(), PUBLIC_MODE)
            .map_err(io_err("write", cert))?,
        StagedFile::write(ca, ca_cert.pem().as_bytes(), PUBLIC_MODE)
            .map_err(io_err("write", ca))?,
    ])
}

impl CertificateAuthority {
    /// `fedq certs init`: creates the CA, an empty CRL and the index in `dir`.
    pub fn init(dir: &Path, federation: &str, force: bool) -> Result<Self, PkiError> {
        validate_name(federation)?;
        ensure_dir(dir, true)?;
        let (cert_path, key_path) = (ca_cert_path(dir), ca_key_path(dir));
        if !force && (cert_path.exists() || key_path.exists()) {
            return Err(PkiError::CaExists(dir.display().to_string()));
        }
        let key = Zeroizing::new(KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?);
        let now = OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(
            DnType::CommonName,
            format!("fedq federation CA ({federation})"),
        );
        params
            .distinguished_name
            .push(DnType::OrganizationName, federation);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_identity = Identity::new(federation, Role::Ca, "ca")?;
        params.subject_alt_names = vec![SanType::URI(ca_identity.to_uri().try_into()?)];
        params.not_before = now - Duration::minutes(5);
        params.not_after = now + Duration::days(CA_DAYS);
        params.serial_number = Some(random_serial()?);
        params.key_identifier_method = KeyIdMethod::Sha256;
        let cert = params.self_signed(&*key)?;
        let ca = Self {
            dir: dir.to_owned(),
            federation: federation.to_owned(),
            cert_pem: cert.pem(),
            key,
        };
        let index = Index {
            federation: federation.to_owned(),
            crl_number: 1,
            certificates: Vec::new(),
        };
        let key_pem = Zeroizing::new(ca.key.serialize_pem());
        let staged = [
            StagedFile::write(&key_path, key_pem.as_bytes(), KEY_MODE)
                .map_err(io_err("write", &key_path))?,
            StagedFile::write(&cert_path, ca.cert_pem.as_bytes(), PUBLIC_MODE)
                .map_err(io_err("write", &cert_path))?,
            ca.stage_crl(&index)?,
            stage_index(dir, &index)?,
        ];
        commit_all(staged)?;
        Ok(ca)
    }

    /// Opens the CA in `dir` (reads the CA key).
    pub fn open(dir: &Path) -> Result<Self, PkiError> {
        ensure_dir(dir, false)?;
        let (cert_path, key_path) = (ca_cert_path(dir), ca_key_path(dir));
        if !cert_path.exists() || !key_path.exists() {
            return Err(PkiError::NoCa(dir.display().to_string()));
        }
        let cert_pem = fs::read_to_string(&cert_path).map_err(io_err("read", &cert_path))?;
        crate::fsutil::check_private_key(&key_path)?;
        let key_pem =
            Zeroizing::new(fs::read_to_string(&key_path).map_err(io_err("read", &key_path))?);
        let key = Zeroizing::new(KeyPair::from_pem(&key_pem).map_err(|e| damaged(&key_path, e))?);
        let index = read_index(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
            federation: index.federation,
            cert_pem,
            key,
        })
    }

    /// The federation's name.
    pub fn federation(&self) -> &str {
        &self.federation
    }

    fn issuer(&self) -> Result<Issuer<'static, &KeyPair>, PkiError> {
        Issuer::from_ca_cert_pem(&self.cert_pem, &*self.key)
            .map_err(|e| damaged(&ca_cert_path(&self.dir), e))
    }

    /// `fedq certs issue`: writes `NAME.crt` and `NAME.key` for a holder.
    pub fn issue(
        &self,
        role: Role,
        name: &str,
        options: &IssueOptions,
    ) -> Result<IssuedCertificate, PkiError> {
        if !Role::ISSUABLE.contains(&role) {
            return Err(PkiError::RoleNotIssuable(role));
        }
        let identity = Identity::new(&self.federation, role, name)?;
        if options.days == 0 || options.days > MAX_DAYS {
            return Err(PkiError::InvalidDays(options.days));
        }
        let (cert_path, key_path) = (cert_path(&self.dir, name), key_path(&self.dir, name));
        for path in [&cert_path, &key_path] {
            if !options.force && path.exists() {
                return Err(PkiError::WouldOverwrite(path.display().to_string()));
            }
        }
        let mut sans = vec![SanType::URI(identity.to_uri().try_into()?)];
        if matches!(role, Role::Node | Role::Coordinator) {
            // TLS clients check the server's name: a node is reached under its own name.
            sans.push(SanType::DnsName(name.try_into()?));
            for host in &options.hosts {
                sans.push(match host.parse::<IpAddr>() {
                    Ok(ip) => SanType::IpAddress(ip),
                    Err(_) => {
                        validate_name(host).map_err(|_| PkiError::InvalidHost(host.clone()))?;
                        SanType::DnsName(host.as_str().try_into()?)
                    }
                });
            }
        } else if !options.hosts.is_empty() {
            return Err(PkiError::HostNotAllowed(role));
        }

        let now = OffsetDateTime::now_utc();
        let (not_before, not_after) = options.validity.unwrap_or((
            now - Duration::minutes(5),
            now + Duration::days(i64::from(options.days)),
        ));
        let serial = random_serial()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, self.federation.as_str());
        params
            .distinguished_name
            .push(DnType::OrganizationalUnitName, role.as_str());
        params.subject_alt_names = sans;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = match role {
            Role::Officer | Role::ConsentAuthority => vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::ContentCommitment,
            ],
            _ => vec![KeyUsagePurpose::DigitalSignature],
        };
        params.extended_key_usages = options
            .extended_key_usages
            .clone()
            .unwrap_or_else(|| role_extended_key_usages(role));
        params.not_before = not_before;
        params.not_after = not_after;
        params.serial_number = Some(serial.clone());
        params.use_authority_key_identifier_extension = true;

        let key = Zeroizing::new(KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?);
        let cert = params.signed_by(&*key, &self.issuer()?)?;
        let issued = IssuedCertificate {
            name: name.to_owned(),
            role,
            serial: hex(&serial.to_bytes()),
            not_before: rfc3339(not_before),
            not_after: rfc3339(not_after),
            revoked_at: None,
        };
        let mut index = read_index(&self.dir)?;
        index.certificates.push(issued.clone());
        let key_pem = Zeroizing::new(key.serialize_pem());
        let staged = [
            StagedFile::write(&key_path, key_pem.as_bytes(), KEY_MODE)
                .map_err(io_err("write", &key_path))?,
            StagedFile::write(&cert_path, cert.pem().as_bytes(), PUBLIC_MODE)
                .map_err(io_err("write", &cert_path))?,
            stage_index(&self.dir, &index)?,
        ];
        commit_all(staged)?;
        Ok(issued)
    }

    /// `fedq certs revoke`: puts the certificate currently at `NAME.crt` on the CRL.
    pub fn revoke(&self, name: &str) -> Result<IssuedCertificate, PkiError> {
        validate_name(name)?;
        let path = cert_path(&self.dir, name);
        if !path.exists() {
            return Err(PkiError::UnknownName(name.to_owned()));
        }
        let serial = certificate_serial(&path)?;
        let mut index = read_index(&self.dir)?;
        let entry = index
            .certificates
            .iter_mut()
            .find(|c| c.serial == serial)
            .ok_or_else(|| PkiError::UnknownName(name.to_owned()))?;
        if entry.revoked_at.is_some() {
            return Err(PkiError::AlreadyRevoked(name.to_owned()));
        }
        entry.revoked_at = Some(rfc3339(OffsetDateTime::now_utc()));
        let revoked = entry.clone();
        index.crl_number += 1;
        let staged = [self.stage_crl(&index)?, stage_index(&self.dir, &index)?];
        commit_all(staged)?;
        Ok(revoked)
    }

    /// Re-signs the CRL with a fresh validity period and the next CRL number (run before
    /// `CRL_DAYS` pass).
    pub fn refresh_crl(&self) -> Result<(), PkiError> {
        self.refresh_crl_with_validity(None)
    }

    /// [`Self::refresh_crl`] with `thisUpdate` and `nextUpdate` given (for tests of stale
    /// CRLs); `None`: from now for `CRL_DAYS`.
    pub fn refresh_crl_with_validity(
        &self,
        validity: Option<(OffsetDateTime, OffsetDateTime)>,
    ) -> Result<(), PkiError> {
        let mut index = read_index(&self.dir)?;
        index.crl_number += 1;
        let staged = [
            self.stage_crl_with(&index, validity)?,
            stage_index(&self.dir, &index)?,
        ];
        commit_all(staged)
    }

    fn stage_crl(&self, index: &Index) -> Result<StagedFile, PkiError> {
        self.stage_crl_with(index, None)
    }

    fn stage_crl_with(
        &self,
        index: &Index,
        validity: Option<(OffsetDateTime, OffsetDateTime)>,
    ) -> Result<StagedFile, PkiError> {
        let now = OffsetDateTime::now_utc();
        let (this_update, next_update) =
            validity.unwrap_or((now - Duration::minutes(5), now + Duration::days(CRL_DAYS)));
        let mut revoked_certs = Vec::new();
        for c in index.certificates.iter() {
            let Some(at) = &c.revoked_at else { continue };
            let revocation_time = OffsetDateTime::parse(at, &Rfc3339)
                .map_err(|e| damaged(&index_path(&self.dir), e))?;
            revoked_certs.push(RevokedCertParams {
                serial_number: SerialNumber::from_slice(&unhex(&c.serial).ok_or_else(|| {
                    damaged(&index_path(&self.dir), format!("bad serial `{}`", c.serial))
                })?),
                revocation_time,
                reason_code: None,
                invalidity_date: None,
            });
        }
        let params = CertificateRevocationListParams {
            this_update,
            next_update,
            crl_number: SerialNumber::from_slice(&index.crl_number.to_be_bytes()),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = params.signed_by(&self.issuer()?)?;
        let path = crl_path(&self.dir);
        StagedFile::write(&path, crl.pem()?.as_bytes(), PUBLIC_MODE).map_err(io_err("write", &path))
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect()
}

fn commit_all<const N: usize>(staged: [StagedFile; N]) -> Result<(), PkiError> {
    for file in staged {
        file.commit().map_err(|source| PkiError::Io {
            action: "rename into place",
            path: "staged file".into(),
            source,
        })?;
    }
    Ok(())
}

fn read_index(dir: &Path) -> Result<Index, PkiError> {
    let path = index_path(dir);
    let text = fs::read_to_string(&path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => PkiError::NoCa(dir.display().to_string()),
        _ => io_err("read", &path)(e),
    })?;
    serde_json::from_str(&text).map_err(|e| damaged(&path, e))
}

fn stage_index(dir: &Path, index: &Index) -> Result<StagedFile, PkiError> {
    let path = index_path(dir);
    let json = serde_json::to_vec_pretty(index).map_err(|e| damaged(&path, e))?;
    StagedFile::write(&path, &json, PUBLIC_MODE).map_err(io_err("write", &path))
}

/// The serial number of a PEM certificate file, lower-case hex.
pub fn certificate_serial(path: &Path) -> Result<String, PkiError> {
    let pem = fs::read(path).map_err(io_err("read", path))?;
    let der = crate::tls::read_certificates(&pem)
        .ok()
        .and_then(|certs| certs.into_iter().next())
        .ok_or_else(|| damaged(path, "no PEM certificate in file"))?;
    let (_, cert) =
        x509_parser::parse_x509_certificate(&der).map_err(|e| damaged(path, e.to_string()))?;
    Ok(hex(cert.raw_serial()))
}

/// How `fedq certs list` describes a certificate now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertificateStatus {
    /// Within validity and not revoked.
    Valid,
    /// Past its `not_after`.
    Expired,
    /// Before its `not_before`.
    NotYetValid,
    /// On the CRL.
    Revoked(String),
    /// Replaced by a newer certificate of the same name (`issue --force`).
    Superseded,
}

/// `fedq certs list`: every certificate ever issued, with its status now.
pub fn list(dir: &Path) -> Result<Vec<(IssuedCertificate, CertificateStatus)>, PkiError> {
    ensure_dir(dir, false)?;
    let index = read_index(dir)?;
    let now = OffsetDateTime::now_utc();
    let mut current: BTreeMap<&str, &str> = BTreeMap::new();
    for c in &index.certificates {
        current.insert(&c.name, &c.serial);
    }
    let mut out = Vec::new();
    for c in &index.certificates {
        let parse =
            |t: &str| OffsetDateTime::parse(t, &Rfc3339).map_err(|e| damaged(&index_path(dir), e));
        let status = if let Some(at) = &c.revoked_at {
            CertificateStatus::Revoked(at.clone())
        } else if current.get(c.name.as_str()) != Some(&c.serial.as_str()) {
            CertificateStatus::Superseded
        } else if parse(&c.not_after)? < now {
            CertificateStatus::Expired
        } else if parse(&c.not_before)? > now {
            CertificateStatus::NotYetValid
        } else {
            CertificateStatus::Valid
        };
        out.push((c.clone(), status));
    }
    Ok(out)
}
