//! Validating a policy: [`Policy::parse`] reads the TOML ([`raw`]) and hands each
//! section to its validator, in the order a later section needs the earlier ones —
//! purposes, requesters, rules, the purposes' legal bases (which need the rules), views,
//! tests. Each validator is a plain function over its section's TOML data and the
//! sections already validated, returning the section; its errors, located, go to the
//! one [`Diagnostics`] of the file, so that every problem is reported at once, in this
//! order.
//!
//! Nothing here reads files or the clock: the text, the catalogues and "now" are inputs.

mod cases;
mod names;
mod purposes;
mod raw;
mod requesters;
mod rules;
mod views;

use crate::catalogue::{Dataset, Federation};
use crate::location::{Diagnostics, LocatedErrors};
use crate::policy::{DisputedRecords, Policy};
use crate::validate::raw::{RawPolicy, RawVersion};

impl Policy {
    /// Parses and validates a policy against the federation's catalogues. Every unknown
    /// name (dataset, field, class, purpose, requester, role, view, transform) is an
    /// error located at `file:line:column`; all errors are reported at once.
    pub fn parse(
        text: &str,
        file_name: &str,
        federation: &Federation,
    ) -> Result<Policy, LocatedErrors> {
        let raw: RawPolicy =
            toml::from_str(text).map_err(|e| Diagnostics::from_toml(file_name, text, &e))?;
        let mut diag = Diagnostics::new(file_name, text);
        let datasets: Vec<&Dataset> = federation.datasets().collect();

        let version = version(&raw, &mut diag);
        let audit_retention_days = audit_retention_days(&raw, &mut diag);
        let disputed_records = disputed_records(&raw, &mut diag);
        let repair_approvers = repair_approvers(&raw, &mut diag);
        let purposes = purposes::validate(&raw.purposes, &mut diag);
        let requesters = requesters::validate(&raw.requesters, &purposes, &mut diag);
        let rules = rules::validate(
            &raw.rules,
            &purposes,
            &requesters,
            federation,
            &datasets,
            &mut diag,
        );
        purposes::check_legal_bases_accepted(&raw.purposes, &purposes, &rules, &mut diag);
        let views = views::validate(&raw.views, &purposes, &datasets, &mut diag);
        let tests = cases::validate(&raw.tests, &views, &datasets, &mut diag);
        let statistics = raw
            .statistics
            .as_ref()
            .map(|s| statistics(s, &purposes, &datasets, &mut diag));

        diag.finish(Policy {
            version,
            title: raw.title,
            content_hash: sha256_hex(text),
            catalogue_dir: raw.catalogue,
            audit_retention_days,
            disputed_records,
            repair_approvers,
            purposes,
            requesters,
            rules,
            views,
            tests,
            statistics,
            federation: federation.clone(),
        })
    }
}

/// The `[statistics]` table: purposes that exist and are aggregate-only, a threshold of
/// at least 1, ε and budget positive decimals with ε ≤ budget, a period, six-digit region
/// codes, datasets of the catalogues and category fields that are enums of them.
fn statistics(
    raw: &toml::Spanned<raw::RawStatistics>,
    purposes: &[crate::policy::Purpose],
    datasets: &[&Dataset],
    diag: &mut Diagnostics<'_>,
) -> crate::statistics::Statistics {
    use crate::statistics::{parse_epsilon, Period, Statistics};
    let table = raw.span();
    let raw = raw.get_ref();
    let mut names = Vec::new();
    for p in &raw.purposes {
        match purposes.iter().find(|q| q.name == *p.get_ref()) {
            None => diag.error(
                p.span(),
                format!("`{}` is not a declared purpose", p.get_ref()),
            ),
            Some(q) if !q.aggregate_only => diag.error(
                p.span(),
                format!(
                    "purpose `{}` must be `aggregate_only` to ask aggregate queries",
                    q.name
                ),
            ),
            Some(q) => names.push(q.name.clone()),
        }
    }
    if raw.purposes.is_empty() {
        diag.error(
            table.clone(),
            "`[statistics]` needs `purposes`, the aggregate-only purposes that may count",
        );
    }
    let min_cell = match u64::try_from(*raw.min_cell.get_ref()) {
        Ok(n) if n >= 1 => n,
        _ => {
            diag.error(
                raw.min_cell.span(),
                "`min_cell` must be at least 1 (the smallest count released; 10 is usual)",
            );
            1
        }
    };
    let mut micro = |v: &toml::Spanned<String>, what: &str| match parse_epsilon(v.get_ref()) {
        Some(m) => m,
        None => {
            diag.error(v.span(), format!("`{what}` must be a positive decimal with at most six decimals, as a string, e.g. \"0.5\""));
            1
        }
    };
    let epsilon = micro(&raw.epsilon, "epsilon");
    let budget = micro(&raw.budget, "budget");
    if epsilon > budget {
        diag.error(
            raw.epsilon.span(),
            "`epsilon` (per query) must not exceed `budget` (per requester and period)",
        );
    }
    let period = match raw.period.get_ref().as_str() {
        "month" => Period::Month,
        "year" => Period::Year,
        _ => {
            diag.error(raw.period.span(), "`period` must be `month` or `year`");
            Period::Month
        }
    };
    let max_years = match raw.max_years.as_ref() {
        None => 10,
        Some(y) => match u32::try_from(*y.get_ref()) {
            Ok(n) if (1..=50).contains(&n) => n,
            _ => {
                diag.error(y.span(), "`max_years` must be between 1 and 50");
                10
            }
        },
    };
    let mut districts = Vec::new();
    for d in &raw.districts {
        let code = d.get_ref();
        if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
            districts.push(code.clone());
        } else {
            diag.error(
                d.span(),
                "a district is a six-digit region code, e.g. \"430102\"",
            );
        }
    }
    let mut allowed = std::collections::BTreeMap::new();
    for d in &raw.datasets {
        if datasets.iter().any(|x| x.qualified == *d.get_ref()) {
            allowed.insert(d.get_ref().clone(), None);
        } else {
            diag.error(
                d.span(),
                format!("`{}` is not a dataset of the catalogues", d.get_ref()),
            );
        }
    }
    if raw.datasets.is_empty() {
        diag.error(
            table,
            "`[statistics]` needs `datasets`, the datasets that may be counted",
        );
    }
    for (name, field) in &raw.categories {
        let Some(ds) = datasets.iter().find(|x| x.qualified == *name) else {
            diag.error(
                field.span(),
                format!("`{name}` is not a dataset of the catalogues"),
            );
            continue;
        };
        if !allowed.contains_key(name) {
            diag.error(
                field.span(),
                format!("`{name}` has a category but is not in `datasets`"),
            );
        }
        match ds.field(field.get_ref()) {
            Some(f) if crate::statistics::is_category_type(f.ty) => {
                allowed.insert(name.clone(), Some(f.name.clone()));
            }
            _ => diag.error(
                field.span(),
                format!(
                    "a category is an enum field of `{name}`; `{}` is not one",
                    field.get_ref()
                ),
            ),
        }
    }
    Statistics {
        purposes: names,
        min_cell,
        epsilon,
        budget,
        period,
        districts,
        datasets: allowed,
        max_years,
    }
}

/// The policy version, as text: it is written into every audit entry, so it must not be
/// empty.
fn version(raw: &RawPolicy, diag: &mut Diagnostics<'_>) -> String {
    let version = match raw.version.get_ref() {
        RawVersion::Text(s) => s.clone(),
        RawVersion::Number(n) => n.to_string(),
    };
    if version.trim().is_empty() {
        diag.error(
            raw.version.span(),
            "`version` must not be empty; it is written into every audit entry",
        );
    }
    version
}

/// Most days an audit entry's body may be kept (100 years): a larger number is a typo.
pub(crate) const MAX_AUDIT_RETENTION_DAYS: i64 = 36_500;

/// How long entry bodies are kept, in days (none: forever); at least a day.
fn audit_retention_days(raw: &RawPolicy, diag: &mut Diagnostics<'_>) -> Option<u32> {
    let days = raw.audit_retention_days.as_ref()?;
    match u32::try_from(*days.get_ref()) {
        Ok(d) if (1..=MAX_AUDIT_RETENTION_DAYS).contains(&i64::from(d)) => Some(d),
        _ => {
            diag.error(
                days.span(),
                format!(
                    "`audit_retention_days` must be between 1 and {MAX_AUDIT_RETENTION_DAYS} (days an audit entry's body is kept); leave it out to keep every body"
                ),
            );
            None
        }
    }
}

/// What requesters see of a disputed record: `flag` (the default) or `withhold`.
fn disputed_records(raw: &RawPolicy, diag: &mut Diagnostics<'_>) -> DisputedRecords {
    let Some(value) = raw.disputed_records.as_ref() else {
        return DisputedRecords::default();
    };
    match value.get_ref().as_str() {
        "flag" => DisputedRecords::Flag,
        "withhold" => DisputedRecords::Withhold,
        _ => {
            diag.error(
                value.span(),
                "`disputed_records` must be `flag` (shown flagged as disputed, used by no view's verdict) or `withhold` (not released until the objection is resolved)",
            );
            DisputedRecords::default()
        }
    }
}

/// The officers whose signed decisions record a credit repair: certificate names, each
/// once.
fn repair_approvers(raw: &RawPolicy, diag: &mut Diagnostics<'_>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in &raw.repair_approvers {
        let n = name.get_ref().trim();
        if fedq_certs_name_ok(n) {
            if out.iter().any(|x| x == n) {
                diag.error(
                    name.span(),
                    format!("repair approver `{n}` is listed twice"),
                );
            } else {
                out.push(n.to_owned());
            }
        } else {
            diag.error(
                name.span(),
                "a repair approver is an officer certificate's name (letters, digits, `.`, `-`, `_`)",
            );
        }
    }
    out
}

fn fedq_certs_name_ok(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

fn sha256_hex(text: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}
