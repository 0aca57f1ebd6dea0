//! The persons' rights end to end (issue 19), over real `fedq` processes on 127.0.0.1
//! with certificates from `fedq certs`: at the citizen-service window, with a consent
//! token for exactly that right, a person reads who looked at their data at every
//! department (a judgment-enforcement inquiry hidden for the policy's period, counted,
//! then shown once the period is over), objects to a record (which a licensing office
//! then sees flagged and which its blacklist check no longer counts), sees the officer's
//! resolution, applies for a credit repair that the review office reads and approves
//! with a signed decision, and whose reversal needs a second approver.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::path::Path;

use fedq_sandbox::{
    ask, ask_rights, at_the_window, consent_token, licensing, Ask, Federation, RightsAsk,
    RECORDS_OFFICER, REPAIR_REVIEWERS,
};
use fedq_wire::rights::{Filing, RepairGrounds};
use serde_json::Value;
use support::process::{fedq, output_within, FedqProcess, COMMAND_LIMIT};

const COURT_LIST: &str = "court.dishonest_debtors";
const ENFORCEMENT_CASE: &str = "(2026)湘01执123号";

fn federation(tmp: &Path) -> Federation {
    fedq_testkit::federation(tmp, 300, 11)
}

/// The person's key of their record on the court's list.
fn court_record(fed: &Federation) -> String {
    fedq_sandbox::rights::record_key(&fed.scenario.blacklisted, COURT_LIST)
        .expect("the blacklisted person is on the court's list")
}

async fn register(fed: &Federation, subject: &str) -> Value {
    let (status, a) = fedq_sandbox::rights::register(fed, subject).await.unwrap();
    assert_eq!(status, 200, "{a}");
    a
}

fn court_part(a: &Value) -> &Value {
    a.get("rights")
        .and_then(|r| r.get("court"))
        .unwrap_or_else(|| panic!("no court part in {a}"))
}

fn entries_of(part: &Value) -> &Vec<Value> {
    part.get("entries").and_then(Value::as_array).unwrap()
}

async fn file(fed: &Federation, subject: &str, right: &str, filing: Filing) -> (u16, Value) {
    fedq_sandbox::rights::file(fed, subject, right, COURT_LIST, filing)
        .await
        .unwrap()
}

fn court_listed(a: &Value) -> bool {
    a.pointer("/view_result/listings")
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("no listings in {a}"))
        .iter()
        .any(|l| l.get("dataset").and_then(Value::as_str) == Some(COURT_LIST))
}

/// The licensing office's dataset query of the court's list.
fn licensing_records(subject: &str) -> Ask {
    Ask {
        view: None,
        datasets: vec![COURT_LIST.into()],
        ..licensing(subject, "blacklist-check")
    }
}

fn sign(fed: &Federation, officer: &str, filing: &str, decision: &str, set: &[&str], out: &Path) {
    let pki = fed.layout.pki();
    let mut args: Vec<String> = vec![
        "decision".into(),
        "sign".into(),
        "--officer-cert".into(),
        pki.join(format!("{officer}.crt")).display().to_string(),
        "--officer-key".into(),
        pki.join(format!("{officer}.key")).display().to_string(),
        "--node".into(),
        "court".into(),
        "--filing".into(),
        filing.into(),
        "--decision".into(),
        decision.into(),
        "--note".into(),
        format!("{decision}: checked against the case file"),
        "--out".into(),
        out.display().to_string(),
    ];
    for s in set {
        args.push("--set".into());
        args.push((*s).into());
    }
    let o = output_within(fedq().args(&args), COMMAND_LIMIT);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn node_cmd(fed: &Federation, args: &[&str]) -> std::process::Output {
    let config = fed.layout.node_config("court");
    let mut all: Vec<String> = vec!["node".into(), args[0].into(), "--config".into()];
    all.push(config.display().to_string());
    all.extend(args[1..].iter().map(|s| (*s).to_owned()));
    output_within(fedq().args(&all), COMMAND_LIMIT)
}

fn shift_today(config: &Path, days: i64) {
    let text = std::fs::read_to_string(config).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        match line.strip_prefix("today = \"") {
            Some(rest) => {
                let date = fedq_policy::value::parse_date(rest.trim_end_matches('"')).unwrap();
                out.push_str(&format!(
                    "today = \"{}\"\n",
                    date + time::Duration::days(days)
                ));
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    std::fs::write(config, out).unwrap();
}

/// Checks a node's register part: its checkpoint is signed by the court's certificate key,
/// and every entry inside it is proven by its inclusion proof.
fn assert_register_proven(fed: &Federation, part: &Value) {
    use fedq_audit::checkpoint::{Checkpoint, Note};
    let note = part["checkpoint"]
        .as_str()
        .unwrap_or_else(|| panic!("no checkpoint: {part}"));
    let (log, _) =
        fedq_audit::review::certificate_verifiers(&fed.layout.pki().join("court.crt")).unwrap();
    let note = Note::parse(note).unwrap();
    log.verify(&note).unwrap();
    let head = Checkpoint::parse_body(&note.text).unwrap();
    let mut proven = 0;
    for e in entries_of(part) {
        let index = e["index"].as_u64().unwrap();
        if index >= head.size {
            continue;
        }
        let leaf: [u8; 32] = hex::decode(e["entry_hash"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let proof: Vec<[u8; 32]> = e["proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD
                    .decode(h.as_str().unwrap())
                    .unwrap()
                    .try_into()
                    .unwrap()
            })
            .collect();
        fedq_audit::merkle::verify_inclusion(
            &fedq_audit::merkle::leaf_hash(&leaf),
            index,
            head.size,
            &proof,
            &head.root,
        )
        .unwrap_or_else(|e| panic!("entry {index} not proven: {e:?}"));
        proven += 1;
    }
    assert!(proven > 0, "no entry inside the checkpoint: {part}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_reads_their_register_objects_and_applies_for_repair_at_the_window() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path());
    // A checkpoint after every entry, so the register's entries are proven at once.
    fed.witness_quickly(500).unwrap();
    let mut nodes = support::process::start_nodes(&fed, None);
    let mut coordinator = FedqProcess::coordinator(&fed.layout.coordinator_config(), None);
    let person = fed.scenario.blacklisted.resident_id.clone();
    let other = fed.scenario.clean.resident_id.clone();
    let record = court_record(&fed);

    // A licensing office and the court's enforcement bureau ask about the person.
    let (status, a) = ask(&fed, &licensing(&person, "blacklist-check"))
        .await
        .unwrap();
    assert_eq!(status, 200, "{a}");
    assert!(court_listed(&a), "{a}");
    let enforcement = Ask {
        requester: "court.enforcement".into(),
        subject: person.clone(),
        purpose: "judgment-enforcement".into(),
        basis: Some("民事诉讼法".into()),
        consent: None,
        case_reference: Some(ENFORCEMENT_CASE.into()),
        view: None,
        datasets: vec![COURT_LIST.into()],
    };
    let (status, a) = ask(&fed, &enforcement).await.unwrap();
    assert_eq!(status, 200, "{a}");

    // Who looked at my data: every department answers from its own log; the licensing
    // query is listed with its case, the enforcement inquiry is only counted.
    let a = register(&fed, &person).await;
    let nodes_asked = a.get("nodes").and_then(Value::as_array).unwrap();
    assert_eq!(nodes_asked.len(), fed.nodes.len(), "{a}");
    let court = court_part(&a);
    let entries = entries_of(court);
    assert!(
        entries
            .iter()
            .any(|e| e["requester"] == "market-regulation.licensing"
                && e["purpose"] == "administrative-licensing"
                && e["case_reference"] == fedq_sandbox::LICENSING_CASE
                && e["released"] == true),
        "{court}"
    );
    assert!(
        !entries
            .iter()
            .any(|e| e["purpose"] == "judgment-enforcement"),
        "a covert inquiry was shown: {court}"
    );
    let hidden = court.get("hidden").and_then(Value::as_array).unwrap();
    assert_eq!(hidden.len(), 1, "{court}");
    assert_eq!(hidden[0]["purpose"], "judgment-enforcement");
    assert_eq!(hidden[0]["count"], 1);
    let until = fed.today + time::Duration::days(180);
    assert!(
        hidden[0]["until"].as_str().unwrap() >= until.to_string().as_str(),
        "{court}"
    );
    // Each listed entry is proven against the court's checkpoint, signed with the key of
    // the court's certificate, or is newer than it.
    assert_register_proven(&fed, court);
    // The register answer carries the court's receipt like any answer.
    let court_report = nodes_asked.iter().find(|n| n["node"] == "court").unwrap();
    assert!(court_report.get("receipt").is_some(), "{court_report}");
    // Nothing about anyone else: the other person's register at the court lists none of it.
    let b = register(&fed, &other).await;
    assert!(
        !entries_of(court_part(&b))
            .iter()
            .any(|e| e["purpose"] == "administrative-licensing"),
        "{b}"
    );
    // A token for the register does not open an objection (the claim is named).
    let q = at_the_window(&fed, &person, "register").unwrap();
    let (status, refused) = ask_rights(
        &fed,
        &q,
        RightsAsk {
            right: "object".into(),
            dataset: Some(COURT_LIST.into()),
            filing: Some(Filing {
                record: record.clone(),
                reason: "not mine".into(),
                evidence: "EV-1".into(),
                grounds: None,
            }),
        },
    )
    .await
    .unwrap();
    let court_refusal = refused["nodes"]
        .as_array()
        .and_then(|n| n.iter().find(|n| n["node"] == "court"))
        .cloned()
        .unwrap_or_default();
    assert!(
        status != 200 || court_refusal["status"] == "denied",
        "{refused}"
    );

    // An objection to a record that is not the person's files nothing.
    let (status, a) = file(
        &fed,
        &person,
        "object",
        Filing {
            record: "(2020)湘0000执9999号".into(),
            reason: "wrong person".into(),
            evidence: "身份证明-1".into(),
            grounds: None,
        },
    )
    .await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(a["nodes"][0]["status"], "denied", "{a}");
    assert!(
        a["nodes"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("no record with this key"),
        "{a}"
    );

    // The objection: the court marks the record disputed.
    let (status, a) = file(
        &fed,
        &person,
        "object",
        Filing {
            record: record.clone(),
            reason: "已于2026年10月履行完毕".into(),
            evidence: "法院收据 2026-0001".into(),
            grounds: None,
        },
    )
    .await;
    assert_eq!(status, 200, "{a}");
    let objection = court_part(&a)["filed"].as_str().unwrap().to_owned();
    assert!(objection.starts_with("obj-"), "{a}");
    // Its words never reach the coordinator's or the court's audit log.
    for log in ["coordinator", "court"] {
        let bytes = std::fs::read(fed.layout.root.join(format!("audit/{log}-audit.db"))).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("已于2026年10月履行完毕"), "{log}");
        assert!(!text.contains("法院收据"), "{log}");
    }

    // The licensing office now sees the record flagged as disputed, and its blacklist
    // check no longer counts it.
    let (status, a) = ask(&fed, &licensing(&person, "blacklist-check"))
        .await
        .unwrap();
    assert_eq!(status, 200, "{a}");
    assert!(!court_listed(&a), "a disputed record was counted: {a}");
    let (status, a) = ask(&fed, &licensing_records(&person)).await.unwrap();
    assert_eq!(status, 200, "{a}");
    let court_list = &a["datasets"][COURT_LIST];
    assert_eq!(court_list["disputed"], 1, "{a}");
    assert!(!court_list["records"].as_array().unwrap().is_empty(), "{a}");

    // The person's register shows the objection open.
    let a = register(&fed, &person).await;
    let objections = court_part(&a)["objections"].as_array().unwrap().clone();
    assert_eq!(objections.len(), 1, "{a}");
    assert_eq!(objections[0]["status"], "open");

    // The department lists it and resolves it with an officer's signed decision; a
    // decision signed by a certificate of another CA is refused and changes nothing.
    let o = node_cmd(&fed, &["objections", "--status", "open"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&objection),
        "{o:?}"
    );
    let decision = tmp.path().join("resolution.jwt");
    sign(
        &fed,
        RECORDS_OFFICER,
        &objection,
        "corrected",
        &["performance_status=performed"],
        &decision,
    );
    let stranger = tempfile::tempdir().unwrap();
    fedq_certs::pki::CertificateAuthority::init(stranger.path(), "changsha", false)
        .unwrap()
        .issue(
            fedq_certs::identity::Role::Officer,
            RECORDS_OFFICER,
            &fedq_certs::pki::IssueOptions::default(),
        )
        .unwrap();
    let forged = tmp.path().join("forged.jwt");
    {
        let claims = fedq_node::decisions::DecisionClaims {
            node: "court".into(),
            filing: objection.clone(),
            decision: "removed".into(),
            note: "x".into(),
            corrections: Default::default(),
            iat: time::OffsetDateTime::now_utc().unix_timestamp(),
        };
        let token = fedq_node::remedies::sign(
            &stranger.path().join(format!("{RECORDS_OFFICER}.crt")),
            &stranger.path().join(format!("{RECORDS_OFFICER}.key")),
            false,
            &claims,
        )
        .unwrap();
        std::fs::write(&forged, token).unwrap();
    }
    let o = node_cmd(
        &fed,
        &[
            "resolve",
            "--objection",
            &objection,
            "--decision",
            forged.to_str().unwrap(),
        ],
    );
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("does not verify"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = node_cmd(
        &fed,
        &[
            "resolve",
            "--objection",
            &objection,
            "--decision",
            decision.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Resolved while the node serves: the node's own log goes on, and the licensing office
    // sees the corrected record (performed, so no longer disclosed), undisputed.
    let (status, a) = ask(&fed, &licensing(&person, "blacklist-check"))
        .await
        .unwrap();
    assert_eq!(status, 200, "{a}");
    assert!(!court_listed(&a), "{a}");
    let a = register(&fed, &person).await;
    let objections = court_part(&a)["objections"].as_array().unwrap().clone();
    assert_eq!(objections[0]["status"], "corrected", "{a}");
    assert_eq!(
        objections[0]["resolution"]["officer"], RECORDS_OFFICER,
        "{a}"
    );
    let o = output_within(
        fedq().args([
            "audit",
            "verify",
            "--config",
            fed.layout.node_config("court").to_str().unwrap(),
        ]),
        COMMAND_LIMIT,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // A repair application for a dataset that records no repair is refused.
    let (status, a) = {
        let q = at_the_window(&fed, &person, "apply-repair").unwrap();
        ask_rights(
            &fed,
            &q,
            RightsAsk {
                right: "apply-repair".into(),
                dataset: Some("public-security.identity_basics".into()),
                filing: Some(Filing {
                    record: person.clone(),
                    reason: "x".into(),
                    evidence: "y".into(),
                    grounds: Some(RepairGrounds::Donation),
                }),
            },
        )
        .await
        .unwrap()
    };
    assert!(status != 200 || a["nodes"][0]["status"] == "denied", "{a}");
    assert!(a.to_string().contains("records no credit repair"), "{a}");

    // The repair application: filed by the person, read by the review office.
    let (status, a) = file(
        &fed,
        &person,
        "apply-repair",
        Filing {
            record: record.clone(),
            reason: "已全部履行".into(),
            evidence: "履行凭证 2026-0002".into(),
            grounds: Some(RepairGrounds::Performance),
        },
    )
    .await;
    assert_eq!(status, 200, "{a}");
    let application = court_part(&a)["filed"].as_str().unwrap().to_owned();
    let token = consent_token(
        &fed,
        &person,
        "credit-repair.review",
        "credit-repair-review",
        &["rights:repair-applications"],
    )
    .unwrap();
    let review = Ask {
        requester: "credit-repair.review".into(),
        subject: person.clone(),
        purpose: "credit-repair-review".into(),
        basis: Some("湘政办发〔2017〕3号".into()),
        consent: Some(token),
        case_reference: Some("XYXF-2026-000123".into()),
        view: None,
        datasets: Vec::new(),
    };
    let (status, a) = ask_rights(
        &fed,
        &review,
        RightsAsk {
            right: "repair-applications".into(),
            dataset: Some(COURT_LIST.into()),
            filing: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{a}");
    let part = court_part(&a);
    assert_eq!(part["repairs"][0]["id"], application.as_str(), "{a}");
    assert!(part["objections"].as_array().unwrap().is_empty(), "{a}");
    assert!(part["entries"].as_array().unwrap().is_empty(), "{a}");
    // The review office reads the record as the objection's correction left it (performed,
    // so no longer disclosed), as every other requester does: never the stored original.
    let datasets = part["records"]
        .as_array()
        .unwrap_or_else(|| panic!("no records part: {a}"));
    assert_eq!(datasets.len(), 1, "the court list's answer: {a}");
    let released: usize = datasets
        .iter()
        .map(|d| d["records"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(
        released, 0,
        "the corrected record reached the review office: {a}"
    );

    // An approval by an officer who is not a repair approver is refused; the reviewer's
    // approval records the repair.
    let not_approver = tmp.path().join("not-approver.jwt");
    sign(
        &fed,
        RECORDS_OFFICER,
        &application,
        "approve",
        &[],
        &not_approver,
    );
    let o = node_cmd(
        &fed,
        &[
            "repair",
            "--application",
            &application,
            "--decision",
            not_approver.to_str().unwrap(),
        ],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not one of the policy's repair approvers"));
    let approval = tmp.path().join("approval.jwt");
    sign(
        &fed,
        REPAIR_REVIEWERS[0],
        &application,
        "approve",
        &[],
        &approval,
    );
    let o = node_cmd(
        &fed,
        &[
            "repair",
            "--application",
            &application,
            "--decision",
            approval.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = node_cmd(&fed, &["repairs"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("repaired"),
        "{o:?}"
    );

    // The reversal needs two approvers: one alone is refused, the same one twice too.
    let reverse_a = tmp.path().join("reverse-a.jwt");
    let reverse_b = tmp.path().join("reverse-b.jwt");
    sign(
        &fed,
        REPAIR_REVIEWERS[0],
        &application,
        "reverse",
        &[],
        &reverse_a,
    );
    sign(
        &fed,
        REPAIR_REVIEWERS[1],
        &application,
        "reverse",
        &[],
        &reverse_b,
    );
    let a_path = reverse_a.to_str().unwrap();
    let b_path = reverse_b.to_str().unwrap();
    let o = node_cmd(
        &fed,
        &[
            "repair",
            "--application",
            &application,
            "--decision",
            a_path,
        ],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("second approval"));
    let o = node_cmd(
        &fed,
        &[
            "repair",
            "--application",
            &application,
            "--decision",
            a_path,
            "--decision",
            a_path,
        ],
    );
    assert!(!o.status.success());
    // Nor one approver with two certificates (re-issued with a new key, the old one not
    // revoked): two keys, one officer.
    fedq_certs::pki::CertificateAuthority::open(&fed.layout.pki())
        .unwrap()
        .issue(
            fedq_certs::identity::Role::Officer,
            REPAIR_REVIEWERS[0],
            &fedq_certs::pki::IssueOptions {
                force: true,
                ..fedq_certs::pki::IssueOptions::default()
            },
        )
        .unwrap();
    let reverse_a2 = tmp.path().join("reverse-a2.jwt");
    sign(
        &fed,
        REPAIR_REVIEWERS[0],
        &application,
        "reverse",
        &[],
        &reverse_a2,
    );
    let o = node_cmd(
        &fed,
        &[
            "repair",
            "--application",
            &application,
            "--decision",
            a_path,
            "--decision",
            reverse_a2.to_str().unwrap(),
        ],
    );
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("both are `reviewer-chen`'s"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = node_cmd(
        &fed,
        &[
            "repair",
            "--application",
            &application,
            "--decision",
            a_path,
            "--decision",
            b_path,
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let a = register(&fed, &person).await;
    let repairs = court_part(&a)["repairs"].as_array().unwrap().clone();
    assert_eq!(repairs[0]["status"], "reversed", "{a}");
    assert_eq!(repairs[0]["decisions"].as_array().unwrap().len(), 3, "{a}");
    // A new application, which one approval would settle, cannot undo the reversal.
    let (status, a) = file(
        &fed,
        &person,
        "apply-repair",
        Filing {
            record: record.clone(),
            reason: "再次申请".into(),
            evidence: "履行凭证 2026-0003".into(),
            grounds: Some(RepairGrounds::Performance),
        },
    )
    .await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(a["nodes"][0]["status"], "denied", "{a}");
    assert!(
        a["nodes"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("was reversed"),
        "{a}"
    );

    // Once the covert period is over, the enforcement inquiry shows in the register.
    for n in &mut nodes {
        n.terminate();
    }
    coordinator.terminate();
    for name in fed.nodes.keys() {
        shift_today(&fed.layout.node_config(name), 181);
    }
    shift_today(&fed.layout.coordinator_config(), 181);
    let _nodes = support::process::start_nodes(&fed, None);
    let _coordinator = FedqProcess::coordinator(&fed.layout.coordinator_config(), None);
    let a = register(&fed, &person).await;
    let court = court_part(&a);
    assert!(
        entries_of(court)
            .iter()
            .any(|e| e["purpose"] == "judgment-enforcement"
                && e["requester"] == "court.enforcement"
                && e["case_reference"] == ENFORCEMENT_CASE),
        "{court}"
    );
    assert!(court["hidden"].as_array().unwrap().is_empty(), "{court}");
}
