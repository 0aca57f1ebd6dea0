//! Shared set-up for end-to-end tests: everything in the `fedq-testkit` crate, and the
//! `fedq` binary under test started as processes ([`process`]), which only the root
//! package's tests can name.

#![allow(
    dead_code,
    unused_imports,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub use fedq_testkit::*;

pub mod process;
