//! Decision latency for a 40-field request at 100 / 500 / 2,000 rules, and — with
//! `--features cedar-bench` — the `cedar-policy` crate on the equivalent allow/deny policy
//! set side by side, with the ratio.
//!
//! ```text
//! cargo bench -p fedq-policy --bench decide                          # fedq only
//! cargo bench -p fedq-policy --bench decide --features cedar-bench   # with Cedar + ratio
//! ```
//!
//! The generated policies concentrate on few requesters, purposes and datasets so the
//! benchmarked request is matched by many rules (about 1 in 20 of all rules), a fifth of
//! them conditional (legal basis, consent, validity dates) and evaluated per request:
//! a demanding case for an indexed table, not one where indexing skips everything.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion};
use fedq_policy::engine::{DecisionRequest, FieldSelection};
use fedq_policy::{Catalogue, Engine, Federation, Policy};

const DEPARTMENTS: usize = 5;
const DATASETS_PER_DEPT: usize = 4;
const FIELDS: usize = 40;
const REQUESTERS: usize = 8;
const PURPOSES: usize = 4;
const SIZES: [usize; 3] = [100, 500, 2000];

/// A small deterministic generator (no dependency needed for reproducible policies).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn field_name(f: usize) -> String {
    format!("f{f:02}")
}

fn federation() -> Federation {
    let mut cats = Vec::new();
    for d in 0..DEPARTMENTS {
        let mut s = format!("department = \"dept{d}\"\n");
        for ds in 0..DATASETS_PER_DEPT {
            s += &format!("[[dataset]]\nname = \"ds{ds}\"\nkind = \"negative\"\nkey = \"f00\"\nsubject = \"f01\"\nwindow_start = \"f02\"\n");
            for f in 0..FIELDS {
                let (ty, extra) = match f {
                    0 => ("string", ""),
                    1 => ("resident_id", ""),
                    2 => ("date", ""),
                    _ => match f % 4 {
                        0 => ("string", ""),
                        1 => ("date", ""),
                        2 => ("amount", "buckets = [100, 1000, 10000]\n"),
                        _ => ("integer", ""),
                    },
                };
                let class = ["identifier", "basic", "negative", "positive", "sensitive"][f % 5];
                s += &format!("[[dataset.field]]\nname = \"{}\"\ntype = \"{ty}\"\nclass = \"{class}\"\n{extra}", field_name(f));
            }
        }
        cats.push(Catalogue::parse(&s, "gen").unwrap());
    }
    Federation::new(cats).unwrap()
}

#[derive(Debug, Clone)]
struct GenRule {
    effect: &'static str,
    requesters: Vec<usize>,
    purposes: Vec<usize>,
    dataset: (usize, usize),
    fields: Vec<usize>,
    transform: &'static str,
    legal: Option<usize>,
    valid_from_year: Option<i32>,
}

fn rules(n: usize) -> Vec<GenRule> {
    let mut g = Lcg(0x5eed_0000 + n as u64);
    (0..n)
        .map(|_| {
            let effect = match g.below(10) {
                0 => "deny",
                1 => "limit",
                _ => "grant",
            };
            let nf = 4 + g.below(8);
            let mut fields: Vec<usize> = (0..nf).map(|_| g.below(FIELDS)).collect();
            fields.sort_unstable();
            fields.dedup();
            let conditional = g.below(5) == 0;
            GenRule {
                effect,
                requesters: (0..1 + g.below(2))
                    .map(|_| g.below(REQUESTERS / 2))
                    .collect(),
                purposes: (0..1 + g.below(2)).map(|_| g.below(PURPOSES / 2)).collect(),
                dataset: (g.below(2), g.below(2)),
                fields,
                transform: ["exists", "count", "clear"][g.below(3)],
                legal: (conditional && effect == "grant").then(|| g.below(3)),
                valid_from_year: (conditional && g.below(2) == 0)
                    .then(|| 2020 + g.below(10) as i32),
            }
        })
        .collect()
}

fn requester(r: usize) -> String {
    format!("agency{}.office{r}", r % 3)
}

fn fedq_policy_text(rules: &[GenRule]) -> String {
    let mut s = String::from("version = \"bench\"\n");
    for p in 0..PURPOSES {
        s += &format!("[[purpose]]\nname = \"p{p}\"\n");
    }
    for r in 0..REQUESTERS {
        s += &format!(
            "[[requester]]\nname = \"{}\"\nrole = \"role{}\"\npurposes = [{}]\n",
            requester(r),
            r % 2,
            (0..PURPOSES)
                .map(|p| format!("\"p{p}\""))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    for (i, r) in rules.iter().enumerate() {
        s += &format!("[[rule]]\nid = \"r{i:04}\"\neffect = \"{}\"\n", r.effect);
        s += &format!(
            "requesters = [{}]\n",
            r.requesters
                .iter()
                .map(|x| format!("\"{}\"", requester(*x)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        s += &format!(
            "purposes = [{}]\n",
            r.purposes
                .iter()
                .map(|x| format!("\"p{x}\""))
                .collect::<Vec<_>>()
                .join(", ")
        );
        s += &format!("datasets = [\"dept{}.ds{}\"]\n", r.dataset.0, r.dataset.1);
        s += &format!(
            "fields = [{}]\n",
            r.fields
                .iter()
                .map(|f| format!("\"{}\"", field_name(*f)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if r.effect != "deny" {
            s += &format!("transform = \"{}\"\n", r.transform);
        }
        if let Some(l) = r.legal {
            s += &format!("legal_basis = [\"L{l}\"]\n");
        }
        if let Some(y) = r.valid_from_year {
            s += &format!("valid_from = {y}-01-01\n");
        }
        s += "rationale = \"generated\"\n";
    }
    s
}

fn engine(n: usize) -> Engine {
    Policy::parse(&fedq_policy_text(&rules(n)), "bench.toml", &federation())
        .unwrap()
        .compile()
}

fn names() -> Vec<String> {
    (0..FIELDS).map(field_name).collect()
}

fn request<'a>(fields: &'a [&'a str]) -> DecisionRequest<'a> {
    DecisionRequest {
        requester: "agency0.office0",
        purpose: "p0",
        legal_basis: Some("L1"),
        consent: None,
        dataset: "dept0.ds0",
        fields: FieldSelection::Named(fields),
        now: time::macros::date!(2026 - 06 - 01),
    }
}

/// Median time per call of `f`, over `samples` batches of `batch` calls.
fn p50(samples: usize, batch: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..samples)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..batch {
                f();
            }
            t.elapsed() / batch as u32
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

#[cfg(feature = "cedar-bench")]
mod cedar {
    use super::*;
    use cedar_policy::{
        Authorizer, Context, Entities, EntityUid, PolicySet, Request, RestrictedExpression,
    };

    /// The same rules as Cedar allow/deny policies, one policy per rule: a grant is a
    /// `permit`, a deny a `forbid`. Limits have no allow/deny equivalent (they cap a
    /// transform) and become `permit`s of their subject, which keeps the policy count
    /// equal; transforms are dropped (Cedar only answers allow/deny).
    pub fn policy_set(rules: &[GenRule]) -> PolicySet {
        let mut s = String::new();
        for r in rules {
            let effect = if r.effect == "deny" {
                "forbid"
            } else {
                "permit"
            };
            // Disjunctions of `==` short-circuit and build no set values: the cheapest
            // way to say "one of these" in Cedar, so the comparison is fair to Cedar.
            let any = |items: Vec<String>, what: &str| {
                items
                    .iter()
                    .map(|x| format!("{what} == {x}"))
                    .collect::<Vec<_>>()
                    .join(" || ")
            };
            let principals = any(
                r.requesters
                    .iter()
                    .map(|x| format!("Requester::\"{}\"", requester(*x)))
                    .collect(),
                "principal",
            );
            let purposes = any(
                r.purposes.iter().map(|x| format!("\"p{x}\"")).collect(),
                "context.purpose",
            );
            let resources = any(
                r.fields
                    .iter()
                    .map(|f| {
                        format!(
                            "Field::\"dept{}.ds{}.{}\"",
                            r.dataset.0,
                            r.dataset.1,
                            field_name(*f)
                        )
                    })
                    .collect(),
                "resource",
            );
            let mut cond = format!("({principals}) && ({resources}) && ({purposes})");
            if let Some(l) = r.legal {
                cond += &format!(" && context.legal_basis == \"L{l}\"");
            }
            if let Some(y) = r.valid_from_year {
                cond += &format!(" && context.year >= {y}");
            }
            s += &format!(
                "{effect}(principal, action == Action::\"read\", resource) when {{ {cond} }};\n"
            );
        }
        s.parse().unwrap()
    }

    pub fn requests() -> Vec<Request> {
        (0..FIELDS)
            .map(|f| {
                let context = Context::from_pairs([
                    (
                        "purpose".to_owned(),
                        RestrictedExpression::new_string("p0".into()),
                    ),
                    (
                        "legal_basis".to_owned(),
                        RestrictedExpression::new_string("L1".into()),
                    ),
                    ("year".to_owned(), RestrictedExpression::new_long(2026)),
                ])
                .unwrap();
                Request::new(
                    "Requester::\"agency0.office0\""
                        .parse::<EntityUid>()
                        .unwrap(),
                    "Action::\"read\"".parse::<EntityUid>().unwrap(),
                    format!("Field::\"dept0.ds0.{}\"", field_name(f))
                        .parse::<EntityUid>()
                        .unwrap(),
                    context,
                    None,
                )
                .unwrap()
            })
            .collect()
    }

    /// One 40-field request: one authorization call per field.
    pub fn decide_all(
        authorizer: &Authorizer,
        set: &PolicySet,
        entities: &Entities,
        requests: &[Request],
    ) -> usize {
        requests
            .iter()
            .filter(|r| {
                authorizer.is_authorized(r, set, entities).decision()
                    == cedar_policy::Decision::Allow
            })
            .count()
    }
}

fn bench(c: &mut Criterion) {
    let names = names();
    let fields: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut group = c.benchmark_group("decide_40_fields");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(3));
    for n in SIZES {
        let e = engine(n);
        let d = e.decide(&request(&fields)).unwrap();
        let matched: std::collections::BTreeSet<u32> = d
            .fields
            .iter()
            .flat_map(|f| f.matched.iter().copied())
            .collect();
        eprintln!(
            "fedq {n} rules: {} rules match the benchmarked request; {} of 40 fields released",
            matched.len(),
            d.fields
                .iter()
                .filter(|f| f.transform != fedq_policy::FieldTransform::Omit)
                .count()
        );
        group.bench_with_input(BenchmarkId::new("fedq", n), &n, |b, _| {
            b.iter(|| black_box(e.decide(black_box(&request(&fields))).unwrap().fields.len()))
        });
        #[cfg(feature = "cedar-bench")]
        {
            let set = cedar::policy_set(&rules(n));
            let requests = cedar::requests();
            let authorizer = cedar_policy::Authorizer::new();
            let entities = cedar_policy::Entities::empty();
            eprintln!(
                "cedar {n} policies: {} of 40 fields allowed",
                cedar::decide_all(&authorizer, &set, &entities, &requests)
            );
            group.bench_with_input(BenchmarkId::new("cedar", n), &n, |b, _| {
                b.iter(|| black_box(cedar::decide_all(&authorizer, &set, &entities, &requests)))
            });
        }
    }
    group.finish();
}

/// The side-by-side table: p50 per 40-field request, and the ratio.
fn report() {
    let names = names();
    let fields: Vec<&str> = names.iter().map(String::as_str).collect();
    println!("\n40-field request, p50 per request:");
    for n in SIZES {
        let e = engine(n);
        let fedq = p50(101, 2000, || {
            black_box(e.decide(black_box(&request(&fields))).unwrap().fields.len());
        });
        #[cfg(feature = "cedar-bench")]
        {
            let set = cedar::policy_set(&rules(n));
            let requests = cedar::requests();
            let authorizer = cedar_policy::Authorizer::new();
            let entities = cedar_policy::Entities::empty();
            let batch = (20_000 / n).max(1);
            let cedar = p50(21, batch, || {
                black_box(cedar::decide_all(&authorizer, &set, &entities, &requests));
            });
            println!(
                "  {n:>5} rules: fedq {:>9.2} µs   cedar {:>11.2} µs ({:.2} µs per field)   cedar/fedq = {:.0}×",
                fedq.as_secs_f64() * 1e6,
                cedar.as_secs_f64() * 1e6,
                cedar.as_secs_f64() * 1e6 / FIELDS as f64,
                cedar.as_secs_f64() / fedq.as_secs_f64()
            );
        }
        #[cfg(not(feature = "cedar-bench"))]
        println!(
            "  {n:>5} rules: fedq {:>9.2} µs   (cedar: run with --features cedar-bench)",
            fedq.as_secs_f64() * 1e6
        );
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
