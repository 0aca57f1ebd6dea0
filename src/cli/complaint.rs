//! `fedq complaint …` ([`fedq_coordinator::complaints`]): a requester files a complaint
//! about a query or a leak and reads its status over the API; the departments' security
//! officers read the queue on the coordinator's host and change a complaint's status
//! through the running coordinator with a statement signed by their officer key.

use std::path::PathBuf;

use fedq_coordinator::complaints::{
    self,
    complaint::{ComplaintAbout, ComplaintRequest, ComplaintStatus},
    ListFilter, UpdateArgs,
};
use fedq_coordinator::config::CoordinatorConfig;
use fedq_coordinator::consent::read_token;

use super::coordinator::ApiCli;

/// The `fedq complaint` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ComplaintCommand {
    /// File a complaint about a query (by its id) or a leak, under your requester
    /// certificate; prints its id.
    File {
        /// The query complained about: the coordinator's id of it, or the id a node's
        /// register entry shows.
        #[arg(long, required_unless_present = "leak", conflicts_with = "leak")]
        query: Option<String>,
        /// A complaint about a leak of the person's data (routed to every department).
        #[arg(long)]
        leak: bool,
        /// What happened (at most 4 KiB), or `@FILE`. Kept in the coordinator's queue,
        /// never in a log.
        #[arg(long)]
        text: String,
        /// How to reach the person, if they want to be reached, or `@FILE`.
        #[arg(long)]
        contact: Option<String>,
        /// Print the JSON answer.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiCli,
    },
    /// The status of a complaint you filed.
    Status {
        /// The complaint's id, as `fedq complaint file` printed it.
        id: String,
        /// Print the JSON answer.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiCli,
    },
    /// The complaints in the coordinator's queue (officers, on the coordinator's host).
    List {
        /// The coordinator's config (it names the queue).
        #[arg(long)]
        config: PathBuf,
        /// Only those routed to this department.
        #[arg(long)]
        department: Option<String>,
        /// Only those with this status: `open`, `in-review` or `closed`.
        #[arg(long)]
        status: Option<ComplaintStatus>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One complaint in full: its text, contact and every status change.
    Show {
        /// The coordinator's config.
        #[arg(long)]
        config: PathBuf,
        /// The complaint's id.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change a complaint's status: signs the change with your officer key and sends it
    /// to the running coordinator, which verifies it against the federation CA.
    Update {
        /// The coordinator's config (its address, CA and queue).
        #[arg(long)]
        config: PathBuf,
        /// The coordinator's URL, if not its config's `listen` address.
        #[arg(long)]
        coordinator: Option<String>,
        /// The complaint's id.
        id: String,
        /// The status it goes to: `in-review` or `closed`.
        #[arg(long)]
        status: ComplaintStatus,
        /// What you did or found (the filer reads it), or `@FILE`.
        #[arg(long)]
        note: String,
        /// Your officer certificate.
        #[arg(long)]
        officer_cert: PathBuf,
        /// Its private key.
        #[arg(long)]
        officer_key: PathBuf,
    },
}

/// Text given as itself or `@FILE`.
fn text_arg(arg: &str, what: &'static str) -> anyhow::Result<String> {
    read_token(arg, what).map_err(super::message)
}

/// Runs one `fedq complaint` subcommand.
pub async fn run(cmd: ComplaintCommand) -> anyhow::Result<()> {
    match cmd {
        ComplaintCommand::File {
            query,
            leak,
            text,
            contact,
            json,
            api,
        } => {
            let about = match query {
                Some(id) => ComplaintAbout::Query(id),
                None => ComplaintAbout::Leak(leak),
            };
            let request = ComplaintRequest {
                about,
                text: text_arg(&text, "complaint text")?,
                contact: contact.map(|c| text_arg(&c, "contact")).transpose()?,
            };
            let filed = complaints::file(&api.into(), &request)
                .await
                .map_err(super::message)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&filed)?);
            } else {
                println!(
                    "complaint {} filed ({}), routed to {}",
                    filed.complaint_id,
                    filed.status,
                    filed.departments.join(", ")
                );
            }
        }
        ComplaintCommand::Status { id, json, api } => {
            let state = complaints::status(&api.into(), &id)
                .await
                .map_err(super::message)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&state)?);
            } else {
                print!("{}", complaints::render_state(&state));
            }
        }
        ComplaintCommand::List {
            config,
            department,
            status,
            json,
        } => {
            let config = CoordinatorConfig::load(&config)?;
            let found = complaints::list(&config.complaints, &ListFilter { department, status })
                .map_err(super::message)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&found)?);
            } else {
                print!("{}", complaints::render_list(&found));
            }
        }
        ComplaintCommand::Show { config, id, json } => {
            let config = CoordinatorConfig::load(&config)?;
            let found = complaints::show(&config.complaints, &id).map_err(super::message)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&found)?);
            } else {
                print!("{}", complaints::render_complaint(&found));
            }
        }
        ComplaintCommand::Update {
            config,
            coordinator,
            id,
            status,
            note,
            officer_cert,
            officer_key,
        } => {
            let args = UpdateArgs {
                config,
                coordinator,
                id,
                status,
                note: text_arg(&note, "note")?,
                officer_cert,
                officer_key,
            };
            let state = complaints::update(&args).await.map_err(super::message)?;
            print!("{}", complaints::render_state(&state));
        }
    }
    Ok(())
}
