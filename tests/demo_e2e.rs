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

use fedq_demo::{build, tour, BuildOptions, Running};
use support::csv_rows;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_tour_answers_as_expected_and_nothing_withheld_crosses_the_wire() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = build(tmp.path(), &BuildOptions::for_tests(500, 7)).unwrap();
    let frames: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let tap: fedq_wire::transport::FrameTap = {
        let frames = Arc::clone(&frames);
        Arc::new(move |bytes: &[u8]| frames.lock().unwrap().push(bytes.to_vec()))
    };
    let mut running = Running::start(&fed, Some(tap.clone())).await.unwrap();
    let steps = tour(&fed, &mut running, Some(tap)).await;
    assert_eq!(steps.len(), 16);
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
        }
    }
    assert!(scanned > 10);
}
