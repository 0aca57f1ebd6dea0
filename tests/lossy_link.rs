//! A slow and lossy link: the whole federation (seven nodes, the coordinator, and the
//! requester's `fedq query`) runs inside a network namespace this test creates, whose
//! loopback gets `tc netem delay 50ms loss 5%`. Traffic never leaves that namespace's
//! loopback; the namespace is deleted when the test ends, however it ends.
//!
//! Needs root, `ip`, `tc` and the kernel's `sch_netem` qdisc. Where any is missing the test
//! says so on stderr and passes without checking anything (a skip, loudly).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::os::unix::fs::MetadataExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use fedq_demo::{build, BuildOptions, Federation, LICENSING_BASIS};
use serde_json::Value;
use support::process::{FedqProcess, COORDINATOR_READY, NODE_READY};
use support::report;

/// The netem discipline under test.
const NETEM: [&str; 4] = ["delay", "50ms", "loss", "5%"];

/// A network namespace of this test's own, deleted on drop.
struct Namespace(String);

impl Namespace {
    fn create() -> Result<Self, String> {
        let name = format!("fedq-lossy-{}", std::process::id());
        let out = run("ip", &["netns", "add", &name])?;
        if !out.status.success() {
            return Err(format!(
                "`ip netns add` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let ns = Self(name);
        let out = ns.exec("ip", &["link", "set", "lo", "up"])?;
        if !out.status.success() {
            return Err(format!(
                "cannot bring up the namespace's loopback: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(ns)
    }

    /// `ip netns exec NAME program args…`.
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.0, program]);
        cmd
    }

    fn exec(&self, program: &str, args: &[&str]) -> Result<Output, String> {
        self.command(program)
            .args(args)
            .output()
            .map_err(|e| format!("cannot run `ip netns exec`: {e}"))
    }

    /// `tc qdisc VERB dev lo root netem …` inside the namespace.
    fn netem(&self, verb: &str) -> Result<(), String> {
        let mut args = vec!["qdisc", verb, "dev", "lo", "root", "netem"];
        args.extend(NETEM);
        let out = self.exec("tc", &args)?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = run("ip", &["netns", "del", &self.0]);
    }
}

fn run(program: &str, args: &[&str]) -> Result<Output, String> {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `{program}`: {e}"))
}

/// Says why the test checks nothing, uncaptured (it shows in every run's output).
fn skip(why: &str) {
    report(&format!(
        "SKIPPED a_slow_lossy_link_gives_statuses_within_the_deadline_never_a_wrong_answer: {why}"
    ));
}

/// `fedq query --json` as the licensing office, inside the namespace; at most 60 s.
fn query_inside(ns: &Namespace, fed: &Federation, subject: &str) -> Value {
    let pki = fed.layout.pki();
    let mut child = ns
        .command(env!("CARGO_BIN_EXE_fedq"))
        .args(["query", "--json", "--coordinator"])
        .arg(format!("https://{}", fed.coordinator))
        .arg("--cert")
        .arg(pki.join("market-regulation.licensing.crt"))
        .arg("--key")
        .arg(pki.join("market-regulation.licensing.key"))
        .arg("--ca")
        .arg(pki.join("ca.crt"))
        .args([
            "--subject",
            subject,
            "--purpose",
            "administrative-licensing",
        ])
        .args(["--basis", LICENSING_BASIS, "--view", "blacklist-check"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let give_up = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > give_up {
            let _ = child.kill();
            panic!("`fedq query` gave no answer within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "fedq query: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

#[test]
fn a_slow_lossy_link_gives_statuses_within_the_deadline_never_a_wrong_answer() {
    if !is_root() {
        return skip("network namespaces need root");
    }
    for tool in ["ip", "tc"] {
        if run(tool, &["-V"]).is_err() {
            return skip(&format!("`{tool}` is not installed (iproute2)"));
        }
    }
    // The namespace first: dropped last, after every process in it is killed.
    let ns = match Namespace::create() {
        Ok(ns) => ns,
        Err(why) => return skip(&why),
    };
    // Probe netem before building anything; the link stays clean for the reference answer.
    if let Err(why) = ns.netem("add") {
        return skip(&format!(
            "`tc qdisc add dev lo root netem` is refused here ({why}); the kernel lacks the \
             sch_netem module"
        ));
    }
    let out = ns
        .exec("tc", &["qdisc", "del", "dev", "lo", "root"])
        .unwrap();
    assert!(out.status.success());

    let tmp = tempfile::tempdir().unwrap();
    let fed = build(tmp.path(), &BuildOptions::for_tests(300, 41)).unwrap();
    let mut processes = Vec::new();
    for name in fed.nodes.keys() {
        let mut cmd = ns.command(env!("CARGO_BIN_EXE_fedq"));
        cmd.args(["node", "serve", "--config"])
            .arg(fed.layout.node_config(name));
        processes.push(FedqProcess::spawn(cmd, NODE_READY, None));
    }
    let mut cmd = ns.command(env!("CARGO_BIN_EXE_fedq"));
    cmd.args(["coordinator", "serve", "--config"])
        .arg(fed.layout.coordinator_config());
    processes.push(FedqProcess::spawn(cmd, COORDINATOR_READY, None));

    let subject = fed.scenario.blacklisted.resident_id.clone();
    let reference = query_inside(&ns, &fed, &subject);
    assert_eq!(reference["complete"], true, "{reference}");

    ns.netem("add").unwrap();
    let mut complete = 0;
    let rounds = 12;
    for _ in 0..rounds {
        let answer = query_inside(&ns, &fed, &subject);
        for node in answer["nodes"].as_array().unwrap() {
            let status = node["status"].as_str().unwrap();
            match status {
                "ok" | "no_record" => {
                    let expected = reference["nodes"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|n| n["node"] == node["node"])
                        .unwrap();
                    assert_eq!(node, expected, "{answer}");
                }
                // The deadline holds: a node that did not answer in time is reported
                // as such, with the coordinator's 2 s deadline.
                "timed_out" => {
                    assert_eq!(node["reason"], "no answer within 2000 ms", "{answer}");
                }
                "unavailable" => assert!(node["reason"].is_string(), "{answer}"),
                other => panic!("unexpected status {other}: {answer}"),
            }
        }
        if answer["complete"] == true {
            assert_eq!(answer["view_result"], reference["view_result"], "{answer}");
            complete += 1;
        } else {
            assert!(
                answer["nodes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|n| n["status"] == "timed_out" || n["status"] == "unavailable"),
                "{answer}"
            );
        }
    }
    report(&format!(
        "lossy link (netem {}): {complete} of {rounds} answers complete",
        NETEM.join(" ")
    ));
    // 5% loss on a 100 ms round trip is recoverable within 2 s for most questions.
    assert!(complete > 0, "no answer was complete over the lossy link");
    drop(processes);
    drop(ns);
}
