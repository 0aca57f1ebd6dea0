//! `fedq demo`: builds a throwaway Changsha federation on 127.0.0.1 with
//! [`fedq_sandbox`] — a CA and certificates, one node per department on SQLite filled with
//! synthetic data, the coordinator, the reference catalogue and policy — then tours what
//! fedq is for through the real requester API ([`tour()`]), and stays up until the
//! shutdown signal it is given.
//!
//! The federation directory (`--dir`, or a temporary one) is laid out as
//! [`fedq_sandbox::Layout`] documents, the same way an operator would lay out a real one.
//! The demo runs in its caller's runtime and never builds one of its own.

#![warn(missing_docs, unreachable_pub)]

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use fedq_coordinator::client;
use fedq_sandbox::{
    build, BuildOptions, Running, SandboxError, CONSENT_AUTHORITY, LICENSING_BASIS, LICENSING_CASE,
    SELF_QUERY_OFFICE,
};
use serde_json::Value;

mod tour;

pub use tour::{tour, Step, APPROVED_VERSION};

/// Arguments of `fedq demo`.
#[derive(Debug, Clone)]
pub struct DemoArgs {
    /// Exit after the tour (exit code 0 only if every answer was as expected).
    pub no_serve: bool,
    /// Keep the whole federation in this directory (certificates, configs, data, stores,
    /// logs); a temporary one otherwise.
    pub dir: Option<PathBuf>,
    /// How many synthetic persons to generate.
    pub persons: u64,
    /// Seed of the synthetic data.
    pub seed: u64,
}

/// Errors of the demo.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Setting up the federation failed.
    #[error("demo set-up: {0}")]
    Setup(#[from] SandboxError),
}

fn setup<E: std::fmt::Display>(what: &str) -> impl Fn(E) -> DemoError + '_ {
    move |e| DemoError::Setup(SandboxError::Setup(format!("{what}: {e}")))
}

/// Runs `fedq demo` in the caller's runtime; after the tour, the federation serves until
/// `shutdown` completes (unless `--no-serve`).
pub async fn run(
    args: DemoArgs,
    shutdown: impl Future<Output = ()>,
) -> Result<ExitCode, DemoError> {
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
    // The tour shows the departments witnessing each other's logs within its run.
    fed.witness_quickly(500)?;
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
        if let Some(summary) = step.answer.get("summary").and_then(Value::as_str) {
            println!("   {summary}");
        } else if step.status == 200 {
            print!("{}", client::render(&step.answer));
        } else {
            println!(
                "   HTTP {}: {}",
                step.status,
                step.answer
                    .get("detail")
                    .and_then(Value::as_str)
                    .unwrap_or("")
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
        return Ok(if all_ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
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
    let policy = fed.layout.policy();
    let policy_dir = policy.parent().unwrap_or(std::path::Path::new("."));
    println!(
        "  cp {policy} officer-policy.toml   # an officer's working copy, then the officers' console (open the link it prints):\n  cargo run --release -- console --cert {p}/officer-zhang.crt --key {p}/officer-zhang.key --policy officer-policy.toml \\\n      --catalogue {dir}/catalogue --in-force {policy} --bundles {dir} --coordinator https://{c} --ca {p}/ca.crt \\\n      --coordinator-config {coordinator} --node-config {court}\n",
        policy = policy.display(),
        dir = policy_dir.display(),
        c = fed.coordinator,
        p = pki.display(),
        coordinator = fed.layout.coordinator_config().display(),
        court = fed.layout.node_config("court").display(),
    );
    shutdown.await;
    println!("stopping…");
    running.stop().await;
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
