//! The requester API's types, and the planning and merging of one query as plain
//! functions over data (no sockets, no clock).

use std::collections::{BTreeMap, BTreeSet};

use fedq_policy::{Engine, MinimizedAnswer, Summary};
use fedq_wire::message::{DatasetRequest, LookupTarget};
use fedq_wire::proof::{ProofClaims, ProofRefusal, ProofTarget, SealedSubject};
use fedq_wire::transport::ChannelError;
use fedq_wire::{NodeResponse, ResidentId};

pub use fedq_client::query::{
    DatasetResult, NodeReport, NodeStatus, QueryRequest, QueryResponse, RelayedAnswer,
};

use crate::problem::{Hint, Kind, Said};

/// Largest request body accepted. A query carries one proof per node, each naming the
/// whole target, so a dataset query to every department is several times its own size.
pub const MAX_BODY: usize = 64 * 1024;

/// Longest proof accepted for one node, in bytes.
pub const MAX_PROOF_LEN: usize = 8 * 1024;

/// Most entries in `proofs` (and grants in a session request).
pub const MAX_PROOFS: usize = 64;

/// Why a node the requester left out of `proofs` (with `null`) was not asked.
pub const NOT_PROVEN: &str =
    "not asked: the requester holds no session with this node, so sent no proof for it";

/// A validated query.
#[derive(Clone, Debug)]
pub struct ValidQuery {
    /// Purpose.
    pub purpose: String,
    /// Legal basis.
    pub legal_basis: Option<String>,
    /// Whether the requester sealed a consent token with the subject (every node verifies
    /// it; the coordinator never sees it).
    pub consent_sealed: bool,
    /// The case the query serves, checked against the purpose's form by the policy
    /// pre-check (and again by every node).
    pub case_reference: Option<String>,
    /// What is asked.
    pub target: LookupTarget,
    /// The requester's proofs per node (`None`: no session with that node).
    pub proofs: BTreeMap<String, Option<String>>,
    /// The sealed subject per node proven to.
    pub sealed: BTreeMap<String, String>,
}

/// A query refused before anything was sent to any node.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryRefusal {
    /// The body is not a valid query (400).
    #[error("{0}")]
    Malformed(Said),
    /// The policy refuses it (403), with the rule's rationale.
    #[error("{0}")]
    Policy(Said),
}

/// The fields a query body may have, in the order the API documents them.
pub const QUERY_FIELDS: [&str; 9] = [
    "purpose",
    "legal_basis",
    "consent_sealed",
    "case_reference",
    "view",
    "datasets",
    "rights",
    "proofs",
    "sealed",
];

/// Fields a requester keeps to itself: a body carrying one is refused, naming it.
const SEALED_FIELDS: [&str; 3] = ["subject", "consent", "filing"];

/// What kind of JSON value `v` is, for messages that must not quote it.
fn kind_of(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "true or false",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Why a query's subject or consent token cannot be sealed
/// ([`QueryRequestExt::sealed_subject`]): the field and what is wrong, never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealedSubjectError {
    /// The subject is not a resident ID.
    #[error("`subject`: {0}")]
    Subject(#[source] fedq_policy::ResidentIdError),
    /// The consent token is too long.
    #[error("`consent` is {len} bytes; at most {max} are accepted")]
    ConsentTooLong {
        /// Its length in bytes.
        len: usize,
        /// The most accepted.
        max: usize,
    },
}

/// How the coordinator reads a [`QueryRequest`] (parsed without quoting it, validated
/// against the policy) and what the requester side proves and seals of it. A trait because
/// the type is the client crate's ([`fedq_client::query`]); import it (`use
/// fedq_coordinator::query::QueryRequestExt as _`) to call these.
pub trait QueryRequestExt: Sized {
    /// Parses a `POST /v1/query` body.
    fn from_json(body: &[u8]) -> Result<Self, QueryRefusal>;
    /// What a requester proves for this query.
    fn proof_claims(&self) -> Option<ProofClaims>;
    /// What the requester seals to each node.
    fn sealed_subject(&self) -> Result<SealedSubject, SealedSubjectError>;
    /// Validates shape and names against the policy.
    fn validate(self, engine: &Engine) -> Result<ValidQuery, QueryRefusal>;
}

impl QueryRequestExt for QueryRequest {
    /// Parses a `POST /v1/query` body. A refusal says which field was wrong and what was
    /// expected, never what was sent: the message is registered in the audit log, and a
    /// body may carry a resident ID anywhere (serde's own messages quote the offending
    /// value or key).
    fn from_json(body: &[u8]) -> Result<Self, QueryRefusal> {
        use serde_json::Value;
        let malformed =
            |why: String| QueryRefusal::Malformed(format!("malformed query JSON: {why}").into());
        let value: Value = serde_json::from_slice(body).map_err(|e| {
            malformed(format!(
                "not a JSON document (line {}, column {}); send one JSON object",
                e.line(),
                e.column()
            ))
        })?;
        let Value::Object(map) = value else {
            return Err(malformed(format!(
                "the body is {}; send one JSON object with the fields {}",
                kind_of(&value),
                QUERY_FIELDS.join(", ")
            )));
        };
        if let Some(field) = SEALED_FIELDS.iter().find(|f| map.contains_key(**f)) {
            return Err(malformed(format!(
                "`{field}` is never sent to the coordinator: seal the subject and the consent token to each node asked (`sealed`, with `consent_sealed`); `fedq query` and the client library do"
            )));
        }
        if map.keys().any(|k| !QUERY_FIELDS.contains(&k.as_str())) {
            return Err(malformed(format!(
                "unknown field; a query has only the fields {}",
                QUERY_FIELDS.join(", ")
            )));
        }
        let text = |name: &str| -> Result<Option<String>, QueryRefusal> {
            match map.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(malformed(format!(
                    "`{name}` must be a string in quotes, not {}",
                    kind_of(other)
                ))),
            }
        };
        let required = |name: &str| -> Result<String, QueryRefusal> {
            text(name)?.ok_or_else(|| malformed(format!("`{name}` is required")))
        };
        let datasets = match map.get("datasets") {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| match item {
                        Value::String(s) => Ok(s.clone()),
                        other => Err(malformed(format!(
                            "`datasets` must be a list of strings; item {} is {}",
                            i + 1,
                            kind_of(other)
                        ))),
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Some(other) => {
                return Err(malformed(format!(
                    "`datasets` must be a list of strings, not {}",
                    kind_of(other)
                )))
            }
        };
        // `proofs` and `sealed`: node name → one entry each, checked alike.
        let node_map = |field: &str,
                        of_what: &str|
         -> Result<Vec<(usize, &String, &Value)>, QueryRefusal> {
            let items = match map.get(field) {
                None | Some(Value::Null) => return Ok(Vec::new()),
                Some(Value::Object(items)) => items,
                Some(other) => {
                    return Err(malformed(format!(
                        "`{field}` must be an object of node name to {of_what}, not {}",
                        kind_of(other)
                    )))
                }
            };
            if items.len() > MAX_PROOFS {
                return Err(malformed(format!(
                    "`{field}` has {} entries; at most {MAX_PROOFS} are accepted",
                    items.len()
                )));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, (node, value))| {
                    if fedq_certs::identity::validate_name(node).is_err() {
                        return Err(malformed(format!(
                            "`{field}` entry {} is not keyed by a node name (GET /v1/nodes lists them)",
                            i + 1
                        )));
                    }
                    Ok((i + 1, node, value))
                })
                .collect()
        };
        let mut proofs = BTreeMap::new();
        for (n, node, proof) in node_map("proofs", "proof")? {
            let proof = match proof {
                Value::Null => None,
                Value::String(p) if !p.is_empty() && p.len() <= MAX_PROOF_LEN => Some(p.clone()),
                Value::String(_) => {
                    return Err(malformed(format!(
                        "`proofs` entry {n} must be a compact JWS of 1 to {MAX_PROOF_LEN} bytes"
                    )))
                }
                other => {
                    return Err(malformed(format!(
                        "`proofs` entry {n} must be a string (a compact JWS) or null, not {}",
                        kind_of(other)
                    )))
                }
            };
            proofs.insert(node.clone(), proof);
        }
        let max = fedq_wire::message::MAX_SEALED_SUBJECT_LEN;
        let mut sealed = BTreeMap::new();
        for (n, node, jwe) in node_map("sealed", "sealed subject")? {
            match jwe {
                Value::String(j) if j.len() <= max && fedq_wire::seal::is_sealed_query_for(j, node) => {
                    sealed.insert(node.clone(), j.clone());
                }
                _ => {
                    return Err(malformed(format!(
                        "`sealed` entry {n} must be a compact JWE of at most {max} bytes sealed to its node (typ fedq-sealed-query+jwe, aud the node's name)"
                    )))
                }
            }
        }
        let rights = match map.get("rights") {
            None | Some(Value::Null) => None,
            Some(Value::Object(r)) => {
                if r.keys().any(|k| k != "right" && k != "dataset") {
                    return Err(malformed(
                        "`rights` has only the fields right and dataset".into(),
                    ));
                }
                let right = match r.get("right") {
                    Some(Value::String(name)) => {
                        fedq_wire::rights::Right::parse(name).ok_or_else(|| {
                            malformed(format!(
                                "`rights.right` is not a right; the rights are: {}",
                                fedq_wire::rights::Right::ALL.map(|r| r.as_str()).join(", ")
                            ))
                        })?
                    }
                    _ => {
                        return Err(malformed(
                            "`rights.right` must be a string naming a right".into(),
                        ))
                    }
                };
                let dataset = match r.get("dataset") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(d)) => Some(d.clone()),
                    Some(other) => {
                        return Err(malformed(format!(
                            "`rights.dataset` must be a string, not {}",
                            kind_of(other)
                        )))
                    }
                };
                Some(fedq_wire::rights::RightsTarget { right, dataset })
            }
            Some(other) => {
                return Err(malformed(format!(
                    "`rights` must be an object with `right` (and `dataset`), not {}",
                    kind_of(other)
                )))
            }
        };
        let consent_sealed = match map.get("consent_sealed") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(malformed(format!(
                    "`consent_sealed` must be true or false, not {}",
                    kind_of(other)
                )))
            }
        };
        Ok(Self {
            subject: String::new(),
            purpose: required("purpose")?,
            legal_basis: text("legal_basis")?,
            consent: None,
            consent_sealed,
            case_reference: text("case_reference")?,
            view: text("view")?,
            datasets,
            rights,
            filing: None,
            proofs,
            sealed,
        })
    }

    /// What a requester proves for this query ([`ProofClaims`] without the sealed
    /// subject's hash, `fed`, `node`, `iat` and `nonce`, which
    /// [`fedq_wire::proof::Session::prove_sealed`] sets per node): the fields exactly as
    /// [`QueryRequestExt::validate`] will hand them to the nodes — texts trimmed, blanks
    /// dropped, dataset items grouped per dataset with their fields sorted. `None` when
    /// the query cannot be valid (no target, a dataset item of the wrong shape): the
    /// coordinator refuses it anyway.
    fn proof_claims(&self) -> Option<ProofClaims> {
        let nonblank = |o: &Option<String>| {
            o.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let target = match (&self.view, &self.datasets, &self.rights) {
            (Some(v), None, None) => LookupTarget::View(v.trim().to_owned()),
            (None, Some(ds), None) if !ds.is_empty() => {
                LookupTarget::Datasets(group_datasets(ds).ok()?)
            }
            (None, None, Some(r)) => LookupTarget::Rights(trimmed(r)),
            _ => return None,
        };
        Some(ProofClaims::new(
            self.purpose.trim(),
            nonblank(&self.legal_basis).as_deref(),
            nonblank(&self.case_reference).as_deref(),
            ProofTarget::from(&target),
        ))
    }

    /// What the requester seals to each node: the subject (trimmed, checked here, since
    /// the coordinator never sees it) and the consent token, if any. The error names the
    /// field and what is wrong, never its value.
    fn sealed_subject(&self) -> Result<SealedSubject, SealedSubjectError> {
        let sub = ResidentId::parse(self.subject.trim()).map_err(SealedSubjectError::Subject)?;
        let consent = self
            .consent
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned);
        let max = fedq_wire::message::MAX_CONSENT_LEN;
        if let Some(len) = consent.as_ref().map(String::len).filter(|l| *l > max) {
            return Err(SealedSubjectError::ConsentTooLong { len, max });
        }
        Ok(SealedSubject {
            sub,
            consent,
            filing: self.filing.clone(),
        })
    }

    /// Validates shape and names against the policy. A refusal names the kind of input
    /// that was wrong and what the policy accepts; it never repeats what was sent (it is
    /// registered in the audit log), so an ID typed into any field stays out of it.
    fn validate(self, engine: &Engine) -> Result<ValidQuery, QueryRefusal> {
        let malformed = |s: String| Err(QueryRefusal::Malformed(s.into()));
        let purpose = self.purpose.trim().to_owned();
        if purpose.is_empty() {
            return malformed("`purpose` is required".into());
        }
        let policy = engine.policy();
        if !policy.purposes.iter().any(|p| p.name == purpose) {
            let known: Vec<&str> = policy.purposes.iter().map(|p| p.name.as_str()).collect();
            let message = format!(
                "unknown purpose; the policy's purposes are: {}",
                known.join(", ")
            );
            let accepted = known.into_iter().map(str::to_owned).collect();
            return Err(QueryRefusal::Policy(Said::new(
                message,
                Hint::field(Kind::UnknownPurpose, "purpose", accepted),
            )));
        }
        let nonblank = |o: Option<String>| o.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        let legal_basis = nonblank(self.legal_basis);
        let case_reference = nonblank(self.case_reference);
        let case_max = fedq_policy::policy::MAX_CASE_REFERENCE_BYTES;
        if let Some(len) = case_reference
            .as_ref()
            .map(String::len)
            .filter(|l| *l > case_max)
        {
            return malformed(format!(
                "`case_reference` is {len} bytes; at most {case_max} are accepted"
            ));
        }
        // What a node accepts in a lookup (it refuses longer texts itself).
        let max = fedq_wire::message::MAX_TEXT_LEN;
        for (what, text, max) in [
            ("purpose", Some(&self.purpose), max),
            ("legal_basis", legal_basis.as_ref(), max),
        ] {
            if let Some(len) = text.map(String::len).filter(|l| *l > max) {
                return malformed(format!(
                    "`{what}` is {len} bytes; at most {max} are accepted"
                ));
            }
        }
        if let Some(basis) = &legal_basis {
            let index = policy.purposes.iter().position(|p| p.name == purpose);
            let accepted = index.map(|i| policy.legal_bases_for(i)).unwrap_or_default();
            if !accepted.contains(basis.as_str()) {
                let message = format!(
                    "`legal_basis` is not one purpose `{purpose}` accepts; cite one of: {}",
                    if accepted.is_empty() {
                        "none (this purpose takes no legal basis; omit it)".to_owned()
                    } else {
                        accepted.iter().copied().collect::<Vec<_>>().join(", ")
                    }
                );
                let accepted = accepted.into_iter().map(str::to_owned).collect();
                return Err(QueryRefusal::Policy(Said::new(
                    message,
                    Hint::field(Kind::LegalBasisNotAccepted, "legal_basis", accepted),
                )));
            }
        }
        let target = match (self.view, self.datasets, self.rights) {
            (None, None, Some(r)) => {
                let r = trimmed(&r);
                match (&r.dataset, r.right.names_a_dataset()) {
                    (None, true) => {
                        return malformed(format!(
                            "`rights.right` `{}` is about one dataset; name it in `rights.dataset` (`department.dataset`)",
                            r.right
                        ))
                    }
                    (Some(_), false) => {
                        return malformed(format!(
                            "`rights.right` `{}` is asked of every node; send it without `rights.dataset`",
                            r.right
                        ))
                    }
                    (Some(d), true) if !engine.datasets().iter().any(|x| &x.qualified == d) => {
                        let known: Vec<&str> =
                            engine.datasets().iter().map(|x| x.qualified.as_str()).collect();
                        return Err(QueryRefusal::Malformed(Said::new(
                            "`rights.dataset` is not a dataset of the catalogue".to_owned(),
                            Hint::field(
                                Kind::UnknownDataset,
                                "rights.dataset",
                                known.into_iter().map(str::to_owned).collect(),
                            ),
                        )));
                    }
                    _ => {}
                }
                LookupTarget::Rights(r)
            }
            (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => {
                return malformed("give one of `view`, `datasets` or `rights`".into())
            }
            (Some(v), None, None) => {
                let v = v.trim().to_owned();
                if !policy.views.iter().any(|x| x.name == v) {
                    let known: Vec<&str> = policy.views.iter().map(|x| x.name.as_str()).collect();
                    let message =
                        format!("unknown view; the policy's views are: {}", known.join(", "));
                    let accepted = known.into_iter().map(str::to_owned).collect();
                    return Err(QueryRefusal::Malformed(Said::new(
                        message,
                        Hint::field(Kind::UnknownView, "view", accepted),
                    )));
                }
                LookupTarget::View(v)
            }
            (None, Some(ds), None) if !ds.is_empty() => {
                LookupTarget::Datasets(parse_datasets(engine, &ds)?)
            }
            (Some(_), Some(_), None) => {
                return malformed("give either `view` or `datasets`, not both".into())
            }
            _ => {
                return malformed(
                    "give a `view`, a non-empty list of `datasets`, or `rights`".into(),
                )
            }
        };
        Ok(ValidQuery {
            purpose,
            legal_basis,
            consent_sealed: self.consent_sealed,
            case_reference,
            target,
            proofs: self.proofs,
            sealed: self.sealed,
        })
    }
}

/// What an audit entry records of a request: only the policy's own identifiers. A purpose
/// the policy does not declare, a legal basis it does not cite, or a view, dataset or
/// field it does not know is recorded as `-`, whatever was sent in its place.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recorded {
    /// A declared purpose, or `-`.
    pub purpose: String,
    /// A cited legal basis.
    pub legal_basis: Option<String>,
    /// A case reference of the form the (declared) purpose requires.
    pub case_reference: Option<String>,
    /// `view:NAME`, or the datasets and fields asked for, each known name or `-`.
    pub target: String,
}

impl Recorded {
    /// Nothing could be read of the request.
    pub fn nothing() -> Self {
        Self {
            purpose: "-".into(),
            legal_basis: None,
            case_reference: None,
            target: "-".into(),
        }
    }

    /// What may be recorded of `request` under `engine`'s policy.
    pub fn of(request: &QueryRequest, engine: &Engine) -> Self {
        let policy = engine.policy();
        let purpose = request.purpose.trim();
        let purpose = if policy.purposes.iter().any(|p| p.name == purpose) {
            purpose.to_owned()
        } else {
            "-".to_owned()
        };
        let legal_basis = request
            .legal_basis
            .as_deref()
            .map(str::trim)
            .filter(|b| policy.cited_legal_bases().contains(b))
            .map(str::to_owned);
        let case_reference = policy
            .recordable_case(&purpose, request.case_reference.as_deref().map(str::trim))
            .map(str::to_owned);
        let target = match (&request.view, &request.datasets) {
            (Some(v), _) if policy.views.iter().any(|x| x.name == v.trim()) => {
                format!("view:{}", v.trim())
            }
            (Some(_), _) => "view:-".to_owned(),
            (None, Some(items)) if !items.is_empty() => items
                .iter()
                .map(|item| {
                    let item = item.trim();
                    let parts: Vec<&str> = item.split('.').collect();
                    let known = match parts.as_slice() {
                        [d, s] => engine
                            .datasets()
                            .iter()
                            .any(|x| x.qualified == format!("{d}.{s}")),
                        [d, s, f] => engine
                            .datasets()
                            .iter()
                            .find(|x| x.qualified == format!("{d}.{s}"))
                            .is_some_and(|x| x.field(f).is_some()),
                        _ => false,
                    };
                    if known {
                        item
                    } else {
                        "-"
                    }
                })
                .collect::<Vec<_>>()
                .join(" "),
            _ => "-".to_owned(),
        };
        Self {
            purpose,
            legal_basis,
            case_reference,
            target,
        }
    }
}

/// Groups `department.dataset[.field]` items into per-dataset requests, datasets in
/// order, fields sorted and deduplicated, `None` (every field) when any item names the
/// dataset alone. The same grouping makes the lookups and the requester's proof of them.
/// `Err(n)`: item `n` (from 1) is not of that shape.
pub fn group_datasets(items: &[String]) -> Result<Vec<DatasetRequest>, usize> {
    let mut by_dataset: BTreeMap<String, Option<BTreeSet<String>>> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let parts: Vec<&str> = item.trim().split('.').collect();
        let (dataset, field) = match parts.as_slice() {
            [d, s] => (format!("{d}.{s}"), None),
            [d, s, f] => (format!("{d}.{s}"), Some((*f).to_owned())),
            _ => return Err(i + 1),
        };
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

/// Parses `department.dataset[.field]` items into per-dataset requests. Refusals say which
/// item (by position) was wrong, never what it said.
fn parse_datasets(engine: &Engine, items: &[String]) -> Result<Vec<DatasetRequest>, QueryRefusal> {
    for (i, item) in items.iter().enumerate() {
        let n = i + 1;
        let parts: Vec<&str> = item.trim().split('.').collect();
        let (dataset, field) = match parts.as_slice() {
            [d, s] => (format!("{d}.{s}"), None),
            [d, s, f] => (format!("{d}.{s}"), Some((*f).to_owned())),
            _ => {
                return Err(QueryRefusal::Malformed(Said::new(
                    format!(
                    "`datasets` item {n} is not `department.dataset` or `department.dataset.field`"
                ),
                    Hint::field(Kind::MalformedRequest, "datasets", Vec::new()),
                )))
            }
        };
        let Some(ds) = engine.datasets().iter().find(|d| d.qualified == dataset) else {
            let example = engine
                .datasets()
                .first()
                .map(|d| format!(", e.g. `{}`", d.qualified))
                .unwrap_or_default();
            return Err(QueryRefusal::Malformed(Said::new(
                format!("`datasets` item {n} names an unknown dataset; expected `department.dataset` from the catalogues{example}"),
                Hint::field(Kind::UnknownDataset, "datasets", Vec::new()),
            )));
        };
        if let Some(f) = &field {
            if ds.field(f).is_none() {
                let known: Vec<&str> = ds.fields.iter().map(|x| x.name.as_str()).collect();
                let message = format!(
                    "`datasets` item {n} names an unknown field of dataset `{dataset}`; its fields are: {}",
                    known.join(", ")
                );
                let accepted = known.into_iter().map(str::to_owned).collect();
                return Err(QueryRefusal::Malformed(Said::new(
                    message,
                    Hint::field(Kind::UnknownField, "datasets", accepted),
                )));
            }
        }
    }
    group_datasets(items).map_err(|n| {
        QueryRefusal::Malformed(Said::new(
            format!(
                "`datasets` item {n} is not `department.dataset` or `department.dataset.field`"
            ),
            Hint::field(Kind::MalformedRequest, "datasets", Vec::new()),
        ))
    })
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
        // The register is asked of every department; a filing of the dataset's.
        LookupTarget::Rights(r) => match &r.dataset {
            Some(d) => vec![d.clone()],
            None => engine
                .datasets()
                .iter()
                .map(|d| d.qualified.clone())
                .collect(),
        },
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

/// A rights target as proven and sent: its dataset name trimmed.
fn trimmed(r: &fedq_wire::rights::RightsTarget) -> fedq_wire::rights::RightsTarget {
    fedq_wire::rights::RightsTarget {
        right: r.right,
        dataset: r.dataset.as_deref().map(|d| d.trim().to_owned()),
    }
}

/// Restricts a target to one node's datasets.
pub fn target_for(target: &LookupTarget, datasets: &[String]) -> LookupTarget {
    match target {
        LookupTarget::View(v) => LookupTarget::View(v.clone()),
        LookupTarget::Rights(r) => LookupTarget::Rights(r.clone()),
        LookupTarget::Datasets(ds) => LookupTarget::Datasets(
            ds.iter()
                .filter(|d| datasets.contains(&d.dataset))
                .cloned()
                .collect(),
        ),
    }
}

pub(crate) fn has_content(a: &MinimizedAnswer) -> bool {
    !a.records.is_empty()
        || a.summaries
            .values()
            .any(|s| matches!(s, Summary::Exists(true)) || matches!(s, Summary::Count(n) if *n > 0))
}

/// What a node's answer (or failure) is, as the coordinator relays it: a sealed answer is
/// `answered` with its ciphertext; a refusal, failure or silence is reported with why.
pub fn relay_node(
    node: &str,
    datasets: &[String],
    answer: Result<NodeResponse, ChannelError>,
) -> NodeReport {
    let report = |status, reason: Option<String>| NodeReport {
        node: node.to_owned(),
        status,
        reason,
        datasets: datasets.to_vec(),
        proof_refused: None,
        query_id: None,
        sealed_answer: None,
        receipt: None,
        answer_sha256: None,
    };
    match answer {
        Ok(NodeResponse::Lookup(lookup)) if lookup.node == node => NodeReport {
            sealed_answer: Some(lookup.sealed),
            receipt: lookup.receipt.map(|r| fedq_client::query::AuditReceipt {
                checkpoint: r.checkpoint,
                index: r.index,
                entry_hash: r.entry_hash,
                content_hash: r.content_hash,
                proof: r.proof,
            }),
            ..report(NodeStatus::Answered, None)
        },
        Ok(NodeResponse::Lookup(_)) => report(
            NodeStatus::Unavailable,
            Some("node answered in another node's name".to_owned()),
        ),
        Ok(NodeResponse::Refused { rationale }) => report(NodeStatus::Denied, Some(rationale)),
        Ok(NodeResponse::Failed { message, .. }) => report(NodeStatus::Unavailable, Some(message)),
        // The node did not accept the requester's proof: nothing was read there. A session
        // the node does not hold (restarted, expired) is for the requester to re-open, so
        // the node is unavailable for this query, not denying it.
        Ok(NodeResponse::ProofRefused { code, message }) => {
            let message = format!("requester proof refused: {message}");
            let status = if code == ProofRefusal::UnknownSession {
                NodeStatus::Unavailable
            } else {
                NodeStatus::Denied
            };
            NodeReport {
                proof_refused: Some(code.code().to_owned()),
                ..report(status, Some(message))
            }
        }
        Ok(
            NodeResponse::Pong { .. }
            | NodeResponse::PolicyInstalled { .. }
            | NodeResponse::PolicyStatus(_)
            | NodeResponse::SessionOpened(_)
            | NodeResponse::AuditCheckpoint(_)
            | NodeResponse::Cosigned { .. }
            | NodeResponse::WitnessRefused { .. }
            | NodeResponse::Aggregate { .. }
            | NodeResponse::CrossCount(_),
        ) => report(
            NodeStatus::Unavailable,
            Some("node answered a lookup with something else".to_owned()),
        ),
        Err(ChannelError::TimedOut { after, .. }) => report(
            NodeStatus::TimedOut,
            Some(format!("no answer within {} ms", after.as_millis())),
        ),
        Err(e) => report(NodeStatus::Unavailable, Some(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fedq_wire::message::FailureCode;

    #[test]
    fn texts_longer_than_a_node_accepts_are_refused_before_any_node_is_asked() {
        let engine = fedq_policy::load::load_engine(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../reference/changsha/policy.toml"),
            None,
        )
        .unwrap();
        // A consent token may be longer than the other texts; the requester side, which
        // seals it, refuses one longer than a node accepts.
        let query = |consent: String| QueryRequest {
            subject: "11010519491231002X".into(),
            purpose: "administrative-licensing".into(),
            legal_basis: Some("长政办发〔2017〕62号".into()),
            consent: Some(consent),
            view: Some("blacklist-check".into()),
            ..QueryRequest::default()
        };
        let max = fedq_wire::message::MAX_CONSENT_LEN;
        assert!(query("b".repeat(max)).sealed_subject().is_ok());
        assert!(query("b".repeat(max)).validate(&engine).is_ok());
        let err = query("b".repeat(max + 1))
            .sealed_subject()
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!("`consent` is {} bytes; at most {max} are accepted", max + 1)
        );
        // A subject that is not a resident ID is the requester side's error too, naming
        // the field and not the value.
        let bad = QueryRequest {
            subject: "430102".into(),
            ..query(String::new())
        };
        let err = bad.sealed_subject().unwrap_err().to_string();
        assert!(
            err.starts_with("`subject`: ") && !err.contains("430102"),
            "{err}"
        );
    }

    fn engine() -> Engine {
        let policy = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../reference/changsha/policy.toml");
        fedq_policy::load::load_engine(&policy, None).unwrap()
    }

    /// A valid resident ID (check character computed).
    const ID: &str = "430102198001011233";
    const ID_DIGITS: &str = ID;

    fn body(v: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn refusals_of_a_body_name_the_field_never_the_value() {
        let cases = [
            (
                // A resident ID sent in clear, here as a number (serde would quote it).
                format!(r#"{{"subject": {ID_DIGITS}, "purpose": "statistics", "view": "v"}}"#),
                "`subject` is never sent to the coordinator",
            ),
            (
                format!(r#"{{"consent": "{ID}", "purpose": "statistics", "view": "v"}}"#),
                "`consent` is never sent to the coordinator",
            ),
            (
                format!(r#"{{"purpose": "statistics", "{ID}": 1}}"#),
                "unknown field; a query has only the fields purpose, legal_basis",
            ),
            (
                format!(r#"{{"purpose": "p", "datasets": ["a.b", {ID_DIGITS}]}}"#),
                "`datasets` must be a list of strings; item 2 is a number",
            ),
            (
                format!(r#"{{"purpose": "p", "view": "v", "sealed": {{"court": {ID_DIGITS}}}}}"#),
                "`sealed` entry 1 must be a compact JWE",
            ),
            (
                // The subject "sealed" in clear by a careless client: refused, not forwarded.
                format!(
                    r#"{{"purpose": "p", "view": "v", "proofs": {{"court": "a.b.c"}}, "sealed": {{"court": "{{\"sub\":\"{ID}\"}}"}}}}"#
                ),
                "`sealed` entry 1 must be a compact JWE",
            ),
            (
                format!(r#"{{"purpose": "p", "view": "v", "consent_sealed": "{ID}"}}"#),
                "`consent_sealed` must be true or false, not a string",
            ),
            (
                format!(r#"{{"subject": "{ID}"#),
                "not a JSON document (line 1",
            ),
            (format!(r#"[{ID_DIGITS}]"#), "the body is a list"),
            (
                format!(r#"{{"purpose": {{"{ID}": true}}}}"#),
                "`purpose` must be a string in quotes, not an object",
            ),
            (
                format!(r#"{{"legal_basis": "{ID}"}}"#),
                "`purpose` is required",
            ),
        ];
        for (text, want) in &cases {
            let err = QueryRequest::from_json(text.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("malformed query JSON: "), "{err}");
            assert!(err.contains(want), "expected `{want}` in `{err}`");
            assert!(!err.contains(ID) && !err.contains(ID_DIGITS), "{err}");
            assert!(!err.contains("430102"), "{err}");
        }
        let ok = QueryRequest::from_json(&body(serde_json::json!({
            "purpose": "statistics", "legal_basis": null,
            "datasets": ["court.dishonest_debtors"]
        })))
        .unwrap();
        assert_eq!(
            ok.datasets,
            Some(vec!["court.dishonest_debtors".to_owned()])
        );
        assert_eq!(ok.legal_basis, None);
    }

    #[test]
    fn validation_refusals_name_the_kind_of_input_and_what_the_policy_accepts() {
        let engine = engine();
        let base = serde_json::json!({
            "purpose": "administrative-licensing",
            "legal_basis": "行政许可法",
            "view": "blacklist-check",
        });
        let with = |key: &str, value: serde_json::Value| {
            let mut v = base.clone();
            if value.is_null() {
                v.as_object_mut().unwrap().remove(key);
            } else {
                v[key] = value;
            }
            QueryRequest::from_json(&body(v)).unwrap()
        };
        assert!(with("view", serde_json::Value::Null)
            .validate(&engine)
            .is_err());
        let cases = [
            (with("purpose", ID.into()), QueryRefusal::Policy(Said::default()), "unknown purpose; the policy's purposes are: administrative-licensing, "),
            (with("legal_basis", ID.into()), QueryRefusal::Policy(Said::default()), "`legal_basis` is not one purpose `administrative-licensing` accepts; cite one of: "),
            (with("case_reference", "长".repeat(43).into()), QueryRefusal::Malformed(Said::default()), "`case_reference` is 129 bytes; at most 128 are accepted"),
            (with("view", ID.into()), QueryRefusal::Malformed(Said::default()), "unknown view; the policy's views are: "),
            (
                QueryRequest { view: None, datasets: Some(vec![ID.into()]), ..with("view", serde_json::Value::Null) },
                QueryRefusal::Malformed(Said::default()),
                "`datasets` item 1 is not `department.dataset`",
            ),
            (
                QueryRequest { view: None, datasets: Some(vec!["court.dishonest_debtors".into(), format!("court.{ID}")]), ..with("view", serde_json::Value::Null) },
                QueryRefusal::Malformed(Said::default()),
                "`datasets` item 2 names an unknown dataset",
            ),
            (
                QueryRequest { view: None, datasets: Some(vec![format!("court.dishonest_debtors.{ID}")]), ..with("view", serde_json::Value::Null) },
                QueryRefusal::Malformed(Said::default()),
                "`datasets` item 1 names an unknown field of dataset `court.dishonest_debtors`; its fields are: ",
            ),
        ];
        for (request, kind, want) in cases {
            let err = request.validate(&engine).unwrap_err();
            assert_eq!(
                std::mem::discriminant(&err),
                std::mem::discriminant(&kind),
                "{err}"
            );
            let err = err.to_string();
            assert!(err.contains(want), "expected `{want}` in `{err}`");
            assert!(!err.contains(ID), "{err}");
        }
        // Every legal basis the purpose accepts is listed, and is accepted; a basis of
        // another purpose is neither.
        let listed = with("legal_basis", "nope".into())
            .validate(&engine)
            .unwrap_err()
            .to_string();
        let licensing = engine
            .policy()
            .purposes
            .iter()
            .position(|p| p.name == "administrative-licensing")
            .unwrap();
        for basis in engine.policy().legal_bases_for(licensing) {
            assert!(listed.contains(basis), "{basis} missing from `{listed}`");
            assert!(with("legal_basis", basis.into()).validate(&engine).is_ok());
        }
        assert!(
            listed.contains("行政许可法") && !listed.contains("统计法"),
            "{listed}"
        );
        assert!(with("legal_basis", "统计法".into())
            .validate(&engine)
            .is_err());
        // A program reads the same list from the refusal's problem document.
        let QueryRefusal::Policy(said) = with("legal_basis", "nope".into())
            .validate(&engine)
            .unwrap_err()
        else {
            panic!("a legal basis refusal is the policy's")
        };
        assert_eq!(said.hint.kind, Some(Kind::LegalBasisNotAccepted));
        assert_eq!(said.hint.field, Some("legal_basis"));
        let accepted: BTreeSet<&str> = said.hint.accepted.iter().map(String::as_str).collect();
        assert_eq!(accepted, engine.policy().legal_bases_for(licensing));
    }

    #[test]
    fn only_the_policy_s_own_names_are_recorded() {
        let engine = engine();
        let sent = QueryRequest {
            purpose: ID.into(),
            legal_basis: Some(ID.into()),
            case_reference: Some(ID.into()),
            view: None,
            datasets: Some(vec![
                "court.dishonest_debtors.case_no".into(),
                ID.into(),
                format!("court.{ID}"),
                format!("court.dishonest_debtors.{ID}"),
                "tax.arrears".into(),
            ]),
            ..QueryRequest::default()
        };
        let recorded = Recorded::of(&sent, &engine);
        assert_eq!(
            recorded,
            Recorded {
                purpose: "-".into(),
                legal_basis: None,
                case_reference: None,
                target: "court.dishonest_debtors.case_no - - - tax.arrears".into(),
            }
        );
        let known = QueryRequest {
            purpose: " administrative-licensing ".into(),
            legal_basis: Some("行政许可法".into()),
            view: Some("blacklist-check".into()),
            datasets: None,
            ..sent.clone()
        };
        // A resident ID cited as the case of a declared purpose is not of its form: not
        // recorded.
        assert_eq!(Recorded::of(&known, &engine).case_reference, None);
        let known = QueryRequest {
            case_reference: Some(" 长市监许申〔2026〕001234号 ".into()),
            ..known
        };
        assert_eq!(
            Recorded::of(&known, &engine),
            Recorded {
                purpose: "administrative-licensing".into(),
                legal_basis: Some("行政许可法".into()),
                case_reference: Some("长市监许申〔2026〕001234号".into()),
                target: "view:blacklist-check".into(),
            }
        );
        let unknown_view = QueryRequest {
            view: Some(ID.into()),
            ..known
        };
        assert_eq!(Recorded::of(&unknown_view, &engine).target, "view:-");
    }

    #[test]
    fn proofs_are_parsed_bounded_and_refused_without_quoting_them() {
        let base = |proofs: serde_json::Value| {
            body(serde_json::json!({
                "purpose": "statistics", "view": "blacklist-check",
                "proofs": proofs,
            }))
        };
        let ok = QueryRequest::from_json(&base(serde_json::json!({
            "court": "a.b.c", "tax": null
        })))
        .unwrap();
        assert_eq!(ok.proofs.get("court"), Some(&Some("a.b.c".to_owned())));
        assert_eq!(ok.proofs.get("tax"), Some(&None));
        let cases = [
            (
                serde_json::json!({ format!("../{ID}"): "a.b.c" }),
                "`proofs` entry 1 is not keyed by a node name",
            ),
            (
                serde_json::json!({ "court": 1 }),
                "`proofs` entry 1 must be a string (a compact JWS) or null, not a number",
            ),
            (
                serde_json::json!({ "court": "" }),
                "`proofs` entry 1 must be a compact JWS of 1 to 8192 bytes",
            ),
            (
                serde_json::json!({ "court": "x".repeat(MAX_PROOF_LEN + 1) }),
                "must be a compact JWS of 1 to",
            ),
            (
                serde_json::json!([ID]),
                "`proofs` must be an object of node name to proof, not a list",
            ),
        ];
        for (proofs, want) in cases {
            let err = QueryRequest::from_json(&base(proofs))
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "expected `{want}` in `{err}`");
            assert!(!err.contains(ID), "{err}");
        }
        let many: serde_json::Map<String, serde_json::Value> = (0..=MAX_PROOFS)
            .map(|i| (format!("n{i}"), serde_json::Value::Null))
            .collect();
        let err = QueryRequest::from_json(&base(serde_json::Value::Object(many)))
            .unwrap_err()
            .to_string();
        assert!(err.contains("at most 64 are accepted"), "{err}");
    }

    /// The claims a requester proves from its query are what each node is asked: the
    /// node's own check (`fedq_wire::proof::check_request`) accepts every lookup the
    /// coordinator makes of a validated query, whatever spacing, order or repetition the
    /// requester typed.
    #[test]
    fn the_requester_s_claims_prove_exactly_the_lookups_the_coordinator_sends() {
        use fedq_wire::proof::{check_request, ProvenRequest};
        let engine = engine();
        let queries = [
            QueryRequest {
                subject: format!(" {} ", ID.to_lowercase()),
                purpose: " administrative-licensing ".into(),
                legal_basis: Some(" 行政许可法 ".into()),
                consent: Some("  ".into()),
                view: Some(" blacklist-check ".into()),
                ..QueryRequest::default()
            },
            QueryRequest {
                subject: ID.into(),
                purpose: "administrative-licensing".into(),
                legal_basis: None,
                consent: Some(" ref-1 ".into()),
                datasets: Some(vec![
                    "tax.arrears".into(),
                    " court.dishonest_debtors.case_no".into(),
                    "court.dishonest_debtors.listed_on".into(),
                    "court.dishonest_debtors.case_no".into(),
                    "court.enforcement_cases.case_no".into(),
                    "court.enforcement_cases".into(),
                ]),
                ..QueryRequest::default()
            },
        ];
        for request in queries {
            assert!(request.sealed_subject().is_ok());
            let mut claims = request.proof_claims().expect("a valid query has claims");
            // What the requester sealed to the node, covered by its hash in the claims.
            let sealed = "sealed-subject".to_owned();
            claims.sealed = fedq_wire::seal::sealed_sha256(&sealed);
            let valid = request.validate(&engine).unwrap();
            let proven = ProvenRequest {
                sid: "s".into(),
                requester: "market-regulation.licensing".into(),
                serial: "01".into(),
                claims: claims.clone(),
            };
            let plan = plan(&engine, &valid.target);
            assert!(!plan.is_empty());
            for (node, datasets) in &plan {
                let lookup = fedq_wire::message::LookupRequest {
                    query_id: "q".into(),
                    requester: "market-regulation.licensing".into(),
                    purpose: valid.purpose.clone(),
                    legal_basis: valid.legal_basis.clone(),
                    case_reference: None,
                    target: target_for(&valid.target, datasets),
                    policy_version: "1".into(),
                    date: time::macros::date!(2026 - 11 - 20),
                    proof: String::new(),
                    sealed: sealed.clone(),
                };
                check_request(&proven, &lookup)
                    .unwrap_or_else(|e| panic!("node {node} would refuse: {e}"));
            }
            // And a lookup that asks something else is not covered by them.
            let mut other = claims;
            other.purpose = "statistics".into();
            let lookup = fedq_wire::message::LookupRequest {
                query_id: "q".into(),
                requester: "market-regulation.licensing".into(),
                purpose: valid.purpose.clone(),
                legal_basis: valid.legal_basis.clone(),
                case_reference: None,
                target: valid.target.clone(),
                policy_version: "1".into(),
                date: time::macros::date!(2026 - 11 - 20),
                proof: String::new(),
                sealed,
            };
            assert!(check_request(
                &ProvenRequest {
                    sid: "s".into(),
                    requester: "market-regulation.licensing".into(),
                    serial: "01".into(),
                    claims: other,
                },
                &lookup
            )
            .is_err());
        }
        // A query that cannot be valid has no claims (the coordinator refuses it).
        assert!(QueryRequest {
            subject: ID.into(),
            view: Some("blacklist-check".into()),
            datasets: Some(vec!["court.dishonest_debtors".into()]),
            ..QueryRequest::default()
        }
        .proof_claims()
        .is_none());
    }

    #[test]
    fn a_refused_proof_is_reported_with_its_code_and_an_unknown_session_is_unavailable() {
        let d = "court.dishonest_debtors";
        let refused = |code: ProofRefusal| {
            let r = relay_node(
                "court",
                &[d.to_owned()],
                Ok(NodeResponse::ProofRefused {
                    code,
                    message: code.to_string(),
                }),
            );
            assert!(r.sealed_answer.is_none());
            r
        };
        let r = refused(ProofRefusal::Replayed);
        assert_eq!(r.status, NodeStatus::Denied);
        assert_eq!(r.proof_refused.as_deref(), Some("replayed"));
        assert!(r.reason.unwrap().contains("already used"));
        let r = refused(ProofRefusal::UnknownSession);
        assert_eq!(r.status, NodeStatus::Unavailable);
        assert_eq!(r.proof_refused.as_deref(), Some("unknown-session"));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["proof_refused"], "unknown-session");
        // A node that answered is reported without the field, with its sealed answer.
        let ok = relay_node("court", &[d.to_owned()], sealed("court"));
        let json = serde_json::to_value(&ok).unwrap();
        assert!(json.get("proof_refused").is_none());
        assert_eq!(json["status"], "answered");
        assert_eq!(json["sealed_answer"], "a.b.c.d.e");
    }

    fn sealed(node: &str) -> Result<NodeResponse, ChannelError> {
        Ok(NodeResponse::Lookup(fedq_wire::message::LookupResponse {
            node: node.into(),
            policy_version: "1".into(),
            sealed: "a.b.c.d.e".into(),
            receipt: None,
        }))
    }

    /// The coordinator relays what it cannot read: an answer is `answered` with its
    /// ciphertext whatever it holds; a refusal, failure or silence says why.
    #[test]
    fn every_node_answer_is_relayed_with_a_status_and_no_value() {
        let ds = vec!["court.dishonest_debtors".to_owned()];
        let relay = |answer| {
            let r = relay_node("court", &ds, answer);
            assert_eq!(r.datasets, ds, "every node report names what it was asked");
            r
        };
        let r = relay(sealed("court"));
        assert_eq!((r.status, r.reason), (NodeStatus::Answered, None));
        // An answer in another node's name is not relayed as this node's.
        let r = relay(sealed("tax"));
        assert_eq!(r.status, NodeStatus::Unavailable);
        assert!(r.sealed_answer.is_none());
        let r = relay(Ok(NodeResponse::Refused {
            rationale: "no".into(),
        }));
        assert_eq!(
            (r.status, r.reason.as_deref()),
            (NodeStatus::Denied, Some("no"))
        );
        let r = relay(Ok(NodeResponse::Failed {
            code: FailureCode::ClockSkew,
            message: "node `court`: clock skew: …".into(),
        }));
        assert_eq!(r.status, NodeStatus::Unavailable);
        assert!(r.reason.unwrap().contains("clock skew"));
        let r = relay(Err(ChannelError::TimedOut {
            node: "court".into(),
            after: std::time::Duration::from_millis(2000),
        }));
        assert_eq!(r.status, NodeStatus::TimedOut);
        assert!(r.reason.unwrap().contains("2000 ms"));
        let r = relay(Err(ChannelError::Unavailable {
            node: "court".into(),
            reason: fedq_wire::transport::Unreachable::ShuttingDown,
        }));
        assert_eq!(r.status, NodeStatus::Unavailable);
    }
}
