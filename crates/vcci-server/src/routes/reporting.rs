//! Year over year: the base year and significance threshold, intensity denominators,
//! comparisons of a year with the previous and the base year, reduction targets and their
//! progress against the linear path.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use vcci_store::model::keys::Role;
use vcci_store::model::reporting::{DEFAULT_THRESHOLD, Denominator, ReportingSettings};

use crate::conditional::CacheCtx;
use crate::extract::JsonBody;
use crate::list::Query;
use crate::openapi::{Api, Op};
use crate::{ApiError, App, Caller};

pub fn api(api: Api) -> Api {
    api.get(
        "/api/v1/reporting",
        get_settings,
        Op::new("getReporting", "reporting", "The base year and the significance threshold of recalculations")
            .json("ReportingSettings"),
    )
    .put(
        "/api/v1/reporting",
        put_settings,
        Op::new("setReporting", "reporting", "Set the base year (null clears it) and the significance threshold (a share; default 0.05)")
            .role("admin")
            .json_body("ReportingSettings")
            .json("ReportingSettings")
            .errors(&[400, 403]),
    )
    .get(
        "/api/v1/denominators",
        list_denominators,
        Op::new("listDenominators", "reporting", "Intensity denominators (revenue, headcount, …) by name and year")
            .json("Denominators"),
    )
    .put(
        "/api/v1/denominators/{name}/{year}",
        put_denominator,
        Op::new("setDenominator", "reporting", "Set one year's value of an intensity denominator")
            .role("analyst")
            .path_param("name", "The denominator's name (e.g. revenue), 1 to 64 bytes.")
            .path_param_of("year", "year", "The year (1990–2100).")
            .json_body("DenominatorValue")
            .json("Denominator")
            .errors(&[400, 403]),
    )
    .get(
        "/api/v1/emissions/compare",
        compare,
        Op::new("compareYears", "reporting", "A year against the previous year and the base year, by category and in total (closed years: their disclosed version)")
            .query_required("year", "year", "The year to compare (1990–2100).")
            .query("denominator", "string", "Also per unit of this denominator.")
            .json("Comparison")
            .errors(&[400, 404]),
    )
    .get(
        "/api/v1/targets",
        list_targets,
        Op::new("listTargets", "reporting", "Reduction targets with their progress against the linear path")
            .query("through", "year", "The last year to show (default: the target year).")
            .json("Targets")
            .errors(&[400]),
    )
    .post(
        "/api/v1/targets",
        add_target,
        Op::new("addTarget", "reporting", "Record a reduction target")
            .role("admin")
            .json_body("TargetInput")
            .json("Target")
            .errors(&[400, 403]),
    )
}

async fn get_settings(State(app): State<Arc<App>>, caller: Caller, ctx: CacheCtx) -> Response {
    let org = caller.org_id();
    app.cached(org, ctx, async {
        app.db(move |db| db.reporting_settings(org)).await
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsBody {
    base_year: Option<u16>,
    significance_threshold: Option<f64>,
}

async fn put_settings(
    State(app): State<Arc<App>>,
    caller: Caller,
    JsonBody(body): JsonBody<SettingsBody>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Admin)?;
    let org = caller.org_id();
    let s = ReportingSettings {
        base_year: body.base_year,
        significance_threshold: body.significance_threshold.unwrap_or(DEFAULT_THRESHOLD),
    };
    let by = caller.actor();
    let saved = app
        .db_write(org, move |db| {
            db.set_reporting_settings(org, &s, &by)?;
            db.reporting_settings(org)
        })
        .await?;
    Ok(Json(json!(saved)))
}

async fn list_denominators(State(app): State<Arc<App>>, caller: Caller, ctx: CacheCtx) -> Response {
    let org = caller.org_id();
    app.cached(org, ctx, async {
        let d = app.db(move |db| db.denominators(org)).await?;
        Ok(json!({ "denominators": d }))
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DenominatorBody {
    value: f64,
    #[serde(default)]
    unit: String,
}

async fn put_denominator(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path((name, year)): Path<(String, String)>,
    JsonBody(body): JsonBody<DenominatorBody>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Analyst)?;
    let year = super::periods::year(&year)?;
    let org = caller.org_id();
    let d = Denominator {
        name,
        year,
        value: body.value,
        unit: body.unit,
    };
    let shown = d.clone();
    let by = caller.actor();
    app.db_write(org, move |db| db.set_denominator(org, &d, &by))
        .await?;
    Ok(Json(json!(shown)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CompareQuery {
    year: Option<String>,
    denominator: Option<String>,
}

async fn compare(
    State(app): State<Arc<App>>,
    caller: Caller,
    ctx: CacheCtx,
    Query(q): Query<CompareQuery>,
) -> Response {
    let org = caller.org_id();
    app.cached(org, ctx, async {
        let year = super::periods::year(q.year.as_deref().unwrap_or(""))?;
        let d = q.denominator.filter(|d| !d.is_empty());
        app.db(move |db| db.compare_years(org, year, d.as_deref()))
            .await
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetsQuery {
    through: Option<String>,
}

async fn list_targets(
    State(app): State<Arc<App>>,
    caller: Caller,
    ctx: CacheCtx,
    Query(q): Query<TargetsQuery>,
) -> Response {
    let org = caller.org_id();
    app.cached(org, ctx, async {
        let through = match q.through.as_deref() {
            None | Some("") => 2100,
            Some(y) => super::periods::year(y)?,
        };
        let t = app.db(move |db| db.target_progress(org, through)).await?;
        Ok(json!({ "targets": t }))
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetBody {
    name: String,
    #[serde(default)]
    categories: Vec<u8>,
    base_year: u16,
    target_year: u16,
    reduction_pct: f64,
}

async fn add_target(
    State(app): State<Arc<App>>,
    caller: Caller,
    JsonBody(b): JsonBody<TargetBody>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Admin)?;
    if b.categories.len() > 15 {
        return Err(ApiError::bad_request(
            "too_many_categories",
            "at most the 15 Scope 3 categories",
        ));
    }
    let org = caller.org_id();
    let by = caller.actor();
    let t = app
        .db_write(org, move |db| {
            db.add_target(
                org,
                &vcci_store::model::reporting::TargetSpec {
                    name: &b.name,
                    categories: &b.categories,
                    base_year: b.base_year,
                    target_year: b.target_year,
                    reduction_pct: b.reduction_pct,
                },
                &by,
            )
        })
        .await?;
    Ok(Json(json!(t)))
}
