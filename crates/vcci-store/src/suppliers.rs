//! Suppliers, with their optional own emission intensity. Upserting a supplier whose
//! profile (NAICS or intensity) changed recalculates its lines in the same transaction.

use std::collections::HashMap;

use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use vcci_core::line::{LineError, MAX_ID, MAX_NAME, parse_number};
use vcci_core::{Catalog, Naics, SupplierProfile};

use crate::{Db, Org, OrgId, Result, now_rfc3339};

/// Supplier fields, as in the API and the supplier CSV.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Supplier {
    pub supplier_id: String,
    pub name: String,
    pub country: Option<String>,
    pub naics_code: Option<String>,
    pub intensity_kg_per_usd: Option<f64>,
    pub intensity_year: Option<u16>,
    pub intensity_source: Option<String>,
}

/// The supplier columns, in the order `Supplier::parse` expects values.
pub const SUPPLIER_FIELDS: [&str; 7] = [
    "supplier_id",
    "name",
    "country",
    "naics_code",
    "intensity_kg_per_usd",
    "intensity_year",
    "intensity_source",
];

fn err(field: &'static str, code: &'static str, message: impl Into<String>) -> LineError {
    LineError {
        field,
        code,
        message: message.into(),
    }
}

impl Supplier {
    /// Parses text values indexed like `SUPPLIER_FIELDS` (empty = absent), collecting errors.
    pub fn parse(v: &[Option<&str>; 7]) -> Result<Supplier, Vec<LineError>> {
        let get = |i: usize| v[i].map(str::trim).filter(|s| !s.is_empty());
        let mut errs = Vec::new();
        let text = |i: usize, max: usize, errs: &mut Vec<LineError>| {
            get(i).and_then(|s| {
                if s.len() > max {
                    errs.push(err(
                        SUPPLIER_FIELDS[i],
                        "too_long",
                        format!("is {} bytes; the limit is {max}", s.len()),
                    ));
                    None
                } else {
                    Some(s.to_owned())
                }
            })
        };
        let supplier_id = text(0, MAX_ID, &mut errs);
        let name = text(1, MAX_NAME, &mut errs);
        let country = text(2, 64, &mut errs);
        let intensity_source = text(6, MAX_NAME, &mut errs);
        if supplier_id.is_none() && !errs.iter().any(|e| e.field == "supplier_id") {
            errs.push(err("supplier_id", "required", "is required"));
        }
        let naics_code = get(3).and_then(|s| match Naics::parse(s) {
            Ok(n) => Some(n.to_string()),
            Err(m) => {
                errs.push(err("naics_code", "invalid_naics", m));
                None
            }
        });
        let intensity_kg_per_usd = get(4).and_then(|s| match parse_number(s) {
            Ok(x) if x >= 0.0 => Some(x),
            Ok(_) => {
                errs.push(err(
                    "intensity_kg_per_usd",
                    "invalid_number",
                    format!("'{s}' is negative"),
                ));
                None
            }
            Err(m) => {
                errs.push(err("intensity_kg_per_usd", "invalid_number", m));
                None
            }
        });
        let intensity_year = get(5).and_then(|s| match s.parse::<u16>() {
            Ok(y) if (1990..=2100).contains(&y) => Some(y),
            _ => {
                errs.push(err(
                    "intensity_year",
                    "invalid_year",
                    format!("'{s}' is not a year"),
                ));
                None
            }
        });
        if !errs.is_empty() {
            return Err(errs);
        }
        let supplier_id = supplier_id.unwrap_or_default();
        Ok(Supplier {
            name: name.unwrap_or_else(|| supplier_id.clone()),
            supplier_id,
            country,
            naics_code,
            intensity_kg_per_usd,
            intensity_year,
            intensity_source,
        })
    }

    pub fn profile(&self) -> SupplierProfile {
        SupplierProfile {
            naics: self
                .naics_code
                .as_deref()
                .and_then(|n| Naics::parse(n).ok()),
            intensity_kg_per_usd: self.intensity_kg_per_usd,
            intensity_year: self.intensity_year,
        }
    }
}

/// A supplier with its emissions from the read model.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SupplierDetail {
    #[serde(flatten)]
    pub supplier: Supplier,
    pub emissions: SupplierEmissions,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SupplierEmissions {
    pub co2e_kg: f64,
    pub transaction_count: i64,
    pub spend_usd: f64,
}

const SELECT: &str = "SELECT supplier_id, name, country, naics_code, intensity_kg_per_usd, intensity_year, intensity_source FROM suppliers";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Supplier> {
    Ok(Supplier {
        supplier_id: r.get(0)?,
        name: r.get(1)?,
        country: r.get(2)?,
        naics_code: r.get::<_, Option<u32>>(3)?.map(|n| n.to_string()),
        intensity_kg_per_usd: r.get(4)?,
        intensity_year: r.get(5)?,
        intensity_source: r.get(6)?,
    })
}

impl Db {
    /// The calculation profile of every supplier of `org`.
    pub fn supplier_profiles(&self, org: OrgId) -> Result<HashMap<String, SupplierProfile>> {
        let mut st = self.conn.prepare(&format!("{SELECT} WHERE org_id = ?1"))?;
        let rows = st.query_map([org.0], row)?;
        let mut out = HashMap::new();
        for s in rows {
            let s = s?;
            out.insert(s.supplier_id.clone(), s.profile());
        }
        Ok(out)
    }

    /// The calculation profiles of the suppliers among `keys` that exist.
    pub fn supplier_profiles_for(
        &self,
        org: OrgId,
        keys: &[String],
    ) -> Result<HashMap<String, SupplierProfile>> {
        let mut st = self
            .conn
            .prepare_cached(&format!("{SELECT} WHERE org_id = ?1 AND supplier_id = ?2"))?;
        let mut out = HashMap::with_capacity(keys.len());
        for k in keys {
            if let Some(s) = st.query_row(params![org.0, k], row).optional()? {
                out.insert(s.supplier_id.clone(), s.profile());
            }
        }
        Ok(out)
    }

    pub fn get_supplier(&self, org: OrgId, supplier_id: &str) -> Result<Option<SupplierDetail>> {
        let s = self
            .conn
            .query_row(
                &format!("{SELECT} WHERE org_id = ?1 AND supplier_id = ?2"),
                params![org.0, supplier_id],
                row,
            )
            .optional()?;
        let Some(supplier) = s else { return Ok(None) };
        let (mg, musd, n): (i64, i64, i64) = self.conn.query_row(
            "SELECT COALESCE(SUM(co2e_mg), 0), COALESCE(SUM(spend_musd), 0), COALESCE(SUM(line_count), 0)
             FROM summary_supplier_month WHERE org_id = ?1 AND supplier_id = ?2",
            params![org.0, supplier_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        Ok(Some(SupplierDetail {
            supplier,
            emissions: SupplierEmissions {
                co2e_kg: mg as f64 / 1e6,
                transaction_count: n,
                spend_usd: musd as f64 / 1e3,
            },
        }))
    }

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
        let tx = self.conn.transaction()?;
        let mut changed = Vec::new();
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO suppliers (org_id, supplier_id, name, country, naics_code, intensity_kg_per_usd,
                   intensity_year, intensity_source, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (org_id, supplier_id) DO UPDATE SET name = excluded.name, country = excluded.country,
                   naics_code = excluded.naics_code, intensity_kg_per_usd = excluded.intensity_kg_per_usd,
                   intensity_year = excluded.intensity_year, intensity_source = excluded.intensity_source,
                   updated_at = excluded.updated_at",
            )?;
            for s in suppliers {
                st.execute(params![
                    org.id.0,
                    s.supplier_id,
                    s.name,
                    s.country,
                    s.naics_code.as_deref().and_then(|n| n.parse::<u32>().ok()),
                    s.intensity_kg_per_usd,
                    s.intensity_year,
                    s.intensity_source,
                    now
                ])?;
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
            crate::lines::recalculate_tx(&tx, cat, org, &profiles, Some(&changed))?.0
        };
        crate::orgs::bump_generation(&tx, org.id)?;
        tx.commit()?;
        Ok((suppliers.len(), recalculated))
    }
}

impl Db {
    /// Suppliers ordered by supplier_id after `after`, optionally of one country and/or
    /// whose id or name contains `q` (case-insensitive; `%` and `_` match themselves).
    pub fn list_suppliers(
        &self,
        org: OrgId,
        country: Option<&str>,
        q: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Supplier>> {
        let mut sql = format!("{SELECT} WHERE org_id = ?1 AND supplier_id > ?2");
        let mut args: Vec<rusqlite::types::Value> =
            vec![org.0.into(), after.unwrap_or("").to_owned().into()];
        if let Some(c) = country {
            args.push(c.to_owned().into());
            sql += &format!(" AND country = ?{}", args.len());
        }
        if let Some(q) = q {
            let escaped = q
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            args.push(format!("%{escaped}%").into());
            sql += &format!(
                " AND (supplier_id LIKE ?{n} ESCAPE '\\' OR name LIKE ?{n} ESCAPE '\\')",
                n = args.len()
            );
        }
        args.push((limit as i64).into());
        sql += &format!(" ORDER BY supplier_id LIMIT ?{}", args.len());
        let mut st = self.conn.prepare_cached(&sql)?;
        let rows = st.query_map(rusqlite::params_from_iter(args), row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}
