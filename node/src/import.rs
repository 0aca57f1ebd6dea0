//! `fedq node import`: a department's file into the node's store.
//!
//! - CSV (header row of catalogue field names) or JSON Lines (one object per record,
//!   field name → string), chosen by the file extension.
//! - Every row validated against the catalogue: resident ID check digit (GB 11643-1999),
//!   dates, amounts, enumerations, required fields, and no window start after the node's
//!   date (a future date is bad data; stored, it would be disclosed forever).
//! - The store must exist (`fedq node init`); an import never creates one.
//! - Atomic by default: one transaction; the first invalid row aborts it and nothing is
//!   imported. With `skip_invalid`, good rows go in and each bad one is written to the
//!   reject file with its line number and reason.
//! - Idempotent: rows are upserted by record key; re-importing the same file changes
//!   nothing (a recorded credit repair is kept).
//! - Streaming: memory does not grow with the file.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fedq_policy::catalogue::{Dataset, FieldType};
use fedq_policy::{Record, Value};
use fedq_wire::ResidentId;
use rusqlite::params;

/// Import errors.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The input file could not be read.
    #[error("cannot read `{path}`: {reason}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        reason: String,
        /// The error it comes from (the file system's or the CSV reader's), if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The file's format is not recognised.
    #[error("`{0}`: unknown format; use a .csv or .jsonl file")]
    Format(String),
    /// The CSV header does not match the catalogue.
    #[error("`{path}` line 1: {reason}")]
    Header {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A row is invalid (atomic mode): nothing was imported.
    #[error("`{path}` line {line}, field `{field}`: {reason}; nothing was imported (fix the row, or pass --skip-invalid to import the valid rows and write rejects)")]
    InvalidRow {
        /// The file.
        path: String,
        /// 1-based line number.
        line: u64,
        /// The field.
        field: String,
        /// Why.
        reason: String,
        /// The error it comes from (a malformed CSV row's), if any; none for a row
        /// that does not validate.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The store failed; the transaction was rolled back.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The reject file could not be written.
    #[error("cannot write reject file `{path}`: {source}")]
    Rejects {
        /// The file.
        path: String,
        /// Why: the CSV writer's or the file system's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Options of one import.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// Import the valid rows and write invalid ones to the reject file.
    pub skip_invalid: bool,
    /// Where rejects go; default `FILE.rejects.csv`.
    pub rejects: Option<PathBuf>,
    /// Show progress on stderr.
    pub progress: bool,
    /// The node's date: a window start after it is refused. `None`: today in the city
    /// ([`fedq_policy::calendar::today_in_city`]).
    pub today: Option<time::Date>,
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Data rows read.
    pub rows: u64,
    /// Rows inserted or changed.
    pub written: u64,
    /// Rows identical to what was stored.
    pub unchanged: u64,
    /// Rows rejected (only with `skip_invalid`).
    pub rejected: u64,
    /// The reject file, if any row was rejected.
    pub rejects: Option<PathBuf>,
    /// Wall time.
    pub elapsed: Duration,
}

/// A row that failed validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowError {
    /// The field.
    pub field: String,
    /// Why (never the value of a resident ID).
    pub reason: String,
}

/// Validates one row given as field → text. This is the importer's whole notion of a
/// valid record; the fuzz target and the proptest call it directly.
pub fn parse_row(dataset: &Dataset, cells: &BTreeMap<&str, &str>) -> Result<Record, RowError> {
    for name in cells.keys() {
        if dataset.field(name).is_none() {
            return Err(RowError {
                field: (*name).to_owned(),
                reason: format!("not a field of `{}`", dataset.qualified),
            });
        }
    }
    let mut record = Record::new();
    for field in &dataset.fields {
        let text = cells.get(field.name.as_str()).copied().unwrap_or("");
        if field.ty == FieldType::ResidentId && !text.trim().is_empty() {
            if let Err(e) = ResidentId::parse(text.trim()) {
                return Err(RowError {
                    field: field.name.clone(),
                    reason: e.to_string(),
                });
            }
        }
        match Value::parse(text, field) {
            Ok(Some(v)) => {
                record.insert(field.name.clone(), v);
            }
            Ok(None) => {
                let needed =
                    field.required || field.name == dataset.key || field.name == dataset.subject;
                if needed {
                    return Err(RowError {
                        field: field.name.clone(),
                        reason: "required field is empty".into(),
                    });
                }
            }
            Err(e) => {
                return Err(RowError {
                    field: field.name.clone(),
                    reason: e.to_string(),
                })
            }
        }
    }
    Ok(record)
}

/// [`parse_row`], then the dates: a window start after `today` (the node's date) is
/// refused — a record cannot start its disclosure window in the future, and if stored it
/// would never leave the window.
pub fn parse_row_on(
    dataset: &Dataset,
    cells: &BTreeMap<&str, &str>,
    today: time::Date,
) -> Result<Record, RowError> {
    let record = parse_row(dataset, cells)?;
    check_dates(dataset, &record, today)?;
    Ok(record)
}

fn check_dates(dataset: &Dataset, record: &Record, today: time::Date) -> Result<(), RowError> {
    match (&dataset.window_start, dataset.record_date(record)) {
        (Some(field), Some(start)) if start > today => Err(RowError {
            field: field.clone(),
            reason: format!(
                "the window start is after today ({today}); a record cannot start its disclosure window in the future (check the date, or the node's clock and `today`)"
            ),
        }),
        _ => Ok(()),
    }
}

fn text_of<'r>(record: &'r Record, field: &str) -> &'r str {
    record
        .get(field)
        .and_then(Value::as_text)
        .unwrap_or_default()
}

/// A row's line number and the row, parsed or not.
type ParsedRow = (u64, Result<Record, RowError>);

enum Rows {
    Csv(csv::Reader<BufReader<File>>, csv::StringRecord, Vec<String>),
    Jsonl(std::io::Lines<BufReader<File>>, u64),
}

/// The validated rows of an input file, one at a time: what both stores' importers read.
/// Invalid rows go to the reject file (with `skip_invalid`) or end the import.
struct Validated {
    dataset: Dataset,
    today: time::Date,
    path_s: String,
    rows: Rows,
    skip_invalid: bool,
    rejects_path: PathBuf,
    rejects: Option<csv::Writer<File>>,
    progress: Progress,
    report: ImportReport,
    started: Instant,
}

impl Validated {
    fn open(dataset: &Dataset, file: &Path, options: &ImportOptions) -> Result<Self, ImportError> {
        let started = Instant::now();
        let path_s = file.display().to_string();
        let read_err = |e: Box<dyn std::error::Error + Send + Sync>| ImportError::Read {
            path: path_s.clone(),
            reason: e.to_string(),
            source: Some(e),
        };
        let input = File::open(file).map_err(|e| read_err(e.into()))?;
        let size = input.metadata().map(|m| m.len()).unwrap_or(0);
        let ext = file
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let rows = match ext.as_str() {
            "csv" => {
                let mut reader = csv::ReaderBuilder::new()
                    .has_headers(true)
                    .flexible(false)
                    .from_reader(BufReader::with_capacity(1 << 20, input));
                let header: Vec<String> = reader
                    .headers()
                    .map_err(|e| read_err(e.into()))?
                    .iter()
                    .map(|h| h.trim().to_owned())
                    .collect();
                for h in &header {
                    if dataset.field(h).is_none() {
                        return Err(ImportError::Header {
                            path: path_s,
                            reason: format!(
                                "column `{h}` is not a field of `{}` (fields: {})",
                                dataset.qualified,
                                dataset
                                    .fields
                                    .iter()
                                    .map(|f| f.name.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        });
                    }
                }
                for f in &dataset.fields {
                    let needed = f.required || f.name == dataset.key || f.name == dataset.subject;
                    if needed && !header.contains(&f.name) {
                        return Err(ImportError::Header {
                            path: path_s,
                            reason: format!("required column `{}` is missing", f.name),
                        });
                    }
                }
                Rows::Csv(reader, csv::StringRecord::new(), header)
            }
            "jsonl" | "ndjson" => Rows::Jsonl(BufReader::with_capacity(1 << 20, input).lines(), 0),
            _ => return Err(ImportError::Format(path_s)),
        };
        let rejects_path = options
            .rejects
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("{}.rejects.csv", file.display())));
        Ok(Self {
            dataset: dataset.clone(),
            today: options
                .today
                .unwrap_or_else(fedq_policy::calendar::today_in_city),
            path_s,
            rows,
            skip_invalid: options.skip_invalid,
            rejects_path,
            rejects: None,
            progress: Progress::new(options.progress, size),
            report: ImportReport::default(),
            started,
        })
    }

    /// The next row, parsed: `None` at the end of the file.
    fn next_row(&mut self) -> Result<Option<ParsedRow>, ImportError> {
        let dataset = &self.dataset;
        let today = self.today;
        loop {
            match &mut self.rows {
                Rows::Csv(reader, record, header) => {
                    match reader.read_record(record) {
                        Ok(false) => return Ok(None),
                        Ok(true) => {}
                        Err(e) => {
                            let line = e.position().map_or(self.report.rows + 2, |p| p.line());
                            return Err(ImportError::InvalidRow {
                                path: self.path_s.clone(),
                                line,
                                field: "-".into(),
                                reason: format!("malformed CSV: {e}"),
                                source: Some(e.into()),
                            });
                        }
                    }
                    let line = record.position().map_or(self.report.rows + 2, |p| p.line());
                    let cells: BTreeMap<&str, &str> = header
                        .iter()
                        .map(String::as_str)
                        .zip(record.iter())
                        .collect();
                    return Ok(Some((line, parse_row_on(dataset, &cells, today))));
                }
                Rows::Jsonl(lines, n) => {
                    let Some(text) = lines.next() else {
                        return Ok(None);
                    };
                    *n += 1;
                    let text = text.map_err(|e| ImportError::Read {
                        path: self.path_s.clone(),
                        reason: e.to_string(),
                        source: Some(e.into()),
                    })?;
                    if text.trim().is_empty() {
                        continue;
                    }
                    let parsed = parse_json_line(dataset, &text)
                        .and_then(|r| check_dates(dataset, &r, today).map(|()| r));
                    return Ok(Some((*n, parsed)));
                }
            }
        }
    }

    /// The next valid record with its line number, `None` at the end of the file. Invalid
    /// rows are written to the reject file (with `skip_invalid`) or end the import.
    fn next_valid(&mut self) -> Result<Option<(u64, Record)>, ImportError> {
        loop {
            let Some((line, parsed)) = self.next_row()? else {
                return Ok(None);
            };
            self.report.rows += 1;
            if self.report.rows.is_multiple_of(65_536) {
                let pos = match &self.rows {
                    Rows::Csv(reader, _, _) => reader.position().byte(),
                    Rows::Jsonl(..) => 0,
                };
                self.progress.update(self.report.rows, pos);
            }
            match parsed {
                Ok(record) => return Ok(Some((line, record))),
                Err(e) if self.skip_invalid => {
                    self.report.rejected += 1;
                    self.reject(line, e)?;
                }
                Err(e) => {
                    return Err(ImportError::InvalidRow {
                        path: self.path_s.clone(),
                        line,
                        field: e.field,
                        reason: e.reason,
                        source: None,
                    })
                }
            }
        }
    }

    fn reject(&mut self, line: u64, e: RowError) -> Result<(), ImportError> {
        let rejects_err = |e: csv::Error| ImportError::Rejects {
            path: self.rejects_path.display().to_string(),
            source: e.into(),
        };
        if self.rejects.is_none() {
            let mut w = csv::Writer::from_path(&self.rejects_path).map_err(rejects_err)?;
            w.write_record(["line", "field", "reason"])
                .map_err(rejects_err)?;
            self.rejects = Some(w);
        }
        if let Some(w) = self.rejects.as_mut() {
            w.write_record([line.to_string(), e.field, e.reason])
                .map_err(rejects_err)?;
        }
        Ok(())
    }

    /// The key, subject and JSON body of a valid record, as stored.
    fn stored_form(
        &self,
        line: u64,
        record: &Record,
    ) -> Result<(String, String, String), ImportError> {
        let body = serde_json::to_string(record).map_err(|e| ImportError::InvalidRow {
            path: self.path_s.clone(),
            line,
            field: "-".into(),
            reason: e.to_string(),
            source: Some(e.into()),
        })?;
        Ok((
            text_of(record, &self.dataset.key).to_owned(),
            text_of(record, &self.dataset.subject).to_owned(),
            body,
        ))
    }

    /// Flushes the reject file; call before committing.
    fn finish(mut self) -> Result<ImportReport, ImportError> {
        if let Some(mut w) = self.rejects.take() {
            w.flush().map_err(|e| ImportError::Rejects {
                path: self.rejects_path.display().to_string(),
                source: e.into(),
            })?;
            self.report.rejects = Some(self.rejects_path.clone());
        }
        self.progress.finish(self.report.rows);
        self.report.elapsed = self.started.elapsed();
        Ok(self.report)
    }
}

/// One JSON Lines row: an object of field name → string (or number; null is absent).
fn parse_json_line(dataset: &Dataset, text: &str) -> Result<Record, RowError> {
    let obj = serde_json::from_str::<BTreeMap<String, serde_json::Value>>(text).map_err(|e| {
        RowError {
            field: "-".into(),
            reason: format!("not a JSON object: {e}"),
        }
    })?;
    let mut owned: Vec<(String, String)> = Vec::with_capacity(obj.len());
    for (k, v) in obj {
        match v {
            serde_json::Value::String(s) => owned.push((k, s)),
            serde_json::Value::Number(n) => owned.push((k, n.to_string())),
            serde_json::Value::Null => {}
            _ => {
                return Err(RowError {
                    field: k,
                    reason: "expected a string or number".into(),
                })
            }
        }
    }
    let cells = owned
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    parse_row(dataset, &cells)
}

/// Imports `file` into dataset `dataset` of the SQLite store at `store_path`.
pub fn import(
    store_path: &Path,
    dataset: &Dataset,
    file: &Path,
    options: &ImportOptions,
) -> Result<ImportReport, ImportError> {
    let mut input = Validated::open(dataset, file, options)?;
    let mut conn = crate::store::connect(store_path)?;
    let store_err = |e: rusqlite::Error| crate::store::StoreError::Database {
        path: store_path.display().to_string(),
        reason: e.to_string(),
    };
    let tx = conn.transaction().map_err(store_err)?;
    {
        let mut upsert = tx
            .prepare_cached(
                "INSERT INTO records (dataset, record_key, subject, body) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (dataset, record_key) DO UPDATE SET subject = excluded.subject, body = excluded.body
                 WHERE records.body IS NOT excluded.body OR records.subject IS NOT excluded.subject",
            )
            .map_err(store_err)?;
        while let Some((line, record)) = input.next_valid()? {
            let (key, subject, body) = input.stored_form(line, &record)?;
            let changed = upsert
                .execute(params![dataset.qualified, key, subject, body])
                .map_err(store_err)?;
            if changed > 0 {
                input.report.written += 1;
            } else {
                input.report.unchanged += 1;
            }
        }
    }
    let report = input.finish()?;
    tx.commit().map_err(store_err)?;
    Ok(report)
}

/// Rows per statement of a PostgreSQL import.
const PG_BATCH: usize = 4096;

/// Rows of one PostgreSQL import statement, with distinct record keys.
#[derive(Default)]
struct PgBatch {
    keys: Vec<String>,
    subjects: Vec<String>,
    bodies: Vec<String>,
    index: std::collections::HashMap<String, usize>,
}

impl PgBatch {
    /// Adds a row; a key already in the batch is replaced (the later row wins, as it would
    /// row by row) and counted in `report` here, since the database sees only the last.
    fn push(&mut self, key: String, subject: String, body: String, report: &mut ImportReport) {
        if let Some(&i) = self.index.get(&key) {
            let same = self.subjects.get(i) == Some(&subject) && self.bodies.get(i) == Some(&body);
            if same {
                report.unchanged += 1;
            } else {
                report.written += 1;
            }
            if let (Some(s), Some(b)) = (self.subjects.get_mut(i), self.bodies.get_mut(i)) {
                *s = subject;
                *b = body;
            }
            return;
        }
        self.index.insert(key.clone(), self.keys.len());
        self.keys.push(key);
        self.subjects.push(subject);
        self.bodies.push(body);
    }
}

/// Reads, validates and batches the file on its own thread, so parsing overlaps the
/// database's work. Batches go out on `batches`; returns the report's row counts.
fn read_batches(
    mut input: Validated,
    batches: tokio::sync::mpsc::Sender<PgBatch>,
) -> Result<ImportReport, ImportError> {
    let mut batch = PgBatch::default();
    while let Some((line, record)) = input.next_valid()? {
        let (key, subject, body) = input.stored_form(line, &record)?;
        batch.push(key, subject, body, &mut input.report);
        if batch.keys.len() >= PG_BATCH
            && batches.blocking_send(std::mem::take(&mut batch)).is_err()
        {
            // The importer stopped (the database failed); it reports why.
            return Ok(input.report);
        }
    }
    if !batch.keys.is_empty() {
        let _ = batches.blocking_send(batch);
    }
    input.finish()
}

/// Imports `file` into dataset `dataset` of a PostgreSQL store: the same validation,
/// reject file and report as [`import`]; one transaction (atomic), upserts by record key
/// (idempotent), [`PG_BATCH`] rows per statement, streaming (at most a few batches in
/// memory). The file is read and validated on a thread of its own while the database
/// upserts the previous batch.
pub async fn import_postgres(
    store: &crate::postgres::PgStore,
    dataset: &Dataset,
    file: &Path,
    options: &ImportOptions,
) -> Result<ImportReport, ImportError> {
    let started = Instant::now();
    let input = Validated::open(dataset, file, options)?;
    let mut tx = store.pool().begin().await.map_err(|e| store.err(e))?;
    let (send, mut batches) = tokio::sync::mpsc::channel::<PgBatch>(2);
    let reader = std::thread::Builder::new()
        .name("fedq-import".into())
        .spawn(move || read_batches(input, send))
        .map_err(|e| ImportError::Read {
            path: file.display().to_string(),
            reason: format!("cannot start the reader thread: {e}"),
            source: Some(e.into()),
        })?;
    let (mut written, mut unchanged) = (0u64, 0u64);
    while let Some(batch) = batches.recv().await {
        let n = crate::postgres::upsert_batch(
            &mut tx,
            store.label(),
            &dataset.qualified,
            &batch.keys,
            &batch.subjects,
            &batch.bodies,
        )
        .await?;
        written += n;
        unchanged += (batch.keys.len() as u64).saturating_sub(n);
    }
    let mut report = reader.join().map_err(|_| ImportError::Read {
        path: file.display().to_string(),
        reason: "the reader thread failed unexpectedly".into(),
        source: None,
    })??;
    report.written += written;
    report.unchanged += unchanged;
    tx.commit().await.map_err(|e| store.err(e))?;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// A progress bar on a terminal, plain lines otherwise.
enum Progress {
    Off,
    Bar(indicatif::ProgressBar),
    Lines(std::cell::Cell<Instant>),
}

impl Progress {
    fn new(enabled: bool, size: u64) -> Self {
        if !enabled {
            return Progress::Off;
        }
        if std::io::stderr().is_terminal() {
            let bar = indicatif::ProgressBar::new(size);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{spinner} importing [{bar:40}] {bytes}/{total_bytes} {msg}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            Progress::Bar(bar)
        } else {
            Progress::Lines(std::cell::Cell::new(Instant::now()))
        }
    }

    fn update(&self, rows: u64, byte: u64) {
        match self {
            Progress::Off => {}
            Progress::Bar(bar) => {
                if byte > 0 {
                    bar.set_position(byte);
                }
                bar.set_message(format!("{rows} rows"));
            }
            Progress::Lines(last) => {
                if last.get().elapsed() >= Duration::from_secs(2) {
                    eprintln!("imported {rows} rows so far");
                    last.set(Instant::now());
                }
            }
        }
    }

    fn finish(&self, rows: u64) {
        if let Progress::Bar(bar) = self {
            bar.finish_with_message(format!("{rows} rows"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn debtors() -> Dataset {
        let catalogue = fedq_policy::load::load_catalogue(
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../reference/changsha/catalogue/court.toml"),
        )
        .unwrap();
        catalogue.dataset("dishonest_debtors").unwrap().clone()
    }

    /// The io or CSV error behind a read or a malformed row is kept as the source; a row
    /// that does not validate has none. The messages are the ones they always were.
    #[test]
    fn errors_keep_the_error_behind_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store.db");
        let options = ImportOptions::default();
        let missing = dir.path().join("absent.csv");
        let err = import(&store, &debtors(), &missing, &options).unwrap_err();
        let io = std::error::Error::source(&err)
            .and_then(|e| e.downcast_ref::<std::io::Error>())
            .expect("the io error");
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
        assert_eq!(
            err.to_string(),
            format!("cannot read `{}`: {io}", missing.display())
        );

        let ragged = dir.path().join("ragged.csv");
        std::fs::write(
            &ragged,
            "case_no,resident_id,name,court,obligation,amount_owed,performance_status,listed_on,removed_on\nshort\n",
        )
        .unwrap();
        let mut rows = Validated::open(&debtors(), &ragged, &options).unwrap();
        let Err(err @ ImportError::InvalidRow { .. }) = rows.next_valid() else {
            panic!("a ragged row is refused");
        };
        let csv = std::error::Error::source(&err)
            .and_then(|e| e.downcast_ref::<csv::Error>())
            .expect("the CSV error");
        assert!(
            err.to_string().contains(&format!("malformed CSV: {csv}")),
            "{err}"
        );
    }
}
