//! The application state of one API node: its connection pool and database calls, the
//! response cache and the freshness of what it serves (generations, across nodes through
//! Redis), verified keys, rate limits, metrics. It knows no route: `routes` and `jobs`
//! use it, and `server.rs` builds the router and starts the background work over it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::response::Response;
use serde::Serialize;
use vcci_store::{Db, OrgId, Store, StoreError};

use crate::auth::KeyCache;
use crate::cache::{CacheConfig, CacheKey, Cached, Generations, ResponseCache};
use crate::conditional::CacheCtx;
use crate::group_commit::GroupCommit;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use crate::{ApiError, Caller, CursorKey, RateLimit};

/// Settings of one API node.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// Database connections (and so database calls running at once).
    pub pool_size: usize,
    pub rate_limit: RateLimit,
    pub cache: CacheConfig,
    /// A request that takes longer is answered 503 `timeout` (uploads and exports excepted:
    /// they stream).
    pub request_timeout: Duration,
    /// Largest CSV accepted by `POST /api/v1/imports`.
    pub max_import_bytes: u64,
    /// How often other processes' writes and key revocations are picked up.
    pub poll_interval: Duration,
    /// A running job whose heartbeat is older than this is taken to be orphaned (its node
    /// died) and is queued again.
    pub job_stale: Duration,
    /// PostgreSQL: an import job of at least this many bytes into an organization without
    /// lines is written as a first load (`ImportOptions::first_load_in_bulk`).
    pub bulk_load_bytes: u64,
    /// Database calls slower than this are logged (stderr, one JSON line) and listed in the
    /// performance report.
    pub slow_query: Duration,
    /// Redis, shared by the nodes of a deployment (second cache level, generations, rate
    /// limits, events). None: everything stays in process (one node, or nodes that learn
    /// each other's writes from the database poll).
    pub redis: Option<crate::shared::RedisConfig>,
    /// Cache warming (`warm.rs`): the most active organizations warmed at start and after a
    /// failover of the shared level (0: none), and the time a warming may take.
    pub warm_orgs: usize,
    pub warm_timeout: Duration,
    /// PACT routes over plain HTTP are accepted: a TLS proxy sits in front
    /// (`--pact-behind-tls-proxy`). Off: they need the node's own TLS.
    pub pact_behind_tls_proxy: bool,
    /// The URL customers reach this node at (PACT pagination links and discovery); none:
    /// the request's scheme and Host.
    pub public_url: Option<String>,
    /// The PACT client's timeouts, retries, breaker and trust.
    pub pact_http: crate::pact_client::HttpConfig,
    /// The key PACT connection secrets are sealed with (`VCCI_SECRET_KEY`); none: connections
    /// cannot be created or synced on this node.
    pub secret_key: Option<Arc<vcci_store::secretbox::SecretKey>>,
    /// `GET /api/v1/admin/profile` may sample the process (`--profiling`); off by default.
    pub profiling: bool,
    /// Live updates (`GET /api/v1/events`): the heartbeat of an idle stream, and the most
    /// streams this node holds open (beyond: 503 `too_many_streams`).
    pub events_heartbeat: Duration,
    pub events_max_streams: u64,
}

impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            pool_size: 4,
            rate_limit: RateLimit::default(),
            cache: CacheConfig::default(),
            request_timeout: Duration::from_secs(30),
            max_import_bytes: 4 << 30,
            poll_interval: Duration::from_millis(250),
            job_stale: Duration::from_secs(30),
            bulk_load_bytes: vcci_store::import::BULK_LOAD_BYTES,
            slow_query: Duration::from_millis(100),
            redis: None,
            warm_orgs: 0,
            warm_timeout: Duration::from_secs(10),
            pact_behind_tls_proxy: false,
            public_url: None,
            pact_http: crate::pact_client::HttpConfig::default(),
            secret_key: None,
            profiling: false,
            events_heartbeat: Duration::from_secs(15),
            events_max_streams: 50_000,
        }
    }
}

/// Shared state of one API node.
#[derive(Debug)]
pub struct App {
    pool: Arc<Pool>,
    cursors: CursorKey,
    limiter: RateLimiter,
    pub(crate) config: AppConfig,
    pub(crate) cache: ResponseCache,
    pub(crate) generations: Generations,
    /// Verified keys, remembered for a while.
    keys: KeyCache,
    pub(crate) metrics: Metrics,
    /// Wakes the job worker when a job is queued.
    pub(crate) jobs_queued: tokio::sync::Notify,
    /// Set when the node is shutting down: workers stop at their next batch boundary.
    pub(crate) stopping: Arc<AtomicBool>,
    /// Set while the start's cache warming runs (`/ready` says `warming`).
    pub(crate) warming: AtomicBool,
    /// This node's name in job claims.
    pub(crate) node: String,
    /// API writes take turns here (first come, first served) instead of all contending for
    /// SQLite's write lock from pool threads.
    pub(crate) writes: tokio::sync::Semaphore,
    /// Batch upserts waiting for the write turn (written together: group commit).
    pub(crate) group_commit: GroupCommit,
    /// Redis, when configured.
    pub(crate) redis: Option<Arc<crate::shared::Shared>>,
    /// The generation of each organization this node last stored in Redis (from the
    /// database poll: writes of processes that do not talk to Redis, like `vcci import`).
    pushed: Mutex<HashMap<i64, u64>>,
    /// The one pooled HTTP client of the PACT side, with its breakers and series.
    pub(crate) pact_http: Arc<crate::pact_client::PactHttp>,
    /// Set while a CPU profile is being taken (one at a time).
    pub(crate) profiling: AtomicBool,
    /// Live updates: the organizations' events on this node (`GET /api/v1/events`).
    pub(crate) live: Arc<crate::live::Hub>,
    /// Organizations whose review queue size to read again for their streams.
    pub(crate) review_sizes: crate::live::ReviewSizes,
}

#[derive(Debug)]
struct Pool {
    store: Store,
    idle: Mutex<Vec<Db>>,
    /// One permit per connection: at most this many database calls run at once.
    permits: Arc<tokio::sync::Semaphore>,
    /// `db.system.name` of the database spans.
    system: &'static str,
}

/// Largest accepted JSON body (10,000 lines of a batch upsert fit well within it).
pub const MAX_JSON_BODY: usize = 16 << 20;

impl App {
    /// State over `store`.
    pub fn new(store: Store, config: AppConfig) -> Result<Arc<App>, StoreError> {
        // On a thread of its own: this may be called from async code, where the PostgreSQL
        // client (which blocks on a runtime of its own) may not run.
        let (db, secret, g) = std::thread::scope(|s| {
            s.spawn(|| {
                let mut db = store.connect()?;
                db.finish_migrations()?;
                let secret = db.secret("cursor")?;
                let g = db.generations()?;
                Ok::<_, StoreError>((db, secret, g))
            })
            .join()
            .map_err(|_| StoreError::internal("opening the database panicked"))?
        })?;
        let cursors = CursorKey::new(secret);
        let generations = Generations::default();
        for (org, n) in g.orgs {
            generations.observe(org.0, n);
        }
        generations.observe_revocations(g.revoked_keys);
        let mut node = [0u8; 6];
        getrandom::fill(&mut node)
            .map_err(|e| StoreError::internal(format!("no randomness: {e}")))?;
        let redis = config
            .redis
            .clone()
            .map(|c| crate::shared::Shared::new(c).map(Arc::new))
            .transpose()
            .map_err(|e| StoreError::invalid("redis_url", e))?;
        let pact_http = crate::pact_client::PactHttp::new(config.pact_http.clone())
            .map_err(|e| StoreError::invalid("pact_ca_file", e))?;
        Ok(Arc::new(App {
            pact_http: Arc::new(pact_http),
            profiling: AtomicBool::new(false),
            live: Arc::new(crate::live::Hub::new()),
            review_sizes: crate::live::ReviewSizes::default(),
            pool: Arc::new(Pool {
                system: match store.dialect() {
                    vcci_store::Dialect::Sqlite => "sqlite",
                    vcci_store::Dialect::Postgres => "postgresql",
                },
                store,
                idle: Mutex::new(vec![db]),
                permits: Arc::new(tokio::sync::Semaphore::new(config.pool_size.max(1))),
            }),
            cursors,
            limiter: RateLimiter::new(config.rate_limit),
            cache: ResponseCache::new(config.cache),
            generations,
            keys: KeyCache::default(),
            metrics: Metrics::default(),
            jobs_queued: tokio::sync::Notify::new(),
            stopping: Arc::new(AtomicBool::new(false)),
            warming: AtomicBool::new(false),
            writes: tokio::sync::Semaphore::new(1),
            group_commit: GroupCommit::default(),
            redis,
            pushed: Mutex::new(HashMap::new()),
            node: format!(
                "{}-{}",
                std::process::id(),
                node.iter().map(|b| format!("{b:02x}")).collect::<String>()
            ),
            config,
        }))
    }

    /// The Redis link, when configured.
    pub fn redis(&self) -> Option<&Arc<crate::shared::Shared>> {
        self.redis.as_ref()
    }

    pub(crate) fn store(&self) -> &Store {
        &self.pool.store
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
        self.db_named(query_name::<F>(), f).await
    }

    /// `db` under `name` (its metrics, its span, the slow-call log).
    async fn db_named<T, F>(&self, name: &'static str, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db) -> Result<T, StoreError> + Send + 'static,
    {
        let permit = Arc::clone(&self.pool.permits)
            .acquire_owned()
            .await
            .map_err(ApiError::internal)?;
        let pool = Arc::clone(&self.pool);
        // The span the call runs in on the blocking thread, so that its log lines carry the
        // request's id: the request's (or job's) own, or, when traced, a database span as its
        // child. A call outside any span (a background poll) makes no trace.
        let current = tracing::Span::current();
        let traced = crate::telemetry::enabled() && !current.is_none();
        let span = if traced {
            tracing::debug_span!("db", otel.name = name, db.system.name = self.pool.system)
        } else {
            current
        };
        let in_call = span.clone();
        let out = tokio::task::spawn_blocking(move || {
            let _span = in_call.enter();
            let _permit = permit;
            let popped = pool
                .idle
                .lock()
                .map_err(|_| StoreError::internal("connection pool poisoned"))?
                .pop();
            let mut db = match popped {
                Some(db) => db,
                None => pool.store.connect()?,
            };
            let started = Instant::now();
            let out = f(&mut db);
            let took = started.elapsed();
            // A connection the server closed (a restart) is dropped, and so are the idle
            // ones: they were opened to the same server and only find out when next used.
            // Later calls open fresh connections, so the pool heals by itself.
            if db.is_broken() {
                if let Ok(mut idle) = pool.idle.lock() {
                    idle.clear();
                }
            } else if let Ok(mut idle) = pool.idle.lock() {
                idle.push(db);
            }
            Ok::<_, StoreError>((out, took))
        })
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::from)?;
        let (out, took) = out;
        if traced && out.is_err() {
            crate::telemetry::failed(&span);
        }
        drop(span);
        self.metrics.db_call(name, took);
        if took >= self.config.slow_query {
            self.metrics.recent.slow_query(name, took);
            tracing::warn!(
                query = name,
                ms = took.as_secs_f64() * 1000.0,
                ok = out.is_ok(),
                "slow database call"
            );
        }
        out.map_err(ApiError::from)
    }

    /// `db` for a write to `org`'s data: afterwards this node knows the organization's new
    /// generation, so its next read of that organization misses the cache.
    pub async fn db_write<T, F>(&self, org: OrgId, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db) -> Result<T, StoreError> + Send + 'static,
    {
        let _turn = self.writes.acquire().await.map_err(ApiError::internal)?;
        let (out, g) = self
            .db_named(query_name::<F>(), move |db| {
                let out = f(db);
                let g = db.generation(org)?;
                Ok((out, g))
            })
            .await?;
        self.observe_write(org, g).await;
        out.map_err(ApiError::from)
    }

    /// After this node's write to `org` committed at generation `g`: this node and (through
    /// Redis, before the writer is answered) every other node serve nothing older.
    pub(crate) async fn observe_write(&self, org: OrgId, g: u64) {
        self.observe_generation(org.0, g);
        if let Some(r) = &self.redis {
            r.publish_generation(org.0, g).await;
        }
    }

    /// This node learnt that `org`'s data is at generation `g` (its own write, another
    /// node's through Redis, another process's from the poll): when that is news, its
    /// streams get a `data` event.
    pub(crate) fn observe_generation(&self, org: i64, g: u64) {
        if self.generations.observe(org, g) {
            self.live
                .emit(org, "data", format!("{{\"generation\":{g}}}"));
            if self.live.has_streams(org) {
                self.review_sizes.mark(org);
            }
        }
    }

    /// A job was queued: wake this node's worker and, through Redis, the others'; the
    /// organization's streams see it queued.
    pub(crate) async fn job_queued(&self, org: OrgId, jobs: &[String]) {
        // Read before any worker is woken, so that the event usually shows it queued (a
        // worker's own idle check may still have claimed it: the event shows the job as it
        // is when read).
        for job in jobs {
            self.job_changed(org, job).await;
        }
        self.jobs_queued.notify_one();
        if let Some(r) = &self.redis {
            r.publish(crate::shared::Event::JobQueued).await;
        }
    }

    /// The organization's streams (on every node) get the job as it now is.
    pub(crate) async fn job_changed(&self, org: OrgId, job: &str) {
        let id = job.to_owned();
        match self.db(move |db| db.get_job(org, &id)).await {
            Ok(Some(j)) => self.live_event(org, "job", crate::job_view::job_event(&j)),
            Ok(None) => {}
            Err(e) => tracing::warn!(job, error = %e.message, "reading a job for its event"),
        }
    }

    /// A `job` or `period` event of `org`: to this node's streams, and through Redis to
    /// the other nodes'.
    pub(crate) fn live_event(&self, org: OrgId, kind: &'static str, data: serde_json::Value) {
        self.live
            .emit_shared(org.0, kind, data.to_string(), self.redis.is_some());
    }

    /// The generation a read of `org` must be served at: this node's, or a newer one that
    /// another node stored in Redis.
    async fn current_generation(&self, org: OrgId) -> u64 {
        let mine = self.generations.get(org.0);
        if let Some(r) = &self.redis
            && let Some(g) = r.generation(org.0).await
            && g > mine
        {
            self.observe_generation(org.0, g);
            return g;
        }
        mine
    }

    /// A JSON GET served through the response cache: `compute` runs on a miss only; the
    /// answer carries its ETag, and a matching `If-None-Match` gets 304.
    pub async fn cached<T, F>(&self, org: OrgId, ctx: CacheCtx, compute: F) -> Response
    where
        T: Serialize,
        F: Future<Output = Result<T, ApiError>>,
    {
        let generation = self.current_generation(org).await;
        self.cached_at(org, generation, ctx, compute).await
    }

    /// `cached` for answers that do not depend on the organization's data (the factor
    /// catalogue): writes do not retire them. Still one entry per organization (their
    /// cursors are signed per organization).
    pub async fn cached_static<T, F>(&self, org: OrgId, ctx: CacheCtx, compute: F) -> Response
    where
        T: Serialize,
        F: Future<Output = Result<T, ApiError>>,
    {
        self.cached_at(org, u64::MAX, ctx, compute).await
    }

    async fn cached_at<T, F>(
        &self,
        org: OrgId,
        generation: u64,
        ctx: CacheCtx,
        compute: F,
    ) -> Response
    where
        T: Serialize,
        F: Future<Output = Result<T, ApiError>>,
    {
        let key = CacheKey {
            org: org.0,
            generation,
            request: ctx.request,
        };
        let redis = self.redis.as_ref();
        let l2_key = redis.map(|_| key.clone());
        let refill = redis.filter(|_| ctx.refill_shared).zip(l2_key.clone());
        // Where the answer came from, for the request's span: this node's cache unless the
        // computation below runs.
        let level = std::sync::atomic::AtomicU8::new(LEVEL_L1);
        let entry = self
            .cache
            .get_or_compute(key, async {
                // Second level: another node may have computed it at this generation.
                if let (Some(r), Some(k)) = (redis, &l2_key)
                    && let Some(hit) = r.cache_get(k).await
                {
                    level.store(LEVEL_L2, Ordering::Relaxed);
                    return Ok(hit);
                }
                level.store(LEVEL_MISS, Ordering::Relaxed);
                let value = compute.await?;
                let mut body = Vec::with_capacity(16 << 10);
                serde_json::to_writer(&mut body, &value).map_err(ApiError::internal)?;
                let etag = crate::conditional::tag(&body);
                let cached = Cached {
                    body: body.into(),
                    etag,
                };
                if let (Some(r), Some(k)) = (redis, &l2_key) {
                    r.cache_put(k, &cached, self.config.cache.ttl);
                }
                Ok::<_, ApiError>(cached)
            })
            .await;
        if let (Some((r, k)), Ok(e)) = (refill, &entry) {
            r.cache_put(&k, e, self.config.cache.ttl);
        }
        crate::telemetry::current_attribute(
            "vcci.cache",
            match level.load(Ordering::Relaxed) {
                LEVEL_L1 => "l1",
                LEVEL_L2 => "l2",
                _ => "miss",
            },
        );
        match entry {
            Ok(e) => crate::conditional::respond(&e, ctx.if_none_match.as_ref()),
            Err(e) => axum::response::IntoResponse::into_response(e),
        }
    }

    /// The caller a key stands for, from the key cache or the database.
    pub(crate) async fn authenticate(&self, key: String) -> Result<(Caller, i64), ApiError> {
        let digest = crate::auth::digest(&key);
        if let Some(hit) = self.keys.get(&digest) {
            return Ok(hit);
        }
        let found = self
            .db(move |db| {
                let Some(id) = db.verify_key(&key)? else {
                    return Ok(None);
                };
                Ok(db.org_by_id(id.org)?.map(|org| {
                    (
                        Caller {
                            org,
                            role: id.role,
                            key_id: id.key_id,
                            request_id: None,
                        },
                        id.key_id,
                    )
                }))
            })
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        self.keys.insert(digest, found.0.clone(), found.1);
        Ok(found)
    }

    /// Picks up other processes' writes (generations) and key revocations.
    pub async fn poll_generations(self: &Arc<Self>) -> Result<(), ApiError> {
        let g = self.db(|db| db.generations()).await?;
        let mut newer = Vec::new();
        {
            let mut pushed = self.pushed.lock().unwrap_or_else(|p| p.into_inner());
            for (org, n) in g.orgs {
                self.observe_generation(org.0, n);
                if self.redis.is_some() && pushed.get(&org.0).is_none_or(|p| *p < n) {
                    pushed.insert(org.0, n);
                    newer.push((org, n));
                }
            }
        }
        // Writes this node learnt of from the database (another process's, or another
        // node's while Redis was away) reach the other nodes through Redis.
        if let Some(r) = &self.redis {
            for (org, n) in newer {
                if !r.publish_generation(org.0, n).await {
                    self.pushed
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&org.0);
                }
            }
        }
        if self.generations.observe_revocations(g.revoked_keys) {
            self.keys_revoked();
            if let Some(r) = &self.redis {
                r.publish(crate::shared::Event::KeyRevoked).await;
            }
        }
        Ok(())
    }

    /// Cached key lookups are dropped (they carry the organization's settings too).
    pub(crate) fn clear_keys(&self) {
        self.keys.clear();
    }

    /// Keys were revoked: cached lookups are dropped, and the live streams of the revoked
    /// keys end.
    pub(crate) fn keys_revoked(self: &Arc<Self>) {
        self.clear_keys();
        let open = self.live.open_keys();
        if open.is_empty() {
            return;
        }
        let app = Arc::clone(self);
        tokio::spawn(async move {
            match app.db(move |db| db.revoked_among(&open)).await {
                Ok(revoked) => app.live.revoke(&revoked),
                Err(e) => tracing::warn!(error = %e.message, "checking the keys of live streams"),
            }
        });
    }

    /// Takes a rate-limit token of `key_id`: from the bucket shared in Redis, or this node's
    /// own while Redis cannot answer.
    pub(crate) async fn rate_check(&self, key_id: i64) -> Result<(), ApiError> {
        let limit = self.config.rate_limit;
        if let Some(r) = &self.redis
            && limit.rate > 0.0
            && let Some(answer) = r.rate_check(key_id, limit).await
        {
            return answer.map_err(|wait| crate::ratelimit::too_many(limit, wait));
        }
        self.limiter.check(key_id)
    }

    /// (connections the pool may hold, connections idle now).
    pub fn pool_stats(&self) -> (usize, usize) {
        (
            self.config.pool_size.max(1),
            self.pool.permits.available_permits(),
        )
    }

    /// This node's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Whether the node is shutting down.
    /// The node begins to stop: its live-update streams end (the server waits for open
    /// responses before it stops).
    pub fn begin_shutdown(&self) {
        self.live.close();
    }

    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }
}

/// `vcci.cache` of a request's span: the level that answered.
const LEVEL_L1: u8 = 0;
const LEVEL_L2: u8 = 1;
const LEVEL_MISS: u8 = 2;

/// A stable name for the database call made by closure type `F`: the function that contains
/// it, e.g. `routes::summary::summary` (bounded cardinality: one per call site).
fn query_name<F>() -> &'static str {
    let mut n = std::any::type_name::<F>();
    while let Some(s) = n.strip_suffix("::{{closure}}") {
        n = s;
    }
    n.strip_prefix("vcci_server::").unwrap_or(n)
}
