//! The declared names an error message lists ("declared purposes are: …"), and the
//! lookups the sections share.

use crate::policy::{Purpose, Requester};

/// The index of the purpose called `name`.
pub(crate) fn purpose_index(purposes: &[Purpose], name: &str) -> Option<usize> {
    purposes.iter().position(|p| p.name == name)
}

/// The declared purposes, comma-separated, in file order.
pub(crate) fn purpose_names(purposes: &[Purpose]) -> String {
    purposes
        .iter()
        .map(|p| p.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The declared requesters, comma-separated, in file order.
pub(crate) fn requester_names(requesters: &[Requester]) -> String {
    requesters
        .iter()
        .map(|r| r.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
