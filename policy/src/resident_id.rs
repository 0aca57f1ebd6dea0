//! The 18-digit resident identity number (公民身份号码), GB 11643-1999.
//!
//! Layout: 6-digit administrative division code, 8-digit birth date (YYYYMMDD), 3-digit
//! sequence (odd for men, even for women), and a check character computed with
//! ISO 7064 MOD 11-2 (`0`–`9` or `X`). It is the subject key of every record in the
//! federation, and personal data: it never appears in a log (see [`ResidentId`]'s `Debug`).
//!
//! The one home of the resident-ID rules: [`ResidentId::parse`] for a value a requester
//! sends (the whole standard), [`is_resident_id`] for a value a department holds (the
//! shape only: departments hold historical IDs whose check digits were mis-keyed), and
//! [`mask_resident_id`], the masked form both show. `fedq_wire::resident_id` re-exports
//! this module.

use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

/// Weights of the first 17 digits in the MOD 11-2 check.
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// Check character for each remainder 0..=10.
const CHECK: [u8; 11] = *b"10X98765432";

/// Why a string is not a valid resident ID. Messages never echo the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResidentIdError {
    /// Not 18 characters.
    #[error("a resident ID has 18 characters, this one has {0}")]
    Length(usize),
    /// A character other than a digit (or a final `X`).
    #[error("a resident ID is 17 digits followed by a digit or `X`")]
    Characters,
    /// The birth date is not a calendar date.
    #[error("the birth date in the resident ID is not a valid date")]
    BirthDate,
    /// The check character does not match (a typo, most likely).
    #[error("the resident ID's check character does not match (GB 11643-1999); check for a typo")]
    CheckDigit,
}

/// The first 17 characters, if they are digits, and the last one as given; `Err` says
/// which rule the text breaks (length or characters).
fn split(s: &str) -> Result<([u8; 17], u8), ResidentIdError> {
    let bytes = s.as_bytes();
    if bytes.len() != 18 {
        return Err(ResidentIdError::Length(s.chars().count()));
    }
    let mut first17 = [0u8; 17];
    first17.copy_from_slice(bytes.get(..17).ok_or(ResidentIdError::Characters)?);
    if !first17.iter().all(u8::is_ascii_digit) {
        return Err(ResidentIdError::Characters);
    }
    let last = bytes.get(17).copied().ok_or(ResidentIdError::Characters)?;
    Ok((first17, last))
}

/// Whether `s` has the shape of an 18-character resident ID: 17 digits, then a digit or
/// an upper-case `X`. Neither the birth date nor the check character is verified:
/// departments hold historical IDs whose check digits were mis-keyed.
pub fn is_resident_id(s: &str) -> bool {
    split(s).is_ok_and(|(_, last)| last.is_ascii_digit() || last == b'X')
}

/// Keeps the region code (6) and the last four characters of an 18-character resident ID:
/// 430102199001011234 → 430102********1234. Anything else is masked like text (all but
/// the first character).
pub fn mask_resident_id(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() != 18 {
        return mask_text(s);
    }
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| if (6..14).contains(&i) { '*' } else { *c })
        .collect()
}

/// Hides all but the first character: 张三丰 → 张**.
pub fn mask_text(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        None => String::new(),
        Some(first) => {
            let mut out = String::new();
            out.push(first);
            out.extend(chars.map(|_| '*'));
            out
        }
    }
}

/// The check character (`0`–`9` or `X`) for the first 17 digits.
pub fn check_character(first17: &[u8; 17]) -> u8 {
    let sum: u32 = first17
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d.wrapping_sub(b'0')) * w)
        .sum();
    CHECK.get((sum % 11) as usize).copied().unwrap_or(b'?')
}

/// A validated resident ID. Its `Debug` and `Display` print a masked form, so a stray
/// `{:?}` cannot leak it into a log; use [`ResidentId::as_str`] where the raw value is
/// really needed (store lookups, pseudonymization). Zeroized on drop.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Zeroize)]
#[zeroize(drop)]
#[serde(try_from = "String", into = "String")]
pub struct ResidentId(String);

impl ResidentId {
    /// Validates length, characters, birth date and check character. A lower-case `x` is
    /// accepted and normalized to `X`.
    pub fn parse(s: &str) -> Result<Self, ResidentIdError> {
        let (first17, last) = split(s)?;
        let last = last.to_ascii_uppercase();
        if !(last.is_ascii_digit() || last == b'X') {
            return Err(ResidentIdError::Characters);
        }
        let num = |r: std::ops::Range<usize>| -> u32 {
            first17
                .get(r)
                .unwrap_or_default()
                .iter()
                .fold(0, |acc, d| acc * 10 + u32::from(d - b'0'))
        };
        let (year, month, day) = (num(6..10), num(10..12), num(12..14));
        let valid_date = u8::try_from(month)
            .ok()
            .and_then(|m| time::Month::try_from(m).ok())
            .and_then(|m| {
                time::Date::from_calendar_date(
                    i32::try_from(year).ok()?,
                    m,
                    u8::try_from(day).ok()?,
                )
                .ok()
            })
            .is_some_and(|d| d.year() >= 1900);
        if !valid_date {
            return Err(ResidentIdError::BirthDate);
        }
        if check_character(&first17) != last {
            return Err(ResidentIdError::CheckDigit);
        }
        let mut normalized = String::with_capacity(18);
        normalized.push_str(s.get(..17).unwrap_or_default());
        normalized.push(char::from(last));
        Ok(Self(normalized))
    }

    /// The raw 18 characters. Personal data: never log it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Masked for display: division code and last four kept, e.g. `430102********123X`.
    pub fn masked(&self) -> String {
        mask_resident_id(&self.0)
    }
}

impl fmt::Debug for ResidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResidentId({})", self.masked())
    }
}

impl fmt::Display for ResidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl TryFrom<String> for ResidentId {
    type Error = ResidentIdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<ResidentId> for String {
    fn from(id: ResidentId) -> String {
        id.0.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_example_validates() {
        // The worked example of GB 11643-1999.
        assert!(ResidentId::parse("11010519491231002X").is_ok());
        assert!(ResidentId::parse("11010519491231002x").is_ok());
        assert_eq!(
            ResidentId::parse("110105194912310021"),
            Err(ResidentIdError::CheckDigit)
        );
    }

    #[test]
    fn malformed_ids_are_refused_without_echoing_them() {
        assert_eq!(ResidentId::parse("4301"), Err(ResidentIdError::Length(4)));
        assert_eq!(
            ResidentId::parse("43010219901301002X"),
            Err(ResidentIdError::BirthDate)
        );
        assert_eq!(
            ResidentId::parse("4301021990010100AX"),
            Err(ResidentIdError::Characters)
        );
        let err = ResidentId::parse("430102199001011234")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("4301021990"));
    }

    #[test]
    fn the_shape_check_skips_date_and_check_character() {
        // A mis-keyed check digit and an impossible birth date still have the shape.
        assert!(is_resident_id("110105194912310021"));
        assert!(is_resident_id("43010219901301002X"));
        assert!(!is_resident_id("11010519491231002x"));
        assert!(!is_resident_id("4301021990010100AX"));
        assert!(!is_resident_id("4301"));
    }

    #[test]
    fn debug_and_display_are_masked() {
        let first17 = *b"43010219900101123";
        let check = check_character(&first17);
        let mut id = String::from_utf8(first17.to_vec()).unwrap();
        id.push(char::from(check));
        let parsed = ResidentId::parse(&id).unwrap();
        assert_eq!(
            format!("{parsed}"),
            format!("430102********123{}", char::from(check))
        );
        assert!(!format!("{parsed:?}").contains("19900101"));
    }
}
