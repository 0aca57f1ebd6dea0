//! The requester's side of the request proof, for tests that talk to a node directly in
//! the coordinator's place: a [`ProvingChannel`] opens a session with the node for each
//! requester (with that requester's own certificate from the test federation's CA, issued
//! on first use) and proves every lookup it sends, as `fedq query` would.
//!
//! A test writes the lookup's subject (and consent token) in clear into its `sealed` field
//! with [`clear_subject`]; the channel seals it to the node under the requester's session
//! when it proves the lookup, so only sealed subjects reach the node through it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fedq_certs::jws::CertificateKey;
use fedq_certs::pki::{CertificateAuthority, IssueOptions};
use fedq_certs::tls::TrustFiles;
use fedq_certs::{FederationTrust, Role};
use fedq_wire::message::LookupRequest;
use fedq_wire::proof::{fresh_nonce, ProofClaims, SealedSubject, Session, SessionGrant, UnixTime};
use fedq_wire::transport::{ChannelError, NodeChannel};
use fedq_wire::{NodeRequest, NodeResponse};

/// What a test puts in an unproven lookup's `sealed` field: the subject and consent token
/// in clear, for [`ProvingChannel`] to seal.
pub fn clear_subject(subject: &str, consent: Option<&str>) -> String {
    serde_json::to_string(&SealedSubject {
        sub: fedq_wire::ResidentId::parse(subject).unwrap(),
        consent: consent.map(str::to_owned),
    })
    .unwrap()
}

/// A coordinator's channel to one node, with each requester's session on it.
#[derive(Clone)]
pub struct ProvingChannel {
    channel: NodeChannel,
    pki: PathBuf,
    federation: String,
    sessions: Arc<Mutex<HashMap<String, Arc<Session>>>>,
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
