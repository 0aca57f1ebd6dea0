//! The wire contract between the coordinator and the nodes.
//!
//! - [`frame`]: the versioned, length-prefixed binary framing (a plain function pair,
//!   testable without a network);
//! - [`message`]: what a coordinator may ask a node and what a node answers;
//! - [`proof`]: the requester's proof of who asks — the session a requester opens with each
//!   node and the per-query MAC the node checks itself (pure: no sockets, no clocks);
//! - [`refusal`]: why a node refused a lookup's proof, as the wire carries it;
//! - [`seal`]: sealing over that session — a `dir`/`A256GCM` compact JWE (RFC 7516) only
//!   the session's two ends can open, one key per direction (a lookup's subject and
//!   consent token travel sealed; answers do not yet);
//! - [`transport`]: QUIC with mutual TLS (quinn + rustls on ring): the node's accept loop,
//!   the coordinator's pooled channel per node, limits, and the one reloading holder of
//!   certificates and the CRL every server uses;
//! - [`drain`]: the one drain signal and grace period every server and background task
//!   stops on.
//!
//! This crate carries bytes; it never decides what a node may release.

#![warn(missing_docs, unreachable_pub)]

pub mod drain;
pub mod frame;
pub mod message;
pub mod proof;
pub mod psi;
pub mod refusal;
pub mod resident_id;
pub mod rights;
pub mod seal;
pub mod transport;

pub use frame::{FrameError, MAX_FRAME_LEN, PROTOCOL_VERSION};
pub use message::{NodeRequest, NodeResponse};
pub use resident_id::{ResidentId, ResidentIdError};
