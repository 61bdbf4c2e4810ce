//! Operations routes (no auth): `/health` (the process runs), `/ready` (the database
//! answers), `/metrics` (Prometheus), `/openapi.json` and the API docs page at `/docs`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::App;
use crate::openapi::{Api, Op};

pub fn api(api: Api) -> Api {
    api.get(
        "/health",
        health,
        Op::new("health", "operations", "The process runs")
            .public()
            .json("Health"),
    )
    .get(
        "/ready",
        ready,
        Op::new(
            "ready",
            "operations",
            "The node can serve: the database answers and the start's cache warming is done (503 otherwise)",
        )
        .public()
        .json("Ready")
        .errors(&[503])
        .error_schema("Ready"),
    )
    .get(
        "/metrics",
        metrics,
        Op::new(
            "metrics",
            "operations",
            "Prometheus text exposition of this node's metrics",
        )
        .public()
        .ok(200, "text/plain", ""),
    )
    .get(
        "/openapi.json",
        openapi,
        Op::new("openapi", "operations", "This document")
            .public()
            .ok(200, "application/json", ""),
    )
    .get(
        "/docs",
        docs,
        Op::new(
            "docs",
            "operations",
            "The API reference page (Swagger UI, served from the binary)",
        )
        .public()
        .ok(200, "text/html", ""),
    )
}

async fn health() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

async fn ready(State(app): State<Arc<App>>) -> impl IntoResponse {
    let db_ok = app.db(|db| db.ping()).await.is_ok();
    // "cache" is the shared (Redis) level: the in-process one is always there. Without Redis
    // the node still serves (ready), but a deployment that configured it is degraded.
    let redis = match app.redis() {
        None => "disabled",
        Some(r) if r.is_up() || r.probe().await.is_some() => "ok",
        Some(_) => "down",
    };
    let cache = if redis == "down" { "down" } else { "ok" };
    let warming = app.warming.load(std::sync::atomic::Ordering::Acquire);
    let status = if warming {
        "warming"
    } else if db_ok && cache == "ok" {
        "ready"
    } else {
        "degraded"
    };
    let body = json!({
        "status": status,
        "checks": {"database": if db_ok { "ok" } else { "down" }, "cache": cache, "redis": redis},
    });
    (
        if db_ok && !warming {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        Json(body),
    )
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    // Job counts come from the database; without it the rest is still reported.
    let jobs = app
        .db(|db| db.job_counts())
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|(kind, status, n)| (format!("kind=\"{kind}\",status=\"{status}\""), n))
        .collect::<Vec<_>>();
    let body = super::metrics::render(&app, &jobs);
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], body).into_response()
}

async fn openapi() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        super::rendered_openapi().clone(),
    )
        .into_response()
}

const DOCS_HTML: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>vcci API reference</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/init.js"></script>
</body>
</html>
"#;

const DOCS_INIT: &str = r##"window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  persistAuthorization: false
});
"##;

async fn docs() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        DOCS_HTML,
    )
        .into_response()
}

/// The docs page's assets: Swagger UI vendored from npm (`swagger-ui-dist` 5.32.0, Apache-2.0,
/// licence and notice beside the files), embedded in the binary.
pub fn assets() -> Router<Arc<App>> {
    fn asset(body: &'static [u8], ty: &'static str) -> Response {
        (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(ty)),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=86400"),
                ),
            ],
            body,
        )
            .into_response()
    }
    Router::new()
        .route(
            "/docs/assets/swagger-ui.css",
            get(|| async {
                asset(
                    include_bytes!("../../assets/swagger-ui/swagger-ui.css"),
                    "text/css; charset=utf-8",
                )
            }),
        )
        .route(
            "/docs/assets/swagger-ui-bundle.js",
            get(|| async {
                asset(
                    include_bytes!("../../assets/swagger-ui/swagger-ui-bundle.js"),
                    "text/javascript; charset=utf-8",
                )
            }),
        )
        .route(
            "/docs/assets/init.js",
            get(|| async { asset(DOCS_INIT.as_bytes(), "text/javascript; charset=utf-8") }),
        )
        .route(
            "/docs/assets/LICENSE",
            get(|| async {
                asset(
                    include_bytes!("../../assets/swagger-ui/LICENSE"),
                    "text/plain; charset=utf-8",
                )
            }),
        )
}
