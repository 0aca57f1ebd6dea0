//! The bodies of the requester API's endpoints other than the query itself (whose types
//! are [`crate::query::QueryRequest`], [`crate::query::RelayedAnswer`] and, on the
//! requester side, [`crate::query::QueryResponse`]). The coordinator builds its answers
//! from these types and its OpenAPI document is generated from them, so the two cannot
//! drift.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `GET /v1/nodes`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NodeList {
    /// The nodes a requester opens sessions with and proves its queries to.
    pub nodes: Vec<String>,
    /// Each view of the policy in force → the nodes it asks (its sources' departments
    /// this coordinator has). A client proves a view query only to these; if the plan
    /// changed since it listed them, the coordinator's 400 (`proof-missing`) says which
    /// node lacks a proof and the client lists again. Absent: every node is proven to.
    #[serde(default)]
    pub views: BTreeMap<String, Vec<String>>,
}

/// `POST /v1/sessions`: the requester's session grants, one per node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    /// Node name → session grant: a compact ES256 JWS (typ `fedq-session+jwt`, the
    /// requester's certificate in `x5c`) with payload {fed, node, sid (16 random bytes,
    /// base64url), epk (ephemeral X25519 public key, base64url), iat, exp (exp − iat ≤
    /// 3600)}. 1 to 64 nodes; at most 8192 bytes each.
    pub grants: BTreeMap<String, String>,
}

/// The answer to `POST /v1/sessions`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SessionsOpened {
    /// Node name → the node's session accept: a compact ES256 JWS (typ
    /// `fedq-session-accept+jwt`, the node's certificate in `x5c`) with payload {fed, node,
    /// sid, epk (the node's ephemeral X25519 key), grant (base64url SHA-256 of the grant),
    /// exp}. The requester verifies it against the CA and CRL and derives the session key
    /// (X25519, HKDF-SHA256); the coordinator holds neither private key.
    pub accepts: BTreeMap<String, String>,
    /// Node name → why no session was opened there (one line: the node's refusal of the
    /// grant, or that it was not reached).
    pub failures: BTreeMap<String, String>,
}

/// A policy version in force, as a process reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PolicyVersion {
    /// Bundle version in force (0: the set-up policy).
    pub version: u64,
    /// `BUNDLE/POLICY`, as audit entries record it, e.g. `2/2026.12-2`.
    pub label: String,
    /// SHA-256 of the policy text in force, hex.
    pub content_sha256: String,
    /// Distinct officers the next bundle needs.
    pub threshold: u32,
    /// Why the last bundle offered was refused.
    pub last_refusal: Option<String>,
}

/// `GET /v1/policy/status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PolicyStatus {
    /// The coordinator's own version in force.
    pub coordinator: PolicyVersion,
    /// Each node's.
    pub nodes: Vec<NodePolicyStatus>,
    /// Every node runs the coordinator's version (same content hash).
    pub in_step: bool,
}

/// One node's policy status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NodePolicyStatus {
    /// The node.
    pub node: String,
    /// Whether it answered.
    pub reachable: bool,
    /// Its version in force, when it answered.
    #[serde(default, skip_serializing_if = "Option::is_none", flatten)]
    pub version: Option<PolicyVersion>,
    /// Why it gave no status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why the last publication did not reach it, if it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_publish_error: Option<String>,
}

/// The answer to `POST /v1/policy/bundles`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Publication {
    /// Id of the publication's audit entries.
    pub publication: String,
    /// The coordinator's outcome.
    pub coordinator: Installed,
    /// Each node's outcome.
    pub nodes: Vec<NodePublication>,
    /// The coordinator and every node run the bundle.
    pub complete: bool,
}

/// Where a bundle went into force.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Installed {
    /// `BUNDLE/POLICY` now in force.
    pub label: String,
    /// False when that version was already in force.
    pub changed: bool,
}

/// One node's outcome of a publication.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NodePublication {
    /// The node.
    pub node: String,
    /// Whether it verified and installed the bundle.
    pub applied: bool,
    /// What it runs now, when it applied it.
    #[serde(default, skip_serializing_if = "Option::is_none", flatten)]
    pub installed: Option<Installed>,
    /// Why it did not (it keeps its previous version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `GET /health` of the requester API.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Health {
    /// `ok` while the API serves.
    pub status: String,
    /// The policy version in force (`BUNDLE/POLICY`).
    pub policy_version: String,
}
