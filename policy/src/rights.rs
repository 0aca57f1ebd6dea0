//! The person's rights as they travel (issue 19; 长政办发〔2017〕62号 §八, §九, §十, §十二): what
//! a lookup exercising one asks ([`RightsTarget`], in the clear for the coordinator to
//! route: a right and at most a dataset name), what the person files
//! ([`Filing`], sealed to the node with the subject, so the coordinator never reads a
//! record key or the person's words), and what the node answers ([`RightsAnswer`],
//! sealed back).
//!
//! **Types and their bounds only.** The node decides and answers (`fedq_node::rights`);
//! the requester side combines every node's answer. They live in the policy crate so
//! that the wire and the requester API (`fedq_client`) share them; `fedq_wire::rights`
//! re-exports them.
//!
//! [`RightsAnswer`] and what it holds travel as postcard inside a sealed answer, which
//! is not self-describing: no field of theirs may be skipped when serialized (a
//! `skip_serializing_if` would shift every field after it).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::policy::Right;

/// What a lookup exercising a right asks, as the coordinator routes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RightsTarget {
    /// The right.
    pub right: Right,
    /// The dataset an objection or repair application is about (`department.dataset`),
    /// or the one whose repair applications are read; `None` for the register, which
    /// every node answers for its own log.
    pub dataset: Option<String>,
}

impl RightsTarget {
    /// How audit entries name it: `rights:register`, `rights:object[court.x]`.
    pub fn describe(&self) -> String {
        match &self.dataset {
            Some(d) => format!("rights:{}[{d}]", self.right),
            None => format!("rights:{}", self.right),
        }
    }
}

/// Longest record key a filing names, in bytes.
pub const MAX_RECORD_KEY_LEN: usize = 256;
/// Longest reason or evidence reference a filing carries, in bytes.
pub const MAX_FILING_TEXT_LEN: usize = 2048;

/// What the person files at the node: the record (by the dataset's record key, e.g. the
/// case number), why, and a reference to the evidence (a document number the department
/// can look up; never the document). Sealed with the subject to the node alone.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Filing {
    /// The record's key in its dataset (the catalogue's `key` field).
    pub record: String,
    /// Why the person objects, or what the repair rests on.
    pub reason: String,
    /// The evidence reference (a receipt number, a volunteer-service certificate number).
    pub evidence: String,
    /// For a repair application: the grounds (§十).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grounds: Option<RepairGrounds>,
}

impl std::fmt::Debug for Filing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filing")
            .field("grounds", &self.grounds)
            .finish_non_exhaustive()
    }
}

impl Filing {
    /// Checks the filing's bounds; the error names the field, never its value.
    pub fn check(&self, right: Right) -> Result<(), String> {
        let texts = [
            ("record", &self.record, MAX_RECORD_KEY_LEN),
            ("reason", &self.reason, MAX_FILING_TEXT_LEN),
            ("evidence", &self.evidence, MAX_FILING_TEXT_LEN),
        ];
        for (what, text, max) in texts {
            if text.trim().is_empty() {
                return Err(format!("the filing's `{what}` must not be empty"));
            }
            if text.len() > max {
                return Err(format!(
                    "the filing's `{what}` is {} bytes; at most {max} are accepted",
                    text.len()
                ));
            }
            if text.chars().any(char::is_control) {
                return Err(format!(
                    "the filing's `{what}` holds a control character; write it on one line"
                ));
            }
        }
        match (right, self.grounds) {
            (Right::ApplyRepair, None) => Err(
                "a repair application needs its `grounds`: performance, volunteer-service or donation".into(),
            ),
            (Right::Object, Some(_)) => {
                Err("an objection takes no `grounds` (those are a repair application's)".into())
            }
            _ => Ok(()),
        }
    }
}

/// What a repair application rests on (长政办发〔2017〕62号 §十: re-performance, volunteer
/// service, donations).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RepairGrounds {
    /// The obligation was performed after all (履行).
    Performance,
    /// Volunteer service (志愿服务).
    VolunteerService,
    /// A donation (慈善捐赠).
    Donation,
}

impl RepairGrounds {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            RepairGrounds::Performance => "performance",
            RepairGrounds::VolunteerService => "volunteer-service",
            RepairGrounds::Donation => "donation",
        }
    }

    /// The grounds named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        [
            RepairGrounds::Performance,
            RepairGrounds::VolunteerService,
            RepairGrounds::Donation,
        ]
        .into_iter()
        .find(|g| g.as_str() == name)
    }
}

/// Most register entries one node answers (newest first); older ones are counted in
/// [`RightsAnswer::older_entries`].
pub const MAX_REGISTER_ENTRIES: usize = 200;

/// A node's answer to a lookup exercising a right, sealed to the requester.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RightsAnswer {
    /// The register of queries about the person at this node (the register right only),
    /// newest first.
    pub entries: Vec<RegisterEntry>,
    /// Entries older than the newest [`MAX_REGISTER_ENTRIES`], not listed.
    pub older_entries: u64,
    /// Entries hidden from the person for now, counted per purpose.
    pub hidden: Vec<HiddenEntries>,
    /// The signed checkpoint the entries' inclusion proofs are against (the node's newest
    /// kept one; a C2SP signed note), if the log kept one.
    pub checkpoint: Option<String>,
    /// The person's objections at this node, with their status.
    pub objections: Vec<ObjectionState>,
    /// The person's repair applications at this node, with their decisions.
    pub repairs: Vec<RepairState>,
    /// What this request filed: the objection's or application's id.
    pub filed: Option<String>,
    /// For the review office: the records the applications concern, minimized by the
    /// policy for its purpose (the dataset's answer as a datasets lookup would give it).
    #[schemars(skip)]
    pub records: Vec<crate::MinimizedAnswer>,
    /// Set by the requester side only: why this answer does not count (its audit receipt
    /// did not check), its contents dropped.
    #[serde(default)]
    pub unverified: Option<String>,
}

/// One query about the person, as the node registered it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RegisterEntry {
    /// When (RFC 3339, UTC).
    pub at: String,
    /// The id the node registered the query under: what a complaint about it names
    /// (`fedq complaint file --query ID`).
    pub query_id: String,
    /// The office that asked (`agency.office`).
    pub requester: String,
    /// The purpose it declared.
    pub purpose: String,
    /// The legal basis it cited.
    pub legal_basis: Option<String>,
    /// The case it served.
    pub case_reference: Option<String>,
    /// What it asked (a view or datasets and fields).
    pub target: String,
    /// `answer` or `refusal`.
    pub kind: String,
    /// Whether anything of the person's records was released.
    pub released: bool,
    /// The entry's leaf index in the node's log and its hash (hex).
    pub index: u64,
    /// The entry's hash (hex).
    pub entry_hash: String,
    /// Its inclusion proof against [`RightsAnswer::checkpoint`] (base64 hashes, nearest
    /// the leaf first); empty for an entry newer than that checkpoint.
    pub proof: Vec<String>,
}

/// Entries of one purpose hidden from the person for now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HiddenEntries {
    /// The purpose.
    pub purpose: String,
    /// How many.
    pub count: u64,
    /// The date by which all of them are shown (`YYYY-MM-DD`).
    pub until: String,
    /// Why, in the policy's words.
    pub reason: String,
}

/// An objection's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ObjectionStatus {
    /// Filed; the record is disputed until resolved.
    Open,
    /// Resolved: the record stands as it was.
    Upheld,
    /// Resolved: the record was corrected (the change kept as history).
    Corrected,
    /// Resolved: the record was removed.
    Removed,
}

impl ObjectionStatus {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectionStatus::Open => "open",
            ObjectionStatus::Upheld => "upheld",
            ObjectionStatus::Corrected => "corrected",
            ObjectionStatus::Removed => "removed",
        }
    }

    /// The status named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        [
            ObjectionStatus::Open,
            ObjectionStatus::Upheld,
            ObjectionStatus::Corrected,
            ObjectionStatus::Removed,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

/// One objection, as the person (and the department) see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ObjectionState {
    /// Its id at the node.
    pub id: String,
    /// `department.dataset`.
    pub dataset: String,
    /// The record's key.
    pub record: String,
    /// Why, as filed.
    pub reason: String,
    /// The evidence reference, as filed.
    pub evidence: String,
    /// When filed (RFC 3339).
    pub filed_at: String,
    /// Its status.
    pub status: ObjectionStatus,
    /// The resolution, once resolved.
    pub resolution: Option<Decision>,
}

/// A repair application's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RepairStatus {
    /// Filed, waiting for the review office.
    Applied,
    /// Approved and recorded at the node: the record is no longer disclosed.
    Repaired,
    /// Rejected by the review office.
    Rejected,
    /// An approved repair reversed (with two approvals).
    Reversed,
}

impl RepairStatus {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            RepairStatus::Applied => "applied",
            RepairStatus::Repaired => "repaired",
            RepairStatus::Rejected => "rejected",
            RepairStatus::Reversed => "reversed",
        }
    }
}

/// One repair application and what was decided of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RepairState {
    /// Its id at the node.
    pub id: String,
    /// `department.dataset`.
    pub dataset: String,
    /// The record's key.
    pub record: String,
    /// The grounds.
    pub grounds: RepairGrounds,
    /// What the application rests on, as filed.
    pub reason: String,
    /// The evidence reference, as filed.
    pub evidence: String,
    /// When filed (RFC 3339).
    pub filed_at: String,
    /// Its status.
    pub status: RepairStatus,
    /// Every decision, oldest first: the approval or rejection, and a reversal's two.
    pub decisions: Vec<Decision>,
}

/// A decision by a named officer, whose signature the node verified against the
/// federation's CA before recording it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Decision {
    /// What was decided (`upheld`, `corrected`, `removed`, `approve`, `reject`, `reverse`).
    pub decision: String,
    /// The officer's certificate name.
    pub officer: String,
    /// When it was recorded (RFC 3339).
    pub at: String,
    /// Why, in the officer's words.
    pub note: String,
    /// The officer's signed decision (a compact ES256 JWS with the officer's certificate),
    /// which anyone can check again against the federation's CA.
    #[serde(default)]
    pub signature: Option<String>,
}
