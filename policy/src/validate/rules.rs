//! The `[[rule]]` section: each rule's subject (who, for which purposes, which datasets
//! and fields) resolved to indices, its transform checked against the fields it names,
//! and its conditions (legal basis, consent, validity dates, record age).

use std::collections::BTreeSet;

use crate::catalogue::{Dataset, Federation, FieldClass};
use crate::location::Diagnostics;
use crate::policy::{Effect, Purpose, RecordAge, Requester, Rule, WrittenSubject};
use crate::transform::FieldTransform;
use crate::validate::names::{purpose_index, purpose_names, requester_names};
use crate::validate::raw::{date_of, RawRule};

/// The rules, in file order, every name resolved against the purposes, requesters and
/// the federation's `datasets` (in [`Federation::datasets`] order).
pub(crate) fn validate(
    raw: &[RawRule],
    purposes: &[Purpose],
    requesters: &[Requester],
    federation: &Federation,
    datasets: &[&Dataset],
    diag: &mut Diagnostics<'_>,
) -> Vec<Rule> {
    let mut rules = Vec::new();
    let mut ids = BTreeSet::new();
    for r in raw {
        let id = r.id.get_ref().clone();
        if !ids.insert(id.clone()) {
            diag.error(
                r.id.span(),
                format!("rule id `{id}` is used twice; every rule needs its own id"),
            );
        }
        let effect = *r.effect.get_ref();
        let loc = diag.at(r.id.span());

        let (who, who_text) = who(r, &id, requesters, diag);
        let (ps, purposes_text) = rule_purposes(r, &id, purposes, diag);
        let What {
            targets,
            all_fields,
            text: what_text,
        } = what(r, &id, federation, datasets, diag);
        check_can_apply(r, &id, &who, &ps, requesters, diag);
        let transform = transform(r, &id, effect, diag);
        check_transform_fits(r, effect, transform, all_fields, &targets, datasets, diag);
        let Conditions {
            max_record_age,
            valid_from,
            valid_until,
            rationale,
        } = conditions(r, &id, effect, diag);

        rules.push(Rule {
            id,
            effect,
            transform,
            requesters: who,
            purposes: ps,
            targets,
            legal_basis: r.legal_basis.iter().map(|b| b.get_ref().clone()).collect(),
            consent: r.consent.as_ref().is_some_and(|c| *c.get_ref()),
            valid_from,
            valid_until,
            max_record_age,
            rationale,
            location: loc,
            written: WrittenSubject {
                who: who_text.join(", "),
                purposes: purposes_text.join(", "),
                what: what_text.join("; "),
            },
        });
    }
    rules
}

/// Who a rule names (`requesters`, `agency.*`, `*`, `roles`): requester indices, sorted,
/// and the subject as written.
fn who(
    r: &RawRule,
    id: &str,
    requesters: &[Requester],
    diag: &mut Diagnostics<'_>,
) -> (Vec<usize>, Vec<String>) {
    let mut who = Vec::new();
    let mut who_text = Vec::new();
    match (&r.requesters, &r.roles) {
        (None, None) => diag.error(r.id.span(), format!("rule `{id}` names no requesters; add `requesters = [...]` or `roles = [...]` (use `requesters = [\"*\"]` for everyone)")),
        _ => {
            for q in r.requesters.iter().flatten() {
                if q.get_ref() == "*" {
                    who.extend(0..requesters.len());
                    who_text.push("every requester".to_owned());
                } else if let Some(agency) = q.get_ref().strip_suffix(".*") {
                    let before = who.len();
                    who.extend(requesters.iter().enumerate().filter(|(_, x)| x.agency == agency).map(|(i, _)| i));
                    if who.len() == before {
                        diag.error(q.span(), format!("no declared requester belongs to agency `{agency}`; declared requesters are: {}", requester_names(requesters)));
                    }
                    who_text.push(q.get_ref().clone());
                } else {
                    match requesters.iter().position(|x| &x.name == q.get_ref()) {
                        Some(i) => who.push(i),
                        None => diag.error(q.span(), format!("unknown requester `{}`; declared requesters are: {}", q.get_ref(), requester_names(requesters))),
                    }
                    who_text.push(q.get_ref().clone());
                }
            }
            for role in r.roles.iter().flatten() {
                let before = who.len();
                who.extend(requesters.iter().enumerate().filter(|(_, x)| &x.role == role.get_ref()).map(|(i, _)| i));
                if who.len() == before {
                    let roles: BTreeSet<&str> = requesters.iter().map(|x| x.role.as_str()).collect();
                    diag.error(role.span(), format!("unknown role `{}`; declared roles are: {}", role.get_ref(), roles.into_iter().collect::<Vec<_>>().join(", ")));
                }
                who_text.push(format!("role {}", role.get_ref()));
            }
        }
    }
    who.sort_unstable();
    who.dedup();
    (who, who_text)
}

/// The purposes a rule names: indices, sorted, and as written.
fn rule_purposes(
    r: &RawRule,
    id: &str,
    purposes: &[Purpose],
    diag: &mut Diagnostics<'_>,
) -> (Vec<usize>, Vec<String>) {
    let mut ps = Vec::new();
    let mut purposes_text = Vec::new();
    match &r.purposes {
        None => diag.error(r.id.span(), format!("rule `{id}` names no purposes; add `purposes = [...]` (use `[\"*\"]` for every purpose)")),
        Some(list) => {
            for p in list {
                if p.get_ref() == "*" {
                    ps.extend(0..purposes.len());
                    purposes_text.push("any purpose".to_owned());
                } else {
                    match purpose_index(purposes, p.get_ref()) {
                        Some(i) => ps.push(i),
                        None => diag.error(p.span(), format!("unknown purpose `{}`; declared purposes are: {}", p.get_ref(), purpose_names(purposes))),
                    }
                    purposes_text.push(p.get_ref().clone());
                }
            }
        }
    }
    ps.sort_unstable();
    ps.dedup();
    (ps, purposes_text)
}

/// What a rule names: its targets and the subject as written.
struct What {
    /// (dataset index, field indices), datasets with no matched field left out.
    targets: Vec<(usize, Vec<usize>)>,
    /// `fields = ["*"]`.
    all_fields: bool,
    /// As written: datasets, then fields, then classes.
    text: Vec<String>,
}

/// The datasets, fields and classes a rule names, resolved against the catalogues.
fn what(
    r: &RawRule,
    id: &str,
    federation: &Federation,
    datasets: &[&Dataset],
    diag: &mut Diagnostics<'_>,
) -> What {
    let mut ds: Vec<usize> = Vec::new();
    let mut what_text = Vec::new();
    match &r.datasets {
        None => diag.error(
            r.id.span(),
            format!(
                "rule `{id}` names no datasets; add `datasets = [\"department.dataset\", ...]`"
            ),
        ),
        Some(list) => {
            for d in list {
                let name = d.get_ref();
                if name == "*" {
                    ds.extend(0..datasets.len());
                } else if let Some(dept) = name.strip_suffix(".*") {
                    let before = ds.len();
                    ds.extend(
                        datasets
                            .iter()
                            .enumerate()
                            .filter(|(_, x)| x.department == dept)
                            .map(|(i, _)| i),
                    );
                    if ds.len() == before {
                        diag.error(
                            d.span(),
                            format!(
                                "unknown department `{dept}`; catalogues exist for: {}",
                                federation
                                    .catalogues
                                    .iter()
                                    .map(|c| c.department.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        );
                    }
                } else {
                    match datasets.iter().position(|x| &x.qualified == name) {
                        Some(i) => ds.push(i),
                        None => diag.error(d.span(), format!("unknown dataset `{name}`; expected `department.dataset` from the catalogue, e.g. `{}`", datasets.first().map_or("court.dishonest_debtors", |d| d.qualified.as_str()))),
                    }
                }
                what_text.push(name.clone());
            }
        }
    }
    ds.sort_unstable();
    ds.dedup();
    let mut classes = Vec::new();
    for c in r.classes.iter().flatten() {
        match FieldClass::parse(c.get_ref()) {
            Some(cl) => classes.push(cl),
            None => diag.error(c.span(), format!("unknown field class `{}`; expected identifier, basic, negative, positive or sensitive", c.get_ref())),
        }
    }
    let all_fields = r
        .fields
        .as_ref()
        .is_some_and(|f| f.iter().any(|x| x.get_ref() == "*"));
    if r.fields.is_none() && r.classes.is_none() {
        diag.error(r.id.span(), format!("rule `{id}` names no fields; add `fields = [...]` or `classes = [...]` (use `fields = [\"*\"]` for every field)"));
    }
    let mut targets = Vec::new();
    for &d in &ds {
        let Some(dataset) = datasets.get(d) else {
            continue;
        };
        let mut fs = Vec::new();
        for (i, f) in dataset.fields.iter().enumerate() {
            if all_fields || classes.contains(&f.class) {
                fs.push(i);
            }
        }
        if !all_fields {
            for f in r.fields.iter().flatten() {
                match dataset.field_index(f.get_ref()) {
                    Some(i) => fs.push(i),
                    None => diag.error(
                        f.span(),
                        format!(
                            "unknown field `{}` in dataset `{}`; its fields are: {}",
                            f.get_ref(),
                            dataset.qualified,
                            dataset
                                .fields
                                .iter()
                                .map(|x| x.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ),
                }
            }
        }
        fs.sort_unstable();
        fs.dedup();
        if !fs.is_empty() {
            targets.push((d, fs));
        }
    }
    if targets.is_empty() && !ds.is_empty() && (r.fields.is_some() || r.classes.is_some()) {
        diag.error(
            r.id.span(),
            format!("rule `{id}` matches no field of its datasets; check `fields`/`classes` against the catalogue"),
        );
    }
    if let Some(f) = &r.fields {
        what_text.push(format!(
            "fields {}",
            f.iter()
                .map(|x| x.get_ref().as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if let Some(c) = &r.classes {
        what_text.push(format!(
            "classes {}",
            c.iter()
                .map(|x| x.get_ref().as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    What {
        targets,
        all_fields,
        text: what_text,
    }
}

/// A subject no request can have is a silent no-op: say so.
fn check_can_apply(
    r: &RawRule,
    id: &str,
    who: &[usize],
    ps: &[usize],
    requesters: &[Requester],
    diag: &mut Diagnostics<'_>,
) {
    if !who.is_empty()
        && !ps.is_empty()
        && !who.iter().any(|r| {
            requesters
                .get(*r)
                .is_some_and(|q| ps.iter().any(|p| q.purposes.contains(p)))
        })
    {
        diag.error(
            r.id.span(),
            format!("rule `{id}` can never apply: none of its requesters may ask for any of its purposes; check `requesters`/`roles` against each requester's `purposes`"),
        );
    }
}

/// The transform a rule grants or caps at (`omit` for a deny, which takes none).
fn transform(r: &RawRule, id: &str, effect: Effect, diag: &mut Diagnostics<'_>) -> FieldTransform {
    match (effect, &r.transform) {
        (Effect::Deny, None) => FieldTransform::Omit,
        (Effect::Deny, Some(t)) => {
            diag.error(t.span(), format!("rule `{id}` is a deny and releases nothing; remove `transform` (or make it a `limit`)"));
            FieldTransform::Omit
        }
        (_, None) => {
            diag.error(r.effect.span(), format!("rule `{id}` needs `transform = \"...\"`: one of omit, exists, count, year, month, bucket, mask, clear"));
            FieldTransform::Omit
        }
        (_, Some(t)) => match t.get_ref().parse::<FieldTransform>() {
            Ok(t) => t,
            Err(e) => {
                diag.error(t.span(), e.to_string());
                FieldTransform::Omit
            }
        },
    }
}

/// A transform that cannot apply to a field the rule names explicitly is a mistake
/// (bucket of an enum would silently become count): say so.
fn check_transform_fits(
    r: &RawRule,
    effect: Effect,
    transform: FieldTransform,
    all_fields: bool,
    targets: &[(usize, Vec<usize>)],
    datasets: &[&Dataset],
    diag: &mut Diagnostics<'_>,
) {
    // A transform that cannot apply to a field the rule names explicitly is a
    // mistake (bucket of an enum would silently become count): say so.
    if effect != Effect::Deny && !all_fields {
        for f in r.fields.iter().flatten() {
            for (d, _) in targets {
                let Some(field) = datasets.get(*d).and_then(|ds| ds.field(f.get_ref())) else {
                    continue;
                };
                if !transform.applies_to(field) {
                    let fits: Vec<&str> = FieldTransform::ALL
                        .iter()
                        .filter(|t| t.applies_to(field))
                        .map(|t| t.name())
                        .collect();
                    diag.error(f.span(), format!(
                        "`{transform}` does not apply to field `{}` ({}) and would release it only as `{}`; use one that fits: {}",
                        f.get_ref(),
                        crate::catalogue::type_name(field.ty),
                        transform.effective_for(field),
                        fits.join(", ")
                    ));
                    break;
                }
            }
        }
    }
}

/// A rule's conditions, checked against its effect.
struct Conditions {
    max_record_age: Option<RecordAge>,
    valid_from: Option<time::Date>,
    valid_until: Option<time::Date>,
    rationale: String,
}

/// The conditions (legal basis, consent, record age, validity dates) and the rationale:
/// the first three narrow only the effect they belong to.
fn conditions(r: &RawRule, id: &str, effect: Effect, diag: &mut Diagnostics<'_>) -> Conditions {
    if effect != Effect::Grant {
        if let Some(b) = r.legal_basis.first() {
            diag.error(b.span(), format!("`legal_basis` narrows a grant; a {} applies whatever the request cites — remove it", effect.name()));
        }
        if let Some(c) = &r.consent {
            diag.error(c.span(), format!("`consent` narrows a grant; a {} applies whatever the request carries — remove it", effect.name()));
        }
    }
    if let (Some(a), false) = (&r.max_record_age, effect == Effect::Limit) {
        diag.error(a.span(), "`max_record_age` belongs on a `limit` rule (a window on a grant would let a new grant reduce disclosure); move it to a limit");
    }
    let max_record_age = r.max_record_age.as_ref().and_then(|a| {
        let parsed = RecordAge::parse(a.get_ref());
        if parsed.is_none() {
            diag.error(a.span(), format!("record age `{}` is not understood; expected a number and a unit, e.g. `1y`, `6m`, `90d`", a.get_ref()));
        }
        parsed
    });
    let valid_from = r
        .valid_from
        .as_ref()
        .and_then(|d| date_of(diag, d, "valid_from"));
    let valid_until = r
        .valid_until
        .as_ref()
        .and_then(|d| date_of(diag, d, "valid_until"));
    if let (Some(f), Some(u), Some(span)) = (
        valid_from,
        valid_until,
        r.valid_until.as_ref().map(|s| s.span()),
    ) {
        if u < f {
            diag.error(
                span,
                "`valid_until` is before `valid_from`; the rule would never apply",
            );
        }
    }
    let rationale = match &r.rationale {
        Some(s) if !s.trim().is_empty() => s.trim().to_owned(),
        _ => {
            diag.error(r.id.span(), format!("rule `{id}` needs a `rationale`: why it exists, in plain language, shown in explanations and denials"));
            String::new()
        }
    };
    Conditions {
        max_record_age,
        valid_from,
        valid_until,
        rationale,
    }
}
