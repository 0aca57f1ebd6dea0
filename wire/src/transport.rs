//! QUIC with mutual TLS between coordinator and nodes.
//!
//! - [`NodeEndpoint`]: a node's listener. It accepts only coordinators of its federation,
//!   serves one request per bidirectional stream under hard limits (frame size, concurrent
//!   streams, read and write deadlines, idle time, connections at once, and the bytes one
//!   connection may hold in memory: see [`Limits::max_connection_bytes`]), and reloads
//!   its certificate and the CRL from disk while running, closing open connections of an
//!   identity that was just revoked.
//! - [`NodeClient`] / [`NodeChannel`]: the coordinator's side: one pooled connection per
//!   node, re-established after the node restarts, with authentication failures surfaced
//!   as [`ChannelError::Refused`] and backed off rather than retried in a loop.
//!
//! TLS 1.3's client finishes its handshake before the server has judged the client's
//! certificate, so a refused client learns of it only from the connection being closed
//! with a TLS alert. [`classify`] turns that close into an [`AuthRefusal`], wherever it
//! surfaces (connect, open, write, read).

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime};

use fedq_certs::jws::CertificateKey;
use fedq_certs::tls::{
    client_config, server_config, AuthRefusal, Credentials, FederationTrust, PeerCertificate,
    Refusal, RefusalLog, TlsError, TrustFiles,
};
use fedq_certs::Role;
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{ConnectionError, VarInt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;

use crate::frame::{self, FrameError, HEADER_LEN};
use crate::message::{NodeRequest, NodeResponse};

/// ALPN of the coordinator–node protocol; names the protocol version.
pub const ALPN: &[u8] = b"fedq-node/5";

/// QUIC application error codes fedq uses on streams and connections.
pub mod code {
    /// The request frame could not be decoded.
    pub const FRAME_MALFORMED: u32 = 0x1;
    /// The request frame exceeded the size limit.
    pub const FRAME_TOO_LARGE: u32 = 0x2;
    /// The request frame has another protocol version.
    pub const VERSION_UNSUPPORTED: u32 = 0x3;
    /// The request did not arrive within the stream read deadline.
    pub const STREAM_TIMEOUT: u32 = 0x4;
    /// The node failed to produce an answer.
    pub const INTERNAL: u32 = 0x5;
    /// The answer could not be written within the stream write deadline (the peer does
    /// not read it).
    pub const WRITE_TIMEOUT: u32 = 0x6;
    /// Connection closed because the peer's certificate was revoked.
    pub const CERTIFICATE_REVOKED: u32 = 0x10;
    /// Connection closed because the endpoint is shutting down.
    pub const SHUTDOWN: u32 = 0x11;
}

/// Hard limits of one endpoint.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest frame payload accepted, in bytes.
    pub max_frame_len: usize,
    /// Concurrent request streams a coordinator may open on one connection.
    pub max_concurrent_streams: u32,
    /// Bytes one connection may hold in a node's memory at once: request frames being
    /// read and answers being written (each frame counts its whole declared size, taken
    /// before the payload is allocated), and, separately, as much again unread in QUIC's
    /// receive buffers (the connection's flow-control window) and unacknowledged in its
    /// send buffers. A stream waits for its share within its read or write deadline, so
    /// one connection cannot make a node hold more than about three times this.
    pub max_connection_bytes: usize,
    /// Connections (handshakes included; a handshake must complete within
    /// [`Self::stream_read_timeout`]) a node serves at once; more are refused.
    pub max_connections: usize,
    /// A connection with no traffic for this long is closed.
    pub idle_timeout: Duration,
    /// The coordinator pings this often so a pooled connection stays open.
    pub keep_alive: Duration,
    /// A request frame must arrive within this time of its stream opening.
    pub stream_read_timeout: Duration,
    /// An answer must be taken by the peer within this time of being ready.
    pub stream_write_timeout: Duration,
    /// How often certificate, key and CRL files are checked for changes.
    pub reload_interval: Duration,
    /// After an authentication refusal, how long a channel waits before trying again.
    pub refusal_backoff: Duration,
    /// How long graceful shutdown lets in-flight requests finish.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_len: frame::MAX_FRAME_LEN,
            max_concurrent_streams: 256,
            max_connection_bytes: 4 << 20,
            max_connections: 64,
            idle_timeout: Duration::from_secs(30),
            keep_alive: Duration::from_secs(10),
            stream_read_timeout: Duration::from_secs(5),
            stream_write_timeout: Duration::from_secs(10),
            reload_interval: Duration::from_secs(2),
            refusal_backoff: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

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

    fn load(&self, role: Role) -> Result<(Credentials, FederationTrust), TlsError> {
        let trust = FederationTrust::load(&self.trust)?;
        let creds = Credentials::load(&self.cert, &self.key)?;
        creds.require(role, &trust, &self.cert)?;
        warn_if_stale(&trust);
        Ok((creds, trust))
    }

    /// Loads the files again while `in_force` is in force: a CRL older than the one in
    /// force is refused and that one kept (logged here, once per change of the files,
    /// since callers reload only on a change).
    pub fn reload(
        &self,
        role: Role,
        in_force: &FederationTrust,
    ) -> Result<(Credentials, FederationTrust), TlsError> {
        let (creds, trust) = self.load(role)?;
        let (trust, rollback) = trust.keep_newest_crl(in_force);
        if let Some(rollback) = rollback {
            tracing::error!(error = %rollback, "CRL rollback refused");
        }
        Ok((creds, trust))
    }
}

/// Says once per (re)load that the CRL is stale, so the operator learns it before the
/// first refused peer.
fn warn_if_stale(trust: &FederationTrust) {
    if let Some(stale) = trust.stale_crl(rustls::pki_types::UnixTime::now()) {
        tracing::error!(error = %stale, "new connections are refused");
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

impl TlsPaths {
    /// The grace period, checked: at most [`fedq_certs::tls::MAX_CRL_GRACE`].
    pub fn crl_grace(&self) -> Result<Duration, String> {
        let secs = self.crl_grace_secs.unwrap_or(0);
        let max = fedq_certs::tls::MAX_CRL_GRACE.as_secs();
        if secs > max {
            return Err(format!(
                "`[tls] crl_grace_secs = {secs}` is too long; use 0 to {max} (a CRL past its nextUpdate may be missing revocations; refresh it with `fedq certs crl` instead)"
            ));
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

/// Errors setting up an endpoint.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// Certificates, key or CRL are unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The UDP socket could not be bound.
    #[error("cannot bind UDP {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// quinn refused the TLS configuration.
    #[error("QUIC configuration refused: {0}")]
    Quic(String),
}

/// Why a coordinator's request to a node got no answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// Authentication failed, on our side or the node's.
    #[error("node `{node}`: {side} refused: {reason}")]
    Refused {
        /// The node.
        node: String,
        /// Who refused.
        side: RefusedBy,
        /// Why.
        reason: AuthRefusal,
    },
    /// The node could not be reached or the connection was lost.
    #[error("node `{node}` unavailable: {reason}")]
    Unavailable {
        /// The node.
        node: String,
        /// Why, for the operator.
        reason: String,
    },
    /// No answer within the deadline.
    #[error("node `{node}` did not answer within {after:?}")]
    TimedOut {
        /// The node.
        node: String,
        /// The deadline.
        after: Duration,
    },
    /// The node answered with something that is not a valid frame, or reset the stream.
    #[error("node `{node}`: protocol error: {reason}")]
    Protocol {
        /// The node.
        node: String,
        /// What was wrong.
        reason: String,
    },
}

/// Which side of a handshake refused the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusedBy {
    /// We refused the peer's certificate.
    Us,
    /// The peer refused ours.
    Peer,
}

impl std::fmt::Display for RefusedBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RefusedBy::Us => "we",
            RefusedBy::Peer => "the node",
        })
    }
}

/// If a connection error is an authentication refusal, says who refused and why.
pub fn classify(error: &ConnectionError) -> Option<(RefusedBy, AuthRefusal)> {
    let (side, code) = match error {
        ConnectionError::TransportError(e) => (RefusedBy::Us, u64::from(e.code)),
        ConnectionError::ConnectionClosed(c) => (RefusedBy::Peer, u64::from(c.error_code)),
        ConnectionError::ApplicationClosed(c)
            if c.error_code == VarInt::from_u32(code::CERTIFICATE_REVOKED) =>
        {
            return Some((RefusedBy::Peer, AuthRefusal::Revoked));
        }
        _ => return None,
    };
    if !(0x100..0x200).contains(&code) {
        return None;
    }
    let alert = u8::try_from(code - 0x100).ok()?;
    AuthRefusal::from_alert(alert).map(|r| (side, r))
}

fn transport_config(
    limits: &Limits,
    accept_streams: bool,
) -> Result<quinn::TransportConfig, TransportError> {
    let mut t = quinn::TransportConfig::default();
    let idle = quinn::IdleTimeout::try_from(limits.idle_timeout)
        .map_err(|e| TransportError::Quic(e.to_string()))?;
    t.max_idle_timeout(Some(idle));
    t.max_concurrent_uni_streams(VarInt::from_u32(0));
    t.max_concurrent_bidi_streams(VarInt::from_u32(if accept_streams {
        limits.max_concurrent_streams
    } else {
        0
    }));
    if accept_streams {
        // quinn's defaults let a peer park up to 1.25 MB per stream and an unbounded
        // amount per connection in our receive buffers, and buffer 10 MB of answers.
        let budget = limits.max_connection_bytes.max(1);
        let window = |n: usize| VarInt::from_u64(n as u64).unwrap_or(VarInt::MAX);
        t.receive_window(window(budget));
        t.stream_receive_window(window(
            limits.max_frame_len.saturating_add(HEADER_LEN).min(budget),
        ));
        t.send_window(budget as u64);
    } else {
        t.keep_alive_interval(Some(limits.keep_alive));
    }
    Ok(t)
}

fn peer_of(conn: &quinn::Connection) -> Option<PeerCertificate> {
    let any = conn.peer_identity()?;
    let chain = any
        .downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
        .ok()?;
    PeerCertificate::from_chain(&chain).ok()
}

/// Handles one decoded request from an authenticated coordinator.
pub type Handler = Arc<
    dyn Fn(PeerCertificate, NodeRequest) -> Pin<Box<dyn Future<Output = NodeResponse> + Send>>
        + Send
        + Sync,
>;

/// Sees what crosses the wire at a node, both ways (for tests that check it): every
/// request payload as read from its QUIC stream, and every encoded response frame just
/// before it is written.
pub type FrameTap = Arc<dyn Fn(&[u8]) + Send + Sync>;

struct ServerState {
    files: TlsFiles,
    limits: Limits,
    refusals: RefusalLog,
    trust: Arc<RwLock<FederationTrust>>,
    /// The node's own certificate key, for what it signs outside TLS (session accepts).
    signer: RwLock<Option<Arc<CertificateKey>>>,
    /// Raised by every reload, so users of [`TrustView`] notice a new CRL.
    generation: AtomicU64,
    stamps: Mutex<FileStamps>,
    connections: Mutex<HashMap<usize, (quinn::Connection, PeerCertificate)>>,
    identity: fedq_certs::Identity,
}

/// A node's QUIC listener.
pub struct NodeEndpoint {
    endpoint: quinn::Endpoint,
    state: Arc<ServerState>,
}

impl std::fmt::Debug for NodeEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeEndpoint")
            .field("identity", &self.state.identity)
            .finish_non_exhaustive()
    }
}

fn quic_server_config(
    creds: &Credentials,
    trust: &FederationTrust,
    limits: &Limits,
    refusals: &RefusalLog,
) -> Result<quinn::ServerConfig, TransportError> {
    let tls = server_config(creds, trust, &[Role::Coordinator], &[ALPN], refusals)?;
    let crypto =
        QuicServerConfig::try_from(tls).map_err(|e| TransportError::Quic(e.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(Arc::new(transport_config(limits, true)?));
    config.migration(false);
    Ok(config)
}

impl NodeEndpoint {
    /// Loads the node's certificate, key, CA and CRL, and binds the UDP socket.
    pub fn bind(addr: SocketAddr, files: TlsFiles, limits: Limits) -> Result<Self, TransportError> {
        let (creds, trust) = files.load(Role::Node)?;
        let refusals = RefusalLog::default();
        let config = quic_server_config(&creds, &trust, &limits, &refusals)?;
        // A stateless-reset key that survives restarts: after a node restarts, the
        // coordinator's stale connection is reset on its first packet instead of waiting
        // out the idle timeout (RFC 9000 §10.3).
        let reset_secret = creds.derive_secret("quic stateless reset");
        let reset_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, reset_secret.as_ref());
        let mut endpoint_config = quinn::EndpointConfig::new(Arc::new(reset_key));
        // quinn drops packets whose connection ID fails its keyed check without answering,
        // so the connection-ID key must survive restarts too, or no reset is ever sent.
        let cid_secret = creds.derive_secret("quic connection id");
        // Our copies are wiped when dropped; quinn keeps its own (see the threat model).
        let mut cid_bytes = zeroize::Zeroizing::new([0u8; 8]);
        cid_bytes.copy_from_slice(cid_secret.get(..8).unwrap_or(&[0u8; 8]));
        let cid_key = u64::from_le_bytes(*cid_bytes);
        endpoint_config.cid_generator(move || {
            Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key))
        });
        let socket = std::net::UdpSocket::bind(addr)
            .map_err(|source| TransportError::Bind { addr, source })?;
        let endpoint = quinn::Endpoint::new(
            endpoint_config,
            Some(config),
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(|source| TransportError::Bind { addr, source })?;
        let stamps = FileStamps::read(&files);
        let signer = signer_of(&creds, &files)?;
        Ok(Self {
            endpoint,
            state: Arc::new(ServerState {
                identity: creds.identity().clone(),
                files,
                limits,
                refusals,
                trust: Arc::new(RwLock::new(trust)),
                signer: RwLock::new(Some(signer)),
                generation: AtomicU64::new(0),
                stamps: Mutex::new(stamps),
                connections: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// Refusals this endpoint made.
    pub fn refusals(&self) -> RefusalLog {
        self.state.refusals.clone()
    }

    /// The node's identity from its certificate.
    pub fn identity(&self) -> &fedq_certs::Identity {
        &self.state.identity
    }

    /// The CA and CRL in force, kept current by the endpoint's reloads: for what the node
    /// verifies itself beyond TLS (consent tokens).
    pub fn trust(&self) -> Arc<RwLock<FederationTrust>> {
        Arc::clone(&self.state.trust)
    }

    /// The trust and signing key in force, kept current by reloads, for the checks a node
    /// makes outside TLS (requesters' session grants and proofs).
    pub fn trust_view(&self) -> TrustView {
        TrustView(Arc::clone(&self.state))
    }

    /// Re-reads certificate, key, CA and CRL if any changed; closes open connections whose
    /// certificate is now revoked. Returns whether anything was reloaded. A reload that
    /// fails leaves the previous configuration in force.
    pub fn reload_if_changed(&self) -> Result<bool, TransportError> {
        let now = FileStamps::read(&self.state.files);
        {
            let stamps = self.state.stamps.lock().map_err(|_| poisoned())?;
            if *stamps == now {
                return Ok(false);
            }
        }
        let in_force = self.state.trust.read().map_err(|_| poisoned())?.clone();
        let (creds, trust) = self.state.files.reload(Role::Node, &in_force)?;
        let config = quic_server_config(&creds, &trust, &self.state.limits, &self.state.refusals)?;
        let signer = signer_of(&creds, &self.state.files)?;
        self.endpoint.set_server_config(Some(config));
        close_revoked(&self.state, &trust);
        *self.state.trust.write().map_err(|_| poisoned())? = trust;
        *self.state.signer.write().map_err(|_| poisoned())? = Some(signer);
        self.state.generation.fetch_add(1, Ordering::Release);
        *self.state.stamps.lock().map_err(|_| poisoned())? = now;
        tracing::info!("reloaded certificates and CRL");
        Ok(true)
    }

    /// Serves requests until `shutdown` resolves, then stops accepting, lets in-flight
    /// requests finish within the grace period, and closes.
    pub async fn serve(
        self,
        handler: Handler,
        tap: Option<FrameTap>,
        shutdown: impl Future<Output = ()>,
    ) {
        // In-flight request streams, drained on shutdown.
        let tracker = TaskTracker::new();
        let this = Arc::new(self);
        let reloader = {
            // Weak, so an endpoint whose serve future is dropped is not kept alive by it.
            let this = Arc::downgrade(&this);
            let interval = this_interval(&this);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let Some(this) = this.upgrade() else { break };
                    if let Err(e) = this.reload_if_changed() {
                        tracing::error!(error = %e, "reload failed; previous certificates stay in force");
                    }
                }
            })
        };
        tokio::pin!(shutdown);
        let slots = Arc::new(Semaphore::new(this.state.limits.max_connections));
        loop {
            tokio::select! {
                incoming = this.endpoint.accept() => {
                    let Some(incoming) = incoming else { break };
                    // A handshake costs memory and CPU before the peer is known: past the
                    // limit, refuse at once (CONNECTION_REFUSED) rather than queue.
                    let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                        tracing::warn!(
                            limit = this.state.limits.max_connections,
                            "connection refused: the node already serves its limit of connections"
                        );
                        incoming.refuse();
                        continue;
                    };
                    let state = Arc::clone(&this.state);
                    let handler = Arc::clone(&handler);
                    let tap = tap.clone();
                    let streams = tracker.clone();
                    // Connections are not tracked: an idle pooled connection must not hold
                    // up shutdown. Each request stream is.
                    tokio::spawn(async move {
                        handle_connection(incoming, state, handler, tap, streams).await;
                        drop(slot);
                    });
                }
                () = &mut shutdown => break,
            }
        }
        reloader.abort();
        this.endpoint.set_server_config(None);
        tracker.close();
        if tokio::time::timeout(this.state.limits.shutdown_grace, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("shutdown grace period over; closing remaining connections");
        }
        this.endpoint
            .close(VarInt::from_u32(code::SHUTDOWN), b"node shutting down");
        let _ = tokio::time::timeout(Duration::from_secs(1), this.endpoint.wait_idle()).await;
    }
}

fn signer_of(creds: &Credentials, files: &TlsFiles) -> Result<Arc<CertificateKey>, TransportError> {
    Ok(Arc::new(CertificateKey::from_credentials(
        creds,
        &files.key.display().to_string(),
    )?))
}

/// A node endpoint's CA, CRL and certificate key as the latest reload left them.
#[derive(Clone)]
pub struct TrustView(Arc<ServerState>);

impl std::fmt::Debug for TrustView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustView")
            .field("identity", &self.0.identity)
            .finish_non_exhaustive()
    }
}

impl TrustView {
    /// Whether the CRL in force lists `serial`; `true` if it cannot be read (fail closed).
    pub fn is_revoked(&self, serial: &str) -> bool {
        self.0
            .trust
            .read()
            .map(|t| t.is_revoked(serial))
            .unwrap_or(true)
    }

    /// Runs `f` with the trust in force; `None` if it cannot be read.
    pub fn with_trust<R>(&self, f: impl FnOnce(&FederationTrust) -> R) -> Option<R> {
        self.0.trust.read().ok().map(|t| f(&t))
    }

    /// The node's certificate key in force.
    pub fn signer(&self) -> Option<Arc<CertificateKey>> {
        self.0.signer.read().ok().and_then(|s| s.clone())
    }

    /// How many reloads took effect so far.
    pub fn generation(&self) -> u64 {
        self.0.generation.load(Ordering::Acquire)
    }

    /// The node's identity.
    pub fn identity(&self) -> &fedq_certs::Identity {
        &self.0.identity
    }
}

fn this_interval(endpoint: &Weak<NodeEndpoint>) -> Duration {
    endpoint
        .upgrade()
        .map_or(Duration::from_secs(2), |e| e.state.limits.reload_interval)
}

fn poisoned() -> TransportError {
    TransportError::Quic("internal lock poisoned".into())
}

fn close_revoked(state: &ServerState, trust: &FederationTrust) {
    let Ok(conns) = state.connections.lock() else {
        return;
    };
    for (conn, peer) in conns.values() {
        if trust.is_revoked(&peer.serial) {
            tracing::warn!(peer = %peer.identity, "closing connection of revoked certificate");
            conn.close(
                VarInt::from_u32(code::CERTIFICATE_REVOKED),
                b"certificate revoked",
            );
        }
    }
}

async fn handle_connection(
    incoming: quinn::Incoming,
    state: Arc<ServerState>,
    handler: Handler,
    tap: Option<FrameTap>,
    tracker: TaskTracker,
) {
    // A handshake holds one of the node's connection slots: one that does not complete
    // within the read deadline (a peer that sends an Initial and goes quiet) gives it up.
    let handshake = tokio::time::timeout(state.limits.stream_read_timeout, incoming).await;
    let Ok(handshake) = handshake else {
        tracing::debug!("handshake not completed within the deadline; dropped");
        return;
    };
    let conn = match handshake {
        Ok(conn) => conn,
        Err(e) => {
            // The verifier records every refusal it makes; rustls itself refuses a client
            // that sent no certificate, so that one is recorded here.
            if let Some((_, AuthRefusal::NoCertificate)) = classify(&e) {
                state.refusals.record(Refusal {
                    claimed: None,
                    reason: AuthRefusal::NoCertificate,
                });
            } else {
                tracing::debug!(error = %e, "handshake failed");
            }
            return;
        }
    };
    let Some(peer) = peer_of(&conn) else {
        conn.close(VarInt::from_u32(code::INTERNAL), b"no peer certificate");
        return;
    };
    let revoked = state
        .trust
        .read()
        .map(|t| t.is_revoked(&peer.serial))
        .unwrap_or(true);
    if revoked {
        conn.close(
            VarInt::from_u32(code::CERTIFICATE_REVOKED),
            b"certificate revoked",
        );
        return;
    }
    let id = conn.stable_id();
    if let Ok(mut conns) = state.connections.lock() {
        conns.insert(id, (conn.clone(), peer.clone()));
    }
    tracing::debug!(peer = %peer.identity, "coordinator connected");
    let budget = Budget::new(state.limits.max_connection_bytes);
    while let Ok((mut send, mut recv)) = conn.accept_bi().await {
        if tracker.is_closed() {
            // Draining: the requests in flight finish, a new one on a kept connection is
            // refused at once (it would otherwise stretch the drain under load), with a
            // code the coordinator reports as "shutting down".
            let code = VarInt::from_u32(code::SHUTDOWN);
            let _ = send.reset(code);
            let _ = recv.stop(code);
            continue;
        }
        let handler = Arc::clone(&handler);
        let tap = tap.clone();
        let peer = peer.clone();
        let limits = state.limits.clone();
        let budget = budget.clone();
        tracker.spawn(async move {
            handle_stream(send, recv, peer, handler, tap, &limits, &budget).await;
        });
    }
    if let Ok(mut conns) = state.connections.lock() {
        conns.remove(&id);
    }
}

/// The bytes one connection may hold in memory at once (request frames being read,
/// answers being written), shared by its streams.
#[derive(Clone)]
struct Budget {
    permits: Arc<Semaphore>,
    total: usize,
}

impl Budget {
    fn new(total: usize) -> Self {
        // `take` asks for at most `total` permits in one u32.
        let total = total.clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
        Self {
            permits: Arc::new(Semaphore::new(total)),
            total,
        }
    }

    /// Waits until `bytes` (at most the whole budget) are free and takes them.
    async fn take(&self, bytes: usize) -> Option<OwnedSemaphorePermit> {
        let n = u32::try_from(bytes.clamp(1, self.total)).unwrap_or(u32::MAX);
        Arc::clone(&self.permits).acquire_many_owned(n).await.ok()
    }
}

/// Reads one request frame, taking its declared size from the connection's budget
/// before allocating the payload.
async fn read_request(
    recv: &mut quinn::RecvStream,
    max_len: usize,
    budget: &Budget,
) -> Result<(Vec<u8>, OwnedSemaphorePermit), StreamFailure> {
    let mut header = [0u8; HEADER_LEN];
    recv.read_exact(&mut header)
        .await
        .map_err(StreamFailure::Read)?;
    let len = frame::parse_header(&header, max_len).map_err(StreamFailure::Frame)?;
    let permit = budget
        .take(HEADER_LEN + len)
        .await
        .ok_or(StreamFailure::Closed)?;
    let mut payload = vec![0u8; len];
    recv.read_exact(&mut payload)
        .await
        .map_err(StreamFailure::Read)?;
    Ok((payload, permit))
}

/// Reads one frame from a stream, without allocating more than the declared (and
/// limit-checked) payload.
async fn read_frame(
    recv: &mut quinn::RecvStream,
    max_len: usize,
) -> Result<Vec<u8>, StreamFailure> {
    let mut header = [0u8; HEADER_LEN];
    recv.read_exact(&mut header)
        .await
        .map_err(StreamFailure::Read)?;
    let len = frame::parse_header(&header, max_len).map_err(StreamFailure::Frame)?;
    let mut payload = vec![0u8; len];
    recv.read_exact(&mut payload)
        .await
        .map_err(StreamFailure::Read)?;
    Ok(payload)
}

#[derive(Debug)]
enum StreamFailure {
    Read(quinn::ReadExactError),
    Frame(FrameError),
    /// The connection's budget was closed (never happens while it serves).
    Closed,
}

async fn handle_stream(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    peer: PeerCertificate,
    handler: Handler,
    tap: Option<FrameTap>,
    limits: &Limits,
    budget: &Budget,
) {
    let refuse = |send: &mut quinn::SendStream, recv: &mut quinn::RecvStream, code: u32| {
        let code = VarInt::from_u32(code);
        let _ = send.reset(code);
        let _ = recv.stop(code);
    };
    // The wait for the connection's budget counts against the read deadline: a peer
    // that fills the budget with stalled frames only delays its own other streams.
    let read = tokio::time::timeout(
        limits.stream_read_timeout,
        read_request(&mut recv, limits.max_frame_len, budget),
    )
    .await;
    let request = match read {
        Err(_) => return refuse(&mut send, &mut recv, code::STREAM_TIMEOUT),
        Ok(Err(StreamFailure::Frame(e))) => {
            tracing::debug!(error = %e, "refused request frame");
            return refuse(&mut send, &mut recv, e.stream_code());
        }
        Ok(Err(StreamFailure::Read(e))) => {
            tracing::debug!(error = %e, "request stream ended early");
            return refuse(&mut send, &mut recv, code::FRAME_MALFORMED);
        }
        Ok(Err(StreamFailure::Closed)) => return refuse(&mut send, &mut recv, code::INTERNAL),
        Ok(Ok((payload, permit))) => {
            if let Some(tap) = &tap {
                tap(&payload);
            }
            let decoded = frame::decode_payload::<NodeRequest>(&payload);
            drop(payload);
            drop(permit);
            match decoded {
                Ok(request) => request,
                Err(e) => {
                    tracing::debug!(error = %e, "refused request payload");
                    return refuse(&mut send, &mut recv, e.stream_code());
                }
            }
        }
    };
    let response = handler(peer, request).await;
    let bytes = match encode_answer(&response, limits.max_frame_len) {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::error!(error = %e, "could not encode response");
            return refuse(&mut send, &mut recv, code::INTERNAL);
        }
    };
    if let Some(tap) = &tap {
        tap(&bytes);
    }
    let write = tokio::time::timeout(limits.stream_write_timeout, async {
        let _permit = budget.take(bytes.len()).await?;
        send.write_all(&bytes).await.ok()?;
        send.finish().ok()
    })
    .await;
    if write.is_err() {
        tracing::debug!("answer not taken within the write deadline; stream reset");
        let _ = send.reset(VarInt::from_u32(code::WRITE_TIMEOUT));
    }
}

/// Encodes an answer; one the peer would refuse as too large is replaced by a `Failed`
/// answer saying so (the node's handler should have refused it before releasing it).
fn encode_answer(response: &NodeResponse, max_len: usize) -> Result<Vec<u8>, FrameError> {
    let bytes = frame::encode(response)?;
    if bytes.len() <= max_len.saturating_add(HEADER_LEN) {
        return Ok(bytes);
    }
    tracing::error!(
        bytes = bytes.len(),
        limit = max_len,
        "answer over the frame limit withheld"
    );
    frame::encode(&NodeResponse::Failed {
        code: crate::message::FailureCode::Unavailable,
        message: format!(
            "the answer would be {} bytes, over the {max_len}-byte frame limit, and was withheld",
            bytes.len()
        ),
    })
}

struct ClientState {
    files: TlsFiles,
    limits: Limits,
    refusals: RefusalLog,
    config: RwLock<quinn::ClientConfig>,
    trust: Arc<RwLock<FederationTrust>>,
    stamps: Mutex<FileStamps>,
    channels: Mutex<Vec<Weak<ChannelInner>>>,
    identity: fedq_certs::Identity,
}

fn quic_client_config(
    creds: &Credentials,
    trust: &FederationTrust,
    limits: &Limits,
    refusals: &RefusalLog,
) -> Result<quinn::ClientConfig, TransportError> {
    let tls = client_config(creds, trust, Role::Node, &[ALPN], refusals)?;
    let crypto =
        QuicClientConfig::try_from(tls).map_err(|e| TransportError::Quic(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(Arc::new(transport_config(limits, false)?));
    Ok(config)
}

/// The coordinator's QUIC client: one endpoint, one pooled connection per node.
#[derive(Clone)]
pub struct NodeClient {
    endpoint: quinn::Endpoint,
    state: Arc<ClientState>,
}

impl std::fmt::Debug for NodeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeClient")
            .field("identity", &self.state.identity)
            .finish_non_exhaustive()
    }
}

impl NodeClient {
    /// Loads the coordinator's certificate, key, CA and CRL, and binds a UDP socket on
    /// `bind` (e.g. `127.0.0.1:0`).
    pub fn new(bind: SocketAddr, files: TlsFiles, limits: Limits) -> Result<Self, TransportError> {
        let (creds, trust) = files.load(Role::Coordinator)?;
        let refusals = RefusalLog::default();
        let config = quic_client_config(&creds, &trust, &limits, &refusals)?;
        let endpoint = quinn::Endpoint::client(bind)
            .map_err(|source| TransportError::Bind { addr: bind, source })?;
        let stamps = FileStamps::read(&files);
        Ok(Self {
            endpoint,
            state: Arc::new(ClientState {
                identity: creds.identity().clone(),
                files,
                limits,
                refusals,
                config: RwLock::new(config),
                trust: Arc::new(RwLock::new(trust)),
                stamps: Mutex::new(stamps),
                channels: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The CA and CRL in force, kept current by the client's reloads: for what the
    /// coordinator verifies itself beyond TLS (consent tokens).
    pub fn trust(&self) -> Arc<RwLock<FederationTrust>> {
        Arc::clone(&self.state.trust)
    }

    /// Refusals this client made (nodes whose certificates it did not accept).
    pub fn refusals(&self) -> RefusalLog {
        self.state.refusals.clone()
    }

    /// A channel to the node `name` at `addr`. The node's certificate must carry that name.
    pub fn channel(&self, name: &str, addr: SocketAddr) -> NodeChannel {
        let inner = Arc::new(ChannelInner {
            name: name.to_owned(),
            addr,
            endpoint: self.endpoint.clone(),
            client: Arc::clone(&self.state),
            conn: tokio::sync::Mutex::new(None),
            refused_until: Mutex::new(None),
        });
        if let Ok(mut channels) = self.state.channels.lock() {
            channels.retain(|c| c.strong_count() > 0);
            channels.push(Arc::downgrade(&inner));
        }
        NodeChannel { inner }
    }

    /// Re-reads certificate, key, CA and CRL if any changed: new connections use them, and
    /// pooled connections to a node whose certificate is now revoked are closed.
    pub fn reload_if_changed(&self) -> Result<bool, TransportError> {
        let state = &self.state;
        let now = FileStamps::read(&state.files);
        if *state.stamps.lock().map_err(|_| poisoned())? == now {
            return Ok(false);
        }
        let in_force = state.trust.read().map_err(|_| poisoned())?.clone();
        let (creds, trust) = state.files.reload(Role::Coordinator, &in_force)?;
        let config = quic_client_config(&creds, &trust, &state.limits, &state.refusals)?;
        *state.config.write().map_err(|_| poisoned())? = config;
        let channels: Vec<Arc<ChannelInner>> = state
            .channels
            .lock()
            .map_err(|_| poisoned())?
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        for channel in channels {
            if let Ok(guard) = channel.conn.try_lock() {
                if let Some(conn) = guard.as_ref() {
                    if peer_of(conn).is_some_and(|p| trust.is_revoked(&p.serial)) {
                        tracing::warn!(node = %channel.name, "closing connection to node with revoked certificate");
                        conn.close(
                            VarInt::from_u32(code::CERTIFICATE_REVOKED),
                            b"certificate revoked",
                        );
                    }
                }
            }
        }
        *state.trust.write().map_err(|_| poisoned())? = trust;
        *state.stamps.lock().map_err(|_| poisoned())? = now;
        tracing::info!("reloaded certificates and CRL");
        Ok(true)
    }

    /// Spawns the task that calls [`Self::reload_if_changed`] every reload interval.
    pub fn spawn_reloader(&self) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(this.state.limits.reload_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = this.reload_if_changed() {
                    tracing::error!(error = %e, "reload failed; previous certificates stay in force");
                }
            }
        })
    }

    /// Closes every connection.
    pub fn close(&self) {
        self.endpoint.close(
            VarInt::from_u32(code::SHUTDOWN),
            b"coordinator shutting down",
        );
    }
}

struct ChannelInner {
    name: String,
    addr: SocketAddr,
    endpoint: quinn::Endpoint,
    client: Arc<ClientState>,
    conn: tokio::sync::Mutex<Option<quinn::Connection>>,
    refused_until: Mutex<Option<(Instant, ChannelError)>>,
}

/// A pooled connection to one node.
#[derive(Clone)]
pub struct NodeChannel {
    inner: Arc<ChannelInner>,
}

impl std::fmt::Debug for NodeChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeChannel")
            .field("node", &self.inner.name)
            .field("addr", &self.inner.addr)
            .finish()
    }
}

enum Exchange {
    Connection(ConnectionError),
    Failed(ChannelError),
}

impl NodeChannel {
    /// The node's name.
    pub fn node(&self) -> &str {
        &self.inner.name
    }

    /// Sends one request and waits for its answer, within `deadline` overall (connecting
    /// included). A pooled connection found dead (the node restarted) is replaced once.
    pub async fn request(
        &self,
        request: &NodeRequest,
        deadline: Duration,
    ) -> Result<NodeResponse, ChannelError> {
        let bytes = frame::encode(request).map_err(|e| self.protocol(e.to_string()))?;
        let until = tokio::time::Instant::now() + deadline;
        let mut retried = false;
        loop {
            // No handshake before the deadline: the node is not there (a stopped node's
            // port gives no QUIC-visible error). No answer on an established connection:
            // the node is there but did not answer in time.
            let conn = match tokio::time::timeout_at(until, self.connection()).await {
                Ok(conn) => conn?,
                Err(_) => {
                    return Err(ChannelError::Unavailable {
                        node: self.inner.name.clone(),
                        reason: format!(
                            "no connection could be established within {} ms",
                            deadline.as_millis()
                        ),
                    })
                }
            };
            let exchanged = match tokio::time::timeout_at(until, self.exchange(&conn, &bytes)).await
            {
                Ok(exchanged) => exchanged,
                Err(_) => {
                    return Err(ChannelError::TimedOut {
                        node: self.inner.name.clone(),
                        after: deadline,
                    })
                }
            };
            match exchanged {
                Ok(response) => return Ok(response),
                Err(Exchange::Failed(e)) => return Err(e),
                Err(Exchange::Connection(e)) => {
                    self.forget(&conn).await;
                    let stale = matches!(
                        e,
                        ConnectionError::Reset
                            | ConnectionError::TimedOut
                            | ConnectionError::ApplicationClosed(_)
                    ) && classify(&e).is_none();
                    if stale && !retried {
                        retried = true;
                        continue;
                    }
                    return Err(self.connection_error(&e));
                }
            }
        }
    }

    /// Asks the node for a [`NodeRequest::Ping`] over a connection of its own, made now
    /// (not the pooled one, which may be stale, and not behind the pool's lock, so probes
    /// may overlap), within `timeout`. On an answer, that connection becomes the pooled
    /// one. Returns how long the probe took.
    pub async fn probe(&self, timeout: Duration) -> Result<Duration, ChannelError> {
        let started = Instant::now();
        let bytes = frame::encode(&NodeRequest::Ping).map_err(|e| self.protocol(e.to_string()))?;
        let attempt = async {
            let conn = self
                .start_connection()?
                .await
                .map_err(|e| self.connection_error(&e))?;
            match self.exchange(&conn, &bytes).await {
                Ok(NodeResponse::Pong { .. }) => Ok(conn),
                Ok(_) => Err(self.protocol("the node did not answer a ping with pong".into())),
                Err(Exchange::Failed(e)) => Err(e),
                Err(Exchange::Connection(e)) => Err(self.connection_error(&e)),
            }
        };
        let conn = tokio::time::timeout(timeout, attempt).await.map_err(|_| {
            ChannelError::TimedOut {
                node: self.inner.name.clone(),
                after: timeout,
            }
        })??;
        // The old connection is not closed here: a request may still be on it (one that
        // started before the probe). It closes when its last handle goes.
        drop(self.inner.conn.lock().await.replace(conn));
        Ok(started.elapsed())
    }

    /// Forgets the pooled connection (the node stopped answering on it), so the next
    /// request connects afresh instead of waiting on a connection whose retransmissions
    /// are backed off. It is not closed here: a request still on it (a lookup a draining
    /// node is finishing) gets its answer or its deadline; the connection closes when the
    /// last of them drops its handle.
    pub async fn drop_connection(&self) {
        drop(self.inner.conn.lock().await.take());
    }

    /// Starts a new connection to the node with the client's current configuration (which
    /// a certificate reload may have replaced).
    fn start_connection(&self) -> Result<quinn::Connecting, ChannelError> {
        let config = self
            .inner
            .client
            .config
            .read()
            .map_err(|_| self.protocol("internal lock poisoned".into()))?
            .clone();
        self.inner
            .endpoint
            .connect_with(config, self.inner.addr, &self.inner.name)
            .map_err(|e| ChannelError::Unavailable {
                node: self.inner.name.clone(),
                reason: e.to_string(),
            })
    }

    /// The node refused the request because it is draining for a shutdown.
    fn shutting_down(&self) -> ChannelError {
        ChannelError::Unavailable {
            node: self.inner.name.clone(),
            reason: "it is shutting down".into(),
        }
    }

    fn protocol(&self, reason: String) -> ChannelError {
        ChannelError::Protocol {
            node: self.inner.name.clone(),
            reason,
        }
    }

    fn connection_error(&self, e: &ConnectionError) -> ChannelError {
        let node = self.inner.name.clone();
        match classify(e) {
            Some((side, mut reason)) => {
                if side == RefusedBy::Us {
                    // Our verifier recorded exactly why; the alert only says roughly.
                    if let Some(last) = self.inner.client.refusals.snapshot().pop() {
                        reason = last.reason;
                    }
                }
                let err = ChannelError::Refused { node, side, reason };
                // Do not hammer a node that refuses us: fail fast until the back-off ends
                // (a reload of our certificate or the CRL is the usual fix).
                if let Ok(mut until) = self.inner.refused_until.lock() {
                    *until = Some((
                        Instant::now() + self.inner.client.limits.refusal_backoff,
                        err.clone(),
                    ));
                }
                err
            }
            // Closed on our side: the pool replaced or dropped the connection (a probe
            // took over, or the node was marked down) while this request was on it.
            None if matches!(e, ConnectionError::LocallyClosed) => ChannelError::Unavailable {
                node,
                reason: "the coordinator closed the connection this request was on (the node stopped answering on it)".into(),
            },
            None => ChannelError::Unavailable {
                node,
                reason: e.to_string(),
            },
        }
    }

    async fn forget(&self, conn: &quinn::Connection) {
        let mut guard = self.inner.conn.lock().await;
        if guard.as_ref().map(|c| c.stable_id()) == Some(conn.stable_id()) {
            *guard = None;
        }
    }

    async fn connection(&self) -> Result<quinn::Connection, ChannelError> {
        let mut guard = self.inner.conn.lock().await;
        if let Some(conn) = guard.as_ref() {
            if conn.close_reason().is_none() {
                return Ok(conn.clone());
            }
            *guard = None;
        }
        if let Ok(mut until) = self.inner.refused_until.lock() {
            match until.as_ref() {
                Some((t, err)) if Instant::now() < *t => return Err(err.clone()),
                Some(_) => *until = None,
                None => {}
            }
        }
        let connecting = self.start_connection()?;
        let conn = connecting.await.map_err(|e| self.connection_error(&e))?;
        *guard = Some(conn.clone());
        Ok(conn)
    }

    async fn exchange(
        &self,
        conn: &quinn::Connection,
        bytes: &[u8],
    ) -> Result<NodeResponse, Exchange> {
        let (mut send, mut recv) = conn.open_bi().await.map_err(Exchange::Connection)?;
        send.write_all(bytes).await.map_err(|e| match e {
            quinn::WriteError::ConnectionLost(e) => Exchange::Connection(e),
            quinn::WriteError::Stopped(stopped) if stopped == VarInt::from_u32(code::SHUTDOWN) => {
                Exchange::Failed(self.shutting_down())
            }
            other => Exchange::Failed(self.protocol(format!("request not sent: {other}"))),
        })?;
        let _ = send.finish();
        let max = self.inner.client.limits.max_frame_len;
        match read_frame(&mut recv, max).await {
            Ok(payload) => frame::decode_payload(&payload)
                .map_err(|e| Exchange::Failed(self.protocol(e.to_string()))),
            Err(StreamFailure::Frame(e)) => Err(Exchange::Failed(self.protocol(e.to_string()))),
            Err(StreamFailure::Read(quinn::ReadExactError::ReadError(
                quinn::ReadError::ConnectionLost(e),
            ))) => Err(Exchange::Connection(e)),
            Err(StreamFailure::Read(quinn::ReadExactError::ReadError(
                quinn::ReadError::Reset(reset),
            ))) if reset == VarInt::from_u32(code::SHUTDOWN) => {
                Err(Exchange::Failed(self.shutting_down()))
            }
            Err(StreamFailure::Read(quinn::ReadExactError::ReadError(
                quinn::ReadError::Reset(code),
            ))) => Err(Exchange::Failed(
                self.protocol(format!("node reset the stream with code {code}")),
            )),
            Err(StreamFailure::Read(e)) => Err(Exchange::Failed(self.protocol(e.to_string()))),
            Err(StreamFailure::Closed) => {
                Err(Exchange::Failed(self.protocol("stream closed".into())))
            }
        }
    }
}
