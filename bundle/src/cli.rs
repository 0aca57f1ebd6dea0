//! `fedq policy bundle` and `fedq policy sign`: the officers' side of a policy change.
//! (`fedq policy publish` and `status` talk to the coordinator; they live with its client.)

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use fedq_certs::signing::OfficerKey;
use rustls_pki_types::pem::PemObject;

use crate::{catalogue_digests, Bundle, DEFAULT_THRESHOLD};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

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

fn read(path: &Path) -> Result<String, BoxError> {
    std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()).into())
}

fn roster_text(roster: &[crate::RosterEntry]) -> String {
    if roster.is_empty() {
        "unchanged (the roster in force)".into()
    } else {
        roster
            .iter()
            .map(|o| format!("{} (key {})", o.name, o.key_sha256.get(..12).unwrap_or("")))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `fedq policy bundle`.
pub fn bundle(args: &BundleArgs) -> Result<(), BoxError> {
    let text = read(&args.policy)?;
    let dir = match &args.catalogue {
        Some(d) => d.clone(),
        None => fedq_policy::load::catalogue_dir_of(&args.policy, &text)?,
    };
    let policy = fedq_policy::load::parse_policy(&text, &args.policy.display().to_string(), &dir)?;
    let digests = catalogue_digests(&dir)?;
    let mut roster = Vec::with_capacity(args.officers.len());
    for path in &args.officers {
        roster.push(crate::RosterEntry::from_certificate_file(path)?);
    }
    let bundle = Bundle::create(
        &args.federation,
        args.version,
        args.threshold,
        text,
        digests,
        roster,
    )?;
    if args.out.exists() {
        return Err(format!(
            "`{}` already exists; choose another --out or remove it",
            args.out.display()
        )
        .into());
    }
    fedq_certs::fsutil::write_atomic(&args.out, bundle.to_toml()?.as_bytes(), 0o644)
        .map_err(|e| format!("cannot write `{}`: {e}", args.out.display()))?;
    println!(
        "wrote {}: bundle version {} (policy {}), threshold {}, {} catalogues, content sha256 {}",
        args.out.display(),
        bundle.version,
        policy.version,
        bundle.threshold,
        bundle.catalogue.len(),
        &bundle.content_sha256[..16]
    );
    println!(
        "officers who may approve the next bundle: {}",
        roster_text(&bundle.officer)
    );
    println!(
        "next: two officers run `fedq policy sign {}`",
        args.out.display()
    );
    Ok(())
}

/// The version in force as the signing officer sees it.
struct InForceFile {
    roster: Option<Vec<crate::RosterEntry>>,
    engine: fedq_policy::Engine,
    what: String,
    content_sha256: String,
    version: u64,
    threshold: Option<u32>,
}

/// Reads the version in force: a bundle file, or the set-up policy (version 0).
fn in_force_engine(path: &Path, catalogue_dir: &Path) -> Result<InForceFile, BoxError> {
    let text = read(path)?;
    match Bundle::parse(&text) {
        Ok(b) => {
            b.check_integrity()?;
            let engine = fedq_policy::load::parse_policy(
                &b.policy,
                &path.display().to_string(),
                catalogue_dir,
            )?
            .compile();
            Ok(InForceFile {
                roster: Some(b.officer.clone()),
                engine,
                what: format!("bundle version {}", b.version),
                content_sha256: b.content_sha256.clone(),
                version: b.version,
                threshold: Some(b.threshold),
            })
        }
        Err(_) => {
            let engine =
                fedq_policy::load::parse_policy(&text, &path.display().to_string(), catalogue_dir)?
                    .compile();
            Ok(InForceFile {
                roster: None,
                content_sha256: engine.policy().content_hash.clone(),
                engine,
                what: "the set-up policy (version 0)".into(),
                version: 0,
                threshold: None,
            })
        }
    }
}

/// `fedq policy sign`: shows the bundle and what it changes against the version in force,
/// asks, and adds the officer's signature to the file.
pub fn sign(args: &SignArgs) -> Result<(), BoxError> {
    let mut bundle = Bundle::parse(&read(&args.bundle)?)?;
    bundle.check_integrity()?;
    let key = OfficerKey::load(&args.cert, &args.key)?;
    let me = key.identity().to_uri();
    if bundle.signature.iter().any(|s| s.officer == me) {
        return Err(crate::Refusal::AlreadySigned(me).into());
    }
    let dir = match &args.catalogue {
        Some(d) => d.clone(),
        None => fedq_policy::load::catalogue_dir_of(&args.bundle, &bundle.policy)?,
    };
    if catalogue_digests(&dir)? != bundle.catalogue {
        return Err(format!(
            "the catalogues in `{}` are not the ones this bundle was checked against; review it against those (--catalogue DIR)",
            dir.display()
        )
        .into());
    }
    let proposed =
        fedq_policy::load::parse_policy(&bundle.policy, &args.bundle.display().to_string(), &dir)?
            .compile();
    let in_force = in_force_engine(&args.in_force, &dir)?;
    if bundle.version <= in_force.version {
        return Err(format!(
            "not signed: bundle version {} is not higher than {} in force; no process would accept it",
            bundle.version, in_force.what
        )
        .into());
    }
    let today = fedq_policy::cli::date_arg(args.at.as_deref())?;

    println!(
        "bundle {} — federation {}, version {}, content sha256 {}",
        args.bundle.display(),
        bundle.federation,
        bundle.version,
        bundle.content_sha256
    );
    match in_force.threshold {
        Some(m) if m != bundle.threshold => println!(
            "signature threshold changes: {m} → {} distinct officers",
            bundle.threshold
        ),
        _ => println!(
            "signature threshold after this bundle: {}",
            bundle.threshold
        ),
    }
    let before = in_force.roster.as_deref().unwrap_or_default();
    if !bundle.officer.is_empty() && before != bundle.officer.as_slice() {
        let was = match &in_force.roster {
            None => "the set-up roster (`policy_officers` in each config)".to_owned(),
            Some(_) => roster_text(before),
        };
        println!(
            "officer roster changes: {was} → {}",
            roster_text(&bundle.officer)
        );
    } else {
        println!(
            "officer roster after this bundle: {}",
            roster_text(&bundle.officer)
        );
    }
    // Who signed, as the certificates say (the `officer` field is only a label).
    let signed: Vec<String> = bundle
        .signature
        .iter()
        .map(|s| {
            rustls_pki_types::CertificateDer::from_pem_slice(s.certificate.as_bytes())
                .ok()
                .and_then(|der| fedq_certs::Identity::from_certificate_der(&der).ok())
                .map_or_else(|| "(an unreadable certificate)".to_owned(), |i| i.to_uri())
        })
        .collect();
    println!(
        "already signed by: {}",
        if signed.is_empty() {
            "nobody yet".into()
        } else {
            signed.join(", ")
        }
    );
    println!(
        "\nwhat changes against {} (content sha256 {}; `fedq policy status` shows the hash in force — they must match):",
        in_force.what, in_force.content_sha256
    );
    print!(
        "{}",
        fedq_policy::cli::render_diff(&in_force.engine, &proposed, today)
    );

    if !args.yes {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return Err("not signed: no terminal to confirm on; review the diff above and pass --yes to sign".into());
        }
        print!(
            "\nsign bundle version {} as {}? [y/N] ",
            bundle.version,
            key.identity().to_uri()
        );
        std::io::stdout().flush()?;
        let mut answer = String::new();
        stdin.lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Err("not signed: you did not confirm".into());
        }
    }
    bundle.sign(&key)?;
    fedq_certs::fsutil::write_atomic(&args.bundle, bundle.to_toml()?.as_bytes(), 0o644)
        .map_err(|e| format!("cannot write `{}`: {e}", args.bundle.display()))?;
    println!(
        "signed: {} now carries {} signature(s); publish with `fedq policy publish {}`",
        args.bundle.display(),
        bundle.signature.len(),
        args.bundle.display()
    );
    Ok(())
}
