//! Conditional GETs: every successful JSON GET gets a weak ETag (a hash of its body) and
//! `Cache-Control: private, no-cache`; `If-None-Match` with the current ETag answers 304
//! with no body. Bodies differ per organization, so a tag never matches another tenant's
//! content; `private` keeps shared caches from storing responses at all.
//!
//! Cached routes (`App::cached`) tag their body once, when it is computed; this middleware
//! tags the other JSON GETs.

use std::convert::Infallible;

use axum::body::{Body, to_bytes};
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::cache::Cached;

/// JSON bodies larger than this are sent without an ETag (they are not buffered).
const MAX_TAGGED_BODY: usize = 32 << 20;

const CACHE_CONTROL: HeaderValue = HeaderValue::from_static("private, no-cache");

/// The weak ETag of a body: its 128-bit XXH3 hash. A validator only has to tell one
/// representation of a resource from another for the same requester (responses are
/// private, and tags are compared only against the client's own copy), so a fast
/// non-cryptographic hash is enough; measured, SHA-256 took ~11% of a 100-line page's CPU.
pub fn tag(body: &[u8]) -> HeaderValue {
    let h = xxhash_rust::xxh3::xxh3_128(body);
    HeaderValue::from_str(&format!("W/\"{h:032x}\"")).expect("hex is a valid header value")
}

/// Whether `If-None-Match` holds `etag` (weak comparison) or `*`.
fn matches(if_none_match: Option<&HeaderValue>, etag: &HeaderValue) -> bool {
    let Some(v) = if_none_match.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let want = etag.to_str().unwrap_or_default().trim_start_matches("W/");
    v.split(',')
        .map(str::trim)
        .any(|t| t == "*" || t.trim_start_matches("W/") == want)
}

fn not_modified(etag: HeaderValue) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::NOT_MODIFIED;
    r.headers_mut().insert(header::ETAG, etag);
    r.headers_mut().insert(header::CACHE_CONTROL, CACHE_CONTROL);
    r
}

/// The request as a cache key (path and query) and its `If-None-Match`.
#[derive(Debug)]
pub struct CacheCtx {
    pub request: Box<str>,
    pub if_none_match: Option<HeaderValue>,
    /// A warming request after a failover of the shared level: its answer is stored there
    /// even when this node's memory had it.
    pub refill_shared: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for CacheCtx {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<CacheCtx, Infallible> {
        Ok(CacheCtx {
            request: parts.uri.path_and_query().map_or("", |p| p.as_str()).into(),
            if_none_match: parts.headers.get(header::IF_NONE_MATCH).cloned(),
            refill_shared: parts
                .extensions
                .get::<crate::auth::Warming>()
                .is_some_and(|w| w.refill_shared),
        })
    }
}

/// The response for a cached entry: 304 when the client has it, else the JSON body.
pub fn respond(entry: &Cached, if_none_match: Option<&HeaderValue>) -> Response {
    if matches(if_none_match, &entry.etag) {
        return not_modified(entry.etag.clone());
    }
    let mut r = Response::new(Body::from(entry.body.clone()));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::ETAG, entry.etag.clone());
    h.insert(header::CACHE_CONTROL, CACHE_CONTROL);
    r
}

pub async fn etag(req: Request, next: Next) -> Response {
    if req.method() != Method::GET {
        return next.run(req).await;
    }
    let if_none_match = req.headers().get(header::IF_NONE_MATCH).cloned();
    let res = next.run(req).await;
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if res.status() != StatusCode::OK || !is_json || res.headers().contains_key(header::ETAG) {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let bytes = match to_bytes(body, MAX_TAGGED_BODY).await {
        Ok(b) => b,
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    let etag = tag(&bytes);
    if matches(if_none_match.as_ref(), &etag) {
        return not_modified(etag);
    }
    parts.headers.insert(header::ETAG, etag);
    parts.headers.insert(header::CACHE_CONTROL, CACHE_CONTROL);
    Response::from_parts(parts, Body::from(bytes))
}
