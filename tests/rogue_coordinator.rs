//! Issue 14 §8 (the requester proof part): a rogue coordinator against real node
//! processes. The demo federation runs every node as its own `fedq node serve` process
//! and the real coordinator as a `fedq coordinator serve` process; an honest requester
//! (`ApiConnection`, the client `fedq query` uses) opens its sessions through the real
//! coordinator and makes its proofs. The rogue holds the coordinator's own certificate
//! and key and talks QUIC to the nodes itself: it takes the honest proofs and sends
//! lookups that change the purpose, the subject, the target or the requester, replays
//! an answered one, sends one proven for another node, and one under a MAC key of its
//! own. Each is refused with its typed code, audited at the node under the requester the
//! session proves (never the one the rogue names), and nothing is released. Then honest
//! queries through the real coordinator still answer, and a restarted node's sessions are
//! re-opened by the client without the caller seeing it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use fedq_coordinator::client::ApiConnection;
use fedq_coordinator::query::QueryRequest;
use fedq_sandbox::{Federation, LICENSING_BASIS, LICENSING_CASE};
use fedq_testkit::federation;
use fedq_wire::message::{DatasetRequest, LookupRequest, LookupTarget};
use fedq_wire::proof::{ProofRefusal, REQUEST_TYP};
use fedq_wire::transport::{Limits, NodeChannel, NodeClient, TlsFiles};
use fedq_wire::{NodeRequest, NodeResponse};
use serde_json::Value;
use support::process::{start_nodes, FedqProcess};

const LICENSING: &str = "market-regulation.licensing";

fn blacklist_check(subject: &str) -> QueryRequest {
    QueryRequest {
        subject: subject.to_owned(),
        purpose: "administrative-licensing".into(),
        legal_basis: Some(LICENSING_BASIS.into()),
        case_reference: Some(LICENSING_CASE.into()),
        view: Some("blacklist-check".into()),
        ..QueryRequest::default()
    }
}

async fn requester(fed: &Federation, name: &str) -> ApiConnection {
    support::connect_as(fed, name).await.unwrap()
}

fn node_report<'a>(answer: &'a Value, node: &str) -> &'a Value {
    answer["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == node)
        .unwrap_or_else(|| panic!("no report of {node}: {answer}"))
}

/// The lookup the real coordinator would send the court for `query`, carrying `proof` and
/// the subject sealed with it.
fn lookup_of(
    fed: &Federation,
    query: &QueryRequest,
    (proof, sealed): (String, String),
) -> LookupRequest {
    let config =
        fedq_coordinator::config::CoordinatorConfig::load(&fed.layout.coordinator_config())
            .unwrap();
    LookupRequest {
        query_id: "rogue-0001".into(),
        requester: LICENSING.into(),
        purpose: query.purpose.clone(),
        legal_basis: query.legal_basis.clone(),
        case_reference: query.case_reference.clone(),
        target: LookupTarget::View(query.view.clone().unwrap()),
        policy_version: "rogue".into(),
        date: config.today.unwrap(),
        proof,
        sealed,
    }
}

fn audit_of(fed: &Federation, node: &str) -> Vec<fedq_audit::AuditRecord> {
    let path = fed.layout.root.join(format!("audit/{node}-audit.db"));
    fedq_audit::list(&path, &fedq_audit::ListFilter::default())
        .unwrap()
        .into_iter()
        .map(|e| e.record)
        .collect()
}

/// Sends `lookup` as the rogue and checks it is refused with `code`, releases nothing,
/// and adds exactly one refusal to the court's audit log naming `audited` as requester.
async fn refused(
    fed: &Federation,
    court: &NodeChannel,
    lookup: LookupRequest,
    code: ProofRefusal,
    audited: &str,
) {
    let before = audit_of(fed, "court").len();
    let answer = court
        .request(
            &NodeRequest::Lookup(lookup),
            std::time::Duration::from_secs(5),
        )
        .await
        .unwrap();
    match &answer {
        NodeResponse::ProofRefused { code: got, message } => {
            assert_eq!(*got, code, "{message}");
            assert!(message.contains(&code.to_string()), "{message}");
        }
        other => panic!("{code:?}: the court answered {other:?}"),
    }
    let audit = audit_of(fed, "court");
    assert_eq!(audit.len(), before + 1, "{code:?}: not exactly one entry");
    let last = audit.last().unwrap();
    assert_eq!(last.kind, fedq_audit::EntryKind::Refusal, "{last:?}");
    assert_eq!(last.requester, audited, "{code:?}: {last:?}");
    let outcome: Value = serde_json::from_str(&last.outcome).unwrap();
    assert_eq!(outcome["proof"], code.code(), "{outcome}");
    assert_eq!(outcome["coordinator"], "coordinator", "{outcome}");
}

/// An honest lookup the court answers (and records under the requester).
async fn answered(court: &NodeChannel, lookup: LookupRequest) {
    match court
        .request(
            &NodeRequest::Lookup(lookup),
            std::time::Duration::from_secs(5),
        )
        .await
        .unwrap()
    {
        NodeResponse::Lookup(l) => assert_eq!(l.node, "court"),
        other => panic!("the honest lookup was not answered: {other:?}"),
    }
}

/// A proof and the subject sealed with it, for one node.
type Sent = (String, String);

/// Fresh honest proofs of `query` (each with its sealed subject) for the court and for tax.
async fn fresh(honest: &mut ApiConnection, query: &QueryRequest) -> (Sent, Sent) {
    let proven = honest.prove(query).await.unwrap();
    // The body the coordinator gets names no person: the subject is sealed per node.
    let body = serde_json::to_string(&proven).unwrap();
    assert!(!body.contains(&query.subject), "{body}");
    let sent = |node: &str| {
        (
            proven.proofs[node]
                .clone()
                .unwrap_or_else(|| panic!("a session with {node}")),
            proven.sealed[node].clone(),
        )
    };
    (sent("court"), sent("tax"))
}

fn rogue_channel(fed: &Federation, node: &str) -> (NodeClient, NodeChannel) {
    let client = NodeClient::new(
        "127.0.0.1:0".parse().unwrap(),
        TlsFiles::in_dir(&fed.layout.pki(), "coordinator"),
        Limits::default(),
    )
    .unwrap();
    let channel = client.channel(node, fed.nodes[node]);
    (client, channel)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rogue_coordinator_cannot_alter_replay_redirect_or_forge_an_honest_proof() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path(), 100, 41);
    fed.lift_rate_limits().unwrap();
    let _nodes = start_nodes(&fed, None);
    let _coordinator = FedqProcess::coordinator(&fed.layout.coordinator_config(), None);
    let mut honest = requester(&fed, LICENSING).await;
    let subject = fed.scenario.blacklisted.resident_id.clone();
    let query = blacklist_check(&subject);
    // Through the real coordinator the honest query is answered: the court lists the
    // person (so the refusals below withhold something that is there).
    let (status, answer) = honest.query(&query).await.unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        node_report(&answer, "court")["status"],
        "answered",
        "{answer}"
    );
    assert_eq!(
        answer["view_result"]["listings"].as_array().map(Vec::len),
        Some(1)
    );

    let (_client, court) = rogue_channel(&fed, "court");
    // Each case takes a fresh honest proof for the court (so only the change is at stake).

    // The honest lookup, as the coordinator would have sent it, is answered by the court.
    let (proof, _) = fresh(&mut honest, &query).await;
    answered(&court, lookup_of(&fed, &query, proof.clone())).await;
    // Replayed: the same signed lookup again.
    refused(
        &fed,
        &court,
        lookup_of(&fed, &query, proof),
        ProofRefusal::Replayed,
        LICENSING,
    )
    .await;

    // Another purpose.
    let (proof, _) = fresh(&mut honest, &query).await;
    let mut l = lookup_of(&fed, &query, proof);
    l.purpose = "judgment-enforcement".into();
    refused(
        &fed,
        &court,
        l,
        ProofRefusal::Altered(fedq_wire::proof::ProofField::Purpose),
        LICENSING,
    )
    .await;

    // Another person: the subject sealed to the court for another query (of someone
    // else) swapped in. The coordinator cannot read or make a sealed subject, only move one.
    let (proof, _) = fresh(&mut honest, &query).await;
    let (other, _) = fresh(
        &mut honest,
        &blacklist_check(&fed.scenario.clean.resident_id),
    )
    .await;
    let mut l = lookup_of(&fed, &query, proof);
    l.sealed = other.1;
    refused(
        &fed,
        &court,
        l,
        ProofRefusal::Altered(fedq_wire::proof::ProofField::Sealed),
        LICENSING,
    )
    .await;
    // The court's sealed subject sent to tax under tax's proof: refused there too.
    let (court_sent, tax_sent) = fresh(&mut honest, &query).await;
    let (_tax_client, tax) = rogue_channel(&fed, "tax");
    let mut l = lookup_of(&fed, &query, tax_sent);
    l.sealed = court_sent.1;
    match tax
        .request(&NodeRequest::Lookup(l), std::time::Duration::from_secs(5))
        .await
        .unwrap()
    {
        NodeResponse::ProofRefused { code, .. } => assert_eq!(
            code,
            ProofRefusal::Altered(fedq_wire::proof::ProofField::Sealed)
        ),
        other => panic!("tax answered a sealed subject moved from the court: {other:?}"),
    }

    // Another target: every field of the court's dishonest-debtor list instead of the view.
    let (proof, _) = fresh(&mut honest, &query).await;
    let mut l = lookup_of(&fed, &query, proof);
    l.target = LookupTarget::Datasets(vec![DatasetRequest {
        dataset: "court.dishonest_debtors".into(),
        fields: None,
    }]);
    refused(
        &fed,
        &court,
        l,
        ProofRefusal::Altered(fedq_wire::proof::ProofField::Target),
        LICENSING,
    )
    .await;

    // Another requester: the court's own enforcement bureau, which has grants the
    // licensing office lacks. The node audits the requester the session proves.
    let (proof, _) = fresh(&mut honest, &query).await;
    let mut l = lookup_of(&fed, &query, proof);
    l.requester = "court.enforcement".into();
    refused(
        &fed,
        &court,
        l,
        ProofRefusal::Altered(fedq_wire::proof::ProofField::Requester),
        LICENSING,
    )
    .await;

    // A proof made for the tax node, sent to the court: no such session there.
    let (_, tax_proof) = fresh(&mut honest, &query).await;
    refused(
        &fed,
        &court,
        lookup_of(&fed, &query, tax_proof),
        ProofRefusal::UnknownSession,
        "-",
    )
    .await;

    // The rogue's own proof under the honest session's id, with a key it chose.
    let ((proof, sealed), _) = fresh(&mut honest, &query).await;
    let parts = fedq_certs::jws::parse(&proof, "HS256", REQUEST_TYP).unwrap();
    let sid = parts.kid().unwrap().to_owned();
    let forged = fedq_certs::jws::sign_hs256(&[7u8; 32], &sid, REQUEST_TYP, &parts.payload);
    refused(
        &fed,
        &court,
        lookup_of(&fed, &query, (forged, sealed)),
        ProofRefusal::BadMac,
        "-",
    )
    .await;

    // None of the refusals put anything of the lookups in the court's log.
    for entry in audit_of(&fed, "court")
        .iter()
        .filter(|e| e.kind == fedq_audit::EntryKind::Refusal)
    {
        let text = serde_json::to_string(entry).unwrap();
        assert!(!text.contains(&subject), "{text}");
        assert!(!text.contains(LICENSING_BASIS), "{text}");
        assert!(!text.contains("court.enforcement"), "{text}");
    }
}

/// The sealed answer `node` gives the rogue for the honest proof `proven` made for it.
async fn sealed_answer(
    fed: &Federation,
    channel: &NodeChannel,
    query: &QueryRequest,
    proven: &QueryRequest,
    node: &str,
) -> String {
    lookup_answer(fed, channel, query, proven, node).await.0
}

/// The sealed answer and the audit receipt (as the relay carries it) `node` gives the
/// rogue for the honest proof `proven` made for it.
async fn lookup_answer(
    fed: &Federation,
    channel: &NodeChannel,
    query: &QueryRequest,
    proven: &QueryRequest,
    node: &str,
) -> (String, serde_json::Value) {
    let sent = (
        proven.proofs[node].clone().unwrap(),
        proven.sealed[node].clone(),
    );
    match channel
        .request(
            &NodeRequest::Lookup(lookup_of(fed, query, sent)),
            std::time::Duration::from_secs(5),
        )
        .await
        .unwrap()
    {
        NodeResponse::Lookup(l) => {
            assert_eq!(l.node, node);
            let receipt = l.receipt.map(|r| {
                serde_json::json!({
                    "checkpoint": r.checkpoint,
                    "index": r.index,
                    "entry_hash": r.entry_hash,
                    "content_hash": r.content_hash,
                    "proof": r.proof,
                })
            });
            (l.sealed, receipt.unwrap_or_default())
        }
        other => panic!("{node} did not answer: {other:?}"),
    }
}

/// Issue 15: a rogue coordinator that relays the requester another node's sealed answer,
/// another query's, or an altered one is caught by the requester side: the court is
/// `unavailable` with why, and the listing it would hide or show is never read from the
/// swapped answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rogue_coordinator_that_swaps_or_alters_sealed_answers_is_caught_by_the_requester() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path(), 100, 43);
    fed.lift_rate_limits().unwrap();
    let _nodes = start_nodes(&fed, None);
    let _coordinator = FedqProcess::coordinator(&fed.layout.coordinator_config(), None);
    let mut honest = requester(&fed, LICENSING).await;
    let listed = blacklist_check(&fed.scenario.blacklisted.resident_id);
    let clean = blacklist_check(&fed.scenario.clean.resident_id);
    let (_c, court) = rogue_channel(&fed, "court");
    let (_t, tax) = rogue_channel(&fed, "tax");
    // Two honest queries, proven by the requester, answered by the nodes to the rogue.
    let first = honest.prove(&listed).await.unwrap();
    let court_first = sealed_answer(&fed, &court, &listed, &first, "court").await;
    let tax_first = sealed_answer(&fed, &tax, &listed, &first, "tax").await;
    let second = honest.prove(&clean).await.unwrap();
    // The court's receipt for its honest answer is relayed as it is with every answer.
    let (court_second, receipt) = lookup_answer(&fed, &court, &clean, &second, "court").await;
    // The relay the requester gets for the second query, with the court's answer as given.
    let engine = fedq_policy::load::load_engine(&fed.layout.policy(), None).unwrap();
    let terms = fedq_policy::views::ViewTerms::of(
        engine
            .policy()
            .views
            .iter()
            .find(|v| v.name == "blacklist-check")
            .unwrap(),
    );
    let relay = |court_answer: &str| {
        serde_json::json!({
            "query_id": "rogue-0002",
            "policy_version": "rogue",
            "purpose": "administrative-licensing",
            "view": "blacklist-check",
            "complete": true,
            "nodes": [{
                "node": "court",
                "status": "answered",
                "datasets": ["court.dishonest_debtors"],
                "sealed_answer": court_answer,
                "receipt": receipt,
            }],
            "view_terms": terms,
        })
    };
    // Control: the court's own answer to the second query opens (the clean person: no
    // listing there).
    let answer = honest.conclude(&second, 200, relay(&court_second));
    assert_eq!(
        node_report(&answer, "court")["status"],
        "answered",
        "{answer}"
    );
    // The first query's answer (the listed person's) relayed for the second: moved.
    let mut altered = court_second.clone();
    let at = altered.len() - 30;
    let flipped = if &altered[at..=at] == "A" { "B" } else { "A" };
    altered.replace_range(at..=at, flipped);
    for (swapped, why) in [
        (&court_first, "bound to another query"),
        (&tax_first, "sealed under another session"),
        (&altered, "altered"),
        (&"not.a.sealed.answer.at-all".to_owned(), "not a fedq"),
    ] {
        let answer = honest.conclude(&second, 200, relay(swapped));
        let report = node_report(&answer, "court");
        assert_eq!(report["status"], "unavailable", "{why}: {answer}");
        let reason = report["reason"].as_str().unwrap();
        assert!(reason.contains("sealed answer does not open"), "{reason}");
        assert!(reason.contains(why), "{why}: {reason}");
        // The court's source is unknown: the check cannot say "not listed", and shows no
        // listing from the swapped answer.
        assert_eq!(
            answer["view_result"]["listings"],
            serde_json::json!([]),
            "{answer}"
        );
        assert!(answer["view_result"]["unverified"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["dataset"] == "court.dishonest_debtors"));
        assert_eq!(answer["complete"], false);
    }
    // The relay's word without a sealed answer: a claimed "no record" is not taken.
    let mut forged = relay(&court_second);
    forged["nodes"][0]["status"] = "no_record".into();
    forged["nodes"][0]
        .as_object_mut()
        .unwrap()
        .remove("sealed_answer");
    let answer = honest.conclude(&second, 200, forged);
    assert_eq!(
        node_report(&answer, "court")["status"],
        "unavailable",
        "{answer}"
    );
    assert_eq!(answer["complete"], false);
    // Terms with no source would make any check "not listed": no department vouches for
    // them, so there is no result.
    let mut emptied = relay(&court_second);
    emptied["view_terms"]["sources"] = serde_json::json!([]);
    let answer = honest.conclude(&second, 200, emptied);
    assert!(answer.get("view_result").is_none(), "{answer}");
    assert_eq!(answer["complete"], false);
    // The court left out of the relay altogether, though the query was proven to it.
    let mut dropped = relay(&court_second);
    dropped["nodes"] = serde_json::json!([]);
    let answer = honest.conclude(&second, 200, dropped);
    assert_eq!(
        node_report(&answer, "court")["status"],
        "unavailable",
        "{answer}"
    );
    assert_eq!(answer["complete"], false);
}

/// The number of answered lookups at `node` so far.
fn queries_at(fed: &Federation, node: &str) -> usize {
    audit_of(fed, node)
        .iter()
        .filter(|e| e.kind == fedq_audit::EntryKind::Answer)
        .count()
}

fn meaning_of(answer: &Value) -> Value {
    let mut a = answer.clone();
    a.as_object_mut().unwrap().remove("query_id");
    for n in a["nodes"].as_array_mut().unwrap() {
        n.as_object_mut().unwrap().remove("query_id");
        // Each answer's receipt is for its own audit entry, like its query id.
        n.as_object_mut().unwrap().remove("receipt");
        n.as_object_mut().unwrap().remove("answer_sha256");
    }
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honest_queries_answer_as_before_and_a_restarted_node_s_session_is_reopened() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path(), 100, 43);
    fed.lift_rate_limits().unwrap();
    let mut nodes = start_nodes(&fed, None);
    let _coordinator = FedqProcess::coordinator(&fed.layout.coordinator_config(), None);
    let mut honest = requester(&fed, LICENSING).await;
    let s = &fed.scenario;
    // Every node opens a session; each query proves itself to the nodes it can ask.
    let first = honest
        .query(&blacklist_check(&s.blacklisted.resident_id))
        .await
        .unwrap();
    assert_eq!(first.0, 200, "{}", first.1);
    assert_eq!(honest.session_nodes().len(), fed.nodes.len());
    assert!(
        first.1["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n.get("proof_refused").is_none()),
        "{}",
        first.1
    );
    assert_eq!(first.1["complete"], true, "{}", first.1);
    // Dataset queries too, fields grouped as the coordinator groups them.
    let datasets = QueryRequest {
        subject: s.blacklisted.resident_id.clone(),
        purpose: "administrative-licensing".into(),
        legal_basis: Some(LICENSING_BASIS.into()),
        case_reference: Some(LICENSING_CASE.into()),
        datasets: Some(vec![
            "court.dishonest_debtors.listed_on".into(),
            "court.dishonest_debtors.case_no".into(),
        ]),
        ..QueryRequest::default()
    };
    let (status, answer) = honest.query(&datasets).await.unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(node_report(&answer, "court")["status"], "ok", "{answer}");
    assert_eq!(
        answer["datasets"]["court.dishonest_debtors"]["records"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "{answer}"
    );
    // Proven only where asked: the view to its three sources' nodes (as `GET /v1/nodes`
    // lists its plan), the dataset query to the court alone.
    let proven_nodes = |q: &QueryRequest| q.proofs.keys().cloned().collect::<Vec<_>>();
    let view = honest
        .prove(&blacklist_check(&s.blacklisted.resident_id))
        .await
        .unwrap();
    assert_eq!(proven_nodes(&view), ["court", "hrss", "tax"]);
    assert!(
        view.proofs.values().all(Option::is_some),
        "{:?}",
        view.proofs
    );
    assert_eq!(
        proven_nodes(&honest.prove(&datasets).await.unwrap()),
        ["court"]
    );
    // A query without proofs (a client that does not sign) is refused before any node is
    // asked.
    let before: usize = fed.nodes.keys().map(|n| audit_of(&fed, n).len()).sum();
    let unproven = blacklist_check(&s.blacklisted.resident_id);
    let (status, refusal) = honest.send_raw(&unproven).await.unwrap();
    assert_eq!(status, 400, "{refusal}");
    assert!(
        refusal["detail"]
            .as_str()
            .unwrap()
            .contains("carries no requester proof for node(s)"),
        "{refusal}"
    );
    // A body that carries the person in clear is refused whole: the coordinator is never
    // the one to see it (and its refusal does not repeat it).
    // (The client's own type never serializes the subject; a body written by hand can.)
    let in_clear = serde_json::json!({
        "subject": s.blacklisted.resident_id,
        "purpose": "administrative-licensing",
        "legal_basis": LICENSING_BASIS,
        "case_reference": LICENSING_CASE,
        "view": "blacklist-check",
    });
    assert!(
        !serde_json::to_string(&blacklist_check(&s.blacklisted.resident_id))
            .unwrap()
            .contains(&s.blacklisted.resident_id)
    );
    let (status, refusal) = honest
        .call(
            "POST",
            "/v1/query",
            "application/json",
            serde_json::to_vec(&in_clear).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(status, 400, "{refusal}");
    let said = refusal["detail"].as_str().unwrap();
    assert!(
        said.contains("`subject` is never sent to the coordinator"),
        "{refusal}"
    );
    assert!(!said.contains(&s.blacklisted.resident_id), "{refusal}");
    let after: usize = fed.nodes.keys().map(|n| audit_of(&fed, n).len()).sum();
    assert_eq!(before, after, "a node was asked");

    // The court restarts and forgets its sessions; the next query is answered all the
    // same, the client having re-opened the court's session and retried once.
    let court_queries = queries_at(&fed, "court");
    let tax_queries = queries_at(&fed, "tax");
    let index = fed.nodes.keys().position(|n| n == "court").unwrap();
    nodes[index].terminate();
    // Meanwhile a requester that connects now cannot open a session with the court: the
    // court is not asked, and its part of the answer says why; the others answer.
    let mut late = requester(&fed, LICENSING).await;
    let (status, partial) = late
        .query(&blacklist_check(&s.blacklisted.resident_id))
        .await
        .unwrap();
    assert_eq!(status, 200, "{partial}");
    let court = node_report(&partial, "court");
    assert_eq!(court["status"], "unavailable", "{partial}");
    let why = court["reason"].as_str().unwrap();
    assert!(
        why.contains("the requester holds no session with this node")
            && why.contains("no session: "),
        "{partial}"
    );
    let tax = node_report(&partial, "tax")["status"].as_str().unwrap();
    assert!(tax == "answered", "{partial}");
    assert_eq!(partial["complete"], false, "{partial}");
    nodes[index] = FedqProcess::node(&fed.layout.node_config("court"), None);
    // The coordinator may have marked the court down while it was away (its heartbeat):
    // such queries do not reach it; the first that does must be answered.
    let mut again = Value::Null;
    // Each query of the loop asks tax once (the `late` requester's query above too).
    let mut sent = 1;
    for _ in 0..100 {
        sent += 1;
        let (status, answer) = honest
            .query(&blacklist_check(&s.blacklisted.resident_id))
            .await
            .unwrap();
        assert_eq!(status, 200, "{answer}");
        let court = node_report(&answer, "court");
        if court["status"] == "answered" {
            again = answer;
            break;
        }
        assert!(
            court["reason"]
                .as_str()
                .unwrap_or("")
                .contains("marked down"),
            "the restarted court's answer was not recovered: {answer}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        node_report(&again, "court")["status"],
        "answered",
        "{again}"
    );
    assert_eq!(meaning_of(&again), meaning_of(&first.1));
    // The court answered under the query it was asked again in, alone: its report says
    // which; no other department was asked twice.
    let retried = node_report(&again, "court")["query_id"].as_str().unwrap();
    assert_ne!(retried, again["query_id"].as_str().unwrap());
    assert!(
        node_report(&again, "tax").get("query_id").is_none(),
        "{again}"
    );
    // The court saw the stale proof (refused as an unknown session) and then the retry.
    let court_audit = audit_of(&fed, "court");
    assert!(
        court_audit
            .iter()
            .any(|e| e.kind == fedq_audit::EntryKind::Refusal
                && e.outcome.contains("unknown-session")),
        "{court_audit:?}"
    );
    assert_eq!(queries_at(&fed, "court"), court_queries + 1);
    assert_eq!(
        queries_at(&fed, "tax"),
        tax_queries + sent,
        "tax was asked once per query, not again when the court was re-asked"
    );
}
