//! The response cache (tenant separation, invalidation by writes from this node and from
//! other processes), metrics, request IDs, timeouts, the OpenAPI document and the docs page.

use std::time::Duration;
use vcci_store::import::ImportTarget;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;

mod common;
use common::{blocking, call, config, env, get};

fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_cached_response_is_never_served_to_another_organization() {
    let e = env();
    let uri = "/api/v1/emissions/summary";
    let (_, _, acme1) = get(&e.router, uri, Some(&e.viewer)).await;
    let (_, _, acme2) = get(&e.router, uri, Some(&e.admin)).await;
    let (_, _, other) = get(&e.router, uri, Some(&e.other)).await;
    assert_eq!(acme1, acme2, "same organization, same entry");
    assert_ne!(acme1, other);
    let other: Value = serde_json::from_str(&other).unwrap();
    assert_eq!(
        other["transaction_count"], 1,
        "the other organization's own data"
    );
    // The same for a detail route: 'secret' exists only in the other organization.
    let (s, _, _) = get(&e.router, "/api/v1/transactions/secret", Some(&e.other)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = get(&e.router, "/api/v1/transactions/secret", Some(&e.viewer)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, _, m) = get(&e.router, "/metrics", None).await;
    assert!(
        metric(&m, "vcci_cache_hits_total{level=\"memory\"}") >= 1.0,
        "{m}"
    );
}

#[tokio::test]
async fn writes_from_this_node_are_visible_on_the_next_read() {
    let e = env();
    let uri = "/api/v1/transactions?limit=1000";
    let (_, _, before) = get(&e.router, uri, Some(&e.viewer)).await;
    let n = |s: &str| {
        serde_json::from_str::<Value>(s).unwrap()["data"]
            .as_array()
            .unwrap()
            .len()
    };
    let (s, _) = call(&e.router, "POST", "/api/v1/transactions", Some(&e.analyst), Some(json!({"transactions": [{"transaction_id": "new1", "date": "2024-05-05", "amount": 5, "naics_code": "484121"}]}))).await;
    assert_eq!(s, StatusCode::OK);
    let (_, _, after) = get(&e.router, uri, Some(&e.viewer)).await;
    assert_eq!(n(&after), n(&before) + 1);
    let (s, _) = call(
        &e.router,
        "DELETE",
        "/api/v1/transactions/new1",
        Some(&e.analyst),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _, _) = get(&e.router, "/api/v1/transactions/new1", Some(&e.viewer)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, _, again) = get(&e.router, uri, Some(&e.viewer)).await;
    assert_eq!(n(&again), n(&before));
}

#[tokio::test]
async fn writes_from_another_process_are_picked_up_by_the_generation_poll() {
    let e = env();
    let uri = "/api/v1/emissions/summary";
    let (_, _, before) = get(&e.router, uri, Some(&e.viewer)).await;
    // A write through the store directly, as `vcci import` in another process does.
    let import = |csv: &str| {
        blocking(|| {
            let acme = e.store.connect().unwrap().require_org("acme").unwrap();
            let mut rejects = vcci_store::import::RejectsWriter::new(Vec::new()).unwrap();
            vcci_store::import::import_transactions(
                &ImportTarget {
                    store: &e.store,
                    catalog: vcci_core::catalog(),
                    org: &acme,
                    source: "cli.csv",
                    options: &Default::default(),
                    actor: &vcci_store::Actor::system("test"),
                },
                csv.as_bytes(),
                &mut rejects,
                &mut |_| {},
            )
            .unwrap();
        })
    };
    import("transaction_id,date,amount,naics_code\ncli1,2024-06-01,500,484121\n");
    // Until the node polls, the cached summary stands; after, the new line counts.
    let (_, _, stale) = get(&e.router, uri, Some(&e.viewer)).await;
    assert_eq!(stale, before);
    e.app.poll_generations().await.unwrap();
    let (_, _, fresh) = get(&e.router, uri, Some(&e.viewer)).await;
    let (b, f): (Value, Value) = (
        serde_json::from_str(&before).unwrap(),
        serde_json::from_str(&fresh).unwrap(),
    );
    assert_eq!(
        f["transaction_count"].as_i64().unwrap(),
        b["transaction_count"].as_i64().unwrap() + 1
    );
    // The background poll does it by itself.
    let bg = e.app.start_background();
    import("transaction_id,date,amount,naics_code\ncli2,2024-06-02,500,484121\n");
    let started = std::time::Instant::now();
    loop {
        let (_, _, now) = get(&e.router, uri, Some(&e.viewer)).await;
        let v: Value = serde_json::from_str(&now).unwrap();
        if v["transaction_count"].as_i64().unwrap() == f["transaction_count"].as_i64().unwrap() + 1
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never picked up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bg.stop().await;
}

#[tokio::test]
async fn a_revoked_key_is_refused_once_the_node_polls() {
    let e = env();
    let key = common::create_key(&e.store, "acme", vcci_store::model::keys::Role::Viewer);
    let (s, _, _) = get(&e.router, "/api/v1/emissions/summary", Some(&key)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(common::revoke_key(&e.store, &key), "revoked");
    e.app.poll_generations().await.unwrap();
    let (s, _, _) = get(&e.router, "/api/v1/emissions/summary", Some(&key)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_settings_change_reaches_the_next_request_once_the_node_polls() {
    let e = env();
    let me = |body: String| serde_json::from_str::<Value>(&body).unwrap();
    let (_, _, before) = get(&e.router, "/api/v1/me", Some(&e.analyst)).await;
    assert_eq!(me(before)["default_currency"], "USD");
    // Another process (the CLI) changes the organization's default currency.
    blocking(|| {
        let mut db = e.store.connect().unwrap();
        let acme = db.require_org("acme").unwrap();
        let eur = vcci_store::Org {
            default_currency: vcci_core::Currency::parse("EUR").unwrap(),
            ..acme.clone()
        };
        db.recalculate(
            vcci_core::catalog(),
            &acme,
            &eur,
            &vcci_store::Actor::system("test"),
        )
        .unwrap();
    });
    e.app.poll_generations().await.unwrap();
    let (_, _, after) = get(&e.router, "/api/v1/me", Some(&e.analyst)).await;
    assert_eq!(me(after)["default_currency"], "EUR");
    // A line without a currency written now is in EUR.
    let (s, v) = call(
        &e.router,
        "POST",
        "/api/v1/emissions/calculate",
        Some(&e.analyst),
        Some(json!({"lines": [{"date": "2023-03-15", "amount": 1000, "naics_code": "334111"}]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let em = &v["results"][0]["emission"];
    assert_eq!(em["conversions"]["spend"]["currency"], "EUR");
    assert_eq!(em["fallbacks"][0]["code"], "currency_assumed");
}

#[tokio::test]
async fn metrics_count_requests_per_route_template() {
    let e = env();
    for _ in 0..3 {
        get(&e.router, "/api/v1/transactions/t1", Some(&e.viewer)).await;
    }
    get(&e.router, "/api/v1/transactions/t2", Some(&e.viewer)).await;
    get(&e.router, "/api/v1/transactions/nope", Some(&e.viewer)).await;
    get(&e.router, "/no/such/route", None).await;
    let (s, h, m) = get(&e.router, "/metrics", None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        h["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let route = "route=\"/api/v1/transactions/{transaction_id}\",method=\"GET\"";
    assert_eq!(
        metric(
            &m,
            &format!("vcci_http_requests_total{{{route},status=\"2xx\"}}")
        ),
        4.0,
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            &format!("vcci_http_requests_total{{{route},status=\"4xx\"}}")
        ),
        1.0
    );
    assert_eq!(
        metric(
            &m,
            &format!("vcci_http_request_duration_seconds_count{{{route}}}")
        ),
        5.0
    );
    assert_eq!(
        metric(
            &m,
            &format!("vcci_http_request_duration_seconds_bucket{{{route},le=\"+Inf\"}}")
        ),
        5.0
    );
    assert!(
        !m.contains("/api/v1/transactions/t1"),
        "raw paths never become labels"
    );
    assert!(m.contains("route=\"unmatched\""));
    assert!(m.contains("vcci_build_info{version="));
    assert!(m.contains("vcci_db_pool_connections 2"));
    // Every sample line is `name{labels} value` or `name value`.
    for l in m.lines().filter(|l| !l.starts_with('#')) {
        let v = l.rsplit(' ').next().unwrap();
        assert!(v.parse::<f64>().is_ok(), "{l}");
    }
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let e = env();
    let res = e
        .router
        .clone()
        .oneshot(
            Request::builder()
                .uri("/health")
                .header("x-request-id", "abc-123")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "abc-123");
    let (_, h1, _) = get(&e.router, "/health", None).await;
    let (_, h2, _) = get(&e.router, "/health", None).await;
    assert_ne!(h1["x-request-id"], h2["x-request-id"]);
    // Hostile ids are replaced.
    let res = e
        .router
        .clone()
        .oneshot(
            Request::builder()
                .uri("/health")
                .header("x-request-id", "a b<script>")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_ne!(res.headers()["x-request-id"], "a b<script>");
}

#[tokio::test]
async fn slow_requests_time_out_with_the_error_shape() {
    let e = env();
    let app = vcci_server::App::new(
        e.store.clone(),
        vcci_server::AppConfig {
            request_timeout: Duration::from_nanos(1),
            ..config(&e.store)
        },
    )
    .unwrap();
    let router = vcci_server::build_app(app);
    let lines: Vec<Value> = (0..3000)
        .map(|i| json!({"transaction_id": format!("s{i}"), "date": "2024-01-01", "amount": 1, "naics_code": "484121"}))
        .collect();
    let (s, v) = call(
        &router,
        "POST",
        "/api/v1/transactions",
        Some(&e.analyst),
        Some(json!({"transactions": lines})),
    )
    .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(v["error"]["code"], "timeout");
}

#[tokio::test]
async fn hostile_filter_text_is_data_not_sql() {
    let e = env();
    for q in [
        "/api/v1/suppliers?q=%27%20OR%201%3D1%20--",
        "/api/v1/suppliers?country=%27%3B%20DROP%20TABLE%20transactions%3B--",
        "/api/v1/transactions?supplier_id=%27%20OR%20%271%27%3D%271",
        "/api/v1/emissions/summary?supplier_id=x%27%29%20UNION%20SELECT%201--",
        "/api/v1/factors?q=%25%25%25_%5C",
    ] {
        let (s, _, body) = get(&e.router, q, Some(&e.viewer)).await;
        assert_eq!(s, StatusCode::OK, "{q}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        if let Some(d) = v["data"].as_array() {
            assert!(d.is_empty(), "{q} matched {d:?}");
        }
    }
    let (_, _, body) = get(&e.router, "/api/v1/transactions", Some(&e.viewer)).await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["data"].as_array().unwrap().len(),
        2,
        "nothing was dropped"
    );
}

#[tokio::test]
async fn openapi_is_generated_from_the_router_and_matches_its_snapshot() {
    let e = env();
    let (s, _, body) = get(&e.router, "/openapi.json", None).await;
    assert_eq!(s, StatusCode::OK);
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    // Every path and method of the contract (../shared/API.md) is there.
    for (path, method) in [
        ("/health", "get"),
        ("/ready", "get"),
        ("/metrics", "get"),
        ("/openapi.json", "get"),
        ("/api/v1/suppliers", "post"),
        ("/api/v1/suppliers", "get"),
        ("/api/v1/suppliers/{supplier_id}", "get"),
        ("/api/v1/transactions", "post"),
        ("/api/v1/transactions", "get"),
        ("/api/v1/transactions/{transaction_id}", "get"),
        ("/api/v1/transactions/{transaction_id}", "delete"),
        ("/api/v1/factors", "get"),
        ("/api/v1/factors/{set}/{key}", "get"),
        ("/api/v1/emissions/calculate", "post"),
        ("/api/v1/emissions/summary", "get"),
        ("/api/v1/emissions/by-month", "get"),
        ("/api/v1/emissions/by-supplier", "get"),
        ("/api/v1/reports", "post"),
        ("/api/v1/reports/{job_id}/download", "get"),
        ("/api/v1/imports", "post"),
        ("/api/v1/jobs/{job_id}", "get"),
        ("/api/v1/exports/transactions.csv", "get"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing"
        );
    }
    // Every documented operation is routed (none falls through to the 404 fallback).
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let uri = path
                .replace("{transaction_id}", "t1")
                .replace("{supplier_id}", "S1")
                .replace("{set}", "desnz")
                .replace("{key}", "x")
                .replace("{job_id}", "00000000000000000000000000000000");
            let res = e
                .router
                .clone()
                .oneshot(
                    Request::builder()
                        .method(method.to_uppercase().as_str())
                        .uri(&uri)
                        .header("authorization", format!("Bearer {}", e.viewer))
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            let status = res.status();
            // The live-update stream does not end: its head is enough.
            if res.headers().get("content-type").map(|v| v.as_bytes()) == Some(b"text/event-stream")
            {
                assert_eq!(status, StatusCode::OK, "{uri}");
                continue;
            }
            let b = axum::body::to_bytes(res.into_body(), 1 << 24)
                .await
                .unwrap();
            let text = String::from_utf8_lossy(&b);
            assert!(
                !text.contains("route not found"),
                "{method} {uri}: {status} {text}"
            );
        }
    }
    // Authenticated operations say so; the operational ones need no key.
    assert_eq!(doc["paths"]["/health"]["get"]["security"], json!([]));
    assert_eq!(
        doc["paths"]["/api/v1/transactions"]["post"]["x-vcci-role"],
        "analyst"
    );
    assert!(doc["paths"]["/api/v1/transactions"]["get"]["responses"]["401"].is_object());
    // The snapshot: a reviewed copy; regenerate with VCCI_UPDATE_SNAPSHOTS=1.
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/openapi.json");
    let pretty = serde_json::to_string_pretty(&doc).unwrap() + "\n";
    if std::env::var_os("VCCI_UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &pretty).unwrap();
    }
    let want = std::fs::read_to_string(&path)
        .expect("snapshot exists (VCCI_UPDATE_SNAPSHOTS=1 writes it)");
    assert!(
        want == pretty,
        "/openapi.json changed; review and run with VCCI_UPDATE_SNAPSHOTS=1"
    );
}

#[tokio::test]
async fn the_docs_page_and_its_assets_are_served_from_the_binary() {
    let e = env();
    let (s, h, body) = get(&e.router, "/docs", None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    for asset in [
        "/docs/assets/swagger-ui.css",
        "/docs/assets/swagger-ui-bundle.js",
        "/docs/assets/init.js",
    ] {
        assert!(body.contains(asset), "{asset}");
        let (s, _, content) = get(&e.router, asset, None).await;
        assert_eq!(s, StatusCode::OK, "{asset}");
        assert!(!content.is_empty());
    }
    assert!(
        !body.contains("http"),
        "the page loads nothing from elsewhere"
    );
    let (_, _, init) = get(&e.router, "/docs/assets/init.js", None).await;
    assert!(
        init.contains("validatorUrl: null"),
        "no call to the online validator"
    );
    assert!(init.contains("/openapi.json"));
}

/// Runs `tool args` with `input` on stdin when the tool is installed; `.ci/run` sets
/// VCCI_REQUIRE_TOOLS=1 so that in CI a missing tool fails instead of skipping.
fn run_tool(tool: &str, args: &[&str], input: &str) -> Option<(bool, String)> {
    use std::io::Write;
    let child = std::process::Command::new(tool)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(_) if std::env::var_os("VCCI_REQUIRE_TOOLS").is_none() => {
            eprintln!("{tool} is not installed: check skipped (CI requires it)");
            return None;
        }
        Err(e) => panic!("{tool} is required (VCCI_REQUIRE_TOOLS): {e}"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    Some((
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

#[tokio::test]
async fn metrics_move_with_requests_and_promtool_accepts_them() {
    let e = env();
    let bg = e.app.start_background();
    let (_, _, before) = get(&e.router, "/metrics", None).await;
    let q = "vcci_db_query_duration_seconds_count{query=\"routes::summary::summary\"}";
    let sum_route = "vcci_http_requests_total{route=\"/api/v1/emissions/summary\",method=\"GET\",status=\"2xx\"}";
    assert_eq!(metric(&before, q), 0.0);
    for _ in 0..3 {
        get(&e.router, "/api/v1/emissions/summary", Some(&e.viewer)).await;
    }
    get(
        &e.router,
        "/api/v1/emissions/summary?date_from=2023-01-01",
        Some(&e.viewer),
    )
    .await;
    // An import job moves the job and import metrics.
    let res = e
        .router
        .clone()
        .oneshot(
            Request::builder()
                .method("POST")
                .uri("/api/v1/imports")
                .header("authorization", format!("Bearer {}", e.analyst))
                .header("content-type", "text/csv")
                .body(Body::from(
                    "transaction_id,date,amount,naics_code\nm1,2024-01-01,5,484121\n",
                ))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let started = std::time::Instant::now();
    let after = loop {
        let (_, _, m) = get(&e.router, "/metrics", None).await;
        if metric(&m, "vcci_jobs{kind=\"import\",status=\"succeeded\"}") == 1.0 {
            break m;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{m}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(metric(&after, sum_route), 4.0);
    assert_eq!(
        metric(&after, q),
        2.0,
        "two computed, two served from the cache"
    );
    assert_eq!(
        metric(&after, "vcci_cache_hits_total{level=\"memory\"}"),
        2.0
    );
    assert_eq!(metric(&after, "vcci_import_lines_total"), 1.0);
    // The standard process series, as a Prometheus client library exports them.
    if cfg!(target_os = "linux") {
        let rss = metric(&after, "process_resident_memory_bytes");
        assert!(rss > 1e6 && rss < 1e11, "{rss}");
        assert!(metric(&after, "process_cpu_seconds_total") > 0.0);
        let fds = metric(&after, "process_open_fds");
        assert!(
            fds >= 3.0 && fds <= metric(&after, "process_max_fds"),
            "{fds}"
        );
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let started = metric(&after, "process_start_time_seconds");
        assert!(
            started <= now + 1.0 && started > now - 3600.0,
            "{started} {now}"
        );
    }
    assert!(metric(&after, "vcci_import_lines_per_second") > 0.0);
    if let Some((ok, out)) = run_tool("promtool", &["check", "metrics"], &after) {
        assert!(ok, "promtool rejected /metrics:\n{out}");
    }
    bg.stop().await;
}

#[tokio::test]
async fn the_performance_report_is_for_admins_and_lists_routes_and_slow_queries() {
    let e = env();
    let app = vcci_server::App::new(
        e.store.clone(),
        vcci_server::AppConfig {
            slow_query: Duration::ZERO,
            ..config(&e.store)
        },
    )
    .unwrap();
    let router = vcci_server::build_app(app);
    for _ in 0..5 {
        get(&router, "/api/v1/transactions/t1", Some(&e.viewer)).await;
    }
    let (s, _, _) = get(&router, "/api/v1/admin/performance", Some(&e.viewer)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, body) = get(&router, "/api/v1/admin/performance", Some(&e.admin)).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    for w in ["1m", "5m", "15m"] {
        let routes = v["windows"][w].as_array().unwrap();
        assert_eq!(routes[0]["route"], "*");
        let r = routes
            .iter()
            .find(|r| r["route"] == "/api/v1/transactions/{transaction_id}")
            .unwrap();
        assert_eq!(r["requests"], 5, "{w}");
        assert_eq!(r["error_rate"], 0.0);
        let (p50, p99) = (r["p50_ms"].as_f64().unwrap(), r["p99_ms"].as_f64().unwrap());
        assert!(p50 > 0.0 && p50 <= p99);
    }
    assert_eq!(v["cache"]["memory"]["misses"], 1);
    assert_eq!(v["cache"]["memory"]["hits"], 4);
    assert!((v["cache"]["memory"]["hit_rate"].as_f64().unwrap() - 0.8).abs() < 1e-9);
    // With a threshold of 0 every database call is slow: the list names them.
    let slow = v["slowest_queries"].as_array().unwrap();
    assert!(!slow.is_empty());
    assert!(
        slow.iter()
            .any(|q| q["query"] == "routes::transactions::get_line"),
        "{slow:?}"
    );
}

#[tokio::test]
async fn the_deploy_files_use_only_exported_metrics_and_the_rules_pass_promtool() {
    let e = env();
    let (_, _, m) = get(&e.router, "/metrics", None).await;
    let exported: std::collections::HashSet<&str> = m
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
    let mut used = 0;
    for f in [
        "prometheus/alerts.yml",
        "grafana/vcci-dashboard.json",
        "otel/grafana-datasources.yaml",
    ] {
        let text = std::fs::read_to_string(root.join(f)).unwrap();
        let mut rest = text.as_str();
        while let Some(i) = rest.find("vcci_") {
            let name: String = rest[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[i + name.len()..];
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(&name);
            assert!(
                exported.contains(base),
                "{f} uses {name}, which vcci does not export"
            );
            used += 1;
        }
    }
    assert!(used > 20);
    let dash: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("grafana/vcci-dashboard.json")).unwrap(),
    )
    .unwrap();
    assert!(dash["panels"].as_array().unwrap().len() >= 10);
    let rules = root.join("prometheus/alerts.yml");
    if let Some((ok, out)) = run_tool("promtool", &["check", "rules", rules.to_str().unwrap()], "")
    {
        assert!(ok, "promtool rejected the rules:\n{out}");
    }
}

/// The collector configuration of deploy/otel: every pipeline uses only components it
/// defines, and it receives OTLP over HTTP on the port vcci's docs point at.
#[test]
fn the_collector_configuration_is_consistent() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/otel");
    let text = std::fs::read_to_string(root.join("collector.yaml")).unwrap();
    let c: Value = serde_norway::from_str(&text).unwrap();
    assert_eq!(
        c["receivers"]["otlp"]["protocols"]["http"]["endpoint"],
        "0.0.0.0:4318"
    );
    let traces = &c["service"]["pipelines"]["traces"];
    for (section, list) in [
        ("receivers", "receivers"),
        ("processors", "processors"),
        ("exporters", "exporters"),
    ] {
        let used = traces[list].as_array().unwrap();
        assert!(!used.is_empty(), "{list}");
        for name in used {
            let name = name.as_str().unwrap();
            assert!(
                c[section].get(name).is_some(),
                "the traces pipeline uses {section}.{name}, which is not defined"
            );
        }
    }
    for name in c["service"]["extensions"].as_array().unwrap() {
        assert!(c["extensions"].get(name.as_str().unwrap()).is_some());
    }
    let ds: Value = serde_norway::from_str(
        &std::fs::read_to_string(root.join("grafana-datasources.yaml")).unwrap(),
    )
    .unwrap();
    let types: Vec<&str> = ds["datasources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["tempo", "jaeger"]);
}

#[tokio::test]
async fn the_dashboard_is_served_with_a_strict_policy_and_me_names_the_caller() {
    let e = env();
    let (s, h, body) = get(&e.router, "/", None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'self'")
            && csp.contains("script-src 'self'")
            && csp.contains("frame-ancestors 'none'")
    );
    for asset in ["/ui/app.js", "/ui/app.css", "/ui/chart.umd.js"] {
        assert!(body.contains(asset));
        let (s, _, content) = get(&e.router, asset, None).await;
        assert_eq!(s, StatusCode::OK, "{asset}");
        assert!(
            !content.contains("sourceMappingURL"),
            "{asset} asks for nothing else"
        );
    }
    assert!(
        !body.contains("http://") && !body.contains("https://"),
        "nothing from elsewhere"
    );
    let (s, _, me) = get(&e.router, "/api/v1/me", Some(&e.analyst)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        serde_json::from_str::<Value>(&me).unwrap(),
        json!({"organization": "acme", "role": "analyst", "epa_version": "1.3.0", "default_currency": "USD", "flights_radiative_forcing": true})
    );
    let (s, _, _) = get(&e.router, "/api/v1/me", Some("vcci_wrong")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn unknown_query_parameters_are_refused_by_name() {
    let e = env();
    for uri in [
        "/api/v1/transactions?suplier_id=S1",
        "/api/v1/emissions/summary?from=2024-01-01",
        "/api/v1/suppliers?colour=red",
        "/api/v1/transactions/t1?field=date",
        "/api/v1/factors?query=hgv",
    ] {
        let (s, _, body) = get(&e.router, uri, Some(&e.viewer)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"]["code"], "invalid_parameter", "{uri}");
        let name = uri.split('?').nth(1).unwrap().split('=').next().unwrap();
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&format!("unknown field `{name}`")),
            "{uri}: {body}"
        );
    }
}

#[tokio::test]
async fn factor_searches_stay_cached_across_data_writes() {
    let e = env();
    let uri = "/api/v1/factors?q=hotel";
    get(&e.router, uri, Some(&e.viewer)).await;
    let (s, _) = call(&e.router, "POST", "/api/v1/transactions", Some(&e.analyst), Some(json!({"transactions": [{"transaction_id": "w1", "date": "2024-01-01", "amount": 1, "naics_code": "484121"}]}))).await;
    assert_eq!(s, StatusCode::OK);
    get(&e.router, uri, Some(&e.viewer)).await;
    let (_, _, m) = get(&e.router, "/metrics", None).await;
    assert_eq!(
        metric(&m, "vcci_cache_hits_total{level=\"memory\"}"),
        1.0,
        "the catalogue does not change with the data"
    );
}

#[tokio::test]
async fn a_node_warms_its_cache_at_start_and_says_so_on_ready() {
    let dir = tempfile::tempdir().unwrap();
    let test_db = vcci_store::testing::fresh_store(dir.path()).unwrap();
    let store = test_db.store.clone();
    let keys = common::blocking(|| common::seed(&store));
    let mut config = common::config(&store);
    config.warm_orgs = 1;
    let app = vcci_server::App::new(store.clone(), config).unwrap();
    let router = vcci_server::build_app(std::sync::Arc::clone(&app));
    let bg = app.start_background();
    // /ready says warming (503) until the warming is done, then ready.
    let started = std::time::Instant::now();
    loop {
        let (s, _, body) = get(&router, "/ready", None).await;
        let v: Value = serde_json::from_str(&body).unwrap();
        if v["status"] == "ready" {
            assert_eq!(s, StatusCode::OK);
            break;
        }
        assert_eq!(
            (s, v["status"].as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("warming")),
            "{v}"
        );
        assert!(started.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (_, _, m) = get(&router, "/metrics", None).await;
    assert_eq!(metric(&m, "vcci_cache_warm_runs_total"), 1.0);
    assert_eq!(
        metric(&m, "vcci_cache_warm_requests_total"),
        vcci_server::WARM_PATHS.len() as f64
    );
    // The most active organization's overview was computed by the warming: the first real
    // request is a hit, not a database call.
    let q = "vcci_db_query_duration_seconds_count{query=\"routes::summary::summary\"}";
    let hits = "vcci_cache_hits_total{level=\"memory\"}";
    let (computed, hit) = (metric(&m, q), metric(&m, hits));
    assert_eq!(computed, 1.0);
    let org = common::blocking(|| store.connect().unwrap().most_active_orgs(1).unwrap())[0].clone();
    let key = if org.name == "acme" { &keys.1 } else { &keys.3 };
    let (s, _, _) = get(&router, "/api/v1/emissions/summary", Some(key)).await;
    assert_eq!(s, StatusCode::OK);
    let (_, _, m) = get(&router, "/metrics", None).await;
    assert_eq!((metric(&m, q), metric(&m, hits)), (computed, hit + 1.0));
    // A request from the network cannot pass for a warming one: without a key it is a 401.
    let (s, _, _) = get(&router, "/api/v1/emissions/summary", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    bg.stop().await;
    drop(test_db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_can_profile_a_node_when_profiling_is_on() {
    let e = env();
    // Off by default.
    let (s, _, body) = get(&e.router, "/api/v1/admin/profile?seconds=1", Some(&e.admin)).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("profiling_disabled"), "{body}");
    let app = vcci_server::App::new(
        e.store.clone(),
        vcci_server::AppConfig {
            profiling: true,
            ..common::config(&e.store)
        },
    )
    .unwrap();
    let router = vcci_server::build_app(app);
    let (s, _, _) = get(&router, "/api/v1/admin/profile?seconds=1", Some(&e.analyst)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, body) = get(&router, "/api/v1/admin/profile?seconds=0", Some(&e.admin)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    // A flame graph, while something works (so there are samples); a second profile at the
    // same time is refused.
    let busy = std::thread::spawn(|| {
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed() < std::time::Duration::from_millis(1500) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        x
    });
    let r2 = router.clone();
    let admin = e.admin.clone();
    let first = tokio::spawn(async move {
        get(
            &r2,
            "/api/v1/admin/profile?seconds=1&format=svg",
            Some(&admin),
        )
        .await
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let (s, _, body) = get(&router, "/api/v1/admin/profile?seconds=1", Some(&e.admin)).await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    let (s, h, svg) = first.await.unwrap();
    busy.join().unwrap();
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["content-type"], "image/svg+xml");
    assert!(svg.contains("<svg"), "{}", &svg[..svg.len().min(200)]);
    // The pprof protobuf: a Profile whose first field is its sample types and whose string
    // table names them.
    let res = router
        .clone()
        .oneshot(
            axum::http::Request::builder()
                .uri("/api/v1/admin/profile?seconds=1")
                .header("authorization", format!("Bearer {}", e.admin))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let pb = axum::body::to_bytes(res.into_body(), 1 << 26)
        .await
        .unwrap();
    assert_eq!(pb[0], 0x0a, "field 1 (sample_type), length-delimited");
    let text = String::from_utf8_lossy(&pb);
    assert!(
        text.contains("samples") && text.contains("nanoseconds"),
        "the string table"
    );
}
