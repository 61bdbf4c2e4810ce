//! vcci-server: the HTTP API of ../shared/API.md on axum.
//!
//! Belongs here: the `App` state, the router, the API error shape, authentication, routes.
//!
//! The modules are layers (`scripts/check-module-cycles.py` checks that none import each
//! other): components that know no state (`error`, `list`, `cursor`, `cache`,
//! `conditional`, `ratelimit`, `shared`, `live`, `metrics`, `perf`, `auth`, `input`,
//! `group_commit`, `job_view`, `client_tls`, `telemetry`, `openapi`'s types) under `app` (the node's state), under what uses it
//! (`extract`, `middleware`, `jobs`, `routes`), under `server` (router, serve, background
//! work).
//! Not here: calculation (vcci-core) and storage (vcci-store). Database work runs on
//! blocking threads through `App::db`, because the store is synchronous (rusqlite, postgres).

#![recursion_limit = "512"]
#![forbid(unsafe_code)]

mod app;
mod auth;
pub mod cache;
mod client_tls;
mod conditional;
mod cursor;
mod error;
mod extract;
mod group_commit;
mod input;
mod job_view;
mod jobs;
mod list;
pub mod live;
pub mod metrics;
mod middleware;
pub mod openapi;
pub mod pact;
pub mod pact_client;
pub mod pact_events;
pub mod pact_sync;
pub mod perf;
pub mod profile;
mod ratelimit;
mod routes;
mod server;
pub mod shared;
pub mod telemetry;
mod warm;

pub use app::{App, AppConfig};
pub use auth::Caller;
pub use cursor::CursorKey;
pub use error::ApiError;
pub use ratelimit::RateLimit;
pub use routes::periods::corrections_from_json;
pub use server::{Background, build_app, serve, serve_tls, tls_config};
pub use warm::{WARM_PATHS, WarmReport};
