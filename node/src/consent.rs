//! The node's own check of a lookup's consent token, and its count of the uses it answered
//! under each token.
//!
//! The coordinator pre-checks consent too, but a node never trusts that: before it reads
//! anything for a lookup that carries a token, it verifies the token against its own CA and
//! CRL ([`fedq_certs::FederationTrust::verify_consent`]), checks that it covers this lookup
//! (subject, requester, purpose, target) and that it is not used up here. Only then does
//! the policy engine hear "consent: yes".
//!
//! Uses are counted per token id (`jti`) in the node's audit log, in the same transaction
//! as the entry of the answer released under it ([`fedq_audit::AuditLog::append_consent_use`]),
//! and loaded from there at start, so a restart does not give a token its uses back.
//! Concurrent lookups under one token each reserve a use before reading; a reservation
//! that does not end in a released answer is given back.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use fedq_certs::consent::{Consent, ConsentError, ConsentTarget, CLOCK_ALLOWANCE_SECS};
use fedq_certs::FederationTrust;
use fedq_wire::message::{LookupRequest, LookupTarget};
use fedq_wire::proof::SealedSubject;

/// Most tokens whose uses are kept in memory before expired ones are dropped.
const PRUNE_ABOVE: usize = 65_536;

/// A lookup's consent token that did not count: why, and its id when the token's
/// signature verified (an unverified token's id could be anything, so it is not kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRefusal {
    /// The verified token's `jti`, if it got that far.
    pub jti: Option<String>,
    /// What did not hold (names the claim).
    pub error: ConsentError,
}

/// Verifies the lookup's consent token, if it carries one, at `now` (unix seconds), and
/// checks that it covers this lookup. `Ok(None)`: no token.
pub fn verify(
    trust: &FederationTrust,
    request: &LookupRequest,
    subject: &SealedSubject,
    now: i64,
) -> Result<Option<Consent>, ConsentRefusal> {
    let Some(token) = &subject.consent else {
        return Ok(None);
    };
    let consent = trust
        .verify_consent(token, now, true)
        .map_err(|error| ConsentRefusal { jti: None, error })?;
    let datasets: Vec<&str>;
    let target = match &request.target {
        LookupTarget::View(v) => ConsentTarget::View(v),
        LookupTarget::Datasets(ds) => {
            datasets = ds.iter().map(|d| d.dataset.as_str()).collect();
            ConsentTarget::Datasets(&datasets)
        }
        LookupTarget::Rights(r) => ConsentTarget::Rights(r.right.as_str()),
    };
    consent
        .covers(
            subject.sub.as_str(),
            &request.requester,
            &request.purpose,
            target,
        )
        .map_err(|error| ConsentRefusal {
            jti: Some(consent.jti().to_owned()),
            error,
        })?;
    Ok(Some(consent))
}

#[derive(Debug, Clone, Copy)]
struct Uses {
    answered: u32,
    reserved: u32,
    expires: i64,
}

/// Answers released under each consent token, and uses reserved by lookups in flight.
#[derive(Debug, Default)]
pub struct ConsentUses {
    by_token: Mutex<HashMap<String, Uses>>,
}

impl ConsentUses {
    /// Loads the uses the audit log at `path` records for tokens not yet expired at `now`.
    pub fn load(path: &Path, now: i64) -> Result<Self, fedq_audit::AuditError> {
        let loaded = fedq_audit::consent_uses(path, now - CLOCK_ALLOWANCE_SECS)?;
        Ok(Self {
            by_token: Mutex::new(
                loaded
                    .into_iter()
                    .map(|(jti, (answered, expires))| {
                        (
                            jti,
                            Uses {
                                answered,
                                reserved: 0,
                                expires,
                            },
                        )
                    })
                    .collect(),
            ),
        })
    }

    /// Reserves one use of `consent` at `now`: refused once the answers released under it
    /// here plus the uses in flight reach its `max_uses`.
    pub fn reserve(&self, consent: &Consent, now: i64) -> Result<Reservation<'_>, ConsentError> {
        let max_uses = consent.detail().max_uses;
        let mut map = self
            .by_token
            .lock()
            .map_err(|_| ConsentError::UsedUp { max_uses })?;
        if map.len() > PRUNE_ABOVE {
            map.retain(|_, u| u.expires > now - CLOCK_ALLOWANCE_SECS || u.reserved > 0);
        }
        let uses = map.entry(consent.jti().to_owned()).or_insert(Uses {
            answered: 0,
            reserved: 0,
            expires: consent.claims.exp,
        });
        if uses.answered.saturating_add(uses.reserved) >= max_uses {
            return Err(ConsentError::UsedUp { max_uses });
        }
        uses.reserved += 1;
        Ok(Reservation {
            uses: self,
            jti: consent.jti().to_owned(),
            done: false,
        })
    }

    /// Answers released here under the token `jti` so far.
    pub fn answered(&self, jti: &str) -> u32 {
        self.by_token
            .lock()
            .ok()
            .and_then(|m| m.get(jti).map(|u| u.answered))
            .unwrap_or(0)
    }
}

/// One use of a token held for a lookup in flight: [`Reservation::answered`] once its
/// answer's audit entry (which counts the use) is durable; dropped otherwise, which gives
/// the use back.
#[derive(Debug)]
pub struct Reservation<'a> {
    uses: &'a ConsentUses,
    jti: String,
    done: bool,
}

impl Reservation<'_> {
    /// The answer was released and its use recorded.
    pub fn answered(mut self) {
        self.settle(true);
    }

    fn settle(&mut self, answered: bool) {
        if self.done {
            return;
        }
        self.done = true;
        if let Ok(mut map) = self.uses.by_token.lock() {
            if let Some(u) = map.get_mut(&self.jti) {
                u.reserved = u.reserved.saturating_sub(1);
                if answered {
                    u.answered = u.answered.saturating_add(1);
                }
            }
        }
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.settle(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fedq_certs::consent::{issue, ConsentGrant};
    use fedq_certs::jws::CertificateKey;
    use fedq_certs::pki::{CertificateAuthority, IssueOptions};
    use fedq_certs::tls::TrustFiles;
    use fedq_certs::Role;
    use fedq_wire::message::DatasetRequest;
    use fedq_wire::ResidentId;

    const SUBJECT: &str = "430102198001011233";

    fn now() -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }

    fn federation() -> (tempfile::TempDir, FederationTrust, CertificateKey) {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::init(dir.path(), "changsha", false).unwrap();
        ca.issue(Role::ConsentAuthority, "window", &IssueOptions::default())
            .unwrap();
        let trust = FederationTrust::load(&TrustFiles::in_dir(dir.path())).unwrap();
        let key = CertificateKey::load(
            &dir.path().join("window.crt"),
            &dir.path().join("window.key"),
        )
        .unwrap();
        (dir, trust, key)
    }

    fn token(key: &CertificateKey, targets: &[&str], max_uses: u32) -> String {
        issue(
            key,
            &ConsentGrant {
                subject: SUBJECT.into(),
                requester: "service-window.self-query".into(),
                purpose: "self-query".into(),
                targets: targets.iter().map(|t| (*t).to_owned()).collect(),
                valid_for_secs: 3600,
                max_uses,
            },
            now(),
        )
        .unwrap()
        .0
    }

    /// A lookup and the subject the requester sealed to the node with it.
    fn lookup(consent: String, target: LookupTarget) -> (LookupRequest, SealedSubject) {
        let lookup = LookupRequest {
            query_id: "q".into(),
            requester: "service-window.self-query".into(),
            purpose: "self-query".into(),
            legal_basis: None,
            case_reference: None,
            proof: String::new(),
            sealed: String::new(),
            target,
            policy_version: "-".into(),
            date: time::OffsetDateTime::now_utc().date(),
        };
        let subject = SealedSubject {
            sub: ResidentId::parse(SUBJECT).unwrap(),
            consent: Some(consent),
            filing: None,
        };
        (lookup, subject)
    }

    fn check(
        trust: &FederationTrust,
        (lookup, subject): &(LookupRequest, SealedSubject),
        now: i64,
    ) -> Result<Option<Consent>, ConsentRefusal> {
        verify(trust, lookup, subject, now)
    }

    #[test]
    fn the_lookups_own_datasets_must_each_be_named() {
        let (_dir, trust, key) = federation();
        let t = token(&key, &["court.judgments", "view:credit-report"], 1);
        let ds = |names: &[&str]| {
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
        assert!(
            check(&trust, &lookup(t.clone(), ds(&["court.judgments"])), now())
                .unwrap()
                .is_some()
        );
        assert!(check(
            &trust,
            &lookup(t.clone(), LookupTarget::View("credit-report".into())),
            now()
        )
        .is_ok());
        let refused = check(
            &trust,
            &lookup(
                t.clone(),
                ds(&["court.judgments", "court.enforcement_cases"]),
            ),
            now(),
        )
        .unwrap_err();
        assert_eq!(refused.error.code(), "authorization_details.targets");
        assert!(refused.jti.is_some(), "a verified token's id is kept");
        let mut other = lookup(t, ds(&["court.judgments"]));
        other.0.purpose = "recruitment".into();
        assert_eq!(
            check(&trust, &other, now()).unwrap_err().error.code(),
            "authorization_details.purpose"
        );
        let forged = lookup("a.b.c".into(), ds(&["court.judgments"]));
        assert_eq!(check(&trust, &forged, now()).unwrap_err().jti, None);
    }

    #[test]
    fn uses_are_reserved_given_back_and_counted_up_to_max_uses() {
        let (_dir, trust, key) = federation();
        let t = token(&key, &["view:credit-report"], 2);
        let consent = check(
            &trust,
            &lookup(t, LookupTarget::View("credit-report".into())),
            now(),
        )
        .unwrap()
        .unwrap();
        let uses = ConsentUses::default();
        let a = uses.reserve(&consent, now()).unwrap();
        let b = uses.reserve(&consent, now()).unwrap();
        // Two in flight: a third is refused even before either is answered.
        assert_eq!(
            uses.reserve(&consent, now()).unwrap_err(),
            ConsentError::UsedUp { max_uses: 2 }
        );
        drop(b); // not answered (store down, say): the use is given back
        a.answered();
        assert_eq!(uses.answered(consent.jti()), 1);
        uses.reserve(&consent, now()).unwrap().answered();
        assert_eq!(uses.answered(consent.jti()), 2);
        assert!(uses.reserve(&consent, now()).is_err());
    }
}
