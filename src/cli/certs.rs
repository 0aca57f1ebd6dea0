//! `fedq certs …`: the federation's PKI ([`fedq_certs::pki`]) on the command line.

use std::path::PathBuf;

use fedq_certs::identity::Role;
use fedq_certs::officers::{officer_fingerprint, roster};
use fedq_certs::pki::{self, CertificateAuthority, CertificateStatus, IssueOptions, PkiError};

/// The `fedq certs` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum CertsCommand {
    /// Create the federation CA (`DIR/ca.crt`, `DIR/ca.key`), an empty CRL and the index.
    Init {
        /// Directory that holds the federation's certificates.
        #[arg(long)]
        dir: PathBuf,
        /// The federation's name, e.g. `changsha`.
        #[arg(long)]
        federation: String,
        /// Replace an existing CA (everything it issued stops being trusted).
        #[arg(long)]
        force: bool,
    },
    /// Issue a certificate and key (`DIR/NAME.crt`, `DIR/NAME.key`) for one holder.
    Issue {
        /// Directory that holds the federation CA.
        #[arg(long)]
        dir: PathBuf,
        /// coordinator, node, requester, officer or consent-authority.
        #[arg(long)]
        role: String,
        /// The holder's name: a department for nodes (`court`), agency.office for
        /// requesters (`market-regulation.licensing`), a person's handle for officers,
        /// the issuing service for the consent authority (`service-window`).
        #[arg(long)]
        name: String,
        /// Lifetime in days.
        #[arg(long, default_value_t = pki::DEFAULT_DAYS)]
        days: u32,
        /// Extra DNS name or IP address a coordinator or node is reached under (repeatable).
        #[arg(long = "host")]
        hosts: Vec<String>,
        /// Replace an existing certificate and key of the same name.
        #[arg(long)]
        force: bool,
    },
    /// Put a holder's current certificate on the CRL (`DIR/crl.pem`).
    Revoke {
        /// Directory that holds the federation CA.
        #[arg(long)]
        dir: PathBuf,
        /// The holder's name.
        #[arg(long)]
        name: String,
    },
    /// Re-sign the CRL with a fresh validity period.
    Crl {
        /// Directory that holds the federation CA.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Show every issued certificate with role, expiry and revocation.
    List {
        /// Directory that holds the federation CA.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Print the `policy_officers` line for node and coordinator configs: the key
    /// fingerprints of the officers whose certificates are valid now (or of those named).
    Officers {
        /// Directory that holds the federation CA.
        #[arg(long)]
        dir: PathBuf,
        /// Only these officers (repeatable; default: every valid officer certificate).
        #[arg(long = "name")]
        names: Vec<String>,
    },
}

/// Runs one `fedq certs` subcommand.
pub fn run(cmd: CertsCommand) -> Result<(), PkiError> {
    match cmd {
        CertsCommand::Init {
            dir,
            federation,
            force,
        } => {
            CertificateAuthority::init(&dir, &federation, force)?;
            println!(
                "created federation `{federation}`: {} and {} (key 0600), empty CRL {}",
                dir.join("ca.crt").display(),
                dir.join("ca.key").display(),
                pki::crl_path(&dir).display()
            );
        }
        CertsCommand::Issue {
            dir,
            role,
            name,
            days,
            hosts,
            force,
        } => {
            let role: Role = role.parse()?;
            let ca = CertificateAuthority::open(&dir)?;
            let issued = ca.issue(
                role,
                &name,
                &IssueOptions {
                    days,
                    hosts,
                    force,
                    ..IssueOptions::default()
                },
            )?;
            println!(
                "issued {role} certificate for `{name}` (serial {}, valid until {}): {} and {} (key 0600)",
                issued.serial,
                issued.not_after,
                pki::cert_path(&dir, &name).display(),
                pki::key_path(&dir, &name).display()
            );
            if role == Role::Officer {
                println!(
                    "officer key sha256 {}: list it in `policy_officers` of every node and coordinator config for this officer's approvals to count before a bundle's roster does (`fedq certs officers --dir {}`)",
                    officer_fingerprint(&dir, &name)?,
                    dir.display()
                );
            }
        }
        CertsCommand::Revoke { dir, name } => {
            let ca = CertificateAuthority::open(&dir)?;
            let revoked = ca.revoke(&name)?;
            println!(
                "revoked the {} certificate of `{name}` (serial {}); {} updated — running processes pick it up without a restart",
                revoked.role,
                revoked.serial,
                pki::crl_path(&dir).display()
            );
        }
        CertsCommand::Crl { dir } => {
            CertificateAuthority::open(&dir)?.refresh_crl()?;
            println!("re-signed {}", pki::crl_path(&dir).display());
        }
        CertsCommand::Officers { dir, names } => {
            let lines: Vec<String> = roster(&dir, &names)?
                .into_iter()
                .map(|o| format!("  \"{}\", # {}", o.key_sha256, o.name))
                .collect();
            println!("policy_officers = [\n{}\n]", lines.join("\n"));
        }
        CertsCommand::List { dir } => {
            let rows = pki::list(&dir)?;
            println!(
                "{:<36} {:<17} {:<34} {:<22} STATUS",
                "NAME", "ROLE", "SERIAL", "NOT AFTER"
            );
            for (c, status) in rows {
                let status = match status {
                    CertificateStatus::Valid => "valid".to_owned(),
                    CertificateStatus::Expired => "expired".to_owned(),
                    CertificateStatus::NotYetValid => "not yet valid".to_owned(),
                    CertificateStatus::Revoked(at) => format!("revoked {at}"),
                    CertificateStatus::Superseded => "superseded".to_owned(),
                };
                println!(
                    "{:<36} {:<17} {:<34} {:<22} {status}",
                    c.name,
                    c.role.as_str(),
                    c.serial,
                    c.not_after
                );
            }
        }
    }
    Ok(())
}
