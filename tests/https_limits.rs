//! The requester API against hostile and slow clients, over real sockets on 127.0.0.1 with
//! the federation's real certificates: a flood of silent connections under a 128-descriptor
//! limit, the per-address and per-identity caps, every stage of a connection that stalls
//! or trickles (handshake, headers, body, keep-alive idle) on HTTP/1.1 and HTTP/2, and the
//! order "role, then body" with the audited 413 on both protocols.
//!
//! Every wait has a timeout. Bounds on when a connection is closed are asserted both ways:
//! never before its timeout (the limit is not something else closing it), and within a
//! slack of it (it is the limit, not the 50 s the connections used to survive).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use fedq_sandbox::{Federation, Running};
use fedq_testkit::federation;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Bytes, Frame, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How late after its timeout a connection may be closed (the watchdog's tick, scheduling
/// on a loaded 2-core machine).
const SLACK: Duration = Duration::from_secs(3);

/// Adds an `[https]` table to the federation's coordinator config.
fn set_limits(fed: &Federation, table: &str) {
    let path = fed.layout.coordinator_config();
    let mut text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("[https]"));
    text.push_str("\n[https]\n");
    text.push_str(table);
    std::fs::write(&path, text).unwrap();
}

fn client_config(fed: &Federation, name: &str, alpn: &[u8]) -> Arc<rustls::ClientConfig> {
    let pki = fed.layout.pki();
    let ca = std::fs::read(pki.join("ca.crt")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for c in fedq_certs::tls::read_certificates(&ca).unwrap() {
        roots.add(c).unwrap();
    }
    let creds = fedq_certs::Credentials::load_named(&pki, name).unwrap();
    let (chain, key) = creds.chain_and_key();
    let mut config = rustls::ClientConfig::builder_with_provider(fedq_certs::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![alpn.to_vec()];
    Arc::new(config)
}

type Tls = tokio_rustls::client::TlsStream<TcpStream>;

async fn tls(addr: SocketAddr, config: &Arc<rustls::ClientConfig>) -> Tls {
    let tcp = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr))
        .await
        .expect("connect timed out")
        .unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(config));
    tokio::time::timeout(
        Duration::from_secs(10),
        connector.connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        ),
    )
    .await
    .expect("handshake timed out")
    .unwrap()
}

/// Reads until the peer closes (EOF or an error); returns what was read. Fails the test
/// if that takes more than `within`.
async fn read_until_closed<R: tokio::io::AsyncRead + Unpin>(
    r: &mut R,
    within: Duration,
) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, r.read(&mut buf)).await {
            Err(_) => panic!("still open after {within:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return got,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

fn assert_closed_between(what: &str, took: Duration, timeout: Duration) {
    assert!(
        took + Duration::from_millis(20) >= timeout,
        "{what}: closed after {took:?}, before its timeout {timeout:?}"
    );
    assert!(
        took <= timeout + SLACK,
        "{what}: closed only after {took:?} (timeout {timeout:?})"
    );
}

/// `GET /health` on a new HTTP/1.1 connection: the status.
async fn health(addr: SocketAddr, config: &Arc<rustls::ClientConfig>) -> Result<u16, String> {
    let stream = tls(addr, config).await;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let request = hyper::Request::get("/health")
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), sender.send_request(request))
        .await
        .map_err(|_| "no answer within 10 s".to_owned())?
        .map_err(|e| e.to_string())?;
    Ok(response.status().as_u16())
}

/// A child process, killed (and reaped) when the test ends, even by a failed assertion.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name, which is in parentheses.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_silent_connections_under_128_descriptors_keeps_requesters_in_and_the_log_quiet()
{
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path(), 50, 61);
    // Caps above what 128 descriptors hold, and a handshake timeout longer than the test:
    // only the descriptor handling can let a requester in.
    set_limits(
        &fed,
        "max_connections = 1000\nmax_connections_per_address = 1000\nhandshake_timeout_ms = 120000\n",
    );
    // Its stderr goes straight to a file: through a pipe read by the test, a process that
    // logs in a loop would be slowed down by the pipe and its CPU use hidden.
    let log = tmp.path().join("coordinator.log");
    let mut cmd = std::process::Command::new("sh");
    cmd.args([
        "-c",
        "ulimit -n 128 && exec \"$0\" coordinator serve --config \"$1\"",
        env!("CARGO_BIN_EXE_fedq"),
    ])
    .arg(fed.layout.coordinator_config())
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::null())
    .stderr(std::fs::File::create(&log).unwrap());
    let coordinator = Killed(cmd.spawn().unwrap());
    let started = Instant::now();
    while !std::fs::read_to_string(&log)
        .unwrap()
        .contains(support::process::COORDINATOR_READY)
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the coordinator did not start within 60 s: {}",
            std::fs::read_to_string(&log).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pid = coordinator.0.id();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    assert!(
        limits
            .lines()
            .any(|l| l.starts_with("Max open files") && l.split_whitespace().nth(3) == Some("128")),
        "{limits}"
    );
    let lines_at_start = std::fs::read_to_string(&log).unwrap().lines().count();

    let mut flood = Vec::new();
    for _ in 0..200 {
        flood.push(
            tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(fed.coordinator))
                .await
                .unwrap()
                .unwrap(),
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // With the flood open and more of it waiting to be accepted than descriptors allow,
    // the accept loop must not spin.
    let cpu_before = cpu_seconds(pid);
    let wall = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cpu = cpu_seconds(pid) - cpu_before;
    let wall = wall.elapsed().as_secs_f64();
    assert!(
        cpu < 0.25 * wall,
        "the coordinator used {cpu:.2} s of CPU in {wall:.1} s with a flood open"
    );
    // Requesters get in while every silent connection is still open on this side, long
    // before any handshake timeout (120 s) could have made room.
    let config = client_config(&fed, "market-regulation.licensing", b"http/1.1");
    for i in 0..5 {
        assert_eq!(
            health(fed.coordinator, &config).await,
            Ok(200),
            "request {i} during the flood"
        );
    }
    // And one more request still gets in.
    assert_eq!(health(fed.coordinator, &config).await, Ok(200));
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().skip(lines_at_start).collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("accepting HTTPS connections fails") && l.contains("failures")),
        "descriptors never ran out, so the flood tested nothing: {lines:?}"
    );
    // At most one line a second over the ~5 s of flood, and a few besides.
    assert!(lines.len() <= 12, "{} log lines: {lines:?}", lines.len());
    support::report(&format!(
        "https flood: 200 silent connections under 128 descriptors; 6 of 6 requests answered; \
         {} log lines; {cpu:.2} s CPU in {wall:.1} s with the flood open",
        lines.len()
    ));
    drop(flood);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_and_one_identity_cannot_take_every_connection() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path(), 50, 62);
    set_limits(
        &fed,
        "max_connections_per_address = 4\nmax_connections_per_identity = 2\nhandshake_timeout_ms = 60000\n",
    );
    let running = Running::start(&fed, None).await.unwrap();
    // 20 silent connections from 127.0.0.2: the newest 4 are held, the rest closed at once
    // (long before the 60 s handshake timeout).
    let mut silent = Vec::new();
    for _ in 0..20 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        silent.push(socket.connect(fed.coordinator).await.unwrap());
    }
    let mut closed = 0;
    for s in &mut silent {
        let mut b = [0u8; 1];
        match tokio::time::timeout(Duration::from_secs(2), s.read(&mut b)).await {
            Ok(Ok(0)) | Ok(Err(_)) => closed += 1,
            Ok(Ok(_)) => panic!("the server sent bytes before a ClientHello"),
            Err(_) => {}
        }
    }
    assert_eq!(
        closed, 16,
        "closed {closed} of 20 from one address with a cap of 4"
    );
    // Another address is not affected.
    let config = client_config(&fed, "market-regulation.licensing", b"http/1.1");
    assert_eq!(health(fed.coordinator, &config).await, Ok(200));

    // Two connections per certificate identity; the third is answered 503.
    let mut held = Vec::new();
    for _ in 0..2 {
        let stream = tls(fed.coordinator, &config).await;
        let (sender, conn) =
            hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        held.push(sender);
    }
    for sender in &mut held {
        let r = sender
            .send_request(
                hyper::Request::get("/health")
                    .header("host", "localhost")
                    .body(Full::new(Bytes::new()))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let stream = tls(fed.coordinator, &config).await;
    let (mut third, conn) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let r = third
        .send_request(
            hyper::Request::get("/health")
                .header("host", "localhost")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let body = r.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains("already holds 2 connections"), "{body}");
    // Another identity still gets in.
    let other = client_config(&fed, "hrss.recruitment", b"http/1.1");
    assert_eq!(health(fed.coordinator, &other).await, Ok(200));
    drop(silent);
    running.stop().await;
}

/// A body that yields one byte every `every`, `len` bytes in all (declared up front).
struct Trickle {
    left: u64,
    len: u64,
    every: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl Trickle {
    fn new(len: u64, every: Duration) -> Self {
        Self {
            left: len,
            len,
            every,
            sleep: Box::pin(tokio::time::sleep(every)),
        }
    }
}

impl Body for Trickle {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                let every = self.every;
                self.sleep
                    .as_mut()
                    .reset(tokio::time::Instant::now() + every);
                self.left -= 1;
                Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b" ")))))
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len)
    }
}

fn last_refusal(audit: &Path) -> (fedq_audit::EntryKind, String) {
    let entries = fedq_audit::list(audit, &fedq_audit::ListFilter::default()).unwrap();
    let last = entries.last().unwrap();
    (last.record.kind, last.record.outcome.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_and_trickled_connections_are_closed_within_their_timeouts() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path(), 50, 63);
    let handshake = Duration::from_millis(1000);
    let header = Duration::from_millis(1000);
    let body = Duration::from_millis(1500);
    let idle = Duration::from_millis(2500);
    set_limits(
        &fed,
        "handshake_timeout_ms = 1000\nheader_timeout_ms = 1000\nbody_timeout_ms = 1500\nidle_timeout_ms = 2500\n",
    );
    let running = Running::start(&fed, None).await.unwrap();
    let addr = fed.coordinator;
    let audit = fed.layout.root.join("audit/coordinator-audit.db");
    let h1 = client_config(&fed, "market-regulation.licensing", b"http/1.1");
    let h2 = client_config(&fed, "market-regulation.licensing", b"h2");
    let within = idle + SLACK + Duration::from_secs(2);

    let no_hello = async {
        let t = Instant::now();
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        read_until_closed(&mut tcp, within).await;
        assert_closed_between("no ClientHello", t.elapsed(), handshake);
    };
    let idle_after_handshake = async {
        let mut s = tls(addr, &h1).await;
        let t = Instant::now();
        read_until_closed(&mut s, within).await;
        assert_closed_between("idle after the handshake", t.elapsed(), idle);
    };
    let stalled_head = async {
        let mut s = tls(addr, &h1).await;
        let t = Instant::now();
        s.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n")
            .await
            .unwrap();
        let got = read_until_closed(&mut s, within).await;
        assert_closed_between("stalled headers", t.elapsed(), header);
        assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    };
    let trickled_head = async {
        let s = tls(addr, &h1).await;
        let (mut r, mut w) = tokio::io::split(s);
        let t = Instant::now();
        let writer = tokio::spawn(async move {
            let head = b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Slow: ";
            w.write_all(&head[..1]).await.unwrap();
            for b in head[1..].iter().chain(std::iter::repeat(&b'a')) {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if w.write_all(&[*b]).await.is_err() {
                    return;
                }
            }
        });
        read_until_closed(&mut r, within).await;
        assert_closed_between("trickled headers", t.elapsed(), header);
        writer.abort();
    };
    let keep_alive_idle = move |config: Arc<rustls::ClientConfig>, h2: bool| async move {
        let s = tls(addr, &config).await;
        let request = hyper::Request::get("/health")
            .header("host", "localhost")
            .body(Full::new(Bytes::new()))
            .unwrap();
        // Each sender is kept until the end: dropping it would close the connection from
        // this side.
        let (status, closed, _h2_sender, _h1_sender) = if h2 {
            let (mut sender, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(s))
                    .await
                    .unwrap();
            let conn = tokio::spawn(conn);
            let r = sender.send_request(request).await.unwrap();
            let status = r.status().as_u16();
            r.into_body().collect().await.unwrap();
            (status, conn, Some(sender), None)
        } else {
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
                .await
                .unwrap();
            let conn = tokio::spawn(conn);
            let r = sender.send_request(request).await.unwrap();
            let status = r.status().as_u16();
            r.into_body().collect().await.unwrap();
            (status, conn, None, Some(sender))
        };
        assert_eq!(status, 200);
        let t = Instant::now();
        tokio::time::timeout(within, closed)
            .await
            .expect("the kept-alive connection was never closed")
            .unwrap()
            .ok();
        assert_closed_between(
            if h2 {
                "idle HTTP/2"
            } else {
                "idle keep-alive HTTP/1.1"
            },
            t.elapsed(),
            idle,
        );
    };
    let trickled_body = move |config: Arc<rustls::ClientConfig>, h2: bool| async move {
        let s = tls(addr, &config).await;
        let request = hyper::Request::post("/v1/query")
            .header("host", "localhost")
            .header("content-type", "application/json")
            .body(Trickle::new(200, Duration::from_millis(100)))
            .unwrap();
        let t = Instant::now();
        let response = if h2 {
            let (mut sender, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(s))
                    .await
                    .unwrap();
            tokio::spawn(conn);
            tokio::time::timeout(within, sender.send_request(request)).await
        } else {
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
                .await
                .unwrap();
            tokio::spawn(conn);
            tokio::time::timeout(within, sender.send_request(request)).await
        };
        let response = response.expect("no answer to a trickled body").unwrap();
        assert_closed_between(
            if h2 {
                "trickled body on HTTP/2"
            } else {
                "trickled body on HTTP/1.1"
            },
            t.elapsed(),
            body,
        );
        assert_eq!(response.status(), 408);
        let text = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&text).into_owned();
        assert!(text.contains("did not arrive within 1500 ms"), "{text}");
    };
    tokio::join!(
        no_hello,
        idle_after_handshake,
        stalled_head,
        trickled_head,
        keep_alive_idle(Arc::clone(&h1), false),
        keep_alive_idle(Arc::clone(&h2), true),
    );
    // The two bodies one after the other, so each one's refusal is the last entry.
    trickled_body(Arc::clone(&h1), false).await;
    let (kind, outcome) = last_refusal(&audit);
    assert_eq!(kind, fedq_audit::EntryKind::Refusal);
    assert!(outcome.contains("\"http\":408"), "{outcome}");
    trickled_body(Arc::clone(&h2), true).await;
    let (kind, outcome) = last_refusal(&audit);
    assert_eq!(kind, fedq_audit::EntryKind::Refusal);
    assert!(outcome.contains("\"http\":408"), "{outcome}");
    running.stop().await;
}

/// A body whose length is declared but which never comes.
struct Never(u64);

impl Body for Never {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Pending
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.0)
    }
}

/// Sends one request on a new connection with `alpn`; the status and body.
async fn send<B>(
    fed: &Federation,
    name: &str,
    h2: bool,
    request: hyper::Request<B>,
    within: Duration,
) -> Result<(u16, String), String>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: std::error::Error + Send + Sync,
{
    let config = client_config(fed, name, if h2 { b"h2" } else { b"http/1.1" });
    let s = tls(fed.coordinator, &config).await;
    let response = if h2 {
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(s))
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        tokio::time::timeout(within, sender.send_request(request)).await
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        tokio::time::timeout(within, sender.send_request(request)).await
    };
    let response = response
        .map_err(|_| format!("no answer within {within:?}"))?
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = tokio::time::timeout(within, response.into_body().collect())
        .await
        .map_err(|_| "body not finished".to_owned())?
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_role_is_checked_before_the_body_and_an_oversized_body_gets_the_audited_413_on_both_protocols(
) {
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path(), 50, 64);
    // A body timeout far longer than the answers awaited below: an answer that comes
    // while the body is still outstanding was decided without it.
    set_limits(&fed, "body_timeout_ms = 60000\n");
    let running = Running::start(&fed, None).await.unwrap();
    let audit = fed.layout.root.join("audit/coordinator-audit.db");
    let entries = || fedq_audit::verify(&audit).unwrap().entries;
    fn post<B>(body: B) -> hyper::Request<B> {
        hyper::Request::post("/v1/query")
            .header("host", "localhost")
            .header("content-type", "application/json")
            .body(body)
            .unwrap()
    }
    let mut prover = support::connect_as(&fed, "market-regulation.licensing")
        .await
        .unwrap();
    // Its sessions opened (and registered) before the entries below are counted.
    prover.open_sessions().await.unwrap();
    for h2 in [false, true] {
        let proto = if h2 { "HTTP/2" } else { "HTTP/1.1" };
        // An officer declaring a body it never sends is refused at once, and nothing is
        // registered as a requester's refusal.
        let before = entries();
        let (status, body) = send(
            &fed,
            "officer-zhang",
            h2,
            post(Never(500_000)),
            Duration::from_secs(10),
        )
        .await
        .unwrap_or_else(|e| panic!("{proto}: {e}"));
        assert_eq!(status, 403, "{proto}: {body}");
        assert!(
            body.contains("officer certificate cannot query"),
            "{proto}: {body}"
        );
        assert_eq!(
            entries(),
            before,
            "{proto}: another role's request was registered"
        );
        // The same for a node certificate is refused at the handshake; a requester's
        // stalled body is what the body timeout is for (tested elsewhere).
        for size in [80 * 1024, 600 * 1024, 4 * 1024 * 1024] {
            let before = entries();
            let outcome = send(
                &fed,
                "market-regulation.licensing",
                h2,
                post(Full::new(Bytes::from(vec![b' '; size]))),
                Duration::from_secs(20),
            )
            .await;
            let (status, body) = outcome.unwrap_or_else(|e| panic!("{proto}, {size} bytes: {e}"));
            assert_eq!(status, 413, "{proto}, {size} bytes: {body}");
            assert!(body.contains("request body over 65536 bytes"), "{body}");
            assert_eq!(
                entries(),
                before + 1,
                "{proto}, {size} bytes: not registered"
            );
            let (kind, outcome) = last_refusal(&audit);
            assert_eq!(kind, fedq_audit::EntryKind::Refusal);
            assert!(outcome.contains("\"http\":413"), "{outcome}");
        }
        // A body within the limit is a query like any other (proven to every node as
        // `fedq query` proves it).
        let q = fedq_coordinator::query::QueryRequest {
            subject: fed.scenario.blacklisted.resident_id.clone(),
            purpose: "administrative-licensing".into(),
            legal_basis: Some(fedq_sandbox::LICENSING_BASIS.into()),
            case_reference: Some(fedq_sandbox::LICENSING_CASE.into()),
            view: Some("blacklist-check".into()),
            ..Default::default()
        };
        let q = serde_json::to_vec(&prover.prove(&q).await.unwrap()).unwrap();
        let (status, body) = send(
            &fed,
            "market-regulation.licensing",
            h2,
            post(Full::new(Bytes::from(q))),
            Duration::from_secs(20),
        )
        .await
        .unwrap();
        assert_eq!(status, 200, "{proto}: {body}");
    }
    running.stop().await;
}
