//! The `[[purpose]]` section: names, case-reference forms, legal bases, and (once the
//! rules are known) whether a purpose that requires a legal basis accepts one.

use crate::location::Diagnostics;
use crate::policy::{CaseReference, HiddenFromSubject, Purpose, Right, Rule, MAX_HIDDEN_DAYS};
use crate::validate::raw::RawPurpose;

/// The declared purposes, in file order; every problem is reported to `diag`.
pub(crate) fn validate(raw: &[RawPurpose], diag: &mut Diagnostics<'_>) -> Vec<Purpose> {
    let mut purposes: Vec<Purpose> = Vec::new();
    for p in raw {
        let name = p.name.get_ref();
        if purposes.iter().any(|q| &q.name == name) {
            diag.error(p.name.span(), format!("purpose `{name}` is declared twice"));
        }
        let case_reference = p.case_reference.as_ref().and_then(|c| {
            let raw = c.get_ref();
            let description = match &raw.description {
                Some(d) if !d.trim().is_empty() => d.trim().to_owned(),
                _ => {
                    diag.error(c.span(), format!("the case reference of purpose `{name}` needs a `description`: the form in words, shown to a requester whose reference does not fit"));
                    String::new()
                }
            };
            let pattern = raw.pattern.get_ref();
            if pattern.trim().is_empty() {
                diag.error(raw.pattern.span(), "`pattern` must not be empty; write a regular expression for the whole reference, e.g. `\\(20[0-9]{2}\\)湘01执[0-9]{1,5}号`");
                return None;
            }
            match CaseReference::new(pattern, &description) {
                Ok(c) => Some(c),
                Err(why) => {
                    diag.error(raw.pattern.span(), format!("`pattern` is not a regular expression: {why}"));
                    None
                }
            }
        });
        let mut legal_bases: Vec<String> = Vec::new();
        for b in &p.legal_bases {
            let basis = b.get_ref().trim();
            if basis.is_empty() {
                diag.error(b.span(), "a legal basis must not be empty");
            } else if legal_bases.iter().any(|x| x == basis) {
                diag.error(b.span(), format!("legal basis `{basis}` is listed twice"));
            } else {
                legal_bases.push(basis.to_owned());
            }
        }
        if p.aggregate_only && (p.consent_required || p.case_reference.is_some()) {
            diag.error(p.name.span(), format!("purpose `{name}` is aggregate-only: it answers no question about one person, so it takes neither `consent_required` nor `case_reference`; remove them"));
        }
        let mut rights: Vec<Right> = Vec::new();
        for r in &p.rights {
            match Right::parse(r.get_ref()) {
                Some(right) if rights.contains(&right) => {
                    diag.error(r.span(), format!("right `{right}` is listed twice"));
                }
                Some(right) => rights.push(right),
                None => diag.error(
                    r.span(),
                    format!(
                        "unknown right `{}`; the rights are: {}",
                        r.get_ref(),
                        Right::ALL.map(Right::as_str).join(", ")
                    ),
                ),
            }
        }
        if !rights.is_empty() && (!p.consent_required || p.aggregate_only) {
            diag.error(p.name.span(), format!("purpose `{name}` serves the person's rights, so it must set `consent_required = true`: a right is exercised only with the person's consent token, and nothing is answered about anyone else"));
        }
        let hidden_from_subject = p.hidden_from_subject.as_ref().and_then(|h| {
            let raw = h.get_ref();
            let days = match u32::try_from(*raw.days.get_ref()) {
                Ok(d) if (1..=MAX_HIDDEN_DAYS).contains(&d) => d,
                _ => {
                    diag.error(raw.days.span(), format!("`days` must be between 1 and {MAX_HIDDEN_DAYS}: how long after the query its entry is hidden from the person"));
                    return None;
                }
            };
            if raw.reason.trim().is_empty() {
                diag.error(h.span(), format!("`hidden_from_subject` of purpose `{name}` needs a `reason`: the person is shown it with the count of hidden entries"));
                return None;
            }
            Some(HiddenFromSubject {
                days,
                reason: raw.reason.trim().to_owned(),
            })
        });
        purposes.push(Purpose {
            name: name.clone(),
            description: p.description.clone(),
            legal_basis_required: p.legal_basis_required,
            consent_required: p.consent_required,
            case_reference,
            legal_bases,
            aggregate_only: p.aggregate_only,
            rights,
            hidden_from_subject,
        });
    }
    purposes
}

/// A purpose that requires a legal basis must accept one, or every request for it would
/// be refused: run after the rules, which may name the bases.
pub(crate) fn check_legal_bases_accepted(
    raw: &[RawPurpose],
    purposes: &[Purpose],
    rules: &[Rule],
    diag: &mut Diagnostics<'_>,
) {
    // A purpose that requires a legal basis must accept one, or every request for it
    // would be refused.
    for (i, (raw_p, p)) in raw.iter().zip(purposes).enumerate() {
        let accepted = !p.legal_bases.is_empty()
            || rules
                .iter()
                .any(|r: &Rule| r.purposes.contains(&i) && !r.legal_basis.is_empty());
        if p.legal_basis_required && !accepted {
            diag.error(raw_p.name.span(), format!("purpose `{}` requires a legal basis but accepts none: neither it nor any rule for it names one; add `legal_bases = [...]` to the purpose", p.name));
        }
    }
}
