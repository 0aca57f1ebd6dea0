//! The values a record holds and a minimized answer carries, and the text forms of
//! dates and amounts. The bottom of the crate: it imports no other module, so the
//! catalogue (whose records hold values) and the transforms (which turn one value into a
//! smaller one) both build on it.
//!
//! Reading a cell as a value of a field's declared type is [`Value::parse`], which lives
//! beside the catalogue's `Field` in the catalogue module.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A recorded or minimized value. Amounts are kept in fen (1/100 yuan) so no rounding
/// ever happens in transit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Value {
    /// Text, enum values and resident IDs as recorded.
    Text(String),
    /// A calendar date.
    Date(#[serde(with = "iso_date")] time::Date),
    /// An amount in fen.
    Amount(i64),
    /// A whole number.
    Integer(i64),
    /// A date minimized to its year.
    Year(i32),
    /// A date minimized to `YYYY-MM`.
    Month(String),
    /// An amount minimized to a declared range label, e.g. `10000-100000` (yuan).
    Bucket(String),
    /// Masked text.
    Masked(String),
}

/// A recorded value that does not fit its field's declared type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("value `{value}` is not a valid {expected}")]
pub struct BadValue {
    /// The text as given.
    pub value: String,
    /// What the field's type expects.
    pub expected: String,
}

impl Value {
    /// The date, if this is one.
    pub fn as_date(&self) -> Option<time::Date> {
        match self {
            Value::Date(d) => Some(*d),
            _ => None,
        }
    }

    /// The text, if this is text.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Text(s) | Value::Month(s) | Value::Bucket(s) | Value::Masked(s) => {
                f.write_str(s)
            }
            Value::Date(d) => write!(f, "{}", iso_date::format(*d)),
            Value::Amount(fen) => write!(f, "{}.{:02}", fen / 100, (fen % 100).abs()),
            Value::Integer(n) => write!(f, "{n}"),
            Value::Year(y) => write!(f, "{y}"),
        }
    }
}

/// Parses `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Option<time::Date> {
    let mut parts = s.split('-');
    let y: i32 = parts.next()?.parse().ok()?;
    let m: u8 = parts.next()?.parse().ok()?;
    let d: u8 = parts.next()?.parse().ok()?;
    if parts.next().is_some() {
        return None;
    }
    time::Date::from_calendar_date(y, time::Month::try_from(m).ok()?, d).ok()
}

/// Parses an amount in yuan with at most two decimals into fen.
pub(crate) fn parse_amount(s: &str) -> Option<i64> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty()
        || frac.len() > 2
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let frac: i64 = match frac.len() {
        0 => 0,
        1 => frac.parse::<i64>().ok()? * 10,
        _ => frac.parse().ok()?,
    };
    let fen = whole.checked_mul(100)?.checked_add(frac)?;
    Some(if neg { -fen } else { fen })
}

pub(crate) mod iso_date {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn format(d: time::Date) -> String {
        format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
    }

    pub(crate) fn serialize<S: Serializer>(d: &time::Date, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*d))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<time::Date, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_date(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("expected a date YYYY-MM-DD, got `{s}`"))
        })
    }
}
