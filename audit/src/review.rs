//! The reviewer's access to a node's or the coordinator's audit log (`fedq audit …`):
//! both configs name their log with `audit = "…"` and their key with
//! `pseudonym_key = "…"`, and a reviewer names people by resident ID, which only the log's
//! own key turns into the pseudonyms its entries hold.

use std::path::{Path, PathBuf};

use crate::checkpoint::{log_name, witness_name, NoteVerifier};
use crate::{AuditError, Cause, Pseudonymizer};

/// Errors of reviewing an audit log.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// The config could not be read.
    #[error("cannot read config `{path}`: {reason}")]
    Config {
        /// File.
        path: String,
        /// Why, with the error behind it (the file system's, TOML's, the
        /// certificate's) as the source.
        #[source]
        reason: Cause,
    },
    /// A bad argument.
    #[error("{0}")]
    Argument(String),
    /// The log failed.
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// The file a node's or the coordinator's config names under `key` (`audit` or
/// `pseudonym_key`), relative to the config's directory.
pub fn config_path(config: &Path, key: &str) -> Result<PathBuf, ReviewError> {
    config_setting(config, &[key])
}

/// The certificate a node's or the coordinator's config names (`[tls] cert`), relative
/// to the config's directory.
pub fn config_certificate(config: &Path) -> Result<PathBuf, ReviewError> {
    config_setting(config, &["tls", "cert"])
}

/// The file the config names at `keys` (a table path), relative to its directory.
fn config_setting(config: &Path, keys: &[&str]) -> Result<PathBuf, ReviewError> {
    let err = |reason: Cause| ReviewError::Config {
        path: config.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(config).map_err(|e| err(Cause::of(e)))?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| err(Cause::of(e)))?;
    let (last, tables) = keys.split_last().unwrap_or((&"", &[]));
    let value = tables
        .iter()
        .try_fold(&table, |t, k| t.get(*k).and_then(|v| v.as_table()))
        .and_then(|t| t.get(*last))
        .and_then(|v| v.as_str())
        .ok_or_else(|| match tables {
            [] => err(format!("no `{last} = \"…\"` setting").into()),
            _ => err(format!("no `[{}] {last} = \"…\"` setting", tables.join(".")).into()),
        })?;
    Ok(config.parent().unwrap_or(Path::new(".")).join(value))
}

/// The keys a federation process's certificate file (PEM) gives: its log's
/// (`fedq/<federation>/<role>/<name>`) and its witness's (`fedq/<federation>/witness/<name>`).
pub fn certificate_verifiers(cert: &Path) -> Result<(NoteVerifier, NoteVerifier), ReviewError> {
    verifiers_of(cert, &first_certificate(cert)?)
}

/// As [`certificate_verifiers`], once the certificate is checked against `trust` (the
/// federation's CA): a node's or the coordinator's certificate of this federation, valid
/// when it was issued (an expired one still names whose key signed the checkpoints of its
/// time; revocation is not checked, for the same reason). A certificate not of this
/// federation's CA is refused: its key vouches for nothing.
pub fn trusted_certificate_verifiers(
    cert: &Path,
    trust: &fedq_certs::FederationTrust,
) -> Result<(NoteVerifier, NoteVerifier), ReviewError> {
    let der = first_certificate(cert)?;
    let issued = fedq_certs::signing::not_before(&der).map_err(|e| cert_err(cert, Cause::of(e)))?;
    trust
        .verify_process_certificate(&der, issued, false)
        .map_err(|e| {
            cert_err(
                cert,
                format!("not a certificate of this federation's CA: {e}").into(),
            )
        })?;
    verifiers_of(cert, &der)
}

fn cert_err(cert: &Path, reason: Cause) -> ReviewError {
    ReviewError::Config {
        path: cert.display().to_string(),
        reason,
    }
}

/// The first certificate (DER) in the PEM file `cert`.
fn first_certificate(cert: &Path) -> Result<Vec<u8>, ReviewError> {
    let pem = std::fs::read(cert).map_err(|e| cert_err(cert, Cause::of(e)))?;
    fedq_certs::tls::read_certificates(&pem)
        .map_err(|e| cert_err(cert, Cause::of(e)))?
        .first()
        .map(|der| der.to_vec())
        .ok_or_else(|| cert_err(cert, "no certificate in the file".into()))
}

/// The log's and the witness's keys of the certificate `der` (read from `cert`).
fn verifiers_of(cert: &Path, der: &[u8]) -> Result<(NoteVerifier, NoteVerifier), ReviewError> {
    let err = |reason: Cause| cert_err(cert, reason);
    let id = fedq_certs::Identity::from_certificate_der(der).map_err(|e| err(Cause::of(e)))?;
    let key = fedq_certs::jws::certificate_public_key(der)
        .ok_or_else(|| err("the certificate has no P-256 public key".into()))?;
    let log = NoteVerifier::new(&log_name(&id.federation, id.role.as_str(), &id.name), &key)
        .map_err(|e| err(Cause::of(e)))?;
    let witness = NoteVerifier::new(&witness_name(&id.federation, &id.name), &key)
        .map_err(|e| err(Cause::of(e)))?;
    Ok((log, witness))
}

/// `--since`: an RFC 3339 time, or a date (YYYY-MM-DD, from its midnight UTC).
pub fn parse_since(s: &str) -> Result<time::OffsetDateTime, ReviewError> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t);
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &fmt)
        .map(|d| d.midnight().assume_utc())
        .map_err(|_| {
            ReviewError::Argument(format!("--since `{s}`: expected RFC 3339 or YYYY-MM-DD"))
        })
}

/// A person's pseudonym in the log `config` names, from their resident ID; the log's key
/// must exist already (a reviewer never creates one).
pub fn subject_pseudonym(config: &Path, resident_id: &str) -> Result<String, ReviewError> {
    let key = config_path(config, "pseudonym_key")?;
    if !key.exists() {
        return Err(ReviewError::Argument(format!(
            "pseudonym key `{}` does not exist",
            key.display()
        )));
    }
    Ok(Pseudonymizer::load_or_create(&key)?.pseudonym(resident_id.trim()))
}
