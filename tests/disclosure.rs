//! Public disclosure end to end (issue 20 §1, 长政办发〔2017〕62号 §十五 and §三), through the
//! `fedq` binary with certificates from `fedq certs`: each department's signed part
//! (`fedq disclose part`), the merged publication (`fedq disclose publish`) and its check
//! (`fedq disclose verify`); a disputed record (an objection filed through real node and
//! coordinator processes) left out; a part or a published file changed after signing, a
//! part for another date and a revoked department refused; the making registered in the
//! node's log with counts only.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::path::{Path, PathBuf};

use fedq_sandbox::{rights, Federation};
use serde_json::Value;
use support::process::{fedq, output_within, FedqProcess, COMMAND_LIMIT};

fn run(args: &[&str]) -> std::process::Output {
    output_within(fedq().args(args), COMMAND_LIMIT)
}

fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn refused(args: &[&str]) -> String {
    let o = run(args);
    assert!(!o.status.success(), "{args:?} succeeded");
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(err.trim().lines().count(), 1, "not one line: {err}");
    err
}

fn part(fed: &Federation, node: &str, list: &str, date: &str, out: &Path) {
    let config = fed.layout.node_config(node);
    ok(&[
        "disclose",
        "part",
        "--config",
        config.to_str().unwrap(),
        "--list",
        list,
        "--date",
        date,
        "--out",
        out.to_str().unwrap(),
    ]);
}

fn publish(fed: &Federation, list: &str, date: &str, out: &Path, parts: &[&Path]) -> String {
    let pki = fed.layout.pki();
    let mut args = vec![
        "disclose",
        "publish",
        "--dir",
        pki.to_str().unwrap(),
        "--list",
        list,
        "--date",
        date,
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(parts.iter().map(|p| p.to_str().unwrap()));
    let o = run(&args);
    if o.status.success() {
        String::new()
    } else {
        String::from_utf8_lossy(&o.stderr).into_owned()
    }
}

fn document(dir: &Path, stem: &str) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join(format!("{stem}.json"))).unwrap()).unwrap()
}

fn cases(doc: &Value) -> Vec<String> {
    doc["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["cells"]["case_no"].as_str().map(str::to_owned))
        .collect()
}

fn files_of(dir: &Path, stem: &str) -> Vec<(PathBuf, Vec<u8>)> {
    ["json", "csv", "html", "manifest.json"]
        .iter()
        .map(|ext| {
            let p = dir.join(format!("{stem}.{ext}"));
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_departments_signed_parts_make_one_checkable_publication() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = fedq_testkit::federation(tmp.path(), 300, 23);
    let today = fed.today.to_string();
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let court_part = work.join("court.part.json");
    let civil_part = work.join("civil.part.json");
    part(&fed, "court", "dishonesty", &today, &court_part);
    part(&fed, "civil-affairs", "honours", &today, &civil_part);

    // A department that marks nothing for a list has no part of it, and says so.
    let config = fed.layout.node_config("tax");
    let err = refused(&[
        "disclose",
        "part",
        "--config",
        config.to_str().unwrap(),
        "--list",
        "dishonesty",
        "--out",
        work.join("tax.part.json").to_str().unwrap(),
    ]);
    assert!(err.contains("marks no dataset"), "{err}");
    assert!(!work.join("tax.part.json").exists());

    let out = work.join("published");
    assert_eq!(
        publish(&fed, "dishonesty", &today, &out, &[&court_part]),
        ""
    );
    let stem = format!("dishonesty-{today}");
    let doc = document(&out, &stem);
    let listed = cases(&doc);
    assert!(!listed.is_empty(), "nothing published: {doc}");
    let blacklisted = &fed.scenario.blacklisted;
    let case = rights::record_key(blacklisted, "court.dishonest_debtors").unwrap();
    assert!(
        listed.contains(&case),
        "the active listing is not published"
    );
    // The expired and the repaired persons' court records are not.
    for person in [&fed.scenario.expired, &fed.scenario.repaired] {
        if let Some(key) = rights::record_key(person, "court.dishonest_debtors") {
            assert!(!listed.contains(&key), "a withheld record was published");
        }
    }
    // No published file holds a full resident ID or the amount owed.
    let first = files_of(&out, &stem);
    for (path, bytes) in &first {
        let text = String::from_utf8_lossy(bytes);
        for person in [blacklisted, &fed.scenario.expired, &fed.scenario.clean] {
            assert!(
                !text.contains(&person.resident_id),
                "{} holds a resident ID",
                path.display()
            );
        }
        assert!(!text.contains("amount_owed"), "{}", path.display());
    }
    let manifest: Value = serde_json::from_slice(&first[3].1).unwrap();
    assert_eq!(manifest["parts"][0]["node"], "court");
    assert_eq!(
        manifest["parts"][0]["records"].as_u64().unwrap(),
        listed.len() as u64
    );
    assert!(manifest["parts"][0]["signature"]
        .as_str()
        .unwrap()
        .starts_with("ey"));
    let html = String::from_utf8_lossy(&first[2].1);
    assert!(html.contains("个人严重失信信息公开") && html.contains(&case));

    // The same part on the same date gives the same bytes.
    let again = work.join("again");
    assert_eq!(
        publish(&fed, "dishonesty", &today, &again, &[&court_part]),
        ""
    );
    let second = files_of(&again, &stem);
    for ((_, a), (_, b)) in first.iter().zip(&second) {
        assert_eq!(a, b);
    }

    // Anyone checks it; a changed published file or manifest does not check.
    let pki = fed.layout.pki();
    let manifest_path = out.join(format!("{stem}.manifest.json"));
    let said = ok(&[
        "disclose",
        "verify",
        "--dir",
        pki.to_str().unwrap(),
        manifest_path.to_str().unwrap(),
    ]);
    assert!(said.contains("what the departments signed"), "{said}");
    let csv = out.join(format!("{stem}.csv"));
    let original = std::fs::read(&csv).unwrap();
    std::fs::write(&csv, [original.as_slice(), b"x\r\n"].concat()).unwrap();
    let err = refused(&[
        "disclose",
        "verify",
        "--dir",
        pki.to_str().unwrap(),
        manifest_path.to_str().unwrap(),
    ]);
    assert!(err.contains("changed after publication"), "{err}");
    std::fs::write(&csv, &original).unwrap();
    // The manifest alone changed (a count raised): it is not what the parts give.
    let manifest_bytes = std::fs::read(&manifest_path).unwrap();
    let mut m1 = manifest.clone();
    m1["records"] = Value::from(manifest["records"].as_u64().unwrap() + 1);
    std::fs::write(&manifest_path, serde_json::to_vec_pretty(&m1).unwrap()).unwrap();
    let err = refused(&[
        "disclose",
        "verify",
        "--dir",
        pki.to_str().unwrap(),
        manifest_path.to_str().unwrap(),
    ]);
    assert!(err.contains("not what the departments signed"), "{err}");
    std::fs::write(&manifest_path, &manifest_bytes).unwrap();
    // Rows dropped from the JSON and the manifest's digests recomputed: the signature
    // still vouches for the rows as they were.
    let mut doc2 = doc.clone();
    doc2["rows"].as_array_mut().unwrap().pop();
    let json2 = serde_json::to_vec_pretty(&doc2).unwrap();
    let json_path = out.join(format!("{stem}.json"));
    std::fs::write(&json_path, &json2).unwrap();
    let mut m2 = manifest.clone();
    m2["files"][format!("{stem}.json")] =
        Value::String(fedq_policy::disclosure::sha256_hex(&json2));
    std::fs::write(&manifest_path, serde_json::to_vec_pretty(&m2).unwrap()).unwrap();
    let err = refused(&[
        "disclose",
        "verify",
        "--dir",
        pki.to_str().unwrap(),
        manifest_path.to_str().unwrap(),
    ]);
    assert!(err.contains("not the ones it signed"), "{err}");

    // A part changed after signing, a part for another date, a part of another list.
    let mut changed: Value = serde_json::from_slice(&std::fs::read(&court_part).unwrap()).unwrap();
    changed["rows"].as_array_mut().unwrap().remove(0);
    let changed_path = work.join("changed.part.json");
    std::fs::write(&changed_path, serde_json::to_vec(&changed).unwrap()).unwrap();
    let err = publish(
        &fed,
        "dishonesty",
        &today,
        &work.join("x"),
        &[&changed_path],
    );
    assert!(err.contains("changed after signing"), "{err}");
    let err = publish(
        &fed,
        "dishonesty",
        "2030-01-01",
        &work.join("x"),
        &[&court_part],
    );
    assert!(err.contains("make it again for this date"), "{err}");
    let err = publish(&fed, "dishonesty", &today, &work.join("x"), &[&civil_part]);
    assert!(err.contains("`honours` list"), "{err}");
    assert!(
        !work.join("x").exists(),
        "a refused publication wrote files"
    );

    // The red list from civil affairs.
    let honours = work.join("honours");
    assert_eq!(
        publish(&fed, "honours", &today, &honours, &[&civil_part]),
        ""
    );
    let red = document(&honours, &format!("honours-{today}"));
    assert!(!red["rows"].as_array().unwrap().is_empty());
    let page = std::fs::read_to_string(honours.join(format!("honours-{today}.html"))).unwrap();
    assert!(page.contains("红名单"));

    // Each making is registered in the node's log: counts, no person, no row.
    let audit = fedq_audit::list(
        &fed.layout.root.join("audit/court-audit.db"),
        &fedq_audit::ListFilter::default(),
    )
    .unwrap();
    let made: Vec<_> = audit
        .iter()
        .filter(|e| e.record.kind == fedq_audit::EntryKind::Disclosure)
        .collect();
    assert_eq!(made.len(), 1);
    assert_eq!(made[0].record.subject, "-");
    let outcome = made[0].record.outcome.to_string();
    assert!(
        outcome.contains(&format!("\"records\":{}", listed.len())),
        "{outcome}"
    );
    assert!(!outcome.contains(&case), "the entry names a case");

    // A disputed record drops out: the person objects through the real processes.
    let mut nodes = support::process::start_nodes(&fed, None);
    let mut coordinator = FedqProcess::coordinator(&fed.layout.coordinator_config(), None);
    let filing = fedq_wire::rights::Filing {
        record: case.clone(),
        reason: "该案已履行完毕".into(),
        evidence: "执行款收据".into(),
        grounds: None,
    };
    let (status, filed) = rights::file(
        &fed,
        &blacklisted.resident_id,
        "object",
        "court.dishonest_debtors",
        filing,
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{filed}");
    coordinator.terminate();
    for n in &mut nodes {
        n.terminate();
    }
    let disputed_part = work.join("disputed.part.json");
    part(&fed, "court", "dishonesty", &today, &disputed_part);
    let disputed = work.join("disputed");
    assert_eq!(
        publish(&fed, "dishonesty", &today, &disputed, &[&disputed_part]),
        ""
    );
    let now_listed = cases(&document(&disputed, &stem));
    assert!(
        !now_listed.contains(&case),
        "a disputed record was published"
    );
    assert_eq!(now_listed.len() + 1, listed.len());

    // A revoked department's part no longer counts.
    ok(&[
        "certs",
        "revoke",
        "--dir",
        pki.to_str().unwrap(),
        "--name",
        "court",
    ]);
    let err = publish(
        &fed,
        "dishonesty",
        &today,
        &work.join("y"),
        &[&disputed_part],
    );
    assert!(err.contains("does not verify"), "{err}");
}
