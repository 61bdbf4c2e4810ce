//! One line with its emission: `GET` and `DELETE /api/v1/transactions/{transaction_id}`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use vcci_store::keys::Role;
use vcci_store::lines::StoredLine;

use crate::{ApiError, App, Caller};

pub fn router() -> Router<Arc<App>> {
    Router::new().route(
        "/api/v1/transactions/{transaction_id}",
        get(get_line).delete(delete_line),
    )
}

async fn get_line(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<StoredLine>, ApiError> {
    let org = caller.org_id();
    let shown = id.clone();
    app.db(move |db| db.get_line(org, &id))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("transaction '{shown}'")))
}

async fn delete_line(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Role::Analyst)?;
    let org = caller.org_id();
    let shown = id.clone();
    if app.db(move |db| db.delete_line(org, &id)).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("transaction '{shown}'")))
    }
}
