//! Property tests of the three promises the language makes, over random policies and
//! requests: nothing outside the decision is released; grants are monotone; limits and
//! denies are anti-monotone (and rule order never matters).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;

use fedq_policy::engine::{DecisionRequest, FieldSelection};
use fedq_policy::{minimize, Catalogue, Engine, Federation, FieldTransform, Policy, Record, Value};
use proptest::prelude::*;

const ALPHA: &str = r#"
department = "alpha"
[[dataset]]
name = "debts"
kind = "negative"
key = "id"
subject = "rid"
window_start = "on"
repair = { field = "status", repaired = ["paid"] }
[[dataset.field]]
name = "id"
type = "string"
class = "identifier"
[[dataset.field]]
name = "rid"
type = "resident_id"
class = "identifier"
[[dataset.field]]
name = "on"
type = "date"
class = "negative"
[[dataset.field]]
name = "amount"
type = "amount"
class = "sensitive"
buckets = [100, 1000]
[[dataset.field]]
name = "status"
type = "enum"
class = "negative"
values = ["open", "paid"]
[[dataset.field]]
name = "who"
type = "string"
class = "basic"

[[dataset]]
name = "honours"
kind = "positive"
key = "id"
subject = "rid"
window_start = "on"
[[dataset.field]]
name = "id"
type = "string"
class = "identifier"
[[dataset.field]]
name = "rid"
type = "resident_id"
class = "identifier"
[[dataset.field]]
name = "on"
type = "date"
class = "positive"
[[dataset.field]]
name = "hours"
type = "integer"
class = "positive"
buckets = [10, 100]
"#;

const BETA: &str = r#"
department = "beta"
[[dataset]]
name = "people"
kind = "neutral"
key = "rid"
subject = "rid"
[[dataset.field]]
name = "rid"
type = "resident_id"
class = "identifier"
[[dataset.field]]
name = "name"
type = "string"
class = "basic"
[[dataset.field]]
name = "address"
type = "string"
class = "sensitive"
"#;

const HEAD: &str = r#"version = "prop"
[[purpose]]
name = "p1"
[[purpose]]
name = "p2"
[[purpose]]
name = "p3"
legal_basis_required = true
legal_bases = ["L0"]
[[requester]]
name = "a.one"
role = "x"
purposes = ["p1", "p2", "p3"]
[[requester]]
name = "a.two"
role = "y"
purposes = ["p1", "p3"]
[[requester]]
name = "b.one"
role = "x"
purposes = ["p2", "p3"]
"#;

const DATASETS: [&str; 3] = ["alpha.debts", "alpha.honours", "beta.people"];
const REQUESTERS: [&str; 4] = ["a.one", "a.two", "b.one", "c.unknown"];
const PURPOSES: [&str; 3] = ["p1", "p2", "p3"];
const CLASSES: [&str; 5] = ["identifier", "basic", "negative", "positive", "sensitive"];
const ALWAYS_FITS: [&str; 4] = ["omit", "exists", "count", "clear"];

fn federation() -> Federation {
    Federation::new(vec![
        Catalogue::parse(ALPHA, "alpha.toml").unwrap(),
        Catalogue::parse(BETA, "beta.toml").unwrap(),
    ])
    .unwrap()
}

#[derive(Debug, Clone)]
enum Target {
    All,
    Classes(Vec<usize>),
    Named(Vec<&'static str>),
}

#[derive(Debug, Clone)]
struct GenRule {
    effect: usize,
    who: Vec<usize>,
    role: bool,
    purposes: Vec<usize>,
    datasets: Vec<usize>,
    target: Target,
    transform: usize,
    legal: Option<usize>,
    consent: bool,
    valid: Option<(u8, u8)>,
    age: Option<u8>,
}

fn render(i: usize, r: &GenRule) -> String {
    let effect = ["grant", "limit", "deny"][r.effect];
    let mut s = format!("[[rule]]\nid = \"r{i:03}\"\neffect = \"{effect}\"\n");
    if r.role {
        s += "roles = [\"x\"]\n";
    } else {
        let who: Vec<String> = r
            .who
            .iter()
            .map(|w| format!("\"{}\"", REQUESTERS[*w % 3]))
            .collect();
        s += &format!("requesters = [{}]\n", who.join(", "));
    }
    let ps: Vec<String> = r
        .purposes
        .iter()
        .map(|p| format!("\"{}\"", PURPOSES[*p]))
        .collect();
    s += &format!("purposes = [{}]\n", ps.join(", "));
    let ds: Vec<String> = r
        .datasets
        .iter()
        .map(|d| format!("\"{}\"", DATASETS[*d]))
        .collect();
    s += &format!("datasets = [{}]\n", ds.join(", "));
    let named = matches!(r.target, Target::Named(_));
    match &r.target {
        Target::All => s += "fields = [\"*\"]\n",
        Target::Classes(c) => {
            let cs: Vec<String> = c.iter().map(|c| format!("\"{}\"", CLASSES[*c])).collect();
            s += &format!("classes = [{}]\n", cs.join(", "));
        }
        Target::Named(f) => {
            let fs: Vec<String> = f.iter().map(|f| format!("\"{f}\"")).collect();
            s += &format!("fields = [{}]\n", fs.join(", "));
        }
    }
    if effect != "deny" {
        let t = if named {
            ALWAYS_FITS[r.transform % 4]
        } else {
            FieldTransform::ALL[r.transform].name()
        };
        s += &format!("transform = \"{t}\"\n");
    }
    if effect == "grant" {
        if let Some(l) = r.legal {
            s += &format!("legal_basis = [\"L{l}\"]\n");
        }
        if r.consent {
            s += "consent = true\n";
        }
    }
    if let Some((from, len)) = r.valid {
        s += &format!(
            "valid_from = 2026-{:02}-01\nvalid_until = 2026-{:02}-28\n",
            1 + from % 6,
            1 + (from % 6) + len % 6
        );
    }
    if effect == "limit" {
        if let Some(a) = r.age {
            s += &format!("max_record_age = \"{}y\"\n", 1 + a % 3);
        }
    }
    s += "rationale = \"generated\"\n\n";
    s
}

fn policy_text(rules: &[GenRule]) -> String {
    let mut s = HEAD.to_owned();
    for (i, r) in rules.iter().enumerate() {
        s += &render(i, r);
    }
    s
}

fn compile(rules: &[GenRule]) -> Engine {
    let text = policy_text(rules);
    match Policy::parse(&text, "gen.toml", &federation()) {
        Ok(p) => p.compile(),
        Err(e) => panic!("generated policy does not parse: {e}\n{text}"),
    }
}

/// Classes present in each dataset of [`DATASETS`], as indices into [`CLASSES`].
const DATASET_CLASSES: [&[usize]; 3] = [&[0, 1, 2, 4], &[0, 3], &[0, 1, 4]];

/// A rule that matches no field at all is rejected by the parser; generate only rules
/// that match something.
fn matches_something(r: &GenRule) -> bool {
    // Purposes each requester of [`HEAD`] may ask for: a rule no request can match is
    // rejected too.
    const ALLOWED: [&[usize]; 3] = [&[0, 1, 2], &[0, 2], &[1, 2]];
    let who: Vec<usize> = if r.role {
        vec![0, 2]
    } else {
        r.who.iter().map(|w| w % 3).collect()
    };
    if !who
        .iter()
        .any(|w| r.purposes.iter().any(|p| ALLOWED[*w].contains(p)))
    {
        return false;
    }
    match &r.target {
        Target::Classes(c) => r
            .datasets
            .iter()
            .any(|d| c.iter().any(|x| DATASET_CLASSES[*d].contains(x))),
        _ => true,
    }
}

fn rule_strategy() -> impl Strategy<Value = GenRule> {
    // Named fields must exist in every named dataset: only `rid` is in all three, `id`
    // and `on` in both alpha datasets.
    let target = prop_oneof![
        Just(Target::All),
        prop::collection::vec(0usize..5, 1..3).prop_map(Target::Classes),
        Just(Target::Named(vec!["rid"])),
    ];
    (
        prop_oneof![6 => Just(0usize), 2 => Just(1usize), 1 => Just(2usize)],
        prop::collection::vec(0usize..3, 1..3),
        prop::bool::weighted(0.2),
        prop::collection::vec(0usize..3, 1..4),
        prop::collection::vec(0usize..3, 1..4),
        target,
        0usize..8,
        prop::option::weighted(0.25, 0usize..2),
        prop::bool::weighted(0.25),
        prop::option::weighted(0.3, (any::<u8>(), any::<u8>())),
        prop::option::weighted(0.3, any::<u8>()),
    )
        .prop_map(
            |(
                effect,
                who,
                role,
                purposes,
                datasets,
                target,
                transform,
                legal,
                consent,
                valid,
                age,
            )| GenRule {
                effect,
                who,
                role,
                purposes,
                datasets,
                target,
                transform,
                legal,
                consent,
                valid,
                age,
            },
        )
        .prop_filter("matches no field", matches_something)
}

#[derive(Debug, Clone)]
struct Req {
    requester: usize,
    purpose: usize,
    legal: Option<usize>,
    consent: bool,
    dataset: usize,
    month: u8,
}

fn req_strategy() -> impl Strategy<Value = Req> {
    (
        prop_oneof![9 => 0usize..3, 1 => Just(3usize)],
        0usize..3,
        prop::option::weighted(0.8, 0usize..3),
        any::<bool>(),
        0usize..3,
        1u8..13,
    )
        .prop_map(|(requester, purpose, legal, consent, dataset, month)| Req {
            requester,
            purpose,
            legal,
            consent,
            dataset,
            month,
        })
}

const BASES: [&str; 3] = ["L0", "L1", "L9"];

/// (transform, records_after) per field, or None when refused.
type Outcome = Option<Vec<(FieldTransform, Option<time::Date>)>>;

fn decide(engine: &Engine, r: &Req) -> Outcome {
    let now =
        time::Date::from_calendar_date(2026, time::Month::try_from(r.month).unwrap(), 15).unwrap();
    engine
        .decide(&DecisionRequest {
            requester: REQUESTERS[r.requester],
            purpose: PURPOSES[r.purpose],
            legal_basis: r.legal.map(|l| BASES[l]),
            consent: r.consent,
            case_reference: None,
            dataset: DATASETS[r.dataset],
            fields: FieldSelection::All,
            now,
        })
        .ok()
        .map(|d| {
            d.fields
                .iter()
                .map(|f| (f.transform, f.records_after))
                .collect()
        })
}

/// The class of each field of the generated catalogues, as an index into [`CLASSES`].
fn class_of(dataset: usize, field: &str) -> usize {
    match (dataset, field) {
        (_, "rid") | (0 | 1, "id") => 0,
        (0, "who") | (2, "name") => 1,
        (0, "on" | "status") => 2,
        (1, "on" | "hours") => 3,
        (0, "amount") | (2, "address") => 4,
        other => panic!("no field {other:?} in the generated catalogues"),
    }
}

/// The tightest `max_record_age` (in years) among the generated limit rules that apply to
/// `field` for this request on `today`, read off the rules themselves: who (requester or
/// role `x`), purpose, dataset, field (all, by class, by name) and validity dates.
fn oracle_age(rules: &[GenRule], r: &Req, today: time::Date, field: &str) -> Option<u32> {
    rules
        .iter()
        .filter(|g| g.effect == 1)
        .filter_map(|g| g.age.map(|a| (g, 1 + u32::from(a % 3))))
        .filter(|(g, _)| {
            let who = if g.role {
                [0, 2].contains(&r.requester)
            } else {
                g.who.iter().any(|w| w % 3 == r.requester)
            };
            let target = match &g.target {
                Target::All => true,
                Target::Classes(c) => c.contains(&class_of(r.dataset, field)),
                Target::Named(names) => names.contains(&field),
            };
            let valid = g.valid.is_none_or(|(from, len)| {
                let start = 1 + from % 6;
                let end = start + len % 6;
                let month = |m: u8| time::Month::try_from(m).unwrap();
                let from = time::Date::from_calendar_date(2026, month(start), 1).unwrap();
                let until = time::Date::from_calendar_date(2026, month(end), 28).unwrap();
                from <= today && today <= until
            });
            who && g.purposes.contains(&r.purpose)
                && g.datasets.contains(&r.dataset)
                && target
                && valid
        })
        .map(|(_, years)| years)
        .min()
}

/// The date a generated record's windows are measured from (`on`; `beta.people` has none).
fn record_on(record: &Record) -> Option<time::Date> {
    match record.get("on") {
        Some(Value::Date(d)) => Some(*d),
        _ => None,
    }
}

/// The last day a record may *not* have under a record-age limit: the same day `age`
/// earlier, or the month's last day where that day does not exist. Calendar arithmetic of
/// this test's own.
fn oracle_cutoff(age: fedq_policy::policy::RecordAge, today: time::Date) -> time::Date {
    use fedq_policy::policy::RecordAge;
    let months_back = match age {
        RecordAge::Years(y) => i32::try_from(y).unwrap() * 12,
        RecordAge::Months(m) => i32::try_from(m).unwrap(),
        RecordAge::Days(d) => return today - time::Duration::days(i64::from(d)),
    };
    let months = today.year() * 12 + i32::from(u8::from(today.month())) - 1 - months_back;
    let (year, month) = (months.div_euclid(12), months.rem_euclid(12) + 1);
    let month = time::Month::try_from(u8::try_from(month).unwrap()).unwrap();
    let mut day = today.day();
    while time::Date::from_calendar_date(year, month, day).is_err() {
        day -= 1;
    }
    time::Date::from_calendar_date(year, month, day).unwrap()
}

/// The law (长政办发〔2017〕62号 §十) for the generated datasets, written out: `alpha.debts` is negative
/// with a 3-year window from `on` and repaired when `status` is `paid`; the others have no
/// window. A negative record is disclosed only if it is not repaired and its start is
/// after the day three years before today.
fn oracle_disclosable(dataset: usize, record: &Record, today: time::Date) -> bool {
    if dataset != 0 {
        return true;
    }
    if record.get("status") == Some(&Value::Text("paid".into())) {
        return false;
    }
    let three_years = oracle_cutoff(fedq_policy::policy::RecordAge::Years(3), today);
    record_on(record).is_some_and(|d| d > three_years)
}

fn record_strategy() -> impl Strategy<Value = Vec<(u16, u32, u16, bool)>> {
    prop::collection::vec((0u16..2000, 0u32..500_000, 0u16..300, any::<bool>()), 0..6)
}

fn records_for(dataset: usize, raw: &[(u16, u32, u16, bool)]) -> Vec<Record> {
    raw.iter()
        .enumerate()
        .map(|(i, (age_days, amount, hours, paid))| {
            let on = time::Date::from_calendar_date(2026, time::Month::June, 15).unwrap()
                - time::Duration::days(i64::from(*age_days));
            let mut r = Record::new();
            r.insert("rid".into(), Value::Text("43010219900101123X".into()));
            match dataset {
                0 => {
                    r.insert("id".into(), Value::Text(format!("D{i}")));
                    r.insert("on".into(), Value::Date(on));
                    r.insert("amount".into(), Value::Amount(i64::from(*amount)));
                    r.insert(
                        "status".into(),
                        Value::Text(if *paid { "paid" } else { "open" }.into()),
                    );
                    r.insert("who".into(), Value::Text("张三".into()));
                }
                1 => {
                    r.insert("id".into(), Value::Text(format!("H{i}")));
                    r.insert("on".into(), Value::Date(on));
                    r.insert("hours".into(), Value::Integer(i64::from(*hours)));
                }
                _ => {
                    r.insert("name".into(), Value::Text("李四".into()));
                    if *paid {
                        r.insert("address".into(), Value::Text("岳麓区某路1号".into()));
                    }
                }
            }
            r
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn nothing_outside_the_decision_is_released(
        rules in prop::collection::vec(rule_strategy(), 1..20),
        reqs in prop::collection::vec(req_strategy(), 1..8),
        raw in record_strategy(),
    ) {
        let engine = compile(&rules);
        for r in &reqs {
            let now = time::Date::from_calendar_date(2026, time::Month::try_from(r.month).unwrap(), 15).unwrap();
            let Ok(decision) = engine.decide(&DecisionRequest {
                requester: REQUESTERS[r.requester],
                purpose: PURPOSES[r.purpose],
                legal_basis: r.legal.map(|l| BASES[l]),
                consent: r.consent,
                case_reference: None,
                dataset: DATASETS[r.dataset],
                fields: FieldSelection::All,
                now,
            }) else { continue };
            let records = records_for(r.dataset, &raw);
            let answer = minimize(&decision, &records);
            for fd in &decision.fields {
                // The record-age limit is the tightest of the generated limit rules that
                // match this request and field, read off the rules here; its cutoff date
                // is the calendar's for the rule's own words.
                if fd.transform != FieldTransform::Omit {
                    prop_assert_eq!(
                        fd.max_record_age,
                        oracle_age(&rules, r, now, &fd.field.name).map(fedq_policy::policy::RecordAge::Years),
                        "{}: record-age limit", fd.field.name
                    );
                    prop_assert_eq!(fd.records_after, fd.max_record_age.map(|a| oracle_cutoff(a, now)),
                        "{}: cutoff of {:?} on {}", fd.field.name, fd.max_record_age, now);
                }
            }
            // The oracle: which records the law lets out and which a record-age limit keeps
            // in, computed here from the calendar (not with `is_disclosable`/`records_after`);
            // then exactly those records, and counts over exactly those.
            let in_age = |fd: &fedq_policy::FieldDecision<'_>, rec: &Record| match fd.max_record_age {
                None => true,
                Some(age) => record_on(rec).is_some_and(|d| d > oracle_cutoff(age, now)),
            };
            let lawful: Vec<&Record> = records
                .iter()
                .filter(|rec| oracle_disclosable(r.dataset, rec, now))
                .collect();
            let expected_records: Vec<BTreeMap<String, Value>> = lawful
                .iter()
                .filter_map(|rec| {
                    let out: BTreeMap<String, Value> = decision
                        .fields
                        .iter()
                        .filter(|fd| fd.transform != FieldTransform::Omit && !fd.transform.is_aggregate())
                        .filter(|fd| in_age(fd, rec))
                        .filter_map(|fd| {
                            let v = rec.get(&fd.field.name)?;
                            Some((fd.field.name.clone(), fd.transform.apply(v, fd.field)?))
                        })
                        .collect();
                    (!out.is_empty()).then_some(out)
                })
                .collect();
            prop_assert_eq!(&answer.records, &expected_records);
            let expected_summaries: BTreeMap<String, fedq_policy::Summary> = decision
                .fields
                .iter()
                .filter(|fd| fd.transform.is_aggregate())
                .map(|fd| {
                    let n = lawful
                        .iter()
                        .filter(|rec| in_age(fd, rec) && rec.contains_key(&fd.field.name))
                        .count() as u64;
                    let summary = if fd.transform == FieldTransform::Exists {
                        fedq_policy::Summary::Exists(n > 0)
                    } else {
                        fedq_policy::Summary::Count(n)
                    };
                    (fd.field.name.clone(), summary)
                })
                .collect();
            prop_assert_eq!(&answer.summaries, &expected_summaries);
            let by_name: BTreeMap<&str, &fedq_policy::FieldDecision<'_>> =
                decision.fields.iter().map(|f| (f.field.name.as_str(), f)).collect();
            for rec in &answer.records {
                for name in rec.keys() {
                    let fd = by_name[name.as_str()];
                    prop_assert!(fd.transform != FieldTransform::Omit && !fd.transform.is_aggregate(),
                        "{name} released as a value under {}", fd.transform);
                }
            }
        }
    }

    #[test]
    fn adding_a_grant_never_reduces_disclosure(
        rules in prop::collection::vec(rule_strategy(), 1..20),
        mut extra in rule_strategy(),
        reqs in prop::collection::vec(req_strategy(), 1..10),
    ) {
        extra.effect = 0;
        let before = compile(&rules);
        let mut more = rules.clone();
        more.push(extra.clone());
        let after = compile(&more);
        for r in &reqs {
            match (decide(&before, r), decide(&after, r)) {
                (None, None) => {}
                (Some(b), Some(a)) => {
                    for ((tb, wb), (ta, wa)) in b.iter().zip(&a) {
                        prop_assert!(ta >= tb, "grant reduced {tb} to {ta}");
                        if *tb != FieldTransform::Omit {
                            prop_assert_eq!(wa, wb, "a grant changed a record window");
                        }
                    }
                }
                // A grant citing a legal basis makes that basis one its purposes accept:
                // a request citing it, refused before, may be decided now. Never the
                // other way round.
                (None, Some(_)) => {
                    let cited = r.legal.map(|l| BASES[l]);
                    let newly_accepted = extra.legal.map(|l| format!("L{l}")).as_deref() == cited
                        && extra.purposes.contains(&r.purpose);
                    prop_assert!(newly_accepted, "a grant lifted a refusal it does not explain: {r:?}");
                }
                (b, a) => prop_assert!(false, "refusal changed by a rule: {b:?} vs {a:?}"),
            }
        }
    }

    #[test]
    fn adding_a_limit_or_deny_never_increases_disclosure(
        rules in prop::collection::vec(rule_strategy(), 1..20),
        mut extra in rule_strategy(),
        deny in any::<bool>(),
        reqs in prop::collection::vec(req_strategy(), 1..10),
    ) {
        extra.effect = if deny { 2 } else { 1 };
        let before = compile(&rules);
        let mut more = rules.clone();
        more.push(extra);
        let after = compile(&more);
        for r in &reqs {
            match (decide(&before, r), decide(&after, r)) {
                (None, None) => {}
                (Some(b), Some(a)) => {
                    for ((tb, wb), (ta, wa)) in b.iter().zip(&a) {
                        prop_assert!(ta <= tb, "limit/deny increased {tb} to {ta}");
                        if *ta != FieldTransform::Omit {
                            // A later cutoff (or a cutoff where there was none) releases fewer records.
                            prop_assert!(wa >= wb, "limit widened the record window: {wb:?} → {wa:?}");
                        }
                    }
                }
                (b, a) => prop_assert!(false, "refusal changed by a rule: {b:?} vs {a:?}"),
            }
        }
    }

    #[test]
    fn rule_order_never_matters(
        rules in prop::collection::vec(rule_strategy(), 1..20),
        reqs in prop::collection::vec(req_strategy(), 1..10),
    ) {
        let a = compile(&rules);
        let mut reversed = rules.clone();
        reversed.reverse();
        // Keep ids attached to the same rules so only the order in the file changes.
        let text: String = {
            let mut s = HEAD.to_owned();
            for (i, r) in rules.iter().enumerate().rev() {
                s += &render(i, r);
            }
            s
        };
        let b = Policy::parse(&text, "rev.toml", &federation()).unwrap().compile();
        for r in &reqs {
            prop_assert_eq!(decide(&a, r), decide(&b, r));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn diff_reports_only_gains_for_a_new_grant_and_only_losses_for_a_new_limit_or_deny(
        rules in prop::collection::vec(rule_strategy(), 1..10),
        extra in rule_strategy(),
    ) {
        let today = time::Date::from_calendar_date(2026, time::Month::March, 1).unwrap();
        let before = compile(&rules);
        prop_assert!(fedq_policy::analysis::diff(&before, &before, today).is_empty());
        let mut more = rules.clone();
        more.push(extra.clone());
        let after = compile(&more);
        let changes = fedq_policy::analysis::diff(&before, &after, today);
        if extra.effect == 0 {
            prop_assert!(changes.iter().all(|c| c.is_gain()), "{changes:?}");
        } else {
            prop_assert!(changes.iter().all(|c| !c.is_gain()), "{changes:?}");
        }
        // And the reverse direction is the mirror image.
        let reverse = fedq_policy::analysis::diff(&after, &before, today);
        prop_assert_eq!(reverse.len(), changes.len());
    }

    #[test]
    fn the_parser_never_panics_on_damaged_text(
        cut in 0usize..4000,
        len in 0usize..40,
        insert in "[\\[\\]=\"a-z.*0-9\n ]{0,12}",
    ) {
        let text = policy_text(&[GenRule {
            effect: 0,
            who: vec![0],
            role: false,
            purposes: vec![0],
            datasets: vec![0, 1],
            target: Target::All,
            transform: 7,
            legal: Some(1),
            consent: true,
            valid: Some((1, 2)),
            age: None,
        }]);
        let mut damaged: String = text.chars().take(cut).collect();
        damaged.push_str(&insert);
        damaged.extend(text.chars().skip(cut + len));
        // Either a policy or located errors; never a panic.
        if let Err(e) = Policy::parse(&damaged, "damaged.toml", &federation()) {
            prop_assert!(e.0.iter().all(|l| l.location.line >= 1 && l.location.file == "damaged.toml"));
        }
    }
}
