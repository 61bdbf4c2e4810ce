//! The background job worker: claims queued jobs (CSV imports, reports) from the database
//! and runs them, one at a time per node, off the request path.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use vcci_store::import::ImportTarget;

use serde_json::{Value, json};
use vcci_core::catalog;
use vcci_store::import::{
    ImportError, ImportOptions, ImportReport, JobLink, RejectsWriter, import_suppliers,
    import_transactions,
};
use vcci_store::model::jobs::{Job, JobFileReader, JobFileWriter, JobKind};
use vcci_store::{Store, StoreError};

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
                Ok(r) if r.requeued + r.failed > 0 => eprintln!(
                    "vcci-server: recovered interrupted jobs: {} queued again, {} failed",
                    r.requeued, r.failed
                ),
                Ok(_) => {}
                Err(e) => eprintln!("vcci-server: recovering jobs: {}", e.message),
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
                eprintln!("vcci-server: claiming a job: {}", e.message);
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

async fn run(app: &Arc<App>, job: Job) {
    let id = job.id.clone();
    let org = job.org_id;
    let a = Arc::clone(app);
    let outcome = tokio::task::spawn_blocking(move || match job.kind {
        JobKind::Import => run_import(&a, &job),
        JobKind::Report => crate::routes::reports::run_report(&a, &job),
    })
    .await
    .unwrap_or_else(|e| {
        Ok(Outcome::Failed(
            json!([{"message": format!("the job crashed: {e}")}]),
        ))
    });
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
    if let Err(e) = done {
        eprintln!("vcci-server: recording the end of job {id}: {}", e.message);
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

/// Reads the job's input, failing once `stop` is set so the import ends at a batch boundary.
struct Stoppable<R> {
    inner: R,
    stop: Arc<AtomicBool>,
}

impl<R: Read> Read for Stoppable<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(std::io::Error::other("the node is shutting down"));
        }
        self.inner.read(buf)
    }
}

fn run_import(app: &App, job: &Job) -> Result<Outcome, StoreError> {
    let store: &Store = app.store();
    let params: Value = serde_json::from_str(&job.params).unwrap_or_default();
    let suppliers = params["kind"] == "suppliers";
    let db = store.connect()?;
    let Some(org) = db.org_by_id(job.org_id)? else {
        return Ok(Outcome::Failed(
            json!([{"message": "the organization no longer exists"}]),
        ));
    };
    let stop = Arc::clone(&app.stopping);
    // The import stops at a batch boundary when the node stops.
    let halt = Arc::new(AtomicBool::new(false));
    let input = Stoppable {
        inner: JobFileReader::open(store, &job.id, "input")?,
        stop: Arc::clone(&halt),
    };
    let mut rejects = RejectsWriter::new(JobFileWriter::create(store, &job.id, "rejects")?)
        .map_err(|e| StoreError::Io {
            context: "writing rejects".into(),
            source: e,
        })?;
    // Progress and the heartbeat are recorded by the import's writer, in each commit (a
    // separate write would wait for the writer's lock).
    let mut progress = |_: vcci_store::import::ImportProgress| {
        if stop.load(Ordering::Relaxed) {
            halt.store(true, Ordering::Relaxed);
        }
    };
    // Short transactions: API writes wait for the import's write lock at most this long.
    let opts = ImportOptions {
        max_commit: Duration::from_millis(200),
        job: Some(JobLink {
            id: job.id.clone(),
            worker: app.node.clone(),
        }),
        first_load_in_bulk: job.bytes_total.unwrap_or(0).max(0) as u64
            >= app.config.bulk_load_bytes,
        ..ImportOptions::default()
    };
    let source = format!("job {}", job.id);
    let target = ImportTarget {
        store,
        catalog: catalog(),
        org: &org,
        source: &source,
        options: &opts,
    };
    let result: Result<ImportReport, ImportError> = if suppliers {
        import_suppliers(&target, input, &mut rejects)
    } else {
        import_transactions(&target, input, &mut rejects, &mut progress)
    };
    if matches!(result, Err(ImportError::JobLost))
        || (halt.load(Ordering::Relaxed) && result.is_err())
    {
        return Ok(Outcome::Interrupted);
    }
    let written = rejects.into_inner().finish().map_err(|e| StoreError::Io {
        context: "writing rejects".into(),
        source: e,
    })?;
    match result {
        Ok(report) => {
            app.metrics
                .import_finished(report.lines_read, report.seconds);
            let errors = listed_rejects(store, &job.id)?;
            let bytes = job.bytes_total.unwrap_or(0);
            db.job_progress(&job.id, &app.node, report.lines_read as i64, bytes)?;
            let accepted = report.inserted + report.updated + report.unchanged;
            Ok(Outcome::Succeeded(json!({
                "lines_read": report.lines_read,
                "accepted": accepted,
                "inserted": report.inserted,
                "updated": report.updated,
                "unchanged": report.unchanged,
                "rejected": report.rejected,
                "ignored_columns": report.ignored_columns,
                "seconds": report.seconds,
                "rejects_url": (report.rejected > 0).then(|| format!("/api/v1/jobs/{}/rejects.csv", job.id)),
                "rejects_bytes": written,
                "errors": errors,
            })))
        }
        Err(ImportError::File(m)) => Ok(Outcome::Failed(json!([{"message": m}]))),
        Err(ImportError::Store(e)) => Err(e),
        Err(ImportError::JobLost) => Ok(Outcome::Interrupted),
    }
}

/// The first rejected lines of a job as `{"line", "column", "message"}`.
fn listed_rejects(store: &Store, job: &str) -> Result<Vec<Value>, StoreError> {
    let mut scanner = vcci_core::csv::CsvScanner::new(
        std::io::BufReader::new(JobFileReader::open(store, job, "rejects")?),
        4 << 20,
    );
    let mut out = Vec::new();
    let text = |f: Option<&[u8]>| String::from_utf8_lossy(f.unwrap_or_default()).into_owned();
    let mut header = true;
    while out.len() < MAX_LISTED_REJECTS {
        let rec = scanner.next_record().map_err(|e| StoreError::Io {
            context: "reading rejects".into(),
            source: e,
        })?;
        let Some(Ok(r)) = rec else { break };
        if header {
            header = false;
            continue;
        }
        let line: u64 = text(r.field(0)).parse().unwrap_or_default();
        let column = text(r.field(1));
        let mut e = json!({"line": line, "message": text(r.field(2))});
        if !column.is_empty() {
            e["column"] = Value::String(column);
        }
        out.push(e);
    }
    Ok(out)
}
