//! The audit log: an organization's changes, newest first, with filters and cursor
//! pagination, and the check of its hash chain. Read by any role of the organization (an
//! auditor's key is a viewer's); never cached, as every change appends to it.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use vcci_store::model::audit::{AuditEntry, AuditFilter};

use crate::list::{self, Query, param_error};
use crate::openapi::{Api, Op};
use crate::{ApiError, App, Caller};

const CURSOR_KIND: &str = "audit";

pub fn api(api: Api) -> Api {
    api.get(
        "/api/v1/audit",
        list_audit,
        Op::new("listAudit", "audit", "The organization's audit log, newest first: every change with who (key id and role), when, what, the request id, the lines' digests and the entry's hash in the chain")
            .query("action", "string", "An action (`import`, `lines.written`, `line.deleted`, `suppliers.upserted`, `settings.changed`, `period.closed`, `key.created`, ...), or a family with a trailing dot (`period.`).")
            .query("subject", "string", "What the change was made to (a transaction id, a year, an import id, a supplier id).")
            .query("key_id", "integer", "Only changes made with this API key.")
            .query("since", "string", "From this time (RFC 3339, or a date: from its start).")
            .query("until", "string", "Up to this time (RFC 3339, or a date: to its end).")
            .query("line", "string", "Only changes that wrote this line (by transaction_id): its history.")
            .paged()
            .json("AuditPage")
            .errors(&[400]),
    )
    .get(
        "/api/v1/audit/verify",
        verify_audit,
        Op::new("verifyAudit", "audit", "Checks the organization's audit chain from its first entry: each entry's hash, its link to the one before, its lines' digests, and the head; names the first broken entry")
            .json("AuditVerification"),
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    action: Option<String>,
    subject: Option<String>,
    key_id: Option<String>,
    since: Option<String>,
    until: Option<String>,
    line: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// A time bound: a date (`2026-12-05`) or an RFC 3339 time from it (`2026-12-05T10:00:00Z`).
fn time_bound(name: &str, v: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(v) = v.filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let date_ok =
        v.len() >= 10 && v.is_char_boundary(10) && vcci_core::Date::parse(&v[..10]).is_ok();
    let rest_ok = v.len() <= 35
        && v[10.min(v.len())..]
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'T' | b':' | b'Z' | b'.' | b'+' | b'-'));
    if date_ok && rest_ok {
        Ok(Some(v))
    } else {
        Err(param_error(
            name,
            format!("'{v}' is not a date (YYYY-MM-DD) or an RFC 3339 time"),
        ))
    }
}

async fn list_audit(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
) -> Result<Json<list::Page<AuditEntry>>, ApiError> {
    let limit = list::limit(q.limit.as_deref())?;
    let org = caller.org_id();
    let before = list::cursor_parts(app.cursors(), q.cursor.as_deref(), CURSOR_KIND, org.0, 1)?
        .map(|p| list::cursor_number::<i64>(&p[0]))
        .transpose()?;
    let key_id = match q.key_id.filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(
            s.parse::<i64>()
                .map_err(|_| param_error("key_id", format!("'{s}' is not an integer")))?,
        ),
    };
    let filter = AuditFilter {
        action: list::text_param("action", q.action)?,
        subject: list::text_param("subject", q.subject)?,
        key_id,
        since: time_bound("since", q.since)?,
        until: time_bound("until", q.until)?,
        line: list::text_param("line", q.line)?,
    };
    let rows = app
        .db(move |db| db.audit_entries(org, &filter, before, limit + 1))
        .await?;
    let page = list::paged(
        rows,
        limit,
        |e| {
            app.cursors()
                .sign(CURSOR_KIND, org.0, &[&e.seq.to_string()])
        },
        Ok,
    )?;
    Ok(Json(page))
}

async fn verify_audit(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let org = caller.org_id();
    let v = app.db(move |db| db.verify_audit(org)).await?;
    let mut out = json!(v);
    out["ok"] = json!(v.broken.is_none());
    Ok(Json(out))
}
