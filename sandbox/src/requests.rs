//! Asking as the federation's offices do: a query as the requester side holds it
//! ([`Ask`]), the reference offices' usual queries, and sending one through the real
//! HTTPS API (directly, or through the licensing office's gateway) as `fedq query` does.

use fedq_coordinator::client::{self, QueryArgs};
use serde_json::Value;

use crate::build::{Federation, SandboxError};
use crate::consent::consent_token;
use crate::reference::{LICENSING_BASIS, LICENSING_CASE, SELF_QUERY_OFFICE};

/// A query as the requester side holds it, before `fedq query` proves and seals it.
#[derive(Clone, Debug)]
pub struct Ask {
    /// Requester certificate name.
    pub requester: String,
    /// Subject.
    pub subject: String,
    /// Purpose.
    pub purpose: String,
    /// Legal basis.
    pub basis: Option<String>,
    /// Consent token (from [`consent_token`]).
    pub consent: Option<String>,
    /// The case the query serves.
    pub case_reference: Option<String>,
    /// View.
    pub view: Option<String>,
    /// Datasets.
    pub datasets: Vec<String>,
}

impl Ask {
    /// The query as the requester side holds it before proving (subject and consent in
    /// clear, no proofs yet).
    pub fn query(&self) -> fedq_coordinator::query::QueryRequest {
        fedq_coordinator::query::QueryRequest {
            subject: self.subject.clone(),
            purpose: self.purpose.clone(),
            legal_basis: self.basis.clone(),
            consent: self.consent.clone(),
            case_reference: self.case_reference.clone(),
            view: self.view.clone(),
            datasets: (!self.datasets.is_empty()).then(|| self.datasets.clone()),
            ..Default::default()
        }
    }
}

/// Sends one query through the real HTTPS API with the requester's certificate, as
/// `fedq query` does.
pub async fn ask(fed: &Federation, q: &Ask) -> Result<(u16, Value), SandboxError> {
    send_ask(fed, q, false, None).await
}

/// What a rights query exercises beyond an [`Ask`]: the right, the dataset it is about,
/// and what is filed.
#[derive(Clone, Debug)]
pub struct RightsAsk {
    /// `register`, `object`, `apply-repair`, `repair-applications`.
    pub right: String,
    /// The dataset an objection, application or review is about.
    pub dataset: Option<String>,
    /// What is filed (sealed with the subject).
    pub filing: Option<fedq_wire::rights::Filing>,
}

/// Sends a rights query (`q` with `rights`) as `fedq query --rights` does.
pub async fn ask_rights(
    fed: &Federation,
    q: &Ask,
    rights: RightsAsk,
) -> Result<(u16, Value), SandboxError> {
    send_ask(fed, q, false, Some(rights)).await
}

/// The person at the service window exercising `right` (about `dataset`, filing
/// `filing`), with a consent token the identity check signed for exactly this.
pub fn at_the_window(fed: &Federation, subject: &str, right: &str) -> Result<Ask, SandboxError> {
    let token = consent_token(
        fed,
        subject,
        SELF_QUERY_OFFICE,
        "self-query",
        &[&format!("rights:{right}")],
    )?;
    Ok(Ask {
        requester: SELF_QUERY_OFFICE.into(),
        subject: subject.into(),
        purpose: "self-query".into(),
        basis: None,
        consent: Some(token),
        case_reference: None,
        view: None,
        datasets: Vec::new(),
    })
}

/// Sends one query of the licensing office ([`GATEWAY_REQUESTER`](crate::GATEWAY_REQUESTER)) through its gateway,
/// as its app [`GATEWAY_APP`](crate::GATEWAY_APP) with the app's token, as `fedq query --gateway` does (the
/// gateway must be running: [`Running`](crate::Running)).
pub async fn ask_through_gateway(fed: &Federation, q: &Ask) -> Result<(u16, Value), SandboxError> {
    send_ask(fed, q, true, None).await
}

async fn send_ask(
    fed: &Federation,
    q: &Ask,
    via_gateway: bool,
    rights: Option<RightsAsk>,
) -> Result<(u16, Value), SandboxError> {
    let (right, filing, dataset) = match rights {
        Some(r) => (Some(r.right), r.filing, r.dataset.into_iter().collect()),
        None => (None, None, q.datasets.clone()),
    };
    let pki = fed.layout.pki();
    let args = QueryArgs {
        coordinator: (!via_gateway).then(|| format!("https://{}", fed.coordinator)),
        gateway: via_gateway.then(|| format!("https://localhost:{}", fed.gateway.port())),
        token: via_gateway.then(|| format!("@{}", fed.layout.gateway_token().display())),
        cert: Some(pki.join(format!("{}.crt", q.requester))),
        key: Some(pki.join(format!("{}.key", q.requester))),
        ca: if via_gateway {
            fed.layout.gateway_ca()
        } else {
            pki.join("ca.crt")
        },
        crl: None,
        subject: q.subject.clone(),
        purpose: q.purpose.clone(),
        basis: q.basis.clone(),
        consent: q.consent.clone(),
        case_reference: q.case_reference.clone(),
        view: q.view.clone(),
        dataset,
        rights: right,
        filing,
        json: true,
        lang: Default::default(),
    };
    Ok(client::send(&args).await?)
}

/// The licensing office asking `view` about `subject` for administrative licensing.
pub fn licensing(subject: &str, view: &str) -> Ask {
    Ask {
        requester: "market-regulation.licensing".into(),
        subject: subject.into(),
        purpose: "administrative-licensing".into(),
        basis: Some(LICENSING_BASIS.into()),
        consent: None,
        case_reference: Some(LICENSING_CASE.into()),
        view: Some(view.into()),
        datasets: Vec::new(),
    }
}

/// The person asking `view` about themself at the service window, with a consent token
/// the identity check signed for exactly this.
pub fn self_query(fed: &Federation, subject: &str, view: &str) -> Result<Ask, SandboxError> {
    let token = consent_token(
        fed,
        subject,
        SELF_QUERY_OFFICE,
        "self-query",
        &[&format!("view:{view}")],
    )?;
    Ok(Ask {
        requester: SELF_QUERY_OFFICE.into(),
        subject: subject.into(),
        purpose: "self-query".into(),
        basis: None,
        consent: Some(token),
        case_reference: None,
        view: Some(view.into()),
        datasets: Vec::new(),
    })
}
