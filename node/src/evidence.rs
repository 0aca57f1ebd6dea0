//! Whether the records a node read about one subject can be answered from: missing or
//! unreadable evidence must never read as "no record".
//!
//! A record the store or an attached database hands back is checked against the
//! catalogue before any decision sees it: every value of its field's type (an enum value
//! one of the declared ones), the key, the subject and required fields present, the
//! subject the one asked about, and the window start not after the node's own date. A
//! record that fails any of these makes its whole dataset *unverified* for this lookup
//! ([`fedq_wire::message::DatasetOutcome::Unverified`]): dropping only the bad record would
//! answer "no record" for a person whose record the node holds but cannot read.
//!
//! Plain functions over data (no I/O, no clock). Reasons name the dataset and the field,
//! never a value.

use fedq_policy::catalogue::{type_name, Dataset, Field, FieldType};
use fedq_policy::{Record, Value};

/// What a node read for one dataset about one subject.
#[derive(Debug, Clone, PartialEq)]
pub enum Evidence {
    /// The subject's records (possibly none: no record).
    Records(Vec<Record>),
    /// The dataset cannot be answered for this subject: why, in dataset and field names.
    Unverified(String),
}

impl Default for Evidence {
    fn default() -> Self {
        Evidence::Records(Vec::new())
    }
}

impl Evidence {
    /// Adds a record read (ignored once the dataset is unverified).
    pub fn push(&mut self, record: Record) {
        if let Evidence::Records(records) = self {
            records.push(record);
        }
    }

    /// Marks the dataset unverified, keeping the first reason.
    pub fn unverified(&mut self, reason: String) {
        if let Evidence::Records(_) = self {
            *self = Evidence::Unverified(reason);
        }
    }

    /// [`check`]s every record: the first that fails makes the whole dataset unverified.
    pub fn checked(self, dataset: &Dataset, subject: &str, today: time::Date) -> Evidence {
        match self {
            Evidence::Records(records) => {
                for record in &records {
                    if let Err(why) = check(dataset, record, subject, today) {
                        return Evidence::Unverified(why.to_string());
                    }
                }
                Evidence::Records(records)
            }
            unverified => unverified,
        }
    }
}

/// Why a record cannot be used, in words fit for the answer, the audit entry and the
/// log: dataset and field names only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unusable {
    /// The record holds a field the catalogue does not declare.
    #[error("a record of `{dataset}` holds field `{field}`, which is not in the catalogue")]
    UnknownField {
        /// The dataset's qualified name.
        dataset: String,
        /// The field's name.
        field: String,
    },
    /// A value is not of its field's type.
    #[error("a record of `{dataset}` has field `{field}` {mismatch}")]
    Mismatch {
        /// The dataset's qualified name.
        dataset: String,
        /// The field's name.
        field: String,
        /// What the value is instead.
        mismatch: Mismatch,
    },
    /// A field every record must have is missing.
    #[error("a record of `{dataset}` lacks field `{field}`, which every record must have")]
    Missing {
        /// The dataset's qualified name.
        dataset: String,
        /// The field's name.
        field: String,
    },
    /// The record is about someone else than the subject asked about.
    #[error("a record of `{dataset}` read for this subject is about another person (field `{field}`); the store or the attached query is wrong")]
    OtherSubject {
        /// The dataset's qualified name.
        dataset: String,
        /// The dataset's subject field.
        field: String,
    },
    /// The record's window starts after the node's date.
    #[error("a record of `{dataset}` has its window start `{field}` after the node's date {today}: a future date is bad data (or the node's clock is wrong), not a recent record")]
    FutureWindowStart {
        /// The dataset's qualified name.
        dataset: String,
        /// The dataset's window start field.
        field: String,
        /// The node's date.
        today: time::Date,
    },
}

/// How a value is not of its field's type (never the value itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    /// Text that is not one of the enum's declared values.
    #[error("holding a value that is not one of the enum's declared values")]
    NotDeclared,
    /// Text that is not a resident ID.
    #[error("holding text that is not an 18-character resident ID")]
    NotResidentId,
    /// A value of another type.
    #[error("of type `{}` holding {held}", type_name(*ty))]
    Type {
        /// The field's type.
        ty: FieldType,
        /// What the value is, in words ("text", "a date", ...).
        held: &'static str,
    },
}

/// Checks one record against its dataset's catalogue entry, the subject asked about and
/// the node's date: [`Unusable`] says why it cannot be used.
pub fn check(
    dataset: &Dataset,
    record: &Record,
    subject: &str,
    today: time::Date,
) -> Result<(), Unusable> {
    let ds = || dataset.qualified.clone();
    for (name, value) in record {
        let Some(field) = dataset.field(name) else {
            return Err(Unusable::UnknownField {
                dataset: ds(),
                field: name.clone(),
            });
        };
        if let Err(mismatch) = fits(field, value) {
            return Err(Unusable::Mismatch {
                dataset: ds(),
                field: name.clone(),
                mismatch,
            });
        }
    }
    for field in &dataset.fields {
        let needed = field.required || field.name == dataset.key || field.name == dataset.subject;
        if needed && !record.contains_key(&field.name) {
            return Err(Unusable::Missing {
                dataset: ds(),
                field: field.name.clone(),
            });
        }
    }
    if record.get(&dataset.subject).and_then(Value::as_text) != Some(subject) {
        return Err(Unusable::OtherSubject {
            dataset: ds(),
            field: dataset.subject.clone(),
        });
    }
    if let Some(start) = dataset.record_date(record) {
        if start > today {
            return Err(Unusable::FutureWindowStart {
                dataset: ds(),
                field: dataset.window_start.clone().unwrap_or_default(),
                today,
            });
        }
    }
    Ok(())
}

/// Whether `value` is of `field`'s type; if not, what it is instead.
fn fits(field: &Field, value: &Value) -> Result<(), Mismatch> {
    let ok = match (field.ty, value) {
        (FieldType::String, Value::Text(_))
        | (FieldType::Date, Value::Date(_))
        | (FieldType::Amount, Value::Amount(_))
        | (FieldType::Integer, Value::Integer(_)) => true,
        (FieldType::ResidentId, Value::Text(s)) => fedq_policy::transform::is_resident_id(s),
        (FieldType::Enum, Value::Text(s)) => field.values.iter().any(|v| v == s),
        _ => false,
    };
    if ok {
        return Ok(());
    }
    let held = match value {
        Value::Text(_) => "text",
        Value::Date(_) => "a date",
        Value::Amount(_) => "an amount",
        Value::Integer(_) => "a whole number",
        Value::Year(_) => "a year",
        Value::Month(_) => "a month",
        Value::Bucket(_) => "a range label",
        Value::Masked(_) => "masked text",
    };
    Err(match field.ty {
        FieldType::Enum if matches!(value, Value::Text(_)) => Mismatch::NotDeclared,
        FieldType::ResidentId if matches!(value, Value::Text(_)) => Mismatch::NotResidentId,
        ty => Mismatch::Type { ty, held },
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    const COURT: &str = include_str!("../../reference/changsha/catalogue/court.toml");
    const WHO: &str = "430102198001011234";

    fn date(s: &str) -> time::Date {
        fedq_policy::transform::parse_date(s).unwrap()
    }

    fn good() -> Record {
        let mut r = Record::new();
        r.insert("case_no".into(), Value::Text("(2025)湘0102执101号".into()));
        r.insert("resident_id".into(), Value::Text(WHO.into()));
        r.insert("name".into(), Value::Text("张三丰".into()));
        r.insert("court".into(), Value::Text("长沙市芙蓉区人民法院".into()));
        r.insert("obligation".into(), Value::Text("支付货款".into()));
        r.insert("amount_owed".into(), Value::Amount(5_200_000));
        r.insert(
            "performance_status".into(),
            Value::Text("unperformed".into()),
        );
        r.insert("listed_on".into(), Value::Date(date("2025-06-01")));
        r
    }

    #[test]
    fn a_record_is_usable_only_as_the_catalogue_describes_it() {
        let catalogue = fedq_policy::Catalogue::parse(COURT, "court.toml").unwrap();
        let ds = catalogue.dataset("dishonest_debtors").unwrap();
        let today = date("2026-11-27");
        assert_eq!(check(ds, &good(), WHO, today), Ok(()));
        // On the window start's own day it is usable; a day later than today it is not.
        let mut r = good();
        r.insert("listed_on".into(), Value::Date(today));
        assert_eq!(check(ds, &r, WHO, today), Ok(()));

        let cases: Vec<(Record, &str)> = vec![
            (
                {
                    let mut r = good();
                    r.insert("listed_on".into(), Value::Text("2025-06-01".into()));
                    r
                },
                "field `listed_on` of type `date` holding text",
            ),
            (
                {
                    let mut r = good();
                    r.insert("listed_on".into(), Value::Date(date("2026-11-28")));
                    r
                },
                "window start `listed_on` after the node's date 2026-11-27",
            ),
            (
                {
                    let mut r = good();
                    r.insert("performance_status".into(), Value::Text("paid?".into()));
                    r
                },
                "field `performance_status` holding a value that is not one of the enum's",
            ),
            (
                {
                    let mut r = good();
                    r.remove("case_no");
                    r
                },
                "lacks field `case_no`",
            ),
            (
                {
                    let mut r = good();
                    r.insert("shoe_size".into(), Value::Integer(42));
                    r
                },
                "holds field `shoe_size`, which is not in the catalogue",
            ),
            (
                {
                    let mut r = good();
                    r.insert(
                        "resident_id".into(),
                        Value::Text("43010319750505234X".into()),
                    );
                    r
                },
                "is about another person",
            ),
        ];
        for (record, expected) in cases {
            let why = check(ds, &record, WHO, today).unwrap_err().to_string();
            assert!(why.contains(expected), "{why}");
            assert!(why.contains("`court.dishonest_debtors`"), "{why}");
            for value in ["2025-06-01", "paid?", "43010319750505234X", "42"] {
                assert!(!why.contains(value), "`{value}` copied into: {why}");
            }
        }
    }
}
