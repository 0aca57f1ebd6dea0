//! One lookup at a node as a plain state machine over data, with no sockets, clocks or
//! disks inside (the split quinn-proto makes from quinn):
//!
//! ```text
//! LookupRequest + Clock ──Desk::admit──▶ Finished (refused before any read)
//!                                   └──▶ Pending ──reads()──▶ [the shell reads them]
//!                                           └──answer(records)──▶ Finished
//! Finished ──into_parts──▶ (AuditRecord, consent use) ──[the shell appends it]──▶
//!          Release::after(appended) ──▶ NodeResponse
//! ```
//!
//! In order, before anything is read: the lookup's shape, the requester's proof (its
//! session with this node), the requester's rate limit (the policy's, counted again here),
//! the names against this node's own policy, the request as a whole under it (purpose,
//! legal basis, case reference, aggregate-only), the consent token (its signer, claims and
//! one use reserved), and the two clocks. Then the records the shell read are checked
//! against the catalogue, the policy decides and minimizes ([`crate::enforce::answer`]),
//! and an answer too large to carry is refused.
//!
//! "Audit, then release" is in the types: the response leaves a [`Finished`] only through
//! [`Release::after`], which is given the outcome of writing its audit entry. An answer
//! whose entry was not written is withheld; a refusal or failure (which releases nothing
//! of any record) is answered either way. The QUIC layer ([`crate::service`]) reads the
//! time, the store and the attached databases, writes the log, and carries bytes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use fedq_audit::{AuditError, AuditRecord, EntryKind, Outcome, Pseudonymizer};
use fedq_bundle::state::InForce;
use fedq_certs::consent::Consent;
use fedq_certs::FederationTrust;
use fedq_policy::ratelimit::RateLimiter;
use fedq_wire::message::{FailureCode, LookupRequest, LookupResponse, MAX_DATE_SKEW_DAYS};
use fedq_wire::proof::{NodeSession, ProofGate, ProofRefusal, Refused, SealedSubject, UnixTime};
use fedq_wire::NodeResponse;

use crate::consent::{ConsentRefusal, ConsentUses, Reservation};
use crate::evidence::Evidence;

pub use crate::source::ReadFailure;
pub use fedq_policy::Clock;

/// What a node decides lookups with: its policy version in force, its proof gate, rate
/// limiter and consent uses (all in memory), and its own names. Cheap to build per lookup.
pub struct Desk<'a> {
    /// The node's name (`court`), as refusals name it.
    pub node: &'a str,
    /// The department whose datasets it holds.
    pub department: &'a str,
    /// The policy version in force when the lookup started: it decides all of it.
    pub policy: &'a InForce,
    /// Subjects are recorded by their keyed pseudonym only.
    pub pseudonyms: &'a Pseudonymizer,
    /// Requesters' sessions with this node and the proofs already seen.
    pub gate: &'a ProofGate,
    /// Whether a certificate serial is revoked by the CRL in force.
    pub is_revoked: &'a (dyn Fn(&str) -> bool + Sync),
    /// The policy's per-requester limits, counted here too.
    pub limiter: &'a Mutex<RateLimiter>,
    /// Answers released under each consent token here.
    pub consent_uses: &'a ConsentUses,
    /// The largest answer frame the coordinator reads.
    pub max_answer_len: usize,
}

impl std::fmt::Debug for Desk<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Desk")
            .field("node", &self.node)
            .field("policy", &self.policy.label())
            .finish_non_exhaustive()
    }
}

/// What the shell must read for a lookup admitted: the subject's records of these
/// datasets, wherever each is held (the shell knows its sources: the store, attached
/// databases — [`crate::source::Sources`]; the core does not need to).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reads {
    /// Qualified names of the datasets the lookup touches, in the order it names them.
    pub datasets: Vec<String>,
    /// The person's right the lookup exercises, if it is a rights lookup: the shell also
    /// reads the node's register and rights file for it ([`RightsRead`]).
    pub right: Option<fedq_wire::rights::Right>,
}

/// What the shell reads for a rights lookup besides the records: the log's entries about
/// the person (with inclusion proofs against `checkpoint`) for the register, and the
/// person's objections and repair applications from the rights file.
#[derive(Debug, Default)]
pub struct RightsRead {
    /// The entries about the subject, oldest first, each with its inclusion proof.
    pub register: Vec<(fedq_audit::AuditEntry, Vec<fedq_audit::merkle::Hash>)>,
    /// The signed checkpoint the proofs are against.
    pub checkpoint: Option<String>,
    /// The person's objections here.
    pub objections: Vec<fedq_wire::rights::ObjectionState>,
    /// The person's repair applications here.
    pub repairs: Vec<fedq_wire::rights::RepairState>,
    /// What the rights file marks of the person's records (read for the review office,
    /// which sees the records as every other requester would: removed ones gone,
    /// corrections applied, disputed ones flagged).
    pub marks: crate::rights::Marks,
}

/// What a rights lookup files, for the shell to write to the rights file once the
/// lookup's entry is durable.
#[derive(Debug, Clone)]
pub struct ToFile {
    /// The new objection's or application's id.
    pub id: String,
    /// Objection or repair application.
    pub right: fedq_wire::rights::Right,
    /// `department.dataset`.
    pub dataset: String,
    /// The subject's pseudonym.
    pub subject: String,
    /// What the person filed.
    pub filing: fedq_wire::rights::Filing,
    /// When (RFC 3339).
    pub at: String,
}

/// What a node's audit entry records as the `outcome` of a lookup, typed; rendered as
/// JSON in one place ([`NodeOutcome::into_outcome`]), in the shapes reviewers' tools read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeOutcome {
    /// Refused, with the rationale the coordinator is given.
    Refused(String),
    /// Refused by the node's policy check of the request as a whole (a policy refusal code).
    RefusedByPolicy {
        /// The rationale.
        rationale: String,
        /// The refusal's code.
        code: &'static str,
    },
    /// The consent token did not count: the claim that failed.
    ConsentRefused {
        /// The rationale.
        rationale: String,
        /// The claim's code.
        claim: &'static str,
    },
    /// The requester's proof did not hold.
    ProofRefused {
        /// Why.
        reason: ProofRefusal,
        /// The coordinator that forwarded it.
        coordinator: String,
    },
    /// The node's and the coordinator's dates are too far apart.
    ClockSkew {
        /// The node's date.
        node_date: time::Date,
        /// The coordinator's date.
        coordinator_date: time::Date,
    },
    /// A part of the node could not be read.
    Unavailable(ReadFailure),
    /// Decided: per dataset, the fields released with their transforms (JSON from
    /// [`crate::enforce::answer`]), or its refusal.
    Decided(Outcome),
}

impl NodeOutcome {
    /// The entry's `outcome`.
    pub fn into_outcome(self) -> Outcome {
        let value = match self {
            NodeOutcome::Refused(rationale) => serde_json::json!({ "refused": rationale }),
            NodeOutcome::RefusedByPolicy { rationale, code } => {
                serde_json::json!({ "refused": rationale, "code": code })
            }
            NodeOutcome::ConsentRefused { rationale, claim } => {
                serde_json::json!({ "refused": rationale, "consent": claim })
            }
            NodeOutcome::ProofRefused {
                reason,
                coordinator,
            } => serde_json::json!({
                "refused": "requester proof",
                "proof": reason.code(),
                "coordinator": coordinator,
            }),
            NodeOutcome::ClockSkew {
                node_date,
                coordinator_date,
            } => serde_json::json!({
                "failed": "clock_skew",
                "node_date": node_date.to_string(),
                "coordinator_date": coordinator_date.to_string(),
            }),
            NodeOutcome::Unavailable(what) => serde_json::json!({ "unavailable": what.name() }),
            NodeOutcome::Decided(outcome) => return outcome,
        };
        Outcome::json(&value)
    }
}

/// What one lookup came to, as `fedq_node_lookups_total` counts it: decided in one place
/// ([`LookupOutcome::of`], then [`Release::outcome`] once the entry's write is known).
/// A label names a kind of outcome only, never anything of the lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LookupOutcome {
    /// A sealed answer released, every dataset read verified.
    Answered,
    /// A sealed answer released, but at least one dataset read did not verify (a record
    /// that does not fit the catalogue: fix the data at its source).
    Unverified,
    /// Refused by the node's policy (the request as a whole, or every dataset).
    Denied,
    /// Refused for its shape or names, or as asking nothing this node holds.
    Refused,
    /// The requester's proof did not hold.
    ProofRefused,
    /// The consent token did not count.
    ConsentRefused,
    /// Over the requester's rate limit.
    RateLimited,
    /// The node's and the coordinator's dates too far apart.
    ClockSkew,
    /// The store or an attached database could not be read (or the answer not sealed).
    Unavailable,
    /// Decided, but its audit entry could not be written: withheld.
    AuditFailed,
}

impl LookupOutcome {
    /// Every outcome, for registering each series at zero.
    pub const ALL: [LookupOutcome; 10] = [
        LookupOutcome::Answered,
        LookupOutcome::Unverified,
        LookupOutcome::Denied,
        LookupOutcome::Refused,
        LookupOutcome::ProofRefused,
        LookupOutcome::ConsentRefused,
        LookupOutcome::RateLimited,
        LookupOutcome::ClockSkew,
        LookupOutcome::Unavailable,
        LookupOutcome::AuditFailed,
    ];

    /// The `outcome` label.
    pub fn label(self) -> &'static str {
        match self {
            LookupOutcome::Answered => "answered",
            LookupOutcome::Unverified => "unverified",
            LookupOutcome::Denied => "denied",
            LookupOutcome::Refused => "refused",
            LookupOutcome::ProofRefused => "proof_refused",
            LookupOutcome::ConsentRefused => "consent_refused",
            LookupOutcome::RateLimited => "rate_limited",
            LookupOutcome::ClockSkew => "clock_skew",
            LookupOutcome::Unavailable => "unavailable",
            LookupOutcome::AuditFailed => "audit_failed",
        }
    }

    /// The outcome of a lookup decided as `outcome` with `response` (before its entry is
    /// written).
    pub fn of(outcome: &NodeOutcome, response: &NodeResponse) -> Self {
        match (outcome, response) {
            (NodeOutcome::Refused(_), NodeResponse::Failed { .. }) => LookupOutcome::Unavailable,
            (NodeOutcome::Refused(_), _) => LookupOutcome::Refused,
            (NodeOutcome::RefusedByPolicy { .. }, _) => LookupOutcome::Denied,
            (NodeOutcome::ConsentRefused { .. }, _) => LookupOutcome::ConsentRefused,
            (NodeOutcome::ProofRefused { .. }, _) => LookupOutcome::ProofRefused,
            (NodeOutcome::ClockSkew { .. }, _) => LookupOutcome::ClockSkew,
            (NodeOutcome::Unavailable(_), _) => LookupOutcome::Unavailable,
            (NodeOutcome::Decided(_), NodeResponse::Lookup(_)) => LookupOutcome::Answered,
            (NodeOutcome::Decided(_), _) => LookupOutcome::Denied,
        }
    }
}

/// A lookup admitted: what to read, and what was decided so far.
#[must_use = "a pending lookup is answered with the records read"]
pub struct Pending<'a> {
    request: LookupRequest,
    /// The person and consent token, opened from the sealed subject.
    subject: SealedSubject,
    policy: &'a InForce,
    clock: Clock,
    entry: AuditRecord,
    consent: Option<Consent>,
    reservation: Option<Reservation<'a>>,
    reads: Reads,
    /// The session the lookup was proven under and the proof's nonce: the answer is
    /// sealed under it, bound to that nonce.
    session: Arc<NodeSession>,
    nonce: String,
}

impl std::fmt::Debug for Pending<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("reads", &self.reads)
            .finish_non_exhaustive()
    }
}

/// A lookup decided: its audit entry, and its response held until the entry is written.
#[must_use = "a decided lookup is audited, then released"]
#[derive(Debug)]
pub struct Finished<'a> {
    entry: AuditRecord,
    consent_expires: Option<i64>,
    release: Release<'a>,
    to_file: Option<ToFile>,
}

/// A response held until its audit entry's write is reported ([`Release::after`]).
#[derive(Debug)]
pub struct Release<'a> {
    response: NodeResponse,
    /// What the lookup came to, if its entry is written.
    outcome: LookupOutcome,
    node: String,
    /// An answer (records released) is withheld unless its entry was written.
    releases_records: bool,
    reservation: Option<Reservation<'a>>,
}

/// What a lookup comes to at [`Desk::admit`].
#[derive(Debug)]
pub enum Admitted<'a> {
    /// Refused (or failed) before anything was read.
    Finished(Box<Finished<'a>>),
    /// Admitted: read [`Pending::reads`], then [`Pending::answer`].
    Read(Box<Pending<'a>>),
}

fn done(finished: Finished<'_>) -> Admitted<'_> {
    Admitted::Finished(Box::new(finished))
}

impl<'a> Desk<'a> {
    /// An entry naming nothing of the request; the subject's pseudonym once its sealed
    /// subject opened (`-` before: a lookup refused earlier names no one).
    fn entry(&self, clock: Clock, kind: EntryKind, subject: Option<&SealedSubject>) -> AuditRecord {
        AuditRecord {
            at: clock.now,
            kind,
            query_id: "-".into(),
            requester: "-".into(),
            purpose: "-".into(),
            legal_basis: None,
            case_reference: None,
            subject: subject.map_or_else(
                || "-".to_owned(),
                |s| self.pseudonyms.pseudonym(s.sub.as_str()),
            ),
            target: "-".into(),
            outcome: Outcome::default(),
            policy_version: self.policy.label(),
            consent_id: None,
            node_query_ids: Default::default(),
            answer_sha256: None,
        }
    }

    /// The entry of a lookup whose names are the policy's: everything the node acts on.
    fn named_entry(
        &self,
        clock: Clock,
        kind: EntryKind,
        request: &LookupRequest,
        subject: &SealedSubject,
    ) -> AuditRecord {
        AuditRecord {
            query_id: request.query_id.clone(),
            requester: request.requester.clone(),
            purpose: request.purpose.clone(),
            legal_basis: request.legal_basis.clone(),
            case_reference: self
                .policy
                .engine
                .policy()
                .recordable_case(&request.purpose, request.case_reference.as_deref())
                .map(str::to_owned),
            target: request.target.describe(),
            ..self.entry(clock, kind, Some(subject))
        }
    }

    fn refused(&self, entry: AuditRecord, outcome: NodeOutcome, rationale: String) -> Finished<'a> {
        self.finished(entry, outcome, NodeResponse::Refused { rationale })
    }

    fn finished(
        &self,
        mut entry: AuditRecord,
        outcome: NodeOutcome,
        response: NodeResponse,
    ) -> Finished<'a> {
        let counted = LookupOutcome::of(&outcome, &response);
        entry.outcome = outcome.into_outcome();
        Finished {
            entry,
            consent_expires: None,
            to_file: None,
            release: Release {
                response,
                outcome: counted,
                node: self.node.to_owned(),
                releases_records: false,
                reservation: None,
            },
        }
    }

    /// Decides a lookup forwarded by `coordinator` up to the read: refused, or admitted
    /// with what to read. `consent_trust` is the CA and CRL in force (`None`: unavailable,
    /// so a lookup carrying a consent token is refused).
    pub fn admit(
        &self,
        coordinator: &str,
        request: LookupRequest,
        clock: Clock,
        consent_trust: Option<&FederationTrust>,
    ) -> Admitted<'a> {
        // Its shape: its own texts are not copied into the entry (they were refused for
        // their size or shape); the coordinator's name and the target's size stand in.
        if let Err(why) = crate::enforce::check_lookup(&request) {
            tracing::warn!(coordinator, reason = %why, "lookup refused for its shape");
            let why = why.to_string();
            let entry = AuditRecord {
                requester: format!("coordinator:{coordinator}"),
                target: crate::enforce::describe_refused_target(&request),
                ..self.entry(clock, EntryKind::Refusal, None)
            };
            return done(self.refused(entry, NodeOutcome::Refused(why.clone()), why));
        }
        // A lookup that asks nothing this node holds is refused before the sealed subject
        // is opened: the node learns whom a query is about only for its own records.
        let touched =
            crate::enforce::datasets_touched(&self.policy.engine, self.department, &request);
        if touched.is_empty() && crate::enforce::target_is_known(&self.policy.engine, &request) {
            let why = format!(
                "node `{}` holds none of what the lookup asks (no source of the view, no dataset of this department); it was not opened",
                self.node
            );
            tracing::warn!(
                coordinator,
                "lookup refused: it asks nothing this node holds"
            );
            let entry = AuditRecord {
                requester: format!("coordinator:{coordinator}"),
                target: request.target.describe(),
                ..self.entry(clock, EntryKind::Refusal, None)
            };
            return done(self.refused(entry, NodeOutcome::Refused(why.clone()), why));
        }
        // Nothing is read, counted or decided for a lookup whose requester did not prove
        // it. Revocation is checked per proof against the CRL in force (a revoked
        // certificate's session ends there).
        let now = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            clock.now.unix_timestamp().max(0).unsigned_abs(),
        ));
        let (proven, subject, session) = match self.gate.check(&request, self.is_revoked, now) {
            Ok(opened) => (opened.proven, opened.subject, opened.session),
            Err(Refused {
                reason,
                proven_requester,
            }) => {
                tracing::warn!(
                    coordinator,
                    refusal = reason.code(),
                    "lookup refused: its requester proof does not hold"
                );
                let entry = AuditRecord {
                    requester: proven_requester.unwrap_or_else(|| "-".into()),
                    ..self.entry(clock, EntryKind::Refusal, None)
                };
                let outcome = NodeOutcome::ProofRefused {
                    reason,
                    coordinator: coordinator.to_owned(),
                };
                let response = NodeResponse::ProofRefused {
                    code: reason,
                    message: format!("node `{}`: {reason}", self.node),
                };
                return done(self.finished(entry, outcome, response));
            }
        };
        let limited = match self.limiter.lock() {
            Ok(mut limiter) => limiter
                .check(&request.requester, clock.now)
                .map_err(|e| e.to_string()),
            Err(_) => Err("the node's rate limiter is unavailable; retry later".to_owned()),
        };
        if let Err(why) = limited {
            tracing::warn!(
                coordinator,
                "lookup over the requester's rate limit refused"
            );
            let rationale = format!("node `{}`: {why}", self.node);
            // The names are recorded only when they are all the policy's (the screen below
            // has not run yet); else only the requester the session proves.
            let base = if crate::enforce::screen(&self.policy.engine, &request).is_ok() {
                self.named_entry(clock, EntryKind::Refusal, &request, &subject)
            } else {
                AuditRecord {
                    requester: proven.requester.clone(),
                    query_id: request.query_id.clone(),
                    ..self.entry(clock, EntryKind::Refusal, Some(&subject))
                }
            };
            let entry = AuditRecord {
                consent_id: consent_id(consent_trust, &subject, clock),
                ..base
            };
            let mut limited =
                self.refused(entry, NodeOutcome::Refused(rationale.clone()), rationale);
            limited.release.outcome = LookupOutcome::RateLimited;
            return done(limited);
        }
        let engine = &self.policy.engine;
        if let Err(why) = crate::enforce::screen(engine, &request) {
            let why = why.to_string();
            // Nothing of the request but its subject's pseudonym (and its requester, if
            // the policy declares it) is recorded: its names are not all the policy's, so
            // they could be anything.
            let declared = engine
                .policy()
                .requesters
                .iter()
                .any(|r| r.name == request.requester);
            let entry = AuditRecord {
                requester: if declared {
                    request.requester.clone()
                } else {
                    "-".into()
                },
                query_id: request.query_id.clone(),
                consent_id: consent_id(consent_trust, &subject, clock),
                ..self.entry(clock, EntryKind::Refusal, Some(&subject))
            };
            return done(self.refused(entry, NodeOutcome::Refused(why.clone()), why));
        }
        // The request as a whole, under this node's own policy, before anything is read:
        // an aggregate-only purpose, a legal basis the purpose does not accept, a missing
        // consent, or a case reference that is missing or not of the purpose's form is
        // refused here whatever the coordinator decided.
        let checked = match &request.target {
            fedq_wire::message::LookupTarget::Rights(r) => engine.check_rights(
                &request.requester,
                &request.purpose,
                request.legal_basis.as_deref(),
                subject.consent.is_some(),
                request.case_reference.as_deref(),
                r.right,
            ),
            _ => engine
                .check_request(
                    &request.requester,
                    &request.purpose,
                    request.legal_basis.as_deref(),
                    subject.consent.is_some(),
                    request.case_reference.as_deref(),
                )
                .map(|_| ()),
        };
        if let Err(refusal) = checked {
            tracing::warn!(
                coordinator,
                reason = refusal.code(),
                "lookup refused by the node's policy before any read"
            );
            let entry = self.named_entry(clock, EntryKind::Refusal, &request, &subject);
            let outcome = NodeOutcome::RefusedByPolicy {
                rationale: refusal.to_string(),
                code: refusal.code(),
            };
            let rationale = format!("node `{}`: {refusal}", self.node);
            return done(self.refused(entry, outcome, rationale));
        }
        // A consent token is the node's own check, whatever the coordinator said: verified
        // against its CA and CRL, matched to this lookup claim by claim, and one use of it
        // reserved here. Only a token that passes all of it counts as consent.
        let secs = clock.now.unix_timestamp();
        let verified = match consent_trust {
            Some(trust) => crate::consent::verify(trust, &request, &subject, secs),
            None if subject.consent.is_none() => Ok(None),
            None => Err(ConsentRefusal {
                jti: None,
                error: fedq_certs::consent::ConsentError::Token(
                    "the node's CA and CRL are unavailable".into(),
                ),
            }),
        };
        let (consent, reservation) = match verified {
            Ok(None) => (None, None),
            Ok(Some(consent)) => match self.consent_uses.reserve(&consent, secs) {
                Ok(reservation) => (Some(consent), Some(reservation)),
                Err(error) => {
                    let refusal = ConsentRefusal {
                        jti: Some(consent.jti().to_owned()),
                        error,
                    };
                    return done(self.refuse_consent(&request, &subject, refusal, clock));
                }
            },
            Err(refusal) => return done(self.refuse_consent(&request, &subject, refusal, clock)),
        };
        // A rights lookup files exactly what its right files: an objection or a repair
        // application carries its filing (sealed with the subject), nothing else does.
        if let Err(why) = check_filing(engine, &request, &subject) {
            let rationale = format!("node `{}`: {why}", self.node);
            let entry = AuditRecord {
                consent_id: consent.as_ref().map(|c| c.jti().to_owned()),
                ..self.named_entry(clock, EntryKind::Refusal, &request, &subject)
            };
            return done(self.refused(entry, NodeOutcome::Refused(rationale.clone()), rationale));
        }
        let nonce = proven.claims.nonce.clone();
        let entry = AuditRecord {
            // The requester the session proves (the lookup's, once the proof held).
            requester: proven.requester,
            consent_id: consent.as_ref().map(|c| c.jti().to_owned()),
            ..self.named_entry(clock, EntryKind::Answer, &request, &subject)
        };
        // The node decides with its own date, always; the coordinator's only tells it
        // whether one of the two clocks is wrong.
        let skew = (request.date - clock.today).whole_days();
        if skew.abs() > MAX_DATE_SKEW_DAYS {
            tracing::error!(node_date = %clock.today, coordinator_date = %request.date, "clock skew; answering failed");
            let outcome = NodeOutcome::ClockSkew {
                node_date: clock.today,
                coordinator_date: request.date,
            };
            let response = NodeResponse::Failed {
                code: FailureCode::ClockSkew,
                message: format!(
                    "node `{}`: clock skew: its date is {} but the coordinator's is {}, {} days apart (at most {MAX_DATE_SKEW_DAYS} allowed); fix the clock or the pinned `today` that is wrong",
                    self.node,
                    clock.today,
                    request.date,
                    skew.abs()
                ),
            };
            return done(self.finished(entry, outcome, response));
        }
        let right = match &request.target {
            fedq_wire::message::LookupTarget::Rights(r) => Some(r.right),
            _ => None,
        };
        Admitted::Read(Box::new(Pending {
            request,
            subject,
            policy: self.policy,
            clock,
            entry,
            consent,
            reservation,
            reads: Reads {
                datasets: touched,
                right,
            },
            session,
            nonce,
        }))
    }

    /// Refuses a lookup whose consent token does not count, with the claim that failed
    /// (never the token or its subject).
    fn refuse_consent(
        &self,
        request: &LookupRequest,
        subject: &SealedSubject,
        refusal: ConsentRefusal,
        clock: Clock,
    ) -> Finished<'a> {
        tracing::warn!(
            claim = refusal.error.code(),
            "lookup refused: its consent token does not count"
        );
        let rationale = format!("node `{}`: {}", self.node, refusal.error);
        let entry = AuditRecord {
            consent_id: refusal.jti,
            ..self.named_entry(clock, EntryKind::Refusal, request, subject)
        };
        let outcome = NodeOutcome::ConsentRefused {
            rationale: rationale.clone(),
            claim: refusal.error.code(),
        };
        self.refused(entry, outcome, rationale)
    }
}

/// Whether a lookup's sealed filing fits its target: present, bounded and of the right
/// kind for an objection or repair application (about a dataset that records repair),
/// absent otherwise. The error quotes nothing of the filing.
fn check_filing(
    engine: &fedq_policy::Engine,
    request: &LookupRequest,
    subject: &SealedSubject,
) -> Result<(), String> {
    use fedq_wire::rights::Right;
    let right = match &request.target {
        fedq_wire::message::LookupTarget::Rights(r) => r,
        _ if subject.filing.is_some() => {
            return Err("a records lookup carries no filing".into());
        }
        _ => return Ok(()),
    };
    match (right.right, &subject.filing) {
        (Right::Object | Right::ApplyRepair, Some(filing)) => {
            filing.check(right.right)?;
            let dataset = right
                .dataset
                .as_deref()
                .and_then(|d| engine.datasets().iter().find(|x| x.qualified == d))
                .ok_or("the dataset filed about is not in the catalogue")?;
            crate::rights::may_file(right.right, dataset)
        }
        (Right::Object | Right::ApplyRepair, None) => Err(format!(
            "`rights:{}` needs what is filed (the record, the reason and the evidence reference), sealed with the subject",
            right.right
        )),
        (_, Some(_)) => Err(format!("`rights:{}` files nothing; send it without a filing", right.right)),
        (_, None) => Ok(()),
    }
}

/// The id of a lookup's consent token for an entry written before the token was checked
/// against the lookup: only a token whose signature verifies is quoted.
fn consent_id(
    trust: Option<&FederationTrust>,
    subject: &SealedSubject,
    clock: Clock,
) -> Option<String> {
    let token = subject.consent.as_deref()?;
    trust?
        .verify_consent(token, clock.now.unix_timestamp(), false)
        .ok()
        .map(|c| c.claims.jti)
}

impl<'a> Pending<'a> {
    /// What to read.
    pub fn reads(&self) -> &Reads {
        &self.reads
    }

    /// The subject whose records to read.
    pub fn subject(&self) -> &str {
        self.subject.sub.as_str()
    }

    /// Decides the answer from the records read (`Ok`: by qualified dataset name, as
    /// read; a dataset missing has no record), each checked against the catalogue here.
    pub fn answer(
        self,
        desk: &Desk<'a>,
        read: Result<BTreeMap<String, Evidence>, ReadFailure>,
        marks: &crate::rights::Marks,
    ) -> Finished<'a> {
        let Pending {
            request,
            subject,
            policy,
            clock,
            entry,
            consent,
            reservation,
            reads: _,
            session,
            nonce,
        } = self;
        let by_dataset = match read {
            Ok(found) => found,
            Err(what) => {
                let outcome = NodeOutcome::Unavailable(what);
                let response = NodeResponse::Failed {
                    code: FailureCode::Unavailable,
                    message: format!("node `{}`: its {} is unavailable", desk.node, what.name()),
                };
                return desk.finished(entry, outcome, response);
            }
        };
        let subject = subject.sub.as_str();
        let checked: BTreeMap<String, Evidence> = by_dataset
            .into_iter()
            .map(|(name, evidence)| {
                let checked = match policy.engine.datasets().iter().find(|d| d.qualified == name) {
                    Some(dataset) => evidence.checked(dataset, subject, clock.today),
                    None => Evidence::Unverified(format!(
                        "dataset `{name}` is not in the policy's catalogue"
                    )),
                };
                if let Evidence::Unverified(why) = &checked {
                    tracing::warn!(dataset = %name, reason = %why, "answering the dataset as unverified");
                }
                (name, checked)
            })
            .collect();
        let any_unverified = checked
            .values()
            .any(|e| matches!(e, Evidence::Unverified(_)));
        // Objections resolved by removal or correction change what was read; open ones
        // set their records apart (the policy's `disputed_records` says what is shown).
        let (checked, disputed) = apply_marks(policy, checked, marks);
        let enforced = crate::enforce::answer_marked(
            policy,
            desk.node,
            desk.department,
            &request,
            consent.is_some(),
            &checked,
            &disputed,
            clock.today,
        );
        let entry = AuditRecord {
            policy_version: enforced.policy_version,
            ..entry
        };
        let outcome = NodeOutcome::Decided(enforced.audit_outcome);
        let answer = match enforced.answer {
            Ok(answer) => answer,
            Err(rationale) => {
                return desk.finished(entry, outcome, NodeResponse::Refused { rationale })
            }
        };
        desk.release_sealed(Sealing {
            entry,
            outcome,
            answer,
            session: &session,
            nonce: &nonce,
            query_id: &request.query_id,
            any_unverified,
            consent,
            reservation,
        })
    }
}

impl<'a> Pending<'a> {
    /// The subject's keyed pseudonym (what the register and the rights file know them by).
    pub fn pseudonym(&self) -> &str {
        &self.entry.subject
    }

    /// Answers a rights lookup (issue 19) from the records read (`read`, for a filing: the
    /// subject's records of the dataset filed about) and what the shell read of the
    /// register and the rights file (`rights`). A filing names one of the person's own
    /// records here, or nothing is filed; what is filed is written by the shell once this
    /// lookup's entry is durable ([`Finished::take_filing`]).
    pub fn answer_rights(
        self,
        desk: &Desk<'a>,
        read: Result<BTreeMap<String, Evidence>, ReadFailure>,
        rights: Result<RightsRead, ReadFailure>,
    ) -> Finished<'a> {
        use fedq_wire::rights::{
            ObjectionState, ObjectionStatus, RepairState, RepairStatus, Right, RightsAnswer,
        };
        let Pending {
            request,
            subject,
            policy,
            clock,
            entry,
            consent,
            reservation,
            reads: _,
            session,
            nonce,
        } = self;
        let fedq_wire::message::LookupTarget::Rights(target) = &request.target else {
            let why = format!("node `{}`: not a rights lookup", desk.node);
            return desk.refused(entry, NodeOutcome::Refused(why.clone()), why);
        };
        let (by_dataset, rights) = match (read, rights) {
            (Ok(records), Ok(rights)) => (records, rights),
            (Err(what), _) | (_, Err(what)) => {
                let response = NodeResponse::Failed {
                    code: FailureCode::Unavailable,
                    message: format!("node `{}`: its {} is unavailable", desk.node, what.name()),
                };
                return desk.finished(entry, NodeOutcome::Unavailable(what), response);
            }
        };
        let at = clock
            .now
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let engine = &policy.engine;
        let dataset = target
            .dataset
            .as_deref()
            .and_then(|d| engine.datasets().iter().find(|x| x.qualified == d));
        let marks = rights.marks;
        let mut answer = RightsAnswer {
            objections: rights.objections,
            repairs: rights.repairs,
            ..RightsAnswer::default()
        };
        let mut to_file = None;
        let refuse = |entry: AuditRecord, why: String| {
            let rationale = format!("node `{}`: {why}", desk.node);
            let entry = AuditRecord {
                kind: EntryKind::Refusal,
                ..entry
            };
            desk.refused(entry, NodeOutcome::Refused(rationale.clone()), rationale)
        };
        let audited = match (target.right, dataset) {
            (Right::Register, _) => {
                let (entries, older, hidden) =
                    crate::rights::register(rights.register, engine.policy(), clock.today);
                let hidden_count: u64 = hidden.iter().map(|h| h.count).sum();
                answer.entries = entries;
                answer.older_entries = older;
                answer.hidden = hidden;
                answer.checkpoint = rights.checkpoint;
                serde_json::json!({ "register": {
                    "entries": answer.entries.len() as u64 + older,
                    "hidden": hidden_count,
                    "objections": answer.objections.len(),
                    "repairs": answer.repairs.len(),
                }})
            }
            (Right::Object | Right::ApplyRepair, Some(dataset)) => {
                let Some(filing) = subject.filing.clone() else {
                    return refuse(entry, "nothing was filed".into());
                };
                let evidence = by_dataset
                    .get(&dataset.qualified)
                    .cloned()
                    .unwrap_or_default()
                    .checked(dataset, subject.sub.as_str(), clock.today);
                let records = match evidence {
                    Evidence::Records(records) => records,
                    Evidence::Unverified(_) => {
                        return refuse(entry, format!("the person's records of `{}` cannot be verified now, so nothing was filed; try again later", dataset.qualified));
                    }
                };
                let holds = records.iter().any(|r| {
                    crate::rights::record_key(dataset, r).as_deref() == Some(filing.record.as_str())
                });
                if !holds {
                    return refuse(entry, format!("the person has no record with this key (`{}`) in `{}`, so nothing was filed; give the key of one of their own records", dataset.key, dataset.qualified));
                }
                let already = match target.right {
                    Right::Object => answer.objections.iter().any(|o| {
                        o.dataset == dataset.qualified
                            && o.record == filing.record
                            && o.status == ObjectionStatus::Open
                    }),
                    _ => answer.repairs.iter().any(|r| {
                        r.dataset == dataset.qualified
                            && r.record == filing.record
                            && matches!(r.status, RepairStatus::Applied | RepairStatus::Repaired)
                    }),
                };
                if already {
                    return refuse(entry, format!("this record already has an open {}; its status is in the person's register", if target.right == Right::Object { "objection" } else { "repair application or repair" }));
                }
                // A reversal took two approvers; one approval of a new application must
                // not undo it.
                let reversed = target.right == Right::ApplyRepair
                    && answer.repairs.iter().any(|r| {
                        r.dataset == dataset.qualified
                            && r.record == filing.record
                            && r.status == RepairStatus::Reversed
                    });
                if reversed {
                    return refuse(entry, "a repair of this record was reversed, so nothing was filed; a new repair of it is for the credit-repair review office to take up with the department".to_owned());
                }
                let prefix = if target.right == Right::Object {
                    "obj"
                } else {
                    "rep"
                };
                let Some(id) = crate::rights::new_id(prefix) else {
                    let response = NodeResponse::Failed {
                        code: FailureCode::Unavailable,
                        message: format!(
                            "node `{}`: no randomness for an id; nothing was filed",
                            desk.node
                        ),
                    };
                    let outcome = NodeOutcome::Refused("no randomness for an id".into());
                    return desk.finished(
                        AuditRecord {
                            kind: EntryKind::Refusal,
                            ..entry
                        },
                        outcome,
                        response,
                    );
                };
                match (target.right, filing.grounds) {
                    (Right::ApplyRepair, Some(grounds)) => answer.repairs.push(RepairState {
                        id: id.clone(),
                        dataset: dataset.qualified.clone(),
                        record: filing.record.clone(),
                        grounds,
                        reason: filing.reason.clone(),
                        evidence: filing.evidence.clone(),
                        filed_at: at.clone(),
                        status: RepairStatus::Applied,
                        decisions: Vec::new(),
                    }),
                    _ => answer.objections.push(ObjectionState {
                        id: id.clone(),
                        dataset: dataset.qualified.clone(),
                        record: filing.record.clone(),
                        reason: filing.reason.clone(),
                        evidence: filing.evidence.clone(),
                        filed_at: at.clone(),
                        status: ObjectionStatus::Open,
                        resolution: None,
                    }),
                }
                answer.filed = Some(id.clone());
                to_file = Some(ToFile {
                    id: id.clone(),
                    right: target.right,
                    dataset: dataset.qualified.clone(),
                    subject: entry.subject.clone(),
                    filing,
                    at: at.clone(),
                });
                serde_json::json!({ "filed": target.right.as_str(), "id": id, "dataset": dataset.qualified })
            }
            (Right::RepairApplications, Some(dataset)) => {
                // The records the applications concern, as the policy releases them to
                // this requester for this purpose, and the applications of this dataset.
                let records_request = LookupRequest {
                    target: fedq_wire::message::LookupTarget::Datasets(vec![
                        fedq_wire::message::DatasetRequest {
                            dataset: dataset.qualified.clone(),
                            fields: None,
                        },
                    ]),
                    ..request.clone()
                };
                let checked: BTreeMap<String, Evidence> = by_dataset
                    .into_iter()
                    .filter(|(name, _)| name == &dataset.qualified)
                    .map(|(name, e)| (name, e.checked(dataset, subject.sub.as_str(), clock.today)))
                    .collect();
                let (checked, disputed) = apply_marks(policy, checked, &marks);
                let enforced = crate::enforce::answer_marked(
                    policy,
                    desk.node,
                    desk.department,
                    &records_request,
                    consent.is_some(),
                    &checked,
                    &disputed,
                    clock.today,
                );
                if let Ok(fedq_wire::message::LookupAnswer::Datasets(outcomes)) = enforced.answer {
                    for o in outcomes {
                        if let fedq_wire::message::DatasetOutcome::Released(a) = o {
                            answer.records.push(a);
                        }
                    }
                }
                answer.objections.clear();
                answer.repairs.retain(|r| r.dataset == dataset.qualified);
                serde_json::json!({ "repair_applications": answer.repairs.len(), "records": enforced.audit_outcome.as_str() })
            }
            (_, None) => {
                return refuse(entry, "the right names no dataset of the catalogue".into())
            }
        };
        let outcome = NodeOutcome::Decided(Outcome::json(&audited));
        let query_id = request.query_id.clone();
        let mut finished = desk.release_sealed(Sealing {
            entry,
            outcome,
            answer: fedq_wire::message::LookupAnswer::Rights(answer),
            session: &session,
            nonce: &nonce,
            query_id: &query_id,
            any_unverified: false,
            consent,
            reservation,
        });
        if finished.release.releases_records {
            finished.to_file = to_file;
        }
        finished
    }
}

/// The records read as the rights file's marks leave them ([`crate::rights::overlay`]):
/// removed records dropped, corrections applied, disputed records apart by dataset.
fn apply_marks(
    policy: &InForce,
    checked: BTreeMap<String, Evidence>,
    marks: &crate::rights::Marks,
) -> (
    BTreeMap<String, Evidence>,
    BTreeMap<String, Vec<fedq_policy::Record>>,
) {
    let mut disputed = BTreeMap::new();
    if marks.is_empty() {
        return (checked, disputed);
    }
    let checked = checked
        .into_iter()
        .map(|(name, evidence)| {
            let dataset = policy
                .engine
                .datasets()
                .iter()
                .find(|d| d.qualified == name);
            match (evidence, dataset) {
                (Evidence::Records(records), Some(dataset)) => {
                    let (clean, apart) = crate::rights::overlay(dataset, records, marks);
                    if !apart.is_empty() {
                        disputed.insert(name.clone(), apart);
                    }
                    (name, Evidence::Records(clean))
                }
                (evidence, _) => (name, evidence),
            }
        })
        .collect();
    (checked, disputed)
}

/// What [`Desk::release_sealed`] seals and releases.
struct Sealing<'s, 'a> {
    entry: AuditRecord,
    outcome: NodeOutcome,
    answer: fedq_wire::message::LookupAnswer,
    session: &'s NodeSession,
    nonce: &'s str,
    query_id: &'s str,
    any_unverified: bool,
    consent: Option<Consent>,
    reservation: Option<Reservation<'a>>,
}

impl<'a> Desk<'a> {
    /// Seals a decided answer to the requester and holds it until its entry is durable.
    fn release_sealed(&self, s: Sealing<'_, 'a>) -> Finished<'a> {
        let desk = self;
        let Sealing {
            entry,
            outcome,
            answer,
            session,
            nonce,
            query_id,
            any_unverified,
            consent,
            reservation,
        } = s;
        // The answer is sealed to the requester, bound to the proof it answers: the
        // coordinator relays ciphertext.
        let sealed = match session.seal_lookup_answer(&answer, nonce) {
            Ok(sealed) => sealed,
            Err(fedq_wire::seal::SealError::TooLarge) => String::new(),
            Err(e) => {
                tracing::error!(error = %e, "cannot seal the answer; failing closed");
                let response = NodeResponse::Failed {
                    code: FailureCode::Unavailable,
                    message: format!("node `{}`: cannot seal the answer", desk.node),
                };
                let outcome = NodeOutcome::Refused("the answer could not be sealed".into());
                let entry = AuditRecord {
                    kind: EntryKind::Refusal,
                    ..entry
                };
                return desk.finished(entry, outcome, response);
            }
        };
        let response = NodeResponse::Lookup(LookupResponse {
            node: desk.node.to_owned(),
            policy_version: entry.policy_version.clone(),
            sealed,
            // Added once the entry is durable (`Release::after_committed`).
            receipt: None,
        });
        // An answer the coordinator would not read is not released (nor registered as
        // released): the requester is told to ask for less.
        let size = match &response {
            NodeResponse::Lookup(l) if l.sealed.is_empty() => usize::MAX,
            r => fedq_wire::frame::encode(r).map_or(usize::MAX, |b| b.len()),
        };
        // Room is kept for the receipt, which joins the answer once its entry is durable.
        if size.saturating_add(fedq_wire::message::RECEIPT_RESERVE) > desk.max_answer_len {
            let rationale = if size == usize::MAX {
                format!(
                    "node `{}`: the answer would be over the limit of one sealed answer; ask for fewer datasets or fields",
                    desk.node
                )
            } else {
                format!(
                    "node `{}`: the answer would be {size} bytes, over the {}-byte limit of one answer; ask for fewer datasets or fields",
                    desk.node, desk.max_answer_len
                )
            };
            let entry = AuditRecord {
                kind: EntryKind::Refusal,
                ..entry
            };
            return desk.refused(entry, NodeOutcome::Refused(rationale.clone()), rationale);
        }
        tracing::debug!(query = %query_id, "answering lookup");
        // The entry commits to the very answer released (issue 18): its receipt then
        // checks only with this sealed answer, which is bound to the requester's nonce.
        let entry = AuditRecord {
            answer_sha256: match &response {
                NodeResponse::Lookup(l) => Some(fedq_audit::checkpoint::answer_sha256(&l.sealed)),
                _ => None,
            },
            ..entry
        };
        let mut finished = desk.finished(entry, outcome, response);
        finished.release.releases_records = true;
        if any_unverified {
            finished.release.outcome = LookupOutcome::Unverified;
        }
        // An answer under a consent token is one use of it, counted in the same
        // transaction as its entry.
        finished.consent_expires = consent.as_ref().map(|c| c.claims.exp);
        finished.release.reservation = reservation.filter(|_| consent.is_some());
        finished
    }
}

impl<'a> Finished<'a> {
    /// The entry to write.
    pub fn entry(&self) -> &AuditRecord {
        &self.entry
    }

    /// When the entry counts one use of a consent token: the token's expiry (the log
    /// keeps the count in the same transaction as the entry).
    pub fn consent_use(&self) -> Option<i64> {
        self.consent_expires
    }

    /// What the lookup files, once its entry is durable (a rights lookup's objection or
    /// repair application).
    pub fn take_filing(&mut self) -> Option<ToFile> {
        self.to_file.take()
    }

    /// The entry to write, the consent use it counts, and the response held until then.
    pub fn into_parts(self) -> (AuditRecord, Option<i64>, Release<'a>) {
        (self.entry, self.consent_expires, self.release)
    }
}

impl Release<'_> {
    /// What the lookup came to, given how writing its entry went (for
    /// `fedq_node_lookups_total`): an answer whose entry was not written was withheld.
    pub fn outcome(&self, appended: Result<(), &AuditError>) -> LookupOutcome {
        match appended {
            Err(AuditError::TooLarge { .. }) if self.releases_records => LookupOutcome::Refused,
            Err(_) if self.releases_records => LookupOutcome::AuditFailed,
            _ => self.outcome,
        }
    }

    /// The response, given how writing its entry went: an answer that releases records
    /// is withheld unless the entry is durable (and then counts its consent use); a
    /// refusal or failure is answered either way (it releases nothing of any record).
    pub fn after(self, appended: Result<(), &AuditError>) -> NodeResponse {
        let Release {
            response,
            outcome: _,
            node,
            releases_records,
            reservation,
        } = self;
        match appended {
            Ok(()) => {
                if let Some(reservation) = reservation {
                    reservation.answered();
                }
                response
            }
            Err(e) if !releases_records => {
                tracing::error!(error = %e, "audit log unavailable while registering a lookup");
                response
            }
            Err(e @ AuditError::TooLarge { .. }) => {
                tracing::error!(error = %e, "answer withheld: its audit entry is too large");
                NodeResponse::Refused {
                    rationale: format!(
                        "node `{node}`: the answer's audit entry would be too large, so nothing is released; ask for fewer datasets or fields"
                    ),
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "audit log unavailable; answer withheld");
                NodeResponse::Failed {
                    code: FailureCode::Unavailable,
                    message: format!(
                        "node `{node}`: its audit log is unavailable, so nothing is released"
                    ),
                }
            }
        }
    }
}
