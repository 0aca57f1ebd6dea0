//! `fedq console` (`fedq-console`): the security officers' console, a web application on the officer's own
//! machine. It serves server-rendered pages on loopback only, holds the officer's
//! certificate and key paths (the key is read from disk when a signature is made and
//! never reaches the browser), and does every change through the code the command line
//! uses: [`fedq_policy::load`] to check, [`fedq_policy::analysis`] and
//! [`fedq_policy::report`] to diff and explain, [`fedq_bundle::officer`] to bundle and
//! sign, [`fedq_coordinator::client`] to publish and read status, [`fedq_audit`] to list
//! and verify logs, [`fedq_coordinator::complaints`] and [`fedq_node::remedies`] for the
//! citizens' filings.
//!
//! - [`i18n`]: the console's words in Chinese and English.
//! - [`pages`]: what each page shows, built from files and answers (no HTTP here).
//! - [`web`]: the HTTP side — the session, the routes, the templates.

#![warn(missing_docs, unreachable_pub)]

pub mod i18n;
pub mod pages;
pub mod web;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use fedq_certs::signing::OfficerKey;

/// What `fedq console` is started with (the binary's arguments, parsed).
#[derive(Debug, Clone)]
pub struct Settings {
    /// The officer certificate.
    pub cert: PathBuf,
    /// Its private key: read when the console signs, never sent to the browser.
    pub key: PathBuf,
    /// The working copy of the policy the officer edits.
    pub policy: PathBuf,
    /// The catalogue directory (default: the one the policy names).
    pub catalogue: Option<PathBuf>,
    /// The version in force when no bundle is (the set-up policy, or a bundle file).
    pub in_force: PathBuf,
    /// The directory of bundles waiting for signatures.
    pub bundles: PathBuf,
    /// The coordinator's URL, to publish and read the policy status.
    pub coordinator: Option<String>,
    /// The federation CA certificate (with `coordinator`).
    pub ca: Option<PathBuf>,
    /// The coordinator's config (its audit log and complaint queue).
    pub coordinator_config: Option<PathBuf>,
    /// Node configs (their audit logs and filings; witnesses of the other logs).
    pub node_configs: Vec<PathBuf>,
    /// Where to serve (loopback only).
    pub listen: SocketAddr,
}

/// Why the console did not start or stopped.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConsoleError(pub String);

fn fail(message: impl Into<String>) -> ConsoleError {
    ConsoleError(message.into())
}

/// What the console works with, checked once at start.
#[derive(Debug, Clone)]
pub struct Console {
    /// The officer, `fedq/<federation>/officer/<name>`.
    pub officer: String,
    /// The officer's name.
    pub officer_name: String,
    /// The federation.
    pub federation: String,
    /// The certificate file.
    pub cert: PathBuf,
    /// The key file (read only when signing).
    pub key: PathBuf,
    /// The working copy.
    pub policy: PathBuf,
    /// The catalogue directory.
    pub catalogue: PathBuf,
    /// The set-up version in force.
    pub in_force: PathBuf,
    /// The pending bundles' directory.
    pub bundles: PathBuf,
    /// The coordinator's URL and CA.
    pub coordinator: Option<(String, PathBuf)>,
    /// The coordinator's config.
    pub coordinator_config: Option<PathBuf>,
    /// Node name → its config.
    pub nodes: Vec<(String, PathBuf)>,
}

impl Console {
    /// Checks the arguments: a loopback address, an officer certificate with its key, a
    /// policy that can be read, a bundles directory, readable configs.
    pub fn from_settings(args: &Settings) -> Result<Console, ConsoleError> {
        if !args.listen.ip().is_loopback() {
            return Err(fail(format!(
                "`--listen {}` is not a loopback address; the console signs with your key and serves only this machine (use 127.0.0.1)",
                args.listen
            )));
        }
        let key = OfficerKey::load(&args.cert, &args.key).map_err(|e| fail(e.to_string()))?;
        let identity = key.identity().clone();
        drop(key);
        let text = std::fs::read_to_string(&args.policy).map_err(|e| {
            fail(format!(
                "cannot read the policy `{}`: {e}; pass the working copy you edit",
                args.policy.display()
            ))
        })?;
        let catalogue = match &args.catalogue {
            Some(d) => d.clone(),
            None => fedq_policy::load::catalogue_dir_of(&args.policy, &text)
                .map_err(|e| fail(e.to_string()))?,
        };
        if !catalogue.is_dir() {
            return Err(fail(format!(
                "the catalogue directory `{}` does not exist; pass `--catalogue DIR`",
                catalogue.display()
            )));
        }
        if !args.in_force.is_file() {
            return Err(fail(format!(
                "cannot read `--in-force {}`; pass the set-up policy or the bundle in force",
                args.in_force.display()
            )));
        }
        std::fs::create_dir_all(&args.bundles).map_err(|e| {
            fail(format!(
                "cannot use the bundles directory `{}`: {e}",
                args.bundles.display()
            ))
        })?;
        let coordinator = match (&args.coordinator, &args.ca) {
            (Some(url), Some(ca)) => Some((url.clone(), ca.clone())),
            (None, None) => None,
            _ => return Err(fail("`--coordinator` and `--ca` go together")),
        };
        if let Some(c) = &args.coordinator_config {
            fedq_coordinator::config::CoordinatorConfig::load(c)
                .map_err(|e| fail(e.to_string()))?;
        }
        let mut nodes = Vec::new();
        for path in &args.node_configs {
            let config =
                fedq_node::config::NodeConfig::load(path).map_err(|e| fail(e.to_string()))?;
            nodes.push((config.name.clone(), path.clone()));
        }
        Ok(Console {
            officer: identity.to_uri(),
            officer_name: identity.name.clone(),
            federation: identity.federation.clone(),
            cert: args.cert.clone(),
            key: args.key.clone(),
            policy: args.policy.clone(),
            catalogue,
            in_force: args.in_force.clone(),
            bundles: args.bundles.clone(),
            coordinator,
            coordinator_config: args.coordinator_config.clone(),
            nodes,
        })
    }

    /// A node's config by name, if this console was given it.
    pub fn node_config(&self, name: &str) -> Option<&Path> {
        self.nodes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p.as_path())
    }

    /// The API arguments to reach the coordinator as this officer.
    pub fn api(&self) -> Option<fedq_coordinator::client::ApiArgs> {
        self.coordinator
            .as_ref()
            .map(|(url, ca)| fedq_coordinator::client::ApiArgs {
                coordinator: url.clone(),
                cert: self.cert.clone(),
                key: self.key.clone(),
                ca: ca.clone(),
                crl: None,
            })
    }
}

/// `fedq console`: checks the settings, then serves until `shutdown`.
pub async fn run(
    settings: Settings,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ConsoleError> {
    let console = Console::from_settings(&settings)?;
    web::serve(console, settings.listen, shutdown).await
}
