//! `fedq gen-data`: realistic, deterministic synthetic data for a Changsha federation.
//!
//! For every dataset of every department catalogue it writes
//! `OUT/<department>/<dataset>.csv` (or `.jsonl`) with the catalogue's fields, in the
//! form the node importer parses (`Value::parse` for every cell), plus `OUT/persons.csv`
//! (the citizen register the demo uses for names) and `OUT/scenario.json` (the demo's
//! fixed persons, see [`Scenario`]).
//!
//! - Persons have resident IDs with valid check characters, real district codes, and a
//!   birth date and sex that agree with the ID.
//! - Dates that start the disclosure window spread over the six years before `today`, so
//!   the statutory 3-year window matters; about a fifth of repairable negative records
//!   are repaired.
//! - Same seed and same `today` give byte-identical output; person *i* depends only on
//!   the seed and *i*. Generation streams person by person: memory does not grow with
//!   the number of persons.

#![warn(missing_docs, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fedq_policy::catalogue::Catalogue;

mod output;
pub mod person;
pub mod profile;
mod records;
mod rng;
pub mod scenario;

pub use scenario::{Scenario, ScenarioPerson, ScenarioRecord, SCENARIO_FILE};

use output::Sink;
use person::{Person, PersonFactory};
use records::{DatasetGen, Days, Force};
use scenario::{Forced, ROLES};

/// `OUT/persons.csv`: resident_id, name, sex, birth_date, district.
pub const PERSONS_FILE: &str = "persons.csv";

/// How many persons at the start of the data are the scenario's.
pub const SCENARIO_PERSONS: u64 = ROLES.len() as u64;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Comma-separated, header row of field names, empty cell = absent.
    #[default]
    Csv,
    /// One JSON object per line, field name → string value, absent fields omitted.
    Jsonl,
}

impl Format {
    /// File extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
        }
    }
}

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenOptions {
    /// Number of persons, the scenario's included.
    pub persons: u64,
    /// Seed: same seed and today, same bytes.
    pub seed: u64,
    /// CSV or JSON Lines.
    pub format: Format,
    /// The day the data is as of; window dates spread over the six years before it.
    pub today: time::Date,
}

impl GenOptions {
    /// 10,000 persons, seed 1, CSV, as of `today`.
    pub fn new(today: time::Date) -> GenOptions {
        GenOptions {
            persons: 10_000,
            seed: 1,
            format: Format::Csv,
            today,
        }
    }
}

/// Rows written to one dataset file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetRows {
    /// Department.
    pub department: String,
    /// Dataset.
    pub dataset: String,
    /// Rows written (header excluded).
    pub rows: u64,
    /// The file.
    pub path: PathBuf,
}

/// What [`generate`] wrote.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Persons generated.
    pub persons: u64,
    /// Per dataset, in catalogue order.
    pub datasets: Vec<DatasetRows>,
    /// The scenario, as written to `scenario.json`.
    pub scenario: Scenario,
    /// Wall-clock time.
    pub elapsed: Duration,
}

/// Why generation failed.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// A file could not be read or written.
    #[error("cannot access `{path}`: {source}; check the path exists and is writable")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// CSV output failed.
    #[error("cannot write CSV to `{path}`: {source}; check the disk has space")]
    Csv {
        /// The file.
        path: PathBuf,
        /// Why.
        source: csv::Error,
    },
    /// JSON output or input failed.
    #[error("bad JSON in `{path}`: {source}; regenerate it with `fedq gen-data`")]
    Json {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
    /// A catalogue file is invalid.
    #[error("invalid catalogue:\n{0}\nfix the catalogue, or check it with `fedq policy check`")]
    Catalogue(String),
    /// The catalogue directory has no catalogues.
    #[error("no `*.toml` catalogues in `{0}`; pass `--catalogue DIR` with the department catalogues (e.g. reference/changsha/catalogue)")]
    NoCatalogues(PathBuf),
    /// A scenario role needs a dataset the catalogues lack.
    #[error("the scenario person `{role}` needs dataset `{dataset}` with a window-start date{repair}, which the catalogues do not declare; use the Changsha reference catalogues or add it")]
    ScenarioDataset {
        /// The role.
        role: &'static str,
        /// `department.dataset`.
        dataset: &'static str,
        /// ` and a repair field`, when that is what is missing.
        repair: &'static str,
    },
    /// Fewer persons than the scenario needs.
    #[error("`--persons {0}` is too few: the first {SCENARIO_PERSONS} persons are the demo scenario; ask for at least {SCENARIO_PERSONS}")]
    TooFewPersons(u64),
    /// More persons than there are resident IDs to give.
    #[error("the resident ID space of the nine districts holds at most {capacity} persons; ask for fewer")]
    TooManyPersons {
        /// Most persons possible.
        capacity: u64,
    },
    /// `--today` is not a date.
    #[error("`--today {0}` is not a date; write it as YYYY-MM-DD")]
    BadToday(String),
    /// `--today` is before every generated person is born.
    #[error(
        "`--today` in {0} is too early: persons are born 1950–2006; pick a day in 2007 or later"
    )]
    TodayTooEarly(i32),
    /// A bug.
    #[error("internal error in the data generator ({0}); please report it")]
    Internal(&'static str),
}

impl SynthError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> SynthError {
        SynthError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
    pub(crate) fn csv(path: &Path, source: csv::Error) -> SynthError {
        SynthError::Csv {
            path: path.to_path_buf(),
            source,
        }
    }
    pub(crate) fn json(path: &Path, source: serde_json::Error) -> SynthError {
        SynthError::Json {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Reads and parses every `*.toml` catalogue in `dir`, in file-name order.
pub fn load_catalogues(dir: &Path) -> Result<Vec<Catalogue>, SynthError> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| SynthError::io(dir, e))? {
        let path = entry.map_err(|e| SynthError::io(dir, e))?.path();
        if path.extension().is_some_and(|e| e == "toml") {
            paths.push(path);
        }
    }
    paths.sort();
    if paths.is_empty() {
        return Err(SynthError::NoCatalogues(dir.to_path_buf()));
    }
    let mut catalogues = Vec::with_capacity(paths.len());
    for path in paths {
        let text = std::fs::read_to_string(&path).map_err(|e| SynthError::io(&path, e))?;
        let name = path.display().to_string();
        catalogues.push(
            Catalogue::parse(&text, &name).map_err(|e| SynthError::Catalogue(e.to_string()))?,
        );
    }
    Ok(catalogues)
}

/// Writes the synthetic data for `catalogues` under `out` (created if missing).
pub fn generate(
    opts: &GenOptions,
    catalogues: &[Catalogue],
    out: &Path,
) -> Result<Summary, SynthError> {
    let started = Instant::now();
    if opts.persons < SCENARIO_PERSONS {
        return Err(SynthError::TooFewPersons(opts.persons));
    }
    let first_possible = person::date(person::BIRTH_YEARS.1 + 1, 1, 1)?;
    if opts.today < first_possible {
        return Err(SynthError::TodayTooEarly(opts.today.year()));
    }
    let mut factory = PersonFactory::new()?;
    if opts.persons > factory.capacity() / 2 {
        return Err(SynthError::TooManyPersons {
            capacity: factory.capacity() / 2,
        });
    }
    let today = opts.today;
    let days = Days {
        today,
        spread_from: profile::add_years(today, -profile::WINDOW_SPREAD_YEARS)
            .next_day()
            .unwrap_or(today),
    };

    // Check the scenario can be told before writing anything.
    let find = |qualified: &str| {
        catalogues
            .iter()
            .flat_map(|c| c.datasets.iter())
            .find(|d| d.qualified == qualified)
    };
    for role in &ROLES {
        for (qualified, forced) in role.records {
            if matches!(forced, Forced::Positive(_)) {
                continue;
            }
            let needs_repair = matches!(forced, Forced::Repaired(_));
            let ok = find(qualified)
                .is_some_and(|d| d.window_start.is_some() && (!needs_repair || d.repair.is_some()));
            if !ok {
                return Err(SynthError::ScenarioDataset {
                    role: role.name,
                    dataset: qualified,
                    repair: if needs_repair {
                        " and a repair field"
                    } else {
                        ""
                    },
                });
            }
        }
    }

    std::fs::create_dir_all(out).map_err(|e| SynthError::io(out, e))?;
    let mut gens = Vec::new();
    for catalogue in catalogues {
        let dir = out.join(&catalogue.department);
        std::fs::create_dir_all(&dir).map_err(|e| SynthError::io(&dir, e))?;
        for dataset in &catalogue.datasets {
            let path = dir.join(format!("{}.{}", dataset.name, opts.format.extension()));
            let names: Vec<&str> = dataset.fields.iter().map(|f| f.name.as_str()).collect();
            let sink = Sink::create(&path, opts.format, &names)?;
            let profile = profile::profile(&dataset.qualified);
            gens.push((path, DatasetGen::new(dataset.clone(), profile, sink)));
        }
    }
    let persons_path = out.join(PERSONS_FILE);
    let mut persons_sink = Sink::create(
        &persons_path,
        Format::Csv,
        &["resident_id", "name", "sex", "birth_date", "district"],
    )?;
    let mut person_row = vec![String::new(); 5];
    let mut person = Person::default();

    let mut scenario_people = Vec::with_capacity(ROLES.len());
    for (index, role) in ROLES.iter().enumerate() {
        let mut rng = rng::stream_rng(opts.seed, index as u64);
        factory.fixed(&role.person, &mut person)?;
        write_person(&mut persons_sink, &mut person_row, &person)?;
        let mut records = Vec::new();
        for (_, gen) in &mut gens {
            let forced: Vec<Forced> = role
                .records
                .iter()
                .filter(|(q, _)| *q == gen.dataset.qualified)
                .map(|(_, f)| *f)
                .collect();
            let mut push = |gen: &mut DatasetGen, key: String| {
                records.push(ScenarioRecord {
                    department: gen.dataset.department.clone(),
                    dataset: gen.dataset.name.clone(),
                    key,
                });
            };
            if gen.profile.target_share() >= 1.0 {
                let key = gen.record(&mut rng, &person, days, None)?.to_owned();
                push(gen, key);
            }
            for f in forced {
                let (ago, repaired) = match f {
                    Forced::Unrepaired(d) | Forced::Positive(d) => (d, false),
                    Forced::Repaired(d) => (d, true),
                };
                let date = today.saturating_sub(time::Duration::days(ago));
                let force = Force { date, repaired };
                let key = gen.record(&mut rng, &person, days, Some(force))?.to_owned();
                push(gen, key);
            }
        }
        scenario_people.push(ScenarioPerson {
            resident_id: person.id_str().to_owned(),
            name: person.name.clone(),
            records,
        });
    }

    for index in SCENARIO_PERSONS..opts.persons {
        let mut rng = rng::stream_rng(opts.seed, index);
        factory.random(&mut rng, &mut person)?;
        write_person(&mut persons_sink, &mut person_row, &person)?;
        for (_, gen) in &mut gens {
            for _ in 0..gen.count(&mut rng, &person, today) {
                gen.record(&mut rng, &person, days, None)?;
            }
        }
    }

    persons_sink.finish()?;
    let mut datasets = Vec::with_capacity(gens.len());
    for (path, gen) in gens {
        datasets.push(DatasetRows {
            department: gen.dataset.department.clone(),
            dataset: gen.dataset.name.clone(),
            rows: gen.rows,
            path,
        });
        gen.sink.finish()?;
    }

    let mut people = scenario_people.into_iter();
    let mut next = || {
        people
            .next()
            .ok_or(SynthError::Internal("scenario persons"))
    };
    let scenario = Scenario {
        today,
        seed: opts.seed,
        blacklisted: next()?,
        clean: next()?,
        expired: next()?,
        repaired: next()?,
        tax_arrears: next()?,
    };
    let path = out.join(SCENARIO_FILE);
    let mut json =
        serde_json::to_string_pretty(&scenario).map_err(|e| SynthError::json(&path, e))?;
    json.push('\n');
    std::fs::write(&path, json).map_err(|e| SynthError::io(&path, e))?;

    Ok(Summary {
        persons: opts.persons,
        datasets,
        scenario,
        elapsed: started.elapsed(),
    })
}

fn write_person(sink: &mut Sink, row: &mut [String], person: &Person) -> Result<(), SynthError> {
    for c in row.iter_mut() {
        c.clear();
    }
    if let [id, name, sex, birth, district] = row {
        id.push_str(person.id_str());
        name.push_str(&person.name);
        sex.push_str(person.sex.as_str());
        records::push_date(birth, person.birth);
        district.push_str(person.district.name);
    }
    sink.write(row)
}
