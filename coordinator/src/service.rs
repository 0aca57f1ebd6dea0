//! The coordinator's shell around a query's core ([`crate::route`], which decides every
//! step as a plain function over data): authenticate (done by TLS, the identity is handed
//! in) → [`Router::admit`] (validate, consent, policy pre-check, proofs, rate limit, plan)
//! → send every lookup under one deadline → [`crate::route::FanOut::conclude`] (merge,
//! view) → write the entry → release the reply. Every query, answered or refused, is
//! registered in the audit log before the answer is returned. Sessions, policy
//! publication and status are handled here too.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fedq_audit::{AuditLog, AuditRecord, NodeQueryIds, Pseudonymizer};
use fedq_bundle::state::{InForce, Installed, PolicySlot};
use fedq_certs::Identity;
use fedq_policy::ratelimit::RateLimiter;
use fedq_wire::transport::{Limits, NodeClient};
use fedq_wire::{NodeRequest, NodeResponse};
use tokio::sync::Semaphore;

use crate::config::CoordinatorConfig;
use crate::health::NodeHealth;
use crate::outcome::{Audited, Refusal, Unserved};
use crate::problem::Kind;
use crate::query::{self, Recorded};
use crate::route::{Clock, Concluded, Routed, Router};

/// Errors starting a coordinator.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Policy or catalogues.
    #[error(transparent)]
    Policy(#[from] fedq_policy::load::LoadError),
    /// The policy in force (set-up policy or signed bundle).
    #[error(transparent)]
    PolicyState(#[from] fedq_bundle::state::SlotError),
    /// Audit log or pseudonym key.
    #[error(transparent)]
    Audit(#[from] fedq_audit::AuditError),
    /// Certificates or sockets.
    #[error(transparent)]
    Transport(#[from] fedq_wire::transport::TransportError),
    /// The config disagrees with the files it names.
    #[error("{0}")]
    Mismatch(String),
}

pub use crate::outcome::Reply;

/// The coordinator's state. Cheap to share.
pub struct Coordinator {
    config: CoordinatorConfig,
    policy: Arc<PolicySlot>,
    /// Per node, why the last bundle published did not reach it or was refused there.
    publish_failures: Mutex<BTreeMap<String, String>>,
    audit: AuditLog,
    /// Derives each node's own id of a query (from the pseudonym key; never sent). The
    /// coordinator pseudonymizes no subject: it never sees one.
    query_ids: NodeQueryIds,
    client: NodeClient,
    /// Each node's channel behind its up/down state.
    channels: BTreeMap<String, Arc<NodeHealth>>,
    /// The tasks probing down nodes, aborted when the coordinator is dropped.
    probers: Vec<tokio::task::JoinHandle<()>>,
    limiter: Mutex<RateLimiter>,
    in_flight: Arc<Semaphore>,
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        for prober in &self.probers {
            prober.abort();
        }
    }
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator")
            .field("name", &self.config.name)
            .finish_non_exhaustive()
    }
}

/// A fresh id for a query, session set or publication: 12 random bytes, hex. `None` if
/// the system has no randomness to give, and then the request is refused
/// ([`no_random_id`]): an all-zero id would be the same for every request so refused,
/// and a query's id is what its audit entries and every node's own id are derived from.
fn random_id() -> Option<String> {
    let mut bytes = [0u8; 12];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).ok()?;
    Some(hex::encode(bytes))
}

/// The reply to a request for which no id could be drawn: nothing was asked or recorded
/// (fail closed; there is no id to register it under).
fn no_random_id() -> Reply {
    tracing::error!("no randomness available for a request id; the request is refused");
    Reply::problem(crate::problem::Problem::new(
        Kind::Internal,
        503,
        "the coordinator cannot draw a request id (no randomness available); nothing was asked; retry later",
    ))
}

impl Coordinator {
    /// Loads the policy, audit log and certificates, and prepares a channel per node.
    /// Must run inside a tokio runtime.
    pub fn start(config: CoordinatorConfig, limits: Limits) -> Result<Self, StartError> {
        let floor = fedq_audit::last_installed_policy(&config.audit)?;
        let policy = PolicySlot::open(
            &config.policy,
            config.policy_threshold,
            &config.policy_officers,
            config.policy_state.clone(),
            config.tls.trust.clone(),
            floor,
        )?;
        let in_force = policy.current();
        metrics::gauge!("fedq_policy_bundle_version").set(in_force.version as f64);
        let engine = &in_force.engine;
        for node in &config.nodes {
            if engine.datasets().iter().all(|d| d.department != node.name) {
                return Err(StartError::Mismatch(format!(
                    "node `{}` is not a department of the policy's catalogues",
                    node.name
                )));
            }
        }
        let pseudonyms = Pseudonymizer::load_or_create(&config.pseudonym_key)?;
        // The coordinator's own log signs its checkpoints with its certificate key, as
        // every node's does (origin `fedq/<federation>/coordinator/<name>`).
        let signing = fedq_audit::Signing::from_certificate(
            &config.tls.cert,
            &config.tls.key,
            fedq_audit::Cadence {
                entries: config.checkpoint_entries,
                interval: config.checkpoint_interval,
            },
        )
        .map_err(|e| match e {
            fedq_audit::SigningKeyError::Credentials(e) => {
                fedq_wire::transport::TransportError::from(e).into()
            }
            other => StartError::Mismatch(other.to_string()),
        })?;
        let audit = AuditLog::open_signing(&config.audit, signing)?;
        let bind = if config.nodes.iter().any(|n| n.address.is_ipv6()) {
            "[::]:0"
        } else {
            "0.0.0.0:0"
        };
        let client = NodeClient::new(
            bind.parse()
                .map_err(|_| StartError::Mismatch("bad bind address".into()))?,
            config.tls.clone(),
            limits,
        )?;
        client.spawn_reloader();
        let channels: BTreeMap<String, Arc<NodeHealth>> = config
            .nodes
            .iter()
            .map(|n| {
                let channel = client.channel(&n.name, n.address);
                (n.name.clone(), NodeHealth::new(channel, config.health))
            })
            .collect();
        let mut probers: Vec<_> = channels.values().map(NodeHealth::spawn_prober).collect();
        // Every log's checkpoints, the coordinator's own included, to every other node as
        // a witness (issue 18 §3).
        let certificate = fedq_certs::tls::Credentials::load(&config.tls.cert, &config.tls.key)
            .map_err(fedq_wire::transport::TransportError::from)?
            .chain_and_key()
            .0
            .first()
            .map(|c| c.to_vec())
            .unwrap_or_default();
        let round = crate::witnessing::WitnessRound::new(
            &channels,
            &config.name,
            audit.clone(),
            certificate,
            config.tls.clone(),
            config.deadline,
        );
        probers.push(tokio::spawn(round.run(config.witness_interval)));
        let policy = Arc::new(policy);
        probers.push(tokio::spawn(fedq_audit::keep_retention(
            audit.clone(),
            fedq_audit::RETENTION_CHECK_EVERY,
            {
                let policy = Arc::clone(&policy);
                move || policy.audit_retention()
            },
        )));
        Ok(Self {
            limiter: Mutex::new(RateLimiter::new(engine.policy())),
            in_flight: Arc::new(Semaphore::new(config.max_in_flight)),
            policy,
            publish_failures: Mutex::new(BTreeMap::new()),
            audit,
            query_ids: pseudonyms.node_query_ids(),
            client,
            channels,
            probers,
            config,
        })
    }

    /// The policy version in force; a query holds it from start to answer.
    pub fn policy(&self) -> Arc<InForce> {
        self.policy.current()
    }

    /// The config.
    pub fn config(&self) -> &CoordinatorConfig {
        &self.config
    }

    /// The audit log (for `/health`).
    pub(crate) fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// The policy slot (for `/health`).
    pub(crate) fn policy_slot(&self) -> &PolicySlot {
        &self.policy
    }

    /// The date this coordinator decides with (pinned, or the city's).
    pub(crate) fn date(&self) -> time::Date {
        self.today()
    }

    /// Closes every node connection.
    pub fn close(&self) {
        self.client.close();
    }

    fn today(&self) -> time::Date {
        self.config
            .today
            .unwrap_or_else(fedq_policy::calendar::today_in_city)
    }

    /// A router for one query under the policy version `in_force`.
    fn router<'a>(
        &'a self,
        in_force: &'a InForce,
        label: &'a str,
        configured: &'a (dyn Fn(&str) -> bool + Sync),
    ) -> Router<'a> {
        Router {
            engine: &in_force.engine,
            policy_label: label,
            query_ids: &self.query_ids,
            is_configured: configured,
            limiter: &self.limiter,
        }
    }

    fn clock(&self) -> Clock {
        Clock {
            now: time::OffsetDateTime::now_utc(),
            today: self.today(),
        }
    }

    /// Writes a concluded query's entry, and only then releases its reply.
    async fn audit_then_release(&self, concluded: Concluded, started: Instant) -> Reply {
        let answered = matches!(concluded.audited(), Audited::Answered { .. });
        let (entry, release) = concluded.into_parts();
        let appended = self.audit.append(entry).await;
        let (reply, metric) = release.after(appended.as_ref().map(|_| ()));
        metrics::counter!("fedq_queries_total", "outcome" => metric).increment(1);
        if answered && appended.is_ok() {
            metrics::histogram!("fedq_query_seconds").record(started.elapsed().as_secs_f64());
        }
        reply
    }

    /// Refuses a request that could not even be read, registering the refusal. Its
    /// message must not quote the request.
    pub async fn reject(&self, requester: &Identity, refusal: Refusal) -> Reply {
        let Some(query_id) = random_id() else {
            return no_random_id();
        };
        let in_force = self.policy.current();
        let label = in_force.label();
        let configured = |node: &str| self.channels.contains_key(node);
        let concluded = self.router(&in_force, &label, &configured).refusal(
            &requester.name,
            &query_id,
            refusal,
            Recorded::nothing(),
            self.clock(),
        );
        self.audit_then_release(concluded, Instant::now()).await
    }

    /// Handles one `POST /v1/query` body from an authenticated requester.
    pub async fn query(&self, requester: &Identity, body: &[u8]) -> Reply {
        let Some(query_id) = random_id() else {
            return no_random_id();
        };
        let who = requester.name.as_str();
        let Ok(_permit) = self.in_flight.clone().try_acquire_owned() else {
            let why = Unserved::Overloaded;
            metrics::counter!("fedq_queries_total", "outcome" => why.metric()).increment(1);
            return Reply::unserved(&why, &query_id);
        };
        metrics::gauge!("fedq_queries_in_flight").increment(1.0);
        let reply = self.query_inner(who, &query_id, body).await;
        metrics::gauge!("fedq_queries_in_flight").decrement(1.0);
        reply
    }

    async fn query_inner(&self, who: &str, query_id: &str, body: &[u8]) -> Reply {
        let started = Instant::now();
        // The version in force now decides this query to the end, whatever is installed
        // meanwhile.
        let in_force = self.policy.current();
        let label = in_force.label();
        let configured = |node: &str| self.channels.contains_key(node);
        let router = self.router(&in_force, &label, &configured);
        let routed = router.admit(who, query_id, body, self.clock());
        let fan_out = match routed {
            Routed::Concluded(refused) => return self.audit_then_release(refused, started).await,
            Routed::FanOut(fan_out) => fan_out,
        };
        // Fan out: every lookup at once, under one deadline.
        let deadline = self.config.deadline;
        let asks = fan_out.asks().iter().filter_map(|ask| {
            let channel = self.channels.get(&ask.node)?;
            Some(async move {
                let t = Instant::now();
                let answer = channel.request(&ask.request, deadline).await;
                metrics::histogram!("fedq_node_latency_seconds", "node" => ask.node.clone())
                    .record(t.elapsed().as_secs_f64());
                (ask.node.clone(), answer)
            })
        });
        let answers = futures_util::future::join_all(asks)
            .await
            .into_iter()
            .collect();
        let concluded = fan_out.conclude(&router, answers);
        self.audit_then_release(concluded, started).await
    }
}

pub use crate::query::NOT_PROVEN;

impl Coordinator {
    /// `GET /v1/nodes`: the nodes a requester may open sessions with.
    ///
    /// With them, `views`: each view of the policy in force → the nodes it asks (its
    /// sources' departments this coordinator has), so a requester proves a view query only
    /// to those. Both are the policy's public metadata, nothing of any person.
    pub fn nodes(&self) -> Reply {
        let in_force = self.policy.current();
        let views: BTreeMap<String, Vec<String>> = in_force
            .engine
            .policy()
            .views
            .iter()
            .map(|v| {
                let target = fedq_wire::message::LookupTarget::View(v.name.clone());
                let nodes = query::plan(&in_force.engine, &target)
                    .into_keys()
                    .filter(|n| self.channels.contains_key(n))
                    .collect();
                (v.name.clone(), nodes)
            })
            .collect();
        Reply::ok(&crate::api::NodeList {
            nodes: self.channels.keys().cloned().collect(),
            views,
        })
    }

    /// Handles one `POST /v1/sessions` body from an authenticated requester:
    /// `{"grants": {node: grant}}`. Each grant goes as it came to its node
    /// ([`NodeRequest::OpenSession`]), which verifies it itself; the answer holds each
    /// node's accept, or why it did not open. The coordinator cannot read or make the
    /// session keys. An audit entry records who opened sessions where (never a token).
    pub async fn open_sessions(&self, requester: &Identity, body: &[u8]) -> Reply {
        let Some(id) = random_id() else {
            return no_random_id();
        };
        let grants = match parse_grants(body, |n| self.channels.contains_key(n)) {
            Ok(g) => g,
            Err(reason) => {
                self.audit_sessions(
                    requester,
                    &id,
                    serde_json::json!({ "http": 400, "refused": reason }),
                )
                .await;
                return Reply::error(400, Kind::MalformedRequest, reason, &id);
            }
        };
        let deadline = self.config.deadline;
        let asks = grants.into_iter().filter_map(|(node, grant)| {
            let channel = self.channels.get(&node).cloned()?;
            Some(async move {
                let answer = channel
                    .request(&NodeRequest::OpenSession(grant), deadline)
                    .await;
                (node, answer)
            })
        });
        let mut accepts = BTreeMap::new();
        let mut failures = BTreeMap::new();
        let mut outcome = BTreeMap::new();
        for (node, answer) in futures_util::future::join_all(asks).await {
            let failure = match answer {
                Ok(NodeResponse::SessionOpened(accept)) => {
                    accepts.insert(node.clone(), accept);
                    outcome.insert(node, "opened");
                    continue;
                }
                Ok(NodeResponse::Refused { rationale }) => format!("refused: {rationale}"),
                Ok(NodeResponse::Failed { message, .. }) => message,
                Ok(_) => "the node answered a session grant with something else".to_owned(),
                Err(e) => format!("not reached: {e}"),
            };
            metrics::counter!("fedq_sessions_failed_total", "node" => node.clone()).increment(1);
            failures.insert(node.clone(), failure);
            outcome.insert(node, "failed");
        }
        self.audit_sessions(
            requester,
            &id,
            serde_json::json!({ "http": 200, "nodes": outcome }),
        )
        .await;
        Reply::ok(&crate::api::SessionsOpened { accepts, failures })
    }

    async fn audit_sessions(&self, requester: &Identity, id: &str, outcome: serde_json::Value) {
        let record = AuditRecord {
            at: time::OffsetDateTime::now_utc(),
            kind: fedq_audit::EntryKind::Session,
            query_id: id.to_owned(),
            requester: requester.name.clone(),
            purpose: "-".into(),
            legal_basis: None,
            subject: "-".into(),
            target: "sessions".into(),
            outcome: fedq_audit::Outcome::json(&outcome),
            policy_version: self.policy.current().label(),
            case_reference: None,
            consent_id: None,
            node_query_ids: Default::default(),
            answer_sha256: None,
        };
        if let Err(e) = self.audit.append(record).await {
            tracing::error!(error = %e, "audit log unavailable while registering sessions");
        }
    }
}

/// Largest `POST /v1/statistics` body.
pub const MAX_STATISTICS_BODY: usize = 64 * 1024;

impl Coordinator {
    /// Handles one `POST /v1/statistics` body from an authenticated requester (issue 20
    /// §2): the body read without quoting it, the policy's pre-check
    /// (`Engine::check_aggregate`: an aggregate-only purpose the `[statistics]` table
    /// lists, datasets it allows, the years), each department of the datasets asked with
    /// the requester's proof for it (else 400), the query forwarded to them at once, and
    /// what each answered relayed: its noisy cells, the ε spent and left, or its refusal.
    /// When no department answered because the budget is spent, 429 says what is left
    /// and when it renews. Registered (kind `statistic`) before it is answered.
    pub async fn statistics(&self, requester: &Identity, body: &[u8]) -> Reply {
        use fedq_client::statistics::{StatisticsRequest, StatisticsResponse};
        use fedq_wire::message::AggregateRequest;
        let Some(id) = random_id() else {
            return no_random_id();
        };
        let in_force = self.policy.current();
        let label = in_force.label();
        let record = |target: &str, purpose: &str, outcome: serde_json::Value| AuditRecord {
            at: time::OffsetDateTime::now_utc(),
            kind: fedq_audit::EntryKind::Statistic,
            query_id: id.clone(),
            requester: requester.name.clone(),
            purpose: purpose.to_owned(),
            legal_basis: None,
            subject: "-".into(),
            target: target.to_owned(),
            outcome: fedq_audit::Outcome::json(&outcome),
            policy_version: label.clone(),
            case_reference: None,
            consent_id: None,
            node_query_ids: Default::default(),
            answer_sha256: None,
        };
        use serde_json::json;
        // A refusal is answered only once its entry is written; without the log, nothing
        // is answered but that.
        let id_ref = &id;
        let refuse = |entry: AuditRecord, reply: Reply| async move {
            match self.audit.append(entry).await {
                Ok(_) => reply,
                Err(_) => Reply::error(
                    503,
                    Kind::AuditUnavailable,
                    "the audit log is unavailable; nothing was asked",
                    id_ref,
                ),
            }
        };
        let shape = "send {\"purpose\", \"legal_basis\", \"target\": {\"datasets\": [..], \"by\": [..], \"from_year\", \"to_year\"}, \"proofs\": {NODE: PROOF}}";
        let request: StatisticsRequest = match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) => {
                let why = format!(
                    "the body is not a statistics query (line {}, column {}); {shape}",
                    e.line(),
                    e.column()
                );
                return refuse(
                    record("-", "-", json!({ "http": 400, "refused": "malformed" })),
                    Reply::error(400, Kind::MalformedRequest, why, &id),
                )
                .await;
            }
        };
        let target_text = request.target.describe();
        let engine = &in_force.engine;
        let known_purpose = engine
            .policy()
            .purposes
            .iter()
            .any(|p| p.name == request.purpose);
        let purpose = if known_purpose {
            request.purpose.as_str()
        } else {
            "-"
        };
        let checked = engine.check_aggregate(
            &requester.name,
            &request.purpose,
            request.legal_basis.as_deref(),
            &request.target,
        );
        // The target's names are recorded only when they are all the policy's.
        let recorded_target = if checked.is_ok() {
            target_text.as_str()
        } else {
            "-"
        };
        if let Err(refusal) = checked {
            return refuse(
                record(
                    recorded_target,
                    purpose,
                    json!({ "http": 403, "refused": refusal.code() }),
                ),
                Reply::error(403, Kind::PolicyRefused, refusal.to_string(), &id),
            )
            .await;
        }
        let mut nodes: Vec<String> = request
            .target
            .datasets
            .iter()
            .filter_map(|d| d.split('.').next().map(str::to_owned))
            .collect();
        nodes.sort();
        nodes.dedup();
        if let Some(missing) = nodes
            .iter()
            .find(|n| !request.proofs.contains_key(*n) || !self.channels.contains_key(*n))
        {
            let why = format!("the query counts datasets of `{missing}` but carries no proof for it (or the coordinator knows no such node); prove the query to every department it counts");
            return refuse(
                record(
                    recorded_target,
                    purpose,
                    json!({ "http": 400, "refused": "proof missing" }),
                ),
                Reply::error(400, Kind::ProofMissing, why, &id),
            )
            .await;
        }
        let deadline = self.config.deadline;
        let date = self.today();
        let mut cells = Vec::new();
        let mut reports = Vec::new();
        if request.target.intersect {
            let ask = |node: &String| AggregateRequest {
                query_id: self.query_ids.for_node(&id, node),
                requester: requester.name.clone(),
                purpose: request.purpose.clone(),
                legal_basis: request.legal_basis.clone(),
                target: request.target.clone(),
                policy_version: label.clone(),
                date,
                proof: request.proofs.get(node).cloned().unwrap_or_default(),
            };
            let (counting, other) = match request.target.datasets.as_slice() {
                [a, b] => (
                    a.split('.').next().unwrap_or_default().to_owned(),
                    b.split('.').next().unwrap_or_default().to_owned(),
                ),
                _ => (String::new(), String::new()),
            };
            let (c, r) = self
                .cross_count(ask(&counting), ask(&other), &counting, &other)
                .await;
            cells = c;
            reports = r;
        } else {
            let asks = nodes.iter().filter_map(|node| {
                let channel = self.channels.get(node).cloned()?;
                let ask = NodeRequest::Aggregate(AggregateRequest {
                    query_id: self.query_ids.for_node(&id, node),
                    requester: requester.name.clone(),
                    purpose: request.purpose.clone(),
                    legal_basis: request.legal_basis.clone(),
                    target: request.target.clone(),
                    policy_version: label.clone(),
                    date,
                    proof: request.proofs.get(node).cloned().unwrap_or_default(),
                });
                Some(async move { (node.clone(), channel.request(&ask, deadline).await) })
            });
            for (node, answer) in futures_util::future::join_all(asks).await {
                let (report, c) = relay_statistics(&node, answer);
                cells.extend(c);
                reports.push(report);
            }
        }
        let complete = reports.iter().all(|r| r.status == "answered");
        let statuses: BTreeMap<&str, &str> = reports
            .iter()
            .map(|r| (r.node.as_str(), r.status.as_str()))
            .collect();
        let spent: BTreeMap<&str, &str> = reports
            .iter()
            .filter(|r| r.status == "answered")
            .filter_map(|r| Some((r.node.as_str(), r.epsilon.as_deref()?)))
            .collect();
        let all_spent = reports.iter().all(|r| r.status == "budget-spent");
        let http = if all_spent { 429 } else { 200 };
        let outcome = serde_json::json!({ "http": http, "nodes": statuses, "epsilon": spent, "cells": cells.len() });
        if self
            .audit
            .append(record(recorded_target, purpose, outcome))
            .await
            .is_err()
        {
            return Reply::error(
                503,
                Kind::AnswerWithheld,
                "the audit log failed after the departments answered; the answer is withheld",
                &id,
            );
        }
        if all_spent {
            let said = reports
                .iter()
                .map(|r| {
                    format!(
                        "at `{}` ε {} left of the {} this query needs, renewing on {}",
                        r.node,
                        r.left.as_deref().unwrap_or("0"),
                        r.epsilon.as_deref().unwrap_or("-"),
                        r.renews_on.as_deref().unwrap_or("-")
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            return Reply::error(
                429,
                Kind::BudgetSpent,
                format!("the requester's privacy budget for aggregate queries is spent: {said}; nothing was counted"),
                &id,
            );
        }
        Reply::ok(&StatisticsResponse {
            query_id: id,
            complete,
            cells,
            nodes: reports,
        })
    }
}

impl Coordinator {
    /// A cross-department count's three steps, relayed (issue 20 §2; `fedq_wire::psi`):
    /// `Blind` to the counting department, `Raise` to the other with the counting one's
    /// signed set, `Count` to the counting department with the other's signed sets. The
    /// coordinator holds neither exponent and reads nothing of the points; each department
    /// checks the other's signatures itself. The reports name both departments.
    async fn cross_count(
        &self,
        counting_ask: fedq_wire::message::AggregateRequest,
        other_ask: fedq_wire::message::AggregateRequest,
        counting: &str,
        other: &str,
    ) -> (
        Vec<fedq_client::statistics::StatisticsCell>,
        Vec<fedq_client::statistics::NodeStatistics>,
    ) {
        use fedq_wire::message::{CrossAnswer, CrossRequest, CrossStep};
        let deadline = self.config.deadline;
        let send = |node: &str, request: NodeRequest| {
            let channel = self.channels.get(node).cloned();
            async move {
                match channel {
                    Some(c) => c.request(&request, deadline).await,
                    None => Ok(NodeResponse::Failed {
                        code: fedq_wire::message::FailureCode::Unavailable,
                        message: "the coordinator knows no such node".into(),
                    }),
                }
            }
        };
        let step = |query: &fedq_wire::message::AggregateRequest, step: CrossStep| {
            NodeRequest::CrossCount(CrossRequest {
                query: query.clone(),
                step,
            })
        };
        let pending = |node: &str, why: &str| fedq_client::statistics::NodeStatistics {
            node: node.to_owned(),
            status: "not-asked".into(),
            epsilon: None,
            left: None,
            renews_on: None,
            reason: Some(why.to_owned()),
        };
        let blinded = send(counting, step(&counting_ask, CrossStep::Blind)).await;
        let (handle, set) = match blinded {
            Ok(NodeResponse::CrossCount(CrossAnswer::Blinded { handle, set })) => (handle, set),
            other_answer => {
                let (report, _) = relay_statistics(counting, other_answer);
                return (
                    Vec::new(),
                    vec![
                        report,
                        pending(other, "the counting department did not open the count"),
                    ],
                );
            }
        };
        let raised = send(other, step(&other_ask, CrossStep::Raise { blinded: set })).await;
        let (raised, own) = match raised {
            Ok(NodeResponse::CrossCount(CrossAnswer::Raised { raised, own })) => (raised, own),
            other_answer => {
                let (report, _) = relay_statistics(other, other_answer);
                return (
                    Vec::new(),
                    vec![
                        pending(counting, "the other department did not take part"),
                        report,
                    ],
                );
            }
        };
        let counted = send(
            counting,
            step(
                &fedq_wire::message::AggregateRequest {
                    proof: String::new(),
                    ..counting_ask
                },
                CrossStep::Count {
                    handle,
                    raised,
                    own,
                },
            ),
        )
        .await;
        let (counting_report, cells) = relay_statistics(counting, counted);
        let other_report = fedq_client::statistics::NodeStatistics {
            status: "answered".into(),
            reason: Some(format!("took part in the count; `{counting}` released it")),
            ..pending(other, "")
        };
        (cells, vec![counting_report, other_report])
    }
}

/// What one department answered an aggregate query (or a cross count's last step), as
/// its report and the cells of its own datasets it released.
fn relay_statistics(
    node: &str,
    answer: Result<NodeResponse, fedq_wire::transport::ChannelError>,
) -> (
    fedq_client::statistics::NodeStatistics,
    Vec<fedq_client::statistics::StatisticsCell>,
) {
    use fedq_policy::statistics::format_epsilon;
    use fedq_wire::message::AggregateAnswer;
    let mut report = fedq_client::statistics::NodeStatistics {
        node: node.to_owned(),
        status: String::new(),
        epsilon: None,
        left: None,
        renews_on: None,
        reason: None,
    };
    let mut cells = Vec::new();
    match answer {
        Ok(NodeResponse::Aggregate {
            node: said, answer, ..
        }) if said == node => match answer {
            AggregateAnswer::Released {
                cells: c,
                epsilon,
                left,
                renews_on,
            } => {
                // Only the cells of this department's own datasets are relayed (a cross
                // count's one cell names both, the first of them this department's).
                let own = format!("{node}.");
                cells.extend(
                    c.into_iter()
                        .filter(|c| c.key.dataset.starts_with(&own))
                        .map(fedq_client::statistics::StatisticsCell::from),
                );
                report.status = "answered".into();
                report.epsilon = Some(format_epsilon(epsilon));
                report.left = Some(format_epsilon(left));
                report.renews_on = Some(renews_on.to_string());
            }
            AggregateAnswer::BudgetSpent {
                epsilon,
                left,
                renews_on,
            } => {
                report.status = "budget-spent".into();
                report.epsilon = Some(format_epsilon(epsilon));
                report.left = Some(format_epsilon(left));
                report.renews_on = Some(renews_on.to_string());
            }
        },
        Ok(NodeResponse::Refused { rationale }) => {
            report.status = "refused".into();
            report.reason = Some(rationale);
        }
        Ok(NodeResponse::ProofRefused { message, .. }) => {
            report.status = "proof-refused".into();
            report.reason = Some(message);
        }
        Ok(NodeResponse::Failed { message, .. }) => {
            report.status = "failed".into();
            report.reason = Some(message);
        }
        Ok(_) => {
            report.status = "failed".into();
            report.reason = Some("the node answered with something else".into());
        }
        Err(e) => {
            report.status = "unavailable".into();
            report.reason = Some(format!("not reached: {e}"));
        }
    }
    (report, cells)
}

/// Largest `POST /v1/sessions` body (a grant carries the requester's certificate).
pub const MAX_SESSIONS_BODY: usize = 64 * 1024;

/// Parses `{"grants": {node: grant}}`. A refusal says what was wrong, never what was sent.
fn parse_grants(
    body: &[u8],
    known: impl Fn(&str) -> bool,
) -> Result<BTreeMap<String, String>, String> {
    use serde_json::Value;
    let shape = "send {\"grants\": {NODE: GRANT}} with one session grant (a compact JWS) per node";
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| format!("the body is not a JSON document; {shape}"))?;
    let Value::Object(map) = value else {
        return Err(format!("the body is not a JSON object; {shape}"));
    };
    if map.len() != 1 {
        return Err(format!(
            "a session request has the one field `grants`; {shape}"
        ));
    }
    let Some(Value::Object(grants)) = map.get("grants") else {
        return Err(format!("`grants` must be an object; {shape}"));
    };
    if grants.is_empty() || grants.len() > query::MAX_PROOFS {
        return Err(format!(
            "`grants` must name 1 to {} nodes; {shape}",
            query::MAX_PROOFS
        ));
    }
    let mut out = BTreeMap::new();
    for (i, (node, grant)) in grants.iter().enumerate() {
        let n = i + 1;
        if !known(node) {
            return Err(format!(
                "`grants` entry {n} names a node this coordinator does not know; GET /v1/nodes lists them"
            ));
        }
        match grant {
            Value::String(g) if !g.is_empty() && g.len() <= MAX_GRANT_LEN => {
                out.insert(node.clone(), g.clone());
            }
            _ => {
                return Err(format!(
                    "`grants` entry {n} must be a compact JWS string of 1 to {MAX_GRANT_LEN} bytes"
                ))
            }
        }
    }
    Ok(out)
}

/// Longest session grant forwarded, in bytes.
pub const MAX_GRANT_LEN: usize = 8 * 1024;

impl Coordinator {
    /// Handles one `POST /v1/policy/bundles` body from an authenticated officer or
    /// coordinator: verify the bundle here and put it in force, then hand it to every node,
    /// each of which verifies it again itself. The publication is registered in the audit
    /// log with every node's outcome.
    pub async fn publish(&self, publisher: &Identity, body: &[u8]) -> Reply {
        let Some(publication) = random_id() else {
            return no_random_id();
        };
        let Ok(text) = std::str::from_utf8(body).map(str::to_owned) else {
            let reason = "the bundle is not UTF-8 text; send the .bundle.toml file as it is";
            self.audit_publication(
                fedq_audit::EntryKind::PolicyRefused,
                publisher,
                &publication,
                serde_json::json!({ "http": 400, "refused": reason }),
            )
            .await;
            return Reply::error(400, Kind::MalformedRequest, reason, &publication);
        };
        let slot = Arc::clone(&self.policy);
        let local = {
            let text = text.clone();
            tokio::task::spawn_blocking(move || slot.install(&text)).await
        };
        let (label, changed) = match local {
            Ok(Ok(Installed::Applied {
                label,
                version,
                content_sha256,
                approved_by,
            })) => {
                // The floor a restart must not go below, registered before anyone else
                // hears of the new version.
                self.audit_publication(
                    fedq_audit::EntryKind::PolicyInstalled,
                    publisher,
                    &publication,
                    serde_json::json!({ "version": version, "content_sha256": content_sha256, "approved_by": approved_by }),
                )
                .await;
                (label, true)
            }
            Ok(Ok(Installed::AlreadyInForce { label })) => (label, false),
            Ok(Err(refusal)) => {
                let (status, kind) = match refusal {
                    fedq_bundle::Refusal::NotNewer { .. }
                    | fedq_bundle::Refusal::VersionConflict(_) => (409, Kind::BundleConflict),
                    fedq_bundle::Refusal::Io(_) => (503, Kind::Internal),
                    _ => (422, Kind::BundleRefused),
                };
                let reason = format!("bundle refused: {refusal}; the version in force stays");
                self.audit_publication(
                    fedq_audit::EntryKind::PolicyRefused,
                    publisher,
                    &publication,
                    serde_json::json!({ "http": status, "refused": refusal.to_string() }),
                )
                .await;
                return Reply::error(status, kind, reason, &publication);
            }
            Err(_) => {
                let reason = "installing the bundle failed unexpectedly";
                self.audit_publication(
                    fedq_audit::EntryKind::PolicyRefused,
                    publisher,
                    &publication,
                    serde_json::json!({ "http": 500, "refused": reason }),
                )
                .await;
                return Reply::error(500, Kind::Internal, reason, &publication);
            }
        };
        if changed {
            metrics::gauge!("fedq_policy_bundle_version").set(self.policy.current().version as f64);
            // The new version's rate limits apply from now on; quotas used so far stay used.
            if let Ok(mut limiter) = self.limiter.lock() {
                limiter.set_limits(self.policy.current().engine.policy());
            }
        }
        let request = NodeRequest::InstallPolicy(text);
        let asks = self.channels.iter().map(|(node, channel)| {
            let request = &request;
            async move {
                (
                    node.clone(),
                    channel.channel().request(request, PUBLISH_DEADLINE).await,
                )
            }
        });
        let mut nodes = Vec::new();
        let mut outcome = BTreeMap::new();
        for (node, answer) in futures_util::future::join_all(asks).await {
            let detail = match answer {
                Ok(NodeResponse::PolicyInstalled { label, changed }) => {
                    Ok(crate::api::Installed { label, changed })
                }
                Ok(NodeResponse::Refused { rationale }) => Err(format!("refused: {rationale}")),
                Ok(NodeResponse::Failed { message, .. }) => Err(message),
                Ok(_) => Err("unexpected answer".to_owned()),
                Err(e) => Err(format!("not reached: {e}")),
            };
            if let Ok(mut failures) = self.publish_failures.lock() {
                match &detail {
                    Err(e) => failures.insert(node.clone(), e.clone()),
                    Ok(_) => failures.remove(&node),
                };
            }
            let applied = detail.is_ok();
            outcome.insert(node.clone(), if applied { "applied" } else { "failed" });
            let (installed, error) = match detail {
                Ok(i) => (Some(i), None),
                Err(e) => (None, Some(e)),
            };
            nodes.push(crate::api::NodePublication {
                node,
                applied,
                installed,
                error,
            });
        }
        let complete = outcome.values().all(|o| *o == "applied");
        self.audit_publication(
            fedq_audit::EntryKind::Policy,
            publisher,
            &publication,
            serde_json::json!({ "http": 200, "label": label, "changed": changed, "nodes": outcome }),
        )
        .await;
        Reply::ok(&crate::api::Publication {
            publication,
            coordinator: crate::api::Installed { label, changed },
            nodes,
            complete,
        })
    }

    /// Registers one step of a publication: `policy-installed` (the floor for restarts),
    /// `policy-refused`, or `policy` (the outcome on every node).
    async fn audit_publication(
        &self,
        kind: fedq_audit::EntryKind,
        publisher: &Identity,
        id: &str,
        outcome: serde_json::Value,
    ) {
        let record = AuditRecord {
            at: time::OffsetDateTime::now_utc(),
            kind,
            query_id: id.to_owned(),
            requester: format!("{}:{}", publisher.role, publisher.name),
            purpose: "policy-publication".into(),
            legal_basis: None,
            case_reference: None,
            subject: "-".into(),
            target: "policy".into(),
            outcome: fedq_audit::Outcome::json(&outcome),
            policy_version: self.policy.current().label(),
            consent_id: None,
            node_query_ids: Default::default(),
            answer_sha256: None,
        };
        if let Err(e) = self.audit.append(record).await {
            tracing::error!(error = %e, "audit log unavailable while registering a policy publication");
        }
    }

    /// `GET /v1/policy/status`: the version the coordinator runs, and what each node says
    /// it runs (asked now), with the last publication failure per node.
    pub async fn policy_status(&self) -> Reply {
        let own = self.policy.status();
        let asks = self.channels.iter().map(|(node, channel)| async move {
            (
                node.clone(),
                channel
                    .channel()
                    .request(&NodeRequest::PolicyStatus, self.config.deadline)
                    .await,
            )
        });
        let failures = self
            .publish_failures
            .lock()
            .map(|f| f.clone())
            .unwrap_or_default();
        let mut nodes = Vec::new();
        for (node, answer) in futures_util::future::join_all(asks).await {
            let last_publish_error = failures.get(&node).cloned();
            let entry = match answer {
                Ok(NodeResponse::PolicyStatus(state)) => crate::api::NodePolicyStatus {
                    node,
                    reachable: true,
                    version: Some(crate::api::PolicyVersion {
                        version: state.version,
                        label: state.label,
                        content_sha256: state.content_sha256,
                        threshold: state.threshold,
                        last_refusal: state.last_refusal,
                    }),
                    error: None,
                    last_publish_error,
                },
                Ok(_) => crate::api::NodePolicyStatus {
                    node,
                    reachable: true,
                    version: None,
                    error: Some("unexpected answer".into()),
                    last_publish_error,
                },
                Err(e) => crate::api::NodePolicyStatus {
                    node,
                    reachable: false,
                    version: None,
                    error: Some(e.to_string()),
                    last_publish_error,
                },
            };
            nodes.push(entry);
        }
        let in_step = nodes.iter().all(|n| {
            n.version
                .as_ref()
                .is_some_and(|v| v.content_sha256 == own.content_sha256)
        });
        Reply::ok(&crate::api::PolicyStatus {
            coordinator: crate::api::PolicyVersion {
                version: own.version,
                label: own.label,
                content_sha256: own.content_sha256,
                threshold: own.threshold,
                last_refusal: own.last_refusal,
            },
            nodes,
            in_step,
        })
    }
}

/// How long a node may take to verify and install a published bundle.
pub const PUBLISH_DEADLINE: Duration = Duration::from_secs(10);

/// How long graceful shutdown waits for in-flight queries (the one grace every fedq
/// server drains under).
pub use fedq_wire::drain::SHUTDOWN_GRACE;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_request_names_known_nodes_with_one_bounded_grant_each() {
        let known = |n: &str| n == "court" || n == "tax";
        let ok = parse_grants(br#"{"grants":{"court":"a.b.c","tax":"d.e.f"}}"#, known).unwrap();
        assert_eq!(ok.len(), 2);
        let id = "430102198001011233";
        let long = format!(
            r#"{{"grants":{{"court":"{}"}}}}"#,
            "x".repeat(MAX_GRANT_LEN + 1)
        );
        let cases = [
            (
                format!(r#"{{"grants":{{"{id}":"a.b.c"}}}}"#),
                "names a node this coordinator does not know",
            ),
            (
                r#"{"grants":{"court":7}}"#.to_owned(),
                "must be a compact JWS string",
            ),
            (long, "must be a compact JWS string of 1 to 8192 bytes"),
            (
                r#"{"grants":{}}"#.to_owned(),
                "`grants` must name 1 to 64 nodes",
            ),
            (
                format!(r#"{{"grants":{{"court":"a"}},"{id}":1}}"#),
                "the one field `grants`",
            ),
            (format!(r#"["{id}"]"#), "not a JSON object"),
            (format!(r#"{{"{id}"#), "not a JSON document"),
        ];
        for (body, want) in cases {
            let err = parse_grants(body.as_bytes(), known).unwrap_err();
            assert!(err.contains(want), "expected `{want}` in `{err}`");
            assert!(!err.contains(id) && !err.contains("xxxx"), "{err}");
        }
    }
}
