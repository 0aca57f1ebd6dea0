//! The requester's proof of who asks, checked by every node itself.
//!
//! The coordinator authenticates requesters, but a node must not take its word for who
//! asks: whoever holds the coordinator could otherwise ask every node anything any
//! requester may ask. So the requester proves each query to each node:
//!
//! 1. **Session** (once per requester–node pair, at most [`MAX_SESSION_SECS`]): the
//!    requester signs a *session grant* ([`GRANT_TYP`], ES256 with its own certificate key)
//!    carrying an ephemeral X25519 public key; the node verifies it against the CA and CRL
//!    ([`accept_grant`]), answers with its own ephemeral key in a *session accept*
//!    ([`ACCEPT_TYP`], ES256 with the node's certificate key), and both derive the session
//!    keys by HKDF-SHA256 ([`SessionKeys`]). The coordinator forwards both tokens and holds
//!    neither private key.
//! 2. **Per query** ([`Session::prove`]): an HS256 JWS ([`REQUEST_TYP`], `kid` = session id)
//!    over everything the node acts on ([`ProofClaims`]), with a fresh nonce per node and
//!    query (a nonce shared across nodes would be a join key).
//! 3. **At the node, before anything is read** ([`ProofGate::check`]): the session is live,
//!    the MAC verifies, the proof is for this federation and node, its time is within
//!    [`MAX_CLOCK_SKEW_SECS`], its nonce is new ([`ReplayCache`]), the session's certificate
//!    is not revoked, and the lookup asks exactly what was proven ([`check_request`]).
//!    Every failure is a typed [`ProofRefusal`] whose message never quotes a value.
//!
//! Public-key work happens once per session; a query costs one HMAC and a small JSON
//! parse per node. Nothing here opens a socket or reads a clock: "now" is an argument.
//! The same session derives one sealing key per direction beside [`REQUEST_MAC_LABEL`]
//! ([`SEAL_QUERY_LABEL`], [`SEAL_ANSWER_LABEL`]), used by [`crate::seal`]: every lookup's
//! subject and consent token are sealed to its node ([`Session::prove_sealed`], opened by
//! [`ProofGate::check`]), and every answer is sealed back to the requester
//! ([`NodeSession::seal_lookup_answer`], opened by [`Session::open_lookup_answer`]).

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use fedq_certs::jws::{self, CertificateKey, JwsError};
use fedq_certs::signing::{OfficerError, CLIENT_AUTH, SERVER_AUTH};
use fedq_certs::{FederationTrust, Role};
use ring::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey, X25519};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};
pub use rustls::pki_types::UnixTime;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::message::{LookupAnswer, LookupRequest, LookupTarget, MAX_CONSENT_LEN};
pub use crate::refusal::{ProofField, ProofRefusal};
use crate::resident_id::ResidentId;
use crate::seal::{self, sealed_sha256, SealRefusal};

/// `typ` of a requester's session grant (ES256).
pub const GRANT_TYP: &str = "fedq-session+jwt";
/// `typ` of a node's session accept (ES256).
pub const ACCEPT_TYP: &str = "fedq-session-accept+jwt";
/// `typ` of a requester's per-query proof (HS256 under the session's MAC key).
pub const REQUEST_TYP: &str = "fedq-request+jwt";
/// Longest session, in seconds (`exp - iat` of a grant).
pub const MAX_SESSION_SECS: u64 = 3600;
/// How far a grant's or a proof's `iat` may be from the node's clock, in seconds.
pub const MAX_CLOCK_SKEW_SECS: u64 = 300;
/// HKDF `info` prefix; the node's ephemeral public key and an output label follow it.
pub const HKDF_INFO: &[u8] = b"fedq session v1";
/// HKDF output label of the per-query MAC key.
pub const REQUEST_MAC_LABEL: &[u8] = b"fedq request mac";
/// HKDF output label of the key that seals queries, requester → node ([`crate::seal`]).
pub const SEAL_QUERY_LABEL: &[u8] = b"fedq seal query";
/// HKDF output label of the key that seals answers, node → requester ([`crate::seal`]).
pub const SEAL_ANSWER_LABEL: &[u8] = b"fedq seal answer";
/// Random bytes in a session id.
pub const SID_BYTES: usize = 16;
/// Random bytes in a nonce made by [`fresh_nonce`].
pub const NONCE_BYTES: usize = 16;
/// Shortest and longest nonce a node accepts, in characters.
pub const NONCE_LEN: std::ops::RangeInclusive<usize> = 16..=128;
/// Sessions a node keeps by default.
pub const DEFAULT_SESSIONS: usize = 65_536;
/// (session, nonce) pairs a node remembers by default (16-byte keys: about 40 MB full).
pub const DEFAULT_REPLAY_ENTRIES: usize = 1 << 20;

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn sha256_b64(text: &[u8]) -> String {
    b64(ring::digest::digest(&ring::digest::SHA256, text).as_ref())
}

fn decode_fixed<const N: usize>(text: &str) -> Option<[u8; N]> {
    let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
    bytes.try_into().ok()
}

fn random<const N: usize>() -> Result<[u8; N], ProofError> {
    let mut out = [0u8; N];
    SystemRandom::new()
        .fill(&mut out)
        .map_err(|_| ProofError::Internal("the system random source failed"))?;
    Ok(out)
}

/// A sealed answer's plaintext is padded with zero bytes to a multiple of this many
/// bytes, so that its size tells the relay less: answers that stay under the same step —
/// a view's part (a green channel's finding, a blacklist source with or without one
/// listing), a one-dataset "no record" beside a record of few fields — seal to the same
/// length. Answers that cross a step (many records, records of many fields, several
/// datasets) still differ by steps of this size, and the relay sees it.
pub const ANSWER_PADDING: usize = 512;

/// Why a requester could not open a node's sealed answer. Never quotes the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AnswerRefusal {
    /// The JWE does not open under the session, for this node and this query.
    #[error("its sealed answer does not open: {0}")]
    Sealed(SealRefusal),
    /// It opened, but its content is not a lookup answer (or its padding is not zeros).
    #[error("its sealed answer opened but is not a lookup answer")]
    Content,
}

impl AnswerRefusal {
    /// A short stable name for reports.
    pub fn code(self) -> &'static str {
        match self {
            AnswerRefusal::Sealed(r) => r.code(),
            AnswerRefusal::Content => "content",
        }
    }
}

/// The nonce of a proof this requester made (its binding for the sealed subject and the
/// node's sealed answer); the proof is not verified: it is the requester's own.
pub fn proof_nonce(proof: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Nonce {
        nonce: String,
    }
    let parts = jws::parse(proof, "HS256", REQUEST_TYP).ok()?;
    serde_json::from_slice::<Nonce>(&parts.payload)
        .ok()
        .map(|n| n.nonce)
}

/// A fresh random nonce for one proof (16 bytes, base64url).
pub fn fresh_nonce() -> Result<String, ProofError> {
    Ok(b64(&random::<NONCE_BYTES>()?))
}

/// What a requester seals to each node it asks ([`Session::prove_sealed`]): the person
/// and the consent token. Only that node can open it; the coordinator forwards ciphertext.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedSubject {
    /// The person asked about.
    pub sub: ResidentId,
    /// The subject's consent token (compact ES256 JWS, `fedq-consent+jwt`), if any: the
    /// node verifies it itself.
    pub consent: Option<String>,
    /// What the person files, for a lookup exercising a right that files something (an
    /// objection, a repair application): the record and the person's words, which the
    /// coordinator must not read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filing: Option<crate::rights::Filing>,
}

impl fmt::Debug for SealedSubject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedSubject")
            .field("consent", &self.consent.is_some())
            .finish_non_exhaustive()
    }
}

/// A requester-side failure to open a session or make a proof. Never quotes a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The node's accept does not verify (signature, certificate, role, CRL).
    #[error("the node's session accept does not verify: {0}")]
    Accept(String),
    /// The accept verified but is for another node, federation, session or grant.
    #[error("the node's session accept does not answer this grant: {0}")]
    Mismatch(&'static str),
    /// Signing, randomness or key agreement failed.
    #[error("cannot make the session: {0}")]
    Internal(&'static str),
}

/// Why a node refused to open a session. Never quotes the grant or a value in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantRefusal {
    /// The grant's signature or certificate does not count.
    #[error("the session grant does not verify: {0}")]
    Signature(String),
    /// The payload is not the grant's JSON shape, or a key or id has the wrong length.
    #[error("the session grant's payload is not a fedq session grant: {0}")]
    Malformed(&'static str),
    /// The grant is for another federation or node.
    #[error("the session grant was made for another federation or node; ask this node's own name")]
    Misdirected,
    /// `iat` is more than [`MAX_CLOCK_SKEW_SECS`] from the node's clock.
    #[error("the session grant's issue time is more than 300 s from this node's clock; check the requester's clock")]
    Clock,
    /// `exp` is not after `iat`, more than [`MAX_SESSION_SECS`] after it, or already past.
    #[error("the session grant's lifetime must be at most 3600 s and not over; make a new grant")]
    Lifetime,
    /// A live session already has this id.
    #[error("the session id is already in use at this node; make a new grant")]
    SessionReused,
    /// The node could not sign its accept or agree the key.
    #[error("the node could not open the session: {0}")]
    Internal(&'static str),
}

/// One line for a JWS failure, from fixed texts only (a certificate that does not parse
/// may carry anything, so its parser's words are not repeated).
fn jws_line(e: &JwsError) -> String {
    match e {
        JwsError::Signer(OfficerError::Malformed(_)) => {
            "the signing certificate is not a fedq certificate".into()
        }
        other => other.to_string(),
    }
}

/// The keys a session agreed. `Debug` shows none of them; they zeroize on drop.
///
/// One key per use: the per-query MAC key, and one sealing key per direction, so that
/// a sealed query can never be opened as a sealed answer or the other way round.
pub struct SessionKeys {
    mac: Zeroizing<[u8; 32]>,
    seal_query: Zeroizing<[u8; 32]>,
    seal_answer: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKeys(..)")
    }
}

impl SessionKeys {
    /// HKDF-SHA256 of the X25519 shared secret `z`: salt = SHA-256(grant text), info =
    /// [`HKDF_INFO`] ‖ node's ephemeral public key ‖ label, one expansion per label
    /// ([`REQUEST_MAC_LABEL`], [`SEAL_QUERY_LABEL`], [`SEAL_ANSWER_LABEL`]).
    pub(crate) fn derive(z: &[u8], grant: &str, node_epk: &[u8]) -> Result<Self, ProofError> {
        let digest = ring::digest::digest(&ring::digest::SHA256, grant.as_bytes());
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, digest.as_ref()).extract(z);
        let expand = |label: &[u8]| {
            let mut key = Zeroizing::new([0u8; 32]);
            prk.expand(&[HKDF_INFO, node_epk, label], hkdf::HKDF_SHA256)
                .and_then(|okm| okm.fill(key.as_mut()))
                .map_err(|_| ProofError::Internal("key derivation failed"))?;
            Ok::<_, ProofError>(key)
        };
        Ok(Self {
            mac: expand(REQUEST_MAC_LABEL)?,
            seal_query: expand(SEAL_QUERY_LABEL)?,
            seal_answer: expand(SEAL_ANSWER_LABEL)?,
        })
    }

    /// The per-query MAC key (HS256).
    pub fn mac_key(&self) -> &[u8] {
        self.mac.as_ref()
    }

    /// The key that seals queries, requester → node (AES-256-GCM, [`crate::seal`]).
    pub(crate) fn seal_query_key(&self) -> &[u8; 32] {
        &self.seal_query
    }

    /// The key that seals answers, node → requester (AES-256-GCM, [`crate::seal`]).
    pub(crate) fn seal_answer_key(&self) -> &[u8; 32] {
        &self.seal_answer
    }
}

/// A session grant's payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionGrant {
    /// Federation.
    pub fed: String,
    /// The node the session is with.
    pub node: String,
    /// Session id: 16 random bytes, base64url.
    pub sid: String,
    /// The requester's ephemeral X25519 public key, base64url.
    pub epk: String,
    /// Issued at (unix seconds).
    pub iat: u64,
    /// Expires at (unix seconds); at most [`MAX_SESSION_SECS`] after `iat`.
    pub exp: u64,
}

/// A session accept's payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionAccept {
    /// Federation.
    pub fed: String,
    /// The node.
    pub node: String,
    /// The grant's session id.
    pub sid: String,
    /// The node's ephemeral X25519 public key, base64url.
    pub epk: String,
    /// base64url SHA-256 of the grant's compact text.
    pub grant: String,
    /// When the session ends (unix seconds).
    pub exp: u64,
}

impl SessionGrant {
    /// Makes a grant for `node` of `federation`, signed with the requester's certificate
    /// key, valid [`MAX_SESSION_SECS`] from `now`. Returns the compact JWS to send and the
    /// half-open session that holds the ephemeral private key.
    #[allow(clippy::new_ret_no_self)] // the grant is only ever wanted with its session
    pub fn new(
        key: &CertificateKey,
        federation: &str,
        node: &str,
        now: UnixTime,
    ) -> Result<(String, PendingSession), ProofError> {
        Self::with_lifetime(key, federation, node, now, MAX_SESSION_SECS)
    }

    /// [`SessionGrant::new`] for a session of `lifetime_secs` (a node refuses more than
    /// [`MAX_SESSION_SECS`]).
    pub fn with_lifetime(
        key: &CertificateKey,
        federation: &str,
        node: &str,
        now: UnixTime,
        lifetime_secs: u64,
    ) -> Result<(String, PendingSession), ProofError> {
        let rng = SystemRandom::new();
        let private = EphemeralPrivateKey::generate(&X25519, &rng)
            .map_err(|_| ProofError::Internal("cannot make an X25519 key"))?;
        let public = private
            .compute_public_key()
            .map_err(|_| ProofError::Internal("cannot make an X25519 key"))?;
        let iat = now.as_secs();
        let claims = SessionGrant {
            fed: federation.to_owned(),
            node: node.to_owned(),
            sid: b64(&random::<SID_BYTES>()?),
            epk: b64(public.as_ref()),
            iat,
            exp: iat + lifetime_secs,
        };
        let payload = serde_json::to_vec(&claims)
            .map_err(|_| ProofError::Internal("cannot encode the grant"))?;
        let grant = jws::sign_es256(key, GRANT_TYP, &payload)
            .map_err(|_| ProofError::Internal("cannot sign the grant"))?;
        let pending = PendingSession {
            claims,
            grant: grant.clone(),
            private,
        };
        Ok((grant, pending))
    }
}

/// A grant sent, its accept not yet seen. Holds the ephemeral private key (used once).
pub struct PendingSession {
    claims: SessionGrant,
    grant: String,
    private: EphemeralPrivateKey,
}

impl fmt::Debug for PendingSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingSession")
            .field("node", &self.claims.node)
            .finish_non_exhaustive()
    }
}

impl PendingSession {
    /// The node this grant is for.
    pub fn node(&self) -> &str {
        &self.claims.node
    }

    /// Verifies the node's accept (a `node` certificate of this federation with
    /// serverAuth, named as the grant's node, not revoked; the grant's session id and
    /// hash) and derives the session keys.
    pub fn complete(
        self,
        accept: &str,
        trust: &FederationTrust,
        now: UnixTime,
    ) -> Result<Session, ProofError> {
        let v = trust
            .verify_es256(accept, ACCEPT_TYP, Role::Node, SERVER_AUTH, now, true)
            .map_err(|e| ProofError::Accept(jws_line(&e)))?;
        if v.signer.identity.name != self.claims.node
            || v.signer.identity.federation != self.claims.fed
        {
            return Err(ProofError::Mismatch(
                "it is signed by another node's certificate",
            ));
        }
        let claims: SessionAccept = serde_json::from_slice(&v.payload)
            .map_err(|_| ProofError::Mismatch("its payload is not a session accept"))?;
        if claims.fed != self.claims.fed || claims.node != self.claims.node {
            return Err(ProofError::Mismatch("it names another federation or node"));
        }
        if claims.sid != self.claims.sid || claims.grant != sha256_b64(self.grant.as_bytes()) {
            return Err(ProofError::Mismatch("it answers another grant"));
        }
        if claims.exp > self.claims.exp || claims.exp <= now.as_secs() {
            return Err(ProofError::Mismatch(
                "its expiry is past or beyond the grant's",
            ));
        }
        let node_epk = decode_fixed::<32>(&claims.epk)
            .ok_or(ProofError::Mismatch("its key is not an X25519 public key"))?;
        let keys = agreement::agree_ephemeral(
            self.private,
            &UnparsedPublicKey::new(&X25519, node_epk),
            |z| SessionKeys::derive(z, &self.grant, &node_epk),
        )
        .map_err(|_| ProofError::Internal("key agreement failed"))??;
        let node_public_key = fedq_certs::jws::certificate_public_key(&v.certificate).ok_or(
            ProofError::Mismatch("its certificate's public key cannot be read"),
        )?;
        Ok(Session {
            node_public_key,
            fed: claims.fed,
            sid: claims.sid,
            node: claims.node,
            exp: claims.exp,
            keys,
        })
    }
}

/// A requester's open session with one node.
#[derive(Debug)]
pub struct Session {
    /// Federation.
    pub fed: String,
    /// Session id (the proofs' `kid`).
    pub sid: String,
    /// The node.
    pub node: String,
    /// When it ends (unix seconds).
    pub exp: u64,
    /// The agreed keys.
    pub keys: SessionKeys,
    /// The public key (uncompressed P-256) of the node certificate that signed the
    /// accept: the node's audit receipts are checked against it.
    pub node_public_key: Vec<u8>,
}

impl Session {
    /// Whether the session is still usable at `now` (with a minute's margin, so a proof
    /// made now does not arrive after its end).
    pub fn is_live(&self, now: UnixTime) -> bool {
        now.as_secs() + 60 < self.exp
    }

    /// The proof of one query to this session's node: `claims` with `fed`, `node`, `iat`
    /// and `nonce` set here, as an HS256 JWS under the session's MAC key.
    pub fn prove(&self, claims: &ProofClaims, now: UnixTime, nonce: &str) -> String {
        let mut claims = claims.clone();
        claims.fed.clone_from(&self.fed);
        claims.node.clone_from(&self.node);
        claims.iat = now.as_secs();
        nonce.clone_into(&mut claims.nonce);
        // Plain strings and numbers always encode; an empty payload would only be refused.
        let payload = serde_json::to_vec(&claims).unwrap_or_default();
        jws::sign_hs256(self.keys.mac_key(), &self.sid, REQUEST_TYP, &payload)
    }

    /// Seals `subject` to this session's node, bound to `nonce`, and proves `claims` with
    /// the sealed payload's hash in them: `(proof, sealed)`, both for this node and query
    /// alone (a fresh nonce per node and query).
    pub fn prove_sealed(
        &self,
        claims: &ProofClaims,
        subject: &SealedSubject,
        now: UnixTime,
        nonce: &str,
    ) -> Result<(String, String), ProofError> {
        let plaintext = Zeroizing::new(
            serde_json::to_vec(subject)
                .map_err(|_| ProofError::Internal("cannot encode the sealed subject"))?,
        );
        let sealed = self
            .seal_query(&plaintext, nonce)
            .map_err(|_| ProofError::Internal("cannot seal the subject"))?;
        let mut claims = claims.clone();
        claims.sealed = sealed_sha256(&sealed);
        Ok((self.prove(&claims, now, nonce), sealed))
    }
}

/// What a proof's target names: a view, or datasets with their fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProofTarget {
    /// `{"view": NAME}`.
    View(String),
    /// `{"datasets": [{"dataset", "fields": [..] | null}]}`.
    Datasets(Vec<ProofDataset>),
    /// `{"rights": {"right", "dataset"}}`.
    Rights(crate::rights::RightsTarget),
    /// `{"aggregate": {"datasets", "by", "from_year", "to_year"}}`: a statistics query.
    Aggregate(fedq_policy::statistics::AggregateTarget),
}

/// One dataset of a proof's target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofDataset {
    /// `department.dataset`.
    pub dataset: String,
    /// Field names, or `null` for every field.
    pub fields: Option<Vec<String>>,
}

impl From<&LookupTarget> for ProofTarget {
    fn from(t: &LookupTarget) -> Self {
        match t {
            LookupTarget::View(v) => ProofTarget::View(v.clone()),
            LookupTarget::Datasets(ds) => ProofTarget::Datasets(
                ds.iter()
                    .map(|d| ProofDataset {
                        dataset: d.dataset.clone(),
                        fields: d.fields.clone(),
                    })
                    .collect(),
            ),
            LookupTarget::Rights(r) => ProofTarget::Rights(r.clone()),
        }
    }
}

/// A per-query proof's payload. The requester builds it from its query
/// ([`ProofClaims::new`]); [`Session::prove`] fills `fed`, `node`, `iat` and `nonce`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofClaims {
    /// Federation.
    pub fed: String,
    /// The node this proof is for.
    pub node: String,
    /// base64url SHA-256 of the sealed subject sent to this node
    /// ([`crate::seal::sealed_sha256`]): the MAC covers which sealed payload goes with
    /// this proof, so none can be swapped in from another node or query.
    pub sealed: String,
    /// Declared purpose.
    pub purpose: String,
    /// Cited legal basis.
    pub basis: Option<String>,
    /// The case the query serves.
    pub case: Option<String>,
    /// What the whole query asks (each node checks what it is asked is part of it).
    pub target: ProofTarget,
    /// Made at (unix seconds).
    pub iat: u64,
    /// Random, fresh per node and query.
    pub nonce: String,
}

impl fmt::Debug for ProofClaims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProofClaims")
            .field("node", &self.node)
            .field("iat", &self.iat)
            .finish_non_exhaustive()
    }
}

impl ProofClaims {
    /// The claims of a query, before [`Session::prove_sealed`] adds the sealed subject's
    /// hash and the node's, federation's, time and nonce.
    pub fn new(
        purpose: &str,
        basis: Option<&str>,
        case: Option<&str>,
        target: ProofTarget,
    ) -> Self {
        Self {
            fed: String::new(),
            node: String::new(),
            sealed: String::new(),
            purpose: purpose.to_owned(),
            basis: basis.map(str::to_owned),
            case: case.map(str::to_owned),
            target,
            iat: 0,
            nonce: String::new(),
        }
    }

    /// The claims that prove exactly `lookup` (its target as asked of one node), for
    /// [`Session::prove_sealed`] to seal a subject to.
    pub fn of_lookup(lookup: &LookupRequest) -> Self {
        Self::new(
            &lookup.purpose,
            lookup.legal_basis.as_deref(),
            lookup.case_reference.as_deref(),
            ProofTarget::from(&lookup.target),
        )
    }
}

/// A node's half of a session.
pub struct NodeSession {
    /// Session id.
    pub sid: String,
    /// Federation.
    pub fed: String,
    /// This node's name.
    pub node: String,
    /// The requester the grant's certificate names (`agency.office`).
    pub requester: String,
    /// That certificate's serial (lower-case hex), checked against the CRL per query.
    pub serial: String,
    /// When the session ends (unix seconds).
    pub exp: u64,
    pub(crate) keys: SessionKeys,
}

impl fmt::Debug for NodeSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeSession")
            .field("requester", &self.requester)
            .field("exp", &self.exp)
            .finish_non_exhaustive()
    }
}

/// A proof that verified under its session: who it proves and what.
#[derive(Clone, Debug)]
pub struct ProvenRequest {
    /// Session id.
    pub sid: String,
    /// The requester the session proves.
    pub requester: String,
    /// Its certificate's serial.
    pub serial: String,
    /// What was proven.
    pub claims: ProofClaims,
}

/// A lookup whose proof held, with its sealed subject opened.
#[derive(Clone, Debug)]
pub struct Opened {
    /// Who asks and what they proved.
    pub proven: ProvenRequest,
    /// The person and the consent token (personal data: never log them).
    pub subject: SealedSubject,
    /// The session it was proven under, which seals the answer
    /// ([`NodeSession::seal_lookup_answer`]).
    pub session: Arc<NodeSession>,
}

/// Verifies a requester's session grant at the node `node` of `federation` (a requester
/// certificate of this federation with clientAuth, not revoked by a fresh CRL; `iat`
/// within [`MAX_CLOCK_SKEW_SECS`]; lifetime at most [`MAX_SESSION_SECS`] and not over),
/// agrees the keys, and signs the accept with the node's certificate key. Whether the
/// session id is new is the [`SessionTable`]'s check.
pub fn accept_grant(
    grant: &str,
    trust: &FederationTrust,
    node_key: &CertificateKey,
    federation: &str,
    node: &str,
    now: UnixTime,
) -> Result<(String, NodeSession), GrantRefusal> {
    let v = trust
        .verify_es256(grant, GRANT_TYP, Role::Requester, CLIENT_AUTH, now, true)
        .map_err(|e| GrantRefusal::Signature(jws_line(&e)))?;
    let claims: SessionGrant = serde_json::from_slice(&v.payload)
        .map_err(|_| GrantRefusal::Malformed("not the grant's JSON object"))?;
    if claims.fed != federation || claims.node != node || v.signer.identity.federation != federation
    {
        return Err(GrantRefusal::Misdirected);
    }
    let now_s = now.as_secs();
    if claims.iat.abs_diff(now_s) > MAX_CLOCK_SKEW_SECS {
        return Err(GrantRefusal::Clock);
    }
    if claims.exp <= claims.iat || claims.exp - claims.iat > MAX_SESSION_SECS || claims.exp <= now_s
    {
        return Err(GrantRefusal::Lifetime);
    }
    decode_fixed::<SID_BYTES>(&claims.sid).ok_or(GrantRefusal::Malformed(
        "the session id is not 16 bytes of base64url",
    ))?;
    let requester_epk = decode_fixed::<32>(&claims.epk).ok_or(GrantRefusal::Malformed(
        "the key is not an X25519 public key",
    ))?;
    let rng = SystemRandom::new();
    let private = EphemeralPrivateKey::generate(&X25519, &rng)
        .map_err(|_| GrantRefusal::Internal("cannot make an X25519 key"))?;
    let public = private
        .compute_public_key()
        .map_err(|_| GrantRefusal::Internal("cannot make an X25519 key"))?;
    let node_epk = public.as_ref().to_vec();
    let keys = agreement::agree_ephemeral(
        private,
        &UnparsedPublicKey::new(&X25519, requester_epk),
        |z| SessionKeys::derive(z, grant, &node_epk),
    )
    .map_err(|_| GrantRefusal::Malformed("the key is not an X25519 public key"))?
    .map_err(|_| GrantRefusal::Internal("key derivation failed"))?;
    let accept = SessionAccept {
        fed: federation.to_owned(),
        node: node.to_owned(),
        sid: claims.sid.clone(),
        epk: b64(&node_epk),
        grant: sha256_b64(grant.as_bytes()),
        exp: claims.exp,
    };
    let payload = serde_json::to_vec(&accept)
        .map_err(|_| GrantRefusal::Internal("cannot encode the accept"))?;
    let accept = jws::sign_es256(node_key, ACCEPT_TYP, &payload)
        .map_err(|_| GrantRefusal::Internal("cannot sign the accept"))?;
    Ok((
        accept,
        NodeSession {
            sid: claims.sid,
            fed: federation.to_owned(),
            node: node.to_owned(),
            requester: v.signer.identity.name,
            serial: v.signer.serial,
            exp: claims.exp,
            keys,
        },
    ))
}

/// The `kid` of a proof (its session id), without verifying anything.
pub fn proof_session_id(proof: &str) -> Result<String, ProofRefusal> {
    if proof.is_empty() {
        return Err(ProofRefusal::Missing);
    }
    let parts = jws::parse(proof, "HS256", REQUEST_TYP).map_err(|_| ProofRefusal::Malformed)?;
    parts
        .kid()
        .map(str::to_owned)
        .ok_or(ProofRefusal::Malformed)
}

impl NodeSession {
    /// Verifies a proof under this session at `now`: `kid` is this session and it is live,
    /// the MAC, this federation and node, `iat` within [`MAX_CLOCK_SKEW_SECS`], a nonce of
    /// acceptable length. Replay, revocation and the lookup itself are checked by
    /// [`ProofGate::check`] (or [`ReplayCache`] and [`check_request`]).
    pub fn verify(&self, proof: &str, now: UnixTime) -> Result<ProvenRequest, ProofRefusal> {
        if proof.is_empty() {
            return Err(ProofRefusal::Missing);
        }
        let parts = jws::parse(proof, "HS256", REQUEST_TYP).map_err(|_| ProofRefusal::Malformed)?;
        if parts.kid() != Some(self.sid.as_str()) || self.exp <= now.as_secs() {
            return Err(ProofRefusal::UnknownSession);
        }
        parts
            .verify_hs256(self.keys.mac_key())
            .map_err(|_| ProofRefusal::BadMac)?;
        let claims: ProofClaims =
            serde_json::from_slice(&parts.payload).map_err(|_| ProofRefusal::Malformed)?;
        if claims.fed != self.fed || claims.node != self.node {
            return Err(ProofRefusal::Misdirected);
        }
        if claims.iat.abs_diff(now.as_secs()) > MAX_CLOCK_SKEW_SECS {
            return Err(ProofRefusal::Stale);
        }
        if !NONCE_LEN.contains(&claims.nonce.len()) {
            return Err(ProofRefusal::Malformed);
        }
        Ok(ProvenRequest {
            sid: self.sid.clone(),
            requester: self.requester.clone(),
            serial: self.serial.clone(),
            claims,
        })
    }

    /// Opens a lookup's sealed subject under this session, bound to the proof's nonce
    /// (whose claims already cover the payload's hash, [`check_request`]).
    pub fn open_subject(
        &self,
        proven: &ProvenRequest,
        sealed: &str,
    ) -> Result<SealedSubject, ProofRefusal> {
        let plaintext = self
            .open_query(sealed, &proven.claims.nonce)
            .map_err(ProofRefusal::Sealed)?;
        let subject: SealedSubject =
            serde_json::from_slice(&plaintext).map_err(|_| ProofRefusal::SealedContent)?;
        if subject
            .consent
            .as_ref()
            .is_some_and(|c| c.is_empty() || c.len() > MAX_CONSENT_LEN)
        {
            return Err(ProofRefusal::SealedContent);
        }
        Ok(subject)
    }
}

/// Whether `lookup` asks exactly what `proven` proves: the requester the session proves,
/// the sealed subject (by its hash), purpose, legal basis and case reference, and a target
/// that is the proven one restricted to this node (the same view; each dataset asked is
/// one the proof names, with the same fields).
pub fn check_request(proven: &ProvenRequest, lookup: &LookupRequest) -> Result<(), ProofRefusal> {
    let c = &proven.claims;
    let altered = |f| Err(ProofRefusal::Altered(f));
    if proven.requester != lookup.requester {
        return altered(ProofField::Requester);
    }
    if lookup.sealed.len() > crate::message::MAX_SEALED_SUBJECT_LEN {
        return Err(ProofRefusal::Sealed(SealRefusal::TooLarge));
    }
    if c.sealed != sealed_sha256(&lookup.sealed) {
        return altered(ProofField::Sealed);
    }
    if c.purpose != lookup.purpose {
        return altered(ProofField::Purpose);
    }
    if c.basis != lookup.legal_basis {
        return altered(ProofField::Basis);
    }
    if c.case != lookup.case_reference {
        return altered(ProofField::Case);
    }
    let target_ok = match (&c.target, &lookup.target) {
        (ProofTarget::View(p), LookupTarget::View(a)) => p == a,
        (ProofTarget::Rights(p), LookupTarget::Rights(a)) => p == a,
        (ProofTarget::Datasets(proven), LookupTarget::Datasets(asked)) => {
            !asked.is_empty()
                && asked.iter().all(|a| {
                    proven
                        .iter()
                        .any(|p| p.dataset == a.dataset && p.fields == a.fields)
                })
        }
        _ => false,
    };
    if !target_ok {
        return altered(ProofField::Target);
    }
    Ok(())
}

/// The (session, nonce) pairs seen while their proofs could still be accepted. Bounded:
/// entries leave once their `iat` is past the window; when it is full of live entries, a
/// new proof is refused ([`ProofRefusal::Busy`]) rather than an entry forgotten early.
#[derive(Debug)]
pub struct ReplayCache {
    seen: HashSet<u128>,
    by_expiry: BinaryHeap<Reverse<(u64, u128)>>,
    capacity: usize,
}

impl ReplayCache {
    /// A cache of at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            seen: HashSet::new(),
            by_expiry: BinaryHeap::new(),
            capacity,
        }
    }

    fn key(sid: &str, nonce: &str) -> u128 {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(&(sid.len() as u64).to_be_bytes());
        ctx.update(sid.as_bytes());
        ctx.update(nonce.as_bytes());
        let d = ctx.finish();
        let mut k = [0u8; 16];
        k.iter_mut().zip(d.as_ref()).for_each(|(k, d)| *k = *d);
        u128::from_be_bytes(k)
    }

    /// Records the proof `(sid, nonce)` made at `iat`; refuses one already seen.
    pub fn insert(
        &mut self,
        sid: &str,
        nonce: &str,
        iat: u64,
        now: u64,
    ) -> Result<(), ProofRefusal> {
        while let Some(Reverse((exp, key))) = self.by_expiry.peek().copied() {
            if exp >= now {
                break;
            }
            self.by_expiry.pop();
            self.seen.remove(&key);
        }
        let key = Self::key(sid, nonce);
        if self.seen.contains(&key) {
            return Err(ProofRefusal::Replayed);
        }
        if self.seen.len() >= self.capacity {
            return Err(ProofRefusal::Busy);
        }
        self.seen.insert(key);
        self.by_expiry
            .push(Reverse((iat + MAX_CLOCK_SKEW_SECS, key)));
        Ok(())
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// A node's live sessions by id. Bounded twice: one requester holds at most
/// [`SESSIONS_PER_REQUESTER`] (its own soonest-ending session makes room for its next, so
/// one office opening sessions in a loop cannot push the others' out), and the table at
/// most its capacity (expired sessions leave first; when it is still full, the one that
/// ends soonest makes room, and its requester opens a new one).
#[derive(Debug)]
pub struct SessionTable {
    by_sid: HashMap<String, Arc<NodeSession>>,
    by_exp: BTreeSet<(u64, String)>,
    by_requester: HashMap<String, BTreeSet<(u64, String)>>,
    capacity: usize,
}

/// Live sessions one requester may hold at one node: 1/64 of the default table. Each of a
/// client's connections holds one per node (renewed a minute before it ends), so an
/// office's load generator or gateway with hundreds of connections fits; one requester
/// opening sessions in a loop still leaves the other 63/64 of the table to the others.
pub const SESSIONS_PER_REQUESTER: usize = 1024;

impl SessionTable {
    /// A table of at most `capacity` sessions (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            by_sid: HashMap::new(),
            by_exp: BTreeSet::new(),
            by_requester: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    fn purge(&mut self, now: u64) {
        while let Some((exp, sid)) = self.by_exp.first().cloned() {
            if exp > now {
                break;
            }
            self.remove(&sid);
        }
    }

    /// Adds a session; refuses an id a live session has.
    pub fn insert(&mut self, session: NodeSession, now: UnixTime) -> Result<(), GrantRefusal> {
        self.insert_within(session, now, SESSIONS_PER_REQUESTER)
    }

    /// [`SessionTable::insert`] with at most `per_requester` live sessions per requester.
    pub fn insert_within(
        &mut self,
        session: NodeSession,
        now: UnixTime,
        per_requester: usize,
    ) -> Result<(), GrantRefusal> {
        let per_requester = per_requester.max(1);
        self.purge(now.as_secs());
        if self.by_sid.contains_key(&session.sid) {
            return Err(GrantRefusal::SessionReused);
        }
        let own_oldest = self
            .by_requester
            .get(&session.requester)
            .filter(|held| held.len() >= per_requester)
            .and_then(|held| held.first().map(|(_, sid)| sid.clone()));
        if let Some(sid) = own_oldest {
            self.remove(&sid);
        }
        if self.by_sid.len() >= self.capacity {
            if let Some((_, sid)) = self.by_exp.first().cloned() {
                self.remove(&sid);
            }
        }
        self.by_exp.insert((session.exp, session.sid.clone()));
        self.by_requester
            .entry(session.requester.clone())
            .or_default()
            .insert((session.exp, session.sid.clone()));
        self.by_sid.insert(session.sid.clone(), Arc::new(session));
        Ok(())
    }

    /// Live sessions `requester` holds.
    pub fn held_by(&self, requester: &str) -> usize {
        self.by_requester.get(requester).map_or(0, BTreeSet::len)
    }

    /// The live session `sid` at `now`.
    pub fn get(&self, sid: &str, now: UnixTime) -> Option<Arc<NodeSession>> {
        self.by_sid
            .get(sid)
            .filter(|s| s.exp > now.as_secs())
            .cloned()
    }

    /// Ends a session.
    pub fn remove(&mut self, sid: &str) {
        if let Some(s) = self.by_sid.remove(sid) {
            let key = (s.exp, s.sid.clone());
            self.by_exp.remove(&key);
            if let Some(held) = self.by_requester.get_mut(&s.requester) {
                held.remove(&key);
                if held.is_empty() {
                    self.by_requester.remove(&s.requester);
                }
            }
        }
    }

    /// Ends every session whose certificate `revoked` says is revoked; returns how many.
    pub fn close_revoked(&mut self, revoked: impl Fn(&str) -> bool) -> usize {
        let gone: Vec<String> = self
            .by_sid
            .values()
            .filter(|s| revoked(&s.serial))
            .map(|s| s.sid.clone())
            .collect();
        for sid in &gone {
            self.remove(sid);
        }
        gone.len()
    }

    /// Sessions held.
    pub fn len(&self) -> usize {
        self.by_sid.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.by_sid.is_empty()
    }
}

/// A refused proof: why, and the requester the session proves if the MAC verified (so
/// the node's audit entry names who really asked, or nobody).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// Why.
    pub reason: ProofRefusal,
    /// The requester the session proves, once the MAC verified; else `None`.
    pub proven_requester: Option<String>,
}

/// A node's sessions and replay cache behind locks held only for a lookup or an insert:
/// the MAC and the JSON parse run outside them.
#[derive(Debug)]
pub struct ProofGate {
    federation: String,
    node: String,
    sessions: Mutex<SessionTable>,
    replay: Mutex<ReplayCache>,
}

impl ProofGate {
    /// The gate of node `node` of `federation`, with room for `sessions` sessions and
    /// `replay_entries` remembered proofs.
    pub fn new(federation: &str, node: &str, sessions: usize, replay_entries: usize) -> Self {
        Self {
            federation: federation.to_owned(),
            node: node.to_owned(),
            sessions: Mutex::new(SessionTable::new(sessions)),
            replay: Mutex::new(ReplayCache::new(replay_entries)),
        }
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, SessionTable> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens a session from a grant ([`accept_grant`]) and keeps it; returns the accept
    /// and the requester the grant's certificate names.
    pub fn open(
        &self,
        grant: &str,
        trust: &FederationTrust,
        node_key: &CertificateKey,
        now: UnixTime,
    ) -> Result<(String, String), GrantRefusal> {
        let (accept, session) =
            accept_grant(grant, trust, node_key, &self.federation, &self.node, now)?;
        let requester = session.requester.clone();
        self.sessions().insert(session, now)?;
        Ok((accept, requester))
    }

    /// Checks a lookup's proof, in order: a live session, the MAC, federation and node,
    /// time, a new nonce, the session's certificate not revoked now (`is_revoked` of its
    /// serial; a revoked one also ends the session), [`check_request`]; then opens the
    /// sealed subject under the session ([`NodeSession::open_subject`]).
    pub fn check(
        &self,
        lookup: &LookupRequest,
        is_revoked: impl Fn(&str) -> bool,
        now: UnixTime,
    ) -> Result<Opened, Refused> {
        let (proven, session) = self.prove(&lookup.proof, is_revoked, now)?;
        let named = |reason| Refused {
            reason,
            proven_requester: Some(session.requester.clone()),
        };
        check_request(&proven, lookup).map_err(named)?;
        let subject = session
            .open_subject(&proven, &lookup.sealed)
            .map_err(named)?;
        Ok(Opened {
            proven,
            subject,
            session,
        })
    }

    /// The checks every proof gets, in order: a live session, the MAC, federation and
    /// node, time ([`NodeSession::verify`]), a new nonce, the session's certificate not
    /// revoked now (a revoked one also ends the session). What the proof is for is the
    /// caller's to check.
    fn prove(
        &self,
        proof: &str,
        is_revoked: impl Fn(&str) -> bool,
        now: UnixTime,
    ) -> Result<(ProvenRequest, Arc<NodeSession>), Refused> {
        let anonymous = |reason| Refused {
            reason,
            proven_requester: None,
        };
        let sid = proof_session_id(proof).map_err(anonymous)?;
        let session = self
            .sessions()
            .get(&sid, now)
            .ok_or(anonymous(ProofRefusal::UnknownSession))?;
        let proven = session.verify(proof, now).map_err(anonymous)?;
        let named = |reason| Refused {
            reason,
            proven_requester: Some(session.requester.clone()),
        };
        self.replay
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(&sid, &proven.claims.nonce, proven.claims.iat, now.as_secs())
            .map_err(named)?;
        if is_revoked(&session.serial) {
            self.sessions().remove(&sid);
            return Err(named(ProofRefusal::Revoked));
        }
        Ok((proven, session))
    }

    /// Checks an aggregate query's proof, in the same order as [`ProofGate::check`]: a
    /// live session, the MAC, federation and node, time, a new nonce, the certificate not
    /// revoked; then that the request is exactly what was proven (requester, purpose,
    /// legal basis, no case, no sealed payload, the same target).
    pub fn check_aggregate(
        &self,
        request: &crate::message::AggregateRequest,
        is_revoked: impl Fn(&str) -> bool,
        now: UnixTime,
    ) -> Result<ProvenRequest, Refused> {
        let (proven, session) = self.prove(&request.proof, is_revoked, now)?;
        let named = |reason| Refused {
            reason,
            proven_requester: Some(session.requester.clone()),
        };
        let c = &proven.claims;
        let field = if proven.requester != request.requester {
            Some(ProofField::Requester)
        } else if !c.sealed.is_empty() {
            Some(ProofField::Sealed)
        } else if c.purpose != request.purpose {
            Some(ProofField::Purpose)
        } else if c.basis != request.legal_basis {
            Some(ProofField::Basis)
        } else if c.case.is_some() {
            Some(ProofField::Case)
        } else if c.target != ProofTarget::Aggregate(request.target.clone()) {
            Some(ProofField::Target)
        } else {
            None
        };
        if let Some(f) = field {
            return Err(named(ProofRefusal::Altered(f)));
        }
        Ok(proven)
    }

    /// Ends every session whose certificate is now revoked (after a CRL reload).
    pub fn close_revoked(&self, is_revoked: impl Fn(&str) -> bool) -> usize {
        self.sessions().close_revoked(is_revoked)
    }

    /// Live sessions held (for metrics).
    pub fn sessions_held(&self) -> usize {
        self.sessions().len()
    }
}

// Sealing over a session: the JWE itself is `crate::seal`'s; the keys, session id and
// node are the session's.
impl Session {
    /// Seals `plaintext` to this session's node as a [`seal::QUERY_TYP`] JWE bound to `binding`
    /// (the integration: the per-node proof's nonce), under the query-direction key.
    pub fn seal_query(&self, plaintext: &[u8], binding: &str) -> Result<String, seal::SealError> {
        seal::seal(
            self.keys.seal_query_key(),
            seal::QUERY_TYP,
            &self.sid,
            &self.node,
            binding,
            plaintext,
        )
    }

    /// Opens the answer this session's node sealed to a lookup proven with `nonce`
    /// ([`NodeSession::seal_lookup_answer`]).
    pub fn open_lookup_answer(
        &self,
        jwe: &str,
        nonce: &str,
    ) -> Result<LookupAnswer, AnswerRefusal> {
        let plaintext = self
            .open_answer(jwe, nonce)
            .map_err(AnswerRefusal::Sealed)?;
        let (answer, padding) = postcard::take_from_bytes::<LookupAnswer>(&plaintext)
            .map_err(|_| AnswerRefusal::Content)?;
        if padding.iter().any(|b| *b != 0) {
            return Err(AnswerRefusal::Content);
        }
        Ok(answer)
    }

    /// Opens an answer this session's node sealed ([`seal::ANSWER_TYP`], this session's id,
    /// `aud` this node, bound to `binding`) under the answer-direction key.
    pub fn open_answer(&self, jwe: &str, binding: &str) -> Result<Zeroizing<Vec<u8>>, SealRefusal> {
        seal::open(
            self.keys.seal_answer_key(),
            seal::ANSWER_TYP,
            &self.sid,
            &self.node,
            binding,
            jwe,
        )
    }
}

impl NodeSession {
    /// Opens a query the requester sealed to this node ([`seal::QUERY_TYP`], this session's id,
    /// `aud` this node, bound to `binding`) under the query-direction key.
    pub fn open_query(&self, jwe: &str, binding: &str) -> Result<Zeroizing<Vec<u8>>, SealRefusal> {
        seal::open(
            self.keys.seal_query_key(),
            seal::QUERY_TYP,
            &self.sid,
            &self.node,
            binding,
            jwe,
        )
    }

    /// Seals a lookup's answer to the requester, bound to the nonce of the proof it answers:
    /// postcard, padded with zeros to a multiple of [`ANSWER_PADDING`] bytes.
    pub fn seal_lookup_answer(
        &self,
        answer: &LookupAnswer,
        nonce: &str,
    ) -> Result<String, seal::SealError> {
        let mut plaintext = Zeroizing::new(
            postcard::to_allocvec(answer)
                .map_err(|_| seal::SealError::Internal("cannot encode the answer"))?,
        );
        let padded = plaintext.len().div_ceil(ANSWER_PADDING).max(1) * ANSWER_PADDING;
        plaintext.resize(padded, 0);
        self.seal_answer(&plaintext, nonce)
    }

    /// Seals `plaintext` to the requester as an [`seal::ANSWER_TYP`] JWE bound to `binding`,
    /// under the answer-direction key.
    pub fn seal_answer(&self, plaintext: &[u8], binding: &str) -> Result<String, seal::SealError> {
        seal::seal(
            self.keys.seal_answer_key(),
            seal::ANSWER_TYP,
            &self.sid,
            &self.node,
            binding,
            plaintext,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::DatasetRequest;
    use crate::resident_id::ResidentId;
    use fedq_certs::pki::{CertificateAuthority, IssueOptions};
    use fedq_certs::tls::TrustFiles;
    use std::time::Duration;

    const FED: &str = "changsha";
    const NODE: &str = "court";
    const SUBJECT: &str = "430102199003071234";

    struct Fed {
        dir: tempfile::TempDir,
        trust: FederationTrust,
        requester: CertificateKey,
        node: CertificateKey,
    }

    fn at(secs: u64) -> UnixTime {
        UnixTime::since_unix_epoch(Duration::from_secs(secs))
    }

    fn now() -> u64 {
        UnixTime::now().as_secs()
    }

    fn federation() -> Fed {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::init(dir.path(), FED, false).unwrap();
        let opts = IssueOptions::default();
        ca.issue(Role::Requester, "market-regulation.licensing", &opts)
            .unwrap();
        ca.issue(Role::Node, NODE, &opts).unwrap();
        ca.issue(Role::Node, "tax", &opts).unwrap();
        let trust = FederationTrust::load(&TrustFiles::in_dir(dir.path())).unwrap();
        let load = |n: &str| {
            CertificateKey::load(
                &dir.path().join(format!("{n}.crt")),
                &dir.path().join(format!("{n}.key")),
            )
            .unwrap()
        };
        let requester = load("market-regulation.licensing");
        let node = load(NODE);
        Fed {
            trust,
            requester,
            node,
            dir,
        }
    }

    /// A proof and the sealed subject that goes with it (or a bare proof, sealing nothing).
    struct Sent(String, String);

    impl From<String> for Sent {
        fn from(proof: String) -> Self {
            Sent(proof, String::new())
        }
    }

    impl From<(String, String)> for Sent {
        fn from((proof, sealed): (String, String)) -> Self {
            Sent(proof, sealed)
        }
    }

    fn subject() -> SealedSubject {
        SealedSubject {
            sub: ResidentId::parse(SUBJECT).unwrap(),
            consent: Some("consent-token".into()),
            filing: None,
        }
    }

    /// The query's claims proven to `session`'s node with the subject sealed to it.
    fn sealed_proof(session: &Session, at: UnixTime, nonce: &str) -> (String, String) {
        session
            .prove_sealed(&query_claims(), &subject(), at, nonce)
            .unwrap()
    }

    fn lookup(sent: impl Into<Sent>) -> LookupRequest {
        let Sent(proof, sealed) = sent.into();
        LookupRequest {
            query_id: "q1".into(),
            requester: "market-regulation.licensing".into(),
            purpose: "licensing".into(),
            legal_basis: Some("Regulation 7".into()),
            case_reference: Some("LIC-2026-001".into()),
            target: LookupTarget::Datasets(vec![DatasetRequest {
                dataset: "court.dishonest_debtors".into(),
                fields: Some(vec!["case_no".into()]),
            }]),
            policy_version: "v1".into(),
            date: time::macros::date!(2026 - 12 - 01),
            proof,
            sealed,
        }
    }

    /// The claims of the query as the requester asked it: two departments' datasets.
    fn query_claims() -> ProofClaims {
        ProofClaims::new(
            "licensing",
            Some("Regulation 7"),
            Some("LIC-2026-001"),
            ProofTarget::Datasets(vec![
                ProofDataset {
                    dataset: "court.dishonest_debtors".into(),
                    fields: Some(vec!["case_no".into()]),
                },
                ProofDataset {
                    dataset: "tax.arrears".into(),
                    fields: None,
                },
            ]),
        )
    }

    fn open(f: &Fed, gate: &ProofGate, t: u64) -> Session {
        let (grant, pending) = SessionGrant::new(&f.requester, FED, NODE, at(t)).unwrap();
        let (accept, requester) = gate.open(&grant, &f.trust, &f.node, at(t)).unwrap();
        assert_eq!(requester, "market-regulation.licensing");
        pending.complete(&accept, &f.trust, at(t)).unwrap()
    }

    fn gate() -> ProofGate {
        ProofGate::new(FED, NODE, 16, 1024)
    }

    #[test]
    fn an_honest_session_and_proof_round_trip() {
        let f = federation();
        let gate = gate();
        let t = now();
        let session = open(&f, &gate, t);
        assert_eq!(session.node, NODE);
        assert!(session.exp <= t + MAX_SESSION_SECS);
        let proof = sealed_proof(&session, at(t), &fresh_nonce().unwrap());
        let opened = gate.check(&lookup(proof), |_| false, at(t + 1)).unwrap();
        // The node opens the subject and the consent token the requester sealed.
        assert_eq!(opened.subject.sub.as_str(), SUBJECT);
        assert_eq!(opened.subject.consent.as_deref(), Some("consent-token"));
        let proven = opened.proven;
        assert_eq!(proven.requester, "market-regulation.licensing");
        assert_eq!(proven.claims.node, NODE);
        assert_eq!(proven.claims.purpose, "licensing");
        // The proof's JSON has the design's shape.
        let payload: serde_json::Value = serde_json::to_value(&proven.claims).unwrap();
        assert_eq!(
            payload["target"]["datasets"][1],
            serde_json::json!({"dataset": "tax.arrears", "fields": null})
        );
        // The claims hold the sealed payload's hash, never the subject or the token.
        assert_eq!(payload["sealed"].as_str().map(str::len), Some(43));
        let text = payload.to_string();
        assert!(
            !text.contains(SUBJECT) && !text.contains("consent-token"),
            "{text}"
        );
        // A view proof has `{"view": NAME}`.
        let view = serde_json::to_value(ProofTarget::View("blacklist-check".into())).unwrap();
        assert_eq!(view, serde_json::json!({"view": "blacklist-check"}));
    }

    #[test]
    fn a_sealed_subject_moved_from_another_lookup_or_not_opening_is_refused() {
        let f = federation();
        let gate = gate();
        let t = now();
        let session = open(&f, &gate, t);
        // Two honest lookups; the coordinator swaps their sealed subjects.
        let (proof_a, _) = sealed_proof(&session, at(t), &fresh_nonce().unwrap());
        let (_, sealed_b) = sealed_proof(&session, at(t), &fresh_nonce().unwrap());
        let refused = gate
            .check(&lookup((proof_a, sealed_b)), |_| false, at(t))
            .unwrap_err();
        assert_eq!(refused.reason, ProofRefusal::Altered(ProofField::Sealed));
        assert_eq!(refused.reason.code(), "altered-sealed");
        // A payload whose hash the requester proved but that is bound to another nonce,
        // or that is not a resident ID: refused when opened.
        let body = serde_json::to_vec(&subject()).unwrap();
        let not_an_id = br#"{"sub":"123","consent":null}"#.to_vec();
        let empty_token = br#"{"sub":"430102199003071234","consent":""}"#.to_vec();
        let cases: [(Vec<u8>, bool, ProofRefusal); 3] = [
            (body, false, ProofRefusal::Sealed(SealRefusal::Moved)),
            (not_an_id, true, ProofRefusal::SealedContent),
            (empty_token, true, ProofRefusal::SealedContent),
        ];
        for (plaintext, bound_here, reason) in cases {
            let nonce = fresh_nonce().unwrap();
            let binding = if bound_here {
                nonce.clone()
            } else {
                fresh_nonce().unwrap()
            };
            let sealed = session.seal_query(&plaintext, &binding).unwrap();
            let mut claims = query_claims();
            claims.sealed = sealed_sha256(&sealed);
            let proof = session.prove(&claims, at(t), &nonce);
            let refused = gate
                .check(&lookup((proof, sealed)), |_| false, at(t))
                .unwrap_err();
            assert_eq!(refused.reason, reason);
            assert_eq!(
                refused.proven_requester.as_deref(),
                Some("market-regulation.licensing")
            );
        }
    }

    #[test]
    fn both_sides_derive_the_same_mac_key_and_a_stranger_cannot() {
        let f = federation();
        let t = now();
        let (grant, pending) = SessionGrant::new(&f.requester, FED, NODE, at(t)).unwrap();
        let (accept, node_side) =
            accept_grant(&grant, &f.trust, &f.node, FED, NODE, at(t)).unwrap();
        let session = pending.complete(&accept, &f.trust, at(t)).unwrap();
        assert_eq!(session.keys.mac_key(), node_side.keys.mac_key());
        assert_eq!(node_side.sid, session.sid);
        // A second session over the same grant text gets other keys (fresh node key).
        let (_, other) = accept_grant(&grant, &f.trust, &f.node, FED, NODE, at(t)).unwrap();
        assert_ne!(other.keys.mac_key(), node_side.keys.mac_key());
    }

    #[test]
    fn each_lookup_field_changed_after_proving_is_refused_by_name() {
        let f = federation();
        let gate = gate();
        let t = now();
        let session = open(&f, &gate, t);
        type Change = Box<dyn Fn(&mut LookupRequest)>;
        let changes: Vec<(ProofField, Change)> = vec![
            (
                ProofField::Requester,
                Box::new(|l| l.requester = "court.enforcement".into()),
            ),
            (ProofField::Sealed, Box::new(|l| l.sealed.push('A'))),
            (
                ProofField::Purpose,
                Box::new(|l| l.purpose = "enforcement".into()),
            ),
            (ProofField::Basis, Box::new(|l| l.legal_basis = None)),
            (
                ProofField::Case,
                Box::new(|l| l.case_reference = Some("LIC-2026-002".into())),
            ),
            (
                ProofField::Target,
                Box::new(|l| {
                    l.target = LookupTarget::Datasets(vec![DatasetRequest {
                        dataset: "court.dishonest_debtors".into(),
                        fields: None,
                    }])
                }),
            ),
            (
                ProofField::Target,
                Box::new(|l| l.target = LookupTarget::View("blacklist-check".into())),
            ),
        ];
        for (field, change) in changes {
            let proof = sealed_proof(&session, at(t), &fresh_nonce().unwrap());
            let mut l = lookup(proof);
            change(&mut l);
            let refused = gate.check(&l, |_| false, at(t)).unwrap_err();
            assert_eq!(refused.reason, ProofRefusal::Altered(field));
            assert_eq!(
                refused.proven_requester.as_deref(),
                Some("market-regulation.licensing")
            );
            let msg = refused.reason.to_string();
            assert!(msg.contains(field.name()), "{msg}");
            for value in [
                "court.enforcement",
                "enforcement",
                "LIC-2026",
                "forged",
                SUBJECT,
            ] {
                assert!(!msg.contains(value), "{msg}");
            }
        }
    }

    #[test]
    fn the_target_restricted_to_this_node_is_accepted_and_nothing_beyond_it() {
        let f = federation();
        let gate = gate();
        let t = now();
        let session = open(&f, &gate, t);
        // The proof names court and tax datasets; the court node is asked only its own.
        let proof = sealed_proof(&session, at(t), &fresh_nonce().unwrap());
        gate.check(&lookup(proof), |_| false, at(t)).unwrap();
        // A dataset the proof does not name, beside one it does, is refused.
        let proof = sealed_proof(&session, at(t), &fresh_nonce().unwrap());
        let mut l = lookup(proof);
        l.target = LookupTarget::Datasets(vec![
            DatasetRequest {
                dataset: "court.dishonest_debtors".into(),
                fields: Some(vec!["case_no".into()]),
            },
            DatasetRequest {
                dataset: "court.judgments".into(),
                fields: None,
            },
        ]);
        assert_eq!(
            gate.check(&l, |_| false, at(t)).unwrap_err().reason,
            ProofRefusal::Altered(ProofField::Target)
        );
    }

    #[test]
    fn a_replayed_proof_is_refused() {
        let f = federation();
        let gate = gate();
        let t = now();
        let session = open(&f, &gate, t);
        let proof = sealed_proof(&session, at(t), &fresh_nonce().unwrap());
        gate.check(&lookup(proof.clone()), |_| false, at(t))
            .unwrap();
        let again = gate
            .check(&lookup(proof), |_| false, at(t + 10))
            .unwrap_err();
        assert_eq!(again.reason, ProofRefusal::Replayed);
        assert_eq!(
            again.proven_requester.as_deref(),
            Some("market-regulation.licensing")
        );
    }

    #[test]
    fn a_stale_or_future_proof_is_refused() {
        let f = federation();
        let gate = gate();
        let t = now();
        let session = open(&f, &gate, t);
        let old = sealed_proof(&session, at(t), &fresh_nonce().unwrap());
        assert_eq!(
            gate.check(&lookup(old), |_| false, at(t + MAX_CLOCK_SKEW_SECS + 1))
                .unwrap_err()
                .reason,
            ProofRefusal::Stale
        );
        let future = sealed_proof(
            &session,
            at(t + MAX_CLOCK_SKEW_SECS + 1),
            &fresh_nonce().unwrap(),
        );
        assert_eq!(
            gate.check(&lookup(future), |_| false, at(t))
                .unwrap_err()
                .reason,
            ProofRefusal::Stale
        );
    }

    #[test]
    fn a_proof_for_another_node_or_under_another_key_is_refused() {
        let f = federation();
        let gate = gate();
        let t = now();
        let session = open(&f, &gate, t);
        // The session's own key, but claims naming another node (made by hand: `prove`
        // always names the session's node).
        let mut claims = query_claims();
        claims.fed = FED.into();
        claims.node = "tax".into();
        claims.iat = t;
        claims.nonce = fresh_nonce().unwrap();
        let payload = serde_json::to_vec(&claims).unwrap();
        let forged = jws::sign_hs256(session.keys.mac_key(), &session.sid, REQUEST_TYP, &payload);
        assert_eq!(
            gate.check(&lookup(forged), |_| false, at(t))
                .unwrap_err()
                .reason,
            ProofRefusal::Misdirected
        );
        // Another key under this session's id (what a coordinator could make).
        let payload = serde_json::to_vec(&{
            let mut c = query_claims();
            c.fed = FED.into();
            c.node = NODE.into();
            c.iat = t;
            c.nonce = fresh_nonce().unwrap();
            c
        })
        .unwrap();
        let guessed = jws::sign_hs256(&[0u8; 32], &session.sid, REQUEST_TYP, &payload);
        let refused = gate.check(&lookup(guessed), |_| false, at(t)).unwrap_err();
        assert_eq!(refused.reason, ProofRefusal::BadMac);
        assert_eq!(refused.proven_requester, None);
    }

    #[test]
    fn an_unknown_expired_missing_or_malformed_proof_is_refused_with_its_code() {
        let f = federation();
        let gate = gate();
        let t = now();
        let session = open(&f, &gate, t);
        let other_gate = ProofGate::new(FED, NODE, 16, 16);
        let proof = sealed_proof(&session, at(t), &fresh_nonce().unwrap());
        assert_eq!(
            other_gate
                .check(&lookup(proof), |_| false, at(t))
                .unwrap_err()
                .reason,
            ProofRefusal::UnknownSession
        );
        // After the session's end (the proof itself made just before it).
        let end = session.exp;
        let late = sealed_proof(&session, at(end), &fresh_nonce().unwrap());
        assert_eq!(
            gate.check(&lookup(late), |_| false, at(end))
                .unwrap_err()
                .reason,
            ProofRefusal::UnknownSession
        );
        assert_eq!(
            gate.check(&lookup(String::new()), |_| false, at(t))
                .unwrap_err()
                .reason,
            ProofRefusal::Missing
        );
        assert_eq!(
            gate.check(&lookup("a.b.c".to_owned()), |_| false, at(t))
                .unwrap_err()
                .reason,
            ProofRefusal::Malformed
        );
        let short_nonce = sealed_proof(&session, at(t), "x");
        assert_eq!(
            gate.check(&lookup(short_nonce), |_| false, at(t))
                .unwrap_err()
                .reason,
            ProofRefusal::Malformed
        );
    }

    #[test]
    fn a_revoked_requester_is_refused_and_its_session_ends() {
        let f = federation();
        let gate = gate();
        let t = now();
        let session = open(&f, &gate, t);
        let proof = sealed_proof(&session, at(t), &fresh_nonce().unwrap());
        let refused = gate.check(&lookup(proof), |_| true, at(t)).unwrap_err();
        assert_eq!(refused.reason, ProofRefusal::Revoked);
        assert_eq!(gate.sessions_held(), 0);
        let proof = sealed_proof(&session, at(t), &fresh_nonce().unwrap());
        assert_eq!(
            gate.check(&lookup(proof), |_| false, at(t))
                .unwrap_err()
                .reason,
            ProofRefusal::UnknownSession
        );
        // A CRL reload closes sessions by serial.
        open(&f, &gate, t);
        assert_eq!(gate.close_revoked(|_| true), 1);
        assert_eq!(gate.sessions_held(), 0);
    }

    #[test]
    fn a_revoked_requester_cannot_open_a_session() {
        let f = federation();
        let ca = CertificateAuthority::open(f.dir.path()).unwrap();
        ca.revoke("market-regulation.licensing").unwrap();
        let trust = FederationTrust::load(&TrustFiles::in_dir(f.dir.path())).unwrap();
        let t = now();
        let (grant, _) = SessionGrant::new(&f.requester, FED, NODE, at(t)).unwrap();
        let err = accept_grant(&grant, &trust, &f.node, FED, NODE, at(t)).unwrap_err();
        assert!(matches!(err, GrantRefusal::Signature(_)), "{err}");
    }

    #[test]
    fn bad_grants_are_refused_without_quoting_them() {
        let f = federation();
        let t = now();
        let (grant, _) = SessionGrant::new(&f.requester, FED, "tax", at(t)).unwrap();
        assert_eq!(
            accept_grant(&grant, &f.trust, &f.node, FED, NODE, at(t)).unwrap_err(),
            GrantRefusal::Misdirected
        );
        let (grant, _) = SessionGrant::new(&f.requester, FED, NODE, at(t)).unwrap();
        assert_eq!(
            accept_grant(&grant, &f.trust, &f.node, FED, NODE, at(t + 301)).unwrap_err(),
            GrantRefusal::Clock
        );
        // A grant longer than an hour, signed by the requester.
        let long = SessionGrant {
            fed: FED.into(),
            node: NODE.into(),
            sid: b64(&[1; 16]),
            epk: b64(&[9; 32]),
            iat: t,
            exp: t + MAX_SESSION_SECS + 1,
        };
        let long =
            jws::sign_es256(&f.requester, GRANT_TYP, &serde_json::to_vec(&long).unwrap()).unwrap();
        assert_eq!(
            accept_grant(&long, &f.trust, &f.node, FED, NODE, at(t)).unwrap_err(),
            GrantRefusal::Lifetime
        );
        // A node's certificate cannot grant a session; the node key cannot be a requester.
        let (by_node, _) = SessionGrant::new(&f.node, FED, NODE, at(t)).unwrap();
        let err = accept_grant(&by_node, &f.trust, &f.node, FED, NODE, at(t)).unwrap_err();
        assert!(matches!(err, GrantRefusal::Signature(_)), "{err}");
        assert!(!err.to_string().contains(&by_node[..20]));
        // The same session id twice in one table.
        let gate = gate();
        let (grant, _) = SessionGrant::new(&f.requester, FED, NODE, at(t)).unwrap();
        gate.open(&grant, &f.trust, &f.node, at(t)).unwrap();
        assert_eq!(
            gate.open(&grant, &f.trust, &f.node, at(t)).unwrap_err(),
            GrantRefusal::SessionReused
        );
    }

    #[test]
    fn an_accept_from_another_node_or_for_another_grant_is_refused() {
        let f = federation();
        let t = now();
        let tax =
            CertificateKey::load(&f.dir.path().join("tax.crt"), &f.dir.path().join("tax.key"))
                .unwrap();
        let (grant, pending) = SessionGrant::new(&f.requester, FED, NODE, at(t)).unwrap();
        // The tax node signs an accept claiming to be the court.
        let (accept, _) = accept_grant(&grant, &f.trust, &tax, FED, NODE, at(t)).unwrap();
        assert!(matches!(
            pending.complete(&accept, &f.trust, at(t)).unwrap_err(),
            ProofError::Mismatch(_)
        ));
        // The court's accept of one grant does not complete another.
        let (grant_a, _) = SessionGrant::new(&f.requester, FED, NODE, at(t)).unwrap();
        let (_, pending_b) = SessionGrant::new(&f.requester, FED, NODE, at(t)).unwrap();
        let (accept_a, _) = accept_grant(&grant_a, &f.trust, &f.node, FED, NODE, at(t)).unwrap();
        assert!(matches!(
            pending_b.complete(&accept_a, &f.trust, at(t)).unwrap_err(),
            ProofError::Mismatch(_)
        ));
        // A requester's certificate cannot sign an accept.
        let (grant, pending) = SessionGrant::new(&f.requester, FED, NODE, at(t)).unwrap();
        let (accept, _) = accept_grant(&grant, &f.trust, &f.requester, FED, NODE, at(t)).unwrap();
        assert!(matches!(
            pending.complete(&accept, &f.trust, at(t)).unwrap_err(),
            ProofError::Accept(_)
        ));
    }

    #[test]
    fn the_replay_cache_is_bounded_and_forgets_only_expired_entries() {
        let mut cache = ReplayCache::new(2);
        cache.insert("s", "n1", 1000, 1000).unwrap();
        cache.insert("s", "n2", 1000, 1000).unwrap();
        assert_eq!(
            cache.insert("s", "n1", 1000, 1100),
            Err(ProofRefusal::Replayed)
        );
        // Full of live entries: refused, nothing forgotten early.
        assert_eq!(cache.insert("s", "n3", 1100, 1100), Err(ProofRefusal::Busy));
        assert_eq!(
            cache.insert("s", "n1", 1000, 1300),
            Err(ProofRefusal::Replayed)
        );
        // Once their window is over they leave, and room returns.
        cache.insert("s", "n3", 1301, 1301).unwrap();
        assert_eq!(cache.len(), 1);
        // Same nonce in another session is another entry.
        cache.insert("t", "n3", 1301, 1301).unwrap();
    }

    #[test]
    fn the_session_table_is_bounded_expired_first_then_soonest_ending() {
        let f = federation();
        let t = now();
        let mut table = SessionTable::new(2);
        let mk = |offset: u64| {
            let (grant, _) = SessionGrant::new(&f.requester, FED, NODE, at(t - offset)).unwrap();
            accept_grant(&grant, &f.trust, &f.node, FED, NODE, at(t))
                .unwrap()
                .1
        };
        let a = mk(200); // ends soonest
        let b = mk(0);
        let (sa, sb) = (a.sid.clone(), b.sid.clone());
        table.insert(a, at(t)).unwrap();
        table.insert(b, at(t)).unwrap();
        let c = mk(100);
        let sc = c.sid.clone();
        table.insert(c, at(t)).unwrap();
        assert_eq!(table.len(), 2);
        assert!(table.get(&sa, at(t)).is_none());
        assert!(table.get(&sb, at(t)).is_some());
        assert!(table.get(&sc, at(t)).is_some());
        // Past c's end, c is gone and b is not.
        let c_end = t - 100 + MAX_SESSION_SECS;
        assert!(table.get(&sc, at(c_end)).is_none());
        assert!(table.get(&sb, at(c_end)).is_some());
        let d = mk(0);
        table.insert(d, at(c_end)).unwrap();
        assert!(table.get(&sb, at(c_end)).is_some());
    }

    #[test]
    fn one_requester_opening_sessions_in_a_loop_pushes_out_only_its_own() {
        let f = federation();
        CertificateAuthority::open(f.dir.path())
            .unwrap()
            .issue(
                Role::Requester,
                "hrss.recruitment",
                &IssueOptions::default(),
            )
            .unwrap();
        let other = CertificateKey::load(
            &f.dir.path().join("hrss.recruitment.crt"),
            &f.dir.path().join("hrss.recruitment.key"),
        )
        .unwrap();
        let t = now();
        let open = |key: &CertificateKey, offset: u64| {
            let (grant, _) = SessionGrant::new(key, FED, NODE, at(t - offset)).unwrap();
            accept_grant(&grant, &f.trust, &f.node, FED, NODE, at(t))
                .unwrap()
                .1
        };
        // The default's shape at a small size: a table of 64, 16 per requester.
        const CAP: usize = 16;
        let mut table = SessionTable::new(64);
        let theirs = open(&other, 250);
        let their_sid = theirs.sid.clone();
        table.insert_within(theirs, at(t), CAP).unwrap();
        let mut mine = Vec::new();
        for i in 0..(CAP as u64 + 3) {
            // Opened in order; the first ones end soonest.
            let s = open(&f.requester, 200 - i);
            mine.push(s.sid.clone());
            table.insert_within(s, at(t), CAP).unwrap();
        }
        assert_eq!(table.held_by("market-regulation.licensing"), CAP);
        assert_eq!(table.held_by("hrss.recruitment"), 1);
        assert_eq!(table.len(), CAP + 1);
        // The other office's session, though it ends soonest of all, stays.
        assert!(table.get(&their_sid, at(t)).is_some());
        // The loop's own three oldest made room; its newest are live.
        for sid in &mine[..3] {
            assert!(table.get(sid, at(t)).is_none());
        }
        for sid in &mine[3..] {
            assert!(table.get(sid, at(t)).is_some());
        }
        // Ended sessions leave the per-requester count too.
        table.remove(&mine[3]);
        assert_eq!(table.held_by("market-regulation.licensing"), CAP - 1);
        // The default leaves room for a busy office's connections.
        const { assert!(SESSIONS_PER_REQUESTER * 64 <= DEFAULT_SESSIONS) };
        const { assert!(SESSIONS_PER_REQUESTER >= 256) };
    }
}
