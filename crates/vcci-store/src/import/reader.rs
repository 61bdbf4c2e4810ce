//! The reading side of an import: the header, then each record parsed, validated and
//! calculated on the caller's thread into batches, one part per writer (an id's part is its
//! write bucket), handed to the writers over bounded channels.

use std::collections::{BTreeSet, HashMap};
use std::io::BufRead;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use vcci_core::csv::{CsvScanner, Record};
use vcci_core::line::{Field, LineError, N_FIELDS};
use vcci_core::{Catalog, Line, SupplierProfile};

use super::rejects::{Reject, reject, trim_newline};
use super::{ImportError, ImportProgress, io_err};
use crate::classify::OrgClassifier;
use crate::model::orgs::Org;
use crate::resolve::SupplierResolver;
use crate::write::{Delta, NewSuppliers, PreparedLine, bucket, prepare};

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

/// A file's header: the column of each known field, the names of ignored columns, and the
/// number of columns every record must have.
#[derive(Debug)]
pub(super) struct Header<const N: usize> {
    pub cols: [Option<usize>; N],
    pub ignored: Vec<String>,
    pub width: usize,
}

/// Reads the header line.
pub(super) fn read_header<R: std::io::BufRead, const N: usize>(
    scanner: &mut CsvScanner<R>,
    names: &[&str; N],
) -> Result<Header<N>, ImportError> {
    match scanner.next_record().map_err(io_err)? {
        None => Err(ImportError::File(
            "the file is empty: expected a header line".into(),
        )),
        Some(Err((_, e))) => Err(ImportError::File(format!("line 1 (header): {e}"))),
        Some(Ok(rec)) => {
            let (cols, ignored) = map_header(&rec, names)?;
            Ok(Header {
                cols,
                ignored,
                width: rec.len(),
            })
        }
    }
}

/// The values of a record for the mapped fields; UTF-8 errors name their column.
pub(super) fn values<'r, const N: usize>(
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

pub(super) const LINE_NAMES: [&str; N_FIELDS] = {
    let mut n = [""; N_FIELDS];
    let mut i = 0;
    while i < N_FIELDS {
        n[i] = Field::ALL[i].name();
        i += 1;
    }
    n
};

pub(super) struct Batch {
    pub lines: Vec<PreparedLine>,
    /// Read-model contributions of `lines`, counted as if all were new.
    pub delta: Delta,
    pub raw: Vec<u8>,
    pub raw_ranges: Vec<(usize, usize)>,
    pub rejects: Vec<Reject>,
    pub new_suppliers: NewSuppliers,
    pub lines_read: u64,
    pub reject_bytes: usize,
    /// Bytes of the input read when the batch was handed over.
    pub bytes_read: u64,
    /// Position of the batch in the file (0, 1, ...): rejects are written in this order.
    pub seq: u64,
}

/// A batch is handed to the writer once its raw bytes (kept for rejects) reach this.
pub(super) const MAX_BATCH_BYTES: usize = 8 << 20;

impl Batch {
    pub fn bytes(&self) -> usize {
        self.raw.len() + self.reject_bytes
    }

    pub fn reject(&mut self, r: Reject) {
        self.reject_bytes += r.original.len();
        self.rejects.push(r);
    }

    pub fn new(cap: usize) -> Batch {
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
    pub fn recycled(mut self) -> Batch {
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

/// Reads records into batches and hands them to the writers.
pub(super) struct Reader<'a, R: BufRead> {
    pub scanner: CsvScanner<R>,
    pub state: ReadState<'a>,
}

/// What the reader keeps besides its input.
pub(super) struct ReadState<'a> {
    pub header: Header<N_FIELDS>,
    catalog: &'static Catalog,
    org: &'a Org,
    /// Suppliers known so far (those of the store, then those the file introduced).
    profiles: HashMap<String, SupplierProfile>,
    /// Classifies lines without a code.
    classifier: std::sync::Arc<OrgClassifier>,
    /// Resolves suppliers the store does not know as named (linked names, merged ids).
    pub resolver: crate::resolve::SupplierResolver,
    pub batch_size: usize,
    /// The batch being read, as one part per writer: part 0 also carries the parse rejects,
    /// the new suppliers and the count of lines read.
    parts: Vec<Batch>,
    next_seq: u64,
    pub lines_read: u64,
    /// Lines rejected while reading (parse and validation errors).
    pub rejected: u64,
    /// Years of the accepted lines: their partitions' statistics are refreshed at the end.
    pub years: BTreeSet<u16>,
    last_year: u16,
}

impl<'a, R: BufRead> Reader<'a, R> {
    pub fn new(
        scanner: CsvScanner<R>,
        header: Header<N_FIELDS>,
        catalog: &'static Catalog,
        org: &'a Org,
        profiles: HashMap<String, SupplierProfile>,
        classifier: std::sync::Arc<OrgClassifier>,
        resolver: crate::resolve::SupplierResolver,
    ) -> Self {
        Reader {
            scanner,
            state: ReadState {
                header,
                catalog,
                org,
                profiles,
                classifier,
                resolver,
                batch_size: 10_000,
                parts: Vec::new(),
                next_seq: 0,
                lines_read: 0,
                rejected: 0,
                years: BTreeSet::new(),
                last_year: 0,
            },
        }
    }

    /// Reads every record, handing full batches to `txs` (one channel per writer) and
    /// reusing batches the writers give back on `recycle`; `progress` is called about ten
    /// times a second. Stops early, without error, when a writer has gone (its error is the
    /// import's).
    pub fn run(
        &mut self,
        txs: &[mpsc::SyncSender<Batch>],
        recycle: &mpsc::Receiver<Batch>,
        progress: &mut dyn FnMut(ImportProgress),
        committed: &AtomicU64,
    ) -> Result<(), ImportError> {
        let st = &mut self.state;
        let writers = txs.len();
        let per_part = st.batch_size / writers + 1;
        st.parts = (0..writers).map(|_| Batch::new(per_part)).collect();
        let mut last_progress = Instant::now();
        while let Some(rec) = self.scanner.next_record().map_err(io_err)? {
            st.lines_read += 1;
            st.parts[0].lines_read += 1;
            match rec {
                Err((line, e)) => {
                    let original = trim_newline(self.scanner.last_raw()).to_vec();
                    st.parts[0].reject(Reject {
                        line,
                        column: String::new(),
                        error: e.to_string(),
                        original,
                    });
                }
                Ok(rec) => st.take(&rec),
            }
            // Bounded by count and by bytes: a file of rejected or very long lines must not
            // grow a batch without limit.
            let (n, bytes) = st.parts.iter().fold((0, 0), |(n, bytes), b| {
                (n + b.lines.len() + b.rejects.len(), bytes + b.bytes())
            });
            if (n >= st.batch_size || bytes >= MAX_BATCH_BYTES)
                && !st.hand_over(txs, Some(recycle), self.scanner.bytes_read())
            {
                return Ok(()); // a writer failed; its error is reported
            }
            if st.lines_read.is_multiple_of(1024)
                && last_progress.elapsed() >= Duration::from_millis(100)
            {
                last_progress = Instant::now();
                progress(ImportProgress {
                    lines_read: st.lines_read,
                    bytes_read: self.scanner.bytes_read(),
                    committed: committed.load(Ordering::Relaxed),
                    rejected: st.rejected + st.parts[0].rejects.len() as u64,
                });
            }
        }
        if st.parts[0].lines_read > 0 {
            st.hand_over(txs, None, self.scanner.bytes_read());
        }
        Ok(())
    }
}

impl ReadState<'_> {
    /// One record: parsed, calculated and put in its writer's part, or rejected.
    fn take(&mut self, rec: &Record<'_>) {
        let h = &self.header;
        let parsed = values(rec, &h.cols, &LINE_NAMES, h.width).and_then(|v| Line::parse(&v, true));
        let prepared = parsed.and_then(|mut line| {
            if SupplierResolver::may_need(&line, |k| self.profiles.contains_key(k)) {
                self.resolver.resolve(&mut line);
            }
            prepare(
                self.catalog,
                self.org,
                line,
                &self.profiles,
                Some(rec.line as i64),
                Some(&self.classifier),
            )
            .map_err(|e| vec![e])
        });
        let p = match prepared {
            Ok(p) => p,
            Err(errs) => return self.parts[0].reject(reject(rec.line, &errs, rec.raw)),
        };
        if let Some(k) = p.supplier_key()
            && !self.profiles.contains_key(k)
        {
            let name = p.line.supplier_name.as_deref().unwrap_or(k);
            self.parts[0]
                .new_suppliers
                .push((k.to_owned(), name.to_owned()));
            self.profiles.insert(k.to_owned(), Default::default());
        }
        if let Some(d) = p.line.date
            && d.year() != self.last_year
        {
            self.last_year = d.year();
            self.years.insert(self.last_year);
        }
        let writers = self.parts.len();
        let part = &mut self.parts[if writers == 1 {
            0
        } else {
            bucket(p.id()) as usize % writers
        }];
        let start = part.raw.len();
        part.raw.extend_from_slice(trim_newline(rec.raw));
        part.raw_ranges.push((start, part.raw.len()));
        part.delta.add(&p.contribution());
        part.lines.push(p);
    }

    /// Hands every part of the current batch to its writer, replacing it with a recycled
    /// batch (or a new one); false if a writer has gone.
    fn hand_over(
        &mut self,
        txs: &[mpsc::SyncSender<Batch>],
        recycle: Option<&mpsc::Receiver<Batch>>,
        bytes_read: u64,
    ) -> bool {
        self.rejected += self.parts[0].rejects.len() as u64;
        let per_part = self.batch_size / txs.len() + 1;
        let mut sent = true;
        for (part, tx) in self.parts.iter_mut().zip(txs) {
            let next = match recycle.map(|r| r.try_recv()) {
                Some(Ok(b)) => b.recycled(),
                _ => Batch::new(per_part),
            };
            part.bytes_read = bytes_read;
            part.seq = self.next_seq;
            sent &= tx.send(std::mem::replace(part, next)).is_ok();
        }
        self.next_seq += 1;
        sent
    }
}
