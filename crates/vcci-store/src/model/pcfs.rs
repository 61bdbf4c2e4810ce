//! Product carbon footprints (PACT Tech Specs v3) received from suppliers: stored as
//! received, immutable but for their status, with their lineage (`precedingPfIds`), and
//! calculated with through the supplier's profile (vcci-core `calc`, method order first).
//! Here: what receipts report, the reads, and the footprints of the profiles. Receiving is
//! `write::pcfs`.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;
use vcci_core::SupplierProfile;
use vcci_core::calc::Footprints;
use vcci_core::pact::{self, PactError, ProductPcf, Status};

use crate::conn::{Arg, Conn, Db, args};
use crate::model::orgs::OrgId;
use crate::{Result, StoreError};

/// At most this many footprints per receipt (a PACT page is far smaller).
pub const MAX_PER_RECEIPT: usize = 1000;

/// Refuses a batch of more than [`MAX_PER_RECEIPT`] footprints.
pub(crate) fn check_batch(docs: &[Value]) -> Result<()> {
    if docs.len() > MAX_PER_RECEIPT {
        return Err(StoreError::invalid(
            "footprints",
            format!(
                "{} footprints; at most {MAX_PER_RECEIPT} at once",
                docs.len()
            ),
        ));
    }
    Ok(())
}

/// A footprint refused, with its position, its id if readable, and every reason.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RejectedFootprint {
    pub index: usize,
    pub id: Option<String>,
    pub errors: Vec<PactError>,
}

/// What receiving footprints did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Receipt {
    /// Footprints new to the organization.
    pub received: Vec<String>,
    /// Footprints received before with the same content.
    pub unchanged: usize,
    /// Footprints received before as Active, now Deprecated.
    pub deprecated: Vec<String>,
    /// Footprints a received one supersedes (lists in `precedingPfIds`).
    pub superseded: Vec<String>,
    pub rejected: Vec<RejectedFootprint>,
    /// Lines recalculated.
    pub lines_changed: u64,
}

/// A stored footprint as lists show it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredFootprint {
    pub id: String,
    pub supplier_id: String,
    pub status: String,
    /// The footprint that lists this one in its `precedingPfIds`, if one was received.
    pub superseded_by: Option<String>,
    /// Whether calculations use it: Active and not superseded.
    pub in_use: bool,
    pub created: String,
    pub company_name: String,
    pub product_ids: Vec<String>,
    pub preceding_pf_ids: Vec<String>,
    pub source: String,
    pub received_at: String,
    pub updated_at: String,
}

/// One footprint with the document as received.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FootprintDetail {
    #[serde(flatten)]
    pub footprint: StoredFootprint,
    pub document: Value,
    /// Lines calculated with it.
    pub lines: u64,
}

/// Filters of a footprint list.
#[derive(Clone, Debug, Default)]
pub struct FootprintFilter {
    pub supplier_id: Option<String>,
    pub product_id: Option<String>,
    pub status: Option<Status>,
}

pub(crate) const COLS: &str = "id, supplier_id, status, superseded_by, created, company_name, product_ids, \
                    preceding, source, received_at, updated_at";

fn stored(r: &crate::conn::Row<'_>) -> Result<StoredFootprint> {
    let list = |s: &str| -> Vec<String> { serde_json::from_str(s).unwrap_or_default() };
    let status = r.string(2)?;
    let superseded_by = r.opt_string(3)?;
    Ok(StoredFootprint {
        id: r.string(0)?,
        supplier_id: r.string(1)?,
        in_use: status == "Active" && superseded_by.is_none(),
        status,
        superseded_by,
        created: r.string(4)?,
        company_name: r.string(5)?,
        product_ids: list(r.str(6)?),
        preceding_pf_ids: list(r.str(7)?),
        source: r.string(8)?,
        received_at: r.string(9)?,
        updated_at: r.string(10)?,
    })
}

/// The footprints of `org`'s suppliers (of those in `suppliers`, if given) as the engine
/// uses them: a superseded footprint counts as Deprecated.
pub(crate) fn pcfs_by_supplier(
    conn: &Conn,
    org: OrgId,
    suppliers: Option<&[&str]>,
) -> Result<HashMap<String, Vec<ProductPcf>>> {
    let mut sql = "SELECT supplier_id, status, superseded_by, document FROM pcfs WHERE org_id = ?1"
        .to_owned();
    let mut a: Vec<Arg<'_>> = vec![Arg::Int(org.0)];
    if let Some(ids) = suppliers {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let marks: Vec<String> = (0..ids.len()).map(|i| format!("?{}", i + 2)).collect();
        sql += &format!(" AND supplier_id IN ({})", marks.join(", "));
        a.extend(ids.iter().map(|id| Arg::Text(id)));
    }
    // Id order, so that a profile's footprints (and the slots results name) are stable.
    sql += " ORDER BY supplier_id, id";
    let rows = conn.query(&sql, &a, |r| {
        Ok((
            r.string(0)?,
            r.string(1)?,
            r.opt_string(2)?.is_some(),
            r.string(3)?,
        ))
    })?;
    let mut out: HashMap<String, Vec<ProductPcf>> = HashMap::new();
    for (supplier, status, superseded, doc) in rows {
        let v: Value = serde_json::from_str(&doc)
            .map_err(|e| StoreError::corrupt(format!("a stored footprint: {e}")))?;
        let mut p = pact::parse(&v)
            .map_err(|e| StoreError::corrupt(format!("a stored footprint: {}", e[0])))?
            .pcf;
        if status != "Active" || superseded {
            p.status = Status::Deprecated;
        }
        out.entry(supplier).or_default().push(p);
    }
    Ok(out)
}

/// Adds the footprints to the profiles, and a profile for every supplier with footprints
/// but no supplier row.
pub(crate) fn attach(
    profiles: &mut HashMap<String, SupplierProfile>,
    pcfs: HashMap<String, Vec<ProductPcf>>,
) {
    for (supplier, list) in pcfs {
        profiles.entry(supplier).or_default().pcfs = Footprints::new(list);
    }
}

impl Db {
    /// Footprints of `org`, by id, after `after`, at most `limit`.
    pub fn footprints(
        &self,
        org: OrgId,
        filter: &FootprintFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredFootprint>> {
        let mut sql = format!("SELECT {COLS} FROM pcfs p WHERE org_id = ?1");
        let mut a: Vec<Arg<'_>> = vec![Arg::Int(org.0)];
        if let Some(s) = &filter.supplier_id {
            a.push(Arg::Text(s));
            sql += &format!(" AND supplier_id = ?{}", a.len());
        }
        if let Some(p) = &filter.product_id {
            a.push(Arg::Text(p));
            sql += &format!(
                " AND EXISTS (SELECT 1 FROM pcf_products x WHERE x.org_id = p.org_id
                   AND x.product_id = ?{} AND x.pcf_id = p.id)",
                a.len()
            );
        }
        if let Some(s) = filter.status {
            a.push(Arg::Text(s.as_str()));
            sql += &format!(" AND status = ?{}", a.len());
        }
        if let Some(after) = after {
            a.push(Arg::Text(after));
            sql += &format!(" AND id > ?{}", a.len());
        }
        sql += &format!(" ORDER BY id LIMIT {}", limit.min(10_000));
        self.conn.query(&sql, &a, stored)
    }

    /// One footprint with its document and the number of lines calculated with it.
    pub fn footprint(&self, org: OrgId, id: &str) -> Result<Option<FootprintDetail>> {
        let id = id.to_ascii_lowercase();
        let row = self.conn.query_opt(
            &format!("SELECT {COLS}, document FROM pcfs WHERE org_id = ?1 AND id = ?2"),
            args![org.0, &id],
            |r| Ok((stored(r)?, r.string(11)?)),
        )?;
        let Some((footprint, doc)) = row else {
            return Ok(None);
        };
        let document = serde_json::from_str(&doc)
            .map_err(|e| StoreError::corrupt(format!("a stored footprint: {e}")))?;
        let lines = self.lines_with_footprint(org, &footprint.supplier_id, &id)?;
        Ok(Some(FootprintDetail {
            footprint,
            document,
            lines,
        }))
    }

    /// Lines of `supplier_id` calculated with footprint `id` (factor source 5, key `id`).
    fn lines_with_footprint(&self, org: OrgId, supplier_id: &str, id: &str) -> Result<u64> {
        let mut n = 0u64;
        self.conn.for_each(
            "SELECT body FROM transactions WHERE org_id = ?1 AND supplier_id = ?2",
            args![org.0, supplier_id],
            |r| {
                let b = crate::codec::Body::decode(r.blob(0)?)?;
                if b.factor_source == 5 && b.factor_key == id {
                    n += 1;
                }
                Ok(())
            },
        )?;
        Ok(n)
    }
}

/// How much of the organization's data product footprints cover.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Coverage {
    pub lines: u64,
    /// Lines naming a product (`product_id`).
    pub lines_naming_product: u64,
    /// Lines calculated from a supplier's footprint.
    pub lines_from_footprints: u64,
    pub spend_usd: f64,
    pub spend_usd_from_footprints: f64,
    pub co2e_kg: f64,
    pub co2e_kg_from_footprints: f64,
    /// Of the lines naming a product, the share calculated from a footprint (0–1; none: no
    /// such lines).
    pub share_of_product_lines: Option<f64>,
    /// The share of spend (USD) calculated from footprints (none: no spend).
    pub share_of_spend: Option<f64>,
    /// By supplier, for suppliers with lines naming a product.
    pub suppliers: Vec<SupplierCoverage>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SupplierCoverage {
    pub supplier_id: String,
    pub lines_naming_product: u64,
    pub lines_from_footprints: u64,
    pub co2e_kg_from_footprints: f64,
}

impl Db {
    /// The coverage of the organization's lines by product footprints. One pass over the
    /// lines; only bodies written with product fields (format version 2) are decoded.
    pub fn footprint_coverage(&self, org: OrgId) -> Result<Coverage> {
        let mut c = Coverage::default();
        let mut by: std::collections::BTreeMap<String, SupplierCoverage> = Default::default();
        self.conn.for_each(
            "SELECT supplier_id, co2e_kg, spend_usd, body FROM transactions WHERE org_id = ?1",
            args![org.0],
            |r| {
                let (co2e, spend) = (r.f64(1)?, r.opt_f64(2)?.unwrap_or(0.0));
                c.lines += 1;
                c.co2e_kg += co2e;
                c.spend_usd += spend;
                let body = r.blob(3)?;
                if body.first() != Some(&2) {
                    return Ok(());
                }
                let b = crate::codec::Body::decode(body)?;
                if b.product_id.is_none() {
                    return Ok(());
                }
                let from = b.factor_source == 5;
                c.lines_naming_product += 1;
                let s = by.entry(r.opt_string(0)?.unwrap_or_default()).or_default();
                s.lines_naming_product += 1;
                if from {
                    c.lines_from_footprints += 1;
                    c.co2e_kg_from_footprints += co2e;
                    c.spend_usd_from_footprints += spend;
                    s.lines_from_footprints += 1;
                    s.co2e_kg_from_footprints += co2e;
                }
                Ok(())
            },
        )?;
        c.share_of_product_lines = (c.lines_naming_product > 0)
            .then(|| c.lines_from_footprints as f64 / c.lines_naming_product as f64);
        c.share_of_spend = (c.spend_usd != 0.0).then(|| c.spend_usd_from_footprints / c.spend_usd);
        c.suppliers = by
            .into_iter()
            .map(|(id, mut s)| {
                s.supplier_id = id;
                s
            })
            .collect();
        Ok(c)
    }
}
