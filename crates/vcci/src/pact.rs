//! `vcci pact`: supplier product footprints (PACT Tech Specs v3) received from a file, and
//! listed with their status and lineage.

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;
use vcci_core::catalog;
use vcci_core::pact::Status;
use vcci_store::model::pcfs::{FootprintFilter, MAX_PER_RECEIPT};
use vcci_store::{Actor, Store};

use crate::cli::{Format, PactCommand, PactImportArgs, PactListArgs};
use crate::output::Table;
use crate::progress::group;

/// Footprint files larger than this are refused (1,000 footprints of a few KB each).
const MAX_FILE_BYTES: u64 = 64 << 20;

pub fn pact_cmd(store: Store, c: PactCommand) -> Result<()> {
    match c {
        PactCommand::Import(a) => import(store, a),
        PactCommand::Footprints(a) => list(store, a),
    }
}

/// The footprints of a file: one ProductFootprint, an array, or `{"data": [...]}`.
fn footprints_of(v: Value) -> Result<Vec<Value>> {
    match v {
        Value::Array(a) => Ok(a),
        Value::Object(mut o) if o.contains_key("data") => match o.remove("data") {
            Some(Value::Array(a)) => Ok(a),
            _ => bail!("`data` must be an array of ProductFootprint objects"),
        },
        v @ Value::Object(_) => Ok(vec![v]),
        _ => bail!(
            "the file must hold a ProductFootprint, an array of them, or a PACT list response"
        ),
    }
}

fn import(store: Store, a: PactImportArgs) -> Result<()> {
    let len = std::fs::metadata(&a.file)
        .with_context(|| format!("reading {}", a.file.display()))?
        .len();
    if len > MAX_FILE_BYTES {
        bail!(
            "{} is {} bytes; at most {MAX_FILE_BYTES} at once",
            a.file.display(),
            group(len)
        );
    }
    let text = std::fs::read_to_string(&a.file)
        .with_context(|| format!("reading {}", a.file.display()))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| {
        anyhow!(
            "{}: not JSON (line {}, column {}): {e}",
            a.file.display(),
            e.line(),
            e.column()
        )
    })?;
    let docs = footprints_of(v)?;
    if docs.len() > MAX_PER_RECEIPT {
        bail!(
            "{} footprints; at most {MAX_PER_RECEIPT} per import (split the file)",
            docs.len()
        );
    }
    let mut db = store.connect()?;
    let org = db.require_org(&a.org)?;
    let source = format!("file {}", a.file.display());
    let r = db.receive_footprints(catalog(), &org, &a.supplier, &docs, &source, &Actor::cli())?;
    if matches!(a.format, Format::Json) {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "Supplier '{}': {} footprints received, {} unchanged, {} deprecated, {} superseded, \
             {} rejected; {} lines recalculated.",
            a.supplier,
            r.received.len(),
            r.unchanged,
            r.deprecated.len(),
            r.superseded.len(),
            r.rejected.len(),
            group(r.lines_changed)
        );
        for rej in &r.rejected {
            for e in &rej.errors {
                eprintln!(
                    "footprint {} ({}): {}: {}",
                    rej.index,
                    rej.id.as_deref().unwrap_or("no id"),
                    if e.path.is_empty() { "/" } else { &e.path },
                    e.message
                );
            }
        }
    }
    if !r.rejected.is_empty()
        && r.received.is_empty()
        && r.unchanged == 0
        && r.deprecated.is_empty()
    {
        bail!("no footprint of the file was accepted");
    }
    Ok(())
}

fn list(store: Store, a: PactListArgs) -> Result<()> {
    let db = store.connect()?;
    let org = db.require_org(&a.org)?;
    let status = a
        .status
        .as_deref()
        .map(|s| {
            Status::parse(s).ok_or_else(|| anyhow!("--status: '{s}' is not Active or Deprecated"))
        })
        .transpose()?;
    let filter = FootprintFilter {
        supplier_id: a.supplier,
        product_id: a.product,
        status,
    };
    let rows = db.footprints(org.id, &filter, None, a.limit)?;
    if matches!(a.format, Format::Json) {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    let mut t = Table::new(&[
        ("id", false),
        ("supplier", false),
        ("status", false),
        ("in use", false),
        ("products", false),
        ("company", false),
        ("supersedes", false),
        ("superseded by", false),
    ]);
    for f in &rows {
        t.row(vec![
            f.id.clone(),
            f.supplier_id.clone(),
            f.status.clone(),
            if f.in_use { "yes" } else { "no" }.into(),
            f.product_ids.join(" "),
            f.company_name.clone(),
            f.preceding_pf_ids.join(" "),
            f.superseded_by.clone().unwrap_or_default(),
        ]);
    }
    if matches!(a.format, Format::Csv) {
        print!("{}", t.to_csv());
    } else {
        print!("{}", t.to_text());
    }
    Ok(())
}
