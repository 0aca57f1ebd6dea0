//! Issue 18 §3, witnesses, over a real federation (every node its own QUIC endpoint with
//! certificates from the federation's CA, the coordinator over HTTPS, all on 127.0.0.1):
//! the coordinator's witness round takes every log's signed checkpoints to the other nodes,
//! which check the consistency proofs and cosign; then
//! - a department that rewrites its log (with its own key, re-hashing and re-signing
//!   everything) and goes on serving is refused by every witness, each raising an alarm;
//! - `fedq audit verify --witness …` checks a log against what the witnesses cosigned, and
//!   catches a rewritten, deleted, reordered or cut entry that the log's own chain, tree
//!   and re-signed checkpoints no longer show.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fedq_audit::review::certificate_verifiers;
use fedq_audit::{AuditLog, AuditRecord, Cadence, ListFilter, Signing};
use fedq_sandbox::{ask, licensing, Federation, Running};
use fedq_testkit::federation;

/// Every process keeps a checkpoint after each entry; the witness round runs every 200 ms.
fn witness_quickly(fed: &Federation) {
    fed.witness_quickly(200).unwrap();
}

fn prepend(config: &Path, lines: &str) {
    let text = std::fs::read_to_string(config).unwrap();
    std::fs::write(config, format!("{lines}{text}")).unwrap();
}

/// Copies a SQLite log with its `-wal`, replacing whatever is at `to`.
fn copy_log(from: &Path, to: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let (src, dst) = (
            PathBuf::from(format!("{}{suffix}", from.display())),
            PathBuf::from(format!("{}{suffix}", to.display())),
        );
        let _ = std::fs::remove_file(&dst);
        if src.exists() && suffix != "-shm" {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

fn log_of(fed: &Federation, node: &str) -> PathBuf {
    fed.layout.root.join(format!("audit/{node}-audit.db"))
}

/// The size of the newest checkpoint of `node`'s log that `witness` cosigned.
fn cosigned_size(fed: &Federation, node: &str, witness: &str) -> Option<u64> {
    let pki = fed.layout.pki();
    let (log, _) = certificate_verifiers(&pki.join(format!("{node}.crt"))).unwrap();
    let (_, cosigner) = certificate_verifiers(&pki.join(format!("{witness}.crt"))).unwrap();
    let state = fed.layout.root.join(format!("audit/{witness}-witness.db"));
    if !state.exists() {
        return None;
    }
    fedq_audit::witness::cosigned_in(&state, &log, &cosigner)
        .ok()?
        .checkpoints
        .last()
        .map(|w| w.checkpoint.size)
}

/// Waits until every other node cosigned `node`'s log at `size`.
async fn until_witnessed(fed: &Federation, node: &str, size: u64) {
    let started = Instant::now();
    for witness in fed.nodes.keys().filter(|w| *w != node) {
        while cosigned_size(fed, node, witness) != Some(size) {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "`{witness}` did not cosign `{node}`'s log at size {size} within 30 s (holds {:?})",
                cosigned_size(fed, node, witness)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The rewriter's script, with the department's own key: read every entry, change the
/// list, and write it as a new log — numbered afresh, chain and tree re-hashed, every
/// checkpoint re-signed.
async fn rewrite(fed: &Federation, node: &str, change: impl FnOnce(&mut Vec<AuditRecord>)) {
    let path = log_of(fed, node);
    let mut records: Vec<AuditRecord> = fedq_audit::list(&path, &ListFilter::default())
        .unwrap()
        .into_iter()
        .map(|e| e.record)
        .collect();
    change(&mut records);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let pki = fed.layout.pki();
    let signing = Signing::from_certificate(
        &pki.join(format!("{node}.crt")),
        &pki.join(format!("{node}.key")),
        Cadence {
            entries: 1,
            interval: Duration::from_secs(60),
        },
    )
    .unwrap();
    let log = AuditLog::open_signing(&path, signing).unwrap();
    for record in records {
        log.append(record).await.unwrap();
    }
}

/// `fedq audit verify --config NODE --witness W…` (every other node): exit status and
/// output.
fn verify(fed: &Federation, node: &str) -> (bool, String) {
    verify_with(fed, node, true)
}

fn verify_with(fed: &Federation, node: &str, witnesses: bool) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fedq"));
    cmd.args(["audit", "verify", "--config"])
        .arg(fed.layout.node_config(node));
    for witness in fed.nodes.keys().filter(|w| *w != node && witnesses) {
        cmd.arg("--witness").arg(fed.layout.node_config(witness));
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn metric(name: &str, labels: &str) -> f64 {
    let text = fedq_ops::recorder().unwrap().render();
    fedq_ops::sample(&text, &format!("{name}{{{labels}}}")).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn witnesses_cosign_every_log_refuse_a_rewritten_one_and_verify_catches_each_rewrite() {
    // The metrics of every in-process server go to this recorder.
    let _ = fedq_ops::recorder();
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path(), 60, 73);
    witness_quickly(&fed);
    let mut running = Running::start(&fed, None).await.unwrap();
    let subject = fed.scenario.blacklisted.resident_id.clone();
    let mut node = String::new();
    for _ in 0..4 {
        let (status, answer) = ask(&fed, &licensing(&subject, "blacklist-check"))
            .await
            .unwrap();
        assert_eq!(status, 200, "{answer}");
        node = answer["nodes"][0]["node"].as_str().unwrap().to_owned();
        // Each query's entries witnessed before the next, so `verify` can place a
        // rewritten entry within one query's entries.
        let (size, _) = fedq_audit::latest_checkpoint(&log_of(&fed, &node))
            .unwrap()
            .unwrap();
        until_witnessed(&fed, &node, size).await;
    }
    let log = log_of(&fed, &node);
    let (size, _) = fedq_audit::latest_checkpoint(&log).unwrap().unwrap();
    let entries = fedq_audit::list(&log, &ListFilter::default())
        .unwrap()
        .len() as u64;
    assert_eq!(size, entries, "a checkpoint after every entry");
    assert!(entries >= 4, "{entries}");
    // The coordinator's own log is witnessed too.
    let coordinator = fed.layout.root.join("audit/coordinator-audit.db");
    let (coordinator_size, _) = fedq_audit::latest_checkpoint(&coordinator)
        .unwrap()
        .unwrap();
    assert!(coordinator_size >= 4);
    let pki = fed.layout.pki();
    let (coordinator_log, _) = certificate_verifiers(&pki.join("coordinator.crt")).unwrap();
    let started = Instant::now();
    for witness in fed.nodes.keys() {
        let (_, cosigner) = certificate_verifiers(&pki.join(format!("{witness}.crt"))).unwrap();
        let state = fed.layout.root.join(format!("audit/{witness}-witness.db"));
        loop {
            let held = fedq_audit::witness::cosigned_in(&state, &coordinator_log, &cosigner)
                .ok()
                .and_then(|c| c.checkpoints.last().map(|w| w.checkpoint.size));
            if held.is_some_and(|h| h >= coordinator_size) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "`{witness}` did not cosign the coordinator's log (holds {held:?})"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let pristine = tmp.path().join("pristine.db");
    running.stop_node(&node).await;
    // The log as its files hold it (a write-ahead log not yet folded in included).
    copy_log(&log, &pristine);

    // A live fork: the department rewrites one entry's requester and purpose with its
    // own key, restarts, and serves on. Its next checkpoint does not extend what the
    // witnesses cosigned, and every one of them refuses it.
    rewrite(&fed, &node, |records| {
        records[1].requester = "someone.else".into();
        records[1].purpose = "nothing-to-see".into();
    })
    .await;
    running.restart_node(&fed, &node, None).await.unwrap();
    let (status, answer) = ask(&fed, &licensing(&subject, "blacklist-check"))
        .await
        .unwrap();
    assert_eq!(status, 200, "{answer}");
    let origin = format!("fedq/changsha/node/{node}");
    let started = Instant::now();
    for witness in fed.nodes.keys().filter(|w| **w != node) {
        let labels = format!("log=\"{node}\",witness=\"{witness}\"");
        while metric("fedq_coordinator_witness_alarms_total", &labels) < 1.0 {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no alarm from `{witness}` about `{node}`'s rewritten log within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The witness kept what it had cosigned; it never moved to the rewritten log.
        assert_eq!(cosigned_size(&fed, &node, witness), Some(size));
    }
    assert!(
        metric(
            "fedq_audit_witness_alarms_total",
            &format!("log=\"{origin}\"")
        ) >= 1.0
    );
    running.stop().await;

    // Offline, against what the witnesses cosigned: the untouched log verifies…
    let restore = || copy_log(&pristine, &log);
    restore();
    let (ok, out) = verify(&fed, &node);
    assert!(ok, "{out}");
    assert!(out.contains("chain intact"), "{out}");
    let witnessed: u64 = fed
        .nodes
        .keys()
        .filter(|w| **w != node)
        .map(|w| {
            let pki = fed.layout.pki();
            let (log, _) = certificate_verifiers(&pki.join(format!("{node}.crt"))).unwrap();
            let (_, cosigner) = certificate_verifiers(&pki.join(format!("{w}.crt"))).unwrap();
            let state = fed.layout.root.join(format!("audit/{w}-witness.db"));
            fedq_audit::witness::cosigned_in(&state, &log, &cosigner)
                .unwrap()
                .checkpoints
                .len() as u64
        })
        .sum();
    assert!(witnessed >= 4 * (fed.nodes.len() as u64 - 1), "{witnessed}");
    assert!(
        out.contains(&format!("matches all {witnessed} checkpoints")),
        "{out}"
    );

    // One person's entries come with inclusion proofs against a checkpoint the witnesses
    // cosigned, which anyone can check with the log's and the witnesses' certificates.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fedq"));
    cmd.args(["audit", "proofs", "--config"])
        .arg(fed.layout.node_config(&node))
        .args(["--subject", &subject]);
    for witness in fed.nodes.keys().filter(|w| **w != node) {
        cmd.arg("--witness").arg(fed.layout.node_config(witness));
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let proofs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(proofs["tree_size"], size, "{proofs}");
    assert_eq!(proofs["log"], format!("fedq/changsha/node/{node}"));
    let cosigners = proofs["cosigned_by"].as_array().unwrap();
    assert_eq!(cosigners.len(), fed.nodes.len() - 1, "{proofs}");
    let (log_key, _) = certificate_verifiers(&pki.join(format!("{node}.crt"))).unwrap();
    let mut roots = Vec::new();
    for (note, witness) in proofs["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .zip(cosigners)
    {
        let (checkpoint, note) =
            fedq_audit::checkpoint::open_checkpoint(note.as_str().unwrap(), &log_key).unwrap();
        let (_, cosigner) =
            certificate_verifiers(&pki.join(format!("{}.crt", witness.as_str().unwrap()))).unwrap();
        cosigner.verify(&note).unwrap();
        assert_eq!(checkpoint.size, size);
        roots.push(checkpoint.root);
    }
    let entries = proofs["entries"].as_array().unwrap();
    assert!(
        entries.len() >= 4,
        "four queries about this person: {proofs}"
    );
    for e in entries {
        let hash: [u8; 32] = hex::decode(e["entry"]["hash"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let proof = fedq_audit::checkpoint::decode_proof(
            &serde_json::from_value::<Vec<String>>(e["inclusion_proof"].clone()).unwrap(),
        )
        .unwrap();
        fedq_audit::merkle::verify_inclusion(
            &fedq_audit::merkle::leaf_hash(&hash),
            e["index"].as_u64().unwrap(),
            size,
            &proof,
            &roots[0],
        )
        .unwrap();
        // It names the person only by this log's pseudonym.
        assert!(!e.to_string().contains(&subject), "{e}");
    }

    // …and each rewrite, complete with re-hashed chain, rebuilt tree and re-signed
    // checkpoints, is caught, named at the entries it no longer matches (the first
    // changed entry lies in the range `verify` names).
    type Change = Box<dyn FnOnce(&mut Vec<AuditRecord>)>;
    let cases: Vec<(&str, Change, Option<u64>)> = vec![
        (
            "rewrite",
            Box::new(|r: &mut Vec<AuditRecord>| r[2].requester = "someone.else".into()),
            Some(3),
        ),
        (
            "delete",
            Box::new(|r: &mut Vec<AuditRecord>| {
                r.remove(1);
            }),
            Some(2),
        ),
        (
            "reorder",
            Box::new(|r: &mut Vec<AuditRecord>| r.swap(0, 1)),
            Some(1),
        ),
        (
            "cut",
            Box::new(|r: &mut Vec<AuditRecord>| r.truncate(2)),
            None,
        ),
    ];
    for (name, change, first_changed) in cases {
        restore();
        rewrite(&fed, &node, change).await;
        // The rewritten log alone is self-consistent: its own chain verifies.
        let own = fedq_audit::verify(&log).unwrap();
        assert!(own.first_break.is_none(), "{name}: {:?}", own.first_break);
        let (ok, out) = verify(&fed, &node);
        assert!(!ok, "{name}: verify passed a rewritten log: {out}");
        match first_changed {
            Some(seq) => {
                let (first, last) = named_range(&out)
                    .unwrap_or_else(|| panic!("{name}: no entry range named: {out}"));
                assert!(first <= seq && seq <= last, "{name}: entry {seq}: {out}");
            }
            None => assert!(
                out.contains(&format!("entries 3..={size} were cut")),
                "{name}: {out}"
            ),
        }
    }
}

/// The `A..=B` of "entries A..=B do not match the checkpoint …".
fn named_range(out: &str) -> Option<(u64, u64)> {
    let rest = out.split("entries ").nth(1)?;
    let (range, tail) = rest.split_once(' ')?;
    if !tail.starts_with("do not match") {
        return None;
    }
    let (a, b) = range.split_once("..=")?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Issue 18 §6: a node shreds, as soon as it runs and then hourly, the bodies of its
/// entries older than the period the policy in force declares (the reference policy:
/// 1826 days), registers that, and its log still verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_node_shreds_bodies_past_the_policy_s_retention_period_and_registers_it() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path(), 60, 74);
    let node = fed.nodes.keys().next().unwrap().clone();
    let path = log_of(&fed, &node);
    let pki = fed.layout.pki();
    let now = time::OffsetDateTime::now_utc();
    {
        let signing = Signing::from_certificate(
            &pki.join(format!("{node}.crt")),
            &pki.join(format!("{node}.key")),
            Cadence::default(),
        )
        .unwrap();
        let log = AuditLog::open_signing(&path, signing).unwrap();
        for (i, days) in [(1, 6 * 365), (2, 365)] {
            log.append(AuditRecord {
                at: now - time::Duration::days(days),
                kind: fedq_audit::EntryKind::Answer,
                query_id: format!("old{i}"),
                requester: "market-regulation.licensing".into(),
                purpose: "administrative-licensing".into(),
                legal_basis: None,
                case_reference: None,
                subject: "pseudonym".into(),
                target: "view:blacklist-check".into(),
                outcome: fedq_audit::Outcome::json(&serde_json::json!({"released": []})),
                policy_version: "0/old".into(),
                consent_id: None,
                node_query_ids: Default::default(),
                answer_sha256: None,
            })
            .await
            .unwrap();
        }
    }
    let running = Running::start(&fed, None).await.unwrap();
    let started = Instant::now();
    let entries = loop {
        let entries = fedq_audit::list(&path, &ListFilter::default()).unwrap();
        if entries
            .iter()
            .any(|e| e.record.kind == fedq_audit::EntryKind::Retention)
        {
            break entries;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "`{node}` registered no shredding within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    running.stop().await;
    assert!(entries[0].shredded, "six years old: past 1826 days");
    assert!(entries[0].record.requester.is_empty());
    assert!(!entries[1].shredded, "a year old: kept");
    let retention = entries
        .iter()
        .find(|e| e.record.kind == fedq_audit::EntryKind::Retention)
        .unwrap();
    let outcome = retention.record.outcome.to_json().unwrap();
    assert_eq!(outcome["shredded"], 1);
    assert_eq!(outcome["retention_days"], 1826);
    let v = fedq_audit::verify(&path).unwrap();
    assert_eq!(v.first_break, None, "{v:?}");
    assert_eq!(v.shredded, 1);
    let (ok, out) = verify_with(&fed, &node, false);
    assert!(ok, "{out}");
    assert!(out.contains("the bodies of 1 entries shredded"), "{out}");
    // Witnesses that cosigned nothing of it yet vouch for nothing: not a pass.
    let (ok, out) = verify(&fed, &node);
    assert!(!ok, "{out}");
    assert!(
        out.contains("holds no checkpoint of this log it can vouch for"),
        "{out}"
    );
}

/// What a node witnesses, it checks itself; the coordinator relaying is not believed.
/// Sent straight to the nodes with the coordinator's certificate (as a hostile or broken
/// coordinator would): the log's own offer is cosigned once; a repeat names the size held
/// (409); a node's own log is not witnessed (404); a checkpoint sent with another
/// process's certificate, or with a certificate of another CA, is refused (403); a
/// malformed body is refused (400); and a checkpoint of the same size with another root,
/// signed with the log's real key, is a fork (422) that raises the witness's alarm and
/// leaves what it holds as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_witnesses_only_what_it_checks_itself() {
    use fedq_audit::checkpoint::{Checkpoint, Note, NoteSigner};
    use fedq_audit::witness::AddCheckpoint;
    use fedq_wire::message::WitnessRequest;
    use fedq_wire::{NodeRequest, NodeResponse};

    let _ = fedq_ops::recorder();
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path(), 60, 75);
    for node in fed.nodes.keys() {
        prepend(
            &fed.layout.node_config(node),
            "audit_checkpoint_entries = 1\n",
        );
    }
    // The coordinator's own round would run only after an hour: this test relays.
    prepend(
        &fed.layout.coordinator_config(),
        "witness_interval_ms = 3600000\n",
    );
    let running = Running::start(&fed, None).await.unwrap();
    let subject = fed.scenario.blacklisted.resident_id.clone();
    let (status, answer) = ask(&fed, &licensing(&subject, "blacklist-check"))
        .await
        .unwrap();
    assert_eq!(status, 200, "{answer}");
    let log_node = answer["nodes"][0]["node"].as_str().unwrap().to_owned();
    let witness = fed.nodes.keys().find(|n| **n != log_node).unwrap().clone();
    let pki = fed.layout.pki();
    let client = fedq_wire::transport::NodeClient::new(
        "127.0.0.1:0".parse().unwrap(),
        fedq_wire::transport::TlsFiles::in_dir(&pki, "coordinator"),
        fedq_wire::transport::Limits::default(),
    )
    .unwrap();
    let deadline = Duration::from_secs(10);
    let channel = |node: &str| client.channel(node, fed.nodes[node]);
    let offer = match channel(&log_node)
        .request(&NodeRequest::AuditCheckpoint { from: 0 }, deadline)
        .await
        .unwrap()
    {
        NodeResponse::AuditCheckpoint(offer) => offer,
        other => panic!("{other:?}"),
    };
    let note = offer.checkpoint.clone().expect("a checkpoint kept");
    let own_cert = std::fs::read(pki.join(format!("{log_node}.crt"))).unwrap();
    let own_der = fedq_certs::tls::read_certificates(&own_cert).unwrap()[0].to_vec();
    assert_eq!(offer.chain, vec![own_der], "the log's own certificate");
    let ask_witness = |to: String, old: u64, checkpoint: String, chain: Vec<Vec<u8>>| {
        let channel = channel(&to);
        async move {
            let request = NodeRequest::Witness(WitnessRequest {
                add_checkpoint: AddCheckpoint {
                    old,
                    proof: Vec::new(),
                    checkpoint,
                }
                .to_text(),
                log_chain: chain,
            });
            channel.request(&request, deadline).await.unwrap()
        }
    };
    let refused = |r: &NodeResponse| match r {
        NodeResponse::WitnessRefused { status, latest, .. } => (*status, *latest),
        other => panic!("expected a refusal: {other:?}"),
    };

    // Cosigned once, with a line the witness's key signed.
    let cosigned = ask_witness(witness.clone(), 0, note.clone(), offer.chain.clone()).await;
    let NodeResponse::Cosigned { signatures } = cosigned else {
        panic!("{cosigned:?}")
    };
    let mut with_cosignature = Note::parse(&note).unwrap();
    with_cosignature.signatures.extend(
        Note::parse(&format!("{note}{signatures}"))
            .unwrap()
            .signatures,
    );
    let (_, cosigner) = certificate_verifiers(&pki.join(format!("{witness}.crt"))).unwrap();
    cosigner.verify(&with_cosignature).unwrap();
    assert_eq!(cosigned_size(&fed, &log_node, &witness), Some(offer.size));
    // Again from 0: the witness names what it holds.
    let again = ask_witness(witness.clone(), 0, note.clone(), offer.chain.clone()).await;
    assert_eq!(refused(&again), (409, Some(offer.size)));
    // Its own log: not witnessed.
    let own = ask_witness(log_node.clone(), 0, note.clone(), offer.chain.clone()).await;
    assert_eq!(refused(&own).0, 404);
    // Another process's certificate for this log's checkpoint.
    let other_cert = std::fs::read(pki.join(format!("{witness}.crt"))).unwrap();
    let other_der = fedq_certs::tls::read_certificates(&other_cert).unwrap()[0].to_vec();
    let third = fed
        .nodes
        .keys()
        .find(|n| **n != log_node && **n != witness)
        .unwrap()
        .clone();
    let wrong = ask_witness(third.clone(), 0, note.clone(), vec![other_der]).await;
    assert_eq!(refused(&wrong).0, 403);
    // The log's name and key under another CA (another federation built alike).
    let elsewhere = tempfile::tempdir().unwrap();
    let stranger = federation(elsewhere.path(), 10, 76);
    let foreign = std::fs::read(stranger.layout.pki().join(format!("{log_node}.crt"))).unwrap();
    let foreign_der = fedq_certs::tls::read_certificates(&foreign).unwrap()[0].to_vec();
    let forged = ask_witness(third.clone(), 0, note.clone(), vec![foreign_der]).await;
    assert_eq!(refused(&forged).0, 403);
    // Malformed.
    let malformed = channel(&third)
        .request(
            &NodeRequest::Witness(WitnessRequest {
                add_checkpoint: "old x\n".into(),
                log_chain: offer.chain.clone(),
            }),
            deadline,
        )
        .await
        .unwrap();
    assert_eq!(refused(&malformed).0, 400);
    assert_eq!(cosigned_size(&fed, &log_node, &third), None);

    // A fork: the same size, another root, signed with the log's own key.
    let fork: NoteSigner = fedq_audit::Signing::from_certificate(
        &pki.join(format!("{log_node}.crt")),
        &pki.join(format!("{log_node}.key")),
        fedq_audit::Cadence::default(),
    )
    .unwrap()
    .signer;
    let forked = fork
        .sign_checkpoint(&Checkpoint {
            origin: format!("fedq/changsha/node/{log_node}"),
            size: offer.size,
            root: [7; 32],
        })
        .unwrap()
        .to_text();
    let alarm = ask_witness(witness.clone(), offer.size, forked, offer.chain.clone()).await;
    assert_eq!(refused(&alarm), (422, Some(offer.size)));
    assert!(
        metric(
            "fedq_audit_witness_alarms_total",
            &format!("log=\"fedq/changsha/node/{log_node}\"")
        ) >= 1.0
    );
    assert_eq!(cosigned_size(&fed, &log_node, &witness), Some(offer.size));
    client.close();
    running.stop().await;
}

/// A node's certificate renewed with a new key while it runs (`fedq certs issue --force`,
/// no restart): its receipts check against the renewed certificate, its new checkpoints
/// are signed with the new key and cosigned by the witnesses, and the log still verifies
/// against everything they cosigned, under the old key and the new.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_renewed_with_a_new_key_signs_receipts_and_checkpoints_with_it() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path(), 60, 77);
    fed.lift_rate_limits().unwrap();
    witness_quickly(&fed);
    let running = Running::start(&fed, None).await.unwrap();
    let subject = fed.scenario.blacklisted.resident_id.clone();
    let pki = fed.layout.pki();
    let (status, answer) = ask(&fed, &licensing(&subject, "blacklist-check"))
        .await
        .unwrap();
    assert_eq!(status, 200, "{answer}");
    let node = answer["nodes"][0]["node"].as_str().unwrap().to_owned();
    fedq_testkit::checked_receipt(&pki, &node, &answer["nodes"][0]).unwrap();
    let log = log_of(&fed, &node);
    let (before, _) = fedq_audit::latest_checkpoint(&log).unwrap().unwrap();
    until_witnessed(&fed, &node, before).await;
    let old_key = std::fs::read(pki.join(format!("{node}.key"))).unwrap();
    fedq_certs::CertificateAuthority::open(&pki)
        .unwrap()
        .issue(
            fedq_certs::Role::Node,
            &node,
            &fedq_certs::IssueOptions {
                force: true,
                ..fedq_certs::IssueOptions::default()
            },
        )
        .unwrap();
    assert_ne!(
        std::fs::read(pki.join(format!("{node}.key"))).unwrap(),
        old_key,
        "a new key"
    );
    // Once the node has reloaded, its answers' receipts check against the renewed
    // certificate.
    let started = Instant::now();
    loop {
        let (status, answer) = ask(&fed, &licensing(&subject, "blacklist-check"))
            .await
            .unwrap();
        assert_eq!(status, 200, "{answer}");
        let report = answer["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["node"] == node.as_str())
            .unwrap();
        if fedq_testkit::checked_receipt(&pki, &node, report).is_ok() {
            assert_eq!(report["status"], "answered", "{report}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "`{node}`'s receipts still do not check against its renewed certificate: {report}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (after, note) = fedq_audit::latest_checkpoint(&log).unwrap().unwrap();
    assert!(after > before);
    let (renewed, _) = certificate_verifiers(&pki.join(format!("{node}.crt"))).unwrap();
    fedq_audit::checkpoint::open_checkpoint(&note, &renewed).unwrap();
    until_witnessed(&fed, &node, after).await;
    running.stop().await;
    let (ok, out) = verify(&fed, &node);
    assert!(ok, "{out}");
    assert!(out.contains("chain intact"), "{out}");
}
