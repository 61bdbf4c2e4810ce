//! API-key authentication: `Authorization: Bearer <key>`, verified against the stored hash
//! (then remembered for a minute by the SHA-256 of the key; revocations clear that memory).

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use vcci_store::model::keys::Role;
use vcci_store::{Org, OrgId};

use crate::{ApiError, App};

/// The authenticated caller: one organization and one role.
#[derive(Debug, Clone)]
pub struct Caller {
    pub org: Org,
    pub role: Role,
}

impl Caller {
    /// 403 unless the caller's role is at least `role` (viewer < analyst < admin).
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(ApiError::forbidden(role.as_str()))
        }
    }

    pub fn org_id(&self) -> OrgId {
        self.org.id
    }
}

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
