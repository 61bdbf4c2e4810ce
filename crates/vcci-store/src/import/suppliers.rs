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
    // In file order, one entry per supplier and value set (its intensity year, or none).
    let mut batch: Vec<Supplier> = Vec::new();
    let mut at: HashMap<Key, usize> = HashMap::new();
    let mut flush = |batch: &mut Vec<Supplier>,
                     at: &mut HashMap<Key, usize>,
                     report: &mut ImportReport|
     -> Result<(), ImportError> {
        at.clear();
        let (n, _) = db.upsert_suppliers(cat, org, batch)?;
        batch.clear();
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
            Ok(rec) => match values(&rec, &header.cols, &SUPPLIER_FIELDS, header.width)
                .and_then(|v| Supplier::parse(&v))
            {
                Ok(s) => {
                    let key = (
                        s.supplier_id.clone(),
                        s.intensity_kg_per_usd.is_some(),
                        s.intensity_year,
                    );
                    match at.get(&key) {
                        Some(&i) => batch[i] = s,
                        None => {
                            at.insert(key, batch.len());
                            batch.push(s);
                        }
                    }
                    if batch.len() >= opts.batch_size {
                        flush(&mut batch, &mut at, &mut report)?;
                    }
                }
                Err(errs) => {
                    report.rejected += 1;
                    write_reject(rejects, &reject(rec.line, &errs, rec.raw))?;
                }
            },
        }
    }
    flush(&mut batch, &mut at, &mut report)?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}
