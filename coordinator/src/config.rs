//! `coordinator.toml`, validated in full before any socket is bound. Relative paths are
//! relative to the config file's directory.
//!
//! ```toml
//! name = "coordinator"                 # must match the coordinator certificate's name
//! listen = "0.0.0.0:8443"              # HTTPS requester API (client certificates)
//! ops_listen = "127.0.0.1:9443"        # plain HTTP: /health and /metrics, keep it local
//! policy = "policy.toml"               # the set-up policy, until a signed bundle is in force
//! policy_threshold = 2                 # officers a bundle needs while the set-up policy is in force
//! policy_officers = ["3b1f…", "9c0d…", "e27a…"]  # officers' key fingerprints (`fedq certs officers`)
//! policy_state = "data/coordinator-policy"  # the signed bundles accepted and crl-in-force.pem, the
//!                                           # newest CRL accepted (default: beside the audit log)
//! audit = "data/coordinator-audit.db"
//! complaints = "data/coordinator-complaints.db"  # the complaint queue (default: NAME-complaints.db
//!                                      # beside the audit log); private, 0600
//! pseudonym_key = "data/coordinator-pseudonym.key"
//! audit_checkpoint_entries = 1000      # keep a signed checkpoint for the witnesses after this
//! audit_checkpoint_secs = 60           #   many entries or seconds, whichever comes first
//! witness_interval_ms = 60000          # how often every log's newest checkpoint is relayed to
//!                                      # its witnesses (each node witnesses the others' logs)
//! deadline_ms = 2000                   # one overall deadline per query
//! max_in_flight = 1000                 # queries beyond this get 503, not a queue
//! node_down_after_failures = 2         # a node this many lookups or heartbeats in a row
//!                                      # unanswered is down: answered `unavailable` at once
//!                                      # until a probe reaches it
//! node_heartbeat_interval_ms = 1000    # an up node is pinged this often
//! node_probe_interval_ms = 100         # a down node is probed (a ping) this often
//! node_probe_timeout_ms = 1000         # how long one probe may take
//!
//! [https]                              # optional; the requester API's connection limits
//! max_connections = 4096               # open at once; past it the oldest unfinished handshake goes
//! max_connections_per_address = 1024   # from one peer IP address
//! max_connections_per_identity = 512   # under one certificate identity (the rest get 503)
//! handshake_timeout_ms = 5000          # TCP accepted → TLS handshake done
//! header_timeout_ms = 5000             # first byte of a request → its last header
//! body_timeout_ms = 10000              # a request's whole body
//! idle_timeout_ms = 30000              # no request in flight → connection closed
//!
//! [tls]
//! ca = "pki/ca.crt"
//! crl = "pki/crl.pem"
//! cert = "pki/coordinator.crt"
//! key = "pki/coordinator.key"
//! crl_grace_secs = 0                  # how long a CRL past its nextUpdate still admits new connections
//!
//! [[node]]
//! name = "court"                       # = the department in the catalogue
//! address = "10.1.2.3:7101"
//! ```

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fedq_ops::config::{Addresses, ConfigFile, ProcessConfig, RawFiles};
use serde::Deserialize;

/// Why a config is unusable: the one error every process's config gives.
pub use fedq_ops::config::ConfigError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    name: String,
    listen: String,
    ops_listen: Option<String>,
    policy: PathBuf,
    policy_threshold: Option<u32>,
    policy_state: Option<PathBuf>,
    policy_officers: Option<Vec<String>>,
    audit: PathBuf,
    complaints: Option<PathBuf>,
    audit_checkpoint_entries: Option<u64>,
    audit_checkpoint_secs: Option<u64>,
    pseudonym_key: PathBuf,
    witness_interval_ms: Option<u64>,
    deadline_ms: Option<u64>,
    max_in_flight: Option<usize>,
    node_down_after_failures: Option<u32>,
    node_heartbeat_interval_ms: Option<u64>,
    node_probe_interval_ms: Option<u64>,
    node_probe_timeout_ms: Option<u64>,
    tls: fedq_wire::transport::TlsPaths,
    #[serde(default)]
    https: RawHttps,
    #[serde(default)]
    node: Vec<RawNode>,
    today: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttps {
    max_connections: Option<usize>,
    max_connections_per_address: Option<usize>,
    max_connections_per_identity: Option<usize>,
    handshake_timeout_ms: Option<u64>,
    header_timeout_ms: Option<u64>,
    body_timeout_ms: Option<u64>,
    idle_timeout_ms: Option<u64>,
}

/// How many HTTPS connections the requester API holds, and how long each may take at each
/// step (`[https]` in the config). Every connection is under all of them, on HTTP/1.1 and
/// HTTP/2 alike.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections open at once (handshaking or established).
    pub max_connections: usize,
    /// Connections open at once from one peer IP address.
    pub max_per_address: usize,
    /// Established connections under one certificate identity; more are answered 503.
    pub max_per_identity: usize,
    /// From the TCP accept to the end of the TLS handshake.
    pub handshake_timeout: Duration,
    /// From the first byte of a request to its last header (HTTP/1.1; an HTTP/2 request's
    /// headers are bounded by the idle timeout).
    pub header_timeout: Duration,
    /// For a request's whole body.
    pub body_timeout: Duration,
    /// With no request in flight, after which the connection is closed.
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            max_per_address: 1024,
            max_per_identity: 512,
            handshake_timeout: Duration::from_secs(5),
            header_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
        }
    }
}

impl RawHttps {
    fn resolve(
        self,
        invalid: &dyn Fn(String) -> ConfigError,
    ) -> Result<ConnectionLimits, ConfigError> {
        let d = ConnectionLimits::default();
        let count = |key: &str, v: Option<usize>, default: usize| match v {
            Some(0) => Err(invalid(format!("[https] `{key}` must be at least 1"))),
            Some(n) => Ok(n),
            None => Ok(default),
        };
        let ms = |key: &str, v: Option<u64>, default: Duration| match v {
            Some(n) if !(100..=600_000).contains(&n) => Err(invalid(format!(
                "[https] `{key} = {n}` is out of range; use 100..=600000"
            ))),
            Some(n) => Ok(Duration::from_millis(n)),
            None => Ok(default),
        };
        Ok(ConnectionLimits {
            max_connections: count("max_connections", self.max_connections, d.max_connections)?,
            max_per_address: count(
                "max_connections_per_address",
                self.max_connections_per_address,
                d.max_per_address,
            )?,
            max_per_identity: count(
                "max_connections_per_identity",
                self.max_connections_per_identity,
                d.max_per_identity,
            )?,
            handshake_timeout: ms(
                "handshake_timeout_ms",
                self.handshake_timeout_ms,
                d.handshake_timeout,
            )?,
            header_timeout: ms(
                "header_timeout_ms",
                self.header_timeout_ms,
                d.header_timeout,
            )?,
            body_timeout: ms("body_timeout_ms", self.body_timeout_ms, d.body_timeout)?,
            idle_timeout: ms("idle_timeout_ms", self.idle_timeout_ms, d.idle_timeout)?,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    name: String,
    address: String,
}

/// One node the coordinator may ask.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeAddress {
    /// The node's (department's) name, as in its certificate.
    pub name: String,
    /// UDP address.
    pub address: SocketAddr,
}

/// A validated coordinator configuration: what every process's config holds
/// ([`ProcessConfig`], read through `Deref`: `config.name`, `config.audit`, …) and the
/// coordinator's own settings.
#[derive(Clone, Debug)]
pub struct CoordinatorConfig {
    /// The coordinator's name (as in its certificate), its HTTPS `listen` address,
    /// `ops_listen`, policy files, audit log, pseudonym key and pinned `today`.
    pub process: ProcessConfig,
    /// Overall deadline per query.
    pub deadline: Duration,
    /// How often the coordinator relays every log's newest checkpoint to its witnesses
    /// (`witness_interval_ms`, default 60 s): the witness round.
    pub witness_interval: Duration,
    /// Most queries in flight.
    pub max_in_flight: usize,
    /// When a node counts as down, and how it is probed while it is.
    pub health: crate::health::HealthSettings,
    /// TLS files.
    pub tls: fedq_wire::transport::TlsFiles,
    /// The requester API's connection caps and timeouts.
    pub https: ConnectionLimits,
    /// The nodes.
    pub nodes: Vec<NodeAddress>,
    /// The complaint queue's SQLite file (`complaints`; default `NAME-complaints.db`
    /// beside the audit log).
    pub complaints: PathBuf,
}

impl std::ops::Deref for CoordinatorConfig {
    type Target = ProcessConfig;
    fn deref(&self) -> &ProcessConfig {
        &self.process
    }
}

/// The example address in the coordinator's address errors.
const EXAMPLE_ADDRESS: &str = "127.0.0.1:8443";

impl CoordinatorConfig {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = ConfigFile::at(path).read()?;
        Self::parse(&text, path)
    }

    /// Validates config text as if read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let file = ConfigFile::at(path);
        let invalid = |reason: String| file.invalid(reason);
        let raw: RawConfig = file.toml(text)?;
        let prologue = file.prologue(
            raw.name,
            Addresses {
                listen: &raw.listen,
                listen_example: EXAMPLE_ADDRESS,
                ops_listen: raw.ops_listen.as_deref(),
                ops_listen_example: EXAMPLE_ADDRESS,
            },
        )?;
        let deadline_ms = raw.deadline_ms.unwrap_or(2000);
        if !(10..=60_000).contains(&deadline_ms) {
            return Err(invalid(format!(
                "`deadline_ms = {deadline_ms}` is out of range; use 10..=60000"
            )));
        }
        let max_in_flight = raw.max_in_flight.unwrap_or(1000);
        if max_in_flight == 0 {
            return Err(invalid("`max_in_flight` must be at least 1".into()));
        }
        let https = raw.https.resolve(&invalid)?;
        let down_after = raw.node_down_after_failures.unwrap_or(2);
        if !(1..=1000).contains(&down_after) {
            return Err(invalid(format!(
                "`node_down_after_failures = {down_after}` is out of range; use 1..=1000"
            )));
        }
        let heartbeat_ms = raw.node_heartbeat_interval_ms.unwrap_or(1000);
        if !(10..=600_000).contains(&heartbeat_ms) {
            return Err(invalid(format!(
                "`node_heartbeat_interval_ms = {heartbeat_ms}` is out of range; use 10..=600000"
            )));
        }
        let probe_interval_ms = raw.node_probe_interval_ms.unwrap_or(100);
        if !(10..=60_000).contains(&probe_interval_ms) {
            return Err(invalid(format!(
                "`node_probe_interval_ms = {probe_interval_ms}` is out of range; use 10..=60000"
            )));
        }
        let probe_timeout_ms = raw.node_probe_timeout_ms.unwrap_or(1000);
        if !(10..=60_000).contains(&probe_timeout_ms) {
            return Err(invalid(format!(
                "`node_probe_timeout_ms = {probe_timeout_ms}` is out of range; use 10..=60000"
            )));
        }
        let health = crate::health::HealthSettings {
            down_after_failures: down_after,
            heartbeat_interval: Duration::from_millis(heartbeat_ms),
            probe_interval: Duration::from_millis(probe_interval_ms),
            probe_timeout: Duration::from_millis(probe_timeout_ms),
        };
        let witness_interval_ms = raw.witness_interval_ms.unwrap_or(60_000);
        if !(100..=3_600_000).contains(&witness_interval_ms) {
            return Err(invalid(format!(
                "`witness_interval_ms = {witness_interval_ms}` is out of range; use 100..=3600000"
            )));
        }
        let mut seen = BTreeSet::new();
        let mut nodes = Vec::new();
        for n in raw.node {
            fedq_certs::identity::validate_name(&n.name)
                .map_err(|e| invalid(format!("[[node]] `name`: {e}")))?;
            if !seen.insert(n.name.clone()) {
                return Err(invalid(format!("node `{}` is listed twice", n.name)));
            }
            nodes.push(NodeAddress {
                address: file.address("address", &n.address, EXAMPLE_ADDRESS)?,
                name: n.name,
            });
        }
        let today = file.today(raw.today.as_deref())?;
        let complaints = match &raw.complaints {
            Some(p) => file.rel(p),
            None => {
                let audit = file.rel(&raw.audit);
                audit.with_file_name(format!("{}-complaints.db", prologue.name))
            }
        };
        let process = ProcessConfig::new(
            &file,
            prologue,
            RawFiles {
                policy: raw.policy,
                policy_threshold: raw.policy_threshold,
                policy_state: raw.policy_state,
                policy_officers: raw.policy_officers,
                audit: raw.audit,
                pseudonym_key: raw.pseudonym_key,
                audit_checkpoint_entries: raw.audit_checkpoint_entries,
                audit_checkpoint_secs: raw.audit_checkpoint_secs,
            },
            today,
        )?;
        raw.tls.crl_grace().map_err(|e| invalid(e.to_string()))?;
        let mut tls = raw.tls.resolve(file.dir());
        tls.trust.crl_state = Some(process.crl_state());
        Ok(Self {
            process,
            deadline: Duration::from_millis(deadline_ms),
            witness_interval: Duration::from_millis(witness_interval_ms),
            max_in_flight,
            health,
            tls,
            https,
            nodes,
            complaints,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "coordinator"
listen = "127.0.0.1:8443"
ops_listen = "127.0.0.1:9443"
policy = "policy/policy.toml"
audit = "data/audit.db"
pseudonym_key = "data/pseudonym.key"
[tls]
ca = "pki/ca.crt"
crl = "pki/crl.pem"
cert = "pki/coordinator.crt"
key = "pki/coordinator.key"
[[node]]
name = "court"
address = "127.0.0.1:7101"
"#;

    #[test]
    fn defaults_and_relative_paths() {
        let c = CoordinatorConfig::parse(GOOD, Path::new("/srv/fedq/coordinator.toml")).unwrap();
        assert_eq!(c.deadline, Duration::from_secs(2));
        assert_eq!(c.max_in_flight, 1000);
        assert_eq!(c.health, crate::health::HealthSettings::default());
        assert_eq!(c.tls.trust.crl, Path::new("/srv/fedq/pki/crl.pem"));
        assert_eq!(c.nodes[0].name, "court");
        assert_eq!(c.https, ConnectionLimits::default());
        assert_eq!(c.https.handshake_timeout, Duration::from_secs(5));
        assert_eq!(
            c.complaints,
            Path::new("/srv/fedq/data/coordinator-complaints.db")
        );
        let named = GOOD.replace("[tls]", "complaints = \"queue/c.db\"\n[tls]");
        let c2 = CoordinatorConfig::parse(&named, Path::new("/srv/fedq/coordinator.toml")).unwrap();
        assert_eq!(c2.complaints, Path::new("/srv/fedq/queue/c.db"));
        let tuned = GOOD.replace(
            "[tls]",
            "[https]\nmax_connections_per_identity = 3\nidle_timeout_ms = 1500\n[tls]",
        );
        let c = CoordinatorConfig::parse(&tuned, Path::new("c.toml")).unwrap();
        assert_eq!(c.https.max_per_identity, 3);
        assert_eq!(c.https.idle_timeout, Duration::from_millis(1500));
        assert_eq!(c.https.max_connections, 4096);
    }

    #[test]
    fn mistakes_are_named_before_anything_is_bound() {
        let p = Path::new("coordinator.toml");
        let cases = [
            (
                GOOD.replace("127.0.0.1:7101", "court:7101"),
                "`address = \"court:7101\"` is not an address",
            ),
            (
                GOOD.replace("[tls]", "deadline_ms = 5\n[tls]"),
                "`deadline_ms = 5` is out of range",
            ),
            (
                format!("{GOOD}[[node]]\nname = \"court\"\naddress = \"127.0.0.1:7102\"\n"),
                "node `court` is listed twice",
            ),
            (
                GOOD.replace("[tls]", "max_in_flight = 0\n[tls]"),
                "`max_in_flight` must be at least 1",
            ),
            (GOOD.replace("ca = ", "cacert = "), "unknown field `cacert`"),
            (
                GOOD.replace("[tls]", "[https]\nbody_timeout_ms = 5\n[tls]"),
                "[https] `body_timeout_ms = 5` is out of range",
            ),
            (
                GOOD.replace("[tls]", "[https]\nmax_connections = 0\n[tls]"),
                "[https] `max_connections` must be at least 1",
            ),
            (
                GOOD.replace("[tls]", "node_down_after_failures = 0\n[tls]"),
                "`node_down_after_failures = 0` is out of range; use 1..=1000",
            ),
            (
                GOOD.replace("[tls]", "node_heartbeat_interval_ms = 0\n[tls]"),
                "`node_heartbeat_interval_ms = 0` is out of range",
            ),
            (
                GOOD.replace("[tls]", "node_probe_interval_ms = 1\n[tls]"),
                "`node_probe_interval_ms = 1` is out of range",
            ),
            (
                GOOD.replace("[tls]", "node_probe_timeout_ms = 0\n[tls]"),
                "`node_probe_timeout_ms = 0` is out of range",
            ),
        ];
        for (text, want) in &cases {
            let err = CoordinatorConfig::parse(text, p).unwrap_err().to_string();
            assert!(err.contains(want), "expected `{want}` in `{err}`");
        }
    }
}
