//! `GET /api/v1/emissions/summary?date_from=&date_to=&supplier_id=` from the read models.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use vcci_core::Date;
use vcci_store::model::reports::DateRange;

use crate::conditional::CacheCtx;
use crate::list::{Query, date_range};
use crate::openapi::{Api, Op};
use crate::{ApiError, App, Caller};

pub fn api(api: Api) -> Api {
    api.get(
        "/api/v1/emissions/summary",
        summary,
        Op::new("summary", "emissions", "Totals: overall, by category (with the categories without data), by method and by data quality")
            .query("date_from", "date", "First day (inclusive).")
            .query("date_to", "date", "Last day (inclusive).")
            .query("supplier_id", "string", "Only this supplier's lines.")
            .json("Summary")
            .errors(&[400]),
    )
    .get(
        "/api/v1/emissions/by-month",
        by_month,
        Op::new("byMonth", "emissions", "Totals per month, split by category")
            .query("year", "integer", "Only this year's months.")
            .json("ByMonth")
            .errors(&[400]),
    )
    .get(
        "/api/v1/emissions/by-supplier",
        by_supplier,
        Op::new("bySupplier", "emissions", "Suppliers ranked by emissions (co2e_kg desc, then supplier_id)")
            .query("date_from", "date", "First day (inclusive).")
            .query("date_to", "date", "Last day (inclusive).")
            .paged()
            .json("SupplierTotalPage")
            .errors(&[400]),
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SummaryQuery {
    date_from: Option<String>,
    date_to: Option<String>,
    supplier_id: Option<String>,
}

async fn summary(
    State(app): State<Arc<App>>,
    caller: Caller,
    ctx: CacheCtx,
    Query(q): Query<SummaryQuery>,
) -> Response {
    let org = caller.org_id();
    app.cached(org, ctx, async {
        let range = date_range(q.date_from.as_deref(), q.date_to.as_deref())?;
        let supplier = q.supplier_id.filter(|s| !s.is_empty());
        app.db(move |db| db.summary(org, range, supplier.as_deref()))
            .await
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MonthQuery {
    year: Option<String>,
}

async fn by_month(
    State(app): State<Arc<App>>,
    caller: Caller,
    ctx: CacheCtx,
    Query(q): Query<MonthQuery>,
) -> Response {
    app.cached(caller.org_id(), ctx, month_totals(&app, &caller, q))
        .await
}

async fn month_totals(
    app: &App,
    caller: &Caller,
    q: MonthQuery,
) -> Result<serde_json::Value, ApiError> {
    let range = match q.year.as_deref().filter(|s| !s.is_empty()) {
        None => DateRange::default(),
        Some(y) => {
            let year: u16 = y
                .parse()
                .ok()
                .filter(|y| (1000..=9999).contains(y))
                .ok_or_else(|| crate::list::param_error("year", format!("'{y}' is not a year")))?;
            DateRange {
                from: Date::new(year, 1, 1),
                to: Date::new(year, 12, 31),
            }
        }
    };
    let org = caller.org_id();
    let months = app.db(move |db| db.by_month(org, range)).await?;
    Ok(serde_json::json!({ "data": months }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SupplierRankQuery {
    date_from: Option<String>,
    date_to: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

const RANK_CURSOR: &str = "by-supplier";

async fn by_supplier(
    State(app): State<Arc<App>>,
    caller: Caller,
    ctx: CacheCtx,
    Query(q): Query<SupplierRankQuery>,
) -> Response {
    app.cached(caller.org_id(), ctx, supplier_ranking(&app, &caller, q))
        .await
}

async fn supplier_ranking(
    app: &App,
    caller: &Caller,
    q: SupplierRankQuery,
) -> Result<crate::list::Page<vcci_store::model::reports::SupplierTotal>, ApiError> {
    let limit = crate::list::limit(q.limit.as_deref())?;
    let range = date_range(q.date_from.as_deref(), q.date_to.as_deref())?;
    let org = caller.org_id();
    let after =
        match crate::list::cursor_parts(app.cursors(), q.cursor.as_deref(), RANK_CURSOR, org.0, 2)?
        {
            Some(p) => {
                let mg: i64 = crate::list::cursor_number(&p[0])?;
                Some((mg, p[1].clone()))
            }
            None => None,
        };
    let ranked = app
        .db(move |db| db.by_supplier(org, range, usize::MAX))
        .await?;
    let key = |s: &vcci_store::model::reports::SupplierTotal| {
        (
            vcci_store::codec::kg_to_mg(s.co2e_kg),
            s.supplier_id.clone().unwrap_or_default(),
        )
    };
    // Ranked by co2e desc, then supplier_id asc: the rows after the cursor's row.
    let rest: Vec<_> = ranked
        .into_iter()
        .filter(|s| match &after {
            None => true,
            Some((mg, id)) => {
                let (m, i) = key(s);
                m < *mg || (m == *mg && i > *id)
            }
        })
        .take(limit + 1)
        .collect();
    let page = crate::list::paged(
        rest,
        limit,
        |s| {
            let (m, i) = key(s);
            app.cursors()
                .sign(RANK_CURSOR, org.0, &[&m.to_string(), &i])
        },
        Ok,
    )?;
    Ok(page)
}
