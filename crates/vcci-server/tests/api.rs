//! The first API routes through the real router (`oneshot`).

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;
use vcci_store::Store;
use vcci_store::import::{ImportOptions, RejectsWriter, import_transactions};
use vcci_store::keys::Role;

struct Env {
    _dir: tempfile::TempDir,
    router: Router,
    admin: String,
    viewer: String,
    analyst: String,
    other: String,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_dir(dir.path()).unwrap();
    let db = store.connect().unwrap();
    let acme = db.ensure_org("acme").unwrap();
    let other = db.ensure_org("other").unwrap();
    let csv = "transaction_id,date,amount,currency,naics_code\nt1,2022-03-01,1000,USD,484121\nt2,2023-03-15,1000,EUR,334111\n";
    let mut rejects = RejectsWriter::new(Vec::new()).unwrap();
    import_transactions(
        &store,
        vcci_core::catalog(),
        &acme,
        csv.as_bytes(),
        "t.csv",
        &ImportOptions::default(),
        &mut rejects,
        &mut |_| {},
    )
    .unwrap();
    let mut rejects = RejectsWriter::new(Vec::new()).unwrap();
    import_transactions(
        &store,
        vcci_core::catalog(),
        &other,
        "transaction_id,date,amount,naics_code\nsecret,2022-01-01,5,484121\n".as_bytes(),
        "o.csv",
        &ImportOptions::default(),
        &mut rejects,
        &mut |_| {},
    )
    .unwrap();
    let keys = (
        db.create_key(acme.id, Role::Admin).unwrap(),
        db.create_key(acme.id, Role::Viewer).unwrap(),
        db.create_key(acme.id, Role::Analyst).unwrap(),
        db.create_key(other.id, Role::Admin).unwrap(),
    );
    let app: Arc<vcci_server::App> = vcci_server::App::new(store, 2);
    Env {
        _dir: dir,
        router: vcci_server::build_app(app),
        admin: keys.0,
        viewer: keys.1,
        analyst: keys.2,
        other: keys.3,
    }
}

async fn call(
    router: &Router,
    method: &str,
    uri: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    let req = match body {
        Some(b) => req
            .header("content-type", "application/json")
            .body(Body::from(b.to_string()))
            .unwrap(),
        None => req.body(Body::empty()).unwrap(),
    };
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 24)
        .await
        .unwrap();
    let v = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (status, v)
}

#[tokio::test]
async fn health_and_ready() {
    let e = env();
    assert_eq!(
        call(&e.router, "GET", "/health", None, None).await,
        (StatusCode::OK, json!({"status": "ok"}))
    );
    let (s, v) = call(&e.router, "GET", "/ready", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v,
        json!({"status": "ready", "checks": {"database": "ok", "cache": "disabled"}})
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
