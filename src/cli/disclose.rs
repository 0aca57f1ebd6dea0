//! `fedq disclose part | publish | verify`: public disclosure of serious-dishonesty cases
//! and of the red list (长政办发〔2017〕62号 §十五, §三). Each department makes and signs its
//! part beside its node ([`fedq_node::disclose`]); the coordinator or an officer merges the
//! signed parts into one dated publication ([`fedq_coordinator::disclosure`]); anyone
//! checks a publication against the federation's CA and CRL.

use std::path::PathBuf;

use fedq_node::config::NodeConfig;
use fedq_policy::catalogue::PublicList;

/// The `fedq disclose` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum DiscloseCommand {
    /// Make and sign this department's part of a list at a date (beside its node).
    Part {
        /// The node's config file.
        #[arg(long)]
        config: PathBuf,
        /// `dishonesty` (serious-dishonesty cases) or `honours` (the red list).
        #[arg(long)]
        list: String,
        /// The publication date, YYYY-MM-DD (default: the node's today, UTC+8).
        #[arg(long)]
        date: Option<String>,
        /// Where to write the signed part.
        #[arg(long)]
        out: PathBuf,
    },
    /// Verify the departments' signed parts and merge them into one dated publication:
    /// JSON, CSV, a static HTML page in Chinese, and a manifest.
    Publish {
        /// The federation directory whose `ca.crt` and `crl.pem` the parts are checked against.
        #[arg(long)]
        dir: PathBuf,
        /// `dishonesty` or `honours`.
        #[arg(long)]
        list: String,
        /// The publication date the parts were made for, YYYY-MM-DD.
        #[arg(long)]
        date: String,
        /// The directory to write the publication's files into.
        #[arg(long)]
        out: PathBuf,
        /// The signed part files, one per department.
        #[arg(required = true)]
        parts: Vec<PathBuf>,
    },
    /// Check a publication: its files' digests, every department's signature, and that
    /// the signed parts give exactly the published files.
    Verify {
        /// The federation directory (`ca.crt`, `crl.pem`).
        #[arg(long)]
        dir: PathBuf,
        /// The publication's `.manifest.json`.
        manifest: PathBuf,
    },
}

fn list_of(word: &str) -> anyhow::Result<PublicList> {
    PublicList::parse(word)
        .ok_or_else(|| anyhow::anyhow!("--list must be `dishonesty` or `honours`"))
}

fn date_of(text: &str) -> anyhow::Result<time::Date> {
    fedq_policy::value::parse_date(text)
        .ok_or_else(|| anyhow::anyhow!("--date must be a date, YYYY-MM-DD"))
}

/// Runs one `fedq disclose` command.
pub async fn run(cmd: DiscloseCommand) -> anyhow::Result<()> {
    match cmd {
        DiscloseCommand::Part {
            config,
            list,
            date,
            out,
        } => {
            let list = list_of(&list)?;
            let config = NodeConfig::load(&config)?;
            let date = match date {
                Some(d) => date_of(&d)?,
                None => config.today(),
            };
            let part = fedq_node::disclose::part(&config, list, date).await?;
            let mut bytes = serde_json::to_vec_pretty(&part)?;
            bytes.push(b'\n');
            fedq_certs::fsutil::write_atomic(&out, &bytes, 0o644)
                .map_err(|e| anyhow::anyhow!("{}: {e}", out.display()))?;
            println!(
                "{}: {} records of node `{}` for the `{}` list at {date}, signed; registered in the node's audit log",
                out.display(),
                part.rows.len(),
                config.name,
                list.name()
            );
        }
        DiscloseCommand::Publish {
            dir,
            list,
            date,
            out,
            parts,
        } => {
            let list = list_of(&list)?;
            let date = date_of(&date)?;
            let published = fedq_coordinator::disclosure::publish(&dir, list, date, &parts, &out)?;
            for p in &published.manifest.parts {
                println!(
                    "part of `{}`: {} records, signature verified",
                    p.node, p.records
                );
            }
            for f in &published.files {
                println!("wrote {}", f.display());
            }
        }
        DiscloseCommand::Verify { dir, manifest } => {
            let checked = fedq_coordinator::disclosure::verify(&dir, &manifest)?;
            for (node, records) in &checked.parts {
                println!("`{node}`: {records} records, signature verified, rows as signed");
            }
            println!(
                "the `{}` publication of {} ({} records) is what the departments signed",
                checked.manifest.list, checked.manifest.date, checked.manifest.records
            );
        }
    }
    Ok(())
}
