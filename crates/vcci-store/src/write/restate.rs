//! Restatements of closed years for a change of settings (an EPA release pinned, a default
//! currency, the radiative-forcing choice): a preview of what the change would do to each
//! closed year's disclosed figures, and applying it as a new inventory version of each.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::json;
use vcci_core::Catalog;

use super::periods::attest;
use super::prepare;
use super::recalc::{put_settings, recalculate_tx, settings_json, stored_as_line};
use crate::codec::kg_to_mg;
use crate::conn::{Db, args};
use crate::model::audit::{self, Actor, Change};
use crate::model::orgs::{Org, bump_generation};
use crate::model::periods::closed_years;
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

/// The settings `before` and `after` differ in, in words.
pub fn settings_cause(before: &Org, after: &Org) -> String {
    let mut parts = Vec::new();
    if before.epa_version != after.epa_version {
        parts.push(format!(
            "EPA supply chain {} instead of {}",
            after.epa_version.as_str(),
            before.epa_version.as_str()
        ));
    }
    if before.default_currency != after.default_currency {
        parts.push(format!(
            "default currency {} instead of {}",
            after.default_currency, before.default_currency
        ));
    }
    if before.flights_with_rf != after.flights_with_rf {
        parts.push(format!(
            "flights {} radiative forcing",
            if after.flights_with_rf {
                "with"
            } else {
                "without"
            }
        ));
    }
    parts.join("; ")
}

impl Db {
    /// What calculating with `after`'s settings would do to each closed year of the
    /// organization: per category and in total, the disclosed figures (the year's current
    /// version) against the restated ones, the lines affected, and whether the change is
    /// significant. Nothing is written.
    pub fn restatement_preview(
        &mut self,
        cat: &'static Catalog,
        before: &Org,
        after: &Org,
    ) -> Result<RestatementPreview> {
        let threshold = self.reporting_settings(before.id)?.significance_threshold;
        let profiles = self.supplier_profiles(before.id)?;
        let tx = self.conn.begin()?;
        let mut years = Vec::new();
        for year in closed_years(&tx, before.id)? {
            let version: u32 = tx.query_one(
                "SELECT version FROM periods WHERE org_id = ?1 AND year = ?2",
                args![before.id.0, year],
                |r| r.u32(0),
            )?;
            let lines = tx.query(
                "SELECT transaction_id, day, supplier_id, co2e_kg, category, body
                 FROM inventory_version_lines WHERE org_id = ?1 AND year = ?2 AND version = ?3",
                args![before.id.0, year, version],
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
            for (id, day, supplier, kg, category, body) in lines {
                let mg = kg_to_mg(kg);
                *was.entry(category).or_default() += mg;
                let line = stored_as_line(id, day, supplier, &body)?;
                match prepare(cat, after, line, &profiles, None) {
                    Ok(p) => {
                        let (c, m) = (p.emission.category.number(), kg_to_mg(p.emission.co2e_kg));
                        *now.entry(c).or_default() += m;
                        if (c, m) != (category, mg) {
                            affected += 1;
                        }
                    }
                    // As a recalculation would: the line keeps its result.
                    Err(_) => {
                        failing += 1;
                        *now.entry(category).or_default() += mg;
                    }
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
        drop(tx);
        Ok(RestatementPreview {
            cause: settings_cause(before, after),
            significance_threshold: threshold,
            years,
        })
    }

    /// Applies `after`'s settings as a restatement: the settings are set, every line (the
    /// closed years' too) is recalculated, and each closed year gets a new inventory
    /// version with `reason`, in one transaction. Earlier versions stay as they were.
    /// Returns the new versions (year, version).
    pub fn apply_restatement(
        &mut self,
        cat: &'static Catalog,
        before: &Org,
        after: &Org,
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
        let profiles = self.supplier_profiles(before.id)?;
        let now = now_rfc3339();
        let tx = self.conn.begin_immediate()?;
        super::turns::lock_org(&tx, before.id, None)?;
        put_settings(&tx, after)?;
        let r = recalculate_tx(&tx, cat, after, &profiles, None, true)?;
        let cause = settings_cause(before, after);
        let why = format!("restatement: {reason} ({cause})");
        let mut made = Vec::new();
        for year in closed_years(&tx, before.id)? {
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
            "cause": cause,
            "settings": settings_json(after),
            "lines_changed": r.changed,
            "versions": made.iter().map(|f| f.detail(None)).collect::<Vec<_>>(),
        });
        let change = Change::new("restatement.applied", "", detail).with_lines(&r.digests);
        let entry = audit::append(&tx, before.id, actor, change)?;
        for f in &made {
            attest(&tx, after, f.year, f.version, entry)?;
        }
        tx.commit()?;
        Ok(made.iter().map(|f| (f.year, f.version)).collect())
    }
}
