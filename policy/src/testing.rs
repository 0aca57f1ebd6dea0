//! Running the `[[test]]` cases a policy carries: each pins "now", makes a request and
//! states the expected decision and per-field transforms.

use crate::engine::{DecisionRequest, Engine, FieldSelection, ViewRequest};
use crate::policy::{Expected, TestCase};

/// The result of one test case.
#[derive(Debug, Clone)]
pub struct TestOutcome<'p> {
    /// The case.
    pub case: &'p TestCase,
    /// What did not match; empty when the case passed.
    pub failures: Vec<String>,
}

impl TestOutcome<'_> {
    /// Whether the case passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Runs every embedded test case against the compiled policy.
pub fn run_tests(engine: &Engine) -> Vec<TestOutcome<'_>> {
    engine
        .policy()
        .tests
        .iter()
        .map(|case| run_one(engine, case))
        .collect()
}

/// (field key, transform) pairs as decided, and for views whether every source is satisfied.
type Decided = Result<
    (
        Vec<(String, crate::transform::FieldTransform)>,
        Option<bool>,
    ),
    String,
>;

fn run_one<'p>(engine: &'p Engine, case: &'p TestCase) -> TestOutcome<'p> {
    let mut failures = Vec::new();
    // (field key, transform) pairs as decided, plus views' satisfaction.
    let decided: Decided = if let Some(view) = &case.view {
        engine
            .decide_view(&ViewRequest {
                requester: &case.requester,
                purpose: &case.purpose,
                legal_basis: case.legal_basis.as_deref(),
                consent: case
                    .consent
                    .as_deref()
                    .is_some_and(|c| !c.trim().is_empty()),
                case_reference: case.case_reference.as_deref(),
                view,
                now: case.now,
            })
            .map(|v| {
                let fields = v
                    .sources
                    .iter()
                    .flat_map(|s| {
                        s.decision.fields.iter().map(move |f| {
                            (
                                format!("{}.{}", s.decision.dataset.qualified, f.field.name),
                                f.transform,
                            )
                        })
                    })
                    .collect();
                (fields, Some(v.sources.iter().all(|s| s.satisfied)))
            })
            .map_err(|e| e.to_string())
    } else {
        let names: Vec<&str> = case.fields.iter().map(String::as_str).collect();
        engine
            .decide(&DecisionRequest {
                requester: &case.requester,
                purpose: &case.purpose,
                legal_basis: case.legal_basis.as_deref(),
                consent: case
                    .consent
                    .as_deref()
                    .is_some_and(|c| !c.trim().is_empty()),
                case_reference: case.case_reference.as_deref(),
                dataset: case.dataset.as_deref().unwrap_or(""),
                fields: if names.is_empty() {
                    FieldSelection::All
                } else {
                    FieldSelection::Named(&names)
                },
                now: case.now,
            })
            .map(|d| {
                (
                    d.fields
                        .iter()
                        .map(|f| (f.field.name.clone(), f.transform))
                        .collect(),
                    None,
                )
            })
            .map_err(|e| e.to_string())
    };
    match (&case.expect, decided) {
        (Expected::Refused, Err(_)) => {}
        (Expected::Refused, Ok(_)) => {
            failures.push("expected the request to be refused, but it was decided".to_owned())
        }
        (Expected::Decided { .. }, Err(e)) => failures.push(format!(
            "expected a decision, but the request was refused: {e}"
        )),
        (Expected::Decided { fields, satisfied }, Ok((got, got_satisfied))) => {
            for (name, want) in fields {
                match got.iter().find(|(n, _)| n == name) {
                    None => failures.push(format!(
                        "field `{name}` is not part of the decision; name a requested field"
                    )),
                    Some((_, t)) if t != want => {
                        failures.push(format!("field `{name}`: expected {want}, got {t}"))
                    }
                    Some(_) => {}
                }
            }
            if let (Some(want), Some(got)) = (satisfied, got_satisfied) {
                if *want != got {
                    let word = |b: bool| if b { "satisfied" } else { "not satisfied" };
                    failures.push(format!(
                        "expected the view to be {}, but it is {}",
                        word(*want),
                        word(got)
                    ));
                }
            }
        }
    }
    TestOutcome { case, failures }
}
