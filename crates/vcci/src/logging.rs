//! Logs: through `tracing`, to standard error, as JSON lines (level, target, message, the
//! request's id and other fields) when standard error is not a terminal, as readable lines
//! when it is. `VCCI_LOG_FORMAT=json|text` overrides the choice; `VCCI_LOG` sets the levels
//! (`info` by default; e.g. `warn,vcci_server=debug`).
//!
//! Logs are for operators; what a command tells its user (the inventory, import progress,
//! the address it listens on) is written as plain text, as before.

use std::io::IsTerminal;

use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the process's log subscriber (once, at start).
pub fn init() {
    let filter = std::env::var("VCCI_LOG")
        .ok()
        .and_then(|s| s.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(Level::INFO));
    let json = match std::env::var("VCCI_LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("text") => false,
        _ => !std::io::stderr().is_terminal(),
    };
    let registry = tracing_subscriber::registry().with(filter);
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    // A second install (a test harness that already has one) is not an error.
    let _ = if json {
        registry
            .with(
                layer
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .try_init()
    } else {
        registry.with(layer.compact()).try_init()
    };
}
