//! The coordinator's HTTPS side against revocation lists that go back or go stale, with a
//! real `fedq coordinator serve` process on 127.0.0.1 and its log: an older `crl.pem` put
//! back does not let a revoked requester in again (and is refused once, in the log), not
//! even after a restart (the coordinator remembers the newest CRL it accepted); a CRL
//! past its `nextUpdate` refuses new connections with the reason and the fix in the log,
//! until `fedq certs crl` refreshes it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fedq_certs::pki::CertificateAuthority;
use fedq_sandbox::Federation;
use fedq_testkit::federation;
use support::process::{run_ok, FedqProcess};

/// Whether a new HTTPS connection presenting `name`'s certificate gets an HTTP answer
/// from `/health` (TLS 1.3: a refused client learns it when it first uses the connection).
async fn admitted(fed: &Federation, name: &str) -> bool {
    let pki = fed.layout.pki();
    let ca = std::fs::read(pki.join("ca.crt")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for c in fedq_certs::tls::read_certificates(&ca).unwrap() {
        roots.add(c).unwrap();
    }
    let creds = fedq_certs::Credentials::load_named(&pki, name).unwrap();
    let (chain, key) = creds.chain_and_key();
    let config = rustls::ClientConfig::builder_with_provider(fedq_certs::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    let attempt = async {
        let tcp = tokio::net::TcpStream::connect(fed.coordinator).await.ok()?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(
                rustls::pki_types::ServerName::try_from("localhost").unwrap(),
                tcp,
            )
            .await
            .ok()?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
                .await
                .ok()?;
        tokio::spawn(conn);
        let req = hyper::Request::get("/health")
            .header("host", "localhost")
            .body(http_body_util::Empty::<hyper::body::Bytes>::new())
            .unwrap();
        sender.send_request(req).await.ok().map(|_| ())
    };
    tokio::time::timeout(Duration::from_secs(10), attempt)
        .await
        .expect("no answer and no refusal within 10 s")
        .is_some()
}

/// Waits (at most 20 s) until `cond` holds.
async fn eventually(what: &str, mut cond: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond().await {
        assert!(Instant::now() < deadline, "not within 20 s: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn log_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_crl_is_refused_and_a_stale_one_closes_the_door_until_it_is_refreshed() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path(), 50, 5);
    let pki = fed.layout.pki();
    let crl = pki.join("crl.pem");
    let ca = CertificateAuthority::open(&pki).unwrap();
    let log = tmp.path().join("coordinator.log");
    let coordinator = FedqProcess::coordinator(&fed.layout.coordinator_config(), Some(&log));
    let licensing = "market-regulation.licensing";
    let other = fed
        .requesters
        .iter()
        .find(|r| r.as_str() != licensing)
        .unwrap()
        .clone();
    assert!(admitted(&fed, licensing).await);

    // Revoked: refused once the CRL is reloaded.
    let before = std::fs::read(&crl).unwrap();
    ca.revoke(licensing).unwrap();
    eventually("the revocation is in force", async || {
        !admitted(&fed, licensing).await
    })
    .await;

    // The CRL from before the revocation put back: refused, logged, and the requester
    // stays out.
    std::fs::write(&crl, &before).unwrap();
    eventually("the older CRL is refused in the log", async || {
        log_text(&log).contains("refused the CRL")
    })
    .await;
    assert!(
        !admitted(&fed, licensing).await,
        "revoked requester let in again"
    );
    assert!(admitted(&fed, &other).await);
    // Logged once, in one line, though both sides reload it (the HTTPS acceptor and the
    // QUIC client), and not at every reload tick (the reload interval is 2 s).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let text = log_text(&log);
    let lines = text
        .lines()
        .filter(|l| l.contains("refused the CRL"))
        .count();
    assert_eq!(lines, 1, "{text}");
    assert!(
        text.contains("older than the CRL in force") && text.contains("fedq certs crl"),
        "{text}"
    );
    drop(coordinator);

    // A CRL past its nextUpdate, with the default grace of 0: new connections refused,
    // the log says why and how to refresh. It is back-dated (thisUpdate 2 h ago), so a
    // coordinator that remembers the CRL it had would refuse it as older: this one
    // starts with its remembered CRL gone, as a coordinator set up on a stale CRL.
    let now = time::OffsetDateTime::now_utc();
    ca.refresh_crl_with_validity(Some((
        now - time::Duration::hours(2),
        now - time::Duration::hours(1),
    )))
    .unwrap();
    let config =
        fedq_coordinator::config::CoordinatorConfig::load(&fed.layout.coordinator_config())
            .unwrap();
    std::fs::remove_file(fedq_certs::tls::remembered_crl_in(&config.policy_state)).unwrap();
    let log = tmp.path().join("coordinator-stale.log");
    let _coordinator = FedqProcess::coordinator(&fed.layout.coordinator_config(), Some(&log));
    assert!(!admitted(&fed, &other).await, "let in under a stale CRL");
    eventually("the refusal is logged", async || {
        log_text(&log).contains("peer refused")
    })
    .await;
    let text = log_text(&log);
    assert!(
        text.contains("crl.pem") && text.contains("out of date") && text.contains("fedq certs crl"),
        "{text}"
    );
    // `fedq certs crl` re-signs it; the running coordinator picks it up.
    run_ok(
        support::process::fedq()
            .args(["certs", "crl", "--dir"])
            .arg(&pki),
    );
    eventually("the refreshed CRL lets requesters in", async || {
        admitted(&fed, &other).await
    })
    .await;
    assert!(!admitted(&fed, licensing).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_restarted_on_an_older_crl_keeps_the_revocation() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path(), 50, 6);
    let pki = fed.layout.pki();
    let crl = pki.join("crl.pem");
    let ca = CertificateAuthority::open(&pki).unwrap();
    let licensing = "market-regulation.licensing";
    let other = fed
        .requesters
        .iter()
        .find(|r| r.as_str() != licensing)
        .unwrap()
        .clone();
    let config =
        fedq_coordinator::config::CoordinatorConfig::load(&fed.layout.coordinator_config())
            .unwrap();
    let remembered = fedq_certs::tls::remembered_crl_in(&config.policy_state);

    // CRL n in force, then CRL n+1 revoking the requester, taken while it runs.
    let before = std::fs::read(&crl).unwrap();
    let mut coordinator = FedqProcess::coordinator(&fed.layout.coordinator_config(), None);
    assert!(admitted(&fed, licensing).await);
    ca.revoke(licensing).unwrap();
    let revoking = std::fs::read(&crl).unwrap();
    eventually("the revocation is in force", async || {
        !admitted(&fed, licensing).await
    })
    .await;
    assert_eq!(std::fs::read(&remembered).unwrap(), revoking);
    tokio::task::block_in_place(|| coordinator.terminate());
    drop(coordinator);

    // Stopped; CRL n put back; started again: the revocation holds, the refusal is in
    // the log once, naming the fix, and the remembered CRL is untouched.
    std::fs::write(&crl, &before).unwrap();
    let log = tmp.path().join("coordinator-restarted.log");
    let _coordinator = FedqProcess::coordinator(&fed.layout.coordinator_config(), Some(&log));
    assert!(
        !admitted(&fed, licensing).await,
        "revoked requester let in after a restart on an older CRL"
    );
    assert!(admitted(&fed, &other).await);
    let text = log_text(&log);
    let refused: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("refused the CRL"))
        .collect();
    assert_eq!(refused.len(), 1, "{text}");
    assert!(
        refused.iter().all(|l| l.contains("fedq certs crl")
            && l.contains("crl-in-force.pem")
            && l.contains("older than the CRL in force")),
        "{text}"
    );
    assert_eq!(std::fs::read(&remembered).unwrap(), revoking);
}
