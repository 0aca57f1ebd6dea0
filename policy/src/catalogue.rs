//! The catalogue (信用信息目录): which datasets a department holds, their fields, each
//! field's type and class, and the facts the law needs (which date starts the disclosure
//! window, which field records credit repair). One TOML file per department node; the
//! [`Federation`] is the set of them that a policy is validated against.
//!
//! This module parses text it is handed; it never reads files.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use toml::Spanned;

use crate::location::{Diagnostics, LocatedErrors};
use crate::resident_id::is_resident_id;
use crate::value::{parse_amount, parse_date, BadValue, Value};

/// The type of a field's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// Free text.
    String,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// Money in yuan (stored in fen).
    Amount,
    /// A whole number.
    Integer,
    /// One of the field's declared `values`.
    Enum,
    /// An 18-character resident ID (公民身份号码).
    ResidentId,
}

/// What a field says about the person — rules can grant or deny a whole class at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldClass {
    /// Identifies the person or the record (resident ID, case number).
    Identifier,
    /// Basic facts (name, dates, which office).
    Basic,
    /// Facts of dishonesty (失信信息).
    Negative,
    /// Facts of good conduct (守信信息).
    Positive,
    /// Sensitive facts (health, family, exact amounts owed) released only with care.
    Sensitive,
}

impl FieldClass {
    /// The word used in catalogue and policy files.
    pub fn name(self) -> &'static str {
        match self {
            FieldClass::Identifier => "identifier",
            FieldClass::Basic => "basic",
            FieldClass::Negative => "negative",
            FieldClass::Positive => "positive",
            FieldClass::Sensitive => "sensitive",
        }
    }

    /// Parses the word used in files.
    pub fn parse(s: &str) -> Option<FieldClass> {
        [
            FieldClass::Identifier,
            FieldClass::Basic,
            FieldClass::Negative,
            FieldClass::Positive,
            FieldClass::Sensitive,
        ]
        .into_iter()
        .find(|c| c.name() == s)
    }
}

/// Whether the statutory disclosure window applies to a dataset's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetKind {
    /// Dishonesty records (不良信用信息): shown for the disclosure window only, and not
    /// after credit repair (长政办发〔2017〕62号 §十).
    Negative,
    /// Good-conduct records (守信信息): no window.
    Positive,
    /// Reference facts (identity basics): no window.
    Neutral,
}

/// One field of a dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Name, as in the import CSV header.
    pub name: String,
    /// Type of its values.
    pub ty: FieldType,
    /// Class, for rules that speak of classes.
    pub class: FieldClass,
    /// Allowed values of an enum field.
    pub values: Vec<String>,
    /// Ascending range edges for `bucket` (yuan for amounts); empty means `bucket` does
    /// not apply to this field.
    pub buckets: Vec<i64>,
    /// Whether every record must have a value.
    pub required: bool,
    /// What the field holds, for officers.
    pub description: String,
}

/// How a dataset records credit repair (信用修复): records whose `field` holds one of
/// `repaired` are never disclosed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repair {
    /// The status field.
    pub field: String,
    /// Values meaning the record has been repaired (re-performed, paid, …).
    pub repaired: Vec<String>,
}

/// One dataset of a department.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    /// Owning department (the node), e.g. `court`.
    pub department: String,
    /// Name within the department, e.g. `dishonest_debtors`.
    pub name: String,
    /// `department.name`, as policies refer to it.
    pub qualified: String,
    /// What it is, for officers.
    pub description: String,
    /// Negative, positive or neutral.
    pub kind: DatasetKind,
    /// Fields in declaration order.
    pub fields: Vec<Field>,
    /// The field that identifies a record.
    pub key: String,
    /// The field holding the subject's resident ID.
    pub subject: String,
    /// The date field that starts the disclosure window (and measures record age).
    pub window_start: Option<String>,
    /// The repair-status field, if the dataset records repair.
    pub repair: Option<Repair>,
    /// The disclosure window in years (长政办发〔2017〕62号 §十: 3).
    pub disclosure_window_years: u32,
    /// Whether, and how, the dataset is published on the city's credit website
    /// (`[dataset.publication]`; 长政办发〔2017〕62号 §十五 and §三).
    pub publication: Option<Publication>,
}

/// Which public list a dataset's records are published in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PublicList {
    /// Serious-dishonesty cases (个人严重失信信息, §十五): negative datasets only.
    Dishonesty,
    /// Honours, the red list (诚信典型, §三): positive datasets only.
    Honours,
}

impl PublicList {
    /// The word used in catalogue files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            PublicList::Dishonesty => "dishonesty",
            PublicList::Honours => "honours",
        }
    }

    /// Parses the word used in files.
    pub fn parse(s: &str) -> Option<PublicList> {
        [PublicList::Dishonesty, PublicList::Honours]
            .into_iter()
            .find(|l| l.name() == s)
    }
}

/// The form a published field takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PublishedForm {
    /// The value as held (case numbers, courts, dates, categories).
    Clear,
    /// A name masked to its surname: `张**` (the first character, one `*` for each other).
    Surname,
    /// A resident ID masked to its first six and last four characters.
    IdFirst6Last4,
}

impl PublishedForm {
    /// The word used in catalogue files.
    pub fn name(self) -> &'static str {
        match self {
            PublishedForm::Clear => "clear",
            PublishedForm::Surname => "surname",
            PublishedForm::IdFirst6Last4 => "id_first6_last4",
        }
    }
}

/// One published column: a field, its form and its heading on the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedColumn {
    /// The field.
    pub field: String,
    /// Its published form.
    pub form: PublishedForm,
    /// The column's heading (Chinese, as the city's website shows it).
    pub heading: String,
}

/// How a dataset is published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    /// The list it appears in.
    pub list: PublicList,
    /// The category its records are shown under, e.g. `失信被执行人`.
    pub category: String,
    /// How many years from its `window_start` a record is shown: for a negative dataset
    /// at most its disclosure window (the default), for a positive one required.
    pub years: u32,
    /// The published columns, in order; a field not named here is never published.
    pub columns: Vec<PublishedColumn>,
}

/// One record as a node holds it: field name → value (absent fields are `None`/missing).
pub type Record = BTreeMap<String, Value>;

impl Dataset {
    /// The field called `name`.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Index of the field called `name`.
    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }

    /// The date that starts a record's disclosure window and measures its age.
    pub fn record_date(&self, record: &Record) -> Option<time::Date> {
        record.get(self.window_start.as_deref()?)?.as_date()
    }

    /// The law, not a policy option (长政办发〔2017〕62号 §十): a negative record may be disclosed only
    /// within the disclosure window from its start date, and never once repaired. A
    /// negative record without a start date is not disclosed (fail closed).
    pub fn is_disclosable(&self, record: &Record, today: time::Date) -> bool {
        if let Some(repair) = &self.repair {
            if let Some(Value::Text(status)) = record.get(&repair.field) {
                if repair.repaired.iter().any(|r| r == status) {
                    return false;
                }
            }
        }
        match self.kind {
            DatasetKind::Positive | DatasetKind::Neutral => true,
            DatasetKind::Negative => match self.record_date(record) {
                Some(start) => within_years(start, today, self.disclosure_window_years),
                None => false,
            },
        }
    }
}

/// Whether `start` is no more than `years` years before `today`. A `start` after `today`
/// is bad data, not a recent record: the importer refuses it and a node answers a dataset
/// holding one as unverified, so it never reaches this test.
pub fn within_years(start: time::Date, today: time::Date, years: u32) -> bool {
    let years = i32::try_from(years).unwrap_or(i32::MAX);
    let cutoff_year = today.year().saturating_sub(years);
    let cutoff = time::Date::from_calendar_date(cutoff_year, today.month(), today.day())
        .or_else(|_| time::Date::from_calendar_date(cutoff_year, today.month(), 28));
    match cutoff {
        Ok(cutoff) => start > cutoff,
        Err(_) => false,
    }
}

/// One department's catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalogue {
    /// The department (node) name, e.g. `court`.
    pub department: String,
    /// What the department is.
    pub description: String,
    /// Its datasets.
    pub datasets: Vec<Dataset>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalogue {
    department: Spanned<String>,
    #[serde(default)]
    description: String,
    #[serde(default, rename = "dataset")]
    datasets: Vec<RawDataset>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDataset {
    name: Spanned<String>,
    #[serde(default)]
    description: String,
    kind: DatasetKind,
    key: Spanned<String>,
    subject: Spanned<String>,
    window_start: Option<Spanned<String>>,
    repair: Option<RawRepair>,
    disclosure_window_years: Option<Spanned<u32>>,
    publication: Option<Spanned<RawPublication>>,
    #[serde(default, rename = "field")]
    fields: Vec<RawField>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPublication {
    list: PublicList,
    category: String,
    years: Option<Spanned<u32>>,
    #[serde(default, rename = "column")]
    columns: Vec<RawColumn>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawColumn {
    field: Spanned<String>,
    form: Spanned<PublishedForm>,
    heading: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRepair {
    field: Spanned<String>,
    repaired: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawField {
    name: Spanned<String>,
    #[serde(rename = "type")]
    ty: Spanned<FieldType>,
    class: FieldClass,
    #[serde(default)]
    values: Vec<String>,
    #[serde(default)]
    buckets: Option<Spanned<Vec<i64>>>,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    description: String,
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

impl Catalogue {
    /// Parses and validates one department's catalogue. Every problem is reported with
    /// `file:line:column`.
    pub fn parse(text: &str, file_name: &str) -> Result<Catalogue, LocatedErrors> {
        let raw: RawCatalogue =
            toml::from_str(text).map_err(|e| Diagnostics::from_toml(file_name, text, &e))?;
        let mut diag = Diagnostics::new(file_name, text);
        let department = raw.department.get_ref().clone();
        if !is_name(&department) {
            diag.error(
                raw.department.span(),
                format!(
                    "department name `{department}` must be lower-case letters, digits, `-` or `_`"
                ),
            );
        }
        let mut names = BTreeSet::new();
        let mut datasets = Vec::new();
        for d in raw.datasets {
            let name = d.name.get_ref().clone();
            if !is_name(&name) {
                diag.error(
                    d.name.span(),
                    format!("dataset name `{name}` must be lower-case letters, digits, `-` or `_`"),
                );
            }
            if !names.insert(name.clone()) {
                diag.error(d.name.span(), format!("dataset `{name}` is declared twice; give each dataset one `[[dataset]]` table"));
            }
            let mut fields: Vec<Field> = Vec::new();
            for f in d.fields {
                let fname = f.name.get_ref().clone();
                if !is_name(&fname) {
                    diag.error(
                        f.name.span(),
                        format!(
                            "field name `{fname}` must be lower-case letters, digits, `-` or `_`"
                        ),
                    );
                }
                if fields.iter().any(|g| g.name == fname) {
                    diag.error(
                        f.name.span(),
                        format!("field `{fname}` is declared twice in dataset `{name}`"),
                    );
                }
                let ty = *f.ty.get_ref();
                if ty == FieldType::Enum && f.values.is_empty() {
                    diag.error(
                        f.ty.span(),
                        format!(
                            "enum field `{fname}` needs `values = [...]`, the values it may hold"
                        ),
                    );
                }
                if ty != FieldType::Enum && !f.values.is_empty() {
                    diag.error(
                        f.name.span(),
                        format!("field `{fname}` has `values` but is not of type `enum`"),
                    );
                }
                let buckets = match f.buckets {
                    Some(b) => {
                        let ok_type = matches!(ty, FieldType::Amount | FieldType::Integer);
                        let ascending = b.get_ref().windows(2).all(|w| w.first() < w.last());
                        if !ok_type {
                            diag.error(b.span(), format!("field `{fname}` has `buckets` but only amount and integer fields can be bucketed"));
                        } else if b.get_ref().is_empty() || !ascending {
                            diag.error(b.span(), "`buckets` must be a non-empty list of strictly ascending range edges, e.g. [1000, 10000, 100000]");
                        }
                        b.into_inner()
                    }
                    None => Vec::new(),
                };
                fields.push(Field {
                    name: fname,
                    ty,
                    class: f.class,
                    values: f.values,
                    buckets,
                    required: f.required,
                    description: f.description,
                });
            }
            if fields.is_empty() {
                diag.error(
                    d.name.span(),
                    format!("dataset `{name}` has no fields; add `[[dataset.field]]` tables"),
                );
            }
            let field_ty = |n: &str| fields.iter().find(|f| f.name == n).map(|f| f.ty);
            let check_ref = |diag: &mut Diagnostics<'_>,
                             what: &str,
                             r: &Spanned<String>,
                             want: Option<FieldType>| {
                match field_ty(r.get_ref()) {
                    None => diag.error(r.span(), format!("{what} `{}` is not a field of dataset `{name}`; declare it with `[[dataset.field]]`", r.get_ref())),
                    Some(t) => {
                        if let Some(w) = want {
                            if t != w {
                                diag.error(r.span(), format!("{what} `{}` must be of type `{}`", r.get_ref(), type_name(w)));
                            }
                        }
                    }
                }
            };
            check_ref(&mut diag, "key", &d.key, None);
            check_ref(
                &mut diag,
                "subject",
                &d.subject,
                Some(FieldType::ResidentId),
            );
            if let Some(w) = &d.window_start {
                check_ref(&mut diag, "window_start", w, Some(FieldType::Date));
            } else if d.kind == DatasetKind::Negative {
                diag.error(d.name.span(), format!("negative dataset `{name}` needs `window_start`, the date field that starts its disclosure window (长政办发〔2017〕62号 §十)"));
            }
            if let Some(r) = &d.repair {
                check_ref(&mut diag, "repair field", &r.field, None);
                // A repaired value the field can never hold would silently never end
                // disclosure.
                if let Some(f) = fields.iter().find(|f| &f.name == r.field.get_ref()) {
                    if f.ty == FieldType::Enum {
                        for v in &r.repaired {
                            if !f.values.contains(v) {
                                diag.error(
                                    r.field.span(),
                                    format!(
                                        "repaired value `{v}` is not one of the values of enum field `{}` ({})",
                                        f.name,
                                        f.values.join(", ")
                                    ),
                                );
                            }
                        }
                    }
                }
                if r.repaired.is_empty() {
                    diag.error(
                        r.field.span(),
                        "`repair` needs `repaired = [...]`, the status values that end disclosure",
                    );
                }
            }
            let years = match &d.disclosure_window_years {
                Some(y) => {
                    if *y.get_ref() == 0 {
                        diag.error(y.span(), "`disclosure_window_years` must be at least 1 (the statutory window is 3)");
                    }
                    *y.get_ref()
                }
                None => 3,
            };
            let publication = d
                .publication
                .map(|p| check_publication(&mut diag, &name, d.kind, years, &fields, p));
            datasets.push(Dataset {
                qualified: format!("{department}.{name}"),
                department: department.clone(),
                name,
                description: d.description,
                kind: d.kind,
                fields,
                key: d.key.into_inner(),
                subject: d.subject.into_inner(),
                window_start: d.window_start.map(Spanned::into_inner),
                repair: d.repair.map(|r| Repair {
                    field: r.field.into_inner(),
                    repaired: r.repaired,
                }),
                disclosure_window_years: years,
                publication,
            });
        }
        diag.finish(Catalogue {
            department,
            description: raw.description,
            datasets,
        })
    }

    /// The dataset called `name` (unqualified).
    pub fn dataset(&self, name: &str) -> Option<&Dataset> {
        self.datasets.iter().find(|d| d.name == name)
    }

    /// How this catalogue differs from `checked`, the datasets of this department that a
    /// policy was checked against (e.g. a compiled policy's `Engine::datasets`):
    /// one line per difference, naming the dataset and field, in a stable order. Empty when
    /// they agree on everything a decision or the law depends on (descriptions aside).
    pub fn differences_from<'a>(
        &self,
        checked: impl IntoIterator<Item = &'a Dataset>,
    ) -> Vec<String> {
        let checked: Vec<&Dataset> = checked
            .into_iter()
            .filter(|d| d.department == self.department)
            .collect();
        let mut out = Vec::new();
        for ours in &self.datasets {
            match checked.iter().find(|d| d.name == ours.name) {
                None => out.push(format!(
                    "dataset `{}` is not in the policy's catalogue",
                    ours.qualified
                )),
                Some(theirs) => dataset_differences(ours, theirs, &mut out),
            }
        }
        for theirs in &checked {
            if self.dataset(&theirs.name).is_none() {
                out.push(format!(
                    "dataset `{}` of the policy's catalogue is missing",
                    theirs.qualified
                ));
            }
        }
        out
    }
}

fn dataset_differences(ours: &Dataset, theirs: &Dataset, out: &mut Vec<String>) {
    let ds = &ours.qualified;
    let mut differ = |what: &str, a: String, b: String| {
        if a != b {
            out.push(format!(
                "`{ds}`: {what} is {a} here but {b} in the policy's catalogue"
            ));
        }
    };
    differ(
        "`kind`",
        format!("{:?}", ours.kind).to_lowercase(),
        format!("{:?}", theirs.kind).to_lowercase(),
    );
    differ(
        "`key`",
        format!("`{}`", ours.key),
        format!("`{}`", theirs.key),
    );
    differ(
        "`subject`",
        format!("`{}`", ours.subject),
        format!("`{}`", theirs.subject),
    );
    let opt = |o: &Option<String>| o.as_ref().map_or("unset".to_owned(), |v| format!("`{v}`"));
    differ(
        "`window_start`",
        opt(&ours.window_start),
        opt(&theirs.window_start),
    );
    let repair = |r: &Option<Repair>| {
        r.as_ref().map_or("unset".to_owned(), |r| {
            format!("`{}` in [{}]", r.field, r.repaired.join(", "))
        })
    };
    differ("`repair`", repair(&ours.repair), repair(&theirs.repair));
    differ(
        "`disclosure_window_years`",
        ours.disclosure_window_years.to_string(),
        theirs.disclosure_window_years.to_string(),
    );
    differ(
        "`publication`",
        format!("{:?}", ours.publication),
        format!("{:?}", theirs.publication),
    );
    for f in &ours.fields {
        let Some(g) = theirs.field(&f.name) else {
            out.push(format!(
                "`{ds}`: field `{}` is not in the policy's catalogue",
                f.name
            ));
            continue;
        };
        let field = |what: &str| format!("field `{}`: {what}", f.name);
        let mut differ = |what: &str, a: String, b: String| {
            if a != b {
                out.push(format!(
                    "`{ds}`: {} is {a} here but {b} in the policy's catalogue",
                    field(what)
                ));
            }
        };
        differ(
            "`type`",
            format!("`{}`", type_name(f.ty)),
            format!("`{}`", type_name(g.ty)),
        );
        differ(
            "`class`",
            format!("`{}`", f.class.name()),
            format!("`{}`", g.class.name()),
        );
        differ(
            "`values`",
            format!("[{}]", f.values.join(", ")),
            format!("[{}]", g.values.join(", ")),
        );
        let edges = |b: &[i64]| {
            format!(
                "[{}]",
                b.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
            )
        };
        differ("`buckets`", edges(&f.buckets), edges(&g.buckets));
        differ("`required`", f.required.to_string(), g.required.to_string());
    }
    for g in &theirs.fields {
        if ours.field(&g.name).is_none() {
            out.push(format!(
                "`{ds}`: field `{}` of the policy's catalogue is missing",
                g.name
            ));
        }
    }
}

/// Checks a dataset's `[dataset.publication]`: the list fits the dataset's kind, the
/// shown years fit its window, every column is a field of it in a form its type allows,
/// and nothing identifying or sensitive is published in clear.
fn check_publication(
    diag: &mut Diagnostics<'_>,
    dataset: &str,
    kind: DatasetKind,
    window_years: u32,
    fields: &[Field],
    raw: Spanned<RawPublication>,
) -> Publication {
    let span = raw.span();
    let raw = raw.into_inner();
    match (raw.list, kind) {
        (PublicList::Dishonesty, DatasetKind::Negative)
        | (PublicList::Honours, DatasetKind::Positive) => {}
        (list, _) => diag.error(
            span.clone(),
            format!(
                "dataset `{dataset}` is {} and cannot be published in the `{}` list; `dishonesty` takes negative datasets, `honours` positive ones",
                format!("{kind:?}").to_lowercase(),
                list.name()
            ),
        ),
    }
    if raw.category.trim().is_empty() {
        diag.error(
            span.clone(),
            format!(
                "the publication of dataset `{dataset}` needs a `category`, e.g. \"失信被执行人\""
            ),
        );
    }
    let years = match (&raw.years, kind) {
        (Some(y), DatasetKind::Negative) if *y.get_ref() > window_years => {
            diag.error(
                y.span(),
                format!("a negative record is published at most its disclosure window ({window_years} years); lower `years`"),
            );
            *y.get_ref()
        }
        (Some(y), _) if *y.get_ref() == 0 => {
            diag.error(y.span(), "`years` must be at least 1");
            0
        }
        (Some(y), _) => *y.get_ref(),
        (None, DatasetKind::Negative) => window_years,
        (None, _) => {
            diag.error(
                span.clone(),
                format!("the publication of dataset `{dataset}` needs `years`, how long a record is shown"),
            );
            0
        }
    };
    if raw.columns.is_empty() {
        diag.error(
            span,
            format!("the publication of dataset `{dataset}` has no columns; add `[[dataset.publication.column]]` tables"),
        );
    }
    let mut columns: Vec<PublishedColumn> = Vec::new();
    for c in raw.columns {
        let name = c.field.get_ref().clone();
        let form = *c.form.get_ref();
        if columns.iter().any(|k| k.field == name) {
            diag.error(
                c.field.span(),
                format!("field `{name}` is published twice in dataset `{dataset}`"),
            );
        }
        match fields.iter().find(|f| f.name == name) {
            None => diag.error(
                c.field.span(),
                format!("`{name}` is not a field of dataset `{dataset}`"),
            ),
            Some(f) => {
                let fits = match form {
                    PublishedForm::IdFirst6Last4 => f.ty == FieldType::ResidentId,
                    PublishedForm::Surname => f.ty == FieldType::String,
                    PublishedForm::Clear => {
                        f.ty != FieldType::ResidentId && f.class != FieldClass::Sensitive
                    }
                };
                if !fits {
                    diag.error(
                        c.form.span(),
                        format!(
                            "field `{name}` ({} {}) cannot be published as `{}`; a resident ID only as `id_first6_last4`, a name as `surname`, and nothing sensitive",
                            f.class.name(),
                            type_name(f.ty),
                            form.name()
                        ),
                    );
                }
            }
        }
        if c.heading.trim().is_empty() {
            diag.error(
                c.field.span(),
                format!("published field `{name}` needs a `heading`"),
            );
        }
        columns.push(PublishedColumn {
            field: name,
            form,
            heading: c.heading,
        });
    }
    Publication {
        list: raw.list,
        category: raw.category,
        years,
        columns,
    }
}

/// The word for a field type used in catalogue files.
pub fn type_name(t: FieldType) -> &'static str {
    match t {
        FieldType::String => "string",
        FieldType::Date => "date",
        FieldType::Amount => "amount",
        FieldType::Integer => "integer",
        FieldType::Enum => "enum",
        FieldType::ResidentId => "resident_id",
    }
}

/// Every department's catalogue: the federation a policy speaks about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Federation {
    /// One catalogue per department, in a stable (name) order.
    pub catalogues: Vec<Catalogue>,
}

/// Two catalogues claim the same department.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("department `{0}` has two catalogues; each department has exactly one catalogue file")]
pub struct DuplicateDepartment(pub String);

impl Federation {
    /// Builds the federation from parsed catalogues.
    pub fn new(mut catalogues: Vec<Catalogue>) -> Result<Federation, DuplicateDepartment> {
        catalogues.sort_by(|a, b| a.department.cmp(&b.department));
        for w in catalogues.windows(2) {
            if let [a, b] = w {
                if a.department == b.department {
                    return Err(DuplicateDepartment(a.department.clone()));
                }
            }
        }
        Ok(Federation { catalogues })
    }

    /// Every dataset, department by department.
    pub fn datasets(&self) -> impl Iterator<Item = &Dataset> {
        self.catalogues.iter().flat_map(|c| c.datasets.iter())
    }

    /// The dataset `department.name`.
    pub fn dataset(&self, qualified: &str) -> Option<&Dataset> {
        let (dept, name) = qualified.split_once('.')?;
        self.catalogues
            .iter()
            .find(|c| c.department == dept)?
            .dataset(name)
    }
}

// Reading a cell by its field's declared type: here beside the field, so that the value
// module needs no catalogue.
impl Value {
    /// Parses text from an import (CSV cell) as a value of `field`'s type. An empty cell
    /// is `Ok(None)`: absent, never an empty string.
    pub fn parse(text: &str, field: &Field) -> Result<Option<Value>, BadValue> {
        let t = text.trim();
        if t.is_empty() {
            return Ok(None);
        }
        let bad = |expected: &str| BadValue {
            value: t.to_owned(),
            expected: expected.to_owned(),
        };
        let v = match field.ty {
            FieldType::String => Value::Text(t.to_owned()),
            FieldType::ResidentId => {
                if !is_resident_id(t) {
                    return Err(bad(
                        "18-character resident ID (17 digits, then a digit or X)",
                    ));
                }
                Value::Text(t.to_owned())
            }
            FieldType::Enum => {
                if !field.values.iter().any(|v| v == t) {
                    return Err(bad(&format!("value of enum ({})", field.values.join(", "))));
                }
                Value::Text(t.to_owned())
            }
            FieldType::Date => Value::Date(parse_date(t).ok_or_else(|| bad("date YYYY-MM-DD"))?),
            FieldType::Integer => Value::Integer(t.parse().map_err(|_| bad("whole number"))?),
            FieldType::Amount => {
                Value::Amount(parse_amount(t).ok_or_else(|| bad("amount in yuan, e.g. 1234.50"))?)
            }
        };
        Ok(Some(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COURT: &str = r#"
department = "court"

[[dataset]]
name = "dishonest_debtors"
kind = "negative"
key = "case_no"
subject = "resident_id"
window_start = "listed_on"

[[dataset.field]]
name = "case_no"
type = "string"
class = "negative"

[[dataset.field]]
name = "resident_id"
type = "resident_id"
class = "identifier"

[[dataset.field]]
name = "listed_on"
type = "date"
class = "negative"
"#;

    #[test]
    fn differences_from_the_policys_catalogue_name_the_dataset_and_field() {
        let checked = Catalogue::parse(COURT, "court.toml").unwrap();
        let same = Catalogue::parse(
            &COURT.replace(
                "class = \"identifier\"",
                "class = \"identifier\"\ndescription = \"x\"",
            ),
            "court.toml",
        )
        .unwrap();
        assert!(
            same.differences_from(&checked.datasets).is_empty(),
            "descriptions decide nothing"
        );
        let mut changed = checked.clone();
        let d = changed.datasets.first_mut().unwrap();
        d.fields.retain(|f| f.name != "case_no");
        d.fields.push(Field {
            name: "court".into(),
            ty: FieldType::String,
            class: FieldClass::Basic,
            values: Vec::new(),
            buckets: Vec::new(),
            required: false,
            description: String::new(),
        });
        if let Some(f) = d.fields.iter_mut().find(|f| f.name == "listed_on") {
            f.class = FieldClass::Basic;
        }
        d.disclosure_window_years = 5;
        let diff = changed.differences_from(&checked.datasets);
        assert_eq!(
            diff,
            vec![
                "`court.dishonest_debtors`: `disclosure_window_years` is 5 here but 3 in the policy's catalogue",
                "`court.dishonest_debtors`: field `listed_on`: `class` is `basic` here but `negative` in the policy's catalogue",
                "`court.dishonest_debtors`: field `court` is not in the policy's catalogue",
                "`court.dishonest_debtors`: field `case_no` of the policy's catalogue is missing",
            ]
        );
        let mut renamed = checked.clone();
        if let Some(d) = renamed.datasets.first_mut() {
            d.name = "debtors".into();
            d.qualified = "court.debtors".into();
        }
        assert_eq!(
            renamed.differences_from(&checked.datasets),
            vec![
                "dataset `court.debtors` is not in the policy's catalogue",
                "dataset `court.dishonest_debtors` of the policy's catalogue is missing",
            ]
        );
    }

    #[test]
    fn parses_a_department() {
        let c = Catalogue::parse(COURT, "court.toml").unwrap();
        let d = c.dataset("dishonest_debtors").unwrap();
        assert_eq!(d.qualified, "court.dishonest_debtors");
        assert_eq!(d.disclosure_window_years, 3);
        assert_eq!(d.field("listed_on").unwrap().ty, FieldType::Date);
    }

    #[test]
    fn locates_unknown_key_fields() {
        let text = COURT.replace("key = \"case_no\"", "key = \"case_number\"");
        let err = Catalogue::parse(&text, "court.toml").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("court.toml:7:7: key `case_number` is not a field"),
            "{msg}"
        );
    }

    #[test]
    fn locates_misspelt_settings() {
        let text = COURT.replace(
            "kind = \"negative\"",
            "kind = \"negative\"\nwindow_years = 5",
        );
        let msg = Catalogue::parse(&text, "court.toml")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("court.toml:7:1") && msg.contains("unknown field `window_years`"),
            "{msg}"
        );
    }

    #[test]
    fn the_statutory_window_and_repair_decide_disclosure() {
        let mut c = Catalogue::parse(COURT, "court.toml").unwrap();
        let d = c.datasets.first_mut().unwrap();
        d.repair = Some(Repair {
            field: "case_no".into(),
            repaired: vec!["done".into()],
        });
        let today = crate::value::parse_date("2026-11-27").unwrap();
        let mut r = Record::new();
        r.insert(
            "listed_on".into(),
            Value::Date(crate::value::parse_date("2024-01-01").unwrap()),
        );
        r.insert("case_no".into(), Value::Text("A1".into()));
        assert!(d.is_disclosable(&r, today));
        r.insert(
            "listed_on".into(),
            Value::Date(crate::value::parse_date("2023-11-27").unwrap()),
        );
        assert!(
            !d.is_disclosable(&r, today),
            "exactly three years old is outside the window"
        );
        r.insert(
            "listed_on".into(),
            Value::Date(crate::value::parse_date("2025-01-01").unwrap()),
        );
        r.insert("case_no".into(), Value::Text("done".into()));
        assert!(
            !d.is_disclosable(&r, today),
            "repaired records are never disclosed"
        );
    }

    #[test]
    fn repaired_values_must_be_values_of_the_status_enum() {
        let text = COURT.replace(
            "window_start = \"listed_on\"",
            "window_start = \"listed_on\"\nrepair = { field = \"status\", repaired = [\"performd\"] }",
        ) + "\n[[dataset.field]]\nname = \"status\"\ntype = \"enum\"\nclass = \"negative\"\nvalues = [\"open\", \"performed\"]\n";
        let msg = Catalogue::parse(&text, "court.toml")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("repaired value `performd` is not one of the values of enum field `status` (open, performed)"), "{msg}");
    }
}
