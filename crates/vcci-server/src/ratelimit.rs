//! Token-bucket rate limiting per API key (in-process; one bucket per key id).
//!
//! A key may make `burst` requests at once and `rate` requests per second sustained. A
//! request over the limit is answered 429 with `Retry-After` and the `RateLimit-*` and
//! `X-RateLimit-*` headers.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use axum::http::StatusCode;

use crate::ApiError;

/// Limits per key; `rate == 0` turns limiting off.
#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    pub rate: f64,
    pub burst: f64,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            rate: 5000.0,
            burst: 10_000.0,
        }
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<i64, Bucket>>,
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> RateLimiter {
        RateLimiter {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `key_id`, or says how long until one is available.
    pub fn check(&self, key_id: i64) -> Result<(), ApiError> {
        let l = self.limit;
        if l.rate <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut map = self
            .buckets
            .lock()
            .map_err(|_| ApiError::internal("rate limiter poisoned"))?;
        let b = map.entry(key_id).or_insert(Bucket {
            tokens: l.burst,
            last: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.last).as_secs_f64() * l.rate).min(l.burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return Ok(());
        }
        let wait = ((1.0 - b.tokens) / l.rate).ceil().max(1.0) as u64;
        Err(too_many(l, wait))
    }
}

/// The 429 answer: retry in `wait` seconds.
pub(crate) fn too_many(l: RateLimit, wait: u64) -> ApiError {
    {
        let limit = (l.burst as u64).to_string();
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many requests for this API key; retry in {wait} s"),
        );
        for (name, value) in [
            ("retry-after", wait.to_string()),
            ("ratelimit-limit", limit.clone()),
            ("ratelimit-remaining", "0".into()),
            ("ratelimit-reset", wait.to_string()),
            ("x-ratelimit-limit", limit),
            ("x-ratelimit-remaining", "0".into()),
            ("x-ratelimit-reset", wait.to_string()),
        ] {
            e.headers.push((name, value));
        }
        e
    }
}
