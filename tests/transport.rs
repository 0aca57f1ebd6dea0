//! End-to-end over real UDP sockets on 127.0.0.1: who a node lets in, and why not.
//!
//! Every certificate here is made by the `certs` crate (the code behind `fedq certs`); the
//! bad ones use its test options for validity and key usage, or a second CA, or rcgen
//! directly for a self-signed impostor.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fedq_certs::pki::{self, CertificateAuthority, IssueOptions};
use fedq_certs::tls::{self, AuthRefusal, Credentials, FederationTrust, RefusalLog, TrustFiles};
use fedq_certs::Role;
use fedq_wire::frame::{self, HEADER_LEN};
use fedq_wire::transport::{
    classify, code, ChannelError, Handler, Limits, NodeClient, NodeEndpoint, RefusedBy, TlsFiles,
    ALPN,
};
use fedq_wire::{NodeRequest, NodeResponse};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use time::OffsetDateTime;
use tokio::sync::oneshot;

fn test_limits() -> Limits {
    Limits {
        reload_interval: Duration::from_millis(100),
        stream_read_timeout: Duration::from_millis(500),
        refusal_backoff: Duration::from_secs(30),
        shutdown_grace: Duration::from_secs(2),
        ..Limits::default()
    }
}

/// A federation directory with the certificates the tests need.
struct Federation {
    _tmp: tempfile::TempDir,
    dir: std::path::PathBuf,
    other_dir: std::path::PathBuf,
}

fn federation() -> Federation {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    let ca = CertificateAuthority::init(&dir, "changsha", false).unwrap();
    let issue = |role, name: &str, opts: IssueOptions| {
        ca.issue(role, name, &opts).unwrap();
    };
    issue(Role::Node, "court", IssueOptions::default());
    issue(Role::Coordinator, "coordinator", IssueOptions::default());
    issue(
        Role::Requester,
        "market-regulation.licensing",
        IssueOptions::default(),
    );
    issue(Role::Officer, "officer-li", IssueOptions::default());
    let now = OffsetDateTime::now_utc();
    issue(
        Role::Coordinator,
        "coordinator-expired",
        IssueOptions {
            validity: Some((
                now - time::Duration::days(30),
                now - time::Duration::days(1),
            )),
            ..IssueOptions::default()
        },
    );
    issue(
        Role::Coordinator,
        "coordinator-future",
        IssueOptions {
            validity: Some((
                now + time::Duration::days(1),
                now + time::Duration::days(30),
            )),
            ..IssueOptions::default()
        },
    );
    issue(
        Role::Coordinator,
        "coordinator-revoked",
        IssueOptions::default(),
    );
    ca.revoke("coordinator-revoked").unwrap();
    issue(
        Role::Coordinator,
        "coordinator-server-only",
        IssueOptions {
            extended_key_usages: Some(vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth]),
            ..IssueOptions::default()
        },
    );
    // A second federation CA with the same federation name: trust is by key, not by name.
    let other_dir = tmp.path().join("other");
    let other = CertificateAuthority::init(&other_dir, "changsha", false).unwrap();
    other
        .issue(Role::Coordinator, "coordinator", &IssueOptions::default())
        .unwrap();
    write_impostor(&dir, "coordinator", "coordinator-impostor");
    Federation {
        _tmp: tmp,
        dir,
        other_dir,
    }
}

/// A self-signed certificate that copies the real holder's subject and identity.
fn write_impostor(dir: &Path, copy_of: &str, name: &str) {
    let real = Credentials::load_named(dir, copy_of).unwrap();
    let identity = real.identity().clone();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, identity.name.as_str());
    params.distinguished_name.push(
        rcgen::DnType::OrganizationName,
        identity.federation.as_str(),
    );
    params.distinguished_name.push(
        rcgen::DnType::OrganizationalUnitName,
        identity.role.as_str(),
    );
    params.subject_alt_names = vec![
        rcgen::SanType::URI(identity.to_uri().try_into().unwrap()),
        rcgen::SanType::DnsName(identity.name.as_str().try_into().unwrap()),
    ];
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
    ];
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(pki::cert_path(dir, name), cert.pem()).unwrap();
    // Owner-only, as every key must be (a key others can read is refused at load).
    fedq_certs::fsutil::write_atomic(
        &pki::key_path(dir, name),
        key.serialize_pem().as_bytes(),
        fedq_certs::fsutil::KEY_MODE,
    )
    .unwrap();
}

fn pong_handler() -> Handler {
    Arc::new(|peer, request| {
        Box::pin(async move {
            match request {
                NodeRequest::Ping => NodeResponse::Pong {
                    node: format!("court answering {}", peer.identity.name),
                },
                _ => NodeResponse::Failed {
                    code: fedq_wire::message::FailureCode::Unsupported,
                    message: "this test node only answers pings".into(),
                },
            }
        })
    })
}

struct RunningNode {
    addr: SocketAddr,
    refusals: RefusalLog,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningNode {
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .expect("the node did not stop within 60 s")
            .unwrap();
    }
}

fn start_node(dir: &Path, addr: SocketAddr) -> RunningNode {
    start_node_with(dir, addr, test_limits())
}

fn start_node_with(dir: &Path, addr: SocketAddr, limits: Limits) -> RunningNode {
    serve_node(TlsFiles::in_dir(dir, "court"), addr, limits)
}

fn serve_node(files: TlsFiles, addr: SocketAddr, limits: Limits) -> RunningNode {
    let endpoint = NodeEndpoint::bind(addr, files, limits).unwrap();
    let addr = endpoint.local_addr().unwrap();
    let refusals = endpoint.refusals();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(endpoint.serve(pong_handler(), None, async {
        let _ = stopped.await;
    }));
    RunningNode {
        addr,
        refusals,
        stop: Some(stop),
        task,
    }
}

fn localhost() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A client that presents whatever certificate it is given (or none): the attacker's view.
async fn raw_ping(
    dir: &Path,
    cert_dir: &Path,
    name: Option<&str>,
    node: SocketAddr,
) -> Result<NodeResponse, quinn::ConnectionError> {
    let trust = FederationTrust::load(&TrustFiles::in_dir(dir)).unwrap();
    let refusals = RefusalLog::default();
    let tls = match name {
        Some(name) => {
            let creds = Credentials::load_named(cert_dir, name).unwrap();
            tls::client_config(&creds, &trust, Role::Node, &[ALPN], &refusals).unwrap()
        }
        None => {
            let mut roots = rustls::RootCertStore::empty();
            let ca = std::fs::read(dir.join("ca.crt")).unwrap();
            roots
                .add(tls::read_certificates(&ca).unwrap().remove(0))
                .unwrap();
            let mut config = rustls::ClientConfig::builder_with_provider(tls::provider())
                .with_protocol_versions(&[&rustls::version::TLS13])
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
            config.alpn_protocols = vec![ALPN.to_vec()];
            config
        }
    };
    let config = quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls).unwrap()));
    let endpoint = quinn::Endpoint::client(localhost()).unwrap();
    let conn = endpoint
        .connect_with(config, node, "court")
        .unwrap()
        .await?;
    let (mut send, mut recv) = conn.open_bi().await?;
    let write = async {
        send.write_all(&frame::encode(&NodeRequest::Ping).unwrap())
            .await
            .ok();
        send.finish().ok();
    };
    write.await;
    match recv.read_to_end(frame::MAX_FRAME_LEN).await {
        Ok(bytes) => Ok(frame::decode(&bytes, frame::MAX_FRAME_LEN).unwrap()),
        Err(quinn::ReadToEndError::Read(quinn::ReadError::ConnectionLost(e))) => Err(e),
        Err(other) => panic!("unexpected stream error: {other}"),
    }
}

fn node_refused(node: &RunningNode, want: &AuthRefusal) -> AuthRefusal {
    node.refusals
        .wait_for(Duration::from_secs(5), |r| &r.reason == want)
        .unwrap_or_else(|| {
            panic!(
                "node did not record {want:?}; it recorded {:?}",
                node.refusals.snapshot()
            )
        })
        .reason
}

#[tokio::test]
async fn the_certificate_matrix_is_refused_for_the_right_reason() {
    let fed = federation();
    let node = start_node(&fed.dir, localhost());

    // The good case first: the federation's coordinator is answered.
    let ok = raw_ping(&fed.dir, &fed.dir, Some("coordinator"), node.addr)
        .await
        .unwrap();
    assert_eq!(
        ok,
        NodeResponse::Pong {
            node: "court answering coordinator".into()
        }
    );

    // (client cert dir, name, what the client is told, what the node recorded)
    let cases: Vec<(&Path, Option<&str>, AuthRefusal, AuthRefusal)> = vec![
        (
            &fed.dir,
            None,
            AuthRefusal::NoCertificate,
            AuthRefusal::NoCertificate,
        ),
        // Another CA that even took the same federation name: its certificates name our
        // CA's subject as issuer, but the signature does not verify against our CA key.
        (
            &fed.other_dir,
            Some("coordinator"),
            AuthRefusal::BadSignature,
            AuthRefusal::UnknownIssuer,
        ),
        (
            &fed.dir,
            Some("coordinator-expired"),
            AuthRefusal::NotCurrentlyValid,
            AuthRefusal::Expired,
        ),
        (
            &fed.dir,
            Some("coordinator-future"),
            AuthRefusal::NotCurrentlyValid,
            AuthRefusal::NotYetValid,
        ),
        (
            &fed.dir,
            Some("coordinator-revoked"),
            AuthRefusal::Revoked,
            AuthRefusal::Revoked,
        ),
        (
            &fed.dir,
            Some("market-regulation.licensing"),
            AuthRefusal::RoleNotAccepted,
            AuthRefusal::WrongRole {
                found: Role::Requester,
                accepted: "coordinator".into(),
            },
        ),
        // An officer's certificate signs policy bundles and may talk to the coordinator's
        // API; a node never accepts it.
        (
            &fed.dir,
            Some("officer-li"),
            AuthRefusal::RoleNotAccepted,
            AuthRefusal::WrongRole {
                found: Role::Officer,
                accepted: "coordinator".into(),
            },
        ),
        (
            &fed.dir,
            Some("coordinator-server-only"),
            AuthRefusal::WrongKeyUsage,
            AuthRefusal::WrongKeyUsage,
        ),
        // A node's certificate is a server certificate: it cannot act as a coordinator.
        (
            &fed.dir,
            Some("court"),
            AuthRefusal::WrongKeyUsage,
            AuthRefusal::WrongKeyUsage,
        ),
        (
            &fed.dir,
            Some("coordinator-impostor"),
            AuthRefusal::UnknownIssuer,
            AuthRefusal::UnknownIssuer,
        ),
    ];
    for (cert_dir, name, client_sees, node_records) in cases {
        let label = name.unwrap_or("no certificate");
        let err = raw_ping(&fed.dir, cert_dir, name, node.addr)
            .await
            .expect_err(label);
        assert_eq!(
            classify(&err),
            Some((RefusedBy::Peer, client_sees.clone())),
            "{label}: client saw {err}"
        );
        assert_eq!(node_refused(&node, &node_records), node_records, "{label}");
    }
    node.stop().await;
}

#[tokio::test]
async fn the_coordinator_surfaces_refusal_as_an_authentication_error_and_backs_off() {
    let fed = federation();
    let node = start_node(&fed.dir, localhost());
    let client = NodeClient::new(
        localhost(),
        TlsFiles {
            trust: TrustFiles::in_dir(&fed.dir),
            cert: pki::cert_path(&fed.dir, "coordinator-revoked"),
            key: pki::key_path(&fed.dir, "coordinator-revoked"),
        },
        test_limits(),
    )
    .unwrap();
    let channel = client.channel("court", node.addr);
    let err = channel
        .request(&NodeRequest::Ping, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ChannelError::Refused {
            node: "court".into(),
            side: RefusedBy::Peer,
            reason: AuthRefusal::Revoked
        }
    );
    let refusals_after_first = node.refusals.snapshot().len();
    // The second attempt is answered from the back-off, without another handshake.
    let again = channel
        .request(&NodeRequest::Ping, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_eq!(again, err);
    assert_eq!(node.refusals.snapshot().len(), refusals_after_first);
    node.stop().await;
}

#[tokio::test]
async fn a_coordinator_talks_only_to_nodes() {
    let fed = federation();
    // A server presenting the coordinator's certificate (it has server-auth usage, but the
    // role is not `node`).
    let trust = FederationTrust::load(&TrustFiles::in_dir(&fed.dir)).unwrap();
    let creds = Credentials::load_named(&fed.dir, "coordinator").unwrap();
    let tls = tls::server_config(
        &creds,
        &trust,
        &[Role::Coordinator],
        &[ALPN],
        &RefusalLog::default(),
    )
    .unwrap();
    let server = quinn::Endpoint::server(
        quinn::ServerConfig::with_crypto(Arc::new(QuicServerConfig::try_from(tls).unwrap())),
        localhost(),
    )
    .unwrap();
    let addr = server.local_addr().unwrap();
    let accept = tokio::spawn(async move {
        if let Some(incoming) = server.accept().await {
            let _ = incoming.await;
        }
    });
    let client = NodeClient::new(
        localhost(),
        TlsFiles::in_dir(&fed.dir, "coordinator"),
        test_limits(),
    )
    .unwrap();
    // Its DNS name is `coordinator`, so ask for that name: the role check must still fail.
    let err = client
        .channel("coordinator", addr)
        .request(&NodeRequest::Ping, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ChannelError::Refused {
            node: "coordinator".into(),
            side: RefusedBy::Us,
            reason: AuthRefusal::WrongRole {
                found: Role::Coordinator,
                accepted: "node".into()
            }
        }
    );
    accept.abort();
}

#[tokio::test]
async fn the_pooled_connection_survives_a_node_restart() {
    let fed = federation();
    let node = start_node(&fed.dir, localhost());
    let addr = node.addr;
    let client = NodeClient::new(
        localhost(),
        TlsFiles::in_dir(&fed.dir, "coordinator"),
        test_limits(),
    )
    .unwrap();
    let channel = client.channel("court", addr);
    let pong = NodeResponse::Pong {
        node: "court answering coordinator".into(),
    };
    assert_eq!(
        channel
            .request(&NodeRequest::Ping, Duration::from_secs(2))
            .await
            .unwrap(),
        pong
    );
    node.stop().await;
    let down = channel
        .request(&NodeRequest::Ping, Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(
        matches!(
            down,
            ChannelError::Unavailable { .. } | ChannelError::TimedOut { .. }
        ),
        "{down}"
    );
    // Same port, new process state.
    let node = start_node(&fed.dir, addr);
    assert_eq!(
        channel
            .request(&NodeRequest::Ping, Duration::from_secs(2))
            .await
            .unwrap(),
        pong
    );
    node.stop().await;
}

#[tokio::test]
async fn a_node_restarted_under_an_open_connection_is_reached_at_once() {
    // The node dies without closing its connections (as after kill -9): the coordinator's
    // pooled connection is stale. The node's stable stateless-reset key lets the first
    // packet on it be reset, and the channel reconnects within the same request.
    //
    // Both sides would notice the dead connection only after a 2-minute idle timeout (and
    // a keep-alive of 1 minute): the request's deadline of 10 s, which is generous for a
    // reconnect on loopback, can be met only if the stale connection is reset at once.
    // Without the reset the request times out on the stale connection.
    let slow_to_notice = Limits {
        idle_timeout: Duration::from_secs(120),
        keep_alive: Duration::from_secs(60),
        ..test_limits()
    };
    let deadline = Duration::from_secs(10);
    assert!(deadline < slow_to_notice.keep_alive && deadline < slow_to_notice.idle_timeout);
    let fed = federation();
    // The node runs on a runtime of its own thread, so the test can kill it whole.
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (kill, killed) = oneshot::channel::<()>();
    let (gone_tx, gone) = oneshot::channel::<()>();
    let dir = fed.dir.clone();
    let node_limits = slow_to_notice.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let endpoint =
                NodeEndpoint::bind(localhost(), TlsFiles::in_dir(&dir, "court"), node_limits)
                    .unwrap();
            addr_tx.send(endpoint.local_addr().unwrap()).unwrap();
            tokio::spawn(endpoint.serve(pong_handler(), None, std::future::pending()));
            let _ = killed.await;
        });
        drop(runtime);
        let _ = gone_tx.send(());
    });
    let addr = addr_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the node did not bind within 60 s");
    let client = NodeClient::new(
        localhost(),
        TlsFiles::in_dir(&fed.dir, "coordinator"),
        slow_to_notice.clone(),
    )
    .unwrap();
    let channel = client.channel("court", addr);
    channel
        .request(&NodeRequest::Ping, Duration::from_secs(2))
        .await
        .unwrap();
    // Kill the node's runtime: every task and socket goes, no CONNECTION_CLOSE is sent.
    kill.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(60), gone)
        .await
        .expect("the node's runtime did not stop within 60 s")
        .unwrap();
    let node = start_node_with(&fed.dir, addr, slow_to_notice);
    let answer = channel.request(&NodeRequest::Ping, deadline).await;
    assert_eq!(
        answer.unwrap(),
        NodeResponse::Pong {
            node: "court answering coordinator".into(),
        },
        "the stale connection was not replaced within the request"
    );
    node.stop().await;
}

#[tokio::test]
async fn revoking_a_coordinator_closes_its_open_connection_without_a_restart() {
    let fed = federation();
    let node = start_node(&fed.dir, localhost());
    let client = NodeClient::new(
        localhost(),
        TlsFiles::in_dir(&fed.dir, "coordinator"),
        test_limits(),
    )
    .unwrap();
    let channel = client.channel("court", node.addr);
    channel
        .request(&NodeRequest::Ping, Duration::from_secs(2))
        .await
        .unwrap();
    CertificateAuthority::open(&fed.dir)
        .unwrap()
        .revoke("coordinator")
        .unwrap();
    // The node's reloader picks the new CRL up within a few reload intervals.
    let deadline = Instant::now() + Duration::from_secs(10);
    let refused = loop {
        match channel
            .request(&NodeRequest::Ping, Duration::from_secs(2))
            .await
        {
            Ok(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Ok(_) => panic!("revoked coordinator still answered after 10 s"),
            Err(e) => break e,
        }
    };
    assert!(
        matches!(
            refused,
            ChannelError::Refused {
                reason: AuthRefusal::Revoked,
                ..
            }
        ),
        "{refused}"
    );
    node.stop().await;
}

#[tokio::test]
async fn a_node_picks_up_a_renewed_certificate_without_a_restart() {
    let fed = federation();
    let node = start_node(&fed.dir, localhost());
    let serial_of_peer = |conn: &quinn::Connection| {
        let chain = conn
            .peer_identity()
            .unwrap()
            .downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
            .unwrap();
        tls::PeerCertificate::from_chain(&chain).unwrap().serial
    };
    let connect = || async {
        let trust = FederationTrust::load(&TrustFiles::in_dir(&fed.dir)).unwrap();
        let creds = Credentials::load_named(&fed.dir, "coordinator").unwrap();
        let tls = tls::client_config(&creds, &trust, Role::Node, &[ALPN], &RefusalLog::default())
            .unwrap();
        let config = quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls).unwrap()));
        let endpoint = quinn::Endpoint::client(localhost()).unwrap();
        endpoint
            .connect_with(config, node.addr, "court")
            .unwrap()
            .await
            .unwrap()
    };
    let before = serial_of_peer(&connect().await);
    let renewed = CertificateAuthority::open(&fed.dir)
        .unwrap()
        .issue(
            Role::Node,
            "court",
            &IssueOptions {
                force: true,
                ..IssueOptions::default()
            },
        )
        .unwrap();
    assert_ne!(before, renewed.serial);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now_serving = serial_of_peer(&connect().await);
        if now_serving == renewed.serial {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node still serves the old certificate"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    node.stop().await;
}

#[tokio::test]
async fn malformed_and_oversized_frames_close_only_their_stream() {
    let fed = federation();
    let node = start_node(&fed.dir, localhost());
    let trust = FederationTrust::load(&TrustFiles::in_dir(&fed.dir)).unwrap();
    let creds = Credentials::load_named(&fed.dir, "coordinator").unwrap();
    let tls =
        tls::client_config(&creds, &trust, Role::Node, &[ALPN], &RefusalLog::default()).unwrap();
    let config = quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls).unwrap()));
    let endpoint = quinn::Endpoint::client(localhost()).unwrap();
    let conn = endpoint
        .connect_with(config, node.addr, "court")
        .unwrap()
        .await
        .unwrap();

    async fn send_raw(
        conn: &quinn::Connection,
        bytes: &[u8],
        finish: bool,
    ) -> Result<Vec<u8>, u64> {
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        if !bytes.is_empty() {
            send.write_all(bytes).await.unwrap();
        }
        if finish {
            send.finish().unwrap();
        }
        match recv.read_to_end(frame::MAX_FRAME_LEN).await {
            Ok(bytes) => Ok(bytes),
            Err(quinn::ReadToEndError::Read(quinn::ReadError::Reset(code))) => {
                Err(code.into_inner())
            }
            Err(other) => panic!("unexpected: {other} for {bytes:?}"),
        }
    }
    let ping = frame::encode(&NodeRequest::Ping).unwrap();
    let mut bad_magic = ping.clone();
    bad_magic[0] = b'X';
    let mut future_version = ping.clone();
    future_version[2] = 9;
    let mut oversized = ping[..HEADER_LEN].to_vec();
    oversized[3..7].copy_from_slice(&u32::MAX.to_be_bytes());
    let mut bad_payload = ping[..HEADER_LEN].to_vec();
    bad_payload[3..7].copy_from_slice(&3u32.to_be_bytes());
    bad_payload.extend_from_slice(&[0xff, 0xff, 0xff]);
    let cases: Vec<(&str, Vec<u8>, bool, u32)> = vec![
        ("bad magic", bad_magic, true, code::FRAME_MALFORMED),
        (
            "future version",
            future_version,
            true,
            code::VERSION_UNSUPPORTED,
        ),
        ("oversized", oversized, false, code::FRAME_TOO_LARGE),
        ("bad payload", bad_payload, true, code::FRAME_MALFORMED),
        (
            "truncated",
            ping[..ping.len() - 1].to_vec(),
            true,
            code::FRAME_MALFORMED,
        ),
        // Sends part of a header and then nothing: the read deadline frees the stream.
        ("stalled", ping[..3].to_vec(), false, code::STREAM_TIMEOUT),
    ];
    for (label, bytes, finish, want) in cases {
        assert_eq!(
            send_raw(&conn, &bytes, finish).await,
            Err(u64::from(want)),
            "{label}"
        );
    }
    // The same connection still serves a well-formed request.
    let answer = send_raw(&conn, &ping, true).await.unwrap();
    assert!(matches!(
        frame::decode::<NodeResponse>(&answer, frame::MAX_FRAME_LEN).unwrap(),
        NodeResponse::Pong { .. }
    ));
    node.stop().await;
}

/// A client that presents `name`'s certificate but checks the node against the CA alone
/// (no CRL of its own), so that only the node's judgement is tested.
async fn ping_without_own_crl(
    dir: &Path,
    name: &str,
    node: SocketAddr,
) -> Result<NodeResponse, quinn::ConnectionError> {
    let mut roots = rustls::RootCertStore::empty();
    let ca = std::fs::read(dir.join("ca.crt")).unwrap();
    roots
        .add(tls::read_certificates(&ca).unwrap().remove(0))
        .unwrap();
    let creds = Credentials::load_named(dir, name).unwrap();
    let (chain, key) = creds.chain_and_key();
    let mut config = rustls::ClientConfig::builder_with_provider(tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![ALPN.to_vec()];
    let config = quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(config).unwrap()));
    let endpoint = quinn::Endpoint::client(localhost()).unwrap();
    let conn = endpoint
        .connect_with(config, node, "court")
        .unwrap()
        .await?;
    let (mut send, mut recv) = conn.open_bi().await?;
    send.write_all(&frame::encode(&NodeRequest::Ping).unwrap())
        .await
        .ok();
    send.finish().ok();
    match tokio::time::timeout(
        Duration::from_secs(5),
        recv.read_to_end(frame::MAX_FRAME_LEN),
    )
    .await
    .expect("no answer and no close within 5 s")
    {
        Ok(bytes) => Ok(frame::decode(&bytes, frame::MAX_FRAME_LEN).unwrap()),
        Err(quinn::ReadToEndError::Read(quinn::ReadError::ConnectionLost(e))) => Err(e),
        Err(other) => panic!("unexpected stream error: {other}"),
    }
}

#[tokio::test]
async fn an_older_crl_put_back_does_not_let_a_revoked_certificate_work_again() {
    let fed = federation();
    let crl = fed.dir.join("crl.pem");
    let before = std::fs::read(&crl).unwrap();
    let node = start_node(&fed.dir, localhost());
    ping_without_own_crl(&fed.dir, "coordinator", node.addr)
        .await
        .unwrap();
    let ca = CertificateAuthority::open(&fed.dir).unwrap();
    ca.revoke("coordinator").unwrap();
    // The node's reloader picks the revocation up.
    let deadline = Instant::now() + Duration::from_secs(10);
    while ping_without_own_crl(&fed.dir, "coordinator", node.addr)
        .await
        .is_ok()
    {
        assert!(
            Instant::now() < deadline,
            "revocation not picked up in 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The CRL from before the revocation, put back.
    std::fs::write(&crl, &before).unwrap();
    // Ten reload intervals: the node has seen the file change.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let refused_before = node
        .refusals
        .snapshot()
        .iter()
        .filter(|r| r.reason == AuthRefusal::Revoked)
        .count();
    let outcome = ping_without_own_crl(&fed.dir, "coordinator", node.addr).await;
    assert!(
        outcome.is_err(),
        "revoked coordinator let in again: {outcome:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while node
        .refusals
        .snapshot()
        .iter()
        .filter(|r| r.reason == AuthRefusal::Revoked)
        .count()
        == refused_before
    {
        assert!(
            Instant::now() < deadline,
            "the node did not refuse it as revoked"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The coordinator's side, reloaded by hand: a node revoked stays revoked when an
    // older CRL is put back.
    ca.issue(Role::Coordinator, "coordinator-2", &IssueOptions::default())
        .unwrap();
    ca.refresh_crl().unwrap();
    let unrevoked = std::fs::read(&crl).unwrap();
    let client = NodeClient::new(
        localhost(),
        TlsFiles::in_dir(&fed.dir, "coordinator-2"),
        test_limits(),
    )
    .unwrap();
    client
        .channel("court", node.addr)
        .request(&NodeRequest::Ping, Duration::from_secs(2))
        .await
        .unwrap();
    ca.revoke("court").unwrap();
    assert!(client.reload_if_changed().unwrap());
    std::fs::write(&crl, &unrevoked).unwrap();
    assert!(client.reload_if_changed().unwrap());
    // A fresh channel (no back-off from earlier refusals) must still refuse the node.
    let refused = client
        .channel("court", node.addr)
        .request(&NodeRequest::Ping, Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            ChannelError::Refused {
                reason: AuthRefusal::Revoked,
                ..
            }
        ),
        "{refused}"
    );
    node.stop().await;
}

#[tokio::test]
async fn a_node_restarted_on_an_older_crl_still_refuses_the_revoked_coordinator() {
    let fed = federation();
    let crl = fed.dir.join("crl.pem");
    let before = std::fs::read(&crl).unwrap();
    // As `fedq node serve` configures it: the CRL in force remembered in the node's
    // policy state directory.
    let state =
        fedq_certs::tls::remembered_crl_in(&fed.dir.parent().unwrap().join("data/court-policy"));
    let files = || {
        let mut files = TlsFiles::in_dir(&fed.dir, "court");
        files.trust = files.trust.remembering_crl_in(state.clone());
        files
    };
    let node = serve_node(files(), localhost(), test_limits());
    ping_without_own_crl(&fed.dir, "coordinator", node.addr)
        .await
        .unwrap();
    CertificateAuthority::open(&fed.dir)
        .unwrap()
        .revoke("coordinator")
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while ping_without_own_crl(&fed.dir, "coordinator", node.addr)
        .await
        .is_ok()
    {
        assert!(
            Instant::now() < deadline,
            "revocation not picked up in 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    node.stop().await;

    // The CRL from before the revocation put back while the node is down, then a restart.
    std::fs::write(&crl, &before).unwrap();
    let node = serve_node(files(), localhost(), test_limits());
    let outcome = ping_without_own_crl(&fed.dir, "coordinator", node.addr).await;
    assert!(
        outcome.is_err(),
        "revoked coordinator let in after a restart on an older CRL: {outcome:?}"
    );
    assert_eq!(
        node_refused(&node, &AuthRefusal::Revoked),
        AuthRefusal::Revoked
    );
    node.stop().await;
    // The control: a node that remembers no CRL takes the older one and lets it in.
    let forgetful = start_node(&fed.dir, localhost());
    ping_without_own_crl(&fed.dir, "coordinator", forgetful.addr)
        .await
        .unwrap();
    forgetful.stop().await;
}

#[tokio::test]
async fn a_stale_crl_refuses_new_connections_and_says_how_to_refresh_it() {
    let fed = federation();
    let ca = CertificateAuthority::open(&fed.dir).unwrap();
    let now = OffsetDateTime::now_utc();
    ca.refresh_crl_with_validity(Some((
        now - time::Duration::hours(2),
        now - time::Duration::hours(1),
    )))
    .unwrap();
    // Default grace 0: the node refuses every new coordinator, with the reason.
    let node = start_node(&fed.dir, localhost());
    let outcome = ping_without_own_crl(&fed.dir, "coordinator", node.addr).await;
    assert!(outcome.is_err(), "let in under a stale CRL: {outcome:?}");
    let refusal = node
        .refusals
        .wait_for(Duration::from_secs(5), |r| {
            matches!(r.reason, AuthRefusal::StaleCrl(_))
        })
        .unwrap_or_else(|| panic!("no stale-CRL refusal: {:?}", node.refusals.snapshot()));
    let why = refusal.reason.to_string();
    assert!(
        why.contains("crl.pem") && why.contains("out of date") && why.contains("fedq certs crl"),
        "{why}"
    );
    // The coordinator's side refuses the node for the same reason.
    let client = NodeClient::new(
        localhost(),
        TlsFiles::in_dir(&fed.dir, "coordinator"),
        test_limits(),
    )
    .unwrap();
    let refused = client
        .channel("court", node.addr)
        .request(&NodeRequest::Ping, Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(
        matches!(
            &refused,
            ChannelError::Refused {
                reason: AuthRefusal::StaleCrl(_),
                ..
            }
        ),
        "{refused}"
    );
    node.stop().await;

    // A grace period longer than the staleness lets connections in.
    let mut files = TlsFiles::in_dir(&fed.dir, "court");
    files.trust.crl_grace = Duration::from_secs(3 * 3600);
    let endpoint = NodeEndpoint::bind(localhost(), files, test_limits()).unwrap();
    let addr = endpoint.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(endpoint.serve(pong_handler(), None, async {
        let _ = stopped.await;
    }));
    ping_without_own_crl(&fed.dir, "coordinator", addr)
        .await
        .unwrap();
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .expect("the node did not stop within 60 s")
        .unwrap();

    // Without grace, refreshing the CRL (`fedq certs crl`) lets them in again, no restart.
    let node = start_node(&fed.dir, localhost());
    assert!(ping_without_own_crl(&fed.dir, "coordinator", node.addr)
        .await
        .is_err());
    ca.refresh_crl().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while ping_without_own_crl(&fed.dir, "coordinator", node.addr)
        .await
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "refreshed CRL not picked up in 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    node.stop().await;
}
