//! `GET /api/v1/exports/transactions.csv`: every line matching the list's filters, with its
//! emission and audit trail, streamed as CSV. Rows are read a page at a time (keyset, the
//! list's order) while earlier pages are sent, so memory stays bounded whatever the size.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use vcci_core::Category;
use vcci_store::model::csvout;
use vcci_store::model::lines::LineFilter;

use crate::list::date_param;
use crate::list::{Query, param_error};
use crate::openapi::{Api, Op};
use crate::{ApiError, App, Caller};

/// Lines read per database call.
const EXPORT_PAGE: usize = 2000;

pub fn api(api: Api) -> Api {
    api.get(
        "/api/v1/exports/transactions.csv",
        export,
        Op::new("exportTransactions", "transactions", "Every matching line with its emission and audit trail, streamed as CSV (the list's filters and order)")
            .query("supplier_id", "string", "Only this supplier's lines.")
            .query("category", "integer", "Only this Scope 3 category (1-15).")
            .query("date_from", "date", "First day (inclusive).")
            .query("date_to", "date", "Last day (inclusive).")
            .ok(200, "text/csv", "")
            .errors(&[400]),
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportQuery {
    supplier_id: Option<String>,
    category: Option<String>,
    date_from: Option<String>,
    date_to: Option<String>,
}

async fn export(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(q): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    let category = match q.category.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(c) => Some(
            Category::parse(c)
                .map_err(|m| param_error("category", m))?
                .number(),
        ),
    };
    let filter = Arc::new(LineFilter {
        supplier_id: q.supplier_id.filter(|s| !s.is_empty()),
        category,
        from: date_param("date_from", q.date_from.as_deref())?,
        to: date_param("date_to", q.date_to.as_deref())?,
    });
    let org = caller.org_id();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        if tx
            .send(Ok(Bytes::from(csvout::line_header())))
            .await
            .is_err()
        {
            return;
        }
        let mut after: Option<(u32, String)> = None;
        loop {
            let f = Arc::clone(&filter);
            let pos = after.clone();
            let rows = app
                .db(move |db| {
                    db.list_lines(
                        org,
                        &f,
                        pos.as_ref().map(|(d, id)| (*d, id.as_str())),
                        EXPORT_PAGE,
                    )
                })
                .await;
            let rows = match rows {
                Ok(r) => r,
                Err(e) => {
                    // The client sees a truncated download (the connection is cut).
                    let _ = tx.send(Err(std::io::Error::other(e.message))).await;
                    return;
                }
            };
            let n = rows.len();
            let mut out = String::with_capacity(n * 400);
            for (_, l) in &rows {
                csvout::write_line(&mut out, l);
            }
            after = rows.last().map(|(d, l)| (*d, l.transaction_id.clone()));
            if tx.send(Ok(Bytes::from(out))).await.is_err() {
                return; // the client went away
            }
            if n < EXPORT_PAGE {
                return;
            }
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut r = Body::from_stream(stream).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"transactions.csv\""),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(r)
}
