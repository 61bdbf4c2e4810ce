//! Streaming CSV import of lines and suppliers.
//!
//! Two threads: the caller's reads, parses and calculates records into batches; a writer
//! thread stores each batch (lines, new suppliers, read-model deltas, import progress) in
//! one SQLite transaction. Memory is bounded by the batch size, the channel depth (two
//! batches in flight) and the record-size cap, whatever the file's size.
//!
//! Idempotent: lines are upserted by transaction_id; a line identical to the stored one is
//! not rewritten, so re-running an import after a crash redoes nothing that was committed.

use std::collections::HashMap;
use std::io::{BufReader, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Serialize;
use vcci_core::csv::{CsvScanner, Record};
use vcci_core::line::{Field, LineError, N_FIELDS};
use vcci_core::{Catalog, Line};

use crate::lines::{LineOutcome, NewSuppliers, PreparedLine, prepare};
use crate::readmodel::Delta;
use crate::sql::args;
use crate::suppliers::{SUPPLIER_FIELDS, Supplier};
use crate::{Dialect, Org, Result, Store, StoreError, now_rfc3339};

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
    /// attached at the end (`pg::BulkLoad`; ~3x less index work, but nothing is visible or
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

/// One rejected line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reject {
    /// Physical line of the file where the record starts (header = 1).
    pub line: u64,
    /// The first failing column ('' when the whole record is at fault).
    pub column: String,
    /// Every problem of the line, '; '-separated.
    pub error: String,
    #[serde(skip)]
    pub original: Vec<u8>,
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

fn io_err(e: std::io::Error) -> ImportError {
    ImportError::Store(StoreError::Io {
        context: "reading the CSV".into(),
        source: e,
    })
}

/// Writes rejects as CSV: `line,column,error,original`.
#[derive(Debug)]
pub struct RejectsWriter<W: Write> {
    w: W,
}

fn csv_field(out: &mut Vec<u8>, s: &[u8]) {
    if s.iter().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
        out.push(b'"');
        for &b in s {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(s);
    }
}

impl<W: Write> RejectsWriter<W> {
    pub fn new(mut w: W) -> std::io::Result<Self> {
        w.write_all(b"line,column,error,original\n")?;
        Ok(RejectsWriter { w })
    }

    pub fn write(&mut self, r: &Reject) -> std::io::Result<()> {
        let mut out = Vec::with_capacity(r.original.len() + 64);
        out.extend_from_slice(r.line.to_string().as_bytes());
        out.push(b',');
        csv_field(&mut out, r.column.as_bytes());
        out.push(b',');
        csv_field(&mut out, r.error.as_bytes());
        out.push(b',');
        csv_field(&mut out, String::from_utf8_lossy(&r.original).as_bytes());
        out.push(b'\n');
        self.w.write_all(&out)
    }

    pub fn into_inner(self) -> W {
        self.w
    }
}

/// Maps header names to known fields; returns (column → field index, ignored names).
fn map_header<const N: usize>(
    rec: &Record<'_>,
    names: &[&str; N],
) -> Result<([Option<usize>; N], Vec<String>), ImportError> {
    let mut cols = [None; N];
    let mut ignored = Vec::new();
    for i in 0..rec.len() {
        let raw = rec.field(i).unwrap_or_default();
        let h = std::str::from_utf8(raw).map_err(|_| {
            ImportError::File(format!("header column {} is not valid UTF-8", i + 1))
        })?;
        match names.iter().position(|n| n.eq_ignore_ascii_case(h.trim())) {
            Some(f) => {
                if let Some(prev) = cols[f] {
                    return Err(ImportError::File(format!(
                        "column '{}' appears twice (columns {} and {})",
                        names[f],
                        prev + 1,
                        i + 1
                    )));
                }
                cols[f] = Some(i);
            }
            None => ignored.push(h.trim().to_owned()),
        }
    }
    Ok((cols, ignored))
}

/// Reads the header line: (column of each field, ignored names, number of columns).
#[allow(clippy::type_complexity)]
fn read_header<R: std::io::BufRead, const N: usize>(
    scanner: &mut CsvScanner<R>,
    names: &[&str; N],
) -> Result<([Option<usize>; N], Vec<String>, usize), ImportError> {
    match scanner.next_record().map_err(io_err)? {
        None => Err(ImportError::File(
            "the file is empty: expected a header line".into(),
        )),
        Some(Err((_, e))) => Err(ImportError::File(format!("line 1 (header): {e}"))),
        Some(Ok(rec)) => {
            let (cols, ignored) = map_header(&rec, names)?;
            Ok((cols, ignored, rec.len()))
        }
    }
}

/// The values of a record for the mapped fields; UTF-8 errors name their column.
fn values<'r, const N: usize>(
    rec: &Record<'r>,
    cols: &[Option<usize>; N],
    names: &[&'static str; N],
    width: usize,
) -> Result<[Option<&'r str>; N], Vec<LineError>> {
    if rec.len() != width {
        return Err(vec![LineError {
            field: "",
            code: "field_count",
            message: format!("expected {width} fields, found {}", rec.len()),
        }]);
    }
    let mut out = [None; N];
    let mut errs = Vec::new();
    for (f, c) in cols.iter().enumerate() {
        if let Some(c) = c {
            let b = rec.field(*c).unwrap_or_default();
            match std::str::from_utf8(b) {
                Ok(s) => out[f] = Some(s),
                Err(e) => errs.push(LineError {
                    field: names[f],
                    code: "invalid_utf8",
                    message: format!("is not valid UTF-8 (at byte {})", e.valid_up_to()),
                }),
            }
        }
    }
    if errs.is_empty() { Ok(out) } else { Err(errs) }
}

fn reject(line: u64, errs: &[LineError], raw: &[u8]) -> Reject {
    Reject {
        line,
        column: errs.first().map(|e| e.field.to_owned()).unwrap_or_default(),
        error: errs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "),
        original: trim_newline(raw).to_vec(),
    }
}

fn trim_newline(raw: &[u8]) -> &[u8] {
    let mut r = raw;
    while let [rest @ .., b'\n' | b'\r'] = r {
        r = rest;
    }
    r
}

const LINE_NAMES: [&str; N_FIELDS] = {
    let mut n = [""; N_FIELDS];
    let mut i = 0;
    while i < N_FIELDS {
        n[i] = Field::ALL[i].name();
        i += 1;
    }
    n
};

struct Batch {
    lines: Vec<PreparedLine>,
    /// Read-model contributions of `lines`, counted as if all were new.
    delta: Delta,
    raw: Vec<u8>,
    raw_ranges: Vec<(usize, usize)>,
    rejects: Vec<Reject>,
    new_suppliers: NewSuppliers,
    lines_read: u64,
    reject_bytes: usize,
    /// Bytes of the input read when the batch was handed over.
    bytes_read: u64,
    /// Position of the batch in the file (0, 1, ...): rejects are written in this order.
    seq: u64,
}

/// A batch is handed to the writer once its raw bytes (kept for rejects) reach this.
const MAX_BATCH_BYTES: usize = 8 << 20;

impl Batch {
    fn bytes(&self) -> usize {
        self.raw.len() + self.reject_bytes
    }

    fn reject(&mut self, r: Reject) {
        self.reject_bytes += r.original.len();
        self.rejects.push(r);
    }

    fn new(cap: usize) -> Batch {
        // Start small and grow: a full-size batch is megabytes, and a small file (an API
        // upload of a few hundred lines) would pay for zeroing them (measured: the kernel's
        // page clearing was the top cost of 100 small import jobs a second).
        let cap = cap.min(1024);
        Batch {
            lines: Vec::with_capacity(cap),
            delta: Delta::default(),
            raw: Vec::new(),
            raw_ranges: Vec::with_capacity(cap),
            rejects: Vec::new(),
            new_suppliers: Vec::new(),
            lines_read: 0,
            reject_bytes: 0,
            bytes_read: 0,
            seq: 0,
        }
    }

    /// A batch the writer has finished with, emptied here so that its lines are freed on
    /// the thread that allocated them (cheaper in glibc malloc) and its buffers reused.
    fn recycled(mut self) -> Batch {
        self.lines.clear();
        self.delta = Delta::default();
        self.raw.clear();
        self.raw_ranges.clear();
        self.rejects.clear();
        self.new_suppliers.clear();
        self.lines_read = 0;
        self.reject_bytes = 0;
        self
    }
}

/// Imports lines from CSV `input` into `org`, writing rejects to `rejects`.
/// `progress` is called from the reading thread about ten times a second.
#[allow(clippy::too_many_arguments)] // each is a distinct input; a struct would only rename them
pub fn import_transactions<R: Read, W: Write + Send>(
    store: &Store,
    cat: &'static Catalog,
    org: &Org,
    input: R,
    source: &str,
    opts: &ImportOptions,
    rejects: &mut RejectsWriter<W>,
    progress: &mut dyn FnMut(ImportProgress),
) -> Result<ImportReport, ImportError> {
    let started = Instant::now();
    let mut scanner = CsvScanner::new(
        BufReader::with_capacity(1 << 20, input),
        opts.max_record_bytes,
    );
    let (cols, ignored, width) = read_header(&mut scanner, &LINE_NAMES)?;
    let mut missing: Vec<&str> = [Field::TransactionId, Field::Date]
        .iter()
        .filter(|f| cols[**f as usize].is_none())
        .map(|f| f.name())
        .collect();
    if cols[Field::Amount as usize].is_none() && cols[Field::Quantity as usize].is_none() {
        missing.push("amount or quantity");
    }
    if !missing.is_empty() {
        return Err(ImportError::File(format!(
            "missing required column(s): {}",
            missing.join(", ")
        )));
    }

    let db = store.connect()?;
    let mut profiles = db.supplier_profiles(org.id)?;
    let import_id = db.conn.query_one(
        "INSERT INTO imports (org_id, kind, source, status, started_at) VALUES (?1, 'transactions', ?2, 'running', ?3)
         RETURNING id",
        args![org.id.0, source, &now_rfc3339()],
        |r| r.i64(0),
    )?;
    let sqlite = db.conn.dialect() == Dialect::Sqlite;
    // The writer does not checkpoint; a third thread copies the WAL into the database file
    // in the background, so the writer spends its time on inserts (measured: ~15% of the
    // writer's time went to checkpoint writes). A larger page cache for the writer keeps the key and date indexes' hot pages in
    // memory (measured: 128 MiB vs 64 MiB took a randomly ordered 1M-line file from ~100k
    // to ~115k lines/s and a date-ordered one from ~240k to ~270k). It bounds the import's
    // memory too: peak RSS stays ~220 MB whatever the file size.
    // (PostgreSQL needs neither: its background writer and checkpointer do this work.)
    let checkpointer = if sqlite {
        db.conn
            .batch("PRAGMA wal_autocheckpoint = 0; PRAGMA cache_size = -131072;")?;
        Some(store.connect()?)
    } else {
        None
    };
    let done = std::sync::atomic::AtomicBool::new(false);
    let committed = AtomicU64::new(0);
    // A first load in bulk is one transaction, hence one writer. Its candidacy is checked
    // again under the organization's write turns (`pg::begin_bulk`).
    let bulk = opts.first_load_in_bulk && crate::pg::first_load_possible(&db.conn, org.id)?;
    // PostgreSQL runs a backend per connection: writers of their own hash bucket of ids each
    // (measured: one writer keeps one backend busy while the second core idles).
    let writers = match opts.writers {
        _ if sqlite || bulk => 1,
        Some(n) => n.clamp(1, crate::pg::WRITE_BUCKETS as usize),
        None => crate::pg::WRITE_BUCKETS as usize,
    };
    // A job's heartbeat while a first load's single transaction runs (its commits would
    // otherwise be the heartbeat, and the job would look abandoned).
    let heartbeat = FirstLoad::default();
    let heartbeat_conn = match &opts.job {
        Some(_) if bulk => Some(store.connect()?),
        _ => None,
    };
    // One channel per writer: the reader puts each line in the part of its writer's bucket
    // as it goes (no second pass over the batch, no copying of lines or raw bytes).
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..writers).map(|_| mpsc::sync_channel::<Batch>(2)).unzip();
    let (recycle_tx, recycle_rx) = mpsc::channel::<Batch>();

    let mut report = ImportReport {
        import_id,
        ignored_columns: ignored,
        ..Default::default()
    };
    let mut rejected_parse = 0u64;
    // Years of the accepted lines: their partitions' statistics are refreshed at the end.
    let mut years = std::collections::BTreeSet::new();
    let writer_result = std::thread::scope(|s| {
        let committed = &committed;
        let done = &done;
        let heartbeat = &heartbeat;
        if let (Some(hb), Some(job)) = (heartbeat_conn, &opts.job) {
            s.spawn(move || beat(hb, job, heartbeat, done));
        }
        let writer = s.spawn(move || {
            let r = if writers > 1 {
                write_parallel(
                    store, db, org, import_id, opts, rxs, recycle_tx, rejects, committed,
                )
            } else {
                write_batches(
                    db,
                    org,
                    import_id,
                    opts,
                    rxs.into_iter().next().expect("one writer"),
                    Some(recycle_tx),
                    &mut |parts| write_rejects(rejects, parts),
                    committed,
                    bulk.then_some(heartbeat),
                )
            };
            done.store(true, Ordering::Release);
            r
        });
        if let Some(checkpointer) = checkpointer {
            s.spawn(move || {
                while !done.load(Ordering::Acquire) {
                    std::thread::sleep(Duration::from_millis(100));
                    // Best effort: a failed passive checkpoint is retried on the next tick.
                    let _ = checkpointer.conn.batch("PRAGMA wal_checkpoint(PASSIVE)");
                }
            });
        }

        // The batch being read, as one part per writer: part 0 also carries the parse
        // rejects, the new suppliers and the count of lines read.
        let per_part = opts.batch_size / writers + 1;
        let mut parts: Vec<Batch> = (0..writers).map(|_| Batch::new(per_part)).collect();
        let part_of = |p: &PreparedLine| {
            if writers == 1 {
                0
            } else {
                crate::pg::bucket(p.line.transaction_id.as_deref().unwrap_or_default()) as usize
                    % writers
            }
        };
        let mut next_seq = 0u64;
        let mut last_year = 0;
        let mut last_progress = Instant::now();
        let mut lines_read = 0u64;
        let read_result: Result<(), ImportError> = (|| {
            while let Some(rec) = scanner.next_record().map_err(io_err)? {
                lines_read += 1;
                parts[0].lines_read += 1;
                match rec {
                    Err((line, e)) => {
                        let original = trim_newline(scanner.last_raw()).to_vec();
                        parts[0].reject(Reject {
                            line,
                            column: String::new(),
                            error: e.to_string(),
                            original,
                        });
                    }
                    Ok(rec) => {
                        let parsed = values(&rec, &cols, &LINE_NAMES, width)
                            .and_then(|v| Line::parse(&v, true));
                        let prepared = parsed.and_then(|line| {
                            prepare(cat, org, line, &profiles, Some(rec.line as i64))
                                .map_err(|e| vec![e])
                        });
                        match prepared {
                            Ok(p) => {
                                if let Some(k) = p.supplier_key()
                                    && !profiles.contains_key(k)
                                {
                                    let name = p.line.supplier_name.as_deref().unwrap_or(k);
                                    parts[0].new_suppliers.push((k.to_owned(), name.to_owned()));
                                    profiles.insert(k.to_owned(), Default::default());
                                }
                                if let Some(d) = p.line.date
                                    && d.year() != last_year
                                {
                                    last_year = d.year();
                                    years.insert(last_year);
                                }
                                let part = &mut parts[part_of(&p)];
                                let start = part.raw.len();
                                part.raw.extend_from_slice(trim_newline(rec.raw));
                                part.raw_ranges.push((start, part.raw.len()));
                                part.delta.add(&p.contribution());
                                part.lines.push(p);
                            }
                            Err(errs) => parts[0].reject(reject(rec.line, &errs, rec.raw)),
                        }
                    }
                }
                // Bounded by count and by bytes: a file of rejected or very long lines must
                // not grow a batch without limit.
                let (n, bytes) = parts.iter().fold((0, 0), |(n, bytes), b| {
                    (n + b.lines.len() + b.rejects.len(), bytes + b.bytes())
                });
                if n >= opts.batch_size || bytes >= MAX_BATCH_BYTES {
                    rejected_parse += parts[0].rejects.len() as u64;
                    let bytes_read = scanner.bytes_read();
                    let mut sent = true;
                    for (part, tx) in parts.iter_mut().zip(&txs) {
                        let next = match recycle_rx.try_recv() {
                            Ok(b) => b.recycled(),
                            Err(_) => Batch::new(per_part),
                        };
                        part.bytes_read = bytes_read;
                        part.seq = next_seq;
                        let full = std::mem::replace(part, next);
                        sent &= tx.send(full).is_ok();
                    }
                    next_seq += 1;
                    if !sent {
                        break; // a writer failed; its error is reported below
                    }
                }
                if lines_read.is_multiple_of(1024)
                    && last_progress.elapsed() >= Duration::from_millis(100)
                {
                    last_progress = Instant::now();
                    progress(ImportProgress {
                        lines_read,
                        bytes_read: scanner.bytes_read(),
                        committed: committed.load(Ordering::Relaxed),
                        rejected: rejected_parse,
                    });
                }
            }
            Ok(())
        })();
        rejected_parse += parts[0].rejects.len() as u64;
        if read_result.is_ok() && (parts[0].lines_read > 0) {
            for (mut part, tx) in parts.into_iter().zip(&txs) {
                part.bytes_read = scanner.bytes_read();
                part.seq = next_seq;
                let _ = tx.send(part);
            }
        }
        heartbeat
            .input_complete
            .store(read_result.is_ok(), Ordering::Release);
        drop(txs);
        report.lines_read = lines_read;
        let w = writer.join().expect("writer thread panicked");
        read_result.and(w)
    });
    let totals = match writer_result {
        Ok(t) => t,
        Err(e) => {
            // Best effort: the import's row says it failed; committed batches stay.
            if let Ok(db) = store.connect() {
                let _ = db.conn.execute(
                    "UPDATE imports SET status = 'failed', finished_at = ?2 WHERE id = ?1",
                    args![import_id, &now_rfc3339()],
                );
            }
            return Err(e);
        }
    };
    report.inserted = totals.inserted;
    report.updated = totals.updated;
    report.unchanged = totals.unchanged;
    report.rejected = rejected_parse + totals.duplicates;
    let db = store.connect()?;
    db.conn.execute(
        "UPDATE imports SET status = 'succeeded', finished_at = ?2, lines_read = ?3, accepted = ?4, unchanged = ?5, rejected = ?6 WHERE id = ?1",
        args![import_id, &now_rfc3339(), report.lines_read as i64, (report.inserted + report.updated) as i64, report.unchanged as i64, report.rejected as i64],
    )?;
    if report.inserted + report.updated >= crate::pg::ANALYZE_AFTER_LINES {
        // Best effort: the lines are committed; autovacuum (where it runs) or the next
        // large import refreshes the statistics if this fails.
        // A first load analyzed its own partitions.
        let years = if totals.first_load {
            Default::default()
        } else {
            years
        };
        let _ = crate::pg::analyze_written(&db.conn, org.id, &years);
    }
    report.seconds = started.elapsed().as_secs_f64();
    progress(ImportProgress {
        lines_read: report.lines_read,
        bytes_read: scanner.bytes_read(),
        committed: report.inserted + report.updated + report.unchanged,
        rejected: report.rejected,
    });
    Ok(report)
}

#[derive(Default)]
struct Totals {
    /// Written as a first load (whose partitions it analyzed itself).
    first_load: bool,
    inserted: u64,
    updated: u64,
    unchanged: u64,
    duplicates: u64,
}

/// Called after each commit with the rejects of its batches: (batch seq, rejects).
type EmitRejects<'a> = dyn FnMut(Vec<(u64, Vec<Reject>)>) -> Result<(), ImportError> + 'a;

#[allow(clippy::too_many_arguments)]
fn write_batches(
    db: crate::Db,
    org: &Org,
    import_id: i64,
    opts: &ImportOptions,
    rx: mpsc::Receiver<Batch>,
    recycle: Option<mpsc::Sender<Batch>>,
    emit: &mut EmitRejects<'_>,
    committed: &AtomicU64,
    bulk: Option<&FirstLoad>,
) -> Result<Totals, ImportError> {
    // However the writer ends, a first load left on the connection is dropped (an error
    // has rolled its transaction back).
    struct Abandon<'a>(&'a crate::sql::Conn);
    impl Drop for Abandon<'_> {
        fn drop(&mut self) {
            crate::pg::abandon_bulk(self.0);
        }
    }
    let _abandon = Abandon(&db.conn);
    let commit_lines = opts.commit_lines;
    let mut t = Totals::default();
    let mut batches = rx.into_iter().peekable();
    // A first load (`pg::BulkLoad`): the whole import in the first transaction.
    let mut in_bulk = false;
    let mut first_txn = true;
    // Group commit: several channel batches per transaction (fewer, larger commits write
    // each hot index page once), while batches stay small to bound memory.
    while let Some(next) = batches.peek() {
        // A year without its partition yet: created before the transaction (PostgreSQL).
        let try_bulk = bulk.is_some() && first_txn;
        first_txn = false;
        if !try_bulk {
            crate::pg::ensure_partitions(&db.conn, org.id, &next.lines)?;
        }
        let txn = db.conn.begin()?;
        if try_bulk {
            // False if another writer wrote lines of the organization meanwhile: then this
            // transaction creates the partitions its first batch needs itself.
            in_bulk = crate::pg::begin_bulk(&txn, org.id)?;
        }
        let started = Instant::now();
        let mut in_txn = 0usize;
        let mut pending: Vec<(u64, Vec<Reject>)> = Vec::new();
        let mut written = 0u64;
        // This transaction's share of the import's counts (several writers may add theirs).
        let before = (t.inserted + t.updated, t.unchanged);
        let (mut lines_read, mut bytes_read) = (0u64, 0u64);
        let mut group = Delta::default();
        let mut group_bytes = 0usize;
        while in_bulk
            || (in_txn < commit_lines
                && group_bytes < 4 * MAX_BATCH_BYTES
                && started.elapsed() < opts.max_commit)
        {
            if let Some(hb) = bulk
                && hb.lost.load(Ordering::Relaxed)
            {
                return Err(ImportError::JobLost);
            }
            // A batch that needs a new partition starts the next transaction instead.
            if in_txn > 0
                && !in_bulk
                && batches
                    .peek()
                    .is_some_and(|b| crate::pg::needs_partitions(&db.conn, org.id, &b.lines))
            {
                break;
            }
            let Some(mut batch) = batches.next() else {
                break;
            };
            // One read-model delta per transaction: a supplier's month is upserted once per
            // commit, not once per batch.
            group.merge(std::mem::take(&mut batch.delta));
            let out = crate::lines::write_lines_tx(
                &txn,
                org.id,
                &batch.lines,
                &batch.new_suppliers,
                Some(import_id),
                &mut group,
                true,
            )?;
            lines_read += batch.lines_read;
            bytes_read = bytes_read.max(batch.bytes_read);
            in_txn += batch.lines.len() + batch.rejects.len();
            group_bytes += batch.bytes();
            written += out.len() as u64;
            for (i, o) in out.iter().enumerate() {
                match o {
                    LineOutcome::Inserted => t.inserted += 1,
                    LineOutcome::Updated => t.updated += 1,
                    LineOutcome::Unchanged => t.unchanged += 1,
                    LineOutcome::Duplicate { first_line } => {
                        t.duplicates += 1;
                        let p = &batch.lines[i];
                        let (s, e) = batch.raw_ranges[i];
                        batch.rejects.push(Reject {
                            line: p.source_line.unwrap_or(0) as u64,
                            column: "transaction_id".into(),
                            error: format!(
                                "transaction_id: '{}' already appears on line {first_line} of this file",
                                p.line.transaction_id.as_deref().unwrap_or_default()
                            ),
                            original: batch.raw[s..e].to_vec(),
                        });
                    }
                }
            }
            pending.push((batch.seq, std::mem::take(&mut batch.rejects)));
            if in_bulk {
                // Rejects are final whenever the load ends: written as they come rather than
                // held for the whole file.
                emit(std::mem::take(&mut pending))?;
                if let Some(hb) = bulk {
                    hb.bytes_read.fetch_max(bytes_read, Ordering::Relaxed);
                }
            }
            // The reader may have finished; then the batch is simply dropped here.
            if let Some(r) = &recycle {
                let _ = r.send(batch);
            }
        }
        if in_bulk {
            if !bulk.is_some_and(|b| b.input_complete.load(Ordering::Acquire)) {
                // The reader failed (its error is the import's): roll everything back.
                return Err(ImportError::File("the input ended early".into()));
            }
            group.flush(&txn, org.id)?;
            crate::pg::finish_bulk(&txn)?;
        } else {
            group.flush(&txn, org.id)?;
        }
        txn.execute(
            "UPDATE imports SET lines_read = lines_read + ?2, accepted = accepted + ?3,
               unchanged = unchanged + ?4 WHERE id = ?1",
            args![
                import_id,
                lines_read as i64,
                (t.inserted + t.updated - before.0) as i64,
                (t.unchanged - before.1) as i64
            ],
        )?;
        if let Some(job) = &opts.job {
            let mine = txn.execute(
                "UPDATE jobs SET processed = processed + ?3,
                   bytes_read = CASE WHEN bytes_read > ?4 THEN bytes_read ELSE ?4 END, heartbeat_at = ?5
                 WHERE id = ?1 AND claimed_by = ?2 AND status = 'running'",
                args![
                    &job.id,
                    &job.worker,
                    lines_read as i64,
                    bytes_read as i64,
                    crate::jobs::now_ms()
                ],
            )?;
            if mine == 0 {
                return Err(ImportError::JobLost);
            }
        }
        txn.commit()?;
        t.first_load |= in_bulk;
        committed.fetch_add(written, Ordering::Relaxed);
        emit(pending)?;
    }
    Ok(t)
}

/// Shared by a first load's writer, the reader and the thread that keeps its job's heartbeat.
#[derive(Default)]
struct FirstLoad {
    /// The reader reached the end of the input (set before it closes the channel): only
    /// then is the load committed; a load whose input broke off keeps nothing.
    input_complete: std::sync::atomic::AtomicBool,
    /// The job was recovered by another worker: the load stops.
    lost: std::sync::atomic::AtomicBool,
    /// Bytes of the input handed to the database so far (the job's progress).
    bytes_read: AtomicU64,
}

/// Refreshes `job`'s heartbeat every 500 ms from a connection of its own until `done`.
fn beat(db: crate::Db, job: &JobLink, state: &FirstLoad, done: &std::sync::atomic::AtomicBool) {
    let mut last = Instant::now();
    while !done.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(50));
        if last.elapsed() < Duration::from_millis(500) {
            continue;
        }
        last = Instant::now();
        let r = db.conn.execute(
            "UPDATE jobs SET heartbeat_at = ?3,
               bytes_read = CASE WHEN bytes_read > ?4 THEN bytes_read ELSE ?4 END
             WHERE id = ?1 AND claimed_by = ?2 AND status = 'running'",
            args![
                &job.id,
                &job.worker,
                crate::jobs::now_ms(),
                state.bytes_read.load(Ordering::Relaxed) as i64
            ],
        );
        // A failed update (the database away) is retried; the load itself fails if the
        // database stays away.
        if matches!(r, Ok(0)) {
            state.lost.store(true, Ordering::Relaxed);
        }
    }
}

/// Writes the rejects of committed batches, in line order.
fn write_rejects<W: Write>(
    w: &mut RejectsWriter<W>,
    parts: Vec<(u64, Vec<Reject>)>,
) -> Result<(), ImportError> {
    let mut all: Vec<Reject> = parts.into_iter().flat_map(|p| p.1).collect();
    all.sort_by_key(|r| r.line);
    for r in &all {
        write_reject(w, r)?;
    }
    Ok(())
}

impl Totals {
    fn add(&mut self, o: Totals) {
        self.inserted += o.inserted;
        self.updated += o.updated;
        self.unchanged += o.unchanged;
        self.duplicates += o.duplicates;
    }
}

/// `write_batches` with one writer per receiver (PostgreSQL): the reader puts each line in
/// the part of its id's hash bucket (`pg::bucket`), each writer writes one bucket's lines on a
/// connection of its own, in transactions of its own, under that bucket's write turn (an id
/// is always written by the same writer, so duplicates within the file are still found). A
/// collector writes the rejects in the file's order once every part of a batch is committed.
#[allow(clippy::too_many_arguments)]
fn write_parallel<W: Write + Send>(
    store: &Store,
    first: crate::Db,
    org: &Org,
    import_id: i64,
    opts: &ImportOptions,
    rxs: Vec<mpsc::Receiver<Batch>>,
    recycle: mpsc::Sender<Batch>,
    rejects: &mut RejectsWriter<W>,
    committed: &AtomicU64,
) -> Result<Totals, ImportError> {
    let k = rxs.len();
    let mut dbs = vec![first];
    for _ in 1..k {
        dbs.push(store.connect()?);
    }
    for (b, db) in dbs.iter().enumerate() {
        crate::pg::set_bucket(&db.conn, Some(b as u32));
    }
    let (done_tx, done_rx) = mpsc::channel::<(u64, Vec<Reject>)>();
    std::thread::scope(|s| {
        let mut writers = Vec::with_capacity(k);
        for (db, r) in dbs.into_iter().zip(rxs) {
            let done_tx = done_tx.clone();
            let recycle = recycle.clone();
            writers.push(s.spawn(move || {
                write_batches(
                    db,
                    org,
                    import_id,
                    opts,
                    r,
                    Some(recycle),
                    &mut |parts| {
                        for p in parts {
                            let _ = done_tx.send(p);
                        }
                        Ok(())
                    },
                    committed,
                    None,
                )
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

/// Writes rejects in batch order as the `k` parts of each batch are committed (parts of
/// batches that never commit, after a failure, are not written: as with one writer).
fn collect_rejects<W: Write>(
    rx: mpsc::Receiver<(u64, Vec<Reject>)>,
    k: usize,
    w: &mut RejectsWriter<W>,
) -> Result<(), ImportError> {
    let mut waiting: std::collections::BTreeMap<u64, (usize, Vec<Reject>)> = Default::default();
    let mut next = 0u64;
    for (seq, mut r) in rx {
        let e = waiting.entry(seq).or_default();
        e.0 += 1;
        e.1.append(&mut r);
        while waiting.get(&next).is_some_and(|e| e.0 == k) {
            let (_, done) = waiting.remove(&next).expect("checked above");
            write_rejects(w, vec![(next, done)])?;
            next += 1;
        }
    }
    Ok(())
}

/// Imports suppliers from CSV (`supplier_id,name,country,naics_code,intensity_kg_per_usd,
/// intensity_year,intensity_source`); a later row for the same supplier_id wins.
pub fn import_suppliers<R: Read, W: Write>(
    store: &Store,
    cat: &'static Catalog,
    org: &Org,
    input: R,
    opts: &ImportOptions,
    rejects: &mut RejectsWriter<W>,
) -> Result<ImportReport, ImportError> {
    let started = Instant::now();
    let mut scanner = CsvScanner::new(BufReader::new(input), opts.max_record_bytes);
    let (cols, ignored, width) = read_header(&mut scanner, &SUPPLIER_FIELDS)?;
    if cols[0].is_none() {
        return Err(ImportError::File(
            "missing required column(s): supplier_id".into(),
        ));
    }
    let mut db = store.connect()?;
    let mut report = ImportReport {
        ignored_columns: ignored,
        ..Default::default()
    };
    let mut batch: HashMap<String, Supplier> = HashMap::new();
    let mut flush = |batch: &mut HashMap<String, Supplier>,
                     report: &mut ImportReport|
     -> Result<(), ImportError> {
        let list: Vec<Supplier> = batch.drain().map(|(_, s)| s).collect();
        let (n, _) = db.upsert_suppliers(cat, org, &list)?;
        report.inserted += n as u64;
        Ok(())
    };
    while let Some(rec) = scanner.next_record().map_err(io_err)? {
        report.lines_read += 1;
        match rec {
            Err((line, e)) => {
                report.rejected += 1;
                let original = trim_newline(scanner.last_raw()).to_vec();
                write_reject(
                    rejects,
                    &Reject {
                        line,
                        column: String::new(),
                        error: e.to_string(),
                        original,
                    },
                )?;
            }
            Ok(rec) => match values(&rec, &cols, &SUPPLIER_FIELDS, width)
                .and_then(|v| Supplier::parse(&v))
            {
                Ok(s) => {
                    batch.insert(s.supplier_id.clone(), s);
                    if batch.len() >= opts.batch_size {
                        flush(&mut batch, &mut report)?;
                    }
                }
                Err(errs) => {
                    report.rejected += 1;
                    write_reject(rejects, &reject(rec.line, &errs, rec.raw))?;
                }
            },
        }
    }
    flush(&mut batch, &mut report)?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

fn write_reject<W: Write>(w: &mut RejectsWriter<W>, r: &Reject) -> Result<(), ImportError> {
    w.write(r).map_err(|e| {
        StoreError::Io {
            context: "writing the rejects file".into(),
            source: e,
        }
        .into()
    })
}
