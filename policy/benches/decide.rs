//! Decision latency for a 40-field request at 100 / 500 / 2,000 rules, and — with
//! `--features cedar-bench` — the `cedar-policy` crate on the equivalent allow/deny policy
//! set side by side, with the ratio.
//!
//! ```text
//! cargo bench -p fedq-policy --bench decide                          # fedq only
//! cargo bench -p fedq-policy --bench decide --features cedar-bench   # with Cedar + ratio
//! ```
//!
//! The policy sets, the request and the timing loop of the closing table live in
//! `fedq_policy::comparison`, which `fedq bench` uses too, so both report the same
//! comparison. `fedq bench` (built with `--features cedar`) is the documented way to get
//! these figures in the one report; this bench adds criterion's statistics.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion};
use fedq_policy::comparison::{self, RuleSet, FIELDS, SIZES};

fn bench(c: &mut Criterion) {
    let names = comparison::field_names();
    let fields: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut group = c.benchmark_group("decide_40_fields");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(3));
    for n in SIZES {
        let rules = RuleSet::generate(n);
        let e = rules.fedq_engine().unwrap();
        group.bench_with_input(BenchmarkId::new("fedq", n), &n, |b, _| {
            b.iter(|| {
                black_box(
                    e.decide(black_box(&comparison::request(&fields)))
                        .unwrap()
                        .fields
                        .len(),
                )
            })
        });
        #[cfg(feature = "cedar-bench")]
        {
            let side = comparison::cedar::CedarSide::new(&rules).unwrap();
            group.bench_with_input(BenchmarkId::new("cedar", n), &n, |b, _| {
                b.iter(|| black_box(side.decide_all()))
            });
        }
    }
    group.finish();
}

/// The side-by-side table: median per request, and the ratio.
fn report() {
    println!("\n40-field request, median per request:");
    for n in SIZES {
        let c = comparison::compare(n, Duration::from_secs(3)).unwrap();
        let fedq_us = c.fedq.median.as_secs_f64() * 1e6;
        print!(
            "  {n:>5} rules: fedq {fedq_us:>9.2} µs ({} rules match, {} of {FIELDS} fields released)",
            c.fedq_rules_matched, c.fedq_fields_released
        );
        match (c.cedar, c.ratio()) {
            (Some((cedar, allowed)), Some(ratio)) => println!(
                "   cedar {:>11.2} µs ({:.2} µs per field, {allowed} fields allowed)   cedar/fedq = {ratio:.0}×",
                cedar.median.as_secs_f64() * 1e6,
                cedar.median.as_secs_f64() * 1e6 / FIELDS as f64,
            ),
            _ => println!("   (cedar: run with --features cedar-bench)"),
        }
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
    // `cargo bench` passes `--bench`; `cargo test --benches` does not and runs each
    // benchmark once in a debug build, where the timing table would mislead.
    if std::env::args().any(|a| a == "--bench") {
        report();
    }
}
