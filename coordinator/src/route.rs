//! One query at the coordinator as a plain state machine over data, with no sockets,
//! clocks or disks inside (the split quinn-proto makes from quinn):
//!
//! ```text
//! body + Clock ──Router::admit──▶ Concluded (refused: nothing sent to any node)
//!                            └──▶ FanOut ──asks()──▶ [the shell sends each lookup]
//!                                    └──conclude(answers)──▶ Concluded
//! Concluded ──into_parts──▶ AuditRecord ──[the shell appends it]──▶
//!           Release::after(appended) ──▶ Reply
//! ```
//!
//! In order: the body's size and shape, validation under the policy version in force,
//! the consent token (verified once here, and checked to cover this very query; every
//! node does both again), the policy pre-check (nothing is sent to a node the policy would
//! refuse), a requester proof for every node the plan asks, the requester's rate limit;
//! then one lookup per node, each with its own query id and the requester's proof for that
//! node alone. The answers are merged, a view's result computed (its sources' records stay
//! here), and the entry built.
//!
//! "Audit, then release" is in the types: the reply leaves a [`Concluded`] only through
//! [`Release::after`], which is given the outcome of writing its entry; an answer whose
//! entry was not written is withheld (503). The HTTPS layer ([`crate::service`],
//! [`crate::https`]) reads the time, sends the lookups, writes the log, and carries bytes.

use std::collections::BTreeMap;
use std::sync::Mutex;

use fedq_audit::{AuditError, AuditRecord, NodeQueryIds};
use fedq_policy::ratelimit::RateLimiter;
use fedq_policy::{DecisionRequest, Engine, ViewRequest};
use fedq_wire::message::{LookupRequest, LookupTarget};
use fedq_wire::transport::{ChannelError, Unreachable};
use fedq_wire::{NodeRequest, NodeResponse};

use crate::outcome::{Audited, Refusal, Reply, Unserved};
use crate::problem::{Hint, Kind, Said};
use crate::query::{
    self, NodeReport, NodeStatus, QueryRequest, QueryRequestExt as _, Recorded, RelayedAnswer,
    ValidQuery,
};

pub use fedq_policy::Clock;

/// What a coordinator routes queries with: the policy version in force (held by the
/// query from start to answer), its pseudonym keys, its rate limiter, and which nodes it
/// has. Cheap to build per query.
pub struct Router<'a> {
    /// The policy version in force when the query started.
    pub engine: &'a Engine,
    /// How entries and answers name that version.
    pub policy_label: &'a str,
    /// Derives each node's own id of a query.
    pub query_ids: &'a NodeQueryIds,
    /// Whether a node of that name is configured here.
    pub is_configured: &'a (dyn Fn(&str) -> bool + Sync),
    /// The policy's per-requester limits.
    pub limiter: &'a Mutex<RateLimiter>,
}

impl std::fmt::Debug for Router<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("policy", &self.policy_label)
            .finish_non_exhaustive()
    }
}

/// One lookup to send: to `node`, about `datasets` of it.
#[derive(Clone, Debug)]
pub struct Ask {
    /// The node.
    pub node: String,
    /// Its datasets this query asks.
    pub datasets: Vec<String>,
    /// The lookup, with the node's own query id and the requester's proof for it.
    pub request: NodeRequest,
}

/// A query admitted: the lookups to send, and what was decided without any node.
#[must_use = "a fan-out is concluded with the nodes' answers"]
#[derive(Debug)]
pub struct FanOut {
    asks: Vec<Ask>,
    /// Nodes not asked (denied by the pre-check, left out by the requester, not
    /// configured), already reported.
    reports: Vec<NodeReport>,
    query: ValidQuery,
    who: String,
    query_id: String,
    node_query_ids: BTreeMap<String, String>,
    /// Nodes of the plan that cannot be asked: their datasets and why.
    unanswered: Vec<(String, Vec<String>, &'static str)>,
    clock: Clock,
}

/// What a query comes to at [`Router::admit`].
#[derive(Debug)]
pub enum Routed {
    /// Refused before any node was asked.
    Concluded(Concluded),
    /// Admitted: send [`FanOut::asks`], then [`FanOut::conclude`].
    FanOut(FanOut),
}

/// A query decided: its entry, and its reply held until the entry is written.
#[must_use = "a concluded query is audited, then released"]
#[derive(Debug)]
pub struct Concluded {
    entry: AuditRecord,
    release: Release,
}

/// A reply held until its entry's write is reported ([`Release::after`]).
#[derive(Debug)]
pub struct Release {
    reply: Reply,
    query_id: String,
    audited: Audited,
}

impl Router<'_> {
    fn entry(&self, who: &str, query_id: &str, recorded: Recorded, clock: Clock) -> AuditRecord {
        AuditRecord {
            at: clock.now,
            kind: fedq_audit::EntryKind::Refusal,
            query_id: query_id.to_owned(),
            requester: who.to_owned(),
            purpose: recorded.purpose,
            legal_basis: recorded.legal_basis,
            case_reference: recorded.case_reference,
            // The coordinator never sees the person (sealed to the nodes): no subject.
            subject: "-".to_owned(),
            target: recorded.target,
            outcome: fedq_audit::Outcome::default(),
            policy_version: self.policy_label.to_owned(),
            consent_id: None,
            node_query_ids: BTreeMap::new(),
            answer_sha256: None,
        }
    }

    /// A refusal (no node asked): its entry records only what `recorded` may (the
    /// policy's own identifiers); its message never quotes the request.
    pub fn refusal(
        &self,
        who: &str,
        query_id: &str,
        refusal: Refusal,
        recorded: Recorded,
        clock: Clock,
    ) -> Concluded {
        let audited = Audited::Refused(refusal);
        let mut entry = self.entry(who, query_id, recorded, clock);
        entry.kind = audited.kind();
        entry.outcome = audited.outcome();
        let Audited::Refused(refusal) = &audited else {
            unreachable!("built as a refusal above")
        };
        let reply = Reply::refused(refusal, query_id);
        Concluded {
            entry,
            release: Release {
                reply,
                query_id: query_id.to_owned(),
                audited,
            },
        }
    }

    /// Decides a query from requester `who` (authenticated by the shell) up to the
    /// fan-out. The subject and the consent token are sealed to the nodes: the coordinator
    /// decides on metadata (requester, purpose, legal basis, case reference, whether a
    /// consent token is sealed, target) and records no subject.
    pub fn admit(&self, who: &str, query_id: &str, body: &[u8], clock: Clock) -> Routed {
        let refuse = |refusal: Refusal, recorded: Recorded| {
            Routed::Concluded(self.refusal(who, query_id, refusal, recorded, clock))
        };
        if body.len() > query::MAX_BODY {
            return refuse(
                Refusal::TooLarge(Said::new(
                    format!("request body over {} bytes", query::MAX_BODY),
                    Hint {
                        limit_bytes: Some(query::MAX_BODY as u64),
                        ..Hint::default()
                    },
                )),
                Recorded::nothing(),
            );
        }
        let request = match QueryRequest::from_json(body) {
            Ok(r) => r,
            Err(refusal) => return refuse(refusal.into(), Recorded::nothing()),
        };
        let engine = self.engine;
        let recorded = Recorded::of(&request, engine);
        let mut query = match request.validate(engine) {
            Ok(q) => q,
            Err(refusal) => return refuse(refusal.into(), recorded),
        };
        // Policy pre-check: nothing is sent to any node the policy would refuse. Consent
        // counts here as the requester states it (a token sealed with the subject); every
        // node verifies the token itself and refuses if it does not cover the lookup.
        let consent = query.consent_sealed;
        let locally_denied = match precheck(engine, who, &query, consent, clock.today) {
            Ok(denied) => denied,
            Err(refusal) => {
                let said = Said::new(refusal.to_string(), Hint::of_policy(&refusal));
                return refuse(Refusal::Policy(said), recorded);
            }
        };
        // Every node this query will ask must be proven to (or explicitly left out with
        // `null`): a query that forgot one is refused before any node is asked, rather
        // than sent on with nothing the node would accept.
        let plan = query::plan(engine, &query.target);
        if let Some((kind, reason)) =
            self.unproven(&plan, &locally_denied, &query.proofs, &query.sealed)
        {
            let said = Said::new(reason, Hint::field(kind, "proofs", Vec::new()));
            return refuse(Refusal::Malformed(said), recorded);
        }
        let rate = match self.limiter.lock() {
            Ok(mut limiter) => limiter.check(who, clock.now).map_err(|e| e.to_string()),
            Err(_) => Err("the rate limiter is unavailable; retry later".to_owned()),
        };
        if let Err(why) = rate {
            return refuse(Refusal::RateLimited(why.into()), recorded);
        }
        // The plan: one lookup per node asked. Each node gets its own id of this query,
        // so no two departments' logs share one; only this coordinator's entry maps them.
        let mut reports = Vec::new();
        let mut asks = Vec::new();
        let mut node_query_ids = BTreeMap::new();
        let mut unanswered = Vec::new();
        for (node, datasets) in &plan {
            let asked: Vec<String> = datasets
                .iter()
                .filter(|d| !locally_denied.contains_key(*d))
                .cloned()
                .collect();
            if asked.is_empty() {
                let why = datasets
                    .iter()
                    .filter_map(|d| locally_denied.get(d).map(|w| format!("{d}: {w}")))
                    .collect::<Vec<_>>()
                    .join("; ");
                reports.push(NodeReport {
                    node: node.clone(),
                    status: NodeStatus::Denied,
                    reason: Some(why),
                    datasets: datasets.clone(),
                    proof_refused: None,
                    query_id: None,
                    sealed_answer: None,
                    receipt: None,
                    answer_sha256: None,
                });
                continue;
            }
            if !(self.is_configured)(node) {
                unanswered.push((
                    node.clone(),
                    datasets.clone(),
                    "no node is configured for this department",
                ));
                continue;
            }
            // `unproven` saw to it that every node asked has an entry. Each proof and
            // sealed subject goes to one node: moved into its lookup, not copied.
            let Some(Some(proof)) = query.proofs.remove(node) else {
                unanswered.push((node.clone(), asked, query::NOT_PROVEN));
                continue;
            };
            // `unproven` saw to it that every node proven to has its sealed subject.
            let sealed = query.sealed.remove(node).unwrap_or_default();
            let node_query_id = self.query_ids.for_node(query_id, node);
            node_query_ids.insert(node.clone(), node_query_id.clone());
            let request = NodeRequest::Lookup(LookupRequest {
                query_id: node_query_id,
                requester: who.to_owned(),
                purpose: query.purpose.clone(),
                legal_basis: query.legal_basis.clone(),
                case_reference: query.case_reference.clone(),
                target: query::target_for(&query.target, &asked),
                policy_version: self.policy_label.to_owned(),
                date: clock.today,
                // The requester's proof for this node alone; the node checks it itself.
                proof,
                // The subject sealed to this node alone: forwarded, never opened here.
                sealed,
            });
            asks.push(Ask {
                node: node.clone(),
                datasets: asked,
                request,
            });
        }
        Routed::FanOut(FanOut {
            asks,
            reports,
            query,
            who: who.to_owned(),
            query_id: query_id.to_owned(),
            node_query_ids,
            unanswered,
            clock,
        })
    }

    /// Why `proofs` cannot carry this query, if it cannot: it names a node this
    /// coordinator does not know, or lacks an entry for a node the plan asks. The message
    /// names only configured nodes, never a key that was sent.
    fn unproven(
        &self,
        plan: &BTreeMap<String, Vec<String>>,
        locally_denied: &BTreeMap<String, String>,
        proofs: &BTreeMap<String, Option<String>>,
        sealed: &BTreeMap<String, String>,
    ) -> Option<(Kind, String)> {
        if proofs.keys().any(|n| !(self.is_configured)(n)) {
            return Some((
                Kind::MalformedRequest,
                "`proofs` names a node this coordinator does not know; GET /v1/nodes lists them"
                    .into(),
            ));
        }
        let missing: Vec<&str> = plan
            .iter()
            .filter(|(_, ds)| ds.iter().any(|d| !locally_denied.contains_key(d)))
            .map(|(node, _)| node.as_str())
            .filter(|node| (self.is_configured)(node) && !proofs.contains_key(*node))
            .collect();
        if !missing.is_empty() {
            return Some((Kind::ProofMissing, format!(
            "the query carries no requester proof for node(s) {} which it asks; open a session with each (POST /v1/sessions) and send `proofs` with one per node (`fedq query` does this), or null for a node to leave unasked",
            missing.join(", ")
        )));
        }
        let unsealed: Vec<&str> = proofs
            .iter()
            .filter(|(node, proof)| proof.is_some() && !sealed.contains_key(*node))
            .map(|(node, _)| node.as_str())
            .collect();
        if !unsealed.is_empty() {
            return Some((Kind::MalformedRequest, format!(
                "the query carries no sealed subject for node(s) {} which it proves to; send `sealed` with the subject sealed to each of them (`fedq query` does this)",
                unsealed.join(", ")
            )));
        }
        if sealed
            .keys()
            .any(|n| !matches!(proofs.get(n), Some(Some(_))))
        {
            return Some((
                Kind::MalformedRequest,
                "`sealed` names a node the query carries no proof for; seal the subject only to the nodes proven to".into(),
            ));
        }
        None
    }
}

/// The policy pre-check of a validated query: `Err` refuses it whole; `Ok` gives the
/// datasets the policy releases nothing of, each with why (they are not asked).
fn precheck(
    engine: &Engine,
    who: &str,
    query: &ValidQuery,
    consent: bool,
    today: time::Date,
) -> Result<BTreeMap<String, String>, fedq_policy::engine::Refusal> {
    let mut locally_denied = BTreeMap::new();
    match &query.target {
        LookupTarget::Rights(r) => {
            engine.check_rights(
                who,
                &query.purpose,
                query.legal_basis.as_deref(),
                consent,
                query.case_reference.as_deref(),
                r.right,
            )?;
        }
        LookupTarget::View(view) => {
            engine.decide_view(&ViewRequest {
                requester: who,
                purpose: &query.purpose,
                legal_basis: query.legal_basis.as_deref(),
                consent,
                case_reference: query.case_reference.as_deref(),
                view,
                now: today,
            })?;
        }
        LookupTarget::Datasets(ds) => {
            for d in ds {
                let names: Vec<&str> = d.fields.iter().flatten().map(String::as_str).collect();
                let fields = match &d.fields {
                    Some(_) => fedq_policy::FieldSelection::Named(&names),
                    None => fedq_policy::FieldSelection::All,
                };
                let decision = engine.decide(&DecisionRequest {
                    requester: who,
                    purpose: &query.purpose,
                    legal_basis: query.legal_basis.as_deref(),
                    consent,
                    case_reference: query.case_reference.as_deref(),
                    dataset: &d.dataset,
                    fields,
                    now: today,
                })?;
                if !decision.releases_anything() {
                    // The deciding deny or limit, if any, by its reason (not its wording).
                    let why = decision
                        .fields
                        .iter()
                        .find(|f| {
                            matches!(
                                f.reason,
                                fedq_policy::engine::Reason::Denied(_)
                                    | fedq_policy::engine::Reason::Limited(_)
                            )
                        })
                        .map(|f| f.explanation())
                        .unwrap_or_else(|| "no rule grants these fields to this requester for this purpose (default deny)".into());
                    locally_denied.insert(d.dataset.clone(), why);
                }
            }
        }
    }
    Ok(locally_denied)
}

impl FanOut {
    /// The lookups to send.
    pub fn asks(&self) -> &[Ask] {
        &self.asks
    }

    /// Relays the nodes' answers (by node; an ask with none is unavailable) — each sealed
    /// to the requester, so nothing any node released is read here — and builds the entry:
    /// each node's status and its sealed answer's size.
    pub fn conclude(
        self,
        router: &Router<'_>,
        mut answers: BTreeMap<String, Result<NodeResponse, ChannelError>>,
    ) -> Concluded {
        let FanOut {
            asks,
            mut reports,
            query,
            who,
            query_id,
            node_query_ids,
            unanswered,
            clock,
        } = self;
        // A node that could not be asked is unavailable, with why: a view counts its
        // sources as unknown, never as holding no record.
        for (node, datasets, why) in unanswered {
            reports.push(query::relay_node(
                &node,
                &datasets,
                Err(ChannelError::Unavailable {
                    node: node.clone(),
                    reason: Unreachable::Other(why.into()),
                }),
            ));
        }
        for ask in &asks {
            let answer = answers.remove(&ask.node).unwrap_or_else(|| {
                Err(ChannelError::Unavailable {
                    node: ask.node.clone(),
                    reason: Unreachable::Other("no answer was received".into()),
                })
            });
            reports.push(query::relay_node(&ask.node, &ask.datasets, answer));
        }
        reports.sort_by(|a, b| a.node.cmp(&b.node));
        let complete = reports
            .iter()
            .all(|r| !matches!(r.status, NodeStatus::Unavailable | NodeStatus::TimedOut));
        let view_terms = match &query.target {
            LookupTarget::View(v) => router.engine.view_terms(v).map(|(t, _)| t.clone()),
            LookupTarget::Datasets(_) | LookupTarget::Rights(_) => None,
        };
        let audited = Audited::Answered {
            complete,
            nodes: reports.iter().map(|r| (r.node.clone(), r.status)).collect(),
            sizes: reports
                .iter()
                .filter_map(|r| Some((r.node.clone(), r.sealed_answer.as_ref()?.len())))
                .collect(),
        };
        let response = RelayedAnswer {
            query_id: query_id.clone(),
            policy_version: router.policy_label.to_owned(),
            purpose: query.purpose.clone(),
            view: match &query.target {
                LookupTarget::View(v) => Some(v.clone()),
                LookupTarget::Datasets(_) | LookupTarget::Rights(_) => None,
            },
            complete,
            nodes: reports,
            view_terms,
        };
        let entry = AuditRecord {
            at: clock.now,
            kind: audited.kind(),
            query_id: query_id.clone(),
            requester: who,
            purpose: query.purpose.clone(),
            legal_basis: query.legal_basis.clone(),
            case_reference: query.case_reference.clone(),
            subject: "-".to_owned(),
            target: query.target.describe(),
            outcome: audited.outcome(),
            policy_version: router.policy_label.to_owned(),
            consent_id: None,
            node_query_ids,
            answer_sha256: None,
        };
        let reply = match serde_json::to_value(&response) {
            Ok(body) => Reply {
                status: audited.http_status(),
                body,
            },
            Err(e) => Reply::unserved(&Unserved::Unencodable(e.to_string()), &query_id),
        };
        Concluded {
            entry,
            release: Release {
                reply,
                query_id,
                audited,
            },
        }
    }
}

impl Concluded {
    /// The entry to write.
    pub fn entry(&self) -> &AuditRecord {
        &self.entry
    }

    /// What the entry registers.
    pub fn audited(&self) -> &Audited {
        &self.release.audited
    }

    /// The entry to write and the reply held until then.
    pub fn into_parts(self) -> (AuditRecord, Release) {
        (self.entry, self.release)
    }
}

impl Release {
    /// The reply, given how writing its entry went, with the `outcome` label
    /// `fedq_queries_total` counts it under: nothing is answered, not even a refusal,
    /// unless the entry is durable (503 otherwise).
    pub fn after(self, appended: Result<(), &AuditError>) -> (Reply, &'static str) {
        match appended {
            Ok(()) => (self.reply, self.audited.metric()),
            Err(e) => {
                tracing::error!(error = %e, "audit log unavailable; reply withheld");
                let why = match self.audited {
                    Audited::Refused(_) => Unserved::AuditUnavailable,
                    Audited::Answered { .. } => Unserved::AnswerWithheld,
                };
                (Reply::unserved(&why, &self.query_id), why.metric())
            }
        }
    }
}
