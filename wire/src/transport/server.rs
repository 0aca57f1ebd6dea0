//! The node's side: [`NodeEndpoint`], a QUIC listener that accepts only coordinators of
//! its federation and serves one request per bidirectional stream under hard limits
//! (frame size, concurrent streams, read and write deadlines, idle time, connections at
//! once, and the bytes one connection may hold in memory: see
//! [`Limits::max_connection_bytes`]); it reloads its certificate and the CRL while running
//! ([`Reloading`]), closing open connections of an identity that was just revoked, and
//! drains on a [`Drain`].
//!
//! It carries bytes to a [`Handler`]; it must never decide what a node may release.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use fedq_certs::jws::CertificateKey;
use fedq_certs::tls::{
    server_config, AuthRefusal, Credentials, FederationTrust, PeerCertificate, Refusal, RefusalLog,
};
use fedq_certs::Role;
use quinn::crypto::rustls::QuicServerConfig;
use quinn::VarInt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;

use super::code::{self, ALPN};
use super::conn::{peer_of, StreamFailure};
use super::error::{classify, TransportError};
use super::files::TlsFiles;
use super::limits::{transport_config, Limits};
use super::reload::{self, ReloadLog, Reloading};
use crate::drain::Drain;
use crate::frame::{self, FrameError, HEADER_LEN};
use crate::message::{NodeRequest, NodeResponse};

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

/// What a node builds from its TLS files.
struct ServerMaterial {
    config: quinn::ServerConfig,
    /// The node's own certificate key, for what it signs outside TLS (session accepts).
    signer: Arc<CertificateKey>,
}

struct ServerState {
    limits: Limits,
    refusals: RefusalLog,
    /// Certificates, CRL and signing key in force; its generation is raised by every
    /// reload, so users of [`TrustView`] notice a new CRL.
    tls: Reloading<Arc<ServerMaterial>>,
    connections: Mutex<HashMap<usize, (quinn::Connection, PeerCertificate)>>,
    identity: fedq_certs::Identity,
}

impl ServerState {
    fn trust(&self) -> Arc<RwLock<FederationTrust>> {
        self.tls.trust()
    }
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
    let crypto = QuicServerConfig::try_from(tls).map_err(TransportError::quic)?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(Arc::new(transport_config(limits, true)?));
    config.migration(false);
    Ok(config)
}

fn server_material(
    creds: &Credentials,
    trust: &FederationTrust,
    files: &TlsFiles,
    limits: &Limits,
    refusals: &RefusalLog,
) -> Result<Arc<ServerMaterial>, TransportError> {
    Ok(Arc::new(ServerMaterial {
        config: quic_server_config(creds, trust, limits, refusals)?,
        signer: signer_of(creds, files)?,
    }))
}

impl NodeEndpoint {
    /// Loads the node's certificate, key, CA and CRL, and binds the UDP socket.
    pub fn bind(addr: SocketAddr, files: TlsFiles, limits: Limits) -> Result<Self, TransportError> {
        let refusals = RefusalLog::default();
        let (tls, (reset_secret, cid_secret, identity)) = Reloading::load_with(
            files.clone(),
            Role::Node,
            ReloadLog::QUIC,
            |creds, trust| {
                let material = server_material(creds, trust, &files, &limits, &refusals)?;
                let secrets = (
                    creds.derive_secret("quic stateless reset"),
                    creds.derive_secret("quic connection id"),
                    creds.identity().clone(),
                );
                Ok::<_, TransportError>((material, secrets))
            },
        )?;
        // A stateless-reset key that survives restarts: after a node restarts, the
        // coordinator's stale connection is reset on its first packet instead of waiting
        // out the idle timeout (RFC 9000 §10.3).
        let reset_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, reset_secret.as_ref());
        let mut endpoint_config = quinn::EndpointConfig::new(Arc::new(reset_key));
        // quinn drops packets whose connection ID fails its keyed check without answering,
        // so the connection-ID key must survive restarts too, or no reset is ever sent.
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
            Some(tls.current().config.clone()),
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(|source| TransportError::Bind { addr, source })?;
        Ok(Self {
            endpoint,
            state: Arc::new(ServerState {
                identity,
                limits,
                refusals,
                tls,
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
        self.state.trust()
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
        let state = &self.state;
        state.tls.reload_if_changed(
            |creds, trust| {
                server_material(
                    creds,
                    trust,
                    state.tls.files(),
                    &state.limits,
                    &state.refusals,
                )
            },
            |material, trust| {
                self.endpoint
                    .set_server_config(Some(material.config.clone()));
                close_revoked(state, trust);
            },
        )
    }

    /// Serves requests until `shutdown` resolves, then stops accepting, lets in-flight
    /// requests finish within the grace period, and closes.
    pub async fn serve(
        self,
        handler: Handler,
        tap: Option<FrameTap>,
        shutdown: impl Future<Output = ()>,
    ) {
        let drain = Drain::new();
        drain
            .run_until(
                shutdown,
                self.serve_until_drained(handler, tap, drain.clone()),
            )
            .await;
    }

    /// Serves requests until `drain` starts, then stops accepting (the reloader stops
    /// too), lets in-flight requests finish within [`Limits::shutdown_grace`], and closes.
    pub async fn serve_until_drained(self, handler: Handler, tap: Option<FrameTap>, drain: Drain) {
        // In-flight request streams, drained on shutdown.
        let tracker = TaskTracker::new();
        let this = Arc::new(self);
        // Weak, so an endpoint whose serve future is dropped is not kept alive by it.
        let reloading = drain.child();
        let reloader = reload::watch(
            Arc::downgrade(&this),
            this.state.limits.reload_interval,
            reloading.clone(),
            ReloadLog::QUIC,
            NodeEndpoint::reload_if_changed,
        );
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
                () = drain.draining() => break,
            }
        }
        // The accept loop also ends when the endpoint closes under it: the reloader stops
        // either way.
        reloading.start();
        let _ = reloader.await;
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
            .trust()
            .read()
            .map(|t| t.is_revoked(serial))
            .unwrap_or(true)
    }

    /// Runs `f` with the trust in force; `None` if it cannot be read.
    pub fn with_trust<R>(&self, f: impl FnOnce(&FederationTrust) -> R) -> Option<R> {
        self.0.trust().read().ok().map(|t| f(&t))
    }

    /// The node's certificate key in force.
    pub fn signer(&self) -> Option<Arc<CertificateKey>> {
        Some(Arc::clone(&self.0.tls.current().signer))
    }

    /// How many reloads took effect so far.
    pub fn generation(&self) -> u64 {
        self.0.tls.generation()
    }

    /// The node's identity.
    pub fn identity(&self) -> &fedq_certs::Identity {
        &self.0.identity
    }
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
        .trust()
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
