//! Request extractors: the authenticated `Caller` (which needs the node's state), and JSON
//! bodies whose rejections are answered in the API's error shape.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;

use crate::app::App;
use crate::auth::Caller;
use crate::error::ApiError;

impl FromRequestParts<Arc<App>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Caller, ApiError> {
        // The node's own cache warming (an extension: never on a request from the network).
        if let Some(w) = parts.extensions.get::<crate::auth::Warming>() {
            return Ok(w.caller.clone());
        }
        let key = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|k| !k.is_empty() && k.len() <= 256)
            .ok_or_else(ApiError::unauthorized)?
            .to_owned();
        let (mut caller, key_id) = app.authenticate(key).await?;
        // The request's span names the organization (never the key).
        crate::telemetry::current_attribute("vcci.org_id", caller.org.id.0);
        if let Err(e) = app.rate_check(key_id).await {
            app.metrics.rate_limited();
            return Err(e);
        }
        // Set by the request-id middleware, which runs first.
        caller.request_id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(caller)
    }
}

/// A JSON request body. axum's own `Json` answers a bad body in plain text (415, 422, 400);
/// this answers it as the API's JSON error: 415 `unsupported_media_type` without
/// `Content-Type: application/json`, 413 `payload_too_large` past the body limit, and 400
/// `invalid_json` (not JSON) or `invalid_body` (JSON of another shape, with serde's
/// location of the first problem).
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonBody<T>(pub T);

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(JsonBody(v)),
            Err(r) => Err(json_rejection(r)),
        }
    }
}

fn json_rejection(r: JsonRejection) -> ApiError {
    let text = r.body_text();
    match r {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be JSON, sent with Content-Type: application/json",
        ),
        JsonRejection::JsonSyntaxError(_) => ApiError::bad_request("invalid_json", text),
        JsonRejection::JsonDataError(_) => ApiError::bad_request("invalid_body", text),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", text)
        }
        other => ApiError::bad_request("invalid_body", other.body_text()),
    }
}
