//! The coordinator: authenticates requesters, checks purpose and policy, fans out to the
//! nodes that hold the requested datasets over pooled QUIC connections, merges their
//! already-minimized answers, computes views, and registers every query in its audit log.
//! It keeps no records at rest.
//!
//! - [`config`]: `coordinator.toml`, validated before any socket is bound;
//! - [`query`]: the API types, planning and merging, as plain functions;
//! - [`outcome`]: a query's outcome typed, with its HTTP status, audit kind and outcome
//!   and metric decided in one place;
//! - [`service`]: one query's path, audit before answer;
//! - [`admission`]: connection caps, per-connection timeouts, accept back-off;
//! - [`health`]: which nodes answer; a down node is answered `unavailable` at once and
//!   probed in the background;
//! - [`https`]: the requester API (HTTPS, client certificates) and the ops listener;
//! - [`ops`]: the coordinator's and the gateway's metrics and `/health` checks (served
//!   by [`fedq_ops`]);
//! - [`client`]: the requester's side — a proving, sealing connection to the API
//!   (`fedq query`, `fedq policy publish | status`) and how answers read for people;
//! - [`complaints`]: the complaint queue, its endpoints and the officers' tools;
//! - [`gateway`]: a requesting agency's gateway (`fedq gateway …`);
//! - [`consent`]: the consent authority's tokens (`fedq consent …`);
//! - [`serve`]: a coordinator started from its config in the caller's runtime.
//!
//! The `fedq` binary parses the arguments of those commands and owns the runtime; nothing
//! here builds one.

#![warn(missing_docs, unreachable_pub)]

pub mod admission;
pub mod client;
pub mod complaints;
pub mod config;
pub mod consent;
pub mod disclosure;
pub mod gateway;
pub mod health;
pub mod https;
pub mod openapi;
pub mod opening;
pub mod ops;
pub mod outcome;
pub mod query;
pub mod rights;
pub mod route;
pub mod serve;
pub mod service;
pub mod witnessing;

/// The API's types, shared with the client crate (`fedq-client`).
pub use fedq_client::{answer, api, problem, statistics};
