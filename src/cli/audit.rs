//! `fedq audit …`: the reviewer's view of a node's or the coordinator's audit log
//! ([`fedq_audit::review`]).

use std::path::PathBuf;
use std::process::ExitCode;

use fedq_audit::review::{config_path, parse_since, subject_pseudonym, ReviewError};
use fedq_audit::{list, verify, ListFilter};

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

/// Runs one `fedq audit` subcommand.
pub fn run(cmd: AuditCommand) -> Result<ExitCode, ReviewError> {
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
            let subject = subject
                .map(|id| subject_pseudonym(&config, &id))
                .transpose()?;
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
