//! The audit log's figures (issue 18): durable appends per second with and without signed
//! tree heads (every group commit's head is signed for its receipts), in the same sitting
//! so the ratio is honest; the cost of signing and verifying one checkpoint; the cost of
//! one witness cosigning (consistency proof checked, state made durable); and the sizes
//! of what travels (a checkpoint, a receipt, an inclusion and a consistency proof).

use std::path::Path;
use std::time::{Duration, Instant};

use fedq_audit::checkpoint::{Checkpoint, NoteSigner, Receipt};
use fedq_audit::merkle::{self, MemoryTree};
use fedq_audit::witness::{AddCheckpoint, Witness};
use fedq_audit::{AuditLog, AuditRecord, Cadence, Signing};
use serde_json::{json, Value};

use crate::{err, percentile, round3, BenchError, LICENSING_BASIS};

/// Concurrent writers in the append measurement (as many lookups as a busy node holds).
const WRITERS: u64 = 256;
/// Appends per writer per run.
const PER_WRITER: u64 = 200;
/// Runs of each kind, alternating, so that noise falls on both alike.
const RUNS: usize = 3;

/// What the audit section measured.
pub(crate) struct AuditFigures {
    /// Median durable appends/s of the signing log (what a node runs).
    pub(crate) signed_appends_per_s: f64,
    /// The section's report.
    pub(crate) report: Value,
}

/// One answer's entry, as a node writes it (no personal data: the subject is a
/// pseudonym-shaped constant).
fn record(writer: u64, n: u64) -> AuditRecord {
    AuditRecord {
        at: time::OffsetDateTime::now_utc(),
        kind: fedq_audit::EntryKind::Answer,
        query_id: format!("{writer}-{n}"),
        requester: "market-regulation.licensing".into(),
        purpose: "administrative-licensing".into(),
        legal_basis: Some(LICENSING_BASIS.into()),
        case_reference: None,
        subject: "0123456789abcdef0123456789abcdef".into(),
        target: "view:blacklist-check".into(),
        outcome: fedq_audit::Outcome::json(
            &json!({"court.dishonest_debtors":{"released":{"fields":{"listed_on":"clear"},"records":1}}}),
        ),
        policy_version: "bench".into(),
        consent_id: None,
        node_query_ids: Default::default(),
        answer_sha256: None,
    }
}

/// Durable appends per second into a fresh log at `path` from [`WRITERS`] concurrent
/// writers, and one receipt of the run (a signing log's).
async fn append_run(
    path: &Path,
    signing: Option<Signing>,
) -> Result<(f64, Option<Receipt>), BenchError> {
    let _ = std::fs::remove_file(path);
    let log = match signing {
        Some(s) => AuditLog::open_signing(path, s),
        None => AuditLog::open(path),
    }
    .map_err(err("audit"))?;
    let t = Instant::now();
    let mut tasks = Vec::new();
    for k in 0..WRITERS {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut receipt = None;
            for j in 0..PER_WRITER {
                let committed = log.append_committed(record(k, j)).await?;
                receipt = committed.receipt;
            }
            Ok::<_, fedq_audit::AuditError>(receipt)
        }));
    }
    let mut receipt = None;
    for task in tasks {
        let last = task
            .await
            .map_err(err("audit writer"))?
            .map_err(err("audit append"))?;
        receipt = receipt.or(last);
    }
    Ok((
        (WRITERS * PER_WRITER) as f64 / t.elapsed().as_secs_f64(),
        receipt,
    ))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn median_us(mut v: Vec<Duration>) -> f64 {
    v.sort();
    percentile(&v, 0.5) * 1e3
}

/// A node's log signer, from its certificate key (what the node signs with).
fn signer(pki: &Path, name: &str) -> Result<NoteSigner, BenchError> {
    Signing::from_certificate(
        &pki.join(format!("{name}.crt")),
        &pki.join(format!("{name}.key")),
        Cadence::default(),
    )
    .map(|s| s.signer)
    .map_err(err("a node's signing key"))
}

/// Runs the section: writes its logs under `out`, reads keys from the federation's `pki`.
pub(crate) async fn section(out: &Path, pki: &Path) -> Result<AuditFigures, BenchError> {
    let (court, tax) = (signer(pki, "court")?, signer(pki, "tax")?);
    let plain_path = out.join("bench-audit.db");
    let signed_path = out.join("bench-audit-signed.db");

    // Appends, plain and signing, alternating.
    let mut plain = Vec::new();
    let mut signed = Vec::new();
    let mut receipt = None;
    for _ in 0..RUNS {
        plain.push(append_run(&plain_path, None).await?.0);
        let signing = Signing {
            signer: signer(pki, "court")?,
            cadence: Cadence::default(),
        };
        let (rate, r) = append_run(&signed_path, Some(signing)).await?;
        signed.push(rate);
        receipt = receipt.or(r);
    }
    let receipt = receipt.ok_or_else(|| BenchError("a signing log gave no receipt".into()))?;
    receipt
        .verify(&court.verifier())
        .map_err(err("the bench log's receipt"))?;
    let plain_per_s = median(plain.clone());
    let signed_per_s = median(signed.clone());
    let entries = WRITERS * PER_WRITER;

    // Verification of the whole signed log.
    let t = Instant::now();
    let v = fedq_audit::verify(&signed_path).map_err(err("verify"))?;
    let verify_per_s = v.entries as f64 / t.elapsed().as_secs_f64();
    if v.first_break.is_some() || v.entries != entries {
        return Err(BenchError("the bench log does not verify".into()));
    }

    // One checkpoint signed and verified (P-256 ECDSA over the note text).
    let mut tree = MemoryTree::default();
    for i in 0..entries {
        tree.push(merkle::leaf_hash(&i.to_be_bytes()));
    }
    let head = Checkpoint {
        origin: court.name().to_owned(),
        size: tree.size(),
        root: tree.root(tree.size()).map_err(err("tree"))?,
    };
    let mut sign = Vec::new();
    let mut verify = Vec::new();
    let mut note = None;
    for _ in 0..2000 {
        let t = Instant::now();
        let n = court.sign_checkpoint(&head).map_err(err("sign"))?;
        sign.push(t.elapsed());
        let t = Instant::now();
        court.verifier().verify(&n).map_err(err("verify note"))?;
        verify.push(t.elapsed());
        note = Some(n);
    }
    let note_bytes = note.map(|n| n.to_text().len()).unwrap_or(0);

    // A witness cosigning: the court's log grows by a cadence's worth of entries between
    // checkpoints; the tax office checks the consistency proof, keeps the checkpoint
    // durably, and cosigns.
    let witness_path = out.join("bench-witness.db");
    let _ = std::fs::remove_file(&witness_path);
    let witness = Witness::open(&witness_path, tax, [court.verifier()]).map_err(err("witness"))?;
    let step = Cadence::default().entries;
    let mut grown = MemoryTree::default();
    let mut cosign = Vec::new();
    let mut request_bytes = Vec::new();
    let mut old = 0u64;
    for round in 0..200u64 {
        for i in 0..step {
            grown.push(merkle::leaf_hash(&(round * step + i).to_be_bytes()));
        }
        let size = grown.size();
        let head = Checkpoint {
            origin: court.name().to_owned(),
            size,
            root: grown.root(size).map_err(err("tree"))?,
        };
        let proof = if old == 0 {
            Vec::new()
        } else {
            grown.consistency_proof(old, size).map_err(err("proof"))?
        };
        let request = AddCheckpoint {
            old,
            proof,
            checkpoint: court.sign_checkpoint(&head).map_err(err("sign"))?.to_text(),
        };
        request_bytes.push(request.to_text().len() as f64);
        let t = Instant::now();
        witness
            .add_checkpoint(&request)
            .map_err(err("add-checkpoint"))?;
        cosign.push(t.elapsed());
        old = size;
    }

    // What travels.
    let receipt_json = serde_json::to_string(&receipt).map_err(err("receipt"))?;
    let inclusion_at = |size: u64| -> Result<usize, BenchError> {
        let mut t = MemoryTree::default();
        for i in 0..size {
            t.push(merkle::leaf_hash(&i.to_be_bytes()));
        }
        Ok(t.inclusion_proof(size / 3, size)
            .map_err(err("proof"))?
            .len())
    };
    let proof_hashes_1m = inclusion_at(1 << 20)?;
    let consistency_hashes = grown
        .consistency_proof(grown.size() - step, grown.size())
        .map_err(err("proof"))?
        .len();

    let ratio = signed_per_s / plain_per_s;
    println!(
        "  audit: {signed_per_s:.0} durable appends/s with signed heads ({plain_per_s:.0} unsigned, ratio {ratio:.2}; {WRITERS} concurrent writers, median of {RUNS}), verification {verify_per_s:.0} entries/s"
    );
    println!(
        "  checkpoint: sign {:.1} µs, verify {:.1} µs, {note_bytes} B; witness cosign {:.0} µs (proof checked, state durable); receipt {} B ({} proof hashes at {entries} entries, {proof_hashes_1m} at 2^20); add-checkpoint {:.0} B ({consistency_hashes} hashes every {step} entries)",
        median_us(sign.clone()),
        median_us(verify.clone()),
        median_us(cosign.clone()),
        receipt_json.len(),
        receipt.proof.len(),
        median(request_bytes.clone()),
    );
    let report = json!({
        "writers": WRITERS,
        "entries_per_run": entries,
        "runs": RUNS,
        "appends_per_s_signed": signed_per_s.round(),
        "appends_per_s_unsigned": plain_per_s.round(),
        "appends_signed_over_unsigned": round3(ratio),
        "appends_per_s_signed_runs": signed.iter().map(|v| v.round()).collect::<Vec<_>>(),
        "appends_per_s_unsigned_runs": plain.iter().map(|v| v.round()).collect::<Vec<_>>(),
        "verify_entries_per_s": verify_per_s.round(),
        "checkpoint_sign_us": round3(median_us(sign)),
        "checkpoint_verify_us": round3(median_us(verify)),
        "checkpoint_note_bytes": note_bytes,
        "witness_cosign_us": round3(median_us(cosign)),
        "witness_entries_between_checkpoints": step,
        "add_checkpoint_request_bytes": median(request_bytes),
        "consistency_proof_hashes": consistency_hashes,
        "receipt_bytes_json": receipt_json.len(),
        "receipt_proof_hashes": receipt.proof.len(),
        "inclusion_proof_hashes_at_2_pow_20": proof_hashes_1m,
    });
    Ok(AuditFigures {
        signed_appends_per_s: signed_per_s,
        report,
    })
}
