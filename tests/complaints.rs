//! Complaints end to end (issue 19 §4, 长政办发〔2017〕62号 §九), over real `fedq`
//! processes on 127.0.0.1 with certificates from `fedq certs`: the citizen-service window
//! files a complaint about a query the person's register lists (by the court's id of it)
//! and one about a leak; the coordinator routes each to the departments concerned and
//! keeps it in its queue, registering the filing without its words; another office cannot
//! read it; a security officer lists it, takes it up and closes it with statements signed
//! by their officer key, which the coordinator verifies before recording; a forged, a
//! misattributed and a replayed statement change nothing.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::path::Path;

use fedq_coordinator::complaints::complaint::ComplaintStatus;
use fedq_sandbox::{ask, licensing, rights, Federation, OFFICERS, SELF_QUERY_OFFICE};
use serde_json::Value;
use support::process::{fedq, output_within, FedqProcess, COMMAND_LIMIT};

const WORDS: &str = "市场监管局无故查询了我的失信记录";
const CONTACT: &str = "138-0000-4242";

fn api_args(fed: &Federation, as_who: &str) -> Vec<String> {
    let pki = fed.layout.pki();
    vec![
        "--coordinator".into(),
        format!("https://{}", fed.coordinator),
        "--cert".into(),
        pki.join(format!("{as_who}.crt")).display().to_string(),
        "--key".into(),
        pki.join(format!("{as_who}.key")).display().to_string(),
        "--ca".into(),
        pki.join("ca.crt").display().to_string(),
    ]
}

fn complaint(args: &[String]) -> std::process::Output {
    let mut all = vec!["complaint".to_owned()];
    all.extend(args.iter().cloned());
    output_within(fedq().args(&all), COMMAND_LIMIT)
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json_of(o: &std::process::Output) -> Value {
    assert!(o.status.success(), "{}", stderr(o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

fn file(fed: &Federation, about: &[&str], text: &str) -> std::process::Output {
    let mut args: Vec<String> = vec!["file".into()];
    args.extend(about.iter().map(|s| (*s).to_owned()));
    args.extend(["--text".into(), text.into(), "--json".into()]);
    args.extend(api_args(fed, SELF_QUERY_OFFICE));
    complaint(&args)
}

fn queue(fed: &Federation, args: &[&str]) -> std::process::Output {
    let mut all: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    all.push("--config".into());
    all.push(fed.layout.coordinator_config().display().to_string());
    complaint(&all)
}

fn update(
    fed: &Federation,
    officer: &str,
    id: &str,
    status: &str,
    note: &str,
) -> std::process::Output {
    let pki = fed.layout.pki();
    queue(
        fed,
        &[
            "update",
            id,
            "--status",
            status,
            "--note",
            note,
            "--coordinator",
            &format!("https://{}", fed.coordinator),
            "--officer-cert",
            pki.join(format!("{officer}.crt")).to_str().unwrap(),
            "--officer-key",
            pki.join(format!("{officer}.key")).to_str().unwrap(),
        ],
    )
}

fn complaint_entries(log: &Path) -> Vec<fedq_audit::AuditEntry> {
    fedq_audit::list(log, &fedq_audit::ListFilter::default())
        .unwrap()
        .into_iter()
        .filter(|e| e.record.kind == fedq_audit::EntryKind::Complaint)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complaint_is_routed_followed_and_closed_by_signed_statements() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = fedq_testkit::federation(tmp.path(), 300, 17);
    let mut nodes = support::process::start_nodes(&fed, None);
    let mut coordinator = FedqProcess::coordinator(&fed.layout.coordinator_config(), None);
    let person = fed.scenario.blacklisted.resident_id.clone();
    let audit = fed.layout.root.join("audit/coordinator-audit.db");

    // The licensing office asks; the person's register at the court lists that query with
    // the court's id of it.
    let (status, answer) = ask(&fed, &licensing(&person, "blacklist-check"))
        .await
        .unwrap();
    assert_eq!(status, 200, "{answer}");
    let coordinator_id = answer["query_id"].as_str().unwrap().to_owned();
    let (status, register) = rights::register(&fed, &person).await.unwrap();
    assert_eq!(status, 200, "{register}");
    let court_id = register["rights"]["court"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["requester"] == "market-regulation.licensing")
        .and_then(|e| e["query_id"].as_str())
        .unwrap_or_else(|| panic!("no licensing query in {register}"))
        .to_owned();
    assert_ne!(court_id, coordinator_id, "nodes register their own ids");

    // Filed by the court's id: routed to the departments the query concerned.
    let filed = json_of(&file(&fed, &["--query", &court_id], WORDS));
    let id = filed["complaint_id"].as_str().unwrap().to_owned();
    assert_eq!(filed["status"], "open");
    let routed: Vec<&str> = filed["departments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert!(routed.contains(&"court"), "{filed}");
    let asked: Vec<String> = answer["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["node"].as_str().unwrap().to_owned())
        .collect();
    for node in &routed {
        assert!(
            asked.iter().any(|a| a == node),
            "routed to {node}, not asked: {filed}"
        );
    }
    // By the coordinator's id, the same routing.
    let again = json_of(&file(&fed, &["--query", &coordinator_id], "同一查询"));
    assert_eq!(again["departments"], filed["departments"]);
    // A leak goes to every department.
    let leak = json_of(&file(&fed, &["--leak"], "我的个人信息在网上被公开"));
    assert_eq!(
        leak["departments"].as_array().unwrap().len(),
        fed.nodes.len(),
        "{leak}"
    );

    // Bad input: one line, no echo, nothing filed.
    let before = complaint_entries(&audit).len();
    let unknown = file(&fed, &["--query", "0123456789abcdef0123456789abcdef"], "x");
    assert!(!unknown.status.success());
    assert!(
        stderr(&unknown).contains("no query is registered under that id"),
        "{}",
        stderr(&unknown)
    );
    let empty = file(&fed, &["--leak"], "   ");
    assert!(!empty.status.success());
    assert!(
        stderr(&empty).contains("`text` is empty"),
        "{}",
        stderr(&empty)
    );
    let long = "秘".repeat(2000);
    let too_long = file(&fed, &["--leak"], &long);
    assert!(!too_long.status.success());
    assert!(!stderr(&too_long).contains("秘秘"), "the input was echoed");
    assert_eq!(
        stderr(&too_long).trim().lines().count(),
        1,
        "{}",
        stderr(&too_long)
    );
    assert_eq!(
        complaint_entries(&audit).len(),
        before,
        "a refused filing was registered"
    );

    // The filer reads its status; another office's certificate learns nothing of it.
    let mut args: Vec<String> = vec!["status".into(), id.clone(), "--json".into()];
    args.extend(api_args(&fed, SELF_QUERY_OFFICE));
    let state = json_of(&complaint(&args));
    assert_eq!(state["status"], "open");
    assert!(!state.to_string().contains(WORDS), "{state}");
    let mut args: Vec<String> = vec!["status".into(), id.clone()];
    args.extend(api_args(&fed, "market-regulation.licensing"));
    let other = complaint(&args);
    assert!(!other.status.success());
    assert!(
        stderr(&other).contains("no complaint of yours has that id"),
        "{}",
        stderr(&other)
    );

    // The court's security officer finds it in the queue, with the words and contact.
    let mut contact_filed = vec![
        "file".to_owned(),
        "--leak".into(),
        "--text".into(),
        "请联系我".into(),
        "--contact".into(),
        CONTACT.into(),
    ];
    contact_filed.extend(api_args(&fed, SELF_QUERY_OFFICE));
    assert!(complaint(&contact_filed).status.success());
    let listed = queue(&fed, &["list", "--department", "court", "--status", "open"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    assert!(stdout(&listed).contains(&id), "{}", stdout(&listed));
    let shown = queue(&fed, &["show", &id]);
    assert!(stdout(&shown).contains(WORDS), "{}", stdout(&shown));
    let all = json_of(&queue(&fed, &["list", "--json"]));
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|c| c["contact"] == CONTACT),
        "{all}"
    );

    // Taken up, then closed, each with a signed statement; the filer sees both.
    let officer = OFFICERS[0];
    let o = update(&fed, officer, &id, "in-review", "已调取许可申请材料");
    assert!(o.status.success(), "{}", stderr(&o));
    let o = update(
        &fed,
        officer,
        &id,
        "closed",
        "查询有许可申请及法定依据，已答复",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("closed"), "{}", stdout(&o));
    // A closed complaint stays closed.
    let o = update(&fed, officer, &id, "in-review", "重新打开");
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("cannot become in-review"),
        "{}",
        stderr(&o)
    );
    let mut args: Vec<String> = vec!["status".into(), id.clone(), "--json".into()];
    args.extend(api_args(&fed, SELF_QUERY_OFFICE));
    let state = json_of(&complaint(&args));
    assert_eq!(state["status"], "closed");
    let history = state["history"].as_array().unwrap();
    assert_eq!(history.len(), 3, "{state}");
    assert_eq!(history[1]["status"], "in-review");
    assert_eq!(history[2]["officer"], officer);
    assert!(history[2]["officer_key_sha256"].is_string(), "{state}");

    // Statements that must not count: signed by a key of another CA, signed by another
    // officer than the connection's, or one already recorded sent again.
    let pki = fed.layout.pki();
    let leak_id = leak["complaint_id"].as_str().unwrap().to_owned();
    let stranger = tempfile::tempdir().unwrap();
    fedq_certs::pki::CertificateAuthority::init(stranger.path(), "changsha", false)
        .unwrap()
        .issue(
            fedq_certs::identity::Role::Officer,
            officer,
            &fedq_certs::pki::IssueOptions::default(),
        )
        .unwrap();
    let key_of = |dir: &Path, who: &str| {
        fedq_certs::signing::OfficerKey::load(
            &dir.join(format!("{who}.crt")),
            &dir.join(format!("{who}.key")),
        )
        .unwrap()
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut api = fedq_client::Client::connect(
        &format!("https://{}", fed.coordinator),
        &pki.join("ca.crt"),
        Some((
            &pki.join(format!("{officer}.crt")),
            &pki.join(format!("{officer}.key")),
        )),
    )
    .await
    .unwrap();
    let forged = fedq_coordinator::complaints::signed_update(
        &key_of(stranger.path(), officer),
        &leak_id,
        ComplaintStatus::Closed,
        "伪造",
        now,
    )
    .unwrap();
    let refused = api.update_complaint(&leak_id, &forged).await.unwrap_err();
    assert!(
        refused.to_string().contains("nothing was changed"),
        "{refused}"
    );
    let someone_else = fedq_coordinator::complaints::signed_update(
        &key_of(&pki, OFFICERS[1]),
        &leak_id,
        ComplaintStatus::Closed,
        "代签",
        now,
    )
    .unwrap();
    let refused = api
        .update_complaint(&leak_id, &someone_else)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("another officer"), "{refused}");
    let genuine = fedq_coordinator::complaints::signed_update(
        &key_of(&pki, officer),
        &leak_id,
        ComplaintStatus::InReview,
        "核查中",
        now,
    )
    .unwrap();
    api.update_complaint(&leak_id, &genuine).await.unwrap();
    assert!(api.update_complaint(&leak_id, &genuine).await.is_err());
    let shown = json_of(&queue(&fed, &["show", &leak_id, "--json"]));
    assert_eq!(shown["status"], "in-review", "{shown}");
    assert_eq!(shown["history"].as_array().unwrap().len(), 2, "{shown}");

    // Registered in the coordinator's audit log: every filing and change, by id and
    // departments, never the words, contact or notes; the log still verifies.
    let entries = complaint_entries(&audit);
    // Four filings, three status changes.
    assert_eq!(entries.len(), 7, "{entries:?}");
    assert!(entries.iter().any(|e| e.record.query_id == id));
    let bytes = std::fs::read(&audit).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    for secret in [WORDS, CONTACT, "已调取许可申请材料", "我的个人信息"] {
        assert!(!text.contains(secret), "`{secret}` is in the audit log");
    }
    let o = output_within(
        fedq().args([
            "audit",
            "verify",
            "--config",
            fed.layout.coordinator_config().to_str().unwrap(),
        ]),
        COMMAND_LIMIT,
    );
    assert!(o.status.success(), "{}", stderr(&o));

    // Filings are throttled per requester by the policy's rate limit (the statistics
    // bureau's is 10 a minute): 21 in a row cannot all pass, whatever minute they fall in.
    let bureau = "statistics.bureau";
    let mut api = fedq_client::Client::connect(
        &format!("https://{}", fed.coordinator),
        &pki.join("ca.crt"),
        Some((
            &pki.join(format!("{bureau}.crt")),
            &pki.join(format!("{bureau}.key")),
        )),
    )
    .await
    .unwrap();
    let request = fedq_coordinator::complaints::complaint::ComplaintRequest {
        about: fedq_coordinator::complaints::complaint::ComplaintAbout::Leak(true),
        text: "统计口径外泄".into(),
        contact: None,
    };
    let mut throttled = None;
    for _ in 0..21 {
        if let Err(e) = api.file_complaint(&request).await {
            throttled = Some(e.to_string());
            break;
        }
    }
    let throttled = throttled.expect("21 filings in a row were all accepted");
    assert!(throttled.contains("its limit"), "{throttled}");

    coordinator.terminate();
    for n in &mut nodes {
        n.terminate();
    }
}
