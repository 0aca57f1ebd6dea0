//! `fedq console`: the security officers' console ([`fedq_console`]): its arguments.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Arguments of `fedq console`.
#[derive(Debug, clap::Args)]
pub struct ConsoleCli {
    /// Your officer certificate (`fedq certs issue --role officer`).
    #[arg(long)]
    pub cert: PathBuf,
    /// Its private key: read by the console when it signs, never sent to the browser.
    #[arg(long)]
    pub key: PathBuf,
    /// The working copy of the policy you edit (its catalogue directory is the one it
    /// names, or `--catalogue`).
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,
    /// The catalogue directory (default: the one the policy names).
    #[arg(long, value_name = "DIR")]
    pub catalogue: Option<PathBuf>,
    /// The version in force when no bundle is: the set-up policy file (or a bundle file).
    /// Once the coordinator reports a bundle in force, the bundle of that version in
    /// `--bundles` is the version in force.
    #[arg(long, value_name = "FILE")]
    pub in_force: PathBuf,
    /// The directory of bundles waiting for signatures (shared by the officers who sign).
    #[arg(long, value_name = "DIR")]
    pub bundles: PathBuf,
    /// The coordinator's URL, to publish and read the policy status.
    #[arg(long, value_name = "URL", requires = "ca")]
    pub coordinator: Option<String>,
    /// The federation CA certificate (with `--coordinator`).
    #[arg(long, value_name = "FILE", requires = "coordinator")]
    pub ca: Option<PathBuf>,
    /// The coordinator's config, where this officer may read its audit log and complaint
    /// queue (on the coordinator's host).
    #[arg(long, value_name = "FILE")]
    pub coordinator_config: Option<PathBuf>,
    /// A node's config, where this officer may read its audit log and filings and record
    /// decisions; also a witness of the other logs. Repeatable.
    #[arg(long = "node-config", value_name = "FILE")]
    pub node_configs: Vec<PathBuf>,
    /// Where to serve: loopback only (port 0 picks one).
    #[arg(long, default_value = "127.0.0.1:8470")]
    pub listen: SocketAddr,
}

impl From<ConsoleCli> for fedq_console::Settings {
    fn from(a: ConsoleCli) -> Self {
        fedq_console::Settings {
            cert: a.cert,
            key: a.key,
            policy: a.policy,
            catalogue: a.catalogue,
            in_force: a.in_force,
            bundles: a.bundles,
            coordinator: a.coordinator,
            ca: a.ca,
            coordinator_config: a.coordinator_config,
            node_configs: a.node_configs,
            listen: a.listen,
        }
    }
}
