//! The officers' reports, as `fedq policy diff`, `explain` and `who-can` print them (and
//! `fedq policy sign` shows before an officer signs): plain functions from compiled
//! engines to text. No I/O, no clock: the date is an argument.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::analysis;
use crate::engine::{DecisionRequest, Engine, FieldDecision, FieldSelection, ViewRequest};
use crate::policy::Policy;
use crate::transform::iso_date;

/// What a policy that checks holds, one line (`fedq policy check` and the console).
pub fn summary(engine: &Engine) -> String {
    let p = engine.policy();
    format!(
        "{} departments, {} datasets, {} purposes, {} requesters, {} rules, {} views, {} tests",
        p.federation.catalogues.len(),
        engine.datasets().len(),
        p.purposes.len(),
        p.requesters.len(),
        p.rules.len(),
        p.views.len(),
        p.tests.len()
    )
}

/// Renders `fedq policy diff`.
pub fn render_diff(old: &Engine, new: &Engine, today: time::Date) -> String {
    let mut out = String::new();
    let (o, n) = (old.policy(), new.policy());
    let _ = writeln!(out, "policy version {} → {}", o.version, n.version);
    let changes = analysis::diff(old, new, today);
    let (gains, losses): (Vec<_>, Vec<_>) = changes.iter().partition(|c| c.is_gain());
    if changes.is_empty() {
        let _ = writeln!(
            out,
            "no change in access: every requester gets exactly what it got before"
        );
    }
    if !gains.is_empty() {
        let _ = writeln!(out, "\ngains ({}):", gains.len());
        for c in gains {
            let _ = writeln!(out, "  + {c}");
        }
    }
    if !losses.is_empty() {
        let _ = writeln!(out, "\nlosses ({}):", losses.len());
        for c in losses {
            let _ = writeln!(out, "  - {c}");
        }
    }
    // Changes that are not field access but still matter to a review.
    let mut other = Vec::new();
    if o.audit_retention_days != n.audit_retention_days {
        let days = |d: Option<u32>| d.map_or("kept for good".to_owned(), |d| format!("{d} days"));
        other.push(format!(
            "audit entry bodies: {} → {}",
            days(o.audit_retention_days),
            days(n.audit_retention_days)
        ));
    }
    if o.disputed_records != n.disputed_records {
        other.push(format!(
            "disputed records: {} → {}",
            o.disputed_records.as_str(),
            n.disputed_records.as_str()
        ));
    }
    if o.statistics != n.statistics {
        other.push(format!(
            "aggregate queries: {} → {}",
            statistics_terms(o.statistics.as_ref()),
            statistics_terms(n.statistics.as_ref())
        ));
    }
    if o.repair_approvers != n.repair_approvers {
        let list = |v: &[String]| {
            if v.is_empty() {
                "none".to_owned()
            } else {
                v.join(", ")
            }
        };
        other.push(format!(
            "credit-repair approvers: {} → {}",
            list(&o.repair_approvers),
            list(&n.repair_approvers)
        ));
    }
    for p in &n.purposes {
        let old = o.purposes.iter().find(|x| x.name == p.name);
        let rights = |p: Option<&crate::policy::Purpose>| {
            p.map(|p| {
                p.rights
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "none".into())
        };
        if old.map(|x| &x.rights) != Some(&p.rights) && !(old.is_none() && p.rights.is_empty()) {
            other.push(format!(
                "purpose {} serves the person's rights: {} → {}",
                p.name,
                rights(old),
                rights(Some(p))
            ));
        }
        let hidden = |p: Option<&crate::policy::Purpose>| {
            p.and_then(|p| p.hidden_from_subject.as_ref())
                .map_or("shown at once".to_owned(), |h| {
                    format!("hidden for {} days", h.days)
                })
        };
        if old.map(|x| &x.hidden_from_subject) != Some(&p.hidden_from_subject)
            && !(old.is_none() && p.hidden_from_subject.is_none())
        {
            other.push(format!(
                "purpose {}'s entries in the person's register: {} → {}",
                p.name,
                hidden(old),
                hidden(Some(p))
            ));
        }
    }
    for r in &n.requesters {
        match o.requesters.iter().find(|x| x.name == r.name) {
            None => other.push(format!("requester {} is new", r.name)),
            Some(old_r) if old_r.rate_limit != r.rate_limit => other.push(format!(
                "requester {} rate limit: {} → {}",
                r.name,
                rate(&old_r.rate_limit),
                rate(&r.rate_limit)
            )),
            Some(_) => {}
        }
    }
    for r in &o.requesters {
        if !n.requesters.iter().any(|x| x.name == r.name) {
            other.push(format!("requester {} is removed", r.name));
        }
    }
    for p in &n.purposes {
        if let Some(old_p) = o.purposes.iter().find(|x| x.name == p.name) {
            if old_p.legal_basis_required != p.legal_basis_required
                || old_p.consent_required != p.consent_required
            {
                other.push(format!(
                    "purpose {} now requires: legal basis {}, consent {}",
                    p.name,
                    yes_no(p.legal_basis_required),
                    yes_no(p.consent_required)
                ));
            }
            if old_p.legal_bases != p.legal_bases {
                other.push(format!(
                    "purpose {} legal bases: [{}] → [{}]",
                    p.name,
                    old_p.legal_bases.join(", "),
                    p.legal_bases.join(", ")
                ));
            }
            if old_p.case_reference != p.case_reference {
                let form = |c: &Option<crate::policy::CaseReference>| {
                    c.as_ref()
                        .map_or("none".to_owned(), |c| format!("`{}`", c.pattern))
                };
                other.push(format!(
                    "purpose {} case reference: {} → {}",
                    p.name,
                    form(&old_p.case_reference),
                    form(&p.case_reference)
                ));
            }
            if old_p.aggregate_only != p.aggregate_only {
                other.push(format!(
                    "purpose {} aggregate-only: {} → {}",
                    p.name,
                    yes_no(old_p.aggregate_only),
                    yes_no(p.aggregate_only)
                ));
            }
        }
    }
    for v in &n.views {
        match o.views.iter().find(|x| x.name == v.name) {
            None => other.push(format!("view {} is new", v.name)),
            Some(old_v) if old_v != v => {
                other.push(format!("view {} changes its definition", v.name))
            }
            Some(_) => {}
        }
    }
    // Rules by id: a reviewer wants to know which rules moved, even when access does not.
    for r in &n.rules {
        match o.rules.iter().find(|x| x.id == r.id) {
            None => other.push(format!("rule `{}` is new ({})", r.id, r.location)),
            Some(old_r) if rule_fingerprint(o, old_r) != rule_fingerprint(n, r) => {
                other.push(format!("rule `{}` changes ({})", r.id, r.location))
            }
            Some(_) => {}
        }
    }
    for r in &o.rules {
        if !n.rules.iter().any(|x| x.id == r.id) {
            other.push(format!("rule `{}` is removed (was {})", r.id, r.location));
        }
    }
    if !other.is_empty() {
        let _ = writeln!(out, "\nother changes:");
        for line in other {
            let _ = writeln!(out, "  * {line}");
        }
    }
    out
}

/// Everything a rule says, by name (indices depend on declaration order, locations on
/// the rest of the file).
fn rule_fingerprint(policy: &Policy, r: &crate::policy::Rule) -> String {
    let requesters: Vec<&str> = r
        .requesters
        .iter()
        .filter_map(|i| policy.requesters.get(*i).map(|x| x.name.as_str()))
        .collect();
    let purposes: Vec<&str> = r
        .purposes
        .iter()
        .filter_map(|i| policy.purposes.get(*i).map(|x| x.name.as_str()))
        .collect();
    format!(
        "{:?}|{}|{requesters:?}|{purposes:?}|{:?}|{}|{}",
        r.effect,
        r.transform,
        r.targets,
        r.conditions_text(),
        r.rationale
    )
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn rate(r: &crate::policy::RateLimit) -> String {
    let f = |n: Option<u32>| n.map_or("unlimited".to_owned(), |n| n.to_string());
    format!("{}/minute, {}/day", f(r.per_minute), f(r.per_day))
}

/// Who asks what, for `explain`.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    /// Requester.
    pub requester: &'a str,
    /// Purpose.
    pub purpose: &'a str,
    /// Cited legal basis.
    pub legal_basis: Option<&'a str>,
    /// Whether a verified consent token is assumed.
    pub consent: bool,
    /// Cited case reference.
    pub case_reference: Option<&'a str>,
    /// Date of the request.
    pub today: time::Date,
}

fn explain_field(
    out: &mut String,
    engine: &Engine,
    ask: &Ask<'_>,
    fd: &FieldDecision<'_>,
    indent: &str,
    need: Option<crate::transform::FieldTransform>,
) {
    let window = fd
        .records_after
        .map(|d| format!(", only records dated after {}", iso_date::format(d)))
        .unwrap_or_default();
    let need = need
        .map(|n| format!(" (the view needs {n})"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "{indent}{}: {}{window}{need}",
        fd.field.name, fd.transform
    );
    let _ = writeln!(out, "{indent}    {}", fd.explanation());
    let consent = ask.consent;
    for &ri in fd.matched {
        let Some(rule) = engine.rules().get(ri as usize) else {
            continue;
        };
        let purpose_bases = engine
            .policy()
            .purposes
            .iter()
            .find(|p| p.name == ask.purpose)
            .map_or(&[][..], |p| p.legal_bases.as_slice());
        let holds = rule.conditions_hold(ask.legal_basis, purpose_bases, consent, ask.today);
        let what = match rule.effect {
            crate::policy::Effect::Deny => "deny".to_owned(),
            e => format!("{} {}", e.name(), rule.transform),
        };
        let cond = rule.conditions_text_under(purpose_bases);
        let status = if holds {
            "applies".to_owned()
        } else {
            format!("does not apply: needs {cond}")
        };
        let _ = writeln!(
            out,
            "{indent}    - `{}` ({what}, {}) {status}",
            rule.id, rule.location
        );
    }
}

/// What a purpose demands of every request, in words, for `explain`.
fn purpose_summary(p: &crate::Policy, i: usize) -> String {
    let Some(purpose) = p.purposes.get(i) else {
        return String::new();
    };
    if purpose.aggregate_only {
        return format!(
            "purpose {} is aggregate-only: no per-person lookup is answered under it, whatever its rules grant",
            purpose.name
        );
    }
    let mut parts = Vec::new();
    let bases: Vec<&str> = p.legal_bases_for(i).into_iter().collect();
    parts.push(match (purpose.legal_basis_required, bases.is_empty()) {
        (true, _) => format!("a legal basis, one of: {}", bases.join(", ")),
        (false, true) => "no legal basis".to_owned(),
        (false, false) => format!("optionally a legal basis, one of: {}", bases.join(", ")),
    });
    if purpose.consent_required {
        parts.push("the subject's consent".to_owned());
    }
    if let Some(c) = &purpose.case_reference {
        parts.push(format!(
            "a case reference: {} (pattern `{}`)",
            c.description, c.pattern
        ));
    }
    format!("purpose {} asks for {}", purpose.name, parts.join("; "))
}

/// Renders `fedq policy explain`.
pub fn render_explain(
    engine: &Engine,
    ask: &Ask<'_>,
    view: Option<&str>,
    dataset: Option<&str>,
) -> String {
    let mut out = String::new();
    let p = engine.policy();
    let _ = writeln!(
        out,
        "{} asks for purpose {} on {} ({}; {}{})",
        ask.requester,
        ask.purpose,
        iso_date::format(ask.today),
        ask.legal_basis
            .map_or("no legal basis cited".to_owned(), |b| format!(
                "citing `{b}`"
            )),
        if ask.consent {
            "with a verified consent token"
        } else {
            "without consent"
        },
        ask.case_reference
            .map(|c| format!("; for case `{c}`"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "policy version {} (sha256 {})",
        p.version,
        p.content_hash.get(..16).unwrap_or_default()
    );
    if let Some(i) = p.purposes.iter().position(|x| x.name == ask.purpose) {
        let _ = writeln!(out, "{}", purpose_summary(p, i));
    }
    let _ = writeln!(out);
    if let Some(view) = view {
        match engine.decide_view(&ViewRequest {
            requester: ask.requester,
            purpose: ask.purpose,
            legal_basis: ask.legal_basis,
            consent: ask.consent,
            case_reference: ask.case_reference,
            view,
            now: ask.today,
        }) {
            Err(refusal) => {
                let _ = writeln!(out, "refused: {refusal}");
            }
            Ok(v) => {
                let _ = writeln!(
                    out,
                    "view {} ({}): {}",
                    v.view.name,
                    v.view.kind.name(),
                    v.view.description
                );
                let _ = writeln!(
                    out,
                    "  the requester gets: {}; which sources answered, were denied, unverified or unavailable",
                    v.view.kind.output()
                );
                if v.view.release.is_empty() {
                    let _ = writeln!(
                        out,
                        "  and nothing of the sources' records beside it (the view declares no `release`)"
                    );
                } else {
                    let _ = writeln!(
                        out,
                        "  and, declared in `release`, these source fields beside it:"
                    );
                    for r in &v.view.release {
                        let _ = writeln!(
                            out,
                            "    {}.{} (at most {}, as the node releases it)",
                            r.dataset, r.field, r.transform
                        );
                    }
                }
                for s in &v.sources {
                    let _ = writeln!(
                        out,
                        "\n  {} — {}: {}",
                        s.decision.dataset.qualified,
                        s.source.label,
                        if s.satisfied {
                            "gets everything the view needs"
                        } else {
                            "does NOT get everything the view needs; the view reports this source as unverified"
                        }
                    );
                    for (fd, (_, need)) in s.decision.fields.iter().zip(&s.source.needs) {
                        explain_field(&mut out, engine, ask, fd, "    ", Some(*need));
                    }
                }
            }
        }
    } else if let Some(dataset) = dataset {
        match engine.decide(&DecisionRequest {
            requester: ask.requester,
            purpose: ask.purpose,
            legal_basis: ask.legal_basis,
            consent: ask.consent,
            case_reference: ask.case_reference,
            dataset,
            fields: FieldSelection::All,
            now: ask.today,
        }) {
            Err(refusal) => {
                let _ = writeln!(out, "refused: {refusal}");
            }
            Ok(d) => {
                let _ = writeln!(
                    out,
                    "dataset {} ({} fields):",
                    d.dataset.qualified,
                    d.fields.len()
                );
                for fd in &d.fields {
                    explain_field(&mut out, engine, ask, fd, "  ", None);
                }
            }
        }
    }
    out
}

/// Renders `fedq policy who-can`.
pub fn render_who_can(field: &str, access: &[analysis::Access]) -> String {
    let mut out = String::new();
    if access.is_empty() {
        let _ = writeln!(out, "nobody can ever see {field}, in any form");
        return out;
    }
    let mut by_form: BTreeMap<crate::transform::FieldTransform, usize> = BTreeMap::new();
    for a in access {
        *by_form.entry(a.best).or_default() += 1;
    }
    let _ = writeln!(out, "{field} can be seen by:");
    for a in access {
        let when = a
            .conditions
            .as_ref()
            .map(|c| format!(" ({c})"))
            .unwrap_or_default();
        let _ = writeln!(out, "  {} for {}: {}{when}", a.requester, a.purpose, a.best);
    }
    let clear = by_form
        .get(&crate::transform::FieldTransform::Clear)
        .copied()
        .unwrap_or(0);
    let _ = writeln!(
        out,
        "in clear: {}",
        if clear == 0 {
            "nobody".to_owned()
        } else {
            format!("{clear} requester/purpose pair(s)")
        }
    );
    out
}

/// A `[statistics]` table in one line, for the diff: who may count what, and with what
/// privacy.
fn statistics_terms(s: Option<&crate::statistics::Statistics>) -> String {
    use crate::statistics::format_epsilon;
    match s {
        None => "none".to_owned(),
        Some(s) => format!(
            "purposes [{}], ε {} per query, budget {} per {}, cells under {} suppressed, {} datasets",
            s.purposes.join(", "),
            format_epsilon(s.epsilon),
            format_epsilon(s.budget),
            s.period.name(),
            s.min_cell,
            s.datasets.len()
        ),
    }
}
