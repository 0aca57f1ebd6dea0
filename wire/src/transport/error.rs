//! What goes wrong: setting an endpoint up ([`TransportError`]), a coordinator's request
//! to a node ([`ChannelError`]), and [`classify`], which reads an authentication refusal
//! out of a closed connection wherever it surfaces.
//!
//! TLS 1.3's client finishes its handshake before the server has judged the client's
//! certificate, so a refused client learns of it only from the connection being closed
//! with a TLS alert; [`classify`] turns that close into an [`AuthRefusal`].
//!
//! Types and pure functions only: this module must never touch a socket or a file.

use std::net::SocketAddr;
use std::time::Duration;

use fedq_certs::tls::{AuthRefusal, TlsError};
use quinn::{ConnectionError, VarInt};

use super::code;

/// Errors setting up an endpoint.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// Certificates, key or CRL are unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The UDP socket could not be bound.
    #[error("cannot bind UDP {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// quinn refused the TLS or transport configuration.
    #[error("QUIC configuration refused: {source}")]
    Quic {
        /// What quinn said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl TransportError {
    pub(super) fn quic(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        TransportError::Quic {
            source: Box::new(source),
        }
    }
}
/// Why a coordinator's request to a node got no answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// Authentication failed, on our side or the node's.
    #[error("node `{node}`: {side} refused: {reason}")]
    Refused {
        /// The node.
        node: String,
        /// Who refused.
        side: RefusedBy,
        /// Why.
        reason: AuthRefusal,
    },
    /// The node could not be reached or the connection was lost.
    #[error("node `{node}` unavailable: {reason}")]
    Unavailable {
        /// The node.
        node: String,
        /// Why, for the operator.
        reason: Unreachable,
    },
    /// No answer within the deadline.
    #[error("node `{node}` did not answer within {after:?}")]
    TimedOut {
        /// The node.
        node: String,
        /// The deadline.
        after: Duration,
    },
    /// The node answered with something that is not a valid frame, or reset the stream.
    #[error("node `{node}`: protocol error: {reason}")]
    Protocol {
        /// The node.
        node: String,
        /// What was wrong.
        reason: ProtocolError,
    },
}

/// Why a node could not be reached or its connection was lost ([`ChannelError::Unavailable`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unreachable {
    /// No handshake within the request's deadline.
    #[error("no connection could be established within {} ms", .0.as_millis())]
    NoConnection(Duration),
    /// The node is draining for a shutdown and refused the request.
    #[error("it is shutting down")]
    ShuttingDown,
    /// The pool replaced or dropped the connection the request was on.
    #[error("the coordinator closed the connection this request was on (the node stopped answering on it)")]
    ClosedHere,
    /// quinn would not start a connection.
    #[error(transparent)]
    Connect(#[from] quinn::ConnectError),
    /// The connection failed or was lost.
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    /// Why, in the words of the caller that judged the node unavailable without asking
    /// it (a coordinator's node marked down, a node no proof was made for).
    #[error("{0}")]
    Other(String),
}

/// What was wrong with a node's answer or the stream it came on ([`ChannelError::Protocol`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A request or an answer that is not a valid frame.
    #[error(transparent)]
    Frame(#[from] crate::frame::FrameError),
    /// The node answered a ping with something else than pong.
    #[error("the node did not answer a ping with pong")]
    NoPong,
    /// The request could not be written to the stream.
    #[error("request not sent: {0}")]
    NotSent(#[source] quinn::WriteError),
    /// The node reset the stream (not for a shutdown).
    #[error("node reset the stream with code {0}")]
    Reset(VarInt),
    /// The answer could not be read from the stream.
    #[error(transparent)]
    Read(#[from] quinn::ReadExactError),
    /// The stream closed before an answer.
    #[error("stream closed")]
    Closed,
}

/// Which side of a handshake refused the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusedBy {
    /// We refused the peer's certificate.
    Us,
    /// The peer refused ours.
    Peer,
}

impl std::fmt::Display for RefusedBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RefusedBy::Us => "we",
            RefusedBy::Peer => "the node",
        })
    }
}

/// If a connection error is an authentication refusal, says who refused and why.
pub fn classify(error: &ConnectionError) -> Option<(RefusedBy, AuthRefusal)> {
    let (side, code) = match error {
        ConnectionError::TransportError(e) => (RefusedBy::Us, u64::from(e.code)),
        ConnectionError::ConnectionClosed(c) => (RefusedBy::Peer, u64::from(c.error_code)),
        ConnectionError::ApplicationClosed(c)
            if c.error_code == VarInt::from_u32(code::CERTIFICATE_REVOKED) =>
        {
            return Some((RefusedBy::Peer, AuthRefusal::Revoked));
        }
        _ => return None,
    };
    if !(0x100..0x200).contains(&code) {
        return None;
    }
    let alert = u8::try_from(code - 0x100).ok()?;
    AuthRefusal::from_alert(alert).map(|r| (side, r))
}
