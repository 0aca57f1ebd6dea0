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
        let limit = *self
            .limits
            .get(requester)
            .ok_or_else(|| RateLimited::UnknownRequester {
                requester: requester.to_owned(),
            })?;
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

    #[test]
    fn a_new_policy_keeps_the_quota_already_used() {
        let engine = crate::load::load_engine(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../reference/changsha/policy.toml"),
            None,
        )
        .unwrap();
        let requester = engine
            .policy()
            .requesters
            .iter()
            .find(|r| r.rate_limit.per_minute.is_some())
            .unwrap();
        let limit = requester.rate_limit.per_minute.unwrap();
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
}
