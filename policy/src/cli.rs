//! `fedq policy …`: the security officers' tools.

use std::process::ExitCode;

/// The `fedq policy` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy against the catalogue.
    Check {
        /// The policy file.
        file: std::path::PathBuf,
    },
}

/// Runs one `fedq policy` subcommand, printing its report; the exit code says whether it passed.
pub fn run(cmd: PolicyCommand) -> Result<ExitCode, Box<dyn std::error::Error + Send + Sync>> {
    match cmd {
        PolicyCommand::Check { file } => {
            Err(format!("`fedq policy check {}`: not built yet", file.display()).into())
        }
    }
}
