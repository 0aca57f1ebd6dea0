//! `fedq policy bundle` and `fedq policy sign`: the officers' side of a policy change
//! ([`fedq_bundle::officer`]). (`fedq policy publish` and `status` talk to the
//! coordinator: [`super::coordinator`].)

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use fedq_bundle::officer::{self, Proposal, SignRequest, SignReview};
use fedq_bundle::DEFAULT_THRESHOLD;

/// Arguments of `fedq policy bundle`.
#[derive(Debug, clap::Args)]
pub struct BundleArgs {
    /// The policy file to put in the bundle (checked against its catalogues first).
    pub policy: PathBuf,
    /// The federation's name (as in `fedq certs init`).
    #[arg(long)]
    pub federation: String,
    /// The bundle version: higher than the version in force.
    #[arg(long = "bundle-version", value_name = "N")]
    pub version: u64,
    /// M: distinct officers the *next* bundle will need once this one is in force.
    #[arg(long, default_value_t = DEFAULT_THRESHOLD)]
    pub threshold: u32,
    /// The catalogue directory (default: the one the policy names).
    #[arg(long, value_name = "DIR")]
    pub catalogue: Option<PathBuf>,
    /// An officer certificate whose key may approve the next bundle (repeatable). With
    /// none, the roster in force stays.
    #[arg(long = "officer", value_name = "CERT")]
    pub officers: Vec<PathBuf>,
    /// Where to write the bundle.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// Arguments of `fedq policy sign`.
#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// The bundle to sign; the signature is added to this file.
    pub bundle: PathBuf,
    /// Your officer certificate.
    #[arg(long)]
    pub cert: PathBuf,
    /// Its private key.
    #[arg(long)]
    pub key: PathBuf,
    /// The version in force, to show what changes: its bundle file, or for the first bundle
    /// the set-up policy file.
    #[arg(long, value_name = "FILE")]
    pub in_force: PathBuf,
    /// The catalogue directory (default: the one the bundle's policy names, relative to the
    /// bundle file).
    #[arg(long, value_name = "DIR")]
    pub catalogue: Option<PathBuf>,
    /// The date to evaluate the diff at (default: today in Changsha).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub at: Option<String>,
    /// Sign without asking (for scripts; the diff is still printed).
    #[arg(long)]
    pub yes: bool,
}

/// `fedq policy bundle`.
pub fn bundle(args: BundleArgs) -> anyhow::Result<()> {
    let proposed = officer::propose(&Proposal {
        policy: args.policy,
        federation: args.federation,
        version: args.version,
        threshold: args.threshold,
        catalogue: args.catalogue,
        officers: args.officers,
        out: args.out.clone(),
    })
    .map_err(super::message)?;
    let bundle = &proposed.bundle;
    println!(
        "wrote {}: bundle version {} (policy {}), threshold {}, {} catalogues, content sha256 {}",
        args.out.display(),
        bundle.version,
        proposed.policy_version,
        bundle.threshold,
        bundle.catalogue.len(),
        bundle.content_sha256.get(..16).unwrap_or_default()
    );
    println!(
        "officers who may approve the next bundle: {}",
        officer::roster_text(&bundle.officer)
    );
    println!(
        "next: two officers run `fedq policy sign {}`",
        args.out.display()
    );
    Ok(())
}

/// `fedq policy sign`: shows the bundle and what it changes against the version in force,
/// asks, and adds the officer's signature to the file.
pub fn sign(args: SignArgs) -> anyhow::Result<()> {
    let review = SignReview::prepare(&SignRequest {
        bundle: args.bundle,
        cert: args.cert,
        key: args.key,
        in_force: args.in_force,
        catalogue: args.catalogue,
        at: args.at,
    })
    .map_err(super::message)?;
    print!("{}", review.render());
    if !args.yes {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            anyhow::bail!("not signed: no terminal to confirm on; review the diff above and pass --yes to sign");
        }
        print!(
            "\nsign bundle version {} as {}? [y/N] ",
            review.version(),
            review.signer()
        );
        std::io::stdout().flush().map_err(super::message)?;
        let mut answer = String::new();
        stdin
            .lock()
            .read_line(&mut answer)
            .map_err(super::message)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            anyhow::bail!("not signed: you did not confirm");
        }
    }
    let signed = review.sign().map_err(super::message)?;
    println!(
        "signed: {} now carries {} signature(s); publish with `fedq policy publish {}`",
        signed.path.display(),
        signed.signatures,
        signed.path.display()
    );
    Ok(())
}
