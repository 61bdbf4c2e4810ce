//! `GET /api/v1/events`: live updates of the caller's organization as Server-Sent Events
//! (`live.rs` holds the events; this is the stream).
//!
//! A stream starts with a `ready` event (the organization's generation, and whether the
//! `Last-Event-ID` it came back with was resumed), then sends `data`, `job` and `period`
//! events as they happen, a comment as a heartbeat while idle, and ends with an `end`
//! event when its key is revoked or the node stops. A client that fell behind, or came
//! back with an id this node cannot resume from, gets `reset`: it re-reads what it shows.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::live::{LiveEvent, Next, Start};
use crate::openapi::{Api, Op};
use crate::{ApiError, App, Caller};

/// The longest `Last-Event-ID` looked at (ours are far shorter).
const MAX_LAST_ID: usize = 64;
/// The reconnection delay a client is told to use.
const RETRY: std::time::Duration = std::time::Duration::from_secs(3);

pub fn api(api: Api) -> Api {
    api.get(
        "/api/v1/events",
        stream_events,
        Op::new(
            "streamEvents",
            "events",
            "Live updates of your organization as Server-Sent Events (text/event-stream): `ready` {generation, resumed}, then `data` {generation} when its data changes, `job` (the job as GET /api/v1/jobs/{job_id} shows it, without `errors`) when a job is queued, progresses or ends, `period` when a year is closed, reopened or restated, `reset` when the client must re-read (it fell behind, or its `Last-Event-ID` is outside this node's window), `end` {reason: key_revoked | shutting_down}. Heartbeat comments keep an idle stream open. Send the `Last-Event-ID` header to resume after the last event received.",
        )
        .ok(200, "text/event-stream", "")
        .errors(&[503]),
    )
}

async fn stream_events(
    State(app): State<Arc<App>>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if app.live.stats.streams.load(Ordering::Relaxed) >= app.config.events_max_streams {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_streams",
            format!(
                "this node holds its most live-update streams ({}); try again later",
                app.config.events_max_streams
            ),
        ));
    }
    let org = caller.org_id();
    // An id we could not have sent (too long, not text) resumes nothing: `reset`.
    let last = headers.get("last-event-id").map(|v| {
        v.to_str()
            .ok()
            .filter(|s| s.len() <= MAX_LAST_ID)
            .unwrap_or("")
            .to_owned()
    });
    let stream = app.live.subscribe(org.0, caller.key_id, last.as_deref());
    let generation = app.generations.get(org.0);
    let mut first = vec![
        Event::default().event("ready").retry(RETRY).data(
            json!({"generation": generation, "resumed": matches!(stream.start, Start::Replay(_))})
                .to_string(),
        ),
    ];
    match &stream.start {
        Start::Fresh => {}
        Start::Reset => first.push(reset("outside_window")),
        Start::Replay(missed) => first.extend(missed.iter().map(|e| event(e))),
    }
    let state = (first.into_iter(), stream, false);
    let events = futures_util::stream::unfold(state, |(mut first, mut stream, done)| async move {
        if let Some(e) = first.next() {
            return Some((Ok::<_, std::convert::Infallible>(e), (first, stream, done)));
        }
        if done {
            return None;
        }
        let (e, done) = match stream.next().await {
            Next::Event(ev) => (event(&ev), false),
            Next::Lagged => {
                stream.rx = stream.rx.resubscribe();
                (reset("fell_behind"), false)
            }
            Next::End(why) => (
                Event::default()
                    .event("end")
                    .data(json!({"reason": why.as_str()}).to_string()),
                true,
            ),
        };
        Some((Ok(e), (first, stream, done)))
    });
    let mut res = Sse::new(events)
        .keep_alive(
            KeepAlive::new()
                .interval(app.config.events_heartbeat)
                .text("heartbeat"),
        )
        .into_response();
    // Proxies (nginx) must pass events on as they come.
    res.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(res)
}

fn event(e: &LiveEvent) -> Event {
    Event::default().id(&e.id).event(e.kind).data(&e.data)
}

fn reset(reason: &str) -> Event {
    Event::default()
        .event("reset")
        .data(json!({"reason": reason}).to_string())
}
