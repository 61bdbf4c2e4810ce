//! `vcci suppliers matches|merge|unmerge|merges|dismiss|aliases`: supplier resolution from
//! the command line (issue 19). Names typed a dozen ways link to one supplier as lines are
//! written (`vcci_store::resolve`); these commands review the close pairs and merge.

use anyhow::{Result, bail};
use vcci_store::{Actor, Store};

use crate::cli::{Format, SuppliersCommand};
use crate::output::Table;
use crate::progress::group;

pub fn resolution_cmd(store: Store, c: SuppliersCommand) -> Result<()> {
    let mut db = store.connect()?;
    match c {
        SuppliersCommand::Matches(a) => {
            let org = db.require_org(&a.org)?;
            let status = match a.status.as_str() {
                "all" => None,
                s @ ("open" | "merged" | "dismissed") => Some(s),
                s => bail!("--status: '{s}' is not open, merged, dismissed or all"),
            };
            let m = db.supplier_matches(org.id, status, a.q.as_deref(), a.limit.clamp(1, 500))?;
            if matches!(a.format, Format::Json) {
                println!("{}", serde_json::to_string_pretty(&m)?);
                return Ok(());
            }
            let mut t = Table::new(&[
                ("id", true),
                ("supplier", false),
                ("name", false),
                ("may be", false),
                ("its name", false),
                ("score", true),
                ("status", false),
            ]);
            for p in &m {
                t.row(vec![
                    p.id.to_string(),
                    p.supplier_id.clone(),
                    p.supplier_name.clone(),
                    p.candidate_id.clone(),
                    p.candidate_name.clone(),
                    format!("{:.3}", p.score),
                    p.status.clone(),
                ]);
            }
            print!("{}", t.to_text());
            if m.is_empty() {
                println!("No pair to review.");
            }
        }
        SuppliersCommand::Merge(a) => {
            let org = db.require_org(&a.org)?;
            let r =
                db.merge_suppliers(vcci_core::catalog(), &org, &a.from, &a.into, &Actor::cli())?;
            println!(
                "Merged '{}' into '{}' (merge {}): {} lines moved, {} results changed, {} intensity years and {} footprints moved. Undo with `vcci suppliers unmerge --org {} {}`.",
                r.from,
                r.into,
                r.merge_id,
                group(r.lines_moved),
                group(r.lines_changed),
                r.intensity_years_moved,
                r.footprints_moved,
                org.name,
                r.merge_id
            );
        }
        SuppliersCommand::Unmerge(a) => {
            let org = db.require_org(&a.org)?;
            let r = db.unmerge_suppliers(vcci_core::catalog(), &org, a.id, &Actor::cli())?;
            println!(
                "Undid merge {}: '{}' is a supplier again, with {} lines ({} results changed).",
                r.merge_id,
                r.from,
                group(r.lines_moved),
                group(r.lines_changed)
            );
        }
        SuppliersCommand::Merges(a) => {
            let org = db.require_org(&a.org)?;
            let m = db.supplier_merges(org.id, 500)?;
            if matches!(a.format, Format::Json) {
                println!("{}", serde_json::to_string_pretty(&m)?);
                return Ok(());
            }
            let mut t = Table::new(&[
                ("id", true),
                ("from", false),
                ("into", false),
                ("lines", true),
                ("merged", false),
                ("undone", false),
            ]);
            for x in &m {
                t.row(vec![
                    x.id.to_string(),
                    x.from.clone(),
                    x.into.clone(),
                    group(x.lines as u64),
                    format!("{} by {}", x.merged_at, x.merged_by),
                    x.unmerged_at.clone().unwrap_or_default(),
                ]);
            }
            print!("{}", t.to_text());
        }
        SuppliersCommand::Dismiss(a) => {
            let org = db.require_org(&a.org)?;
            if !db.dismiss_supplier_match(org.id, a.id, &Actor::cli())? {
                bail!("organization '{}' has no open pair {}", org.name, a.id);
            }
            println!("Dismissed pair {}: they are two suppliers.", a.id);
        }
        SuppliersCommand::Aliases(a) => {
            let org = db.require_org(&a.org)?;
            let x = db.supplier_aliases(org.id, a.supplier.as_deref(), 500)?;
            if matches!(a.format, Format::Json) {
                println!("{}", serde_json::to_string_pretty(&x)?);
                return Ok(());
            }
            let mut t = Table::new(&[
                ("supplier", false),
                ("kind", false),
                ("alias", false),
                ("as first seen", false),
                ("source", false),
                ("score", true),
            ]);
            for y in &x {
                t.row(vec![
                    y.supplier_id.clone(),
                    y.kind.clone(),
                    y.alias.clone(),
                    y.name.clone(),
                    y.source.clone(),
                    format!("{:.3}", y.score),
                ]);
            }
            print!("{}", t.to_text());
        }
        SuppliersCommand::Intensities(_) | SuppliersCommand::RemoveIntensity(_) => {
            unreachable!("handled by cmd.rs")
        }
    }
    Ok(())
}
