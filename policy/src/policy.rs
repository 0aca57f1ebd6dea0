//! The policy language: what a validated policy is — purposes, requesters, rules, views
//! and tests, every name resolved to an index — and what a rule or purpose says about a
//! request. Reading and validating the TOML is [`Policy::parse`] (the `validate` module);
//! compiling into a decision table is the engine's ([`Policy::compile`]).
//!
//! Nothing here reads files or the clock: the text, the catalogues and "now" are inputs.

use serde::Deserialize;

use crate::catalogue::Federation;
use crate::location::Location;
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
    /// The person's rights this purpose serves (`rights = [...]`, issue 19): what a
    /// request for it may ask of the nodes besides records (their register of queries
    /// about the person, an objection, a repair application, the repair applications for
    /// review). Empty: none.
    pub rights: Vec<Right>,
    /// Entries of queries for this purpose are hidden from the person's own register for
    /// a period after the query (`hidden_from_subject`), e.g. judgment enforcement, whose
    /// inquiries told to the debtor at once could let assets be moved. They are counted
    /// while hidden and shown afterwards.
    pub hidden_from_subject: Option<HiddenFromSubject>,
}

/// One of the person's rights a request can exercise (长政办发〔2017〕62号 §八, §九, §十, §十二).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Right {
    /// Who looked at my data: the node's register of queries about the person, with the
    /// person's objections and repairs and their status.
    Register,
    /// An objection (异议) to one record.
    Object,
    /// An application to repair one record (信用修复, §十).
    ApplyRepair,
    /// The credit-repair review office reads one person's repair applications and the
    /// records they concern.
    RepairApplications,
}

impl Right {
    /// Every right, in a fixed order.
    pub const ALL: [Right; 4] = [
        Right::Register,
        Right::Object,
        Right::ApplyRepair,
        Right::RepairApplications,
    ];

    /// Its name in the policy, in requests and in consent tokens (`rights:NAME`).
    pub fn as_str(self) -> &'static str {
        match self {
            Right::Register => "register",
            Right::Object => "object",
            Right::ApplyRepair => "apply-repair",
            Right::RepairApplications => "repair-applications",
        }
    }

    /// The right named `name`.
    pub fn parse(name: &str) -> Option<Right> {
        Right::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// Whether exercising it files something at the node (and so names one dataset).
    pub fn names_a_dataset(self) -> bool {
        !matches!(self, Right::Register)
    }
}

impl std::fmt::Display for Right {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How long a purpose's entries stay out of the person's register, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HiddenFromSubject {
    /// Days after the query.
    pub days: u32,
    /// Why, in the policy's words (shown to the person with the count).
    pub reason: String,
}

/// Longest a purpose's entries may be hidden from the person, in days (five years).
pub const MAX_HIDDEN_DAYS: u32 = 1826;

/// What requesters see of a record the person objected to while the objection is open
/// (`disputed_records`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DisputedRecords {
    /// Shown, flagged as disputed, and not used by any view's verdict (the blacklist
    /// check, the green channel) until the objection is resolved. The default.
    #[default]
    Flag,
    /// Not released at all until the objection is resolved.
    Withhold,
}

impl DisputedRecords {
    /// Its name in the policy.
    pub fn as_str(self) -> &'static str {
        match self {
            DisputedRecords::Flag => "flag",
            DisputedRecords::Withhold => "withhold",
        }
    }
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
    pub fn new(pattern: &str, description: &str) -> Result<CaseReference, BadPattern> {
        let regex = regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
            .size_limit(1 << 20)
            .build()
            .map_err(|source| BadPattern { source })?;
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

/// Why a case-reference pattern does not compile: the last line of the regular-expression
/// error (the one saying what is wrong), or that the pattern is too big.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", describe_regex_error(.source))]
pub struct BadPattern {
    /// The regular-expression error.
    #[source]
    pub source: regex::Error,
}

fn describe_regex_error(e: &regex::Error) -> String {
    match e {
        regex::Error::Syntax(s) => s.lines().last().unwrap_or_default().trim().to_owned(),
        regex::Error::CompiledTooBig(n) => {
            format!("the compiled pattern would exceed {n} bytes; simplify it")
        }
        other => other.to_string(),
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
    /// Active serious-dishonesty listings: list, since, until (长政办发〔2017〕62号 §十四, §十五).
    Blacklist,
    /// No negative record in the last N years (长政办发〔2017〕62号 §十三).
    GreenChannel,
    /// The person's own records (长政办发〔2017〕62号 §十二, authorized query).
    CreditReport,
    /// Points and grade from declared weights (长政办发〔2017〕62号 §十二).
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
    /// How many days the bodies of audit entries are kept (`audit_retention_days`): older
    /// ones are shredded, their hashes kept so every log and checkpoint still verifies.
    /// `None`: kept for good.
    pub audit_retention_days: Option<u32>,
    /// What requesters see of a disputed record (`disputed_records`, default `flag`).
    pub disputed_records: DisputedRecords,
    /// The officer certificates (by name) whose signed decisions a node accepts for a
    /// credit repair, its rejection or its reversal (`repair_approvers`; issue 19). None:
    /// no repair can be recorded.
    pub repair_approvers: Vec<String>,
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
    /// The `[statistics]` table: who may ask aggregate queries and with what privacy
    /// (issue 20 §2); `None` allows none.
    pub statistics: Option<crate::statistics::Statistics>,
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

impl Policy {
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
