//! What every process's configuration file shares, parsed one way: the file read and its
//! TOML parsed ([`ConfigFile`]), relative paths resolved against the file's directory,
//! the process's name and addresses ([`Prologue`]), its policy files, audit log,
//! pseudonym key and pinned date ([`ProcessConfig`]), and the one [`ConfigError`].
//!
//! The node's and the coordinator's configs are each a [`ProcessConfig`] composed with
//! their own fields. Composed rather than `#[serde(flatten)]`ed: each process's raw TOML
//! struct keeps its own `deny_unknown_fields` list, because serde's flatten buffers the
//! input, which would lose TOML's line and column and the "expected one of …" list from
//! the messages a user reads for a mistyped key. The shared part is what is done with
//! the values, and the messages it gives.
//!
//! This module never opens a socket or creates a file: it only reads the config and
//! checks it, so a bad config is reported (one line, exit non-zero) before anything is
//! bound.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Why a config is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config `{path}`: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Malformed TOML, unknown or missing keys, or inconsistent values.
    #[error("config `{path}`: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong (with line and column where TOML gives them).
        reason: String,
        /// The error it comes from, if any (the TOML parser's, …; `reason` says what it
        /// says).
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

/// A config file: where it is, which is what its errors name and what its relative paths
/// are relative to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigFile {
    path: PathBuf,
}

impl ConfigFile {
    /// The config at `path` (for text already read, or to be read with [`Self::read`]).
    pub fn at(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
        }
    }

    /// Reads the file's text.
    pub fn read(&self) -> Result<String, ConfigError> {
        std::fs::read_to_string(&self.path).map_err(|source| ConfigError::Read {
            path: self.path.display().to_string(),
            source,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// An [`ConfigError::Invalid`] naming this file.
    pub fn invalid(&self, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.display().to_string(),
            reason: reason.into(),
            source: None,
        }
    }

    /// An [`ConfigError::Invalid`] naming this file that `error` caused (`reason` names it).
    pub fn invalid_because(
        &self,
        reason: impl Into<String>,
        error: impl std::error::Error + Send + Sync + 'static,
    ) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.display().to_string(),
            reason: reason.into(),
            source: Some(Box::new(error)),
        }
    }

    /// Parses `text` as the TOML of `T`; the parser's message on one line.
    pub fn toml<T: serde::de::DeserializeOwned>(&self, text: &str) -> Result<T, ConfigError> {
        toml::from_str(text).map_err(|e: toml::de::Error| {
            self.invalid_because(e.to_string().trim().replace('\n', " "), e)
        })
    }

    /// The file's directory, against which its relative paths are resolved.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// `path` resolved against the file's directory (an absolute path stays as it is).
    pub fn rel(&self, path: &Path) -> PathBuf {
        self.dir().join(path)
    }

    /// The address `value` of key `field`, or an error showing the form with `example`.
    pub fn address(
        &self,
        field: &str,
        value: &str,
        example: &str,
    ) -> Result<SocketAddr, ConfigError> {
        value.parse().map_err(|_| {
            self.invalid(format!(
                "`{field} = \"{value}\"` is not an address; expected IP:PORT, e.g. \"{example}\""
            ))
        })
    }

    /// The pinned date `today = "YYYY-MM-DD"`, if given.
    pub fn today(&self, value: Option<&str>) -> Result<Option<time::Date>, ConfigError> {
        value
            .map(|t| {
                fedq_policy::transform::parse_date(t).ok_or_else(|| {
                    self.invalid(format!("`today = \"{t}\"` is not a date YYYY-MM-DD"))
                })
            })
            .transpose()
    }

    /// The first keys of a process's config, checked in this order: its `name` (as in its
    /// certificate), its `listen` address and its optional `ops_listen` address.
    pub fn prologue(
        &self,
        name: String,
        addresses: Addresses<'_>,
    ) -> Result<Prologue, ConfigError> {
        fedq_certs::identity::validate_name(&name)
            .map_err(|e| self.invalid_because(format!("`name`: {e}"), e))?;
        let listen = self.address("listen", addresses.listen, addresses.listen_example)?;
        let ops_listen = addresses
            .ops_listen
            .map(|o| self.address("ops_listen", o, addresses.ops_listen_example))
            .transpose()?;
        Ok(Prologue {
            name,
            listen,
            ops_listen,
        })
    }
}

/// A process's addresses as written, with the example each one's error shows.
#[derive(Clone, Copy, Debug)]
pub struct Addresses<'a> {
    /// `listen`.
    pub listen: &'a str,
    /// The example of a `listen` address in its error (`0.0.0.0:7101` for a node).
    pub listen_example: &'a str,
    /// `ops_listen`, if given.
    pub ops_listen: Option<&'a str>,
    /// The example of an `ops_listen` address in its error.
    pub ops_listen_example: &'a str,
}

/// A process's name and addresses, checked ([`ConfigFile::prologue`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prologue {
    /// The process's name, as in its certificate.
    pub name: String,
    /// Where it listens.
    pub listen: SocketAddr,
    /// Where `/health` and `/metrics` are served in plain HTTP, if anywhere (loopback or
    /// a management network: it is unauthenticated).
    pub ops_listen: Option<SocketAddr>,
}

/// A process's policy and log files as written (paths relative to the config).
#[derive(Clone, Debug, Default)]
pub struct RawFiles {
    /// `policy`: the set-up policy file.
    pub policy: PathBuf,
    /// `policy_threshold`.
    pub policy_threshold: Option<u32>,
    /// `policy_state`.
    pub policy_state: Option<PathBuf>,
    /// `policy_officers`.
    pub policy_officers: Option<Vec<String>>,
    /// `audit`.
    pub audit: PathBuf,
    /// `pseudonym_key`.
    pub pseudonym_key: PathBuf,
    /// `audit_checkpoint_entries`.
    pub audit_checkpoint_entries: Option<u64>,
    /// `audit_checkpoint_secs`.
    pub audit_checkpoint_secs: Option<u64>,
}

/// Entries between the audit checkpoints a process keeps for its witnesses, unless its
/// config says `audit_checkpoint_entries`.
pub const DEFAULT_CHECKPOINT_ENTRIES: u64 = 1000;
/// Seconds between them, unless its config says `audit_checkpoint_secs`.
pub const DEFAULT_CHECKPOINT_SECS: u64 = 60;
/// The most seconds `audit_checkpoint_secs` may say (a day): a log whose witnesses hear
/// from it less often leaves too much of its history unwitnessed.
pub const MAX_CHECKPOINT_SECS: u64 = 86_400;

/// Why `audit_checkpoint_entries` or `audit_checkpoint_secs` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CadenceError {
    /// No entries between checkpoints.
    #[error("`audit_checkpoint_entries = 0`: a checkpoint is kept after at least 1 entry; the default is {DEFAULT_CHECKPOINT_ENTRIES}")]
    NoEntries,
    /// Seconds out of range.
    #[error("`audit_checkpoint_secs = {0}` is out of range; use 1..={MAX_CHECKPOINT_SECS} (default {DEFAULT_CHECKPOINT_SECS})")]
    Seconds(u64),
}

/// The checkpoint cadence a process's config states (`audit_checkpoint_entries`,
/// `audit_checkpoint_secs`), defaults filled in and checked: entries between kept
/// checkpoints and the time between them. Nodes, coordinators and gateways read it alike.
pub fn checkpoint_cadence(
    entries: Option<u64>,
    secs: Option<u64>,
) -> Result<(u64, std::time::Duration), CadenceError> {
    let entries = entries.unwrap_or(DEFAULT_CHECKPOINT_ENTRIES);
    if entries == 0 {
        return Err(CadenceError::NoEntries);
    }
    let secs = secs.unwrap_or(DEFAULT_CHECKPOINT_SECS);
    if !(1..=MAX_CHECKPOINT_SECS).contains(&secs) {
        return Err(CadenceError::Seconds(secs));
    }
    Ok((entries, std::time::Duration::from_secs(secs)))
}

/// What a node's and a coordinator's configuration share, checked and resolved: its
/// name and addresses, the policy it starts under and where it keeps what it accepts,
/// its audit log and pseudonym key, and a pinned date.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessConfig {
    /// The process's name, as in its certificate.
    pub name: String,
    /// Where it listens.
    pub listen: SocketAddr,
    /// Where `/health` and `/metrics` are served in plain HTTP, if anywhere (loopback or
    /// a management network: it is unauthenticated).
    pub ops_listen: Option<SocketAddr>,
    /// The set-up policy file: in force (as version 0) until a signed bundle is.
    pub policy: PathBuf,
    /// Distinct officers a policy bundle needs while the set-up policy is in force.
    pub policy_threshold: u32,
    /// The directory of signed bundles this process accepted, replayed at start (default:
    /// `NAME-policy/` beside the audit log), where the newest CRL accepted is remembered.
    pub policy_state: PathBuf,
    /// The set-up officer roster (`policy_officers`): key fingerprints of the officers whose
    /// approvals count while the set-up policy is in force. Empty: no bundle is accepted.
    pub policy_officers: Vec<String>,
    /// The audit log file.
    pub audit: PathBuf,
    /// The pseudonym key file.
    pub pseudonym_key: PathBuf,
    /// After how many entries the audit log keeps a signed checkpoint for its witnesses
    /// (`audit_checkpoint_entries`, default 1000) …
    pub checkpoint_entries: u64,
    /// … or after how long since the last one (`audit_checkpoint_secs`, default 60 s),
    /// whichever comes first.
    pub checkpoint_interval: std::time::Duration,
    /// A pinned "today" (tests and demos); `None` uses the clock.
    pub today: Option<time::Date>,
}

impl ProcessConfig {
    /// Completes a process's configuration from its checked [`Prologue`], its files as
    /// written (resolved here, with the policy settings checked and defaulted) and its
    /// pinned date ([`ConfigFile::today`]).
    pub fn new(
        file: &ConfigFile,
        prologue: Prologue,
        files: RawFiles,
        today: Option<time::Date>,
    ) -> Result<Self, ConfigError> {
        let fedq_bundle::state::PolicySettings {
            threshold: policy_threshold,
            state_dir: policy_state,
            officers: policy_officers,
        } = fedq_bundle::state::settings(
            files.policy_threshold,
            files.policy_state.as_deref().map(|p| file.rel(p)),
            files.policy_officers.as_deref(),
            &file.rel(&files.audit),
            &prologue.name,
        )
        .map_err(|e| file.invalid_because(e.to_string(), e))?;
        let (checkpoint_entries, checkpoint_interval) =
            checkpoint_cadence(files.audit_checkpoint_entries, files.audit_checkpoint_secs)
                .map_err(|e| file.invalid_because(e.to_string(), e))?;
        Ok(Self {
            name: prologue.name,
            listen: prologue.listen,
            ops_listen: prologue.ops_listen,
            policy: file.rel(&files.policy),
            policy_threshold,
            policy_state,
            policy_officers,
            audit: file.rel(&files.audit),
            pseudonym_key: file.rel(&files.pseudonym_key),
            checkpoint_entries,
            checkpoint_interval,
            today,
        })
    }

    /// Where the newest CRL accepted is remembered (in the policy state directory), so a
    /// restart on an older `crl.pem` keeps the revocations issued since.
    pub fn crl_state(&self) -> PathBuf {
        fedq_certs::tls::remembered_crl_in(&self.policy_state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prologue_names_each_mistake_in_the_same_words() {
        let file = ConfigFile::at(Path::new("/srv/fedq/node.toml"));
        let addresses = |listen, ops_listen| Addresses {
            listen,
            listen_example: "0.0.0.0:7101",
            ops_listen,
            ops_listen_example: "127.0.0.1:9101",
        };
        let p = file
            .prologue(
                "court".into(),
                addresses("127.0.0.1:7101", Some("127.0.0.1:9101")),
            )
            .unwrap();
        assert_eq!(p.listen, "127.0.0.1:7101".parse().unwrap());
        let err = |name: &str, listen, ops| {
            file.prologue(name.into(), addresses(listen, ops))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err("court", "localhost", None),
            "config `/srv/fedq/node.toml`: `listen = \"localhost\"` is not an address; expected IP:PORT, e.g. \"0.0.0.0:7101\""
        );
        assert!(err("court", "127.0.0.1:1", Some("x")).contains(
            "`ops_listen = \"x\"` is not an address; expected IP:PORT, e.g. \"127.0.0.1:9101\""
        ));
        assert!(err("Court", "x", None).contains("`name`"));
        assert_eq!(
            file.rel(Path::new("data/a.db")),
            Path::new("/srv/fedq/data/a.db")
        );
        assert_eq!(file.rel(Path::new("/abs/a.db")), Path::new("/abs/a.db"));
        let missing = ConfigFile::at(Path::new("/nonexistent/fedq.toml"))
            .read()
            .unwrap_err()
            .to_string();
        assert!(
            missing.starts_with("cannot read config `/nonexistent/fedq.toml`: "),
            "{missing}"
        );
    }

    #[test]
    fn reading_and_parsing_keep_the_error_behind_them() {
        let missing = ConfigFile::at(Path::new("/nonexistent/fedq.toml"))
            .read()
            .unwrap_err();
        let io = std::error::Error::source(&missing)
            .and_then(|e| e.downcast_ref::<std::io::Error>())
            .expect("the io error");
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
        assert_eq!(
            missing.to_string(),
            format!("cannot read config `/nonexistent/fedq.toml`: {io}")
        );

        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Raw {
            name: String,
        }
        let file = ConfigFile::at(Path::new("/srv/fedq/node.toml"));
        let bad = file.toml::<Raw>("name = [").unwrap_err();
        let parser = std::error::Error::source(&bad)
            .and_then(|e| e.downcast_ref::<toml::de::Error>())
            .expect("the parser's error");
        assert_eq!(
            bad.to_string(),
            format!(
                "config `/srv/fedq/node.toml`: {}",
                parser.to_string().trim().replace('\n', " ")
            )
        );
        assert!(std::error::Error::source(&file.invalid("a message")).is_none());
    }
}
