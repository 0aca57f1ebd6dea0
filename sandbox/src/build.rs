//! Building a federation in a directory: certificates, policy, synthetic data, imported
//! stores, configs — nothing runs yet.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Instant;

use fedq_certs::pki::{CertificateAuthority, IssueOptions};
use fedq_certs::Role;

use crate::layout::Layout;
use crate::ports::{free_tcp_port, free_udp_port};
use crate::reference::{
    CATALOGUES, CONSENT_AUTHORITY, GATEWAY_APP, GATEWAY_REQUESTER, OFFICERS, POLICY,
    RECORDS_OFFICER, REPAIR_REVIEWERS,
};

/// Errors of building or starting a sandbox federation.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// Setting up the federation failed: what was being done, and why it failed.
    #[error("{0}")]
    Setup(String),
    /// A query could not be sent or was not answered ([`crate::ask`]).
    #[error(transparent)]
    Query(#[from] fedq_coordinator::client::ClientError),
    /// A signing key could not be loaded or could not sign ([`crate::consent_token`]).
    #[error(transparent)]
    Key(#[from] fedq_certs::tls::TlsError),
    /// The consent authority's key would not issue the token.
    #[error(transparent)]
    Consent(#[from] fedq_certs::consent::ConsentError),
    /// A token's claims could not be encoded.
    #[error(transparent)]
    Encode(#[from] serde_json::Error),
}

pub(crate) fn setup<E: std::fmt::Display>(what: &str) -> impl Fn(E) -> SandboxError + '_ {
    move |e| SandboxError::Setup(format!("{what}: {e}"))
}

fn write(path: &Path, text: &str) -> Result<(), SandboxError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(setup("create directory"))?;
    }
    std::fs::write(path, text)
        .map_err(|e| SandboxError::Setup(format!("write `{}`: {e}", path.display())))
}

/// A built federation, not yet running.
#[derive(Debug)]
pub struct Federation {
    /// Where it lives.
    pub layout: Layout,
    /// The scenario persons of its synthetic data (who is listed, who is clean, …).
    pub scenario: fedq_synth::scenario::Scenario,
    /// Node name → UDP address.
    pub nodes: BTreeMap<String, SocketAddr>,
    /// The coordinator's HTTPS address.
    pub coordinator: SocketAddr,
    /// The licensing office's gateway's HTTPS address (its apps' API).
    pub gateway: SocketAddr,
    /// "Today" pinned for the whole federation.
    pub today: time::Date,
    /// The requester names issued.
    pub requesters: Vec<String>,
}

/// How to build a federation.
#[derive(Clone, Copy, Debug)]
pub struct BuildOptions {
    /// Synthetic persons.
    pub persons: u64,
    /// Data seed.
    pub seed: u64,
    /// Print what is done.
    pub verbose: bool,
    /// Prefer ports 8443/9443 for the coordinator and 10443 for the gateway (the
    /// addresses `fedq demo` prints), else any.
    pub well_known_ports: bool,
}

/// Builds the federation in `root`: certificates, policy, synthetic data, imported stores,
/// configs.
pub fn build(root: &Path, options: &BuildOptions) -> Result<Federation, SandboxError> {
    let BuildOptions {
        persons,
        seed,
        verbose,
        well_known_ports,
    } = *options;
    let say = |s: String| {
        if verbose {
            println!("{s}");
        }
    };
    let layout = Layout {
        root: root.to_owned(),
    };
    let today = fedq_policy::calendar::today_in_city();
    let started = Instant::now();

    // Policy and catalogues.
    for (dept, text) in CATALOGUES {
        write(&root.join(format!("policy/catalogue/{dept}.toml")), text)?;
    }
    write(&layout.policy(), POLICY)?;
    let engine = fedq_policy::load::load_engine(&layout.policy(), None)
        .map_err(setup("reference policy"))?;
    let requesters: Vec<String> = engine
        .policy()
        .requesters
        .iter()
        .map(|r| r.name.clone())
        .collect();
    let departments: Vec<&str> = CATALOGUES.iter().map(|(d, _)| *d).collect();

    // Certificates.
    let ca = CertificateAuthority::init(&layout.pki(), "changsha", true)
        .map_err(setup("certificates"))?;
    let issue = |role, name: &str, hosts: Vec<String>| {
        ca.issue(
            role,
            name,
            &IssueOptions {
                hosts,
                force: true,
                ..IssueOptions::default()
            },
        )
        .map_err(setup("certificates"))
    };
    issue(
        Role::Coordinator,
        "coordinator",
        vec!["localhost".into(), "127.0.0.1".into()],
    )?;
    for d in &departments {
        issue(Role::Node, d, vec!["localhost".into(), "127.0.0.1".into()])?;
    }
    for r in &requesters {
        issue(Role::Requester, r, Vec::new())?;
    }
    for officer in OFFICERS
        .into_iter()
        .chain(REPAIR_REVIEWERS)
        .chain([RECORDS_OFFICER])
    {
        issue(Role::Officer, officer, Vec::new())?;
    }
    issue(Role::ConsentAuthority, CONSENT_AUTHORITY, Vec::new())?;
    // The set-up roster, pinned in every config: the officers whose keys may approve the
    // first bundle (no process takes the CA's word for who is an officer).
    let mut roster = String::from("policy_officers = [\n");
    for officer in OFFICERS {
        let entry = fedq_bundle::RosterEntry::from_certificate_file(&fedq_certs::pki::cert_path(
            &layout.pki(),
            officer,
        ))
        .map_err(setup("officer roster"))?;
        roster.push_str(&format!("  \"{}\", # {officer}\n", entry.key_sha256));
    }
    roster.push_str("]\n");
    say(format!(
        "  certificates: federation CA `changsha`, 1 coordinator, {} nodes, {} requesters, {} officers  ({})",
        departments.len(),
        requesters.len(),
        OFFICERS.len(),
        layout.pki().display()
    ));

    // Synthetic data.
    let catalogues: Vec<fedq_policy::Catalogue> = CATALOGUES
        .iter()
        .map(|(d, text)| fedq_policy::Catalogue::parse(text, &format!("{d}.toml")))
        .collect::<Result<_, _>>()
        .map_err(setup("reference catalogues"))?;
    let opts = fedq_synth::GenOptions {
        persons,
        seed,
        format: fedq_synth::Format::Csv,
        today,
    };
    let summary = fedq_synth::generate(&opts, &catalogues, &layout.data())
        .map_err(setup("synthetic data"))?;
    let rows: u64 = summary.datasets.iter().map(|d| d.rows).sum();
    say(format!(
        "  synthetic data: {persons} persons, {rows} records in {} datasets  ({})",
        summary.datasets.len(),
        layout.data().display()
    ));

    // Node configs and stores.
    let mut nodes = BTreeMap::new();
    for d in &departments {
        let port = free_udp_port()?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        nodes.insert((*d).to_owned(), addr);
        write(
            &layout.node_config(d),
            &format!(
                "# Node of department `{d}`. Start it with: fedq node serve --config nodes/{d}.toml\n\
                 name = \"{d}\"\nlisten = \"{addr}\"\ncatalogue = \"../policy/catalogue/{d}.toml\"\n\
                 policy = \"../policy/policy.toml\"\nstore = \"../stores/{d}.db\"\n\
                 audit = \"../audit/{d}-audit.db\"\nrights_state = \"../stores/{d}-rights.db\"\npseudonym_key = \"../audit/{d}-pseudonym.key\"\n\
                 today = \"{today}\"\n{roster}\n[tls]\nca = \"../pki/ca.crt\"\ncrl = \"../pki/crl.pem\"\n\
                 cert = \"../pki/{d}.crt\"\nkey = \"../pki/{d}.key\"\n"
            ),
        )?;
    }
    // Records and audit logs: owner-only directories, whatever the umask.
    fedq_certs::fsutil::create_private_dir(&root.join("stores")).map_err(setup("stores"))?;
    fedq_certs::fsutil::create_private_dir(&root.join("audit")).map_err(setup("audit"))?;
    // What `fedq node init` does: a node never serves or imports into a store it would
    // have had to create.
    for d in &departments {
        fedq_node::store::create(&layout.store(d)).map_err(setup("store"))?;
    }
    for ds in &summary.datasets {
        let catalogue = catalogues
            .iter()
            .find(|c| c.department == ds.department)
            .ok_or_else(|| SandboxError::Setup(format!("no catalogue for `{}`", ds.department)))?;
        let dataset = catalogue
            .dataset(&ds.dataset)
            .ok_or_else(|| SandboxError::Setup(format!("no dataset `{}`", ds.dataset)))?;
        fedq_node::import::import(
            &layout.store(&ds.department),
            dataset,
            &ds.path,
            &fedq_node::import::ImportOptions {
                today: Some(today),
                ..Default::default()
            },
        )
        .map_err(setup("import"))?;
    }
    say(format!(
        "  imported into {} SQLite stores  ({})",
        departments.len(),
        root.join("stores").display()
    ));

    // The coordinator.
    let (https_port, ops_port) = if well_known_ports {
        (free_tcp_port(8443)?, free_tcp_port(9443)?)
    } else {
        (free_tcp_port(0)?, free_tcp_port(0)?)
    };
    let coordinator: SocketAddr = ([127, 0, 0, 1], https_port).into();
    let mut cfg = format!(
        "# The coordinator. Start it with: fedq coordinator serve --config coordinator/coordinator.toml\n\
         name = \"coordinator\"\nlisten = \"{coordinator}\"\nops_listen = \"127.0.0.1:{ops_port}\"\n\
         policy = \"../policy/policy.toml\"\naudit = \"../audit/coordinator-audit.db\"\n\
         pseudonym_key = \"../audit/coordinator-pseudonym.key\"\ndeadline_ms = 2000\ntoday = \"{today}\"\n{roster}\n\
         [tls]\nca = \"../pki/ca.crt\"\ncrl = \"../pki/crl.pem\"\ncert = \"../pki/coordinator.crt\"\nkey = \"../pki/coordinator.key\"\n"
    );
    for (name, addr) in &nodes {
        cfg.push_str(&format!(
            "\n[[node]]\nname = \"{name}\"\naddress = \"{addr}\"\n"
        ));
    }
    write(&layout.coordinator_config(), &cfg)?;

    // The licensing office's gateway: its apps ask through it; it holds the office's
    // requester key, proves, seals and opens, and keeps its own log.
    let gateway: SocketAddr = (
        [127, 0, 0, 1],
        free_tcp_port(if well_known_ports { 10443 } else { 0 })?,
    )
        .into();
    let gateway_dir = root.join("gateway");
    fedq_coordinator::gateway::init(
        &gateway_dir,
        GATEWAY_REQUESTER,
        gateway,
        &format!("https://{coordinator}"),
        Path::new(&format!("../pki/{GATEWAY_REQUESTER}.crt")),
        Path::new(&format!("../pki/{GATEWAY_REQUESTER}.key")),
        Path::new("../pki/ca.crt"),
        &[],
    )
    .map_err(setup("gateway"))?;
    let token = fedq_coordinator::gateway::add_app(&layout.gateway_config(), GATEWAY_APP)
        .map_err(setup("gateway app"))?;
    fedq_certs::fsutil::write_atomic(&layout.gateway_token(), token.as_bytes(), 0o600)
        .map_err(setup("gateway token"))?;
    say(format!(
        "  gateway of {GATEWAY_REQUESTER} on https://{gateway}, app `{GATEWAY_APP}`  ({})",
        gateway_dir.display()
    ));
    say(format!(
        "  configs written; federation built in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    Ok(Federation {
        layout,
        scenario: summary.scenario,
        nodes,
        coordinator,
        gateway,
        today,
        requesters,
    })
}

impl Federation {
    /// Makes every log keep a signed checkpoint after each entry and the coordinator take
    /// them to the witnesses every `interval_ms`, so that a tour or a test sees witnessing
    /// within a second, not a minute (the defaults: 1000 entries or 60 s, and 60 s).
    pub fn witness_quickly(&self, interval_ms: u64) -> Result<(), SandboxError> {
        let prepend = |path: &Path, lines: &str| -> Result<(), SandboxError> {
            let text = std::fs::read_to_string(path).map_err(setup("config"))?;
            std::fs::write(path, format!("{lines}{text}")).map_err(setup("config"))
        };
        for node in self.nodes.keys() {
            prepend(
                &self.layout.node_config(node),
                "audit_checkpoint_entries = 1\n",
            )?;
        }
        prepend(
            &self.layout.coordinator_config(),
            &format!("audit_checkpoint_entries = 1\nwitness_interval_ms = {interval_ms}\n"),
        )
    }

    /// Rewrites every requester's rate limit in this federation's copy of the policy to a
    /// number no test or benchmark reaches, leaving every other rule as it is. For load
    /// tests and benchmarks only: a load generator is not a licensing office.
    pub fn lift_rate_limits(&self) -> Result<(), SandboxError> {
        let path = self.layout.policy();
        let policy = std::fs::read_to_string(&path).map_err(setup("policy"))?;
        let mut lifted = String::with_capacity(policy.len());
        let mut n = 0;
        for line in policy.lines() {
            if line.trim_start().starts_with("rate_limit = ") {
                lifted.push_str("rate_limit = { per_minute = 100000000, per_day = 1000000000 }");
                n += 1;
            } else {
                lifted.push_str(line);
            }
            lifted.push('\n');
        }
        if n == 0 {
            return Err(SandboxError::Setup(
                "the policy declares no rate limits to lift".into(),
            ));
        }
        std::fs::write(&path, lifted).map_err(setup("policy"))
    }
}
