//! The load tester against real and fake servers: counts agree with what the server saw,
//! open-loop latencies include queueing (coordinated omission), shapes, SLO failures.

use std::time::Duration;

use axum::http::Method;
use vcci_loadtest::client::Target;
use vcci_loadtest::scenario::Scenario;
use vcci_loadtest::{Config, Mode, Shape, Slo};

fn config(url: &str, key: &str, mode: Mode, scenario: Scenario, secs: u64) -> Config {
    Config {
        target: Target::parse(url).unwrap(),
        key: key.to_owned(),
        mode,
        scenario,
        shape: Shape::Constant,
        duration: Duration::from_secs(secs),
        timeout: Duration::from_secs(10),
        max_connections: 32,
        seed: 3,
        slo: Slo::default(),
        progress: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_counts_what_the_server_saw() {
    let host = vcci_loadtest::selfhost::start(3000).await.unwrap();
    let cfg = config(
        &host.url,
        &host.key,
        Mode::Closed {
            users: 8,
            think: Duration::ZERO,
        },
        Scenario::ReadHeavy,
        2,
    );
    let report = vcci_loadtest::run(cfg).await.unwrap();
    assert!(report.total.requests > 100, "{}", report.table());
    assert_eq!(report.total.errors, 0, "{}", report.table());
    let counts = vcci_loadtest::counts(&report);
    let m = host.app.metrics();
    let seen = |route: &str| m.count(route, &Method::GET);
    // Discovery made one list of transactions and one of suppliers before the run.
    assert_eq!(
        seen("/api/v1/transactions"),
        counts["list transactions"] + 1
    );
    assert_eq!(
        seen("/api/v1/transactions/{transaction_id}"),
        counts["transaction detail"]
    );
    assert_eq!(
        seen("/api/v1/suppliers/{supplier_id}"),
        counts["supplier detail"]
    );
    assert_eq!(seen("/api/v1/emissions/summary"), counts["summary"]);
    assert_eq!(seen("/api/v1/emissions/by-month"), counts["by month"]);
    assert!(report.passed);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_scenarios_store_their_lines() {
    let host = vcci_loadtest::selfhost::start(2000).await.unwrap();
    let cfg = config(
        &host.url,
        &host.key,
        Mode::Open { rate: 100.0 },
        Scenario::WriteHeavy,
        2,
    );
    let report = vcci_loadtest::run(cfg).await.unwrap();
    assert_eq!(report.total.errors, 0, "{}", report.table());
    let created = vcci_loadtest::counts(&report)["create transactions (10)"];
    assert!(created > 0);
    assert_eq!(
        host.app
            .metrics()
            .count("/api/v1/transactions", &Method::POST),
        created
    );
    // The open loop kept its rate: ~200 requests in 2 s.
    assert!(
        (150..=250).contains(&report.total.requests),
        "{}",
        report.total.requests
    );
    host.stop().await;
}

/// A server that answers every request after `delay`, one connection at a time.
async fn slow_server(delay: Duration) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let mut chunk = [0u8; 4096];
                    let Ok(n) = s.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..i + 4); // the scenarios' GETs have no body
                        tokio::time::sleep(delay).await;
                        let body = br#"{"data": []}"#;
                        let head = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/json\r\n\r\n",
                            body.len()
                        );
                        if s.write_all(head.as_bytes()).await.is_err()
                            || s.write_all(body).await.is_err()
                        {
                            return;
                        }
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_latency_includes_the_queue_a_slow_server_causes() {
    // Service takes 100 ms and one request at a time fits (one connection): 10 req/s at
    // most. Sending 20 req/s for 2 s, requests queue, and their latency counts from when
    // they were due — not from when a connection became free.
    let url = slow_server(Duration::from_millis(100)).await;
    let mut cfg = config(&url, "k", Mode::Open { rate: 20.0 }, Scenario::ReadHeavy, 2);
    cfg.max_connections = 1;
    cfg.slo.p99_ms = 1000.0;
    let open = vcci_loadtest::run(cfg.clone()).await.unwrap();
    assert_eq!(open.total.requests, 40);
    assert!(open.total.p99_ms.unwrap() > 1500.0, "{}", open.table());
    assert!(open.total.p50_ms.unwrap() > 500.0, "{}", open.table());
    assert!(!open.passed, "the queueing breaks the p99 SLO");
    // A closed loop over the same server sees only the service time.
    cfg.mode = Mode::Closed {
        users: 1,
        think: Duration::ZERO,
    };
    let closed = vcci_loadtest::run(cfg).await.unwrap();
    let p99 = closed.total.p99_ms.unwrap();
    assert!((90.0..200.0).contains(&p99), "{}", closed.table());
}

#[test]
fn shapes_vary_the_load() {
    let total = Duration::from_secs(100);
    let ramp = Shape::Ramp {
        up: Duration::from_secs(50),
    };
    assert!((ramp.factor(Duration::ZERO, total) - 0.1).abs() < 1e-9);
    assert!((ramp.factor(Duration::from_secs(25), total) - 0.55).abs() < 1e-9);
    assert_eq!(ramp.factor(Duration::from_secs(80), total), 1.0);
    let spike = Shape::Spike { factor: 5.0 };
    assert_eq!(spike.factor(Duration::from_secs(10), total), 1.0);
    assert_eq!(spike.factor(Duration::from_secs(50), total), 5.0);
    assert_eq!(spike.factor(Duration::from_secs(70), total), 1.0);
    assert_eq!(Shape::Soak.factor(Duration::from_secs(99), total), 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spike_shows_in_the_timeline() {
    let url = slow_server(Duration::ZERO).await;
    let mut cfg = config(&url, "k", Mode::Open { rate: 50.0 }, Scenario::ReadHeavy, 5);
    cfg.shape = Shape::Spike { factor: 4.0 };
    let r = vcci_loadtest::run(cfg).await.unwrap();
    let at = |t: usize| {
        r.timeline
            .iter()
            .find(|s| s.t == t)
            .map_or(0, |s| s.requests)
    };
    // Seconds 2 (40-60 % of 5 s) carries 4× the load of seconds 0-1.
    assert!(at(2) as f64 > 2.5 * at(0) as f64, "{:?}", r.timeline);
    assert_eq!(r.total.errors, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_gives_the_servers_cache_hit_rate() {
    let host = vcci_loadtest::selfhost::start(2000).await.unwrap();
    let cfg = config(
        &host.url,
        &host.key,
        Mode::Open { rate: 200.0 },
        Scenario::ReadHeavy,
        2,
    );
    let report = vcci_loadtest::run(cfg).await.unwrap();
    // A read-only scenario over a few hundred distinct URLs: mostly hits.
    let h = report
        .server_cache_hit_rate
        .expect("vcci exposes its cache counters");
    assert!(h > 0.3 && h <= 1.0, "{h}");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_events_run_counts_streams_heartbeats_and_every_event() {
    let host = vcci_loadtest::selfhost::start(1000).await.unwrap();
    let report = vcci_loadtest::events::run(vcci_loadtest::events::EventsConfig {
        target: Target::parse(&host.url).unwrap(),
        key: host.key.clone(),
        streams: 40,
        opening: 8,
        hold: Duration::from_millis(200),
        writes: 3,
        timeout: Duration::from_secs(20),
    })
    .await
    .unwrap();
    assert_eq!(
        (report.streams_open, report.open_failures),
        (40, 0),
        "{}",
        report.table()
    );
    assert_eq!(report.streams_after_hold, 40);
    assert_eq!((report.events_expected, report.events_received), (120, 120));
    assert_eq!(report.write_to_all_ms.len(), 3);
    assert!(report.event_max_ms > 0.0 && report.event_p50_ms <= report.event_max_ms);
    assert!(report.rss_per_stream_bytes.is_some());
    // The writes are lines like any other: three more on the node.
    assert_eq!(
        host.app
            .metrics()
            .count("/api/v1/transactions", &Method::POST),
        3
    );
    host.stop().await;
}
