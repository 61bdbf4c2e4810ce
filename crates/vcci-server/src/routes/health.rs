//! `/health` (the process runs) and `/ready` (the database answers). No auth.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::App;

pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
}

async fn health() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

async fn ready(State(app): State<Arc<App>>) -> impl IntoResponse {
    let db_ok = app.db(|db| db.ping()).await.is_ok();
    let body = json!({
        "status": if db_ok { "ready" } else { "degraded" },
        "checks": {"database": if db_ok { "ok" } else { "down" }, "cache": "disabled"},
    });
    (
        if db_ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        Json(body),
    )
}
