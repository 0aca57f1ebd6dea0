//! A slow, lossy, reordering link between the coordinator and every node, made by the
//! test itself so it runs on every machine (no `tc netem`, no root): QUIC runs over UDP,
//! so a relay task per node on 127.0.0.1 forwards datagrams both ways with seeded loss,
//! delay and jitter (jitter larger than the gap between datagrams reorders them). The
//! coordinator's config points at the relays; the nodes listen where they always do.
//!
//! Checked: every node report is the reference answer's or `timed_out`/`unavailable` with
//! the coordinator's deadline as its reason; most answers are complete; each took at
//! least the link's round trip (the relay is in the path) and, with one node's link cut,
//! at least the deadline and not much more (the deadline holds). Loopback only, bounded.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fedq_sandbox::{ask, licensing, Federation, Running};
use fedq_testkit::federation;
use serde_json::Value;
use support::{meaning, report};
use tokio::net::UdpSocket;

/// One direction's impairment.
#[derive(Clone, Copy, Debug)]
struct Link {
    /// Probability that a datagram is dropped.
    loss: f64,
    /// Fixed one-way delay.
    delay: Duration,
    /// Extra delay, uniform in `0..jitter`; reorders datagrams closer than it.
    jitter: Duration,
}

/// What a relay did, for the report and to prove it impaired the link.
#[derive(Default)]
struct Stats {
    forwarded: AtomicU64,
    dropped: AtomicU64,
    /// Datagrams delivered after one that arrived later in the same direction.
    reordered: AtomicU64,
}

/// A UDP relay on 127.0.0.1 in front of one node.
struct Relay {
    /// Where the coordinator sends to.
    addr: SocketAddr,
    /// While set, every datagram in both directions is dropped.
    cut: Arc<AtomicBool>,
    stats: Arc<Stats>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// xorshift64*: small, seeded, the same decisions on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Per-direction sequence numbers: the next to assign and the highest delivered.
#[derive(Default)]
struct Order {
    next: AtomicU64,
    delivered: AtomicU64,
}

impl Relay {
    /// Forwards between the coordinator and `node`; impairs the link while `impaired`.
    async fn start(node: SocketAddr, link: Link, seed: u64, impaired: Arc<AtomicBool>) -> Self {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let back = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        back.connect(node).await.unwrap();
        let addr = front.local_addr().unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Stats::default());
        let task = {
            let (cut, stats) = (Arc::clone(&cut), Arc::clone(&stats));
            tokio::spawn(async move {
                let mut rng = Rng(seed | 1);
                let coordinator: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
                let (up, down) = (Arc::new(Order::default()), Arc::new(Order::default()));
                let mut a = vec![0u8; 65_536];
                let mut b = vec![0u8; 65_536];
                loop {
                    // Which way, and the datagram.
                    let (to_node, datagram) = tokio::select! {
                        r = front.recv_from(&mut a) => {
                            let Ok((n, from)) = r else { continue };
                            *coordinator.lock().unwrap() = Some(from);
                            (true, a[..n].to_vec())
                        }
                        r = back.recv(&mut b) => {
                            let Ok(n) = r else { continue };
                            (false, b[..n].to_vec())
                        }
                    };
                    let impair = impaired.load(Ordering::Relaxed);
                    if cut.load(Ordering::Relaxed) || (impair && rng.unit() < link.loss) {
                        stats.dropped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    let jitter = if impair {
                        link.jitter.mul_f64(rng.unit())
                    } else {
                        Duration::ZERO
                    };
                    let order = Arc::clone(if to_node { &up } else { &down });
                    let seq = order.next.fetch_add(1, Ordering::Relaxed) + 1;
                    let (front, back, stats) =
                        (Arc::clone(&front), Arc::clone(&back), Arc::clone(&stats));
                    let coordinator = *coordinator.lock().unwrap();
                    tokio::spawn(async move {
                        tokio::time::sleep(link.delay + jitter).await;
                        let sent = if to_node {
                            back.send(&datagram).await
                        } else if let Some(c) = coordinator {
                            front.send_to(&datagram, c).await
                        } else {
                            return;
                        };
                        if sent.is_ok() {
                            stats.forwarded.fetch_add(1, Ordering::Relaxed);
                            if order.delivered.fetch_max(seq, Ordering::Relaxed) > seq {
                                stats.reordered.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    });
                }
            })
        };
        Self {
            addr,
            cut,
            stats,
            task,
        }
    }
}

/// Points the coordinator's config at the relays instead of the nodes.
fn route_through(fed: &Federation, relays: &BTreeMap<String, Relay>) {
    let path = fed.layout.coordinator_config();
    let mut text = std::fs::read_to_string(&path).unwrap();
    for (name, node) in &fed.nodes {
        let line = format!("address = \"{node}\"");
        assert!(
            text.contains(&line),
            "no `{line}` in the coordinator config"
        );
        text = text.replace(&line, &format!("address = \"{}\"", relays[name].addr));
    }
    std::fs::write(&path, text).unwrap();
}

/// The coordinator's deadline for node answers in the demo federation's config.
const DEADLINE: Duration = Duration::from_millis(2000);
/// Room over the deadline for the coordinator's own work, the requester's handshake and
/// the answer's way back on a debug build with busy cores. Still well below what a query
/// without a deadline would take on a cut link (forever).
const SLACK: Duration = Duration::from_secs(3);

/// One blacklist check; the answer and how long it took end to end (at most 60 s).
async fn timed_check(fed: &Federation) -> (Value, Duration) {
    let q = licensing(&fed.scenario.blacklisted.resident_id, "blacklist-check");
    let started = Instant::now();
    let (status, answer) = tokio::time::timeout(Duration::from_secs(60), ask(fed, &q))
        .await
        .expect("no answer within 60 s")
        .unwrap();
    let took = started.elapsed();
    assert_eq!(status, 200, "{answer}");
    (answer, took)
}

fn without_receipt(node: &Value) -> Value {
    let mut node = node.clone();
    if let Some(n) = node.as_object_mut() {
        n.remove("receipt");
        n.remove("answer_sha256");
    }
    node
}

/// Every node report is the reference's, or says the node missed the deadline.
fn assert_reports(answer: &Value, reference: &Value) {
    let expected: BTreeMap<&str, &Value> = reference["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["node"].as_str().unwrap(), n))
        .collect();
    let nodes = answer["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), expected.len(), "{answer}");
    for node in nodes {
        let name = node["node"].as_str().unwrap();
        match node["status"].as_str().unwrap() {
            // The same report, each with its own audit receipt (for that answer's entry).
            "answered" => {
                assert!(node["receipt"].is_object(), "{answer}");
                assert_eq!(
                    without_receipt(node),
                    without_receipt(expected[name]),
                    "{answer}"
                );
            }
            // Connected, no answer in time.
            "timed_out" => assert_eq!(node["reason"], "no answer within 2000 ms", "{answer}"),
            // No handshake in time (the first packets lost), or — after two unanswered
            // requests in a row — marked down and not asked until a probe reaches it.
            "unavailable" => {
                let reason = node["reason"].as_str().unwrap_or_default();
                assert!(
                    reason
                        == format!(
                            "node `{name}` unavailable: no connection could be established within 2000 ms"
                        )
                        || reason.starts_with(&format!(
                            "node `{name}` unavailable: not asked: marked down after "
                        ))
                        // On the connection that was dropped when it was marked down.
                        || reason
                            == format!(
                                "node `{name}` unavailable: the coordinator closed the connection this request was on (the node stopped answering on it)"
                            )
                        // The requester's session with it could not be opened over the
                        // link (the grant or the accept missed the deadline, or the node
                        // was marked down): not asked, and the client says why.
                        || (reason.starts_with(&format!(
                            "node `{name}` unavailable: {}",
                            fedq_coordinator::service::NOT_PROVEN
                        )) && reason.contains("; no session: not reached: ")),
                    "{answer}"
                );
            }
            other => panic!("unexpected status {other}: {answer}"),
        }
    }
    if answer["complete"] == true {
        assert_eq!(meaning(answer), meaning(reference));
    } else {
        assert!(
            nodes
                .iter()
                .any(|n| n["status"] == "timed_out" || n["status"] == "unavailable"),
            "{answer}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_lossy_reordering_link_gives_the_reference_answer_or_a_deadline_status() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path(), 300, 41);
    let link = Link {
        loss: 0.05,
        delay: Duration::from_millis(40),
        jitter: Duration::from_millis(30),
    };
    let impaired = Arc::new(AtomicBool::new(false));
    let mut relays = BTreeMap::new();
    for (i, (name, addr)) in fed.nodes.iter().enumerate() {
        let seed = 0x5eed_0000 + i as u64;
        let relay = Relay::start(*addr, link, seed, Arc::clone(&impaired)).await;
        relays.insert(name.clone(), relay);
    }
    route_through(&fed, &relays);

    // The reference: through the relays, delayed but neither lossy nor reordered yet.
    let running = Running::start(&fed, None).await.unwrap();
    let (reference, _) = timed_check(&fed).await;
    assert_eq!(reference["complete"], true, "{reference}");
    assert_eq!(
        reference["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["node"] == "court")
            .unwrap()["status"],
        "answered",
        "{reference}"
    );

    impaired.store(true, Ordering::Relaxed);
    let rounds = 16;
    let mut complete = 0;
    let mut slowest = Duration::ZERO;
    for _ in 0..rounds {
        let (answer, took) = timed_check(&fed).await;
        assert_reports(&answer, &reference);
        // Every node answer crossed the relay twice: at least two one-way delays.
        assert!(
            took >= link.delay * 2,
            "answered in {took:?}, under the link's round trip"
        );
        assert!(
            took < DEADLINE + SLACK,
            "took {took:?}: the deadline did not hold"
        );
        slowest = slowest.max(took);
        if answer["complete"] == true {
            complete += 1;
        }
    }

    // Cut the court's link on an established connection: the court is timed out by the
    // deadline while the others still answer through their lossy links; after two
    // unanswered requests in a row it is marked down and answered `unavailable` at once.
    relays["court"].cut.store(true, Ordering::Relaxed);
    let mut marked_down = false;
    for round in 0..4 {
        let (answer, took) = timed_check(&fed).await;
        assert_reports(&answer, &reference);
        let court = answer["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["node"] == "court")
            .unwrap();
        assert_eq!(answer["complete"], false, "{answer}");
        assert!(
            took < DEADLINE + SLACK,
            "took {took:?}: the deadline did not hold"
        );
        let down = court["status"] == "unavailable"
            && court["reason"]
                .as_str()
                .is_some_and(|r| r.contains("not asked: marked down"));
        if round == 0 || !down {
            // Asked: nothing comes back, so the deadline decides — either on the lookup,
            // or already on the session grant the requester's new connection sends first
            // (then the court is not asked the query, and the answer says why).
            let session_timed_out = court["status"] == "unavailable"
                && court["reason"].as_str().is_some_and(|r| {
                    r.contains("; no session: not reached: node `court` did not answer within")
                });
            assert!(
                court["status"] == "timed_out" || session_timed_out,
                "round {round}: {answer}"
            );
            assert!(took >= DEADLINE, "gave up on the court after {took:?}");
        } else {
            // Not asked: the answer does not wait for the court.
            assert!(took < DEADLINE, "waited {took:?} for a node marked down");
            marked_down = true;
        }
    }
    assert!(
        marked_down,
        "the cut court was never marked down in 4 rounds"
    );
    relays["court"].cut.store(false, Ordering::Relaxed);

    let total = |f: fn(&Stats) -> &AtomicU64| -> u64 {
        relays
            .values()
            .map(|r| f(&r.stats).load(Ordering::Relaxed))
            .sum()
    };
    let (forwarded, dropped, reordered) = (
        total(|s| &s.forwarded),
        total(|s| &s.dropped),
        total(|s| &s.reordered),
    );
    report(&format!(
        "lossy link (relay: {:.0}% loss, {} ms + 0..{} ms): {complete} of {rounds} answers complete, slowest {} ms; {forwarded} datagrams forwarded, {dropped} dropped, {reordered} reordered",
        link.loss * 100.0,
        link.delay.as_millis(),
        link.jitter.as_millis(),
        slowest.as_millis()
    ));
    // The relay did what it claims, or this test proves nothing.
    assert!(dropped > 0, "the relay dropped nothing");
    assert!(reordered > 0, "the relay reordered nothing");
    // 5% loss on an 80–140 ms round trip is recoverable within 2 s for most questions.
    assert!(
        complete * 4 >= rounds * 3,
        "only {complete} of {rounds} answers complete over the lossy link"
    );
    tokio::time::timeout(Duration::from_secs(60), running.stop())
        .await
        .expect("the federation did not stop within 60 s");
    drop(relays);
}
