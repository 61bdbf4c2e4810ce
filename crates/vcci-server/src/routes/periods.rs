//! Reporting periods: close a year (freezing it as an inventory version), reopen it with a
//! reason, list and show periods and their versions.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use vcci_store::model::keys::Role;
use vcci_store::write::{Correction, MAX_CORRECTIONS};

use crate::conditional::CacheCtx;
use crate::error::line_error_json;
use crate::extract::JsonBody;
use crate::openapi::{Api, Op};
use crate::{ApiError, App, Caller};

pub fn api(api: Api) -> Api {
    api.get(
        "/api/v1/periods",
        list_periods,
        Op::new("listPeriods", "periods", "Reporting periods (years closed at least once) with their status and inventory versions")
            .json("Periods"),
    )
    .get(
        "/api/v1/periods/{year}",
        get_period,
        Op::new("getPeriod", "periods", "One reporting period with its inventory versions")
            .path_param_of("year", "year", "The year (1990–2100).")
            .json("Period")
            .errors(&[400, 404]),
    )
    .post(
        "/api/v1/periods/{year}/close",
        close_period,
        Op::new("closePeriod", "periods", "Close a year: its results are frozen as the next inventory version, and writes that would change the year are refused (`period_closed`)")
            .role("admin")
            .path_param_of("year", "year", "The year (1990–2100).")
            .json("InventoryVersion")
            .errors(&[400, 403, 409]),
    )
    .post(
        "/api/v1/periods/{year}/reopen",
        reopen_period,
        Op::new("reopenPeriod", "periods", "Reopen a closed year, with a written reason; its versions stay readable")
            .role("admin")
            .path_param_of("year", "year", "The year (1990–2100).")
            .json_body("ReopenPeriod")
            .json("Period")
            .errors(&[400, 403, 404]),
    )
    .post(
        "/api/v1/restatements/preview",
        preview_restatement,
        Op::new("previewRestatement", "periods", "What new settings (an EPA release, a default currency, the RF choice), corrected supplier data or corrected lines would do to each closed year: disclosed against restated per category, lines affected, significance; changes nothing")
            .json_body("Restatement")
            .json("RestatementPreview")
            .errors(&[400]),
    )
    .post(
        "/api/v1/restatements",
        apply_restatement,
        Op::new("applyRestatement", "periods", "Apply new settings, corrected supplier data or corrected lines as a restatement with a reason: they are written (closed years too), the lines they change recalculated, and each closed year whose figures change gets a new inventory version (earlier versions stay readable)")
            .role("admin")
            .json_body("Restatement")
            .json("RestatementResult")
            .errors(&[400, 403]),
    )
    .get(
        "/api/v1/periods/{year}/versions/{version}",
        get_version,
        Op::new("getInventoryVersion", "periods", "One inventory version of a year: the inventory as it was when the version was made")
            .path_param_of("year", "year", "The year (1990–2100).")
            .path_param_of("version", "integer", "The version (1, 2, …).")
            .json("InventoryVersion")
            .errors(&[400, 404]),
    )
}

/// A year of 1990–2100.
pub(super) fn year(s: &str) -> Result<u16, ApiError> {
    match s.parse::<u16>() {
        Ok(y) if vcci_store::model::periods::YEARS.contains(&y) => Ok(y),
        _ => Err(ApiError::bad_request(
            "invalid_year",
            format!("'{s}' is not a year (1990–2100)"),
        )),
    }
}

async fn list_periods(State(app): State<Arc<App>>, caller: Caller, ctx: CacheCtx) -> Response {
    let org = caller.org_id();
    app.cached(org, ctx, async {
        let periods = app.db(move |db| db.list_periods(org)).await?;
        Ok(json!({ "periods": periods }))
    })
    .await
}

async fn get_period(
    State(app): State<Arc<App>>,
    caller: Caller,
    ctx: CacheCtx,
    Path(y): Path<String>,
) -> Response {
    let org = caller.org_id();
    app.cached(org, ctx, async {
        let y = year(&y)?;
        app.db(move |db| db.get_period(org, y))
            .await?
            .ok_or_else(|| ApiError::not_found(format!("a {y} reporting period")))
    })
    .await
}

async fn close_period(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(y): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Admin)?;
    let y = year(&y)?;
    let org = caller.org.clone();
    let by = caller.actor();
    let id = org.id;
    let (v, period) = app
        .db_write(id, move |db| {
            let v = db.close_period(&org, y, &by)?;
            Ok((v, db.get_period(org.id, y)?))
        })
        .await?;
    if let Some(p) = period {
        app.live_event(id, "period", json!(p));
    }
    Ok(Json(json!(v)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReopenBody {
    reason: String,
}

async fn reopen_period(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(y): Path<String>,
    JsonBody(body): JsonBody<ReopenBody>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Admin)?;
    let y = year(&y)?;
    let org = caller.org.clone();
    let by = caller.actor();
    let p = app
        .db_write(org.id, move |db| {
            db.reopen_period(&org, y, &body.reason, &by)?;
            db.get_period(org.id, y)
        })
        .await?
        .ok_or_else(|| ApiError::not_found(format!("a {y} reporting period")))?;
    app.live_event(caller.org_id(), "period", json!(p));
    Ok(Json(json!(p)))
}

async fn get_version(
    State(app): State<Arc<App>>,
    caller: Caller,
    ctx: CacheCtx,
    Path((y, v)): Path<(String, String)>,
) -> Response {
    let org = caller.org_id();
    app.cached(org, ctx, async {
        let y = year(&y)?;
        let v: u32 = v.parse().ok().filter(|v| *v >= 1).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_version",
                format!("'{v}' is not a version (1, 2, …)"),
            )
        })?;
        app.db(move |db| db.inventory_version(org, y, v))
            .await?
            .ok_or_else(|| ApiError::not_found(format!("version {v} of the {y} reporting period")))
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RestateBody {
    epa_version: Option<String>,
    default_currency: Option<String>,
    flights_radiative_forcing: Option<bool>,
    /// Corrected supplier data (as `POST /api/v1/suppliers` takes it).
    #[serde(default)]
    suppliers: Vec<Value>,
    /// Corrected lines (as `POST /api/v1/transactions` takes them).
    #[serde(default)]
    transactions: Vec<Value>,
    /// Applying only.
    reason: Option<String>,
}

/// Corrected data as JSON, `{"suppliers": [...], "transactions": [...]}` (the restatement
/// body's parts; `vcci calculate --corrections FILE` reads the same): an error naming each
/// invalid supplier and line by its JSON path.
pub fn corrections_from_json(v: Value) -> Result<Correction, ApiError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Parts {
        #[serde(default)]
        suppliers: Vec<Value>,
        #[serde(default)]
        transactions: Vec<Value>,
    }
    let p: Parts = serde_json::from_value(v)
        .map_err(|e| ApiError::bad_request("invalid_body", format!("corrections: {e}")))?;
    correction_of(&RestateBody {
        epa_version: None,
        default_currency: None,
        flights_radiative_forcing: None,
        suppliers: p.suppliers,
        transactions: p.transactions,
        reason: None,
    })
}

/// The corrected data of `b`: a 400 naming each invalid supplier and line (JSON path), or a
/// body over the limits.
fn correction_of(b: &RestateBody) -> Result<Correction, ApiError> {
    if b.suppliers.len() > MAX_CORRECTIONS || b.transactions.len() > MAX_CORRECTIONS {
        return Err(ApiError::bad_request(
            "too_many_corrections",
            format!("at most {MAX_CORRECTIONS} suppliers and {MAX_CORRECTIONS} transactions"),
        ));
    }
    let mut c = Correction::default();
    let mut details = Vec::new();
    for (i, v) in b.suppliers.iter().enumerate() {
        match super::suppliers::parse_supplier(v) {
            Ok(s) => c.suppliers.push(s),
            Err(e) => details.push(
                json!({"index": i, "error": line_error_json(&format!("suppliers[{i}]"), &e)}),
            ),
        }
    }
    for (i, v) in b.transactions.iter().enumerate() {
        match crate::input::parse_line(v, true) {
            Ok(l) => c.lines.push(l),
            Err(e) => details.push(
                json!({"index": i, "error": line_error_json(&format!("transactions[{i}]"), &e)}),
            ),
        }
    }
    if details.is_empty() {
        Ok(c)
    } else {
        Err(ApiError::bad_request(
            "invalid_corrections",
            format!("{} corrected suppliers or lines are invalid", details.len()),
        )
        .with_details(details))
    }
}

/// The organization's current settings, and those `b` asks for.
fn settings_of(
    db: &vcci_store::Db,
    org: vcci_store::OrgId,
    b: &RestateBody,
) -> Result<(vcci_store::Org, vcci_store::Org), vcci_store::StoreError> {
    let before = db
        .org_by_id(org)?
        .ok_or_else(|| vcci_store::StoreError::NotFound("the organization".into()))?;
    let mut after = before.clone();
    if let Some(v) = &b.epa_version {
        after.epa_version = vcci_core::EpaVersion::parse(v)
            .map_err(|m| vcci_store::StoreError::invalid("epa_version", m))?;
    }
    if let Some(c) = &b.default_currency {
        after.default_currency = vcci_core::Currency::parse(c)
            .map_err(|m| vcci_store::StoreError::invalid("default_currency", m))?;
    }
    if let Some(rf) = b.flights_radiative_forcing {
        after.flights_with_rf = rf;
    }
    Ok((before, after))
}

async fn preview_restatement(
    State(app): State<Arc<App>>,
    caller: Caller,
    JsonBody(body): JsonBody<RestateBody>,
) -> Result<Json<Value>, ApiError> {
    if body.reason.is_some() {
        return Err(ApiError::bad_request(
            "invalid_body",
            "a preview takes no reason (it changes nothing)",
        ));
    }
    let org = caller.org_id();
    let c = correction_of(&body)?;
    let p = app
        .db(move |db| {
            let (before, after) = settings_of(db, org, &body)?;
            db.restatement_preview(vcci_core::catalog(), &before, &after, &c)
        })
        .await?;
    Ok(Json(json!(p)))
}

async fn apply_restatement(
    State(app): State<Arc<App>>,
    caller: Caller,
    JsonBody(body): JsonBody<RestateBody>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Admin)?;
    let org = caller.org_id();
    let by = caller.actor();
    let c = correction_of(&body)?;
    let (cause, made) = app
        .db_write(org, move |db| {
            let (before, after) = settings_of(db, org, &body)?;
            let reason = body.reason.clone().unwrap_or_default();
            let made =
                db.apply_restatement(vcci_core::catalog(), &before, &after, &c, &reason, &by)?;
            Ok((
                vcci_store::write::restatement_cause(&before, &after, &c),
                made,
            ))
        })
        .await?;
    // The organization's settings changed: this node's verified keys carry the old ones
    // (other nodes drop theirs on their next poll of the settings).
    app.clear_keys();
    let versions: Vec<Value> = made
        .iter()
        .map(|(y, v)| json!({"year": y, "version": v}))
        .collect();
    // Each restated year has a new version: its period changed.
    for (y, _) in &made {
        let y = *y;
        if let Ok(Some(p)) = app.db(move |db| db.get_period(org, y)).await {
            app.live_event(org, "period", json!(p));
        }
    }
    Ok(Json(json!({"cause": cause, "versions": versions})))
}
