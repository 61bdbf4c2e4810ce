//! An import job: the uploaded CSV read back from the database and imported, its rejects
//! stored as the job's rejects file.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use vcci_core::catalog;
use vcci_store::import::{
    ImportError, ImportOptions, ImportReport, ImportTarget, JobLink, RejectsWriter,
    import_suppliers, import_transactions,
};
use vcci_store::model::jobs::{Job, JobFileReader, JobFileWriter};
use vcci_store::{Store, StoreError};

use super::{MAX_LISTED_REJECTS, Outcome};
use crate::App;

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

pub(super) fn run(app: &App, job: &Job) -> Result<Outcome, StoreError> {
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
    // Who submitted the job (recorded with it); a job queued by an earlier version has none.
    let actor = serde_json::from_value::<vcci_store::Actor>(params["actor"].clone())
        .unwrap_or_else(|_| vcci_store::Actor::system("import job"));
    let target = ImportTarget {
        store,
        catalog: catalog(),
        org: &org,
        source: &source,
        options: &opts,
        actor: &actor,
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
