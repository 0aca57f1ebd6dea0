//! Where everything lives in a sandbox federation's directory, laid out the way an
//! operator would lay out a real one.

use std::path::PathBuf;

use crate::reference::GATEWAY_APP;

/// Where everything lives in a federation directory.
#[derive(Clone, Debug)]
pub struct Layout {
    /// The root.
    pub root: PathBuf,
}

impl Layout {
    /// `pki/`: the CA, every certificate and key, the CRL.
    pub fn pki(&self) -> PathBuf {
        self.root.join("pki")
    }
    /// `policy/policy.toml` and `policy/catalogue/*.toml`.
    pub fn policy(&self) -> PathBuf {
        self.root.join("policy/policy.toml")
    }
    /// `data/<department>/<dataset>.csv`: the synthetic exports, and `data/scenario.json`.
    pub fn data(&self) -> PathBuf {
        self.root.join("data")
    }
    /// `nodes/<department>.toml`.
    pub fn node_config(&self, dept: &str) -> PathBuf {
        self.root.join(format!("nodes/{dept}.toml"))
    }
    /// `coordinator/coordinator.toml`.
    pub fn coordinator_config(&self) -> PathBuf {
        self.root.join("coordinator/coordinator.toml")
    }
    /// `gateway/gateway.toml`: the licensing office's gateway ([`GATEWAY_REQUESTER`]).
    pub fn gateway_config(&self) -> PathBuf {
        self.root.join("gateway/gateway.toml")
    }
    /// `gateway/gateway-ca.crt`: what the office's apps trust to reach its gateway.
    pub fn gateway_ca(&self) -> PathBuf {
        self.root.join("gateway/gateway-ca.crt")
    }
    /// `gateway/APP.token`: the token of the office's app [`GATEWAY_APP`] (0600).
    pub fn gateway_token(&self) -> PathBuf {
        self.root.join(format!("gateway/{GATEWAY_APP}.token"))
    }
    /// `stores/<department>.db`, `audit/*.db`, `audit/*.key`.
    pub fn store(&self, dept: &str) -> PathBuf {
        self.root.join(format!("stores/{dept}.db"))
    }
}
