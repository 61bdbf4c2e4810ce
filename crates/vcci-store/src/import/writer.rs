//! The writing side of an import: batches from the reader written in transactions of
//! several batches each (group commit: fewer, larger commits write each hot index page
//! once, while batches stay small to bound memory), each transaction recording the import's
//! and its job's progress. On PostgreSQL several writers run at once, one per write bucket
//! of ids, each on a connection of its own; an organization's first load is one
//! transaction with one writer.

use std::io::Write;
use std::iter::Peekable;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::reader::{Batch, MAX_BATCH_BYTES};
use super::rejects::{Reject, RejectsWriter, collect_rejects, write_rejects};
use super::{ImportError, ImportOptions, JobLink};
use crate::conn::{Db, Store, Tx};
use crate::model::audit::{self, LineDigests};
use crate::model::jobs::{ImportCounts, add_import_progress, add_job_progress};
use crate::model::orgs::OrgId;
use crate::write::{Delta, LineOutcome, LineWriter, WriteBatch, record_digests};

/// Lines written by one or all writers.
#[derive(Debug, Default)]
pub(super) struct Totals {
    /// Written as a first load (whose partitions it analyzed itself).
    pub first_load: bool,
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub duplicates: u64,
    /// Lines refused because their year (or the stored line's) is a closed period.
    pub period_closed: u64,
}

impl Totals {
    fn add(&mut self, o: Totals) {
        self.first_load |= o.first_load;
        self.inserted += o.inserted;
        self.updated += o.updated;
        self.unchanged += o.unchanged;
        self.duplicates += o.duplicates;
        self.period_closed += o.period_closed;
    }
}

/// Shared by a first load's writer, the reader and the thread that keeps its job's heartbeat.
#[derive(Debug, Default)]
pub(super) struct FirstLoadState {
    /// The reader reached the end of the input (set before it closes the channel): only
    /// then is the load committed; a load whose input broke off keeps nothing.
    pub input_complete: AtomicBool,
    /// The job was recovered by another worker: the load stops.
    pub lost: AtomicBool,
    /// Bytes of the input handed to the database so far (the job's progress).
    pub bytes_read: AtomicU64,
}

/// Refreshes `job`'s heartbeat every 500 ms from a connection of its own until `done`.
pub(super) fn beat(db: Db, job: &JobLink, state: &FirstLoadState, done: &AtomicBool) {
    let mut last = Instant::now();
    while !done.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(50));
        if last.elapsed() < Duration::from_millis(500) {
            continue;
        }
        last = Instant::now();
        let bytes = state.bytes_read.load(Ordering::Relaxed);
        // A failed update (the database away) is retried; the load itself fails if the
        // database stays away.
        if matches!(db.job_heartbeat(&job.id, &job.worker, bytes), Ok(false)) {
            state.lost.store(true, Ordering::Relaxed);
        }
    }
}

/// Called after each commit with the rejects of its batches: (batch seq, rejects).
pub(super) type EmitRejects<'a> =
    dyn FnMut(Vec<(u64, Vec<Reject>)>) -> Result<(), ImportError> + 'a;

/// What every writer of one import shares.
#[derive(Clone, Copy, Debug)]
pub(super) struct WriteContext<'a> {
    pub org: OrgId,
    pub import_id: i64,
    pub opts: &'a ImportOptions,
    /// Lines committed so far, by all writers (the reader reports it as progress).
    pub committed: &'a AtomicU64,
    /// Set when the import may be written as a first load (one writer).
    pub first_load: Option<&'a FirstLoadState>,
    /// The import's span (the job's), parent of each transaction's: the writers run on
    /// threads of their own.
    pub span: &'a tracing::Span,
}

/// One writer: its connection, its line writer and what it wrote.
struct Writer<'a, 'e> {
    cx: WriteContext<'a>,
    lines: LineWriter,
    recycle: Option<mpsc::Sender<Batch>>,
    emit: &'e mut EmitRejects<'e>,
    totals: Totals,
}

/// What one transaction gathered before it commits.
#[derive(Default)]
struct TxnState {
    /// Lines and rejects of its batches (bounded by `commit_lines`).
    lines: usize,
    bytes: usize,
    lines_read: u64,
    bytes_read: u64,
    written: u64,
    counts_before: (u64, u64),
    delta: Delta,
    rejects: Vec<(u64, Vec<Reject>)>,
    /// The audit digests of the lines written, kept with the transaction.
    digests: LineDigests,
}

/// Bytes of line digests after which a long transaction (a first load) keeps them.
const DIGESTS_KEPT_AT: usize = 1 << 20;

/// Writes the batches of `rx` on `db` until the reader closes the channel.
pub(super) fn write_batches(
    db: &Db,
    lines: LineWriter,
    cx: WriteContext<'_>,
    rx: mpsc::Receiver<Batch>,
    recycle: Option<mpsc::Sender<Batch>>,
    emit: &mut EmitRejects<'_>,
) -> Result<Totals, ImportError> {
    let mut w = Writer {
        cx,
        lines,
        recycle,
        emit,
        totals: Totals::default(),
    };
    let mut batches = rx.into_iter().peekable();
    let mut first = true;
    while batches.peek().is_some() {
        w.transaction(db, &mut batches, std::mem::take(&mut first))?;
    }
    Ok(w.totals)
}

impl Writer<'_, '_> {
    /// One transaction of batches; the first one of the import may be a first load, which
    /// takes every batch.
    fn transaction(
        &mut self,
        db: &Db,
        batches: &mut Peekable<mpsc::IntoIter<Batch>>,
        first: bool,
    ) -> Result<(), ImportError> {
        let try_first_load = first && self.cx.first_load.is_some();
        if !try_first_load && let Some(next) = batches.peek() {
            self.lines
                .prepare_outside_tx(&db.conn, self.cx.org, &next.lines)?;
        }
        let span = tracing::debug_span!(
            parent: self.cx.span,
            "import transaction",
            rows = tracing::field::Empty,
            first_load = tracing::field::Empty
        );
        let _in = span.enter();
        let txn = db.conn.begin_immediate()?;
        // False if another writer wrote lines of the organization meanwhile: then this
        // transaction creates the partitions its first batch needs itself.
        let in_bulk = try_first_load && self.lines.begin_first_load(&txn, self.cx.org)?;
        let started = Instant::now();
        let mut st = TxnState {
            counts_before: (
                self.totals.inserted + self.totals.updated,
                self.totals.unchanged,
            ),
            ..TxnState::default()
        };
        let opts = self.cx.opts;
        while in_bulk
            || (st.lines < opts.commit_lines
                && st.bytes < 4 * MAX_BATCH_BYTES
                && started.elapsed() < opts.max_commit)
        {
            if self
                .cx
                .first_load
                .is_some_and(|f| f.lost.load(Ordering::Relaxed))
            {
                return Err(ImportError::JobLost);
            }
            // A batch that needs a new partition starts the next transaction instead.
            let needs_new_txn = batches
                .peek()
                .is_some_and(|b| self.lines.needs_outside_tx(&db.conn, self.cx.org, &b.lines));
            if st.lines > 0 && !in_bulk && needs_new_txn {
                break;
            }
            let Some(batch) = batches.next() else { break };
            self.write_batch(&txn, batch, &mut st, in_bulk)?;
        }
        span.record("rows", st.written);
        span.record("first_load", in_bulk);
        self.commit(txn, st, in_bulk)
    }

    /// Writes one batch in the transaction and turns its duplicates into rejects.
    fn write_batch(
        &mut self,
        txn: &Tx<'_>,
        mut batch: Batch,
        st: &mut TxnState,
        in_bulk: bool,
    ) -> Result<(), ImportError> {
        // One read-model delta per transaction: a supplier's month is upserted once per
        // commit, not once per batch.
        st.delta.merge(std::mem::take(&mut batch.delta));
        let wb = WriteBatch {
            org: self.cx.org,
            lines: &batch.lines,
            new_suppliers: &batch.new_suppliers,
            import_id: Some(self.cx.import_id),
            counted: true,
            closed: &[],
            restating: false,
        };
        let out = self.lines.write(txn, &wb, &mut st.delta)?;
        record_digests(&mut st.digests, &batch.lines, &out);
        if st.digests.as_bytes().len() >= DIGESTS_KEPT_AT {
            audit::put_import_digests(txn, self.cx.org, self.cx.import_id, &st.digests)?;
            st.digests.clear();
        }
        st.lines_read += batch.lines_read;
        st.bytes_read = st.bytes_read.max(batch.bytes_read);
        st.lines += batch.lines.len() + batch.rejects.len();
        st.bytes += batch.bytes();
        st.written += out.len() as u64;
        for (i, o) in out.iter().enumerate() {
            match o {
                LineOutcome::Inserted => self.totals.inserted += 1,
                LineOutcome::Updated { .. } => self.totals.updated += 1,
                LineOutcome::Unchanged => self.totals.unchanged += 1,
                LineOutcome::Duplicate { first_line } => {
                    self.totals.duplicates += 1;
                    let r = duplicate_reject(&batch, i, *first_line);
                    batch.rejects.push(r);
                }
                LineOutcome::PeriodClosed { year } => {
                    self.totals.period_closed += 1;
                    let r = period_closed_reject(&batch, i, *year);
                    batch.rejects.push(r);
                }
            }
        }
        st.rejects
            .push((batch.seq, std::mem::take(&mut batch.rejects)));
        if in_bulk {
            // Rejects are final whenever the load ends: written as they come rather than
            // held for the whole file.
            (self.emit)(std::mem::take(&mut st.rejects))?;
            if let Some(f) = self.cx.first_load {
                f.bytes_read.fetch_max(st.bytes_read, Ordering::Relaxed);
            }
        }
        // The reader may have finished; then the batch is simply dropped here.
        if let Some(r) = &self.recycle {
            let _ = r.send(batch);
        }
        Ok(())
    }

    /// Flushes the transaction's read-model delta, records the import's and the job's
    /// progress in it, commits, and writes the rejects of its batches.
    fn commit(&mut self, txn: Tx<'_>, mut st: TxnState, in_bulk: bool) -> Result<(), ImportError> {
        let org = self.cx.org;
        if in_bulk
            && !self
                .cx
                .first_load
                .is_some_and(|f| f.input_complete.load(Ordering::Acquire))
        {
            // The reader failed (its error is the import's): roll everything back.
            return Err(ImportError::File("the input ended early".into()));
        }
        st.delta.flush(&txn, org)?;
        audit::put_import_digests(&txn, org, self.cx.import_id, &st.digests)?;
        if in_bulk {
            self.lines.finish_first_load(&txn)?;
        }
        let counts = ImportCounts {
            lines_read: st.lines_read,
            accepted: self.totals.inserted + self.totals.updated - st.counts_before.0,
            unchanged: self.totals.unchanged - st.counts_before.1,
            rejected: 0,
        };
        add_import_progress(&txn, self.cx.import_id, counts)?;
        if let Some(job) = &self.cx.opts.job
            && !add_job_progress(&txn, &job.id, &job.worker, st.lines_read, st.bytes_read)?
        {
            return Err(ImportError::JobLost);
        }
        txn.commit()?;
        self.totals.first_load |= in_bulk;
        self.cx.committed.fetch_add(st.written, Ordering::Relaxed);
        (self.emit)(st.rejects)
    }
}

/// The reject of line `i` of `batch`, a repeat of the id first seen on `first_line`.
fn duplicate_reject(batch: &Batch, i: usize, first_line: i64) -> Reject {
    let error = format!(
        "transaction_id: '{}' already appears on line {first_line} of this file",
        batch.lines[i].id()
    );
    line_reject(batch, i, "transaction_id", error)
}

/// The reject of line `i` of `batch`, refused because `year` is a closed period.
fn period_closed_reject(batch: &Batch, i: usize, year: u16) -> Reject {
    let error = format!("date: {}", crate::error::period_closed_message(year));
    line_reject(batch, i, "date", error)
}

/// The reject of line `i` of `batch` that the write refused, at `column`.
fn line_reject(batch: &Batch, i: usize, column: &str, error: String) -> Reject {
    let (s, e) = batch.raw_ranges[i];
    Reject {
        line: batch.lines[i].source_line.unwrap_or(0) as u64,
        column: column.into(),
        error,
        original: batch.raw[s..e].to_vec(),
    }
}

/// `write_batches` with one writer per receiver (PostgreSQL): the reader puts each line in
/// the part of its id's hash bucket (`write::bucket`), each writer writes one bucket's lines
/// on a connection of its own, in transactions of its own, under that bucket's write turn
/// (an id is always written by the same writer, so duplicates within the file are still
/// found). A collector writes the rejects in the file's order once every part of a batch is
/// committed.
pub(super) fn write_parallel<W: Write + Send>(
    store: &Store,
    first: Db,
    cx: WriteContext<'_>,
    rxs: Vec<mpsc::Receiver<Batch>>,
    recycle: mpsc::Sender<Batch>,
    rejects: &mut RejectsWriter<W>,
) -> Result<Totals, ImportError> {
    let k = rxs.len();
    let mut dbs = vec![first];
    for _ in 1..k {
        dbs.push(store.connect()?);
    }
    let (done_tx, done_rx) = mpsc::channel::<(u64, Vec<Reject>)>();
    std::thread::scope(|s| {
        let mut writers = Vec::with_capacity(k);
        for (b, (db, r)) in dbs.into_iter().zip(rxs).enumerate() {
            let done_tx = done_tx.clone();
            let recycle = recycle.clone();
            writers.push(s.spawn(move || {
                let lines = LineWriter::for_bucket(&db.conn, b as u32);
                let mut emit = |parts: Vec<(u64, Vec<Reject>)>| {
                    for p in parts {
                        let _ = done_tx.send(p);
                    }
                    Ok(())
                };
                write_batches(&db, lines, cx, r, Some(recycle), &mut emit)
            }));
        }
        drop(done_tx);
        drop(recycle);
        let collector = s.spawn(move || collect_rejects(done_rx, k, rejects));
        let mut totals = Totals::default();
        let mut failed = None;
        for w in writers {
            match w.join().expect("writer thread panicked") {
                Ok(t) => totals.add(t),
                Err(e) => {
                    failed.get_or_insert(e);
                }
            }
        }
        let collected = collector.join().expect("rejects thread panicked");
        match failed {
            Some(e) => Err(e),
            None => collected.map(|()| totals),
        }
    })
}

/// `write_batches` with the one writer's rejects written straight to `rejects`.
pub(super) fn write_single<W: Write>(
    db: &Db,
    cx: WriteContext<'_>,
    rx: mpsc::Receiver<Batch>,
    recycle: mpsc::Sender<Batch>,
    rejects: &mut RejectsWriter<W>,
) -> Result<Totals, ImportError> {
    let lines = LineWriter::for_conn(&db.conn);
    write_batches(db, lines, cx, rx, Some(recycle), &mut |parts| {
        write_rejects(rejects, parts)
    })
}
