//! Faults with real processes: a node killed with SIGKILL under load and restarted; the
//! coordinator stopped (SIGTERM) and killed (SIGKILL) under load and restarted on its port;
//! a node whose PostgreSQL server stops and whose SQLite file is truncated under it; a node
//! and a coordinator whose audit log's disk fills up; an import killed at random points.
//! Bounded in count and time; loopback only.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../node/tests/pg/mod.rs"]
mod pg;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fedq_coordinator::client::{ApiConnection, ClientError};
use fedq_coordinator::query::QueryRequest;
use fedq_sandbox::{Federation, Running, LICENSING_BASIS, LICENSING_CASE};
use fedq_testkit::federation;
use serde_json::Value;
use support::process::{fedq, run_ok, FedqProcess};
use support::{meaning, node_query_ids, report};

fn blacklist(subject: &str) -> QueryRequest {
    QueryRequest {
        subject: subject.to_owned(),
        purpose: "administrative-licensing".into(),
        legal_basis: Some(LICENSING_BASIS.into()),
        consent: None,
        case_reference: Some(LICENSING_CASE.into()),
        view: Some("blacklist-check".into()),
        datasets: None,
        ..QueryRequest::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_under_load_is_reported_then_reconnected_and_loses_no_audit_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path(), 300, 11);
    fed.lift_rate_limits().unwrap();
    let mut running = Running::start(&fed, None).await.unwrap();
    // The court runs as its own process, so it can be killed for real.
    running.stop_node("court").await;
    let mut court = FedqProcess::node(&fed.layout.node_config("court"), None);
    let pki = fed.layout.pki();
    let url = format!("https://{}", fed.coordinator);
    let subject = fed.scenario.blacklisted.resident_id.clone();

    let mut answered_by_court = BTreeSet::new();
    // Each court answer's report, its receipt in it, as the requester side kept it.
    let mut court_reports = Vec::new();
    let mut statuses = Vec::new();
    // What the court's report said when it did not answer after the restart.
    let mut late = Vec::new();
    let mut conns = Vec::new();
    for _ in 0..4 {
        conns.push(
            ApiConnection::connect(
                &url,
                &pki.join("market-regulation.licensing.crt"),
                &pki.join("market-regulation.licensing.key"),
                &pki.join("ca.crt"),
            )
            .await
            .unwrap(),
        );
    }
    let mut cut = Vec::new();
    for round in 0..40 {
        if round == 15 {
            // Hold the court still (SIGSTOP) so that the round's queries, sent below,
            // reach it and stay unanswered: they are in flight when SIGKILL cuts it.
            court.signal("STOP");
        }
        if round == 20 {
            court = FedqProcess::node(&fed.layout.node_config("court"), None);
            // While the court is marked down the rounds take no time at all (it is not
            // asked), so wait until the coordinator's probes have found it back (its
            // `fedq_node_up` is 1 again; `tests/dead_node.rs` holds the probes to 2 s)
            // before the rounds that must see it answer.
            let give_up = Instant::now() + Duration::from_secs(60);
            while support::node_up(&support::coordinator_metrics(&fed).await, "court") != Some(1.0)
            {
                assert!(
                    Instant::now() < give_up,
                    "the coordinator did not find the restarted court within 60 s"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            // …and until the court answers a query again: under a loaded machine a
            // restarted node can still be starting its parts for a moment after the
            // first ping answers.
            loop {
                let (status, answer) = ask_licensing(&fed, &blacklist(&subject)).await;
                if status == 200 && node_report(&answer, "court")["status"] == "answered" {
                    break;
                }
                assert!(
                    Instant::now() < give_up,
                    "the restarted court answered no query within 60 s: {answer}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        let mut tasks = Vec::new();
        for mut conn in conns.drain(..) {
            let q = blacklist(&subject);
            tasks.push(tokio::spawn(async move {
                let r = conn.query(&q).await;
                (conn, r)
            }));
        }
        if round == 15 {
            // Well inside the coordinator's 2 s deadline, none can have been answered:
            // the court cannot answer and the coordinator waits for it.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let waiting = tasks.iter().filter(|t| !t.is_finished()).count();
            assert_eq!(
                waiting,
                tasks.len(),
                "queries finished while the court was held"
            );
            // SIGKILL: no goodbye to the coordinator, the in-flight requests cut.
            tokio::task::block_in_place(|| court.kill());
        }
        for t in tasks {
            let (conn, r) = tokio::time::timeout(Duration::from_secs(60), t)
                .await
                .expect("a query took over 60 s (the coordinator's deadline is 2 s)")
                .unwrap();
            conns.push(conn);
            let (status, answer) = r.unwrap();
            assert_eq!(status, 200, "{answer}");
            let court_status = node_report(&answer, "court")["status"]
                .as_str()
                .unwrap()
                .to_owned();
            if court_status == "answered" {
                // The query the court answered under: the answer's own, or the one the
                // client asked it again in, alone, after the restart lost its session.
                let id = node_report(&answer, "court")["query_id"]
                    .as_str()
                    .or(answer["query_id"].as_str())
                    .unwrap();
                answered_by_court.insert(id.to_owned());
                court_reports.push(node_report(&answer, "court").clone());
            }
            if round == 15 {
                cut.push(answer["query_id"].as_str().unwrap().to_owned());
            }
            if round >= 20 && court_status != "answered" {
                late.push(node_report(&answer, "court").to_string());
            }
            statuses.push((round, court_status));
        }
    }
    // Before the kill: answered. The queries in flight at the kill and those while it is
    // down: reported, never silently omitted, never a court answer. Once the coordinator
    // has found the restarted court: answered again over a new connection.
    assert!(statuses
        .iter()
        .filter(|(r, _)| *r < 15)
        .all(|(_, s)| s == "answered"));
    assert!(
        statuses
            .iter()
            .filter(|(r, _)| (15..20).contains(r))
            .all(|(_, s)| s == "unavailable" || s == "timed_out"),
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .filter(|(r, _)| *r >= 20)
            .all(|(_, s)| s == "answered"),
        "{statuses:?}; after the restart: {late:?}"
    );
    assert_eq!(cut.len(), 4);

    drop(court);
    running.stop().await;

    // Every answer the court released has its audit entry, and the chain is intact.
    let audit = fed.layout.root.join("audit/court-audit.db");
    let v = fedq_audit::verify(&audit).unwrap();
    assert_eq!(v.first_break, None);
    let logged: BTreeSet<String> = fedq_audit::list(&audit, &fedq_audit::ListFilter::default())
        .unwrap()
        .into_iter()
        .map(|e| e.record.query_id)
        .collect();
    // Each node records its own id of a query; the coordinator's entry maps them.
    let court_ids = node_query_ids(&fed.layout.root.join("audit/coordinator-audit.db"));
    let missing: Vec<_> = answered_by_court
        .iter()
        .filter(|id| {
            court_ids
                .get(*id)
                .and_then(|m| m.get("court"))
                .is_none_or(|court_id| !logged.contains(court_id))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "answers without an audit entry: {missing:?}"
    );
    assert!(answered_by_court.len() >= 100);
    // No receipt, no data: every court answer released, before the kill and after the
    // restart, came with a receipt that checks against the court's certificate key and
    // its answer, and commits to the very entry the court's log holds at that place.
    let entries: BTreeMap<u64, fedq_audit::AuditEntry> =
        fedq_audit::list(&audit, &fedq_audit::ListFilter::default())
            .unwrap()
            .into_iter()
            .map(|e| (e.seq, e))
            .collect();
    assert_eq!(court_reports.len(), answered_by_court.len());
    for report in &court_reports {
        let receipt = support::checked_receipt(&pki, "court", report).unwrap();
        let entry = entries
            .get(&receipt.seq)
            .unwrap_or_else(|| panic!("no entry {} for a receipt", receipt.seq));
        assert_eq!(entry.hash, receipt.entry_hash);
        assert_eq!(
            entry.record.answer_sha256.map(hex::encode).as_deref(),
            Some(receipt.answer_sha256.as_str())
        );
    }
}

#[test]
fn an_import_killed_at_random_points_leaves_the_store_before_or_after() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path(), 200, 12);
    let cfg = fed.layout.node_config("court");
    // A large file: the sample export's first row, 300,000 times with new keys and IDs.
    let sample = fed.layout.data().join("court/enforcement_cases.csv");
    let mut reader = csv::Reader::from_path(&sample).unwrap();
    let header = reader.headers().unwrap().clone();
    let row = reader.records().next().unwrap().unwrap();
    let key_col = header.iter().position(|c| c == "case_no").unwrap();
    let big = tmp.path().join("big.csv");
    {
        let mut w = csv::Writer::from_path(&big).unwrap();
        w.write_record(&header).unwrap();
        for i in 0..300_000u32 {
            let mut r: Vec<String> = row.iter().map(str::to_owned).collect();
            r[key_col] = format!("CRASH-{i:07}");
            w.write_record(&r).unwrap();
        }
        w.flush().unwrap();
    }
    let count = || {
        fedq_node::store::SqliteStore::open(&fed.layout.store("court"))
            .unwrap()
            .count("court.enforcement_cases")
            .unwrap()
    };
    let before = count();
    let after = before + 300_000;
    let mut saw = BTreeSet::new();
    // Pseudo-random kill points, bounded: 6 attempts between 0 and ~1.2 s.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..6 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let delay = Duration::from_millis(50 + x % 1200);
        let mut child = fedq()
            .args([
                "node",
                "import",
                "--config",
                cfg.to_str().unwrap(),
                "--dataset",
                "enforcement_cases",
                big.to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let give_up = Instant::now() + Duration::from_secs(30);
        while child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < give_up, "the killed import did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
        let n = count();
        assert!(
            n == before || n == after,
            "store holds {n} rows: neither {before} nor {after}"
        );
        saw.insert(n);
        if n == after {
            // Reset for the next attempt by starting from a fresh copy of the store.
            let store = fedq_node::store::connect(&fed.layout.store("court")).unwrap();
            store
                .execute("DELETE FROM records WHERE record_key LIKE 'CRASH-%'", [])
                .unwrap();
        }
    }
    assert!(
        saw.contains(&before),
        "no attempt was killed mid-import: {saw:?}"
    );
}

fn node_report<'a>(answer: &'a Value, node: &str) -> &'a Value {
    answer["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == node)
        .unwrap_or_else(|| panic!("no report of `{node}` in {answer}"))
}

async fn connect_as(fed: &Federation, requester: &str) -> Result<ApiConnection, ClientError> {
    support::connect_as(fed, requester).await
}

/// One query through a fresh connection as the licensing office.
async fn ask_licensing(fed: &Federation, q: &QueryRequest) -> (u16, Value) {
    let mut conn = connect_as(fed, "market-regulation.licensing")
        .await
        .unwrap();
    conn.query(q).await.unwrap()
}

/// What the load clients saw while the coordinator was stopped and restarted.
#[derive(Default)]
struct Seen {
    /// Query ids of 200 answers identical to the reference answer, with which reference.
    answered: Vec<(String, usize)>,
    /// 503s (overloaded or audit log unavailable): clean refusals.
    refused_503: usize,
    /// Connections refused, reset or closed: clean connection errors.
    connection_errors: usize,
    /// Anything else: a wrong answer or an unexpected status.
    wrong: Vec<String>,
}

/// Runs queries in a loop over a kept-alive connection, reconnecting after a connection
/// error, until `stop` (or 5 minutes, whichever is first).
async fn load_client(
    fed: Arc<Federation>,
    asks: Arc<Vec<(QueryRequest, Value)>>,
    offset: usize,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
) {
    let give_up = Instant::now() + Duration::from_secs(300);
    let mut conn: Option<ApiConnection> = None;
    let mut i = offset;
    while !stop.load(Ordering::Relaxed) && Instant::now() < give_up {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match connect_as(&fed, "market-regulation.licensing").await {
                Ok(c) => conn.insert(c),
                Err(_) => {
                    seen.lock().unwrap().connection_errors += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let k = i % asks.len();
        let (q, expected) = &asks[k];
        i += 1;
        let result = c.query(q).await;
        let mut seen = seen.lock().unwrap();
        match result {
            Ok((200, answer)) if meaning(&answer) == *expected => seen
                .answered
                .push((answer["query_id"].as_str().unwrap().to_owned(), k)),
            Ok((503, _)) => seen.refused_503 += 1,
            Ok((status, answer)) => seen.wrong.push(format!("{status}: {answer}")),
            Err(_) => {
                seen.connection_errors += 1;
                conn = None;
            }
        }
    }
}

/// Waits (at most 2 minutes) until the clients have `n` more answers than `since`.
async fn wait_for_answers(seen: &Mutex<Seen>, since: usize, n: usize) {
    let give_up = Instant::now() + Duration::from_secs(120);
    loop {
        let have = seen.lock().unwrap().answered.len();
        if have >= since + n {
            return;
        }
        assert!(
            Instant::now() < give_up,
            "only {} answers after the restart, expected {n}",
            have - since
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Connection errors and 503s the clients have seen so far.
fn errors_seen(seen: &Mutex<Seen>) -> usize {
    let s = seen.lock().unwrap();
    s.connection_errors + s.refused_503
}

/// Waits (at most 2 minutes) until the clients have seen more clean errors than `since`:
/// they noticed the coordinator go.
async fn wait_for_errors(seen: &Mutex<Seen>, since: usize) {
    let give_up = Instant::now() + Duration::from_secs(120);
    while errors_seen(seen) <= since {
        assert!(
            Instant::now() < give_up,
            "no client noticed the coordinator go"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `fedq audit verify --config CONFIG` succeeds and says the chain is intact.
fn audit_verifies(config: &std::path::Path) {
    let out = run_ok(fedq().args(["audit", "verify", "--config"]).arg(config));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("chain intact"), "{stdout}");
}

/// How many entries of each query id the audit log at `path` holds.
fn audit_query_ids(path: &std::path::Path) -> BTreeMap<String, usize> {
    let mut ids = BTreeMap::new();
    for e in fedq_audit::list(path, &fedq_audit::ListFilter::default()).unwrap() {
        // Session entries (a requester opening its sessions) are not queries.
        if e.record.kind != fedq_audit::EntryKind::Session {
            *ids.entry(e.record.query_id).or_insert(0) += 1;
        }
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_coordinator_stopped_and_killed_under_load_gives_no_wrong_answer_and_loses_no_audit_entry(
) {
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path(), 300, 13);
    fed.lift_rate_limits().unwrap();
    let fed = Arc::new(fed);
    // Nodes in this process; the coordinator as its own process, so it can be killed.
    let mut nodes = Vec::new();
    for name in fed.nodes.keys() {
        nodes.push(fedq_sandbox::start_node(&fed, name, None).await.unwrap());
    }
    let coordinator_config = fed.layout.coordinator_config();
    let mut coordinator = FedqProcess::coordinator(&coordinator_config, None);

    // The reference answers, asked before any fault: complete, every node answering.
    let s = &fed.scenario;
    let mut asks = Vec::new();
    for (subject, view) in [
        (&s.blacklisted.resident_id, "blacklist-check"),
        (&s.clean.resident_id, "blacklist-check"),
        (&s.clean.resident_id, "green-channel"),
        (&s.tax_arrears.resident_id, "green-channel"),
    ] {
        let mut q = blacklist(subject);
        q.view = Some(view.into());
        let (status, answer) = ask_licensing(&fed, &q).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["complete"], true, "{answer}");
        asks.push((q, meaning(&answer)));
    }
    assert_eq!(
        node_report(&asks[0].1, "court")["status"],
        "answered",
        "{}",
        asks[0].1
    );
    assert!(
        !asks[0].1["view_result"]["listings"]
            .as_array()
            .unwrap()
            .is_empty(),
        "the blacklisted person's listing is in the reference answer"
    );
    let asks = Arc::new(asks);

    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let clients: Vec<_> = (0..8)
        .map(|i| {
            tokio::spawn(load_client(
                Arc::clone(&fed),
                Arc::clone(&asks),
                i,
                Arc::clone(&stop),
                Arc::clone(&seen),
            ))
        })
        .collect();

    wait_for_answers(&seen, 0, 60).await;
    // SIGTERM: stop accepting, drain in-flight queries, exit cleanly.
    let status = tokio::task::block_in_place(|| coordinator.terminate());
    assert!(status.success(), "graceful stop exited with {status}");
    // While it is down the clients see clean errors (they keep trying).
    wait_for_errors(&seen, 0).await;
    let n = seen.lock().unwrap().answered.len();
    coordinator =
        tokio::task::block_in_place(|| FedqProcess::coordinator(&coordinator_config, None));
    wait_for_answers(&seen, n, 60).await;
    // SIGKILL: in-flight queries are cut, nothing is drained.
    let errors = errors_seen(&seen);
    tokio::task::block_in_place(|| coordinator.kill());
    wait_for_errors(&seen, errors).await;
    let n = seen.lock().unwrap().answered.len();
    coordinator =
        tokio::task::block_in_place(|| FedqProcess::coordinator(&coordinator_config, None));
    wait_for_answers(&seen, n, 60).await;

    stop.store(true, Ordering::Relaxed);
    for c in clients {
        // A client stops after its current query (each bounded by the 2 s deadline).
        tokio::time::timeout(Duration::from_secs(60), c)
            .await
            .expect("a load client did not stop within 60 s")
            .unwrap();
    }
    assert!(tokio::task::block_in_place(|| coordinator.terminate()).success());
    for (stop, task) in nodes {
        let _ = stop.send(());
        tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("a node did not stop within 60 s")
            .unwrap();
    }

    let seen = Arc::try_unwrap(seen).ok().unwrap().into_inner().unwrap();
    report(&format!(
        "coordinator restarts under load: {} answers (all as the reference), {} connection errors, {} 503s, {} wrong",
        seen.answered.len(),
        seen.connection_errors,
        seen.refused_503,
        seen.wrong.len()
    ));
    assert!(
        seen.wrong.is_empty(),
        "{} wrong answers, first: {}",
        seen.wrong.len(),
        seen.wrong[0]
    );

    // Audit: every chain intact; every released answer has exactly one coordinator entry;
    // no node entry is duplicated; every answer's nodes each logged it.
    audit_verifies(&coordinator_config);
    let coordinator_ids = audit_query_ids(&fed.layout.root.join("audit/coordinator-audit.db"));
    let duplicated: Vec<_> = coordinator_ids.iter().filter(|(_, n)| **n > 1).collect();
    assert!(duplicated.is_empty(), "duplicated entries: {duplicated:?}");
    let unlogged: Vec<_> = seen
        .answered
        .iter()
        .filter(|(id, _)| !coordinator_ids.contains_key(id))
        .collect();
    assert!(
        unlogged.is_empty(),
        "answers released without an audit entry: {unlogged:?}"
    );
    let mapped = node_query_ids(&fed.layout.root.join("audit/coordinator-audit.db"));
    for name in fed.nodes.keys() {
        audit_verifies(&fed.layout.node_config(name));
        let ids = audit_query_ids(&fed.layout.root.join(format!("audit/{name}-audit.db")));
        let duplicated: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).collect();
        assert!(duplicated.is_empty(), "{name}: duplicated {duplicated:?}");
        // Every answer this node took part in (per the reference answer) has its entry.
        let missing = seen
            .answered
            .iter()
            .filter(|(id, k)| {
                let report = asks[*k].1["nodes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|n| n["node"] == name.as_str())
                    .cloned();
                let answered = report.is_some_and(|r| r["status"] == "answered");
                let node_id = mapped.get(id).and_then(|m| m.get(name.as_str()));
                answered && node_id.is_none_or(|node_id| !ids.contains_key(node_id))
            })
            .count();
        assert_eq!(missing, 0, "{name}: answers without its entry");
    }
    assert!(seen.answered.len() >= 180);
}

/// The court keeps its records on PostgreSQL at `url`, loaded by the real importer.
fn court_on_postgres(fed: &Federation, url: &str) {
    let config = fed.layout.node_config("court");
    let text = std::fs::read_to_string(&config).unwrap();
    let line = "store = \"../stores/court.db\"";
    assert!(text.contains(line));
    std::fs::write(&config, text.replace(line, &format!("store = \"{url}\""))).unwrap();
    run_ok(fedq().args(["node", "init", "--config"]).arg(&config));
    for entry in std::fs::read_dir(fed.layout.data().join("court")).unwrap() {
        let path = entry.unwrap().path();
        let dataset = path.file_stem().unwrap().to_str().unwrap().to_owned();
        run_ok(
            fedq()
                .args(["node", "import", "--config"])
                .arg(&config)
                .args(["--dataset", &dataset])
                .arg(&path),
        );
    }
}

/// Sets the coordinator's deadline for node answers (the demo's is 2000 ms).
fn set_deadline_ms(fed: &Federation, ms: u64) {
    let coordinator = fed.layout.coordinator_config();
    let text = std::fs::read_to_string(&coordinator).unwrap();
    assert!(text.contains("deadline_ms = 2000"));
    std::fs::write(
        &coordinator,
        text.replace("deadline_ms = 2000", &format!("deadline_ms = {ms}")),
    )
    .unwrap();
}

/// The licensing office's blacklist check of the blacklisted person, with the answer's
/// court report.
async fn court_on_blacklist_check(fed: &Federation) -> (Value, Value) {
    let q = blacklist(&fed.scenario.blacklisted.resident_id);
    let (status, answer) = ask_licensing(fed, &q).await;
    assert_eq!(status, 200, "{answer}");
    (node_report(&answer, "court").clone(), answer)
}

/// The court's store failed: reported `unavailable` with the node's own reason (not a
/// clean "no record", not a silent omission), the others answered, the answer partial.
fn assert_store_unavailable(court: &Value, answer: &Value) {
    assert_eq!(court["status"], "unavailable", "{answer}");
    assert!(
        court["reason"]
            .as_str()
            .unwrap()
            .contains("its store is unavailable"),
        "{answer}"
    );
    assert_eq!(answer["complete"], false, "{answer}");
    for other in answer["nodes"].as_array().unwrap() {
        if other["node"] != "court" {
            assert!(other["status"] == "answered", "{answer}");
        }
    }
}

/// The court's audit log is intact and registered the failures as failures.
fn court_audit_registers_store_failures(fed: &Federation, at_least: usize) {
    audit_verifies(&fed.layout.node_config("court"));
    let entries = fedq_audit::list(
        &fed.layout.root.join("audit/court-audit.db"),
        &fedq_audit::ListFilter::default(),
    )
    .unwrap();
    let failed = entries
        .iter()
        .filter(|e| e.record.outcome == r#"{"unavailable":"store"}"#)
        .count();
    assert!(failed >= at_least, "{failed} store failures registered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_postgresql_server_stops_answers_unavailable_then_serves_again() {
    let cluster = pg::OwnCluster::start();
    let url = cluster.database("court");
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path(), 300, 14);
    court_on_postgres(&fed, &url);
    // A deadline over the node's wait for a connection to its store (1 s), with room for a
    // busy machine: the node must be the one that says its store is down.
    set_deadline_ms(&fed, 4000);
    let running = Running::start(&fed, None).await.unwrap();

    let (court, before) = court_on_blacklist_check(&fed).await;
    assert_eq!(court["status"], "answered", "{before}");

    cluster.stop();
    for _ in 0..3 {
        let (court, answer) = court_on_blacklist_check(&fed).await;
        assert_store_unavailable(&court, &answer);
    }

    cluster.restart();
    // The pool reconnects on the next lookup; a few tries at most.
    let mut after = Value::Null;
    for _ in 0..20 {
        let (court, answer) = court_on_blacklist_check(&fed).await;
        after = answer;
        if court["status"] == "answered" {
            break;
        }
        assert_store_unavailable(&court, &after);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(meaning(&after), meaning(&before));
    running.stop().await;
    court_audit_registers_store_failures(&fed, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_sqlite_file_is_truncated_answers_unavailable_then_serves_once_restored() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path(), 300, 15);
    let running = Running::start(&fed, None).await.unwrap();
    let (court, before) = court_on_blacklist_check(&fed).await;
    assert_eq!(court["status"], "answered", "{before}");

    // The file is cut to nothing under the running node (a failed restore, a full disk
    // during a copy, an operator's mistake). The node's connection stays open on it; its
    // next read transaction finds the file shorter than its header says.
    let store = fed.layout.store("court");
    let saved = std::fs::read(&store).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&store)
        .unwrap()
        .set_len(0)
        .unwrap();
    for _ in 0..3 {
        let (court, answer) = court_on_blacklist_check(&fed).await;
        assert_store_unavailable(&court, &answer);
    }

    // Restored in place: the same node serves again without a restart.
    std::fs::write(&store, &saved).unwrap();
    let (court, after) = court_on_blacklist_check(&fed).await;
    assert_eq!(court["status"], "answered", "{after}");
    assert_eq!(meaning(&after), meaning(&before));
    running.stop().await;
    court_audit_registers_store_failures(&fed, 3);
}

/// A small tmpfs of the test's own, unmounted when dropped.
struct SmallDisk {
    dir: std::path::PathBuf,
}

impl SmallDisk {
    /// Mounts a 4 MiB tmpfs at `dir`; `None` (with the reason) where mounting is not
    /// allowed (not root, no CAP_SYS_ADMIN).
    fn mount(dir: &std::path::Path) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let out = support::process::output_within(
            std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", "size=4m", "fedq-audit-test"])
                .arg(dir),
            Duration::from_secs(30),
        );
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    /// Fills what is left of the disk; returns the filler file.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let filler = self.dir.join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        loop {
            match f.write(&chunk) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let _ = f.sync_all();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Bounded like every other wait: a lazy unmount returns at once, or is given up.
        if let Ok(mut child) = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .spawn()
        {
            let give_up = std::time::Instant::now() + Duration::from_secs(30);
            while matches!(child.try_wait(), Ok(None)) && std::time::Instant::now() < give_up {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_audit_disk_is_full_releases_nothing_then_serves_once_space_returns() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path(), 300, 16);
    // The court's audit log on a disk of its own that the test can fill.
    let disk = match SmallDisk::mount(&fed.layout.root.join("audit-disk")) {
        Ok(d) => d,
        Err(why) => {
            report(&format!(
                "SKIPPED a_node_whose_audit_disk_is_full_releases_nothing_then_serves_once_space_returns: cannot mount a tmpfs here ({why})"
            ));
            return;
        }
    };
    let config = fed.layout.node_config("court");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace(
            "audit = \"../audit/court-audit.db\"",
            "audit = \"../audit-disk/court-audit.db\"",
        ),
    )
    .unwrap();
    let audit = disk.dir.join("court-audit.db");
    let running = Running::start(&fed, None).await.unwrap();
    let (court, before) = court_on_blacklist_check(&fed).await;
    assert_eq!(court["status"], "answered", "{before}");
    assert!(
        audit.exists(),
        "the court's audit log is not on the small disk"
    );

    // The disk fills up (another log, a runaway file): the court cannot make its answers
    // durable, so it releases none of them — the court's listing is not in the answer.
    let filler = disk.fill();
    let listed = before["view_result"]["listings"].to_string();
    for _ in 0..3 {
        let (court, answer) = court_on_blacklist_check(&fed).await;
        assert_eq!(court["status"], "unavailable", "{answer}");
        assert!(
            court["reason"]
                .as_str()
                .unwrap()
                // The lookup's answer withheld, or (on a new connection) its session not
                // opened: either way the audit log is the reason and nothing is released.
                .contains("audit log is unavailable"),
            "{answer}"
        );
        assert_eq!(answer["complete"], false, "{answer}");
        assert_ne!(
            answer["view_result"]["listings"].to_string(),
            listed,
            "{answer}"
        );
    }

    // Space comes back: the same node answers as before, without a restart.
    std::fs::remove_file(filler).unwrap();
    let (court, after) = court_on_blacklist_check(&fed).await;
    assert_eq!(court["status"], "answered", "{after}");
    assert_eq!(meaning(&after), meaning(&before));
    running.stop().await;

    // Exactly the two released answers are in the court's log, and the chain is intact.
    let verified = fedq_audit::verify(&audit).unwrap();
    assert_eq!(verified.first_break, None, "{verified:?}");
    // The two released answers (each connection's session entries beside them).
    let answers = fedq_audit::list(&audit, &fedq_audit::ListFilter::default())
        .unwrap()
        .into_iter()
        .filter(|e| e.record.kind == fedq_audit::EntryKind::Answer)
        .count();
    assert_eq!(answers, 2, "{verified:?}");
    drop(disk);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_whose_audit_disk_is_full_withholds_every_answer_then_serves_again() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path(), 300, 17);
    let disk = match SmallDisk::mount(&fed.layout.root.join("audit-disk")) {
        Ok(d) => d,
        Err(why) => {
            report(&format!(
                "SKIPPED a_coordinator_whose_audit_disk_is_full_withholds_every_answer_then_serves_again: cannot mount a tmpfs here ({why})"
            ));
            return;
        }
    };
    let config = fed.layout.coordinator_config();
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace(
            "audit = \"../audit/coordinator-audit.db\"",
            "audit = \"../audit-disk/coordinator-audit.db\"",
        ),
    )
    .unwrap();
    let audit = disk.dir.join("coordinator-audit.db");
    let running = Running::start(&fed, None).await.unwrap();
    let q = blacklist(&fed.scenario.blacklisted.resident_id);
    let (status, before) = ask_licensing(&fed, &q).await;
    assert_eq!(status, 200, "{before}");
    assert!(
        audit.exists(),
        "the coordinator's audit log is not on the small disk"
    );

    let filler = disk.fill();
    for _ in 0..3 {
        let (status, answer) = ask_licensing(&fed, &q).await;
        assert_eq!(status, 503, "{answer}");
        assert!(
            answer["detail"]
                .as_str()
                .unwrap()
                .contains("audit log is unavailable; the answer was withheld"),
            "{answer}"
        );
        assert!(answer.get("view_result").is_none(), "{answer}");
    }

    std::fs::remove_file(filler).unwrap();
    let (status, after) = ask_licensing(&fed, &q).await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(meaning(&after), meaning(&before));
    running.stop().await;
    let verified = fedq_audit::verify(&audit).unwrap();
    assert_eq!(verified.first_break, None, "{verified:?}");
    // The two answered queries (each connection's session entries beside them).
    let queries = fedq_audit::list(&audit, &fedq_audit::ListFilter::default())
        .unwrap()
        .into_iter()
        .filter(|e| e.record.kind == fedq_audit::EntryKind::Query)
        .count();
    assert_eq!(queries, 2, "{verified:?}");
    drop(disk);
}

/// Waits (at most 60 s) until `n` sessions wait on the court's locked `records` table: the
/// lookups are held at the court.
async fn wait_for_held_lookups(url: &str, n: i64) {
    let give_up = Instant::now() + Duration::from_secs(60);
    loop {
        let url2 = url.to_owned();
        let waiting = tokio::task::spawn_blocking(move || pg::waiting_on(&url2, "records"))
            .await
            .unwrap();
        if waiting >= n {
            return;
        }
        assert!(
            Instant::now() < give_up,
            "only {waiting} of {n} lookups reached the court's store"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `n` blacklist checks, each on a connection of its own, spawned once every connection
/// holds its sessions: the checks then reach the nodes together, not one session set-up
/// after another (which on a busy host can outlast the coordinator's deadline).
async fn spawn_checks(
    fed: &Arc<Federation>,
    n: usize,
) -> Vec<tokio::task::JoinHandle<(u16, Value)>> {
    let mut conns = Vec::new();
    for _ in 0..n {
        let mut conn = connect_as(fed, "market-regulation.licensing")
            .await
            .unwrap();
        conn.open_sessions().await.unwrap();
        conns.push(conn);
    }
    conns
        .into_iter()
        .map(|mut conn| {
            let q = blacklist(&fed.scenario.blacklisted.resident_id);
            tokio::spawn(async move { conn.query(&q).await.unwrap() })
        })
        .collect()
}

/// The answers of held checks, each within 60 s.
async fn answers_of(held: Vec<tokio::task::JoinHandle<(u16, Value)>>) -> Vec<(u16, Value)> {
    let mut out = Vec::new();
    for h in held {
        out.push(
            tokio::time::timeout(Duration::from_secs(60), h)
                .await
                .expect("a held query was not answered within 60 s of its release")
                .unwrap(),
        );
    }
    out
}

/// How long a node and the coordinator let in-flight work finish after SIGTERM.
const GRACE: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_given_sigterm_finishes_its_lookups_in_flight_refuses_new_ones_and_exits_0() {
    let db = pg::database("drain_node");
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path(), 300, 18);
    court_on_postgres(&fed, &db.url);
    // Longer than the lookups are held below, shorter than the grace period.
    set_deadline_ms(&fed, 8000);
    let fed = Arc::new(fed);
    let mut running = Running::start(&fed, None).await.unwrap();
    running.stop_node("court").await;
    let mut court =
        tokio::task::block_in_place(|| FedqProcess::node(&fed.layout.node_config("court"), None));
    let (court_before, reference) = court_on_blacklist_check(&fed).await;
    assert_eq!(court_before["status"], "answered", "{reference}");

    // The court's store is locked: four lookups reach it and wait there.
    let lock = tokio::task::block_in_place(|| pg::TableLock::take(&db.url, "records"));
    let mut held = spawn_checks(&fed, 4).await;
    wait_for_held_lookups(&db.url, 4).await;
    assert!(held.iter().all(|h| !h.is_finished()));

    let sigterm = Instant::now();
    court.signal("TERM");
    // A new lookup is refused at once while the court drains. A probe that reached the
    // court before it took the signal is held like the others (it is in flight too).
    let mut refused = None;
    for _ in 0..10 {
        // A fresh connection whose sessions are opened inside the probe, as `fedq query`
        // would: the draining court refuses the session too.
        let probe_fed = Arc::clone(&fed);
        let mut probe = tokio::spawn(async move {
            let q = blacklist(&probe_fed.scenario.blacklisted.resident_id);
            ask_licensing(&probe_fed, &q).await
        });
        match tokio::time::timeout(Duration::from_secs(1), &mut probe).await {
            Ok(answer) => {
                refused = Some(answer.unwrap());
                break;
            }
            Err(_) => held.push(probe),
        }
    }
    let (status, answer) = refused.expect("no new lookup was refused while the court drained");
    assert_eq!(status, 200, "{answer}");
    let court_report = node_report(&answer, "court");
    assert_eq!(court_report["status"], "unavailable", "{answer}");
    // A new connection opens its sessions first; the draining court refuses that too, and
    // the requester is told why it could not be asked.
    assert!(
        court_report["reason"]
            .as_str()
            .unwrap()
            .contains("node `court` unavailable: it is shutting down"),
        "{answer}"
    );
    assert_eq!(answer["complete"], false, "{answer}");
    assert!(
        court.wait_within(Duration::ZERO).is_none(),
        "the court exited instead of draining"
    );
    // The draining court refuses the coordinator's heartbeats too, so the coordinator
    // marks it down while the lookups are still held; they must survive that (the pooled
    // connection is forgotten, not closed under them).
    let give_up = Instant::now() + Duration::from_secs(20);
    while support::node_up(&support::coordinator_metrics(&fed).await, "court") != Some(0.0) {
        assert!(
            Instant::now() < give_up,
            "the coordinator never marked the draining court down"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The store answers again: every lookup in flight at the SIGTERM is answered in full.
    tokio::task::block_in_place(|| lock.release());
    let answers = answers_of(held).await;
    for (status, a) in &answers {
        assert_eq!(*status, 200, "{a}");
        assert_eq!(meaning(a), meaning(&reference));
    }
    let left = GRACE.saturating_sub(sigterm.elapsed());
    let exit = tokio::task::block_in_place(|| court.wait_within(left))
        .expect("the court did not exit within its grace period");
    assert!(exit.success(), "the court exited with {exit}");
    running.stop().await;

    // The court registered every answer it drained, and nothing for the refused probe.
    // (Each under the court's own id of the query, which the coordinator's entry maps.)
    let ids = audit_query_ids(&fed.layout.root.join("audit/court-audit.db"));
    let mapped = node_query_ids(&fed.layout.root.join("audit/coordinator-audit.db"));
    let court_id = |a: &Value| {
        mapped
            .get(a["query_id"].as_str().unwrap())
            .and_then(|nodes| nodes.get("court"))
            .cloned()
    };
    for (_, a) in &answers {
        assert_eq!(ids.get(&court_id(a).unwrap()), Some(&1), "{a}");
    }
    // The refused probe was not sent to the court (it could open no session with it), or
    // was refused there: either way no entry of it.
    assert!(court_id(&answer).is_none_or(|id| !ids.contains_key(&id)));
    audit_verifies(&fed.layout.node_config("court"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_coordinator_given_sigterm_answers_its_queries_in_flight_refuses_new_connections_and_exits_0(
) {
    let db = pg::database("drain_coordinator");
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path(), 300, 19);
    court_on_postgres(&fed, &db.url);
    set_deadline_ms(&fed, 8000);
    let fed = Arc::new(fed);
    let mut nodes = Vec::new();
    for name in fed.nodes.keys() {
        nodes.push(fedq_sandbox::start_node(&fed, name, None).await.unwrap());
    }
    let coordinator_config = fed.layout.coordinator_config();
    let mut coordinator =
        tokio::task::block_in_place(|| FedqProcess::coordinator(&coordinator_config, None));
    let (court_before, reference) = court_on_blacklist_check(&fed).await;
    assert_eq!(court_before["status"], "answered", "{reference}");

    // Four queries held at the court's locked store: in flight at the coordinator.
    let lock = tokio::task::block_in_place(|| pg::TableLock::take(&db.url, "records"));
    let held = spawn_checks(&fed, 4).await;
    wait_for_held_lookups(&db.url, 4).await;
    assert!(held.iter().all(|h| !h.is_finished()));

    let sigterm = Instant::now();
    coordinator.signal("TERM");
    // New connections are refused while it drains (one made before it took the signal
    // is simply dropped).
    let give_up = Instant::now() + GRACE;
    let refusal = loop {
        match connect_as(&fed, "market-regulation.licensing")
            .await
            .map_err(|e| e.to_string())
        {
            Err(e) if e.contains("Connection refused") => break e,
            // Reset: it was still queued at the listening socket as the port closed.
            Err(e) if e.contains("Connection reset") => {}
            // Accepted just before the signal and dropped mid-handshake as the drain began.
            Err(e) if e.contains("tls handshake eof") => {}
            Err(e) => break e,
            Ok(conn) => drop(conn),
        }
        assert!(Instant::now() < give_up, "new connections still accepted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(refusal.contains("Connection refused"), "{refusal}");
    assert!(
        coordinator.wait_within(Duration::ZERO).is_none(),
        "the coordinator exited instead of draining"
    );

    tokio::task::block_in_place(|| lock.release());
    let answers = answers_of(held).await;
    for (status, a) in &answers {
        assert_eq!(*status, 200, "{a}");
        assert_eq!(meaning(a), meaning(&reference));
    }
    let left = GRACE.saturating_sub(sigterm.elapsed());
    let exit = tokio::task::block_in_place(|| coordinator.wait_within(left))
        .expect("the coordinator did not exit within its grace period");
    assert!(exit.success(), "the coordinator exited with {exit}");
    for (stop, task) in nodes {
        let _ = stop.send(());
        tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("a node did not stop within 60 s")
            .unwrap();
    }
    // Each drained answer has its one coordinator entry.
    let ids = audit_query_ids(&fed.layout.root.join("audit/coordinator-audit.db"));
    for (_, a) in &answers {
        assert_eq!(ids.get(a["query_id"].as_str().unwrap()), Some(&1), "{a}");
    }
    audit_verifies(&coordinator_config);
}
