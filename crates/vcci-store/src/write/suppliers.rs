//! Supplier rows written with lines: the suppliers a batch refers to that do not exist
//! yet, and supplier upserts, which recalculate the lines of suppliers whose profile
//! changed in the same transaction.

use std::collections::HashMap;

use serde_json::json;
use vcci_core::{Catalog, SupplierProfile};

use super::NewSuppliers;
use super::postgres::ROWS_PER_STATEMENT;
use super::recalc::{Recalculated, closed_year_changes, recalculate_tx};
use crate::conn::{Arg, Db, Tx, args};
use crate::model::audit::{self, Actor, Change};
use crate::model::orgs::{Org, OrgId, bump_generation};
use crate::model::suppliers::{IntensityValue, Supplier, year_key};
use crate::{Result, now_rfc3339};

/// Suppliers a batch refers to that do not exist yet (multi-row inserts).
pub(super) fn insert_new(tx: &Tx<'_>, org: OrgId, new_suppliers: &NewSuppliers) -> Result<()> {
    if new_suppliers.is_empty() {
        return Ok(());
    }
    let now = now_rfc3339();
    let mut sorted: Vec<&(String, String)> = new_suppliers.iter().collect();
    // Key order, so that concurrent writers lock supplier rows in the same order.
    sorted.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    for chunk in sorted.chunks(ROWS_PER_STATEMENT) {
        let values: Vec<String> = (0..chunk.len())
            .map(|r| format!("(?1, ?{}, ?{}, ?2)", 3 + 2 * r, 4 + 2 * r))
            .collect();
        let mut a: Vec<Arg<'_>> = vec![Arg::Int(org.0), Arg::Text(&now)];
        for (id, name) in chunk {
            a.push(Arg::Text(id));
            a.push(Arg::Text(name));
        }
        tx.execute(
            &format!(
                "INSERT INTO suppliers (org_id, supplier_id, name, updated_at) VALUES {}
                 ON CONFLICT (org_id, supplier_id) DO NOTHING",
                values.join(", ")
            ),
            &a,
        )?;
    }
    Ok(())
}

/// What a supplier upsert did.
#[derive(Clone, Debug, PartialEq)]
pub struct SupplierUpsert {
    pub upserted: usize,
    /// Lines recalculated.
    pub recalculated: u64,
    /// Suppliers refused: their change would alter a closed year.
    pub refused: Vec<RefusedSupplier>,
}

/// A supplier of an upsert refused because its change would alter a closed year's lines.
#[derive(Clone, Debug, PartialEq)]
pub struct RefusedSupplier {
    /// Its position in the upsert.
    pub index: usize,
    pub supplier_id: String,
    /// The first closed year it would change.
    pub year: u16,
    /// That year's lines it would change.
    pub lines: u64,
}

impl RefusedSupplier {
    pub fn message(&self) -> String {
        format!(
            "{} ({} of its lines there would change)",
            crate::error::period_closed_message(self.year),
            self.lines
        )
    }
}

impl Db {
    /// Upserts suppliers by supplier_id: name, country and NAICS code; a supplier that
    /// carries an intensity sets the value of its `intensity_year` (the undated value
    /// without a year) and keeps the other years'. Lines of suppliers whose profile changed
    /// are recalculated in the same transaction. A supplier whose change would alter a
    /// closed year's lines is refused (nothing of it is written) and the rest kept.
    pub fn upsert_suppliers(
        &mut self,
        cat: &'static Catalog,
        org: &Org,
        suppliers: &[Supplier],
        actor: &Actor,
    ) -> Result<SupplierUpsert> {
        let mut profiles = self.supplier_profiles(org.id)?;
        // New suppliers whose name is close to another's: pairs for a person to review.
        let mut pairs = Vec::new();
        if suppliers
            .iter()
            .any(|s| !profiles.contains_key(&s.supplier_id))
        {
            let mut r = crate::resolve::SupplierResolver::load(&self.conn, org.id)?;
            for s in suppliers
                .iter()
                .filter(|s| !profiles.contains_key(&s.supplier_id))
            {
                let mut line = vcci_core::Line {
                    supplier_id: Some(s.supplier_id.clone()),
                    supplier_name: Some(s.name.clone()),
                    ..vcci_core::Line::default()
                };
                r.resolve(&mut line);
            }
            pairs = r.take_found().1;
        }
        let now = now_rfc3339();
        let tx = self.conn.begin_immediate()?;
        crate::resolve::record(&tx, org.id, &[], &pairs)?;
        let mut changed = Vec::new();
        let mut refused = Vec::new();
        // What was written, as the audit entry records it.
        let mut written = Vec::new();
        {
            for (index, s) in suppliers.iter().enumerate() {
                let old = profiles.get(&s.supplier_id).cloned();
                let (new, value) = merged_profile(old.as_ref(), s, &now);
                let is_change = old.as_ref().is_some_and(|old| *old != new);
                if let (true, Some(old)) = (is_change, old) {
                    // Lines of this supplier only: maps of its profile alone suffice.
                    let id = s.supplier_id.clone();
                    let before = HashMap::from([(id.clone(), old)]);
                    let after = HashMap::from([(id.clone(), new.clone())]);
                    let years = closed_year_changes(
                        &tx,
                        cat,
                        (org, &before),
                        (org, &after),
                        Some(std::slice::from_ref(&id)),
                    )?;
                    if let Some((&year, &lines)) = years.iter().next() {
                        refused.push(RefusedSupplier {
                            index,
                            supplier_id: id,
                            year,
                            lines,
                        });
                        continue;
                    }
                    changed.push(s.supplier_id.clone());
                }
                written.push(put_supplier(&tx, org.id, s, value.as_ref(), &now)?);
                profiles.insert(s.supplier_id.clone(), new);
            }
        }
        changed.sort();
        changed.dedup();
        let r = if changed.is_empty() {
            Recalculated::default()
        } else {
            recalculate_tx(&tx, cat, org, &profiles, Some(&changed), false)?
        };
        let recalculated = r.changed;
        bump_generation(&tx, org.id)?;
        if !written.is_empty() {
            let subject = match &written[..] {
                [one] => one["supplier_id"].as_str().unwrap_or_default().to_owned(),
                _ => String::new(),
            };
            let detail = json!({"suppliers": written, "lines_changed": recalculated});
            let change = Change::new("suppliers.upserted", subject, detail).with_lines(&r.digests);
            audit::append(&tx, org.id, actor, change)?;
        }
        tx.commit()?;
        Ok(SupplierUpsert {
            upserted: suppliers.len() - refused.len(),
            recalculated,
            refused,
        })
    }

    /// Removes the value of `year` (the undated value for `None`) from a supplier's
    /// intensity history and recalculates the supplier's lines. `None` if the supplier has
    /// no such value; else the lines recalculated. Refused (`PeriodClosed`) if it would
    /// change a closed year's lines.
    pub fn remove_supplier_intensity(
        &mut self,
        cat: &'static Catalog,
        org: &Org,
        supplier_id: &str,
        year: Option<u16>,
        actor: &Actor,
    ) -> Result<Option<u64>> {
        let mut profiles = self.supplier_profiles(org.id)?;
        let tx = self.conn.begin_immediate()?;
        let n = tx.execute(
            "DELETE FROM supplier_intensities WHERE org_id = ?1 AND supplier_id = ?2 AND year = ?3",
            args![org.id.0, supplier_id, year_key(year)],
        )?;
        if n == 0 {
            return Ok(None);
        }
        if let Some(p) = profiles.get_mut(supplier_id) {
            let before = HashMap::from([(supplier_id.to_owned(), p.clone())]);
            p.intensities.retain(|i| i.year != year);
            let after = HashMap::from([(supplier_id.to_owned(), p.clone())]);
            let ids = [supplier_id.to_owned()];
            let years = closed_year_changes(&tx, cat, (org, &before), (org, &after), Some(&ids))?;
            if let Some((&y, &lines)) = years.iter().next() {
                return Err(crate::StoreError::PeriodClosed {
                    year: y,
                    message: format!(
                        "{} ({lines} of its lines there would change)",
                        crate::error::period_closed_message(y)
                    ),
                });
            }
        }
        let ids = [supplier_id.to_owned()];
        let r = recalculate_tx(&tx, cat, org, &profiles, Some(&ids), false)?;
        bump_generation(&tx, org.id)?;
        let detail = json!({"year": year, "lines_changed": r.changed});
        let change =
            Change::new("supplier.intensity_removed", supplier_id, detail).with_lines(&r.digests);
        audit::append(&tx, org.id, actor, change)?;
        tx.commit()?;
        let recalculated = r.changed;
        Ok(Some(recalculated))
    }
}

/// A supplier's profile after `s` is written over `old` (its name, country and NAICS code,
/// and its intensity history with the value `s` sets, if any), and that value.
pub(crate) fn merged_profile(
    old: Option<&SupplierProfile>,
    s: &Supplier,
    now: &str,
) -> (SupplierProfile, Option<IntensityValue>) {
    let mut new = s.profile();
    new.intensities = old.map(|p| p.intensities.clone()).unwrap_or_default();
    new.pcfs = old.map(|p| p.pcfs.clone()).unwrap_or_default();
    let value = s.new_intensity(now);
    if let Some(v) = &value {
        new.intensities.retain(|i| i.year != v.year);
        new.intensities.push(v.engine());
        new.intensities.sort_by_key(|i| i.year);
    }
    (new, value)
}

/// Writes supplier `s` (and the intensity value it sets) in `tx`; returns it as the audit
/// entry records it.
pub(crate) fn put_supplier(
    tx: &Tx<'_>,
    org: OrgId,
    s: &Supplier,
    value: Option<&IntensityValue>,
    now: &str,
) -> Result<serde_json::Value> {
    tx.execute(
        "INSERT INTO suppliers (org_id, supplier_id, name, country, naics_code, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (org_id, supplier_id) DO UPDATE SET name = excluded.name, country = excluded.country,
           naics_code = excluded.naics_code, updated_at = excluded.updated_at",
        args![
            org.0,
            &s.supplier_id,
            &s.name,
            s.country.as_deref(),
            s.naics_code.as_deref().and_then(|n| n.parse::<u32>().ok()),
            now
        ],
    )?;
    if let Some(v) = value {
        put_intensity(tx, org, &s.supplier_id, v)?;
    }
    Ok(json!({
        "supplier_id": s.supplier_id,
        "name": s.name,
        "country": s.country,
        "naics_code": s.naics_code,
        "intensity": value.map(|v| json!({
            "year": v.year,
            "kg_per_usd": v.kg_per_usd,
            "boundary": v.boundary.as_str(),
            "boundary_stated": v.boundary_stated,
            "verified": v.verified,
            "source": v.source,
        })),
    }))
}

/// Sets one value of a supplier's intensity history.
fn put_intensity(tx: &Tx<'_>, org: OrgId, supplier_id: &str, v: &IntensityValue) -> Result<()> {
    tx.execute(
        "INSERT INTO supplier_intensities (org_id, supplier_id, year, kg_per_usd, boundary,
           boundary_stated, verified, source, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (org_id, supplier_id, year) DO UPDATE SET kg_per_usd = excluded.kg_per_usd,
           boundary = excluded.boundary, boundary_stated = excluded.boundary_stated,
           verified = excluded.verified, source = excluded.source, updated_at = excluded.updated_at",
        args![
            org.0,
            supplier_id,
            year_key(v.year),
            v.kg_per_usd,
            v.boundary.as_str(),
            i64::from(v.boundary_stated),
            i64::from(v.verified),
            v.source.as_deref(),
            v.updated_at.as_str()
        ],
    )?;
    Ok(())
}
