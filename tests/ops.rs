//! Issue 16 §4: operations for every process. Real `fedq node serve`, `fedq coordinator
//! serve` and `fedq gateway serve` processes of the demo federation, each with an
//! `ops_listen` on 127.0.0.1 (port 0: the address is read from the line each prints when
//! it serves). Checked: `/metrics` before the first query describes every metric family
//! it shows (`# HELP`) and already has each outcome's series at zero, the certificate and
//! CRL gauges positive; one query moves the coordinator's and each asked node's counter
//! of its outcome; `/health` is 200 and ready with every check holding, and 503 naming the
//! check when the node's audit log or store is moved away under it or its pinned date is
//! years from the system's — and ready again once the file is back; the gateway's
//! listener serves both as well.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::net::SocketAddr;
use std::path::Path;

use fedq_sandbox::Federation;
use serde_json::Value;
use support::process::FedqProcess;

/// Gives the config at `path` an ops listener on a port the process picks (a top-level
/// key, so it goes first), replacing one it had.
fn with_ops_listener(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("ops_listen"))
        .collect();
    std::fs::write(
        path,
        format!("ops_listen = \"127.0.0.1:0\"\n{}\n", kept.join("\n")),
    )
    .unwrap();
}

/// `GET path` over plain HTTP: the status and the body.
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        tcp.read_to_string(&mut response),
    )
    .await
    .unwrap()
    .unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

async fn health(addr: SocketAddr) -> (u16, Value) {
    let (status, body) = get(addr, "/health").await;
    (status, serde_json::from_str(&body).unwrap())
}

/// `/metrics`, checked to describe every family it shows.
async fn metrics(addr: SocketAddr) -> String {
    let (status, text) = get(addr, "/metrics").await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        fedq_ops::undescribed_families(&text),
        Vec::<String>::new(),
        "every metric family needs a # HELP line:\n{text}"
    );
    text
}

fn value(text: &str, series: &str) -> f64 {
    fedq_ops::sample(text, series).unwrap_or_else(|| panic!("no `{series}` in:\n{text}"))
}

fn lookups(text: &str, outcome: &str) -> f64 {
    value(
        text,
        &format!("fedq_node_lookups_total{{outcome=\"{outcome}\"}}"),
    )
}

const NODE_OUTCOMES: [&str; 10] = [
    "answered",
    "unverified",
    "denied",
    "refused",
    "proof_refused",
    "consent_refused",
    "rate_limited",
    "clock_skew",
    "unavailable",
    "audit_failed",
];

fn federation(tmp: &Path, seed: u64) -> Federation {
    fedq_testkit::federation(tmp, 60, seed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_described_and_present_before_the_first_query_and_count_it_by_outcome() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path(), 161);
    let mut nodes = Vec::new();
    for name in fed.nodes.keys() {
        let config = fed.layout.node_config(name);
        with_ops_listener(&config);
        nodes.push((name.clone(), FedqProcess::node(&config, None)));
    }
    with_ops_listener(&fed.layout.coordinator_config());
    let coordinator = FedqProcess::coordinator(&fed.layout.coordinator_config(), None);

    // Fresh nodes: every family described, every outcome at zero, the expiry gauges ahead.
    for (name, node) in &nodes {
        let text = metrics(node.ops_addr()).await;
        for outcome in NODE_OUTCOMES {
            assert_eq!(lookups(&text, outcome), 0.0, "{name}: {outcome}");
        }
        for source in ["store", "attached"] {
            let series = format!("fedq_node_store_errors_total{{source=\"{source}\"}}");
            assert_eq!(value(&text, &series), 0.0, "{name}");
        }
        assert_eq!(value(&text, "fedq_policy_bundle_version"), 0.0, "{name}");
        assert!(
            value(&text, "fedq_certificate_expiry_seconds") > 86_400.0,
            "{name}"
        );
        assert!(
            value(&text, "fedq_crl_next_update_seconds") > 86_400.0,
            "{name}"
        );
        assert!(text.contains("# HELP fedq_audit_commit_seconds "), "{text}");
        assert!(text.contains("fedq_audit_commit_seconds_count"), "{text}");
        assert!(text.contains("# HELP fedq_node_lookup_seconds "), "{text}");
    }
    // The fresh coordinator: every query outcome at zero, every node up.
    let ops = coordinator.ops_addr();
    let text = metrics(ops).await;
    for outcome in fedq_coordinator::outcome::QUERY_OUTCOMES {
        let series = format!("fedq_queries_total{{outcome=\"{outcome}\"}}");
        assert_eq!(value(&text, &series), 0.0, "{outcome}");
    }
    for name in fed.nodes.keys() {
        assert_eq!(support::node_up(&text, name), Some(1.0), "{text}");
        let series = format!("fedq_sessions_failed_total{{node=\"{name}\"}}");
        assert_eq!(value(&text, &series), 0.0);
    }
    assert_eq!(value(&text, "fedq_queries_in_flight"), 0.0);
    assert!(value(&text, "fedq_certificate_expiry_seconds") > 86_400.0);
    assert!(text.contains("# HELP fedq_query_seconds "), "{text}");
    let (status, body) = health(ops).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready", "{body}");
    assert_eq!(body["process"], "coordinator", "{body}");
    for check in ["audit", "policy", "clock"] {
        assert_eq!(body["checks"][check]["ok"], true, "{body}");
    }

    // One query: counted once at the coordinator, and once as answered at each node.
    let subject = fed.scenario.blacklisted.resident_id.clone();
    let (status, answer) =
        fedq_sandbox::ask(&fed, &fedq_sandbox::licensing(&subject, "blacklist-check"))
            .await
            .unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["complete"], true, "{answer}");
    let text = metrics(ops).await;
    assert_eq!(
        value(&text, "fedq_queries_total{outcome=\"answered\"}"),
        1.0
    );
    assert!(!text.contains(&subject));
    let asked: Vec<&str> = answer["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["node"].as_str().unwrap())
        .collect();
    assert!(!asked.is_empty(), "{answer}");
    for (name, node) in &nodes {
        let text = metrics(node.ops_addr()).await;
        assert!(!text.contains(&subject), "{name}");
        let expected = if asked.contains(&name.as_str()) {
            1.0
        } else {
            0.0
        };
        assert_eq!(lookups(&text, "answered"), expected, "{name}:\n{text}");
        for outcome in NODE_OUTCOMES.iter().filter(|o| **o != "answered") {
            assert_eq!(lookups(&text, outcome), 0.0, "{name}: {outcome}");
        }
        if expected > 0.0 {
            // Its session and its answer were each committed before they were released.
            assert!(
                value(&text, "fedq_audit_commit_seconds_count") >= 2.0,
                "{text}"
            );
            assert_eq!(
                value(&text, "fedq_node_sessions_total{outcome=\"opened\"}"),
                1.0
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_is_not_ready_while_its_audit_log_or_store_is_gone_or_its_date_is_years_off() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path(), 162);
    let name = fed.nodes.keys().next().unwrap().clone();
    let config = fed.layout.node_config(&name);
    with_ops_listener(&config);
    let mut node = FedqProcess::node(&config, None);
    let ops = node.ops_addr();
    assert!(node
        .ready_line()
        .contains("health and metrics on http://127.0.0.1:"));

    let (status, body) = health(ops).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready", "{body}");
    assert_eq!(body["process"], "node");
    assert_eq!(body["name"], name.as_str());
    for check in ["store", "audit", "policy", "clock"] {
        assert_eq!(body["checks"][check]["ok"], true, "{check}: {body}");
        assert!(body["checks"][check]["detail"].is_string(), "{body}");
    }

    // Each file moved away under the running node: not ready, that check names it; ready
    // again once it is back.
    let audit = fed.layout.root.join(format!("audit/{name}-audit.db"));
    let store = fed.layout.store(&name);
    for (check, file) in [("audit", &audit), ("store", &store)] {
        let aside = file.with_extension("aside");
        std::fs::rename(file, &aside).unwrap();
        let (status, body) = health(ops).await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["status"], "not_ready", "{body}");
        assert_eq!(body["checks"][check]["ok"], false, "{body}");
        let detail = body["checks"][check]["detail"].as_str().unwrap();
        assert!(
            detail.contains("was removed or renamed") && detail.contains("put it back"),
            "{detail}"
        );
        for other in ["store", "audit", "policy", "clock"]
            .iter()
            .filter(|c| **c != check)
        {
            assert_eq!(body["checks"][other]["ok"], true, "{other}: {body}");
        }
        std::fs::rename(&aside, file).unwrap();
        let (status, body) = health(ops).await;
        assert_eq!(status, 200, "{body}");
    }
    assert!(node.terminate().success());

    // Its date pinned three years from the system's: every coordinator with a right clock
    // would be answered "clock skew", so it is not ready, and says what to change.
    let text = std::fs::read_to_string(&config).unwrap();
    let pinned = format!("today = \"{}\"", fed.today);
    assert!(text.contains(&pinned), "{text}");
    let later = fed.today.replace_year(fed.today.year() + 3).unwrap();
    std::fs::write(
        &config,
        text.replace(&pinned, &format!("today = \"{later}\"")),
    )
    .unwrap();
    let node = FedqProcess::node(&config, None);
    let (status, body) = health(node.ops_addr()).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["checks"]["clock"]["ok"], false, "{body}");
    let detail = body["checks"]["clock"]["detail"].as_str().unwrap();
    assert!(
        detail.contains(&later.to_string()) && detail.contains("remove `today`"),
        "{detail}"
    );
    assert_eq!(body["checks"]["store"]["ok"], true, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_serves_its_health_and_described_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path(), 163);
    let config = fed.layout.gateway_config();
    with_ops_listener(&config);
    let mut cmd = support::process::fedq();
    cmd.args(["gateway", "serve", "--config"]).arg(&config);
    let gateway = FedqProcess::spawn(cmd, "gateway serving", None);
    let ops = gateway.ops_addr();

    let (status, body) = health(ops).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready", "{body}");
    assert_eq!(body["process"], "gateway", "{body}");
    for check in ["audit", "clock"] {
        assert_eq!(body["checks"][check]["ok"], true, "{body}");
    }

    let text = metrics(ops).await;
    for outcome in ["answered", "refused", "failed"] {
        let series = format!("fedq_gateway_queries_total{{outcome=\"{outcome}\"}}");
        assert_eq!(value(&text, &series), 0.0, "{outcome}");
    }
    assert_eq!(value(&text, "fedq_gateway_unauthenticated_total"), 0.0);
    assert!(value(&text, "fedq_certificate_expiry_seconds") > 86_400.0);
    assert!(value(&text, "fedq_crl_next_update_seconds") > 86_400.0);
    assert!(value(&text, "fedq_gateway_tls_certificate_expiry_seconds") > 86_400.0);

    // A request with a token the gateway never issued: refused, counted, reaching no one.
    let query = fedq_coordinator::query::QueryRequest {
        subject: fed.scenario.clean.resident_id.clone(),
        purpose: "administrative-licensing".into(),
        view: Some("blacklist-check".into()),
        ..Default::default()
    };
    let url = format!("https://localhost:{}", fed.gateway.port());
    let (status, _) = fedq_coordinator::client::send_to_gateway(
        &url,
        &fed.layout.gateway_ca(),
        "fgw_not-a-token",
        &query,
    )
    .await
    .unwrap();
    assert_eq!(status, 401);
    let text = metrics(ops).await;
    assert_eq!(value(&text, "fedq_gateway_unauthenticated_total"), 1.0);
    assert!(!text.contains(&fed.scenario.clean.resident_id));
}

/// Issue 13 §6 and 16 §4: a record the node cannot read back makes its lookup
/// *unverified*, and the node's counter of that outcome (not `answered`) rises: the
/// operator sees unreadable evidence in `/metrics`, not only in the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unverified_lookup_is_counted_as_unverified() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path(), 163);
    // Every court record becomes a body that is no record at all (what a bad restore or
    // a hand edit leaves behind).
    let conn = fedq_node::store::connect(&fed.layout.store("court")).unwrap();
    let spoiled = conn
        .execute(
            "UPDATE records SET body = '[1, 2]' WHERE dataset LIKE 'court.%'",
            [],
        )
        .unwrap();
    assert!(spoiled > 0, "the court store holds no records to spoil");
    drop(conn);
    let mut nodes = Vec::new();
    for name in fed.nodes.keys() {
        let config = fed.layout.node_config(name);
        with_ops_listener(&config);
        nodes.push((name.clone(), FedqProcess::node(&config, None)));
    }
    let _coordinator = FedqProcess::coordinator(&fed.layout.coordinator_config(), None);
    let court = &nodes.iter().find(|(n, _)| n == "court").unwrap().1;
    let before = metrics(court.ops_addr()).await;
    assert_eq!(lookups(&before, "unverified"), 0.0);

    let subject = fed.scenario.blacklisted.resident_id.clone();
    let (status, answer) =
        fedq_sandbox::ask(&fed, &fedq_sandbox::licensing(&subject, "blacklist-check"))
            .await
            .unwrap();
    assert_eq!(status, 200, "{answer}");
    let court_answer = answer["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == "court")
        .unwrap_or_else(|| panic!("the court was not asked: {answer}"));
    assert!(
        court_answer.to_string().contains("unverified"),
        "{court_answer}"
    );

    let after = metrics(court.ops_addr()).await;
    assert_eq!(lookups(&after, "unverified"), 1.0, "{after}");
    assert_eq!(lookups(&after, "answered"), 0.0, "{after}");
    assert!(!after.contains(&subject));
}
