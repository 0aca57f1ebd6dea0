//! What a coordinator may ask a node, and what a node answers.
//!
//! Messages are encoded with postcard inside [`crate::frame`]s; new variants are only ever
//! appended, and a change that breaks the encoding bumps
//! [`crate::frame::PROTOCOL_VERSION`] (and the ALPN).

use fedq_policy::MinimizedAnswer;
use serde::{Deserialize, Serialize};

use crate::refusal::ProofRefusal;

/// A coordinator's request to a node.
// A lookup is the common request and is moved once per stream; boxing it would only add
// an allocation to the hot path.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeRequest {
    /// Liveness and authentication check: answers with the node's name.
    Ping,
    /// One authorized question about one person.
    Lookup(LookupRequest),
    /// A signed policy bundle (the bundle file's text) to verify and, if it may take
    /// effect, put in force. The node verifies it itself; who delivers it does not matter.
    InstallPolicy(String),
    /// Which policy version the node runs, and why the last bundle offered was refused.
    PolicyStatus,
    /// A requester's session grant (compact ES256 JWS, [`crate::proof::GRANT_TYP`]),
    /// forwarded as it came. The node verifies it itself and answers
    /// [`NodeResponse::SessionOpened`], or [`NodeResponse::Refused`] with one line.
    OpenSession(String),
    /// The node's newest kept audit checkpoint and the consistency proof to it from the
    /// tree of `from` entries (issue 18 §3), with the node's certificate chain: what the
    /// coordinator relays to a witness. Answered with [`NodeResponse::AuditCheckpoint`].
    AuditCheckpoint {
        /// The size the witness last cosigned (0: none; then no proof is needed).
        from: u64,
    },
    /// Another log's checkpoint for this node to witness, relayed by the coordinator
    /// (which is not trusted by it: the node derives the log's key and name from the
    /// certificate here, checked against the federation CA). Answered with
    /// [`NodeResponse::Cosigned`] or [`NodeResponse::WitnessRefused`].
    Witness(WitnessRequest),
    /// An aggregate (statistics) query (issue 20 §2): counts only, no person, nothing
    /// sealed; proven by the requester under its session like a lookup. Answered with
    /// [`NodeResponse::Aggregate`], [`NodeResponse::Refused`] or
    /// [`NodeResponse::ProofRefused`].
    Aggregate(AggregateRequest),
    /// One step of a cross-department count (an aggregate query with
    /// `target.intersect`): private set-intersection cardinality between the counting
    /// department (the first dataset's) and the other ([`crate::psi`]), relayed by the
    /// coordinator, which can read nothing of it. Answered with
    /// [`NodeResponse::CrossCount`], [`NodeResponse::Aggregate`] (the budget spent),
    /// [`NodeResponse::Refused`] or [`NodeResponse::ProofRefused`].
    CrossCount(CrossRequest),
}

/// One step of a cross-department count.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrossRequest {
    /// The query (its `proof` checked at the step that opens this department's part:
    /// `Blind` for the counting department, `Raise` for the other).
    pub query: AggregateRequest,
    /// Which step.
    pub step: CrossStep,
}

/// The steps of a cross-department count.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CrossStep {
    /// To the counting department: blind its persons with a fresh exponent and salt.
    Blind,
    /// To the other department: raise the counting department's signed set to its own
    /// exponent, and blind its own persons under the same salt.
    Raise {
        /// The counting department's signed blinded set.
        blinded: crate::psi::SignedSet,
    },
    /// To the counting department again: count the common points, add the noise.
    Count {
        /// The handle its `Blind` answer gave.
        handle: String,
        /// Its set, raised by the other department (signed by it).
        raised: crate::psi::SignedSet,
        /// The other department's own blinded set (signed by it).
        own: crate::psi::SignedSet,
    },
}

/// A department's answer to a cross-count step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CrossAnswer {
    /// `Blind`: the handle of the count kept open here, and the signed blinded set.
    Blinded {
        /// Names this department's state for the `Count` step (random; kept 60 s).
        handle: String,
        /// The blinded set.
        set: crate::psi::SignedSet,
    },
    /// `Raise`: the counting department's set raised, and this department's own.
    Raised {
        /// The counting department's set raised to this department's exponent.
        raised: crate::psi::SignedSet,
        /// This department's blinded set.
        own: crate::psi::SignedSet,
    },
}

/// One aggregate query as the coordinator forwards it to each department whose datasets
/// it counts. The node decides again under its own policy and spends the requester's
/// budget in its own ledger; nothing here is trusted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AggregateRequest {
    /// The node's own id of the query.
    pub query_id: String,
    /// `agency.office`, as the coordinator authenticated it (the node audits the one the
    /// proof's session names).
    pub requester: String,
    /// Declared purpose.
    pub purpose: String,
    /// Cited legal basis.
    pub legal_basis: Option<String>,
    /// What the whole query counts (the node counts its own datasets of it).
    pub target: fedq_policy::statistics::AggregateTarget,
    /// The policy version the coordinator decided with.
    pub policy_version: String,
    /// The coordinator's date (the node compares it with its own).
    pub date: time::Date,
    /// The requester's proof (HS256 JWS under its session) of exactly this query, with
    /// an empty `sealed` claim.
    pub proof: String,
}

/// What a department answers an aggregate query.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AggregateAnswer {
    /// The noisy, suppressed counts of this department's datasets asked.
    Released {
        /// One per cell of each dataset's domain.
        cells: Vec<fedq_policy::statistics::ReleasedCell>,
        /// ε this query spent here (millionths).
        epsilon: u64,
        /// ε the requester has left here this period (millionths).
        left: u64,
        /// When the budget renews.
        renews_on: time::Date,
    },
    /// The requester's budget here cannot pay for this query; nothing was counted.
    BudgetSpent {
        /// ε the query would spend (millionths).
        epsilon: u64,
        /// ε left this period (millionths).
        left: u64,
        /// When the budget renews.
        renews_on: time::Date,
    },
}

/// Longest `add-checkpoint` body a witness reads, in bytes: a checkpoint note and 63
/// proof lines fit in it many times over.
pub const MAX_ADD_CHECKPOINT_LEN: usize = 32 * 1024;

/// Most certificates in a log's chain, and longest one, in bytes.
pub const MAX_CHAIN_CERTIFICATES: usize = 4;
/// Longest certificate in a log's chain, in bytes (DER).
pub const MAX_CERTIFICATE_LEN: usize = 8 * 1024;

/// A checkpoint to witness: the C2SP `add-checkpoint` body and the log's certificate
/// chain (DER, the log's own certificate first).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WitnessRequest {
    /// The `add-checkpoint` request body (`old SIZE`, proof lines, a blank line, the
    /// checkpoint note).
    pub add_checkpoint: String,
    /// The log's certificate chain, its own certificate first.
    pub log_chain: Vec<Vec<u8>>,
}

/// A node's newest kept checkpoint, as its witnesses are offered it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogCheckpoint {
    /// The checkpoint (a signed note); `None` before the log kept its first.
    pub checkpoint: Option<String>,
    /// Its tree size (0 with no checkpoint).
    pub size: u64,
    /// The consistency proof from the tree of `from` entries to it, base64 hashes
    /// (empty when `from` is 0 or not below `size`).
    pub proof: Vec<String>,
    /// The node's certificate chain (DER), its own certificate first.
    pub chain: Vec<Vec<u8>>,
}

/// Longest text (query id, requester, purpose, legal basis, case reference,
/// policy version) a
/// lookup may carry, in bytes: a node refuses longer ones, and the coordinator refuses a
/// query whose texts are longer before asking any node.
pub const MAX_TEXT_LEN: usize = 512;

/// Longest consent token a lookup may carry, in bytes (a compact JWS with the authority's
/// certificate in `x5c` is under 2 KiB).
pub const MAX_CONSENT_LEN: usize = 4096;

/// Longest sealed subject a lookup may carry, in bytes: a resident ID and a consent token
/// of [`MAX_CONSENT_LEN`] as JSON, encrypted and base64url-encoded, with the JWE header.
pub const MAX_SEALED_SUBJECT_LEN: usize = 8192;

/// One authorized question about one person, as the coordinator forwards it. The node
/// decides again with its own copy of the policy; nothing here is trusted as a decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookupRequest {
    /// The node's own id of this query, recorded in its audit log: derived per node by the
    /// coordinator (HMAC of its own id and the node's name under a key it never sends), so
    /// no two departments' logs share an id; the coordinator's audit entry maps them.
    pub query_id: String,
    /// `agency.office` from the requester's certificate, as authenticated by the
    /// coordinator.
    pub requester: String,
    /// Declared purpose.
    pub purpose: String,
    /// Cited legal basis (e.g. a licensing application number).
    pub legal_basis: Option<String>,
    /// The case the query serves (a licensing application or court case number), where
    /// the purpose declares a case-reference form. The node checks it against its own
    /// policy's pattern and records it in its audit entry.
    pub case_reference: Option<String>,
    /// What is asked.
    pub target: LookupTarget,
    /// The policy version the coordinator decided with (the node records its own).
    pub policy_version: String,
    /// The coordinator's date (its "today" in the city's time zone, or its pinned `today`).
    /// The node never decides with it: it compares it with its own date and answers
    /// [`FailureCode::ClockSkew`] when the two differ by more than
    /// [`MAX_DATE_SKEW_DAYS`], because a node whose clock is off would apply the
    /// statutory window to the wrong day.
    pub date: time::Date,
    /// The requester's proof of this query to this node: a compact HS256 JWS
    /// ([`crate::proof::REQUEST_TYP`]) under the session it opened with the node, over
    /// everything above the node acts on. The node checks it before reading anything
    /// ([`crate::proof::ProofGate::check`]) and answers [`NodeResponse::ProofRefused`] if
    /// it does not hold; the requester it proves is the one the node audits.
    pub proof: String,
    /// The person asked about and the consent token, sealed by the requester to this node
    /// alone ([`crate::seal`], a compact JWE of type [`crate::seal::QUERY_TYP`] under the
    /// requester's session with the node, bound to the proof's nonce; its plaintext is a
    /// [`crate::proof::SealedSubject`]). The coordinator forwards it and cannot read it;
    /// the proof's MAC covers its SHA-256, so it cannot be swapped for another.
    pub sealed: String,
}

/// How many days a node's date may differ from the coordinator's before the node refuses
/// to answer (one: the two may sit either side of midnight).
pub const MAX_DATE_SKEW_DAYS: i64 = 1;

/// What a lookup asks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LookupTarget {
    /// A named view from the policy; the node answers the view's sources it holds.
    View(String),
    /// Datasets (`department.dataset`), each with named fields or all fields.
    Datasets(Vec<DatasetRequest>),
    /// One of the person's rights (issue 19): the register of queries about them, an
    /// objection, a repair application, or the review office's reading of applications.
    /// What is filed travels sealed with the subject ([`crate::rights::Filing`]).
    Rights(crate::rights::RightsTarget),
}

impl LookupTarget {
    /// How audit entries name the target: `view:NAME` or `dataset[fields]` items.
    pub fn describe(&self) -> String {
        match self {
            LookupTarget::View(v) => format!("view:{v}"),
            LookupTarget::Datasets(ds) => ds
                .iter()
                .map(|d| match &d.fields {
                    Some(f) => format!("{}[{}]", d.dataset, f.join(",")),
                    None => format!("{}[*]", d.dataset),
                })
                .collect::<Vec<_>>()
                .join(" "),
            LookupTarget::Rights(r) => r.describe(),
        }
    }
}

/// One dataset of a lookup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetRequest {
    /// `department.dataset`.
    pub dataset: String,
    /// Field names; `None` asks for every field (each still decided by the policy).
    pub fields: Option<Vec<String>>,
}

/// A node's answer to a lookup, as the coordinator relays it: whose it is, the policy
/// version it was decided under, and what was decided — sealed to the requester.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookupResponse {
    /// The node's name.
    pub node: String,
    /// The policy version the node decided with.
    pub policy_version: String,
    /// The [`LookupAnswer`], sealed by the node to the requester under their session
    /// ([`crate::seal::ANSWER_TYP`], bound to the proof's nonce): the coordinator relays it
    /// and cannot read it, nor tell an answer with records from one without (the
    /// plaintext is padded, [`crate::proof::ANSWER_PADDING`]).
    pub sealed: String,
    /// The node's receipt for the audit entry it wrote for this answer (issue 18 §4): a
    /// signed tree head of its audit log, the entry's index and content hash, and the
    /// inclusion proof. Outside the seal on purpose: it holds no personal data and nothing
    /// of the answer (its shape is the same for every answer), so the coordinator can
    /// keep and check it as well; the requester checks it against the node's certificate
    /// key. `None` from a node that signs no receipts (the requester then reads the
    /// answer as unverified).
    pub receipt: Option<AuditReceipt>,
}

/// Room kept in every answer frame for its [`AuditReceipt`], added after the entry is
/// durable (a checkpoint note, two hex hashes and an inclusion proof of at most 64 hashes
/// fit in it).
pub const RECEIPT_RESERVE: usize = 4096;

/// A node's signed commitment to one audit entry, as it travels (the plain form of
/// `fedq_audit::checkpoint::Receipt`, which `wire` does not depend on).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditReceipt {
    /// The signed checkpoint (a C2SP signed note: origin, tree size, root hash, signature).
    pub checkpoint: String,
    /// The entry's leaf index (its sequence number minus one).
    pub index: u64,
    /// The entry's hash (hex): its leaf in the log's tree.
    pub entry_hash: String,
    /// The hash of the entry's fields other than the answer (hex): with the SHA-256 of
    /// the sealed answer it came with, the requester recomputes `entry_hash`
    /// (`fedq_audit::checkpoint::answer_bound_hash`), so a receipt checks only with the
    /// answer its entry was written for. `None` for an entry bound to no answer.
    pub content_hash: Option<String>,
    /// The inclusion proof, base64 hashes, nearest the leaf first.
    pub proof: Vec<String>,
}

/// What a node decided for a lookup, as the requester opens it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LookupAnswer {
    /// A datasets lookup: one outcome per dataset asked of this node.
    Datasets(Vec<DatasetOutcome>),
    /// A view lookup: the node's part of the view (one finding per source it holds), which
    /// the requester side combines with the other nodes' parts.
    View(fedq_policy::views::ViewPart),
    /// A rights lookup: the node's register, the person's objections and repairs, what was
    /// filed.
    Rights(crate::rights::RightsAnswer),
}

/// What a node released for one dataset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DatasetOutcome {
    /// Minimized records and summaries (possibly none: no record, or nothing released —
    /// the two look alike on purpose).
    Released(MinimizedAnswer),
    /// The node's policy refused this dataset.
    Denied {
        /// `department.dataset`.
        dataset: String,
        /// Why, in the rule's words.
        rationale: String,
    },
    /// The node could not verify this dataset for the subject: a stored or attached record
    /// could not be read, holds a value of the wrong type, or has a window start in the
    /// future. Nothing of the dataset was released, and its absence is **not** "no record".
    Unverified {
        /// `department.dataset`.
        dataset: String,
        /// What could not be read (dataset and field names only, never a value).
        reason: String,
    },
}

/// A node's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeResponse {
    /// Answer to [`NodeRequest::Ping`].
    Pong {
        /// The node's name from its certificate.
        node: String,
    },
    /// Answer to [`NodeRequest::Lookup`].
    Lookup(LookupResponse),
    /// The node refused the whole request under its own policy; nothing was released.
    Refused {
        /// Why, in the policy's words.
        rationale: String,
    },
    /// The node could not answer; no data was released.
    Failed {
        /// Machine-readable reason.
        code: FailureCode,
        /// One line for the operator; never personal data.
        message: String,
    },
    /// Answer to [`NodeRequest::InstallPolicy`]: the bundle is in force (`changed`: it
    /// was not already). A refused bundle is answered with [`NodeResponse::Refused`].
    PolicyInstalled {
        /// The label of the version now in force.
        label: String,
        /// Whether this request changed it.
        changed: bool,
    },
    /// Answer to [`NodeRequest::PolicyStatus`].
    PolicyStatus(PolicyState),
    /// Answer to [`NodeRequest::OpenSession`]: the node's session accept (compact ES256
    /// JWS, [`crate::proof::ACCEPT_TYP`]) for the requester to verify.
    SessionOpened(String),
    /// The lookup's requester proof does not hold; nothing was read or released, and the
    /// refusal is in the node's audit log. [`ProofRefusal::UnknownSession`] tells the
    /// requester to open a new session and retry once; every other code is final.
    ProofRefused {
        /// Why, typed.
        code: ProofRefusal,
        /// One line (the code's message); never quotes a value.
        message: String,
    },
    /// Answer to [`NodeRequest::AuditCheckpoint`].
    AuditCheckpoint(LogCheckpoint),
    /// Answer to [`NodeRequest::Witness`]: the witness's cosignature line(s) over the
    /// checkpoint, made once it was durably the witness's latest for that log.
    Cosigned {
        /// The signed-note signature lines, each ending in a newline.
        signatures: String,
    },
    /// Answer to [`NodeRequest::Witness`]: the witness did not cosign, with the C2SP
    /// tlog-witness protocol's status — 400 malformed, 403 not signed by the log its
    /// certificate names (or a certificate not of this federation), 404 a log this
    /// witness does not witness (its own), 409 not the size it last cosigned (`latest`
    /// says which), 422 the checkpoint does not extend the one it cosigned (the log was
    /// rewritten, cut or forked: an alarm), 500 its own store failed.
    WitnessRefused {
        /// The protocol's HTTP status.
        status: u16,
        /// The size this witness last cosigned for that log, with a 409 or 422.
        latest: Option<u64>,
        /// One line for the operator (origin and sizes; never an entry).
        message: String,
    },
    /// Answer to a [`NodeRequest::CrossCount`] step before the last.
    CrossCount(CrossAnswer),
    /// Answer to [`NodeRequest::Aggregate`] (and to a cross count's last step, or to a
    /// step refused for the budget).
    Aggregate {
        /// The node's name.
        node: String,
        /// The policy version it decided with.
        policy_version: String,
        /// The counts, or why the budget refused them.
        answer: AggregateAnswer,
    },
}

/// The policy a node runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyState {
    /// The bundle version in force (0: the set-up policy).
    pub version: u64,
    /// `BUNDLE/POLICY`, as audit entries record it.
    pub label: String,
    /// The content hash of the version in force.
    pub content_sha256: String,
    /// Distinct officers the next bundle needs.
    pub threshold: u32,
    /// Why the last bundle offered was refused, if it was.
    pub last_refusal: Option<String>,
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
    /// The node's date differs from the coordinator's by more than
    /// [`MAX_DATE_SKEW_DAYS`]; one of the clocks (or a pinned `today`) is wrong.
    ClockSkew,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::frame::{decode, encode, HEADER_LEN, MAX_FRAME_LEN};

    #[test]
    fn witness_messages_round_trip_and_the_old_variants_keep_their_encoding() {
        let requests = [
            NodeRequest::AuditCheckpoint { from: 41 },
            NodeRequest::Witness(WitnessRequest {
                add_checkpoint: "old 0\n\nfedq/changsha/node/court\n1\nAAAA\n\n— k AAAAAA==\n"
                    .into(),
                log_chain: vec![vec![0x30, 0x82, 1, 2], vec![0x30]],
            }),
        ];
        for request in requests {
            let bytes = encode(&request).unwrap();
            assert_eq!(
                decode::<NodeRequest>(&bytes, MAX_FRAME_LEN).unwrap(),
                request
            );
        }
        let responses = [
            NodeResponse::AuditCheckpoint(LogCheckpoint {
                checkpoint: Some("fedq/changsha/node/court\n2\nAAAA\n\n— k AAAAAA==\n".into()),
                size: 2,
                proof: vec!["AAAA".into()],
                chain: vec![vec![1, 2, 3]],
            }),
            NodeResponse::AuditCheckpoint(LogCheckpoint {
                checkpoint: None,
                size: 0,
                proof: Vec::new(),
                chain: Vec::new(),
            }),
            NodeResponse::Cosigned {
                signatures: "— fedq/changsha/witness/tax AAAAAA==\n".into(),
            },
            NodeResponse::WitnessRefused {
                status: 409,
                latest: Some(40),
                message: "send a proof from 40".into(),
            },
        ];
        for response in responses {
            let bytes = encode(&response).unwrap();
            assert_eq!(
                decode::<NodeResponse>(&bytes, MAX_FRAME_LEN).unwrap(),
                response
            );
        }
        // Appended, not inserted: the variants a peer of the previous release sends
        // decode as they did (a ping is variant 0, a session grant 4, a pong 0).
        let variant = |r: &NodeRequest| encode(r).unwrap()[HEADER_LEN];
        assert_eq!(variant(&NodeRequest::Ping), 0);
        assert_eq!(variant(&NodeRequest::OpenSession(String::new())), 4);
        assert_eq!(variant(&NodeRequest::AuditCheckpoint { from: 0 }), 5);
    }
}
