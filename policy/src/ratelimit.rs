//! Per-requester rate limits as declared in the policy. A small pure type the
//! coordinator holds (behind its own lock); "now" is an argument.

use std::collections::HashMap;

use crate::policy::{Policy, RateLimit};

/// A request over its requester's limit, or from an undeclared requester.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateLimited {
    /// Too many requests this minute.
    #[error("requester `{requester}` has made {limit} requests this minute, its limit; retry after {retry_after_secs} s")]
    PerMinute {
        /// Requester.
        requester: String,
        /// The limit.
        limit: u32,
        /// Seconds until the minute ends.
        retry_after_secs: u64,
    },
    /// Too many requests today.
    #[error("requester `{requester}` has made {limit} requests today (UTC day), its limit; retry tomorrow or ask for a higher limit")]
    PerDay {
        /// Requester.
        requester: String,
        /// The limit.
        limit: u32,
    },
    /// Not declared in the policy.
    #[error("unknown requester `{requester}`; only declared requesters may ask")]
    UnknownRequester {
        /// Requester.
        requester: String,
    },
}

#[derive(Debug, Clone, Copy, Default)]
struct Counter {
    minute: i64,
    in_minute: u32,
    day: i64,
    in_day: u32,
}

/// Fixed-window counters per requester (minute and UTC day).
#[derive(Debug, Clone)]
pub struct RateLimiter {
    limits: HashMap<String, RateLimit>,
    counters: HashMap<String, Counter>,
    headroom: bool,
}

/// The limits a second counter of the same requests must apply so it never refuses what
/// the first one allowed. Two processes' fixed windows do not line up: requests the
/// coordinator counted at the end of its minute (or day) reach a node at the start of
/// the next. So a node's window holds requests from at most two of the coordinator's,
/// each within the limit: a node allows twice the minute's limit, and the day's limit
/// plus one minute's worth (or twice it, with no minute limit).
fn with_headroom(limit: RateLimit) -> RateLimit {
    RateLimit {
        per_minute: limit.per_minute.map(|m| m.saturating_mul(2)),
        per_day: limit
            .per_day
            .map(|d| d.saturating_add(limit.per_minute.unwrap_or(d))),
    }
}

impl RateLimiter {
    /// The limits declared in `policy`.
    pub fn new(policy: &Policy) -> RateLimiter {
        RateLimiter {
            limits: policy
                .requesters
                .iter()
                .map(|r| (r.name.clone(), r.rate_limit))
                .collect(),
            counters: HashMap::new(),
            headroom: false,
        }
    }

    /// The limits declared in `policy` as a node applies them to the lookups a
    /// coordinator forwards (it counts the same requests again, so a coordinator that was
    /// taken over is still throttled): see [`with_headroom`]'s reasoning — twice the
    /// minute's limit, the day's plus a minute's worth.
    pub fn second_counter(policy: &Policy) -> RateLimiter {
        RateLimiter {
            headroom: true,
            ..RateLimiter::new(policy)
        }
    }

    /// Takes the limits of a new policy version, keeping what each requester has already
    /// used this minute and today (a policy change is not a fresh quota).
    pub fn set_limits(&mut self, policy: &Policy) {
        self.limits = policy
            .requesters
            .iter()
            .map(|r| (r.name.clone(), r.rate_limit))
            .collect();
    }

    /// Counts one request by `requester` at `now`, or refuses it. A refused request is
    /// not counted.
    pub fn check(&mut self, requester: &str, now: time::OffsetDateTime) -> Result<(), RateLimited> {
        let mut limit =
            *self
                .limits
                .get(requester)
                .ok_or_else(|| RateLimited::UnknownRequester {
                    requester: requester.to_owned(),
                })?;
        if self.headroom {
            limit = with_headroom(limit);
        }
        let t = now.unix_timestamp();
        let (minute, day) = (t.div_euclid(60), t.div_euclid(86_400));
        let c = self.counters.entry(requester.to_owned()).or_default();
        if c.minute != minute {
            c.minute = minute;
            c.in_minute = 0;
        }
        if c.day != day {
            c.day = day;
            c.in_day = 0;
        }
        if let Some(l) = limit.per_minute {
            if c.in_minute >= l {
                return Err(RateLimited::PerMinute {
                    requester: requester.to_owned(),
                    limit: l,
                    retry_after_secs: u64::try_from(60 - t.rem_euclid(60)).unwrap_or(60),
                });
            }
        }
        if let Some(l) = limit.per_day {
            if c.in_day >= l {
                return Err(RateLimited::PerDay {
                    requester: requester.to_owned(),
                    limit: l,
                });
            }
        }
        c.in_minute += 1;
        c.in_day += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference_engine() -> crate::Engine {
        crate::load::load_engine(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../reference/changsha/policy.toml"),
            None,
        )
        .unwrap()
    }

    /// The reference policy's first requester with a per-minute limit, and that limit.
    fn limited_requester(engine: &crate::Engine) -> (&crate::policy::Requester, u32) {
        let requester = engine
            .policy()
            .requesters
            .iter()
            .find(|r| r.rate_limit.per_minute.is_some())
            .unwrap();
        (requester, requester.rate_limit.per_minute.unwrap())
    }

    #[test]
    fn a_new_policy_keeps_the_quota_already_used() {
        let engine = reference_engine();
        let (requester, limit) = limited_requester(&engine);
        let mut limiter = RateLimiter::new(engine.policy());
        let now = time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        for _ in 0..limit {
            limiter.check(&requester.name, now).unwrap();
        }
        limiter.set_limits(engine.policy());
        assert!(matches!(
            limiter.check(&requester.name, now),
            Err(RateLimited::PerMinute { .. })
        ));
    }

    #[test]
    fn a_second_counter_allows_what_two_of_the_first_counters_windows_did_and_no_more() {
        let engine = reference_engine();
        let (requester, limit) = limited_requester(&engine);
        let mut first = RateLimiter::new(engine.policy());
        let mut second = RateLimiter::second_counter(engine.policy());
        // The first counter's minute ends at `edge`: it allows `limit` just before and
        // `limit` more just after; all of them reach the second counter after the edge.
        let edge: i64 = 1_800_000_060;
        assert_eq!(edge % 60, 0);
        let before = time::OffsetDateTime::from_unix_timestamp(edge - 1).unwrap();
        let after = time::OffsetDateTime::from_unix_timestamp(edge + 1).unwrap();
        for t in [before, after] {
            for _ in 0..limit {
                first.check(&requester.name, t).unwrap();
                second.check(&requester.name, after).unwrap();
            }
        }
        // One more in the same minute is over even the second counter's limit.
        assert!(matches!(
            second.check(&requester.name, after),
            Err(RateLimited::PerMinute { limit: l, .. }) if l == 2 * limit
        ));
        // Policy changes keep the headroom.
        second.set_limits(engine.policy());
        assert!(second.check(&requester.name, after).is_err());
        assert!(matches!(
            second.check("nobody.at-all", after),
            Err(RateLimited::UnknownRequester { .. })
        ));
    }
}
