//! The API's error shape: `{"error": {"code", "message", "details": [...]}}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use vcci_core::LineError;

/// An error answered to a client. Internal causes are logged, never sent.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Vec<Value>,
    /// Extra response headers (e.g. `retry-after`).
    pub headers: Vec<(&'static str, String)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            details: Vec::new(),
            headers: Vec::new(),
        }
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn not_found(what: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{} not found", what.into()),
        )
    }
    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid API key is required: Authorization: Bearer <key>",
        )
    }
    pub fn forbidden(needed: &str) -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this action needs the {needed} role"),
        )
    }
    /// A 500 whose cause is logged here and not shown to the client.
    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        tracing::error!(cause = %cause, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> ApiError {
        self.headers.push((name, value.into()));
        self
    }
    pub fn with_details(mut self, details: Vec<Value>) -> ApiError {
        self.details = details;
        self
    }
}

/// The JSON of one line's error, with the JSON path of the failing field.
pub fn line_error_json(prefix: &str, errs: &[LineError]) -> Value {
    let first = errs.first();
    json!({
        "code": first.map_or("invalid_line", |e| e.code),
        "message": errs.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
        "details": errs.iter().map(|e| json!({
            "path": if e.field.is_empty() { prefix.to_owned() } else { format!("{prefix}.{}", e.field) },
            "message": e.message,
        })).collect::<Vec<_>>(),
    })
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body =
            json!({"error": {"code": self.code, "message": self.message, "details": self.details}});
        let mut res = (self.status, Json(body)).into_response();
        for (name, value) in self.headers {
            if let Ok(v) = axum::http::HeaderValue::from_str(&value) {
                res.headers_mut().insert(name, v);
            }
        }
        res
    }
}

impl From<vcci_store::StoreError> for ApiError {
    /// By the kind of the store's error: the caller's input 400 (naming the field), not
    /// found 404, a conflict with stored data 409, a database that is away, busy or too slow
    /// (or a transaction to retry) 503, and anything else a generic 500.
    fn from(e: vcci_store::StoreError) -> ApiError {
        use vcci_store::StoreError as E;
        match e {
            E::NotFound(what) => ApiError::not_found(what),
            E::Invalid { field, message } => {
                let details = vec![json!({"path": field, "message": message})];
                ApiError::bad_request("invalid", message).with_details(details)
            }
            // A deadlock or serialization failure: the same request will likely succeed.
            e if e.is_retryable() => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the write met a concurrent one; retry shortly",
            )
            .with_header("retry-after", "1"),
            // The database's own message names constraints: logged, not shown.
            E::Conflict { message, sqlstate } => {
                let shown = match sqlstate {
                    Some(_) => {
                        tracing::warn!(cause = %message, "write conflict");
                        "the write conflicts with stored data".to_owned()
                    }
                    None => message,
                };
                ApiError::new(StatusCode::CONFLICT, "conflict", shown)
            }
            E::PeriodClosed { year, message } => {
                ApiError::new(StatusCode::CONFLICT, "period_closed", message)
                    .with_details(vec![json!({"path": "period", "message": year.to_string()})])
            }
            // The database restarted, is unreachable or refuses connections: worth a retry.
            E::Unavailable(cause) => {
                tracing::warn!(cause = %cause, "database unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the database is unavailable; retry shortly",
                )
                .with_header("retry-after", "1")
            }
            E::Timeout(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                "the database did not answer in time",
            ),
            other => ApiError::internal(other),
        }
    }
}

/// A header value that is always valid (ASCII without controls).
pub(crate) fn header(s: &str) -> axum::http::HeaderValue {
    axum::http::HeaderValue::from_str(s)
        .unwrap_or_else(|_| axum::http::HeaderValue::from_static("invalid"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vcci_store::StoreError;

    #[test]
    fn store_errors_are_answered_by_their_kind() {
        let e = ApiError::from(StoreError::invalid("org", "'a b' is not a valid name"));
        assert_eq!((e.status, e.code), (StatusCode::BAD_REQUEST, "invalid"));
        assert_eq!(e.details[0]["path"], "org");
        let e = ApiError::from(StoreError::NotFound("line 'x'".into()));
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        let e = ApiError::from(StoreError::Conflict {
            message: "duplicate key value violates unique constraint \"k\" (23505)".into(),
            sqlstate: Some("23505".into()),
        });
        assert_eq!(e.status, StatusCode::CONFLICT);
        assert!(!e.message.contains("constraint"), "{}", e.message);
        let e = ApiError::from(StoreError::Conflict {
            message: "deadlock detected (40P01)".into(),
            sqlstate: Some("40P01".into()),
        });
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(e.headers.iter().any(|(h, _)| *h == "retry-after"));
        let e = ApiError::from(StoreError::Timeout("canceling statement (57014)".into()));
        assert_eq!(
            (e.status, e.code),
            (StatusCode::SERVICE_UNAVAILABLE, "timeout")
        );
        let e = ApiError::from(StoreError::Corrupt("a stored line's body".into()));
        assert_eq!(
            (e.status, e.code),
            (StatusCode::INTERNAL_SERVER_ERROR, "internal")
        );
        assert_eq!(e.message, "internal error");
    }
}
