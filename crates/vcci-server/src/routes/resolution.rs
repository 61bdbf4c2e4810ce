//! Supplier resolution (issue 19): the pairs of suppliers that may be one (found when a new
//! name or id is close to an existing supplier's), merging one supplier into another and
//! undoing it, and the aliases that link names to suppliers. How lines are linked:
//! `vcci_store::resolve`; what a merge moves: `vcci_store::write::merge`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use vcci_store::model::keys::Role;

use crate::extract::JsonBody;
use crate::list::{Query, param_error, text_param};
use crate::openapi::{Api, Op};
use crate::{ApiError, App, Caller};

/// Rows listed at most.
const MAX_LISTED: usize = 500;

pub fn api(api: Api) -> Api {
    api.get(
        "/api/v1/supplier-matches",
        list_matches,
        Op::new("listSupplierMatches", "suppliers", "Pairs of suppliers that may be one, best score first: a new supplier (from a name or id the organization had not seen) whose name is close to an existing supplier's (Jaro-Winkler 0.85 to 0.95 on normalized names; an id is never linked by name alone)")
            .query("status", "string", "open (default), merged, dismissed or all.")
            .query("q", "string", "Only pairs of suppliers whose id or name contains this (case-insensitive).")
            .query("limit", "integer", "At most this many (1–500, default 100).")
            .json("SupplierMatches")
            .errors(&[400]),
    )
    .post(
        "/api/v1/supplier-matches/{id}/merge",
        merge_match,
        Op::new("mergeSupplierMatch", "suppliers", "The pair is one supplier: merge the newer into the existing one (as POST /api/v1/supplier-merges)")
            .role("analyst")
            .path_param_of("id", "integer", "The pair's id.")
            .json("SupplierMerge")
            .errors(&[400, 403, 404, 409]),
    )
    .post(
        "/api/v1/supplier-matches/{id}/dismiss",
        dismiss_match,
        Op::new("dismissSupplierMatch", "suppliers", "The pair is two suppliers: it is no longer proposed")
            .role("analyst")
            .path_param_of("id", "integer", "The pair's id.")
            .ok(204, "", "")
            .errors(&[400, 403, 404]),
    )
    .get(
        "/api/v1/supplier-merges",
        list_merges,
        Op::new("listSupplierMerges", "suppliers", "The organization's merges, newest first (500 at most)")
            .json("SupplierMerges"),
    )
    .post(
        "/api/v1/supplier-merges",
        merge,
        Op::new("mergeSuppliers", "suppliers", "Merge supplier `from` into `into`, in one transaction with its audit entry: from's lines belong to into and are calculated again with its profile (read models follow); from's intensity years into lacks, its country and NAICS code where into has none, its footprints, connections and aliases follow; from's id and name become aliases of into. Refused (409) if it would change a closed year")
            .role("analyst")
            .json_body("SupplierMergeInput")
            .json("SupplierMerge")
            .errors(&[400, 403, 404, 409]),
    )
    .post(
        "/api/v1/supplier-merges/{id}/undo",
        undo_merge,
        Op::new("undoSupplierMerge", "suppliers", "Undo a merge exactly: the merged supplier, its data and its lines (and later lines that name it) come back, calculated again. The last merge of a chain is undone first (409 otherwise)")
            .role("analyst")
            .path_param_of("id", "integer", "The merge's id.")
            .json("SupplierUnmerge")
            .errors(&[400, 403, 404, 409]),
    )
    .get(
        "/api/v1/supplier-aliases",
        list_aliases,
        Op::new("listSupplierAliases", "suppliers", "Names (normalized) and merged ids that link to a supplier, by supplier (500 at most)")
            .query("supplier_id", "string", "Only this supplier's aliases.")
            .json("SupplierAliases")
            .errors(&[400]),
    )
}

fn id_of(s: &str, what: &str) -> Result<i64, ApiError> {
    s.parse().map_err(|_| {
        ApiError::bad_request(
            "invalid_id",
            format!("'{s}' is not a {what} id (an integer)"),
        )
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MatchesQuery {
    status: Option<String>,
    q: Option<String>,
    limit: Option<String>,
}

async fn list_matches(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(q): Query<MatchesQuery>,
) -> Result<Json<Value>, ApiError> {
    let status = match q.status.as_deref().unwrap_or("open") {
        "all" => None,
        s @ ("open" | "merged" | "dismissed") => Some(s.to_owned()),
        s => {
            return Err(param_error(
                "status",
                format!("'{s}' is not open, merged, dismissed or all"),
            ));
        }
    };
    let limit = match q.limit.as_deref() {
        None | Some("") => 100,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LISTED).contains(n))
            .ok_or_else(|| {
                param_error(
                    "limit",
                    format!("'{l}' is not a number from 1 to {MAX_LISTED}"),
                )
            })?,
    };
    let q = text_param("q", q.q)?;
    let org = caller.org_id();
    let m = app
        .db(move |db| db.supplier_matches(org, status.as_deref(), q.as_deref(), limit))
        .await?;
    Ok(Json(json!({ "matches": m })))
}

async fn merge_match(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Analyst)?;
    let id = id_of(&id, "pair")?;
    let org = caller.org.clone();
    let by = caller.actor();
    let r = app
        .db_write(org.id, move |db| {
            let Some((from, into, status)) = db.supplier_match(org.id, id)? else {
                return Err(vcci_store::StoreError::NotFound(format!(
                    "supplier pair {id}"
                )));
            };
            if status != "open" {
                return Err(vcci_store::StoreError::Conflict {
                    message: format!("supplier pair {id} is {status}"),
                    sqlstate: None,
                });
            }
            db.merge_suppliers(vcci_core::catalog(), &org, &from, &into, &by)
        })
        .await?;
    Ok(Json(json!(r)))
}

async fn dismiss_match(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Role::Analyst)?;
    let id = id_of(&id, "pair")?;
    let org = caller.org_id();
    let by = caller.actor();
    if app
        .db_write(org, move |db| db.dismiss_supplier_match(org, id, &by))
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("open supplier pair {id}")))
    }
}

async fn list_merges(State(app): State<Arc<App>>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let org = caller.org_id();
    let m = app
        .db(move |db| db.supplier_merges(org, MAX_LISTED))
        .await?;
    Ok(Json(json!({ "merges": m })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MergeBody {
    from: String,
    into: String,
}

async fn merge(
    State(app): State<Arc<App>>,
    caller: Caller,
    JsonBody(body): JsonBody<MergeBody>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Analyst)?;
    for (field, v) in [("from", &body.from), ("into", &body.into)] {
        if v.is_empty() || v.len() > vcci_core::line::MAX_NAME {
            return Err(ApiError::bad_request(
                "invalid",
                format!(
                    "{field}: a supplier id of 1 to {} bytes",
                    vcci_core::line::MAX_NAME
                ),
            )
            .with_details(vec![json!({"path": field, "message": "a supplier id"})]));
        }
    }
    let org = caller.org.clone();
    let by = caller.actor();
    let r = app
        .db_write(org.id, move |db| {
            db.merge_suppliers(vcci_core::catalog(), &org, &body.from, &body.into, &by)
        })
        .await?;
    Ok(Json(json!(r)))
}

async fn undo_merge(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Analyst)?;
    let id = id_of(&id, "merge")?;
    let org = caller.org.clone();
    let by = caller.actor();
    let r = app
        .db_write(org.id, move |db| {
            db.unmerge_suppliers(vcci_core::catalog(), &org, id, &by)
        })
        .await?;
    Ok(Json(json!(r)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AliasesQuery {
    supplier_id: Option<String>,
}

async fn list_aliases(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(q): Query<AliasesQuery>,
) -> Result<Json<Value>, ApiError> {
    let supplier = text_param("supplier_id", q.supplier_id)?;
    let org = caller.org_id();
    let a = app
        .db(move |db| db.supplier_aliases(org, supplier.as_deref(), MAX_LISTED))
        .await?;
    Ok(Json(json!({ "aliases": a })))
}
