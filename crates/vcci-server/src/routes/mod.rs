//! Routes, one module per resource, merged here.

use std::sync::Arc;

use axum::Router;

use crate::App;

mod calculate;
mod factors;
mod health;
mod summary;
mod suppliers;
mod transactions;

pub fn router() -> Router<Arc<App>> {
    Router::new()
        .merge(health::router())
        .merge(transactions::router())
        .merge(suppliers::router())
        .merge(summary::router())
        .merge(summary::reports_router())
        .merge(factors::router())
        .merge(calculate::router())
}
