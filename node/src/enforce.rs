//! Enforcement at the source, as a plain function over data (no I/O, no clock).
//!
//! For one lookup: the node decides with **its own** compiled policy (it never trusts the
//! coordinator's decision), keeps only records the law lets it disclose (the statutory
//! window and credit repair, in [`fedq_policy::minimize`]), and applies each field's
//! transform. What comes out is the only thing that may cross the wire; the audit outcome
//! beside it names fields and transforms, never values.

use std::collections::BTreeMap;

use fedq_bundle::state::InForce;
use fedq_policy::engine::{DatasetDecision, FieldSelection, Reason};
use fedq_policy::{minimize, DecisionRequest, Engine, ViewRequest};
use fedq_wire::message::{DatasetOutcome, LookupRequest, LookupResponse, LookupTarget};
use fedq_wire::NodeResponse;
use serde::Serialize;

use crate::evidence::Evidence;

/// The datasets of this node that a lookup touches (qualified names), so the store reads
/// only those.
pub fn datasets_touched(engine: &Engine, department: &str, request: &LookupRequest) -> Vec<String> {
    let mut out: Vec<String> = match &request.target {
        LookupTarget::Datasets(ds) => ds.iter().map(|d| d.dataset.clone()).collect(),
        LookupTarget::View(name) => engine
            .policy()
            .views
            .iter()
            .filter(|v| &v.name == name)
            .flat_map(|v| v.sources.iter().map(|s| s.dataset_name.clone()))
            .collect(),
    };
    out.retain(|d| d.split('.').next() == Some(department));
    out.sort();
    out.dedup();
    out
}

/// Checks that a lookup names only what this node's policy knows: a declared purpose, a
/// cited legal basis (if any), a known view or known datasets and fields. The node never
/// trusts the coordinator to have checked, and a name that is not the policy's own is
/// never written to the audit log or echoed in a refusal (it could be anything a requester
/// typed, a resident ID included). The refusal says what kind of name was wrong.
pub fn screen(engine: &Engine, request: &LookupRequest) -> Result<(), String> {
    let policy = engine.policy();
    if !policy
        .requesters
        .iter()
        .any(|r| r.name == request.requester)
    {
        return Err("the requester is not one this node's policy declares".into());
    }
    if !policy.purposes.iter().any(|p| p.name == request.purpose) {
        return Err("the purpose is not one this node's policy declares".into());
    }
    if let Some(basis) = &request.legal_basis {
        if !policy.cited_legal_bases().contains(basis.as_str()) {
            return Err("the legal basis is not one this node's policy cites".into());
        }
    }
    match &request.target {
        LookupTarget::View(view) => {
            if !policy.views.iter().any(|v| &v.name == view) {
                return Err("the view is not one this node's policy declares".into());
            }
        }
        LookupTarget::Datasets(datasets) => {
            for ds in datasets {
                let Some(known) = engine.datasets().iter().find(|d| d.qualified == ds.dataset)
                else {
                    return Err("a dataset asked for is not in the federation's catalogues".into());
                };
                if ds.fields.iter().flatten().any(|f| known.field(f).is_none()) {
                    return Err(format!(
                        "a field asked for is not in dataset `{}`",
                        known.qualified
                    ));
                }
            }
        }
    }
    Ok(())
}

/// What the audit entry records about one dataset.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AuditedDataset {
    /// Fields released with their transforms, and how many records went out.
    Released {
        /// Field → transform.
        fields: BTreeMap<String, String>,
        /// Records released.
        records: usize,
    },
    /// Refused.
    Denied {
        /// The rationale given.
        rationale: String,
    },
    /// Nothing released: the records read could not be verified.
    Unverified {
        /// Why (dataset and field names only).
        reason: String,
    },
}

/// The answer and what the audit log records about it.
#[derive(Debug)]
pub struct Enforced {
    /// What goes back to the coordinator.
    pub response: NodeResponse,
    /// JSON for the audit entry's outcome: field names and transforms, never values.
    pub audit_outcome: String,
    /// The policy version that decided.
    pub policy_version: String,
}

fn denial_rationale(decision: &DatasetDecision<'_>) -> String {
    let blocking = decision.fields.iter().find_map(|f| match f.reason {
        Reason::Denied(_) | Reason::Limited(_) => Some(f.explanation()),
        _ => None,
    });
    blocking.unwrap_or_else(|| {
        "no rule grants any of the requested fields to this requester for this purpose (default deny)".into()
    })
}

fn outcome_of(
    decision: &DatasetDecision<'_>,
    evidence: &Evidence,
) -> (DatasetOutcome, AuditedDataset) {
    // A refusal comes first: a requester the policy gives nothing learns nothing about the
    // state of the records either.
    if !decision.releases_anything() {
        let rationale = denial_rationale(decision);
        return (
            DatasetOutcome::Denied {
                dataset: decision.dataset.qualified.clone(),
                rationale: rationale.clone(),
            },
            AuditedDataset::Denied { rationale },
        );
    }
    let records = match evidence {
        Evidence::Records(records) => records,
        Evidence::Unverified(reason) => {
            return (
                DatasetOutcome::Unverified {
                    dataset: decision.dataset.qualified.clone(),
                    reason: reason.clone(),
                },
                AuditedDataset::Unverified {
                    reason: reason.clone(),
                },
            )
        }
    };
    let answer = minimize(decision, records);
    let fields = decision
        .fields
        .iter()
        .filter(|f| f.transform != fedq_policy::FieldTransform::Omit)
        .map(|f| (f.field.name.clone(), f.transform.name().to_owned()))
        .collect();
    let audited = AuditedDataset::Released {
        fields,
        records: answer.records.len(),
    };
    (DatasetOutcome::Released(answer), audited)
}

/// Decides and minimizes one lookup under the policy version in force when it started
/// (recorded as [`InForce::label`]). `records` holds what this node read of the subject's
/// unrepaired records, checked ([`Evidence::checked`]), by qualified dataset name; a
/// dataset missing from it has no record. `today` is the node's own date.
pub fn answer(
    policy: &InForce,
    node: &str,
    department: &str,
    request: &LookupRequest,
    records: &BTreeMap<String, Evidence>,
    today: time::Date,
) -> Enforced {
    let engine = &policy.engine;
    let policy_version = policy.label();
    let empty = Evidence::default();
    let mut outcomes = Vec::new();
    let mut audited = BTreeMap::new();
    let refused = |rationale: String, version: &str| Enforced {
        audit_outcome: serde_json::json!({ "refused": rationale }).to_string(),
        response: NodeResponse::Refused { rationale },
        policy_version: version.to_owned(),
    };
    match &request.target {
        LookupTarget::View(view) => {
            let decided = engine.decide_view(&ViewRequest {
                requester: &request.requester,
                purpose: &request.purpose,
                legal_basis: request.legal_basis.as_deref(),
                consent: request.consent.as_deref(),
                view,
                now: today,
            });
            let decision = match decided {
                Ok(d) => d,
                Err(refusal) => return refused(refusal.to_string(), &policy_version),
            };
            for source in decision
                .sources
                .iter()
                .filter(|s| s.decision.dataset.department == department)
            {
                let qualified = &source.decision.dataset.qualified;
                let (outcome, audit) =
                    outcome_of(&source.decision, records.get(qualified).unwrap_or(&empty));
                outcomes.push(outcome);
                audited.insert(qualified.clone(), audit);
            }
        }
        LookupTarget::Datasets(datasets) => {
            for ds in datasets {
                if ds.dataset.split('.').next() != Some(department) {
                    let rationale =
                        format!("dataset `{}` is not held by node `{node}`", ds.dataset);
                    audited.insert(
                        ds.dataset.clone(),
                        AuditedDataset::Denied {
                            rationale: rationale.clone(),
                        },
                    );
                    outcomes.push(DatasetOutcome::Denied {
                        dataset: ds.dataset.clone(),
                        rationale,
                    });
                    continue;
                }
                let names: Vec<&str> = ds.fields.iter().flatten().map(String::as_str).collect();
                let fields = match &ds.fields {
                    Some(_) => FieldSelection::Named(&names),
                    None => FieldSelection::All,
                };
                let decided = engine.decide(&DecisionRequest {
                    requester: &request.requester,
                    purpose: &request.purpose,
                    legal_basis: request.legal_basis.as_deref(),
                    consent: request.consent.as_deref(),
                    dataset: &ds.dataset,
                    fields,
                    now: today,
                });
                let decision = match decided {
                    Ok(d) => d,
                    Err(refusal) => return refused(refusal.to_string(), &policy_version),
                };
                let (outcome, audit) =
                    outcome_of(&decision, records.get(&ds.dataset).unwrap_or(&empty));
                outcomes.push(outcome);
                audited.insert(ds.dataset.clone(), audit);
            }
        }
    }
    Enforced {
        audit_outcome: serde_json::to_string(&audited).unwrap_or_else(|_| "{}".into()),
        response: NodeResponse::Lookup(LookupResponse {
            node: node.to_owned(),
            policy_version: policy_version.clone(),
            datasets: outcomes,
        }),
        policy_version,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fedq_wire::message::DatasetRequest;

    const ID: &str = "430102198001011233";

    fn engine() -> Engine {
        let policy = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../reference/changsha/policy.toml");
        fedq_policy::load::load_engine(&policy, None).unwrap()
    }

    fn lookup(purpose: &str, basis: Option<&str>, target: LookupTarget) -> LookupRequest {
        LookupRequest {
            query_id: "q".into(),
            subject: fedq_wire::ResidentId::parse(ID).unwrap(),
            requester: "market-regulation.licensing".into(),
            purpose: purpose.into(),
            legal_basis: basis.map(str::to_owned),
            consent: None,
            target,
            policy_version: "0".into(),
            date: time::macros::date!(2026 - 11 - 20),
        }
    }

    fn datasets(dataset: &str, fields: Option<&[&str]>) -> LookupTarget {
        LookupTarget::Datasets(vec![DatasetRequest {
            dataset: dataset.into(),
            fields: fields.map(|f| f.iter().map(|s| (*s).to_owned()).collect()),
        }])
    }

    #[test]
    fn a_lookup_naming_anything_but_the_policy_s_own_names_is_refused_without_repeating_it() {
        let engine = engine();
        let view = || LookupTarget::View("blacklist-check".into());
        let basis = Some("行政许可法");
        assert_eq!(
            screen(&engine, &lookup("administrative-licensing", basis, view())),
            Ok(())
        );
        assert_eq!(
            screen(
                &engine,
                &lookup(
                    "administrative-licensing",
                    None,
                    datasets("court.dishonest_debtors", Some(&["case_no"]))
                )
            ),
            Ok(())
        );
        let forged = [
            LookupRequest {
                requester: ID.into(),
                ..lookup("administrative-licensing", basis, view())
            },
            lookup(ID, basis, view()),
            lookup("administrative-licensing", Some(ID), view()),
            lookup(
                "administrative-licensing",
                basis,
                LookupTarget::View(ID.into()),
            ),
            lookup("administrative-licensing", basis, datasets(ID, None)),
            lookup(
                "administrative-licensing",
                basis,
                datasets("court.dishonest_debtors", Some(&["case_no", ID])),
            ),
        ];
        let mut reasons = Vec::new();
        for request in &forged {
            let why = screen(&engine, request).unwrap_err();
            assert!(!why.contains(ID) && !why.contains("430102"), "{why}");
            reasons.push(why);
        }
        assert!(reasons[0].contains("requester"), "{reasons:?}");
        assert!(reasons[1].contains("purpose"), "{reasons:?}");
        assert!(reasons[2].contains("legal basis"), "{reasons:?}");
        assert!(reasons[3].contains("view"), "{reasons:?}");
        assert!(reasons[4].contains("dataset"), "{reasons:?}");
        assert!(
            reasons[5].contains("field") && reasons[5].contains("court.dishonest_debtors"),
            "{reasons:?}"
        );
    }
}
