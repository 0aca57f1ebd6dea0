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
        outcome: "{}".into(),
        policy_version: "1".into(),
        consent_id: None,
        node_query_ids: BTreeMap::new(),
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
                r.outcome,
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
