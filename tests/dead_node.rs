//! A dead department costs one detection, not every query: the court runs as its own
//! `fedq node serve` process and is killed with SIGKILL under load (4 clients, a 1.5 s
//! coordinator deadline). Once the coordinator has seen it go unanswered, every query
//! returns in normal time — measured against the median before the kill, in the same run
//! — with the court `unavailable`; the court is restarted and is `ok` again within 2 s.
//! The ops listener's metrics follow it down and up. Killed again while idle, it is
//! marked down by the heartbeat before any query asks. Loopback only, bounded in rounds
//! and time.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::time::{Duration, Instant};

use fedq_coordinator::client::ApiConnection;
use fedq_coordinator::query::QueryRequest;
use fedq_sandbox::{Running, LICENSING_BASIS, LICENSING_CASE};
use fedq_testkit::federation;
use support::process::FedqProcess;
use support::report;

const DEADLINE: Duration = Duration::from_millis(1500);
const CLIENTS: usize = 4;

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

/// One query's outcome as the test needs it.
#[derive(Debug)]
struct Asked {
    took: Duration,
    court: String,
    court_reason: String,
    others_ok: bool,
}

/// One round: every client asks once, concurrently.
async fn round(conns: &mut Vec<ApiConnection>, subject: &str) -> Vec<Asked> {
    let mut tasks = Vec::new();
    for mut conn in conns.drain(..) {
        let q = blacklist(subject);
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            let r = tokio::time::timeout(Duration::from_secs(20), conn.query(&q))
                .await
                .expect("no answer within 20 s");
            (conn, started.elapsed(), r)
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        let (conn, took, r) = tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .expect("a query task did not end within 60 s")
            .unwrap();
        conns.push(conn);
        let (status, answer) = r.unwrap();
        assert_eq!(status, 200, "{answer}");
        let nodes = answer["nodes"].as_array().unwrap();
        let court = nodes.iter().find(|n| n["node"] == "court").unwrap();
        out.push(Asked {
            took,
            court: court["status"].as_str().unwrap().to_owned(),
            court_reason: court["reason"].as_str().unwrap_or_default().to_owned(),
            others_ok: nodes
                .iter()
                .filter(|n| n["node"] != "court")
                .all(|n| n["status"] == "answered"),
        });
    }
    out
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_costs_one_detection_then_comes_back_within_two_seconds() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path(), 200, 13);
    fed.lift_rate_limits().unwrap();
    let config = fed.layout.coordinator_config();
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("deadline_ms = 2000"), "{text}");
    std::fs::write(
        &config,
        text.replace("deadline_ms = 2000", "deadline_ms = 1500"),
    )
    .unwrap();
    let mut running = Running::start(&fed, None).await.unwrap();
    running.stop_node("court").await;
    let mut court = FedqProcess::node(&fed.layout.node_config("court"), None);
    let pki = fed.layout.pki();
    let url = format!("https://{}", fed.coordinator);
    let subject = fed.scenario.blacklisted.resident_id.clone();
    let mut conns = Vec::new();
    for _ in 0..CLIENTS {
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

    // Before: the court answers; this run's normal latency.
    let mut before = Vec::new();
    for _ in 0..10 {
        for a in round(&mut conns, &subject).await {
            assert_eq!(a.court, "answered", "{a:?}");
            before.push(a.took);
        }
    }
    let normal = median(before);
    assert_eq!(
        support::node_up(&support::coordinator_metrics(&fed).await, "court"),
        Some(1.0)
    );

    // SIGKILL: no goodbye; the coordinator's pooled connection to it goes silent.
    court.kill();
    let mut detection_rounds = 0;
    loop {
        let asked = round(&mut conns, &subject).await;
        detection_rounds += 1;
        for a in &asked {
            assert!(a.court == "unavailable" || a.court == "timed_out", "{a:?}");
            assert!(a.others_ok, "{a:?}");
        }
        if asked
            .iter()
            .all(|a| a.court_reason.contains("not asked: marked down"))
        {
            break;
        }
        assert!(
            detection_rounds <= 3,
            "the court was not marked down after {detection_rounds} rounds: {asked:?}"
        );
    }
    assert_eq!(
        support::node_up(&support::coordinator_metrics(&fed).await, "court"),
        Some(0.0)
    );

    // While it is down: every query in normal time, the court `unavailable` at once.
    let mut after = Vec::new();
    for _ in 0..15 {
        for a in round(&mut conns, &subject).await {
            assert_eq!(a.court, "unavailable", "{a:?}");
            assert!(a.court_reason.contains("not asked: marked down"), "{a:?}");
            assert!(a.others_ok, "{a:?}");
            assert!(
                a.took < DEADLINE / 2,
                "a query took {:?} with the court known down (deadline {DEADLINE:?})",
                a.took
            );
            after.push(a.took);
        }
    }
    let while_down = median(after);
    report(&format!(
        "dead_node: median {normal:?} before the kill, {while_down:?} while the court is down \
         ({detection_rounds} round(s) of {CLIENTS} queries to detect it)"
    ));
    assert!(
        while_down <= normal * 5 + Duration::from_millis(25),
        "median {while_down:?} while the court is down, against {normal:?} before"
    );

    // Back: within 2 s of serving again, the court answers.
    court = FedqProcess::node(&fed.layout.node_config("court"), None);
    let back_at = Instant::now();
    let came_back = loop {
        let asked = round(&mut conns, &subject).await;
        if asked.iter().all(|a| a.court == "answered") {
            break back_at.elapsed();
        }
        assert!(
            back_at.elapsed() < Duration::from_secs(2),
            "the court is not ok 2 s after it serves again: {asked:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    report(&format!(
        "dead_node: the court was ok again {came_back:?} after it served"
    ));
    let metrics = support::coordinator_metrics(&fed).await;
    assert_eq!(support::node_up(&metrics, "court"), Some(1.0));
    // Registered at zero from start: a probe that answered makes it count.
    let probes: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("fedq_node_probe_seconds_count{node=\"court\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_default();
    assert!(probes > 0.0, "{metrics}");
    assert!(
        metrics.contains("fedq_node_marked_down_total{node=\"court\"} 1"),
        "{metrics}"
    );
    for _ in 0..3 {
        for a in round(&mut conns, &subject).await {
            assert_eq!(a.court, "answered", "{a:?}");
        }
    }

    // Killed while nobody asks: the heartbeat sees it, so not even one query pays.
    court.kill();
    let killed_at = Instant::now();
    while support::node_up(&support::coordinator_metrics(&fed).await, "court") != Some(0.0) {
        assert!(
            killed_at.elapsed() < Duration::from_secs(15),
            "an idle dead node was not marked down within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    report(&format!(
        "dead_node: an idle court was marked down by its heartbeat {:?} after the kill",
        killed_at.elapsed()
    ));
    for a in round(&mut conns, &subject).await {
        assert_eq!(a.court, "unavailable", "{a:?}");
        assert!(a.court_reason.contains("not asked: marked down"), "{a:?}");
        assert!(a.took < DEADLINE / 2, "{a:?}");
    }
    running.stop().await;
}
