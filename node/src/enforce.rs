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
use fedq_policy::views::{self, SourceOutcome};
use fedq_policy::{DecisionRequest, Engine, ViewRequest};
use fedq_wire::message::{DatasetOutcome, LookupAnswer, LookupRequest, LookupTarget};
use serde::Serialize;

use crate::evidence::Evidence;
/// Most datasets one lookup may name. The whole reference federation has 17; a lookup
/// names only the datasets of one query's plan at one node.
pub const MAX_LOOKUP_DATASETS: usize = 64;
/// Most fields one dataset of a lookup may name.
pub const MAX_LOOKUP_FIELDS: usize = 256;
/// Longest name (dataset, field, view) a lookup may carry, in bytes.
pub const MAX_LOOKUP_NAME: usize = 128;
/// Longest text (query id, requester, purpose, legal basis, policy version) a lookup may
/// carry, in bytes (its sealed subject may be longer:
/// [`fedq_wire::message::MAX_SEALED_SUBJECT_LEN`]).
pub const MAX_LOOKUP_TEXT: usize = fedq_wire::message::MAX_TEXT_LEN;

/// Why a lookup's shape is refused ([`check_lookup`]): counts, lengths and positions only,
/// never the values sent. Datasets are numbered from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupShapeError {
    /// The sealed subject is too long.
    #[error("the lookup's sealed subject is {len} bytes; at most {max} are accepted")]
    SealedTooLong {
        /// Its length in bytes.
        len: usize,
        /// The most accepted.
        max: usize,
    },
    /// One of the lookup's texts is too long.
    #[error("the lookup's `{what}` is {len} bytes; at most {MAX_LOOKUP_TEXT} are accepted")]
    TextTooLong {
        /// Which text (its wire name).
        what: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// The view name is too long.
    #[error("the lookup's view name is {len} bytes; at most {MAX_LOOKUP_NAME} are accepted")]
    ViewNameTooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The lookup names no dataset.
    #[error("the lookup names no dataset; name at least one")]
    NoDataset,
    /// The lookup names too many datasets.
    #[error("the lookup names {count} datasets; at most {MAX_LOOKUP_DATASETS} are accepted in one lookup")]
    TooManyDatasets {
        /// How many it names.
        count: usize,
    },
    /// A dataset's name is too long.
    #[error("dataset #{n} of the lookup has a name of {len} bytes; at most {MAX_LOOKUP_NAME} are accepted")]
    DatasetNameTooLong {
        /// Which dataset.
        n: usize,
        /// Its name's length in bytes.
        len: usize,
    },
    /// A dataset repeats an earlier one.
    #[error("dataset #{n} of the lookup repeats an earlier one; name each dataset once")]
    DatasetRepeated {
        /// Which dataset.
        n: usize,
    },
    /// A dataset names an empty field list.
    #[error("dataset #{n} of the lookup names an empty field list; name fields or ask for all")]
    EmptyFieldList {
        /// Which dataset.
        n: usize,
    },
    /// A dataset names too many fields.
    #[error(
        "dataset #{n} of the lookup names {count} fields; at most {MAX_LOOKUP_FIELDS} are accepted"
    )]
    TooManyFields {
        /// Which dataset.
        n: usize,
        /// How many fields it names.
        count: usize,
    },
    /// A field name is too long.
    #[error("dataset #{n} of the lookup has a field name of {len} bytes; at most {MAX_LOOKUP_NAME} are accepted")]
    FieldNameTooLong {
        /// Which dataset.
        n: usize,
        /// The field name's length in bytes.
        len: usize,
    },
    /// A dataset names a field twice.
    #[error("dataset #{n} of the lookup names a field twice; name each field once")]
    FieldRepeated {
        /// Which dataset.
        n: usize,
    },
}

/// Checks a lookup's shape before anything is read or recorded: bounded counts and
/// lengths, no dataset or field named twice. The error says what was wrong in counts and
/// field names only, never the values sent (they are untrusted and may be anything).
pub fn check_lookup(request: &LookupRequest) -> Result<(), LookupShapeError> {
    let texts = [
        ("query_id", Some(&request.query_id)),
        ("requester", Some(&request.requester)),
        ("purpose", Some(&request.purpose)),
        ("legal_basis", request.legal_basis.as_ref()),
        ("case_reference", request.case_reference.as_ref()),
        ("policy_version", Some(&request.policy_version)),
    ];
    let sealed_max = fedq_wire::message::MAX_SEALED_SUBJECT_LEN;
    if request.sealed.len() > sealed_max {
        return Err(LookupShapeError::SealedTooLong {
            len: request.sealed.len(),
            max: sealed_max,
        });
    }
    for (what, text) in texts {
        if let Some(len) = text.map(String::len).filter(|l| *l > MAX_LOOKUP_TEXT) {
            return Err(LookupShapeError::TextTooLong { what, len });
        }
    }
    match &request.target {
        LookupTarget::View(view) => {
            if view.len() > MAX_LOOKUP_NAME {
                return Err(LookupShapeError::ViewNameTooLong { len: view.len() });
            }
        }
        LookupTarget::Datasets(datasets) => {
            if datasets.is_empty() {
                return Err(LookupShapeError::NoDataset);
            }
            if datasets.len() > MAX_LOOKUP_DATASETS {
                return Err(LookupShapeError::TooManyDatasets {
                    count: datasets.len(),
                });
            }
            let mut seen = std::collections::BTreeSet::new();
            for (i, ds) in datasets.iter().enumerate() {
                let n = i + 1;
                if ds.dataset.len() > MAX_LOOKUP_NAME {
                    return Err(LookupShapeError::DatasetNameTooLong {
                        n,
                        len: ds.dataset.len(),
                    });
                }
                if !seen.insert(ds.dataset.as_str()) {
                    return Err(LookupShapeError::DatasetRepeated { n });
                }
                let Some(fields) = &ds.fields else { continue };
                if fields.is_empty() {
                    return Err(LookupShapeError::EmptyFieldList { n });
                }
                if fields.len() > MAX_LOOKUP_FIELDS {
                    return Err(LookupShapeError::TooManyFields {
                        n,
                        count: fields.len(),
                    });
                }
                let mut names = std::collections::BTreeSet::new();
                for f in fields {
                    if f.len() > MAX_LOOKUP_NAME {
                        return Err(LookupShapeError::FieldNameTooLong { n, len: f.len() });
                    }
                    if !names.insert(f.as_str()) {
                        return Err(LookupShapeError::FieldRepeated { n });
                    }
                }
            }
        }
        LookupTarget::Rights(r) => {
            let len = r.dataset.as_ref().map_or(0, String::len);
            if len > MAX_LOOKUP_NAME {
                return Err(LookupShapeError::DatasetNameTooLong { n: 1, len });
            }
            if r.dataset.is_some() != r.right.names_a_dataset() {
                return Err(LookupShapeError::NoDataset);
            }
        }
    }
    Ok(())
}

/// How an audit entry names the target of a lookup refused for its shape: its size, not
/// its (untrusted) content.
pub fn describe_refused_target(request: &LookupRequest) -> String {
    match &request.target {
        LookupTarget::View(v) => format!("view ({} bytes)", v.len()),
        LookupTarget::Datasets(ds) => format!("{} datasets", ds.len()),
        LookupTarget::Rights(r) => format!("rights:{}", r.right),
    }
}

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
        // The register is every dataset's: the node answers it for its whole log.
        LookupTarget::Rights(r) => match &r.dataset {
            Some(d) => vec![d.clone()],
            None => engine
                .datasets()
                .iter()
                .map(|d| d.qualified.clone())
                .collect(),
        },
    };
    out.retain(|d| d.split('.').next() == Some(department));
    out.sort();
    out.dedup();
    out
}

/// Whether a lookup's target is one the policy knows: a declared view, or catalogue
/// datasets. With [`datasets_touched`] empty it asks nothing of this department (a view
/// with no source here, or other departments' datasets only), and is refused before its
/// proof is checked and its sealed subject opened, so a node never learns whom a query is
/// about unless it is asked about its own records (a coordinator could otherwise send a
/// lookup to every node). Unknown names are left to [`screen`].
pub fn target_is_known(engine: &Engine, request: &LookupRequest) -> bool {
    match &request.target {
        LookupTarget::View(name) => engine.policy().views.iter().any(|v| &v.name == name),
        LookupTarget::Datasets(ds) => ds
            .iter()
            .all(|d| engine.datasets().iter().any(|c| c.qualified == d.dataset)),
        LookupTarget::Rights(r) => r
            .dataset
            .iter()
            .all(|d| engine.datasets().iter().any(|c| &c.qualified == d)),
    }
}

/// Which kind of name of a lookup is not its policy's own ([`screen`]). Only the policy's
/// own names are ever part of it (a dataset's, when one of its fields is unknown).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unscreened {
    /// The requester is not declared.
    #[error("the requester is not one this node's policy declares")]
    Requester,
    /// The purpose is not declared.
    #[error("the purpose is not one this node's policy declares")]
    Purpose,
    /// The legal basis is not cited.
    #[error("the legal basis is not one this node's policy cites")]
    LegalBasis,
    /// The view is not declared.
    #[error("the view is not one this node's policy declares")]
    View,
    /// A dataset is not in the catalogues.
    #[error("a dataset asked for is not in the federation's catalogues")]
    Dataset,
    /// A field is not in a (known) dataset.
    #[error("a field asked for is not in dataset `{dataset}`")]
    Field {
        /// The dataset's qualified name.
        dataset: String,
    },
}

/// Checks that a lookup names only what this node's policy knows: a declared purpose, a
/// cited legal basis (if any), a known view or known datasets and fields. The node never
/// trusts the coordinator to have checked, and a name that is not the policy's own is
/// never written to the audit log or echoed in a refusal (it could be anything a requester
/// typed, a resident ID included). The refusal says what kind of name was wrong.
pub fn screen(engine: &Engine, request: &LookupRequest) -> Result<(), Unscreened> {
    let policy = engine.policy();
    if !policy
        .requesters
        .iter()
        .any(|r| r.name == request.requester)
    {
        return Err(Unscreened::Requester);
    }
    if !policy.purposes.iter().any(|p| p.name == request.purpose) {
        return Err(Unscreened::Purpose);
    }
    if let Some(basis) = &request.legal_basis {
        if !policy.cited_legal_bases().contains(basis.as_str()) {
            return Err(Unscreened::LegalBasis);
        }
    }
    match &request.target {
        LookupTarget::View(view) => {
            if !policy.views.iter().any(|v| &v.name == view) {
                return Err(Unscreened::View);
            }
        }
        LookupTarget::Datasets(datasets) => {
            for ds in datasets {
                let Some(known) = engine.datasets().iter().find(|d| d.qualified == ds.dataset)
                else {
                    return Err(Unscreened::Dataset);
                };
                if ds.fields.iter().flatten().any(|f| known.field(f).is_none()) {
                    return Err(Unscreened::Field {
                        dataset: known.qualified.clone(),
                    });
                }
            }
        }
        LookupTarget::Rights(r) => {
            if let Some(d) = &r.dataset {
                if !engine.datasets().iter().any(|c| &c.qualified == d) {
                    return Err(Unscreened::Dataset);
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
    /// What is sealed to the requester, or the rationale of a refusal of the whole lookup.
    pub answer: Result<LookupAnswer, String>,
    /// The audit entry's outcome (JSON): field names and transforms, never values.
    pub audit_outcome: fedq_audit::Outcome,
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
    disputed: &[fedq_policy::Record],
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
    let answer = fedq_policy::minimize_disputed(decision, records, disputed);
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
/// dataset missing from it has no record. `today` is the node's own date. `consent` says
/// whether the node itself verified the lookup's consent token for this lookup
/// ([`crate::consent`]); the token's mere presence counts for nothing.
///
/// # Example
///
/// The market regulator's licensing office asks the court's node whether an applicant
/// is a listed dishonest debtor. The node decides with its own copy of the policy (here
/// the reference policy), which grants licensing four fields of the list in clear: the
/// debtor's name, the obligation and the amount owed stay at the node, and the audit
/// outcome names fields and transforms, never a value.
///
/// ```
/// use std::collections::BTreeMap;
///
/// use fedq_node::enforce::answer;
/// use fedq_node::evidence::Evidence;
/// use fedq_policy::Value;
/// use fedq_wire::message::{DatasetOutcome, DatasetRequest, LookupAnswer, LookupRequest, LookupTarget};
/// use time::macros::date;
///
/// let policy_file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
///     .join("../reference/changsha/policy.toml");
/// let policy = fedq_bundle::state::InForce {
///     version: 0,
///     threshold: 2,
///     content_sha256: String::new(),
///     approved_by: Vec::new(),
///     officers: Vec::new(),
///     engine: fedq_policy::load::load_engine(&policy_file, None).unwrap(),
/// };
/// let request = LookupRequest {
///     query_id: "q-1".into(),
///     requester: "market-regulation.licensing".into(),
///     purpose: "administrative-licensing".into(),
///     legal_basis: Some("行政许可法".into()),
///     case_reference: Some("长市监许申〔2026〕001234号".into()),
///     target: LookupTarget::Datasets(vec![DatasetRequest {
///         dataset: "court.dishonest_debtors".into(),
///         fields: None, // every field the policy allows
///     }]),
///     policy_version: "0".into(),
///     date: date!(2026 - 11 - 20),
///     proof: String::new(),  // checked before this function, by the lookup's core
///     sealed: String::new(),
/// };
/// // What the node read of the subject, already checked against its catalogue.
/// let text = |s: &str| Value::Text(s.to_owned());
/// let listed = BTreeMap::from([
///     ("case_no".to_owned(), text("(2025)湘0102执1234号")),
///     ("resident_id".to_owned(), text("430102198001011233")),
///     ("name".to_owned(), text("张三")),
///     ("court".to_owned(), text("天心区人民法院")),
///     ("obligation".to_owned(), text("返还借款")),
///     ("amount_owed".to_owned(), Value::Amount(12_345_600)),
///     ("performance_status".to_owned(), text("unperformed")),
///     ("listed_on".to_owned(), Value::Date(date!(2025 - 03 - 01))),
/// ]);
/// let records = BTreeMap::from([(
///     "court.dishonest_debtors".to_owned(),
///     Evidence::Records(vec![listed]),
/// )]);
///
/// let enforced = answer(&policy, "court", "court", &request, false, &records, date!(2026 - 11 - 20));
///
/// let Ok(LookupAnswer::Datasets(outcomes)) = &enforced.answer else { panic!("refused") };
/// let [DatasetOutcome::Released(released)] = outcomes.as_slice() else { panic!("not released") };
/// let fields: Vec<&str> = released.records[0].keys().map(String::as_str).collect();
/// assert_eq!(fields, ["case_no", "court", "listed_on"]); // `removed_on` is not set
/// assert!(!enforced.audit_outcome.contains("张三"));
/// assert!(!enforced.audit_outcome.contains("430102198001011233"));
/// assert_eq!(enforced.policy_version, "0/2026.11-1");
/// ```
pub fn answer(
    policy: &InForce,
    node: &str,
    department: &str,
    request: &LookupRequest,
    consent: bool,
    records: &BTreeMap<String, Evidence>,
    today: time::Date,
) -> Enforced {
    answer_marked(
        policy,
        node,
        department,
        request,
        consent,
        records,
        &BTreeMap::new(),
        today,
    )
}

/// [`answer`], with the subject's `disputed` records apart (by qualified dataset; the
/// person objected and the department has not resolved it, issue 19). What requesters
/// see of them is the policy's `disputed_records`: `flag` releases them (as a dataset
/// lookup's grants allow) after the others, counted as disputed, in no summary; `withhold`
/// releases nothing of them. Either way no view's verdict uses them: a view's sources are
/// decided from the undisputed records alone.
#[allow(clippy::too_many_arguments)]
pub fn answer_marked(
    policy: &InForce,
    node: &str,
    department: &str,
    request: &LookupRequest,
    consent: bool,
    records: &BTreeMap<String, Evidence>,
    disputed: &BTreeMap<String, Vec<fedq_policy::Record>>,
    today: time::Date,
) -> Enforced {
    let engine = &policy.engine;
    let flagged = |dataset: &str| -> &[fedq_policy::Record] {
        match engine.policy().disputed_records {
            fedq_policy::policy::DisputedRecords::Flag => {
                disputed.get(dataset).map_or(&[], Vec::as_slice)
            }
            fedq_policy::policy::DisputedRecords::Withhold => &[],
        }
    };
    let policy_version = policy.label();
    let empty = Evidence::default();
    let mut outcomes = Vec::new();
    let mut audited = BTreeMap::new();
    let refused = |rationale: String, version: &str| Enforced {
        audit_outcome: fedq_audit::Outcome::json(&serde_json::json!({ "refused": rationale })),
        answer: Err(rationale),
        policy_version: version.to_owned(),
    };
    match &request.target {
        LookupTarget::View(view) => {
            let decided = engine.decide_view(&ViewRequest {
                requester: &request.requester,
                purpose: &request.purpose,
                legal_basis: request.legal_basis.as_deref(),
                consent,
                case_reference: request.case_reference.as_deref(),
                view,
                now: today,
            });
            let decision = match decided {
                Ok(d) => d,
                Err(refusal) => return refused(refusal.to_string(), &policy_version),
            };
            let mut sources = BTreeMap::new();
            for source in decision
                .sources
                .iter()
                .filter(|s| s.decision.dataset.department == department)
            {
                let qualified = &source.decision.dataset.qualified;
                let (outcome, audit) = outcome_of(
                    &source.decision,
                    records.get(qualified).unwrap_or(&empty),
                    &[],
                );
                sources.insert(qualified.clone(), source_outcome(outcome));
                audited.insert(qualified.clone(), audit);
            }
            // The node's part of the view: what each of its sources contributes, which the
            // requester side combines with the other nodes' parts. Nothing of a source's
            // records leaves beyond what its finding needs (and the view's `release`).
            let declared = engine.policy().views.iter().find(|v| &v.name == view);
            let part = match (declared, engine.view_terms(view)) {
                (Some(v), Some((_, digest))) => views::part(v, *digest, &sources, today),
                _ => return refused(format!("the policy has no view `{view}`"), &policy_version),
            };
            return Enforced {
                audit_outcome: fedq_audit::Outcome::of(&audited),
                answer: Ok(LookupAnswer::View(part)),
                policy_version,
            };
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
                    consent,
                    case_reference: request.case_reference.as_deref(),
                    dataset: &ds.dataset,
                    fields,
                    now: today,
                });
                let decision = match decided {
                    Ok(d) => d,
                    Err(refusal) => return refused(refusal.to_string(), &policy_version),
                };
                let (outcome, audit) = outcome_of(
                    &decision,
                    records.get(&ds.dataset).unwrap_or(&empty),
                    flagged(&ds.dataset),
                );
                outcomes.push(outcome);
                audited.insert(ds.dataset.clone(), audit);
            }
        }
        LookupTarget::Rights(r) => {
            return refused(
                format!("`rights:{}` is answered from the node's register and rights file, not from records", r.right),
                &policy_version,
            )
        }
    }
    Enforced {
        audit_outcome: fedq_audit::Outcome::of(&audited),
        answer: Ok(LookupAnswer::Datasets(outcomes)),
        policy_version,
    }
}

/// What a dataset's outcome is to a view: answered, or unknown with why.
fn source_outcome(outcome: DatasetOutcome) -> SourceOutcome {
    match outcome {
        DatasetOutcome::Released(a) => SourceOutcome::Answered(a),
        DatasetOutcome::Denied { rationale, .. } => {
            SourceOutcome::Unavailable(format!("denied: {rationale}"))
        }
        DatasetOutcome::Unverified { reason, .. } => SourceOutcome::Unverified(reason),
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
            requester: "market-regulation.licensing".into(),
            purpose: purpose.into(),
            legal_basis: basis.map(str::to_owned),
            case_reference: None,
            target,
            policy_version: "0".into(),
            date: time::macros::date!(2026 - 11 - 20),
            proof: String::new(),
            sealed: String::new(),
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
            let why = screen(&engine, request).unwrap_err().to_string();
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

    fn lookup_of(target: LookupTarget) -> LookupRequest {
        LookupRequest {
            query_id: "q".into(),
            requester: "market-regulation.licensing".into(),
            purpose: "administrative-licensing".into(),
            legal_basis: None,
            case_reference: None,
            target,
            policy_version: "0".into(),
            date: time::macros::date!(2026 - 11 - 20),
            proof: String::new(),
            sealed: String::new(),
        }
    }

    fn many_datasets(n: usize) -> LookupTarget {
        LookupTarget::Datasets(
            (0..n)
                .map(|i| DatasetRequest {
                    dataset: format!("court.d{i}"),
                    fields: None,
                })
                .collect(),
        )
    }

    #[test]
    fn lookups_within_the_bounds_pass() {
        assert_eq!(
            check_lookup(&lookup_of(many_datasets(MAX_LOOKUP_DATASETS))),
            Ok(())
        );
        assert_eq!(
            check_lookup(&lookup_of(LookupTarget::View("blacklist-check".into()))),
            Ok(())
        );
    }

    #[test]
    fn too_many_or_repeated_items_are_refused_without_echoing_them() {
        let err = check_lookup(&lookup_of(many_datasets(20_000)))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "the lookup names 20000 datasets; at most 64 are accepted in one lookup"
        );
        let twice = LookupTarget::Datasets(vec![
            DatasetRequest {
                dataset: "court.secret-name".into(),
                fields: None,
            },
            DatasetRequest {
                dataset: "court.secret-name".into(),
                fields: None,
            },
        ]);
        let err = check_lookup(&lookup_of(twice)).unwrap_err().to_string();
        assert!(err.contains("repeats an earlier one"), "{err}");
        assert!(!err.contains("secret-name"), "{err}");
        let field_twice = LookupTarget::Datasets(vec![DatasetRequest {
            dataset: "court.dishonest_debtors".into(),
            fields: Some(vec!["name".into(), "name".into()]),
        }]);
        assert!(check_lookup(&lookup_of(field_twice))
            .unwrap_err()
            .to_string()
            .contains("names a field twice"));
        let many_fields = LookupTarget::Datasets(vec![DatasetRequest {
            dataset: "court.dishonest_debtors".into(),
            fields: Some((0..=MAX_LOOKUP_FIELDS).map(|i| format!("f{i}")).collect()),
        }]);
        assert!(check_lookup(&lookup_of(many_fields))
            .unwrap_err()
            .to_string()
            .contains("257 fields"));
        assert!(check_lookup(&lookup_of(many_datasets(0)))
            .unwrap_err()
            .to_string()
            .contains("names no dataset"));
        let mut long = lookup_of(many_datasets(1));
        long.purpose = "p".repeat(MAX_LOOKUP_TEXT + 1);
        assert_eq!(
            check_lookup(&long).unwrap_err().to_string(),
            "the lookup's `purpose` is 513 bytes; at most 512 are accepted"
        );
        assert_eq!(
            describe_refused_target(&lookup_of(many_datasets(20_000))),
            "20000 datasets"
        );
    }
}
