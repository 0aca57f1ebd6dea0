//! One reloading holder for TLS material, used by every fedq server: the node's QUIC
//! listener, the coordinator's QUIC client and its HTTPS API.
//!
//! A [`Reloading`] holds what its server built from its [`TlsFiles`] (a QUIC or rustls
//! config, a signing key) and the CA and CRL in force. [`Reloading::reload_if_changed`]
//! loads the files again only when one of them changed, keeps the remembered CRL when an
//! older one is put back (`CRL rollback refused`), logs a stale CRL once per change, and
//! leaves the previous material in force when the new one fails. [`watch`] calls it on a
//! timer until the server drains.
//!
//! Must never decide what a peer may do beyond what the trust in force says, and never
//! keep running after its server's [`Drain`] has started.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::Duration;

use fedq_certs::tls::{Credentials, FederationTrust, TlsError};
use fedq_certs::Role;

use super::files::{FileStamps, TlsFiles};
use crate::drain::Drain;

/// What a server logs about its reloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReloadLog {
    /// Logged with a CRL past its `nextUpdate` (and grace): what the server now refuses.
    pub refused: &'static str,
    /// Logged with an error when a reload fails.
    pub failed: &'static str,
    /// Logged when a reload took effect, if anything.
    pub reloaded: Option<&'static str>,
}

impl ReloadLog {
    /// The node's QUIC listener and the coordinator's QUIC client.
    pub const QUIC: Self = Self {
        refused: "new connections are refused",
        failed: "reload failed; previous certificates stay in force",
        reloaded: Some("reloaded certificates and CRL"),
    };
    /// The coordinator's HTTPS API.
    pub const HTTPS: Self = Self {
        refused: "new HTTPS connections are refused",
        failed: "certificate reload failed; previous ones stay in force",
        reloaded: None,
    };
}

/// TLS material built from a process's files, and the CA and CRL in force, reloaded when
/// the files change.
pub struct Reloading<T> {
    files: TlsFiles,
    role: Role,
    log: ReloadLog,
    stamps: Mutex<FileStamps>,
    trust: Arc<RwLock<FederationTrust>>,
    current: RwLock<T>,
    generation: AtomicU64,
}

impl<T> std::fmt::Debug for Reloading<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloading")
            .field("files", &self.files)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

// Every write below replaces a whole value, so a lock poisoned by a panic elsewhere still
// holds a consistent one: it is used as it is.
fn read<T: Clone>(lock: &RwLock<T>) -> T {
    lock.read().unwrap_or_else(PoisonError::into_inner).clone()
}

fn write<T>(lock: &RwLock<T>, value: T) {
    *lock.write().unwrap_or_else(PoisonError::into_inner) = value;
}

impl<T: Clone> Reloading<T> {
    /// Loads the files (our certificate must be a `role` certificate of the CA) and
    /// builds the material from them with `build`.
    pub fn load<E: From<TlsError>>(
        files: TlsFiles,
        role: Role,
        log: ReloadLog,
        build: impl FnOnce(&Credentials, &FederationTrust) -> Result<T, E>,
    ) -> Result<Self, E> {
        let (this, ()) = Self::load_with(files, role, log, |creds, trust| {
            build(creds, trust).map(|t| (t, ()))
        })?;
        Ok(this)
    }

    /// [`Self::load`], where `build` also returns what the caller needs from the first
    /// load only (a key derived from the credentials, the identity they carry).
    pub fn load_with<X, E: From<TlsError>>(
        files: TlsFiles,
        role: Role,
        log: ReloadLog,
        build: impl FnOnce(&Credentials, &FederationTrust) -> Result<(T, X), E>,
    ) -> Result<(Self, X), E> {
        // Stamped before the load: a file changed during it is loaded again.
        let stamps = FileStamps::read(&files);
        let (creds, trust) = files.load(role, None, log.refused)?;
        let (current, extra) = build(&creds, &trust)?;
        let this = Self {
            files,
            role,
            log,
            stamps: Mutex::new(stamps),
            trust: Arc::new(RwLock::new(trust)),
            current: RwLock::new(current),
            generation: AtomicU64::new(0),
        };
        Ok((this, extra))
    }

    /// The files it loads.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// What it logs.
    pub fn log(&self) -> ReloadLog {
        self.log
    }

    /// The material in force.
    pub fn current(&self) -> T {
        read(&self.current)
    }

    /// The CA and CRL in force, kept current by reloads.
    pub fn trust(&self) -> Arc<RwLock<FederationTrust>> {
        Arc::clone(&self.trust)
    }

    /// How many reloads took effect so far.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Loads the files again if any changed since the last load that took effect, builds
    /// the material with `build`, lets `install` act on the new material and trust (close
    /// connections of certificates now revoked, hand a config to a socket) just before
    /// they are put in force, and says whether anything was reloaded. A load or build that
    /// fails leaves the previous material in force, and is tried again at the next call.
    pub fn reload_if_changed<E: From<TlsError>>(
        &self,
        build: impl FnOnce(&Credentials, &FederationTrust) -> Result<T, E>,
        install: impl FnOnce(&T, &FederationTrust),
    ) -> Result<bool, E> {
        let now = FileStamps::read(&self.files);
        if *self.stamps.lock().unwrap_or_else(PoisonError::into_inner) == now {
            return Ok(false);
        }
        let in_force = read(&self.trust);
        let (creds, trust) = self
            .files
            .load(self.role, Some(&in_force), self.log.refused)?;
        let material = build(&creds, &trust)?;
        install(&material, &trust);
        write(&self.trust, trust);
        write(&self.current, material);
        self.generation.fetch_add(1, Ordering::Release);
        *self.stamps.lock().unwrap_or_else(PoisonError::into_inner) = now;
        if let Some(reloaded) = self.log.reloaded {
            tracing::info!("{reloaded}");
        }
        Ok(true)
    }
}

/// Spawns the task that calls `reload` on `owner` every `every` until `drain` starts or
/// the owner is dropped (held weakly, so the task never keeps its server alive). A failed
/// reload is logged with `log.failed`; the previous material stays in force.
pub fn watch<O, E>(
    owner: Weak<O>,
    every: Duration,
    drain: Drain,
    log: ReloadLog,
    reload: impl Fn(&O) -> Result<bool, E> + Send + 'static,
) -> tokio::task::JoinHandle<()>
where
    O: Send + Sync + 'static,
    E: std::fmt::Display,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = drain.draining() => break,
            }
            let Some(owner) = owner.upgrade() else { break };
            if let Err(e) = reload(&owner) {
                tracing::error!(error = %e, "{}", log.failed);
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use fedq_certs::pki::{CertificateAuthority, IssueOptions};

    fn name_of(creds: &Credentials) -> String {
        creds.identity().name.clone()
    }

    #[test]
    fn it_reloads_only_on_a_change_and_a_failed_reload_keeps_what_is_in_force() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("pki");
        let ca = CertificateAuthority::init(&dir, "changsha", false).unwrap();
        ca.issue(Role::Node, "court", &IssueOptions::default())
            .unwrap();
        let files = TlsFiles::in_dir(&dir, "court");
        let builds = std::cell::Cell::new(0);
        let build = |creds: &Credentials, _: &FederationTrust| {
            builds.set(builds.get() + 1);
            Ok::<_, TlsError>(name_of(creds))
        };
        let tls = Reloading::load(files.clone(), Role::Node, ReloadLog::QUIC, build).unwrap();
        assert_eq!(tls.current(), "court");
        assert!(!tls.reload_if_changed(build, |_, _| {}).unwrap());
        assert_eq!((builds.get(), tls.generation()), (1, 0));

        // A revocation changes the CRL: reloaded, the new trust seen by `install` first.
        ca.issue(Role::Node, "tax", &IssueOptions::default())
            .unwrap();
        let tax = ca.revoke("tax").unwrap();
        let mut saw = None;
        assert!(tls
            .reload_if_changed(build, |_, trust| saw = Some(trust.is_revoked(&tax.serial)))
            .unwrap());
        assert_eq!(saw, Some(true));
        assert_eq!(tls.generation(), 1);
        assert!(tls.trust().read().unwrap().is_revoked(&tax.serial));

        // A key file that holds no key: the reload fails, what was in force stays, and the
        // next call tries again.
        std::fs::write(&files.key, b"not a key").unwrap();
        assert!(tls.reload_if_changed(build, |_, _| {}).is_err());
        assert!(tls.reload_if_changed(build, |_, _| {}).is_err());
        assert_eq!((tls.current().as_str(), tls.generation()), ("court", 1));
    }

    #[tokio::test]
    async fn the_watch_stops_when_its_server_drains() {
        let drain = Drain::new();
        let owner = Arc::new(());
        let task = watch(
            Arc::downgrade(&owner),
            Duration::from_millis(10),
            drain.clone(),
            ReloadLog::QUIC,
            |()| Ok::<_, TlsError>(false),
        );
        drain.start();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
    }
}
