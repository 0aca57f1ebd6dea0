//! Issue 18: what a rewriter who holds the log file (and re-hashes whatever a rewriter
//! would re-hash) can and cannot get past. Each test first shows that the plain chain
//! check is fooled — the rewrite is a good one — and then that the checkpoints another
//! process cosigned catch it.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use super::*;

fn record(i: usize) -> AuditRecord {
    AuditRecord {
        at: OffsetDateTime::now_utc(),
        kind: EntryKind::Answer,
        query_id: format!("q{i}"),
        requester: "market-regulation.licensing".into(),
        purpose: "administrative-licensing".into(),
        legal_basis: Some("长政办发〔2017〕62号".into()),
        case_reference: None,
        subject: Pseudonymizer::from_key(&[7; 32]).pseudonym("11010519491231002X"),
        target: "view:blacklist-check".into(),
        outcome: Outcome::json(&serde_json::json!({})),
        policy_version: "1".into(),
        consent_id: None,
        node_query_ids: BTreeMap::new(),
        answer_sha256: None,
    }
}

fn signing(entries: u64) -> Signing {
    Signing {
        signer: checkpoint::NoteSigner::new("fedq/changsha/node/court", checkpoint::tests::key())
            .unwrap(),
        cadence: Cadence {
            entries,
            interval: Duration::from_secs(3600),
        },
    }
}

/// A log of `n` entries with a checkpoint kept every 5, and those checkpoints as a peer
/// (here `tax`) would hold them after cosigning.
async fn witnessed_log(dir: &Path, n: usize) -> (PathBuf, Vec<Witnessed>) {
    let path = dir.join("court-audit.db");
    let log = AuditLog::open_signing(&path, signing(5)).unwrap();
    for i in 0..n {
        log.append(record(i)).await.unwrap();
    }
    drop(log);
    let witnessed = checkpoints(&path)
        .unwrap()
        .into_iter()
        .map(|(_, note)| Witnessed {
            witness: "fedq/changsha/node/tax".into(),
            checkpoint: checkpoint::Checkpoint::parse_body(
                &checkpoint::Note::parse(&note).unwrap().text,
            )
            .unwrap(),
        })
        .collect();
    (path, witnessed)
}

/// The rewriter's script: read every entry, change the list, number it afresh, re-hash the
/// chain, and rebuild everything derived (tree nodes, the log's own checkpoints, which its
/// operator could re-sign with the log's key).
fn rewrite(path: &Path, change: impl FnOnce(&mut Vec<AuditRecord>)) {
    let conn = Connection::open(path).unwrap();
    let mut records: Vec<AuditRecord> = {
        let mut stmt = conn.prepare(&format!("{SELECT} ORDER BY seq")).unwrap();
        let rows = stmt.query_map([], row_to_entry).unwrap();
        rows.map(|r| r.unwrap().record).collect()
    };
    change(&mut records);
    conn.execute_batch("DELETE FROM audit; DELETE FROM merkle_nodes; DELETE FROM checkpoints;")
        .unwrap();
    let mut prev = GENESIS.to_owned();
    for (i, r) in records.iter().enumerate() {
        let seq = i as u64 + 1;
        let hash = entry_hash(seq, &prev, r);
        conn.execute(
            "INSERT INTO audit (seq, at, kind, query_id, requester, purpose, legal_basis, subject, target, outcome, policy_version, prev_hash, hash, consent_id, case_reference, node_query_ids)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, NULL)",
            params![
                seq as i64,
                format_time(r.at),
                r.kind.as_str(),
                r.query_id,
                r.requester,
                r.purpose,
                r.legal_basis,
                r.subject,
                r.target,
                r.outcome.as_str(),
                r.policy_version,
                prev,
                hash,
                r.consent_id,
                r.case_reference
            ],
        )
        .unwrap();
        prev = hash;
    }
    drop(conn);
    // Opening rebuilds the tree from the rewritten entries: the rewrite is complete.
    drop(AuditLog::open(path).unwrap());
}

#[tokio::test]
async fn a_rewritten_and_rehashed_entry_is_caught_by_the_witnessed_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let (path, witnessed) = witnessed_log(dir.path(), 23).await;
    assert_eq!(witnessed.len(), 4, "checkpoints at 5, 10, 15, 20");
    let clean = verify_against(&path, &witnessed).unwrap();
    assert_eq!(clean.first_break, None);
    assert_eq!(clean.witnessed, 4);

    rewrite(&path, |records| {
        records[11].requester = "statistics.bureau".into();
        records[11].purpose = "statistics".into();
    });
    assert_eq!(
        verify(&path).unwrap().first_break,
        None,
        "the chain alone is fooled"
    );
    assert_eq!(
        verify_against(&path, &witnessed).unwrap().first_break,
        Some(ChainBreak::Unwitnessed {
            first: 11,
            last: 15,
            size: 15,
            witness: "fedq/changsha/node/tax".into()
        })
    );
}

#[tokio::test]
async fn a_deleted_and_renumbered_entry_a_reordering_and_a_cut_are_each_caught() {
    // Each rewrite on a log of its own, witnessed at 5, 10, 15 and 20.
    async fn rewritten(change: impl FnOnce(&mut Vec<AuditRecord>)) -> Verification {
        let dir = tempfile::tempdir().unwrap();
        let (path, witnessed) = witnessed_log(dir.path(), 23).await;
        rewrite(&path, change);
        assert_eq!(
            verify(&path).unwrap().first_break,
            None,
            "the chain alone is fooled"
        );
        verify_against(&path, &witnessed).unwrap()
    }

    // Entry 3 deleted, the rest renumbered and re-hashed.
    let deleted = rewritten(|records| {
        records.remove(2);
    })
    .await;
    assert!(
        matches!(
            deleted.first_break,
            Some(ChainBreak::Unwitnessed {
                first: 1,
                last: 5,
                ..
            })
        ),
        "{deleted:?}"
    );
    // Entries 17 and 18 swapped.
    let reordered = rewritten(|records| records.swap(16, 17)).await;
    assert!(
        matches!(
            reordered.first_break,
            Some(ChainBreak::Unwitnessed {
                first: 16,
                last: 20,
                ..
            })
        ),
        "{reordered:?}"
    );
    assert_eq!(reordered.witnessed, 3);
    // The newest six entries cut (below the checkpoint at 20).
    let cut = rewritten(|records| records.truncate(17)).await;
    assert_eq!(
        cut.first_break,
        Some(ChainBreak::Truncated {
            entries: 17,
            first_missing: 18,
            size: 20,
            witness: "fedq/changsha/node/tax".into()
        })
    );
    // Entries past the last witnessed checkpoint (21–23) are not covered by any witness
    // yet: cutting only those is what the next checkpoint catches.
    let tail = rewritten(|records| records.truncate(21)).await;
    assert_eq!(tail.first_break, None);
    assert_eq!(tail.witnessed, 4);
}

#[tokio::test]
async fn every_entry_gets_a_receipt_that_verifies_and_binds_its_content() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("court-audit.db");
    let signing = signing(1000);
    let verifier = signing.signer.verifier();
    let log = AuditLog::open_signing(&path, signing).unwrap();
    // Concurrent appends, so that groups hold several entries.
    let mut tasks = Vec::new();
    for i in 0..64 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            log.append_committed(record(i)).await
        }));
    }
    let mut committed = Vec::new();
    for t in tasks {
        committed.push(t.await.unwrap().unwrap());
    }
    drop(log);
    for c in &committed {
        let receipt = c.receipt.as_ref().unwrap();
        assert_eq!(receipt.index, c.seq - 1);
        let head = receipt.verify(&verifier).unwrap();
        assert!(head.size >= c.seq);
        // The receipt names the entry the log holds at that place.
        let entries = list(&path, &ListFilter::default()).unwrap();
        let entry = entries.iter().find(|e| e.seq == c.seq).unwrap();
        assert_eq!(entry.hash, receipt.entry_hash);
        // Another entry's hash in this receipt: refused.
        let mut forged = receipt.clone();
        forged.entry_hash = entries
            .iter()
            .find(|e| e.seq != c.seq)
            .unwrap()
            .hash
            .clone();
        assert!(forged.verify(&verifier).is_err());
    }
    // A receipt from one group proves into any later head: the log's stored tree gives the
    // consistency proof between two of its receipts' heads.
    let small = committed.iter().min_by_key(|c| c.seq).unwrap();
    let small_head = small.receipt.as_ref().unwrap().verify(&verifier).unwrap();
    let verified = verify(&path).unwrap();
    let root: merkle::Hash = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(&verified.root)
            .unwrap()
            .try_into()
            .unwrap()
    };
    let proof = consistency_proof(&path, small_head.size, 64).unwrap();
    merkle::verify_consistency(small_head.size, 64, &small_head.root, &root, &proof).unwrap();
    // Another process's key does not verify this log's receipts.
    let other = checkpoint::NoteSigner::new("fedq/changsha/node/court", checkpoint::tests::key())
        .unwrap()
        .verifier();
    assert!(small.receipt.as_ref().unwrap().verify(&other).is_err());
}

#[tokio::test]
async fn a_plain_log_has_no_receipts_and_a_reopened_signing_log_keeps_its_cadence() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let log = AuditLog::open(&path).unwrap();
    assert!(log
        .append_committed(record(0))
        .await
        .unwrap()
        .receipt
        .is_none());
    drop(log);
    // The same file, now signing every 3 entries: checkpoints at sizes 3 and 6.
    let log = AuditLog::open_signing(&path, signing(3)).unwrap();
    for i in 1..8 {
        log.append(record(i)).await.unwrap();
    }
    drop(log);
    let sizes: Vec<u64> = checkpoints(&path)
        .unwrap()
        .iter()
        .map(|(s, _)| *s)
        .collect();
    assert_eq!(sizes, vec![3, 6], "{sizes:?}");
}

fn pkcs8() -> Vec<u8> {
    let rng = ring::rand::SystemRandom::new();
    ring::signature::EcdsaKeyPair::generate_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        &rng,
    )
    .unwrap()
    .as_ref()
    .to_vec()
}

const COURT: &str = "fedq/changsha/node/court";

fn signer(name: &str, key: &[u8]) -> checkpoint::NoteSigner {
    checkpoint::NoteSigner::from_pkcs8(name, key).unwrap()
}

/// The same entry on every branch: fixed time, so two logs can share a prefix.
fn fixed(i: usize, branch: &str) -> AuditRecord {
    let mut r = record(i);
    r.at = OffsetDateTime::from_unix_timestamp(1_780_000_000 + i as i64).unwrap();
    r.query_id = format!("{branch}{i}");
    r
}

/// A log of `entries` (built by `make`) signed with `key`, a checkpoint every 5.
async fn log_of(path: &Path, key: &[u8], entries: impl Iterator<Item = AuditRecord>) {
    let log = AuditLog::open_signing(
        path,
        Signing {
            signer: signer(COURT, key),
            cadence: Cadence {
                entries: 5,
                interval: Duration::from_secs(3600),
            },
        },
    )
    .unwrap();
    for r in entries {
        log.append(r).await.unwrap();
    }
}

fn kept(path: &Path, size: u64) -> String {
    checkpoints(path)
        .unwrap()
        .into_iter()
        .find(|(s, _)| *s == size)
        .unwrap_or_else(|| panic!("no checkpoint at {size}"))
        .1
}

fn add(path: &Path, old: u64, size: u64) -> witness::AddCheckpoint {
    witness::AddCheckpoint {
        old,
        proof: consistency_proof(path, old, size).unwrap(),
        checkpoint: kept(path, size),
    }
}

#[tokio::test]
async fn a_witness_cosigns_a_growing_log_and_refuses_what_the_protocol_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let (court_key, tax_key) = (pkcs8(), pkcs8());
    let path = dir.path().join("court-audit.db");
    log_of(&path, &court_key, (0..20).map(|i| fixed(i, "a"))).await;
    let court = signer(COURT, &court_key).verifier();
    let tax = witness::Witness::open(
        &dir.path().join("tax-witness.db"),
        signer("fedq/changsha/node/tax", &tax_key),
        [court.clone()],
    )
    .unwrap();

    // First contact: old 0, no proof. Then from 5 to 15 with the log's proof.
    let first = tax.add_checkpoint(&add(&path, 0, 5)).unwrap();
    assert_eq!(first.len(), 1);
    // The request travels as the protocol's text.
    let request = witness::AddCheckpoint::parse(&add(&path, 5, 15).to_text()).unwrap();
    tax.add_checkpoint(&request).unwrap();
    let (held, note) = tax.latest(COURT).unwrap().unwrap();
    assert_eq!(held.size, 15);
    // What the witness holds carries both signatures.
    let note = checkpoint::Note::parse(&note).unwrap();
    court.verify(&note).unwrap();
    signer("fedq/changsha/node/tax", &tax_key)
        .verifier()
        .verify(&note)
        .unwrap();

    // A sender that believes the witness is elsewhere: 409 with the size it holds.
    let stale = tax.add_checkpoint(&add(&path, 5, 20)).unwrap_err();
    assert_eq!(stale.status(), 409);
    assert!(stale.to_string().contains("at size 15"), "{stale}");
    // A proof that does not verify: 422, and the state stays at 15.
    let mut bad = add(&path, 15, 20);
    bad.proof[0][0] ^= 1;
    assert_eq!(tax.add_checkpoint(&bad).unwrap_err().status(), 422);
    assert_eq!(tax.latest(COURT).unwrap().unwrap().0.size, 15);
    // A checkpoint signed by another key under the court's name: 403.
    let impostor = signer(COURT, &pkcs8())
        .sign_checkpoint(&held)
        .unwrap()
        .to_text();
    let forged = witness::AddCheckpoint {
        old: 15,
        proof: vec![],
        checkpoint: impostor,
    };
    assert_eq!(tax.add_checkpoint(&forged).unwrap_err().status(), 403);
    // A log this witness does not follow: 404.
    let other = signer("fedq/changsha/node/hrss", &pkcs8())
        .sign_checkpoint(&checkpoint::Checkpoint {
            origin: "fedq/changsha/node/hrss".into(),
            size: 1,
            root: merkle::empty_root(),
        })
        .unwrap()
        .to_text();
    let unknown = witness::AddCheckpoint {
        old: 0,
        proof: vec![],
        checkpoint: other,
    };
    assert_eq!(tax.add_checkpoint(&unknown).unwrap_err().status(), 404);
    // Malformed text: 400, naming what is wrong.
    let err = witness::AddCheckpoint::parse("old 01\n\nx").unwrap_err();
    assert_eq!(err.status(), 400);
    // And the next honest step is cosigned.
    tax.add_checkpoint(&add(&path, 15, 20)).unwrap();
    // The state survives a restart.
    drop(tax);
    let tax = witness::Witness::open(
        &dir.path().join("tax-witness.db"),
        signer("fedq/changsha/node/tax", &tax_key),
        [court.clone()],
    )
    .unwrap();
    assert_eq!(tax.latest(COURT).unwrap().unwrap().0.size, 20);
}

#[tokio::test]
async fn a_log_that_shows_two_witnesses_two_histories_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let court_key = pkcs8();
    let court = signer(COURT, &court_key).verifier();
    // One key, two histories sharing their first 10 entries.
    let honest = dir.path().join("court-audit.db");
    let forked = dir.path().join("court-audit-fork.db");
    log_of(&honest, &court_key, (0..20).map(|i| fixed(i, "a"))).await;
    log_of(
        &forked,
        &court_key,
        (0..20).map(|i| fixed(i, if i < 10 { "a" } else { "b" })),
    )
    .await;
    // The shared prefix: the same tree head at 10 (ECDSA signatures differ each time).
    let head = |path: &Path, size| checkpoint::Note::parse(&kept(path, size)).unwrap().text;
    assert_eq!(head(&honest, 10), head(&forked, 10));
    assert_ne!(head(&honest, 15), head(&forked, 15));
    let witness_at = |name: &str, key: &[u8]| {
        witness::Witness::open(
            &dir.path().join(format!("{}.db", name.replace('/', "_"))),
            signer(name, key),
            [court.clone()],
        )
        .unwrap()
    };
    let (tax_key, hrss_key) = (pkcs8(), pkcs8());
    let tax = witness_at("fedq/changsha/node/tax", &tax_key);
    let hrss = witness_at("fedq/changsha/node/hrss", &hrss_key);
    for w in [&tax, &hrss] {
        w.add_checkpoint(&add(&honest, 0, 10)).unwrap();
    }
    // The department shows tax one history and hrss the other; each alone is consistent.
    tax.add_checkpoint(&add(&honest, 10, 15)).unwrap();
    hrss.add_checkpoint(&add(&forked, 10, 15)).unwrap();
    // The next checkpoint of either history is refused by the witness shown the other.
    let refused = hrss.add_checkpoint(&add(&honest, 15, 20)).unwrap_err();
    assert_eq!(refused.status(), 422, "{refused}");
    assert!(refused.to_string().contains("rewritten, cut or forked"));
    assert_eq!(
        tax.add_checkpoint(&add(&forked, 15, 20))
            .unwrap_err()
            .status(),
        422
    );
    // And either file, checked against what both witnesses hold, fails at 15.
    let held = |w: &witness::Witness, key: &[u8]| {
        witness::cosigned_in(w.path(), &court, &signer(w.name(), key).verifier())
            .unwrap()
            .checkpoints
    };
    let both = [held(&tax, &tax_key), held(&hrss, &hrss_key)].concat();
    assert_eq!(both.len(), 4, "each witness holds 10 and 15");
    for (path, witness) in [
        (&honest, "fedq/changsha/node/hrss"),
        (&forked, "fedq/changsha/node/tax"),
    ] {
        match verify_against(path, &both).unwrap().first_break {
            Some(ChainBreak::Unwitnessed {
                first: 11,
                last: 15,
                witness: w,
                ..
            }) => assert_eq!(w, witness),
            other => panic!("{}: {other:?}", path.display()),
        }
    }
}

#[tokio::test]
async fn one_person_s_entries_come_with_proofs_against_a_witnessed_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("court-audit.db");
    let key = pkcs8();
    let someone = Pseudonymizer::from_key(&[7; 32]).pseudonym("43010219900101002X");
    log_of(
        &path,
        &key,
        (0..12).map(|i| {
            let mut r = fixed(i, "a");
            if i % 4 == 1 {
                r.subject = someone.clone();
            }
            r
        }),
    )
    .await;
    let (head, _) =
        checkpoint::open_checkpoint(&kept(&path, 10), &signer(COURT, &key).verifier()).unwrap();
    let about = entries_about(&path, &someone, head.size).unwrap();
    let seqs: Vec<u64> = about.iter().map(|(e, _)| e.seq).collect();
    // Entries 2, 6 (and 10) are this person's; 10 is inside the checkpoint of 10.
    assert_eq!(seqs, vec![2, 6, 10]);
    for (entry, proof) in &about {
        assert_eq!(entry.record.subject, someone);
        let leaf = tree::entry_leaf(&entry.hash).unwrap();
        merkle::verify_inclusion(&leaf, entry.seq - 1, head.size, proof, &head.root).unwrap();
    }
    // Nobody else's entry is listed, and a later entry is left to a later checkpoint.
    assert!(about.iter().all(|(e, _)| e.seq <= head.size));
}

/// Registers a shredding before `cutoff` as [`AuditLog::shred_expired`] does.
async fn register_retention(path: &Path, cutoff: OffsetDateTime) {
    let log = AuditLog::open(path).unwrap();
    let mut r = record(99);
    r.kind = EntryKind::Retention;
    r.outcome = Outcome::json(&serde_json::json!({"before": format_time(cutoff)}));
    log.append(r).await.unwrap();
}

#[tokio::test]
async fn shredded_bodies_keep_the_tree_and_the_witnessed_checkpoints_verifiable() {
    let dir = tempfile::tempdir().unwrap();
    let (path, witnessed) = witnessed_log(dir.path(), 12).await;
    let entries = list(&path, &ListFilter::default()).unwrap();
    let cutoff = entries[6].record.at;
    let expected = entries.iter().filter(|e| e.record.at < cutoff).count() as u64;
    assert!(expected > 0);
    assert_eq!(shred(&path, cutoff).unwrap(), expected);
    // Shredding twice shreds nothing more.
    assert_eq!(shred(&path, cutoff).unwrap(), 0);
    let after = list(&path, &ListFilter::default()).unwrap();
    for e in &after {
        if e.shredded {
            assert!(e.record.requester.is_empty() && e.record.subject.is_empty());
        }
    }
    assert_eq!(after.iter().filter(|e| e.shredded).count() as u64, expected);
    // Not registered, the shredding reads as an edit: the mark alone proves nothing.
    assert_eq!(
        verify_against(&path, &witnessed).unwrap().first_break,
        Some(ChainBreak::Altered { seq: 1 })
    );
    register_retention(&path, cutoff).await;
    let v = verify_against(&path, &witnessed).unwrap();
    assert_eq!(v.first_break, None, "{v:?}");
    assert_eq!(v.shredded, expected);
    assert_eq!(v.witnessed, 2);
    // The mark cannot hide an edit: a body kept under it, a newer entry marked, or a
    // policy entry marked are each an altered entry.
    let conn = Connection::open(&path).unwrap();
    let first_break = || verify_against(&path, &witnessed).unwrap().first_break;
    conn.execute(
        "UPDATE audit SET requester = 'someone.else' WHERE seq = 1",
        [],
    )
    .unwrap();
    assert_eq!(first_break(), Some(ChainBreak::Altered { seq: 1 }));
    conn.execute("UPDATE audit SET requester = '' WHERE seq = 1", [])
        .unwrap();
    assert_eq!(first_break(), None);
    let newer = (expected + 2).min(12) as i64;
    conn.execute(
        "UPDATE audit SET shredded = 1, query_id = '', requester = '', purpose = '', legal_basis = NULL, subject = '', target = '', outcome = '', policy_version = '', consent_id = NULL, case_reference = NULL, node_query_ids = NULL, answer_sha256 = NULL WHERE seq = ?1",
        params![newer],
    )
    .unwrap();
    assert_eq!(
        first_break(),
        Some(ChainBreak::Altered {
            seq: newer.unsigned_abs()
        })
    );
    drop(conn);
    // A shredded entry's hash is still its leaf: changing it is caught.
    let conn = Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE audit SET hash = ?1 WHERE seq = 1",
        params![hex::encode([9u8; 32])],
    )
    .unwrap();
    assert!(verify_against(&path, &witnessed)
        .unwrap()
        .first_break
        .is_some());
}

/// Issue 18 §6: the retention schedule's step shreds the bodies of entries older than the
/// period (never a policy entry, which a restart reads its floor from), registers that in
/// the log, and leaves a log that still verifies against what a witness cosigned.
#[tokio::test]
async fn entries_past_the_retention_period_are_shredded_registered_and_still_verify() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("court-audit.db");
    let now = OffsetDateTime::now_utc();
    let signing = signing(1);
    let verifier = signing.signer.verifier();
    let log = AuditLog::open_signing(&path, signing).unwrap();
    let mut installed = record(0);
    installed.kind = EntryKind::PolicyInstalled;
    installed.at = now - time::Duration::days(400);
    installed.outcome = Outcome::policy_installed(3, "ab", &[]);
    log.append(installed).await.unwrap();
    for (i, age) in [(1, 400), (2, 366), (3, 364), (4, 1)] {
        let mut r = record(i);
        r.at = now - time::Duration::days(age);
        log.append(r).await.unwrap();
    }
    let (size, note) = latest_checkpoint(&path).unwrap().unwrap();
    let (cosigned, _) = checkpoint::open_checkpoint(&note, &verifier).unwrap();
    assert_eq!(cosigned.size, size);
    let witnessed = [Witnessed {
        witness: "fedq/changsha/witness/tax".into(),
        checkpoint: cosigned,
    }];

    assert_eq!(log.shred_expired(365, "3/2026.12-1", now).await.unwrap(), 2);
    let entries = list(&path, &ListFilter::default()).unwrap();
    let shredded: Vec<u64> = entries
        .iter()
        .filter(|e| e.shredded)
        .map(|e| e.seq)
        .collect();
    assert_eq!(
        shredded,
        [2, 3],
        "entries 2 and 3 are past 365 days; 1 is the policy's"
    );
    assert_eq!(last_installed_policy(&path).unwrap(), Some(3));
    let registered = entries.last().unwrap();
    assert_eq!(registered.record.kind, EntryKind::Retention);
    assert_eq!(registered.record.policy_version, "3/2026.12-1");
    let outcome = registered.record.outcome.to_json().unwrap();
    assert_eq!(outcome["shredded"], 2);
    assert_eq!(outcome["retention_days"], 365);
    // Nothing more is due: nothing is shredded, and nothing registered.
    assert_eq!(log.shred_expired(365, "3/2026.12-1", now).await.unwrap(), 0);
    assert_eq!(
        list(&path, &ListFilter::default()).unwrap().len(),
        entries.len()
    );
    let v = verify_against(&path, &witnessed).unwrap();
    assert_eq!(v.first_break, None, "{v:?}");
    assert_eq!((v.shredded, v.witnessed), (2, 1));
}

/// Issue 18: an entry written for an answer commits to it. Its receipt checks with that
/// answer only; old-form entries (bound to no answer) in the same log verify as before;
/// and `verify` still catches an edit of a bound entry, its digest included.
#[tokio::test]
async fn an_entry_bound_to_its_answer_has_a_receipt_that_checks_with_that_answer_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("court-audit.db");
    let signing = signing(100);
    let verifier = signing.signer.verifier();
    let log = AuditLog::open_signing(&path, signing).unwrap();
    let answers = ["sealed.answer.one", "sealed.answer.two"];
    // An entry of the old form first, then one bound to each answer.
    let old = log.append_committed(record(0)).await.unwrap();
    let mut receipts = Vec::new();
    for (i, answer) in answers.iter().enumerate() {
        let mut r = record(i + 1);
        r.answer_sha256 = Some(checkpoint::answer_sha256(answer));
        receipts.push(log.append_committed(r).await.unwrap().receipt.unwrap());
    }
    drop(log);
    let old = old.receipt.unwrap();
    assert_eq!(old.content_hash, None, "an unbound entry's receipt");
    old.verify(&verifier).unwrap();
    assert_eq!(
        old.verify_answer(&verifier, answers[0]),
        Err(checkpoint::ReceiptError::Unbound)
    );
    for (receipt, answer) in receipts.iter().zip(answers) {
        receipt.verify_answer(&verifier, answer).unwrap();
        // The receipt's content hash is not the entry's hash: without the answer it
        // cannot be turned into another entry's.
        assert_ne!(
            receipt.content_hash.as_deref(),
            Some(receipt.entry_hash.as_str())
        );
    }
    // Swapped: each answer with the other's receipt.
    assert_eq!(
        receipts[0].verify_answer(&verifier, answers[1]),
        Err(checkpoint::ReceiptError::OtherAnswer)
    );
    assert_eq!(
        receipts[1].verify_answer(&verifier, answers[0]),
        Err(checkpoint::ReceiptError::OtherAnswer)
    );
    // The stored entries carry their digests and hash as the receipts say.
    let listed = list(&path, &ListFilter::default()).unwrap();
    assert_eq!(listed[0].record.answer_sha256, None);
    assert_eq!(
        listed[1].record.answer_sha256,
        Some(checkpoint::answer_sha256(answers[0]))
    );
    assert_eq!(listed[2].hash, receipts[1].entry_hash);
    let json = serde_json::to_value(&listed[1]).unwrap();
    assert_eq!(
        json["answer_sha256"],
        hex::encode(checkpoint::answer_sha256(answers[0]))
    );
    let v = verify(&path).unwrap();
    assert_eq!((v.entries, v.first_break), (3, None));

    // An edit of a bound entry's body, or of its digest, is caught.
    let conn = Connection::open(&path).unwrap();
    conn.execute("UPDATE audit SET purpose = 'statistics' WHERE seq = 2", [])
        .unwrap();
    assert_eq!(
        verify(&path).unwrap().first_break,
        Some(ChainBreak::Altered { seq: 2 })
    );
    conn.execute(
        "UPDATE audit SET purpose = 'administrative-licensing' WHERE seq = 2",
        [],
    )
    .unwrap();
    assert_eq!(verify(&path).unwrap().first_break, None);
    let other = hex::encode(checkpoint::answer_sha256(answers[1]));
    conn.execute(
        "UPDATE audit SET answer_sha256 = ?1 WHERE seq = 2",
        params![other],
    )
    .unwrap();
    assert_eq!(
        verify(&path).unwrap().first_break,
        Some(ChainBreak::Altered { seq: 2 })
    );
    // Dropping the digest (the entry posing as an old-form one) is caught too.
    conn.execute("UPDATE audit SET answer_sha256 = NULL WHERE seq = 2", [])
        .unwrap();
    assert_eq!(
        verify(&path).unwrap().first_break,
        Some(ChainBreak::Altered { seq: 2 })
    );
}

/// A log written before entries were bound to answers (no `answer_sha256` column) opens,
/// gains the column, and its old entries verify beside new bound ones.
#[tokio::test]
async fn a_log_from_before_answer_binding_opens_and_still_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("court-audit.db");
    let log = AuditLog::open(&path).unwrap();
    log.append(record(1)).await.unwrap();
    drop(log);
    Connection::open(&path)
        .unwrap()
        .execute_batch("ALTER TABLE audit DROP COLUMN answer_sha256")
        .unwrap();
    assert_eq!(verify(&path).unwrap().first_break, None);
    let log = AuditLog::open(&path).unwrap();
    let mut bound = record(2);
    bound.answer_sha256 = Some(checkpoint::answer_sha256("sealed"));
    log.append(bound).await.unwrap();
    drop(log);
    let v = verify(&path).unwrap();
    assert_eq!((v.entries, v.first_break), (2, None));
}

#[tokio::test]
async fn a_witness_given_the_log_s_key_per_request_refuses_another_origin_and_a_cut_log() {
    let dir = tempfile::tempdir().unwrap();
    let (court_key, tax_key) = (pkcs8(), pkcs8());
    let path = dir.path().join("court-audit.db");
    log_of(&path, &court_key, (0..15).map(|i| fixed(i, "a"))).await;
    let court = signer(COURT, &court_key).verifier();
    // No list of logs: the key comes with each request (from the log's certificate).
    let tax = witness::Witness::open(
        &dir.path().join("tax-witness.db"),
        signer("fedq/changsha/witness/tax", &tax_key),
        [],
    )
    .unwrap();
    tax.add_checkpoint_for(&add(&path, 0, 10), &court).unwrap();
    // A checkpoint whose origin is not the certificate's log, signed by that log's key
    // under the other name: 403, whoever signed it.
    let elsewhere = signer("fedq/changsha/node/hrss", &court_key)
        .sign_checkpoint(&checkpoint::Checkpoint {
            origin: "fedq/changsha/node/hrss".into(),
            size: 1,
            root: merkle::empty_root(),
        })
        .unwrap()
        .to_text();
    let other = witness::AddCheckpoint {
        old: 0,
        proof: vec![],
        checkpoint: elsewhere,
    };
    assert_eq!(
        tax.add_checkpoint_for(&other, &court).unwrap_err().status(),
        403
    );
    // A smaller, genuine tree head than the one cosigned (a relay replaying an old one,
    // or a log cut back to it): 400, not an alarm — it proves nothing by itself.
    let older = witness::AddCheckpoint {
        old: 10,
        proof: vec![],
        checkpoint: kept(&path, 5),
    };
    let refused = tax.add_checkpoint_for(&older, &court).unwrap_err();
    assert_eq!(refused.status(), 400, "{refused}");
    assert_eq!(tax.latest(COURT).unwrap().unwrap().0.size, 10);
    // Another root at a size it cosigned, signed by the log's key: two histories, 422.
    tax.add_checkpoint_for(&add(&path, 10, 15), &court).unwrap();
    let forked = signer(COURT, &court_key)
        .sign_checkpoint(&checkpoint::Checkpoint {
            origin: COURT.into(),
            size: 10,
            root: [7; 32],
        })
        .unwrap()
        .to_text();
    let fork = witness::AddCheckpoint {
        old: 15,
        proof: vec![],
        checkpoint: forked,
    };
    let refused = tax.add_checkpoint_for(&fork, &court).unwrap_err();
    assert_eq!(refused.status(), 422, "{refused}");
    assert_eq!(tax.latest(COURT).unwrap().unwrap().0.size, 15);
    // The newest checkpoint a log offers its witnesses.
    assert_eq!(latest_checkpoint(&path).unwrap().unwrap().0, 15);
}

/// The log's newest kept checkpoint once it is of `size` entries, polled every 100 ms
/// for at most 10 s (the newest one kept then, if not).
async fn checkpoint_of_size(path: &Path, size: u64) -> Option<(u64, String)> {
    let mut kept = None;
    for _ in 0..100 {
        kept = latest_checkpoint(path).unwrap();
        if kept.as_ref().is_some_and(|(s, _)| *s == size) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    kept
}

/// The cadence's time is kept by the writer's clock too: a log whose entries stopped
/// keeps a checkpoint of its newest ones once the interval is up, without another entry.
#[tokio::test]
async fn a_quiet_log_keeps_a_checkpoint_of_its_newest_entries_when_the_time_is_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("court-audit.db");
    let mut signing = signing(1000);
    signing.cadence.interval = Duration::from_millis(200);
    let log = AuditLog::open_signing(&path, signing).unwrap();
    for i in 0..3 {
        log.append(record(i)).await.unwrap();
    }
    // Far fewer entries than the cadence's 1000, and none after these.
    let kept = checkpoint_of_size(&path, 3).await;
    let (size, note) = kept.expect("no checkpoint kept within 10 s");
    assert_eq!(size, 3);
    let note = checkpoint::Note::parse(&note).unwrap();
    let head = checkpoint::Checkpoint::parse_body(&note.text).unwrap();
    assert_eq!(head.origin, "fedq/changsha/node/court");
    assert_eq!(head.size, 3);
    // An entry another process appends (an operator's tool beside the serving process) is
    // in the next timed checkpoint, though this writer never wrote it.
    let tool = AuditLog::open(&path).unwrap();
    tool.append(record(3)).await.unwrap();
    drop(tool);
    let kept = checkpoint_of_size(&path, 4).await;
    let (size, note) = kept.unwrap();
    assert_eq!(size, 4, "the tool's entry was left out");
    drop(log);
    let verified = verify(&path).unwrap();
    assert_eq!(verified.entries, 4);
    assert!(verified.first_break.is_none(), "{:?}", verified.first_break);
    // It signs the log's own tree of those four entries.
    let head =
        checkpoint::Checkpoint::parse_body(&checkpoint::Note::parse(&note).unwrap().text).unwrap();
    assert_eq!(base64_root(&head.root), verified.root);
}
