//! Request metrics (Prometheus text at `/metrics`), request IDs and request timeouts.
//!
//! Requests are counted per matched route (the route template, never the raw path, so
//! cardinality stays bounded), method and status class, with a latency histogram.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::{ApiError, App};

/// Upper bounds (seconds) of the latency histogram's buckets.
pub const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Default, Clone)]
struct RouteStats {
    /// Responses by status class (index 1..=5).
    classes: [u64; 6],
    latency: Timings,
}

/// Stats of one route, per method.
type PerMethod = Vec<(Method, RouteStats)>;

/// A latency histogram over `BUCKETS`.
#[derive(Debug, Default, Clone)]
struct Timings {
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

    fn render(&self, out: &mut String, name: &str, labels: &str) {
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
    routes: Mutex<HashMap<Box<str>, PerMethod>>,
    /// Database calls by name (see `App::db`).
    db: Mutex<HashMap<&'static str, Timings>>,
    /// Recent history for the performance report.
    pub recent: crate::perf::Recent,
    import_lines: AtomicU64,
    /// Lines per second of the last finished import job (f64 bits).
    import_rate: AtomicU64,
    in_flight: AtomicI64,
    rate_limited: AtomicU64,
    timeouts: AtomicU64,
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

    /// A finished import job: `lines` read in `secs`.
    pub fn import_finished(&self, lines: u64, secs: f64) {
        self.import_lines.fetch_add(lines, Ordering::Relaxed);
        if secs > 0.0 {
            self.import_rate
                .store((lines as f64 / secs).to_bits(), Ordering::Relaxed);
        }
    }

    fn record(&self, route: &str, method: &Method, status: StatusCode, secs: f64) {
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

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The Prometheus text exposition of this node's metrics.
pub fn render(app: &App, jobs: &[(String, i64)]) -> String {
    let m = &app.metrics;
    let mut out = String::with_capacity(16 << 10);
    let routes = m.routes.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut keys: Vec<_> = routes.keys().collect();
    keys.sort();
    out += "# HELP vcci_http_requests_total HTTP requests answered, by route template, method and status class.\n";
    out += "# TYPE vcci_http_requests_total counter\n";
    for r in &keys {
        for (method, s) in &routes[*r] {
            for (class, n) in s.classes.iter().enumerate().skip(1) {
                if *n > 0 {
                    let _ = writeln!(
                        out,
                        "vcci_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{class}xx\"}} {n}",
                        esc(r)
                    );
                }
            }
        }
    }
    out += "# HELP vcci_http_request_duration_seconds Time to answer a request (until the response head).\n";
    out += "# TYPE vcci_http_request_duration_seconds histogram\n";
    for r in &keys {
        for (method, s) in &routes[*r] {
            s.latency.render(
                &mut out,
                "vcci_http_request_duration_seconds",
                &format!("route=\"{}\",method=\"{method}\"", esc(r)),
            );
        }
    }
    let db = m.db.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut names: Vec<_> = db.keys().collect();
    names.sort();
    out += "# HELP vcci_db_query_duration_seconds Database calls by name (the code that makes them), including the wait for a connection thread.\n";
    out += "# TYPE vcci_db_query_duration_seconds histogram\n";
    for n in names {
        db[n].render(
            &mut out,
            "vcci_db_query_duration_seconds",
            &format!("query=\"{}\"", esc(n)),
        );
    }
    let gauge = |out: &mut String, name: &str, help: &str, kind: &str, v: String| {
        let _ = write!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"
        );
    };
    gauge(
        &mut out,
        "vcci_http_requests_in_flight",
        "Requests being answered.",
        "gauge",
        m.in_flight.load(Ordering::Relaxed).to_string(),
    );
    gauge(
        &mut out,
        "vcci_rate_limited_total",
        "Requests refused by the per-key rate limit.",
        "counter",
        m.rate_limited.load(Ordering::Relaxed).to_string(),
    );
    gauge(
        &mut out,
        "vcci_http_timeouts_total",
        "Requests answered 503 because they exceeded the request timeout.",
        "counter",
        m.timeouts.load(Ordering::Relaxed).to_string(),
    );
    let c = &app.cache.stats;
    let r = app.redis().map(|r| &r.stats);
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    for (name, help, v, redis) in [
        (
            "vcci_cache_hits_total",
            "Cache lookups answered from the cache, by level.",
            load(&c.hits),
            r.map(|r| load(&r.hits)),
        ),
        (
            "vcci_cache_misses_total",
            "Cache lookups that computed the response, by level.",
            load(&c.misses),
            r.map(|r| load(&r.misses)),
        ),
        (
            "vcci_cache_evictions_total",
            "Entries dropped to keep the cache within its limits, by level.",
            load(&c.evictions),
            None,
        ),
        (
            "vcci_cache_errors_total",
            "Cache operations that failed (Redis unreachable or too slow), by level.",
            0,
            r.map(|r| load(&r.errors)),
        ),
    ] {
        let _ = write!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name}{{level=\"memory\"}} {v}\n"
        );
        if let Some(v) = redis {
            let _ = writeln!(out, "{name}{{level=\"redis\"}} {v}");
        }
    }
    out += "# HELP vcci_cache_up Whether a cache level is reachable (1) or not (0).\n# TYPE vcci_cache_up gauge\nvcci_cache_up{level=\"memory\"} 1\n";
    if let Some(r) = app.redis() {
        let _ = writeln!(
            out,
            "vcci_cache_up{{level=\"redis\"}} {}",
            u8::from(r.is_up())
        );
    }
    let (entries, bytes) = app.cache.size();
    let _ = write!(
        out,
        "# HELP vcci_cache_entries Entries held, by level.\n# TYPE vcci_cache_entries gauge\nvcci_cache_entries{{level=\"memory\"}} {entries}\n\
         # HELP vcci_cache_bytes Bytes held, by level.\n# TYPE vcci_cache_bytes gauge\nvcci_cache_bytes{{level=\"memory\"}} {bytes}\n"
    );
    let (size, idle) = app.pool_stats();
    gauge(
        &mut out,
        "vcci_db_pool_connections",
        "Database connections the pool may hold.",
        "gauge",
        size.to_string(),
    );
    gauge(
        &mut out,
        "vcci_db_pool_in_use",
        "Database connections in use.",
        "gauge",
        (size - idle).to_string(),
    );
    gauge(
        &mut out,
        "vcci_import_lines_total",
        "Lines read by finished import jobs on this node.",
        "counter",
        m.import_lines.load(Ordering::Relaxed).to_string(),
    );
    gauge(
        &mut out,
        "vcci_import_lines_per_second",
        "Throughput of the last finished import job on this node.",
        "gauge",
        f64::from_bits(m.import_rate.load(Ordering::Relaxed)).to_string(),
    );
    let _ = write!(
        out,
        "# HELP vcci_uptime_seconds Seconds since the node started.\n# TYPE vcci_uptime_seconds gauge\nvcci_uptime_seconds {}\n",
        m.recent.uptime().as_secs_f64()
    );
    out += "# HELP vcci_jobs Background jobs by kind and status.\n# TYPE vcci_jobs gauge\n";
    for (labels, n) in jobs {
        let _ = writeln!(out, "vcci_jobs{{{labels}}} {n}");
    }
    let _ = write!(
        out,
        "# HELP vcci_build_info The running build.\n# TYPE vcci_build_info gauge\nvcci_build_info{{version=\"{}\"}} 1\n",
        env!("CARGO_PKG_VERSION")
    );
    out
}

/// Counts and times each request under its matched route.
pub async fn track(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    // MatchedPath is a shared string: cloning it does not allocate.
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let method = req.method().clone();
    let started = Instant::now();
    app.metrics.in_flight.fetch_add(1, Ordering::Relaxed);
    let res = next.run(req).await;
    app.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
    app.metrics.record(
        matched.as_ref().map_or("unmatched", |p| p.as_str()),
        &method,
        res.status(),
        started.elapsed().as_secs_f64(),
    );
    res
}

/// Answers 503 `timeout` when a request takes longer than the configured timeout. CSV
/// uploads are exempt: they stream for as long as the file takes.
pub async fn timeout(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    if req.method() == Method::POST && req.uri().path() == "/api/v1/imports" {
        return next.run(req).await;
    }
    match tokio::time::timeout(app.config.request_timeout, next.run(req)).await {
        Ok(r) => r,
        Err(_) => {
            app.metrics.timeouts.fetch_add(1, Ordering::Relaxed);
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                format!(
                    "the request took longer than {} s",
                    app.config.request_timeout.as_secs_f64()
                ),
            )
            .into_response()
        }
    }
}

/// `X-Request-Id`: the client's when it is a sane token, else a new one; echoed on the response.
pub async fn request_id(mut req: Request, next: Next) -> Response {
    static PREFIX: OnceLock<String> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let given = req
        .headers()
        .get("x-request-id")
        .filter(|v| {
            let b = v.as_bytes();
            !b.is_empty()
                && b.len() <= 128
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        })
        .cloned();
    let id = given.unwrap_or_else(|| {
        let prefix = PREFIX.get_or_init(|| {
            let mut b = [0u8; 6];
            let _ = getrandom::fill(&mut b);
            b.iter().map(|x| format!("{x:02x}")).collect()
        });
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        crate::app::header(&format!("{prefix}-{n:x}"))
    });
    req.headers_mut().insert("x-request-id", id.clone());
    let mut res = next.run(req).await;
    res.headers_mut().insert("x-request-id", id);
    res
}

/// A header value for the metrics' content type.
pub const CONTENT_TYPE: HeaderValue =
    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8");
