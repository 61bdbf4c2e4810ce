//! The web dashboard at `/`: static assets embedded in the binary (Chart.js 4.4.1 vendored
//! from npm, MIT, licence beside it). It uses the public API only.

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::App;

/// Scripts and styles from this origin only; API calls to this origin only; no framing.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn asset(body: &'static [u8], ty: &'static str, cache: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(ty)),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ],
        body,
    )
        .into_response()
}

pub fn router() -> Router<Arc<App>> {
    // The page and the app's own files are revalidated on every load (they change with
    // the binary); the chart library is versioned and cached for a day.
    Router::new()
        .route(
            "/",
            get(|| async {
                asset(
                    include_bytes!("../../assets/dashboard/index.html"),
                    "text/html; charset=utf-8",
                    "no-cache",
                )
            }),
        )
        .route(
            "/ui/app.js",
            get(|| async {
                asset(
                    include_bytes!("../../assets/dashboard/app.js"),
                    "text/javascript; charset=utf-8",
                    "no-cache",
                )
            }),
        )
        .route(
            "/ui/app.css",
            get(|| async {
                asset(
                    include_bytes!("../../assets/dashboard/app.css"),
                    "text/css; charset=utf-8",
                    "no-cache",
                )
            }),
        )
        .route(
            "/ui/chart.umd.js",
            get(|| async {
                asset(
                    include_bytes!("../../assets/dashboard/chart.umd.js"),
                    "text/javascript; charset=utf-8",
                    "public, max-age=86400",
                )
            }),
        )
        .route(
            "/ui/chart.js-LICENSE.md",
            get(|| async {
                asset(
                    include_bytes!("../../assets/dashboard/chart.js-LICENSE.md"),
                    "text/plain; charset=utf-8",
                    "public, max-age=86400",
                )
            }),
        )
}
