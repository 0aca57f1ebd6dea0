//! Aggregate (statistics) queries (issue 20 §2): the bodies of `POST /v1/statistics`. A
//! requester whose purpose is aggregate-only asks counts by dataset, district, year and
//! category; each department counts its own records, adds its noise and spends the
//! requester's budget in its own ledger; the coordinator relays what each answered.

use std::collections::BTreeMap;

use fedq_policy::statistics::{AggregateTarget, ReleasedCell};

/// One released cell, as the requester API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StatisticsCell {
    /// `department.dataset`.
    pub dataset: String,
    /// The district (region code, or `other`), when broken down by district.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub district: Option<String>,
    /// The year, when broken down by year.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub year: Option<i32>,
    /// The category, when broken down by category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// The noisy count, or `null` when suppressed (below the policy's `min_cell`).
    pub count: Option<u64>,
}

impl From<ReleasedCell> for StatisticsCell {
    fn from(c: ReleasedCell) -> Self {
        Self {
            dataset: c.key.dataset,
            district: c.key.district,
            year: c.key.year,
            category: c.key.category,
            count: c.count,
        }
    }
}
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `POST /v1/statistics`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatisticsRequest {
    /// An aggregate-only purpose the policy's `[statistics]` lists.
    pub purpose: String,
    /// The legal basis cited.
    #[serde(default)]
    pub legal_basis: Option<String>,
    /// What to count.
    pub target: AggregateTarget,
    /// Per department asked, the requester's proof of exactly this query (an HS256 JWS
    /// under its session with that node; `fedq statistics` makes them).
    #[serde(default)]
    pub proofs: BTreeMap<String, String>,
}

/// What one department answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NodeStatistics {
    /// The department.
    pub node: String,
    /// `answered`, `budget-spent`, `refused`, `proof-refused`, `failed`, `unavailable`.
    pub status: String,
    /// ε this query spent there (decimal), when answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epsilon: Option<String>,
    /// ε the requester has left there this period (decimal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left: Option<String>,
    /// When the requester's budget there renews (YYYY-MM-DD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renews_on: Option<String>,
    /// Why it did not answer (the department's words, never a value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The answer of `POST /v1/statistics`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StatisticsResponse {
    /// The coordinator's id of the query.
    pub query_id: String,
    /// Whether every department asked answered.
    pub complete: bool,
    /// Every cell of every dataset counted: a noisy count, or `null` when suppressed.
    pub cells: Vec<StatisticsCell>,
    /// One report per department asked.
    pub nodes: Vec<NodeStatistics>,
}
