//! Restatements of closed years: for a change of settings (an EPA release pinned, a default
//! currency, the radiative-forcing choice), for corrected supplier data, and for corrected
//! lines (a changed amount, date, NAICS code or category: a changed category mapping is a
//! corrected line). A preview of what the change would do to each closed year's disclosed
//! figures, and applying it as a new inventory version of each year it changes.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use serde_json::json;
use vcci_core::{Catalog, Line, SupplierProfile};

use super::periods::attest;
use super::recalc::{
    Recalculated, put_settings, recalculate_tx, settings_cause, settings_json, stored_as_line,
};
use super::suppliers::{merged_profile, put_supplier};
use super::{Delta, LineWriter, NewSuppliers, PreparedLine, WriteBatch, prepare, record_digests};
use crate::classify::OrgClassifier;
use crate::codec::kg_to_mg;
use crate::conn::{Db, Tx, args};
use crate::model::audit::{self, Actor, Change};
use crate::model::orgs::{Org, bump_generation};
use crate::model::periods::closed_years;
use crate::model::suppliers::Supplier;
use crate::{Result, StoreError, now_rfc3339};

/// One category (or the total) of a restated year: disclosed, restated, and the change.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RestateRow {
    /// Null for the total.
    pub category: Option<u8>,
    pub name: &'static str,
    pub before_co2e_kg: Option<f64>,
    pub after_co2e_kg: Option<f64>,
    pub change_kg: f64,
    /// Null when the disclosed figure is 0 or absent.
    pub change_pct: Option<f64>,
}

/// What a change would do to one closed year.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct YearRestatement {
    pub year: u16,
    /// The disclosed version the preview starts from.
    pub version: u32,
    pub categories: Vec<RestateRow>,
    pub total: RestateRow,
    /// Lines whose result (emissions or category) would change.
    pub lines_affected: u64,
    /// Lines the new settings cannot calculate (they would keep their result).
    pub lines_failing: u64,
    /// Whether the total's change reaches the significance threshold.
    pub significant: bool,
}

/// A restatement preview: the cause, the threshold, and each closed year.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RestatementPreview {
    pub cause: String,
    pub significance_threshold: f64,
    pub years: Vec<YearRestatement>,
}

fn row(
    category: Option<u8>,
    name: &'static str,
    before: Option<i64>,
    after: Option<i64>,
) -> RestateRow {
    let change = after.unwrap_or(0) - before.unwrap_or(0);
    RestateRow {
        category,
        name,
        before_co2e_kg: before.map(|mg| mg as f64 / 1e6),
        after_co2e_kg: after.map(|mg| mg as f64 / 1e6),
        change_kg: change as f64 / 1e6,
        change_pct: before
            .filter(|b| *b != 0)
            .map(|b| change as f64 / (b as f64).abs() * 100.0),
    }
}

/// Corrected data a restatement writes besides settings: supplier data (as a supplier upsert
/// takes it) and lines (upserts by transaction_id).
#[derive(Clone, Debug, Default)]
pub struct Correction {
    pub suppliers: Vec<Supplier>,
    pub lines: Vec<Line>,
}

/// At most this many corrected suppliers, and lines, in one restatement.
pub const MAX_CORRECTIONS: usize = 10_000;

/// What the restatement would write, calculated with the settings and supplier data after it.
struct Restated {
    profiles: HashMap<String, SupplierProfile>,
    /// Suppliers whose profile changes, in id order.
    changed_suppliers: Vec<String>,
    lines: Vec<PreparedLine>,
    new_suppliers: NewSuppliers,
    cause: String,
    /// Classifies lines that need a code (corrected ones, and frozen ones whose supplier
    /// lost its code).
    classifier: std::sync::Arc<OrgClassifier>,
}

impl Correction {
    pub fn is_empty(&self) -> bool {
        self.suppliers.is_empty() && self.lines.is_empty()
    }

    /// The supplier profiles and lines after the correction, calculated with `after`.
    fn restated(
        &self,
        cat: &'static Catalog,
        before: &Org,
        after: &Org,
        mut profiles: HashMap<String, SupplierProfile>,
        classifier: std::sync::Arc<OrgClassifier>,
        resolver: &mut crate::resolve::SupplierResolver,
    ) -> Result<Restated> {
        if self.suppliers.len() > MAX_CORRECTIONS || self.lines.len() > MAX_CORRECTIONS {
            return Err(StoreError::invalid(
                "corrections",
                format!("at most {MAX_CORRECTIONS} suppliers and {MAX_CORRECTIONS} lines"),
            ));
        }
        let now = now_rfc3339();
        let mut changed = Vec::new();
        for s in &self.suppliers {
            let old = profiles.get(&s.supplier_id);
            let (new, _) = merged_profile(old, s, &now);
            if old != Some(&new) {
                changed.push(s.supplier_id.clone());
            }
            profiles.insert(s.supplier_id.clone(), new);
        }
        changed.sort();
        changed.dedup();
        let mut lines: Vec<PreparedLine> = Vec::with_capacity(self.lines.len());
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut new_suppliers = NewSuppliers::new();
        for (i, l) in self.lines.iter().enumerate() {
            let mut l = l.clone();
            // A corrected line's supplier is resolved as an imported line's is.
            if crate::resolve::SupplierResolver::may_need(&l, |k| profiles.contains_key(k)) {
                resolver.resolve(&mut l);
            }
            let p = prepare(cat, after, l, &profiles, None, Some(&classifier)).map_err(|e| {
                let at = match e.field {
                    "" => format!("transactions[{i}]"),
                    f => format!("transactions[{i}].{f}"),
                };
                StoreError::invalid(at, e.message)
            })?;
            // A supplier no one knew is created with the line, as an upsert does; it has
            // no data yet (the profile an upsert gives it too).
            if let Some(k) = p.supplier_key()
                && !profiles.contains_key(k)
            {
                let name = p.line.supplier_name.clone().unwrap_or_else(|| k.to_owned());
                new_suppliers.push((k.to_owned(), name));
                profiles.insert(k.to_owned(), SupplierProfile::default());
            }
            // A later correction of the same line wins.
            match seen.get(p.id()) {
                Some(&at) => lines[at] = p,
                None => {
                    seen.insert(p.id().to_owned(), lines.len());
                    lines.push(p);
                }
            }
        }
        Ok(Restated {
            profiles,
            changed_suppliers: changed,
            lines,
            new_suppliers,
            cause: restatement_cause(before, after, self),
            classifier,
        })
    }
}

/// What a restatement changes, in words: the settings, the suppliers corrected, the number
/// of corrected lines.
pub fn restatement_cause(before: &Org, after: &Org, c: &Correction) -> String {
    let mut parts = Vec::new();
    if before != after {
        parts.push(settings_cause(before, after));
    }
    if !c.suppliers.is_empty() {
        let ids: Vec<&str> = c
            .suppliers
            .iter()
            .map(|s| s.supplier_id.as_str())
            .take(5)
            .collect();
        parts.push(format!(
            "corrected data of {} supplier(s): {}{}",
            c.suppliers.len(),
            ids.join(", "),
            if c.suppliers.len() > 5 { ", …" } else { "" }
        ));
    }
    if !c.lines.is_empty() {
        parts.push(format!("{} corrected line(s)", c.lines.len()));
    }
    parts.join("; ")
}

/// Per closed year of `org`, what the restatement `r` (with `after`'s settings) would do to
/// its current version, read in `tx`: each frozen line recalculated with the settings and
/// supplier data after it, corrected lines replacing theirs, moved out of the year or into it.
fn preview_years(
    tx: &Tx<'_>,
    cat: &'static Catalog,
    after: &Org,
    r: &Restated,
    threshold: f64,
) -> Result<Vec<YearRestatement>> {
    let corrected: HashMap<&str, &PreparedLine> = r.lines.iter().map(|p| (p.id(), p)).collect();
    let mut years = Vec::new();
    for year in closed_years(tx, after.id)? {
        let version: u32 = tx.query_one(
            "SELECT version FROM periods WHERE org_id = ?1 AND year = ?2",
            args![after.id.0, year],
            |r| r.u32(0),
        )?;
        let lines = tx.query(
            "SELECT transaction_id, day, supplier_id, co2e_kg, category, body
             FROM inventory_version_lines WHERE org_id = ?1 AND year = ?2 AND version = ?3",
            args![after.id.0, year, version],
            |r| {
                Ok((
                    r.string(0)?,
                    r.u32(1)?,
                    r.opt_string(2)?,
                    r.f64(3)?,
                    r.u8(4)?,
                    r.blob(5)?.to_vec(),
                ))
            },
        )?;
        let (mut was, mut now) = (BTreeMap::<u8, i64>::new(), BTreeMap::<u8, i64>::new());
        let (mut affected, mut failing) = (0u64, 0u64);
        let mut frozen_ids = HashSet::new();
        for (id, day, supplier, kg, category, body) in lines {
            let mg = kg_to_mg(kg);
            *was.entry(category).or_default() += mg;
            let restated = match corrected.get(id.as_str()) {
                // A corrected line: its correction, or nothing if it moved out of the year.
                Some(p) => Some(
                    (p.day() / 10_000 == u32::from(year))
                        .then(|| (p.emission.category.number(), kg_to_mg(p.emission.co2e_kg))),
                ),
                None => {
                    let line = stored_as_line(id.clone(), day, supplier, &body)?;
                    match prepare(cat, after, line, &r.profiles, None, Some(&r.classifier)) {
                        Ok(p) => Some(Some((
                            p.emission.category.number(),
                            kg_to_mg(p.emission.co2e_kg),
                        ))),
                        // As a recalculation would: the line keeps its result.
                        Err(_) => None,
                    }
                }
            };
            frozen_ids.insert(id);
            match restated {
                Some(Some((c, m))) => {
                    *now.entry(c).or_default() += m;
                    if (c, m) != (category, mg) {
                        affected += 1;
                    }
                }
                Some(None) => affected += 1,
                None => {
                    failing += 1;
                    *now.entry(category).or_default() += mg;
                }
            }
        }
        // Corrected lines moved (or added) into the year.
        for p in &r.lines {
            if p.day() / 10_000 == u32::from(year) && !frozen_ids.contains(p.id()) {
                *now.entry(p.emission.category.number()).or_default() +=
                    kg_to_mg(p.emission.co2e_kg);
                affected += 1;
            }
        }
        let categories: Vec<RestateRow> = vcci_core::Category::all()
            .filter_map(|c| {
                let n = c.number();
                let (b, a) = (was.get(&n).copied(), now.get(&n).copied());
                (b.is_some() || a.is_some()).then(|| row(Some(n), c.name(), b, a))
            })
            .collect();
        let (tb, ta) = (was.values().sum::<i64>(), now.values().sum::<i64>());
        let total = row(None, "Total", Some(tb), Some(ta));
        let significant = match total.change_pct {
            Some(p) => p.abs() >= threshold * 100.0,
            None => ta != tb,
        };
        years.push(YearRestatement {
            year,
            version,
            categories,
            total,
            lines_affected: affected,
            lines_failing: failing,
            significant,
        });
    }
    Ok(years)
}

impl Db {
    /// What calculating with `after`'s settings and the corrected data `c` would do to each
    /// closed year of the organization: per category and in total, the disclosed figures
    /// (the year's current version) against the restated ones, the lines affected, and
    /// whether the change is significant. Nothing is written.
    pub fn restatement_preview(
        &mut self,
        cat: &'static Catalog,
        before: &Org,
        after: &Org,
        c: &Correction,
    ) -> Result<RestatementPreview> {
        let threshold = self.reporting_settings(before.id)?.significance_threshold;
        let profiles = self.supplier_profiles(before.id)?;
        let classifier = self.load_classifier(before.id)?;
        let mut resolver = self.supplier_resolver(before.id)?;
        let r = c.restated(cat, before, after, profiles, classifier, &mut resolver)?;
        let tx = self.conn.begin()?;
        let years = preview_years(&tx, cat, after, &r, threshold)?;
        drop(tx);
        Ok(RestatementPreview {
            cause: r.cause,
            significance_threshold: threshold,
            years,
        })
    }

    /// Applies a restatement: `after`'s settings are set, the corrected supplier data and
    /// lines of `c` written (a closed year's too), the lines they change recalculated, and
    /// each closed year whose figures change gets a new inventory version with `reason`,
    /// in one transaction with its audit entry. Earlier versions stay as they were. Returns
    /// the new versions (year, version).
    pub fn apply_restatement(
        &mut self,
        cat: &'static Catalog,
        before: &Org,
        after: &Org,
        c: &Correction,
        reason: &str,
        actor: &Actor,
    ) -> Result<Vec<(u16, u32)>> {
        let reason = reason.trim();
        if reason.is_empty() || reason.len() > 2000 {
            return Err(StoreError::invalid(
                "reason",
                "a restatement needs a written reason (up to 2000 bytes)",
            ));
        }
        if before == after && c.is_empty() {
            return Err(StoreError::invalid(
                "restatement",
                "nothing to restate: no setting changes and no corrected data",
            ));
        }
        let threshold = self.reporting_settings(before.id)?.significance_threshold;
        let profiles = self.supplier_profiles(before.id)?;
        let classifier = self.load_classifier(before.id)?;
        let mut resolver = self.supplier_resolver(before.id)?;
        let r = c.restated(cat, before, after, profiles, classifier, &mut resolver)?;
        let now = now_rfc3339();
        let tx = self.conn.begin_immediate()?;
        super::turns::lock_org(&tx, before.id, None)?;
        let (aliases, pairs) = resolver.take_found();
        crate::resolve::record(&tx, before.id, &aliases, &pairs)?;
        // Which closed years change, read under the write turns before anything is written.
        let changing: Vec<u16> = preview_years(&tx, cat, after, &r, threshold)?
            .into_iter()
            .filter(|y| y.lines_affected > 0)
            .map(|y| y.year)
            .collect();
        let settings = before != after;
        if settings {
            put_settings(&tx, after)?;
        }
        let mut suppliers = Vec::new();
        for s in &c.suppliers {
            let (_, value) = merged_profile(None, s, &now);
            suppliers.push(put_supplier(&tx, after.id, s, value.as_ref(), &now)?);
        }
        // The corrected lines, then the lines the settings or supplier data change.
        let mut digests = audit::LineDigests::default();
        if !r.lines.is_empty() {
            let mut w = LineWriter::for_conn(&tx);
            let mut delta = Delta::default();
            let batch = WriteBatch {
                restating: true,
                ..WriteBatch::direct(after.id, &r.lines, &r.new_suppliers)
            };
            let out = w.write(&tx, &batch, &mut delta)?;
            delta.flush(&tx, after.id)?;
            record_digests(&mut digests, &r.lines, &out);
        }
        let rc = if settings {
            recalculate_tx(&tx, cat, after, &r.profiles, None, true)?
        } else if !r.changed_suppliers.is_empty() {
            recalculate_tx(
                &tx,
                cat,
                after,
                &r.profiles,
                Some(&r.changed_suppliers),
                true,
            )?
        } else {
            Recalculated::default()
        };
        let mut all = digests.as_bytes().to_vec();
        all.extend_from_slice(rc.digests.as_bytes());
        let digests = audit::LineDigests::from_bytes(all);
        let why = format!("restatement: {reason} ({})", r.cause);
        let mut made = Vec::new();
        for year in changing {
            let f = self.freeze(&tx, after, year, &why, &actor.label, &now)?;
            tx.execute(
                "UPDATE periods SET version = ?3 WHERE org_id = ?1 AND year = ?2",
                args![before.id.0, year, f.version],
            )?;
            made.push(f);
        }
        bump_generation(&tx, before.id)?;
        let detail = json!({
            "reason": reason,
            "cause": r.cause,
            "settings": settings_json(after),
            "suppliers": suppliers,
            "corrected_lines": r.lines.len(),
            "lines_changed": rc.changed,
            "versions": made.iter().map(|f| f.detail(None)).collect::<Vec<_>>(),
        });
        let change = Change::new("restatement.applied", "", detail).with_lines(&digests);
        let entry = audit::append(&tx, before.id, actor, change)?;
        for f in &made {
            attest(&tx, after, f.year, f.version, entry)?;
        }
        tx.commit()?;
        Ok(made.iter().map(|f| (f.year, f.version)).collect())
    }
}
