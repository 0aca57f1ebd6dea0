//! Which nodes answer. A node whose lookups (or heartbeat pings, sent every
//! [`HealthSettings::heartbeat_interval`] over the pooled connection, so an idle node's
//! death is seen too) go unanswered [`HealthSettings::down_after_failures`] times in a
//! row (no connection within the deadline, the connection lost, no answer within the
//! deadline) is marked **down**:
//! from then on its part of every query is answered `unavailable` at once instead of
//! costing each query the whole deadline. A background task probes a down node with a
//! ping over a connection of its own every [`HealthSettings::probe_interval`] (probes
//! overlap, each bounded by [`HealthSettings::probe_timeout`]) and marks it **up** at the
//! first answer, so a node that returns is asked again within about one probe interval.
//!
//! Metrics, per node: `fedq_node_up` (1 or 0), `fedq_node_probe_seconds` (how long each
//! answered heartbeat or probe took), `fedq_node_marked_down_total`.
//!
//! A node that answers — even `Failed` (its store is down) or `Refused` — is up: it is
//! there and says so itself. Authentication refusals and protocol errors do not count
//! either way (the channel backs off refusals itself).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fedq_wire::transport::{ChannelError, NodeChannel, Unreachable};
use fedq_wire::{NodeRequest, NodeResponse};
use tokio::sync::Notify;
use tokio::task::JoinSet;

/// When a node counts as down, and how it is probed while it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthSettings {
    /// Consecutive unanswered lookups or heartbeats that mark a node down.
    pub down_after_failures: u32,
    /// How often an up node is pinged over its pooled connection.
    pub heartbeat_interval: Duration,
    /// How often a down node is probed.
    pub probe_interval: Duration,
    /// How long one probe may take.
    pub probe_timeout: Duration,
}

impl Default for HealthSettings {
    fn default() -> Self {
        Self {
            down_after_failures: 2,
            heartbeat_interval: Duration::from_secs(1),
            probe_interval: Duration::from_millis(100),
            probe_timeout: Duration::from_secs(1),
        }
    }
}

/// What an outcome did to a node's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// Nothing changed.
    None,
    /// The node is now down.
    WentDown,
    /// The node is now up.
    CameUp,
}

/// A node's up/down state as a plain state machine (no clock, no I/O).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tracker {
    down_after: u32,
    failures: u32,
    up: bool,
    last_failure: Option<String>,
}

impl Tracker {
    /// A node presumed up.
    pub fn new(down_after_failures: u32) -> Self {
        Self {
            down_after: down_after_failures.max(1),
            failures: 0,
            up: true,
            last_failure: None,
        }
    }

    /// Whether the node is up.
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// The node answered (a lookup or a probe).
    pub fn answered(&mut self) -> Transition {
        self.failures = 0;
        if self.up {
            Transition::None
        } else {
            self.up = true;
            self.last_failure = None;
            Transition::CameUp
        }
    }

    /// A lookup went unanswered, for `why`.
    pub fn unanswered(&mut self, why: String) -> Transition {
        self.failures = self.failures.saturating_add(1);
        self.last_failure = Some(why);
        if self.up && self.failures >= self.down_after {
            self.up = false;
            Transition::WentDown
        } else {
            Transition::None
        }
    }

    /// Why a down node is not asked, for the requester's answer.
    pub fn down_reason(&self, settings: &HealthSettings) -> Option<String> {
        if self.up {
            return None;
        }
        Some(format!(
            "not asked: marked down after {} unanswered requests in a row (last: {}); probed every {} ms",
            self.failures,
            self.last_failure.as_deref().unwrap_or("unknown"),
            settings.probe_interval.as_millis()
        ))
    }
}

/// Whether an outcome means the node did not answer.
fn unanswered(outcome: &Result<NodeResponse, ChannelError>) -> Option<String> {
    match outcome {
        Err(e @ (ChannelError::Unavailable { .. } | ChannelError::TimedOut { .. })) => {
            Some(e.to_string())
        }
        _ => None,
    }
}

/// One node's channel behind its up/down state.
pub struct NodeHealth {
    node: String,
    channel: NodeChannel,
    settings: HealthSettings,
    tracker: Mutex<Tracker>,
    went_down: Notify,
}

impl std::fmt::Debug for NodeHealth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeHealth")
            .field("node", &self.node)
            .field("up", &self.is_up())
            .finish()
    }
}

impl NodeHealth {
    /// A node presumed up; call [`Self::spawn_prober`] to have it brought back when down.
    pub fn new(channel: NodeChannel, settings: HealthSettings) -> Arc<Self> {
        let node = channel.node().to_owned();
        metrics::gauge!("fedq_node_up", "node" => node.clone()).set(1.0);
        Arc::new(Self {
            node,
            channel,
            settings,
            tracker: Mutex::new(Tracker::new(settings.down_after_failures)),
            went_down: Notify::new(),
        })
    }

    /// The node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The channel, for requests that must try whatever the node's state (publishing a
    /// policy, asking its status).
    pub fn channel(&self) -> &NodeChannel {
        &self.channel
    }

    /// Whether the node is up.
    pub fn is_up(&self) -> bool {
        self.tracker.lock().map_or(true, |t| t.is_up())
    }

    fn apply(&self, change: impl FnOnce(&mut Tracker) -> Transition) {
        let transition = match self.tracker.lock() {
            Ok(mut tracker) => change(&mut tracker),
            Err(_) => Transition::None,
        };
        match transition {
            Transition::None => {}
            Transition::WentDown => {
                tracing::warn!(node = %self.node, "node marked down: its lookups go unanswered; probing it");
                metrics::gauge!("fedq_node_up", "node" => self.node.clone()).set(0.0);
                metrics::counter!("fedq_node_marked_down_total", "node" => self.node.clone())
                    .increment(1);
                self.went_down.notify_one();
            }
            Transition::CameUp => {
                tracing::warn!(node = %self.node, "node answers again; marked up");
                metrics::gauge!("fedq_node_up", "node" => self.node.clone()).set(1.0);
            }
        }
    }

    /// Sends a lookup unless the node is down, in which case it is answered
    /// `unavailable` at once; the outcome counts toward the node's state.
    pub async fn request(
        &self,
        request: &NodeRequest,
        deadline: Duration,
    ) -> Result<NodeResponse, ChannelError> {
        let down = self
            .tracker
            .lock()
            .ok()
            .and_then(|t| t.down_reason(&self.settings));
        if let Some(reason) = down {
            return Err(ChannelError::Unavailable {
                node: self.node.clone(),
                reason: Unreachable::Other(reason),
            });
        }
        let outcome = self.channel.request(request, deadline).await;
        self.count(&outcome);
        outcome
    }

    fn count(&self, outcome: &Result<NodeResponse, ChannelError>) {
        match unanswered(outcome) {
            Some(why) => self.apply(|t| t.unanswered(why)),
            None if outcome.is_ok() => self.apply(Tracker::answered),
            None => {}
        }
    }

    /// One heartbeat: a ping over the pooled connection, counted like a lookup.
    async fn heartbeat(&self) {
        let started = tokio::time::Instant::now();
        let outcome = self
            .channel
            .request(&NodeRequest::Ping, self.settings.probe_timeout)
            .await;
        if matches!(outcome, Ok(NodeResponse::Pong { .. })) {
            metrics::histogram!("fedq_node_probe_seconds", "node" => self.node.clone())
                .record(started.elapsed().as_secs_f64());
        }
        self.count(&outcome);
    }

    /// Spawns the task that pings the node while it is up and probes it while it is
    /// down. It ends when the returned handle is aborted (the coordinator does so when
    /// dropped).
    pub fn spawn_prober(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                while this.is_up() {
                    tokio::select! {
                        () = this.went_down.notified() => {}
                        () = tokio::time::sleep(this.settings.heartbeat_interval) => {
                            this.heartbeat().await;
                        }
                    }
                }
                // The pooled connection is dead (or its node is draining); left in
                // place, its backed-off retransmissions would reach a returning node
                // only seconds later. Requests still on it keep it until they end.
                this.channel.drop_connection().await;
                this.probe_until_up().await;
            }
        })
    }

    async fn probe_until_up(&self) {
        let settings = self.settings;
        let most = usize::try_from(
            settings.probe_timeout.as_millis() / settings.probe_interval.as_millis().max(1),
        )
        .unwrap_or(1)
        .clamp(1, 64);
        let mut probes = JoinSet::new();
        let mut tick = tokio::time::interval(settings.probe_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if probes.len() < most {
                        let channel = self.channel.clone();
                        probes.spawn(async move { channel.probe(settings.probe_timeout).await });
                    }
                }
                Some(done) = probes.join_next() => {
                    if let Ok(Ok(took)) = done {
                        metrics::histogram!("fedq_node_probe_seconds", "node" => self.node.clone())
                            .record(took.as_secs_f64());
                        self.apply(Tracker::answered);
                        break;
                    }
                }
            }
        }
        probes.abort_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_goes_down_after_consecutive_failures_only() {
        let mut t = Tracker::new(2);
        assert_eq!(t.unanswered("a".into()), Transition::None);
        assert_eq!(t.answered(), Transition::None);
        assert_eq!(t.unanswered("b".into()), Transition::None);
        assert!(t.is_up());
        assert_eq!(t.unanswered("c".into()), Transition::WentDown);
        assert!(!t.is_up());
        assert_eq!(t.unanswered("d".into()), Transition::None);
        let why = t.down_reason(&HealthSettings::default()).unwrap();
        assert_eq!(
            why,
            "not asked: marked down after 3 unanswered requests in a row (last: d); probed every 100 ms"
        );
        assert_eq!(t.answered(), Transition::CameUp);
        assert!(t.is_up() && t.down_reason(&HealthSettings::default()).is_none());
    }

    #[test]
    fn only_silence_counts_as_a_failure() {
        let node = || "court".to_owned();
        assert!(unanswered(&Err(ChannelError::TimedOut {
            node: node(),
            after: Duration::from_secs(2)
        }))
        .is_some());
        assert!(unanswered(&Err(ChannelError::Unavailable {
            node: node(),
            reason: Unreachable::ShuttingDown
        }))
        .is_some());
        assert!(unanswered(&Err(ChannelError::Protocol {
            node: node(),
            reason: fedq_wire::transport::ProtocolError::Closed
        }))
        .is_none());
        assert!(unanswered(&Ok(NodeResponse::Failed {
            code: fedq_wire::message::FailureCode::Unavailable,
            message: "store down".into()
        }))
        .is_none());
    }
}
