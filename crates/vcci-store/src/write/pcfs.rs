//! Receiving product footprints (PACT v3): each checked, stored as received, immutable but
//! for its status, with its lineage; the supplier's lines recalculated in the same
//! transaction, and an audit entry. The reads are `model::pcfs`.

use std::collections::HashMap;

use serde_json::{Value, json};
use vcci_core::Catalog;
use vcci_core::calc::Footprints;
use vcci_core::pact::{self, PactError, Status};

use super::recalc::{closed_year_changes, recalculate_tx};
use crate::conn::{Conn, Db, args};
use crate::model::audit::{self, Actor, Change};
use crate::model::orgs::{Org, OrgId, bump_generation};
use crate::model::pcfs::{COLS, Receipt, RejectedFootprint, pcfs_by_supplier};
use crate::{Result, StoreError, now_rfc3339};

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
        crate::model::pcfs::check_batch(docs)?;
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
        let now = now_rfc3339();
        let tx = self.conn.begin_immediate()?;
        // Only a supplier with lines needs its profile and a recalculation (the read model
        // has a row per supplier and month with lines).
        let has_lines = tx
            .query_opt(
                "SELECT 1 FROM summary_supplier_month WHERE org_id = ?1 AND supplier_id = ?2 LIMIT 1",
                args![org.id.0, supplier_id],
                |r| r.i64(0),
            )?
            .is_some();
        // First what each footprint is (nothing written), so that a page of footprints
        // already stored costs no profile and no recalculation.
        enum Act {
            Insert,
            Deprecate,
        }
        let mut acts: Vec<(Act, usize)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (k, (index, f, doc)) in good.iter().enumerate() {
            let id = &f.pcf.id;
            // The same footprint twice in one batch (identical: a different one was
            // rejected above) is stored once.
            if !seen.insert(id.as_str()) {
                receipt.unchanged += 1;
                continue;
            }
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
                None => acts.push((Act::Insert, k)),
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
                        acts.push((Act::Deprecate, k));
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
        // The profile before the changes, if lines will be recalculated.
        let mut profiles = if has_lines && !acts.is_empty() {
            self.supplier_profiles_for(org.id, &[supplier_id.to_owned()])?
        } else {
            HashMap::new()
        };
        for (act, k) in acts {
            let (_, f, doc) = &good[k];
            let id = &f.pcf.id;
            match act {
                Act::Insert => {
                    insert(&tx, org.id, supplier_id, f, doc, source, &now)?;
                    receipt.received.push(id.clone());
                    // A successor received before its predecessor.
                    let successor = tx.query_opt(
                        "SELECT pcf_id FROM pcf_lineage WHERE org_id = ?1 AND preceding_id = ?2
                         ORDER BY pcf_id LIMIT 1",
                        args![org.id.0, id],
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
                Act::Deprecate => {
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
                }
            }
        }
        let mut digests = crate::model::audit::LineDigests::default();
        let changed = !receipt.received.is_empty() || !receipt.deprecated.is_empty();
        if changed && has_lines {
            let ids = [supplier_id.to_owned()];
            let before = HashMap::from([(
                supplier_id.to_owned(),
                profiles.get(supplier_id).cloned().unwrap_or_default(),
            )]);
            let mut now_pcfs = pcfs_by_supplier(&tx, org.id, Some(&[supplier_id]))?;
            let profile = profiles.entry(supplier_id.to_owned()).or_default();
            profile.pcfs = Footprints::new(now_pcfs.remove(supplier_id).unwrap_or_default());
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
            digests = r.digests;
        }
        if changed {
            bump_generation(&tx, org.id)?;
            let detail = json!({
                "supplier_id": supplier_id,
                "source": source,
                "received": receipt.received,
                "deprecated": receipt.deprecated,
                "superseded": receipt.superseded,
                "rejected": receipt.rejected.len(),
                "lines_changed": receipt.lines_changed,
            });
            let change = Change::new("pcfs.received", supplier_id, detail).with_lines(&digests);
            audit::append(&tx, org.id, actor, change)?;
        }
        tx.commit()?;
        Ok(receipt)
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
    for pre in f.preceding.iter().filter(|x| **x != p.id) {
        tx.execute(
            "INSERT INTO pcf_lineage (org_id, preceding_id, pcf_id) VALUES (?1, ?2, ?3)
             ON CONFLICT DO NOTHING",
            args![org.0, pre, &p.id],
        )?;
    }
    for product in &p.product_ids {
        tx.execute(
            "INSERT INTO pcf_products (org_id, product_id, pcf_id) VALUES (?1, ?2, ?3)
             ON CONFLICT DO NOTHING",
            args![org.0, product, &p.id],
        )?;
    }
    Ok(())
}
