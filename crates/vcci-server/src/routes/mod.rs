//! Routes, one module per resource, registered with their OpenAPI descriptions.

use std::sync::Arc;

use axum::Router;

use crate::App;
use crate::openapi::Api;

mod admin;
mod audit;
mod calculate;
mod classification;
mod dashboard;
mod events;
mod exports;
mod factors;
mod footprints;
mod health;
pub(crate) mod imports;
mod metrics;
pub(crate) mod periods;
mod reporting;
pub(crate) mod reports;
mod resolution;
pub(crate) mod summary;
mod suppliers;
pub(crate) mod transactions;

/// Every documented route.
pub fn api() -> Api {
    let api = Api::default();
    let api = health::api(api);
    let api = admin::api(api);
    let api = transactions::api(api);
    let api = exports::api(api);
    let api = suppliers::api(api);
    let api = resolution::api(api);
    let api = footprints::api(api);
    let api = summary::api(api);
    let api = factors::api(api);
    let api = calculate::api(api);
    let api = imports::api(api);
    let api = periods::api(api);
    let api = classification::api(api);
    let api = reporting::api(api);
    let api = audit::api(api);
    let api = events::api(api);
    reports::api(api)
}

/// The OpenAPI document of this build's router, rendered once.
pub fn rendered_openapi() -> &'static axum::body::Bytes {
    static DOC: std::sync::OnceLock<axum::body::Bytes> = std::sync::OnceLock::new();
    DOC.get_or_init(|| {
        let api = api();
        serde_json::to_vec_pretty(&crate::openapi::document(&api.ops))
            .expect("the document serializes")
            .into()
    })
}

/// The router: the documented API plus the docs page's static assets.
pub fn router() -> Router<Arc<App>> {
    api()
        .router
        .merge(health::assets())
        .merge(crate::pact::router())
        .merge(dashboard::router())
}
