//! Rejected lines: what was wrong with each and where, written as CSV
//! (`line,column,error,original`) in the file's order once the lines around them are
//! committed.

use std::io::Write;
use std::sync::mpsc;

use serde::Serialize;
use vcci_core::line::LineError;

use super::ImportError;
use crate::StoreError;

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

pub(super) fn reject(line: u64, errs: &[LineError], raw: &[u8]) -> Reject {
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

pub(super) fn trim_newline(raw: &[u8]) -> &[u8] {
    let mut r = raw;
    while let [rest @ .., b'\n' | b'\r'] = r {
        r = rest;
    }
    r
}

/// Writes the rejects of committed batches, in line order.
pub(super) fn write_rejects<W: Write>(
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

/// Writes rejects in batch order as the `k` parts of each batch are committed (parts of
/// batches that never commit, after a failure, are not written: as with one writer).
pub(super) fn collect_rejects<W: Write>(
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

pub(super) fn write_reject<W: Write>(
    w: &mut RejectsWriter<W>,
    r: &Reject,
) -> Result<(), ImportError> {
    w.write(r).map_err(|e| {
        StoreError::Io {
            context: "writing the rejects file".into(),
            source: e,
        }
        .into()
    })
}
