//! A built federation running in this process's runtime: every node, the coordinator and
//! the licensing office's gateway, each stopped by its own signal and drained.

use std::collections::BTreeMap;
use std::time::Duration;

use fedq_coordinator::config::CoordinatorConfig;
use fedq_node::config::NodeConfig;
use fedq_node::service::Node;
use fedq_wire::transport::{FrameTap, Limits};

use crate::build::{setup, Federation, SandboxError};

/// The federation running in this process.
pub struct Running {
    nodes: BTreeMap<
        String,
        (
            tokio::sync::oneshot::Sender<()>,
            tokio::task::JoinHandle<()>,
        ),
    >,
    coordinator: Option<(
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    )>,
    gateway: Option<(
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    )>,
    refusals: fedq_certs::tls::RefusalLog,
}

/// How long stopping waits for a node or the coordinator to finish draining (their grace
/// periods are 10 s) before it gives up on the task.
const STOP_WAIT: Duration = Duration::from_secs(30);

/// Waits for a stopped task, at most [`STOP_WAIT`]; one that overruns is aborted.
async fn join_within(what: &str, mut task: tokio::task::JoinHandle<()>) {
    if tokio::time::timeout(STOP_WAIT, &mut task).await.is_err() {
        tracing::error!(what, "did not stop within its wait; aborted");
        task.abort();
    }
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("nodes", &self.nodes.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Starts one node of the federation in this runtime.
pub async fn start_node(
    fed: &Federation,
    name: &str,
    tap: Option<FrameTap>,
) -> Result<
    (
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    ),
    SandboxError,
> {
    let config = NodeConfig::load(&fed.layout.node_config(name)).map_err(setup("node config"))?;
    let node = Node::start(config, Limits::default())
        .await
        .map_err(setup("node"))?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(node.serve(tap, async {
        let _ = stopped.await;
    }));
    Ok((stop, task))
}

impl Running {
    /// Starts every node and the coordinator. `tap` sees every answer frame any node sends.
    pub async fn start(fed: &Federation, tap: Option<FrameTap>) -> Result<Self, SandboxError> {
        let mut nodes = BTreeMap::new();
        for name in fed.nodes.keys() {
            nodes.insert(name.clone(), start_node(fed, name, tap.clone()).await?);
        }
        let config = CoordinatorConfig::load(&fed.layout.coordinator_config())
            .map_err(setup("coordinator config"))?;
        let api = fedq_coordinator::serve::start(config, Limits::default())
            .await
            .map_err(setup("coordinator"))?;
        let refusals = api.refusals();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(api.serve(Duration::from_secs(2), async {
            let _ = stopped.await;
        }));
        let gateway = fedq_coordinator::gateway::GatewayConfig::load(&fed.layout.gateway_config())
            .map_err(setup("gateway config"))?;
        let gateway = fedq_coordinator::gateway::BoundGateway::bind(gateway)
            .await
            .map_err(setup("gateway"))?;
        let (gateway_stop, gateway_stopped) = tokio::sync::oneshot::channel::<()>();
        let gateway_task = tokio::spawn(gateway.serve(async {
            let _ = gateway_stopped.await;
        }));
        Ok(Self {
            nodes,
            coordinator: Some((stop, task)),
            gateway: Some((gateway_stop, gateway_task)),
            refusals,
        })
    }

    /// The TLS refusals the coordinator's requester API recorded, with their reasons.
    pub fn coordinator_refusals(&self) -> fedq_certs::tls::RefusalLog {
        self.refusals.clone()
    }

    /// Stops one node (as if its machine went down).
    pub async fn stop_node(&mut self, name: &str) {
        if let Some((stop, task)) = self.nodes.remove(name) {
            let _ = stop.send(());
            join_within(name, task).await;
        }
    }

    /// Starts a stopped node again.
    pub async fn restart_node(
        &mut self,
        fed: &Federation,
        name: &str,
        tap: Option<FrameTap>,
    ) -> Result<(), SandboxError> {
        let started = start_node(fed, name, tap).await?;
        self.nodes.insert(name.to_owned(), started);
        Ok(())
    }

    /// Stops everything, draining in-flight queries.
    pub async fn stop(mut self) {
        if let Some((stop, task)) = self.gateway.take() {
            let _ = stop.send(());
            join_within("gateway", task).await;
        }
        if let Some((stop, task)) = self.coordinator.take() {
            let _ = stop.send(());
            join_within("coordinator", task).await;
        }
        for (name, (stop, task)) in std::mem::take(&mut self.nodes) {
            let _ = stop.send(());
            join_within(&name, task).await;
        }
    }
}
