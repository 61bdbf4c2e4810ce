//! Supplier rows written with lines: the suppliers a batch refers to that do not exist
//! yet, and supplier upserts, which recalculate the lines of suppliers whose profile
//! changed in the same transaction.

use vcci_core::Catalog;

use super::NewSuppliers;
use super::postgres::ROWS_PER_STATEMENT;
use super::recalc::recalculate_tx;
use crate::conn::{Arg, Db, Tx, args};
use crate::model::orgs::{Org, OrgId, bump_generation};
use crate::model::suppliers::Supplier;
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

impl Db {
    /// Upserts suppliers by supplier_id; lines of suppliers whose NAICS or intensity changed
    /// are recalculated in the same transaction. Returns (upserted, lines recalculated).
    pub fn upsert_suppliers(
        &mut self,
        cat: &'static Catalog,
        org: &Org,
        suppliers: &[Supplier],
    ) -> Result<(usize, u64)> {
        let mut profiles = self.supplier_profiles(org.id)?;
        let now = now_rfc3339();
        let tx = self.conn.begin()?;
        let mut changed = Vec::new();
        {
            let sql =
                "INSERT INTO suppliers (org_id, supplier_id, name, country, naics_code, intensity_kg_per_usd,
                   intensity_year, intensity_source, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (org_id, supplier_id) DO UPDATE SET name = excluded.name, country = excluded.country,
                   naics_code = excluded.naics_code, intensity_kg_per_usd = excluded.intensity_kg_per_usd,
                   intensity_year = excluded.intensity_year, intensity_source = excluded.intensity_source,
                   updated_at = excluded.updated_at";
            for s in suppliers {
                tx.execute(
                    sql,
                    args![
                        org.id.0,
                        &s.supplier_id,
                        &s.name,
                        s.country.as_deref(),
                        s.naics_code.as_deref().and_then(|n| n.parse::<u32>().ok()),
                        s.intensity_kg_per_usd,
                        s.intensity_year,
                        s.intensity_source.as_deref(),
                        &now
                    ],
                )?;
                let new = s.profile();
                if profiles
                    .insert(s.supplier_id.clone(), new.clone())
                    .is_some_and(|old| old != new)
                {
                    changed.push(s.supplier_id.clone());
                }
            }
        }
        changed.sort();
        changed.dedup();
        let recalculated = if changed.is_empty() {
            0
        } else {
            recalculate_tx(&tx, cat, org, &profiles, Some(&changed))?.0
        };
        bump_generation(&tx, org.id)?;
        tx.commit()?;
        Ok((suppliers.len(), recalculated))
    }
}
