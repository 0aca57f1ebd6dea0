//! Starting a coordinator from its config in the caller's runtime: the metrics recorder
//! first, then the [`crate::service::Coordinator`], then its HTTPS API bound
//! ([`crate::https::Api`]), ready to serve until the caller's shutdown signal.

use std::sync::Arc;

use fedq_wire::transport::Limits;

use crate::config::CoordinatorConfig;

/// Why a coordinator did not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Start-up.
    #[error(transparent)]
    Start(#[from] crate::service::StartError),
    /// HTTPS.
    #[error(transparent)]
    Https(#[from] crate::https::HttpsError),
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
) -> Result<crate::https::Api, ServeError> {
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
