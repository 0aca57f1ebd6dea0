//! The `[[requester]]` section: `agency.office` names, roles, the purposes each may ask
//! for, rate limits.

use crate::location::Diagnostics;
use crate::policy::{Purpose, RateLimit, Requester};
use crate::validate::names::{purpose_index, purpose_names};
use crate::validate::raw::RawRequester;

/// The declared requesters, in file order, their purposes resolved against `purposes`.
pub(crate) fn validate(
    raw: &[RawRequester],
    purposes: &[Purpose],
    diag: &mut Diagnostics<'_>,
) -> Vec<Requester> {
    let mut requesters: Vec<Requester> = Vec::new();
    for r in raw {
        let name = r.name.get_ref();
        let agency = match name.split_once('.') {
            Some((a, o)) if !a.is_empty() && !o.is_empty() => a.to_owned(),
            _ => {
                diag.error(r.name.span(), format!("requester `{name}` must be `agency.office`, as in its certificate, e.g. `market-regulation.licensing`"));
                String::new()
            }
        };
        if requesters.iter().any(|q| &q.name == name) {
            diag.error(
                r.name.span(),
                format!("requester `{name}` is declared twice"),
            );
        }
        let mut ps = Vec::new();
        for p in &r.purposes {
            match purpose_index(purposes, p.get_ref()) {
                Some(i) => ps.push(i),
                None => diag.error(
                    p.span(),
                    format!(
                        "unknown purpose `{}`; declared purposes are: {}",
                        p.get_ref(),
                        purpose_names(purposes)
                    ),
                ),
            }
        }
        let rate_limit = r
            .rate_limit
            .as_ref()
            .map_or(RateLimit::default(), |l| RateLimit {
                per_minute: l.per_minute,
                per_day: l.per_day,
            });
        requesters.push(Requester {
            name: name.clone(),
            agency,
            role: r.role.get_ref().clone(),
            description: r.description.clone(),
            purposes: ps,
            rate_limit,
        });
    }
    requesters
}
