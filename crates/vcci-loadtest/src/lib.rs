//! `vcci loadtest`: load generation against the vcci API with SLO checks and reports.
//!
//! Two modes. Open loop sends at a constant arrival rate whatever the server does, and
//! measures each request from the moment it was *scheduled*, so a stalled server shows up as
//! latency instead of silently lowering the load (coordinated omission). Closed loop runs N
//! users, each sending a request, waiting for the answer, then thinking for a while.
//! Shapes vary the load over the run: constant, ramp-up, spike, soak.
//!
//! Belongs here: the HTTP client, scenarios, the runner, SLOs, reports, self-hosting. The
//! command line is in the `vcci` crate.

#![forbid(unsafe_code)]

pub mod client;
pub mod events;
pub mod report;
pub mod scenario;
pub mod selfhost;

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use vcci_server::perf::Histogram;

use crate::client::{Conn, Req, Target};
use crate::scenario::{Generator, Known, Scenario};

/// How load is generated.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    /// Constant arrival rate (requests per second at full load).
    Open { rate: f64 },
    /// `users` concurrent users, each thinking `think` between requests.
    Closed { users: usize, think: Duration },
}

/// How the load varies over the run (a factor applied to the rate or the active users).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Shape {
    Constant,
    /// From 10 % to full load over `up`, then full load.
    Ramp {
        up: Duration,
    },
    /// Full load, with `factor` times the load during the middle fifth of the run.
    Spike {
        factor: f64,
    },
    /// Constant load for a long run; the report compares the first and last tenths.
    Soak,
}

impl Shape {
    pub fn name(&self) -> &'static str {
        match self {
            Shape::Constant => "constant",
            Shape::Ramp { .. } => "ramp",
            Shape::Spike { .. } => "spike",
            Shape::Soak => "soak",
        }
    }

    /// The load factor at `t` of a run of `total`.
    pub fn factor(&self, t: Duration, total: Duration) -> f64 {
        match *self {
            Shape::Constant | Shape::Soak => 1.0,
            Shape::Ramp { up } => {
                if up.is_zero() {
                    1.0
                } else {
                    (0.1 + 0.9 * t.as_secs_f64() / up.as_secs_f64()).min(1.0)
                }
            }
            Shape::Spike { factor } => {
                let f = t.as_secs_f64() / total.as_secs_f64().max(1e-9);
                if (0.4..0.6).contains(&f) { factor } else { 1.0 }
            }
        }
    }
}

/// Service-level objectives checked at the end; defaults from the specification.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Slo {
    pub p95_ms: f64,
    pub p99_ms: f64,
    /// Largest acceptable share of failed requests (0.001 = 0.1 %).
    pub max_error_rate: f64,
    /// Smallest acceptable throughput, if any.
    pub min_rps: Option<f64>,
}

impl Default for Slo {
    fn default() -> Self {
        Slo {
            p95_ms: 500.0,
            p99_ms: 1000.0,
            max_error_rate: 0.001,
            min_rps: None,
        }
    }
}

/// Longest run allowed.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);

#[derive(Clone, Debug)]
pub struct Config {
    pub target: Target,
    pub key: String,
    pub mode: Mode,
    pub scenario: Scenario,
    pub shape: Shape,
    pub duration: Duration,
    /// A request not answered within this is an error.
    pub timeout: Duration,
    /// Connections (requests in flight) at most, in open loop.
    pub max_connections: usize,
    pub seed: u64,
    pub slo: Slo,
    /// Print a live progress line on standard error.
    pub progress: bool,
}

#[derive(Default)]
struct Stats {
    latency: Histogram,
    errors: u64,
    bytes: u64,
    max_ms: f64,
}

impl Stats {
    fn add(&mut self, d: Duration, ok: bool, bytes: usize) {
        self.latency.record(d);
        self.errors += u64::from(!ok);
        self.bytes += bytes as u64;
        self.max_ms = self.max_ms.max(d.as_secs_f64() * 1000.0);
    }
}

#[derive(Default)]
struct Recorder {
    total: Stats,
    by_name: BTreeMap<&'static str, Stats>,
    /// Per second of the run.
    seconds: Vec<Stats>,
    statuses: BTreeMap<String, u64>,
}

impl Recorder {
    fn add(
        &mut self,
        name: &'static str,
        second: usize,
        d: Duration,
        outcome: &Result<u16, String>,
        bytes: usize,
    ) {
        let ok = matches!(outcome, Ok(s) if (200..400).contains(s));
        self.total.add(d, ok, bytes);
        self.by_name.entry(name).or_default().add(d, ok, bytes);
        if self.seconds.len() <= second {
            self.seconds.resize_with(second + 1, Stats::default);
        }
        self.seconds[second].add(d, ok, bytes);
        let key = match outcome {
            Ok(s) => s.to_string(),
            Err(e) => e.clone(),
        };
        *self.statuses.entry(key).or_default() += 1;
    }
}

/// Shared state of a run.
struct Run {
    cfg: Config,
    started: Instant,
    rec: Mutex<Recorder>,
    sent: AtomicU64,
    stop: AtomicBool,
}

impl Run {
    fn record(
        &self,
        name: &'static str,
        scheduled: Instant,
        outcome: Result<u16, String>,
        bytes: usize,
    ) {
        let d = scheduled.elapsed();
        let second = scheduled.saturating_duration_since(self.started).as_secs() as usize;
        self.rec
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .add(name, second, d, &outcome, bytes);
    }

    fn factor(&self) -> f64 {
        self.cfg
            .shape
            .factor(self.started.elapsed(), self.cfg.duration)
    }
}

async fn send(run: &Run, conn: &mut Option<Conn>, req: &Req) -> (Result<u16, String>, usize) {
    if conn.is_none() {
        match Conn::open(&run.cfg.target).await {
            Ok(c) => *conn = Some(c),
            Err(e) => return (Err(format!("connect: {}", e.kind())), 0),
        }
    }
    let c = conn.as_mut().expect("opened above");
    match c
        .send(&run.cfg.target, &run.cfg.key, req, run.cfg.timeout)
        .await
    {
        Ok(r) => (Ok(r.status), r.bytes),
        Err(e) => {
            *conn = None;
            (Err(format!("io: {}", e.kind())), 0)
        }
    }
}

/// Samples ids and years from the target so requests name data that exists.
pub async fn discover(target: &Target, key: &str) -> Result<Known, String> {
    let mut c = Conn::open(target)
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", target.addr))?;
    let get = |path: &str| Req {
        name: "setup",
        method: "GET",
        path: path.to_owned(),
        content_type: None,
        body: Vec::new(),
    };
    let mut known = Known::default();
    for (path, field) in [
        (
            "/api/v1/transactions?limit=1000&fields=transaction_id,date",
            "transaction_id",
        ),
        (
            "/api/v1/suppliers?limit=1000&fields=supplier_id",
            "supplier_id",
        ),
    ] {
        let req = get(path);
        let body = c
            .send_for_body(target, key, &req, Duration::from_secs(30))
            .await
            .map_err(|e| format!("{path}: {e}"))?;
        if body.0 == 401 {
            return Err("the API key was refused (401)".into());
        }
        if body.0 != 200 {
            return Err(format!("{path} answered {}", body.0));
        }
        let v: serde_json::Value =
            serde_json::from_slice(&body.1).map_err(|e| format!("{path}: {e}"))?;
        for item in v["data"].as_array().into_iter().flatten() {
            if let Some(id) = item[field].as_str() {
                if field == "transaction_id" {
                    known.transaction_ids.push(id.to_owned());
                } else {
                    known.supplier_ids.push(id.to_owned());
                }
            }
            if let Some(y) = item["date"]
                .as_str()
                .and_then(|d| d.get(..4))
                .and_then(|y| y.parse().ok())
                && !known.years.contains(&y)
            {
                known.years.push(y);
            }
        }
    }
    known.years.sort_unstable();
    Ok(known)
}

/// The server's cache counters (hits, misses summed over levels) from its `/metrics`, if it
/// exposes them.
async fn cache_counters(target: &Target) -> Option<(f64, f64)> {
    let text = metrics_text(target).await?;
    let sum = |name: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    Some((sum("vcci_cache_hits_total"), sum("vcci_cache_misses_total")))
}

/// The server's `/metrics` text, if it answers 200.
pub async fn metrics_text(target: &Target) -> Option<String> {
    let mut c = Conn::open(target).await.ok()?;
    let req = Req {
        name: "metrics",
        method: "GET",
        path: "/metrics".into(),
        content_type: None,
        body: Vec::new(),
    };
    let (status, body) = c
        .send_for_body(target, "", &req, Duration::from_secs(10))
        .await
        .ok()?;
    (status == 200).then(|| String::from_utf8_lossy(&body).into_owned())
}

/// Runs the load test described by `cfg`.
pub async fn run(cfg: Config) -> Result<report::Report, String> {
    if cfg.duration.is_zero() || cfg.duration > MAX_DURATION {
        return Err(format!(
            "the duration must be between 1 s and {} s",
            MAX_DURATION.as_secs()
        ));
    }
    let known = Arc::new(discover(&cfg.target, &cfg.key).await?);
    let cache_before = cache_counters(&cfg.target).await;
    let run_id = format!(
        "LT-{:x}",
        cfg.seed ^ std::process::id() as u64 ^ Instant::now().elapsed().as_nanos() as u64
    );
    let run = Arc::new(Run {
        cfg: cfg.clone(),
        started: Instant::now(),
        rec: Mutex::new(Recorder::default()),
        sent: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    let progress = cfg
        .progress
        .then(|| tokio::spawn(progress_line(Arc::clone(&run))));
    let end = run.started + cfg.duration;
    match cfg.mode {
        Mode::Open { rate } => open_loop(&run, rate, end, &known, &run_id).await,
        Mode::Closed { users, think } => {
            closed_loop(&run, users, think, end, &known, &run_id).await
        }
    }
    run.stop.store(true, Ordering::Relaxed);
    if let Some(p) = progress {
        let _ = p.await;
    }
    let elapsed = run.started.elapsed().min(cfg.duration + cfg.timeout);
    let rec = std::mem::take(&mut *run.rec.lock().unwrap_or_else(|p| p.into_inner()));
    let mut report = report::build(&cfg, elapsed, rec);
    if let (Some((h0, m0)), Some((h1, m1))) = (cache_before, cache_counters(&cfg.target).await) {
        let (h, m) = (h1 - h0, m1 - m0);
        report.server_cache_hit_rate = (h + m > 0.0).then(|| h / (h + m));
    }
    Ok(report)
}

async fn open_loop(run: &Arc<Run>, rate: f64, end: Instant, known: &Arc<Known>, run_id: &str) {
    if !(rate > 0.0 && rate.is_finite()) {
        return;
    }
    let permits = Arc::new(tokio::sync::Semaphore::new(run.cfg.max_connections.max(1)));
    let pool: Arc<Mutex<Vec<Conn>>> = Arc::new(Mutex::new(Vec::new()));
    let mut gen_ = Generator::new(run.cfg.scenario, Arc::clone(known), run.cfg.seed, run_id);
    let mut tasks = tokio::task::JoinSet::new();
    let mut next = run.started;
    while next < end {
        tokio::time::sleep_until(next.into()).await;
        let scheduled = next;
        let req = gen_.next_request();
        let (run2, permits, pool) = (Arc::clone(run), Arc::clone(&permits), Arc::clone(&pool));
        run.sent.fetch_add(1, Ordering::Relaxed);
        tasks.spawn(async move {
            let Ok(_permit) = permits.acquire_owned().await else {
                return;
            };
            let mut conn = pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let (outcome, bytes) = send(&run2, &mut conn, &req).await;
            run2.record(req.name, scheduled, outcome, bytes);
            if let Some(c) = conn {
                pool.lock().unwrap_or_else(|p| p.into_inner()).push(c);
            }
        });
        // Reap finished tasks so the set does not grow with the run's length.
        while tasks.try_join_next().is_some() {}
        let f = run.factor().max(0.01);
        next += Duration::from_secs_f64(1.0 / (rate * f));
    }
    // Requests still in flight get their timeout to finish.
    let _ = tokio::time::timeout(run.cfg.timeout + Duration::from_secs(1), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
}

async fn closed_loop(
    run: &Arc<Run>,
    users: usize,
    think: Duration,
    end: Instant,
    known: &Arc<Known>,
    run_id: &str,
) {
    let mut tasks = tokio::task::JoinSet::new();
    for u in 0..users.max(1) {
        let run = Arc::clone(run);
        let mut gen_ = Generator::new(
            run.cfg.scenario,
            Arc::clone(known),
            run.cfg.seed.wrapping_add(u as u64 * 7919),
            &format!("{run_id}-u{u}"),
        );
        tasks.spawn(async move {
            let mut conn: Option<Conn> = None;
            while Instant::now() < end {
                // Users beyond the shape's current share wait.
                let active = (users as f64 * run.factor()).ceil() as usize;
                if u >= active.max(1) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                let req = gen_.next_request();
                let scheduled = Instant::now();
                run.sent.fetch_add(1, Ordering::Relaxed);
                let (outcome, bytes) = send(&run, &mut conn, &req).await;
                run.record(req.name, scheduled, outcome, bytes);
                if !think.is_zero() {
                    tokio::time::sleep(think).await;
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

async fn progress_line(run: Arc<Run>) {
    let tty = std::io::stderr().is_terminal();
    let mut last = 0u64;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    while !run.stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let t = run.started.elapsed().as_secs();
        let (done, errors, p95) = {
            let r = run.rec.lock().unwrap_or_else(|p| p.into_inner());
            let second = r.seconds.get(t.saturating_sub(1) as usize);
            (
                r.total.latency.count(),
                r.total.errors,
                second.and_then(|s| s.latency.quantile_ms(0.95)),
            )
        };
        let line = format!(
            "  {t:>4}s/{}s  sent {}  done {}  {:.0} req/s  p95 {}  errors {}",
            run.cfg.duration.as_secs(),
            run.sent.load(Ordering::Relaxed),
            done,
            done.saturating_sub(last) as f64,
            p95.map_or("-".into(), |p| format!("{p:.1} ms")),
            errors
        );
        last = done;
        if tty {
            eprint!("\r{line}   ");
        } else if t.is_multiple_of(5) {
            eprintln!("{line}");
        }
    }
    if tty {
        eprintln!();
    }
}

/// Counts per request name, for comparison with what a server saw.
pub fn counts(r: &report::Report) -> HashMap<String, u64> {
    r.by_request
        .iter()
        .map(|x| (x.name.clone(), x.requests))
        .collect()
}
