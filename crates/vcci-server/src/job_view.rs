//! A job as the API (`GET /api/v1/jobs/{id}`) and its live `job` events show it.

use serde_json::{Value, json};
use vcci_store::model::jobs::Job;

/// A job as the API shows it.
pub fn job_json(j: &Job) -> Value {
    let parse = |s: &Option<String>| {
        s.as_deref()
            .and_then(|s| serde_json::from_str::<Value>(s).ok())
    };
    let mut progress = json!({"processed": j.processed, "bytes_read": j.bytes_read});
    if let Some(t) = j.total {
        progress["total"] = json!(t);
    }
    if let Some(t) = j.bytes_total {
        progress["bytes_total"] = json!(t);
    }
    let mut v = json!({
        "job_id": j.id,
        "kind": j.kind.as_str(),
        "status": j.status,
        "progress": progress,
        "params": params(&j.params),
        "attempts": j.attempts,
        "created_at": j.created_at,
        "started_at": j.started_at,
        "finished_at": j.finished_at,
    });
    if let Some(r) = parse(&j.result) {
        v["result"] = r;
    }
    if let Some(e) = parse(&j.errors) {
        v["errors"] = e;
    }
    v
}

/// A job as a live `job` event carries it: as the API shows it, without its `errors` (up
/// to `MAX_LISTED_REJECTS` rejected lines; `GET` the job for them).
pub fn job_event(j: &Job) -> Value {
    let mut v = job_json(j);
    if let Some(m) = v.as_object_mut()
        && let Some(Value::Array(e)) = m.remove("errors")
    {
        m.insert("errors_listed".into(), json!(e.len()));
    }
    v
}

/// A job's parameters as shown: without the trace context kept for its run.
fn params(p: &str) -> Value {
    let mut v = serde_json::from_str::<Value>(p).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.remove(crate::telemetry::JOB_TRACEPARENT);
    }
    v
}
