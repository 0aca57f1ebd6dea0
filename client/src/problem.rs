//! Every 4xx and 5xx of the requester API and of an agency's gateway is one shape: a
//! problem document (RFC 9457, `application/problem+json`) with a stable `type` per kind
//! of refusal, the human message in `detail`, and the fields a program needs — which
//! request field was at fault and what the policy accepts there, a size limit, when to
//! retry. A problem never carries the input that was refused: `detail` says what *kind*
//! of input was wrong (the same words the audit entry records), and `accepted` lists only
//! the policy's own names.
//!
//! Types are URNs (`urn:fedq:problem:<kind>`): stable identifiers a client matches on,
//! not addresses to fetch. [`Kind::ALL`] is the whole list; the OpenAPI document
//! enumerates it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The media type of every error body.
pub const CONTENT_TYPE: &str = "application/problem+json";

/// What every problem `type` starts with.
pub const TYPE_PREFIX: &str = "urn:fedq:problem:";

/// One error answer (RFC 9457).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Problem {
    /// The kind of problem, `urn:fedq:problem:<kind>`; match on this, not on `detail`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind, the same for every occurrence.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What was wrong and what to do, for a person; never the refused input itself.
    pub detail: String,
    /// The query's id (in every audit entry it caused), when the refusal was registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_id: Option<String>,
    /// The request field at fault (`purpose`, `legal_basis`, `view`, `datasets`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What the policy accepts in that field (its own names: purposes, legal bases,
    /// views, roles), when the list is what the caller needs to correct the request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accepted: Vec<String>,
    /// The size limit that was exceeded, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_bytes: Option<u64>,
    /// Seconds after which the same request may succeed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
}

/// What a refusal says beside its message: its kind, the field at fault and what is
/// accepted there. Built where the refusal is decided, from the policy's own names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hint {
    /// The kind, when more precise than the refusal's own (e.g. `legal-basis-not-accepted`
    /// for a policy refusal).
    pub kind: Option<Kind>,
    /// The request field at fault.
    pub field: Option<&'static str>,
    /// What the policy accepts there.
    pub accepted: Vec<String>,
    /// The size limit exceeded, in bytes.
    pub limit_bytes: Option<u64>,
    /// When to retry, in seconds.
    pub retry_after_seconds: Option<u64>,
}

/// A refusal's message with its [`Hint`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Said {
    /// What was wrong and what to do (recorded in the audit entry as it is).
    pub message: String,
    /// The kind, field and accepted values.
    pub hint: Hint,
}

impl Said {
    /// A message with a hint.
    pub fn new(message: impl Into<String>, hint: Hint) -> Self {
        Self {
            message: message.into(),
            hint,
        }
    }
}

impl From<String> for Said {
    fn from(message: String) -> Self {
        Self {
            message,
            hint: Hint::default(),
        }
    }
}

impl From<&str> for Said {
    fn from(message: &str) -> Self {
        message.to_owned().into()
    }
}

impl std::fmt::Display for Said {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl Hint {
    /// A hint naming the kind only.
    pub fn kind(kind: Kind) -> Self {
        Self {
            kind: Some(kind),
            ..Self::default()
        }
    }

    /// A hint naming the field at fault and what is accepted there.
    pub fn field(kind: Kind, field: &'static str, accepted: Vec<String>) -> Self {
        Self {
            kind: Some(kind),
            field: Some(field),
            accepted,
            ..Self::default()
        }
    }

    /// The hint a policy engine refusal gives: its kind from its code, the field it is
    /// about, and what the policy accepts there.
    pub fn of_policy(refusal: &fedq_policy::engine::Refusal) -> Self {
        use fedq_policy::engine::Refusal as R;
        let list = |s: &str| -> Vec<String> {
            if s.starts_with("none") {
                return Vec::new();
            }
            s.split(", ")
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let kind = Kind::of_policy_code(refusal.code());
        match refusal {
            R::PurposeNotAllowed { allowed, .. } => Self::field(kind, "purpose", list(allowed)),
            R::LegalBasisRequired { .. } => Self::field(kind, "legal_basis", Vec::new()),
            R::LegalBasisNotAccepted { accepted, .. } => {
                Self::field(kind, "legal_basis", list(accepted))
            }
            R::AggregateOnly { .. } => Self::field(kind, "purpose", Vec::new()),
            R::CaseReferenceRequired { .. }
            | R::CaseReferenceMalformed { .. }
            | R::CaseReferenceNotAccepted { .. } => Self::field(kind, "case_reference", Vec::new()),
            R::ConsentRequired { .. } => Self::field(kind, "consent_sealed", Vec::new()),
            R::UnknownDataset { .. } | R::UnknownField { .. } => {
                Self::field(kind, "datasets", Vec::new())
            }
            R::ViewNotForPurpose { allowed, .. } => Self::field(kind, "purpose", list(allowed)),
            R::UnknownView { .. } => Self::field(kind, "view", Vec::new()),
            R::UnknownPurpose { .. } => Self::field(kind, "purpose", Vec::new()),
            R::UnknownRequester { .. } => Self::kind(kind),
            R::RightNotServed { served, .. } => Self::field(kind, "rights", list(served)),
        }
    }
}

macro_rules! kinds {
    ($($variant:ident => $slug:literal, $title:literal;)*) => {
        /// The kinds of problem. The `type` of each is `urn:fedq:problem:` and its slug.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Kind {
            $(
                #[doc = $title]
                $variant,
            )*
        }

        impl Kind {
            /// Every kind, in the order the API documents them.
            pub const ALL: &'static [Kind] = &[$(Kind::$variant),*];

            /// The slug after `urn:fedq:problem:`.
            pub fn slug(self) -> &'static str {
                match self { $(Kind::$variant => $slug,)* }
            }

            /// The problem's `title`.
            pub fn title(self) -> &'static str {
                match self { $(Kind::$variant => $title,)* }
            }
        }
    };
}

kinds! {
    CertificateRevoked => "certificate-revoked", "The client certificate has been revoked";
    RoleNotAllowed => "role-not-allowed", "The certificate's role may not make this request";
    ConnectionLimit => "connection-limit", "Too many connections under this certificate";
    Unauthenticated => "unauthenticated", "The request carries no valid credential";
    NotFound => "not-found", "No such endpoint";
    MethodNotAllowed => "method-not-allowed", "The endpoint does not take this method";
    BodyTooLarge => "body-too-large", "The request body is over the size limit";
    BodyTooSlow => "body-too-slow", "The request body did not arrive in time";
    MalformedRequest => "malformed-request", "The request is not well formed";
    ProofMissing => "proof-missing", "The query lacks a requester proof for a node it asks";
    PolicyRefused => "policy-refused", "The access policy refuses the request";
    UnknownRequester => "unknown-requester", "The requester is not declared in the policy";
    UnknownPurpose => "unknown-purpose", "The purpose is not declared in the policy";
    PurposeNotAllowed => "purpose-not-allowed", "The requester may not ask for this purpose";
    LegalBasisRequired => "legal-basis-required", "The purpose requires a legal basis";
    LegalBasisNotAccepted => "legal-basis-not-accepted", "The cited legal basis is not one the purpose accepts";
    AggregateOnly => "aggregate-only", "The purpose answers aggregate queries only";
    CaseReferenceRequired => "case-reference-required", "The purpose requires a case reference";
    CaseReferenceMalformed => "case-reference-malformed", "The case reference does not have the purpose's form";
    CaseReferenceNotAccepted => "case-reference-not-accepted", "The purpose takes no case reference";
    ConsentRequired => "consent-required", "The purpose requires the subject's consent";
    UnknownDataset => "unknown-dataset", "The dataset is not in the catalogue";
    UnknownField => "unknown-field", "The field is not in the dataset";
    UnknownView => "unknown-view", "The view is not declared in the policy";
    ViewNotForPurpose => "view-not-for-purpose", "The view may not be asked for this purpose";
    RightNotServed => "right-not-served", "The purpose does not serve this right of the person";
    RateLimited => "rate-limited", "The requester is over its rate limit";
    BudgetSpent => "budget-spent", "The requester's privacy budget for aggregate queries is spent";
    BundleRefused => "bundle-refused", "The policy bundle was refused; the version in force stays";
    BundleConflict => "bundle-conflict", "The policy bundle is not newer than the version in force";
    Overloaded => "overloaded", "Too many requests in flight";
    AuditUnavailable => "audit-unavailable", "The audit log is unavailable, so nothing is answered";
    AnswerWithheld => "answer-withheld", "The audit log failed after the nodes answered; the answer is withheld";
    CoordinatorUnreachable => "coordinator-unreachable", "The gateway could not ask the coordinator";
    Internal => "internal", "The server failed unexpectedly";
    QueryNotFound => "query-not-found", "No query is registered under that id";
    ComplaintNotFound => "complaint-not-found", "No complaint of yours has that id";
    ComplaintStatusConflict => "complaint-status-conflict", "The complaint cannot go to that status from the one it has";
    OfficerSignatureRefused => "officer-signature-refused", "The officer's signature or certificate does not verify";
}

impl Kind {
    /// The problem `type` URI.
    pub fn uri(self) -> String {
        format!("{TYPE_PREFIX}{}", self.slug())
    }

    /// The kind of a policy engine refusal, by its code (`legal_basis_not_accepted`).
    pub fn of_policy_code(code: &str) -> Kind {
        let slug = code.replace('_', "-");
        Kind::ALL
            .iter()
            .copied()
            .find(|k| k.slug() == slug)
            .unwrap_or(Kind::PolicyRefused)
    }

    /// The kind whose `type` is `uri`, if any.
    pub fn of_uri(uri: &str) -> Option<Kind> {
        let slug = uri.strip_prefix(TYPE_PREFIX)?;
        Kind::ALL.iter().copied().find(|k| k.slug() == slug)
    }
}

impl Problem {
    /// A problem of `kind` with HTTP `status` and the human `detail`.
    pub fn new(kind: Kind, status: u16, detail: impl Into<String>) -> Self {
        Self {
            kind: kind.uri(),
            title: kind.title().to_owned(),
            status,
            detail: detail.into(),
            query_id: None,
            field: None,
            accepted: Vec::new(),
            limit_bytes: None,
            retry_after_seconds: None,
        }
    }

    /// With the query (or publication, or session) id it was registered under.
    pub fn registered(mut self, id: &str) -> Self {
        self.query_id = Some(id.to_owned());
        self
    }

    /// With the field at fault and what is accepted there.
    pub fn hinted(mut self, hint: &Hint) -> Self {
        if let Some(k) = hint.kind {
            self.kind = k.uri();
            k.title().clone_into(&mut self.title);
        }
        if let Some(f) = hint.field {
            self.field = Some(f.to_owned());
        }
        if !hint.accepted.is_empty() {
            self.accepted.clone_from(&hint.accepted);
        }
        self.limit_bytes = hint.limit_bytes.or(self.limit_bytes);
        self.retry_after_seconds = hint.retry_after_seconds.or(self.retry_after_seconds);
        self
    }

    /// The kind, when its `type` is one of ours.
    pub fn known_kind(&self) -> Option<Kind> {
        Kind::of_uri(&self.kind)
    }

    /// As a JSON body.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_else(|_| serde_json::json!({}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_distinct_slugs_and_round_trip_through_their_uri() {
        let mut seen = std::collections::BTreeSet::new();
        for k in Kind::ALL {
            assert!(seen.insert(k.slug()), "slug `{}` twice", k.slug());
            assert_eq!(Kind::of_uri(&k.uri()), Some(*k));
            assert!(k
                .slug()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'-'));
        }
        assert_eq!(Kind::of_uri("urn:fedq:problem:nope"), None);
    }

    #[test]
    fn every_policy_refusal_code_has_a_kind_of_its_own() {
        for code in [
            "unknown_requester",
            "unknown_purpose",
            "purpose_not_allowed",
            "legal_basis_required",
            "legal_basis_not_accepted",
            "aggregate_only",
            "case_reference_required",
            "case_reference_malformed",
            "case_reference_not_accepted",
            "consent_required",
            "unknown_dataset",
            "unknown_field",
            "view_not_for_purpose",
            "unknown_view",
        ] {
            let kind = Kind::of_policy_code(code);
            assert_ne!(kind, Kind::PolicyRefused, "{code}");
            assert_eq!(kind.slug(), code.replace('_', "-"));
        }
        assert_eq!(Kind::of_policy_code("something_new"), Kind::PolicyRefused);
    }

    #[test]
    fn a_legal_basis_refusal_lists_what_the_purpose_accepts() {
        let refusal = fedq_policy::engine::Refusal::LegalBasisNotAccepted {
            purpose: "administrative-licensing".into(),
            accepted: "行政许可法, 社会信用体系建设规划".into(),
        };
        let p = Problem::new(Kind::PolicyRefused, 403, refusal.to_string())
            .hinted(&Hint::of_policy(&refusal))
            .registered("q1");
        let json = p.to_json();
        assert_eq!(json["type"], "urn:fedq:problem:legal-basis-not-accepted");
        assert_eq!(json["field"], "legal_basis");
        assert_eq!(
            json["accepted"],
            serde_json::json!(["行政许可法", "社会信用体系建设规划"])
        );
        assert_eq!(json["status"], 403);
        assert_eq!(json["query_id"], "q1");
        let none = fedq_policy::engine::Refusal::LegalBasisNotAccepted {
            purpose: "x".into(),
            accepted: "none (this purpose takes no legal basis; omit it)".into(),
        };
        assert!(Hint::of_policy(&none).accepted.is_empty());
    }
}
