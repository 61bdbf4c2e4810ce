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
        "/api/v1/admin/profile",
        profile,
        Op::new("profile", "operations", "A CPU profile of this node, sampled for `seconds` (1 to 60, and less than the request timeout): pprof protobuf (`go tool pprof`, Pyroscope), or a flame graph with `format=svg`. Off unless the node runs with --profiling; one at a time")
            .role("admin")
            .query("seconds", "integer", "How long to sample (default 10).")
            .query("format", "string", "`pprof` (default) or `svg`.")
            .ok(200, "application/octet-stream", "")
            .errors(&[400, 403, 409]),
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

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileQuery {
    seconds: Option<String>,
    format: Option<String>,
}

/// Clears the "profile running" flag when the request ends, however it ends.
struct ProfileTurn<'a>(&'a std::sync::atomic::AtomicBool);

impl Drop for ProfileTurn<'_> {
    fn drop(&mut self) {
        self.0.store(false, std::sync::atomic::Ordering::Release);
    }
}

async fn profile(
    State(app): State<Arc<App>>,
    caller: Caller,
    crate::list::Query(q): crate::list::Query<ProfileQuery>,
) -> Result<axum::response::Response, ApiError> {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    caller.require(Role::Admin)?;
    if !app.config.profiling {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "profiling_disabled",
            "profiling is off on this node: start it with --profiling (VCCI_PROFILING=1)",
        ));
    }
    let max = app
        .config
        .request_timeout
        .as_secs()
        .saturating_sub(1)
        .clamp(1, 60);
    let seconds = match q.seconds.as_deref().filter(|s| !s.is_empty()) {
        None => 10.min(max),
        Some(s) => match s.parse::<u64>() {
            Ok(n) if (1..=max).contains(&n) => n,
            _ => {
                return Err(crate::list::param_error(
                    "seconds",
                    format!("'{s}' is not a whole number of seconds from 1 to {max}"),
                ));
            }
        },
    };
    let svg = match q.format.as_deref().unwrap_or("pprof") {
        "pprof" | "" => false,
        "svg" => true,
        other => {
            return Err(crate::list::param_error(
                "format",
                format!("'{other}' is not pprof or svg"),
            ));
        }
    };
    if app
        .profiling
        .compare_exchange(
            false,
            true,
            std::sync::atomic::Ordering::AcqRel,
            std::sync::atomic::Ordering::Acquire,
        )
        .is_err()
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "profile_running",
            "a profile of this node is being taken; try again when it ends",
        ));
    }
    let _turn = ProfileTurn(&app.profiling);
    let bytes = tokio::task::spawn_blocking(move || {
        let report = crate::profile::capture(seconds)?;
        if svg {
            crate::profile::flamegraph(&report)
        } else {
            Ok(crate::profile::pprof_protobuf(&report))
        }
    })
    .await
    .map_err(|e| ApiError::internal(format!("the profile crashed: {e}")))?
    .map_err(ApiError::internal)?;
    let (ct, name) = if svg {
        ("image/svg+xml", "vcci-profile.svg")
    } else {
        ("application/octet-stream", "vcci-profile.pb")
    };
    let mut r = (StatusCode::OK, bytes).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, crate::error::header(ct));
    r.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        crate::error::header(&format!("attachment; filename=\"{name}\"")),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, crate::error::header("no-store"));
    Ok(r)
}
