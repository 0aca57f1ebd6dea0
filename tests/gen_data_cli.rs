//! `fedq gen-data` as an operator runs it: the real binary parses its arguments (moved
//! here from the synth crate's tests when argument parsing moved into the binary).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::path::Path;
use std::process::{Command, Output};

fn fedq(args: &[&str]) -> Output {
    support::process::output_within(
        Command::new(env!("CARGO_BIN_EXE_fedq")).args(args),
        support::process::COMMAND_LIMIT,
    )
}

#[test]
fn the_command_line_parses_and_rejects_a_bad_today() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("reference/changsha/catalogue");
    let bad = fedq(&[
        "gen-data",
        "--out",
        out.to_str().unwrap(),
        "--persons",
        "50",
        "--format",
        "jsonl",
        "--today",
        "2026-02-30",
    ]);
    assert!(!bad.status.success());
    let err = String::from_utf8(bad.stderr).unwrap();
    assert!(err.contains("YYYY-MM-DD"), "{err}");
    assert!(!out.exists(), "nothing written on a bad --today");

    // --persons and --format as given, --seed 1 by default.
    let jsonl = fedq(&[
        "gen-data",
        "--out",
        out.to_str().unwrap(),
        "--persons",
        "50",
        "--format",
        "jsonl",
        "--catalogue",
        dir.to_str().unwrap(),
        "--today",
        "2026-11-27",
    ]);
    assert!(
        jsonl.status.success(),
        "{}",
        String::from_utf8_lossy(&jsonl.stderr)
    );
    let said = String::from_utf8(jsonl.stdout).unwrap();
    assert!(
        said.starts_with("wrote 50 persons (seed 1, today 2026-11-27)"),
        "{said}"
    );
    assert!(out.join("court/dishonest_debtors.jsonl").exists());

    // CSV by default.
    let csv_out = tmp.path().join("csv");
    let csv = fedq(&[
        "gen-data",
        "--out",
        csv_out.to_str().unwrap(),
        "--persons",
        "50",
        "--catalogue",
        dir.to_str().unwrap(),
        "--today",
        "2026-11-27",
    ]);
    assert!(
        csv.status.success(),
        "{}",
        String::from_utf8_lossy(&csv.stderr)
    );
    assert!(csv_out.join("court/dishonest_debtors.csv").exists());
    assert_eq!(
        fedq_synth::Scenario::read(&csv_out).unwrap().today,
        fedq_policy::transform::parse_date("2026-11-27").unwrap()
    );
}
