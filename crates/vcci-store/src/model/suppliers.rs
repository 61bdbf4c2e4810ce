//! Suppliers, with their optional own emission intensity. Upserting a supplier whose
//! profile (NAICS or intensity) changed recalculates its lines in the same transaction.

use std::collections::HashMap;

use serde::Serialize;
use vcci_core::line::{LineError, MAX_ID, MAX_NAME, parse_number};
use vcci_core::{Naics, SupplierProfile};

use crate::conn::{Arg, Db, Dialect, Row, args};
use crate::model::orgs::OrgId;
use crate::{Result, StoreError};

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
            country: self.country.clone(),
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

fn row(r: &Row<'_>) -> Result<Supplier> {
    Ok(Supplier {
        supplier_id: r.string(0)?,
        name: r.string(1)?,
        country: r.opt_string(2)?,
        naics_code: r.opt_i64(3)?.map(|n| n.to_string()),
        intensity_kg_per_usd: r.opt_f64(4)?,
        intensity_year: r
            .opt_i64(5)?
            .map(|y| {
                u16::try_from(y)
                    .map_err(|_| StoreError::corrupt("a supplier's intensity_year is out of range"))
            })
            .transpose()?,
        intensity_source: r.opt_string(6)?,
    })
}

impl Db {
    /// The calculation profile of every supplier of `org`.
    pub fn supplier_profiles(&self, org: OrgId) -> Result<HashMap<String, SupplierProfile>> {
        let rows = self
            .conn
            .query(&format!("{SELECT} WHERE org_id = ?1"), args![org.0], row)?;
        Ok(rows
            .into_iter()
            .map(|s| (s.supplier_id.clone(), s.profile()))
            .collect())
    }

    /// The calculation profiles of the suppliers among `keys` that exist.
    pub fn supplier_profiles_for(
        &self,
        org: OrgId,
        keys: &[String],
    ) -> Result<HashMap<String, SupplierProfile>> {
        let sql = format!("{SELECT} WHERE org_id = ?1 AND supplier_id = ?2");
        let mut out = HashMap::with_capacity(keys.len());
        for k in keys {
            if let Some(s) = self.conn.query_opt(&sql, args![org.0, k], row)? {
                out.insert(s.supplier_id.clone(), s.profile());
            }
        }
        Ok(out)
    }

    pub fn get_supplier(&self, org: OrgId, supplier_id: &str) -> Result<Option<SupplierDetail>> {
        let s = self.conn.query_opt(
            &format!("{SELECT} WHERE org_id = ?1 AND supplier_id = ?2"),
            args![org.0, supplier_id],
            row,
        )?;
        let Some(supplier) = s else { return Ok(None) };
        let (mg, musd, n): (i64, i64, i64) = self.conn.query_one(
            "SELECT CAST(COALESCE(SUM(co2e_mg), 0) AS BIGINT), CAST(COALESCE(SUM(spend_musd), 0) AS BIGINT),
               CAST(COALESCE(SUM(line_count), 0) AS BIGINT)
             FROM summary_supplier_month WHERE org_id = ?1 AND supplier_id = ?2",
            args![org.0, supplier_id],
            |r| Ok((r.i64(0)?, r.i64(1)?, r.i64(2)?)),
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
        let pattern = q.map(|q| {
            let escaped = q
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("%{escaped}%")
        });
        let mut args: Vec<Arg<'_>> = vec![Arg::Int(org.0), Arg::Text(after.unwrap_or(""))];
        if let Some(c) = country {
            args.push(Arg::Text(c));
            sql += &format!(" AND country = ?{}", args.len());
        }
        if let Some(p) = &pattern {
            args.push(Arg::Text(p));
            // SQLite's LIKE ignores ASCII case; PostgreSQL's needs ILIKE for the same.
            let like = match self.conn.dialect() {
                Dialect::Sqlite => "LIKE",
                Dialect::Postgres => "ILIKE",
            };
            sql += &format!(
                " AND (supplier_id {like} ?{n} ESCAPE '\\' OR name {like} ?{n} ESCAPE '\\')",
                n = args.len()
            );
        }
        args.push(Arg::Int(limit as i64));
        sql += &format!(" ORDER BY supplier_id LIMIT ?{}", args.len());
        self.conn.query(&sql, &args, row)
    }
}
