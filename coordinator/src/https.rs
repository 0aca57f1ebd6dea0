//! The requester API over HTTPS with client certificates, and the local ops listener.
//!
//! TLS is terminated here with rustls (ring): TLS 1.3, a requester, officer or coordinator
//! certificate of this federation required (requesters query; officers and the coordinator
//! publish policy bundles), CRL honoured, and re-checked on every request so a certificate
//! revoked while its connection is open is refused at the next CRL reload. The identity
//! from the certificate is the only identity a query runs under.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Extension, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use fedq_certs::tls::{server_config, Credentials, FederationTrust, PeerCertificate, RefusalLog};
use fedq_certs::Role;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use crate::service::Coordinator;

/// The OpenAPI document of the requester API (kept in `docs/api/openapi.json`).
pub const OPENAPI: &str = include_str!("../../docs/api/openapi.json");

/// Errors starting the API.
#[derive(Debug, thiserror::Error)]
pub enum HttpsError {
    /// Certificates.
    #[error(transparent)]
    Tls(#[from] fedq_certs::TlsError),
    /// Socket.
    #[error("cannot listen on {addr}: {reason}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
}

#[derive(Clone)]
struct AppState {
    coordinator: Arc<Coordinator>,
    trust: Arc<RwLock<FederationTrust>>,
}

fn json(status: u16, body: serde_json::Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Refuses a request whose certificate was revoked after its connection was opened, or
/// whose role may not make it.
fn refused(
    state: &AppState,
    peer: &PeerCertificate,
    roles: &[Role],
    what: &str,
) -> Option<Response> {
    let revoked = state
        .trust
        .read()
        .map(|t| t.is_revoked(&peer.serial))
        .unwrap_or(true);
    if revoked {
        return Some(json(
            403,
            serde_json::json!({ "error": "your certificate has been revoked" }),
        ));
    }
    if !roles.contains(&peer.identity.role) {
        return Some(json(
            403,
            serde_json::json!({ "error": format!("a {} certificate cannot {what}", peer.identity.role) }),
        ));
    }
    None
}

/// What a non-requester is told at `/v1/query`.
const QUERY_ROLE: &str = "query; use a requester certificate";

/// A query from a requester (the router has checked the role and revocation).
async fn post_query(
    State(state): State<AppState>,
    Extension(peer): Extension<PeerCertificate>,
    body: Bytes,
) -> Response {
    let reply = state.coordinator.query(&peer.identity, &body).await;
    json(reply.status, reply.body)
}

async fn post_bundle(
    State(state): State<AppState>,
    Extension(peer): Extension<PeerCertificate>,
    body: Bytes,
) -> Response {
    if let Some(r) = refused(
        &state,
        &peer,
        &[Role::Officer, Role::Coordinator],
        "publish a policy bundle; use an officer's or the coordinator's certificate",
    ) {
        return r;
    }
    let reply = state.coordinator.publish(&peer.identity, &body).await;
    json(reply.status, reply.body)
}

async fn policy_status(
    State(state): State<AppState>,
    Extension(peer): Extension<PeerCertificate>,
) -> Response {
    if let Some(r) = refused(
        &state,
        &peer,
        &[Role::Officer, Role::Coordinator],
        "read the policy status; use an officer's certificate",
    ) {
        return r;
    }
    let reply = state.coordinator.policy_status().await;
    json(reply.status, reply.body)
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn health(State(state): State<AppState>) -> Response {
    json(
        200,
        serde_json::json!({ "status": "ok", "policy_version": state.coordinator.policy().label() }),
    )
}

/// A body axum could not read (over the hard cap): refused, and registered like any other
/// refusal.
async fn unreadable(
    state: AppState,
    peer: PeerCertificate,
    err: axum::extract::rejection::BytesRejection,
) -> Response {
    let reason = format!("request body refused: {}", err.body_text());
    let reply = state
        .coordinator
        .reject(&peer.identity, err.status().as_u16(), reason)
        .await;
    json(reply.status, reply.body)
}

/// Bodies are read up to this hard cap so that an oversized query still gets a clean 413
/// from the coordinator (which registers it); past it, axum refuses the body.
const HARD_BODY_CAP: usize = 1 << 20;

/// The requester API router (tests call it through real TLS; see [`serve`]).
fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/v1/query",
            post(
                |s: State<AppState>,
                 p: Extension<PeerCertificate>,
                 body: Result<Bytes, axum::extract::rejection::BytesRejection>| async move {
                    // Who may query is settled before the body is judged, so another
                    // role's oversized body is not registered as a requester's refusal.
                    if let Some(r) = refused(&s.0, &p.0, &[Role::Requester], QUERY_ROLE) {
                        return r;
                    }
                    match body {
                        Ok(b) => post_query(s, p, b).await,
                        Err(e) => unreadable(s.0, p.0, e).await,
                    }
                },
            ),
        )
        .route("/v1/policy/bundles", post(post_bundle))
        .route("/v1/policy/status", get(policy_status))
        .route("/v1/openapi.json", get(openapi))
        .route("/health", get(health))
        .layer(DefaultBodyLimit::max(HARD_BODY_CAP))
        .with_state(state)
}

/// The running requester API.
pub struct Api {
    listener: TcpListener,
    acceptor: Arc<RwLock<tokio_rustls::TlsAcceptor>>,
    state: AppState,
    refusals: RefusalLog,
    ops: Option<TcpListener>,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api").finish_non_exhaustive()
    }
}

fn acceptor(
    files: &fedq_wire::transport::TlsFiles,
    refusals: &RefusalLog,
) -> Result<(tokio_rustls::TlsAcceptor, FederationTrust), HttpsError> {
    let trust = FederationTrust::load(&files.trust)?;
    let creds = Credentials::load(&files.cert, &files.key)?;
    creds.require(Role::Coordinator, &trust, &files.cert)?;
    let config = server_config(
        &creds,
        &trust,
        &[Role::Requester, Role::Officer, Role::Coordinator],
        &[b"h2", b"http/1.1"],
        refusals,
    )?;
    Ok((tokio_rustls::TlsAcceptor::from(Arc::new(config)), trust))
}

impl Api {
    /// Loads certificates and binds the HTTPS (and ops) listeners.
    pub async fn bind(
        coordinator: Arc<Coordinator>,
        metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    ) -> Result<Self, HttpsError> {
        let refusals = RefusalLog::default();
        let config = coordinator.config().clone();
        let (acceptor, trust) = acceptor(&config.tls, &refusals)?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| HttpsError::Bind {
                addr: config.listen,
                reason: e.to_string(),
            })?;
        let ops = match config.ops_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|e| HttpsError::Bind {
                        addr,
                        reason: e.to_string(),
                    })?,
            ),
            None => None,
        };
        Ok(Self {
            listener,
            acceptor: Arc::new(RwLock::new(acceptor)),
            state: AppState {
                coordinator,
                trust: Arc::new(RwLock::new(trust)),
            },
            refusals,
            ops,
            metrics,
        })
    }

    /// The HTTPS address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The ops address, if any.
    pub fn ops_addr(&self) -> Option<SocketAddr> {
        self.ops.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// TLS refusals of requesters.
    pub fn refusals(&self) -> RefusalLog {
        self.refusals.clone()
    }

    /// Serves until `shutdown` resolves, then stops accepting and lets in-flight requests
    /// finish within the grace period.
    pub async fn serve(self, reload_every: Duration, shutdown: impl Future<Output = ()>) {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let app = router(self.state.clone());
        // Reload certificates and CRL for new handshakes and per-request revocation checks.
        let reloader = {
            let acceptor = Arc::clone(&self.acceptor);
            let trust = Arc::clone(&self.state.trust);
            let files = self.state.coordinator.config().tls.clone();
            let refusals = self.refusals.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(reload_every);
                let mut last = None;
                loop {
                    tick.tick().await;
                    let stamp = fedq_wire::transport::FileStamps::read(&files);
                    if last.as_ref() == Some(&stamp) {
                        continue;
                    }
                    match self::acceptor(&files, &refusals) {
                        Ok((a, t)) => {
                            if let Ok(mut w) = acceptor.write() {
                                *w = a;
                            }
                            if let Ok(mut w) = trust.write() {
                                *w = t;
                            }
                            last = Some(stamp);
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "certificate reload failed; previous ones stay in force")
                        }
                    }
                }
            })
        };
        let ops_task = self.ops.map(|ops| {
            let metrics = self.metrics.clone();
            let state = self.state.clone();
            tokio::spawn(async move {
                let app = Router::new()
                    .route("/health", get(health))
                    .route(
                        "/metrics",
                        get(move || {
                            let m = metrics.clone();
                            async move { m.map(|h| h.render()).unwrap_or_default() }
                        }),
                    )
                    .with_state(state);
                let _ = axum::serve(ops, app).await;
            })
        });
        tokio::pin!(shutdown);
        loop {
            let (tcp, _) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let acceptor = match self.acceptor.read() {
                Ok(a) => a.clone(),
                Err(_) => continue,
            };
            let app = app.clone();
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp))
                    .await
                {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "TLS handshake refused");
                        return;
                    }
                    Err(_) => return,
                };
                let peer = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|chain| PeerCertificate::from_chain(chain).ok());
                let Some(peer) = peer else { return };
                let service = TowerToHyperService::new(app.layer(Extension(peer)));
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let conn = builder.serve_connection(TokioIo::new(tls), service);
                let _ = watcher.watch(conn).await;
            });
        }
        // Close the port at once: a new connection is refused rather than left waiting in
        // the kernel's backlog for a handshake nobody will answer.
        drop(self.listener);
        reloader.abort();
        // Stop keep-alive connections after their current request; wait for those in flight.
        if tokio::time::timeout(crate::service::SHUTDOWN_GRACE, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("shutdown grace period over with requests still in flight");
        }
        if let Some(t) = ops_task {
            t.abort();
        }
        self.state.coordinator.close();
    }
}
