//! The consent authority's tool (`fedq consent issue`) and a reader of tokens
//! (`fedq consent show`).
//!
//! `issue` signs a consent token ([`fedq_certs::consent`]) with the key of a
//! `consent-authority` certificate (`fedq certs issue --role consent-authority NAME`); the
//! token is printed, or written owner-only to `--out`. `show` prints a token's claims with
//! the subject masked, and with `--dir` verifies it against that federation's CA and CRL.
//! No error quotes the subject or the token.

use std::path::{Path, PathBuf};

use fedq_certs::consent::{self, ConsentClaims, ConsentGrant};
use fedq_certs::jws::CertificateKey;
use fedq_certs::tls::{FederationTrust, TrustFiles};
use fedq_wire::ResidentId;

/// Arguments of `fedq consent issue`.
#[derive(Debug)]
pub struct IssueArgs {
    /// Directory holding the authority's certificate and key (`NAME.crt`, `NAME.key`).
    pub dir: PathBuf,
    /// The consent authority's certificate name (role `consent-authority`).
    pub authority: String,
    /// The person's resident ID (identity verified by the authority).
    pub subject: String,
    /// The office that may ask, `agency.office`.
    pub requester: String,
    /// The purpose it may ask for.
    pub purpose: String,
    /// What it may ask: `view:NAME` or `department.dataset` (repeatable).
    pub targets: Vec<String>,
    /// How long the token is valid: `90s`, `30m`, `1h`, `7d` (at most 90 days).
    pub valid_for: String,
    /// How many answered queries it allows at each node.
    pub uses: u32,
    /// Write the token to this file (owner-only) instead of printing it.
    pub out: Option<PathBuf>,
}

/// Errors of `fedq consent`: one line, never the subject or the token.
#[derive(Debug, thiserror::Error)]
pub enum ConsentCliError {
    /// Bad arguments.
    #[error("{0}")]
    Usage(String),
    /// The authority's certificate or key.
    #[error(transparent)]
    Tls(#[from] fedq_certs::TlsError),
    /// The token.
    #[error(transparent)]
    Consent(#[from] consent::ConsentError),
}

/// A token file given as `@FILE` that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the {what} file `{path}`: {source}")]
pub struct TokenFileError {
    /// What the file was to hold: "consent token", "app token".
    pub what: &'static str,
    /// The file.
    pub path: String,
    /// Why.
    pub source: std::io::Error,
}

/// Reads a token given as text or `@FILE`; `what` names it in the error.
pub fn read_token(arg: &str, what: &'static str) -> Result<String, TokenFileError> {
    match arg.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .map(|t| t.trim().to_owned())
            .map_err(|source| TokenFileError {
                what,
                path: path.to_owned(),
                source,
            }),
        None => Ok(arg.trim().to_owned()),
    }
}

/// Reads a consent token given as text or `@FILE` (the `--consent` of `fedq query` too).
pub fn token_arg(arg: &str) -> Result<String, TokenFileError> {
    read_token(arg, "consent token")
}

/// A resident ID masked for display (`********` if it is not one).
pub fn masked(sub: &str) -> String {
    ResidentId::parse(sub).map_or_else(|_| "********".into(), |id| id.masked())
}

/// The claims as `show` prints them: the subject masked, times as RFC 3339 beside them.
pub fn describe(claims: &ConsentClaims) -> serde_json::Value {
    let mut v = match serde_json::to_value(claims) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    v.insert("sub".into(), masked(&claims.sub).into());
    v.insert("nbf_utc".into(), utc(claims.nbf).into());
    v.insert("exp_utc".into(), utc(claims.exp).into());
    serde_json::Value::Object(v)
}

/// A unix time as RFC 3339 (UTC).
pub fn utc(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Signs a token as `args` asks at `now` (unix seconds).
pub fn issue(args: &IssueArgs, now: i64) -> Result<(String, ConsentClaims), ConsentCliError> {
    let subject = ResidentId::parse(args.subject.trim())
        .map_err(|e| ConsentCliError::Usage(format!("`--subject`: {e}")))?;
    let valid_for_secs = consent::parse_duration(&args.valid_for)
        .map_err(|e| ConsentCliError::Usage(format!("`--valid-for`: {e}")))?;
    fedq_certs::identity::validate_name(&args.authority)
        .map_err(|e| ConsentCliError::Usage(format!("`--authority`: {e}")))?;
    let key = CertificateKey::load(
        &fedq_certs::pki::cert_path(&args.dir, &args.authority),
        &fedq_certs::pki::key_path(&args.dir, &args.authority),
    )?;
    let grant = ConsentGrant {
        subject: subject.as_str().to_owned(),
        requester: args.requester.trim().to_owned(),
        purpose: args.purpose.trim().to_owned(),
        targets: args.targets.iter().map(|t| t.trim().to_owned()).collect(),
        valid_for_secs,
        max_uses: args.uses,
    };
    Ok(consent::issue(&key, &grant, now)?)
}

/// Writes a token to `path`, owner-only.
pub fn write_token(path: &Path, token: &str) -> Result<(), ConsentCliError> {
    fedq_certs::fsutil::write_atomic(
        path,
        format!("{token}\n").as_bytes(),
        fedq_certs::fsutil::KEY_MODE,
    )
    .map_err(|e| ConsentCliError::Usage(format!("cannot write `{}`: {e}", path.display())))
}

/// How `fedq consent issue` describes a token it issued (the subject masked).
pub fn issued_summary(claims: &ConsentClaims) -> Result<String, ConsentCliError> {
    let Some(d) = claims.authorization_details.first() else {
        return Err(ConsentCliError::Usage(
            "the token has no authorization detail".into(),
        ));
    };
    Ok(format!(
        "consent token {} for {} ({}): {} may ask for {} under purpose `{}`, {} use(s) per node, until {}",
        claims.jti,
        masked(&claims.sub),
        claims.iss,
        d.requester,
        d.targets.join(", "),
        d.purpose,
        d.max_uses,
        utc(claims.exp)
    ))
}

/// Verifies a token against the federation in `dir` (its CA and CRL) at `now`.
pub fn verify_in(dir: &Path, token: &str, now: i64) -> Result<(), ConsentCliError> {
    let trust = FederationTrust::load(&TrustFiles::in_dir(dir))?;
    trust.verify_consent(token, now, true)?;
    Ok(())
}
