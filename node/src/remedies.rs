//! The department's side of the persons' remedies (issue 19), as the node's operator runs
//! it beside the serving node: the queue of objections and repair applications
//! (`fedq node objections`, `fedq node repairs`), an objection resolved by the
//! department's officer (`fedq node resolve`), and a credit repair recorded, rejected or
//! reversed on the review office's signed decisions (`fedq node repair`).
//!
//! Every change needs an officer's signature that verifies against the federation's CA
//! and CRL ([`crate::decisions`]); a repair or its rejection needs one of the policy's
//! `repair_approvers`, a reversal two distinct ones. Each is registered in the node's
//! audit log **before** the store or the rights file changes (an entry without its change
//! is a decision that failed and can be made again; a change without its entry would be
//! unregistered).

use std::collections::BTreeMap;

use fedq_audit::{AuditRecord, EntryKind, Outcome};
use fedq_wire::rights::{Decision, ObjectionState, ObjectionStatus, RepairState, RepairStatus};

use crate::config::NodeConfig;
use crate::decisions::{self, DecisionError, Signed, REPAIR_DECISION_TYP, RESOLUTION_TYP};
use crate::rights::{RightsError, RightsFile};

/// Why a remedy could not be recorded. Nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum RemedyError {
    /// The operator's work on the node failed (config, catalogue, store, audit).
    #[error(transparent)]
    Admin(#[from] crate::admin::AdminError),
    /// The rights file.
    #[error(transparent)]
    Rights(#[from] RightsError),
    /// The signed decision does not count.
    #[error(transparent)]
    Decision(#[from] DecisionError),
    /// The CA and CRL could not be loaded.
    #[error("the federation's CA and CRL: {0}")]
    Trust(String),
    /// The policy in force could not be opened.
    #[error("the node's policy: {0}")]
    Policy(String),
    /// The decision is not one this filing can take.
    #[error("{0}")]
    Refused(String),
}

impl From<fedq_audit::AuditError> for RemedyError {
    fn from(e: fedq_audit::AuditError) -> Self {
        RemedyError::Admin(crate::admin::AdminError::Audit(e))
    }
}

impl From<crate::store::StoreError> for RemedyError {
    fn from(e: crate::store::StoreError) -> Self {
        RemedyError::Admin(crate::admin::AdminError::Store(e))
    }
}

fn now() -> (time::OffsetDateTime, String) {
    let now = time::OffsetDateTime::now_utc();
    let at = now
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    (now, at)
}

fn trust(config: &NodeConfig) -> Result<fedq_certs::FederationTrust, RemedyError> {
    fedq_certs::FederationTrust::load(&config.tls.trust)
        .map_err(|e| RemedyError::Trust(e.to_string()))
}

/// The queue of objections filed at this node (`status`: only those), oldest first.
pub fn objections(
    config: &NodeConfig,
    status: Option<ObjectionStatus>,
) -> Result<Vec<ObjectionState>, RemedyError> {
    let file = RightsFile::open(&config.rights_state)?;
    Ok(file
        .objections(status)?
        .into_iter()
        .map(|(_, o)| o)
        .collect())
}

/// The repair applications filed at this node, oldest first.
pub fn repairs(config: &NodeConfig) -> Result<Vec<RepairState>, RemedyError> {
    let file = RightsFile::open(&config.rights_state)?;
    Ok(file.repairs()?.into_iter().map(|(_, r)| r).collect())
}

/// Signs a decision with an officer's certificate and key (on the officer's machine):
/// the compact JWS `fedq node resolve` or `fedq node repair` takes.
pub fn sign(
    cert: &std::path::Path,
    key: &std::path::Path,
    repair: bool,
    claims: &decisions::DecisionClaims,
) -> Result<String, RemedyError> {
    let typ = if repair {
        REPAIR_DECISION_TYP
    } else {
        RESOLUTION_TYP
    };
    Ok(decisions::sign(cert, key, typ, claims)?)
}

fn entry(
    at: time::OffsetDateTime,
    kind: EntryKind,
    officer: &str,
    subject: &str,
    target: &str,
    outcome: serde_json::Value,
) -> AuditRecord {
    AuditRecord {
        at,
        kind,
        query_id: String::new(),
        requester: format!("officer:{officer}"),
        purpose: "credit-remedy".into(),
        legal_basis: None,
        case_reference: None,
        subject: subject.to_owned(),
        target: target.to_owned(),
        outcome: Outcome::json(&outcome),
        policy_version: String::new(),
        consent_id: None,
        node_query_ids: Default::default(),
        answer_sha256: None,
    }
}

fn decision_of(signed: &Signed, at: &str) -> Decision {
    Decision {
        decision: signed.claims.decision.clone(),
        officer: signed.officer.clone(),
        at: at.to_owned(),
        note: signed.claims.note.clone(),
        signature: Some(signed.token.clone()),
    }
}

/// `fedq node resolve`: records an officer's signed resolution of an open objection —
/// `upheld` (the record stands), `corrected` (its corrected cells, each checked against
/// its field's type, are applied to every answer from now on; the stored record is kept as
/// it was, so the change is history) or `removed` (the record is no longer disclosed). The
/// person sees it in their register.
pub async fn resolve(
    config: &NodeConfig,
    objection: &str,
    token: &str,
) -> Result<ObjectionState, RemedyError> {
    let file = RightsFile::open(&config.rights_state)?;
    let (subject, state) = file.objection(objection)?;
    if state.status != ObjectionStatus::Open {
        return Err(RemedyError::Refused(format!(
            "objection {objection} is {} already; only an open one can be resolved",
            state.status.as_str()
        )));
    }
    let (now, at) = now();
    let signed = decisions::verify(
        &trust(config)?,
        token,
        RESOLUTION_TYP,
        &config.name,
        objection,
        now.unix_timestamp(),
    )?;
    let status = match ObjectionStatus::parse(&signed.claims.decision) {
        Some(s) if s != ObjectionStatus::Open => s,
        _ => {
            return Err(RemedyError::Refused(
                "an objection is resolved `upheld`, `corrected` or `removed`".into(),
            ))
        }
    };
    let corrections = &signed.claims.corrections;
    match (status, corrections.is_empty()) {
        (ObjectionStatus::Corrected, true) => {
            return Err(RemedyError::Refused(
                "a correction names the corrected fields and their values (`--set FIELD=VALUE`)"
                    .into(),
            ))
        }
        (ObjectionStatus::Upheld | ObjectionStatus::Removed, false) => {
            return Err(RemedyError::Refused(
                "only a correction changes fields; resolve it `corrected`".into(),
            ))
        }
        _ => {}
    }
    // Each corrected cell must read as its field's type, and the key stays the key.
    let (_, dataset) = filed_dataset(config, &state.dataset)?;
    let dataset = &dataset;
    for (name, text) in corrections {
        let field = dataset.field(name).ok_or_else(|| {
            RemedyError::Refused(format!("`{name}` is not a field of `{}`", state.dataset))
        })?;
        if name == &dataset.key || name == &dataset.subject {
            return Err(RemedyError::Refused(format!(
                "`{name}` identifies the record or the person and cannot be corrected; remove the record instead"
            )));
        }
        fedq_policy::Value::parse(text, field).map_err(|_| {
            RemedyError::Refused(format!(
                "the corrected `{name}` is not a {} value",
                fedq_policy::catalogue::type_name(field.ty)
            ))
        })?;
    }
    let audit = fedq_audit::AuditLog::open(&config.audit)?;
    audit
        .append(entry(
            now,
            EntryKind::Objection,
            &signed.officer,
            &subject,
            &state.dataset,
            serde_json::json!({
                "objection": objection,
                "resolved": status.as_str(),
                "fields_corrected": corrections.keys().collect::<Vec<_>>(),
                "officer_key": signed.officer_key,
            }),
        ))
        .await?;
    let decision = decision_of(&signed, &at);
    file.resolve_objection(
        objection,
        status,
        &decision,
        (!corrections.is_empty()).then_some(corrections),
    )?;
    let (_, state) = file.objection(objection)?;
    Ok(state)
}

fn approvers(config: &NodeConfig) -> Result<Vec<String>, RemedyError> {
    let floor = fedq_audit::last_installed_policy(&config.audit)?;
    let slot = fedq_bundle::state::PolicySlot::open(
        &config.policy,
        config.policy_threshold,
        &config.policy_officers,
        config.policy_state.clone(),
        config.tls.trust.clone(),
        floor,
    )
    .map_err(|e| RemedyError::Policy(e.to_string()))?;
    Ok(slot.current().engine.policy().repair_approvers.clone())
}

fn approved(signed: &Signed, approvers: &[String]) -> Result<(), RemedyError> {
    if approvers.iter().any(|a| a == &signed.officer) {
        Ok(())
    } else {
        Err(RemedyError::Refused(format!(
            "officer `{}` is not one of the policy's repair approvers ({})",
            signed.officer,
            if approvers.is_empty() {
                "none are declared: set `repair_approvers`".to_owned()
            } else {
                approvers.join(", ")
            }
        )))
    }
}

/// `fedq node repair`: applies the review office's signed decision on a repair
/// application — `approve` (the record is repaired in the store and no longer disclosed)
/// or `reject` — or, with two signed `reverse` decisions by two distinct approvers,
/// reverses an approved repair (the record is disclosed again under the statutory
/// window). Refuses a dataset whose catalogue declares no repair and an attached one.
pub async fn repair(
    config: &NodeConfig,
    application: &str,
    tokens: &[String],
) -> Result<RepairState, RemedyError> {
    // The store first: a node that was never set up refuses before anything else.
    let store = crate::store::Store::open(&config.store).await?;
    let result = repair_in(config, &store, application, tokens).await;
    if let crate::store::Store::Postgres(pg) = &store {
        pg.close().await;
    }
    result
}

async fn repair_in(
    config: &NodeConfig,
    store: &crate::store::Store,
    application: &str,
    tokens: &[String],
) -> Result<RepairState, RemedyError> {
    let file = RightsFile::open(&config.rights_state)?;
    let (subject, state) = file.repair(application)?;
    let (catalogue, dataset) = filed_dataset(config, &state.dataset)?;
    let dataset = &dataset;
    if dataset.repair.is_none() {
        return Err(RemedyError::Refused(format!(
            "dataset `{}` records no credit repair (its catalogue declares no `repair`); nothing was changed",
            state.dataset
        )));
    }
    crate::admin::refuse_attached(
        &catalogue,
        config,
        dataset,
        "fedq cannot record a repair there; record it in the department's system (e.g. its performance status), and the next lookup sees it",
    )?;
    let (now, at) = now();
    let trust = trust(config)?;
    let signed: Vec<Signed> = tokens
        .iter()
        .map(|t| {
            decisions::verify(
                &trust,
                t,
                REPAIR_DECISION_TYP,
                &config.name,
                application,
                now.unix_timestamp(),
            )
        })
        .collect::<Result<_, _>>()?;
    let approvers = approvers(config)?;
    for s in &signed {
        approved(s, &approvers)?;
    }
    let kinds: Vec<&str> = signed.iter().map(|s| s.claims.decision.as_str()).collect();
    let (from, to) = match (state.status, kinds.as_slice()) {
        (RepairStatus::Applied, ["approve"]) => (RepairStatus::Applied, RepairStatus::Repaired),
        (RepairStatus::Applied, ["reject"]) => (RepairStatus::Applied, RepairStatus::Rejected),
        (RepairStatus::Repaired, ["reverse", "reverse"]) => {
            let keys: Vec<&str> = signed.iter().map(|s| s.officer_key.as_str()).collect();
            if keys.first() == keys.get(1) {
                return Err(RemedyError::Refused(
                    "a reversal needs two approvers' decisions; both are signed with the same key".into(),
                ));
            }
            // Two certificates of one officer (a renewal, a re-issue) are one approver.
            let officers: Vec<&str> = signed.iter().map(|s| s.officer.as_str()).collect();
            if officers.first() == officers.get(1) {
                return Err(RemedyError::Refused(format!(
                    "a reversal needs two approvers' decisions; both are `{}`'s",
                    officers.first().copied().unwrap_or("-")
                )));
            }
            (RepairStatus::Repaired, RepairStatus::Reversed)
        }
        (RepairStatus::Repaired, ["reverse"]) => {
            return Err(RemedyError::Refused(
                "reversing a repair needs a second approval: give two `reverse` decisions by two different approvers".into(),
            ))
        }
        (status, _) => {
            return Err(RemedyError::Refused(format!(
                "repair application {application} is `{}`: it takes one `approve` or `reject` decision while applied, and two `reverse` decisions once repaired",
                status.as_str()
            )))
        }
    };
    let audit = fedq_audit::AuditLog::open(&config.audit)?;
    audit
        .append(AuditRecord {
            requester: signed
                .iter()
                .map(|s| format!("officer:{}", s.officer))
                .collect::<Vec<_>>()
                .join(","),
            ..entry(
                now,
                EntryKind::Repair,
                "",
                &subject,
                &state.dataset,
                serde_json::json!({
                    "application": application,
                    "decision": to.as_str(),
                    "grounds": state.grounds.as_str(),
                    "officer_keys": signed.iter().map(|s| &s.officer_key).collect::<Vec<_>>(),
                    "repaired": to == RepairStatus::Repaired,
                }),
            )
        })
        .await?;
    match to {
        RepairStatus::Repaired => {
            let reason = format!(
                "credit repair {application} ({}), approved by {}",
                state.grounds.as_str(),
                signed.first().map_or("-", |s| s.officer.as_str())
            );
            store
                .repair(&dataset.qualified, &state.record, &reason, &at)
                .await?;
        }
        RepairStatus::Reversed => {
            store.unrepair(&dataset.qualified, &state.record).await?;
        }
        _ => {}
    }
    let decisions: Vec<Decision> = signed.iter().map(|s| decision_of(s, &at)).collect();
    if let Err(e) = file.decide_repair(application, from, to, &decisions) {
        // Another decision was recorded since this one read the application (a second
        // tool at once): the store follows the status that was recorded, not this one.
        let recorded = file.repair(application).map(|(_, now)| now.status);
        // Its audit entry stays, registering the attempt.
        if to == RepairStatus::Repaired && recorded.ok() != Some(RepairStatus::Repaired) {
            if let Err(undo) = store.unrepair(&dataset.qualified, &state.record).await {
                tracing::error!(error = %undo, "a repair that lost to another decision could not be taken back from the store; run `fedq node repairs` and repair or reverse the record as its status says");
            }
        }
        return Err(e.into());
    }
    let (_, state) = file.repair(application)?;
    Ok(state)
}

/// The node's catalogue and the dataset a filing names (`department.dataset`).
fn filed_dataset(
    config: &NodeConfig,
    qualified: &str,
) -> Result<(fedq_policy::Catalogue, fedq_policy::Dataset), RemedyError> {
    let catalogue = fedq_policy::load::load_catalogue(&config.catalogue)
        .map_err(crate::admin::AdminError::from)?;
    let local = qualified
        .strip_prefix(&format!("{}.", catalogue.department))
        .unwrap_or(qualified);
    let dataset = catalogue.dataset(local).cloned().ok_or_else(|| {
        RemedyError::Refused(format!(
            "dataset `{qualified}` is no longer in the catalogue"
        ))
    })?;
    Ok((catalogue, dataset))
}

/// Reads `FIELD=VALUE` items (`--set`) into a correction.
pub fn corrections(items: &[String]) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for item in items {
        let (field, value) = item
            .split_once('=')
            .ok_or("each `--set` is `FIELD=VALUE`")?;
        if out
            .insert(field.trim().to_owned(), value.to_owned())
            .is_some()
        {
            return Err(format!("`--set` names field `{}` twice", field.trim()));
        }
    }
    Ok(out)
}
