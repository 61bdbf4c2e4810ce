//! Suppliers from CSV.

use std::collections::HashMap;
use std::io::{BufReader, Read, Write};
use std::time::Instant;

use vcci_core::csv::CsvScanner;

use super::reader::{read_header, values};
use super::rejects::{Reject, RejectsWriter, reject, trim_newline, write_reject};
use super::{ImportError, ImportReport, ImportTarget, io_err};
use crate::model::suppliers::{SUPPLIER_FIELDS, Supplier};

/// A batch entry's key: the supplier, whether the row sets an intensity, and its year.
type Key = (String, bool, Option<u16>);

/// Imports suppliers from CSV (`supplier_id,name,country,naics_code,intensity_kg_per_usd,
/// intensity_year,intensity_source,intensity_boundary,intensity_verified`). Rows of one
/// supplier for different intensity years each set their year; of rows for the same
/// supplier and year, the later wins (and a supplier's name, country and NAICS code are its
/// last row's).
pub fn import_suppliers<R: Read, W: Write>(
    target: &ImportTarget<'_>,
    input: R,
    rejects: &mut RejectsWriter<W>,
) -> Result<ImportReport, ImportError> {
    let (cat, org, opts) = (target.catalog, target.org, target.options);
    let started = Instant::now();
    let mut scanner = CsvScanner::new(BufReader::new(input), opts.max_record_bytes);
    let header = read_header(&mut scanner, &SUPPLIER_FIELDS)?;
    if header.cols[0].is_none() {
        return Err(ImportError::File(
            "missing required column(s): supplier_id".into(),
        ));
    }
    let mut db = target.store.connect()?;
    let mut report = ImportReport {
        ignored_columns: header.ignored.clone(),
        ..Default::default()
    };
    // In file order, one entry per supplier and value set (its intensity year, or none),
    // with the file line and text of the row that set it.
    let mut batch: Vec<Supplier> = Vec::new();
    let mut source: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut at: HashMap<Key, usize> = HashMap::new();
    // Writes the batch; a supplier refused (its change would alter a closed period) goes
    // to the rejects with its line.
    let mut flush = |batch: &mut Vec<Supplier>,
                     source: &mut Vec<(u64, Vec<u8>)>,
                     at: &mut HashMap<Key, usize>,
                     report: &mut ImportReport,
                     rejects: &mut RejectsWriter<W>|
     -> Result<(), ImportError> {
        at.clear();
        let done = db.upsert_suppliers(cat, org, batch, target.actor)?;
        report.inserted += done.upserted as u64;
        for r in &done.refused {
            report.rejected += 1;
            let (line, original) = std::mem::take(&mut source[r.index]);
            write_reject(
                rejects,
                &Reject {
                    line,
                    column: "supplier_id".into(),
                    error: format!("supplier_id: {}", r.message()),
                    original,
                },
            )?;
        }
        batch.clear();
        source.clear();
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
            Ok(rec) => match values(&rec, &header.cols, &SUPPLIER_FIELDS, header.width)
                .and_then(|v| Supplier::parse(&v))
            {
                Ok(s) => {
                    let key = (
                        s.supplier_id.clone(),
                        s.intensity_kg_per_usd.is_some(),
                        s.intensity_year,
                    );
                    let from = (rec.line, trim_newline(rec.raw).to_vec());
                    match at.get(&key) {
                        Some(&i) => {
                            batch[i] = s;
                            source[i] = from;
                        }
                        None => {
                            at.insert(key, batch.len());
                            batch.push(s);
                            source.push(from);
                        }
                    }
                    if batch.len() >= opts.batch_size {
                        flush(&mut batch, &mut source, &mut at, &mut report, rejects)?;
                    }
                }
                Err(errs) => {
                    report.rejected += 1;
                    write_reject(rejects, &reject(rec.line, &errs, rec.raw))?;
                }
            },
        }
    }
    flush(&mut batch, &mut source, &mut at, &mut report, rejects)?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}
