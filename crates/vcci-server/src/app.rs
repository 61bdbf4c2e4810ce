//! The application state, the router and the serve seam used by `vcci serve` and by tests.

use std::future::Future;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use vcci_store::{Db, Store, StoreError};

use crate::ratelimit::RateLimiter;
use crate::{ApiError, CursorKey, RateLimit};

/// Shared state of one API node.
#[derive(Debug)]
pub struct App {
    pool: Arc<Pool>,
    cursors: CursorKey,
    limiter: RateLimiter,
}

#[derive(Debug)]
struct Pool {
    store: Store,
    idle: Mutex<Vec<Db>>,
    /// One permit per connection: at most this many database calls run at once.
    permits: Arc<tokio::sync::Semaphore>,
}

/// Largest accepted JSON body (10,000 lines of a batch upsert fit well within it).
pub const MAX_JSON_BODY: usize = 16 << 20;

impl App {
    /// State over `store` with `pool_size` database connections.
    pub fn new(store: Store, pool_size: usize, limit: RateLimit) -> Result<Arc<App>, StoreError> {
        let cursors = CursorKey::new(store.connect()?.secret("cursor")?);
        Ok(Arc::new(App {
            pool: Arc::new(Pool {
                store,
                idle: Mutex::new(Vec::new()),
                permits: Arc::new(tokio::sync::Semaphore::new(pool_size.max(1))),
            }),
            cursors,
            limiter: RateLimiter::new(limit),
        }))
    }

    pub(crate) fn limiter(&self) -> &RateLimiter {
        &self.limiter
    }

    /// The key that signs this deployment's pagination cursors.
    pub fn cursors(&self) -> &CursorKey {
        &self.cursors
    }

    /// Runs `f` with a database connection on a blocking thread (the store is synchronous).
    /// At most `pool size` run at once, so connections (and their page caches) are reused
    /// rather than opened per request: measured, opening connections under 64 concurrent
    /// requests cut a summary's throughput to ~160 req/s.
    pub async fn db<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db) -> Result<T, StoreError> + Send + 'static,
    {
        let permit = Arc::clone(&self.pool.permits)
            .acquire_owned()
            .await
            .map_err(ApiError::internal)?;
        let pool = Arc::clone(&self.pool);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let popped = pool
                .idle
                .lock()
                .map_err(|_| StoreError::Invalid("connection pool poisoned".into()))?
                .pop();
            let mut db = match popped {
                Some(db) => db,
                None => pool.store.connect()?,
            };
            let out = f(&mut db);
            if let Ok(mut idle) = pool.idle.lock() {
                idle.push(db);
            }
            out
        })
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::from)
    }
}

/// The whole HTTP API over `app`.
pub fn build_app(app: Arc<App>) -> Router {
    crate::routes::router()
        .fallback(|| async { ApiError::not_found("route") })
        .layer(axum::middleware::from_fn(crate::conditional::etag))
        // Outside the ETag layer: tags are computed on the identity body, and being weak
        // they stand for every content-coding.
        .layer(
            tower_http::compression::CompressionLayer::new()
                .compress_when(tower_http::compression::predicate::SizeAbove::new(1024)),
        )
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .with_state(app)
}

/// Serves `router` on `listener` until `shutdown` completes, then finishes in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
