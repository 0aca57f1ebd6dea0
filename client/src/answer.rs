//! The JSON shape of released values in an answer document (`fedq query --json`, an
//! agency gateway's 200): plain JSON a developer reads without our code.
//!
//! | released as                       | JSON                                                       |
//! |-----------------------------------|------------------------------------------------------------|
//! | text, enum value, resident ID     | a string                                                   |
//! | date                              | a string, ISO 8601 calendar date `YYYY-MM-DD`              |
//! | date minimized to month / year    | a string, ISO 8601 reduced precision `YYYY-MM` / `YYYY`    |
//! | whole number                      | a number                                                   |
//! | amount                            | `{"value": "8000.00", "currency": "CNY"}` (decimal string) |
//! | amount or number in a range       | `{"bucket": "10000-100000", "at_least": "10000", "below": "100000"}` |
//! | masked text                       | `{"masked": "张*"}`                                        |
//!
//! A bucket's label is the policy's: `lo-hi` means lo ≤ x < hi, `<lo` below the first
//! edge, `>=hi` from the last; for amounts the edges are in yuan. `at_least` and `below`
//! are the same edges as decimal strings, absent on the open side.
//!
//! Inside fedq values stay typed ([`fedq_policy::Value`], amounts in fen): stores, sealed
//! answers and views use that form; only the answer document is plain.

use std::collections::BTreeMap;

use fedq_policy::views::{
    GreenChannelVerdict, Listing, ReportSection, ScoreLine, Unverified, ViewResult,
};
use fedq_policy::{Summary, Value};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize, Serializer};

/// The currency of every amount: records are kept in fen (1/100 yuan).
pub const CURRENCY: &str = "CNY";

/// A released value as the answer document shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum AnswerValue {
    /// Text, an enum value or a resident ID as recorded; a date (`YYYY-MM-DD`), or a date
    /// minimized to its month (`YYYY-MM`) or year (`YYYY`).
    Text(String),
    /// A whole number.
    Integer(i64),
    /// An amount.
    Amount(Amount),
    /// An amount or number minimized to a declared range.
    Bucket(Bucket),
    /// Masked text.
    Masked(Masked),
}

/// An amount of money.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Amount {
    /// The amount as a decimal string with two places, e.g. `8000.00`.
    #[schemars(regex(pattern = r"^-?[0-9]+\.[0-9]{2}$"))]
    pub value: String,
    /// ISO 4217 currency code; always `CNY`.
    pub currency: String,
}

/// A value minimized to one of the ranges the policy declares for its field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Bucket {
    /// The policy's label: `lo-hi` (lo ≤ x < hi), `<lo` or `>=hi`; yuan for amounts.
    pub bucket: String,
    /// The lower edge (inclusive), absent for `<lo`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_least: Option<String>,
    /// The upper edge (exclusive), absent for `>=hi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<String>,
}

/// Masked text: the first character kept (a resident ID keeps its region code and last
/// four characters), the rest as `*`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Masked {
    /// The masked text.
    pub masked: String,
}

impl From<&Value> for AnswerValue {
    fn from(value: &Value) -> Self {
        match value {
            Value::Text(s) | Value::Month(s) => AnswerValue::Text(s.clone()),
            Value::Date(_) => AnswerValue::Text(value.to_string()),
            Value::Year(y) => AnswerValue::Text(format!("{y:04}")),
            Value::Integer(n) => AnswerValue::Integer(*n),
            Value::Amount(_) => AnswerValue::Amount(Amount {
                value: value.to_string(),
                currency: CURRENCY.to_owned(),
            }),
            Value::Bucket(label) => AnswerValue::Bucket(bucket(label)),
            Value::Masked(s) => AnswerValue::Masked(Masked { masked: s.clone() }),
        }
    }
}

/// A bucket label read into its edges.
fn bucket(label: &str) -> Bucket {
    let (at_least, below) = if let Some(hi) = label.strip_prefix(">=") {
        (Some(hi), None)
    } else if let Some(lo) = label.strip_prefix('<') {
        (None, Some(lo))
    } else {
        match label.split_once('-') {
            // A negative lower edge starts with '-': split after its first character.
            Some(("", _)) => match label.get(1..).and_then(|rest| rest.split_once('-')) {
                Some((lo, hi)) => (Some(label.get(..lo.len() + 1).unwrap_or(lo)), Some(hi)),
                None => (None, None),
            },
            Some((lo, hi)) => (Some(lo), Some(hi)),
            None => (None, None),
        }
    };
    Bucket {
        bucket: label.to_owned(),
        at_least: at_least.map(str::to_owned),
        below: below.map(str::to_owned),
    }
}

/// One record's released fields, plain.
pub fn plain_record(record: &BTreeMap<String, Value>) -> BTreeMap<String, AnswerValue> {
    record
        .iter()
        .map(|(k, v)| (k.clone(), AnswerValue::from(v)))
        .collect()
}

/// Serializes released records in their plain form (`#[serde(serialize_with)]`).
pub(crate) fn plain_records<S: Serializer>(
    records: &[BTreeMap<String, Value>],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(records.iter().map(plain_record))
}

/// Serializes a view's answer in its plain form (`#[serde(serialize_with)]`).
pub(crate) fn plain_view<S: Serializer>(
    view: &Option<ViewResult>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    view.as_ref().map(ViewAnswer::from).serialize(serializer)
}

/// A view's answer as the answer document shows it (`view_result`): the same as the
/// policy's [`ViewResult`] with every released value plain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ViewAnswer {
    /// Active listings on serious-dishonesty lists. An empty `listings` means "not
    /// listed" only when `unverified` is empty too.
    Blacklist {
        /// Listings found.
        listings: Vec<ListingAnswer>,
        /// Sources that could not be checked.
        unverified: Vec<Unverified>,
    },
    /// Green channel (长政办发〔2017〕62号 §十三).
    GreenChannel {
        /// Eligible, not eligible, or cannot confirm.
        verdict: GreenChannelVerdict,
        /// True only when `verdict` is `eligible`.
        eligible: bool,
        /// Why, in words.
        reason: String,
        /// The clean period in years.
        clean_years: u32,
        /// Sources that could not be checked: with none of the others dirty, the answer
        /// is "cannot confirm", never "eligible".
        unverified: Vec<Unverified>,
    },
    /// The person's own report.
    CreditReport {
        /// One section per source that answered.
        sections: Vec<SectionAnswer>,
        /// Sources that could not be included.
        unverified: Vec<Unverified>,
    },
    /// Integrity points and grade (长政办发〔2017〕62号 §十二).
    IntegrityScore {
        /// Points.
        points: i64,
        /// Grade, only when every source answered.
        grade: Option<String>,
        /// Per category.
        breakdown: Vec<ScoreLine>,
        /// Sources that could not be included.
        unverified: Vec<Unverified>,
    },
}

/// One active listing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ListingAnswer {
    /// The list's label.
    pub list: String,
    /// The dataset it comes from.
    pub dataset: String,
    /// Listed since (a date, or its month or year if minimized).
    pub since: Option<AnswerValue>,
    /// Listed until, if a removal date is recorded.
    pub until: Option<AnswerValue>,
}

/// One section of a credit report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SectionAnswer {
    /// Label.
    pub label: String,
    /// The dataset.
    pub dataset: String,
    /// Released records.
    pub records: Vec<BTreeMap<String, AnswerValue>>,
    /// Released summaries (`exists`, `count`).
    pub summaries: BTreeMap<String, Summary>,
}

impl From<&Listing> for ListingAnswer {
    fn from(l: &Listing) -> Self {
        Self {
            list: l.list.clone(),
            dataset: l.dataset.clone(),
            since: l.since.as_ref().map(AnswerValue::from),
            until: l.until.as_ref().map(AnswerValue::from),
        }
    }
}

impl From<&ReportSection> for SectionAnswer {
    fn from(s: &ReportSection) -> Self {
        Self {
            label: s.label.clone(),
            dataset: s.dataset.clone(),
            records: s.records.iter().map(plain_record).collect(),
            summaries: s.summaries.clone(),
        }
    }
}

impl From<&ViewResult> for ViewAnswer {
    fn from(v: &ViewResult) -> Self {
        match v {
            ViewResult::Blacklist {
                listings,
                unverified,
            } => ViewAnswer::Blacklist {
                listings: listings.iter().map(ListingAnswer::from).collect(),
                unverified: unverified.clone(),
            },
            ViewResult::GreenChannel {
                verdict,
                eligible,
                reason,
                clean_years,
                unverified,
            } => ViewAnswer::GreenChannel {
                verdict: *verdict,
                eligible: *eligible,
                reason: reason.clone(),
                clean_years: *clean_years,
                unverified: unverified.clone(),
            },
            ViewResult::CreditReport {
                sections,
                unverified,
            } => ViewAnswer::CreditReport {
                sections: sections.iter().map(SectionAnswer::from).collect(),
                unverified: unverified.clone(),
            },
            ViewResult::IntegrityScore {
                points,
                grade,
                breakdown,
                unverified,
            } => ViewAnswer::IntegrityScore {
                points: *points,
                grade: grade.clone(),
                breakdown: breakdown.clone(),
                unverified: unverified.clone(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(v: &Value) -> serde_json::Value {
        serde_json::to_value(AnswerValue::from(v)).unwrap()
    }

    #[test]
    fn values_are_plain_json() {
        let date = time::Date::from_calendar_date(2024, time::Month::February, 29).unwrap();
        assert_eq!(json(&Value::Text("张三".into())), serde_json::json!("张三"));
        assert_eq!(json(&Value::Date(date)), serde_json::json!("2024-02-29"));
        assert_eq!(
            json(&Value::Month("2024-02".into())),
            serde_json::json!("2024-02")
        );
        assert_eq!(json(&Value::Year(2024)), serde_json::json!("2024"));
        assert_eq!(json(&Value::Integer(-3)), serde_json::json!(-3));
        assert_eq!(
            json(&Value::Amount(800_000)),
            serde_json::json!({ "value": "8000.00", "currency": "CNY" })
        );
        assert_eq!(
            json(&Value::Amount(5)),
            serde_json::json!({ "value": "0.05", "currency": "CNY" })
        );
        assert_eq!(
            json(&Value::Masked("张*".into())),
            serde_json::json!({ "masked": "张*" })
        );
        assert_eq!(
            json(&Value::Bucket("10000-100000".into())),
            serde_json::json!({ "bucket": "10000-100000", "at_least": "10000", "below": "100000" })
        );
        assert_eq!(
            json(&Value::Bucket("<1000".into())),
            serde_json::json!({ "bucket": "<1000", "below": "1000" })
        );
        assert_eq!(
            json(&Value::Bucket(">=100000".into())),
            serde_json::json!({ "bucket": ">=100000", "at_least": "100000" })
        );
        assert_eq!(
            json(&Value::Bucket("-10-0".into())),
            serde_json::json!({ "bucket": "-10-0", "at_least": "-10", "below": "0" })
        );
    }

    #[test]
    fn plain_values_read_back_as_the_same_shape() {
        for v in [
            Value::Text("x".into()),
            Value::Integer(7),
            Value::Amount(123_456),
            Value::Bucket("1-2".into()),
            Value::Masked("a*".into()),
        ] {
            let plain = AnswerValue::from(&v);
            let text = serde_json::to_string(&plain).unwrap();
            assert_eq!(serde_json::from_str::<AnswerValue>(&text).unwrap(), plain);
        }
    }
}
