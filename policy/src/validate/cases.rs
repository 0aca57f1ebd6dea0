//! The `[[test]]` section: the cases a policy carries, checked so that a typo in a
//! dataset, view or field name fails loudly instead of passing as "refused".

use crate::catalogue::Dataset;
use crate::location::Diagnostics;
use crate::policy::{Expected, TestCase, View};
use crate::transform::FieldTransform;
use crate::validate::raw::{date_of, RawTest};

/// The embedded tests, in file order; a test whose `now` is not a date is left out.
pub(crate) fn validate(
    raw: &[RawTest],
    views: &[View],
    datasets: &[&Dataset],
    diag: &mut Diagnostics<'_>,
) -> Vec<TestCase> {
    let mut tests = Vec::new();
    for t in raw {
        let Some(now) = date_of(diag, &t.now, "now") else {
            continue;
        };
        match (&t.dataset, &t.view) {
            (Some(_), Some(v)) => {
                diag.error(
                    v.span(),
                    "a test asks for either a `dataset` or a `view`, not both",
                );
            }
            (None, None) => diag.error(
                t.name.span(),
                format!(
                    "test `{}` needs `dataset = \"...\"` or `view = \"...\"`",
                    t.name.get_ref()
                ),
            ),
            _ => {}
        }
        if let Some(v) = &t.view {
            if !views.iter().any(|w| &w.name == v.get_ref()) {
                diag.error(
                    v.span(),
                    format!(
                        "unknown view `{}`; declared views are: {}",
                        v.get_ref(),
                        views
                            .iter()
                            .map(|w| w.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
        }
        // The names a test expects about must exist, or a typo would pass silently
        // (a misspelt dataset is "refused" too). Requesters and purposes may be
        // undeclared on purpose: that a stranger is refused is worth a test.
        let mut known_keys: Option<Vec<String>> = None;
        if let Some(d) = &t.dataset {
            match datasets.iter().find(|x| &x.qualified == d.get_ref()) {
                None => diag.error(
                    d.span(),
                    format!(
                        "unknown dataset `{}` in test; expected `department.dataset` from the catalogue",
                        d.get_ref()
                    ),
                ),
                Some(ds) => {
                    for f in &t.fields {
                        if ds.field(f).is_none() {
                            diag.error(
                                d.span(),
                                format!("test asks for unknown field `{f}` of dataset `{}`", ds.qualified),
                            );
                        }
                    }
                    known_keys = Some(ds.fields.iter().map(|f| f.name.clone()).collect());
                }
            }
        }
        if let Some(view) = t
            .view
            .as_ref()
            .and_then(|v| views.iter().find(|w| &w.name == v.get_ref()))
        {
            known_keys = Some(
                view.sources
                    .iter()
                    .flat_map(|s| {
                        let ds = datasets.get(s.dataset);
                        s.needs.iter().filter_map(move |(fi, _)| {
                            let ds = ds?;
                            Some(format!("{}.{}", ds.qualified, ds.fields.get(*fi)?.name))
                        })
                    })
                    .collect(),
            );
        }
        if let (Some(keys), Some(f)) = (&known_keys, &t.expect.fields) {
            for k in f.get_ref().keys() {
                if !keys.contains(k) {
                    diag.error(
                        f.span(),
                        format!(
                            "test expects about `{k}`, which the request does not ask for; name a requested field{}",
                            if t.view.is_some() { " as `dataset.field` from the view's sources" } else { "" }
                        ),
                    );
                }
            }
        }
        let expect = match t.expect.decision.get_ref().as_str() {
            "refused" => Expected::Refused,
            "decided" => {
                let mut fields = Vec::new();
                for (k, v) in t.expect.fields.iter().flat_map(|f| f.get_ref().iter()) {
                    match v.as_str().map(str::parse::<FieldTransform>) {
                        Some(Ok(tr)) => fields.push((k.clone(), tr)),
                        _ => {
                            if let Some(f) = &t.expect.fields {
                                diag.error(f.span(), format!("expected transform for `{k}` must be one of omit, exists, count, year, month, bucket, mask, clear (in quotes)"));
                            }
                        }
                    }
                }
                Expected::Decided {
                    fields,
                    satisfied: t.expect.satisfied,
                }
            }
            other => {
                diag.error(t.expect.decision.span(), format!("expected decision `{other}` is not understood; write `decided` or `refused`"));
                Expected::Refused
            }
        };
        tests.push(TestCase {
            name: t.name.get_ref().clone(),
            now,
            requester: t.requester.clone(),
            purpose: t.purpose.clone(),
            legal_basis: t.legal_basis.clone(),
            consent: t.consent.clone(),
            case_reference: t.case_reference.clone(),
            dataset: t.dataset.as_ref().map(|d| d.get_ref().clone()),
            view: t.view.as_ref().map(|d| d.get_ref().clone()),
            fields: t.fields.clone(),
            expect,
            location: diag.at(t.name.span()),
        });
    }
    tests
}
