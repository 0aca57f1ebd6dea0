//! `fedq node serve`: the node's QUIC endpoint, the shell around the lookup's core
//! ([`crate::lookup`], which decides every step as a plain function over data). For each
//! lookup it reads the time, hands the request to [`crate::lookup::Desk::admit`] (shape,
//! requester proof, rate limit, names, the request under this node's policy, consent,
//! clocks), reads the subject's records the core asks for (one indexed statement on the
//! store, one query per attached dataset), hands them to
//! [`crate::lookup::Pending::answer`], writes the audit entry durably, and only then
//! releases the answer ([`crate::lookup::Release::after`]). If the store, an attached
//! database or the audit log fails, no data leaves (fail closed). Sessions
//! ([`NodeRequest::OpenSession`]) and policy bundles are handled here too.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use fedq_audit::{AuditLog, AuditRecord, Pseudonymizer};
use fedq_bundle::state::{InForce, Installed, PolicySlot, SlotStatus};
use fedq_certs::FederationTrust;
use fedq_policy::ratelimit::RateLimiter;
use fedq_policy::Catalogue;
use fedq_wire::message::{FailureCode, LookupRequest, PolicyState};
use fedq_wire::proof::{ProofGate, UnixTime, DEFAULT_REPLAY_ENTRIES, DEFAULT_SESSIONS};
use fedq_wire::transport::{FrameTap, Handler, Limits, NodeEndpoint, TransportError, TrustView};
use fedq_wire::{NodeRequest, NodeResponse};

use crate::attach::{AttachError, Attached};
use crate::config::{NodeConfig, StoreLocation};
use crate::consent::ConsentUses;
use crate::evidence::Evidence;
use crate::lookup::{Admitted, Clock, Desk, ReadFailure, Reads};
use crate::postgres::PgStore;
use crate::source::Sources;
use crate::store::{SqliteStore, Store};
use crate::witnessing::NodeWitness;

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
    /// The ops listener (`ops_listen`) could not be bound.
    #[error(transparent)]
    Ops(#[from] fedq_ops::OpsError),
    /// The rights file (objections, repair applications) could not be opened.
    #[error(transparent)]
    Rights(#[from] crate::rights::RightsError),
    /// The statistics ledger (privacy budgets) could not be opened.
    #[error(transparent)]
    Ledger(#[from] crate::statistics::LedgerError),
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
    sources: Arc<Sources>,
    audit: AuditLog,
    pseudonyms: Arc<Pseudonymizer>,
    consent_uses: ConsentUses,
    /// This node's log offered to witnesses, and this node as a witness of the others.
    witness: Arc<NodeWitness>,
    /// The persons' objections and repair applications here.
    rights: Arc<crate::rights::RightsFile>,
    /// Each requester's privacy budget spent here.
    ledger: Arc<crate::statistics::Ledger>,
    endpoint: NodeEndpoint,
    max_answer_len: usize,
    /// `/health` and `/metrics`, if `ops_listen` is set.
    ops: Option<fedq_ops::OpsListener>,
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
    /// binds the socket, in the caller's runtime. Everything is checked before the socket
    /// is bound: a PostgreSQL store is connected and migrated, and each `[[attach]]` query
    /// prepared on its database; the node then serves them through pools that connect on
    /// first use, warmed up when serving starts.
    pub async fn start(config: NodeConfig, limits: Limits) -> Result<Self, ServeError> {
        // The recorder first, so every series is described and present from start.
        if fedq_ops::recorder().is_some() {
            crate::ops::describe_metrics();
        }
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
        let checked = check_postgres(&config, &catalogue).await?;
        let store = match &config.store {
            StoreLocation::Sqlite(path) => Store::Sqlite(SqliteStore::open(path)?),
            StoreLocation::Postgres(url) => Store::Postgres(PgStore::open_lazy(url)?),
        };
        let attached = checked
            .iter()
            .map(Attached::reopen_lazily)
            .collect::<Result<Vec<_>, _>>()?;
        let sources = Sources::new(store, attached);
        let pseudonyms = Pseudonymizer::load_or_create(&config.pseudonym_key)?;
        // The uses this node answered under each consent token, from its own audit log.
        let consent_uses = ConsentUses::load(
            &config.audit,
            time::OffsetDateTime::now_utc().unix_timestamp(),
        )?;
        let audit = AuditLog::open_signing(&config.audit, audit_signing(&config)?)?;
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
        let witness = Arc::new(node_witness(&config, &audit)?);
        let rights = Arc::new(crate::rights::RightsFile::open(&config.rights_state)?);
        let ledger = Arc::new(crate::statistics::Ledger::open(&config.statistics_state)?);
        let ops = config
            .ops_listen
            .map(fedq_ops::OpsListener::bind)
            .transpose()?;
        metrics::gauge!(crate::ops::POLICY_VERSION).set(policy.current().version as f64);
        Ok(Self {
            department: catalogue.department,
            config,
            policy: Arc::new(policy),
            sources: Arc::new(sources),
            audit,
            pseudonyms: Arc::new(pseudonyms),
            consent_uses,
            witness,
            rights,
            ledger,
            endpoint,
            max_answer_len,
            ops,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.endpoint.local_addr()
    }

    /// Where `/health` and `/metrics` are served, if anywhere.
    pub fn ops_addr(&self) -> Option<std::net::SocketAddr> {
        self.ops.as_ref().and_then(|o| o.local_addr().ok())
    }

    /// The TLS refusals this node made.
    pub fn refusals(&self) -> fedq_certs::RefusalLog {
        self.endpoint.refusals()
    }

    /// Serves until `shutdown` resolves. `tap` sees every encoded answer frame.
    pub async fn serve(self, tap: Option<FrameTap>, shutdown: impl Future<Output = ()>) {
        self.sources.warm_up().await;
        let limiter = RateLimiter::second_counter(self.policy.current().engine.policy());
        let trust = self.endpoint.trust_view();
        let gate = ProofGate::new(
            &trust.identity().federation,
            &self.config.name,
            DEFAULT_SESSIONS,
            DEFAULT_REPLAY_ENTRIES,
        );
        let refused_peer_date = Arc::new(Mutex::new(None));
        let ops_task = self.ops.map(|ops| {
            let probe = crate::ops::NodeProbe {
                node: self.config.name.clone(),
                sources: Arc::clone(&self.sources),
                audit: self.audit.clone(),
                policy: Arc::clone(&self.policy),
                trust: trust.clone(),
                pinned: self.config.today,
                refused_peer_date: Arc::clone(&refused_peer_date),
            };
            tokio::spawn(ops.serve(Arc::new(probe), fedq_ops::recorder()))
        });
        let retention = tokio::spawn(fedq_audit::keep_retention(
            self.audit.clone(),
            fedq_audit::RETENTION_CHECK_EVERY,
            {
                let policy = Arc::clone(&self.policy);
                move || policy.audit_retention()
            },
        ));
        let ctx = Arc::new(Context {
            refused_peer_date,
            seen_generation: AtomicU64::new(trust.generation()),
            key_generation: AtomicU64::new(trust.generation()),
            gate,
            trust,
            limiter: Mutex::new(limiter),
            max_answer_len: self.max_answer_len,
            node: self.config.name.clone(),
            department: self.department,
            policy: self.policy,
            sources: self.sources,
            audit: self.audit,
            pseudonyms: self.pseudonyms,
            consent_trust: self.endpoint.trust(),
            consent_uses: self.consent_uses,
            witness: self.witness,
            rights: self.rights,
            ledger: self.ledger,
            cross: Default::default(),
            config: self.config,
        });
        let handler: Handler = Arc::new(move |peer, request| {
            let ctx = Arc::clone(&ctx);
            Box::pin(async move {
                ctx.follow_certificate();
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
                    // Witnessing (issue 18 §3), relayed by the coordinator, believed
                    // only as far as the log's certificate and proofs check here.
                    NodeRequest::AuditCheckpoint { from } => {
                        ctx.witness.offer(&ctx.node, from).await
                    }
                    NodeRequest::Witness(request) => {
                        let log = ctx
                            .trust
                            .with_trust(|trust| crate::witnessing::log_of(trust, &request))
                            .unwrap_or_else(|| {
                                Err(fedq_audit::witness::Refusal::Store(
                                    "the federation's CA is unavailable".into(),
                                ))
                            });
                        ctx.witness.witness(log, request).await
                    }
                    NodeRequest::Aggregate(request) => ctx.aggregate(request).await,
                    NodeRequest::CrossCount(request) => ctx.cross_count(request).await,
                }
            })
        });
        self.endpoint.serve(handler, tap, shutdown).await;
        retention.abort();
        // Its handle on the log goes before this returns, as every other one does.
        let _ = retention.await;
        if let Some(task) = ops_task {
            task.abort();
        }
    }
}

struct Context {
    /// The coordinator's date of the last lookup refused for clock skew, until a lookup
    /// passes the date check (read by `/health`).
    refused_peer_date: Arc<Mutex<Option<time::Date>>>,
    /// Requesters' sessions with this node and the proofs already seen.
    gate: ProofGate,
    /// The CA, CRL and certificate key in force (kept current by the endpoint's reloads).
    trust: TrustView,
    /// The reload generation whose CRL the sessions were last checked against.
    seen_generation: AtomicU64,
    /// The reload generation whose certificate the audit log and witness sign with.
    key_generation: AtomicU64,
    /// The policy's per-requester limits, counted again here: a coordinator that was
    /// taken over is throttled all the same.
    limiter: Mutex<RateLimiter>,
    /// The largest answer frame the coordinator reads.
    max_answer_len: usize,
    node: String,
    department: String,
    policy: Arc<PolicySlot>,
    /// The store and the attached databases, asked for a lookup's datasets one way.
    sources: Arc<Sources>,
    audit: AuditLog,
    pseudonyms: Arc<Pseudonymizer>,
    /// The CA and CRL the endpoint keeps current: consent tokens are verified against it.
    consent_trust: Arc<RwLock<FederationTrust>>,
    consent_uses: ConsentUses,
    witness: Arc<NodeWitness>,
    rights: Arc<crate::rights::RightsFile>,
    ledger: Arc<crate::statistics::Ledger>,
    /// The cross counts this node opened as the counting department.
    cross: crate::statistics::OpenCrosses,
    config: NodeConfig,
}

use crate::statistics::Admitted as AdmittedAggregate;

impl Context {
    /// Reads what an admitted lookup needs from its sources ([`Sources::read`]: one
    /// statement on the store, inline for SQLite; one query per attached dataset). The
    /// records are checked against the catalogue by the lookup's core
    /// ([`crate::lookup::Pending::answer`]). On failure, counts and logs it (never a
    /// record's key) and names what failed (for the answer and the audit entry), never
    /// why in terms of data.
    async fn read(
        &self,
        subject: &str,
        reads: &Reads,
    ) -> Result<BTreeMap<String, Evidence>, ReadFailure> {
        self.sources
            .read(subject, &reads.datasets)
            .await
            .map_err(|failed| {
                let part = failed.part;
                metrics::counter!(crate::ops::STORE_ERRORS, "source" => part.metric_source())
                    .increment(1);
                match part {
                    ReadFailure::Store => {
                        tracing::error!(error = %failed, "store unavailable; answering unavailable");
                    }
                    ReadFailure::AttachedDatabase => {
                        tracing::error!(error = %failed, "attached database unavailable; answering unavailable");
                    }
                }
                part
            })
    }

    /// What the rights file marks of a subject's records (open objections, corrections,
    /// removals). A file that cannot be read fails the lookup closed: a disputed record
    /// must not count in a verdict by accident.
    fn marks(&self, pseudonym: &str) -> Result<crate::rights::Marks, ReadFailure> {
        self.rights.marks(pseudonym).map_err(|e| {
            tracing::error!(error = %e, "rights file unavailable; answering unavailable");
            ReadFailure::Store
        })
    }

    /// What a rights lookup reads besides records: the log's entries about the person
    /// with inclusion proofs against its newest kept checkpoint (the register only), and
    /// the person's objections and repair applications. Off the runtime (the log is read
    /// by a scan).
    async fn rights_read(
        &self,
        right: fedq_wire::rights::Right,
        pseudonym: &str,
    ) -> Result<crate::lookup::RightsRead, ReadFailure> {
        let rights = Arc::clone(&self.rights);
        let audit_path = self.config.audit.clone();
        let pseudonym = pseudonym.to_owned();
        let read = tokio::task::spawn_blocking(move || {
            let (objections, repairs) = rights.of_subject(&pseudonym).map_err(|e| e.to_string())?;
            let marks = if right == fedq_wire::rights::Right::RepairApplications {
                rights.marks(&pseudonym).map_err(|e| e.to_string())?
            } else {
                crate::rights::Marks::default()
            };
            let mut out = crate::lookup::RightsRead {
                objections,
                repairs,
                marks,
                ..Default::default()
            };
            if right == fedq_wire::rights::Right::Register {
                let latest =
                    fedq_audit::latest_checkpoint(&audit_path).map_err(|e| e.to_string())?;
                let size = latest.as_ref().map_or(0, |(size, _)| *size);
                let entries = fedq_audit::entries_about_all(&audit_path, &pseudonym, size)
                    .map_err(|e| e.to_string())?;
                out.register = entries;
                out.checkpoint = latest.map(|(_, note)| note);
            }
            Ok::<_, String>(out)
        })
        .await;
        match read {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "register or rights file unavailable; answering unavailable");
                Err(ReadFailure::Store)
            }
            Err(_) => Err(ReadFailure::Store),
        }
    }

    /// Writes what a rights lookup filed into the rights file.
    async fn file(&self, f: crate::lookup::ToFile) -> Result<(), crate::rights::RightsError> {
        let rights = Arc::clone(&self.rights);
        tokio::task::spawn_blocking(move || match f.right {
            fedq_wire::rights::Right::ApplyRepair => {
                rights.file_repair(&f.id, &f.subject, &f.dataset, &f.filing, &f.at)
            }
            _ => rights.file_objection(&f.id, &f.subject, &f.dataset, &f.filing, &f.at),
        })
        .await
        .unwrap_or_else(|_| {
            Err(crate::rights::RightsError::Database {
                path: "rights file".into(),
                reason: "the writer task failed".into(),
            })
        })
    }

    /// Verifies and installs a policy bundle (off the runtime: it reads the CA, CRL and
    /// catalogues and writes the state file). Queries already running keep their version.
    async fn install_policy(&self, coordinator: &str, bundle: String) -> NodeResponse {
        let slot = Arc::clone(&self.policy);
        let outcome = tokio::task::spawn_blocking(move || slot.install(&bundle)).await;
        let record = |kind: fedq_audit::EntryKind, outcome: fedq_audit::Outcome| AuditRecord {
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
            answer_sha256: None,
        };
        if let Ok(Ok(Installed::Applied { .. })) = &outcome {
            // The new version's limits from now on; what was used so far stays used.
            if let Ok(mut limiter) = self.limiter.lock() {
                limiter.set_limits(self.policy.current().engine.policy());
            }
            metrics::gauge!(crate::ops::POLICY_VERSION).set(self.policy.current().version as f64);
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
                    fedq_audit::Outcome::policy_installed(version, &content_sha256, &approved_by),
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
                        fedq_audit::Outcome::json(
                            &serde_json::json!({ "refused": refusal.to_string() }),
                        ),
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

    /// After a reload that renewed this node's certificate with a new key, signs with that
    /// key what others check with the certificate: the audit log's tree heads (so
    /// receipts and checkpoints), and the witness's cosignatures; and ends every requester
    /// session, whose accept the old key signed, so that requesters open new ones and
    /// learn the key their receipts are checked against. One atomic load per request
    /// otherwise.
    fn follow_certificate(&self) {
        let generation = self.trust.generation();
        if self.key_generation.load(Ordering::Acquire) == generation {
            return;
        }
        let Some(serving) = self.trust.signer() else {
            return;
        };
        let serving = serving.certificate().to_vec();
        if serving == self.witness.certificate() {
            self.key_generation.store(generation, Ordering::Release);
            return;
        }
        let tls = &self.config.tls;
        let creds = match fedq_certs::tls::Credentials::load(&tls.cert, &tls.key) {
            Ok(creds) => creds,
            Err(e) => {
                tracing::error!(error = %e, "the renewed certificate's key does not load; the audit log signs with the previous key");
                return;
            }
        };
        let (chain, key) = creds.chain_and_key();
        // The files may have moved on since the endpoint loaded them; take only the pair
        // it serves, and look again at the next request otherwise.
        if chain.first().map(|c| c.as_ref()) != Some(serving.as_slice()) {
            return;
        }
        let id = creds.identity();
        let signers = fedq_audit::checkpoint::NoteSigner::from_pkcs8(
            &fedq_audit::checkpoint::log_name(&id.federation, id.role.as_str(), &id.name),
            key.secret_der(),
        )
        .and_then(|log| {
            fedq_audit::checkpoint::NoteSigner::from_pkcs8(
                &fedq_audit::checkpoint::witness_name(&id.federation, &id.name),
                key.secret_der(),
            )
            .map(|witness| (log, witness))
        });
        let (log, witness) = match signers {
            Ok(signers) => signers,
            Err(e) => {
                tracing::error!(error = %e, "the renewed certificate's key cannot sign checkpoints; the audit log signs with the previous key");
                return;
            }
        };
        let key_changed = fedq_certs::jws::certificate_public_key(&serving)
            != fedq_certs::jws::certificate_public_key(&self.witness.certificate());
        if let Err(e) = self.witness.follow(serving, witness) {
            tracing::error!(error = %e, "the witness cannot take the renewed key");
            return;
        }
        self.audit.follow_signer(log);
        self.key_generation.store(generation, Ordering::Release);
        if key_changed {
            let closed = self.gate.close_revoked(|_| true);
            tracing::warn!(
                closed,
                "certificate renewed with a new key: checkpoints, receipts and cosignatures are signed with it; requester sessions ended"
            );
        }
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
            outcome: fedq_audit::Outcome::json(&outcome),
            policy_version: self.policy.current().label(),
            case_reference: None,
            consent_id: None,
            node_query_ids: Default::default(),
            answer_sha256: None,
        };
        match opened {
            Ok((accept, requester)) => {
                metrics::counter!(crate::ops::SESSIONS, "outcome" => "opened").increment(1);
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
                metrics::counter!(crate::ops::SESSIONS, "outcome" => "refused").increment(1);
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

    /// The entry of an aggregate query or cross-count step (kind `statistic`): who the
    /// proof names, the purpose when it is the policy's, the target, what happened — never
    /// a person.
    fn statistic_entry(
        &self,
        policy: &InForce,
        request: &fedq_wire::message::AggregateRequest,
        requester: &str,
        outcome: serde_json::Value,
    ) -> AuditRecord {
        let known = policy
            .engine
            .policy()
            .purposes
            .iter()
            .any(|p| p.name == request.purpose);
        AuditRecord {
            at: time::OffsetDateTime::now_utc(),
            kind: fedq_audit::EntryKind::Statistic,
            query_id: request.query_id.clone(),
            requester: requester.to_owned(),
            purpose: if known {
                request.purpose.clone()
            } else {
                "-".into()
            },
            legal_basis: None,
            case_reference: None,
            subject: "-".into(),
            target: request.target.describe(),
            outcome: fedq_audit::Outcome::json(&outcome),
            policy_version: policy.label(),
            consent_id: None,
            node_query_ids: Default::default(),
            answer_sha256: None,
        }
    }

    /// Writes `entry`, then answers `response`; nothing but a failure if it cannot.
    async fn audited(&self, entry: AuditRecord, response: NodeResponse) -> NodeResponse {
        match self.audit.append(entry).await {
            Ok(_) => response,
            Err(e) => {
                tracing::error!(error = %e, "audit log unavailable; nothing released");
                NodeResponse::Failed {
                    code: FailureCode::Unavailable,
                    message: format!(
                        "node `{}`: its audit log is unavailable; nothing was released",
                        self.node
                    ),
                }
            }
        }
    }

    /// What opens this department's part of an aggregate query, in order: the requester's
    /// proof (as a lookup's, with nothing sealed), the date, this node's own policy
    /// (`Engine::check_aggregate`), the rate limit, a dataset of this department at
    /// `position` (or any, for `None`), and the ε spent in the ledger. Every refusal is
    /// audited and answered here (`Err`).
    async fn admit_aggregate(
        &self,
        policy: &InForce,
        request: &fedq_wire::message::AggregateRequest,
        position: Option<usize>,
    ) -> Result<AdmittedAggregate, NodeResponse> {
        use crate::statistics::Spend;
        use fedq_policy::statistics::format_epsilon;
        let now = time::OffsetDateTime::now_utc();
        let today = self.config.today();
        let unix = fedq_wire::proof::UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            now.unix_timestamp().max(0).unsigned_abs(),
        ));
        let proven =
            match self
                .gate
                .check_aggregate(request, |serial| self.trust.is_revoked(serial), unix)
            {
                Ok(p) => p,
                Err(refused) => {
                    let who = refused
                        .proven_requester
                        .clone()
                        .unwrap_or_else(|| "-".into());
                    let code = refused.reason;
                    let entry = self.statistic_entry(
                        policy,
                        request,
                        &who,
                        serde_json::json!({ "proof_refused": code.code() }),
                    );
                    let response = NodeResponse::ProofRefused {
                        message: format!("node `{}`: {code}", self.node),
                        code,
                    };
                    return Err(self.audited(entry, response).await);
                }
            };
        let requester = proven.requester;
        // The entry records the refusal's kind only: a refusal's words may quote what the
        // request said (an unknown purpose), which no entry holds.
        let refuse = |code: &'static str, why: String| {
            let entry = self.statistic_entry(
                policy,
                request,
                &requester,
                serde_json::json!({ "refused": code }),
            );
            let response = NodeResponse::Refused {
                rationale: format!("node `{}`: {why}", self.node),
            };
            async move { Err(self.audited(entry, response).await) }
        };
        if (request.date - today).whole_days().abs() > fedq_wire::message::MAX_DATE_SKEW_DAYS {
            let entry = self.statistic_entry(
                policy,
                request,
                &requester,
                serde_json::json!({ "failed": "clock_skew" }),
            );
            let response = NodeResponse::Failed {
                code: FailureCode::ClockSkew,
                message: format!(
                    "node `{}`: the coordinator's date {} is more than a day from this node's {today}",
                    self.node, request.date
                ),
            };
            return Err(self.audited(entry, response).await);
        }
        let statistics = match policy.engine.check_aggregate(
            &requester,
            &request.purpose,
            request.legal_basis.as_deref(),
            &request.target,
        ) {
            Ok(s) => s.clone(),
            Err(refusal) => return refuse(refusal.code(), refusal.to_string()).await,
        };
        let limited = match self.limiter.lock() {
            Ok(mut limiter) => limiter.check(&requester, now).map_err(|e| e.to_string()),
            Err(_) => Err("the node's rate limiter is unavailable; retry later".to_owned()),
        };
        if let Err(why) = limited {
            return refuse("rate_limited", why).await;
        }
        let datasets: Vec<String> = match position {
            None => crate::statistics::own_datasets(&self.department, &request.target)
                .into_iter()
                .map(str::to_owned)
                .collect(),
            Some(i) => request
                .target
                .datasets
                .get(i)
                .filter(|d| d.split('.').next() == Some(self.department.as_str()))
                .cloned()
                .into_iter()
                .collect(),
        };
        if datasets.is_empty() {
            return refuse(
                "no_dataset_here",
                "the query counts no dataset of this department at this step".into(),
            )
            .await;
        }
        let renews_on = statistics.period.renews_on(today);
        let period = statistics.period.key(today);
        let left =
            match self
                .ledger
                .spend(&requester, &period, statistics.epsilon, statistics.budget)
            {
                Ok(Spend::Paid { left }) => left,
                Ok(Spend::Refused { left }) => {
                    let entry = self.statistic_entry(
                        policy,
                        request,
                        &requester,
                        serde_json::json!({
                            "refused": "budget spent",
                            "epsilon": format_epsilon(statistics.epsilon),
                            "left": format_epsilon(left),
                            "renews_on": renews_on.to_string(),
                        }),
                    );
                    let response = NodeResponse::Aggregate {
                        node: self.node.clone(),
                        policy_version: policy.label(),
                        answer: fedq_wire::message::AggregateAnswer::BudgetSpent {
                            epsilon: statistics.epsilon,
                            left,
                            renews_on,
                        },
                    };
                    return Err(self.audited(entry, response).await);
                }
                Err(e) => {
                    tracing::error!(error = %e, "statistics ledger unavailable; nothing counted");
                    return Err(NodeResponse::Failed {
                        code: FailureCode::Unavailable,
                        message: format!(
                            "node `{}`: its privacy-budget ledger is unavailable; try again later",
                            self.node
                        ),
                    });
                }
            };
        Ok(AdmittedAggregate {
            requester,
            statistics,
            datasets,
            left,
            renews_on,
            period,
            today,
        })
    }

    /// The noisy, suppressed release of `cells`, audited, as the answer.
    async fn release_cells(
        &self,
        policy: &InForce,
        request: &fedq_wire::message::AggregateRequest,
        admitted: &AdmittedAggregate,
        cells: &BTreeMap<fedq_policy::statistics::CellKey, u64>,
        sensitivity: u64,
    ) -> NodeResponse {
        use fedq_policy::statistics::{format_epsilon, release, DiscreteLaplace, SystemBytes};
        let statistics = &admitted.statistics;
        let mut noise = DiscreteLaplace::new(SystemBytes::default());
        let released = match release(
            cells,
            sensitivity,
            statistics.epsilon,
            statistics.min_cell,
            &mut noise,
        ) {
            Ok(r) => r,
            Err(e) => {
                return self
                    .spent_but_failed(policy, request, admitted, e.to_string())
                    .await
            }
        };
        let suppressed = released.iter().filter(|c| c.count.is_none()).count();
        let entry = self.statistic_entry(
            policy,
            request,
            &admitted.requester,
            serde_json::json!({
                "cells": released.len(),
                "suppressed": suppressed,
                "epsilon": format_epsilon(statistics.epsilon),
                "left": format_epsilon(admitted.left),
                "period": admitted.period,
            }),
        );
        let response = NodeResponse::Aggregate {
            node: self.node.clone(),
            policy_version: policy.label(),
            answer: fedq_wire::message::AggregateAnswer::Released {
                cells: released,
                epsilon: statistics.epsilon,
                left: admitted.left,
                renews_on: admitted.renews_on,
            },
        };
        self.audited(entry, response).await
    }

    /// A failure after the ε was spent: audited, answered `failed`.
    async fn spent_but_failed(
        &self,
        policy: &InForce,
        request: &fedq_wire::message::AggregateRequest,
        admitted: &AdmittedAggregate,
        why: String,
    ) -> NodeResponse {
        let entry = self.statistic_entry(
            policy,
            request,
            &admitted.requester,
            serde_json::json!({
                "failed": why,
                "epsilon": fedq_policy::statistics::format_epsilon(admitted.statistics.epsilon),
            }),
        );
        let response = NodeResponse::Failed {
            code: FailureCode::Unavailable,
            message: format!("node `{}`: {why}; the query's ε is spent", self.node),
        };
        self.audited(entry, response).await
    }

    /// One aggregate query (issue 20 §2): admitted ([`Self::admit_aggregate`]), this
    /// department's datasets counted over their domains, released with noise of scale
    /// Δ/ε (Δ: the number of its datasets, each person once in each) and suppressed.
    async fn aggregate(&self, request: fedq_wire::message::AggregateRequest) -> NodeResponse {
        let policy = self.policy.current();
        if request.target.intersect {
            return NodeResponse::Refused {
                rationale: format!(
                    "node `{}`: a count of the persons in both datasets runs as a cross count",
                    self.node
                ),
            };
        }
        let admitted = match self.admit_aggregate(&policy, &request, None).await {
            Ok(a) => a,
            Err(response) => return response,
        };
        let names: Vec<&str> = admitted.datasets.iter().map(String::as_str).collect();
        let counted = crate::statistics::count(
            &self.sources,
            policy.engine.datasets(),
            &self.rights,
            &admitted.statistics,
            &request.target,
            &names,
            admitted.today,
        )
        .await;
        match counted {
            Ok(cells) => {
                self.release_cells(&policy, &request, &admitted, &cells, names.len() as u64)
                    .await
            }
            Err(why) => {
                self.spent_but_failed(&policy, &request, &admitted, why)
                    .await
            }
        }
    }

    /// The persons of this department's one dataset of a cross count.
    async fn cross_persons(
        &self,
        policy: &InForce,
        request: &fedq_wire::message::AggregateRequest,
        admitted: &AdmittedAggregate,
    ) -> Result<Vec<String>, String> {
        crate::statistics::persons(
            &self.sources,
            policy.engine.datasets(),
            &self.rights,
            &request.target,
            admitted.datasets.first().map_or("", String::as_str),
            admitted.today,
        )
        .await
    }

    /// The entry of a cross count's `blind` or `raise` step: the ε it spent and left.
    fn step_entry(
        &self,
        policy: &InForce,
        request: &fedq_wire::message::AggregateRequest,
        admitted: &AdmittedAggregate,
        step: &str,
    ) -> AuditRecord {
        use fedq_policy::statistics::format_epsilon;
        self.statistic_entry(
            policy,
            request,
            &admitted.requester,
            serde_json::json!({
                "step": step,
                "epsilon": format_epsilon(admitted.statistics.epsilon),
                "left": format_epsilon(admitted.left),
            }),
        )
    }

    /// One step of a cross-department count ([`fedq_wire::psi`]): `Blind` and `Raise` open
    /// this department's part as any aggregate query (proof, policy, budget) and answer a
    /// signed point set; `Count` finishes the counting department's part it opened.
    async fn cross_count(&self, cross: fedq_wire::message::CrossRequest) -> NodeResponse {
        use fedq_wire::message::{CrossAnswer, CrossStep};
        use fedq_wire::psi::{self, Blinder};
        let policy = self.policy.current();
        let request = cross.query;
        if !request.target.intersect {
            return NodeResponse::Refused {
                rationale: format!(
                    "node `{}`: a cross count is for `intersect` queries",
                    self.node
                ),
            };
        }
        let Some(signer) = self.trust.signer() else {
            return NodeResponse::Failed {
                code: FailureCode::Unavailable,
                message: format!("node `{}`: its certificate key is unavailable", self.node),
            };
        };
        let department = |i: usize| {
            request
                .target
                .datasets
                .get(i)
                .and_then(|d| d.split('.').next())
                .unwrap_or_default()
                .to_owned()
        };
        let now_secs = time::OffsetDateTime::now_utc()
            .unix_timestamp()
            .max(0)
            .unsigned_abs();
        let sign = |kind: &str, salt: &str, query: &str, input: &str, points: Vec<[u8; 32]>| {
            crate::statistics::sign_set(
                &signer, &self.node, kind, salt, query, input, points, now_secs,
            )
        };
        let verify =
            |set: &psi::SignedSet, node: &str, kind: &str, query: &str, salt: Option<&str>| {
                self.trust
                    .with_trust(|trust| {
                        crate::statistics::verify_set(trust, set, node, kind, query, salt, now_secs)
                    })
                    .unwrap_or_else(|| Err("the federation's CA is unavailable".into()))
            };
        // Both departments bind their sets to the query as the request names it; the
        // admission checks that the proven requester is the one named.
        let binding = crate::statistics::query_binding(&request);
        match cross.step {
            CrossStep::Blind => {
                let admitted = match self.admit_aggregate(&policy, &request, Some(0)).await {
                    Ok(a) => a,
                    Err(response) => return response,
                };
                let persons = self.cross_persons(&policy, &request, &admitted).await;
                let blinded = persons.and_then(|persons| {
                    let blinder = Blinder::new().map_err(|e| e.to_string())?;
                    let salt = psi::fresh_salt().map_err(|e| e.to_string())?;
                    let points = blinder
                        .blind(&salt, persons.iter().map(String::as_str))
                        .map_err(|e| e.to_string())?;
                    let count = points.len();
                    let sent_sha256 = psi::points_digest(&points);
                    let set = sign("blinded", &salt, &binding, "", points)?;
                    let handle = psi::fresh_salt().map_err(|e| e.to_string())?;
                    Ok((blinder, salt, set, handle, count, sent_sha256))
                });
                let (blinder, salt, set, handle, count, sent_sha256) = match blinded {
                    Ok(b) => b,
                    Err(why) => {
                        return self
                            .spent_but_failed(&policy, &request, &admitted, why)
                            .await
                    }
                };
                let entry = self.step_entry(&policy, &request, &admitted, "blind");
                self.cross.open(
                    handle.clone(),
                    crate::statistics::OpenCross {
                        blinder,
                        salt,
                        sent: count,
                        other: department(1),
                        admitted,
                        request: request.clone(),
                        sent_sha256,
                        opened: std::time::Instant::now(),
                    },
                );
                self.audited(
                    entry,
                    NodeResponse::CrossCount(CrossAnswer::Blinded { handle, set }),
                )
                .await
            }
            CrossStep::Raise { blinded } => {
                // The counting department's set first: a set it did not sign is never
                // raised (that would answer whoever sent it about this department's persons).
                let claims = match verify(&blinded, &department(0), "blinded", &binding, None) {
                    Ok(c) => c,
                    Err(why) => {
                        let entry = self.statistic_entry(
                            &policy,
                            &request,
                            "-",
                            serde_json::json!({ "step": "raise", "refused": "blinded_set" }),
                        );
                        let response = NodeResponse::Refused {
                            rationale: format!("node `{}`: the blinded set {why}", self.node),
                        };
                        return self.audited(entry, response).await;
                    }
                };
                let admitted = match self.admit_aggregate(&policy, &request, Some(1)).await {
                    Ok(a) => a,
                    Err(response) => return response,
                };
                let persons = self.cross_persons(&policy, &request, &admitted).await;
                let raised = persons.and_then(|persons| {
                    let blinder = Blinder::new().map_err(|e| e.to_string())?;
                    let raised = blinder.raise(&blinded.points).map_err(|e| e.to_string())?;
                    let own = blinder
                        .blind(&claims.salt, persons.iter().map(String::as_str))
                        .map_err(|e| e.to_string())?;
                    Ok((
                        sign("raised", &claims.salt, &binding, &claims.sha256, raised)?,
                        sign("own", &claims.salt, &binding, "", own)?,
                    ))
                });
                let (raised, own) = match raised {
                    Ok(r) => r,
                    Err(why) => {
                        return self
                            .spent_but_failed(&policy, &request, &admitted, why)
                            .await
                    }
                };
                let entry = self.step_entry(&policy, &request, &admitted, "raise");
                self.audited(
                    entry,
                    NodeResponse::CrossCount(CrossAnswer::Raised { raised, own }),
                )
                .await
            }
            CrossStep::Count {
                handle,
                raised,
                own,
            } => {
                let Some(open) = self.cross.take(&handle) else {
                    return NodeResponse::Refused {
                        rationale: format!(
                            "node `{}`: no cross count is open under that handle (it lasts {} s)",
                            self.node,
                            crate::statistics::CROSS_LIFETIME.as_secs()
                        ),
                    };
                };
                // Released and registered under the request `Blind` admitted, whatever this
                // step's request says.
                let request = &open.request;
                let binding = crate::statistics::query_binding(request);
                let checked = verify(&raised, &open.other, "raised", &binding, Some(&open.salt))
                    .and_then(|c| {
                        if c.count as usize == open.sent && c.input == open.sent_sha256 {
                            Ok(())
                        } else {
                            Err("raised set is not the set sent, raised".to_owned())
                        }
                    })
                    .and_then(|()| {
                        verify(&own, &open.other, "own", &binding, Some(&open.salt)).map(|_| ())
                    })
                    .and_then(|()| open.blinder.raise(&own.points).map_err(|e| e.to_string()));
                let theirs = match checked {
                    Ok(t) => t,
                    Err(why) => {
                        return self
                            .spent_but_failed(&policy, request, &open.admitted, why)
                            .await
                    }
                };
                let both = psi::common(&raised.points, &theirs);
                let key = fedq_policy::statistics::CellKey {
                    dataset: request.target.datasets.join("&"),
                    district: None,
                    year: None,
                    category: None,
                };
                let cells = BTreeMap::from([(key, both)]);
                // One person changes the number of persons in both by one.
                self.release_cells(&policy, request, &open.admitted, &cells, 1)
                    .await
            }
        }
    }

    /// One lookup: decided by the node's core ([`crate::lookup`]) with this process's time,
    /// its records read here, its entry written, and only then its response released.
    async fn lookup(&self, coordinator: &str, request: LookupRequest) -> NodeResponse {
        let started = std::time::Instant::now();
        let coordinator_date = request.date;
        // The version in force when the lookup starts decides all of it.
        let policy = self.policy.current();
        let is_revoked = |serial: &str| self.trust.is_revoked(serial);
        let desk = Desk {
            node: &self.node,
            department: &self.department,
            policy: &policy,
            pseudonyms: &self.pseudonyms,
            gate: &self.gate,
            is_revoked: &is_revoked,
            limiter: &self.limiter,
            consent_uses: &self.consent_uses,
            max_answer_len: self.max_answer_len,
        };
        let clock = Clock {
            now: time::OffsetDateTime::now_utc(),
            today: self.config.today(),
        };
        let admitted = {
            let trust = self.consent_trust.read().ok();
            desk.admit(coordinator, request, clock, trust.as_deref())
        };
        let finished = match admitted {
            Admitted::Finished(finished) => *finished,
            Admitted::Read(pending) => {
                // It passed the date check: the clocks agree again.
                if let Ok(mut refused) = self.refused_peer_date.lock() {
                    *refused = None;
                }
                let read = self.read(pending.subject(), pending.reads()).await;
                match pending.reads().right {
                    Some(right) => {
                        let rights = self.rights_read(right, pending.pseudonym()).await;
                        pending.answer_rights(&desk, read, rights)
                    }
                    None => match self.marks(pending.pseudonym()) {
                        Ok(marks) => pending.answer(&desk, read, &marks),
                        Err(failure) => pending.answer(&desk, Err(failure), &Default::default()),
                    },
                }
            }
        };
        let mut finished = finished;
        let to_file = finished.take_filing();
        let (entry, consent_use, release) = finished.into_parts();
        let appended = match consent_use {
            Some(expires) => {
                self.audit
                    .append_consent_use_committed(entry, expires)
                    .await
            }
            None => self.audit.append_committed(entry).await,
        };
        let outcome = release.outcome(appended.as_ref().map(|_| ()));
        if outcome == crate::lookup::LookupOutcome::ClockSkew {
            if let Ok(mut refused) = self.refused_peer_date.lock() {
                *refused = Some(coordinator_date);
            }
        }
        metrics::counter!(crate::ops::LOOKUPS, "outcome" => outcome.label()).increment(1);
        metrics::histogram!(crate::ops::LOOKUP_SECONDS).record(started.elapsed().as_secs_f64());
        let mut response = release.after(appended.as_ref().map(|_| ()));
        // What a rights lookup files is written once its entry is durable; if that fails,
        // the person is told nothing was filed (the entry stays, registering the attempt).
        if let (Some(filing), Ok(_)) = (to_file, &appended) {
            if let Err(e) = self.file(filing).await {
                tracing::error!(error = %e, "the rights file is unavailable; nothing was filed");
                response = NodeResponse::Failed {
                    code: FailureCode::Unavailable,
                    message: format!(
                        "node `{}`: its rights file is unavailable, so nothing was filed; try again later",
                        self.node
                    ),
                };
            }
        }
        // No receipt, no data (issue 18 §4): the answer carries the signed commitment to
        // the entry just made durable for it.
        if let (NodeResponse::Lookup(answer), Ok(committed)) = (&mut response, appended) {
            answer.receipt = committed.receipt.map(|r| fedq_wire::message::AuditReceipt {
                checkpoint: r.checkpoint,
                index: r.index,
                entry_hash: r.entry_hash,
                content_hash: r.content_hash,
                proof: r.proof,
            });
        }
        response
    }
}

/// The node's audit log signs its tree heads with the node's own certificate key (the
/// TLS key `fedq certs` wrote, PKCS#8 P-256), under the key name
/// `fedq/<federation>/node/<name>` from the certificate: requesters check each answer's
/// receipt against the certificate they already verify the node's session accept with.
fn audit_signing(config: &NodeConfig) -> Result<fedq_audit::Signing, ServeError> {
    // Loaded as the endpoint loads it: a missing or unusable key fails as binding would.
    fedq_audit::Signing::from_certificate(
        &config.tls.cert,
        &config.tls.key,
        fedq_audit::Cadence {
            entries: config.checkpoint_entries,
            interval: config.checkpoint_interval,
        },
    )
    .map_err(|e| match e {
        fedq_audit::SigningKeyError::Credentials(e) => TransportError::from(e).into(),
        other => ServeError::Mismatch(other.to_string()),
    })
}

/// The node's witness: its state file, opened owner-only, and its certificate key under its
/// witness name; its own log's origin and certificate, for the checkpoints it offers.
fn node_witness(config: &NodeConfig, audit: &AuditLog) -> Result<NodeWitness, ServeError> {
    let key_error = |e: fedq_audit::SigningKeyError| match e {
        fedq_audit::SigningKeyError::Credentials(e) => ServeError::from(TransportError::from(e)),
        other => ServeError::Mismatch(other.to_string()),
    };
    let signer = fedq_audit::Signing::witness_signer(&config.tls.cert, &config.tls.key)
        .map_err(key_error)?;
    let witness = fedq_audit::witness::Witness::open(&config.witness_state, signer, [])?;
    let creds = fedq_certs::tls::Credentials::load(&config.tls.cert, &config.tls.key)
        .map_err(|e| key_error(e.into()))?;
    let id = creds.identity();
    let own_log = fedq_audit::checkpoint::log_name(&id.federation, id.role.as_str(), &id.name);
    let (chain, _) = creds.chain_and_key();
    let certificate = chain.first().map(|c| c.to_vec()).unwrap_or_default();
    Ok(NodeWitness::new(
        witness,
        own_log,
        audit.path().to_owned(),
        certificate,
    ))
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
/// a PostgreSQL store, and prepares each `[[attach]]` query on its database. The pools it
/// used are closed; the node reopens them lazily.
async fn check_postgres(
    config: &NodeConfig,
    catalogue: &Catalogue,
) -> Result<Vec<Attached>, ServeError> {
    if config.attach.is_empty() && !matches!(config.store, StoreLocation::Postgres(_)) {
        return Ok(Vec::new());
    }
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
}
