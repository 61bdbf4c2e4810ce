//! vcci as a PACT v3 host: the organization's published footprints served to its customers'
//! API clients (`/3/footprints`, `/3/footprints/{id}`), with the OAuth2 client-credentials
//! token endpoint (`/auth/token`) and its discovery (`/.well-known/openid-configuration`).
//!
//! - Tokens are HMAC-signed by the deployment's secret (any node checks any node's token):
//!   the organization, the client id and the expiry; a revoked client's tokens stop working.
//! - Errors are the spec's `{code, message}`: BadRequest 400, TokenExpired 401, AccessDenied
//!   403, NotFound 404, InternalError 500.
//! - Lists filter as the spec says (OR within a criterion, AND between them) and paginate
//!   with an absolute `Link: <...>; rel="next"` on the request's host, valid for an hour.
//! - HTTPS only: a request that did not come over TLS is refused, unless the node is told a
//!   TLS proxy sits in front (`--pact-behind-tls-proxy`).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use vcci_core::pact;
use vcci_store::OrgId;

use crate::{ApiError, App};

/// Tokens live this long (seconds).
pub const TOKEN_SECONDS: u64 = 3600;
/// Pagination links stay valid this long (the spec asks for at least 180 s).
const LINK_SECONDS: u64 = 3600;
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// Set on requests that came over TLS (by the TLS listener).
#[derive(Clone, Copy, Debug)]
pub struct Tls;

pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/auth/token", post(token))
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/3/footprints", get(list))
        .route("/3/footprints/{id}", get(one))
        .route("/3/events", post(events))
}

/// An error in the spec's shape.
#[derive(Debug)]
pub struct PactFailure {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl PactFailure {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        PactFailure {
            status,
            code,
            message: message.into(),
        }
    }
    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }
    fn access_denied(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "AccessDenied", message)
    }
}

impl IntoResponse for PactFailure {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(json!({"code": self.code, "message": self.message})),
        )
            .into_response()
    }
}

impl From<ApiError> for PactFailure {
    fn from(e: ApiError) -> Self {
        tracing::warn!(code = e.code, message = %e.message, "pact host: a database call failed");
        PactFailure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "the host could not answer; try again later",
        )
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Refuses plain HTTP unless a TLS proxy is declared in front.
fn require_tls(app: &App, tls: Option<&Tls>) -> Result<(), PactFailure> {
    if tls.is_some() || app.config.pact_behind_tls_proxy {
        Ok(())
    } else {
        Err(PactFailure::access_denied(
            "PACT requires HTTPS: serve with --tls-cert and --tls-key, or declare a TLS proxy \
             in front with --pact-behind-tls-proxy",
        ))
    }
}

/// The base URL requests name: the configured public URL, else the scheme (https over
/// TLS, behind a proxy its X-Forwarded-Proto, else https) and the request's Host.
fn base_url(app: &App, headers: &HeaderMap, tls: Option<&Tls>) -> String {
    if let Some(u) = &app.config.public_url {
        return u.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
                })
        })
        .unwrap_or("localhost");
    let scheme = match (
        tls,
        headers
            .get("x-forwarded-proto")
            .and_then(|h| h.to_str().ok()),
    ) {
        (Some(_), _) => "https",
        (None, Some("http")) => "http",
        _ => "https",
    };
    format!("{scheme}://{host}")
}

/// The base URL customers and suppliers reach this node at, for a request of our own API
/// (the configured public URL, else https and the request's Host).
pub(crate) fn public_base(app: &App, headers: &HeaderMap) -> String {
    base_url(app, headers, Some(&Tls))
}

/// Decodes standard base64 (the Basic credentials).
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        })
    };
    let s = s.trim().trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        acc = (acc << 6) | val(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// The client id and secret of an `Authorization: Basic` header.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let h = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = h.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") || rest.len() > 1024 {
        return None;
    }
    let text = String::from_utf8(base64_decode(rest)?).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut r = (
        status,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"vcci PACT\""),
        );
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `POST /auth/token`: OAuth2 client credentials (RFC 6749 4.4) with HTTP Basic.
async fn token(
    State(app): State<Arc<App>>,
    tls: Option<axum::Extension<Tls>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(e) = require_tls(&app, tls.as_deref()) {
        return e.into_response();
    }
    let form: Vec<(String, String)> = match serde_urlencoded::from_bytes(&body) {
        Ok(f) => f,
        Err(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "the body must be application/x-www-form-urlencoded",
            );
        }
    };
    let grant = form
        .iter()
        .find(|(k, _)| k == "grant_type")
        .map(|(_, v)| v.as_str());
    if grant != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be client_credentials",
        );
    }
    let Some((client_id, secret)) = basic_credentials(&headers) else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "authenticate with HTTP Basic: the client id and secret",
        );
    };
    if client_id.len() > 128 || secret.len() > 256 {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "unknown client or wrong secret",
        );
    }
    let id = client_id.clone();
    let org = match app.db(move |db| db.verify_pact_client(&id, &secret)).await {
        Ok(Some(org)) => org,
        Ok(None) => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "unknown client or wrong secret",
            );
        }
        Err(e) => return PactFailure::from(e).into_response(),
    };
    let exp = now() + TOKEN_SECONDS;
    let signed = app
        .cursors()
        .sign("pact-token", org.0, &[&client_id, &exp.to_string()]);
    let mut r = axum::Json(json!({
        "access_token": format!("{}.{signed}", org.0),
        "token_type": "bearer",
        "expires_in": TOKEN_SECONDS,
    }))
    .into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn discovery(
    State(app): State<Arc<App>>,
    tls: Option<axum::Extension<Tls>>,
    headers: HeaderMap,
) -> Response {
    if let Err(e) = require_tls(&app, tls.as_deref()) {
        return e.into_response();
    }
    let base = base_url(&app, &headers, tls.as_deref());
    axum::Json(json!({
        "issuer": base,
        "token_endpoint": format!("{base}/auth/token"),
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        "response_types_supported": ["token"],
    }))
    .into_response()
}

/// The organization of a valid bearer token whose client is still active.
async fn authorize(
    app: &App,
    headers: &HeaderMap,
    tls: Option<&Tls>,
) -> Result<OrgId, PactFailure> {
    authorize_client(app, headers, tls)
        .await
        .map(|(org, _)| org)
}

/// The organization and client id of a valid bearer token whose client is still active.
async fn authorize_client(
    app: &App,
    headers: &HeaderMap,
    tls: Option<&Tls>,
) -> Result<(OrgId, String), PactFailure> {
    require_tls(app, tls)?;
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| {
            let (scheme, t) = h.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then_some(t.trim())
        })
        .ok_or_else(|| {
            PactFailure::access_denied("a bearer token is required (POST /auth/token)")
        })?;
    let invalid = || PactFailure::access_denied("the access token is not valid");
    let (org, signed) = token.split_once('.').ok_or_else(invalid)?;
    let org: i64 = org.parse().map_err(|_| invalid())?;
    let parts = app
        .cursors()
        .verify(signed, "pact-token", org, 2)
        .map_err(|_| invalid())?;
    let exp: u64 = parts[1].parse().map_err(|_| invalid())?;
    if now() >= exp {
        return Err(PactFailure::new(
            StatusCode::UNAUTHORIZED,
            "TokenExpired",
            "the access token has expired; get a new one from /auth/token",
        ));
    }
    let client = parts[0].clone();
    let c = client.clone();
    let active = app
        .db(move |db| db.pact_client_active(OrgId(org), &c))
        .await?;
    if !active {
        return Err(PactFailure::access_denied(
            "the client of this token was revoked",
        ));
    }
    crate::telemetry::current_attribute("vcci.org_id", org);
    Ok((OrgId(org), client))
}

/// The list filters of the spec.
#[derive(Debug, Default)]
pub(crate) struct Filters {
    product_id: Vec<String>,
    company_id: Vec<String>,
    geography: Vec<String>,
    classification: Vec<String>,
    valid_on: Option<i64>,
    valid_after: Option<i64>,
    valid_before: Option<i64>,
    status: Option<pact::Status>,
}

fn strings<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a str> {
    v[key]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

impl Filters {
    /// The filters of a `RequestCreatedEvent`'s data (the list's criteria as JSON).
    pub(crate) fn from_criteria(data: &Value) -> Result<Filters, String> {
        let list = |k: &str| -> Result<Vec<String>, String> {
            match data.get(k) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|x| {
                        x.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| format!("data.{k} must be an array of strings"))
                    })
                    .collect(),
                Some(_) => Err(format!("data.{k} must be an array of strings")),
            }
        };
        let time = |k: &str| -> Result<Option<i64>, String> {
            match data.get(k).and_then(Value::as_str) {
                None => Ok(None),
                Some(t) => pact::parse_datetime(t)
                    .map(Some)
                    .ok_or_else(|| format!("data.{k}: '{t}' is not an RFC 3339 date-time")),
            }
        };
        let status = match data.get("status").and_then(Value::as_str) {
            None => None,
            Some(s) => Some(
                pact::Status::parse(s)
                    .ok_or_else(|| format!("data.status: '{s}' is not Active or Deprecated"))?,
            ),
        };
        Ok(Filters {
            product_id: list("productId")?,
            company_id: list("companyId")?,
            geography: list("geography")?,
            classification: list("classification")?,
            valid_on: time("validOn")?,
            valid_after: time("validAfter")?,
            valid_before: time("validBefore")?,
            status,
        })
    }

    pub(crate) fn matches(&self, doc: &Value) -> bool {
        let any = |want: &[String], key: &str| {
            want.is_empty() || strings(doc, key).any(|x| want.iter().any(|w| w == x))
        };
        if !any(&self.product_id, "productIds")
            || !any(&self.company_id, "companyIds")
            || !any(&self.classification, "productClassifications")
        {
            return false;
        }
        let p = &doc["pcf"];
        if !self.geography.is_empty() {
            let region = p["geographyRegionOrSubregion"].as_str();
            let country = p["geographyCountry"].as_str();
            let sub = p["geographyCountrySubdivision"].as_str();
            let hit = self.geography.iter().any(|g| {
                region == Some(g.as_str())
                    || country == Some(g.as_str())
                    || sub == Some(g.as_str())
                    || sub.is_some_and(|s| s.split('-').next() == Some(g.as_str()))
            });
            if !hit {
                return false;
            }
        }
        if let Some(s) = self.status
            && doc["status"].as_str() != Some(s.as_str())
        {
            return false;
        }
        if self.valid_on.is_some() || self.valid_after.is_some() || self.valid_before.is_some() {
            let Ok(f) = pact::parse(doc) else {
                return false;
            };
            let (start, end) = f.pcf.validity;
            if self.valid_on.is_some_and(|t| !(start <= t && t <= end))
                || self.valid_after.is_some_and(|t| start <= t)
                || self.valid_before.is_some_and(|t| end >= t)
            {
                return false;
            }
        }
        true
    }
}

/// The parameters of a list request (repeated names allowed; names case-insensitive).
struct ListRequest {
    filters: Filters,
    limit: usize,
    /// After this id (from a pagination link).
    after: Option<String>,
    /// The query without `cursor`, for the next link.
    kept: Vec<(String, String)>,
}

fn parse_list(app: &App, org: OrgId, query: Option<&str>) -> Result<ListRequest, PactFailure> {
    let q = query.unwrap_or("");
    if q.len() > 16 * 1024 {
        return Err(PactFailure::bad_request("the query string is too long"));
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q)
        .map_err(|_| PactFailure::bad_request("the query string is malformed"))?;
    let mut r = ListRequest {
        filters: Filters::default(),
        limit: DEFAULT_LIMIT,
        after: None,
        kept: Vec::new(),
    };
    let time = |name: &str, v: &str| {
        pact::parse_datetime(v).ok_or_else(|| {
            PactFailure::bad_request(format!("{name}: '{v}' is not an RFC 3339 date-time"))
        })
    };
    for (k, v) in pairs {
        let name = k.to_ascii_lowercase();
        if name != "cursor" {
            r.kept.push((k.clone(), v.clone()));
        }
        match name.as_str() {
            "$filter" => {
                return Err(PactFailure::bad_request(
                    "$filter (OData, PACT v2) is not supported in v3; use the query parameters \
                     productId, companyId, geography, classification, validOn, validAfter, \
                     validBefore and status",
                ));
            }
            "limit" => {
                r.limit = v
                    .parse::<usize>()
                    .map_err(|_| {
                        PactFailure::bad_request(format!(
                            "limit: '{v}' is not a non-negative integer"
                        ))
                    })?
                    .min(MAX_LIMIT);
            }
            "productid" => r.filters.product_id.push(v),
            "companyid" => r.filters.company_id.push(v),
            "geography" => r.filters.geography.push(v),
            "classification" => r.filters.classification.push(v),
            "validon" => r.filters.valid_on = Some(time("validOn", &v)?),
            "validafter" => r.filters.valid_after = Some(time("validAfter", &v)?),
            "validbefore" => r.filters.valid_before = Some(time("validBefore", &v)?),
            "status" => {
                r.filters.status = Some(pact::Status::parse(&v).ok_or_else(|| {
                    PactFailure::bad_request(format!("status: '{v}' is not Active or Deprecated"))
                })?);
            }
            "cursor" => {
                let parts = app
                    .cursors()
                    .verify(&v, "pact-list", org.0, 2)
                    .map_err(|_| {
                        PactFailure::bad_request("the pagination link is not valid; start again")
                    })?;
                let exp: u64 = parts[1].parse().unwrap_or(0);
                if now() >= exp {
                    return Err(PactFailure::bad_request(
                        "the pagination link has expired; start the list again",
                    ));
                }
                r.after = Some(parts[0].clone());
            }
            // Filters of other hosts (x-<identifier>-...) and anything else: ignored.
            _ => {}
        }
    }
    Ok(r)
}

/// `GET /3/footprints`.
async fn list(
    State(app): State<Arc<App>>,
    tls: Option<axum::Extension<Tls>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, PactFailure> {
    let org = authorize(&app, &headers, tls.as_deref()).await?;
    let req = parse_list(&app, org, query.as_deref())?;
    // Keyset chunks by id, filtered here, until the page and one more match are found (so
    // an unfiltered page reads only its own rows).
    let chunk = (req.limit + 1).clamp(100, 1000);
    let mut cursor = req.after.clone().unwrap_or_default();
    let mut page = Vec::new();
    let mut more = false;
    'chunks: loop {
        let after = cursor.clone();
        let rows = app
            .db(move |db| db.published_documents(org, &after, chunk))
            .await?;
        let n = rows.len();
        for (id, doc) in rows {
            cursor.clone_from(&id);
            if !req.filters.matches(&doc) {
                continue;
            }
            if page.len() == req.limit {
                more = true;
                break 'chunks;
            }
            page.push((id, doc));
        }
        if n < chunk {
            break;
        }
    }
    let last = page.last().map(|(id, _)| id.clone()).or(req.after.clone());
    let data: Vec<Value> = page.into_iter().map(|(_, d)| d).collect();
    let mut r = axum::Json(json!({ "data": data })).into_response();
    if more {
        let exp = (now() + LINK_SECONDS).to_string();
        let cursor = app
            .cursors()
            .sign("pact-list", org.0, &[last.as_deref().unwrap_or(""), &exp]);
        let mut kept = req.kept;
        kept.push(("cursor".into(), cursor));
        let q = serde_urlencoded::to_string(&kept).unwrap_or_default();
        let link = format!(
            "<{}/3/footprints?{q}>; rel=\"next\"",
            base_url(&app, &headers, tls.as_deref())
        );
        if let Ok(v) = HeaderValue::from_str(&link) {
            r.headers_mut().insert(header::LINK, v);
        }
    }
    Ok(r)
}

/// `GET /3/footprints/{id}`.
async fn one(
    State(app): State<Arc<App>>,
    tls: Option<axum::Extension<Tls>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, PactFailure> {
    let org = authorize(&app, &headers, tls.as_deref()).await?;
    if !pact::is_uuid(&id) {
        return Err(PactFailure::bad_request(format!(
            "'{id}' is not a footprint id (a UUID)"
        )));
    }
    let doc = app
        .db(move |db| db.published_document(org, &id))
        .await?
        .ok_or_else(|| PactFailure::new(StatusCode::NOT_FOUND, "NotFound", "no such footprint"))?;
    Ok(axum::Json(json!({ "data": doc })).into_response())
}

/// `POST /3/events`: CloudEvents from our clients. Answers to our requests (fulfilled: the
/// footprints are received as the supplier's; rejected: the reason is kept), customers'
/// requests (recorded and answered by a job), and published notices (a sync of the
/// sender's connections). A malformed or unknown event is 400.
async fn events(
    State(app): State<Arc<App>>,
    tls: Option<axum::Extension<Tls>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, PactFailure> {
    let (org, client) = authorize_client(&app, &headers, tls.as_deref()).await?;
    let ev: Value = serde_json::from_slice(&body).map_err(|e| {
        PactFailure::bad_request(format!(
            "the event is not JSON (line {}, column {}): {e}",
            e.line(),
            e.column()
        ))
    })?;
    let text = |k: &str| -> Result<String, PactFailure> {
        ev.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= 2048)
            .map(str::to_owned)
            .ok_or_else(|| {
                PactFailure::bad_request(format!("the event needs a `{k}` (a non-empty string)"))
            })
    };
    let (kind, id, source, time) = (text("type")?, text("id")?, text("source")?, text("time")?);
    if ev.get("specversion").and_then(Value::as_str) != Some("1.0") {
        return Err(PactFailure::bad_request(
            "specversion must be \"1.0\" (CloudEvents)",
        ));
    }
    if pact::parse_datetime(&time).is_none() {
        return Err(PactFailure::bad_request(format!(
            "time: '{time}' is not an RFC 3339 date-time"
        )));
    }
    let data = ev
        .get("data")
        .filter(|d| d.is_object())
        .cloned()
        .ok_or_else(|| PactFailure::bad_request("the event needs a `data` object"))?;
    let actor = vcci_store::Actor::system(&format!("PACT client {client}"));
    match kind.as_str() {
        crate::pact_events::REQUEST_FULFILLED | crate::pact_events::REQUEST_REJECTED => {
            let fulfilled = kind == crate::pact_events::REQUEST_FULFILLED;
            let req_id = data
                .get("requestEventId")
                .and_then(Value::as_str)
                .ok_or_else(|| PactFailure::bad_request("data.requestEventId is required"))?
                .to_owned();
            let pfs = if fulfilled {
                match data.get("pfs").and_then(Value::as_array) {
                    Some(a)
                        if !a.is_empty() && a.len() <= vcci_store::model::pcfs::MAX_PER_RECEIPT =>
                    {
                        a.clone()
                    }
                    _ => {
                        return Err(PactFailure::bad_request(
                            "data.pfs must be 1 to 1,000 footprints",
                        ));
                    }
                }
            } else {
                Vec::new()
            };
            let error = data.get("error").cloned().unwrap_or(Value::Null);
            if !fulfilled && !error.is_object() {
                return Err(PactFailure::bad_request(
                    "data.error must be an Error object {code, message}",
                ));
            }
            let done = app
                .db_write(org, move |db| {
                    answer_request(db, org, &req_id, &id, fulfilled, &pfs, error, &actor)
                })
                .await?;
            if !done {
                return Err(PactFailure::bad_request(
                    "requestEventId names no pending request of ours",
                ));
            }
        }
        crate::pact_events::REQUEST_CREATED => {
            Filters::from_criteria(&data).map_err(PactFailure::bad_request)?;
            if data.to_string().len() > 16 * 1024 {
                return Err(PactFailure::bad_request(
                    "the request's criteria are larger than 16 KiB",
                ));
            }
            let our_source =
                crate::pact_events::source_of(&base_url(&app, &headers, tls.as_deref()));
            let (eid, src, cl) = (id.clone(), source.clone(), client.clone());
            let job = app
                .db(move |db| {
                    db.record_pact_request(
                        org,
                        &eid,
                        "incoming",
                        None,
                        Some(&cl),
                        Some(&src),
                        &data,
                        "pending",
                    )?;
                    let params = crate::telemetry::job_params(
                        json!({"request_id": eid, "source": our_source}),
                    );
                    db.create_job(
                        org,
                        vcci_store::model::jobs::JobKind::PactAnswer,
                        &params,
                        false,
                    )
                })
                .await
                .map_err(|e| {
                    if e.code == "conflict" {
                        PactFailure::bad_request(format!(
                            "request event '{id}' was received before"
                        ))
                    } else {
                        PactFailure::from(e)
                    }
                })?;
            app.job_queued(org, &[job]).await;
        }
        crate::pact_events::PUBLISHED => {
            // A sync of every connection to the sender's host.
            let host = crate::pact_client::host_of(&source);
            let by = serde_json::to_value(&actor).unwrap_or(Value::Null);
            let queued = app
                .db(move |db| {
                    let mut jobs = Vec::new();
                    for c in db.connections(org)? {
                        if crate::pact_client::host_of(&c.base_url) == host {
                            let params = crate::telemetry::job_params(
                                json!({"connection_id": c.id, "actor": by}),
                            );
                            jobs.push(db.create_job(
                                org,
                                vcci_store::model::jobs::JobKind::PactSync,
                                &params,
                                false,
                            )?);
                        }
                    }
                    Ok(jobs)
                })
                .await?;
            if !queued.is_empty() {
                app.job_queued(org, &queued).await;
            }
        }
        other => {
            return Err(PactFailure::bad_request(format!(
                "unsupported event type '{}'",
                other.chars().take(200).collect::<String>()
            )));
        }
    }
    Ok(StatusCode::OK.into_response())
}

/// Applies an answer to our pending request `req_id`: a fulfilment's footprints are received
/// as the connection's supplier's. False if there is no such pending request.
#[allow(clippy::too_many_arguments)]
fn answer_request(
    db: &mut vcci_store::Db,
    org: OrgId,
    req_id: &str,
    event_id: &str,
    fulfilled: bool,
    pfs: &[Value],
    error: Value,
    actor: &vcci_store::Actor,
) -> Result<bool, vcci_store::StoreError> {
    let Some(req) = db.pact_request(org, req_id)? else {
        return Ok(false);
    };
    if req.direction != "outgoing" || req.status != "pending" {
        return Ok(false);
    }
    if !fulfilled {
        return db.answer_pact_request(
            org,
            req_id,
            "pending",
            "rejected",
            &json!({"event_id": event_id, "error": error}),
        );
    }
    let conn = match req.connection_id.as_deref() {
        Some(c) => db.connection(org, c)?,
        None => None,
    };
    let (Some(conn), Some(o)) = (conn, db.org_by_id(org)?) else {
        return Ok(false);
    };
    let source = format!("request {req_id}");
    let answer = match db.receive_footprints(
        vcci_core::catalog(),
        &o,
        &conn.supplier_id,
        pfs,
        &source,
        actor,
    ) {
        Ok(r) => json!({"event_id": event_id, "received": r.received, "unchanged": r.unchanged,
            "rejected": r.rejected, "recalculated_lines": r.lines_changed}),
        Err(e @ vcci_store::StoreError::PeriodClosed { .. }) => {
            json!({"event_id": event_id, "not_applied": e.to_string()})
        }
        Err(e) => return Err(e),
    };
    db.answer_pact_request(org, req_id, "pending", "fulfilled", &answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64() {
        assert_eq!(base64_decode("dXNlcjpwYXNz").unwrap(), b"user:pass");
        assert_eq!(base64_decode("YQ==").unwrap(), b"a");
        assert!(base64_decode("a b").is_none());
    }
}
