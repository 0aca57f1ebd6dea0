//! The `[[purpose]]` section: names, case-reference forms, legal bases, and (once the
//! rules are known) whether a purpose that requires a legal basis accepts one.

use crate::location::Diagnostics;
use crate::policy::{CaseReference, Purpose, Rule};
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
        purposes.push(Purpose {
            name: name.clone(),
            description: p.description.clone(),
            legal_basis_required: p.legal_basis_required,
            consent_required: p.consent_required,
            case_reference,
            legal_bases,
            aggregate_only: p.aggregate_only,
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
