//! Recent performance per route: latency percentiles, throughput and error rates over the
//! last 1, 5 and 15 minutes, for `GET /api/v1/admin/performance`.
//!
//! Latencies go into log-linear histograms (buckets 4 % wide, 1 µs to ~17 min), one per route
//! and 10-second slot; a window's percentiles come from the sum of its slots' histograms, so a
//! reported percentile is within one bucket (≤ 4 %) of the exact one.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Relative width of a bucket.
const GROWTH: f64 = 1.04;
/// Buckets from 1 µs up to 1 µs × 1.04^N.
const N_BUCKETS: usize = 528;
const SLOT_SECS: u64 = 10;
/// Slots kept: 15 minutes.
const SLOTS: u64 = 90;

/// A latency histogram.
#[derive(Clone, Debug)]
pub struct Histogram {
    counts: Box<[u32; N_BUCKETS]>,
    total: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: Box::new([0; N_BUCKETS]),
            total: 0,
        }
    }
}

fn bucket(micros: f64) -> usize {
    if micros <= 1.0 {
        0
    } else {
        ((micros.ln() / GROWTH.ln()) as usize + 1).min(N_BUCKETS - 1)
    }
}

/// The value a bucket stands for (its geometric middle), in µs.
fn bucket_value(i: usize) -> f64 {
    if i == 0 {
        1.0
    } else {
        GROWTH.powf(i as f64 - 0.5)
    }
}

impl Histogram {
    pub fn record(&mut self, d: Duration) {
        self.counts[bucket(d.as_secs_f64() * 1e6)] += 1;
        self.total += 1;
    }

    pub fn merge(&mut self, o: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(o.counts.iter()) {
            *a += *b;
        }
        self.total += o.total;
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// The `q` quantile (0..=1) in milliseconds; `None` when empty.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0u64;
        for (i, c) in self.counts.iter().enumerate() {
            seen += u64::from(*c);
            if seen >= rank {
                return Some(bucket_value(i) / 1000.0);
            }
        }
        None
    }
}

#[derive(Debug, Default)]
struct Slot {
    index: u64,
    latency: Histogram,
    errors: u64,
}

#[derive(Debug, Default)]
struct RouteWindow {
    slots: VecDeque<Slot>,
}

/// A slow database call.
#[derive(Clone, Debug, Serialize)]
pub struct SlowQuery {
    pub query: String,
    pub ms: f64,
    /// Seconds since the node started.
    pub at_s: f64,
}

/// Per-route recent history and the slow-query list.
#[derive(Debug)]
pub struct Recent {
    started: Instant,
    routes: Mutex<HashMap<String, RouteWindow>>,
    slow: Mutex<VecDeque<SlowQuery>>,
}

impl Default for Recent {
    fn default() -> Self {
        Recent {
            started: Instant::now(),
            routes: Mutex::new(HashMap::new()),
            slow: Mutex::new(VecDeque::new()),
        }
    }
}

/// One route over one window.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct WindowStats {
    pub requests: u64,
    pub throughput_rps: f64,
    pub error_rate: f64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

const KEPT_SLOW: usize = 200;

impl Recent {
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    fn slot_now(&self) -> u64 {
        self.started.elapsed().as_secs() / SLOT_SECS
    }

    /// Records one answered request of `route` (`error`: a 5xx).
    pub fn record(&self, route: &str, d: Duration, error: bool) {
        let now = self.slot_now();
        self.record_at(route, d, error, now);
    }

    fn record_at(&self, route: &str, d: Duration, error: bool, now: u64) {
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let w = match routes.get_mut(route) {
            Some(w) => w,
            None => routes.entry(route.to_owned()).or_default(),
        };
        if w.slots.back().is_none_or(|s| s.index != now) {
            w.slots.push_back(Slot {
                index: now,
                ..Slot::default()
            });
            while w.slots.front().is_some_and(|s| s.index + SLOTS <= now) {
                w.slots.pop_front();
            }
        }
        let s = w.slots.back_mut().expect("pushed above");
        s.latency.record(d);
        s.errors += u64::from(error);
    }

    /// Notes a slow database call.
    pub fn slow_query(&self, query: &str, d: Duration) {
        let mut slow = self.slow.lock().unwrap_or_else(|p| p.into_inner());
        if slow.len() == KEPT_SLOW {
            slow.pop_front();
        }
        slow.push_back(SlowQuery {
            query: query.to_owned(),
            ms: d.as_secs_f64() * 1000.0,
            at_s: self.started.elapsed().as_secs_f64(),
        });
    }

    /// The slowest of the recent slow calls, slowest first.
    pub fn slowest(&self, n: usize) -> Vec<SlowQuery> {
        let mut v: Vec<SlowQuery> = self
            .slow
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect();
        v.sort_by(|a, b| b.ms.total_cmp(&a.ms));
        v.truncate(n);
        v
    }

    /// Per route (and `*` for all routes): stats over the last `minutes`.
    pub fn window(&self, minutes: u64) -> Vec<(String, WindowStats)> {
        self.window_at(minutes, self.slot_now(), self.started.elapsed())
    }

    fn window_at(&self, minutes: u64, now: u64, uptime: Duration) -> Vec<(String, WindowStats)> {
        let slots = (minutes * 60 / SLOT_SECS).max(1);
        // The window's length: whole slots, the current one partly elapsed, and never more
        // than the node has been up.
        let secs = ((slots - 1) * SLOT_SECS) as f64 + (uptime.as_secs_f64() % SLOT_SECS as f64);
        let secs = secs.min(uptime.as_secs_f64()).max(1.0);
        let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let mut all = Histogram::default();
        let mut all_errors = 0u64;
        let mut out = Vec::new();
        for (route, w) in routes.iter() {
            let mut h = Histogram::default();
            let mut errors = 0;
            for s in w.slots.iter().filter(|s| s.index + slots > now) {
                h.merge(&s.latency);
                errors += s.errors;
            }
            if h.count() == 0 {
                continue;
            }
            all.merge(&h);
            all_errors += errors;
            out.push((route.clone(), stats(&h, errors, secs)));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out.insert(0, ("*".to_owned(), stats(&all, all_errors, secs)));
        out
    }
}

fn stats(h: &Histogram, errors: u64, secs: f64) -> WindowStats {
    let n = h.count();
    WindowStats {
        requests: n,
        throughput_rps: n as f64 / secs,
        error_rate: if n == 0 {
            0.0
        } else {
            errors as f64 / n as f64
        },
        p50_ms: h.quantile_ms(0.50),
        p95_ms: h.quantile_ms(0.95),
        p99_ms: h.quantile_ms(0.99),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: Option<f64>, want: f64) {
        let got = got.unwrap();
        assert!(
            (got - want).abs() <= want * 0.04,
            "got {got} ms, want {want} ms ± 4 %"
        );
    }

    #[test]
    fn percentiles_of_a_known_distribution() {
        // 1 ms, 2 ms, ..., 1000 ms once each: the q-quantile is q × 1000 ms.
        let r = Recent::default();
        for ms in 1..=1000u64 {
            r.record_at("/x", Duration::from_millis(ms), ms % 100 == 0, 0);
        }
        let w = r.window_at(1, 0, Duration::from_secs(10));
        let (_, x) = w.iter().find(|(k, _)| k == "/x").unwrap();
        assert_eq!(x.requests, 1000);
        close(x.p50_ms, 500.0);
        close(x.p95_ms, 950.0);
        close(x.p99_ms, 990.0);
        assert!((x.error_rate - 0.01).abs() < 1e-12);
        assert!(
            (x.throughput_rps - 100.0).abs() < 1e-9,
            "1000 requests in 10 s"
        );
    }

    #[test]
    fn a_bimodal_distribution_and_the_all_routes_row() {
        // 90 % fast (2 ms), 10 % slow (300 ms): p50 fast, p95 and p99 slow.
        let r = Recent::default();
        for i in 0..10_000 {
            let ms = if i % 10 == 0 { 300 } else { 2 };
            r.record_at(
                if i % 2 == 0 { "/a" } else { "/b" },
                Duration::from_millis(ms),
                false,
                3,
            );
        }
        let w = r.window_at(5, 3, Duration::from_secs(40));
        assert_eq!(w[0].0, "*");
        assert_eq!(w[0].1.requests, 10_000);
        close(w[0].1.p50_ms, 2.0);
        close(w[0].1.p95_ms, 300.0);
        close(w[0].1.p99_ms, 300.0);
    }

    #[test]
    fn old_slots_leave_the_window() {
        let r = Recent::default();
        r.record_at("/x", Duration::from_millis(5), false, 0);
        r.record_at("/x", Duration::from_millis(7), false, 12);
        // At slot 12, the 1-minute window holds slots 7..=12 only.
        let w = r.window_at(1, 12, Duration::from_secs(125));
        assert_eq!(w[0].1.requests, 1);
        let w = r.window_at(15, 12, Duration::from_secs(125));
        assert_eq!(w[0].1.requests, 2);
    }

    #[test]
    fn the_slowest_queries_come_first() {
        let r = Recent::default();
        for ms in [120, 900, 300] {
            r.slow_query("q", Duration::from_millis(ms));
        }
        let s = r.slowest(2);
        assert_eq!(s.len(), 2);
        assert!((s[0].ms - 900.0).abs() < 1e-9 && (s[1].ms - 300.0).abs() < 1e-9);
    }
}
