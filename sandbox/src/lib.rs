//! A federation on one machine: the reference Changsha federation built in a directory
//! and run on 127.0.0.1 — a CA and certificates from `fedq-certs`, one node per
//! department on SQLite filled with synthetic data, the coordinator, the licensing
//! office's gateway, the reference catalogue and policy — and the requester's and consent
//! authority's side, to ask it as the offices do.
//!
//! `fedq demo` tours it, `fedq bench` measures it and the end-to-end tests drive it; it is
//! not for anything that holds real records (every key is made on the spot and the data
//! is synthetic).
//!
//! - [`reference`]: the embedded catalogues and policy, and the names its offices use.
//! - [`build()`]: writes a [`Federation`] into a directory, laid out as [`Layout`]
//!   documents; nothing runs yet.
//! - [`Running`]: starts it in the caller's runtime and stops it, draining.
//! - [`requests`] and [`consent`]: an office's query ([`Ask`]) sent as `fedq query` does,
//!   and consent tokens, signed by the consent authority or forged.
//!
//! It never builds a runtime of its own, and never reads a key it did not make.

#![warn(missing_docs, unreachable_pub)]

mod build;
pub mod consent;
pub mod disclosure;
mod layout;
mod ports;
pub mod reference;
pub mod requests;
pub mod rights;
mod running;

pub use build::{build, BuildOptions, Federation, SandboxError};
pub use consent::{consent_token, forged_consent_token};
pub use layout::Layout;
pub use reference::*;
pub use requests::{
    ask, ask_rights, ask_through_gateway, at_the_window, licensing, self_query, Ask, RightsAsk,
};
pub use running::{start_node, Running};
