//! `fedq node serve`: the node's QUIC endpoint. For each lookup: read the subject's
//! records (one indexed statement), [`crate::enforce::answer`], write the audit entry
//! durably, and only then release the answer. If the store or the audit log fails, no
//! data leaves (fail closed).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use fedq_audit::{AuditLog, AuditRecord, Pseudonymizer};
use fedq_policy::{Catalogue, Engine, Record};
use fedq_wire::message::{FailureCode, LookupRequest};
use fedq_wire::transport::{FrameTap, Handler, Limits, NodeEndpoint, TransportError};
use fedq_wire::{NodeRequest, NodeResponse};

use crate::config::{NodeConfig, StoreLocation};
use crate::store::SqliteStore;

/// Errors starting a node.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The catalogue or policy is unusable.
    #[error(transparent)]
    Policy(#[from] fedq_policy::load::LoadError),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The audit log or pseudonym key could not be opened.
    #[error(transparent)]
    Audit(#[from] fedq_audit::AuditError),
    /// Certificates or socket.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The config is inconsistent with the files it names.
    #[error("{0}")]
    Mismatch(String),
}

/// A node, ready to serve.
pub struct Node {
    config: NodeConfig,
    department: String,
    engine: Arc<Engine>,
    store: Arc<SqliteStore>,
    audit: AuditLog,
    pseudonyms: Arc<Pseudonymizer>,
    endpoint: NodeEndpoint,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("name", &self.config.name)
            .finish_non_exhaustive()
    }
}

impl Node {
    /// Loads catalogue, policy, store, audit log and certificates, and binds the socket.
    /// Everything is checked before the socket is bound.
    pub fn start(config: NodeConfig, limits: Limits) -> Result<Self, ServeError> {
        let catalogue: Catalogue = fedq_policy::load::load_catalogue(&config.catalogue)?;
        let engine = fedq_policy::load::load_engine(&config.policy, None)?;
        if engine
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
        let store = match &config.store {
            StoreLocation::Sqlite(path) => SqliteStore::open(path)?,
            StoreLocation::Postgres(_) => {
                return Err(ServeError::Mismatch(
                    "a PostgreSQL store is not available in this build yet; use an SQLite file for `store`".into(),
                ))
            }
        };
        let pseudonyms = Pseudonymizer::load_or_create(&config.pseudonym_key)?;
        let audit = AuditLog::open(&config.audit)?;
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
            engine: Arc::new(engine),
            store: Arc::new(store),
            audit,
            pseudonyms: Arc::new(pseudonyms),
            endpoint,
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
        let ctx = Arc::new(Context {
            node: self.config.name.clone(),
            department: self.department,
            engine: self.engine,
            store: self.store,
            audit: self.audit,
            pseudonyms: self.pseudonyms,
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
                }
            })
        });
        self.endpoint.serve(handler, tap, shutdown).await;
    }
}

struct Context {
    node: String,
    department: String,
    engine: Arc<Engine>,
    store: Arc<SqliteStore>,
    audit: AuditLog,
    pseudonyms: Arc<Pseudonymizer>,
    config: NodeConfig,
}

impl Context {
    async fn lookup(&self, coordinator: &str, request: LookupRequest) -> NodeResponse {
        let today = self.config.today();
        let touched = crate::enforce::datasets_touched(&self.engine, &self.department, &request);
        let names: Vec<&str> = touched.iter().map(String::as_str).collect();
        let subject = self.pseudonyms.pseudonym(request.subject.as_str());
        let mut audit = AuditRecord {
            at: time::OffsetDateTime::now_utc(),
            kind: "answer".into(),
            query_id: request.query_id.clone(),
            requester: request.requester.clone(),
            purpose: request.purpose.clone(),
            legal_basis: request.legal_basis.clone(),
            subject,
            target: crate::enforce::describe_target(&request.target),
            outcome: String::new(),
            policy_version: self.engine.policy().version.clone(),
        };
        let stored = match self.store.records_of(request.subject.as_str(), &names) {
            Ok(records) => records,
            Err(e) => {
                tracing::error!(error = %e, "store unavailable; answering unavailable");
                audit.outcome = serde_json::json!({ "unavailable": "store" }).to_string();
                let _ = self.audit.append(audit).await;
                return NodeResponse::Failed {
                    code: FailureCode::Unavailable,
                    message: format!("node `{}`: its store is unavailable", self.node),
                };
            }
        };
        let mut by_dataset: BTreeMap<String, Vec<Record>> = BTreeMap::new();
        for r in stored {
            by_dataset.entry(r.dataset).or_default().push(r.record);
        }
        let enforced = crate::enforce::answer(
            &self.engine,
            &self.node,
            &self.department,
            &request,
            &by_dataset,
            today,
        );
        audit.outcome = enforced.audit_outcome;
        audit.policy_version = enforced.policy_version;
        tracing::debug!(coordinator, query = %request.query_id, "answering lookup");
        match self.audit.append(audit).await {
            Ok(_) => enforced.response,
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
