//! `GET /api/v1/factors/{set}/{key}`: one shipped factor. Keys may contain '/' (DESNZ).

use std::sync::Arc;

use axum::extract::{Path, Query};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use vcci_core::factors::FactorView;

use crate::{ApiError, App, Caller};

pub fn router() -> Router<Arc<App>> {
    Router::new().route("/api/v1/factors/{set}/{*key}", get(get_factor))
}

#[derive(Debug, Deserialize)]
struct VersionQuery {
    version: Option<String>,
}

async fn get_factor(
    _caller: Caller,
    Path((set, key)): Path<(String, String)>,
    Query(q): Query<VersionQuery>,
) -> Result<Json<FactorView>, ApiError> {
    vcci_core::catalog()
        .get(&set, &key, q.version.as_deref())
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("factor '{key}' in set '{set}'")))
}
