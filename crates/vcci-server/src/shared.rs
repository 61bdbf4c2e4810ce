//! Redis, shared by every API node of a deployment: the second cache level, the current data
//! generation of each organization, rate-limit buckets, and a pub/sub channel that tells
//! every node of writes and key revocations at once.
//!
//! Redis is an accelerator, never a dependency: every operation has a short timeout, a
//! failed one marks Redis down, and while it is down nodes skip it (serving from their
//! in-process cache and the database, limiting rates per node, learning other nodes' writes
//! from the database poll) and `/ready` says `degraded`. Every half second at most, a request
//! probes it again, so a node recovers by itself when Redis returns.
//!
//! Freshness across nodes: after a write, its node stores the organization's new generation
//! here (never lowering it) before it answers; every cached read first asks for the current
//! generation. So a response cached on node B is never served after a write acknowledged by
//! node A. Pub/sub then spreads the news (and key revocations) without waiting for a poll.
//!
//! Keys (under a configurable prefix, `vcci:` by default): `gen:{org}` (integer),
//! `c:{org}:{gen}:{hash}` (a cached response, with a TTL), `rl:{key id}` (a token bucket),
//! channel `events`. Each key names one organization or one API key: a Redis Cluster can
//! spread them freely (no command touches two keys of different organizations).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::HeaderValue;
use futures_util::StreamExt;
use redis::aio::ConnectionManager;

use crate::cache::{CacheKey, Cached};
use crate::ratelimit::RateLimit;

/// Settings of the Redis link.
#[derive(Clone, Debug)]
pub struct RedisConfig {
    /// `redis://host:port/db`.
    pub url: String,
    /// Prepended to every key and channel (several deployments, or tests, may share one Redis).
    pub prefix: String,
    /// Longest one operation may take before Redis counts as down.
    pub timeout: Duration,
}

/// Counters of the Redis cache level and link.
#[derive(Debug, Default)]
pub struct RedisStats {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub errors: AtomicU64,
}

/// How often, at most, a node probes a Redis it saw down.
const PROBE_EVERY: Duration = Duration::from_millis(500);

/// Raises `gen:{org}` to ARGV[1] (never lowers it) and publishes the change.
const GENERATION_SCRIPT: &str = r"
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local new = tonumber(ARGV[1])
if new > cur then
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('PUBLISH', KEYS[2], ARGV[2])
end
return 1";

/// A token bucket per API key, in Redis time so that every node agrees: ARGV = rate per
/// second, burst. Returns {1 if allowed, tokens left (as a string)}.
const RATE_SCRIPT: &str = r"
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1])
local ts = tonumber(b[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) / 1000 * rate)
end
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, tostring(tokens)}";

/// A node's link to Redis.
pub struct Shared {
    client: redis::Client,
    config: RedisConfig,
    conn: Mutex<Option<ConnectionManager>>,
    up: AtomicBool,
    /// While down: when Redis was last probed.
    probed: Mutex<Option<Instant>>,
    probing: tokio::sync::Mutex<()>,
    generation_script: redis::Script,
    rate_script: redis::Script,
    pub stats: RedisStats,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("prefix", &self.config.prefix)
            .field("up", &self.up.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// An event spread to every node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `org`'s data is now at `generation`.
    Generation { org: i64, generation: u64 },
    /// An API key was revoked: cached key lookups must be dropped.
    KeyRevoked,
    /// A job was queued: idle workers should look.
    JobQueued,
    /// A live event (`live.rs`) of `org` that node `node` emitted to its own streams.
    Live {
        node: String,
        org: i64,
        kind: String,
        data: String,
    },
}

impl Event {
    fn encode(&self) -> String {
        match self {
            Event::Generation { org, generation } => format!("gen {org} {generation}"),
            Event::KeyRevoked => "revoked".into(),
            Event::JobQueued => "job".into(),
            Event::Live {
                node,
                org,
                kind,
                data,
            } => format!("live {node} {org} {kind} {data}"),
        }
    }

    fn decode(s: &str) -> Option<Event> {
        // The data (JSON) is the rest of the message, spaces and all.
        let mut it = s.splitn(5, ' ');
        match it.next()? {
            "gen" => Some(Event::Generation {
                org: it.next()?.parse().ok()?,
                generation: it.next()?.parse().ok()?,
            }),
            "revoked" => Some(Event::KeyRevoked),
            "job" => Some(Event::JobQueued),
            "live" => Some(Event::Live {
                node: it.next()?.into(),
                org: it.next()?.parse().ok()?,
                kind: it.next()?.into(),
                data: it.next()?.into(),
            }),
            _ => None,
        }
    }
}

impl Shared {
    /// A link to the Redis at `config.url` (no connection is made yet).
    pub fn new(config: RedisConfig) -> Result<Shared, String> {
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| format!("invalid Redis URL: {e}"))?;
        Ok(Shared {
            client,
            config,
            conn: Mutex::new(None),
            up: AtomicBool::new(false),
            probed: Mutex::new(None),
            probing: tokio::sync::Mutex::new(()),
            generation_script: redis::Script::new(GENERATION_SCRIPT),
            rate_script: redis::Script::new(RATE_SCRIPT),
            stats: RedisStats::default(),
        })
    }

    /// Whether the last operation (or probe) reached Redis.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.config.prefix)
    }

    fn channel(&self) -> String {
        self.key("events")
    }

    fn mark_down(&self, what: &str, e: &dyn std::fmt::Display) {
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
        if self.up.swap(false, Ordering::Relaxed) {
            tracing::warn!(during = what, error = %e, "redis down");
        }
        *self.probed.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }

    /// A connection while Redis is up. While it is down: none, and at most every
    /// `PROBE_EVERY` a probe in the background, so that no request waits for a dead Redis
    /// (but the very first use, which waits for the first probe).
    async fn conn(self: &Arc<Self>) -> Option<ConnectionManager> {
        if self.is_up() {
            return self.conn.lock().unwrap_or_else(|p| p.into_inner()).clone();
        }
        let probed = *self.probed.lock().unwrap_or_else(|p| p.into_inner());
        // The node's first use waits for the first probe (bounded by the timeouts), so that
        // a node that has just started does not, say, limit rates in process.
        if probed.is_none() {
            return self.probe().await;
        }
        let due = probed.is_none_or(|at| at.elapsed() >= PROBE_EVERY);
        if due && tokio::runtime::Handle::try_current().is_ok() {
            *self.probed.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
            let me = Arc::clone(self);
            tokio::spawn(async move {
                me.probe().await;
            });
        }
        None
    }

    /// Connects if needed and PINGs; marks Redis up on success. One probe at a time.
    pub async fn probe(&self) -> Option<ConnectionManager> {
        let _one = self.probing.lock().await;
        if self.is_up() {
            // Another probe just succeeded.
            return self.conn.lock().unwrap_or_else(|p| p.into_inner()).clone();
        }
        *self.probed.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        let existing = self.conn.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut conn = match existing {
            Some(c) => c,
            None => {
                let cfg = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(self.config.timeout.max(Duration::from_millis(200)))
                    .set_response_timeout(self.config.timeout)
                    .set_number_of_retries(1);
                match tokio::time::timeout(
                    self.config.timeout.max(Duration::from_millis(200)) * 2,
                    ConnectionManager::new_with_config(self.client.clone(), cfg),
                )
                .await
                {
                    Ok(Ok(c)) => {
                        *self.conn.lock().unwrap_or_else(|p| p.into_inner()) = Some(c.clone());
                        c
                    }
                    Ok(Err(e)) => {
                        self.mark_down("connect", &e);
                        return None;
                    }
                    Err(_) => {
                        self.mark_down("connect", &"timed out");
                        return None;
                    }
                }
            }
        };
        let pong: Option<String> = self.run_on(&mut conn, "ping", redis::cmd("PING")).await;
        if pong.is_some() {
            if !self.up.swap(true, Ordering::Relaxed) {
                tracing::info!("redis up");
            }
            Some(conn)
        } else {
            None
        }
    }

    /// The outcome of one operation: a failure or a timeout marks Redis down.
    fn settle<T>(
        &self,
        what: &str,
        r: Result<redis::RedisResult<T>, tokio::time::error::Elapsed>,
    ) -> Option<T> {
        match r {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                self.mark_down(what, &e);
                None
            }
            Err(_) => {
                self.mark_down(what, &"timed out");
                None
            }
        }
    }

    async fn run_on<T: redis::FromRedisValue>(
        &self,
        conn: &mut ConnectionManager,
        what: &str,
        cmd: redis::Cmd,
    ) -> Option<T> {
        let r = tokio::time::timeout(self.config.timeout, cmd.query_async::<T>(conn)).await;
        self.settle(what, r)
    }

    async fn run<T: redis::FromRedisValue>(
        self: &Arc<Self>,
        what: &str,
        cmd: redis::Cmd,
    ) -> Option<T> {
        let mut conn = self.conn().await?;
        self.run_on(&mut conn, what, cmd).await
    }

    async fn script<T: redis::FromRedisValue>(
        self: &Arc<Self>,
        what: &str,
        inv: redis::ScriptInvocation<'_>,
    ) -> Option<T> {
        let mut conn = self.conn().await?;
        let r = tokio::time::timeout(self.config.timeout, inv.invoke_async::<T>(&mut conn)).await;
        self.settle(what, r)
    }

    /// The organization's current generation as Redis knows it (None: unknown or down).
    pub async fn generation(self: &Arc<Self>, org: i64) -> Option<u64> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.key(&format!("gen:{org}")));
        self.run::<Option<u64>>("generation", cmd).await.flatten()
    }

    /// Raises the organization's generation to `generation` and tells every node.
    pub async fn publish_generation(self: &Arc<Self>, org: i64, generation: u64) -> bool {
        let mut inv = self.generation_script.prepare_invoke();
        inv.key(self.key(&format!("gen:{org}")))
            .key(self.channel())
            .arg(generation)
            .arg(Event::Generation { org, generation }.encode());
        self.script::<i64>("publish_generation", inv)
            .await
            .is_some()
    }

    /// Tells every node of `event`.
    pub async fn publish(self: &Arc<Self>, event: Event) -> bool {
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(self.channel()).arg(event.encode());
        self.run::<i64>("publish", cmd).await.is_some()
    }

    fn cache_key(&self, key: &CacheKey) -> String {
        let h = xxhash_rust::xxh3::xxh3_64(key.request.as_bytes());
        self.key(&format!("c:{}:{}:{h:016x}", key.org, key.generation))
    }

    /// The response cached for `key` by any node.
    pub async fn cache_get(self: &Arc<Self>, key: &CacheKey) -> Option<Cached> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.cache_key(key));
        let raw: Option<Vec<u8>> = self.run("cache_get", cmd).await.flatten();
        let found = raw.and_then(|v| decode(&v, key));
        let counter = if found.is_some() {
            &self.stats.hits
        } else {
            &self.stats.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Stores a computed response for other nodes (in the background; best effort).
    pub fn cache_put(self: &Arc<Self>, key: &CacheKey, value: &Cached, ttl: Duration) {
        if !self.is_up() {
            return;
        }
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.cache_key(key))
            .arg(encode(value, key))
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64);
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let _: Option<String> = me.run("cache_put", cmd).await;
        });
    }

    /// Takes a token of `key_id`'s shared bucket: Some(Ok(())) allowed, Some(Err(wait s)) over
    /// the limit, None when Redis cannot answer (the caller limits in process instead).
    pub async fn rate_check(
        self: &Arc<Self>,
        key_id: i64,
        limit: RateLimit,
    ) -> Option<Result<(), u64>> {
        let mut inv = self.rate_script.prepare_invoke();
        inv.key(self.key(&format!("rl:{key_id}")))
            .arg(limit.rate)
            .arg(limit.burst);
        let (allowed, tokens): (i64, String) = self.script("rate_check", inv).await?;
        if allowed == 1 {
            return Some(Ok(()));
        }
        let tokens: f64 = tokens.parse().unwrap_or(0.0);
        Some(Err(((1.0 - tokens) / limit.rate).ceil().max(1.0) as u64))
    }

    /// Listens for events until the node stops, reconnecting while Redis is away; `on` is
    /// called for each.
    pub async fn listen(self: Arc<Self>, on: impl Fn(Event) + Send + 'static) {
        loop {
            if !self.is_up() {
                self.probe().await;
            }
            match self.client.get_async_pubsub().await {
                Ok(mut ps) => {
                    if ps.subscribe(self.channel()).await.is_ok() {
                        let mut stream = ps.on_message();
                        while let Some(msg) = stream.next().await {
                            if let Ok(s) = msg.get_payload::<String>()
                                && let Some(ev) = Event::decode(&s)
                            {
                                on(ev);
                            }
                        }
                    }
                }
                Err(e) => self.mark_down("subscribe", &e),
            }
            tokio::time::sleep(PROBE_EVERY).await;
        }
    }
}

/// Value of a shared cache entry: the request it answers (checked on read, so a hash
/// collision can never serve another request's body), the ETag and the body.
fn encode(v: &Cached, key: &CacheKey) -> Vec<u8> {
    let tag = v.etag.as_bytes();
    let req = key.request.as_bytes();
    let mut out = Vec::with_capacity(8 + tag.len() + req.len() + v.body.len());
    out.extend_from_slice(&(req.len() as u32).to_le_bytes());
    out.extend_from_slice(req);
    out.extend_from_slice(&(tag.len() as u32).to_le_bytes());
    out.extend_from_slice(tag);
    out.extend_from_slice(&v.body);
    out
}

fn decode(raw: &[u8], key: &CacheKey) -> Option<Cached> {
    let take = |b: &[u8]| -> Option<(usize, usize)> {
        let n = u32::from_le_bytes(b.get(..4)?.try_into().ok()?) as usize;
        (b.len() >= 4 + n).then_some((4, 4 + n))
    };
    let (s, e) = take(raw)?;
    if &raw[s..e] != key.request.as_bytes() {
        return None;
    }
    let rest = &raw[e..];
    let (s, e) = take(rest)?;
    let etag = HeaderValue::from_bytes(&rest[s..e]).ok()?;
    Some(Cached {
        body: Bytes::copy_from_slice(&rest[e..]),
        etag,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_and_entries_round_trip() {
        for ev in [
            Event::Generation {
                org: 7,
                generation: 42,
            },
            Event::KeyRevoked,
            Event::JobQueued,
            Event::Live {
                node: "123-abc".into(),
                org: 7,
                kind: "job".into(),
                data: "{\"status\": \"running\", \"a b\": 1}".into(),
            },
        ] {
            assert_eq!(Event::decode(&ev.encode()), Some(ev));
        }
        assert_eq!(Event::decode("gen x 1"), None);
        let key = CacheKey {
            org: 1,
            generation: 2,
            request: "/api/v1/emissions/summary".into(),
        };
        let v = Cached {
            body: Bytes::from_static(b"{\"a\":1}"),
            etag: HeaderValue::from_static("W/\"abc\""),
        };
        let back = decode(&encode(&v, &key), &key).unwrap();
        assert_eq!((back.body, back.etag), (v.body.clone(), v.etag.clone()));
        let other = CacheKey {
            request: "/other".into(),
            ..key
        };
        assert!(
            decode(
                &encode(&v, &other),
                &CacheKey {
                    request: "/x".into(),
                    ..other.clone()
                }
            )
            .is_none()
        );
        assert!(decode(b"\x05\x00", &other).is_none());
    }
}
