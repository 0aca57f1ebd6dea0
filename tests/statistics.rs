//! Statistics that reveal no one (issue 20 §2), over real `fedq` node and coordinator
//! processes on 127.0.0.1 with certificates from `fedq certs`: the statistics bureau's
//! aggregate query (`fedq statistics`) answered by each department with noisy counts over
//! the whole declared domain and small cells suppressed; its budget spent query by query
//! and then refused with what is left and the day it renews, in each department's own
//! ledger (kept across a restart); every aggregate query audited with its ε and no
//! person; and no per-person answer reachable under the statistics purpose — not through
//! `/v1/query` (datasets, view, rights), not with a person named in an aggregate body,
//! not as another office.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use fedq_sandbox::{ask, Ask, Federation};
use serde_json::Value;
use support::process::{fedq, output_within, FedqProcess, COMMAND_LIMIT};

const BUREAU: &str = "statistics.bureau";

fn api(fed: &Federation, who: &str) -> Vec<String> {
    let pki = fed.layout.pki();
    vec![
        "--coordinator".into(),
        format!("https://{}", fed.coordinator),
        "--cert".into(),
        pki.join(format!("{who}.crt")).display().to_string(),
        "--key".into(),
        pki.join(format!("{who}.key")).display().to_string(),
        "--ca".into(),
        pki.join("ca.crt").display().to_string(),
    ]
}

fn statistics(fed: &Federation, who: &str, extra: &[&str]) -> std::process::Output {
    let mut args: Vec<String> = vec![
        "statistics".into(),
        "--purpose".into(),
        "statistics".into(),
        "--legal-basis".into(),
        "统计法".into(),
        "--json".into(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args.extend(api(fed, who));
    output_within(fedq().args(&args), COMMAND_LIMIT)
}

fn answered(o: &std::process::Output) -> Value {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bureau_gets_noisy_counts_within_its_budget_and_nothing_about_anyone() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = fedq_testkit::federation(tmp.path(), 3000, 31);
    let mut nodes = support::process::start_nodes(&fed, None);
    let mut coordinator = FedqProcess::coordinator(&fed.layout.coordinator_config(), None);
    let year = fed.today.year();
    let (from, to) = ((year - 3).to_string(), year.to_string());
    let years = ["--from-year", from.as_str(), "--to-year", to.as_str()];

    // 1. The total of the court's listed debtors: one cell, a noisy count near the truth.
    let mut total = vec!["--dataset", "court.dishonest_debtors"];
    total.extend(years);
    let a = answered(&statistics(&fed, BUREAU, &total));
    let cells = a["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 1, "{a}");
    let noisy = cells[0]["count"]
        .as_u64()
        .expect("the total is not suppressed");
    let court = &a["nodes"][0];
    assert_eq!(court["node"], "court");
    assert_eq!(court["status"], "answered");
    assert_eq!(court["epsilon"], "0.5");
    assert_eq!(court["left"], "1.5");
    // The true number of persons listed, read from the court's own store the way the
    // node counts them (each person once, inside the window).
    let store = fedq_node::store::SqliteStore::open(&fed.layout.store("court")).unwrap();
    let catalogue = fedq_policy::load::load_catalogue(
        &fedq_node::config::NodeConfig::load(&fed.layout.node_config("court"))
            .unwrap()
            .catalogue,
    )
    .unwrap();
    let debtors = catalogue.dataset("dishonest_debtors").unwrap();
    let mut persons = std::collections::BTreeSet::new();
    for (subject, record) in store.records_in("court.dishonest_debtors").unwrap() {
        let y = debtors.record_date(&record).map(|d| d.year());
        if debtors.is_disclosable(&record, fed.today)
            && y.is_some_and(|y| y >= year - 3 && y <= year)
        {
            persons.insert(subject);
        }
    }
    let truth = persons.len() as i64;
    assert!(truth >= 20, "too few listed debtors to test with: {truth}");
    // Scale 2 (ε 0.5, one dataset): |noise| > 30 has probability about e^-15.
    assert!(
        (noisy as i64 - truth).abs() <= 30,
        "noisy {noisy} against {truth}"
    );

    // 2. By district and year: every cell of the domain comes back (9 districts and
    // `other`, 4 years), none below the threshold, and the small ones suppressed.
    let mut broken = vec![
        "--dataset",
        "court.dishonest_debtors",
        "--by",
        "district,year",
    ];
    broken.extend(years);
    let a = answered(&statistics(&fed, BUREAU, &broken));
    let cells = a["cells"].as_array().unwrap();
    assert_eq!(
        cells.len(),
        10 * 4,
        "the whole domain, not the cells that hold someone"
    );
    assert!(cells
        .iter()
        .all(|c| c["count"].is_null() || c["count"].as_u64().unwrap() >= 10));
    let suppressed = cells.iter().filter(|c| c["count"].is_null()).count();
    assert!(suppressed > 0, "expected small cells suppressed: {a}");
    assert!(
        cells.iter().any(|c| c["district"] == "other"),
        "expected the `other` district"
    );
    assert_eq!(a["nodes"][0]["left"], "1");

    // 3. Two departments in one query: each spends at its own ledger.
    let mut two = vec![
        "--dataset",
        "court.dishonest_debtors",
        "--dataset",
        "tax.arrears",
        "--by",
        "category",
    ];
    two.extend(years);
    let a = answered(&statistics(&fed, BUREAU, &two));
    let nodes_answered: Vec<&str> = a["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["node"].as_str().unwrap())
        .collect();
    assert_eq!(nodes_answered, ["court", "tax"]);
    assert_eq!(a["nodes"][0]["left"], "0.5");
    assert_eq!(a["nodes"][1]["left"], "1.5");
    // Categories are the enum's values, never a value outside them.
    assert!(a["cells"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["dataset"] == "court.dishonest_debtors")
        .all(|c| ["unperformed", "partially_performed", "performed"]
            .contains(&c["category"].as_str().unwrap())));

    // 4. The court's budget: one more query, then refused with what is left and when.
    answered(&statistics(&fed, BUREAU, &total));
    let o = statistics(&fed, BUREAU, &total);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("429"), "{err}");
    assert!(err.contains("budget") && err.contains("ε 0 left"), "{err}");
    let renews = fedq_policy::statistics::Period::Month.renews_on(fed.today);
    assert!(err.contains(&renews.to_string()), "{err}");
    // Across a restart of the court: the ledger is on disk.
    let court_index = fed.nodes.keys().position(|n| n == "court").unwrap();
    nodes[court_index].terminate();
    nodes[court_index] = FedqProcess::node(&fed.layout.node_config("court"), None);
    let o = statistics(&fed, BUREAU, &total);
    assert!(stderr(&o).contains("ε 0 left"), "{}", stderr(&o));
    // Tax still has budget: its part answers, the court's says spent.
    let mut tax_and_court = vec![
        "--dataset",
        "court.dishonest_debtors",
        "--dataset",
        "tax.arrears",
    ];
    tax_and_court.extend(years);
    let o = statistics(&fed, BUREAU, &tax_and_court);
    assert!(!o.status.success(), "a partial answer exits non-zero");
    let a: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(a["complete"], false);
    assert_eq!(a["nodes"][0]["status"], "budget-spent");
    assert_eq!(a["nodes"][0]["left"], "0");
    assert_eq!(a["nodes"][0]["renews_on"], renews.to_string());
    assert_eq!(a["nodes"][1]["status"], "answered");
    assert!(a["cells"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["dataset"] == "tax.arrears"));

    // 5. Every aggregate query is in the court's log with its ε, and names no one.
    let log = fedq_audit::list(
        &fed.layout.root.join("audit/court-audit.db"),
        &fedq_audit::ListFilter::default(),
    )
    .unwrap();
    let entries: Vec<_> = log
        .iter()
        .filter(|e| e.record.kind == fedq_audit::EntryKind::Statistic)
        .collect();
    assert!(entries.len() >= 6, "{}", entries.len());
    assert!(entries
        .iter()
        .all(|e| e.record.subject == "-" && e.record.requester == BUREAU));
    let spent: Vec<String> = entries
        .iter()
        .map(|e| e.record.outcome.to_string())
        .collect();
    assert_eq!(
        spent
            .iter()
            .filter(|o| o.contains("\"epsilon\":\"0.5\"") && o.contains("\"cells\""))
            .count(),
        4,
        "{spent:?}"
    );
    assert!(
        spent.iter().any(|o| o.contains("budget spent")),
        "{spent:?}"
    );
    for e in &entries {
        let text = serde_json::to_string(&e.record).unwrap();
        for p in [&fed.scenario.blacklisted, &fed.scenario.clean] {
            assert!(!text.contains(&p.resident_id));
        }
    }

    // 6. No per-person answer under the statistics purpose, by any path.
    let person = fed.scenario.blacklisted.resident_id.clone();
    for q in [
        Ask {
            requester: BUREAU.into(),
            purpose: "statistics".into(),
            basis: Some("统计法".into()),
            case_reference: None,
            subject: person.clone(),
            view: None,
            datasets: vec!["court.dishonest_debtors".into()],
            consent: None,
        },
        Ask {
            requester: BUREAU.into(),
            purpose: "statistics".into(),
            basis: Some("统计法".into()),
            case_reference: None,
            subject: person.clone(),
            view: Some("blacklist-check".into()),
            datasets: Vec::new(),
            consent: None,
        },
    ] {
        let (status, body) = ask(&fed, &q).await.unwrap();
        assert_eq!(status, 403, "{body}");
        assert!(body.to_string().contains("aggregate"), "{body}");
        assert!(!body.to_string().contains(&person));
    }
    // A person named in an aggregate body is refused before anything is asked.
    let mut conn = fedq_testkit::connect_as(&fed, BUREAU).await.unwrap();
    let body = serde_json::json!({
        "purpose": "statistics",
        "legal_basis": "统计法",
        "subject": person,
        "target": {"datasets": ["court.dishonest_debtors"], "from_year": year, "to_year": year},
    });
    let (status, answer) = conn
        .call(
            "POST",
            "/v1/statistics",
            "application/json",
            serde_json::to_vec(&body).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(status, 400, "{answer}");
    assert!(!answer.to_string().contains(&person));
    // Another office may not count, even with a valid proof of its own.
    let o = statistics(&fed, "market-regulation.licensing", &total);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("403"), "{}", stderr(&o));

    coordinator.terminate();
    for n in &mut nodes {
        n.terminate();
    }
}

/// The persons who count in `dataset` at `node` for the years `from..=to`, as the node
/// counts them (each once, inside the window), read from its own store.
fn persons_in(
    fed: &Federation,
    node: &str,
    dataset: &str,
    from: i32,
    to: i32,
) -> std::collections::BTreeSet<String> {
    let store = fedq_node::store::SqliteStore::open(&fed.layout.store(node)).unwrap();
    let catalogue = fedq_policy::load::load_catalogue(
        &fedq_node::config::NodeConfig::load(&fed.layout.node_config(node))
            .unwrap()
            .catalogue,
    )
    .unwrap();
    let d = catalogue
        .dataset(dataset.split_once('.').unwrap().1)
        .unwrap();
    store
        .records_in(dataset)
        .unwrap()
        .into_iter()
        .filter(|(_, r)| {
            d.is_disclosable(r, fed.today)
                && d.record_date(r)
                    .is_some_and(|x| x.year() >= from && x.year() <= to)
        })
        .map(|(s, _)| s)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persons_listed_by_two_departments_are_counted_without_a_join_key() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = fedq_testkit::federation(tmp.path(), 10_000, 37);
    let mut nodes = support::process::start_nodes(&fed, None);
    let mut coordinator = FedqProcess::coordinator(&fed.layout.coordinator_config(), None);
    let year = fed.today.year();
    let (from, to) = ((year - 9).to_string(), year.to_string());
    let both = [
        "--dataset",
        "court.enforcement_cases",
        "--dataset",
        "civil-affairs.volunteer_service",
        "--both",
        "--from-year",
        from.as_str(),
        "--to-year",
        to.as_str(),
    ];
    let a = answered(&statistics(&fed, BUREAU, &both));
    let truth = persons_in(&fed, "court", "court.enforcement_cases", year - 9, year)
        .intersection(&persons_in(
            &fed,
            "civil-affairs",
            "civil-affairs.volunteer_service",
            year - 9,
            year,
        ))
        .count() as i64;
    eprintln!("persons in both: {truth}; answer {a}");
    assert!(truth >= 40, "too few persons in both to test with: {truth}");
    let cells = a["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 1, "{a}");
    assert_eq!(
        cells[0]["dataset"],
        "court.enforcement_cases&civil-affairs.volunteer_service"
    );
    // Scale 2: |noise| > 30 has probability about e^-15.
    let n = cells[0]["count"]
        .as_u64()
        .expect("a count of 40 or more is not suppressed");
    assert!((n as i64 - truth).abs() <= 30, "{n} against {truth}");
    // Both departments spent ε for it, each in its own ledger.
    assert_eq!(a["nodes"][0]["node"], "court");
    assert_eq!(a["nodes"][0]["left"], "1.5");
    let other_log = fedq_audit::list(
        &fed.layout.root.join("audit/civil-affairs-audit.db"),
        &fedq_audit::ListFilter::default(),
    )
    .unwrap();
    let raised: Vec<String> = other_log
        .iter()
        .filter(|e| e.record.kind == fedq_audit::EntryKind::Statistic)
        .map(|e| e.record.outcome.to_string())
        .collect();
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert!(raised[0].contains("\"step\":\"raise\"") && raised[0].contains("\"left\":\"1.5\""));
    // A cross count with a breakdown, or of one department's two datasets, is refused.
    let o = statistics(
        &fed,
        BUREAU,
        &[
            "--dataset",
            "court.dishonest_debtors",
            "--dataset",
            "court.enforcement_cases",
            "--both",
            "--from-year",
            from.as_str(),
            "--to-year",
            to.as_str(),
        ],
    );
    assert!(
        stderr(&o).contains("two different departments"),
        "{}",
        stderr(&o)
    );
    coordinator.terminate();
    for n in &mut nodes {
        n.terminate();
    }
}
