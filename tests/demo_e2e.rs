//! The demo's scenario over real sockets: every answer as expected, and — by tapping the
//! answer frames each node hands to its QUIC stream — expired and repaired records and
//! denied fields absent from what crossed the wire, not only from the printed result.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::sync::{Arc, Mutex};

use fedq_demo::tour;
use fedq_sandbox::Running;
use fedq_testkit::federation;
use support::csv_rows;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_tour_answers_as_expected_and_nothing_withheld_crosses_the_wire() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path(), 500, 7);
    let frames: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let tap: fedq_wire::transport::FrameTap = {
        let frames = Arc::clone(&frames);
        Arc::new(move |bytes: &[u8]| frames.lock().unwrap().push(bytes.to_vec()))
    };
    // As `fedq demo` does: witnessing within the tour's run.
    fed.witness_quickly(500).unwrap();
    let mut running = Running::start(&fed, Some(tap.clone())).await.unwrap();
    let steps = tour(&fed, &mut running, Some(tap)).await;
    assert_eq!(steps.len(), 26);
    for step in &steps {
        assert!(
            step.check.is_ok(),
            "{}: {:?}\n{}",
            step.headline,
            step.check,
            step.answer
        );
    }
    running.stop().await;

    let wire = frames.lock().unwrap().concat();
    let wire = String::from_utf8_lossy(&wire).to_string();
    assert!(!wire.is_empty());

    // The expired and the repaired persons' records: none of their keys crossed the wire.
    let s = &fed.scenario;
    for person in [&s.expired, &s.repaired] {
        for record in &person.records {
            let dataset = format!("{}.{}", record.department, record.dataset);
            let negative = !record.department.starts_with("civil-affairs");
            if negative {
                assert!(
                    !wire.contains(&record.key),
                    "withheld record of `{dataset}` crossed the wire"
                );
            }
        }
    }
    // Fields no rule grants the licensing office never cross the wire: the blacklisted
    // person's name and the amount owed, from the court's own export.
    let debtors = csv_rows(&fed.layout.data().join("court/dishonest_debtors.csv"));
    let row = debtors
        .iter()
        .find(|r| r["resident_id"] == s.blacklisted.resident_id)
        .expect("the blacklisted person is in the court's data");
    assert!(
        !wire.contains(&row["name"]),
        "a name the policy omits crossed the wire"
    );
    assert!(
        !wire.contains(&row["obligation"]),
        "an obligation the policy omits crossed the wire"
    );
    // No raw resident ID crosses the wire, in a lookup or in an answer: the coordinator
    // forwards sealed subjects only (the tap sees both directions at every node).
    for (_, person) in s.roles() {
        assert!(
            !wire.contains(&person.resident_id),
            "a raw resident ID crossed the wire"
        );
    }
    // Nor any record value, even one the policy releases: every answer is sealed to the
    // requester, so the coordinator's side of every QUIC stream carries ciphertext. The
    // tour releases the listed person's case numbers and the credit report's records —
    // to the requester only.
    let mut keys = 0;
    for (_, person) in s.roles() {
        for record in &person.records {
            keys += 1;
            assert!(
                !wire.contains(&record.key),
                "a record of `{}.{}` crossed the coordinator's links in clear",
                record.department,
                record.dataset
            );
        }
        assert!(!wire.contains(&person.name), "a name crossed in clear");
    }
    assert!(keys > 10, "the scenario's records were checked");
    // The values the requester did see in the credit report's records (text that is
    // data, not the policy's or catalogue's vocabulary): none crossed in clear.
    let mut vocabulary = std::fs::read_to_string(fed.layout.policy()).unwrap();
    for entry in std::fs::read_dir(fed.layout.root.join("policy/catalogue")).unwrap() {
        vocabulary.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    let mut released = Vec::new();
    for step in &steps {
        for section in step.answer["view_result"]["sections"]
            .as_array()
            .into_iter()
            .flatten()
        {
            for record in section["records"].as_array().into_iter().flatten() {
                for value in record.as_object().into_iter().flat_map(|r| r.values()) {
                    // Plain JSON: text (and dates) are strings.
                    if let Some(text) = value.as_str() {
                        if text.len() >= 6 && !vocabulary.contains(text) {
                            released.push(text.to_owned());
                        }
                    }
                }
            }
        }
    }
    assert!(
        !released.is_empty(),
        "the tour's credit report released records"
    );
    for value in &released {
        assert!(
            !wire.contains(value.as_str()),
            "a released value crossed the coordinator's links in clear"
        );
    }

    // Every log, audit store and key of the federation: no raw resident ID of the
    // scenario, no withheld value.
    let mut scanned = 0;
    for dir in ["audit", "coordinator", "nodes"] {
        for entry in std::fs::read_dir(fed.layout.root.join(dir)).unwrap() {
            // SQLite's -wal and -shm files may vanish as their database closes.
            let Ok(bytes) = std::fs::read(entry.unwrap().path()) else {
                continue;
            };
            let text = String::from_utf8_lossy(&bytes);
            scanned += 1;
            for (_, person) in s.roles() {
                assert!(
                    !text.contains(&person.resident_id),
                    "raw resident ID at rest outside the stores"
                );
            }
            assert!(!text.contains(&row["name"]));
            // No record value at rest in any log or audit store either.
            for (_, person) in s.roles() {
                for record in &person.records {
                    assert!(!text.contains(&record.key), "a record value at rest");
                }
            }
        }
    }
    assert!(scanned > 10);
}
