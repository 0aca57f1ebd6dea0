//! `fedq gen-data`: synthetic Changsha data ([`fedq_synth`]).

use std::path::PathBuf;

use fedq_synth::{generate, load_catalogues, Format, GenOptions, SynthError};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum FormatArg {
    /// Comma-separated, header row of field names, empty cell = absent.
    #[default]
    Csv,
    /// One JSON object per line, field name → string value, absent fields omitted.
    Jsonl,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Csv => Format::Csv,
            FormatArg::Jsonl => Format::Jsonl,
        }
    }
}

/// Arguments of `fedq gen-data`.
#[derive(Debug, Clone, clap::Args)]
pub struct GenDataArgs {
    /// Directory to write into: OUT/<department>/<dataset>.csv, OUT/persons.csv,
    /// OUT/scenario.json. Existing files of the same names are overwritten.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Number of persons (the first five are the demo scenario's).
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub persons: u64,
    /// Seed: the same seed and --today give byte-identical output.
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub seed: u64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = FormatArg::Csv)]
    pub format: FormatArg,
    /// Directory of department catalogues (*.toml).
    #[arg(
        long,
        value_name = "DIR",
        default_value = "reference/changsha/catalogue"
    )]
    pub catalogue: PathBuf,
    /// The day the data is as of (YYYY-MM-DD); defaults to today (UTC).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub today: Option<String>,
}

/// Runs `fedq gen-data` and prints a short summary.
pub fn run(args: GenDataArgs) -> Result<(), SynthError> {
    let today = match &args.today {
        Some(text) => fedq_policy::transform::parse_date(text.trim())
            .ok_or_else(|| SynthError::BadToday(text.clone()))?,
        None => time::OffsetDateTime::now_utc().date(),
    };
    let catalogues = load_catalogues(&args.catalogue)?;
    let opts = GenOptions {
        persons: args.persons,
        seed: args.seed,
        format: args.format.into(),
        today,
    };
    let summary = generate(&opts, &catalogues, &args.out)?;
    let secs = summary.elapsed.as_secs_f64();
    println!(
        "wrote {} persons (seed {}, today {}) to {}",
        summary.persons,
        opts.seed,
        iso(today),
        args.out.display()
    );
    let width = summary
        .datasets
        .iter()
        .map(|d| d.department.len() + d.dataset.len() + 1)
        .max()
        .unwrap_or(0);
    let mut total = 0u64;
    for d in &summary.datasets {
        let name = format!("{}.{}", d.department, d.dataset);
        println!("  {name:<width$}  {:>10} rows", d.rows);
        total += d.rows;
    }
    println!(
        "{total} records in {:.2} s ({:.0} persons/s); scenario persons in {}",
        secs,
        summary.persons as f64 / secs.max(1e-9),
        args.out.join(fedq_synth::SCENARIO_FILE).display()
    );
    Ok(())
}

/// `YYYY-MM-DD`.
fn iso(d: time::Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}
