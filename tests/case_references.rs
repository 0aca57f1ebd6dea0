//! The legal basis names the case, and aggregate-only purposes, through real processes on
//! 127.0.0.1: every node and the coordinator are `fedq` processes of a demo federation,
//! the requester is `fedq query` with its own certificate, the reviewer is `fedq audit
//! list`. A licensing query without its application number, with a court case number in
//! its place, or citing a legal basis its purpose does not accept is refused before any
//! node is asked; one citing its application is answered and recorded with the case by the
//! coordinator and every node; `fedq audit list --case` finds it. A node driven directly
//! with the coordinator's certificate (a coordinator that forwards what it should have
//! refused) refuses a malformed case, a basis of another purpose and a per-person lookup
//! for statistics on its own policy, and audits each refusal.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use fedq_audit::{AuditEntry, ListFilter};
use fedq_sandbox::{Federation, LICENSING_BASIS, LICENSING_CASE};
use fedq_testkit::federation;
use fedq_wire::message::{DatasetRequest, LookupRequest, LookupTarget};
use fedq_wire::transport::{Limits, NodeClient, TlsFiles};
use fedq_wire::{NodeRequest, NodeResponse};
use support::process::{fedq, output_within, start_nodes, FedqProcess, COMMAND_LIMIT};

/// A court case number: a well-formed case reference, but not of a licensing application.
const COURT_CASE: &str = "(2026)湘01执123号";

/// `fedq query` as `requester`, with `args` after the connection arguments.
fn query(fed: &Federation, requester: &str, args: &[&str]) -> Output {
    let pki = fed.layout.pki();
    let mut cmd = fedq();
    cmd.arg("query")
        .arg("--coordinator")
        .arg(format!("https://{}", fed.coordinator))
        .arg("--cert")
        .arg(pki.join(format!("{requester}.crt")))
        .arg("--key")
        .arg(pki.join(format!("{requester}.key")))
        .arg("--ca")
        .arg(pki.join("ca.crt"))
        .args(args)
        .arg("--json");
    output_within(&mut cmd, COMMAND_LIMIT)
}

/// `fedq audit list --config CONFIG --case REF --json`, one entry per line.
fn audit_list_case(config: &Path, case: &str) -> Vec<serde_json::Value> {
    let out = output_within(
        fedq()
            .args(["audit", "list", "--config"])
            .arg(config)
            .args(["--case", case, "--json"]),
        COMMAND_LIMIT,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The log's entries about queries: the `session` entries every `fedq query` run adds
/// (it opens its sessions with the nodes first) are left out.
fn entries(path: &Path) -> Vec<AuditEntry> {
    let mut all = fedq_audit::list(path, &ListFilter::default()).unwrap();
    all.retain(|e| e.record.kind != fedq_audit::EntryKind::Session);
    all
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_cite_their_case_and_every_log_records_it() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path(), 200, 14);
    let _nodes = start_nodes(&fed, None);
    let _coordinator = FedqProcess::coordinator(&fed.layout.coordinator_config(), None);
    let audit_dir = fed.layout.root.join("audit");
    let coordinator_audit = audit_dir.join("coordinator-audit.db");
    let node_audits: Vec<_> = fed
        .nodes
        .keys()
        .map(|n| audit_dir.join(format!("{n}-audit.db")))
        .collect();
    let node_entries = || -> usize { node_audits.iter().map(|p| entries(p).len()).sum() };
    let subject = fed.scenario.blacklisted.resident_id.clone();
    let licensing = |extra: &[&str]| {
        let mut args = vec![
            "--subject",
            subject.as_str(),
            "--purpose",
            "administrative-licensing",
            "--view",
            "blacklist-check",
        ];
        args.extend_from_slice(extra);
        query(&fed, "market-regulation.licensing", &args)
    };

    // Refused before any node is asked: no case, a court case number in place of the
    // application number, a legal basis the purpose does not accept.
    let nodes_before = node_entries();
    let coordinator_before = entries(&coordinator_audit).len();
    let no_case = licensing(&["--basis", LICENSING_BASIS]);
    assert!(!no_case.status.success());
    let why = stderr(&no_case);
    assert!(
        why.contains("403") && why.contains("requires a case reference"),
        "{why}"
    );
    assert!(
        why.contains("长市监许申〔2026〕001234号"),
        "the expected form: {why}"
    );
    let wrong_case = licensing(&["--basis", LICENSING_BASIS, "--case", COURT_CASE]);
    assert!(!wrong_case.status.success());
    let why = stderr(&wrong_case);
    assert!(
        why.contains("403") && why.contains("does not have the form"),
        "{why}"
    );
    assert!(
        !why.contains(COURT_CASE),
        "the refusal quoted the input: {why}"
    );
    for basis in ["anything", "民事诉讼法"] {
        let out = licensing(&["--basis", basis, "--case", LICENSING_CASE]);
        assert!(!out.status.success(), "`--basis {basis}` was answered");
        let why = stderr(&out);
        assert!(why.contains("403"), "{why}");
        assert!(
            why.contains(LICENSING_BASIS) && why.contains("行政许可法"),
            "the accepted bases: {why}"
        );
        assert!(!why.contains(basis), "the refusal quoted the input: {why}");
    }
    // Statistics asks a dataset about one named person: aggregate-only, refused.
    let stats = query(
        &fed,
        "statistics.bureau",
        &[
            "--subject",
            &subject,
            "--purpose",
            "statistics",
            "--basis",
            "统计法",
            "--dataset",
            "court.dishonest_debtors.case_no",
        ],
    );
    assert!(!stats.status.success());
    let why = stderr(&stats);
    assert!(
        why.contains("403") && why.contains("aggregate-only"),
        "{why}"
    );
    assert_eq!(node_entries(), nodes_before, "no node was asked");
    let refusals = entries(&coordinator_audit);
    assert_eq!(refusals.len(), coordinator_before + 5);
    // Each refusal is registered, with the case only where it had the purpose's form (the
    // two refused for their legal basis); a court case number in its place is never
    // recorded.
    let cases: Vec<Option<&str>> = refusals[coordinator_before..]
        .iter()
        .map(|e| {
            assert_eq!(e.record.kind, fedq_audit::EntryKind::Refusal);
            assert!(!e.record.outcome.contains(COURT_CASE));
            e.record.case_reference.as_deref()
        })
        .collect();
    assert_eq!(
        cases,
        [None, None, Some(LICENSING_CASE), Some(LICENSING_CASE), None]
    );

    // Answered: the case is in the coordinator's entry and in every node's.
    let ok = licensing(&["--basis", LICENSING_BASIS, "--case", LICENSING_CASE]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    let answer: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    let query_id = answer["query_id"].as_str().unwrap().to_owned();
    assert!(
        answer["view_result"]["listings"]
            .as_array()
            .is_some_and(|l| !l.is_empty()),
        "{answer}"
    );
    let last = entries(&coordinator_audit).pop().unwrap();
    assert_eq!(
        (last.record.kind.as_str(), last.record.query_id.as_str()),
        ("query", query_id.as_str())
    );
    assert_eq!(last.record.case_reference.as_deref(), Some(LICENSING_CASE));
    // Each node recorded its own id of the query; the coordinator's entry maps them.
    let node_ids: Vec<&String> = last.record.node_query_ids.values().collect();
    let mut asked = 0;
    for path in &node_audits {
        for e in entries(path)
            .iter()
            .filter(|e| node_ids.contains(&&e.record.query_id))
        {
            asked += 1;
            assert_eq!(e.record.kind, fedq_audit::EntryKind::Answer);
            assert_eq!(
                e.record.case_reference.as_deref(),
                Some(LICENSING_CASE),
                "{}",
                path.display()
            );
        }
    }
    assert_eq!(asked, 3, "the blacklist check asks court, tax and hrss");

    // The reviewer finds every query of the case, in the coordinator's log and a node's.
    // Its two refusals (for their legal basis) and its answered query, nothing else.
    let found = audit_list_case(&fed.layout.coordinator_config(), LICENSING_CASE);
    let kinds: Vec<&str> = found.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["refusal", "refusal", "query"], "{found:?}");
    assert_eq!(found[2]["query_id"], query_id.as_str());
    assert!(found.iter().all(|e| e["case_reference"] == LICENSING_CASE));
    let court = audit_list_case(&fed.layout.node_config("court"), LICENSING_CASE);
    assert_eq!(court.len(), 1, "{court:?}");
    assert_eq!(court[0]["kind"], "answer");
    assert!(audit_list_case(
        &fed.layout.coordinator_config(),
        "长市监许申〔2026〕009999号"
    )
    .is_empty());
    let text = output_within(
        fedq()
            .args(["audit", "list", "--config"])
            .arg(fed.layout.coordinator_config())
            .args(["--case", LICENSING_CASE]),
        COMMAND_LIMIT,
    );
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains(&format!("case={LICENSING_CASE}")), "{text}");

    // A coordinator that forwards what it should have refused: the court refuses on its own
    // policy before reading anything, and audits the refusal with its kind.
    let client = NodeClient::new(
        "127.0.0.1:0".parse().unwrap(),
        TlsFiles::in_dir(&fed.layout.pki(), "coordinator"),
        Limits::default(),
    )
    .unwrap();
    // Each lookup carries its requester's genuine proof (what is tested is the case check).
    let court = support::proof::ProvingChannel::new(
        client.channel("court", fed.nodes["court"]),
        &fed.layout.pki(),
    );
    let court_audit = audit_dir.join("court-audit.db");
    let lookup = |requester: &str, purpose: &str, basis: &str, case: Option<&str>, target| {
        NodeRequest::Lookup(LookupRequest {
            query_id: "q-forwarded".into(),
            requester: requester.into(),
            purpose: purpose.into(),
            legal_basis: Some(basis.into()),
            case_reference: case.map(str::to_owned),
            proof: String::new(),
            sealed: support::proof::clear_subject(&subject, None),
            target,
            policy_version: "test".into(),
            date: fed.today,
        })
    };
    let view = || LookupTarget::View("blacklist-check".into());
    let counts = || {
        LookupTarget::Datasets(vec![DatasetRequest {
            dataset: "court.dishonest_debtors".into(),
            fields: Some(vec!["case_no".into()]),
        }])
    };
    let forwarded = [
        (
            lookup(
                "market-regulation.licensing",
                "administrative-licensing",
                LICENSING_BASIS,
                Some(COURT_CASE),
                view(),
            ),
            "case_reference_malformed",
            "does not have the form",
            None,
        ),
        (
            lookup(
                "market-regulation.licensing",
                "administrative-licensing",
                LICENSING_BASIS,
                None,
                view(),
            ),
            "case_reference_required",
            "requires a case reference",
            None,
        ),
        (
            lookup(
                "market-regulation.licensing",
                "administrative-licensing",
                "民事诉讼法",
                Some(LICENSING_CASE),
                view(),
            ),
            "legal_basis_not_accepted",
            "does not accept the cited legal basis",
            Some(LICENSING_CASE),
        ),
        (
            lookup("statistics.bureau", "statistics", "统计法", None, counts()),
            "aggregate_only",
            "aggregate-only",
            None,
        ),
    ];
    for (request, code, words, recorded) in forwarded {
        let before = entries(&court_audit).len();
        let answer = court
            .request(&request, Duration::from_secs(10))
            .await
            .unwrap();
        match &answer {
            NodeResponse::Refused { rationale } => {
                assert!(
                    rationale.contains("node `court`") && rationale.contains(words),
                    "{code}: {rationale}"
                );
                assert!(!rationale.contains(COURT_CASE), "{rationale}");
            }
            other => panic!("{code}: the court answered {other:?}"),
        }
        let after = entries(&court_audit);
        assert_eq!(after.len(), before + 1, "{code}: one audit entry");
        let entry = &after[before].record;
        assert_eq!(entry.kind, fedq_audit::EntryKind::Refusal);
        assert_eq!(entry.query_id, "q-forwarded");
        let outcome: serde_json::Value = serde_json::from_str(&entry.outcome).unwrap();
        assert_eq!(outcome["code"], code, "{}", entry.outcome);
        // Recorded only when it has the purpose's form.
        assert_eq!(
            entry.case_reference.as_deref(),
            recorded,
            "{code}: {entry:?}"
        );
        assert!(!entry.outcome.contains(COURT_CASE));
    }
    // The same lookup with the application number is answered.
    let answer = court
        .request(
            &lookup(
                "market-regulation.licensing",
                "administrative-licensing",
                LICENSING_BASIS,
                Some(LICENSING_CASE),
                view(),
            ),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert!(matches!(answer, NodeResponse::Lookup(_)), "{answer:?}");
    assert_eq!(
        entries(&court_audit)
            .pop()
            .unwrap()
            .record
            .case_reference
            .as_deref(),
        Some(LICENSING_CASE)
    );
    client.close();
    for path in node_audits.iter().chain([&coordinator_audit]) {
        assert_eq!(fedq_audit::verify(path).unwrap().first_break, None);
    }
}
