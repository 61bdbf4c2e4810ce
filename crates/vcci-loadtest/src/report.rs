//! The outcome of a run: totals, per request kind, per second, SLO checks; rendered as a
//! terminal table, JSON, or a self-contained HTML page with charts (inline SVG, no scripts,
//! nothing fetched).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::{Config, Mode, Recorder, Stats};

#[derive(Clone, Debug, Serialize)]
pub struct Line {
    pub name: String,
    pub requests: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub rps: f64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: f64,
    pub bytes: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Second {
    pub t: usize,
    pub requests: u64,
    pub errors: u64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub check: String,
    pub limit: f64,
    pub actual: f64,
    pub passed: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub target: String,
    pub mode: String,
    pub scenario: String,
    pub shape: String,
    pub duration_s: f64,
    pub total: Line,
    pub by_request: Vec<Line>,
    pub timeline: Vec<Second>,
    /// Responses by status code (or transport error).
    pub statuses: BTreeMap<String, u64>,
    /// Soak: p95 of the first and the last tenth of the run.
    pub drift: Option<(Option<f64>, Option<f64>)>,
    pub slo: Vec<Check>,
    pub passed: bool,
    /// The server's cache hit rate during the run (from its /metrics), when it exposes one.
    pub server_cache_hit_rate: Option<f64>,
}

fn line(name: &str, s: &Stats, secs: f64) -> Line {
    let n = s.latency.count();
    Line {
        name: name.to_owned(),
        requests: n,
        errors: s.errors,
        error_rate: if n == 0 {
            0.0
        } else {
            s.errors as f64 / n as f64
        },
        rps: n as f64 / secs.max(1e-9),
        p50_ms: s.latency.quantile_ms(0.50),
        p95_ms: s.latency.quantile_ms(0.95),
        p99_ms: s.latency.quantile_ms(0.99),
        max_ms: s.max_ms,
        bytes: s.bytes,
    }
}

pub(crate) fn build(cfg: &Config, elapsed: Duration, rec: Recorder) -> Report {
    let secs = cfg
        .duration
        .as_secs_f64()
        .min(elapsed.as_secs_f64())
        .max(1e-3);
    let total = line("all", &rec.total, secs);
    let by_request = rec.by_name.iter().map(|(n, s)| line(n, s, secs)).collect();
    let timeline: Vec<Second> = rec
        .seconds
        .iter()
        .enumerate()
        .map(|(t, s)| Second {
            t,
            requests: s.latency.count(),
            errors: s.errors,
            p50_ms: s.latency.quantile_ms(0.50),
            p95_ms: s.latency.quantile_ms(0.95),
            p99_ms: s.latency.quantile_ms(0.99),
        })
        .collect();
    let drift = matches!(cfg.shape, crate::Shape::Soak).then(|| {
        let n = rec.seconds.len();
        let tenth = (n / 10).max(1);
        let p95 = |range: &[Stats]| {
            let mut h = vcci_server::perf::Histogram::default();
            for s in range {
                h.merge(&s.latency);
            }
            h.quantile_ms(0.95)
        };
        (
            p95(&rec.seconds[..tenth.min(n)]),
            p95(&rec.seconds[n.saturating_sub(tenth)..]),
        )
    });
    let mut slo = vec![
        Check {
            check: "p95 latency (ms)".into(),
            limit: cfg.slo.p95_ms,
            actual: total.p95_ms.unwrap_or(f64::INFINITY),
            passed: total.p95_ms.is_some_and(|p| p < cfg.slo.p95_ms),
        },
        Check {
            check: "p99 latency (ms)".into(),
            limit: cfg.slo.p99_ms,
            actual: total.p99_ms.unwrap_or(f64::INFINITY),
            passed: total.p99_ms.is_some_and(|p| p < cfg.slo.p99_ms),
        },
        Check {
            check: "error rate".into(),
            limit: cfg.slo.max_error_rate,
            actual: total.error_rate,
            passed: total.requests > 0 && total.error_rate < cfg.slo.max_error_rate,
        },
    ];
    if let Some(min) = cfg.slo.min_rps {
        slo.push(Check {
            check: "throughput (req/s)".into(),
            limit: min,
            actual: total.rps,
            passed: total.rps >= min,
        });
    }
    let passed = slo.iter().all(|c| c.passed);
    Report {
        target: format!("http://{}", cfg.target.host),
        mode: match cfg.mode {
            Mode::Open { rate } => format!("open loop, {rate} req/s"),
            Mode::Closed { users, think } => {
                format!("closed loop, {users} users, think {} ms", think.as_millis())
            }
        },
        scenario: cfg.scenario.name().into(),
        shape: cfg.shape.name().into(),
        duration_s: secs,
        total,
        by_request,
        timeline,
        statuses: rec.statuses,
        drift,
        slo,
        passed,
        server_cache_hit_rate: None,
    }
}

fn ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |x| format!("{x:.2}"))
}

impl Report {
    /// The terminal table.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{} — {}, scenario {}, shape {}, {:.0} s\n\n",
            self.target, self.mode, self.scenario, self.shape, self.duration_s
        );
        let _ = writeln!(
            out,
            "{:<26} {:>9} {:>7} {:>10} {:>9} {:>9} {:>9} {:>9}",
            "request", "count", "errors", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms"
        );
        for l in self.by_request.iter().chain(std::iter::once(&self.total)) {
            let _ = writeln!(
                out,
                "{:<26} {:>9} {:>7} {:>10.1} {:>9} {:>9} {:>9} {:>9.2}",
                l.name,
                l.requests,
                l.errors,
                l.rps,
                ms(l.p50_ms),
                ms(l.p95_ms),
                ms(l.p99_ms),
                l.max_ms
            );
        }
        let statuses: Vec<String> = self
            .statuses
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        let _ = writeln!(out, "\nresponses: {}", statuses.join(", "));
        if let Some(h) = self.server_cache_hit_rate {
            let _ = writeln!(
                out,
                "server cache hit rate during the run: {:.1} %",
                h * 100.0
            );
        }
        if let Some((first, last)) = self.drift {
            let _ = writeln!(
                out,
                "soak drift: p95 {} ms in the first tenth, {} ms in the last",
                ms(first),
                ms(last)
            );
        }
        out += "\nSLO\n";
        for c in &self.slo {
            let _ = writeln!(
                out,
                "  {:<20} {:>12} (limit {}{})  {}",
                c.check,
                if c.check == "error rate" {
                    format!("{:.4} %", c.actual * 100.0)
                } else {
                    format!("{:.2}", c.actual)
                },
                if c.check.starts_with("throughput") {
                    "≥ "
                } else {
                    "< "
                },
                if c.check == "error rate" {
                    format!("{} %", c.limit * 100.0)
                } else {
                    format!("{}", c.limit)
                },
                if c.passed { "pass" } else { "FAIL" }
            );
        }
        let _ = writeln!(
            out,
            "\n{}",
            if self.passed {
                "All SLOs met."
            } else {
                "SLO FAILED."
            }
        );
        out
    }

    /// The self-contained HTML report.
    pub fn html(&self) -> String {
        let esc = |s: &str| {
            s.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;")
        };
        let mut rows = String::new();
        for l in self.by_request.iter().chain(std::iter::once(&self.total)) {
            let _ = write!(
                rows,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td></tr>",
                esc(&l.name),
                l.requests,
                l.errors,
                l.rps,
                ms(l.p50_ms),
                ms(l.p95_ms),
                ms(l.p99_ms),
                l.max_ms
            );
        }
        let mut checks = String::new();
        for c in &self.slo {
            let _ = write!(
                checks,
                "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{:.4}</td><td>{}</td></tr>",
                if c.passed { "pass" } else { "fail" },
                esc(&c.check),
                c.limit,
                c.actual,
                if c.passed { "pass" } else { "FAIL" }
            );
        }
        let rps: Vec<(f64, f64)> = self
            .timeline
            .iter()
            .map(|s| (s.t as f64, s.requests as f64))
            .collect();
        let pct = |f: fn(&Second) -> Option<f64>| -> Vec<(f64, f64)> {
            self.timeline
                .iter()
                .filter_map(|s| f(s).map(|v| (s.t as f64, v)))
                .collect()
        };
        let throughput = chart(
            "Throughput (requests per second)",
            "req/s",
            &[("requests", "#2b6cb0", rps)],
        );
        let latency = chart(
            "Latency percentiles per second (ms)",
            "ms",
            &[
                ("p50", "#38a169", pct(|s| s.p50_ms)),
                ("p95", "#d69e2e", pct(|s| s.p95_ms)),
                ("p99", "#e53e3e", pct(|s| s.p99_ms)),
            ],
        );
        format!(
            r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>vcci load test — {scenario}</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 980px; color: #1a202c; padding: 0 1rem; }}
h1 {{ font-size: 1.4rem; }} h2 {{ font-size: 1.1rem; margin-top: 2rem; }}
table {{ border-collapse: collapse; width: 100%; }} td, th {{ padding: .3rem .5rem; border-bottom: 1px solid #e2e8f0; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }} tr.fail td {{ color: #c53030; font-weight: 600; }} tr.pass td:last-child {{ color: #2f855a; }}
.verdict {{ font-size: 1.2rem; font-weight: 700; color: {verdict_color}; }}
svg {{ width: 100%; height: auto; background: #fff; border: 1px solid #e2e8f0; }}
</style></head>
<body>
<h1>vcci load test</h1>
<p>{target} · {mode} · scenario <b>{scenario}</b> · shape {shape} · {duration:.0} s · {requests} requests</p>
<p class="verdict" id="verdict">{verdict}</p>
<p>{cache}</p>
<h2>Service-level objectives</h2>
<table id="slo"><tr><th>check</th><th>limit</th><th>actual</th><th></th></tr>{checks}</table>
<h2>Throughput</h2>
{throughput}
<h2>Latency</h2>
{latency}
<h2>By request</h2>
<table id="requests"><tr><th>request</th><th>count</th><th>errors</th><th>req/s</th><th>p50 ms</th><th>p95 ms</th><th>p99 ms</th><th>max ms</th></tr>{rows}</table>
<p>Open-loop latencies are measured from each request's scheduled start (corrected for coordinated omission).</p>
</body></html>
"#,
            target = esc(&self.target),
            mode = esc(&self.mode),
            scenario = esc(&self.scenario),
            shape = esc(&self.shape),
            duration = self.duration_s,
            requests = self.total.requests,
            verdict = if self.passed {
                "All SLOs met"
            } else {
                "SLO failed"
            },
            verdict_color = if self.passed { "#2f855a" } else { "#c53030" },
            cache = self
                .server_cache_hit_rate
                .map_or(String::new(), |h| format!(
                    "Server cache hit rate during the run: {:.1} %",
                    h * 100.0
                )),
        )
    }
}

/// A line chart as inline SVG: `series` of (label, colour, points).
/// A chart's series: label, colour, (x, y) points.
type Series<'a> = (&'a str, &'a str, Vec<(f64, f64)>);

fn chart(title: &str, unit: &str, series: &[Series<'_>]) -> String {
    let (w, h, left, bottom, top, right) = (900.0, 300.0, 60.0, 30.0, 34.0, 110.0);
    let max_x = series
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.0))
        .fold(1.0f64, f64::max);
    let max_y = series
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.1))
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.1;
    let x = |v: f64| left + v / max_x * (w - left - right);
    let y = |v: f64| h - bottom - v / max_y * (h - top - bottom);
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="{title}"><title>{title}</title>"#
    );
    for i in 0..=4 {
        let v = max_y / 4.0 * f64::from(i);
        let _ = write!(
            svg,
            r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#edf2f7"/><text x="{}" y="{:.1}" font-size="11" text-anchor="end" fill="#4a5568">{}</text>"##,
            w - right,
            left - 6.0,
            y(v) + 4.0,
            if v >= 100.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.1}")
            },
            y = y(v)
        );
    }
    let _ = write!(
        svg,
        r##"<text x="{left}" y="{}" font-size="11" fill="#4a5568">0 s</text><text x="{}" y="{}" font-size="11" text-anchor="end" fill="#4a5568">{max_x:.0} s</text><text x="10" y="14" font-size="11" fill="#4a5568">{unit}</text>"##,
        h - 8.0,
        w - right,
        h - 8.0
    );
    for (i, (label, colour, pts)) in series.iter().enumerate() {
        let points: Vec<String> = pts
            .iter()
            .map(|(a, b)| format!("{:.1},{:.1}", x(*a), y(*b)))
            .collect();
        let _ = write!(
            svg,
            r#"<polyline class="series" data-series="{label}" fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
            points.join(" ")
        );
        let ly = top + 16.0 * i as f64;
        let _ = write!(
            svg,
            r#"<rect x="{}" y="{}" width="12" height="3" fill="{colour}"/><text x="{}" y="{}" font-size="12">{label}</text>"#,
            w - right + 12.0,
            ly,
            w - right + 30.0,
            ly + 5.0
        );
    }
    svg + "</svg>"
}
