//! Access analysis over the finite decision space: `diff` (who gains or loses what
//! between two policies) and `who-can` (who can ever see a field, and in which form).
//!
//! The space is finite: declared requesters × purposes × catalogued fields × the request
//! conditions that rules can distinguish — which legal basis is cited (none, each one a
//! rule names, any other), consent (absent, present) and the date (one representative
//! per interval between rule validity boundaries). Every point is decided by the real
//! engine, so the analysis is exact by construction, not a re-implementation.

use std::collections::{BTreeMap, BTreeSet};

use crate::engine::{DecisionRequest, Engine, FieldSelection};
use crate::transform::FieldTransform;
use crate::value::iso_date;

/// One point of the condition space.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Conditions {
    /// Cited legal basis.
    pub legal_basis: Option<String>,
    /// Consent given.
    pub consent: bool,
    /// Index of the date interval.
    pub period: usize,
}

/// The condition space shared by the policies analysed.
#[derive(Debug, Clone)]
pub struct Space {
    legal: Vec<Option<String>>,
    /// Date intervals: (representative date, from, until), inclusive, open ends as None.
    periods: Vec<(time::Date, Option<time::Date>, Option<time::Date>)>,
}

/// A stand-in for "a legal basis no rule names".
pub const OTHER_BASIS: &str = "(any other legal basis)";

impl Space {
    /// The space distinguishing everything any of `engines` distinguishes; `today` is the
    /// representative date when no rule has validity dates.
    pub fn new(engines: &[&Engine], today: time::Date) -> Space {
        let mut bases = BTreeSet::new();
        let mut bounds = BTreeSet::new();
        for e in engines {
            for p in &e.policy().purposes {
                bases.extend(p.legal_bases.iter().cloned());
            }
            for r in e.rules() {
                bases.extend(r.legal_basis.iter().cloned());
                if let Some(f) = r.valid_from {
                    bounds.insert(f);
                }
                if let Some(u) = r.valid_until.and_then(|u| u.next_day()) {
                    bounds.insert(u);
                }
            }
        }
        let mut legal = vec![None];
        legal.extend(bases.into_iter().map(Some));
        legal.push(Some(OTHER_BASIS.to_owned()));
        let bounds: Vec<time::Date> = bounds.into_iter().collect();
        let mut periods = Vec::new();
        match bounds.first() {
            None => periods.push((today, None, None)),
            Some(first) => {
                let before = first.previous_day().unwrap_or(*first);
                periods.push((before, None, Some(before)));
                for (i, b) in bounds.iter().enumerate() {
                    let until = bounds.get(i + 1).and_then(|n| n.previous_day());
                    periods.push((*b, Some(*b), until));
                }
            }
        }
        Space { legal, periods }
    }

    /// Every point.
    pub fn points(&self) -> Vec<Conditions> {
        let mut out = Vec::new();
        for l in &self.legal {
            for consent in [false, true] {
                for period in 0..self.periods.len() {
                    out.push(Conditions {
                        legal_basis: l.clone(),
                        consent,
                        period,
                    });
                }
            }
        }
        out
    }

    /// Describes a set of points in words ("citing `X`; with consent; from 2027-01-01"),
    /// or `None` when it is the whole space.
    pub fn describe(&self, set: &BTreeSet<&Conditions>) -> Option<String> {
        let legal: BTreeSet<&Option<String>> = set.iter().map(|c| &c.legal_basis).collect();
        let consent: BTreeSet<bool> = set.iter().map(|c| c.consent).collect();
        let periods: BTreeSet<usize> = set.iter().map(|c| c.period).collect();
        if legal.len() * consent.len() * periods.len() != set.len() {
            // Not a product of per-dimension choices: list the points.
            let parts: Vec<String> = set
                .iter()
                .map(|c| {
                    let one: BTreeSet<&Conditions> = [*c].into_iter().collect();
                    self.describe_product(&one).unwrap_or_default()
                })
                .collect();
            return Some(parts.join(" | "));
        }
        self.describe_product(set)
    }

    fn describe_product(&self, set: &BTreeSet<&Conditions>) -> Option<String> {
        let legal: BTreeSet<&Option<String>> = set.iter().map(|c| &c.legal_basis).collect();
        let consent: BTreeSet<bool> = set.iter().map(|c| c.consent).collect();
        let periods: BTreeSet<usize> = set.iter().map(|c| c.period).collect();
        let mut parts = Vec::new();
        if legal.len() != self.legal.len() {
            let mut named: Vec<String> = legal
                .iter()
                .filter_map(|l| match l {
                    Some(b) if b != OTHER_BASIS => Some(format!("`{b}`")),
                    _ => None,
                })
                .collect();
            if legal.iter().any(|l| l.as_deref() == Some(OTHER_BASIS)) {
                named.push("another legal basis".to_owned());
            }
            let citing = match named.split_last() {
                None => String::new(),
                Some((last, [])) => format!("citing {last}"),
                Some((last, rest)) => format!("citing {} or {last}", rest.join(", ")),
            };
            let all_but_none = !legal.contains(&None) && legal.len() + 1 == self.legal.len();
            parts.push(if all_but_none {
                "citing any legal basis".to_owned()
            } else if legal.contains(&None) && citing.is_empty() {
                "citing no legal basis".to_owned()
            } else if legal.contains(&None) {
                format!("{citing}, or citing none")
            } else {
                citing
            });
        }
        if consent.len() == 1 {
            parts.push(
                if consent.contains(&true) {
                    "with consent"
                } else {
                    "without consent"
                }
                .to_owned(),
            );
        }
        if periods.len() != self.periods.len() {
            let ranges: Vec<String> = periods
                .iter()
                .filter_map(|p| self.periods.get(*p))
                .map(|(_, from, until)| match (from, until) {
                    (None, None) => "at any time".to_owned(),
                    (Some(f), None) => format!("from {}", iso_date::format(*f)),
                    (None, Some(u)) => format!("until {}", iso_date::format(*u)),
                    (Some(f), Some(u)) => format!(
                        "from {} until {}",
                        iso_date::format(*f),
                        iso_date::format(*u)
                    ),
                })
                .collect();
            parts.push(ranges.join(" or "));
        }
        if parts.is_empty() {
            None
        } else {
            Some(parts.join("; "))
        }
    }
}

/// What a requester gets of a field at one point: the transform and the record-age
/// window (`None`: only the statutory window).
#[derive(Debug, Clone, Copy)]
pub struct Form {
    /// The transform.
    pub transform: FieldTransform,
    /// The window, as written.
    pub window: Option<crate::policy::RecordAge>,
    cutoff: Option<time::Date>,
}

// Forms are equal when the policy says the same thing: the cutoff date only depends on
// the date a point is evaluated at.
impl PartialEq for Form {
    fn eq(&self, other: &Self) -> bool {
        (self.transform, self.window) == (other.transform, other.window)
    }
}
impl Eq for Form {}
impl PartialOrd for Form {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Form {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.transform, self.window).cmp(&(other.transform, other.window))
    }
}

impl Form {
    const OMIT: Form = Form {
        transform: FieldTransform::Omit,
        window: None,
        cutoff: None,
    };

    /// Whether `self` reveals more than `other`: a more revealing transform, or the same
    /// transform over older records.
    pub fn reveals_more_than(&self, other: &Form) -> bool {
        self.transform > other.transform
            || (self.transform == other.transform
                && self.transform != FieldTransform::Omit
                && match (self.cutoff, other.cutoff) {
                    (None, Some(_)) => true,
                    (Some(a), Some(b)) => a < b,
                    _ => false,
                })
    }
}

impl std::fmt::Display for Form {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.transform)?;
        if let Some(w) = self.window {
            write!(f, " for records up to {w} old")?;
        }
        Ok(())
    }
}

/// `dataset.field` → form at every point, for one (requester, purpose).
type Outcomes = BTreeMap<String, Vec<Form>>;

fn outcomes(
    engine: &Engine,
    space: &Space,
    points: &[Conditions],
    requester: &str,
    purpose: &str,
) -> Outcomes {
    let mut out: Outcomes = BTreeMap::new();
    for d in engine.datasets() {
        for f in &d.fields {
            out.insert(
                format!("{}.{}", d.qualified, f.name),
                Vec::with_capacity(points.len()),
            );
        }
    }
    for point in points {
        let now = space
            .periods
            .get(point.period)
            .map_or(time::Date::MIN, |p| p.0);
        for d in engine.datasets() {
            let decided = engine.decide_any_case(&DecisionRequest {
                requester,
                purpose,
                legal_basis: point.legal_basis.as_deref(),
                consent: point.consent,
                case_reference: None,
                dataset: &d.qualified,
                fields: FieldSelection::All,
                now,
            });
            for (i, f) in d.fields.iter().enumerate() {
                let t = match &decided {
                    Ok(dec) => dec.fields.get(i).map_or(Form::OMIT, |fd| Form {
                        transform: fd.transform,
                        window: fd.max_record_age,
                        cutoff: fd.records_after,
                    }),
                    Err(_) => Form::OMIT,
                };
                if let Some(v) = out.get_mut(&format!("{}.{}", d.qualified, f.name)) {
                    v.push(t);
                }
            }
        }
    }
    out
}

/// One change of access between two policies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessChange {
    /// Requester.
    pub requester: String,
    /// Purpose.
    pub purpose: String,
    /// `department.dataset.field`.
    pub field: String,
    /// Before.
    pub before: Form,
    /// After.
    pub after: Form,
    /// Under which request conditions (None: always).
    pub conditions: Option<String>,
}

impl AccessChange {
    /// Whether this is a gain (more revealed) rather than a loss.
    pub fn is_gain(&self) -> bool {
        self.after.reveals_more_than(&self.before)
    }
}

impl std::fmt::Display for AccessChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_gain() {
            write!(
                f,
                "{} gains {} in {}",
                self.requester, self.field, self.after
            )?;
            if self.before.transform != FieldTransform::Omit {
                write!(f, " (was {})", self.before)?;
            }
        } else if self.after.transform == FieldTransform::Omit {
            write!(
                f,
                "{} loses {} (was {})",
                self.requester, self.field, self.before
            )?;
        } else {
            write!(
                f,
                "{} loses {} in {} (now {})",
                self.requester, self.field, self.before, self.after
            )?;
        }
        write!(f, " for purpose {}", self.purpose)?;
        if let Some(c) = &self.conditions {
            write!(f, ", {c}")?;
        }
        Ok(())
    }
}

fn names(engines: &[&Engine]) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut rs = BTreeSet::new();
    let mut ps = BTreeSet::new();
    for e in engines {
        rs.extend(e.policy().requesters.iter().map(|r| r.name.clone()));
        ps.extend(e.policy().purposes.iter().map(|p| p.name.clone()));
    }
    (rs, ps)
}

/// Every change of access from `old` to `new`, exactly, over the whole decision space.
pub fn diff(old: &Engine, new: &Engine, today: time::Date) -> Vec<AccessChange> {
    let space = Space::new(&[old, new], today);
    let points = space.points();
    let (requesters, purposes) = names(&[old, new]);
    let mut changes = Vec::new();
    for r in &requesters {
        for p in &purposes {
            let before = outcomes(old, &space, &points, r, p);
            let after = outcomes(new, &space, &points, r, p);
            let fields: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
            for field in fields {
                let b = before.get(field);
                let a = after.get(field);
                let mut groups: BTreeMap<(Form, Form), BTreeSet<&Conditions>> = BTreeMap::new();
                for (i, point) in points.iter().enumerate() {
                    let tb = b.and_then(|v| v.get(i)).copied().unwrap_or(Form::OMIT);
                    let ta = a.and_then(|v| v.get(i)).copied().unwrap_or(Form::OMIT);
                    if tb != ta {
                        groups.entry((tb, ta)).or_default().insert(point);
                    }
                }
                for ((tb, ta), set) in groups {
                    changes.push(AccessChange {
                        requester: r.clone(),
                        purpose: p.clone(),
                        field: field.clone(),
                        before: tb,
                        after: ta,
                        conditions: space.describe(&set),
                    });
                }
            }
        }
    }
    changes
}

/// Who can see a field: one requester and purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// Requester.
    pub requester: String,
    /// Purpose.
    pub purpose: String,
    /// The most revealing form it can ever get.
    pub best: FieldTransform,
    /// Under which conditions it gets that form (None: always).
    pub conditions: Option<String>,
}

/// A `department.dataset.field` no catalogue declares.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown field `{0}`; expected `department.dataset.field` from the catalogue, e.g. `court.dishonest_debtors.case_no`")]
pub struct UnknownField(pub String);

/// Every (requester, purpose) that can ever see `dataset.field`, with the most revealing
/// form and when. `Err` names the unknown field.
pub fn who_can(
    engine: &Engine,
    qualified_field: &str,
    today: time::Date,
) -> Result<Vec<Access>, UnknownField> {
    let known = engine.datasets().iter().any(|d| {
        d.fields
            .iter()
            .any(|f| format!("{}.{}", d.qualified, f.name) == qualified_field)
    });
    if !known {
        return Err(UnknownField(qualified_field.to_owned()));
    }
    let space = Space::new(&[engine], today);
    let points = space.points();
    let mut out = Vec::new();
    for r in &engine.policy().requesters {
        for p in &engine.policy().purposes {
            let o = outcomes(engine, &space, &points, &r.name, &p.name);
            let Some(v) = o.get(qualified_field) else {
                continue;
            };
            let best = v
                .iter()
                .map(|f| f.transform)
                .max()
                .unwrap_or(FieldTransform::Omit);
            if best == FieldTransform::Omit {
                continue;
            }
            let set: BTreeSet<&Conditions> = points
                .iter()
                .zip(v)
                .filter(|(_, f)| f.transform == best)
                .map(|(c, _)| c)
                .collect();
            out.push(Access {
                requester: r.name.clone(),
                purpose: p.name.clone(),
                best,
                conditions: space.describe(&set),
            });
        }
    }
    Ok(out)
}
