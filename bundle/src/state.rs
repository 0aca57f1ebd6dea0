//! The policy in force in one process, and how a new bundle replaces it.
//!
//! [`PolicySlot::current`] hands out an `Arc` of the version in force: a query takes it
//! once when it starts and decides under it to the end, while [`PolicySlot::install`]
//! swaps in a new version for the queries that start after.
//!
//! Every accepted bundle is kept (atomically, before the swap) in the process's state
//! directory, `bundle-<version>.toml`, never removed. A restart replays that chain from the
//! set-up policy: each bundle must be newer than the one before it and signed by the M its
//! predecessor set (approvals are not undone by a later expiry or revocation). So a forged
//! or edited file cannot put a policy in force without M officers' keys, and an audit log
//! that records a newer version than the chain holds stops the start (a deleted or stale
//! state directory is not a way back to an older policy).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use fedq_certs::tls::TrustFiles;
use fedq_certs::FederationTrust;
use fedq_policy::Engine;

use crate::{verify, Bundle, Checked, InForceVersion, Refusal, Verdict};

/// A config's policy settings, checked and defaulted by [`settings`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicySettings {
    /// M while the set-up policy is in force (`policy_threshold`, default 2).
    pub threshold: u32,
    /// Where accepted bundles are kept (`policy_state`, default [`default_state_dir`]).
    pub state_dir: PathBuf,
    /// The set-up roster (`policy_officers`): key fingerprints of the officers whose
    /// approvals count while the set-up policy is in force. Empty (or absent): none do.
    pub officers: Vec<String>,
}

/// A config's `policy_threshold`, `policy_state` (already resolved against the config's
/// directory) and `policy_officers`, checked and defaulted.
pub fn settings(
    threshold: Option<u32>,
    state_dir: Option<PathBuf>,
    officers: Option<&[String]>,
    audit: &Path,
    name: &str,
) -> Result<PolicySettings, crate::SettingsError> {
    let threshold = crate::check_threshold(threshold.unwrap_or(crate::DEFAULT_THRESHOLD))?;
    let officers = crate::check_officers(officers.unwrap_or_default(), threshold)?;
    Ok(PolicySettings {
        threshold,
        state_dir: state_dir.unwrap_or_else(|| default_state_dir(audit, name)),
        officers,
    })
}

/// Where a process keeps the bundles it accepted unless its config says otherwise: the
/// directory `NAME-policy/` beside its audit log.
pub fn default_state_dir(audit: &Path, name: &str) -> PathBuf {
    audit
        .parent()
        .unwrap_or(Path::new("."))
        .join(format!("{name}-policy"))
}

fn chain_file(dir: &Path, version: u64) -> PathBuf {
    dir.join(format!("bundle-{version:020}.toml"))
}

/// What made a policy state unusable: `message` says it (naming the error), `source` is
/// the error itself.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StateCause {
    message: String,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl StateCause {
    fn new(message: String, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            message,
            source: Box::new(source),
        }
    }
}

/// The chain of accepted bundles in `dir`, oldest first (none if `dir` does not exist).
fn read_chain(dir: &Path) -> Result<Vec<(PathBuf, String)>, StateCause> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StateCause::new(format!("cannot read it: {e}"), e)),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("bundle-") && n.ends_with(".toml"))
        })
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            std::fs::read_to_string(&p)
                .map(|t| (p.clone(), t))
                .map_err(|e| StateCause::new(format!("cannot read `{}`: {e}", p.display()), e))
        })
        .collect()
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
    /// The officers who approved it, `name (serial)` (empty for the set-up policy).
    pub approved_by: Vec<String>,
    /// Key fingerprints that may approve the next bundle (empty: nobody).
    pub officers: Vec<String>,
    /// The compiled policy.
    pub engine: Engine,
}

impl InForce {
    /// What a `policy-installed` audit entry records of it.
    pub fn audit_outcome(&self) -> String {
        serde_json::json!({
            "version": self.version,
            "content_sha256": self.content_sha256,
            "approved_by": self.approved_by,
        })
        .to_string()
    }

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
            officers: self.officers.clone(),
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
        /// Its version.
        version: u64,
        /// Its content hash.
        content_sha256: String,
        /// The officers whose signatures counted: `name (serial)`.
        approved_by: Vec<String>,
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
    /// The chain of accepted bundles does not replay.
    #[error("the policy state `{path}` is not usable: {reason}; restore the state directory from its backup")]
    State {
        /// The state directory or file.
        path: String,
        /// Why: the error behind it (the file system's, a bundle's refusal, the settings')
        /// as the source.
        #[source]
        reason: StateCause,
    },
    /// The audit log records a newer version than the state holds.
    #[error("the audit log records policy bundle {recorded} in force, but the policy state `{path}` holds only version {held}; restore the state directory from its backup (a lost state must not roll the policy back)")]
    BehindAudit {
        /// The state directory.
        path: String,
        /// The version the audit log last recorded as installed.
        recorded: u64,
        /// The version the chain replays to.
        held: u64,
    },
}

/// The policy in force in one process.
#[derive(Debug)]
pub struct PolicySlot {
    current: RwLock<Arc<InForce>>,
    /// Serializes installs; queries and status never take it.
    installing: Mutex<()>,
    /// Why the last bundle offered was refused.
    last_refusal: Mutex<Option<String>>,
    state_dir: PathBuf,
    catalogue_dir: PathBuf,
    trust: TrustFiles,
    /// The CA and CRL the last install checked signatures against: a CRL older than its
    /// one is refused (a revoked officer must not count again because `crl.pem` was put
    /// back).
    trust_in_force: Mutex<Option<FederationTrust>>,
}

impl PolicySlot {
    /// Opens the slot: the set-up policy `setup_policy` as version 0 with threshold
    /// `setup_threshold` and the roster `setup_officers` pinned by the operator (key
    /// fingerprints; empty: no approval counts), then the chain of bundles in `state_dir`
    /// replayed on top of it. `floor` is the last version the process's audit log records
    /// as installed: a chain that ends below it is refused.
    pub fn open(
        setup_policy: &Path,
        setup_threshold: u32,
        setup_officers: &[String],
        state_dir: PathBuf,
        trust: TrustFiles,
        floor: Option<u64>,
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
        let threshold = crate::check_threshold(setup_threshold).map_err(|e| SlotError::State {
            path: setup_policy.display().to_string(),
            reason: StateCause::new(e.to_string(), e),
        })?;
        let mut in_force = InForce {
            version: 0,
            threshold,
            content_sha256: setup.policy().content_hash.clone(),
            approved_by: Vec::new(),
            officers: setup_officers.to_vec(),
            engine: setup,
        };
        let state_error = |reason: StateCause| SlotError::State {
            path: state_dir.display().to_string(),
            reason,
        };
        let chain = read_chain(&state_dir).map_err(&state_error)?;
        if !chain.is_empty() {
            let trust_now = FederationTrust::load(&trust)?;
            let mut previous = in_force.as_version();
            let mut last = None;
            let mut before_last = previous.clone();
            for (path, text) in &chain {
                let failed = |e: Refusal| {
                    state_error(StateCause::new(format!("`{}`: {e}", path.display()), e))
                };
                let bundle = Bundle::parse(text).map_err(failed)?;
                match verify(&bundle, &previous, &trust_now, Checked::AlreadyApproved)
                    .map_err(failed)?
                {
                    Verdict::Approved(_) => {}
                    Verdict::AlreadyInForce => {
                        return Err(failed(Refusal::VersionConflict(bundle.version)))
                    }
                }
                before_last = previous.clone();
                previous = InForceVersion {
                    version: bundle.version,
                    threshold: bundle.threshold,
                    content_sha256: bundle.content_sha256.clone(),
                    officers: previous.roster_after(&bundle),
                };
                last = Some((path, bundle));
            }
            if let Some((path, bundle)) = last {
                // Only the newest must fit today's catalogues and compile.
                in_force = compile(
                    &bundle,
                    &before_last,
                    &trust_now,
                    Checked::AlreadyApproved,
                    &catalogue_dir,
                )
                .map_err(|e| {
                    state_error(StateCause::new(format!("`{}`: {e}", path.display()), e))
                })?;
            }
        }
        if let Some(recorded) = floor {
            if recorded > in_force.version {
                return Err(SlotError::BehindAudit {
                    path: state_dir.display().to_string(),
                    recorded,
                    held: in_force.version,
                });
            }
        }
        if in_force.officers.is_empty() {
            tracing::warn!(
                "no officer roster is pinned (`policy_officers` in the config): every policy bundle will be refused"
            );
        }
        Ok(Self {
            current: RwLock::new(Arc::new(in_force)),
            installing: Mutex::new(()),
            last_refusal: Mutex::new(None),
            state_dir,
            catalogue_dir,
            trust,
            trust_in_force: Mutex::new(None),
        })
    }

    /// The version in force; hold the `Arc` for the whole of one query.
    pub fn current(&self) -> Arc<InForce> {
        match self.current.read() {
            Ok(g) => Arc::clone(&g),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// The audit retention period of the policy in force (`audit_retention_days`) and the
    /// label of that version, as the audit log's retention schedule asks for it; `None`: the
    /// policy keeps every entry's body.
    pub fn audit_retention(&self) -> Option<(u32, String)> {
        let in_force = self.current();
        in_force
            .engine
            .policy()
            .audit_retention_days
            .map(|days| (days, in_force.label()))
    }

    /// Verifies `text` as a bundle against the version in force and, if it may take
    /// effect, writes it to the state file and puts it in force. On refusal nothing
    /// changes and the reason is kept for [`PolicySlot::status`].
    pub fn install(&self, text: &str) -> Result<Installed, Refusal> {
        let _serialized = match self.installing.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let outcome = self.try_install(text);
        let mut last = match self.last_refusal.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        match &outcome {
            Ok(_) => *last = None,
            Err(e) => *last = Some(e.to_string()),
        }
        outcome
    }

    fn try_install(&self, text: &str) -> Result<Installed, Refusal> {
        let bundle = Bundle::parse(text)?;
        let loaded = FederationTrust::load(&self.trust).map_err(|e| {
            Refusal::Io(format!(
                "cannot load the CA and CRL to check signatures: {e}"
            ))
        })?;
        let trust = {
            let mut kept = match self.trust_in_force.lock() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            let trust = match kept.as_ref() {
                Some(in_force) => {
                    let (trust, rollback) = loaded.keep_newest_crl(in_force);
                    if let Some(rollback) = rollback {
                        tracing::error!(error = %rollback, "CRL rollback refused for officers' signatures");
                    }
                    trust
                }
                None => loaded,
            };
            *kept = Some(trust.clone());
            trust
        };
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
        let file = chain_file(&self.state_dir, next.version);
        fedq_certs::fsutil::create_private_dir(&self.state_dir)
            .and_then(|()| {
                fedq_certs::fsutil::write_atomic(
                    &file,
                    text.as_bytes(),
                    fedq_certs::fsutil::PRIVATE_MODE,
                )
            })
            .map_err(|e| {
                Refusal::Io(format!(
                    "cannot write `{}`: {e}; the previous version stays in force",
                    file.display()
                ))
            })?;
        let label = next.label();
        let applied = Installed::Applied {
            label: label.clone(),
            version: next.version,
            content_sha256: next.content_sha256.clone(),
            approved_by: next.approved_by.clone(),
        };
        tracing::info!(version = next.version, %label, "policy bundle in force");
        match self.current.write() {
            Ok(mut g) => *g = Arc::new(next),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(next),
        }
        Ok(applied)
    }

    /// The version in force and the last refusal.
    pub fn status(&self) -> SlotStatus {
        let current = self.current();
        let last_refusal = match self.last_refusal.lock() {
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
        Verdict::Approved(officers) => officers
            .into_iter()
            .map(|o| format!("{} ({})", o.identity.name, o.serial))
            .collect(),
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
        officers: in_force.roster_after(bundle),
        engine,
    })
}
