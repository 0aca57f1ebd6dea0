//! Who gets an HTTPS connection and how long it may keep it: the caps on open connections
//! (overall, per peer address, per certificate identity), the clock each connection runs
//! under (handshake, request headers, keep-alive idle), the accept loop's back-off, and
//! the throttle that keeps a flood from flooding the log. Plain state and functions over
//! `Instant`s, no sockets: `https` drives them.
//!
//! A connection that has not finished its TLS handshake proves nothing about its peer, so
//! it is the first to go: when a cap is reached, or descriptors run out, the oldest
//! unfinished handshake is closed to make room, and a flood of silent connections cannot
//! keep a requester out. An established connection is never evicted; past the caps a new
//! one is refused.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{oneshot, Notify};

use crate::config::ConnectionLimits;

/// Which cap refused a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapReached {
    /// `max_connections`.
    Total,
    /// `max_connections_per_address`.
    Address,
}

impl CapReached {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            CapReached::Total => "total",
            CapReached::Address => "address",
        }
    }
}

struct Live {
    address: IpAddr,
    identity: Option<String>,
    /// Present until the handshake completes: fired to evict the connection.
    evict: Option<oneshot::Sender<()>>,
}

#[derive(Default)]
struct Inner {
    next: u64,
    /// By admission order, so the first pending entry is the oldest.
    live: BTreeMap<u64, Live>,
    per_address: HashMap<IpAddr, usize>,
    per_identity: HashMap<String, usize>,
}

fn decrement<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: &K) {
    if let Some(n) = map.get_mut(key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(key);
        }
    }
}

impl Inner {
    fn forget(&mut self, live: &Live) {
        decrement(&mut self.per_address, &live.address);
        if let Some(identity) = &live.identity {
            decrement(&mut self.per_identity, identity);
        }
    }

    /// Closes the oldest connection still in its handshake (from `address`, if given).
    fn evict_oldest_pending(&mut self, address: Option<IpAddr>) -> bool {
        let oldest = self
            .live
            .iter()
            .find(|(_, l)| l.evict.is_some() && address.is_none_or(|a| a == l.address))
            .map(|(id, _)| *id);
        let Some(live) = oldest.and_then(|id| self.live.remove(&id)) else {
            return false;
        };
        self.forget(&live);
        if let Some(evict) = live.evict {
            let _ = evict.send(());
        }
        metrics::counter!("fedq_https_handshakes_evicted_total").increment(1);
        true
    }
}

/// The open connections of one listener, against its caps.
#[derive(Debug)]
pub struct Admission {
    limits: ConnectionLimits,
    inner: Mutex<Inner>,
    emptied: Notify,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("open", &self.live.len())
            .finish_non_exhaustive()
    }
}

impl Admission {
    /// No connections yet.
    pub fn new(limits: ConnectionLimits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            inner: Mutex::new(Inner::default()),
            emptied: Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The state stays consistent at every await-free step; a panic elsewhere while
        // holding the lock leaves nothing half-done.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The limits.
    pub fn limits(&self) -> &ConnectionLimits {
        &self.limits
    }

    /// Admits a connection from `address`, evicting the oldest unfinished handshake if a
    /// cap is reached; refuses it if every connection in the way is established.
    pub fn admit(self: &Arc<Self>, address: IpAddr) -> Result<Ticket, CapReached> {
        let mut inner = self.lock();
        if inner.live.len() >= self.limits.max_connections && !inner.evict_oldest_pending(None) {
            return Err(CapReached::Total);
        }
        let from_address = inner.per_address.get(&address).copied().unwrap_or(0);
        if from_address >= self.limits.max_per_address && !inner.evict_oldest_pending(Some(address))
        {
            return Err(CapReached::Address);
        }
        let (evict, evicted) = oneshot::channel();
        let id = inner.next;
        inner.next += 1;
        inner.live.insert(
            id,
            Live {
                address,
                identity: None,
                evict: Some(evict),
            },
        );
        *inner.per_address.entry(address).or_insert(0) += 1;
        metrics::gauge!("fedq_https_connections").set(inner.live.len() as f64);
        Ok(Ticket {
            admission: Arc::clone(self),
            id,
            evicted: Some(evicted),
        })
    }

    /// Closes the oldest unfinished handshake (to free its descriptor); false if there is
    /// none.
    pub fn evict_oldest_pending(&self) -> bool {
        self.lock().evict_oldest_pending(None)
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.lock().live.len()
    }

    /// Resolves once no connection is open.
    pub async fn emptied(&self) {
        loop {
            // Registered before the check, so a release in between is not missed.
            let notified = self.emptied.notified();
            if self.open() == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// One admitted connection's place; dropping it releases the place.
#[derive(Debug)]
pub struct Ticket {
    admission: Arc<Admission>,
    id: u64,
    evicted: Option<oneshot::Receiver<()>>,
}

impl Ticket {
    /// Resolves if the connection is evicted before its handshake completes.
    pub async fn evicted(&mut self) {
        match self.evicted.as_mut() {
            Some(rx) => {
                if rx.await.is_ok() {
                    return;
                }
                std::future::pending::<()>().await;
            }
            None => std::future::pending::<()>().await,
        }
    }

    /// The handshake completed under `identity`: the connection can no longer be evicted.
    /// False if `identity` already holds its cap of connections (the connection then
    /// keeps its place under its address but is not counted under the identity), or if
    /// the connection was evicted meanwhile (see [`Ticket::is_evicted`]).
    pub fn established(&mut self, identity: &str) -> bool {
        self.evicted = None;
        let cap = self.admission.limits.max_per_identity;
        let mut inner = self.admission.lock();
        let Inner {
            live, per_identity, ..
        } = &mut *inner;
        let Some(entry) = live.get_mut(&self.id) else {
            return false;
        };
        entry.evict = None;
        let held = per_identity.entry(identity.to_owned()).or_insert(0);
        if *held >= cap {
            return false;
        }
        *held += 1;
        entry.identity = Some(identity.to_owned());
        true
    }

    /// Whether the connection lost its place (evicted before its handshake completed).
    pub fn is_evicted(&self) -> bool {
        !self.admission.lock().live.contains_key(&self.id)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut inner = self.admission.lock();
        if let Some(live) = inner.live.remove(&self.id) {
            inner.forget(&live);
        }
        metrics::gauge!("fedq_https_connections").set(inner.live.len() as f64);
        if inner.live.is_empty() {
            self.admission.emptied.notify_waiters();
        }
    }
}

/// What the connection's clock says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Within its limits.
    Fine,
    /// No request in flight for the idle timeout: close it politely.
    Idle,
    /// A request's headers did not arrive within the header timeout: drop it.
    Stalled,
}

#[derive(Debug)]
struct ActivityState {
    in_flight: usize,
    idle_since: Instant,
    /// When the first byte arrived while no request was in flight.
    read_while_idle: Option<Instant>,
}

/// What one connection is doing, as seen by its I/O (bytes read) and its service
/// (requests in flight).
#[derive(Debug)]
pub struct Activity {
    state: Mutex<ActivityState>,
}

impl Activity {
    /// A connection whose handshake completed at `now`.
    pub fn new(now: Instant) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(ActivityState {
                in_flight: 0,
                idle_since: now,
                read_while_idle: None,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, ActivityState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes arrived.
    pub fn read(&self, now: Instant) {
        let mut s = self.lock();
        if s.in_flight == 0 && s.read_while_idle.is_none() {
            s.read_while_idle = Some(now);
        }
    }

    /// A request's headers are complete and its handler runs.
    pub fn started(&self) {
        let mut s = self.lock();
        s.in_flight += 1;
        s.read_while_idle = None;
    }

    /// A request's handler finished.
    pub fn ended(&self, now: Instant) {
        let mut s = self.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        if s.in_flight == 0 {
            s.idle_since = now;
            s.read_while_idle = None;
        }
    }

    /// Whether the connection is within its limits at `now`. `heads` is true on HTTP/1.1,
    /// where bytes read with no request in flight can only be a request's head.
    pub fn verdict(&self, now: Instant, limits: &ConnectionLimits, heads: bool) -> Verdict {
        let s = self.lock();
        if s.in_flight > 0 {
            // The body has its own timeout in the handler.
            return Verdict::Fine;
        }
        if let (true, Some(first)) = (heads, s.read_while_idle) {
            if now.saturating_duration_since(first) >= limits.header_timeout {
                return Verdict::Stalled;
            }
            return Verdict::Fine;
        }
        if now.saturating_duration_since(s.idle_since) >= limits.idle_timeout {
            return Verdict::Idle;
        }
        Verdict::Fine
    }

    /// How often a connection's clock is looked at.
    pub fn tick(limits: &ConnectionLimits) -> Duration {
        (limits.header_timeout.min(limits.idle_timeout) / 8)
            .clamp(Duration::from_millis(25), Duration::from_millis(500))
    }
}

/// An I/O stream that tells its [`Activity`] when bytes arrive.
#[derive(Debug)]
pub struct Watched<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T> Watched<T> {
    /// Watches `inner`.
    pub fn new(inner: T, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read(Instant::now());
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Counts events and says when one may be logged: the first at once, then at most one
/// per `every`, carrying how many happened since the last one logged.
#[derive(Debug)]
pub struct Throttle {
    every: Duration,
    last: Option<Instant>,
    unreported: u64,
}

impl Throttle {
    /// At most one line per `every`.
    pub fn new(every: Duration) -> Self {
        Self {
            every,
            last: None,
            unreported: 0,
        }
    }

    /// One more event at `now`; `Some(n)` if it is to be logged, `n` events since the
    /// last line (this one included).
    pub fn note(&mut self, now: Instant) -> Option<u64> {
        self.unreported += 1;
        let due = self
            .last
            .is_none_or(|last| now.saturating_duration_since(last) >= self.every);
        if !due {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.unreported))
    }
}

/// How long the accept loop pauses after a failed accept: doubling from 5 ms to 1 s, back
/// to the start after an accept succeeds.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(5);
    const MAX: Duration = Duration::from_secs(1);

    /// At the start.
    pub fn new() -> Self {
        Self { next: Self::FIRST }
    }

    /// An accept failed: the pause before the next.
    pub fn failed(&mut self) -> Duration {
        let pause = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        pause
    }

    /// An accept succeeded.
    pub fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether an accept error means the process (or system) ran out of descriptors or
/// memory, which only closing something cures.
pub fn out_of_descriptors(e: &std::io::Error) -> bool {
    // EMFILE 24, ENFILE 23, ENOBUFS 105, ENOMEM 12 on Linux.
    matches!(e.raw_os_error(), Some(24 | 23 | 105 | 12))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: usize, per_address: usize, per_identity: usize) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: total,
            max_per_address: per_address,
            max_per_identity: per_identity,
            ..ConnectionLimits::default()
        }
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    fn is_evicted(t: &mut Ticket) -> bool {
        match t.evicted.as_mut() {
            Some(rx) => rx.try_recv().is_ok(),
            None => false,
        }
    }

    #[test]
    fn a_full_listener_evicts_the_oldest_handshake_and_never_an_established_connection() {
        let admission = Admission::new(limits(3, 10, 10));
        let mut a = admission.admit(ip(1)).unwrap();
        let mut b = admission.admit(ip(1)).unwrap();
        let mut c = admission.admit(ip(1)).unwrap();
        assert!(a.established("requester/x"));
        // Full: the oldest still handshaking (b) goes, not the established a.
        let mut d = admission.admit(ip(2)).unwrap();
        assert!(!is_evicted(&mut a) && is_evicted(&mut b) && !is_evicted(&mut c));
        assert_eq!(admission.open(), 3);
        assert!(c.established("requester/x") && d.established("requester/y"));
        // Everything established: a new one is refused, nobody evicted.
        assert_eq!(admission.admit(ip(3)).unwrap_err(), CapReached::Total);
        drop(b);
        assert_eq!(
            admission.open(),
            3,
            "an evicted ticket is not released twice"
        );
        drop(c);
        assert!(admission.admit(ip(3)).is_ok());
    }

    #[test]
    fn one_address_cannot_take_another_address_s_places() {
        let admission = Admission::new(limits(100, 2, 10));
        let mut flood: Vec<Ticket> = (0..5).map(|_| admission.admit(ip(9)).unwrap()).collect();
        // Each new one from the same address pushed out the oldest of that address only.
        assert_eq!(admission.open(), 2);
        let evicted = flood.iter_mut().map(is_evicted).filter(|e| *e).count();
        assert_eq!(evicted, 3);
        let mut other = admission.admit(ip(1)).unwrap();
        assert!(!is_evicted(&mut other));
        for t in flood.iter_mut().filter(|t| t.evicted.is_some()) {
            t.established("requester/flood");
        }
        assert_eq!(admission.admit(ip(9)).unwrap_err(), CapReached::Address);
        assert!(admission.admit(ip(1)).is_ok());
    }

    #[test]
    fn an_identity_holds_at_most_its_cap() {
        let admission = Admission::new(limits(100, 100, 2));
        let mut t: Vec<Ticket> = (0..4).map(|_| admission.admit(ip(1)).unwrap()).collect();
        let held: Vec<bool> = t.iter_mut().map(|t| t.established("requester/a")).collect();
        assert_eq!(held, [true, true, false, false]);
        let mut other = admission.admit(ip(1)).unwrap();
        assert!(other.established("requester/b"));
        t.remove(0);
        let mut again = admission.admit(ip(1)).unwrap();
        assert!(
            again.established("requester/a"),
            "a released place is free again"
        );
    }

    #[test]
    fn descriptors_are_freed_by_evicting_the_oldest_handshake() {
        let admission = Admission::new(limits(100, 100, 100));
        assert!(!admission.evict_oldest_pending());
        let mut a = admission.admit(ip(1)).unwrap();
        let mut b = admission.admit(ip(1)).unwrap();
        a.established("requester/a");
        assert!(admission.evict_oldest_pending());
        assert!(is_evicted(&mut b));
        assert!(!admission.evict_oldest_pending());
    }

    #[test]
    fn the_clock_of_a_connection() {
        let l = ConnectionLimits {
            header_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(10),
            ..ConnectionLimits::default()
        };
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let a = Activity::new(t0);
        assert_eq!(a.verdict(at(9), &l, true), Verdict::Fine);
        assert_eq!(a.verdict(at(10), &l, true), Verdict::Idle);
        // A head started at 3 s must be complete by 5 s, however it trickles.
        let a = Activity::new(t0);
        a.read(at(3));
        a.read(at(4));
        assert_eq!(a.verdict(at(4), &l, true), Verdict::Fine);
        assert_eq!(a.verdict(at(5), &l, true), Verdict::Stalled);
        // On HTTP/2 bytes between requests are frames, not heads: only idleness counts.
        assert_eq!(a.verdict(at(5), &l, false), Verdict::Fine);
        assert_eq!(a.verdict(at(10), &l, false), Verdict::Idle);
        // A request in flight is never idle; the idle clock restarts when it ends.
        let a = Activity::new(t0);
        a.read(at(1));
        a.started();
        assert_eq!(a.verdict(at(30), &l, true), Verdict::Fine);
        a.ended(at(30));
        assert_eq!(a.verdict(at(39), &l, true), Verdict::Fine);
        assert_eq!(a.verdict(at(40), &l, true), Verdict::Idle);
    }

    #[test]
    fn the_throttle_logs_the_first_then_once_per_period_with_the_count() {
        let mut t = Throttle::new(Duration::from_secs(1));
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        assert_eq!(t.note(ms(0)), Some(1));
        let logged: Vec<u64> = (1..=2500).filter_map(|i| t.note(ms(i))).collect();
        // 2,500 events over 2.5 s: two more lines, together counting every event.
        assert_eq!(logged, vec![1000, 1000]);
        assert_eq!(t.note(ms(5000)), Some(501));
    }

    #[test]
    fn the_backoff_doubles_to_a_second_and_resets() {
        let mut b = Backoff::new();
        let pauses: Vec<u64> = (0..10).map(|_| b.failed().as_millis() as u64).collect();
        assert_eq!(pauses, [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        b.reset();
        assert_eq!(b.failed(), Duration::from_millis(5));
        assert!(out_of_descriptors(&std::io::Error::from_raw_os_error(24)));
        assert!(!out_of_descriptors(&std::io::Error::from_raw_os_error(103)));
    }
}
