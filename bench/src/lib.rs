//! `fedq bench`: the figures users compare fedq by, measured in one run on this host.
//!
//! 1. Node internals: import rows/s into SQLite, indexed lookup µs at the chosen size,
//!    durable audit appends/s (group commit), audit verification entries/s.
//! 2. Lookups through fedq: six node processes and the coordinator process on loopback,
//!    each node holding `--records` records; a load generator in this process asks over
//!    kept-alive HTTPS connections, fanning out to 1, 3 and 6 nodes, at each concurrency;
//!    p50/p90/p99 and throughput.
//! 3. Memory: peak RSS of each process after the load.
//!
//! Writes `report.json` and `latency.svg` to `--out` (default `target/bench-report`).
//! Not run in CI: see docs/performance.md.

// Indexing here is on `serde_json::Value`, whose `Index` returns `Null` for a missing key
// and never panics.
#![allow(clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub mod fdw;

use fedq_coordinator::client::ApiConnection;
use fedq_coordinator::query::QueryRequest;
use fedq_demo::{build, BuildOptions, Federation, LICENSING_BASIS};
use serde_json::{json, Value};

/// Arguments of `fedq bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Records per node.
    #[arg(long, default_value_t = 1_000_000)]
    pub records: u64,
    /// Records in the court node, whose store the node-internal lookup figure is measured
    /// on (default: `--records`). `--court-records 10000000` gives the 10M-record figure.
    #[arg(long)]
    pub court_records: Option<u64>,
    /// Concurrency levels (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,8,64,256")]
    pub concurrency: Vec<usize>,
    /// Seconds of measured load per point (after one second of warm-up).
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Skip the postgres_fdw baseline.
    #[arg(long)]
    pub no_baseline: bool,
    /// Where the report goes.
    #[arg(long, default_value = "target/bench-report")]
    pub out: PathBuf,
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
        view,
        datasets,
    }
}

/// Runs `fedq bench`.
pub fn run(args: BenchArgs) -> Result<(), BenchError> {
    let started = Instant::now();
    std::fs::create_dir_all(&args.out).map_err(err("--out"))?;
    let root = args.out.join("federation");
    let _ = std::fs::remove_dir_all(&root);
    let logs = args.out.join("logs");
    std::fs::create_dir_all(&logs).map_err(err("logs"))?;
    println!(
        "fedq bench: {} records per node, concurrency {:?}, {} s per point",
        args.records, args.concurrency, args.seconds
    );
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
    let mut report = BTreeMap::<String, Value>::new();
    report.insert(
        "cores".into(),
        json!(std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)),
    );
    report.insert("records_per_node".into(), json!(args.records));

    // 1. Import.
    let mut imports = Vec::new();
    let court_records = args.court_records.unwrap_or(args.records);
    let mut exports = Vec::new();
    for (dept, dataset) in LOADED {
        let n = if dept == "court" {
            court_records
        } else {
            args.records
        };
        let csv = write_bulk_csv(&fed, dept, dataset, n)?;
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

    // 2. Lookup inside the node (store only, one indexed statement).
    let store =
        fedq_node::store::SqliteStore::open(&fed.layout.store("court")).map_err(err("store"))?;
    let mut lookups = Vec::with_capacity(20_000);
    for i in 0..20_000u64 {
        let id = resident_id((i * 7919) % court_records);
        let t = Instant::now();
        let found = store
            .records_of(&id, &["court.dishonest_debtors"])
            .map_err(err("lookup"))?;
        lookups.push(t.elapsed());
        if found.is_empty() {
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
    drop(store);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(err("runtime"))?;

    // 3. Audit appends (durable, group commit) and verification.
    let audit_path = args.out.join("bench-audit.db");
    let _ = std::fs::remove_file(&audit_path);
    let (appends_per_s, verify_per_s) = runtime.block_on(async {
        let log = fedq_audit::AuditLog::open(&audit_path).map_err(err("audit"))?;
        let n_tasks = 256u64;
        let per_task = 200u64;
        let t = Instant::now();
        let mut tasks = Vec::new();
        for k in 0..n_tasks {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                for j in 0..per_task {
                    let _ = log
                        .append(fedq_audit::AuditRecord {
                            at: time::OffsetDateTime::now_utc(),
                            kind: "answer".into(),
                            query_id: format!("{k}-{j}"),
                            requester: "market-regulation.licensing".into(),
                            purpose: "administrative-licensing".into(),
                            legal_basis: Some(LICENSING_BASIS.into()),
                            subject: "0123456789abcdef0123456789abcdef".into(),
                            target: "view:blacklist-check".into(),
                            outcome: r#"{"court.dishonest_debtors":{"released":{"fields":{"listed_on":"clear"},"records":1}}}"#.into(),
                            policy_version: "bench".into(),
                        })
                        .await;
                }
            }));
        }
        for task in tasks {
            let _ = task.await;
        }
        let appends = (n_tasks * per_task) as f64 / t.elapsed().as_secs_f64();
        let t = Instant::now();
        let v = fedq_audit::verify(&audit_path).map_err(err("verify"))?;
        let verify = v.entries as f64 / t.elapsed().as_secs_f64();
        Ok::<_, BenchError>((appends, verify))
    })?;
    println!("  audit: {appends_per_s:.0} durable appends/s (256 concurrent writers), verification {verify_per_s:.0} entries/s");
    report.insert("audit_appends_per_s".into(), json!(appends_per_s.round()));
    report.insert(
        "audit_verify_entries_per_s".into(),
        json!(verify_per_s.round()),
    );

    // 4. The federation as separate processes.
    let mut procs = Vec::new();
    for (dept, _) in LOADED {
        let cfg = fed.layout.node_config(dept);
        procs.push(spawn(
            dept,
            &["node", "serve", "--config", &cfg.to_string_lossy()],
            "node serving",
            &logs,
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
        &logs,
    )?;
    let url = format!("https://{}", fed.coordinator);
    let pki = fed.layout.pki();
    let cert = pki.join("market-regulation.licensing.crt");
    let key = pki.join("market-regulation.licensing.key");
    let ca = pki.join("ca.crt");
    let mut points = Vec::new();
    for fanout in [1usize, 3, 6] {
        for &conc in &args.concurrency {
            let point = runtime.block_on(load_point(
                &url,
                &cert,
                &key,
                &ca,
                fanout,
                conc,
                args.seconds,
                args.records,
            ))?;
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

    // 5. The baseline: same records, same host, same fan-outs and concurrency levels.
    if !args.no_baseline {
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
        runtime.block_on(fdw::load(&cluster, &departments))?;
        println!(
            "  baseline: PostgreSQL + postgres_fdw, same records, loaded in {:.0} s",
            t.elapsed().as_secs_f64()
        );
        let mut baseline = Vec::new();
        let mut ratios = Vec::new();
        for fanout in [1usize, 3, 6] {
            for &conc in &args.concurrency {
                let point = runtime.block_on(fdw::load_point(
                    &cluster,
                    &departments,
                    fanout,
                    conc,
                    args.seconds,
                    resident_id,
                    args.records,
                ))?;
                let ours = points
                    .iter()
                    .find(|p| {
                        p["fanout"].as_u64() == Some(fanout as u64)
                            && p["concurrency"].as_u64() == Some(conc as u64)
                    })
                    .cloned()
                    .unwrap_or(Value::Null);
                let ratio = |k: &str| {
                    ours[k].as_f64().unwrap_or(f64::NAN) / point[k].as_f64().unwrap_or(f64::NAN)
                };
                println!(
                    "  baseline fan-out {fanout} × concurrency {conc:>3}: {:>7.0} lookups/s  p50 {:.2} ms  p99 {:.2} ms  errors {}  | fedq/baseline throughput {:.2}×, p99 {:.2}×",
                    point["throughput_per_s"].as_f64().unwrap_or(0.0),
                    point["p50_ms"].as_f64().unwrap_or(0.0),
                    point["p99_ms"].as_f64().unwrap_or(0.0),
                    point["errors"],
                    ratio("throughput_per_s"),
                    ratio("p99_ms"),
                );
                ratios.push(json!({
                    "fanout": fanout,
                    "concurrency": conc,
                    "throughput_ratio": ratio("throughput_per_s"),
                    "p99_ratio": ratio("p99_ms"),
                }));
                baseline.push(point);
            }
        }
        report.insert("baseline_postgres_fdw".into(), json!(baseline));
        report.insert("fedq_over_baseline".into(), json!(ratios));
    }
    for (_, csv, _, _) in &exports {
        let _ = std::fs::remove_file(csv);
    }

    let targets = json!({
        "fanout6_p50_ms_at_low_load": { "target": 1.0 },
        "fanout6_p99_ms_at_low_load": { "target": 5.0 },
        "lookups_per_s": { "target": 5000 },
        "import_rows_per_s": { "target": 200000, "measured": import_median.round() },
        "node_lookup_p50_us": { "target": 50, "measured": lookup_p50_us },
        "audit_appends_per_s": { "target": 20000, "measured": appends_per_s.round() },
    });
    report.insert("targets".into(), targets);
    report.insert("elapsed_s".into(), json!(started.elapsed().as_secs()));
    let report = Value::Object(report.into_iter().collect());
    let json_path = args.out.join("report.json");
    std::fs::write(
        &json_path,
        serde_json::to_string_pretty(&report).unwrap_or_default(),
    )
    .map_err(err("report"))?;
    let svg_path = args.out.join("latency.svg");
    std::fs::write(&svg_path, chart(&report)).map_err(err("chart"))?;
    println!("wrote {} and {}", json_path.display(), svg_path.display());
    Ok(())
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
        conns.push(
            ApiConnection::connect(url, cert, key, ca)
                .await
                .map_err(err("connect"))?,
        );
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
