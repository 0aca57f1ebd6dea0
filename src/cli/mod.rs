//! The `fedq` command line: each file parses one group of subcommands (clap), calls the
//! library that does the work, and prints what it returns. Nothing here decides anything
//! a library could; the runtime and the shutdown signal are `main`'s.

pub mod audit;
pub mod bench;
pub mod bundle;
pub mod certs;
pub mod complaint;
pub mod consent;
pub mod console;
pub mod coordinator;
pub mod decision;
pub mod demo;
pub mod disclose;
pub mod gateway;
pub mod node;
pub mod policy;
pub mod statistics;
pub mod synth;

/// An error as one message: for the commands whose errors were always printed as their
/// message alone (no chain of sources after it).
pub fn message(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}
