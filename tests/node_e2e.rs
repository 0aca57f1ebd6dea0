//! A department node end to end: import with the real binary, serve over QUIC on
//! 127.0.0.1, ask as a coordinator, and check what crossed the wire, what the audit log
//! holds and what the logs say.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../node/tests/pg/mod.rs"]
mod pg;
mod support;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fedq_node::config::NodeConfig;
use fedq_node::service::Node;
use fedq_node::store::Store;
use fedq_policy::Value;
use fedq_wire::message::{DatasetOutcome, DatasetRequest, LookupRequest, LookupTarget};
use fedq_wire::transport::{Limits, NodeClient, TlsFiles};
use fedq_wire::{NodeRequest, NodeResponse};
use support::proof::ProvingChannel;
use support::{rid, TestFederation};

const TODAY: &str = "2026-11-27";
const BASIS: &str = "长政办发〔2017〕62号";

struct People {
    active: String,
    expired: String,
    repaired_by_status: String,
    repaired_by_operator: String,
    clean: String,
}

fn people() -> People {
    People {
        active: rid("43010219800101123"),
        expired: rid("43010319750505234"),
        repaired_by_status: rid("43010419900909345"),
        repaired_by_operator: rid("43010519851111456"),
        clean: rid("43011119920202567"),
    }
}

fn debtors_csv(p: &People) -> String {
    format!(
        "case_no,resident_id,name,court,obligation,amount_owed,performance_status,listed_on,removed_on\n\
         (2025)湘0102执101号,{},张三丰,长沙市芙蓉区人民法院,支付货款,52317.46,unperformed,2025-06-01,\n\
         (2022)湘0103执202号,{},李四,长沙市天心区人民法院,偿还借款,8000.00,unperformed,2022-06-01,\n\
         (2025)湘0104执303号,{},王五,长沙市岳麓区人民法院,支付工资,12000.50,performed,2025-03-01,\n\
         (2025)湘0105执404号,{},赵六,长沙市开福区人民法院,赔偿损失,99000.00,unperformed,2025-05-01,\n",
        p.active, p.expired, p.repaired_by_status, p.repaired_by_operator
    )
}

fn fedq(args: &[&str]) -> std::process::Output {
    support::process::output_within(
        Command::new(env!("CARGO_BIN_EXE_fedq")).args(args),
        support::process::COMMAND_LIMIT,
    )
}

fn lookup(
    subject: &str,
    requester: &str,
    purpose: &str,
    basis: Option<&str>,
    target: LookupTarget,
) -> NodeRequest {
    NodeRequest::Lookup(LookupRequest {
        query_id: "q-test".into(),
        requester: requester.into(),
        purpose: purpose.into(),
        legal_basis: basis.map(str::to_owned),
        // The licensing application the query serves, in the form the policy declares.
        case_reference: (purpose == "administrative-licensing")
            .then(|| fedq_sandbox::LICENSING_CASE.into()),
        target,
        policy_version: "test".into(),
        date: day(TODAY),
        proof: String::new(),
        sealed: support::proof::clear_subject(subject, None),
    })
}

fn day(s: &str) -> time::Date {
    fedq_policy::transform::parse_date(s).unwrap()
}

/// `fedq node init`: creates the store the config names.
fn init(cfg: &str) {
    let out = fedq(&["node", "init", "--config", cfg]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Where the node under test keeps its records: the same tests run on both.
enum Backend {
    Sqlite,
    Postgres(pg::TestDb),
}

impl Backend {
    fn postgres(name: &str) -> Self {
        Backend::Postgres(pg::database(name))
    }
}

/// `nodes/NAME.toml` for `backend`.
fn node_config(fed: &TestFederation, name: &str, backend: &Backend) -> std::path::PathBuf {
    let path = fed.node_config(name, TODAY);
    if let Backend::Postgres(db) = backend {
        let text = std::fs::read_to_string(&path).unwrap();
        let line = format!("store = \"../data/{name}.db\"");
        assert!(text.contains(&line), "{text}");
        std::fs::write(
            &path,
            text.replace(&line, &format!("store = \"{}\"", db.url)),
        )
        .unwrap();
    }
    path
}

/// Number of records of `dataset` in the store of the node configured at `config`.
fn count(config: &std::path::Path, dataset: &str) -> u64 {
    let config = NodeConfig::load(config).unwrap();
    let dataset = dataset.to_owned();
    let counting = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let store = Store::open(&config.store).await.unwrap();
                store.count(&dataset).await.unwrap()
            })
    });
    support::process::join_within(counting, Duration::from_secs(60), "counting the store")
}

/// The court's part of a view: its one source, as the node sealed it to the requester.
fn source_part(response: &NodeResponse) -> fedq_policy::views::SourcePart {
    match support::proof::opened(response) {
        fedq_wire::message::LookupAnswer::View(mut p) => {
            assert_eq!(p.sources.len(), 1, "{p:?}");
            p.sources.remove(0)
        }
        other => panic!("expected a view part, got {other:?}"),
    }
}

/// The active listings the court's part of a blacklist check found.
fn listings(response: &NodeResponse) -> Vec<fedq_policy::views::Listing> {
    match source_part(response).finding {
        fedq_policy::views::Finding::Listings(l) => l,
        other => panic!("expected listings, got {other:?}"),
    }
}

/// The dataset and reason of a source the court's part says it could not verify.
fn unverified_source(response: &NodeResponse) -> (String, String) {
    let part = source_part(response);
    match part.finding {
        fedq_policy::views::Finding::Missing {
            status: fedq_policy::views::UnverifiedStatus::Unverified,
            reason,
        } => (part.dataset, reason),
        other => panic!("expected an unverified source, got {other:?}"),
    }
}

#[test]
fn import_is_validated_atomic_and_idempotent() {
    import_is_validated_atomic_and_idempotent_on(Backend::Sqlite);
}

#[test]
fn import_into_postgres_is_validated_atomic_and_idempotent() {
    import_is_validated_atomic_and_idempotent_on(Backend::postgres("e2e_import"));
}

fn import_is_validated_atomic_and_idempotent_on(backend: Backend) {
    let fed = TestFederation::new(&["court"], &[]);
    let config = node_config(&fed, "court", &backend);
    let cfg = config.to_str().unwrap();
    let p = people();
    let good = fed.write("in/debtors.csv", &debtors_csv(&p));

    // No store yet: the import is refused, and creates none.
    let out = fedq(&[
        "node",
        "import",
        "--config",
        cfg,
        "--dataset",
        "dishonest_debtors",
        good.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("fedq node init --config"),
        "{err}"
    );
    if matches!(backend, Backend::Sqlite) {
        assert!(err.contains("does not exist"), "{err}");
        assert!(!fed.root.join("data/court.db").exists());
    } else {
        assert!(err.contains("holds no fedq schema"), "{err}");
    }
    init(cfg);

    // A bad check digit on line 3: nothing is imported.
    let mut bad_id = p.expired.clone();
    let last = if bad_id.ends_with('1') { '2' } else { '1' };
    bad_id.pop();
    bad_id.push(last);
    let bad = fed.write("in/bad.csv", &debtors_csv(&p).replace(&p.expired, &bad_id));
    let out = fedq(&[
        "node",
        "import",
        "--config",
        cfg,
        "--dataset",
        "dishonest_debtors",
        bad.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 3, field `resident_id`") && err.contains("check character"),
        "{err}"
    );
    assert!(
        !err.contains(&bad_id),
        "the error must not echo a resident ID: {err}"
    );
    assert_eq!(
        count(&config, "court.dishonest_debtors"),
        0,
        "atomic: nothing imported"
    );

    // An unknown enum value is named with the field.
    let bad_enum = fed.write(
        "in/enum.csv",
        &debtors_csv(&p).replace("performed,2025-03-01", "done,2025-03-01"),
    );
    let out = fedq(&[
        "node",
        "import",
        "--config",
        cfg,
        "--dataset",
        "court.dishonest_debtors",
        bad_enum.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("line 4, field `performance_status`"),
        "{err}"
    );

    // A window start after the node's date (pinned 2026-11-27) is bad data, not a recent
    // record: refused with line, field and reason, and nothing is imported.
    let future = fed.write(
        "in/future.csv",
        &debtors_csv(&p).replace("unperformed,2025-06-01,", "unperformed,2026-11-28,"),
    );
    let out = fedq(&[
        "node",
        "import",
        "--config",
        cfg,
        "--dataset",
        "dishonest_debtors",
        future.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains(
                "line 2, field `listed_on`: the window start is after today (2026-11-27)"
            )
            && err.contains("nothing was imported"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert_eq!(count(&config, "court.dishonest_debtors"), 0);

    // --skip-invalid imports the good rows and writes the bad one to the reject file.
    let out = fedq(&[
        "node",
        "import",
        "--config",
        cfg,
        "--dataset",
        "dishonest_debtors",
        bad.to_str().unwrap(),
        "--skip-invalid",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(count(&config, "court.dishonest_debtors"), 3);
    let rejects = std::fs::read_to_string(format!("{}.rejects.csv", bad.display())).unwrap();
    assert_eq!(rejects.lines().count(), 2, "{rejects}");
    assert!(
        rejects
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("3,resident_id,"),
        "{rejects}"
    );

    // The good file, twice: the second import changes nothing.
    let first = fedq(&[
        "node",
        "import",
        "--config",
        cfg,
        "--dataset",
        "dishonest_debtors",
        good.to_str().unwrap(),
    ]);
    assert!(first.status.success());
    assert!(
        String::from_utf8_lossy(&first.stdout).contains("imported 4 rows"),
        "{}",
        String::from_utf8_lossy(&first.stdout)
    );
    let again = fedq(&[
        "node",
        "import",
        "--config",
        cfg,
        "--dataset",
        "dishonest_debtors",
        good.to_str().unwrap(),
    ]);
    let again = String::from_utf8_lossy(&again.stdout).to_string();
    assert!(again.contains("0 written, 4 unchanged"), "{again}");
    assert_eq!(count(&config, "court.dishonest_debtors"), 4);

    // JSON Lines works the same way.
    let jsonl = fed.write(
        "in/enforcement.jsonl",
        &format!(
            "{{\"case_no\":\"(2026)湘0102执9号\",\"resident_id\":\"{}\",\"court\":\"长沙市芙蓉区人民法院\",\"filed_on\":\"2026-01-05\",\"amount\":\"3000\",\"status\":\"ongoing\"}}\n",
            p.active
        ),
    );
    let out = fedq(&[
        "node",
        "import",
        "--config",
        cfg,
        "--dataset",
        "enforcement_cases",
        jsonl.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(count(&config, "court.enforcement_cases"), 1);
}

#[tokio::test]
async fn the_node_releases_only_what_law_and_policy_allow() {
    releases_only_what_law_and_policy_allow(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_node_on_postgres_releases_only_what_law_and_policy_allow() {
    releases_only_what_law_and_policy_allow(Backend::postgres("e2e_release")).await;
}

async fn releases_only_what_law_and_policy_allow(backend: Backend) {
    let fed = TestFederation::new(&["court"], &[]);
    let config_path = node_config(&fed, "court", &backend);
    let cfg = config_path.to_str().unwrap();
    init(cfg);
    let p = people();
    let csv = fed.write("in/debtors.csv", &debtors_csv(&p));
    let out = fedq(&[
        "node",
        "import",
        "--config",
        cfg,
        "--dataset",
        "dishonest_debtors",
        csv.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A repair the store holds (as `fedq node repair` records one on the review office's
    // signed approval, tested in tests/citizen_rights.rs): never released again.
    {
        let config = NodeConfig::load(&config_path).unwrap();
        let store = fedq_node::store::Store::open(&config.store).await.unwrap();
        store
            .repair(
                "court.dishonest_debtors",
                "(2025)湘0105执404号",
                "performed the judgment in full",
                "2026-11-01T00:00:00Z",
            )
            .await
            .unwrap();
        if let fedq_node::store::Store::Postgres(pg) = &store {
            pg.close().await;
        }
    }

    let frames: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let tap = {
        let frames = Arc::clone(&frames);
        Arc::new(move |bytes: &[u8]| frames.lock().unwrap().push(bytes.to_vec()))
    };
    let node = Node::start(NodeConfig::load(&config_path).unwrap(), Limits::default())
        .await
        .unwrap();
    let addr = node.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(node.serve(Some(tap), async {
        let _ = stopped.await;
    }));
    let client = NodeClient::new(
        "127.0.0.1:0".parse().unwrap(),
        TlsFiles::in_dir(&fed.pki, "coordinator"),
        Limits::default(),
    )
    .unwrap();
    let court = ProvingChannel::new(client.channel("court", addr), &fed.pki);
    let ask = |req: NodeRequest| {
        let court = court.clone();
        async move { court.request(&req, Duration::from_secs(5)).await.unwrap() }
    };
    let blacklist = |who: &str| {
        lookup(
            who,
            "market-regulation.licensing",
            "administrative-licensing",
            Some(BASIS),
            LookupTarget::View("blacklist-check".into()),
        )
    };

    // The active listing is found, and only what the view needs of it leaves: its list
    // and its listing date (removed_on is empty; nothing else of the record).
    let answer = ask(blacklist(&p.active)).await;
    let l = listings(&answer);
    assert_eq!(l.len(), 1);
    assert_eq!(
        l[0].since,
        Some(Value::Date(
            time::Date::from_calendar_date(2025, time::Month::June, 1).unwrap()
        ))
    );
    assert_eq!(l[0].until, None, "removed_on is empty");
    assert!(
        source_part(&answer).released.is_none(),
        "the view declares no release"
    );

    // Older than 3 years, repaired by status, repaired by the operator: nothing, and the
    // answer looks exactly like "no record".
    let none = ask(blacklist(&p.clean)).await;
    for who in [&p.expired, &p.repaired_by_status, &p.repaired_by_operator] {
        let answer = ask(blacklist(who)).await;
        assert!(listings(&answer).is_empty());
        assert_eq!(source_part(&answer), source_part(&none));
    }

    // Fields the policy does not grant are refused with the rule's reason.
    let denied = ask(lookup(
        &p.active,
        "market-regulation.licensing",
        "administrative-licensing",
        Some(BASIS),
        LookupTarget::Datasets(vec![DatasetRequest {
            dataset: "court.dishonest_debtors".into(),
            fields: Some(vec!["name".into(), "amount_owed".into()]),
        }]),
    ))
    .await;
    let outcomes = support::proof::outcomes(&denied);
    assert!(
        matches!(&outcomes[..], [DatasetOutcome::Denied { rationale, .. }] if rationale.contains("default deny")),
        "{outcomes:?}"
    );

    // A purpose the requester may not use: the node refuses on its own policy, even though
    // this "coordinator" forwarded it.
    let refused = ask(lookup(
        &p.active,
        "market-regulation.licensing",
        "statistics",
        None,
        LookupTarget::View("blacklist-check".into()),
    ))
    .await;
    assert!(
        matches!(&refused, NodeResponse::Refused { rationale } if rationale.contains("may not ask for purpose")),
        "{refused:?}"
    );

    // A coordinator forwarding what a requester typed — a resident ID as the purpose, as
    // the legal basis — is refused on the node's own policy, naming what kind of name was
    // wrong and repeating none of it (the audit log is checked for raw IDs below).
    for (purpose, basis, kind) in [
        (p.repaired_by_operator.as_str(), Some(BASIS), "purpose"),
        (
            "administrative-licensing",
            Some(p.clean.as_str()),
            "legal basis",
        ),
    ] {
        let forged = ask(lookup(
            &p.active,
            "market-regulation.licensing",
            purpose,
            basis,
            LookupTarget::View("blacklist-check".into()),
        ))
        .await;
        assert!(
            matches!(&forged, NodeResponse::Refused { rationale }
                if rationale.contains(kind) && !rationale.contains(&p.clean) && !rationale.contains(&p.repaired_by_operator)),
            "{forged:?}"
        );
    }

    client.close();
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(60), serving)
        .await
        .expect("the node did not stop within 60 s")
        .unwrap();

    // What crossed the wire: no withheld record, no denied field value, no raw ID.
    let frames = frames.lock().unwrap().clone();
    // The tap saw the answers, or the absences below would prove nothing.
    assert!(
        frames.len() >= 3,
        "the tap saw {} answer frames",
        frames.len()
    );
    let wire: Vec<u8> = frames.concat();
    let wire = String::from_utf8_lossy(&wire);
    for forbidden in [
        "(2022)湘0103执202号",
        "(2025)湘0104执303号",
        "(2025)湘0105执404号",
        "2022-06-01",
        "张三丰",
        "52317.46",
        "支付货款",
        p.active.as_str(),
    ] {
        assert!(!wire.contains(forbidden), "`{forbidden}` crossed the wire");
    }

    // The audit log: chain intact, one entry per answer and the requester's session, no
    // raw ID (the repair above was put in the store directly, not through `fedq node
    // repair`, so it has no entry).
    let out = fedq(&["audit", "verify", "--config", cfg]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("10 entries, chain intact"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let audit_bytes = std::fs::read(fed.root.join("data/court-audit.db")).unwrap();
    let audit_text = String::from_utf8_lossy(&audit_bytes);
    for id in [&p.active, &p.expired, &p.repaired_by_operator, &p.clean] {
        assert!(
            !audit_text.contains(id.as_str()),
            "raw resident ID in the audit log"
        );
    }
    assert!(!audit_text.contains("张三丰"));
    // "Who looked at me?" works from the resident ID, through this node's pseudonym.
    let out = fedq(&[
        "audit",
        "list",
        "--config",
        cfg,
        "--subject",
        &p.active,
        "--json",
    ]);
    let listed = String::from_utf8_lossy(&out.stdout);
    let entries: Vec<serde_json::Value> = listed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Three answers and the two forged lookups refused above.
    assert_eq!(entries.len(), 5, "{listed}");
    assert!(entries
        .iter()
        .all(|e| e["requester"] == "market-regulation.licensing"));
    let released_fields: BTreeMap<String, String> = serde_json::from_value(
        entries[0]["outcome"]
            .as_str()
            .map(|s| serde_json::from_str::<serde_json::Value>(s).unwrap())
            .unwrap()["court.dishonest_debtors"]["released"]["fields"]
            .clone(),
    )
    .unwrap();
    assert_eq!(
        released_fields.get("listed_on").map(String::as_str),
        Some("clear")
    );
}

#[test]
fn the_node_process_logs_no_personal_data() {
    logs_no_personal_data(Backend::Sqlite);
}

#[test]
fn the_node_process_on_postgres_logs_no_personal_data() {
    logs_no_personal_data(Backend::postgres("e2e_logs"));
}

fn logs_no_personal_data(backend: Backend) {
    let fed = TestFederation::new(&["court"], &[]);
    let config_path = node_config(&fed, "court", &backend);
    let cfg = config_path.to_str().unwrap();
    init(cfg);
    let p = people();
    let csv = fed.write("in/debtors.csv", &debtors_csv(&p));
    assert!(fedq(&[
        "node",
        "import",
        "--config",
        cfg,
        "--dataset",
        "dishonest_debtors",
        csv.to_str().unwrap()
    ])
    .status
    .success());
    let mut child = Command::new(env!("CARGO_BIN_EXE_fedq"))
        .args(["node", "serve", "--config", cfg])
        .env("FEDQ_LOG", "trace")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut all = String::new();
        for line in std::io::BufReader::new(stderr).lines() {
            let line = line.unwrap();
            if let Some(addr) = line.strip_prefix("node serving on udp ") {
                let addr = addr.split(';').next().unwrap().trim().to_owned();
                let _ = addr_tx.send(addr);
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let addr: std::net::SocketAddr = addr_rx
        .recv_timeout(Duration::from_secs(20))
        .unwrap()
        .parse()
        .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = NodeClient::new(
            "127.0.0.1:0".parse().unwrap(),
            TlsFiles::in_dir(&fed.pki, "coordinator"),
            Limits::default(),
        )
        .unwrap();
        let court = ProvingChannel::new(client.channel("court", addr), &fed.pki);
        for who in [&p.active, &p.expired] {
            let r = court
                .request(
                    &lookup(
                        who,
                        "market-regulation.licensing",
                        "administrative-licensing",
                        Some(BASIS),
                        LookupTarget::View("blacklist-check".into()),
                    ),
                    Duration::from_secs(5),
                )
                .await
                .unwrap();
            assert!(matches!(r, NodeResponse::Lookup(_)));
        }
        client.close();
    });
    // SIGTERM: graceful shutdown.
    let _ = support::process::output_within(
        Command::new("kill").args(["-TERM", &child.id().to_string()]),
        Duration::from_secs(30),
    );
    let give_up = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() >= give_up {
            let _ = child.kill();
            panic!("the node did not exit within 60 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let logs =
        support::process::join_within(reader, Duration::from_secs(30), "reading the node's log");
    assert!(status.success(), "node exited with {status}: {logs}");
    assert!(logs.contains("node stopped"), "{logs}");
    for secret in [
        p.active.as_str(),
        p.expired.as_str(),
        "张三丰",
        "(2025)湘0102执101号",
        "52317.46",
    ] {
        assert!(
            !logs.contains(secret),
            "`{secret}` appeared in the node's logs"
        );
    }
}

/// The department's own table, as it was before fedq: other names, other types.
fn department_tables(url: &str, p: &People) {
    pg::run_sql(
        url,
        &[
            "CREATE SCHEMA enforcement".into(),
            "CREATE TABLE enforcement.dishonest (case_number text PRIMARY KEY, id_number char(18) NOT NULL, \
             full_name text, court_name text, duty text, owed numeric(14,2), status text, listed date, removed date)"
                .into(),
            format!(
                "INSERT INTO enforcement.dishonest VALUES \
                 ('(2025)湘0102执101号', '{}', '张三丰', '长沙市芙蓉区人民法院', '支付货款', 52317.46, 'unperformed', '2025-06-01', NULL), \
                 ('(2022)湘0103执202号', '{}', '李四', '长沙市天心区人民法院', '偿还借款', 8000.00, 'unperformed', '2022-06-01', NULL), \
                 ('(2025)湘0104执303号', '{}', '王五', '长沙市岳麓区人民法院', '支付工资', 12000.50, 'performed', '2025-03-01', NULL)",
                p.active, p.expired, p.repaired_by_status
            ),
        ],
    )
    .unwrap();
}

fn attach_section(url: &str, columns: &str) -> String {
    format!(
        "\n[[attach]]\ndataset = \"court.dishonest_debtors\"\ndatabase = \"{url}\"\nquery = '''\n\
         SELECT {columns}\nFROM enforcement.dishonest\nWHERE id_number = $1\n'''\n"
    )
}

const MAPPED: &str = "case_number AS case_no, id_number AS resident_id, full_name AS name, \
    court_name AS court, duty AS obligation, owed AS amount_owed, status AS performance_status, \
    listed AS listed_on, removed AS removed_on";

#[tokio::test]
async fn a_node_answers_an_attached_dataset_from_the_departments_own_tables() {
    let db = pg::database("e2e_attach");
    let p = people();
    department_tables(&db.url, &p);
    let fed = TestFederation::new(&["court"], &[]);
    let config_path = fed.node_config("court", TODAY);
    let cfg = config_path.to_str().unwrap();
    let base = std::fs::read_to_string(&config_path).unwrap();
    init(cfg);

    // A mapping that misses a required field is a config error, before anything is bound.
    std::fs::write(
        &config_path,
        format!(
            "{base}{}",
            attach_section(&db.url, &MAPPED.replace(", listed AS listed_on", ""))
        ),
    )
    .unwrap();
    let err = Node::start(NodeConfig::load(&config_path).unwrap(), Limits::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("[[attach]] `court.dishonest_debtors`")
            && err.contains("required column `listed_on` is missing"),
        "{err}"
    );

    std::fs::write(
        &config_path,
        format!("{base}{}", attach_section(&db.url, MAPPED)),
    )
    .unwrap();

    // Nothing is imported into, or repaired in, an attached dataset.
    let csv = fed.write("in/debtors.csv", &debtors_csv(&p));
    let out = fedq(&[
        "node",
        "import",
        "--config",
        cfg,
        "--dataset",
        "dishonest_debtors",
        csv.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("is attached to the department's own database")
            && err.contains("import is refused"),
        "{err}"
    );
    let out = fedq(&[
        "node",
        "repair",
        "--config",
        cfg,
        "--application",
        "rep-000000000000000000000000",
        "--decision",
        csv.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert_eq!(count(&config_path, "court.dishonest_debtors"), 0);

    let frames: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let tap = {
        let frames = Arc::clone(&frames);
        Arc::new(move |bytes: &[u8]| frames.lock().unwrap().push(bytes.to_vec()))
    };
    let node = Node::start(NodeConfig::load(&config_path).unwrap(), Limits::default())
        .await
        .unwrap();
    let addr = node.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(node.serve(Some(tap), async {
        let _ = stopped.await;
    }));
    let client = NodeClient::new(
        "127.0.0.1:0".parse().unwrap(),
        TlsFiles::in_dir(&fed.pki, "coordinator"),
        Limits::default(),
    )
    .unwrap();
    let court = ProvingChannel::new(client.channel("court", addr), &fed.pki);
    let ask = |who: &str| {
        let court = court.clone();
        let req = lookup(
            who,
            "market-regulation.licensing",
            "administrative-licensing",
            Some(BASIS),
            LookupTarget::View("blacklist-check".into()),
        );
        async move { court.request(&req, Duration::from_secs(5)).await.unwrap() }
    };

    // Read from the department's table, then the same law and policy as for stored records.
    let answer = ask(&p.active).await;
    let l = listings(&answer);
    assert_eq!(l.len(), 1);
    assert_eq!(
        l[0].since,
        Some(Value::Date(
            time::Date::from_calendar_date(2025, time::Month::June, 1).unwrap()
        ))
    );
    let none = ask(&p.clean).await;
    for who in [&p.expired, &p.repaired_by_status] {
        let answer = ask(who).await;
        assert_eq!(source_part(&answer), source_part(&none));
    }

    // A row the node cannot read (a status the catalogue does not know) makes the dataset
    // unverified for that person — never "no record", and nothing of the row released.
    pg::run_sql(
        &db.url,
        &[format!(
            "INSERT INTO enforcement.dishonest VALUES ('(2025)湘0106执505号', '{}', '钱七', '长沙市雨花区人民法院', '支付货款', 700.00, 'settled-ish', '2025-08-01', NULL)",
            p.repaired_by_operator
        )],
    )
    .unwrap();
    let (dataset, reason) = unverified_source(&ask(&p.repaired_by_operator).await);
    assert_eq!(dataset, "court.dishonest_debtors");
    assert!(reason.contains("field `performance_status`"), "{reason}");
    assert!(!reason.contains("settled-ish"), "{reason}");
    // A listing the department dated after the node's date: unverified too.
    let future = rid("43012119880808678");
    pg::run_sql(
        &db.url,
        &[format!(
            "INSERT INTO enforcement.dishonest VALUES ('(2026)湘0106执606号', '{future}', '周九', \
             '长沙市雨花区人民法院', '支付货款', 700.00, 'unperformed', '2027-01-15', NULL)"
        )],
    )
    .unwrap();
    let (_, reason) = unverified_source(&ask(&future).await);
    assert!(
        reason.contains("window start `listed_on` after the node's date"),
        "{reason}"
    );

    client.close();
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(60), serving)
        .await
        .expect("the node did not stop within 60 s")
        .unwrap();
    let frames = frames.lock().unwrap().clone();
    // The tap saw the answers, or the absences below would prove nothing.
    assert!(
        frames.len() >= 3,
        "the tap saw {} answer frames",
        frames.len()
    );
    let wire: Vec<u8> = frames.concat();
    let wire = String::from_utf8_lossy(&wire);
    for forbidden in [
        "张三丰",
        "52317.46",
        "(2022)湘0103执202号",
        "钱七",
        "settled-ish",
        "(2025)湘0106执505号",
        p.active.as_str(),
    ] {
        assert!(!wire.contains(forbidden), "`{forbidden}` crossed the wire");
    }
}

#[tokio::test]
async fn a_node_whose_postgres_store_is_unreachable_does_not_start() {
    let fed = TestFederation::new(&["court"], &[]);
    let config_path = fed.node_config("court", TODAY);
    let text = std::fs::read_to_string(&config_path).unwrap();
    // Port 1 on loopback: nothing listens there.
    std::fs::write(
        &config_path,
        text.replace(
            "store = \"../data/court.db\"",
            "store = \"postgres://fedq:hunter2@127.0.0.1:1/court\"",
        ),
    )
    .unwrap();
    let err = Node::start(NodeConfig::load(&config_path).unwrap(), Limits::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("postgres://127.0.0.1:1/court") && err.contains("cannot connect"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
    let out = fedq(&["node", "serve", "--config", config_path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("cannot connect"),
        "{stderr}"
    );
    assert!(!stderr.contains("node serving"), "{stderr}");
}

/// A node of `config_path` serving on 127.0.0.1, and a coordinator's channel to it.
struct Serving {
    client: NodeClient,
    court: ProvingChannel,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Serving {
    async fn start(fed: &TestFederation, config_path: &std::path::Path) -> Self {
        let node = Node::start(NodeConfig::load(config_path).unwrap(), Limits::default())
            .await
            .unwrap();
        let addr = node.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(node.serve(None, async {
            let _ = stopped.await;
        }));
        let client = NodeClient::new(
            "127.0.0.1:0".parse().unwrap(),
            TlsFiles::in_dir(&fed.pki, "coordinator"),
            Limits::default(),
        )
        .unwrap();
        let court = ProvingChannel::new(client.channel("court", addr), &fed.pki);
        Self {
            client,
            court,
            stop,
            task,
        }
    }

    async fn ask(&self, request: &NodeRequest) -> NodeResponse {
        self.court
            .request(request, Duration::from_secs(5))
            .await
            .unwrap()
    }

    async fn stop(self) {
        self.client.close();
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .unwrap()
            .unwrap();
    }
}

fn blacklist(who: &str) -> NodeRequest {
    lookup(
        who,
        "market-regulation.licensing",
        "administrative-licensing",
        Some(BASIS),
        LookupTarget::View("blacklist-check".into()),
    )
}

/// Issue 13 §6: a node never starts on a store it would have had to create (an empty
/// store answers every person as clean). `fedq node init` is the one way to create it.
#[tokio::test]
async fn a_node_refuses_to_start_on_a_store_that_does_not_exist() {
    refuses_a_store_that_does_not_exist(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_node_refuses_to_start_on_a_postgres_database_without_its_store() {
    refuses_a_store_that_does_not_exist(Backend::postgres("e2e_no_store")).await;
}

async fn refuses_a_store_that_does_not_exist(backend: Backend) {
    let fed = TestFederation::new(&["court"], &[]);
    let config_path = node_config(&fed, "court", &backend);
    let cfg = config_path.to_str().unwrap();
    let err = Node::start(NodeConfig::load(&config_path).unwrap(), Limits::default())
        .await
        .unwrap_err()
        .to_string();
    let expected = match backend {
        Backend::Sqlite => "does not exist",
        Backend::Postgres(_) => "holds no fedq schema",
    };
    assert!(
        err.contains(expected) && err.contains("create it with `fedq node init --config"),
        "{err}"
    );
    // The binary: a non-zero exit, one line, nothing bound, nothing created.
    let out = fedq(&["node", "serve", "--config", cfg]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    // (Log lines, such as the warning that no officer roster is pinned, may come before
    // it; the error is one line.)
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains(expected), "{stderr}");
    assert!(!stderr.contains("node serving"), "{stderr}");
    if matches!(backend, Backend::Sqlite) {
        assert!(
            !fed.root.join("data/court.db").exists(),
            "a store was created"
        );
    }
    // Nor does a repair create one.
    let out = fedq(&[
        "node",
        "repair",
        "--config",
        cfg,
        "--application",
        "rep-000000000000000000000000",
        "--decision",
        cfg,
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(expected));

    // `fedq node init` creates it, says so, and a second run changes nothing.
    let out = fedq(&["node", "init", "--config", cfg]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("created store"));
    let out = fedq(&["node", "init", "--config", cfg]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("already initialised; nothing changed"));
    let serving = Serving::start(&fed, &config_path).await;
    let p = people();
    let answer = serving.ask(&blacklist(&p.active)).await;
    assert!(listings(&answer).is_empty());
    serving.stop().await;
}

/// Issue 13 §6: a node whose catalogue is not the one the policy in force was checked
/// against does not start, and says which dataset and field differ.
#[test]
fn a_node_refuses_to_start_on_a_catalogue_that_differs_from_the_policys() {
    let fed = TestFederation::new(&["court"], &[]);
    let config_path = fed.node_config("court", TODAY);
    let cfg = config_path.to_str().unwrap();
    init(cfg);
    let court = std::fs::read_to_string(fed.root.join("policy/catalogue/court.toml")).unwrap();
    // The node's own copy: `listed_on` no longer negative, `removed_on` gone.
    let listed = "name = \"listed_on\"\ntype = \"date\"\nclass = \"negative\"";
    let removed = "[[dataset.field]]\nname = \"removed_on\"\ntype = \"date\"\nclass = \"negative\"\ndescription = \"屏蔽/撤销时间 — scheduled or actual removal from the list\"\n";
    assert!(court.contains(listed) && court.contains(removed));
    let edited = court
        .replace(
            listed,
            "name = \"listed_on\"\ntype = \"date\"\nclass = \"basic\"",
        )
        .replace(removed, "");
    fed.write("nodes/court-catalogue.toml", &edited);
    let text = std::fs::read_to_string(&config_path).unwrap();
    std::fs::write(
        &config_path,
        text.replace(
            "catalogue = \"../policy/catalogue/court.toml\"",
            "catalogue = \"court-catalogue.toml\"",
        ),
    )
    .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let err = runtime.block_on(async {
        Node::start(NodeConfig::load(&config_path).unwrap(), Limits::default())
            .await
            .unwrap_err()
            .to_string()
    });
    assert!(
        err.contains("court-catalogue.toml` differs from the one policy 0/")
            && err.contains("was checked against"),
        "{err}"
    );
    assert!(
        err.contains("`court.dishonest_debtors`: field `listed_on`: `class` is `basic` here but `negative` in the policy's catalogue"),
        "{err}"
    );
    assert!(
        err.contains(
            "`court.dishonest_debtors`: field `removed_on` of the policy's catalogue is missing"
        ),
        "{err}"
    );
    let out = fedq(&["node", "serve", "--config", cfg]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("field `listed_on`"),
        "{stderr}"
    );
    assert!(!stderr.contains("node serving"), "{stderr}");

    // The same file as the policy's: it starts.
    fed.write("nodes/court-catalogue.toml", &court);
    runtime.block_on(async {
        drop(
            Node::start(NodeConfig::load(&config_path).unwrap(), Limits::default())
                .await
                .unwrap(),
        );
    });
}

/// Runs one statement on the node's store.
fn store_sql(fed: &TestFederation, backend: &Backend, sqlite: &str, postgres: &str) {
    match backend {
        Backend::Sqlite => {
            let conn = fedq_node::store::connect(&fed.root.join("data/court.db")).unwrap();
            assert_eq!(conn.execute(sqlite, []).unwrap(), 1, "{sqlite}");
        }
        Backend::Postgres(db) => pg::run_sql(&db.url, &[postgres.to_owned()]).unwrap(),
    }
}

/// Issue 13 §6: a stored value of the wrong type, a stored body that is not a record, and
/// a window start in the future (which the importer refuses, so only a hand edit or a bad
/// restore puts it there) each make the dataset *unverified* for that person, through the
/// real node: never "no record", nothing of it released, and the audit entry says so.
#[tokio::test]
async fn records_the_node_cannot_verify_are_answered_unverified_never_no_record() {
    answers_unverified(Backend::Sqlite).await;
}

#[tokio::test]
async fn records_a_node_on_postgres_cannot_verify_are_answered_unverified() {
    answers_unverified(Backend::postgres("e2e_unverified")).await;
}

async fn answers_unverified(backend: Backend) {
    let fed = TestFederation::new(&["court"], &[]);
    let config_path = node_config(&fed, "court", &backend);
    let cfg = config_path.to_str().unwrap();
    init(cfg);
    let p = people();
    let csv = fed.write("in/debtors.csv", &debtors_csv(&p));
    let out = fedq(&[
        "node",
        "import",
        "--config",
        cfg,
        "--dataset",
        "dishonest_debtors",
        csv.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let key = |case: &str| format!("record_key = '{case}'");
    // The active listing's date stored as text.
    store_sql(
        &fed,
        &backend,
        &format!("UPDATE records SET body = json_set(body, '$.listed_on', json('{{\"text\":\"2025-06-01\"}}')) WHERE {}", key("(2025)湘0102执101号")),
        &format!("UPDATE records SET body = jsonb_set(body, '{{listed_on}}', '{{\"text\":\"2025-06-01\"}}') WHERE {}", key("(2025)湘0102执101号")),
    );
    // The expired listing moved into the future.
    store_sql(
        &fed,
        &backend,
        &format!("UPDATE records SET body = json_set(body, '$.listed_on.date', '2027-03-01') WHERE {}", key("(2022)湘0103执202号")),
        &format!("UPDATE records SET body = jsonb_set(body, '{{listed_on,date}}', '\"2027-03-01\"') WHERE {}", key("(2022)湘0103执202号")),
    );
    // A body that is no record at all.
    store_sql(
        &fed,
        &backend,
        &format!(
            "UPDATE records SET body = '[1, 2]' WHERE {}",
            key("(2025)湘0104执303号")
        ),
        &format!(
            "UPDATE records SET body = '[1, 2]'::jsonb WHERE {}",
            key("(2025)湘0104执303号")
        ),
    );
    let serving = Serving::start(&fed, &config_path).await;
    let expectations = [
        (&p.active, "field `listed_on` of type `date` holding text"),
        (
            &p.expired,
            "window start `listed_on` after the node's date 2026-11-27",
        ),
        (&p.repaired_by_status, "cannot be read back as a record"),
    ];
    for (who, expected) in expectations {
        match &serving.ask(&blacklist(who)).await {
            l @ NodeResponse::Lookup(_) => {
                let (dataset, reason) = unverified_source(l);
                assert_eq!(dataset, "court.dishonest_debtors", "{expected}");
                assert!(reason.contains(expected), "{reason}");
                for value in ["2025-06-01", "2027-03-01", "[1, 2]"] {
                    assert!(!reason.contains(value), "{reason}");
                }
            }
            other => panic!("{other:?}"),
        }
    }
    // A person with no record still has no record.
    let none = serving.ask(&blacklist(&p.clean)).await;
    assert!(listings(&none).is_empty());
    serving.stop().await;

    let audit = fedq_audit::list(
        &fed.root.join("data/court-audit.db"),
        &fedq_audit::ListFilter::default(),
    )
    .unwrap();
    let unverified = audit
        .iter()
        .filter(|e| e.record.outcome.contains("\"unverified\""))
        .count();
    assert_eq!(unverified, 3, "{audit:?}");
    let all: String = audit.iter().map(|e| e.record.outcome.as_str()).collect();
    assert!(
        !all.contains("2027-03-01") && !all.contains(&p.active),
        "{all}"
    );
}

/// Issue 13 §6: the coordinator sends its date. A node whose date (here its pinned
/// `today`) differs by more than a day answers `failed` with a clock-skew reason, audits
/// it, and releases nothing; within a day it answers, deciding with its own date.
#[tokio::test]
async fn a_node_whose_date_is_off_answers_failed_with_a_clock_skew_reason() {
    let fed = TestFederation::new(&["court"], &[]);
    let config_path = fed.node_config("court", TODAY);
    let cfg = config_path.to_str().unwrap();
    init(cfg);
    let p = people();
    // The clean person gets a listing of 2023-11-28: inside the window on the node's date
    // (2026-11-27), outside it on the day after.
    let csv = fed.write(
        "in/debtors.csv",
        &format!(
            "{}(2023)湘0102执999号,{},孙八,长沙市芙蓉区人民法院,支付货款,100.00,unperformed,2023-11-28,\n",
            debtors_csv(&p),
            p.clean
        ),
    );
    assert!(fedq(&[
        "node",
        "import",
        "--config",
        cfg,
        "--dataset",
        "dishonest_debtors",
        csv.to_str().unwrap()
    ])
    .status
    .success());
    let serving = Serving::start(&fed, &config_path).await;
    let on = |who: &str, date: &str| match blacklist(who) {
        NodeRequest::Lookup(mut l) => {
            l.date = day(date);
            NodeRequest::Lookup(l)
        }
        _ => unreachable!(),
    };
    let at = |date: &str| on(&p.active, date);
    // A coordinator three years ahead (or a node three years behind): no answer.
    for coordinator_date in ["2029-11-27", "2026-11-25"] {
        match serving.ask(&at(coordinator_date)).await {
            NodeResponse::Failed { code, message } => {
                assert_eq!(code, fedq_wire::message::FailureCode::ClockSkew);
                assert!(
                    message.contains("clock skew")
                        && message.contains("its date is 2026-11-27")
                        && message.contains(&format!("the coordinator's is {coordinator_date}")),
                    "{message}"
                );
            }
            other => panic!("expected a clock-skew failure, got {other:?}"),
        }
    }
    // Either side of midnight: answered, with the node's own date deciding (the listing of
    // 2025-06-01 is inside the node's window).
    for coordinator_date in ["2026-11-28", "2026-11-26"] {
        let answer = serving.ask(&at(coordinator_date)).await;
        assert_eq!(listings(&answer).len(), 1, "{answer:?}");
    }
    // The coordinator's date never decides: on its 2026-11-28 the listing of 2023-11-28
    // would be past the three years, on the node's 2026-11-27 it is not — and it is
    // released.
    let answer = serving.ask(&on(&p.clean, "2026-11-28")).await;
    assert_eq!(listings(&answer).len(), 1, "{answer:?}");
    serving.stop().await;
    let audit = fedq_audit::list(
        &fed.root.join("data/court-audit.db"),
        &fedq_audit::ListFilter::default(),
    )
    .unwrap();
    let skewed = audit
        .iter()
        .filter(|e| e.record.outcome.contains("clock_skew"))
        .count();
    assert_eq!(skewed, 2);
}
