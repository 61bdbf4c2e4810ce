//! Transactions (spend and activity lines) with their emissions: batch upsert, keyset-paged
//! list, detail and delete.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;
use vcci_core::Category;
use vcci_store::model::keys::Role;
use vcci_store::model::lines::{LineFilter, StoredLine};

use crate::conditional::CacheCtx;
use crate::extract::JsonBody;
use crate::list::date_param;
use crate::list::{self, Query, param_error};
use crate::openapi::{Api, Op};
use crate::{ApiError, App, Caller};

pub const MAX_BATCH_LINES: usize = 10_000;

/// Fields of a line in responses, for `fields=`.
const FIELDS: &[&str] = &[
    "transaction_id",
    "date",
    "supplier_id",
    "supplier_name",
    "description",
    "amount",
    "currency",
    "naics_code",
    "category",
    "quantity",
    "unit",
    "activity_id",
    "country",
    "price_basis",
    "capex",
    "emission",
];

pub fn api(api: Api) -> Api {
    api.get(
        "/api/v1/transactions",
        list_lines,
        Op::new(
            "listTransactions",
            "transactions",
            "Lines with their emissions, newest first (date desc, then transaction_id desc)",
        )
        .query("supplier_id", "string", "Only this supplier's lines.")
        .query("category", "integer", "Only this Scope 3 category (1-15).")
        .query("date_from", "date", "First day (inclusive).")
        .query("date_to", "date", "Last day (inclusive).")
        .paged()
        .fields()
        .json("TransactionPage")
        .errors(&[400]),
    )
    .post(
        "/api/v1/transactions",
        upsert_lines,
        Op::new(
            "upsertTransactions",
            "transactions",
            "Upsert up to 10,000 lines by transaction_id; invalid lines are reported by index",
        )
        .role("analyst")
        .json_body("UpsertTransactions")
        .json("UpsertTransactionsResult")
        .errors(&[400, 403, 413]),
    )
    .get(
        "/api/v1/transactions/{transaction_id}",
        get_line,
        Op::new(
            "getTransaction",
            "transactions",
            "One line with its emission and audit trail",
        )
        .path_param("transaction_id", "The line's transaction_id.")
        .fields()
        .json("Transaction")
        .errors(&[400, 404]),
    )
    .delete(
        "/api/v1/transactions/{transaction_id}",
        delete_line,
        Op::new(
            "deleteTransaction",
            "transactions",
            "Delete one line (the totals follow)",
        )
        .role("analyst")
        .path_param("transaction_id", "The line's transaction_id.")
        .ok(204, "", "")
        .errors(&[403, 404, 409]),
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    supplier_id: Option<String>,
    category: Option<String>,
    date_from: Option<String>,
    date_to: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
    fields: Option<String>,
}

const CURSOR_KIND: &str = "transactions";

async fn list_lines(
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
) -> Result<list::Page<list::Item<StoredLine>>, ApiError> {
    let limit = list::limit(q.limit.as_deref())?;
    let fields = list::fields(q.fields.as_deref(), FIELDS)?;
    let category = match q.category.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(c) => Some(
            Category::parse(c)
                .map_err(|m| param_error("category", m))?
                .number(),
        ),
    };
    let filter = LineFilter {
        supplier_id: q.supplier_id.filter(|s| !s.is_empty()),
        category,
        from: date_param("date_from", q.date_from.as_deref())?,
        to: date_param("date_to", q.date_to.as_deref())?,
    };
    let org = caller.org_id();
    let after = match list::cursor_parts(app.cursors(), q.cursor.as_deref(), CURSOR_KIND, org.0, 2)?
    {
        None => None,
        Some(parts) => {
            let day: u32 = list::cursor_number(&parts[0])?;
            Some((day, parts[1].clone()))
        }
    };
    let rows = app
        .db(move |db| {
            db.list_lines(
                org,
                &filter,
                after.as_ref().map(|(d, id)| (*d, id.as_str())),
                limit + 1,
            )
        })
        .await?;
    let page = list::paged(
        rows,
        limit,
        |(day, line)| {
            app.cursors().sign(
                CURSOR_KIND,
                org.0,
                &[&day.to_string(), &line.transaction_id],
            )
        },
        |(_, line)| list::item(line, fields.as_deref()),
    )?;
    Ok(page)
}

async fn get_line(
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
        let line = app
            .db(move |db| db.get_line(org, &id))
            .await?
            .ok_or_else(|| ApiError::not_found(format!("transaction '{shown}'")))?;
        list::item(line, fields.as_deref())
    })
    .await
}

async fn delete_line(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Role::Analyst)?;
    let org = caller.org_id();
    let shown = id.clone();
    let by = caller.actor();
    if app
        .db_write(org, move |db| db.delete_line(org, &id, &by))
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("transaction '{shown}'")))
    }
}

#[derive(Debug, Deserialize)]
struct UpsertBody {
    transactions: Vec<Value>,
}

async fn upsert_lines(
    State(app): State<Arc<App>>,
    caller: Caller,
    JsonBody(body): JsonBody<UpsertBody>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Analyst)?;
    if body.transactions.len() > MAX_BATCH_LINES {
        return Err(ApiError::bad_request(
            "too_many_lines",
            format!(
                "at most {MAX_BATCH_LINES} transactions per request; got {}",
                body.transactions.len()
            ),
        ));
    }
    let rx = app
        .group_commit
        .push(caller.org.clone(), caller.actor(), body.transactions);
    // Group commit: whoever gets the write turn writes every request queued by then in one
    // transaction; requests already written by an earlier turn just collect their answer.
    // A task of its own, so that a client going away cannot stop it half-way.
    let a = Arc::clone(&app);
    let turn = tokio::spawn(async move {
        let _turn = a.writes.acquire().await.map_err(ApiError::internal)?;
        let batch = a.group_commit.take();
        if batch.is_empty() {
            return Ok(());
        }
        let (replies, generations) = a
            .db(move |db| Ok(crate::group_commit::write_group(db, batch)))
            .await?;
        // This node learns the new generations before anyone is answered, so a client's
        // next read sees its write.
        for (org, g) in generations {
            a.observe_write(org, g).await;
        }
        for (reply, result) in replies {
            let _ = reply.send(result);
        }
        Ok::<(), ApiError>(())
    });
    turn.await.map_err(ApiError::internal)??;
    rx.await.map_err(ApiError::internal)?.map(Json)
}
