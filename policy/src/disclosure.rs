//! Public disclosure (长政办发〔2017〕62号 §十五, and §三 for honours), as plain functions
//! over data: which records a department publishes at a date and in what form
//! ([`published_rows`]), what a node signs of its part ([`PartClaims`], [`rows_digest`]),
//! and one dated publication merged from verified parts ([`Publication::merge`]) rendered
//! as JSON, CSV and a static Chinese HTML page with its manifest. The same parts on the
//! same date give the same bytes: nothing here reads a clock, a file or a random number.
//!
//! Signing and verifying the parts is the callers' (`fedq_node::disclose`,
//! `fedq_coordinator::disclosure`), with the federation's certificates.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::catalogue::{within_years, Dataset, PublicList, Publication as Marked, PublishedForm};
use crate::catalogue::{Catalogue, Record};
use crate::resident_id::{mask_resident_id, mask_text};
use crate::value::Value;

/// The format name a part's claims and a publication's files carry.
pub const PART_FORMAT: &str = "fedq-disclosure-part/1";
/// The format name of a publication's manifest and JSON file.
pub const PUBLICATION_FORMAT: &str = "fedq-disclosure/1";
/// The JWS type a node signs its part under.
pub const PART_TYP: &str = "fedq-disclosure-part+jwt";

/// One published column, as a part declares it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Column {
    /// The field.
    pub field: String,
    /// The heading on the page.
    pub heading: String,
    /// Its published form (`clear`, `surname`, `id_first6_last4`).
    pub form: String,
}

/// One published dataset, as a part declares it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartDataset {
    /// `department.dataset`.
    pub dataset: String,
    /// The category its records are shown under.
    pub category: String,
    /// The columns, in order.
    pub columns: Vec<Column>,
}

/// One published record: its dataset and its cells in their published forms.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartRow {
    /// `department.dataset`.
    pub dataset: String,
    /// Field → published text; a field the record does not hold is absent.
    pub cells: BTreeMap<String, String>,
}

/// What a node signs of its part (the payload of its ES256 JWS).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartClaims {
    /// [`PART_FORMAT`].
    pub format: String,
    /// The federation.
    pub federation: String,
    /// The node (department) whose records these are.
    pub node: String,
    /// `dishonesty` or `honours`.
    pub list: String,
    /// The publication date, `YYYY-MM-DD` (UTC+8).
    pub date: String,
    /// The datasets the part publishes.
    pub datasets: Vec<PartDataset>,
    /// How many rows.
    pub records: u64,
    /// SHA-256 (hex) of [`rows_digest`]'s encoding of the rows.
    pub rows_sha256: String,
}

/// A node's part as a file: the signed claims and the rows they vouch for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartFile {
    /// The compact JWS over [`PartClaims`], the node's certificate in `x5c`.
    pub signature: String,
    /// The rows, in the order the node put them.
    pub rows: Vec<PartRow>,
}

/// The SHA-256 (hex) of `rows` as the claims commit to them: their compact JSON.
pub fn rows_digest(rows: &[PartRow]) -> String {
    let bytes = serde_json::to_vec(rows).unwrap_or_default();
    hex(ring::digest::digest(&ring::digest::SHA256, &bytes).as_ref())
}

/// SHA-256 of bytes, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The datasets of `catalogue` published in `list`, with their markings.
pub fn marked(catalogue: &Catalogue, list: PublicList) -> Vec<(&Dataset, &Marked)> {
    catalogue
        .datasets
        .iter()
        .filter_map(|d| d.publication.as_ref().map(|p| (d, p)))
        .filter(|(_, p)| p.list == list)
        .collect()
}

/// The part's declaration of one marked dataset.
pub fn part_dataset(dataset: &Dataset, marked: &Marked) -> PartDataset {
    PartDataset {
        dataset: dataset.qualified.clone(),
        category: marked.category.clone(),
        columns: marked
            .columns
            .iter()
            .map(|c| Column {
                field: c.field.clone(),
                heading: c.heading.clone(),
                form: c.form.name().to_owned(),
            })
            .collect(),
    }
}

/// Whether `record` is shown at `date`: the law's window and repair for a negative record
/// (`Dataset::is_disclosable`), and no more than the publication's `years` from its
/// `window_start` for any record (a record without that date is not shown).
pub fn is_shown(dataset: &Dataset, marked: &Marked, record: &Record, date: time::Date) -> bool {
    if !dataset.is_disclosable(record, date) {
        return false;
    }
    match dataset.record_date(record) {
        Some(start) => start <= date && within_years(start, date, marked.years),
        None => false,
    }
}

/// One value in a published form. `None` when the form does not apply to the value (a
/// masked form of a value that is not text): the cell is left out rather than shown.
fn published(value: &Value, form: PublishedForm) -> Option<String> {
    match form {
        PublishedForm::Clear => Some(value.to_string()),
        PublishedForm::Surname => value.as_text().map(mask_text),
        PublishedForm::IdFirst6Last4 => value.as_text().map(mask_resident_id),
    }
}

/// The rows a dataset publishes at `date` from `records` (the undisputed, unrepaired ones
/// the node holds: the caller sets disputed and removed records aside), sorted by date
/// (newest first) and then by their cells.
pub fn published_rows(
    dataset: &Dataset,
    marked: &Marked,
    records: &[Record],
    date: time::Date,
) -> Vec<PartRow> {
    let mut rows: Vec<(Option<time::Date>, PartRow)> = records
        .iter()
        .filter(|r| is_shown(dataset, marked, r, date))
        .map(|r| {
            let cells = marked
                .columns
                .iter()
                .filter_map(|c| {
                    let v = r.get(&c.field)?;
                    Some((c.field.clone(), published(v, c.form)?))
                })
                .collect();
            (
                dataset.record_date(r),
                PartRow {
                    dataset: dataset.qualified.clone(),
                    cells,
                },
            )
        })
        .collect();
    rows.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    rows.into_iter().map(|(_, r)| r).collect()
}

/// A part whose signature the caller verified: the node its certificate names, the claims,
/// the rows (checked against the claims' digest by [`Publication::merge`]) and the JWS.
#[derive(Clone, Debug)]
pub struct VerifiedPart {
    /// The node the signing certificate names.
    pub signer: String,
    /// What it signed.
    pub claims: PartClaims,
    /// The rows.
    pub rows: Vec<PartRow>,
    /// The compact JWS, kept in the manifest so anyone can check it again.
    pub signature: String,
}

/// Why parts cannot be merged. Never quotes a row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    /// A part is not what its claims say, or not for this publication.
    #[error("the part of node `{node}` does not fit: {why}")]
    Part {
        /// The node.
        node: String,
        /// What is wrong.
        why: String,
    },
    /// No part at all.
    #[error("no parts to merge; give each node's signed part file")]
    Empty,
}

/// One entry of the manifest: a part's node, record count and signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestPart {
    /// The node.
    pub node: String,
    /// Its record count.
    pub records: u64,
    /// SHA-256 of its rows' encoding, as signed.
    pub rows_sha256: String,
    /// The node's compact JWS over its claims.
    pub signature: String,
}

/// The manifest: what the publication is made of, and the digest of each file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`PUBLICATION_FORMAT`].
    pub format: String,
    /// The federation.
    pub federation: String,
    /// `dishonesty` or `honours`.
    pub list: String,
    /// The publication date.
    pub date: String,
    /// Total records.
    pub records: u64,
    /// One entry per part, by node name.
    pub parts: Vec<ManifestPart>,
    /// File name → SHA-256 (hex) of the file.
    pub files: BTreeMap<String, String>,
}

/// A published row: the part's row and the node that signed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishedRow {
    /// The node.
    pub node: String,
    /// The dataset.
    pub dataset: String,
    /// The category.
    pub category: String,
    /// Field → published text.
    pub cells: BTreeMap<String, String>,
}

/// The publication's JSON file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicationDocument {
    /// [`PUBLICATION_FORMAT`].
    pub format: String,
    /// The federation.
    pub federation: String,
    /// `dishonesty` or `honours`.
    pub list: String,
    /// The publication date.
    pub date: String,
    /// Every published dataset's declaration, by dataset name.
    pub datasets: Vec<PartDataset>,
    /// The rows, by node, dataset, then the node's order.
    pub rows: Vec<PublishedRow>,
}

/// One dated publication merged from verified parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publication {
    /// The JSON file's contents.
    pub document: PublicationDocument,
    /// The parts, by node.
    pub parts: Vec<ManifestPart>,
}

/// The files of a publication, by name, with the manifest last.
pub type Files = Vec<(String, Vec<u8>)>;

impl Publication {
    /// Merges parts for `list` at `date` in `federation`: each part signed by the node it
    /// names, for this federation, list and date, its rows the ones it signed, only
    /// datasets of its own department, and one part per node.
    pub fn merge(
        federation: &str,
        list: PublicList,
        date: time::Date,
        mut parts: Vec<VerifiedPart>,
    ) -> Result<Publication, MergeError> {
        if parts.is_empty() {
            return Err(MergeError::Empty);
        }
        let date_text = date.to_string();
        parts.sort_by(|a, b| a.signer.cmp(&b.signer));
        let mut datasets = Vec::new();
        let mut rows = Vec::new();
        let mut manifest = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let bad = |why: String| MergeError::Part {
                node: part.signer.clone(),
                why,
            };
            let c = &part.claims;
            if parts.get(i + 1).is_some_and(|n| n.signer == part.signer) {
                return Err(bad("two parts are signed by this node; give one".into()));
            }
            if c.format != PART_FORMAT {
                return Err(bad(format!("its format is not `{PART_FORMAT}`")));
            }
            if c.node != part.signer {
                return Err(bad(format!(
                    "it names node `{}` but is signed by `{}`",
                    c.node, part.signer
                )));
            }
            if c.federation != federation {
                return Err(bad(format!(
                    "it is of federation `{}`, not `{federation}`",
                    c.federation
                )));
            }
            if c.list != list.name() {
                return Err(bad(format!(
                    "it is a part of the `{}` list, not `{}`",
                    c.list,
                    list.name()
                )));
            }
            if c.date != date_text {
                return Err(bad(format!(
                    "it was made for {}, not {date_text}; make it again for this date",
                    c.date
                )));
            }
            if c.records != part.rows.len() as u64 || c.rows_sha256 != rows_digest(&part.rows) {
                return Err(bad(
                    "its rows are not the ones it signed (changed after signing)".into(),
                ));
            }
            let own = format!("{}.", part.signer);
            for d in &c.datasets {
                if !d.dataset.starts_with(&own) {
                    return Err(bad(format!(
                        "it declares dataset `{}` of another department",
                        d.dataset
                    )));
                }
                datasets.push(d.clone());
            }
            for r in &part.rows {
                let Some(d) = c.datasets.iter().find(|d| d.dataset == r.dataset) else {
                    return Err(bad("a row is of a dataset the part does not declare".into()));
                };
                if r.cells
                    .keys()
                    .any(|k| !d.columns.iter().any(|c| &c.field == k))
                {
                    return Err(bad(
                        "a row holds a field its dataset does not publish".into()
                    ));
                }
                rows.push(PublishedRow {
                    node: part.signer.clone(),
                    dataset: r.dataset.clone(),
                    category: d.category.clone(),
                    cells: r.cells.clone(),
                });
            }
            manifest.push(ManifestPart {
                node: part.signer.clone(),
                records: c.records,
                rows_sha256: c.rows_sha256.clone(),
                signature: part.signature.clone(),
            });
        }
        datasets.sort_by(|a, b| a.dataset.cmp(&b.dataset));
        rows.sort_by(|a, b| (&a.node, &a.dataset).cmp(&(&b.node, &b.dataset)));
        Ok(Publication {
            document: PublicationDocument {
                format: PUBLICATION_FORMAT.into(),
                federation: federation.into(),
                list: list.name().into(),
                date: date_text,
                datasets,
                rows,
            },
            parts: manifest,
        })
    }

    /// The base of the files' names: `LIST-DATE`.
    pub fn stem(&self) -> String {
        format!("{}-{}", self.document.list, self.document.date)
    }

    /// The files: `STEM.json`, `STEM.csv`, `STEM.html` and `STEM.manifest.json` (which
    /// holds the others' digests). The same publication gives the same bytes.
    pub fn files(&self) -> Files {
        let stem = self.stem();
        let mut json = serde_json::to_vec_pretty(&self.document).unwrap_or_default();
        json.push(b'\n');
        let files = vec![
            (format!("{stem}.json"), json),
            (format!("{stem}.csv"), self.csv().into_bytes()),
            (format!("{stem}.html"), self.html().into_bytes()),
        ];
        let manifest = Manifest {
            format: PUBLICATION_FORMAT.into(),
            federation: self.document.federation.clone(),
            list: self.document.list.clone(),
            date: self.document.date.clone(),
            records: self.document.rows.len() as u64,
            parts: self.parts.clone(),
            files: files
                .iter()
                .map(|(n, b)| (n.clone(), sha256_hex(b)))
                .collect(),
        };
        let mut m = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
        m.push(b'\n');
        let mut files = files;
        files.push((format!("{stem}.manifest.json"), m));
        files
    }

    /// The columns of the CSV and the page: every heading of every dataset, in first-seen
    /// order, after the category (a dataset's field under another's heading shares it).
    fn columns(&self) -> Vec<(String, Vec<(String, String)>)> {
        // heading → [(dataset, field)]
        let mut out: Vec<(String, Vec<(String, String)>)> = Vec::new();
        for d in &self.document.datasets {
            for c in &d.columns {
                match out.iter_mut().find(|(h, _)| *h == c.heading) {
                    Some((_, at)) => at.push((d.dataset.clone(), c.field.clone())),
                    None => out.push((
                        c.heading.clone(),
                        vec![(d.dataset.clone(), c.field.clone())],
                    )),
                }
            }
        }
        out
    }

    fn table(&self) -> (Vec<String>, Vec<Vec<String>>) {
        let columns = self.columns();
        let mut head = vec!["类别".to_owned()];
        head.extend(columns.iter().map(|(h, _)| h.clone()));
        head.push("信息提供单位".to_owned());
        let body = self
            .document
            .rows
            .iter()
            .map(|r| {
                let mut line = vec![r.category.clone()];
                for (_, at) in &columns {
                    let cell = at
                        .iter()
                        .find(|(d, _)| *d == r.dataset)
                        .and_then(|(_, f)| r.cells.get(f))
                        .cloned()
                        .unwrap_or_default();
                    line.push(cell);
                }
                line.push(r.node.clone());
                line
            })
            .collect();
        (head, body)
    }

    /// The CSV (RFC 4180, UTF-8, CRLF; a cell that a spreadsheet would read as a formula
    /// is prefixed with `'`).
    pub fn csv(&self) -> String {
        let (head, body) = self.table();
        let mut out = String::new();
        for line in std::iter::once(&head).chain(body.iter()) {
            let cells: Vec<String> = line.iter().map(|c| csv_cell(c)).collect();
            out.push_str(&cells.join(","));
            out.push_str("\r\n");
        }
        out
    }

    /// The static page, in Chinese, that the city's website can host as it is: no script,
    /// no outside resource.
    pub fn html(&self) -> String {
        let d = &self.document;
        let title = match PublicList::parse(&d.list) {
            Some(PublicList::Honours) => "个人诚信典型（红名单）公示",
            _ => "个人严重失信信息公开",
        };
        let (head, body) = self.table();
        let mut h = String::new();
        h.push_str("<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n");
        h.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n");
        let _ = writeln!(h, "<title>{} · {}</title>", esc(title), esc(&d.date));
        h.push_str("<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #999;padding:.3em .6em}th{background:#eee}</style>\n</head>\n<body>\n");
        let _ = writeln!(h, "<h1>{}</h1>", esc(title));
        let _ = writeln!(
            h,
            "<p>公示日期：{}　共 {} 条</p>",
            esc(&d.date),
            d.rows.len()
        );
        h.push_str("<table id=\"records\">\n<thead><tr>");
        for c in &head {
            let _ = write!(h, "<th>{}</th>", esc(c));
        }
        h.push_str("</tr></thead>\n<tbody>\n");
        for line in &body {
            h.push_str("<tr>");
            for c in line {
                let _ = write!(h, "<td>{}</td>", esc(c));
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</tbody>\n</table>\n<h2>数据来源与签名</h2>\n<table id=\"parts\">\n<thead><tr><th>信息提供单位</th><th>条数</th><th>签名摘要 (SHA-256)</th></tr></thead>\n<tbody>\n");
        for p in &self.parts {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
                esc(&p.node),
                p.records,
                sha256_hex(p.signature.as_bytes())
            );
        }
        h.push_str("</tbody>\n</table>\n<p>每个部门的签名见同名的 <code>.manifest.json</code> 文件，可用 <code>fedq disclose verify</code> 核验。</p>\n</body>\n</html>\n");
        h
    }
}

fn csv_cell(c: &str) -> String {
    let c = if c.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{c}")
    } else {
        c.to_owned()
    };
    if c.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", c.replace('"', "\"\""))
    } else {
        c
    }
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::Catalogue;

    const COURT: &str = include_str!("../../reference/changsha/catalogue/court.toml");

    fn debtors() -> (Dataset, Marked) {
        let c = Catalogue::parse(COURT, "court.toml").unwrap();
        let d = c.dataset("dishonest_debtors").unwrap().clone();
        let p = d.publication.clone().unwrap();
        (d, p)
    }

    fn date(s: &str) -> time::Date {
        crate::value::parse_date(s).unwrap()
    }

    fn record(id: &str, name: &str, case: &str, listed: &str, status: &str) -> Record {
        let mut r = Record::new();
        r.insert("resident_id".into(), Value::Text(id.into()));
        r.insert("name".into(), Value::Text(name.into()));
        r.insert("case_no".into(), Value::Text(case.into()));
        r.insert("court".into(), Value::Text("长沙市岳麓区人民法院".into()));
        r.insert("amount_owed".into(), Value::Amount(12_345_600));
        r.insert("performance_status".into(), Value::Text(status.into()));
        r.insert("listed_on".into(), Value::Date(date(listed)));
        r
    }

    #[test]
    fn a_row_shows_only_the_published_fields_in_their_forms() {
        let (d, p) = debtors();
        let rows = published_rows(
            &d,
            &p,
            &[record(
                "430104198803150027",
                "王小明",
                "(2025)湘0104执1号",
                "2025-06-01",
                "unperformed",
            )],
            date("2026-12-03"),
        );
        assert_eq!(rows.len(), 1);
        let cells = &rows[0].cells;
        assert_eq!(cells["name"], "王**");
        assert_eq!(cells["resident_id"], "430104********0027");
        assert_eq!(cells["case_no"], "(2025)湘0104执1号");
        assert_eq!(cells["listed_on"], "2025-06-01");
        assert!(
            !cells.contains_key("amount_owed"),
            "sensitive field published"
        );
        assert!(!cells.contains_key("performance_status"));
    }

    #[test]
    fn repaired_and_expired_records_are_not_shown() {
        let (d, p) = debtors();
        let records = [
            record("430104198803150027", "甲乙", "A", "2025-06-01", "performed"),
            record(
                "430104198803150027",
                "甲乙",
                "B",
                "2023-12-02",
                "unperformed",
            ),
            record(
                "430104198803150027",
                "甲乙",
                "C",
                "2023-12-04",
                "unperformed",
            ),
        ];
        let rows = published_rows(&d, &p, &records, date("2026-12-03"));
        let cases: Vec<&str> = rows.iter().map(|r| r.cells["case_no"].as_str()).collect();
        assert_eq!(
            cases,
            ["C"],
            "only the record inside its window, unrepaired"
        );
    }

    #[test]
    fn a_catalogue_may_not_publish_an_id_in_clear_or_a_sensitive_field() {
        let bad = COURT.replacen(
            "field = \"resident_id\"\nform = \"id_first6_last4\"",
            "field = \"resident_id\"\nform = \"clear\"",
            1,
        );
        assert_ne!(bad, COURT);
        let err = Catalogue::parse(&bad, "court.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot be published as `clear`"), "{err}");
        let bad = COURT.replacen(
            "field = \"court\"\nform = \"clear\"",
            "field = \"amount_owed\"\nform = \"clear\"",
            1,
        );
        assert_ne!(bad, COURT);
        let err = Catalogue::parse(&bad, "court.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("nothing sensitive"), "{err}");
        let bad = COURT.replacen("list = \"dishonesty\"", "list = \"honours\"", 1);
        let err = Catalogue::parse(&bad, "court.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cannot be published in the `honours` list"),
            "{err}"
        );
    }

    fn part(node: &str, rows: Vec<PartRow>) -> VerifiedPart {
        let (d, p) = debtors();
        let mut decl = part_dataset(&d, &p);
        decl.dataset = decl.dataset.replacen("court", node, 1);
        VerifiedPart {
            signer: node.into(),
            claims: PartClaims {
                format: PART_FORMAT.into(),
                federation: "changsha".into(),
                node: node.into(),
                list: "dishonesty".into(),
                date: "2026-12-03".into(),
                datasets: vec![decl],
                records: rows.len() as u64,
                rows_sha256: rows_digest(&rows),
            },
            rows,
            signature: format!("sig-of-{node}"),
        }
    }

    fn rows() -> Vec<PartRow> {
        let (d, p) = debtors();
        published_rows(
            &d,
            &p,
            &[
                record(
                    "430104198803150027",
                    "王小明",
                    "=1+1",
                    "2025-06-01",
                    "unperformed",
                ),
                record(
                    "430104198803150027",
                    "李<b>",
                    "X,\"Y\"",
                    "2026-01-01",
                    "unperformed",
                ),
            ],
            date("2026-12-03"),
        )
    }

    #[test]
    fn the_same_parts_give_the_same_bytes_in_any_order() {
        let a = Publication::merge(
            "changsha",
            PublicList::Dishonesty,
            date("2026-12-03"),
            vec![part("court", rows()), part("tax", Vec::new())],
        )
        .unwrap()
        .files();
        let b = Publication::merge(
            "changsha",
            PublicList::Dishonesty,
            date("2026-12-03"),
            vec![part("tax", Vec::new()), part("court", rows())],
        )
        .unwrap()
        .files();
        assert_eq!(a, b);
        let names: Vec<&str> = a.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "dishonesty-2026-12-03.json",
                "dishonesty-2026-12-03.csv",
                "dishonesty-2026-12-03.html",
                "dishonesty-2026-12-03.manifest.json"
            ]
        );
        let csv = String::from_utf8(a[1].1.clone()).unwrap();
        assert!(csv.contains(",'=1+1,"), "formula not defused: {csv}");
        assert!(csv.contains("\"X,\"\"Y\"\"\""), "{csv}");
        let html = String::from_utf8(a[2].1.clone()).unwrap();
        assert!(html.contains("李**") && !html.contains("<b>"), "{html}");
        assert!(html.contains("个人严重失信信息公开"));
        let manifest: Manifest = serde_json::from_slice(&a[3].1).unwrap();
        assert_eq!(manifest.records, 2);
        assert_eq!(
            manifest.files["dishonesty-2026-12-03.csv"],
            sha256_hex(csv.as_bytes())
        );
        assert_eq!(manifest.parts[0].node, "court");
        assert_eq!(manifest.parts[0].records, 2);
    }

    #[test]
    fn a_part_changed_after_signing_or_for_another_date_is_refused() {
        let mut changed = part("court", rows());
        changed.rows.pop();
        let err = Publication::merge(
            "changsha",
            PublicList::Dishonesty,
            date("2026-12-03"),
            vec![changed],
        )
        .unwrap_err();
        assert!(err.to_string().contains("not the ones it signed"), "{err}");
        let err = Publication::merge(
            "changsha",
            PublicList::Dishonesty,
            date("2026-12-04"),
            vec![part("court", rows())],
        )
        .unwrap_err();
        assert!(err.to_string().contains("made for 2026-12-03"), "{err}");
        let mut other = part("court", rows());
        other.signer = "tax".into();
        let err = Publication::merge(
            "changsha",
            PublicList::Dishonesty,
            date("2026-12-03"),
            vec![other],
        )
        .unwrap_err();
        assert!(err.to_string().contains("signed by `tax`"), "{err}");
        let err = Publication::merge(
            "changsha",
            PublicList::Dishonesty,
            date("2026-12-03"),
            vec![part("court", rows()), part("court", Vec::new())],
        )
        .unwrap_err();
        assert!(err.to_string().contains("two parts"), "{err}");
    }
}
