//! Evaluating named views. Pure functions, in two halves so that no party but the two ends
//! needs a record to compute one:
//!
//! - each node turns what it released for its own sources (already windowed, repaired
//!   records removed, minimized) into a [`ViewPart`]: one [`Finding`] per source — the
//!   source's listings, whether it holds a negative record, its report section or its
//!   score line — with the digest of the view's [`ViewTerms`] it decided under;
//! - the requester side [`combine`]s the parts it opened into the view's answer, under
//!   terms every part's digest vouches for.
//!
//! [`evaluate`] is the two halves run over every source at once. A source that could not
//! be answered makes the view say so — never a silent "clean".

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::minimize::{MinimizedAnswer, Summary};
use crate::policy::{View, ViewKind, ViewSource};
use crate::value::Value;
pub use crate::view_terms::{GradeTerm, SourceTerm, ViewTerms};

/// What was answered for one source dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceOutcome {
    /// The node answered (possibly with no records).
    Answered(MinimizedAnswer),
    /// No answer: denied, unavailable, or the node failed — with the reason.
    Unavailable(String),
    /// The node answered that it could not verify the source's records for the subject
    /// (unreadable or ill-typed rows, a window start in the future) — with the reason.
    Unverified(String),
    /// The node did not answer within the deadline — with the reason.
    TimedOut(String),
}

/// Why a source could not be confirmed, as a view reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnverifiedStatus {
    /// The node said its records of the source cannot be read as the catalogue says.
    Unverified,
    /// No answer: the node was unreachable, refused, failed, or did not answer at all.
    Unavailable,
    /// The node did not answer within the deadline.
    TimedOut,
}

/// One active listing on a serious-dishonesty list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listing {
    /// The list's label.
    pub list: String,
    /// The dataset it comes from.
    pub dataset: String,
    /// Listed since (as released: a date, or a month/year if minimized).
    pub since: Option<Value>,
    /// Listed until, if a removal date is recorded.
    pub until: Option<Value>,
}

/// A source the view could not verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Unverified {
    /// The dataset.
    pub dataset: String,
    /// Which kind of missing evidence.
    pub status: UnverifiedStatus,
    /// Why.
    pub reason: String,
}

/// The green channel's answer (长政办发〔2017〕62号 §十三).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GreenChannelVerdict {
    /// Every source answered and none has a negative record in the clean period.
    Eligible,
    /// A source that answered has a negative record in the clean period.
    NotEligible,
    /// No source that answered has a record, but at least one source is unverified,
    /// unavailable or timed out: eligibility cannot be confirmed (never read as clean).
    CannotConfirm,
}

/// One section of a credit report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportSection {
    /// Label.
    pub label: String,
    /// The dataset.
    pub dataset: String,
    /// Released records.
    pub records: Vec<BTreeMap<String, Value>>,
    /// Released summaries.
    pub summaries: BTreeMap<String, Summary>,
}

/// One line of an integrity score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ScoreLine {
    /// Category label.
    pub category: String,
    /// Records counted.
    pub records: u64,
    /// Points this category adds (negative: takes away).
    pub points: i64,
}

/// A view's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ViewResult {
    /// Active listings.
    Blacklist {
        /// Listings found.
        listings: Vec<Listing>,
        /// Sources that could not be checked: an empty `listings` is only "not listed"
        /// when this is empty too.
        unverified: Vec<Unverified>,
    },
    /// Green channel (长政办发〔2017〕62号 §十三).
    GreenChannel {
        /// Eligible, not eligible, or cannot confirm.
        verdict: GreenChannelVerdict,
        /// `verdict == Eligible`: every source answered and none has a negative record in
        /// the window. False both when not eligible and when it cannot be confirmed.
        eligible: bool,
        /// Why, in words.
        reason: String,
        /// The clean period in years.
        clean_years: u32,
        /// Sources that could not be checked: with none of the others dirty, the answer is
        /// "cannot confirm", never "eligible".
        unverified: Vec<Unverified>,
    },
    /// The person's own report.
    CreditReport {
        /// One section per source that answered.
        sections: Vec<ReportSection>,
        /// Sources that could not be included.
        unverified: Vec<Unverified>,
    },
    /// Integrity points and grade (长政办发〔2017〕62号 §十二).
    IntegrityScore {
        /// Points.
        points: i64,
        /// Grade, only when every source answered (a partial score is not graded).
        grade: Option<String>,
        /// Per category.
        breakdown: Vec<ScoreLine>,
        /// Sources that could not be included.
        unverified: Vec<Unverified>,
    },
}

/// How many records a source reported: from a `count` summary, the released records, or
/// at least one if an `exists` summary says so.
fn record_count(answer: &MinimizedAnswer) -> u64 {
    let counted = answer
        .summaries
        .values()
        .filter_map(|s| match s {
            Summary::Count(n) => Some(*n),
            Summary::Exists(_) => None,
        })
        .max()
        .unwrap_or(0);
    let exists = answer
        .summaries
        .values()
        .any(|s| matches!(s, Summary::Exists(true)));
    counted
        .max(answer.records.len() as u64)
        .max(u64::from(exists))
}

fn is_active(source: &ViewSource, record: &BTreeMap<String, Value>, today: time::Date) -> bool {
    if let Some(cond) = &source.active_if {
        // A status that was not released (or was minimized) cannot show the record is
        // inactive, so the listing is shown.
        if let Some(Value::Text(v)) = record.get(&cond.field) {
            if !cond.values.iter().any(|a| a == v) {
                return false;
            }
        }
    }
    match source.until.as_ref().and_then(|u| record.get(u)) {
        Some(Value::Date(until)) => *until >= today,
        _ => true,
    }
}

/// What a view releases of one source beside its result: only the fields it declares in
/// `release`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Released {
    /// The source's released records, each cut down to the declared fields; a record that
    /// holds none of them is left out.
    pub records: Vec<BTreeMap<String, Value>>,
    /// The source's summaries of declared fields.
    pub summaries: BTreeMap<String, Summary>,
}

/// The source fields `view` declares it releases (`release = [...]`), taken from the
/// sources that answered; nothing else of any source's records. A source that did not
/// answer releases nothing (the view's `unverified` already says why).
pub fn released(
    view: &View,
    outcomes: &BTreeMap<String, SourceOutcome>,
) -> BTreeMap<String, Released> {
    let mut out: BTreeMap<String, Released> = BTreeMap::new();
    for source in &view.sources {
        let fields: Vec<&str> = view
            .release
            .iter()
            .filter(|r| r.dataset == source.dataset_name)
            .map(|r| r.field.as_str())
            .collect();
        if fields.is_empty() {
            continue;
        }
        let Some(SourceOutcome::Answered(answer)) = outcomes.get(&source.dataset_name) else {
            continue;
        };
        let records = answer
            .records
            .iter()
            .map(|record| {
                record
                    .iter()
                    .filter(|(k, _)| fields.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<BTreeMap<_, _>>()
            })
            .filter(|r| !r.is_empty())
            .collect();
        let summaries = answer
            .summaries
            .iter()
            .filter(|(k, _)| fields.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        out.insert(source.dataset_name.clone(), Released { records, summaries });
    }
    out
}

/// What one source contributes to a view: exactly what [`combine`] needs of it, never the
/// source's records beyond that (a credit report's section is its records, by definition).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Finding {
    /// Blacklist: the source's active listings (none: not listed there).
    Listings(Vec<Listing>),
    /// Green channel: whether the source holds a negative record in the clean period.
    Negative(bool),
    /// Credit report: the source's released records and summaries.
    Section {
        /// Released records.
        records: Vec<BTreeMap<String, Value>>,
        /// Released summaries.
        summaries: BTreeMap<String, Summary>,
    },
    /// Integrity score: the records counted and the points they add (capped).
    Score {
        /// Records counted.
        records: u64,
        /// Points (negative: taken away).
        points: i64,
    },
    /// The source could not be confirmed: the view counts it as unknown, never as clean.
    Missing {
        /// Which kind of missing evidence.
        status: UnverifiedStatus,
        /// Why.
        reason: String,
    },
}

/// One source's finding, with the source fields the view declares it releases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourcePart {
    /// `department.dataset`.
    pub dataset: String,
    /// What it contributes.
    pub finding: Finding,
    /// The fields the view's `release` declares of this source, if it declares any and
    /// the source answered.
    pub released: Option<Released>,
}

/// A node's part of a view: its own sources' findings and the digest of the terms it
/// decided under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewPart {
    /// The view's name.
    pub view: String,
    /// [`ViewTerms::digest`] of the view as the node's policy defines it.
    pub terms_sha256: [u8; 32],
    /// One per source of the view the node holds.
    pub sources: Vec<SourcePart>,
}

/// What `source` of `view` contributes, given what was answered for it (`None`: no
/// answer).
pub fn finding(
    view: &View,
    source: &ViewSource,
    outcome: Option<&SourceOutcome>,
    today: time::Date,
) -> Finding {
    let missing = |status, reason: &str| Finding::Missing {
        status,
        reason: reason.to_owned(),
    };
    let answer = match outcome {
        Some(SourceOutcome::Answered(a)) => a,
        Some(SourceOutcome::Unavailable(reason)) => {
            return missing(UnverifiedStatus::Unavailable, reason)
        }
        Some(SourceOutcome::Unverified(reason)) => {
            return missing(UnverifiedStatus::Unverified, reason)
        }
        Some(SourceOutcome::TimedOut(reason)) => {
            return missing(UnverifiedStatus::TimedOut, reason)
        }
        None => return missing(UnverifiedStatus::Unavailable, "no answer"),
    };
    match view.kind {
        ViewKind::Blacklist => {
            let mut listings = Vec::new();
            for record in &answer.records {
                if is_active(source, record, today) {
                    listings.push(Listing {
                        list: source.label.clone(),
                        dataset: source.dataset_name.clone(),
                        since: source.since.as_ref().and_then(|f| record.get(f)).cloned(),
                        until: source.until.as_ref().and_then(|f| record.get(f)).cloned(),
                    });
                }
            }
            if answer.records.is_empty() && record_count(answer) > 0 {
                // Released only as exists/count: the listing is known, its dates are not.
                listings.push(Listing {
                    list: source.label.clone(),
                    dataset: source.dataset_name.clone(),
                    since: None,
                    until: None,
                });
            }
            Finding::Listings(listings)
        }
        ViewKind::GreenChannel => Finding::Negative(record_count(answer) > 0),
        ViewKind::CreditReport => Finding::Section {
            records: answer.records.clone(),
            summaries: answer.summaries.clone(),
        },
        ViewKind::IntegrityScore => {
            let n = record_count(answer);
            let raw = source
                .points_per_record
                .saturating_mul(i64::try_from(n).unwrap_or(i64::MAX));
            let points = match source.max_points {
                Some(cap) => raw.clamp(-cap.abs(), cap.abs()),
                None => raw,
            };
            Finding::Score { records: n, points }
        }
    }
}

/// A node's part of `view`: the finding (and declared release) of each source that
/// `outcomes` answers for — the node's own — under the view's terms, whose digest
/// ([`ViewTerms::digest`], kept by the engine's `view_terms`) it carries.
pub fn part(
    view: &View,
    terms_sha256: [u8; 32],
    outcomes: &BTreeMap<String, SourceOutcome>,
    today: time::Date,
) -> ViewPart {
    let mut released = released(view, outcomes);
    ViewPart {
        view: view.name.clone(),
        terms_sha256,
        sources: view
            .sources
            .iter()
            .filter(|s| outcomes.contains_key(&s.dataset_name))
            .map(|s| SourcePart {
                dataset: s.dataset_name.clone(),
                finding: finding(view, s, outcomes.get(&s.dataset_name), today),
                released: released.remove(&s.dataset_name),
            })
            .collect(),
    }
}

/// The view's answer from each source's finding (keyed by `department.dataset`) under
/// `terms`. A source of the terms with no finding counts as unavailable.
pub fn combine(terms: &ViewTerms, findings: &BTreeMap<String, Finding>) -> ViewResult {
    let mut unverified = Vec::new();
    let mut answered: Vec<(&SourceTerm, &Finding)> = Vec::new();
    for source in &terms.sources {
        match findings.get(&source.dataset) {
            Some(Finding::Missing { status, reason }) => unverified.push(Unverified {
                dataset: source.dataset.clone(),
                status: *status,
                reason: reason.clone(),
            }),
            Some(finding) => answered.push((source, finding)),
            None => unverified.push(Unverified {
                dataset: source.dataset.clone(),
                status: UnverifiedStatus::Unavailable,
                reason: "no answer".to_owned(),
            }),
        }
    }
    // A finding of another kind than the view's (which a node of the same terms never
    // sends) counts as unknown: the requester side fails closed.
    let mut mismatched = |source: &SourceTerm| {
        unverified.push(Unverified {
            dataset: source.dataset.clone(),
            status: UnverifiedStatus::Unverified,
            reason: "its finding is not of the view's kind".to_owned(),
        })
    };
    match terms.kind {
        ViewKind::Blacklist => {
            let mut listings = Vec::new();
            for (source, finding) in &answered {
                match finding {
                    Finding::Listings(l) => listings.extend(l.iter().cloned()),
                    _ => mismatched(source),
                }
            }
            ViewResult::Blacklist {
                listings,
                unverified,
            }
        }
        ViewKind::GreenChannel => {
            let mut dirty = 0usize;
            let mut clean = 0usize;
            for (source, finding) in &answered {
                match finding {
                    Finding::Negative(true) => dirty += 1,
                    Finding::Negative(false) => clean += 1,
                    _ => mismatched(source),
                }
            }
            // The verdict is the view's whole output: which source (or how many) holds the
            // record is an input, and stays out of it.
            let (verdict, reason) = if dirty > 0 {
                (
                    GreenChannelVerdict::NotEligible,
                    format!(
                        "a negative record within the last {} years",
                        terms.clean_years
                    ),
                )
            } else if !unverified.is_empty() {
                (
                    GreenChannelVerdict::CannotConfirm,
                    format!(
                        "cannot confirm: could not verify {} source(s): {}",
                        unverified.len(),
                        unverified
                            .iter()
                            .map(|u| format!("{} ({})", u.dataset, u.reason))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            } else {
                (
                    GreenChannelVerdict::Eligible,
                    format!(
                        "no negative record in the last {} years in any of {} sources",
                        terms.clean_years, clean
                    ),
                )
            };
            ViewResult::GreenChannel {
                verdict,
                eligible: verdict == GreenChannelVerdict::Eligible,
                reason,
                clean_years: terms.clean_years,
                unverified,
            }
        }
        ViewKind::CreditReport => {
            let mut sections = Vec::new();
            for (source, finding) in &answered {
                match finding {
                    Finding::Section { records, summaries } => sections.push(ReportSection {
                        label: source.label.clone(),
                        dataset: source.dataset.clone(),
                        records: records.clone(),
                        summaries: summaries.clone(),
                    }),
                    _ => mismatched(source),
                }
            }
            ViewResult::CreditReport {
                sections,
                unverified,
            }
        }
        ViewKind::IntegrityScore => {
            let mut points = terms.base_points;
            let mut breakdown = Vec::new();
            for (source, finding) in &answered {
                match finding {
                    Finding::Score { records, points: p } => {
                        points = points.saturating_add(*p);
                        breakdown.push(ScoreLine {
                            category: source.label.clone(),
                            records: *records,
                            points: *p,
                        });
                    }
                    _ => mismatched(source),
                }
            }
            let grade = if unverified.is_empty() {
                terms
                    .grades
                    .iter()
                    .find(|g| points >= g.min_points)
                    .map(|g| g.grade.clone())
            } else {
                None
            };
            ViewResult::IntegrityScore {
                points,
                grade,
                breakdown,
                unverified,
            }
        }
    }
}

/// Evaluates `view` over the outcome for each of its sources (keyed by `department.dataset`):
/// every source's [`finding`], [`combine`]d. A source missing from `outcomes` counts as
/// unavailable.
pub fn evaluate(
    view: &View,
    outcomes: &BTreeMap<String, SourceOutcome>,
    today: time::Date,
) -> ViewResult {
    let findings = view
        .sources
        .iter()
        .map(|s| {
            (
                s.dataset_name.clone(),
                finding(view, s, outcomes.get(&s.dataset_name), today),
            )
        })
        .collect();
    combine(&ViewTerms::of(view), &findings)
}
