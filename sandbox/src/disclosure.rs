//! Public disclosure in the sandbox, as the departments and an officer do it: each
//! department that marks datasets for the list makes and signs its part beside its node
//! (as `fedq disclose part`), and the parts are merged into one dated publication (as
//! `fedq disclose publish`).

use std::path::PathBuf;

use fedq_coordinator::disclosure::Published;
use fedq_node::config::NodeConfig;
use fedq_node::disclose::DiscloseError;
use fedq_policy::catalogue::PublicList;

use crate::{Federation, SandboxError};

/// Where the sandbox's publications of `list` at `date` are written.
pub fn directory(fed: &Federation, list: PublicList, date: time::Date) -> PathBuf {
    fed.layout
        .root
        .join("disclosure")
        .join(format!("{}-{date}", list.name()))
}

/// Every department's signed part of `list` at `date` (those that publish nothing in it
/// skipped), then the publication merged from them in [`directory`].
pub async fn publish(
    fed: &Federation,
    list: PublicList,
    date: time::Date,
) -> Result<Published, SandboxError> {
    let out = directory(fed, list, date);
    let parts_dir = out.join("parts");
    std::fs::create_dir_all(&parts_dir)
        .map_err(|e| SandboxError::Setup(format!("{}: {e}", parts_dir.display())))?;
    let mut parts = Vec::new();
    for node in fed.nodes.keys() {
        let config = NodeConfig::load(&fed.layout.node_config(node))
            .map_err(|e| SandboxError::Setup(format!("node config: {e}")))?;
        let part = match fedq_node::disclose::part(&config, list, date).await {
            Ok(p) => p,
            Err(DiscloseError::NothingMarked { .. }) => continue,
            Err(e) => return Err(SandboxError::Setup(format!("the part of `{node}`: {e}"))),
        };
        let path = parts_dir.join(format!("{node}.part.json"));
        let bytes = serde_json::to_vec_pretty(&part)
            .map_err(|e| SandboxError::Setup(format!("a part: {e}")))?;
        std::fs::write(&path, bytes)
            .map_err(|e| SandboxError::Setup(format!("{}: {e}", path.display())))?;
        parts.push(path);
    }
    fedq_coordinator::disclosure::publish(&fed.layout.pki(), list, date, &parts, &out)
        .map_err(|e| SandboxError::Setup(format!("the publication: {e}")))
}
