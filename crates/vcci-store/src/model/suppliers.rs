//! Suppliers, with their own emission intensities: a history of one value per year, each
//! with its boundary, verification and source (`supplier_intensities`). Upserting a
//! supplier whose profile (NAICS, country or intensities) changed recalculates its lines in
//! the same transaction.

use std::collections::HashMap;

use serde::Serialize;
use vcci_core::calc::{Boundary, SupplierData, SupplierIntensity};
use vcci_core::line::{LineError, MAX_ID, MAX_NAME, parse_number};
use vcci_core::{Naics, SupplierProfile};

use crate::conn::{Arg, Conn, Db, Dialect, Row, args};
use crate::model::orgs::OrgId;
use crate::{Result, StoreError};

/// Supplier fields, as in the API and the supplier CSV.
///
/// In a write, `intensity_*` set one value of the history: the value of `intensity_year`
/// (or the undated value without a year); the other years' values are kept. In a read they
/// show the latest value (the most recent year's, else the undated one), and
/// `intensities` the whole history.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Supplier {
    pub supplier_id: String,
    pub name: String,
    pub country: Option<String>,
    pub naics_code: Option<String>,
    pub intensity_kg_per_usd: Option<f64>,
    pub intensity_year: Option<u16>,
    pub intensity_source: Option<String>,
    /// Absent in a write: `cradle_to_gate`, recorded as not stated.
    pub intensity_boundary: Option<Boundary>,
    /// Absent in a write: not verified.
    pub intensity_verified: Option<bool>,
    /// Read only: every value, by year (the undated one first).
    pub intensities: Vec<IntensityValue>,
}

/// One stored value of a supplier's intensity history.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IntensityValue {
    /// `None`: the undated value (per USD of each line's own year).
    pub year: Option<u16>,
    pub kg_per_usd: f64,
    pub boundary: Boundary,
    pub boundary_stated: bool,
    pub verified: bool,
    pub source: Option<String>,
    pub updated_at: String,
}

impl IntensityValue {
    /// The value as the engine uses it.
    pub(crate) fn engine(&self) -> SupplierIntensity {
        SupplierIntensity {
            year: self.year,
            kg_per_usd: self.kg_per_usd,
            data: SupplierData {
                boundary: self.boundary,
                verified: self.verified,
                boundary_stated: self.boundary_stated,
            },
        }
    }
}

/// The supplier columns, in the order `Supplier::parse` expects values.
pub const SUPPLIER_FIELDS: [&str; 9] = [
    "supplier_id",
    "name",
    "country",
    "naics_code",
    "intensity_kg_per_usd",
    "intensity_year",
    "intensity_source",
    "intensity_boundary",
    "intensity_verified",
];

fn err(field: &'static str, code: &'static str, message: impl Into<String>) -> LineError {
    LineError {
        field,
        code,
        message: message.into(),
    }
}

/// `true`/`false` (also `1`/`0`, `yes`/`no`, any case).
fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

impl Supplier {
    /// Parses text values indexed like `SUPPLIER_FIELDS` (empty = absent), collecting errors.
    pub fn parse(v: &[Option<&str>; 9]) -> Result<Supplier, Vec<LineError>> {
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
        let intensity_boundary = get(7).and_then(|s| match Boundary::parse(s) {
            Some(b) => Some(b),
            None => {
                errs.push(err(
                    "intensity_boundary",
                    "invalid_boundary",
                    format!("'{s}' is not one of scope_1_2, scope_1_2_3_upstream, cradle_to_gate"),
                ));
                None
            }
        });
        let intensity_verified = get(8).and_then(|s| match parse_bool(s) {
            Some(b) => Some(b),
            None => {
                errs.push(err(
                    "intensity_verified",
                    "invalid_bool",
                    format!("'{s}' is not true or false"),
                ));
                None
            }
        });
        if get(4).is_none() {
            // What describes an intensity needs the intensity.
            for i in [5, 6, 7, 8] {
                if get(i).is_some() {
                    errs.push(err(
                        SUPPLIER_FIELDS[i],
                        "intensity_required",
                        "describes an intensity, and intensity_kg_per_usd is missing",
                    ));
                }
            }
        }
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
            intensity_boundary,
            intensity_verified,
            intensities: Vec::new(),
        })
    }

    /// The value this write sets, if any.
    pub(crate) fn new_intensity(&self, now: &str) -> Option<IntensityValue> {
        Some(IntensityValue {
            year: self.intensity_year,
            kg_per_usd: self.intensity_kg_per_usd?,
            boundary: self.intensity_boundary.unwrap_or(Boundary::CradleToGate),
            boundary_stated: self.intensity_boundary.is_some(),
            verified: self.intensity_verified.unwrap_or(false),
            source: self.intensity_source.clone(),
            updated_at: now.to_owned(),
        })
    }

    pub fn profile(&self) -> SupplierProfile {
        SupplierProfile {
            naics: self
                .naics_code
                .as_deref()
                .and_then(|n| Naics::parse(n).ok()),
            country: self.country.clone(),
            intensities: self
                .intensities
                .iter()
                .map(IntensityValue::engine)
                .collect(),
            // Footprints are attached by the profile loaders (model/pcfs.rs).
            pcfs: Default::default(),
        }
    }

    /// Fills `intensities` and the latest value's summary fields.
    fn with_history(mut self, mut history: Vec<IntensityValue>) -> Supplier {
        history.sort_by_key(|v| v.year);
        if let Some(latest) = history.last() {
            self.intensity_kg_per_usd = Some(latest.kg_per_usd);
            self.intensity_year = latest.year;
            self.intensity_source = latest.source.clone();
            self.intensity_boundary = Some(latest.boundary);
            self.intensity_verified = Some(latest.verified);
        }
        self.intensities = history;
        self
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

const SELECT: &str = "SELECT supplier_id, name, country, naics_code FROM suppliers";
const SELECT_INTENSITIES: &str = "SELECT supplier_id, year, kg_per_usd, boundary, boundary_stated, verified, source, updated_at FROM supplier_intensities";

fn row(r: &Row<'_>) -> Result<Supplier> {
    Ok(Supplier {
        supplier_id: r.string(0)?,
        name: r.string(1)?,
        country: r.opt_string(2)?,
        naics_code: r.opt_i64(3)?.map(|n| n.to_string()),
        intensity_kg_per_usd: None,
        intensity_year: None,
        intensity_source: None,
        intensity_boundary: None,
        intensity_verified: None,
        intensities: Vec::new(),
    })
}

fn intensity_row(r: &Row<'_>) -> Result<(String, IntensityValue)> {
    let year = match r.i64(1)? {
        0 => None,
        y => Some(
            u16::try_from(y)
                .map_err(|_| StoreError::corrupt("a supplier intensity's year is out of range"))?,
        ),
    };
    let boundary = Boundary::parse(r.str(3)?)
        .ok_or_else(|| StoreError::corrupt("a supplier intensity's boundary is unknown"))?;
    Ok((
        r.string(0)?,
        IntensityValue {
            year,
            kg_per_usd: r.f64(2)?,
            boundary,
            boundary_stated: r.i64(4)? != 0,
            verified: r.i64(5)? != 0,
            source: r.opt_string(6)?,
            updated_at: r.string(7)?,
        },
    ))
}

/// A year of an intensity value as given in a path or an argument: 1990–2100, or
/// `undated` (`None`); the message names what is wrong.
pub fn parse_intensity_year(s: &str) -> std::result::Result<Option<u16>, String> {
    if s == "undated" {
        return Ok(None);
    }
    match s.parse::<u16>() {
        Ok(y) if (1990..=2100).contains(&y) => Ok(Some(y)),
        _ => Err(format!("'{s}' is not a year (1990–2100) or 'undated'")),
    }
}

/// The stored year of a value (0 for the undated one).
pub(crate) fn year_key(year: Option<u16>) -> i64 {
    year.map_or(0, i64::from)
}

/// The intensity histories of `org`'s suppliers (of `suppliers` only, if given), by supplier.
fn histories(
    conn: &Conn,
    org: OrgId,
    suppliers: Option<&[&str]>,
) -> Result<HashMap<String, Vec<IntensityValue>>> {
    let mut sql = format!("{SELECT_INTENSITIES} WHERE org_id = ?1");
    let mut a: Vec<Arg<'_>> = vec![Arg::Int(org.0)];
    if let Some(ids) = suppliers {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let marks: Vec<String> = (0..ids.len()).map(|i| format!("?{}", i + 2)).collect();
        sql += &format!(" AND supplier_id IN ({})", marks.join(", "));
        a.extend(ids.iter().map(|id| Arg::Text(id)));
    }
    let rows = conn.query(&sql, &a, intensity_row)?;
    let mut out: HashMap<String, Vec<IntensityValue>> = HashMap::new();
    for (id, v) in rows {
        out.entry(id).or_default().push(v);
    }
    Ok(out)
}

/// The calculation profile of every supplier of `org`, read with `conn` (a transaction's, to
/// see its own changes).
pub(crate) fn profiles_in(conn: &Conn, org: OrgId) -> Result<HashMap<String, SupplierProfile>> {
    let rows = conn.query(&format!("{SELECT} WHERE org_id = ?1"), args![org.0], row)?;
    let mut histories = histories(conn, org, None)?;
    let mut out = profiles_of(rows, &mut histories);
    super::pcfs::attach(&mut out, super::pcfs::pcfs_by_supplier(conn, org, None)?);
    Ok(out)
}

/// A LIKE pattern (with `ESCAPE '\\'`) matching text that contains `q` as typed.
pub(crate) fn contains_pattern(q: &str) -> String {
    let escaped = q
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// The LIKE that ignores ASCII case: SQLite's LIKE does; PostgreSQL's needs ILIKE.
pub(crate) fn like_ignoring_case(d: Dialect) -> &'static str {
    match d {
        Dialect::Sqlite => "LIKE",
        Dialect::Postgres => "ILIKE",
    }
}

/// Suppliers' rows with their intensity histories, as calculation profiles by id.
fn profiles_of(
    rows: Vec<Supplier>,
    histories: &mut HashMap<String, Vec<IntensityValue>>,
) -> HashMap<String, SupplierProfile> {
    rows.into_iter()
        .map(|s| {
            let h = histories.remove(&s.supplier_id).unwrap_or_default();
            let s = s.with_history(h);
            (s.supplier_id.clone(), s.profile())
        })
        .collect()
}

impl Db {
    /// The intensity histories of `org`'s suppliers, by supplier.
    fn histories(
        &self,
        org: OrgId,
        suppliers: Option<&[&str]>,
    ) -> Result<HashMap<String, Vec<IntensityValue>>> {
        histories(&self.conn, org, suppliers)
    }

    /// One supplier's intensity history, by year (the undated value first); `None` if the
    /// supplier does not exist.
    pub fn supplier_intensities(
        &self,
        org: OrgId,
        supplier_id: &str,
    ) -> Result<Option<Vec<IntensityValue>>> {
        Ok(self.supplier(org, supplier_id)?.map(|s| s.intensities))
    }

    /// One supplier with its history.
    fn supplier(&self, org: OrgId, supplier_id: &str) -> Result<Option<Supplier>> {
        let s = self.conn.query_opt(
            &format!("{SELECT} WHERE org_id = ?1 AND supplier_id = ?2"),
            args![org.0, supplier_id],
            row,
        )?;
        let Some(s) = s else { return Ok(None) };
        let mut h = self.histories(org, Some(&[supplier_id]))?;
        Ok(Some(
            s.with_history(h.remove(supplier_id).unwrap_or_default()),
        ))
    }

    /// The calculation profile of every supplier of `org`.
    pub fn supplier_profiles(&self, org: OrgId) -> Result<HashMap<String, SupplierProfile>> {
        profiles_in(&self.conn, org)
    }

    /// The calculation profiles of the suppliers among `keys` that exist (at most the API's
    /// batch limit of keys: one parameter each).
    pub fn supplier_profiles_for(
        &self,
        org: OrgId,
        keys: &[String],
    ) -> Result<HashMap<String, SupplierProfile>> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        // Two queries whatever the number of keys: the rows, then their histories.
        let marks: Vec<String> = (0..keys.len()).map(|i| format!("?{}", i + 2)).collect();
        let mut a: Vec<Arg<'_>> = vec![Arg::Int(org.0)];
        a.extend(keys.iter().map(|k| Arg::Text(k)));
        let rows = self.conn.query(
            &format!(
                "{SELECT} WHERE org_id = ?1 AND supplier_id IN ({})",
                marks.join(", ")
            ),
            &a,
            row,
        )?;
        let ids: Vec<&str> = rows.iter().map(|s| s.supplier_id.as_str()).collect();
        let mut histories = self.histories(org, Some(&ids))?;
        let mut out = profiles_of(rows, &mut histories);
        // Footprints of every key: a supplier may have footprints and no supplier row.
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        super::pcfs::attach(
            &mut out,
            super::pcfs::pcfs_by_supplier(&self.conn, org, Some(&keys))?,
        );
        Ok(out)
    }

    pub fn get_supplier(&self, org: OrgId, supplier_id: &str) -> Result<Option<SupplierDetail>> {
        let Some(supplier) = self.supplier(org, supplier_id)? else {
            return Ok(None);
        };
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
        let pattern = q.map(contains_pattern);
        let mut args: Vec<Arg<'_>> = vec![Arg::Int(org.0), Arg::Text(after.unwrap_or(""))];
        if let Some(c) = country {
            args.push(Arg::Text(c));
            sql += &format!(" AND country = ?{}", args.len());
        }
        if let Some(p) = &pattern {
            args.push(Arg::Text(p));
            let like = like_ignoring_case(self.conn.dialect());
            sql += &format!(
                " AND (supplier_id {like} ?{n} ESCAPE '\\' OR name {like} ?{n} ESCAPE '\\')",
                n = args.len()
            );
        }
        args.push(Arg::Int(limit as i64));
        sql += &format!(" ORDER BY supplier_id LIMIT ?{}", args.len());
        let page = self.conn.query(&sql, &args, row)?;
        if page.is_empty() {
            return Ok(page);
        }
        // The page's histories, in one query.
        let ids: Vec<&str> = page.iter().map(|s| s.supplier_id.as_str()).collect();
        let mut histories = self.histories(org, Some(&ids))?;
        Ok(page
            .into_iter()
            .map(|s| {
                let h = histories.remove(&s.supplier_id).unwrap_or_default();
                s.with_history(h)
            })
            .collect())
    }
}
