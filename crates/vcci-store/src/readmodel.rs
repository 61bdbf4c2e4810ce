//! Read models kept in step with the lines, in the same transaction as the write.
//!
//! A write collects signed deltas per (day, category, method, quality) and per
//! (supplier, month) in memory and applies them once per batch. Values are integers
//! (milligrams CO2e, milli-USD) so that any sequence of inserts, updates and deletes leaves
//! exactly the sums a full recomputation gives.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use rusqlite::{Transaction, params};

use crate::{OrgId, Result};

/// kg → integer milligrams.
pub fn kg_to_mg(kg: f64) -> i64 {
    (kg * 1e6).round() as i64
}

/// USD → integer milli-USD.
pub fn usd_to_musd(usd: f64) -> i64 {
    (usd * 1e3).round() as i64
}

/// `kg_to_mg(co2e_kg)` in SQL (same IEEE product, same half-away-from-zero rounding).
pub const MG_SQL: &str = "CAST(round(co2e_kg * 1000000.0) AS INTEGER)";
/// `usd_to_musd(spend_usd)` in SQL, 0 without spend.
pub const MUSD_SQL: &str = "CAST(round(COALESCE(spend_usd, 0.0) * 1000.0) AS INTEGER)";

/// One line's contribution to the read models.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contribution<'a> {
    /// yyyymmdd.
    pub day: u32,
    pub category: u8,
    /// Storage code of the method (see `lines::method_code`).
    pub method: u8,
    pub data_quality: u8,
    pub supplier_id: Option<Cow<'a, str>>,
    pub co2e_mg: i64,
    pub spend_musd: i64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Agg {
    mg: i64,
    musd: i64,
    count: i64,
}

/// A fast hasher for the small integer keys of the daily map (not for user-chosen keys:
/// the supplier map keeps the default, collision-resistant hasher).
#[derive(Default, Clone, Copy, Debug)]
pub struct IntHasher(u64);

impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// Signed changes to apply to the read models.
#[derive(Debug, Default)]
pub struct Delta {
    daily: HashMap<(u32, u8, u8, u8), Agg, BuildHasherDefault<IntHasher>>,
    /// supplier ('' = none) → month → sums.
    supplier: HashMap<String, HashMap<u32, Agg>>,
    removed: bool,
}

impl Delta {
    pub fn add(&mut self, c: &Contribution<'_>) {
        self.apply(c, 1);
    }

    pub fn remove(&mut self, c: &Contribution<'_>) {
        self.removed = true;
        self.apply(c, -1);
    }

    fn apply(&mut self, c: &Contribution<'_>, sign: i64) {
        let d = self
            .daily
            .entry((c.day, c.category, c.method, c.data_quality))
            .or_default();
        d.mg += sign * c.co2e_mg;
        d.musd += sign * c.spend_musd;
        d.count += sign;
        let name = c.supplier_id.as_deref().unwrap_or_default();
        let months = match self.supplier.get_mut(name) {
            Some(m) => m,
            None => self.supplier.entry(name.to_owned()).or_default(),
        };
        let s = months.entry(c.day / 100).or_default();
        s.mg += sign * c.co2e_mg;
        s.musd += sign * c.spend_musd;
        s.count += sign;
    }

    /// Adds `other`'s changes to these.
    pub fn merge(&mut self, other: Delta) {
        for (k, a) in other.daily {
            let d = self.daily.entry(k).or_default();
            d.mg += a.mg;
            d.musd += a.musd;
            d.count += a.count;
        }
        for (supplier, months) in other.supplier {
            let mine = self.supplier.entry(supplier).or_default();
            for (m, a) in months {
                let d = mine.entry(m).or_default();
                d.mg += a.mg;
                d.musd += a.musd;
                d.count += a.count;
            }
        }
        self.removed |= other.removed;
    }

    pub fn is_empty(&self) -> bool {
        self.daily.is_empty()
    }

    /// Writes the deltas inside `tx`; rows whose count drops to zero are removed.
    pub fn flush(&mut self, tx: &Transaction<'_>, org: OrgId) -> Result<()> {
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO summary_daily (org_id, day, category, method, data_quality, co2e_mg, spend_musd, line_count)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (org_id, day, category, method, data_quality) DO UPDATE SET
                   co2e_mg = co2e_mg + excluded.co2e_mg,
                   spend_musd = spend_musd + excluded.spend_musd,
                   line_count = line_count + excluded.line_count",
            )?;
            let mut monthly: HashMap<(u32, u8, u8, u8), Agg, BuildHasherDefault<IntHasher>> =
                HashMap::default();
            for ((day, cat, method, dq), a) in &self.daily {
                if *a != Agg::default() {
                    st.execute(params![org.0, day, cat, method, dq, a.mg, a.musd, a.count])?;
                    let m = monthly.entry((day / 100, *cat, *method, *dq)).or_default();
                    m.mg += a.mg;
                    m.musd += a.musd;
                    m.count += a.count;
                }
            }
            let mut st = tx.prepare_cached(
                "INSERT INTO summary_monthly (org_id, month, category, method, data_quality, co2e_mg, spend_musd, line_count)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (org_id, month, category, method, data_quality) DO UPDATE SET
                   co2e_mg = co2e_mg + excluded.co2e_mg,
                   spend_musd = spend_musd + excluded.spend_musd,
                   line_count = line_count + excluded.line_count",
            )?;
            for ((month, cat, method, dq), a) in &monthly {
                if *a != Agg::default() {
                    st.execute(params![
                        org.0, month, cat, method, dq, a.mg, a.musd, a.count
                    ])?;
                }
            }
            let mut st = tx.prepare_cached(
                "INSERT INTO summary_supplier_month (org_id, supplier_id, month, co2e_mg, spend_musd, line_count)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (org_id, supplier_id, month) DO UPDATE SET
                   co2e_mg = co2e_mg + excluded.co2e_mg,
                   spend_musd = spend_musd + excluded.spend_musd,
                   line_count = line_count + excluded.line_count",
            )?;
            for (supplier, months) in &self.supplier {
                for (month, a) in months {
                    if *a != Agg::default() {
                        st.execute(params![org.0, supplier, month, a.mg, a.musd, a.count])?;
                    }
                }
            }
        }
        if self.removed {
            tx.execute(
                "DELETE FROM summary_daily WHERE org_id = ?1 AND line_count = 0",
                [org.0],
            )?;
            tx.execute(
                "DELETE FROM summary_supplier_month WHERE org_id = ?1 AND line_count = 0",
                [org.0],
            )?;
            tx.execute(
                "DELETE FROM summary_monthly WHERE org_id = ?1 AND line_count = 0",
                [org.0],
            )?;
        }
        self.daily.clear();
        self.supplier.clear();
        self.removed = false;
        crate::orgs::bump_generation(tx, org)
    }
}

/// Rebuilds both read models of `org` from its lines (repair, and the check in tests).
pub fn rebuild(tx: &Transaction<'_>, org: OrgId) -> Result<()> {
    tx.execute("DELETE FROM summary_daily WHERE org_id = ?1", [org.0])?;
    tx.execute(
        "DELETE FROM summary_supplier_month WHERE org_id = ?1",
        [org.0],
    )?;
    tx.execute("DELETE FROM summary_monthly WHERE org_id = ?1", [org.0])?;
    tx.execute(
        &format!(
            "INSERT INTO summary_daily (org_id, day, category, method, data_quality, co2e_mg, spend_musd, line_count)
             SELECT org_id, day, category, method, data_quality, SUM({MG_SQL}), SUM({MUSD_SQL}), COUNT(*)
             FROM transactions WHERE org_id = ?1 GROUP BY day, category, method, data_quality"
        ),
        [org.0],
    )?;
    tx.execute(
        &format!(
            "INSERT INTO summary_supplier_month (org_id, supplier_id, month, co2e_mg, spend_musd, line_count)
             SELECT org_id, COALESCE(supplier_id, ''), day / 100, SUM({MG_SQL}), SUM({MUSD_SQL}), COUNT(*)
             FROM transactions WHERE org_id = ?1 GROUP BY COALESCE(supplier_id, ''), day / 100"
        ),
        [org.0],
    )?;
    tx.execute(
        "INSERT INTO summary_monthly (org_id, month, category, method, data_quality, co2e_mg, spend_musd, line_count)
         SELECT org_id, day / 100, category, method, data_quality, SUM(co2e_mg), SUM(spend_musd), SUM(line_count)
         FROM summary_daily WHERE org_id = ?1 GROUP BY day / 100, category, method, data_quality",
        [org.0],
    )?;
    crate::orgs::bump_generation(tx, org)
}
