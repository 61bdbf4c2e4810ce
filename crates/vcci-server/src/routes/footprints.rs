//! Supplier product footprints (PACT Tech Specs v3): received for a supplier (as a list,
//! or a PACT list response's `data`), listed with their lineage, and read one by one with
//! the document as received. Receiving recalculates the supplier's lines naming a product.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use vcci_core::catalog;
use vcci_core::pact::Status;
use vcci_store::model::jobs::JobKind;
use vcci_store::model::keys::Role;
use vcci_store::model::pcfs::{FootprintFilter, MAX_PER_RECEIPT, Receipt};

use crate::conditional::CacheCtx;
use crate::extract::JsonBody;
use crate::list::{self, Query, param_error};
use crate::openapi::{Api, Op};
use crate::{ApiError, App, Caller};

const CURSOR_KIND: &str = "footprints";

pub fn api(api: Api) -> Api {
    api.post(
        "/api/v1/suppliers/{supplier_id}/footprints",
        receive_footprints,
        Op::new("receiveFootprints", "footprints", "Receive up to 1,000 product footprints (PACT v3 ProductFootprint) of a supplier's products: each is checked against the v3 data model and stored as received; a broken one is rejected with its id and every reason (JSON Pointer) and the rest kept; the supplier's lines naming a product are recalculated")
            .role("analyst")
            .path_param("supplier_id", "The supplier's id (lines name it in supplier_id).")
            .json_body("ReceiveFootprints")
            .json("FootprintReceipt")
            .errors(&[400, 403, 409, 413]),
    )
    .get(
        "/api/v1/footprints",
        list_footprints,
        Op::new("listFootprints", "footprints", "Received product footprints by id, with their status and lineage")
            .query("supplier_id", "string", "Only this supplier's.")
            .query("product_id", "string", "Only footprints of this product (a URN).")
            .query("status", "string", "`Active` or `Deprecated`.")
            .paged()
            .json("FootprintPage")
            .errors(&[400]),
    )
    .post(
        "/api/v1/pact/published",
        publish_footprints,
        Op::new("publishFootprints", "pact", "Publish up to 1,000 of the organization's own product footprints (PACT v3) to its customers' API clients (/3/footprints). `id`, `created`, `specVersion` and `status` may be left out; a footprint of the same products as an Active one is its new version (it lists the old one in precedingPfIds, the old one becomes Deprecated); a broken one is rejected with every reason and the rest published")
            .role("analyst")
            .json_body("ReceiveFootprints")
            .json("Publication")
            .errors(&[400, 403, 413]),
    )
    .get(
        "/api/v1/pact/published",
        list_published,
        Op::new("listPublishedFootprints", "pact", "The organization's published footprints by id, with their status and lineage")
            .paged()
            .json("PublishedPage")
            .errors(&[400]),
    )
    .post(
        "/api/v1/pact/clients",
        create_client,
        Op::new("createPactClient", "pact", "Create a PACT API client for a customer: its client id and secret (shown once; only a hash is kept) authenticate at /auth/token and read the organization's published footprints")
            .role("admin")
            .json_body("NewPactClient")
            .ok(201, "application/json", "PactClientCreated")
            .errors(&[400, 403]),
    )
    .get(
        "/api/v1/pact/clients",
        list_clients,
        Op::new("listPactClients", "pact", "The organization's PACT API clients (never their secrets)")
            .role("admin")
            .json("PactClients")
            .errors(&[403]),
    )
    .delete(
        "/api/v1/pact/clients/{client_id}",
        revoke_client,
        Op::new("revokePactClient", "pact", "Revoke a PACT API client: its tokens stop working at once")
            .role("admin")
            .path_param("client_id", "The client's id.")
            .json("RevokedPactClient")
            .errors(&[403, 404]),
    )
    .post(
        "/api/v1/pact/connections",
        create_connection,
        Op::new("createPactConnection", "pact", "Register a connection to a supplier's PACT host: its base URL, auth base URL (or discovery), client id and secret (stored encrypted at rest, never returned)")
            .role("admin")
            .json_body("NewConnection")
            .ok(201, "application/json", "Connection")
            .errors(&[400, 403, 409]),
    )
    .get(
        "/api/v1/pact/connections",
        list_connections,
        Op::new("listPactConnections", "pact", "The organization's connections with their last sync and the breaker state of their hosts")
            .json("Connections"),
    )
    .post(
        "/api/v1/pact/connections/{connection_id}/sync",
        sync_connection,
        Op::new("syncPactConnection", "pact", "Pull the supplier's footprints from its host as a background job (incremental by id); progress and outcome at the job's status URL")
            .role("analyst")
            .path_param("connection_id", "The connection's id.")
            .ok(202, "application/json", "JobAccepted")
            .errors(&[403, 404, 409]),
    )
    .post(
        "/api/v1/pact/connections/{connection_id}/requests",
        request_footprints,
        Op::new("requestFootprints", "pact", "Ask the supplier for footprints it has not published (a PACT RequestCreatedEvent to its /3/events, with productId and other criteria). Its answer, a RequestFulfilledEvent (the footprints are received) or a RequestRejectedEvent, arrives at this node's /3/events; the request's state is in GET /api/v1/pact/requests")
            .role("analyst")
            .path_param("connection_id", "The connection's id.")
            .json_body("FootprintRequest")
            .ok(201, "application/json", "PactRequest")
            .errors(&[400, 403, 404, 409, 502]),
    )
    .get(
        "/api/v1/pact/requests",
        list_requests,
        Op::new("listPactRequests", "pact", "Requests for footprints, newest first: ours to suppliers and our customers' to us, with their state and answer")
            .json("PactRequests"),
    )
    .delete(
        "/api/v1/pact/connections/{connection_id}",
        delete_connection,
        Op::new("deletePactConnection", "pact", "Remove a connection (the footprints received through it stay)")
            .role("admin")
            .path_param("connection_id", "The connection's id.")
            .json("DeletedConnection")
            .errors(&[403, 404]),
    )
    .get(
        "/api/v1/pact/coverage",
        coverage,
        Op::new("footprintCoverage", "pact", "How much of the organization's lines product footprints cover: lines naming a product and those calculated from a supplier's footprint, their spend and emissions, overall and by supplier")
            .json("FootprintCoverage"),
    )
    .get(
        "/api/v1/footprints/{footprint_id}",
        get_footprint,
        Op::new("getFootprint", "footprints", "One received footprint: the document as received, its lineage, and the lines calculated with it")
            .path_param("footprint_id", "The footprint's id (a UUID).")
            .json("FootprintDetail")
            .errors(&[404]),
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReceiveBody {
    /// The footprints, or a PACT list response's `data`.
    footprints: Option<Vec<Value>>,
    data: Option<Vec<Value>>,
}

/// The receipt as the API answers it.
pub(crate) fn receipt_json(r: &Receipt) -> Value {
    json!({
        "received": r.received,
        "unchanged": r.unchanged,
        "deprecated": r.deprecated,
        "superseded": r.superseded,
        "rejected": r.rejected,
        "recalculated_lines": r.lines_changed,
    })
}

async fn receive_footprints(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(supplier_id): Path<String>,
    JsonBody(body): JsonBody<ReceiveBody>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Analyst)?;
    let docs = footprints_of(body)?;
    if supplier_id.is_empty() || supplier_id.len() > vcci_core::line::MAX_ID {
        return Err(ApiError::bad_request(
            "invalid_supplier_id",
            format!("supplier_id must be 1 to {} bytes", vcci_core::line::MAX_ID),
        ));
    }
    let org = caller.org.clone();
    let by = caller.actor();
    let r = app
        .db_write(org.id, move |db| {
            db.receive_footprints(catalog(), &org, &supplier_id, &docs, "api", &by)
        })
        .await?;
    Ok(Json(receipt_json(&r)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    supplier_id: Option<String>,
    product_id: Option<String>,
    status: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

async fn list_footprints(
    State(app): State<Arc<App>>,
    caller: Caller,
    ctx: CacheCtx,
    Query(q): Query<ListQuery>,
) -> Response {
    let org = caller.org_id();
    app.cached(org, ctx, async {
        let limit = list::limit(q.limit.as_deref())?;
        let after = list::cursor_parts(app.cursors(), q.cursor.as_deref(), CURSOR_KIND, org.0, 1)?
            .map(|mut p| p.remove(0));
        let status = match q.status.filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(Status::parse(&s).ok_or_else(|| {
                param_error("status", format!("'{s}' is not Active or Deprecated"))
            })?),
        };
        let filter = FootprintFilter {
            supplier_id: list::text_param("supplier_id", q.supplier_id)?,
            product_id: list::text_param("product_id", q.product_id)?,
            status,
        };
        let rows = app
            .db(move |db| db.footprints(org, &filter, after.as_deref(), limit + 1))
            .await?;
        list::paged(
            rows,
            limit,
            |f| app.cursors().sign(CURSOR_KIND, org.0, &[&f.id]),
            Ok,
        )
    })
    .await
}

async fn get_footprint(
    State(app): State<Arc<App>>,
    caller: Caller,
    ctx: CacheCtx,
    Path(id): Path<String>,
) -> Response {
    let org = caller.org_id();
    app.cached(org, ctx, async {
        let shown = id.clone();
        app.db(move |db| db.footprint(org, &id))
            .await?
            .ok_or_else(|| ApiError::not_found(format!("footprint '{shown}'")))
    })
    .await
}

fn footprints_of(body: ReceiveBody) -> Result<Vec<Value>, ApiError> {
    let docs = match (body.footprints, body.data) {
        (Some(f), None) | (None, Some(f)) => f,
        _ => {
            return Err(ApiError::bad_request(
                "invalid_body",
                "give the footprints in `footprints` (or a PACT list response's `data`), not both",
            ));
        }
    };
    if docs.len() > MAX_PER_RECEIPT {
        return Err(ApiError::bad_request(
            "too_many_footprints",
            format!(
                "at most {MAX_PER_RECEIPT} footprints per request; got {}",
                docs.len()
            ),
        ));
    }
    Ok(docs)
}

async fn publish_footprints(
    State(app): State<Arc<App>>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    JsonBody(body): JsonBody<ReceiveBody>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Analyst)?;
    let docs = footprints_of(body)?;
    let org = caller.org_id();
    let by = caller.actor();
    let r = app
        .db_write(org, move |db| db.publish_footprints(org, &docs, &by))
        .await?;
    // Customers' hosts marked for it are told (PublishedEvent), by jobs.
    let source = crate::pact_events::source_of(&crate::pact::public_base(&app, &headers));
    let ids = r.published.clone();
    let jobs = app
        .db(move |db| db.queue_published_notices(org, &ids, &source))
        .await?;
    if !jobs.is_empty() {
        app.job_queued(org, &jobs).await;
    }
    let mut v = json!(r);
    v["notices_queued"] = json!(jobs.len());
    Ok(Json(v))
}

const PUBLISHED_CURSOR: &str = "published";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    limit: Option<String>,
    cursor: Option<String>,
}

async fn list_published(
    State(app): State<Arc<App>>,
    caller: Caller,
    ctx: CacheCtx,
    Query(q): Query<PageQuery>,
) -> Response {
    let org = caller.org_id();
    app.cached(org, ctx, async {
        let limit = list::limit(q.limit.as_deref())?;
        let after = list::cursor_parts(
            app.cursors(),
            q.cursor.as_deref(),
            PUBLISHED_CURSOR,
            org.0,
            1,
        )?
        .map(|mut p| p.remove(0));
        let rows = app
            .db(move |db| db.published_footprints(org, after.as_deref(), limit + 1))
            .await?;
        list::paged(
            rows,
            limit,
            |f| app.cursors().sign(PUBLISHED_CURSOR, org.0, &[&f.id]),
            Ok,
        )
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewClient {
    name: String,
}

async fn create_client(
    State(app): State<Arc<App>>,
    caller: Caller,
    JsonBody(body): JsonBody<NewClient>,
) -> Result<(axum::http::StatusCode, Json<Value>), ApiError> {
    caller.require(Role::Admin)?;
    let org = caller.org_id();
    let by = caller.actor();
    let c = app
        .db(move |db| db.create_pact_client(org, &body.name, &by))
        .await?;
    Ok((axum::http::StatusCode::CREATED, Json(json!(c))))
}

async fn list_clients(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Admin)?;
    let org = caller.org_id();
    let clients = app.db(move |db| db.pact_clients(org)).await?;
    Ok(Json(json!({ "clients": clients })))
}

async fn revoke_client(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(client_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Admin)?;
    let org = caller.org_id();
    let by = caller.actor();
    let id = client_id.clone();
    let done = app
        .db(move |db| db.revoke_pact_client(org, &id, &by))
        .await?;
    if done {
        Ok(Json(json!({"client_id": client_id, "revoked": true})))
    } else {
        Err(ApiError::not_found(format!(
            "an active PACT client '{client_id}'"
        )))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewConnectionBody {
    supplier_id: String,
    base_url: String,
    auth_base_url: Option<String>,
    client_id: String,
    client_secret: String,
    notify_published: Option<bool>,
}

fn secret_key(app: &App) -> Result<Arc<vcci_store::secretbox::SecretKey>, ApiError> {
    app.config.secret_key.clone().ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "no_secret_key",
            "this node has no secret key (VCCI_SECRET_KEY): connection secrets can be neither stored nor opened",
        )
    })
}

async fn create_connection(
    State(app): State<Arc<App>>,
    caller: Caller,
    JsonBody(b): JsonBody<NewConnectionBody>,
) -> Result<(axum::http::StatusCode, Json<Value>), ApiError> {
    caller.require(Role::Admin)?;
    let key = secret_key(&app)?;
    let org = caller.org_id();
    let by = caller.actor();
    let c = vcci_store::model::connections::NewConnection {
        supplier_id: b.supplier_id,
        base_url: b.base_url,
        auth_base_url: b.auth_base_url,
        client_id: b.client_id,
        client_secret: b.client_secret,
        notify_published: b.notify_published.unwrap_or(false),
    };
    let conn = app
        .db(move |db| db.create_connection(org, &c, &key, &by))
        .await?;
    Ok((axum::http::StatusCode::CREATED, Json(json!(conn))))
}

async fn list_connections(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let org = caller.org_id();
    let list = app.db(move |db| db.connections(org)).await?;
    let out: Vec<Value> = list
        .into_iter()
        .map(|c| {
            let breaker = app
                .pact_http
                .breaker_state(&crate::pact_client::host_of(&c.base_url));
            let mut v = json!(c);
            v["breaker"] = json!(breaker);
            v
        })
        .collect();
    Ok(Json(json!({ "connections": out })))
}

async fn sync_connection(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(Role::Analyst)?;
    secret_key(&app)?;
    let org = caller.org_id();
    let cid = id.clone();
    if app.db(move |db| db.connection(org, &cid)).await?.is_none() {
        return Err(ApiError::not_found(format!("connection '{id}'")));
    }
    let params =
        crate::telemetry::job_params(json!({"connection_id": id, "actor": caller.actor()}));
    let job = app
        .db(move |db| db.create_job(org, JobKind::PactSync, &params, false))
        .await?;
    app.job_queued(org, std::slice::from_ref(&job)).await;
    Ok(crate::routes::imports::accepted(&job))
}

async fn delete_connection(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Admin)?;
    let org = caller.org_id();
    let by = caller.actor();
    let cid = id.clone();
    if app
        .db(move |db| db.delete_connection(org, &cid, &by))
        .await?
    {
        Ok(Json(json!({"id": id, "deleted": true})))
    } else {
        Err(ApiError::not_found(format!("connection '{id}'")))
    }
}

async fn coverage(State(app): State<Arc<App>>, caller: Caller, ctx: CacheCtx) -> Response {
    let org = caller.org_id();
    app.cached(org, ctx, async {
        app.db(move |db| db.footprint_coverage(org)).await
    })
    .await
}

async fn request_footprints(
    State(app): State<Arc<App>>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    Path(id): Path<String>,
    JsonBody(criteria): JsonBody<Value>,
) -> Result<(axum::http::StatusCode, Json<Value>), ApiError> {
    caller.require(Role::Analyst)?;
    let key = secret_key(&app)?;
    let bad = |m: &str| ApiError::bad_request("invalid_request", m.to_owned());
    let products = criteria
        .get("productId")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty() && a.len() <= 100)
        .ok_or_else(|| bad("productId must be a list of 1 to 100 product ids (URNs)"))?;
    if !products.iter().all(|p| {
        p.as_str()
            .is_some_and(|s| vcci_core::pact::is_urn(s) && s.len() <= 256)
    }) {
        return Err(bad(
            "every productId must be a URN (urn:...) of at most 256 bytes",
        ));
    }
    crate::pact::Filters::from_criteria(&criteria).map_err(|m| bad(&m))?;
    if criteria.to_string().len() > 16 * 1024 {
        return Err(bad("the criteria are larger than 16 KiB"));
    }
    let org = caller.org_id();
    let cid = id.clone();
    let (conn, secret) = app
        .db(move |db| {
            let c = db.connection(org, &cid)?;
            let s = match &c {
                Some(_) => Some(db.connection_secret(org, &cid, &key)?),
                None => None,
            };
            Ok((c, s))
        })
        .await?;
    let (Some(conn), Some(secret)) = (conn, secret) else {
        return Err(ApiError::not_found(format!("connection '{id}'")));
    };
    let event_id = vcci_store::model::published::new_uuid()?;
    let ours = crate::pact_events::source_of(&crate::pact::public_base(&app, &headers));
    let ev = crate::pact_events::event(
        crate::pact_events::REQUEST_CREATED,
        &event_id,
        &ours,
        criteria.clone(),
    );
    let sent = crate::pact_events::send(&app.pact_http, &conn, &secret, &ev).await;
    let status = if sent.is_ok() {
        "pending"
    } else {
        "send_failed"
    };
    let (eid, c2, crit) = (event_id.clone(), conn.id.clone(), criteria);
    let req = app
        .db(move |db| {
            db.record_pact_request(org, &eid, "outgoing", Some(&c2), None, None, &crit, status)
        })
        .await?;
    match sent {
        Ok(()) => Ok((axum::http::StatusCode::CREATED, Json(json!(req)))),
        Err(e) => {
            let why = json!({"reason": e.to_string()});
            let eid = event_id.clone();
            app.db(move |db| db.answer_pact_request(org, &eid, "send_failed", "send_failed", &why))
                .await?;
            Err(ApiError::new(
                axum::http::StatusCode::BAD_GATEWAY,
                "pact_host_failed",
                format!("the request could not be sent: {e}"),
            ))
        }
    }
}

async fn list_requests(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let org = caller.org_id();
    let list = app.db(move |db| db.pact_requests(org, 200)).await?;
    Ok(Json(json!({ "requests": list })))
}
