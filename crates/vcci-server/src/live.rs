//! Live updates, the hub behind `GET /api/v1/events` (Server-Sent Events): each
//! organization's events on this node, a bounded window of them for resuming with
//! `Last-Event-ID`, and what ends streams (a revoked key, the node stopping).
//!
//! Events are per organization and never cross: a stream subscribes to its own
//! organization's channel only. Kinds:
//! - `data`: the organization's data changed; `{"generation": n}`. Every node derives it
//!   from its own view of generations (its writes, Redis, the database poll), so it is
//!   emitted locally on each node and never sent through Redis.
//! - `job`: a job was queued, ran, progressed or ended; the job as `GET /api/v1/jobs/{id}`
//!   shows it, without its `errors` list.
//! - `period`: a reporting year was closed, reopened or restated; the period.
//! - `review`: the classification review queue changed size; `{"lines", "spend_usd",
//!   "co2e_kg"}`. Like `data`, derived on each node (after a data change of an organization
//!   with streams on it, `ReviewSizes`), never sent through Redis.
//!
//! `job` and `period` events happen on one node; through Redis (when configured) the
//! other nodes emit them to their own streams too (`emit_shared`).
//!
//! Event ids are `{epoch}-{seq}`: `epoch` is random per process, `seq` counts this node's
//! events. A stream that comes back with the id of an event still in the window (the last
//! `WINDOW_EVENTS` of its organization, none older than `WINDOW_AGE`) gets what it missed;
//! any other id (another node's, a restarted node's, one that fell out of the window) gets
//! a `reset` event: the client re-reads what it shows.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc, watch};

/// Events of an organization kept for resuming.
pub const WINDOW_EVENTS: usize = 256;
/// No event older than this is replayed.
pub const WINDOW_AGE: Duration = Duration::from_secs(300);
/// Events a slow stream may fall behind by before it is told to reset.
const CHANNEL: usize = 128;
/// Events waiting to be sent to the other nodes (beyond: dropped and counted).
const OUTBOX: usize = 4096;
/// Every this many events, organizations with no stream and nothing in the window are
/// forgotten (so the node's memory follows its active organizations, not all it has seen).
const SWEEP_EVERY: u64 = 1024;

/// One event as streams send it.
#[derive(Debug)]
pub struct LiveEvent {
    pub id: String,
    seq: u64,
    pub kind: &'static str,
    /// JSON.
    pub data: String,
    at: Instant,
}

/// An event for the other nodes (through Redis).
#[derive(Debug)]
pub struct Outgoing {
    pub org: i64,
    pub kind: &'static str,
    pub data: String,
}

/// What every stream watches besides its organization's events.
#[derive(Debug, Clone, Default)]
pub struct Control {
    /// Keys found revoked while streams were open on them.
    pub revoked: Arc<HashSet<i64>>,
    /// The node is shutting down.
    pub closing: bool,
}

/// How a new stream starts.
#[derive(Debug)]
pub enum Start {
    /// No `Last-Event-ID`.
    Fresh,
    /// The events after the client's last one.
    Replay(Vec<Arc<LiveEvent>>),
    /// The client's last event is not in the window: it must re-read.
    Reset,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct LiveStats {
    pub streams: AtomicU64,
    pub opened: AtomicU64,
    pub events: AtomicU64,
    pub resets: AtomicU64,
    pub remote: AtomicU64,
    pub dropped: AtomicU64,
}

#[derive(Debug)]
struct OrgLive {
    tx: broadcast::Sender<Arc<LiveEvent>>,
    ring: VecDeque<Arc<LiveEvent>>,
    /// The `seq` of the last event dropped from the window (0: none yet).
    pruned_upto: u64,
}

impl OrgLive {
    fn prune(&mut self, now: Instant) {
        while let Some(front) = self.ring.front() {
            if self.ring.len() > WINDOW_EVENTS || now.duration_since(front.at) > WINDOW_AGE {
                self.pruned_upto = front.seq;
                self.ring.pop_front();
            } else {
                break;
            }
        }
    }
}

/// The live events of one node.
#[derive(Debug)]
pub struct Hub {
    epoch: String,
    seq: AtomicU64,
    orgs: Mutex<HashMap<i64, OrgLive>>,
    control: watch::Sender<Control>,
    /// Open streams per key id (checked when keys are revoked).
    keys: Mutex<HashMap<i64, usize>>,
    outbox: mpsc::Sender<Outgoing>,
    outbox_rx: Mutex<Option<mpsc::Receiver<Outgoing>>>,
    pub stats: LiveStats,
}

impl Default for Hub {
    fn default() -> Self {
        Hub::new()
    }
}

impl Hub {
    pub fn new() -> Hub {
        let mut b = [0u8; 4];
        let _ = getrandom::fill(&mut b);
        let (outbox, rx) = mpsc::channel(OUTBOX);
        Hub {
            epoch: b.iter().map(|x| format!("{x:02x}")).collect(),
            seq: AtomicU64::new(0),
            orgs: Mutex::new(HashMap::new()),
            control: watch::Sender::new(Control::default()),
            keys: Mutex::new(HashMap::new()),
            outbox,
            outbox_rx: Mutex::new(Some(rx)),
            stats: LiveStats::default(),
        }
    }

    fn orgs(&self) -> std::sync::MutexGuard<'_, HashMap<i64, OrgLive>> {
        self.orgs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Emits an event to this node's streams of `org`.
    pub fn emit(&self, org: i64, kind: &'static str, data: String) {
        let now = Instant::now();
        let mut orgs = self.orgs();
        // Numbered under the lock: the window is in `seq` order.
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        if seq.is_multiple_of(SWEEP_EVERY) {
            // Organizations nobody listens to whose last event left the window.
            orgs.retain(|_, o| {
                o.tx.receiver_count() > 0
                    || o.ring
                        .back()
                        .is_some_and(|e| now.duration_since(e.at) <= WINDOW_AGE)
            });
        }
        let o = orgs.entry(org).or_insert_with(|| self.new_org(seq - 1));
        let ev = Arc::new(LiveEvent {
            id: format!("{}-{seq}", self.epoch),
            seq,
            kind,
            data,
            at: now,
        });
        o.ring.push_back(Arc::clone(&ev));
        o.prune(now);
        // No receiver is not an error: the event waits in the window.
        let _ = o.tx.send(ev);
        self.stats.events.fetch_add(1, Ordering::Relaxed);
    }

    /// The entry of an organization this node holds nothing of (any more). Its window
    /// starts after `seq`: a client that comes back with an earlier id may have missed
    /// events that were swept, so it gets `reset`.
    fn new_org(&self, seq: u64) -> OrgLive {
        OrgLive {
            tx: broadcast::Sender::new(CHANNEL),
            ring: VecDeque::new(),
            pruned_upto: seq,
        }
    }

    /// Whether this node has open streams of `org`.
    pub fn has_streams(&self, org: i64) -> bool {
        self.orgs()
            .get(&org)
            .is_some_and(|o| o.tx.receiver_count() > 0)
    }

    /// Emits an event here and queues it for the other nodes.
    pub fn emit_shared(&self, org: i64, kind: &'static str, data: String, to_others: bool) {
        if to_others
            && self
                .outbox
                .try_send(Outgoing {
                    org,
                    kind,
                    data: data.clone(),
                })
                .is_err()
        {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
        self.emit(org, kind, data);
    }

    /// An event another node emitted (through Redis); unknown kinds are ignored.
    pub fn emit_remote(&self, org: i64, kind: &str, data: String) {
        let kind = match kind {
            "job" => "job",
            "period" => "period",
            _ => return,
        };
        self.stats.remote.fetch_add(1, Ordering::Relaxed);
        self.emit(org, kind, data);
    }

    /// The queue of events for the other nodes (taken once, by the task that sends them).
    pub fn take_outbox(&self) -> Option<mpsc::Receiver<Outgoing>> {
        self.outbox_rx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// A new stream of `org` for the key `key_id`, resuming after `last_id` if given.
    pub fn subscribe(self: &Arc<Self>, org: i64, key_id: i64, last_id: Option<&str>) -> Stream {
        let now = Instant::now();
        let (rx, start) = {
            let mut orgs = self.orgs();
            let o = orgs
                .entry(org)
                .or_insert_with(|| self.new_org(self.seq.load(Ordering::Relaxed)));
            o.prune(now);
            // Subscribed and read under one lock: nothing is missed or sent twice.
            let rx = o.tx.subscribe();
            let start = match last_id {
                None => Start::Fresh,
                Some(id) => match self.parse_id(id) {
                    Some(seq)
                        if seq >= o.pruned_upto && seq <= self.seq.load(Ordering::Relaxed) =>
                    {
                        Start::Replay(o.ring.iter().filter(|e| e.seq > seq).cloned().collect())
                    }
                    _ => Start::Reset,
                },
            };
            (rx, start)
        };
        if matches!(start, Start::Reset) {
            self.stats.resets.fetch_add(1, Ordering::Relaxed);
        }
        *self
            .keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key_id)
            .or_insert(0) += 1;
        self.stats.streams.fetch_add(1, Ordering::Relaxed);
        self.stats.opened.fetch_add(1, Ordering::Relaxed);
        Stream {
            rx,
            control: self.control.subscribe(),
            start,
            key_id,
            hub: Arc::clone(self),
        }
    }

    /// This node's `seq` of an event id, if the id is this process's.
    fn parse_id(&self, id: &str) -> Option<u64> {
        let (epoch, seq) = id.split_once('-')?;
        if epoch != self.epoch {
            return None;
        }
        seq.parse().ok()
    }

    /// The keys streams are open on.
    pub fn open_keys(&self) -> Vec<i64> {
        self.keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .copied()
            .collect()
    }

    /// Ends the streams of these (revoked) keys.
    pub fn revoke(&self, keys: &[i64]) {
        if keys.is_empty() {
            return;
        }
        self.control.send_modify(|c| {
            let mut s = (*c.revoked).clone();
            s.extend(keys.iter().copied());
            c.revoked = Arc::new(s);
        });
    }

    /// Ends every stream: the node is stopping (its server waits for open responses).
    pub fn close(&self) {
        self.control.send_modify(|c| c.closing = true);
    }
}

/// One open stream: its organization's events, and what may end it.
#[derive(Debug)]
pub struct Stream {
    pub rx: broadcast::Receiver<Arc<LiveEvent>>,
    pub control: watch::Receiver<Control>,
    pub start: Start,
    pub key_id: i64,
    hub: Arc<Hub>,
}

/// Why a stream stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    KeyRevoked,
    ShuttingDown,
}

impl End {
    pub fn as_str(self) -> &'static str {
        match self {
            End::KeyRevoked => "key_revoked",
            End::ShuttingDown => "shutting_down",
        }
    }
}

/// What a stream sends next.
#[derive(Debug)]
pub enum Next {
    Event(Arc<LiveEvent>),
    /// It fell behind by more than the channel holds.
    Lagged,
    End(End),
}

impl Stream {
    /// Whether the stream must end now.
    pub fn ended(&self) -> Option<End> {
        let c = self.control.borrow();
        if c.closing {
            Some(End::ShuttingDown)
        } else if c.revoked.contains(&self.key_id) {
            Some(End::KeyRevoked)
        } else {
            None
        }
    }

    /// Waits for the next thing to send.
    pub async fn next(&mut self) -> Next {
        loop {
            if let Some(e) = self.ended() {
                return Next::End(e);
            }
            tokio::select! {
                r = self.rx.recv() => match r {
                    Ok(ev) => return Next::Event(ev),
                    Err(broadcast::error::RecvError::Lagged(_)) => return Next::Lagged,
                    Err(broadcast::error::RecvError::Closed) => return Next::End(End::ShuttingDown),
                },
                changed = self.control.changed() => {
                    if changed.is_err() {
                        return Next::End(End::ShuttingDown);
                    }
                }
            }
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.hub.stats.streams.fetch_sub(1, Ordering::Relaxed);
        let mut keys = self.hub.keys.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = keys.get_mut(&self.key_id) {
            *n -= 1;
            if *n == 0 {
                keys.remove(&self.key_id);
            }
        }
    }
}

/// Organizations whose review queue may have changed size (their data changed) while this
/// node has streams of them: a task (`App::start_background`) reads each one's queue size
/// and emits `review` when it differs from what it last emitted.
#[derive(Debug, Default)]
pub struct ReviewSizes {
    dirty: Mutex<HashSet<i64>>,
    wake: tokio::sync::Notify,
    /// The last `review` event's data per organization.
    last: Mutex<HashMap<i64, String>>,
}

/// Organizations whose last review size is remembered, at most (beyond: forgotten, and the
/// next size is emitted again).
const REVIEW_SIZES: usize = 10_000;

impl ReviewSizes {
    /// `org`'s data changed.
    pub fn mark(&self, org: i64) {
        self.dirty
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(org);
        self.wake.notify_one();
    }

    /// The organizations marked since the last call (waits for one).
    pub async fn next(&self) -> Vec<i64> {
        loop {
            let orgs: Vec<i64> = self
                .dirty
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .drain()
                .collect();
            if !orgs.is_empty() {
                return orgs;
            }
            self.wake.notified().await;
        }
    }

    /// Whether `data` differs from `org`'s last `review` event (and remembers it). Before
    /// its first event an organization's queue is taken as `empty` (an empty queue is not
    /// news).
    pub fn changed(&self, org: i64, data: &str, empty: bool) -> bool {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let same = match last.get(&org) {
            Some(d) => d == data,
            None => empty,
        };
        if same {
            return false;
        }
        if last.len() >= REVIEW_SIZES {
            last.clear();
        }
        last.insert(org, data.to_owned());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(s: &Stream) -> Vec<String> {
        match &s.start {
            Start::Replay(v) => v.iter().map(|e| e.id.clone()).collect(),
            Start::Fresh => vec!["fresh".into()],
            Start::Reset => vec!["reset".into()],
        }
    }

    #[tokio::test]
    async fn streams_get_their_organization_only_and_resume_within_the_window() {
        let hub = Arc::new(Hub::new());
        let mut a = hub.subscribe(1, 10, None);
        let mut b = hub.subscribe(2, 20, None);
        hub.emit(1, "data", "{\"generation\":1}".into());
        hub.emit(2, "data", "{\"generation\":7}".into());
        let Next::Event(e) = a.next().await else {
            panic!()
        };
        assert_eq!((e.kind, e.data.as_str()), ("data", "{\"generation\":1}"));
        let Next::Event(e2) = b.next().await else {
            panic!()
        };
        assert_eq!(e2.data, "{\"generation\":7}");
        // Resuming after a's event: what came later for org 1 only.
        hub.emit(1, "job", "{}".into());
        hub.emit(2, "job", "{}".into());
        hub.emit(1, "period", "{}".into());
        let r = hub.subscribe(1, 10, Some(&e.id));
        assert_eq!(ids(&r).len(), 2);
        match &r.start {
            Start::Replay(v) => assert_eq!(
                v.iter().map(|e| e.kind).collect::<Vec<_>>(),
                ["job", "period"]
            ),
            _ => panic!(),
        }
        // Another process's id, a malformed one, one from the future: reset.
        for bad in ["ffffffff-1", "nonsense", &format!("{}-999", hub.epoch)] {
            assert_eq!(ids(&hub.subscribe(1, 10, Some(bad))), ["reset"]);
        }
        assert_eq!(ids(&hub.subscribe(1, 10, None)), ["fresh"]);
    }

    #[tokio::test]
    async fn an_id_that_fell_out_of_the_window_resets() {
        let hub = Arc::new(Hub::new());
        hub.emit(1, "data", "{}".into());
        let first = format!("{}-1", hub.epoch);
        assert_eq!(
            ids(&hub.subscribe(1, 1, Some(&first))),
            Vec::<String>::new()
        );
        // Events 2..=WINDOW_EVENTS + 2: the window holds the last WINDOW_EVENTS (3..), so a
        // client whose last event was 2 missed none of them, and one at 1 missed event 2.
        for _ in 0..=WINDOW_EVENTS {
            hub.emit(1, "data", "{}".into());
        }
        assert_eq!(ids(&hub.subscribe(1, 1, Some(&first))), ["reset"]);
        let second = format!("{}-2", hub.epoch);
        assert_eq!(
            ids(&hub.subscribe(1, 1, Some(&second))).len(),
            WINDOW_EVENTS
        );
    }

    #[tokio::test]
    async fn a_revoked_key_and_a_closing_node_end_streams() {
        let hub = Arc::new(Hub::new());
        let mut a = hub.subscribe(1, 10, None);
        let mut b = hub.subscribe(1, 11, None);
        assert_eq!(hub.open_keys().len(), 2);
        hub.revoke(&[10]);
        assert!(matches!(a.next().await, Next::End(End::KeyRevoked)));
        hub.emit(1, "data", "{}".into());
        assert!(matches!(b.next().await, Next::Event(_)));
        drop(a);
        assert_eq!(hub.open_keys(), [11]);
        assert_eq!(hub.stats.streams.load(Ordering::Relaxed), 1);
        hub.close();
        assert!(matches!(b.next().await, Next::End(End::ShuttingDown)));
    }

    #[tokio::test]
    async fn quiet_organizations_are_forgotten_and_their_old_ids_reset() {
        let hub = Arc::new(Hub::new());
        hub.emit(7, "data", "{}".into());
        let old = format!("{}-1", hub.epoch);
        let listened = hub.subscribe(8, 1, None);
        // Age org 7's only event out of the window, then pass a sweep.
        {
            let mut orgs = hub.orgs();
            let ring = &mut orgs.get_mut(&7).unwrap().ring;
            let e = &ring[0];
            ring[0] = Arc::new(LiveEvent {
                id: e.id.clone(),
                seq: e.seq,
                kind: e.kind,
                data: e.data.clone(),
                at: e
                    .at
                    .checked_sub(WINDOW_AGE + Duration::from_secs(1))
                    .unwrap(),
            });
        }
        for _ in 0..SWEEP_EVERY {
            hub.emit(9, "data", "{}".into());
        }
        assert!(!hub.orgs().contains_key(&7), "forgotten");
        assert!(hub.orgs().contains_key(&8), "a stream listens: kept");
        // Coming back with the id of the swept event: reset, not a silent empty replay.
        assert_eq!(ids(&hub.subscribe(7, 1, Some(&old))), ["reset"]);
        drop(listened);
    }

    #[tokio::test]
    async fn a_stream_that_falls_behind_is_told() {
        let hub = Arc::new(Hub::new());
        let mut a = hub.subscribe(1, 10, None);
        for _ in 0..CHANNEL + 1 {
            hub.emit(1, "data", "{}".into());
        }
        assert!(matches!(a.next().await, Next::Lagged));
    }
}
