//! The compiled decision table and the decisions both the coordinator (pre-check) and
//! every node (authoritative) make with it. No I/O, no clock: "now" is in the request.
//!
//! Compilation resolves every rule's subject into cells indexed by (requester, purpose,
//! dataset); each cell holds, per field, the combination of the rules that always apply
//! (folded once) plus the few rules whose conditions depend on the request. A decision is
//! therefore three hash lookups and a short loop per field, whatever the number of rules.
//!
//! Combination does not depend on rule order: default deny; the most revealing applicable
//! grant; capped by the least revealing applicable limit; any applicable deny omits; the
//! result rounded down to a transform that fits the field's type.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use serde::Serialize;

use crate::catalogue::{Dataset, Field};
use crate::policy::{Effect, Policy, RecordAge, Rule, View, ViewSource};
use crate::transform::FieldTransform;

/// FNV-1a: the decision path hashes a few short names per request, where SipHash's
/// DoS resistance buys nothing (keys are the policy's own names) and costs time.
#[derive(Debug, Clone, Copy)]
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

type FnvMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;

const NONE: u32 = u32::MAX;

/// Which fields a request asks for.
#[derive(Debug, Clone, Copy)]
pub enum FieldSelection<'a> {
    /// Every field of the dataset.
    All,
    /// These fields, by name.
    Named(&'a [&'a str]),
}

/// One request for one dataset, as the coordinator and the node see it.
#[derive(Debug, Clone, Copy)]
pub struct DecisionRequest<'a> {
    /// `agency.office` from the requester's certificate.
    pub requester: &'a str,
    /// Declared purpose.
    pub purpose: &'a str,
    /// Cited legal basis, if any.
    pub legal_basis: Option<&'a str>,
    /// Whether the request carries the subject's consent **that was verified**: a consent
    /// token signed by the federation's consent authority, for this subject, requester,
    /// purpose and target, valid now and not used up. The engine does no verification;
    /// its callers (node and coordinator) verify the token and pass the result here.
    pub consent: bool,
    /// The case the request serves, if any (required where the purpose declares a
    /// `case_reference`).
    pub case_reference: Option<&'a str>,
    /// `department.dataset`.
    pub dataset: &'a str,
    /// Fields asked for.
    pub fields: FieldSelection<'a>,
    /// Today, in the city's time zone.
    pub now: time::Date,
}

/// A request refused as a whole: nothing is released.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Refusal {
    /// The requester is not declared in the policy.
    #[error("unknown requester `{requester}`; only requesters declared in the policy may ask — ask the security officer to declare it")]
    UnknownRequester {
        /// As given.
        requester: String,
    },
    /// The purpose is not declared in the policy.
    #[error("unknown purpose `{purpose}`; declare it in the policy or use a declared purpose")]
    UnknownPurpose {
        /// As given.
        purpose: String,
    },
    /// The requester may not ask for this purpose.
    #[error("requester `{requester}` may not ask for purpose `{purpose}`; its declared purposes are: {allowed}")]
    PurposeNotAllowed {
        /// Requester.
        requester: String,
        /// Purpose.
        purpose: String,
        /// Its declared purposes.
        allowed: String,
    },
    /// The purpose requires a legal basis and none was cited.
    #[error(
        "purpose `{purpose}` requires a legal basis; cite one with the request ({description})"
    )]
    LegalBasisRequired {
        /// Purpose.
        purpose: String,
        /// The purpose's description, as rationale.
        description: String,
    },
    /// The cited legal basis is not one the policy accepts for this purpose.
    #[error("purpose `{purpose}` does not accept the cited legal basis; cite one of: {accepted}")]
    LegalBasisNotAccepted {
        /// Purpose.
        purpose: String,
        /// The legal bases it accepts (from its rules and its own `legal_bases`), or "none".
        accepted: String,
    },
    /// The purpose is aggregate-only: no per-person lookup is answered under it.
    #[error("purpose `{purpose}` is aggregate-only: no question about one person is answered under it, only aggregate queries ({description})")]
    AggregateOnly {
        /// Purpose.
        purpose: String,
        /// The purpose's description.
        description: String,
    },
    /// The purpose requires a case reference and none was cited.
    #[error(
        "purpose `{purpose}` requires a case reference; cite the case the query serves: {form}"
    )]
    CaseReferenceRequired {
        /// Purpose.
        purpose: String,
        /// The expected form: the description and the pattern.
        form: String,
    },
    /// The cited case reference does not have the form the purpose declares.
    #[error("the case reference does not have the form purpose `{purpose}` requires: {form}")]
    CaseReferenceMalformed {
        /// Purpose.
        purpose: String,
        /// The expected form: the description and the pattern.
        form: String,
    },
    /// A case reference was cited for a purpose that declares none.
    #[error("purpose `{purpose}` takes no case reference; send the query without one")]
    CaseReferenceNotAccepted {
        /// Purpose.
        purpose: String,
    },
    /// The purpose requires the subject's consent and none was given.
    #[error("purpose `{purpose}` requires the subject's consent; attach a consent token from the consent authority (`fedq consent issue`) for this person, office, purpose and target ({description})")]
    ConsentRequired {
        /// Purpose.
        purpose: String,
        /// The purpose's description, as rationale.
        description: String,
    },
    /// The dataset is not in the catalogue.
    #[error("unknown dataset `{dataset}`; expected `department.dataset` from the catalogue")]
    UnknownDataset {
        /// As given.
        dataset: String,
    },
    /// A field is not in the dataset.
    #[error("unknown field `{field}` in dataset `{dataset}`; ask only for catalogued fields")]
    UnknownField {
        /// Dataset.
        dataset: String,
        /// As given.
        field: String,
    },
    /// The view may not be asked for this purpose.
    #[error("view `{view}` may not be asked for purpose `{purpose}`; it serves: {allowed}")]
    ViewNotForPurpose {
        /// View.
        view: String,
        /// Purpose.
        purpose: String,
        /// The purposes it serves.
        allowed: String,
    },
    /// The view is not declared.
    #[error("unknown view `{view}`; ask for a view declared in the policy")]
    UnknownView {
        /// As given.
        view: String,
    },
    /// The purpose does not serve this right of the person (`rights` of the purpose).
    #[error(
        "purpose `{purpose}` does not serve the right `{right}`; the rights it serves: {served}"
    )]
    RightNotServed {
        /// Purpose.
        purpose: String,
        /// The right asked.
        right: crate::policy::Right,
        /// The rights it serves, or "none".
        served: String,
    },
}

impl Refusal {
    /// The refusal's kind as a stable machine-readable word (the `reason` of its JSON
    /// form), for audit entries and typed answers.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::UnknownRequester { .. } => "unknown_requester",
            Refusal::UnknownPurpose { .. } => "unknown_purpose",
            Refusal::PurposeNotAllowed { .. } => "purpose_not_allowed",
            Refusal::LegalBasisRequired { .. } => "legal_basis_required",
            Refusal::LegalBasisNotAccepted { .. } => "legal_basis_not_accepted",
            Refusal::AggregateOnly { .. } => "aggregate_only",
            Refusal::CaseReferenceRequired { .. } => "case_reference_required",
            Refusal::CaseReferenceMalformed { .. } => "case_reference_malformed",
            Refusal::CaseReferenceNotAccepted { .. } => "case_reference_not_accepted",
            Refusal::ConsentRequired { .. } => "consent_required",
            Refusal::UnknownDataset { .. } => "unknown_dataset",
            Refusal::UnknownField { .. } => "unknown_field",
            Refusal::ViewNotForPurpose { .. } => "view_not_for_purpose",
            Refusal::UnknownView { .. } => "unknown_view",
            Refusal::RightNotServed { .. } => "right_not_served",
        }
    }
}

/// Why a field ends up released as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason<'e> {
    /// Released as granted by this rule.
    Granted(&'e Rule),
    /// Released less than granted (possibly not at all), capped by this limit.
    Limited(&'e Rule),
    /// Not released: this deny applies.
    Denied(&'e Rule),
    /// Not released: no rule grants it (default deny).
    NoGrant,
}

/// The decision for one field.
#[derive(Debug, Clone)]
pub struct FieldDecision<'e> {
    /// The field.
    pub field: &'e Field,
    /// What to release; `Omit` means nothing.
    pub transform: FieldTransform,
    /// Records dated on or before this date are not released for this field (a limit's
    /// record-age window); the statutory window is applied regardless.
    pub records_after: Option<time::Date>,
    /// The record-age window that set `records_after`, as written in the policy.
    pub max_record_age: Option<RecordAge>,
    /// Why.
    pub reason: Reason<'e>,
    /// Every rule whose subject matches (requester, purpose, dataset, field), whether or
    /// not its conditions held; indices into [`Engine::rules`].
    pub matched: &'e [u32],
}

impl FieldDecision<'_> {
    /// The reason in words, with the deciding rule's id and rationale.
    pub fn explanation(&self) -> String {
        match self.reason {
            Reason::Granted(r) => format!("granted by `{}`: {}", r.id, r.rationale),
            Reason::Limited(r) => format!("limited by `{}`: {}", r.id, r.rationale),
            Reason::Denied(r) => format!("denied by `{}`: {}", r.id, r.rationale),
            Reason::NoGrant => {
                "no rule grants this field to this requester for this purpose (default deny)"
                    .to_owned()
            }
        }
    }
}

/// The decision for one dataset request.
#[derive(Debug, Clone)]
pub struct DatasetDecision<'e> {
    /// The dataset.
    pub dataset: &'e Dataset,
    /// One decision per requested field, in request order.
    pub fields: Vec<FieldDecision<'e>>,
    /// The version of the policy that decided.
    pub policy_version: &'e str,
    /// Its content hash.
    pub policy_hash: &'e str,
    /// Today, as given in the request.
    pub now: time::Date,
}

impl DatasetDecision<'_> {
    /// Whether anything at all is released.
    pub fn releases_anything(&self) -> bool {
        self.fields
            .iter()
            .any(|f| f.transform != FieldTransform::Omit)
    }

    /// The released fields and their forms — what an audit entry records about the
    /// answer (no values, so no personal data).
    pub fn released_fields(&self) -> Vec<(&str, FieldTransform)> {
        self.fields
            .iter()
            .filter(|f| f.transform != FieldTransform::Omit)
            .map(|f| (f.field.name.as_str(), f.transform))
            .collect()
    }
}

/// A request for a named view.
#[derive(Debug, Clone, Copy)]
pub struct ViewRequest<'a> {
    /// `agency.office`.
    pub requester: &'a str,
    /// Declared purpose.
    pub purpose: &'a str,
    /// Cited legal basis.
    pub legal_basis: Option<&'a str>,
    /// Whether a verified consent token covers this request (see [`DecisionRequest::consent`]).
    pub consent: bool,
    /// The case the request serves, if any.
    pub case_reference: Option<&'a str>,
    /// The view's name.
    pub view: &'a str,
    /// Today.
    pub now: time::Date,
}

/// The decision for one source of a view: what to ask that dataset's node for.
#[derive(Debug, Clone)]
pub struct SourceDecision<'e> {
    /// The source as declared.
    pub source: &'e ViewSource,
    /// Per needed field: the granted transform, never more than the view needs, and the
    /// source's record-age window folded in.
    pub decision: DatasetDecision<'e>,
    /// Whether every needed field is granted at least as needed.
    pub satisfied: bool,
}

/// The decision for a view request.
#[derive(Debug, Clone)]
pub struct ViewDecision<'e> {
    /// The view.
    pub view: &'e View,
    /// One per source.
    pub sources: Vec<SourceDecision<'e>>,
}

impl<'e> ViewDecision<'e> {
    /// The decision for the source drawing on `dataset` (`department.dataset`): what the
    /// node holding it applies with `minimize::minimize`.
    pub fn source(&self, dataset: &str) -> Option<&SourceDecision<'e>> {
        self.sources
            .iter()
            .find(|s| s.source.dataset_name == dataset)
    }

    /// Whether every source gets everything the view needs.
    pub fn fully_satisfied(&self) -> bool {
        self.sources.iter().all(|s| s.satisfied)
    }
}

#[derive(Debug, Clone, Copy)]
struct FieldCell {
    grant: FieldTransform,
    grant_by: u32,
    cap: FieldTransform,
    cap_by: u32,
    deny_by: u32,
    cond: (u32, u32),
    matched: (u32, u32),
}

#[derive(Debug, Default)]
struct FieldBuild {
    matched: Vec<u32>,
    cond: Vec<u32>,
}

/// The compiled policy.
#[derive(Debug)]
pub struct Engine {
    policy: Policy,
    requester_index: FnvMap<String, u32>,
    purpose_index: FnvMap<String, u32>,
    dataset_index: FnvMap<String, u32>,
    field_index: Vec<FnvMap<String, u16>>,
    datasets: Vec<Dataset>,
    cells: Vec<Option<Box<[FieldCell]>>>,
    pool: Vec<u32>,
    n_purposes: usize,
    n_datasets: usize,
    /// Per purpose (by index), the legal bases a request for it may cite
    /// ([`Policy::legal_bases_for`]), computed once here rather than per request.
    accepted_bases: Vec<std::collections::BTreeSet<String>>,
    /// Per view, its terms and their digest ([`crate::view_terms::ViewTerms`]), computed once
    /// here: every view lookup at a node and every view query at the coordinator uses them.
    view_terms: FnvMap<String, (crate::view_terms::ViewTerms, [u8; 32])>,
}

fn slice(pool: &[u32], (start, end): (u32, u32)) -> &[u32] {
    pool.get(start as usize..end as usize).unwrap_or(&[])
}

impl Engine {
    /// Compiles `policy`. Rules are ordered by id first, so which rule is *cited* for a
    /// tie never depends on file order either.
    pub fn new(mut policy: Policy) -> Engine {
        policy.rules.sort_by(|a, b| a.id.cmp(&b.id));
        let datasets: Vec<Dataset> = policy.federation.datasets().cloned().collect();
        let (nr, np, nd) = (
            policy.requesters.len(),
            policy.purposes.len(),
            datasets.len(),
        );
        let mut build: FnvMap<usize, Vec<FieldBuild>> = FnvMap::default();
        let purpose_bases = |p: usize| {
            policy
                .purposes
                .get(p)
                .map_or(&[][..], |x| x.legal_bases.as_slice())
        };
        for (ri, rule) in policy.rules.iter().enumerate() {
            let ri = u32::try_from(ri).unwrap_or(NONE);
            for &r in &rule.requesters {
                for &p in &rule.purposes {
                    let conditional = rule.is_conditional_under(purpose_bases(p));
                    for (d, fields) in &rule.targets {
                        let Some(dataset) = datasets.get(*d) else {
                            continue;
                        };
                        let cell = build.entry((r * np + p) * nd + d).or_insert_with(|| {
                            (0..dataset.fields.len())
                                .map(|_| FieldBuild::default())
                                .collect()
                        });
                        for &f in fields {
                            if let Some(fb) = cell.get_mut(f) {
                                fb.matched.push(ri);
                                if conditional {
                                    fb.cond.push(ri);
                                }
                            }
                        }
                    }
                }
            }
        }
        let mut pool = Vec::new();
        let mut cells: Vec<Option<Box<[FieldCell]>>> = (0..nr * np * nd).map(|_| None).collect();
        let mut keys: Vec<usize> = build.keys().copied().collect();
        keys.sort_unstable();
        for key in keys {
            let Some(fields) = build.remove(&key) else {
                continue;
            };
            let compiled: Vec<FieldCell> = fields
                .into_iter()
                .map(|fb| {
                    let mut c = FieldCell {
                        grant: FieldTransform::Omit,
                        grant_by: NONE,
                        cap: FieldTransform::Clear,
                        cap_by: NONE,
                        deny_by: NONE,
                        cond: (0, 0),
                        matched: (0, 0),
                    };
                    for &ri in &fb.matched {
                        let Some(rule) = policy.rules.get(ri as usize) else {
                            continue;
                        };
                        if fb.cond.contains(&ri) {
                            continue;
                        }
                        fold(&mut c, ri, rule);
                    }
                    let start = pool.len() as u32;
                    pool.extend(&fb.matched);
                    c.matched = (start, pool.len() as u32);
                    let start = pool.len() as u32;
                    pool.extend(&fb.cond);
                    c.cond = (start, pool.len() as u32);
                    c
                })
                .collect();
            if let Some(slot) = cells.get_mut(key) {
                *slot = Some(compiled.into_boxed_slice());
            }
        }
        let index = |names: Vec<&str>| -> FnvMap<String, u32> {
            names
                .into_iter()
                .enumerate()
                .map(|(i, n)| (n.to_owned(), i as u32))
                .collect()
        };
        let accepted_bases = (0..policy.purposes.len())
            .map(|p| {
                policy
                    .legal_bases_for(p)
                    .into_iter()
                    .map(str::to_owned)
                    .collect()
            })
            .collect();
        let view_terms = policy
            .views
            .iter()
            .map(|v| {
                let terms = crate::view_terms::ViewTerms::of(v);
                let digest = terms.digest();
                (v.name.clone(), (terms, digest))
            })
            .collect();
        Engine {
            accepted_bases,
            view_terms,
            requester_index: index(policy.requesters.iter().map(|r| r.name.as_str()).collect()),
            purpose_index: index(policy.purposes.iter().map(|p| p.name.as_str()).collect()),
            dataset_index: index(datasets.iter().map(|d| d.qualified.as_str()).collect()),
            field_index: datasets
                .iter()
                .map(|d| {
                    d.fields
                        .iter()
                        .enumerate()
                        .map(|(i, f)| (f.name.clone(), i as u16))
                        .collect()
                })
                .collect(),
            datasets,
            cells,
            pool,
            n_purposes: np,
            n_datasets: nd,
            policy,
        }
    }

    /// The policy it was compiled from (rules sorted by id).
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The terms of view `name` and their digest, if the policy declares it.
    pub fn view_terms(&self, name: &str) -> Option<(&crate::view_terms::ViewTerms, &[u8; 32])> {
        self.view_terms.get(name).map(|(t, d)| (t, d))
    }

    /// The rules, indexed as in [`FieldDecision::matched`].
    pub fn rules(&self) -> &[Rule] {
        &self.policy.rules
    }

    /// The datasets, in index order.
    pub fn datasets(&self) -> &[Dataset] {
        &self.datasets
    }

    /// Checks a request that exercises one of the person's rights (issue 19): the request
    /// as a whole ([`Engine::check_request`]), then that its purpose serves `right`.
    pub fn check_rights(
        &self,
        requester: &str,
        purpose: &str,
        legal_basis: Option<&str>,
        consent: bool,
        case_reference: Option<&str>,
        right: crate::policy::Right,
    ) -> Result<(), Refusal> {
        let (_, p) =
            self.check_request(requester, purpose, legal_basis, consent, case_reference)?;
        let Some(pur) = self.policy.purposes.get(p) else {
            return Err(Refusal::UnknownPurpose {
                purpose: purpose.to_owned(),
            });
        };
        if !pur.rights.contains(&right) {
            return Err(Refusal::RightNotServed {
                purpose: purpose.to_owned(),
                right,
                served: if pur.rights.is_empty() {
                    "none".to_owned()
                } else {
                    pur.rights
                        .iter()
                        .map(|r| r.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            });
        }
        Ok(())
    }

    /// The request-level check the coordinator makes before fanning out, and every node
    /// again before reading anything: requester and purpose declared, purpose allowed for
    /// the requester, the purpose not aggregate-only (every request decided here is about
    /// one person), the legal basis present when required and one the purpose accepts
    /// (its rules' or its own `legal_bases`), consent verified (`consent`) when required, and the case
    /// reference present and of the declared form when the purpose declares one (and
    /// absent when it does not). No refusal repeats a legal basis or case reference sent.
    pub fn check_request(
        &self,
        requester: &str,
        purpose: &str,
        legal_basis: Option<&str>,
        consent: bool,
        case_reference: Option<&str>,
    ) -> Result<(usize, usize), Refusal> {
        self.check(
            requester,
            purpose,
            legal_basis,
            consent,
            CaseCheck::Cited(case_reference),
        )
    }

    /// Checks an aggregate (statistics) query: the requester, its purpose and legal basis
    /// as for any request (an aggregate-only purpose is what is asked under here), then
    /// the policy's `[statistics]` ([`crate::statistics::Statistics::check`]). Returns the statistics the
    /// query is counted and released under.
    pub fn check_aggregate(
        &self,
        requester: &str,
        purpose: &str,
        legal_basis: Option<&str>,
        target: &crate::statistics::AggregateTarget,
    ) -> Result<&crate::statistics::Statistics, crate::statistics::AggregateCheck> {
        use crate::statistics::{AggregateCheck, AggregateRefusal};
        let statistics = self
            .policy
            .statistics
            .as_ref()
            .ok_or(AggregateCheck::Statistics(AggregateRefusal::NotAllowed))?;
        self.check(requester, purpose, legal_basis, false, CaseCheck::Aggregate)
            .map_err(AggregateCheck::Request)?;
        statistics
            .check(purpose, target)
            .map_err(AggregateCheck::Statistics)?;
        Ok(statistics)
    }

    fn check(
        &self,
        requester: &str,
        purpose: &str,
        legal_basis: Option<&str>,
        consent: bool,
        case: CaseCheck<'_>,
    ) -> Result<(usize, usize), Refusal> {
        let r = *self
            .requester_index
            .get(requester)
            .ok_or_else(|| Refusal::UnknownRequester {
                requester: requester.to_owned(),
            })? as usize;
        let p = *self
            .purpose_index
            .get(purpose)
            .ok_or_else(|| Refusal::UnknownPurpose {
                purpose: purpose.to_owned(),
            })? as usize;
        let (Some(req), Some(pur)) = (self.policy.requesters.get(r), self.policy.purposes.get(p))
        else {
            return Err(Refusal::UnknownRequester {
                requester: requester.to_owned(),
            });
        };
        if !req.purposes.contains(&p) {
            return Err(Refusal::PurposeNotAllowed {
                requester: requester.to_owned(),
                purpose: purpose.to_owned(),
                allowed: req
                    .purposes
                    .iter()
                    .filter_map(|i| self.policy.purposes.get(*i).map(|p| p.name.as_str()))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        if pur.aggregate_only && !matches!(case, CaseCheck::Aggregate) {
            return Err(Refusal::AggregateOnly {
                purpose: purpose.to_owned(),
                description: pur.description.clone(),
            });
        }
        let legal_basis = legal_basis.filter(|b| !b.trim().is_empty());
        match legal_basis {
            None if pur.legal_basis_required => {
                return Err(Refusal::LegalBasisRequired {
                    purpose: purpose.to_owned(),
                    description: pur.description.clone(),
                })
            }
            None => {}
            Some(basis) => {
                let empty = std::collections::BTreeSet::new();
                let accepted = self.accepted_bases.get(p).unwrap_or(&empty);
                if !accepted.contains(basis) {
                    return Err(Refusal::LegalBasisNotAccepted {
                        purpose: purpose.to_owned(),
                        accepted: if accepted.is_empty() {
                            "none (this purpose takes no legal basis; omit it)".to_owned()
                        } else {
                            accepted
                                .iter()
                                .map(String::as_str)
                                .collect::<Vec<_>>()
                                .join(", ")
                        },
                    });
                }
            }
        }
        if pur.consent_required && !consent {
            return Err(Refusal::ConsentRequired {
                purpose: purpose.to_owned(),
                description: pur.description.clone(),
            });
        }
        if let CaseCheck::Cited(cited) = case {
            let cited = cited.filter(|c| !c.is_empty());
            match (&pur.case_reference, cited) {
                (Some(form), None) => {
                    return Err(Refusal::CaseReferenceRequired {
                        purpose: purpose.to_owned(),
                        form: case_form(form),
                    })
                }
                (Some(form), Some(c)) if !form.matches(c) => {
                    return Err(Refusal::CaseReferenceMalformed {
                        purpose: purpose.to_owned(),
                        form: case_form(form),
                    })
                }
                (None, Some(_)) => {
                    return Err(Refusal::CaseReferenceNotAccepted {
                        purpose: purpose.to_owned(),
                    })
                }
                _ => {}
            }
        }
        Ok((r, p))
    }

    /// Decides one dataset request: per requested field, the transform to apply. A field
    /// no grant reaches is omitted (default deny); an undeclared requester or purpose, or
    /// a request missing what its purpose requires, is refused as a whole.
    ///
    /// ```
    /// use fedq_policy::{Catalogue, DecisionRequest, Federation, FieldSelection, FieldTransform, Policy, Refusal};
    ///
    /// let tax = Catalogue::parse(r#"
    /// department = "tax"
    /// [[dataset]]
    /// name = "arrears"
    /// kind = "negative"
    /// key = "id"
    /// subject = "rid"
    /// window_start = "on"
    /// [[dataset.field]]
    /// name = "id"
    /// type = "string"
    /// class = "identifier"
    /// [[dataset.field]]
    /// name = "rid"
    /// type = "resident_id"
    /// class = "identifier"
    /// [[dataset.field]]
    /// name = "on"
    /// type = "date"
    /// class = "negative"
    /// "#, "tax.toml")?;
    /// let engine = Policy::parse(r#"
    /// version = 1
    /// [[purpose]]
    /// name = "licensing"
    /// [[requester]]
    /// name = "market-regulation.licensing"
    /// role = "licensing"
    /// purposes = ["licensing"]
    /// [[rule]]
    /// id = "arrears-month"
    /// effect = "grant"
    /// requesters = ["market-regulation.licensing"]
    /// purposes = ["licensing"]
    /// datasets = ["tax.arrears"]
    /// fields = ["on"]
    /// transform = "month"
    /// rationale = "licensing needs to know when the arrears arose, not the case"
    /// "#, "policy.toml", &Federation::new(vec![tax])?)?.compile();
    ///
    /// let mut ask = DecisionRequest {
    ///     requester: "market-regulation.licensing",
    ///     purpose: "licensing",
    ///     legal_basis: None,
    ///     consent: false,
    ///     case_reference: None,
    ///     dataset: "tax.arrears",
    ///     fields: FieldSelection::All,
    ///     now: fedq_policy::transform::parse_date("2026-11-27").ok_or("bad date")?,
    /// };
    /// let decision = engine.decide(&ask)?;
    /// assert_eq!(decision.released_fields(), [("on", FieldTransform::Month)]);
    ///
    /// ask.requester = "market-regulation.inspection";
    /// assert!(matches!(engine.decide(&ask), Err(Refusal::UnknownRequester { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn decide(&self, req: &DecisionRequest<'_>) -> Result<DatasetDecision<'_>, Refusal> {
        self.decide_with(req, CaseCheck::Cited(req.case_reference))
    }

    /// [`Engine::decide`] as if the request cited a case reference of the declared form:
    /// for the analysis tools, which ask what a requester could see, not whether one
    /// request's case reference fits.
    pub(crate) fn decide_any_case(
        &self,
        req: &DecisionRequest<'_>,
    ) -> Result<DatasetDecision<'_>, Refusal> {
        self.decide_with(req, CaseCheck::Assumed)
    }

    fn decide_with(
        &self,
        req: &DecisionRequest<'_>,
        case: CaseCheck<'_>,
    ) -> Result<DatasetDecision<'_>, Refusal> {
        let (r, p) = self.check(
            req.requester,
            req.purpose,
            req.legal_basis,
            req.consent,
            case,
        )?;
        let purpose_bases = self
            .policy
            .purposes
            .get(p)
            .map_or(&[][..], |x| x.legal_bases.as_slice());
        let d = *self
            .dataset_index
            .get(req.dataset)
            .ok_or_else(|| Refusal::UnknownDataset {
                dataset: req.dataset.to_owned(),
            })? as usize;
        let (Some(dataset), Some(names)) = (self.datasets.get(d), self.field_index.get(d)) else {
            return Err(Refusal::UnknownDataset {
                dataset: req.dataset.to_owned(),
            });
        };
        let cell = self
            .cells
            .get((r * self.n_purposes + p) * self.n_datasets + d)
            .and_then(|c| c.as_deref());
        let consent = req.consent;
        let mut fields = Vec::with_capacity(match req.fields {
            FieldSelection::All => dataset.fields.len(),
            FieldSelection::Named(n) => n.len(),
        });
        let mut push = |fi: usize| {
            if let Some(field) = dataset.fields.get(fi) {
                fields.push(self.decide_field(
                    field,
                    cell.and_then(|c| c.get(fi)),
                    req.legal_basis,
                    purpose_bases,
                    consent,
                    req.now,
                ));
            }
        };
        match req.fields {
            FieldSelection::All => (0..dataset.fields.len()).for_each(&mut push),
            FieldSelection::Named(list) => {
                for name in list {
                    let fi = *names.get(*name).ok_or_else(|| Refusal::UnknownField {
                        dataset: dataset.qualified.clone(),
                        field: (*name).to_owned(),
                    })?;
                    push(fi as usize);
                }
            }
        }
        Ok(DatasetDecision {
            dataset,
            fields,
            policy_version: &self.policy.version,
            policy_hash: &self.policy.content_hash,
            now: req.now,
        })
    }

    fn decide_field<'e>(
        &'e self,
        field: &'e Field,
        cell: Option<&FieldCell>,
        legal_basis: Option<&str>,
        purpose_bases: &[String],
        consent: bool,
        today: time::Date,
    ) -> FieldDecision<'e> {
        let Some(cell) = cell else {
            return FieldDecision {
                field,
                transform: FieldTransform::Omit,
                records_after: None,
                max_record_age: None,
                reason: Reason::NoGrant,
                matched: &[],
            };
        };
        let mut c = *cell;
        let mut records_after: Option<time::Date> = None;
        let mut max_record_age: Option<RecordAge> = None;
        for &ri in slice(&self.pool, cell.cond) {
            let Some(rule) = self.policy.rules.get(ri as usize) else {
                continue;
            };
            if !rule.conditions_hold(legal_basis, purpose_bases, consent, today) {
                continue;
            }
            fold(&mut c, ri, rule);
            if let (Effect::Limit, Some(age)) = (rule.effect, rule.max_record_age) {
                let cutoff = age.cutoff(today);
                if records_after.is_none_or(|a| cutoff > a) {
                    records_after = Some(cutoff);
                    max_record_age = Some(age);
                }
            }
        }
        let rule = |i: u32| self.policy.rules.get(i as usize);
        let (transform, reason) = if let Some(deny) = rule(c.deny_by) {
            (FieldTransform::Omit, Reason::Denied(deny))
        } else {
            let t = c.grant.min(c.cap).effective_for(field);
            let reason = match (rule(c.grant_by), rule(c.cap_by)) {
                (None, _) => Reason::NoGrant,
                (Some(_), Some(limit)) if c.cap < c.grant => Reason::Limited(limit),
                (Some(grant), _) => Reason::Granted(grant),
            };
            (t, reason)
        };
        FieldDecision {
            field,
            transform,
            records_after: if transform == FieldTransform::Omit {
                None
            } else {
                records_after
            },
            max_record_age: if transform == FieldTransform::Omit {
                None
            } else {
                max_record_age
            },
            reason,
            matched: slice(&self.pool, cell.matched),
        }
    }

    /// Decides a view request: for each source dataset, the fields the view needs, each
    /// granted no more than the view needs (a view asks for what it uses, nothing more).
    pub fn decide_view(&self, req: &ViewRequest<'_>) -> Result<ViewDecision<'_>, Refusal> {
        let view = self
            .policy
            .views
            .iter()
            .find(|v| v.name == req.view)
            .ok_or_else(|| Refusal::UnknownView {
                view: req.view.to_owned(),
            })?;
        let (_, p) = self.check_request(
            req.requester,
            req.purpose,
            req.legal_basis,
            req.consent,
            req.case_reference,
        )?;
        if !view.purposes.is_empty() && !view.purposes.contains(&p) {
            return Err(Refusal::ViewNotForPurpose {
                view: view.name.clone(),
                purpose: req.purpose.to_owned(),
                allowed: view
                    .purposes
                    .iter()
                    .filter_map(|i| self.policy.purposes.get(*i).map(|p| p.name.as_str()))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        let mut sources = Vec::with_capacity(view.sources.len());
        for source in &view.sources {
            let Some(dataset) = self.datasets.get(source.dataset) else {
                return Err(Refusal::UnknownDataset {
                    dataset: source.dataset_name.clone(),
                });
            };
            let names: Vec<&str> = source
                .needs
                .iter()
                .filter_map(|(fi, _)| dataset.fields.get(*fi).map(|f| f.name.as_str()))
                .collect();
            let mut decision = self.decide(&DecisionRequest {
                requester: req.requester,
                purpose: req.purpose,
                legal_basis: req.legal_basis,
                consent: req.consent,
                case_reference: req.case_reference,
                dataset: &dataset.qualified,
                fields: FieldSelection::Named(&names),
                now: req.now,
            })?;
            let mut satisfied = true;
            for (fd, (_, need)) in decision.fields.iter_mut().zip(&source.needs) {
                let need = need.effective_for(fd.field);
                if fd.transform < need {
                    satisfied = false;
                }
                fd.transform = fd.transform.min(need);
                if let Some(age) = source.max_record_age {
                    let cutoff = age.cutoff(req.now);
                    if fd.transform != FieldTransform::Omit
                        && fd.records_after.is_none_or(|a| cutoff > a)
                    {
                        fd.records_after = Some(cutoff);
                        fd.max_record_age = Some(age);
                    }
                }
            }
            sources.push(SourceDecision {
                source,
                decision,
                satisfied,
            });
        }
        Ok(ViewDecision { view, sources })
    }
}

/// Whether a request's case reference is checked (every request) or assumed to be of the
/// declared form (the analysis tools).
#[derive(Debug, Clone, Copy)]
enum CaseCheck<'a> {
    Cited(Option<&'a str>),
    Assumed,
    /// An aggregate query: an aggregate-only purpose is what it asks under, and it cites
    /// no case.
    Aggregate,
}

/// The form a purpose's case references take, as refusals show it.
fn case_form(form: &crate::policy::CaseReference) -> String {
    format!("{} (pattern `{}`)", form.description, form.pattern)
}

fn fold(c: &mut FieldCell, ri: u32, rule: &Rule) {
    match rule.effect {
        Effect::Grant => {
            if rule.transform > c.grant || (rule.transform == c.grant && ri < c.grant_by) {
                c.grant = rule.transform;
                c.grant_by = ri;
            }
        }
        Effect::Limit => {
            if rule.transform < c.cap || (rule.transform == c.cap && ri < c.cap_by) {
                c.cap = rule.transform;
                c.cap_by = ri;
            }
        }
        Effect::Deny => {
            if ri < c.deny_by {
                c.deny_by = ri;
            }
        }
    }
}

// Compiling is the engine's job: the policy module describes a policy and knows nothing
// of the table it compiles to.
impl Policy {
    /// Compiles the policy into its decision table.
    pub fn compile(self) -> Engine {
        Engine::new(self)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::catalogue::{Catalogue, Federation};

    const CATALOGUE: &str = r#"
department = "tax"
[[dataset]]
name = "arrears"
kind = "negative"
key = "id"
subject = "rid"
window_start = "on"
[[dataset.field]]
name = "id"
type = "string"
class = "identifier"
[[dataset.field]]
name = "rid"
type = "resident_id"
class = "identifier"
[[dataset.field]]
name = "on"
type = "date"
class = "negative"
[[dataset.field]]
name = "amount"
type = "amount"
class = "sensitive"
buckets = [1000, 10000]
"#;

    const HEAD: &str = r#"version = 7
[[purpose]]
name = "p"
[[requester]]
name = "a.b"
role = "r"
purposes = ["p"]
"#;

    pub(crate) fn engine(rules: &str) -> Engine {
        let fed = Federation::new(vec![Catalogue::parse(CATALOGUE, "tax.toml").unwrap()]).unwrap();
        Policy::parse(&format!("{HEAD}{rules}"), "p.toml", &fed)
            .unwrap()
            .compile()
    }

    pub(crate) fn rule(
        id: &str,
        effect: &str,
        fields: &str,
        transform: Option<&str>,
        extra: &str,
    ) -> String {
        let t = transform
            .map(|t| format!("transform = \"{t}\"\n"))
            .unwrap_or_default();
        format!("[[rule]]\nid = \"{id}\"\neffect = \"{effect}\"\nrequesters = [\"a.b\"]\npurposes = [\"p\"]\ndatasets = [\"tax.arrears\"]\n{fields}\n{t}{extra}rationale = \"why {id}\"\n")
    }

    fn decide(e: &Engine, legal: Option<&str>, today: &str) -> Vec<FieldTransform> {
        e.decide(&DecisionRequest {
            requester: "a.b",
            purpose: "p",
            legal_basis: legal,
            consent: false,
            case_reference: None,
            dataset: "tax.arrears",
            fields: FieldSelection::All,
            now: crate::value::parse_date(today).unwrap(),
        })
        .unwrap()
        .fields
        .iter()
        .map(|f| f.transform)
        .collect()
    }

    use FieldTransform::*;

    #[test]
    fn default_deny_omits_everything() {
        let e = engine("");
        assert_eq!(decide(&e, None, "2026-01-01"), vec![Omit; 4]);
    }

    #[test]
    fn the_most_revealing_grant_wins_and_is_rounded_to_the_field() {
        let e = engine(
            &(rule("g1", "grant", "fields = [\"*\"]", Some("count"), "")
                + &rule("g2", "grant", "fields = [\"*\"]", Some("mask"), "")),
        );
        // id: mask; rid: mask; on (date): month; amount: bucket.
        assert_eq!(
            decide(&e, None, "2026-01-01"),
            vec![Mask, Mask, Month, Bucket]
        );
    }

    #[test]
    fn limits_cap_and_denies_win_whatever_the_order() {
        let rules = [
            rule("g", "grant", "fields = [\"*\"]", Some("clear"), ""),
            rule("l", "limit", "classes = [\"negative\"]", Some("year"), ""),
            rule("d", "deny", "classes = [\"sensitive\"]", None, ""),
        ];
        let forward = engine(&rules.concat());
        let backward = engine(&rules.iter().rev().cloned().collect::<String>());
        for e in [&forward, &backward] {
            assert_eq!(
                decide(e, None, "2026-01-01"),
                vec![Clear, Clear, Year, Omit]
            );
        }
        let d = forward
            .decide(&DecisionRequest {
                requester: "a.b",
                purpose: "p",
                legal_basis: None,
                consent: false,
                case_reference: None,
                dataset: "tax.arrears",
                fields: FieldSelection::Named(&["amount", "on"]),
                now: crate::value::parse_date("2026-01-01").unwrap(),
            })
            .unwrap();
        assert!(matches!(d.fields[0].reason, Reason::Denied(r) if r.id == "d"));
        assert_eq!(d.fields[0].explanation(), "denied by `d`: why d");
        assert!(matches!(d.fields[1].reason, Reason::Limited(r) if r.id == "l"));
        assert_eq!(d.fields[1].matched.len(), 2);
    }

    #[test]
    fn conditional_grants_apply_only_when_their_conditions_hold() {
        let e = engine(&rule(
            "g",
            "grant",
            "fields = [\"id\"]",
            Some("clear"),
            "legal_basis = [\"L\"]\nvalid_from = 2026-01-01\nvalid_until = 2026-06-30\n",
        ));
        assert_eq!(decide(&e, Some("L"), "2026-03-01")[0], Clear);
        // A basis no rule cites is refused as a whole (it no longer falls through to
        // whatever needs no basis).
        assert!(matches!(
            e.decide(&ask(Some("M"), None)),
            Err(Refusal::LegalBasisNotAccepted { .. })
        ));
        assert_eq!(decide(&e, None, "2026-03-01")[0], Omit);
        assert_eq!(decide(&e, Some("L"), "2026-07-01")[0], Omit);
        assert_eq!(decide(&e, Some("L"), "2025-12-31")[0], Omit);
    }

    fn engine_with(purpose: &str, rules: &str) -> Engine {
        let fed = Federation::new(vec![Catalogue::parse(CATALOGUE, "tax.toml").unwrap()]).unwrap();
        let head = format!(
            "version = 7\n[[purpose]]\nname = \"p\"\n{purpose}\n[[requester]]\nname = \"a.b\"\nrole = \"r\"\npurposes = [\"p\"]\n"
        );
        Policy::parse(&format!("{head}{rules}"), "p.toml", &fed)
            .unwrap()
            .compile()
    }

    fn ask<'a>(basis: Option<&'a str>, case: Option<&'a str>) -> DecisionRequest<'a> {
        DecisionRequest {
            requester: "a.b",
            purpose: "p",
            legal_basis: basis,
            consent: false,
            case_reference: case,
            dataset: "tax.arrears",
            fields: FieldSelection::Named(&["id"]),
            now: crate::value::parse_date("2026-03-01").unwrap(),
        }
    }

    #[test]
    fn a_grant_citing_no_basis_needs_one_of_the_purpose_s_own() {
        let e = engine_with(
            "legal_bases = [\"P1\", \"P2\"]",
            &(rule("g", "grant", "fields = [\"id\"]", Some("exists"), "")
                + &rule(
                    "h",
                    "grant",
                    "fields = [\"id\"]",
                    Some("clear"),
                    "legal_basis = [\"R\"]\n",
                )),
        );
        let t = |basis| e.decide(&ask(basis, None)).map(|d| d.fields[0].transform);
        assert_eq!(t(Some("P1")), Ok(Exists));
        assert_eq!(t(Some("P2")), Ok(Exists));
        // The rule's own basis releases its grant, but not the purpose-wide one.
        assert_eq!(t(Some("R")), Ok(Clear));
        // No basis: the purpose does not require one, but the grants need one of theirs.
        assert_eq!(t(None), Ok(Omit));
        // Anything else: refused as a whole, naming what is accepted.
        assert_eq!(
            t(Some("anything")),
            Err(Refusal::LegalBasisNotAccepted {
                purpose: "p".into(),
                accepted: "P1, P2, R".into()
            })
        );
        let err = e.decide(&ask(Some("anything"), None)).unwrap_err();
        assert!(!err.to_string().contains("anything"), "{err}");
    }

    #[test]
    fn a_basis_no_rule_or_purpose_accepts_is_refused_and_limits_still_apply() {
        // No purpose list, one rule citing L: only L is accepted.
        let e = engine(
            &(rule(
                "g",
                "grant",
                "fields = [\"*\"]",
                Some("clear"),
                "legal_basis = [\"L\"]\n",
            ) + &rule("l", "limit", "fields = [\"amount\"]", Some("bucket"), "")),
        );
        assert_eq!(
            e.check_request("a.b", "p", Some("M"), false, None),
            Err(Refusal::LegalBasisNotAccepted {
                purpose: "p".into(),
                accepted: "L".into()
            })
        );
        assert_eq!(
            decide(&e, Some("L"), "2026-01-01"),
            vec![Clear, Clear, Clear, Bucket]
        );
        // A purpose whose rules cite nothing accepts no basis at all.
        let plain = engine(&rule("g", "grant", "fields = [\"*\"]", Some("clear"), ""));
        assert!(matches!(
            plain.check_request("a.b", "p", Some("L"), false, None),
            Err(Refusal::LegalBasisNotAccepted { accepted, .. }) if accepted.starts_with("none")
        ));
        assert!(plain.check_request("a.b", "p", None, false, None).is_ok());
    }

    #[test]
    fn a_declared_case_reference_is_required_and_must_have_its_form() {
        let e = engine_with(
            "case_reference = { pattern = \"[(（]20[0-9]{2}[)）]湘01执[0-9]{1,5}号\", description = \"执行案号，如 (2026)湘01执123号\" }",
            &rule("g", "grant", "fields = [\"id\"]", Some("clear"), ""),
        );
        let t = |case| e.decide(&ask(None, case)).map(|d| d.fields[0].transform);
        assert_eq!(t(Some("(2026)湘01执123号")), Ok(Clear));
        assert_eq!(t(Some("（2026）湘01执7号")), Ok(Clear));
        let required = t(None).unwrap_err();
        assert!(matches!(required, Refusal::CaseReferenceRequired { .. }));
        assert_eq!(t(Some("")).unwrap_err(), required);
        assert_eq!(required.code(), "case_reference_required");
        // Anchored at both ends, bounded, no control characters.
        let long = format!("(2026)湘01执123号{}", "1".repeat(200));
        for bad in [
            "(2026)湘01执123号 and more",
            "see (2026)湘01执123号",
            "(2026)湘01执123456号",
            "(2026)湘01执12\n3号",
            long.as_str(),
        ] {
            let err = t(Some(bad)).unwrap_err();
            assert!(
                matches!(err, Refusal::CaseReferenceMalformed { .. }),
                "{bad}: {err}"
            );
            let text = err.to_string();
            assert!(text.contains("执行案号，如 (2026)湘01执123号"), "{text}");
            assert!(!text.contains(bad), "{text}");
        }
        // A purpose that declares no case reference refuses one rather than record it.
        let plain = engine(&rule("g", "grant", "fields = [\"id\"]", Some("clear"), ""));
        assert!(matches!(
            plain.decide(&ask(None, Some("(2026)湘01执123号"))),
            Err(Refusal::CaseReferenceNotAccepted { .. })
        ));
        assert_eq!(
            e.policy().recordable_case("p", Some("(2026)湘01执123号")),
            Some("(2026)湘01执123号")
        );
        assert_eq!(e.policy().recordable_case("p", Some("nope")), None);
    }

    #[test]
    fn an_aggregate_only_purpose_answers_no_per_person_lookup() {
        let e = engine_with(
            "aggregate_only = true",
            &rule("g", "grant", "fields = [\"*\"]", Some("count"), ""),
        );
        let err = e.decide(&ask(None, None)).unwrap_err();
        assert!(matches!(err, Refusal::AggregateOnly { .. }), "{err}");
        assert!(err.to_string().contains("aggregate-only"), "{err}");
        assert!(e.check_request("a.b", "p", None, false, None).is_err());
    }

    #[test]
    fn purpose_declarations_are_checked_with_their_location() {
        let fed = Federation::new(vec![Catalogue::parse(CATALOGUE, "tax.toml").unwrap()]).unwrap();
        let parse = |purpose: &str| {
            let text = format!("version = 1\n[[purpose]]\nname = \"p\"\n{purpose}\n");
            Policy::parse(&text, "p.toml", &fed)
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        let err =
            parse("case_reference = { pattern = \"(unclosed\", description = \"d\" }").unwrap_err();
        assert!(
            err.contains("p.toml:4:") && err.contains("not a regular expression"),
            "{err}"
        );
        let err = parse("case_reference = { pattern = \"A[0-9]+\" }").unwrap_err();
        assert!(err.contains("needs a `description`"), "{err}");
        let err = parse("legal_basis_required = true").unwrap_err();
        assert!(
            err.contains("requires a legal basis but accepts none"),
            "{err}"
        );
        assert!(parse("legal_basis_required = true\nlegal_bases = [\"L\"]").is_ok());
        let err = parse("legal_bases = [\"L\", \"L\"]").unwrap_err();
        assert!(err.contains("listed twice"), "{err}");
        let err = parse("aggregate_only = true\nconsent_required = true").unwrap_err();
        assert!(err.contains("aggregate-only"), "{err}");
        let err = parse("case_ref = 1").unwrap_err();
        assert!(err.contains("case_ref"), "{err}");
    }

    #[test]
    fn the_tightest_record_window_applies() {
        let e = engine(
            &(rule("g", "grant", "fields = [\"id\"]", Some("clear"), "")
                + &rule(
                    "l1",
                    "limit",
                    "fields = [\"id\"]",
                    Some("clear"),
                    "max_record_age = \"2y\"\n",
                )
                + &rule(
                    "l2",
                    "limit",
                    "fields = [\"id\"]",
                    Some("clear"),
                    "max_record_age = \"6m\"\n",
                )),
        );
        let d = e
            .decide(&DecisionRequest {
                requester: "a.b",
                purpose: "p",
                legal_basis: None,
                consent: false,
                case_reference: None,
                dataset: "tax.arrears",
                fields: FieldSelection::Named(&["id"]),
                now: crate::value::parse_date("2026-09-15").unwrap(),
            })
            .unwrap();
        assert_eq!(
            d.fields[0].records_after,
            crate::value::parse_date("2026-03-15")
        );
        assert_eq!(d.fields[0].max_record_age, Some(RecordAge::Months(6)));
        assert_eq!(d.policy_version, "7");
        assert_eq!(d.policy_hash.len(), 64);
    }

    #[test]
    fn engines_can_be_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<Engine>();
    }
}
