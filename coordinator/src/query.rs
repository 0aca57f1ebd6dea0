//! The requester API's types, and the planning and merging of one query as plain
//! functions over data (no sockets, no clock).

use std::collections::{BTreeMap, BTreeSet};

use fedq_policy::views::{SourceOutcome, ViewResult};
use fedq_policy::{Engine, MinimizedAnswer, Summary};
use fedq_wire::message::{DatasetOutcome, DatasetRequest, LookupTarget};
use fedq_wire::transport::ChannelError;
use fedq_wire::{NodeResponse, ResidentId};
use serde::{Deserialize, Serialize};

/// Largest request body accepted.
pub const MAX_BODY: usize = 16 * 1024;

/// A query as a requester sends it (`POST /v1/query`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryRequest {
    /// The person's 18-character resident ID.
    pub subject: String,
    /// Declared purpose (from the policy).
    pub purpose: String,
    /// Legal basis cited for this query.
    #[serde(default)]
    pub legal_basis: Option<String>,
    /// The subject's consent reference, when the purpose needs it.
    #[serde(default)]
    pub consent: Option<String>,
    /// A named view from the policy.
    #[serde(default)]
    pub view: Option<String>,
    /// Or datasets: `department.dataset` (all fields) or `department.dataset.field`.
    #[serde(default)]
    pub datasets: Option<Vec<String>>,
}

/// A validated query.
#[derive(Clone, Debug)]
pub struct ValidQuery {
    /// The person.
    pub subject: ResidentId,
    /// Purpose.
    pub purpose: String,
    /// Legal basis.
    pub legal_basis: Option<String>,
    /// Consent.
    pub consent: Option<String>,
    /// What is asked.
    pub target: LookupTarget,
}

/// A query refused before anything was sent to any node.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryRefusal {
    /// The body is not a valid query (400).
    #[error("{0}")]
    Malformed(String),
    /// The policy refuses it (403), with the rule's rationale.
    #[error("{0}")]
    Policy(String),
}

impl QueryRequest {
    /// Validates shape and names against the policy. Never echoes the subject.
    pub fn validate(self, engine: &Engine) -> Result<ValidQuery, QueryRefusal> {
        let malformed = |s: String| Err(QueryRefusal::Malformed(s));
        let subject = match ResidentId::parse(self.subject.trim()) {
            Ok(s) => s,
            Err(e) => return malformed(format!("`subject`: {e}")),
        };
        if self.purpose.trim().is_empty() {
            return malformed("`purpose` is required".into());
        }
        let nonblank = |o: Option<String>| o.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        let legal_basis = nonblank(self.legal_basis);
        let consent = nonblank(self.consent);
        // What a node accepts in a lookup (it refuses longer texts itself).
        let max = fedq_wire::message::MAX_TEXT_LEN;
        for (what, text) in [
            ("purpose", Some(&self.purpose)),
            ("legal_basis", legal_basis.as_ref()),
            ("consent", consent.as_ref()),
        ] {
            if let Some(len) = text.map(String::len).filter(|l| *l > max) {
                return malformed(format!(
                    "`{what}` is {len} bytes; at most {max} are accepted"
                ));
            }
        }
        let target = match (self.view, self.datasets) {
            (Some(v), None) => {
                if !engine.policy().views.iter().any(|x| x.name == v) {
                    let known: Vec<&str> = engine
                        .policy()
                        .views
                        .iter()
                        .map(|x| x.name.as_str())
                        .collect();
                    return malformed(format!("unknown view `{v}`; views: {}", known.join(", ")));
                }
                LookupTarget::View(v)
            }
            (None, Some(ds)) if !ds.is_empty() => {
                LookupTarget::Datasets(parse_datasets(engine, &ds)?)
            }
            (Some(_), Some(_)) => {
                return malformed("give either `view` or `datasets`, not both".into())
            }
            _ => return malformed("give a `view` or a non-empty list of `datasets`".into()),
        };
        Ok(ValidQuery {
            subject,
            purpose: self.purpose.trim().to_owned(),
            legal_basis,
            consent,
            target,
        })
    }
}

/// Parses `department.dataset[.field]` items into per-dataset requests.
fn parse_datasets(engine: &Engine, items: &[String]) -> Result<Vec<DatasetRequest>, QueryRefusal> {
    let mut by_dataset: BTreeMap<String, Option<BTreeSet<String>>> = BTreeMap::new();
    for item in items {
        let parts: Vec<&str> = item.trim().split('.').collect();
        let (dataset, field) = match parts.as_slice() {
            [d, s] => (format!("{d}.{s}"), None),
            [d, s, f] => (format!("{d}.{s}"), Some((*f).to_owned())),
            _ => {
                return Err(QueryRefusal::Malformed(format!(
                    "`{item}` is not `department.dataset` or `department.dataset.field`"
                )))
            }
        };
        let Some(ds) = engine.datasets().iter().find(|d| d.qualified == dataset) else {
            return Err(QueryRefusal::Malformed(format!(
                "unknown dataset `{dataset}`"
            )));
        };
        if let Some(f) = &field {
            if ds.field(f).is_none() {
                return Err(QueryRefusal::Malformed(format!(
                    "unknown field `{f}` in dataset `{dataset}`"
                )));
            }
        }
        let entry = by_dataset
            .entry(dataset)
            .or_insert_with(|| Some(BTreeSet::new()));
        match (entry.as_mut(), field) {
            (Some(fields), Some(f)) => {
                fields.insert(f);
            }
            (_, None) => *entry = None,
            (None, Some(_)) => {}
        }
    }
    Ok(by_dataset
        .into_iter()
        .map(|(dataset, fields)| DatasetRequest {
            dataset,
            fields: fields.map(|f| f.into_iter().collect()),
        })
        .collect())
}

/// Per-node outcome, as the requester sees it. Never silently omitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeStatus {
    /// Released something.
    Ok,
    /// Answered, with nothing to release (no record, or nothing disclosable).
    NoRecord,
    /// Refused by policy (the coordinator's pre-check or the node's own).
    Denied,
    /// Could not be reached, refused our credentials, or failed closed.
    Unavailable,
    /// No answer within the deadline.
    TimedOut,
}

/// One node's part of the answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeReport {
    /// The node.
    pub node: String,
    /// What happened.
    pub status: NodeStatus,
    /// Why, for denied / unavailable / timed out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The datasets it was asked about.
    pub datasets: Vec<String>,
}

/// What was released for one dataset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetResult {
    /// Minimized records.
    pub records: Vec<BTreeMap<String, fedq_policy::Value>>,
    /// Summaries (`exists`, `count`).
    pub summaries: BTreeMap<String, Summary>,
}

/// The answer to one query.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QueryResponse {
    /// The query's id (also in every audit entry it caused).
    pub query_id: String,
    /// Policy version that decided at the coordinator.
    pub policy_version: String,
    /// The subject, masked.
    pub subject: String,
    /// Purpose.
    pub purpose: String,
    /// The view asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub view: Option<String>,
    /// False when any node asked was unavailable or timed out.
    pub complete: bool,
    /// Every node asked, with its status.
    pub nodes: Vec<NodeReport>,
    /// The view's answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub view_result: Option<ViewResult>,
    /// What each dataset released.
    pub datasets: BTreeMap<String, DatasetResult>,
}

/// The datasets a target touches, grouped by department (= node name).
pub fn plan(engine: &Engine, target: &LookupTarget) -> BTreeMap<String, Vec<String>> {
    let datasets: Vec<String> = match target {
        LookupTarget::View(v) => engine
            .policy()
            .views
            .iter()
            .filter(|x| &x.name == v)
            .flat_map(|x| x.sources.iter().map(|s| s.dataset_name.clone()))
            .collect(),
        LookupTarget::Datasets(ds) => ds.iter().map(|d| d.dataset.clone()).collect(),
    };
    let mut plan: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for d in datasets {
        if let Some(dept) = d.split('.').next() {
            let list = plan.entry(dept.to_owned()).or_default();
            if !list.contains(&d) {
                list.push(d);
            }
        }
    }
    plan
}

/// Restricts a target to one node's datasets.
pub fn target_for(target: &LookupTarget, datasets: &[String]) -> LookupTarget {
    match target {
        LookupTarget::View(v) => LookupTarget::View(v.clone()),
        LookupTarget::Datasets(ds) => LookupTarget::Datasets(
            ds.iter()
                .filter(|d| datasets.contains(&d.dataset))
                .cloned()
                .collect(),
        ),
    }
}

fn has_content(a: &MinimizedAnswer) -> bool {
    !a.records.is_empty()
        || a.summaries
            .values()
            .any(|s| matches!(s, Summary::Exists(true)) || matches!(s, Summary::Count(n) if *n > 0))
}

/// What a node's answer (or failure) means for the requester: its report, the dataset
/// results, and the view's source outcomes.
pub fn merge_node(
    node: &str,
    datasets: &[String],
    answer: Result<NodeResponse, ChannelError>,
    results: &mut BTreeMap<String, DatasetResult>,
    sources: &mut BTreeMap<String, SourceOutcome>,
) -> NodeReport {
    let report = |status, reason: Option<String>| NodeReport {
        node: node.to_owned(),
        status,
        reason,
        datasets: datasets.to_vec(),
    };
    let unavailable = |sources: &mut BTreeMap<String, SourceOutcome>, why: &str| {
        for d in datasets {
            sources.insert(d.clone(), SourceOutcome::Unavailable(why.to_owned()));
        }
    };
    match answer {
        Ok(NodeResponse::Lookup(lookup)) => {
            let mut any_content = false;
            let mut any_released = false;
            let mut denials = Vec::new();
            for outcome in lookup.datasets {
                match outcome {
                    DatasetOutcome::Released(a) => {
                        any_released = true;
                        any_content |= has_content(&a);
                        results.insert(
                            a.dataset.clone(),
                            DatasetResult {
                                records: a.records.clone(),
                                summaries: a.summaries.clone(),
                            },
                        );
                        sources.insert(a.dataset.clone(), SourceOutcome::Answered(a));
                    }
                    DatasetOutcome::Denied { dataset, rationale } => {
                        sources.insert(
                            dataset.clone(),
                            SourceOutcome::Unavailable(format!("denied: {rationale}")),
                        );
                        denials.push(format!("{dataset}: {rationale}"));
                    }
                }
            }
            if any_content {
                report(NodeStatus::Ok, None)
            } else if any_released {
                report(NodeStatus::NoRecord, None)
            } else {
                report(NodeStatus::Denied, Some(denials.join("; ")))
            }
        }
        Ok(NodeResponse::Refused { rationale }) => {
            unavailable(sources, &format!("denied: {rationale}"));
            report(NodeStatus::Denied, Some(rationale))
        }
        Ok(NodeResponse::Failed { message, .. }) => {
            unavailable(sources, &message);
            report(NodeStatus::Unavailable, Some(message))
        }
        Ok(
            NodeResponse::Pong { .. }
            | NodeResponse::PolicyInstalled { .. }
            | NodeResponse::PolicyStatus(_),
        ) => {
            let why = "node answered a lookup with something else".to_owned();
            unavailable(sources, &why);
            report(NodeStatus::Unavailable, Some(why))
        }
        Err(ChannelError::TimedOut { after, .. }) => {
            let why = format!("no answer within {} ms", after.as_millis());
            unavailable(sources, &why);
            report(NodeStatus::TimedOut, Some(why))
        }
        Err(e) => {
            let why = e.to_string();
            unavailable(sources, &why);
            report(NodeStatus::Unavailable, Some(why))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fedq_wire::message::{FailureCode, LookupResponse};

    #[test]
    fn texts_longer_than_a_node_accepts_are_refused_before_any_node_is_asked() {
        let engine = fedq_policy::load::load_engine(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../reference/changsha/policy.toml"),
            None,
        )
        .unwrap();
        let query = |basis: String| QueryRequest {
            subject: "11010519491231002X".into(),
            purpose: "administrative-licensing".into(),
            legal_basis: Some(basis),
            consent: None,
            view: Some("blacklist-check".into()),
            datasets: None,
        };
        let max = fedq_wire::message::MAX_TEXT_LEN;
        assert!(query("b".repeat(max)).validate(&engine).is_ok());
        let err = query("b".repeat(max + 1)).validate(&engine).unwrap_err();
        assert_eq!(
            err,
            QueryRefusal::Malformed("`legal_basis` is 513 bytes; at most 512 are accepted".into())
        );
    }

    fn answer(dataset: &str, records: usize, summary: Option<Summary>) -> DatasetOutcome {
        let mut a = MinimizedAnswer {
            dataset: dataset.into(),
            policy_version: "1".into(),
            ..MinimizedAnswer::default()
        };
        for _ in 0..records {
            a.records.push(BTreeMap::new());
        }
        if let Some(s) = summary {
            a.summaries.insert("case_no".into(), s);
        }
        DatasetOutcome::Released(a)
    }

    fn lookup(datasets: Vec<DatasetOutcome>) -> Result<NodeResponse, ChannelError> {
        Ok(NodeResponse::Lookup(LookupResponse {
            node: "court".into(),
            policy_version: "1".into(),
            datasets,
        }))
    }

    fn status_of(
        result: Result<NodeResponse, ChannelError>,
    ) -> (NodeStatus, Option<String>, BTreeMap<String, SourceOutcome>) {
        let mut results = BTreeMap::new();
        let mut sources = BTreeMap::new();
        let ds = vec!["court.dishonest_debtors".to_owned()];
        let r = merge_node("court", &ds, result, &mut results, &mut sources);
        assert_eq!(r.datasets, ds, "every node report names what it was asked");
        (r.status, r.reason, sources)
    }

    #[test]
    fn every_outcome_has_a_status_and_a_source_outcome() {
        let d = "court.dishonest_debtors";
        let (s, _, src) = status_of(lookup(vec![answer(d, 1, None)]));
        assert_eq!(s, NodeStatus::Ok);
        assert!(matches!(src[d], SourceOutcome::Answered(_)));
        assert_eq!(
            status_of(lookup(vec![answer(d, 0, Some(Summary::Exists(true)))])).0,
            NodeStatus::Ok
        );
        // Released but empty: no record — and the view still counts the source as answered.
        let (s, _, src) = status_of(lookup(vec![answer(d, 0, Some(Summary::Exists(false)))]));
        assert_eq!(s, NodeStatus::NoRecord);
        assert!(matches!(src[d], SourceOutcome::Answered(_)));
        let (s, why, src) = status_of(lookup(vec![DatasetOutcome::Denied {
            dataset: d.into(),
            rationale: "denied by `x`: because".into(),
        }]));
        assert_eq!(s, NodeStatus::Denied);
        assert!(why.unwrap().contains("because"));
        assert!(matches!(src[d], SourceOutcome::Unavailable(_)));
        let (s, _, src) = status_of(Ok(NodeResponse::Refused {
            rationale: "no".into(),
        }));
        assert_eq!(s, NodeStatus::Denied);
        assert!(matches!(src[d], SourceOutcome::Unavailable(_)));
        let (s, _, _) = status_of(Ok(NodeResponse::Failed {
            code: FailureCode::Unavailable,
            message: "store down".into(),
        }));
        assert_eq!(s, NodeStatus::Unavailable);
        let (s, why, src) = status_of(Err(ChannelError::TimedOut {
            node: "court".into(),
            after: std::time::Duration::from_millis(2000),
        }));
        assert_eq!(s, NodeStatus::TimedOut);
        assert!(why.unwrap().contains("2000 ms"));
        assert!(
            matches!(src[d], SourceOutcome::Unavailable(_)),
            "a view never reads a missing source as clean"
        );
        let (s, _, _) = status_of(Err(ChannelError::Unavailable {
            node: "court".into(),
            reason: "down".into(),
        }));
        assert_eq!(s, NodeStatus::Unavailable);
    }
}
