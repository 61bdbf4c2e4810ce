//! Answering a customer's PACT request (a `RequestCreatedEvent` received at our
//! `/3/events`): the organization's published footprints matching its criteria (Active,
//! at most 100) are sent back in a `RequestFulfilledEvent`, or a `RequestRejectedEvent`
//! (NotFound) when none matches, to the requester's `/3/events` through the organization's
//! connection to the requester's host (the client's retries, backoff and breaker). Without
//! such a connection the request cannot be answered and says so. Also here: telling
//! customers' hosts of footprints we publish (`notify`).

use serde_json::{Value, json};
use vcci_store::StoreError;
use vcci_store::model::jobs::Job;

use super::Outcome;
use crate::App;
use crate::pact::Filters;
use crate::pact_client::host_of;
use crate::pact_events::{PUBLISHED, REQUEST_FULFILLED, REQUEST_REJECTED, event, send};

/// Footprints sent in one answer.
const MAX_ANSWER: usize = 100;

pub(super) async fn run(app: &App, job: &Job) -> Result<Outcome, StoreError> {
    let p: Value = serde_json::from_str(&job.params).unwrap_or_default();
    let req_id = p["request_id"].as_str().unwrap_or_default().to_owned();
    let our_source = p["source"].as_str().unwrap_or_default().to_owned();
    let org = job.org_id;
    let failed = |m: String| Ok(Outcome::Failed(json!([{ "message": m }])));
    let rid = req_id.clone();
    let found = app
        .db(move |db| {
            let Some(req) = db.pact_request(org, &rid)? else {
                return Ok(None);
            };
            let host = host_of(req.source.as_deref().unwrap_or_default());
            let conn = db
                .connections(org)?
                .into_iter()
                .find(|c| host_of(&c.base_url) == host);
            // Active published footprints matching the criteria (keyset chunks).
            let filters = Filters::from_criteria(&req.criteria).unwrap_or_default();
            let mut pfs = Vec::new();
            let mut after = String::new();
            loop {
                let rows = db.published_documents(org, &after, 500)?;
                let n = rows.len();
                for (id, doc) in rows {
                    after = id;
                    if doc["status"] == "Active" && filters.matches(&doc) && pfs.len() < MAX_ANSWER
                    {
                        pfs.push(doc);
                    }
                }
                if n < 500 || pfs.len() >= MAX_ANSWER {
                    break;
                }
            }
            Ok(Some((req, conn, pfs)))
        })
        .await;
    let (req, conn, pfs) = match found {
        Ok(Some(x)) => x,
        Ok(None) => return failed(format!("request '{req_id}' no longer exists")),
        Err(e) => return failed(e.message),
    };
    if req.status != "pending" {
        return Ok(Outcome::Succeeded(
            json!({"request_id": req_id, "status": req.status}),
        ));
    }
    let mark = |status: &'static str, answer: Value| {
        let rid = req_id.clone();
        async move {
            let _ = app
                .db(move |db| db.answer_pact_request(org, &rid, "pending", status, &answer))
                .await;
        }
    };
    let Some(conn) = conn else {
        let why = format!(
            "no connection to the requester's host {}: register one (a client id and secret \
             at the requester) to answer",
            host_of(req.source.as_deref().unwrap_or_default())
        );
        mark("answer_failed", json!({"reason": why})).await;
        return failed(why);
    };
    let Some(key) = app.config.secret_key.clone() else {
        let why = "this node has no secret key (VCCI_SECRET_KEY)".to_owned();
        mark("answer_failed", json!({"reason": why})).await;
        return failed(why);
    };
    let cid = conn.id.clone();
    let secret = match app
        .db(move |db| db.connection_secret(org, &cid, &key))
        .await
    {
        Ok(s) => s,
        Err(e) => return failed(e.message),
    };
    let answer_id = vcci_store::model::published::new_uuid()
        .map_err(|e| StoreError::internal(e.to_string()))?;
    let (status, ev, answer) = if pfs.is_empty() {
        let error = json!({"code": "NotFound", "message": "no footprint matches the request"});
        (
            "rejected",
            event(
                REQUEST_REJECTED,
                &answer_id,
                &our_source,
                json!({"requestEventId": req.id, "error": error}),
            ),
            json!({"event_id": answer_id, "error": error}),
        )
    } else {
        let ids: Vec<Value> = pfs.iter().map(|d| d["id"].clone()).collect();
        (
            "fulfilled",
            event(
                REQUEST_FULFILLED,
                &answer_id,
                &our_source,
                json!({"requestEventId": req.id, "pfs": pfs}),
            ),
            json!({"event_id": answer_id, "pf_ids": ids}),
        )
    };
    match send(&app.pact_http, &conn, &secret, &ev).await {
        Ok(()) => {
            mark(status, answer.clone()).await;
            Ok(Outcome::Succeeded(
                json!({"request_id": req_id, "status": status, "answer": answer}),
            ))
        }
        Err(e) => {
            let why = format!("the answer could not be delivered: {e}");
            mark("answer_failed", json!({"reason": why})).await;
            failed(why)
        }
    }
}

/// Tells a customer's host of footprints we published: a `PublishedEvent` with their ids to
/// its `/3/events` (the client's retries, backoff and breaker); a failure fails the job with
/// the reason.
pub(super) async fn notify(app: &App, job: &Job) -> Result<Outcome, StoreError> {
    let p: Value = serde_json::from_str(&job.params).unwrap_or_default();
    let cid = p["connection_id"].as_str().unwrap_or_default().to_owned();
    let source = p["source"].as_str().unwrap_or_default().to_owned();
    let ids = p["pf_ids"].clone();
    let org = job.org_id;
    let failed = |m: String| Ok(Outcome::Failed(json!([{ "message": m }])));
    let Some(key) = app.config.secret_key.clone() else {
        return failed("this node has no secret key (VCCI_SECRET_KEY)".into());
    };
    let c2 = cid.clone();
    let found = app
        .db(move |db| {
            let c = db.connection(org, &c2)?;
            let s = match &c {
                Some(_) => Some(db.connection_secret(org, &c2, &key)?),
                None => None,
            };
            Ok((c, s))
        })
        .await;
    let (conn, secret) = match found {
        Ok((Some(c), Some(s))) => (c, s),
        Ok(_) => return failed(format!("connection '{cid}' no longer exists")),
        Err(e) => return failed(e.message),
    };
    let id = vcci_store::model::published::new_uuid()
        .map_err(|e| StoreError::internal(e.to_string()))?;
    let ev = event(PUBLISHED, &id, &source, json!({ "pfIds": ids }));
    match send(&app.pact_http, &conn, &secret, &ev).await {
        Ok(()) => Ok(Outcome::Succeeded(
            json!({"connection_id": cid, "event_id": id, "pf_ids": ids}),
        )),
        Err(e) => failed(format!(
            "the notice could not be delivered to {}: {e}",
            conn.base_url
        )),
    }
}
