//! `fedq coordinator …`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use fedq_wire::transport::Limits;

use crate::config::CoordinatorConfig;

/// The `fedq coordinator` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum CoordinatorCommand {
    /// Serve the requester API until Ctrl-C (then drain in-flight queries).
    Serve {
        /// The coordinator's config file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Print the requester API's OpenAPI 3.1 document (what `docs/api/openapi.json` holds
    /// and the server serves at `/v1/openapi.json`).
    Openapi,
}

/// Errors of `fedq coordinator`.
#[derive(Debug, thiserror::Error)]
pub enum CoordinatorCliError {
    /// Config.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Start-up.
    #[error(transparent)]
    Start(#[from] crate::service::StartError),
    /// HTTPS.
    #[error(transparent)]
    Https(#[from] crate::https::HttpsError),
    /// Runtime.
    #[error("{0}")]
    Runtime(String),
}

/// Installs the Prometheus recorder (once per process: metrics are global) and returns its
/// handle; later calls return the same handle ([`fedq_ops::recorder`]).
pub fn install_metrics() -> Option<metrics_exporter_prometheus::PrometheusHandle> {
    fedq_ops::recorder()
}

/// Starts a coordinator from a config inside the current runtime; returns the bound API.
pub async fn start(
    config: CoordinatorConfig,
    limits: Limits,
) -> Result<crate::https::Api, CoordinatorCliError> {
    // The recorder first: gauges set while starting (each node up, the bundle version)
    // would otherwise be lost.
    let metrics = install_metrics();
    if metrics.is_some() {
        let nodes: Vec<String> = config.nodes.iter().map(|n| n.name.clone()).collect();
        crate::ops::describe_coordinator(&nodes);
    }
    let coordinator = Arc::new(crate::service::Coordinator::start(config, limits)?);
    Ok(crate::https::Api::bind(coordinator, metrics).await?)
}

/// Runs one `fedq coordinator` subcommand.
pub fn run(
    cmd: CoordinatorCommand,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), CoordinatorCliError> {
    match cmd {
        CoordinatorCommand::Openapi => {
            print!("{}", crate::openapi::document_text());
            Ok(())
        }
        CoordinatorCommand::Serve { config } => {
            let config = CoordinatorConfig::load(&config)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| CoordinatorCliError::Runtime(e.to_string()))?;
            runtime.block_on(async {
                let api = start(config, Limits::default()).await?;
                let addr = api.local_addr().map_err(|e| CoordinatorCliError::Runtime(e.to_string()))?;
                match api.ops_addr() {
                    Some(ops) => eprintln!("coordinator serving https://{addr} (health and metrics on http://{ops}); Ctrl-C to stop"),
                    None => eprintln!("coordinator serving https://{addr}; Ctrl-C to stop"),
                }
                api.serve(Duration::from_secs(2), shutdown).await;
                eprintln!("coordinator stopped");
                Ok(())
            })
        }
    }
}
