//! What the requester proof costs (issue 14): CPU per session open on each side and per
//! proof check at a node with the session cached, measured in-process on one thread with
//! the federation's real certificates; the check includes opening the sealed subject. A
//! proof that does not verify fails the measurement. Beside it, what sealing over the
//! same session costs (`fedq_wire::seal`): µs per seal and per open of one payload in each
//! direction.

use std::path::Path;
use std::time::{Duration, Instant};

use fedq_certs::jws::CertificateKey;
use fedq_certs::tls::TrustFiles;
use fedq_certs::FederationTrust;
use fedq_wire::message::{DatasetRequest, LookupRequest, LookupTarget};
use fedq_wire::proof::{
    accept_grant, fresh_nonce, ProofClaims, ProofGate, SealedSubject, SessionGrant, UnixTime,
};
use fedq_wire::ResidentId;

use crate::BenchError;

/// Median costs, in µs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProofCosts {
    /// The requester's side of a session: making the grant and completing the accept.
    pub requester_open_us: f64,
    /// The node's side of a session: verifying the grant, agreeing the key, signing the accept.
    pub node_open_us: f64,
    /// One proof checked at the node under a cached session (parse, MAC, claims, replay
    /// cache, comparison with the lookup).
    pub check_us: f64,
}

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v.get(v.len() / 2).map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

fn load(pki: &Path, name: &str) -> Result<CertificateKey, BenchError> {
    CertificateKey::load(
        &pki.join(format!("{name}.crt")),
        &pki.join(format!("{name}.key")),
    )
    .map_err(|e| BenchError(format!("certificate of `{name}`: {e}")))
}

/// Opens `sessions` sessions between `requester` and `node` of the federation in `pki`,
/// then checks `proofs` proofs (each made beforehand, so only the node's work is timed).
pub fn proof_costs(
    pki: &Path,
    requester: &str,
    node: &str,
    sessions: usize,
    proofs: usize,
) -> Result<ProofCosts, BenchError> {
    let trust = FederationTrust::load(&TrustFiles::in_dir(pki))
        .map_err(|e| BenchError(format!("trust: {e}")))?;
    let federation = trust.federation().to_owned();
    let requester_key = load(pki, requester)?;
    let node_key = load(pki, node)?;
    let gate = ProofGate::new(&federation, node, sessions.max(1) + 1, proofs.max(1) + 1);
    let fail = |what: &str, e: &dyn std::fmt::Display| BenchError(format!("{what}: {e}"));
    let (mut requester_side, mut node_side) = (Vec::new(), Vec::new());
    let mut session = None;
    for _ in 0..sessions.max(1) {
        let now = UnixTime::now();
        let t = Instant::now();
        let (grant, pending) = SessionGrant::new(&requester_key, &federation, node, now)
            .map_err(|e| fail("grant", &e))?;
        let made = t.elapsed();
        let t = Instant::now();
        let (accept, _) = gate
            .open(&grant, &trust, &node_key, now)
            .map_err(|e| fail("session", &e))?;
        node_side.push(t.elapsed());
        let t = Instant::now();
        let s = pending
            .complete(&accept, &trust, now)
            .map_err(|e| fail("accept", &e))?;
        requester_side.push(made + t.elapsed());
        session = Some(s);
    }
    let session = session.ok_or_else(|| BenchError("no session".into()))?;
    let subject = SealedSubject {
        sub: ResidentId::parse("11010519491231002X").map_err(|e| fail("subject", &e))?,
        consent: None,
        filing: None,
    };
    let lookup = LookupRequest {
        query_id: "bench".into(),
        requester: requester.to_owned(),
        purpose: "administrative-licensing".into(),
        legal_basis: Some("bench basis".into()),
        case_reference: Some("LIC-2026-0001".into()),
        target: LookupTarget::Datasets(vec![DatasetRequest {
            dataset: format!("{node}.dishonest_debtors"),
            fields: Some(vec!["case_no".into(), "listed_on".into()]),
        }]),
        policy_version: "bench".into(),
        date: time::OffsetDateTime::now_utc().date(),
        proof: String::new(),
        sealed: String::new(),
    };
    let claims = ProofClaims::of_lookup(&lookup);
    let now = UnixTime::now();
    let mut lookups = Vec::with_capacity(proofs);
    for _ in 0..proofs.max(1) {
        let mut l = lookup.clone();
        let nonce = fresh_nonce().map_err(|e| fail("nonce", &e))?;
        (l.proof, l.sealed) = session
            .prove_sealed(&claims, &subject, now, &nonce)
            .map_err(|e| fail("proof", &e))?;
        lookups.push(l);
    }
    let mut checks = Vec::with_capacity(lookups.len());
    for l in &lookups {
        let t = Instant::now();
        gate.check(l, |_| false, now)
            .map_err(|r| fail("proof", &r.reason))?;
        checks.push(t.elapsed());
    }
    Ok(ProofCosts {
        requester_open_us: median(requester_side),
        node_open_us: median(node_side),
        check_us: median(checks),
    })
}

/// Median costs of sealing, in µs, for one payload size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SealCosts {
    /// Plaintext bytes sealed.
    pub payload_bytes: usize,
    /// The requester seals a query to the node.
    pub seal_query_us: f64,
    /// The node opens it.
    pub open_query_us: f64,
    /// The node seals an answer to the requester.
    pub seal_answer_us: f64,
    /// The requester opens it.
    pub open_answer_us: f64,
}

/// Opens one session between `requester` and `node` of the federation in `pki`, then
/// times `rounds` seals and opens of a `payload_bytes` payload in each direction, on one
/// thread (`fedq_wire::seal`: AES-256-GCM in a compact JWE). An open that does not give
/// the plaintext back fails the measurement.
pub fn seal_costs(
    pki: &Path,
    requester: &str,
    node: &str,
    payload_bytes: usize,
    rounds: usize,
) -> Result<SealCosts, BenchError> {
    let trust = FederationTrust::load(&TrustFiles::in_dir(pki))
        .map_err(|e| BenchError(format!("trust: {e}")))?;
    let federation = trust.federation().to_owned();
    let requester_key = load(pki, requester)?;
    let node_key = load(pki, node)?;
    let fail = |what: &str, e: &dyn std::fmt::Display| BenchError(format!("{what}: {e}"));
    let now = UnixTime::now();
    let (grant, pending) =
        SessionGrant::new(&requester_key, &federation, node, now).map_err(|e| fail("grant", &e))?;
    let (accept, node_session) = accept_grant(&grant, &trust, &node_key, &federation, node, now)
        .map_err(|e| fail("session", &e))?;
    let session = pending
        .complete(&accept, &trust, now)
        .map_err(|e| fail("accept", &e))?;
    let plaintext: Vec<u8> = (0..payload_bytes).map(|i| (i % 251) as u8).collect();
    let rounds = rounds.max(1);
    let mut times: [Vec<Duration>; 4] = Default::default();
    for _ in 0..rounds {
        let binding = fresh_nonce().map_err(|e| fail("nonce", &e))?;
        let t = Instant::now();
        let query = session
            .seal_query(&plaintext, &binding)
            .map_err(|e| fail("seal query", &e))?;
        let sealed_query = t.elapsed();
        let t = Instant::now();
        let opened = node_session
            .open_query(&query, &binding)
            .map_err(|e| fail("open query", &e))?;
        let opened_query = t.elapsed();
        let t = Instant::now();
        let answer = node_session
            .seal_answer(&plaintext, &binding)
            .map_err(|e| fail("seal answer", &e))?;
        let sealed_answer = t.elapsed();
        let t = Instant::now();
        let back = session
            .open_answer(&answer, &binding)
            .map_err(|e| fail("open answer", &e))?;
        let opened_answer = t.elapsed();
        if opened.as_slice() != plaintext.as_slice() || back.as_slice() != plaintext.as_slice() {
            return Err(BenchError("a sealed payload opened to other bytes".into()));
        }
        for (v, d) in
            times
                .iter_mut()
                .zip([sealed_query, opened_query, sealed_answer, opened_answer])
        {
            v.push(d);
        }
    }
    let [seal_query, open_query, seal_answer, open_answer] = times;
    Ok(SealCosts {
        payload_bytes,
        seal_query_us: median(seal_query),
        open_query_us: median(open_query),
        seal_answer_us: median(seal_answer),
        open_answer_us: median(open_answer),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use fedq_certs::pki::{CertificateAuthority, IssueOptions};
    use fedq_certs::Role;

    #[test]
    fn the_proof_costs_are_measured_on_proofs_that_verify() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::init(dir.path(), "changsha", false).unwrap();
        ca.issue(
            Role::Requester,
            "market-regulation.licensing",
            &IssueOptions::default(),
        )
        .unwrap();
        ca.issue(Role::Node, "court", &IssueOptions::default())
            .unwrap();
        let costs = proof_costs(dir.path(), "market-regulation.licensing", "court", 3, 50).unwrap();
        assert!(costs.check_us > 0.0 && costs.node_open_us > 0.0 && costs.requester_open_us > 0.0);
        // A node that is not the certificate's is refused, so the figures are of real checks.
        assert!(proof_costs(dir.path(), "market-regulation.licensing", "tax", 1, 1).is_err());
        let seal =
            seal_costs(dir.path(), "market-regulation.licensing", "court", 2048, 20).unwrap();
        assert_eq!(seal.payload_bytes, 2048);
        assert!(seal.seal_query_us > 0.0 && seal.open_query_us > 0.0);
        assert!(seal.seal_answer_us > 0.0 && seal.open_answer_us > 0.0);
    }
}
