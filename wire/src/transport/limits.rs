//! The hard limits of one endpoint, and the QUIC transport settings they become.
//!
//! Plain data and one pure conversion: this module must never open a socket or read a
//! file.

use std::time::Duration;

use quinn::VarInt;

use super::error::TransportError;
use crate::frame::{self, HEADER_LEN};

/// Hard limits of one endpoint.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest frame payload accepted, in bytes.
    pub max_frame_len: usize,
    /// Concurrent request streams a coordinator may open on one connection.
    pub max_concurrent_streams: u32,
    /// Bytes one connection may hold in a node's memory at once: request frames being
    /// read and answers being written (each frame counts its whole declared size, taken
    /// before the payload is allocated), and, separately, as much again unread in QUIC's
    /// receive buffers (the connection's flow-control window) and unacknowledged in its
    /// send buffers. A stream waits for its share within its read or write deadline, so
    /// one connection cannot make a node hold more than about three times this.
    pub max_connection_bytes: usize,
    /// Connections (handshakes included; a handshake must complete within
    /// [`Self::stream_read_timeout`]) a node serves at once; more are refused.
    pub max_connections: usize,
    /// A connection with no traffic for this long is closed.
    pub idle_timeout: Duration,
    /// The coordinator pings this often so a pooled connection stays open.
    pub keep_alive: Duration,
    /// A request frame must arrive within this time of its stream opening.
    pub stream_read_timeout: Duration,
    /// An answer must be taken by the peer within this time of being ready.
    pub stream_write_timeout: Duration,
    /// How often certificate, key and CRL files are checked for changes.
    pub reload_interval: Duration,
    /// After an authentication refusal, how long a channel waits before trying again.
    pub refusal_backoff: Duration,
    /// How long graceful shutdown lets in-flight requests finish.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_len: frame::MAX_FRAME_LEN,
            max_concurrent_streams: 256,
            max_connection_bytes: 4 << 20,
            max_connections: 64,
            idle_timeout: Duration::from_secs(30),
            keep_alive: Duration::from_secs(10),
            stream_read_timeout: Duration::from_secs(5),
            stream_write_timeout: Duration::from_secs(10),
            reload_interval: Duration::from_secs(2),
            refusal_backoff: Duration::from_secs(5),
            shutdown_grace: crate::drain::SHUTDOWN_GRACE,
        }
    }
}

pub(super) fn transport_config(
    limits: &Limits,
    accept_streams: bool,
) -> Result<quinn::TransportConfig, TransportError> {
    let mut t = quinn::TransportConfig::default();
    let idle = quinn::IdleTimeout::try_from(limits.idle_timeout).map_err(TransportError::quic)?;
    t.max_idle_timeout(Some(idle));
    t.max_concurrent_uni_streams(VarInt::from_u32(0));
    t.max_concurrent_bidi_streams(VarInt::from_u32(if accept_streams {
        limits.max_concurrent_streams
    } else {
        0
    }));
    if accept_streams {
        // quinn's defaults let a peer park up to 1.25 MB per stream and an unbounded
        // amount per connection in our receive buffers, and buffer 10 MB of answers.
        let budget = limits.max_connection_bytes.max(1);
        let window = |n: usize| VarInt::from_u64(n as u64).unwrap_or(VarInt::MAX);
        t.receive_window(window(budget));
        t.stream_receive_window(window(
            limits.max_frame_len.saturating_add(HEADER_LEN).min(budget),
        ));
        t.send_window(budget as u64);
    } else {
        t.keep_alive_interval(Some(limits.keep_alive));
    }
    Ok(t)
}
