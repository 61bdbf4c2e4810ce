//! Cache warming: at start, and after the shared (Redis) cache level comes back from a
//! failure, a node answers the requests users make first — the dashboard's overview
//! (summary, monthly totals, top suppliers), its first page of transactions and the factor
//! catalogue's first searches — for the most active organizations, so that their first
//! real requests are cache hits.
//!
//! The requests go through the node's own router, exactly as a client's would (same query
//! parsing, same cache keys), as a viewer of each organization: the [`Warming`] request
//! extension stands for the caller. An extension can only be set inside the process; a
//! request from the network never carries one. Bounded: `AppConfig::warm_orgs`
//! organizations, two requests at a time, `AppConfig::warm_timeout` in all. While the start's
//! warming runs, `/ready` answers 503 `warming`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::body::Body;
use axum::http::Request;
use tower::ServiceExt as _;
use vcci_store::model::keys::Role;

use crate::auth::Warming;
use crate::{App, Caller};

/// What users request first, per organization: the dashboard's overview, its first page of
/// transactions, the factor catalogue's first page and its two sets (as the dashboard
/// sends them, so the cache keys are the same).
pub const WARM_PATHS: &[&str] = &[
    "/api/v1/emissions/summary",
    "/api/v1/emissions/by-month",
    "/api/v1/emissions/by-supplier?limit=10",
    "/api/v1/transactions?limit=25&fields=transaction_id%2Cdate%2Csupplier_id%2Csupplier_name%2Cemission",
    "/api/v1/factors?limit=25",
    "/api/v1/factors?set=epa&limit=25",
    "/api/v1/factors?set=desnz&limit=25",
];

/// Requests a warming runs at once.
const CONCURRENCY: usize = 2;

/// What a warming did.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct WarmReport {
    pub organizations: usize,
    pub requests: usize,
    /// Requests answered 200.
    pub ok: usize,
    pub seconds: f64,
    /// Stopped at `warm_timeout` with requests left.
    pub timed_out: bool,
}

impl App {
    /// Warms the cache for the `warm_orgs` most active organizations (those whose data
    /// changed most: the highest generations). `refill_shared`: after a failover of the
    /// shared level, store every answer there too.
    pub async fn warm(self: &Arc<Self>, refill_shared: bool) -> WarmReport {
        let started = Instant::now();
        let n = self.config.warm_orgs;
        let mut report = WarmReport::default();
        if n == 0 {
            return report;
        }
        let orgs = match self.db(move |db| db.most_active_orgs(n)).await {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(error = %e.message, "cache warming: listing organizations");
                return report;
            }
        };
        report.organizations = orgs.len();
        let router = crate::build_app(Arc::clone(self));
        let deadline = started + self.config.warm_timeout;
        let permits = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
        let mut tasks = tokio::task::JoinSet::new();
        for org in orgs {
            let caller = Caller {
                org,
                role: Role::Viewer,
                key_id: 0,
                request_id: None,
            };
            for path in WARM_PATHS {
                let (router, permits, caller) =
                    (router.clone(), Arc::clone(&permits), caller.clone());
                tasks.spawn(async move {
                    let _permit = permits.acquire_owned().await.ok()?;
                    if Instant::now() >= deadline {
                        return None;
                    }
                    let mut req = Request::get(*path).body(Body::empty()).ok()?;
                    req.extensions_mut().insert(Warming {
                        caller,
                        refill_shared,
                    });
                    let res = router.oneshot(req).await.ok()?;
                    Some(res.status().is_success())
                });
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let joined = tokio::time::timeout(left, async {
            while let Some(r) = tasks.join_next().await {
                report.requests += 1;
                match r {
                    Ok(Some(true)) => report.ok += 1,
                    Ok(None) => report.timed_out = true,
                    _ => {}
                }
            }
        })
        .await;
        if joined.is_err() {
            report.timed_out = true;
            tasks.abort_all();
        }
        report.seconds = started.elapsed().as_secs_f64();
        self.metrics.warm_finished(report.requests as u64);
        tracing::info!(
            organizations = report.organizations,
            requests = report.requests,
            ok = report.ok,
            seconds = report.seconds,
            timed_out = report.timed_out,
            refill_shared,
            "cache warmed"
        );
        report
    }

    /// Warms at start (`/ready` says `warming` meanwhile: `start_background` sets the flag
    /// before this task runs), then again whenever the shared level comes back after being
    /// down.
    pub(crate) async fn warm_and_watch(self: Arc<Self>) {
        if self.config.warm_orgs == 0 {
            return;
        }
        self.warm(false).await;
        self.warming.store(false, Ordering::Release);
        let Some(redis) = self.redis.clone() else {
            return;
        };
        let mut was_up = redis.is_up();
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
        loop {
            tick.tick().await;
            // Redis's own probes (by requests, `/ready` and the event listener) say when it
            // is back; this task only watches, so that it adds no connection attempts.
            let up = redis.is_up();
            if up && !was_up {
                self.warm(true).await;
            }
            was_up = up;
        }
    }
}
