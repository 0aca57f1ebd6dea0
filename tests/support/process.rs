//! `fedq` processes for end-to-end tests: started, waited for until they say they serve,
//! stopped with SIGTERM or SIGKILL, measured (peak RSS), and always killed when the test
//! ends — even by a failed assertion.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A `fedq` command (the binary under test).
pub fn fedq() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fedq"))
}

/// How long a one-shot `fedq` command (an import, a certificate, a signature) may take
/// on a debug build with busy cores before the test gives up on it.
pub const COMMAND_LIMIT: Duration = Duration::from_secs(300);

/// Runs `cmd` to its end, at most `limit` (then it is killed and the test fails), and
/// returns what it printed.
pub fn output_within(cmd: &mut Command, limit: Duration) -> std::process::Output {
    use std::io::Read;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    // Drained while it runs, so a full pipe never blocks it.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let give_up = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() >= give_up {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    // The pipes close when the command exits (unless it left a process behind holding
    // them): bounded all the same.
    std::process::Output {
        status,
        stdout: join_within(
            stdout,
            Duration::from_secs(30),
            "reading the command's stdout",
        ),
        stderr: join_within(
            stderr,
            Duration::from_secs(30),
            "reading the command's stderr",
        ),
    }
}

/// Waits at most `limit` for a thread to end and returns what it returned; fails the
/// test (naming `what`) if it does not end in time or panicked. A thread cannot be killed:
/// one that overruns is left to end with the test binary.
pub fn join_within<T>(handle: std::thread::JoinHandle<T>, limit: Duration, what: &str) -> T {
    let give_up = std::time::Instant::now() + limit;
    while !handle.is_finished() {
        assert!(
            std::time::Instant::now() < give_up,
            "{what} did not finish within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    handle.join().unwrap_or_else(|_| panic!("{what} panicked"))
}

/// Runs `cmd` to its end (at most [`COMMAND_LIMIT`]); fails the test with its stderr
/// unless it succeeds.
pub fn run_ok(cmd: &mut Command) -> std::process::Output {
    let out = output_within(cmd, COMMAND_LIMIT);
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// What `fedq node serve` prints on stderr once it serves.
pub const NODE_READY: &str = "node serving";
/// What `fedq coordinator serve` prints on stderr once it serves.
pub const COORDINATOR_READY: &str = "coordinator serving";

/// `fedq KIND serve --config CONFIG` (`KIND`: `node` or `coordinator`).
pub fn serve_command(kind: &str, config: &Path) -> Command {
    let mut cmd = fedq();
    cmd.args([kind, "serve", "--config"]).arg(config);
    cmd
}

/// A running `fedq` process.
pub struct FedqProcess {
    child: Child,
    what: String,
    /// The stderr line that said it serves.
    ready_line: String,
}

impl Drop for FedqProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.wait_within(Duration::from_secs(30));
    }
}

impl FedqProcess {
    /// Starts `cmd` and waits (at most 60 s) until a line of its stderr contains `ready`.
    /// Its stderr keeps being drained (so it never blocks on a full pipe) and, with `log`,
    /// appended to that file.
    pub fn spawn(mut cmd: Command, ready: &str, log: Option<&Path>) -> Self {
        let what = format!("{cmd:?}");
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let ready = ready.to_owned();
        let mut sink = log.map(|p| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .unwrap()
        });
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(f) = sink.as_mut() {
                    let _ = writeln!(f, "{line}");
                }
                if seen.len() < 50 {
                    seen.push(line.clone());
                }
                if line.contains(&ready) {
                    let _ = tx.send(Ok(line.clone()));
                }
            }
            let _ = tx.send(Err(seen.join("\n")));
        });
        let started = rx.recv_timeout(Duration::from_secs(60));
        let mut process = Self {
            child,
            what,
            ready_line: String::new(),
        };
        match started {
            Ok(Ok(line)) => {
                process.ready_line = line;
                process
            }
            Ok(Err(stderr)) => panic!("{} exited before serving:\n{stderr}", process.what),
            Err(_) => panic!("{} did not start within 60 s", process.what),
        }
    }

    /// `fedq node serve` for the node configured at `config`.
    pub fn node(config: &Path, log: Option<&Path>) -> Self {
        Self::spawn(serve_command("node", config), NODE_READY, log)
    }

    /// `fedq coordinator serve` for the coordinator configured at `config`.
    pub fn coordinator(config: &Path, log: Option<&Path>) -> Self {
        Self::spawn(serve_command("coordinator", config), COORDINATOR_READY, log)
    }

    /// The stderr line that said it serves.
    pub fn ready_line(&self) -> &str {
        &self.ready_line
    }

    /// Where it serves `/health` and `/metrics`, as its ready line says
    /// (`… (health and metrics on http://ADDR) …`).
    pub fn ops_addr(&self) -> std::net::SocketAddr {
        self.ready_line
            .split("health and metrics on http://")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("no ops address in `{}`", self.ready_line))
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM (graceful stop), then waits for the exit (at most 60 s: a drain is bounded
    /// by a 10 s grace period; the rest is room for a debug build on busy cores).
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal("TERM");
        self.wait_within(Duration::from_secs(60))
            .unwrap_or_else(|| panic!("{} did not exit within 60 s of SIGTERM", self.what))
    }

    /// Sends `SIG` (`TERM`, `STOP`, `CONT`, …) without waiting for anything.
    pub fn signal(&self, sig: &str) {
        let out = output_within(
            Command::new("kill").args([&format!("-{sig}"), &self.pid().to_string()]),
            Duration::from_secs(30),
        );
        assert!(out.status.success(), "kill -{sig} failed");
    }

    /// Waits at most `limit` for the process to exit; `None` if it is still running.
    pub fn wait_within(&mut self, limit: Duration) -> Option<ExitStatus> {
        let give_up = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if std::time::Instant::now() >= give_up {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL: no goodbye, in-flight work cut. Waits for the exit (at most 30 s).
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        assert!(
            self.wait_within(Duration::from_secs(30)).is_some(),
            "{} did not exit within 30 s of SIGKILL",
            self.what
        );
    }

    /// `VmHWM` (peak resident set) in KiB, from /proc.
    pub fn peak_rss_kib(&self) -> u64 {
        status_field(self.pid(), "VmHWM:")
    }

    /// `VmRSS` (current resident set) in KiB, from /proc.
    pub fn rss_kib(&self) -> u64 {
        status_field(self.pid(), "VmRSS:")
    }
}

fn status_field(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Every node of a built federation as its own process, with its stderr in `logs/` when
/// `logs` is given.
pub fn start_nodes(fed: &fedq_sandbox::Federation, logs: Option<&Path>) -> Vec<FedqProcess> {
    fed.nodes
        .keys()
        .map(|name| {
            let log: Option<PathBuf> = logs.map(|d| d.join(format!("node-{name}.log")));
            FedqProcess::node(&fed.layout.node_config(name), log.as_deref())
        })
        .collect()
}
