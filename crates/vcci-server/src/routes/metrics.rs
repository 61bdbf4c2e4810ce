//! `GET /metrics`: the node's metrics as Prometheus text.

use std::fmt::Write as _;

use crate::app::App;
use std::sync::atomic::Ordering;

use crate::metrics::esc;

/// The Prometheus exposition of `app`'s metrics and the job counts `jobs`.
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
    let c = vcci_store::classify::stats();
    let _ = write!(
        out,
        "# HELP vcci_classification_cache_total Line classifications answered from the cache of answers by normalized input (hit) or computed (miss).\n\
         # TYPE vcci_classification_cache_total counter\n\
         vcci_classification_cache_total{{result=\"hit\"}} {}\n\
         vcci_classification_cache_total{{result=\"miss\"}} {}\n\
         # HELP vcci_classified_lines_total Lines classified, by the source that decided.\n\
         # TYPE vcci_classified_lines_total counter\n",
        c.cache_hits, c.cache_misses
    );
    for (source, n) in c.by_source {
        let _ = writeln!(
            out,
            "vcci_classified_lines_total{{source=\"{source}\"}} {n}"
        );
    }
    gauge(
        &mut out,
        "vcci_classified_needs_review_total",
        "Lines classified below the organization's review threshold (calculated, and flagged).",
        "counter",
        c.needs_review.to_string(),
    );
    gauge(
        &mut out,
        "vcci_classification_purchased_energy_total",
        "Lines refused because they read as purchased electricity or heat (Scope 2).",
        "counter",
        c.purchased_energy.to_string(),
    );
    let _ = write!(
        out,
        "# HELP vcci_uptime_seconds Seconds since the node started.\n# TYPE vcci_uptime_seconds gauge\nvcci_uptime_seconds {}\n",
        m.recent.uptime().as_secs_f64()
    );
    gauge(
        &mut out,
        "vcci_cache_warm_runs_total",
        "Cache warmings finished (at start and after a failover of the shared level).",
        "counter",
        m.warm_runs.load(Ordering::Relaxed).to_string(),
    );
    gauge(
        &mut out,
        "vcci_cache_warm_requests_total",
        "Requests cache warmings made.",
        "counter",
        m.warm_requests.load(Ordering::Relaxed).to_string(),
    );
    gauge(
        &mut out,
        "vcci_cache_warming",
        "1 while the start's cache warming runs (/ready answers 503 warming).",
        "gauge",
        u8::from(app.warming.load(Ordering::Relaxed)).to_string(),
    );
    let live = &app.live.stats;
    for (name, help, kind, v) in [
        (
            "vcci_events_streams",
            "Live-update streams (GET /api/v1/events) open on this node.",
            "gauge",
            &live.streams,
        ),
        (
            "vcci_events_streams_opened_total",
            "Live-update streams opened on this node.",
            "counter",
            &live.opened,
        ),
        (
            "vcci_events_total",
            "Live events emitted on this node (each sent to its organization's streams).",
            "counter",
            &live.events,
        ),
        (
            "vcci_events_remote_total",
            "Live events received from other nodes through Redis.",
            "counter",
            &live.remote,
        ),
        (
            "vcci_events_resets_total",
            "Streams that resumed from an id outside this node's window (sent reset).",
            "counter",
            &live.resets,
        ),
        (
            "vcci_events_dropped_total",
            "Live events not sent to the other nodes: the queue to Redis was full.",
            "counter",
            &live.dropped,
        ),
    ] {
        gauge(
            &mut out,
            name,
            help,
            kind,
            v.load(Ordering::Relaxed).to_string(),
        );
    }
    out += "# HELP vcci_jobs Background jobs by kind and status.\n# TYPE vcci_jobs gauge\n";
    for (labels, n) in jobs {
        let _ = writeln!(out, "vcci_jobs{{{labels}}} {n}");
    }
    let _ = write!(
        out,
        "# HELP vcci_build_info The running build.\n# TYPE vcci_build_info gauge\nvcci_build_info{{version=\"{}\"}} 1\n",
        env!("CARGO_PKG_VERSION")
    );
    app.pact_http.render_metrics(&mut out);
    process_metrics(&mut out);
    out
}

/// The standard `process_*` series (as Prometheus's client libraries name them), read from
/// Linux's `/proc`; nothing where there is no `/proc`. CPU times and the start time are in
/// USER_HZ ticks there, 100 a second on Linux whatever the kernel's own tick.
fn process_metrics(out: &mut String) {
    const TICKS: f64 = 100.0;
    let mut put = |name: &str, help: &str, kind: &str, v: f64| {
        let _ = write!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"
        );
    };
    // `/proc/self/stat`: the fields after the command (which may hold spaces) in parentheses.
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // Field n of stat(5) is fields[n - 3] here.
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<f64>().ok());
    if let (Some(utime), Some(stime)) = (field(14), field(15)) {
        put(
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
            "counter",
            (utime + stime) / TICKS,
        );
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map(|k| k * 1024.0)
    };
    if let Some(rss) = kb("VmRSS:") {
        put(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            "gauge",
            rss,
        );
    }
    if let Some(vm) = kb("VmSize:") {
        put(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            "gauge",
            vm,
        );
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        put(
            "process_open_fds",
            "Number of open file descriptors.",
            "gauge",
            fds.count() as f64,
        );
    }
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    if let Some(max) = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse::<f64>().ok())
    {
        put(
            "process_max_fds",
            "Maximum number of open file descriptors.",
            "gauge",
            max,
        );
    }
    let boot = std::fs::read_to_string("/proc/stat")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse::<f64>().ok());
    if let (Some(boot), Some(start)) = (boot, field(22)) {
        put(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            "gauge",
            boot + start / TICKS,
        );
    }
}
