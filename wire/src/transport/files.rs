//! Where a process's TLS identity comes from: the `[tls]` table of a config
//! ([`TlsPaths`]), the files it names ([`TlsFiles`]), one load of them in the order every
//! server uses, and what they looked like at that load ([`FileStamps`]).
//!
//! Reads files only; it must never hold state between loads (that is
//! [`super::reload::Reloading`]'s job) or open a socket.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use fedq_certs::tls::{Credentials, FederationTrust, TlsError, TrustFiles};
use fedq_certs::Role;

/// The files a process's TLS identity comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The federation CA and CRL.
    pub trust: TrustFiles,
    /// Our certificate.
    pub cert: PathBuf,
    /// Our private key.
    pub key: PathBuf,
}

impl TlsFiles {
    /// `DIR/ca.crt`, `DIR/crl.pem`, `DIR/NAME.crt`, `DIR/NAME.key`.
    pub fn in_dir(dir: &Path, name: &str) -> Self {
        Self {
            trust: TrustFiles::in_dir(dir),
            cert: fedq_certs::pki::cert_path(dir, name),
            key: fedq_certs::pki::key_path(dir, name),
        }
    }

    fn watched(&self) -> [&Path; 4] {
        [&self.trust.ca, &self.trust.crl, &self.cert, &self.key]
    }

    /// Loads the CA and CRL, then our certificate and key, which must be a `role`
    /// certificate of that CA. On a reload (`in_force` given) a CRL older than the one in
    /// force is refused and that one kept, logged as `CRL rollback refused` (once per
    /// change of the files, since callers reload only on a change). A CRL past its
    /// `nextUpdate` (and grace) is logged with `refused` (what it makes the process
    /// refuse), so the operator learns it before the first refused peer.
    pub fn load(
        &self,
        role: Role,
        in_force: Option<&FederationTrust>,
        refused: &str,
    ) -> Result<(Credentials, FederationTrust), TlsError> {
        let mut trust = FederationTrust::load(&self.trust)?;
        if let Some(in_force) = in_force {
            let (kept, rollback) = trust.keep_newest_crl(in_force);
            if let Some(rollback) = rollback {
                tracing::error!(error = %rollback, "CRL rollback refused");
            }
            trust = kept;
        }
        if let Some(stale) = trust.stale_crl(rustls::pki_types::UnixTime::now()) {
            tracing::error!(error = %stale, "{refused}");
        }
        let creds = Credentials::load(&self.cert, &self.key)?;
        creds.require(role, &trust, &self.cert)?;
        Ok((creds, trust))
    }
}

/// The `[tls]` table of a node or coordinator config: paths relative to the config file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsPaths {
    /// The federation CA certificate.
    pub ca: PathBuf,
    /// The CRL.
    pub crl: PathBuf,
    /// This process's certificate.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
    /// Seconds past the CRL's `nextUpdate` during which new connections are still
    /// accepted under it (default 0: a stale CRL refuses them at once).
    #[serde(default)]
    pub crl_grace_secs: Option<u64>,
}

/// A `[tls] crl_grace_secs` longer than [`fedq_certs::tls::MAX_CRL_GRACE`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`[tls] crl_grace_secs = {secs}` is too long; use 0 to {max} (a CRL past its nextUpdate may be missing revocations; refresh it with `fedq certs crl` instead)")]
pub struct CrlGraceTooLong {
    /// The configured seconds.
    pub secs: u64,
    /// The most allowed.
    pub max: u64,
}

impl TlsPaths {
    /// The grace period, checked: at most [`fedq_certs::tls::MAX_CRL_GRACE`].
    pub fn crl_grace(&self) -> Result<Duration, CrlGraceTooLong> {
        let secs = self.crl_grace_secs.unwrap_or(0);
        let max = fedq_certs::tls::MAX_CRL_GRACE.as_secs();
        if secs > max {
            return Err(CrlGraceTooLong { secs, max });
        }
        Ok(Duration::from_secs(secs))
    }

    /// The files, with relative paths taken from `base` (the config file's directory).
    /// The grace period is capped as [`Self::crl_grace`] checks it.
    pub fn resolve(&self, base: &Path) -> TlsFiles {
        TlsFiles {
            trust: TrustFiles {
                ca: base.join(&self.ca),
                crl: base.join(&self.crl),
                crl_grace: self.crl_grace().unwrap_or(fedq_certs::tls::MAX_CRL_GRACE),
                // The config's process sets where it remembers the CRL (its state dir).
                crl_state: None,
            },
            cert: base.join(&self.cert),
            key: base.join(&self.key),
        }
    }
}

/// What the files looked like at the last (re)load: a change to any of them triggers a
/// reload.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileStamps(Vec<Option<(SystemTime, u64)>>);

impl FileStamps {
    /// Modification time and size of each of the files, as now.
    pub fn read(files: &TlsFiles) -> Self {
        Self(
            files
                .watched()
                .iter()
                .map(|p| {
                    std::fs::metadata(p)
                        .ok()
                        .and_then(|m| Some((m.modified().ok()?, m.len())))
                })
                .collect(),
        )
    }
}
