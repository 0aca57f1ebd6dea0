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
