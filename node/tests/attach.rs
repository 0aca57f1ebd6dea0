//! Attach mode against a real PostgreSQL schema the test creates: a department's own
//! `enforcement.dishonest` table, mapped onto `court.dishonest_debtors` by a query.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod pg;

use std::path::Path;
use std::sync::{Arc, Mutex};

use fedq_node::attach::{AttachError, Attached};
use fedq_node::config::AttachSpec;
use fedq_node::evidence::Evidence;
use fedq_policy::{Catalogue, Record, Value};

/// The records of an answer that must have been verified.
fn records(evidence: Evidence) -> Vec<Record> {
    match evidence {
        Evidence::Records(r) => r,
        Evidence::Unverified(why) => panic!("unverified: {why}"),
    }
}

fn catalogue() -> Catalogue {
    fedq_policy::load::load_catalogue(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../reference/changsha/catalogue/court.toml"),
    )
    .unwrap()
}

fn rid(first17: &str) -> String {
    let bytes: [u8; 17] = first17.as_bytes().try_into().unwrap();
    let mut s = first17.to_owned();
    s.push(char::from(fedq_wire::resident_id::check_character(&bytes)));
    s
}

const COLUMNS: &str = "case_number AS case_no, id_number AS resident_id, full_name AS name, \
    court_name AS court, duty AS obligation, owed AS amount_owed, status AS performance_status, \
    listed AS listed_on, removed AS removed_on";

/// The department's schema, as it exists before fedq: other names, other types.
fn department_schema(url: &str, a: &str, b: &str) {
    pg::run_sql(
        url,
        &[
            "CREATE SCHEMA enforcement".into(),
            "CREATE TABLE enforcement.dishonest (
                id serial PRIMARY KEY,
                case_number varchar(64) NOT NULL,
                id_number char(18) NOT NULL,
                full_name text,
                court_name text,
                duty text,
                owed numeric(14,2),
                status text,
                listed date,
                removed date)"
                .into(),
            "CREATE INDEX ON enforcement.dishonest (id_number)".into(),
            format!(
                "INSERT INTO enforcement.dishonest
                   (case_number, id_number, full_name, court_name, duty, owed, status, listed, removed) VALUES
                 ('(2025)湘0102执101号', '{a}', '张三丰', '长沙市芙蓉区人民法院', '支付货款', 52000.00, 'unperformed', '2025-06-01', NULL),
                 ('(2025)湘0102执102号', '{a}', '张三丰', '长沙市芙蓉区人民法院', '支付货款', 10.00, 'done-ish', '2025-07-01', NULL),
                 ('(2025)湘0102执103号', '{a}', '张三丰', '长沙市芙蓉区人民法院', '支付货款', 10.00, 'unperformed', NULL, NULL),
                 ('(2024)湘0103执201号', '{b}', '李四', '长沙市天心区人民法院', '偿还借款', 8000, 'performed', '2024-01-10', '2024-09-01')"
            ),
        ],
    )
    .unwrap();
}

fn spec(url: &str, query: &str) -> AttachSpec {
    AttachSpec {
        dataset: "court.dishonest_debtors".into(),
        database: url.into(),
        query: query.into(),
    }
}

/// Captures this thread's log lines.
fn capture_logs() -> (Arc<Mutex<Vec<u8>>>, tracing::subscriber::DefaultGuard) {
    #[derive(Clone)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Arc::new(Mutex::new(Vec::new()));
    let sink = Sink(Arc::clone(&buf));
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .finish();
    (buf, tracing::subscriber::set_default(subscriber))
}

#[tokio::test]
async fn an_attached_dataset_is_read_from_the_departments_own_tables() {
    let db = pg::database("attach_read");
    let (a, b) = (rid("43010219800101123"), rid("43010319750505234"));
    department_schema(&db.url, &a, &b);
    let catalogue = catalogue();
    let query = format!("SELECT {COLUMNS} FROM enforcement.dishonest WHERE id_number = $1;");
    let attached = Attached::open(&spec(&db.url, &query), &catalogue)
        .await
        .unwrap();
    assert_eq!(attached.dataset().qualified, "court.dishonest_debtors");

    let (logs, guard) = capture_logs();
    let evidence = attached.records_of(&a).await.unwrap();
    drop(guard);
    // Beside a valid row, one with an unknown status and one without its listing date:
    // the dataset cannot be verified for this person (never a shorter list that reads as
    // "fewer records"), with a warning per row naming dataset and field, never the value.
    let Evidence::Unverified(why) = evidence else {
        panic!("expected unverified, got {evidence:?}")
    };
    assert!(
        why.contains("attached dataset `court.dishonest_debtors` cannot be read")
            && (why.contains("field `performance_status`") || why.contains("field `listed_on`")),
        "{why}"
    );
    let logs = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("court.dishonest_debtors") && logs.contains("performance_status"),
        "{logs}"
    );
    assert!(logs.contains("listed_on"), "{logs}");
    for secret in ["done-ish", a.as_str(), "张三丰", "(2025)湘0102执102号"] {
        assert!(!logs.contains(secret), "`{secret}` in the logs: {logs}");
        assert!(!why.contains(secret), "`{secret}` in the reason: {why}");
    }

    // The valid row alone, read with its values typed as the catalogue says.
    let valid_only = Attached::open(
        &spec(
            &db.url,
            &format!("SELECT {COLUMNS} FROM enforcement.dishonest WHERE id_number = $1 AND status <> 'done-ish' AND listed IS NOT NULL"),
        ),
        &catalogue,
    )
    .await
    .unwrap();
    let valid = records(valid_only.records_of(&a).await.unwrap());
    assert_eq!(valid.len(), 1, "{valid:?}");
    let r = &valid[0];
    assert_eq!(r["case_no"], Value::Text("(2025)湘0102执101号".into()));
    assert_eq!(r["resident_id"], Value::Text(a.clone()));
    assert_eq!(r["amount_owed"], Value::Amount(5_200_000));
    assert_eq!(
        r["listed_on"],
        Value::Date(time::Date::from_calendar_date(2025, time::Month::June, 1).unwrap())
    );
    assert!(!r.contains_key("removed_on"), "NULL is absent");
    valid_only.close().await;

    let other = records(attached.records_of(&b).await.unwrap());
    assert_eq!(other.len(), 1);
    assert_eq!(
        other[0]["performance_status"],
        Value::Text("performed".into())
    );
    assert_eq!(
        attached
            .records_of(&rid("43011119920202567"))
            .await
            .unwrap(),
        Evidence::Records(Vec::new()),
        "no row is no record"
    );
    attached.close().await;
}

/// Issue 13 §6: a mapping that returns other people's rows is broken; the dataset is
/// unverified for the person asked about, and nothing of anyone is released.
#[tokio::test]
async fn a_mapping_that_returns_other_people_discloses_nothing_of_them() {
    let db = pg::database("attach_others");
    let (a, b) = (rid("43010219800101123"), rid("43010319750505234"));
    department_schema(&db.url, &a, &b);
    // A mistaken query that ignores its parameter.
    let query = format!("SELECT {COLUMNS} FROM enforcement.dishonest WHERE $1::text IS NOT NULL");
    let attached = Attached::open(&spec(&db.url, &query), &catalogue())
        .await
        .unwrap();
    let evidence = attached.records_of(&b).await.unwrap();
    let Evidence::Unverified(why) = evidence else {
        panic!("expected unverified, got {evidence:?}")
    };
    assert!(
        why.contains("a row about another person") && why.contains("`$1`"),
        "{why}"
    );
    assert!(!why.contains(&a) && !why.contains(&b), "{why}");
}

#[tokio::test]
async fn the_departments_database_is_never_written() {
    let db = pg::database("attach_readonly");
    let (a, b) = (rid("43010219800101123"), rid("43010319750505234"));
    department_schema(&db.url, &a, &b);
    // A data-modifying CTE cannot even be wrapped as a subquery: refused at start.
    let query = format!(
        "WITH gone AS (DELETE FROM enforcement.dishonest RETURNING *) SELECT {COLUMNS} FROM gone WHERE id_number = $1"
    );
    let err = Attached::open(&spec(&db.url, &query), &catalogue())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("do not modify data"), "{err}");
    // A function that deletes prepares, but the session is read-only: it fails, and
    // nothing is deleted.
    pg::run_sql(
        &db.url,
        &[
            "CREATE FUNCTION enforcement.purge(text) RETURNS SETOF enforcement.dishonest \
           LANGUAGE sql AS 'DELETE FROM enforcement.dishonest WHERE id_number = $1 RETURNING *'"
                .into(),
        ],
    )
    .unwrap();
    let query = format!("SELECT {COLUMNS} FROM enforcement.purge($1)");
    let attached = Attached::open(&spec(&db.url, &query), &catalogue())
        .await
        .unwrap();
    let err = attached.records_of(&a).await.unwrap_err().to_string();
    assert!(err.contains("read-only"), "{err}");
    assert!(!err.contains(&a), "{err}");
    let check = Attached::open(
        &spec(
            &db.url,
            &format!("SELECT {COLUMNS} FROM enforcement.dishonest WHERE id_number = $1"),
        ),
        &catalogue(),
    )
    .await
    .unwrap();
    assert_eq!(
        records(check.records_of(&b).await.unwrap()).len(),
        1,
        "nothing was deleted"
    );
}

#[tokio::test]
async fn a_database_error_never_quotes_the_resident_id() {
    let db = pg::database("attach_quote");
    let (a, b) = (rid("43010219800101123"), rid("43010319750505234"));
    department_schema(&db.url, &a, &b);
    // A mapping that casts the ID to a number: PostgreSQL quotes the bad input in its error.
    let query = format!(
        "SELECT {COLUMNS} FROM enforcement.dishonest WHERE id_number::numeric = $1::numeric"
    );
    let attached = Attached::open(&spec(&db.url, &query), &catalogue())
        .await
        .unwrap();
    let with_x = rid("43010219800101002");
    assert!(with_x.ends_with('X'), "{with_x}");
    let err = attached.records_of(&with_x).await.unwrap_err().to_string();
    assert!(err.contains("<resident ID>"), "{err}");
    assert!(!err.contains(&with_x), "{err}");
}

#[tokio::test]
async fn mapping_mistakes_are_config_errors_found_at_start() {
    let db = pg::database("attach_mistakes");
    let (a, b) = (rid("43010219800101123"), rid("43010319750505234"));
    department_schema(&db.url, &a, &b);
    let catalogue = catalogue();
    let open = |s: AttachSpec| {
        let catalogue = catalogue.clone();
        async move {
            match Attached::open(&s, &catalogue).await {
                Ok(_) => panic!("`{}` was accepted", s.query),
                Err(e @ AttachError::Config { .. }) => e.to_string(),
                Err(e) => panic!("not a config error: {e}"),
            }
        }
    };
    let from = "FROM enforcement.dishonest WHERE id_number = $1";

    let e = open(spec(
        &db.url,
        &format!(
            "SELECT {} {from}",
            COLUMNS.replace(", listed AS listed_on", "")
        ),
    ))
    .await;
    assert!(e.contains("required column `listed_on` is missing"), "{e}");

    let e = open(spec(
        &db.url,
        &format!("SELECT {}, full_name {from}", COLUMNS),
    ))
    .await;
    assert!(
        e.contains("column `full_name` is not a field of `court.dishonest_debtors`"),
        "{e}"
    );

    let e = open(spec(
        &db.url,
        &format!("SELECT {COLUMNS} {from} AND court_name = $2"),
    ))
    .await;
    assert!(e.contains("takes 2 parameters"), "{e}");

    let e = open(spec(
        &db.url,
        &format!("SELECT {COLUMNS} FROM enforcement.dishonest WHERE id = $1"),
    ))
    .await;
    assert!(e.contains("taking the resident ID as text in `$1`"), "{e}");

    let e = open(spec(&db.url, &format!("SELEC {COLUMNS} {from}"))).await;
    assert!(e.contains("does not prepare"), "{e}");

    let e = open(spec(
        &db.url,
        &format!("SELECT {COLUMNS} FROM enforcement.missing WHERE id_number = $1"),
    ))
    .await;
    assert!(
        e.contains("does not prepare") && e.contains("enforcement.missing"),
        "{e}"
    );

    let e = open(AttachSpec {
        dataset: "court.nope".into(),
        ..spec(&db.url, "SELECT 1 WHERE $1 = ''")
    })
    .await;
    assert!(e.contains("not a dataset of the catalogue"), "{e}");
    let e = open(AttachSpec {
        dataset: "tax.arrears".into(),
        ..spec(&db.url, "SELECT 1 WHERE $1 = ''")
    })
    .await;
    assert!(e.contains("department `tax` is not this node's"), "{e}");

    // A wrong password: named as a connection problem, the password never shown.
    let wrong = db.url.replacen("://fedq:", "://fedq:not-the-password-", 1);
    if wrong != db.url {
        let e = open(spec(&wrong, &format!("SELECT {COLUMNS} {from}"))).await;
        assert!(e.contains("cannot connect to postgres://127.0.0.1:"), "{e}");
        assert!(!e.contains("not-the-password"), "{e}");
    }
}
