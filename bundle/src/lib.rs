//! Signed policy bundles: how a policy change is approved by security officers and how
//! every process decides whether to run it.
//!
//! A **bundle** is one TOML file: the policy text, the digest of each department's
//! catalogue it was checked against, a version number, the signature threshold M that
//! holds once it is in force, and the SHA-256 of all of that (the *content hash*). Officers
//! sign `"fedq policy bundle v1\0" ‖ content hash` with the keys of their officer
//! certificates; each signature travels with its certificate.
//!
//! A process (coordinator or node) puts a bundle in force only if ([`verify`]):
//! the content matches its hash (nothing edited after signing); it is for this federation;
//! its version is higher than the one in force (no rollback or replay); every signature
//! verifies against an officer certificate of this federation that is currently valid and
//! not revoked, whose *key* is on the officer roster in force; at least M *distinct*
//! officers signed — distinct by key: certificates that carry the same public key are one
//! officer, whatever names they carry — M being the threshold **in force** (so M itself
//! changes only by a bundle that meets the current M); the catalogues here are the ones it
//! was checked against; and the policy compiles. Anything else is refused with the reason,
//! and the version in force stays ([`state::PolicySlot`]).
//!
//! Before any bundle, a process runs the *set-up policy* from its config as version 0,
//! trusted like the CA certificate it was installed with, and the *set-up roster* its
//! operator pinned in the same config (`policy_officers`: officers' key fingerprints). A
//! process with no roster pinned accepts no approvals at all: the CA alone (which can mint
//! officer certificates at will) never decides who approves.

#![warn(missing_docs, unreachable_pub)]

pub mod officer;
pub mod state;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use fedq_certs::signing::{not_before, Officer, OfficerError, OfficerKey};
use fedq_certs::FederationTrust;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};
use serde::{Deserialize, Serialize};

/// The bundle file format this build reads and writes.
pub const FORMAT: u32 = 1;

/// Prefixed to the content hash before signing, so an officer's signature over a bundle
/// can never be taken for a signature over anything else.
const SIGNING_DOMAIN: &[u8] = b"fedq policy bundle v1\0";

/// The default signature threshold of a new federation.
pub const DEFAULT_THRESHOLD: u32 = 2;

/// The most signatures a bundle may require (a sanity bound, not a policy).
pub const MAX_THRESHOLD: u32 = 16;

/// The largest bundle file accepted: far above a real policy (the reference policy is
/// 32 KiB), and small enough to travel to a node in one frame.
pub const MAX_BUNDLE_BYTES: usize = 256 * 1024;

/// The highest bundle version (TOML integers are signed 64-bit).
pub const MAX_VERSION: u64 = i64::MAX as u64;

/// The digest of one department's catalogue file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueDigest {
    /// The department the catalogue describes.
    pub department: String,
    /// SHA-256 of the catalogue file's bytes, lower-case hex.
    pub sha256: String,
}

/// An officer on the roster: whose key may approve the next bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RosterEntry {
    /// The officer's name (for people reviewing the bundle).
    pub name: String,
    /// SHA-256 of the officer's public key (what is checked).
    pub key_sha256: String,
}

impl RosterEntry {
    /// The entry for the officer whose certificate is in `path` (PEM).
    pub fn from_certificate_file(path: &Path) -> Result<Self, Refusal> {
        let bad = |why: String| Refusal::Malformed(format!("`{}`: {why}", path.display()));
        let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let der = CertificateDer::from_pem_slice(&pem).map_err(|e| bad(e.to_string()))?;
        let identity =
            fedq_certs::Identity::from_certificate_der(&der).map_err(|e| bad(e.to_string()))?;
        if identity.role != fedq_certs::Role::Officer {
            return Err(bad(format!(
                "a {} certificate; the roster lists officers",
                identity.role
            )));
        }
        Ok(Self {
            name: identity.name,
            key_sha256: fedq_certs::signing::key_fingerprint(&der)
                .map_err(|e| bad(e.to_string()))?,
        })
    }
}

/// One officer's approval.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// The officer's identity as the certificate states it (informative; the certificate
    /// is what is checked).
    pub officer: String,
    /// The officer's certificate, PEM.
    pub certificate: String,
    /// ECDSA P-256 / SHA-256 signature (ASN.1 DER), hex.
    pub signature: String,
}

/// A policy bundle, as written to and read from a `.bundle.toml` file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// [`FORMAT`].
    pub format: u32,
    /// The federation it is for (the CA's federation name).
    pub federation: String,
    /// Higher than every earlier bundle's; a process never goes back to a lower one.
    pub version: u64,
    /// M: distinct officers needed for the *next* bundle once this one is in force.
    pub threshold: u32,
    /// SHA-256 over everything above and below except the signatures, hex.
    pub content_sha256: String,
    /// The policy text (the same language as `policy.toml`).
    pub policy: String,
    /// The catalogues the policy was checked against, one per department.
    #[serde(default)]
    pub catalogue: Vec<CatalogueDigest>,
    /// The officer roster once this bundle is in force: only these keys may approve the
    /// next bundle. Empty: the roster in force stays (never "any officer of the CA").
    #[serde(default)]
    pub officer: Vec<RosterEntry>,
    /// The officers' approvals.
    #[serde(default)]
    pub signature: Vec<Signature>,
}

/// What the content hash covers, in a fixed order.
#[derive(Serialize)]
struct SignedContent<'a> {
    format: u32,
    federation: &'a str,
    version: u64,
    threshold: u32,
    catalogue: &'a [CatalogueDigest],
    officer: &'a [RosterEntry],
    policy: &'a str,
}

/// Why a bundle is not put in force. Each message says what is wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// Not a bundle file.
    #[error("not a policy bundle: {0}")]
    Malformed(String),
    /// Written by a newer fedq.
    #[error("bundle format {0} is not supported (this fedq reads format {FORMAT}); upgrade fedq")]
    Format(u32),
    /// For another federation.
    #[error("the bundle is for federation `{found}`, but this is federation `{expected}`")]
    OtherFederation {
        /// The bundle's.
        found: String,
        /// Ours.
        expected: String,
    },
    /// The content does not hash to the stated value.
    #[error("the bundle's content does not match its content hash: it was edited after it was created; create a new bundle and have it signed again")]
    ContentEdited,
    /// Not newer than the version in force.
    #[error("version {offered} is not higher than version {in_force} in force (an old bundle replayed, or a rollback); to go back to an earlier policy, publish its content as a new version, signed again")]
    NotNewer {
        /// The bundle's version.
        offered: u64,
        /// The version in force.
        in_force: u64,
    },
    /// The same version, with different content, is already in force.
    #[error(
        "a different bundle with version {0} is already in force; give this one a higher version"
    )]
    VersionConflict(u64),
    /// A signature does not count.
    #[error("signature {index} ({officer}): {source}")]
    BadSignature {
        /// 1-based position in the file.
        index: usize,
        /// The identity the signature claims.
        officer: String,
        /// Why.
        #[source]
        source: OfficerError,
    },
    /// The key is not on the roster in force.
    #[error("signature {index} ({officer}): this officer's key is not on the officer roster in force; only a bundle approved under the current roster can change it")]
    NotOnRoster {
        /// 1-based position in the file.
        index: usize,
        /// The certificate's identity.
        officer: String,
    },
    /// Fewer distinct officers than the threshold in force.
    #[error("{distinct} distinct officer(s) signed{duplicates}, but {required} are required; have more officers sign (`fedq policy sign`)")]
    TooFewOfficers {
        /// Distinct officers with valid signatures.
        distinct: usize,
        /// The threshold in force.
        required: u32,
        /// A note on officers who signed more than once.
        duplicates: String,
    },
    /// This officer has already signed.
    #[error(
        "{0} has already signed this bundle; an officer counts once, so another officer must sign"
    )]
    AlreadySigned(String),
    /// The process has no officer roster: its operator pinned none.
    #[error("signature {index} ({officer}): no officer roster is pinned for this process, so it accepts no approvals; list the officers' key fingerprints in `policy_officers` of its config (`fedq certs officers`) and restart it")]
    NoRoster {
        /// 1-based position in the file.
        index: usize,
        /// The certificate's identity.
        officer: String,
    },
    /// A signature entry names another officer than its certificate.
    #[error("signature {index} claims to be by {claimed}, but its certificate is {actual}'s; the file was tampered with")]
    SignerMismatch {
        /// 1-based position in the file.
        index: usize,
        /// The `officer` field.
        claimed: String,
        /// The certificate's identity.
        actual: String,
    },
    /// Over [`MAX_BUNDLE_BYTES`].
    #[error("the bundle is {0} bytes, over the {MAX_BUNDLE_BYTES}-byte limit")]
    TooLarge(usize),
    /// Version 0 (the set-up policy) or over [`MAX_VERSION`].
    #[error("bundle version {0} is not allowed; use 1 to {MAX_VERSION}")]
    Version(u64),
    /// A threshold outside 1..=MAX_THRESHOLD.
    #[error("threshold {0} is not allowed; use 1 to {MAX_THRESHOLD}")]
    Threshold(u32),
    /// Once in force, the bundle's roster could never approve another bundle.
    #[error("the roster once this bundle is in force lists {roster} officer key(s) but its threshold is {threshold}: no later bundle could ever be approved; list at least {threshold} officers or lower the threshold")]
    RosterBelowThreshold {
        /// Distinct keys on the roster the bundle leaves in force.
        roster: usize,
        /// The bundle's threshold.
        threshold: u32,
    },
    /// The catalogues here are not the ones the policy was checked against.
    #[error("catalogues differ from the ones the bundle was checked against: {0}; create the bundle against the catalogues in force")]
    CatalogueMismatch(String),
    /// The policy does not compile against the catalogues here.
    #[error("the bundle's policy is invalid here: {0}")]
    Policy(String),
    /// The catalogue directory could not be read.
    #[error("{0}")]
    Io(String),
}

/// Checks a configured `policy_officers` (the set-up roster: officers' key fingerprints,
/// SHA-256 of the public key, hex) against the threshold it must be able to meet, for the
/// config parsers. Returns the fingerprints in lower case.
pub fn check_officers(officers: &[String], threshold: u32) -> Result<Vec<String>, SettingsError> {
    let mut out: Vec<String> = Vec::with_capacity(officers.len());
    for (i, o) in officers.iter().enumerate() {
        let fp = o.trim().to_ascii_lowercase();
        if fp.len() != 64 || !fp.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(SettingsError::NotAFingerprint { entry: i + 1 });
        }
        if out.contains(&fp) {
            return Err(SettingsError::RepeatedOfficer { entry: i + 1 });
        }
        out.push(fp);
    }
    if !out.is_empty() && out.len() < threshold as usize {
        return Err(SettingsError::TooFewOfficers {
            listed: out.len(),
            threshold,
        });
    }
    Ok(out)
}

/// Checks a configured `policy_threshold`, for the config parsers.
pub fn check_threshold(threshold: u32) -> Result<u32, SettingsError> {
    if (1..=MAX_THRESHOLD).contains(&threshold) {
        Ok(threshold)
    } else {
        Err(SettingsError::Threshold(threshold))
    }
}

/// Why a config's `policy_threshold` or `policy_officers` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// The threshold is out of range.
    #[error("`policy_threshold = {0}` is not allowed; use 1 to {MAX_THRESHOLD} (distinct officers a policy bundle needs)")]
    Threshold(u32),
    /// An officers entry is not a key fingerprint (numbered from 1).
    #[error("`policy_officers` entry {entry} is not a key fingerprint (64 hex digits); print the entries with `fedq certs officers --dir CA_DIR`")]
    NotAFingerprint {
        /// Which entry.
        entry: usize,
    },
    /// An officers entry repeats an earlier one (numbered from 1).
    #[error(
        "`policy_officers` entry {entry} repeats an earlier key; each officer's key is listed once"
    )]
    RepeatedOfficer {
        /// Which entry.
        entry: usize,
    },
    /// Fewer officers listed than the threshold needs.
    #[error("`policy_officers` lists {listed} officer(s) but `policy_threshold` is {threshold}: no bundle could ever be approved; list at least {threshold}")]
    TooFewOfficers {
        /// Officers listed.
        listed: usize,
        /// The threshold.
        threshold: u32,
    },
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

/// The digests of every `*.toml` catalogue in `dir`, sorted by department.
pub fn catalogue_digests(dir: &Path) -> Result<Vec<CatalogueDigest>, Refusal> {
    let io = |e: std::io::Error| {
        Refusal::Io(format!(
            "cannot read catalogue directory `{}`: {e}",
            dir.display()
        ))
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    let mut digests = Vec::with_capacity(paths.len());
    for path in paths {
        let bytes = std::fs::read(&path).map_err(io)?;
        let text = String::from_utf8_lossy(&bytes);
        let catalogue = fedq_policy::Catalogue::parse(&text, &path.display().to_string())
            .map_err(|e| Refusal::Policy(e.to_string()))?;
        digests.push(CatalogueDigest {
            department: catalogue.department,
            sha256: sha256_hex(&bytes),
        });
    }
    digests.sort_by(|a, b| a.department.cmp(&b.department));
    Ok(digests)
}

impl Bundle {
    /// A new, unsigned bundle.
    pub fn create(
        federation: &str,
        version: u64,
        threshold: u32,
        policy: String,
        catalogue: Vec<CatalogueDigest>,
        officer: Vec<RosterEntry>,
    ) -> Result<Self, Refusal> {
        if !(1..=MAX_THRESHOLD).contains(&threshold) {
            return Err(Refusal::Threshold(threshold));
        }
        if !(1..=MAX_VERSION).contains(&version) {
            return Err(Refusal::Version(version));
        }
        let keys: BTreeSet<String> = officer
            .iter()
            .map(|o| o.key_sha256.to_ascii_lowercase())
            .collect();
        if !keys.is_empty() && keys.len() < threshold as usize {
            return Err(Refusal::RosterBelowThreshold {
                roster: keys.len(),
                threshold,
            });
        }
        let mut bundle = Self {
            format: FORMAT,
            federation: federation.to_owned(),
            version,
            threshold,
            content_sha256: String::new(),
            policy,
            catalogue,
            officer,
            signature: Vec::new(),
        };
        bundle.content_sha256 = bundle.computed_hash();
        Ok(bundle)
    }

    /// Parses a bundle file's text.
    pub fn parse(text: &str) -> Result<Self, Refusal> {
        if text.len() > MAX_BUNDLE_BYTES {
            return Err(Refusal::TooLarge(text.len()));
        }
        toml::from_str(text)
            .map_err(|e| Refusal::Malformed(e.to_string().trim().replace('\n', " ")))
    }

    /// The file text.
    pub fn to_toml(&self) -> Result<String, Refusal> {
        let mut out = String::from(
            "# A fedq policy bundle. Do not edit: any change to the content voids every\n# signature. Review with `fedq policy sign`, publish with `fedq policy publish`.\n",
        );
        out.push_str(
            &toml::to_string(self)
                .map_err(|e| Refusal::Malformed(format!("cannot write it: {e}")))?,
        );
        Ok(out)
    }

    /// SHA-256 of the signed content, recomputed.
    pub fn computed_hash(&self) -> String {
        let content = SignedContent {
            format: self.format,
            federation: &self.federation,
            version: self.version,
            threshold: self.threshold,
            catalogue: &self.catalogue,
            officer: &self.officer,
            policy: &self.policy,
        };
        sha256_hex(&serde_json::to_vec(&content).unwrap_or_default())
    }

    /// What an officer signs: the domain tag and the content hash.
    pub fn signing_message(&self) -> Vec<u8> {
        let mut message = SIGNING_DOMAIN.to_vec();
        message.extend_from_slice(self.content_sha256.as_bytes());
        message
    }

    /// Checks the format and that the content matches its hash.
    pub fn check_integrity(&self) -> Result<(), Refusal> {
        if self.format != FORMAT {
            return Err(Refusal::Format(self.format));
        }
        if self.computed_hash() != self.content_sha256 {
            return Err(Refusal::ContentEdited);
        }
        Ok(())
    }

    /// Adds `key`'s signature. Refuses a bundle whose content was edited, one for another
    /// federation, and a second signature by the same officer.
    pub fn sign(&mut self, key: &OfficerKey) -> Result<(), Refusal> {
        self.check_integrity()?;
        let identity = key.identity();
        if identity.federation != self.federation {
            return Err(Refusal::OtherFederation {
                found: self.federation.clone(),
                expected: identity.federation.clone(),
            });
        }
        let uri = identity.to_uri();
        let mine = fedq_certs::signing::key_fingerprint(key.certificate())
            .map_err(|e| Refusal::Io(e.to_string()))?;
        let same_key = |s: &Signature| {
            CertificateDer::from_pem_slice(s.certificate.as_bytes())
                .ok()
                .and_then(|der| fedq_certs::signing::key_fingerprint(&der).ok())
                .is_some_and(|k| k == mine)
        };
        if self
            .signature
            .iter()
            .any(|s| s.officer == uri || same_key(s))
        {
            return Err(Refusal::AlreadySigned(uri));
        }
        let signature = key
            .sign(&self.signing_message())
            .map_err(|e| Refusal::Io(e.to_string()))?;
        let pem = pem_certificate(key.certificate());
        self.signature.push(Signature {
            officer: uri,
            certificate: pem,
            signature: hex::encode(signature),
        });
        Ok(())
    }
}

fn pem_certificate(der: &CertificateDer<'_>) -> String {
    pem::encode(&pem::Pem::new("CERTIFICATE", der.as_ref().to_vec()))
}

/// When signatures are checked: on arrival (now, with revocation), or when a process
/// restarts and replays the bundles it put in force (each certificate at its own start of
/// validity, so a later expiry or revocation does not undo an approval already given; the
/// threshold and versions are checked as on arrival).
#[derive(Clone, Copy, Debug)]
pub enum Checked {
    /// A bundle offered now.
    OnArrival(UnixTime),
    /// A bundle this process put in force earlier.
    AlreadyApproved,
}

/// The version in force, as far as [`verify`] needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InForceVersion {
    /// Its version (0 for the set-up policy).
    pub version: u64,
    /// M: distinct officers a new bundle needs.
    pub threshold: u32,
    /// Its content hash.
    pub content_sha256: String,
    /// Key fingerprints that may approve a new bundle (empty: nobody — no roster pinned).
    pub officers: Vec<String>,
}

impl InForceVersion {
    /// The roster once `bundle` is in force on top of this version: the bundle's own, or
    /// this one's if the bundle lists none.
    pub fn roster_after(&self, bundle: &Bundle) -> Vec<String> {
        if bundle.officer.is_empty() {
            self.officers.clone()
        } else {
            bundle
                .officer
                .iter()
                .map(|o| o.key_sha256.to_ascii_lowercase())
                .collect()
        }
    }
}

/// What verification found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The bundle may take effect; these officers approved it.
    Approved(Vec<Officer>),
    /// The bundle is exactly the one in force (a repeated publish).
    AlreadyInForce,
}

/// Decides whether `bundle` may replace the version `in_force` (see the crate docs).
/// Catalogue and policy checks are [`state::PolicySlot`]'s.
pub fn verify(
    bundle: &Bundle,
    in_force: &InForceVersion,
    trust: &FederationTrust,
    checked: Checked,
) -> Result<Verdict, Refusal> {
    bundle.check_integrity()?;
    if bundle.federation != trust.federation() {
        return Err(Refusal::OtherFederation {
            found: bundle.federation.clone(),
            expected: trust.federation().to_owned(),
        });
    }
    if bundle.version == in_force.version {
        return if bundle.content_sha256 == in_force.content_sha256 {
            Ok(Verdict::AlreadyInForce)
        } else {
            Err(Refusal::VersionConflict(bundle.version))
        };
    }
    if bundle.version < in_force.version {
        return Err(Refusal::NotNewer {
            offered: bundle.version,
            in_force: in_force.version,
        });
    }
    if bundle.version > MAX_VERSION {
        return Err(Refusal::Version(bundle.version));
    }
    if !(1..=MAX_THRESHOLD).contains(&bundle.threshold) {
        return Err(Refusal::Threshold(bundle.threshold));
    }
    // A bundle that leaves fewer officers on the roster than its own M would lock the
    // federation's policy for good: refused before any signature is looked at.
    let roster_after: BTreeSet<String> = in_force.roster_after(bundle).into_iter().collect();
    if !roster_after.is_empty() && roster_after.len() < bundle.threshold as usize {
        return Err(Refusal::RosterBelowThreshold {
            roster: roster_after.len(),
            threshold: bundle.threshold,
        });
    }
    let message = bundle.signing_message();
    let mut officers: Vec<Officer> = Vec::new();
    let mut twice = BTreeSet::new();
    for (i, s) in bundle.signature.iter().enumerate() {
        let bad = |source: OfficerError| Refusal::BadSignature {
            index: i + 1,
            officer: s.officer.clone(),
            source,
        };
        let der = CertificateDer::from_pem_slice(s.certificate.as_bytes())
            .map_err(|e| bad(OfficerError::Malformed(e.to_string())))?;
        let signature = hex::decode(s.signature.trim()).map_err(|e| {
            bad(OfficerError::Malformed(format!(
                "signature is not hex: {e}"
            )))
        })?;
        let (at, revocation) = match checked {
            Checked::OnArrival(now) => (now, true),
            Checked::AlreadyApproved => (not_before(&der).map_err(bad)?, false),
        };
        let officer = trust
            .verify_officer_signature(&der, &message, &signature, at, revocation)
            .map_err(bad)?;
        if officer.identity.to_uri() != s.officer {
            return Err(Refusal::SignerMismatch {
                index: i + 1,
                claimed: s.officer.clone(),
                actual: officer.identity.to_uri(),
            });
        }
        if in_force.officers.is_empty() {
            return Err(Refusal::NoRoster {
                index: i + 1,
                officer: officer.identity.to_uri(),
            });
        }
        if !in_force.officers.contains(&officer.key_sha256) {
            return Err(Refusal::NotOnRoster {
                index: i + 1,
                officer: officer.identity.to_uri(),
            });
        }
        // One key is one officer, whatever certificates (names, serials) carry it; and
        // one officer's name is one officer, whatever keys it has had.
        match officers
            .iter()
            .find(|o| o.key_sha256 == officer.key_sha256 || o.identity == officer.identity)
        {
            Some(counted) if counted.identity == officer.identity => {
                twice.insert(officer.identity.name.clone());
            }
            Some(counted) => {
                twice.insert(format!(
                    "{} (again under a certificate for `{}` with the same key)",
                    counted.identity.name, officer.identity.name
                ));
            }
            None => officers.push(officer),
        }
    }
    if officers.len() < in_force.threshold as usize {
        let duplicates = if twice.is_empty() {
            String::new()
        } else {
            format!(
                " ({} signed more than once; an officer counts once)",
                twice.into_iter().collect::<Vec<_>>().join(", ")
            )
        };
        return Err(Refusal::TooFewOfficers {
            distinct: officers.len(),
            required: in_force.threshold,
            duplicates,
        });
    }
    Ok(Verdict::Approved(officers))
}

/// The current time as [`UnixTime`].
pub fn now() -> UnixTime {
    UnixTime::now()
}
