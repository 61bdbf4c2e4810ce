//! Request metrics: counters and latency histograms of requests, database calls and
//! imports (rendered as Prometheus text by `routes::metrics`).
//!
//! Requests are counted per matched route (the route template, never the raw path, so
//! cardinality stays bounded), method and status class, with a latency histogram.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use axum::http::{HeaderValue, Method, StatusCode};

/// Upper bounds (seconds) of the latency histogram's buckets.
pub const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Default, Clone)]
pub(crate) struct RouteStats {
    /// Responses by status class (index 1..=5).
    pub(crate) classes: [u64; 6],
    pub(crate) latency: Timings,
}

/// Stats of one route, per method.
pub(crate) type PerMethod = Vec<(Method, RouteStats)>;

/// A latency histogram over `BUCKETS`.
#[derive(Debug, Default, Clone)]
pub(crate) struct Timings {
    /// Counts per bucket (not cumulative), plus +Inf last.
    buckets: [u64; BUCKETS.len() + 1],
    sum: f64,
    count: u64,
}

impl Timings {
    fn add(&mut self, secs: f64) {
        let b = BUCKETS
            .iter()
            .position(|le| secs <= *le)
            .unwrap_or(BUCKETS.len());
        self.buckets[b] += 1;
        self.sum += secs;
        self.count += 1;
    }

    pub(crate) fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cum = 0;
        for (i, le) in BUCKETS.iter().enumerate() {
            cum += self.buckets[i];
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cum}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    /// (route template, method) → stats.
    pub(crate) routes: Mutex<HashMap<Box<str>, PerMethod>>,
    /// Database calls by name (see `App::db`).
    pub(crate) db: Mutex<HashMap<&'static str, Timings>>,
    /// Recent history for the performance report.
    pub recent: crate::perf::Recent,
    pub(crate) import_lines: AtomicU64,
    /// Lines per second of the last finished import job (f64 bits).
    pub(crate) import_rate: AtomicU64,
    pub(crate) in_flight: AtomicI64,
    pub(crate) rate_limited: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    /// Cache warmings finished, and the requests they made.
    pub(crate) warm_runs: AtomicU64,
    pub(crate) warm_requests: AtomicU64,
}

impl Metrics {
    pub fn rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }

    pub fn db_call(&self, name: &'static str, d: std::time::Duration) {
        self.db
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name)
            .or_default()
            .add(d.as_secs_f64());
    }

    /// A finished cache warming of `requests` requests.
    pub fn warm_finished(&self, requests: u64) {
        self.warm_runs.fetch_add(1, Ordering::Relaxed);
        self.warm_requests.fetch_add(requests, Ordering::Relaxed);
    }

    /// A finished import job: `lines` read in `secs`.
    pub fn import_finished(&self, lines: u64, secs: f64) {
        self.import_lines.fetch_add(lines, Ordering::Relaxed);
        if secs > 0.0 {
            self.import_rate
                .store((lines as f64 / secs).to_bits(), Ordering::Relaxed);
        }
    }

    pub(crate) fn record(&self, route: &str, method: &Method, status: StatusCode, secs: f64) {
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let per_method = match routes.get_mut(route) {
            Some(v) => v,
            None => routes.entry(route.into()).or_default(),
        };
        let i = match per_method.iter().position(|(m, _)| m == method) {
            Some(i) => i,
            None => {
                per_method.push((method.clone(), RouteStats::default()));
                per_method.len() - 1
            }
        };
        let s = &mut per_method[i].1;
        s.classes[(status.as_u16() / 100).clamp(1, 5) as usize] += 1;
        s.latency.add(secs);
        self.recent.record(
            route,
            std::time::Duration::from_secs_f64(secs),
            status.is_server_error(),
        );
    }

    /// Requests answered so far on `route` with `method` (for tests and reports).
    pub fn count(&self, route: &str, method: &Method) -> u64 {
        self.routes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(route)
            .and_then(|v| v.iter().find(|(m, _)| m == method))
            .map_or(0, |(_, s)| s.latency.count)
    }
}

pub(crate) fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A header value for the metrics' content type.
pub const CONTENT_TYPE: HeaderValue =
    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8");
