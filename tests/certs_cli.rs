//! `fedq certs …` as an operator uses it: the real binary, real files.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn fedq(args: &[&str]) -> Output {
    support::process::output_within(
        Command::new(env!("CARGO_BIN_EXE_fedq")).args(args),
        support::process::COMMAND_LIMIT,
    )
}

fn ok(args: &[&str]) -> String {
    let out = fedq(args);
    assert!(
        out.status.success(),
        "`fedq {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command that must fail: one line on stderr, non-zero exit. Returns that line.
fn refused(args: &[&str]) -> String {
    let out = fedq(args);
    assert!(!out.status.success(), "`fedq {}` succeeded", args.join(" "));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "expected one line, got: {stderr}"
    );
    stderr.trim_end().to_owned()
}

fn files(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn init_issue_revoke_list() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    let d = dir.to_str().unwrap();
    ok(&["certs", "init", "--dir", d, "--federation", "changsha"]);
    assert_eq!(
        files(&dir),
        ["ca.crt", "ca.key", "crl.pem", "index.json"]
            .map(String::from)
            .into()
    );
    assert_eq!(mode(&dir.join("ca.key")), 0o600);
    assert_eq!(mode(&dir.join("ca.crt")), 0o644);

    for (role, name) in [
        ("node", "court"),
        ("coordinator", "coordinator"),
        ("requester", "market-regulation.licensing"),
        ("officer", "officer-li"),
    ] {
        let out = ok(&["certs", "issue", "--dir", d, "--role", role, "--name", name]);
        assert!(
            out.contains(&format!("issued {role} certificate for `{name}`")),
            "{out}"
        );
        assert_eq!(mode(&dir.join(format!("{name}.key"))), 0o600);
        // The identity is in the certificate, in the form every component parses.
        let creds = fedq_certs::Credentials::load_named(&dir, name).unwrap();
        assert_eq!(
            creds.identity().to_uri(),
            format!("fedq://changsha/{role}/{name}")
        );
    }

    ok(&[
        "certs",
        "revoke",
        "--dir",
        d,
        "--name",
        "market-regulation.licensing",
    ]);
    let trust =
        fedq_certs::FederationTrust::load(&fedq_certs::tls::TrustFiles::in_dir(&dir)).unwrap();
    let serial =
        fedq_certs::pki::certificate_serial(&dir.join("market-regulation.licensing.crt")).unwrap();
    assert!(
        trust.is_revoked(&serial),
        "the CRL on disk lists the revoked serial"
    );
    let court_serial = fedq_certs::pki::certificate_serial(&dir.join("court.crt")).unwrap();
    assert!(!trust.is_revoked(&court_serial));

    let list = ok(&["certs", "list", "--dir", d]);
    let line = |name: &str| {
        list.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} not listed:\n{list}"))
            .to_owned()
    };
    assert!(line("court").contains("node") && line("court").ends_with("valid"));
    assert!(line("market-regulation.licensing").contains(" revoked "));
    assert!(line("officer-li").contains("officer"));

    // Revoking twice is refused, and says so.
    let err = refused(&[
        "certs",
        "revoke",
        "--dir",
        d,
        "--name",
        "market-regulation.licensing",
    ]);
    assert!(err.contains("already revoked"), "{err}");
}

#[test]
fn an_existing_key_is_never_overwritten_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_str().unwrap();
    ok(&["certs", "init", "--dir", d, "--federation", "changsha"]);
    ok(&[
        "certs", "issue", "--dir", d, "--role", "node", "--name", "tax",
    ]);
    let key_before = std::fs::read(tmp.path().join("tax.key")).unwrap();
    let err = refused(&[
        "certs", "issue", "--dir", d, "--role", "node", "--name", "tax",
    ]);
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(tmp.path().join("tax.key")).unwrap(),
        key_before
    );
    let err = refused(&["certs", "init", "--dir", d, "--federation", "changsha"]);
    assert!(err.contains("already exists"), "{err}");

    ok(&[
        "certs", "issue", "--dir", d, "--role", "node", "--name", "tax", "--force",
    ]);
    assert_ne!(
        std::fs::read(tmp.path().join("tax.key")).unwrap(),
        key_before
    );
    let list = ok(&["certs", "list", "--dir", d]);
    assert_eq!(list.matches("superseded").count(), 1, "{list}");
}

#[test]
fn bad_input_gets_one_clear_line_and_leaves_no_partial_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    let d = dir.to_str().unwrap();

    // No CA yet.
    let err = refused(&[
        "certs", "issue", "--dir", d, "--role", "node", "--name", "court",
    ]);
    assert!(
        err.contains("no federation CA") && err.contains("fedq certs init"),
        "{err}"
    );
    assert!(
        !dir.exists(),
        "a refused issue must not create the directory"
    );

    ok(&["certs", "init", "--dir", d, "--federation", "changsha"]);
    let before = files(&dir);
    let index_before = std::fs::read(dir.join("index.json")).unwrap();

    let cases: [(&[&str], &str); 7] = [
        (&["--role", "admin", "--name", "x"], "unknown role `admin`"),
        (&["--role", "node", "--name", "../court"], "path separator"),
        (&["--role", "node", "--name", "a/b"], "path separator"),
        (
            &["--role", "node", "--name", "court house"],
            "contains a space",
        ),
        (&["--role", "node", "--name", "Court"], "upper-case"),
        (
            &["--role", "node", "--name", "court", "--days", "0"],
            "--days",
        ),
        (
            &[
                "--role",
                "requester",
                "--name",
                "hr.recruitment",
                "--host",
                "10.0.0.1",
            ],
            "host",
        ),
    ];
    for (args, want) in cases {
        let mut full = vec!["certs", "issue", "--dir", d];
        full.extend_from_slice(args);
        let err = refused(&full);
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(files(&dir), before, "{args:?} left files behind");
        assert_eq!(std::fs::read(dir.join("index.json")).unwrap(), index_before);
    }

    // --dir that is a file, and a federation name that is not a name.
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let err = refused(&[
        "certs",
        "init",
        "--dir",
        file.to_str().unwrap(),
        "--federation",
        "changsha",
    ]);
    assert!(err.contains("is not a directory"), "{err}");
    let other = tmp.path().join("other");
    let err = refused(&[
        "certs",
        "init",
        "--dir",
        other.to_str().unwrap(),
        "--federation",
        "Chang Sha",
    ]);
    assert!(err.contains("invalid name"), "{err}");
    assert!(!other.exists());

    let err = refused(&["certs", "revoke", "--dir", d, "--name", "nobody"]);
    assert!(err.contains("no certificate named `nobody`"), "{err}");
}

#[test]
fn officers_prints_the_pinned_roster_line_and_the_ca_key_must_be_private() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    let d = dir.to_str().unwrap();
    ok(&["certs", "init", "--dir", d, "--federation", "changsha"]);
    let mut fingerprints = Vec::new();
    for name in ["officer-li", "officer-wang", "officer-zhang"] {
        let out = ok(&[
            "certs", "issue", "--dir", d, "--role", "officer", "--name", name,
        ]);
        let fp = out
            .split("officer key sha256 ")
            .nth(1)
            .and_then(|rest| rest.split(':').next())
            .unwrap_or_else(|| panic!("no fingerprint printed: {out}"))
            .to_owned();
        let entry =
            fedq_bundle::RosterEntry::from_certificate_file(&dir.join(format!("{name}.crt")))
                .unwrap();
        assert_eq!(fp, entry.key_sha256);
        fingerprints.push(fp);
    }
    ok(&["certs", "revoke", "--dir", d, "--name", "officer-wang"]);
    ok(&[
        "certs", "issue", "--dir", d, "--role", "node", "--name", "court",
    ]);
    // Every valid officer, none revoked, no other role: a line a config takes as it is.
    let out = ok(&["certs", "officers", "--dir", d]);
    let listed: Vec<&str> = out
        .lines()
        .filter_map(|l| l.trim().strip_prefix('"'))
        .filter_map(|l| l.split('"').next())
        .collect();
    assert_eq!(
        listed,
        [fingerprints[0].as_str(), fingerprints[2].as_str()],
        "{out}"
    );
    let config = format!(
        "{out}name = \"court\"\nlisten = \"127.0.0.1:7101\"\ncatalogue = \"c.toml\"\n\
         policy = \"p.toml\"\nstore = \"s.db\"\naudit = \"a.db\"\npseudonym_key = \"k\"\n\
         [tls]\nca = \"ca.crt\"\ncrl = \"crl.pem\"\ncert = \"court.crt\"\nkey = \"court.key\"\n"
    );
    let parsed = fedq_node::config::NodeConfig::parse(&config, Path::new("node.toml")).unwrap();
    assert_eq!(
        parsed.policy_officers,
        [fingerprints[0].clone(), fingerprints[2].clone()]
    );
    let one = ok(&["certs", "officers", "--dir", d, "--name", "officer-zhang"]);
    assert!(
        one.contains(&fingerprints[2]) && !one.contains(&fingerprints[0]),
        "{one}"
    );
    let err = refused(&["certs", "officers", "--dir", d, "--name", "nobody"]);
    assert!(err.contains("no certificate named `nobody`"), "{err}");

    // The CA key readable by others: refused with the fix, nothing issued.
    std::fs::set_permissions(dir.join("ca.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = refused(&[
        "certs", "issue", "--dir", d, "--role", "node", "--name", "tax",
    ]);
    assert!(err.contains("ca.key") && err.contains("chmod 600"), "{err}");
    assert!(!dir.join("tax.crt").exists());
}
