//! Background jobs (CSV imports, reports) persisted in the database, and their files.
//!
//! Life of a job: `uploading` (an import's CSV is being stored; invisible to the API) →
//! `queued` → `running` (claimed by one worker, which refreshes a heartbeat) → `succeeded` or
//! `failed`. A claim is one `UPDATE ... WHERE status = 'queued'` in a write transaction, so
//! two workers never run the same job. A `running` job whose heartbeat stops (its process
//! died) is queued again by `recover_jobs`, up to `MAX_ATTEMPTS` runs; imports are idempotent
//! (upsert by transaction_id, unchanged lines skipped), so a re-run neither loses nor
//! duplicates lines.

use std::io::{Read, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::conn::{Db, Dialect, Row, Store, Tx, args};
use crate::model::audit::{self, Actor};
use crate::model::orgs::OrgId;
use crate::{Result, StoreError, now_rfc3339};

/// Runs of one job before it is failed as interrupted.
pub const MAX_ATTEMPTS: i64 = 3;

/// Size of a stored file chunk.
pub const CHUNK_BYTES: usize = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    Import,
    Report,
    /// Pulling a supplier's footprints from its PACT host (`params`: `connection_id`).
    PactSync,
    /// Answering a customer's PACT request (`params`: `request_id`).
    PactAnswer,
    /// Telling a customer's host of footprints published (`params`: `connection_id`,
    /// `pf_ids`).
    PactNotify,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Import => "import",
            JobKind::Report => "report",
            JobKind::PactSync => "pact_sync",
            JobKind::PactAnswer => "pact_answer",
            JobKind::PactNotify => "pact_notify",
        }
    }

    fn parse(s: &str) -> JobKind {
        match s {
            "report" => JobKind::Report,
            "pact_sync" => JobKind::PactSync,
            "pact_answer" => JobKind::PactAnswer,
            "pact_notify" => JobKind::PactNotify,
            _ => JobKind::Import,
        }
    }
}

/// A job as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    pub id: String,
    pub org_id: OrgId,
    pub kind: JobKind,
    /// `queued`, `running`, `succeeded` or `failed` (`uploading` is never returned).
    pub status: String,
    /// The job's parameters (JSON).
    pub params: String,
    pub processed: i64,
    pub total: Option<i64>,
    pub bytes_read: i64,
    pub bytes_total: Option<i64>,
    /// The outcome (JSON), once finished.
    pub result: Option<String>,
    /// Problems (JSON array), e.g. rejected lines or the reason of a failure.
    pub errors: Option<String>,
    pub attempts: i64,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

/// Milliseconds since the Unix epoch (heartbeats).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A new job id: 128 random bits in hex (unguessable, though access is checked anyway).
fn new_id() -> Result<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| StoreError::internal(format!("no randomness: {e}")))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

const JOB_COLS: &str =
    "id, org_id, kind, status, params, processed, total, bytes_read, bytes_total,
     result, errors, attempts, created_at, started_at, finished_at";

fn job_row(r: &Row<'_>) -> Result<Job> {
    Ok(Job {
        id: r.string(0)?,
        org_id: OrgId(r.i64(1)?),
        kind: JobKind::parse(r.str(2)?),
        status: r.string(3)?,
        params: r.string(4)?,
        processed: r.i64(5)?,
        total: r.opt_i64(6)?,
        bytes_read: r.i64(7)?,
        bytes_total: r.opt_i64(8)?,
        result: r.opt_string(9)?,
        errors: r.opt_string(10)?,
        attempts: r.i64(11)?,
        created_at: r.string(12)?,
        started_at: r.opt_string(13)?,
        finished_at: r.opt_string(14)?,
    })
}

/// What `recover_jobs` did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    pub requeued: usize,
    pub failed: usize,
    pub abandoned_uploads: usize,
}

impl Db {
    /// A new job of `org`: `uploading` when its input follows, else `queued`.
    pub fn create_job(
        &self,
        org: OrgId,
        kind: JobKind,
        params: &str,
        uploading: bool,
    ) -> Result<String> {
        let id = new_id()?;
        self.conn.execute(
            "INSERT INTO jobs (id, org_id, kind, status, params, created_at, heartbeat_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            args![
                &id,
                org.0,
                kind.as_str(),
                if uploading { "uploading" } else { "queued" },
                params,
                &now_rfc3339(),
                now_ms()
            ],
        )?;
        Ok(id)
    }

    /// Stores chunk `seq` of file `name` of a job (and refreshes an upload's heartbeat).
    pub fn put_job_chunk(&self, job: &str, name: &str, seq: i64, data: &[u8]) -> Result<()> {
        self.conn.execute(
            "INSERT INTO job_files (job_id, name, seq, data) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (job_id, name, seq) DO UPDATE SET data = excluded.data",
            args![job, name, seq, data],
        )?;
        self.conn.execute(
            "UPDATE jobs SET heartbeat_at = ?2 WHERE id = ?1",
            args![job, now_ms()],
        )?;
        Ok(())
    }

    /// An upload is complete: the job is queued, with its input's size.
    pub fn queue_upload(&self, job: &str, bytes_total: i64) -> Result<()> {
        self.conn.execute(
            "UPDATE jobs SET status = 'queued', bytes_total = ?2, heartbeat_at = ?3
             WHERE id = ?1 AND status = 'uploading'",
            args![job, bytes_total, now_ms()],
        )?;
        Ok(())
    }

    /// Removes a job and its files (an upload that did not complete).
    pub fn delete_job(&mut self, job: &str) -> Result<()> {
        let tx = self.conn.begin()?;
        tx.execute("DELETE FROM job_files WHERE job_id = ?1", args![job])?;
        tx.execute("DELETE FROM jobs WHERE id = ?1", args![job])?;
        tx.commit()?;
        Ok(())
    }

    /// The job `id` of `org` (another organization's job is not found).
    pub fn get_job(&self, org: OrgId, id: &str) -> Result<Option<Job>> {
        self.conn.query_opt(
            &format!(
                "SELECT {JOB_COLS} FROM jobs WHERE id = ?1 AND org_id = ?2 AND status <> 'uploading'"
            ),
            args![id, org.0],
            job_row,
        )
    }

    /// Claims the oldest queued job for `worker`, if any: it becomes `running`.
    /// Claims the oldest queued job for `worker`, if any: it becomes `running`. Safe across
    /// nodes: SQLite's write lock serializes claims; on PostgreSQL the row is locked with
    /// `FOR UPDATE SKIP LOCKED`, so concurrent claimers take different jobs, never one twice.
    pub fn claim_job(&mut self, worker: &str) -> Result<Option<Job>> {
        if self.conn.dialect() == Dialect::Postgres {
            return self.conn.query_opt(
                &format!(
                    "UPDATE jobs SET status = 'running', attempts = attempts + 1, claimed_by = ?1,
                       started_at = ?2, heartbeat_at = ?3, processed = 0, bytes_read = 0
                     WHERE id = (SELECT id FROM jobs WHERE status = 'queued'
                                 ORDER BY created_at, seq LIMIT 1 FOR UPDATE SKIP LOCKED)
                       AND status = 'queued'
                     RETURNING {JOB_COLS}"
                ),
                args![worker, &now_rfc3339(), now_ms()],
                job_row,
            );
        }
        let tx = self.conn.begin_immediate()?;
        let id: Option<String> = tx.query_opt(
            "SELECT id FROM jobs WHERE status = 'queued' ORDER BY created_at, rowid LIMIT 1",
            &[],
            |r| r.string(0),
        )?;
        let Some(id) = id else {
            return Ok(None);
        };
        tx.execute(
            "UPDATE jobs SET status = 'running', attempts = attempts + 1, claimed_by = ?2,
               started_at = ?3, heartbeat_at = ?4, processed = 0, bytes_read = 0
             WHERE id = ?1 AND status = 'queued'",
            args![&id, worker, &now_rfc3339(), now_ms()],
        )?;
        let job = tx.query_one(
            &format!("SELECT {JOB_COLS} FROM jobs WHERE id = ?1"),
            args![&id],
            job_row,
        )?;
        tx.commit()?;
        Ok(Some(job))
    }

    /// Progress of a running job, which also refreshes its heartbeat. False when the job is
    /// no longer this worker's (it was recovered elsewhere): the worker should stop.
    pub fn job_progress(
        &self,
        job: &str,
        worker: &str,
        processed: i64,
        bytes_read: i64,
    ) -> Result<bool> {
        let n = self.conn.execute(
            "UPDATE jobs SET processed = ?3, bytes_read = ?4, heartbeat_at = ?5
             WHERE id = ?1 AND claimed_by = ?2 AND status = 'running'",
            args![job, worker, processed, bytes_read, now_ms()],
        )?;
        Ok(n == 1)
    }

    /// Ends a running job of `worker` as `succeeded` or `failed`.
    pub fn finish_job(
        &self,
        job: &str,
        worker: &str,
        succeeded: bool,
        result: Option<&str>,
        errors: Option<&str>,
    ) -> Result<()> {
        self.conn.execute(
            "UPDATE jobs SET status = ?3, result = ?4, errors = ?5, finished_at = ?6, heartbeat_at = ?7
             WHERE id = ?1 AND claimed_by = ?2 AND status = 'running'",
            args![
                job,
                worker,
                if succeeded { "succeeded" } else { "failed" },
                result,
                errors,
                &now_rfc3339(),
                now_ms()
            ],
        )?;
        Ok(())
    }

    /// Puts a running job of `worker` back in the queue (the node is shutting down); the
    /// interrupted run does not count as an attempt.
    pub fn requeue_job(&self, job: &str, worker: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE jobs SET status = 'queued',
               attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, claimed_by = NULL
             WHERE id = ?1 AND claimed_by = ?2 AND status = 'running'",
            args![job, worker],
        )?;
        Ok(())
    }

    /// Queues again `running` jobs whose heartbeat is older than `stale_ms` (their worker
    /// died), failing those that already ran `MAX_ATTEMPTS` times, and removes uploads
    /// abandoned for longer than `upload_stale_ms`.
    pub fn recover_jobs(&mut self, stale_ms: i64, upload_stale_ms: i64) -> Result<Recovered> {
        let now = now_ms();
        let tx = self.conn.begin_immediate()?;
        let errors = match tx.dialect() {
            Dialect::Sqlite => {
                "json_array(json_object('message', 'the job was interrupted ' || attempts || ' times (its node stopped); it was not retried again'))"
            }
            Dialect::Postgres => {
                "json_build_array(json_build_object('message', 'the job was interrupted ' || attempts || ' times (its node stopped); it was not retried again'))::text"
            }
        };
        let failed = tx.query(
            &format!(
                "UPDATE jobs SET status = 'failed', finished_at = ?2, errors = {errors}
                 WHERE status = 'running' AND heartbeat_at < ?1 AND attempts >= ?3 RETURNING id"
            ),
            args![now - stale_ms, &now_rfc3339(), MAX_ATTEMPTS],
            |r| r.string(0),
        )?;
        let requeued = tx.query(
            "UPDATE jobs SET status = 'queued', claimed_by = NULL
             WHERE status = 'running' AND heartbeat_at < ?1 RETURNING id",
            args![now - stale_ms],
            |r| r.string(0),
        )?;
        // The imports those jobs were running end as failed, and what they committed is
        // sealed in the audit log (a retry is an import of its own). After the jobs' rows
        // are taken: a worker still committing holds its job's row, and is then not stale.
        for job in failed.iter().chain(&requeued) {
            let stale = tx.query(
                "SELECT org_id, id FROM imports WHERE source = ?1 AND status = 'running'",
                args![format!("job {job}").as_str()],
                |r| Ok((OrgId(r.i64(0)?), r.i64(1)?)),
            )?;
            for (org, import_id) in stale {
                tx.execute(
                    "UPDATE imports SET status = 'failed', finished_at = ?2 WHERE id = ?1",
                    args![import_id, &now_rfc3339()],
                )?;
                seal(
                    &tx,
                    org,
                    import_id,
                    "interrupted",
                    &Actor::system("job recovery"),
                )?;
            }
        }
        let (failed, requeued) = (failed.len(), requeued.len());
        tx.execute(
            "DELETE FROM job_files WHERE job_id IN
               (SELECT id FROM jobs WHERE status = 'uploading' AND heartbeat_at < ?1)",
            args![now - upload_stale_ms],
        )?;
        let abandoned_uploads = tx.execute(
            "DELETE FROM jobs WHERE status = 'uploading' AND heartbeat_at < ?1",
            args![now - upload_stale_ms],
        )? as usize;
        tx.commit()?;
        Ok(Recovered {
            requeued,
            failed,
            abandoned_uploads,
        })
    }

    /// Chunk `seq` of file `name` of a job.
    pub fn job_chunk(&self, job: &str, name: &str, seq: i64) -> Result<Option<Vec<u8>>> {
        self.conn.query_opt(
            "SELECT data FROM job_files WHERE job_id = ?1 AND name = ?2 AND seq = ?3",
            args![job, name, seq],
            |r| Ok(r.blob(0)?.to_vec()),
        )
    }

    /// Removes file `name` of a job.
    pub fn delete_job_file(&self, job: &str, name: &str) -> Result<()> {
        self.conn.execute(
            "DELETE FROM job_files WHERE job_id = ?1 AND name = ?2",
            args![job, name],
        )?;
        Ok(())
    }
}

/// Reads a job's stored file chunk by chunk, on its own connection.
#[derive(Debug)]
pub struct JobFileReader {
    db: Db,
    job: String,
    name: String,
    seq: i64,
    buf: Vec<u8>,
    at: usize,
    done: bool,
}

impl JobFileReader {
    pub fn open(store: &Store, job: &str, name: &str) -> Result<JobFileReader> {
        Ok(JobFileReader {
            db: store.connect()?,
            job: job.to_owned(),
            name: name.to_owned(),
            seq: 0,
            buf: Vec::new(),
            at: 0,
            done: false,
        })
    }
}

impl Read for JobFileReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.buf.len() {
            if self.done {
                return Ok(0);
            }
            match self
                .db
                .job_chunk(&self.job, &self.name, self.seq)
                .map_err(std::io::Error::other)?
            {
                Some(chunk) => {
                    self.buf = chunk;
                    self.at = 0;
                    self.seq += 1;
                }
                None => self.done = true,
            }
        }
        let n = out.len().min(self.buf.len() - self.at);
        out[..n].copy_from_slice(&self.buf[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Writes a job's file in chunks, on its own connection. Call `finish` to store the last one.
#[derive(Debug)]
pub struct JobFileWriter {
    db: Db,
    job: String,
    name: String,
    seq: i64,
    buf: Vec<u8>,
    pub written: u64,
}

impl JobFileWriter {
    pub fn create(store: &Store, job: &str, name: &str) -> Result<JobFileWriter> {
        let db = store.connect()?;
        db.delete_job_file(job, name)?;
        Ok(JobFileWriter {
            db,
            job: job.to_owned(),
            name: name.to_owned(),
            seq: 0,
            buf: Vec::with_capacity(CHUNK_BYTES),
            written: 0,
        })
    }

    fn store_chunk(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            self.db
                .put_job_chunk(&self.job, &self.name, self.seq, &self.buf)
                .map_err(std::io::Error::other)?;
            self.seq += 1;
            self.buf.clear();
        }
        Ok(())
    }

    /// Stores what is buffered; returns the bytes written in all.
    pub fn finish(mut self) -> std::io::Result<u64> {
        self.store_chunk()?;
        Ok(self.written)
    }
}

impl Write for JobFileWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = data.len().min(CHUNK_BYTES - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        self.written += n as u64;
        if self.buf.len() == CHUNK_BYTES {
            self.store_chunk()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Db {
    /// Jobs by (kind, status), for metrics.
    pub fn job_counts(&self) -> Result<Vec<(String, String, i64)>> {
        self.conn.query(
            "SELECT kind, status, count(*) FROM jobs WHERE status <> 'uploading' GROUP BY kind, status",
            &[],
            |r| Ok((r.string(0)?, r.string(1)?, r.i64(2)?)),
        )
    }
}

/// Counts of an import's lines, as its row records them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportCounts {
    pub lines_read: u64,
    /// Inserted or updated.
    pub accepted: u64,
    pub unchanged: u64,
    pub rejected: u64,
}

impl Db {
    /// Records the start of an import of `kind` from `source` into `org`; returns its id.
    pub fn start_import(&self, org: OrgId, kind: &str, source: &str) -> Result<i64> {
        self.conn.query_one(
            "INSERT INTO imports (org_id, kind, source, status, started_at) VALUES (?1, ?2, ?3, 'running', ?4)
             RETURNING id",
            args![org.0, kind, source, &now_rfc3339()],
            |r| r.i64(0),
        )
    }

    /// Records that the import ended with these counts, and seals its line digests with its
    /// audit entry, by `actor`, in one transaction.
    pub fn finish_import(
        &mut self,
        org: OrgId,
        import_id: i64,
        c: ImportCounts,
        actor: &Actor,
    ) -> Result<()> {
        let tx = self.conn.begin_immediate()?;
        tx.execute(
            "UPDATE imports SET status = 'succeeded', finished_at = ?2, lines_read = ?3, accepted = ?4,
               unchanged = ?5, rejected = ?6 WHERE id = ?1",
            args![
                import_id,
                &now_rfc3339(),
                c.lines_read as i64,
                c.accepted as i64,
                c.unchanged as i64,
                c.rejected as i64
            ],
        )?;
        seal(&tx, org, import_id, "succeeded", actor)?;
        tx.commit()
    }

    /// Records that the import failed (what it committed stays, and is sealed in the audit
    /// log as the import's).
    pub fn fail_import(&mut self, org: OrgId, import_id: i64, actor: &Actor) -> Result<()> {
        let tx = self.conn.begin_immediate()?;
        tx.execute(
            "UPDATE imports SET status = 'failed', finished_at = ?2 WHERE id = ?1",
            args![import_id, &now_rfc3339()],
        )?;
        seal(&tx, org, import_id, "failed", actor)?;
        tx.commit()
    }

    /// Refreshes the heartbeat of `job` while `worker` runs it, with its input read so far;
    /// false if the job is no longer this worker's (another worker recovered it).
    pub fn job_heartbeat(&self, job: &str, worker: &str, bytes_read: u64) -> Result<bool> {
        Ok(self.conn.execute(
            "UPDATE jobs SET heartbeat_at = ?3,
               bytes_read = CASE WHEN bytes_read > ?4 THEN bytes_read ELSE ?4 END
             WHERE id = ?1 AND claimed_by = ?2 AND status = 'running'",
            args![job, worker, now_ms(), bytes_read as i64],
        )? == 1)
    }
}

/// Appends the audit entry of import `import_id`, sealing the line digests its writers kept:
/// its source and counts as recorded.
fn seal(tx: &Tx<'_>, org: OrgId, import_id: i64, status: &str, actor: &Actor) -> Result<()> {
    let detail = tx.query_one(
        "SELECT kind, source, lines_read, accepted, unchanged, rejected FROM imports WHERE id = ?1",
        args![import_id],
        |r| {
            Ok(serde_json::json!({
                "status": status,
                "kind": r.str(0)?,
                "source": r.str(1)?,
                "lines_read": r.i64(2)?,
                "accepted": r.i64(3)?,
                "unchanged": r.i64(4)?,
                "rejected": r.i64(5)?,
            }))
        },
    )?;
    audit::seal_import(tx, org, import_id, actor, detail)?;
    Ok(())
}

/// Adds a committing transaction's share to the import's counts (several writers may add
/// theirs), in that transaction.
pub(crate) fn add_import_progress(tx: &Tx<'_>, import_id: i64, c: ImportCounts) -> Result<()> {
    tx.execute(
        "UPDATE imports SET lines_read = lines_read + ?2, accepted = accepted + ?3,
           unchanged = unchanged + ?4 WHERE id = ?1",
        args![
            import_id,
            c.lines_read as i64,
            c.accepted as i64,
            c.unchanged as i64
        ],
    )?;
    Ok(())
}

/// Adds `lines` processed to `job`'s progress and refreshes its heartbeat in a committing
/// transaction; false if the job is no longer `worker`'s (the transaction must not commit).
pub(crate) fn add_job_progress(
    tx: &Tx<'_>,
    job: &str,
    worker: &str,
    lines: u64,
    bytes_read: u64,
) -> Result<bool> {
    Ok(tx.execute(
        "UPDATE jobs SET processed = processed + ?3,
           bytes_read = CASE WHEN bytes_read > ?4 THEN bytes_read ELSE ?4 END, heartbeat_at = ?5
         WHERE id = ?1 AND claimed_by = ?2 AND status = 'running'",
        args![job, worker, lines as i64, bytes_read as i64, now_ms()],
    )? == 1)
}
