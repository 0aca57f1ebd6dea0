//! The requester's side of the request proof, for tests that talk to a node directly in
//! the coordinator's place: a [`ProvingChannel`] opens a session with the node for each
//! requester (with that requester's own certificate from the test federation's CA, issued
//! on first use) and proves every lookup it sends, as `fedq query` would.
//!
//! A test writes the lookup's subject (and consent token) in clear into its `sealed` field
//! with [`clear_subject`]; the channel seals it to the node under the requester's session
//! when it proves the lookup, so only sealed subjects reach the node through it.
//!
//! A node's answer comes back sealed to the requester; [`opened`] opens it under the
//! session it names, as the requester side would (every session these channels open is
//! kept for it).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use fedq_certs::jws::CertificateKey;
use fedq_certs::pki::{CertificateAuthority, IssueOptions};
use fedq_certs::tls::TrustFiles;
use fedq_certs::{FederationTrust, Role};
use fedq_wire::message::{DatasetOutcome, LookupAnswer, LookupRequest};
use fedq_wire::proof::{fresh_nonce, ProofClaims, SealedSubject, Session, SessionGrant, UnixTime};
use fedq_wire::transport::{ChannelError, NodeChannel};
use fedq_wire::{NodeRequest, NodeResponse};

/// What a test puts in an unproven lookup's `sealed` field: the subject and consent token
/// in clear, for [`ProvingChannel`] to seal.
pub fn clear_subject(subject: &str, consent: Option<&str>) -> String {
    serde_json::to_string(&SealedSubject {
        sub: fedq_wire::ResidentId::parse(subject).unwrap(),
        consent: consent.map(str::to_owned),
        filing: None,
    })
    .unwrap()
}

/// Every session the test's channels opened, by session id, for [`opened`].
static OPENED: Mutex<Option<HashMap<String, Arc<Session>>>> = Mutex::new(None);

fn keep(session: &Arc<Session>) {
    OPENED
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .insert(session.sid.clone(), Arc::clone(session));
}

/// The answer a node sealed in `response`, opened under the session its header names and
/// bound to the nonce its header names (as a requester holding that session opens it).
/// Panics unless `response` is a lookup answer sealed under a session opened here.
pub fn opened(response: &NodeResponse) -> LookupAnswer {
    let NodeResponse::Lookup(l) = response else {
        panic!("expected a lookup answer, got {response:?}");
    };
    let header = l.sealed.split('.').next().unwrap();
    let header: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    let sid = header["kid"].as_str().unwrap();
    let session = OPENED
        .lock()
        .unwrap()
        .as_ref()
        .and_then(|m| m.get(sid).cloned())
        .expect("the answer's session was opened by a ProvingChannel");
    session
        .open_lookup_answer(&l.sealed, header["bnd"].as_str().unwrap())
        .unwrap()
}

/// The dataset outcomes a node sealed in `response` (panics on a view's part).
pub fn outcomes(response: &NodeResponse) -> Vec<DatasetOutcome> {
    match opened(response) {
        LookupAnswer::Datasets(d) => d,
        LookupAnswer::View(p) => panic!("expected a datasets answer, got a view part {p:?}"),
        LookupAnswer::Rights(r) => panic!("expected a datasets answer, got a rights answer {r:?}"),
    }
}

/// A coordinator's channel to one node, with each requester's session on it.
#[derive(Clone)]
pub struct ProvingChannel {
    channel: NodeChannel,
    pki: PathBuf,
    federation: String,
    sessions: Arc<Mutex<HashMap<String, Arc<Session>>>>,
}

impl std::fmt::Debug for ProvingChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProvingChannel")
            .field("pki", &self.pki)
            .field("federation", &self.federation)
            .finish_non_exhaustive()
    }
}

impl ProvingChannel {
    /// `channel` to a node of the federation whose CA directory is `pki`.
    pub fn new(channel: NodeChannel, pki: &Path) -> Self {
        Self {
            channel,
            pki: pki.to_owned(),
            federation: "changsha".into(),
            sessions: Arc::default(),
        }
    }

    /// The channel itself, for what must reach the node unproven.
    pub fn raw(&self) -> &NodeChannel {
        &self.channel
    }

    /// The node's name.
    pub fn node(&self) -> &str {
        self.channel.node()
    }

    /// The requester's certificate key, issued by the test CA if it has none yet.
    pub fn key(&self, requester: &str) -> CertificateKey {
        let cert = self.pki.join(format!("{requester}.crt"));
        if !cert.exists() {
            CertificateAuthority::open(&self.pki)
                .unwrap()
                .issue(Role::Requester, requester, &IssueOptions::default())
                .unwrap();
        }
        CertificateKey::load(&cert, &self.pki.join(format!("{requester}.key"))).unwrap()
    }

    /// The CA and CRL as they are on disk now.
    pub fn trust(&self) -> FederationTrust {
        FederationTrust::load(&TrustFiles::in_dir(&self.pki)).unwrap()
    }

    /// Sends `grant` as is and returns the node's answer.
    pub async fn send_grant(&self, grant: String) -> NodeResponse {
        self.channel
            .request(&NodeRequest::OpenSession(grant), Duration::from_secs(10))
            .await
            .unwrap()
    }

    /// Opens a new session as `requester` (not cached); the node's answer if it refused.
    pub async fn open(&self, requester: &str) -> Result<Session, NodeResponse> {
        let key = self.key(requester);
        let (grant, pending) =
            SessionGrant::new(&key, &self.federation, self.node(), UnixTime::now()).unwrap();
        match self.send_grant(grant).await {
            NodeResponse::SessionOpened(accept) => Ok(pending
                .complete(&accept, &self.trust(), UnixTime::now())
                .unwrap()),
            other => Err(other),
        }
    }

    /// The session of `requester`, opened on first use.
    pub async fn session(&self, requester: &str) -> Arc<Session> {
        if let Some(s) = self.sessions.lock().unwrap().get(requester) {
            return Arc::clone(s);
        }
        let session = Arc::new(
            self.open(requester)
                .await
                .unwrap_or_else(|answer| panic!("the node refused the session: {answer:?}")),
        );
        keep(&session);
        self.sessions
            .lock()
            .unwrap()
            .insert(requester.to_owned(), Arc::clone(&session));
        session
    }

    /// Forgets the session of `requester` (the next lookup opens a new one).
    pub fn forget(&self, requester: &str) {
        self.sessions.lock().unwrap().remove(requester);
    }

    /// The proof of exactly `lookup` and its subject sealed to the node, made now under
    /// its requester's session; `lookup.sealed` holds the subject in clear
    /// ([`clear_subject`]).
    pub async fn proof_of(&self, lookup: &LookupRequest) -> (String, String) {
        let session = self.session(&lookup.requester).await;
        let subject: SealedSubject = serde_json::from_str(&lookup.sealed)
            .expect("an unproven test lookup carries clear_subject(..) in `sealed`");
        session
            .prove_sealed(
                &ProofClaims::of_lookup(lookup),
                &subject,
                UnixTime::now(),
                &fresh_nonce().unwrap(),
            )
            .unwrap()
    }

    /// `lookup` with its proof and its subject sealed.
    pub async fn proven(&self, mut lookup: LookupRequest) -> NodeRequest {
        (lookup.proof, lookup.sealed) = self.proof_of(&lookup).await;
        NodeRequest::Lookup(lookup)
    }

    /// Sends `request`; a lookup without a proof is proven first, as its requester.
    pub async fn request(
        &self,
        request: &NodeRequest,
        deadline: Duration,
    ) -> Result<NodeResponse, ChannelError> {
        match request {
            NodeRequest::Lookup(l) if l.proof.is_empty() => {
                let proven = self.proven(l.clone()).await;
                self.channel.request(&proven, deadline).await
            }
            other => self.channel.request(other, deadline).await,
        }
    }
}
