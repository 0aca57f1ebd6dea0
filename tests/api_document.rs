//! The OpenAPI document says what the servers send: against a running demo federation,
//! every answer of the tour and every endpoint's answers (the relayed query, sessions,
//! nodes, policy status, health, refusals of each kind) have a status the document lists
//! for that operation and a body its schema accepts — validated with an independent JSON
//! Schema implementation (`jsonschema`), not with the code that made the document.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use fedq_coordinator::client::ApiConnection;
use fedq_coordinator::openapi;
use fedq_demo::tour;
use fedq_sandbox::{licensing, self_query, Ask, Federation, Running};
use fedq_testkit::federation;
use serde_json::{json, Value};

/// A validator for the component schema `name`, resolving `$ref`s within the document.
fn validator(doc: &Value, name: &str) -> jsonschema::Validator {
    let schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": format!("#/components/schemas/{name}"),
        "components": doc["components"],
    });
    jsonschema::draft202012::new(&schema)
        .unwrap_or_else(|e| panic!("schema `{name}` does not compile: {e}"))
}

/// Checks one answer of `method path` against the document: its status is documented
/// there and its body is what that status's schema describes.
fn conforms(doc: &Value, method: &str, path: &str, status: u16, body: &Value) {
    let documented = openapi::documented(method, path);
    let Some((_, schema)) = documented.iter().find(|(s, _)| *s == status) else {
        panic!("{method} {path} answered {status}, which the document does not list: {body}");
    };
    if let Some(name) = schema {
        let v = validator(doc, name);
        let errors: Vec<String> = v
            .iter_errors(body)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {path} {status}: not a {name}: {errors:?}\n{body}"
        );
    }
}

async fn connection(fed: &Federation, who: &str) -> ApiConnection {
    let pki = fed.layout.pki();
    ApiConnection::connect(
        &format!("https://{}", fed.coordinator),
        &pki.join(format!("{who}.crt")),
        &pki.join(format!("{who}.key")),
        &pki.join("ca.crt"),
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_the_servers_send_is_what_the_document_says() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path(), 300, 11);
    // The tour's witnessing stop needs witnessing within its run, as `fedq demo` sets it.
    fed.witness_quickly(500).unwrap();
    let mut running = Running::start(&fed, None).await.unwrap();
    let doc = openapi::document();
    let concluded = validator(&doc, "ConcludedAnswer");
    let problem = validator(&doc, "Problem");
    let relayed = validator(&doc, "RelayedAnswer");

    // The tour: every query's answer document (as `fedq query --json` and the gateway
    // give it) and every refusal.
    let steps = tour(&fed, &mut running, None).await;
    let mut answers = 0;
    let mut refusals = 0;
    for step in &steps {
        assert!(step.check.is_ok(), "{}: {:?}", step.headline, step.check);
        let a = &step.answer;
        if step.status >= 400 {
            let errors: Vec<String> = problem.iter_errors(a).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{}: {errors:?}\n{a}", step.headline);
            refusals += 1;
        } else if a.get("nodes").is_some() && a.get("requester").is_none() {
            // Concluded on the requester side, or (the replay stop) the coordinator's
            // relay itself.
            let schema = if a.get("datasets").is_some() {
                &concluded
            } else {
                &relayed
            };
            let errors: Vec<String> = schema
                .iter_errors(a)
                .map(|e| format!("{e} at {}", e.instance_path()))
                .collect();
            assert!(errors.is_empty(), "{}: {errors:?}\n{a}", step.headline);
            answers += 1;
        }
    }
    assert!(
        answers >= 8 && refusals >= 2,
        "{answers} answers, {refusals} refusals checked"
    );
    // Released values were among what was checked, and the document takes them plain only.
    let released = steps
        .iter()
        .flat_map(|s| {
            s.answer
                .pointer("/view_result/sections")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .flat_map(|section| section["records"].as_array().cloned().unwrap_or_default())
        .count();
    assert!(released > 0, "the tour's credit reports released records");
    let value = validator(&doc, "AnswerValue");
    for plain in [
        json!("2024-02-29"),
        json!(3),
        json!({"value": "8000.00", "currency": "CNY"}),
        json!({"masked": "张*"}),
    ] {
        assert!(value.is_valid(&plain), "{plain}");
    }
    for tagged in [
        json!({"amount": 800000}),
        json!({"date": "2024-02-29"}),
        json!({"text": "x"}),
        json!(1.5),
    ] {
        assert!(!value.is_valid(&tagged), "{tagged} is not a plain value");
    }

    // The raw endpoints, as a client without our code sees them.
    let s = &fed.scenario;
    let mut clerk = connection(&fed, "market-regulation.licensing").await;
    let (status, nodes) = clerk
        .call("GET", "/v1/nodes", "application/json", Vec::new())
        .await
        .unwrap();
    conforms(&doc, "get", "/v1/nodes", status, &nodes);
    assert_eq!(status, 200);
    let (status, health) = clerk
        .call("GET", "/health", "application/json", Vec::new())
        .await
        .unwrap();
    conforms(&doc, "get", "/health", status, &health);
    let (status, served) = clerk
        .call("GET", "/v1/openapi.json", "application/json", Vec::new())
        .await
        .unwrap();
    assert_eq!(
        (status, &served),
        (200, &doc),
        "the server serves the document"
    );

    // Each kind of tour query, proven and relayed; then concluded.
    let asks = [
        licensing(&s.blacklisted.resident_id, "blacklist-check"),
        licensing(&s.clean.resident_id, "green-channel"),
        self_query(&fed, &s.tax_arrears.resident_id, "credit-report").unwrap(),
        Ask {
            view: None,
            datasets: vec!["court.dishonest_debtors".into()],
            ..licensing(&s.blacklisted.resident_id, "blacklist-check")
        },
    ];
    for q in &asks {
        let mut conn = connection(&fed, &q.requester).await;
        let proven = conn.prove(&q.query()).await.unwrap();
        let (status, relayed) = conn
            .call(
                "POST",
                "/v1/query",
                "application/json",
                serde_json::to_vec(&proven).unwrap(),
            )
            .await
            .unwrap();
        conforms(&doc, "post", "/v1/query", status, &relayed);
        assert_eq!(status, 200, "{relayed}");
        let answer = conn.conclude(&proven, status, relayed);
        let errors: Vec<String> = concluded
            .iter_errors(&answer)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{errors:?}\n{answer}");
    }

    // Refusals of each kind, each a documented status with a problem document.
    let refused: Vec<(Vec<u8>, u16)> = vec![
        (b"{not json".to_vec(), 400),
        (
            serde_json::to_vec(&json!({"purpose": "administrative-licensing", "view": "nope"}))
                .unwrap(),
            400,
        ),
        (
            serde_json::to_vec(&json!({"purpose": "nope", "view": "blacklist-check"})).unwrap(),
            403,
        ),
        (vec![b' '; 80 * 1024], 413),
    ];
    for (body, want) in refused {
        let mut conn = connection(&fed, "market-regulation.licensing").await;
        let (status, answer) = conn
            .call("POST", "/v1/query", "application/json", body)
            .await
            .unwrap();
        assert_eq!(status, want, "{answer}");
        conforms(&doc, "post", "/v1/query", status, &answer);
    }
    let (status, answer) = clerk
        .call("POST", "/v1/sessions", "application/json", b"[]".to_vec())
        .await
        .unwrap();
    assert_eq!(status, 400);
    conforms(&doc, "post", "/v1/sessions", status, &answer);
    let (status, answer) = clerk
        .call("GET", "/v1/policy/status", "application/json", Vec::new())
        .await
        .unwrap();
    assert_eq!(status, 403);
    conforms(&doc, "get", "/v1/policy/status", status, &answer);
    assert_eq!(answer["type"], "urn:fedq:problem:role-not-allowed");
    let (status, answer) = clerk
        .call("GET", "/v1/nope", "application/json", Vec::new())
        .await
        .unwrap();
    assert_eq!(status, 404);
    let errors: Vec<String> = problem
        .iter_errors(&answer)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");

    // The typed client: each call answers its type, or the server's problem.
    let pki = fed.layout.pki();
    let mut typed = fedq_client::Client::connect(
        &format!("https://{}", fed.coordinator),
        &pki.join("ca.crt"),
        Some((
            &pki.join("market-regulation.licensing.crt"),
            &pki.join("market-regulation.licensing.key"),
        )),
    )
    .await
    .unwrap();
    assert_eq!(typed.health().await.unwrap().status, "ok");
    assert_eq!(typed.openapi().await.unwrap(), doc);
    let listed = typed.nodes().await.unwrap();
    assert!(listed.nodes.contains(&"court".to_owned()), "{listed:?}");
    assert!(listed.views.contains_key("blacklist-check"), "{listed:?}");
    let unproven = licensing(&s.blacklisted.resident_id, "blacklist-check").query();
    match typed.query(&unproven).await {
        Err(fedq_client::Error::Refused(p)) => {
            assert_eq!(
                p.known_kind(),
                Some(fedq_client::problem::Kind::ProofMissing),
                "{p:?}"
            );
        }
        other => panic!("an unproven query was not refused as proof-missing: {other:?}"),
    }
    match typed.policy_status().await {
        Err(fedq_client::Error::Refused(p)) => assert_eq!(p.status, 403),
        other => panic!("a requester read the policy status: {other:?}"),
    }

    // An officer's view of the policy endpoints.
    let mut officer = connection(&fed, "officer-zhang").await;
    let (status, answer) = officer
        .call("GET", "/v1/policy/status", "application/json", Vec::new())
        .await
        .unwrap();
    assert_eq!(status, 200, "{answer}");
    conforms(&doc, "get", "/v1/policy/status", status, &answer);
    let mut typed_officer = fedq_client::Client::connect(
        &format!("https://{}", fed.coordinator),
        &pki.join("ca.crt"),
        Some((
            &pki.join("officer-zhang.crt"),
            &pki.join("officer-zhang.key"),
        )),
    )
    .await
    .unwrap();
    let status_typed = typed_officer.policy_status().await.unwrap();
    assert!(status_typed.in_step, "{status_typed:?}");
    assert_eq!(status_typed.nodes.len(), fed.nodes.len());
    let (status, answer) = officer
        .call(
            "POST",
            "/v1/policy/bundles",
            "application/toml",
            b"\xff\xfe".to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(status, 400, "{answer}");
    conforms(&doc, "post", "/v1/policy/bundles", status, &answer);

    // An aggregate query: answered until the budget is spent, then 429; a malformed
    // body 400; another office 403.
    let year = fed.today.year();
    let request = fedq_coordinator::statistics::StatisticsRequest {
        purpose: "statistics".into(),
        legal_basis: Some("统计法".into()),
        target: fedq_policy::statistics::AggregateTarget {
            datasets: vec!["court.dishonest_debtors".into(), "tax.arrears".into()],
            by: vec![fedq_policy::statistics::Dimension::District],
            from_year: year - 2,
            to_year: year,
            intersect: false,
        },
        proofs: Default::default(),
    };
    let mut bureau = connection(&fed, "statistics.bureau").await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let (status, answer) = bureau.statistics(&request).await.unwrap();
        conforms(&doc, "post", "/v1/statistics", status, &answer);
        statuses.push(status);
    }
    assert_eq!(statuses, [200, 200, 200, 200, 429]);
    let (status, answer) = bureau
        .call(
            "POST",
            "/v1/statistics",
            "application/json",
            b"{\"subject\": 1}".to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(status, 400, "{answer}");
    conforms(&doc, "post", "/v1/statistics", status, &answer);
    let mut licensing_office = connection(&fed, "market-regulation.licensing").await;
    let (status, answer) = licensing_office.statistics(&request).await.unwrap();
    assert_eq!(status, 403, "{answer}");
    conforms(&doc, "post", "/v1/statistics", status, &answer);
    running.stop().await;
}
