//! `fedq audit …`: the reviewer's view of a node's or the coordinator's audit log. Both
//! configs name their log with `audit = "…"` and their key with `pseudonym_key = "…"`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::{list, verify, AuditError, ListFilter, Pseudonymizer};

/// The `fedq audit` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain; names the first altered or missing entry.
    Verify {
        /// A node's or the coordinator's config file.
        #[arg(long)]
        config: PathBuf,
    },
    /// List registered queries (newest last).
    List {
        /// A node's or the coordinator's config file.
        #[arg(long)]
        config: PathBuf,
        /// Only this requester (`agency.office`).
        #[arg(long)]
        requester: Option<String>,
        /// Only this purpose.
        #[arg(long)]
        purpose: Option<String>,
        /// Only entries since this time (RFC 3339, or a date YYYY-MM-DD).
        #[arg(long)]
        since: Option<String>,
        /// Only queries about this person ("who looked at me?"); given as the resident ID,
        /// turned into this log's pseudonym before searching.
        #[arg(long)]
        subject: Option<String>,
        /// Only the queries that served this case (a licensing application or court case
        /// number, as the requester cited it).
        #[arg(long = "case", value_name = "REF")]
        case_reference: Option<String>,
        /// At most this many entries.
        #[arg(long)]
        limit: Option<u64>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
}

/// Errors of `fedq audit`.
#[derive(Debug, thiserror::Error)]
pub enum AuditCliError {
    /// The config could not be read.
    #[error("cannot read config `{path}`: {reason}")]
    Config {
        /// File.
        path: String,
        /// Why.
        reason: String,
    },
    /// A bad argument.
    #[error("{0}")]
    Argument(String),
    /// The log failed.
    #[error(transparent)]
    Audit(#[from] AuditError),
}

fn config_path(config: &Path, key: &str) -> Result<PathBuf, AuditCliError> {
    let err = |reason: String| AuditCliError::Config {
        path: config.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(config).map_err(|e| err(e.to_string()))?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
    let value = table
        .get(key)
        .and_then(|v| v.as_str())
        .ok_or_else(|| err(format!("no `{key} = \"…\"` setting")))?;
    Ok(config.parent().unwrap_or(Path::new(".")).join(value))
}

fn parse_since(s: &str) -> Result<time::OffsetDateTime, AuditCliError> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t);
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &fmt)
        .map(|d| d.midnight().assume_utc())
        .map_err(|_| {
            AuditCliError::Argument(format!("--since `{s}`: expected RFC 3339 or YYYY-MM-DD"))
        })
}

/// Runs one `fedq audit` subcommand.
pub fn run(cmd: AuditCommand) -> Result<ExitCode, AuditCliError> {
    match cmd {
        AuditCommand::Verify { config } => {
            let path = config_path(&config, "audit")?;
            let v = verify(&path)?;
            match v.first_break {
                None => {
                    println!(
                        "audit log {}: {} entries, chain intact; head {}",
                        path.display(),
                        v.entries,
                        v.head
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Some(b) => {
                    eprintln!("audit log {}: chain broken: {b}", path.display());
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        AuditCommand::List {
            config,
            requester,
            purpose,
            since,
            subject,
            case_reference,
            limit,
            json,
        } => {
            let path = config_path(&config, "audit")?;
            let subject = match subject {
                Some(id) => {
                    let key = config_path(&config, "pseudonym_key")?;
                    if !key.exists() {
                        return Err(AuditCliError::Argument(format!(
                            "pseudonym key `{}` does not exist",
                            key.display()
                        )));
                    }
                    Some(Pseudonymizer::load_or_create(&key)?.pseudonym(id.trim()))
                }
                None => None,
            };
            let filter = ListFilter {
                requester,
                purpose,
                subject,
                case_reference: case_reference.map(|c| c.trim().to_owned()),
                since: since.as_deref().map(parse_since).transpose()?,
                limit,
            };
            for e in list(&path, &filter)? {
                if json {
                    println!("{}", serde_json::to_string(&e).unwrap_or_default());
                } else {
                    let at = e
                        .record
                        .at
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default();
                    // A coordinator entry names each node's own id of the query, the
                    // only place the departments' entries can be joined.
                    let nodes = if e.record.node_query_ids.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " nodes={}",
                            e.record
                                .node_query_ids
                                .iter()
                                .map(|(n, id)| format!("{n}:{id}"))
                                .collect::<Vec<_>>()
                                .join(",")
                        )
                    };
                    println!(
                        "#{} {at} {} query={}{nodes} {} purpose={} basis={} case={} subject={}{} {} -> {} (policy {})",
                        e.seq,
                        e.record.kind,
                        e.record.query_id,
                        e.record.requester,
                        e.record.purpose,
                        e.record.legal_basis.as_deref().unwrap_or("-"),
                        e.record.case_reference.as_deref().unwrap_or("-"),
                        e.record.subject,
                        e.record
                            .consent_id
                            .as_deref()
                            .map(|c| format!(" consent={c}"))
                            .unwrap_or_default(),
                        e.record.target,
                        e.record.outcome,
                        e.record.policy_version
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
