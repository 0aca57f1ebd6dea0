//! What one coordinator connection may cost a node, over real QUIC on 127.0.0.1 with
//! certificates from the federation's CA: a connection that opens 200 streams of ~1 MiB
//! frames and never finishes them, connections past the node's limit, an answer larger
//! than the coordinator reads, a handshake that stalls, lookups naming 20,000 datasets or a dataset twice, and a
//! coordinator that forwards more lookups than the requester's rate limit allows.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use fedq_certs::tls::{self, Credentials, FederationTrust, RefusalLog, TrustFiles};
use fedq_certs::Role;
use fedq_node::config::NodeConfig;
use fedq_node::service::Node;
use fedq_wire::frame::{self, HEADER_LEN, PROTOCOL_VERSION};
use fedq_wire::message::{DatasetRequest, LookupRequest, LookupTarget};
use fedq_wire::transport::{Handler, Limits, NodeClient, NodeEndpoint, TlsFiles, ALPN};
use fedq_wire::{NodeRequest, NodeResponse};
use quinn::crypto::rustls::QuicClientConfig;
use support::process::FedqProcess;
use support::proof::ProvingChannel;
use support::{rid, TestFederation};

const TODAY: &str = "2026-11-27";
const BASIS: &str = "长政办发〔2017〕62号";

fn localhost() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn pong_handler(answer_len: usize) -> Handler {
    Arc::new(move |_, request| {
        Box::pin(async move {
            match request {
                NodeRequest::Ping => NodeResponse::Pong {
                    node: "c".repeat(answer_len),
                },
                _ => NodeResponse::Failed {
                    code: fedq_wire::message::FailureCode::Unsupported,
                    message: "this test node only answers pings".into(),
                },
            }
        })
    })
}

/// A node endpoint answering pings (with a node name `answer_len` long) under `limits`.
fn start_endpoint(
    fed: &TestFederation,
    limits: Limits,
    answer_len: usize,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let endpoint =
        NodeEndpoint::bind(localhost(), TlsFiles::in_dir(&fed.pki, "court"), limits).unwrap();
    let addr = endpoint.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(endpoint.serve(pong_handler(answer_len), None, async {
        let _ = stopped.await;
    }));
    (addr, stop)
}

/// A raw QUIC connection with the coordinator's certificate: the hostile coordinator.
async fn raw_connection(
    fed: &TestFederation,
    addr: SocketAddr,
) -> Result<(quinn::Endpoint, quinn::Connection), quinn::ConnectionError> {
    let trust = FederationTrust::load(&TrustFiles::in_dir(&fed.pki)).unwrap();
    let creds = Credentials::load_named(&fed.pki, "coordinator").unwrap();
    let tls =
        tls::client_config(&creds, &trust, Role::Node, &[ALPN], &RefusalLog::default()).unwrap();
    let config = quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls).unwrap()));
    let endpoint = quinn::Endpoint::client(localhost()).unwrap();
    let conn = endpoint
        .connect_with(config, addr, "court")
        .unwrap()
        .await?;
    Ok((endpoint, conn))
}

async fn ping(conn: &quinn::Connection) -> NodeResponse {
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    send.write_all(&frame::encode(&NodeRequest::Ping).unwrap())
        .await
        .unwrap();
    send.finish().unwrap();
    let bytes = tokio::time::timeout(
        Duration::from_secs(10),
        recv.read_to_end(frame::MAX_FRAME_LEN + HEADER_LEN),
    )
    .await
    .expect("no answer to a ping within 10 s")
    .unwrap();
    frame::decode(&bytes, frame::MAX_FRAME_LEN).unwrap()
}

/// Opens `streams` streams on `conn`, each declaring a frame of the largest size and
/// sending all of it but its last byte, so no frame ever completes and nothing the node
/// holds is released; sends for `how_long`. Returns the bytes the node's flow control
/// let through (what it holds) and the streams, still open.
async fn park_stalled_frames(
    conn: &quinn::Connection,
    streams: usize,
    how_long: Duration,
) -> (usize, Vec<quinn::SendStream>) {
    let declared = frame::MAX_FRAME_LEN;
    let mut header = vec![b'F', b'Q', PROTOCOL_VERSION];
    header.extend_from_slice(&u32::try_from(declared).unwrap().to_be_bytes());
    let mut tasks = Vec::new();
    for _ in 0..streams {
        let (send, recv) = conn.open_bi().await.unwrap();
        let header = header.clone();
        tasks.push(tokio::spawn(async move {
            let mut send = send;
            let mut written = 0usize;
            let chunk = vec![0xA5u8; 64 * 1024];
            let sending = async {
                send.write_all(&header).await.unwrap();
                written += header.len();
                let mut left = declared - 1;
                while left > 0 {
                    let n = send.write(&chunk[..left.min(chunk.len())]).await.unwrap();
                    written += n;
                    left -= n;
                }
            };
            let _ = tokio::time::timeout(how_long, sending).await;
            drop(recv);
            (written, send)
        }));
    }
    let mut total = 0;
    let mut sends = Vec::new();
    for t in tasks {
        let (written, send) = tokio::time::timeout(how_long + Duration::from_secs(60), t)
            .await
            .expect("a stalled sender did not give up in time")
            .unwrap();
        total += written;
        sends.push(send);
    }
    (total, sends)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_cannot_park_more_than_its_budget_in_a_node() {
    let fed = TestFederation::new(&["court"], &[]);
    let budget = 2 << 20;
    let limits = Limits {
        max_connection_bytes: budget,
        // Longer than the test's sending phase: nothing is freed by a deadline meanwhile.
        stream_read_timeout: Duration::from_secs(6),
        ..Limits::default()
    };
    let (addr, stop) = start_endpoint(&fed, limits, 5);
    let (_endpoint, conn) = raw_connection(&fed, addr).await.unwrap();

    let (total, senders) = park_stalled_frames(&conn, 200, Duration::from_secs(2)).await;
    support::report(&format!(
        "hostile_coordinator: 200 stalled 1 MiB frames got {total} bytes into the node (budget {budget})"
    ));
    // The budget for frames being read, and as much again in QUIC's receive buffers.
    assert!(
        total <= 2 * budget + 200 * HEADER_LEN,
        "the node accepted {total} bytes from one connection, over twice its {budget}-byte budget"
    );
    assert!(total >= budget / 2, "the node read almost nothing: {total}");

    // Abandoning those streams frees the budget: the same connection is served again.
    for mut send in senders {
        let _ = send.reset(quinn::VarInt::from_u32(0));
    }
    assert!(matches!(ping(&conn).await, NodeResponse::Pong { .. }));
    let _ = stop.send(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_process_stays_small_while_one_connection_stalls_200_large_frames() {
    let fed = TestFederation::new(&["court"], &[]);
    let config = fed.node_config("court", TODAY);
    // What `fedq node init` does: the court serves an empty store it did not create.
    fedq_node::store::create(&fed.root.join("data/court.db")).unwrap();
    let port = std::net::UdpSocket::bind(localhost())
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("127.0.0.1:0", &format!("127.0.0.1:{port}")),
    )
    .unwrap();
    let node = FedqProcess::node(&config, None);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let (_endpoint, conn) = raw_connection(&fed, addr).await.unwrap();
    assert!(matches!(ping(&conn).await, NodeResponse::Pong { .. }));
    let before = node.rss_kib();
    // Shorter than the node's 5 s read deadline: nothing is freed by it meanwhile.
    let (total, senders) = park_stalled_frames(&conn, 200, Duration::from_secs(3)).await;
    let grown = node.rss_kib().saturating_sub(before);
    support::report(&format!(
        "hostile_coordinator: `fedq node serve` grew by {grown} KiB while one connection parked {total} bytes in 200 stalled frames"
    ));
    // The default budget is 4 MiB: frames being read, and as much again in QUIC's
    // buffers. Without it the same connection parked 53 MB in 2 s.
    let budget = Limits::default().max_connection_bytes;
    assert!(
        total <= 2 * budget + 200 * HEADER_LEN,
        "{total} bytes accepted"
    );
    assert!(
        grown < 24 * 1024,
        "the node grew by {grown} KiB under one hostile connection"
    );
    for mut send in senders {
        let _ = send.reset(quinn::VarInt::from_u32(0));
    }
    assert!(matches!(ping(&conn).await, NodeResponse::Pong { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_limit_are_refused_and_a_freed_slot_is_reused() {
    let fed = TestFederation::new(&["court"], &[]);
    let limits = Limits {
        max_connections: 2,
        ..Limits::default()
    };
    let (addr, stop) = start_endpoint(&fed, limits, 5);
    let (_e1, first) = raw_connection(&fed, addr).await.unwrap();
    let (_e2, second) = raw_connection(&fed, addr).await.unwrap();
    assert!(matches!(ping(&first).await, NodeResponse::Pong { .. }));
    assert!(matches!(ping(&second).await, NodeResponse::Pong { .. }));
    let third = raw_connection(&fed, addr).await;
    match &third {
        Err(quinn::ConnectionError::ConnectionClosed(close)) => assert_eq!(
            close.error_code,
            quinn::TransportErrorCode::CONNECTION_REFUSED,
            "{close:?}"
        ),
        other => panic!(
            "a third connection was not refused: {:?}",
            other.as_ref().err()
        ),
    }
    // The two admitted connections are unaffected.
    assert!(matches!(ping(&first).await, NodeResponse::Pong { .. }));

    // Once one closes, its slot is free again.
    first.close(quinn::VarInt::from_u32(0), b"done");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let again = loop {
        match raw_connection(&fed, addr).await {
            Ok((e, conn)) => break (e, conn),
            Err(e) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "no slot freed within 10 s: {e}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert!(matches!(ping(&again.1).await, NodeResponse::Pong { .. }));
    let _ = stop.send(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_that_stalls_gives_up_its_connection_slot() {
    let fed = TestFederation::new(&["court"], &[]);
    let limits = Limits {
        max_connections: 1,
        stream_read_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let (addr, stop) = start_endpoint(&fed, limits, 5);
    // A relay that passes the client's first datagram (its Initial) to the node and
    // nothing else, either way: the node starts a handshake that never completes.
    let relay = tokio::net::UdpSocket::bind(localhost()).await.unwrap();
    let relay_addr = relay.local_addr().unwrap();
    let relaying = tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        let (n, _) = relay.recv_from(&mut buf).await.unwrap();
        relay.send_to(&buf[..n], addr).await.unwrap();
        loop {
            let _ = relay.recv_from(&mut buf).await;
        }
    });
    let stalled = tokio::spawn({
        let fed_pki = fed.pki.clone();
        async move {
            let trust = FederationTrust::load(&TrustFiles::in_dir(&fed_pki)).unwrap();
            let creds = Credentials::load_named(&fed_pki, "coordinator").unwrap();
            let tls =
                tls::client_config(&creds, &trust, Role::Node, &[ALPN], &RefusalLog::default())
                    .unwrap();
            let config =
                quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls).unwrap()));
            let endpoint = quinn::Endpoint::client(localhost()).unwrap();
            let _ = endpoint
                .connect_with(config, relay_addr, "court")
                .unwrap()
                .await;
        }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    // The stalled handshake holds the only slot.
    assert!(
        matches!(
            raw_connection(&fed, addr).await,
            Err(quinn::ConnectionError::ConnectionClosed(_))
        ),
        "a connection was admitted while the slot was taken"
    );
    // Past the deadline the slot is free, long before quinn's 30 s idle timeout.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (_e, conn) = tokio::time::timeout(Duration::from_secs(5), raw_connection(&fed, addr))
        .await
        .expect("no handshake within 5 s")
        .expect("the stalled handshake still holds the slot");
    assert!(matches!(ping(&conn).await, NodeResponse::Pong { .. }));
    relaying.abort();
    stalled.abort();
    let _ = stop.send(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_larger_than_the_coordinator_reads_is_withheld_with_a_reason() {
    let fed = TestFederation::new(&["court"], &[]);
    let limits = Limits {
        max_frame_len: 64 * 1024,
        ..Limits::default()
    };
    let (addr, stop) = start_endpoint(&fed, limits.clone(), 100 * 1024);
    let client = NodeClient::new(
        localhost(),
        TlsFiles::in_dir(&fed.pki, "coordinator"),
        limits,
    )
    .unwrap();
    let court = ProvingChannel::new(client.channel("court", addr), &fed.pki);
    let answer = court
        .request(&NodeRequest::Ping, Duration::from_secs(10))
        .await
        .unwrap();
    match answer {
        NodeResponse::Failed { message, .. } => assert!(
            message.contains("over the 65536-byte frame limit, and was withheld"),
            "{message}"
        ),
        other => panic!("expected a Failed answer, got {other:?}"),
    }
    let _ = stop.send(());
}

fn lookup(subject: &str, requester: &str, target: LookupTarget) -> NodeRequest {
    NodeRequest::Lookup(LookupRequest {
        query_id: "q-hostile".into(),
        requester: requester.into(),
        purpose: "administrative-licensing".into(),
        legal_basis: Some(BASIS.into()),
        case_reference: Some(fedq_sandbox::LICENSING_CASE.into()),
        target,
        policy_version: "test".into(),
        // The court's pinned date, so no lookup here is refused for clock skew.
        date: time::Date::parse(
            TODAY,
            time::macros::format_description!("[year]-[month]-[day]"),
        )
        .unwrap(),
        proof: String::new(),
        sealed: support::proof::clear_subject(subject, None),
    })
}

/// A court node with an empty store, served in this runtime, and a coordinator's channel
/// to it.
async fn start_court(fed: &TestFederation) -> (ProvingChannel, NodeClient) {
    let config = fed.node_config("court", TODAY);
    fedq_node::store::create(&fed.root.join("data/court.db")).unwrap();
    let node = Node::start(NodeConfig::load(&config).unwrap(), Limits::default())
        .await
        .unwrap();
    let addr = node.local_addr().unwrap();
    tokio::spawn(node.serve(None, std::future::pending()));
    let client = NodeClient::new(
        localhost(),
        TlsFiles::in_dir(&fed.pki, "coordinator"),
        Limits::default(),
    )
    .unwrap();
    (
        ProvingChannel::new(client.channel("court", addr), &fed.pki),
        client,
    )
}

fn audit_entries(fed: &TestFederation) -> Vec<fedq_audit::AuditEntry> {
    fedq_audit::list(
        &fed.root.join("data/court-audit.db"),
        &fedq_audit::ListFilter::default(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_naming_too_many_or_repeated_datasets_are_refused_with_a_small_audit_entry() {
    let fed = TestFederation::new(&["court"], &[]);
    let (court, _client) = start_court(&fed).await;
    let subject = rid("43010219800101123");
    // Sent without a proof, as a hostile coordinator would: the shape is checked first.
    let ask = |target| {
        let court = court.clone();
        let req = lookup(&subject, "market-regulation.licensing", target);
        async move {
            court
                .raw()
                .request(&req, Duration::from_secs(10))
                .await
                .unwrap()
        }
    };
    let many = LookupTarget::Datasets(
        (0..20_000)
            .map(|i| DatasetRequest {
                dataset: format!("court.hostile{i:05}"),
                fields: None,
            })
            .collect(),
    );
    match ask(many).await {
        NodeResponse::Refused { rationale } => assert_eq!(
            rationale,
            "the lookup names 20000 datasets; at most 64 are accepted in one lookup"
        ),
        other => panic!("{other:?}"),
    }
    let twice = LookupTarget::Datasets(vec![
        DatasetRequest {
            dataset: "court.dishonest_debtors".into(),
            fields: None,
        },
        DatasetRequest {
            dataset: "court.dishonest_debtors".into(),
            fields: Some(vec!["listed_on".into()]),
        },
    ]);
    match ask(twice).await {
        NodeResponse::Refused { rationale } => assert_eq!(
            rationale,
            "dataset #2 of the lookup repeats an earlier one; name each dataset once"
        ),
        other => panic!("{other:?}"),
    }
    // A well-formed, proven lookup is still answered on the same connection.
    let fine = lookup(
        &subject,
        "market-regulation.licensing",
        LookupTarget::View("blacklist-check".into()),
    );
    assert!(matches!(
        court.request(&fine, Duration::from_secs(10)).await.unwrap(),
        NodeResponse::Lookup(_)
    ));

    let entries = audit_entries(&fed);
    // Two refusals, the requester's session, the answer.
    assert_eq!(entries.len(), 4, "{entries:?}");
    for refused in &entries[..2] {
        let r = &refused.record;
        assert_eq!(r.kind, fedq_audit::EntryKind::Refusal);
        assert_eq!(r.requester, "coordinator:coordinator");
        // Nothing the hostile lookup sent is copied: no dataset name, no ID.
        assert!(!r.target.contains("hostile") && !r.target.contains("dishonest"));
        assert!(!r.outcome.contains(&subject));
        assert!(r.size() < 1024, "audit entry of {} bytes", r.size());
    }
    assert_eq!(entries[0].record.target, "20000 datasets");
    assert_eq!(entries[2].record.kind, fedq_audit::EntryKind::Session);
    assert_eq!(entries[3].record.kind, fedq_audit::EntryKind::Answer);
    assert_eq!(
        fedq_audit::verify(&fed.root.join("data/court-audit.db"))
            .unwrap()
            .first_break,
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_throttles_a_coordinator_that_forwards_past_the_requesters_rate_limit() {
    let fed = TestFederation::new(&["court"], &[]);
    let engine =
        fedq_policy::load::load_engine(&fed.root.join("policy/policy.toml"), None).unwrap();
    let requester = "market-regulation.licensing";
    let per_minute = engine
        .policy()
        .requesters
        .iter()
        .find(|r| r.name == requester)
        .unwrap()
        .rate_limit
        .per_minute
        .unwrap() as usize;
    let (court, _client) = start_court(&fed).await;
    let subject = rid("43010219800101123");
    // All of it within one minute of the clock: start at the top of a minute if the
    // current one is nearly over.
    let second = time::OffsetDateTime::now_utc().second();
    if second > 40 {
        tokio::time::sleep(Duration::from_secs(u64::from(61 - second))).await;
    }
    let started_minute = time::OffsetDateTime::now_utc().unix_timestamp() / 60;
    // The node allows twice the minute's limit (a coordinator's minute and the next can
    // both end up in one node minute), and no more.
    for i in 0..2 * per_minute {
        let answer = court
            .request(
                &lookup(
                    &subject,
                    requester,
                    LookupTarget::View("blacklist-check".into()),
                ),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
        assert!(
            matches!(answer, NodeResponse::Lookup(_)),
            "lookup {i}: {answer:?}"
        );
    }
    let over = court
        .request(
            &lookup(
                &subject,
                requester,
                LookupTarget::View("blacklist-check".into()),
            ),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(
        time::OffsetDateTime::now_utc().unix_timestamp() / 60,
        started_minute,
        "the test ran across a minute boundary; it cannot tell a reset window from a missing limit"
    );
    match over {
        NodeResponse::Refused { rationale } => assert!(
            rationale.starts_with(&format!(
                "node `court`: requester `{requester}` has made {} requests this minute, its limit",
                2 * per_minute
            )),
            "{rationale}"
        ),
        other => panic!("the node released past the rate limit: {other:?}"),
    }
    // Another requester is not affected.
    let other = court
        .request(
            &lookup(
                &subject,
                "hrss.recruitment",
                LookupTarget::View("blacklist-check".into()),
            ),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert!(
        !matches!(&other, NodeResponse::Refused { rationale } if rationale.contains("this minute")),
        "{other:?}"
    );
    let entries = audit_entries(&fed);
    let last_of_requester = entries
        .iter()
        .rev()
        .find(|e| e.record.requester == requester)
        .unwrap();
    assert_eq!(
        last_of_requester.record.kind,
        fedq_audit::EntryKind::Refusal
    );
    assert!(last_of_requester.record.outcome.contains("this minute"));
}
