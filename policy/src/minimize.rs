//! Minimization at the source: turning a node's records into exactly what a decision
//! allows. The node calls [`minimize`] with the records matching the subject; nothing
//! else of those records may leave it.
//!
//! Per-record transforms (year, month, bucket, mask, clear) yield per-record values;
//! `exists` and `count` yield one summary per field over all disclosable records. The
//! statutory window and credit repair ([`Dataset::is_disclosable`]) are applied here too,
//! so a node cannot release a record the law withholds even if it forgets to filter.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::catalogue::{Dataset, Record};
use crate::engine::{DatasetDecision, FieldDecision};
use crate::transform::FieldTransform;
use crate::value::Value;

/// A per-field summary over all records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Summary {
    /// Whether any disclosable record has the field.
    Exists(bool),
    /// How many disclosable records have the field.
    Count(u64),
}

/// What one node releases for one dataset: per-record values of the fields released per
/// record, and summaries of the fields released as `exists`/`count`. Fields not released
/// appear in neither.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MinimizedAnswer {
    /// `department.dataset`.
    pub dataset: String,
    /// The policy version that decided.
    pub policy_version: String,
    /// One map per released record: field → minimized value.
    pub records: Vec<BTreeMap<String, Value>>,
    /// Field → summary.
    pub summaries: BTreeMap<String, Summary>,
    /// How many of `records`, the last ones, are disputed: the person objected and the
    /// department has not resolved it (issue 19). They count in no summary and in no
    /// view's verdict.
    #[serde(default)]
    pub disputed: usize,
}

fn in_window(dataset: &Dataset, fd: &FieldDecision<'_>, record: &Record) -> bool {
    match fd.records_after {
        None => true,
        Some(cutoff) => dataset.record_date(record).is_some_and(|d| d > cutoff),
    }
}

/// Applies `decision` to the subject's `records` of its dataset.
pub fn minimize(decision: &DatasetDecision<'_>, records: &[Record]) -> MinimizedAnswer {
    let dataset = decision.dataset;
    let disclosable: Vec<&Record> = records
        .iter()
        .filter(|r| dataset.is_disclosable(r, decision.now))
        .collect();
    let mut answer = MinimizedAnswer {
        dataset: dataset.qualified.clone(),
        policy_version: decision.policy_version.to_owned(),
        ..MinimizedAnswer::default()
    };
    for fd in &decision.fields {
        if fd.transform.is_aggregate() {
            let n = disclosable
                .iter()
                .filter(|r| in_window(dataset, fd, r) && r.contains_key(&fd.field.name))
                .count() as u64;
            let summary = match fd.transform {
                FieldTransform::Exists => Summary::Exists(n > 0),
                _ => Summary::Count(n),
            };
            answer.summaries.insert(fd.field.name.clone(), summary);
        }
    }
    for record in disclosable {
        let mut out = BTreeMap::new();
        for fd in &decision.fields {
            if fd.transform == FieldTransform::Omit
                || fd.transform.is_aggregate()
                || !in_window(dataset, fd, record)
            {
                continue;
            }
            if let Some(v) = record
                .get(&fd.field.name)
                .and_then(|v| fd.transform.apply(v, fd.field))
            {
                out.insert(fd.field.name.clone(), v);
            }
        }
        if !out.is_empty() {
            answer.records.push(out);
        }
    }
    answer
}

/// Applies `decision` to the subject's undisputed `records` and then to its `disputed`
/// ones (the person objected and the department has not resolved it, issue 19): the
/// disputed records that are released come last, counted in
/// [`MinimizedAnswer::disputed`], and count in no summary.
pub fn minimize_disputed(
    decision: &DatasetDecision<'_>,
    records: &[Record],
    disputed: &[Record],
) -> MinimizedAnswer {
    let mut answer = minimize(decision, records);
    if disputed.is_empty() {
        return answer;
    }
    let flagged = minimize(decision, disputed);
    answer.disputed = flagged.records.len();
    answer.records.extend(flagged.records);
    answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::tests::{engine, rule};
    use crate::engine::{DecisionRequest, FieldSelection};
    use crate::transform::FieldTransform::{Bucket, Mask, Month};

    #[test]
    fn disputed_records_come_last_flagged_and_count_in_no_summary() {
        let e = engine(&rule(
            "g",
            "grant",
            "fields = [\"id\", \"on\"]",
            Some("clear"),
            "",
        ));
        let exists = engine(&rule("g", "grant", "fields = [\"id\"]", Some("exists"), ""));
        let record = |id: &str| {
            let mut r = crate::catalogue::Record::new();
            r.insert("id".into(), crate::value::Value::Text(id.into()));
            r.insert(
                "on".into(),
                crate::value::Value::Date(crate::value::parse_date("2026-01-02").unwrap()),
            );
            r
        };
        fn decide(e: &crate::engine::Engine) -> crate::engine::DatasetDecision<'_> {
            e.decide(&DecisionRequest {
                requester: "a.b",
                purpose: "p",
                legal_basis: None,
                consent: false,
                case_reference: None,
                dataset: "tax.arrears",
                fields: FieldSelection::All,
                now: crate::value::parse_date("2026-09-15").unwrap(),
            })
            .unwrap()
        }
        let a = minimize_disputed(&decide(&e), &[record("T-1")], &[record("T-2")]);
        assert_eq!(a.records.len(), 2);
        assert_eq!(a.disputed, 1);
        assert_eq!(
            a.records[1].get("id"),
            Some(&crate::value::Value::Text("T-2".into()))
        );
        // Only a disputed record: "exists" is false, and the record itself is not released
        // by an exists-only grant.
        let b = minimize_disputed(&decide(&exists), &[], &[record("T-2")]);
        assert_eq!(b.summaries.get("id"), Some(&Summary::Exists(false)));
        assert!(b.records.is_empty());
        assert_eq!(b.disputed, 0);
    }

    #[test]
    fn minimized_answers_travel_as_json() {
        let e = engine(&rule("g", "grant", "fields = [\"*\"]", Some("mask"), ""));
        let d = e
            .decide(&DecisionRequest {
                requester: "a.b",
                purpose: "p",
                legal_basis: None,
                consent: false,
                case_reference: None,
                dataset: "tax.arrears",
                fields: FieldSelection::All,
                now: crate::value::parse_date("2026-09-15").unwrap(),
            })
            .unwrap();
        assert_eq!(
            d.released_fields(),
            vec![
                ("id", Mask),
                ("rid", Mask),
                ("on", Month),
                ("amount", Bucket)
            ]
        );
        let mut r = crate::catalogue::Record::new();
        r.insert("id".into(), crate::value::Value::Text("T-1".into()));
        r.insert(
            "on".into(),
            crate::value::Value::Date(crate::value::parse_date("2026-01-02").unwrap()),
        );
        r.insert("amount".into(), crate::value::Value::Amount(123_400));
        let answer = minimize(&d, &[r]);
        let json = serde_json::to_string(&answer).unwrap();
        assert_eq!(
            json,
            r#"{"dataset":"tax.arrears","policy_version":"7","records":[{"amount":{"bucket":"1000-10000"},"id":{"masked":"T**"},"on":{"month":"2026-01"}}],"summaries":{},"disputed":0}"#
        );
        let back: MinimizedAnswer = serde_json::from_str(&json).unwrap();
        assert_eq!(back, answer);
    }
}
