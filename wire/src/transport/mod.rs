//! QUIC with mutual TLS between coordinator and nodes, split by job; each module's
//! imports point one way (down this list):
//!
//! - [`code`]: the ALPN and the QUIC application error codes;
//! - [`limits`]: an endpoint's hard limits and the QUIC settings they become;
//! - [`files`]: the TLS files of a process and one load of them;
//! - [`reload`]: [`Reloading`], the one holder of TLS material that reloads when the files
//!   change (used by the node's listener, the coordinator's client and its HTTPS API);
//! - [`error`]: [`TransportError`], [`ChannelError`] and [`classify`];
//! - `conn`: what both ends do with a connection (the peer's certificate, one frame);
//! - [`server`]: the node's listener, [`NodeEndpoint`];
//! - [`client`]: the coordinator's pooled channels, [`NodeClient`] / [`NodeChannel`].
//!
//! Every item is re-exported here, so `fedq_wire::transport::X` names it whatever module
//! it lives in. This layer carries bytes; it never decides what a node may release.

pub mod client;
pub mod code;
mod conn;
pub mod error;
pub mod files;
pub mod limits;
pub mod reload;
pub mod server;

pub use client::{NodeChannel, NodeClient};
pub use code::ALPN;
pub use error::{classify, ChannelError, ProtocolError, RefusedBy, TransportError, Unreachable};
pub use files::{CrlGraceTooLong, FileStamps, TlsFiles, TlsPaths};
pub use limits::Limits;
pub use reload::{ReloadLog, Reloading};
pub use server::{FrameTap, Handler, NodeEndpoint, TrustView};
