//! Emission factors: search (`GET /api/v1/factors`) and one factor
//! (`GET /api/v1/factors/{set}/{key}`; DESNZ keys contain '/').

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use vcci_core::factors::{FactorQuery, FactorView};

use crate::conditional::CacheCtx;
use crate::list::{self, Query, param_error};
use crate::openapi::{Api, Op};
use crate::{ApiError, App, Caller};

const CURSOR_KIND: &str = "factors";

pub fn api(api: Api) -> Api {
    api.get(
        "/api/v1/factors",
        search,
        Op::new("searchFactors", "factors", "Search the emission-factor sets (EPA USEEIO supply-chain factors, UK DESNZ conversion factors)")
            .query("set", "string", "Factor set: epa_useeio or desnz.")
            .query("q", "string", "Words of the key or name.")
            .query("region", "string", "Region code, e.g. US or GB.")
            .query("year", "integer", "The factors' year.")
            .query("unit", "string", "Unit the factor applies to, e.g. tonne.km.")
            .paged()
            .json("FactorPage")
            .errors(&[400]),
    )
    .get(
        "/api/v1/factors/{set}/{*key}",
        get_factor,
        Op::new("getFactor", "factors", "One factor (DESNZ keys contain '/')")
            .path_param("set", "Factor set.")
            .path_param("key", "Factor key.")
            .query("version", "string", "A release of the set (default: the newest).")
            .json("Factor")
            .errors(&[404]),
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchQuery {
    set: Option<String>,
    q: Option<String>,
    region: Option<String>,
    year: Option<String>,
    unit: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

fn nonempty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty())
}

async fn search(
    State(app): State<Arc<App>>,
    caller: Caller,
    ctx: CacheCtx,
    Query(q): Query<SearchQuery>,
) -> Response {
    app.cached_static(caller.org_id(), ctx, search_page(&app, &caller, q))
        .await
}

async fn search_page(
    app: &App,
    caller: &Caller,
    q: SearchQuery,
) -> Result<list::Page<FactorView>, ApiError> {
    let limit = list::limit(q.limit.as_deref())?;
    let year = match nonempty(q.year) {
        None => None,
        Some(y) => Some(
            y.parse::<u16>()
                .map_err(|_| param_error("year", format!("'{y}' is not a year")))?,
        ),
    };
    if let Some(t) = &q.q
        && t.len() > 200
    {
        return Err(param_error("q", "is longer than 200 characters".into()));
    }
    let query = FactorQuery {
        text: nonempty(q.q),
        set: nonempty(q.set),
        region: nonempty(q.region),
        year,
        unit: nonempty(q.unit),
    };
    let org = caller.org_id();
    // The search order is stable (EPA 1.3.0, EPA 1.2, DESNZ; each by key), so a cursor is the
    // number of matches already returned.
    let skip: usize =
        match list::cursor_parts(app.cursors(), q.cursor.as_deref(), CURSOR_KIND, org.0, 1)? {
            Some(p) => list::cursor_number(&p[0])?,
            None => 0,
        };
    let found: Vec<(usize, FactorView)> = vcci_core::catalog()
        .search(&query)
        .enumerate()
        .skip(skip)
        .take(limit + 1)
        .collect();
    let page = list::paged(
        found,
        limit,
        |(i, _)| {
            app.cursors()
                .sign(CURSOR_KIND, org.0, &[&(i + 1).to_string()])
        },
        |(_, f)| Ok(f),
    )?;
    Ok(page)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
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
