//! The requester API's query types, shared by the coordinator (which reads
//! [`QueryRequest`] and writes [`RelayedAnswer`]) and the requester side (which sends the
//! one and concludes the other into a [`QueryResponse`]).

use std::collections::BTreeMap;

use fedq_policy::views::{ViewResult, ViewTerms};
use fedq_policy::Summary;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A query as a requester sends it (`POST /v1/query`). `subject` and `consent` are the
/// requester side's own: they are never serialized (the body cannot carry them by
/// mistake) and `Debug` shows neither.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryRequest {
    /// The person's 18-character resident ID. **Requester side only**: the coordinator
    /// refuses a body that carries it; `ApiConnection::prove` (fedq-coordinator) seals it to
    /// each node asked (`sealed`) and sends the body without it.
    #[serde(default, skip_serializing)]
    #[schemars(skip)]
    pub subject: String,
    /// Declared purpose (from the policy).
    pub purpose: String,
    /// Legal basis cited for this query.
    #[serde(default)]
    pub legal_basis: Option<String>,
    /// The subject's consent, when the purpose or a rule needs it: a consent token (compact
    /// ES256 JWS of type `fedq-consent+jwt`) from the federation's consent authority.
    /// **Requester side only**, like `subject`: sealed with it to each node (which verifies
    /// it), and stated to the coordinator only as `consent_sealed`.
    #[serde(default, skip_serializing)]
    #[schemars(skip)]
    pub consent: Option<String>,
    /// Whether a consent token is sealed with the subject (the coordinator's policy
    /// pre-check reads it; every node verifies the token itself).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub consent_sealed: bool,
    /// The case the query serves (a licensing application or court case number), in the
    /// form the purpose declares; required where it declares one.
    #[serde(default)]
    pub case_reference: Option<String>,
    /// A named view from the policy.
    #[serde(default)]
    pub view: Option<String>,
    /// Or datasets: `department.dataset` (all fields) or `department.dataset.field`.
    #[serde(default)]
    pub datasets: Option<Vec<String>>,
    /// Or one of the person's rights (issue 19), for a purpose that serves it:
    /// `{"right": "register"}` (who looked at my data, asked of every node), or
    /// `{"right": "object" | "apply-repair" | "repair-applications", "dataset":
    /// "department.dataset"}` (asked of that dataset's node).
    #[serde(default)]
    pub rights: Option<fedq_policy::rights::RightsTarget>,
    /// What the person files with an objection or a repair application (the record's key,
    /// the reason, the evidence reference). **Requester side only**, like `subject`:
    /// sealed with it to the node, never sent to the coordinator.
    #[serde(default, skip_serializing)]
    #[schemars(skip)]
    pub filing: Option<fedq_policy::rights::Filing>,
    /// The requester's proof of this query to each node it asks (`node` → compact HS256
    /// JWS, see `fedq_wire::proof`), forwarded to that node alone. `null` for a node the
    /// requester holds no session with: that node is not asked and is reported
    /// `unavailable`. A node the query asks that has no entry refuses the query (400).
    /// `ApiConnection` (fedq-coordinator) fills this in; callers leave it empty.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub proofs: BTreeMap<String, Option<String>>,
    /// The subject (and consent token) sealed to each node proven to (`node` → compact
    /// JWE, `fedq_wire::seal`): the coordinator forwards it to that node and cannot read
    /// it. Every node with a proof needs one.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sealed: BTreeMap<String, String>,
}

impl std::fmt::Debug for QueryRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryRequest")
            .field("purpose", &self.purpose)
            .field("view", &self.view)
            .field("datasets", &self.datasets)
            .field("rights", &self.rights)
            .field("consent", &self.consent.is_some())
            .field("sealed_to", &self.sealed.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Per-node outcome, as the requester sees it. Never silently omitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NodeStatus {
    /// Released something (the requester side's reading of a sealed answer).
    Ok,
    /// Answered, with nothing to release (no record, or nothing disclosable).
    NoRecord,
    /// The node answered. At the coordinator, every answer: what it holds is sealed to
    /// the requester. On the requester side, a view's source node that answered: whether
    /// it had records is the view's to say (a view's answer never tells `ok` from
    /// `no_record`, which would name the department holding a record behind a verdict).
    Answered,
    /// Refused by policy (the coordinator's pre-check or the node's own).
    Denied,
    /// Answered, but at least one of its datasets could not be verified for the subject
    /// (unreadable or ill-typed records, a window start in the future): that dataset is
    /// missing evidence, never "no record".
    Unverified,
    /// Could not be reached, refused our credentials, or failed closed.
    Unavailable,
    /// No answer within the deadline.
    TimedOut,
}

/// One node's part of the answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NodeReport {
    /// The node.
    pub node: String,
    /// What happened.
    pub status: NodeStatus,
    /// Why, for denied / unverified / unavailable / timed out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The datasets it was asked about.
    pub datasets: Vec<String>,
    /// When the node refused the requester's proof: the refusal's code
    /// (`ProofRefusal::code`, e.g. `replayed`, `altered-purpose`). `unknown-session`
    /// (the node holds no such session, e.g. after a restart) tells the requester to open
    /// a new session with that node and retry once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof_refused: Option<String>,
    /// The coordinator's query this node answered under, when it is not the answer's own
    /// `query_id`: the requester side asked this node again, alone, after it had lost the
    /// requester's session (its audit entries are under this id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_id: Option<String>,
    /// The coordinator's relay only: the node's answer, sealed to the requester (a compact
    /// JWE the requester side opens with its session and the proof's nonce).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_answer: Option<String>,
    /// The node's receipt for the audit entry it wrote for this answer, relayed as the
    /// node sent it and kept by the requester side, which checks it against the node's
    /// certificate key: an answer without a valid one is `unverified`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<AuditReceipt>,
    /// The requester side's answer only: the SHA-256 (hex) of the sealed answer this
    /// node's `receipt` was checked against, so that whoever keeps the answer can check
    /// the receipt again with the node's certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_sha256: Option<String>,
}

/// A node's signed commitment to the audit entry it wrote for one answer (issue 18 §4):
/// the node's audit log's signed tree head, the entry's place and content hash, and the
/// proof that places it in that tree. It holds no personal data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AuditReceipt {
    /// The signed checkpoint: a C2SP signed note (origin `fedq/<federation>/node/<name>`,
    /// tree size, root hash, the node's signature).
    pub checkpoint: String,
    /// The entry's leaf index (its sequence number in the node's log minus one).
    pub index: u64,
    /// The entry's hash (hex), as `fedq audit list` shows it.
    pub entry_hash: String,
    /// The hash of the entry's fields other than the answer (hex). The requester
    /// recomputes the entry's hash from it and the SHA-256 of the sealed answer it
    /// received (`answer_sha256` of the node's report): SHA-256 of
    /// `"fedq audit answer v1\0"`, this hash and the answer's, as 32 bytes each. A receipt
    /// of another answer does not check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_hash: Option<String>,
    /// The inclusion proof, base64 SHA-256 hashes, nearest the leaf first.
    pub proof: Vec<String>,
}

/// What was released for one dataset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct DatasetResult {
    /// Minimized records: each released field's value in its plain JSON form
    /// ([`crate::answer`]).
    #[serde(serialize_with = "crate::answer::plain_records")]
    #[schemars(with = "Vec<BTreeMap<String, crate::answer::AnswerValue>>")]
    pub records: Vec<BTreeMap<String, fedq_policy::Value>>,
    /// Summaries (`exists`, `count`).
    pub summaries: BTreeMap<String, Summary>,
    /// How many of `records`, the last ones, are disputed: the person objected and the
    /// department has not resolved it yet. They count in no summary and no view's verdict.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub disputed: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The answer to one query.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct QueryResponse {
    /// The query's id (also in every audit entry it caused).
    pub query_id: String,
    /// Policy version that decided at the coordinator.
    pub policy_version: String,
    /// Purpose.
    pub purpose: String,
    /// The view asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub view: Option<String>,
    /// False when any node asked was unavailable, timed out, or answered a dataset as
    /// unverified.
    pub complete: bool,
    /// Every node asked, with its status.
    pub nodes: Vec<NodeReport>,
    /// The view's answer, every released value in its plain JSON form.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::answer::plain_view"
    )]
    #[schemars(with = "Option<crate::answer::ViewAnswer>")]
    pub view_result: Option<ViewResult>,
    /// A dataset query: what each dataset released. A view: only the source fields the
    /// view declares in `release` (usually none) — never the sources' records.
    pub datasets: BTreeMap<String, DatasetResult>,
    /// A rights query: each node's answer (its register of queries about the person, the
    /// person's objections and repairs there, what was filed), by node.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rights: BTreeMap<String, fedq_policy::rights::RightsAnswer>,
}

/// The coordinator's answer to one query (`POST /v1/query`): each node's status and its
/// answer sealed to the requester, and nothing any node released. The requester side
/// opens the answers and concludes the [`QueryResponse`] (`fedq_coordinator::opening::conclude`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RelayedAnswer {
    /// The query's id (also in every audit entry it caused).
    pub query_id: String,
    /// Policy version that decided at the coordinator.
    pub policy_version: String,
    /// Purpose.
    pub purpose: String,
    /// The view asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<String>,
    /// False when a node asked gave no sealed answer (what an answer holds — an
    /// unverified dataset — only the requester side can tell).
    pub complete: bool,
    /// Every node asked, with its status (`answered` carries `sealed_answer`).
    pub nodes: Vec<NodeReport>,
    /// A view's terms under the coordinator's policy: what the requester side falls back
    /// on when no node's own part (which names the terms it was decided under) opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view_terms: Option<ViewTerms>,
}
