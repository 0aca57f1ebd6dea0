//! `fedq bench`: the command line of [`fedq_bench`].

use std::path::PathBuf;

use fedq_bench::{BenchArgs, Section};

/// A part of the bench, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SectionArg {
    /// fedq's policy engine against `cedar-policy` (Cedar only in builds with the `cedar`
    /// feature) at 100, 500 and 2,000 rules.
    Policy,
    /// Import, lookup inside the node, audit appends and verification.
    Internals,
    /// Lookups through the coordinator and node processes, fan-out 1, 3 and 6.
    Lookups,
    /// The same lookups through PostgreSQL and postgres_fdw.
    Baseline,
}

impl From<SectionArg> for Section {
    fn from(s: SectionArg) -> Self {
        match s {
            SectionArg::Policy => Section::Policy,
            SectionArg::Internals => Section::Internals,
            SectionArg::Lookups => Section::Lookups,
            SectionArg::Baseline => Section::Baseline,
        }
    }
}

/// Arguments of `fedq bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchCli {
    /// Records per node.
    #[arg(long, default_value_t = 1_000_000)]
    pub records: u64,
    /// Records in the court node, whose store the node-internal lookup figure is measured
    /// on (default: `--records`). `--court-records 10000000` gives the 10M-record figure.
    #[arg(long)]
    pub court_records: Option<u64>,
    /// Concurrency levels (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,8,64,256")]
    pub concurrency: Vec<usize>,
    /// Seconds of measured load per point (after one second of warm-up).
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Which parts to run (comma-separated; default all). `policy` needs no federation and
    /// takes under a minute; every other section loads the six stores first.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "policy,internals,lookups,baseline"
    )]
    pub sections: Vec<SectionArg>,
    /// Skip the postgres_fdw baseline (same as leaving `baseline` out of `--sections`).
    #[arg(long)]
    pub no_baseline: bool,
    /// Where the report goes.
    #[arg(long, default_value = "target/bench-report")]
    pub out: PathBuf,
}

impl From<BenchCli> for BenchArgs {
    fn from(a: BenchCli) -> Self {
        Self {
            records: a.records,
            court_records: a.court_records,
            concurrency: a.concurrency,
            seconds: a.seconds,
            sections: a.sections.into_iter().map(Section::from).collect(),
            no_baseline: a.no_baseline,
            out: a.out,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchCli,
    }

    fn args(line: &[&str]) -> BenchArgs {
        Cli::parse_from(std::iter::once("bench").chain(line.iter().copied()))
            .bench
            .into()
    }

    #[test]
    fn the_command_line_defaults_are_the_library_s_and_sections_parse() {
        let defaults = args(&[]);
        let library = BenchArgs::default();
        assert_eq!(defaults.records, library.records);
        assert_eq!(defaults.concurrency, library.concurrency);
        assert_eq!(defaults.seconds, library.seconds);
        assert_eq!(defaults.sections, library.sections);
        assert_eq!(defaults.out, library.out);
        assert_eq!(
            args(&["--no-baseline"]).selected(),
            [Section::Policy, Section::Internals, Section::Lookups]
        );
        assert_eq!(
            args(&["--sections", "lookups,policy,policy"]).selected(),
            [Section::Policy, Section::Lookups]
        );
    }
}
