//! A department node: what a department installs beside its own database.
//!
//! - [`config`]: `node.toml`, validated in full before anything is opened;
//! - [`store`]: the node's records (SQLite by default, or [`postgres`]) and credit repairs;
//! - [`postgres`]: the PostgreSQL store for large departments (`store = "postgres://…"`);
//! - [`stored`]: what both stores hold and how reading them fails;
//! - [`pg`]: PostgreSQL URLs and pools, for the PostgreSQL store and attached tables;
//! - [`attach`]: datasets read from the department's own PostgreSQL tables (`[[attach]]`);
//! - [`source`]: every place records are read from behind one trait, [`source::RecordSource`]
//!   (the SQLite store, the PostgreSQL store, attached tables), and the set a node holds;
//! - [`import`]: `fedq node import`, validated, atomic, idempotent, streaming;
//! - [`evidence`]: whether what was read can be answered from (else the dataset is
//!   *unverified*, never "no record");
//! - [`enforce`]: the decision path as a plain function — statutory window and repair,
//!   the node's **own** copy of the policy, minimization — testable without a network;
//! - [`lookup`]: one lookup as a plain state machine over data (admit, read, answer, release);
//! - [`service`]: `fedq node serve`: the QUIC endpoint, audit before answer;
//! - [`ops`]: its metrics and the checks of its `/health` (served by [`fedq_ops`]);
//! - [`admin`]: the operator's work beside serving — `fedq node init`, `import`, `repair`.
//!
//! A record field leaves this crate only through [`enforce::answer`], after the node's
//! own policy decision and transform.

#![warn(missing_docs, unreachable_pub)]

pub mod admin;
pub mod attach;
pub mod config;
pub mod consent;
pub mod decisions;
pub mod disclose;
pub mod enforce;
pub mod evidence;
pub mod import;
pub mod lookup;
pub mod ops;
pub mod pg;
pub mod postgres;
pub mod remedies;
pub mod rights;
pub mod service;
pub mod source;
pub mod statistics;
pub mod store;
pub mod stored;
pub mod witnessing;
