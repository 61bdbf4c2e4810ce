//! Background jobs through the real router: CSV imports (streamed upload, progress, rejects,
//! restart safety), report jobs, and the streamed CSV export.

use std::sync::Arc;
use std::time::{Duration, Instant};
use vcci_store::import::ImportTarget;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;
use vcci_store::OrgId;

mod common;
use common::{blocking, call, config, env, get, upload};

/// Polls the job until it has finished (or 60 s pass).
async fn finished(router: &Router, key: &str, id: &str) -> Value {
    let started = Instant::now();
    loop {
        let (s, v) = call(
            router,
            "GET",
            &format!("/api/v1/jobs/{id}"),
            Some(key),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        if v["status"] == "succeeded" || v["status"] == "failed" {
            return v;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "job stuck: {v}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn get_text(router: &Router, key: &str, uri: &str) -> (StatusCode, String, Option<String>) {
    let (status, headers, text) = get(router, uri, Some(key)).await;
    let ty = headers
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, text, ty)
}

const GOOD_AND_BAD: &str = "transaction_id,date,amount,currency,naics_code,description\n\
    j1,2024-01-10,100,USD,484121,freight\n\
    j2,2024-02-11,abc,USD,484121,bad amount\n\
    j3,2024-03-12,250,EUR,334111,laptops\n\
    j4,2024-13-01,10,USD,484121,bad date\n\
    j5,2024-04-13,75.5,GBP,541511,consulting\n";

#[tokio::test]
async fn a_csv_import_runs_as_a_job_with_progress_and_rejects() {
    let e = env();
    let bg = e.app.start_background();
    let (s, v) = upload(&e.router, &e.analyst, GOOD_AND_BAD, "text/csv").await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let id = v["job_id"].as_str().unwrap().to_owned();
    assert_eq!(v["status_url"], format!("/api/v1/jobs/{id}"));
    let job = finished(&e.router, &e.viewer, &id).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["kind"], "import");
    assert_eq!(job["progress"]["processed"], 5);
    assert_eq!(job["progress"]["bytes_total"], GOOD_AND_BAD.len());
    assert_eq!(job["result"]["accepted"], 3);
    assert_eq!(job["result"]["rejected"], 2);
    let errors = job["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0]["line"], 3);
    assert_eq!(errors[0]["column"], "amount");
    assert_eq!(errors[1]["line"], 5);
    assert_eq!(errors[1]["column"], "date");
    // Every reject, with the original line, as CSV.
    let url = job["result"]["rejects_url"].as_str().unwrap();
    let (s, text, _) = get_text(&e.router, &e.viewer, url).await;
    assert_eq!(s, StatusCode::OK);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "line,column,error,original");
    assert!(
        lines[1].starts_with("3,amount,") && lines[1].ends_with("bad amount\""),
        "{}",
        lines[1]
    );
    // Compressed, the download still ends properly (a compressing layer polls the file's
    // stream once more after its end, which once broke the response).
    let res = e
        .router
        .clone()
        .oneshot(
            Request::builder()
                .uri(url)
                .header("authorization", format!("Bearer {}", e.viewer))
                .header("accept-encoding", "gzip")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-encoding"], "gzip");
    let gz = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    assert_eq!(
        &gz[..2],
        &[0x1f, 0x8b],
        "a complete gzip stream starts with its magic"
    );
    // The accepted lines are stored and calculated, and the summary (cached before) follows.
    let (s, v) = call(
        &e.router,
        "GET",
        "/api/v1/transactions/j3",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["emission"]["method"], "spend_based");
    let (_, sum) = call(
        &e.router,
        "GET",
        "/api/v1/emissions/summary?date_from=2024-01-01",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(sum["transaction_count"], 3);
    // Another organization cannot see the job or its rejects; a viewer cannot import.
    let (s, _) = call(
        &e.router,
        "GET",
        &format!("/api/v1/jobs/{id}"),
        Some(&e.other),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = get_text(&e.router, &e.other, url).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = upload(&e.router, &e.viewer, GOOD_AND_BAD, "text/csv").await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let (s, v) = upload(&e.router, &e.analyst, GOOD_AND_BAD, "application/json").await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(v["error"]["code"], "unsupported_media_type");
    let (s, _) = call(
        &e.router,
        "GET",
        "/api/v1/jobs/not-a-job",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    bg.stop().await;
}

#[tokio::test]
async fn a_file_without_required_columns_fails_with_the_reason() {
    let e = env();
    let bg = e.app.start_background();
    let (_, v) = upload(
        &e.router,
        &e.analyst,
        "date,amount\n2024-01-01,5\n",
        "text/csv; charset=utf-8",
    )
    .await;
    let job = finished(&e.router, &e.analyst, v["job_id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "failed");
    assert!(
        job["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("missing required column(s): transaction_id"),
        "{job}"
    );
    bg.stop().await;
}

#[tokio::test]
async fn uploads_over_the_limit_are_413_and_leave_nothing() {
    let e = env();
    let app = vcci_server::App::new(
        e.store.clone(),
        vcci_server::AppConfig {
            max_import_bytes: 100,
            ..config(&e.store)
        },
    )
    .unwrap();
    let router = vcci_server::build_app(app);
    let (s, v) = upload(&router, &e.analyst, GOOD_AND_BAD, "text/csv").await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!(v["error"]["code"], "payload_too_large");
    assert!(
        blocking(|| e.store.connect().unwrap().job_counts().unwrap()).is_empty(),
        "the partial upload was removed"
    );
}

/// A CSV of `n` distinct lines.
fn big_csv(n: usize) -> String {
    let mut s = String::from("transaction_id,date,amount,naics_code\n");
    for i in 0..n {
        s += &format!(
            "B{i:07},2024-{:02}-{:02},{}.5,484121\n",
            i % 12 + 1,
            i % 28 + 1,
            i % 1000
        );
    }
    s
}

fn line_count(store: &vcci_store::Store, org: OrgId) -> i64 {
    blocking(|| store.connect().unwrap().line_count(org).unwrap())
}

fn require_org(store: &vcci_store::Store, name: &str) -> vcci_store::Org {
    blocking(|| store.connect().unwrap().require_org(name).unwrap())
}

fn read_models_agree(store: &vcci_store::Store, org: OrgId) -> bool {
    blocking(|| {
        store
            .connect()
            .unwrap()
            .verify_read_models(org)
            .unwrap()
            .is_empty()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_import_survives_a_restart_and_a_crashed_run_resumes_without_duplicates() {
    let e = env();
    let acme = require_org(&e.store, "acme");
    let before = line_count(&e.store, acme.id);
    // Node 1 accepts the upload but stops before running it (no worker).
    let csv = big_csv(30_000);
    let (s, v) = upload(&e.router, &e.analyst, csv.clone(), "text/csv").await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let id = v["job_id"].as_str().unwrap().to_owned();
    let (_, job) = call(
        &e.router,
        "GET",
        &format!("/api/v1/jobs/{id}"),
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(job["status"], "queued");
    // A node claims it, commits part of the lines, and dies (no heartbeat any more).
    let claimed = blocking(|| {
        e.store
            .connect()
            .unwrap()
            .claim_job("dead-node")
            .unwrap()
            .unwrap()
    });
    assert_eq!(claimed.id, id);
    let half: String = csv.lines().take(15_001).map(|l| format!("{l}\n")).collect();
    blocking(|| {
        let mut rejects = vcci_store::import::RejectsWriter::new(Vec::new()).unwrap();
        vcci_store::import::import_transactions(
            &ImportTarget {
                store: &e.store,
                catalog: vcci_core::catalog(),
                org: &acme,
                source: "partial",
                options: &Default::default(),
                actor: &vcci_store::Actor::system("test"),
            },
            half.as_bytes(),
            &mut rejects,
            &mut |_| {},
        )
        .unwrap();
    });
    assert_eq!(line_count(&e.store, acme.id), before + 15_000);
    // A new node over the same database recovers the orphaned job and runs it to the end.
    let app2 = vcci_server::App::new(
        e.store.clone(),
        vcci_server::AppConfig {
            job_stale: Duration::ZERO,
            ..config(&e.store)
        },
    )
    .unwrap();
    let router2 = vcci_server::build_app(Arc::clone(&app2));
    let bg = app2.start_background();
    let job = finished(&router2, &e.viewer, &id).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["attempts"], 2);
    assert_eq!(job["result"]["accepted"], 30_000);
    assert_eq!(
        job["result"]["unchanged"], 15_000,
        "the committed half is not redone"
    );
    assert_eq!(
        line_count(&e.store, acme.id),
        before + 30_000,
        "no line lost or duplicated"
    );
    assert!(read_models_agree(&e.store, acme.id));
    bg.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_a_node_mid_import_requeues_the_job_and_the_next_start_finishes_it() {
    let e = env();
    let acme = require_org(&e.store, "acme");
    let before = line_count(&e.store, acme.id);
    let bg = e.app.start_background();
    let (_, v) = upload(&e.router, &e.analyst, big_csv(300_000), "text/csv").await;
    let id = v["job_id"].as_str().unwrap().to_owned();
    // Wait until lines are being read, then stop the node.
    let started = Instant::now();
    loop {
        let (_, j) = call(
            &e.router,
            "GET",
            &format!("/api/v1/jobs/{id}"),
            Some(&e.viewer),
            None,
        )
        .await;
        if j["status"] == "succeeded" || j["progress"]["processed"].as_i64().unwrap_or(0) > 0 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{j}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    bg.stop().await;
    let (_, j) = call(
        &e.router,
        "GET",
        &format!("/api/v1/jobs/{id}"),
        Some(&e.viewer),
        None,
    )
    .await;
    eprintln!("after stop: {}", j["status"]);
    // On a fast machine the job may have finished before the stop arrived.
    if j["status"] != "succeeded" {
        assert_eq!(j["status"], "queued", "{j}");
        assert_eq!(j["attempts"], 0, "a graceful stop is not a failed attempt");
        let app2 = vcci_server::App::new(e.store.clone(), config(&e.store)).unwrap();
        let router2 = vcci_server::build_app(Arc::clone(&app2));
        let bg2 = app2.start_background();
        let j = finished(&router2, &e.viewer, &id).await;
        assert_eq!(j["status"], "succeeded", "{j}");
        bg2.stop().await;
    }
    assert_eq!(line_count(&e.store, acme.id), before + 300_000);
    assert!(read_models_agree(&e.store, acme.id));
}

#[tokio::test]
async fn report_jobs_produce_the_inventory_and_totals() {
    let e = env();
    let bg = e.app.start_background();
    let (_, summary) = call(
        &e.router,
        "GET",
        "/api/v1/emissions/summary",
        Some(&e.viewer),
        None,
    )
    .await;
    let (s, v) = call(
        &e.router,
        "POST",
        "/api/v1/reports",
        Some(&e.viewer),
        Some(json!({"report_type": "inventory", "format": "json"})),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let id = v["job_id"].as_str().unwrap().to_owned();
    let job = finished(&e.router, &e.viewer, &id).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let url = job["result"]["download_url"].as_str().unwrap().to_owned();
    assert_eq!(url, format!("/api/v1/reports/{id}/download"));
    let (s, text, ty) = get_text(&e.router, &e.viewer, &url).await;
    assert_eq!(
        (s, ty.as_deref()),
        (StatusCode::OK, Some("application/json"))
    );
    let inv: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(inv["total_co2e_kg"], summary["total_co2e_kg"]);
    let cats = inv["categories"].as_array().unwrap();
    assert_eq!(cats.len(), 15, "every category, reported or not");
    // The fixture: t1 (NAICS 484121, transport → category 4) and t2 (334111 → category 1).
    let c4 = &cats[3];
    assert_eq!(
        (c4["category"].as_u64(), c4["status"].as_str()),
        (Some(4), Some("reported"))
    );
    assert_eq!(c4["methods"][0]["method"], "spend_based");
    assert_eq!(c4["methods"][0]["share"], 1.0);
    assert_eq!(
        c4["factor_sets"],
        json!([{"set": "epa-supply-chain", "version": "1.3.0", "transaction_count": 1}])
    );
    let by_cat: f64 = summary["by_category"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["category"] == 4)
        .unwrap()["co2e_kg"]
        .as_f64()
        .unwrap();
    assert_eq!(c4["co2e_kg"].as_f64().unwrap(), by_cat);
    assert_eq!(cats[5]["status"], "not_reported");
    // Not reported is not zero: null.
    assert!(
        cats[5]["co2e_kg"].is_null() && cats[5]["share"].is_null(),
        "{}",
        cats[5]
    );
    assert_eq!(
        inv["scope_1_2_recorded_apart"],
        json!({"scope_1_kg": 0.0, "scope_2_kg": 0.0})
    );
    assert_eq!(
        inv["settings"],
        json!({"epa_version": "1.3.0", "default_currency": "USD", "flights_radiative_forcing": true})
    );
    assert_eq!(inv["gwp"], json!({"sets": ["AR5"], "mixed": false}));
    assert_eq!(inv["supplier_primary_data_share"], 0.0);
    // By gas, per category and in all; null where there is no data.
    assert!(cats[5]["gases"].is_null());
    let co2 = c4["gases"]["co2_kg"].as_f64().unwrap();
    assert!((co2 - 555.0).abs() < 1e-6, "{}", c4["gases"]);
    assert!(inv["by_gas"]["co2_kg"].as_f64().unwrap() >= co2);
    // t1 (484121) alone in category 4: a spend-based US factor on a line with no country.
    assert_eq!(
        c4["data_quality_indicators"],
        json!({"technological": 4.0, "temporal": 1.0, "geographical": 3.0, "completeness": 1.0, "reliability": 2.0})
    );
    assert_eq!(
        inv["categories_without_data"],
        summary["categories_without_data"]
    );
    // CSV: one row per category.
    let (_, v) = call(&e.router, "POST", "/api/v1/reports", Some(&e.viewer), Some(json!({"report_type": "inventory", "format": "csv", "date_from": "2020-01-01", "date_to": "2030-12-31"}))).await;
    let job = finished(&e.router, &e.viewer, v["job_id"].as_str().unwrap()).await;
    let (_, text, ty) = get_text(
        &e.router,
        &e.viewer,
        job["result"]["download_url"].as_str().unwrap(),
    )
    .await;
    assert_eq!(ty.as_deref(), Some("text/csv; charset=utf-8"));
    let rows: Vec<&str> = text.lines().collect();
    // The header, one row per category, Scope 1 and Scope 2 recorded apart, the choices.
    assert_eq!(rows.len(), 19);
    let width = rows[0].split(',').count();
    for r in rows.iter().filter(|r| !r.contains('"')) {
        assert_eq!(r.split(',').count(), width, "{r}");
    }
    assert_eq!(
        rows[18],
        ",GWP AR5; flights with radiative forcing; default currency USD; EPA supply chain 1.3.0; supplier primary data share 0.0000; classified share 0.0000; needing review 0.0000,disclosure,,,,,,,,,,,,,,,,,,,,,,,"
    );
    assert!(rows[0].starts_with("category,name,status,co2e_kg"));
    assert!(rows[4].starts_with("4,"));
    assert!(
        rows[6].starts_with("6,Business travel,not_reported,,,,0,,,,,"),
        "{}",
        rows[6]
    );
    assert!(rows[16].starts_with(
        ",Scope 1 of energy and fuel inputs (not in the Scope 3 total),recorded_apart,0,"
    ));
    for t in ["by_category", "by_month", "by_supplier"] {
        for f in ["csv", "json"] {
            let (s, v) = call(
                &e.router,
                "POST",
                "/api/v1/reports",
                Some(&e.viewer),
                Some(json!({"report_type": t, "format": f})),
            )
            .await;
            assert_eq!(s, StatusCode::ACCEPTED);
            let job = finished(&e.router, &e.viewer, v["job_id"].as_str().unwrap()).await;
            assert_eq!(job["status"], "succeeded", "{t} {f}: {job}");
            let (s, text, _) = get_text(
                &e.router,
                &e.viewer,
                job["result"]["download_url"].as_str().unwrap(),
            )
            .await;
            assert_eq!(s, StatusCode::OK);
            assert!(!text.is_empty());
        }
    }
    // Bad requests name the field; another organization cannot download.
    let (s, v) = call(
        &e.router,
        "POST",
        "/api/v1/reports",
        Some(&e.viewer),
        Some(json!({"report_type": "scope9"})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["details"][0]["path"], "report_type");
    let (s, v) = call(
        &e.router,
        "POST",
        "/api/v1/reports",
        Some(&e.viewer),
        Some(json!({"report_type": "inventory", "date_from": "2024-02-30"})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["details"][0]["path"], "date_from");
    let (s, _, _) = get_text(&e.router, &e.other, &url).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    bg.stop().await;
}

#[tokio::test]
async fn the_export_streams_every_matching_line_as_csv() {
    let e = env();
    let mut lines = Vec::new();
    for i in 0..2500 {
        lines.push(json!({"transaction_id": format!("x{i:05}"), "date": format!("2025-01-{:02}", i % 28 + 1), "amount": 10 + i, "naics_code": "484121", "supplier_id": if i % 2 == 0 { "S1" } else { "S2" }}));
    }
    lines.push(json!({"transaction_id": "evil", "date": "2025-02-01", "amount": 1, "naics_code": "484121", "description": "=HYPERLINK(\"http://x\",\"y\"), more"}));
    let (s, v) = call(
        &e.router,
        "POST",
        "/api/v1/transactions",
        Some(&e.analyst),
        Some(json!({"transactions": lines})),
    )
    .await;
    assert_eq!((s, v["accepted"].as_u64()), (StatusCode::OK, Some(2501)));
    let (s, text, ty) = get_text(
        &e.router,
        &e.viewer,
        "/api/v1/exports/transactions.csv?date_from=2025-01-01",
    )
    .await;
    assert_eq!(
        (s, ty.as_deref()),
        (StatusCode::OK, Some("text/csv; charset=utf-8"))
    );
    let rows: Vec<&str> = text.lines().collect();
    assert!(
        rows[0].starts_with("transaction_id,date,supplier_id,supplier_name,description,amount")
    );
    assert_eq!(rows.len(), 1 + 2501, "every line once, across export pages");
    let mut ids: Vec<&str> = rows[1..]
        .iter()
        .map(|r| r.split(',').next().unwrap())
        .collect();
    assert_eq!(ids[0], "evil", "newest first");
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 2501);
    assert!(
        rows[1].contains("\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\"), more\""),
        "{}",
        rows[1]
    );
    // The stored emission and its factor are in each row.
    let (_, detail) = call(
        &e.router,
        "GET",
        "/api/v1/transactions/x00007",
        Some(&e.viewer),
        None,
    )
    .await;
    let row = rows.iter().find(|r| r.starts_with("x00007,")).unwrap();
    assert!(
        row.contains(&format!(",{},", detail["emission"]["co2e_kg"])),
        "{row}"
    );
    assert!(
        row.contains(",spend_based,") && row.contains(",epa-supply-chain,1.3.0,"),
        "{row}"
    );
    // Filters as in the list.
    let (_, text, _) = get_text(
        &e.router,
        &e.viewer,
        "/api/v1/exports/transactions.csv?supplier_id=S1&date_from=2025-01-01",
    )
    .await;
    assert_eq!(text.lines().count(), 1 + 1250);
    let (s, _, _) = get_text(
        &e.router,
        &e.viewer,
        "/api/v1/exports/transactions.csv?category=99",
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // Another organization's export holds only its own lines.
    let (_, text, _) = get_text(&e.router, &e.other, "/api/v1/exports/transactions.csv").await;
    assert_eq!(text.lines().count(), 2);
    assert!(text.contains("secret,"));
}
