//! The requester API end to end over real sockets: who gets in, what bad input gets, what
//! is registered, and what the operator sees.

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
use support::process::{output_within, COMMAND_LIMIT};

use fedq_certs::pki::{CertificateAuthority, IssueOptions};
use fedq_certs::{AuthRefusal, Role};
use fedq_sandbox::{Federation, Running, LICENSING_BASIS, LICENSING_CASE};
use fedq_testkit::federation;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

/// A persistent HTTPS connection presenting `cert` (or no certificate).
struct Conn {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    /// The connection's task: why it ended (a TLS alert) when a request fails.
    driver: tokio::task::JoinHandle<Result<(), hyper::Error>>,
    /// The same certificate's honest client, which holds its sessions with the nodes and
    /// makes the proofs `post_proven` attaches (sessions belong to the requester, not to
    /// one connection).
    prover: Option<fedq_coordinator::client::ApiConnection>,
}

async fn connect(fed: &Federation, cert_dir: &Path, name: Option<&str>) -> Result<Conn, String> {
    let ca = std::fs::read(fed.layout.pki().join("ca.crt")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for c in fedq_certs::tls::read_certificates(&ca).unwrap() {
        roots.add(c).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(fedq_certs::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots);
    let config = match name {
        Some(name) => {
            let creds = fedq_certs::Credentials::load_named(cert_dir, name).unwrap();
            let (chain, key) = creds.chain_and_key();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(fed.coordinator)
        .await
        .map_err(|e| e.to_string())?;
    let tls = connector
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .map_err(|e| e.to_string())?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| e.to_string())?;
    let driver = tokio::spawn(conn);
    let prover = match name {
        Some(name) => fedq_coordinator::client::ApiConnection::connect(
            &format!("https://{}", fed.coordinator),
            &cert_dir.join(format!("{name}.crt")),
            &cert_dir.join(format!("{name}.key")),
            &fed.layout.pki().join("ca.crt"),
        )
        .await
        .ok(),
        None => None,
    };
    Ok(Conn {
        sender,
        driver,
        prover,
    })
}

impl Conn {
    /// Opens the requester's sessions with every node now (they are otherwise opened by
    /// the first `post_proven`).
    async fn open_sessions(&mut self) {
        let prover = self.prover.as_mut().expect("a requester connection");
        prover.open_sessions().await.unwrap();
    }

    /// Posts a query body with the requester's proofs for every node, as `fedq query`
    /// sends it.
    async fn post_proven(&mut self, body: &[u8]) -> Result<(u16, Value), String> {
        // The requester's own form of the query (subject in it), as `fedq query` reads it.
        let query: fedq_coordinator::query::QueryRequest = serde_json::from_slice(body).unwrap();
        let prover = self.prover.as_mut().expect("a requester connection");
        let proven = prover.prove(&query).await.map_err(|e| e.to_string())?;
        let (status, relayed) = self.post(&serde_json::to_vec(&proven).unwrap()).await?;
        // What the coordinator answered holds no subject: every node's answer is sealed.
        assert!(
            query.subject.is_empty() || !relayed.to_string().contains(&query.subject),
            "the coordinator's answer names the subject"
        );
        // The requester side opens each node's sealed answer, as `fedq query` does.
        let prover = self.prover.as_ref().expect("a requester connection");
        Ok((status, prover.conclude(&proven, status, relayed)))
    }

    async fn post(&mut self, body: &[u8]) -> Result<(u16, Value), String> {
        let req = hyper::Request::post("/v1/query")
            .header("host", "localhost")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::copy_from_slice(body)))
            .unwrap();
        // An HTTP/1.1 connection takes the next request only once it has finished the last
        // response; sending earlier fails with "connection was not ready".
        let ready = self.sender.ready().await;
        let resp = match ready {
            Ok(()) => self.sender.send_request(req).await,
            Err(e) => Err(e),
        };
        let resp = match resp {
            Ok(resp) => resp,
            Err(e) => {
                // The request was cancelled because the connection ended: say why.
                let why =
                    match tokio::time::timeout(Duration::from_secs(10), &mut self.driver).await {
                        Ok(Ok(Err(conn_error))) => with_sources(&conn_error),
                        other => format!("{other:?}"),
                    };
                return Err(format!("{}; the connection ended: {why}", with_sources(&e)));
            }
        };
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        // Every refusal is a problem document (RFC 9457) of one of the documented kinds.
        if status >= 400 {
            assert_eq!(content_type, "application/problem+json", "{status}: {body}");
            assert_eq!(body["status"], status, "{body}");
            let kind = body["type"].as_str().unwrap_or_default();
            assert!(
                fedq_coordinator::problem::Kind::of_uri(kind).is_some(),
                "undocumented problem type in {body}"
            );
            assert!(
                body["title"].is_string() && body["detail"].is_string(),
                "{body}"
            );
        }
        Ok((status, body))
    }
}

/// A refused certificate: its directory, name (none: no certificate), what it is, the
/// alert the client receives, and the reason the coordinator records.
type RefusedCase<'a> = (
    &'a Path,
    Option<&'a str>,
    &'a str,
    &'a str,
    Option<AuthRefusal>,
);

/// An error with its sources: a TLS alert is the source of hyper's "connection closed".
fn with_sources(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

fn blacklist_query(subject: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "subject": subject,
        "purpose": "administrative-licensing",
        "legal_basis": LICENSING_BASIS, "case_reference": LICENSING_CASE,
        "view": "blacklist-check"
    }))
    .unwrap()
}

fn audit_entries(path: &Path) -> u64 {
    fedq_audit::verify(path).unwrap().entries
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_gets_in() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path(), 100, 3);
    let pki = fed.layout.pki();
    let ca = CertificateAuthority::open(&pki).unwrap();
    let now = time::OffsetDateTime::now_utc();
    ca.issue(
        Role::Requester,
        "expired.office",
        &IssueOptions {
            validity: Some((
                now - time::Duration::days(30),
                now - time::Duration::days(1),
            )),
            ..IssueOptions::default()
        },
    )
    .unwrap();
    ca.issue(
        Role::Requester,
        "future.office",
        &IssueOptions {
            validity: Some((
                now + time::Duration::days(1),
                now + time::Duration::days(30),
            )),
            ..IssueOptions::default()
        },
    )
    .unwrap();
    ca.issue(
        Role::Requester,
        "server-only.office",
        &IssueOptions {
            extended_key_usages: Some(vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth]),
            ..IssueOptions::default()
        },
    )
    .unwrap();
    let other = tmp.path().join("other-ca");
    CertificateAuthority::init(&other, "changsha", false)
        .unwrap()
        .issue(
            Role::Requester,
            "market-regulation.licensing",
            &IssueOptions::default(),
        )
        .unwrap();

    let running = Running::start(&fed, None).await.unwrap();
    let subject = fed.scenario.blacklisted.resident_id.clone();

    // The good case.
    let mut good = connect(&fed, &pki, Some("market-regulation.licensing"))
        .await
        .unwrap();
    let (status, answer) = good.post_proven(&blacklist_query(&subject)).await.unwrap();
    assert_eq!(status, 200, "{answer}");

    // Each of these is refused at the handshake (TLS 1.3: the client learns it when it
    // first uses the connection), for its own reason: the coordinator's verifier records
    // it, and the client gets the matching alert. (rustls itself refuses a client without
    // a certificate before the verifier runs; that one is checked by its alert.)
    let refusals = running.coordinator_refusals();
    // (certificates, name, what, the client's alert, the coordinator's recorded reason)
    let refused: [RefusedCase<'_>; 6] = [
        (&pki, None, "no certificate", "CertificateRequired", None),
        (
            &other,
            Some("market-regulation.licensing"),
            "another CA",
            // Same CA name, other key: the issuer is found by name, its signature fails.
            "DecryptError",
            Some(AuthRefusal::UnknownIssuer),
        ),
        (
            &pki,
            Some("expired.office"),
            "expired",
            "CertificateExpired",
            Some(AuthRefusal::Expired),
        ),
        (
            &pki,
            Some("future.office"),
            "not yet valid",
            "CertificateExpired",
            Some(AuthRefusal::NotYetValid),
        ),
        (
            &pki,
            Some("server-only.office"),
            "wrong key usage",
            "UnsupportedCertificate",
            Some(AuthRefusal::WrongKeyUsage),
        ),
        // A node's certificate is for serving QUIC (server auth only): refused for its
        // key usage before its role is looked at.
        (
            &pki,
            Some("court"),
            "a node's certificate",
            "UnsupportedCertificate",
            Some(AuthRefusal::WrongKeyUsage),
        ),
    ];
    for (dir, name, label, alert, reason) in refused {
        let before = refusals.snapshot().len();
        let outcome = match connect(&fed, dir, name).await {
            Err(e) => Err(e),
            Ok(mut c) => c.post(&blacklist_query(&subject)).await,
        };
        let error = outcome.expect_err(&format!("{label} was let in"));
        assert!(error.contains(alert), "{label}: {error}");
        if let (Some(name), Some(reason)) = (name, reason) {
            let recorded = tokio::task::block_in_place(|| {
                refusals.wait_for(Duration::from_secs(5), |r| {
                    r.reason == reason && r.claimed.as_deref().is_some_and(|c| c.contains(name))
                })
            });
            assert!(
                recorded.is_some(),
                "{label}: not recorded as such: {:?}",
                &refusals.snapshot()[before..]
            );
        }
    }

    // An officer gets in (officers publish policy bundles) but cannot query.
    let mut officer = connect(&fed, &pki, Some("officer-zhang")).await.unwrap();
    let (status, body) = officer.post(&blacklist_query(&subject)).await.unwrap();
    assert_eq!(status, 403, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("officer certificate cannot query"),
        "{body}"
    );
    assert_eq!(body["type"], "urn:fedq:problem:role-not-allowed", "{body}");
    assert_eq!(body["accepted"], serde_json::json!(["requester"]), "{body}");

    // A requester revoked while its connection is open is refused on that connection
    // within one CRL reload.
    ca.revoke("market-regulation.licensing").unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = good.post_proven(&blacklist_query(&subject)).await.unwrap();
        if status == 403 {
            assert!(
                body["detail"].as_str().unwrap().contains("revoked"),
                "{body}"
            );
            assert_eq!(
                body["type"], "urn:fedq:problem:certificate-revoked",
                "{body}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "revoked requester still answered"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // And a new connection with it no longer gets through the handshake.
    let again = match connect(&fed, &pki, Some("market-regulation.licensing")).await {
        Err(e) => Err(e),
        Ok(mut c) => c.post(&blacklist_query(&subject)).await,
    };
    let error = again.expect_err("a revoked requester got through a new handshake");
    assert!(error.contains("CertificateRevoked"), "{error}");
    assert!(
        refusals
            .snapshot()
            .iter()
            .any(|r| r.reason == AuthRefusal::Revoked
                && r.claimed
                    .as_deref()
                    .is_some_and(|c| c.contains("market-regulation.licensing"))),
        "{:?}",
        refusals.snapshot()
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_4xx_an_audit_entry_and_reaches_no_node() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path(), 100, 4);
    let running = Running::start(&fed, None).await.unwrap();
    let pki = fed.layout.pki();
    let coordinator_audit = fed.layout.root.join("audit/coordinator-audit.db");
    let node_audits: Vec<_> = fed
        .nodes
        .keys()
        .map(|n| fed.layout.root.join(format!("audit/{n}-audit.db")))
        .collect();
    let node_entries =
        |paths: &[std::path::PathBuf]| -> u64 { paths.iter().map(|p| audit_entries(p)).sum() };
    let nodes_before = node_entries(&node_audits);
    let subject = fed.scenario.blacklisted.resident_id.clone();
    let mut bad_check = subject.clone();
    let last = bad_check.pop().unwrap();
    bad_check.push(if last == '1' { '2' } else { '1' });

    let cases: Vec<(Vec<u8>, u16, &str, &str)> = vec![
        (b"{not json".to_vec(), 400, "malformed query JSON", "malformed-request"),
        // The person in clear, valid or not: the coordinator is never the one to see it.
        (serde_json::to_vec(&json!({"subject": subject, "purpose": "administrative-licensing", "legal_basis": LICENSING_BASIS, "case_reference": LICENSING_CASE, "view": "blacklist-check"})).unwrap(), 400, "`subject` is never sent to the coordinator", "malformed-request"),
        (serde_json::to_vec(&json!({"subject": bad_check, "purpose": "administrative-licensing", "view": "blacklist-check"})).unwrap(), 400, "`subject` is never sent to the coordinator", "malformed-request"),
        (serde_json::to_vec(&json!({"purpose": "administrative-licensing", "legal_basis": LICENSING_BASIS, "case_reference": LICENSING_CASE, "view": "everything"})).unwrap(), 400, "unknown view; the policy's views are", "unknown-view"),
        (serde_json::to_vec(&json!({"purpose": "fishing", "legal_basis": LICENSING_BASIS, "case_reference": LICENSING_CASE, "view": "blacklist-check"})).unwrap(), 403, "unknown purpose; the policy's purposes are", "unknown-purpose"),
        (serde_json::to_vec(&json!({"purpose": "administrative-licensing", "view": "blacklist-check"})).unwrap(), 403, "requires a legal basis", "legal-basis-required"),
        // A requester cannot name itself as someone else: there is no such field.
        (serde_json::to_vec(&json!({"requester": "court.enforcement", "purpose": "judgment-enforcement", "legal_basis": "x", "view": "blacklist-check"})).unwrap(), 400, "unknown field; a query has only the fields", "malformed-request"),
        (serde_json::to_vec(&json!({"purpose": "administrative-licensing", "legal_basis": LICENSING_BASIS, "case_reference": LICENSING_CASE, "datasets": ["court.dishonest_debtors.no_such_field"]})).unwrap(), 400, "unknown field of dataset `court.dishonest_debtors`", "unknown-field"),
        // A valid query without the requester's proofs: refused before any node is asked.
        (serde_json::to_vec(&json!({"purpose": "administrative-licensing", "legal_basis": LICENSING_BASIS, "case_reference": LICENSING_CASE, "view": "blacklist-check"})).unwrap(), 400, "carries no requester proof for node(s)", "proof-missing"),
        (serde_json::to_vec(&json!({"purpose": "administrative-licensing", "legal_basis": LICENSING_BASIS, "case_reference": LICENSING_CASE, "view": "blacklist-check", "proofs": {"fishing": "a.b.c"}})).unwrap(), 400, "`proofs` names a node this coordinator does not know", "malformed-request"),
        // A proof without the subject sealed to its node.
        (serde_json::to_vec(&json!({"purpose": "administrative-licensing", "legal_basis": LICENSING_BASIS, "case_reference": LICENSING_CASE, "view": "blacklist-check", "proofs": {"court": "a.b.c", "tax": null, "hrss": null}})).unwrap(), 400, "carries no sealed subject for node(s) court", "malformed-request"),
        (vec![b' '; 80 * 1024], 413, "request body over", "body-too-large"),
    ];
    let n_cases = cases.len() as u64;
    let coordinator_before = audit_entries(&coordinator_audit);
    for (body, want, reason, kind) in cases {
        let mut conn = connect(&fed, &pki, Some("market-regulation.licensing"))
            .await
            .unwrap();
        let (status, answer) = conn
            .post(&body)
            .await
            .unwrap_or_else(|e| panic!("expecting {want} `{reason}`: {e}"));
        assert_eq!(status, want, "{answer}");
        assert_eq!(
            answer["type"],
            format!("urn:fedq:problem:{kind}"),
            "{answer}"
        );
        match kind {
            // What the policy accepts, by name, for a program to correct the query.
            "unknown-purpose" => {
                assert_eq!(answer["field"], "purpose", "{answer}");
                assert!(answer["accepted"]
                    .as_array()
                    .is_some_and(|a| a.contains(&json!("administrative-licensing"))));
            }
            "unknown-view" => {
                assert!(answer["accepted"]
                    .as_array()
                    .is_some_and(|a| a.contains(&json!("blacklist-check"))));
            }
            "legal-basis-required" => assert_eq!(answer["field"], "legal_basis"),
            "body-too-large" => assert!(answer["limit_bytes"].as_u64().is_some(), "{answer}"),
            _ => {}
        }
        // The whole body, whatever its fields are called: the reason must be in it, and
        // nothing the client typed may be (an absent field cannot pass for a clean one).
        let body = answer.to_string();
        assert!(
            !reason.is_empty() && body.contains(reason),
            "expected `{reason}` in `{body}`"
        );
        assert!(
            !body.contains(&subject) && !body.contains(&bad_check),
            "an error echoed the subject: {body}"
        );
        for typed in ["everything", "fishing", "no_such_field", "`requester`"] {
            assert!(!body.contains(typed), "an error echoed `{typed}`: {body}");
        }
    }
    // Every refusal is registered; no node was asked.
    assert_eq!(
        audit_entries(&coordinator_audit),
        coordinator_before + n_cases
    );
    assert_eq!(node_entries(&node_audits), nodes_before);
    let refusals =
        fedq_audit::list(&coordinator_audit, &fedq_audit::ListFilter::default()).unwrap();
    assert!(refusals
        .iter()
        .rev()
        .take(n_cases as usize)
        .all(|e| e.record.kind == fedq_audit::EntryKind::Refusal));

    // A good query is registered by the coordinator and by each node asked, each node
    // under its own id, which the coordinator's entry maps.
    let mut conn = connect(&fed, &pki, Some("market-regulation.licensing"))
        .await
        .unwrap();
    let (status, answer) = conn.post_proven(&blacklist_query(&subject)).await.unwrap();
    assert_eq!(status, 200);
    let query_id = answer["query_id"].as_str().unwrap();
    let coordinator_entries =
        fedq_audit::list(&coordinator_audit, &fedq_audit::ListFilter::default()).unwrap();
    let last = coordinator_entries.last().unwrap();
    assert_eq!(
        (last.record.kind.as_str(), last.record.query_id.as_str()),
        ("query", query_id)
    );
    assert_eq!(last.record.requester, "market-regulation.licensing");
    assert_eq!(last.record.legal_basis.as_deref(), Some(LICENSING_BASIS));
    assert!(!last.record.subject.contains(&subject[..6]));
    let court = fedq_audit::list(
        &fed.layout.root.join("audit/court-audit.db"),
        &fedq_audit::ListFilter::default(),
    )
    .unwrap();
    assert_eq!(
        court.last().unwrap().record.query_id,
        last.record.node_query_ids["court"]
    );
    assert_ne!(court.last().unwrap().record.query_id, query_id);
    // The court records the person's pseudonym; the coordinator, which never saw the
    // person, records none.
    assert_eq!(last.record.subject, "-");
    assert_eq!(court.last().unwrap().record.subject.len(), 32);
    // A subject that is not a resident ID is refused by the requester's own side, which
    // seals it, naming the field and not the value; nothing reaches the coordinator.
    let before = audit_entries(&coordinator_audit);
    for bad in [bad_check.as_str(), "4301"] {
        let query = fedq_coordinator::query::QueryRequest {
            subject: bad.to_owned(),
            ..serde_json::from_slice(&blacklist_query(&subject)).unwrap()
        };
        let err = conn
            .prover
            .as_mut()
            .unwrap()
            .prove(&query)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("`subject`") && !err.contains(bad), "{err}");
    }
    assert_eq!(audit_entries(&coordinator_audit), before);

    // The reviewer's view and the chain check, through the binary.
    let out = output_within(
        std::process::Command::new(env!("CARGO_BIN_EXE_fedq")).args([
            "audit",
            "list",
            "--config",
            fed.layout.coordinator_config().to_str().unwrap(),
            "--purpose",
            "administrative-licensing",
            "--json",
        ]),
        COMMAND_LIMIT,
    );
    assert!(out.status.success());
    let listed = String::from_utf8(out.stdout).unwrap();
    assert!(listed.lines().count() >= 3, "{listed}");
    assert!(!listed.contains(&subject));
    let out = output_within(
        std::process::Command::new(env!("CARGO_BIN_EXE_fedq")).args([
            "audit",
            "verify",
            "--config",
            fed.layout.coordinator_config().to_str().unwrap(),
        ]),
        COMMAND_LIMIT,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Health and metrics on the ops listener; no personal data in the metrics.
    let cfg = fedq_coordinator::config::CoordinatorConfig::load(&fed.layout.coordinator_config())
        .unwrap();
    let ops = cfg.ops_listen.unwrap();
    let metrics = http_get(ops, "/metrics").await;
    assert!(metrics.contains("fedq_queries_total"), "{metrics}");
    assert!(metrics.contains("fedq_node_latency_seconds"), "{metrics}");
    assert!(metrics.contains("fedq_policy_bundle_version"), "{metrics}");
    assert!(!metrics.contains(&subject));
    let health = http_get(ops, "/health").await;
    assert!(health.contains("\"status\":\"ready\""), "{health}");
    running.stop().await;
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let resp = sender
        .send_request(
            hyper::Request::get(path)
                .header("host", "localhost")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_accepts_but_never_answers_is_timed_out_within_the_deadline() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path(), 100, 5);
    let mut running = Running::start(&fed, None).await.unwrap();
    // The requester's sessions are opened while the real tax node runs, so the lookup the
    // silent one gets carries a proof and only its silence is at stake.
    let mut conn = connect(&fed, &fed.layout.pki(), Some("market-regulation.licensing"))
        .await
        .unwrap();
    conn.open_sessions().await;
    // Replace `tax` by a node that completes the handshake and then never answers.
    running.stop_node("tax").await;
    let tax_addr = fed.nodes["tax"];
    // The stopped node's UDP socket is released once its endpoint has wound down, which
    // can trail the stop by a moment: bind again within a bounded time.
    let give_up = std::time::Instant::now() + Duration::from_secs(10);
    let endpoint = loop {
        match fedq_wire::transport::NodeEndpoint::bind(
            tax_addr,
            fedq_wire::transport::TlsFiles::in_dir(&fed.layout.pki(), "tax"),
            fedq_wire::transport::Limits::default(),
        ) {
            Ok(e) => break e,
            Err(e) if std::time::Instant::now() < give_up && e.to_string().contains("in use") => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("cannot bind the silent tax node: {e}"),
        }
    };
    let silent: fedq_wire::transport::Handler = Arc::new(|_, _| Box::pin(std::future::pending()));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let silent_task = tokio::spawn(endpoint.serve(silent, None, async {
        let _ = stopped.await;
    }));
    let started = Instant::now();
    let (status, answer) = conn
        .post_proven(&blacklist_query(&fed.scenario.blacklisted.resident_id))
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(status, 200);
    let tax = answer["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == "tax")
        .unwrap();
    assert_eq!(tax["status"], "timed_out", "{answer}");
    assert_eq!(answer["complete"], false);
    let court = answer["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == "court")
        .unwrap();
    assert_eq!(court["status"], "answered");
    // Bounded by the 2 s deadline (plus the requester's handshake and scheduling on a
    // busy debug build), never by the node; and the coordinator did wait for it.
    assert_eq!(tax["reason"], "no answer within 2000 ms", "{answer}");
    assert!(took >= Duration::from_secs(2), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    let _ = stop.send(());
    silent_task.abort();
    running.stop().await;
}

fn node_report<'a>(answer: &'a Value, node: &str) -> &'a Value {
    answer["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == node)
        .unwrap_or_else(|| panic!("no report of `{node}` in {answer}"))
}

/// Issue 13 §6, end to end: missing evidence is never read as clean. The listed debtor
/// whose records a store cannot read is not green-channel eligible (it used to be, once
/// the records could not be found): the green channel says "cannot confirm", the
/// blacklist check lists the sources as unverified, the court reports `unverified`, the
/// answer is partial, and the metrics count it. A coordinator whose date is years off
/// gets `cannot confirm` from every node's clock-skew failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_evidence_is_never_read_as_clean() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path(), 100, 6);
    let debtor = fed.scenario.blacklisted.clone();
    assert!(debtor
        .records
        .iter()
        .any(|r| (r.department.as_str(), r.dataset.as_str()) == ("court", "dishonest_debtors")));
    // Every record of the debtor becomes unreadable in its store (a bad restore).
    for r in &debtor.records {
        let store = fedq_node::store::connect(&fed.layout.store(&r.department)).unwrap();
        let n = store
            .execute(
                &format!(
                    "UPDATE records SET body = '[1]' WHERE dataset = '{}.{}' AND record_key = '{}'",
                    r.department, r.dataset, r.key
                ),
                [],
            )
            .unwrap();
        assert_eq!(n, 1, "{r:?}");
    }
    let query = |subject: &str, view: &str| {
        serde_json::to_vec(&json!({
            "subject": subject,
            "purpose": "administrative-licensing",
            "legal_basis": LICENSING_BASIS, "case_reference": LICENSING_CASE,
            "view": view
        }))
        .unwrap()
    };
    let running = Running::start(&fed, None).await.unwrap();
    let mut conn = connect(&fed, &fed.layout.pki(), Some("market-regulation.licensing"))
        .await
        .unwrap();
    let (status, green) = conn
        .post_proven(&query(&debtor.resident_id, "green-channel"))
        .await
        .unwrap();
    assert_eq!(status, 200, "{green}");
    let view = &green["view_result"];
    assert_eq!(view["verdict"], "cannot_confirm", "{green}");
    assert_eq!(view["eligible"], false, "{green}");
    assert!(view["unverified"]
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["dataset"] == "court.dishonest_debtors" && u["status"] == "unverified"));
    assert_eq!(
        node_report(&green, "court")["status"],
        "unverified",
        "{green}"
    );
    assert_eq!(green["complete"], false);
    let rendered = fedq_coordinator::client::render(&green);
    assert!(
        rendered.contains("green channel: CANNOT CONFIRM"),
        "{rendered}"
    );

    let (_, listed) = conn
        .post_proven(&query(&debtor.resident_id, "blacklist-check"))
        .await
        .unwrap();
    let view = &listed["view_result"];
    assert!(view["listings"].as_array().unwrap().is_empty(), "{listed}");
    assert!(view["unverified"]
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["dataset"] == "court.dishonest_debtors" && u["status"] == "unverified"));
    let rendered = fedq_coordinator::client::render(&listed);
    assert!(
        rendered.contains("blacklist check: CANNOT CONFIRM"),
        "{rendered}"
    );
    assert!(
        !rendered.contains("not on any serious-dishonesty list"),
        "{rendered}"
    );

    // Another person is answered as before: no record is still no record.
    let (_, clean) = conn
        .post_proven(&query(&fed.scenario.clean.resident_id, "green-channel"))
        .await
        .unwrap();
    assert_eq!(clean["view_result"]["verdict"], "eligible", "{clean}");

    let cfg = fedq_coordinator::config::CoordinatorConfig::load(&fed.layout.coordinator_config())
        .unwrap();
    let metrics = http_get(cfg.ops_listen.unwrap(), "/metrics").await;
    // The coordinator cannot count unverified datasets: which dataset was unverified for
    // whom is sealed to the requester.
    assert!(
        !metrics.contains("fedq_datasets_unverified_total"),
        "{metrics}"
    );
    assert!(!metrics.contains(&debtor.resident_id));
    drop(conn);
    running.stop().await;

    // The coordinator's clock three years ahead: every node refuses with its reason, and
    // the green channel cannot confirm even a clean person.
    let path = fed.layout.coordinator_config();
    let text = std::fs::read_to_string(&path).unwrap();
    let pinned = format!("today = \"{}\"", fed.today);
    assert!(text.contains(&pinned), "{text}");
    let later = fed.today.replace_year(fed.today.year() + 3).unwrap();
    std::fs::write(
        &path,
        text.replace(&pinned, &format!("today = \"{later}\"")),
    )
    .unwrap();
    let running = Running::start(&fed, None).await.unwrap();
    let mut conn = connect(&fed, &fed.layout.pki(), Some("market-regulation.licensing"))
        .await
        .unwrap();
    let (status, skewed) = conn
        .post_proven(&query(&fed.scenario.clean.resident_id, "green-channel"))
        .await
        .unwrap();
    assert_eq!(status, 200, "{skewed}");
    assert_eq!(
        skewed["view_result"]["verdict"], "cannot_confirm",
        "{skewed}"
    );
    for node in skewed["nodes"].as_array().unwrap() {
        assert_eq!(node["status"], "unavailable", "{skewed}");
        assert!(
            node["reason"].as_str().unwrap().contains("clock skew"),
            "{skewed}"
        );
    }
    drop(conn);
    running.stop().await;
}

/// The keys of a JSON object, sorted.
fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect();
    k.sort_unstable();
    k
}

/// Issue 14 §5, end to end: a view releases its result, not its inputs.
/// - A blacklist check that says "not listed" because the court's listing was removed
///   carries no record of that listing: none of its dates, no `ok` from the court.
/// - A green-channel answer carries its verdict and each node's completeness, nothing of
///   which source holds the record.
/// - A view that declares `release = ["court.dishonest_debtors.listed_on"]` carries that
///   field of the court's records and nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_releases_its_result_not_its_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path(), 100, 6);
    let debtor = fed.scenario.blacklisted.clone();
    let listing = debtor
        .records
        .iter()
        .find(|r| (r.department.as_str(), r.dataset.as_str()) == ("court", "dishonest_debtors"))
        .unwrap()
        .clone();
    let store = fedq_node::store::connect(&fed.layout.store("court")).unwrap();
    let original: String = store
        .query_row(
            "SELECT body FROM records WHERE dataset = 'court.dishonest_debtors' AND record_key = ?1",
            [&listing.key],
            |row| row.get(0),
        )
        .unwrap();
    let mut body: Value = serde_json::from_str(&original).unwrap();
    let listed_on = body["listed_on"].clone();
    assert!(listed_on.is_object() || listed_on.is_string(), "{body}");
    let listed_day = match &listed_on {
        Value::Object(m) => m.values().next().unwrap().as_str().unwrap().to_owned(),
        other => other.as_str().unwrap().to_owned(),
    };
    let listed = time::Date::parse(
        &listed_day,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .unwrap();
    assert!(listed < fed.today, "{listed_day}");
    // Removed between its listing and today: the listing is no longer active, but it is a
    // negative record within its window, so the court still releases it for the view.
    let removed: time::Date = listed + time::Duration::days((fed.today - listed).whole_days() / 2);
    let removed_text = removed.to_string();
    body["removed_on"] = match &listed_on {
        Value::Object(m) => {
            let tag = m.keys().next().unwrap().clone();
            json!({ tag: removed_text })
        }
        _ => json!(removed_text),
    };
    store
        .execute(
            "UPDATE records SET body = ?1 WHERE dataset = 'court.dishonest_debtors' AND record_key = ?2",
            [&body.to_string(), &listing.key],
        )
        .unwrap();
    drop(store);

    let running = Running::start(&fed, None).await.unwrap();
    let mut conn = connect(&fed, &fed.layout.pki(), Some("market-regulation.licensing"))
        .await
        .unwrap();
    let (status, answer) = conn
        .post_proven(&blacklist_query(&debtor.resident_id))
        .await
        .unwrap();
    assert_eq!(status, 200, "{answer}");
    let view = &answer["view_result"];
    assert_eq!(view["listings"], json!([]), "{answer}");
    assert_eq!(view["unverified"], json!([]), "{answer}");
    assert_eq!(answer["datasets"], json!({}), "{answer}");
    let text = answer.to_string();
    for (what, needle) in [
        ("listed_on", listed_day.as_str()),
        ("removed_on", removed_text.as_str()),
        ("case_no", listing.key.as_str()),
    ] {
        assert!(!text.contains(needle), "{what} `{needle}` in {answer}");
    }
    for n in answer["nodes"].as_array().unwrap() {
        assert_eq!(n["status"], "answered", "{answer}");
    }
    let rendered = fedq_coordinator::client::render(&answer);
    assert!(
        rendered.contains("blacklist check: not on any serious-dishonesty list checked"),
        "{rendered}"
    );
    assert!(!rendered.contains(&removed_text), "{rendered}");

    // Green channel for the same person: not eligible, and that is all it says.
    let (status, green) = conn
        .post_proven(
            &serde_json::to_vec(&json!({
                "subject": debtor.resident_id,
                "purpose": "administrative-licensing",
                "legal_basis": LICENSING_BASIS,
                "case_reference": LICENSING_CASE,
                "view": "green-channel"
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{green}");
    assert_eq!(
        keys(&green),
        [
            "complete",
            "datasets",
            "nodes",
            "policy_version",
            "purpose",
            "query_id",
            "view",
            "view_result"
        ]
    );
    // The coordinator's answer names no person: it never saw one.
    assert_eq!(green.get("subject"), None, "{green}");
    assert_eq!(green["datasets"], json!({}), "{green}");
    let view = &green["view_result"];
    assert_eq!(
        keys(view),
        [
            "clean_years",
            "eligible",
            "kind",
            "reason",
            "unverified",
            "verdict"
        ]
    );
    assert_eq!(view["verdict"], "not_eligible", "{green}");
    assert_eq!(view["unverified"], json!([]), "{green}");
    assert_eq!(
        view["reason"], "a negative record within the last 3 years",
        "{green}"
    );
    for n in green["nodes"].as_array().unwrap() {
        // The receipt is the node's signed commitment to its audit entry (a tree head, an
        // index, two hashes, a proof), and `answer_sha256` the digest of the sealed answer
        // it was checked with: nothing of any record.
        assert_eq!(
            keys(n),
            ["answer_sha256", "datasets", "node", "receipt", "status"],
            "{green}"
        );
        assert_eq!(n["status"], "answered", "{green}");
    }
    drop(conn);
    running.stop().await;

    // Declared extra output: the court's listing date, and nothing else.
    let store = fedq_node::store::connect(&fed.layout.store("court")).unwrap();
    store
        .execute(
            "UPDATE records SET body = ?1 WHERE dataset = 'court.dishonest_debtors' AND record_key = ?2",
            [&original, &listing.key],
        )
        .unwrap();
    drop(store);
    let path = fed.layout.policy();
    let policy = std::fs::read_to_string(&path).unwrap();
    let anchor = "name = \"blacklist-check\"\n";
    assert!(policy.contains(anchor));
    std::fs::write(
        &path,
        policy.replacen(
            anchor,
            &format!("{anchor}release = [\"court.dishonest_debtors.listed_on\"]\n"),
            1,
        ),
    )
    .unwrap();
    let running = Running::start(&fed, None).await.unwrap();
    let mut conn = connect(&fed, &fed.layout.pki(), Some("market-regulation.licensing"))
        .await
        .unwrap();
    let (status, answer) = conn
        .post_proven(&blacklist_query(&debtor.resident_id))
        .await
        .unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["view_result"]["listings"].as_array().unwrap().len(),
        1,
        "{answer}"
    );
    assert_eq!(keys(&answer["datasets"]), ["court.dishonest_debtors"]);
    let court = &answer["datasets"]["court.dishonest_debtors"];
    assert_eq!(court["summaries"], json!({}), "{answer}");
    let records = court["records"].as_array().unwrap();
    assert!(!records.is_empty(), "{answer}");
    for r in records {
        assert_eq!(keys(r), ["listed_on"], "{answer}");
    }
    assert!(
        // The store keeps the date typed; the answer document carries it plain.
        records.iter().any(|r| r["listed_on"] == json!(listed_day)),
        "{answer}"
    );
    assert!(!answer.to_string().contains(&listing.key), "{answer}");
    let rendered = fedq_coordinator::client::render(&answer);
    assert!(
        rendered.contains(
            "released beside the view (declared in the policy):\n  court.dishonest_debtors: "
        ),
        "{rendered}"
    );
    drop(conn);
    running.stop().await;
}

/// Issue 14 §6: no join key across departments. For one query, every node asked records
/// its own id; no two departments' logs (nor the coordinator's id) share one; the
/// coordinator's entry maps each node to its id, `fedq audit list` shows the mapping, and
/// the requester gets only the coordinator's id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_two_departments_logs_share_a_query_id() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path(), 100, 6);
    let running = Running::start(&fed, None).await.unwrap();
    let mut conn = connect(&fed, &fed.layout.pki(), Some("market-regulation.licensing"))
        .await
        .unwrap();
    let body = serde_json::to_vec(&json!({
        "subject": fed.scenario.clean.resident_id,
        "purpose": "administrative-licensing",
        "legal_basis": LICENSING_BASIS,
        "case_reference": LICENSING_CASE,
        "view": "green-channel"
    }))
    .unwrap();
    let mut answers = Vec::new();
    for _ in 0..2 {
        let (status, answer) = conn.post_proven(&body).await.unwrap();
        assert_eq!(status, 200, "{answer}");
        answers.push(answer);
    }
    drop(conn);
    running.stop().await;

    let coordinator = fedq_audit::list(
        &fed.layout.root.join("audit/coordinator-audit.db"),
        &fedq_audit::ListFilter::default(),
    )
    .unwrap();
    let mut every_node_id: Vec<String> = Vec::new();
    for answer in &answers {
        let query_id = answer["query_id"].as_str().unwrap();
        let entry = coordinator
            .iter()
            .find(|e| {
                e.record.kind == fedq_audit::EntryKind::Query && e.record.query_id == query_id
            })
            .unwrap_or_else(|| panic!("no coordinator entry for {query_id}"));
        let asked: Vec<&str> = answer["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["node"].as_str().unwrap())
            .collect();
        assert!(asked.len() >= 5, "{answer}");
        let mapped: Vec<&str> = entry
            .record
            .node_query_ids
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(mapped, asked, "every node asked is mapped, and only those");
        let text = answer.to_string();
        for (node, id) in &entry.record.node_query_ids {
            assert_ne!(id, query_id);
            assert!(
                !text.contains(id.as_str()),
                "{node}'s id in the answer: {text}"
            );
            let log = fedq_audit::list(
                &fed.layout.root.join(format!("audit/{node}-audit.db")),
                &fedq_audit::ListFilter::default(),
            )
            .unwrap();
            assert_eq!(
                log.iter().filter(|e| &e.record.query_id == id).count(),
                1,
                "{node} recorded its own id once"
            );
            assert!(
                log.iter().all(|e| e.record.query_id != query_id),
                "{node} recorded the coordinator's id"
            );
            assert!(log.iter().all(|e| e.record.node_query_ids.is_empty()));
            every_node_id.push(id.clone());
        }
    }
    // No id appears in two departments' logs, nor twice for two queries.
    let mut all: Vec<String> = Vec::new();
    for node in fed.nodes.keys() {
        let path = fed.layout.root.join(format!("audit/{node}-audit.db"));
        if !path.exists() {
            continue;
        }
        let ids: std::collections::BTreeSet<String> =
            fedq_audit::list(&path, &fedq_audit::ListFilter::default())
                .unwrap()
                .into_iter()
                .map(|e| e.record.query_id)
                .filter(|id| id != "-")
                .collect();
        all.extend(ids);
    }
    let distinct: std::collections::BTreeSet<&String> = all.iter().collect();
    assert_eq!(
        distinct.len(),
        all.len(),
        "an id shared across logs: {all:?}"
    );
    assert_eq!(every_node_id.len(), all.len(), "{all:?}");

    // The reviewer's join, through the binary.
    let out = output_within(
        std::process::Command::new(env!("CARGO_BIN_EXE_fedq")).args([
            "audit",
            "list",
            "--config",
            fed.layout.coordinator_config().to_str().unwrap(),
        ]),
        COMMAND_LIMIT,
    );
    assert!(out.status.success());
    let listed = String::from_utf8(out.stdout).unwrap();
    let query_id = answers[0]["query_id"].as_str().unwrap();
    let entry = coordinator
        .iter()
        .find(|e| e.record.query_id == query_id)
        .unwrap();
    let nodes = entry
        .record
        .node_query_ids
        .iter()
        .map(|(n, id)| format!("{n}:{id}"))
        .collect::<Vec<_>>()
        .join(",");
    assert!(
        listed.contains(&format!(" query={query_id} nodes={nodes} ")),
        "{listed}"
    );
}
