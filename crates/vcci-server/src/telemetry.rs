//! Distributed tracing with OpenTelemetry, off unless an OTLP endpoint is configured.
//!
//! Every request, job, database call and outgoing PACT request is a `tracing` span (made
//! where it happens: `middleware::request_id`, `jobs::run`, `App::db`, `PactHttp::send`).
//! With an endpoint, `layer` adds the `tracing-opentelemetry` layer, which turns those spans
//! into OpenTelemetry spans, and the SDK's batch processor sends them over OTLP
//! (HTTP/protobuf) from a thread of its own. Without one, nothing here runs: the database
//! and client spans are at DEBUG level, which the log filter leaves disabled, so making them
//! costs a check of a cached flag.
//!
//! Propagation is W3C Trace Context: an incoming `traceparent`/`tracestate` makes the
//! request's span a child of the caller's (`continue_from`), and outgoing calls carry the
//! current span's (`inject`).
//!
//! The standard variables apply: `OTEL_EXPORTER_OTLP_ENDPOINT` (base URL, `/v1/traces`
//! appended) or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (full URL), `OTEL_EXPORTER_OTLP_HEADERS`,
//! `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER(_ARG)`, `OTEL_BSP_*`,
//! `OTEL_SDK_DISABLED`.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::http::HeaderMap;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider};
use opentelemetry_http::{Bytes, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, Tracer};
use tracing::Subscriber;
use tracing_opentelemetry::{OpenTelemetryLayer, OpenTelemetrySpanExt};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{Filtered, Targets};
use tracing_subscriber::registry::LookupSpan;

static ON: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported (this process installed the OpenTelemetry layer): spans then
/// get their OpenTelemetry names, which cost a string each.
pub fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Where and how to export (`vcci serve --otlp-…`, or the standard variables).
#[derive(Debug, Clone, Default)]
pub struct OtlpConfig {
    /// The collector's base URL (e.g. `http://127.0.0.1:4318`); `/v1/traces` is appended.
    /// None: off, unless `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set.
    pub endpoint: Option<String>,
    /// The share of new traces kept, 0 to 1, as a parent-based ratio sampler: a request
    /// that arrives with a `traceparent` follows its caller's decision. None: the
    /// `OTEL_TRACES_SAMPLER` variables, or every trace.
    pub sampling_ratio: Option<f64>,
    /// `service.name` of the spans.
    pub service_name: String,
    /// Trust only these CAs for an `https://` collector (else the system's roots).
    pub ca_file: Option<PathBuf>,
}

/// The exporting pipeline; `shutdown` sends what is still buffered.
#[derive(Debug)]
pub struct Exporting {
    provider: SdkTracerProvider,
}

impl Exporting {
    /// Sends the spans still buffered and stops the exporter. Blocks (up to the export
    /// timeout): call it outside the async runtime, or through `spawn_blocking`.
    pub fn shutdown(self) {
        ON.store(false, Ordering::Relaxed);
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "stopping the trace exporter");
        }
    }
}

/// The layer that exports vcci's spans: those of its own crates, down to DEBUG (database
/// calls, outgoing requests).
pub type OtelLayer<S> = Filtered<OpenTelemetryLayer<S, Tracer>, Targets, S>;

/// The exporting layer, when `cfg` (or the environment) names an endpoint; None when
/// tracing is off. An invalid configuration is an error naming the setting.
pub fn layer<S>(cfg: &OtlpConfig) -> Result<Option<(OtelLayer<S>, Exporting)>, String>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let set = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    if set("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return Ok(None);
    }
    // A traces-specific endpoint is used as it is (the exporter reads it); the general one
    // is a base URL.
    let endpoint = match (&cfg.endpoint, set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")) {
        (_, Some(url)) => {
            check_url("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &url)?;
            None
        }
        (Some(base), None) if !base.trim().is_empty() => {
            check_url("--otlp-endpoint", base.trim())?;
            Some(format!("{}/v1/traces", base.trim().trim_end_matches('/')))
        }
        _ => return Ok(None),
    };
    if let Some(r) = cfg.sampling_ratio
        && !(0.0..=1.0).contains(&r)
    {
        return Err(format!(
            "--otlp-sampling-ratio must be between 0 and 1, not {r}"
        ));
    }
    let client = ExportClient::new(cfg.ca_file.as_deref())?;
    let mut builder = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_http_client(client);
    if let Some(url) = endpoint {
        builder = builder.with_endpoint(url);
    }
    let exporter = builder
        .build()
        .map_err(|e| format!("the OTLP exporter: {e}"))?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(cfg.service_name.clone())
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    let mut provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource);
    if let Some(r) = cfg.sampling_ratio {
        provider = provider.with_sampler(Sampler::ParentBased(Box::new(
            Sampler::TraceIdRatioBased(r),
        )));
    }
    let provider = provider.build();
    let tracer = provider.tracer("vcci");
    let ours = Targets::new()
        .with_target("vcci_server", tracing::Level::DEBUG)
        .with_target("vcci_store", tracing::Level::DEBUG)
        .with_target("vcci", tracing::Level::DEBUG);
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_threads(false)
        .with_filter(ours);
    ON.store(true, Ordering::Relaxed);
    Ok(Some((layer, Exporting { provider })))
}

fn check_url(setting: &str, url: &str) -> Result<(), String> {
    let ok = url
        .parse::<axum::http::Uri>()
        .ok()
        .filter(|u| matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some());
    match ok {
        Some(_) => Ok(()),
        None => Err(format!(
            "{setting}: {url:?} is not an http:// or https:// URL"
        )),
    }
}

/// Sets an attribute of `span`'s OpenTelemetry span, when tracing is on. Unlike
/// `Span::record`, it leaves the log's copy of the span's fields alone (the JSON log layer
/// re-encodes them on every record: measured, three records per request cost a quarter of
/// the cached summary's throughput).
pub fn attribute(span: &tracing::Span, key: &'static str, value: impl Into<opentelemetry::Value>) {
    if enabled() {
        span.set_attribute(key, value);
    }
}

/// `attribute` on the current span (looked up only when tracing is on).
pub fn current_attribute(key: &'static str, value: impl Into<opentelemetry::Value>) {
    if enabled() {
        tracing::Span::current().set_attribute(key, value);
    }
}

/// Marks `span`'s OpenTelemetry span as failed, when tracing is on.
pub fn failed(span: &tracing::Span) {
    if enabled() {
        span.set_status(opentelemetry::trace::Status::error(""));
    }
}

/// Makes `span` (a request's) a child of the trace in the request's `traceparent` (and
/// `tracestate`), when the header is there and valid. Without the OpenTelemetry layer
/// (tracing off), this and the functions below do nothing.
pub fn continue_from(span: &tracing::Span, headers: &HeaderMap) {
    if !headers.contains_key("traceparent") {
        return;
    }
    let cx = TraceContextPropagator::new().extract(&opentelemetry_http::HeaderExtractor(headers));
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}

/// Writes `span`'s trace context (`traceparent`, `tracestate`) into an outgoing request's
/// headers.
pub fn inject(span: &tracing::Span, headers: &mut HeaderMap) {
    let cx = span.context();
    TraceContextPropagator::new()
        .inject_context(&cx, &mut opentelemetry_http::HeaderInjector(headers));
}

/// Where a job's parameters keep the `traceparent` of the span that queued it.
pub const JOB_TRACEPARENT: &str = "traceparent";

/// A job's parameters (JSON text), with the current span's `traceparent` when traced, so
/// that the job's run, later and on any node, continues the trace of what queued it.
pub fn job_params(mut params: serde_json::Value) -> String {
    if enabled()
        && let Some(o) = params.as_object_mut()
    {
        let mut h = HeaderMap::new();
        inject(&tracing::Span::current(), &mut h);
        if let Some(tp) = h.get("traceparent").and_then(|v| v.to_str().ok()) {
            o.insert(JOB_TRACEPARENT.into(), tp.into());
        }
    }
    params.to_string()
}

/// Makes `span` (a job's) a child of the span that queued the job, when its parameters
/// (`params`, JSON text) kept one.
pub fn continue_job(span: &tracing::Span, params: &str) {
    if !enabled() {
        return;
    }
    let tp = serde_json::from_str::<serde_json::Value>(params)
        .ok()
        .and_then(|p| p.get(JOB_TRACEPARENT)?.as_str()?.parse().ok());
    if let Some(tp) = tp {
        let mut h = HeaderMap::new();
        h.insert("traceparent", tp);
        continue_from(span, &h);
    }
}

/// The trace id and span id (hex) of the span `id`, for a log line, when it is traced.
pub fn ids(id: &tracing::span::Id) -> Option<(String, String)> {
    let cx = tracing::dispatcher::get_default(|d| tracing_opentelemetry::get_otel_context(id, d))?;
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid()
        .then(|| (sc.trace_id().to_string(), sc.span_id().to_string()))
}

/// The exporter's HTTP client: reqwest on a one-thread runtime of its own, since the
/// SDK's batch processor exports from its own thread, outside the server's runtime (and
/// still runs at shutdown, after it).
#[derive(Debug)]
struct ExportClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

/// The largest collector answer read (they are a few bytes).
const MAX_ANSWER: u64 = 1 << 20;

impl ExportClient {
    fn new(ca_file: Option<&std::path::Path>) -> Result<ExportClient, String> {
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(crate::client_tls::config(ca_file)?)
            .connect_timeout(Duration::from_secs(5))
            .timeout(export_timeout())
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("vcci/", env!("CARGO_PKG_VERSION"), " (OTLP)"))
            .build()
            .map_err(|e| format!("the OTLP HTTP client: {e}"))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("vcci-otlp")
            .enable_all()
            .build()
            .map_err(|e| format!("the OTLP exporter's runtime: {e}"))?;
        Ok(ExportClient { client, runtime })
    }
}

/// How long one export may take: `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT` or
/// `OTEL_EXPORTER_OTLP_TIMEOUT` (milliseconds), else 10 s, as the specification says.
fn export_timeout() -> Duration {
    [
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
    ]
    .iter()
    .find_map(|v| std::env::var(v).ok()?.trim().parse::<u64>().ok())
    .filter(|ms| *ms > 0)
    .map_or(Duration::from_secs(10), Duration::from_millis)
}

impl opentelemetry_http::HttpClient for ExportClient {
    fn send_bytes<'life0, 'async_trait>(
        &'life0 self,
        request: Request<Bytes>,
    ) -> Pin<Box<dyn Future<Output = Result<Response<Bytes>, HttpError>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        let client = self.client.clone();
        let task = self.runtime.spawn(async move {
            let request = reqwest::Request::try_from(request)?;
            let mut answer = client.execute(request).await?;
            let mut out = Response::builder().status(answer.status());
            if let Some(h) = out.headers_mut() {
                *h = std::mem::take(answer.headers_mut());
            }
            let mut body = Vec::new();
            while let Some(chunk) = answer.chunk().await? {
                if (body.len() + chunk.len()) as u64 > MAX_ANSWER {
                    return Err("the collector's answer is larger than 1 MiB".into());
                }
                body.extend_from_slice(&chunk);
            }
            Ok::<_, HttpError>(out.body(Bytes::from(body))?)
        });
        Box::pin(async move { task.await.map_err(|e| Box::new(e) as HttpError)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::TraceId;
    use tracing_subscriber::layer::SubscriberExt;

    /// A subscriber with the OpenTelemetry layer over a provider that exports nothing.
    fn traced() -> (impl Subscriber + Send + Sync, SdkTracerProvider) {
        let provider = SdkTracerProvider::builder().build();
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("test"));
        (tracing_subscriber::registry().with(layer), provider)
    }

    #[test]
    fn a_callers_traceparent_is_continued_and_passed_on() {
        let (subscriber, _provider) = traced();
        tracing::subscriber::with_default(subscriber, || {
            let mut incoming = HeaderMap::new();
            incoming.insert(
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
                    .parse()
                    .unwrap(),
            );
            incoming.insert("tracestate", "vendor=abc".parse().unwrap());
            let span = tracing::info_span!("request");
            continue_from(&span, &incoming);
            let _in = span.enter();
            let client = tracing::debug_span!("pact request");
            let mut outgoing = HeaderMap::new();
            inject(&client, &mut outgoing);
            let tp = outgoing["traceparent"].to_str().unwrap().to_owned();
            // Same trace, a new span (the client span's), sampled as the caller said.
            let parts: Vec<&str> = tp.split('-').collect();
            assert_eq!(parts[0], "00", "{tp}");
            assert_eq!(parts[1], "0af7651916cd43dd8448eb211c80319c", "{tp}");
            assert_ne!(parts[2], "b7ad6b7169203331", "{tp}");
            assert_ne!(parts[2], "0000000000000000", "{tp}");
            assert_eq!(parts[3], "01", "{tp}");
            assert_eq!(outgoing["tracestate"], "vendor=abc");
            // The client span's id is the one sent.
            let sc = client.context().span().span_context().clone();
            assert_eq!(sc.span_id().to_string(), parts[2]);
        });
    }

    #[test]
    fn a_malformed_traceparent_starts_a_new_trace() {
        let (subscriber, _provider) = traced();
        tracing::subscriber::with_default(subscriber, || {
            for bad in [
                "00-00000000000000000000000000000000-b7ad6b7169203331-01",
                "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
                "zz-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                "00-0af7651916cd43dd8448eb211c8031-b7ad6b7169203331-01",
                "garbage",
            ] {
                let mut incoming = HeaderMap::new();
                incoming.insert("traceparent", bad.parse().unwrap());
                let span = tracing::info_span!("request");
                continue_from(&span, &incoming);
                let sc = span.context().span().span_context().clone();
                assert!(sc.is_valid(), "{bad}");
                assert_ne!(
                    sc.trace_id(),
                    TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap(),
                    "{bad}"
                );
                // A new root: no remote parent.
                assert!(!sc.is_remote(), "{bad}");
            }
            // The ids of a traced span are the ones its context has.
            let span = tracing::info_span!("job");
            let want = span.context().span().span_context().clone();
            let id = span.id().unwrap();
            let (trace, span_id) = ids(&id).unwrap();
            assert_eq!(trace, want.trace_id().to_string());
            assert_eq!(span_id, want.span_id().to_string());
        });
    }

    #[test]
    fn settings_are_checked() {
        let mut cfg = OtlpConfig {
            endpoint: Some("ftp://x".into()),
            service_name: "vcci".into(),
            ..OtlpConfig::default()
        };
        let Err(e) = layer::<tracing_subscriber::Registry>(&cfg) else {
            panic!("accepted")
        };
        assert!(e.contains("--otlp-endpoint"), "{e}");
        cfg.endpoint = Some("http://127.0.0.1:4318".into());
        cfg.sampling_ratio = Some(1.5);
        let Err(e) = layer::<tracing_subscriber::Registry>(&cfg) else {
            panic!("accepted")
        };
        assert!(e.contains("between 0 and 1"), "{e}");
        cfg.endpoint = None;
        cfg.sampling_ratio = None;
        assert!(
            layer::<tracing_subscriber::Registry>(&cfg)
                .unwrap()
                .is_none()
        );
    }
}
