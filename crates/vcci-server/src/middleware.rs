//! Middleware of every request, assembled by `server::build_app`: the request id, the
//! request timeout, and the request's metrics.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use tracing::Instrument;

use crate::app::App;
use crate::error::{ApiError, header};

/// Counts and times each request under its matched route.
pub async fn track(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    // MatchedPath is a shared string: cloning it does not allocate.
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let method = req.method().clone();
    let started = Instant::now();
    app.metrics.in_flight.fetch_add(1, Ordering::Relaxed);
    let res = next.run(req).await;
    app.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
    app.metrics.record(
        matched.as_ref().map_or("unmatched", |p| p.as_str()),
        &method,
        res.status(),
        started.elapsed().as_secs_f64(),
    );
    res
}

/// Answers 503 `timeout` when a request takes longer than the configured timeout. CSV
/// uploads are exempt: they stream for as long as the file takes.
pub async fn timeout(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    if req.method() == Method::POST && req.uri().path() == "/api/v1/imports" {
        return next.run(req).await;
    }
    match tokio::time::timeout(app.config.request_timeout, next.run(req)).await {
        Ok(r) => r,
        Err(_) => {
            app.metrics.timeouts.fetch_add(1, Ordering::Relaxed);
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                format!(
                    "the request took longer than {} s",
                    app.config.request_timeout.as_secs_f64()
                ),
            )
            .into_response()
        }
    }
}

/// `X-Request-Id`: the client's when it is a sane token, else a new one; echoed on the response.
pub async fn request_id(mut req: Request, next: Next) -> Response {
    static PREFIX: OnceLock<String> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let given = req
        .headers()
        .get("x-request-id")
        .filter(|v| {
            let b = v.as_bytes();
            !b.is_empty()
                && b.len() <= 128
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        })
        .cloned();
    let id = given.unwrap_or_else(|| {
        let prefix = PREFIX.get_or_init(|| {
            let mut b = [0u8; 6];
            let _ = getrandom::fill(&mut b);
            b.iter().map(|x| format!("{x:02x}")).collect()
        });
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        header(&format!("{prefix}-{n:x}"))
    });
    req.headers_mut().insert("x-request-id", id.clone());
    // The request's span: every log line of the request carries its id. With tracing on
    // (telemetry.rs) it is also the trace's server span, a child of the caller's
    // `traceparent`, whose attributes (the organization, the cache level, the rows) are set
    // as they are learnt.
    let request_id = id.to_str().unwrap_or_default();
    let mut res = if crate::telemetry::enabled() {
        let route = req
            .extensions()
            .get::<MatchedPath>()
            .map_or("unmatched", |p| p.as_str());
        let span = tracing::info_span!(
            "request",
            request_id,
            otel.name = %format_args!("{} {route}", req.method()),
            otel.kind = "server",
        );
        crate::telemetry::attribute(&span, "http.request.method", req.method().to_string());
        crate::telemetry::attribute(&span, "http.route", route.to_owned());
        crate::telemetry::continue_from(&span, req.headers());
        let res = next.run(req).instrument(span.clone()).await;
        crate::telemetry::attribute(
            &span,
            "http.response.status_code",
            i64::from(res.status().as_u16()),
        );
        if res.status().is_server_error() {
            crate::telemetry::failed(&span);
        }
        res
    } else {
        let span = tracing::info_span!("request", request_id);
        next.run(req).instrument(span).await
    };
    res.headers_mut().insert("x-request-id", id);
    res
}
