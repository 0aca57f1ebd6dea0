//! Records of one dataset, generated from its catalogue definition and coloured by its
//! [`Profile`]. Every cell is written so that `Value::parse` accepts it for its field.

use std::collections::HashMap;
use std::fmt::Write as _;

use fedq_policy::catalogue::{Dataset, Field, FieldType};
use rand_pcg::rand_core::Rng;

use crate::output::Sink;
use crate::person::{pick, pick_pairs, Person, DISTRICTS};
use crate::profile::{
    add_years, Gen, KeyGen, Presence, Profile, Rule, CITY_OFFICE, INDUSTRIES, OFFICES,
    REPAIR_SHARE, TRADE_NAME_CHARS,
};
use crate::rng::{below, between, chance, mix64, pick_weighted, unit};
use crate::SynthError;

/// Fixed facts for a scenario record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Force {
    /// The window-start date.
    pub date: time::Date,
    /// Whether the record is repaired.
    pub repaired: bool,
}

/// The dates every record shares.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Days {
    pub today: time::Date,
    /// The first day window-start dates are drawn from (six years before today).
    pub spread_from: time::Date,
}

#[derive(Debug, Clone, Copy)]
enum Plan {
    Subject,
    Key,
    Window,
    Repair,
    Rule {
        rule: &'static Rule,
        /// The field a rule depends on (DateAfter, ByValue, LicenceStatus).
        dep: Option<usize>,
        /// The field an `Unless` presence looks at.
        cond: Option<usize>,
    },
    Generic,
}

/// One dataset being written.
#[derive(Debug)]
pub(crate) struct DatasetGen {
    pub dataset: Dataset,
    pub profile: &'static Profile,
    plans: Vec<Plan>,
    key_index: Option<usize>,
    repaired_values: Vec<String>,
    unrepaired: Vec<(String, u32)>,
    cells: Vec<String>,
    dates: Vec<Option<time::Date>>,
    counters: HashMap<(i32, usize), u64>,
    serial: u64,
    pub rows: u64,
    pub sink: Sink,
}

impl DatasetGen {
    pub(crate) fn new(dataset: Dataset, profile: &'static Profile, sink: Sink) -> DatasetGen {
        let index = |name: &str| dataset.field_index(name);
        let mut plans = Vec::with_capacity(dataset.fields.len());
        for (i, field) in dataset.fields.iter().enumerate() {
            let plan = if field.name == dataset.subject {
                Plan::Subject
            } else if field.name == dataset.key {
                Plan::Key
            } else if dataset.window_start.as_deref() == Some(field.name.as_str()) {
                Plan::Window
            } else if dataset
                .repair
                .as_ref()
                .is_some_and(|r| r.field == field.name)
            {
                Plan::Repair
            } else if let Some(rule) = profile.rules.iter().find(|r| r.field == field.name) {
                let earlier = |name: &str| index(name).filter(|j| *j < i);
                let dep = match rule.gen {
                    Gen::DateAfter { field, .. }
                    | Gen::ByValue { field, .. }
                    | Gen::LicenceStatus { expires: field } => earlier(field),
                    _ => None,
                };
                let cond = match rule.presence {
                    Presence::Unless { field, .. } => earlier(field),
                    _ => None,
                };
                if fits(rule, field, dep, &dataset) {
                    Plan::Rule { rule, dep, cond }
                } else {
                    Plan::Generic
                }
            } else {
                Plan::Generic
            };
            plans.push(plan);
        }
        let (repaired_values, unrepaired) = match &dataset.repair {
            Some(repair) => {
                let unrepaired = match dataset.field(&repair.field) {
                    Some(f) if f.ty == FieldType::Enum => f
                        .values
                        .iter()
                        .filter(|v| !repair.repaired.contains(v))
                        .map(|v| {
                            let w = profile
                                .unrepaired
                                .iter()
                                .find(|(u, _)| u == v)
                                .map_or(1, |(_, w)| *w);
                            (v.clone(), w)
                        })
                        .collect(),
                    _ => vec![("未修复".to_owned(), 1)],
                };
                (repair.repaired.clone(), unrepaired)
            }
            None => (Vec::new(), Vec::new()),
        };
        let n = dataset.fields.len();
        DatasetGen {
            key_index: index(&dataset.key).filter(|_| dataset.key != dataset.subject),
            plans,
            repaired_values,
            unrepaired,
            cells: vec![String::new(); n],
            dates: vec![None; n],
            counters: HashMap::new(),
            serial: 0,
            rows: 0,
            sink,
            profile,
            dataset,
        }
    }

    /// How many records a random person gets (0 for most).
    pub(crate) fn count<R: Rng>(&self, rng: &mut R, person: &Person, today: time::Date) -> u32 {
        if !self.profile.eligible(person.birth, today) || !chance(rng, self.profile.target_share())
        {
            return 0;
        }
        let mut n = 1;
        while n < self.profile.max_records && chance(rng, self.profile.repeat) {
            n += 1;
        }
        n
    }

    /// Generates and writes one record of `person`; returns its key.
    pub(crate) fn record<R: Rng>(
        &mut self,
        rng: &mut R,
        person: &Person,
        days: Days,
        force: Option<Force>,
    ) -> Result<&str, SynthError> {
        let today = days.today;
        let of_age = add_years(person.birth, self.profile.min_age);
        let mut anchor = if self.plans.iter().any(|p| matches!(p, Plan::Window)) {
            Some(match force {
                Some(f) => f.date,
                None => uniform_date(rng, days.spread_from.max(of_age), today),
            })
        } else {
            None
        };
        let repaired = match force {
            Some(f) => f.repaired,
            None => !self.repaired_values.is_empty() && chance(rng, REPAIR_SHARE),
        };
        let district = DISTRICTS
            .iter()
            .position(|d| d.code == person.district.code)
            .unwrap_or(0);
        let x = unit(rng);
        let office = if force.is_some() || x < 0.85 {
            district
        } else if x < 0.95 {
            CITY_OFFICE
        } else {
            below(rng, 9) as usize
        };
        for (c, d) in self.cells.iter_mut().zip(self.dates.iter_mut()) {
            c.clear();
            *d = None;
        }
        let year_of = |anchor: Option<time::Date>| anchor.unwrap_or(today).year();
        for i in 0..self.plans.len() {
            let Some(plan) = self.plans.get(i).copied() else {
                continue;
            };
            let Some(field) = self.dataset.fields.get(i) else {
                continue;
            };
            let mut date = None;
            let mut cell =
                std::mem::take(self.cells.get_mut(i).ok_or(SynthError::Internal("cell"))?);
            match plan {
                Plan::Subject => cell.push_str(person.id_str()),
                Plan::Key => {}
                Plan::Window => date = anchor,
                Plan::Repair => {
                    if repaired {
                        let n = u32::try_from(self.repaired_values.len()).unwrap_or(0);
                        if let Some(v) = self.repaired_values.get(below(rng, n) as usize) {
                            cell.push_str(v);
                        }
                    } else {
                        let choice = if force.is_some() {
                            self.unrepaired.first()
                        } else {
                            pick_weighted(rng, self.unrepaired.iter().map(|(_, w)| *w))
                                .and_then(|i| self.unrepaired.get(i))
                        };
                        if let Some((v, _)) = choice {
                            cell.push_str(v);
                        }
                    }
                }
                Plan::Rule { rule, dep, cond } => {
                    let present = field.required
                        || match rule.presence {
                            Presence::Sometimes(p) => p >= 1.0 || chance(rng, p),
                            Presence::IfRepaired => repaired,
                            Presence::Unless { value, .. } => cond
                                .and_then(|c| self.cells.get(c))
                                .is_none_or(|v| v != value),
                        };
                    if present {
                        let ctx = Ctx {
                            person,
                            today,
                            of_age,
                            office,
                            when: anchor.unwrap_or(today),
                            dep_date: dep.and_then(|d| self.dates.get(d).copied().flatten()),
                            dep_text: dep
                                .and_then(|d| self.cells.get(d))
                                .map_or("", String::as_str),
                        };
                        date = generate(rng, &rule.gen, &ctx, &mut cell);
                        if field.required && cell.is_empty() && date.is_none() {
                            date = generic(rng, field, anchor, of_age, today, &mut cell);
                        }
                    }
                }
                Plan::Generic => {
                    if field.required || chance(rng, 0.85) {
                        date = generic(rng, field, anchor, of_age, today, &mut cell);
                    }
                }
            }
            if let Some(d) = date {
                push_date(&mut cell, d);
                if anchor.is_none() {
                    anchor = Some(d);
                }
            }
            if let Some(slot) = self.dates.get_mut(i) {
                *slot = date;
            }
            if let Some(slot) = self.cells.get_mut(i) {
                *slot = cell;
            }
        }
        if let Some(k) = self.key_index {
            let year = year_of(anchor);
            let mut cell =
                std::mem::take(self.cells.get_mut(k).ok_or(SynthError::Internal("key"))?);
            self.key(rng, k, year, office, &mut cell);
            if let Some(slot) = self.cells.get_mut(k) {
                *slot = cell;
            }
        }
        self.sink.write(&self.cells)?;
        self.rows += 1;
        Ok(self
            .key_index
            .and_then(|k| self.cells.get(k))
            .or_else(|| {
                self.dataset
                    .field_index(&self.dataset.subject)
                    .and_then(|s| self.cells.get(s))
            })
            .map_or("", String::as_str))
    }

    /// Next number of a counter, scattered: the c-th number is in `3c+1..=3c+3`, so
    /// numbers never repeat yet do not simply count.
    fn next_number<R: Rng>(rng: &mut R, counter: &mut u64) -> u64 {
        let n = *counter * 3 + 1 + u64::from(below(rng, 3));
        *counter += 1;
        n
    }

    fn key<R: Rng>(&mut self, rng: &mut R, k: usize, year: i32, office: usize, cell: &mut String) {
        let Some(field) = self.dataset.fields.get(k) else {
            return;
        };
        match field.ty {
            FieldType::String => {}
            FieldType::Integer => {
                let n = Self::next_number(rng, &mut self.serial);
                let _ = write!(cell, "{n}");
                return;
            }
            _ => {
                let _ = generic(rng, field, None, time::Date::MIN, time::Date::MAX, cell);
                return;
            }
        }
        let o = OFFICES.get(office).copied().unwrap_or(OFFICES[CITY_OFFICE]);
        match self.profile.key {
            Some(KeyGen::CourtCase { word }) => {
                let n = Self::next_number(
                    rng,
                    self.counters
                        .entry((year, office))
                        .or_insert_with(|| first_count(year, office)),
                );
                let _ = write!(cell, "({year}){}{word}{n}号", o.court_code);
            }
            Some(KeyGen::Document { prefix, by_office }) => {
                let (short, slot) = if by_office {
                    (o.short, office)
                } else {
                    ("", 0)
                };
                let n = Self::next_number(
                    rng,
                    self.counters
                        .entry((year, slot))
                        .or_insert_with(|| first_count(year, slot)),
                );
                let _ = write!(cell, "{short}{prefix}〔{year}〕{n}号");
            }
            Some(KeyGen::Serial { prefix }) => {
                let n = Self::next_number(rng, &mut self.serial);
                let _ = write!(cell, "{prefix}{year}{n:07}");
            }
            Some(KeyGen::Licence {
                type_field,
                prefixes,
            }) => {
                let ty = self
                    .dataset
                    .field_index(type_field)
                    .and_then(|i| self.cells.get(i))
                    .map_or("", String::as_str);
                let p = prefixes
                    .iter()
                    .find(|(t, _)| *t == ty)
                    .map_or("XK", |(_, p)| *p);
                let code = DISTRICTS.get(office).map_or("430100", |d| d.code);
                let n = Self::next_number(rng, &mut self.serial);
                let _ = write!(cell, "{p}1{code}{n:07}");
            }
            Some(KeyGen::CreditCode) => {
                let code = DISTRICTS.get(office).map_or("430100", |d| d.code);
                let serial = self.serial;
                self.serial += 1;
                credit_code(cell, code, serial);
                let _ = write!(cell, "-{:02}", 1 + below(rng, 3));
            }
            None => {
                let n = Self::next_number(rng, &mut self.serial);
                let _ = write!(cell, "R{year}{n:08}");
            }
        }
    }
}

/// Where an office's numbering of a year starts in this synthetic sample (a city's
/// courts file thousands of cases a year; the sample shows a slice of them).
fn first_count(year: i32, office: usize) -> u64 {
    mix64((u64::from(year.unsigned_abs()) << 8) | office as u64) % 400
}

/// Whether a rule can make values its field accepts.
fn fits(rule: &Rule, field: &Field, dep: Option<usize>, dataset: &Dataset) -> bool {
    let text_ok = |values: &mut dyn Iterator<Item = &str>| match field.ty {
        FieldType::String => true,
        FieldType::Enum => {
            let mut all = true;
            for v in values {
                all &= field.values.iter().any(|f| f == v);
            }
            all
        }
        _ => false,
    };
    let dep_ty = dep.and_then(|d| dataset.fields.get(d)).map(|f| f.ty);
    match rule.gen {
        Gen::Pick(vs) => text_ok(&mut vs.iter().copied()),
        Gen::Weighted(vs) => text_ok(&mut vs.iter().map(|(v, _)| *v)),
        Gen::ByValue { table, .. } => {
            dep.is_some() && text_ok(&mut table.iter().flat_map(|(_, vs)| vs.iter().copied()))
        }
        Gen::Gender => text_ok(&mut ["male", "female"].into_iter()),
        Gen::Template(_)
        | Gen::PersonName
        | Gen::Address
        | Gen::Court
        | Gen::Regulator
        | Gen::Enterprise
        | Gen::Months
        | Gen::Quarter => field.ty == FieldType::String,
        Gen::BirthDate | Gen::Recent { .. } => field.ty == FieldType::Date,
        Gen::DateAfter { .. } => field.ty == FieldType::Date && dep_ty == Some(FieldType::Date),
        Gen::Amount { .. } => field.ty == FieldType::Amount,
        Gen::Int { .. } => field.ty == FieldType::Integer,
        Gen::LicenceStatus { .. } => {
            dep_ty == Some(FieldType::Date)
                && text_ok(&mut ["valid", "expired", "suspended", "revoked"].into_iter())
        }
    }
}

struct Ctx<'a> {
    person: &'a Person,
    today: time::Date,
    of_age: time::Date,
    office: usize,
    /// The record's date (window start, else the first date so far, else today).
    when: time::Date,
    dep_date: Option<time::Date>,
    dep_text: &'a str,
}

/// Writes a rule's value into `cell`, or returns a date to be written.
fn generate<R: Rng>(
    rng: &mut R,
    gen: &Gen,
    ctx: &Ctx<'_>,
    cell: &mut String,
) -> Option<time::Date> {
    let office = OFFICES
        .get(ctx.office)
        .copied()
        .unwrap_or(OFFICES[CITY_OFFICE]);
    match *gen {
        Gen::Pick(vs) => cell.push_str(pick(rng, vs).unwrap_or_default()),
        Gen::Weighted(vs) => cell.push_str(pick_pairs(rng, vs).unwrap_or_default()),
        Gen::Template(vs) => template(
            cell,
            pick(rng, vs).unwrap_or_default(),
            ctx.when.year(),
            office.place,
        ),
        Gen::PersonName => cell.push_str(&ctx.person.name),
        Gen::Gender => cell.push_str(ctx.person.sex.as_str()),
        Gen::BirthDate => return Some(ctx.person.birth),
        Gen::Address => {
            let d = ctx.person.district;
            let _ = write!(
                cell,
                "{}{}{}号",
                d.admin,
                pick(rng, d.roads).unwrap_or_default(),
                between(rng, 1, 600)
            );
            if chance(rng, 0.7) {
                let _ = write!(
                    cell,
                    "{}栋{}{:02}室",
                    between(rng, 1, 30),
                    between(rng, 1, 32),
                    between(rng, 1, 8)
                );
            }
        }
        Gen::Court => cell.push_str(office.court),
        Gen::Regulator => cell.push_str(office.regulator),
        Gen::Enterprise => enterprise(rng, cell, ctx.office),
        Gen::Amount { lo, hi } => {
            let yuan = log_uniform(rng, f64::from(lo), f64::from(hi));
            let whole = yuan.floor() as i64;
            let fen = if chance(rng, 0.4) {
                0
            } else {
                between(rng, 0, 99)
            };
            let _ = write!(cell, "{whole}.{fen:02}");
        }
        Gen::Int { lo, hi } => {
            let v = log_uniform(rng, lo as f64, (hi + 1) as f64).floor() as i64;
            let _ = write!(cell, "{}", v.clamp(lo, hi));
        }
        Gen::Recent { years } => {
            let from = add_years(ctx.today, -years).max(ctx.of_age);
            return Some(uniform_date(rng, from, ctx.today));
        }
        Gen::DateAfter {
            min_days,
            max_days,
            until_today,
            ..
        } => {
            let base = ctx.dep_date?;
            let d = base.saturating_add(time::Duration::days(between(rng, min_days, max_days)));
            return Some(if until_today { d.min(ctx.today) } else { d });
        }
        Gen::Months => {
            let end = months_back(
                ctx.when.year(),
                i64::from(u8::from(ctx.when.month())),
                between(rng, 1, 3),
            );
            let start = months_back(end.0, end.1, between(rng, 0, 11));
            let _ = write!(
                cell,
                "{:04}-{:02}..{:04}-{:02}",
                start.0, start.1, end.0, end.1
            );
        }
        Gen::Quarter => {
            let (y, m) = months_back(
                ctx.when.year(),
                i64::from(u8::from(ctx.when.month())),
                between(rng, 3, 6),
            );
            let _ = write!(cell, "{y:04}Q{}", (m - 1) / 3 + 1);
        }
        Gen::ByValue { table, .. } => {
            let vs = table
                .iter()
                .find(|(k, _)| *k == ctx.dep_text)
                .map_or(&[][..], |(_, vs)| *vs);
            template(
                cell,
                pick(rng, vs).unwrap_or_default(),
                ctx.when.year(),
                office.place,
            );
        }
        Gen::LicenceStatus { .. } => {
            let status = match ctx.dep_date {
                Some(expires) if expires < ctx.today => "expired",
                _ => pick_pairs(rng, &[("valid", 95), ("suspended", 3), ("revoked", 2)])
                    .unwrap_or("valid"),
            };
            cell.push_str(status);
        }
    }
    None
}

fn months_back(year: i32, month: i64, back: i64) -> (i32, i64) {
    let total = i64::from(year) * 12 + (month - 1) - back;
    (
        i32::try_from(total.div_euclid(12)).unwrap_or(year),
        total.rem_euclid(12) + 1,
    )
}

fn template(cell: &mut String, tpl: &str, year: i32, place: &str) {
    if !tpl.contains('{') {
        cell.push_str(tpl);
        return;
    }
    cell.push_str(
        &tpl.replace("{year}", &year.to_string())
            .replace("{place}", place),
    );
}

fn enterprise<R: Rng>(rng: &mut R, cell: &mut String, office: usize) {
    cell.push_str(match office {
        7 => "浏阳",
        8 => "宁乡",
        _ => "长沙",
    });
    cell.push_str(pick(rng, TRADE_NAME_CHARS).unwrap_or("湘"));
    cell.push_str(pick(rng, TRADE_NAME_CHARS).unwrap_or("麓"));
    cell.push_str(pick(rng, INDUSTRIES).unwrap_or("商贸"));
    cell.push_str(if chance(rng, 0.06) {
        "股份有限公司"
    } else {
        "有限公司"
    });
}

/// Values for a field with no (fitting) rule, from its type alone.
fn generic<R: Rng>(
    rng: &mut R,
    field: &Field,
    anchor: Option<time::Date>,
    of_age: time::Date,
    today: time::Date,
    cell: &mut String,
) -> Option<time::Date> {
    match field.ty {
        FieldType::String => {
            match field.description.split_once("e.g. ") {
                Some((_, example)) if !example.trim().is_empty() => cell.push_str(example.trim()),
                _ => {
                    let _ = write!(cell, "{}{:04}", field.name, below(rng, 10_000));
                }
            }
            None
        }
        FieldType::Enum => {
            let n = u32::try_from(field.values.len()).unwrap_or(0);
            if let Some(v) = field.values.get(below(rng, n) as usize) {
                cell.push_str(v);
            }
            None
        }
        FieldType::Amount => {
            let lo = field
                .buckets
                .first()
                .map_or(100.0, |b| (*b as f64 / 10.0).max(1.0));
            let hi = field
                .buckets
                .last()
                .map_or(100_000.0, |b| (*b as f64 * 2.0).max(lo + 1.0));
            let yuan = log_uniform(rng, lo, hi).floor() as i64;
            let _ = write!(cell, "{yuan}.{:02}", between(rng, 0, 99));
            None
        }
        FieldType::Integer => {
            let hi = field.buckets.last().map_or(100, |b| (*b * 2).max(2));
            let _ = write!(cell, "{}", between(rng, 1, hi));
            None
        }
        FieldType::Date => Some(match anchor {
            Some(a) => a
                .saturating_add(time::Duration::days(between(rng, 0, 365)))
                .min(today),
            None => uniform_date(rng, add_years(today, -10).max(of_age), today),
        }),
        FieldType::ResidentId => {
            random_id(rng, cell);
            None
        }
    }
}

/// A valid resident ID of someone not among the generated persons (a co-party).
fn random_id<R: Rng>(rng: &mut R, cell: &mut String) {
    let d = DISTRICTS
        .get(below(rng, 9) as usize)
        .unwrap_or(&DISTRICTS[0]);
    let birth = uniform_date(
        rng,
        time::Date::from_julian_day(2_433_283).unwrap_or(time::Date::MIN),
        time::Date::from_julian_day(2_454_101).unwrap_or(time::Date::MIN),
    );
    let mut s = String::with_capacity(18);
    s.push_str(d.code);
    let _ = write!(
        s,
        "{:04}{:02}{:02}{:03}",
        birth.year(),
        u8::from(birth.month()),
        birth.day(),
        between(rng, 1, 999)
    );
    let mut first17 = [0u8; 17];
    for (dst, src) in first17.iter_mut().zip(s.bytes()) {
        *dst = src;
    }
    s.push(char::from(fedq_wire::resident_id::check_character(
        &first17,
    )));
    cell.push_str(&s);
}

fn log_uniform<R: Rng>(rng: &mut R, lo: f64, hi: f64) -> f64 {
    let (a, b) = (lo.max(1.0).ln(), hi.max(lo.max(1.0)).ln());
    (a + unit(rng) * (b - a)).exp()
}

/// Uniform in `from..=to` (`to` if empty).
pub(crate) fn uniform_date<R: Rng>(rng: &mut R, from: time::Date, to: time::Date) -> time::Date {
    let (a, b) = (from.to_julian_day(), to.to_julian_day());
    if b <= a {
        return to;
    }
    let d = between(rng, i64::from(a), i64::from(b));
    time::Date::from_julian_day(i32::try_from(d).unwrap_or(b)).unwrap_or(to)
}

/// `YYYY-MM-DD`.
pub(crate) fn push_date(cell: &mut String, d: time::Date) {
    let _ = write!(
        cell,
        "{:04}-{:02}-{:02}",
        d.year(),
        u8::from(d.month()),
        d.day()
    );
}

/// GB 32100 unified social credit code for an enterprise registered in `district`:
/// `91` + division code + organization code (GB 11714, with its check character) + check.
fn credit_code(cell: &mut String, district: &str, serial: u64) {
    const CHARS: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
    const ORG_WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];
    const USCC_WEIGHTS: [u32; 17] = [
        1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
    ];
    // Newer codes start MA; five scattered characters after `MA4`/`MA5`… keep them unique.
    const SPACE: u64 = 31u64.pow(5);
    let scattered = (serial % SPACE * 19_487_171 + 7_654_321) % SPACE; // 19487171 = 11^7, prime to 31
    let mut body = [0u8; 8];
    body[0] = b'M';
    body[1] = b'A';
    body[2] = CHARS
        .get(4 + (serial / SPACE) as usize % 27)
        .copied()
        .unwrap_or(b'4');
    let mut x = scattered;
    for slot in body.iter_mut().skip(3).rev() {
        *slot = CHARS.get((x % 31) as usize).copied().unwrap_or(b'0');
        x /= 31;
    }
    let value = |c: u8| -> u32 {
        match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A') + 10,
            _ => 0,
        }
    };
    let sum: u32 = body
        .iter()
        .zip(ORG_WEIGHTS)
        .map(|(c, w)| value(*c) * w)
        .sum();
    let org_check = match 11 - sum % 11 {
        10 => b'X',
        11 => b'0',
        n => b'0' + n as u8,
    };
    let mut code = Vec::with_capacity(18);
    code.extend_from_slice(b"91");
    code.extend_from_slice(district.as_bytes());
    code.extend_from_slice(&body);
    code.push(org_check);
    let sum: u32 = code
        .iter()
        .zip(USCC_WEIGHTS)
        .map(|(c, w)| CHARS.iter().position(|x| x == c).unwrap_or(0) as u32 * w)
        .sum();
    let check = (31 - sum % 31) % 31;
    code.push(CHARS.get(check as usize).copied().unwrap_or(b'0'));
    cell.push_str(std::str::from_utf8(&code).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credit_codes_have_valid_check_characters() {
        // A published example of GB 32100: 91350100M000100Y43.
        const CHARS: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
        let weights = [
            1u32, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
        ];
        let valid = |code: &str| {
            let b = code.as_bytes();
            let sum: u32 = b[..17]
                .iter()
                .zip(weights)
                .map(|(c, w)| CHARS.iter().position(|x| x == c).unwrap() as u32 * w)
                .sum();
            CHARS[((31 - sum % 31) % 31) as usize] == b[17]
        };
        assert!(valid("91350100M000100Y43"));
        let mut seen = std::collections::HashSet::new();
        for serial in 0..2000 {
            let mut s = String::new();
            credit_code(&mut s, "430104", serial);
            assert_eq!(s.len(), 18, "{s}");
            assert!(valid(&s), "{s}");
            assert!(seen.insert(s));
        }
    }

    #[test]
    fn months_wrap_years() {
        assert_eq!(months_back(2024, 2, 3), (2023, 11));
        assert_eq!(months_back(2024, 12, 0), (2024, 12));
    }

    #[test]
    fn sex_names_are_catalogue_words() {
        assert_eq!(crate::person::Sex::Male.as_str(), "male");
    }
}
