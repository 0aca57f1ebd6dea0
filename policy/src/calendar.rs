//! The city's calendar: which day it is in Changsha. Changsha keeps China Standard Time,
//! UTC+8 all year (no daylight saving), and every "today" in fedq — a node's statutory
//! windows, the coordinator's date, the officers' tools' default `--at` — is that day.
//!
//! The one place in this crate that reads the clock, and only when asked for today.

use time::{Date, OffsetDateTime, UtcOffset};

/// The city's offset from UTC: +08:00.
pub const CITY_OFFSET: UtcOffset = time::macros::offset!(+8);

/// The date of `at` in the city.
pub fn date_in_city(at: OffsetDateTime) -> Date {
    at.to_offset(CITY_OFFSET).date()
}

/// Today's date in the city.
pub fn today_in_city() -> Date {
    date_in_city(OffsetDateTime::now_utc())
}

/// A date the officers' tools were given as `--at`, which is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`--at {0}` is not a date; write it as YYYY-MM-DD")]
pub struct NotADate(pub String);

/// `--at DATE` (YYYY-MM-DD), or without one today in the city.
pub fn date_or_today(at: Option<&str>) -> Result<Date, NotADate> {
    match at {
        Some(s) => crate::transform::parse_date(s).ok_or_else(|| NotADate(s.to_owned())),
        None => Ok(today_in_city()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_city_day_starts_at_sixteen_hundred_utc() {
        let before = time::macros::datetime!(2026-11-26 15:59:59 UTC);
        let after = time::macros::datetime!(2026-11-26 16:00:00 UTC);
        assert_eq!(date_in_city(before), time::macros::date!(2026 - 11 - 26));
        assert_eq!(date_in_city(after), time::macros::date!(2026 - 11 - 27));
    }

    #[test]
    fn an_at_argument_is_a_date_or_refused_by_name() {
        assert_eq!(
            date_or_today(Some("2026-11-27")),
            Ok(time::macros::date!(2026 - 11 - 27))
        );
        assert_eq!(
            date_or_today(Some("27.11.2026")).unwrap_err().to_string(),
            "`--at 27.11.2026` is not a date; write it as YYYY-MM-DD"
        );
    }
}
