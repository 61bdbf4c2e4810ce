//! `vcci loadtest --events-streams N`: live updates under load. Opens N idle
//! `GET /api/v1/events` streams on one node, holds them, reads the node's memory from its
//! `/metrics` before and after, then makes writes one at a time and measures, for each
//! write, when every stream received its `data` event.
//!
//! Streams are raw HTTP/1.1 connections (one socket each, nothing else per stream than a
//! small read buffer), so the client side stays light enough to hold as many streams as the
//! file-descriptor limit allows.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use vcci_server::perf::Histogram;

use crate::client::{Conn, Req, Target};

/// Settings of a run.
#[derive(Debug, Clone)]
pub struct EventsConfig {
    pub target: Target,
    pub key: String,
    /// Streams to open.
    pub streams: usize,
    /// Connections opened at once while opening.
    pub opening: usize,
    /// How long the idle streams are held (heartbeats are counted meanwhile).
    pub hold: Duration,
    /// Writes made one after another; each is timed to its last stream.
    pub writes: usize,
    /// The longest a write's events may take to reach every stream.
    pub timeout: Duration,
}

/// What a run measured.
#[derive(Debug, Serialize)]
pub struct EventsReport {
    pub streams_requested: usize,
    pub streams_open: usize,
    /// Streams refused or broken while opening, with the first reason.
    pub open_failures: usize,
    pub first_failure: Option<String>,
    pub open_seconds: f64,
    /// The node's resident memory before opening, with half the streams open, with all.
    pub rss_before_bytes: Option<f64>,
    pub rss_half_bytes: Option<f64>,
    pub rss_open_bytes: Option<f64>,
    /// The second half's growth per stream.
    pub rss_per_stream_bytes: Option<f64>,
    pub hold_seconds: f64,
    /// Heartbeats received by all streams while held, and streams still open after it.
    pub heartbeats: u64,
    pub streams_after_hold: usize,
    pub writes: usize,
    /// Per write: from sending the write to the last stream's event (ms).
    pub write_to_all_ms: Vec<f64>,
    /// Over every (write, stream): from sending the write to that stream's event.
    pub event_p50_ms: f64,
    pub event_p99_ms: f64,
    pub event_max_ms: f64,
    /// Events expected and received.
    pub events_expected: u64,
    pub events_received: u64,
}

impl EventsReport {
    pub fn table(&self) -> String {
        let mb = |b: Option<f64>| b.map_or("-".into(), |b| format!("{:.1} MiB", b / 1048576.0));
        let mut s = String::new();
        s += &format!(
            "streams: {} of {} open in {:.1} s ({} failed{})\n",
            self.streams_open,
            self.streams_requested,
            self.open_seconds,
            self.open_failures,
            self.first_failure
                .as_ref()
                .map(|f| format!(", first: {f}"))
                .unwrap_or_default()
        );
        s += &format!(
            "node memory: {} before, {} with half the streams open, {} with all: {} per stream (the second half)\n",
            mb(self.rss_before_bytes),
            mb(self.rss_half_bytes),
            mb(self.rss_open_bytes),
            self.rss_per_stream_bytes
                .map_or("-".into(), |b| format!("{:.1} KiB", b / 1024.0))
        );
        s += &format!(
            "held idle {:.0} s: {} heartbeats, {} streams still open\n",
            self.hold_seconds, self.heartbeats, self.streams_after_hold
        );
        let mut all = self.write_to_all_ms.clone();
        all.sort_by(f64::total_cmp);
        let med = all.get(all.len() / 2).copied().unwrap_or(0.0);
        s += &format!(
            "{} writes: write to its event on every stream: median {:.1} ms, max {:.1} ms\n",
            self.writes,
            med,
            all.last().copied().unwrap_or(0.0)
        );
        s += &format!(
            "per stream: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} of {} events received)\n",
            self.event_p50_ms,
            self.event_p99_ms,
            self.event_max_ms,
            self.events_received,
            self.events_expected
        );
        s
    }
}

/// What the streams saw, together.
#[derive(Default)]
struct Seen {
    data: AtomicU64,
    heartbeats: AtomicU64,
    open: AtomicUsize,
    /// When each `data` event arrived (ms since the start).
    arrivals: std::sync::Mutex<Vec<f64>>,
}

/// Opens one stream: sends the request, reads until the `ready` event.
async fn open(t: &Target, key: &str) -> Result<(TcpStream, Vec<u8>), String> {
    let mut s = TcpStream::connect(&t.addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let req = format!(
        "GET /api/v1/events HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {key}\r\nAccept: text/event-stream\r\n\r\n",
        t.host
    );
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| format!("send: {e}"))?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = s.read(&mut chunk).await.map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("closed before ready".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() >= 12 && !buf.starts_with(b"HTTP/1.1 200") {
            let line = buf.split(|b| *b == b'\r').next().unwrap_or_default();
            return Err(String::from_utf8_lossy(line).into_owned());
        }
        if let Some(at) = find(&buf, b"event: ready") {
            buf.drain(..at + 12);
            return Ok((s, buf));
        }
        if buf.len() > 64 << 10 {
            return Err("no ready event".into());
        }
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

fn count(h: &[u8], n: &[u8]) -> u64 {
    h.windows(n.len()).filter(|w| *w == n).count() as u64
}

/// Reads a stream until it ends, counting `data` events (with their arrival times) and
/// heartbeats.
async fn read(mut s: TcpStream, mut carry: Vec<u8>, seen: Arc<Seen>, started: Instant) {
    let mut chunk = vec![0u8; 2048];
    loop {
        // Matches are counted in what came, keeping a short tail for one split across reads.
        let data = count(&carry, b"event: data");
        let beats = count(&carry, b": heartbeat");
        if data > 0 {
            let at = started.elapsed().as_secs_f64() * 1000.0;
            seen.arrivals
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(std::iter::repeat_n(at, data as usize));
            seen.data.fetch_add(data, Ordering::Relaxed);
        }
        seen.heartbeats.fetch_add(beats, Ordering::Relaxed);
        // Keep what a match split across reads could start with (one byte short of a
        // pattern, so nothing counted is counted again).
        let keep = carry.len().min(10);
        carry.drain(..carry.len() - keep);
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => carry.extend_from_slice(&chunk[..n]),
        }
    }
    seen.open.fetch_sub(1, Ordering::Relaxed);
}

/// The node's resident memory, from its `/metrics`.
async fn rss(t: &Target) -> Option<f64> {
    crate::metrics_text(t)
        .await?
        .lines()
        .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
        .and_then(|v| v.trim().parse().ok())
}

/// Runs the measurement.
pub async fn run(cfg: EventsConfig) -> Result<EventsReport, String> {
    let t = cfg.target.clone();
    let rss_before = rss(&t).await;
    let seen = Arc::new(Seen::default());
    let started = Instant::now();
    // Open the streams, `opening` at a time, in two halves: the node's memory is read after
    // each, and the second half's growth is the cost of a stream (the first also pays for
    // the allocator's and runtime's first growth).
    let sem = Arc::new(tokio::sync::Semaphore::new(cfg.opening.max(1)));
    let mut readers = tokio::task::JoinSet::new();
    let (mut failures, mut first_failure) = (0, None);
    let mut rss_half = None;
    let mut open_half = 0;
    let half = cfg.streams / 2;
    for n in [half, cfg.streams - half] {
        let mut opening = tokio::task::JoinSet::new();
        for _ in 0..n {
            let (t, key, sem) = (t.clone(), cfg.key.clone(), Arc::clone(&sem));
            opening.spawn(async move {
                let _p = sem.acquire_owned().await.ok();
                open(&t, &key).await
            });
        }
        while let Some(r) = opening.join_next().await {
            match r.map_err(|e| e.to_string()).and_then(|x| x) {
                Ok((s, carry)) => {
                    seen.open.fetch_add(1, Ordering::Relaxed);
                    readers.spawn(read(s, carry, Arc::clone(&seen), started));
                }
                Err(e) => {
                    failures += 1;
                    first_failure.get_or_insert(e);
                }
            }
        }
        if rss_half.is_none() {
            tokio::time::sleep(Duration::from_millis(500)).await;
            rss_half = rss(&t).await;
            open_half = seen.open.load(Ordering::Relaxed);
        }
    }
    let open_seconds = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let open_n = seen.open.load(Ordering::Relaxed);
    let rss_open = rss(&t).await;
    // Hold them idle.
    let beats0 = seen.heartbeats.load(Ordering::Relaxed);
    tokio::time::sleep(cfg.hold).await;
    let heartbeats = seen.heartbeats.load(Ordering::Relaxed) - beats0;
    let after_hold = seen.open.load(Ordering::Relaxed);
    // Writes, one at a time: each waits for its event on every open stream.
    let mut writer = Conn::open(&t).await.map_err(|e| format!("connect: {e}"))?;
    let mut sent_at = Vec::new();
    let mut write_to_all = Vec::new();
    let base = seen.data.load(Ordering::Relaxed);
    for i in 0..cfg.writes {
        let body = serde_json::json!({"transactions": [{
            "transaction_id": format!("events-bench-{}-{i}", std::process::id()),
            "date": "2024-01-15", "amount": 100 + i, "currency": "USD", "naics_code": "484121"
        }]})
        .to_string();
        let r = Req {
            name: "write",
            method: "POST",
            path: "/api/v1/transactions".into(),
            content_type: Some("application/json"),
            body: body.into_bytes(),
        };
        let t0 = started.elapsed().as_secs_f64() * 1000.0;
        let w = Instant::now();
        let resp = writer
            .send(&t, &cfg.key, &r, Duration::from_secs(30))
            .await
            .map_err(|e| format!("write: {e}"))?;
        if resp.status != 200 {
            return Err(format!("the write was answered {}", resp.status));
        }
        sent_at.push(t0);
        let want = base + ((i + 1) * after_hold) as u64;
        while seen.data.load(Ordering::Relaxed) < want && w.elapsed() < cfg.timeout {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        write_to_all.push(w.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let received = seen.data.load(Ordering::Relaxed) - base;
    readers.abort_all();
    // Writes are made one at a time, each after the last one's events arrived (or timed
    // out): an event belongs to the latest write sent before it arrived.
    let arrivals = std::mem::take(&mut *seen.arrivals.lock().unwrap_or_else(|p| p.into_inner()));
    let mut hist = Histogram::default();
    let mut max: f64 = 0.0;
    for a in arrivals {
        let k = sent_at.partition_point(|t| *t <= a);
        if k == 0 {
            continue; // before the first write
        }
        let ms = a - sent_at[k - 1];
        hist.record(Duration::from_secs_f64(ms.max(0.0) / 1000.0));
        max = max.max(ms);
    }
    Ok(EventsReport {
        streams_requested: cfg.streams,
        streams_open: open_n,
        open_failures: failures,
        first_failure,
        open_seconds,
        rss_before_bytes: rss_before,
        rss_open_bytes: rss_open,
        rss_half_bytes: rss_half,
        rss_per_stream_bytes: match (rss_half, rss_open) {
            (Some(a), Some(b)) if open_n > open_half => Some((b - a) / (open_n - open_half) as f64),
            _ => None,
        },
        hold_seconds: cfg.hold.as_secs_f64(),
        heartbeats,
        streams_after_hold: after_hold,
        writes: cfg.writes,
        write_to_all_ms: write_to_all,
        event_p50_ms: hist.quantile_ms(0.5).unwrap_or(0.0),
        event_p99_ms: hist.quantile_ms(0.99).unwrap_or(0.0),
        event_max_ms: max,
        events_expected: (cfg.writes * after_hold) as u64,
        events_received: received,
    })
}
