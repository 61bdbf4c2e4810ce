//! Tracing through the PACT client, in a test binary of its own: it installs a scoped
//! `tracing` subscriber, and `tracing` caches per call site whether anyone listens, so
//! other tests hitting the same call sites on other threads at the same moment could leave
//! the cache saying no one does (tracing-core registers a call site's interest without
//! holding off a concurrent dispatcher registration).

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::pact_host::{
    Faults, PAGES, certs, connection, fake_host, http, recipient, run_sync, serve_tls,
};

/// With tracing on, each request to a supplier's host (each retry too) carries the W3C
/// trace context of its own client span, in the trace of the job that syncs.
#[tokio::test]
async fn a_sync_passes_its_trace_context_to_the_host() {
    use opentelemetry::trace::{TraceContextExt, TracerProvider};
    use tracing::Instrument;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    use tracing_subscriber::layer::SubscriberExt;
    let Some(certs) = certs() else { return };
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let _traced = tracing::subscriber::set_default(
        tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test"))),
    );
    let faults = Arc::new(Faults::default());
    let (addr, _stop) = serve_tls(fake_host(Arc::clone(&faults)), &certs, "127.0.0.1:0").await;
    let r = recipient();
    let c = connection(&r, &format!("https://localhost:{}", addr.port()));
    let h = http(&certs, Duration::from_secs(5));
    faults.server_errors.store(1, Ordering::SeqCst);
    let job = tracing::info_span!("job");
    let trace = job.context().span().span_context().trace_id().to_string();
    let rep = run_sync(&h, &r, &c, None)
        .instrument(job)
        .await
        .unwrap_or_else(|(e, _)| panic!("{e}"));
    assert_eq!(rep.pages, u64::from(PAGES));
    let seen = faults.traceparents.lock().unwrap().clone();
    // The pages and the retry of the first one.
    assert_eq!(seen.len(), PAGES as usize + 1, "{seen:?}");
    let mut spans = std::collections::HashSet::new();
    for tp in &seen {
        let parts: Vec<&str> = tp.split('-').collect();
        assert_eq!(parts.len(), 4, "{tp}");
        assert_eq!(parts[1], trace, "the job's trace: {tp}");
        assert_eq!(parts[3], "01", "{tp}");
        assert!(
            spans.insert(parts[2].to_owned()),
            "a span per attempt: {seen:?}"
        );
    }
}
