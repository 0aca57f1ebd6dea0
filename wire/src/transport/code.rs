//! The protocol's names on the wire: its ALPN and the QUIC application error codes
//! streams and connections are closed with, and which code a frame error resets a stream
//! with.
//!
//! Constants only: this module must never import the rest of the transport.

use crate::frame::FrameError;

/// ALPN of the coordinator–node protocol; names the protocol version.
pub const ALPN: &[u8] = b"fedq-node/6";

/// The request frame could not be decoded.
pub const FRAME_MALFORMED: u32 = 0x1;
/// The request frame exceeded the size limit.
pub const FRAME_TOO_LARGE: u32 = 0x2;
/// The request frame has another protocol version.
pub const VERSION_UNSUPPORTED: u32 = 0x3;
/// The request did not arrive within the stream read deadline.
pub const STREAM_TIMEOUT: u32 = 0x4;
/// The node failed to produce an answer.
pub const INTERNAL: u32 = 0x5;
/// The answer could not be written within the stream write deadline (the peer does
/// not read it).
pub const WRITE_TIMEOUT: u32 = 0x6;
/// Connection closed because the peer's certificate was revoked.
pub const CERTIFICATE_REVOKED: u32 = 0x10;
/// Connection closed because the endpoint is shutting down.
pub const SHUTDOWN: u32 = 0x11;

impl FrameError {
    /// The QUIC application error code a stream is reset with for this error.
    pub fn stream_code(&self) -> u32 {
        match self {
            FrameError::TooLarge { .. } => FRAME_TOO_LARGE,
            FrameError::UnsupportedVersion(_) => VERSION_UNSUPPORTED,
            _ => FRAME_MALFORMED,
        }
    }
}
