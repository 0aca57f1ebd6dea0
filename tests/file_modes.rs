//! Files that hold personal data are kept like keys: a node started under `umask 000`
//! still creates its store, audit log and their `-wal`/`-shm` files owner-only, and a
//! process refuses to start on a private key or pseudonym key that others can read.
//! Real `fedq` processes, real certificates, loopback only.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::process::{fedq, FedqProcess, NODE_READY};
use support::TestFederation;

/// `fedq ARGS…` run by a shell that first sets `umask 000`: whatever the process creates
/// without setting a mode itself is world-readable and -writable.
fn under_umask_000(args: &[&str]) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("umask 000 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_fedq"))
        .args(args);
    cmd
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Runs `cmd` to its end (at most 60 s) and returns its exit success and stderr.
fn run_bounded(mut cmd: Command) -> (bool, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} neither served nor exited within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    (status.success(), stderr)
}

#[test]
fn a_node_under_umask_000_keeps_its_store_and_audit_log_owner_only() {
    let fed = TestFederation::new(&["court"], &[]);
    let config = fed.node_config("court", "2026-11-20");
    // Store, audit log and pseudonym key in a directory that does not exist yet.
    let text = std::fs::read_to_string(&config).unwrap();
    assert_eq!(text.matches("\"../data/").count(), 3, "{text}");
    std::fs::write(&config, text.replace("\"../data/", "\"../node-data/")).unwrap();
    let data = fed.root.join("node-data");
    // `fedq node init` creates the store (and its directory), under the same umask.
    let (ok, stderr) = run_bounded(under_umask_000(&[
        "node",
        "init",
        "--config",
        config.to_str().unwrap(),
    ]));
    assert!(ok, "{stderr}");
    assert_eq!(
        mode(&data.join("court.db")),
        0o600,
        "the store init created"
    );
    let node = FedqProcess::spawn(
        under_umask_000(&["node", "serve", "--config", config.to_str().unwrap()]),
        NODE_READY,
        None,
    );
    // The process's own umask really is 000.
    let status = std::fs::read_to_string(format!("/proc/{}/status", node.pid())).unwrap();
    assert!(status.contains("Umask:\t0000"), "{status}");
    for file in [
        "court.db",
        "court.db-wal",
        "court.db-shm",
        "court-audit.db",
        "court-audit.db-wal",
        "court-audit.db-shm",
        "court-pseudonym.key",
    ] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
    assert_eq!(mode(&data), 0o700, "the directory it created");
    drop(node);
}

#[test]
fn a_key_others_can_read_stops_the_start_with_one_line_that_says_how_to_fix_it() {
    let fed = TestFederation::new(&["court"], &[]);
    let config = fed.node_config("court", "2026-11-20");
    let serve = || {
        let mut cmd = fedq();
        cmd.args(["node", "serve", "--config"]).arg(&config);
        cmd
    };
    let mut init = fedq();
    init.args(["node", "init", "--config"]).arg(&config);
    let (ok, stderr) = run_bounded(init);
    assert!(ok, "{stderr}");
    // First start: creates the pseudonym key (0600) and serves.
    drop(FedqProcess::spawn(serve(), NODE_READY, None));

    let pseudonym_key = fed.root.join("data/court-pseudonym.key");
    let tls_key = fed.pki.join("court.key");
    for key in [&tls_key, &pseudonym_key] {
        std::fs::set_permissions(key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let (ok, stderr) = run_bounded(serve());
        assert!(!ok, "started with {} readable by others", key.display());
        // (Log lines may come before it; the error is one line.)
        let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(lines.len(), 1, "{stderr}");
        let name = key.file_name().unwrap().to_str().unwrap();
        assert!(
            lines[0].contains(name)
                && lines[0].contains("mode 0644")
                && lines[0].contains("chmod 600 ")
                && lines[0].ends_with(&format!("{name}`")),
            "{stderr}"
        );
        std::fs::set_permissions(key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    // Fixed as told, it starts.
    drop(FedqProcess::spawn(serve(), NODE_READY, None));
}
