//! What a coordinator may ask a node, and what a node answers.
//!
//! Messages are encoded with postcard inside [`crate::frame`]s; new variants are only ever
//! appended, and a change that breaks the encoding bumps
//! [`crate::frame::PROTOCOL_VERSION`] (and the ALPN).

use serde::{Deserialize, Serialize};

/// A coordinator's request to a node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeRequest {
    /// Liveness and authentication check: answers with the node's name.
    Ping,
}

/// A node's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeResponse {
    /// Answer to [`NodeRequest::Ping`].
    Pong {
        /// The node's name from its certificate.
        node: String,
    },
    /// The node could not answer; no data was released.
    Failed {
        /// Machine-readable reason.
        code: FailureCode,
        /// One line for the operator; never personal data.
        message: String,
    },
}

/// Why a node could not answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailureCode {
    /// The node does not serve this kind of request.
    Unsupported,
    /// The node's store or audit log is unavailable: it fails closed.
    Unavailable,
    /// The node is shutting down.
    ShuttingDown,
}
