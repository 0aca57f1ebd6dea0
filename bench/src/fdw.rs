//! The baseline: the same lookups the way a database administrator would do them without
//! fedq. One PostgreSQL server on this host, one database per department holding the same
//! records, a "platform" database with postgres_fdw foreign tables onto them, and one query
//! per lookup that UNIONs the department tables for the subject, run as a role whose column
//! privileges stand in for the policy.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions, Executor, PgConnection};

use crate::{err, summarize, BenchError};

/// A throwaway PostgreSQL cluster, stopped and deleted on drop.
#[derive(Debug)]
pub struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    server: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // `runuser` does not pass signals on: stop the server itself, then reap runuser.
        let _ = as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "fast", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.server.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn bin_dir() -> Result<PathBuf, BenchError> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, b)| b).ok_or_else(|| {
        BenchError("PostgreSQL is not installed; run scripts/ensure-postgres.sh".into())
    })
}

fn as_postgres(program: &Path) -> Command {
    let mut c = Command::new("runuser");
    c.args(["-u", "postgres", "--"]).arg(program);
    c
}

/// Starts a cluster as the `postgres` OS user (the bench runs as root on the build
/// machines), trusting connections on 127.0.0.1 only.
pub fn start() -> Result<Cluster, BenchError> {
    let bin = bin_dir()?;
    let dir = tempfile::Builder::new()
        .prefix("fedq-bench-pg-")
        .tempdir_in(std::env::temp_dir())
        .map_err(err("cluster dir"))?
        .keep();
    let status = Command::new("chown")
        .arg("postgres:postgres")
        .arg(&dir)
        .status()
        .map_err(err("chown"))?;
    if !status.success() {
        return Err(BenchError(
            "cannot hand the cluster directory to the postgres user".into(),
        ));
    }
    let data = dir.join("data");
    let out = as_postgres(&bin.join("initdb"))
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ])
        .output()
        .map_err(err("initdb"))?;
    if !out.status.success() {
        return Err(BenchError(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(err("free port"))?
        .port();
    let server = as_postgres(&bin.join("postgres"))
        .arg("-D")
        .arg(&data)
        .args([
            "-p",
            &port.to_string(),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "max_connections=400",
        ])
        .arg("-k")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(err("postgres"))?;
    let cluster = Cluster {
        bin,
        dir,
        server,
        port,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(BenchError("PostgreSQL did not start within 30 s".into()));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(cluster)
}

fn options(port: u16, database: &str) -> PgConnectOptions {
    PgConnectOptions::new()
        .host("127.0.0.1")
        .port(port)
        .username("postgres")
        .database(database)
        .disable_statement_logging()
}

async fn exec(conn: &mut PgConnection, sql: String) -> Result<(), BenchError> {
    conn.execute(AssertSqlSafe(sql.clone()))
        .await
        .map(|_| ())
        .map_err(|e| BenchError(format!("baseline SQL `{sql}`: {e}")))
}

/// One department's table as the bench loads it.
#[derive(Debug)]
pub struct Department<'a> {
    /// Department.
    pub name: &'a str,
    /// The CSV export of its dataset (header row of catalogue field names).
    pub csv: &'a Path,
    /// The subject column.
    pub subject: &'a str,
    /// The column the "policy" grants (a column privilege).
    pub granted: &'a str,
}

fn db_name(dept: &str) -> String {
    dept.replace('-', "_")
}

/// Loads each department into its own database and builds the platform database.
pub async fn load(cluster: &Cluster, departments: &[Department<'_>]) -> Result<(), BenchError> {
    // The port accepts before the server accepts sessions ("starting up"): retry, bounded.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut admin = loop {
        match options(cluster.port, "postgres").connect().await {
            Ok(conn) => break conn,
            Err(e) if Instant::now() > deadline => return Err(err("connect")(e)),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    exec(&mut admin, "CREATE ROLE licensing LOGIN".into()).await?;
    exec(&mut admin, "CREATE DATABASE platform".into()).await?;
    for d in departments {
        let db = db_name(d.name);
        exec(&mut admin, format!("CREATE DATABASE {db}")).await?;
        let mut conn = options(cluster.port, &db)
            .connect()
            .await
            .map_err(err("connect department"))?;
        let header = csv::Reader::from_path(d.csv)
            .map_err(err("read export"))?
            .headers()
            .map_err(err("read export"))?
            .clone();
        let columns: Vec<String> = header.iter().map(|h| format!("{h} text")).collect();
        exec(
            &mut conn,
            format!("CREATE TABLE records ({})", columns.join(", ")),
        )
        .await?;
        let mut copy = conn
            .copy_in_raw("COPY records FROM STDIN WITH (FORMAT csv, HEADER true)")
            .await
            .map_err(err("copy"))?;
        let bytes = std::fs::read(d.csv).map_err(err("read export"))?;
        for chunk in bytes.chunks(1 << 20) {
            copy.send(chunk.to_vec()).await.map_err(err("copy"))?;
        }
        copy.finish().await.map_err(err("copy"))?;
        exec(
            &mut conn,
            format!("CREATE INDEX ON records ({})", d.subject),
        )
        .await?;
        exec(&mut conn, "ANALYZE records".into()).await?;
    }
    let mut platform = options(cluster.port, "platform")
        .connect()
        .await
        .map_err(err("connect platform"))?;
    exec(&mut platform, "CREATE EXTENSION postgres_fdw".into()).await?;
    // The audited variant's register (长政办发〔2017〕62号 §八): one durable row per lookup,
    // appended in the lookup's own transaction, keyed by a digest of the subject.
    for sql in [
        "CREATE TABLE audit_log (seq bigserial PRIMARY KEY, at timestamptz NOT NULL, requester text NOT NULL, subject_digest text NOT NULL, rows_released int NOT NULL)",
        "GRANT INSERT ON audit_log TO licensing",
        "GRANT USAGE ON SEQUENCE audit_log_seq_seq TO licensing",
    ] {
        exec(&mut platform, sql.into()).await?;
    }
    for d in departments {
        let db = db_name(d.name);
        for sql in [
            format!(
                "CREATE SERVER {db} FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '127.0.0.1', port '{}', dbname '{db}')",
                cluster.port
            ),
            format!("CREATE USER MAPPING FOR PUBLIC SERVER {db} OPTIONS (user 'postgres', password_required 'false')"),
            format!("CREATE SCHEMA {db}"),
            format!("IMPORT FOREIGN SCHEMA public LIMIT TO (records) FROM SERVER {db} INTO {db}"),
            format!("GRANT USAGE ON SCHEMA {db} TO licensing"),
            format!("GRANT SELECT ({}, {}) ON {db}.records TO licensing", d.subject, d.granted),
        ] {
            exec(&mut platform, sql).await?;
        }
    }
    Ok(())
}

/// The UNION query over the first `fanout` departments.
fn union(departments: &[Department<'_>], fanout: usize) -> String {
    departments
        .iter()
        .take(fanout)
        .map(|d| {
            format!(
                "SELECT '{}' AS department, {} AS released FROM {}.records WHERE {} = $1",
                d.name,
                d.granted,
                db_name(d.name),
                d.subject
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
}

/// How the baseline answers a lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// The UNION query alone: nothing registered.
    Plain,
    /// The UNION query and one audit row in the platform database, committed durably
    /// (`synchronous_commit` on, the default) before the answer counts: what a department
    /// would need for the query register.
    Audited,
}

const AUDIT_ROW: &str = "INSERT INTO audit_log (at, requester, subject_digest, rows_released) VALUES (now(), 'market-regulation.licensing', md5($1), $2)";

/// One lookup as `variant` does it.
async fn lookup(
    pool: &sqlx::PgPool,
    sql: &str,
    subject: String,
    variant: Variant,
) -> Result<(), sqlx::Error> {
    match variant {
        Variant::Plain => sqlx::query(AssertSqlSafe(sql.to_owned()))
            .bind(subject)
            .fetch_all(pool)
            .await
            .map(|_| ()),
        Variant::Audited => {
            let mut tx = pool.begin().await?;
            let rows = sqlx::query(AssertSqlSafe(sql.to_owned()))
                .bind(&subject)
                .fetch_all(&mut *tx)
                .await?;
            sqlx::query(AUDIT_ROW)
                .bind(&subject)
                .bind(i32::try_from(rows.len()).unwrap_or(i32::MAX))
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        }
    }
}

/// One load point against the platform database, as the `licensing` role.
#[allow(clippy::too_many_arguments)]
pub async fn load_point(
    cluster: &Cluster,
    departments: &[Department<'_>],
    fanout: usize,
    concurrency: usize,
    seconds: u64,
    subject_of: fn(u64) -> String,
    records: u64,
    variant: Variant,
) -> Result<Value, BenchError> {
    let size = u32::try_from(concurrency).unwrap_or(u32::MAX);
    let pool = PgPoolOptions::new()
        .max_connections(size)
        .min_connections(size)
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute("SET ROLE licensing").await?;
                Ok(())
            })
        })
        .connect_with(options(cluster.port, "platform"))
        .await
        .map_err(err("pool"))?;
    let sql = union(departments, fanout);
    let warm_until = Instant::now() + Duration::from_secs(1);
    let stop_at = warm_until + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for c in 0..concurrency {
        let pool = pool.clone();
        let sql = sql.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            let mut i = c as u64 * 104_729;
            while Instant::now() < stop_at {
                i = i.wrapping_add(7919);
                let subject = subject_of(i % records.max(1));
                let t = Instant::now();
                let ok = lookup(&pool, &sql, subject, variant).await.is_ok();
                if t >= warm_until {
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
    let point = summarize(tasks, fanout, concurrency, seconds).await;
    pool.close().await;
    point
}
