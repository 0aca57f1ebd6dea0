//! Consent tokens end to end, with real certificates from the federation's CA and real
//! `fedq` processes on 127.0.0.1: a node that checks every token itself (a coordinator
//! that forwards whatever it likes gets nothing for a token for another person, office,
//! purpose or target, an expired, forged, altered or used-up one), the use count surviving
//! a restart, the coordinator's early 403 naming the claim, a revoked consent authority,
//! the token id in every audit entry, and the `fedq consent` and `fedq query --consent`
//! command lines.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::path::Path;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use fedq_certs::consent::{self, ConsentGrant};
use fedq_certs::jws::CertificateKey;
use fedq_sandbox::{
    ask, consent_token, forged_consent_token, Ask, Federation, CONSENT_AUTHORITY,
    RECRUITMENT_BASIS, RECRUITMENT_CASE, RECRUITMENT_OFFICE,
};
use fedq_wire::message::{DatasetRequest, LookupRequest, LookupTarget};
use fedq_wire::transport::{Limits, NodeClient, TlsFiles};
use fedq_wire::{NodeRequest, NodeResponse};
use support::process::{fedq, output_within, FedqProcess, COMMAND_LIMIT};
use support::proof::ProvingChannel;

const PURPOSE: &str = "public-recruitment";
const VIEW: &str = "blacklist-check";

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The coordinator's QUIC channel to `node` — here driven by the test, a coordinator that
/// forwards whatever it is told to, past any pre-check.
fn rogue_channel(fed: &Federation, node: &str) -> (ProvingChannel, NodeClient) {
    let client = NodeClient::new(
        "127.0.0.1:0".parse().unwrap(),
        TlsFiles::in_dir(&fed.layout.pki(), "coordinator"),
        Limits::default(),
    )
    .unwrap();
    // The requester's own proof goes with every lookup (made with its certificate key, as
    // `fedq query` makes it): what is tested here is the consent token, not the proof.
    (
        ProvingChannel::new(client.channel(node, fed.nodes[node]), &fed.layout.pki()),
        client,
    )
}

fn lookup(
    fed: &Federation,
    subject: &str,
    consent: Option<String>,
    target: LookupTarget,
) -> NodeRequest {
    NodeRequest::Lookup(LookupRequest {
        query_id: "q-consent".into(),
        requester: RECRUITMENT_OFFICE.into(),
        purpose: PURPOSE.into(),
        legal_basis: Some(RECRUITMENT_BASIS.into()),
        case_reference: Some(RECRUITMENT_CASE.into()),
        proof: String::new(),
        sealed: support::proof::clear_subject(subject, consent.as_deref()),
        target,
        policy_version: "-".into(),
        date: fed.today,
    })
}

fn view() -> LookupTarget {
    LookupTarget::View(VIEW.into())
}

/// A token from the consent authority with these claims, issued at `at`, valid an hour.
fn token_with(
    fed: &Federation,
    subject: &str,
    requester: &str,
    purpose: &str,
    targets: &[&str],
    at: i64,
    max_uses: u32,
) -> (String, String) {
    let pki = fed.layout.pki();
    let key = CertificateKey::load(
        &fedq_certs::pki::cert_path(&pki, CONSENT_AUTHORITY),
        &fedq_certs::pki::key_path(&pki, CONSENT_AUTHORITY),
    )
    .unwrap();
    let (token, claims) = consent::issue(
        &key,
        &ConsentGrant {
            subject: subject.into(),
            requester: requester.into(),
            purpose: purpose.into(),
            targets: targets.iter().map(|t| (*t).to_owned()).collect(),
            valid_for_secs: 3600,
            max_uses,
        },
        at,
    )
    .unwrap();
    (token, claims.jti)
}

async fn send(channel: &ProvingChannel, request: &NodeRequest) -> NodeResponse {
    channel
        .request(request, Duration::from_secs(20))
        .await
        .unwrap()
}

/// The rationale of a refusal (fails the test on anything else).
fn refused(response: NodeResponse) -> String {
    match response {
        NodeResponse::Refused { rationale } => rationale,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// The court's listing was released in a node's answer.
fn released_listing(response: &NodeResponse) -> bool {
    use fedq_policy::views::Finding;
    use fedq_wire::message::{DatasetOutcome, LookupAnswer};
    match response {
        NodeResponse::Lookup(_) => match support::proof::opened(response) {
            LookupAnswer::Datasets(d) => d.iter().any(|d| {
                matches!(d, DatasetOutcome::Released(a)
                    if a.dataset == "court.dishonest_debtors" && !a.records.is_empty())
            }),
            LookupAnswer::View(p) => p.sources.iter().any(|s| {
                s.dataset == "court.dishonest_debtors"
                    && matches!(&s.finding, Finding::Listings(l) if !l.is_empty())
            }),
            LookupAnswer::Rights(_) => false,
        },
        _ => false,
    }
}

fn audit(fed: &Federation, log: &str) -> Vec<fedq_audit::AuditEntry> {
    fedq_audit::list(
        &fed.layout.root.join(format!("audit/{log}-audit.db")),
        &fedq_audit::ListFilter::default(),
    )
    .unwrap()
}

fn federation(tmp: &Path) -> Federation {
    fedq_testkit::federation(tmp, 300, 11)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_refuses_every_token_that_does_not_fit_the_lookup_and_audits_the_claim() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path());
    let _court = FedqProcess::node(&fed.layout.node_config("court"), None);
    let (court, _client) = rogue_channel(&fed, "court");
    let s = &fed.scenario;
    let candidate = s.blacklisted.resident_id.as_str();
    let other = s.clean.resident_id.as_str();
    let t = now();

    // Without a token the node's own engine refuses (the purpose needs consent).
    let why = refused(send(&court, &lookup(&fed, candidate, None, view())).await);
    assert!(why.contains("requires the subject's consent"), "{why}");
    // A token the authority signed for exactly this: answered, the listing released.
    let (good, good_jti) = token_with(
        &fed,
        candidate,
        RECRUITMENT_OFFICE,
        PURPOSE,
        &["view:blacklist-check"],
        t,
        5,
    );
    let answer = send(&court, &lookup(&fed, candidate, Some(good.clone()), view())).await;
    assert!(released_listing(&answer), "{answer:?}");

    // Every kind of token that does not fit: refused, naming what did not match.
    let (for_other, _) = token_with(
        &fed,
        other,
        RECRUITMENT_OFFICE,
        PURPOSE,
        &["view:blacklist-check"],
        t,
        5,
    );
    let (other_office, _) = token_with(
        &fed,
        candidate,
        "court.enforcement",
        PURPOSE,
        &["view:blacklist-check"],
        t,
        5,
    );
    let (other_purpose, _) = token_with(
        &fed,
        candidate,
        RECRUITMENT_OFFICE,
        "self-query",
        &["view:blacklist-check"],
        t,
        5,
    );
    let (other_view, _) = token_with(
        &fed,
        candidate,
        RECRUITMENT_OFFICE,
        PURPOSE,
        &["view:credit-report"],
        t,
        5,
    );
    let (one_dataset, _) = token_with(
        &fed,
        candidate,
        RECRUITMENT_OFFICE,
        PURPOSE,
        &["court.dishonest_debtors"],
        t,
        5,
    );
    let (expired, _) = token_with(
        &fed,
        candidate,
        RECRUITMENT_OFFICE,
        PURPOSE,
        &["view:blacklist-check"],
        t - 7200,
        5,
    );
    let by_requester = forged_consent_token(
        &fed,
        RECRUITMENT_OFFICE,
        candidate,
        RECRUITMENT_OFFICE,
        PURPOSE,
        &["view:blacklist-check"],
    )
    .unwrap();
    let by_officer = forged_consent_token(
        &fed,
        "officer-li",
        candidate,
        RECRUITMENT_OFFICE,
        PURPOSE,
        &["view:blacklist-check"],
    )
    .unwrap();
    // The genuine token with its `sub` swapped for another person's, signature kept.
    let altered = {
        let parts: Vec<&str> = good.split('.').collect();
        let mut claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        claims["sub"] = other.into();
        format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap()),
            parts[2]
        )
    };
    let datasets = |names: &[&str]| {
        LookupTarget::Datasets(
            names
                .iter()
                .map(|n| DatasetRequest {
                    dataset: (*n).into(),
                    fields: None,
                })
                .collect(),
        )
    };
    let cases: Vec<(&str, NodeRequest, &str, bool)> = vec![
        (
            "another person",
            lookup(&fed, candidate, Some(for_other), view()),
            "`sub`",
            true,
        ),
        (
            "another office",
            lookup(&fed, candidate, Some(other_office), view()),
            "authorization_details.requester",
            true,
        ),
        (
            "another purpose",
            lookup(&fed, candidate, Some(other_purpose), view()),
            "authorization_details.purpose",
            true,
        ),
        (
            "another view",
            lookup(&fed, candidate, Some(other_view), view()),
            "authorization_details.targets",
            true,
        ),
        (
            "a dataset not named",
            lookup(
                &fed,
                candidate,
                Some(one_dataset),
                datasets(&["court.dishonest_debtors", "court.enforcement_cases"]),
            ),
            "authorization_details.targets",
            true,
        ),
        (
            "expired",
            lookup(&fed, candidate, Some(expired), view()),
            "expired",
            false,
        ),
        (
            "signed by a requester key",
            lookup(&fed, candidate, Some(by_requester), view()),
            "does not verify",
            false,
        ),
        (
            "signed by an officer key",
            lookup(&fed, candidate, Some(by_officer), view()),
            "role `officer`, not by the consent authority",
            false,
        ),
        (
            "altered after signing",
            lookup(&fed, candidate, Some(altered), view()),
            "does not verify",
            false,
        ),
        (
            "not a token at all",
            lookup(&fed, candidate, Some("本人书面授权 #0001".into()), view()),
            "does not verify",
            false,
        ),
    ];
    let before = audit(&fed, "court").len();
    for (what, request, claim, keeps_id) in &cases {
        let why = refused(send(&court, request).await);
        assert!(why.contains(claim), "{what}: {why}");
        assert!(
            !why.contains(candidate) && !why.contains(other),
            "{what}: {why}"
        );
        let entries = audit(&fed, "court");
        let last = &entries.last().unwrap().record;
        assert_eq!(last.kind, fedq_audit::EntryKind::Refusal, "{what}");
        let outcome: serde_json::Value = serde_json::from_str(&last.outcome).unwrap();
        assert!(
            outcome["consent"].is_string(),
            "{what}: the claim is typed in the entry"
        );
        assert_eq!(
            last.consent_id.is_some(),
            *keeps_id,
            "{what}: the id of a token that verified, only"
        );
        for text in [last.outcome.as_str(), &last.target, &last.requester] {
            assert!(!text.contains(candidate) && !text.contains(other), "{what}");
            assert!(!text.contains("eyJ"), "{what}: no token in the entry");
        }
    }
    assert_eq!(audit(&fed, "court").len(), before + cases.len());
    // The answered lookup's entry carries the token's id; nothing was released since.
    let entries = audit(&fed, "court");
    let answered: Vec<_> = entries
        .iter()
        .filter(|e| e.record.kind == fedq_audit::EntryKind::Answer)
        .collect();
    assert_eq!(
        answered.last().unwrap().record.consent_id.as_deref(),
        Some(good_jti.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_used_up_at_max_uses_and_stays_used_up_after_the_node_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path());
    let config = fed.layout.node_config("court");
    let mut court_process = FedqProcess::node(&config, None);
    let (court, _client) = rogue_channel(&fed, "court");
    let candidate = fed.scenario.blacklisted.resident_id.clone();
    let once = consent_token(
        &fed,
        &candidate,
        RECRUITMENT_OFFICE,
        PURPOSE,
        &["view:blacklist-check"],
    )
    .unwrap();
    let ask_once = lookup(&fed, &candidate, Some(once), view());

    let first = send(&court, &ask_once).await;
    assert!(released_listing(&first), "{first:?}");
    let why = refused(send(&court, &ask_once).await);
    assert!(
        why.contains("used up") && why.contains("`max_uses` 1"),
        "{why}"
    );

    court_process.terminate();
    let _court_process = FedqProcess::node(&config, None);
    // The restarted node holds no session: the requester opens a new one, as a client does.
    court.forget(RECRUITMENT_OFFICE);
    // Still used up: the node counted the use in its audit log, not only in memory.
    let why = refused(send(&court, &ask_once).await);
    assert!(why.contains("used up"), "{why}");
    // A fresh token is answered after the restart (the node itself is fine).
    let fresh = consent_token(
        &fed,
        &candidate,
        RECRUITMENT_OFFICE,
        PURPOSE,
        &["view:blacklist-check"],
    )
    .unwrap();
    let answer = send(&court, &lookup(&fed, &candidate, Some(fresh), view())).await;
    assert!(released_listing(&answer), "{answer:?}");
    let refusals = audit(&fed, "court")
        .into_iter()
        .filter(|e| e.record.outcome.contains("\"consent\":\"max_uses\""))
        .count();
    assert_eq!(refusals, 2);
}

fn output(args: &[&str]) -> std::process::Output {
    output_within(fedq().args(args), COMMAND_LIMIT)
}

async fn run(args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        output(&refs)
    })
    .await
    .unwrap()
}

fn recruitment(subject: &str, consent: String) -> Ask {
    Ask {
        requester: RECRUITMENT_OFFICE.into(),
        subject: subject.into(),
        purpose: PURPOSE.into(),
        basis: Some(RECRUITMENT_BASIS.into()),
        consent: Some(consent),
        case_reference: Some(RECRUITMENT_CASE.into()),
        view: Some(VIEW.into()),
        datasets: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_coordinator_the_token_is_sealed_its_id_audited_at_every_node_and_a_revoked_authority_refused(
) {
    let tmp = tempfile::tempdir().unwrap();
    let fed = federation(tmp.path());
    let _nodes = support::process::start_nodes(&fed, None);
    let _coordinator = FedqProcess::coordinator(&fed.layout.coordinator_config(), None);
    let pki = fed.layout.pki().display().to_string();
    let candidate = fed.scenario.blacklisted.resident_id.clone();
    let other = fed.scenario.clean.resident_id.clone();

    // `fedq consent issue` writes the token owner-only; `fedq query --consent @FILE`.
    let file = tmp.path().join("consent.jwt");
    let o = run(vec![
        "consent".into(),
        "issue".into(),
        "--dir".into(),
        pki.clone(),
        "--authority".into(),
        CONSENT_AUTHORITY.into(),
        "--subject".into(),
        candidate.clone(),
        "--requester".into(),
        RECRUITMENT_OFFICE.into(),
        "--purpose".into(),
        PURPOSE.into(),
        "--target".into(),
        "view:blacklist-check".into(),
        "--valid-for".into(),
        "1h".into(),
        "--uses".into(),
        "1".into(),
        "--out".into(),
        file.display().to_string(),
    ])
    .await;
    assert!(o.status.success(), "{o:?}");
    let said = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(!said.contains(&candidate), "{said}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let token = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    let jti = consent::inspect(&token).unwrap().jti;

    let o = run(vec![
        "consent".into(),
        "show".into(),
        format!("@{}", file.display()),
        "--dir".into(),
        pki.clone(),
    ])
    .await;
    let shown = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{o:?}");
    assert!(
        shown.contains("verified") && shown.contains(&jti) && !shown.contains(&candidate),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("{}********{}", &candidate[..6], &candidate[14..])),
        "{shown}"
    );

    let o = run(vec![
        "query".into(),
        "--coordinator".into(),
        format!("https://{}", fed.coordinator),
        "--cert".into(),
        format!("{pki}/{RECRUITMENT_OFFICE}.crt"),
        "--key".into(),
        format!("{pki}/{RECRUITMENT_OFFICE}.key"),
        "--ca".into(),
        format!("{pki}/ca.crt"),
        "--subject".into(),
        candidate.clone(),
        "--purpose".into(),
        PURPOSE.into(),
        "--basis".into(),
        RECRUITMENT_BASIS.into(),
        "--case".into(),
        RECRUITMENT_CASE.into(),
        "--consent".into(),
        format!("@{}", file.display()),
        "--view".into(),
        VIEW.into(),
        "--json".into(),
    ])
    .await;
    assert!(o.status.success(), "{o:?}");
    let answer: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        answer["view_result"]["listings"]
            .as_array()
            .is_some_and(|l| !l.is_empty()),
        "{answer}"
    );
    // The coordinator never saw the token (sealed with the subject to each department): its
    // entry names neither; every asked node's entry carries the token's id.
    let query = audit(&fed, "coordinator");
    let entry = query
        .iter()
        .rev()
        .find(|e| e.record.kind == fedq_audit::EntryKind::Query)
        .unwrap();
    assert_eq!(entry.record.consent_id, None);
    assert_eq!(entry.record.subject, "-");
    let mut nodes_with_id = 0;
    for node in fed.nodes.keys() {
        if let Some(e) = audit(&fed, node)
            .iter()
            .rev()
            .find(|e| e.record.kind == fedq_audit::EntryKind::Answer)
        {
            assert_eq!(e.record.consent_id.as_deref(), Some(jti.as_str()), "{node}");
            nodes_with_id += 1;
        }
    }
    assert!(
        nodes_with_id >= 2,
        "the blacklist check asks several departments"
    );

    // The genuine token about someone else: every department asked opens it and refuses
    // it itself, naming the claim and neither person; nothing is released.
    let (status, body) = ask(&fed, &recruitment(&other, token.clone()))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let text = body.to_string();
    assert!(
        !text.contains(&other) && !text.contains(&candidate),
        "{text}"
    );
    let reports = body["nodes"].as_array().unwrap();
    assert!(reports.len() >= 2, "{body}");
    for report in reports {
        assert_eq!(report["status"], "denied", "{body}");
        assert!(
            report["reason"].as_str().unwrap().contains("`sub`"),
            "{body}"
        );
    }
    assert_eq!(
        body["view_result"]["listings"],
        serde_json::json!([]),
        "{body}"
    );
    // Each department asked audited its refusal with the token's id and the failed claim.
    for report in reports {
        let node = report["node"].as_str().unwrap();
        let last = audit(&fed, node).pop().unwrap().record;
        assert_eq!(last.kind, fedq_audit::EntryKind::Refusal, "{node}");
        assert_eq!(last.consent_id.as_deref(), Some(jti.as_str()), "{node}");
        let outcome: serde_json::Value = serde_json::from_str(&last.outcome).unwrap();
        assert_eq!(outcome["consent"], "sub", "{node}: {outcome}");
    }
    // Bad input on the command line: one line, the ID never echoed.
    let mut typo = candidate.clone().into_bytes();
    typo[17] = if typo[17] == b'1' { b'2' } else { b'1' };
    let typo = String::from_utf8(typo).unwrap();
    let o = run(vec![
        "consent".into(),
        "issue".into(),
        "--dir".into(),
        pki.clone(),
        "--authority".into(),
        CONSENT_AUTHORITY.into(),
        "--subject".into(),
        typo.clone(),
        "--requester".into(),
        RECRUITMENT_OFFICE.into(),
        "--purpose".into(),
        PURPOSE.into(),
        "--target".into(),
        "view:blacklist-check".into(),
    ])
    .await;
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(
        !o.status.success() && err.contains("--subject") && !err.contains(&typo),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // A requester certificate cannot issue tokens.
    let o = run(vec![
        "consent".into(),
        "issue".into(),
        "--dir".into(),
        pki.clone(),
        "--authority".into(),
        RECRUITMENT_OFFICE.into(),
        "--subject".into(),
        candidate.clone(),
        "--requester".into(),
        RECRUITMENT_OFFICE.into(),
        "--purpose".into(),
        PURPOSE.into(),
        "--target".into(),
        "view:blacklist-check".into(),
    ])
    .await;
    assert!(!o.status.success(), "{o:?}");

    // A second authority, issued on the command line, signs tokens that count too.
    let o = run(vec![
        "certs".into(),
        "issue".into(),
        "--dir".into(),
        pki.clone(),
        "--role".into(),
        "consent-authority".into(),
        "--name".into(),
        "citizen-app".into(),
    ])
    .await;
    assert!(o.status.success(), "{o:?}");
    let o = run(vec![
        "certs".into(),
        "list".into(),
        "--dir".into(),
        pki.clone(),
    ])
    .await;
    let listed = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("citizen-app") && l.contains("consent-authority")),
        "{listed}"
    );
    let o = run(vec![
        "consent".into(),
        "issue".into(),
        "--dir".into(),
        pki.clone(),
        "--authority".into(),
        "citizen-app".into(),
        "--subject".into(),
        candidate.clone(),
        "--requester".into(),
        RECRUITMENT_OFFICE.into(),
        "--purpose".into(),
        PURPOSE.into(),
        "--target".into(),
        "view:blacklist-check".into(),
        "--valid-for".into(),
        "30m".into(),
    ])
    .await;
    assert!(o.status.success(), "{o:?}");
    let app_token = String::from_utf8_lossy(&o.stdout).trim().to_owned();
    let (status, body) = ask(&fed, &recruitment(&candidate, app_token))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");

    // The consent authority's certificate is revoked: tokens it signs stop counting at
    // every node, once each has reloaded the CRL.
    let o = run(vec![
        "certs".into(),
        "revoke".into(),
        "--dir".into(),
        pki.clone(),
        "--name".into(),
        CONSENT_AUTHORITY.into(),
    ])
    .await;
    assert!(o.status.success(), "{o:?}");
    let give_up = std::time::Instant::now() + Duration::from_secs(120);
    let error = loop {
        let fresh = consent_token(
            &fed,
            &candidate,
            RECRUITMENT_OFFICE,
            PURPOSE,
            &["view:blacklist-check"],
        )
        .unwrap();
        let (status, body) = ask(&fed, &recruitment(&candidate, fresh)).await.unwrap();
        assert_eq!(status, 200, "{body}");
        let reports = body["nodes"].as_array().cloned().unwrap_or_default();
        if !reports.is_empty()
            && reports.iter().all(|r| {
                r["status"] == "denied"
                    && r["reason"].as_str().is_some_and(|w| w.contains("revoked"))
            })
        {
            break body.to_string();
        }
        assert!(
            std::time::Instant::now() < give_up,
            "the nodes never picked up the CRL"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(error.contains("revoked"), "{error}");
    let (court, _client) = rogue_channel(&fed, "court");
    let why = loop {
        let fresh = consent_token(
            &fed,
            &candidate,
            RECRUITMENT_OFFICE,
            PURPOSE,
            &["view:blacklist-check"],
        )
        .unwrap();
        match send(&court, &lookup(&fed, &candidate, Some(fresh), view())).await {
            NodeResponse::Refused { rationale } => break rationale,
            other => assert!(released_listing(&other), "{other:?}"),
        }
        assert!(
            std::time::Instant::now() < give_up,
            "the node never picked up the CRL"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(why.contains("revoked"), "{why}");
    let last = audit(&fed, "court").pop().unwrap().record;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&last.outcome).unwrap()["consent"],
        "authority"
    );
}
