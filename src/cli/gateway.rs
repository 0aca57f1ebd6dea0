//! `fedq gateway …`: a requesting agency's gateway ([`fedq_coordinator::gateway`]).

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use fedq_coordinator::gateway::{add_app, init, BoundGateway, GatewayConfig, GatewayError};

/// The `fedq gateway` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum GatewayCommand {
    /// Set a gateway up in DIR: its config for the agency's requester identity, and the
    /// TLS identity its apps connect to (`gateway-ca.crt` is what they trust).
    Init {
        /// The gateway's directory (created 0700).
        #[arg(long)]
        dir: PathBuf,
        /// The requester the gateway asks as (`agency.office`; its certificate and key).
        #[arg(long)]
        name: String,
        /// The coordinator, e.g. `https://127.0.0.1:8443`.
        #[arg(long)]
        coordinator: String,
        /// The requester certificate.
        #[arg(long)]
        cert: PathBuf,
        /// Its key.
        #[arg(long)]
        key: PathBuf,
        /// The federation CA certificate.
        #[arg(long)]
        ca: PathBuf,
        /// Where the apps' API listens.
        #[arg(long, default_value = "127.0.0.1:9443")]
        listen: SocketAddr,
        /// A DNS name or IP address the apps reach the gateway by (repeatable; default
        /// `localhost` and the listen address).
        #[arg(long = "host")]
        hosts: Vec<String>,
    },
    /// Issue a token for one app: printed once, only its SHA-256 kept in the config.
    AddApp {
        /// The gateway's config file.
        #[arg(long)]
        config: PathBuf,
        /// The app's name in the gateway's log.
        name: String,
    },
    /// Serve the apps until Ctrl-C.
    Serve {
        /// The gateway's config file.
        #[arg(long)]
        config: PathBuf,
    },
}

/// `fedq gateway init` and `add-app`: the set-up work, without a runtime.
pub fn set_up(cmd: GatewayCommand) -> Result<(), GatewayError> {
    match cmd {
        GatewayCommand::Init {
            dir,
            name,
            coordinator,
            cert,
            key,
            ca,
            listen,
            hosts,
        } => {
            let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
            let config = init(
                &dir,
                &name,
                listen,
                &coordinator,
                &abs(&cert),
                &abs(&key),
                &abs(&ca),
                &hosts,
            )?;
            println!(
                "gateway set up: {}; give your apps {} to trust, and each its token (`fedq gateway add-app --config {} NAME`)",
                config.display(),
                dir.join("gateway-ca.crt").display(),
                config.display()
            );
            Ok(())
        }
        GatewayCommand::AddApp { config, name } => {
            let token = add_app(&config, &name)?;
            eprintln!("token for app `{name}` (shown once; the gateway keeps only its SHA-256):");
            println!("{token}");
            Ok(())
        }
        GatewayCommand::Serve { .. } => Ok(()),
    }
}

/// `fedq gateway serve`: serves the apps until `shutdown`.
pub async fn serve(
    config: GatewayConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), GatewayError> {
    let bound = BoundGateway::bind(config).await?;
    if let Ok(addr) = bound.local_addr() {
        match bound.ops_addr() {
            Some(ops) => eprintln!("gateway serving its apps on https://{addr} (health and metrics on http://{ops}); Ctrl-C to stop"),
            None => eprintln!("gateway serving its apps on https://{addr}; Ctrl-C to stop"),
        }
    }
    bound.serve(shutdown).await;
    eprintln!("gateway stopped");
    Ok(())
}
