//! Test support for fedq's end-to-end tests (a dev-dependency of the root package only;
//! the `fedq` binary never links it): a sandbox federation built quietly for a test
//! ([`federation`]), a bare federation directory with real certificates, the reference
//! catalogue and policy and hand-written node configs ([`TestFederation`]), the
//! requester's side of the request proof for tests that talk to a node directly
//! ([`proof`]), and small readers of what the processes leave (audit logs, metrics, CSV).
//!
//! Everything here panics on failure: a fixture that cannot be set up fails its test.
//! What needs the `fedq` binary under test (starting it as processes) stays in the root
//! package's `tests/support/`, where Cargo names the binary.

#![warn(missing_docs, unreachable_pub)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};

use fedq_certs::pki::{CertificateAuthority, IssueOptions};
use fedq_certs::Role;
use fedq_sandbox::{build, BuildOptions, Federation};

/// The reference federation built in `root` for a test: `persons` synthetic persons from
/// `seed`, quiet, on any free ports.
pub fn federation(root: &Path, persons: u64, seed: u64) -> Federation {
    build(
        root,
        &BuildOptions {
            persons,
            seed,
            verbose: false,
            well_known_ports: false,
        },
    )
    .unwrap()
}

/// The repository's reference files.
pub fn reference() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../reference/changsha")
}

/// A valid resident ID from its first 17 digits.
pub fn rid(first17: &str) -> String {
    let bytes: [u8; 17] = first17.as_bytes().try_into().unwrap();
    let mut s = first17.to_owned();
    s.push(char::from(fedq_wire::resident_id::check_character(&bytes)));
    s
}

/// A temporary federation: PKI, copies of the reference catalogue and policy.
#[derive(Debug)]
pub struct TestFederation {
    /// The directory; removed when this is dropped.
    pub tmp: tempfile::TempDir,
    /// Its path.
    pub root: PathBuf,
    /// `pki/`: the CA and every certificate issued.
    pub pki: PathBuf,
}

impl TestFederation {
    /// A federation directory with certificates for `nodes`, a coordinator and
    /// `requesters`, and copies of the reference policy and catalogue.
    pub fn new(nodes: &[&str], requesters: &[&str]) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_owned();
        let pki = root.join("pki");
        let ca = CertificateAuthority::init(&pki, "changsha", false).unwrap();
        for n in nodes {
            ca.issue(Role::Node, n, &IssueOptions::default()).unwrap();
        }
        ca.issue(
            Role::Coordinator,
            "coordinator",
            &IssueOptions {
                hosts: vec!["localhost".into(), "127.0.0.1".into()],
                ..IssueOptions::default()
            },
        )
        .unwrap();
        for r in requesters {
            ca.issue(Role::Requester, r, &IssueOptions::default())
                .unwrap();
        }
        let policy_dir = root.join("policy");
        std::fs::create_dir_all(policy_dir.join("catalogue")).unwrap();
        for entry in std::fs::read_dir(reference().join("catalogue")).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(
                entry.path(),
                policy_dir.join("catalogue").join(entry.file_name()),
            )
            .unwrap();
        }
        std::fs::copy(
            reference().join("policy.toml"),
            policy_dir.join("policy.toml"),
        )
        .unwrap();
        std::fs::create_dir_all(root.join("data")).unwrap();
        Self { tmp, root, pki }
    }

    /// Writes `nodes/NAME.toml` for a node on 127.0.0.1:0 with today pinned.
    pub fn node_config(&self, name: &str, today: &str) -> PathBuf {
        let dir = self.root.join("nodes");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(
            &path,
            format!(
                r#"name = "{name}"
listen = "127.0.0.1:0"
catalogue = "../policy/catalogue/{name}.toml"
policy = "../policy/policy.toml"
store = "../data/{name}.db"
audit = "../data/{name}-audit.db"
pseudonym_key = "../data/{name}-pseudonym.key"
today = "{today}"

[tls]
ca = "../pki/ca.crt"
crl = "../pki/crl.pem"
cert = "../pki/{name}.crt"
key = "../pki/{name}.key"
"#
            ),
        )
        .unwrap();
        path
    }

    /// Writes `text` at `rel` under the root, creating directories; returns the path.
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// The rows of a CSV file, each as header → value.
pub fn csv_rows(path: &Path) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            headers
                .iter()
                .map(str::to_owned)
                .zip(r.iter().map(str::to_owned))
                .collect()
        })
        .collect()
}

/// What a coordinator's answer says, without what differs between two askings of the
/// same question (its query id, each node's receipt).
pub fn meaning(answer: &serde_json::Value) -> serde_json::Value {
    // Each node's receipt is for the audit entry of that one answer, so it differs
    // between two askings of the same query; what the answer means does not.
    let mut nodes = answer["nodes"].clone();
    for n in nodes.as_array_mut().into_iter().flatten() {
        if let Some(n) = n.as_object_mut() {
            n.remove("receipt");
            n.remove("answer_sha256");
        }
    }
    serde_json::json!({
        "complete": answer["complete"],
        "nodes": nodes,
        "view_result": answer["view_result"],
        "datasets": answer["datasets"],
    })
}

/// Writes one line to the stderr descriptor itself, not through `eprintln!`, so the test
/// harness does not capture it: figures and skips show in every run's output.
pub fn report(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// The coordinator's query id → each node's own id of that query, read from the
/// coordinator's audit log at `path`: since issue 14 §6 every node records an id of its
/// own, and the coordinator's entry is the only place they can be joined.
pub fn node_query_ids(
    path: &Path,
) -> std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>> {
    fedq_audit::list(path, &fedq_audit::ListFilter::default())
        .unwrap()
        .into_iter()
        .filter(|e| !e.record.node_query_ids.is_empty())
        .map(|e| (e.record.query_id, e.record.node_query_ids))
        .collect()
}

pub mod proof;

/// A node's receipt for its answer, checked as a third party would: against the key of
/// the node's certificate in `pki` (`NODE.crt`), and bound to the sealed answer whose
/// SHA-256 the report carries beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedReceipt {
    /// The entry's sequence number in the node's log.
    pub seq: u64,
    /// The entry's hash, as the log stores it.
    pub entry_hash: String,
    /// The SHA-256 of the sealed answer (hex), as the entry records it.
    pub answer_sha256: String,
}

/// Checks the `receipt` of one node's `report` in an answer (`nodes[i]` of
/// `fedq query --json`); says why it does not check.
pub fn checked_receipt(
    pki: &Path,
    node: &str,
    report: &serde_json::Value,
) -> Result<CheckedReceipt, String> {
    let receipt: fedq_client::query::AuditReceipt =
        serde_json::from_value(report["receipt"].clone())
            .map_err(|e| format!("node `{node}` gave no receipt ({e}): {report}"))?;
    let answer_sha256 = report["answer_sha256"]
        .as_str()
        .ok_or_else(|| format!("node `{node}`'s report has no answer_sha256: {report}"))?;
    let (log, _) = fedq_audit::review::certificate_verifiers(&pki.join(format!("{node}.crt")))
        .map_err(|e| e.to_string())?;
    let receipt = fedq_audit::checkpoint::Receipt {
        checkpoint: receipt.checkpoint,
        index: receipt.index,
        entry_hash: receipt.entry_hash,
        content_hash: receipt.content_hash,
        proof: receipt.proof,
    };
    let hex32 = |text: &str| -> Option<[u8; 32]> { hex::decode(text).ok()?.try_into().ok() };
    let content = receipt
        .content_hash
        .as_deref()
        .and_then(hex32)
        .ok_or_else(|| format!("node `{node}`'s receipt has no content hash"))?;
    let answer =
        hex32(answer_sha256).ok_or_else(|| format!("bad answer_sha256 `{answer_sha256}`"))?;
    let bound = fedq_audit::checkpoint::answer_bound_hash(&content, &answer);
    if hex32(&receipt.entry_hash) != Some(bound) {
        return Err(format!(
            "node `{node}`'s receipt is not for the answer it came with"
        ));
    }
    receipt
        .verify(&log)
        .map_err(|e| format!("node `{node}`'s receipt does not check: {e}"))?;
    Ok(CheckedReceipt {
        seq: receipt.index + 1,
        entry_hash: receipt.entry_hash,
        answer_sha256: answer_sha256.to_owned(),
    })
}

/// A kept-alive API connection to `fed`'s coordinator as `requester`, with that
/// requester's certificate from the federation's CA (sessions opened on first use).
pub async fn connect_as(
    fed: &Federation,
    requester: &str,
) -> Result<fedq_coordinator::client::ApiConnection, fedq_coordinator::client::ClientError> {
    let pki = fed.layout.pki();
    fedq_coordinator::client::ApiConnection::connect(
        &format!("https://{}", fed.coordinator),
        &pki.join(format!("{requester}.crt")),
        &pki.join(format!("{requester}.key")),
        &pki.join("ca.crt"),
    )
    .await
}

/// `GET /metrics` from `fed`'s coordinator's ops listener.
pub async fn coordinator_metrics(fed: &Federation) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let config =
        fedq_coordinator::config::CoordinatorConfig::load(&fed.layout.coordinator_config())
            .unwrap();
    let ops = config.ops_listen.unwrap();
    let mut tcp = tokio::net::TcpStream::connect(ops).await.unwrap();
    tcp.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tcp.read_to_string(&mut response),
    )
    .await
    .unwrap()
    .unwrap();
    response
}

/// `fedq_node_up{node="NODE"}` in a coordinator's metrics (1 up, 0 marked down).
pub fn node_up(metrics: &str, node: &str) -> Option<f64> {
    let prefix = format!("fedq_node_up{{node=\"{node}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|v| v.trim().parse().ok())
}
