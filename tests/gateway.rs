//! Issue 15 §4: `fedq gateway` — a requesting agency's front to the federation. The demo
//! federation's licensing office runs one (in-process, over real TLS on 127.0.0.1, in front
//! of the real coordinator and nodes); its app asks with its token and the subject in the
//! body, as it would ask the coordinator's API. Checked: the app's query is answered as
//! `fedq query` would answer it; a request without a valid token is refused 401 and
//! reaches nobody; a body carrying proofs or sealed subjects, or a subject that is not a
//! resident ID, is refused 400 and registered without its input; the gateway's own log
//! names the app, the subject's pseudonym under the gateway's key and the coordinator's
//! query id, while the coordinator's entry for that query names no one.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use fedq_coordinator::client::send_to_gateway;
use fedq_coordinator::query::QueryRequest;
use fedq_sandbox::{Running, GATEWAY_APP, GATEWAY_REQUESTER, LICENSING_BASIS, LICENSING_CASE};
use fedq_testkit::federation;
use serde_json::Value;

fn blacklist_check(subject: &str) -> QueryRequest {
    QueryRequest {
        subject: subject.to_owned(),
        purpose: "administrative-licensing".into(),
        legal_basis: Some(LICENSING_BASIS.into()),
        case_reference: Some(LICENSING_CASE.into()),
        view: Some("blacklist-check".into()),
        ..QueryRequest::default()
    }
}

fn entries(path: &std::path::Path) -> Vec<fedq_audit::AuditRecord> {
    fedq_audit::list(path, &fedq_audit::ListFilter::default())
        .unwrap()
        .into_iter()
        .map(|e| e.record)
        .collect()
}

/// Posts `body` as it is to the gateway with `authorization`, over its TLS.
async fn post_raw(
    url: &str,
    ca: &std::path::Path,
    authorization: Option<&str>,
    body: &str,
) -> (u16, Value) {
    let pem = std::fs::read(ca).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in fedq_certs::tls::read_certificates(&pem).unwrap() {
        roots.add(cert).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(fedq_certs::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let uri: hyper::Uri = url.parse().unwrap();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", uri.port_u16().unwrap()))
        .await
        .unwrap();
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut request = hyper::Request::post("/v1/query")
        .header("host", "localhost")
        .header("content-type", "application/json");
    if let Some(a) = authorization {
        request = request.header("authorization", a);
    }
    let response = sender
        .send_request(
            request
                .body(http_body_util::Full::new(hyper::body::Bytes::from(
                    body.to_owned(),
                )))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status().as_u16();
    use http_body_util::BodyExt;
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agency_s_app_asks_through_its_gateway_which_proves_seals_opens_and_logs() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path(), 100, 47);
    // The gateway's log keeps a signed checkpoint after every entry (top-level keys go
    // before the `[[app]]` tables).
    let config = fed.layout.gateway_config();
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("audit_checkpoint_entries = 1\n{text}")).unwrap();
    let running = Running::start(&fed, None).await.unwrap();
    let url = format!("https://localhost:{}", fed.gateway.port());
    let ca = fed.layout.gateway_ca();
    let token = std::fs::read_to_string(fed.layout.gateway_token()).unwrap();
    let listed = &fed.scenario.blacklisted.resident_id;
    let coordinator_log = fed.layout.root.join("audit/coordinator-audit.db");
    let gateway_log = fed.layout.root.join("gateway/gateway-audit.db");

    // The app's query, subject in the body: answered as `fedq query` answers it.
    let (status, answer) = send_to_gateway(&url, &ca, &token, &blacklist_check(listed))
        .await
        .unwrap();
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer["view_result"]["listings"]
            .as_array()
            .is_some_and(|l| !l.is_empty()),
        "{answer}"
    );
    assert_eq!(answer["complete"], true, "{answer}");
    let shown = answer["subject"].as_str().unwrap();
    assert!(
        shown.contains('*') && !shown.contains(&listed[6..14]),
        "{shown}"
    );
    let query_id = answer["query_id"].as_str().unwrap().to_owned();

    // The gateway's entry: the app, the policy's names, the subject's pseudonym (its own
    // key), the coordinator's query id and each node's status; the coordinator's entry of
    // the same query names no one.
    let logged = entries(&gateway_log);
    let entry = logged.last().unwrap();
    assert_eq!(entry.kind, fedq_audit::EntryKind::Query);
    assert_eq!(entry.requester, format!("app:{GATEWAY_APP}"));
    assert_eq!(entry.query_id, query_id);
    assert_eq!(entry.purpose, "administrative-licensing");
    assert_eq!(entry.case_reference.as_deref(), Some(LICENSING_CASE));
    assert_eq!(entry.target, "view:blacklist-check");
    assert!(
        entry.subject.len() >= 16 && entry.subject != "-",
        "{entry:?}"
    );
    let outcome: Value = serde_json::from_str(&entry.outcome).unwrap();
    assert_eq!(outcome["nodes"]["court"], "answered", "{outcome}");
    // Each node's receipt as the gateway kept it: its index and the signed tree's size.
    let court = &outcome["receipts"]["court"];
    let (index, size) = (court["index"].as_u64(), court["tree_size"].as_u64());
    assert!(
        matches!((index, size), (Some(i), Some(s)) if s > i),
        "{outcome}"
    );
    let coordinator = entries(&coordinator_log);
    let theirs = coordinator
        .iter()
        .find(|e| e.query_id == query_id)
        .expect("the coordinator registered the query");
    assert_eq!(theirs.subject, "-");
    assert_eq!(theirs.requester, fedq_sandbox::GATEWAY_REQUESTER);
    // The same person asked again: the same pseudonym in the gateway's log.
    send_to_gateway(&url, &ca, &token, &blacklist_check(listed))
        .await
        .unwrap();
    let again = entries(&gateway_log);
    assert_eq!(again.last().unwrap().subject, entry.subject);

    // Without a valid token: 401, and nobody else hears of it.
    let before = (entries(&coordinator_log).len(), entries(&gateway_log).len());
    let body = serde_json::json!({
        "subject": listed, "purpose": "administrative-licensing",
        "legal_basis": LICENSING_BASIS, "case_reference": LICENSING_CASE,
        "view": "blacklist-check",
    })
    .to_string();
    for authorization in [
        None,
        Some("Bearer fgw_not-a-token-the-gateway-issued"),
        Some(format!("Basic {token}").as_str()),
    ] {
        let (status, refusal) = post_raw(&url, &ca, authorization, &body).await;
        assert_eq!(status, 401, "{refusal}");
        assert!(refusal["detail"].as_str().unwrap().contains("Bearer"));
        assert_eq!(
            refusal["type"], "urn:fedq:problem:unauthenticated",
            "{refusal}"
        );
        assert_eq!(refusal["status"], 401, "{refusal}");
    }
    assert_eq!(
        (entries(&coordinator_log).len(), entries(&gateway_log).len()),
        before,
        "an unauthenticated request reached the coordinator or the gateway's log"
    );

    // Proofs, sealed subjects and a bad subject are refused here, registered under the
    // app without the input, and the coordinator never hears of them.
    let bearer = format!("Bearer {}", token.trim());
    for (body, says) in [
        (
            serde_json::json!({ "subject": listed, "purpose": "administrative-licensing",
                "view": "blacklist-check", "proofs": { "court": null } }),
            "`proofs` is the gateway's to make",
        ),
        (
            serde_json::json!({ "subject": listed, "purpose": "administrative-licensing",
                "view": "blacklist-check", "sealed": { "court": "x" } }),
            "`sealed` is the gateway's to make",
        ),
        (
            serde_json::json!({ "subject": "43010419900101123Y", "purpose": "administrative-licensing",
                "view": "blacklist-check" }),
            "`subject`",
        ),
    ] {
        let (status, refusal) = post_raw(&url, &ca, Some(&bearer), &body.to_string()).await;
        assert_eq!(status, 400, "{refusal}");
        let said = refusal["detail"].as_str().unwrap();
        assert!(said.contains(says), "{said}");
        assert!(
            !said.contains("4301041990") && !said.contains(&listed[6..14]),
            "{said}"
        );
        let last = entries(&gateway_log).pop().unwrap();
        assert_eq!(last.kind, fedq_audit::EntryKind::Refusal);
        assert_eq!(last.requester, format!("app:{GATEWAY_APP}"));
        assert_eq!(last.subject, "-");
    }
    assert_eq!(entries(&coordinator_log).len(), before.0);

    // A query the coordinator refuses (a case reference of the wrong form) is registered
    // with its refusal and none of its texts.
    let mut wrong_case = blacklist_check(listed);
    wrong_case.case_reference = Some("(2026)湘01执123号".into());
    let (status, refusal) = send_to_gateway(&url, &ca, &token, &wrong_case)
        .await
        .unwrap();
    assert_eq!(status, 403, "{refusal}");
    let last = entries(&gateway_log).pop().unwrap();
    assert_eq!(last.case_reference, None);
    assert_eq!(last.purpose, "-");
    assert!(!last.outcome.contains("湘01执123号"), "{}", last.outcome);

    running.stop().await;

    // Nothing at rest in the gateway's directory names a person, and its log verifies.
    for entry in std::fs::read_dir(fed.layout.root.join("gateway")).unwrap() {
        let path = entry.unwrap().path();
        if path == fed.layout.gateway_token() {
            continue; // the app's own copy of its token, which the demo keeps beside
        }
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        for (_, person) in fed.scenario.roles() {
            assert!(
                !text.contains(&person.resident_id),
                "a raw resident ID at rest"
            );
        }
        assert!(!text.contains(token.trim()), "the app's token at rest");
    }
    assert_eq!(fedq_audit::verify(&gateway_log).unwrap().first_break, None);
    // The agency's own log signs its checkpoints with the agency's key, under the name
    // its certificate gives it, and they cover its entries.
    let pki = fed.layout.pki();
    let key = fedq_audit::Signing::from_certificate(
        &pki.join(format!("{GATEWAY_REQUESTER}.crt")),
        &pki.join(format!("{GATEWAY_REQUESTER}.key")),
        fedq_audit::Cadence::default(),
    )
    .unwrap()
    .signer
    .verifier();
    assert_eq!(
        key.name(),
        format!("fedq/changsha/requester/{GATEWAY_REQUESTER}")
    );
    let kept = fedq_audit::checkpoints(&gateway_log).unwrap();
    let (size, note) = kept.last().expect("the gateway's log kept no checkpoint");
    let (head, _) = fedq_audit::checkpoint::open_checkpoint(note, &key).unwrap();
    assert_eq!(head.size, *size);
    assert_eq!(*size, fedq_audit::verify(&gateway_log).unwrap().entries);
    // The CRL in force is remembered beside its log (an older `crl.pem` put back is refused
    // across its restarts too), owner-only, as the federation's CRL.
    let remembered = fed
        .layout
        .root
        .join("gateway/gateway-audit.crl-in-force.pem");
    assert_eq!(
        std::fs::read(&remembered).unwrap(),
        std::fs::read(fed.layout.pki().join("crl.pem")).unwrap()
    );
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&remembered).unwrap().permissions()
        ) & 0o777,
        0o600
    );
}

#[test]
fn an_app_token_is_issued_once_and_the_config_refuses_what_it_cannot_use() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path(), 20, 48);
    let config = fed.layout.gateway_config();
    // The demo's app already has a token: a second is refused.
    let err = fedq_coordinator::gateway::add_app(&config, GATEWAY_APP).unwrap_err();
    assert!(err.to_string().contains("already has a token"), "{err}");
    let token = fedq_coordinator::gateway::add_app(&config, "case-desk").unwrap();
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(!text.contains(&token), "the token itself is never kept");
    assert!(text.contains(&fedq_coordinator::gateway::token_digest(&token)));
    let loaded = fedq_coordinator::gateway::GatewayConfig::load(&config).unwrap();
    assert_eq!(loaded.apps.len(), 2);
    assert!(fedq_coordinator::gateway::add_app(&config, "no spaces").is_err());
    // A digest that is not one, a name used twice: the config does not load.
    let broken = text.replace(
        &fedq_coordinator::gateway::token_digest(&token),
        "not-a-digest",
    );
    std::fs::write(&config, broken).unwrap();
    let err = fedq_coordinator::gateway::GatewayConfig::load(&config).unwrap_err();
    assert!(err.to_string().contains("token_sha256"), "{err}");
    std::fs::write(&config, text.replace("case-desk", GATEWAY_APP)).unwrap();
    let err = fedq_coordinator::gateway::GatewayConfig::load(&config).unwrap_err();
    assert!(err.to_string().contains("used twice"), "{err}");
}
