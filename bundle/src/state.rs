//! The policy in force in one process, and how a new bundle replaces it.
//!
//! [`PolicySlot::current`] hands out an `Arc` of the version in force: a query takes it
//! once when it starts and decides under it to the end, while [`PolicySlot::install`]
//! swaps in a new version for the queries that start after. The accepted bundle is written
//! (atomically, before the swap) to the process's state file, so a restart comes back to
//! the same version — never to an older one.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use fedq_certs::tls::TrustFiles;
use fedq_certs::FederationTrust;
use fedq_policy::Engine;

use crate::{verify, Bundle, Checked, InForceVersion, Refusal, Verdict};

/// Where a process keeps the bundle in force unless its config says otherwise:
/// `NAME-policy.bundle.toml` beside its audit log.
pub fn default_state_file(audit: &Path, name: &str) -> PathBuf {
    audit
        .parent()
        .unwrap_or(Path::new("."))
        .join(format!("{name}-policy.bundle.toml"))
}

/// One version of the policy, compiled and ready to decide.
#[derive(Debug)]
pub struct InForce {
    /// The bundle version (0: the set-up policy from the config).
    pub version: u64,
    /// M for the next bundle.
    pub threshold: u32,
    /// The bundle's content hash (the set-up policy's own hash for version 0).
    pub content_sha256: String,
    /// The officers who approved it (empty for the set-up policy).
    pub approved_by: Vec<String>,
    /// The compiled policy.
    pub engine: Engine,
}

impl InForce {
    /// How audit entries and answers name this version: `BUNDLE/POLICY`, e.g.
    /// `3/2026.12-1` (bundle version 3, whose policy calls itself `2026.12-1`).
    pub fn label(&self) -> String {
        format!("{}/{}", self.version, self.engine.policy().version)
    }

    fn as_version(&self) -> InForceVersion {
        InForceVersion {
            version: self.version,
            threshold: self.threshold,
            content_sha256: self.content_sha256.clone(),
        }
    }
}

/// What [`PolicySlot::install`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Installed {
    /// The bundle is now in force.
    Applied {
        /// Its version label.
        label: String,
    },
    /// It already was (a repeated publish); nothing changed.
    AlreadyInForce {
        /// Its version label.
        label: String,
    },
}

/// What `fedq policy status` reports for one process.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SlotStatus {
    /// Bundle version in force.
    pub version: u64,
    /// Its label (`BUNDLE/POLICY`).
    pub label: String,
    /// Its content hash.
    pub content_sha256: String,
    /// M for the next bundle.
    pub threshold: u32,
    /// Why the last bundle offered was refused, if it was.
    pub last_refusal: Option<String>,
}

/// Errors opening a slot at start-up.
#[derive(Debug, thiserror::Error)]
pub enum SlotError {
    /// The set-up policy or its catalogues.
    #[error(transparent)]
    Load(#[from] fedq_policy::load::LoadError),
    /// The CA or CRL.
    #[error(transparent)]
    Trust(#[from] fedq_certs::TlsError),
    /// The bundle in the state file no longer verifies.
    #[error("the policy bundle in force, `{path}`, is not usable: {reason}; restore it from a copy or remove it to fall back to the set-up policy")]
    State {
        /// The state file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// The policy in force in one process.
#[derive(Debug)]
pub struct PolicySlot {
    current: RwLock<Arc<InForce>>,
    /// Serializes installs; queries never take it.
    installing: Mutex<Option<String>>,
    state_file: PathBuf,
    catalogue_dir: PathBuf,
    trust: TrustFiles,
}

impl PolicySlot {
    /// Opens the slot: the bundle in `state_file` if there is one (re-verified), else the
    /// set-up policy `setup_policy` as version 0 with threshold `setup_threshold`.
    pub fn open(
        setup_policy: &Path,
        setup_threshold: u32,
        state_file: PathBuf,
        trust: TrustFiles,
    ) -> Result<Self, SlotError> {
        let text = std::fs::read_to_string(setup_policy).map_err(|source| {
            fedq_policy::load::LoadError::Read {
                path: setup_policy.to_path_buf(),
                source,
            }
        })?;
        let catalogue_dir = fedq_policy::load::catalogue_dir_of(setup_policy, &text)?;
        let setup = fedq_policy::load::parse_policy(
            &text,
            &setup_policy.display().to_string(),
            &catalogue_dir,
        )?
        .compile();
        if !(1..=crate::MAX_THRESHOLD).contains(&setup_threshold) {
            return Err(SlotError::State {
                path: setup_policy.display().to_string(),
                reason: Refusal::Threshold(setup_threshold).to_string(),
            });
        }
        let mut in_force = InForce {
            version: 0,
            threshold: setup_threshold,
            content_sha256: setup.policy().content_hash.clone(),
            approved_by: Vec::new(),
            engine: setup,
        };
        if state_file.exists() {
            let state_error = |reason: String| SlotError::State {
                path: state_file.display().to_string(),
                reason,
            };
            let text =
                std::fs::read_to_string(&state_file).map_err(|e| state_error(e.to_string()))?;
            let bundle = Bundle::parse(&text).map_err(|e| state_error(e.to_string()))?;
            let trust_now = FederationTrust::load(&trust)?;
            // Approved when it arrived; now only its integrity is re-checked.
            let floor = InForceVersion {
                version: 0,
                threshold: 1,
                content_sha256: String::new(),
            };
            in_force = compile(
                &bundle,
                &floor,
                &trust_now,
                Checked::AlreadyApproved,
                &catalogue_dir,
            )
            .map_err(|e| state_error(e.to_string()))?;
        }
        Ok(Self {
            current: RwLock::new(Arc::new(in_force)),
            installing: Mutex::new(None),
            state_file,
            catalogue_dir,
            trust,
        })
    }

    /// The version in force; hold the `Arc` for the whole of one query.
    pub fn current(&self) -> Arc<InForce> {
        match self.current.read() {
            Ok(g) => Arc::clone(&g),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Verifies `text` as a bundle against the version in force and, if it may take
    /// effect, writes it to the state file and puts it in force. On refusal nothing
    /// changes and the reason is kept for [`PolicySlot::status`].
    pub fn install(&self, text: &str) -> Result<Installed, Refusal> {
        let mut last = match self.installing.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let outcome = self.try_install(text);
        match &outcome {
            Ok(_) => *last = None,
            Err(e) => *last = Some(e.to_string()),
        }
        outcome
    }

    fn try_install(&self, text: &str) -> Result<Installed, Refusal> {
        let bundle = Bundle::parse(text)?;
        let trust = FederationTrust::load(&self.trust).map_err(|e| {
            Refusal::Io(format!(
                "cannot load the CA and CRL to check signatures: {e}"
            ))
        })?;
        let current = self.current();
        if let Verdict::AlreadyInForce = verify(
            &bundle,
            &current.as_version(),
            &trust,
            Checked::OnArrival(crate::now()),
        )? {
            return Ok(Installed::AlreadyInForce {
                label: current.label(),
            });
        }
        let next = compile(
            &bundle,
            &current.as_version(),
            &trust,
            Checked::OnArrival(crate::now()),
            &self.catalogue_dir,
        )?;
        fedq_certs::fsutil::write_atomic(&self.state_file, text.as_bytes(), 0o644).map_err(
            |e| {
                Refusal::Io(format!(
                "cannot write the policy state file `{}`: {e}; the previous version stays in force",
                self.state_file.display()
            ))
            },
        )?;
        let label = next.label();
        tracing::info!(version = next.version, %label, "policy bundle in force");
        match self.current.write() {
            Ok(mut g) => *g = Arc::new(next),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(next),
        }
        Ok(Installed::Applied { label })
    }

    /// The version in force and the last refusal.
    pub fn status(&self) -> SlotStatus {
        let current = self.current();
        let last_refusal = match self.installing.lock() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        SlotStatus {
            version: current.version,
            label: current.label(),
            content_sha256: current.content_sha256.clone(),
            threshold: current.threshold,
            last_refusal,
        }
    }
}

/// Verifies `bundle`, checks it against the catalogues in `catalogue_dir`, and compiles it.
fn compile(
    bundle: &Bundle,
    in_force: &InForceVersion,
    trust: &FederationTrust,
    checked: Checked,
    catalogue_dir: &Path,
) -> Result<InForce, Refusal> {
    let approved_by = match verify(bundle, in_force, trust, checked)? {
        Verdict::Approved(officers) => officers.into_iter().map(|o| o.identity.name).collect(),
        Verdict::AlreadyInForce => Vec::new(),
    };
    let here = crate::catalogue_digests(catalogue_dir)?;
    if here != bundle.catalogue {
        let mut differences = Vec::new();
        for d in &here {
            match bundle
                .catalogue
                .iter()
                .find(|b| b.department == d.department)
            {
                None => differences.push(format!("`{}` is not in the bundle", d.department)),
                Some(b) if b.sha256 != d.sha256 => {
                    differences.push(format!("`{}` has changed", d.department))
                }
                Some(_) => {}
            }
        }
        for b in &bundle.catalogue {
            if !here.iter().any(|d| d.department == b.department) {
                differences.push(format!("`{}` is missing here", b.department));
            }
        }
        return Err(Refusal::CatalogueMismatch(differences.join(", ")));
    }
    let engine = fedq_policy::load::parse_policy(
        &bundle.policy,
        &format!("bundle version {}", bundle.version),
        catalogue_dir,
    )
    .map_err(|e| Refusal::Policy(e.to_string()))?
    .compile();
    Ok(InForce {
        version: bundle.version,
        threshold: bundle.threshold,
        content_sha256: bundle.content_sha256.clone(),
        approved_by,
        engine,
    })
}
