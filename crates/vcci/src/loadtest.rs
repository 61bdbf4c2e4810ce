//! `vcci loadtest`: turns the flags into a run of vcci-loadtest and reports it.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use vcci_loadtest::client::Target;
use vcci_loadtest::scenario::Scenario;
use vcci_loadtest::{Config, Mode, Shape, Slo};

use crate::cli::{LoadMode, LoadShape, LoadtestArgs};

pub fn loadtest_cmd(a: LoadtestArgs) -> Result<()> {
    if let Some(n) = a.events_streams {
        return events_cmd(&a, n);
    }
    let scenario = Scenario::parse(&a.scenario).map_err(anyhow::Error::msg)?;
    if a.duration == 0 || a.duration > vcci_loadtest::MAX_DURATION.as_secs() {
        bail!(
            "--duration must be from 1 to {} seconds",
            vcci_loadtest::MAX_DURATION.as_secs()
        );
    }
    let mode = match a.mode {
        LoadMode::Open => {
            if !(a.rate > 0.0 && a.rate.is_finite()) {
                bail!("--rate must be a positive number of requests per second");
            }
            Mode::Open { rate: a.rate }
        }
        LoadMode::Closed => Mode::Closed {
            users: a.users.max(1),
            think: Duration::from_millis(a.think_ms),
        },
    };
    let shape = match a.shape {
        LoadShape::Constant => Shape::Constant,
        LoadShape::Ramp => Shape::Ramp {
            up: Duration::from_secs(a.ramp_secs),
        },
        LoadShape::Spike => Shape::Spike {
            factor: a.spike_factor.max(1.0),
        },
        LoadShape::Soak => Shape::Soak,
    };
    let report = runtime()?.block_on(async {
        let (host, url, key) = target(&a).await?;
        let cfg = Config {
            target: Target::parse(&url).map_err(anyhow::Error::msg)?,
            key,
            mode,
            scenario,
            shape,
            duration: Duration::from_secs(a.duration),
            timeout: Duration::from_millis(a.timeout_ms.max(1)),
            max_connections: a.connections.max(1),
            seed: a.seed,
            slo: Slo {
                p95_ms: a.slo_p95_ms,
                p99_ms: a.slo_p99_ms,
                max_error_rate: a.slo_error_rate,
                min_rps: a.slo_rps,
            },
            progress: !a.quiet,
        };
        eprintln!(
            "vcci loadtest: {url}, {} s, scenario {}, shape {}",
            a.duration,
            scenario.name(),
            shape.name()
        );
        let report = vcci_loadtest::run(cfg).await.map_err(anyhow::Error::msg);
        if let Some(h) = host {
            h.stop().await;
        }
        report
    })?;
    print!("{}", report.table());
    write_json(&a, serde_json::to_vec_pretty(&report)?)?;
    if let Some(p) = &a.html {
        std::fs::write(p, report.html()).with_context(|| format!("writing {}", p.display()))?;
        eprintln!("HTML report: {}", p.display());
    }
    if !report.passed {
        let failed: Vec<String> = report
            .slo
            .iter()
            .filter(|c| !c.passed)
            .map(|c| format!("{} {:.4} (limit {})", c.check, c.actual, c.limit))
            .collect();
        bail!("SLO failed: {}", failed.join("; "));
    }
    Ok(())
}

/// `--events-streams N`: live updates under load (`vcci_loadtest::events`).
fn events_cmd(a: &LoadtestArgs, streams: usize) -> Result<()> {
    if streams == 0 || a.duration > vcci_loadtest::MAX_DURATION.as_secs() {
        bail!(
            "--events-streams must be at least 1, --duration at most {} s",
            vcci_loadtest::MAX_DURATION.as_secs()
        );
    }
    let report = runtime()?.block_on(async {
        let (host, url, key) = target(a).await?;
        eprintln!(
            "vcci loadtest: {streams} live-update streams on {url}, held {} s, then {} writes",
            a.duration, a.events_writes
        );
        let report = vcci_loadtest::events::run(vcci_loadtest::events::EventsConfig {
            target: Target::parse(&url).map_err(anyhow::Error::msg)?,
            key,
            streams,
            opening: a.events_opening,
            hold: Duration::from_secs(a.duration),
            writes: a.events_writes,
            timeout: Duration::from_millis(a.timeout_ms.max(1)),
        })
        .await
        .map_err(anyhow::Error::msg);
        if let Some(h) = host {
            h.stop().await;
        }
        report
    })?;
    print!("{}", report.table());
    write_json(a, serde_json::to_vec_pretty(&report)?)?;
    if report.events_received < report.events_expected {
        bail!(
            "{} of {} events did not arrive within --timeout-ms",
            report.events_expected - report.events_received,
            report.events_expected
        );
    }
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// What to load: an in-process server (`--self-host`, returned to be stopped) or `--url`
/// with `--key`; and its URL and key.
async fn target(
    a: &LoadtestArgs,
) -> Result<(Option<vcci_loadtest::selfhost::SelfHost>, String, String)> {
    if a.self_host {
        eprintln!(
            "vcci loadtest: starting an in-process server over {} demo lines",
            a.self_host_lines
        );
        let h = vcci_loadtest::selfhost::start(a.self_host_lines)
            .await
            .map_err(anyhow::Error::msg)?;
        let (url, key) = (h.url.clone(), h.key.clone());
        return Ok((Some(h), url, key));
    }
    Ok((
        None,
        a.url.clone().context("--url is required")?,
        a.key.clone().context("--key is required")?,
    ))
}

/// `--json FILE`: the report as JSON.
fn write_json(a: &LoadtestArgs, json: Vec<u8>) -> Result<()> {
    if let Some(p) = &a.json {
        std::fs::write(p, json).with_context(|| format!("writing {}", p.display()))?;
        eprintln!("JSON report: {}", p.display());
    }
    Ok(())
}
