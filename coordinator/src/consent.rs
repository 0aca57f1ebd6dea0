//! `fedq consent issue | show`: the consent authority's tool, and a reader of tokens.
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

/// The `fedq consent` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ConsentCommand {
    /// Sign a consent token for one person, office, purpose and target(s).
    Issue(IssueArgs),
    /// Print a token's claims (subject masked); with `--dir`, verify it too.
    Show {
        /// The token, or `@FILE` to read it from a file.
        token: String,
        /// A federation directory (its `ca.crt` and `crl.pem`) to verify the token against.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

/// Arguments of `fedq consent issue`.
#[derive(Debug, clap::Args)]
pub struct IssueArgs {
    /// Directory holding the authority's certificate and key (`NAME.crt`, `NAME.key`).
    #[arg(long)]
    pub dir: PathBuf,
    /// The consent authority's certificate name (role `consent-authority`).
    #[arg(long)]
    pub authority: String,
    /// The person's resident ID (identity verified by the authority).
    #[arg(long)]
    pub subject: String,
    /// The office that may ask, `agency.office`.
    #[arg(long)]
    pub requester: String,
    /// The purpose it may ask for.
    #[arg(long)]
    pub purpose: String,
    /// What it may ask: `view:NAME` or `department.dataset` (repeatable).
    #[arg(long = "target", required = true)]
    pub targets: Vec<String>,
    /// How long the token is valid: `90s`, `30m`, `1h`, `7d` (at most 90 days).
    #[arg(long, default_value = "1h")]
    pub valid_for: String,
    /// How many answered queries it allows at each node.
    #[arg(long, default_value_t = 1)]
    pub uses: u32,
    /// Write the token to this file (owner-only) instead of printing it.
    #[arg(long)]
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

/// Reads a token given as text or `@FILE` (the `--consent` of `fedq query` too).
pub fn token_arg(arg: &str) -> Result<String, String> {
    match arg.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .map(|t| t.trim().to_owned())
            .map_err(|e| format!("cannot read the consent token file `{path}`: {e}")),
        None => Ok(arg.trim().to_owned()),
    }
}

fn masked(sub: &str) -> String {
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
fn utc(t: i64) -> String {
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

fn write_token(path: &Path, token: &str) -> Result<(), ConsentCliError> {
    fedq_certs::fsutil::write_atomic(
        path,
        format!("{token}\n").as_bytes(),
        fedq_certs::fsutil::KEY_MODE,
    )
    .map_err(|e| ConsentCliError::Usage(format!("cannot write `{}`: {e}", path.display())))
}

/// Runs one `fedq consent` subcommand.
pub fn run(cmd: ConsentCommand) -> Result<(), ConsentCliError> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    match cmd {
        ConsentCommand::Issue(args) => {
            let (token, claims) = issue(&args, now)?;
            let Some(d) = claims.authorization_details.first() else {
                return Err(ConsentCliError::Usage(
                    "the token has no authorization detail".into(),
                ));
            };
            let summary = format!(
                "consent token {} for {} ({}): {} may ask for {} under purpose `{}`, {} use(s) per node, until {}",
                claims.jti,
                masked(&claims.sub),
                claims.iss,
                d.requester,
                d.targets.join(", "),
                d.purpose,
                d.max_uses,
                utc(claims.exp)
            );
            match &args.out {
                Some(path) => {
                    write_token(path, &token)?;
                    println!("wrote {summary} to {}", path.display());
                }
                None => {
                    eprintln!("issued {summary}");
                    println!("{token}");
                }
            }
        }
        ConsentCommand::Show { token, dir } => {
            let token = token_arg(&token).map_err(ConsentCliError::Usage)?;
            let claims = consent::inspect(&token)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&describe(&claims)).unwrap_or_default()
            );
            match dir {
                Some(dir) => {
                    let trust = FederationTrust::load(&TrustFiles::in_dir(&dir))?;
                    trust.verify_consent(&token, now, true)?;
                    println!("verified: signed by a consent authority of this federation, valid now, not revoked");
                }
                None => println!(
                    "not verified (give --dir FEDERATION to check it against the CA and CRL)"
                ),
            }
        }
    }
    Ok(())
}
