//! `fedq bench`: the figures users compare fedq by, measured in one run on this host.
//!
//! 0. Policy decisions: fedq's compiled engine against the `cedar-policy` crate on the same
//!    rules (`fedq_policy::comparison`), median µs per 40-field decision and the ratio at
//!    100, 500 and 2,000 rules. The Cedar side is compiled in only with the `cedar` feature
//!    (heavy to build); without it the report says so and how to get it.
//! 1. Node internals: import rows/s into SQLite, indexed lookup µs at the chosen size,
//!    durable audit appends/s (group commit) with and without signed tree heads, audit
//!    verification entries/s, checkpoint signing, witness cosigning and proof sizes
//!    (`audit` in the report), the requester
//!    proof's cost (`request_proof_us`) and sealing's (`seal_us`: µs per seal and per open
//!    of a 2 KiB payload each way, one thread; lookups seal the subject this way).
//! 2. Lookups through fedq: a process for every node of the federation (six loaded, each
//!    with `--records` records, and civil-affairs, which no query asks) and the coordinator
//!    process on loopback; a load generator in this process asks over
//!    kept-alive HTTPS connections, fanning out to 1, 3 and 6 nodes, at each concurrency;
//!    p50/p90/p99 and throughput.
//! 3. Memory: peak RSS of each process after the load.
//! 4. The postgres_fdw baseline ([`fdw`]) on the same records, with fedq/baseline ratios.
//!
//! `--sections` picks parts; the report's `targets` says for every target of the issues
//! whether this run met it, missed it, or did not measure it.
//!
//! Writes `report.json` and `latency.svg` to `--out` (default `target/bench-report`).
//! Not run in CI: see docs/performance.md.

#![warn(missing_docs, unreachable_pub)]
// Indexing here is on `serde_json::Value`, whose `Index` returns `Null` for a missing key
// and never panics.
#![allow(clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod audit;
pub mod fdw;
pub mod proof;

use fedq_coordinator::client::ApiConnection;
use fedq_coordinator::query::QueryRequest;
use fedq_sandbox::{build, BuildOptions, Federation, LICENSING_BASIS, LICENSING_CASE};
use serde_json::{json, Value};

/// What `fedq bench` runs (the binary parses the command line into this).
#[derive(Debug, Clone)]
pub struct BenchArgs {
    /// Records per node.
    pub records: u64,
    /// Records in the court node, whose store the node-internal lookup figure is measured
    /// on (default: `records`).
    pub court_records: Option<u64>,
    /// Concurrency levels.
    pub concurrency: Vec<usize>,
    /// Seconds of measured load per point (after one second of warm-up).
    pub seconds: u64,
    /// Which parts to run. `policy` needs no federation; every other section loads the six
    /// stores first.
    pub sections: Vec<Section>,
    /// Skip the postgres_fdw baseline (same as leaving `baseline` out of `sections`).
    pub no_baseline: bool,
    /// Where the report goes.
    pub out: PathBuf,
}

impl Default for BenchArgs {
    /// What `fedq bench` runs with no options.
    fn default() -> Self {
        Self {
            records: 1_000_000,
            court_records: None,
            concurrency: vec![1, 8, 64, 256],
            seconds: 5,
            sections: Section::ALL.to_vec(),
            no_baseline: false,
            out: PathBuf::from("target/bench-report"),
        }
    }
}

/// A part of the bench.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    /// fedq's policy engine against `cedar-policy` (Cedar only in builds with the `cedar`
    /// feature) at 100, 500 and 2,000 rules.
    Policy,
    /// Import, lookup inside the node, audit appends and verification.
    Internals,
    /// Lookups through the coordinator and node processes, fan-out 1, 3 and 6.
    Lookups,
    /// The same lookups through PostgreSQL and postgres_fdw.
    Baseline,
}

impl Section {
    /// Every section, in the order they run.
    pub const ALL: [Section; 4] = [
        Section::Policy,
        Section::Internals,
        Section::Lookups,
        Section::Baseline,
    ];

    fn name(self) -> &'static str {
        match self {
            Section::Policy => "policy",
            Section::Internals => "internals",
            Section::Lookups => "lookups",
            Section::Baseline => "baseline",
        }
    }
}

impl BenchArgs {
    /// The sections to run, in order, without repeats.
    /// The sections to run, each once, in the order they run.
    pub fn selected(&self) -> Vec<Section> {
        let mut s: Vec<Section> = self
            .sections
            .iter()
            .copied()
            .filter(|s| !(self.no_baseline && *s == Section::Baseline))
            .collect();
        s.sort();
        s.dedup();
        s
    }
}

/// Errors of the bench.
#[derive(Debug, thiserror::Error)]
#[error("bench: {0}")]
pub struct BenchError(String);

pub(crate) fn err<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> BenchError {
    move |e| BenchError(format!("{what}: {e}"))
}

/// The nodes loaded with records, and the dataset each gets.
const LOADED: [(&str, &str); 6] = [
    ("court", "dishonest_debtors"),
    ("tax", "arrears"),
    ("hrss", "social_insurance_arrears"),
    ("public-security", "serious_traffic_violations"),
    ("market-regulation", "administrative_penalties"),
    ("education", "student_loan_default"),
];

pub(crate) fn resident_id(i: u64) -> String {
    // Spread over districts and birth dates; sequence from i.
    const DISTRICTS: [&str; 9] = [
        "430102", "430103", "430104", "430105", "430111", "430112", "430121", "430181", "430182",
    ];
    let district = DISTRICTS.get((i % 9) as usize).copied().unwrap_or("430102");
    let day = i / 9;
    let year = 1950 + (day / 336) % 56;
    let month = 1 + (day / 28) % 12;
    let dom = 1 + day % 28;
    let seq = (i / 9 / 336 / 56) % 1000;
    let first17 = format!("{district}{year:04}{month:02}{dom:02}{seq:03}");
    let mut bytes = [0u8; 17];
    bytes.copy_from_slice(first17.as_bytes().get(..17).unwrap_or(&[b'0'; 17]));
    let mut id = first17;
    id.push(char::from(fedq_wire::resident_id::check_character(&bytes)));
    id
}

/// Writes `n` records of `dataset` to a CSV, cloning a valid row of the synthetic export
/// with a unique key and subject per row. Returns the path.
fn write_bulk_csv(
    fed: &Federation,
    dept: &str,
    dataset: &str,
    n: u64,
) -> Result<PathBuf, BenchError> {
    let sample = fed.layout.data().join(format!("{dept}/{dataset}.csv"));
    let mut reader = csv::Reader::from_path(&sample).map_err(err("read sample export"))?;
    let headers = reader.headers().map_err(err("read sample export"))?.clone();
    let template = reader
        .records()
        .next()
        .ok_or_else(|| BenchError(format!("no sample row in {}", sample.display())))?
        .map_err(err("read sample export"))?;
    let catalogue = fedq_policy::load::load_catalogue(
        &fed.layout
            .root
            .join(format!("policy/catalogue/{dept}.toml")),
    )
    .map_err(err("catalogue"))?;
    let ds = catalogue
        .dataset(dataset)
        .ok_or_else(|| BenchError(format!("no dataset {dataset}")))?;
    let out = fed.layout.root.join(format!("bulk/{dept}-{dataset}.csv"));
    std::fs::create_dir_all(out.parent().unwrap_or(Path::new("."))).map_err(err("bulk dir"))?;
    let mut writer = csv::Writer::from_path(&out).map_err(err("write bulk"))?;
    writer.write_record(&headers).map_err(err("write bulk"))?;
    let today = fed.today;
    let window_start = ds.window_start.clone().unwrap_or_default();
    for i in 0..n {
        let row: Vec<String> = headers
            .iter()
            .zip(template.iter())
            .map(|(h, v)| {
                if h == ds.key {
                    format!("BENCH-{i:09}")
                } else if h == ds.subject {
                    resident_id(i)
                } else if h == window_start {
                    // Spread over the last six years so the window filters some out.
                    let d = today - time::Duration::days((i % (6 * 365)) as i64);
                    d.to_string()
                } else {
                    v.to_owned()
                }
            })
            .collect();
        writer.write_record(&row).map_err(err("write bulk"))?;
    }
    writer.flush().map_err(err("write bulk"))?;
    Ok(out)
}

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted.get(idx).map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

struct Proc {
    name: String,
    child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `fedq ARGS` and waits for a line on stderr containing `ready`.
fn spawn(name: &str, args: &[&str], ready: &str, logs: &Path) -> Result<Proc, BenchError> {
    let exe = std::env::current_exe().map_err(err("current exe"))?;
    let mut child = Command::new(exe)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(err("spawn"))?;
    let stderr = child
        .stderr
        .take()
        .ok_or_else(|| BenchError("no stderr".into()))?;
    let (tx, rx) = std::sync::mpsc::channel();
    let ready = ready.to_owned();
    let log_path = logs.join(format!("{name}.log"));
    std::thread::spawn(move || {
        let mut log = std::fs::File::create(log_path).ok();
        let mut told = false;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if !told && line.contains(&ready) {
                let _ = tx.send(());
                told = true;
            }
            if let Some(f) = log.as_mut() {
                let _ = writeln!(f, "{line}");
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .map_err(|_| BenchError(format!("{name} did not start within 60 s; see its log")))?;
    Ok(Proc {
        name: name.to_owned(),
        child,
    })
}

fn query_for(fanout: usize, subject: String) -> QueryRequest {
    let (view, datasets) = match fanout {
        1 => (
            None,
            Some(vec![
                "court.dishonest_debtors.case_no".to_owned(),
                "court.dishonest_debtors.listed_on".to_owned(),
            ]),
        ),
        3 => (Some("blacklist-check".to_owned()), None),
        _ => (Some("green-channel".to_owned()), None),
    };
    QueryRequest {
        subject,
        purpose: "administrative-licensing".into(),
        legal_basis: Some(LICENSING_BASIS.into()),
        consent: None,
        case_reference: Some(LICENSING_CASE.into()),
        view,
        datasets,
        ..QueryRequest::default()
    }
}

/// Runs `fedq bench` in the caller's runtime (which the load generator's tasks share).
pub async fn run(args: BenchArgs) -> Result<(), BenchError> {
    let started = Instant::now();
    let sections = args.selected();
    std::fs::create_dir_all(&args.out).map_err(err("--out"))?;
    let logs = args.out.join("logs");
    std::fs::create_dir_all(&logs).map_err(err("logs"))?;
    println!(
        "fedq bench: sections {}; {} records per node, concurrency {:?}, {} s per point",
        sections
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(","),
        args.records,
        args.concurrency,
        args.seconds
    );
    if cfg!(debug_assertions) {
        println!("  warning: this is a debug build; its figures say nothing about fedq (build with --release)");
    }
    let mut report = BTreeMap::<String, Value>::new();
    report.insert("host".into(), host());
    report.insert(
        "cores".into(),
        json!(std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)),
    );
    report.insert(
        "command".into(),
        json!(std::env::args().skip(1).collect::<Vec<_>>().join(" ")),
    );
    report.insert(
        "sections".into(),
        json!(sections.iter().map(|s| s.name()).collect::<Vec<_>>()),
    );
    report.insert("records_per_node".into(), json!(args.records));
    let mut figures = Figures::default();

    // 0. Policy decisions, fedq's engine against Cedar's, before anything else loads the
    //    host.
    if sections.contains(&Section::Policy) {
        report.insert("policy".into(), policy_section(&mut figures)?);
    }

    if sections.iter().any(|s| *s != Section::Policy) {
        let root = args.out.join("federation");
        let _ = std::fs::remove_dir_all(&root);
        let fed = build(
            &root,
            &BuildOptions {
                persons: 5000,
                seed: 1,
                verbose: false,
                well_known_ports: false,
            },
        )
        .map_err(err("build federation"))?;
        // The reference policy limits the licensing office to 60 queries a minute; a load
        // generator is not a licensing office, so the bench's copy of the policy lifts the
        // rate limits (and only those).
        fed.lift_rate_limits().map_err(err("policy"))?;

        // 1. Import (every section but the policy one needs the loaded stores).
        let exports = import_section(&args, &fed, &mut report, &mut figures)?;

        // 2–3. Node internals: lookup inside the node, audit appends and verification.
        if sections.contains(&Section::Internals) {
            internals_section(&args, &fed, &mut report, &mut figures).await?;
        }

        // 4. The federation as separate processes, under load.
        let mut points = Vec::new();
        if sections.contains(&Section::Lookups) {
            points = lookups_section(&args, &fed, &logs, &mut report).await?;
            figures.lookups = points.clone();
        }

        // 5. The baseline: same records, same host, same fan-outs and concurrency levels.
        if sections.contains(&Section::Baseline) {
            baseline_section(&args, &exports, &points, &mut report, &mut figures).await?;
        }
        for (_, csv, _, _) in &exports {
            let _ = std::fs::remove_file(csv);
        }
    }

    let targets = figures.targets();
    println!("targets:");
    for t in &targets {
        let measured = match &t["measured"] {
            Value::String(s) => s.clone(),
            v => v.to_string(),
        };
        println!(
            "  {:<12} {} (target {}): {measured}",
            t["status"].as_str().unwrap_or_default().to_uppercase(),
            t["what"].as_str().unwrap_or_default(),
            t["target"].as_str().unwrap_or_default(),
        );
    }
    report.insert("targets".into(), json!(targets));
    report.insert("elapsed_s".into(), json!(started.elapsed().as_secs()));
    let report = Value::Object(report.into_iter().collect());
    let json_path = args.out.join("report.json");
    std::fs::write(
        &json_path,
        serde_json::to_string_pretty(&report).unwrap_or_default(),
    )
    .map_err(err("report"))?;
    if sections.contains(&Section::Lookups) {
        let svg_path = args.out.join("latency.svg");
        std::fs::write(&svg_path, chart(&report)).map_err(err("chart"))?;
        println!("wrote {} and {}", json_path.display(), svg_path.display());
    } else {
        println!("wrote {}", json_path.display());
    }
    Ok(())
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// What the host was, so a report read later says where its figures came from.
fn host() -> Value {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned());
    let mem_kib: Option<u64> = read("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok());
    json!({
        "date": time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .ok(),
        "cpu": cpu,
        "memory_gib": mem_kib.map(|k| (k as f64 / 1024.0 / 1024.0 * 10.0).round() / 10.0),
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
        // Other work on the host makes every figure noisier; the load average at the start
        // says how busy it was.
        "loadavg_at_start": read("/proc/loadavg").split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        "cedar_built": fedq_policy::comparison::CEDAR_BUILT,
        // A debug build's figures are not fedq's: say so in the report itself.
        "release_build": !cfg!(debug_assertions),
    })
}

/// How long each engine is timed at each policy size.
const POLICY_BUDGET: Duration = Duration::from_secs(3);

/// How to build the Cedar side, for reports made without it.
const WITH_CEDAR: &str = "cargo run --release --features cedar -- bench (or scripts/bench.sh)";

fn policy_section(figures: &mut Figures) -> Result<Value, BenchError> {
    use fedq_policy::comparison::{self, FIELDS, SIZES};
    let timing = |t: &comparison::Timing| {
        json!({
            "median": round3(t.median.as_secs_f64() * 1e6),
            "min": round3(t.min.as_secs_f64() * 1e6),
            "max": round3(t.max.as_secs_f64() * 1e6),
            "batches": t.batches,
            "calls_per_batch": t.batch,
        })
    };
    if !comparison::CEDAR_BUILT {
        println!("  policy: this build has no Cedar side; fedq only (for both: {WITH_CEDAR})");
    }
    let mut sizes = Vec::new();
    for n in SIZES {
        let c = comparison::compare(n, POLICY_BUDGET).map_err(err("policy comparison"))?;
        let fedq_us = c.fedq.median.as_secs_f64() * 1e6;
        let mut line = format!(
            "  policy, {n:>4} rules, 40-field decision: fedq {fedq_us:.2} µs ({} rules match, {} fields released)",
            c.fedq_rules_matched, c.fedq_fields_released
        );
        if let (Some((cedar, allowed)), Some(ratio)) = (c.cedar, c.ratio()) {
            line += &format!(
                "  cedar {:.0} µs ({allowed} fields allowed)  cedar/fedq {ratio:.0}×",
                cedar.median.as_secs_f64() * 1e6
            );
        }
        println!("{line}");
        if n == 2000 {
            figures.policy_us_at_2000 = Some(round3(fedq_us));
            figures.policy_ratio_at_2000 = c.ratio();
        }
        sizes.push(json!({
            "rules": n,
            "fedq_us": timing(&c.fedq),
            "fedq_rules_matched": c.fedq_rules_matched,
            "fedq_fields_released": c.fedq_fields_released,
            "cedar_us": c.cedar.map(|(t, _)| timing(&t)),
            "cedar_fields_allowed": c.cedar.map(|(_, a)| a),
            "cedar_over_fedq": c.ratio().map(f64::round),
        }));
    }
    Ok(json!({
        "what": format!(
            "median time per decision of one {FIELDS}-field request; fedq's compiled table \
             against cedar-policy on the same rules as permit/forbid policies (one Cedar \
             call per field), both in this process, one after the other"
        ),
        "cedar": if comparison::CEDAR_BUILT {
            "measured in this run".to_owned()
        } else {
            format!("not built into this binary; for the comparison run: {WITH_CEDAR}")
        },
        "sizes": sizes,
    }))
}

/// The loaded stores' exports: department, CSV, subject column, key column.
type Exports = Vec<(&'static str, PathBuf, String, String)>;

fn import_section(
    args: &BenchArgs,
    fed: &Federation,
    report: &mut BTreeMap<String, Value>,
    figures: &mut Figures,
) -> Result<Exports, BenchError> {
    let mut imports = Vec::new();
    let court_records = args.court_records.unwrap_or(args.records);
    let mut exports = Vec::new();
    for (dept, dataset) in LOADED {
        let n = if dept == "court" {
            court_records
        } else {
            args.records
        };
        let csv = write_bulk_csv(fed, dept, dataset, n)?;
        let catalogue = fedq_policy::load::load_catalogue(
            &fed.layout
                .root
                .join(format!("policy/catalogue/{dept}.toml")),
        )
        .map_err(err("catalogue"))?;
        let ds = catalogue
            .dataset(dataset)
            .ok_or_else(|| BenchError("dataset".into()))?;
        let r = fedq_node::import::import(&fed.layout.store(dept), ds, &csv, &Default::default())
            .map_err(err("import"))?;
        let rate = r.rows as f64 / r.elapsed.as_secs_f64().max(1e-9);
        println!(
            "  import {dept}.{dataset}: {} rows in {:.2} s = {rate:.0} rows/s",
            r.rows,
            r.elapsed.as_secs_f64()
        );
        imports.push(rate);
        exports.push((dept, csv, ds.subject.clone(), ds.key.clone()));
    }
    imports.sort_by(f64::total_cmp);
    let import_median = imports.get(imports.len() / 2).copied().unwrap_or(0.0);
    report.insert(
        "import_rows_per_s_median".into(),
        json!(import_median.round()),
    );
    figures.import_rows_per_s = Some(import_median.round());
    Ok(exports)
}

async fn internals_section(
    args: &BenchArgs,
    fed: &Federation,
    report: &mut BTreeMap<String, Value>,
    figures: &mut Figures,
) -> Result<(), BenchError> {
    // Lookup inside the node (store only, one indexed statement).
    let court_records = args.court_records.unwrap_or(args.records);
    let store =
        fedq_node::store::SqliteStore::open(&fed.layout.store("court")).map_err(err("store"))?;
    let mut lookups = Vec::with_capacity(20_000);
    for i in 0..20_000u64 {
        let id = resident_id((i * 7919) % court_records);
        let t = Instant::now();
        // What a serving node reads per lookup (the subject's rows, read back per dataset).
        let found = store
            .evidence_of(&id, &["court.dishonest_debtors"])
            .map_err(err("lookup"))?;
        lookups.push(t.elapsed());
        let records = match found.get("court.dishonest_debtors") {
            Some(fedq_node::evidence::Evidence::Records(r)) => r.len(),
            _ => 0,
        };
        if records == 0 {
            return Err(BenchError(
                "a lookup of a loaded subject found nothing".into(),
            ));
        }
    }
    lookups.sort();
    let lookup_p50_us = percentile(&lookups, 0.5) * 1e3;
    println!(
        "  node lookup at {} records: p50 {lookup_p50_us:.1} µs, p99 {:.1} µs",
        court_records,
        percentile(&lookups, 0.99) * 1e3
    );
    report.insert("node_lookup_us".into(), json!({ "records": court_records, "p50": lookup_p50_us, "p99": percentile(&lookups, 0.99) * 1e3 }));
    figures.node_lookup_p50_us = Some(lookup_p50_us);
    drop(store);

    // The audit log: durable appends with and without signed heads, checkpoints,
    // witnessing, and what travels (issue 18).
    let audit = audit::section(&args.out, &fed.layout.pki()).await?;
    report.insert("audit".into(), audit.report);
    figures.audit_appends_per_s = Some(audit.signed_appends_per_s.round());

    // The requester proof (issue 14): public-key work once per session, a MAC per query.
    let costs = proof::proof_costs(
        &fed.layout.pki(),
        "market-regulation.licensing",
        "court",
        200,
        20_000,
    )?;
    println!(
        "  request proof: {:.1} µs per check at a node (session cached); session open {:.0} µs at the node, {:.0} µs at the requester",
        costs.check_us, costs.node_open_us, costs.requester_open_us
    );
    report.insert(
        "request_proof_us".into(),
        json!({
            "check_per_node_per_query": round3(costs.check_us),
            "session_open_node": round3(costs.node_open_us),
            "session_open_requester": round3(costs.requester_open_us),
        }),
    );

    // Sealing over the same session (each lookup's subject is sealed this way; answers
    // not yet): AES-256-GCM in a compact JWE, one 2 KiB payload each way.
    let seal = proof::seal_costs(
        &fed.layout.pki(),
        "market-regulation.licensing",
        "court",
        2048,
        20_000,
    )?;
    println!(
        "  seal ({} B): query sealed {:.1} µs at the requester, opened {:.1} µs at the node; answer sealed {:.1} µs at the node, opened {:.1} µs at the requester",
        seal.payload_bytes, seal.seal_query_us, seal.open_query_us, seal.seal_answer_us, seal.open_answer_us
    );
    report.insert(
        "seal_us".into(),
        json!({
            "payload_bytes": seal.payload_bytes,
            "seal_query_requester": round3(seal.seal_query_us),
            "open_query_node": round3(seal.open_query_us),
            "seal_answer_node": round3(seal.seal_answer_us),
            "open_answer_requester": round3(seal.open_answer_us),
        }),
    );
    Ok(())
}

async fn lookups_section(
    args: &BenchArgs,
    fed: &Federation,
    logs: &Path,
    report: &mut BTreeMap<String, Value>,
) -> Result<Vec<Value>, BenchError> {
    let mut procs = Vec::new();
    // Every node the coordinator is configured with (the unloaded ones too): a node it
    // knows but cannot reach would cost each connection a session attempt a second.
    for dept in fed.nodes.keys() {
        let cfg = fed.layout.node_config(dept);
        procs.push(spawn(
            dept,
            &["node", "serve", "--config", &cfg.to_string_lossy()],
            "node serving",
            logs,
        )?);
    }
    let coord_cfg = fed.layout.coordinator_config();
    let coordinator = spawn(
        "coordinator",
        &[
            "coordinator",
            "serve",
            "--config",
            &coord_cfg.to_string_lossy(),
        ],
        "coordinator serving",
        logs,
    )?;
    let url = format!("https://{}", fed.coordinator);
    let pki = fed.layout.pki();
    let cert = pki.join("market-regulation.licensing.crt");
    let key = pki.join("market-regulation.licensing.key");
    let ca = pki.join("ca.crt");
    let mut points = Vec::new();
    for fanout in [1usize, 3, 6] {
        for &conc in &args.concurrency {
            let point = load_point(
                &url,
                &cert,
                &key,
                &ca,
                fanout,
                conc,
                args.seconds,
                args.records,
            )
            .await?;
            println!(
                "  fan-out {fanout} × concurrency {conc:>3}: {:>7.0} lookups/s  p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  errors {}",
                point["throughput_per_s"].as_f64().unwrap_or(0.0),
                point["p50_ms"].as_f64().unwrap_or(0.0),
                point["p90_ms"].as_f64().unwrap_or(0.0),
                point["p99_ms"].as_f64().unwrap_or(0.0),
                point["errors"]
            );
            points.push(point);
        }
    }
    let mut rss = BTreeMap::new();
    for p in procs.iter().chain(std::iter::once(&coordinator)) {
        rss.insert(p.name.clone(), json!(peak_rss_kib(p.child.id())));
    }
    println!(
        "  peak RSS (KiB): {}",
        serde_json::to_string(&rss).unwrap_or_default()
    );
    report.insert("lookups".into(), json!(points));
    report.insert("peak_rss_kib".into(), json!(rss));
    drop(coordinator);
    drop(procs);
    Ok(points)
}

async fn baseline_section(
    args: &BenchArgs,
    exports: &Exports,
    points: &[Value],
    report: &mut BTreeMap<String, Value>,
    figures: &mut Figures,
) -> Result<(), BenchError> {
    let departments: Vec<fdw::Department<'_>> = exports
        .iter()
        .map(|(dept, csv, subject, key)| fdw::Department {
            name: dept,
            csv,
            subject,
            granted: key,
        })
        .collect();
    let cluster = fdw::start()?;
    let t = Instant::now();
    fdw::load(&cluster, &departments).await?;
    println!(
        "  baseline: PostgreSQL + postgres_fdw, same records, loaded in {:.0} s",
        t.elapsed().as_secs_f64()
    );
    let mut baseline = Vec::new();
    let mut audited = Vec::new();
    let mut ratios = Vec::new();
    for fanout in [1usize, 3, 6] {
        for &conc in &args.concurrency {
            let ours = points
                .iter()
                .find(|p| {
                    p["fanout"].as_u64() == Some(fanout as u64)
                        && p["concurrency"].as_u64() == Some(conc as u64)
                })
                .cloned()
                .unwrap_or(Value::Null);
            let mut row = json!({
                "fanout": fanout,
                "concurrency": conc,
                "fedq_per_s": ours["throughput_per_s"],
            });
            for (variant, name) in [
                (fdw::Variant::Plain, "baseline"),
                (fdw::Variant::Audited, "audited baseline"),
            ] {
                let point = fdw::load_point(
                    &cluster,
                    &departments,
                    fanout,
                    conc,
                    args.seconds,
                    resident_id,
                    args.records,
                    variant,
                )
                .await?;
                let ratio = |k: &str| {
                    ours[k].as_f64().unwrap_or(f64::NAN) / point[k].as_f64().unwrap_or(f64::NAN)
                };
                println!(
                    "  {name:<16} fan-out {fanout} × concurrency {conc:>3}: {:>7.0} lookups/s  p50 {:.2} ms  p99 {:.2} ms  errors {}  | fedq/{name} throughput {:.2}×, p99 {:.2}×",
                    point["throughput_per_s"].as_f64().unwrap_or(0.0),
                    point["p50_ms"].as_f64().unwrap_or(0.0),
                    point["p99_ms"].as_f64().unwrap_or(0.0),
                    point["errors"],
                    ratio("throughput_per_s"),
                    ratio("p99_ms"),
                );
                // The raw throughputs too: where the baseline answered nothing the ratio
                // is infinite, which JSON cannot carry.
                match variant {
                    fdw::Variant::Plain => {
                        row["baseline_per_s"] = point["throughput_per_s"].clone();
                        row["throughput_ratio"] = json!(ratio("throughput_per_s"));
                        row["p99_ratio"] = json!(ratio("p99_ms"));
                        baseline.push(point);
                    }
                    fdw::Variant::Audited => {
                        row["audited_baseline_per_s"] = point["throughput_per_s"].clone();
                        row["audited_throughput_ratio"] = json!(ratio("throughput_per_s"));
                        row["audited_p99_ratio"] = json!(ratio("p99_ms"));
                        audited.push(point);
                    }
                }
            }
            ratios.push(row);
        }
    }
    figures.over_baseline = ratios.clone();
    report.insert("baseline_postgres_fdw".into(), json!(baseline));
    report.insert("baseline_postgres_fdw_audited".into(), json!(audited));
    report.insert("fedq_over_baseline".into(), json!(ratios));
    Ok(())
}

/// The figures the targets are judged on, as far as this run measured them.
#[derive(Debug, Default)]
struct Figures {
    policy_us_at_2000: Option<f64>,
    policy_ratio_at_2000: Option<f64>,
    import_rows_per_s: Option<f64>,
    node_lookup_p50_us: Option<f64>,
    audit_appends_per_s: Option<f64>,
    lookups: Vec<Value>,
    over_baseline: Vec<Value>,
}

/// One target: what, the bound, the measured value and whether it was met.
fn target(
    what: &str,
    bound: Value,
    measured: Option<Value>,
    met: Option<bool>,
    why_not: &str,
) -> Value {
    let status = match met {
        Some(true) => "met",
        Some(false) => "missed",
        None => "not measured",
    };
    json!({
        "what": what,
        "target": bound,
        "measured": measured.unwrap_or_else(|| json!(why_not)),
        "status": status,
    })
}

impl Figures {
    /// Every target of the issues, met, missed, or not measured in this run (and why).
    fn targets(&self) -> Vec<Value> {
        use fedq_policy::comparison::{GOAL_RATIO_AT_2000_RULES, TARGET_US_AT_2000_RULES};
        let at_most = |v: Option<f64>, bound: f64| v.map(|v| v <= bound);
        let at_least = |v: Option<f64>, bound: f64| v.map(|v| v >= bound);
        let not_run = |section: &str| format!("not measured: section `{section}` not run");
        // "Low load" is the lowest concurrency measured at fan-out 6.
        let fanout6: Vec<&Value> = self
            .lookups
            .iter()
            .filter(|p| p["fanout"].as_u64() == Some(6))
            .collect();
        let low = fanout6
            .iter()
            .min_by_key(|p| p["concurrency"].as_u64().unwrap_or(u64::MAX));
        let low_p50 = low.and_then(|p| p["p50_ms"].as_f64());
        let low_p99 = low.and_then(|p| p["p99_ms"].as_f64());
        let low_conc = low.map(|p| p["concurrency"].clone()).unwrap_or(Value::Null);
        let best6 = fanout6
            .iter()
            .filter_map(|p| p["throughput_per_s"].as_f64())
            .reduce(f64::max);
        let behind: Vec<Value> = self
            .over_baseline
            .iter()
            .filter(
                |r| match (r["fedq_per_s"].as_f64(), r["baseline_per_s"].as_f64()) {
                    (Some(ours), Some(theirs)) => ours <= theirs,
                    _ => true,
                },
            )
            .cloned()
            .collect();
        let cedar_missing = if fedq_policy::comparison::CEDAR_BUILT {
            not_run("policy")
        } else {
            format!("not measured: the Cedar side is not built into this binary; run {WITH_CEDAR}")
        };
        vec![
            target(
                "policy: fedq p50 per 40-field decision at 2,000 rules (µs)",
                json!(format!("<= {TARGET_US_AT_2000_RULES}")),
                self.policy_us_at_2000.map(|v| json!(v)),
                at_most(self.policy_us_at_2000, TARGET_US_AT_2000_RULES),
                &not_run("policy"),
            ),
            target(
                "policy: Cedar time / fedq time at 2,000 rules",
                json!(format!(">= {GOAL_RATIO_AT_2000_RULES}")),
                self.policy_ratio_at_2000.map(|v| json!(v.round())),
                at_least(self.policy_ratio_at_2000, GOAL_RATIO_AT_2000_RULES),
                &cedar_missing,
            ),
            target(
                "fan-out 6 p50 at the lowest concurrency (ms)",
                json!("<= 1"),
                low_p50.map(|v| json!({ "concurrency": low_conc, "p50_ms": v })),
                at_most(low_p50, 1.0),
                &not_run("lookups"),
            ),
            target(
                "fan-out 6 p99 at the lowest concurrency (ms)",
                json!("<= 5"),
                low_p99.map(|v| json!({ "concurrency": low_conc, "p99_ms": v })),
                at_most(low_p99, 5.0),
                &not_run("lookups"),
            ),
            target(
                "fan-out 6 lookups/s, best concurrency",
                json!(">= 5000"),
                best6.map(|v| json!(v.round())),
                at_least(best6, 5000.0),
                &not_run("lookups"),
            ),
            target(
                "ahead of postgres_fdw: fedq/baseline throughput > 1 at every point",
                json!("> 1 at every fan-out and concurrency"),
                (!self.over_baseline.is_empty() && !self.lookups.is_empty())
                    .then(|| json!({ "points": self.over_baseline.len(), "not_ahead": behind })),
                (!self.over_baseline.is_empty() && !self.lookups.is_empty())
                    .then_some(behind.is_empty()),
                "not measured: needs both sections `lookups` and `baseline`",
            ),
            target(
                "import into SQLite, median of the six stores (rows/s)",
                json!(">= 200000"),
                self.import_rows_per_s.map(|v| json!(v)),
                at_least(self.import_rows_per_s, 200_000.0),
                "not measured: no store was loaded",
            ),
            target(
                "lookup inside the node, p50 (µs)",
                json!("<= 50"),
                self.node_lookup_p50_us.map(|v| json!(v)),
                at_most(self.node_lookup_p50_us, 50.0),
                &not_run("internals"),
            ),
            target(
                "durable audit appends per node, heads signed (per s)",
                json!(">= 20000"),
                self.audit_appends_per_s.map(|v| json!(v)),
                at_least(self.audit_appends_per_s, 20_000.0),
                &not_run("internals"),
            ),
        ]
    }
}

#[allow(clippy::too_many_arguments)]
async fn load_point(
    url: &str,
    cert: &Path,
    key: &Path,
    ca: &Path,
    fanout: usize,
    concurrency: usize,
    seconds: u64,
    records: u64,
) -> Result<Value, BenchError> {
    let mut conns = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let mut conn = ApiConnection::connect(url, cert, key, ca)
            .await
            .map_err(err("connect"))?;
        // Sessions with every node before anything is timed: a requester opens them once
        // an hour, not per query.
        conn.open_sessions().await.map_err(err("open sessions"))?;
        conns.push(conn);
    }
    let warm_until = Instant::now() + Duration::from_secs(1);
    let stop_at = warm_until + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for (c, mut conn) in conns.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            let mut i = c as u64 * 104_729;
            loop {
                let now = Instant::now();
                if now >= stop_at {
                    break;
                }
                i = i.wrapping_add(7919);
                let q = query_for(fanout, resident_id(i % records.max(1)));
                let t = Instant::now();
                let ok = matches!(conn.query(&q).await, Ok((200, ref v)) if v["complete"] == true);
                if now >= warm_until {
                    if ok {
                        lat.push(t.elapsed());
                    } else {
                        errors += 1;
                    }
                }
            }
            (lat, errors)
        }));
    }
    summarize(tasks, fanout, concurrency, seconds).await
}

/// One load point's figures from its client tasks' latencies (after warm-up) and errors.
pub(crate) async fn summarize(
    tasks: Vec<tokio::task::JoinHandle<(Vec<Duration>, u64)>>,
    fanout: usize,
    concurrency: usize,
    seconds: u64,
) -> Result<Value, BenchError> {
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (lat, e) = t.await.map_err(err("load task"))?;
        all.extend(lat);
        errors += e;
    }
    all.sort();
    Ok(json!({
        "fanout": fanout,
        "concurrency": concurrency,
        "requests": all.len(),
        "errors": errors,
        "throughput_per_s": all.len() as f64 / seconds as f64,
        "p50_ms": percentile(&all, 0.5),
        "p90_ms": percentile(&all, 0.9),
        "p99_ms": percentile(&all, 0.99),
    }))
}

/// A small SVG: p50 and p99 latency against throughput, one line per fan-out.
fn chart(report: &Value) -> String {
    let points = report["lookups"].as_array().cloned().unwrap_or_default();
    let max_x = points
        .iter()
        .filter_map(|p| p["throughput_per_s"].as_f64())
        .fold(1.0, f64::max);
    let max_y = points
        .iter()
        .filter_map(|p| p["p99_ms"].as_f64())
        .fold(1.0, f64::max);
    let (w, h, m) = (720.0, 420.0, 60.0);
    let x = |v: f64| m + (v / max_x) * (w - 2.0 * m);
    let y = |v: f64| h - m - (v / max_y) * (h - 2.0 * m);
    let mut svg = format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' font-family='sans-serif' font-size='12'>\
         <rect width='100%' height='100%' fill='white'/>\
         <text x='{m}' y='24' font-size='15'>fedq lookups on {} cores: latency against throughput</text>\
         <line x1='{m}' y1='{}' x2='{}' y2='{}' stroke='black'/><line x1='{m}' y1='{m}' x2='{m}' y2='{}' stroke='black'/>\
         <text x='{}' y='{}' text-anchor='middle'>lookups/s (max {max_x:.0})</text>\
         <text x='14' y='{}' transform='rotate(-90 14 {})' text-anchor='middle'>latency ms (max {max_y:.1})</text>",
        report["cores"],
        h - m,
        w - m,
        h - m,
        h - m,
        w / 2.0,
        h - 20.0,
        h / 2.0,
        h / 2.0
    );
    let colours = [(1, "#1b9e77"), (3, "#d95f02"), (6, "#7570b3")];
    for (k, (fanout, colour)) in colours.iter().enumerate() {
        for (metric, dash) in [("p50_ms", ""), ("p99_ms", " stroke-dasharray='5,4'")] {
            let pts: Vec<String> = points
                .iter()
                .filter(|p| p["fanout"].as_u64() == Some(*fanout as u64))
                .map(|p| {
                    format!(
                        "{:.1},{:.1}",
                        x(p["throughput_per_s"].as_f64().unwrap_or(0.0)),
                        y(p[metric].as_f64().unwrap_or(0.0))
                    )
                })
                .collect();
            svg.push_str(&format!(
                "<polyline fill='none' stroke='{colour}' stroke-width='2'{dash} points='{}'/>",
                pts.join(" ")
            ));
        }
        svg.push_str(&format!(
            "<text x='{}' y='{}' fill='{colour}'>fan-out {fanout} (solid p50, dashed p99)</text>",
            w - 260.0,
            m + 18.0 * k as f64
        ));
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_section_runs_by_default_and_no_baseline_drops_one() {
        assert_eq!(
            BenchArgs::default().selected(),
            [
                Section::Policy,
                Section::Internals,
                Section::Lookups,
                Section::Baseline
            ]
        );
        let no_baseline = BenchArgs {
            no_baseline: true,
            ..BenchArgs::default()
        };
        assert_eq!(
            no_baseline.selected(),
            [Section::Policy, Section::Internals, Section::Lookups]
        );
        let some = BenchArgs {
            sections: vec![Section::Lookups, Section::Policy, Section::Policy],
            ..BenchArgs::default()
        };
        assert_eq!(some.selected(), [Section::Policy, Section::Lookups]);
    }

    fn status_of<'a>(targets: &'a [Value], what: &str) -> &'a str {
        targets
            .iter()
            .find(|t| t["what"].as_str().is_some_and(|w| w.starts_with(what)))
            .and_then(|t| t["status"].as_str())
            .unwrap()
    }

    #[test]
    fn targets_say_met_missed_or_not_measured() {
        let figures = Figures {
            policy_us_at_2000: Some(3.2),
            lookups: vec![
                json!({ "fanout": 6, "concurrency": 8, "p50_ms": 0.5, "p99_ms": 1.0, "throughput_per_s": 1900.0 }),
                json!({ "fanout": 6, "concurrency": 1, "p50_ms": 1.7, "p99_ms": 4.0, "throughput_per_s": 500.0 }),
            ],
            over_baseline: vec![
                json!({ "fanout": 1, "concurrency": 1, "fedq_per_s": 700.0, "baseline_per_s": 1000.0 }),
                json!({ "fanout": 6, "concurrency": 256, "fedq_per_s": 800.0, "baseline_per_s": 0.0 }),
                json!({ "fanout": 6, "concurrency": 64, "fedq_per_s": null, "baseline_per_s": 10.0 }),
                json!({ "fanout": 6, "concurrency": 1, "fedq_per_s": 280.0, "baseline_per_s": 200.0 }),
            ],
            ..Figures::default()
        };
        let t = figures.targets();
        assert_eq!(status_of(&t, "policy: fedq"), "met");
        // The lowest concurrency is the low-load point, wherever it is in the list.
        assert_eq!(status_of(&t, "fan-out 6 p50"), "missed");
        assert_eq!(status_of(&t, "fan-out 6 p99"), "met");
        assert_eq!(status_of(&t, "fan-out 6 lookups/s"), "missed");
        assert_eq!(status_of(&t, "ahead of postgres_fdw"), "missed");
        assert_eq!(status_of(&t, "import"), "not measured");
        assert_eq!(status_of(&t, "durable audit"), "not measured");
        let behind = &t
            .iter()
            .find(|t| t["what"].as_str().is_some_and(|w| w.starts_with("ahead")))
            .unwrap()["measured"]["not_ahead"];
        // Where the baseline answered nothing fedq is ahead (the ratio is infinite); a
        // point fedq did not measure is not ahead.
        let behind: Vec<u64> = behind
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["concurrency"].as_u64().unwrap())
            .collect();
        assert_eq!(behind, [1, 64]);
    }

    #[test]
    fn without_cedar_the_report_says_how_to_get_it() {
        let t = Figures::default().targets();
        let ratio = t
            .iter()
            .find(|t| {
                t["what"]
                    .as_str()
                    .is_some_and(|w| w.starts_with("policy: Cedar"))
            })
            .unwrap();
        assert_eq!(ratio["status"], "not measured");
        if !fedq_policy::comparison::CEDAR_BUILT {
            assert!(ratio["measured"]
                .as_str()
                .unwrap()
                .contains("--features cedar"));
        }
    }
}
