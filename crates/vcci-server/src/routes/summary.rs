//! `GET /api/v1/emissions/summary?date_from=&date_to=&supplier_id=` from the read models.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use vcci_core::Date;
use vcci_store::reports::{DateRange, Summary};

use crate::{ApiError, App, Caller};

pub fn router() -> Router<Arc<App>> {
    Router::new().route("/api/v1/emissions/summary", get(summary))
}

#[derive(Debug, Deserialize)]
struct SummaryQuery {
    date_from: Option<String>,
    date_to: Option<String>,
    supplier_id: Option<String>,
}

/// Parses an optional `YYYY-MM-DD` query parameter, naming it in the error.
pub(crate) fn date_param(name: &str, v: Option<&str>) -> Result<Option<Date>, ApiError> {
    v.filter(|s| !s.is_empty())
        .map(|s| {
            Date::parse(s).map_err(|m| {
                ApiError::bad_request("invalid_parameter", format!("{name}: {m}"))
                    .with_details(vec![serde_json::json!({"parameter": name, "message": m})])
            })
        })
        .transpose()
}

async fn summary(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(q): Query<SummaryQuery>,
) -> Result<Json<Summary>, ApiError> {
    let range = DateRange {
        from: date_param("date_from", q.date_from.as_deref())?,
        to: date_param("date_to", q.date_to.as_deref())?,
    };
    let org = caller.org_id();
    let supplier = q.supplier_id.filter(|s| !s.is_empty());
    Ok(Json(
        app.db(move |db| db.summary(org, range, supplier.as_deref()))
            .await?,
    ))
}
