//! Issue 14 §1: the requester proves who asks, and each node checks it itself. A court
//! node (in-process, over real QUIC with certificates from the federation's own CA) holding
//! one listed debtor is asked in the coordinator's place: an honest, proven lookup is
//! answered and audited under the requester its session proves; a lookup changed after it
//! was proven, replayed, made for another node, under an unknown or expired session, with
//! no proof at all, or by a requester whose certificate was revoked is refused with a
//! typed code, audited at the node, and nothing of the record crosses the wire.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fedq_certs::pki::CertificateAuthority;
use fedq_node::config::NodeConfig;
use fedq_node::service::Node;
use fedq_wire::message::{DatasetRequest, LookupRequest, LookupTarget};
use fedq_wire::proof::{
    fresh_nonce, ProofClaims, ProofField, ProofRefusal, SessionGrant, UnixTime,
};
use fedq_wire::transport::{Limits, NodeClient, TlsFiles};
use fedq_wire::{NodeRequest, NodeResponse};
use support::proof::ProvingChannel;
use support::{rid, TestFederation};

const TODAY: &str = "2026-11-27";
const BASIS: &str = "长政办发〔2017〕62号";
const LICENSING: &str = "market-regulation.licensing";
const CASE_NO: &str = "(2025)湘0102执101号";
const DEBTOR_NAME: &str = "张三丰";

struct Court {
    fed: TestFederation,
    court: ProvingChannel,
    tax: ProvingChannel,
    frames: Arc<Mutex<Vec<Vec<u8>>>>,
    debtor: String,
    _client: NodeClient,
}

fn fedq(args: &[&str]) {
    let out = support::process::output_within(
        std::process::Command::new(env!("CARGO_BIN_EXE_fedq")).args(args),
        support::process::COMMAND_LIMIT,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A court node with one listed debtor and an empty tax node, both served in this runtime,
/// each behind a coordinator's channel that proves lookups as their requesters.
async fn start() -> Court {
    let fed = TestFederation::new(&["court", "tax"], &[LICENSING, "court.enforcement"]);
    let debtor = rid("43010219800101123");
    let config = fed.node_config("court", TODAY);
    let cfg = config.to_str().unwrap();
    fedq(&["node", "init", "--config", cfg]);
    let csv = fed.write(
        "in/debtors.csv",
        &format!(
            "case_no,resident_id,name,court,obligation,amount_owed,performance_status,listed_on,removed_on\n\
             {CASE_NO},{debtor},{DEBTOR_NAME},长沙市芙蓉区人民法院,支付货款,52000.00,unperformed,2025-06-01,\n"
        ),
    );
    fedq(&[
        "node",
        "import",
        "--config",
        cfg,
        "--dataset",
        "dishonest_debtors",
        csv.to_str().unwrap(),
    ]);
    let frames: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let tap = {
        let frames = Arc::clone(&frames);
        Arc::new(move |bytes: &[u8]| frames.lock().unwrap().push(bytes.to_vec()))
    };
    let limits = Limits {
        reload_interval: Duration::from_millis(200),
        ..Limits::default()
    };
    let court = Node::start(NodeConfig::load(&config).unwrap(), limits.clone())
        .await
        .unwrap();
    let court_addr = court.local_addr().unwrap();
    tokio::spawn(court.serve(Some(tap), std::future::pending()));
    let tax_config = fed.node_config("tax", TODAY);
    fedq(&["node", "init", "--config", tax_config.to_str().unwrap()]);
    let tax = Node::start(NodeConfig::load(&tax_config).unwrap(), limits)
        .await
        .unwrap();
    let tax_addr = tax.local_addr().unwrap();
    tokio::spawn(tax.serve(None, std::future::pending()));
    let client = NodeClient::new(
        "127.0.0.1:0".parse().unwrap(),
        TlsFiles::in_dir(&fed.pki, "coordinator"),
        Limits::default(),
    )
    .unwrap();
    Court {
        court: ProvingChannel::new(client.channel("court", court_addr), &fed.pki),
        tax: ProvingChannel::new(client.channel("tax", tax_addr), &fed.pki),
        fed,
        frames,
        debtor,
        _client: client,
    }
}

impl Court {
    /// The licensing office's check of the debtor, citing its licensing case.
    fn licensing_lookup(&self) -> LookupRequest {
        LookupRequest {
            query_id: "q-proof".into(),
            requester: LICENSING.into(),
            purpose: "administrative-licensing".into(),
            legal_basis: Some(BASIS.into()),
            case_reference: Some(fedq_sandbox::LICENSING_CASE.into()),
            target: LookupTarget::Datasets(vec![DatasetRequest {
                dataset: "court.dishonest_debtors".into(),
                fields: Some(vec!["case_no".into(), "listed_on".into()]),
            }]),
            policy_version: "test".into(),
            date: time::Date::parse(
                TODAY,
                time::macros::format_description!("[year]-[month]-[day]"),
            )
            .unwrap(),
            proof: String::new(),
            sealed: support::proof::clear_subject(&self.debtor, None),
        }
    }

    async fn send(&self, request: &NodeRequest) -> NodeResponse {
        self.court
            .raw()
            .request(request, Duration::from_secs(10))
            .await
            .unwrap()
    }

    fn audit(&self) -> Vec<fedq_audit::AuditRecord> {
        fedq_audit::list(
            &self.fed.root.join("data/court-audit.db"),
            &fedq_audit::ListFilter::default(),
        )
        .unwrap()
        .into_iter()
        .map(|e| e.record)
        .collect()
    }

    /// Frames the court answered since `from`, as text.
    fn wire_since(&self, from: usize) -> String {
        let frames = self.frames.lock().unwrap();
        String::from_utf8_lossy(&frames[from..].concat()).into_owned()
    }

    fn frames_seen(&self) -> usize {
        self.frames.lock().unwrap().len()
    }
}

fn refused_with(answer: &NodeResponse) -> ProofRefusal {
    match answer {
        NodeResponse::ProofRefused { code, message } => {
            assert_eq!(message, &format!("node `court`: {code}"));
            *code
        }
        other => panic!("expected a proof refusal, got {other:?}"),
    }
}

/// The last audit entry is a proof refusal with `code`, naming `requester`, and quoting
/// nothing of the lookup.
fn assert_refusal_audited(c: &Court, code: ProofRefusal, requester: &str, proof: &str) {
    let last = c.audit().pop().unwrap();
    assert_eq!(last.kind, fedq_audit::EntryKind::Refusal);
    assert_eq!(last.requester, requester);
    // The sealed subject was never opened: not even the person's pseudonym is recorded.
    assert_eq!(last.subject, "-");
    assert_eq!((last.purpose.as_str(), last.target.as_str()), ("-", "-"));
    assert_eq!(last.legal_basis, None);
    let outcome: serde_json::Value = serde_json::from_str(&last.outcome).unwrap();
    assert_eq!(outcome["proof"], code.code(), "{outcome}");
    assert_eq!(outcome["coordinator"], "coordinator");
    let entry = serde_json::to_string(&last).unwrap();
    for leaked in [
        c.debtor.as_str(),
        BASIS,
        fedq_sandbox::LICENSING_CASE,
        "consent-reference",
        CASE_NO,
    ] {
        assert!(!entry.contains(leaked), "`{leaked}` in {entry}");
    }
    if proof.len() > 20 {
        assert!(!entry.contains(&proof[proof.len() - 20..]), "{entry}");
    }
}

/// Whether the court's answer, opened as the requester opens it, holds the case number.
/// (Sealed, the answer holds it only encrypted: [`a_lookup_changed_after_proving_is_refused_audited_and_releases_nothing`]
/// checks the wire.)
fn released_case_no(answer: &NodeResponse) -> bool {
    match answer {
        NodeResponse::Lookup(l) => {
            assert!(!l.sealed.contains(CASE_NO));
            format!("{:?}", support::proof::opened(answer)).contains(CASE_NO)
        }
        other => panic!("expected an answer, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_honest_proven_lookup_is_answered_and_audited_as_the_proven_requester() {
    let c = start().await;
    let answer = c
        .court
        .request(
            &NodeRequest::Lookup(c.licensing_lookup()),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert!(released_case_no(&answer), "{answer:?}");
    let audit = c.audit();
    let kinds: Vec<&str> = audit.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(kinds, ["session", "answer"], "{audit:?}");
    assert_eq!(audit[0].requester, LICENSING);
    assert_eq!(audit[1].requester, LICENSING);
    assert_eq!(audit[1].purpose, "administrative-licensing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_changed_after_proving_is_refused_audited_and_releases_nothing() {
    let c = start().await;
    // The enforcement bureau may read every court field; a rogue coordinator holding
    // the licensing office's proof tries to make it the bureau's question, or to change
    // any part of the licensing office's own.
    // Another person's subject, sealed to the court by the same requester for another
    // lookup: what a rogue coordinator could have kept from earlier traffic.
    let mut elsewhere = c.licensing_lookup();
    elsewhere.sealed = support::proof::clear_subject(&rid("43010319750505234"), None);
    let (_, other_sealed) = c.court.proof_of(&elsewhere).await;
    type Change = Box<dyn Fn(&mut LookupRequest)>;
    let changes: Vec<(ProofField, Change)> = vec![
        (
            ProofField::Requester,
            Box::new(|l| {
                l.requester = "court.enforcement".into();
                l.purpose = "judgment-enforcement".into();
            }),
        ),
        (
            ProofField::Purpose,
            Box::new(|l| l.purpose = "public-recruitment".into()),
        ),
        (
            ProofField::Sealed,
            Box::new(move |l| l.sealed.clone_from(&other_sealed)),
        ),
        (ProofField::Basis, Box::new(|l| l.legal_basis = None)),
        (
            ProofField::Case,
            Box::new(|l| l.case_reference = Some("LIC-2026-0002".into())),
        ),
        (
            ProofField::Target,
            Box::new(|l| {
                l.target = LookupTarget::Datasets(vec![DatasetRequest {
                    dataset: "court.dishonest_debtors".into(),
                    fields: None,
                }])
            }),
        ),
        (
            ProofField::Target,
            Box::new(|l| l.target = LookupTarget::View("blacklist-check".into())),
        ),
    ];
    let before = c.frames_seen();
    for (field, change) in changes {
        let mut lookup = c.licensing_lookup();
        (lookup.proof, lookup.sealed) = c.court.proof_of(&lookup).await;
        let proof = lookup.proof.clone();
        change(&mut lookup);
        let answer = c.send(&NodeRequest::Lookup(lookup)).await;
        let code = refused_with(&answer);
        assert_eq!(code, ProofRefusal::Altered(field), "{answer:?}");
        assert_refusal_audited(&c, code, LICENSING, &proof);
    }
    let wire = c.wire_since(before);
    for withheld in [CASE_NO, DEBTOR_NAME, "2025-06-01"] {
        assert!(!wire.contains(withheld), "`{withheld}` crossed the wire");
    }
    // The honest lookup is still answered on the same session.
    let answer = c
        .court
        .request(
            &NodeRequest::Lookup(c.licensing_lookup()),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert!(released_case_no(&answer));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_proof_is_refused_and_audited() {
    let c = start().await;
    let proven = c.court.proven(c.licensing_lookup()).await;
    assert!(released_case_no(&c.send(&proven).await));
    let before = c.frames_seen();
    let again = c.send(&proven).await;
    assert_eq!(refused_with(&again), ProofRefusal::Replayed);
    let NodeRequest::Lookup(l) = &proven else {
        unreachable!()
    };
    assert_refusal_audited(&c, ProofRefusal::Replayed, LICENSING, &l.proof);
    assert!(!c.wire_since(before).contains(CASE_NO));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proof_or_a_grant_made_for_another_node_is_refused() {
    let c = start().await;
    // A proof made under the licensing office's session with the tax node, sent to the
    // court: the court has no such session.
    let lookup = c.licensing_lookup();
    let mut for_tax = lookup.clone();
    (for_tax.proof, for_tax.sealed) = c.tax.proof_of(&lookup).await;
    let answer = c.send(&NodeRequest::Lookup(for_tax)).await;
    assert_eq!(refused_with(&answer), ProofRefusal::UnknownSession);
    assert_refusal_audited(&c, ProofRefusal::UnknownSession, "-", "");
    // A session grant for the tax node, forwarded to the court, opens nothing.
    let key = c.court.key(LICENSING);
    let (grant, _) = SessionGrant::new(&key, "changsha", "tax", UnixTime::now()).unwrap();
    match c.court.send_grant(grant.clone()).await {
        NodeResponse::Refused { rationale } => {
            assert!(
                rationale.contains("another federation or node"),
                "{rationale}"
            );
            assert!(!rationale.contains(&grant[grant.len() - 20..]));
        }
        other => panic!("{other:?}"),
    }
    let last = c.audit().pop().unwrap();
    assert_eq!(
        (last.kind.as_str(), last.requester.as_str()),
        ("refusal", "-")
    );
    assert!(last.outcome.contains("session_refused"), "{}", last.outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_proof_an_unknown_or_an_expired_session_is_refused_with_its_typed_code() {
    let c = start().await;
    // A coordinator asking on the licensing office's behalf without its proof.
    let answer = c.send(&NodeRequest::Lookup(c.licensing_lookup())).await;
    assert_eq!(refused_with(&answer), ProofRefusal::Missing);
    assert_refusal_audited(&c, ProofRefusal::Missing, "-", "");
    // A session that ends in a second: once it has, its proofs name no live session.
    let key = c.court.key(LICENSING);
    let (grant, pending) =
        SessionGrant::with_lifetime(&key, "changsha", "court", UnixTime::now(), 1).unwrap();
    let NodeResponse::SessionOpened(accept) = c.court.send_grant(grant).await else {
        panic!("the short session was not opened")
    };
    let session = pending
        .complete(&accept, &c.court.trust(), UnixTime::now())
        .unwrap();
    while UnixTime::now().as_secs() < session.exp {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut lookup = c.licensing_lookup();
    lookup.proof = session.prove(
        &ProofClaims::of_lookup(&lookup),
        UnixTime::now(),
        &fresh_nonce().unwrap(),
    );
    let answer = c.send(&NodeRequest::Lookup(lookup.clone())).await;
    assert_eq!(refused_with(&answer), ProofRefusal::UnknownSession);
    // Not a JWS at all.
    lookup.proof = "not.a.proof".into();
    let answer = c.send(&NodeRequest::Lookup(lookup)).await;
    assert_eq!(refused_with(&answer), ProofRefusal::Malformed);
    assert_refusal_audited(&c, ProofRefusal::Malformed, "-", "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_requester_is_refused_its_session_ends_and_it_cannot_open_another() {
    let c = start().await;
    assert!(released_case_no(
        &c.court
            .request(
                &NodeRequest::Lookup(c.licensing_lookup()),
                Duration::from_secs(10)
            )
            .await
            .unwrap()
    ));
    CertificateAuthority::open(&c.fed.pki)
        .unwrap()
        .revoke(LICENSING)
        .unwrap();
    // The node picks the new CRL up on its next reload; until then the session still
    // counts. Each try is a fresh proof on the same session.
    let mut refused = None;
    for _ in 0..100 {
        let answer = c.send(&c.court.proven(c.licensing_lookup()).await).await;
        match answer {
            NodeResponse::Lookup(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            other => {
                refused = Some(other);
                break;
            }
        }
    }
    let refused = refused.expect("the node never refused the revoked requester");
    assert_eq!(refused_with(&refused), ProofRefusal::Revoked);
    assert_refusal_audited(&c, ProofRefusal::Revoked, LICENSING, "");
    // The session is over: the next proof on it names no live session.
    let answer = c.send(&c.court.proven(c.licensing_lookup()).await).await;
    assert_eq!(refused_with(&answer), ProofRefusal::UnknownSession);
    // And the revoked certificate cannot open a new one.
    match c.court.open(LICENSING).await {
        Err(NodeResponse::Refused { rationale }) => {
            assert!(rationale.contains("revoked"), "{rationale}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_for_nothing_the_court_holds_is_refused_before_its_subject_is_opened() {
    let c = start().await;
    // A proven lookup of tax's arrears alone, delivered to the court (a coordinator
    // sending every node every lookup): the court holds none of it.
    let mut lookup = c.licensing_lookup();
    lookup.target = LookupTarget::Datasets(vec![DatasetRequest {
        dataset: "tax.arrears".into(),
        fields: None,
    }]);
    let before = c.frames_seen();
    let answer = c.send(&c.court.proven(lookup).await).await;
    match &answer {
        NodeResponse::Refused { rationale } => assert!(
            rationale.contains("holds none of what the lookup asks"),
            "{rationale}"
        ),
        other => panic!("the court answered a lookup of tax's records: {other:?}"),
    }
    // Refused before the proof was checked and the sealed subject opened: the entry names
    // the coordinator that sent it and no one's pseudonym.
    let last = c.audit().pop().unwrap();
    assert_eq!(last.kind, fedq_audit::EntryKind::Refusal);
    assert_eq!(last.subject, "-");
    assert_eq!(last.requester, "coordinator:coordinator");
    assert!(!c.wire_since(before).contains(&c.debtor));
}
