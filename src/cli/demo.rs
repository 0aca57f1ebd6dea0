//! `fedq demo`: the command line of [`fedq_demo`].

use std::path::PathBuf;

use fedq_demo::DemoArgs;

/// Arguments of `fedq demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoCli {
    /// Exit after the tour (exit code 0 only if every answer was as expected).
    #[arg(long)]
    pub no_serve: bool,
    /// Keep the whole federation in DIR (certificates, configs, data, stores, logs).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// How many synthetic persons to generate.
    #[arg(long, default_value_t = 10_000)]
    pub persons: u64,
    /// Seed of the synthetic data.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

impl From<DemoCli> for DemoArgs {
    fn from(a: DemoCli) -> Self {
        Self {
            no_serve: a.no_serve,
            dir: a.dir,
            persons: a.persons,
            seed: a.seed,
        }
    }
}
