//! The requester's side of the API: a connection that opens sessions, proves, seals and
//! opens as the requester ([`ApiConnection`]), what `fedq query`, `fedq policy publish`
//! and `fedq policy status` send, and how their answers read for people.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fedq_certs::jws::CertificateKey;
use fedq_certs::tls::{Credentials, TrustFiles};
use fedq_certs::FederationTrust;
use fedq_wire::proof::{self, PendingSession, ProofTarget, Session, SessionGrant};
use rustls::pki_types::UnixTime;

use serde::Deserialize as _;

use crate::api::{NodeList, SessionRequest};
use crate::query::{QueryRequest, QueryRequestExt as _, RelayedAnswer};

/// Arguments of `fedq query`. `Debug` shows neither the subject nor the consent token.
pub struct QueryArgs {
    /// The coordinator, e.g. `https://127.0.0.1:8443`: `fedq query` opens the sessions,
    /// proves, seals and opens itself, as the requester of `--cert` and `--key`.
    pub coordinator: Option<String>,
    /// Your agency's gateway instead (`fedq gateway`), e.g. `https://127.0.0.1:9443`: it
    /// asks as the agency's requester; `--token` is your app's, `--ca` its `gateway-ca.crt`.
    pub gateway: Option<String>,
    /// Your app's token from the gateway's operator: the token, or `@FILE`.
    pub token: Option<String>,
    /// Your requester certificate (with `--coordinator`).
    pub cert: Option<PathBuf>,
    /// Its private key.
    pub key: Option<PathBuf>,
    /// The CA certificate to trust: the federation's (with `--coordinator`) or the
    /// gateway's `gateway-ca.crt` (with `--gateway`).
    pub ca: PathBuf,
    /// The federation's CRL, which nodes' session accepts are checked against (default:
    /// `crl.pem` beside `--ca`; with `--coordinator`).
    pub crl: Option<PathBuf>,
    /// The person's resident ID.
    pub subject: String,
    /// The declared purpose.
    pub purpose: String,
    /// The legal basis cited (e.g. the regulation the licensing application falls under).
    pub basis: Option<String>,
    /// The subject's consent token from the consent authority (`fedq consent issue`): the
    /// token itself, or `@FILE`.
    pub consent: Option<String>,
    /// The case the query serves, in the form its purpose declares (e.g. a licensing
    /// application number or a court case number such as `(2026)湘01执123号`).
    pub case_reference: Option<String>,
    /// A view from the policy.
    pub view: Option<String>,
    /// `department.dataset` or `department.dataset.field` (repeatable); with `rights`,
    /// the one dataset the right is about.
    pub dataset: Vec<String>,
    /// One of the person's rights instead of records (`register`, `object`,
    /// `apply-repair`, `repair-applications`).
    pub rights: Option<String>,
    /// What an objection or repair application files (sealed with the subject).
    pub filing: Option<fedq_wire::rights::Filing>,
    /// Print the JSON answer.
    pub json: bool,
    /// The language a rights answer is printed in (`zh`, the default, or `en`).
    pub lang: crate::rights::Lang,
}

impl std::fmt::Debug for QueryArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryArgs")
            .field("coordinator", &self.coordinator)
            .field("gateway", &self.gateway)
            .field("purpose", &self.purpose)
            .field("view", &self.view)
            .field("dataset", &self.dataset)
            .field("consent", &self.consent.is_some())
            .finish_non_exhaustive()
    }
}

/// Errors of `fedq query`.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Bad arguments.
    #[error("{0}")]
    Usage(String),
    /// Certificates.
    #[error(transparent)]
    Tls(#[from] fedq_certs::TlsError),
    /// Network or TLS failure.
    #[error("cannot reach the coordinator at {url}: {reason}")]
    Connect {
        /// URL.
        url: String,
        /// Why: the transport's error as the source, or a message.
        #[source]
        reason: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The coordinator refused the query.
    #[error("refused ({status}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Its reason.
        message: String,
    },
}

impl From<fedq_client::Error> for ClientError {
    fn from(e: fedq_client::Error) -> Self {
        match e {
            fedq_client::Error::Usage(m) => ClientError::Usage(m),
            fedq_client::Error::Connect { url, reason } => ClientError::Connect { url, reason },
            fedq_client::Error::Refused(p) => ClientError::Refused {
                status: p.status,
                message: p.detail,
            },
            fedq_client::Error::Unexpected { status, reason } => ClientError::Refused {
                status,
                message: reason,
            },
        }
    }
}

/// A kept-alive HTTPS connection to the requester API, authenticated by one requester
/// certificate. `fedq query` uses one per run; load generators keep many.
///
/// Queries made with [`ApiConnection::query`] prove themselves to every node: on first
/// use the connection lists the nodes (`GET /v1/nodes`) and opens a session with each
/// (`POST /v1/sessions`, a grant signed with the requester's certificate key, the node's
/// signed accept verified against the CA and CRL); then every query carries one fresh
/// proof per node ([`fedq_wire::proof`]). Sessions are kept for their lifetime and
/// re-opened a minute before they end; a node that could not open one is tried again
/// [`SESSION_RETRY`] later and meanwhile not proven to (its part of the answer says why);
/// a node that no longer knows its session (restarted) gets a new one and the query is
/// sent once more.
pub struct ApiConnection {
    http: fedq_client::Client,
    key: CertificateKey,
    trust_files: TrustFiles,
    sessions: Option<Sessions>,
}

/// How long after a node failed to open a session the next query tries again.
pub const SESSION_RETRY: Duration = Duration::from_secs(1);

/// A requester's sessions with the nodes, as one connection holds them.
struct Sessions {
    trust: FederationTrust,
    nodes: Vec<String>,
    /// Each view → the nodes it asks (`GET /v1/nodes`), so a view query is proven only to
    /// those.
    views: BTreeMap<String, BTreeSet<String>>,
    open: BTreeMap<String, Session>,
    /// Why a node has no session, and when that was found.
    failed: BTreeMap<String, (String, Instant)>,
}

impl std::fmt::Debug for ApiConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiConnection")
            .field("url", &self.http.url())
            .finish_non_exhaustive()
    }
}

impl ApiConnection {
    /// Connects to `url` (`https://host:port`) with the requester's certificate and key,
    /// trusting the federation CA in `ca`.
    pub async fn connect(
        url: &str,
        cert: &std::path::Path,
        key: &std::path::Path,
        ca: &std::path::Path,
    ) -> Result<Self, ClientError> {
        let creds = Credentials::load(cert, key)?;
        let signing_key = CertificateKey::from_credentials(&creds, &key_path_text(key))?;
        let http = fedq_client::Client::connect_with(url, ca, Some(creds.chain_and_key())).await?;
        Ok(Self {
            http,
            key: signing_key,
            trust_files: TrustFiles {
                ca: ca.to_owned(),
                crl: fedq_certs::pki::crl_path(ca.parent().unwrap_or(Path::new("."))),
                crl_grace: Duration::ZERO,
                crl_state: None,
            },
            sessions: None,
        })
    }

    /// Whether the coordinator has closed this connection (a kept-alive one it timed out):
    /// nothing sent on it would arrive.
    pub fn is_closed(&self) -> bool {
        self.http.is_closed()
    }

    /// The CRL that nodes' session accepts are checked against (default: `crl.pem`
    /// beside the CA certificate).
    pub fn with_crl(mut self, crl: &Path) -> Self {
        crl.clone_into(&mut self.trust_files.crl);
        self
    }

    /// Remembers the newest CRL this connection accepted in `state` (see
    /// [`TrustFiles::crl_state`]), so that an older `crl.pem` put back is refused across
    /// restarts too (the gateway; a one-shot client remembers it in memory only).
    pub fn remembering_crl_in(mut self, state: &Path) -> Self {
        self.trust_files.crl_state = Some(state.to_owned());
        self
    }

    /// Sends one query, proven to every node this connection holds a session with
    /// (sessions opened or renewed first as needed), opens each node's sealed answer and
    /// concludes it ([`crate::opening::conclude`]); returns the HTTP status and the JSON
    /// body the requester reads. A node that answers "unknown session" gets a new session
    /// and is asked once more, alone (the other nodes' answers are kept, so no node
    /// answers the query twice). Any `proofs` in `query` are replaced.
    pub async fn query(
        &mut self,
        query: &QueryRequest,
    ) -> Result<(u16, serde_json::Value), ClientError> {
        let mut proven = self.prove(query).await?;
        let (mut status, mut answer) = self.send_raw(&proven).await?;
        if status == 400 && plan_changed(&answer) {
            // The policy's plan for a view changed since this connection listed it: list
            // again and prove to the nodes it asks now (once).
            self.refresh_plan().await?;
            proven = self.prove(query).await?;
            (status, answer) = self.send_raw(&proven).await?;
        }
        let lost = lost_sessions(status, &answer);
        let relayed = (status == 200)
            .then(|| RelayedAnswer::deserialize(&answer).ok())
            .flatten();
        let Some(mut relayed) = relayed else {
            return Ok((status, with_subject(query, self.explain_unproven(answer))));
        };
        let mut opened = self.open_answers(&proven, &relayed);
        if !lost.is_empty() {
            if let Some(sessions) = self.sessions.as_mut() {
                for node in &lost {
                    sessions.open.remove(node);
                    sessions.failed.remove(node);
                }
            }
            let only: BTreeSet<String> = lost.iter().cloned().collect();
            // A retry that fails keeps the first answers: those nodes stay unavailable.
            let again = match self.prove_to(query, Some(&only)).await {
                Ok(again) => Some(again),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot prove the query again to the nodes that lost their session");
                    None
                }
            };
            let retried = match &again {
                Some(again) => self.send_raw(again).await.ok(),
                None => None,
            };
            let retried = match (&again, &retried) {
                (Some(_), Some((200, answer))) => RelayedAnswer::deserialize(answer).ok(),
                _ => None,
            };
            if let (Some(again), Some(retried)) = (&again, retried) {
                opened.extend(
                    self.open_answers(again, &retried)
                        .into_iter()
                        .filter(|(n, _)| only.contains(n)),
                );
                for mut report in retried.nodes.into_iter().filter(|r| only.contains(&r.node)) {
                    report.query_id = Some(retried.query_id.clone());
                    if let Some(first) = relayed.nodes.iter_mut().find(|r| r.node == report.node) {
                        *first = report;
                    }
                }
            }
        }
        let concluded =
            crate::opening::conclude(&crate::opening::Asked::of(&proven), relayed, opened);
        let body = serde_json::to_value(&concluded)
            .map_err(|e| ClientError::Usage(format!("cannot encode the answer: {e}")))?;
        Ok((status, with_subject(query, self.explain_unproven(body))))
    }

    /// Opens each sealed answer of `relayed` with this connection's session with its node
    /// and the nonce of the proof `proven` sent it (an answer that does not open is kept
    /// as the refusal, which [`crate::opening::conclude`] reports).
    pub fn open_answers(
        &self,
        proven: &QueryRequest,
        relayed: &RelayedAnswer,
    ) -> BTreeMap<String, crate::opening::Opened> {
        relayed
            .nodes
            .iter()
            .filter_map(|r| {
                let sealed = r.sealed_answer.as_deref()?;
                let session = self.sessions.as_ref()?.open.get(&r.node);
                let nonce = proven
                    .proofs
                    .get(&r.node)
                    .and_then(|p| p.as_deref())
                    .and_then(proof::proof_nonce);
                let opened = match (session, nonce) {
                    (Some(session), Some(nonce)) => {
                        session.open_lookup_answer(sealed, &nonce).map(|answer| {
                            // No receipt, no data: checked against the key of the node
                            // certificate that signed the session's accept.
                            crate::opening::with_receipt(
                                answer,
                                &session.fed,
                                &r.node,
                                &session.node_public_key,
                                sealed,
                                r.receipt.as_ref(),
                            )
                        })
                    }
                    _ => Err(proof::AnswerRefusal::Sealed(
                        fedq_wire::seal::SealRefusal::WrongSession,
                    )),
                };
                Some((r.node.clone(), opened))
            })
            .collect()
    }

    /// Opens and concludes a coordinator's answer to `proven` (as [`Self::query`] does
    /// without its retries): a 200 relay becomes the answer the requester reads, anything
    /// else is returned as it is.
    pub fn conclude(
        &self,
        proven: &QueryRequest,
        status: u16,
        answer: serde_json::Value,
    ) -> serde_json::Value {
        let Ok(relayed) = RelayedAnswer::deserialize(&answer) else {
            return answer;
        };
        if status != 200 {
            return answer;
        }
        let opened = self.open_answers(proven, &relayed);
        let asked = crate::opening::Asked::of(proven);
        serde_json::to_value(crate::opening::conclude(&asked, relayed, opened)).unwrap_or(answer)
    }

    /// `query` with this connection's proofs filled in for every node the query can ask
    /// (its datasets' departments, or the view's nodes as `GET /v1/nodes` listed them): one
    /// fresh proof per such node it holds a live session with and `null` for the others
    /// (sessions opened or renewed first); no entry for a node the query cannot ask.
    /// Each proof is good for one lookup: sending the result twice is a replay, which
    /// every node refuses.
    pub async fn prove(&mut self, query: &QueryRequest) -> Result<QueryRequest, ClientError> {
        self.prove_to(query, None).await
    }

    /// [`Self::prove`], proving only to the nodes in `only` (when given): the others the
    /// query can ask get `null`, so the coordinator does not ask them.
    async fn prove_to(
        &mut self,
        query: &QueryRequest,
        only: Option<&BTreeSet<String>>,
    ) -> Result<QueryRequest, ClientError> {
        // The subject and the consent token never go to the coordinator: they are sealed
        // to each node asked, and the coordinator is told only whether a token is sealed.
        let subject = query
            .sealed_subject()
            .map_err(|e| ClientError::Usage(e.to_string()))?;
        self.open_sessions().await?;
        let mut proven = query.clone();
        proven.subject = String::new();
        proven.consent = None;
        proven.consent_sealed = subject.consent.is_some();
        proven.proofs = BTreeMap::new();
        proven.sealed = BTreeMap::new();
        // A query that cannot be valid goes without proofs: the coordinator says what is
        // wrong with it.
        let (Some(claims), Some(sessions)) = (query.proof_claims(), self.sessions.as_ref()) else {
            return Ok(proven);
        };
        let now = UnixTime::now();
        // Only the nodes the query can ask get a proof (fewer MACs, a smaller body); a
        // node it cannot ask gets no entry at all. A view this connection knows no plan
        // for is proven to every node.
        let asked: Option<BTreeSet<String>> = match &claims.target {
            ProofTarget::Datasets(ds) => Some(
                ds.iter()
                    .filter_map(|d| d.dataset.split('.').next().map(str::to_owned))
                    .collect(),
            ),
            ProofTarget::View(v) => sessions.views.get(v).cloned(),
            // A filing is proven to its dataset's node alone; the register to every node.
            ProofTarget::Rights(r) => r
                .dataset
                .as_ref()
                .map(|d| d.split('.').next().map(str::to_owned).into_iter().collect()),
            ProofTarget::Aggregate(a) => Some(departments(&a.datasets)),
        };
        for node in &sessions.nodes {
            if asked.as_ref().is_some_and(|a| !a.contains(node)) {
                continue;
            }
            let proof = match sessions.open.get(node) {
                Some(session) if session.is_live(now) && only.is_none_or(|o| o.contains(node)) => {
                    let nonce =
                        proof::fresh_nonce().map_err(|e| ClientError::Usage(e.to_string()))?;
                    let (proof, sealed) = session
                        .prove_sealed(&claims, &subject, now, &nonce)
                        .map_err(|e| ClientError::Usage(e.to_string()))?;
                    proven.sealed.insert(node.clone(), sealed);
                    Some(proof)
                }
                _ => None,
            };
            proven.proofs.insert(node.clone(), proof);
        }
        Ok(proven)
    }

    /// Sends an aggregate query (`POST /v1/statistics`, issue 20 §2), proven to every
    /// department whose datasets it counts under this connection's sessions (nothing is
    /// sealed: it names no person). A department without a live session is left out of
    /// the proofs, and the coordinator says so.
    pub async fn statistics(
        &mut self,
        request: &fedq_client::statistics::StatisticsRequest,
    ) -> Result<(u16, serde_json::Value), ClientError> {
        self.open_sessions().await?;
        let mut proven = request.clone();
        proven.proofs = BTreeMap::new();
        if let Some(sessions) = self.sessions.as_ref() {
            let claims = proof::ProofClaims::new(
                &request.purpose,
                request.legal_basis.as_deref(),
                None,
                ProofTarget::Aggregate(request.target.clone()),
            );
            let now = UnixTime::now();
            for node in departments(&request.target.datasets) {
                if let Some(session) = sessions.open.get(&node).filter(|s| s.is_live(now)) {
                    let nonce =
                        proof::fresh_nonce().map_err(|e| ClientError::Usage(e.to_string()))?;
                    proven
                        .proofs
                        .insert(node, session.prove(&claims, now, &nonce));
                }
            }
        }
        let body = serde_json::to_vec(&proven).map_err(|e| ClientError::Usage(e.to_string()))?;
        self.call("POST", "/v1/statistics", "application/json", body)
            .await
    }

    /// Lists the nodes and the views' plans again, keeping the sessions already open.
    async fn refresh_plan(&mut self) -> Result<(), ClientError> {
        let listed = self.http.nodes().await?;
        if let Some(sessions) = self.sessions.as_mut() {
            sessions.views = views_of(&listed);
            sessions.nodes = listed.nodes;
        }
        self.open_sessions().await
    }

    /// Posts `query` as it is, `proofs` included, with no session handling and no retry.
    pub async fn send_raw(
        &mut self,
        query: &QueryRequest,
    ) -> Result<(u16, serde_json::Value), ClientError> {
        let body = serde_json::to_vec(query).map_err(|e| ClientError::Usage(e.to_string()))?;
        self.call("POST", "/v1/query", "application/json", body)
            .await
    }

    /// Opens (or renews) a session with every node that needs one: never asked, ending
    /// within a minute, or failed more than [`SESSION_RETRY`] ago. The first call lists
    /// the nodes. Load generators call this before timing; queries call it themselves.
    pub async fn open_sessions(&mut self) -> Result<(), ClientError> {
        if self.sessions.is_none() {
            let trust = FederationTrust::load(&self.trust_files).map_err(|e| {
                ClientError::Usage(format!(
                    "cannot load the CA and CRL that nodes' session accepts are checked against: {e}"
                ))
            })?;
            let listed = self.http.nodes().await?;
            self.sessions = Some(Sessions {
                trust,
                views: views_of(&listed),
                nodes: listed.nodes,
                open: BTreeMap::new(),
                failed: BTreeMap::new(),
            });
        }
        let Some(sessions) = self.sessions.as_mut() else {
            return Ok(());
        };
        let now = UnixTime::now();
        let wanted: Vec<String> = sessions
            .nodes
            .iter()
            .filter(|n| !sessions.open.get(*n).is_some_and(|s| s.is_live(now)))
            .filter(|n| {
                sessions
                    .failed
                    .get(*n)
                    .is_none_or(|(_, at)| at.elapsed() >= SESSION_RETRY)
            })
            .cloned()
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let federation = self.key.identity().federation.clone();
        let mut request = SessionRequest::default();
        let mut pending: BTreeMap<String, PendingSession> = BTreeMap::new();
        for node in &wanted {
            let (grant, half) = SessionGrant::new(&self.key, &federation, node, now)
                .map_err(|e| ClientError::Usage(e.to_string()))?;
            request.grants.insert(node.clone(), grant);
            pending.insert(node.clone(), half);
        }
        let answer = self.http.open_sessions(&request).await;
        let Some(sessions) = self.sessions.as_mut() else {
            return Ok(());
        };
        let failed_at = Instant::now();
        let answer = match answer {
            Ok(answer) => answer,
            Err(e @ (fedq_client::Error::Refused(_) | fedq_client::Error::Unexpected { .. })) => {
                let why = format!("the coordinator refused to open sessions: {e}");
                for node in wanted {
                    sessions.open.remove(&node);
                    sessions.failed.insert(node, (why.clone(), failed_at));
                }
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        for (node, half) in pending {
            let outcome = match answer.accepts.get(&node) {
                Some(accept) => half
                    .complete(accept, &sessions.trust, UnixTime::now())
                    .map_err(|e| e.to_string()),
                None => Err(answer
                    .failures
                    .get(&node)
                    .map_or(
                        "the coordinator gave no answer for this node",
                        String::as_str,
                    )
                    .to_owned()),
            };
            match outcome {
                Ok(session) => {
                    sessions.failed.remove(&node);
                    sessions.open.insert(node, session);
                }
                Err(why) => {
                    sessions.open.remove(&node);
                    sessions
                        .failed
                        .insert(node, (format!("no session: {why}"), failed_at));
                }
            }
        }
        Ok(())
    }

    /// The nodes this connection holds a live session with.
    pub fn session_nodes(&self) -> Vec<String> {
        let now = UnixTime::now();
        self.sessions
            .iter()
            .flat_map(|s| s.open.iter())
            .filter(|(_, s)| s.is_live(now))
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Puts this connection's own reason beside the coordinator's for every node that was
    /// not asked because no session with it is open.
    fn explain_unproven(&self, mut answer: serde_json::Value) -> serde_json::Value {
        let Some(sessions) = &self.sessions else {
            return answer;
        };
        for report in answer
            .get_mut("nodes")
            .and_then(|n| n.as_array_mut())
            .into_iter()
            .flatten()
        {
            let node = report.get("node").and_then(|n| n.as_str()).unwrap_or("");
            let said = report.get("reason").and_then(|r| r.as_str()).unwrap_or("");
            if let (true, Some((why, _))) = (
                said.contains(crate::service::NOT_PROVEN),
                sessions.failed.get(node),
            ) {
                let reason = format!("{said}; {why}");
                report["reason"] = serde_json::Value::String(reason);
            }
        }
        answer
    }

    /// One request on this connection; returns the HTTP status and the JSON body.
    pub async fn call(
        &mut self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<(u16, serde_json::Value), ClientError> {
        Ok(self.http.call(method, path, content_type, body).await?)
    }

    /// The typed client underneath, one async call per endpoint.
    pub fn http(&mut self) -> &mut fedq_client::Client {
        &mut self.http
    }
}

/// Sends one query to an agency's gateway (`fedq gateway`), which proves, seals and opens
/// it as the agency's requester: the body carries the subject and consent token (over
/// TLS to the gateway, trusting `ca`, its `gateway-ca.crt`), and `token` is the app's.
/// Returns the HTTP status and the gateway's JSON answer.
pub async fn send_to_gateway(
    url: &str,
    ca: &Path,
    token: &str,
    query: &QueryRequest,
) -> Result<(u16, serde_json::Value), ClientError> {
    let mut gateway = fedq_client::Client::connect_with(url, ca, None)
        .await?
        .with_bearer(token);
    // The body the gateway reads: the query as `fedq query` has it, subject included.
    let mut body = serde_json::to_value(query).map_err(|e| ClientError::Usage(e.to_string()))?;
    if let Some(map) = body.as_object_mut() {
        map.insert("subject".into(), query.subject.clone().into());
        if let Some(consent) = &query.consent {
            map.insert("consent".into(), consent.clone().into());
        }
        for field in ["proofs", "sealed", "consent_sealed"] {
            map.remove(field);
        }
    }
    Ok(gateway
        .call(
            "POST",
            "/v1/query",
            "application/json",
            body.to_string().into_bytes(),
        )
        .await?)
}

/// Each view → the nodes it asks, from a `GET /v1/nodes` answer.
/// The departments of `department.dataset` names.
fn departments(datasets: &[String]) -> BTreeSet<String> {
    datasets
        .iter()
        .filter_map(|d| d.split('.').next().map(str::to_owned))
        .collect()
}

fn views_of(listed: &NodeList) -> BTreeMap<String, BTreeSet<String>> {
    listed
        .views
        .iter()
        .map(|(view, nodes)| (view.clone(), nodes.iter().cloned().collect()))
        .collect()
}

/// An answer with the subject, masked, as the requester side knows it: the coordinator
/// never sees the person, so its answer names none.
fn with_subject(query: &QueryRequest, mut answer: serde_json::Value) -> serde_json::Value {
    if let (Some(body), Ok(subject)) = (answer.as_object_mut(), query.sealed_subject()) {
        if body.contains_key("query_id") && body.contains_key("nodes") {
            body.insert("subject".into(), subject.sub.masked().into());
        }
    }
    answer
}

/// Whether a 400 says the query lacked a proof for a node it asks (the coordinator's
/// plan differs from this connection's).
fn plan_changed(answer: &serde_json::Value) -> bool {
    answer.get("type").and_then(|t| t.as_str())
        == Some(crate::problem::Kind::ProofMissing.uri().as_str())
        && problem_detail(answer).contains("carries no requester proof for node(s)")
}

/// The human message of a problem document (RFC 9457 `detail`), or "" if there is none.
pub fn problem_detail(answer: &serde_json::Value) -> &str {
    answer.get("detail").and_then(|e| e.as_str()).unwrap_or("")
}

/// The nodes an answer reports as holding no session its proof names (`unknown-session`).
fn lost_sessions(status: u16, answer: &serde_json::Value) -> Vec<String> {
    if status != 200 {
        return Vec::new();
    }
    answer
        .get("nodes")
        .and_then(|n| n.as_array())
        .into_iter()
        .flatten()
        .filter(|r| {
            r.get("proof_refused").and_then(|c| c.as_str())
                == Some(proof::ProofRefusal::UnknownSession.code())
        })
        .filter_map(|r| r.get("node").and_then(|n| n.as_str()).map(str::to_owned))
        .collect()
}

fn key_path_text(path: &Path) -> String {
    path.display().to_string()
}

impl QueryArgs {
    /// The query these arguments ask.
    pub fn query(&self) -> QueryRequest {
        let rights = self
            .rights
            .as_deref()
            .map(|name| fedq_wire::rights::RightsTarget {
                // An unknown name is refused by `send` before this is built.
                right: fedq_wire::rights::Right::parse(name)
                    .unwrap_or(fedq_wire::rights::Right::Register),
                dataset: self.dataset.first().cloned(),
            });
        QueryRequest {
            subject: self.subject.clone(),
            purpose: self.purpose.clone(),
            legal_basis: self.basis.clone(),
            consent: self.consent.clone(),
            case_reference: self.case_reference.clone(),
            view: self.view.clone(),
            datasets: (!self.dataset.is_empty() && rights.is_none()).then(|| self.dataset.clone()),
            filing: self.filing.clone(),
            rights,
            ..QueryRequest::default()
        }
    }
}

/// Connects as [`ApiArgs`] say (`--crl` if given).
pub async fn connect(a: &ApiArgs) -> Result<ApiConnection, ClientError> {
    let conn = ApiConnection::connect(&a.coordinator, &a.cert, &a.key, &a.ca).await?;
    Ok(match &a.crl {
        Some(crl) => conn.with_crl(crl),
        None => conn,
    })
}

/// Sends one query on a new connection; returns the HTTP status and the JSON body.
pub async fn send(args: &QueryArgs) -> Result<(u16, serde_json::Value), ClientError> {
    if let Some(name) = args.rights.as_deref() {
        if fedq_wire::rights::Right::parse(name).is_none() {
            return Err(ClientError::Usage(format!(
                "`--rights` is not a right; the rights are: {}",
                fedq_wire::rights::Right::ALL.map(|r| r.as_str()).join(", ")
            )));
        }
        if args.dataset.len() > 1 {
            return Err(ClientError::Usage(
                "with `--rights`, give at most one `--dataset` (the dataset the right is about)"
                    .into(),
            ));
        }
    }
    let mut query = args.query();
    query.subject = crate::consent::read_token(&args.subject, "resident ID")
        .map_err(|e| ClientError::Usage(e.to_string()))?;
    query.consent = args
        .consent
        .as_deref()
        .map(crate::consent::token_arg)
        .transpose()
        .map_err(|e| ClientError::Usage(e.to_string()))?;
    if let (Some(gateway), Some(token)) = (&args.gateway, &args.token) {
        let token = crate::consent::read_token(token, "app token")
            .map_err(|e| ClientError::Usage(e.to_string()))?;
        return send_to_gateway(gateway, &args.ca, &token, &query).await;
    }
    let (Some(coordinator), Some(cert), Some(key)) = (&args.coordinator, &args.cert, &args.key)
    else {
        return Err(ClientError::Usage(
            "give --coordinator with --cert and --key, or --gateway with --token".into(),
        ));
    };
    let mut conn = connect(&ApiArgs {
        coordinator: coordinator.clone(),
        cert: cert.clone(),
        key: key.clone(),
        ca: args.ca.clone(),
        crl: args.crl.clone(),
    })
    .await?;
    conn.query(&query).await
}

fn value_text(v: &serde_json::Value) -> String {
    // Amounts travel in fen; people read yuan.
    if let Some(fen) = v.get("amount").and_then(serde_json::Value::as_i64) {
        let sign = if fen < 0 { "-" } else { "" };
        return format!(
            "{sign}{}.{:02} yuan",
            fen.unsigned_abs() / 100,
            fen.unsigned_abs() % 100
        );
    }
    match v {
        serde_json::Value::Object(m) if m.len() == 1 => {
            m.values().next().map(value_text).unwrap_or_default()
        }
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn render_datasets(
    out: &mut String,
    ds: &serde_json::Map<String, serde_json::Value>,
    indent: &str,
) {
    for (name, result) in ds {
        let records = result
            .get("records")
            .and_then(|r| r.as_array())
            .cloned()
            .unwrap_or_default();
        out.push_str(&format!("{indent}{name}: {} record(s)\n", records.len()));
        for r in records {
            if let Some(m) = r.as_object() {
                let line: Vec<String> = m
                    .iter()
                    .map(|(k, v)| format!("{k}={}", value_text(v)))
                    .collect();
                out.push_str(&format!("{indent}  - {}\n", line.join("  ")));
            }
        }
        if let Some(sum) = result.get("summaries").and_then(|s| s.as_object()) {
            for (field, v) in sum {
                out.push_str(&format!("{indent}  {field}: {}\n", value_text(v)));
            }
        }
    }
}

/// Renders an answer for people.
pub fn render(answer: &serde_json::Value) -> String {
    let mut out = String::new();
    let s = |k: &str| {
        answer
            .get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("-")
            .to_owned()
    };
    out.push_str(&format!(
        "query {}  subject {}  purpose {}  policy {}\n",
        s("query_id"),
        s("subject"),
        s("purpose"),
        s("policy_version")
    ));
    if answer.get("complete").and_then(|v| v.as_bool()) == Some(false) {
        out.push_str("PARTIAL ANSWER: some departments could not be asked or could not verify their records (see below)\n");
    }
    if answer.get("view").is_some_and(|v| v.is_string()) && answer.get("view_result").is_none() {
        out.push_str("NO RESULT: the view could not be combined from what the departments answered (see below); read it as unknown, never as clean\n");
    }
    if let Some(view) = answer.get("view_result") {
        let kind = view.get("kind").and_then(|k| k.as_str()).unwrap_or("");
        match kind {
            "blacklist" => {
                let listings = view
                    .get("listings")
                    .and_then(|l| l.as_array())
                    .cloned()
                    .unwrap_or_default();
                let unverified = view
                    .get("unverified")
                    .and_then(|u| u.as_array())
                    .map_or(0, Vec::len);
                if listings.is_empty() && unverified > 0 {
                    out.push_str(&format!(
                        "blacklist check: CANNOT CONFIRM — not listed on the lists that answered, but {unverified} list(s) could not be checked (see below)\n"
                    ));
                } else if listings.is_empty() {
                    out.push_str("blacklist check: not on any serious-dishonesty list checked\n");
                } else {
                    out.push_str("blacklist check: LISTED\n");
                    for l in listings {
                        out.push_str(&format!(
                            "  - {} ({}) since {}{}\n",
                            l.get("list").and_then(|v| v.as_str()).unwrap_or(""),
                            l.get("dataset").and_then(|v| v.as_str()).unwrap_or(""),
                            l.get("since").map(value_text).unwrap_or_else(|| "-".into()),
                            l.get("until")
                                .filter(|u| !u.is_null())
                                .map(|u| format!(" until {}", value_text(u)))
                                .unwrap_or_default()
                        ));
                    }
                }
            }
            "green-channel" => out.push_str(&format!(
                "green channel: {} — {}\n",
                match view.get("verdict").and_then(|v| v.as_str()) {
                    Some("eligible") => "ELIGIBLE",
                    Some("not_eligible") => "not eligible",
                    _ => "CANNOT CONFIRM",
                },
                view.get("reason").and_then(|r| r.as_str()).unwrap_or("")
            )),
            "integrity-score" => out.push_str(&format!(
                "integrity score: {} points, grade {}\n",
                view.get("points")
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
                view.get("grade")
                    .and_then(|g| g.as_str())
                    .unwrap_or("(not graded: partial)")
            )),
            "credit-report" => {
                out.push_str("credit report:\n");
                for sec in view
                    .get("sections")
                    .and_then(|x| x.as_array())
                    .cloned()
                    .unwrap_or_default()
                {
                    let records = sec
                        .get("records")
                        .and_then(|r| r.as_array())
                        .cloned()
                        .unwrap_or_default();
                    out.push_str(&format!(
                        "  {} ({}): {} record(s)\n",
                        sec.get("label").and_then(|v| v.as_str()).unwrap_or(""),
                        sec.get("dataset").and_then(|v| v.as_str()).unwrap_or(""),
                        records.len()
                    ));
                    for r in records {
                        if let Some(m) = r.as_object() {
                            let line: Vec<String> = m
                                .iter()
                                .map(|(k, v)| format!("{k}={}", value_text(v)))
                                .collect();
                            out.push_str(&format!("    - {}\n", line.join("  ")));
                        }
                    }
                }
            }
            _ => {}
        }
        for u in view
            .get("unverified")
            .and_then(|x| x.as_array())
            .cloned()
            .unwrap_or_default()
        {
            out.push_str(&format!(
                "  {}: {} — {}\n",
                u.get("status")
                    .and_then(|v| v.as_str())
                    .unwrap_or("unverified"),
                u.get("dataset").and_then(|v| v.as_str()).unwrap_or(""),
                u.get("reason").and_then(|v| v.as_str()).unwrap_or("")
            ));
        }
        // Only what the view declares in `release`; most views declare nothing.
        if let Some(ds) = answer
            .get("datasets")
            .and_then(|d| d.as_object())
            .filter(|d| !d.is_empty())
        {
            out.push_str("released beside the view (declared in the policy):\n");
            render_datasets(&mut out, ds, "  ");
        }
    } else if let Some(ds) = answer.get("datasets").and_then(|d| d.as_object()) {
        render_datasets(&mut out, ds, "");
    }
    out.push_str("departments (each asked, or denied before asking):\n");
    for n in answer
        .get("nodes")
        .and_then(|n| n.as_array())
        .cloned()
        .unwrap_or_default()
    {
        out.push_str(&format!(
            "  {:<18} {:<12} {}\n",
            n.get("node").and_then(|v| v.as_str()).unwrap_or(""),
            n.get("status").and_then(|v| v.as_str()).unwrap_or(""),
            n.get("reason").and_then(|v| v.as_str()).unwrap_or("")
        ));
    }
    out
}

/// How the command-line clients reach the coordinator's API.
#[derive(Debug)]
pub struct ApiArgs {
    /// The coordinator, e.g. `https://127.0.0.1:8443`.
    pub coordinator: String,
    /// Your certificate: a requester's to query; an officer's (or the coordinator's own) to
    /// publish a policy bundle.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
    /// The federation CA certificate.
    pub ca: PathBuf,
    /// The federation's CRL, which nodes' session accepts are checked against (default:
    /// `crl.pem` beside `--ca`).
    pub crl: Option<PathBuf>,
}

/// Arguments of `fedq policy publish`.
#[derive(Debug)]
pub struct PublishArgs {
    /// The signed bundle file.
    pub bundle: PathBuf,
    /// How to reach the coordinator.
    pub api: ApiArgs,
}

/// The error of an answer that is not HTTP 200: its status and the problem's detail.
pub fn refused(status: u16, body: &serde_json::Value) -> ClientError {
    ClientError::Refused {
        status,
        message: problem_detail(body).to_owned(),
    }
}

/// Sends a bundle to `POST /v1/policy/bundles`; returns the HTTP status and JSON body.
pub async fn publish(args: &PublishArgs) -> Result<(u16, serde_json::Value), ClientError> {
    let text = std::fs::read(&args.bundle)
        .map_err(|e| ClientError::Usage(format!("cannot read `{}`: {e}", args.bundle.display())))?;
    let a = &args.api;
    let mut conn = ApiConnection::connect(&a.coordinator, &a.cert, &a.key, &a.ca).await?;
    conn.call("POST", "/v1/policy/bundles", "application/toml", text)
        .await
}

/// Reads `GET /v1/policy/status`.
pub async fn policy_status(args: &ApiArgs) -> Result<(u16, serde_json::Value), ClientError> {
    let mut conn =
        ApiConnection::connect(&args.coordinator, &args.cert, &args.key, &args.ca).await?;
    conn.call("GET", "/v1/policy/status", "application/json", Vec::new())
        .await
}

/// Renders `fedq policy publish`'s answer for people: where the bundle took effect, and
/// how many nodes did not apply it.
// `Value["key"]` yields `Null` for a missing key; it never panics.
#[allow(clippy::indexing_slicing)]
pub fn render_publish(body: &serde_json::Value) -> (String, usize) {
    use std::fmt::Write as _;
    let mut out = String::new();
    let coordinator = &body["coordinator"];
    let _ = writeln!(
        out,
        "coordinator: {} ({})",
        coordinator["label"].as_str().unwrap_or("?"),
        if coordinator["changed"].as_bool() == Some(true) {
            "now in force"
        } else {
            "already in force"
        }
    );
    let mut failed = 0;
    for n in body["nodes"].as_array().into_iter().flatten() {
        let name = n["node"].as_str().unwrap_or("?");
        if n["applied"].as_bool() == Some(true) {
            let _ = writeln!(
                out,
                "node {name}: {} ({})",
                n["label"].as_str().unwrap_or("?"),
                if n["changed"].as_bool() == Some(true) {
                    "now in force"
                } else {
                    "already in force"
                }
            );
        } else {
            failed += 1;
            let _ = writeln!(
                out,
                "node {name}: NOT applied — {}",
                n["error"].as_str().unwrap_or("?")
            );
        }
    }
    (out, failed)
}

/// Renders `fedq policy status` for people.
// `Value["key"]` yields `Null` for a missing key; it never panics.
#[allow(clippy::indexing_slicing)]
pub fn render_status(body: &serde_json::Value) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let c = &body["coordinator"];
    let _ = writeln!(
        out,
        "{:<20} {:<22} {:<18} notes",
        "process", "version", "content"
    );
    let hash = |v: &serde_json::Value| v.as_str().unwrap_or("").get(..16).unwrap_or("").to_owned();
    let _ = writeln!(
        out,
        "{:<20} {:<22} {:<18} threshold {}{}",
        "coordinator",
        c["label"].as_str().unwrap_or("?"),
        hash(&c["content_sha256"]),
        c["threshold"],
        c["last_refusal"]
            .as_str()
            .map(|r| format!("; last bundle refused: {r}"))
            .unwrap_or_default()
    );
    for n in body["nodes"].as_array().into_iter().flatten() {
        let name = format!("node {}", n["node"].as_str().unwrap_or("?"));
        let mut notes = Vec::new();
        if n["reachable"].as_bool() != Some(true) {
            notes.push(format!(
                "unreachable: {}",
                n["error"].as_str().unwrap_or("?")
            ));
        }
        if let Some(r) = n["last_refusal"].as_str() {
            notes.push(format!("last bundle refused: {r}"));
        }
        if let Some(r) = n["last_publish_error"].as_str() {
            notes.push(format!("last publish failed: {r}"));
        }
        let _ = writeln!(
            out,
            "{:<20} {:<22} {:<18} {}",
            name,
            n["label"].as_str().unwrap_or("-"),
            hash(&n["content_sha256"]),
            notes.join("; ")
        );
    }
    let _ = writeln!(
        out,
        "{}",
        if body["in_step"].as_bool() == Some(true) {
            "every node runs the coordinator's version"
        } else {
            "NOT in step: some nodes run another version (see notes); publish the bundle again once fixed"
        }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_plan_is_read_from_the_node_list_and_a_missing_proof_is_a_changed_plan() {
        let listed = serde_json::json!({
            "nodes": ["court", "hrss", "tax"],
            "views": { "blacklist-check": ["court", "hrss", "tax"], "empty": [] },
        });
        let views = views_of(&serde_json::from_value(listed).unwrap());
        assert_eq!(
            views["blacklist-check"].iter().collect::<Vec<_>>(),
            ["court", "hrss", "tax"]
        );
        assert!(views["empty"].is_empty());
        // A coordinator that lists no plans: every node is proven to.
        let no_plans = serde_json::from_value(serde_json::json!({ "nodes": ["court"] })).unwrap();
        assert!(views_of(&no_plans).is_empty());
        let missing = serde_json::json!({
            "type": "urn:fedq:problem:proof-missing",
            "detail": "the query carries no requester proof for node(s) tax which it asks; open a session"
        });
        assert!(plan_changed(&missing));
        assert!(!plan_changed(&serde_json::json!({
            "type": "urn:fedq:problem:malformed-request",
            "detail": "malformed query JSON: x"
        })));
        assert!(!plan_changed(&serde_json::json!({ "nodes": [] })));
    }
}
