//! Evaluating named views over the minimized answers the coordinator has merged. Pure
//! functions: the inputs are what the nodes released (already windowed, repaired records
//! removed, minimized), the output is the view's answer. A source that could not be
//! answered makes the view say so — never a silent "clean".

use std::collections::BTreeMap;

use serde::Serialize;

use crate::minimize::{MinimizedAnswer, Summary};
use crate::policy::{View, ViewKind, ViewSource};
use crate::transform::Value;

/// What the coordinator got for one source dataset.
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unverified {
    /// The dataset.
    pub dataset: String,
    /// Which kind of missing evidence.
    pub status: UnverifiedStatus,
    /// Why.
    pub reason: String,
}

/// The green channel's answer (seed §十三).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
    /// Green channel (seed §十三).
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
    /// Integrity points and grade (seed §十二).
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
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

/// Evaluates `view` over the outcome for each of its sources (keyed by `department.dataset`).
/// A source missing from `outcomes` counts as unavailable.
pub fn evaluate(
    view: &View,
    outcomes: &BTreeMap<String, SourceOutcome>,
    today: time::Date,
) -> ViewResult {
    let mut unverified = Vec::new();
    let mut answered: Vec<(&ViewSource, &MinimizedAnswer)> = Vec::new();
    for source in &view.sources {
        let (status, reason) = match outcomes.get(&source.dataset_name) {
            Some(SourceOutcome::Answered(a)) => {
                answered.push((source, a));
                continue;
            }
            Some(SourceOutcome::Unavailable(reason)) => {
                (UnverifiedStatus::Unavailable, reason.clone())
            }
            Some(SourceOutcome::Unverified(reason)) => {
                (UnverifiedStatus::Unverified, reason.clone())
            }
            Some(SourceOutcome::TimedOut(reason)) => (UnverifiedStatus::TimedOut, reason.clone()),
            None => (UnverifiedStatus::Unavailable, "no answer".to_owned()),
        };
        unverified.push(Unverified {
            dataset: source.dataset_name.clone(),
            status,
            reason,
        });
    }
    match view.kind {
        ViewKind::Blacklist => {
            let mut listings = Vec::new();
            for (source, answer) in &answered {
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
            }
            ViewResult::Blacklist {
                listings,
                unverified,
            }
        }
        ViewKind::GreenChannel => {
            let dirty: Vec<&str> = answered
                .iter()
                .filter(|(_, a)| record_count(a) > 0)
                .map(|(s, _)| s.label.as_str())
                .collect();
            // The verdict is the view's whole output: which source (or how many) holds the
            // record is an input, and stays with the coordinator.
            let (verdict, reason) = if !dirty.is_empty() {
                (
                    GreenChannelVerdict::NotEligible,
                    format!(
                        "a negative record within the last {} years",
                        view.clean_years
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
                        view.clean_years,
                        answered.len()
                    ),
                )
            };
            ViewResult::GreenChannel {
                verdict,
                eligible: verdict == GreenChannelVerdict::Eligible,
                reason,
                clean_years: view.clean_years,
                unverified,
            }
        }
        ViewKind::CreditReport => ViewResult::CreditReport {
            sections: answered
                .iter()
                .map(|(s, a)| ReportSection {
                    label: s.label.clone(),
                    dataset: s.dataset_name.clone(),
                    records: a.records.clone(),
                    summaries: a.summaries.clone(),
                })
                .collect(),
            unverified,
        },
        ViewKind::IntegrityScore => {
            let mut points = view.base_points;
            let mut breakdown = Vec::new();
            for (source, answer) in &answered {
                let n = record_count(answer);
                let raw = source
                    .points_per_record
                    .saturating_mul(i64::try_from(n).unwrap_or(i64::MAX));
                let capped = match source.max_points {
                    Some(cap) => raw.clamp(-cap.abs(), cap.abs()),
                    None => raw,
                };
                points = points.saturating_add(capped);
                breakdown.push(ScoreLine {
                    category: source.label.clone(),
                    records: n,
                    points: capped,
                });
            }
            let grade = if unverified.is_empty() {
                view.grades
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
