//! The background job worker: claims queued jobs (CSV imports, reports) from the database
//! and runs them, one at a time per node, off the request path. `import.rs` and
//! `report.rs` run each kind.

mod import;
mod pact_answer;
mod pact_sync;
mod report;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tracing::Instrument;
use vcci_store::model::jobs::{Job, JobKind};

use crate::App;

/// An upload with no new chunk for this long is removed.
const UPLOAD_STALE_MS: i64 = 600_000;
/// Rejected lines listed in a job's `errors` (all of them are in its rejects file).
pub const MAX_LISTED_REJECTS: usize = 1000;

/// The worker loop: recover orphaned jobs, then claim and run queued ones until stopping.
pub async fn worker(app: Arc<App>) {
    let mut last_recovery: Option<Instant> = None;
    while !app.stopping() {
        if last_recovery.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
            last_recovery = Some(Instant::now());
            let stale = app.config.job_stale.as_millis() as i64;
            match app
                .db(move |db| db.recover_jobs(stale, UPLOAD_STALE_MS))
                .await
            {
                Ok(r) if r.requeued + r.failed > 0 => tracing::warn!(
                    requeued = r.requeued,
                    failed = r.failed,
                    "recovered interrupted jobs"
                ),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e.message, "recovering jobs"),
            }
        }
        let node = app.node.clone();
        match app.db(move |db| db.claim_job(&node)).await {
            Ok(Some(job)) => run(&app, job).await,
            Ok(None) => {
                let _ =
                    tokio::time::timeout(Duration::from_secs(1), app.jobs_queued.notified()).await;
            }
            Err(e) => {
                tracing::error!(error = %e.message, "claiming a job");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// What a finished run decided.
pub(crate) enum Outcome {
    Succeeded(Value),
    Failed(Value),
    /// The node is stopping (or lost the job): back to the queue.
    Interrupted,
}

/// How often a running job's progress is looked at for its live event.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// Runs `job` in a span of its own, with the job's database calls (and an import's
/// transactions, a sync's requests) under it: a child of the span that queued the job when
/// its parameters kept one (`telemetry::job_params`), else a trace's root.
async fn run(app: &Arc<App>, job: Job) {
    let kind = job.kind.as_str();
    let span = tracing::info_span!(
        "job",
        job = %job.id,
        vcci.job_kind = kind,
        vcci.org_id = job.org_id.0,
        otel.name = tracing::field::Empty,
        otel.kind = "consumer",
    );
    if crate::telemetry::enabled() {
        span.record("otel.name", format!("job {kind}"));
    }
    crate::telemetry::continue_job(&span, &job.params);
    run_in_span(app, job).instrument(span).await
}

async fn run_in_span(app: &Arc<App>, job: Job) {
    let id = job.id.clone();
    let org = job.org_id;
    // Live events: the job is running, then its progress as it changes, then its end.
    app.job_changed(org, &id).await;
    let progress = tokio::spawn(watch_progress(Arc::clone(app), org, id.clone()));
    let a = Arc::clone(app);
    let outcome = if matches!(
        job.kind,
        JobKind::PactSync | JobKind::PactAnswer | JobKind::PactNotify
    ) {
        // Network-bound: runs on the async runtime, its database calls on blocking threads;
        // in a task of its own, so that a panic fails the job, not the worker.
        tokio::spawn(
            async move {
                match job.kind {
                    JobKind::PactSync => pact_sync::run(&a, &job).await,
                    JobKind::PactNotify => pact_answer::notify(&a, &job).await,
                    _ => pact_answer::run(&a, &job).await,
                }
            }
            .in_current_span(),
        )
        .await
        .unwrap_or_else(|e| {
            Ok(Outcome::Failed(
                json!([{"message": format!("the job crashed: {e}")}]),
            ))
        })
    } else {
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _in = span.enter();
            match job.kind {
                JobKind::Report => report::run(&a, &job),
                _ => import::run(&a, &job),
            }
        })
        .await
        .unwrap_or_else(|e| {
            Ok(Outcome::Failed(
                json!([{"message": format!("the job crashed: {e}")}]),
            ))
        })
    };
    if !matches!(outcome, Ok(Outcome::Succeeded(_) | Outcome::Interrupted)) {
        crate::telemetry::failed(&tracing::Span::current());
    }
    let node = app.node.clone();
    let jid = id.clone();
    let done = app
        .db_write(org, move |db| match outcome {
            Ok(Outcome::Succeeded(result)) => {
                let (result, errors) = split_errors(result);
                db.finish_job(&jid, &node, true, Some(&result), errors.as_deref())
            }
            Ok(Outcome::Failed(errors)) => {
                db.finish_job(&jid, &node, false, None, Some(&errors.to_string()))
            }
            Ok(Outcome::Interrupted) => db.requeue_job(&jid, &node),
            Err(e) => db.finish_job(
                &jid,
                &node,
                false,
                None,
                Some(&json!([{"message": e.to_string()}]).to_string()),
            ),
        })
        .await;
    // The watcher is gone (not merely told to go) before the last event: nothing it read
    // earlier can follow the job's end.
    progress.abort();
    let _ = progress.await;
    if let Err(e) = done {
        tracing::error!(job = %id, error = %e.message, "recording the end of a job");
    }
    app.job_changed(org, &id).await;
}

/// Emits the job's live event whenever its recorded progress changed (the runs record it
/// as they go: imports in each commit, syncs every second, reports at the end).
async fn watch_progress(app: Arc<App>, org: vcci_store::OrgId, id: String) {
    let mut last = None;
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let jid = id.clone();
        let Ok(Some(j)) = app.db(move |db| db.get_job(org, &jid)).await else {
            continue;
        };
        let now = (j.processed, j.bytes_read);
        if last != Some(now) {
            last = Some(now);
            app.live_event(org, "job", crate::job_view::job_event(&j));
        }
    }
}

/// A result may carry `errors` (rejected lines) that belong in the job's `errors`.
fn split_errors(mut result: Value) -> (String, Option<String>) {
    let errors = result
        .as_object_mut()
        .and_then(|m| m.remove("errors"))
        .map(|e| e.to_string());
    (result.to_string(), errors)
}
