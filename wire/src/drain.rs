//! One way for a server to stop: a [`Drain`] signal and one grace period.
//!
//! A server and every background task it starts (certificate reloaders included) hold a
//! clone of one [`Drain`]. When it starts, each stops taking new work — a listener closes,
//! a reloader ends its loop, a kept connection refuses its next request — while work in
//! flight gets at most [`SHUTDOWN_GRACE`] to finish.
//!
//! This module knows nothing of sockets or TLS; it must never block or spawn.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How long graceful shutdown lets in-flight requests and queries finish, for every
/// fedq server (the node's QUIC listener, the coordinator's HTTPS API, the gateway).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The signal that a server is draining: cheap to clone, started once, seen by every clone.
#[derive(Clone, Debug, Default)]
pub struct Drain(CancellationToken);

impl Drain {
    /// A signal not yet started.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts draining (idempotent): every clone's [`Self::draining`] resolves.
    pub fn start(&self) {
        self.0.cancel();
    }

    /// Whether draining has started.
    pub fn is_draining(&self) -> bool {
        self.0.is_cancelled()
    }

    /// A signal that starts with this one but may also be started alone (for a task
    /// that must stop when its server stops, whichever comes first).
    pub fn child(&self) -> Self {
        Self(self.0.child_token())
    }

    /// Resolves once draining has started (at once if it already has).
    pub async fn draining(&self) {
        self.0.cancelled().await;
    }

    /// Runs `server` (which stops on this signal) and starts the signal when `shutdown`
    /// resolves first; returns when `server` does. The bridge from the shutdown future a
    /// binary passes (Ctrl-C, SIGTERM) to the signal a server and its tasks share.
    pub async fn run_until<T>(
        &self,
        shutdown: impl Future<Output = ()>,
        server: impl Future<Output = T>,
    ) -> T {
        tokio::pin!(server);
        tokio::select! {
            done = &mut server => return done,
            () = shutdown => self.start(),
        }
        server.await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_clone_sees_the_start_and_the_server_finishes_its_drain() {
        let drain = Drain::new();
        let seen = drain.clone();
        assert!(!seen.is_draining());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = async {
            seen.draining().await;
            "drained"
        };
        let run = drain.run_until(
            async {
                let _ = rx.await;
            },
            server,
        );
        tx.send(()).unwrap();
        let out = tokio::time::timeout(Duration::from_secs(5), run).await;
        assert_eq!(out, Ok("drained"));
        assert!(drain.is_draining());
    }
}
