//! `fedq gateway`: a requesting agency's own front to the federation, run inside its
//! network — X-Road's consumer-side security server, kept thin.
//!
//! The agency's apps call the same `POST /v1/query` as the coordinator's, over HTTPS to
//! the gateway, with the subject (and consent token) in the body and `Authorization:
//! Bearer TOKEN` — a token per app, issued by the gateway's operator (`fedq gateway
//! add-app`), of which the config keeps only the SHA-256. The gateway holds the agency's
//! requester certificate and key and does the requester side's work for every app:
//! opens sessions with the nodes, proves each query, seals the subject to each node,
//! opens the sealed answers, combines views ([`crate::client::ApiConnection`],
//! [`crate::opening`]). Apps never hold the requester key; the coordinator never sees
//! the subject or a value.
//!
//! It keeps its own audit log: one entry per query an app sent — the app, purpose, legal
//! basis, case, target, the subject's pseudonym under the gateway's own key, the
//! coordinator's query id and each node's status — written durably before the answer is
//! returned. A query refused here (unparsable, a subject that is not a resident ID, a
//! body carrying `proofs` or `sealed`) is registered as a refusal naming what kind of
//! input was wrong, never what it was; a request without a valid token is refused 401 and
//! not registered (it names no app).

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::header;
use axum::response::Response;
use axum::routing::{get, post};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use fedq_audit::{AuditError, AuditLog, AuditRecord, EntryKind, Pseudonymizer};
use fedq_ops::config::{ConfigError, ConfigFile};
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivateKeyDer;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{Mutex, Semaphore};

use fedq_wire::drain::{Drain, SHUTDOWN_GRACE};

use crate::client::{ApiConnection, ClientError};
use crate::problem::{Kind, Problem};
use crate::query::{QueryRequest, QueryRequestExt as _};

/// Most connections an app-facing listener holds open at once.
pub const MAX_APP_CONNECTIONS: usize = 256;
/// How long a TLS handshake or a request body may take.
pub const APP_TIMEOUT: Duration = Duration::from_secs(10);
/// What an app's token starts with (so a leaked one is recognisable in a scan).
pub const TOKEN_PREFIX: &str = "fgw_";

/// Why a gateway could not be set up or started. Never quotes a token.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The config file.
    #[error("gateway config `{path}`: {reason}")]
    Config {
        /// The file.
        path: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The app-facing TLS identity.
    #[error("gateway TLS identity: {0}")]
    Tls(String),
    /// The audit log or the pseudonym key.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// Listening.
    #[error("cannot listen on {addr}: {reason}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why: the operating system's error.
        #[source]
        reason: std::io::Error,
    },
    /// Writing set-up files.
    #[error("{0}")]
    Setup(String),
}

/// One app allowed to call the gateway.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct App {
    /// Its name in the gateway's audit log (letters, digits, `.`, `-`, `_`).
    pub name: String,
    /// Lower-case hex SHA-256 of its token.
    pub token_sha256: String,
}

/// A gateway's configuration (`gateway.toml`); relative paths are relative to the file.
///
/// ```toml
/// name = "market-regulation.licensing"       # in the gateway's own log
/// listen = "127.0.0.1:9443"                  # the apps' HTTPS API
/// ops_listen = "127.0.0.1:9444"              # optional, plain HTTP: /health and /metrics; keep it local
/// coordinator = "https://127.0.0.1:8443"
/// cert = "../pki/market-regulation.licensing.crt"   # the agency's requester identity
/// key = "../pki/market-regulation.licensing.key"
/// ca = "../pki/ca.crt"                               # the federation CA (crl.pem beside it)
/// tls_cert = "gateway-tls.crt"               # the apps' listener (`fedq gateway init`)
/// tls_key = "gateway-tls.key"
/// audit = "gateway-audit.db"
/// pseudonym_key = "gateway-pseudonym.key"
/// connections = 4                            # kept-alive connections to the coordinator
/// audit_checkpoint_entries = 1000            # optional: a signed checkpoint every N entries
/// audit_checkpoint_secs = 60                 # … or T seconds, whichever comes first
///
/// [[app]]
/// name = "licensing-portal"
/// token_sha256 = "…"                         # `fedq gateway add-app` appends these
/// ```
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// The gateway's name.
    pub name: String,
    /// Where the apps' API listens.
    pub listen: SocketAddr,
    /// Where `/health` and `/metrics` are served in plain HTTP, if anywhere (loopback or a
    /// management network: it is unauthenticated).
    pub ops_listen: Option<SocketAddr>,
    /// The coordinator's URL.
    pub coordinator: String,
    /// The requester certificate.
    pub cert: PathBuf,
    /// Its key.
    pub key: PathBuf,
    /// The federation CA certificate.
    pub ca: PathBuf,
    /// The federation CRL (default `crl.pem` beside `ca`).
    pub crl: Option<PathBuf>,
    /// The apps' listener certificate.
    pub tls_cert: PathBuf,
    /// Its key.
    pub tls_key: PathBuf,
    /// The gateway's audit log.
    pub audit: PathBuf,
    /// Where the gateway remembers the newest CRL it has accepted: beside its audit log,
    /// named after it (`gateway-audit.crl-in-force.pem` for `gateway-audit.db`), so that
    /// an older `crl.pem` put back is refused across restarts too.
    pub crl_state: PathBuf,
    /// The key of its subject pseudonyms.
    pub pseudonym_key: PathBuf,
    /// Kept-alive connections to the coordinator (queries beyond wait for one).
    pub connections: usize,
    /// When its signing audit log keeps a checkpoint (`audit_checkpoint_entries`,
    /// `audit_checkpoint_secs`, as for nodes and coordinators).
    pub cadence: fedq_audit::Cadence,
    /// The apps.
    pub apps: Vec<App>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    name: String,
    listen: String,
    ops_listen: Option<String>,
    coordinator: String,
    cert: PathBuf,
    key: PathBuf,
    ca: PathBuf,
    crl: Option<PathBuf>,
    tls_cert: PathBuf,
    tls_key: PathBuf,
    audit: PathBuf,
    pseudonym_key: PathBuf,
    #[serde(default = "default_connections")]
    connections: usize,
    audit_checkpoint_entries: Option<u64>,
    audit_checkpoint_secs: Option<u64>,
    #[serde(default)]
    app: Vec<App>,
}

fn default_connections() -> usize {
    4
}

fn valid_app_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

impl GatewayConfig {
    /// The CA, the CRL (default `crl.pem` beside the CA) and where the CRL in force is
    /// remembered.
    pub fn trust_files(&self) -> fedq_certs::tls::TrustFiles {
        let mut files =
            fedq_certs::tls::TrustFiles::in_dir(self.ca.parent().unwrap_or(Path::new(".")))
                .remembering_crl_in(self.crl_state.clone());
        files.ca.clone_from(&self.ca);
        if let Some(crl) = &self.crl {
            files.crl.clone_from(crl);
        }
        files
    }

    /// Reads and checks `path`: every field, then the apps (valid, distinct names; digests
    /// of 64 hex digits). The file is read and its paths resolved as every process's config
    /// is ([`ConfigFile`]); the gateway is no federation process (no policy, no node
    /// certificate), so it shares only that prologue, and keeps its own messages.
    pub fn load(path: &Path) -> Result<Self, GatewayError> {
        let bad = |reason: String| GatewayError::Config {
            path: path.display().to_string(),
            reason,
        };
        let file = ConfigFile::at(path);
        let text = file.read().map_err(|e| match e {
            ConfigError::Read { source, .. } => bad(format!("cannot read: {source}")),
            other => bad(other.to_string()),
        })?;
        let raw: RawConfig = toml::from_str(&text).map_err(|e| bad(e.message().to_owned()))?;
        let listen = raw
            .listen
            .parse()
            .map_err(|_| bad("`listen` is not an address like 127.0.0.1:9443".into()))?;
        let ops_listen = raw
            .ops_listen
            .map(|o| {
                o.parse()
                    .map_err(|_| bad("`ops_listen` is not an address like 127.0.0.1:9444".into()))
            })
            .transpose()?;
        if !raw.coordinator.starts_with("https://") {
            return Err(bad(
                "`coordinator` must be an https:// URL like https://127.0.0.1:8443".into(),
            ));
        }
        if !(1..=64).contains(&raw.connections) {
            return Err(bad("`connections` must be between 1 and 64".into()));
        }
        let (entries, interval) = fedq_ops::config::checkpoint_cadence(
            raw.audit_checkpoint_entries,
            raw.audit_checkpoint_secs,
        )
        .map_err(|e| bad(e.to_string()))?;
        let mut seen = std::collections::BTreeSet::new();
        for (i, app) in raw.app.iter().enumerate() {
            let n = i + 1;
            if !valid_app_name(&app.name) {
                return Err(bad(format!(
                    "app {n}: a name is 1–64 letters, digits, `.`, `-` or `_`"
                )));
            }
            if !seen.insert(app.name.as_str()) {
                return Err(bad(format!("app {n}: the name is used twice")));
            }
            if app.token_sha256.len() != 64
                || !app
                    .token_sha256
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
            {
                return Err(bad(format!(
                    "app {n}: `token_sha256` must be 64 lower-case hex digits (made by `fedq gateway add-app`)"
                )));
            }
        }
        let at = |p: PathBuf| file.rel(&p);
        Ok(Self {
            name: raw.name,
            listen,
            ops_listen,
            coordinator: raw.coordinator,
            cert: at(raw.cert),
            key: at(raw.key),
            ca: at(raw.ca),
            crl: raw.crl.map(at),
            tls_cert: at(raw.tls_cert),
            tls_key: at(raw.tls_key),
            crl_state: at(raw.audit.clone()).with_extension("crl-in-force.pem"),
            audit: at(raw.audit),
            pseudonym_key: at(raw.pseudonym_key),
            connections: raw.connections,
            cadence: fedq_audit::Cadence { entries, interval },
            apps: raw.app,
        })
    }
}

/// The lower-case hex SHA-256 of an app's token, as the config keeps it.
pub fn token_digest(token: &str) -> String {
    hex::encode(ring::digest::digest(
        &ring::digest::SHA256,
        token.as_bytes(),
    ))
}

/// A fresh app token: [`TOKEN_PREFIX`] and 32 random bytes, base64url.
pub fn new_token() -> Result<String, GatewayError> {
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), bytes.as_mut_slice())
        .map_err(|_| GatewayError::Setup("no randomness available".into()))?;
    Ok(format!(
        "{TOKEN_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(bytes.as_slice())
    ))
}

/// `fedq gateway add-app`: a new token for app `name`, its digest appended to the config
/// (`[[app]]`, written atomically); the token is returned once and kept nowhere.
pub fn add_app(config: &Path, name: &str) -> Result<String, GatewayError> {
    let current = GatewayConfig::load(config)?;
    if !valid_app_name(name) {
        return Err(GatewayError::Setup(
            "an app name is 1–64 letters, digits, `.`, `-` or `_`".into(),
        ));
    }
    if current.apps.iter().any(|a| a.name == name) {
        return Err(GatewayError::Setup(format!(
            "app `{name}` already has a token; remove its [[app]] entry first to replace it"
        )));
    }
    let token = new_token()?;
    let mut text = std::fs::read_to_string(config)
        .map_err(|e| GatewayError::Setup(format!("cannot read {}: {e}", config.display())))?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!(
        "\n[[app]]\nname = \"{name}\"\ntoken_sha256 = \"{}\"\n",
        token_digest(&token)
    ));
    fedq_certs::fsutil::write_atomic(config, text.as_bytes(), 0o600)
        .map_err(|e| GatewayError::Setup(format!("cannot write {}: {e}", config.display())))?;
    GatewayConfig::load(config)?;
    Ok(token)
}

/// `fedq gateway init`: writes `DIR/gateway.toml` for the requester identity given, and
/// the apps' TLS identity (`gateway-ca.crt` for the apps to trust, `gateway-tls.crt`,
/// `gateway-tls.key`) for `hosts` (default: `localhost` and the listen address's IP).
#[allow(clippy::too_many_arguments)]
pub fn init(
    dir: &Path,
    name: &str,
    listen: SocketAddr,
    coordinator: &str,
    cert: &Path,
    key: &Path,
    ca: &Path,
    hosts: &[String],
) -> Result<PathBuf, GatewayError> {
    let config = dir.join("gateway.toml");
    if config.exists() {
        return Err(GatewayError::Setup(format!(
            "{} exists; a gateway is set up there already",
            config.display()
        )));
    }
    fedq_certs::fsutil::create_private_dir(dir)
        .map_err(|e| GatewayError::Setup(format!("cannot create {}: {e}", dir.display())))?;
    let mut names: Vec<String> = hosts.to_vec();
    if names.is_empty() {
        names = vec!["localhost".into(), listen.ip().to_string()];
    }
    fedq_certs::pki::standalone_tls(
        &dir.join("gateway-ca.crt"),
        &dir.join("gateway-tls.crt"),
        &dir.join("gateway-tls.key"),
        &format!("fedq gateway {name}"),
        &names,
        fedq_certs::pki::MAX_DAYS,
    )
    .map_err(|e| GatewayError::Tls(e.to_string()))?;
    let quote = |p: &Path| toml::Value::String(p.display().to_string()).to_string();
    let text = format!(
        "name = {}\nlisten = \"{listen}\"\ncoordinator = {}\ncert = {}\nkey = {}\nca = {}\n\
         tls_cert = \"gateway-tls.crt\"\ntls_key = \"gateway-tls.key\"\n\
         audit = \"gateway-audit.db\"\npseudonym_key = \"gateway-pseudonym.key\"\nconnections = 4\n",
        toml::Value::String(name.to_owned()),
        toml::Value::String(coordinator.to_owned()),
        quote(cert),
        quote(key),
        quote(ca),
    );
    fedq_certs::fsutil::write_atomic(&config, text.as_bytes(), 0o600)
        .map_err(|e| GatewayError::Setup(format!("cannot write {}: {e}", config.display())))?;
    GatewayConfig::load(&config)?;
    Ok(config)
}

/// A running gateway's state: its config, log, pseudonym key and the connections it keeps
/// to the coordinator.
pub struct Gateway {
    config: GatewayConfig,
    apps: BTreeMap<String, String>,
    audit: AuditLog,
    pseudonyms: Pseudonymizer,
    pool: Mutex<Vec<ApiConnection>>,
    permits: Semaphore,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("name", &self.config.name)
            .field("apps", &self.apps.len())
            .finish_non_exhaustive()
    }
}

/// What an app's body became, or why it was refused (a message naming no input).
fn parse_app_query(body: &[u8]) -> Result<QueryRequest, String> {
    let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(body) else {
        return Err("the body is not one JSON object; send the query with `subject`, `purpose`, … as for the coordinator's API".into());
    };
    for field in ["proofs", "sealed", "consent_sealed"] {
        if map.contains_key(field) {
            return Err(format!(
                "`{field}` is the gateway's to make: send the query with `subject` (and `consent`) only"
            ));
        }
    }
    let text = |v: Option<Value>, name: &str, required: bool| match v {
        Some(Value::String(s)) => Ok(Some(s)),
        None | Some(Value::Null) if !required => Ok(None),
        None | Some(Value::Null) => Err(format!("`{name}` is required")),
        Some(_) => Err(format!("`{name}` must be a string in quotes")),
    };
    let subject = text(map.remove("subject"), "subject", true)?.unwrap_or_default();
    let consent = text(map.remove("consent"), "consent", false)?;
    let rest = serde_json::to_vec(&map).map_err(|_| "the body cannot be read".to_owned())?;
    let mut query = QueryRequest::from_json(&rest).map_err(|e| e.to_string())?;
    query.subject = subject;
    query.consent = consent;
    query.sealed_subject().map_err(|e| e.to_string())?;
    Ok(query)
}

/// A JSON answer; 4xx and 5xx are problem documents (`application/problem+json`).
fn reply(status: u16, body: Value) -> Response {
    crate::https::json(status, body)
}

/// A problem document as the gateway's answer.
fn problem(kind: Kind, status: u16, detail: impl Into<String>) -> (u16, Value) {
    (status, Problem::new(kind, status, detail).to_json())
}

impl Gateway {
    /// Opens the gateway's log and pseudonym key; connections to the coordinator are made
    /// on first use.
    pub fn open(config: GatewayConfig) -> Result<Self, GatewayError> {
        // The CA and CRL are checked now, not at the first query: an older `crl.pem` than
        // the one remembered is refused (and logged) at start, an unreadable remembered
        // CRL stops the start.
        fedq_certs::FederationTrust::load(&config.trust_files()).map_err(|e| {
            GatewayError::Tls(format!(
                "cannot load the CA and CRL that nodes' session accepts are checked against: {e}"
            ))
        })?;
        // The agency's own log signs its checkpoints with the agency's requester key, so
        // its entries can be witnessed and proved like every other process's.
        let signing =
            fedq_audit::Signing::from_certificate(&config.cert, &config.key, config.cadence)
                .map_err(|e| GatewayError::Tls(format!("the audit log's signing key: {e}")))?;
        let audit = AuditLog::open_signing(&config.audit, signing)?;
        let pseudonyms = Pseudonymizer::load_or_create(&config.pseudonym_key)?;
        let apps = config
            .apps
            .iter()
            .map(|a| (a.token_sha256.clone(), a.name.clone()))
            .collect();
        let permits = Semaphore::new(config.connections);
        Ok(Self {
            config,
            apps,
            audit,
            pseudonyms,
            pool: Mutex::new(Vec::new()),
            permits,
        })
    }

    /// The app an `Authorization` header value names, if its token is one of ours.
    pub fn app_of(&self, authorization: Option<&str>) -> Option<&str> {
        let token = authorization?.strip_prefix("Bearer ")?.trim();
        self.apps.get(&token_digest(token)).map(String::as_str)
    }

    /// A kept-alive connection the coordinator has not closed, or a new one.
    async fn connection(&self) -> Result<ApiConnection, ClientError> {
        while let Some(conn) = self.pool.lock().await.pop() {
            if !conn.is_closed() {
                return Ok(conn);
            }
        }
        let conn = ApiConnection::connect(
            &self.config.coordinator,
            &self.config.cert,
            &self.config.key,
            &self.config.ca,
        )
        .await?;
        let conn = conn.remembering_crl_in(&self.config.crl_state);
        Ok(match &self.config.crl {
            Some(crl) => conn.with_crl(crl),
            None => conn,
        })
    }

    /// Sends `query` over a kept-alive connection. A query that failed on the way is not
    /// sent again: it may have reached the nodes already, and a second sending would have
    /// every node answer twice (and count a consent token's use twice).
    async fn send(&self, query: &QueryRequest) -> Result<(u16, Value), ClientError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| ClientError::Usage("the gateway is shutting down".into()))?;
        let mut conn = self.connection().await?;
        let answer = conn.query(query).await;
        if answer.is_ok() {
            self.pool.lock().await.push(conn);
        }
        answer
    }

    /// One app's query: parsed, sent as the agency's requester, answered — registered
    /// first in the gateway's log (nothing is answered whose entry was not written).
    pub async fn query(&self, app: &str, body: &[u8]) -> (u16, Value) {
        let now = time::OffsetDateTime::now_utc();
        let entry = |kind, outcome: Value| AuditRecord {
            at: now,
            kind,
            query_id: "-".into(),
            requester: format!("app:{app}"),
            purpose: "-".into(),
            legal_basis: None,
            case_reference: None,
            subject: "-".into(),
            target: "-".into(),
            outcome: fedq_audit::Outcome::json(&outcome),
            policy_version: "-".into(),
            consent_id: None,
            node_query_ids: BTreeMap::new(),
            answer_sha256: None,
        };
        let query = match parse_app_query(body) {
            Ok(q) => q,
            Err(why) => {
                let record = entry(EntryKind::Refusal, json!({ "http": 400, "refused": why }));
                return match self.audit.append(record).await {
                    Ok(_) => {
                        let (status, body) = problem(Kind::MalformedRequest, 400, why);
                        (status, body)
                    }
                    Err(e) => unregistered(&e),
                };
            }
        };
        let (status, answer) = match self.send(&query).await {
            Ok(sent) => sent,
            Err(e) => {
                tracing::warn!(error = %e, "the coordinator could not be asked");
                problem(
                    Kind::CoordinatorUnreachable,
                    502,
                    format!("the gateway could not ask the coordinator: {e}"),
                )
            }
        };
        // What the coordinator accepted is the policy's own names; a refusal records
        // none of the query, only the coordinator's words (which quote no input).
        let accepted = status == 200;
        let field = |name: &str| answer.get(name).cloned().unwrap_or(Value::Null);
        let nodes: BTreeMap<String, Value> = answer
            .get("nodes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|n| {
                Some((
                    n.get("node")?.as_str()?.to_owned(),
                    n.get("status")?.clone(),
                ))
            })
            .collect();
        // Each node's receipt, as the gateway kept it: its place in the node's log and the
        // size of the signed tree it is in (the whole receipt is in the app's answer).
        let receipts: BTreeMap<String, Value> = answer
            .get("nodes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|n| {
                let receipt = n.get("receipt")?;
                let tree_size = receipt
                    .get("checkpoint")
                    .and_then(Value::as_str)
                    .and_then(|note| fedq_audit::checkpoint::Note::parse(note).ok())
                    .and_then(|note| {
                        fedq_audit::checkpoint::Checkpoint::parse_body(&note.text).ok()
                    })
                    .map(|c| c.size);
                Some((
                    n.get("node")?.as_str()?.to_owned(),
                    json!({ "index": receipt.get("index")?, "tree_size": tree_size }),
                ))
            })
            .collect();
        let outcome = if accepted {
            json!({ "http": status, "complete": field("complete"), "nodes": nodes, "receipts": receipts })
        } else {
            json!({ "http": status, "refused": field("detail") })
        };
        let subject = self.pseudonyms.pseudonym(&query.subject);
        let record = AuditRecord {
            query_id: field("query_id").as_str().unwrap_or("-").to_owned(),
            subject,
            purpose: if accepted {
                query.purpose.clone()
            } else {
                "-".into()
            },
            legal_basis: query.legal_basis.clone().filter(|_| accepted),
            case_reference: query.case_reference.clone().filter(|_| accepted),
            target: if accepted {
                match (&query.view, &query.datasets) {
                    (Some(v), _) => format!("view:{v}"),
                    (None, Some(d)) => d.join(" "),
                    (None, None) => "-".into(),
                }
            } else {
                "-".into()
            },
            policy_version: field("policy_version").as_str().unwrap_or("-").to_owned(),
            ..entry(EntryKind::Query, outcome)
        };
        match self.audit.append(record).await {
            Ok(_) => (status, answer),
            Err(e) => unregistered(&e),
        }
    }
}

/// The answer when the gateway's own log failed: nothing is returned unregistered.
fn unregistered(e: &AuditError) -> (u16, Value) {
    tracing::error!(error = %e, "the gateway's audit log is unavailable; answer withheld");
    problem(
        Kind::AnswerWithheld,
        503,
        "the gateway's audit log is unavailable; the answer was withheld",
    )
}

async fn post_query(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Some(app) = gateway.app_of(authorization.as_deref()).map(str::to_owned) else {
        // Counted, not logged one by one: a flood of them fills no log.
        metrics::counter!(crate::ops::GATEWAY_UNAUTHENTICATED).increment(1);
        let (status, body) = problem(
            Kind::Unauthenticated,
            401,
            "send `Authorization: Bearer TOKEN` with your app's token from the gateway's operator (`fedq gateway add-app`)",
        );
        let mut response = reply(status, body);
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        return response;
    };
    let limit = crate::query::MAX_BODY;
    let body = tokio::time::timeout(
        APP_TIMEOUT,
        http_body_util::Limited::new(request.into_body(), limit).collect(),
    )
    .await;
    let body = match body {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(_)) => {
            let mut p = Problem::new(
                Kind::BodyTooLarge,
                413,
                format!("request body over {limit} bytes (or broken)"),
            );
            p.limit_bytes = Some(limit as u64);
            return reply(p.status, p.to_json());
        }
        Err(_) => {
            let (status, body) = problem(
                Kind::BodyTooSlow,
                408,
                "the request body did not arrive in time; send it at once",
            );
            return reply(status, body);
        }
    };
    let started = std::time::Instant::now();
    let (status, answer) = gateway.query(&app, &body).await;
    metrics::counter!(crate::ops::GATEWAY_QUERIES, "outcome" => crate::ops::gateway_outcome(status))
        .increment(1);
    metrics::histogram!(crate::ops::GATEWAY_QUERY_SECONDS).record(started.elapsed().as_secs_f64());
    reply(status, answer)
}

async fn health(State(gateway): State<Arc<Gateway>>) -> Response {
    reply(
        200,
        json!({ "status": "ok", "gateway": gateway.config.name }),
    )
}

fn tls_acceptor(config: &GatewayConfig) -> Result<tokio_rustls::TlsAcceptor, GatewayError> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|e| GatewayError::Tls(format!("cannot read {}: {e}", p.display())))
    };
    let chain = fedq_certs::tls::read_certificates(&read(&config.tls_cert)?)
        .map_err(|e| GatewayError::Tls(e.to_string()))?;
    fedq_certs::fsutil::check_private_key(&config.tls_key)
        .map_err(|e| GatewayError::Tls(e.to_string()))?;
    let key = PrivateKeyDer::from_pem_slice(&read(&config.tls_key)?)
        .map_err(|e| GatewayError::Tls(format!("{}: {e}", config.tls_key.display())))?;
    let mut tls = rustls::ServerConfig::builder_with_provider(fedq_certs::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| GatewayError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| GatewayError::Tls(e.to_string()))?;
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    tls.max_early_data_size = 0;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(tls)))
}

/// A gateway bound to its address, ready to serve.
pub struct BoundGateway {
    gateway: Arc<Gateway>,
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    /// `/health` and `/metrics`, if `ops_listen` is set.
    ops: Option<fedq_ops::OpsListener>,
}

impl std::fmt::Debug for BoundGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundGateway").finish_non_exhaustive()
    }
}

impl BoundGateway {
    /// Opens the gateway and binds its listener.
    pub async fn bind(config: GatewayConfig) -> Result<Self, GatewayError> {
        if fedq_ops::recorder().is_some() {
            crate::ops::describe_gateway();
        }
        let acceptor = tls_acceptor(&config)?;
        let listen = config.listen;
        let ops = config
            .ops_listen
            .map(fedq_ops::OpsListener::bind)
            .transpose()
            .map_err(
                |fedq_ops::OpsError::Bind { addr, reason }| GatewayError::Bind { addr, reason },
            )?;
        let gateway = Arc::new(Gateway::open(config)?);
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| GatewayError::Bind {
                addr: listen,
                reason: e,
            })?;
        Ok(Self {
            gateway,
            listener,
            acceptor,
            ops,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Where `/health` and `/metrics` are served, if anywhere.
    pub fn ops_addr(&self) -> Option<SocketAddr> {
        self.ops.as_ref().and_then(|o| o.local_addr().ok())
    }

    /// Serves the apps until `shutdown` completes; connections open then finish their
    /// request in flight.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        let drain = Drain::new();
        drain
            .run_until(shutdown, self.serve_until_drained(drain.clone()))
            .await;
    }

    /// Serves the apps until `drain` starts, then stops accepting; connections open then
    /// finish their request in flight, within [`SHUTDOWN_GRACE`].
    pub async fn serve_until_drained(self, drain: Drain) {
        let ops_task = self.ops.map(|ops| {
            let config = &self.gateway.config;
            let probe = crate::ops::GatewayProbe {
                name: config.name.clone(),
                audit: self.gateway.audit.clone(),
                cert: config.cert.clone(),
                tls_cert: config.tls_cert.clone(),
                trust: fedq_certs::tls::TrustFiles {
                    ca: config.ca.clone(),
                    crl: config
                        .crl
                        .clone()
                        .unwrap_or_else(|| config.ca.with_file_name("crl.pem")),
                    crl_grace: Duration::ZERO,
                    // Read only, for the expiry gauge; the gateway's own loads keep the
                    // remembered CRL.
                    crl_state: None,
                },
            };
            tokio::spawn(ops.serve(Arc::new(probe), fedq_ops::recorder()))
        });
        let _ops = AbortOnDrop(ops_task);
        let router = axum::Router::new()
            .route("/v1/query", post(post_query))
            .route("/health", get(health))
            .fallback(crate::https::not_found)
            .method_not_allowed_fallback(crate::https::method_not_allowed)
            .with_state(Arc::clone(&self.gateway));
        let connections = Arc::new(Semaphore::new(MAX_APP_CONNECTIONS));
        let mut backoff = crate::admission::Backoff::new();
        loop {
            let accepted = tokio::select! {
                () = drain.draining() => break,
                accepted = self.listener.accept() => accepted,
            };
            // Descriptors exhausted and the like: pause as the coordinator's listener does.
            let Ok((tcp, _peer)) = accepted else {
                tokio::select! {
                    () = tokio::time::sleep(backoff.failed()) => {}
                    () = drain.draining() => break,
                }
                continue;
            };
            backoff.reset();
            let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
                drop(tcp);
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = self.acceptor.clone();
            let service = TowerToHyperService::new(router.clone());
            let drain = drain.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let handshake = tokio::time::timeout(APP_TIMEOUT, acceptor.accept(tcp));
                let tls = tokio::select! {
                    done = handshake => match done {
                        Ok(Ok(tls)) => tls,
                        _ => return,
                    },
                    () = drain.draining() => return,
                };
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let conn = builder.serve_connection(TokioIo::new(tls), service);
                tokio::pin!(conn);
                tokio::select! {
                    _ = conn.as_mut() => return,
                    () = drain.draining() => {}
                }
                // Draining: the request in flight finishes, then the connection closes.
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            });
        }
        // Close the port at once, then wait for the requests in flight: each connection
        // holds one permit until it ends.
        drop(self.listener);
        let all = u32::try_from(MAX_APP_CONNECTIONS).unwrap_or(u32::MAX);
        if tokio::time::timeout(SHUTDOWN_GRACE, connections.acquire_many(all))
            .await
            .is_err()
        {
            tracing::warn!("shutdown grace period over with requests still in flight");
        }
    }
}

/// Aborts the ops task when the gateway stops serving.
struct AbortOnDrop(Option<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}

/// `fedq gateway serve`: binds and serves until `shutdown`.
pub async fn serve(
    config: GatewayConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), GatewayError> {
    let bound = BoundGateway::bind(config).await?;
    tracing::info!(addr = ?bound.local_addr().ok(), "gateway serving its apps");
    bound.serve(shutdown).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_app_s_body_is_parsed_without_quoting_it_and_may_not_carry_proofs() {
        let id = "11010519491231002X";
        let good = json!({ "subject": id, "purpose": "administrative-licensing",
            "legal_basis": "行政许可法", "view": "blacklist-check" });
        let q = parse_app_query(good.to_string().as_bytes()).unwrap();
        assert_eq!(q.subject, id);
        assert_eq!(q.view.as_deref(), Some("blacklist-check"));
        for (body, says) in [
            (
                json!({ "purpose": "p", "view": "v" }),
                "`subject` is required",
            ),
            (
                json!({ "subject": 7, "purpose": "p", "view": "v" }),
                "`subject` must be a string",
            ),
            (
                json!({ "subject": id, "purpose": "p", "view": "v", "proofs": {} }),
                "`proofs` is the gateway's to make",
            ),
            (
                json!({ "subject": id, "purpose": "p", "view": "v", "sealed": {} }),
                "`sealed` is the gateway's to make",
            ),
            (
                json!({ "subject": "11010519491231002Y", "purpose": "p", "view": "v" }),
                "`subject`",
            ),
            (
                json!({ "subject": id, "purpose": "p", "view": "v", "nonsense": id }),
                "unknown field",
            ),
        ] {
            let err = parse_app_query(body.to_string().as_bytes()).unwrap_err();
            assert!(err.contains(says), "{err}");
            assert!(!err.contains("1101051949"), "{err}");
        }
        assert!(parse_app_query(b"[1]").is_err());
    }

    #[test]
    fn tokens_are_random_prefixed_and_kept_only_as_digests() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() > 40);
        let d = token_digest(&a);
        assert_eq!(d.len(), 64);
        assert!(!d.contains(&a[TOKEN_PREFIX.len()..]));
    }
}
