//! The worked example for integrators, `docs/api/python/ask_gateway.py` — Python's
//! standard library and the OpenAPI document, none of our code — asks a demo federation's
//! gateway as the licensing office's app: answered, refused with a documented problem
//! kind, and refused without the app's token.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::process::Command;
use std::time::Duration;

use fedq_sandbox::{Running, LICENSING_BASIS, LICENSING_CASE};
use fedq_testkit::federation;

fn example(fed: &fedq_sandbox::Federation, extra: &[&str]) -> std::process::Output {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/api/python/ask_gateway.py"
    );
    let mut cmd = Command::new("python3");
    cmd.arg(script)
        .arg("--gateway")
        .arg(format!("https://localhost:{}", fed.gateway.port()))
        .arg("--ca")
        .arg(fed.layout.gateway_ca())
        .args(extra);
    support::process::output_within(&mut cmd, Duration::from_secs(60))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_example_asks_the_gateway_from_the_document_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path(), 300, 5);
    let running = Running::start(&fed, None).await.unwrap();
    let token = format!("@{}", fed.layout.gateway_token().display());
    let subject = fed.scenario.blacklisted.resident_id.clone();
    let ask = |view: &'static str, basis: &'static str| {
        vec![
            "--token".to_owned(),
            token.clone(),
            "--subject".into(),
            subject.clone(),
            "--purpose".into(),
            "administrative-licensing".into(),
            "--legal-basis".into(),
            basis.into(),
            "--case-reference".into(),
            LICENSING_CASE.into(),
            "--view".into(),
            view.into(),
        ]
    };
    let run = |args: Vec<String>| {
        let fed = &fed;
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        tokio::task::block_in_place(|| example(fed, &refs))
    };

    let out = run(ask("blacklist-check", LICENSING_BASIS));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("blacklist: ") && !stdout.contains("blacklist: 0 listing"),
        "{stdout}"
    );
    assert!(stdout.contains("complete: True"), "{stdout}");
    assert!(!stdout.contains(&subject), "{stdout}");

    let mut json = ask("blacklist-check", LICENSING_BASIS);
    json.push("--json".into());
    let out = run(json);
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["view_result"]["kind"], "blacklist", "{answer}");

    // A legal basis the purpose does not accept: the problem's kind and the accepted list.
    let out = run(ask("blacklist-check", "not-a-basis"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("urn:fedq:problem:legal-basis-not-accepted"),
        "{stderr}"
    );
    assert!(
        stderr.contains(LICENSING_BASIS),
        "the accepted bases are listed: {stderr}"
    );

    // A wrong token.
    let mut wrong = ask("blacklist-check", LICENSING_BASIS);
    wrong[1] = "not-the-token".into();
    let out = run(wrong);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("401 urn:fedq:problem:unauthenticated"),
        "{stderr}"
    );
    running.stop().await;
}
