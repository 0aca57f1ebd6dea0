//! The policy-engine comparison shared by the criterion bench (`benches/decide.rs`) and
//! `fedq bench`: a generated policy set at N rules, the same rules as a `cedar-policy`
//! allow/deny set (with the `cedar-bench` feature), the 40-field request both engines
//! decide, and the timing loop that turns them into a median per decision.
//!
//! The generated policies concentrate on few requesters, purposes and datasets so the
//! measured request is matched by many rules (about 1 in 20 of all rules), a fifth of them
//! conditional (legal basis, consent, validity dates) and evaluated per request: a
//! demanding case for an indexed table, not one where indexing skips everything.
//!
//! Like the rest of the crate this does no I/O; it reads the clock in [`median_per_call`].

use std::hint::black_box;
use std::time::{Duration, Instant};

use crate::catalogue::DuplicateDepartment;
use crate::engine::{DecisionRequest, FieldSelection};
use crate::{Catalogue, Engine, Federation, FieldTransform, LocatedErrors, Policy, Refusal};

/// Fields in the measured request.
pub const FIELDS: usize = 40;
/// The policy sizes compared.
pub const SIZES: [usize; 3] = [100, 500, 2000];
/// The target for fedq (issue 3): p50 per 40-field decision at 2,000 rules, in µs.
pub const TARGET_US_AT_2000_RULES: f64 = 5.0;
/// The goal for the ratio Cedar / fedq at 2,000 rules (issue 3).
pub const GOAL_RATIO_AT_2000_RULES: f64 = 1000.0;
/// Whether this build includes the Cedar side (`cedar-bench` feature).
pub const CEDAR_BUILT: bool = cfg!(feature = "cedar-bench");

const DEPARTMENTS: usize = 5;
const DATASETS_PER_DEPT: usize = 4;
const REQUESTERS: usize = 8;
const PURPOSES: usize = 4;

/// Why the comparison could not be set up or run.
#[derive(Debug, thiserror::Error)]
pub enum ComparisonError {
    /// A generated catalogue or policy did not parse (a bug in the generator).
    #[error("generated policy set does not parse: {0}")]
    Generated(#[from] LocatedErrors),
    /// The generated federation has a department twice (a bug in the generator).
    #[error("generated federation: {0}")]
    Federation(#[from] DuplicateDepartment),
    /// fedq refused the measured request as a whole (a bug in the generator).
    #[error("fedq refused the measured request: {0}")]
    Refused(#[from] Refusal),
    /// Cedar rejected the generated policy set or request.
    #[error("cedar: {0}")]
    Cedar(String),
}

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

fn requester(r: usize) -> String {
    format!("agency{}.office{r}", r % 3)
}

/// `"a", "b", "c"`: the inside of a TOML array of the generator's names (none needs
/// escaping).
fn toml_strings(items: impl Iterator<Item = String>) -> String {
    items
        .map(|x| format!("\"{x}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One generated rule, from which both engines' policies are written.
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

/// The generated rules of a policy set of `n` rules: deterministic in `n`.
#[derive(Debug, Clone)]
pub struct RuleSet {
    rules: Vec<GenRule>,
}

impl RuleSet {
    /// `n` rules: about 80% grants, 10% limits, 10% denies.
    pub fn generate(n: usize) -> RuleSet {
        let mut g = Lcg(0x5eed_0000 + n as u64);
        let rules = (0..n)
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
                    transform: match g.below(3) {
                        0 => "exists",
                        1 => "count",
                        _ => "clear",
                    },
                    legal: (conditional && effect == "grant").then(|| g.below(3)),
                    valid_from_year: (conditional && g.below(2) == 0)
                        .then(|| 2020 + g.below(10) as i32),
                }
            })
            .collect();
        RuleSet { rules }
    }

    /// How many rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules as fedq policy text (against [`federation`]).
    pub fn fedq_policy_text(&self) -> String {
        let mut s = String::from("version = \"bench\"\n");
        for p in 0..PURPOSES {
            s += &format!("[[purpose]]\nname = \"p{p}\"\n");
        }
        for r in 0..REQUESTERS {
            s += &format!(
                "[[requester]]\nname = \"{}\"\nrole = \"role{}\"\npurposes = [{}]\n",
                requester(r),
                r % 2,
                toml_strings((0..PURPOSES).map(|p| format!("p{p}")))
            );
        }
        for (i, r) in self.rules.iter().enumerate() {
            s += &format!("[[rule]]\nid = \"r{i:04}\"\neffect = \"{}\"\n", r.effect);
            s += &format!(
                "requesters = [{}]\n",
                toml_strings(r.requesters.iter().map(|x| requester(*x)))
            );
            s += &format!(
                "purposes = [{}]\n",
                toml_strings(r.purposes.iter().map(|x| format!("p{x}")))
            );
            s += &format!("datasets = [\"dept{}.ds{}\"]\n", r.dataset.0, r.dataset.1);
            s += &format!(
                "fields = [{}]\n",
                toml_strings(r.fields.iter().map(|f| field_name(*f)))
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

    /// The rules compiled by fedq.
    pub fn fedq_engine(&self) -> Result<Engine, ComparisonError> {
        Ok(Policy::parse(&self.fedq_policy_text(), "bench.toml", &federation()?)?.compile())
    }

    /// The same rules as Cedar allow/deny policies, one policy per rule: a grant is a
    /// `permit`, a deny a `forbid`. Limits have no allow/deny equivalent (they cap a
    /// transform) and become `permit`s of their subject, which keeps the policy count
    /// equal; transforms are dropped (Cedar only answers allow/deny).
    pub fn cedar_policy_text(&self) -> String {
        let mut s = String::new();
        for r in &self.rules {
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
        s
    }
}

/// The generated federation: five departments of four datasets of 40 fields.
pub fn federation() -> Result<Federation, ComparisonError> {
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
                let class = match f % 5 {
                    0 => "identifier",
                    1 => "basic",
                    2 => "negative",
                    3 => "positive",
                    _ => "sensitive",
                };
                s += &format!(
                    "[[dataset.field]]\nname = \"{}\"\ntype = \"{ty}\"\nclass = \"{class}\"\n{extra}",
                    field_name(f)
                );
            }
        }
        cats.push(Catalogue::parse(&s, "gen")?);
    }
    Ok(Federation::new(cats)?)
}

/// The names of the measured request's fields.
pub fn field_names() -> Vec<String> {
    (0..FIELDS).map(field_name).collect()
}

/// The measured request: requester `agency0.office0`, purpose `p0`, legal basis `L1`,
/// every field of `dept0.ds0` by name, on 2026-06-01.
pub fn request<'a>(fields: &'a [&'a str]) -> DecisionRequest<'a> {
    DecisionRequest {
        requester: "agency0.office0",
        purpose: "p0",
        legal_basis: Some("L1"),
        case_reference: None,
        consent: false,
        dataset: "dept0.ds0",
        fields: FieldSelection::Named(fields),
        now: time::macros::date!(2026 - 06 - 01),
    }
}

/// A median time per call, from repeated timed batches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// Median over the batches of (batch time / calls in the batch).
    pub median: Duration,
    /// The fastest and slowest batch, per call (how noisy the host was).
    pub min: Duration,
    /// See `min`.
    pub max: Duration,
    /// Timed batches.
    pub batches: usize,
    /// Calls per batch.
    pub batch: usize,
}

/// Times `f`: one untimed warm-up call, one timed call to size the batches (about 10 ms
/// each, at least one call), then as many batches as fit in `budget` (at least 5, at most
/// 101), and the median per call. A call that takes 300 ms is timed 5–10 times, not
/// thousands.
pub fn median_per_call(budget: Duration, mut f: impl FnMut()) -> Timing {
    f();
    let t = Instant::now();
    f();
    let one = t.elapsed().as_secs_f64().max(1e-9);
    let batch = ((0.010 / one) as usize).clamp(1, 1_000_000);
    let batches = ((budget.as_secs_f64() / (one * batch as f64)) as usize).clamp(5, 101);
    let mut times: Vec<Duration> = (0..batches)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..batch {
                f();
            }
            t.elapsed().div_f64(batch as f64)
        })
        .collect();
    times.sort();
    Timing {
        median: times.get(times.len() / 2).copied().unwrap_or_default(),
        min: times.first().copied().unwrap_or_default(),
        max: times.last().copied().unwrap_or_default(),
        batches,
        batch,
    }
}

/// One policy size, both engines, measured in this process one after the other.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// Rules in the policy set.
    pub rules: usize,
    /// fedq: median per 40-field decision.
    pub fedq: Timing,
    /// How many rules match the measured request in fedq's decision.
    pub fedq_rules_matched: usize,
    /// Fields fedq releases (transform other than omit).
    pub fedq_fields_released: usize,
    /// Cedar, when this build includes it: median per 40-field decision (one
    /// authorization call per field), and how many fields it allows.
    pub cedar: Option<(Timing, usize)>,
}

impl Comparison {
    /// Cedar's time over fedq's, when both were measured.
    pub fn ratio(&self) -> Option<f64> {
        self.cedar.map(|(c, _)| {
            c.median.as_secs_f64() / self.fedq.median.as_secs_f64().max(f64::MIN_POSITIVE)
        })
    }
}

/// Measures fedq (and Cedar, with the `cedar-bench` feature) deciding the 40-field
/// request under the generated policy set of `n` rules, spending about `budget` on each.
pub fn compare(n: usize, budget: Duration) -> Result<Comparison, ComparisonError> {
    let rules = RuleSet::generate(n);
    let engine = rules.fedq_engine()?;
    let names = field_names();
    let fields: Vec<&str> = names.iter().map(String::as_str).collect();
    let decision = engine.decide(&request(&fields))?;
    let matched: std::collections::BTreeSet<u32> = decision
        .fields
        .iter()
        .flat_map(|f| f.matched.iter().copied())
        .collect();
    let released = decision
        .fields
        .iter()
        .filter(|f| f.transform != FieldTransform::Omit)
        .count();
    let fedq = median_per_call(budget, || {
        let d = engine.decide(black_box(&request(&fields)));
        black_box(d.map(|d| d.fields.len()).unwrap_or(0));
    });
    #[cfg(feature = "cedar-bench")]
    let cedar = {
        let side = cedar::CedarSide::new(&rules)?;
        let allowed = side.decide_all();
        let t = median_per_call(budget, || {
            black_box(side.decide_all());
        });
        Some((t, allowed))
    };
    #[cfg(not(feature = "cedar-bench"))]
    let cedar = None;
    Ok(Comparison {
        rules: n,
        fedq,
        fedq_rules_matched: matched.len(),
        fedq_fields_released: released,
        cedar,
    })
}

/// The Cedar side: the `cedar-policy` crate on the same rules.
#[cfg(feature = "cedar-bench")]
pub mod cedar {
    use cedar_policy::{
        Authorizer, Context, Decision, Entities, EntityUid, PolicySet, Request,
        RestrictedExpression,
    };

    use super::{field_name, ComparisonError, RuleSet, FIELDS};

    fn cedar_err(e: impl std::fmt::Display) -> ComparisonError {
        ComparisonError::Cedar(e.to_string())
    }

    /// A parsed Cedar policy set and the measured request as one Cedar request per field.
    #[derive(Debug)]
    pub struct CedarSide {
        authorizer: Authorizer,
        set: PolicySet,
        entities: Entities,
        requests: Vec<Request>,
    }

    impl CedarSide {
        /// The rules as a Cedar policy set, and the 40 requests.
        pub fn new(rules: &RuleSet) -> Result<CedarSide, ComparisonError> {
            let set: PolicySet = rules.cedar_policy_text().parse().map_err(cedar_err)?;
            let principal: EntityUid = "Requester::\"agency0.office0\""
                .parse()
                .map_err(cedar_err)?;
            let action: EntityUid = "Action::\"read\"".parse().map_err(cedar_err)?;
            let requests = (0..FIELDS)
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
                    .map_err(cedar_err)?;
                    let resource: EntityUid = format!("Field::\"dept0.ds0.{}\"", field_name(f))
                        .parse()
                        .map_err(cedar_err)?;
                    Request::new(principal.clone(), action.clone(), resource, context, None)
                        .map_err(cedar_err)
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(CedarSide {
                authorizer: Authorizer::new(),
                set,
                entities: Entities::empty(),
                requests,
            })
        }

        /// One 40-field decision: one authorization call per field. Returns how many
        /// fields are allowed.
        pub fn decide_all(&self) -> usize {
            self.requests
                .iter()
                .filter(|r| {
                    self.authorizer
                        .is_authorized(r, &self.set, &self.entities)
                        .decision()
                        == Decision::Allow
                })
                .count()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_sets_parse_and_have_their_size() {
        for n in SIZES {
            let rules = RuleSet::generate(n);
            assert_eq!(rules.len(), n);
            assert!(rules.fedq_engine().is_ok());
        }
    }

    #[test]
    fn the_measured_request_is_decided_at_every_measured_size() {
        // Its legal basis must be one its purpose accepts (a rule for it cites `L1`), or
        // the bench would time a refusal.
        let names = field_names();
        let fields: Vec<&str> = names.iter().map(String::as_str).collect();
        for n in SIZES {
            let engine = RuleSet::generate(n).fedq_engine().unwrap();
            assert!(engine.decide(&request(&fields)).is_ok(), "{n} rules");
        }
    }

    #[test]
    fn the_measured_request_is_matched_by_many_rules() {
        let rules = RuleSet::generate(500);
        let engine = rules.fedq_engine().unwrap();
        let names = field_names();
        let fields: Vec<&str> = names.iter().map(String::as_str).collect();
        let d = engine.decide(&request(&fields)).unwrap();
        assert_eq!(d.fields.len(), FIELDS);
        let matched: std::collections::BTreeSet<u32> = d
            .fields
            .iter()
            .flat_map(|f| f.matched.iter().copied())
            .collect();
        assert!(matched.len() >= 5, "only {} rules match", matched.len());
    }

    #[test]
    fn generation_is_deterministic() {
        assert_eq!(
            RuleSet::generate(100).fedq_policy_text(),
            RuleSet::generate(100).fedq_policy_text()
        );
    }

    #[test]
    fn median_per_call_bounds_its_batches() {
        let mut calls = 0u64;
        let t = median_per_call(Duration::ZERO, || calls += 1);
        assert_eq!(t.batches, 5);
        assert!(t.batch >= 1);
        assert_eq!(calls, 2 + 5 * t.batch as u64);
        assert!(t.min <= t.median && t.median <= t.max);
    }

    #[cfg(feature = "cedar-bench")]
    #[test]
    fn cedar_allows_at_least_what_fedq_releases() {
        // Limits become Cedar permits, so Cedar may allow more fields than fedq
        // releases, never fewer: a field fedq releases has a matching grant and no deny,
        // and Cedar has the same permit and no forbid.
        let names = field_names();
        let fields: Vec<&str> = names.iter().map(String::as_str).collect();
        for n in [100, 500] {
            let rules = RuleSet::generate(n);
            let engine = rules.fedq_engine().unwrap();
            let d = engine.decide(&request(&fields)).unwrap();
            let released = d
                .fields
                .iter()
                .filter(|f| f.transform != FieldTransform::Omit)
                .count();
            let allowed = cedar::CedarSide::new(&rules).unwrap().decide_all();
            assert!(allowed <= FIELDS);
            assert!(allowed >= released, "{n} rules: {allowed} < {released}");
        }
    }
}
