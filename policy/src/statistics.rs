//! Statistics that reveal no one (issue 20 §2), as plain functions over data: what the
//! policy's `[statistics]` table allows (who may count, the smallest cell, ε per query and
//! the budget per requester and period), the cells a department counts over its own
//! records ([`count_cells`]: every cell of the declared domain, each person at most once
//! per dataset, so once per cell), and the release ([`release`]): discrete Laplace noise
//! of scale Δ/ε on every cell, sampled exactly ([`DiscreteLaplace`], Canonne, Kamath and
//! Steinke 2020), then the cells whose *noisy* count is below the threshold suppressed.
//! Suppressing on the noisy count is post-processing, so the release stays ε-DP; a
//! threshold on the true count would itself leak whether a small cell is empty.
//!
//! ε is kept in millionths (integers) everywhere, so a budget never drifts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::catalogue::{Dataset, FieldType, Record};
use crate::value::Value;

/// ε in millionths: `0.5` is 500 000.
pub type MicroEpsilon = u64;

/// How long a requester's budget lasts before it renews.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// A calendar month (UTC+8).
    Month,
    /// A calendar year (UTC+8).
    Year,
}

impl Period {
    /// The period's name in files.
    pub fn name(self) -> &'static str {
        match self {
            Period::Month => "month",
            Period::Year => "year",
        }
    }

    /// The period `date` falls in, as text: `2026-12` or `2026`.
    pub fn key(self, date: time::Date) -> String {
        match self {
            Period::Month => format!("{:04}-{:02}", date.year(), u8::from(date.month())),
            Period::Year => format!("{:04}", date.year()),
        }
    }

    /// The first day of the next period: when a spent budget renews.
    pub fn renews_on(self, date: time::Date) -> time::Date {
        let (year, month) = match self {
            Period::Month if date.month() == time::Month::December => (date.year() + 1, 1),
            Period::Month => (date.year(), u8::from(date.month()) + 1),
            Period::Year => (date.year() + 1, 1),
        };
        time::Month::try_from(month)
            .ok()
            .and_then(|m| time::Date::from_calendar_date(year, m, 1).ok())
            .unwrap_or(date)
    }
}

/// The policy's `[statistics]` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statistics {
    /// The purposes aggregate queries may be asked under (each `aggregate_only`).
    pub purposes: Vec<String>,
    /// The smallest count released; a cell whose noisy count is below it is suppressed.
    pub min_cell: u64,
    /// ε each query spends at each department it asks.
    pub epsilon: MicroEpsilon,
    /// ε a requester may spend at a department per period.
    pub budget: MicroEpsilon,
    /// The budget's period.
    pub period: Period,
    /// The region codes (first six characters of the resident ID) counted as districts;
    /// every other one counts as `other`.
    pub districts: Vec<String>,
    /// Datasets that may be counted (`department.dataset`), with the enum field, if any,
    /// that is their `category`.
    pub datasets: BTreeMap<String, Option<String>>,
    /// The most years one query may count.
    pub max_years: u32,
}

/// Parses a positive decimal ε (`0.5`, `2`, at most six decimals) into millionths.
pub fn parse_epsilon(text: &str) -> Option<MicroEpsilon> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() && frac.is_empty()
        || frac.len() > 6
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let frac: u64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<6}").parse().ok()?
    };
    let micro = whole.checked_mul(1_000_000)?.checked_add(frac)?;
    (micro > 0).then_some(micro)
}

/// ε in millionths as a decimal: 500 000 → `0.5`.
pub fn format_epsilon(micro: MicroEpsilon) -> String {
    let whole = micro / 1_000_000;
    let frac = micro % 1_000_000;
    if frac == 0 {
        whole.to_string()
    } else {
        let f = format!("{frac:06}");
        format!("{whole}.{}", f.trim_end_matches('0'))
    }
}

/// The dimensions a count may be broken down by (the dataset always is).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    /// The region code of the person's resident ID.
    District,
    /// The year of the record's `window_start`.
    Year,
    /// The dataset's category field (the policy names it).
    Category,
}

/// One cell's key: dataset, and the dimensions asked (`None` where not asked).
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct CellKey {
    /// `department.dataset`.
    pub dataset: String,
    /// District code or `other`.
    pub district: Option<String>,
    /// Year.
    pub year: Option<i32>,
    /// Category value.
    pub category: Option<String>,
}

/// What an aggregate query asks a department: datasets, the breakdown, and the years.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AggregateTarget {
    /// Datasets (`department.dataset`).
    pub datasets: Vec<String>,
    /// The breakdown.
    #[serde(default)]
    pub by: Vec<Dimension>,
    /// First year counted (by `window_start`).
    pub from_year: i32,
    /// Last year counted.
    pub to_year: i32,
    /// Count the persons in **both** datasets (two datasets of two departments, no
    /// breakdown), by private set-intersection cardinality between the departments.
    #[serde(default)]
    pub intersect: bool,
}

impl AggregateTarget {
    /// How audit entries name it: `count:DATASET,…[by district,year][2024-2026]`.
    pub fn describe(&self) -> String {
        let by: Vec<&str> = self
            .by
            .iter()
            .map(|d| match d {
                Dimension::District => "district",
                Dimension::Year => "year",
                Dimension::Category => "category",
            })
            .collect();
        format!(
            "count:{}[by {}][{}-{}]",
            self.datasets.join(if self.intersect { "&" } else { "," }),
            if by.is_empty() {
                "-".to_owned()
            } else {
                by.join(",")
            },
            self.from_year,
            self.to_year
        )
    }
}

/// Why an aggregate query is not for these statistics. Quotes only policy names.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AggregateRefusal {
    /// The policy has no `[statistics]` table.
    #[error("this policy allows no aggregate queries (no `[statistics]` table)")]
    NotAllowed,
    /// The purpose is not one the statistics allow.
    #[error("purpose `{0}` may not ask aggregate queries; the policy's `[statistics] purposes` lists those that may")]
    Purpose(String),
    /// A dataset may not be counted.
    #[error(
        "a dataset asked is not one the policy's `[statistics] datasets` allows to be counted"
    )]
    Dataset,
    /// A category asked of a dataset without one.
    #[error("dataset `{0}` has no category the policy names; leave `category` out of `by`")]
    NoCategory(String),
    /// The years.
    #[error("`from_year`..`to_year` must be ascending and span at most {0} years")]
    Years(u32),
    /// Nothing or too much asked.
    #[error("ask 1 to 16 datasets, each once, and each dimension at most once")]
    Shape,
    /// A count of the persons in both datasets asked of anything but two datasets of two
    /// departments without a breakdown.
    #[error("a count of the persons in both datasets takes exactly two datasets of two different departments, and no `by`")]
    Intersect,
}

impl AggregateRefusal {
    /// The refusal's kind as a stable word, for audit entries (never the input).
    pub fn code(&self) -> &'static str {
        match self {
            AggregateRefusal::NotAllowed => "no_statistics",
            AggregateRefusal::Purpose(_) => "purpose_not_for_statistics",
            AggregateRefusal::Dataset => "dataset_not_counted",
            AggregateRefusal::NoCategory(_) => "no_category",
            AggregateRefusal::Years(_) => "years",
            AggregateRefusal::Shape => "shape",
            AggregateRefusal::Intersect => "intersect_shape",
        }
    }
}

/// Why an aggregate query is refused: the request as any request (requester, purpose,
/// legal basis), or what the `[statistics]` table allows.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AggregateCheck {
    /// The requester, purpose or legal basis.
    #[error(transparent)]
    Request(crate::engine::Refusal),
    /// The statistics table.
    #[error(transparent)]
    Statistics(AggregateRefusal),
}

impl AggregateCheck {
    /// The refusal's kind as a stable word, for audit entries (never the input).
    pub fn code(&self) -> &'static str {
        match self {
            AggregateCheck::Request(r) => r.code(),
            AggregateCheck::Statistics(r) => r.code(),
        }
    }
}

impl Statistics {
    /// Checks what a query asks against the policy (the requester and purpose are the
    /// engine's to check).
    pub fn check(&self, purpose: &str, target: &AggregateTarget) -> Result<(), AggregateRefusal> {
        if !self.purposes.iter().any(|p| p == purpose) {
            return Err(AggregateRefusal::Purpose(purpose.to_owned()));
        }
        let mut seen = target.datasets.clone();
        seen.sort();
        seen.dedup();
        let mut by = target.by.clone();
        by.sort();
        by.dedup();
        if target.datasets.is_empty()
            || target.datasets.len() > 16
            || seen.len() != target.datasets.len()
            || by.len() != target.by.len()
        {
            return Err(AggregateRefusal::Shape);
        }
        if target.intersect {
            let department = |d: &str| d.split('.').next().unwrap_or_default().to_owned();
            let two =
                matches!(target.datasets.as_slice(), [a, b] if department(a) != department(b));
            if !two || !target.by.is_empty() {
                return Err(AggregateRefusal::Intersect);
            }
        }
        let span = i64::from(target.to_year) - i64::from(target.from_year);
        if span < 0 || span >= i64::from(self.max_years) {
            return Err(AggregateRefusal::Years(self.max_years));
        }
        for d in &target.datasets {
            match self.datasets.get(d) {
                None => return Err(AggregateRefusal::Dataset),
                Some(None) if target.by.contains(&Dimension::Category) => {
                    return Err(AggregateRefusal::NoCategory(d.clone()))
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// The district a resident ID counts under.
    fn district(&self, id: &str) -> String {
        let code: String = id.chars().take(6).collect();
        if self.districts.contains(&code) {
            code
        } else {
            "other".to_owned()
        }
    }

    /// Every cell of `dataset`'s domain for `target`: the districts (and `other`), the
    /// years, the category's values. Counting over this domain rather than over the cells
    /// the records happen to fill is what keeps a cell's presence from saying anything.
    pub fn domain(&self, dataset: &Dataset, target: &AggregateTarget) -> Vec<CellKey> {
        let mut districts: Vec<Option<String>> = vec![None];
        if target.by.contains(&Dimension::District) {
            districts = self
                .districts
                .iter()
                .cloned()
                .chain(std::iter::once("other".to_owned()))
                .map(Some)
                .collect();
        }
        let mut years: Vec<Option<i32>> = vec![None];
        if target.by.contains(&Dimension::Year) {
            years = (target.from_year..=target.to_year).map(Some).collect();
        }
        let mut categories: Vec<Option<String>> = vec![None];
        if target.by.contains(&Dimension::Category) {
            if let Some(Some(field)) = self.datasets.get(&dataset.qualified) {
                if let Some(f) = dataset.field(field) {
                    categories = f.values.iter().cloned().map(Some).collect();
                }
            }
        }
        let mut out = Vec::new();
        for d in &districts {
            for y in &years {
                for c in &categories {
                    out.push(CellKey {
                        dataset: dataset.qualified.clone(),
                        district: d.clone(),
                        year: *y,
                        category: c.clone(),
                    });
                }
            }
        }
        out
    }

    /// The true counts of `dataset` over its domain, from `records` (subject, record):
    /// the disclosable ones at `today` inside the years asked (the caller has left out
    /// repaired and disputed records), each person counted once — under their newest
    /// record — so that adding or removing one person changes one cell by one.
    pub fn count_cells(
        &self,
        dataset: &Dataset,
        target: &AggregateTarget,
        records: &[(String, Record)],
        today: time::Date,
    ) -> BTreeMap<CellKey, u64> {
        let newest = newest_records(dataset, target, records, today);
        let mut cells: BTreeMap<CellKey, u64> = self
            .domain(dataset, target)
            .into_iter()
            .map(|k| (k, 0))
            .collect();
        let category_field = self.datasets.get(&dataset.qualified).cloned().flatten();
        for (subject, (date, record)) in newest {
            let key = CellKey {
                dataset: dataset.qualified.clone(),
                district: target
                    .by
                    .contains(&Dimension::District)
                    .then(|| self.district(subject)),
                year: target.by.contains(&Dimension::Year).then(|| date.year()),
                category: if target.by.contains(&Dimension::Category) {
                    category_field
                        .as_ref()
                        .and_then(|f| record.get(f))
                        .and_then(Value::as_text)
                        .map(str::to_owned)
                } else {
                    None
                },
            };
            // A value outside the domain (a category the catalogue does not list) is not
            // counted anywhere rather than in a cell of its own.
            if let Some(n) = cells.get_mut(&key) {
                *n += 1;
            }
        }
        cells
    }
}

/// Each person's newest record of `dataset` that counts for `target` at `today`
/// (disclosable, inside the years asked), by subject.
pub fn newest_records<'r>(
    dataset: &Dataset,
    target: &AggregateTarget,
    records: &'r [(String, Record)],
    today: time::Date,
) -> BTreeMap<&'r str, (time::Date, &'r Record)> {
    let mut newest: BTreeMap<&str, (time::Date, &Record)> = BTreeMap::new();
    for (subject, record) in records {
        if !dataset.is_disclosable(record, today) {
            continue;
        }
        let Some(date) = dataset.record_date(record) else {
            continue;
        };
        if date.year() < target.from_year || date.year() > target.to_year {
            continue;
        }
        let e = newest.entry(subject.as_str()).or_insert((date, record));
        if date > e.0 {
            *e = (date, record);
        }
    }
    newest
}

/// One released cell.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ReleasedCell {
    /// Which cell.
    pub key: CellKey,
    /// The noisy count, or `None` when suppressed (below `min_cell`).
    pub count: Option<u64>,
}

/// A source of uniformly random bytes: the system's in production, a seeded one in tests.
pub trait RandomBytes {
    /// Fills `out`.
    fn fill(&mut self, out: &mut [u8]) -> Result<(), NoRandomness>;
}

/// The system's randomness failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the system's random number generator failed")]
pub struct NoRandomness;

/// The operating system's randomness (ring's `SystemRandom`).
#[derive(Debug)]
pub struct SystemBytes(ring::rand::SystemRandom);

impl Default for SystemBytes {
    fn default() -> Self {
        Self(ring::rand::SystemRandom::new())
    }
}

impl RandomBytes for SystemBytes {
    fn fill(&mut self, out: &mut [u8]) -> Result<(), NoRandomness> {
        ring::rand::SecureRandom::fill(&self.0, out).map_err(|_| NoRandomness)
    }
}

/// Exact sampling of the discrete Laplace distribution, P(x) ∝ exp(-|x|·s/t) over the
/// integers, with integer arithmetic only (Canonne, Kamath and Steinke, "The Discrete
/// Gaussian for Differential Privacy", 2020, Algorithms 1 and 2): no floating point, so
/// no rounding the noise's privacy depends on.
#[derive(Debug)]
pub struct DiscreteLaplace<R> {
    rng: R,
}

impl<R: RandomBytes> DiscreteLaplace<R> {
    /// A sampler over `rng`.
    pub fn new(rng: R) -> Self {
        Self { rng }
    }

    /// A uniform integer in `0..n` (`n` ≥ 1), by rejection.
    fn uniform(&mut self, n: u64) -> Result<u64, NoRandomness> {
        if n <= 1 {
            return Ok(0);
        }
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let mut b = [0u8; 8];
            self.rng.fill(&mut b)?;
            let v = u64::from_le_bytes(b);
            if v < zone {
                return Ok(v % n);
            }
        }
    }

    /// Bernoulli(n/d), `n` ≤ `d`.
    fn bernoulli(&mut self, n: u64, d: u64) -> Result<bool, NoRandomness> {
        Ok(self.uniform(d)? < n)
    }

    /// Bernoulli(exp(-n/d)) (Algorithm 1).
    fn bernoulli_exp(&mut self, n: u64, d: u64) -> Result<bool, NoRandomness> {
        let mut n = n;
        while n > d {
            if !self.bernoulli_exp(1, 1)? {
                return Ok(false);
            }
            n -= d;
        }
        // n/d in [0, 1]: K ← 1; while Bernoulli(γ/K) K += 1; odd K → 1.
        let mut k: u64 = 1;
        while let Some(denominator) = d.checked_mul(k) {
            if !self.bernoulli(n, denominator)? {
                break;
            }
            k += 1;
        }
        Ok(k % 2 == 1)
    }

    /// One sample of P(x) ∝ exp(-|x|·s/t), `s`, `t` ≥ 1 (Algorithm 2).
    pub fn sample(&mut self, s: u64, t: u64) -> Result<i64, NoRandomness> {
        let (s, t) = (s.max(1), t.max(1));
        loop {
            let u = self.uniform(t)?;
            if !self.bernoulli_exp(u, t)? {
                continue;
            }
            let mut v: u64 = 0;
            while self.bernoulli_exp(1, 1)? {
                v += 1;
            }
            let x = u.saturating_add(t.saturating_mul(v));
            let y = i64::try_from(x / s).unwrap_or(i64::MAX);
            let negative = self.bernoulli(1, 2)?;
            if negative && y == 0 {
                continue;
            }
            return Ok(if negative { -y } else { y });
        }
    }
}

/// Releases `cells` with ε (millionths) spent over `datasets` datasets: each person is in
/// at most one cell per dataset, so one person changes at most `datasets` cells by one
/// (L1 sensitivity Δ = `datasets`); every cell gets discrete Laplace noise of scale Δ/ε,
/// and a noisy count below `min_cell` is suppressed.
pub fn release<R: RandomBytes>(
    cells: &BTreeMap<CellKey, u64>,
    datasets: u64,
    epsilon: MicroEpsilon,
    min_cell: u64,
    noise: &mut DiscreteLaplace<R>,
) -> Result<Vec<ReleasedCell>, NoRandomness> {
    // exp(-|x|·s/t) with s/t = ε/Δ: s = ε·10⁶, t = Δ·10⁶ (both in millionths).
    let s = epsilon.max(1);
    let t = datasets.max(1).saturating_mul(1_000_000);
    let mut out = Vec::with_capacity(cells.len());
    for (key, count) in cells {
        let noisy = i64::try_from(*count)
            .unwrap_or(i64::MAX)
            .saturating_add(noise.sample(s, t)?);
        let shown = u64::try_from(noisy).ok().filter(|n| *n >= min_cell);
        out.push(ReleasedCell {
            key: key.clone(),
            count: shown,
        });
    }
    Ok(out)
}

/// The field type a category field must have.
pub fn is_category_type(ty: FieldType) -> bool {
    ty == FieldType::Enum
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic byte stream for tests: SHA-256 of a seed and a counter.
    struct Seeded {
        seed: u64,
        counter: u64,
        buf: Vec<u8>,
    }

    impl RandomBytes for Seeded {
        fn fill(&mut self, out: &mut [u8]) -> Result<(), NoRandomness> {
            for b in out.iter_mut() {
                if self.buf.is_empty() {
                    let mut input = self.seed.to_le_bytes().to_vec();
                    input.extend_from_slice(&self.counter.to_le_bytes());
                    self.counter += 1;
                    self.buf = ring::digest::digest(&ring::digest::SHA256, &input)
                        .as_ref()
                        .to_vec();
                }
                *b = self.buf.pop().unwrap_or_default();
            }
            Ok(())
        }
    }

    fn seeded(seed: u64) -> DiscreteLaplace<Seeded> {
        DiscreteLaplace::new(Seeded {
            seed,
            counter: 0,
            buf: Vec::new(),
        })
    }

    #[test]
    fn epsilons_parse_to_millionths_and_back() {
        assert_eq!(parse_epsilon("0.5"), Some(500_000));
        assert_eq!(parse_epsilon("2"), Some(2_000_000));
        assert_eq!(parse_epsilon(".25"), Some(250_000));
        assert_eq!(parse_epsilon("0"), None);
        assert_eq!(parse_epsilon("-1"), None);
        assert_eq!(parse_epsilon("0.0000001"), None);
        assert_eq!(parse_epsilon("1e3"), None);
        assert_eq!(format_epsilon(500_000), "0.5");
        assert_eq!(format_epsilon(2_000_000), "2");
        assert_eq!(format_epsilon(1_250_000), "1.25");
    }

    #[test]
    fn a_budget_renews_on_the_first_day_of_the_next_period() {
        let d = time::macros::date!(2026 - 12 - 03);
        assert_eq!(
            Period::Month.renews_on(d),
            time::macros::date!(2027 - 01 - 01)
        );
        assert_eq!(Period::Month.key(d), "2026-12");
        let d = time::macros::date!(2026 - 05 - 31);
        assert_eq!(
            Period::Month.renews_on(d),
            time::macros::date!(2026 - 06 - 01)
        );
        assert_eq!(
            Period::Year.renews_on(d),
            time::macros::date!(2027 - 01 - 01)
        );
        assert_eq!(Period::Year.key(d), "2026");
    }

    /// The noise follows the discrete Laplace law: with a fixed seed, 200 000 samples of
    /// scale 2 (ε = 0.5, Δ = 1) against P(x) = (1-q)/(1+q)·q^|x|, q = e^(-1/2), by a
    /// chi-squared test over x in -12..=12 and the two tails (27 bins, 26 degrees of
    /// freedom; the 99.9% critical value is 54.05), plus the mean and the variance
    /// 2q/(1-q)² within four standard errors.
    #[test]
    fn the_noise_follows_the_discrete_laplace_law() {
        let mut noise = seeded(20_201_130);
        let n = 200_000u64;
        let (s, t) = (500_000, 1_000_000);
        let mut counts: BTreeMap<i64, u64> = BTreeMap::new();
        let (mut sum, mut sum_sq) = (0f64, 0f64);
        for _ in 0..n {
            let x = noise.sample(s, t).unwrap();
            let bin = x.clamp(-13, 13);
            *counts.entry(bin).or_default() += 1;
            sum += x as f64;
            sum_sq += (x * x) as f64;
        }
        let q = (-0.5f64).exp();
        let p = |x: i64| (1.0 - q) / (1.0 + q) * q.powi(x.unsigned_abs() as i32);
        // P(X ≥ 13) = (1-q)/(1+q) · q^13/(1-q) = q^13/(1+q).
        let tail = q.powi(13) / (1.0 + q);
        let mut chi2 = 0.0;
        for bin in -13..=13i64 {
            let expected = n as f64 * if bin.abs() == 13 { tail } else { p(bin) };
            let observed = *counts.get(&bin).unwrap_or(&0) as f64;
            chi2 += (observed - expected).powi(2) / expected;
        }
        assert!(
            chi2 < 54.05,
            "chi-squared {chi2:.1} over 26 degrees of freedom"
        );
        let mean = sum / n as f64;
        let variance = sum_sq / n as f64 - mean * mean;
        let expected_var = 2.0 * q / (1.0 - q).powi(2);
        let se_mean = (expected_var / n as f64).sqrt();
        assert!(mean.abs() < 4.0 * se_mean, "mean {mean}");
        // The variance's standard error: sqrt((μ4 - σ⁴)/n), μ4 ≈ 6σ⁴ for a Laplace law,
        // taken generously.
        let se_var = (5.0 * expected_var * expected_var / n as f64).sqrt();
        assert!(
            (variance - expected_var).abs() < 4.0 * se_var,
            "variance {variance} against {expected_var}"
        );
    }

    #[test]
    fn a_larger_epsilon_gives_less_noise() {
        let mut wide = seeded(1);
        let mut narrow = seeded(1);
        let spread = |d: &mut DiscreteLaplace<Seeded>, s: u64| -> u64 {
            (0..20_000)
                .map(|_| d.sample(s, 1_000_000).unwrap().unsigned_abs())
                .sum()
        };
        let a = spread(&mut wide, 100_000);
        let b = spread(&mut narrow, 2_000_000);
        assert!(a > 10 * b, "ε 0.1 gave {a}, ε 2 gave {b}");
    }

    #[test]
    fn a_small_cell_is_suppressed_and_a_large_one_shown_near_its_count() {
        let mut cells = BTreeMap::new();
        let key = |d: &str| CellKey {
            dataset: "court.dishonest_debtors".into(),
            district: Some(d.into()),
            year: None,
            category: None,
        };
        cells.insert(key("430102"), 2);
        cells.insert(key("430103"), 500);
        let mut noise = seeded(7);
        let mut suppressed = 0;
        for _ in 0..200 {
            let out = release(&cells, 1, 1_000_000, 10, &mut noise).unwrap();
            if out[0].count.is_none() {
                suppressed += 1;
            }
            let big = out[1].count.unwrap();
            assert!((470..=530).contains(&big), "{big}");
        }
        // A cell of 2 reaches 10 only with noise ≥ 8: P = e^-8/(1+e^-1) ≈ 0.0002 per draw.
        assert_eq!(suppressed, 200);
    }
}
