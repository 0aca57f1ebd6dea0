//! The ops listener every fedq process shares — coordinator, node and gateway serve the
//! same two read-only endpoints through this one module, on an optional `ops_listen`
//! address in plain HTTP:
//!
//! - `GET /health`: `{"status":"ready"|"not_ready","process":…,"name":…,"checks":{…}}`,
//!   HTTP 200 when every check holds and 503 when one does not. Each check is
//!   `{"ok":bool,"detail":"…"}`, and a failing one says what is wrong and what to do.
//!   A process reports the checks that apply to it ([`STORE`], [`AUDIT`], [`POLICY`],
//!   [`CLOCK`]); the checks themselves are plain functions over what the process knows
//!   ([`clock_check`], and each process's own), run for each request.
//! - `GET /metrics`: the Prometheus text format from the process's recorder
//!   ([`recorder`]), every metric with its `# HELP` line and every series present from
//!   start (each process describes and registers its metrics when it starts).
//!
//! The listener is unauthenticated plain HTTP: bind it to loopback or a management
//! network, never to where requesters reach. It never serves anything but these two
//! endpoints, and neither ever holds personal data — no resident ID, no record value, no
//! input a client sent; metric labels are the policy's and the config's own names.
//!
//! [`config`] is the other thing every process shares: the prologue of its configuration
//! file (reading, TOML, relative paths, name and addresses, policy files, audit log) and
//! its one [`config::ConfigError`].

#![warn(missing_docs, unreachable_pub)]

pub mod config;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use fedq_certs::tls::Validity;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// The check of the process's record store (nodes).
pub const STORE: &str = "store";
/// The check of the process's audit log.
pub const AUDIT: &str = "audit";
/// The check of the policy in force (nodes, coordinator).
pub const POLICY: &str = "policy";
/// The check of the process's date and clock.
pub const CLOCK: &str = "clock";

/// Gauge: seconds until this process's own certificate expires (negative once expired).
pub const CERTIFICATE_EXPIRY: &str = "fedq_certificate_expiry_seconds";
/// Gauge: seconds until the CRL in force passes its `nextUpdate` (negative once past).
pub const CRL_NEXT_UPDATE: &str = "fedq_crl_next_update_seconds";

/// Most ops connections served at once; more are closed at once.
pub const MAX_CONNECTIONS: usize = 16;
/// How long a request's head may take to arrive.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one ops connection may stay open (a scraper reconnects).
const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);
/// How often histograms are folded into their buckets when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Why the ops listener could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The address could not be bound.
    #[error("cannot listen for health and metrics on {addr}: {reason}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why: the operating system's error.
        #[source]
        reason: std::io::Error,
    },
}

/// Installs the process's Prometheus recorder (once: metrics are global to a process) and
/// returns its handle; later calls return the same handle. A thread folds histogram
/// samples into their buckets every few seconds, so an unscraped process holds no growing
/// backlog. Call it before describing or emitting any metric.
pub fn recorder() -> Option<PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<Option<PrometheusHandle>> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
                .set_buckets(&[
                    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0,
                ])
                .ok()?
                .install_recorder()
                .ok()?;
            let upkeep = handle.clone();
            let _ = std::thread::Builder::new()
                .name("fedq-metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                });
            Some(handle)
        })
        .clone()
}

/// Describes the metrics every process exports through this module (certificate and CRL
/// expiry) and registers them, so they are present from start.
pub fn describe_common() {
    metrics::describe_gauge!(
        CERTIFICATE_EXPIRY,
        metrics::Unit::Seconds,
        "Seconds until this process's own certificate expires (negative once expired; 0 if it cannot be read)"
    );
    metrics::describe_gauge!(
        CRL_NEXT_UPDATE,
        metrics::Unit::Seconds,
        "Seconds until the CRL in force passes its nextUpdate (negative once past: new connections are refused after the grace; 0 if it cannot be read)"
    );
    let _ = metrics::gauge!(CERTIFICATE_EXPIRY);
    let _ = metrics::gauge!(CRL_NEXT_UPDATE);
}

/// Sets the certificate and CRL gauges as of `now` (Unix seconds): `certificate` is this
/// process's own, `crl_next_update` the CRL in force's `nextUpdate`. `None` (unreadable,
/// or a CRL stating no `nextUpdate`, which `fedq certs` never writes) is shown as 0, so
/// the alerts on either fire and someone looks.
pub fn set_tls_gauges(now: i64, certificate: Option<Validity>, crl_next_update: Option<i64>) {
    let expiry = certificate.map_or(0.0, |v| (v.not_after - now) as f64);
    metrics::gauge!(CERTIFICATE_EXPIRY).set(expiry);
    let next = crl_next_update.map_or(0.0, |n| (n - now) as f64);
    metrics::gauge!(CRL_NEXT_UPDATE).set(next);
}

/// One check of `/health`: whether it holds, and a sentence for a person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// Whether it holds.
    pub ok: bool,
    /// What was found; when it does not hold, what is wrong and what to do. Never
    /// personal data.
    pub detail: String,
}

impl Check {
    /// A check that holds.
    pub fn passed(detail: impl Into<String>) -> Self {
        Self {
            ok: true,
            detail: detail.into(),
        }
    }

    /// A check that does not hold, with what to do.
    pub fn failed(detail: impl Into<String>) -> Self {
        Self {
            ok: false,
            detail: detail.into(),
        }
    }
}

/// A health check's result as a [`Check`]: `Ok` holds what was found, `Err` what is
/// wrong and what to do (its message is the check's detail).
impl<E: std::error::Error> From<Result<String, E>> for Check {
    fn from(result: Result<String, E>) -> Self {
        match result {
            Ok(detail) => Check::passed(detail),
            Err(e) => Check::failed(e.to_string()),
        }
    }
}

/// Why a check of `/health` does not hold: what is wrong and what to do, for an operator
/// (never personal data), and the error it comes from, if any (its message is part of
/// the detail). A check returns `Result<String, CheckFailed>`, which becomes a [`Check`].
#[derive(Debug, thiserror::Error)]
#[error("{detail}")]
pub struct CheckFailed {
    detail: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl CheckFailed {
    /// A failure with no error behind it.
    pub fn new(detail: impl Into<String>) -> Self {
        Self {
            detail: detail.into(),
            source: None,
        }
    }

    /// A failure that is `error`, as its message says.
    pub fn of(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            detail: error.to_string(),
            source: Some(Box::new(error)),
        }
    }

    /// Keeps `error` as the cause of this failure (the detail already says what it is).
    #[must_use]
    pub fn because(mut self, error: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(error));
        self
    }

    /// What is wrong and what to do.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

/// A process's `/health`: its kind and name, and its checks in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    process: &'static str,
    name: String,
    checks: Vec<(&'static str, Check)>,
}

impl Health {
    /// The health of the `process` (`node`, `coordinator`, `gateway`) named `name`.
    pub fn new(process: &'static str, name: impl Into<String>) -> Self {
        Self {
            process,
            name: name.into(),
            checks: Vec::new(),
        }
    }

    /// Adds the check `name` (one of [`STORE`], [`AUDIT`], [`POLICY`], [`CLOCK`]).
    #[must_use]
    pub fn with(mut self, name: &'static str, check: Check) -> Self {
        self.checks.push((name, check));
        self
    }

    /// Ready: every check holds.
    pub fn ready(&self) -> bool {
        self.checks.iter().all(|(_, c)| c.ok)
    }

    /// The check `name`, if the process reports it.
    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|(n, _)| *n == name).map(|(_, c)| c)
    }

    /// The HTTP status: 200 ready, 503 not.
    pub fn http_status(&self) -> u16 {
        if self.ready() {
            200
        } else {
            503
        }
    }

    /// The JSON body.
    pub fn to_json(&self) -> Value {
        let checks: Map<String, Value> = self
            .checks
            .iter()
            .map(|(name, c)| {
                (
                    (*name).to_owned(),
                    json!({ "ok": c.ok, "detail": c.detail }),
                )
            })
            .collect();
        json!({
            "status": if self.ready() { "ready" } else { "not_ready" },
            "process": self.process,
            "name": self.name,
            "checks": checks,
        })
    }
}

/// What a process knows about its time, for [`clock_check`].
#[derive(Debug)]
pub struct ClockFacts {
    /// The system clock, Unix seconds.
    pub now: i64,
    /// The system's date (in the process's time zone).
    pub system_today: time::Date,
    /// The date the process decides with: pinned, or the system's.
    pub today: time::Date,
    /// Whether `today` is pinned by the config's `today` (tests and demos).
    pub pinned: bool,
    /// The validity of the process's own certificate, or why it cannot be read.
    pub certificate: Result<Validity, CheckFailed>,
    /// A node: the coordinator's date in the last lookup refused for clock skew, while no
    /// lookup since passed the date check.
    pub refused_peer_date: Option<time::Date>,
    /// How many days a pinned date may be from the system's: as far as a node lets a
    /// coordinator's date be from its own (`fedq_wire::message::MAX_DATE_SKEW_DAYS`).
    pub max_skew_days: i64,
}

fn date_of(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix).map_or_else(
        |_| unix.to_string(),
        |t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|_| unix.to_string())
        },
    )
}

/// The clock check: the system clock within the process's own certificate's validity (else
/// TLS peers refuse it, or the certificate has expired), a pinned date within a day of the
/// system's (else every peer with a correct clock gets clock-skew failures), and — for a
/// node — no lookup refused for clock skew since the last that passed.
pub fn clock_check(facts: &ClockFacts) -> Check {
    let validity = match &facts.certificate {
        Ok(v) => *v,
        Err(why) => {
            return Check::failed(format!(
                "its own certificate cannot be read to check the clock against: {why}"
            ))
        }
    };
    if facts.now < validity.not_before {
        return Check::failed(format!(
            "the system clock says {}, before its certificate's notBefore {}: the clock is behind; synchronize it (NTP)",
            date_of(facts.now),
            date_of(validity.not_before)
        ));
    }
    if facts.now > validity.not_after {
        return Check::failed(format!(
            "the system clock says {}, after its certificate's notAfter {}: the certificate has expired (issue a new one with `fedq certs issue … --force` and install it) or the clock is ahead (NTP)",
            date_of(facts.now),
            date_of(validity.not_after)
        ));
    }
    let apart = (facts.today - facts.system_today).whole_days();
    if facts.pinned && apart.abs() > facts.max_skew_days {
        return Check::failed(format!(
            "the date is pinned to {} by `today` in the config, {} days from the system's {}: peers with a correct clock get clock-skew failures; remove `today` (it is for tests and demos)",
            facts.today,
            apart.abs(),
            facts.system_today
        ));
    }
    if let Some(peer) = facts.refused_peer_date {
        return Check::failed(format!(
            "the last lookup was refused for clock skew: the coordinator's date was {peer}, this node's {}; fix the clock (NTP) or the pinned `today` that is wrong",
            facts.today
        ));
    }
    let source = if facts.pinned {
        "pinned by `today` in the config"
    } else {
        "the system's"
    };
    Check::passed(format!(
        "date {} ({source}); certificate valid until {}",
        facts.today,
        date_of(validity.not_after)
    ))
}

/// What a process gives the ops listener.
pub trait Probe: Send + Sync + 'static {
    /// Its health, checked now (for each `GET /health`).
    fn health(&self) -> impl Future<Output = Health> + Send;
    /// Brings gauges that depend on the time up to date (before each `GET /metrics`).
    fn refresh(&self) {}
}

/// The bound ops listener.
#[derive(Debug)]
pub struct OpsListener {
    listener: TcpListener,
}

impl OpsListener {
    /// Binds `addr` now (within a tokio runtime; callable from synchronous start-up code).
    pub fn bind(addr: SocketAddr) -> Result<Self, OpsError> {
        let bad = |e: std::io::Error| OpsError::Bind { addr, reason: e };
        let std = std::net::TcpListener::bind(addr).map_err(bad)?;
        std.set_nonblocking(true).map_err(bad)?;
        Ok(Self {
            listener: TcpListener::from_std(std).map_err(bad)?,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves `/health` from `probe` and `/metrics` from `metrics` until the task is
    /// dropped or aborted. At most [`MAX_CONNECTIONS`] at once; each request's head must
    /// arrive within 5 s.
    pub async fn serve<P: Probe>(self, probe: Arc<P>, metrics: Option<PrometheusHandle>) {
        let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let Ok((tcp, _)) = self.listener.accept().await else {
                // Out of descriptors and the like: the requester API matters more.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
                continue;
            };
            let probe = Arc::clone(&probe);
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let service = hyper::service::service_fn(move |request| {
                    let probe = Arc::clone(&probe);
                    let metrics = metrics.clone();
                    async move { Ok::<_, Infallible>(respond(&request, &*probe, metrics).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(tcp), service);
                let _ = tokio::time::timeout(CONNECTION_LIFETIME, conn).await;
            });
        }
    }
}

fn reply(status: u16, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    if let Ok(v) = content_type.parse() {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, v);
    }
    response.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    response
}

async fn respond<P: Probe, B>(
    request: &Request<B>,
    probe: &P,
    metrics: Option<PrometheusHandle>,
) -> Response<Full<Bytes>> {
    const JSON: &str = "application/json";
    if request.method() != Method::GET {
        return reply(
            405,
            JSON,
            json!({ "error": "the ops listener answers GET /health and GET /metrics only" })
                .to_string(),
        );
    }
    match request.uri().path() {
        "/health" => {
            let health = probe.health().await;
            reply(health.http_status(), JSON, health.to_json().to_string())
        }
        "/metrics" => {
            probe.refresh();
            let text = metrics.map(|h| h.render()).unwrap_or_default();
            reply(200, "text/plain; version=0.0.4; charset=utf-8", text)
        }
        _ => reply(
            404,
            JSON,
            json!({ "error": "the ops listener serves /health and /metrics only" }).to_string(),
        ),
    }
}

/// The metric families whose samples appear in Prometheus exposition `text` without a
/// `# HELP` line (a histogram's `_bucket`, `_sum` and `_count` belong to its family).
/// Empty when every metric is described.
pub fn undescribed_families(text: &str) -> Vec<String> {
    let described: std::collections::BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# HELP "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let mut missing = std::collections::BTreeSet::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let name = line.split(['{', ' ']).next().unwrap_or_default().to_owned();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                name.strip_suffix(suffix)
                    .filter(|base| described.contains(base))
            })
            .unwrap_or(&name);
        if !described.contains(family) {
            missing.insert(family.to_owned());
        }
    }
    missing.into_iter().collect()
}

/// The value of the series `series` (`name` or `name{label="value",…}`, labels as the
/// exporter writes them) in exposition `text`, if present.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(series)?.strip_prefix(' ')?;
        match rest.trim() {
            "+Inf" => Some(f64::INFINITY),
            "-Inf" => Some(f64::NEG_INFINITY),
            v => v.parse().ok(),
        }
    })
}

/// Resolves on Ctrl-C or SIGTERM: what every fedq server process stops on. The `fedq`
/// binary hands it to the server it runs.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> ClockFacts {
        let day = time::macros::date!(2026 - 06 - 01);
        let noon = day
            .with_hms(12, 0, 0)
            .unwrap()
            .assume_utc()
            .unix_timestamp();
        ClockFacts {
            now: noon,
            system_today: day,
            today: day,
            pinned: false,
            certificate: Ok(Validity {
                not_before: noon - 86_400,
                not_after: noon + 90 * 86_400,
            }),
            refused_peer_date: None,
            max_skew_days: 1,
        }
    }

    #[test]
    fn the_clock_holds_within_the_certificate_and_a_day_of_the_system_date() {
        assert!(clock_check(&facts()).ok, "{:?}", clock_check(&facts()));
        let pinned = ClockFacts {
            pinned: true,
            today: facts().today + time::Duration::days(1),
            ..facts()
        };
        assert!(clock_check(&pinned).ok);
    }

    #[test]
    fn each_clock_failure_says_what_to_fix() {
        let f = facts();
        let expired = ClockFacts {
            now: f.now + 100 * 86_400,
            ..facts()
        };
        let check = clock_check(&expired);
        assert!(!check.ok && check.detail.contains("expired"), "{check:?}");
        let behind = ClockFacts {
            now: f.now - 2 * 86_400,
            ..facts()
        };
        assert!(clock_check(&behind).detail.contains("clock is behind"));
        let pinned = ClockFacts {
            pinned: true,
            today: f.today + time::Duration::days(3 * 365),
            ..facts()
        };
        let check = clock_check(&pinned);
        assert!(
            !check.ok && check.detail.contains("remove `today`"),
            "{check:?}"
        );
        let skewed = ClockFacts {
            refused_peer_date: Some(f.today + time::Duration::days(5)),
            ..facts()
        };
        assert!(clock_check(&skewed).detail.contains("clock skew"));
        let unreadable = ClockFacts {
            certificate: Err(CheckFailed::new("gone")),
            ..f
        };
        assert!(!clock_check(&unreadable).ok);
    }

    #[test]
    fn health_is_ready_only_when_every_check_holds() {
        let ready = Health::new("node", "court")
            .with(STORE, Check::passed("fine"))
            .with(AUDIT, Check::passed("fine"));
        assert_eq!(ready.http_status(), 200);
        assert_eq!(ready.to_json()["status"], "ready");
        assert_eq!(ready.to_json()["checks"]["store"]["ok"], true);
        let not = ready.with(CLOCK, Check::failed("fix it"));
        assert_eq!(not.http_status(), 503);
        let body = not.to_json();
        assert_eq!(body["status"], "not_ready");
        assert_eq!(body["checks"]["clock"]["detail"], "fix it");
        assert_eq!(body["process"], "node");
    }

    #[test]
    fn undescribed_families_are_found_and_histograms_belong_to_theirs() {
        let text = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\"} 0\n\n\
                    # HELP h_seconds H.\n# TYPE h_seconds histogram\nh_seconds_bucket{le=\"+Inf\"} 0\n\
                    h_seconds_sum 0\nh_seconds_count 0\n\n# TYPE b gauge\nb 1\n";
        assert_eq!(undescribed_families(text), vec!["b".to_owned()]);
        assert_eq!(sample(text, "a_total{x=\"1\"}"), Some(0.0));
        assert_eq!(sample(text, "b"), Some(1.0));
        assert_eq!(sample(text, "c"), None);
    }
}
