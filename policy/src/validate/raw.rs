//! The policy file format as TOML reads it: every table and field a policy may have
//! (unknown ones are refused), with the spans the validators locate their errors at.
//! No validation happens here beyond TOML's own types.

use serde::Deserialize;
use toml::Spanned;

use crate::location::Diagnostics;
use crate::policy::{Effect, ViewKind};

#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum RawVersion {
    Text(String),
    Number(i64),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicy {
    pub(crate) version: Spanned<RawVersion>,
    #[serde(default)]
    pub(crate) title: String,
    pub(crate) catalogue: Option<String>,
    pub(crate) audit_retention_days: Option<Spanned<i64>>,
    pub(crate) disputed_records: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) repair_approvers: Vec<Spanned<String>>,
    #[serde(default, rename = "purpose")]
    pub(crate) purposes: Vec<RawPurpose>,
    #[serde(default, rename = "requester")]
    pub(crate) requesters: Vec<RawRequester>,
    #[serde(default, rename = "rule")]
    pub(crate) rules: Vec<RawRule>,
    #[serde(default, rename = "view")]
    pub(crate) views: Vec<RawView>,
    #[serde(default, rename = "test")]
    pub(crate) tests: Vec<RawTest>,
    pub(crate) statistics: Option<Spanned<RawStatistics>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStatistics {
    #[serde(default)]
    pub(crate) purposes: Vec<Spanned<String>>,
    pub(crate) min_cell: Spanned<i64>,
    pub(crate) epsilon: Spanned<String>,
    pub(crate) budget: Spanned<String>,
    pub(crate) period: Spanned<String>,
    pub(crate) max_years: Option<Spanned<i64>>,
    #[serde(default)]
    pub(crate) districts: Vec<Spanned<String>>,
    #[serde(default)]
    pub(crate) datasets: Vec<Spanned<String>>,
    #[serde(default)]
    pub(crate) categories: std::collections::BTreeMap<String, Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPurpose {
    pub(crate) name: Spanned<String>,
    #[serde(default)]
    pub(crate) description: String,
    #[serde(default)]
    pub(crate) legal_basis_required: bool,
    #[serde(default)]
    pub(crate) consent_required: bool,
    pub(crate) case_reference: Option<Spanned<RawCaseReference>>,
    #[serde(default)]
    pub(crate) legal_bases: Vec<Spanned<String>>,
    #[serde(default)]
    pub(crate) aggregate_only: bool,
    #[serde(default)]
    pub(crate) rights: Vec<Spanned<String>>,
    pub(crate) hidden_from_subject: Option<Spanned<RawHidden>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHidden {
    pub(crate) days: Spanned<i64>,
    #[serde(default)]
    pub(crate) reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCaseReference {
    pub(crate) pattern: Spanned<String>,
    pub(crate) description: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRate {
    pub(crate) per_minute: Option<u32>,
    pub(crate) per_day: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRequester {
    pub(crate) name: Spanned<String>,
    pub(crate) role: Spanned<String>,
    #[serde(default)]
    pub(crate) description: String,
    pub(crate) purposes: Vec<Spanned<String>>,
    pub(crate) rate_limit: Option<RawRate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    pub(crate) id: Spanned<String>,
    pub(crate) effect: Spanned<Effect>,
    pub(crate) requesters: Option<Vec<Spanned<String>>>,
    pub(crate) roles: Option<Vec<Spanned<String>>>,
    pub(crate) purposes: Option<Vec<Spanned<String>>>,
    pub(crate) datasets: Option<Vec<Spanned<String>>>,
    pub(crate) fields: Option<Vec<Spanned<String>>>,
    pub(crate) classes: Option<Vec<Spanned<String>>>,
    pub(crate) transform: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) legal_basis: Vec<Spanned<String>>,
    pub(crate) consent: Option<Spanned<bool>>,
    pub(crate) valid_from: Option<Spanned<toml::value::Datetime>>,
    pub(crate) valid_until: Option<Spanned<toml::value::Datetime>>,
    pub(crate) max_record_age: Option<Spanned<String>>,
    pub(crate) rationale: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawActiveIf {
    pub(crate) field: Spanned<String>,
    #[serde(rename = "in")]
    pub(crate) values: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSource {
    pub(crate) dataset: Spanned<String>,
    pub(crate) label: Option<String>,
    pub(crate) needs: Spanned<toml::Table>,
    pub(crate) since: Option<Spanned<String>>,
    pub(crate) until: Option<Spanned<String>>,
    pub(crate) active_if: Option<RawActiveIf>,
    #[serde(default)]
    pub(crate) points_per_record: i64,
    pub(crate) max_points: Option<i64>,
    pub(crate) max_record_age: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGrade {
    pub(crate) min_points: i64,
    pub(crate) grade: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawView {
    pub(crate) name: Spanned<String>,
    pub(crate) kind: Spanned<ViewKind>,
    #[serde(default)]
    pub(crate) description: String,
    #[serde(default, rename = "source")]
    pub(crate) sources: Vec<RawSource>,
    pub(crate) clean_years: Option<u32>,
    #[serde(default)]
    pub(crate) base_points: i64,
    #[serde(default, rename = "grade")]
    pub(crate) grades: Vec<RawGrade>,
    #[serde(default)]
    pub(crate) purposes: Vec<Spanned<String>>,
    #[serde(default)]
    pub(crate) release: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExpect {
    pub(crate) decision: Spanned<String>,
    #[serde(default)]
    pub(crate) fields: Option<Spanned<toml::Table>>,
    pub(crate) satisfied: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTest {
    pub(crate) name: Spanned<String>,
    pub(crate) now: Spanned<toml::value::Datetime>,
    pub(crate) requester: String,
    pub(crate) purpose: String,
    pub(crate) legal_basis: Option<String>,
    pub(crate) consent: Option<String>,
    pub(crate) case_reference: Option<String>,
    pub(crate) dataset: Option<Spanned<String>>,
    pub(crate) view: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) fields: Vec<String>,
    pub(crate) expect: RawExpect,
}

/// A `valid_from`/`valid_until`/`now` value as a calendar date; a date with a time is an
/// error at its span.
pub(crate) fn date_of(
    diag: &mut Diagnostics<'_>,
    d: &Spanned<toml::value::Datetime>,
    what: &str,
) -> Option<time::Date> {
    let v = d.get_ref();
    match (v.date, v.time) {
        (Some(date), None) => {
            let month = time::Month::try_from(date.month).ok();
            month.and_then(|m| {
                time::Date::from_calendar_date(i32::from(date.year), m, date.day).ok()
            })
        }
        _ => {
            diag.error(
                d.span(),
                format!("`{what}` must be a plain date like 2026-01-01, without a time"),
            );
            None
        }
    }
}
