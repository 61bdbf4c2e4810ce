//! The shipped factor sets and tables, embedded in the binary and parsed once on first use.
//!
//! Belongs here: loading, looking up and searching factors. Not here: how a line picks one
//! (see `calc`).

pub mod desnz;
pub mod epa;
pub mod tables;

use std::sync::LazyLock;

use serde::Serialize;

pub use desnz::{DesnzFactor, DesnzSet, Scope, Upstream, UpstreamKind};
pub use epa::{EpaFactor, EpaSet, EpaVersion, PriceBasis};
pub use tables::{CpiTable, FxTable, YearSeries, YearValue};

/// Factor-set identifiers used in the API and in results.
pub const SET_EPA: &str = "epa-supply-chain";
pub const SET_DESNZ: &str = "desnz";
/// A supplier's own intensity.
pub const SET_SUPPLIER: &str = "supplier";
/// The factor set of results from a supplier's product footprint (PACT Tech Specs v3).
pub const SET_PACT: &str = "pact";

/// Everything vcci ships: both EPA releases, DESNZ 2024, CPI-U and FX.
#[derive(Debug)]
pub struct Catalog {
    pub epa_1_3_0: EpaSet,
    pub epa_1_2: EpaSet,
    pub desnz: DesnzSet,
    pub cpi: CpiTable,
    pub fx: FxTable,
}

static CATALOG: LazyLock<Catalog> = LazyLock::new(|| Catalog {
    epa_1_3_0: EpaSet::parse(
        EpaVersion::V1_3_0,
        include_str!("../../data/SupplyChainGHGEmissionFactors_v1.3.0_NAICS_CO2e_USD2022.csv"),
        Some(include_str!(
            "../../data/SupplyChainGHGEmissionFactors_v1.3.0_NAICS_byGHG_USD2022.csv"
        )),
    ),
    epa_1_2: EpaSet::parse(
        EpaVersion::V1_2,
        include_str!("../../data/SupplyChainGHGEmissionFactors_v1.2_NAICS_CO2e_USD2021.csv"),
        None,
    ),
    desnz: DesnzSet::parse(include_str!(
        "../../data/desnz_ghg_conversion_factors_2024_v1.1_full_set_tidy.csv"
    )),
    cpi: CpiTable::parse(include_str!("../../data/us_cpi_u_annual.csv")),
    fx: FxTable::parse(include_str!("../../data/fx_annual_avg_per_usd.csv")),
});

/// The shipped catalogue (parsed on first call, ~tens of ms).
pub fn catalog() -> &'static Catalog {
    &CATALOG
}

/// A factor as the API and CLI show it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FactorView {
    pub set: &'static str,
    pub version: &'static str,
    pub key: String,
    pub name: String,
    pub region: String,
    pub year: u16,
    pub unit: String,
    /// kg CO2e per unit.
    pub value: f64,
    pub gwp: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_without_margins: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price_year: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<u8>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gases: Vec<GasView>,
    pub source: &'static str,
}

/// One gas of a factor.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct GasView {
    pub gas: String,
    pub value: f64,
    pub unit: String,
}

pub const EPA_SOURCE: &str =
    "US EPA Supply Chain GHG Emission Factors for US Industries and Commodities (USEEIO)";
pub const DESNZ_SOURCE: &str =
    "UK DESNZ/DEFRA GHG Conversion Factors for Company Reporting 2024 v1.1 (OGL v3.0)";

/// Filters for a factor search; every given filter must match.
#[derive(Clone, Debug, Default)]
pub struct FactorQuery {
    /// Words that must all appear in the key, name or unit (case-insensitive).
    pub text: Option<String>,
    pub set: Option<String>,
    pub region: Option<String>,
    pub year: Option<u16>,
    pub unit: Option<String>,
}

impl Catalog {
    pub fn epa(&self, v: EpaVersion) -> &EpaSet {
        match v {
            EpaVersion::V1_3_0 => &self.epa_1_3_0,
            EpaVersion::V1_2 => &self.epa_1_2,
        }
    }

    pub fn epa_view(&self, v: EpaVersion, i: usize) -> FactorView {
        let set = self.epa(v);
        let f = &set.factors[i];
        FactorView {
            set: SET_EPA,
            version: v.as_str(),
            key: f.naics.to_string(),
            name: f.title.clone(),
            region: "US".into(),
            year: v.data_year(),
            unit: set.unit_label(PriceBasis::Purchaser).into(),
            value: f.with_margins,
            gwp: v.gwp(),
            value_without_margins: Some(f.without_margins),
            price_year: Some(v.price_year()),
            scope: None,
            category: Some(crate::category::Category::from_naics(f.naics).number()),
            gases: set
                .gases_of(i)
                .iter()
                .map(|g| GasView {
                    gas: g.gas.clone(),
                    value: g.with_margins,
                    unit: g.unit.clone(),
                })
                .collect(),
            source: EPA_SOURCE,
        }
    }

    pub fn desnz_view(&self, i: usize) -> FactorView {
        let f = &self.desnz.factors[i];
        let gas = |name: &str, v: Option<f64>| {
            v.map(|value| GasView {
                gas: name.into(),
                value,
                unit: format!("kg CO2e of {name} per {}", f.unit_label),
            })
        };
        FactorView {
            set: SET_DESNZ,
            version: desnz::VERSION,
            key: f.key.clone(),
            name: f.name(),
            region: f.region.clone(),
            year: f.year,
            unit: f.unit.symbol().into(),
            value: f.value,
            gwp: "AR5",
            value_without_margins: None,
            price_year: None,
            scope: Some(f.scope.as_str().to_owned()),
            category: Some(f.category.number()),
            gases: [gas("CO2", f.co2), gas("CH4", f.ch4), gas("N2O", f.n2o)]
                .into_iter()
                .flatten()
                .collect(),
            source: DESNZ_SOURCE,
        }
    }

    /// One factor by set, key and optional version (default: the newest shipped).
    pub fn get(&self, set: &str, key: &str, version: Option<&str>) -> Option<FactorView> {
        match set {
            SET_EPA => {
                let v = match version {
                    Some(v) => EpaVersion::parse(v).ok()?,
                    None => EpaVersion::V1_3_0,
                };
                let n = crate::naics::Naics::parse(key).ok()?;
                self.epa(v).find(n).map(|i| self.epa_view(v, i))
            }
            SET_DESNZ => {
                if version.is_some_and(|v| v != desnz::VERSION) {
                    return None;
                }
                self.desnz.find(key).map(|i| self.desnz_view(i))
            }
            _ => None,
        }
    }

    /// Every factor matching `q`, in a stable order (EPA 1.3.0, EPA 1.2, DESNZ; by key).
    pub fn search<'a>(&'a self, q: &'a FactorQuery) -> impl Iterator<Item = FactorView> + 'a {
        let words: Vec<(String, Option<&'static str>)> = q
            .text
            .as_deref()
            .unwrap_or("")
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|w| !w.is_empty())
            .map(|w| {
                let unit = crate::units::Unit::parse(w).ok().map(|u| u.symbol());
                (w.to_lowercase(), unit)
            })
            .collect();
        let unit = q.unit.as_deref().map(|u| {
            crate::units::Unit::parse(u)
                .map(|u| u.symbol().to_owned())
                .unwrap_or(u.to_owned())
        });
        let want_set = |s: &str| q.set.as_deref().is_none_or(|w| w == s);
        let epa = EpaVersion::all()
            .into_iter()
            .filter(move |_| want_set(SET_EPA))
            .flat_map(move |v| (0..self.epa(v).factors.len()).map(move |i| self.epa_view(v, i)));
        let des = (0..self.desnz.factors.len())
            .filter(move |_| want_set(SET_DESNZ))
            .map(move |i| self.desnz_view(i));
        epa.chain(des).filter(move |f| {
            if let Some(r) = &q.region
                && !f.region.eq_ignore_ascii_case(r)
            {
                return false;
            }
            if q.year.is_some_and(|y| y != f.year) {
                return false;
            }
            if let Some(u) = &unit
                && (f.set == SET_EPA || !f.unit.eq_ignore_ascii_case(u))
            {
                return false;
            }
            if words.is_empty() {
                return true;
            }
            let hay = format!("{} {} {}", f.key, f.name, f.unit).to_lowercase();
            let hay_slug = desnz::slug(&hay);
            words.iter().all(|(w, unit)| {
                hay.contains(w.as_str())
                    || hay_slug.contains(&desnz::slug(w))
                    || unit.is_some_and(|u| f.set == SET_DESNZ && f.unit == u)
            })
        })
    }
}
