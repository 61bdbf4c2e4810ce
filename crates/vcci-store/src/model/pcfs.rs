//! Product carbon footprints (PACT Tech Specs v3) received from suppliers: stored as
//! received, immutable but for their status, with their lineage (`precedingPfIds`), and
//! calculated with through the supplier's profile (vcci-core `calc`, method order first).
//!
//! Receiving footprints recalculates the supplier's lines in the same transaction, and the
//! audit log records which footprints came, which were deprecated or superseded, and the
//! lines that changed. A change that would alter a closed year's lines is refused whole.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Value, json};
use vcci_core::pact::{self, PactError, ProductPcf, Status};
use vcci_core::{Catalog, SupplierProfile};

use crate::conn::{Arg, Conn, Db, args};
use crate::model::audit::{self, Actor, Change};
use crate::model::orgs::{Org, OrgId, bump_generation};
use crate::write::recalc::{closed_year_changes, recalculate_tx};
use crate::{Result, StoreError, now_rfc3339};

/// At most this many footprints per receipt (a PACT page is far smaller).
pub const MAX_PER_RECEIPT: usize = 1000;

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

const COLS: &str = "id, supplier_id, status, superseded_by, created, company_name, product_ids, \
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
        profiles.entry(supplier).or_default().pcfs = list;
    }
}

/// The document without its status, to tell a deprecation from a change.
fn without_status(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("status");
    }
    v
}

impl Db {
    /// Receives footprints of `supplier_id`'s products. Each is checked against the PACT v3
    /// data model; one that fails is rejected with its id and every reason, and the rest
    /// are kept. A footprint already received is unchanged, or deprecated (the same document
    /// with status Deprecated); any other change under the same id is rejected (footprints
    /// are immutable). The supplier's lines are recalculated in the same transaction; if
    /// that would change a closed year's lines nothing is stored (`PeriodClosed`).
    pub fn receive_footprints(
        &mut self,
        cat: &'static Catalog,
        org: &Org,
        supplier_id: &str,
        docs: &[Value],
        source: &str,
        actor: &Actor,
    ) -> Result<Receipt> {
        if supplier_id.is_empty() || supplier_id.len() > vcci_core::line::MAX_ID {
            return Err(StoreError::invalid(
                "supplier_id",
                format!("must be 1 to {} bytes", vcci_core::line::MAX_ID),
            ));
        }
        if docs.len() > MAX_PER_RECEIPT {
            return Err(StoreError::invalid(
                "footprints",
                format!(
                    "{} footprints; at most {MAX_PER_RECEIPT} at once",
                    docs.len()
                ),
            ));
        }
        let mut receipt = Receipt::default();
        let mut good: Vec<(usize, pact::Footprint, &Value)> = Vec::new();
        for (index, d) in docs.iter().enumerate() {
            match pact::parse(d) {
                Ok(f) => {
                    if let Some((_, first, doc)) =
                        good.iter().find(|(_, g, _)| g.pcf.id == f.pcf.id)
                        && *doc != d
                    {
                        let id = first.pcf.id.clone();
                        receipt.rejected.push(RejectedFootprint {
                            index,
                            id: Some(id),
                            errors: vec![PactError {
                                path: "/id".into(),
                                message: "appears twice in this batch with different content"
                                    .into(),
                            }],
                        });
                        continue;
                    }
                    good.push((index, f, d));
                }
                Err(errors) => receipt.rejected.push(RejectedFootprint {
                    index,
                    id: pact::id_of(d).map(str::to_owned),
                    errors,
                }),
            }
        }
        let mut profiles = self.supplier_profiles(org.id)?;
        let now = now_rfc3339();
        let tx = self.conn.begin_immediate()?;
        for (index, f, doc) in &good {
            let id = &f.pcf.id;
            let old = tx.query_opt(
                "SELECT supplier_id, status, document FROM pcfs WHERE org_id = ?1 AND id = ?2",
                args![org.id.0, id],
                |r| Ok((r.string(0)?, r.string(1)?, r.string(2)?)),
            )?;
            let reject = |message: String| RejectedFootprint {
                index: *index,
                id: Some(id.clone()),
                errors: vec![PactError {
                    path: "/id".into(),
                    message,
                }],
            };
            match old {
                None => {
                    insert(&tx, org.id, supplier_id, f, doc, source, &now)?;
                    receipt.received.push(id.clone());
                    // A successor received before its predecessor.
                    let pattern = format!("%\"{id}\"%");
                    let successor = tx.query_opt(
                        "SELECT id FROM pcfs WHERE org_id = ?1 AND preceding LIKE ?2 ORDER BY id LIMIT 1",
                        args![org.id.0, &pattern],
                        |r| r.string(0),
                    )?;
                    if let Some(next) = successor {
                        tx.execute(
                            "UPDATE pcfs SET superseded_by = ?3 WHERE org_id = ?1 AND id = ?2",
                            args![org.id.0, id, &next],
                        )?;
                        receipt.superseded.push(id.clone());
                    }
                    for pre in &f.preceding {
                        let n = tx.execute(
                            "UPDATE pcfs SET superseded_by = ?3, updated_at = ?4
                             WHERE org_id = ?1 AND id = ?2 AND superseded_by IS NULL",
                            args![org.id.0, pre, id, &now],
                        )?;
                        if n > 0 {
                            receipt.superseded.push(pre.clone());
                        }
                    }
                }
                Some((other, _, _)) if other != supplier_id => {
                    receipt.rejected.push(reject(format!(
                        "footprint {id} was received from supplier '{other}'"
                    )));
                }
                Some((_, status, stored)) => {
                    let stored: Value = serde_json::from_str(&stored)
                        .map_err(|e| StoreError::corrupt(format!("a stored footprint: {e}")))?;
                    if stored == **doc {
                        receipt.unchanged += 1;
                    } else if without_status(&stored) == without_status(doc)
                        && status == "Active"
                        && f.pcf.status == Status::Deprecated
                    {
                        tx.execute(
                            "UPDATE pcfs SET status = 'Deprecated', document = ?3, updated_at = ?4
                             WHERE org_id = ?1 AND id = ?2",
                            args![
                                org.id.0,
                                id,
                                &serde_json::to_string(doc).unwrap_or_default(),
                                &now
                            ],
                        )?;
                        receipt.deprecated.push(id.clone());
                    } else {
                        receipt.rejected.push(reject(format!(
                            "footprint {id} was received before with other content; PACT \
                             footprints are immutable: a changed footprint has a new id and \
                             lists this one in precedingPfIds"
                        )));
                    }
                }
            }
        }
        let changed = !receipt.received.is_empty() || !receipt.deprecated.is_empty();
        if changed {
            let ids = [supplier_id.to_owned()];
            let before = HashMap::from([(
                supplier_id.to_owned(),
                profiles.get(supplier_id).cloned().unwrap_or_default(),
            )]);
            let mut now_pcfs = pcfs_by_supplier(&tx, org.id, Some(&[supplier_id]))?;
            let profile = profiles.entry(supplier_id.to_owned()).or_default();
            profile.pcfs = now_pcfs.remove(supplier_id).unwrap_or_default();
            let after = HashMap::from([(supplier_id.to_owned(), profile.clone())]);
            let years = closed_year_changes(&tx, cat, (org, &before), (org, &after), Some(&ids))?;
            if let Some((&year, &lines)) = years.iter().next() {
                return Err(StoreError::PeriodClosed {
                    year,
                    message: format!(
                        "{} ({lines} lines of supplier '{supplier_id}' there would change with \
                         these footprints)",
                        crate::error::period_closed_message(year)
                    ),
                });
            }
            let r = recalculate_tx(&tx, cat, org, &profiles, Some(&ids), false)?;
            receipt.lines_changed = r.changed;
            bump_generation(&tx, org.id)?;
            let detail = json!({
                "supplier_id": supplier_id,
                "source": source,
                "received": receipt.received,
                "deprecated": receipt.deprecated,
                "superseded": receipt.superseded,
                "rejected": receipt.rejected.len(),
                "lines_changed": r.changed,
            });
            let change = Change::new("pcfs.received", supplier_id, detail).with_lines(&r.digests);
            audit::append(&tx, org.id, actor, change)?;
        }
        tx.commit()?;
        Ok(receipt)
    }

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

fn insert(
    tx: &Conn,
    org: OrgId,
    supplier_id: &str,
    f: &pact::Footprint,
    doc: &Value,
    source: &str,
    now: &str,
) -> Result<()> {
    let p = &f.pcf;
    tx.execute(
        &format!(
            "INSERT INTO pcfs ({COLS}, document, org_id) VALUES (?1, ?2, ?3, NULL, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?11)"
        ),
        args![
            &p.id,
            supplier_id,
            p.status.as_str(),
            &pact::format_datetime(p.created),
            &p.company_name,
            &serde_json::to_string(&p.product_ids).unwrap_or_default(),
            &serde_json::to_string(&f.preceding).unwrap_or_default(),
            source,
            now,
            &serde_json::to_string(doc).unwrap_or_default(),
            org.0
        ],
    )?;
    for product in &p.product_ids {
        tx.execute(
            "INSERT INTO pcf_products (org_id, product_id, pcf_id) VALUES (?1, ?2, ?3)
             ON CONFLICT DO NOTHING",
            args![org.0, product, &p.id],
        )?;
    }
    Ok(())
}
