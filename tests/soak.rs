//! Load through the coordinator: many queries at high concurrency over kept-alive HTTPS
//! connections, the coordinator and all seven nodes as their own processes on loopback.
//! Zero errors (every answer a 200 equal to the reference answer of its question), memory
//! bounded (resident set of every process after the first quarter vs. at the end), and
//! the latency percentiles printed.
//!
//! CI runs 3,000 queries at concurrency 256. The full run of docs/reliability.md:
//! `FEDQ_SOAK_QUERIES=100000 FEDQ_SOAK_DEADLINE_MS=2000 cargo test --release --test soak -- --nocapture`.
//! `FEDQ_SOAK_CONCURRENCY` sets the concurrency. The coordinator's deadline is 10 s by
//! default here (`FEDQ_SOAK_DEADLINE_MS`), so that a debug build on a shared CI machine
//! counts its slowness as latency, not as errors; the full run keeps the production 2 s.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fedq_coordinator::client::ApiConnection;
use fedq_coordinator::query::QueryRequest;
use fedq_sandbox::{LICENSING_BASIS, LICENSING_CASE};
use fedq_testkit::federation;
use support::process::{start_nodes, FedqProcess};
use support::{meaning, report};

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}=`{v}` is not a number")),
        Err(_) => default,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    errors: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_at_high_concurrency_all_answer_with_bounded_memory() {
    let total = env_number("FEDQ_SOAK_QUERIES", 3_000);
    let concurrency = env_number("FEDQ_SOAK_CONCURRENCY", 256);
    let deadline_ms = env_number("FEDQ_SOAK_DEADLINE_MS", 10_000);
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path(), 2_000, 21);
    // A load generator is not a licensing office: no rate limit.
    fed.lift_rate_limits().unwrap();
    let config = fed.layout.coordinator_config();
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("deadline_ms = 2000"));
    std::fs::write(
        &config,
        text.replace(
            "deadline_ms = 2000",
            &format!("deadline_ms = {deadline_ms}"),
        ),
    )
    .unwrap();
    let nodes = start_nodes(&fed, None);
    let coordinator = FedqProcess::coordinator(&config, None);

    let pki = fed.layout.pki();
    let url = format!("https://{}", fed.coordinator);
    let (cert, key, ca) = (
        pki.join("market-regulation.licensing.crt"),
        pki.join("market-regulation.licensing.key"),
        pki.join("ca.crt"),
    );
    let connect = || ApiConnection::connect(&url, &cert, &key, &ca);

    // Ten questions, each with its reference answer asked before the load.
    let mut asks = Vec::new();
    let mut first = connect().await.unwrap();
    for (_, person) in fed.scenario.roles() {
        for view in ["blacklist-check", "green-channel"] {
            let q = QueryRequest {
                subject: person.resident_id.clone(),
                purpose: "administrative-licensing".into(),
                legal_basis: Some(LICENSING_BASIS.into()),
                consent: None,
                case_reference: Some(LICENSING_CASE.into()),
                view: Some(view.into()),
                datasets: None,
                ..QueryRequest::default()
            };
            let (status, answer) = first.query(&q).await.unwrap();
            assert_eq!(status, 200, "{answer}");
            assert_eq!(answer["complete"], true, "{answer}");
            asks.push((q, meaning(&answer)));
        }
    }
    drop(first);
    let asks = Arc::new(asks);

    let mut conns = Vec::new();
    for _ in 0..concurrency {
        conns.push(connect().await.unwrap());
    }
    let next = Arc::new(AtomicUsize::new(0));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let total_usize = usize::try_from(total).unwrap();
    let quarter = total_usize / 4;
    let (at_quarter, quarter_reached) = tokio::sync::oneshot::channel::<()>();
    let at_quarter = Arc::new(Mutex::new(Some(at_quarter)));
    let started = Instant::now();
    let workers: Vec<_> = conns
        .into_iter()
        .map(|mut conn| {
            let (asks, next, tally, at_quarter) = (
                Arc::clone(&asks),
                Arc::clone(&next),
                Arc::clone(&tally),
                Arc::clone(&at_quarter),
            );
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total_usize {
                        return;
                    }
                    if i == quarter {
                        if let Some(tx) = at_quarter.lock().unwrap().take() {
                            let _ = tx.send(());
                        }
                    }
                    let (q, expected) = &asks[i % asks.len()];
                    let t = Instant::now();
                    let result = conn.query(q).await;
                    let took = t.elapsed();
                    let mut tally = tally.lock().unwrap();
                    tally.latencies.push(took);
                    match result {
                        Ok((200, answer)) if meaning(&answer) == *expected => {}
                        Ok((status, answer)) => tally.errors.push(format!("{status}: {answer}")),
                        Err(e) => {
                            tally.errors.push(e.to_string());
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    // A generous bound on the whole load (20 ms a query at concurrency 1, debug build), so
    // a hang fails the test rather than stalling it.
    let give_up = tokio::time::Instant::now()
        + Duration::from_secs(60)
        + Duration::from_millis(20) * u32::try_from(total).unwrap();
    // Resident sets once the load is under way (connections, pools and caches warm).
    tokio::time::timeout_at(give_up, quarter_reached)
        .await
        .expect("the load did not reach a quarter in time")
        .unwrap();
    let rss_at_quarter: Vec<u64> = std::iter::once(&coordinator)
        .chain(nodes.iter())
        .map(FedqProcess::rss_kib)
        .collect();
    for w in workers {
        tokio::time::timeout_at(give_up, w)
            .await
            .expect("the load did not finish in time")
            .unwrap();
    }
    let elapsed = started.elapsed();
    let rss_at_end: Vec<u64> = std::iter::once(&coordinator)
        .chain(nodes.iter())
        .map(FedqProcess::rss_kib)
        .collect();
    let peak: Vec<u64> = std::iter::once(&coordinator)
        .chain(nodes.iter())
        .map(FedqProcess::peak_rss_kib)
        .collect();

    let tally = Arc::try_unwrap(tally).ok().unwrap().into_inner().unwrap();
    let mut latencies = tally.latencies;
    latencies.sort();
    let node_peak = peak[1..].iter().copied().max().unwrap();
    report(&format!(
        "soak: {} queries at concurrency {concurrency} in {:.1} s ({:.0}/s), deadline {deadline_ms} ms: {} errors; \
         latency p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms; \
         peak RSS coordinator {:.1} MiB, largest node {:.1} MiB; RSS at 1/4 → end: coordinator {:.1} → {:.1} MiB",
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        tally.errors.len(),
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.90).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3,
        mib(peak[0]),
        mib(node_peak),
        mib(rss_at_quarter[0]),
        mib(rss_at_end[0]),
    ));
    assert!(
        tally.errors.is_empty(),
        "{} errors, first: {}",
        tally.errors.len(),
        tally.errors[0]
    );
    assert_eq!(latencies.len(), total_usize);
    // Memory bounded: from a quarter of the load to its end, no process's resident set
    // grew by more than 64 MiB (a per-query leak of 1 KiB over 100,000 queries would).
    for (i, (q, e)) in rss_at_quarter.iter().zip(&rss_at_end).enumerate() {
        assert!(
            e.saturating_sub(*q) < 64 * 1024,
            "process {i} grew from {:.1} to {:.1} MiB",
            mib(*q),
            mib(*e)
        );
    }
    drop(coordinator);
    drop(nodes);
}
