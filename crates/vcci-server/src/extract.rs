//! Request extractors that need the node's state: the authenticated `Caller`.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::app::App;
use crate::auth::Caller;
use crate::error::ApiError;

impl FromRequestParts<Arc<App>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Caller, ApiError> {
        let key = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|k| !k.is_empty() && k.len() <= 256)
            .ok_or_else(ApiError::unauthorized)?
            .to_owned();
        let (caller, key_id) = app.authenticate(key).await?;
        if let Err(e) = app.rate_check(key_id).await {
            app.metrics.rate_limited();
            return Err(e);
        }
        Ok(caller)
    }
}
