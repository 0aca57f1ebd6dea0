//! A query's outcome at the coordinator, typed: what the requester is answered, the HTTP
//! status it gets, what the audit entry records as its `kind` and `outcome`, and the
//! metric it counts under — each decided here, in one place, by matching the enum (never
//! by reading a message back).

use std::collections::BTreeMap;

use fedq_audit::EntryKind;
use serde::Serialize;

use crate::problem::{Kind, Problem, Said};
use crate::query::NodeStatus;

/// An HTTP status and JSON body.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// JSON body.
    pub body: serde_json::Value,
}

impl Reply {
    /// A 200 with `body`.
    pub(crate) fn ok(body: &impl Serialize) -> Self {
        match serde_json::to_value(body) {
            Ok(body) => Self { status: 200, body },
            Err(e) => Self::problem(Problem::new(
                Kind::Internal,
                500,
                format!("cannot encode the answer: {e}"),
            )),
        }
    }

    /// An error answer: a problem document of `kind` (RFC 9457).
    pub(crate) fn problem(problem: Problem) -> Self {
        Self {
            status: problem.status,
            body: problem.to_json(),
        }
    }

    /// An error of `kind` with `status`, registered under `id`.
    pub(crate) fn error(status: u16, kind: Kind, message: impl Into<String>, id: &str) -> Self {
        Self::problem(Problem::new(kind, status, message).registered(id))
    }

    /// A query the coordinator could not serve, with its status from [`Unserved`].
    pub(crate) fn unserved(why: &Unserved, query_id: &str) -> Self {
        Self::error(why.http_status(), why.kind(), why.reason(), query_id)
    }

    /// A refused query's answer.
    pub(crate) fn refused(refusal: &Refusal, query_id: &str) -> Self {
        Self::problem(refusal.problem().registered(query_id))
    }
}

/// Why a query was refused before any node was asked. Every message says what kind of
/// input was wrong and what is accepted, never what was sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The body is over the size cap (413).
    TooLarge(Said),
    /// The body did not arrive in time (408).
    TooSlow(Said),
    /// The body is not a valid query, or could not be read (400).
    Malformed(Said),
    /// The policy refuses it (403), with the policy's words.
    Policy(Said),
    /// The requester is over its rate limit (429).
    RateLimited(Said),
}

impl Refusal {
    /// The HTTP status of this refusal.
    pub fn http_status(&self) -> u16 {
        match self {
            Refusal::TooLarge(_) => 413,
            Refusal::TooSlow(_) => 408,
            Refusal::Malformed(_) => 400,
            Refusal::Policy(_) => 403,
            Refusal::RateLimited(_) => 429,
        }
    }

    /// The message the requester gets and the audit entry records.
    pub fn reason(&self) -> &str {
        &self.said().message
    }

    fn said(&self) -> &Said {
        match self {
            Refusal::TooLarge(m)
            | Refusal::TooSlow(m)
            | Refusal::Malformed(m)
            | Refusal::Policy(m)
            | Refusal::RateLimited(m) => m,
        }
    }

    /// The problem document the requester gets: the variant's kind unless the refusal's
    /// hint names a more precise one.
    pub fn problem(&self) -> Problem {
        let kind = match self {
            Refusal::TooLarge(_) => Kind::BodyTooLarge,
            Refusal::TooSlow(_) => Kind::BodyTooSlow,
            Refusal::Malformed(_) => Kind::MalformedRequest,
            Refusal::Policy(_) => Kind::PolicyRefused,
            Refusal::RateLimited(_) => Kind::RateLimited,
        };
        let said = self.said();
        Problem::new(kind, self.http_status(), said.message.clone()).hinted(&said.hint)
    }
}

impl From<crate::query::QueryRefusal> for Refusal {
    fn from(r: crate::query::QueryRefusal) -> Self {
        match r {
            crate::query::QueryRefusal::Malformed(m) => Refusal::Malformed(m),
            crate::query::QueryRefusal::Policy(m) => Refusal::Policy(m),
        }
    }
}

/// Why an answer was not given although nothing was refused: the coordinator cannot serve
/// it now. Not audited as a refusal of the requester.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unserved {
    /// Too many queries in flight (503).
    Overloaded,
    /// The audit log failed before anything was asked (503).
    AuditUnavailable,
    /// The nodes answered, but the audit log failed: the answer is withheld (503).
    AnswerWithheld,
    /// The answer could not be encoded (500).
    Unencodable(String),
}

impl Unserved {
    /// The HTTP status.
    pub fn http_status(&self) -> u16 {
        match self {
            Unserved::Overloaded | Unserved::AuditUnavailable | Unserved::AnswerWithheld => 503,
            Unserved::Unencodable(_) => 500,
        }
    }

    /// The problem's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Unserved::Overloaded => Kind::Overloaded,
            Unserved::AuditUnavailable => Kind::AuditUnavailable,
            Unserved::AnswerWithheld => Kind::AnswerWithheld,
            Unserved::Unencodable(_) => Kind::Internal,
        }
    }

    /// The message the requester gets.
    pub fn reason(&self) -> String {
        match self {
            Unserved::Overloaded => "too many queries in flight; retry shortly".into(),
            Unserved::AuditUnavailable => {
                "the coordinator's audit log is unavailable; retry later".into()
            }
            Unserved::AnswerWithheld => {
                "the coordinator's audit log is unavailable; the answer was withheld".into()
            }
            Unserved::Unencodable(why) => format!("cannot encode the answer: {why}"),
        }
    }

    /// The `outcome` label of `fedq_queries_total`.
    pub fn metric(&self) -> &'static str {
        match self {
            Unserved::Overloaded => "overloaded",
            Unserved::AuditUnavailable => "audit_unavailable",
            Unserved::AnswerWithheld => "audit_failed",
            Unserved::Unencodable(_) => "unencodable",
        }
    }
}

/// What a query's coordinator audit entry records: a refusal, or the answer's
/// completeness and each node's status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Audited {
    /// Refused before any node was asked.
    Refused(Refusal),
    /// Answered (200): complete or partial, with every node's status.
    Answered {
        /// False when a node asked was unavailable or timed out (an `unknown-session`
        /// proof refusal included); whether what it answered is verified is sealed.
        complete: bool,
        /// Each node's status.
        nodes: BTreeMap<String, NodeStatus>,
        /// Each sealed answer's size in bytes (of the compact JWE relayed).
        sizes: BTreeMap<String, usize>,
    },
}

/// The `outcome` JSON of an entry (unchanged in shape from before it was typed, so
/// reviewers' tools keep reading it).
#[derive(Serialize)]
#[serde(untagged)]
enum OutcomeJson<'a> {
    Refused {
        http: u16,
        refused: &'a str,
    },
    Answered {
        http: u16,
        complete: bool,
        nodes: &'a BTreeMap<String, NodeStatus>,
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        sealed_bytes: &'a BTreeMap<String, usize>,
    },
}

impl Audited {
    /// The entry's `kind`.
    pub fn kind(&self) -> EntryKind {
        match self {
            Audited::Refused(_) => EntryKind::Refusal,
            Audited::Answered { .. } => EntryKind::Query,
        }
    }

    /// The HTTP status the requester gets.
    pub fn http_status(&self) -> u16 {
        match self {
            Audited::Refused(r) => r.http_status(),
            Audited::Answered { .. } => 200,
        }
    }

    /// The `outcome` label of `fedq_queries_total`.
    pub fn metric(&self) -> &'static str {
        match self {
            Audited::Refused(_) => "refused",
            Audited::Answered { complete: true, .. } => "answered",
            Audited::Answered {
                complete: false, ..
            } => "partial",
        }
    }

    /// The entry's `outcome`, as JSON text.
    pub fn outcome(&self) -> fedq_audit::Outcome {
        let json = match self {
            Audited::Refused(r) => OutcomeJson::Refused {
                http: r.http_status(),
                refused: r.reason(),
            },
            Audited::Answered {
                complete,
                nodes,
                sizes,
            } => OutcomeJson::Answered {
                http: 200,
                complete: *complete,
                nodes,
                sealed_bytes: sizes,
            },
        };
        fedq_audit::Outcome::of(&json)
    }
}

/// Every `outcome` label of `fedq_queries_total` ([`Audited::metric`],
/// [`Unserved::metric`]), so each series is exported at zero from start.
pub const QUERY_OUTCOMES: [&str; 7] = [
    "answered",
    "partial",
    "refused",
    "overloaded",
    "audit_unavailable",
    "audit_failed",
    "unencodable",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_outcome_has_one_status_kind_and_metric() {
        let cases = [
            (Refusal::TooLarge("big".into()), 413),
            (Refusal::TooSlow("slow".into()), 408),
            (Refusal::Malformed("bad".into()), 400),
            (Refusal::Policy("no".into()), 403),
            (Refusal::RateLimited("later".into()), 429),
        ];
        for (refusal, status) in cases {
            let audited = Audited::Refused(refusal.clone());
            assert_eq!(audited.http_status(), status);
            assert_eq!(audited.kind(), EntryKind::Refusal);
            assert_eq!(audited.metric(), "refused");
            assert_eq!(
                serde_json::from_str::<serde_json::Value>(&audited.outcome()).unwrap(),
                serde_json::json!({ "http": status, "refused": refusal.reason() })
            );
        }
        let nodes = BTreeMap::from([
            ("court".to_owned(), NodeStatus::Answered),
            ("tax".to_owned(), NodeStatus::TimedOut),
        ]);
        let partial = Audited::Answered {
            complete: false,
            nodes,
            sizes: BTreeMap::from([("court".to_owned(), 1234)]),
        };
        assert_eq!(
            (partial.kind(), partial.http_status(), partial.metric()),
            (EntryKind::Query, 200, "partial")
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&partial.outcome()).unwrap(),
            serde_json::json!({ "http": 200, "complete": false,
                "nodes": { "court": "answered", "tax": "timed_out" },
                "sealed_bytes": { "court": 1234 } })
        );
        for (u, status) in [
            (Unserved::Overloaded, 503),
            (Unserved::AuditUnavailable, 503),
            (Unserved::AnswerWithheld, 503),
            (Unserved::Unencodable("x".into()), 500),
        ] {
            assert_eq!(u.http_status(), status, "{u:?}");
        }
    }

    #[test]
    fn every_metric_label_is_registered_at_start() {
        let answered = |complete| Audited::Answered {
            complete,
            nodes: BTreeMap::new(),
            sizes: BTreeMap::new(),
        };
        let audited = [
            Audited::Refused(Refusal::Malformed("bad".into())),
            answered(true),
            answered(false),
        ];
        let unserved = [
            Unserved::Overloaded,
            Unserved::AuditUnavailable,
            Unserved::AnswerWithheld,
            Unserved::Unencodable("x".into()),
        ];
        let labels = audited
            .iter()
            .map(Audited::metric)
            .chain(unserved.iter().map(Unserved::metric));
        for label in labels {
            assert!(QUERY_OUTCOMES.contains(&label), "{label}");
        }
    }
}
