//! `fedq policy …` without building the rest of the workspace:
//! `cargo run -p fedq-policy --example policy -- check reference/changsha/policy.toml`.
//! Same code path as the `fedq` binary ([`fedq_policy::cli::run`]).

use std::process::ExitCode;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "fedq policy",
    about = "Security officers' tools: check, test, diff, explain, who-can"
)]
struct Args {
    #[command(subcommand)]
    cmd: fedq_policy::cli::PolicyCommand,
}

fn main() -> ExitCode {
    match fedq_policy::cli::run(Args::parse().cmd) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
