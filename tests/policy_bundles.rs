//! Signed policy changes end to end, as officers and operators do them: `fedq policy
//! bundle`, `sign` (with its diff), `publish` and `status` against a running federation on
//! 127.0.0.1 with real certificates; refusals keep the version in force everywhere; nodes
//! verify bundles themselves; every audit entry names the version that decided it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../node/tests/pg/mod.rs"]
mod pg;
mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use fedq_sandbox::{ask, Ask, Federation, Running, LICENSING_BASIS, LICENSING_CASE};
use fedq_testkit::federation;
use fedq_wire::transport::{Limits, NodeClient, TlsFiles};
use fedq_wire::{NodeRequest, NodeResponse};

fn fedq(args: &[&str]) -> Output {
    support::process::output_within(
        support::process::fedq().args(args),
        support::process::COMMAND_LIMIT,
    )
}

/// Runs the CLI off the runtime (the federation is served by this process).
async fn run(args: Vec<String>) -> Output {
    // `fedq` itself is bounded by COMMAND_LIMIT.
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        fedq(&refs)
    })
    .await
    .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

struct Officers<'a> {
    fed: &'a Federation,
}

impl Officers<'_> {
    fn pki(&self, file: &str) -> String {
        self.fed.layout.pki().join(file).display().to_string()
    }

    /// The policy in force with its version string changed (and, optionally, more), as a
    /// new bundle file.
    fn bundle(&self, version: u64, edit: impl Fn(String) -> String) -> PathBuf {
        let policy = self.fed.layout.policy();
        let dir = policy.parent().unwrap();
        let next = dir.join(format!("policy-v{version}.toml"));
        let original = std::fs::read_to_string(&policy).unwrap();
        let changed = edit(original.replacen(
            "version = \"2026.11-1\"",
            &format!("version = \"2026.12-{version}\""),
            1,
        ));
        std::fs::write(&next, changed).unwrap();
        let out = dir.join(format!("v{version}.bundle.toml"));
        // Every bundle pins the officer roster to the federation's three officers.
        let roster: Vec<String> = fedq_sandbox::OFFICERS
            .iter()
            .map(|o| self.pki(&format!("{o}.crt")))
            .collect();
        let o = fedq(&[
            "policy",
            "bundle",
            next.to_str().unwrap(),
            "--federation",
            "changsha",
            "--bundle-version",
            &version.to_string(),
            "--out",
            out.to_str().unwrap(),
            "--officer",
            &roster[0],
            "--officer",
            &roster[1],
            "--officer",
            &roster[2],
        ]);
        assert!(o.status.success(), "{}", text(&o));
        assert!(
            text(&o).contains("officers who may approve the next bundle: officer-zhang (key"),
            "{}",
            text(&o)
        );
        out
    }

    fn sign(&self, bundle: &Path, officer: &str, in_force: &Path) -> Output {
        fedq(&[
            "policy",
            "sign",
            bundle.to_str().unwrap(),
            "--cert",
            &self.pki(&format!("{officer}.crt")),
            "--key",
            &self.pki(&format!("{officer}.key")),
            "--in-force",
            in_force.to_str().unwrap(),
            "--yes",
        ])
    }

    fn api(&self, who: &str) -> Vec<String> {
        vec![
            "--coordinator".into(),
            format!("https://{}", self.fed.coordinator),
            "--cert".into(),
            self.pki(&format!("{who}.crt")),
            "--key".into(),
            self.pki(&format!("{who}.key")),
            "--ca".into(),
            self.pki("ca.crt"),
        ]
    }

    async fn publish(&self, bundle: &Path, who: &str) -> Output {
        let mut args = vec![
            "policy".to_owned(),
            "publish".to_owned(),
            bundle.display().to_string(),
        ];
        args.extend(self.api(who));
        run(args).await
    }

    async fn status(&self) -> String {
        let mut args = vec!["policy".to_owned(), "status".to_owned()];
        args.extend(self.api("officer-wang"));
        let o = run(args).await;
        assert!(o.status.success(), "{}", text(&o));
        text(&o)
    }
}

async fn blacklist_check(fed: &Federation) -> serde_json::Value {
    let (status, body) = ask(
        fed,
        &Ask {
            requester: "market-regulation.licensing".into(),
            subject: fed.scenario.blacklisted.resident_id.clone(),
            purpose: "administrative-licensing".into(),
            basis: Some(LICENSING_BASIS.into()),
            consent: None,
            case_reference: Some(LICENSING_CASE.into()),
            view: Some("blacklist-check".into()),
            datasets: Vec::new(),
        },
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

/// The licensing office's blacklist check, as `fedq query` sends it.
fn blacklist_query(fed: &Federation) -> fedq_coordinator::query::QueryRequest {
    fedq_coordinator::query::QueryRequest {
        subject: fed.scenario.blacklisted.resident_id.clone(),
        purpose: "administrative-licensing".into(),
        legal_basis: Some(LICENSING_BASIS.into()),
        case_reference: Some(LICENSING_CASE.into()),
        view: Some("blacklist-check".into()),
        ..Default::default()
    }
}

/// A connection as the licensing office, its sessions with every node open.
async fn licensing_connection(fed: &Federation) -> fedq_coordinator::client::ApiConnection {
    let mut conn = support::connect_as(fed, "market-regulation.licensing")
        .await
        .unwrap();
    conn.open_sessions().await.unwrap();
    conn
}

/// What an answer says, without its query id, version and each node's audit receipt
/// (which is for that one answer's entry, so it differs between two askings).
fn meaning(answer: &serde_json::Value) -> serde_json::Value {
    let mut nodes = answer["nodes"].clone();
    for n in nodes.as_array_mut().into_iter().flatten() {
        if let Some(n) = n.as_object_mut() {
            n.remove("receipt");
            n.remove("answer_sha256");
        }
    }
    serde_json::json!({
        "complete": answer["complete"],
        "nodes": nodes,
        "view_result": answer["view_result"],
    })
}

/// The court keeps its records on PostgreSQL at `url`, loaded by the real importer.
fn court_on_postgres(fed: &Federation, url: &str) {
    let config = fed.layout.node_config("court");
    let toml = std::fs::read_to_string(&config).unwrap();
    let line = "store = \"../stores/court.db\"";
    assert!(toml.contains(line));
    std::fs::write(&config, toml.replace(line, &format!("store = \"{url}\""))).unwrap();
    let o = fedq(&["node", "init", "--config", config.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    for entry in std::fs::read_dir(fed.layout.data().join("court")).unwrap() {
        let path = entry.unwrap().path();
        let dataset = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let o = fedq(&[
            "node",
            "import",
            "--config",
            config.to_str().unwrap(),
            "--dataset",
            &dataset,
            path.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", text(&o));
    }
}

/// The outcomes of the entries of `kind` in an audit log, oldest first.
fn kinds(audit: &Path, kind: fedq_audit::EntryKind) -> Vec<String> {
    fedq_audit::list(audit, &fedq_audit::ListFilter::default())
        .unwrap()
        .into_iter()
        .filter(|e| e.record.kind == kind)
        .map(|e| e.record.outcome.to_string())
        .collect()
}

fn last_policy_version(audit: &Path) -> String {
    let entries = fedq_audit::list(audit, &fedq_audit::ListFilter::default()).unwrap();
    entries.last().unwrap().record.policy_version.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_officers_change_the_policy_everywhere_and_refusals_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path(), 200, 9);
    let mut running = Running::start(&fed, None).await.unwrap();
    let officers = Officers { fed: &fed };
    let setup_policy = fed.layout.policy();
    let court_audit = fed.layout.root.join("audit/court-audit.db");
    let coordinator_audit = fed.layout.root.join("audit/coordinator-audit.db");

    let before = blacklist_check(&fed).await;
    assert_eq!(before["policy_version"], "0/2026.11-1", "{before}");

    // Version 1 tightens nothing but its name; version 1's sign shows the diff.
    let v1 = officers.bundle(1, |p| p);
    let unsigned = std::fs::read_to_string(&v1).unwrap();
    // Without --yes and without a terminal, nothing is signed.
    let o = fedq(&[
        "policy",
        "sign",
        v1.to_str().unwrap(),
        "--cert",
        &officers.pki("officer-zhang.crt"),
        "--key",
        &officers.pki("officer-zhang.key"),
        "--in-force",
        setup_policy.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("pass --yes"), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(&v1).unwrap(), unsigned);

    let o = officers.sign(&v1, "officer-zhang", &setup_policy);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("what changes against the set-up policy")
            && text(&o).contains("policy version 2026.11-1 → 2026.12-1"),
        "{}",
        text(&o)
    );

    // One signature is not enough: refused by the coordinator, nothing changes anywhere.
    let o = officers.publish(&v1, "officer-zhang").await;
    assert!(!o.status.success());
    assert!(
        text(&o).contains("422") && text(&o).contains("1 distinct officer(s) signed"),
        "{}",
        text(&o)
    );
    let status = officers.status().await;
    assert!(status.contains("last bundle refused"), "{status}");
    assert_eq!(status.matches("0/2026.11-1").count(), 8, "{status}");

    // The same officer again does not count twice.
    let o = officers.sign(&v1, "officer-zhang", &setup_policy);
    assert!(!o.status.success());
    assert!(text(&o).contains("already signed"), "{}", text(&o));

    // A second officer: published by an officer, in force on the coordinator and every node.
    let o = officers.sign(&v1, "officer-li", &setup_policy);
    assert!(o.status.success(), "{}", text(&o));
    let o = officers.publish(&v1, "officer-wang").await;
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        text(&o).matches("1/2026.12-1 (now in force)").count(),
        8,
        "{}",
        text(&o)
    );
    let status = officers.status().await;
    assert_eq!(status.matches("1/2026.12-1").count(), 8, "{status}");
    assert!(
        status.contains("every node runs the coordinator's version"),
        "{status}"
    );

    // New queries run under version 1, and every audit entry says so.
    let after = blacklist_check(&fed).await;
    assert_eq!(after["policy_version"], "1/2026.12-1", "{after}");
    assert_eq!(last_policy_version(&court_audit), "1/2026.12-1");
    assert!(
        fedq_audit::list(&coordinator_audit, &fedq_audit::ListFilter::default())
            .unwrap()
            .iter()
            .any(|e| e.record.kind == fedq_audit::EntryKind::Policy
                && e.record.outcome.contains("\"changed\":true")),
        "the publication was not registered"
    );
    // Each process registers what it installed, with the approving officers: the floor a
    // restart must not go below.
    for audit in [&coordinator_audit, &court_audit] {
        assert_eq!(fedq_audit::last_installed_policy(audit).unwrap(), Some(1));
        let installed = kinds(audit, fedq_audit::EntryKind::PolicyInstalled);
        assert!(
            installed[0].contains("officer-zhang") && installed[0].contains("officer-li"),
            "{installed:?}"
        );
    }
    // Only officers and the coordinator read the policy status.
    let mut args = vec!["policy".to_owned(), "status".to_owned()];
    args.extend(officers.api("market-regulation.licensing"));
    let o = run(args).await;
    assert!(
        !o.status.success() && text(&o).contains("403"),
        "{}",
        text(&o)
    );

    // Publishing the same bundle again is harmless; a replay of it after version 2 is not.
    let o = officers.publish(&v1, "coordinator").await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("already in force"), "{}", text(&o));
    let v2 = officers.bundle(2, |p| p);
    for o in ["officer-wang", "officer-li"] {
        assert!(officers.sign(&v2, o, &v1).status.success());
    }
    assert!(officers
        .publish(&v2, "officer-zhang")
        .await
        .status
        .success());
    // The signing tool already refuses to sign an old version against a newer one …
    let o = officers.sign(&v1, "officer-wang", &v2);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("bundle version 1 is not higher than bundle version 2"),
        "{}",
        text(&o)
    );
    // … and replaying the signed old bundle is refused by the coordinator.
    let o = officers.publish(&v1, "officer-zhang").await;
    assert!(!o.status.success());
    assert!(
        text(&o).contains("409") && text(&o).contains("version 1 is not higher than version 2"),
        "{}",
        text(&o)
    );

    // Edited after signing: refused.
    let v3 = officers.bundle(3, |p| p);
    for o in ["officer-zhang", "officer-li"] {
        assert!(officers.sign(&v3, o, &v2).status.success());
    }
    let signed = std::fs::read_to_string(&v3).unwrap();
    let edited = tmp.path().join("edited.bundle.toml");
    std::fs::write(&edited, signed.replacen("2026.12-3", "2026.12-X", 1)).unwrap();
    let o = officers.publish(&edited, "officer-zhang").await;
    assert!(
        text(&o).contains("edited after it was created"),
        "{}",
        text(&o)
    );

    // A requester cannot publish.
    let o = officers.publish(&v3, "market-regulation.licensing").await;
    assert!(
        text(&o).contains("403") && text(&o).contains("requester certificate cannot publish"),
        "{}",
        text(&o)
    );

    // A revoked officer's signature does not count (within one CRL reload: every
    // verification reads the CRL afresh).
    let ca = fedq_certs::CertificateAuthority::open(&fed.layout.pki()).unwrap();
    ca.revoke("officer-li").unwrap();
    let o = officers.publish(&v3, "officer-zhang").await;
    assert!(!o.status.success());
    assert!(text(&o).contains("has been revoked"), "{}", text(&o));

    // Nodes verify for themselves: a bundle handed straight to a node by a (misbehaving)
    // coordinator with one signature is refused there, and the node keeps version 2.
    let one = officers.bundle(4, |p| p);
    assert!(officers.sign(&one, "officer-zhang", &v2).status.success());
    let pki = fed.layout.pki();
    let client = NodeClient::new(
        "127.0.0.1:0".parse().unwrap(),
        TlsFiles::in_dir(&pki, "coordinator"),
        Limits::default(),
    )
    .unwrap();
    let court = client.channel("court", fed.nodes["court"]);
    let answer = court
        .request(
            &NodeRequest::InstallPolicy(std::fs::read_to_string(&one).unwrap()),
            std::time::Duration::from_secs(10),
        )
        .await
        .unwrap();
    match answer {
        NodeResponse::Refused { rationale } => {
            assert!(rationale.contains("1 distinct officer(s)"), "{rationale}")
        }
        other => panic!("node accepted an under-signed bundle: {other:?}"),
    }
    client.close();
    assert!(
        kinds(&court_audit, fedq_audit::EntryKind::PolicyRefused)
            .last()
            .is_some_and(|o| o.contains("1 distinct officer(s)")),
        "the node did not register the refusal"
    );

    // A restarted node comes back with version 2, not the set-up policy.
    running.stop_node("court").await;
    running.restart_node(&fed, "court", None).await.unwrap();
    let status = officers.status().await;
    assert!(status.contains("node court"), "{status}");
    assert_eq!(status.matches("2/2026.12-2").count(), 8, "{status}");
    let again = blacklist_check(&fed).await;
    assert_eq!(again["policy_version"], "2/2026.12-2", "{again}");
    assert_eq!(last_policy_version(&court_audit), "2/2026.12-2");

    running.stop().await;
    for audit in [&court_audit, &coordinator_audit] {
        fedq_audit::verify(audit).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_in_flight_keep_their_version_and_a_node_that_was_down_catches_up() {
    let db = pg::database("bundles_in_flight");
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path(), 200, 11);
    court_on_postgres(&fed, &db.url);
    let fed = std::sync::Arc::new(fed);
    let mut running = Running::start(&fed, None).await.unwrap();
    let officers = Officers { fed: &fed };
    let setup_policy = fed.layout.policy();
    let v1 = officers.bundle(1, |p| p);
    for o in ["officer-zhang", "officer-li"] {
        assert!(officers.sign(&v1, o, &setup_policy).status.success());
    }
    let before = blacklist_check(&fed).await;
    assert_eq!(before["policy_version"], "0/2026.11-1");

    // Queries held at the court's locked store while the bundle is published: provably in
    // flight when it lands, so each must still be decided, answered and audited under the
    // version in force when it started, at the coordinator and at the court.
    let lock = tokio::task::block_in_place(|| pg::TableLock::take(&db.url, "records"));
    // Each on a connection of its own that holds its sessions already, so the four reach
    // the court together (session set-ups one after another can outlast the deadline on a
    // busy host).
    let mut conns = Vec::new();
    for _ in 0..4 {
        conns.push(licensing_connection(&fed).await);
    }
    let held: Vec<_> = conns
        .into_iter()
        .map(|mut conn| {
            let q = blacklist_query(&fed);
            tokio::spawn(async move {
                let (status, body) = conn.query(&q).await.unwrap();
                assert_eq!(status, 200, "{body}");
                body
            })
        })
        .collect();
    let give_up = Instant::now() + Duration::from_secs(60);
    while tokio::task::block_in_place(|| pg::waiting_on(&db.url, "records")) < 4 {
        assert!(
            Instant::now() < give_up,
            "the queries did not reach the court"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let published = officers.publish(&v1, "officer-zhang").await;
    assert!(published.status.success(), "{}", text(&published));
    assert!(
        held.iter().all(|h| !h.is_finished()),
        "a held query finished before the publication"
    );
    let status = officers.status().await;
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("node court") && l.contains("1/2026.12-1")),
        "{status}"
    );
    tokio::task::block_in_place(|| lock.release());
    let mut answers = Vec::new();
    for h in held {
        answers.push(
            tokio::time::timeout(Duration::from_secs(60), h)
                .await
                .expect("a held query was not answered within 60 s")
                .unwrap(),
        );
    }
    let after = blacklist_check(&fed).await;
    assert_eq!(after["policy_version"], "1/2026.12-1");
    let coordinator_audit = fedq_audit::list(
        &fed.layout.root.join("audit/coordinator-audit.db"),
        &fedq_audit::ListFilter::default(),
    )
    .unwrap();
    let court_audit = fedq_audit::list(
        &fed.layout.root.join("audit/court-audit.db"),
        &fedq_audit::ListFilter::default(),
    )
    .unwrap();
    // The court records its own id of each query; the coordinator's entry maps it.
    let mapped = support::node_query_ids(&fed.layout.root.join("audit/coordinator-audit.db"));
    let version_in = |log: &[fedq_audit::AuditEntry], a: &serde_json::Value| {
        let coordinator_id = a["query_id"].as_str().unwrap();
        let court_id = mapped[coordinator_id]["court"].as_str();
        let entries: Vec<_> = log
            .iter()
            .filter(|e| e.record.query_id == coordinator_id || e.record.query_id == court_id)
            .collect();
        assert_eq!(entries.len(), 1, "one entry per query: {a}");
        entries[0].record.policy_version.clone()
    };
    for a in &answers {
        assert_eq!(meaning(a), meaning(&before), "{a}");
        assert_eq!(a["policy_version"], "0/2026.11-1", "{a}");
        assert_eq!(version_in(&coordinator_audit, a), "0/2026.11-1");
        assert_eq!(version_in(&court_audit, a), "0/2026.11-1");
    }
    assert_eq!(version_in(&coordinator_audit, &after), "1/2026.12-1");
    assert_eq!(version_in(&court_audit, &after), "1/2026.12-1");

    // A node that is down during a publication keeps its version; status says so and why;
    // publishing the same bundle again once it is back brings it in step.
    running.stop_node("tax").await;
    let v2 = officers.bundle(2, |p| p);
    for o in ["officer-wang", "officer-li"] {
        assert!(officers.sign(&v2, o, &v1).status.success());
    }
    let o = officers.publish(&v2, "officer-zhang").await;
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("node tax: NOT applied") && text(&o).contains("1 node(s) did not apply"),
        "{}",
        text(&o)
    );
    let status = officers.status().await;
    assert!(
        status.contains("unreachable") && status.contains("last publish failed"),
        "{status}"
    );
    assert!(status.contains("NOT in step"), "{status}");
    running.restart_node(&fed, "tax", None).await.unwrap();
    let status = officers.status().await;
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("node tax") && l.contains("1/2026.12-1")),
        "{status}"
    );
    let o = officers.publish(&v2, "officer-zhang").await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("node tax: 2/2026.12-2 (now in force)"),
        "{}",
        text(&o)
    );
    let status = officers.status().await;
    assert!(
        status.contains("every node runs the coordinator's version"),
        "{status}"
    );
    assert!(!status.contains("last publish failed"), "{status}");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn officers_minted_after_set_up_approve_nothing_even_on_processes_with_no_state() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path(), 100, 11);
    let running = Running::start(&fed, None).await.unwrap();
    let officers = Officers { fed: &fed };
    let setup_policy = fed.layout.policy();
    // Every process starts with no bundle state; the demo pinned the three officers'
    // keys in every config. Whoever holds the CA key mints two more officers now …
    let ca = fedq_certs::CertificateAuthority::open(&fed.layout.pki()).unwrap();
    for o in ["officer-mallory", "officer-trent"] {
        ca.issue(
            fedq_certs::Role::Officer,
            o,
            &fedq_certs::IssueOptions::default(),
        )
        .unwrap();
    }
    // … and they sign a bundle (the tool signs whatever valid officer asks) …
    let forged = officers.bundle(1, |p| p);
    for o in ["officer-mallory", "officer-trent"] {
        let s = officers.sign(&forged, o, &setup_policy);
        assert!(s.status.success(), "{}", text(&s));
    }
    // … which the coordinator refuses …
    let o = officers.publish(&forged, "officer-mallory").await;
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("signature 1 (fedq://changsha/officer/officer-mallory)")
            && text(&o).contains("not on the officer roster in force"),
        "{}",
        text(&o)
    );
    // … and so does a node handed it straight, by its own pinned roster.
    let client = NodeClient::new(
        "127.0.0.1:0".parse().unwrap(),
        TlsFiles::in_dir(&fed.layout.pki(), "coordinator"),
        Limits::default(),
    )
    .unwrap();
    let answer = client
        .channel("court", fed.nodes["court"])
        .request(
            &NodeRequest::InstallPolicy(std::fs::read_to_string(&forged).unwrap()),
            std::time::Duration::from_secs(10),
        )
        .await
        .unwrap();
    match answer {
        NodeResponse::Refused { rationale } => assert!(
            rationale.contains("not on the officer roster in force"),
            "{rationale}"
        ),
        other => panic!("node accepted officers outside its roster: {other:?}"),
    }
    client.close();
    let now = blacklist_check(&fed).await;
    assert_eq!(now["policy_version"], "0/2026.11-1", "{now}");
    running.stop().await;
}
