//! `fedq consent issue | show`: the consent authority's tool, and a reader of tokens
//! ([`fedq_coordinator::consent`]). No error quotes the subject or the token.

use std::path::PathBuf;

use fedq_coordinator::consent::{
    describe, issue, issued_summary, token_arg, verify_in, write_token, ConsentCliError, IssueArgs,
};

#[derive(Debug, clap::Subcommand)]
pub enum ConsentCommand {
    /// Sign a consent token for one person, office, purpose and target(s).
    Issue(IssueCli),
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
pub struct IssueCli {
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

impl From<IssueCli> for IssueArgs {
    fn from(a: IssueCli) -> Self {
        IssueArgs {
            dir: a.dir,
            authority: a.authority,
            subject: a.subject,
            requester: a.requester,
            purpose: a.purpose,
            targets: a.targets,
            valid_for: a.valid_for,
            uses: a.uses,
            out: a.out,
        }
    }
}

/// Runs one `fedq consent` subcommand.
pub fn run(cmd: ConsentCommand) -> Result<(), ConsentCliError> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    match cmd {
        ConsentCommand::Issue(args) => {
            let args = IssueArgs::from(args);
            let (token, claims) = issue(&args, now)?;
            let summary = issued_summary(&claims)?;
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
            let token = token_arg(&token).map_err(|e| ConsentCliError::Usage(e.to_string()))?;
            let claims = fedq_certs::consent::inspect(&token)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&describe(&claims)).unwrap_or_default()
            );
            match dir {
                Some(dir) => {
                    verify_in(&dir, &token, now)?;
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
