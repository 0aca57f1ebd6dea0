//! `fedq decision sign`: an officer signs a decision on a person's filing (issue 19) on
//! their own machine, with their officer certificate and key — a department officer's
//! resolution of an objection, a credit-repair reviewer's approval, rejection or
//! reversal. The node's operator records it with `fedq node resolve` or `fedq node
//! repair`, which verify the signature against the federation's CA and CRL.

use std::path::PathBuf;

use fedq_node::decisions::DecisionClaims;
use fedq_node::remedies;

/// The `fedq decision` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum DecisionCommand {
    /// Sign a decision on an objection or a repair application.
    Sign {
        /// Your officer certificate (`fedq certs issue --role officer`).
        #[arg(long)]
        officer_cert: PathBuf,
        /// Its private key.
        #[arg(long)]
        officer_key: PathBuf,
        /// The node the filing is at (its name, e.g. `court`).
        #[arg(long)]
        node: String,
        /// An objection's id (`obj-…`) or a repair application's (`rep-…`), as the
        /// person's register and `fedq node objections | repairs` show it.
        #[arg(long)]
        filing: String,
        /// For an objection: `upheld`, `corrected` or `removed`; for a repair application:
        /// `approve`, `reject` or `reverse`.
        #[arg(long)]
        decision: String,
        /// Why, in your words (the person reads it).
        #[arg(long)]
        note: String,
        /// A correction: `FIELD=VALUE` as the department's import file would hold it
        /// (repeatable; with `--decision corrected`).
        #[arg(long = "set", value_name = "FIELD=VALUE")]
        set: Vec<String>,
        /// Where to write the signed decision (owner-only).
        #[arg(long)]
        out: PathBuf,
    },
}

/// Runs one `fedq decision` subcommand.
pub fn run(cmd: DecisionCommand) -> anyhow::Result<()> {
    match cmd {
        DecisionCommand::Sign {
            officer_cert,
            officer_key,
            node,
            filing,
            decision,
            note,
            set,
            out,
        } => {
            let repair = match decision.as_str() {
                "approve" | "reject" | "reverse" => true,
                "upheld" | "corrected" | "removed" => false,
                _ => anyhow::bail!(
                    "`--decision` is `upheld`, `corrected` or `removed` (an objection) or `approve`, `reject` or `reverse` (a repair application)"
                ),
            };
            let corrections = remedies::corrections(&set).map_err(super::message)?;
            let claims = DecisionClaims {
                node,
                filing,
                decision,
                note,
                corrections,
                iat: time::OffsetDateTime::now_utc().unix_timestamp(),
            };
            let token = remedies::sign(&officer_cert, &officer_key, repair, &claims)?;
            fedq_certs::fsutil::write_atomic(&out, format!("{token}\n").as_bytes(), 0o600)?;
            println!(
                "signed the decision `{}` on {} at node `{}`; give {} to the node's operator",
                claims.decision,
                claims.filing,
                claims.node,
                out.display()
            );
        }
    }
    Ok(())
}
