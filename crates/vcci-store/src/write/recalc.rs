//! Recalculation: stored lines read back as `Line`s and written again through the same
//! path as any write, so that a changed factor, setting or supplier profile updates exactly
//! the lines whose result changed (and the read models with them).

use std::collections::HashMap;

use vcci_core::{Catalog, Currency, Date, Line, LineError, Naics, SupplierProfile, Unit};

use super::{Delta, LineOutcome, LineWriter, NewSuppliers, WriteBatch, prepare};
use crate::codec::{Body, basis_from_code};
use crate::conn::{Arg, Db, Dialect, Tx};
use crate::model::orgs::{Org, OrgId};
use crate::{Result, StoreError};

impl Db {
    /// Recalculates stored lines of `org` (all, or those of the given suppliers) with the
    /// current factors, settings and supplier profiles; returns (lines changed, errors).
    /// A line that can no longer be calculated keeps its previous result and is reported.
    pub fn recalculate(
        &mut self,
        cat: &'static Catalog,
        org: &Org,
        only_suppliers: Option<&[String]>,
    ) -> Result<(u64, Vec<(String, LineError)>)> {
        let profiles = self.supplier_profiles(org.id)?;
        let tx = self.conn.begin()?;
        let out = recalculate_tx(&tx, cat, org, &profiles, only_suppliers)?;
        tx.commit()?;
        Ok(out)
    }
}

/// `Db::recalculate` inside a caller's transaction.
pub(crate) fn recalculate_tx(
    tx: &Tx<'_>,
    cat: &'static Catalog,
    org: &Org,
    profiles: &HashMap<String, SupplierProfile>,
    only_suppliers: Option<&[String]>,
) -> Result<(u64, Vec<(String, LineError)>)> {
    let mut changed = 0u64;
    let mut errors = Vec::new();
    let mut batch = Vec::new();
    let mut after = String::new();
    let mut writer = LineWriter::for_conn(tx);
    let none = NewSuppliers::new();
    loop {
        let lines = load_lines(tx, org.id, &after, only_suppliers, 5000)?;
        let Some(last) = lines.last() else { break };
        after = last.0.clone();
        for (_, line) in lines {
            let id = line.transaction_id.clone().unwrap_or_default();
            match prepare(cat, org, line, profiles, None) {
                Ok(p) => batch.push(p),
                Err(e) => errors.push((id, e)),
            }
        }
        let mut delta = Delta::default();
        let outcomes = writer.write(tx, &WriteBatch::direct(org.id, &batch, &none), &mut delta)?;
        delta.flush(tx, org.id)?;
        changed += outcomes
            .iter()
            .filter(|o| **o == LineOutcome::Updated)
            .count() as u64;
        batch.clear();
    }
    Ok((changed, errors))
}

/// Lines as `Line`s again (for recalculation), keyset-paged by transaction_id.
fn load_lines(
    tx: &Tx<'_>,
    org: OrgId,
    after: &str,
    only: Option<&[String]>,
    limit: i64,
) -> Result<Vec<(String, Line)>> {
    let mut sql = match tx.dialect() {
        Dialect::Sqlite => String::from(
            "SELECT transaction_id, day, supplier_id, body FROM transactions t
             WHERE org_id = ?1 AND transaction_id > ?2",
        ),
        Dialect::Postgres => String::from(
            "SELECT k.transaction_id, t.day, t.supplier_id, t.body FROM transaction_keys k
             JOIN transactions t ON t.org_id = k.org_id AND t.day = k.day AND t.transaction_id = k.transaction_id
             WHERE k.org_id = ?1 AND k.transaction_id > ?2",
        ),
    };
    let mut args: Vec<Arg<'_>> = vec![Arg::Int(org.0), Arg::Text(after), Arg::Int(limit)];
    if let Some(ids) = only {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = (0..ids.len()).map(|i| format!("?{}", i + 4)).collect();
        sql.push_str(&format!(" AND t.supplier_id IN ({})", marks.join(", ")));
        args.extend(ids.iter().map(|s| Arg::Text(s)));
    }
    sql.push_str(match tx.dialect() {
        Dialect::Sqlite => " ORDER BY transaction_id LIMIT ?3",
        Dialect::Postgres => " ORDER BY k.transaction_id LIMIT ?3",
    });
    tx.query(&sql, &args, |r| {
        let bad = |m: String| StoreError::corrupt(format!("stored line: {m}"));
        let id = r.string(0)?;
        let b = Body::decode(r.blob(3)?)?;
        let supplier_id = r.opt_string(2)?;
        Ok((
            id.clone(),
            Line {
                transaction_id: Some(id),
                date: Some(Date::from_yyyymmdd(r.u32(1)?).ok_or_else(|| bad("bad day".into()))?),
                // The stored supplier_id is the line's supplier key (its id, else its name).
                supplier_id: if b.supplier_id_given {
                    supplier_id
                } else {
                    None
                },
                supplier_name: b.supplier_name,
                description: b.description,
                amount: b.amount,
                currency: b
                    .currency
                    .map(|c| Currency::parse(&c))
                    .transpose()
                    .map_err(bad)?,
                naics: b.naics_code.and_then(Naics::from_code),
                category: b
                    .category_in
                    .and_then(|c| u8::try_from(c).ok())
                    .and_then(vcci_core::Category::new),
                quantity: b.quantity,
                unit: b.unit.map(|u| Unit::parse(&u)).transpose().map_err(bad)?,
                activity_id: b.activity_id,
                country: b.country,
                price_basis: basis_from_code(b.price_basis),
            },
        ))
    })
}
