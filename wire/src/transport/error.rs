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
        reason: String,
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
        reason: String,
    },
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
