//! `fedq node serve`: the node's QUIC endpoint. For each lookup: check its shape
//! ([`crate::enforce::check_lookup`]), the requester's proof (its session with this node,
//! opened by [`NodeRequest::OpenSession`]; [`fedq_wire::proof::ProofGate::check`] — a
//! failure is refused and audited before anything is read, and the requester the session
//! proves is the one audited), the requester's rate limit (the policy's, counted
//! again here so a coordinator that was taken over is still throttled), the names against
//! its own policy, the lookup's consent token if it carries one ([`crate::consent`]: its
//! signer, validity, claims and the uses left here), read the subject's
//! records (one indexed statement on the store, one query per attached dataset),
//! [`crate::enforce::answer`], write the audit entry durably, and only then release the
//! answer. If the store, an attached database or the audit log fails, no data leaves
//! (fail closed).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use fedq_audit::{AuditLog, AuditRecord, Pseudonymizer};
use fedq_bundle::state::{Installed, PolicySlot, SlotStatus};
use fedq_certs::FederationTrust;
use fedq_policy::ratelimit::RateLimiter;
use fedq_policy::Catalogue;
use fedq_wire::message::{FailureCode, LookupRequest, PolicyState, MAX_DATE_SKEW_DAYS};
use fedq_wire::proof::{
    ProofGate, ProvenRequest, Refused, UnixTime, DEFAULT_REPLAY_ENTRIES, DEFAULT_SESSIONS,
};
use fedq_wire::transport::{FrameTap, Handler, Limits, NodeEndpoint, TransportError, TrustView};
use fedq_wire::{NodeRequest, NodeResponse};

use crate::attach::{AttachError, Attached};
use crate::config::{NodeConfig, StoreLocation};
use crate::consent::{ConsentRefusal, ConsentUses};
use crate::evidence::Evidence;
use crate::postgres::PgStore;
use crate::store::{SqliteStore, Store};

/// Errors starting a node.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The catalogue or policy is unusable.
    #[error(transparent)]
    Policy(#[from] fedq_policy::load::LoadError),
    /// The policy in force (set-up policy or signed bundle) is unusable.
    #[error(transparent)]
    PolicyState(#[from] fedq_bundle::state::SlotError),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// An `[[attach]]` mapping does not fit the catalogue or the department's database.
    #[error(transparent)]
    Attach(#[from] AttachError),
    /// The audit log or pseudonym key could not be opened.
    #[error(transparent)]
    Audit(#[from] fedq_audit::AuditError),
    /// Certificates or socket.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The config is inconsistent with the files it names.
    #[error("{0}")]
    Mismatch(String),
    /// The node's catalogue is not the one the policy in force was checked against.
    #[error("catalogue `{catalogue}` differs from the one policy {policy} was checked against: {differences}; make the node's `catalogue` the department's file from the policy's catalogue directory (or have the officers check and sign a policy for this catalogue)")]
    CatalogueMismatch {
        /// The node's catalogue file.
        catalogue: String,
        /// The policy version in force (`BUNDLE/POLICY`).
        policy: String,
        /// Each difference, naming dataset and field.
        differences: String,
    },
}

/// A node, ready to serve.
pub struct Node {
    config: NodeConfig,
    department: String,
    policy: Arc<PolicySlot>,
    store: Arc<Store>,
    attached: Arc<BTreeMap<String, Attached>>,
    audit: AuditLog,
    pseudonyms: Arc<Pseudonymizer>,
    consent_uses: ConsentUses,
    endpoint: NodeEndpoint,
    max_answer_len: usize,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("name", &self.config.name)
            .finish_non_exhaustive()
    }
}

impl Node {
    /// Loads catalogue, policy, store, attached datasets, audit log and certificates, and
    /// binds the socket. Everything is checked before the socket is bound: a PostgreSQL
    /// store is connected and migrated, and each `[[attach]]` query prepared on its
    /// database, on a helper thread (so this stays callable from within a runtime); the
    /// node then serves them through pools that connect on first use in the caller's
    /// runtime, warmed up when serving starts. Must be called within a tokio runtime.
    pub fn start(config: NodeConfig, limits: Limits) -> Result<Self, ServeError> {
        let catalogue: Catalogue = fedq_policy::load::load_catalogue(&config.catalogue)?;
        let floor = fedq_audit::last_installed_policy(&config.audit)?;
        let policy = PolicySlot::open(
            &config.policy,
            config.policy_threshold,
            &config.policy_officers,
            config.policy_state.clone(),
            config.tls.trust.clone(),
            floor,
        )?;
        if policy
            .current()
            .engine
            .datasets()
            .iter()
            .all(|d| d.department != catalogue.department)
        {
            return Err(ServeError::Mismatch(format!(
                "the policy's catalogues have no department `{}` (from `{}`); the node's catalogue must be one of the federation's",
                catalogue.department,
                config.catalogue.display()
            )));
        }
        // The node reads and checks records by its own catalogue, and decides by the
        // policy's: the two must be the same, or a field could be typed, classed or
        // windowed differently from what the officers checked the policy against.
        let differences = catalogue.differences_from(policy.current().engine.datasets());
        if !differences.is_empty() {
            return Err(ServeError::CatalogueMismatch {
                catalogue: config.catalogue.display().to_string(),
                policy: policy.current().label(),
                differences: differences.join("; "),
            });
        }
        let checked = check_postgres(&config, &catalogue)?;
        let store = match &config.store {
            StoreLocation::Sqlite(path) => Store::Sqlite(SqliteStore::open(path)?),
            StoreLocation::Postgres(url) => Store::Postgres(PgStore::open_lazy(url)?),
        };
        let mut attached = BTreeMap::new();
        for a in checked {
            let lazy = a.reopen_lazily()?;
            attached.insert(lazy.dataset().qualified.clone(), lazy);
        }
        let pseudonyms = Pseudonymizer::load_or_create(&config.pseudonym_key)?;
        // The uses this node answered under each consent token, from its own audit log.
        let consent_uses = ConsentUses::load(
            &config.audit,
            time::OffsetDateTime::now_utc().unix_timestamp(),
        )?;
        let audit = AuditLog::open(&config.audit)?;
        let max_answer_len = limits.max_frame_len;
        let endpoint = NodeEndpoint::bind(config.listen, config.tls.clone(), limits)?;
        if endpoint.identity().name != config.name {
            return Err(ServeError::Mismatch(format!(
                "config says `name = \"{}\"` but the certificate `{}` is for `{}`",
                config.name,
                config.tls.cert.display(),
                endpoint.identity().name
            )));
        }
        Ok(Self {
            department: catalogue.department,
            config,
            policy: Arc::new(policy),
            store: Arc::new(store),
            attached: Arc::new(attached),
            audit,
            pseudonyms: Arc::new(pseudonyms),
            consent_uses,
            endpoint,
            max_answer_len,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.endpoint.local_addr()
    }

    /// The TLS refusals this node made.
    pub fn refusals(&self) -> fedq_certs::RefusalLog {
        self.endpoint.refusals()
    }

    /// Serves until `shutdown` resolves. `tap` sees every encoded answer frame.
    pub async fn serve(self, tap: Option<FrameTap>, shutdown: impl Future<Output = ()>) {
        if let Store::Postgres(pg) = &*self.store {
            if let Err(e) = pg.warm_up().await {
                tracing::warn!(error = %e, "cannot connect to the store yet; lookups will retry");
            }
        }
        for a in self.attached.values() {
            if let Err(e) = a.warm_up().await {
                tracing::warn!(error = %e, "cannot connect to an attached database yet; lookups will retry");
            }
        }
        let limiter = RateLimiter::second_counter(self.policy.current().engine.policy());
        let trust = self.endpoint.trust_view();
        let gate = ProofGate::new(
            &trust.identity().federation,
            &self.config.name,
            DEFAULT_SESSIONS,
            DEFAULT_REPLAY_ENTRIES,
        );
        let ctx = Arc::new(Context {
            seen_generation: AtomicU64::new(trust.generation()),
            gate,
            trust,
            limiter: Mutex::new(limiter),
            max_answer_len: self.max_answer_len,
            node: self.config.name.clone(),
            department: self.department,
            policy: self.policy,
            store: self.store,
            attached: self.attached,
            audit: self.audit,
            pseudonyms: self.pseudonyms,
            consent_trust: self.endpoint.trust(),
            consent_uses: self.consent_uses,
            config: self.config,
        });
        let handler: Handler = Arc::new(move |peer, request| {
            let ctx = Arc::clone(&ctx);
            Box::pin(async move {
                match request {
                    NodeRequest::Ping => NodeResponse::Pong {
                        node: ctx.node.clone(),
                    },
                    NodeRequest::Lookup(lookup) => ctx.lookup(&peer.identity.name, lookup).await,
                    NodeRequest::InstallPolicy(bundle) => {
                        ctx.install_policy(&peer.identity.name, bundle).await
                    }
                    NodeRequest::PolicyStatus => {
                        NodeResponse::PolicyStatus(policy_state(&ctx.policy.status()))
                    }
                    NodeRequest::OpenSession(grant) => {
                        ctx.open_session(&peer.identity.name, &grant).await
                    }
                }
            })
        });
        self.endpoint.serve(handler, tap, shutdown).await;
    }
}

struct Context {
    /// Requesters' sessions with this node and the proofs already seen.
    gate: ProofGate,
    /// The CA, CRL and certificate key in force (kept current by the endpoint's reloads).
    trust: TrustView,
    /// The reload generation whose CRL the sessions were last checked against.
    seen_generation: AtomicU64,
    /// The policy's per-requester limits, counted again here: a coordinator that was
    /// taken over is throttled all the same.
    limiter: Mutex<RateLimiter>,
    /// The largest answer frame the coordinator reads.
    max_answer_len: usize,
    node: String,
    department: String,
    policy: Arc<PolicySlot>,
    store: Arc<Store>,
    attached: Arc<BTreeMap<String, Attached>>,
    audit: AuditLog,
    pseudonyms: Arc<Pseudonymizer>,
    /// The CA and CRL the endpoint keeps current: consent tokens are verified against it.
    consent_trust: Arc<RwLock<FederationTrust>>,
    consent_uses: ConsentUses,
    config: NodeConfig,
}

impl Context {
    /// The lookup's consent token verified and checked against it at `now`
    /// ([`crate::consent::verify`]).
    fn verify_consent(
        &self,
        request: &LookupRequest,
        now: i64,
    ) -> Result<Option<fedq_certs::consent::Consent>, ConsentRefusal> {
        match self.consent_trust.read() {
            Ok(trust) => crate::consent::verify(&trust, request, now),
            Err(_) => Err(ConsentRefusal {
                jti: None,
                error: fedq_certs::consent::ConsentError::Token(
                    "the node's CA and CRL are unavailable".into(),
                ),
            }),
        }
    }

    /// The id of the lookup's consent token for an entry written before the token was
    /// checked: only a token whose signature verifies is quoted.
    fn consent_id(&self, request: &LookupRequest) -> Option<String> {
        let token = request.consent.as_deref()?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let trust = self.consent_trust.read().ok()?;
        trust
            .verify_consent(token, now, false)
            .ok()
            .map(|c| c.claims.jti)
    }

    /// Refuses a lookup whose consent token does not count, before anything is read, and
    /// registers the refusal with the claim that failed (never the token or its subject).
    async fn refuse_consent(
        &self,
        request: &LookupRequest,
        refusal: ConsentRefusal,
        policy_version: String,
    ) -> NodeResponse {
        let rationale = format!("node `{}`: {}", self.node, refusal.error);
        tracing::warn!(
            claim = refusal.error.code(),
            "lookup refused: its consent token does not count"
        );
        let record = AuditRecord {
            at: time::OffsetDateTime::now_utc(),
            kind: fedq_audit::EntryKind::Refusal,
            query_id: request.query_id.clone(),
            requester: request.requester.clone(),
            purpose: request.purpose.clone(),
            legal_basis: request.legal_basis.clone(),
            case_reference: self
                .policy
                .current()
                .engine
                .policy()
                .recordable_case(&request.purpose, request.case_reference.as_deref())
                .map(str::to_owned),
            node_query_ids: Default::default(),
            subject: self.pseudonyms.pseudonym(request.subject.as_str()),
            target: request.target.describe(),
            outcome: serde_json::json!({ "refused": rationale, "consent": refusal.error.code() })
                .to_string(),
            policy_version,
            consent_id: refusal.jti,
        };
        if let Err(e) = self.audit.append(record).await {
            tracing::error!(error = %e, "audit log unavailable while registering a refusal");
        }
        NodeResponse::Refused { rationale }
    }

    /// Reads the subject's records: one statement on the store (inline for SQLite), one
    /// query per attached dataset, each dataset's records then checked against the
    /// catalogue ([`crate::evidence`]). On failure, names what failed (for the answer and
    /// the audit entry), never why in terms of data.
    async fn read(
        &self,
        engine: &fedq_policy::Engine,
        subject: &str,
        stored: &[&str],
        attached: &[&str],
        today: time::Date,
    ) -> Result<BTreeMap<String, Evidence>, &'static str> {
        let mut by_dataset = BTreeMap::new();
        if !stored.is_empty() {
            match self.store.evidence_of(subject, stored).await {
                Ok(found) => by_dataset.extend(found),
                Err(e) => {
                    tracing::error!(error = %e, "store unavailable; answering unavailable");
                    return Err("store");
                }
            }
        }
        for name in attached {
            let Some(source) = self.attached.get(*name) else {
                continue;
            };
            match source.records_of(subject).await {
                Ok(evidence) => {
                    by_dataset.insert((*name).to_owned(), evidence);
                }
                Err(e) => {
                    tracing::error!(error = %e, "attached database unavailable; answering unavailable");
                    return Err("attached database");
                }
            }
        }
        Ok(by_dataset
            .into_iter()
            .map(|(name, evidence)| {
                let checked = match engine.datasets().iter().find(|d| d.qualified == name) {
                    Some(dataset) => evidence.checked(dataset, subject, today),
                    None => Evidence::Unverified(format!(
                        "dataset `{name}` is not in the policy's catalogue"
                    )),
                };
                if let Evidence::Unverified(why) = &checked {
                    tracing::warn!(dataset = %name, reason = %why, "answering the dataset as unverified");
                }
                (name, checked)
            })
            .collect())
    }

    /// Verifies and installs a policy bundle (off the runtime: it reads the CA, CRL and
    /// catalogues and writes the state file). Queries already running keep their version.
    async fn install_policy(&self, coordinator: &str, bundle: String) -> NodeResponse {
        let slot = Arc::clone(&self.policy);
        let outcome = tokio::task::spawn_blocking(move || slot.install(&bundle)).await;
        let record = |kind: fedq_audit::EntryKind, outcome: String| AuditRecord {
            at: time::OffsetDateTime::now_utc(),
            kind,
            query_id: "-".into(),
            requester: format!("coordinator:{coordinator}"),
            purpose: "policy-publication".into(),
            legal_basis: None,
            case_reference: None,
            subject: "-".into(),
            target: "policy".into(),
            outcome,
            policy_version: self.policy.current().label(),
            consent_id: None,
            node_query_ids: Default::default(),
        };
        if let Ok(Ok(Installed::Applied { .. })) = &outcome {
            // The new version's limits from now on; what was used so far stays used.
            if let Ok(mut limiter) = self.limiter.lock() {
                limiter.set_limits(self.policy.current().engine.policy());
            }
        }
        let (entry, response) = match outcome {
            Ok(Ok(Installed::Applied {
                label,
                version,
                content_sha256,
                approved_by,
            })) => (
                record(
                    fedq_audit::EntryKind::PolicyInstalled,
                    serde_json::json!({ "version": version, "content_sha256": content_sha256, "approved_by": approved_by })
                        .to_string(),
                ),
                NodeResponse::PolicyInstalled {
                    label,
                    changed: true,
                },
            ),
            Ok(Ok(Installed::AlreadyInForce { label })) => {
                return NodeResponse::PolicyInstalled {
                    label,
                    changed: false,
                }
            }
            Ok(Err(refusal)) => {
                tracing::warn!(reason = %refusal, "policy bundle refused; the version in force stays");
                (
                    record(
                        fedq_audit::EntryKind::PolicyRefused,
                        serde_json::json!({ "refused": refusal.to_string() }).to_string(),
                    ),
                    NodeResponse::Refused {
                        rationale: refusal.to_string(),
                    },
                )
            }
            Err(_) => {
                return NodeResponse::Failed {
                    code: FailureCode::Unavailable,
                    message: format!(
                        "node `{}`: installing the bundle failed unexpectedly",
                        self.node
                    ),
                }
            }
        };
        if let Err(e) = self.audit.append(entry).await {
            // The bundle is in force (its chain file is written); say so, loudly.
            tracing::error!(error = %e, "audit log unavailable while registering a policy change");
        }
        response
    }

    /// Refuses a lookup before anything is read, registering the refusal. With
    /// `untrusted`, the lookup's own texts are not copied into the entry (they were
    /// refused for their size or shape): the coordinator's name and the target's size
    /// stand in for them.
    async fn refuse_lookup(
        &self,
        coordinator: &str,
        request: &LookupRequest,
        rationale: String,
        untrusted: bool,
    ) -> NodeResponse {
        let policy_version = self.policy.current().label();
        let record = if untrusted {
            AuditRecord {
                at: time::OffsetDateTime::now_utc(),
                kind: fedq_audit::EntryKind::Refusal,
                query_id: "-".into(),
                requester: format!("coordinator:{coordinator}"),
                purpose: "-".into(),
                legal_basis: None,
                case_reference: None,
                subject: self.pseudonyms.pseudonym(request.subject.as_str()),
                target: crate::enforce::describe_refused_target(request),
                outcome: serde_json::json!({ "refused": rationale }).to_string(),
                policy_version,
                consent_id: None,
                node_query_ids: Default::default(),
            }
        } else {
            AuditRecord {
                at: time::OffsetDateTime::now_utc(),
                kind: fedq_audit::EntryKind::Refusal,
                query_id: request.query_id.clone(),
                requester: request.requester.clone(),
                purpose: request.purpose.clone(),
                legal_basis: request.legal_basis.clone(),
                case_reference: self.recordable_case(request),
                subject: self.pseudonyms.pseudonym(request.subject.as_str()),
                target: request.target.describe(),
                outcome: serde_json::json!({ "refused": rationale }).to_string(),
                policy_version,
                consent_id: self.consent_id(request),
                node_query_ids: Default::default(),
            }
        };
        if let Err(e) = self.audit.append(record).await {
            tracing::error!(error = %e, "audit log unavailable while registering a refusal");
        }
        NodeResponse::Refused { rationale }
    }

    /// The lookup's case reference as this node's policy in force lets an entry record it.
    fn recordable_case(&self, request: &LookupRequest) -> Option<String> {
        self.policy
            .current()
            .engine
            .policy()
            .recordable_case(&request.purpose, request.case_reference.as_deref())
            .map(str::to_owned)
    }

    /// After a CRL reload, ends the sessions of certificates it revokes (a proof is also
    /// checked against the CRL in force every time; this frees their slots at once).
    fn close_revoked_sessions(&self) {
        let generation = self.trust.generation();
        if self.seen_generation.swap(generation, Ordering::AcqRel) != generation {
            let closed = self
                .gate
                .close_revoked(|serial| self.trust.is_revoked(serial));
            if closed > 0 {
                tracing::warn!(closed, "sessions of revoked requester certificates ended");
            }
        }
    }

    /// Answers a requester's session grant, forwarded by `coordinator`: verified against
    /// the CA and CRL here, the accept signed with this node's own certificate key. Both an
    /// opened and a refused session are audited; a refusal names no requester (none is
    /// proven) and quotes nothing of the grant.
    async fn open_session(&self, coordinator: &str, grant: &str) -> NodeResponse {
        self.close_revoked_sessions();
        let unavailable = || NodeResponse::Failed {
            code: FailureCode::Unavailable,
            message: format!(
                "node `{}`: its certificate key or CRL is unavailable; retry later",
                self.node
            ),
        };
        let Some(signer) = self.trust.signer() else {
            return unavailable();
        };
        let now = UnixTime::now();
        let Some(opened) = self
            .trust
            .with_trust(|trust| self.gate.open(grant, trust, &signer, now))
        else {
            return unavailable();
        };
        let record = |kind: fedq_audit::EntryKind,
                      requester: String,
                      outcome: serde_json::Value| AuditRecord {
            at: time::OffsetDateTime::now_utc(),
            kind,
            query_id: "-".into(),
            requester,
            purpose: "-".into(),
            legal_basis: None,
            subject: "-".into(),
            target: "session".into(),
            outcome: outcome.to_string(),
            policy_version: self.policy.current().label(),
            case_reference: None,
            consent_id: None,
            node_query_ids: Default::default(),
        };
        match opened {
            Ok((accept, requester)) => {
                let entry = record(
                    fedq_audit::EntryKind::Session,
                    requester,
                    serde_json::json!({ "session": "opened", "coordinator": coordinator }),
                );
                if let Err(e) = self.audit.append(entry).await {
                    tracing::error!(error = %e, "audit log unavailable; session accept withheld");
                    return NodeResponse::Failed {
                        code: FailureCode::Unavailable,
                        message: format!(
                            "node `{}`: its audit log is unavailable, so no session is opened",
                            self.node
                        ),
                    };
                }
                NodeResponse::SessionOpened(accept)
            }
            Err(refusal) => {
                tracing::warn!(coordinator, reason = %refusal, "session grant refused");
                let entry = record(
                    fedq_audit::EntryKind::Refusal,
                    "-".into(),
                    serde_json::json!({ "session_refused": refusal.to_string(), "coordinator": coordinator }),
                );
                if let Err(e) = self.audit.append(entry).await {
                    tracing::error!(error = %e, "audit log unavailable while registering a refusal");
                }
                NodeResponse::Refused {
                    rationale: format!("node `{}`: {refusal}", self.node),
                }
            }
        }
    }

    /// Checks the lookup's requester proof before anything is read. A refusal is audited
    /// with the requester the session proves (or none, `-`) and nothing of the lookup but
    /// its subject's pseudonym; the answer is the typed [`NodeResponse::ProofRefused`].
    async fn check_proof(
        &self,
        coordinator: &str,
        request: &LookupRequest,
    ) -> Result<ProvenRequest, NodeResponse> {
        // Revocation is checked per proof against the CRL in force (and ends the session
        // there, answered `Revoked`); sessions are swept after reloads when one opens.
        let checked = self.gate.check(
            request,
            |serial| self.trust.is_revoked(serial),
            UnixTime::now(),
        );
        let Refused {
            reason,
            proven_requester,
        } = match checked {
            Ok(proven) => return Ok(proven),
            Err(refused) => refused,
        };
        tracing::warn!(
            coordinator,
            refusal = reason.code(),
            "lookup refused: its requester proof does not hold"
        );
        let entry = AuditRecord {
            at: time::OffsetDateTime::now_utc(),
            kind: fedq_audit::EntryKind::Refusal,
            query_id: "-".into(),
            requester: proven_requester.unwrap_or_else(|| "-".into()),
            purpose: "-".into(),
            legal_basis: None,
            subject: self.pseudonyms.pseudonym(request.subject.as_str()),
            target: "-".into(),
            outcome: serde_json::json!({
                "refused": "requester proof",
                "proof": reason.code(),
                "coordinator": coordinator,
            })
            .to_string(),
            policy_version: self.policy.current().label(),
            case_reference: None,
            consent_id: None,
            node_query_ids: Default::default(),
        };
        if let Err(e) = self.audit.append(entry).await {
            tracing::error!(error = %e, "audit log unavailable while registering a refusal");
        }
        Err(NodeResponse::ProofRefused {
            code: reason,
            message: format!("node `{}`: {reason}", self.node),
        })
    }

    async fn lookup(&self, coordinator: &str, request: LookupRequest) -> NodeResponse {
        if let Err(why) = crate::enforce::check_lookup(&request) {
            tracing::warn!(coordinator, reason = %why, "lookup refused for its shape");
            return self.refuse_lookup(coordinator, &request, why, true).await;
        }
        // Nothing is read, counted or decided for a lookup whose requester did not prove it.
        let proven = match self.check_proof(coordinator, &request).await {
            Ok(proven) => proven,
            Err(refused) => return refused,
        };
        let limited = match self.limiter.lock() {
            Ok(mut limiter) => limiter
                .check(&request.requester, time::OffsetDateTime::now_utc())
                .map_err(|e| e.to_string()),
            Err(_) => Err("the node's rate limiter is unavailable; retry later".to_owned()),
        };
        if let Err(why) = limited {
            tracing::warn!(
                coordinator,
                "lookup over the requester's rate limit refused"
            );
            return self
                .refuse_lookup(
                    coordinator,
                    &request,
                    format!("node `{}`: {why}", self.node),
                    false,
                )
                .await;
        }
        // The node decides with its own date, always; the coordinator's only tells it
        // whether one of the two clocks is wrong.
        let today = self.config.today();
        // The version in force when the lookup starts decides all of it.
        let policy = self.policy.current();
        if let Err(why) = crate::enforce::screen(&policy.engine, &request) {
            // Nothing of the request but its subject's pseudonym (and its requester, if the
            // policy declares it) is recorded: its names are not all the policy's, so they
            // could be anything.
            let declared = policy
                .engine
                .policy()
                .requesters
                .iter()
                .any(|r| r.name == request.requester);
            let record = AuditRecord {
                at: time::OffsetDateTime::now_utc(),
                kind: fedq_audit::EntryKind::Answer,
                query_id: request.query_id.clone(),
                requester: if declared {
                    request.requester.clone()
                } else {
                    "-".into()
                },
                purpose: "-".into(),
                legal_basis: None,
                case_reference: None,
                subject: self.pseudonyms.pseudonym(request.subject.as_str()),
                target: "-".into(),
                outcome: serde_json::json!({ "refused": why }).to_string(),
                policy_version: policy.label(),
                consent_id: self.consent_id(&request),
                node_query_ids: Default::default(),
            };
            if let Err(e) = self.audit.append(record).await {
                tracing::error!(error = %e, "audit log unavailable");
            }
            return NodeResponse::Refused { rationale: why };
        }
        // The request as a whole, under this node's own policy, before anything is read:
        // an aggregate-only purpose, a legal basis the purpose does not accept, a missing
        // consent, or a case reference that is missing or not of the purpose's form is
        // refused here whatever the coordinator decided.
        if let Err(refusal) = policy.engine.check_request(
            &request.requester,
            &request.purpose,
            request.legal_basis.as_deref(),
            request.consent.is_some(),
            request.case_reference.as_deref(),
        ) {
            tracing::warn!(
                coordinator,
                reason = refusal.code(),
                "lookup refused by the node's policy before any read"
            );
            let record = AuditRecord {
                at: time::OffsetDateTime::now_utc(),
                kind: fedq_audit::EntryKind::Refusal,
                query_id: request.query_id.clone(),
                requester: request.requester.clone(),
                purpose: request.purpose.clone(),
                legal_basis: request.legal_basis.clone(),
                case_reference: policy
                    .engine
                    .policy()
                    .recordable_case(&request.purpose, request.case_reference.as_deref())
                    .map(str::to_owned),
                subject: self.pseudonyms.pseudonym(request.subject.as_str()),
                target: request.target.describe(),
                outcome:
                    serde_json::json!({ "refused": refusal.to_string(), "code": refusal.code() })
                        .to_string(),
                policy_version: policy.label(),
                consent_id: None,
                node_query_ids: Default::default(),
            };
            if let Err(e) = self.audit.append(record).await {
                tracing::error!(error = %e, "audit log unavailable while registering a refusal");
            }
            return NodeResponse::Refused {
                rationale: format!("node `{}`: {refusal}", self.node),
            };
        }
        // A consent token is the node's own check, whatever the coordinator said: verified
        // against its CA and CRL, matched to this lookup claim by claim, and one use of it
        // reserved here. Only a token that passes all of it counts as consent.
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let (consent, reservation) = match self.verify_consent(&request, now) {
            Ok(None) => (None, None),
            Ok(Some(consent)) => match self.consent_uses.reserve(&consent, now) {
                Ok(reservation) => (Some(consent), Some(reservation)),
                Err(error) => {
                    let refusal = ConsentRefusal {
                        jti: Some(consent.jti().to_owned()),
                        error,
                    };
                    return self.refuse_consent(&request, refusal, policy.label()).await;
                }
            },
            Err(refusal) => return self.refuse_consent(&request, refusal, policy.label()).await,
        };
        let touched = crate::enforce::datasets_touched(&policy.engine, &self.department, &request);
        let names: Vec<&str> = touched.iter().map(String::as_str).collect();
        let subject = self.pseudonyms.pseudonym(request.subject.as_str());
        let mut audit = AuditRecord {
            at: time::OffsetDateTime::now_utc(),
            kind: fedq_audit::EntryKind::Answer,
            query_id: request.query_id.clone(),
            // The requester the session proves (the lookup's, once the proof held).
            requester: proven.requester,
            purpose: request.purpose.clone(),
            legal_basis: request.legal_basis.clone(),
            case_reference: policy
                .engine
                .policy()
                .recordable_case(&request.purpose, request.case_reference.as_deref())
                .map(str::to_owned),
            subject,
            target: request.target.describe(),
            outcome: String::new(),
            policy_version: policy.label(),
            consent_id: consent.as_ref().map(|c| c.jti().to_owned()),
            node_query_ids: Default::default(),
        };
        let skew = (request.date - today).whole_days();
        if skew.abs() > MAX_DATE_SKEW_DAYS {
            tracing::error!(node_date = %today, coordinator_date = %request.date, "clock skew; answering failed");
            audit.outcome =
                serde_json::json!({ "failed": "clock_skew", "node_date": today.to_string(), "coordinator_date": request.date.to_string() })
                    .to_string();
            if let Err(e) = self.audit.append(audit).await {
                tracing::error!(error = %e, "audit log unavailable while refusing a lookup");
            }
            return NodeResponse::Failed {
                code: FailureCode::ClockSkew,
                message: format!(
                    "node `{}`: clock skew: its date is {today} but the coordinator's is {}, {} days apart (at most {MAX_DATE_SKEW_DAYS} allowed); fix the clock or the pinned `today` that is wrong",
                    self.node,
                    request.date,
                    skew.abs()
                ),
            };
        }
        let (attached, stored): (Vec<&str>, Vec<&str>) = names
            .iter()
            .partition(|name| self.attached.contains_key(**name));
        let read = self
            .read(
                &policy.engine,
                request.subject.as_str(),
                &stored,
                &attached,
                today,
            )
            .await;
        let by_dataset = match read {
            Ok(found) => found,
            Err(what) => {
                audit.outcome = serde_json::json!({ "unavailable": what }).to_string();
                let _ = self.audit.append(audit).await;
                return NodeResponse::Failed {
                    code: FailureCode::Unavailable,
                    message: format!("node `{}`: its {what} is unavailable", self.node),
                };
            }
        };
        let enforced = crate::enforce::answer(
            &policy,
            &self.node,
            &self.department,
            &request,
            consent.is_some(),
            &by_dataset,
            today,
        );
        audit.outcome = enforced.audit_outcome;
        audit.policy_version = enforced.policy_version;
        // An answer the coordinator would not read is not released (nor registered as
        // released): the requester is told to ask for less.
        let size = fedq_wire::frame::encode(&enforced.response).map_or(usize::MAX, |b| b.len());
        if size > self.max_answer_len {
            let rationale = format!(
                "node `{}`: the answer would be {size} bytes, over the {}-byte limit of one answer; ask for fewer datasets or fields",
                self.node, self.max_answer_len
            );
            audit.kind = fedq_audit::EntryKind::Refusal;
            audit.outcome = serde_json::json!({ "refused": rationale }).to_string();
            if let Err(e) = self.audit.append(audit).await {
                tracing::error!(error = %e, "audit log unavailable while registering a refusal");
            }
            return NodeResponse::Refused { rationale };
        }
        tracing::debug!(coordinator, query = %request.query_id, "answering lookup");
        // An answer under a consent token is one use of it, counted in the same
        // transaction as its entry.
        let use_of = consent
            .as_ref()
            .filter(|_| matches!(enforced.response, NodeResponse::Lookup(_)))
            .map(|c| c.claims.exp);
        let appended = match use_of {
            Some(expires) => self.audit.append_consent_use(audit, expires).await,
            None => self.audit.append(audit).await,
        };
        match appended {
            Ok(_) => {
                if let (Some(reservation), Some(_)) = (reservation, use_of) {
                    reservation.answered();
                }
                enforced.response
            }
            Err(e @ fedq_audit::AuditError::TooLarge { .. }) => {
                tracing::error!(error = %e, "answer withheld: its audit entry is too large");
                NodeResponse::Refused {
                    rationale: format!(
                        "node `{}`: the answer's audit entry would be too large, so nothing is released; ask for fewer datasets or fields",
                        self.node
                    ),
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "audit log unavailable; answer withheld");
                NodeResponse::Failed {
                    code: FailureCode::Unavailable,
                    message: format!(
                        "node `{}`: its audit log is unavailable, so nothing is released",
                        self.node
                    ),
                }
            }
        }
    }
}

/// The wire form of a slot's status.
pub fn policy_state(status: &SlotStatus) -> PolicyState {
    PolicyState {
        version: status.version,
        label: status.label.clone(),
        content_sha256: status.content_sha256.clone(),
        threshold: status.threshold,
        last_refusal: status.last_refusal.clone(),
    }
}

/// Checks the node's PostgreSQL parts before anything is bound: connects to (and migrates)
/// a PostgreSQL store, and prepares each `[[attach]]` query on its database. Runs on a
/// helper thread with its own runtime, so [`Node::start`] stays synchronous and callable
/// from within a runtime; the pools it used are closed, and the caller reopens them lazily.
fn check_postgres(config: &NodeConfig, catalogue: &Catalogue) -> Result<Vec<Attached>, ServeError> {
    if config.attach.is_empty() && !matches!(config.store, StoreLocation::Postgres(_)) {
        return Ok(Vec::new());
    }
    let work = || -> Result<Vec<Attached>, ServeError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ServeError::Mismatch(format!("cannot start a runtime: {e}")))?;
        runtime.block_on(async {
            if let StoreLocation::Postgres(url) = &config.store {
                PgStore::open(url).await?.close().await;
            }
            let mut checked = Vec::with_capacity(config.attach.len());
            for spec in &config.attach {
                let a = Attached::open(spec, catalogue).await?;
                a.close().await;
                checked.push(a);
            }
            Ok(checked)
        })
    };
    std::thread::scope(|scope| {
        scope.spawn(work).join().unwrap_or_else(|_| {
            Err(ServeError::Mismatch(
                "checking the PostgreSQL databases failed unexpectedly".into(),
            ))
        })
    })
}
