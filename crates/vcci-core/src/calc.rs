//! The calculation engine: method selection, the spend pipeline, activity factors with unit
//! conversion, the category and the data-quality score of one line.
//!
//! `calculate` allocates nothing on success, so batches run at memory speed; the audit trail
//! (which factor, which FX rate and CPI ratio, which conversions and fallbacks) is carried in
//! the compact `Emission` and expanded by `Emission::record` when someone looks.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::category::{Category, CategorySource};
use crate::currency::Currency;
use crate::date::Date;
use crate::factors::{Catalog, EpaVersion, PriceBasis, SET_DESNZ, SET_EPA, SET_SUPPLIER};
use crate::gases::GasSplit;
use crate::line::{Field, Line, LineError};
use crate::naics::Naics;
use crate::pact::ProductPcf;
use crate::units::Unit;

/// How a line's emissions were computed, best first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// The supplier's own intensity with a cradle-to-gate boundary (or Scope 1, 2 and
    /// upstream Scope 3).
    SupplierSpecific,
    AverageData,
    /// The supplier's own Scope 1+2 intensity plus the upstream share from the EEIO factor of
    /// its NAICS code.
    Hybrid,
    SpendBased,
}

impl Method {
    pub const ALL: [Method; 4] = [
        Method::SupplierSpecific,
        Method::AverageData,
        Method::Hybrid,
        Method::SpendBased,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Method::SupplierSpecific => "supplier_specific",
            Method::AverageData => "average_data",
            Method::Hybrid => "hybrid",
            Method::SpendBased => "spend_based",
        }
    }
    pub fn parse(s: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

/// What an organization chose for its calculations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CalcConfig {
    pub epa_version: EpaVersion,
    /// The currency of a line that names none (the organization's default; USD unless it
    /// chose another). Using it is recorded as the `currency_assumed` fallback.
    pub default_currency: Currency,
    /// Flights with radiative forcing (DESNZ's recommendation, the default) or without. A
    /// line naming the other variant of its flight gets this one, recorded as the
    /// `rf_setting` fallback.
    pub flights_with_rf: bool,
}

impl Default for CalcConfig {
    fn default() -> Self {
        CalcConfig {
            epa_version: EpaVersion::V1_3_0,
            default_currency: Currency::USD,
            flights_with_rf: true,
        }
    }
}

/// What a supplier's intensity covers (GHG Protocol Scope 3 Technical Guidance, category 1:
/// supplier-specific and hybrid methods).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Boundary {
    /// The supplier's own Scope 1 and 2 only: its upstream is missing (`hybrid`).
    #[serde(rename = "scope_1_2")]
    Scope12,
    /// The supplier's Scope 1, 2 and upstream Scope 3: a company-level cradle-to-gate.
    #[serde(rename = "scope_1_2_3_upstream")]
    Scope123Upstream,
    /// Cradle to the supplier's gate.
    #[serde(rename = "cradle_to_gate")]
    CradleToGate,
}

impl Boundary {
    pub const ALL: [Boundary; 3] = [
        Boundary::Scope12,
        Boundary::Scope123Upstream,
        Boundary::CradleToGate,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Boundary::Scope12 => "scope_1_2",
            Boundary::Scope123Upstream => "scope_1_2_3_upstream",
            Boundary::CradleToGate => "cradle_to_gate",
        }
    }
    pub fn parse(s: &str) -> Option<Boundary> {
        Boundary::ALL.into_iter().find(|b| b.as_str() == s)
    }
}

/// One value of a supplier's intensity history.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SupplierIntensity {
    /// The year it is for, whose USD it is per. `None`: given without a year, it serves
    /// every year, per USD of the line's own year (the `intensity_year_assumed` fallback).
    pub year: Option<u16>,
    pub kg_per_usd: f64,
    pub data: SupplierData,
}

/// What is known of a supplier's intensity beyond its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SupplierData {
    pub boundary: Boundary,
    pub verified: bool,
    /// Whether the supplier stated the boundary. An intensity given without one is read as
    /// cradle-to-gate, and its results say so.
    pub boundary_stated: bool,
}

impl Default for SupplierData {
    /// An intensity as every file gave it before boundaries: cradle-to-gate, not stated,
    /// not verified.
    fn default() -> Self {
        SupplierData {
            boundary: Boundary::CradleToGate,
            verified: false,
            boundary_stated: false,
        }
    }
}

impl SupplierData {
    /// As one integer, for storage: the boundary (1–3), verified (4), stated (8).
    pub fn pack(&self) -> u16 {
        let b = match self.boundary {
            Boundary::Scope12 => 1,
            Boundary::Scope123Upstream => 2,
            Boundary::CradleToGate => 3,
        };
        b | u16::from(self.verified) << 2 | u16::from(self.boundary_stated) << 3
    }

    pub fn unpack(v: u16) -> Option<SupplierData> {
        let boundary = match v & 3 {
            1 => Boundary::Scope12,
            2 => Boundary::Scope123Upstream,
            3 => Boundary::CradleToGate,
            _ => return None,
        };
        Some(SupplierData {
            boundary,
            verified: v & 4 != 0,
            boundary_stated: v & 8 != 0,
        })
    }

    /// The method a result from this intensity has.
    pub fn method(&self) -> Method {
        match self.boundary {
            Boundary::Scope12 => Method::Hybrid,
            _ => Method::SupplierSpecific,
        }
    }
}

/// What the engine needs to know of a line's supplier.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SupplierProfile {
    pub naics: Option<Naics>,
    /// Where the supplier operates (for the geographical data-quality indicator).
    pub country: Option<String>,
    /// Its intensity history: at most one value per year and one undated value.
    pub intensities: Vec<SupplierIntensity>,
    /// Its product footprints (PACT), Active and Deprecated; only Active ones are used.
    pub pcfs: Footprints,
}

/// A supplier's product footprints, with an index by product id (a supplier may have
/// thousands; a line finds its product's in one lookup).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Footprints {
    list: Vec<ProductPcf>,
    by_product: std::collections::HashMap<String, Vec<u32>>,
}

impl Footprints {
    pub fn new(list: Vec<ProductPcf>) -> Footprints {
        let mut by_product: std::collections::HashMap<String, Vec<u32>> =
            std::collections::HashMap::new();
        for (i, p) in list.iter().enumerate() {
            for id in &p.product_ids {
                by_product.entry(id.clone()).or_default().push(i as u32);
            }
        }
        Footprints { list, by_product }
    }
    pub fn get(&self, slot: usize) -> Option<&ProductPcf> {
        self.list.get(slot)
    }
    pub fn len(&self) -> usize {
        self.list.len()
    }
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
    pub fn iter(&self) -> std::slice::Iter<'_, ProductPcf> {
        self.list.iter()
    }
    /// The slots of the footprints of `product`.
    pub fn of(&self, product: &str) -> &[u32] {
        self.by_product.get(product).map_or(&[], Vec::as_slice)
    }
}

impl std::ops::Index<usize> for Footprints {
    type Output = ProductPcf;
    fn index(&self, slot: usize) -> &ProductPcf {
        &self.list[slot]
    }
}

impl SupplierProfile {
    /// A profile with one intensity (the shape of every supplier before histories).
    pub fn with_intensity(naics: Option<Naics>, kg_per_usd: f64, year: Option<u16>) -> Self {
        SupplierProfile {
            naics,
            country: None,
            intensities: vec![SupplierIntensity {
                year,
                kg_per_usd,
                data: SupplierData::default(),
            }],
            pcfs: Footprints::default(),
        }
    }

    /// The footprint a line of `product` dated `day` uses: an Active one valid on the day
    /// (the most recently created if several are), else the Active one whose validity is
    /// nearest (a temporal fallback: `true`). Deprecated footprints are never used.
    pub fn pcf_for(&self, product: &str, day: Date) -> Option<(usize, bool)> {
        let mut best: Option<(usize, i64, i64)> = None;
        for &i in self.pcfs.of(product) {
            let i = i as usize;
            let p = &self.pcfs[i];
            if p.status != crate::pact::Status::Active {
                continue;
            }
            let d = p.distance(day);
            let better = best.is_none_or(|(bi, bd, bc)| {
                d < bd
                    || (d == bd && (p.created > bc || (p.created == bc && p.id < self.pcfs[bi].id)))
            });
            if better {
                best = Some((i, d, p.created));
            }
        }
        best.map(|(i, d, _)| (i, d > 0))
    }

    /// The value a line of `year` uses, with the fallback bits that choice takes: the
    /// value of its own year; else the undated one (`INTENSITY_YEAR_ASSUMED`); else the
    /// nearest other year, the earlier on a tie (`INTENSITY_OTHER_YEAR`). The undated
    /// value comes before another year's so that adding a year's value never changes the
    /// lines an undated value served.
    #[inline]
    pub fn intensity_for(&self, year: u16) -> Option<(&SupplierIntensity, u8)> {
        let mut undated = None;
        let mut nearest: Option<&SupplierIntensity> = None;
        for i in &self.intensities {
            match i.year {
                Some(y) if y == year => return Some((i, 0)),
                None => undated = Some(i),
                Some(y) => {
                    let better = nearest.is_none_or(|n| {
                        let ny = n.year.unwrap_or_default();
                        let (d, nd) = (y.abs_diff(year), ny.abs_diff(year));
                        d < nd || (d == nd && y < ny)
                    });
                    if better {
                        nearest = Some(i);
                    }
                }
            }
        }
        undated
            .map(|i| (i, fallback::INTENSITY_YEAR_ASSUMED))
            .or(nearest.map(|i| (i, fallback::INTENSITY_OTHER_YEAR)))
    }
}

/// Fallbacks taken, as bits.
pub mod fallback {
    /// No FX rate for the spend year yet: the table's last year was used.
    pub const FX_YEAR: u8 = 1;
    /// No CPI for the spend year yet: the table's last year was used.
    pub const CPI_YEAR: u8 = 2;
    /// No CPI for the supplier's intensity year yet: the table's last year was used.
    pub const CPI_INTENSITY_YEAR: u8 = 4;
    /// The line had no NAICS code: the supplier's was used.
    pub const NAICS_FROM_SUPPLIER: u8 = 8;
    /// The supplier gave no intensity year: the spend year was assumed.
    pub const INTENSITY_YEAR_ASSUMED: u8 = 16;
    /// The line gave no currency: the organization's default currency was assumed.
    pub const CURRENCY_ASSUMED: u8 = 32;
    /// The line named a flight factor with (or without) radiative forcing against the
    /// organization's choice: the same flight's factor of its choice was used.
    pub const RF_SETTING: u8 = 64;
    /// The supplier has no intensity for the line's year: another year's was used.
    pub const INTENSITY_OTHER_YEAR: u8 = 128;
    /// Bits that lower the temporal data-quality indicator by one each (a table year
    /// substituted for the one missing, another year's supplier value).
    pub const QUALITY_PENALTY: u8 = FX_YEAR | CPI_YEAR | CPI_INTENSITY_YEAR | INTENSITY_OTHER_YEAR;
}

/// The five data-quality indicators of a result (GHG Protocol Scope 3 Standard, chapter 7,
/// table 7.6), each 1 (very good) to 5 (very poor). The rules are in docs/CALCULATION.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataQuality {
    /// How specific the method and factor are to the activity.
    pub technological: u8,
    /// Years between the factor's data and the activity, and table years substituted.
    pub temporal: u8,
    /// Whether the factor's region is where the activity took place.
    pub geographical: u8,
    /// Gaps of the line filled by an assumption.
    pub completeness: u8,
    /// Verified or not.
    pub reliability: u8,
}

impl DataQuality {
    /// The aggregate score: the mean of the five rounded up, never better than the
    /// technological indicator (a spend-based result stays a 4 however recent and local its
    /// factor). 1 only when all five are 1.
    pub fn aggregate(&self) -> u8 {
        let sum = u16::from(self.technological)
            + u16::from(self.temporal)
            + u16::from(self.geographical)
            + u16::from(self.completeness)
            + u16::from(self.reliability);
        (sum.div_ceil(5) as u8).max(self.technological)
    }

    /// The five as one integer (3 bits each), for storage.
    pub fn pack(&self) -> u16 {
        u16::from(self.technological)
            | u16::from(self.temporal) << 3
            | u16::from(self.geographical) << 6
            | u16::from(self.completeness) << 9
            | u16::from(self.reliability) << 12
    }

    pub fn unpack(v: u16) -> DataQuality {
        let at = |shift: u16| ((v >> shift) & 7) as u8;
        DataQuality {
            technological: at(0),
            temporal: at(3),
            geographical: at(6),
            completeness: at(9),
            reliability: at(12),
        }
    }
}

/// Country names and codes compared for the geographical indicator: ISO alpha-2 and alpha-3
/// codes and English names of the factor sets' regions are one country.
fn same_country(a: &str, b: &str) -> bool {
    fn norm(s: &str) -> String {
        let u = s.trim().to_ascii_uppercase();
        match u.as_str() {
            "US" | "USA" | "UNITED STATES" | "UNITED STATES OF AMERICA" => "US".into(),
            "UK" | "GB" | "GBR" | "UNITED KINGDOM" | "GREAT BRITAIN" | "ENGLAND" | "SCOTLAND"
            | "WALES" | "NORTHERN IRELAND" => "UK".into(),
            _ => u,
        }
    }
    norm(a) == norm(b)
}

/// What the indicators are computed from.
struct Assessment<'a> {
    method: Method,
    fallbacks: u8,
    factor_year: u16,
    activity_year: u16,
    /// The factor's region; `None` for the supplier's own data (its own geography).
    factor_region: Option<&'a str>,
    country: Option<&'a str>,
    /// The supplier's intensity, for supplier-specific and hybrid results.
    supplier: Option<SupplierData>,
    /// Classification gave the code or category: `Some(needs_review)`.
    classified: Option<bool>,
}

impl Assessment<'_> {
    #[inline]
    fn score(&self) -> DataQuality {
        let boundary = self.supplier.map(|s| s.boundary);
        let technological = match (self.method, boundary) {
            (Method::SupplierSpecific, Some(Boundary::Scope123Upstream)) => 2,
            (Method::SupplierSpecific, _) => 1,
            (Method::AverageData, _) => 2,
            // Supplier data for part of the footprint, EEIO sector averages for the rest.
            (Method::Hybrid, _) => 3,
            (Method::SpendBased, _) => 4,
        };
        let gap = self.activity_year.abs_diff(self.factor_year);
        let age = match gap {
            0..=2 => 1,
            3..=5 => 2,
            6..=9 => 3,
            10..=14 => 4,
            _ => 5,
        };
        let temporal =
            (age + (self.fallbacks & fallback::QUALITY_PENALTY).count_ones() as u8).min(5);
        let geographical = match (self.factor_region, self.country) {
            (None, _) => 1,
            (Some(_), None) => 3,
            (Some(r), Some(c)) if same_country(r, c) => 1,
            (Some(_), Some(_)) => 4,
        };
        let assumed = fallback::CURRENCY_ASSUMED
            | fallback::NAICS_FROM_SUPPLIER
            | fallback::INTENSITY_YEAR_ASSUMED;
        // A classified code is an assumption; one flagged for review, a weaker one.
        let classification = match self.classified {
            None => 0,
            Some(false) => 1,
            Some(true) => 2,
        };
        let completeness =
            (1 + (self.fallbacks & assumed).count_ones() as u8 + classification).min(5);
        let verified = self.supplier.is_some_and(|s| s.verified);
        let reliability = match (self.method, verified) {
            (Method::SupplierSpecific, true) => 1,
            // Verified supplier data with a published national dataset's share.
            (Method::Hybrid, true) => 2,
            (Method::SupplierSpecific | Method::Hybrid, false) => 3,
            // National datasets, published and reviewed (US EPA, UK DESNZ).
            _ => 2,
        };
        DataQuality {
            technological,
            temporal,
            geographical,
            completeness,
            reliability,
        }
    }
}

/// The money side of a spend-based or supplier-specific result.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpendConversion {
    pub amount: f64,
    pub currency: Currency,
    /// Units of `currency` per USD, for `fx_year`.
    pub fx_rate: f64,
    pub fx_year: u16,
    /// `amount / fx_rate`: USD of the spend year.
    pub usd: f64,
    /// CPI year used for the spend (the spend year, or the table's last year).
    pub cpi_from_year: u16,
    /// The factor's price year.
    pub cpi_to_year: u16,
    /// `cpi(cpi_to_year) / cpi(cpi_from_year)`.
    pub cpi_ratio: f64,
    /// `usd × cpi_ratio`: USD of the factor's price year.
    pub usd_price_year: f64,
}

/// A quantity converted to the factor's unit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UnitConversion {
    pub quantity: f64,
    pub from: Unit,
    pub to: Unit,
    pub factor: f64,
    pub converted: f64,
}

/// Which factor produced a result.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FactorRef {
    Epa {
        version: EpaVersion,
        index: u32,
        basis: PriceBasis,
    },
    Desnz {
        index: u32,
    },
    /// The supplier's own intensity, in USD of `year`.
    Supplier {
        year: u16,
    },
    /// A product footprint of the supplier (PACT): the `slot`th of its profile's `pcfs`,
    /// used outside its validity period if `outside_validity`.
    Pcf {
        slot: u32,
        outside_validity: bool,
    },
}

/// A calculated line, compact and allocation-free.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Emission {
    pub co2e_kg: f64,
    pub category: Category,
    pub category_source: CategorySource,
    pub method: Method,
    /// The aggregate of `dq`.
    pub data_quality: u8,
    pub dq: DataQuality,
    pub factor: FactorRef,
    /// kg CO2e per factor unit.
    pub factor_value: f64,
    pub spend: Option<SpendConversion>,
    pub unit: Option<UnitConversion>,
    pub fallbacks: u8,
    /// An energy or fuel input (a Scope 1 or 2 factor): the line's own Scope 1 or 2
    /// emissions, recorded apart for reference and never part of `co2e_kg` or of any
    /// Scope 3 total. `co2e_kg` is then its upstream emissions (category 3), the sum over
    /// the factor's `upstream` factors.
    pub scope_1_2_kg: Option<f64>,
    /// A supplier-specific or hybrid result: what is known of the intensity used.
    pub supplier: Option<SupplierData>,
    /// A hybrid result: the EEIO factor of its upstream share (`co2e_kg` is the supplier's
    /// Scope 1+2 share, `spend.usd_price_year × factor_value`, plus the upstream share;
    /// `hybrid_upstream` recomputes the parts).
    pub hybrid: Option<HybridRef>,
    /// The line's classification gave the code or the category the result used.
    pub classified: bool,
}

/// The EEIO factor of a hybrid result's upstream share (kept small: the parts are
/// recomputed from it and the spend when someone looks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HybridRef {
    pub version: EpaVersion,
    pub basis: PriceBasis,
    pub index: u32,
}

/// The upstream share of a hybrid result: the EEIO factor of the supplier's NAICS code gives
/// the sector's cradle-to-gate emissions of the spend, of which the supplier's own Scope 1+2
/// takes the place of the same amount; the rest, never below zero, is the upstream share.
/// The EPA data has no split of a sector's factor into its own (direct) and upstream
/// emissions, so this is the split it allows; docs/CALCULATION.md gives the reasoning.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HybridUpstream {
    pub version: EpaVersion,
    pub index: u32,
    pub basis: PriceBasis,
    /// kg CO2e per USD of the EEIO factor's price year.
    pub factor_value: f64,
    /// CPI of the factor's price year / CPI of the spend's year.
    pub cpi_ratio: f64,
    /// The spend in USD of the factor's price year.
    pub usd_price_year: f64,
    /// `usd_price_year × factor_value`.
    pub cradle_to_gate_kg: f64,
    /// `max(0, cradle_to_gate_kg − the supplier's Scope 1+2 kg)`.
    pub upstream_kg: f64,
}

/// The upstream share of a hybrid result for `usd` (USD of the spend year, whose CPI year
/// is `cpi_from_year`) when the supplier's Scope 1+2 share is `supplier_kg`. The same
/// operations whether calculating or reading back, so the parts are the same to the bit.
pub fn hybrid_upstream(
    cat: &Catalog,
    version: EpaVersion,
    index: u32,
    basis: PriceBasis,
    usd: f64,
    cpi_from_year: u16,
    supplier_kg: f64,
) -> Option<HybridUpstream> {
    let factor_value = cat.epa(version).factors.get(index as usize)?.value(basis);
    let from = cat.cpi.series.get(cpi_from_year).ok()?;
    let to = cat.cpi.series.get(version.price_year()).ok()?;
    let cpi_ratio = to.value / from.value;
    let usd_price_year = usd * cpi_ratio;
    let cradle_to_gate_kg = usd_price_year * factor_value;
    Some(HybridUpstream {
        version,
        index,
        basis,
        factor_value,
        cpi_ratio,
        usd_price_year,
        cradle_to_gate_kg,
        upstream_kg: (cradle_to_gate_kg - supplier_kg).max(0.0),
    })
}

/// The hybrid part of a line at supplier `s`: the EEIO factor of the supplier's NAICS code
/// (the line's when the supplier has none).
fn hybrid_part(
    cat: &Catalog,
    cfg: CalcConfig,
    line: &Line,
    s: &SupplierProfile,
    conv: &SpendConversion,
    supplier_kg: f64,
) -> Result<HybridUpstream, LineError> {
    let naics = s
        .naics
        .or(line.naics)
        .or(classified_code(line))
        .ok_or_else(|| {
            LineError::new(
                Field::NaicsCode,
                "naics_required",
                "the supplier's intensity covers its Scope 1+2 only (hybrid): the upstream share \
             needs the supplier's naics_code (or the line's)",
            )
        })?;
    let v = cfg.epa_version;
    let index = cat.epa(v).find(naics).ok_or_else(|| {
        LineError::new(
            Field::NaicsCode,
            "unknown_naics",
            format!("NAICS {naics} has no factor in {SET_EPA} {}", v.as_str()),
        )
    })?;
    hybrid_upstream(
        cat,
        v,
        index as u32,
        line.price_basis,
        conv.usd,
        conv.cpi_from_year,
        supplier_kg,
    )
    .ok_or_else(|| {
        LineError::new(
            Field::Date,
            "year_before_table",
            format!("no CPI-U for {}", conv.cpi_from_year),
        )
    })
}

fn spend_year_err(field: Field, what: &str, year: u16, first: u16) -> LineError {
    LineError::new(
        field,
        "year_before_table",
        format!("{what} starts in {first}; year {year} is before it"),
    )
}

/// `amount` of `currency` spent in `spend_year`, in USD of `price_year`.
fn convert_spend(
    cat: &Catalog,
    amount: f64,
    currency: Currency,
    spend_year: u16,
    price_year: u16,
    price_year_field: Field,
    fallbacks: &mut u8,
) -> Result<SpendConversion, LineError> {
    let (fx_rate, fx_year) = if currency == Currency::USD {
        (1.0, spend_year)
    } else {
        let series = cat.fx.series(currency).ok_or_else(|| {
            LineError::new(
                Field::Currency,
                "no_fx_rate",
                format!(
                    "no exchange rate for {currency}; rates exist for USD and {}",
                    fx_list(cat)
                ),
            )
        })?;
        let v = series.get(spend_year).map_err(|first| {
            spend_year_err(
                Field::Date,
                &format!("the {currency} FX table"),
                spend_year,
                first,
            )
        })?;
        if v.fallback {
            *fallbacks |= fallback::FX_YEAR;
        }
        (v.value, v.year)
    };
    let from = cat
        .cpi
        .series
        .get(spend_year)
        .map_err(|first| spend_year_err(Field::Date, "the CPI-U table", spend_year, first))?;
    if from.fallback {
        *fallbacks |= fallback::CPI_YEAR;
    }
    let to =
        cat.cpi.series.get(price_year).map_err(|first| {
            spend_year_err(price_year_field, "the CPI-U table", price_year, first)
        })?;
    if to.fallback {
        *fallbacks |= fallback::CPI_INTENSITY_YEAR;
    }
    let usd = amount / fx_rate;
    let cpi_ratio = to.value / from.value;
    Ok(SpendConversion {
        amount,
        currency,
        fx_rate,
        fx_year,
        usd,
        cpi_from_year: from.year,
        cpi_to_year: to.year,
        cpi_ratio,
        usd_price_year: usd * cpi_ratio,
    })
}

fn fx_list(cat: &Catalog) -> String {
    cat.fx
        .currencies()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A `capex` line naming another category than 2 (the category it names). Kept to a byte so
/// that the success path returns in registers; the error text is made only on failure.
#[derive(Clone, Copy, Debug)]
struct CapexContradiction(u8);

impl From<CapexContradiction> for LineError {
    fn from(c: CapexContradiction) -> LineError {
        LineError::new(
            Field::Category,
            "capex_category",
            format!(
                "capex=true makes a line capital goods (category 2); category {} contradicts it",
                c.0
            ),
        )
    }
}

/// The line's own category wins, then `capex` (capital goods), then what `derived` gives
/// (the NAICS code's or the activity factor's). A capital purchase whose line names another
/// category is an error: the two fields contradict each other.
#[inline]
fn category_with(
    line: &Line,
    derived: impl FnOnce() -> (Category, CategorySource),
) -> Result<(Category, CategorySource), CapexContradiction> {
    match (line.category, line.capex) {
        (Some(c), true) if c != Category::CAPITAL_GOODS => Err(CapexContradiction(c.number())),
        (Some(c), _) => Ok((c, CategorySource::Line)),
        (None, true) => Ok((Category::CAPITAL_GOODS, CategorySource::Capex)),
        (None, false) => Ok(derived()),
    }
}

#[inline]
fn category_of(
    line: &Line,
    naics: Option<Naics>,
) -> Result<(Category, CategorySource), CapexContradiction> {
    category_with(line, || match naics {
        Some(n) => (Category::from_naics(n), CategorySource::Naics),
        None => match &line.classification {
            Some(c) => (c.label.category, CategorySource::Classification),
            None => (Category::PURCHASED_GOODS, CategorySource::Default),
        },
    })
}

/// Whether the line's classification is flagged for review.
#[inline]
fn review(line: &Line) -> bool {
    line.classification.as_ref().is_some_and(|c| c.needs_review)
}

/// The code classification gave a line (used when neither the line nor its supplier has one).
#[inline]
fn classified_code(line: &Line) -> Option<Naics> {
    line.classification.as_ref().map(|c| c.label.naics)
}

/// Whether classification gives a result its code or category: neither the line nor the
/// supplier has a code (`code`: theirs), and the line has a classification.
#[inline]
fn uses_classification(line: &Line, code: Option<Naics>) -> bool {
    code.is_none() && line.classification.is_some()
}

/// Calculates one line. The best available method wins: an activity factor (needs quantity,
/// unit and activity_id), then the supplier's own intensity (needs an amount), then an EPA
/// spend factor (needs an amount and a NAICS code, the line's or the supplier's).
pub fn calculate(
    cat: &Catalog,
    cfg: CalcConfig,
    line: &Line,
    supplier: Option<&SupplierProfile>,
) -> Result<Emission, LineError> {
    let date = line
        .date
        .ok_or_else(|| LineError::new(Field::Date, "required", "is required (YYYY-MM-DD)"))?;
    let year = date.year();
    let mut fb = 0u8;
    let currency = line.currency.unwrap_or(cfg.default_currency);
    let country = line
        .country
        .as_deref()
        .or(supplier.and_then(|s| s.country.as_deref()));
    // Recorded where the spend is converted (supplier-specific and spend-based results).
    let currency_assumed = if line.currency.is_none() {
        fallback::CURRENCY_ASSUMED
    } else {
        0
    };

    // 0. The supplier's product footprint (PACT): product-level supplier-specific data comes
    // first (docs/CALCULATION.md, the method order).
    if let (Some(product), Some(s)) = (line.product_id.as_deref(), supplier)
        && let Some((slot, outside)) = s.pcf_for(product, date)
    {
        return pcf_result(line, s, slot, outside, year);
    }

    // 1. Average-data (activity factor × quantity): a line with physical data is calculated
    // from it, even at a supplier with an intensity (see docs/CALCULATION.md).
    if let Some(key) = line.activity_id.as_deref() {
        let Some(quantity) = line.quantity else {
            return Err(LineError::new(
                Field::Quantity,
                "quantity_required",
                "activity_id is set but quantity is missing",
            ));
        };
        let Some(unit) = line.unit else {
            return Err(LineError::new(
                Field::Unit,
                "unit_required",
                "quantity needs a unit",
            ));
        };
        let mut index = cat.desnz.find(key).ok_or_else(|| {
            LineError::new(
                Field::ActivityId,
                "unknown_activity",
                format!(
                    "'{key}' is not a factor key of desnz {}; search with `vcci factors search`",
                    crate::factors::desnz::VERSION
                ),
            )
        })?;
        if let Some((with_rf, pair)) = cat.desnz.factors[index].rf
            && with_rf != cfg.flights_with_rf
        {
            index = pair as usize;
            fb |= fallback::RF_SETTING;
        }
        let f = &cat.desnz.factors[index];
        let factor = unit.factor_to(f.unit).map_err(|e| {
            LineError::new(
                Field::Unit,
                "incompatible_unit",
                format!("{e}; factor {key} is per {}", f.unit),
            )
        })?;
        let converted = quantity * factor;
        let unit = Some(UnitConversion {
            quantity,
            from: unit,
            to: f.unit,
            factor,
            converted,
        });
        let factor = FactorRef::Desnz {
            index: index as u32,
        };
        let dq = Assessment {
            method: Method::AverageData,
            fallbacks: fb,
            factor_year: f.year,
            activity_year: year,
            factor_region: Some(&f.region),
            country,
            supplier: None,
            classified: None,
        }
        .score();
        if let Some(own) = f.scope.own() {
            return energy_input(cat, line, f, own, converted, factor, unit, fb, dq);
        }
        let (category, category_source) =
            category_with(line, || (f.category, CategorySource::Activity))?;
        // A flight adds its WTT, in the flight's category.
        let upstream: f64 = f
            .upstream
            .iter()
            .map(|u| converted * cat.desnz.factors[u.index as usize].value)
            .sum();
        return Ok(Emission {
            co2e_kg: converted * f.value + upstream,
            category,
            category_source,
            method: Method::AverageData,
            data_quality: dq.aggregate(),
            dq,
            factor,
            factor_value: f.value,
            spend: None,
            unit,
            fallbacks: fb,
            scope_1_2_kg: None,
            supplier: None,
            hybrid: None,
            classified: false,
        });
    }

    // 2. Supplier company data: the supplier's own intensity (kg CO2e per USD) for the
    // line's year, else another year's (a recorded fallback).
    if let (Some(amount), Some(s)) = (line.amount, supplier)
        && let Some((own, pick)) = s.intensity_for(year)
    {
        fb |= pick | currency_assumed;
        let price_year = own.year.unwrap_or(year);
        let conv = convert_spend(
            cat,
            amount,
            currency,
            year,
            price_year,
            Field::SupplierId,
            &mut fb,
        )?;
        let naics = line.naics.or(s.naics);
        let classified = uses_classification(line, naics);
        let (category, category_source) = category_of(line, naics)?;
        let supplier_kg = conv.usd_price_year * own.kg_per_usd;
        let method = own.data.method();
        let (hybrid, factor_year, factor_region) = if method == Method::Hybrid {
            let h = hybrid_part(cat, cfg, line, s, &conv, supplier_kg)?;
            // The temporal indicator counts the older of the two parts.
            let eeio_year = cfg.epa_version.data_year();
            let farther = if eeio_year.abs_diff(year) > price_year.abs_diff(year) {
                eeio_year
            } else {
                price_year
            };
            (Some(h), farther, Some("US"))
        } else {
            (None, price_year, None)
        };
        let dq = Assessment {
            method,
            fallbacks: fb,
            factor_year,
            activity_year: year,
            factor_region,
            country,
            supplier: Some(own.data),
            // The code gives a hybrid's EEIO factor; otherwise only the category.
            classified: (classified && method == Method::Hybrid).then(|| review(line)),
        }
        .score();
        return Ok(Emission {
            co2e_kg: supplier_kg + hybrid.map_or(0.0, |h| h.upstream_kg),
            category,
            category_source,
            method,
            data_quality: dq.aggregate(),
            dq,
            factor: FactorRef::Supplier { year: price_year },
            factor_value: own.kg_per_usd,
            spend: Some(conv),
            unit: None,
            fallbacks: fb,
            scope_1_2_kg: None,
            supplier: Some(own.data),
            hybrid: hybrid.map(|h| HybridRef {
                version: h.version,
                basis: h.basis,
                index: h.index,
            }),
            classified,
        });
    }

    // 3. Spend-based.
    let Some(amount) = line.amount else {
        return Err(
            if let (Some(_), Some(product)) = (line.quantity, &line.product_id) {
                LineError::new(
                    Field::ProductId,
                    "no_product_footprint",
                    format!(
                        "the supplier has no Active footprint of {product}, and the line has no \
                     activity_id or amount to fall back on"
                    ),
                )
            } else if line.quantity.is_some() {
                LineError::new(
                    Field::ActivityId,
                    "activity_required",
                    "a quantity needs an activity_id (a factor key) to be calculated",
                )
            } else {
                LineError::new(
                    Field::Amount,
                    "amount_or_quantity_required",
                    "a line needs an amount (spend) or a quantity (activity)",
                )
            },
        );
    };
    let own_code = line.naics.or(supplier.and_then(|s| s.naics));
    let classified = uses_classification(line, own_code);
    let naics = match (
        line.naics,
        supplier.and_then(|s| s.naics),
        classified_code(line),
    ) {
        (Some(n), _, _) => n,
        (None, Some(n), _) => {
            fb |= fallback::NAICS_FROM_SUPPLIER;
            n
        }
        (None, None, Some(n)) => n,
        (None, None, None) => {
            return Err(LineError::new(
                Field::NaicsCode,
                "naics_required",
                "a spend line needs a naics_code (on the line or on its supplier)",
            ));
        }
    };
    let v = cfg.epa_version;
    let set = cat.epa(v);
    let index = set.find(naics).ok_or_else(|| {
        LineError::new(
            Field::NaicsCode,
            "unknown_naics",
            format!("NAICS {naics} has no factor in {SET_EPA} {}", v.as_str()),
        )
    })?;
    fb |= currency_assumed;
    let conv = convert_spend(
        cat,
        amount,
        currency,
        year,
        v.price_year(),
        Field::Date,
        &mut fb,
    )?;
    let ef = set.factors[index].value(line.price_basis);
    let (category, category_source) =
        category_of(line, if classified { None } else { Some(naics) })?;
    let dq = Assessment {
        method: Method::SpendBased,
        fallbacks: fb,
        factor_year: v.data_year(),
        activity_year: year,
        factor_region: Some("US"),
        country,
        supplier: None,
        classified: classified.then(|| review(line)),
    }
    .score();
    Ok(Emission {
        co2e_kg: conv.usd_price_year * ef,
        category,
        category_source,
        method: Method::SpendBased,
        data_quality: dq.aggregate(),
        dq,
        factor: FactorRef::Epa {
            version: v,
            index: index as u32,
            basis: line.price_basis,
        },
        factor_value: ef,
        spend: Some(conv),
        unit: None,
        fallbacks: fb,
        scope_1_2_kg: None,
        supplier: None,
        hybrid: None,
        classified,
    })
}

/// A line calculated from its supplier's product footprint: the quantity in the declared
/// unit × `pcfExcludingBiogenicUptake` ÷ `declaredUnitAmount`. Biogenic uptake stays out of
/// the result (it is shown apart in the trail).
fn pcf_result(
    line: &Line,
    s: &SupplierProfile,
    slot: usize,
    outside_validity: bool,
    year: u16,
) -> Result<Emission, LineError> {
    let p = &s.pcfs[slot];
    let per = || {
        format!(
            "the supplier's footprint {} of this product is per {} {}",
            p.id, p.declared_amount_text, p.declared_unit_name
        )
    };
    let Some(quantity) = line.quantity else {
        return Err(LineError::new(
            Field::Quantity,
            "quantity_required",
            format!("{}; the line needs a quantity and unit", per()),
        ));
    };
    let Some(unit) = line.unit else {
        return Err(LineError::new(
            Field::Unit,
            "unit_required",
            format!("{}; the quantity needs a unit", per()),
        ));
    };
    let factor = unit
        .factor_to(p.declared_unit)
        .map_err(|e| LineError::new(Field::Unit, "incompatible_unit", format!("{e}; {}", per())))?;
    let converted = quantity * factor;
    let kg_per_unit = p.kg_per_unit();
    let (category, category_source) = category_of(line, line.naics.or(s.naics))?;
    let dq = pcf_quality(p, year, outside_validity);
    Ok(Emission {
        co2e_kg: converted * kg_per_unit,
        category,
        category_source,
        method: Method::SupplierSpecific,
        data_quality: dq.aggregate(),
        dq,
        factor: FactorRef::Pcf {
            slot: slot as u32,
            outside_validity,
        },
        factor_value: kg_per_unit,
        spend: None,
        unit: Some(UnitConversion {
            quantity,
            from: unit,
            to: p.declared_unit,
            factor,
            converted,
        }),
        fallbacks: 0,
        scope_1_2_kg: None,
        supplier: None,
        hybrid: None,
        classified: uses_classification(line, line.naics.or(s.naics)),
    })
}

/// The data-quality indicators of a result from a product footprint (docs/CALCULATION.md):
/// the footprint's own DQRs where it gives them (rounded half up), else 1 for technology
/// and geography (the supplier's own product data) and the reference period's age for
/// time; one temporal step more outside the validity period; completeness from the primary
/// data share; reliability 1 when verified, else 3.
pub fn pcf_quality(p: &ProductPcf, year: u16, outside_validity: bool) -> DataQuality {
    let rate = |v: f64| (v + 0.5).floor().clamp(1.0, 5.0) as u8;
    let (technological, geographical, temporal) = match p.dqi {
        Some([t, g, tm]) => (rate(t), rate(g), rate(tm)),
        None => {
            let ref_year = crate::pact::year_of(p.reference_period.1 - 1);
            let age = match year.abs_diff(ref_year) {
                0..=2 => 1,
                3..=5 => 2,
                6..=9 => 3,
                10..=14 => 4,
                _ => 5,
            };
            (1, 1, age)
        }
    };
    let completeness = match p.primary_data_share {
        Some(v) if v >= 80.0 => 1,
        Some(v) if v >= 50.0 => 2,
        Some(v) if v >= 20.0 => 3,
        Some(v) if v > 0.0 => 4,
        Some(_) => 5,
        None => 3,
    };
    DataQuality {
        technological,
        temporal: (temporal + u8::from(outside_validity)).min(5),
        geographical,
        completeness,
        reliability: if p.verified { 1 } else { 3 },
    }
}

/// An energy or fuel input: a line whose activity factor is Scope 1 or 2 (fuels burnt,
/// electricity, heat and steam, owned vehicles). Its own emissions are the reporting
/// company's Scope 1 or 2, recorded apart; what the Scope 3 inventory counts is its
/// category 3 share, from the factor's upstream factors (WTT, T&D losses, WTT of T&D
/// losses) applied to the same converted quantity. Without an upstream factor the line is
/// rejected: booking it in full would count Scope 1/2 as Scope 3, and zero would hide it.
#[allow(clippy::too_many_arguments)]
fn energy_input(
    cat: &Catalog,
    line: &Line,
    f: &crate::factors::DesnzFactor,
    own: u8,
    converted: f64,
    factor: FactorRef,
    unit: Option<UnitConversion>,
    fb: u8,
    dq: DataQuality,
) -> Result<Emission, LineError> {
    if line.capex {
        return Err(LineError::new(
            Field::Capex,
            "scope_1_2_factor",
            format!(
                "'{}' is a Scope {own} factor ({}): energy and fuel are not capital goods; \
                 their Scope 3 share is category 3",
                f.key, f.sheet
            ),
        ));
    }
    if let Some(c) = line.category
        && c != Category::FUEL_ENERGY
    {
        return Err(LineError::new(
            Field::Category,
            "scope_1_2_factor",
            format!(
                "'{}' is a Scope {own} factor ({}): its Scope 3 share is category 3 \
                 (fuel- and energy-related activities), not {}; for energy of leased assets or \
                 travel in vehicles the company does not own, use a Scope 3 factor \
                 (for example the 'Managed assets' or 'Business travel' sheets)",
                f.key,
                f.sheet,
                c.number()
            ),
        ));
    }
    if f.upstream.is_empty() {
        return Err(LineError::new(
            Field::ActivityId,
            "no_upstream_factor",
            format!(
                "'{}' is a Scope {own} factor ({}): a Scope 3 inventory counts only its \
                 upstream emissions (category 3), and desnz {} has no well-to-tank or \
                 T&D factor for it",
                f.key,
                f.sheet,
                crate::factors::desnz::VERSION
            ),
        ));
    }
    let co2e_kg = f
        .upstream
        .iter()
        .map(|u| converted * cat.desnz.factors[u.index as usize].value)
        .sum();
    Ok(Emission {
        co2e_kg,
        category: Category::FUEL_ENERGY,
        category_source: CategorySource::Activity,
        method: Method::AverageData,
        data_quality: dq.aggregate(),
        dq,
        factor,
        factor_value: f.value,
        spend: None,
        unit,
        fallbacks: fb,
        scope_1_2_kg: Some(converted * f.value),
        supplier: None,
        hybrid: None,
        classified: false,
    })
}

/// The factor named on a result. Borrowed from the (static) catalogue where possible, so
/// naming the factor of a line costs no allocation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FactorInfo {
    pub set: Cow<'static, str>,
    pub version: Cow<'static, str>,
    pub key: Cow<'static, str>,
    pub value: f64,
    pub unit: Cow<'static, str>,
    /// The factor's GHG Protocol scope, where its set states it ("Scope 1", "Scope 2",
    /// "Scope 3", "Outside of Scopes").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Cow<'static, str>>,
}

/// One upstream (category 3) part of an energy or fuel input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UpstreamInfo {
    /// `wtt`, `td_losses` or `wtt_td_losses`.
    pub kind: Cow<'static, str>,
    pub factor: FactorInfo,
    /// The converted quantity × this factor's value.
    pub co2e_kg: f64,
}

/// The radiative-forcing choice of a flight.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RfInfo {
    pub included: bool,
    /// kg CO2e the RF multiplier adds (0 without RF).
    pub uplift_kg: f64,
}

/// The Scope 1 or 2 emissions of an energy or fuel input, recorded apart for reference:
/// never part of a Scope 3 total.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OwnScopeInfo {
    /// 1 or 2.
    pub scope: u8,
    /// The converted quantity × the line's own factor.
    pub co2e_kg: f64,
    /// Always false: recorded for reference only.
    pub counted_in_scope_3: bool,
}

/// The money conversions of a result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpendInfo {
    pub amount: f64,
    pub currency: String,
    pub fx_rate: f64,
    pub fx_year: u16,
    pub amount_usd: f64,
    pub cpi_from_year: u16,
    pub cpi_to_year: u16,
    pub cpi_ratio: f64,
    pub amount_usd_price_year: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price_basis: Option<String>,
}

/// The unit conversion of a result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnitInfo {
    pub quantity: f64,
    pub from: String,
    pub to: String,
    pub factor: f64,
    pub converted: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct Conversions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spend: Option<SpendInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<UnitInfo>,
}

/// A fallback taken, with a sentence saying what was used instead.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FallbackInfo {
    pub code: String,
    pub message: String,
}

/// The full, explainable result of one line, as the API and reports show it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EmissionRecord {
    pub co2e_kg: f64,
    pub category: u8,
    pub category_name: String,
    pub category_source: CategorySource,
    pub method: Method,
    /// The aggregate of `data_quality_indicators`.
    pub data_quality: u8,
    /// The five indicators (absent on lines stored before they existed, until recalculated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_quality_indicators: Option<DataQuality>,
    pub factor: FactorInfo,
    pub conversions: Conversions,
    pub fallbacks: Vec<FallbackInfo>,
    /// An energy or fuel input's category 3 parts (`co2e_kg` is their sum), or a flight's
    /// WTT (`co2e_kg` is the flight's own factor plus it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upstream: Vec<UpstreamInfo>,
    /// A flight: whether its factor includes radiative forcing, and the uplift that adds
    /// (with RF − without RF, × the distance), which is not CO2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub radiative_forcing: Option<RfInfo>,
    /// An energy or fuel input's own Scope 1 or 2 emissions, recorded apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope_1_2: Option<OwnScopeInfo>,
    /// `co2e_kg` by gas, kg CO2e each (absent on results read back from an older version's
    /// lines whose factor is no longer known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gases: Option<GasSplit>,
    /// kg of biogenic CO2 of a fuel or electricity input, outside the scopes: never in
    /// `co2e_kg`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub biogenic_co2_kg: Option<f64>,
    /// A supplier-specific or hybrid result: the boundary and verification of the
    /// supplier's intensity, and a hybrid's two parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supplier_data: Option<SupplierDataInfo>,
    /// A result from the supplier's product footprint (PACT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_footprint: Option<PcfInfo>,
    /// The line had no NAICS code (nor its supplier): the code, category and capital flag
    /// classification gave it, from which source, how sure, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classification: Option<crate::classify::Classification>,
}

impl Emission {
    /// Set, version, key and unit of the factor (borrowed from the catalogue where possible).
    pub fn factor_info(
        &self,
        cat: &'static Catalog,
        supplier_id: Option<&str>,
        supplier: Option<&SupplierProfile>,
    ) -> FactorInfo {
        match self.factor {
            FactorRef::Epa {
                version,
                index,
                basis,
            } => {
                let set = cat.epa(version);
                FactorInfo {
                    set: Cow::Borrowed(SET_EPA),
                    version: Cow::Borrowed(version.as_str()),
                    key: Cow::Borrowed(&set.factors[index as usize].key),
                    value: self.factor_value,
                    unit: Cow::Borrowed(set.unit_label(basis)),
                    scope: None,
                }
            }
            FactorRef::Desnz { index } => {
                let f = &cat.desnz.factors[index as usize];
                FactorInfo {
                    set: Cow::Borrowed(SET_DESNZ),
                    version: Cow::Borrowed(crate::factors::desnz::VERSION),
                    key: Cow::Borrowed(&f.key),
                    value: self.factor_value,
                    unit: Cow::Borrowed(&f.value_unit),
                    scope: Some(Cow::Borrowed(f.scope.as_str())),
                }
            }
            FactorRef::Supplier { year } => FactorInfo {
                set: Cow::Borrowed(SET_SUPPLIER),
                version: Cow::Owned(year.to_string()),
                key: Cow::Owned(supplier_id.unwrap_or_default().to_owned()),
                value: self.factor_value,
                unit: Cow::Owned(format!("kg CO2e/{year} USD")),
                scope: None,
            },
            FactorRef::Pcf { .. } => {
                let p = self.pcf(supplier);
                FactorInfo {
                    set: Cow::Borrowed(crate::factors::SET_PACT),
                    version: Cow::Owned(p.map(|p| p.spec_version.clone()).unwrap_or_default()),
                    key: Cow::Owned(p.map(|p| p.id.clone()).unwrap_or_default()),
                    value: self.factor_value,
                    unit: Cow::Owned(format!(
                        "kg CO2e/{}",
                        p.map_or("", |p| p.declared_unit.symbol())
                    )),
                    scope: None,
                }
            }
        }
    }

    /// The product footprint a PACT result used, from the supplier profile it was
    /// calculated with.
    pub fn pcf<'a>(&self, supplier: Option<&'a SupplierProfile>) -> Option<&'a ProductPcf> {
        match self.factor {
            FactorRef::Pcf { slot, .. } => supplier?.pcfs.get(slot as usize),
            _ => None,
        }
    }

    /// What the trail says of the footprint a PACT result used.
    pub fn pcf_info(&self, line: &Line, supplier: Option<&SupplierProfile>) -> Option<PcfInfo> {
        let (
            FactorRef::Pcf {
                outside_validity, ..
            },
            Some(p),
            Some(u),
        ) = (self.factor, self.pcf(supplier), self.unit)
        else {
            return None;
        };
        Some(PcfInfo::new(
            p,
            line.product_id.clone().unwrap_or_default(),
            u.converted,
            !outside_validity,
        ))
    }

    /// The parts added to (or, for an energy or fuel input, counted instead of) the line's
    /// own factor: an energy input's category 3 parts, a flight's WTT. Empty for others.
    pub fn upstream_info(&self, cat: &'static Catalog) -> Vec<UpstreamInfo> {
        let (FactorRef::Desnz { index }, Some(u)) = (self.factor, self.unit) else {
            return Vec::new();
        };
        cat.desnz.factors[index as usize]
            .upstream
            .iter()
            .map(|up| {
                let f = &cat.desnz.factors[up.index as usize];
                UpstreamInfo {
                    kind: Cow::Borrowed(up.kind.as_str()),
                    factor: desnz_info(f),
                    co2e_kg: u.converted * f.value,
                }
            })
            .collect()
    }

    /// `co2e_kg` by gas (see [`gases_of`]).
    pub fn gases(&self, cat: &Catalog) -> GasSplit {
        let amount = match (self.spend, self.unit) {
            (Some(s), _) => s.usd_price_year,
            (None, Some(u)) => u.converted,
            (None, None) => 0.0,
        };
        let g = gases_of(
            cat,
            self.factor,
            self.factor_value,
            amount,
            self.scope_1_2_kg.is_some(),
        );
        match self.hybrid_upstream(cat) {
            // The upstream share is a remainder of the sector's factor: no gas split.
            Some(h) => g.plus(GasSplit::unspecified(h.upstream_kg)),
            None => g,
        }
    }

    /// A hybrid result's parts, recomputed from its spend with the engine's operations.
    pub fn hybrid_upstream(&self, cat: &Catalog) -> Option<HybridUpstream> {
        let (r, s) = (self.hybrid?, self.spend?);
        hybrid_upstream(
            cat,
            r.version,
            r.index,
            r.basis,
            s.usd,
            s.cpi_from_year,
            s.usd_price_year * self.factor_value,
        )
    }

    /// The intensity a supplier-specific or hybrid result used, as the trail names it.
    pub fn supplier_info(&self, cat: &Catalog) -> Option<SupplierDataInfo> {
        let supplier_kg = self
            .spend
            .map_or(0.0, |s| s.usd_price_year * self.factor_value);
        self.supplier
            .map(|d| SupplierDataInfo::new(d, self.hybrid_upstream(cat).map(|h| (supplier_kg, h))))
    }

    /// Biogenic CO2 of a fuel or electricity input (kg, outside the scopes).
    pub fn biogenic_co2_kg(&self, cat: &Catalog) -> Option<f64> {
        match (self.factor, self.unit) {
            (FactorRef::Desnz { index }, Some(u)) => cat.desnz.factors[index as usize]
                .biogenic_co2
                .map(|b| b * u.converted),
            _ => None,
        }
    }

    /// A flight's radiative-forcing choice and uplift.
    pub fn rf_info(&self, cat: &Catalog) -> Option<RfInfo> {
        let (FactorRef::Desnz { index }, Some(u)) = (self.factor, self.unit) else {
            return None;
        };
        rf_info(cat, index as usize, u.converted)
    }

    /// The Scope 1 or 2 emissions recorded apart, for an energy or fuel input.
    pub fn own_scope_info(&self, cat: &Catalog) -> Option<OwnScopeInfo> {
        let (FactorRef::Desnz { index }, Some(kg)) = (self.factor, self.scope_1_2_kg) else {
            return None;
        };
        Some(OwnScopeInfo {
            scope: cat.desnz.factors[index as usize].scope.own()?,
            co2e_kg: kg,
            counted_in_scope_3: false,
        })
    }

    /// Describes the fallbacks taken, for the audit trail.
    pub fn fallback_info(&self, line: &Line) -> Vec<FallbackInfo> {
        let mut out = describe_fallbacks(
            self.fallbacks,
            line.date.map_or(0, |d| d.year()),
            self.spend.as_ref(),
            self.factor,
        );
        if let Some(d) = self.supplier {
            out.extend(supplier_notes(
                d,
                self.hybrid_upstream(crate::catalog()).as_ref(),
            ));
        }
        out.extend(product_notes(line, self.factor));
        if self.fallbacks & fallback::RF_SETTING != 0 {
            let named_with = line
                .activity_id
                .as_deref()
                .is_some_and(|k| k.contains("/with-rf/"));
            let (named, used) = if named_with {
                ("with", "without")
            } else {
                ("without", "with")
            };
            out.push(FallbackInfo {
                code: "rf_setting".into(),
                message: format!(
                    "the line names its flight's factor {named} radiative forcing; the \
                     organization reports flights {used} it, so that factor was used"
                ),
            });
        }
        out
    }

    /// The full audit trail of this result, calculated without a supplier profile.
    pub fn record(&self, cat: &'static Catalog, line: &Line) -> EmissionRecord {
        self.record_with(cat, line, None)
    }

    /// The full audit trail of this result (`supplier`: the profile it was calculated with).
    pub fn record_with(
        &self,
        cat: &'static Catalog,
        line: &Line,
        supplier: Option<&SupplierProfile>,
    ) -> EmissionRecord {
        EmissionRecord {
            co2e_kg: self.co2e_kg,
            category: self.category.number(),
            category_name: self.category.name().into(),
            category_source: self.category_source,
            method: self.method,
            data_quality: self.data_quality,
            data_quality_indicators: Some(self.dq),
            factor: self.factor_info(cat, line.supplier_key(), supplier),
            conversions: Conversions {
                spend: self.spend.map(|s| SpendInfo {
                    amount: s.amount,
                    currency: s.currency.to_string(),
                    fx_rate: s.fx_rate,
                    fx_year: s.fx_year,
                    amount_usd: s.usd,
                    cpi_from_year: s.cpi_from_year,
                    cpi_to_year: s.cpi_to_year,
                    cpi_ratio: s.cpi_ratio,
                    amount_usd_price_year: s.usd_price_year,
                    price_basis: match self.factor {
                        FactorRef::Epa { basis, .. } => Some(basis.margins().into()),
                        _ => None,
                    },
                }),
                unit: self.unit.map(|u| UnitInfo {
                    quantity: u.quantity,
                    from: u.from.symbol().into(),
                    to: u.to.symbol().into(),
                    factor: u.factor,
                    converted: u.converted,
                }),
            },
            fallbacks: self.fallback_info(line),
            upstream: self.upstream_info(cat),
            radiative_forcing: self.rf_info(cat),
            scope_1_2: self.own_scope_info(cat),
            gases: Some(self.gases(cat)),
            biogenic_co2_kg: self.biogenic_co2_kg(cat),
            supplier_data: self.supplier_info(cat),
            product_footprint: self.pcf_info(line, supplier),
            classification: line
                .classification
                .as_deref()
                .filter(|_| self.classified)
                .cloned(),
        }
    }
}

/// The trail's notes on a line naming a product: the footprint used outside its validity
/// period, or no footprint of it at all (the next method applied).
pub fn product_notes(line: &Line, factor: FactorRef) -> Vec<FallbackInfo> {
    let Some(product) = line.product_id.as_deref() else {
        return Vec::new();
    };
    let date = line.date.map(|d| d.to_string()).unwrap_or_default();
    match factor {
        FactorRef::Pcf {
            outside_validity: true,
            ..
        } => vec![FallbackInfo {
            code: "pcf_outside_validity".into(),
            message: format!(
                "no Active footprint of {product} from the supplier is valid on {date}; the \
                 one whose validity period is nearest was used (temporal indicator one step \
                 worse)"
            ),
        }],
        FactorRef::Pcf { .. } => Vec::new(),
        _ => vec![FallbackInfo {
            code: "no_product_footprint".into(),
            message: format!(
                "the supplier has no Active footprint of {product}; the next method applied"
            ),
        }],
    }
}

/// The product footprint (PACT) a result used, as the trail shows it: the footprint's id,
/// company, spec version and periods, its values as the decimal strings received, and the
/// conversion.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PcfInfo {
    pub id: String,
    pub product_id: String,
    pub company_name: String,
    pub spec_version: String,
    pub reference_period_start: String,
    pub reference_period_end: String,
    pub validity_period_start: String,
    pub validity_period_end: String,
    /// Whether the footprint states its validity period (else the spec's default: 3 years
    /// from the reference period's end).
    pub validity_stated: bool,
    pub valid_on_line_date: bool,
    /// The spec's name of the declared unit and its amount ("kilogram", "1").
    pub declared_unit: String,
    pub declared_unit_amount: String,
    pub pcf_excluding_biogenic_uptake: String,
    pub pcf_including_biogenic_uptake: String,
    /// `pcfExcludingBiogenicUptake ÷ declaredUnitAmount`: the factor applied.
    pub kg_co2e_per_declared_unit: f64,
    /// The biogenic uptake of the quantity, `(including − excluding) ÷ amount × quantity`
    /// (negative for an uptake): kept apart, never in `co2e_kg`.
    pub biogenic_uptake_kg: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_data_share: Option<f64>,
    /// Technological, geographical and temporal DQR as the footprint gives them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dqi: Option<[f64; 3]>,
    pub verified: bool,
}

impl PcfInfo {
    pub fn new(p: &ProductPcf, product_id: String, converted: f64, valid: bool) -> PcfInfo {
        use crate::pact::format_datetime as dt;
        PcfInfo {
            id: p.id.clone(),
            product_id,
            company_name: p.company_name.clone(),
            spec_version: p.spec_version.clone(),
            reference_period_start: dt(p.reference_period.0),
            reference_period_end: dt(p.reference_period.1),
            validity_period_start: dt(p.validity.0),
            validity_period_end: dt(p.validity.1),
            validity_stated: p.validity_stated,
            valid_on_line_date: valid,
            declared_unit: p.declared_unit_name.clone(),
            declared_unit_amount: p.declared_amount_text.clone(),
            pcf_excluding_biogenic_uptake: p.pcf_excluding_text.clone(),
            pcf_including_biogenic_uptake: p.pcf_including_text.clone(),
            kg_co2e_per_declared_unit: p.kg_per_unit(),
            biogenic_uptake_kg: converted
                * ((p.pcf_including - p.pcf_excluding) / p.declared_amount),
            primary_data_share: p.primary_data_share,
            dqi: p.dqi,
            verified: p.verified,
        }
    }
}

/// The trail's notes on a supplier's intensity: a boundary not stated, a hybrid whose
/// supplier share covers the whole EEIO estimate.
pub fn supplier_notes(d: SupplierData, hybrid: Option<&HybridUpstream>) -> Vec<FallbackInfo> {
    let mut out = Vec::new();
    if !d.boundary_stated {
        out.push(FallbackInfo {
            code: "boundary_not_stated".into(),
            message: "the supplier's intensity states no boundary; it was read as \
                      cradle_to_gate"
                .into(),
        });
    }
    if let Some(h) = hybrid
        && h.upstream_kg == 0.0
    {
        out.push(FallbackInfo {
            code: "hybrid_upstream_zero".into(),
            message: format!(
                "the supplier's Scope 1+2 share is at least the EEIO cradle-to-gate estimate \
                 of {} kg; the upstream share is 0",
                h.cradle_to_gate_kg
            ),
        });
    }
    out
}

/// What a supplier-specific or hybrid result knows of the intensity it used.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SupplierDataInfo {
    pub boundary: Boundary,
    pub boundary_stated: bool,
    pub verified: bool,
    /// A hybrid result: its two parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hybrid: Option<HybridInfo>,
}

/// The two parts of a hybrid result (`co2e_kg` is their sum).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HybridInfo {
    /// The supplier's Scope 1+2 share: the spend in USD of the intensity's year × the
    /// intensity (`factor`, `conversions.spend`).
    pub supplier_scope_1_2_kg: f64,
    /// The EEIO factor of the supplier's NAICS code.
    pub eeio_factor: FactorInfo,
    /// CPI of the EEIO factor's price year / CPI of the spend year.
    pub eeio_cpi_ratio: f64,
    /// The spend in USD of the EEIO factor's price year.
    pub eeio_amount_usd_price_year: f64,
    /// The sector's cradle-to-gate estimate: that amount × the EEIO factor.
    pub eeio_cradle_to_gate_kg: f64,
    /// The estimate less the supplier's Scope 1+2 share, at least 0.
    pub upstream_kg: f64,
}

impl SupplierDataInfo {
    pub fn new(d: SupplierData, hybrid: Option<(f64, HybridUpstream)>) -> Self {
        SupplierDataInfo {
            boundary: d.boundary,
            boundary_stated: d.boundary_stated,
            verified: d.verified,
            hybrid: hybrid.map(|(supplier_kg, h)| {
                let set = crate::catalog().epa(h.version);
                HybridInfo {
                    supplier_scope_1_2_kg: supplier_kg,
                    eeio_factor: FactorInfo {
                        set: Cow::Borrowed(SET_EPA),
                        version: Cow::Borrowed(h.version.as_str()),
                        key: Cow::Borrowed(&set.factors[h.index as usize].key),
                        value: h.factor_value,
                        unit: Cow::Borrowed(set.unit_label(h.basis)),
                        scope: None,
                    },
                    eeio_cpi_ratio: h.cpi_ratio,
                    eeio_amount_usd_price_year: h.usd_price_year,
                    eeio_cradle_to_gate_kg: h.cradle_to_gate_kg,
                    upstream_kg: h.upstream_kg,
                }
            }),
        }
    }
}

/// The gas split of a result: `amount` (USD of the factor's price year, or the quantity in
/// the factor's unit) of `factor` (whose value is `factor_value`). An energy input
/// (`energy_input`) counts only its upstream factors, as its `co2e_kg` does.
///
/// - EPA v1.3.0: the per-gas file with AR5 GWPs; v1.2 ships none (unspecified).
/// - DESNZ: the workbook's CO2, CH4 and N2O columns. A flight with RF: the gases of the same
///   flight without RF, and the uplift as `radiative_forcing` (the workbook puts it in CO2).
///   Factors without a split (WTT) are unspecified.
/// - A supplier's intensity: unspecified.
pub fn gases_of(
    cat: &Catalog,
    factor: FactorRef,
    factor_value: f64,
    amount: f64,
    energy_input: bool,
) -> GasSplit {
    match factor {
        FactorRef::Epa {
            version,
            index,
            basis,
        } => match cat.epa(version).split(index as usize, basis) {
            Some(s) => s.scaled(amount),
            None => GasSplit::unspecified(amount * factor_value),
        },
        FactorRef::Supplier { .. } | FactorRef::Pcf { .. } => {
            GasSplit::unspecified(amount * factor_value)
        }
        FactorRef::Desnz { index } => {
            let f = &cat.desnz.factors[index as usize];
            let own = if energy_input {
                GasSplit::default()
            } else {
                desnz_split(cat, index as usize).scaled(amount)
            };
            f.upstream.iter().fold(own, |acc, u| {
                acc.plus(desnz_split(cat, u.index as usize).scaled(amount))
            })
        }
    }
}

/// Per unit of DESNZ factor `i`: its gas split, with a flight's RF uplift apart (for
/// results read back with the upstream parts they were calculated with).
pub fn desnz_split(cat: &Catalog, i: usize) -> GasSplit {
    let f = &cat.desnz.factors[i];
    if let Some((true, pair)) = f.rf {
        let without = &cat.desnz.factors[pair as usize];
        let base = without
            .gas_split()
            .unwrap_or_else(|| GasSplit::unspecified(without.value));
        return GasSplit {
            radiative_forcing: f.value - without.value,
            ..base
        };
    }
    f.gas_split()
        .unwrap_or_else(|| GasSplit::unspecified(f.value))
}

/// The radiative-forcing choice and uplift of `converted` units of DESNZ factor `index`, if
/// it is a flight.
pub fn rf_info(cat: &Catalog, index: usize, converted: f64) -> Option<RfInfo> {
    let f = &cat.desnz.factors[index];
    let (with, pair) = f.rf?;
    Some(RfInfo {
        included: with,
        uplift_kg: if with {
            converted * (f.value - cat.desnz.factors[pair as usize].value)
        } else {
            0.0
        },
    })
}

/// A DESNZ factor as the audit trail names it.
pub fn desnz_info(f: &'static crate::factors::DesnzFactor) -> FactorInfo {
    FactorInfo {
        set: Cow::Borrowed(SET_DESNZ),
        version: Cow::Borrowed(crate::factors::desnz::VERSION),
        key: Cow::Borrowed(&f.key),
        value: f.value,
        unit: Cow::Borrowed(&f.value_unit),
        scope: Some(Cow::Borrowed(f.scope.as_str())),
    }
}

/// Sentences for the fallback bits of a result.
pub fn describe_fallbacks(
    bits: u8,
    spend_year: u16,
    spend: Option<&SpendConversion>,
    factor: FactorRef,
) -> Vec<FallbackInfo> {
    let mut out = Vec::new();
    let mut push = |code: &str, message: String| {
        out.push(FallbackInfo {
            code: code.into(),
            message,
        })
    };
    if bits & fallback::NAICS_FROM_SUPPLIER != 0 {
        push(
            "naics_from_supplier",
            "the line has no naics_code; the supplier's was used".into(),
        );
    }
    if bits & fallback::INTENSITY_OTHER_YEAR != 0
        && let FactorRef::Supplier { year } = factor
    {
        push(
            "intensity_other_year",
            format!(
                "the supplier has no intensity for {spend_year}; its {year} value was used \
                 (temporal data quality lowered by one)"
            ),
        );
    }
    if bits & fallback::INTENSITY_YEAR_ASSUMED != 0 {
        push(
            "intensity_year_assumed",
            format!(
                "the supplier has no intensity for {spend_year} and one without a year; it \
                 was taken as per USD of {spend_year}"
            ),
        );
    }
    if let Some(s) = spend {
        if bits & fallback::CURRENCY_ASSUMED != 0 {
            push(
                "currency_assumed",
                format!(
                    "the line gives no currency; the organization's default {} was assumed",
                    s.currency
                ),
            );
        }
        if bits & fallback::FX_YEAR != 0 {
            push(
                "fx_year",
                format!(
                    "no {} rate for {spend_year} yet; the {} rate was used",
                    s.currency, s.fx_year
                ),
            );
        }
        if bits & fallback::CPI_YEAR != 0 {
            push(
                "cpi_year",
                format!(
                    "no CPI-U for {spend_year} yet; {} was used",
                    s.cpi_from_year
                ),
            );
        }
        if bits & fallback::CPI_INTENSITY_YEAR != 0
            && let FactorRef::Supplier { year } = factor
        {
            push(
                "cpi_intensity_year",
                format!(
                    "no CPI-U for intensity year {year} yet; {} was used",
                    s.cpi_to_year
                ),
            );
        }
    }
    out
}
