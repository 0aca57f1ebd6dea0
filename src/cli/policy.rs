//! `fedq policy check | test | diff | explain | who-can`: the security officers' tools.
//! Reads the policy and the catalogue directory it names ([`fedq_policy::load`]), runs
//! the engine, and prints [`fedq_policy::report`]'s reports.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use fedq_policy::analysis;
use fedq_policy::load::LoadError;
use fedq_policy::location::LocatedErrors;
use fedq_policy::policy::Policy;
use fedq_policy::report::{render_diff, render_explain, render_who_can, Ask};
use fedq_policy::testing;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The `fedq policy` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy against the catalogue; exits non-zero with located errors.
    Check {
        /// The policy file.
        file: PathBuf,
        #[command(flatten)]
        catalogue: CatalogueArg,
    },
    /// Run the `[[test]]` cases embedded in a policy and report each one.
    Test {
        /// The policy file.
        file: PathBuf,
        #[command(flatten)]
        catalogue: CatalogueArg,
    },
    /// Show what changes between two policies in terms of access: who gains or loses what.
    Diff {
        /// The policy in force.
        old: PathBuf,
        /// The proposed policy.
        new: PathBuf,
        #[command(flatten)]
        catalogue: CatalogueArg,
        /// The date to evaluate at when no rule has validity dates (default: today in Changsha).
        #[arg(long, value_name = "YYYY-MM-DD")]
        at: Option<String>,
    },
    /// For one requester and purpose, show per field which rules matched and the result.
    Explain {
        /// The policy file.
        #[arg(long, value_name = "FILE")]
        policy: PathBuf,
        /// The requester, `agency.office`.
        #[arg(long)]
        requester: String,
        /// The purpose.
        #[arg(long)]
        purpose: String,
        /// A view to explain.
        #[arg(long, conflicts_with = "dataset", required_unless_present = "dataset")]
        view: Option<String>,
        /// A dataset to explain, `department.dataset`.
        #[arg(long)]
        dataset: Option<String>,
        /// The legal basis the request cites.
        #[arg(long)]
        legal_basis: Option<String>,
        /// Assume the request carries a verified consent token (signed by the consent
        /// authority for this person, office, purpose and target).
        #[arg(long)]
        consent: bool,
        /// The case reference the request cites, where its purpose declares one.
        #[arg(long = "case", value_name = "REF")]
        case_reference: Option<String>,
        /// The date of the request (default: today in Changsha).
        #[arg(long, value_name = "YYYY-MM-DD")]
        at: Option<String>,
        #[command(flatten)]
        catalogue: CatalogueArg,
    },
    /// Every requester and purpose that can ever see a field, and in which form.
    WhoCan {
        /// The field, `department.dataset.field`.
        field: String,
        /// The policy file.
        #[arg(long, value_name = "FILE")]
        policy: PathBuf,
        #[command(flatten)]
        catalogue: CatalogueArg,
        /// The date to evaluate at when no rule has validity dates (default: today).
        #[arg(long, value_name = "YYYY-MM-DD")]
        at: Option<String>,
    },
}

/// Where the catalogue is.
#[derive(Debug, Clone, clap::Args)]
pub struct CatalogueArg {
    /// The catalogue directory (one `<department>.toml` per department). Default: the
    /// `catalogue` directory the policy names, relative to the policy file.
    #[arg(long, value_name = "DIR")]
    catalogue: Option<PathBuf>,
}

/// Runs one `fedq policy` subcommand, printing its report; the exit code says whether it passed.
pub fn run(cmd: PolicyCommand) -> Result<ExitCode, BoxError> {
    match cmd {
        PolicyCommand::Check { file, catalogue } => {
            let policy = match loaded(load(&file, &catalogue))? {
                Ok(p) => p,
                Err(code) => return Ok(code),
            };
            let engine = policy.compile();
            let p = engine.policy();
            println!(
                "ok: {} — version {} (sha256 {})",
                file.display(),
                p.version,
                p.content_hash.get(..16).unwrap_or_default()
            );
            println!("    {}", fedq_policy::report::summary(&engine));
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Test { file, catalogue } => {
            let policy = match loaded(load(&file, &catalogue))? {
                Ok(p) => p,
                Err(code) => return Ok(code),
            };
            let engine = policy.compile();
            let outcomes = testing::run_tests(&engine);
            let failed = outcomes.iter().filter(|o| !o.passed()).count();
            for o in &outcomes {
                if o.passed() {
                    println!("PASS {}", o.case.name);
                } else {
                    println!("FAIL {} ({})", o.case.name, o.case.location);
                    for f in &o.failures {
                        println!("     - {f}");
                    }
                }
            }
            println!("{} passed, {} failed", outcomes.len() - failed, failed);
            Ok(if failed == 0 && !outcomes.is_empty() {
                ExitCode::SUCCESS
            } else {
                if outcomes.is_empty() {
                    eprintln!("error: {} has no `[[test]]` cases; a policy without tests cannot be approved", file.display());
                }
                ExitCode::FAILURE
            })
        }
        PolicyCommand::Diff {
            old,
            new,
            catalogue,
            at,
        } => {
            let today = fedq_policy::calendar::date_or_today(at.as_deref())?;
            let old_policy = match loaded(load(&old, &catalogue))? {
                Ok(p) => p,
                Err(code) => return Ok(code),
            };
            let new_policy = match loaded(load(&new, &catalogue))? {
                Ok(p) => p,
                Err(code) => return Ok(code),
            };
            let (old_engine, new_engine) = (old_policy.compile(), new_policy.compile());
            print!("{}", render_diff(&old_engine, &new_engine, today));
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Explain {
            policy,
            requester,
            purpose,
            view,
            dataset,
            legal_basis,
            consent,
            case_reference,
            at,
            catalogue,
        } => {
            let today = fedq_policy::calendar::date_or_today(at.as_deref())?;
            let policy = match loaded(load(&policy, &catalogue))? {
                Ok(p) => p,
                Err(code) => return Ok(code),
            };
            let engine = policy.compile();
            let ask = Ask {
                requester: &requester,
                purpose: &purpose,
                legal_basis: legal_basis.as_deref(),
                consent,
                case_reference: case_reference.as_deref(),
                today,
            };
            print!(
                "{}",
                render_explain(&engine, &ask, view.as_deref(), dataset.as_deref())
            );
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::WhoCan {
            field,
            policy,
            catalogue,
            at,
        } => {
            let today = fedq_policy::calendar::date_or_today(at.as_deref())?;
            let policy = match loaded(load(&policy, &catalogue))? {
                Ok(p) => p,
                Err(code) => return Ok(code),
            };
            let engine = policy.compile();
            let access = analysis::who_can(&engine, &field, today)?;
            print!("{}", render_who_can(&field, &access));
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn report_errors(errors: &LocatedErrors) -> ExitCode {
    for e in &errors.0 {
        eprintln!("error: {e}");
    }
    eprintln!("{} error(s); nothing was changed", errors.0.len());
    ExitCode::FAILURE
}

/// Reads the policy file and its catalogue directory (`--catalogue`, or the directory the
/// policy names).
pub fn load(file: &Path, catalogue: &CatalogueArg) -> Result<Policy, LoadError> {
    fedq_policy::load::load_policy(file, catalogue.catalogue.as_deref())
}

/// Prints located errors and fails, or passes any other load error up.
fn loaded(result: Result<Policy, LoadError>) -> Result<Result<Policy, ExitCode>, BoxError> {
    match result {
        Ok(p) => Ok(Ok(p)),
        Err(LoadError::Invalid(errors)) => Ok(Err(report_errors(&errors))),
        Err(other) => Err(other.into()),
    }
}
