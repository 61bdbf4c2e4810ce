//! The HTTP client of vcci's PACT side (the specification's factor broker): one pooled
//! client (reqwest over rustls) for every supplier host, with
//! - connect and request timeouts;
//! - retries with exponential backoff and full jitter on 5xx and on network errors;
//! - `Retry-After` respected on 429 (capped);
//! - a circuit breaker per host: closed → open after N failures in a row → after a
//!   cooldown one half-open probe, whose success closes it again;
//! - per-host request, error and latency series and the breaker's state for `/metrics`.
//!
//! Trust: the system's roots, or only the CAs of a PEM file (`--pact-ca-file`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::Instrument;

/// How the client behaves.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// Attempts per request (the first and the retries).
    pub max_attempts: u32,
    /// The first retry waits up to this, doubling each time (full jitter).
    pub backoff: Duration,
    /// Failures in a row that open a host's breaker.
    pub breaker_failures: u32,
    /// How long an open breaker refuses before a probe.
    pub breaker_cooldown: Duration,
    /// The longest `Retry-After` obeyed; longer ones fail the request.
    pub max_retry_after: Duration,
    /// Trust only the CAs in this PEM file (else the system's roots).
    pub ca_file: Option<std::path::PathBuf>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            max_attempts: 4,
            backoff: Duration::from_millis(200),
            breaker_failures: 5,
            breaker_cooldown: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(60),
            ca_file: None,
        }
    }
}

/// Why a request failed (after its retries).
#[derive(Debug, Clone, PartialEq)]
pub enum HttpFailure {
    /// The host's breaker is open: it failed too often; no request was sent.
    BreakerOpen { host: String, retry_in: Duration },
    /// No answer: connection refused or reset, TLS failure, timeout.
    Network { host: String, message: String },
    /// Server errors to the last attempt.
    Status { host: String, status: u16 },
    /// 429 with a Retry-After longer than allowed.
    Throttled { host: String, retry_after: Duration },
}

impl std::fmt::Display for HttpFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpFailure::BreakerOpen { host, retry_in } => write!(
                f,
                "{host}: the circuit breaker is open after repeated failures; next probe in {} s",
                retry_in.as_secs().max(1)
            ),
            HttpFailure::Network { host, message } => write!(f, "{host}: no answer: {message}"),
            HttpFailure::Status { host, status } => {
                write!(f, "{host}: answered {status} to every attempt")
            }
            HttpFailure::Throttled { host, retry_after } => write!(
                f,
                "{host}: throttled (429) with Retry-After {} s, past the limit",
                retry_after.as_secs()
            ),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Breaker {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// A probe is in flight; other requests are refused until it ends.
    HalfOpen,
}

/// Per-host series.
#[derive(Debug, Default, Clone)]
struct HostStats {
    requests: u64,
    /// By kind: network, status (5xx), throttled (429), breaker (refused while open).
    errors: HashMap<&'static str, u64>,
    latency_buckets: [u64; LATENCY_BUCKETS.len()],
    latency_sum: f64,
    latency_count: u64,
}

const LATENCY_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Debug)]
struct HostState {
    breaker: Breaker,
    stats: HostStats,
}

/// The pooled client with its breakers and series.
pub struct PactHttp {
    client: reqwest::Client,
    cfg: HttpConfig,
    hosts: Mutex<HashMap<String, HostState>>,
    /// Tokens by (token URL, client id), until their expiry.
    tokens: Mutex<HashMap<(String, String), (String, Instant)>>,
}

impl std::fmt::Debug for PactHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PactHttp")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// The `host[:port]` of an absolute URL.
pub fn host_of(url: &str) -> String {
    let rest = url
        .split_once("://")
        .map_or(url.strip_prefix("//").unwrap_or(url), |(_, r)| r);
    rest.split(['/', '?', '#'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// Seconds of a `Retry-After` (delta-seconds; an HTTP date counts as 1 s).
fn retry_after(h: &reqwest::header::HeaderMap) -> Duration {
    h.get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map_or(Duration::from_secs(1), |v| {
            v.trim()
                .parse::<u64>()
                .map_or(Duration::from_secs(1), Duration::from_secs)
        })
}

/// Full jitter: a random wait in [0, base × 2^attempt].
fn backoff(base: Duration, attempt: u32) -> Duration {
    let cap = base.saturating_mul(1u32 << attempt.min(10));
    let mut r = [0u8; 8];
    let _ = getrandom::fill(&mut r);
    let frac = (u64::from_le_bytes(r) >> 11) as f64 / (1u64 << 53) as f64;
    cap.mul_f64(frac)
}

impl PactHttp {
    pub fn new(cfg: HttpConfig) -> Result<PactHttp, String> {
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(crate::client_tls::config(cfg.ca_file.as_deref())?)
            .connect_timeout(cfg.connect_timeout)
            .timeout(cfg.request_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!(
                "vcci/",
                env!("CARGO_PKG_VERSION"),
                " (PACT v3 data recipient)"
            ))
            .build()
            .map_err(|e| format!("the PACT HTTP client: {e}"))?;
        Ok(PactHttp {
            client,
            cfg,
            hosts: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
        })
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    fn with_host<T>(&self, host: &str, f: impl FnOnce(&mut HostState) -> T) -> T {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        let h = hosts.entry(host.to_owned()).or_insert(HostState {
            breaker: Breaker::Closed { failures: 0 },
            stats: HostStats::default(),
        });
        f(h)
    }

    /// Whether a request may go to `host` now (taking the half-open probe if it is due).
    fn admit(&self, host: &str) -> Result<(), HttpFailure> {
        let cooldown = self.cfg.breaker_cooldown;
        self.with_host(host, |h| match h.breaker {
            Breaker::Closed { .. } => Ok(()),
            Breaker::Open { until } if Instant::now() >= until => {
                h.breaker = Breaker::HalfOpen;
                Ok(())
            }
            Breaker::Open { until } => {
                *h.stats.errors.entry("breaker").or_default() += 1;
                Err(HttpFailure::BreakerOpen {
                    host: host.to_owned(),
                    retry_in: until.saturating_duration_since(Instant::now()),
                })
            }
            Breaker::HalfOpen => {
                *h.stats.errors.entry("breaker").or_default() += 1;
                Err(HttpFailure::BreakerOpen {
                    host: host.to_owned(),
                    retry_in: cooldown.min(Duration::from_secs(1)),
                })
            }
        })
    }

    fn record(&self, host: &str, seconds: f64, failure: Option<&'static str>) {
        let (threshold, cooldown) = (self.cfg.breaker_failures, self.cfg.breaker_cooldown);
        self.with_host(host, |h| {
            h.stats.requests += 1;
            h.stats.latency_sum += seconds;
            h.stats.latency_count += 1;
            for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
                if seconds <= *b {
                    h.stats.latency_buckets[i] += 1;
                }
            }
            match failure {
                // A throttled answer is the host working as designed: not a breaker failure.
                Some("throttled") => {
                    *h.stats.errors.entry("throttled").or_default() += 1;
                    if h.breaker == Breaker::HalfOpen {
                        h.breaker = Breaker::Closed { failures: 0 };
                    }
                }
                Some(kind) => {
                    *h.stats.errors.entry(kind).or_default() += 1;
                    h.breaker = match h.breaker {
                        Breaker::Closed { failures } if failures + 1 < threshold => {
                            Breaker::Closed {
                                failures: failures + 1,
                            }
                        }
                        _ => {
                            tracing::warn!(host, "PACT host failing: circuit breaker open");
                            Breaker::Open {
                                until: Instant::now() + cooldown,
                            }
                        }
                    };
                }
                None => h.breaker = Breaker::Closed { failures: 0 },
            }
        });
    }

    /// One attempt, in a client span whose trace context the request carries.
    async fn attempt(
        &self,
        host: &str,
        attempt: u32,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let mut request = request.build()?;
        let span = tracing::debug_span!(
            "pact request",
            otel.name = tracing::field::Empty,
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            http.request.method = %request.method(),
            server.address = host,
            http.request.resend_count = attempt - 1,
            http.response.status_code = tracing::field::Empty,
        );
        if crate::telemetry::enabled() {
            span.record("otel.name", request.method().as_str());
        }
        crate::telemetry::inject(&span, request.headers_mut());
        let r = self.client.execute(request).instrument(span.clone()).await;
        match &r {
            Ok(a) => {
                span.record("http.response.status_code", a.status().as_u16());
                if a.status().is_server_error() {
                    span.record("otel.status_code", "error");
                }
            }
            Err(_) => {
                span.record("otel.status_code", "error");
            }
        }
        r
    }

    /// Sends the request `build` makes (again for each retry) to `url`'s host, with the
    /// breaker, retries, backoff and Retry-After. Any answer below 500 but 429 is returned
    /// (the caller reads 4xx); 5xx and network errors are retried.
    pub async fn send(
        &self,
        url: &str,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, HttpFailure> {
        let host = host_of(url);
        let mut attempt = 0u32;
        // When our own failures open the breaker mid-request, the last of them says more.
        let mut last_failure: Option<HttpFailure> = None;
        loop {
            if let Err(open) = self.admit(&host) {
                return Err(last_failure.unwrap_or(open));
            }
            attempt += 1;
            let started = Instant::now();
            let r = self.attempt(&host, attempt, build(&self.client)).await;
            let secs = started.elapsed().as_secs_f64();
            let last = attempt >= self.cfg.max_attempts;
            match r {
                Err(e) => {
                    self.record(&host, secs, Some("network"));
                    let message = if e.is_timeout() {
                        "timed out".to_owned()
                    } else {
                        // The innermost cause says most (refused, reset, certificate).
                        let mut m = e.to_string();
                        let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
                        while let Some(s) = src {
                            m = s.to_string();
                            src = s.source();
                        }
                        m
                    };
                    let failure = HttpFailure::Network {
                        host: host.clone(),
                        message,
                    };
                    if last {
                        return Err(failure);
                    }
                    last_failure = Some(failure);
                    tokio::time::sleep(backoff(self.cfg.backoff, attempt)).await;
                }
                Ok(resp) if resp.status().as_u16() == 429 => {
                    self.record(&host, secs, Some("throttled"));
                    let wait = retry_after(resp.headers());
                    if wait > self.cfg.max_retry_after || last {
                        return Err(HttpFailure::Throttled {
                            host,
                            retry_after: wait,
                        });
                    }
                    tokio::time::sleep(wait).await;
                }
                Ok(resp) if resp.status().is_server_error() => {
                    self.record(&host, secs, Some("status"));
                    let failure = HttpFailure::Status {
                        host: host.clone(),
                        status: resp.status().as_u16(),
                    };
                    if last {
                        return Err(failure);
                    }
                    last_failure = Some(failure);
                    tokio::time::sleep(backoff(self.cfg.backoff, attempt)).await;
                }
                Ok(resp) => {
                    self.record(&host, secs, None);
                    return Ok(resp);
                }
            }
        }
    }

    /// A cached token for (token URL, client id), if it has more than 30 s left.
    pub fn cached_token(&self, token_url: &str, client_id: &str) -> Option<String> {
        let t = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        t.get(&(token_url.to_owned(), client_id.to_owned()))
            .filter(|(_, until)| *until > Instant::now() + Duration::from_secs(30))
            .map(|(tok, _)| tok.clone())
    }

    pub fn cache_token(&self, token_url: &str, client_id: &str, token: &str, expires_in: u64) {
        let mut t = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        t.insert(
            (token_url.to_owned(), client_id.to_owned()),
            (
                token.to_owned(),
                Instant::now() + Duration::from_secs(expires_in),
            ),
        );
    }

    pub fn forget_token(&self, token_url: &str, client_id: &str) {
        let mut t = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        t.remove(&(token_url.to_owned(), client_id.to_owned()));
    }

    /// A host's breaker state: `closed`, `open` or `half_open`.
    pub fn breaker_state(&self, host: &str) -> &'static str {
        let hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        match hosts.get(&host.to_ascii_lowercase()).map(|h| h.breaker) {
            Some(Breaker::Open { until }) if Instant::now() < until => "open",
            Some(Breaker::Open { .. }) | Some(Breaker::HalfOpen) => "half_open",
            _ => "closed",
        }
    }

    /// The series in Prometheus text format.
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        let hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        let mut names: Vec<&String> = hosts.keys().collect();
        names.sort();
        let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        let _ = writeln!(
            out,
            "# HELP vcci_pact_http_requests_total Requests sent to PACT hosts, by host."
        );
        let _ = writeln!(out, "# TYPE vcci_pact_http_requests_total counter");
        for n in &names {
            let _ = writeln!(
                out,
                "vcci_pact_http_requests_total{{host=\"{}\"}} {}",
                esc(n),
                hosts[*n].stats.requests
            );
        }
        let _ = writeln!(
            out,
            "# HELP vcci_pact_http_errors_total Failed requests to PACT hosts, by host and kind (network, status, throttled, breaker)."
        );
        let _ = writeln!(out, "# TYPE vcci_pact_http_errors_total counter");
        for n in &names {
            let mut kinds: Vec<_> = hosts[*n].stats.errors.iter().collect();
            kinds.sort();
            for (k, v) in kinds {
                let _ = writeln!(
                    out,
                    "vcci_pact_http_errors_total{{host=\"{}\",kind=\"{k}\"}} {v}",
                    esc(n)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP vcci_pact_http_request_seconds Latency of requests to PACT hosts, by host."
        );
        let _ = writeln!(out, "# TYPE vcci_pact_http_request_seconds histogram");
        for n in &names {
            let s = &hosts[*n].stats;
            for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "vcci_pact_http_request_seconds_bucket{{host=\"{}\",le=\"{b}\"}} {}",
                    esc(n),
                    s.latency_buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "vcci_pact_http_request_seconds_bucket{{host=\"{}\",le=\"+Inf\"}} {}",
                esc(n),
                s.latency_count
            );
            let _ = writeln!(
                out,
                "vcci_pact_http_request_seconds_sum{{host=\"{}\"}} {}",
                esc(n),
                s.latency_sum
            );
            let _ = writeln!(
                out,
                "vcci_pact_http_request_seconds_count{{host=\"{}\"}} {}",
                esc(n),
                s.latency_count
            );
        }
        let _ = writeln!(
            out,
            "# HELP vcci_pact_breaker_state A PACT host's circuit breaker: 0 closed, 1 open, 2 half-open."
        );
        let _ = writeln!(out, "# TYPE vcci_pact_breaker_state gauge");
        for n in &names {
            let v = match hosts[*n].breaker {
                Breaker::Closed { .. } => 0,
                Breaker::Open { until } if Instant::now() < until => 1,
                _ => 2,
            };
            let _ = writeln!(out, "vcci_pact_breaker_state{{host=\"{}\"}} {v}", esc(n));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_waits() {
        assert_eq!(
            host_of("https://A.example:8443/3/footprints?x=1"),
            "a.example:8443"
        );
        for attempt in 1..6 {
            let b = backoff(Duration::from_millis(100), attempt);
            assert!(b <= Duration::from_millis(100) * (1 << attempt));
        }
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Duration::from_secs(7));
    }

    #[test]
    fn the_breaker_opens_after_n_failures_and_a_probe_closes_it() {
        let http = PactHttp::new(HttpConfig {
            breaker_failures: 3,
            breaker_cooldown: Duration::from_millis(50),
            ca_file: None,
            ..HttpConfig::default()
        })
        .unwrap();
        let h = "h.example";
        for _ in 0..3 {
            assert!(http.admit(h).is_ok());
            http.record(h, 0.01, Some("network"));
        }
        assert_eq!(http.breaker_state(h), "open");
        assert!(matches!(
            http.admit(h),
            Err(HttpFailure::BreakerOpen { .. })
        ));
        std::thread::sleep(Duration::from_millis(60));
        // One probe is let through; others wait for it.
        assert!(http.admit(h).is_ok());
        assert!(http.admit(h).is_err());
        http.record(h, 0.01, None);
        assert_eq!(http.breaker_state(h), "closed");
        // A failed probe opens it again.
        for _ in 0..3 {
            http.record(h, 0.01, Some("status"));
        }
        std::thread::sleep(Duration::from_millis(60));
        assert!(http.admit(h).is_ok());
        http.record(h, 0.01, Some("network"));
        assert_eq!(http.breaker_state(h), "open");
        let mut m = String::new();
        http.render_metrics(&mut m);
        assert!(
            m.contains("vcci_pact_breaker_state{host=\"h.example\"} 1"),
            "{m}"
        );
        assert!(
            m.contains("vcci_pact_http_errors_total{host=\"h.example\",kind=\"breaker\"} 2"),
            "{m}"
        );
    }
}
