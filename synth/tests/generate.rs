//! `fedq gen-data` end to end: real files in a temporary directory, read back the way the
//! node importer reads them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use fedq_policy::catalogue::{within_years, Catalogue, Dataset, DatasetKind, Record};
use fedq_policy::transform::{parse_date, Value};
use fedq_synth::person::{district_by_code, DISTRICTS};
use fedq_synth::profile::{profile, REPAIR_SHARE};
use fedq_synth::{generate, load_catalogues, Format, GenOptions, Scenario, PERSONS_FILE};
use fedq_wire::resident_id::ResidentId;

fn catalogues() -> Vec<Catalogue> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../reference/changsha/catalogue");
    load_catalogues(&dir).unwrap()
}

fn today() -> time::Date {
    parse_date("2026-11-27").unwrap()
}

fn opts(persons: u64, seed: u64, format: Format) -> GenOptions {
    GenOptions {
        persons,
        seed,
        format,
        today: today(),
    }
}

/// Every row of a dataset file as field name → cell text (absent fields missing).
fn rows(path: &Path, format: Format) -> Vec<BTreeMap<String, String>> {
    match format {
        Format::Csv => {
            let mut reader = csv::Reader::from_path(path).unwrap();
            let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
            reader
                .records()
                .map(|r| {
                    let r = r.unwrap();
                    assert_eq!(r.len(), header.len(), "{}", path.display());
                    header
                        .iter()
                        .zip(r.iter())
                        .filter(|(_, v)| !v.is_empty())
                        .map(|(h, v)| (h.clone(), v.to_owned()))
                        .collect()
                })
                .collect()
        }
        Format::Jsonl => std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|line| {
                let obj: BTreeMap<String, serde_json::Value> = serde_json::from_str(line).unwrap();
                obj.into_iter()
                    .map(|(k, v)| (k, v.as_str().expect("string values").to_owned()))
                    .collect()
            })
            .collect(),
    }
}

fn file(out: &Path, d: &Dataset, format: Format) -> PathBuf {
    out.join(&d.department)
        .join(format!("{}.{}", d.name, format.extension()))
}

/// Parses a row the way the importer does, checking every cell on the way.
fn record(d: &Dataset, row: &BTreeMap<String, String>) -> Record {
    let mut rec = Record::new();
    for (name, text) in row {
        let field = d
            .field(name)
            .unwrap_or_else(|| panic!("{}: unknown field {name}", d.qualified));
        let value = Value::parse(text, field)
            .unwrap_or_else(|e| panic!("{}.{name}: {e}", d.qualified))
            .unwrap_or_else(|| panic!("{}.{name}: blank cell written", d.qualified));
        rec.insert(name.clone(), value);
    }
    for field in &d.fields {
        if field.required {
            assert!(
                rec.contains_key(&field.name),
                "{}: required field {} missing in {row:?}",
                d.qualified,
                field.name
            );
        }
    }
    rec
}

fn all_files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

#[test]
fn persons_have_valid_ids_that_agree_with_birth_date_sex_and_district() {
    let tmp = tempfile::tempdir().unwrap();
    let cats = catalogues();
    generate(&opts(3000, 11, Format::Csv), &cats, tmp.path()).unwrap();
    let mut reader = csv::Reader::from_path(tmp.path().join(PERSONS_FILE)).unwrap();
    assert_eq!(
        reader.headers().unwrap(),
        vec!["resident_id", "name", "sex", "birth_date", "district"]
    );
    let mut ids = HashSet::new();
    let mut by_id = HashMap::new();
    for row in reader.records() {
        let row = row.unwrap();
        let id = &row[0];
        ResidentId::parse(id).unwrap_or_else(|e| panic!("{e}"));
        assert!(ids.insert(id.to_owned()), "duplicate resident ID");
        let district = district_by_code(&id[..6]).expect("a Changsha district code");
        assert_eq!(&row[4], district.name);
        let birth = format!("{}-{}-{}", &id[6..10], &id[10..12], &id[12..14]);
        assert_eq!(&row[3], birth);
        let year: i32 = id[6..10].parse().unwrap();
        assert!((1950..=2006).contains(&year));
        let seq: u32 = id[14..17].parse().unwrap();
        assert_eq!(&row[2], if seq % 2 == 1 { "male" } else { "female" });
        let name = &row[1];
        assert!((2..=4).contains(&name.chars().count()), "{name}");
        by_id.insert(
            id.to_owned(),
            (row[1].to_owned(), row[2].to_owned(), row[3].to_owned()),
        );
    }
    assert_eq!(ids.len(), 3000);
    assert!(DISTRICTS
        .iter()
        .all(|d| by_id.keys().any(|id| id.starts_with(d.code))));

    // Every subject in every dataset is a registered person; identity basics agree.
    for d in cats.iter().flat_map(|c| &c.datasets) {
        for row in rows(&file(tmp.path(), d, Format::Csv), Format::Csv) {
            let id = &row[&d.subject];
            let (name, sex, birth) = by_id.get(id).expect("subject is a generated person");
            if d.qualified == "public-security.identity_basics" {
                assert_eq!(&row["name"], name);
                assert_eq!(&row["gender"], sex);
                assert_eq!(&row["birth_date"], birth);
            }
            if d.qualified == "court.dishonest_debtors" {
                assert_eq!(&row["name"], name);
            }
        }
    }
}

fn check_every_cell(format: Format) {
    let tmp = tempfile::tempdir().unwrap();
    let cats = catalogues();
    let summary = generate(&opts(4000, 3, format), &cats, tmp.path()).unwrap();
    assert_eq!(
        summary.datasets.len(),
        cats.iter().map(|c| c.datasets.len()).sum::<usize>()
    );
    for d in cats.iter().flat_map(|c| &c.datasets) {
        let path = file(tmp.path(), d, format);
        if format == Format::Csv {
            let mut reader = csv::Reader::from_path(&path).unwrap();
            let header: Vec<&str> = d.fields.iter().map(|f| f.name.as_str()).collect();
            assert_eq!(reader.headers().unwrap(), header, "{}", d.qualified);
        }
        let rows = rows(&path, format);
        assert!(!rows.is_empty(), "{} has no rows", d.qualified);
        let reported = summary
            .datasets
            .iter()
            .find(|r| r.department == d.department && r.dataset == d.name)
            .unwrap();
        assert_eq!(reported.rows, rows.len() as u64);
        let mut keys = HashSet::new();
        for row in &rows {
            let rec = record(d, row);
            ResidentId::parse(&row[&d.subject]).unwrap();
            assert!(
                keys.insert(row[&d.key].clone()),
                "{}: duplicate key {}",
                d.qualified,
                row[&d.key]
            );
            if let Some(date) = d.record_date(&rec) {
                assert!(date <= today(), "{}: future date", d.qualified);
            }
        }
    }
}

#[test]
fn every_csv_cell_parses_for_its_field_and_required_fields_are_present() {
    check_every_cell(Format::Csv);
}

#[test]
fn every_jsonl_value_parses_for_its_field_and_required_fields_are_present() {
    check_every_cell(Format::Jsonl);
}

#[test]
fn same_seed_gives_the_same_bytes_and_another_seed_other_data() {
    let cats = catalogues();
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    generate(&opts(1500, 5, Format::Csv), &cats, a.path()).unwrap();
    generate(&opts(1500, 5, Format::Csv), &cats, b.path()).unwrap();
    generate(&opts(1500, 6, Format::Csv), &cats, c.path()).unwrap();
    let (fa, fb, fc) = (
        all_files(a.path()),
        all_files(b.path()),
        all_files(c.path()),
    );
    let datasets: usize = cats.iter().map(|c| c.datasets.len()).sum();
    assert_eq!(
        fa.len(),
        datasets + 2,
        "every dataset, persons.csv, scenario.json"
    );
    assert_eq!(fa, fb);
    assert_ne!(fa[Path::new(PERSONS_FILE)], fc[Path::new(PERSONS_FILE)]);
    // The scenario persons are fixed whatever the seed; only the seed field differs.
    let (sa, sc) = (
        Scenario::read(a.path()).unwrap(),
        Scenario::read(c.path()).unwrap(),
    );
    assert_eq!(sa.blacklisted.resident_id, sc.blacklisted.resident_id);
    assert_eq!(sa.seed, 5);
    // Persons are a prefix: fewer persons, same first persons.
    let d = tempfile::tempdir().unwrap();
    generate(&opts(700, 5, Format::Csv), &cats, d.path()).unwrap();
    let short = String::from_utf8(std::fs::read(d.path().join(PERSONS_FILE)).unwrap()).unwrap();
    let long = String::from_utf8(fa[Path::new(PERSONS_FILE)].clone()).unwrap();
    assert!(long.starts_with(&short));
}

#[test]
fn scenario_persons_have_exactly_the_records_their_roles_claim() {
    let tmp = tempfile::tempdir().unwrap();
    let cats = catalogues();
    let summary = generate(&opts(2000, 9, Format::Csv), &cats, tmp.path()).unwrap();
    let scenario = Scenario::read(tmp.path()).unwrap();
    assert_eq!(scenario, summary.scenario);
    assert_eq!(scenario.today, today());

    // Every record of every scenario person, found in the files.
    let mut found: HashMap<String, Vec<(&Dataset, Record, String)>> = HashMap::new();
    let ids: HashSet<&str> = scenario
        .roles()
        .iter()
        .map(|(_, p)| p.resident_id.as_str())
        .collect();
    for d in cats.iter().flat_map(|c| &c.datasets) {
        for row in rows(&file(tmp.path(), d, Format::Csv), Format::Csv) {
            let id = row[&d.subject].clone();
            if ids.contains(id.as_str()) {
                let key = row[&d.key].clone();
                found.entry(id).or_default().push((d, record(d, &row), key));
            }
        }
    }
    for (role, person) in scenario.roles() {
        ResidentId::parse(&person.resident_id).unwrap();
        let mut listed: Vec<(String, String, String)> = person
            .records
            .iter()
            .map(|r| (r.department.clone(), r.dataset.clone(), r.key.clone()))
            .collect();
        let mut actual: Vec<(String, String, String)> = found[&person.resident_id]
            .iter()
            .map(|(d, _, k)| (d.department.clone(), d.name.clone(), k.clone()))
            .collect();
        listed.sort();
        actual.sort();
        assert_eq!(
            listed, actual,
            "{role}: scenario.json lists exactly the records written"
        );
    }
    let negatives = |p: &fedq_synth::ScenarioPerson| -> Vec<(&Dataset, Record)> {
        found[&p.resident_id]
            .iter()
            .filter(|(d, _, _)| d.kind == DatasetKind::Negative)
            .map(|(d, r, _)| (*d, r.clone()))
            .collect()
    };
    let t = today();

    let black = negatives(&scenario.blacklisted);
    assert_eq!(black.len(), 1);
    let (d, r) = &black[0];
    assert_eq!(d.qualified, "court.dishonest_debtors");
    assert!(d.is_disclosable(r, t));
    assert_eq!(r["performance_status"], Value::Text("unperformed".into()));

    assert!(negatives(&scenario.clean).is_empty());
    let hours: i64 = found[&scenario.clean.resident_id]
        .iter()
        .filter(|(d, _, _)| d.qualified == "civil-affairs.volunteer_service")
        .map(|(_, r, _)| match r["hours"] {
            Value::Integer(h) => h,
            _ => 0,
        })
        .sum();
    assert!(hours > 0);

    let expired = negatives(&scenario.expired);
    assert_eq!(expired.len(), 1);
    let (d, r) = &expired[0];
    assert!(!d.is_disclosable(r, t));
    assert!(!within_years(d.record_date(r).unwrap(), t, 3));
    assert!(
        d.repair.as_ref().is_none_or(|rep| {
            !rep.repaired
                .contains(&r[&rep.field].as_text().unwrap().to_owned())
        }),
        "expired, not repaired"
    );

    let repaired = negatives(&scenario.repaired);
    assert_eq!(repaired.len(), 1);
    let (d, r) = &repaired[0];
    assert!(
        within_years(d.record_date(r).unwrap(), t, 3),
        "inside the window"
    );
    assert!(!d.is_disclosable(r, t), "but repaired");

    let tax = negatives(&scenario.tax_arrears);
    assert_eq!(tax.len(), 1);
    let (d, r) = &tax[0];
    assert_eq!(d.qualified, "tax.arrears");
    assert!(d.is_disclosable(r, t));
}

#[test]
fn record_rates_dates_and_repairs_are_realistic() {
    let tmp = tempfile::tempdir().unwrap();
    let cats = catalogues();
    let n = 20_000u64;
    generate(&opts(n, 2, Format::Csv), &cats, tmp.path()).unwrap();
    let births: HashMap<String, time::Date> = {
        let mut r = csv::Reader::from_path(tmp.path().join(PERSONS_FILE)).unwrap();
        r.records()
            .map(|row| {
                let row = row.unwrap();
                (row[0].to_owned(), parse_date(&row[3]).unwrap())
            })
            .collect()
    };
    let t = today();
    let (mut repairable, mut repaired, mut negative, mut old) = (0u64, 0u64, 0u64, 0u64);
    for d in cats.iter().flat_map(|c| &c.datasets) {
        let p = profile(&d.qualified);
        assert_eq!(
            p.qualified, d.qualified,
            "every reference dataset has a profile"
        );
        let rows = rows(&file(tmp.path(), d, Format::Csv), Format::Csv);
        let subjects: HashSet<&str> = rows.iter().map(|r| r[&d.subject].as_str()).collect();
        let eligible = births.values().filter(|b| p.eligible(**b, t)).count() as f64;
        let with = subjects.len() as f64;
        let (lo, hi) = (p.share.0 * eligible, p.share.1 * eligible);
        let slack = 3.0 * hi.sqrt() + 5.0; // the five scenario persons, and chance
        assert!(
            with >= lo - slack && with <= hi + slack,
            "{}: {with} of {eligible} eligible persons have records, declared {:?}",
            d.qualified,
            p.share
        );
        for row in &rows {
            let rec = record(d, row);
            if d.kind == DatasetKind::Negative {
                negative += 1;
                let date = d.record_date(&rec).unwrap();
                assert!(date <= t);
                assert!(
                    within_years(date, t, 6),
                    "{}: older than six years",
                    d.qualified
                );
                if !within_years(date, t, 3) {
                    old += 1;
                }
                if let Some(rep) = &d.repair {
                    repairable += 1;
                    if rep
                        .repaired
                        .iter()
                        .any(|v| Some(v.as_str()) == rec[&rep.field].as_text())
                    {
                        repaired += 1;
                    }
                }
            }
        }
    }
    let share = repaired as f64 / repairable as f64;
    assert!((0.15..=0.25).contains(&share), "repaired share {share}");
    assert!((REPAIR_SHARE - share).abs() < 0.05);
    let old_share = old as f64 / negative as f64;
    assert!(
        (0.35..=0.65).contains(&old_share),
        "share of negative records outside the 3-year window: {old_share}"
    );
}

/// A department the realism table has never heard of, with every field type, and a
/// reference catalogue whose field was changed under the table's feet: the data must
/// still import.
#[test]
fn unknown_datasets_and_changed_fields_still_yield_importable_data() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../reference/changsha/catalogue");
    let court = std::fs::read_to_string(dir.join("court.toml"))
        .unwrap()
        .replace(
            "name = \"court\"\ntype = \"string\"",
            "name = \"court\"\ntype = \"enum\"\nvalues = [\"first\", \"second\"]",
        );
    assert!(court.contains("values = [\"first\", \"second\"]"));
    let tax = std::fs::read_to_string(dir.join("tax.toml")).unwrap();
    let housing = r#"
department = "housing"

[[dataset]]
name = "provident_fund_arrears"
kind = "negative"
key = "seq"
subject = "holder"
window_start = "since"
repair = { field = "note", repaired = ["settled"] }

[[dataset.field]]
name = "seq"
type = "integer"
class = "identifier"
required = true

[[dataset.field]]
name = "holder"
type = "resident_id"
class = "identifier"
required = true

[[dataset.field]]
name = "guarantor"
type = "resident_id"
class = "identifier"

[[dataset.field]]
name = "since"
type = "date"
class = "negative"
required = true

[[dataset.field]]
name = "amount"
type = "amount"
class = "sensitive"
buckets = [100, 1000]

[[dataset.field]]
name = "months"
type = "integer"
class = "negative"

[[dataset.field]]
name = "kind"
type = "enum"
class = "negative"
values = ["a", "b"]
required = true

[[dataset.field]]
name = "note"
type = "string"
class = "negative"
required = true

[[dataset.field]]
name = "comment"
type = "string"
class = "basic"
description = "备注, e.g. 单位欠缴"
"#;
    let cats = vec![
        Catalogue::parse(&court, "court.toml").unwrap(),
        Catalogue::parse(housing, "housing.toml").unwrap(),
        Catalogue::parse(&tax, "tax.toml").unwrap(),
    ];
    let tmp = tempfile::tempdir().unwrap();
    generate(&opts(3000, 4, Format::Csv), &cats, tmp.path()).unwrap();
    for d in cats.iter().flat_map(|c| &c.datasets) {
        let rows = rows(&file(tmp.path(), d, Format::Csv), Format::Csv);
        assert!(!rows.is_empty(), "{}", d.qualified);
        let mut keys = HashSet::new();
        for row in &rows {
            let rec = record(d, row);
            for f in d
                .fields
                .iter()
                .filter(|f| f.ty == fedq_policy::FieldType::ResidentId)
            {
                if let Some(id) = row.get(&f.name) {
                    ResidentId::parse(id).unwrap();
                }
            }
            assert!(keys.insert(row[&d.key].clone()));
            if d.qualified == "court.dishonest_debtors" {
                assert!(matches!(rec["court"].as_text(), Some("first" | "second")));
            }
        }
    }
}

#[test]
fn a_catalogue_without_the_scenario_datasets_is_refused_clearly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../reference/changsha/catalogue");
    let tax = std::fs::read_to_string(dir.join("tax.toml")).unwrap();
    let cats = vec![Catalogue::parse(&tax, "tax.toml").unwrap()];
    let tmp = tempfile::tempdir().unwrap();
    let err = generate(&opts(100, 1, Format::Csv), &cats, tmp.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`blacklisted`") && err.contains("court.dishonest_debtors"),
        "{err}"
    );
    let err = generate(&opts(3, 1, Format::Csv), &catalogues(), tmp.path())
        .unwrap_err()
        .to_string();
    assert!(err.contains("at least 5"), "{err}");
    let early = GenOptions {
        today: parse_date("2001-01-01").unwrap(),
        ..opts(100, 1, Format::Csv)
    };
    let err = generate(&early, &catalogues(), tmp.path())
        .unwrap_err()
        .to_string();
    assert!(err.contains("too early"), "{err}");
}
