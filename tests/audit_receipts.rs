//! Issue 18 §4, "no receipt, no data": a query through a real federation (every node its
//! own QUIC endpoint with certificates from the federation's CA, the coordinator over
//! HTTPS, all on 127.0.0.1) gives, for each node asked that answered, the receipt of the
//! audit entry that node wrote for its answer. The receipt checks against the node's
//! certificate key and with the sealed answer it came with (the entry commits to that
//! answer), and its entry hash is the `hash` of that node's entry at `index + 1`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use fedq_coordinator::client::ApiConnection;
use fedq_coordinator::query::QueryRequest;
use fedq_sandbox::{Running, LICENSING_BASIS, LICENSING_CASE};
use fedq_testkit::federation;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_node_s_answer_carries_a_receipt_for_its_own_audit_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path(), 60, 71);
    // The coordinator's own log keeps a signed checkpoint after every entry.
    let config = fed.layout.coordinator_config();
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("audit_checkpoint_entries = 1\n{text}")).unwrap();
    let _running = Running::start(&fed, None).await.unwrap();
    let pki = fed.layout.pki();
    let url = format!("https://{}", fed.coordinator);
    let mut conn = tokio::time::timeout(
        Duration::from_secs(20),
        ApiConnection::connect(
            &url,
            &pki.join("market-regulation.licensing.crt"),
            &pki.join("market-regulation.licensing.key"),
            &pki.join("ca.crt"),
        ),
    )
    .await
    .expect("no connection within 20 s")
    .unwrap();
    let query = QueryRequest {
        subject: fed.scenario.blacklisted.resident_id.clone(),
        purpose: "administrative-licensing".into(),
        legal_basis: Some(LICENSING_BASIS.into()),
        consent: None,
        case_reference: Some(LICENSING_CASE.into()),
        view: Some("blacklist-check".into()),
        datasets: None,
        ..QueryRequest::default()
    };
    let (status, answer) = tokio::time::timeout(Duration::from_secs(30), conn.query(&query))
        .await
        .expect("no answer within 30 s")
        .unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["complete"], true, "{answer}");
    let nodes = answer["nodes"].as_array().unwrap();
    assert!(!nodes.is_empty(), "{answer}");
    let mut checked = 0;
    for report in nodes {
        let node = report["node"].as_str().unwrap();
        assert_ne!(report["status"], "unverified", "{report}");
        // Checked against the node's certificate key, as `fedq certs` wrote it, and with
        // the sealed answer this node returned, whose digest the requester side kept.
        let proven = fedq_testkit::checked_receipt(&pki, node, report).unwrap();
        let receipt: fedq_client::query::AuditReceipt =
            serde_json::from_value(report["receipt"].clone()).unwrap();
        let answer_sha256 = proven.answer_sha256.as_str();
        let (verifier, _) =
            fedq_audit::review::certificate_verifiers(&pki.join(format!("{node}.crt"))).unwrap();
        let (checkpoint, _) =
            fedq_audit::checkpoint::open_checkpoint(&receipt.checkpoint, &verifier).unwrap();
        assert_eq!(checkpoint.origin, format!("fedq/changsha/node/{node}"));
        assert!(checkpoint.size > receipt.index);
        // The entry it commits to is the node's own entry at that place.
        let log = fed.layout.root.join(format!("audit/{node}-audit.db"));
        let entries = fedq_audit::list(&log, &fedq_audit::ListFilter::default()).unwrap();
        let entry = entries
            .iter()
            .find(|e| e.seq == proven.seq)
            .unwrap_or_else(|| panic!("node `{node}` has no entry {}", proven.seq));
        assert_eq!(entry.hash, receipt.entry_hash, "node `{node}`");
        assert_eq!(
            entry.record.answer_sha256.map(hex::encode).as_deref(),
            Some(answer_sha256),
            "node `{node}`'s entry names the answer it was written for"
        );
        assert_eq!(
            entry.record.kind,
            fedq_audit::EntryKind::Answer,
            "{entry:?}"
        );
        // The receipt names no one: no resident ID anywhere in it.
        let text = serde_json::to_string(&receipt).unwrap();
        assert!(!text.contains(&query.subject), "{text}");
        checked += 1;
    }
    assert!(checked >= 2, "{answer}");

    // Two queries, each node's receipts swapped between them before the requester side
    // opens the answers: a receipt valid for one answer of a node does not vouch for
    // another, so both answers read unverified.
    let first = conn.prove(&query).await.unwrap();
    let (status, mut relay_a) = conn.send_raw(&first).await.unwrap();
    assert_eq!(status, 200, "{relay_a}");
    let second = conn.prove(&query).await.unwrap();
    let (status, mut relay_b) = conn.send_raw(&second).await.unwrap();
    assert_eq!(status, 200, "{relay_b}");
    // Unswapped, each reads verified.
    let intact = conn.conclude(&first, 200, relay_a.clone());
    assert_eq!(intact["complete"], true, "{intact}");
    let count = relay_a["nodes"].as_array().unwrap().len();
    for i in 0..count {
        let a = relay_a["nodes"][i]["receipt"].take();
        let node = relay_a["nodes"][i]["node"].clone();
        let j = (0..count)
            .find(|&j| relay_b["nodes"][j]["node"] == node)
            .unwrap();
        let b = std::mem::replace(&mut relay_b["nodes"][j]["receipt"], a);
        relay_a["nodes"][i]["receipt"] = b;
    }
    for (proven, relay) in [(&first, relay_a), (&second, relay_b)] {
        let read = conn.conclude(proven, 200, relay);
        assert_eq!(read["complete"], false, "{read}");
        for report in read["nodes"].as_array().unwrap() {
            assert_eq!(report["status"], "unverified", "{report}");
            let reason = report["reason"].as_str().unwrap_or_default();
            assert!(
                reason.contains(fedq_coordinator::opening::NO_RECEIPT),
                "{report}"
            );
        }
    }
    // The coordinator's log signs its checkpoints with the coordinator's certificate key,
    // and its newest covers every entry it wrote.
    let coordinator_log = fed.layout.root.join("audit/coordinator-audit.db");
    let creds = fedq_certs::tls::Credentials::load(
        &pki.join("coordinator.crt"),
        &pki.join("coordinator.key"),
    )
    .unwrap();
    let (chain, _) = creds.chain_and_key();
    let verifier = fedq_audit::checkpoint::NoteVerifier::new(
        &fedq_audit::checkpoint::log_name("changsha", "coordinator", &creds.identity().name),
        &fedq_certs::jws::certificate_public_key(&chain[0]).unwrap(),
    )
    .unwrap();
    let kept = fedq_audit::checkpoints(&coordinator_log).unwrap();
    let (size, note) = kept
        .last()
        .expect("the coordinator's log kept no checkpoint");
    let (head, _) = fedq_audit::checkpoint::open_checkpoint(note, &verifier).unwrap();
    assert_eq!(head.size, *size);
    assert_eq!(*size, fedq_audit::verify(&coordinator_log).unwrap().entries);
}
