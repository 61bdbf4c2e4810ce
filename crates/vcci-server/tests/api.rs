//! The first API routes through the real router (`oneshot`).

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;
use vcci_store::model::keys::Role;

mod common;
use common::{blocking, call, config, env, pact_footprint};

#[tokio::test]
async fn health_and_ready() {
    let e = env();
    assert_eq!(
        call(&e.router, "GET", "/health", None, None).await,
        (StatusCode::OK, json!({"status": "ok"}))
    );
    let (s, v) = call(&e.router, "GET", "/ready", None, None).await;
    assert_eq!(s, StatusCode::OK);
    let redis = if common::redis_url().is_some() {
        "ok"
    } else {
        "disabled"
    };
    assert_eq!(
        v,
        json!({"status": "ready", "checks": {"database": "ok", "cache": "ok", "redis": redis}})
    );
}

#[tokio::test]
async fn missing_or_wrong_keys_are_401_with_the_error_shape() {
    let e = env();
    for key in [None, Some("vcci_wrong"), Some("")] {
        let (s, v) = call(&e.router, "GET", "/api/v1/emissions/summary", key, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert_eq!(v["error"]["code"], "unauthorized");
        assert!(v["error"]["details"].is_array());
    }
}

#[tokio::test]
async fn a_line_with_its_emission_and_tenant_isolation() {
    let e = env();
    let (s, v) = call(
        &e.router,
        "GET",
        "/api/v1/transactions/t2",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let em = &v["emission"];
    assert!((em["co2e_kg"].as_f64().unwrap() - 60.256_197_475_500_97).abs() < 1e-9);
    assert_eq!(
        em["factor"],
        json!({"set": "epa-supply-chain", "version": "1.3.0", "key": "334111", "value": 0.058, "unit": "kg CO2e/2022 USD, purchaser price"})
    );
    assert_eq!(em["conversions"]["spend"]["fx_rate"], 0.9245);
    assert_eq!(em["method"], "spend_based");
    // Another organization's line is 404, never 403.
    let (s, v) = call(
        &e.router,
        "GET",
        "/api/v1/transactions/secret",
        Some(&e.admin),
        None,
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (s, _) = call(
        &e.router,
        "GET",
        "/api/v1/transactions/t1",
        Some(&e.other),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn delete_needs_the_analyst_role() {
    let e = env();
    let (s, v) = call(
        &e.router,
        "DELETE",
        "/api/v1/transactions/t1",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let (s, v) = call(
        &e.router,
        "DELETE",
        "/api/v1/transactions/t1",
        Some(&e.analyst),
        None,
    )
    .await;
    assert_eq!((s, v), (StatusCode::NO_CONTENT, Value::Null));
    let (s, _) = call(
        &e.router,
        "DELETE",
        "/api/v1/transactions/t1",
        Some(&e.analyst),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, v) = call(
        &e.router,
        "GET",
        "/api/v1/emissions/summary",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(v["transaction_count"], 1);
}

#[tokio::test]
async fn summary_reads_the_read_models() {
    let e = env();
    let (s, v) = call(
        &e.router,
        "GET",
        "/api/v1/emissions/summary?date_from=2022-01-01&date_to=2022-12-31",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["transaction_count"], 1);
    assert!((v["total_co2e_kg"].as_f64().unwrap() - 595.0).abs() < 1e-6);
    assert_eq!(v["by_category"][0]["category"], 4);
    assert_eq!(v["categories_without_data"].as_array().unwrap().len(), 14);
    assert_eq!(v["by_method"][0]["method"], "spend_based");
    let (s, v) = call(
        &e.router,
        "GET",
        "/api/v1/emissions/summary?date_from=2022-02-30",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["details"][0]["parameter"], "date_from");
}

#[tokio::test]
async fn factors_by_set_and_key() {
    let e = env();
    let (s, v) = call(
        &e.router,
        "GET",
        "/api/v1/factors/desnz/freighting-goods/hgv-all-diesel/all-hgvs/average-laden/tonne.km",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (v["value"].as_f64(), v["unit"].as_str(), v["gwp"].as_str()),
        (Some(0.09752), Some("tonne.km"), Some("AR5"))
    );
    let (s, v) = call(
        &e.router,
        "GET",
        "/api/v1/factors/epa-supply-chain/484121?version=1.2",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!((s, v["value"].as_f64()), (StatusCode::OK, Some(1.115)));
    let (s, _) = call(
        &e.router,
        "GET",
        "/api/v1/factors/epa-supply-chain/999999",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn calculate_without_storing() {
    let e = env();
    let body = json!({"lines": [
        {"date": "2022-06-30", "amount": 1000, "currency": "usd", "naics_code": "484121"},
        {"date": "2022-06-30", "amount": 1000, "currency": "PLN", "naics_code": "484121"},
        {"date": "2024-03-01", "quantity": 500, "unit": "t.km", "activity_id": "freighting-goods/hgv-all-diesel/all-hgvs/average-laden/tonne.km"},
        {"date": "2024-03-01", "amount": "1,000", "naics_code": 484121},
        "not an object"
    ]});
    let (s, v) = call(
        &e.router,
        "POST",
        "/api/v1/emissions/calculate",
        Some(&e.viewer),
        Some(body),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let r = v["results"].as_array().unwrap();
    assert_eq!(r.len(), 5);
    assert!((r[0]["emission"]["co2e_kg"].as_f64().unwrap() - 595.0).abs() < 1e-9);
    assert_eq!(r[1]["error"]["code"], "no_fx_rate");
    assert_eq!(r[1]["error"]["details"][0]["path"], "lines[1].currency");
    assert!((r[2]["emission"]["co2e_kg"].as_f64().unwrap() - 48.76).abs() < 1e-9);
    assert_eq!(r[3]["error"]["details"][0]["path"], "lines[3].amount");
    assert_eq!(r[4]["error"]["details"][0]["path"], "lines[4]");
    assert!((v["total_co2e_kg"].as_f64().unwrap() - 643.76).abs() < 1e-9);
    // Nothing was stored.
    let (_, v) = call(
        &e.router,
        "GET",
        "/api/v1/emissions/summary",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(v["transaction_count"], 2);
    let too_many = json!({"lines": vec![json!({"date": "2022-01-01", "amount": 1, "naics_code": "484121"}); 1001]});
    let (s, v) = call(
        &e.router,
        "POST",
        "/api/v1/emissions/calculate",
        Some(&e.viewer),
        Some(too_many),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("too_many_lines"))
    );
}

#[tokio::test]
async fn unknown_routes_are_json_404() {
    let e = env();
    let (s, v) = call(&e.router, "GET", "/nope", None, None).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
}

#[tokio::test]
async fn batch_upsert_reports_rejects_by_index_and_path() {
    let e = env();
    let body = json!({"transactions": [
        {"transaction_id": "n1", "date": "2024-01-05", "amount": 100, "currency": "GBP", "naics_code": "484121", "supplier_id": "S9", "supplier_name": "Nine Ltd"},
        {"transaction_id": "n2", "date": "2024-13-05", "amount": 100, "naics_code": "484121"},
        {"transaction_id": "t1", "date": "2022-03-01", "amount": 2000, "naics_code": "484121"}
    ]});
    let (s, _) = call(
        &e.router,
        "POST",
        "/api/v1/transactions",
        Some(&e.viewer),
        Some(body.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = call(
        &e.router,
        "POST",
        "/api/v1/transactions",
        Some(&e.analyst),
        Some(body),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["accepted"], 2);
    assert_eq!(v["rejected"][0]["index"], 1);
    assert_eq!(v["rejected"][0]["transaction_id"], "n2");
    assert_eq!(
        v["rejected"][0]["error"]["details"][0]["path"],
        "transactions[1].date"
    );
    // t1 was updated (upsert), n1 stored with its new supplier.
    let (_, t1) = call(
        &e.router,
        "GET",
        "/api/v1/transactions/t1?fields=transaction_id,emission",
        Some(&e.viewer),
        None,
    )
    .await;
    assert!((t1["emission"]["co2e_kg"].as_f64().unwrap() - 1190.0).abs() < 1e-9);
    assert_eq!(t1.as_object().unwrap().len(), 2);
    let (_, n1) = call(
        &e.router,
        "GET",
        "/api/v1/transactions/n1",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(n1["supplier_id"], "S9");
}

#[tokio::test]
async fn pages_have_no_gaps_or_repeats_while_lines_are_written() {
    let e = env();
    let lines: Vec<Value> = (0..250)
        .map(|i| json!({"transaction_id": format!("p{i:03}"), "date": format!("2024-{:02}-{:02}", 1 + i % 12, 1 + i % 28), "amount": i + 1, "naics_code": "541511"}))
        .collect();
    let (s, _) = call(
        &e.router,
        "POST",
        "/api/v1/transactions",
        Some(&e.admin),
        Some(json!({"transactions": lines})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut page = 0;
    loop {
        let uri = match &cursor {
            Some(c) => format!("/api/v1/transactions?limit=40&date_from=2024-01-01&cursor={c}"),
            None => "/api/v1/transactions?limit=40&date_from=2024-01-01".into(),
        };
        let (s, v) = call(&e.router, "GET", &uri, Some(&e.viewer), None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let data = v["data"].as_array().unwrap();
        let mut prev: Option<(String, String)> = None;
        for l in data {
            let key = (
                l["date"].as_str().unwrap().to_owned(),
                l["transaction_id"].as_str().unwrap().to_owned(),
            );
            if let Some(p) = &prev {
                assert!(key < *p, "date desc, then transaction_id desc");
            }
            prev = Some(key.clone());
            seen.push(key.1);
        }
        // A write between pages: new lines on both sides of the cursor.
        page += 1;
        let extra = json!({"transactions": [
            {"transaction_id": format!("late{page}"), "date": "2024-12-31", "amount": 1, "naics_code": "541511"},
            {"transaction_id": format!("early{page}"), "date": "2024-01-01", "amount": 1, "naics_code": "541511"}
        ]});
        call(
            &e.router,
            "POST",
            "/api/v1/transactions",
            Some(&e.admin),
            Some(extra),
        )
        .await;
        if !v["page_info"]["has_next_page"].as_bool().unwrap() {
            assert!(v["page_info"]["end_cursor"].is_null());
            break;
        }
        cursor = Some(v["page_info"]["end_cursor"].as_str().unwrap().to_owned());
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "no line twice");
    for i in 0..250 {
        assert!(seen.contains(&format!("p{i:03}")), "p{i:03} missing");
    }
}

#[tokio::test]
async fn tampered_or_foreign_cursors_and_bad_parameters_are_400() {
    let e = env();
    let (_, v) = call(
        &e.router,
        "GET",
        "/api/v1/transactions?limit=1",
        Some(&e.viewer),
        None,
    )
    .await;
    let cursor = v["page_info"]["end_cursor"].as_str().unwrap().to_owned();
    let (s, v) = call(
        &e.router,
        "GET",
        &format!("/api/v1/transactions?cursor={cursor}"),
        Some(&e.other),
        None,
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_cursor"))
    );
    let mut t = cursor.into_bytes();
    t[0] = if t[0] == b'7' { b'6' } else { b'7' };
    let (s, v) = call(
        &e.router,
        "GET",
        &format!(
            "/api/v1/transactions?cursor={}",
            String::from_utf8(t).unwrap()
        ),
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_cursor"))
    );
    for q in [
        "limit=0",
        "limit=1001",
        "limit=abc",
        "category=16",
        "fields=password",
        "date_to=2024-99-01",
    ] {
        let (s, v) = call(
            &e.router,
            "GET",
            &format!("/api/v1/transactions?{q}"),
            Some(&e.viewer),
            None,
        )
        .await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_parameter")),
            "{q}"
        );
    }
    // Hostile filter text is a value, never SQL.
    let (s, v) = call(
        &e.router,
        "GET",
        "/api/v1/transactions?supplier_id=x%27%20OR%201%3D1%20--",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(
        (s, v["data"].as_array().unwrap().len()),
        (StatusCode::OK, 0)
    );
}

#[tokio::test]
async fn suppliers_upsert_list_and_detail_with_emissions() {
    let e = env();
    let body = json!({"suppliers": [
        {"supplier_id": "ACME", "name": "Acme Freight", "country": "GB", "naics_code": "484121", "intensity_kg_per_usd": 0.25, "intensity_year": 2023},
        {"supplier_id": "B_2", "name": "100% Beta", "country": "US"}
    ]});
    let (s, v) = call(
        &e.router,
        "POST",
        "/api/v1/suppliers",
        Some(&e.analyst),
        Some(body),
    )
    .await;
    assert_eq!((s, v["upserted"].as_u64()), (StatusCode::OK, Some(2)));
    let bad = json!({"suppliers": [{"supplier_id": "X", "naics_code": "12"}]});
    let (s, v) = call(
        &e.router,
        "POST",
        "/api/v1/suppliers",
        Some(&e.analyst),
        Some(bad),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        v["error"]["details"][0]["error"]["details"][0]["path"],
        "suppliers[0].naics_code"
    );
    // A line of ACME is now supplier-specific: 500 GBP in 2024 at 0.25 kg/2023 USD.
    let line = json!({"transactions": [{"transaction_id": "g1", "date": "2024-07-01", "amount": 500, "currency": "GBP", "supplier_id": "ACME"}]});
    call(
        &e.router,
        "POST",
        "/api/v1/transactions",
        Some(&e.analyst),
        Some(line),
    )
    .await;
    let (s, v) = call(
        &e.router,
        "GET",
        "/api/v1/suppliers/ACME",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!((v["emissions"]["co2e_kg"].as_f64().unwrap() - 155.187_660_598_362_3).abs() < 1e-6);
    assert_eq!(v["emissions"]["transaction_count"], 1);
    let (_, v) = call(
        &e.router,
        "GET",
        "/api/v1/suppliers?q=100%25",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(
        v["data"].as_array().unwrap().len(),
        1,
        "% is matched literally"
    );
    let (_, v) = call(
        &e.router,
        "GET",
        "/api/v1/suppliers?country=GB&fields=supplier_id",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(v["data"], json!([{"supplier_id": "ACME"}]));
    let (_, v) = call(
        &e.router,
        "GET",
        "/api/v1/suppliers?limit=1",
        Some(&e.viewer),
        None,
    )
    .await;
    let c = v["page_info"]["end_cursor"].as_str().unwrap().to_owned();
    let (_, v2) = call(
        &e.router,
        "GET",
        &format!("/api/v1/suppliers?limit=1&cursor={c}"),
        Some(&e.viewer),
        None,
    )
    .await;
    assert_ne!(v["data"][0]["supplier_id"], v2["data"][0]["supplier_id"]);
    let (s, _) = call(
        &e.router,
        "GET",
        "/api/v1/suppliers/ACME",
        Some(&e.other),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn by_month_and_ranked_suppliers() {
    let e = env();
    let lines: Vec<Value> = (0..30)
        .map(|i| json!({"transaction_id": format!("r{i}"), "date": format!("2024-0{}-10", 1 + i % 3), "amount": 100 * (i + 1), "naics_code": "484121", "supplier_id": format!("S{:02}", i % 10)}))
        .collect();
    call(
        &e.router,
        "POST",
        "/api/v1/transactions",
        Some(&e.analyst),
        Some(json!({"transactions": lines})),
    )
    .await;
    let (s, v) = call(
        &e.router,
        "GET",
        "/api/v1/emissions/by-month?year=2024",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let months: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["month"].as_str().unwrap())
        .collect();
    assert_eq!(months, ["2024-01", "2024-02", "2024-03"]);
    let total: f64 = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["co2e_kg"].as_f64().unwrap())
        .sum();
    assert!((total - 0.595 * 100.0 * 465.0 * 313.689f64.recip() * 292.655).abs() < 1e-6);
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let uri = format!(
            "/api/v1/emissions/by-supplier?limit=3&date_from=2024-01-01{}",
            if cursor.is_empty() {
                String::new()
            } else {
                format!("&cursor={cursor}")
            }
        );
        let (_, v) = call(&e.router, "GET", &uri, Some(&e.viewer), None).await;
        for r in v["data"].as_array().unwrap() {
            seen.push((
                r["co2e_kg"].as_f64().unwrap(),
                r["supplier_id"].as_str().unwrap().to_owned(),
            ));
        }
        match v["page_info"]["end_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen.len(), 10);
    assert!(
        seen.windows(2).all(|w| w[0].0 >= w[1].0),
        "ranked by emissions"
    );
    assert_eq!(seen[0].1, "S09");
}

#[tokio::test]
async fn etags_answer_304_until_the_data_changes() {
    let e = env();
    let uri = "/api/v1/emissions/summary";
    let req = |tag: Option<&str>| {
        let mut r = Request::builder()
            .uri(uri)
            .header("authorization", format!("Bearer {}", e.viewer));
        if let Some(t) = tag {
            r = r.header("if-none-match", t);
        }
        r.body(Body::empty()).unwrap()
    };
    let res = e.router.clone().oneshot(req(None)).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let tag = res.headers()["etag"].to_str().unwrap().to_owned();
    assert!(tag.starts_with("W/\""));
    assert_eq!(res.headers()["cache-control"], "private, no-cache");
    let res = e.router.clone().oneshot(req(Some(&tag))).await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    assert!(
        axum::body::to_bytes(res.into_body(), 1024)
            .await
            .unwrap()
            .is_empty()
    );
    // A write changes the summary, so the old tag no longer matches.
    call(&e.router, "POST", "/api/v1/transactions", Some(&e.analyst), Some(json!({"transactions": [{"transaction_id": "z", "date": "2022-01-01", "amount": 1, "naics_code": "484121"}]}))).await;
    let res = e.router.clone().oneshot(req(Some(&tag))).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_ne!(res.headers()["etag"].to_str().unwrap(), tag);
}

#[tokio::test]
async fn rate_limits_are_per_key_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let test_db = vcci_store::testing::fresh_store(dir.path()).unwrap();
    let store = test_db.store.clone();
    let (a, b) = blocking(|| {
        let db = store.connect().unwrap();
        let org = db.ensure_org("acme").unwrap();
        (
            db.create_key(org.id, Role::Viewer, &vcci_store::Actor::system("test"))
                .unwrap(),
            db.create_key(org.id, Role::Viewer, &vcci_store::Actor::system("test"))
                .unwrap(),
        )
    });
    let app = vcci_server::App::new(
        store.clone(),
        vcci_server::AppConfig {
            rate_limit: vcci_server::RateLimit {
                rate: 1.0,
                burst: 3.0,
            },
            ..config(&store)
        },
    )
    .unwrap();
    let router = vcci_server::build_app(app);
    for _ in 0..3 {
        assert_eq!(
            call(&router, "GET", "/api/v1/emissions/summary", Some(&a), None)
                .await
                .0,
            StatusCode::OK
        );
    }
    let res = router
        .clone()
        .oneshot(
            Request::builder()
                .uri("/api/v1/emissions/summary")
                .header("authorization", format!("Bearer {a}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.headers()["retry-after"], "1");
    assert_eq!(res.headers()["ratelimit-remaining"], "0");
    assert_eq!(res.headers()["x-ratelimit-limit"], "3");
    // Another key has its own bucket.
    assert_eq!(
        call(&router, "GET", "/api/v1/emissions/summary", Some(&b), None)
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn factor_search_pages_through_matches() {
    let e = env();
    let (s, v) = call(
        &e.router,
        "GET",
        "/api/v1/factors?q=HGV%20average%20laden&unit=tonne.km&limit=5",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let mut keys: Vec<String> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].as_str().unwrap().to_owned())
        .collect();
    let mut cursor = v["page_info"]["end_cursor"].as_str().map(str::to_owned);
    while let Some(c) = cursor {
        let (_, v) = call(
            &e.router,
            "GET",
            &format!("/api/v1/factors?q=HGV%20average%20laden&unit=tonne.km&limit=5&cursor={c}"),
            Some(&e.viewer),
            None,
        )
        .await;
        keys.extend(
            v["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["key"].as_str().unwrap().to_owned()),
        );
        cursor = v["page_info"]["end_cursor"].as_str().map(str::to_owned);
    }
    assert!(
        keys.contains(
            &"freighting-goods/hgv-all-diesel/all-hgvs/average-laden/tonne.km".to_owned()
        )
    );
    assert!(keys.iter().all(|k| k.ends_with("/tonne.km")));
    let mut unique = keys.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), keys.len());
    let (_, v) = call(
        &e.router,
        "GET",
        "/api/v1/factors?set=epa-supply-chain&q=trucking&year=2022",
        Some(&e.viewer),
        None,
    )
    .await;
    assert!(
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["set"] == "epa-supply-chain" && f["version"] == "1.3.0")
    );
}

#[tokio::test]
async fn responses_are_compressed_as_negotiated_above_a_threshold() {
    let e = env();
    let get = |enc: Option<&'static str>, uri: &'static str| {
        let mut r = Request::builder()
            .uri(uri)
            .header("authorization", format!("Bearer {}", e.viewer));
        if let Some(enc) = enc {
            r = r.header("accept-encoding", enc);
        }
        e.router.clone().oneshot(r.body(Body::empty()).unwrap())
    };
    let big = "/api/v1/factors?set=desnz&limit=200";
    let plain = get(None, big).await.unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    let tag = plain.headers()["etag"].clone();
    let plain_len = axum::body::to_bytes(plain.into_body(), 1 << 24)
        .await
        .unwrap()
        .len();
    for enc in ["gzip", "br", "zstd"] {
        let res = get(Some(enc), big).await.unwrap();
        assert_eq!(res.headers()["content-encoding"], enc);
        assert_eq!(res.headers()["etag"], tag, "one weak tag for every coding");
        let n = axum::body::to_bytes(res.into_body(), 1 << 24)
            .await
            .unwrap()
            .len();
        assert!(n * 4 < plain_len, "{enc}: {n} vs {plain_len}");
    }
    // Small bodies are sent as they are.
    let res = get(Some("gzip"), "/health").await.unwrap();
    assert!(res.headers().get("content-encoding").is_none());
}

#[tokio::test]
async fn calculate_and_upsert_use_the_named_suppliers_profiles() {
    let e = env();
    let (s, _) = call(&e.router, "POST", "/api/v1/suppliers", Some(&e.analyst), Some(json!({"suppliers": [
        {"supplier_id": "GREEN", "name": "Green Freight", "naics_code": "484121", "intensity_kg_per_usd": 0.5, "intensity_year": 2024}
    ]}))).await;
    assert_eq!(s, StatusCode::OK);
    let lines = json!({"lines": [
        {"date": "2024-05-01", "amount": 100, "supplier_id": "GREEN"},
        {"date": "2024-05-01", "amount": 100, "supplier_id": "UNKNOWN", "naics_code": "484121"},
    ]});
    let (s, v) = call(
        &e.router,
        "POST",
        "/api/v1/emissions/calculate",
        Some(&e.viewer),
        Some(lines),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // 100 USD of 2024 × 0.5 kg CO2e per 2024 USD (the supplier's own intensity).
    assert_eq!(v["results"][0]["emission"]["method"], "supplier_specific");
    assert!(
        (v["results"][0]["emission"]["co2e_kg"].as_f64().unwrap() - 50.0).abs() < 1e-9,
        "{v}"
    );
    assert_eq!(v["results"][1]["emission"]["method"], "spend_based");
    let (s, v) = call(&e.router, "POST", "/api/v1/transactions", Some(&e.analyst), Some(json!({"transactions": [
        {"transaction_id": "g1", "date": "2024-05-01", "amount": 100, "supplier_id": "GREEN"},
        {"transaction_id": "n1", "date": "2024-05-01", "amount": 100, "supplier_name": "Brand New Ltd", "naics_code": "484121"},
    ]}))).await;
    assert_eq!(
        (s, v["accepted"].as_u64()),
        (StatusCode::OK, Some(2)),
        "{v}"
    );
    let (_, g1) = call(
        &e.router,
        "GET",
        "/api/v1/transactions/g1",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(g1["emission"]["method"], "supplier_specific");
    // A line naming a supplier that does not exist creates it.
    let (s, sup) = call(
        &e.router,
        "GET",
        "/api/v1/suppliers/Brand%20New%20Ltd",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{sup}");
    assert_eq!(sup["name"], "Brand New Ltd");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_upserts_are_committed_together_and_each_gets_its_own_answer() {
    let e = env();
    let mut tasks = Vec::new();
    for r in 0..40 {
        let router = e.router.clone();
        let key = if r % 2 == 0 {
            e.analyst.clone()
        } else {
            e.other.clone()
        };
        tasks.push(tokio::spawn(async move {
            let mut lines: Vec<Value> = (0..10)
                .map(|i| json!({"transaction_id": format!("g{r}-{i}"), "date": "2024-06-01", "amount": 100 + i, "naics_code": "484121", "supplier_name": format!("New Co {}", r % 3)}))
                .collect();
            // Every fourth request carries one bad line: only that line is rejected.
            if r % 4 == 0 {
                lines[3]["amount"] = json!("lots");
            }
            call(&router, "POST", "/api/v1/transactions", Some(&key), Some(json!({"transactions": lines}))).await
        }));
    }
    for (r, t) in tasks.into_iter().enumerate() {
        let (s, v) = t.await.unwrap();
        assert_eq!(s, StatusCode::OK, "{v}");
        let bad = usize::from(r % 4 == 0);
        assert_eq!(v["accepted"], 10 - bad, "request {r}: {v}");
        assert_eq!(v["rejected"].as_array().unwrap().len(), bad);
        if bad == 1 {
            assert_eq!(v["rejected"][0]["index"], 3);
        }
    }
    blocking(|| {
        let db = e.store.connect().unwrap();
        // Bad lines are only in even (acme) requests: 10 of them.
        for (name, n) in [("acme", 2 + 20 * 10 - 10), ("other", 1 + 20 * 10)] {
            let org = db.require_org(name).unwrap();
            assert_eq!(db.line_count(org.id).unwrap(), n, "{name}");
            assert!(db.verify_read_models(org.id).unwrap().is_empty());
        }
    });
    // Each organization's lines only in its own lists, and the summary follows at once.
    let (_, s) = call(
        &e.router,
        "GET",
        "/api/v1/emissions/summary",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(s["transaction_count"], 192);
    let (s, _) = call(
        &e.router,
        "GET",
        "/api/v1/transactions/g1-0",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "another organization's line");
}

#[tokio::test]
async fn bad_json_bodies_are_answered_in_the_error_shape() {
    let e = env();
    let send = |ty: &'static str, body: &'static str| {
        common::post_raw(
            &e.router,
            "/api/v1/emissions/calculate",
            &e.analyst,
            ty,
            body,
        )
    };
    let (s, v) = send("text/plain", "{\"lines\": []}").await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(v["error"]["code"], "unsupported_media_type", "{v}");
    let (s, v) = send("application/json", "{\"lines\": [").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["code"], "invalid_json", "{v}");
    let (s, v) = send("application/json", "-5").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["code"], "invalid_body", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 1 column 2"),
        "{v}"
    );
}

#[tokio::test]
async fn energy_inputs_count_their_upstream_and_record_scope_1_2_apart() {
    let e = env();
    let elec = "uk-electricity/electricity-generated/electricity-uk/kwh";
    let gas = "fuels/gaseous-fuels/natural-gas/kwh-gross-cv";
    let (s, v) = call(
        &e.router,
        "POST",
        "/api/v1/transactions",
        Some(&e.analyst),
        Some(json!({"transactions": [
            {"transaction_id": "el1", "date": "2024-03-01", "quantity": 100000, "unit": "kWh", "activity_id": elec},
            {"transaction_id": "gas1", "date": "2024-03-02", "quantity": 100000, "unit": "kWh (Gross CV)", "activity_id": gas},
            {"transaction_id": "el2", "date": "2024-03-03", "quantity": 1, "unit": "kWh", "activity_id": elec, "category": 8},
        ]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["accepted"], 2);
    // A Scope 2 factor in category 8 is refused, naming the field.
    assert_eq!(v["rejected"][0]["index"], 2);
    assert_eq!(v["rejected"][0]["error"]["code"], "scope_1_2_factor");
    assert_eq!(
        v["rejected"][0]["error"]["details"][0]["path"],
        "transactions[2].category"
    );
    let (_, t) = call(
        &e.router,
        "GET",
        "/api/v1/transactions/el1",
        Some(&e.viewer),
        None,
    )
    .await;
    let em = &t["emission"];
    assert!(
        (em["co2e_kg"].as_f64().unwrap() - 6_817.0).abs() < 1e-6,
        "{em}"
    );
    assert_eq!(em["category"], 3);
    assert_eq!(em["factor"]["scope"], "Scope 2");
    assert_eq!(em["scope_1_2"]["scope"], 2);
    assert_eq!(em["scope_1_2"]["counted_in_scope_3"], false);
    assert!((em["scope_1_2"]["co2e_kg"].as_f64().unwrap() - 20_705.0).abs() < 1e-6);
    let parts: Vec<(String, f64)> = em["upstream"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["kind"].as_str().unwrap().to_owned(),
                u["co2e_kg"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(parts.len(), 3);
    for ((kind, kg), (want_kind, want)) in parts.iter().zip([
        ("wtt", 4_590.0),
        ("td_losses", 1_830.0),
        ("wtt_td_losses", 397.0),
    ]) {
        assert_eq!(kind, want_kind);
        assert!((kg - want).abs() < 1e-6, "{kind} {kg}");
    }
    assert_eq!(em["upstream"][1]["factor"]["scope"], "Scope 3");
    // Activity data, 2024 factor for 2024, UK factor and no country given, national data.
    assert_eq!(
        em["data_quality_indicators"],
        json!({"technological": 2, "temporal": 1, "geographical": 3, "completeness": 1, "reliability": 2})
    );
    assert_eq!(em["data_quality"], 2);
    // By gas: T&D losses split (CO2 1,811, CH4 8, N2O 11), the WTT parts unsplit (4,987);
    // biogenic CO2 of the grid 11,507 kg, outside the scopes.
    let g = &em["gases"];
    for (k, want) in [
        ("co2_kg", 1_811.0),
        ("ch4_kg", 8.0),
        ("n2o_kg", 11.0),
        ("unspecified_kg", 4_987.0),
    ] {
        assert!((g[k].as_f64().unwrap() - want).abs() < 1e-6, "{k}: {g}");
    }
    assert!((em["biogenic_co2_kg"].as_f64().unwrap() - 11_507.0).abs() < 1e-6);
    // The summary counts 6,817 + 3,021 kg of category 3 on top of the fixture's lines, and
    // records 20,705 kg of Scope 2 and 18,290 kg of Scope 1 apart.
    let (_, before) = call(
        &e.router,
        "GET",
        "/api/v1/emissions/summary?date_to=2023-12-31",
        Some(&e.viewer),
        None,
    )
    .await;
    let (_, s) = call(
        &e.router,
        "GET",
        "/api/v1/emissions/summary",
        Some(&e.viewer),
        None,
    )
    .await;
    let total = s["total_co2e_kg"].as_f64().unwrap() - before["total_co2e_kg"].as_f64().unwrap();
    assert!((total - 9_838.0).abs() < 1e-6, "{total}");
    let apart = &s["scope_1_2_recorded_apart"];
    assert!(
        (apart["scope_1_kg"].as_f64().unwrap() - 18_290.0).abs() < 1e-6,
        "{apart}"
    );
    assert!(
        (apart["scope_2_kg"].as_f64().unwrap() - 20_705.0).abs() < 1e-6,
        "{apart}"
    );
    let cat3 = s["by_category"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["category"] == 3)
        .unwrap();
    assert!((cat3["co2e_kg"].as_f64().unwrap() - 9_838.0).abs() < 1e-6);
    // By gas, category 3: the electricity's T&D split (CO2 1,811, CH4 8, N2O 11), the WTT
    // parts of both lines unsplit (4,987 + 3,021); biogenic CO2 of the grid apart.
    let g = &cat3["gases"];
    for (k, want) in [
        ("co2_kg", 1_811.0),
        ("ch4_kg", 8.0),
        ("n2o_kg", 11.0),
        ("unspecified_kg", 8_008.0),
    ] {
        assert!((g[k].as_f64().unwrap() - want).abs() < 1e-6, "{k}: {g}");
    }
    assert!(
        (s["biogenic_co2_kg"].as_f64().unwrap() - 11_507.0).abs() < 1e-6,
        "{s}"
    );
    let total: f64 = [
        "co2_kg",
        "ch4_kg",
        "n2o_kg",
        "other_kg",
        "radiative_forcing_kg",
        "unspecified_kg",
    ]
    .iter()
    .map(|k| s["by_gas"][k].as_f64().unwrap())
    .sum();
    assert!(
        (total - s["total_co2e_kg"].as_f64().unwrap()).abs() < 0.01 * total,
        "{s}"
    );
    let (_, m) = call(
        &e.router,
        "GET",
        "/api/v1/emissions/by-month?year=2024",
        Some(&e.viewer),
        None,
    )
    .await;
    let march = m["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["month"] == "2024-03")
        .unwrap();
    assert!(
        (march["by_gas"]["unspecified_kg"].as_f64().unwrap() - 8_008.0).abs() < 1e-6,
        "{march}"
    );
    // The export names the scope, what is recorded apart and the upstream parts.
    let req = Request::builder()
        .uri("/api/v1/exports/transactions.csv?date_from=2024-03-01")
        .header("authorization", format!("Bearer {}", e.viewer))
        .body(Body::empty())
        .unwrap();
    let res = e.router.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let at = header.iter().position(|h| *h == "factor_scope").unwrap();
    assert_eq!(
        header[at..],
        [
            "factor_scope",
            "scope_1_2",
            "scope_1_2_kg",
            "upstream",
            "capex",
            "co2_kg",
            "ch4_kg",
            "n2o_kg",
            "other_gases_kg",
            "radiative_forcing_kg",
            "unspecified_gas_kg",
            "biogenic_co2_kg"
        ]
    );
    let el1 = text.lines().find(|l| l.starts_with("el1,")).unwrap();
    assert!(
        el1.contains(",Scope 2,2,20705,wtt wtt-uk-electricity/wtt-uk-electricity-generation/electricity-uk/kwh 4590"),
        "{el1}"
    );
    assert!(el1.ends_with(",false,1811,8,11,0,0,4987,11507"), "{el1}");
}

#[tokio::test]
async fn a_capital_purchase_is_stored_and_reported_in_category_2() {
    let e = env();
    let (s, v) = call(
        &e.router,
        "POST",
        "/api/v1/transactions",
        Some(&e.analyst),
        Some(json!({"transactions": [
            {"transaction_id": "cap1", "date": "2022-06-30", "amount": 1000, "currency": "USD", "naics_code": "334111", "capex": true},
            {"transaction_id": "cap2", "date": "2022-06-30", "amount": 1000, "currency": "USD", "naics_code": "334111", "capex": "no"},
            {"transaction_id": "cap3", "date": "2022-06-30", "amount": 1000, "naics_code": "334111", "capex": 3},
        ]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["accepted"], 2);
    assert_eq!(
        v["rejected"][0]["error"]["details"][0]["path"],
        "transactions[2].capex"
    );
    let (_, t) = call(
        &e.router,
        "GET",
        "/api/v1/transactions/cap1",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(t["capex"], true);
    assert_eq!(t["emission"]["category"], 2);
    assert_eq!(t["emission"]["category_source"], "capex");
    let (_, t) = call(
        &e.router,
        "GET",
        "/api/v1/transactions/cap2",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(
        (t["capex"].as_bool(), t["emission"]["category"].as_u64()),
        (Some(false), Some(1))
    );
    let (_, s) = call(
        &e.router,
        "GET",
        "/api/v1/emissions/summary",
        Some(&e.viewer),
        None,
    )
    .await;
    let cat2 = s["by_category"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["category"] == 2)
        .unwrap();
    assert!(
        (cat2["co2e_kg"].as_f64().unwrap() - 58.0).abs() < 1e-9,
        "{cat2}"
    );
}

#[tokio::test]
async fn supplier_intensities_by_year_are_listed_and_removed() {
    let e = env();
    let post = |body: serde_json::Value| {
        let r = e.router.clone();
        let k = e.analyst.clone();
        async move { call(&r, "POST", "/api/v1/suppliers", Some(&k), Some(body)).await }
    };
    let (s, v) = post(json!({"suppliers": [
        {"supplier_id": "HY", "name": "Hybrid Haulage", "country": "US", "naics_code": "484121",
         "intensity_kg_per_usd": 0.10, "intensity_year": 2024, "intensity_boundary": "scope_1_2", "intensity_verified": true}
    ]}))
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = post(json!({"suppliers": [
        {"supplier_id": "HY", "name": "Hybrid Haulage", "country": "US", "naics_code": "484121",
         "intensity_kg_per_usd": 0.30, "intensity_year": 2022, "intensity_source": "CDP 2023"}
    ]}))
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = call(
        &e.router,
        "POST",
        "/api/v1/transactions",
        Some(&e.analyst),
        Some(json!({"transactions": [
            {"transaction_id": "h24", "date": "2024-05-01", "amount": 10000, "supplier_id": "HY"},
            {"transaction_id": "h22", "date": "2022-05-01", "amount": 1000000, "supplier_id": "HY"},
        ]})),
    )
    .await;
    assert_eq!(
        (s, v["accepted"].as_u64()),
        (StatusCode::OK, Some(2)),
        "{v}"
    );
    let line = |id: &'static str| {
        let r = e.router.clone();
        let k = e.viewer.clone();
        async move {
            call(
                &r,
                "GET",
                &format!("/api/v1/transactions/{id}"),
                Some(&k),
                None,
            )
            .await
            .1
        }
    };
    // 10,000 USD of 2024: 1,000 kg of the supplier's Scope 1+2, and the EEIO estimate
    // 10,000 × 292.655/313.689 × 0.595 = 5,551.03 kg of which the rest is upstream.
    let h = line("h24").await;
    assert_eq!(h["emission"]["method"], "hybrid");
    let sd = &h["emission"]["supplier_data"];
    assert_eq!(
        (sd["boundary"].as_str(), sd["verified"].as_bool()),
        (Some("scope_1_2"), Some(true))
    );
    assert!(
        (sd["hybrid"]["supplier_scope_1_2_kg"].as_f64().unwrap() - 1000.0).abs() < 1e-9,
        "{h}"
    );
    assert!(
        (sd["hybrid"]["upstream_kg"].as_f64().unwrap() - 4_551.030_638_626_154).abs() < 1e-6,
        "{h}"
    );
    assert_eq!(h["emission"]["data_quality_indicators"]["technological"], 3);
    // The 2022 line: its own year's value, 300,000 kg, unverified and not stated.
    let g = line("h22").await;
    assert!(
        (g["emission"]["co2e_kg"].as_f64().unwrap() - 300_000.0).abs() < 1e-6,
        "{g}"
    );
    assert_eq!(g["emission"]["supplier_data"]["boundary_stated"], false);

    let (s, v) = call(
        &e.router,
        "GET",
        "/api/v1/suppliers/HY/intensities",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let years: Vec<_> = v["intensities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["year"].as_u64())
        .collect();
    assert_eq!(years, [Some(2022), Some(2024)]);
    let (_, sup) = call(
        &e.router,
        "GET",
        "/api/v1/suppliers/HY",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(
        (
            sup["intensity_year"].as_u64(),
            sup["intensity_boundary"].as_str()
        ),
        (Some(2024), Some("scope_1_2"))
    );
    assert_eq!(sup["intensities"].as_array().unwrap().len(), 2);

    // Removing 2022: the 2022 line takes the 2024 value (hybrid, another year's).
    let (s, _) = call(
        &e.router,
        "DELETE",
        "/api/v1/suppliers/HY/intensities/2022",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = call(
        &e.router,
        "DELETE",
        "/api/v1/suppliers/HY/intensities/2022",
        Some(&e.analyst),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["recalculated_lines"], 1);
    let g = line("h22").await;
    assert_eq!(g["emission"]["method"], "hybrid");
    assert!(
        (g["emission"]["co2e_kg"].as_f64().unwrap() - 595_000.0).abs() < 1e-6,
        "{g}"
    );
    let (s, _) = call(
        &e.router,
        "DELETE",
        "/api/v1/suppliers/HY/intensities/2022",
        Some(&e.analyst),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = call(
        &e.router,
        "DELETE",
        "/api/v1/suppliers/HY/intensities/22",
        Some(&e.analyst),
        None,
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_year")),
        "{v}"
    );
    let (s, _) = call(
        &e.router,
        "GET",
        "/api/v1/suppliers/NOPE/intensities",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // A bad boundary names the supplier and field; nothing is stored.
    let (s, v) = post(json!({"suppliers": [
        {"supplier_id": "HY", "name": "H", "intensity_kg_per_usd": 0.2, "intensity_boundary": "scope_3"}
    ]}))
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v.to_string().contains("suppliers[0]") && v.to_string().contains("intensity_boundary"),
        "{v}"
    );
}

#[tokio::test]
async fn a_closed_period_refuses_writes_and_is_reopened_with_a_reason() {
    let e = env();
    // The seed has t1 (2022) and t2 (2023); g22 is at a supplier with its own 2022 value.
    let (s, v) = call(&e.router, "POST", "/api/v1/suppliers", Some(&e.analyst), Some(json!({"suppliers": [
        {"supplier_id": "G", "name": "G", "naics_code": "484121", "intensity_kg_per_usd": 0.5, "intensity_year": 2022}
    ]}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = call(
        &e.router,
        "POST",
        "/api/v1/transactions",
        Some(&e.analyst),
        Some(json!({"transactions": [
            {"transaction_id": "g22", "date": "2022-05-01", "amount": 100, "supplier_id": "G"},
        ]})),
    )
    .await;
    assert_eq!(
        (s, v["accepted"].as_u64()),
        (StatusCode::OK, Some(1)),
        "{v}"
    );
    // Only an admin closes.
    let (s, _) = call(
        &e.router,
        "POST",
        "/api/v1/periods/2022/close",
        Some(&e.analyst),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = call(
        &e.router,
        "POST",
        "/api/v1/periods/2022/close",
        Some(&e.admin),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["version"].as_u64(), v["transaction_count"].as_i64()),
        (Some(1), Some(2))
    );
    // 1,000 USD of 2022 × 0.595 (484121, 2022 USD) + 100 USD × 0.5.
    assert!(
        (v["total_co2e_kg"].as_f64().unwrap() - 645.0).abs() < 1e-9,
        "{v}"
    );
    assert_eq!(v["inventory"]["total_co2e_kg"], v["total_co2e_kg"]);
    assert!(
        v["created_by"].as_str().unwrap().ends_with("(admin)"),
        "{v}"
    );
    let (s, v) = call(
        &e.router,
        "POST",
        "/api/v1/periods/2022/close",
        Some(&e.admin),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");

    // A batch: the 2022 lines are rejected with period_closed, the 2023 one is kept.
    let (s, v) = call(
        &e.router,
        "POST",
        "/api/v1/transactions",
        Some(&e.analyst),
        Some(json!({"transactions": [
            {"transaction_id": "t1", "date": "2022-03-01", "amount": 2000, "naics_code": "484121"},
            {"transaction_id": "n22", "date": "2022-07-01", "amount": 5, "naics_code": "484121"},
            {"transaction_id": "n23", "date": "2023-07-01", "amount": 5, "naics_code": "484121"},
        ]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["accepted"], 1, "{v}");
    let rej = v["rejected"].as_array().unwrap();
    assert_eq!(
        (rej[0]["index"].as_u64(), rej[1]["index"].as_u64()),
        (Some(0), Some(1)),
        "{v}"
    );
    assert_eq!(rej[0]["error"]["code"], "period_closed", "{v}");
    assert_eq!(
        rej[1]["error"]["details"][0]["path"], "transactions[1].date",
        "{v}"
    );
    assert!(
        v.to_string()
            .contains("the 2022 reporting period is closed"),
        "{v}"
    );
    let (s, v) = call(
        &e.router,
        "DELETE",
        "/api/v1/transactions/t1",
        Some(&e.analyst),
        None,
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("period_closed")),
        "{v}"
    );
    // Supplier data that would change 2022 is refused; the rest kept.
    let (s, v) = call(&e.router, "POST", "/api/v1/suppliers", Some(&e.analyst), Some(json!({"suppliers": [
        {"supplier_id": "G", "name": "G", "naics_code": "484121", "intensity_kg_per_usd": 0.9, "intensity_year": 2022},
        {"supplier_id": "H", "name": "H", "naics_code": "484121", "intensity_kg_per_usd": 0.9, "intensity_year": 2022},
    ]}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["upserted"].as_u64(), v["rejected"][0]["index"].as_u64()),
        (Some(1), Some(0)),
        "{v}"
    );
    assert_eq!(v["rejected"][0]["error"]["code"], "period_closed", "{v}");
    let (s, v) = call(
        &e.router,
        "DELETE",
        "/api/v1/suppliers/G/intensities/2022",
        Some(&e.analyst),
        None,
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("period_closed")),
        "{v}"
    );

    // Periods are listed with their versions; reopening needs a reason.
    let (_, v) = call(&e.router, "GET", "/api/v1/periods", Some(&e.viewer), None).await;
    assert_eq!(v["periods"][0]["status"], "closed", "{v}");
    let (s, _) = call(
        &e.router,
        "POST",
        "/api/v1/periods/2022/reopen",
        Some(&e.admin),
        Some(json!({"reason": ""})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, v) = call(
        &e.router,
        "POST",
        "/api/v1/periods/2022/reopen",
        Some(&e.admin),
        Some(json!({"reason": "late invoice"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["status"].as_str(), v["reopen_reason"].as_str()),
        (Some("open"), Some("late invoice"))
    );
    let (s, v) = call(
        &e.router,
        "DELETE",
        "/api/v1/transactions/t1",
        Some(&e.analyst),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let (s, v) = call(
        &e.router,
        "POST",
        "/api/v1/periods/2022/close",
        Some(&e.admin),
        None,
    )
    .await;
    assert_eq!(
        (s, v["version"].as_u64(), v["transaction_count"].as_i64()),
        (StatusCode::OK, Some(2), Some(1)),
        "{v}"
    );
    // Version 1 is as it was frozen.
    let (s, v) = call(
        &e.router,
        "GET",
        "/api/v1/periods/2022/versions/1",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(
        (v["total_co2e_kg"].as_f64().unwrap() - 645.0).abs() < 1e-9,
        "{v}"
    );
    let (s, _) = call(
        &e.router,
        "GET",
        "/api/v1/periods/2022/versions/3",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = call(
        &e.router,
        "GET",
        "/api/v1/periods/1850",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // Another organization sees none of it.
    let (_, v) = call(&e.router, "GET", "/api/v1/periods", Some(&e.other), None).await;
    assert_eq!(v["periods"].as_array().unwrap().len(), 0, "{v}");
}

#[tokio::test]
async fn years_are_compared_and_targets_tracked_through_the_api() {
    let e = env();
    // The seed: t1 1,000 USD of 2022 (484121: 595 kg), t2 1,000 EUR of 2023 (334111).
    let (s, _) = call(
        &e.router,
        "PUT",
        "/api/v1/reporting",
        Some(&e.analyst),
        Some(json!({"base_year": 2022})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = call(
        &e.router,
        "PUT",
        "/api/v1/reporting",
        Some(&e.admin),
        Some(json!({"base_year": 2022})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (
            v["base_year"].as_u64(),
            v["significance_threshold"].as_f64()
        ),
        (Some(2022), Some(0.05))
    );
    let (s, v) = call(
        &e.router,
        "PUT",
        "/api/v1/reporting",
        Some(&e.admin),
        Some(json!({"base_year": 2022, "significance_threshold": 2})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = call(
        &e.router,
        "PUT",
        "/api/v1/denominators/revenue/2022",
        Some(&e.analyst),
        Some(json!({"value": 4, "unit": "M USD"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = call(
        &e.router,
        "GET",
        "/api/v1/emissions/compare?year=2023&denominator=revenue",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (
            v["year"].as_u64(),
            v["previous_year"].as_u64(),
            v["base_year"].as_u64()
        ),
        (Some(2023), Some(2022), Some(2022))
    );
    assert_eq!(
        v["categories"][3]["previous_year_co2e_kg"].as_f64(),
        Some(595.0),
        "{v}"
    );
    assert_eq!(v["categories"][3]["year_co2e_kg"], Value::Null, "{v}");
    assert!(
        (v["intensity"]["base_year_kg_per_unit"].as_f64().unwrap() - 595.0 / 4.0).abs() < 1e-9,
        "{v}"
    );
    assert_eq!(v["sources"]["2023"], "live");
    let (s, _) = call(
        &e.router,
        "GET",
        "/api/v1/emissions/compare",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = call(
        &e.router,
        "GET",
        "/api/v1/emissions/compare?year=2023&denominator=nope",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // A target on category 4: 50 % less than 2022 by 2024; 2023 has no category 4 line.
    let (s, v) = call(&e.router, "POST", "/api/v1/targets", Some(&e.admin), Some(json!(
        {"name": "freight", "categories": [4], "base_year": 2022, "target_year": 2024, "reduction_pct": 50}
    ))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = call(&e.router, "GET", "/api/v1/targets", Some(&e.viewer), None).await;
    let t = &v["targets"][0];
    assert_eq!(
        (
            t["base_year_co2e_kg"].as_f64(),
            t["target_co2e_kg"].as_f64()
        ),
        (Some(595.0), Some(297.5)),
        "{v}"
    );
    assert_eq!(t["years"][1]["path_co2e_kg"].as_f64(), Some(446.25), "{v}");
    assert_eq!(t["years"][1]["co2e_kg"], Value::Null, "{v}");
    let (s, v) = call(
        &e.router,
        "POST",
        "/api/v1/targets",
        Some(&e.admin),
        Some(json!(
            {"name": "bad", "base_year": 2024, "target_year": 2022, "reduction_pct": 50}
        )),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    // Other organizations see none of it.
    let (_, v) = call(&e.router, "GET", "/api/v1/targets", Some(&e.other), None).await;
    assert_eq!(v["targets"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn a_restatement_is_previewed_then_applied_as_a_new_version() {
    let e = env();
    let (s, _) = call(
        &e.router,
        "POST",
        "/api/v1/periods/2022/close",
        Some(&e.admin),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let body = json!({"epa_version": "1.2"});
    let (s, p) = call(
        &e.router,
        "POST",
        "/api/v1/restatements/preview",
        Some(&e.viewer),
        Some(body.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(p["cause"], "EPA supply chain 1.2 instead of 1.3.0");
    let y = &p["years"][0];
    assert_eq!(
        (
            y["year"].as_u64(),
            y["version"].as_u64(),
            y["lines_affected"].as_u64()
        ),
        (Some(2022), Some(1), Some(1)),
        "{p}"
    );
    assert_eq!(y["total"]["before_co2e_kg"].as_f64(), Some(595.0), "{p}");
    let after = y["total"]["after_co2e_kg"].as_f64().unwrap();
    assert!((after - 595.0).abs() > 1.0, "{p}");
    // Nothing changed: the year's figure is still the disclosed one.
    let (_, c) = call(
        &e.router,
        "GET",
        "/api/v1/emissions/compare?year=2023",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(
        c["total"]["previous_year_co2e_kg"].as_f64(),
        Some(595.0),
        "{c}"
    );
    let (s, _) = call(
        &e.router,
        "POST",
        "/api/v1/restatements",
        Some(&e.analyst),
        Some(json!({"epa_version": "1.2", "reason": "x"})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = call(
        &e.router,
        "POST",
        "/api/v1/restatements",
        Some(&e.admin),
        Some(body),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "no reason: {v}");
    let (s, v) = call(
        &e.router,
        "POST",
        "/api/v1/restatements",
        Some(&e.admin),
        Some(json!({"epa_version": "1.2", "reason": "comparability"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["versions"], json!([{"year": 2022, "version": 2}]));
    let (_, v2) = call(
        &e.router,
        "GET",
        "/api/v1/periods/2022/versions/2",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(v2["total_co2e_kg"].as_f64(), Some(after), "{v2}");
    let (_, v1) = call(
        &e.router,
        "GET",
        "/api/v1/periods/2022/versions/1",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(v1["total_co2e_kg"].as_f64(), Some(595.0), "{v1}");
    let (_, me) = call(&e.router, "GET", "/api/v1/me", Some(&e.viewer), None).await;
    assert_eq!(me["epa_version"], "1.2", "{me}");
}

#[tokio::test]
async fn the_audit_log_records_who_changed_what_and_pages_by_cursor() {
    let e = env();
    // Seeded: acme's import (1) and its three keys (2–4).
    let (s, v) = call(
        &e.router,
        "POST",
        "/api/v1/transactions",
        Some(&e.analyst),
        Some(json!({"transactions": [
            {"transaction_id": "t1", "date": "2022-03-01", "amount": 2000, "currency": "USD", "naics_code": "484121"},
            {"transaction_id": "t9", "date": "2023-05-01", "amount": 10, "naics_code": "484121"},
        ]})),
    )
    .await;
    assert_eq!(
        (s, v["accepted"].as_u64()),
        (StatusCode::OK, Some(2)),
        "{v}"
    );
    let (s, _) = call(
        &e.router,
        "DELETE",
        "/api/v1/transactions/t9",
        Some(&e.analyst),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = call(&e.router, "GET", "/api/v1/audit", Some(&e.viewer), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let data = v["data"].as_array().unwrap();
    let actions: Vec<&str> = data.iter().map(|x| x["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "line.deleted",
            "lines.written",
            "key.created",
            "key.created",
            "key.created",
            "import"
        ]
    );
    let w = &data[1];
    assert_eq!(
        (w["role"].as_str(), w["lines"].as_i64()),
        (Some("analyst"), Some(2)),
        "{w}"
    );
    assert_eq!(
        (
            w["detail"]["created"].as_u64(),
            w["detail"]["updated"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert!(
        w["request_id"].as_str().is_some_and(|r| !r.is_empty()),
        "{w}"
    );
    assert!(w["key_id"].as_i64().is_some(), "{w}");
    assert_eq!(data[0]["subject"], "t9");
    assert_eq!(data[0]["prev_hash"], data[1]["hash"]);
    // Pages by cursor.
    let (_, p1) = call(
        &e.router,
        "GET",
        "/api/v1/audit?limit=4",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(p1["data"].as_array().unwrap().len(), 4);
    assert_eq!(p1["page_info"]["has_next_page"], true);
    let cursor = p1["page_info"]["end_cursor"].as_str().unwrap();
    let (_, p2) = call(
        &e.router,
        "GET",
        &format!("/api/v1/audit?limit=4&cursor={cursor}"),
        Some(&e.viewer),
        None,
    )
    .await;
    let seqs: Vec<i64> = p2["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [2, 1]);
    assert_eq!(p2["page_info"]["has_next_page"], false);
    // A line's history; a family of actions.
    let (_, h) = call(
        &e.router,
        "GET",
        "/api/v1/audit?line=t1",
        Some(&e.viewer),
        None,
    )
    .await;
    let seqs: Vec<i64> = h["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [5, 1], "{h}");
    let (_, k) = call(
        &e.router,
        "GET",
        "/api/v1/audit?action=key.",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(k["data"].as_array().unwrap().len(), 3);
    let (_, d) = call(
        &e.router,
        "GET",
        "/api/v1/audit?since=2000-01-01&until=2999-12-31",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(d["data"].as_array().unwrap().len(), 6);
    let (_, d) = call(
        &e.router,
        "GET",
        "/api/v1/audit?until=2000-01-01",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(d["data"].as_array().unwrap().len(), 0);
    // Another organization sees its own chain only; its cursor is not ours.
    let (_, o) = call(&e.router, "GET", "/api/v1/audit", Some(&e.other), None).await;
    let o = o["data"].as_array().unwrap();
    assert_eq!(o.len(), 2);
    assert!(!o.iter().any(|x| x.to_string().contains("t9")));
    let (s, v) = call(
        &e.router,
        "GET",
        &format!("/api/v1/audit?cursor={cursor}"),
        Some(&e.other),
        None,
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_cursor"))
    );
    // Bad filters are named.
    for q in ["key_id=abc", "since=yesterday", "limit=0", "colour=red"] {
        let (s, v) = call(
            &e.router,
            "GET",
            &format!("/api/v1/audit?{q}"),
            Some(&e.viewer),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {v}");
    }
    let (s, v) = call(
        &e.router,
        "GET",
        "/api/v1/audit/verify",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (
            v["ok"].as_bool(),
            v["entries"].as_u64(),
            v["head_seq"].as_i64()
        ),
        (Some(true), Some(6), Some(6)),
        "{v}"
    );
    assert_eq!(v["head_hash"], data[0]["hash"]);
}

#[tokio::test]
async fn corrected_lines_of_a_closed_year_are_restated_through_the_api() {
    let e = env();
    // Seeded: t1 (2022, 1,000 USD of 484121: 595 kg). Close 2022.
    let (s, v) = call(
        &e.router,
        "POST",
        "/api/v1/periods/2022/close",
        Some(&e.admin),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(
        (v["total_co2e_kg"].as_f64().unwrap() - 595.0).abs() < 1e-9,
        "{v}"
    );
    // The amount was wrong: 2,000 USD. As an upsert it is refused (closed); as a restatement
    // the preview shows 595 → 1,190 kg, and nothing changes.
    let fix = json!({"transactions": [{"transaction_id": "t1", "date": "2022-03-01", "amount": 2000, "currency": "USD", "naics_code": "484121"}]});
    let (s, p) = call(
        &e.router,
        "POST",
        "/api/v1/restatements/preview",
        Some(&e.viewer),
        Some(fix.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    let y = &p["years"][0];
    assert_eq!(
        (y["year"].as_u64(), y["lines_affected"].as_u64()),
        (Some(2022), Some(1)),
        "{p}"
    );
    assert_eq!(
        (
            y["total"]["before_co2e_kg"].as_f64(),
            y["total"]["after_co2e_kg"].as_f64()
        ),
        (Some(595.0), Some(1190.0)),
        "{p}"
    );
    assert_eq!(p["cause"], "1 corrected line(s)");
    // Bad corrections are named by their JSON path; nothing to restate is refused.
    let (s, v) = call(
        &e.router,
        "POST",
        "/api/v1/restatements/preview",
        Some(&e.viewer),
        Some(
            json!({"transactions": [{"transaction_id": "t1", "date": "2022-13-01", "amount": 1}]}),
        ),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_corrections")),
        "{v}"
    );
    assert!(v.to_string().contains("transactions[0].date"), "{v}");
    let (s, _) = call(
        &e.router,
        "POST",
        "/api/v1/restatements",
        Some(&e.admin),
        Some(json!({"reason": "nothing"})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let mut apply = fix.clone();
    apply["reason"] = json!("invoice 4711 corrected");
    let (s, _) = call(
        &e.router,
        "POST",
        "/api/v1/restatements",
        Some(&e.analyst),
        Some(apply.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = call(
        &e.router,
        "POST",
        "/api/v1/restatements",
        Some(&e.admin),
        Some(apply),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["versions"], json!([{"year": 2022, "version": 2}]), "{v}");
    let (_, v2) = call(
        &e.router,
        "GET",
        "/api/v1/periods/2022/versions/2",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(v2["total_co2e_kg"].as_f64(), Some(1190.0), "{v2}");
    let (_, v1) = call(
        &e.router,
        "GET",
        "/api/v1/periods/2022/versions/1",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(v1["total_co2e_kg"].as_f64(), Some(595.0), "{v1}");
    let (_, line) = call(
        &e.router,
        "GET",
        "/api/v1/transactions/t1",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(line["amount"].as_f64(), Some(2000.0), "{line}");
    // Its audit entry: the restatement, by the admin key, with the line's digest, attesting v2.
    let (_, a) = call(
        &e.router,
        "GET",
        "/api/v1/audit?line=t1",
        Some(&e.viewer),
        None,
    )
    .await;
    let last = &a["data"][0];
    assert_eq!(
        (last["action"].as_str(), last["lines"].as_i64()),
        (Some("restatement.applied"), Some(1)),
        "{a}"
    );
    assert_eq!(last["seq"], v2["audit_seq"]);
    assert_eq!(last["hash"], v2["audit_hash"]);
}

#[tokio::test]
async fn supplier_footprints_are_received_listed_and_calculate_lines() {
    let e = env();
    let id = "aaaaaaaa-0000-4000-8000-000000000001";
    let product = "urn:gtin:4712345060507";
    let mut broken = pact_footprint("bbbbbbbb-0000-4000-8000-000000000002", product, "1");
    broken["pcf"]["pcfExcludingBiogenicUptake"] = json!(1.5);
    let body = json!({"footprints": [pact_footprint(id, product, "2400"), broken]});
    // A viewer may not; an analyst may.
    let uri = "/api/v1/suppliers/acme-steel/footprints";
    let (s, _) = call(&e.router, "POST", uri, Some(&e.viewer), Some(body.clone())).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = call(&e.router, "POST", uri, Some(&e.analyst), Some(body)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["received"], json!([id]));
    assert_eq!(
        v["rejected"][0]["id"],
        "bbbbbbbb-0000-4000-8000-000000000002"
    );
    assert_eq!(
        v["rejected"][0]["errors"][0]["path"],
        "/pcf/pcfExcludingBiogenicUptake"
    );
    // Neither or both of footprints and data: 400.
    let (s, _) = call(&e.router, "POST", uri, Some(&e.analyst), Some(json!({}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // A line naming the product: 500 kg × 2,400 / 1,000 = 1,200 kg, with the footprint named.
    let (s, v) = call(
        &e.router,
        "POST",
        "/api/v1/transactions",
        Some(&e.analyst),
        Some(
            json!({"transactions": [{"transaction_id": "coil-1", "date": "2024-05-01",
            "supplier_id": "acme-steel", "quantity": 500, "unit": "kg", "product_id": product}]}),
        ),
    )
    .await;
    assert_eq!(
        (s, v["accepted"].clone()),
        (StatusCode::OK, json!(1)),
        "{v}"
    );
    let (s, v) = call(
        &e.router,
        "GET",
        "/api/v1/transactions/coil-1",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["product_id"], product);
    assert_eq!(v["emission"]["co2e_kg"], 1200.0);
    assert_eq!(v["emission"]["method"], "supplier_specific");
    assert_eq!(v["emission"]["factor"]["set"], "pact");
    assert_eq!(v["emission"]["factor"]["key"], id);
    assert_eq!(
        v["emission"]["product_footprint"]["declared_unit_amount"],
        "1000"
    );
    assert_eq!(
        v["emission"]["product_footprint"]["company_name"],
        "Acme Steel"
    );
    // The preview calculates with the same footprint.
    let (s, v) = call(
        &e.router,
        "POST",
        "/api/v1/emissions/calculate",
        Some(&e.viewer),
        Some(
            json!({"lines": [{"date": "2024-05-01", "supplier_id": "acme-steel",
            "quantity": 0.5, "unit": "tonnes", "product_id": product}]}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["results"][0]["emission"]["co2e_kg"], 1200.0);
    assert_eq!(v["results"][0]["emission"]["product_footprint"]["id"], id);

    // Lists, filters and the detail; nothing for another organization.
    let (s, v) = call(
        &e.router,
        "GET",
        "/api/v1/footprints",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["data"][0]["id"], id);
    assert_eq!(v["data"][0]["in_use"], true);
    let (_, v) = call(
        &e.router,
        "GET",
        "/api/v1/footprints?status=Deprecated",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(v["data"], json!([]));
    let (s, _) = call(
        &e.router,
        "GET",
        "/api/v1/footprints?status=Old",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, v) = call(
        &e.router,
        "GET",
        &format!("/api/v1/footprints/{id}"),
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (
            v["lines"].clone(),
            v["document"]["pcf"]["declaredUnitAmount"].clone()
        ),
        (json!(1), json!("1000"))
    );
    let (s, _) = call(
        &e.router,
        "GET",
        &format!("/api/v1/footprints/{id}"),
        Some(&e.other),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, v) = call(&e.router, "GET", "/api/v1/footprints", Some(&e.other), None).await;
    assert_eq!(v["data"], json!([]));
}

/// A PACT request: method, path, headers; status, headers and JSON body.
async fn pact_call(
    router: &axum::Router,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = router
        .clone()
        .oneshot(req.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let (status, h) = (res.status(), res.headers().clone());
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 24)
        .await
        .unwrap();
    let v = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (status, h, v)
}

fn basic(id: &str, secret: &str) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = format!("{id}:{secret}").into_bytes();
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = c
            .iter()
            .enumerate()
            .fold(0u32, |a, (i, x)| a | u32::from(*x) << (16 - 8 * i));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    format!("Basic {out}")
}

#[tokio::test]
async fn vcci_hosts_pact_for_its_customers() {
    let e = env();
    let schemas = common::PactSchemas::load();
    // Two products; the host serves only over TLS unless a proxy is declared in front.
    let gtin = |i: u32| format!("urn:gtin:471234506050{i}");
    let mut docs = Vec::new();
    for i in 0..3 {
        let mut d = pact_footprint(
            &format!("0000000{i}-0000-4000-8000-000000000000"),
            &gtin(i),
            "2400",
        );
        d["pcf"]["geographyCountry"] = json!(if i == 0 { "DE" } else { "FR" });
        docs.push(d);
    }
    let (s, v) = call(
        &e.router,
        "POST",
        "/api/v1/pact/published",
        Some(&e.viewer),
        Some(json!({"footprints": docs.clone()})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, v) = call(
        &e.router,
        "POST",
        "/api/v1/pact/published",
        Some(&e.analyst),
        Some(json!({"footprints": docs})),
    )
    .await;
    assert_eq!(
        (s, v["published"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(3)),
        "{v}"
    );
    // A new version of product 0, without id: a new id, the old one Deprecated.
    let mut next = pact_footprint("x", &gtin(0), "2000");
    next.as_object_mut().unwrap().remove("id");
    next.as_object_mut().unwrap().remove("created");
    next["pcf"]["geographyCountry"] = json!("DE");
    let (s, v) = call(
        &e.router,
        "POST",
        "/api/v1/pact/published",
        Some(&e.analyst),
        Some(json!({"footprints": [next]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let new_id = v["published"][0].as_str().unwrap().to_owned();
    assert_eq!(
        v["deprecated"],
        json!(["00000000-0000-4000-8000-000000000000"])
    );
    // Published ids are immutable.
    let mut changed = pact_footprint("00000001-0000-4000-8000-000000000000", &gtin(1), "1");
    changed["pcf"]["geographyCountry"] = json!("FR");
    let (_, v) = call(
        &e.router,
        "POST",
        "/api/v1/pact/published",
        Some(&e.analyst),
        Some(json!({"footprints": [changed]})),
    )
    .await;
    assert!(
        v["rejected"][0]["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("immutable"),
        "{v}"
    );

    // Clients: an admin creates one (the secret shown once); another organization's too.
    let (s, _) = call(
        &e.router,
        "POST",
        "/api/v1/pact/clients",
        Some(&e.analyst),
        Some(json!({"name": "Customer"})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, c) = call(
        &e.router,
        "POST",
        "/api/v1/pact/clients",
        Some(&e.admin),
        Some(json!({"name": "Customer"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let (id, secret) = (
        c["client_id"].as_str().unwrap().to_owned(),
        c["client_secret"].as_str().unwrap().to_owned(),
    );
    let (_, listed) = call(
        &e.router,
        "GET",
        "/api/v1/pact/clients",
        Some(&e.admin),
        None,
    )
    .await;
    assert_eq!(listed["clients"][0]["client_id"], id.as_str());
    assert!(
        !listed.to_string().contains(&secret),
        "a secret is never listed"
    );
    let (_, oc) = call(
        &e.router,
        "POST",
        "/api/v1/pact/clients",
        Some(&e.other),
        Some(json!({"name": "Other"})),
    )
    .await;

    // Plain HTTP is refused without a TLS proxy declared.
    let form = "grant_type=client_credentials";
    let ct = ("content-type", "application/x-www-form-urlencoded");
    let auth = basic(&id, &secret);
    let (s, _, v) = pact_call(
        &e.router,
        "POST",
        "/auth/token",
        &[ct, ("authorization", &auth)],
        form,
    )
    .await;
    assert_eq!(
        (s, v["code"].clone()),
        (StatusCode::FORBIDDEN, json!("AccessDenied"))
    );

    let app = vcci_server::App::new(
        e.store.clone(),
        vcci_server::AppConfig {
            pact_behind_tls_proxy: true,
            ..config(&e.store)
        },
    )
    .unwrap();
    let pact = vcci_server::build_app(app);
    let host = ("host", "pact.example.com");
    let (s, _, v) = pact_call(
        &pact,
        "GET",
        "/.well-known/openid-configuration",
        &[host],
        "",
    )
    .await;
    assert_eq!(
        (s, v["token_endpoint"].clone()),
        (StatusCode::OK, json!("https://pact.example.com/auth/token"))
    );
    let wrong = basic(&id, "wrong");
    let (s, h, v) = pact_call(
        &pact,
        "POST",
        "/auth/token",
        &[ct, ("authorization", &wrong)],
        form,
    )
    .await;
    assert_eq!(
        (s, v["error"].clone()),
        (StatusCode::UNAUTHORIZED, json!("invalid_client"))
    );
    assert!(h.contains_key("www-authenticate"));
    let (s, _, v) = pact_call(
        &pact,
        "POST",
        "/auth/token",
        &[ct, ("authorization", &auth)],
        "grant_type=password",
    )
    .await;
    assert_eq!(
        (s, v["error"].clone()),
        (StatusCode::BAD_REQUEST, json!("unsupported_grant_type"))
    );
    let (s, _, v) = pact_call(
        &pact,
        "POST",
        "/auth/token",
        &[ct, ("authorization", &auth)],
        form,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["token_type"].clone(), v["expires_in"].clone()),
        (json!("bearer"), json!(3600))
    );
    let bearer = format!("Bearer {}", v["access_token"].as_str().unwrap());
    let tok = ("authorization", bearer.as_str());

    // The list: 4 footprints by id, 2 per page, with an absolute next link on the host.
    let (s, h, page1) = pact_call(&pact, "GET", "/3/footprints?limit=2", &[tok, host], "").await;
    assert_eq!(s, StatusCode::OK, "{page1}");
    assert_eq!(page1["data"].as_array().unwrap().len(), 2);
    let link = h["link"].to_str().unwrap().to_owned();
    assert!(
        link.starts_with("<https://pact.example.com/3/footprints?limit=2&cursor="),
        "{link}"
    );
    assert!(link.ends_with(">; rel=\"next\""), "{link}");
    let next = link
        .trim_start_matches("<https://pact.example.com")
        .split('>')
        .next()
        .unwrap()
        .to_owned();
    let (_, h2, page2) = pact_call(&pact, "GET", &next, &[tok, host], "").await;
    assert_eq!(page2["data"].as_array().unwrap().len(), 2);
    assert!(!h2.contains_key("link"), "the last page has no next link");
    let mut ids: Vec<String> = page1["data"]
        .as_array()
        .unwrap()
        .iter()
        .chain(page2["data"].as_array().unwrap())
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), 4);
    // The link can be called again.
    assert_eq!(
        pact_call(&pact, "GET", &next, &[tok, host], "").await.2,
        page2
    );
    // The deprecated version says so; filters: OR within a criterion, AND between.
    let (_, _, v) = pact_call(&pact, "GET", "/3/footprints?status=Deprecated", &[tok], "").await;
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    assert_eq!(v["data"][0]["status"], "Deprecated");
    let q = format!(
        "/3/footprints?productId={}&productId={}&geography=FR",
        gtin(0),
        gtin(1)
    );
    let (_, _, v) = pact_call(&pact, "GET", &q, &[tok], "").await;
    assert_eq!(v["data"].as_array().unwrap().len(), 1, "{v}");
    let (_, _, v) = pact_call(
        &pact,
        "GET",
        "/3/footprints?geography=DE&status=Active",
        &[tok],
        "",
    )
    .await;
    assert_eq!(v["data"][0]["id"], new_id.as_str());
    let (_, _, v) = pact_call(
        &pact,
        "GET",
        "/3/footprints?validOn=2026-06-01T00:00:00Z",
        &[tok],
        "",
    )
    .await;
    assert_eq!(v["data"].as_array().unwrap().len(), 4);
    let (_, _, v) = pact_call(
        &pact,
        "GET",
        "/3/footprints?validBefore=2026-06-01T00:00:00Z",
        &[tok],
        "",
    )
    .await;
    assert_eq!(v["data"], json!([]));
    // The one footprint; errors in the spec's shape.
    let (s, _, one) = pact_call(&pact, "GET", &format!("/3/footprints/{new_id}"), &[tok], "").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        one["data"]["precedingPfIds"],
        json!(["00000000-0000-4000-8000-000000000000"])
    );
    let mut errors = Vec::new();
    for (uri, want, code) in [
        (
            "/3/footprints/ffffffff-0000-4000-8000-000000000000",
            StatusCode::NOT_FOUND,
            "NotFound",
        ),
        (
            "/3/footprints?%24filter=productIds%2Fany(x%3Ax%20eq%20%27a%27)",
            StatusCode::BAD_REQUEST,
            "BadRequest",
        ),
        (
            "/3/footprints?validOn=yesterday",
            StatusCode::BAD_REQUEST,
            "BadRequest",
        ),
    ] {
        let (s, _, v) = pact_call(&pact, "GET", uri, &[tok], "").await;
        assert_eq!((s, v["code"].clone()), (want, json!(code)), "{uri}: {v}");
        errors.push(v);
    }
    for auth in [None, Some("Bearer nonsense"), Some("Bearer 1.abc.def")] {
        let hs: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
        let (s, _, v) = pact_call(&pact, "GET", "/3/footprints", &hs, "").await;
        assert_eq!(
            (s, v["code"].clone()),
            (StatusCode::FORBIDDEN, json!("AccessDenied")),
            "{auth:?}"
        );
        errors.push(v);
    }
    // Another organization's client sees none of these.
    let other_auth = basic(
        oc["client_id"].as_str().unwrap(),
        oc["client_secret"].as_str().unwrap(),
    );
    let (_, _, v) = pact_call(
        &pact,
        "POST",
        "/auth/token",
        &[ct, ("authorization", &other_auth)],
        form,
    )
    .await;
    let other_bearer = format!("Bearer {}", v["access_token"].as_str().unwrap());
    let (_, _, v) = pact_call(
        &pact,
        "GET",
        "/3/footprints",
        &[("authorization", &other_bearer)],
        "",
    )
    .await;
    assert_eq!(v["data"], json!([]));
    let (s, _, _) = pact_call(
        &pact,
        "GET",
        &format!("/3/footprints/{new_id}"),
        &[("authorization", &other_bearer)],
        "",
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Every answer validates against the spec's schemas.
    if let Some(sc) = &schemas {
        for p in [&page1, &page2] {
            sc.list(p);
        }
        sc.get(&one);
        for e in &errors {
            sc.error(e);
        }
    }
    // An expired token (signed as the node signs them, with a past expiry) is TokenExpired.
    let org_id: i64 = bearer["Bearer ".len()..]
        .split('.')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let expired = format!(
        "Bearer {org_id}.{}",
        e.app.cursors().sign("pact-token", org_id, &[&id, "1"])
    );
    let (s, _, v) = pact_call(
        &pact,
        "GET",
        "/3/footprints",
        &[("authorization", &expired)],
        "",
    )
    .await;
    assert_eq!(
        (s, v["code"].clone()),
        (StatusCode::UNAUTHORIZED, json!("TokenExpired")),
        "{v}"
    );
    if let Some(sc) = &schemas {
        sc.error(&v);
    }
    // A revoked client's token stops working at once.
    let (s, _) = call(
        &e.router,
        "DELETE",
        &format!("/api/v1/pact/clients/{id}"),
        Some(&e.admin),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, v) = pact_call(&pact, "GET", "/3/footprints", &[tok], "").await;
    assert_eq!(
        (s, v["code"].clone()),
        (StatusCode::FORBIDDEN, json!("AccessDenied"))
    );
    // The organization's own list of what it publishes.
    let (_, v) = call(
        &e.router,
        "GET",
        "/api/v1/pact/published",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(v["data"].as_array().unwrap().len(), 4);
}

/// The schema check used above is live: it refuses what the spec forbids.
#[test]
fn the_pact_schema_check_refuses_what_the_spec_forbids() {
    let Some(sc) = common::PactSchemas::load() else {
        return;
    };
    let good = pact_footprint("00000000-0000-4000-8000-000000000000", "urn:gtin:1", "2");
    sc.list(&json!({"data": [good.clone()]}));
    let mut bad = good.clone();
    bad["pcf"]["declaredUnitAmount"] = json!(1);
    for (what, v) in [
        ("a number for a decimal string", json!({"data": [bad]})),
        ("no data", json!({})),
    ] {
        let r = std::panic::catch_unwind(|| sc.list(&v));
        assert!(r.is_err(), "{what} passed the schema");
    }
    assert!(
        std::panic::catch_unwind(|| sc.error(&json!({"code": "Nope", "message": "x"}))).is_err()
    );
    assert!(std::panic::catch_unwind(|| sc.get(&json!({"data": {"id": "x"}}))).is_err());
}

/// The events vcci sends validate against the spec's event schemas.
#[test]
fn the_events_vcci_sends_validate_against_the_spec() {
    use vcci_server::pact_events::{REQUEST_CREATED, REQUEST_FULFILLED, REQUEST_REJECTED, event};
    let Some(sc) = common::PactSchemas::load() else {
        return;
    };
    let src = "//pact.example.com/3/events";
    let created = event(
        REQUEST_CREATED,
        "00000000-0000-4000-8000-00000000000a",
        src,
        json!({"productId": ["urn:gtin:1"], "comment": "please"}),
    );
    sc.check("/components/schemas/RequestCreatedEvent", &created);
    let pf = pact_footprint("00000000-0000-4000-8000-000000000000", "urn:gtin:1", "2");
    let fulfilled = event(
        REQUEST_FULFILLED,
        "00000000-0000-4000-8000-00000000000b",
        src,
        json!({"requestEventId": "00000000-0000-4000-8000-00000000000a", "pfs": [pf]}),
    );
    sc.check("/components/schemas/RequestFulfilledEvent", &fulfilled);
    let rejected = event(
        REQUEST_REJECTED,
        "00000000-0000-4000-8000-00000000000c",
        src,
        json!({"requestEventId": "00000000-0000-4000-8000-00000000000a",
               "error": {"code": "NotFound", "message": "no footprint matches the request"}}),
    );
    sc.check("/components/schemas/RequestRejectedEvent", &rejected);
    // And the check is live: a fulfilment without footprints fails it.
    let mut empty = fulfilled.clone();
    empty["data"]["pfs"] = json!([]);
    assert!(
        std::panic::catch_unwind(|| sc.check("/components/schemas/RequestFulfilledEvent", &empty))
            .is_err()
    );
}
