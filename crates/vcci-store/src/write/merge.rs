//! Merging one supplier into another, and undoing it (issue 19, supplier resolution).
//!
//! A merge of `from` into `into`, in one transaction with its audit entry
//! (`supplier.merged`, with the digests of the lines it wrote):
//! - every line of `from` belongs to `into` (`Line::supplier_link`; the line's own
//!   supplier_id and supplier_name stay as given) and is calculated again with `into`'s
//!   profile; the read models move with it (per supplier and month, and per category when a
//!   result changed);
//! - `from`'s data follows: its intensity years that `into` lacks, its country and NAICS code
//!   where `into` has none, its product footprints and PACT connections, its aliases; its id
//!   and name become aliases of `into`, so later lines that name it belong to `into`;
//! - `from`'s row is removed, and archived with everything the merge moved, so that the merge
//!   can be undone exactly (`unmerge_suppliers`): the lines that moved, and later lines that
//!   name `from`, go back and are calculated again.
//!
//! Both suppliers are the organization's (a merge names suppliers by id within it). A merge
//! that would move lines of a closed year, or change a closed year's result, is refused.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::json;
use vcci_core::names::normalize;
use vcci_core::{Catalog, Line, SupplierProfile};

use super::LineWriter;
use super::recalc::{Recalculated, Rewrite, closed_year_changes, load_lines, recalculate_tx};
use crate::conn::{Db, Tx, args};
use crate::model::audit::{self, Actor, Change};
use crate::model::orgs::{Org, OrgId, bump_generation};
use crate::model::suppliers::profiles_in;
use crate::{Result, StoreError, now_rfc3339};

/// A supplier's row as a merge archives it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct RowArchive {
    name: String,
    country: Option<String>,
    naics: Option<i64>,
    updated_at: String,
}

/// An intensity value as a merge archives it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct IntensityArchive {
    year: i64,
    kg_per_usd: f64,
    boundary: String,
    boundary_stated: i64,
    verified: i64,
    source: Option<String>,
    updated_at: String,
}

/// What a merge moved, and `from` as it was: what undoing it needs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Archive {
    row: Option<RowArchive>,
    intensities: Vec<IntensityArchive>,
    /// Years of `from`'s intensities copied to `into` (which had none for them).
    moved_years: Vec<i64>,
    /// `into`'s fields set from `from`'s (`country`, `naics`).
    filled: Vec<String>,
    footprints: Vec<String>,
    connections: Vec<String>,
    /// Aliases of `from` (kind, alias) that now name `into`.
    aliases: Vec<(String, String)>,
    /// Candidate pairs of the two, marked merged.
    matches: Vec<i64>,
}

/// What a merge did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MergeReport {
    pub merge_id: i64,
    pub from: String,
    pub into: String,
    /// Lines of `from` that now belong to `into`.
    pub lines_moved: u64,
    /// Lines whose result changed (moved lines calculated with `into`'s profile, and
    /// `into`'s lines when it gained intensity years).
    pub lines_changed: u64,
    pub intensity_years_moved: usize,
    pub footprints_moved: usize,
}

/// What undoing a merge did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UnmergeReport {
    pub merge_id: i64,
    pub from: String,
    pub into: String,
    /// Lines that belong to `from` again.
    pub lines_moved: u64,
    pub lines_changed: u64,
}

/// A merge as listed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MergeView {
    pub id: i64,
    pub from: String,
    pub into: String,
    pub lines: i64,
    pub merged_at: String,
    pub merged_by: String,
    pub unmerged_at: Option<String>,
    pub unmerged_by: Option<String>,
}

fn supplier_row(tx: &Tx<'_>, org: OrgId, id: &str) -> Result<Option<RowArchive>> {
    tx.query_opt(
        "SELECT name, country, naics_code, updated_at FROM suppliers
         WHERE org_id = ?1 AND supplier_id = ?2",
        args![org.0, id],
        |r| {
            Ok(RowArchive {
                name: r.string(0)?,
                country: r.opt_string(1)?,
                naics: r.opt_i64(2)?,
                updated_at: r.string(3)?,
            })
        },
    )
}

fn intensities(tx: &Tx<'_>, org: OrgId, id: &str) -> Result<Vec<IntensityArchive>> {
    tx.query(
        "SELECT year, kg_per_usd, boundary, boundary_stated, verified, source, updated_at
         FROM supplier_intensities WHERE org_id = ?1 AND supplier_id = ?2 ORDER BY year",
        args![org.0, id],
        |r| {
            Ok(IntensityArchive {
                year: r.i64(0)?,
                kg_per_usd: r.f64(1)?,
                boundary: r.string(2)?,
                boundary_stated: r.i64(3)?,
                verified: r.i64(4)?,
                source: r.opt_string(5)?,
                updated_at: r.string(6)?,
            })
        },
    )
}

fn put_intensity(tx: &Tx<'_>, org: OrgId, id: &str, v: &IntensityArchive) -> Result<()> {
    tx.execute(
        "INSERT INTO supplier_intensities (org_id, supplier_id, year, kg_per_usd, boundary,
           boundary_stated, verified, source, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        args![
            org.0,
            id,
            v.year,
            v.kg_per_usd,
            v.boundary.as_str(),
            v.boundary_stated,
            v.verified,
            v.source.as_deref(),
            v.updated_at.as_str()
        ],
    )?;
    Ok(())
}

/// The first closed year among the years of `lines`, if any.
fn closed_year_of(closed: &[u16], lines: &[Line]) -> Option<u16> {
    lines
        .iter()
        .filter_map(|l| l.date.map(|d| d.year()))
        .find(|y| closed.contains(y))
}

/// The key a line names (its supplier_id, else its supplier_name).
fn named_key(line: &Line) -> Option<&str> {
    line.supplier_id
        .as_deref()
        .or(line.supplier_name.as_deref())
}

/// Lines of `org` keyed `supplier`, all of them (keyset pages).
fn lines_of(tx: &Tx<'_>, org: OrgId, supplier: &str) -> Result<Vec<Line>> {
    let only = [supplier.to_owned()];
    let mut out = Vec::new();
    let mut after = String::new();
    loop {
        let page = load_lines(tx, org, &after, Some(&only), None, 5000)?;
        let Some(last) = page.last() else { break };
        after = last.0.clone();
        out.extend(page.into_iter().map(|(_, l)| l));
    }
    Ok(out)
}

/// Writes `lines` again and, if `into`'s profile changed, recalculates its other lines;
/// refuses (nothing written) when a line no longer calculates or a closed year would change.
/// `profiles`: the organization's supplier profiles before and after the change.
fn write_moved(
    tx: &Tx<'_>,
    cat: &'static Catalog,
    org: &Org,
    lines: Vec<Line>,
    into: &str,
    profiles: (
        &HashMap<String, SupplierProfile>,
        &HashMap<String, SupplierProfile>,
    ),
    out: &mut Recalculated,
) -> Result<()> {
    let (before, after) = profiles;
    let into_changed = before.get(into) != after.get(into);
    if into_changed {
        let only = [into.to_owned()];
        let years = closed_year_changes(tx, cat, (org, before), (org, after), Some(&only))?;
        if let Some((&year, &n)) = years.iter().next() {
            return Err(StoreError::PeriodClosed {
                year,
                message: format!(
                    "{} ({n} lines of supplier '{into}' would change with the merged data)",
                    crate::error::period_closed_message(year)
                ),
            });
        }
    }
    let mut writer = LineWriter::for_conn(tx);
    Rewrite {
        org,
        profiles: after,
        classifier: None,
        restating: false,
    }
    .write(tx, cat, &mut writer, lines, out)?;
    if into_changed {
        let r = recalculate_tx(tx, cat, org, after, Some(&[into.to_owned()]), false)?;
        out.changed += r.changed;
        out.errors.extend(r.errors);
        out.digests.extend(r.digests);
    }
    if let Some((id, e)) = out.errors.first() {
        return Err(StoreError::invalid(
            "",
            format!(
                "line '{id}' would not calculate after the change: {}",
                e.message
            ),
        ));
    }
    Ok(())
}

impl Db {
    /// Merges supplier `from` into `into` (see the module's comment).
    pub fn merge_suppliers(
        &mut self,
        cat: &'static Catalog,
        org: &Org,
        from: &str,
        into: &str,
        actor: &Actor,
    ) -> Result<MergeReport> {
        if from == into {
            return Err(StoreError::invalid(
                "into",
                "a supplier cannot be merged into itself",
            ));
        }
        let o = org.id;
        let tx = self.conn.begin_immediate()?;
        super::turns::lock_org(&tx, o, None)?;
        let Some(from_row) = supplier_row(&tx, o, from)? else {
            return Err(StoreError::NotFound(format!("supplier '{from}'")));
        };
        let Some(into_row) = supplier_row(&tx, o, into)? else {
            return Err(StoreError::NotFound(format!("supplier '{into}'")));
        };
        let closed = crate::model::periods::closed_years(&tx, o)?;
        let mut moved = lines_of(&tx, o, from)?;
        if let Some(year) = closed_year_of(&closed, &moved) {
            return Err(StoreError::PeriodClosed {
                year,
                message: format!(
                    "{}: supplier '{from}' has lines there (a restatement is the way to change disclosed figures)",
                    crate::error::period_closed_message(year)
                ),
            });
        }
        let before = profiles_in(&tx, o)?;
        let now = now_rfc3339();
        let mut a = Archive {
            intensities: intensities(&tx, o, from)?,
            ..Archive::default()
        };
        // Intensity years `into` lacks follow; `from`'s rows go (archived).
        let into_years: BTreeSet<i64> = intensities(&tx, o, into)?.iter().map(|v| v.year).collect();
        for v in &a.intensities {
            if !into_years.contains(&v.year) {
                put_intensity(&tx, o, into, v)?;
                a.moved_years.push(v.year);
            }
        }
        tx.execute(
            "DELETE FROM supplier_intensities WHERE org_id = ?1 AND supplier_id = ?2",
            args![o.0, from],
        )?;
        if into_row.country.is_none() && from_row.country.is_some() {
            tx.execute(
                "UPDATE suppliers SET country = ?3 WHERE org_id = ?1 AND supplier_id = ?2",
                args![o.0, into, from_row.country.as_deref()],
            )?;
            a.filled.push("country".into());
        }
        if into_row.naics.is_none() && from_row.naics.is_some() {
            tx.execute(
                "UPDATE suppliers SET naics_code = ?3 WHERE org_id = ?1 AND supplier_id = ?2",
                args![o.0, into, from_row.naics],
            )?;
            a.filled.push("naics".into());
        }
        a.footprints = tx.query(
            "SELECT id FROM pcfs WHERE org_id = ?1 AND supplier_id = ?2 ORDER BY id",
            args![o.0, from],
            |r| r.string(0),
        )?;
        tx.execute(
            "UPDATE pcfs SET supplier_id = ?3 WHERE org_id = ?1 AND supplier_id = ?2",
            args![o.0, from, into],
        )?;
        a.connections = tx.query(
            "SELECT id FROM pact_connections WHERE org_id = ?1 AND supplier_id = ?2 ORDER BY id",
            args![o.0, from],
            |r| r.string(0),
        )?;
        tx.execute(
            "UPDATE pact_connections SET supplier_id = ?3 WHERE org_id = ?1 AND supplier_id = ?2",
            args![o.0, from, into],
        )?;
        a.aliases = tx.query(
            "SELECT kind, alias FROM supplier_aliases WHERE org_id = ?1 AND supplier_id = ?2
             ORDER BY kind, alias",
            args![o.0, from],
            |r| Ok((r.string(0)?, r.string(1)?)),
        )?;
        tx.execute(
            "UPDATE supplier_aliases SET supplier_id = ?3 WHERE org_id = ?1 AND supplier_id = ?2",
            args![o.0, from, into],
        )?;
        a.matches = tx.query(
            "SELECT id FROM supplier_matches WHERE org_id = ?1 AND status = 'open'
               AND ((supplier_id = ?2 AND candidate_id = ?3) OR (supplier_id = ?3 AND candidate_id = ?2))",
            args![o.0, from, into],
            |r| r.i64(0),
        )?;
        for id in &a.matches {
            tx.execute(
                "UPDATE supplier_matches SET status = 'merged', decided_at = ?3, decided_by = ?4
                 WHERE org_id = ?1 AND id = ?2",
                args![o.0, *id, now.as_str(), actor.label.as_str()],
            )?;
        }
        tx.execute(
            "DELETE FROM suppliers WHERE org_id = ?1 AND supplier_id = ?2",
            args![o.0, from],
        )?;
        a.row = Some(from_row.clone());
        let merge_id = tx.query_one(
            "INSERT INTO supplier_merges (org_id, from_id, into_id, archived, lines, merged_at,
               merged_by) VALUES (?1, ?2, ?3, '{}', 0, ?4, ?5) RETURNING id",
            args![o.0, from, into, now.as_str(), actor.label.as_str()],
            |r| r.i64(0),
        )?;
        // `from`'s id and name name `into` from now on (aliases of this merge).
        let name_alias = normalize(&from_row.name);
        for (kind, alias) in [("id", from.to_owned()), ("name", name_alias)] {
            if alias.is_empty() {
                continue;
            }
            tx.execute(
                "INSERT INTO supplier_aliases (org_id, kind, alias, supplier_id, name, source,
                   score, merge_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5, 'merged', 1, ?6, ?7)
                 ON CONFLICT (org_id, kind, alias) DO NOTHING",
                args![
                    o.0,
                    kind,
                    alias.as_str(),
                    into,
                    from_row.name.as_str(),
                    merge_id,
                    now.as_str()
                ],
            )?;
        }
        for line in &mut moved {
            line.supplier_link = Some(into.to_owned());
            tx.execute(
                "INSERT INTO supplier_merge_lines (merge_id, transaction_id) VALUES (?1, ?2)",
                args![merge_id, line.transaction_id.as_deref().unwrap_or_default()],
            )?;
        }
        let lines_moved = moved.len() as u64;
        let after = profiles_in(&tx, o)?;
        let mut out = Recalculated::default();
        write_moved(&tx, cat, org, moved, into, (&before, &after), &mut out)?;
        let archived = serde_json::to_string(&a)
            .map_err(|e| StoreError::internal(format!("a merge's archive as JSON: {e}")))?;
        tx.execute(
            "UPDATE supplier_merges SET archived = ?2, lines = ?3 WHERE id = ?1",
            args![merge_id, archived.as_str(), lines_moved as i64],
        )?;
        audit::append(
            &tx,
            o,
            actor,
            Change::new(
                "supplier.merged",
                from,
                json!({"merge_id": merge_id, "from": from, "into": into,
                       "lines_moved": lines_moved, "lines_changed": out.changed,
                       "intensity_years_moved": a.moved_years, "filled": a.filled,
                       "footprints": a.footprints, "connections": a.connections}),
            )
            .with_lines(&out.digests),
        )?;
        bump_generation(&tx, o)?;
        tx.commit()?;
        Ok(MergeReport {
            merge_id,
            from: from.to_owned(),
            into: into.to_owned(),
            lines_moved,
            lines_changed: out.changed,
            intensity_years_moved: a.moved_years.len(),
            footprints_moved: a.footprints.len(),
        })
    }

    /// Undoes merge `merge_id` (see the module's comment).
    pub fn unmerge_suppliers(
        &mut self,
        cat: &'static Catalog,
        org: &Org,
        merge_id: i64,
        actor: &Actor,
    ) -> Result<UnmergeReport> {
        let o = org.id;
        let tx = self.conn.begin_immediate()?;
        super::turns::lock_org(&tx, o, None)?;
        let Some((from, into, archived, undone)) = tx.query_opt(
            "SELECT from_id, into_id, archived, unmerged_at FROM supplier_merges
             WHERE org_id = ?1 AND id = ?2",
            args![o.0, merge_id],
            |r| Ok((r.string(0)?, r.string(1)?, r.string(2)?, r.opt_string(3)?)),
        )?
        else {
            return Err(StoreError::NotFound(format!("merge {merge_id}")));
        };
        let conflict = |m: String| StoreError::Conflict {
            message: m,
            sqlstate: None,
        };
        if undone.is_some() {
            return Err(conflict(format!("merge {merge_id} was undone already")));
        }
        let a: Archive = serde_json::from_str(&archived)
            .map_err(|e| StoreError::corrupt(format!("merge {merge_id}'s archive: {e}")))?;
        let Some(row) = &a.row else {
            return Err(StoreError::corrupt(format!(
                "merge {merge_id} archived no supplier"
            )));
        };
        if supplier_row(&tx, o, &into)?.is_none() {
            return Err(conflict(format!(
                "supplier '{into}' no longer exists (it was merged into another: undo that first)"
            )));
        }
        if supplier_row(&tx, o, &from)?.is_some() {
            return Err(conflict(format!("a supplier '{from}' exists again")));
        }
        // The lines that go back: those the merge moved, and later lines that name `from`
        // (by id, or by a name equal to its name once normalized).
        let recorded: BTreeSet<String> = tx
            .query(
                "SELECT transaction_id FROM supplier_merge_lines WHERE merge_id = ?1",
                args![merge_id],
                |r| r.string(0),
            )?
            .into_iter()
            .collect();
        let from_name = normalize(&row.name);
        let mut back: Vec<Line> = lines_of(&tx, o, &into)?
            .into_iter()
            .filter(|l| {
                l.supplier_link.as_deref() == Some(into.as_str())
                    && (recorded.contains(l.transaction_id.as_deref().unwrap_or_default())
                        || l.supplier_id.as_deref() == Some(from.as_str())
                        || (l.supplier_id.is_none()
                            && l.supplier_name.as_deref().map(normalize).as_deref()
                                == Some(from_name.as_str())))
            })
            .collect();
        let closed = crate::model::periods::closed_years(&tx, o)?;
        if let Some(year) = closed_year_of(&closed, &back) {
            return Err(StoreError::PeriodClosed {
                year,
                message: format!(
                    "{}: lines of the merge are there (a restatement is the way to change disclosed figures)",
                    crate::error::period_closed_message(year)
                ),
            });
        }
        let before = profiles_in(&tx, o)?;
        tx.execute(
            "INSERT INTO suppliers (org_id, supplier_id, name, country, naics_code, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            args![
                o.0,
                from.as_str(),
                row.name.as_str(),
                row.country.as_deref(),
                row.naics,
                row.updated_at.as_str()
            ],
        )?;
        for v in &a.intensities {
            put_intensity(&tx, o, &from, v)?;
        }
        // What moved to `into` goes back, unless `into` changed it since.
        for v in a
            .intensities
            .iter()
            .filter(|v| a.moved_years.contains(&v.year))
        {
            tx.execute(
                "DELETE FROM supplier_intensities WHERE org_id = ?1 AND supplier_id = ?2
                   AND year = ?3 AND kg_per_usd = ?4 AND updated_at = ?5",
                args![
                    o.0,
                    into.as_str(),
                    v.year,
                    v.kg_per_usd,
                    v.updated_at.as_str()
                ],
            )?;
        }
        for f in &a.filled {
            let (col, val) = match f.as_str() {
                "country" => ("country", row.country.clone()),
                _ => ("naics_code", row.naics.map(|n| n.to_string())),
            };
            tx.execute(
                &format!(
                    "UPDATE suppliers SET {col} = NULL WHERE org_id = ?1 AND supplier_id = ?2
                       AND CAST({col} AS TEXT) = ?3"
                ),
                args![o.0, into.as_str(), val.as_deref()],
            )?;
        }
        for id in &a.footprints {
            tx.execute(
                "UPDATE pcfs SET supplier_id = ?3 WHERE org_id = ?1 AND id = ?2 AND supplier_id = ?4",
                args![o.0, id.as_str(), from.as_str(), into.as_str()],
            )?;
        }
        for id in &a.connections {
            tx.execute(
                "UPDATE pact_connections SET supplier_id = ?3 WHERE org_id = ?1 AND id = ?2
                   AND supplier_id = ?4",
                args![o.0, id.as_str(), from.as_str(), into.as_str()],
            )?;
        }
        tx.execute(
            "DELETE FROM supplier_aliases WHERE org_id = ?1 AND merge_id = ?2",
            args![o.0, merge_id],
        )?;
        for (kind, alias) in &a.aliases {
            tx.execute(
                "UPDATE supplier_aliases SET supplier_id = ?4 WHERE org_id = ?1 AND kind = ?2
                   AND alias = ?3 AND supplier_id = ?5",
                args![
                    o.0,
                    kind.as_str(),
                    alias.as_str(),
                    from.as_str(),
                    into.as_str()
                ],
            )?;
        }
        for id in &a.matches {
            tx.execute(
                "UPDATE supplier_matches SET status = 'open', decided_at = NULL, decided_by = NULL
                 WHERE org_id = ?1 AND id = ?2",
                args![o.0, *id],
            )?;
        }
        for line in &mut back {
            line.supplier_link = (named_key(line) != Some(from.as_str())).then(|| from.clone());
        }
        let lines_moved = back.len() as u64;
        let after = profiles_in(&tx, o)?;
        let mut out = Recalculated::default();
        write_moved(&tx, cat, org, back, &into, (&before, &after), &mut out)?;
        let now = now_rfc3339();
        tx.execute(
            "UPDATE supplier_merges SET unmerged_at = ?2, unmerged_by = ?3 WHERE id = ?1",
            args![merge_id, now.as_str(), actor.label.as_str()],
        )?;
        tx.execute(
            "DELETE FROM supplier_merge_lines WHERE merge_id = ?1",
            args![merge_id],
        )?;
        audit::append(
            &tx,
            o,
            actor,
            Change::new(
                "supplier.unmerged",
                from.as_str(),
                json!({"merge_id": merge_id, "from": from, "into": into,
                       "lines_moved": lines_moved, "lines_changed": out.changed}),
            )
            .with_lines(&out.digests),
        )?;
        bump_generation(&tx, o)?;
        tx.commit()?;
        Ok(UnmergeReport {
            merge_id,
            from,
            into,
            lines_moved,
            lines_changed: out.changed,
        })
    }

    /// The organization's merges, newest first.
    pub fn supplier_merges(&self, org: OrgId, limit: usize) -> Result<Vec<MergeView>> {
        self.conn.query(
            "SELECT id, from_id, into_id, lines, merged_at, merged_by, unmerged_at, unmerged_by
             FROM supplier_merges WHERE org_id = ?1 ORDER BY id DESC LIMIT ?2",
            args![org.0, limit as i64],
            |r| {
                Ok(MergeView {
                    id: r.i64(0)?,
                    from: r.string(1)?,
                    into: r.string(2)?,
                    lines: r.i64(3)?,
                    merged_at: r.string(4)?,
                    merged_by: r.string(5)?,
                    unmerged_at: r.opt_string(6)?,
                    unmerged_by: r.opt_string(7)?,
                })
            },
        )
    }
}
