//! The requester side's half of a query, as plain functions over data: what the nodes
//! sealed to it, opened, turned into the answer the requester reads.
//!
//! The coordinator relays each node's answer sealed ([`RelayedAnswer`]); it never holds a
//! record, so it cannot tell `ok` from `no_record`, see an unverified dataset, or compute a
//! view. The requester side (`fedq query`, [`crate::client::ApiConnection`]) opens each
//! answer with its session and the nonce of the proof it answers, then [`conclude`]s:
//!
//! - a datasets query: each node's outcomes, the datasets it was asked only, read into its
//!   status (`ok`, `no_record`, `denied`, `unverified`) and the dataset results;
//! - a view: each node's [`ViewPart`] — one finding per source it holds and the digest of
//!   the view's terms it decided under — [`views::combine`]d under the terms the
//!   coordinator relays (`view_terms`), which count only as far as the parts vouch for
//!   them: a node whose digest differs (the coordinator changed the terms, or a policy
//!   change reached the nodes at different moments) has its sources counted as unknown,
//!   so the view cannot come out clean through it.
//!
//! An answer that does not open (altered, moved from another node or query, sealed under
//! another session) is missing evidence: the node is `unavailable` with why, never read as
//! "no record".

use std::collections::{BTreeMap, BTreeSet};

use fedq_policy::views::{self, Finding, UnverifiedStatus, ViewPart, ViewTerms};
use fedq_wire::message::{DatasetOutcome, LookupAnswer};
use fedq_wire::proof::AnswerRefusal;

use crate::query::{
    has_content, DatasetResult, NodeReport, NodeStatus, QueryRequest, QueryResponse, RelayedAnswer,
};

/// What the requester side made of one node's sealed answer.
pub type Opened = Result<LookupAnswer, AnswerRefusal>;

/// What the requester itself asked, against which the coordinator's relay is read: the
/// view (its own name for it, not the relay's) and every node it sent a proof to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Asked {
    /// The view asked for, if any.
    pub view: Option<String>,
    /// The nodes proven to: each must be in the relay.
    pub nodes: BTreeSet<String>,
    /// Whether it exercises one of the person's rights.
    pub rights: bool,
}

impl Asked {
    /// What `proven` (a query with its proofs, as the requester sent it) asks.
    pub fn of(proven: &QueryRequest) -> Self {
        Self {
            view: proven.view.clone(),
            rights: proven.rights.is_some(),
            nodes: proven
                .proofs
                .iter()
                .filter(|(_, p)| p.is_some())
                .map(|(n, _)| n.clone())
                .collect(),
        }
    }
}

/// The answer the requester reads, from what it asked, the coordinator's relay and each
/// node's opened answer (by node; a node with a sealed answer and no entry here is
/// unavailable). Nothing the relay says about a node counts unless a sealed answer backs
/// it: a relayed `ok`, `no_record` or `answered` without one is `unavailable`, and a node
/// proven to that the relay leaves out is `unavailable` too.
pub fn conclude(
    asked: &Asked,
    relayed: RelayedAnswer,
    mut opened: BTreeMap<String, Opened>,
) -> QueryResponse {
    let RelayedAnswer {
        query_id,
        policy_version,
        purpose,
        view: _,
        complete: _,
        nodes,
        view_terms,
    } = relayed;
    let view = asked.view.clone();
    let mut results = BTreeMap::new();
    let mut parts: BTreeMap<String, ViewPart> = BTreeMap::new();
    let mut rights = BTreeMap::new();
    let mut reports = Vec::with_capacity(nodes.len());
    for mut report in nodes {
        if reports.iter().any(|r: &NodeReport| r.node == report.node) {
            continue; // a node relayed twice counts once, the first time
        }
        let Some(sealed) = report.sealed_answer.take() else {
            // Only a refusal, a failure or silence can come without a sealed answer.
            if matches!(
                report.status,
                NodeStatus::Denied | NodeStatus::Unavailable | NodeStatus::TimedOut
            ) {
                reports.push(report);
            } else {
                reports.push(missing(
                    report,
                    "the coordinator reported an answer from this node without its sealed answer",
                ));
            }
            continue;
        };
        // What the node's receipt was checked against, kept so the receipt can be checked
        // again by whoever keeps this answer.
        report.answer_sha256 = Some(hex::encode(fedq_audit::checkpoint::answer_sha256(&sealed)));
        let answer = opened
            .remove(&report.node)
            .unwrap_or(Err(AnswerRefusal::Content));
        match (answer, &view) {
            (Ok(LookupAnswer::Datasets(outcomes)), None) => {
                reports.push(read_datasets(report, outcomes, &mut results));
            }
            (Ok(LookupAnswer::View(part)), Some(v)) if &part.view == v => {
                parts.insert(report.node.clone(), part);
                reports.push(report);
            }
            (Ok(LookupAnswer::Rights(answer)), None) if asked.rights => {
                match &answer.unverified {
                    Some(why) => {
                        report.status = NodeStatus::Unverified;
                        report.reason = Some(why.clone());
                    }
                    None => {
                        report.status = NodeStatus::Ok;
                        rights.insert(report.node.clone(), answer);
                    }
                }
                reports.push(report);
            }
            (Ok(_), _) => reports.push(missing(
                report,
                "its sealed answer answers another kind of lookup",
            )),
            (Err(why), _) => {
                let why = format!("node `{}`: {why}", report.node);
                reports.push(missing(report, &why));
            }
        }
    }
    for node in &asked.nodes {
        if !reports.iter().any(|r| &r.node == node) {
            reports.push(NodeReport {
                node: node.clone(),
                status: NodeStatus::Unavailable,
                reason: Some(
                    "the coordinator's answer leaves out this node, which the query was proven to"
                        .into(),
                ),
                datasets: Vec::new(),
                proof_refused: None,
                query_id: None,
                sealed_answer: None,
                receipt: None,
                answer_sha256: None,
            });
        }
    }
    let (view_result, datasets) = match view.as_deref() {
        Some(v) => combine_parts(&mut reports, parts, view_terms.filter(|t| t.name == v)),
        None => (None, results),
    };
    reports.sort_by(|a, b| a.node.cmp(&b.node));
    let complete = (view.is_none() || view_result.is_some())
        && reports.iter().all(|r| {
            !matches!(
                r.status,
                NodeStatus::Unavailable | NodeStatus::TimedOut | NodeStatus::Unverified
            )
        });
    QueryResponse {
        query_id,
        policy_version,
        purpose,
        view,
        complete,
        nodes: reports,
        view_result,
        datasets,
        rights,
    }
}

/// The reason an answer without a valid receipt is unverified, before why.
pub const NO_RECEIPT: &str = "no valid audit receipt";

/// Checks a node's receipt for its answer (issue 18 §4, "no receipt, no data") against
/// the node's certificate key — the key that signed its session accept — under the log
/// name `fedq/<federation>/node/<node>`, and against `sealed_answer`, the sealed answer
/// received with it: the entry's hash recomputed from the receipt's content hash and the
/// answer's SHA-256 is the one the receipt states, the checkpoint is signed by the node's
/// key, and the proof places that entry at its index in that tree. A receipt of another
/// answer (of this node or any) does not check. Returns the checkpoint, or why not.
pub fn check_receipt(
    federation: &str,
    node: &str,
    node_public_key: &[u8],
    sealed_answer: &str,
    receipt: Option<&fedq_client::query::AuditReceipt>,
) -> Result<fedq_audit::checkpoint::Checkpoint, ReceiptCheckError> {
    let receipt = receipt.ok_or(ReceiptCheckError::Missing)?;
    let name = fedq_audit::checkpoint::log_name(federation, "node", node);
    let verifier = fedq_audit::checkpoint::NoteVerifier::new(&name, node_public_key)
        .map_err(ReceiptCheckError::Key)?;
    Ok(fedq_audit::checkpoint::Receipt {
        checkpoint: receipt.checkpoint.clone(),
        index: receipt.index,
        entry_hash: receipt.entry_hash.clone(),
        content_hash: receipt.content_hash.clone(),
        proof: receipt.proof.clone(),
    }
    .verify_answer(&verifier, sealed_answer)?)
}

/// Why a node's receipt for its answer does not check ([`check_receipt`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptCheckError {
    /// The answer came without a receipt.
    #[error("the node's answer carries none")]
    Missing,
    /// The node's certificate key cannot verify checkpoints.
    #[error("the node's key cannot check it: {0}")]
    Key(#[source] fedq_audit::checkpoint::CheckpointError),
    /// The receipt itself is refused.
    #[error(transparent)]
    Receipt(#[from] fedq_audit::checkpoint::ReceiptError),
}

/// An opened answer as the requester may read it given its receipt ([`check_receipt`]):
/// as it is with a valid one, else [`unverified`].
pub fn with_receipt(
    answer: LookupAnswer,
    federation: &str,
    node: &str,
    node_public_key: &[u8],
    sealed_answer: &str,
    receipt: Option<&fedq_client::query::AuditReceipt>,
) -> LookupAnswer {
    match check_receipt(federation, node, node_public_key, sealed_answer, receipt) {
        Ok(_) => answer,
        Err(why) => unverified(answer, &why.to_string()),
    }
}

/// An opened answer whose receipt did not check, as the requester reads it: every dataset
/// (or view source) it answers is unverified for `why`, so nothing of it counts as a
/// verified result — not a record, not "no record", not a denial.
pub fn unverified(answer: LookupAnswer, why: &str) -> LookupAnswer {
    let reason = format!("{NO_RECEIPT}: {why}");
    match answer {
        LookupAnswer::Datasets(outcomes) => LookupAnswer::Datasets(
            outcomes
                .into_iter()
                .map(|o| {
                    let dataset = match o {
                        DatasetOutcome::Released(a) => a.dataset,
                        DatasetOutcome::Denied { dataset, .. }
                        | DatasetOutcome::Unverified { dataset, .. } => dataset,
                    };
                    DatasetOutcome::Unverified {
                        dataset,
                        reason: reason.clone(),
                    }
                })
                .collect(),
        ),
        LookupAnswer::View(mut part) => {
            for source in &mut part.sources {
                source.finding = Finding::Missing {
                    status: UnverifiedStatus::Unverified,
                    reason: reason.clone(),
                };
                source.released = None;
            }
            LookupAnswer::View(part)
        }
        LookupAnswer::Rights(_) => LookupAnswer::Rights(fedq_wire::rights::RightsAnswer {
            unverified: Some(reason),
            ..Default::default()
        }),
    }
}

fn missing(report: NodeReport, why: &str) -> NodeReport {
    NodeReport {
        status: NodeStatus::Unavailable,
        reason: Some(why.to_owned()),
        ..report
    }
}

/// A datasets answer read into the node's status and the dataset results: only the
/// datasets the node was asked (a dataset it was not asked is not taken from it).
fn read_datasets(
    report: NodeReport,
    outcomes: Vec<DatasetOutcome>,
    results: &mut BTreeMap<String, DatasetResult>,
) -> NodeReport {
    let mut any_content = false;
    let mut any_released = false;
    let mut denials = Vec::new();
    let mut unverified = Vec::new();
    let asked = |d: &str| report.datasets.iter().any(|x| x == d);
    for outcome in outcomes {
        match outcome {
            DatasetOutcome::Released(a) if asked(&a.dataset) => {
                any_released = true;
                any_content |= has_content(&a);
                results.insert(
                    a.dataset,
                    DatasetResult {
                        records: a.records,
                        summaries: a.summaries,
                        disputed: a.disputed,
                    },
                );
            }
            DatasetOutcome::Denied { dataset, rationale } if asked(&dataset) => {
                denials.push(format!("{dataset}: {rationale}"));
            }
            DatasetOutcome::Unverified { dataset, reason } if asked(&dataset) => {
                unverified.push(format!("{dataset}: {reason}"));
            }
            _ => {}
        }
    }
    let answered = if any_content {
        Some(NodeStatus::Ok)
    } else {
        any_released.then_some(NodeStatus::NoRecord)
    };
    let (status, reason) = status_of(
        &unverified,
        answered,
        &denials,
        "its answer names none of the datasets it was asked",
    );
    NodeReport {
        status,
        reason,
        ..report
    }
}

/// A node's status from what its answer held, in order: any unverified dataset (never read
/// as "no record"), else what it answered (`answered`), else its denials, else nothing it
/// was asked (`none`, unavailable).
fn status_of(
    unverified: &[String],
    answered: Option<NodeStatus>,
    denials: &[String],
    none: &str,
) -> (NodeStatus, Option<String>) {
    if !unverified.is_empty() {
        (NodeStatus::Unverified, Some(unverified.join("; ")))
    } else if let Some(status) = answered {
        (status, None)
    } else if !denials.is_empty() {
        (NodeStatus::Denied, Some(denials.join("; ")))
    } else {
        (NodeStatus::Unavailable, Some(none.to_owned()))
    }
}

/// The view's answer from the parts that opened (by node): the
/// terms, each node's own sources' findings under them, each node's status (`answered`,
/// `denied`, `unverified`) and the sources' declared releases.
fn combine_parts(
    reports: &mut [NodeReport],
    parts: BTreeMap<String, ViewPart>,
    relayed_terms: Option<ViewTerms>,
) -> (
    Option<fedq_policy::views::ViewResult>,
    BTreeMap<String, DatasetResult>,
) {
    // The coordinator's terms, each part checked against them.
    let Some(terms) = relayed_terms else {
        for node in parts.keys() {
            if let Some(report) = reports.iter_mut().find(|r| &r.node == node) {
                report.status = NodeStatus::Unavailable;
                report.reason =
                    Some("the coordinator relayed no terms of the view to combine it under".into());
            }
        }
        return (None, BTreeMap::new());
    };
    let digest = terms.digest();
    // Terms no department vouches for combine no department's finding: a coordinator could
    // otherwise relay a view with fewer sources and have the parts read under it. Such
    // terms give at most an answer in which every source is unknown ("cannot confirm"),
    // and none at all when they name no source (which would read as clean).
    let vouched = parts.values().any(|p| p.terms_sha256 == digest);
    if !vouched {
        for node in parts.keys() {
            if let Some(report) = reports.iter_mut().find(|r| &r.node == node) {
                report.status = NodeStatus::Unavailable;
                report.reason = Some(format!(
                    "the terms of view `{}` the coordinator relayed are not the ones node `{node}` decided under; no department vouches for them",
                    terms.name
                ));
            }
        }
    }
    let parts = if vouched { parts } else { BTreeMap::new() };
    let mut findings = BTreeMap::new();
    let mut released = BTreeMap::new();
    for (node, part) in parts {
        let Some(report) = reports.iter_mut().find(|r| r.node == node) else {
            continue;
        };
        if part.terms_sha256 != digest {
            report.status = NodeStatus::Unavailable;
            report.reason = Some(format!(
                "node `{}` answered under another definition of view `{}` (a policy change in progress?); its sources are unknown",
                report.node, terms.name
            ));
            continue;
        }
        let mut denials = Vec::new();
        let mut unverified = Vec::new();
        let mut answered = false;
        // A node answers for its own department's sources of the view, nothing else.
        let own = |d: &str| {
            d.split('.').next() == Some(report.node.as_str())
                && terms.sources.iter().any(|s| s.dataset == d)
        };
        for source in part.sources.into_iter().filter(|s| own(&s.dataset)) {
            match &source.finding {
                Finding::Missing {
                    status: UnverifiedStatus::Unverified,
                    reason,
                } => unverified.push(format!("{}: {reason}", source.dataset)),
                Finding::Missing { reason, .. } => denials.push(format!(
                    "{}: {}",
                    source.dataset,
                    reason.strip_prefix("denied: ").unwrap_or(reason)
                )),
                _ => answered = true,
            }
            if let Some(r) = source.released {
                released.insert(
                    source.dataset.clone(),
                    DatasetResult {
                        records: r.records,
                        summaries: r.summaries,
                        disputed: 0,
                    },
                );
            }
            findings.insert(source.dataset, source.finding);
        }
        (report.status, report.reason) = status_of(
            &unverified,
            answered.then_some(NodeStatus::Answered),
            &denials,
            "its answer names none of the view's sources it holds",
        );
    }
    // A source whose node gave no part stays unknown, with that node's reason.
    for report in reports.iter() {
        if report.status == NodeStatus::Answered {
            continue;
        }
        let status = match report.status {
            NodeStatus::TimedOut => UnverifiedStatus::TimedOut,
            NodeStatus::Unverified => continue,
            _ => UnverifiedStatus::Unavailable,
        };
        let reason = match (report.status, &report.reason) {
            (NodeStatus::Denied, Some(r)) => format!("denied: {r}"),
            (_, Some(r)) => r.clone(),
            (_, None) => "no answer".to_owned(),
        };
        for d in &report.datasets {
            findings.entry(d.clone()).or_insert(Finding::Missing {
                status,
                reason: reason.clone(),
            });
        }
    }
    if terms.sources.is_empty() {
        return (None, BTreeMap::new());
    }
    (Some(views::combine(&terms, &findings)), released)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fedq_policy::views::{GreenChannelVerdict, SourceOutcome, ViewResult};
    use fedq_policy::{Engine, MinimizedAnswer, Summary};
    use fedq_wire::seal::SealRefusal;

    fn engine() -> Engine {
        let policy = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../reference/changsha/policy.toml");
        fedq_policy::load::load_engine(&policy, None).unwrap()
    }

    fn date() -> time::Date {
        time::Date::from_calendar_date(2026, time::Month::November, 27).unwrap()
    }

    fn released(dataset: &str, records: usize, summary: Option<Summary>) -> MinimizedAnswer {
        let mut a = MinimizedAnswer {
            dataset: dataset.into(),
            policy_version: "1".into(),
            ..MinimizedAnswer::default()
        };
        for _ in 0..records {
            a.records.push(BTreeMap::from([(
                "case_no".to_owned(),
                fedq_policy::Value::Text("(2025)湘0102执1号".into()),
            )]));
        }
        if let Some(s) = summary {
            a.summaries.insert("case_no".into(), s);
        }
        a
    }

    fn report(node: &str, datasets: &[&str], status: NodeStatus) -> NodeReport {
        NodeReport {
            node: node.into(),
            status,
            reason: None,
            datasets: datasets.iter().map(|d| (*d).to_owned()).collect(),
            proof_refused: None,
            query_id: None,
            sealed_answer: (status == NodeStatus::Answered).then(|| "sealed".to_owned()),
            receipt: None,
            answer_sha256: None,
        }
    }

    fn relayed(view: Option<&str>, nodes: Vec<NodeReport>) -> RelayedAnswer {
        RelayedAnswer {
            query_id: "q".into(),
            policy_version: "1".into(),
            purpose: "p".into(),
            view: view.map(str::to_owned),
            complete: true,
            nodes,
            view_terms: None,
        }
    }

    const D: &str = "court.dishonest_debtors";

    fn one_dataset(outcomes: Vec<DatasetOutcome>) -> QueryResponse {
        let relayed = relayed(None, vec![report("court", &[D], NodeStatus::Answered)]);
        conclude(
            &ask(&relayed),
            relayed,
            BTreeMap::from([("court".to_owned(), Ok(LookupAnswer::Datasets(outcomes)))]),
        )
    }

    /// What the requester asked, for a relay: its view and every node it shows answering.
    fn ask(r: &RelayedAnswer) -> Asked {
        Asked {
            view: r.view.clone(),
            nodes: r
                .nodes
                .iter()
                .filter(|n| n.sealed_answer.is_some())
                .map(|n| n.node.clone())
                .collect(),
            rights: false,
        }
    }

    #[test]
    fn a_datasets_answer_is_read_into_each_node_s_status_on_the_requester_side() {
        let r = one_dataset(vec![DatasetOutcome::Released(released(D, 1, None))]);
        assert_eq!(r.nodes[0].status, NodeStatus::Ok);
        assert_eq!(r.datasets[D].records.len(), 1);
        assert!(r.complete);
        let r = one_dataset(vec![DatasetOutcome::Released(released(
            D,
            0,
            Some(Summary::Exists(true)),
        ))]);
        assert_eq!(r.nodes[0].status, NodeStatus::Ok);
        // Released but empty: no record.
        let r = one_dataset(vec![DatasetOutcome::Released(released(
            D,
            0,
            Some(Summary::Exists(false)),
        ))]);
        assert_eq!(r.nodes[0].status, NodeStatus::NoRecord);
        let r = one_dataset(vec![DatasetOutcome::Denied {
            dataset: D.into(),
            rationale: "denied by `x`: because".into(),
        }]);
        assert_eq!(r.nodes[0].status, NodeStatus::Denied);
        assert!(r.nodes[0].reason.as_deref().unwrap().contains("because"));
        assert!(r.datasets.is_empty());
        // A dataset the node was not asked is not taken from it.
        let r = one_dataset(vec![DatasetOutcome::Released(released(
            "court.enforcement_cases",
            1,
            None,
        ))]);
        assert_eq!(r.nodes[0].status, NodeStatus::Unavailable);
        assert!(r.datasets.is_empty(), "{:?}", r.datasets);
        // No sealed answer on the way (a relay's `sealed_answer` is never shown).
        let json = serde_json::to_value(&r).unwrap();
        assert!(json["nodes"][0].get("sealed_answer").is_none(), "{json}");
    }

    #[test]
    fn an_unverified_dataset_is_its_own_status_and_never_no_record() {
        let relay = relayed(
            None,
            vec![report(
                "court",
                &[D, "court.enforcement_cases"],
                NodeStatus::Answered,
            )],
        );
        let r = conclude(
            &ask(&relay),
            relay,
            BTreeMap::from([(
                "court".to_owned(),
                Ok(LookupAnswer::Datasets(vec![
                    DatasetOutcome::Unverified {
                        dataset: D.into(),
                        reason: "a stored record of `court.dishonest_debtors` cannot be read back as a record".into(),
                    },
                    DatasetOutcome::Released(released("court.enforcement_cases", 1, None)),
                ])),
            )]),
        );
        // Even beside a dataset with content, the node's report says unverified.
        assert_eq!(r.nodes[0].status, NodeStatus::Unverified);
        assert!(r.nodes[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("court.dishonest_debtors: a stored record"));
        assert!(!r.datasets.contains_key(D), "nothing is released for it");
        assert!(r.datasets.contains_key("court.enforcement_cases"));
        assert!(!r.complete);
    }

    #[test]
    fn an_answer_that_does_not_open_is_missing_evidence_never_no_record() {
        for why in [
            AnswerRefusal::Sealed(SealRefusal::Tampered),
            AnswerRefusal::Sealed(SealRefusal::Moved),
            AnswerRefusal::Content,
        ] {
            let relay = relayed(None, vec![report("court", &[D], NodeStatus::Answered)]);
            let r = conclude(
                &ask(&relay),
                relay,
                BTreeMap::from([("court".to_owned(), Err(why))]),
            );
            assert_eq!(r.nodes[0].status, NodeStatus::Unavailable);
            assert!(
                r.nodes[0]
                    .reason
                    .as_deref()
                    .unwrap()
                    .contains(&why.to_string()),
                "{:?}",
                r.nodes[0]
            );
            assert!(!r.complete);
        }
        // Relayed as answered but nothing opened for it.
        let relay = relayed(None, vec![report("court", &[D], NodeStatus::Answered)]);
        let r = conclude(&ask(&relay), relay, BTreeMap::new());
        assert_eq!(r.nodes[0].status, NodeStatus::Unavailable);
    }

    /// Nothing the coordinator says of a node counts without a sealed answer behind it: a
    /// claimed `no_record` or `ok` is unavailable, a node proven to and left out of the
    /// relay is unavailable, and neither is complete.
    #[test]
    fn the_relay_s_word_counts_only_with_a_sealed_answer_behind_it() {
        for claimed in [NodeStatus::NoRecord, NodeStatus::Ok, NodeStatus::Answered] {
            let mut forged = report("court", &[D], NodeStatus::Denied);
            forged.status = claimed;
            let relay = relayed(None, vec![forged]);
            let asked = Asked {
                view: None,
                nodes: BTreeSet::from(["court".to_owned()]),
                rights: false,
            };
            let r = conclude(&asked, relay, BTreeMap::new());
            assert_eq!(r.nodes[0].status, NodeStatus::Unavailable, "{claimed:?}");
            assert!(!r.complete);
        }
        // A refusal needs no sealed answer and keeps its word.
        let relay = relayed(None, vec![report("court", &[D], NodeStatus::Denied)]);
        let r = conclude(&Asked::default(), relay, BTreeMap::new());
        assert_eq!(r.nodes[0].status, NodeStatus::Denied);
        // Left out: the requester proved to tax too.
        let relay = relayed(None, vec![report("court", &[D], NodeStatus::Answered)]);
        let asked = Asked {
            view: None,
            nodes: BTreeSet::from(["court".to_owned(), "tax".to_owned()]),
            rights: false,
        };
        let r = conclude(
            &asked,
            relay,
            BTreeMap::from([(
                "court".to_owned(),
                Ok(LookupAnswer::Datasets(vec![DatasetOutcome::Released(
                    released(D, 0, Some(Summary::Exists(false))),
                )])),
            )]),
        );
        let tax = r.nodes.iter().find(|n| n.node == "tax").unwrap();
        assert_eq!(tax.status, NodeStatus::Unavailable);
        assert!(tax
            .reason
            .as_deref()
            .unwrap()
            .contains("leaves out this node"));
        assert!(!r.complete);
    }

    /// The parts of a green channel, one per node, as each node makes them from its own
    /// sources: `dirty` names the one dataset with a record, `down` a node with no part.
    fn green_channel(
        dirty: &str,
        down: &str,
        tweak: impl Fn(&str, &mut ViewPart),
    ) -> (RelayedAnswer, BTreeMap<String, Opened>) {
        let engine = engine();
        let view = engine
            .policy()
            .views
            .iter()
            .find(|v| v.name == "green-channel")
            .unwrap();
        let plan = crate::query::plan(
            &engine,
            &fedq_wire::message::LookupTarget::View(view.name.clone()),
        );
        let mut reports = Vec::new();
        let mut opened = BTreeMap::new();
        for (node, datasets) in &plan {
            let names: Vec<&str> = datasets.iter().map(String::as_str).collect();
            if node == down {
                let mut r = report(node, &names, NodeStatus::Unavailable);
                r.reason = Some("down".into());
                reports.push(r);
                continue;
            }
            reports.push(report(node, &names, NodeStatus::Answered));
            let outcomes = datasets
                .iter()
                .map(|d| {
                    let n = usize::from(d == dirty);
                    (d.clone(), SourceOutcome::Answered(released(d, n, None)))
                })
                .collect();
            let mut part = views::part(view, ViewTerms::of(view).digest(), &outcomes, date());
            tweak(node, &mut part);
            opened.insert(node.clone(), Ok(LookupAnswer::View(part)));
        }
        let mut relayed = relayed(Some("green-channel"), reports);
        relayed.view_terms = Some(ViewTerms::of(view));
        (relayed, opened)
    }

    /// A green-channel answer carries its verdict and each node's completeness; neither
    /// the court's record nor whether it was the court (`ok` beside `no_record`) that held
    /// one.
    #[test]
    fn a_view_is_combined_from_the_nodes_parts_and_carries_no_source_s_record() {
        let (relayed, opened) = green_channel(D, "education", |_, _| {});
        let r = conclude(&ask(&relayed), relayed, opened);
        assert!(r.datasets.is_empty(), "{:?}", r.datasets);
        for n in &r.nodes {
            let want = if n.node == "education" {
                NodeStatus::Unavailable
            } else {
                NodeStatus::Answered
            };
            assert_eq!(n.status, want, "{n:?}");
        }
        let text = serde_json::to_string(&r.view_result).unwrap();
        assert!(!text.contains("湘0102"), "{text}");
        assert!(!text.contains("court") && !text.contains("失信"), "{text}");
        assert!(matches!(
            r.view_result,
            Some(ViewResult::GreenChannel {
                verdict: GreenChannelVerdict::NotEligible,
                ..
            })
        ));
        // With no record anywhere and one node down: cannot confirm, never eligible.
        let (relayed, opened) = green_channel("none", "education", |_, _| {});
        let r = conclude(&ask(&relayed), relayed, opened);
        assert!(matches!(
            r.view_result,
            Some(ViewResult::GreenChannel {
                verdict: GreenChannelVerdict::CannotConfirm,
                ..
            })
        ));
        assert!(!r.complete);
        // Every node up, no record: eligible.
        let (relayed, opened) = green_channel("none", "nobody", |_, _| {});
        let r = conclude(&ask(&relayed), relayed, opened);
        assert!(matches!(
            r.view_result,
            Some(ViewResult::GreenChannel {
                verdict: GreenChannelVerdict::Eligible,
                ..
            })
        ));
        assert!(r.complete);
    }

    /// Combining the parts gives what evaluating the view over every source at once gives.
    #[test]
    fn combined_parts_equal_the_view_evaluated_in_one_place() {
        let engine = engine();
        for view in &engine.policy().views {
            let outcomes: BTreeMap<String, SourceOutcome> = view
                .sources
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let o = match i % 3 {
                        0 => SourceOutcome::Answered(released(&s.dataset_name, 2, None)),
                        1 => SourceOutcome::Answered(released(&s.dataset_name, 0, None)),
                        _ => SourceOutcome::Unverified("unreadable".into()),
                    };
                    (s.dataset_name.clone(), o)
                })
                .collect();
            let whole = views::evaluate(view, &outcomes, date());
            let plan = crate::query::plan(
                &engine,
                &fedq_wire::message::LookupTarget::View(view.name.clone()),
            );
            let mut reports = Vec::new();
            let mut opened = BTreeMap::new();
            for (node, datasets) in &plan {
                let names: Vec<&str> = datasets.iter().map(String::as_str).collect();
                reports.push(report(node, &names, NodeStatus::Answered));
                let own = outcomes
                    .iter()
                    .filter(|(d, _)| datasets.contains(d))
                    .map(|(d, o)| (d.clone(), o.clone()))
                    .collect();
                opened.insert(
                    node.clone(),
                    Ok(LookupAnswer::View(views::part(
                        view,
                        ViewTerms::of(view).digest(),
                        &own,
                        date(),
                    ))),
                );
            }
            let mut relayed = relayed(Some(&view.name), reports);
            relayed.view_terms = Some(ViewTerms::of(view));
            let r = conclude(&ask(&relayed), relayed, opened);
            assert_eq!(r.view_result.as_ref(), Some(&whole), "{}", view.name);
        }
    }

    /// A node that answered under other terms of the view (another policy version, or a
    /// part that lists fewer sources) has its sources counted unknown: the view cannot be
    /// confirmed clean through it.
    #[test]
    fn a_part_under_other_terms_counts_its_sources_as_unknown() {
        let (relayed, opened) = green_channel("none", "nobody", |node, part| {
            if node == "tax" {
                part.terms_sha256[0] ^= 1;
            }
        });
        let r = conclude(&ask(&relayed), relayed, opened);
        let tax = r.nodes.iter().find(|n| n.node == "tax").unwrap();
        assert_eq!(tax.status, NodeStatus::Unavailable);
        assert!(tax
            .reason
            .as_deref()
            .unwrap()
            .contains("another definition"));
        assert!(matches!(
            r.view_result,
            Some(ViewResult::GreenChannel {
                verdict: GreenChannelVerdict::CannotConfirm,
                ..
            })
        ));
        // Terms the coordinator altered (here: one source fewer, so it would never be
        // missed) match no node's digest: no result, every node says why, not complete.
        let (mut relayed, opened) = green_channel("none", "nobody", |_, _| {});
        if let Some(terms) = relayed.view_terms.as_mut() {
            terms.sources.retain(|s| s.dataset != D);
        }
        let r = conclude(&ask(&relayed), relayed, opened);
        assert!(
            r.nodes.iter().all(|n| n.status == NodeStatus::Unavailable
                && n.reason
                    .as_deref()
                    .unwrap_or("")
                    .contains("no department vouches")),
            "{:?}",
            r.nodes
        );
        assert!(matches!(
            r.view_result,
            Some(ViewResult::GreenChannel {
                verdict: GreenChannelVerdict::CannotConfirm,
                ..
            })
        ));
        assert!(!r.complete);
        // Terms with no source at all would make every view clean: no department vouches
        // for them, so there is no result, and it is not complete.
        let (mut relayed, opened) = green_channel("court.dishonest_debtors", "nobody", |_, _| {});
        if let Some(terms) = relayed.view_terms.as_mut() {
            terms.sources.clear();
        }
        let r = conclude(&ask(&relayed), relayed, opened);
        assert!(r.view_result.is_none(), "{:?}", r.view_result);
        assert!(!r.complete);
        // No terms relayed at all: no result, and every node says why.
        let (mut relayed, opened) = green_channel("none", "nobody", |_, _| {});
        relayed.view_terms = None;
        let r = conclude(&ask(&relayed), relayed, opened);
        assert!(r.view_result.is_none());
        assert!(r.nodes.iter().all(|n| n.status == NodeStatus::Unavailable));
        // A node's finding for another department's source is not taken.
        let (relayed, opened) = green_channel("none", "court", |node, part| {
            if node == "tax" {
                part.sources.push(fedq_policy::views::SourcePart {
                    dataset: D.into(),
                    finding: Finding::Negative(false),
                    released: None,
                });
            }
        });
        let r = conclude(&ask(&relayed), relayed, opened);
        assert!(matches!(
            r.view_result,
            Some(ViewResult::GreenChannel {
                verdict: GreenChannelVerdict::CannotConfirm,
                ..
            })
        ));
    }

    /// A node's key pair (PKCS#8 and its public key) for receipts.
    fn node_key() -> (Vec<u8>, Vec<u8>) {
        use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        (pkcs8.as_ref().to_vec(), pair.public_key().as_ref().to_vec())
    }

    /// The sealed answers two of the court's lookups released (their text is all a
    /// receipt binds to).
    const SEALED: &str = "eyJhbGciOiJkaXIifQ..aaaa.bbbb.cccc";
    const OTHER_SEALED: &str = "eyJhbGciOiJkaXIifQ..dddd.eeee.ffff";

    /// The receipts of a two-entry log signed by `pkcs8` under the court's log name: its
    /// entries written for `SEALED` and `OTHER_SEALED`, in that order.
    fn receipts(pkcs8: &[u8]) -> [fedq_client::query::AuditReceipt; 2] {
        use fedq_audit::checkpoint::{
            answer_bound_hash, answer_sha256, log_name, Checkpoint, NoteSigner,
        };
        use fedq_audit::merkle::{leaf_hash, node_hash};
        let contents = [[7u8; 32], [9u8; 32]];
        let entries = [
            answer_bound_hash(&contents[0], &answer_sha256(SEALED)),
            answer_bound_hash(&contents[1], &answer_sha256(OTHER_SEALED)),
        ];
        let leaves = entries.map(|e| leaf_hash(&e));
        let signer = NoteSigner::from_pkcs8(&log_name("changsha", "node", "court"), pkcs8).unwrap();
        let note = signer
            .sign_checkpoint(&Checkpoint {
                origin: signer.name().to_owned(),
                size: 2,
                root: node_hash(&leaves[0], &leaves[1]),
            })
            .unwrap()
            .to_text();
        let receipt = |i: usize| fedq_client::query::AuditReceipt {
            checkpoint: note.clone(),
            index: i as u64,
            entry_hash: hex::encode(entries[i]),
            content_hash: Some(hex::encode(contents[i])),
            proof: fedq_audit::checkpoint::encode_proof(&[leaves[1 - i]]),
        };
        [receipt(0), receipt(1)]
    }

    /// No receipt, no data: an answer with records whose receipt is signed by another key,
    /// names another entry, was written for another answer or is missing is `unverified`
    /// with why, and nothing of it is a result; with a valid receipt it reads as it is.
    #[test]
    fn an_answer_without_a_valid_receipt_is_unverified_and_releases_nothing() {
        let (pkcs8, public) = node_key();
        let (other_pkcs8, _) = node_key();
        let [valid, of_other_answer] = receipts(&pkcs8);
        let answer =
            || LookupAnswer::Datasets(vec![DatasetOutcome::Released(released(D, 1, None))]);
        let read = |receipt: Option<&fedq_client::query::AuditReceipt>| {
            let opened = with_receipt(answer(), "changsha", "court", &public, SEALED, receipt);
            let relayed = relayed(None, vec![report("court", &[D], NodeStatus::Answered)]);
            conclude(
                &ask(&relayed),
                relayed,
                BTreeMap::from([("court".to_owned(), Ok(opened))]),
            )
        };

        let good = read(Some(&valid));
        assert_eq!(good.nodes[0].status, NodeStatus::Ok, "{good:?}");
        assert!(good.datasets.contains_key(D));
        assert!(check_receipt("changsha", "court", &public, SEALED, Some(&valid)).is_ok());
        // Another node's name is another log: the same receipt does not check for it.
        assert!(check_receipt("changsha", "tax", &public, SEALED, Some(&valid)).is_err());
        // Each receipt checks with its own answer only: the node's receipt of another of
        // its answers (a valid entry of the same log, signed by the same key) does not.
        assert!(check_receipt(
            "changsha",
            "court",
            &public,
            OTHER_SEALED,
            Some(&of_other_answer)
        )
        .is_ok());
        let swapped = check_receipt("changsha", "court", &public, SEALED, Some(&of_other_answer))
            .unwrap_err()
            .to_string();
        assert!(swapped.contains("not written for this answer"), "{swapped}");
        assert!(check_receipt("changsha", "court", &public, OTHER_SEALED, Some(&valid)).is_err());

        let mut changed = valid.clone();
        changed.entry_hash = hex::encode([8u8; 32]);
        // A content hash altered (and the entry hash with it, as a node that wanted the
        // receipt to fit would): the entry is not in the signed tree.
        let mut altered_content = valid.clone();
        altered_content.content_hash = Some(hex::encode([6u8; 32]));
        let mut altered_both = altered_content.clone();
        altered_both.entry_hash = hex::encode(fedq_audit::checkpoint::answer_bound_hash(
            &[6u8; 32],
            &fedq_audit::checkpoint::answer_sha256(SEALED),
        ));
        // A receipt of an entry bound to no answer.
        let mut unbound = valid.clone();
        unbound.content_hash = None;
        let cases = [
            (
                "signed by another key",
                Some(receipts(&other_pkcs8)[0].clone()),
            ),
            ("with a changed entry hash", Some(changed)),
            ("of another answer", Some(of_other_answer)),
            ("with an altered content hash", Some(altered_content)),
            ("with an altered content and entry hash", Some(altered_both)),
            ("of an entry bound to no answer", Some(unbound)),
            ("missing", None),
        ];
        for (what, receipt) in cases {
            let r = read(receipt.as_ref());
            assert_eq!(r.nodes[0].status, NodeStatus::Unverified, "{what}: {r:?}");
            let reason = r.nodes[0].reason.as_deref().unwrap_or_default();
            assert!(reason.contains(NO_RECEIPT), "{what}: {reason}");
            assert!(r.datasets.is_empty(), "{what}: {r:?}");
            assert!(!r.complete, "{what}");
        }

        // A view's part without a valid receipt counts its sources as unknown.
        let part = ViewPart {
            view: "green-channel".into(),
            terms_sha256: [0; 32],
            sources: vec![fedq_policy::views::SourcePart {
                dataset: D.into(),
                finding: Finding::Negative(false),
                released: None,
            }],
        };
        let LookupAnswer::View(part) = with_receipt(
            LookupAnswer::View(part),
            "changsha",
            "court",
            &public,
            SEALED,
            None,
        ) else {
            panic!("a view part stays a view part");
        };
        assert!(matches!(
            &part.sources[0].finding,
            Finding::Missing { status: UnverifiedStatus::Unverified, reason } if reason.contains(NO_RECEIPT)
        ));
    }
}
