//! The query path without a network: the coordinator's core ([`fedq_coordinator::route`])
//! and each node's core ([`fedq_node::lookup`]) driven by a simulated federation, in one
//! thread, with faults injected between and inside them. No sockets, no clock (the
//! simulation's clock is a value it advances), no disks but the test CA's files; the
//! certificates are real ones from the federation's CA, the policy the reference one, the
//! sessions and proofs the requester's real ones.
//!
//! Faults: a node lost or timed out on the way, its store or audit log failing, its clock
//! skewed, a lookup altered or replayed on the way (a rogue coordinator or link), and the
//! coordinator's own audit log failing. Every run checks the same invariants: nothing is
//! answered that was not audited first, an answer is complete only when every node asked
//! answered, a view never reads an unasked or failed source as "no record", and no two
//! departments record the same query id.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::sync::Mutex;

use fedq_audit::{AuditError, AuditRecord, EntryKind, NodeQueryIds, Pseudonymizer};
use fedq_bundle::state::InForce;
use fedq_certs::jws::CertificateKey;
use fedq_certs::pki::{CertificateAuthority, IssueOptions};
use fedq_certs::tls::TrustFiles;
use fedq_certs::{FederationTrust, Role};
use fedq_coordinator::outcome::{Audited, Refusal};
use fedq_coordinator::query::{QueryRequest, QueryRequestExt as _, RelayedAnswer};
use fedq_coordinator::route::{Routed, Router};
use fedq_node::consent::ConsentUses;
use fedq_node::evidence::Evidence;
use fedq_node::lookup::{Admitted, Desk, ReadFailure};
use fedq_policy::ratelimit::RateLimiter;
use fedq_policy::{Record, Value};
use fedq_wire::proof::{
    fresh_nonce, ProofField, ProofGate, ProofRefusal, Session, SessionGrant, UnixTime,
};
use fedq_wire::transport::ChannelError;
use fedq_wire::{NodeRequest, NodeResponse};
use serde_json::Value as Json;

const FEDERATION: &str = "changsha";
const LICENSING: &str = "market-regulation.licensing";
const LICENSING_BASIS: &str = "长政办发〔2017〕62号";
const LICENSING_CASE: &str = "长市监许申〔2026〕001234号";
/// Listed as a dishonest debtor at the court.
const LISTED: &str = "430102198001011233";
/// No record anywhere.
const CLEAN: &str = "430102199003071234";
/// The blacklist check's sources' departments.
const NODES: [&str; 3] = ["court", "hrss", "tax"];

/// Whether the simulated coordinator has a node of that name.
fn is_configured(node: &str) -> bool {
    NODES.contains(&node)
}

/// What can go wrong with one node's part of one query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// Nothing.
    None,
    /// The lookup never reaches the node (connection lost).
    Lost,
    /// The node does not answer in time.
    TimedOut,
    /// The node's store fails on the read.
    StoreDown,
    /// The node's audit log fails on the write.
    AuditDown,
    /// The node's date is a month off the coordinator's.
    ClockSkew,
    /// The lookup's purpose is changed on the way.
    AlteredPurpose,
    /// The lookup's sealed subject is swapped on the way for one the requester sealed to
    /// the same node for another query.
    SwappedSealed,
    /// The lookup is delivered twice; the second delivery's answer is the one returned.
    Replayed,
}

const FAULTS: [Fault; 9] = [
    Fault::None,
    Fault::Lost,
    Fault::TimedOut,
    Fault::StoreDown,
    Fault::AuditDown,
    Fault::ClockSkew,
    Fault::AlteredPurpose,
    Fault::SwappedSealed,
    Fault::Replayed,
];

fn audit_down() -> AuditError {
    AuditError::Store {
        path: "simulated".into(),
        reason: "the simulated disk is full".into(),
    }
}

/// One department's node: its gate, limiter, consent uses, pseudonyms, records and log.
struct SimNode {
    name: String,
    key: CertificateKey,
    gate: ProofGate,
    limiter: Mutex<RateLimiter>,
    consent_uses: ConsentUses,
    pseudonyms: Pseudonymizer,
    /// Subject → dataset → records.
    records: BTreeMap<String, BTreeMap<String, Vec<Record>>>,
    log: Vec<AuditRecord>,
}

struct Sim {
    _dir: tempfile::TempDir,
    trust: FederationTrust,
    policy: InForce,
    now: time::OffsetDateTime,
    query_ids: NodeQueryIds,
    coordinator_limiter: Mutex<RateLimiter>,
    coordinator_log: Vec<AuditRecord>,
    nodes: BTreeMap<String, SimNode>,
    sessions: BTreeMap<String, Session>,
    next_query: u64,
}

fn reference_policy() -> InForce {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("reference/changsha/policy.toml");
    let engine = fedq_policy::load::load_engine(&path, None).unwrap();
    InForce {
        version: 0,
        threshold: 2,
        content_sha256: "simulated".into(),
        approved_by: Vec::new(),
        officers: Vec::new(),
        engine,
    }
}

fn unix(t: time::OffsetDateTime) -> UnixTime {
    UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        t.unix_timestamp().unsigned_abs(),
    ))
}

/// A listing of `subject` at the court, `days` before `today`.
fn court_listing(subject: &str, today: time::Date, days: i64) -> Record {
    let text = |s: &str| Value::Text(s.to_owned());
    BTreeMap::from([
        ("case_no".to_owned(), text("(2026)湘0102执1234号")),
        ("resident_id".to_owned(), text(subject)),
        ("name".to_owned(), text("张某")),
        ("court".to_owned(), text("长沙市芙蓉区人民法院")),
        ("obligation".to_owned(), text("给付货款")),
        ("amount_owed".to_owned(), Value::Amount(1_234_500)),
        ("performance_status".to_owned(), text("unperformed")),
        (
            "listed_on".to_owned(),
            Value::Date(today - time::Duration::days(days)),
        ),
    ])
}

impl Sim {
    fn new() -> Sim {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::init(dir.path(), FEDERATION, false).unwrap();
        let opts = IssueOptions::default();
        ca.issue(Role::Requester, LICENSING, &opts).unwrap();
        for node in NODES {
            ca.issue(Role::Node, node, &opts).unwrap();
        }
        let trust = FederationTrust::load(&TrustFiles::in_dir(dir.path())).unwrap();
        let load = |n: &str| {
            CertificateKey::load(
                &dir.path().join(format!("{n}.crt")),
                &dir.path().join(format!("{n}.key")),
            )
            .unwrap()
        };
        let policy = reference_policy();
        let now = time::OffsetDateTime::now_utc();
        let today = fedq_policy::calendar::date_in_city(now);
        let nodes = NODES
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let mut records = BTreeMap::new();
                if *name == "court" {
                    records.insert(
                        LISTED.to_owned(),
                        BTreeMap::from([(
                            "court.dishonest_debtors".to_owned(),
                            vec![court_listing(LISTED, today, 100)],
                        )]),
                    );
                }
                let node = SimNode {
                    name: (*name).to_owned(),
                    key: load(name),
                    gate: ProofGate::new(FEDERATION, name, 64, 4096),
                    limiter: Mutex::new(RateLimiter::second_counter(policy.engine.policy())),
                    consent_uses: ConsentUses::default(),
                    pseudonyms: Pseudonymizer::from_key(&[i as u8 + 1; 32]),
                    records,
                    log: Vec::new(),
                };
                ((*name).to_owned(), node)
            })
            .collect();
        let coordinator_pseudonyms = Pseudonymizer::from_key(&[0xC0; 32]);
        let requester = load(LICENSING);
        let mut sim = Sim {
            _dir: dir,
            query_ids: coordinator_pseudonyms.node_query_ids(),
            coordinator_limiter: Mutex::new(RateLimiter::new(policy.engine.policy())),
            coordinator_log: Vec::new(),
            trust,
            policy,
            now,
            nodes,
            sessions: BTreeMap::new(),
            next_query: 0,
        };
        // The requester's sessions, one per node, opened through the node's own gate.
        for name in NODES {
            let at = unix(sim.now);
            let (grant, pending) = SessionGrant::new(&requester, FEDERATION, name, at).unwrap();
            let node = &sim.nodes[name];
            let (accept, proven) = node.gate.open(&grant, &sim.trust, &node.key, at).unwrap();
            assert_eq!(proven, LICENSING);
            let session = pending.complete(&accept, &sim.trust, at).unwrap();
            sim.sessions.insert(name.to_owned(), session);
        }
        sim
    }

    /// A blacklist check of `subject` for a licensing application, as `fedq query` sends
    /// it: one proof per node.
    fn blacklist_check(&self, subject: &str) -> QueryRequest {
        let mut query = self.blacklist_query(subject);
        self.prove(&mut query);
        query
    }

    /// The same query before it is proven (the requester's own form, subject in it).
    fn blacklist_query(&self, subject: &str) -> QueryRequest {
        QueryRequest {
            subject: subject.to_owned(),
            purpose: "administrative-licensing".into(),
            legal_basis: Some(LICENSING_BASIS.into()),
            case_reference: Some(LICENSING_CASE.into()),
            view: Some("blacklist-check".into()),
            ..QueryRequest::default()
        }
    }

    /// Proves `query` to every node with the subject sealed to each, and takes the
    /// subject and consent token out of it, as `fedq query` does.
    fn prove(&self, query: &mut QueryRequest) {
        let claims = query.proof_claims().expect("a query that can be proven");
        let subject = query
            .sealed_subject()
            .expect("a subject that can be sealed");
        let at = unix(self.now);
        query.subject.clear();
        query.consent = None;
        query.consent_sealed = subject.consent.is_some();
        for (node, s) in &self.sessions {
            let (proof, sealed) = s
                .prove_sealed(&claims, &subject, at, &fresh_nonce().unwrap())
                .unwrap();
            query.proofs.insert(node.clone(), Some(proof));
            query.sealed.insert(node.clone(), sealed);
        }
    }

    /// A subject the requester sealed to `node` for another query (of `person`).
    fn sealed_elsewhere(&self, node: &str, person: &str) -> String {
        let mut other = self.blacklist_check(person);
        other.sealed.remove(node).unwrap()
    }

    /// The coordinator's core over this federation, under the policy labelled `label`.
    fn router<'a>(&'a self, label: &'a str) -> Router<'a> {
        Router {
            engine: &self.policy.engine,
            policy_label: label,
            query_ids: &self.query_ids,
            is_configured: &is_configured,
            limiter: &self.coordinator_limiter,
        }
    }

    fn clock(&self) -> fedq_policy::Clock {
        fedq_policy::Clock {
            now: self.now,
            today: fedq_policy::calendar::date_in_city(self.now),
        }
    }

    /// One node's part: its core admits, the simulation reads, the core answers, the
    /// simulation writes the log (or fails it), and only then the response is released.
    fn at_node(&mut self, name: &str, request: &NodeRequest, fault: Fault) -> NodeResponse {
        let NodeRequest::Lookup(lookup) = request.clone() else {
            panic!("the coordinator's core only sends lookups: {request:?}");
        };
        let policy = &self.policy;
        let node = self.nodes.get_mut(name).unwrap();
        let is_revoked = |_: &str| false;
        let desk = Desk {
            node: &node.name,
            department: &node.name,
            policy,
            pseudonyms: &node.pseudonyms,
            gate: &node.gate,
            is_revoked: &is_revoked,
            limiter: &node.limiter,
            consent_uses: &node.consent_uses,
            max_answer_len: 1 << 20,
        };
        let mut today = fedq_policy::calendar::date_in_city(self.now);
        if fault == Fault::ClockSkew {
            today += time::Duration::days(30);
        }
        let clock = fedq_policy::Clock {
            now: self.now,
            today,
        };
        let finished = match desk.admit("coordinator", lookup, clock, Some(&self.trust)) {
            Admitted::Finished(finished) => *finished,
            Admitted::Read(pending) => {
                let read = if fault == Fault::StoreDown {
                    Err(ReadFailure::Store)
                } else {
                    let held = node.records.get(pending.subject());
                    Ok(pending
                        .reads()
                        .datasets
                        .iter()
                        .map(|d| {
                            let records = held.and_then(|h| h.get(d)).cloned().unwrap_or_default();
                            (d.clone(), Evidence::Records(records))
                        })
                        .collect())
                };
                pending.answer(&desk, read, &Default::default())
            }
        };
        let (entry, _consent_use, release) = finished.into_parts();
        if fault == Fault::AuditDown {
            release.after(Err(&audit_down()))
        } else {
            node.log.push(entry);
            release.after(Ok(()))
        }
    }

    /// One query through the coordinator's core, each node's part under its fault, and
    /// the coordinator's log (failing when `coordinator_audit_down`). The reply's status
    /// and body.
    fn query(
        &mut self,
        query: &QueryRequest,
        faults: &BTreeMap<&str, Fault>,
        coordinator_audit_down: bool,
    ) -> (u16, Json) {
        self.next_query += 1;
        let query_id = format!("{:024x}", self.next_query);
        let body = serde_json::to_vec(query).unwrap();
        let label = self.policy.label();
        let clock = self.clock();
        let routed = {
            self.router(&label)
                .admit(LICENSING, &query_id, &body, clock)
        };
        let concluded = match routed {
            Routed::Concluded(refused) => refused,
            Routed::FanOut(fan_out) => {
                // A tap on what the coordinator sends: no resident ID in any lookup frame.
                for ask in fan_out.asks() {
                    let frame = fedq_wire::frame::encode(&ask.request).unwrap();
                    for id in [LISTED, CLEAN] {
                        assert!(
                            !frame.windows(id.len()).any(|w| w == id.as_bytes()),
                            "a lookup frame to {} carries a resident ID",
                            ask.node
                        );
                    }
                }
                let mut answers = BTreeMap::new();
                for ask in fan_out.asks() {
                    let fault = faults
                        .get(ask.node.as_str())
                        .copied()
                        .unwrap_or(Fault::None);
                    let answer = match fault {
                        Fault::Lost => Err(ChannelError::Unavailable {
                            node: ask.node.clone(),
                            reason: fedq_wire::transport::Unreachable::Other(
                                "connection lost".into(),
                            ),
                        }),
                        Fault::TimedOut => Err(ChannelError::TimedOut {
                            node: ask.node.clone(),
                            after: std::time::Duration::from_secs(2),
                        }),
                        Fault::AlteredPurpose | Fault::SwappedSealed => {
                            let NodeRequest::Lookup(mut lookup) = ask.request.clone() else {
                                unreachable!()
                            };
                            if fault == Fault::AlteredPurpose {
                                lookup.purpose = "judgment-enforcement".into();
                            } else {
                                lookup.sealed = self.sealed_elsewhere(&ask.node, CLEAN);
                            }
                            Ok(self.at_node(&ask.node, &NodeRequest::Lookup(lookup), fault))
                        }
                        Fault::Replayed => {
                            let _first = self.at_node(&ask.node, &ask.request, Fault::None);
                            Ok(self.at_node(&ask.node, &ask.request, fault))
                        }
                        _ => Ok(self.at_node(&ask.node, &ask.request, fault)),
                    };
                    answers.insert(ask.node.clone(), answer);
                }
                fan_out.conclude(&self.router(&label), answers)
            }
        };
        let (entry, release) = concluded.into_parts();
        let (reply, _metric) = if coordinator_audit_down {
            release.after(Err(&audit_down()))
        } else {
            self.coordinator_log.push(entry);
            release.after(Ok(()))
        };
        // Three seconds between queries: inside every rate limit of the reference policy, replays included.
        self.now += time::Duration::seconds(3);
        // A tap on what the coordinator answers: no resident ID and no record value.
        let relayed = reply.body.to_string();
        for value in [LISTED, CLEAN, "湘0102执1234号", "unperformed", "张某"] {
            assert!(
                !relayed.contains(value),
                "the coordinator's answer carries `{value}`"
            );
        }
        (reply.status, self.open(query, reply.status, reply.body))
    }

    /// The requester side: each node's sealed answer opened with its session and the
    /// nonce of the proof sent to it, and the answer concluded.
    fn open(&self, query: &QueryRequest, status: u16, body: Json) -> Json {
        let Ok(relayed) = serde_json::from_value::<RelayedAnswer>(body.clone()) else {
            return body;
        };
        if status != 200 {
            return body;
        }
        let opened = relayed
            .nodes
            .iter()
            .filter_map(|r| {
                let sealed = r.sealed_answer.as_deref()?;
                let nonce = query
                    .proofs
                    .get(&r.node)?
                    .as_deref()
                    .and_then(fedq_wire::proof::proof_nonce)?;
                Some((
                    r.node.clone(),
                    self.sessions[&r.node].open_lookup_answer(sealed, &nonce),
                ))
            })
            .collect();
        let asked = fedq_coordinator::opening::Asked::of(query);
        serde_json::to_value(fedq_coordinator::opening::conclude(&asked, relayed, opened)).unwrap()
    }
}

fn node_status<'a>(body: &'a Json, node: &str) -> &'a str {
    body["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == node)
        .and_then(|n| n["status"].as_str())
        .unwrap_or_else(|| panic!("no report for `{node}` in {body}"))
}

#[test]
fn a_clean_run_answers_the_view_and_every_party_logs_its_own_query_id() {
    let mut sim = Sim::new();
    let query = sim.blacklist_check(LISTED);
    let (status, body) = sim.query(&query, &BTreeMap::new(), false);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["complete"], true, "{body}");
    let result = &body["view_result"];
    assert_eq!(result["kind"], "blacklist");
    assert_eq!(result["listings"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(result["unverified"], serde_json::json!([]));
    // A view releases its result, not its inputs.
    assert_eq!(body["datasets"], serde_json::json!({}), "{body}");

    let entry = sim.coordinator_log.last().unwrap();
    assert_eq!(entry.kind, EntryKind::Query);
    // The coordinator never saw the person: its entry names none, not even a pseudonym.
    assert_eq!(entry.subject, "-");
    assert!(!body.to_string().contains(LISTED), "{body}");
    assert_eq!(entry.case_reference.as_deref(), Some(LICENSING_CASE));
    assert_eq!(entry.node_query_ids.len(), 3, "{entry:?}");
    let mut seen = Vec::new();
    for name in NODES {
        let node = &sim.nodes[name];
        let answer = node.log.last().unwrap();
        assert_eq!(answer.kind, EntryKind::Answer, "{answer:?}");
        assert_eq!(answer.requester, LICENSING);
        assert_eq!(answer.query_id, entry.node_query_ids[name]);
        assert_ne!(answer.query_id, entry.query_id);
        assert_eq!(answer.subject, node.pseudonyms.pseudonym(LISTED));
        assert!(!format!("{answer:?}").contains(LISTED));
        seen.push(answer.query_id.clone());
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 3, "no two departments record the same query id");
}

#[test]
fn a_lost_or_slow_node_makes_the_check_incomplete_never_not_listed() {
    for fault in [
        Fault::Lost,
        Fault::TimedOut,
        Fault::StoreDown,
        Fault::AuditDown,
    ] {
        let mut sim = Sim::new();
        let query = sim.blacklist_check(LISTED);
        let faults = BTreeMap::from([("court", fault)]);
        let (status, body) = sim.query(&query, &faults, false);
        assert_eq!(status, 200, "{fault:?}: {body}");
        assert_eq!(body["complete"], false, "{fault:?}: {body}");
        let expected = if fault == Fault::TimedOut {
            "timed_out"
        } else {
            "unavailable"
        };
        assert_eq!(node_status(&body, "court"), expected, "{fault:?}: {body}");
        // The court's listing is not in the answer, and the check does not say "not
        // listed": the court is among the sources it could not check.
        let result = &body["view_result"];
        assert_eq!(
            result["listings"],
            serde_json::json!([]),
            "{fault:?}: {body}"
        );
        assert!(
            result["unverified"]
                .as_array()
                .unwrap()
                .iter()
                .any(|u| u.to_string().contains("court")),
            "{fault:?}: {body}"
        );
        let court = &sim.nodes["court"];
        match fault {
            // Never reached the node: it has nothing to log.
            Fault::Lost | Fault::TimedOut => assert!(court.log.is_empty(), "{fault:?}"),
            // The entry could not be written: nothing was released either.
            Fault::AuditDown => assert!(court.log.is_empty()),
            _ => {
                let entry = court.log.last().unwrap();
                assert_eq!(entry.kind, EntryKind::Answer);
                assert_eq!(entry.outcome, r#"{"unavailable":"store"}"#);
            }
        }
        for other in ["tax", "hrss"] {
            assert_eq!(node_status(&body, other), "answered", "{fault:?}: {body}");
        }
    }
}

#[test]
fn a_lookup_altered_or_replayed_on_the_way_is_refused_by_the_node_with_its_code() {
    for (fault, code) in [
        (
            Fault::AlteredPurpose,
            ProofRefusal::Altered(ProofField::Purpose),
        ),
        (
            Fault::SwappedSealed,
            ProofRefusal::Altered(ProofField::Sealed),
        ),
        (Fault::Replayed, ProofRefusal::Replayed),
    ] {
        let mut sim = Sim::new();
        let query = sim.blacklist_check(LISTED);
        let faults = BTreeMap::from([("court", fault)]);
        let (status, body) = sim.query(&query, &faults, false);
        assert_eq!(status, 200, "{fault:?}: {body}");
        // The court answered, with a refusal: a definite answer, so the query is
        // complete, and the check counts the court among the sources it could not check.
        assert_eq!(node_status(&body, "court"), "denied", "{fault:?}: {body}");
        assert!(
            body["view_result"]["unverified"]
                .to_string()
                .contains("court"),
            "{fault:?}: {body}"
        );
        let court = body["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["node"] == "court")
            .unwrap();
        assert_eq!(court["proof_refused"], code.code(), "{fault:?}: {body}");
        assert_eq!(body["view_result"]["listings"], serde_json::json!([]));
        let refusal = sim.nodes["court"].log.last().unwrap();
        assert_eq!(refusal.kind, EntryKind::Refusal, "{fault:?}");
        assert!(refusal.outcome.contains(code.code()), "{refusal:?}");
        // The refusal names the requester the session proves, and nothing of what was
        // asked but the subject's pseudonym.
        assert_eq!(refusal.requester, LICENSING);
        assert_eq!(refusal.purpose, "-");
    }
}

#[test]
fn a_skewed_node_clock_fails_its_lookup_and_says_so() {
    let mut sim = Sim::new();
    let query = sim.blacklist_check(CLEAN);
    let (status, body) = sim.query(&query, &BTreeMap::from([("tax", Fault::ClockSkew)]), false);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["complete"], false);
    let tax = &sim.nodes["tax"].log.last().unwrap();
    assert!(tax.outcome.contains("clock_skew"), "{tax:?}");
    let report = body["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == "tax")
        .unwrap();
    assert!(
        report["reason"].as_str().unwrap().contains("clock skew"),
        "{body}"
    );
}

#[test]
fn the_coordinator_withholds_every_reply_its_log_did_not_take() {
    let mut sim = Sim::new();
    let query = sim.blacklist_check(LISTED);
    let (status, body) = sim.query(&query, &BTreeMap::new(), true);
    assert_eq!(status, 503, "{body}");
    assert!(body.get("view_result").is_none(), "{body}");
    assert!(sim.coordinator_log.is_empty());
    // A refusal is withheld the same way: a refusal the log does not hold never happened.
    let mut bad = sim.blacklist_check(LISTED);
    bad.proofs.remove("tax");
    let (status, _) = sim.query(&bad, &BTreeMap::new(), true);
    assert_eq!(status, 503);
    assert!(sim.coordinator_log.is_empty());
}

#[test]
fn refusals_before_any_node_is_asked_are_typed_and_audited() {
    let mut sim = Sim::new();
    let node_entries = |sim: &Sim| sim.nodes.values().map(|n| n.log.len()).sum::<usize>();
    let before = node_entries(&sim);

    let mut unproven = sim.blacklist_check(LISTED);
    unproven.proofs.remove("tax");
    let mut wrong_case = sim.blacklist_query(LISTED);
    wrong_case.case_reference = Some("not-a-licensing-case".into());
    sim.prove(&mut wrong_case);
    let mut unknown_basis = sim.blacklist_query(LISTED);
    unknown_basis.legal_basis = Some("anything".into());
    sim.prove(&mut unknown_basis);
    let cases = [
        (unproven, 400, "no requester proof for node(s) tax"),
        (wrong_case, 403, "case"),
        (unknown_basis, 403, LICENSING_BASIS),
    ];
    for (query, status, says) in cases {
        let (got, body) = sim.query(&query, &BTreeMap::new(), false);
        assert_eq!(got, status, "{body}");
        assert!(body["detail"].as_str().unwrap().contains(says), "{body}");
        let entry = sim.coordinator_log.last().unwrap();
        assert_eq!(entry.kind, EntryKind::Refusal);
        assert!(entry.node_query_ids.is_empty());
        assert!(!format!("{entry:?}").contains(LISTED));
        assert!(
            entry.outcome.contains(&format!("\"http\":{status}")),
            "{entry:?}"
        );
    }
    assert_eq!(node_entries(&sim), before, "no node was asked");

    // The same refusals as typed values, mapped to HTTP in one place.
    for (refusal, status) in [
        (Refusal::Malformed("m".into()), 400),
        (Refusal::Policy("p".into()), 403),
        (Refusal::TooLarge("t".into()), 413),
    ] {
        assert_eq!(Audited::Refused(refusal).http_status(), status);
    }
    let huge = vec![b' '; fedq_coordinator::query::MAX_BODY + 1];
    let label = sim.policy.label();
    match sim.router(&label).admit(LICENSING, "q", &huge, sim.clock()) {
        Routed::Concluded(c) => {
            assert!(matches!(
                c.audited(),
                Audited::Refused(Refusal::TooLarge(_))
            ));
            assert_eq!(c.entry().subject, "-");
        }
        Routed::FanOut(_) => panic!("an oversized body was planned"),
    }
}

/// A small deterministic generator, so a failing run can be replayed from its seed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as usize
    }
}

#[test]
fn random_faults_never_release_what_was_not_audited_nor_call_a_partial_check_complete() {
    let mut rng = Lcg(0x5EED_F00D);
    let mut sim = Sim::new();
    for round in 0..120 {
        let subject = if rng.next().is_multiple_of(2) {
            LISTED
        } else {
            CLEAN
        };
        let faults: BTreeMap<&str, Fault> = NODES
            .iter()
            .map(|n| {
                // Mostly healthy: a fault on about one node in three.
                let pick = rng.next() % (FAULTS.len() * 2);
                (*n, FAULTS.get(pick).copied().unwrap_or(Fault::None))
            })
            .collect();
        let coordinator_down = rng.next().is_multiple_of(10);
        let query = sim.blacklist_check(subject);
        let logs_before: BTreeMap<&str, usize> = NODES
            .iter()
            .map(|n| (*n, sim.nodes[*n].log.len()))
            .collect();
        let coordinator_before = sim.coordinator_log.len();
        let (status, body) = sim.query(&query, &faults, coordinator_down);
        let context = format!(
            "round {round}, faults {faults:?}, coordinator down {coordinator_down}: {body}"
        );
        if coordinator_down {
            assert_eq!(status, 503, "{context}");
            assert_eq!(sim.coordinator_log.len(), coordinator_before, "{context}");
            assert!(body.get("view_result").is_none(), "{context}");
            continue;
        }
        assert_eq!(status, 200, "{context}");
        assert_eq!(
            sim.coordinator_log.len(),
            coordinator_before + 1,
            "{context}"
        );
        // Incomplete exactly when a node could not give a definite answer; a proof the
        // node refused is a definite answer (denied), never a partial one passed as whole.
        let incomplete = faults.values().any(|f| {
            matches!(
                f,
                Fault::Lost
                    | Fault::TimedOut
                    | Fault::StoreDown
                    | Fault::AuditDown
                    | Fault::ClockSkew
            )
        });
        assert_eq!(body["complete"], !incomplete, "{context}");
        for name in NODES {
            let fault = faults[name];
            let logged = sim.nodes[name].log.len() - logs_before[name];
            let expected_entries = match fault {
                Fault::Lost | Fault::TimedOut | Fault::AuditDown => 0,
                Fault::Replayed => 2,
                _ => 1,
            };
            assert_eq!(logged, expected_entries, "{name}: {context}");
            let status = node_status(&body, name);
            if fault == Fault::None {
                assert_eq!(status, "answered", "{name}: {context}");
            } else {
                assert_ne!(status, "answered", "{name}: {context}");
            }
        }
        // The listing is reported exactly when the court answered about the listed person;
        // otherwise a listed person is never reported "not listed" with nothing unverified.
        let listings = body["view_result"]["listings"].as_array().unwrap().len();
        let unverified = body["view_result"]["unverified"].as_array().unwrap().len();
        let court_answered = faults["court"] == Fault::None;
        assert_eq!(
            listings,
            usize::from(subject == LISTED && court_answered),
            "{context}"
        );
        if !court_answered {
            assert!(unverified > 0, "{context}");
        }
    }
}

#[test]
fn a_node_asked_for_nothing_it_holds_refuses_without_opening_the_subject() {
    let mut sim = Sim::new();
    // A query about tax's arrears alone: the requester proves it (and seals the subject)
    // to every node it holds a session with, as a client misled about the plan would.
    let mut query = QueryRequest {
        datasets: Some(vec!["tax.arrears".into()]),
        view: None,
        ..sim.blacklist_query(LISTED)
    };
    sim.prove(&mut query);
    let body = serde_json::to_vec(&query).unwrap();
    let label = sim.policy.label();
    let Routed::FanOut(fan_out) =
        sim.router(&label)
            .admit(LICENSING, "q-nothing-here", &body, sim.clock())
    else {
        panic!("the tax query was not planned");
    };
    // The honest coordinator asks tax alone; a rogue one sends the same lookup to the
    // court with the court's proof and sealed subject.
    let asks = fan_out.asks();
    assert_eq!(asks.len(), 1);
    assert_eq!(asks[0].node, "tax");
    let NodeRequest::Lookup(mut to_court) = asks[0].request.clone() else {
        unreachable!()
    };
    to_court.proof = query.proofs["court"].clone().unwrap();
    to_court.sealed = query.sealed["court"].clone();
    let before = sim.nodes["court"].log.len();
    match sim.at_node("court", &NodeRequest::Lookup(to_court), Fault::None) {
        NodeResponse::Refused { rationale } => {
            assert!(
                rationale.contains("holds none of what the lookup asks"),
                "{rationale}"
            )
        }
        other => panic!("the court answered a lookup of tax's records: {other:?}"),
    }
    let log = &sim.nodes["court"].log;
    assert_eq!(log.len(), before + 1);
    let entry = log.last().unwrap();
    assert_eq!(entry.kind, EntryKind::Refusal);
    // Not opened: no pseudonym of the person, and the proof was not spent.
    assert_eq!(entry.subject, "-");
    assert_ne!(
        entry.subject,
        sim.nodes["court"].pseudonyms.pseudonym(LISTED)
    );
}
