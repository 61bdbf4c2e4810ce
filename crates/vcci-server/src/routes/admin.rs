//! `GET /api/v1/admin/performance` (admin role): how this node has been doing recently.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use serde_json::{Map, Value, json};
use vcci_store::model::keys::Role;

use crate::openapi::{Api, Op};
use crate::{ApiError, App, Caller};

pub fn api(api: Api) -> Api {
    api.get(
        "/api/v1/me",
        me,
        Op::new("me", "auth", "The caller: the key's organization and role")
            .json("Me"),
    )
    .get(
        "/api/v1/admin/performance",
        performance,
        Op::new("performance", "operations", "This node's recent performance: p50/p95/p99, throughput and error rate per route over 1, 5 and 15 minutes; cache hit rates; pool; the slowest database calls")
            .role("admin")
            .json("Performance")
            .errors(&[403]),
    )
}

async fn me(caller: Caller) -> Json<Value> {
    Json(json!({
        "organization": caller.org.name,
        "role": caller.role.as_str(),
        "epa_version": caller.org.epa_version.as_str(),
        "default_currency": caller.org.default_currency.as_str(),
        "flights_radiative_forcing": caller.org.flights_with_rf,
    }))
}

/// Slow database calls listed.
const SLOWEST: usize = 20;

async fn performance(State(app): State<Arc<App>>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Admin)?;
    let m = &app.metrics;
    let mut windows = Map::new();
    for minutes in [1u64, 5, 15] {
        let routes: Vec<Value> = m
            .recent
            .window(minutes)
            .into_iter()
            .map(|(route, s)| {
                let mut v = serde_json::to_value(s).unwrap_or_default();
                v["route"] = Value::String(route);
                v
            })
            .collect();
        windows.insert(format!("{minutes}m"), Value::Array(routes));
    }
    let c = &app.cache.stats;
    let (hits, misses) = (
        c.hits.load(Ordering::Relaxed),
        c.misses.load(Ordering::Relaxed),
    );
    let (entries, bytes) = app.cache.size();
    let (size, idle) = app.pool_stats();
    Ok(Json(json!({
        "uptime_s": m.recent.uptime().as_secs_f64(),
        "windows": windows,
        "cache": {
            "memory": {
                "hits": hits,
                "misses": misses,
                "hit_rate": if hits + misses == 0 { None } else { Some(hits as f64 / (hits + misses) as f64) },
                "evictions": c.evictions.load(Ordering::Relaxed),
                "entries": entries,
                "bytes": bytes,
            },
            "redis": match app.redis() {
                None => json!("disabled"),
                Some(r) => {
                    let (h, m) = (r.stats.hits.load(Ordering::Relaxed), r.stats.misses.load(Ordering::Relaxed));
                    json!({
                        "up": r.is_up(),
                        "hits": h,
                        "misses": m,
                        "hit_rate": if h + m == 0 { None } else { Some(h as f64 / (h + m) as f64) },
                        "errors": r.stats.errors.load(Ordering::Relaxed),
                    })
                }
            },
        },
        "pool": {"size": size, "in_use": size - idle},
        "slow_query_threshold_ms": app.config.slow_query.as_secs_f64() * 1000.0,
        "slowest_queries": m.recent.slowest(SLOWEST),
    })))
}
