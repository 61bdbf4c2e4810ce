//! The Scope 3 inventory a company discloses: per category the total, the methods and their
//! shares, the data quality, the factor sets and versions used, and the categories without
//! data listed as not reported.
//!
//! Totals, methods and quality come from the `summary_daily` read model; the factor sets and
//! versions are recorded only in each line's audit trail, so they are read from the lines of
//! the range (this runs as a background report job, not on a request's hot path).

use std::collections::BTreeMap;

use serde::Serialize;
use vcci_core::{Category, Method, PriceBasis};

use crate::codec::Body;
use crate::codec::Extras;
use crate::codec::method_from_code;
use crate::conn::Db;
use crate::conn::args;
use crate::model::coverage::{Coverage, CoverageAcc, SourceAndReview};
use crate::model::orgs::OrgId;
use crate::model::reports::{DateRange, RecordedApart, extras_at, extras_sums_sql, gases_from_mg};
use crate::{Result, StoreError};
use vcci_core::gases::GasSplit;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Inventory {
    pub date_from: Option<String>,
    pub date_to: Option<String>,
    pub total_co2e_kg: f64,
    pub total_tco2e: f64,
    pub transaction_count: i64,
    pub categories: Vec<InventoryCategory>,
    /// Categories with no line in the range: not reported.
    pub categories_without_data: Vec<u8>,
    /// Scope 1 and 2 emissions of energy and fuel inputs, recorded apart: not part of the
    /// total. Their upstream emissions are in category 3.
    pub scope_1_2_recorded_apart: RecordedApart,
    /// The organization's calculation choices the figures depend on.
    pub settings: InventorySettings,
    /// The global-warming-potential sets of the factors used.
    pub gwp: GwpUse,
    /// Share of the total from supplier primary data (supplier-specific results), as ESRS
    /// E1 asks; null without emissions.
    pub supplier_primary_data_share: Option<f64>,
    /// The five data-quality indicators over the whole inventory, emission-weighted.
    pub data_quality_indicators: Option<IndicatorMeans>,
    /// `total_co2e_kg` by gas.
    pub by_gas: GasSplit,
    /// Biogenic CO2 of fuels and electricity, outside the scopes: not in the total.
    pub biogenic_co2_kg: f64,
    /// How much of the inventory rests on classification (lines without a NAICS code of
    /// their own or of their supplier), by source; what needs review; the suppliers that
    /// most need a code.
    pub classification: Coverage,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InventorySettings {
    pub epa_version: String,
    pub default_currency: String,
    /// Flights with radiative forcing (DESNZ's recommendation) or without.
    pub flights_radiative_forcing: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GwpUse {
    /// The IPCC assessment reports whose GWPs the factors used rest on ("AR4", "AR5"), and
    /// "unstated" for supplier intensities.
    pub sets: Vec<String>,
    /// More than one assessment report: the totals add gases weighted differently.
    pub mixed: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InventoryCategory {
    pub category: u8,
    pub name: &'static str,
    /// `reported` or `not_reported`.
    pub status: &'static str,
    /// Null for a category without data: not reported is not zero.
    pub co2e_kg: Option<f64>,
    pub tco2e: Option<f64>,
    /// Share of the inventory's total; null without data.
    pub share: Option<f64>,
    pub transaction_count: i64,
    pub methods: Vec<InventoryMethod>,
    /// Data-quality score (1 best .. 5) weighted by |emissions|; null without data.
    pub data_quality: Option<f64>,
    /// The five indicators, each weighted by |emissions|; null without data.
    pub data_quality_indicators: Option<IndicatorMeans>,
    /// `co2e_kg` by gas; null without data.
    pub gases: Option<GasSplit>,
    pub factor_sets: Vec<FactorSetUse>,
    /// Share of `co2e_kg` from lines whose code classification gave (reviewed or not), and
    /// from lines flagged for review; null without data.
    pub classified_share: Option<f64>,
    pub needs_review_share: Option<f64>,
}

/// The five data-quality indicators of a set of lines, each an emission-weighted mean.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct IndicatorMeans {
    pub technological: f64,
    pub temporal: f64,
    pub geographical: f64,
    pub completeness: f64,
    pub reliability: f64,
}

/// Sums for `IndicatorMeans`: |mg|-weighted indicator sums and the weight.
#[derive(Clone, Copy, Debug, Default)]
struct IndicatorSums {
    sums: [f64; 5],
    weight: f64,
}

impl IndicatorSums {
    fn add(&mut self, dq: vcci_core::calc::DataQuality, weight: f64) {
        let v = [
            dq.technological,
            dq.temporal,
            dq.geographical,
            dq.completeness,
            dq.reliability,
        ];
        for (s, x) in self.sums.iter_mut().zip(v) {
            *s += f64::from(x) * weight;
        }
        self.weight += weight;
    }

    fn means(&self) -> Option<IndicatorMeans> {
        (self.weight > 0.0).then(|| {
            let m = |i: usize| self.sums[i] / self.weight;
            IndicatorMeans {
                technological: m(0),
                temporal: m(1),
                geographical: m(2),
                completeness: m(3),
                reliability: m(4),
            }
        })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InventoryMethod {
    pub method: Method,
    pub co2e_kg: f64,
    /// Share of the category's total.
    pub share: f64,
    pub transaction_count: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct FactorSetUse {
    pub set: String,
    pub version: String,
    pub transaction_count: i64,
}

#[derive(Default)]
struct Acc {
    mg: i64,
    count: i64,
    dq_weighted: f64,
    dq_weight: f64,
    methods: BTreeMap<u8, (i64, i64)>,
    sets: BTreeMap<(String, String), i64>,
    indicators: IndicatorSums,
    /// Emissions (kg) of the lines read, of those classified, and of those flagged.
    kg: f64,
    classified_kg: f64,
    review_kg: f64,
}

fn share(part: i64, total: i64) -> f64 {
    if total == 0 {
        0.0
    } else {
        part as f64 / total as f64
    }
}

impl Db {
    /// The inventory of `org` for `range`.
    pub fn inventory(&self, org: OrgId, range: DateRange) -> Result<Inventory> {
        let o = self
            .org_by_id(org)?
            .ok_or_else(|| StoreError::NotFound(format!("organization {}", org.0)))?;
        let from = range.from.map_or(0, |d| d.yyyymmdd());
        let to = range.to.map_or(99_999_999, |d| d.yyyymmdd());
        let mut acc: BTreeMap<u8, Acc> = BTreeMap::new();
        let rows = self.conn.query(
            "SELECT category, method, data_quality, CAST(SUM(co2e_mg) AS BIGINT), CAST(SUM(line_count) AS BIGINT)
             FROM summary_daily WHERE org_id = ?1 AND day BETWEEN ?2 AND ?3
             GROUP BY category, method, data_quality",
            args![org.0, from, to],
            |r| Ok((r.u8(0)?, r.u8(1)?, r.u8(2)?, r.i64(3)?, r.i64(4)?)),
        )?;
        let mut cat_x: BTreeMap<u8, Extras> = BTreeMap::new();
        for (c, x) in self.conn.query(
            &format!(
                "SELECT category, {} FROM summary_daily WHERE org_id = ?1 AND day BETWEEN ?2 AND ?3
                 GROUP BY category",
                extras_sums_sql()
            ),
            args![org.0, from, to],
            |r| Ok((r.u8(0)?, extras_at(r, 1)?)),
        )? {
            cat_x.insert(c, x);
        }
        let mut all_x = Extras::default();
        for x in cat_x.values() {
            for (a, b) in all_x.iter_mut().zip(x) {
                *a += b;
            }
        }
        for (c, m, q, mg, n) in rows {
            let a = acc.entry(c).or_default();
            a.mg += mg;
            a.count += n;
            a.dq_weighted += f64::from(q) * mg.unsigned_abs() as f64;
            a.dq_weight += mg.unsigned_abs() as f64;
            let e = a.methods.entry(m).or_default();
            e.0 += mg;
            e.1 += n;
        }
        let mut all_indicators = IndicatorSums::default();
        let mut coverage = CoverageAcc::default();
        self.conn.for_each(
            "SELECT category, body, co2e_kg, supplier_id, spend_usd FROM transactions
             WHERE org_id = ?1 AND day BETWEEN ?2 AND ?3",
            args![org.0, from, to],
            |r| {
                let c: u8 = r.u8(0)?;
                let b = Body::decode(r.blob(1)?)?;
                let line_kg = r.f64(2)?;
                let classified = SourceAndReview::of(&b)?;
                {
                    let a = acc.entry(c).or_default();
                    a.kg += line_kg;
                    if let Some(k) = &classified {
                        a.classified_kg += line_kg;
                        if k.needs_review {
                            a.review_kg += line_kg;
                        }
                    }
                }
                coverage.add(
                    r.opt_string(3)?,
                    r.opt_f64(4)?.unwrap_or(0.0),
                    line_kg,
                    classified.as_ref(),
                );
                // Lines stored before the indicators existed have none: left out until
                // recalculated.
                if let Some(dq) = b.dq.map(vcci_core::calc::DataQuality::unpack) {
                    let w = r.f64(2)?.abs();
                    acc.entry(c).or_default().indicators.add(dq, w);
                    all_indicators.add(dq, w);
                }
                let (set, version, _) = b.factor_names(PriceBasis::Purchaser);
                *acc.entry(c)
                    .or_default()
                    .sets
                    .entry((set.to_owned(), version.into_owned()))
                    .or_default() += 1;
                Ok(())
            },
        )?;
        let total: i64 = acc.values().map(|a| a.mg).sum();
        // Supplier primary data: supplier-specific results and hybrid ones (calculated
        // with the supplier's own Scope 1+2; docs/CALCULATION.md).
        let supplier_codes = [
            crate::codec::method_code(Method::SupplierSpecific),
            crate::codec::method_code(Method::Hybrid),
        ];
        let supplier_mg: i64 = acc
            .values()
            .flat_map(|a| {
                supplier_codes
                    .iter()
                    .filter_map(|c| a.methods.get(c).map(|m| m.0))
            })
            .sum();
        let mut gwp: Vec<String> = acc
            .values()
            .flat_map(|a| a.sets.keys())
            .map(|(set, version)| gwp_of(set, version).to_owned())
            .collect();
        gwp.sort();
        gwp.dedup();
        let mixed = gwp.iter().filter(|g| g.starts_with("AR")).count() > 1;
        let count: i64 = acc.values().map(|a| a.count).sum();
        let kg = |mg: i64| mg as f64 / 1e6;
        let mut categories = Vec::new();
        let mut without = Vec::new();
        for c in Category::all() {
            let n = c.number();
            match acc.remove(&n).filter(|a| a.count > 0) {
                None => {
                    without.push(n);
                    categories.push(InventoryCategory {
                        category: n,
                        name: c.name(),
                        status: "not_reported",
                        co2e_kg: None,
                        tco2e: None,
                        share: None,
                        transaction_count: 0,
                        methods: Vec::new(),
                        data_quality: None,
                        data_quality_indicators: None,
                        gases: None,
                        factor_sets: Vec::new(),
                        classified_share: None,
                        needs_review_share: None,
                    });
                }
                Some(a) => categories.push(InventoryCategory {
                    classified_share: Some(if a.kg == 0.0 {
                        0.0
                    } else {
                        a.classified_kg / a.kg
                    }),
                    needs_review_share: Some(if a.kg == 0.0 { 0.0 } else { a.review_kg / a.kg }),
                    category: n,
                    name: c.name(),
                    status: "reported",
                    co2e_kg: Some(kg(a.mg)),
                    tco2e: Some(kg(a.mg) / 1000.0),
                    share: Some(share(a.mg, total)),
                    transaction_count: a.count,
                    methods: a
                        .methods
                        .iter()
                        .filter(|(_, (_, n))| *n > 0)
                        .map(|(m, (mg, n))| InventoryMethod {
                            method: method_from_code(*m),
                            co2e_kg: kg(*mg),
                            share: share(*mg, a.mg),
                            transaction_count: *n,
                        })
                        .collect(),
                    data_quality: (a.dq_weight > 0.0).then(|| a.dq_weighted / a.dq_weight),
                    data_quality_indicators: a.indicators.means(),
                    gases: Some(gases_from_mg(&cat_x.get(&n).copied().unwrap_or_default())),
                    factor_sets: a
                        .sets
                        .into_iter()
                        .map(|((set, version), n)| FactorSetUse {
                            set,
                            version,
                            transaction_count: n,
                        })
                        .collect(),
                }),
            }
        }
        if !acc.is_empty() {
            return Err(StoreError::corrupt(format!(
                "lines with unknown categories {:?}",
                acc.keys().collect::<Vec<_>>()
            )));
        }
        Ok(Inventory {
            date_from: range.from.map(|d| d.to_string()),
            date_to: range.to.map(|d| d.to_string()),
            total_co2e_kg: kg(total),
            total_tco2e: kg(total) / 1000.0,
            transaction_count: count,
            categories,
            categories_without_data: without,
            scope_1_2_recorded_apart: RecordedApart::from_mg(all_x[0], all_x[1]),
            by_gas: gases_from_mg(&all_x),
            biogenic_co2_kg: all_x[8] as f64 / 1e6,
            settings: InventorySettings {
                epa_version: o.epa_version.as_str().to_owned(),
                default_currency: o.default_currency.to_string(),
                flights_radiative_forcing: o.flights_with_rf,
            },
            gwp: GwpUse { sets: gwp, mixed },
            supplier_primary_data_share: (total != 0).then(|| share(supplier_mg, total)),
            data_quality_indicators: all_indicators.means(),
            classification: coverage.finish(),
        })
    }
}

/// The GWP set of a factor set and version (AR4 for EPA v1.2; AR5 for EPA v1.3.0 and DESNZ
/// 2024); a supplier's intensity does not state one.
fn gwp_of(set: &str, version: &str) -> &'static str {
    match (set, version) {
        (vcci_core::factors::SET_EPA, v) => {
            vcci_core::EpaVersion::parse(v).map_or("unstated", |v| v.gwp())
        }
        (vcci_core::factors::SET_DESNZ, _) => "AR5",
        _ => "unstated",
    }
}

impl Inventory {
    /// The inventory as CSV: one row per category.
    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "category,name,status,co2e_kg,tco2e,share,transaction_count,supplier_specific_share,average_data_share,spend_based_share,data_quality,factor_sets,dq_technological,dq_temporal,dq_geographical,dq_completeness,dq_reliability,co2_kg,ch4_kg,n2o_kg,other_gases_kg,radiative_forcing_kg,unspecified_gas_kg,hybrid_share,classified_share,needs_review_share\n",
        );
        for c in &self.categories {
            // Empty cells for a category without data (not reported is not zero).
            let num = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
            let m = |want: Method| {
                let share = c.methods.iter().find(|x| x.method == want).map(|x| x.share);
                num(c.co2e_kg.map(|_| share.unwrap_or(0.0)))
            };
            let sets: Vec<String> = c
                .factor_sets
                .iter()
                .map(|s| format!("{} {}", s.set, s.version))
                .collect();
            let ind = c.data_quality_indicators.map_or(",,,,".to_owned(), |d| {
                format!(
                    "{:.2},{:.2},{:.2},{:.2},{:.2}",
                    d.technological, d.temporal, d.geographical, d.completeness, d.reliability
                )
            });
            let gases = c.gases.map_or(",,,,,".to_owned(), |g| {
                format!(
                    "{},{},{},{},{},{}",
                    g.co2, g.ch4, g.n2o, g.other, g.radiative_forcing, g.unspecified
                )
            });
            out += &format!(
                "{},{},{},{},{},{},{},{},{},{},{},{},{ind},{gases},{},{},{}\n",
                c.category,
                crate::model::csvout::field(c.name),
                c.status,
                num(c.co2e_kg),
                num(c.tco2e),
                num(c.share),
                c.transaction_count,
                m(Method::SupplierSpecific),
                m(Method::AverageData),
                m(Method::SpendBased),
                c.data_quality.map_or(String::new(), |q| format!("{q:.2}")),
                crate::model::csvout::field(&sets.join("; ")),
                m(Method::Hybrid),
                num(c.classified_share),
                num(c.needs_review_share)
            );
        }
        // Recorded apart, after the categories: not part of the Scope 3 total.
        let apart = self.scope_1_2_recorded_apart;
        for (scope, kg) in [(1, apart.scope_1_kg), (2, apart.scope_2_kg)] {
            out += &format!(
                ",Scope {scope} of energy and fuel inputs (not in the Scope 3 total),recorded_apart,{kg},{},,,,,,,,,,,,,,,,,,,,,\n",
                kg / 1000.0
            );
        }
        // The choices the figures depend on, in one last row.
        let st = &self.settings;
        let text = format!(
            "GWP {}{}; flights {} radiative forcing; default currency {}; EPA supply chain {}; supplier primary data share {}; classified share {}; needing review {}",
            self.gwp.sets.join(", "),
            if self.gwp.mixed { " (mixed)" } else { "" },
            if st.flights_radiative_forcing {
                "with"
            } else {
                "without"
            },
            st.default_currency,
            st.epa_version,
            self.supplier_primary_data_share
                .map_or("n/a".to_owned(), |s| format!("{s:.4}")),
            self.classification
                .classified_co2e_share()
                .map_or("n/a".to_owned(), |s| format!("{s:.4}")),
            self.classification
                .needs_review_co2e_share()
                .map_or("n/a".to_owned(), |s| format!("{s:.4}"))
        );
        out += &format!(
            ",{},disclosure,,,,,,,,,,,,,,,,,,,,,,,\n",
            crate::model::csvout::field(&text)
        );
        out
    }
}
