//! The requester API over HTTPS with client certificates, and the local ops listener.
//!
//! TLS is terminated here with rustls (ring): TLS 1.3, a requester, officer or coordinator
//! certificate of this federation required (requesters query; officers and the coordinator
//! publish policy bundles), CRL honoured, and re-checked on every request so a certificate
//! revoked while its connection is open is refused at the next CRL reload. The identity
//! from the certificate is the only identity a query runs under.
//!
//! Every connection lives under [`crate::config::ConnectionLimits`] (see
//! [`crate::admission`]): caps on open connections overall, per peer address and per
//! certificate identity; a handshake timeout; on HTTP/1.1 a header timeout from a
//! request's first byte; a body timeout in the handlers; and a keep-alive idle timeout on
//! both protocols. Accept errors (descriptors exhausted) back off and are logged at most
//! once a second with a count. The role is checked before a body is read, and a body over
//! the limit gets the audited 413 on HTTP/1.1 and HTTP/2 alike.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Extension, Request, State};
use axum::http::{header, HeaderValue, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use fedq_certs::tls::{server_config, Credentials, FederationTrust, PeerCertificate, RefusalLog};
use fedq_certs::Role;
use fedq_wire::drain::{Drain, SHUTDOWN_GRACE};
use fedq_wire::transport::{reload, ReloadLog, Reloading};
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};

use crate::admission::{self, Activity, Admission, Backoff, Throttle, Ticket, Verdict, Watched};
use crate::config::ConnectionLimits;
use crate::problem::{self, Hint, Kind, Problem, Said};
use crate::service::Coordinator;

/// Errors starting the API.
#[derive(Debug, thiserror::Error)]
pub enum HttpsError {
    /// Certificates.
    #[error(transparent)]
    Tls(#[from] fedq_certs::TlsError),
    /// The complaint queue.
    #[error(transparent)]
    Complaints(#[from] crate::complaints::ComplaintError),
    /// Socket.
    #[error("cannot listen on {addr}: {reason}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Why: the operating system's error.
        #[source]
        reason: std::io::Error,
    },
}

#[derive(Clone)]
struct AppState {
    coordinator: Arc<Coordinator>,
    trust: Arc<RwLock<FederationTrust>>,
    body_timeout: Duration,
    complaints: Arc<crate::complaints::Queue>,
}

/// A JSON answer; an error status (4xx, 5xx) is a problem document and says so in its
/// content type.
pub(crate) fn json(status: u16, body: serde_json::Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let content_type = if status.is_client_error() || status.is_server_error() {
        problem::CONTENT_TYPE
    } else {
        "application/json"
    };
    (
        status,
        [(header::CONTENT_TYPE, content_type)],
        body.to_string(),
    )
        .into_response()
}

/// A problem document as an answer.
pub(crate) fn problem_response(problem: &Problem) -> Response {
    json(problem.status, problem.to_json())
}

/// What an unknown path is answered.
pub(crate) async fn not_found() -> Response {
    problem_response(&Problem::new(
        Kind::NotFound,
        404,
        "no such endpoint; GET /v1/openapi.json lists them",
    ))
}

/// What a known path asked with another method is answered.
pub(crate) async fn method_not_allowed() -> Response {
    problem_response(&Problem::new(
        Kind::MethodNotAllowed,
        405,
        "this endpoint does not take that method; GET /v1/openapi.json says which it takes",
    ))
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
        return Some(problem_response(&Problem::new(
            Kind::CertificateRevoked,
            403,
            "your certificate has been revoked; ask the federation's CA for a new one",
        )));
    }
    if !roles.contains(&peer.identity.role) {
        let mut p = Problem::new(
            Kind::RoleNotAllowed,
            403,
            format!("a {} certificate cannot {what}", peer.identity.role),
        );
        p.accepted = roles.iter().map(ToString::to_string).collect();
        return Some(problem_response(&p));
    }
    None
}

/// What a non-requester is told at `/v1/query`.
const QUERY_ROLE: &str = "query; use a requester certificate";

/// How much of an oversized body is read (and dropped, never kept) before the 413 is
/// sent, within the body timeout, so that a client still sending it reads the refusal
/// instead of a reset (a server that closes with unread data makes the client's kernel
/// discard the answer). A body declared larger is refused at once, and its connection
/// closed.
const DRAIN_CAP: usize = 64 << 20;

/// Largest policy bundle accepted.
const MAX_BUNDLE: usize = 1 << 20;

/// Why a body was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyFailure {
    /// Over the limit; `drained` if all of it was read anyway.
    TooLarge { drained: bool },
    /// Not all there within the body timeout.
    TooSlow,
    /// The client broke it off or sent it malformed.
    Broken,
}

impl BodyFailure {
    /// The refusal it is (and so its HTTP status, from [`crate::outcome::Refusal`]).
    fn refusal(self, limit: usize, timeout: Duration) -> crate::outcome::Refusal {
        use crate::outcome::Refusal;
        match self {
            BodyFailure::TooLarge { .. } => Refusal::TooLarge(Said::new(
                format!("request body over {limit} bytes"),
                Hint {
                    limit_bytes: Some(limit as u64),
                    ..Hint::default()
                },
            )),
            BodyFailure::TooSlow => Refusal::TooSlow(
                format!(
                    "the request body did not arrive within {} ms; send the whole body at once",
                    timeout.as_millis()
                )
                .into(),
            ),
            BodyFailure::Broken => Refusal::Malformed("the request body could not be read".into()),
        }
    }

    fn status(self) -> u16 {
        self.refusal(0, Duration::ZERO).http_status()
    }

    /// The problem document a body failure is answered with (unregistered).
    fn problem(self, limit: usize, timeout: Duration) -> Problem {
        self.refusal(limit, timeout).problem()
    }

    /// Whether the connection must be closed after the answer (HTTP/1.1: the rest of the
    /// body is still on the wire).
    fn closes(self) -> bool {
        !matches!(self, BodyFailure::TooLarge { drained: true })
    }
}

/// Reads a body of at most `limit` bytes within `timeout`. An oversized body is read on
/// (and dropped) up to [`DRAIN_CAP`] so its sender sees the refusal.
async fn read_body(body: Body, limit: usize, timeout: Duration) -> Result<Bytes, BodyFailure> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut body = body;
    let mut kept = Vec::new();
    let mut seen = 0usize;
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) if seen > limit => return Err(BodyFailure::TooLarge { drained: false }),
            Err(_) => return Err(BodyFailure::TooSlow),
            Ok(None) => break,
            Ok(Some(Err(_))) if seen > limit => {
                return Err(BodyFailure::TooLarge { drained: false })
            }
            Ok(Some(Err(_))) => return Err(BodyFailure::Broken),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len());
        if seen > limit {
            kept = Vec::new();
            if seen > DRAIN_CAP {
                return Err(BodyFailure::TooLarge { drained: false });
            }
        } else {
            kept.extend_from_slice(&data);
        }
    }
    if seen > limit {
        return Err(BodyFailure::TooLarge { drained: true });
    }
    Ok(Bytes::from(kept))
}

/// The declared length, when it alone settles that the body is over `DRAIN_CAP`.
fn declared_too_large(request: &Request) -> bool {
    request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > DRAIN_CAP as u64)
}

/// `response`, with `Connection: close` on HTTP/1.1 when `close`.
fn closing(mut response: Response, version: Version, close: bool) -> Response {
    if close && version < Version::HTTP_2 {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// `POST /v1/query`: the role first, then the body (so another role's body is never
/// read, let alone registered as a requester's refusal), then the query. A body that is
/// too large, too slow or broken is refused and registered.
async fn post_query(
    State(state): State<AppState>,
    Extension(peer): Extension<PeerCertificate>,
    request: Request,
) -> Response {
    if let Some(r) = refused(&state, &peer, &[Role::Requester], QUERY_ROLE) {
        return r;
    }
    let version = request.version();
    let limit = crate::query::MAX_BODY;
    let body = if declared_too_large(&request) {
        Err(BodyFailure::TooLarge { drained: false })
    } else {
        read_body(request.into_body(), limit, state.body_timeout).await
    };
    match body {
        Ok(body) => {
            let reply = state.coordinator.query(&peer.identity, &body).await;
            json(reply.status, reply.body)
        }
        Err(failure) => {
            metrics::counter!("fedq_https_bodies_refused_total", "status" => failure.status().to_string())
                .increment(1);
            let reply = state
                .coordinator
                .reject(&peer.identity, failure.refusal(limit, state.body_timeout))
                .await;
            closing(json(reply.status, reply.body), version, failure.closes())
        }
    }
}

/// `GET /v1/nodes`: requesters only.
async fn get_nodes(
    State(state): State<AppState>,
    Extension(peer): Extension<PeerCertificate>,
) -> Response {
    if let Some(r) = refused(&state, &peer, &[Role::Requester], SESSION_ROLE) {
        return r;
    }
    let reply = state.coordinator.nodes();
    json(reply.status, reply.body)
}

/// What a non-requester is told at `/v1/nodes` and `/v1/sessions`.
const SESSION_ROLE: &str = "open sessions with nodes; use a requester certificate";

/// `POST /v1/sessions`: the role first, then the body under its own cap and the body
/// timeout, then the grants forwarded to their nodes.
async fn post_sessions(
    State(state): State<AppState>,
    Extension(peer): Extension<PeerCertificate>,
    request: Request,
) -> Response {
    if let Some(r) = refused(&state, &peer, &[Role::Requester], SESSION_ROLE) {
        return r;
    }
    let version = request.version();
    let limit = crate::service::MAX_SESSIONS_BODY;
    let body = if declared_too_large(&request) {
        Err(BodyFailure::TooLarge { drained: false })
    } else {
        read_body(request.into_body(), limit, state.body_timeout).await
    };
    match body {
        Ok(body) => {
            let reply = state.coordinator.open_sessions(&peer.identity, &body).await;
            json(reply.status, reply.body)
        }
        Err(failure) => closing(
            problem_response(&failure.problem(limit, state.body_timeout)),
            version,
            failure.closes(),
        ),
    }
}

async fn post_bundle(
    State(state): State<AppState>,
    Extension(peer): Extension<PeerCertificate>,
    request: Request,
) -> Response {
    if let Some(r) = refused(
        &state,
        &peer,
        &[Role::Officer, Role::Coordinator],
        "publish a policy bundle; use an officer's or the coordinator's certificate",
    ) {
        return r;
    }
    let version = request.version();
    let body = if declared_too_large(&request) {
        Err(BodyFailure::TooLarge { drained: false })
    } else {
        read_body(request.into_body(), MAX_BUNDLE, state.body_timeout).await
    };
    match body {
        Ok(body) => {
            let reply = state.coordinator.publish(&peer.identity, &body).await;
            json(reply.status, reply.body)
        }
        Err(failure) => closing(
            problem_response(&failure.problem(MAX_BUNDLE, state.body_timeout)),
            version,
            failure.closes(),
        ),
    }
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

/// What a non-requester is told at `/v1/complaints`.
const COMPLAINT_ROLE: &str = "file or read a complaint; use a requester certificate";

/// Reads a body of at most `limit` under the body timeout, or answers why not.
async fn small_body(state: &AppState, request: Request, limit: usize) -> Result<Bytes, Response> {
    let version = request.version();
    let body = if declared_too_large(&request) {
        Err(BodyFailure::TooLarge { drained: false })
    } else {
        read_body(request.into_body(), limit, state.body_timeout).await
    };
    body.map_err(|failure| {
        closing(
            problem_response(&failure.problem(limit, state.body_timeout)),
            version,
            failure.closes(),
        )
    })
}

/// `POST /v1/statistics`: an aggregate query (requesters only), the body under its cap.
async fn post_statistics(
    State(state): State<AppState>,
    Extension(peer): Extension<PeerCertificate>,
    request: Request,
) -> Response {
    if let Some(r) = refused(&state, &peer, &[Role::Requester], QUERY_ROLE) {
        return r;
    }
    let body = match small_body(&state, request, crate::service::MAX_STATISTICS_BODY).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let reply = state.coordinator.statistics(&peer.identity, &body).await;
    json(reply.status, reply.body)
}

/// `POST /v1/complaints`: any requester files a complaint about a query or a leak.
async fn post_complaint(
    State(state): State<AppState>,
    Extension(peer): Extension<PeerCertificate>,
    request: Request,
) -> Response {
    if let Some(r) = refused(&state, &peer, &[Role::Requester], COMPLAINT_ROLE) {
        return r;
    }
    let body = match small_body(&state, request, crate::complaints::MAX_COMPLAINT_BODY).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let reply = state
        .complaints
        .file(&state.coordinator, &peer.identity, &body)
        .await;
    json(reply.status, reply.body)
}

/// `GET /v1/complaints/{id}`: its status, to the requester who filed it only.
async fn get_complaint(
    State(state): State<AppState>,
    Extension(peer): Extension<PeerCertificate>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    if let Some(r) = refused(&state, &peer, &[Role::Requester], COMPLAINT_ROLE) {
        return r;
    }
    let reply = state.complaints.state(&peer.identity, &id).await;
    json(reply.status, reply.body)
}

/// `POST /v1/complaints/{id}/status`: an officer's signed status change.
async fn post_complaint_status(
    State(state): State<AppState>,
    Extension(peer): Extension<PeerCertificate>,
    axum::extract::Path(id): axum::extract::Path<String>,
    request: Request,
) -> Response {
    if let Some(r) = refused(
        &state,
        &peer,
        &[Role::Officer],
        "change a complaint's status; use an officer's certificate",
    ) {
        return r;
    }
    let body = match small_body(&state, request, crate::complaints::MAX_UPDATE_BODY).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let reply = state
        .complaints
        .update(&state.coordinator, &state.trust, &peer.identity, &id, &body)
        .await;
    json(reply.status, reply.body)
}

async fn openapi() -> Response {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let text = TEXT.get_or_init(crate::openapi::document_text).clone();
    ([(header::CONTENT_TYPE, "application/json")], text).into_response()
}

async fn health(State(state): State<AppState>) -> Response {
    let health = crate::api::Health {
        status: "ok".into(),
        policy_version: state.coordinator.policy().label(),
    };
    json(200, serde_json::to_value(health).unwrap_or_default())
}

/// The requester API router (tests call it through real TLS; see [`serve`]).
fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/query", post(post_query))
        .route("/v1/nodes", get(get_nodes))
        .route("/v1/sessions", post(post_sessions))
        .route("/v1/policy/bundles", post(post_bundle))
        .route("/v1/policy/status", get(policy_status))
        .route("/v1/statistics", post(post_statistics))
        .route("/v1/complaints", post(post_complaint))
        .route("/v1/complaints/{id}", get(get_complaint))
        .route("/v1/complaints/{id}/status", post(post_complaint_status))
        .route("/v1/openapi.json", get(openapi))
        .route("/health", get(health))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// What a connection over its certificate identity's cap is answered, whatever it asks.
fn over_identity_cap(cap: usize) -> Router {
    Router::new().fallback(move |version: Version| async move {
        closing(
            problem_response(&Problem::new(
                Kind::ConnectionLimit,
                503,
                format!("your certificate already holds {cap} connections; reuse one of them or close idle ones"),
            )),
            version,
            true,
        )
    })
}

/// A hyper service that tells the connection's [`Activity`] when a request is in flight.
#[derive(Clone, Debug)]
struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

/// Counts one request in flight until dropped.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.ended(std::time::Instant::now());
    }
}

impl<S, R> hyper::service::Service<R> for Tracked<S>
where
    S: hyper::service::Service<R>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future =
        std::pin::Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send + 'static>>;

    fn call(&self, request: R) -> Self::Future {
        self.activity.started();
        let guard = InFlight(Arc::clone(&self.activity));
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await;
            drop(guard);
            response
        })
    }
}

/// How long a connection told to close (idle, or the server stopping) may take to finish
/// what it is writing.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The running requester API.
pub struct Api {
    listener: TcpListener,
    /// The acceptor for new handshakes and the trust in force, reloaded when the files
    /// change.
    tls: Arc<Reloading<tokio_rustls::TlsAcceptor>>,
    state: AppState,
    refusals: RefusalLog,
    ops: Option<fedq_ops::OpsListener>,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api").finish_non_exhaustive()
    }
}

/// The acceptor for new handshakes, built from the coordinator's credentials and the
/// trust in force.
fn acceptor(
    creds: &Credentials,
    trust: &FederationTrust,
    refusals: &RefusalLog,
) -> Result<tokio_rustls::TlsAcceptor, HttpsError> {
    let config = server_config(
        creds,
        trust,
        &[Role::Requester, Role::Officer, Role::Coordinator],
        &[b"h2", b"http/1.1"],
        refusals,
    )?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// The open-file limit of this process, from `/proc/self/limits` (Linux), if known.
fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Descriptors the coordinator needs besides its HTTPS connections (audit log, QUIC
/// sockets, listeners, runtime), with room to spare.
const RESERVED_DESCRIPTORS: u64 = 64;

impl Api {
    /// Loads certificates and binds the HTTPS (and ops) listeners.
    pub async fn bind(
        coordinator: Arc<Coordinator>,
        metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    ) -> Result<Self, HttpsError> {
        let refusals = RefusalLog::default();
        let config = coordinator.config().clone();
        let complaints = Arc::new(crate::complaints::Queue::open(&config.complaints)?);
        let tls = Reloading::load(
            config.tls.clone(),
            Role::Coordinator,
            ReloadLog::HTTPS,
            |creds, trust| acceptor(creds, trust, &refusals),
        )?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| HttpsError::Bind {
                addr: config.listen,
                reason: e,
            })?;
        let ops = match config.ops_listen {
            Some(addr) => Some(fedq_ops::OpsListener::bind(addr).map_err(
                |fedq_ops::OpsError::Bind { addr, reason }| HttpsError::Bind { addr, reason },
            )?),
            None => None,
        };
        if let Some(limit) = open_file_limit() {
            let wanted = config.https.max_connections as u64 + RESERVED_DESCRIPTORS;
            if limit < wanted {
                tracing::warn!(
                    open_file_limit = limit,
                    max_connections = config.https.max_connections,
                    "the open-file limit is below [https] max_connections plus {RESERVED_DESCRIPTORS}; \
                     raise it (ulimit -n, LimitNOFILE) or lower max_connections: until then running out \
                     of descriptors closes the oldest unfinished handshakes"
                );
            }
        }
        Ok(Self {
            listener,
            state: AppState {
                body_timeout: config.https.body_timeout,
                complaints,
                coordinator,
                trust: tls.trust(),
            },
            tls: Arc::new(tls),
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
        let drain = Drain::new();
        drain
            .run_until(
                shutdown,
                self.serve_until_drained(reload_every, drain.clone()),
            )
            .await;
    }

    /// Serves until `drain` starts, then stops accepting (and reloading) and lets in-flight
    /// requests finish within [`SHUTDOWN_GRACE`].
    pub async fn serve_until_drained(self, reload_every: Duration, drain: Drain) {
        let limits = self.state.coordinator.config().https.clone();
        let admission = Admission::new(limits.clone());
        let app = router(self.state.clone());
        let refusal_app = over_identity_cap(limits.max_per_identity);
        // Reload certificates and CRL for new handshakes and per-request revocation checks.
        let reloading = drain.child();
        let reloader = {
            let refusals = self.refusals.clone();
            reload::watch(
                Arc::downgrade(&self.tls),
                reload_every,
                reloading.clone(),
                ReloadLog::HTTPS,
                move |tls: &Reloading<tokio_rustls::TlsAcceptor>| {
                    tls.reload_if_changed(
                        |creds, trust| acceptor(creds, trust, &refusals),
                        |_, _| {},
                    )
                },
            )
        };
        let ops_task = self.ops.map(|ops| {
            let probe = crate::ops::CoordinatorProbe {
                coordinator: Arc::clone(&self.state.coordinator),
                trust: Arc::clone(&self.state.trust),
            };
            tokio::spawn(ops.serve(Arc::new(probe), self.metrics.clone()))
        });
        let mut backoff = Backoff::new();
        let mut accept_errors = Throttle::new(Duration::from_secs(1));
        let mut over_cap = Throttle::new(Duration::from_secs(1));
        let mut pause: Option<Duration> = None;
        loop {
            if let Some(p) = pause.take() {
                tokio::select! {
                    () = tokio::time::sleep(p) => {}
                    () = drain.draining() => break,
                }
            }
            let (tcp, peer) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        metrics::counter!("fedq_https_accept_errors_total").increment(1);
                        if let Some(n) = accept_errors.note(std::time::Instant::now()) {
                            tracing::warn!(error = %e, failures = n, "accepting HTTPS connections fails; backing off (at most one line a second)");
                        }
                        // Out of descriptors: the oldest unfinished handshake gives its up,
                        // so requesters still get in; otherwise wait, longer each time.
                        pause = Some(if admission::out_of_descriptors(&e) && admission.evict_oldest_pending() {
                            Duration::from_millis(1)
                        } else {
                            backoff.failed()
                        });
                        continue;
                    }
                },
                () = drain.draining() => break,
            };
            backoff.reset();
            let ticket = match admission.admit(peer.ip()) {
                Ok(t) => t,
                Err(cap) => {
                    drop(tcp);
                    metrics::counter!("fedq_https_connections_refused_total", "cap" => cap.label())
                        .increment(1);
                    if let Some(n) = over_cap.note(std::time::Instant::now()) {
                        tracing::warn!(
                            cap = cap.label(),
                            refused = n,
                            "HTTPS connections refused at a connection cap (at most one line a second)"
                        );
                    }
                    continue;
                }
            };
            let acceptor = self.tls.current();
            tokio::spawn(connection(
                tcp,
                ticket,
                acceptor,
                app.clone(),
                refusal_app.clone(),
                limits.clone(),
                drain.clone(),
            ));
        }
        // Close the port at once: a new connection is refused rather than left waiting in
        // the kernel's backlog for a handshake nobody will answer.
        drop(self.listener);
        reloading.start();
        let _ = reloader.await;
        // Keep-alive connections stop after their current request (they saw the drain);
        // wait for those in flight.
        if tokio::time::timeout(SHUTDOWN_GRACE, admission.emptied())
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

/// Drives one served connection under its clock: closed politely when idle or when the
/// server stops, dropped when a request's head stalls, and dropped anyway if closing takes
/// longer than its grace.
macro_rules! drive {
    ($conn:expr, $activity:expr, $limits:expr, $heads:expr, $stop:expr) => {{
        let conn = $conn;
        tokio::pin!(conn);
        let tick = Activity::tick(&$limits);
        let mut closing: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                _ = conn.as_mut() => break,
                () = tokio::time::sleep(tick) => {
                    if let Some(deadline) = closing {
                        if tokio::time::Instant::now() >= deadline {
                            break;
                        }
                        continue;
                    }
                    match $activity.verdict(std::time::Instant::now(), &$limits, $heads) {
                        Verdict::Fine => {}
                        Verdict::Stalled => {
                            metrics::counter!("fedq_https_connections_closed_total", "why" => "header_timeout").increment(1);
                            break;
                        }
                        Verdict::Idle => {
                            metrics::counter!("fedq_https_connections_closed_total", "why" => "idle_timeout").increment(1);
                            conn.as_mut().graceful_shutdown();
                            closing = Some(tokio::time::Instant::now() + CLOSE_GRACE);
                        }
                    }
                }
                () = $stop.draining(), if closing.is_none() => {
                    conn.as_mut().graceful_shutdown();
                    closing = Some(tokio::time::Instant::now() + SHUTDOWN_GRACE);
                }
            }
        }
    }};
}

/// One HTTPS connection from accept to close.
async fn connection(
    tcp: TcpStream,
    mut ticket: Ticket,
    acceptor: tokio_rustls::TlsAcceptor,
    app: Router,
    refusal_app: Router,
    limits: ConnectionLimits,
    stop: Drain,
) {
    let _ = tcp.set_nodelay(true);
    let handshake = tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp));
    let tls = tokio::select! {
        done = handshake => match done {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "TLS handshake refused");
                return;
            }
            Err(_) => {
                metrics::counter!("fedq_https_connections_closed_total", "why" => "handshake_timeout").increment(1);
                return;
            }
        },
        () = ticket.evicted() => return,
        () = stop.draining() => return,
    };
    let (_, session) = tls.get_ref();
    let heads = session.alpn_protocol() != Some(b"h2");
    let peer = session
        .peer_certificates()
        .and_then(|chain| PeerCertificate::from_chain(chain).ok());
    let Some(peer) = peer else { return };
    let admitted = ticket.established(&format!("{}/{}", peer.identity.role, peer.identity.name));
    if !admitted && ticket.is_evicted() {
        return;
    }
    let router = if admitted {
        app.layer(Extension(peer))
    } else {
        metrics::counter!("fedq_https_connections_refused_total", "cap" => "identity").increment(1);
        refusal_app
    };
    let activity = Activity::new(std::time::Instant::now());
    let service = Tracked {
        inner: TowerToHyperService::new(router),
        activity: Arc::clone(&activity),
    };
    let io = TokioIo::new(Watched::new(tls, Arc::clone(&activity)));
    if heads {
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder.max_buf_size(64 * 1024).keep_alive(true);
        drive!(
            builder.serve_connection(io, service),
            activity,
            limits,
            true,
            stop
        );
    } else {
        let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        builder
            .max_concurrent_streams(64)
            .max_header_list_size(32 * 1024);
        drive!(
            builder.serve_connection(io, service),
            activity,
            limits,
            false,
            stop
        );
    }
    drop(ticket);
}
