//! The coordinator's side: [`NodeClient`], one QUIC endpoint with one pooled
//! connection ([`NodeChannel`]) per node, re-established after the node restarts, with
//! authentication failures surfaced as [`ChannelError::Refused`] and backed off rather
//! than retried in a loop; its certificates and the CRL reload while it runs
//! ([`Reloading`]) until [`NodeClient::close`].
//!
//! It carries requests and answers; it must never judge what a node answered beyond
//! checking that it is a valid frame.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

use fedq_certs::tls::{client_config, Credentials, FederationTrust, RefusalLog};
use fedq_certs::Role;
use quinn::crypto::rustls::QuicClientConfig;
use quinn::{ConnectionError, VarInt};

use super::code::{self, ALPN};
use super::conn::{peer_of, read_frame, StreamFailure};
use super::error::{classify, ChannelError, ProtocolError, RefusedBy, TransportError, Unreachable};
use super::files::TlsFiles;
use super::limits::{transport_config, Limits};
use super::reload::{self, ReloadLog, Reloading};
use crate::drain::Drain;
use crate::frame;
use crate::message::{NodeRequest, NodeResponse};

struct ClientState {
    limits: Limits,
    refusals: RefusalLog,
    /// The QUIC client config new connections use, and the CA and CRL in force.
    tls: Reloading<quinn::ClientConfig>,
    channels: Mutex<Vec<Weak<ChannelInner>>>,
    identity: fedq_certs::Identity,
    /// Started by [`NodeClient::close`]: the reloader stops.
    drain: Drain,
}

impl ClientState {
    fn reload_if_changed(&self) -> Result<bool, TransportError> {
        self.tls.reload_if_changed(
            |creds, trust| quic_client_config(creds, trust, &self.limits, &self.refusals),
            |_, trust| self.close_revoked(trust),
        )
    }

    /// Closes pooled connections to a node whose certificate `trust` revokes.
    fn close_revoked(&self, trust: &FederationTrust) {
        let channels: Vec<Arc<ChannelInner>> = self
            .channels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
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
    }
}

fn quic_client_config(
    creds: &Credentials,
    trust: &FederationTrust,
    limits: &Limits,
    refusals: &RefusalLog,
) -> Result<quinn::ClientConfig, TransportError> {
    let tls = client_config(creds, trust, Role::Node, &[ALPN], refusals)?;
    let crypto = QuicClientConfig::try_from(tls).map_err(TransportError::quic)?;
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
        let refusals = RefusalLog::default();
        let (tls, identity) =
            Reloading::load_with(files, Role::Coordinator, ReloadLog::QUIC, |creds, trust| {
                let config = quic_client_config(creds, trust, &limits, &refusals)?;
                Ok::<_, TransportError>((config, creds.identity().clone()))
            })?;
        let endpoint = quinn::Endpoint::client(bind)
            .map_err(|source| TransportError::Bind { addr: bind, source })?;
        Ok(Self {
            endpoint,
            state: Arc::new(ClientState {
                identity,
                limits,
                refusals,
                tls,
                channels: Mutex::new(Vec::new()),
                drain: Drain::new(),
            }),
        })
    }

    /// The CA and CRL in force, kept current by the client's reloads: for what the
    /// coordinator verifies itself beyond TLS (consent tokens).
    pub fn trust(&self) -> Arc<RwLock<FederationTrust>> {
        self.state.tls.trust()
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
        self.state.reload_if_changed()
    }

    /// Spawns the task that calls [`Self::reload_if_changed`] every reload interval, until
    /// [`Self::close`] (or the client's last handle is dropped).
    pub fn spawn_reloader(&self) -> tokio::task::JoinHandle<()> {
        reload::watch(
            Arc::downgrade(&self.state),
            self.state.limits.reload_interval,
            self.state.drain.clone(),
            ReloadLog::QUIC,
            ClientState::reload_if_changed,
        )
    }

    /// Closes every connection and stops the reloader.
    pub fn close(&self) {
        self.state.drain.start();
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
        let bytes = frame::encode(request).map_err(|e| self.protocol(e.into()))?;
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
                        reason: Unreachable::NoConnection(deadline),
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
        let bytes = frame::encode(&NodeRequest::Ping).map_err(|e| self.protocol(e.into()))?;
        let attempt = async {
            let conn = self
                .start_connection()?
                .await
                .map_err(|e| self.connection_error(&e))?;
            match self.exchange(&conn, &bytes).await {
                Ok(NodeResponse::Pong { .. }) => Ok(conn),
                Ok(_) => Err(self.protocol(ProtocolError::NoPong)),
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
        let config = self.inner.client.tls.current();
        self.inner
            .endpoint
            .connect_with(config, self.inner.addr, &self.inner.name)
            .map_err(|e| ChannelError::Unavailable {
                node: self.inner.name.clone(),
                reason: e.into(),
            })
    }

    /// The node refused the request because it is draining for a shutdown.
    fn shutting_down(&self) -> ChannelError {
        ChannelError::Unavailable {
            node: self.inner.name.clone(),
            reason: Unreachable::ShuttingDown,
        }
    }

    fn protocol(&self, reason: ProtocolError) -> ChannelError {
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
                reason: Unreachable::ClosedHere,
            },
            None => ChannelError::Unavailable {
                node,
                reason: e.clone().into(),
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
            other => Exchange::Failed(self.protocol(ProtocolError::NotSent(other))),
        })?;
        let _ = send.finish();
        let max = self.inner.client.limits.max_frame_len;
        match read_frame(&mut recv, max).await {
            Ok(payload) => frame::decode_payload(&payload)
                .map_err(|e| Exchange::Failed(self.protocol(e.into()))),
            Err(StreamFailure::Frame(e)) => Err(Exchange::Failed(self.protocol(e.into()))),
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
            ))) => Err(Exchange::Failed(self.protocol(ProtocolError::Reset(code)))),
            Err(StreamFailure::Read(e)) => Err(Exchange::Failed(self.protocol(e.into()))),
            Err(StreamFailure::Closed) => {
                Err(Exchange::Failed(self.protocol(ProtocolError::Closed)))
            }
        }
    }
}
