//! Values and the minimization transforms: what a field may become before it leaves a
//! node. Pure functions only — the node applies exactly what [`FieldTransform`] says.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::catalogue::{Field, FieldType};
pub use crate::resident_id::{is_resident_id, mask_resident_id, mask_text};
pub(crate) use crate::value::iso_date;
pub use crate::value::{parse_date, BadValue, Value};

/// How much of a field is released, from least to most revealing. The derived order *is*
/// the disclosure order: combination takes the maximum of grants and the minimum of caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldTransform {
    /// Not released at all (不予提供).
    Omit,
    /// Only whether any record has the field ("has a record: yes").
    Exists,
    /// Only how many records have the field.
    Count,
    /// A date reduced to its year.
    Year,
    /// A date reduced to year and month.
    Month,
    /// An amount reduced to the declared range it falls in.
    Bucket,
    /// Text with all but its first character(s) hidden: 张**, 430102********123X.
    Mask,
    /// The value as recorded.
    Clear,
}

impl FieldTransform {
    /// Every transform, least revealing first.
    pub const ALL: [FieldTransform; 8] = [
        FieldTransform::Omit,
        FieldTransform::Exists,
        FieldTransform::Count,
        FieldTransform::Year,
        FieldTransform::Month,
        FieldTransform::Bucket,
        FieldTransform::Mask,
        FieldTransform::Clear,
    ];

    /// The word used in policy files.
    pub fn name(self) -> &'static str {
        match self {
            FieldTransform::Omit => "omit",
            FieldTransform::Exists => "exists",
            FieldTransform::Count => "count",
            FieldTransform::Year => "year",
            FieldTransform::Month => "month",
            FieldTransform::Bucket => "bucket",
            FieldTransform::Mask => "mask",
            FieldTransform::Clear => "clear",
        }
    }

    /// Whether the transform yields a summary over all records (exists, count) rather
    /// than a value per record.
    pub fn is_aggregate(self) -> bool {
        matches!(self, FieldTransform::Exists | FieldTransform::Count)
    }

    /// Whether this transform makes sense for `field` (`month` of an amount does not).
    pub fn applies_to(self, field: &Field) -> bool {
        match self {
            FieldTransform::Omit
            | FieldTransform::Exists
            | FieldTransform::Count
            | FieldTransform::Clear => true,
            FieldTransform::Year | FieldTransform::Month => field.ty == FieldType::Date,
            FieldTransform::Bucket => {
                matches!(field.ty, FieldType::Amount | FieldType::Integer)
                    && !field.buckets.is_empty()
            }
            FieldTransform::Mask => matches!(field.ty, FieldType::String | FieldType::ResidentId),
        }
    }

    /// The most revealing transform that applies to `field` and reveals no more than
    /// `self`. Rounding *down* keeps combination monotone: a grant of `mask` over a
    /// class of fields gives a date field `month`, never `clear`.
    pub fn effective_for(self, field: &Field) -> FieldTransform {
        let mut best = FieldTransform::Omit;
        for t in FieldTransform::ALL {
            if t <= self && t.applies_to(field) {
                best = t;
            }
        }
        best
    }

    /// Minimizes one recorded value. Returns `None` when nothing of the value is released
    /// per record (omit, and the aggregates exists/count, which are summarized over all
    /// records instead), and also when the value does not fit the transform — failing
    /// closed rather than releasing a value the policy did not foresee.
    pub fn apply(self, value: &Value, field: &Field) -> Option<Value> {
        match (self, value) {
            (FieldTransform::Omit | FieldTransform::Exists | FieldTransform::Count, _) => None,
            (FieldTransform::Clear, v) => Some(v.clone()),
            (FieldTransform::Year, Value::Date(d)) => Some(Value::Year(d.year())),
            (FieldTransform::Month, Value::Date(d)) => Some(Value::Month(format!(
                "{:04}-{:02}",
                d.year(),
                u8::from(d.month())
            ))),
            (FieldTransform::Bucket, Value::Amount(fen)) => {
                bucket_label(&field.buckets, *fen, 100).map(Value::Bucket)
            }
            (FieldTransform::Bucket, Value::Integer(n)) => {
                bucket_label(&field.buckets, *n, 1).map(Value::Bucket)
            }
            (FieldTransform::Mask, Value::Text(s)) => Some(Value::Masked(match field.ty {
                FieldType::ResidentId => mask_resident_id(s),
                _ => mask_text(s),
            })),
            _ => None,
        }
    }
}

impl fmt::Display for FieldTransform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A transform name that is not one of the eight.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown transform `{0}`; expected one of omit, exists, count, year, month, bucket, mask, clear")]
pub struct UnknownTransform(pub String);

impl FromStr for FieldTransform {
    type Err = UnknownTransform;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FieldTransform::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| UnknownTransform(s.to_owned()))
    }
}

/// Labels the declared range a value falls in. `edges` are ascending, in the field's unit
/// (yuan for amounts); `scale` converts the stored value to that unit.
fn bucket_label(edges: &[i64], value: i64, scale: i64) -> Option<String> {
    let first = *edges.first()?;
    let last = *edges.last()?;
    let unit = value.div_euclid(scale);
    if unit < first {
        return Some(format!("<{first}"));
    }
    if unit >= last {
        return Some(format!(">={last}"));
    }
    edges.windows(2).find_map(|w| match w {
        [lo, hi] if unit >= *lo && unit < *hi => Some(format!("{lo}-{hi}")),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::FieldClass;

    fn field(ty: FieldType) -> Field {
        Field {
            name: "f".into(),
            ty,
            class: FieldClass::Basic,
            values: vec![],
            buckets: vec![1000, 10000, 100000],
            required: false,
            description: String::new(),
        }
    }

    #[test]
    fn masks_names_and_resident_ids() {
        let name = field(FieldType::String);
        assert_eq!(
            FieldTransform::Mask.apply(&Value::Text("张三丰".into()), &name),
            Some(Value::Masked("张**".into()))
        );
        let id = field(FieldType::ResidentId);
        assert_eq!(
            FieldTransform::Mask.apply(&Value::Text("43010219900101123X".into()), &id),
            Some(Value::Masked("430102********123X".into()))
        );
    }

    #[test]
    fn reduces_dates_and_buckets_amounts() {
        let date = field(FieldType::Date);
        let d = Value::Date(parse_date("2024-03-05").unwrap());
        assert_eq!(
            FieldTransform::Year.apply(&d, &date),
            Some(Value::Year(2024))
        );
        assert_eq!(
            FieldTransform::Month.apply(&d, &date),
            Some(Value::Month("2024-03".into()))
        );
        let amount = field(FieldType::Amount);
        assert_eq!(
            FieldTransform::Bucket.apply(&Value::Amount(2_500_050), &amount),
            Some(Value::Bucket("10000-100000".into()))
        );
        assert_eq!(
            FieldTransform::Bucket.apply(&Value::Amount(50), &amount),
            Some(Value::Bucket("<1000".into()))
        );
        assert_eq!(
            FieldTransform::Bucket.apply(&Value::Amount(10_000_000), &amount),
            Some(Value::Bucket(">=100000".into()))
        );
    }

    #[test]
    fn aggregates_and_mismatches_release_nothing_per_record() {
        let date = field(FieldType::Date);
        assert_eq!(
            FieldTransform::Count.apply(&Value::Text("x".into()), &date),
            None
        );
        assert_eq!(
            FieldTransform::Year.apply(&Value::Text("x".into()), &date),
            None
        );
    }

    #[test]
    fn inapplicable_transforms_round_down() {
        assert_eq!(
            FieldTransform::Mask.effective_for(&field(FieldType::Date)),
            FieldTransform::Month
        );
        assert_eq!(
            FieldTransform::Month.effective_for(&field(FieldType::Amount)),
            FieldTransform::Count
        );
        assert_eq!(
            FieldTransform::Mask.effective_for(&field(FieldType::Amount)),
            FieldTransform::Bucket
        );
        assert_eq!(
            FieldTransform::Clear.effective_for(&field(FieldType::Enum)),
            FieldTransform::Clear
        );
    }

    #[test]
    fn parses_import_cells() {
        let amount = field(FieldType::Amount);
        assert_eq!(
            Value::parse("1234.5", &amount).unwrap(),
            Some(Value::Amount(123_450))
        );
        assert_eq!(Value::parse("", &amount).unwrap(), None);
        assert!(Value::parse("12.345", &amount).is_err());
        let id = field(FieldType::ResidentId);
        assert!(Value::parse("43010219900101123X", &id).is_ok());
        assert!(Value::parse("4301021990010112", &id).is_err());
    }

    #[test]
    fn dates_travel_as_iso_text() {
        let v = Value::Date(parse_date("2025-03-01").unwrap());
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(json, r#"{"date":"2025-03-01"}"#);
        assert_eq!(serde_json::from_str::<Value>(&json).unwrap(), v);
        assert!(serde_json::from_str::<Value>(r#"{"date":"2025-13-01"}"#).is_err());
    }
}
