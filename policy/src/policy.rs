//! The policy language: parsing a TOML policy and validating every name in it against
//! the federation's catalogues. The result is a [`Policy`] whose names are all resolved
//! to indices, ready for [`Policy::compile`].
//!
//! Nothing here reads files or the clock: the text, the catalogues and "now" are inputs.

use std::collections::BTreeSet;

use serde::Deserialize;
use toml::Spanned;

use crate::catalogue::{Federation, FieldClass};
use crate::location::{Diagnostics, LocatedErrors, Location};
use crate::transform::FieldTransform;

/// What a rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Releases matched fields in at most `transform`; the most revealing grant wins.
    Grant,
    /// Caps matched fields at `transform` (and may narrow the record-age window).
    Limit,
    /// Releases nothing of matched fields, whatever any grant says.
    Deny,
}

impl ViewKind {
    /// The word used in policy files.
    pub fn name(self) -> &'static str {
        match self {
            ViewKind::Blacklist => "blacklist",
            ViewKind::GreenChannel => "green-channel",
            ViewKind::CreditReport => "credit-report",
            ViewKind::IntegrityScore => "integrity-score",
        }
    }

    /// What the view's answer carries to the requester, in words (`fedq policy explain`).
    pub fn output(self) -> &'static str {
        match self {
            ViewKind::Blacklist => "the active listings (list, dataset, since, until)",
            ViewKind::GreenChannel => {
                "the verdict (eligible, not eligible or cannot confirm), never which source holds a record"
            }
            ViewKind::CreditReport => {
                "every answered source's released records and summaries, section by section"
            }
            ViewKind::IntegrityScore => {
                "the points, the grade and the record count and points per category"
            }
        }
    }
}

impl Effect {
    /// The word used in policy files.
    pub fn name(self) -> &'static str {
        match self {
            Effect::Grant => "grant",
            Effect::Limit => "limit",
            Effect::Deny => "deny",
        }
    }
}

/// A record-age window (on top of the statutory window the node always applies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordAge {
    /// At most this many years old.
    Years(u32),
    /// At most this many months old.
    Months(u32),
    /// At most this many days old.
    Days(u32),
}

impl RecordAge {
    /// Parses `3y`, `6m` or `90d`.
    pub fn parse(s: &str) -> Option<RecordAge> {
        let s = s.trim();
        let unit = s.chars().last()?;
        let n: u32 = s.get(..s.len().saturating_sub(1))?.parse().ok()?;
        if n == 0 {
            return None;
        }
        match unit {
            'y' => Some(RecordAge::Years(n)),
            'm' => Some(RecordAge::Months(n)),
            'd' => Some(RecordAge::Days(n)),
            _ => None,
        }
    }

    /// The latest date a record may *not* have: records dated on or before the cutoff
    /// are outside the window.
    pub fn cutoff(self, today: time::Date) -> time::Date {
        let months = match self {
            RecordAge::Years(y) => i64::from(y) * 12,
            RecordAge::Months(m) => i64::from(m),
            RecordAge::Days(d) => {
                return today
                    .checked_sub(time::Duration::days(i64::from(d)))
                    .unwrap_or(time::Date::MIN)
            }
        };
        let total = i64::from(today.year()) * 12 + i64::from(u8::from(today.month())) - 1 - months;
        let year = i32::try_from(total.div_euclid(12)).unwrap_or(i32::MIN);
        let month = u8::try_from(total.rem_euclid(12) + 1).unwrap_or(1);
        let month = time::Month::try_from(month).unwrap_or(time::Month::January);
        let last = time::util::days_in_month(month, year);
        time::Date::from_calendar_date(year, month, today.day().min(last))
            .unwrap_or(time::Date::MIN)
    }
}

impl std::fmt::Display for RecordAge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordAge::Years(n) => write!(f, "{n}y"),
            RecordAge::Months(n) => write!(f, "{n}m"),
            RecordAge::Days(n) => write!(f, "{n}d"),
        }
    }
}

/// A declared purpose of use (查询用途).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purpose {
    /// Name used in requests, e.g. `administrative-licensing`.
    pub name: String,
    /// What it is, read aloud.
    pub description: String,
    /// Whether every request must cite a legal basis.
    pub legal_basis_required: bool,
    /// Whether every request must carry the subject's consent.
    pub consent_required: bool,
    /// The case every request must cite (a licensing application number, a court case
    /// number), if the purpose declares one.
    pub case_reference: Option<CaseReference>,
    /// The legal bases a request for this purpose may cite where a rule cites none
    /// (`legal_bases = [...]`).
    pub legal_bases: Vec<String>,
    /// Per-person lookups are refused: only aggregate queries may serve this purpose.
    pub aggregate_only: bool,
}

/// Longest case reference a request may cite, in bytes, whatever the pattern allows: it is
/// recorded in every audit entry of the query.
pub const MAX_CASE_REFERENCE_BYTES: usize = 128;

/// The form of the case reference a purpose's requests must cite: a regular expression
/// (matched against the whole reference) and a description of it in words, which is what
/// a refusal shows (never the reference that was sent).
#[derive(Debug, Clone)]
pub struct CaseReference {
    /// The pattern as written in the policy.
    pub pattern: String,
    /// The form in words, e.g. "许可申请号，如 湘市监许〔2026〕0123号".
    pub description: String,
    regex: regex::Regex,
}

impl PartialEq for CaseReference {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern && self.description == other.description
    }
}

impl Eq for CaseReference {}

impl CaseReference {
    /// Compiles `pattern`, anchored at both ends. The error says why it does not compile.
    pub fn new(pattern: &str, description: &str) -> Result<CaseReference, String> {
        let regex = regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
            .size_limit(1 << 20)
            .build()
            .map_err(|e| match e {
                regex::Error::Syntax(s) => s.lines().last().unwrap_or_default().trim().to_owned(),
                regex::Error::CompiledTooBig(n) => {
                    format!("the compiled pattern would exceed {n} bytes; simplify it")
                }
                other => other.to_string(),
            })?;
        Ok(CaseReference {
            pattern: pattern.to_owned(),
            description: description.to_owned(),
            regex,
        })
    }

    /// Whether `reference` has this form: not longer than [`MAX_CASE_REFERENCE_BYTES`], no
    /// control characters, and the whole of it matches the pattern.
    pub fn matches(&self, reference: &str) -> bool {
        reference.len() <= MAX_CASE_REFERENCE_BYTES
            && !reference.chars().any(char::is_control)
            && self.regex.is_match(reference)
    }
}

/// Per-requester rate limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateLimit {
    /// Requests per minute, if limited.
    pub per_minute: Option<u32>,
    /// Requests per day, if limited.
    pub per_day: Option<u32>,
}

/// A declared requester: an office of an agency, named as in its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester {
    /// `agency.office`, e.g. `market-regulation.licensing`.
    pub name: String,
    /// The agency, e.g. `market-regulation`.
    pub agency: String,
    /// Its role, which rules may name instead of listing offices.
    pub role: String,
    /// What it is.
    pub description: String,
    /// Indices of the purposes it may ask for.
    pub purposes: Vec<usize>,
    /// Its rate limits.
    pub rate_limit: RateLimit,
}

/// One rule, with every name resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Stable id, shown in explanations and denials.
    pub id: String,
    /// grant, limit or deny.
    pub effect: Effect,
    /// For grants the transform granted; for limits the cap; `omit` for denies.
    pub transform: FieldTransform,
    /// Requester indices matched.
    pub requesters: Vec<usize>,
    /// Purpose indices matched.
    pub purposes: Vec<usize>,
    /// (dataset index in [`Federation::datasets`] order, field indices) matched.
    pub targets: Vec<(usize, Vec<usize>)>,
    /// Grants only: the request must cite one of these legal bases.
    pub legal_basis: Vec<String>,
    /// Grants only: the request must carry the subject's consent.
    pub consent: bool,
    /// The rule applies from this date (inclusive).
    pub valid_from: Option<time::Date>,
    /// The rule applies until this date (inclusive).
    pub valid_until: Option<time::Date>,
    /// Limits only: records older than this are not released.
    pub max_record_age: Option<RecordAge>,
    /// Why the rule exists, in plain language.
    pub rationale: String,
    /// Where the rule is.
    pub location: Location,
    /// The subject as written, for explanations (`requesters`, `purposes`, `datasets`, `fields`).
    pub written: WrittenSubject,
}

/// A rule's subject as the officer wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WrittenSubject {
    /// As written: requesters/roles.
    pub who: String,
    /// As written: purposes.
    pub purposes: String,
    /// As written: datasets and fields/classes.
    pub what: String,
}

impl Rule {
    /// Whether the request-dependent conditions hold (validity dates, legal basis, consent).
    /// `purpose_bases` is the request's purpose's own `legal_bases`: a grant that cites
    /// none needs one of those instead, so a basis the purpose does not accept never
    /// releases anything.
    pub fn conditions_hold(
        &self,
        legal_basis: Option<&str>,
        purpose_bases: &[String],
        consent: bool,
        today: time::Date,
    ) -> bool {
        let bases = self.legal_bases_under(purpose_bases);
        self.valid_on(today)
            && (bases.is_empty() || legal_basis.is_some_and(|b| bases.iter().any(|l| l == b)))
            && (!self.consent || consent)
    }

    /// The legal bases the rule needs one of under a purpose accepting `purpose_bases`:
    /// its own list, or for a grant citing none, the purpose's.
    pub fn legal_bases_under<'s>(&'s self, purpose_bases: &'s [String]) -> &'s [String] {
        if self.legal_basis.is_empty() && self.effect == Effect::Grant {
            purpose_bases
        } else {
            &self.legal_basis
        }
    }

    /// Whether the outcome of the rule depends on the request beyond its subject, for a
    /// request under a purpose accepting `purpose_bases`.
    pub fn is_conditional_under(&self, purpose_bases: &[String]) -> bool {
        self.is_conditional() || !self.legal_bases_under(purpose_bases).is_empty()
    }

    /// Whether `today` is within the rule's validity dates.
    pub fn valid_on(&self, today: time::Date) -> bool {
        self.valid_from.is_none_or(|f| today >= f) && self.valid_until.is_none_or(|u| today <= u)
    }

    /// Whether the outcome of the rule depends on the request beyond its subject.
    pub fn is_conditional(&self) -> bool {
        !self.legal_basis.is_empty()
            || self.consent
            || self.valid_from.is_some()
            || self.valid_until.is_some()
            || self.max_record_age.is_some()
    }

    /// The conditions in words, e.g. "with legal basis `X`; with consent; from 2026-01-01".
    pub fn conditions_text(&self) -> String {
        self.conditions_text_under(&[])
    }

    /// [`Rule::conditions_text`] under a purpose accepting `purpose_bases`.
    pub fn conditions_text_under(&self, purpose_bases: &[String]) -> String {
        let mut parts = Vec::new();
        let bases = self.legal_bases_under(purpose_bases);
        if !bases.is_empty() {
            parts.push(format!(
                "citing {}",
                bases
                    .iter()
                    .map(|b| format!("`{b}`"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ));
        }
        if self.consent {
            parts.push("with the subject's consent".to_owned());
        }
        if let Some(f) = self.valid_from {
            parts.push(format!("from {}", crate::value::iso_date::format(f)));
        }
        if let Some(u) = self.valid_until {
            parts.push(format!("until {}", crate::value::iso_date::format(u)));
        }
        if let Some(a) = self.max_record_age {
            parts.push(format!("records at most {a} old"));
        }
        parts.join("; ")
    }
}

/// What a view computes.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum ViewKind {
    /// Active serious-dishonesty listings: list, since, until (seed §十四, §十五).
    Blacklist,
    /// No negative record in the last N years (seed §十三).
    GreenChannel,
    /// The person's own records (seed §十二, authorized query).
    CreditReport,
    /// Points and grade from declared weights (seed §十二).
    IntegrityScore,
}

/// A condition on a record: `field` holds one of `values`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveIf {
    /// The field.
    pub field: String,
    /// The values that make the record active.
    pub values: Vec<String>,
}

/// One dataset a view draws on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewSource {
    /// Dataset index.
    pub dataset: usize,
    /// `department.dataset`.
    pub dataset_name: String,
    /// A label for reports (the list's name, the category).
    pub label: String,
    /// (field index, the transform the view needs).
    pub needs: Vec<(usize, FieldTransform)>,
    /// Blacklist: the listing date field.
    pub since: Option<String>,
    /// Blacklist: the removal date field.
    pub until: Option<String>,
    /// Blacklist: records count as listings only when this holds.
    pub active_if: Option<ActiveIf>,
    /// Integrity score: points per record (negative for dishonesty).
    pub points_per_record: i64,
    /// Integrity score: the most this source can add or take away.
    pub max_points: Option<i64>,
    /// Only records at most this old are used.
    pub max_record_age: Option<RecordAge>,
}

/// A grade threshold of an integrity score.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grade {
    /// Lowest points for the grade.
    pub min_points: i64,
    /// The grade, e.g. `AAA`.
    pub grade: String,
}

/// A named view declared in the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// Name, e.g. `blacklist-check`.
    pub name: String,
    /// What it computes.
    pub kind: ViewKind,
    /// What it is, read aloud.
    pub description: String,
    /// Its sources.
    pub sources: Vec<ViewSource>,
    /// Green channel: years without a negative record.
    pub clean_years: u32,
    /// Integrity score: starting points.
    pub base_points: i64,
    /// Integrity score: grades, highest threshold first.
    pub grades: Vec<Grade>,
    /// Purpose indices the view may be asked for; empty means any purpose (the field
    /// grants still decide what each source releases).
    pub purposes: Vec<usize>,
    /// Source fields the view's answer carries beside its result, declared with
    /// `release = ["department.dataset.field", …]`. Empty (the default): the requester
    /// gets the view's result and the per-source completeness, none of the sources'
    /// records.
    pub release: Vec<ViewRelease>,
}

/// One source field a view declares it releases beside its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewRelease {
    /// `department.dataset`, one of the view's sources.
    pub dataset: String,
    /// The field, one the source `needs`.
    pub field: String,
    /// The form the view needs it in (what the node releases at most).
    pub transform: FieldTransform,
}

/// What a `[[test]]` expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// The request is refused as a whole.
    Refused,
    /// The request is decided; listed fields get these transforms (`dataset.field` keys
    /// for views, field names otherwise).
    Decided {
        /// Field → expected transform.
        fields: Vec<(String, FieldTransform)>,
        /// Views: whether every source gets what it needs.
        satisfied: Option<bool>,
    },
}

/// A `[[test]]` case embedded in the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestCase {
    /// Its name.
    pub name: String,
    /// The pinned "now".
    pub now: time::Date,
    /// Requester name (not validated: a test may check an unknown requester is refused).
    pub requester: String,
    /// Purpose name.
    pub purpose: String,
    /// Cited legal basis.
    pub legal_basis: Option<String>,
    /// Consent reference.
    pub consent: Option<String>,
    /// Cited case reference.
    pub case_reference: Option<String>,
    /// Dataset asked for, or
    pub dataset: Option<String>,
    /// view asked for.
    pub view: Option<String>,
    /// Fields asked for (all when empty).
    pub fields: Vec<String>,
    /// What should happen.
    pub expect: Expected,
    /// Where the test is.
    pub location: Location,
}

/// A parsed, fully validated policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The policy version, written into every audit entry.
    pub version: String,
    /// Title.
    pub title: String,
    /// SHA-256 of the policy text, hex: identifies exactly which text decided.
    pub content_hash: String,
    /// Catalogue directory relative to the policy file, if the policy names one (CLI use).
    pub catalogue_dir: Option<String>,
    /// Declared purposes.
    pub purposes: Vec<Purpose>,
    /// Declared requesters.
    pub requesters: Vec<Requester>,
    /// Rules in file order (order never changes a decision).
    pub rules: Vec<Rule>,
    /// Declared views.
    pub views: Vec<View>,
    /// Embedded tests.
    pub tests: Vec<TestCase>,
    /// The federation the policy was validated against.
    pub federation: Federation,
}

impl Policy {
    /// Every legal basis some rule cites (`legal_basis = [...]`) or some purpose accepts
    /// (`legal_bases = [...]`), in order: the only legal bases a request may cite, and the
    /// only ones an audit entry records.
    pub fn cited_legal_bases(&self) -> std::collections::BTreeSet<&str> {
        self.rules
            .iter()
            .flat_map(|r| r.legal_basis.iter().map(String::as_str))
            .chain(
                self.purposes
                    .iter()
                    .flat_map(|p| p.legal_bases.iter().map(String::as_str)),
            )
            .collect()
    }

    /// The legal bases a request for purpose `purpose` (an index) may cite: those its
    /// rules cite and the purpose's own list.
    pub fn legal_bases_for(&self, purpose: usize) -> std::collections::BTreeSet<&str> {
        self.rules
            .iter()
            .filter(|r| r.purposes.contains(&purpose))
            .flat_map(|r| r.legal_basis.iter().map(String::as_str))
            .chain(
                self.purposes
                    .get(purpose)
                    .into_iter()
                    .flat_map(|p| p.legal_bases.iter().map(String::as_str)),
            )
            .collect()
    }

    /// The case reference `reference` as an audit entry may record it under `purpose`:
    /// only when the purpose declares a case-reference form and the reference has it
    /// (anything else could be whatever a requester typed).
    pub fn recordable_case<'r>(
        &self,
        purpose: &str,
        reference: Option<&'r str>,
    ) -> Option<&'r str> {
        let reference = reference?;
        self.purposes
            .iter()
            .find(|p| p.name == purpose)?
            .case_reference
            .as_ref()
            .filter(|c| c.matches(reference))
            .map(|_| reference)
    }
}

// ---------------------------------------------------------------------------------
// The file format.

#[derive(Deserialize)]
#[serde(untagged)]
enum RawVersion {
    Text(String),
    Number(i64),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    version: Spanned<RawVersion>,
    #[serde(default)]
    title: String,
    catalogue: Option<String>,
    #[serde(default, rename = "purpose")]
    purposes: Vec<RawPurpose>,
    #[serde(default, rename = "requester")]
    requesters: Vec<RawRequester>,
    #[serde(default, rename = "rule")]
    rules: Vec<RawRule>,
    #[serde(default, rename = "view")]
    views: Vec<RawView>,
    #[serde(default, rename = "test")]
    tests: Vec<RawTest>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPurpose {
    name: Spanned<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    legal_basis_required: bool,
    #[serde(default)]
    consent_required: bool,
    case_reference: Option<Spanned<RawCaseReference>>,
    #[serde(default)]
    legal_bases: Vec<Spanned<String>>,
    #[serde(default)]
    aggregate_only: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCaseReference {
    pattern: Spanned<String>,
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRate {
    per_minute: Option<u32>,
    per_day: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequester {
    name: Spanned<String>,
    role: Spanned<String>,
    #[serde(default)]
    description: String,
    purposes: Vec<Spanned<String>>,
    rate_limit: Option<RawRate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: Spanned<String>,
    effect: Spanned<Effect>,
    requesters: Option<Vec<Spanned<String>>>,
    roles: Option<Vec<Spanned<String>>>,
    purposes: Option<Vec<Spanned<String>>>,
    datasets: Option<Vec<Spanned<String>>>,
    fields: Option<Vec<Spanned<String>>>,
    classes: Option<Vec<Spanned<String>>>,
    transform: Option<Spanned<String>>,
    #[serde(default)]
    legal_basis: Vec<Spanned<String>>,
    consent: Option<Spanned<bool>>,
    valid_from: Option<Spanned<toml::value::Datetime>>,
    valid_until: Option<Spanned<toml::value::Datetime>>,
    max_record_age: Option<Spanned<String>>,
    rationale: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawActiveIf {
    field: Spanned<String>,
    #[serde(rename = "in")]
    values: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    dataset: Spanned<String>,
    label: Option<String>,
    needs: Spanned<toml::Table>,
    since: Option<Spanned<String>>,
    until: Option<Spanned<String>>,
    active_if: Option<RawActiveIf>,
    #[serde(default)]
    points_per_record: i64,
    max_points: Option<i64>,
    max_record_age: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrade {
    min_points: i64,
    grade: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawView {
    name: Spanned<String>,
    kind: Spanned<ViewKind>,
    #[serde(default)]
    description: String,
    #[serde(default, rename = "source")]
    sources: Vec<RawSource>,
    clean_years: Option<u32>,
    #[serde(default)]
    base_points: i64,
    #[serde(default, rename = "grade")]
    grades: Vec<RawGrade>,
    #[serde(default)]
    purposes: Vec<Spanned<String>>,
    #[serde(default)]
    release: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    decision: Spanned<String>,
    #[serde(default)]
    fields: Option<Spanned<toml::Table>>,
    satisfied: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTest {
    name: Spanned<String>,
    now: Spanned<toml::value::Datetime>,
    requester: String,
    purpose: String,
    legal_basis: Option<String>,
    consent: Option<String>,
    case_reference: Option<String>,
    dataset: Option<Spanned<String>>,
    view: Option<Spanned<String>>,
    #[serde(default)]
    fields: Vec<String>,
    expect: RawExpect,
}

fn date_of(
    diag: &mut Diagnostics<'_>,
    d: &Spanned<toml::value::Datetime>,
    what: &str,
) -> Option<time::Date> {
    let v = d.get_ref();
    match (v.date, v.time) {
        (Some(date), None) => {
            let month = time::Month::try_from(date.month).ok();
            month.and_then(|m| {
                time::Date::from_calendar_date(i32::from(date.year), m, date.day).ok()
            })
        }
        _ => {
            diag.error(
                d.span(),
                format!("`{what}` must be a plain date like 2026-01-01, without a time"),
            );
            None
        }
    }
}

fn sha256_hex(text: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

impl Policy {
    /// Parses and validates a policy against the federation's catalogues. Every unknown
    /// name (dataset, field, class, purpose, requester, role, view, transform) is an
    /// error located at `file:line:column`; all errors are reported at once.
    pub fn parse(
        text: &str,
        file_name: &str,
        federation: &Federation,
    ) -> Result<Policy, LocatedErrors> {
        let raw: RawPolicy =
            toml::from_str(text).map_err(|e| Diagnostics::from_toml(file_name, text, &e))?;
        let mut diag = Diagnostics::new(file_name, text);
        let datasets: Vec<&crate::catalogue::Dataset> = federation.datasets().collect();

        let version = match raw.version.get_ref() {
            RawVersion::Text(s) => s.clone(),
            RawVersion::Number(n) => n.to_string(),
        };
        if version.trim().is_empty() {
            diag.error(
                raw.version.span(),
                "`version` must not be empty; it is written into every audit entry",
            );
        }

        // Purposes.
        let mut purposes: Vec<Purpose> = Vec::new();
        for p in &raw.purposes {
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
        let purpose_index = |n: &str| purposes.iter().position(|p| p.name == n);
        let purpose_names = || {
            purposes
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };

        // Requesters.
        let mut requesters: Vec<Requester> = Vec::new();
        for r in &raw.requesters {
            let name = r.name.get_ref();
            let agency = match name.split_once('.') {
                Some((a, o)) if !a.is_empty() && !o.is_empty() => a.to_owned(),
                _ => {
                    diag.error(r.name.span(), format!("requester `{name}` must be `agency.office`, as in its certificate, e.g. `market-regulation.licensing`"));
                    String::new()
                }
            };
            if requesters.iter().any(|q| &q.name == name) {
                diag.error(
                    r.name.span(),
                    format!("requester `{name}` is declared twice"),
                );
            }
            let mut ps = Vec::new();
            for p in &r.purposes {
                match purpose_index(p.get_ref()) {
                    Some(i) => ps.push(i),
                    None => diag.error(
                        p.span(),
                        format!(
                            "unknown purpose `{}`; declared purposes are: {}",
                            p.get_ref(),
                            purpose_names()
                        ),
                    ),
                }
            }
            let rate_limit = r
                .rate_limit
                .as_ref()
                .map_or(RateLimit::default(), |l| RateLimit {
                    per_minute: l.per_minute,
                    per_day: l.per_day,
                });
            requesters.push(Requester {
                name: name.clone(),
                agency,
                role: r.role.get_ref().clone(),
                description: r.description.clone(),
                purposes: ps,
                rate_limit,
            });
        }
        let requester_names = || {
            requesters
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };

        // Rules.
        let mut rules = Vec::new();
        let mut ids = BTreeSet::new();
        for r in &raw.rules {
            let id = r.id.get_ref().clone();
            if !ids.insert(id.clone()) {
                diag.error(
                    r.id.span(),
                    format!("rule id `{id}` is used twice; every rule needs its own id"),
                );
            }
            let effect = *r.effect.get_ref();
            let loc = diag.at(r.id.span());

            // Who.
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
                                diag.error(q.span(), format!("no declared requester belongs to agency `{agency}`; declared requesters are: {}", requester_names()));
                            }
                            who_text.push(q.get_ref().clone());
                        } else {
                            match requesters.iter().position(|x| &x.name == q.get_ref()) {
                                Some(i) => who.push(i),
                                None => diag.error(q.span(), format!("unknown requester `{}`; declared requesters are: {}", q.get_ref(), requester_names())),
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

            // Purposes.
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
                            match purpose_index(p.get_ref()) {
                                Some(i) => ps.push(i),
                                None => diag.error(p.span(), format!("unknown purpose `{}`; declared purposes are: {}", p.get_ref(), purpose_names())),
                            }
                            purposes_text.push(p.get_ref().clone());
                        }
                    }
                }
            }
            ps.sort_unstable();
            ps.dedup();

            // What.
            let mut ds: Vec<usize> = Vec::new();
            let mut what_text = Vec::new();
            match &r.datasets {
                None => diag.error(r.id.span(), format!("rule `{id}` names no datasets; add `datasets = [\"department.dataset\", ...]`")),
                Some(list) => {
                    for d in list {
                        let name = d.get_ref();
                        if name == "*" {
                            ds.extend(0..datasets.len());
                        } else if let Some(dept) = name.strip_suffix(".*") {
                            let before = ds.len();
                            ds.extend(datasets.iter().enumerate().filter(|(_, x)| x.department == dept).map(|(i, _)| i));
                            if ds.len() == before {
                                diag.error(d.span(), format!("unknown department `{dept}`; catalogues exist for: {}", federation.catalogues.iter().map(|c| c.department.as_str()).collect::<Vec<_>>().join(", ")));
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

            // A subject no request can have is a silent no-op: say so.
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

            // Transform.
            let transform = match (effect, &r.transform) {
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
            };

            // A transform that cannot apply to a field the rule names explicitly is a
            // mistake (bucket of an enum would silently become count): say so.
            if effect != Effect::Deny && !all_fields {
                for f in r.fields.iter().flatten() {
                    for (d, _) in &targets {
                        let Some(field) = datasets.get(*d).and_then(|ds| ds.field(f.get_ref()))
                        else {
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

            // Conditions.
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
                .and_then(|d| date_of(&mut diag, d, "valid_from"));
            let valid_until = r
                .valid_until
                .as_ref()
                .and_then(|d| date_of(&mut diag, d, "valid_until"));
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

        // A purpose that requires a legal basis must accept one, or every request for it
        // would be refused.
        for (i, (raw_p, p)) in raw.purposes.iter().zip(&purposes).enumerate() {
            let accepted = !p.legal_bases.is_empty()
                || rules
                    .iter()
                    .any(|r: &Rule| r.purposes.contains(&i) && !r.legal_basis.is_empty());
            if p.legal_basis_required && !accepted {
                diag.error(raw_p.name.span(), format!("purpose `{}` requires a legal basis but accepts none: neither it nor any rule for it names one; add `legal_bases = [...]` to the purpose", p.name));
            }
        }

        // Views.
        let mut views: Vec<View> = Vec::new();
        for v in &raw.views {
            let name = v.name.get_ref().clone();
            if views.iter().any(|w| w.name == name) {
                diag.error(v.name.span(), format!("view `{name}` is declared twice"));
            }
            let kind = *v.kind.get_ref();
            if v.sources.is_empty() {
                diag.error(v.name.span(), format!("view `{name}` has no sources; add `[[view.source]]` tables naming the datasets it needs"));
            }
            let mut sources: Vec<ViewSource> = Vec::new();
            for s in &v.sources {
                let Some(di) = datasets
                    .iter()
                    .position(|x| &x.qualified == s.dataset.get_ref())
                else {
                    diag.error(s.dataset.span(), format!("unknown dataset `{}` in view `{name}`; expected `department.dataset` from the catalogue", s.dataset.get_ref()));
                    continue;
                };
                let Some(dataset) = datasets.get(di) else {
                    continue;
                };
                if sources.iter().any(|x| x.dataset == di) {
                    diag.error(
                        s.dataset.span(),
                        format!(
                            "dataset `{}` appears twice in view `{name}`",
                            dataset.qualified
                        ),
                    );
                }
                let mut needs = Vec::new();
                for (fname, t) in s.needs.get_ref() {
                    let Some(fi) = dataset.field_index(fname) else {
                        diag.error(s.needs.span(), format!("unknown field `{fname}` in `needs` of view `{name}`; dataset `{}` has: {}", dataset.qualified, dataset.fields.iter().map(|x| x.name.as_str()).collect::<Vec<_>>().join(", ")));
                        continue;
                    };
                    match t.as_str().map(str::parse::<FieldTransform>) {
                        Some(Ok(t)) => {
                            if let Some(field) = dataset.fields.get(fi) {
                                if !t.applies_to(field) {
                                    diag.error(
                                        s.needs.span(),
                                        format!(
                                            "view `{name}` needs `{t}` of field `{fname}` ({}), which it can never get; use one of: {}",
                                            crate::catalogue::type_name(field.ty),
                                            FieldTransform::ALL
                                                .iter()
                                                .filter(|x| x.applies_to(field))
                                                .map(|x| x.name())
                                                .collect::<Vec<_>>()
                                                .join(", ")
                                        ),
                                    );
                                }
                            }
                            needs.push((fi, t));
                        }
                        Some(Err(e)) => diag.error(s.needs.span(), format!("field `{fname}`: {e}")),
                        None => diag.error(s.needs.span(), format!("field `{fname}` needs a transform name in quotes, e.g. `{fname} = \"exists\"`")),
                    }
                }
                let mut field_ref = |r: &Option<Spanned<String>>, what: &str| -> Option<String> {
                    let r = r.as_ref()?;
                    if dataset.field_index(r.get_ref()).is_none() {
                        diag.error(
                            r.span(),
                            format!(
                                "`{what}` names unknown field `{}` of dataset `{}`",
                                r.get_ref(),
                                dataset.qualified
                            ),
                        );
                    } else if !needs.iter().any(|(fi, _)| {
                        dataset
                            .fields
                            .get(*fi)
                            .is_some_and(|f| &f.name == r.get_ref())
                    }) {
                        diag.error(
                            r.span(),
                            format!(
                                "`{what}` field `{}` must also be listed in `needs`",
                                r.get_ref()
                            ),
                        );
                    }
                    Some(r.get_ref().clone())
                };
                let since = field_ref(&s.since, "since");
                let until = field_ref(&s.until, "until");
                let active_if = s.active_if.as_ref().map(|a| {
                    if dataset.field_index(a.field.get_ref()).is_none() {
                        diag.error(
                            a.field.span(),
                            format!(
                                "`active_if` names unknown field `{}` of dataset `{}`",
                                a.field.get_ref(),
                                dataset.qualified
                            ),
                        );
                    }
                    ActiveIf {
                        field: a.field.get_ref().clone(),
                        values: a.values.clone(),
                    }
                });
                if kind == ViewKind::Blacklist && since.is_none() {
                    diag.error(
                        s.dataset.span(),
                        format!(
                            "a blacklist source needs `since`, the listing date field of `{}`",
                            dataset.qualified
                        ),
                    );
                }
                let max_record_age = s.max_record_age.as_ref().and_then(|a| {
                    let parsed = RecordAge::parse(a.get_ref());
                    if parsed.is_none() {
                        diag.error(a.span(), format!("record age `{}` is not understood; expected e.g. `1y`, `6m`, `90d`", a.get_ref()));
                    }
                    parsed
                });
                if needs.is_empty() {
                    diag.error(s.needs.span(), format!("view `{name}` source `{}` needs at least one field, e.g. `needs = {{ {} = \"exists\" }}`", dataset.qualified, dataset.key));
                }
                sources.push(ViewSource {
                    dataset: di,
                    dataset_name: dataset.qualified.clone(),
                    label: s
                        .label
                        .clone()
                        .unwrap_or_else(|| dataset.description.clone()),
                    needs,
                    since,
                    until,
                    active_if,
                    points_per_record: s.points_per_record,
                    max_points: s.max_points,
                    max_record_age,
                });
            }
            let clean_years = v.clean_years.unwrap_or(3);
            if kind == ViewKind::GreenChannel {
                // The view's own window: only records of the last `clean_years` count.
                for s in &mut sources {
                    if s.max_record_age.is_none() {
                        s.max_record_age = Some(RecordAge::Years(clean_years));
                    }
                }
            }
            let mut grades: Vec<Grade> = v
                .grades
                .iter()
                .map(|g| Grade {
                    min_points: g.min_points,
                    grade: g.grade.clone(),
                })
                .collect();
            grades.sort_by_key(|g| std::cmp::Reverse(g.min_points));
            if kind == ViewKind::IntegrityScore && grades.is_empty() {
                diag.error(v.name.span(), format!("integrity-score view `{name}` needs `[[view.grade]]` tables (min_points, grade)"));
            }
            let mut view_purposes = Vec::new();
            for p in &v.purposes {
                match purpose_index(p.get_ref()) {
                    Some(i) => view_purposes.push(i),
                    None => diag.error(
                        p.span(),
                        format!(
                            "unknown purpose `{}`; declared purposes are: {}",
                            p.get_ref(),
                            purpose_names()
                        ),
                    ),
                }
            }
            let mut release: Vec<ViewRelease> = Vec::new();
            for r in &v.release {
                let text = r.get_ref();
                let Some((dataset, field)) = text.rsplit_once('.') else {
                    diag.error(r.span(), format!("`release` item `{text}` of view `{name}` is not `department.dataset.field`"));
                    continue;
                };
                let Some(source) = sources.iter().find(|s| s.dataset_name == dataset) else {
                    diag.error(
                        r.span(),
                        format!(
                            "`release` item `{text}` of view `{name}` names `{dataset}`, which is not one of its sources; its sources are: {}",
                            sources.iter().map(|s| s.dataset_name.as_str()).collect::<Vec<_>>().join(", ")
                        ),
                    );
                    continue;
                };
                let Some(ds) = datasets.get(source.dataset) else {
                    continue;
                };
                let needed: Vec<(&str, FieldTransform)> = source
                    .needs
                    .iter()
                    .filter_map(|(fi, t)| ds.fields.get(*fi).map(|f| (f.name.as_str(), *t)))
                    .collect();
                let Some((_, transform)) = needed.iter().find(|(f, _)| *f == field) else {
                    let problem = if ds.field_index(field).is_none() {
                        "is not a field of the dataset"
                    } else {
                        "is not one the source `needs`, so no node releases it for the view"
                    };
                    diag.error(
                        r.span(),
                        format!(
                            "`release` item `{text}` of view `{name}`: `{field}` {problem}; the source needs: {}",
                            needed.iter().map(|(f, _)| *f).collect::<Vec<_>>().join(", ")
                        ),
                    );
                    continue;
                };
                if release
                    .iter()
                    .any(|x| x.dataset == dataset && x.field == field)
                {
                    diag.error(
                        r.span(),
                        format!("`release` item `{text}` of view `{name}` is listed twice"),
                    );
                    continue;
                }
                release.push(ViewRelease {
                    dataset: dataset.to_owned(),
                    field: field.to_owned(),
                    transform: *transform,
                });
            }
            views.push(View {
                release,
                purposes: view_purposes,
                name,
                kind,
                description: v.description.clone(),
                sources,
                clean_years,
                base_points: v.base_points,
                grades,
            });
        }

        // Tests.
        let mut tests = Vec::new();
        for t in &raw.tests {
            let Some(now) = date_of(&mut diag, &t.now, "now") else {
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

        diag.finish(Policy {
            version,
            title: raw.title,
            content_hash: sha256_hex(text),
            catalogue_dir: raw.catalogue,
            purposes,
            requesters,
            rules,
            views,
            tests,
            federation: federation.clone(),
        })
    }

    /// The datasets in index order.
    pub fn datasets(&self) -> Vec<&crate::catalogue::Dataset> {
        self.federation.datasets().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_age_cutoffs() {
        let today = crate::value::parse_date("2026-03-31").unwrap();
        assert_eq!(
            RecordAge::Years(1).cutoff(today),
            crate::value::parse_date("2025-03-31").unwrap()
        );
        assert_eq!(
            RecordAge::Months(1).cutoff(today),
            crate::value::parse_date("2026-02-28").unwrap()
        );
        assert_eq!(
            RecordAge::Days(31).cutoff(today),
            crate::value::parse_date("2026-02-28").unwrap()
        );
        assert_eq!(RecordAge::parse("6m"), Some(RecordAge::Months(6)));
        assert_eq!(RecordAge::parse("0y"), None);
        assert_eq!(RecordAge::parse("y"), None);
    }
}
