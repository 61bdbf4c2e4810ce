//! Streaming CSV import of lines and suppliers.
//!
//! The caller's thread reads, parses and calculates records into batches (`reader.rs`);
//! writer threads store each batch (lines, new suppliers, read-model deltas, import
//! progress) in transactions of several batches (`writer.rs`); rejected lines are written
//! in the file's order as the lines around them commit (`rejects.rs`). Memory is bounded by
//! the batch size, the channel depth (two batches in flight per writer) and the record-size
//! cap, whatever the file's size. SQLite has one writer and a thread that checkpoints the
//! WAL meanwhile; PostgreSQL one writer per write bucket of ids, or one for an
//! organization's first load.
//!
//! Idempotent: lines are upserted by transaction_id; a line identical to the stored one is
//! not rewritten, so re-running an import after a crash redoes nothing that was committed.

mod reader;
mod rejects;
mod suppliers;
mod writer;

use std::io::{BufReader, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Serialize;
use vcci_core::Catalog;
use vcci_core::csv::CsvScanner;
use vcci_core::line::{Field, N_FIELDS};

use self::reader::{Batch, Header, LINE_NAMES, Reader, read_header};
pub use self::rejects::{Reject, RejectsWriter};
pub use self::suppliers::import_suppliers;
use self::writer::{FirstLoadState, Totals, WriteContext, beat, write_parallel, write_single};
use crate::conn::{Db, Dialect, Store};
use crate::model::audit::Actor;
use crate::model::jobs::ImportCounts;
use crate::model::orgs::Org;
use crate::write::{ANALYZE_AFTER_LINES, LineWriter, WRITE_BUCKETS};
use crate::{Result, StoreError};

/// Where an import goes and how: the store, the factor catalogue, the organization, a name
/// for the input (recorded with the import), and the options.
#[derive(Debug, Clone, Copy)]
pub struct ImportTarget<'a> {
    pub store: &'a Store,
    pub catalog: &'static Catalog,
    pub org: &'a Org,
    pub source: &'a str,
    pub options: &'a ImportOptions,
    /// Who imports (recorded in the audit log with the import).
    pub actor: &'a Actor,
}

/// Tunables of an import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Records longer than this are rejected without being buffered.
    pub max_record_bytes: usize,
    /// Lines handed from the reader to the writer at a time (bounds memory).
    pub batch_size: usize,
    /// Lines per write transaction (at most; a transaction also ends after `max_commit`).
    pub commit_lines: usize,
    /// Longest a write transaction stays open (other writers wait for it meanwhile).
    pub max_commit: Duration,
    /// The background job running this import: each commit records the job's progress and
    /// heartbeat in the same transaction, and the import stops if the job is no longer this
    /// worker's.
    pub job: Option<JobLink>,
    /// Writer connections (PostgreSQL; default: one per write bucket; SQLite always one).
    pub writers: Option<usize>,
    /// On PostgreSQL, write the import as an organization's first load when the organization
    /// has no lines yet: one transaction, one writer, each year's partition built apart and
    /// attached at the end (`write::first_load`; ~3x less index work, but nothing is visible or
    /// kept before the end, and a rerun starts again). Callers set it for large inputs
    /// (`BULK_LOAD_BYTES`). Ignored on SQLite and for organizations that have lines.
    pub first_load_in_bulk: bool,
}

/// The input size from which the CLI and the job runner ask for a first load in bulk
/// (`ImportOptions::first_load_in_bulk`): ~200,000 lines of a typical spend file. Below it
/// an import commits as it goes, so a crash keeps what was written and the progress shows
/// committed lines.
pub const BULK_LOAD_BYTES: u64 = 32 << 20;

/// A job (id) and the worker that claimed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobLink {
    pub id: String,
    pub worker: String,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            max_record_bytes: 1 << 20,
            batch_size: 10_000,
            commit_lines: 50_000,
            max_commit: Duration::from_secs(1),
            job: None,
            writers: None,
            first_load_in_bulk: false,
        }
    }
}

/// Where an import stands (for progress displays).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ImportProgress {
    pub lines_read: u64,
    pub bytes_read: u64,
    /// Lines stored by committed transactions (inserted, updated or unchanged).
    pub committed: u64,
    pub rejected: u64,
}

/// The outcome of an import.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ImportReport {
    pub import_id: i64,
    pub lines_read: u64,
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub rejected: u64,
    pub ignored_columns: Vec<String>,
    pub seconds: f64,
}

/// A problem with the file as a whole: nothing was imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    File(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The import's job was recovered by another worker; this run stopped.
    #[error("the job was taken over by another worker")]
    JobLost,
}

impl From<rusqlite::Error> for ImportError {
    fn from(e: rusqlite::Error) -> Self {
        ImportError::Store(e.into())
    }
}

impl From<postgres::Error> for ImportError {
    fn from(e: postgres::Error) -> Self {
        ImportError::Store(e.into())
    }
}

pub(super) fn io_err(e: std::io::Error) -> ImportError {
    ImportError::Store(StoreError::Io {
        context: "reading the CSV".into(),
        source: e,
    })
}

/// Imports lines from CSV `input` into `target`, writing rejects to `rejects`.
/// `progress` is called from the reading thread about ten times a second.
pub fn import_transactions<R: Read, W: Write + Send>(
    target: &ImportTarget<'_>,
    input: R,
    rejects: &mut RejectsWriter<W>,
    progress: &mut dyn FnMut(ImportProgress),
) -> Result<ImportReport, ImportError> {
    let started = Instant::now();
    let mut scanner = CsvScanner::new(
        BufReader::with_capacity(1 << 20, input),
        target.options.max_record_bytes,
    );
    let header = read_header(&mut scanner, &LINE_NAMES)?;
    require_columns(&header)?;
    let db = target.store.connect()?;
    let profiles = db.supplier_profiles(target.org.id)?;
    let classifier = db.load_classifier(target.org.id)?;
    let resolver = db.supplier_resolver(target.org.id)?;
    let import_id = db.start_import(target.org.id, "transactions", target.source)?;
    let mut reader = Reader::new(
        scanner,
        header,
        target.catalog,
        target.org,
        profiles,
        classifier,
        resolver,
    );
    reader.state.batch_size = target.options.batch_size;
    let totals = match run(target, db, import_id, &mut reader, rejects, progress) {
        Ok(t) => t,
        Err(e) => {
            // Best effort: the import's row says it failed; committed batches stay, sealed
            // in the audit log (else `verify` lists the import as unsealed).
            if let Ok(mut db) = target.store.connect() {
                let _ = db.fail_import(target.org.id, import_id, target.actor);
            }
            return Err(e);
        }
    };
    let mut report = ImportReport {
        import_id,
        lines_read: reader.state.lines_read,
        inserted: totals.inserted,
        updated: totals.updated,
        unchanged: totals.unchanged,
        rejected: reader.state.rejected + totals.duplicates + totals.period_closed,
        ignored_columns: std::mem::take(&mut reader.state.header.ignored),
        seconds: 0.0,
    };
    finish(target, &report, &totals, &mut reader)?;
    report.seconds = started.elapsed().as_secs_f64();
    progress(ImportProgress {
        lines_read: report.lines_read,
        bytes_read: reader.scanner.bytes_read(),
        committed: report.inserted + report.updated + report.unchanged,
        rejected: report.rejected,
    });
    Ok(report)
}

/// A file without the columns every line needs is refused as a whole.
fn require_columns(h: &Header<N_FIELDS>) -> Result<(), ImportError> {
    let mut missing: Vec<&str> = [Field::TransactionId, Field::Date]
        .iter()
        .filter(|f| h.cols[**f as usize].is_none())
        .map(|f| f.name())
        .collect();
    if h.cols[Field::Amount as usize].is_none() && h.cols[Field::Quantity as usize].is_none() {
        missing.push("amount or quantity");
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ImportError::File(format!(
            "missing required column(s): {}",
            missing.join(", ")
        )))
    }
}

/// Records the import's outcome and, after a large one, refreshes the planner's statistics.
fn finish(
    target: &ImportTarget<'_>,
    report: &ImportReport,
    totals: &Totals,
    reader: &mut Reader<'_, impl std::io::BufRead>,
) -> Result<(), ImportError> {
    let mut db = target.store.connect()?;
    // The names linked to suppliers as aliases, and the pairs found for review.
    db.record_resolution(target.org.id, &mut reader.state.resolver)?;
    db.finish_import(
        target.org.id,
        report.import_id,
        ImportCounts {
            lines_read: report.lines_read,
            accepted: report.inserted + report.updated,
            unchanged: report.unchanged,
            rejected: report.rejected,
        },
        target.actor,
    )?;
    if report.inserted + report.updated >= ANALYZE_AFTER_LINES {
        // Best effort: the lines are committed; autovacuum (where it runs) or the next
        // large import refreshes the statistics if this fails. A first load analyzed its
        // own partitions.
        let years = if totals.first_load {
            Default::default()
        } else {
            reader.state.years.clone()
        };
        let w = LineWriter::for_conn(&db.conn);
        let _ = w.refresh_statistics(&db.conn, target.org.id, &years);
    }
    Ok(())
}

/// How an import's writing is arranged on this store.
struct Plan {
    /// Writer connections (each with a channel from the reader).
    writers: usize,
    /// Whether the import asks for a first load (one transaction, one writer).
    first_load: bool,
}

impl Plan {
    fn new(target: &ImportTarget<'_>, db: &Db) -> Result<Plan> {
        let opts = target.options;
        let sqlite = db.dialect() == Dialect::Sqlite;
        // A first load in bulk is one transaction, hence one writer. Its candidacy is checked
        // again under the organization's write turns (`LineWriter::begin_first_load`).
        let first_load = opts.first_load_in_bulk
            && LineWriter::for_conn(&db.conn).first_load_possible(&db.conn, target.org.id)?;
        // PostgreSQL runs a backend per connection: writers of their own hash bucket of ids
        // each (measured: one writer keeps one backend busy while the second core idles).
        let writers = match opts.writers {
            _ if sqlite || first_load => 1,
            Some(n) => n.clamp(1, WRITE_BUCKETS as usize),
            None => WRITE_BUCKETS as usize,
        };
        Ok(Plan {
            writers,
            first_load,
        })
    }
}

/// Reads on this thread while the writers (and the helpers they need) run on others;
/// returns what the writers wrote.
fn run<R: std::io::BufRead, W: Write + Send>(
    target: &ImportTarget<'_>,
    db: Db,
    import_id: i64,
    reader: &mut Reader<'_, R>,
    rejects: &mut RejectsWriter<W>,
    progress: &mut dyn FnMut(ImportProgress),
) -> Result<Totals, ImportError> {
    let plan = Plan::new(target, &db)?;
    let checkpointer = sqlite_writer_setup(target.store, &db)?;
    // A job's heartbeat while a first load's single transaction runs (its commits would
    // otherwise be the heartbeat, and the job would look abandoned).
    let heartbeat_conn = match &target.options.job {
        Some(_) if plan.first_load => Some(target.store.connect()?),
        _ => None,
    };
    let state = FirstLoadState::default();
    let (done, committed) = (AtomicBool::new(false), AtomicU64::new(0));
    let span = tracing::Span::current();
    let cx = WriteContext {
        span: &span,
        org: target.org.id,
        import_id,
        opts: target.options,
        committed: &committed,
        first_load: plan.first_load.then_some(&state),
    };
    // One channel per writer: the reader puts each line in the part of its writer's bucket
    // as it goes (no second pass over the batch, no copying of lines or raw bytes).
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..plan.writers)
        .map(|_| mpsc::sync_channel::<Batch>(2))
        .unzip();
    let (recycle_tx, recycle_rx) = mpsc::channel::<Batch>();
    std::thread::scope(|s| {
        let (done, state) = (&done, &state);
        if let (Some(hb), Some(job)) = (heartbeat_conn, &target.options.job) {
            s.spawn(move || beat(hb, job, state, done));
        }
        let writer = s.spawn(move || {
            let r = if rxs.len() > 1 {
                write_parallel(target.store, db, cx, rxs, recycle_tx, rejects)
            } else {
                let rx = rxs.into_iter().next().expect("one writer");
                write_single(&db, cx, rx, recycle_tx, rejects)
            };
            done.store(true, Ordering::Release);
            r
        });
        if let Some(c) = checkpointer {
            s.spawn(move || checkpoint_until(&c, done));
        }
        let read = reader.run(&txs, &recycle_rx, progress, &committed);
        state.input_complete.store(read.is_ok(), Ordering::Release);
        drop(txs);
        let written = writer.join().expect("writer thread panicked");
        read.and(written)
    })
}

/// SQLite: the writer does not checkpoint; a third thread (on the returned connection)
/// copies the WAL into the database file in the background, so the writer spends its time
/// on inserts (measured: ~15% of the writer's time went to checkpoint writes). A larger page
/// cache for the writer keeps the key and date indexes' hot pages in memory (measured: 128
/// MiB vs 64 MiB took a randomly ordered 1M-line file from ~100k to ~115k lines/s and a
/// date-ordered one from ~240k to ~270k). It bounds the import's memory too. PostgreSQL
/// needs neither: its background writer and checkpointer do this work.
fn sqlite_writer_setup(store: &Store, db: &Db) -> Result<Option<Db>> {
    if db.dialect() != Dialect::Sqlite {
        return Ok(None);
    }
    db.conn
        .batch("PRAGMA wal_autocheckpoint = 0; PRAGMA cache_size = -131072;")?;
    Ok(Some(store.connect()?))
}

/// Passive WAL checkpoints every 100 ms until `done`.
fn checkpoint_until(db: &Db, done: &AtomicBool) {
    while !done.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(100));
        // Best effort: a failed passive checkpoint is retried on the next tick.
        let _ = db.conn.batch("PRAGMA wal_checkpoint(PASSIVE)");
    }
}
