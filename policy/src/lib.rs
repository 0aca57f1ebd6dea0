//! The access-policy language, its compiled decision engine, and the officers' tools.
//!
//! The language and engine do no I/O: they parse text they are handed and decide over
//! data. Only [`load`] (for nodes, the coordinator and the tools) and [`cli`] (on behalf of
//! `fedq policy …`) read files.
//!
//! The path of a query through this crate:
//! 1. [`catalogue::Catalogue::parse`] each department's catalogue, [`catalogue::Federation::new`];
//! 2. [`policy::Policy::parse`] the policy against the federation, then [`policy::Policy::compile`]
//!    (or, from files, [`load::load_engine`]);
//! 3. coordinator: [`ratelimit::RateLimiter::check`], [`engine::Engine::check_request`] /
//!    [`engine::Engine::decide`] or [`engine::Engine::decide_view`] as a pre-check;
//! 4. node: [`engine::Engine::decide`] (authoritative) then [`minimize::minimize`];
//! 5. coordinator: merge, and for views [`views::evaluate`].

pub mod analysis;
pub mod catalogue;
pub mod cli;
pub mod engine;
pub mod load;
pub mod location;
pub mod minimize;
pub mod policy;
pub mod ratelimit;
pub mod testing;
pub mod transform;
pub mod views;

pub use catalogue::{Catalogue, Dataset, Federation, Field, FieldClass, FieldType, Record};
pub use engine::{
    DatasetDecision, DecisionRequest, Engine, FieldDecision, FieldSelection, Reason, Refusal,
    ViewDecision, ViewRequest,
};
pub use location::{LocatedError, LocatedErrors, Location};
pub use minimize::{minimize, MinimizedAnswer, Summary};
pub use policy::Policy;
pub use transform::{FieldTransform, Value};
