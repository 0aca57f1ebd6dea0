//! The access-policy language, its compiled decision engine, and the officers' tools.
//!
//! The language and engine do no I/O: they parse text they are handed and decide over
//! data. Only [`load`] (for nodes, the coordinator and the tools) reads files, and only
//! [`calendar`] reads the clock (today in the city, when a caller asks for it). The
//! officers' reports ([`report`]) are plain functions from engines to text; the `fedq`
//! binary parses the arguments of `fedq policy …` and prints them.
//!
//! The path of a query through this crate:
//! 1. [`catalogue::Catalogue::parse`] each department's catalogue, [`catalogue::Federation::new`];
//! 2. [`policy::Policy::parse`] the policy against the federation, then [`policy::Policy::compile`]
//!    (or, from files, [`load::load_engine`]);
//! 3. coordinator: [`ratelimit::RateLimiter::check`], [`engine::Engine::check_request`] /
//!    [`engine::Engine::decide`] or [`engine::Engine::decide_view`] as a pre-check;
//! 4. node: [`engine::Engine::decide`] (authoritative) then [`minimize::minimize`];
//! 5. coordinator: merge, and for views [`views::evaluate`].
//!
//! ```
//! use fedq_policy::{minimize, Catalogue, DecisionRequest, FieldSelection, FieldTransform, Federation, Policy, Record, Value};
//!
//! let court = Catalogue::parse(r#"
//! department = "court"
//! [[dataset]]
//! name = "dishonest_debtors"
//! kind = "negative"
//! key = "case_no"
//! subject = "resident_id"
//! window_start = "listed_on"
//! [[dataset.field]]
//! name = "case_no"
//! type = "string"
//! class = "identifier"
//! [[dataset.field]]
//! name = "resident_id"
//! type = "resident_id"
//! class = "identifier"
//! [[dataset.field]]
//! name = "listed_on"
//! type = "date"
//! class = "negative"
//! "#, "court.toml")?;
//! let federation = Federation::new(vec![court])?;
//! let engine = Policy::parse(r#"
//! version = 1
//! [[purpose]]
//! name = "administrative-licensing"
//! [[requester]]
//! name = "market-regulation.licensing"
//! role = "licensing"
//! purposes = ["administrative-licensing"]
//! [[rule]]
//! id = "lic-listing-year"
//! effect = "grant"
//! requesters = ["market-regulation.licensing"]
//! purposes = ["administrative-licensing"]
//! datasets = ["court.dishonest_debtors"]
//! fields = ["listed_on"]
//! transform = "year"
//! rationale = "licensing only needs to know when the person was listed"
//! "#, "policy.toml", &federation)?.compile();
//!
//! let today = fedq_policy::transform::parse_date("2026-11-27").ok_or("bad date")?;
//! let decision = engine.decide(&DecisionRequest {
//!     requester: "market-regulation.licensing",
//!     purpose: "administrative-licensing",
//!     legal_basis: None,
//!     consent: false,
//!     case_reference: None,
//!     dataset: "court.dishonest_debtors",
//!     fields: FieldSelection::All,
//!     now: today,
//! })?;
//! let forms: Vec<FieldTransform> = decision.fields.iter().map(|f| f.transform).collect();
//! assert_eq!(forms, [FieldTransform::Omit, FieldTransform::Omit, FieldTransform::Year]);
//!
//! let mut record = Record::new();
//! record.insert("case_no".into(), Value::Text("(2025)湘0104执100号".into()));
//! record.insert("listed_on".into(), Value::Date(fedq_policy::transform::parse_date("2025-03-01").ok_or("bad date")?));
//! let answer = minimize(&decision, &[record]);
//! assert_eq!(answer.records[0].get("listed_on"), Some(&Value::Year(2025)));
//! assert!(!answer.records[0].contains_key("case_no"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs, unreachable_pub)]

pub mod analysis;
pub mod calendar;
pub mod catalogue;
pub mod comparison;
pub mod disclosure;
pub mod engine;
pub mod load;
pub mod location;
pub mod minimize;
pub mod policy;
pub mod ratelimit;
pub mod report;
pub mod resident_id;
pub mod rights;
pub mod statistics;
pub mod testing;
pub mod transform;
mod validate;
pub mod value;
pub mod view_terms;
pub mod views;

pub use catalogue::{Catalogue, Dataset, Federation, Field, FieldClass, FieldType, Record};
pub use engine::{
    DatasetDecision, DecisionRequest, Engine, FieldDecision, FieldSelection, Reason, Refusal,
    ViewDecision, ViewRequest,
};
pub use location::{LocatedError, LocatedErrors, Location};
pub use minimize::{minimize, minimize_disputed, MinimizedAnswer, Summary};
pub use policy::Policy;
pub use resident_id::{ResidentId, ResidentIdError};
pub use transform::FieldTransform;
pub use value::Value;

/// The time a query or lookup is decided at, read once by the process's shell and passed
/// in as data (the decision cores read no clock): the instant, for audit entries, proofs,
/// tokens and rate limits, and the local date, for the policy's windows (the city's, or a
/// pinned `today`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    /// Now (UTC).
    pub now: time::OffsetDateTime,
    /// The local date.
    pub today: time::Date,
}
