//! Suppliers: batch upsert (recalculating lines whose supplier profile changed), list, detail.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use vcci_core::catalog;
use vcci_store::model::keys::Role;
use vcci_store::model::suppliers::{SUPPLIER_FIELDS, Supplier};

use crate::conditional::CacheCtx;
use crate::error::line_error_json;
use crate::extract::JsonBody;
use crate::list::{self, Query};
use crate::openapi::{Api, Op};
use crate::{ApiError, App, Caller};

pub const MAX_SUPPLIERS: usize = 10_000;
const CURSOR_KIND: &str = "suppliers";
/// The supplier fields, plus `emissions` on the detail route.
const FIELDS: &[&str] = &[
    SUPPLIER_FIELDS[0],
    SUPPLIER_FIELDS[1],
    SUPPLIER_FIELDS[2],
    SUPPLIER_FIELDS[3],
    SUPPLIER_FIELDS[4],
    SUPPLIER_FIELDS[5],
    SUPPLIER_FIELDS[6],
    SUPPLIER_FIELDS[7],
    SUPPLIER_FIELDS[8],
    "intensities",
    "emissions",
];

pub fn api(api: Api) -> Api {
    api.get(
        "/api/v1/suppliers",
        list_suppliers,
        Op::new("listSuppliers", "suppliers", "Suppliers by supplier_id")
            .query("country", "string", "Only suppliers of this country code.")
            .query("q", "string", "Text contained in the id or name (case-insensitive).")
            .paged()
            .fields()
            .json("SupplierPage")
            .errors(&[400]),
    )
    .post(
        "/api/v1/suppliers",
        upsert_suppliers,
        Op::new("upsertSuppliers", "suppliers", "Upsert up to 10,000 suppliers by supplier_id (all or nothing); lines of suppliers whose intensity or NAICS changed are recalculated")
            .role("analyst")
            .json_body("UpsertSuppliers")
            .json("UpsertSuppliersResult")
            .errors(&[400, 403, 413]),
    )
    .get(
        "/api/v1/suppliers/{supplier_id}",
        get_supplier,
        Op::new("getSupplier", "suppliers", "One supplier with its emissions")
            .path_param("supplier_id", "The supplier's id.")
            .fields()
            .json("SupplierDetail")
            .errors(&[400, 404]),
    )
    .get(
        "/api/v1/suppliers/{supplier_id}/intensities",
        list_intensities,
        Op::new("listSupplierIntensities", "suppliers", "A supplier's intensity history, one value per year")
            .path_param("supplier_id", "The supplier's id.")
            .json("SupplierIntensities")
            .errors(&[404]),
    )
    .delete(
        "/api/v1/suppliers/{supplier_id}/intensities/{year}",
        remove_intensity,
        Op::new("removeSupplierIntensity", "suppliers", "Remove one year's value of a supplier's intensity (`undated` for the value given without a year); the supplier's lines are recalculated")
            .role("analyst")
            .path_param("supplier_id", "The supplier's id.")
            .path_param_of("year", "year_or_undated", "The year (1990–2100), or `undated`.")
            .json("RemovedIntensity")
            .errors(&[400, 403, 404, 409]),
    )
}

async fn list_intensities(
    State(app): State<Arc<App>>,
    caller: Caller,
    ctx: CacheCtx,
    Path(id): Path<String>,
) -> Response {
    let org = caller.org_id();
    app.cached(org, ctx, async {
        let shown = id.clone();
        let h = app
            .db(move |db| db.supplier_intensities(org, &id))
            .await?
            .ok_or_else(|| ApiError::not_found(format!("supplier '{shown}'")))?;
        Ok(json!({"supplier_id": shown, "intensities": h}))
    })
    .await
}

/// `undated` or a year of 1990–2100.
fn intensity_year(s: &str) -> Result<Option<u16>, ApiError> {
    vcci_store::model::suppliers::parse_intensity_year(s)
        .map_err(|m| ApiError::bad_request("invalid_year", m))
}

async fn remove_intensity(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path((id, year)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Analyst)?;
    let year = intensity_year(&year)?;
    let org = caller.org.clone();
    let shown = id.clone();
    let by = caller.actor();
    let n = app
        .db_write(org.id, move |db| {
            db.remove_supplier_intensity(catalog(), &org, &id, year, &by)
        })
        .await?;
    match n {
        Some(n) => Ok(Json(
            json!({"supplier_id": shown, "year": year, "recalculated_lines": n}),
        )),
        None => Err(ApiError::not_found(format!(
            "an intensity of supplier '{shown}' for {}",
            year.map_or("no year (undated)".to_owned(), |y| y.to_string())
        ))),
    }
}

#[derive(Debug, Deserialize)]
struct UpsertBody {
    suppliers: Vec<Value>,
}

pub(crate) fn parse_supplier(v: &Value) -> Result<Supplier, Vec<vcci_core::LineError>> {
    let obj = v.as_object().ok_or_else(|| {
        vec![vcci_core::LineError {
            field: "",
            code: "invalid_supplier",
            message: "a supplier must be a JSON object".into(),
        }]
    })?;
    let mut owned: [Option<String>; 9] = Default::default();
    for (i, name) in SUPPLIER_FIELDS.iter().enumerate() {
        owned[i] = match obj.get(*name) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(Value::Bool(b)) if *name == "intensity_verified" => Some(b.to_string()),
            _ => None,
        };
    }
    let mut values: [Option<&str>; 9] = [None; 9];
    for (slot, s) in values.iter_mut().zip(&owned) {
        *slot = s.as_deref();
    }
    Supplier::parse(&values)
}

async fn upsert_suppliers(
    State(app): State<Arc<App>>,
    caller: Caller,
    JsonBody(body): JsonBody<UpsertBody>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Analyst)?;
    if body.suppliers.len() > MAX_SUPPLIERS {
        return Err(ApiError::bad_request(
            "too_many_suppliers",
            format!(
                "at most {MAX_SUPPLIERS} suppliers per request; got {}",
                body.suppliers.len()
            ),
        ));
    }
    let mut ok = Vec::new();
    let mut details = Vec::new();
    for (i, v) in body.suppliers.iter().enumerate() {
        match parse_supplier(v) {
            Ok(s) => ok.push(s),
            Err(errs) => details.push(
                json!({"index": i, "error": line_error_json(&format!("suppliers[{i}]"), &errs)}),
            ),
        }
    }
    if !details.is_empty() {
        // A supplier batch is all or nothing: its intensities change stored results.
        return Err(ApiError::bad_request(
            "invalid_suppliers",
            format!(
                "{} suppliers are invalid; nothing was stored",
                details.len()
            ),
        )
        .with_details(details));
    }
    let org = caller.org.clone();
    let by = caller.actor();
    let done = app
        .db_write(org.id, move |db| {
            db.upsert_suppliers(catalog(), &org, &ok, &by)
        })
        .await?;
    // Suppliers whose change would alter a closed period: refused, the rest kept.
    let rejected: Vec<Value> = done
        .refused
        .iter()
        .map(|r| {
            json!({"index": r.index, "supplier_id": r.supplier_id, "error": {
                "code": "period_closed", "message": r.message(),
                "details": [{"path": format!("suppliers[{}]", r.index), "message": r.message()}],
            }})
        })
        .collect();
    Ok(Json(json!({
        "upserted": done.upserted,
        "recalculated_lines": done.recalculated,
        "rejected": rejected,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    country: Option<String>,
    q: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
    fields: Option<String>,
}

async fn list_suppliers(
    State(app): State<Arc<App>>,
    caller: Caller,
    ctx: CacheCtx,
    Query(q): Query<ListQuery>,
) -> Response {
    app.cached(caller.org_id(), ctx, list_page(&app, &caller, q))
        .await
}

async fn list_page(
    app: &App,
    caller: &Caller,
    q: ListQuery,
) -> Result<list::Page<list::Item<Supplier>>, ApiError> {
    let limit = list::limit(q.limit.as_deref())?;
    let fields = list::fields(q.fields.as_deref(), FIELDS)?;
    let org = caller.org_id();
    let after = list::cursor_parts(app.cursors(), q.cursor.as_deref(), CURSOR_KIND, org.0, 1)?
        .map(|mut p| p.remove(0));
    let (country, text) = (
        q.country.filter(|s| !s.is_empty()),
        q.q.filter(|s| !s.is_empty()),
    );
    let rows = app
        .db(move |db| {
            db.list_suppliers(
                org,
                country.as_deref(),
                text.as_deref(),
                after.as_deref(),
                limit + 1,
            )
        })
        .await?;
    let page = list::paged(
        rows,
        limit,
        |s| app.cursors().sign(CURSOR_KIND, org.0, &[&s.supplier_id]),
        |s| list::item(s, fields.as_deref()),
    )?;
    Ok(page)
}

async fn get_supplier(
    State(app): State<Arc<App>>,
    caller: Caller,
    ctx: CacheCtx,
    Path(id): Path<String>,
    Query(q): Query<list::FieldsQuery>,
) -> Response {
    let org = caller.org_id();
    app.cached(org, ctx, async {
        let fields = list::fields(q.fields.as_deref(), FIELDS)?;
        let shown = id.clone();
        let s = app
            .db(move |db| db.get_supplier(org, &id))
            .await?
            .ok_or_else(|| ApiError::not_found(format!("supplier '{shown}'")))?;
        list::item(s, fields.as_deref())
    })
    .await
}
