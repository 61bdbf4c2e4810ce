//! The in-process response cache for hot reads.
//!
//! Entries are finished responses (JSON body and its ETag), keyed by organization, the
//! organization's data generation and the request (path and query). Every write to an
//! organization's data bumps its generation in the database, in the same transaction as the
//! write; this node learns the new generation at once for its own writes and by polling for
//! other processes' (see `Generations`), so older entries simply stop being reachable and age
//! out. A key always holds the organization: an entry is never served to another tenant.
//!
//! Bounded in entries and bytes (oldest inserted evicted first), with a TTL as a backstop.
//! Single-flight: concurrent misses of one key wait for one computation.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::HeaderValue;
use tokio::sync::OnceCell;

/// A response held by the cache.
#[derive(Debug)]
pub struct Cached {
    pub body: Bytes,
    pub etag: HeaderValue,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheKey {
    pub org: i64,
    pub generation: u64,
    pub request: Box<str>,
}

impl Hash for CacheKey {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.org.hash(h);
        self.generation.hash(h);
        self.request.hash(h);
    }
}

#[derive(Debug)]
struct Slot {
    cell: Arc<OnceCell<Arc<Cached>>>,
    inserted: Instant,
    bytes: usize,
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<CacheKey, Slot>,
    /// Keys in insertion order, with their insertion time (to skip replaced slots).
    order: VecDeque<(CacheKey, Instant)>,
    bytes: usize,
}

/// Limits of the cache.
#[derive(Clone, Copy, Debug)]
pub struct CacheConfig {
    pub max_entries: usize,
    pub max_bytes: usize,
    pub ttl: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            max_entries: 20_000,
            max_bytes: 128 << 20,
            ttl: Duration::from_secs(300),
        }
    }
}

/// Counters of the cache (exported in /metrics).
#[derive(Debug, Default)]
pub struct CacheStats {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub evictions: AtomicU64,
}

#[derive(Debug)]
pub struct ResponseCache {
    inner: Mutex<Inner>,
    config: CacheConfig,
    pub stats: CacheStats,
}

impl ResponseCache {
    pub fn new(config: CacheConfig) -> ResponseCache {
        ResponseCache {
            inner: Mutex::new(Inner::default()),
            config,
            stats: CacheStats::default(),
        }
    }

    /// Entries and bytes held.
    pub fn size(&self) -> (usize, usize) {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        (g.map.len(), g.bytes)
    }

    /// The cached response for `key`, or the one `compute` produces (then stored). With
    /// `enabled` false (a zero-sized cache) `compute` always runs.
    pub async fn get_or_compute<E, F>(&self, key: CacheKey, compute: F) -> Result<Arc<Cached>, E>
    where
        F: Future<Output = Result<Cached, E>>,
    {
        if self.config.max_entries == 0 {
            self.stats.misses.fetch_add(1, Ordering::Relaxed);
            return compute.await.map(Arc::new);
        }
        let (cell, inserted) = {
            let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            match g.map.get(&key) {
                Some(s) if s.inserted.elapsed() < self.config.ttl => {
                    (Arc::clone(&s.cell), s.inserted)
                }
                _ => {
                    let now = Instant::now();
                    let cell = Arc::new(OnceCell::new());
                    if let Some(old) = g.map.insert(
                        key.clone(),
                        Slot {
                            cell: Arc::clone(&cell),
                            inserted: now,
                            bytes: 0,
                        },
                    ) {
                        g.bytes -= old.bytes;
                    }
                    g.order.push_back((key.clone(), now));
                    self.evict(&mut g);
                    (cell, now)
                }
            }
        };
        if let Some(v) = cell.get() {
            self.stats.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Arc::clone(v));
        }
        let mut computed = false;
        let v = cell
            .get_or_try_init(|| {
                computed = true;
                async { compute.await.map(Arc::new) }
            })
            .await?;
        if computed {
            self.stats.misses.fetch_add(1, Ordering::Relaxed);
            let size = v.body.len() + key.request.len() + 128;
            let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(s) = g.map.get_mut(&key)
                && s.inserted == inserted
            {
                s.bytes = size;
                g.bytes += size;
                self.evict(&mut g);
            }
        } else {
            // Waited for another request's computation: served from the cache.
            self.stats.hits.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Arc::clone(v))
    }

    /// Drops the oldest entries until the limits hold.
    fn evict(&self, g: &mut Inner) {
        while g.map.len() > self.config.max_entries || g.bytes > self.config.max_bytes {
            let Some((k, at)) = g.order.pop_front() else {
                break;
            };
            if g.map.get(&k).is_some_and(|s| s.inserted == at)
                && let Some(s) = g.map.remove(&k)
            {
                g.bytes -= s.bytes;
                self.stats.evictions.fetch_add(1, Ordering::Relaxed);
            }
        }
        // Replaced slots leave stale keys in `order`; keep it from growing without bound.
        if g.order.len() > 2 * g.map.len() + 1024 {
            let map = &g.map;
            let order: VecDeque<_> = g
                .order
                .drain(..)
                .filter(|(k, at)| map.get(k).is_some_and(|s| s.inserted == *at))
                .collect();
            g.order = order;
        }
    }
}

/// This node's view of each organization's data generation, and of key revocations.
#[derive(Debug, Default)]
pub struct Generations {
    orgs: Mutex<HashMap<i64, u64>>,
    revoked_keys: AtomicU64,
}

impl Generations {
    pub fn get(&self, org: i64) -> u64 {
        self.orgs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&org)
            .copied()
            .unwrap_or(0)
    }

    /// Raises `org`'s generation to at least `g` (generations only grow); true when it rose.
    pub fn observe(&self, org: i64, g: u64) -> bool {
        let mut m = self.orgs.lock().unwrap_or_else(|p| p.into_inner());
        let e = m.entry(org).or_insert(0);
        let rose = g > *e;
        *e = (*e).max(g);
        rose
    }

    /// Records the count of revoked keys; true when it changed.
    pub fn observe_revocations(&self, n: u64) -> bool {
        self.revoked_keys.swap(n, Ordering::Relaxed) != n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(org: i64, generation: u64, r: &str) -> CacheKey {
        CacheKey {
            org,
            generation,
            request: r.into(),
        }
    }

    fn val(s: &str) -> Cached {
        Cached {
            body: Bytes::from(s.to_owned()),
            etag: HeaderValue::from_static("W/\"x\""),
        }
    }

    #[tokio::test]
    async fn hits_misses_and_keys() {
        let c = ResponseCache::new(CacheConfig::default());
        let a = c
            .get_or_compute(key(1, 0, "/s"), async { Ok::<_, ()>(val("one")) })
            .await
            .unwrap();
        let b = c
            .get_or_compute(key(1, 0, "/s"), async { Ok::<_, ()>(val("two")) })
            .await
            .unwrap();
        assert_eq!((&a.body[..], &b.body[..]), (&b"one"[..], &b"one"[..]));
        // Another organization or a new generation is another entry.
        let other = c
            .get_or_compute(key(2, 0, "/s"), async { Ok::<_, ()>(val("org2")) })
            .await
            .unwrap();
        assert_eq!(&other.body[..], b"org2");
        let newer = c
            .get_or_compute(key(1, 1, "/s"), async { Ok::<_, ()>(val("gen1")) })
            .await
            .unwrap();
        assert_eq!(&newer.body[..], b"gen1");
        assert_eq!(c.stats.hits.load(Ordering::Relaxed), 1);
        assert_eq!(c.stats.misses.load(Ordering::Relaxed), 3);
    }

    #[tokio::test]
    async fn errors_are_not_cached() {
        let c = ResponseCache::new(CacheConfig::default());
        let e = c
            .get_or_compute(key(1, 0, "/s"), async { Err::<Cached, _>("boom") })
            .await;
        assert!(e.is_err());
        let v = c
            .get_or_compute(key(1, 0, "/s"), async { Ok::<_, &str>(val("ok")) })
            .await
            .unwrap();
        assert_eq!(&v.body[..], b"ok");
    }

    #[tokio::test]
    async fn bounded_by_entries_and_bytes() {
        let c = ResponseCache::new(CacheConfig {
            max_entries: 10,
            max_bytes: 1 << 30,
            ttl: Duration::from_secs(60),
        });
        for i in 0..100 {
            c.get_or_compute(key(1, 0, &format!("/{i}")), async { Ok::<_, ()>(val("v")) })
                .await
                .unwrap();
        }
        assert_eq!(c.size().0, 10);
        assert_eq!(c.stats.evictions.load(Ordering::Relaxed), 90);
        let c = ResponseCache::new(CacheConfig {
            max_entries: 1000,
            max_bytes: 4096,
            ttl: Duration::from_secs(60),
        });
        let big = "x".repeat(1000);
        for i in 0..20 {
            let b = big.clone();
            c.get_or_compute(
                key(1, 0, &format!("/{i}")),
                async move { Ok::<_, ()>(val(&b)) },
            )
            .await
            .unwrap();
        }
        let (n, bytes) = c.size();
        assert!(bytes <= 4096 && n <= 4, "{n} entries, {bytes} bytes");
    }

    #[tokio::test]
    async fn ttl_expires() {
        let c = ResponseCache::new(CacheConfig {
            ttl: Duration::from_millis(20),
            ..CacheConfig::default()
        });
        c.get_or_compute(key(1, 0, "/s"), async { Ok::<_, ()>(val("old")) })
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(40)).await;
        let v = c
            .get_or_compute(key(1, 0, "/s"), async { Ok::<_, ()>(val("new")) })
            .await
            .unwrap();
        assert_eq!(&v.body[..], b"new");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn single_flight() {
        let c = Arc::new(ResponseCache::new(CacheConfig::default()));
        let runs = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..32 {
            let c = Arc::clone(&c);
            let runs = Arc::clone(&runs);
            tasks.push(tokio::spawn(async move {
                c.get_or_compute(key(1, 0, "/slow"), async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok::<_, ()>(val("v"))
                })
                .await
                .unwrap()
            }));
        }
        for t in tasks {
            assert_eq!(&t.await.unwrap().body[..], b"v");
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }
}
