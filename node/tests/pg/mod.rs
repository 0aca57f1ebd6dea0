//! A real PostgreSQL server for tests, shared by the node's tests and the root package's
//! end-to-end tests (`#[path = "../node/tests/pg/mod.rs"] mod pg;`).
//!
//! - If `FEDQ_TEST_POSTGRES_URL` is set (`postgres://USER:PASSWORD@HOST:PORT/DB`, a role
//!   that may `CREATE DATABASE`), tests use that server.
//! - Otherwise the first test of a test binary starts a throwaway cluster in a tempdir:
//!   `initdb` (from `/usr/lib/postgresql/*/bin/`, or `PATH`) and `postgres` listening only on
//!   127.0.0.1 on a free port, with a random password; as root, both run as the `postgres`
//!   OS user (`runuser -u postgres`). A small watchdog shell stops the server and deletes
//!   the tempdir once the test binary has exited.
//! - Each test gets its own database (dropped when its [`TestDb`] is).
//! - If neither is possible, the test **fails** with a message saying what to do
//!   (`scripts/ensure-postgres.sh` installs PostgreSQL): PostgreSQL tests never pass
//!   silently without a server.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The environment variable naming an existing server to test against.
pub const URL_VAR: &str = "FEDQ_TEST_POSTGRES_URL";

/// A database of its own for one test.
#[derive(Debug)]
pub struct TestDb {
    /// `postgres://USER:PASSWORD@HOST:PORT/NAME`.
    pub url: String,
    /// The database name.
    pub name: String,
    admin: String,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        let _ = run_sql(&self.admin, &[sql]);
    }
}

struct Server {
    /// URL of the server's maintenance database.
    admin: String,
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// How long one SQL helper call, `id` or `initdb` may take on a debug build with busy
/// cores before the test gives up on it.
const STEP_LIMIT: Duration = Duration::from_secs(120);

/// How long `pg_ctl` may take: it waits at most 60 s (`-t 60`) for the server, plus room.
const PG_CTL_LIMIT: Duration = Duration::from_secs(120);

/// Runs `cmd` to its end, at most `limit` (then it is killed), and returns what it
/// printed. Its output goes to files, not pipes: `pg_ctl start` leaves a server behind
/// that would hold a pipe open after `pg_ctl` itself has exited.
fn output_within(cmd: &mut Command, limit: Duration) -> Result<std::process::Output, String> {
    let out = tempfile::tempfile().map_err(|e| format!("cannot make a temporary file: {e}"))?;
    let err = tempfile::tempfile().map_err(|e| format!("cannot make a temporary file: {e}"))?;
    let (out_w, err_w) = (
        out.try_clone().map_err(|e| e.to_string())?,
        err.try_clone().map_err(|e| e.to_string())?,
    );
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out_w)
        .stderr(err_w)
        .spawn()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    let give_up = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if Instant::now() >= give_up {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{cmd:?} did not finish within {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let read = |mut f: std::fs::File| {
        use std::io::{Read, Seek};
        let mut bytes = Vec::new();
        f.rewind()
            .and_then(|()| f.read_to_end(&mut bytes))
            .map(|_| bytes)
            .map_err(|e| e.to_string())
    };
    Ok(std::process::Output {
        status,
        stdout: read(out)?,
        stderr: read(err)?,
    })
}

/// Runs `f` on a helper thread of its own and waits for its result at most `limit`
/// (a thread cannot be killed: one that overruns is left to end with the test binary).
fn on_helper_thread<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(value) => Ok(value),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(format!(
            "the SQL helper thread did not finish within {limit:?}"
        )),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            Err("the SQL helper thread panicked".to_owned())
        }
    }
}

/// A fresh, empty database on the test server. Panics (fails the test) with what to do
/// when no server can be had.
pub fn database(prefix: &str) -> TestDb {
    let server = match SERVER.get_or_init(server) {
        Ok(s) => s,
        Err(why) => panic!(
            "PostgreSQL tests need a server and none could be had: {why}\n\
             Either install PostgreSQL (run scripts/ensure-postgres.sh; the tests start a \
             throwaway cluster with initdb from /usr/lib/postgresql/*/bin), or set \
             {URL_VAR}=postgres://USER:PASSWORD@HOST:PORT/DB for a role that may CREATE DATABASE."
        ),
    };
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let clean: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(30)
        .collect();
    let name = format!("fedq_{clean}_{}_{n}", std::process::id());
    run_sql(
        &server.admin,
        &[
            format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
            format!("CREATE DATABASE \"{name}\""),
        ],
    )
    .unwrap_or_else(|e| panic!("cannot create test database `{name}`: {e}"));
    TestDb {
        url: with_database(&server.admin, &name),
        name,
        admin: server.admin.clone(),
    }
}

/// Runs statements (one connection, in order) from any context, async or not: on a
/// helper thread with its own runtime.
pub fn run_sql(url: &str, statements: &[String]) -> Result<(), String> {
    let url = url.to_owned();
    let statements = statements.to_vec();
    on_helper_thread(STEP_LIMIT, move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async move {
            use sqlx::{Connection, Executor};
            let mut conn = sqlx::PgConnection::connect(&url)
                .await
                .map_err(|e| e.to_string())?;
            for s in statements {
                conn.execute(sqlx::AssertSqlSafe(s))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            let _ = conn.close().await;
            Ok(())
        })
    })?
}

/// `url` with its database replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..authority_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

fn server() -> Result<Server, String> {
    if let Ok(url) = std::env::var(URL_VAR) {
        if !url.trim().is_empty() {
            run_sql(&url, &["SELECT 1".into()])
                .map_err(|e| format!("{URL_VAR} is set but its server cannot be used: {e}"))?;
            return Ok(Server { admin: url });
        }
    }
    start_cluster()
}

/// The directory holding `initdb` and `postgres`.
fn bin_dir() -> Result<PathBuf, String> {
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
    if let Some((_, bin)) = found.pop() {
        return Ok(bin);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .find(|dir| dir.join("initdb").is_file() && dir.join("postgres").is_file())
        .ok_or_else(|| {
            "PostgreSQL is not installed (no initdb in /usr/lib/postgresql/*/bin or on PATH)".into()
        })
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn id_of(flag: &str) -> Result<u32, String> {
    let out = output_within(Command::new("id").args([flag, "postgres"]), STEP_LIMIT)?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| {
            "running as root, but there is no `postgres` OS user to run the server as".into()
        })
}

/// A command run as the server's OS user.
fn as_server_user(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn random_hex() -> Result<String, String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// `initdb` of a new cluster in a tempdir under /tmp owned by the server's OS user: the
/// binaries' directory, the cluster's directory (data in `data/`) and the password of the
/// `fedq` superuser.
fn init_cluster() -> Result<(PathBuf, PathBuf, String), String> {
    let bin = bin_dir()?;
    // In /tmp, which the postgres user can traverse whatever TMPDIR says.
    let dir = tempfile::Builder::new()
        .prefix("fedq-pg-")
        .tempdir_in("/tmp")
        .map_err(|e| format!("cannot create a tempdir: {e}"))?
        .keep();
    let password = random_hex()?;
    let pwfile = dir.join("pw");
    std::fs::write(&pwfile, format!("{password}\n")).map_err(|e| e.to_string())?;
    if is_root() {
        let (uid, gid) = (id_of("-u")?, id_of("-g")?);
        for p in [&dir, &pwfile] {
            std::os::unix::fs::chown(p, Some(uid), Some(gid))
                .map_err(|e| format!("cannot hand {} to the postgres user: {e}", p.display()))?;
        }
    }
    let data = dir.join("data");
    let mut initdb = as_server_user(&bin.join("initdb"));
    initdb
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            "fedq",
            "--auth=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C",
        ])
        .arg(format!("--pwfile={}", pwfile.display()));
    let out = output_within(&mut initdb, STEP_LIMIT)?;
    if !out.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let _ = std::fs::remove_file(&pwfile);
    Ok((bin, dir, password))
}

fn start_cluster() -> Result<Server, String> {
    let (bin, dir, password) = init_cluster()?;
    let mut last_error = String::new();
    for _attempt in 0..3 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("cannot find a free port: {e}"))?
            .port();
        // The server, and a watchdog that stops it and deletes the tempdir once this test
        // process has exited (or the server died).
        let script = r#"
"$1/postgres" -D "$2/data" -p "$3" -k "$2" -c listen_addresses=127.0.0.1 \
  -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 \
  >"$2/server.log" 2>&1 &
pg=$!
while [ -d "/proc/$4" ] && kill -0 "$pg" 2>/dev/null; do sleep 1; done
if [ -d "/proc/$4" ]; then exit 0; fi
kill -INT "$pg" 2>/dev/null
wait "$pg"
rm -rf "$2"
"#;
        as_server_user(Path::new("sh"))
            .arg("-c")
            .arg(script)
            .arg("sh")
            .arg(&bin)
            .arg(&dir)
            .arg(port.to_string())
            .arg(std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start postgres: {e}"))?;
        let admin = format!("postgres://fedq:{password}@127.0.0.1:{port}/postgres");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match run_sql(&admin, &["SELECT 1".into()]) {
                Ok(()) => return Ok(Server { admin }),
                Err(e) => last_error = e,
            }
            let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
            // Our own early connection attempts log "FATAL: the database system is
            // starting up"; only another FATAL means the server itself failed.
            let failed = log
                .lines()
                .any(|l| l.contains("FATAL") && !l.contains("the database system is starting up"));
            if Instant::now() > deadline || failed {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
        last_error = format!("{last_error}; server log: {}", log.trim());
    }
    Err(format!(
        "the throwaway cluster in {} did not start: {last_error}",
        dir.display()
    ))
}

/// A cluster of a test's own, for a test that stops and starts the server under a running
/// node (the shared server must stay up for the other tests). Started with `pg_ctl`;
/// stopped and deleted when dropped, and by a watchdog once the test process has exited.
#[derive(Debug)]
pub struct OwnCluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    password: String,
}

impl OwnCluster {
    /// initdb and start a new cluster on a free port of 127.0.0.1. Panics with what to do
    /// when PostgreSQL is not installed.
    pub fn start() -> Self {
        let (bin, dir, password) = init_cluster().unwrap_or_else(|why| {
            panic!(
                "this test needs its own PostgreSQL cluster and none could be made: {why}\n\
                 Install PostgreSQL (run scripts/ensure-postgres.sh)."
            )
        });
        let script = r#"
while [ -d "/proc/$1" ]; do sleep 1; done
"$2/pg_ctl" -D "$3/data" -m immediate stop >/dev/null 2>&1
rm -rf "$3"
"#;
        // The watchdog is meant to outlive this process; nobody waits for it.
        #[allow(clippy::zombie_processes)]
        let _watchdog = as_server_user(Path::new("sh"))
            .arg("-c")
            .arg(script)
            .arg("sh")
            .arg(std::process::id().to_string())
            .arg(&bin)
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the cluster's watchdog");
        let mut last_error = String::new();
        for _attempt in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let cluster = Self {
                bin: bin.clone(),
                dir: dir.clone(),
                port,
                password: password.clone(),
            };
            match cluster.pg_ctl_start() {
                Ok(()) => return cluster,
                Err(e) => {
                    last_error = e;
                    std::mem::forget(cluster);
                }
            }
        }
        panic!("the test's own PostgreSQL cluster did not start: {last_error}");
    }

    fn pg_ctl_start(&self) -> Result<(), String> {
        let mut start = as_server_user(&self.bin.join("pg_ctl"));
        start
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-w", "-t", "60", "-o"])
            .arg(format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
                self.port,
                self.dir.display()
            ))
            .arg("start");
        // pg_ctl itself waits at most 60 s (`-t 60`) for the server.
        let out = output_within(&mut start, PG_CTL_LIMIT)?;
        if out.status.success() {
            Ok(())
        } else {
            let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
            Err(format!(
                "pg_ctl start: {} {}; server log: {}",
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim(),
                log.trim()
            ))
        }
    }

    /// The URL of database `name` on this cluster.
    pub fn url(&self, name: &str) -> String {
        format!(
            "postgres://fedq:{}@127.0.0.1:{}/{name}",
            self.password, self.port
        )
    }

    /// Creates database `name`; returns its URL.
    pub fn database(&self, name: &str) -> String {
        run_sql(
            &self.url("postgres"),
            &[format!("CREATE DATABASE \"{name}\"")],
        )
        .unwrap_or_else(|e| panic!("cannot create database `{name}`: {e}"));
        self.url(name)
    }

    /// Stops the server (`pg_ctl stop -m fast`: sessions are ended, as in a real outage).
    pub fn stop(&self) {
        let out = output_within(
            as_server_user(&self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(self.dir.join("data"))
                .args(["-m", "fast", "-w", "-t", "60", "stop"]),
            PG_CTL_LIMIT,
        )
        .unwrap_or_else(|e| panic!("pg_ctl stop: {e}"));
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the stopped server again on the same port.
    pub fn restart(&self) {
        self.pg_ctl_start()
            .unwrap_or_else(|e| panic!("cannot start the cluster again: {e}"));
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        // Bounded like every other wait; the watchdog stops the server anyway once this
        // test process has exited.
        let _ = output_within(
            as_server_user(&self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(self.dir.join("data"))
                .args(["-m", "immediate", "-w", "-t", "60", "stop"]),
            PG_CTL_LIMIT,
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An `ACCESS EXCLUSIVE` lock on a table, held by a connection of its own until dropped
/// (or [`TableLock::release`]d): every statement that reads the table waits — a store
/// that is slow, not down. Lets a test hold lookups provably in flight.
pub struct TableLock {
    release: Option<std::sync::mpsc::Sender<()>>,
    done: std::sync::mpsc::Receiver<Result<(), String>>,
}

impl TableLock {
    /// Returns once the lock is held (at most 30 s).
    pub fn take(url: &str, table: &str) -> Self {
        let (locked_tx, locked) = std::sync::mpsc::channel::<Result<(), String>>();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let (done_tx, done) = std::sync::mpsc::channel();
        let url = url.to_owned();
        let sql = format!("LOCK TABLE \"{table}\" IN ACCESS EXCLUSIVE MODE");
        let locked_err = locked_tx.clone();
        std::thread::spawn(move || {
            let result: Result<(), String> = (move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                rt.block_on(async move {
                    use sqlx::{Connection, Executor};
                    let mut conn = sqlx::PgConnection::connect(&url)
                        .await
                        .map_err(|e| e.to_string())?;
                    let mut tx = conn.begin().await.map_err(|e| e.to_string())?;
                    tx.execute(sqlx::AssertSqlSafe(sql))
                        .await
                        .map_err(|e| e.to_string())?;
                    let _ = locked_tx.send(Ok(()));
                    // Held until released or the test's end (the sender dropped).
                    let _ = tokio::task::spawn_blocking(move || released.recv()).await;
                    tx.rollback().await.map_err(|e| e.to_string())?;
                    let _ = conn.close().await;
                    Ok(())
                })
            })();
            if let Err(e) = &result {
                let _ = locked_err.send(Err(e.clone()));
            }
            let _ = done_tx.send(result);
        });
        match locked.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(())) => Self {
                release: Some(release),
                done,
            },
            Ok(Err(e)) => panic!("cannot lock the table: {e}"),
            Err(_) => panic!("the table lock was not taken within 30 s"),
        }
    }

    /// Ends the lock's transaction; returns once it has ended (at most 30 s).
    pub fn release(mut self) {
        self.end();
    }

    fn end(&mut self) {
        if let Some(release) = self.release.take() {
            let _ = release.send(());
            match self.done.recv_timeout(Duration::from_secs(30)) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => panic!("the table lock's transaction failed: {e}"),
                Err(_) => panic!("the table lock was not released within 30 s"),
            }
        }
    }
}

impl Drop for TableLock {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // Do not panic twice; the connection ends with the test binary.
            let _ = self.release.take().map(|r| r.send(()));
            return;
        }
        self.end();
    }
}

/// How many sessions are waiting for a lock on `table` (their statements are held).
pub fn waiting_on(url: &str, table: &str) -> i64 {
    let url = url.to_owned();
    let name = table.to_owned();
    let table = table.to_owned();
    on_helper_thread(STEP_LIMIT, move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
                 WHERE NOT l.granted AND c.relname = $1",
            )
            .bind(table)
            .fetch_one(&mut conn)
            .await
            .unwrap();
            let _ = conn.close().await;
            n
        })
    })
    .unwrap_or_else(|e| panic!("cannot count the sessions waiting on `{name}`: {e}"))
}
