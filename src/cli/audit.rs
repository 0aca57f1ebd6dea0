//! `fedq audit …`: the reviewer's view of a node's or the coordinator's audit log
//! ([`fedq_audit::review`]).

use std::path::PathBuf;
use std::process::ExitCode;

use fedq_audit::review::{config_path, parse_since, subject_pseudonym, ReviewError};
use fedq_audit::{list, verify_against, ListFilter, Witnessed};

/// The `fedq audit` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain and Merkle tree; names the first altered or missing entry.
    /// With `--witness`, checks the log against every checkpoint of it those nodes
    /// cosigned: a log rewritten and re-hashed throughout, or cut, fails there.
    Verify {
        /// A node's or the coordinator's config file.
        #[arg(long)]
        config: PathBuf,
        /// A witnessing node's config file (its `witness_state` and certificate are read);
        /// repeat for each witness.
        #[arg(long = "witness", value_name = "NODE_CONFIG")]
        witnesses: Vec<PathBuf>,
    },
    /// The entries about one person, each with its inclusion proof against the newest
    /// checkpoint the witnesses cosigned (with no `--witness`, the log's own newest
    /// checkpoint): what "who looked at my data" is answered with, checkable against a
    /// tree head the department alone could not have rewritten. Prints one JSON object.
    Proofs {
        /// A node's config file.
        #[arg(long)]
        config: PathBuf,
        /// The person, by resident ID (turned into this log's pseudonym here).
        #[arg(long)]
        subject: String,
        /// A witnessing node's config file; repeat for each witness.
        #[arg(long = "witness", value_name = "NODE_CONFIG")]
        witnesses: Vec<PathBuf>,
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
        /// Only entries before this time (RFC 3339, or a date YYYY-MM-DD: before its start).
        #[arg(long)]
        until: Option<String>,
        /// Only entries of this outcome: `answered`, `refused` or `rate-limited`.
        #[arg(long)]
        outcome: Option<String>,
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
        AuditCommand::Verify { config, witnesses } => {
            let path = config_path(&config, "audit")?;
            let (witnessed, held, empty) =
                fedq_node::witnessing::witnessed_checkpoints(&config, &witnesses)?;
            if !empty.is_empty() {
                // A witness named that vouches for nothing must not read as a pass.
                eprintln!(
                    "audit log {}: not checked: {} holds no checkpoint of this log it can vouch for ({}); name witnesses that cosigned it",
                    path.display(),
                    empty.join(", "),
                    held.join("; ")
                );
                return Ok(ExitCode::FAILURE);
            }
            let v = verify_against(&path, &witnessed)?;
            match v.first_break {
                None => {
                    let mut line = format!(
                        "audit log {}: {} entries, chain intact; head {}",
                        path.display(),
                        v.entries,
                        v.head
                    );
                    if !witnesses.is_empty() {
                        line.push_str(&format!(
                            "; matches all {} checkpoints its witnesses cosigned ({})",
                            v.witnessed,
                            held.join(", ")
                        ));
                    }
                    if v.shredded > 0 {
                        line.push_str(&format!(
                            "; the bodies of {} entries shredded at the end of their retention period",
                            v.shredded
                        ));
                    }
                    println!("{line}");
                    Ok(ExitCode::SUCCESS)
                }
                Some(b) => {
                    eprintln!("audit log {}: chain broken: {b}", path.display());
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        AuditCommand::Proofs {
            config,
            subject,
            witnesses,
        } => {
            let path = config_path(&config, "audit")?;
            let pseudonym = subject_pseudonym(&config, &subject)?;
            let states = fedq_node::witnessing::witness_states(&config, &witnesses)?;
            let witnessed: Vec<Witnessed> = states
                .iter()
                .flat_map(|(_, c)| c.checkpoints.iter().cloned())
                .collect();
            let (size, notes, cosigned_by) = if witnesses.is_empty() {
                let (size, note) = fedq_audit::latest_checkpoint(&path)?.ok_or_else(|| {
                    ReviewError::Argument(format!(
                        "the log `{}` has kept no checkpoint yet",
                        path.display()
                    ))
                })?;
                (size, vec![note], Vec::new())
            } else {
                // The newest size any witness cosigned, with every witness's note of it.
                let newest = |c: &fedq_audit::witness::Cosigned| {
                    c.checkpoints.last().map(|w| w.checkpoint.size)
                };
                let size = states
                    .iter()
                    .filter_map(|(_, c)| newest(c))
                    .max()
                    .ok_or_else(|| {
                        ReviewError::Argument(
                            "the witnesses have cosigned no checkpoint of this log yet".into(),
                        )
                    })?;
                let at_size: Vec<_> = states
                    .iter()
                    .filter(|(_, c)| newest(c) == Some(size))
                    .collect();
                (
                    size,
                    at_size
                        .iter()
                        .filter_map(|(_, c)| c.newest_note.clone())
                        .collect(),
                    at_size.iter().map(|(name, _)| name.clone()).collect(),
                )
            };
            // The log must still match what was cosigned, or its proofs mean nothing.
            let v = verify_against(&path, &witnessed)?;
            if let Some(b) = v.first_break {
                eprintln!("audit log {}: chain broken: {b}", path.display());
                return Ok(ExitCode::FAILURE);
            }
            let entries: Vec<serde_json::Value> =
                fedq_audit::entries_about(&path, &pseudonym, size)?
                    .into_iter()
                    .map(|(entry, proof)| {
                        serde_json::json!({
                            "entry": entry,
                            "index": entry.seq - 1,
                            "inclusion_proof": fedq_audit::checkpoint::encode_proof(&proof),
                        })
                    })
                    .collect();
            let out = serde_json::json!({
                "log": fedq_audit::review::certificate_verifiers(
                    &fedq_audit::review::config_certificate(&config)?
                )?
                .0
                .name(),
                "tree_size": size,
                "checkpoints": notes,
                "cosigned_by": cosigned_by,
                "entries": entries,
            });
            println!("{out}");
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::List {
            config,
            requester,
            purpose,
            since,
            subject,
            case_reference,
            until,
            outcome,
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
                until: until.as_deref().map(parse_since).transpose()?,
                outcome: outcome.as_deref().map(parse_outcome).transpose()?,
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

/// `--outcome`: one of the classes of [`fedq_audit::OutcomeClass`].
pub fn parse_outcome(s: &str) -> Result<fedq_audit::OutcomeClass, ReviewError> {
    fedq_audit::OutcomeClass::parse(s).ok_or_else(|| {
        ReviewError::Argument("`--outcome` is `answered`, `refused` or `rate-limited`".to_owned())
    })
}
