//! `fedq demo`: builds a throwaway Changsha federation on 127.0.0.1 — a CA and
//! certificates, one node per department on SQLite filled with synthetic data, the
//! coordinator, the reference catalogue and policy — then tours what fedq is for through
//! the real requester API, and stays up until Ctrl-C.
//!
//! The federation directory (`--dir`, or a temporary one) is laid out as
//! [`Layout`] documents, the same way an operator would lay out a real one.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use fedq_certs::pki::{CertificateAuthority, IssueOptions};
use fedq_certs::Role;
use fedq_coordinator::client::{self, QueryArgs};
use fedq_coordinator::config::CoordinatorConfig;
use fedq_node::config::NodeConfig;
use fedq_node::service::Node;
use fedq_wire::transport::{FrameTap, Limits};
use serde_json::Value;

/// The reference catalogues, embedded so the demo runs from any directory.
pub const CATALOGUES: [(&str, &str); 7] = [
    (
        "civil-affairs",
        include_str!("../../reference/changsha/catalogue/civil-affairs.toml"),
    ),
    (
        "court",
        include_str!("../../reference/changsha/catalogue/court.toml"),
    ),
    (
        "education",
        include_str!("../../reference/changsha/catalogue/education.toml"),
    ),
    (
        "hrss",
        include_str!("../../reference/changsha/catalogue/hrss.toml"),
    ),
    (
        "market-regulation",
        include_str!("../../reference/changsha/catalogue/market-regulation.toml"),
    ),
    (
        "public-security",
        include_str!("../../reference/changsha/catalogue/public-security.toml"),
    ),
    (
        "tax",
        include_str!("../../reference/changsha/catalogue/tax.toml"),
    ),
];

/// The reference policy, embedded.
pub const POLICY: &str = include_str!("../../reference/changsha/policy.toml");

/// The legal basis the licensing office cites in the tour.
pub const LICENSING_BASIS: &str = "长政办发〔2017〕62号";

/// The consent authority's certificate name: the identity check at the service window,
/// which signs a citizen's consent tokens.
pub const CONSENT_AUTHORITY: &str = "identity-check";
/// The licensing application the tour's licensing queries serve (the form the reference
/// policy declares for `administrative-licensing`).
pub const LICENSING_CASE: &str = "长市监许申〔2026〕001234号";

/// Arguments of `fedq demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Exit after the tour (exit code 0 only if every answer was as expected).
    #[arg(long)]
    pub no_serve: bool,
    /// Keep the whole federation in DIR (certificates, configs, data, stores, logs).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// How many synthetic persons to generate.
    #[arg(long, default_value_t = 10_000)]
    pub persons: u64,
    /// Seed of the synthetic data.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Errors of the demo.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Setting up the federation failed.
    #[error("demo set-up: {0}")]
    Setup(String),
}

fn setup<E: std::fmt::Display>(what: &str) -> impl Fn(E) -> DemoError + '_ {
    move |e| DemoError::Setup(format!("{what}: {e}"))
}

/// The security officers the demo federation issues certificates to (policy bundles
/// need two of them).
pub const OFFICERS: [&str; 3] = ["officer-zhang", "officer-li", "officer-wang"];

/// The requester whose queries the demo sends through its gateway.
pub const GATEWAY_REQUESTER: &str = "market-regulation.licensing";

/// The licensing office's app that calls the gateway.
pub const GATEWAY_APP: &str = "licensing-portal";

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

/// Ports a throwaway federation listens on are picked below Linux's ephemeral range
/// (32768–60999 by default): a port picked there and released until the process binds it
/// could meanwhile become the local port of any outgoing connection on the host (tests
/// running side by side open hundreds), and the later bind would fail.
const PICKED_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// Every port this process has picked: a port is picked, released, and bound later by the
/// process it is written into, so a second pick of the same port in between (another
/// federation built side by side in the same test binary, or another node of this one)
/// would fail that bind. No port is handed out twice.
static PICKED: std::sync::Mutex<Option<std::collections::BTreeSet<u16>>> =
    std::sync::Mutex::new(None);

/// Whether `port` was not picked before in this process (and is now).
fn first_pick(port: u16) -> bool {
    let mut picked = PICKED.lock().unwrap_or_else(|p| p.into_inner());
    picked.get_or_insert_with(Default::default).insert(port)
}

/// A pseudo-random port in [`PICKED_PORTS`] that `bind` accepts now and this process has
/// not picked before; port 0's pick if none of a bounded number of tries does.
fn free_port(bind: impl Fn(u16) -> std::io::Result<u16>) -> Result<u16, DemoError> {
    use std::hash::{BuildHasher, Hasher};
    let mut seed = std::collections::hash_map::RandomState::new().build_hasher();
    seed.write_u32(std::process::id());
    let mut x = seed.finish() | 1;
    let span = u64::from(PICKED_PORTS.end - PICKED_PORTS.start);
    for _ in 0..200 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let port = PICKED_PORTS.start + u16::try_from(x % span).unwrap_or(0);
        if PICKED
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|picked| picked.contains(&port))
        {
            continue;
        }
        if let Ok(port) = bind(port) {
            if first_pick(port) {
                return Ok(port);
            }
        }
    }
    bind(0).map_err(setup("find a free port"))
}

fn free_udp_port() -> Result<u16, DemoError> {
    free_port(|port| {
        UdpSocket::bind(("127.0.0.1", port))?
            .local_addr()
            .map(|a| a.port())
    })
}

fn free_tcp_port(preferred: u16) -> Result<u16, DemoError> {
    if preferred != 0
        && TcpListener::bind(("127.0.0.1", preferred)).is_ok()
        && first_pick(preferred)
    {
        return Ok(preferred);
    }
    free_port(|port| {
        TcpListener::bind(("127.0.0.1", port))?
            .local_addr()
            .map(|a| a.port())
    })
}

fn write(path: &Path, text: &str) -> Result<(), DemoError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(setup("create directory"))?;
    }
    std::fs::write(path, text)
        .map_err(|e| DemoError::Setup(format!("write `{}`: {e}", path.display())))
}

/// A built federation, not yet running.
#[derive(Debug)]
pub struct Federation {
    /// Where it lives.
    pub layout: Layout,
    /// The demo's scenario persons.
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
    /// Prefer ports 8443/9443 for the coordinator (the demo's instructions), else any.
    pub well_known_ports: bool,
}

impl BuildOptions {
    /// Quiet, small, any free ports: for tests.
    pub fn for_tests(persons: u64, seed: u64) -> Self {
        Self {
            persons,
            seed,
            verbose: false,
            well_known_ports: false,
        }
    }
}

/// Builds the federation in `root`: certificates, policy, synthetic data, imported stores,
/// configs.
pub fn build(root: &Path, options: &BuildOptions) -> Result<Federation, DemoError> {
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
    for officer in OFFICERS {
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
                 audit = \"../audit/{d}-audit.db\"\npseudonym_key = \"../audit/{d}-pseudonym.key\"\n\
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
            .ok_or_else(|| DemoError::Setup(format!("no catalogue for `{}`", ds.department)))?;
        let dataset = catalogue
            .dataset(&ds.dataset)
            .ok_or_else(|| DemoError::Setup(format!("no dataset `{}`", ds.dataset)))?;
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
    /// Rewrites every requester's rate limit in this federation's copy of the policy to a
    /// number no test or benchmark reaches, leaving every other rule as it is. For load
    /// tests and benchmarks only: a load generator is not a licensing office.
    pub fn lift_rate_limits(&self) -> Result<(), DemoError> {
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
            return Err(DemoError::Setup(
                "the policy declares no rate limits to lift".into(),
            ));
        }
        std::fs::write(&path, lifted).map_err(setup("policy"))
    }
}

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
    DemoError,
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
    pub async fn start(fed: &Federation, tap: Option<FrameTap>) -> Result<Self, DemoError> {
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
    ) -> Result<(), DemoError> {
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

/// One stop of the tour.
#[derive(Debug)]
pub struct Step {
    /// What it demonstrates, in one line.
    pub headline: String,
    /// HTTP status.
    pub status: u16,
    /// The answer.
    pub answer: Value,
    /// Whether the answer was as expected, and why not.
    pub check: Result<(), String>,
}

/// A query of the tour.
#[derive(Clone, Debug)]
pub struct Ask {
    /// Requester certificate name.
    pub requester: String,
    /// Subject.
    pub subject: String,
    /// Purpose.
    pub purpose: String,
    /// Legal basis.
    pub basis: Option<String>,
    /// Consent token (from [`consent_token`]).
    pub consent: Option<String>,
    /// The case the query serves.
    pub case_reference: Option<String>,
    /// View.
    pub view: Option<String>,
    /// Datasets.
    pub datasets: Vec<String>,
}

impl Ask {
    /// The query as the requester side holds it before proving (subject and consent in
    /// clear, no proofs yet).
    pub fn query(&self) -> fedq_coordinator::query::QueryRequest {
        fedq_coordinator::query::QueryRequest {
            subject: self.subject.clone(),
            purpose: self.purpose.clone(),
            legal_basis: self.basis.clone(),
            consent: self.consent.clone(),
            case_reference: self.case_reference.clone(),
            view: self.view.clone(),
            datasets: (!self.datasets.is_empty()).then(|| self.datasets.clone()),
            ..Default::default()
        }
    }
}

/// Sends one query through the real HTTPS API with the requester's certificate, as
/// `fedq query` does.
pub async fn ask(fed: &Federation, q: &Ask) -> Result<(u16, Value), String> {
    send_ask(fed, q, false).await
}

/// Sends one query as the tour does, with the gateway running ([`Running`]): the
/// licensing office's through its gateway (as its app [`GATEWAY_APP`], with the app's
/// token), every other office's as [`ask`] does.
pub async fn ask_in_tour(fed: &Federation, q: &Ask) -> Result<(u16, Value), String> {
    send_ask(fed, q, q.requester == GATEWAY_REQUESTER).await
}

async fn send_ask(fed: &Federation, q: &Ask, via_gateway: bool) -> Result<(u16, Value), String> {
    let pki = fed.layout.pki();
    let args = QueryArgs {
        coordinator: (!via_gateway).then(|| format!("https://{}", fed.coordinator)),
        gateway: via_gateway.then(|| format!("https://localhost:{}", fed.gateway.port())),
        token: via_gateway.then(|| format!("@{}", fed.layout.gateway_token().display())),
        cert: Some(pki.join(format!("{}.crt", q.requester))),
        key: Some(pki.join(format!("{}.key", q.requester))),
        ca: if via_gateway {
            fed.layout.gateway_ca()
        } else {
            pki.join("ca.crt")
        },
        crl: None,
        subject: q.subject.clone(),
        purpose: q.purpose.clone(),
        basis: q.basis.clone(),
        consent: q.consent.clone(),
        case_reference: q.case_reference.clone(),
        view: q.view.clone(),
        dataset: q.datasets.clone(),
        json: true,
    };
    client::send(&args).await.map_err(|e| e.to_string())
}

/// The newest `query` entry of the log at `path` (under the federation's root), as
/// `fedq audit list --json` shows it.
fn newest_query_entry(fed: &Federation, path: &str) -> Result<Value, String> {
    let path = fed.layout.root.join(path);
    let entries =
        fedq_audit::list(&path, &fedq_audit::ListFilter::default()).map_err(|e| e.to_string())?;
    let entry = entries
        .iter()
        .rev()
        .find(|e| e.record.kind == fedq_audit::EntryKind::Query)
        .ok_or_else(|| format!("{} registered no query", path.display()))?;
    serde_json::to_value(&entry.record).map_err(|e| e.to_string())
}

/// The coordinator's newest `query` entry.
fn coordinator_entry(fed: &Federation) -> Result<(u16, Value), String> {
    Ok((200, newest_query_entry(fed, "audit/coordinator-audit.db")?))
}

/// The licensing office's gateway's newest `query` entry; an error unless it registers
/// the same query as the coordinator's newest.
fn gateway_entry(fed: &Federation) -> Result<(u16, Value), String> {
    let entry = newest_query_entry(fed, "gateway/gateway-audit.db")?;
    let coordinator = newest_query_entry(fed, "audit/coordinator-audit.db")?;
    if coordinator.get("query_id") != entry.get("query_id") {
        return Err("the gateway's newest query is not the coordinator's".into());
    }
    Ok((200, entry))
}

/// Sends `q` once, proven as `fedq query` proves it, and then re-posts the very same
/// body (the same proofs) over the raw API, as a coordinator replaying a query it saw
/// would: returns the answer to the replay.
pub async fn replay(fed: &Federation, q: &Ask) -> Result<(u16, Value), String> {
    let pki = fed.layout.pki();
    let mut conn = client::ApiConnection::connect(
        &format!("https://{}", fed.coordinator),
        &pki.join(format!("{}.crt", q.requester)),
        &pki.join(format!("{}.key", q.requester)),
        &pki.join("ca.crt"),
    )
    .await
    .map_err(|e| e.to_string())?;
    let proven = conn.prove(&q.query()).await.map_err(|e| e.to_string())?;
    let body = serde_json::to_vec(&proven).map_err(|e| e.to_string())?;
    let (status, first) = conn
        .call("POST", "/v1/query", "application/json", body.clone())
        .await
        .map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!(
            "the original query was not answered ({status}): {first}"
        ));
    }
    conn.call("POST", "/v1/query", "application/json", body)
        .await
        .map_err(|e| e.to_string())
}

fn node_status<'a>(answer: &'a Value, node: &str) -> Option<&'a str> {
    answer
        .get("nodes")?
        .as_array()?
        .iter()
        .find(|n| n.get("node").and_then(Value::as_str) == Some(node))?
        .get("status")?
        .as_str()
}

fn records_of(answer: &Value, dataset: &str) -> usize {
    answer
        .pointer(&format!("/datasets/{dataset}/records"))
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
}

fn expect(cond: bool, why: &str) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(why.to_owned())
    }
}

/// The view result of `kind` with every source accounted for (`unverified` present and
/// empty): an answer that lacks a part of the view, or left a source out, cannot show
/// that something was *not* disclosed.
fn complete_view<'a>(a: &'a Value, kind: &str) -> Result<&'a Value, String> {
    let view = a
        .get("view_result")
        .ok_or_else(|| format!("expected a `{kind}` view result"))?;
    expect(
        view.get("kind").and_then(Value::as_str) == Some(kind),
        &format!("expected a `{kind}` view result"),
    )?;
    let unverified = view
        .get("unverified")
        .and_then(Value::as_array)
        .ok_or("expected the view's unverified sources")?;
    expect(
        unverified.is_empty(),
        "expected every source of the view to answer",
    )?;
    Ok(view)
}

/// A view's answer carries the view's result and each department's completeness, none of
/// the sources' records (the reference views declare no `release`).
fn releases_only_the_view(a: &Value) -> Result<(), String> {
    expect(
        a.get("datasets")
            .and_then(Value::as_object)
            .is_some_and(serde_json::Map::is_empty),
        "expected no source records beside the view's result",
    )?;
    let statuses = a
        .get("nodes")
        .and_then(Value::as_array)
        .ok_or("expected each department's status")?;
    expect(
        statuses.iter().all(|n| {
            !matches!(
                n.get("status").and_then(Value::as_str),
                Some("ok" | "no_record")
            )
        }),
        "expected no department to say whether it holds a record",
    )
}

/// The sections of a complete credit report; none is a failure.
fn report_sections(a: &Value) -> Result<&Vec<Value>, String> {
    complete_view(a, "credit-report")?
        .get("sections")
        .and_then(Value::as_array)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| "expected the report's sections".to_owned())
}

/// The report's section of `dataset` (`department.dataset`); a missing one is a failure.
fn section<'a>(sections: &'a [Value], dataset: &str) -> Result<&'a Value, String> {
    sections
        .iter()
        .find(|sec| sec.get("dataset").and_then(Value::as_str) == Some(dataset))
        .ok_or_else(|| format!("expected a section for `{dataset}`"))
}

/// Whether a section discloses anything: a record, or a summary that is not zero/false.
fn discloses(section: &Value) -> bool {
    let records = section
        .get("records")
        .and_then(Value::as_array)
        .is_none_or(|r| !r.is_empty());
    // A summary (`{"exists": false}`, `{"count": 0}`) says nothing only when it is empty.
    fn says_nothing(v: &Value) -> bool {
        match v {
            Value::Bool(b) => !b,
            Value::Number(n) => n.as_u64() == Some(0),
            Value::Object(o) => o.values().all(says_nothing),
            _ => false,
        }
    }
    let summaries = section
        .get("summaries")
        .and_then(Value::as_object)
        .is_some_and(|m| !m.values().all(says_nothing));
    records || summaries
}

/// The expired person's own credit report: the section of each dataset that holds one of
/// their expired negative records is there (the department answered) and discloses
/// nothing, and no other negative section discloses anything.
fn check_expired_report(status: u16, a: &Value, expired: &[String]) -> Result<(), String> {
    expect(status == 200, "expected 200")?;
    let sections = report_sections(a)?;
    expect(!expired.is_empty(), "scenario has an expired record")?;
    for dataset in expired {
        let sec = section(sections, dataset)?;
        expect(
            !discloses(sec),
            &format!("an expired negative record of `{dataset}` was disclosed"),
        )?;
    }
    let any = sections
        .iter()
        .filter(|sec| {
            sec.get("dataset")
                .and_then(Value::as_str)
                .is_some_and(|d| !d.starts_with("civil-affairs."))
        })
        .any(discloses);
    expect(!any, "an expired negative record was disclosed")
}

/// The repaired person's blacklist check: every list answered and none lists them.
fn check_repaired_blacklist(status: u16, a: &Value, repaired: bool) -> Result<(), String> {
    expect(status == 200, "expected 200")?;
    expect(repaired, "scenario has a repaired record")?;
    let listings = complete_view(a, "blacklist")?
        .get("listings")
        .and_then(Value::as_array)
        .ok_or("expected the blacklist check's listings")?;
    expect(listings.is_empty(), "a repaired record was disclosed")
}

/// The licensing office asking `view` about `subject` for administrative licensing.
pub fn licensing(subject: &str, view: &str) -> Ask {
    Ask {
        requester: "market-regulation.licensing".into(),
        subject: subject.into(),
        purpose: "administrative-licensing".into(),
        basis: Some(LICENSING_BASIS.into()),
        consent: None,
        case_reference: Some(LICENSING_CASE.into()),
        view: Some(view.into()),
        datasets: Vec::new(),
    }
}

/// A consent token signed by the federation's consent authority ([`CONSENT_AUTHORITY`]):
/// `subject` consents to `requester` asking for `targets` (`view:NAME` or
/// `department.dataset`) under `purpose`, once per node, for an hour.
pub fn consent_token(
    fed: &Federation,
    subject: &str,
    requester: &str,
    purpose: &str,
    targets: &[&str],
) -> Result<String, String> {
    let pki = fed.layout.pki();
    let key = fedq_certs::jws::CertificateKey::load(
        &fedq_certs::pki::cert_path(&pki, CONSENT_AUTHORITY),
        &fedq_certs::pki::key_path(&pki, CONSENT_AUTHORITY),
    )
    .map_err(|e| e.to_string())?;
    let grant = fedq_certs::consent::ConsentGrant {
        subject: subject.to_owned(),
        requester: requester.to_owned(),
        purpose: purpose.to_owned(),
        targets: targets.iter().map(|t| (*t).to_owned()).collect(),
        valid_for_secs: 3600,
        max_uses: 1,
    };
    fedq_certs::consent::issue(
        &key,
        &grant,
        time::OffsetDateTime::now_utc().unix_timestamp(),
    )
    .map(|(token, _)| token)
    .map_err(|e| e.to_string())
}

/// The recruitment office of the tour.
pub const RECRUITMENT_OFFICE: &str = "hrss.recruitment";
/// The regulation recruitment cites.
pub const RECRUITMENT_BASIS: &str = "公务员录用规定";
/// The recruitment application the tour's recruitment queries serve.
pub const RECRUITMENT_CASE: &str = "HRSS-ZL-2026-000123";

/// The requester the service window's self-queries come from.
pub const SELF_QUERY_OFFICE: &str = "service-window.self-query";

/// The person asking `view` about themself at the service window, with a consent token
/// the identity check signed for exactly this.
pub fn self_query(fed: &Federation, subject: &str, view: &str) -> Result<Ask, String> {
    let token = consent_token(
        fed,
        subject,
        SELF_QUERY_OFFICE,
        "self-query",
        &[&format!("view:{view}")],
    )?;
    Ok(Ask {
        requester: SELF_QUERY_OFFICE.into(),
        subject: subject.into(),
        purpose: "self-query".into(),
        basis: None,
        consent: Some(token),
        case_reference: None,
        view: Some(view.into()),
        datasets: Vec::new(),
    })
}

/// The same shape of token signed with another key than the consent authority's (here
/// the asking office's own requester key): what a requester or a taken-over coordinator
/// could make by itself.
pub fn forged_consent_token(
    fed: &Federation,
    signer: &str,
    subject: &str,
    requester: &str,
    purpose: &str,
    targets: &[&str],
) -> Result<String, String> {
    let pki = fed.layout.pki();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = fedq_certs::consent::ConsentClaims {
        iss: format!("fedq://changsha/consent-authority/{CONSENT_AUTHORITY}"),
        sub: subject.to_owned(),
        jti: "forged-0001".into(),
        iat: now,
        nbf: now,
        exp: now + 3600,
        authorization_details: vec![fedq_certs::consent::AuthorizationDetail {
            kind: fedq_certs::consent::DETAIL_TYPE.into(),
            requester: requester.to_owned(),
            purpose: purpose.to_owned(),
            targets: targets.iter().map(|t| (*t).to_owned()).collect(),
            max_uses: 1000,
        }],
    };
    let key = fedq_certs::jws::CertificateKey::load(
        &fedq_certs::pki::cert_path(&pki, signer),
        &fedq_certs::pki::key_path(&pki, signer),
    )
    .map_err(|e| e.to_string())?;
    let payload = serde_json::to_vec(&claims).map_err(|e| e.to_string())?;
    fedq_certs::jws::sign_es256(&key, fedq_certs::consent::TYP, &payload).map_err(|e| e.to_string())
}

/// Sends `q` as built, or fails the stop with why it could not be built.
async fn ask_built(fed: &Federation, q: Result<Ask, String>) -> Result<(u16, Value), String> {
    ask(fed, &q?).await
}

/// An answer in which every department asked refused the consent token itself, each
/// naming the claim `claim` that failed, and nothing was released. (The coordinator never
/// sees the token: it is sealed with the subject to each department.)
fn check_consent_refused(status: u16, a: &Value, claim: &str) -> Result<(), String> {
    expect(
        status == 200,
        "expected 200 with every department's refusal",
    )?;
    let nodes = a
        .get("nodes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    expect(!nodes.is_empty(), "expected the departments' reports")?;
    for n in &nodes {
        let reason = n.get("reason").and_then(Value::as_str).unwrap_or_default();
        expect(
            n.get("status").and_then(Value::as_str) == Some("denied")
                && reason.contains("consent")
                && reason.contains(claim),
            &format!("expected every department to refuse the token, naming its {claim}"),
        )?;
    }
    let listings = a
        .pointer("/view_result/listings")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    expect(listings == 0, "expected nothing released")
}

/// The label of the bundle the tour's officers approve (bundle 1 of the policy
/// `2026.12-1`).
pub const APPROVED_VERSION: &str = "1/2026.12-1";

/// Two officers sign the policy in force, renamed `2026.12-1`, as bundle 1, and a third
/// publishes it through the coordinator's API. Returns the publication's JSON.
async fn approve_policy_change(fed: &Federation) -> Result<Value, String> {
    let policy = fed.layout.policy();
    let text = std::fs::read_to_string(&policy).map_err(|e| e.to_string())?;
    let renamed: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with("version = ") {
                "version = \"2026.12-1\"".to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect();
    let dir = fedq_policy::load::catalogue_dir_of(&policy, &text).map_err(|e| e.to_string())?;
    let digests = fedq_bundle::catalogue_digests(&dir).map_err(|e| e.to_string())?;
    let pki = fed.layout.pki();
    // The bundle also pins the roster: from now on only these officers' keys may approve.
    let roster = OFFICERS
        .iter()
        .map(|o| fedq_bundle::RosterEntry::from_certificate_file(&pki.join(format!("{o}.crt"))))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let mut bundle =
        fedq_bundle::Bundle::create("changsha", 1, 2, renamed.join("\n") + "\n", digests, roster)
            .map_err(|e| e.to_string())?;
    for officer in ["officer-zhang", "officer-li"] {
        let key = fedq_certs::signing::OfficerKey::load(
            &pki.join(format!("{officer}.crt")),
            &pki.join(format!("{officer}.key")),
        )
        .map_err(|e| e.to_string())?;
        bundle.sign(&key).map_err(|e| e.to_string())?;
    }
    let file = policy.with_file_name("v1.bundle.toml");
    std::fs::write(&file, bundle.to_toml().map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let args = client::PublishArgs {
        bundle: file,
        api: client::ApiArgs {
            coordinator: format!("https://{}", fed.coordinator),
            cert: pki.join("officer-wang.crt"),
            key: pki.join("officer-wang.key"),
            ca: pki.join("ca.crt"),
            crl: None,
        },
    };
    match client::publish(&args).await {
        Ok((200, body)) => Ok(body),
        Ok((status, body)) => Err(format!("publication refused ({status}): {body}")),
        Err(e) => Err(e.to_string()),
    }
}

/// Runs the tour against a running federation. `stop_node` is called to take a node down
/// for the last stop and `restart_node` to bring it back.
pub async fn tour(fed: &Federation, running: &mut Running, tap: Option<FrameTap>) -> Vec<Step> {
    let s = &fed.scenario;
    let mut steps = Vec::new();
    let mut run = |headline: &str,
                   result: Result<(u16, Value), String>,
                   check: &dyn Fn(u16, &Value) -> Result<(), String>| {
        let (status, answer, check) = match result {
            Ok((status, answer)) => {
                let c = check(status, &answer);
                (status, answer, c)
            }
            Err(e) => (0, Value::Null, Err(e)),
        };
        steps.push(Step {
            headline: headline.to_owned(),
            status,
            answer,
            check,
        });
    };

    let q = licensing(&s.blacklisted.resident_id, "blacklist-check");
    run(
        "A licensing office asks: is this applicant on a serious-dishonesty list? (the active listing comes back; every other department's list is checked too, and no department's records travel beside the answer)",
        ask_in_tour(fed, &q).await,
        &|status, a| {
            expect(status == 200, "expected 200")?;
            let listings = a.pointer("/view_result/listings").and_then(Value::as_array).map_or(0, Vec::len);
            expect(listings >= 1, "expected at least one active listing")?;
            expect(node_status(a, "court") == Some("answered"), "expected court: answered")?;
            releases_only_the_view(a)
        },
    );

    let applicant = s.blacklisted.resident_id.clone();
    run(
        "What the coordinator registered for that query, beside what the office saw: the requester, purpose, legal basis, case, view and which departments it asked — never the person, whom the office sealed to each department (the coordinator's entry's subject is `-`)",
        coordinator_entry(fed),
        &|status, e| {
            expect(status == 200, "expected the coordinator's entry")?;
            expect(e.get("subject").and_then(Value::as_str) == Some("-"), "expected no subject in the coordinator's entry")?;
            expect(e.get("consent_id").is_none_or(Value::is_null), "expected no consent token id")?;
            expect(!e.to_string().contains(applicant.as_str()), "the coordinator's entry holds the resident ID")?;
            expect(
                e.pointer("/node_query_ids/court").and_then(Value::as_str).is_some(),
                "expected the court among the departments asked",
            )
        },
    );

    run(
        "What the licensing office's own gateway registered for the same query: which of its apps asked, the person under the gateway's own pseudonym key (the app sent the ID to the gateway, which sealed it to each department), and the coordinator's query id",
        gateway_entry(fed),
        &|status, e| {
            expect(status == 200, "expected the gateway's entry")?;
            expect(
                e.get("requester").and_then(Value::as_str) == Some(&format!("app:{GATEWAY_APP}")),
                "expected the app in the gateway's entry",
            )?;
            let subject = e.get("subject").and_then(Value::as_str).unwrap_or("-");
            expect(subject != "-", "expected the subject's pseudonym in the gateway's entry")?;
            expect(!e.to_string().contains(applicant.as_str()), "the gateway's entry holds the resident ID")
        },
    );

    let q = licensing(&s.blacklisted.resident_id, "blacklist-check");
    run(
        "Refused replay: whoever holds the coordinator re-sends the same signed query, proofs and all — every department sees a proof already used, refuses it (audited), and releases nothing",
        replay(fed, &q).await,
        &|status, a| {
            expect(status == 200, "expected 200")?;
            let nodes = a.get("nodes").and_then(Value::as_array).cloned().unwrap_or_default();
            expect(!nodes.is_empty(), "expected the departments to be asked")?;
            expect(
                nodes.iter().all(|n| n.get("proof_refused").and_then(Value::as_str) == Some("replayed")),
                "expected every department to refuse the replayed proof",
            )?;
            expect(node_status(a, "court") == Some("denied"), "expected court: denied")?;
            let listings = a.pointer("/view_result/listings").and_then(Value::as_array).map_or(0, Vec::len);
            expect(listings == 0, "expected nothing released")
        },
    );

    let q = licensing(&s.clean.resident_id, "green-channel");
    run(
        "Green channel (seed §十三): three clean years → fast-track; each department answers only \"any negative record: yes/no\", and the licensing office gets the verdict alone",
        ask_in_tour(fed, &q).await,
        &|status, a| {
            expect(status == 200, "expected 200")?;
            expect(a.pointer("/view_result/eligible") == Some(&Value::Bool(true)), "expected eligible")?;
            releases_only_the_view(a)
        },
    );

    let q = self_query(fed, &s.tax_arrears.resident_id, "credit-report");
    run(
        "A citizen's own credit report at the service window, with a consent token the identity check signed for this person, office, purpose and view",
        ask_built(fed, q).await,
        &|status, a| {
            expect(status == 200, "expected 200")?;
            let sections = report_sections(a)?;
            let tax = sections
                .iter()
                .filter(|sec| sec.get("dataset").and_then(Value::as_str).is_some_and(|d| d.starts_with("tax.")))
                .map(|sec| sec.get("records").and_then(Value::as_array).map_or(0, Vec::len))
                .sum::<usize>();
            expect(tax >= 1, "expected the tax arrears in the report")
        },
    );

    // Recruitment with the candidate's written consent: the identity check signs a token for
    // this candidate, the recruitment office, its purpose and the blacklist check.
    let recruitment = |subject: &str, consent: Result<String, String>| -> Result<Ask, String> {
        Ok(Ask {
            requester: RECRUITMENT_OFFICE.into(),
            subject: subject.into(),
            purpose: "public-recruitment".into(),
            basis: Some(RECRUITMENT_BASIS.into()),
            consent: Some(consent?),
            case_reference: Some(RECRUITMENT_CASE.into()),
            view: Some("blacklist-check".into()),
            datasets: Vec::new(),
        })
    };
    let candidate = &s.blacklisted.resident_id;
    let token = consent_token(
        fed,
        candidate,
        RECRUITMENT_OFFICE,
        "public-recruitment",
        &["view:blacklist-check"],
    );
    run(
        "Recruitment with the candidate's consent token: the blacklist check is answered (the consent-only rules apply because the token verified at the coordinator and at every department)",
        ask_built(fed, recruitment(candidate, token.clone())).await,
        &|status, a| {
            expect(status == 200, "expected 200")?;
            let listings = a.pointer("/view_result/listings").and_then(Value::as_array).map_or(0, Vec::len);
            expect(listings >= 1, "expected the candidate's active listing")
        },
    );
    let forged = forged_consent_token(
        fed,
        RECRUITMENT_OFFICE,
        candidate,
        RECRUITMENT_OFFICE,
        "public-recruitment",
        &["view:blacklist-check"],
    );
    run(
        "Refused: the same consent forged — signed with the recruitment office's own key instead of the consent authority's — every department verifies the token itself (the coordinator never sees it, sealed with the subject) and refuses it as not verifying; nothing is released",
        ask_built(fed, recruitment(candidate, forged)).await,
        &|status, a| check_consent_refused(status, a, "does not verify"),
    );
    run(
        "Refused: the candidate's genuine token, used to ask about another person — every department refuses it naming the `sub` claim, never either person",
        ask_built(fed, recruitment(&s.clean.resident_id, token)).await,
        &|status, a| {
            check_consent_refused(status, a, "`sub`")?;
            let text = a.to_string();
            expect(
                !text.contains(s.clean.resident_id.as_str()) && !text.contains(candidate.as_str()),
                "the refusal must not quote a resident ID",
            )
        },
    );

    let q = Ask {
        requester: "statistics.bureau".into(),
        subject: s.blacklisted.resident_id.clone(),
        purpose: "statistics".into(),
        basis: Some("统计法".into()),
        consent: None,
        case_reference: None,
        view: None,
        datasets: vec!["court.dishonest_debtors.case_no".into()],
    };
    run(
        "Refused: statistics is aggregate-only — the statistics bureau may not learn even a count about one named person (\"this person is a listed debtor\"); the refusal carries the policy's reason, and no department was asked",
        ask_in_tour(fed, &q).await,
        &|status, a| {
            expect(status == 403, "expected 403")?;
            let error = a.get("detail").and_then(Value::as_str).unwrap_or_default();
            expect(
                error.contains("aggregate-only") && error.contains("`statistics`"),
                "expected the policy's reason naming the purpose",
            )?;
            expect(a.get("nodes").is_none(), "expected no department to be asked")
        },
    );

    let q = Ask {
        case_reference: Some("(2026)湘01执123号".into()),
        ..licensing(&s.clean.resident_id, "green-channel")
    };
    run(
        "Refused: a licensing query must name the application it serves — a court case number is not a licensing application number; the refusal shows the expected form, never what was sent",
        ask_in_tour(fed, &q).await,
        &|status, a| {
            expect(status == 403, "expected 403")?;
            let error = a.get("detail").and_then(Value::as_str).unwrap_or_default();
            expect(
                error.contains("case reference") && error.contains("长市监许申"),
                "expected the expected form of the case reference",
            )?;
            expect(!error.contains("湘01执"), "the refusal must not quote the reference sent")?;
            expect(a.get("nodes").is_none(), "expected no department to be asked")
        },
    );

    let q = Ask {
        basis: Some("anything".into()),
        ..licensing(&s.clean.resident_id, "green-channel")
    };
    run(
        "Refused: a legal basis the purpose does not accept gets nothing, not even the green channel — the refusal lists the accepted ones",
        ask_in_tour(fed, &q).await,
        &|status, a| {
            expect(status == 403, "expected 403")?;
            let error = a.get("detail").and_then(Value::as_str).unwrap_or_default();
            expect(
                error.contains(LICENSING_BASIS) && error.contains("行政许可法"),
                "expected the accepted legal bases",
            )?;
            expect(a.get("nodes").is_none(), "expected no department to be asked")
        },
    );

    let q = Ask {
        requester: "market-regulation.licensing".into(),
        subject: s.blacklisted.resident_id.clone(),
        purpose: "administrative-licensing".into(),
        basis: Some(LICENSING_BASIS.into()),
        consent: None,
        case_reference: Some(LICENSING_CASE.into()),
        view: None,
        datasets: vec!["public-security.identity_basics.household_registration".into()],
    };
    run(
        "Denied by a rule, with its rationale: the licensing office asks for the applicant's household registration — the deny rule names itself and says why, and public security is never asked",
        ask_in_tour(fed, &q).await,
        &|status, a| {
            expect(status == 200, "expected 200")?;
            expect(node_status(a, "public-security") == Some("denied"), "expected public-security: denied")?;
            let reason = a
                .get("nodes")
                .and_then(Value::as_array)
                .and_then(|n| n.iter().find(|n| n.get("node").and_then(Value::as_str) == Some("public-security")))
                .and_then(|n| n.get("reason"))
                .and_then(Value::as_str)
                .unwrap_or("");
            expect(reason.contains("privacy-household-registration"), "expected the deny rule's id and rationale")
        },
    );

    let q = self_query(fed, &s.expired.resident_id, "credit-report");
    // The datasets of the person's negative records (not their identity basics).
    let is_negative = |department: &str, dataset: &str| {
        CATALOGUES
            .iter()
            .filter(|(d, _)| *d == department)
            .filter_map(|(d, text)| fedq_policy::Catalogue::parse(text, d).ok())
            .any(|c| {
                c.dataset(dataset)
                    .is_some_and(|ds| ds.kind == fedq_policy::catalogue::DatasetKind::Negative)
            })
    };
    let expired: Vec<String> = s
        .expired
        .records
        .iter()
        .filter(|r| is_negative(&r.department, &r.dataset))
        .map(|r| format!("{}.{}", r.department, r.dataset))
        .collect();
    run(
        "The law is not a policy option: this person's only negative record is older than 3 years (seed §十) — not disclosed, even in their own report",
        ask_built(fed, q).await,
        &|status, a| check_expired_report(status, a, &expired),
    );

    let repaired = !s.repaired.records.is_empty();
    let q = licensing(&s.repaired.resident_id, "blacklist-check");
    run(
        "Credit repair ends disclosure early (seed §十): this person's listing was repaired — the blacklist check finds nothing",
        ask_in_tour(fed, &q).await,
        &|status, a| check_repaired_blacklist(status, a, repaired),
    );

    let published = approve_policy_change(fed).await;
    let q = licensing(&s.blacklisted.resident_id, "blacklist-check");
    run(
        "Two security officers approve a policy change: the signed bundle is verified by the coordinator and by every department itself, and the next answer names the version that decided it",
        match &published {
            Ok(_) => ask_in_tour(fed, &q).await,
            Err(e) => Err(e.clone()),
        },
        &|status, a| {
            let publication = published.as_ref().map_err(Clone::clone)?;
            expect(
                publication.get("complete") == Some(&Value::Bool(true)),
                "expected the coordinator and every node to run the bundle",
            )?;
            expect(status == 200, "expected 200")?;
            expect(
                a.get("policy_version").and_then(Value::as_str) == Some(APPROVED_VERSION),
                "expected the approved version to decide",
            )
        },
    );

    running.stop_node("hrss").await;
    let q = licensing(&s.blacklisted.resident_id, "blacklist-check");
    run(
        "A department is down: hrss is shown as `unavailable`, the others still answer, and the answer says it is partial",
        ask_in_tour(fed, &q).await,
        &|status, a| {
            expect(status == 200, "expected 200")?;
            expect(node_status(a, "hrss") == Some("unavailable"), "expected hrss: unavailable")?;
            expect(node_status(a, "court") == Some("answered"), "expected court: answered")?;
            expect(a.get("complete") == Some(&Value::Bool(false)), "expected complete: false")
        },
    );
    if let Err(e) = running.restart_node(fed, "hrss", tap).await {
        tracing::error!(error = %e, "could not restart hrss");
    }
    let _ = records_of;
    steps
}

/// Runs `fedq demo`.
pub fn run(args: DemoArgs) -> Result<ExitCode, DemoError> {
    let temp;
    let root = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(setup("--dir"))?;
            d.clone()
        }
        None => {
            temp = tempfile::Builder::new()
                .prefix("fedq-demo-")
                .tempdir()
                .map_err(setup("temporary directory"))?;
            temp.path().to_owned()
        }
    };
    let started = Instant::now();
    println!("fedq demo — a federation of Changsha departments that answer questions about a person without pooling records\n");
    println!("Building the federation in {}", root.display());
    let fed = build(
        &root,
        &BuildOptions {
            persons: args.persons,
            seed: args.seed,
            verbose: true,
            well_known_ports: true,
        },
    )?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(setup("runtime"))?;
    runtime.block_on(async {
        let mut running = Running::start(&fed, None).await?;
        println!(
            "  {} nodes on QUIC (127.0.0.1), coordinator on https://{} — up in {:.1} s\n",
            fed.nodes.len(),
            fed.coordinator,
            started.elapsed().as_secs_f64()
        );
        let steps = tour(&fed, &mut running, None).await;
        let mut all_ok = true;
        for (i, step) in steps.iter().enumerate() {
            println!("── {}. {}", i + 1, step.headline);
            if step.status == 200 {
                print!("{}", client::render(&step.answer));
            } else {
                println!(
                    "   HTTP {}: {}",
                    step.status,
                    step.answer.get("detail").and_then(Value::as_str).unwrap_or("")
                );
            }
            match &step.check {
                Ok(()) => println!("   ✓ as expected\n"),
                Err(why) => {
                    all_ok = false;
                    println!("   ✗ NOT as expected: {why}\n");
                }
            }
        }
        if args.no_serve {
            running.stop().await;
            return Ok(if all_ok { ExitCode::SUCCESS } else { ExitCode::FAILURE });
        }
        let pki = fed.layout.pki();
        println!("The federation stays up until Ctrl-C. Try it:\n");
        println!(
            "  cargo run --release -- query --coordinator https://{} --cert {}/market-regulation.licensing.crt --key {}/market-regulation.licensing.key --ca {}/ca.crt \\\n      --subject {} --purpose administrative-licensing --basis '{LICENSING_BASIS}' --case '{LICENSING_CASE}' --view blacklist-check\n",
            fed.coordinator,
            pki.display(),
            pki.display(),
            pki.display(),
            fed.scenario.blacklisted.resident_id
        );
        println!(
            "  cargo run --release -- query --gateway https://localhost:{} --token @{} --ca {} \\\n      --subject {} --purpose administrative-licensing --basis '{LICENSING_BASIS}' --case '{LICENSING_CASE}' --view blacklist-check   # as the licensing office's app, through its gateway\n  cargo run --release -- audit list --config {}   # the gateway's own log: which app asked\n",
            fed.gateway.port(),
            fed.layout.gateway_token().display(),
            fed.layout.gateway_ca().display(),
            fed.scenario.blacklisted.resident_id,
            fed.layout.gateway_config().display(),
        );
        println!(
            "  curl --cacert {p}/ca.crt --cert {p}/market-regulation.licensing.crt --key {p}/market-regulation.licensing.key \\\n      https://localhost:{port}/v1/nodes   # the nodes a requester opens sessions with; a query without the requester's\n      # per-node proofs is refused 400 (fedq query makes them; see the operator guide, \"Request proofs\")\n",
            p = pki.display(),
            port = fed.coordinator.port(),
        );
        println!(
            "  cargo run --release -- consent issue --dir {p} --authority {CONSENT_AUTHORITY} --subject {id} \\\n      --requester {SELF_QUERY_OFFICE} --purpose self-query --target view:credit-report --valid-for 1h --uses 1 --out consent.jwt\n  cargo run --release -- query --coordinator https://{c} --cert {p}/{SELF_QUERY_OFFICE}.crt --key {p}/{SELF_QUERY_OFFICE}.key --ca {p}/ca.crt \\\n      --subject {id} --purpose self-query --view credit-report --consent @consent.jwt   # again: every department refuses it, used up\n",
            p = pki.display(),
            c = fed.coordinator,
            id = fed.scenario.tax_arrears.resident_id
        );
        println!(
            "  cargo run --release -- audit list --config {}   # who asked what, without raw IDs\n",
            fed.layout.coordinator_config().display()
        );
        println!(
            "  cargo run --release -- policy status --coordinator https://{} --cert {p}/officer-wang.crt --key {p}/officer-wang.key --ca {p}/ca.crt   # which policy version each process runs\n",
            fed.coordinator,
            p = pki.display()
        );
        fedq_ops::shutdown_signal().await;
        println!("stopping…");
        running.stop().await;
        Ok(if all_ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use serde_json::json;

    fn report(sections: Value) -> Value {
        json!({ "view_result": { "kind": "credit-report", "sections": sections, "unverified": [] } })
    }

    fn empty_section(dataset: &str) -> Value {
        json!({ "label": "x", "dataset": dataset, "records": [], "summaries": {} })
    }

    #[test]
    fn the_expired_check_passes_only_on_a_report_with_the_section_and_nothing_in_it() {
        let expired = vec!["court.dishonest_debtors".to_owned()];
        let good = report(json!([
            empty_section("court.dishonest_debtors"),
            empty_section("tax.arrears")
        ]));
        assert_eq!(check_expired_report(200, &good, &expired), Ok(()));
        // The view, the sections, the dataset's section missing; a source unverified.
        for bad in [
            json!({}),
            json!({ "view_result": { "kind": "credit-report", "unverified": [] } }),
            report(json!([])),
            report(json!([empty_section("tax.arrears")])),
            json!({ "view_result": { "kind": "credit-report",
                "sections": [empty_section("court.dishonest_debtors")],
                "unverified": [{ "dataset": "tax.arrears", "reason": "unavailable" }] } }),
        ] {
            assert!(check_expired_report(200, &bad, &expired).is_err(), "{bad}");
        }
        // Something disclosed: a record, or a summary that is not empty.
        let mut record = empty_section("court.dishonest_debtors");
        record["records"] = json!([{ "listed_on": "2022-01-01" }]);
        let mut counted = empty_section("court.dishonest_debtors");
        counted["summaries"] = json!({ "case_no": { "count": 1 } });
        for disclosed in [record, counted] {
            let a = report(json!([disclosed]));
            assert!(check_expired_report(200, &a, &expired).is_err(), "{a}");
        }
        let mut zero = empty_section("court.dishonest_debtors");
        zero["summaries"] = json!({ "case_no": { "exists": false } });
        assert_eq!(
            check_expired_report(200, &report(json!([zero])), &expired),
            Ok(())
        );
        assert!(check_expired_report(403, &good, &expired).is_err());
        assert!(check_expired_report(200, &good, &[]).is_err());
    }

    #[test]
    fn the_repaired_check_fails_without_listings_or_with_a_source_unverified() {
        let good =
            json!({ "view_result": { "kind": "blacklist", "listings": [], "unverified": [] } });
        assert_eq!(check_repaired_blacklist(200, &good, true), Ok(()));
        for bad in [
            json!({}),
            json!({ "view_result": { "kind": "blacklist", "unverified": [] } }),
            json!({ "view_result": { "kind": "blacklist", "listings": [] } }),
            json!({ "view_result": { "kind": "blacklist", "listings": [],
                "unverified": [{ "dataset": "court.dishonest_debtors", "reason": "timed out" }] } }),
            json!({ "view_result": { "kind": "blacklist", "listings": [{ "label": "x" }], "unverified": [] } }),
            json!({ "view_result": { "kind": "credit-report", "listings": [], "unverified": [] } }),
        ] {
            assert!(check_repaired_blacklist(200, &bad, true).is_err(), "{bad}");
        }
        assert!(check_repaired_blacklist(200, &good, false).is_err());
    }
}
