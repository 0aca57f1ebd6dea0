//! `node.toml`: everything a node needs, validated before any file is opened for writing
//! or any socket is bound. Relative paths are relative to the config file's directory.
//!
//! ```toml
//! name = "court"                      # must match the node certificate's name
//! listen = "0.0.0.0:7101"             # UDP (QUIC)
//! catalogue = "catalogue/court.toml"  # this department's datasets
//! policy = "policy.toml"              # the federation policy (names its catalogue dir)
//! store = "data/court.db"             # SQLite file
//! audit = "data/court-audit.db"       # this node's audit log
//! pseudonym_key = "data/court-pseudonym.key"  # created 0600 on first start
//!
//! [tls]
//! ca = "pki/ca.crt"
//! crl = "pki/crl.pem"
//! cert = "pki/court.crt"
//! key = "pki/court.key"
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Why a config is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config `{path}`: {reason}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The TOML is malformed or has unknown or missing keys.
    #[error("config `{path}`: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong (with line and column where TOML gives them).
        reason: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    name: String,
    listen: String,
    catalogue: PathBuf,
    policy: PathBuf,
    store: String,
    audit: PathBuf,
    pseudonym_key: PathBuf,
    tls: RawTls,
    today: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    ca: PathBuf,
    crl: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// Where the node keeps its records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreLocation {
    /// An SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database URL.
    Postgres(String),
}

/// A validated node configuration.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The node's name (its department), as in its certificate.
    pub name: String,
    /// UDP address to listen on.
    pub listen: SocketAddr,
    /// The department's catalogue file.
    pub catalogue: PathBuf,
    /// The federation policy file.
    pub policy: PathBuf,
    /// The record store.
    pub store: StoreLocation,
    /// The audit log file.
    pub audit: PathBuf,
    /// The pseudonym key file.
    pub pseudonym_key: PathBuf,
    /// TLS files.
    pub tls: fedq_wire::transport::TlsFiles,
    /// A pinned "today" (tests and demos); `None` uses the clock.
    pub today: Option<time::Date>,
}

impl NodeConfig {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::parse(&text, path)
    }

    /// Validates config text as if read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            path: path.display().to_string(),
            reason,
        };
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| invalid(e.to_string().trim().replace('\n', " ")))?;
        fedq_certs::identity::validate_name(&raw.name)
            .map_err(|e| invalid(format!("`name`: {e}")))?;
        let listen = raw.listen.parse().map_err(|_| {
            invalid(format!(
                "`listen = \"{}\"` is not an address; expected IP:PORT, e.g. \"0.0.0.0:7101\"",
                raw.listen
            ))
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let rel = |p: &Path| base.join(p);
        let store =
            if raw.store.starts_with("postgres://") || raw.store.starts_with("postgresql://") {
                StoreLocation::Postgres(raw.store)
            } else if raw.store.contains("://") {
                return Err(invalid(format!(
                "`store`: unsupported URL scheme in `{}`; use an SQLite file path or postgres://",
                raw.store.split("://").next().unwrap_or_default()
            )));
            } else {
                StoreLocation::Sqlite(rel(Path::new(&raw.store)))
            };
        let today = raw
            .today
            .map(|t| {
                fedq_policy::transform::parse_date(&t)
                    .ok_or_else(|| invalid(format!("`today = \"{t}\"` is not a date YYYY-MM-DD")))
            })
            .transpose()?;
        Ok(Self {
            name: raw.name,
            listen,
            catalogue: rel(&raw.catalogue),
            policy: rel(&raw.policy),
            store,
            audit: rel(&raw.audit),
            pseudonym_key: rel(&raw.pseudonym_key),
            tls: fedq_wire::transport::TlsFiles {
                trust: fedq_certs::tls::TrustFiles {
                    ca: rel(&raw.tls.ca),
                    crl: rel(&raw.tls.crl),
                },
                cert: rel(&raw.tls.cert),
                key: rel(&raw.tls.key),
            },
            today,
        })
    }

    /// Today for this node: the pinned date, or the city's date.
    pub fn today(&self) -> time::Date {
        self.today.unwrap_or_else(crate::today_in_city)
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
    }
}
