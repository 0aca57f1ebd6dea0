//! The officers' console in a real browser: two `fedq console` processes (officers zhang
//! and li) beside a running federation, driven by headless Debian Chromium through
//! Selenium (`tests/console/browser.py`): a typo marked at its line, its fix, a real
//! change seen as a gain, a bundle made, reviewed and signed by both officers, published
//! and reported by every node, the audit log filtered to one case. What the browser did is
//! then checked on disk and at the coordinator, not taken from the script's word.
//!
//! `scripts/ensure-browser.sh` (run by `scripts/test.sh`) installs Chromium, ChromeDriver,
//! the CJK fonts and Selenium; without them this test fails and says so.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fedq_sandbox::{Federation, Running, LICENSING_BASIS, LICENSING_CASE};
use fedq_testkit::federation;
use support::process::{fedq, output_within, COMMAND_LIMIT};

/// A running console; killed when dropped.
struct Console {
    child: Child,
    url: String,
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `fedq console` as `who` (certificate and key in the federation's PKI) on `policy`,
/// against the federation's set-up policy, with `bundles`; no coordinator, no address.
fn console_command(
    fed: &Federation,
    who: &str,
    policy: &Path,
    catalogue: &Path,
    bundles: &Path,
) -> Command {
    let pki = fed.layout.pki();
    let mut cmd = fedq();
    cmd.arg("console")
        .arg("--cert")
        .arg(pki.join(format!("{who}.crt")))
        .arg("--key")
        .arg(pki.join(format!("{who}.key")))
        .arg("--policy")
        .arg(policy)
        .arg("--catalogue")
        .arg(catalogue)
        .arg("--in-force")
        .arg(fed.layout.policy())
        .arg("--bundles")
        .arg(bundles);
    cmd
}

/// The reference catalogue directory of the federation.
fn catalogue_of(fed: &Federation) -> PathBuf {
    fed.layout.policy().parent().unwrap().join("catalogue")
}

/// Starts a console and reads (at most 60 s) the login link it prints.
fn started(cmd: &mut Command) -> Console {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(url) = line.strip_prefix("console: ") {
                let _ = tx.send(url.to_owned());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the console printed no login link within 60 s");
    Console { child, url }
}

/// `officer`'s console beside the running federation: its coordinator, its logs, every
/// node's filings.
fn console(fed: &Federation, officer: &str, policy: &Path, bundles: &Path) -> Console {
    let mut cmd = console_command(fed, officer, policy, &catalogue_of(fed), bundles);
    cmd.arg("--coordinator")
        .arg(format!("https://{}", fed.coordinator))
        .arg("--ca")
        .arg(fed.layout.pki().join("ca.crt"))
        .arg("--coordinator-config")
        .arg(fed.layout.coordinator_config())
        .args(["--listen", "127.0.0.1:0"]);
    for dept in fed.nodes.keys() {
        cmd.arg("--node-config").arg(fed.layout.node_config(dept));
    }
    started(&mut cmd)
}

/// The Python of the venv `scripts/ensure-browser.sh` makes.
fn browser_python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser-tools/bin/python");
    assert!(
        python.exists() && Path::new("/usr/bin/chromium").exists(),
        "no browser to test the console in: run `bash scripts/ensure-browser.sh` (scripts/test.sh does)"
    );
    python
}

/// `fedq query` as the licensing office, blacklist check of `subject`, citing `case`.
fn licensing_query(pki: &Path, coordinator: std::net::SocketAddr, subject: &str, case: &str) {
    let out = output_within(
        fedq()
            .arg("query")
            .arg("--coordinator")
            .arg(format!("https://{coordinator}"))
            .arg("--cert")
            .arg(pki.join("market-regulation.licensing.crt"))
            .arg("--key")
            .arg(pki.join("market-regulation.licensing.key"))
            .arg("--ca")
            .arg(pki.join("ca.crt"))
            .args(["--subject", subject])
            .args([
                "--purpose",
                "administrative-licensing",
                "--view",
                "blacklist-check",
            ])
            .args(["--basis", LICENSING_BASIS, "--case", case, "--json"]),
        COMMAND_LIMIT,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_officers_change_the_policy_in_the_browser_and_every_node_runs_it() {
    let python = browser_python();
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(&tmp.path().join("fed"), 300, 21);
    let running = Running::start(&fed, None).await.unwrap();

    // Something to audit: two queries for the licensing case, one for another.
    let (pki, coordinator) = (fed.layout.pki(), fed.coordinator);
    let subject = fed.scenario.blacklisted.resident_id.clone();
    tokio::task::spawn_blocking(move || {
        licensing_query(&pki, coordinator, &subject, LICENSING_CASE);
        licensing_query(&pki, coordinator, &subject, "长市监许申〔2026〕000099号");
        licensing_query(&pki, coordinator, &subject, LICENSING_CASE);
    })
    .await
    .unwrap();
    let coordinator_audit =
        fedq_audit::review::config_path(&fed.layout.coordinator_config(), "audit").unwrap();
    let case_entries = fedq_audit::list(
        &coordinator_audit,
        &fedq_audit::ListFilter {
            case_reference: Some(LICENSING_CASE.into()),
            ..Default::default()
        },
    )
    .unwrap()
    .len();
    assert!(case_entries >= 2, "{case_entries} entries of the case");

    // Something for the citizens' page: the listed person objects to the court's record,
    // and the service window files a complaint on someone's behalf.
    let record =
        fedq_sandbox::rights::record_key(&fed.scenario.blacklisted, "court.dishonest_debtors")
            .expect("the blacklisted person is on the court's list");
    let (status, filed) = fedq_sandbox::rights::file(
        &fed,
        &fed.scenario.blacklisted.resident_id,
        "object",
        "court.dishonest_debtors",
        fedq_wire::rights::Filing {
            record,
            reason: "已履行完毕".into(),
            evidence: "法院收据 2026-0001".into(),
            grounds: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{filed}");
    let objection = objection_id(&filed);
    let complaint = fedq_sandbox::rights::file_complaint(
        &fed,
        &fedq_coordinator::complaints::complaint::ComplaintRequest {
            about: fedq_coordinator::complaints::complaint::ComplaintAbout::Leak(true),
            text: "个人信息疑似外泄".into(),
            contact: None,
        },
    )
    .await
    .unwrap()
    .complaint_id;

    // The officers' working copy of the policy and the shared bundles directory.
    let office = tmp.path().join("office");
    std::fs::create_dir_all(&office).unwrap();
    let working = office.join("policy.toml");
    std::fs::copy(fed.layout.policy(), &working).unwrap();
    let bundles = office.join("bundles");
    let a = console(&fed, "officer-zhang", &working, &bundles);
    let b = console(&fed, "officer-li", &working, &bundles);

    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-shots");
    std::fs::create_dir_all(&shots).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console/browser.py");
    let (a_url, b_url) = (a.url.clone(), b.url.clone());
    let (complaint_arg, objection_arg) = (complaint.clone(), objection.clone());
    let out = tokio::task::spawn_blocking(move || {
        output_within(
            Command::new(python)
                .arg(script)
                .args(["--a", &a_url, "--b", &b_url, "--case", LICENSING_CASE])
                .args(["--case-entries", &case_entries.to_string()])
                .args(["--complaint", &complaint_arg, "--objection", &objection_arg])
                .arg("--shots")
                .arg(&shots),
            Duration::from_secs(240),
        )
    })
    .await
    .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the browser run failed:\n{said}");
    for step in [
        "typo",
        "changes",
        "sign-publish-b",
        "audit",
        "citizens",
        "keyboard",
    ] {
        assert!(said.contains(&format!("ok: {step}")), "{said}");
    }

    // What the browser did, checked where it lands. The working copy holds the change.
    let saved = std::fs::read_to_string(&working).unwrap();
    assert!(
        saved.contains(r#"fields = ["decided_on", "benefit"]"#),
        "not saved"
    );
    // The bundle carries both officers' signatures, verified by their certificates.
    let bundle = fedq_bundle::Bundle::parse(
        &std::fs::read_to_string(bundles.join("bundle-1.toml")).unwrap(),
    )
    .unwrap();
    bundle.check_integrity().unwrap();
    assert_eq!(
        bundle.policy, saved,
        "the bundle is not the saved working copy"
    );
    let signers: Vec<&str> = bundle
        .signature
        .iter()
        .map(|s| s.officer.as_str())
        .collect();
    assert_eq!(signers.len(), 2, "{signers:?}");
    assert!(signers.iter().any(|s| s.ends_with("officer-zhang")));
    assert!(signers.iter().any(|s| s.ends_with("officer-li")));
    // The coordinator and every node run it: asked of the coordinator directly.
    let api = fedq_coordinator::client::ApiArgs {
        coordinator: format!("https://{}", fed.coordinator),
        cert: fed.layout.pki().join("officer-wang.crt"),
        key: fed.layout.pki().join("officer-wang.key"),
        ca: fed.layout.pki().join("ca.crt"),
        crl: None,
    };
    let (status, body) = fedq_coordinator::client::policy_status(&api).await.unwrap();
    assert_eq!(status, 200, "{body}");
    let s: fedq_client::api::PolicyStatus = serde_json::from_value(body).unwrap();
    assert_eq!(s.coordinator.version, 1);
    assert_eq!(s.coordinator.content_sha256, bundle.content_sha256);
    assert!(s.in_step, "{s:?}");
    assert_eq!(s.nodes.len(), fed.nodes.len());
    for n in &s.nodes {
        assert_eq!(n.version.as_ref().map(|v| v.version), Some(1), "{n:?}");
    }
    // The licensing office now gets the benefit kind of a fraud record, as the diff said.
    let engine = fedq_policy::load::parse_policy(
        &saved,
        "policy.toml",
        &fed.layout.policy().parent().unwrap().join("catalogue"),
    )
    .unwrap()
    .compile();
    let access = fedq_policy::analysis::who_can(
        &engine,
        "hrss.benefit_fraud.benefit",
        fedq_policy::calendar::date_or_today(None).unwrap(),
    )
    .unwrap();
    assert!(access
        .iter()
        .any(|a| a.requester == "market-regulation.licensing"));

    // The complaint went into review under officer li's signed statement.
    let state = fedq_sandbox::rights::complaint_status(&fed, &complaint)
        .await
        .unwrap();
    assert_eq!(state.status.as_str(), "in-review");
    // The objection was decided at the court, by officer li's signed decision.
    let court = fedq_node::config::NodeConfig::load(&fed.layout.node_config("court")).unwrap();
    let decided = fedq_node::remedies::objections(&court, None).unwrap();
    let o = decided.iter().find(|o| o.id == objection).unwrap();
    assert_eq!(o.status.as_str(), "corrected");
    assert!(
        o.resolution
            .as_ref()
            .is_some_and(|d| d.officer.contains("officer-li")),
        "{:?}",
        o.resolution
    );

    drop((a, b));
    running.stop().await;
}

/// The console refuses what it must: a non-loopback address, a request without the
/// session, a change from another origin, a foreign `Host` (DNS rebinding).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_serves_only_its_own_browser_session() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(&tmp.path().join("fed"), 50, 22);
    let pki = fed.layout.pki();
    let working = tmp.path().join("policy.toml");
    std::fs::copy(fed.layout.policy(), &working).unwrap();
    let catalogue = catalogue_of(&fed);

    let bundles = tmp.path().join("bundles");
    let out = output_within(
        console_command(&fed, "officer-zhang", &working, &catalogue, &bundles)
            .args(["--listen", "0.0.0.0:0"]),
        COMMAND_LIMIT,
    );
    assert!(!out.status.success());
    let why = String::from_utf8_lossy(&out.stderr);
    assert!(why.contains("not a loopback address"), "{why}");

    // A requester's certificate is not an officer's.
    let out = output_within(
        console_command(
            &fed,
            "market-regulation.licensing",
            &working,
            &catalogue,
            &bundles,
        )
        .args(["--listen", "127.0.0.1:0"]),
        COMMAND_LIMIT,
    );
    assert!(
        !out.status.success(),
        "a requester's key opened the console"
    );
    let why = String::from_utf8_lossy(&out.stderr);
    assert!(why.contains("cannot sign policies"), "{why}");

    let c = console_without_federation(&fed, &working, &catalogue, &bundles, &[]);
    let (host, base, session) = parts(&c);
    let status = |method: &str, path: &str, headers: &[(&str, &str)], body: &str| {
        http_status(&host, method, path, headers, body)
    };
    let get = |path: &str, headers: &[(&str, &str)]| status("GET", path, headers, "");
    assert_eq!(get(&format!("{session}/policy"), &[]), 200);
    assert_eq!(get("/policy", &[]), 401, "no session");
    let wrong = format!("/s/{}/policy", "0".repeat(64));
    assert_eq!(get(&wrong, &[]), 401, "a wrong token of the right shape");
    assert_eq!(get("/s//policy", &[]), 401, "an empty token");
    let port = host.rsplit(':').next().unwrap().to_owned();
    assert_eq!(
        get(
            &format!("{session}/policy"),
            &[("Host", &format!("evil.example:{port}"))]
        ),
        421,
        "a rebinding name"
    );
    // A refusal carries the security headers too.
    let (_, headers) = http_head(&host, "/policy");
    assert!(
        headers.contains("content-security-policy: default-src 'none'"),
        "{headers}"
    );
    // A change without this origin, and from another.
    let form = "file=policy&action=save&text=version%20%3D%20";
    let post = |origin: Option<&str>| {
        let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
        if let Some(o) = origin {
            headers.push(("Origin", o));
        }
        status("POST", &format!("{session}/policy"), &headers, form)
    };
    let before = std::fs::read_to_string(&working).unwrap();
    assert_eq!(post(None), 403);
    assert_eq!(post(Some("http://evil.example")), 403);
    assert_eq!(
        std::fs::read_to_string(&working).unwrap(),
        before,
        "a refused save wrote"
    );
    // From its own origin, a policy that does not check is not saved either.
    assert_eq!(post(Some(&base)), 200);
    assert_eq!(
        std::fs::read_to_string(&working).unwrap(),
        before,
        "an invalid policy was saved"
    );
    drop(c);

    // With a coordinator that cannot be reached, the version in force is not confirmed:
    // a real bundle is neither shown for signing nor signed.
    let bundles = tmp.path().join("bundles-2");
    std::fs::create_dir_all(&bundles).unwrap();
    let bundle = bundles.join("bundle-1.toml");
    let out = output_within(
        fedq()
            .args(["policy", "bundle"])
            .arg(&working)
            .args(["--federation", "changsha", "--bundle-version", "1"])
            .arg("--catalogue")
            .arg(&catalogue)
            .arg("--out")
            .arg(&bundle),
        COMMAND_LIMIT,
    );
    assert!(out.status.success(), "{out:?}");
    let content = fedq_bundle::Bundle::parse(&std::fs::read_to_string(&bundle).unwrap())
        .unwrap()
        .content_sha256;
    let unsigned = std::fs::read_to_string(&bundle).unwrap();
    let ca = pki.join("ca.crt").display().to_string();
    let c = console_without_federation(
        &fed,
        &working,
        &catalogue,
        &bundles,
        &["--coordinator", "https://127.0.0.1:9", "--ca", &ca],
    );
    let (host, base, session) = parts(&c);
    let (code, page) = http(
        &host,
        "GET",
        &format!("{session}/approve/review?bundle=bundle-1.toml"),
        &[],
        "",
    );
    assert_eq!(code, 200);
    assert!(
        page.contains("not shown for signing: the coordinator is not reachable")
            && !page.contains("id=\"review\""),
        "{page}"
    );
    let (code, page) = http(
        &host,
        "POST",
        &format!("{session}/approve/sign"),
        &[
            ("Origin", &base),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &format!("bundle=bundle-1.toml&content_sha256={content}"),
    );
    assert_eq!(code, 200);
    assert!(
        page.contains("not signed: the coordinator is not reachable"),
        "{page}"
    );
    assert_eq!(std::fs::read_to_string(&bundle).unwrap(), unsigned);
    drop(c);

    // Offline (no coordinator), the set-up policy is the version in force: a bundle
    // changed after its review is not signed; the one reviewed is.
    let c = console_without_federation(&fed, &working, &catalogue, &bundles, &[]);
    let (host, base, session) = parts(&c);
    let sign = |content: &str| {
        http(
            &host,
            "POST",
            &format!("{session}/approve/sign"),
            &[
                ("Origin", &base),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            &format!("bundle=bundle-1.toml&content_sha256={content}"),
        )
        .1
    };
    let page = sign(&"0".repeat(64));
    assert!(
        page.contains("not signed: the bundle changed since you reviewed it"),
        "{page}"
    );
    assert_eq!(std::fs::read_to_string(&bundle).unwrap(), unsigned);
    let page = sign(&content);
    assert!(page.contains("1 signature(s)"), "{page}");
    let signed = fedq_bundle::Bundle::parse(&std::fs::read_to_string(&bundle).unwrap()).unwrap();
    assert_eq!(signed.signature.len(), 1);
    // Offline, the signature is listed but not counted: nothing could check it.
    let (_, page) = http(&host, "GET", &format!("{session}/approve?lang=en"), &[], "");
    assert!(
        page.contains("data-signatures=\"0\"") && page.contains("not checked: no --ca"),
        "{page}"
    );
    drop(c);

    // With the CA, it verifies and counts; altered, it is shown as not verifying and
    // counts for nothing.
    let c = console_without_federation(
        &fed,
        &working,
        &catalogue,
        &bundles,
        &["--coordinator", "https://127.0.0.1:9", "--ca", &ca],
    );
    let (host, _, session) = parts(&c);
    let approve = || http(&host, "GET", &format!("{session}/approve?lang=en"), &[], "").1;
    let page = approve();
    assert!(page.contains("data-signatures=\"1\""), "{page}");
    let mut forged = signed.clone();
    let sig = &mut forged.signature[0].signature;
    let flipped = if sig.starts_with('0') { "1" } else { "0" };
    sig.replace_range(0..1, flipped);
    std::fs::write(&bundle, forged.to_toml().unwrap()).unwrap();
    let page = approve();
    assert!(
        page.contains("data-signatures=\"0\"") && page.contains("signature does not verify"),
        "{page}"
    );
}

/// A console's address, origin and session path (`/s/<token>`), from its link.
fn parts(c: &Console) -> (String, String, String) {
    let rest = c.url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let session = format!("/{}", path.strip_suffix("/policy").unwrap());
    (host.to_owned(), format!("http://{host}"), session)
}

/// A GET's status and its headers, lower-cased.
fn http_head(host: &str, path: &str) -> (u16, String) {
    let (code, all) = http_raw(host, "GET", path, &[], "");
    let head = all
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_lowercase();
    (code, head)
}

/// The id of the objection the court's part of a filing answer names.
fn objection_id(answer: &serde_json::Value) -> String {
    answer
        .pointer("/rights/court/filed")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_else(|| panic!("no filing at the court in {answer}"))
        .to_owned()
}

/// A console of officer zhang with no coordinator (it needs none to start), and `extra`.
fn console_without_federation(
    fed: &Federation,
    policy: &Path,
    catalogue: &Path,
    bundles: &Path,
    extra: &[&str],
) -> Console {
    started(
        console_command(fed, "officer-zhang", policy, catalogue, bundles)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra),
    )
}

/// One HTTP/1.1 request to the console at `host` (`Host` as given in `headers`, else
/// `host`); its status code.
fn http_status(host: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> u16 {
    http(host, method, path, headers, body).0
}

/// One HTTP/1.1 request to the console at `host`; its status code and body.
fn http(
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let (code, all) = http_raw(host, method, path, headers, body);
    let body = all
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (code, body)
}

/// One HTTP/1.1 request; its status code and the whole answer.
fn http_raw(
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| *k == "Host") {
        request.push_str(&format!("Host: {host}\r\n"));
    }
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let code = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {answer}"));
    (code, answer)
}
