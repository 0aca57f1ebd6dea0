//! Signed policy bundles against the known failure modes of signed-bundle systems, with a
//! real CA and real officer certificates from `fedq certs`, and the reference policy.

#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};

use fedq_bundle::state::{Installed, PolicySlot, SlotError};
use fedq_bundle::{catalogue_digests, Bundle, Refusal, RosterEntry, Signature};
use fedq_certs::signing::OfficerKey;
use fedq_certs::tls::TrustFiles;
use fedq_certs::{CertificateAuthority, IssueOptions, Role};
use rcgen::ExtendedKeyUsagePurpose;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};

struct Setup {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    pki: PathBuf,
    ca: CertificateAuthority,
    /// The set-up roster the operator pinned: alice, bob and carol's keys at set-up.
    pinned: Vec<String>,
}

fn reference() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../reference/changsha")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// A federation `changsha` with officers alice, bob and carol, and the reference policy
/// and catalogues as the set-up policy.
fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let pki = root.join("pki");
    let ca = CertificateAuthority::init(&pki, "changsha", false).unwrap();
    for officer in ["alice", "bob", "carol"] {
        ca.issue(Role::Officer, officer, &IssueOptions::default())
            .unwrap();
    }
    ca.issue(
        Role::Requester,
        "market-regulation.licensing",
        &IssueOptions::default(),
    )
    .unwrap();
    std::fs::copy(reference().join("policy.toml"), root.join("policy.toml")).unwrap();
    copy_dir(&reference().join("catalogue"), &root.join("catalogue"));
    let mut s = Setup {
        _tmp: tmp,
        root,
        pki,
        ca,
        pinned: Vec::new(),
    };
    s.pinned = s.keys(&["alice", "bob", "carol"]);
    s
}

impl Setup {
    fn officer(&self, name: &str) -> OfficerKey {
        OfficerKey::load(
            &self.pki.join(format!("{name}.crt")),
            &self.pki.join(format!("{name}.key")),
        )
        .unwrap()
    }

    fn slot(&self, state: &str) -> PolicySlot {
        self.open(state, None).unwrap()
    }

    /// The slot with alice, bob and carol pinned as the set-up roster.
    fn open(&self, state: &str, floor: Option<u64>) -> Result<PolicySlot, SlotError> {
        self.open_pinned(state, floor, &self.pinned)
    }

    fn open_pinned(
        &self,
        state: &str,
        floor: Option<u64>,
        roster: &[String],
    ) -> Result<PolicySlot, SlotError> {
        PolicySlot::open(
            &self.root.join("policy.toml"),
            2,
            roster,
            self.root.join(state),
            TrustFiles::in_dir(&self.pki),
            floor,
        )
    }

    /// The key fingerprints of these officers' current certificates.
    fn keys(&self, names: &[&str]) -> Vec<String> {
        names
            .iter()
            .map(|n| {
                RosterEntry::from_certificate_file(&self.pki.join(format!("{n}.crt")))
                    .unwrap()
                    .key_sha256
            })
            .collect()
    }

    /// What only the CA key holder can do: a second officer certificate, `name`, for
    /// `key_of`'s existing key (as a CA would issue on a certificate request).
    fn certificate_for_existing_key(&self, name: &str, key_of: &str) {
        let key_pem = std::fs::read_to_string(self.pki.join(format!("{key_of}.key"))).unwrap();
        let key = rcgen::KeyPair::from_pem(&key_pem).unwrap();
        let ca_key =
            rcgen::KeyPair::from_pem(&std::fs::read_to_string(self.pki.join("ca.key")).unwrap())
                .unwrap();
        let ca_pem = std::fs::read_to_string(self.pki.join("ca.crt")).unwrap();
        let issuer = rcgen::Issuer::from_ca_cert_pem(&ca_pem, &ca_key).unwrap();
        let identity = fedq_certs::Identity::new("changsha", Role::Officer, name).unwrap();
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.subject_alt_names = vec![rcgen::SanType::URI(identity.to_uri().try_into().unwrap())];
        params.is_ca = rcgen::IsCa::ExplicitNoCa;
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::DigitalSignature,
            rcgen::KeyUsagePurpose::ContentCommitment,
        ];
        params.extended_key_usages = fedq_certs::pki::role_extended_key_usages(Role::Officer);
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::minutes(5);
        params.not_after = now + time::Duration::days(30);
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x41, 7, 7, 7]));
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &issuer).unwrap();
        std::fs::write(self.pki.join(format!("{name}.crt")), cert.pem()).unwrap();
        let key_file = self.pki.join(format!("{name}.key"));
        fedq_certs::fsutil::write_atomic(&key_file, key_pem.as_bytes(), 0o600).unwrap();
    }

    /// A signature made with `name`'s key and certificate, whatever its role or key usage
    /// (the signing tool would refuse a non-officer key).
    fn raw_signature(&self, name: &str, bundle: &Bundle) -> Signature {
        use rustls_pki_types::pem::PemObject;
        let key_pem = std::fs::read(self.pki.join(format!("{name}.key"))).unwrap();
        let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(&key_pem).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_ASN1_SIGNING,
            key.secret_der(),
            &SystemRandom::new(),
        )
        .unwrap();
        let sig = pair
            .sign(&SystemRandom::new(), &bundle.signing_message())
            .unwrap();
        let certificate = std::fs::read_to_string(self.pki.join(format!("{name}.crt"))).unwrap();
        let der = rustls_pki_types::CertificateDer::from_pem_slice(certificate.as_bytes()).unwrap();
        Signature {
            officer: fedq_certs::Identity::from_certificate_der(&der)
                .unwrap()
                .to_uri(),
            certificate,
            signature: hex::encode(sig.as_ref()),
        }
    }

    /// The reference policy with its version string changed, as a bundle.
    fn bundle(&self, version: u64, policy_version: &str, threshold: u32) -> Bundle {
        let text = std::fs::read_to_string(self.root.join("policy.toml"))
            .unwrap()
            .replace(
                "version = \"2026.11-1\"",
                &format!("version = \"{policy_version}\""),
            );
        Bundle::create(
            "changsha",
            version,
            threshold,
            text,
            catalogue_digests(&self.root.join("catalogue")).unwrap(),
            Vec::new(),
        )
        .unwrap()
    }

    fn signed(&self, version: u64, by: &[&str]) -> Bundle {
        let mut b = self.bundle(version, &format!("2026.12-{version}"), 2);
        for o in by {
            b.sign(&self.officer(o)).unwrap();
        }
        b
    }
}

fn refusal(result: Result<Installed, Refusal>) -> String {
    match result {
        Ok(i) => panic!("bundle was accepted: {i:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn two_distinct_officers_put_a_bundle_in_force_and_it_survives_a_restart() {
    let s = setup();
    let slot = s.slot("state");
    assert_eq!(slot.current().label(), "0/2026.11-1");
    let b = s.signed(1, &["alice", "bob"]);
    let installed = slot.install(&b.to_toml().unwrap()).unwrap();
    let now = slot.current();
    assert_eq!(
        installed,
        Installed::Applied {
            label: "1/2026.12-1".into(),
            version: 1,
            content_sha256: b.content_sha256.clone(),
            approved_by: now.approved_by.clone(),
        }
    );
    assert_eq!(now.version, 1);
    let names: Vec<&str> = now
        .approved_by
        .iter()
        .map(|a| a.split(' ').next().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    // Publishing the same bundle again changes nothing and is not an error.
    assert!(matches!(
        slot.install(&b.to_toml().unwrap()).unwrap(),
        Installed::AlreadyInForce { .. }
    ));
    // A restart comes back to version 1, not to the set-up policy.
    drop(slot);
    let again = s.slot("state");
    assert_eq!(again.current().label(), "1/2026.12-1");
}

#[test]
fn a_query_keeps_the_version_it_started_with_while_a_new_one_is_installed() {
    let s = setup();
    let slot = s.slot("state");
    let in_flight = slot.current();
    slot.install(&s.signed(1, &["alice", "bob"]).to_toml().unwrap())
        .unwrap();
    assert_eq!(in_flight.label(), "0/2026.11-1");
    assert_eq!(in_flight.engine.policy().version, "2026.11-1");
    assert_eq!(slot.current().label(), "1/2026.12-1");
}

#[test]
fn signatures_stripped_are_refused_and_the_previous_version_stays() {
    let s = setup();
    let slot = s.slot("state");
    let mut b = s.signed(1, &["alice", "bob"]);
    b.signature.clear();
    let why = refusal(slot.install(&b.to_toml().unwrap()));
    assert!(
        why.contains("0 distinct officer(s) signed") && why.contains("2 are required"),
        "{why}"
    );
    let mut one = s.signed(1, &["alice", "bob"]);
    one.signature.pop();
    let why = refusal(slot.install(&one.to_toml().unwrap()));
    assert!(why.contains("1 distinct officer(s)"), "{why}");
    assert_eq!(slot.current().version, 0);
    assert_eq!(slot.status().last_refusal.as_deref(), Some(why.as_str()));
    assert!(
        !s.root.join("state").exists(),
        "a refused bundle was persisted"
    );
}

#[test]
fn a_signature_by_a_key_not_in_the_federation_is_refused() {
    let s = setup();
    let other_dir = s.root.join("other-pki");
    let other = CertificateAuthority::init(&other_dir, "changsha", false).unwrap();
    other
        .issue(Role::Officer, "mallory", &IssueOptions::default())
        .unwrap();
    let mallory = OfficerKey::load(
        &other_dir.join("mallory.crt"),
        &other_dir.join("mallory.key"),
    )
    .unwrap();
    let mut b = s.signed(1, &["alice"]);
    b.sign(&mallory).unwrap();
    let why = refusal(s.slot("state").install(&b.to_toml().unwrap()));
    assert!(
        why.contains("signature 2") && why.contains("not valid for signing in this federation"),
        "{why}"
    );
}

#[test]
fn a_non_officer_certificate_cannot_approve() {
    let s = setup();
    // A requester's key cannot even be loaded to sign …
    let err = OfficerKey::load(
        &s.pki.join("market-regulation.licensing.crt"),
        &s.pki.join("market-regulation.licensing.key"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("cannot sign policies"), "{err}");
    // … and a signature made with it, pasted into a bundle, does not count.
    let mut b = s.signed(1, &["alice", "bob"]);
    b.signature[1].certificate =
        std::fs::read_to_string(s.pki.join("market-regulation.licensing.crt")).unwrap();
    let why = refusal(s.slot("state").install(&b.to_toml().unwrap()));
    assert!(why.contains("signature 2"), "{why}");
}

#[test]
fn the_same_officer_signing_twice_counts_once() {
    let s = setup();
    let mut b = s.signed(1, &["alice"]);
    // The tool refuses a second signature by the same officer …
    let err = b.sign(&s.officer("alice")).unwrap_err();
    assert!(err.to_string().contains("already signed"), "{err}");
    // … and a duplicated signature entry (same officer, valid signature) counts once.
    b.signature.push(b.signature[0].clone());
    let why = refusal(s.slot("state").install(&b.to_toml().unwrap()));
    assert!(
        why.contains("1 distinct officer(s) signed (alice signed more than once"),
        "{why}"
    );
    // A second certificate for the same officer name is still the same officer.
    let old_alice = s.officer("alice");
    s.ca.issue(
        Role::Officer,
        "alice",
        &IssueOptions {
            force: true,
            ..IssueOptions::default()
        },
    )
    .unwrap();
    let renewed = s.officer("alice");
    let mut twice = s.bundle(1, "2026.12-1", 2);
    twice.sign(&old_alice).unwrap();
    let mut copy = s.bundle(1, "2026.12-1", 2);
    copy.sign(&renewed).unwrap();
    assert_ne!(
        copy.signature[0].certificate,
        twice.signature[0].certificate
    );
    twice.signature.push(copy.signature.remove(0));
    // Both of alice's keys on the roster: still one officer.
    let mut roster = s.pinned.clone();
    roster.extend(s.keys(&["alice"]));
    let slot = s.open_pinned("state", None, &roster).unwrap();
    let why = refusal(slot.install(&twice.to_toml().unwrap()));
    assert!(why.contains("alice signed more than once"), "{why}");
}

#[test]
fn a_revoked_officer_does_not_count() {
    let s = setup();
    let slot = s.slot("state");
    let b = s.signed(1, &["alice", "bob"]);
    s.ca.revoke("bob").unwrap();
    let why = refusal(slot.install(&b.to_toml().unwrap()));
    assert!(
        why.contains("signature 2") && why.contains("has been revoked"),
        "{why}"
    );
    // With a third officer instead, it goes through.
    let ok = s.signed(1, &["alice", "carol"]);
    slot.install(&ok.to_toml().unwrap()).unwrap();
    assert_eq!(slot.current().version, 1);
}

#[test]
fn an_old_bundle_replayed_is_refused() {
    let s = setup();
    let slot = s.slot("state");
    let v1 = s.signed(1, &["alice", "bob"]);
    let v2 = s.signed(2, &["alice", "bob"]);
    slot.install(&v1.to_toml().unwrap()).unwrap();
    slot.install(&v2.to_toml().unwrap()).unwrap();
    let why = refusal(slot.install(&v1.to_toml().unwrap()));
    assert!(
        why.contains("version 1 is not higher than version 2"),
        "{why}"
    );
    // A different bundle under the version in force is refused too.
    let mut other = s.bundle(2, "2026.12-other", 2);
    other.sign(&s.officer("alice")).unwrap();
    other.sign(&s.officer("carol")).unwrap();
    let why = refusal(slot.install(&other.to_toml().unwrap()));
    assert!(why.contains("a different bundle with version 2"), "{why}");
    assert_eq!(slot.current().label(), "2/2026.12-2");
    // After a restart, too.
    drop(slot);
    let why = refusal(s.slot("state").install(&v1.to_toml().unwrap()));
    assert!(why.contains("not higher"), "{why}");
}

#[test]
fn content_edited_after_signing_is_refused() {
    let s = setup();
    let slot = s.slot("state");
    let b = s.signed(1, &["alice", "bob"]);
    // Edit the policy and leave the hash: caught by the hash.
    let mut edited = b.clone();
    edited.policy = edited.policy.replace("rate_limit", "# rate_limit");
    let why = refusal(slot.install(&edited.to_toml().unwrap()));
    assert!(why.contains("edited after it was created"), "{why}");
    // Edit and recompute the hash: the signatures no longer match.
    edited.content_sha256 = edited.computed_hash();
    let why = refusal(slot.install(&edited.to_toml().unwrap()));
    assert!(
        why.contains("signature 1") && why.contains("does not match"),
        "{why}"
    );
    // Raise the version (to get past a rollback check) the same way: same result.
    let mut bumped = b.clone();
    bumped.version = 9;
    bumped.content_sha256 = bumped.computed_hash();
    let why = refusal(slot.install(&bumped.to_toml().unwrap()));
    assert!(why.contains("does not match"), "{why}");
    assert_eq!(slot.current().version, 0);
}

#[test]
fn the_threshold_changes_only_by_a_bundle_that_meets_the_current_one() {
    let s = setup();
    let slot = s.slot("state");
    // Raise M to 3, approved by the current M = 2.
    let mut raise = s.bundle(1, "2026.12-1", 3);
    raise.sign(&s.officer("alice")).unwrap();
    raise.sign(&s.officer("bob")).unwrap();
    slot.install(&raise.to_toml().unwrap()).unwrap();
    assert_eq!(slot.status().threshold, 3);
    // Now two officers are no longer enough, even to lower M back.
    let mut lower = s.bundle(2, "2026.12-2", 1);
    lower.sign(&s.officer("alice")).unwrap();
    lower.sign(&s.officer("bob")).unwrap();
    let why = refusal(slot.install(&lower.to_toml().unwrap()));
    assert!(
        why.contains("2 distinct officer(s) signed, but 3 are required"),
        "{why}"
    );
    lower.sign(&s.officer("carol")).unwrap();
    slot.install(&lower.to_toml().unwrap()).unwrap();
    assert_eq!(slot.status().threshold, 1);
}

#[test]
fn catalogues_other_than_the_checked_ones_are_refused() {
    let s = setup();
    let slot = s.slot("state");
    let b = s.signed(1, &["alice", "bob"]);
    let court = s.root.join("catalogue/court.toml");
    let text = std::fs::read_to_string(&court).unwrap();
    std::fs::write(&court, format!("{text}\n# local edit\n")).unwrap();
    let why = refusal(slot.install(&b.to_toml().unwrap()));
    assert!(why.contains("`court` has changed"), "{why}");
}

#[test]
fn another_federation_and_garbage_are_refused_with_reasons() {
    let s = setup();
    let slot = s.slot("state");
    let mut b = s.bundle(1, "x", 2);
    b.federation = "shenzhen".into();
    b.content_sha256 = b.computed_hash();
    let why = refusal(slot.install(&b.to_toml().unwrap()));
    assert!(why.contains("federation `shenzhen`"), "{why}");
    let why = refusal(slot.install("this is not a bundle"));
    assert!(why.starts_with("not a policy bundle"), "{why}");
    let bad_threshold =
        Bundle::create("changsha", 1, 0, String::new(), Vec::new(), Vec::new()).unwrap_err();
    assert!(
        bad_threshold.to_string().contains("threshold 0"),
        "{bad_threshold}"
    );
}

#[test]
fn a_tampered_or_forged_state_stops_the_process_from_starting() {
    let s = setup();
    let slot = s.slot("state");
    slot.install(&s.signed(1, &["alice", "bob"]).to_toml().unwrap())
        .unwrap();
    drop(slot);
    let file = s.root.join("state/bundle-00000000000000000001.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("rate_limit", "# rate_limit")).unwrap();
    let err = s.open("state", None).unwrap_err();
    assert!(err.to_string().contains("edited after"), "{err}");
    std::fs::write(&file, &text).unwrap();
    assert_eq!(s.slot("state").current().version, 1);

    // One officer's key (say, stolen) and write access to the state directory are not
    // enough: the replayed chain needs M signatures at every step.
    let mut forged = s.bundle(9, "forged", 1);
    forged.sign(&s.officer("carol")).unwrap();
    std::fs::write(
        s.root.join("state/bundle-00000000000000000009.toml"),
        forged.to_toml().unwrap(),
    )
    .unwrap();
    let err = s.open("state", None).unwrap_err();
    assert!(
        err.to_string()
            .contains("1 distinct officer(s) signed, but 2 are required"),
        "{err}"
    );
}

#[test]
fn a_lost_state_cannot_roll_the_policy_back_past_what_the_audit_log_recorded() {
    let s = setup();
    let slot = s.slot("state");
    slot.install(&s.signed(1, &["alice", "bob"]).to_toml().unwrap())
        .unwrap();
    slot.install(&s.signed(2, &["alice", "bob"]).to_toml().unwrap())
        .unwrap();
    drop(slot);
    // The audit log says 2 was installed: with the chain intact, fine.
    assert_eq!(s.open("state", Some(2)).unwrap().current().version, 2);
    // The state directory lost (or restored from an old backup): the start is refused.
    std::fs::remove_file(s.root.join("state/bundle-00000000000000000002.toml")).unwrap();
    let err = s.open("state", Some(2)).unwrap_err();
    assert!(
        err.to_string()
            .contains("records policy bundle 2 in force, but the policy state"),
        "{err}"
    );
    std::fs::remove_dir_all(s.root.join("state")).unwrap();
    assert!(matches!(
        s.open("state", Some(2)),
        Err(SlotError::BehindAudit { held: 0, .. })
    ));
}

#[test]
fn only_officer_certificates_with_the_code_signing_usage_count() {
    let s = setup();
    // A requester certificate that does carry code signing: not an officer.
    s.ca.issue(
        Role::Requester,
        "signing.requester",
        &IssueOptions {
            extended_key_usages: Some(vec![ExtendedKeyUsagePurpose::CodeSigning]),
            ..IssueOptions::default()
        },
    )
    .unwrap();
    let mut b = s.signed(1, &["alice"]);
    b.signature.push(s.raw_signature("signing.requester", &b));
    let why = refusal(s.slot("state").install(&b.to_toml().unwrap()));
    assert!(
        why.contains("is a requester certificate, not an officer's"),
        "{why}"
    );
    // An officer certificate without code signing (client auth only): not for signing.
    s.ca.issue(
        Role::Officer,
        "dave",
        &IssueOptions {
            extended_key_usages: Some(vec![ExtendedKeyUsagePurpose::ClientAuth]),
            ..IssueOptions::default()
        },
    )
    .unwrap();
    let mut b = s.signed(1, &["alice"]);
    b.signature.push(s.raw_signature("dave", &b));
    let why = refusal(s.slot("state").install(&b.to_toml().unwrap()));
    assert!(
        why.contains("not valid for signing in this federation"),
        "{why}"
    );
    // The same officer properly issued counts.
    s.ca.issue(
        Role::Officer,
        "dave",
        &IssueOptions {
            force: true,
            ..IssueOptions::default()
        },
    )
    .unwrap();
    let mut b = s.signed(1, &["alice"]);
    b.signature.push(s.raw_signature("dave", &b));
    let mut roster = s.pinned.clone();
    roster.extend(s.keys(&["dave"]));
    s.open_pinned("state", None, &roster)
        .unwrap()
        .install(&b.to_toml().unwrap())
        .unwrap();
}

#[test]
fn expired_and_not_yet_valid_officers_do_not_count() {
    let s = setup();
    let now = time::OffsetDateTime::now_utc();
    for (name, from, to) in [
        (
            "expired",
            now - time::Duration::days(30),
            now - time::Duration::days(1),
        ),
        (
            "future",
            now + time::Duration::days(1),
            now + time::Duration::days(30),
        ),
    ] {
        s.ca.issue(
            Role::Officer,
            name,
            &IssueOptions {
                validity: Some((from, to)),
                ..IssueOptions::default()
            },
        )
        .unwrap();
        let mut b = s.signed(1, &["alice"]);
        b.signature.push(s.raw_signature(name, &b));
        let why = refusal(s.slot("state").install(&b.to_toml().unwrap()));
        assert!(
            why.contains("signature 2") && why.contains("not valid for signing"),
            "{name}: {why}"
        );
    }
}

#[test]
fn a_signature_entry_naming_another_officer_is_refused() {
    let s = setup();
    let mut b = s.signed(1, &["alice", "bob"]);
    b.signature[1].officer = "fedq://changsha/officer/carol".into();
    let why = refusal(s.slot("state").install(&b.to_toml().unwrap()));
    assert!(
        why.contains("claims to be by fedq://changsha/officer/carol")
            && why.contains("fedq://changsha/officer/bob's"),
        "{why}"
    );
}

#[test]
fn oversized_bundles_and_versions_outside_the_range_are_refused() {
    let s = setup();
    let huge = "#".repeat(fedq_bundle::MAX_BUNDLE_BYTES + 1);
    let why = refusal(s.slot("state").install(&huge));
    assert!(why.contains("over the 262144-byte limit"), "{why}");
    let policy = std::fs::read_to_string(s.root.join("policy.toml")).unwrap();
    for v in [0, fedq_bundle::MAX_VERSION + 1] {
        let err =
            Bundle::create("changsha", v, 2, policy.clone(), Vec::new(), Vec::new()).unwrap_err();
        assert!(err.to_string().contains("is not allowed"), "{err}");
    }
}

#[test]
fn once_a_roster_is_in_force_only_its_keys_approve_even_under_an_officer_name() {
    let s = setup();
    let slot = s.slot("state");
    // Bundle 1 pins the roster to alice, bob and carol's keys.
    let roster: Vec<RosterEntry> = ["alice", "bob", "carol"]
        .iter()
        .map(|o| RosterEntry::from_certificate_file(&s.pki.join(format!("{o}.crt"))).unwrap())
        .collect();
    let mut v1 = s.bundle(1, "2026.12-1", 2);
    v1.officer = roster.clone();
    v1.content_sha256 = v1.computed_hash();
    v1.sign(&s.officer("alice")).unwrap();
    v1.sign(&s.officer("bob")).unwrap();
    slot.install(&v1.to_toml().unwrap()).unwrap();

    // Whoever holds the CA key mints a new officer, and re-issues bob's name with a key of
    // their own: neither counts, so they cannot reach M alone.
    s.ca.issue(Role::Officer, "mallory", &IssueOptions::default())
        .unwrap();
    let mut v2 = s.bundle(2, "2026.12-2", 2);
    v2.officer = roster.clone();
    v2.content_sha256 = v2.computed_hash();
    v2.sign(&s.officer("alice")).unwrap();
    v2.sign(&s.officer("mallory")).unwrap();
    let why = refusal(slot.install(&v2.to_toml().unwrap()));
    assert!(
        why.contains("signature 2 (fedq://changsha/officer/mallory)")
            && why.contains("not on the officer roster in force"),
        "{why}"
    );
    s.ca.issue(
        Role::Officer,
        "bob",
        &IssueOptions {
            force: true,
            ..IssueOptions::default()
        },
    )
    .unwrap();
    v2.signature.pop();
    v2.sign(&s.officer("bob")).unwrap();
    let why = refusal(slot.install(&v2.to_toml().unwrap()));
    assert!(why.contains("not on the officer roster in force"), "{why}");

    // Two officers on the roster can approve, and can change the roster (here: add the
    // re-issued bob's key) — the same rule as for M.
    let mut v2 = s.bundle(2, "2026.12-2", 2);
    let mut next = roster.clone();
    next.push(RosterEntry::from_certificate_file(&s.pki.join("bob.crt")).unwrap());
    v2.officer = next;
    v2.content_sha256 = v2.computed_hash();
    v2.sign(&s.officer("alice")).unwrap();
    v2.sign(&s.officer("carol")).unwrap();
    slot.install(&v2.to_toml().unwrap()).unwrap();
    assert_eq!(slot.current().officers.len(), 4);
    // A restart replays the chain with each step's roster.
    drop(slot);
    assert_eq!(s.slot("state").current().version, 2);
    // A requester's certificate cannot be put on the roster.
    let err = RosterEntry::from_certificate_file(&s.pki.join("market-regulation.licensing.crt"))
        .unwrap_err();
    assert!(
        err.to_string().contains("the roster lists officers"),
        "{err}"
    );
}

#[test]
fn a_second_certificate_for_an_officers_existing_key_is_the_same_officer() {
    let s = setup();
    s.certificate_for_existing_key("alice-twin", "alice");
    // The twin certificate is a valid officer certificate of this CA, and its key is on
    // the roster (it is alice's key).
    let twin = s.officer("alice-twin");
    assert_eq!(s.keys(&["alice-twin"]), s.keys(&["alice"]));
    // The signing tool refuses a second signature with the same key …
    let mut b = s.signed(1, &["alice"]);
    let err = b.sign(&twin).unwrap_err();
    assert!(err.to_string().contains("already signed"), "{err}");
    // … and the signature pasted in anyway counts once: one officer cannot reach M = 2.
    let mut other = s.bundle(1, "2026.12-1", 2);
    other.sign(&twin).unwrap();
    b.signature.push(other.signature.remove(0));
    let slot = s.slot("state");
    let why = refusal(slot.install(&b.to_toml().unwrap()));
    assert!(
        why.contains("1 distinct officer(s) signed")
            && why.contains("alice (again under a certificate for `alice-twin` with the same key)"),
        "{why}"
    );
    assert_eq!(slot.current().version, 0);
    assert!(!s.root.join("state").exists(), "a refused bundle was kept");
    // With a second officer's key it goes through.
    b.sign(&s.officer("bob")).unwrap();
    slot.install(&b.to_toml().unwrap()).unwrap();
    assert_eq!(slot.current().version, 1);
}

#[test]
fn a_process_with_empty_state_refuses_officers_minted_outside_its_pinned_roster() {
    let s = setup();
    // Whoever holds the CA key mints two officers a minute before the bundle …
    for o in ["mallory", "trent"] {
        s.ca.issue(Role::Officer, o, &IssueOptions::default())
            .unwrap();
    }
    let mut b = s.bundle(1, "2026.12-1", 1);
    b.sign(&s.officer("mallory")).unwrap();
    b.sign(&s.officer("trent")).unwrap();
    // … and offers it to a process with no state (new, or one that lost its state and
    // audit log): its pinned set-up roster does not name them.
    let slot = s.slot("fresh-state");
    let why = refusal(slot.install(&b.to_toml().unwrap()));
    assert!(
        why.contains("signature 1 (fedq://changsha/officer/mallory)")
            && why.contains("not on the officer roster in force"),
        "{why}"
    );
    assert_eq!(slot.current().version, 0);
    // The same forged bundle written into the state directory does not start either.
    std::fs::create_dir_all(s.root.join("fresh-state")).unwrap();
    std::fs::write(
        s.root.join("fresh-state/bundle-00000000000000000001.toml"),
        b.to_toml().unwrap(),
    )
    .unwrap();
    let err = s.open("fresh-state", None).unwrap_err();
    assert!(
        err.to_string()
            .contains("not on the officer roster in force"),
        "{err}"
    );
    // Officers on the pinned roster are accepted by the same fresh process.
    std::fs::remove_dir_all(s.root.join("fresh-state")).unwrap();
    let slot = s.slot("fresh-state");
    slot.install(&s.signed(1, &["alice", "carol"]).to_toml().unwrap())
        .unwrap();
    assert_eq!(slot.current().version, 1);
}

#[test]
fn a_process_with_no_roster_pinned_accepts_no_approvals() {
    let s = setup();
    let slot = s.open_pinned("state", None, &[]).unwrap();
    let why = refusal(slot.install(&s.signed(1, &["alice", "bob"]).to_toml().unwrap()));
    assert!(
        why.contains("no officer roster is pinned") && why.contains("policy_officers"),
        "{why}"
    );
    assert_eq!(slot.current().version, 0);
}

#[test]
fn a_bundle_without_a_roster_keeps_the_roster_in_force() {
    let s = setup();
    let slot = s
        .open_pinned("state", None, &s.keys(&["alice", "bob"]))
        .unwrap();
    // Bundle 1 lists no roster: alice and bob stay the roster, carol does not join.
    slot.install(&s.signed(1, &["alice", "bob"]).to_toml().unwrap())
        .unwrap();
    assert_eq!(slot.current().officers, s.keys(&["alice", "bob"]));
    let why = refusal(slot.install(&s.signed(2, &["alice", "carol"]).to_toml().unwrap()));
    assert!(
        why.contains("signature 2 (fedq://changsha/officer/carol)")
            && why.contains("not on the officer roster in force"),
        "{why}"
    );
    drop(slot);
    let again = s
        .open_pinned("state", None, &s.keys(&["alice", "bob"]))
        .unwrap();
    assert_eq!(again.current().officers, s.keys(&["alice", "bob"]));
}

#[test]
fn a_stale_crl_stops_approvals_and_an_older_crl_does_not_undo_a_revocation() {
    let s = setup();
    let slot = s.slot("state");
    slot.install(&s.signed(1, &["alice", "carol"]).to_toml().unwrap())
        .unwrap();
    let crl = s.pki.join("crl.pem");
    let before_revocation = std::fs::read(&crl).unwrap();
    s.ca.revoke("bob").unwrap();
    let v2 = s.signed(2, &["alice", "bob"]);
    let why = refusal(slot.install(&v2.to_toml().unwrap()));
    assert!(why.contains("has been revoked"), "{why}");
    // The CRL from before bob's revocation, put back: refused, bob stays revoked.
    std::fs::write(&crl, &before_revocation).unwrap();
    let why = refusal(slot.install(&v2.to_toml().unwrap()));
    assert!(
        why.contains("signature 2") && why.contains("has been revoked"),
        "{why}"
    );
    assert_eq!(slot.current().version, 1);

    // A CRL past its nextUpdate: no approval counts until it is refreshed.
    let now = time::OffsetDateTime::now_utc();
    s.ca.refresh_crl_with_validity(Some((
        now + time::Duration::minutes(1) - time::Duration::hours(2),
        now - time::Duration::hours(1),
    )))
    .unwrap();
    let fresh = s.open("state-2", None).unwrap();
    let why = refusal(fresh.install(&s.signed(1, &["alice", "carol"]).to_toml().unwrap()));
    assert!(
        why.contains("cannot tell whether the officer's certificate is revoked")
            && why.contains("fedq certs crl"),
        "{why}"
    );
    s.ca.refresh_crl().unwrap();
    fresh
        .install(&s.signed(1, &["alice", "carol"]).to_toml().unwrap())
        .unwrap();
}

#[test]
fn the_state_directory_is_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let s = setup();
    let slot = s.slot("state/policy");
    slot.install(&s.signed(1, &["alice", "bob"]).to_toml().unwrap())
        .unwrap();
    for dir in ["state", "state/policy"] {
        let mode = std::fs::metadata(s.root.join(dir))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "{dir}");
    }
}

#[test]
fn a_bundle_that_leaves_fewer_officers_than_its_threshold_is_refused() {
    let s = setup();
    let slot = s.slot("state");
    let roster: Vec<RosterEntry> = ["alice", "bob"]
        .iter()
        .map(|o| RosterEntry::from_certificate_file(&s.pki.join(format!("{o}.crt"))).unwrap())
        .collect();
    // The bundle tool refuses to make one.
    let text = std::fs::read_to_string(s.root.join("policy.toml")).unwrap();
    let digests = catalogue_digests(&s.root.join("catalogue")).unwrap();
    let err = Bundle::create("changsha", 1, 3, text, digests, roster.clone()).unwrap_err();
    assert!(
        matches!(
            err,
            Refusal::RosterBelowThreshold {
                roster: 2,
                threshold: 3
            }
        ),
        "{err}"
    );
    // Written by hand and signed by enough officers, it is still refused, and the version
    // in force stays.
    let mut v1 = s.bundle(1, "2026.12-1", 3);
    v1.officer = roster.clone();
    v1.content_sha256 = v1.computed_hash();
    for o in ["alice", "bob", "carol"] {
        v1.sign(&s.officer(o)).unwrap();
    }
    let why = refusal(slot.install(&v1.to_toml().unwrap()));
    assert!(
        why.contains("lists 2 officer key(s) but its threshold is 3"),
        "{why}"
    );
    assert_eq!(slot.current().version, 0);
    // The same roster with M = 2 goes in.
    let mut v1 = s.bundle(1, "2026.12-1", 2);
    v1.officer = roster;
    v1.content_sha256 = v1.computed_hash();
    v1.sign(&s.officer("alice")).unwrap();
    v1.sign(&s.officer("bob")).unwrap();
    slot.install(&v1.to_toml().unwrap()).unwrap();
    // A bundle without a roster keeps that one: raising M to 3 over it is refused too.
    let mut v2 = s.bundle(2, "2026.12-2", 3);
    v2.sign(&s.officer("alice")).unwrap();
    v2.sign(&s.officer("bob")).unwrap();
    let why = refusal(slot.install(&v2.to_toml().unwrap()));
    assert!(
        why.contains("lists 2 officer key(s) but its threshold is 3"),
        "{why}"
    );
    assert_eq!(slot.current().version, 1);
}
