//! The officers' side of a policy change: put a checked policy into a bundle
//! ([`propose`]), and review one against the version in force before signing it
//! ([`SignReview`]). (`fedq policy publish` and `status` talk to the coordinator; they live
//! with its client.) The `fedq` binary parses the arguments, prints, and asks the officer
//! to confirm.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use fedq_certs::signing::OfficerKey;
use fedq_policy::load::LoadError;
use rustls_pki_types::pem::PemObject;

use crate::{catalogue_digests, Bundle, Refusal, RosterEntry};

/// Why `fedq policy bundle` or `fedq policy sign` did not do its work.
#[derive(Debug, thiserror::Error)]
pub enum OfficerError {
    /// A file could not be read.
    #[error("cannot read `{path}`: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("cannot write `{path}`: {source}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The bundle file changed between the review and the signature.
    #[error("not signed: `{0}` changed since it was reviewed; review it again")]
    Changed(String),
    /// The bundle's output file exists already.
    #[error("`{0}` already exists; choose another --out or remove it")]
    Exists(String),
    /// The catalogues here are not the bundle's.
    #[error("the catalogues in `{0}` are not the ones this bundle was checked against; review it against those (--catalogue DIR)")]
    CataloguesDiffer(String),
    /// The bundle would not replace the version in force.
    #[error("not signed: bundle version {version} is not higher than {in_force} in force; no process would accept it")]
    NotHigher {
        /// The bundle's version.
        version: u64,
        /// The version in force, in words.
        in_force: String,
    },
    /// The policy or its catalogues.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The bundle itself.
    #[error(transparent)]
    Bundle(#[from] Refusal),
    /// The officer's certificate or key.
    #[error(transparent)]
    Tls(#[from] fedq_certs::TlsError),
    /// The date to evaluate the diff at.
    #[error(transparent)]
    Date(#[from] fedq_policy::calendar::NotADate),
}

/// What `fedq policy bundle` puts into a bundle.
#[derive(Debug, Clone)]
pub struct Proposal {
    /// The policy file (checked against its catalogues first).
    pub policy: PathBuf,
    /// The federation's name.
    pub federation: String,
    /// The bundle version.
    pub version: u64,
    /// M for the next bundle.
    pub threshold: u32,
    /// The catalogue directory (default: the one the policy names).
    pub catalogue: Option<PathBuf>,
    /// Officer certificates whose keys may approve the next bundle (none: the roster in
    /// force stays).
    pub officers: Vec<PathBuf>,
    /// Where to write the bundle (must not exist).
    pub out: PathBuf,
}

/// A bundle [`propose`] wrote.
#[derive(Debug, Clone)]
pub struct Proposed {
    /// The bundle as written.
    pub bundle: Bundle,
    /// The version the bundled policy declares.
    pub policy_version: String,
}

fn read(path: &Path) -> Result<String, OfficerError> {
    std::fs::read_to_string(path).map_err(|source| OfficerError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn write(path: &Path, bundle: &Bundle) -> Result<(), OfficerError> {
    fedq_certs::fsutil::write_atomic(path, bundle.to_toml()?.as_bytes(), 0o644).map_err(|source| {
        OfficerError::Write {
            path: path.display().to_string(),
            source,
        }
    })
}

/// Holds an exclusive lock on `<file>.lock` while officers who share a bundles directory
/// (`fedq policy sign`, the console) read and write one bundle, so none loses another's
/// signature ([`fedq_certs::fsutil::lock_beside`]).
fn lock(path: &Path) -> Result<std::fs::File, OfficerError> {
    fedq_certs::fsutil::lock_beside(path).map_err(|source| OfficerError::Write {
        path: format!("{}.lock", path.display()),
        source,
    })
}

/// A roster in words: each officer's name and the start of their key fingerprint, or that
/// the roster in force stays.
pub fn roster_text(roster: &[RosterEntry]) -> String {
    if roster.is_empty() {
        "unchanged (the roster in force)".into()
    } else {
        roster
            .iter()
            .map(|o| format!("{} (key {})", o.name, o.key_sha256.get(..12).unwrap_or("")))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `fedq policy bundle`: checks the policy against its catalogues and writes it, with their
/// digests and the roster for the next bundle, into a new bundle file.
pub fn propose(p: &Proposal) -> Result<Proposed, OfficerError> {
    let text = read(&p.policy)?;
    let dir = match &p.catalogue {
        Some(d) => d.clone(),
        None => fedq_policy::load::catalogue_dir_of(&p.policy, &text)?,
    };
    let policy = fedq_policy::load::parse_policy(&text, &p.policy.display().to_string(), &dir)?;
    let digests = catalogue_digests(&dir)?;
    let mut roster = Vec::with_capacity(p.officers.len());
    for path in &p.officers {
        roster.push(RosterEntry::from_certificate_file(path)?);
    }
    let bundle = Bundle::create(&p.federation, p.version, p.threshold, text, digests, roster)?;
    let _lock = lock(&p.out)?;
    if p.out.exists() {
        return Err(OfficerError::Exists(p.out.display().to_string()));
    }
    write(&p.out, &bundle)?;
    Ok(Proposed {
        bundle,
        policy_version: policy.version,
    })
}

/// What `fedq policy sign` reviews and signs.
#[derive(Debug, Clone)]
pub struct SignRequest {
    /// The bundle; the signature is added to this file.
    pub bundle: PathBuf,
    /// The officer's certificate.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
    /// The version in force: its bundle file, or for the first bundle the set-up policy.
    pub in_force: PathBuf,
    /// The catalogue directory (default: the one the bundle's policy names, relative to
    /// the bundle file).
    pub catalogue: Option<PathBuf>,
    /// The date to evaluate the diff at, YYYY-MM-DD (default: today in the city).
    pub at: Option<String>,
}

/// The version in force as the signing officer sees it.
struct InForceFile {
    roster: Option<Vec<RosterEntry>>,
    engine: fedq_policy::Engine,
    what: String,
    content_sha256: String,
    version: u64,
    threshold: Option<u32>,
}

/// Reads the version in force: a bundle file, or the set-up policy (version 0).
fn in_force_engine(path: &Path, catalogue_dir: &Path) -> Result<InForceFile, OfficerError> {
    let text = read(path)?;
    match Bundle::parse(&text) {
        Ok(b) => {
            b.check_integrity()?;
            let engine = fedq_policy::load::parse_policy(
                &b.policy,
                &path.display().to_string(),
                catalogue_dir,
            )?
            .compile();
            Ok(InForceFile {
                roster: Some(b.officer.clone()),
                engine,
                what: format!("bundle version {}", b.version),
                content_sha256: b.content_sha256.clone(),
                version: b.version,
                threshold: Some(b.threshold),
            })
        }
        Err(_) => {
            let engine =
                fedq_policy::load::parse_policy(&text, &path.display().to_string(), catalogue_dir)?
                    .compile();
            Ok(InForceFile {
                roster: None,
                content_sha256: engine.policy().content_hash.clone(),
                engine,
                what: "the set-up policy (version 0)".into(),
                version: 0,
                threshold: None,
            })
        }
    }
}

/// The version in force as `fedq policy sign` reads it (a bundle file, checked, or the
/// set-up policy): its compiled policy, what it is ("bundle version 2") and its version.
pub fn in_force_policy(
    path: &Path,
    catalogue_dir: &Path,
) -> Result<(fedq_policy::Engine, String, u64), OfficerError> {
    let f = in_force_engine(path, catalogue_dir)?;
    Ok((f.engine, f.what, f.version))
}

/// A bundle checked for signing by one officer: what it changes against the version in
/// force ([`SignReview::render`]), to be confirmed before [`SignReview::sign`].
pub struct SignReview {
    path: PathBuf,
    bundle: Bundle,
    key: OfficerKey,
    proposed: fedq_policy::Engine,
    in_force: InForceFile,
    today: time::Date,
}

impl std::fmt::Debug for SignReview {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignReview")
            .field("path", &self.path)
            .field("version", &self.bundle.version)
            .field("in_force", &self.in_force.what)
            .finish_non_exhaustive()
    }
}

/// A bundle [`SignReview::sign`] signed.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The bundle file.
    pub path: PathBuf,
    /// How many signatures it now carries.
    pub signatures: usize,
}

impl SignReview {
    /// Reads and checks the bundle, the officer's key and the version in force: refuses a
    /// bundle this officer signed already, one checked against other catalogues, and one
    /// no process would accept over the version in force.
    pub fn prepare(r: &SignRequest) -> Result<Self, OfficerError> {
        let bundle = Bundle::parse(&read(&r.bundle)?)?;
        bundle.check_integrity()?;
        let key = OfficerKey::load(&r.cert, &r.key)?;
        let me = key.identity().to_uri();
        if bundle.signature.iter().any(|s| s.officer == me) {
            return Err(Refusal::AlreadySigned(me).into());
        }
        let dir = match &r.catalogue {
            Some(d) => d.clone(),
            None => fedq_policy::load::catalogue_dir_of(&r.bundle, &bundle.policy)?,
        };
        if catalogue_digests(&dir)? != bundle.catalogue {
            return Err(OfficerError::CataloguesDiffer(dir.display().to_string()));
        }
        let proposed =
            fedq_policy::load::parse_policy(&bundle.policy, &r.bundle.display().to_string(), &dir)?
                .compile();
        let in_force = in_force_engine(&r.in_force, &dir)?;
        if bundle.version <= in_force.version {
            return Err(OfficerError::NotHigher {
                version: bundle.version,
                in_force: in_force.what,
            });
        }
        let today = fedq_policy::calendar::date_or_today(r.at.as_deref())?;
        Ok(Self {
            path: r.bundle.clone(),
            bundle,
            key,
            proposed,
            in_force,
            today,
        })
    }

    /// The bundle's version.
    pub fn version(&self) -> u64 {
        self.bundle.version
    }

    /// Who would sign: the officer's identity URI.
    pub fn signer(&self) -> String {
        self.key.identity().to_uri()
    }

    /// The review an officer reads before signing: the bundle, how threshold and roster
    /// change, who signed already, and what changes in access against the version in force.
    pub fn render(&self) -> String {
        let (bundle, in_force) = (&self.bundle, &self.in_force);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "bundle {} — federation {}, version {}, content sha256 {}",
            self.path.display(),
            bundle.federation,
            bundle.version,
            bundle.content_sha256
        );
        match in_force.threshold {
            Some(m) if m != bundle.threshold => {
                let _ = writeln!(
                    out,
                    "signature threshold changes: {m} → {} distinct officers",
                    bundle.threshold
                );
            }
            _ => {
                let _ = writeln!(
                    out,
                    "signature threshold after this bundle: {}",
                    bundle.threshold
                );
            }
        }
        let before = in_force.roster.as_deref().unwrap_or_default();
        if !bundle.officer.is_empty() && before != bundle.officer.as_slice() {
            let was = match &in_force.roster {
                None => "the set-up roster (`policy_officers` in each config)".to_owned(),
                Some(_) => roster_text(before),
            };
            let _ = writeln!(
                out,
                "officer roster changes: {was} → {}",
                roster_text(&bundle.officer)
            );
        } else {
            let _ = writeln!(
                out,
                "officer roster after this bundle: {}",
                roster_text(&bundle.officer)
            );
        }
        // Who signed, as the certificates say (the `officer` field is only a label).
        let signed: Vec<String> = bundle
            .signature
            .iter()
            .map(|s| {
                rustls_pki_types::CertificateDer::from_pem_slice(s.certificate.as_bytes())
                    .ok()
                    .and_then(|der| fedq_certs::Identity::from_certificate_der(&der).ok())
                    .map_or_else(|| "(an unreadable certificate)".to_owned(), |i| i.to_uri())
            })
            .collect();
        let _ = writeln!(
            out,
            "already signed by: {}",
            if signed.is_empty() {
                "nobody yet".into()
            } else {
                signed.join(", ")
            }
        );
        let _ = writeln!(
            out,
            "\nwhat changes against {} (content sha256 {}; `fedq policy status` shows the hash in force — they must match):",
            in_force.what, in_force.content_sha256
        );
        out.push_str(&fedq_policy::report::render_diff(
            &in_force.engine,
            &self.proposed,
            self.today,
        ));
        out
    }

    /// The content hash of the bundle reviewed (what [`SignReview::sign`] signs).
    pub fn content_sha256(&self) -> &str {
        &self.bundle.content_sha256
    }

    /// Adds the officer's signature to the bundle file: under the bundle's lock, to the
    /// file as it is now (keeping signatures others added since the review), and only if
    /// its content is still the one reviewed.
    pub fn sign(self) -> Result<Signed, OfficerError> {
        let _lock = lock(&self.path)?;
        let mut now = Bundle::parse(&read(&self.path)?)?;
        if now.content_sha256 != self.bundle.content_sha256 {
            return Err(OfficerError::Changed(self.path.display().to_string()));
        }
        now.sign(&self.key)?;
        write(&self.path, &now)?;
        Ok(Signed {
            signatures: now.signature.len(),
            path: self.path,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn reference() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../reference/changsha")
    }

    /// Two officers who reviewed one bundle at the same time both end up on it, and a
    /// review of content that has since changed signs nothing.
    #[test]
    fn concurrent_signatures_are_kept_and_a_stale_review_signs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let pki = dir.path().join("pki");
        let ca = fedq_certs::CertificateAuthority::init(&pki, "changsha", false).unwrap();
        for o in ["officer-zhang", "officer-li"] {
            ca.issue(
                fedq_certs::Role::Officer,
                o,
                &fedq_certs::IssueOptions::default(),
            )
            .unwrap();
        }
        let catalogue = reference().join("catalogue");
        let setup = reference().join("policy.toml");
        let out = dir.path().join("bundle-1.toml");
        let proposal = Proposal {
            policy: setup.clone(),
            federation: "changsha".into(),
            version: 1,
            threshold: 2,
            catalogue: Some(catalogue.clone()),
            officers: Vec::new(),
            out: out.clone(),
        };
        propose(&proposal).unwrap();
        assert!(
            matches!(propose(&proposal), Err(OfficerError::Exists(_))),
            "a second bundle of one name replaced the first"
        );
        let review = |who: &str| {
            SignReview::prepare(&SignRequest {
                bundle: out.clone(),
                cert: pki.join(format!("{who}.crt")),
                key: pki.join(format!("{who}.key")),
                in_force: setup.clone(),
                catalogue: Some(catalogue.clone()),
                at: Some("2026-12-01".into()),
            })
            .unwrap()
        };
        let (zhang, li) = (review("officer-zhang"), review("officer-li"));
        assert_eq!(zhang.sign().unwrap().signatures, 1);
        assert_eq!(
            li.sign().unwrap().signatures,
            2,
            "li's signature replaced zhang's"
        );
        let signed = Bundle::parse(&read(&out).unwrap()).unwrap();
        assert_eq!(signed.signature.len(), 2);

        // A review, then the file replaced by another bundle of the same name.
        let other = dir.path().join("bundle-2.toml");
        let stale = {
            propose(&Proposal {
                out: other.clone(),
                version: 2,
                ..proposal.clone()
            })
            .unwrap();
            SignReview::prepare(&SignRequest {
                bundle: other.clone(),
                cert: pki.join("officer-zhang.crt"),
                key: pki.join("officer-zhang.key"),
                in_force: setup.clone(),
                catalogue: Some(catalogue.clone()),
                at: Some("2026-12-01".into()),
            })
            .unwrap()
        };
        let replaced = Bundle::create(
            "changsha",
            2,
            3,
            read(&setup).unwrap(),
            catalogue_digests(&catalogue).unwrap(),
            Vec::new(),
        )
        .unwrap();
        write(&other, &replaced).unwrap();
        assert!(matches!(stale.sign(), Err(OfficerError::Changed(_))));
        let now = Bundle::parse(&read(&other).unwrap()).unwrap();
        assert!(now.signature.is_empty(), "the stale review signed");
    }
}
