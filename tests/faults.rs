//! Faults with real processes: a node killed with SIGKILL under load and restarted, and an
//! import killed at random points. Bounded in count and time; loopback only.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fedq_coordinator::client::ApiConnection;
use fedq_coordinator::query::QueryRequest;
use fedq_demo::{build, BuildOptions, Federation, Running, LICENSING_BASIS};

/// A node process that is killed when the test ends, even by a failed assertion.
struct NodeProcess(Child);

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_node(fed: &Federation, name: &str) -> NodeProcess {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fedq"))
        .args([
            "node",
            "serve",
            "--config",
            fed.layout.node_config(name).to_str().unwrap(),
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("node serving") {
                let _ = tx.send(());
            }
        }
    });
    let started = rx.recv_timeout(Duration::from_secs(30));
    let process = NodeProcess(child);
    started.expect("node started");
    process
}

fn blacklist(subject: &str) -> QueryRequest {
    QueryRequest {
        subject: subject.to_owned(),
        purpose: "administrative-licensing".into(),
        legal_basis: Some(LICENSING_BASIS.into()),
        consent: None,
        view: Some("blacklist-check".into()),
        datasets: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_under_load_is_reported_then_reconnected_and_loses_no_audit_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = build(tmp.path(), &BuildOptions::for_tests(300, 11)).unwrap();
    fed.lift_rate_limits().unwrap();
    let mut running = Running::start(&fed, None).await.unwrap();
    // The court runs as its own process, so it can be killed for real.
    running.stop_node("court").await;
    let mut court = spawn_node(&fed, "court");
    let pki = fed.layout.pki();
    let url = format!("https://{}", fed.coordinator);
    let subject = fed.scenario.blacklisted.resident_id.clone();

    let mut answered_by_court = BTreeSet::new();
    let mut statuses = Vec::new();
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
    let started = Instant::now();
    for round in 0..40 {
        if round == 15 {
            // SIGKILL: no goodbye to the coordinator, in-flight requests cut.
            court.0.kill().unwrap();
            court.0.wait().unwrap();
        }
        if round == 20 {
            court = spawn_node(&fed, "court");
        }
        let mut tasks = Vec::new();
        for mut conn in conns.drain(..) {
            let q = blacklist(&subject);
            tasks.push(tokio::spawn(async move {
                let r = conn.query(&q).await;
                (conn, r)
            }));
        }
        for t in tasks {
            let (conn, r) = t.await.unwrap();
            conns.push(conn);
            let (status, answer) = r.unwrap();
            assert_eq!(status, 200, "{answer}");
            let court_status = answer["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|n| n["node"] == "court")
                .unwrap()["status"]
                .as_str()
                .unwrap()
                .to_owned();
            if court_status == "ok" || court_status == "no_record" {
                answered_by_court.insert(answer["query_id"].as_str().unwrap().to_owned());
            }
            statuses.push((round, court_status));
        }
    }
    assert!(started.elapsed() < Duration::from_secs(120));
    // Before the kill: answered. While down: reported, never silently omitted. After the
    // restart: answered again over a new connection.
    assert!(statuses
        .iter()
        .filter(|(r, _)| *r < 15)
        .all(|(_, s)| s == "ok"));
    assert!(statuses
        .iter()
        .filter(|(r, _)| (16..20).contains(r))
        .all(|(_, s)| s == "unavailable" || s == "timed_out"));
    assert!(
        statuses
            .iter()
            .filter(|(r, _)| *r >= 24)
            .all(|(_, s)| s == "ok"),
        "{statuses:?}"
    );

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
    let missing: Vec<_> = answered_by_court.difference(&logged).collect();
    assert!(
        missing.is_empty(),
        "answers without an audit entry: {missing:?}"
    );
    assert!(answered_by_court.len() >= 100);
}

#[test]
fn an_import_killed_at_random_points_leaves_the_store_before_or_after() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = build(tmp.path(), &BuildOptions::for_tests(200, 12)).unwrap();
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
        let mut child = Command::new(env!("CARGO_BIN_EXE_fedq"))
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
        let _ = child.wait();
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
