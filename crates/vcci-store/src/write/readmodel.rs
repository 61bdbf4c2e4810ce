//! Read models kept in step with the lines, in the same transaction as the write.
//!
//! A write collects signed deltas per (day, category, method, quality) and per
//! (supplier, month) in memory and applies them once per batch. Values are integers
//! (milligrams CO2e, milli-USD) so that any sequence of inserts, updates and deletes leaves
//! exactly the sums a full recomputation gives.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use crate::Result;
use crate::codec::{EXTRA_COLUMNS, Extras, mg_sql, musd_sql};
use crate::conn::{Arg, Dialect, Tx, args};
use crate::model::orgs::{OrgId, bump_generation};

/// The sums of every read model.
const SUMS: &[&str] = &["co2e_mg", "spend_musd", "line_count"];
/// The sums of the category read models (daily, monthly): also the `Extras` (Scope 1 and 2
/// recorded apart, the gases, biogenic CO2).
const SCOPED_SUMS: &[&str] = &[
    "co2e_mg",
    "spend_musd",
    "line_count",
    EXTRA_COLUMNS[0],
    EXTRA_COLUMNS[1],
    EXTRA_COLUMNS[2],
    EXTRA_COLUMNS[3],
    EXTRA_COLUMNS[4],
    EXTRA_COLUMNS[5],
    EXTRA_COLUMNS[6],
    EXTRA_COLUMNS[7],
    EXTRA_COLUMNS[8],
];

/// Adds signed sums to `table` for many keys (`INSERT ... ON CONFLICT DO UPDATE`), with
/// `key_cols` identifying a row and the `sums` following them in each row of `rows`.
/// Rows are applied in key order, so concurrent flushes lock rows in the same order
/// (PostgreSQL would otherwise deadlock two writers touching the same days). On SQLite one
/// prepared statement runs per row (no round trip there); on PostgreSQL one statement
/// carries every row as column arrays (`write/postgres.rs`, `upsert_columns`).
fn upsert_sums(
    tx: &Tx<'_>,
    table: &str,
    key_cols: &[&str],
    sums: &[&str],
    rows: &[Vec<Arg<'_>>],
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let cols = format!("{}, {}", key_cols.join(", "), sums.join(", "));
    let sets = sums
        .iter()
        .map(|c| format!("{c} = {table}.{c} + excluded.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    if tx.dialect() == Dialect::Postgres {
        return super::postgres::upsert_columns(tx, table, &cols, key_cols, &sets, rows);
    }
    let marks: Vec<String> = (1..=key_cols.len() + sums.len())
        .map(|i| format!("?{i}"))
        .collect();
    let sql = format!(
        "INSERT INTO {table} ({cols}) VALUES ({}) ON CONFLICT ({}) DO UPDATE SET {sets}",
        marks.join(", "),
        key_cols.join(", ")
    );
    for row in rows {
        tx.execute(&sql, row)?;
    }
    Ok(())
}

/// One line's contribution to the read models.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contribution<'a> {
    /// yyyymmdd.
    pub day: u32,
    pub category: u8,
    /// Storage code of the method (see `codec::method_code`).
    pub method: u8,
    pub data_quality: u8,
    pub supplier_id: Option<Cow<'a, str>>,
    pub co2e_mg: i64,
    pub spend_musd: i64,
    /// Scope 1 and Scope 2 of an energy or fuel input recorded apart (never in `co2e_mg`),
    /// the gases of `co2e_mg`, biogenic CO2 (`codec::EXTRA_COLUMNS`).
    pub extras: Extras,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Agg {
    mg: i64,
    musd: i64,
    count: i64,
    x: Extras,
}

impl Agg {
    fn add(&mut self, o: &Agg) {
        self.mg += o.mg;
        self.musd += o.musd;
        self.count += o.count;
        for (a, b) in self.x.iter_mut().zip(o.x) {
            *a += b;
        }
    }
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

/// A row of a category read model: the key, then `SCOPED_SUMS`.
fn scoped_row(
    org: OrgId,
    period: u32,
    (cat, method, dq): (u8, u8, u8),
    a: &Agg,
) -> Vec<Arg<'static>> {
    let mut row = args![org.0, period, cat, method, dq, a.mg, a.musd, a.count].to_vec();
    row.extend(a.x.iter().map(|v| Arg::Int(*v)));
    row
}

/// Signed changes to apply to the read models.
#[derive(Debug, Default)]
pub struct Delta {
    daily: HashMap<(u32, u8, u8, u8), Agg, BuildHasherDefault<IntHasher>>,
    /// supplier ('' = none) → month → sums.
    supplier: HashMap<String, HashMap<u32, Agg>>,
}

impl Delta {
    pub fn add(&mut self, c: &Contribution<'_>) {
        self.apply(c, 1);
    }

    pub fn remove(&mut self, c: &Contribution<'_>) {
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
        for (a, b) in d.x.iter_mut().zip(c.extras) {
            *a += sign * b;
        }
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
            self.daily.entry(k).or_default().add(&a);
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
    }

    pub fn is_empty(&self) -> bool {
        self.daily.is_empty()
    }

    /// Writes the deltas inside `tx`; rows whose count drops to zero are removed.
    pub(crate) fn flush(&mut self, tx: &Tx<'_>, org: OrgId) -> Result<()> {
        let mut monthly: HashMap<(u32, u8, u8, u8), Agg, BuildHasherDefault<IntHasher>> =
            HashMap::default();
        let mut daily: Vec<_> = self
            .daily
            .iter()
            .filter(|(_, a)| **a != Agg::default())
            .collect();
        daily.sort_unstable_by_key(|(k, _)| **k);
        let mut rows = Vec::with_capacity(daily.len());
        for ((day, cat, method, dq), a) in daily {
            monthly
                .entry((day / 100, *cat, *method, *dq))
                .or_default()
                .add(a);
            rows.push(scoped_row(org, *day, (*cat, *method, *dq), a));
        }
        upsert_sums(
            tx,
            "summary_daily",
            &["org_id", "day", "category", "method", "data_quality"],
            SCOPED_SUMS,
            &rows,
        )?;
        let mut monthly: Vec<_> = monthly
            .into_iter()
            .filter(|(_, a)| *a != Agg::default())
            .collect();
        monthly.sort_unstable_by_key(|(k, _)| *k);
        let rows: Vec<Vec<Arg<'_>>> = monthly
            .iter()
            .map(|((month, cat, method, dq), a)| scoped_row(org, *month, (*cat, *method, *dq), a))
            .collect();
        upsert_sums(
            tx,
            "summary_monthly",
            &["org_id", "month", "category", "method", "data_quality"],
            SCOPED_SUMS,
            &rows,
        )?;
        let mut supplier: Vec<(&str, u32, &Agg)> = self
            .supplier
            .iter()
            .flat_map(|(s, months)| months.iter().map(move |(m, a)| (s.as_str(), *m, a)))
            .filter(|(_, _, a)| **a != Agg::default())
            .collect();
        supplier.sort_unstable_by_key(|(s, m, _)| (*s, *m));
        let rows: Vec<Vec<Arg<'_>>> = supplier
            .iter()
            .map(|(s, month, a)| args![org.0, *s, *month, a.mg, a.musd, a.count].to_vec())
            .collect();
        upsert_sums(
            tx,
            "summary_supplier_month",
            &["org_id", "supplier_id", "month"],
            SUMS,
            &rows,
        )?;
        // Only a row whose count goes down can reach zero. A re-import of unchanged lines
        // removes exactly what it added (every net change is zero): no row shrinks, and the
        // org-wide sweep below is skipped (measured: it was 1.5 s of a 1M-line re-import).
        let shrinks = self.daily.values().any(|a| a.count < 0)
            || self
                .supplier
                .values()
                .any(|months| months.values().any(|a| a.count < 0));
        if shrinks {
            for table in ["summary_daily", "summary_supplier_month", "summary_monthly"] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE org_id = ?1 AND line_count = 0"),
                    args![org.0],
                )?;
            }
        }
        self.daily.clear();
        self.supplier.clear();
        bump_generation(tx, org)
    }
}

/// Sets the `Extras` columns of `org`'s daily and monthly rows from per-(day, category,
/// method, quality) sums (rows without an entry keep what they have: zeros after a rebuild).
pub(crate) fn write_extras(
    tx: &Tx<'_>,
    org: OrgId,
    by_day: &BTreeMap<(u32, u8, u8, u8), Extras>,
) -> Result<()> {
    let sets = EXTRA_COLUMNS
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{c} = ?{}", i + 1))
        .collect::<Vec<_>>()
        .join(", ");
    let n = EXTRA_COLUMNS.len();
    for (table, key, div) in [
        ("summary_daily", "day", 1),
        ("summary_monthly", "month", 100),
    ] {
        let mut rows: BTreeMap<(u32, u8, u8, u8), Extras> = BTreeMap::new();
        for (&(day, c, m, q), x) in by_day {
            let e = rows.entry((day / div, c, m, q)).or_default();
            for (a, b) in e.iter_mut().zip(x) {
                *a += b;
            }
        }
        let sql = format!(
            "UPDATE {table} SET {sets} WHERE org_id = ?{} AND {key} = ?{} AND category = ?{}
               AND method = ?{} AND data_quality = ?{}",
            n + 1,
            n + 2,
            n + 3,
            n + 4,
            n + 5
        );
        for ((k, c, m, q), x) in rows {
            let mut a: Vec<Arg<'_>> = x.iter().map(|v| Arg::Int(*v)).collect();
            a.extend(args![org.0, k, c, m, q].iter().copied());
            tx.execute(&sql, &a)?;
        }
    }
    Ok(())
}

/// Rebuilds both read models of `org` from its lines (repair, and the check in tests).
pub(crate) fn rebuild(tx: &Tx<'_>, org: OrgId) -> Result<()> {
    let (mg, musd) = (mg_sql(tx.dialect()), musd_sql(tx.dialect()));
    for table in ["summary_daily", "summary_supplier_month", "summary_monthly"] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE org_id = ?1"),
            args![org.0],
        )?;
    }
    tx.execute(
        &format!(
            "INSERT INTO summary_daily (org_id, day, category, method, data_quality, co2e_mg, spend_musd, line_count)
             SELECT org_id, day, category, method, data_quality, CAST(SUM({mg}) AS BIGINT), CAST(SUM({musd}) AS BIGINT), COUNT(*)
             FROM transactions WHERE org_id = ?1 GROUP BY org_id, day, category, method, data_quality"
        ),
        args![org.0],
    )?;
    tx.execute(
        &format!(
            "INSERT INTO summary_supplier_month (org_id, supplier_id, month, co2e_mg, spend_musd, line_count)
             SELECT org_id, COALESCE(supplier_id, ''), day / 100, CAST(SUM({mg}) AS BIGINT), CAST(SUM({musd}) AS BIGINT), COUNT(*)
             FROM transactions WHERE org_id = ?1 GROUP BY org_id, COALESCE(supplier_id, ''), day / 100"
        ),
        args![org.0],
    )?;
    tx.execute(
        "INSERT INTO summary_monthly (org_id, month, category, method, data_quality, co2e_mg, spend_musd, line_count)
         SELECT org_id, day / 100, category, method, data_quality, CAST(SUM(co2e_mg) AS BIGINT), CAST(SUM(spend_musd) AS BIGINT), CAST(SUM(line_count) AS BIGINT)
         FROM summary_daily WHERE org_id = ?1 GROUP BY org_id, day / 100, category, method, data_quality",
        args![org.0],
    )?;
    // The extras (Scope 1/2 apart, gases, biogenic CO2) come from the lines' bodies.
    write_extras(tx, org, &crate::model::reports::extras_by_day(tx, org)?)?;
    bump_generation(tx, org)
}

impl crate::conn::Db {
    /// Finishes what migrations leave to the binary, once each (a `maintenance` row names
    /// the work pending):
    /// - `read_model_extras` (migration 7): the read models' extra columns (gases, biogenic
    ///   CO2, Scope 1/2 apart) summed from the stored lines' bodies;
    /// - `review_flags` (migration 14, PostgreSQL 13): the review flag of lines classified
    ///   before it, from their bodies.
    ///
    /// Every process that opens a store calls it; the first does the work, in one
    /// transaction per organization, and the marker goes with the last.
    pub fn finish_migrations(&mut self) -> Result<()> {
        for name in ["read_model_extras", "review_flags"] {
            let pending: Option<String> = self.conn.query_opt(
                "SELECT name FROM maintenance WHERE name = ?1",
                args![name],
                |r| r.string(0),
            )?;
            if pending.is_none() {
                continue;
            }
            let orgs: Vec<i64> =
                self.conn
                    .query("SELECT id FROM organizations ORDER BY id", &[], |r| {
                        r.i64(0)
                    })?;
            for id in orgs {
                let org = OrgId(id);
                // Under the organization's write lock: no write lands between the reads and
                // the UPDATEs (which set, not add).
                let tx = self.conn.begin_immediate()?;
                super::turns::lock_org(&tx, org, None)?;
                if name == "read_model_extras" {
                    let by_day = crate::model::reports::extras_by_day(&tx, org)?;
                    write_extras(&tx, org, &by_day)?;
                    bump_generation(&tx, org)?;
                } else {
                    crate::classify::flag_stored_lines(&tx, org)?;
                }
                tx.commit()?;
            }
            self.conn
                .execute("DELETE FROM maintenance WHERE name = ?1", args![name])?;
        }
        Ok(())
    }
}
