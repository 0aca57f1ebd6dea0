//! The coordinator's and the gateway's operations: every metric each exports, described
//! (`# HELP`) and registered at start so each series is there before the first query,
//! and the checks of their `/health`, served on `ops_listen` by the listener every
//! process shares ([`fedq_ops`]).
//!
//! Labels are kinds of outcome, caps, HTTP statuses and the config's node names — never
//! a requester, a subject or anything a query carried.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use fedq_certs::FederationTrust;
use fedq_ops::{Check, CheckFailed, ClockFacts, Health, AUDIT, CLOCK, POLICY};
use metrics::Unit;

use crate::service::Coordinator;

/// Counter: queries by outcome.
pub const QUERIES: &str = "fedq_queries_total";
/// The gateway's queries by outcome.
pub const GATEWAY_QUERIES: &str = "fedq_gateway_queries_total";
/// The gateway's query time.
pub const GATEWAY_QUERY_SECONDS: &str = "fedq_gateway_query_seconds";
/// Requests to the gateway without a valid app token.
pub const GATEWAY_UNAUTHENTICATED: &str = "fedq_gateway_unauthenticated_total";
/// Seconds until the gateway's app-facing TLS certificate expires.
pub const GATEWAY_TLS_EXPIRY: &str = "fedq_gateway_tls_certificate_expiry_seconds";
/// The `outcome` labels of [`GATEWAY_QUERIES`].
pub const GATEWAY_OUTCOMES: [&str; 3] = ["answered", "refused", "failed"];

/// The `outcome` of [`GATEWAY_QUERIES`] for an HTTP status the gateway answered.
pub fn gateway_outcome(status: u16) -> &'static str {
    match status {
        200..=299 => "answered",
        400..=499 => "refused",
        _ => "failed",
    }
}

/// Describes every metric the coordinator exports and registers each series at zero
/// (per configured node where the metric is per node). Call once the recorder is
/// installed ([`fedq_ops::recorder`]).
pub fn describe_coordinator(nodes: &[String]) {
    fedq_ops::describe_common();
    fedq_audit::describe_metrics();
    crate::witnessing::describe_metrics();
    metrics::describe_counter!(
        QUERIES,
        Unit::Count,
        "Queries by outcome (answered, partial, refused, overloaded, audit_unavailable, audit_failed, unencodable)"
    );
    metrics::describe_gauge!(
        "fedq_queries_in_flight",
        Unit::Count,
        "Queries being served now"
    );
    metrics::describe_histogram!(
        "fedq_query_seconds",
        Unit::Seconds,
        "Time to answer a query (answered or partial), audit commit included"
    );
    metrics::describe_histogram!(
        "fedq_node_latency_seconds",
        Unit::Seconds,
        "Time one node took to answer a lookup, per node"
    );
    metrics::describe_gauge!(
        "fedq_policy_bundle_version",
        "The policy bundle version in force on the coordinator (0: the set-up policy)"
    );
    metrics::describe_gauge!(
        "fedq_node_up",
        "Whether a node is up (1) or marked down (0)"
    );
    metrics::describe_histogram!(
        "fedq_node_probe_seconds",
        Unit::Seconds,
        "Round trip of each answered heartbeat or probe, per node"
    );
    metrics::describe_counter!(
        "fedq_node_marked_down_total",
        Unit::Count,
        "Times a node was marked down (its lookups or heartbeats went unanswered)"
    );
    metrics::describe_counter!(
        "fedq_sessions_failed_total",
        Unit::Count,
        "Requester sessions a node did not open, per node"
    );
    metrics::describe_gauge!(
        "fedq_https_connections",
        Unit::Count,
        "Requester HTTPS connections open now"
    );
    metrics::describe_counter!(
        "fedq_https_connections_refused_total",
        Unit::Count,
        "HTTPS connections refused at a cap (cap: total, address, identity)"
    );
    metrics::describe_counter!(
        "fedq_https_handshakes_evicted_total",
        Unit::Count,
        "Unfinished TLS handshakes closed to make room when descriptors ran out"
    );
    metrics::describe_counter!(
        "fedq_https_connections_closed_total",
        Unit::Count,
        "HTTPS connections closed by a timeout (why: handshake_timeout, header_timeout, idle_timeout)"
    );
    metrics::describe_counter!(
        "fedq_https_accept_errors_total",
        Unit::Count,
        "Failed accepts on the HTTPS port (e.g. out of descriptors)"
    );
    metrics::describe_counter!(
        "fedq_https_bodies_refused_total",
        Unit::Count,
        "Request bodies refused (status: 408 too slow, 413 too large)"
    );
    for outcome in crate::outcome::QUERY_OUTCOMES {
        metrics::counter!(QUERIES, "outcome" => outcome).increment(0);
    }
    metrics::gauge!("fedq_queries_in_flight").set(0.0);
    let _ = metrics::histogram!("fedq_query_seconds");
    metrics::gauge!("fedq_https_connections").set(0.0);
    for cap in ["total", "address", "identity"] {
        metrics::counter!("fedq_https_connections_refused_total", "cap" => cap).increment(0);
    }
    metrics::counter!("fedq_https_handshakes_evicted_total").increment(0);
    for why in ["handshake_timeout", "header_timeout", "idle_timeout"] {
        metrics::counter!("fedq_https_connections_closed_total", "why" => why).increment(0);
    }
    metrics::counter!("fedq_https_accept_errors_total").increment(0);
    for status in ["408", "413"] {
        metrics::counter!("fedq_https_bodies_refused_total", "status" => status).increment(0);
    }
    for node in nodes {
        let node = node.clone();
        let _ = metrics::histogram!("fedq_node_latency_seconds", "node" => node.clone());
        let _ = metrics::histogram!("fedq_node_probe_seconds", "node" => node.clone());
        metrics::counter!("fedq_node_marked_down_total", "node" => node.clone()).increment(0);
        metrics::counter!("fedq_sessions_failed_total", "node" => node).increment(0);
    }
}

/// Describes every metric the gateway exports and registers each series at zero.
pub fn describe_gateway() {
    fedq_ops::describe_common();
    fedq_audit::describe_metrics();
    metrics::describe_counter!(
        GATEWAY_QUERIES,
        Unit::Count,
        "Apps' queries by outcome (answered: 2xx; refused: 4xx, by the gateway or the coordinator; failed: 5xx, the coordinator unreachable or overloaded or the gateway's audit log failing)"
    );
    metrics::describe_histogram!(
        GATEWAY_QUERY_SECONDS,
        Unit::Seconds,
        "Time to answer an app's query, the coordinator and the gateway's audit commit included"
    );
    metrics::describe_counter!(
        GATEWAY_UNAUTHENTICATED,
        Unit::Count,
        "Requests refused 401 for lacking a valid app token (not logged one by one)"
    );
    metrics::describe_gauge!(
        GATEWAY_TLS_EXPIRY,
        Unit::Seconds,
        "Seconds until the gateway's app-facing TLS certificate expires (negative once expired; 0 if unreadable)"
    );
    for outcome in GATEWAY_OUTCOMES {
        metrics::counter!(GATEWAY_QUERIES, "outcome" => outcome).increment(0);
    }
    let _ = metrics::histogram!(GATEWAY_QUERY_SECONDS);
    metrics::counter!(GATEWAY_UNAUTHENTICATED).increment(0);
    let _ = metrics::gauge!(GATEWAY_TLS_EXPIRY);
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// What the coordinator's `/health` and `/metrics` read.
#[derive(Debug)]
pub struct CoordinatorProbe {
    /// The coordinator.
    pub coordinator: Arc<Coordinator>,
    /// The CA and CRL in force for the requester API.
    pub trust: Arc<RwLock<FederationTrust>>,
}

impl fedq_ops::Probe for CoordinatorProbe {
    async fn health(&self) -> Health {
        let c = &self.coordinator;
        let status = c.policy_slot().status();
        let policy = Check::passed(format!(
            "policy {} in force (version {})",
            status.label, status.version
        ));
        let system_today = fedq_policy::calendar::today_in_city();
        let clock = fedq_ops::clock_check(&ClockFacts {
            now: now(),
            system_today,
            today: c.date(),
            pinned: c.config().today.is_some(),
            certificate: fedq_certs::tls::certificate_file_validity(&c.config().tls.cert)
                .map_err(CheckFailed::of),
            refused_peer_date: None,
            max_skew_days: fedq_wire::message::MAX_DATE_SKEW_DAYS,
        });
        Health::new("coordinator", c.config().name.clone())
            .with(AUDIT, c.audit().health().into())
            .with(POLICY, policy)
            .with(CLOCK, clock)
    }

    fn refresh(&self) {
        let c = &self.coordinator;
        let certificate = fedq_certs::tls::certificate_file_validity(&c.config().tls.cert).ok();
        let crl = self
            .trust
            .read()
            .ok()
            .and_then(|t| t.crl_info().next_update);
        fedq_ops::set_tls_gauges(now(), certificate, crl);
        metrics::gauge!("fedq_policy_bundle_version").set(c.policy().version as f64);
    }
}

/// What the gateway's `/health` and `/metrics` read.
#[derive(Debug)]
pub struct GatewayProbe {
    /// The gateway's name.
    pub name: String,
    /// Its audit log.
    pub audit: fedq_audit::AuditLog,
    /// Its requester certificate (its identity in the federation).
    pub cert: PathBuf,
    /// The app-facing TLS certificate.
    pub tls_cert: PathBuf,
    /// The federation CA and CRL it checks the coordinator against.
    pub trust: fedq_certs::tls::TrustFiles,
}

impl fedq_ops::Probe for GatewayProbe {
    async fn health(&self) -> Health {
        let today = time::OffsetDateTime::now_utc().date();
        let clock = fedq_ops::clock_check(&ClockFacts {
            now: now(),
            system_today: today,
            today,
            pinned: false,
            certificate: fedq_certs::tls::certificate_file_validity(&self.cert)
                .map_err(CheckFailed::of),
            refused_peer_date: None,
            max_skew_days: fedq_wire::message::MAX_DATE_SKEW_DAYS,
        });
        Health::new("gateway", self.name.clone())
            .with(AUDIT, self.audit.health().into())
            .with(CLOCK, clock)
    }

    fn refresh(&self) {
        let now = now();
        let certificate = fedq_certs::tls::certificate_file_validity(&self.cert).ok();
        let crl = FederationTrust::load(&self.trust)
            .ok()
            .and_then(|t| t.crl_info().next_update);
        fedq_ops::set_tls_gauges(now, certificate, crl);
        let apps = fedq_certs::tls::certificate_file_validity(&self.tls_cert)
            .map_or(0.0, |v| (v.not_after - now) as f64);
        metrics::gauge!(GATEWAY_TLS_EXPIRY).set(apps);
    }
}
