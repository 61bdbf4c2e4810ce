//! Report queries. They read the read models, never the whole lines table: organization-wide
//! figures come from `summary_daily` (exact for any date range); per-supplier figures come from
//! `summary_supplier_month` for whole months plus the lines of at most two partial months at
//! the range's edges, read through the date index.

use serde::Serialize;
use vcci_core::gases::GasSplit;
use vcci_core::{Category, Date, Method};

use crate::Result;
use crate::codec::{Body, EXTRA_COLUMNS, Extras, method_from_code, mg_sql, musd_sql};
use crate::conn::{Conn, Db, args};
use crate::model::orgs::OrgId;

/// An inclusive date range; `None` ends are open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DateRange {
    pub from: Option<Date>,
    pub to: Option<Date>,
}

impl DateRange {
    /// yyyymmdd bounds, open ends widened.
    pub(crate) fn bounds(&self) -> (u32, u32) {
        (
            self.from.map_or(0, |d| d.yyyymmdd()),
            self.to.map_or(99_999_999, |d| d.yyyymmdd()),
        )
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CategoryTotal {
    pub category: u8,
    pub name: &'static str,
    pub co2e_kg: f64,
    pub transaction_count: i64,
    pub share: f64,
    /// `co2e_kg` by gas.
    pub gases: GasSplit,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MethodTotal {
    pub method: Method,
    pub co2e_kg: f64,
    pub transaction_count: i64,
    pub share: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QualityTotal {
    pub data_quality: u8,
    pub co2e_kg: f64,
    pub transaction_count: i64,
}

/// Totals for a period, by category, method and data quality.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub total_co2e_kg: f64,
    pub transaction_count: i64,
    pub spend_usd: f64,
    pub by_category: Vec<CategoryTotal>,
    /// Categories with no lines in the period: not reported, not zero.
    pub categories_without_data: Vec<u8>,
    pub by_method: Vec<MethodTotal>,
    pub by_data_quality: Vec<QualityTotal>,
    /// Emission-weighted mean data-quality score (1 best, 5 worst); null without data.
    pub weighted_data_quality: Option<f64>,
    /// Scope 1 and 2 emissions of energy and fuel inputs, recorded apart for reference:
    /// never part of any total above.
    pub scope_1_2_recorded_apart: RecordedApart,
    /// `total_co2e_kg` by gas.
    pub by_gas: GasSplit,
    /// Biogenic CO2 of fuels and electricity, outside the scopes: not in any total above.
    pub biogenic_co2_kg: f64,
}

/// kg CO2e by gas from the read models' mg columns (`Extras` 2..8).
pub(crate) fn gases_from_mg(x: &Extras) -> GasSplit {
    GasSplit {
        co2: kg(x[2]),
        ch4: kg(x[3]),
        n2o: kg(x[4]),
        other: kg(x[5]),
        radiative_forcing: kg(x[6]),
        unspecified: kg(x[7]),
    }
}

/// `SUM(...)` of every extra column, for queries over the category read models.
pub(crate) fn extras_sums_sql() -> String {
    EXTRA_COLUMNS
        .iter()
        .map(|c| format!("CAST(SUM({c}) AS BIGINT)"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Extras read from columns `at..at + EXTRAS` of a row (NULL sums as 0).
pub(crate) fn extras_at(r: &crate::conn::Row<'_>, at: usize) -> Result<Extras> {
    let mut x = Extras::default();
    for (i, v) in x.iter_mut().enumerate() {
        *v = r.opt_i64(at + i)?.unwrap_or(0);
    }
    Ok(x)
}

fn add_extras(acc: &mut Extras, x: &Extras) {
    for (a, b) in acc.iter_mut().zip(x) {
        *a += b;
    }
}

/// Scope 1 and Scope 2 emissions of energy and fuel inputs (lines whose factor is Scope 1
/// or 2), recorded apart: their category 3 share is what the Scope 3 totals count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct RecordedApart {
    pub scope_1_kg: f64,
    pub scope_2_kg: f64,
}

impl RecordedApart {
    pub(crate) fn from_mg(s1: i64, s2: i64) -> RecordedApart {
        RecordedApart {
            scope_1_kg: kg(s1),
            scope_2_kg: kg(s2),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MonthTotal {
    pub month: String,
    pub co2e_kg: f64,
    pub transaction_count: i64,
    /// co2e_kg per category number (as a string key), only categories with data.
    pub by_category: std::collections::BTreeMap<String, f64>,
    /// `co2e_kg` by gas.
    pub by_gas: GasSplit,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SupplierTotal {
    pub supplier_id: Option<String>,
    pub name: Option<String>,
    pub co2e_kg: f64,
    pub transaction_count: i64,
    pub spend_usd: f64,
}

fn kg(mg: i64) -> f64 {
    mg as f64 / 1e6
}

fn share(part: i64, total: i64) -> f64 {
    if total == 0 {
        0.0
    } else {
        part as f64 / total as f64
    }
}

impl Db {
    /// Totals for `org` in `range`, optionally for one supplier.
    pub fn summary(&self, org: OrgId, range: DateRange, supplier: Option<&str>) -> Result<Summary> {
        let (from, to) = range.bounds();
        let (mg, musd) = (mg_sql(self.conn.dialect()), musd_sql(self.conn.dialect()));
        // (category, method code, quality, mg, musd, count): from the read model, or for one
        // supplier from its lines in the range, through the date index.
        let supplier_sql = format!(
            "SELECT category, method, data_quality, CAST(SUM({mg}) AS BIGINT), CAST(SUM({musd}) AS BIGINT), COUNT(*)
             FROM transactions WHERE org_id = ?1 AND day BETWEEN ?2 AND ?3 AND supplier_id = ?4
             GROUP BY category, method, data_quality"
        );
        let row = |r: &crate::conn::Row<'_>| -> Result<(u8, u8, u8, i64, i64, i64)> {
            Ok((
                r.u8(0)?,
                r.u8(1)?,
                r.u8(2)?,
                r.i64(3)?,
                r.i64(4)?,
                r.i64(5)?,
            ))
        };
        // Per category: the extras (Scope 1/2 apart, gases, biogenic CO2).
        let mut cat_x = [Extras::default(); 16];
        let xs = extras_sums_sql();
        let cat_extras =
            |r: &crate::conn::Row<'_>| -> Result<(u8, Extras)> { Ok((r.u8(0)?, extras_at(r, 1)?)) };
        let mut rows: Vec<(u8, u8, u8, i64, i64, i64)> = Vec::new();
        match &supplier {
            // Organization-wide: whole months from the monthly model, the partial months
            // at the range's edges from the daily one.
            None => {
                let (whole, partial) = split_months(range);
                if let Some((m_from, m_to)) = whole {
                    rows.extend(self.conn.query(
                        "SELECT category, method, data_quality, CAST(SUM(co2e_mg) AS BIGINT), CAST(SUM(spend_musd) AS BIGINT), CAST(SUM(line_count) AS BIGINT)
                         FROM summary_monthly WHERE org_id = ?1 AND month BETWEEN ?2 AND ?3
                         GROUP BY category, method, data_quality",
                        args![org.0, m_from, m_to],
                        row,
                    )?);
                    for (c, x) in self.conn.query(
                        &format!(
                            "SELECT category, {xs} FROM summary_monthly
                             WHERE org_id = ?1 AND month BETWEEN ?2 AND ?3 GROUP BY category"
                        ),
                        args![org.0, m_from, m_to],
                        cat_extras,
                    )? {
                        add_extras(&mut cat_x[c.min(15) as usize], &x);
                    }
                }
                for (f, t) in partial {
                    rows.extend(self.conn.query(
                        "SELECT category, method, data_quality, CAST(SUM(co2e_mg) AS BIGINT), CAST(SUM(spend_musd) AS BIGINT), CAST(SUM(line_count) AS BIGINT)
                         FROM summary_daily WHERE org_id = ?1 AND day BETWEEN ?2 AND ?3
                         GROUP BY category, method, data_quality",
                        args![org.0, f.yyyymmdd(), t.yyyymmdd()],
                        row,
                    )?);
                    for (c, x) in self.conn.query(
                        &format!(
                            "SELECT category, {xs} FROM summary_daily
                             WHERE org_id = ?1 AND day BETWEEN ?2 AND ?3 GROUP BY category"
                        ),
                        args![org.0, f.yyyymmdd(), t.yyyymmdd()],
                        cat_extras,
                    )? {
                        add_extras(&mut cat_x[c.min(15) as usize], &x);
                    }
                }
            }
            Some(s) => {
                rows.extend(
                    self.conn
                        .query(&supplier_sql, args![org.0, from, to, *s], row)?,
                );
                // The extras of the supplier's lines, from their bodies.
                self.conn.for_each(
                    "SELECT category, body FROM transactions WHERE org_id = ?1
                       AND day BETWEEN ?2 AND ?3 AND supplier_id = ?4",
                    args![org.0, from, to, *s],
                    |r| {
                        let x = Body::decode(r.blob(1)?)?.extras();
                        add_extras(&mut cat_x[r.u8(0)?.min(15) as usize], &x);
                        Ok(())
                    },
                )?;
            }
        }
        let mut cat = [(0i64, 0i64); 16];
        let mut meth: Vec<(Method, i64, i64)> = Method::ALL.iter().map(|m| (*m, 0, 0)).collect();
        let mut dq = [(0i64, 0i64); 6];
        let (mut total, mut musd, mut count) = (0i64, 0i64, 0i64);
        let mut weighted = 0f64;
        for (c, m, q, mg, sp, n) in rows {
            let c = c.min(15) as usize;
            cat[c].0 += mg;
            cat[c].1 += n;
            if let Some(e) = meth.iter_mut().find(|e| e.0 == method_from_code(m)) {
                e.1 += mg;
                e.2 += n;
            }
            dq[q.min(5) as usize].0 += mg;
            dq[q.min(5) as usize].1 += n;
            total += mg;
            musd += sp;
            count += n;
            weighted += f64::from(q) * mg.unsigned_abs() as f64;
        }
        let abs_total: f64 = dq.iter().map(|d| d.0.unsigned_abs() as f64).sum();
        let mut all_x = Extras::default();
        for x in &cat_x {
            add_extras(&mut all_x, x);
        }
        Ok(Summary {
            total_co2e_kg: kg(total),
            transaction_count: count,
            spend_usd: musd as f64 / 1e3,
            by_category: Category::all()
                .filter(|c| cat[c.number() as usize].1 > 0)
                .map(|c| {
                    let (mg, n) = cat[c.number() as usize];
                    CategoryTotal {
                        category: c.number(),
                        name: c.name(),
                        co2e_kg: kg(mg),
                        transaction_count: n,
                        share: share(mg, total),
                        gases: gases_from_mg(&cat_x[c.number() as usize]),
                    }
                })
                .collect(),
            categories_without_data: Category::all()
                .filter(|c| cat[c.number() as usize].1 == 0)
                .map(|c| c.number())
                .collect(),
            by_method: meth
                .into_iter()
                .filter(|m| m.2 > 0)
                .map(|(method, mg, n)| MethodTotal {
                    method,
                    co2e_kg: kg(mg),
                    transaction_count: n,
                    share: share(mg, total),
                })
                .collect(),
            by_data_quality: (1..=5u8)
                .filter(|q| dq[*q as usize].1 > 0)
                .map(|q| QualityTotal {
                    data_quality: q,
                    co2e_kg: kg(dq[q as usize].0),
                    transaction_count: dq[q as usize].1,
                })
                .collect(),
            weighted_data_quality: (abs_total > 0.0).then(|| weighted / abs_total),
            scope_1_2_recorded_apart: RecordedApart::from_mg(all_x[0], all_x[1]),
            by_gas: gases_from_mg(&all_x),
            biogenic_co2_kg: kg(all_x[8]),
        })
    }

    /// Totals per month (optionally of one year), with the split by category.
    pub fn by_month(&self, org: OrgId, range: DateRange) -> Result<Vec<MonthTotal>> {
        // Whole months from the monthly model, partial edge months from the daily one.
        let (whole, partial) = split_months(range);
        let xs = extras_sums_sql();
        let row = |r: &crate::conn::Row<'_>| -> Result<(u32, u8, i64, i64, Extras)> {
            Ok((r.u32(0)?, r.u8(1)?, r.i64(2)?, r.i64(3)?, extras_at(r, 4)?))
        };
        let mut raw: Vec<(u32, u8, i64, i64, Extras)> = Vec::new();
        if let Some((m_from, m_to)) = whole {
            raw.extend(self.conn.query(
                &format!(
                    "SELECT month, category, CAST(SUM(co2e_mg) AS BIGINT), CAST(SUM(line_count) AS BIGINT), {xs}
                     FROM summary_monthly WHERE org_id = ?1 AND month BETWEEN ?2 AND ?3
                     GROUP BY month, category"
                ),
                args![org.0, m_from, m_to],
                row,
            )?);
        }
        for (f, t) in partial {
            raw.extend(self.conn.query(
                &format!(
                    "SELECT day / 100 AS month, category, CAST(SUM(co2e_mg) AS BIGINT), CAST(SUM(line_count) AS BIGINT), {xs}
                     FROM summary_daily WHERE org_id = ?1 AND day BETWEEN ?2 AND ?3
                     GROUP BY day / 100, category"
                ),
                args![org.0, f.yyyymmdd(), t.yyyymmdd()],
                row,
            )?);
        }
        raw.sort_unstable_by_key(|r| (r.0, r.1));
        type Month = (
            String,
            i64,
            i64,
            std::collections::BTreeMap<String, i64>,
            Extras,
        );
        let mut out: Vec<Month> = Vec::new();
        for (m, c, mg, n, x) in raw {
            let month = format!("{:04}-{:02}", m / 100, m % 100);
            if out.last().is_none_or(|m| m.0 != month) {
                out.push((month, 0, 0, Default::default(), Extras::default()));
            }
            let m = out.last_mut().expect("pushed above");
            m.1 += mg;
            m.2 += n;
            *m.3.entry(c.to_string()).or_default() += mg;
            add_extras(&mut m.4, &x);
        }
        Ok(out
            .into_iter()
            .map(|(month, mg, n, by, x)| MonthTotal {
                month,
                co2e_kg: kg(mg),
                transaction_count: n,
                by_category: by.into_iter().map(|(k, v)| (k, kg(v))).collect(),
                by_gas: gases_from_mg(&x),
            })
            .collect())
    }

    /// Suppliers ranked by emissions (descending) in `range`.
    pub fn by_supplier(
        &self,
        org: OrgId,
        range: DateRange,
        limit: usize,
    ) -> Result<Vec<SupplierTotal>> {
        use std::collections::HashMap;
        let mut acc: HashMap<String, (i64, i64, i64)> = HashMap::new();
        let mut add = |id: String, mg: i64, musd: i64, n: i64| {
            let e = acc.entry(id).or_default();
            e.0 += mg;
            e.1 += musd;
            e.2 += n;
        };
        let (whole, partial) = split_months(range);
        let (mg, musd) = (mg_sql(self.conn.dialect()), musd_sql(self.conn.dialect()));
        let four = |r: &crate::conn::Row<'_>| Ok((r.string(0)?, r.i64(1)?, r.i64(2)?, r.i64(3)?));
        if let Some((m_from, m_to)) = whole {
            for (id, mg, musd, n) in self.conn.query(
                "SELECT supplier_id, CAST(SUM(co2e_mg) AS BIGINT), CAST(SUM(spend_musd) AS BIGINT), CAST(SUM(line_count) AS BIGINT) FROM summary_supplier_month
                 WHERE org_id = ?1 AND month BETWEEN ?2 AND ?3 GROUP BY supplier_id",
                args![org.0, m_from, m_to],
                four,
            )? {
                add(id, mg, musd, n);
            }
        }
        for (from, to) in partial {
            for (id, mg, musd, n) in self.conn.query(
                &format!(
                    "SELECT COALESCE(supplier_id, ''), CAST(SUM({mg}) AS BIGINT), CAST(SUM({musd}) AS BIGINT), COUNT(*) FROM transactions
                     WHERE org_id = ?1 AND day BETWEEN ?2 AND ?3 GROUP BY COALESCE(supplier_id, '')"
                ),
                args![org.0, from.yyyymmdd(), to.yyyymmdd()],
                four,
            )? {
                add(id, mg, musd, n);
            }
        }
        let mut rows: Vec<(String, (i64, i64, i64))> =
            acc.into_iter().filter(|(_, v)| v.2 != 0).collect();
        rows.sort_by(|a, b| b.1.0.cmp(&a.1.0).then_with(|| a.0.cmp(&b.0)));
        rows.truncate(limit);
        let name = |id: &str| {
            self.conn.query_opt(
                "SELECT name FROM suppliers WHERE org_id = ?1 AND supplier_id = ?2",
                args![org.0, id],
                |r| r.string(0),
            )
        };
        rows.into_iter()
            .map(|(id, (mg, musd, n))| {
                let (supplier_id, name) = if id.is_empty() {
                    (None, None)
                } else {
                    let nm: Option<String> = name(&id)?;
                    (Some(id), nm)
                };
                Ok(SupplierTotal {
                    supplier_id,
                    name,
                    co2e_kg: kg(mg),
                    transaction_count: n,
                    spend_usd: musd as f64 / 1e3,
                })
            })
            .collect()
    }

    /// Checks that both read models equal a recomputation from the lines; returns the
    /// differing keys (empty when they agree). Scans all lines: for tests and `vcci verify`.
    pub fn verify_read_models(&self, org: OrgId) -> Result<Vec<String>> {
        let mut diffs = Vec::new();
        let (mg, musd) = (mg_sql(self.conn.dialect()), musd_sql(self.conn.dialect()));
        let queries = [
            (
                "daily",
                "SELECT day || '|' || category || '|' || method || '|' || data_quality, co2e_mg, spend_musd, line_count
                 FROM summary_daily WHERE org_id = ?1"
                    .to_owned(),
                format!(
                    "SELECT day || '|' || category || '|' || method || '|' || data_quality, CAST(SUM({mg}) AS BIGINT), CAST(SUM({musd}) AS BIGINT), COUNT(*)
                     FROM transactions WHERE org_id = ?1 GROUP BY day, category, method, data_quality"
                ),
            ),
            (
                "monthly",
                "SELECT month || '|' || category || '|' || method || '|' || data_quality, co2e_mg, spend_musd, line_count
                 FROM summary_monthly WHERE org_id = ?1"
                    .to_owned(),
                format!(
                    "SELECT (day / 100) || '|' || category || '|' || method || '|' || data_quality, CAST(SUM({mg}) AS BIGINT), CAST(SUM({musd}) AS BIGINT), COUNT(*)
                     FROM transactions WHERE org_id = ?1 GROUP BY day / 100, category, method, data_quality"
                ),
            ),
            (
                "supplier",
                "SELECT supplier_id || '|' || month, co2e_mg, spend_musd, line_count FROM summary_supplier_month WHERE org_id = ?1"
                    .to_owned(),
                format!(
                    "SELECT COALESCE(supplier_id, '') || '|' || (day / 100), CAST(SUM({mg}) AS BIGINT), CAST(SUM({musd}) AS BIGINT), COUNT(*)
                     FROM transactions WHERE org_id = ?1 GROUP BY COALESCE(supplier_id, ''), day / 100"
                ),
            ),
        ];
        for (name, model, truth) in queries {
            let read = |sql: &str| -> Result<std::collections::BTreeMap<String, (i64, i64, i64)>> {
                Ok(self
                    .conn
                    .query(sql, args![org.0], |r| {
                        Ok((r.string(0)?, (r.i64(1)?, r.i64(2)?, r.i64(3)?)))
                    })?
                    .into_iter()
                    .collect())
            };
            let (a, b) = (read(&model)?, read(&truth)?);
            for k in a.keys().chain(b.keys()) {
                if a.get(k) != b.get(k) {
                    diffs.push(format!(
                        "{name} {k}: read model {:?}, lines {:?}",
                        a.get(k),
                        b.get(k)
                    ));
                }
            }
        }
        // The extras (Scope 1/2 apart, gases, biogenic CO2), from the bodies, against both.
        let by_day = extras_by_day(&self.conn, org)?;
        let cols = EXTRA_COLUMNS.join(", ");
        for (table, key, div) in [
            ("summary_daily", "day", 1),
            ("summary_monthly", "month", 100),
        ] {
            let mut truth: std::collections::BTreeMap<String, Extras> = Default::default();
            for (&(day, c, m, q), x) in &by_day {
                let e = truth
                    .entry(format!("{}|{c}|{m}|{q}", day / div))
                    .or_default();
                for (a, b) in e.iter_mut().zip(x) {
                    *a += b;
                }
            }
            let model: std::collections::BTreeMap<String, Extras> = self
                .conn
                .query(
                    &format!(
                        "SELECT {key}, category, method, data_quality, {cols} FROM {table} WHERE org_id = ?1"
                    ),
                    args![org.0],
                    |r| {
                        let mut x = Extras::default();
                        for (i, v) in x.iter_mut().enumerate() {
                            *v = r.i64(4 + i)?;
                        }
                        Ok((
                            format!("{}|{}|{}|{}", r.u32(0)?, r.u8(1)?, r.u8(2)?, r.u8(3)?),
                            x,
                        ))
                    },
                )?
                .into_iter()
                .collect();
            let zero = Extras::default();
            for k in model.keys().chain(truth.keys()) {
                let (a, b) = (model.get(k).unwrap_or(&zero), truth.get(k).unwrap_or(&zero));
                if a != b {
                    diffs.push(format!("{table} extras {k}: read model {a:?}, lines {b:?}"));
                }
            }
        }
        diffs.sort();
        diffs.dedup();
        Ok(diffs)
    }
}

/// The `Extras` of `org`'s lines (Scope 1/2 apart, gases, biogenic CO2, from their bodies)
/// per (day, category, method code, quality): what the read models' extra columns hold.
/// Reads every line of the organization: for rebuilds, checks and migrations.
pub(crate) fn extras_by_day(
    conn: &Conn,
    org: OrgId,
) -> Result<std::collections::BTreeMap<(u32, u8, u8, u8), Extras>> {
    let mut out: std::collections::BTreeMap<(u32, u8, u8, u8), Extras> = Default::default();
    conn.for_each(
        "SELECT day, category, method, data_quality, body FROM transactions WHERE org_id = ?1",
        args![org.0],
        |r| {
            let x = Body::decode(r.blob(4)?)?.extras();
            let e = out
                .entry((r.u32(0)?, r.u8(1)?, r.u8(2)?, r.u8(3)?))
                .or_default();
            for (a, b) in e.iter_mut().zip(x) {
                *a += b;
            }
            Ok(())
        },
    )?;
    Ok(out)
}

/// Splits a range into whole months (yyyymm bounds) and the partial-month date ranges at
/// its edges.
/// Whole months (yyyymm bounds, if any) and partial-month date ranges.
pub type MonthSplit = (Option<(u32, u32)>, Vec<(Date, Date)>);

pub fn split_months(range: DateRange) -> MonthSplit {
    let month = |d: Date| d.yyyymmdd() / 100;
    let month_end = |d: Date| Date::new(d.year(), d.month(), d.month_len()).expect("valid");
    let month_start = |d: Date| Date::new(d.year(), d.month(), 1).expect("valid");
    if let (Some(f), Some(t)) = (range.from, range.to) {
        if f > t {
            return (None, Vec::new());
        }
        if month(f) == month(t) {
            return if f.day() == 1 && t.day() == t.month_len() {
                (Some((month(f), month(f))), Vec::new())
            } else {
                (None, vec![(f, t)])
            };
        }
    }
    let mut partial = Vec::new();
    let lo = match range.from {
        Some(f) if f.day() != 1 => {
            partial.push((f, month_end(f)));
            month(f.next_month_start())
        }
        Some(f) => month(f),
        None => 0,
    };
    let hi = match range.to {
        Some(t) if t.day() != t.month_len() => {
            partial.push((month_start(t), t));
            prev_month(month(t))
        }
        Some(t) => month(t),
        None => 999_999,
    };
    ((lo <= hi).then_some((lo, hi)), partial)
}

fn prev_month(m: u32) -> u32 {
    if m % 100 == 1 {
        (m / 100 - 1) * 100 + 12
    } else {
        m - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Option<Date> {
        Some(Date::parse(s).unwrap())
    }

    #[test]
    fn month_split() {
        let r = |a, b| {
            split_months(DateRange {
                from: d(a),
                to: d(b),
            })
        };
        assert_eq!(
            r("2024-01-01", "2024-12-31"),
            (Some((202401, 202412)), vec![])
        );
        assert_eq!(
            r("2024-01-15", "2024-03-10"),
            (
                Some((202402, 202402)),
                vec![
                    (d("2024-01-15").unwrap(), d("2024-01-31").unwrap()),
                    (d("2024-03-01").unwrap(), d("2024-03-10").unwrap())
                ]
            )
        );
        assert_eq!(
            r("2024-02-03", "2024-02-20"),
            (
                None,
                vec![(d("2024-02-03").unwrap(), d("2024-02-20").unwrap())]
            )
        );
        assert_eq!(r("2024-01-15", "2024-02-10").0, None);
        assert_eq!(r("2023-12-01", "2024-01-31").0, Some((202312, 202401)));
        assert_eq!(r("2024-01-01", "2024-02-10").0, Some((202401, 202401)));
        assert_eq!(
            split_months(DateRange::default()),
            (Some((0, 999_999)), vec![])
        );
    }
}
