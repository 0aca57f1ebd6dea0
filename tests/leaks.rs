//! Nothing personal at rest outside the stores: after a federation of real processes has
//! answered and refused queries (logging at `trace`), and after a `fedq demo` run, every
//! file the coordinator and the nodes left — logs, audit stores (the SQLite bytes,
//! including their -wal and -shm files while running), the `/metrics` scrape, temporary
//! files (each process's TMPDIR points into the federation), configs and keys — is
//! scanned for every synthetic person's resident ID and for record values the policy
//! withholds. Only the stores themselves (`stores/`), the source exports (`data/`) and the
//! policy text (`policy/`) may hold them, and are not scanned.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use fedq_sandbox::{ask, licensing, self_query, Ask, Federation};
use fedq_testkit::federation;
use support::csv_rows;
use support::process::{serve_command, FedqProcess, COORDINATOR_READY, NODE_READY};

/// Top-level directories of a federation that hold records by design.
const RECORD_HOLDERS: [&str; 3] = ["stores", "data", "policy"];

/// What must not be found, and why.
#[derive(Debug, Default)]
struct Needles {
    /// Every resident ID of the synthetic persons.
    ids: BTreeSet<String>,
    /// Withheld record values, each with what it is.
    values: Vec<(String, String)>,
}

/// One thing found where it must not be.
#[derive(Debug, PartialEq, Eq)]
struct Finding {
    file: PathBuf,
    what: String,
}

/// Every file under `root`, except the top-level directories in `skip`.
fn files_under(root: &Path, skip: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if dir == root && skip.iter().any(|s| entry.file_name().to_str() == Some(*s)) {
                continue;
            }
            match entry.file_type() {
                Ok(t) if t.is_dir() => pending.push(path),
                Ok(t) if t.is_file() => out.push(path),
                _ => {}
            }
        }
    }
    out.sort();
    out
}

/// Every resident ID and withheld value found in the files under `root` (but not in
/// `skip`). IDs are found as 18-character windows of runs of digits (and `X`), so an ID
/// inside a longer run of digits is found too; values as UTF-8 byte strings.
fn scan(root: &Path, skip: &[&str], needles: &Needles) -> (usize, Vec<Finding>) {
    let files = files_under(root, skip);
    let mut findings = Vec::new();
    for file in &files {
        // SQLite's -wal and -shm files may vanish as their database closes.
        let Ok(bytes) = std::fs::read(file) else {
            continue;
        };
        let mut run_start = None;
        for i in 0..=bytes.len() {
            let in_run = bytes
                .get(i)
                .is_some_and(|b| b.is_ascii_digit() || *b == b'X');
            match (in_run, run_start) {
                (true, None) => run_start = Some(i),
                (false, Some(start)) => {
                    run_start = None;
                    if i - start >= 18 {
                        for w in bytes[start..i].windows(18) {
                            let candidate = std::str::from_utf8(w).unwrap();
                            if needles.ids.contains(candidate) {
                                findings.push(Finding {
                                    file: file.clone(),
                                    what: "a resident ID".into(),
                                });
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        for (value, what) in &needles.values {
            if bytes.windows(value.len()).any(|w| w == value.as_bytes()) {
                findings.push(Finding {
                    file: file.clone(),
                    what: what.clone(),
                });
            }
        }
    }
    (files.len(), findings)
}

/// The needles of a built federation directory: every resident ID in any of its
/// synthetic exports, and the scenario persons' withheld values (household registration,
/// denied to every requester of the tour but the person; unmasked names, which licensing
/// sees only masked; the blacklisted person's obligation, which no rule grants licensing).
fn needles_of(root: &Path) -> Needles {
    let scenario = fedq_synth::scenario::Scenario::read(&root.join("data")).unwrap();
    let mut needles = Needles::default();
    for dept in std::fs::read_dir(root.join("data")).unwrap() {
        let dept = dept.unwrap().path();
        if !dept.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&dept).unwrap() {
            for row in csv_rows(&file.unwrap().path()) {
                for v in row.values() {
                    if fedq_wire::ResidentId::parse(v).is_ok() {
                        needles.ids.insert(v.clone());
                    }
                }
            }
        }
    }
    let scenario_ids: BTreeSet<&str> = scenario
        .roles()
        .iter()
        .map(|(_, p)| p.resident_id.as_str())
        .collect();
    for row in csv_rows(&root.join("data/public-security/identity_basics.csv")) {
        if scenario_ids.contains(row["resident_id"].as_str()) {
            needles.values.push((
                row["household_registration"].clone(),
                "a household registration".into(),
            ));
        }
    }
    for (role, person) in scenario.roles() {
        needles
            .values
            .push((person.name.clone(), format!("the {role} person's name")));
    }
    let debtors = csv_rows(&root.join("data/court/dishonest_debtors.csv"));
    let row = debtors
        .iter()
        .find(|r| r["resident_id"] == scenario.blacklisted.resident_id)
        .unwrap();
    needles
        .values
        .push((row["obligation"].clone(), "a withheld obligation".into()));
    assert!(needles.ids.len() >= 100, "{} ids", needles.ids.len());
    needles
}

fn assert_clean(root: &Path, needles: &Needles, at_least: usize) {
    // The control: the same needles are found where the records are kept, so the scan
    // below looks for what really is in this federation's data.
    let (_, in_stores) = scan(&root.join("stores"), &[], needles);
    for what in [
        "a resident ID",
        "a household registration",
        "a withheld obligation",
    ] {
        assert!(
            in_stores.iter().any(|f| f.what == what),
            "{what} is not even in the stores: the needles are wrong"
        );
    }
    let (scanned, findings) = scan(root, &RECORD_HOLDERS, needles);
    assert!(
        findings.is_empty(),
        "personal data outside the stores: {findings:?}"
    );
    assert!(scanned >= at_least, "only {scanned} files scanned");
}

#[test]
fn the_scanner_finds_what_it_looks_for_and_skips_only_the_record_holders() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let id = "43010219800101123X".to_owned();
    let needles = Needles {
        ids: BTreeSet::from([id.clone()]),
        values: vec![("长沙市芙蓉区五一大道1号".into(), "an address".into())],
    };
    let write = |rel: &str, bytes: &[u8]| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    };
    write(
        "logs/clean.log",
        b"lookup answered subject=430102********123X",
    );
    let mut binary = vec![0u8, 7, 255, b'1', b'2'];
    binary.extend_from_slice(id.as_bytes());
    binary.extend_from_slice(b"99\x00");
    write("audit/x/deep.db", &binary);
    write("tmp/end.txt", id.as_bytes());
    write("metrics.txt", "地址=长沙市芙蓉区五一大道1号".as_bytes());
    write("stores/court.db", id.as_bytes());
    let (scanned, findings) = scan(root, &RECORD_HOLDERS, &needles);
    assert_eq!(scanned, 4);
    let found: Vec<(String, &str)> = findings
        .iter()
        .map(|f| {
            (
                f.file.strip_prefix(root).unwrap().display().to_string(),
                f.what.as_str(),
            )
        })
        .collect();
    assert_eq!(
        found,
        vec![
            ("audit/x/deep.db".to_owned(), "a resident ID"),
            ("metrics.txt".to_owned(), "an address"),
            ("tmp/end.txt".to_owned(), "a resident ID"),
        ]
    );
}

/// `GET /metrics` from the coordinator's ops listener.
async fn scrape_metrics(fed: &Federation) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let config =
        fedq_coordinator::config::CoordinatorConfig::load(&fed.layout.coordinator_config())
            .unwrap();
    let ops = config
        .ops_listen
        .expect("the demo's coordinator has an ops listener");
    let mut tcp = tokio::net::TcpStream::connect(ops).await.unwrap();
    tcp.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).await.unwrap();
    response
}

/// Resident IDs typed into every field of a query — as the subject in the wrong JSON type,
/// as the purpose, legal basis, consent, view, dataset, field, an unknown field's name and
/// value, inside a nested value, as the consent token, as the case reference — each refused
/// with a 4xx (a consent that is not a token the consent authority signed is refused, never
/// quoted). The caller then scans every log and audit store.
async fn typed_into_every_field(fed: &Federation) {
    use serde_json::json;
    let s = &fed.scenario;
    let subject = s.blacklisted.resident_id.as_str();
    let ids: Vec<&str> = s
        .roles()
        .iter()
        .map(|(_, p)| p.resident_id.as_str())
        .collect();
    let other = ids.iter().copied().find(|i| *i != subject).unwrap();
    let digits = ids
        .iter()
        .copied()
        .find(|i| i.bytes().all(|b| b.is_ascii_digit()))
        .expect("a scenario person whose ID is all digits");
    let basis = fedq_sandbox::LICENSING_BASIS;
    let case = fedq_sandbox::LICENSING_CASE;
    let purpose = "administrative-licensing";
    let view = "blacklist-check";
    let datasets = |items: serde_json::Value| {
        json!({ "purpose": purpose, "legal_basis": basis, "datasets": items }).to_string()
    };
    let cases: Vec<(String, u16)> = vec![
        (
            format!(r#"{{"subject": {digits}, "purpose": "{purpose}", "legal_basis": "{basis}", "view": "{view}"}}"#),
            400,
        ),
        (json!({ "purpose": other, "legal_basis": basis, "view": view }).to_string(), 403),
        (json!({ "purpose": purpose, "legal_basis": other, "view": view }).to_string(), 403),
        (json!({ "purpose": purpose, "legal_basis": basis, "view": other }).to_string(), 400),
        (datasets(json!([other])), 400),
        (datasets(json!([format!("court.{other}")])), 400),
        (datasets(json!([format!("court.dishonest_debtors.{other}")])), 400),
        (
            format!(r#"{{"purpose": "{purpose}", "legal_basis": "{basis}", "datasets": ["court.dishonest_debtors", {digits}]}}"#),
            400,
        ),
        (
            format!(r#"{{"purpose": "{purpose}", "legal_basis": "{basis}", "view": "{view}", "{other}": "{other}"}}"#),
            400,
        ),
        (json!({ "purpose": purpose, "legal_basis": basis, "view": view, "consent": { other: other } }).to_string(), 400),
        // A consent token in clear (here a resident ID typed into it): never sent to the
        // coordinator, refused whole.
        (json!({ "purpose": purpose, "legal_basis": basis, "case_reference": case, "view": view, "consent": other }).to_string(), 400),
        // A resident ID cited as the case: not of the licensing application's form, refused,
        // and neither echoed nor recorded.
        (json!({ "purpose": purpose, "legal_basis": basis, "case_reference": other, "view": view }).to_string(), 403),
        (format!(r#"{{"purpose": "{purpose}", "legal_basis": "{basis}", "view": "{other}"#), 400),
    ];
    let mut api = support::connect_as(fed, "market-regulation.licensing")
        .await
        .unwrap();
    // Every case is refused before proofs matter.
    for (i, (body, want)) in cases.into_iter().enumerate() {
        let (status, answer) = api
            .call("POST", "/v1/query", "application/json", body.into_bytes())
            .await
            .unwrap();
        assert_eq!(status, want, "case {i}: {answer}");
        // The whole body, whatever its fields are called: an ID anywhere in it is echoed
        // (and an answer without an error field cannot pass for a clean one).
        let body = answer.to_string();
        for id in &ids {
            assert!(!body.contains(id), "case {i} echoed an ID: {body}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_personal_at_rest_after_a_federation_answers_and_refuses() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let fed = federation(root, 300, 31);
    let needles = needles_of(root);
    let logs = root.join("logs");
    let tmpdir = root.join("tmp");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::create_dir_all(&tmpdir).unwrap();
    let start = |kind: &str, config: &Path, ready: &str, log: PathBuf| {
        let mut cmd = serve_command(kind, config);
        cmd.env("FEDQ_LOG", "trace").env("TMPDIR", &tmpdir);
        FedqProcess::spawn(cmd, ready, Some(&log))
    };
    let mut processes: Vec<FedqProcess> = fed
        .nodes
        .keys()
        .map(|name| {
            start(
                "node",
                &fed.layout.node_config(name),
                NODE_READY,
                logs.join(format!("node-{name}.log")),
            )
        })
        .collect();
    processes.push(start(
        "coordinator",
        &fed.layout.coordinator_config(),
        COORDINATOR_READY,
        logs.join("coordinator.log"),
    ));

    let s = &fed.scenario;
    let mut statuses = BTreeMap::new();
    for (_, person) in s.roles() {
        let id = &person.resident_id;
        let mut asks = vec![
            licensing(id, "blacklist-check"),
            licensing(id, "green-channel"),
            // The person's own report (sees their household registration: released to
            // them, still never logged).
            self_query(&fed, id, "credit-report").unwrap(),
        ];
        // Denied by a rule: household registration; and fields no rule grants licensing,
        // next to ones it may see.
        for dataset in [
            "public-security.identity_basics.household_registration",
            "court.dishonest_debtors",
        ] {
            asks.push(Ask {
                view: None,
                datasets: vec![dataset.into()],
                ..licensing(id, "")
            });
        }
        // Refused outright: statistics is aggregate-only and may not look at a named person.
        asks.push(Ask {
            requester: "statistics.bureau".into(),
            purpose: "statistics".into(),
            basis: Some("统计法".into()),
            case_reference: None,
            ..licensing(id, "blacklist-check")
        });
        for q in asks {
            let (status, _) = ask(&fed, &q).await.unwrap();
            *statuses.entry(status).or_insert(0) += 1;
        }
    }
    // A malformed subject (one digit off): refused by the requester's own side, which
    // seals it (nothing reaches the coordinator), and not echoed anywhere either.
    let mut off = s.clean.resident_id.clone().into_bytes();
    off[5] = if off[5] == b'9' { b'1' } else { off[5] + 1 };
    let off = String::from_utf8(off).unwrap();
    let err = ask(&fed, &licensing(&off, "blacklist-check"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("`subject`") && !err.contains(&off), "{err}");
    assert_eq!(statuses.get(&200), Some(&25), "{statuses:?}");
    assert_eq!(statuses.get(&403), Some(&5), "{statuses:?}");
    typed_into_every_field(&fed).await;

    let metrics = scrape_metrics(&fed).await;
    assert!(metrics.contains("fedq_queries_total"), "{metrics}");
    std::fs::write(logs.join("metrics.txt"), &metrics).unwrap();

    // While running: the audit stores' -wal and -shm files are there too.
    assert_clean(root, &needles, 30);
    for p in &mut processes {
        assert!(p.terminate().success());
    }
    assert_clean(root, &needles, 30);
    let log_bytes: u64 = files_under(&logs, &[])
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert!(log_bytes > 10_000, "the trace logs are nearly empty");
}

#[test]
fn nothing_personal_at_rest_after_a_demo_run() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("fed");
    let tmpdir = tmp.path().join("fed/tmp");
    std::fs::create_dir_all(&tmpdir).unwrap();
    let out = support::process::output_within(
        support::process::fedq()
            .args(["demo", "--no-serve", "--persons", "300", "--dir"])
            .arg(&root)
            .env("FEDQ_LOG", "debug")
            .env("TMPDIR", &tmpdir),
        support::process::COMMAND_LIMIT,
    );
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::create_dir_all(root.join("logs")).unwrap();
    std::fs::write(root.join("logs/demo.stdout"), &out.stdout).unwrap();
    std::fs::write(root.join("logs/demo.stderr"), &out.stderr).unwrap();
    let needles = needles_of(&root);
    assert_clean(&root, &needles, 20);
}
