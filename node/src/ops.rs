//! A node's operations: its metrics (described and registered at start, so every series
//! is there before the first lookup) and the checks of its `/health`, served on
//! `ops_listen` by the listener every process shares ([`fedq_ops`]).
//!
//! Labels are kinds of outcome and the node's own part names (`store`, `attached`),
//! never anything of a lookup: no requester, subject, dataset value or record.

use std::sync::{Arc, Mutex};

use fedq_audit::AuditLog;
use fedq_bundle::state::PolicySlot;
use fedq_ops::{Check, CheckFailed, ClockFacts, Health, AUDIT, CLOCK, POLICY, STORE};
use fedq_wire::transport::TrustView;

use crate::lookup::LookupOutcome;
use crate::source::Sources;

/// Counter: lookups by what they came to (`outcome`: [`LookupOutcome::label`]).
pub const LOOKUPS: &str = "fedq_node_lookups_total";
/// Histogram: seconds from a lookup's arrival to its response (audit commit included).
pub const LOOKUP_SECONDS: &str = "fedq_node_lookup_seconds";
/// Counter: reads that failed (`source`: `store` or `attached`).
pub const STORE_ERRORS: &str = "fedq_node_store_errors_total";
/// Counter: requester sessions (`outcome`: `opened`, `refused`).
pub const SESSIONS: &str = "fedq_node_sessions_total";
/// Gauge: the policy bundle version in force (0: the set-up policy).
pub const POLICY_VERSION: &str = "fedq_policy_bundle_version";

/// The `source` labels of [`STORE_ERRORS`].
pub const STORE_SOURCES: [&str; 2] = ["store", "attached"];
/// The `outcome` labels of [`SESSIONS`].
pub const SESSION_OUTCOMES: [&str; 2] = ["opened", "refused"];

/// Describes every metric a node exports and registers each series at zero. Call once
/// the recorder is installed ([`fedq_ops::recorder`]).
pub fn describe_metrics() {
    use metrics::Unit;
    fedq_ops::describe_common();
    fedq_audit::describe_metrics();
    crate::witnessing::describe_metrics();
    metrics::describe_counter!(
        LOOKUPS,
        Unit::Count,
        "Lookups this node decided, by outcome (answered, unverified, denied, refused, proof_refused, consent_refused, rate_limited, clock_skew, unavailable, audit_failed)"
    );
    metrics::describe_histogram!(
        LOOKUP_SECONDS,
        Unit::Seconds,
        "Time from a lookup's arrival to its response, the audit commit included"
    );
    metrics::describe_counter!(
        STORE_ERRORS,
        Unit::Count,
        "Reads of the store or an attached database that failed (the lookup answered unavailable)"
    );
    metrics::describe_counter!(
        SESSIONS,
        Unit::Count,
        "Requester session grants, by outcome (opened, refused)"
    );
    metrics::describe_gauge!(
        POLICY_VERSION,
        "The policy bundle version in force (0: the set-up policy)"
    );
    for outcome in LookupOutcome::ALL {
        metrics::counter!(LOOKUPS, "outcome" => outcome.label()).increment(0);
    }
    let _ = metrics::histogram!(LOOKUP_SECONDS);
    for source in STORE_SOURCES {
        metrics::counter!(STORE_ERRORS, "source" => source).increment(0);
    }
    for outcome in SESSION_OUTCOMES {
        metrics::counter!(SESSIONS, "outcome" => outcome).increment(0);
    }
}

/// What a node's `/health` and `/metrics` read: shared with the serving node.
pub struct NodeProbe {
    /// The node's name.
    pub node: String,
    /// Its store and attached databases.
    pub sources: Arc<Sources>,
    /// Its audit log.
    pub audit: AuditLog,
    /// The policy in force.
    pub policy: Arc<PolicySlot>,
    /// The CA, CRL and certificate key in force.
    pub trust: TrustView,
    /// The pinned date, if any.
    pub pinned: Option<time::Date>,
    /// The coordinator's date of the last lookup refused for clock skew, until one passes.
    pub refused_peer_date: Arc<Mutex<Option<time::Date>>>,
}

impl std::fmt::Debug for NodeProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeProbe")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl NodeProbe {
    fn certificate(&self) -> Result<fedq_certs::tls::Validity, CheckFailed> {
        let signer = self
            .trust
            .signer()
            .ok_or_else(|| CheckFailed::new("the node's certificate is unavailable"))?;
        fedq_certs::tls::certificate_validity(signer.certificate()).map_err(CheckFailed::of)
    }
}

impl fedq_ops::Probe for NodeProbe {
    async fn health(&self) -> Health {
        let status = self.policy.status();
        let policy = Check::passed(match &status.last_refusal {
            None => format!(
                "policy {} in force (version {})",
                status.label, status.version
            ),
            Some(why) => format!(
                "policy {} in force (version {}); the last bundle offered was refused: {why}",
                status.label, status.version
            ),
        });
        let system_today = fedq_policy::calendar::today_in_city();
        let clock = fedq_ops::clock_check(&ClockFacts {
            now: time::OffsetDateTime::now_utc().unix_timestamp(),
            system_today,
            today: self.pinned.unwrap_or(system_today),
            pinned: self.pinned.is_some(),
            certificate: self.certificate(),
            refused_peer_date: self.refused_peer_date.lock().ok().and_then(|d| *d),
            max_skew_days: fedq_wire::message::MAX_DATE_SKEW_DAYS,
        });
        Health::new("node", self.node.clone())
            .with(STORE, self.sources.check().await.into())
            .with(AUDIT, self.audit.health().into())
            .with(POLICY, policy)
            .with(CLOCK, clock)
    }

    fn refresh(&self) {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let crl = self
            .trust
            .with_trust(|t| t.crl_info().next_update)
            .flatten();
        fedq_ops::set_tls_gauges(now, self.certificate().ok(), crl);
        metrics::gauge!(POLICY_VERSION).set(self.policy.current().version as f64);
    }
}
