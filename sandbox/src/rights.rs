//! The persons' rights as the tour and the tests exercise them (issue 19): the person at
//! the service window (register, objection, repair application, each with a consent
//! token for exactly that right), the credit-repair review office reading applications,
//! and officers' signed decisions recorded at a node through the same functions `fedq
//! decision sign`, `fedq node resolve` and `fedq node repair` call.

use fedq_node::config::NodeConfig;
use fedq_node::decisions::DecisionClaims;
use fedq_wire::rights::Filing;
use serde_json::Value;

use crate::build::{Federation, SandboxError};
use crate::consent::consent_token;
use crate::requests::{ask_rights, at_the_window, Ask, RightsAsk};

/// The review office's legal basis and the application number it cites.
pub const REVIEW_BASIS: &str = "湘政办发〔2017〕3号";
/// The review office's case: the repair application's acceptance number.
pub const REVIEW_CASE: &str = "XYXF-2026-000123";
/// The credit-repair review office.
pub const REVIEW_OFFICE: &str = "credit-repair.review";

/// The person's register at every department ("who looked at my data").
pub async fn register(fed: &Federation, subject: &str) -> Result<(u16, Value), SandboxError> {
    let q = at_the_window(fed, subject, "register")?;
    ask_rights(
        fed,
        &q,
        RightsAsk {
            right: "register".into(),
            dataset: None,
            filing: None,
        },
    )
    .await
}

/// The person files an objection (`object`) or a repair application (`apply-repair`)
/// about one of their records in `dataset`.
pub async fn file(
    fed: &Federation,
    subject: &str,
    right: &str,
    dataset: &str,
    filing: Filing,
) -> Result<(u16, Value), SandboxError> {
    let q = at_the_window(fed, subject, right)?;
    ask_rights(
        fed,
        &q,
        RightsAsk {
            right: right.into(),
            dataset: Some(dataset.into()),
            filing: Some(filing),
        },
    )
    .await
}

/// The review office reads the person's repair applications of `dataset` and the record,
/// with the person's consent to the review.
pub async fn review_applications(
    fed: &Federation,
    subject: &str,
    dataset: &str,
) -> Result<(u16, Value), SandboxError> {
    let token = consent_token(
        fed,
        subject,
        REVIEW_OFFICE,
        "credit-repair-review",
        &["rights:repair-applications"],
    )?;
    let q = Ask {
        requester: REVIEW_OFFICE.into(),
        subject: subject.into(),
        purpose: "credit-repair-review".into(),
        basis: Some(REVIEW_BASIS.into()),
        consent: Some(token),
        case_reference: Some(REVIEW_CASE.into()),
        view: None,
        datasets: Vec::new(),
    };
    ask_rights(
        fed,
        &q,
        RightsAsk {
            right: "repair-applications".into(),
            dataset: Some(dataset.into()),
            filing: None,
        },
    )
    .await
}

fn failed(what: &'static str) -> impl Fn(fedq_node::remedies::RemedyError) -> SandboxError {
    move |e| SandboxError::Setup(format!("{what}: {e}"))
}

/// An officer's signed decision on `filing` at `node` (as `fedq decision sign` makes it).
pub fn sign_decision(
    fed: &Federation,
    officer: &str,
    node: &str,
    filing: &str,
    decision: &str,
    note: &str,
) -> Result<String, SandboxError> {
    let pki = fed.layout.pki();
    let claims = DecisionClaims {
        node: node.into(),
        filing: filing.into(),
        decision: decision.into(),
        note: note.into(),
        corrections: Default::default(),
        iat: time::OffsetDateTime::now_utc().unix_timestamp(),
    };
    let repair = matches!(decision, "approve" | "reject" | "reverse");
    fedq_node::remedies::sign(
        &pki.join(format!("{officer}.crt")),
        &pki.join(format!("{officer}.key")),
        repair,
        &claims,
    )
    .map_err(failed("signing a decision"))
}

fn node_config(fed: &Federation, node: &str) -> Result<NodeConfig, SandboxError> {
    NodeConfig::load(&fed.layout.node_config(node))
        .map_err(|e| SandboxError::Setup(format!("node config: {e}")))
}

/// Records a signed resolution of an objection at `node` (as `fedq node resolve` does).
pub async fn resolve(
    fed: &Federation,
    node: &str,
    objection: &str,
    token: &str,
) -> Result<(), SandboxError> {
    let config = node_config(fed, node)?;
    fedq_node::remedies::resolve(&config, objection, token)
        .await
        .map(|_| ())
        .map_err(failed("resolving an objection"))
}

/// Records signed repair decisions at `node` (as `fedq node repair` does).
pub async fn repair(
    fed: &Federation,
    node: &str,
    application: &str,
    tokens: &[String],
) -> Result<(), SandboxError> {
    let config = node_config(fed, node)?;
    fedq_node::remedies::repair(&config, application, tokens)
        .await
        .map(|_| ())
        .map_err(failed("recording a repair decision"))
}

/// The key of a scenario person's record in `dataset` (`department.dataset`), if they
/// have one there.
pub fn record_key(person: &fedq_synth::scenario::ScenarioPerson, dataset: &str) -> Option<String> {
    person
        .records
        .iter()
        .find(|r| format!("{}.{}", r.department, r.dataset) == dataset || r.dataset == dataset)
        .map(|r| r.key.clone())
}

/// How `requester` reaches the coordinator's API in this federation.
fn api_as(fed: &Federation, requester: &str) -> fedq_coordinator::client::ApiArgs {
    let pki = fed.layout.pki();
    fedq_coordinator::client::ApiArgs {
        coordinator: format!("https://{}", fed.coordinator),
        cert: pki.join(format!("{requester}.crt")),
        key: pki.join(format!("{requester}.key")),
        ca: pki.join("ca.crt"),
        crl: None,
    }
}

fn complaint_failed(
    what: &'static str,
) -> impl Fn(fedq_coordinator::complaints::ToolError) -> SandboxError {
    move |e| SandboxError::Setup(format!("{what}: {e}"))
}

/// The service window files a complaint on the person's behalf (`fedq complaint file`).
pub async fn file_complaint(
    fed: &Federation,
    request: &fedq_coordinator::complaints::complaint::ComplaintRequest,
) -> Result<fedq_coordinator::complaints::complaint::ComplaintFiled, SandboxError> {
    fedq_coordinator::complaints::file(&api_as(fed, crate::SELF_QUERY_OFFICE), request)
        .await
        .map_err(complaint_failed("file the complaint"))
}

/// The window reads the status of a complaint it filed (`fedq complaint status`).
pub async fn complaint_status(
    fed: &Federation,
    id: &str,
) -> Result<fedq_coordinator::complaints::complaint::ComplaintState, SandboxError> {
    fedq_coordinator::complaints::status(&api_as(fed, crate::SELF_QUERY_OFFICE), id)
        .await
        .map_err(complaint_failed("read the complaint's status"))
}

/// `officer` changes a complaint's status with a signed statement (`fedq complaint
/// update`).
pub async fn update_complaint(
    fed: &Federation,
    officer: &str,
    id: &str,
    status: fedq_coordinator::complaints::complaint::ComplaintStatus,
    note: &str,
) -> Result<fedq_coordinator::complaints::complaint::ComplaintState, SandboxError> {
    let pki = fed.layout.pki();
    let args = fedq_coordinator::complaints::UpdateArgs {
        config: fed.layout.coordinator_config(),
        coordinator: Some(format!("https://{}", fed.coordinator)),
        id: id.to_owned(),
        status,
        note: note.to_owned(),
        officer_cert: pki.join(format!("{officer}.crt")),
        officer_key: pki.join(format!("{officer}.key")),
    };
    fedq_coordinator::complaints::update(&args)
        .await
        .map_err(complaint_failed("change the complaint's status"))
}
