//! `node.toml`: everything a node needs, validated before any file is opened for writing
//! or any socket is bound. Relative paths are relative to the config file's directory.
//!
//! ```toml
//! name = "court"                      # must match the node certificate's name
//! listen = "0.0.0.0:7101"             # UDP (QUIC)
//! ops_listen = "127.0.0.1:9101"       # optional, plain HTTP: /health and /metrics; keep it local
//! catalogue = "catalogue/court.toml"  # this department's datasets
//! policy = "policy.toml"              # the set-up policy (names its catalogue dir)
//! policy_threshold = 2                # officers a policy bundle needs until one says otherwise
//! policy_officers = ["3b1f…", "9c0d…", "e27a…"]  # officers' key fingerprints (`fedq certs officers`)
//! policy_state = "data/court-policy"  # the signed bundles accepted, one file each, and
//!                                     # crl-in-force.pem, the newest CRL accepted
//! store = "data/court.db"             # SQLite file
//! audit = "data/court-audit.db"       # this node's audit log
//! pseudonym_key = "data/court-pseudonym.key"  # created 0600 on first start
//! audit_checkpoint_entries = 1000     # optional: keep a signed checkpoint for the witnesses
//! audit_checkpoint_secs = 60          #   after this many entries or seconds, whichever first
//! witness_state = "data/court-witness.db"  # optional (this default): what this node cosigned
//!                                     # of the other logs; owner-only, never delete it
//!
//! [tls]
//! ca = "pki/ca.crt"
//! crl = "pki/crl.pem"
//! cert = "pki/court.crt"
//! key = "pki/court.key"
//! crl_grace_secs = 0                  # how long a CRL past its nextUpdate still admits new connections
//!
//! # Optional, repeatable: a dataset read from the department's own PostgreSQL tables
//! # (read-only, nothing is copied into fedq). Columns are named after catalogue fields.
//! [[attach]]
//! dataset = "court.dishonest_debtors"
//! database = "postgres://fedq_reader@db.court.internal/enforcement"
//! query = "SELECT case_no, id_number AS resident_id, listed_on FROM enforcement.dishonest WHERE id_number = $1"
//! ```
//!
//! `store` is an SQLite file path, or `postgres://USER:PASSWORD@HOST:PORT/DATABASE`.

use std::path::{Path, PathBuf};

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
    catalogue: PathBuf,
    policy: PathBuf,
    policy_threshold: Option<u32>,
    policy_state: Option<PathBuf>,
    policy_officers: Option<Vec<String>>,
    store: String,
    audit: PathBuf,
    audit_checkpoint_entries: Option<u64>,
    audit_checkpoint_secs: Option<u64>,
    witness_state: Option<PathBuf>,
    #[serde(default)]
    rights_state: Option<PathBuf>,
    #[serde(default)]
    statistics_state: Option<PathBuf>,
    pseudonym_key: PathBuf,
    tls: fedq_wire::transport::TlsPaths,
    today: Option<String>,
    #[serde(default)]
    attach: Vec<RawAttach>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAttach {
    dataset: String,
    database: String,
    query: String,
}

/// A dataset answered from the department's own PostgreSQL tables instead of the store:
/// a read-only query taking the subject's resident ID as `$1`, whose columns are named
/// after the dataset's catalogue fields.
#[derive(Clone, PartialEq, Eq)]
pub struct AttachSpec {
    /// The dataset, as written (`court.dishonest_debtors` or `dishonest_debtors`).
    pub dataset: String,
    /// The department's database URL (may hold a password: never shown).
    pub database: String,
    /// The query.
    pub query: String,
}

impl std::fmt::Debug for AttachSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttachSpec")
            .field("dataset", &self.dataset)
            .field("query", &self.query)
            .finish_non_exhaustive()
    }
}

/// Where the node keeps its records.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// An SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database URL (may hold a password: its `Debug` hides it).
    Postgres(String),
}

impl std::fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreLocation::Sqlite(p) => f.debug_tuple("Sqlite").field(p).finish(),
            StoreLocation::Postgres(url) => {
                let shown = crate::pg::parse_url(url)
                    .map(|o| crate::pg::redacted(&o))
                    .unwrap_or_else(|_| "<malformed URL>".into());
                f.debug_tuple("Postgres").field(&shown).finish()
            }
        }
    }
}

fn is_postgres_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

/// A validated node configuration: what every process's config holds
/// ([`ProcessConfig`], read through `Deref`: `config.name`, `config.audit`, …) and the
/// node's own files.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The node's name (its department, as in its certificate), its UDP `listen`
    /// address, `ops_listen`, policy files, audit log, pseudonym key and pinned `today`.
    pub process: ProcessConfig,
    /// The department's catalogue file.
    pub catalogue: PathBuf,
    /// The record store.
    pub store: StoreLocation,
    /// TLS files.
    pub tls: fedq_wire::transport::TlsFiles,
    /// Datasets read from the department's own PostgreSQL tables (`[[attach]]`).
    pub attach: Vec<AttachSpec>,
    /// Where this node keeps, as a witness of the other logs, the latest checkpoint it
    /// cosigned of each and every one it cosigned (`witness_state`; default
    /// `NAME-witness.db` beside the audit log). Owner-only; never delete it: it is what
    /// catches a rewritten log.
    pub witness_state: PathBuf,
    /// Where this node keeps the persons' objections and repair applications about its
    /// records (`rights_state`; default `NAME-rights.db` beside the audit log), by
    /// pseudonym. Owner-only.
    pub rights_state: PathBuf,
    /// Where this node keeps each requester's spent privacy budget (ε per period) for
    /// aggregate queries (`statistics_state`; default `NAME-statistics.db` beside the audit
    /// log). Owner-only; deleting it would hand every requester a fresh budget.
    pub statistics_state: PathBuf,
}

/// The witness state file a node keeps unless its config names one: `NAME-witness.db`
/// in its audit log's directory (what `fedq audit verify --witness` reads as well).
pub fn default_witness_state(audit: &Path, name: &str) -> PathBuf {
    audit_sibling(audit, name, "witness")
}

/// The rights file a node keeps unless its config names one: `NAME-rights.db` in its
/// audit log's directory.
pub fn default_rights_state(audit: &Path, name: &str) -> PathBuf {
    audit_sibling(audit, name, "rights")
}

/// `NAME-WHAT.db` in the audit log's directory.
fn audit_sibling(audit: &Path, name: &str, what: &str) -> PathBuf {
    audit
        .parent()
        .unwrap_or(Path::new("."))
        .join(format!("{name}-{what}.db"))
}

impl std::ops::Deref for NodeConfig {
    type Target = ProcessConfig;
    fn deref(&self) -> &ProcessConfig {
        &self.process
    }
}

impl NodeConfig {
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
                listen_example: "0.0.0.0:7101",
                ops_listen: raw.ops_listen.as_deref(),
                ops_listen_example: "127.0.0.1:9101",
            },
        )?;
        let rel = |p: &Path| file.rel(p);
        let store = if is_postgres_url(&raw.store) {
            crate::pg::parse_url(&raw.store).map_err(|e| invalid(format!("`store`: {e}")))?;
            StoreLocation::Postgres(raw.store)
        } else if raw.store.contains("://") {
            return Err(invalid(format!(
                "`store`: unsupported URL scheme in `{}`; use an SQLite file path or postgres://",
                raw.store.split("://").next().unwrap_or_default()
            )));
        } else {
            StoreLocation::Sqlite(rel(Path::new(&raw.store)))
        };
        let today = file.today(raw.today.as_deref())?;
        let mut attach: Vec<AttachSpec> = Vec::with_capacity(raw.attach.len());
        for (i, a) in raw.attach.into_iter().enumerate() {
            let which = if a.dataset.trim().is_empty() {
                format!("[[attach]] #{}", i + 1)
            } else {
                format!("[[attach]] `{}`", a.dataset)
            };
            if a.dataset.trim().is_empty() || a.dataset.chars().any(char::is_whitespace) {
                return Err(invalid(format!(
                    "{which}: `dataset` must name one of the catalogue's datasets, e.g. \"court.dishonest_debtors\""
                )));
            }
            let local = |d: &str| d.rsplit('.').next().unwrap_or(d).to_owned();
            if attach
                .iter()
                .any(|b| local(&b.dataset) == local(&a.dataset))
            {
                return Err(invalid(format!(
                    "{which}: the dataset is attached twice; keep one `[[attach]]` per dataset"
                )));
            }
            if !is_postgres_url(&a.database) {
                return Err(invalid(format!(
                    "{which}: `database` must be a postgres:// URL of the department's database"
                )));
            }
            crate::pg::parse_url(&a.database)
                .map_err(|e| invalid(format!("{which}: `database`: {e}")))?;
            if a.query.trim().is_empty() {
                return Err(invalid(format!("{which}: `query` is empty")));
            }
            if !a.query.contains("$1") {
                return Err(invalid(format!(
                    "{which}: `query` must take the subject's resident ID as `$1`, e.g. `… WHERE id_number = $1`"
                )));
            }
            attach.push(AttachSpec {
                dataset: a.dataset,
                database: a.database,
                query: a.query,
            });
        }
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
        let witness_state = match raw.witness_state {
            Some(path) => rel(&path),
            None => default_witness_state(&process.audit, &process.name),
        };
        let rights_state = match raw.rights_state {
            Some(path) => rel(&path),
            None => default_rights_state(&process.audit, &process.name),
        };
        let statistics_state = match raw.statistics_state {
            Some(path) => rel(&path),
            None => audit_sibling(&process.audit, &process.name, "statistics"),
        };
        Ok(Self {
            witness_state,
            rights_state,
            statistics_state,
            process,
            catalogue: rel(&raw.catalogue),
            store,
            tls,
            attach,
        })
    }

    /// Today for this node: the pinned date, or the city's date.
    pub fn today(&self) -> time::Date {
        self.today
            .unwrap_or_else(fedq_policy::calendar::today_in_city)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "court"
listen = "127.0.0.1:7101"
catalogue = "catalogue/court.toml"
policy = "policy.toml"
store = "data/court.db"
audit = "data/court-audit.db"
pseudonym_key = "data/court.key"
[tls]
ca = "pki/ca.crt"
crl = "pki/crl.pem"
cert = "pki/court.crt"
key = "pki/court.key"
"#;

    #[test]
    fn paths_are_relative_to_the_config() {
        let c = NodeConfig::parse(GOOD, Path::new("/srv/fedq/node.toml")).unwrap();
        assert_eq!(c.catalogue, Path::new("/srv/fedq/catalogue/court.toml"));
        assert_eq!(
            c.store,
            StoreLocation::Sqlite("/srv/fedq/data/court.db".into())
        );
        assert_eq!(c.tls.cert, Path::new("/srv/fedq/pki/court.crt"));
        assert_eq!(c.ops_listen, None);
    }

    #[test]
    fn the_ops_listener_is_optional_and_a_bad_address_is_named() {
        let p = Path::new("node.toml");
        let c = NodeConfig::parse(&format!("ops_listen = \"127.0.0.1:9101\"\n{GOOD}"), p).unwrap();
        assert_eq!(c.ops_listen, Some("127.0.0.1:9101".parse().unwrap()));
        let err = NodeConfig::parse(&format!("ops_listen = \"loopback\"\n{GOOD}"), p)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`ops_listen = \"loopback\"` is not an address"),
            "{err}"
        );
    }

    #[test]
    fn mistakes_are_named() {
        let p = Path::new("node.toml");
        let err = NodeConfig::parse(&GOOD.replace("127.0.0.1:7101", "localhost"), p)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`listen = \"localhost\"` is not an address"),
            "{err}"
        );
        let err = NodeConfig::parse(&format!("{GOOD}\nstroe = 1"), p)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `stroe`"), "{err}");
        let err = NodeConfig::parse(&GOOD.replace("data/court.db", "mysql://x"), p)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unsupported URL scheme in `mysql`"), "{err}");
        let err = NodeConfig::parse(&GOOD.replace("name = \"court\"", "name = \"Court\""), p)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`name`"), "{err}");
        let err = NodeConfig::parse(&format!("policy_threshold = 0\n{GOOD}"), p)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`policy_threshold = 0` is not allowed"),
            "{err}"
        );
    }

    #[test]
    fn checkpoint_cadence_and_witness_state_default_and_their_mistakes_are_named() {
        let path = Path::new("/srv/fedq/node.toml");
        let c = NodeConfig::parse(GOOD, path).unwrap();
        assert_eq!(c.checkpoint_entries, 1000);
        assert_eq!(c.checkpoint_interval, std::time::Duration::from_secs(60));
        assert_eq!(
            c.witness_state,
            Path::new("/srv/fedq/data/court-witness.db")
        );
        let set = GOOD.replace(
            "[tls]",
            "audit_checkpoint_entries = 1\naudit_checkpoint_secs = 5\nwitness_state = \"w/tax.db\"\n[tls]",
        );
        let c = NodeConfig::parse(&set, path).unwrap();
        assert_eq!(c.checkpoint_entries, 1);
        assert_eq!(c.checkpoint_interval, std::time::Duration::from_secs(5));
        assert_eq!(c.witness_state, Path::new("/srv/fedq/w/tax.db"));
        for (line, why) in [
            ("audit_checkpoint_entries = 0", "at least 1 entry"),
            ("audit_checkpoint_secs = 0", "out of range"),
        ] {
            let err = NodeConfig::parse(&GOOD.replace("[tls]", &format!("{line}\n[tls]")), path)
                .unwrap_err()
                .to_string();
            assert!(err.contains(why), "{line}: {err}");
        }
    }

    #[test]
    fn the_policy_state_defaults_to_beside_the_audit_log() {
        let c = NodeConfig::parse(GOOD, Path::new("/srv/fedq/node.toml")).unwrap();
        assert_eq!(c.policy_threshold, 2);
        assert_eq!(c.policy_state, Path::new("/srv/fedq/data/court-policy"));
        let c = NodeConfig::parse(
            &format!("policy_threshold = 3\npolicy_state = \"state/policy\"\n{GOOD}"),
            Path::new("/srv/fedq/node.toml"),
        )
        .unwrap();
        assert_eq!(c.policy_threshold, 3);
        assert_eq!(c.policy_state, Path::new("/srv/fedq/state/policy"));
    }

    #[test]
    fn the_set_up_roster_and_crl_grace_are_read_and_their_mistakes_named() {
        let p = Path::new("node.toml");
        let (a, b) = ("ab".repeat(32), "CD".repeat(32));
        let c =
            NodeConfig::parse(&format!("policy_officers = [\"{a}\", \"{b}\"]\n{GOOD}"), p).unwrap();
        assert_eq!(c.policy_officers, [a.clone(), "cd".repeat(32)]);
        assert_eq!(c.tls.trust.crl_grace, std::time::Duration::ZERO);
        // Absent: no roster, so no approval will count (the slot refuses every bundle).
        assert!(NodeConfig::parse(GOOD, p)
            .unwrap()
            .policy_officers
            .is_empty());
        let err = |text: String| NodeConfig::parse(&text, p).unwrap_err().to_string();
        let e = err(format!("policy_officers = [\"{a}\"]\n{GOOD}"));
        assert!(
            e.contains("lists 1 officer(s) but `policy_threshold` is 2"),
            "{e}"
        );
        let e = err(format!("policy_officers = [\"{a}\", \"{a}\"]\n{GOOD}"));
        assert!(e.contains("entry 2 repeats an earlier key"), "{e}");
        let e = err(format!(
            "policy_officers = [\"officer-zhang\", \"{a}\"]\n{GOOD}"
        ));
        assert!(
            e.contains("entry 1 is not a key fingerprint") && e.contains("fedq certs officers"),
            "{e}"
        );
        let c = NodeConfig::parse(&format!("{GOOD}crl_grace_secs = 3600\n"), p).unwrap();
        assert_eq!(c.tls.trust.crl_grace, std::time::Duration::from_secs(3600));
        let e = err(format!("{GOOD}crl_grace_secs = 99999999\n"));
        assert!(
            e.contains("`[tls] crl_grace_secs = 99999999` is too long"),
            "{e}"
        );
    }

    #[test]
    fn postgres_stores_and_attachments_are_read_and_their_mistakes_named() {
        let p = Path::new("node.toml");
        let url = "postgres://fedq:s3cret@db.court.internal:5433/fedq";
        let c = NodeConfig::parse(&GOOD.replace("data/court.db", url), p).unwrap();
        assert_eq!(c.store, StoreLocation::Postgres(url.into()));
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("s3cret") && shown.contains("db.court.internal:5433/fedq"),
            "{shown}"
        );

        let attach = r#"
[[attach]]
dataset = "court.dishonest_debtors"
database = "postgres://reader:pw@db.court.internal/enforcement"
query = "SELECT case_no FROM enforcement.dishonest WHERE id_number = $1"
"#;
        let c = NodeConfig::parse(&format!("{GOOD}{attach}"), p).unwrap();
        assert_eq!(c.attach.len(), 1);
        assert_eq!(c.attach[0].dataset, "court.dishonest_debtors");
        assert!(!format!("{c:?}").contains(":pw@"));

        let err = |text: String| NodeConfig::parse(&text, p).unwrap_err().to_string();
        let e = err(format!("{GOOD}{attach}{}", attach.replace("court.", "")));
        assert!(e.contains("attached twice"), "{e}");
        let e = err(format!("{GOOD}{}", attach.replace("= $1", "= 'x'")));
        assert!(
            e.contains("must take the subject's resident ID as `$1`"),
            "{e}"
        );
        let e = err(format!(
            "{GOOD}{}",
            attach.replace("postgres://reader", "mysql://reader")
        ));
        assert!(e.contains("`database` must be a postgres:// URL"), "{e}");
        assert!(!e.contains("pw"), "{e}");
        let e = err(format!("{GOOD}{}", attach.replace("query =", "sql =")));
        assert!(e.contains("unknown field `sql`"), "{e}");
        let e = err(format!(
            "{GOOD}{}",
            attach.replace(
                "SELECT case_no FROM enforcement.dishonest WHERE id_number = $1",
                " "
            )
        ));
        assert!(e.contains("`query`"), "{e}");
    }
}
