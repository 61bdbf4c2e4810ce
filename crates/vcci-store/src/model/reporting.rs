//! Year over year: the organization's base year, intensity denominators per year (revenue,
//! headcount), reduction targets, and comparisons of a year with the previous year and the
//! base year. A closed year's figures are those of its latest inventory version (what was
//! disclosed); an open year's are the live read models.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::codec::kg_to_mg;
use crate::conn::{Db, Row, args};
use crate::model::audit::{self, Actor, Change};
use crate::model::orgs::{OrgId, bump_generation};
use crate::model::periods::check_year;
use crate::{Result, StoreError, now_rfc3339};

/// The significance threshold of a recalculation when the organization sets none (5 %).
pub const DEFAULT_THRESHOLD: f64 = 0.05;

/// The organization's base year and recalculation threshold.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReportingSettings {
    pub base_year: Option<u16>,
    /// A change of a closed year's total by at least this share is significant.
    pub significance_threshold: f64,
}

/// One value of an intensity denominator.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Denominator {
    pub name: String,
    pub year: u16,
    pub value: f64,
    pub unit: String,
}

/// A reduction target: `reduction_pct` % less than the base year's emissions of
/// `categories` (all when empty) by `target_year`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Target {
    pub id: i64,
    pub name: String,
    pub categories: Vec<u8>,
    pub base_year: u16,
    pub target_year: u16,
    pub reduction_pct: f64,
    pub created_at: String,
}

/// A year's emissions per category, in mg, and where they come from.
#[derive(Clone, Debug, PartialEq)]
pub struct YearFigures {
    pub year: u16,
    /// `live`, or `version N` for a closed year (its latest inventory version).
    pub source: String,
    pub by_category: BTreeMap<u8, i64>,
}

impl YearFigures {
    /// The total of `categories` (all when empty), mg; `None` when none has data.
    pub fn total_mg(&self, categories: &[u8]) -> Option<i64> {
        let mut any = false;
        let mut sum = 0;
        for (c, mg) in &self.by_category {
            if categories.is_empty() || categories.contains(c) {
                any = true;
                sum += mg;
            }
        }
        any.then_some(sum)
    }
}

/// One category (or the total) compared across years.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CompareRow {
    /// Null for the total row.
    pub category: Option<u8>,
    pub name: &'static str,
    pub year_co2e_kg: Option<f64>,
    pub previous_year_co2e_kg: Option<f64>,
    pub base_year_co2e_kg: Option<f64>,
    pub change_vs_previous_kg: Option<f64>,
    pub change_vs_previous_pct: Option<f64>,
    pub change_vs_base_kg: Option<f64>,
    pub change_vs_base_pct: Option<f64>,
}

/// A denominator's values for the compared years, and the total per unit of it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IntensityRow {
    pub denominator: String,
    pub unit: String,
    pub year_value: Option<f64>,
    pub previous_year_value: Option<f64>,
    pub base_year_value: Option<f64>,
    /// kg CO2e per unit of the denominator.
    pub year_kg_per_unit: Option<f64>,
    pub previous_year_kg_per_unit: Option<f64>,
    pub base_year_kg_per_unit: Option<f64>,
    pub change_vs_previous_pct: Option<f64>,
    pub change_vs_base_pct: Option<f64>,
}

/// A year compared with the previous year and the base year.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    pub year: u16,
    pub previous_year: u16,
    pub base_year: Option<u16>,
    /// Where each year's figures come from (`live`, or `version N` of a closed year).
    pub sources: BTreeMap<u16, String>,
    pub categories: Vec<CompareRow>,
    pub total: CompareRow,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intensity: Option<IntensityRow>,
}

/// A target's progress: per year from the base year, the actual emissions against the linear
/// path from the base year's to the target.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TargetProgress {
    #[serde(flatten)]
    pub target: Target,
    pub base_year_co2e_kg: Option<f64>,
    pub target_co2e_kg: Option<f64>,
    pub years: Vec<ProgressYear>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProgressYear {
    pub year: u16,
    pub co2e_kg: Option<f64>,
    /// The linear path's value for the year.
    pub path_co2e_kg: f64,
    /// Null without data for the year.
    pub on_track: Option<bool>,
    /// Reduction achieved since the base year, %.
    pub reduction_pct: Option<f64>,
}

fn kg(mg: i64) -> f64 {
    mg as f64 / 1e6
}

/// `(a − b) / |b|` in %, null without both or when `b` is 0.
fn pct(a: Option<i64>, b: Option<i64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b != 0 => Some((a - b) as f64 / (b as f64).abs() * 100.0),
        _ => None,
    }
}

fn compare_row(
    category: Option<u8>,
    name: &'static str,
    y: Option<i64>,
    p: Option<i64>,
    b: Option<i64>,
) -> CompareRow {
    let diff = |a: Option<i64>, b: Option<i64>| Some(kg(a? - b?));
    CompareRow {
        category,
        name,
        year_co2e_kg: y.map(kg),
        previous_year_co2e_kg: p.map(kg),
        base_year_co2e_kg: b.map(kg),
        change_vs_previous_kg: diff(y, p),
        change_vs_previous_pct: pct(y, p),
        change_vs_base_kg: diff(y, b),
        change_vs_base_pct: pct(y, b),
    }
}

fn year_u16(r: &Row<'_>, i: usize) -> Result<u16> {
    u16::try_from(r.i64(i)?).map_err(|_| StoreError::corrupt("a year is out of range"))
}

/// A reduction target to record: `reduction_pct` % less than the base year's emissions of
/// `categories` (all when empty) by the target year.
#[derive(Clone, Copy, Debug)]
pub struct TargetSpec<'a> {
    pub name: &'a str,
    pub categories: &'a [u8],
    pub base_year: u16,
    pub target_year: u16,
    pub reduction_pct: f64,
}

impl Db {
    pub fn reporting_settings(&self, org: OrgId) -> Result<ReportingSettings> {
        Ok(self
            .conn
            .query_opt(
                "SELECT base_year, significance_threshold FROM reporting_settings WHERE org_id = ?1",
                args![org.0],
                |r| {
                    Ok(ReportingSettings {
                        base_year: r
                            .opt_i64(0)?
                            .map(|y| {
                                u16::try_from(y)
                                    .map_err(|_| StoreError::corrupt("a base year is out of range"))
                            })
                            .transpose()?,
                        significance_threshold: r.f64(1)?,
                    })
                },
            )?
            .unwrap_or(ReportingSettings {
                base_year: None,
                significance_threshold: DEFAULT_THRESHOLD,
            }))
    }

    /// Sets the base year (or clears it) and the significance threshold (a share, 0–1).
    pub fn set_reporting_settings(
        &mut self,
        org: OrgId,
        s: &ReportingSettings,
        actor: &Actor,
    ) -> Result<()> {
        if let Some(y) = s.base_year {
            check_year("base_year", y)?;
        }
        let t = s.significance_threshold;
        if !(t.is_finite() && (0.0..=1.0).contains(&t)) {
            return Err(StoreError::invalid(
                "significance_threshold",
                format!("{t} is not a share between 0 and 1 (0.05 is 5 %)"),
            ));
        }
        let tx = self.conn.begin_immediate()?;
        tx.execute(
            "INSERT INTO reporting_settings (org_id, base_year, significance_threshold, updated_at)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (org_id) DO UPDATE SET base_year = excluded.base_year,
               significance_threshold = excluded.significance_threshold, updated_at = excluded.updated_at",
            args![org.0, s.base_year, t, now_rfc3339().as_str()],
        )?;
        bump_generation(&tx, org)?;
        let detail = serde_json::json!({"base_year": s.base_year, "significance_threshold": t});
        audit::append(
            &tx,
            org,
            actor,
            Change::new("reporting.settings_changed", "", detail),
        )?;
        tx.commit()
    }

    /// Sets one year's value of a denominator (a name of up to 64 bytes, a unit).
    pub fn set_denominator(&mut self, org: OrgId, d: &Denominator, actor: &Actor) -> Result<()> {
        check_year("year", d.year)?;
        let name = d.name.trim();
        if name.is_empty() || name.len() > 64 {
            return Err(StoreError::invalid(
                "name",
                "a denominator's name is 1 to 64 bytes (e.g. revenue, headcount)",
            ));
        }
        if d.unit.len() > 64 {
            return Err(StoreError::invalid("unit", "is longer than 64 bytes"));
        }
        if !(d.value.is_finite() && d.value > 0.0) {
            return Err(StoreError::invalid(
                "value",
                format!("{} is not a positive number", d.value),
            ));
        }
        let tx = self.conn.begin_immediate()?;
        tx.execute(
            "INSERT INTO denominators (org_id, name, year, value, unit) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (org_id, name, year) DO UPDATE SET value = excluded.value, unit = excluded.unit",
            args![org.0, name, d.year, d.value, d.unit.as_str()],
        )?;
        bump_generation(&tx, org)?;
        let detail =
            serde_json::json!({"name": name, "year": d.year, "value": d.value, "unit": d.unit});
        audit::append(
            &tx,
            org,
            actor,
            Change::new("denominator.set", name, detail),
        )?;
        tx.commit()
    }

    /// Every denominator value of `org`, by name and year.
    pub fn denominators(&self, org: OrgId) -> Result<Vec<Denominator>> {
        self.conn.query(
            "SELECT name, year, value, unit FROM denominators WHERE org_id = ?1 ORDER BY name, year",
            args![org.0],
            |r| {
                Ok(Denominator {
                    name: r.string(0)?,
                    year: year_u16(r, 1)?,
                    value: r.f64(2)?,
                    unit: r.string(3)?,
                })
            },
        )
    }

    /// Records a target; returns it with its id.
    pub fn add_target(&mut self, org: OrgId, t: &TargetSpec<'_>, actor: &Actor) -> Result<Target> {
        let TargetSpec {
            name,
            categories,
            base_year,
            target_year,
            reduction_pct,
        } = *t;
        check_year("base_year", base_year)?;
        check_year("target_year", target_year)?;
        if target_year <= base_year {
            return Err(StoreError::invalid(
                "target_year",
                format!("{target_year} is not after the base year {base_year}"),
            ));
        }
        if !(reduction_pct.is_finite() && reduction_pct > 0.0 && reduction_pct <= 100.0) {
            return Err(StoreError::invalid(
                "reduction_pct",
                format!("{reduction_pct} is not a reduction between 0 and 100 %"),
            ));
        }
        let name = name.trim();
        if name.is_empty() || name.len() > 200 {
            return Err(StoreError::invalid(
                "name",
                "a target's name is 1 to 200 bytes",
            ));
        }
        let mut cats = categories.to_vec();
        cats.sort_unstable();
        cats.dedup();
        if let Some(c) = cats
            .iter()
            .find(|c| vcci_core::Category::new(**c).is_none())
        {
            return Err(StoreError::invalid(
                "categories",
                format!("{c} is not a Scope 3 category (1–15)"),
            ));
        }
        let list = cats.iter().map(u8::to_string).collect::<Vec<_>>().join(",");
        let now = now_rfc3339();
        let tx = self.conn.begin_immediate()?;
        let id: i64 = tx.query_one(
            "INSERT INTO targets (org_id, name, categories, base_year, target_year, reduction_pct, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
            args![org.0, name, list.as_str(), base_year, target_year, reduction_pct, now.as_str()],
            |r| r.i64(0),
        )?;
        bump_generation(&tx, org)?;
        let detail = serde_json::json!({"id": id, "name": name, "categories": cats,
            "base_year": base_year, "target_year": target_year, "reduction_pct": reduction_pct});
        audit::append(
            &tx,
            org,
            actor,
            Change::new("target.added", id.to_string(), detail),
        )?;
        tx.commit()?;
        Ok(Target {
            id,
            name: name.to_owned(),
            categories: cats,
            base_year,
            target_year,
            reduction_pct,
            created_at: now,
        })
    }

    pub fn targets(&self, org: OrgId) -> Result<Vec<Target>> {
        self.conn.query(
            "SELECT id, name, categories, base_year, target_year, reduction_pct, created_at
             FROM targets WHERE org_id = ?1 ORDER BY id",
            args![org.0],
            |r| {
                let cats = r
                    .str(2)?
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse::<u8>())
                    .collect::<std::result::Result<Vec<u8>, _>>()
                    .map_err(|_| StoreError::corrupt("a target's categories"))?;
                Ok(Target {
                    id: r.i64(0)?,
                    name: r.string(1)?,
                    categories: cats,
                    base_year: year_u16(r, 3)?,
                    target_year: year_u16(r, 4)?,
                    reduction_pct: r.f64(5)?,
                    created_at: r.string(6)?,
                })
            },
        )
    }

    /// A year's emissions per category: the latest inventory version of a closed year (what
    /// was disclosed), else the live read models.
    pub fn year_figures(&self, org: OrgId, year: u16) -> Result<YearFigures> {
        if self.closed_years(org)?.contains(&year) {
            let v: Option<(u32, String)> = self.conn.query_opt(
                "SELECT v.version, v.inventory FROM inventory_versions v
                 JOIN periods p ON p.org_id = v.org_id AND p.year = v.year AND p.version = v.version
                 WHERE v.org_id = ?1 AND v.year = ?2",
                args![org.0, year],
                |r| Ok((r.u32(0)?, r.string(1)?)),
            )?;
            if let Some((version, json)) = v {
                let inv: serde_json::Value = serde_json::from_str(&json)
                    .map_err(|_| StoreError::corrupt("an inventory version's inventory"))?;
                let mut by_category = BTreeMap::new();
                for c in inv["categories"].as_array().into_iter().flatten() {
                    if let (Some(n), Some(kg)) = (c["category"].as_u64(), c["co2e_kg"].as_f64()) {
                        by_category.insert(n as u8, kg_to_mg(kg));
                    }
                }
                return Ok(YearFigures {
                    year,
                    source: format!("version {version}"),
                    by_category,
                });
            }
        }
        let (from, to) = (u32::from(year) * 100 + 1, u32::from(year) * 100 + 12);
        let rows = self.conn.query(
            "SELECT category, CAST(SUM(co2e_mg) AS BIGINT), CAST(SUM(line_count) AS BIGINT)
             FROM summary_monthly WHERE org_id = ?1 AND month BETWEEN ?2 AND ?3 GROUP BY category",
            args![org.0, from, to],
            |r| Ok((r.u8(0)?, r.i64(1)?, r.i64(2)?)),
        )?;
        Ok(YearFigures {
            year,
            source: "live".into(),
            by_category: rows
                .into_iter()
                .filter(|r| r.2 > 0)
                .map(|(c, mg, _)| (c, mg))
                .collect(),
        })
    }

    /// `year` against the previous year and the base year, by category and in total;
    /// with `denominator`, the total per unit of it too.
    pub fn compare_years(
        &self,
        org: OrgId,
        year: u16,
        denominator: Option<&str>,
    ) -> Result<Comparison> {
        check_year("year", year)?;
        let settings = self.reporting_settings(org)?;
        let y = self.year_figures(org, year)?;
        let p = self.year_figures(org, year - 1)?;
        let b = match settings.base_year {
            Some(by) => Some(self.year_figures(org, by)?),
            None => None,
        };
        let mut sources = BTreeMap::new();
        for f in [Some(&y), Some(&p), b.as_ref()].into_iter().flatten() {
            sources.insert(f.year, f.source.clone());
        }
        let get = |f: &YearFigures, c: u8| f.by_category.get(&c).copied();
        let categories = vcci_core::Category::all()
            .map(|c| {
                let n = c.number();
                compare_row(
                    Some(n),
                    c.name(),
                    get(&y, n),
                    get(&p, n),
                    b.as_ref().and_then(|b| get(b, n)),
                )
            })
            .collect();
        let (yt, pt, bt) = (
            y.total_mg(&[]),
            p.total_mg(&[]),
            b.as_ref().and_then(|b| b.total_mg(&[])),
        );
        let total = compare_row(None, "Total", yt, pt, bt);
        let intensity = match denominator {
            None => None,
            Some(name) => {
                let ds: Vec<Denominator> = self
                    .denominators(org)?
                    .into_iter()
                    .filter(|d| d.name == name)
                    .collect();
                if ds.is_empty() {
                    return Err(StoreError::NotFound(format!("denominator '{name}'")));
                }
                let value = |yr: Option<u16>| {
                    yr.and_then(|yr| ds.iter().find(|d| d.year == yr).map(|d| d.value))
                };
                let per = |mg: Option<i64>, v: Option<f64>| Some(kg(mg?) / v?);
                let (yv, pv, bv) = (
                    value(Some(year)),
                    value(Some(year - 1)),
                    value(settings.base_year),
                );
                let (yi, pi, bi) = (per(yt, yv), per(pt, pv), per(bt, bv));
                let change = |a: Option<f64>, b: Option<f64>| match (a, b) {
                    (Some(a), Some(b)) if b != 0.0 => Some((a - b) / b.abs() * 100.0),
                    _ => None,
                };
                Some(IntensityRow {
                    denominator: name.to_owned(),
                    unit: ds[0].unit.clone(),
                    year_value: yv,
                    previous_year_value: pv,
                    base_year_value: bv,
                    year_kg_per_unit: yi,
                    previous_year_kg_per_unit: pi,
                    base_year_kg_per_unit: bi,
                    change_vs_previous_pct: change(yi, pi),
                    change_vs_base_pct: change(yi, bi),
                })
            }
        };
        Ok(Comparison {
            year,
            previous_year: year - 1,
            base_year: settings.base_year,
            sources,
            categories,
            total,
            intensity,
        })
    }

    /// Every target with its progress, up to `through` (the last year to show).
    pub fn target_progress(&self, org: OrgId, through: u16) -> Result<Vec<TargetProgress>> {
        let mut out = Vec::new();
        for t in self.targets(org)? {
            let base = self.year_figures(org, t.base_year)?.total_mg(&t.categories);
            let base_kg = base.map(kg);
            let target_kg = base_kg.map(|b| b * (1.0 - t.reduction_pct / 100.0));
            let mut years = Vec::new();
            let last = through.min(t.target_year);
            for yr in t.base_year..=last {
                let actual = self.year_figures(org, yr)?.total_mg(&t.categories).map(kg);
                let (Some(b), Some(tk)) = (base_kg, target_kg) else {
                    break;
                };
                let f = f64::from(yr - t.base_year) / f64::from(t.target_year - t.base_year);
                let path = b - (b - tk) * f;
                years.push(ProgressYear {
                    year: yr,
                    co2e_kg: actual,
                    path_co2e_kg: path,
                    on_track: actual.map(|a| a <= path),
                    reduction_pct: actual
                        .filter(|_| b != 0.0)
                        .map(|a| (b - a) / b.abs() * 100.0),
                });
            }
            out.push(TargetProgress {
                target: t,
                base_year_co2e_kg: base_kg,
                target_co2e_kg: target_kg,
                years,
            });
        }
        Ok(out)
    }
}
