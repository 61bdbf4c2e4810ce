//! vcci-server: the HTTP API of ../shared/API.md on axum.
//!
//! Belongs here: the `App` state, the router, the API error shape, authentication, routes.
//! Not here: calculation (vcci-core) and storage (vcci-store). Database work runs on
//! blocking threads through `App::db`, because the store is synchronous (rusqlite, postgres).

#![forbid(unsafe_code)]

mod app;
mod auth;
pub mod cache;
mod conditional;
mod cursor;
mod error;
mod jobs;
mod list;
pub mod metrics;
pub mod openapi;
pub mod perf;
mod ratelimit;
mod routes;
pub mod shared;

pub use app::{App, AppConfig, Background, build_app, serve};
pub use auth::Caller;
pub use cursor::CursorKey;
pub use error::ApiError;
pub use ratelimit::RateLimit;
