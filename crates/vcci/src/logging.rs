//! Logs: through `tracing`, to standard error, as JSON lines (level, target, message, the
//! request's id and other fields) when standard error is not a terminal, as readable lines
//! when it is. `VCCI_LOG_FORMAT=json|text` overrides the choice; `VCCI_LOG` sets the levels
//! (`info` by default; e.g. `warn,vcci_server=debug`).
//!
//! With tracing on (`vcci serve --otlp-endpoint`, vcci_server::telemetry), the same spans
//! are exported over OTLP, and each JSON line inside a traced span starts with its
//! `trace_id` and `span_id`, so that a log line and its trace join up.
//!
//! Logs are for operators; what a command tells its user (the inventory, import progress,
//! the address it listens on) is written as plain text, as before.

use std::io::IsTerminal;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use vcci_server::telemetry::{Exporting, OtlpConfig};

/// Installs the process's log subscriber (once, at start), with the OTLP exporter when
/// `otlp` (or the environment) names an endpoint; the exporter is returned, to be shut
/// down (its last spans sent) at exit.
pub fn init(otlp: Option<&OtlpConfig>) -> Result<Option<Exporting>, String> {
    let filter = std::env::var("VCCI_LOG")
        .ok()
        .and_then(|s| s.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(Level::INFO));
    let json = match std::env::var("VCCI_LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("text") => false,
        _ => !std::io::stderr().is_terminal(),
    };
    let (otel, exporting) = match otlp {
        Some(cfg) => match vcci_server::telemetry::layer(cfg)? {
            Some((layer, exporting)) => (Some(layer), Some(exporting)),
            None => (None, None),
        },
        None => (None, None),
    };
    // A second install (a test harness that already has one) is not an error.
    let _ = match otel {
        // Each layer has its own filter: the log's levels do not limit what is traced.
        Some(otel) => tracing_subscriber::registry()
            .with(otel)
            .with(logs(json).with_filter(filter))
            .try_init(),
        // Untraced: one filter for the whole subscriber, as cheap as it gets.
        None => tracing_subscriber::registry()
            .with(filter)
            .with(logs(json))
            .try_init(),
    };
    Ok(exporting)
}

/// The log layer: JSON lines or readable ones, to standard error.
fn logs<S>(json: bool) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    if json {
        layer
            .json()
            .event_format(WithTraceIds(
                tracing_subscriber::fmt::format()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            ))
            .boxed()
    } else {
        layer.compact().boxed()
    }
}

/// A JSON line with the trace's ids first, when the event's span is traced.
struct WithTraceIds<F>(F);

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let ids = ctx
            .parent_span()
            .and_then(|s| vcci_server::telemetry::ids(&s.id()));
        let Some((trace, span)) = ids else {
            return self.0.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        match line.strip_prefix('{') {
            Some(rest) => write!(
                writer,
                "{{\"trace_id\":\"{trace}\",\"span_id\":\"{span}\",{rest}"
            ),
            None => writer.write_str(&line),
        }
    }
}
