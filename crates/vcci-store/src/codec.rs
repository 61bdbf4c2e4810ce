//! The compact binary encoding of a line's fields and audit trail (the `body` column).
//!
//! Why: SQLite's per-row cost grows with the number of bound columns; measured on this
//! machine class, 42 columns insert at ~270k rows/s where 9 columns carrying the same bytes
//! insert at ~330-370k rows/s. So only what SQL filters, sorts or sums on is a column; the
//! rest is one blob, encoded on the import's reading thread.
//!
//! Format: a version byte, a presence bitmask (version 1: u32 LE; version 2: u64 LE), then
//! each present field in order: f64 as 8 bytes LE, integers as 2 or 4 bytes LE, bytes as a
//! u32 LE length and the bytes. Append new fields at the end; never reorder. A body whose
//! fields all fit the first 32 bits is written as version 1 (4 bytes less per line), else
//! as version 2; both are read.
//!
//! Also here: the other storage encodings that reads and writes share, the small integer
//! codes of enums and the integer units of the read models' sums.

use std::borrow::Cow;

use vcci_core::calc::{FactorRef, HybridRef, HybridUpstream};
use vcci_core::factors::{SET_DESNZ, SET_EPA, SET_PACT, SET_SUPPLIER};
use vcci_core::gases::GasSplit;
use vcci_core::{CategorySource, EpaVersion, Method, PriceBasis};

use crate::conn::Dialect;
use crate::{Result, StoreError};

const VERSION_1: u8 = 1;
const VERSION_2: u8 = 2;

/// The fields stored in the body, decoded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Body {
    pub description: Option<String>,
    pub amount: Option<f64>,
    pub currency: Option<String>,
    pub naics_code: Option<u32>,
    pub category_in: Option<u16>,
    pub quantity: Option<f64>,
    pub unit: Option<String>,
    pub activity_id: Option<String>,
    pub country: Option<String>,
    pub price_basis: u16,
    pub category_source: u16,
    pub factor_source: u16,
    pub factor_key: String,
    pub factor_value: f64,
    pub factor_year: Option<u16>,
    pub fx_rate: Option<f64>,
    pub fx_year: Option<u16>,
    pub cpi_from_year: Option<u16>,
    pub cpi_to_year: Option<u16>,
    pub cpi_ratio: Option<f64>,
    pub unit_factor: Option<f64>,
    pub fallbacks: Option<String>,
    pub supplier_name: Option<String>,
    /// Whether the line named its supplier by `supplier_id` (the stored supplier column is
    /// the id if so, else the name).
    pub supplier_id_given: bool,
    /// An energy or fuel input: its own scope (1 or 2), its emissions in that scope
    /// (recorded apart) and its upstream factors (see [`Upstream`]); a flight: its WTT.
    pub own_scope: Option<u16>,
    pub scope_1_2_kg: Option<f64>,
    pub upstream: Option<String>,
    /// The currency a spend was converted from when the line named none (the
    /// organization's default at the time).
    pub assumed_currency: Option<String>,
    /// The line's `capex` flag.
    pub capex: bool,
    /// The five data-quality indicators, packed (`DataQuality::pack`); absent on lines
    /// stored before they existed.
    pub dq: Option<u16>,
    /// A supplier-specific or hybrid result: the boundary, verification and statement of
    /// the intensity used (`SupplierData::pack`). A hybrid's EEIO factor is an `upstream`
    /// part of kind `eeio_upstream`.
    pub supplier_data: Option<u16>,
    /// The line's `product_id`.
    pub product_id: Option<String>,
    /// A result from a product footprint: the footprint as the trail names it (`PcfInfo`,
    /// JSON).
    pub pcf: Option<String>,
    /// The line's ledger account and its name.
    pub gl_account: Option<String>,
    pub gl_account_name: Option<String>,
    /// The classification the result used (`vcci_core::classify::Classification`, JSON).
    pub classification: Option<String>,
    /// The supplier_id the line gave, when it belongs to another supplier (merged): the
    /// `supplier_id` column holds the supplier it belongs to.
    pub supplier_named_id: Option<String>,
}

/// Borrowed view used for encoding without copies.
#[derive(Clone, Copy, Debug, Default)]
pub struct BodyRef<'a> {
    pub description: Option<&'a str>,
    pub amount: Option<f64>,
    pub currency: Option<&'a str>,
    pub naics_code: Option<u32>,
    pub category_in: Option<u16>,
    pub quantity: Option<f64>,
    pub unit: Option<&'a str>,
    pub activity_id: Option<&'a str>,
    pub country: Option<&'a str>,
    pub price_basis: u16,
    pub category_source: u16,
    pub factor_source: u16,
    pub factor_key: &'a str,
    pub factor_value: f64,
    pub factor_year: Option<u16>,
    pub fx_rate: Option<f64>,
    pub fx_year: Option<u16>,
    pub cpi_from_year: Option<u16>,
    pub cpi_to_year: Option<u16>,
    pub cpi_ratio: Option<f64>,
    pub unit_factor: Option<f64>,
    pub fallbacks: Option<&'a str>,
    pub supplier_name: Option<&'a str>,
    pub supplier_id_given: bool,
    pub own_scope: Option<u16>,
    pub scope_1_2_kg: Option<f64>,
    pub upstream: Option<&'a str>,
    pub assumed_currency: Option<&'a str>,
    pub capex: bool,
    pub dq: Option<u16>,
    pub supplier_data: Option<u16>,
    pub product_id: Option<&'a str>,
    pub pcf: Option<&'a str>,
    pub gl_account: Option<&'a str>,
    pub gl_account_name: Option<&'a str>,
    pub classification: Option<&'a str>,
    pub supplier_named_id: Option<&'a str>,
}

struct W<'b> {
    out: &'b mut Vec<u8>,
    mask: u64,
    bit: u32,
}

impl W<'_> {
    fn next(&mut self, present: bool) -> bool {
        if present {
            self.mask |= 1 << self.bit;
        }
        self.bit += 1;
        present
    }
    fn fixed<const N: usize>(&mut self, v: Option<[u8; N]>) {
        if let Some(b) = v {
            self.out.extend_from_slice(&b);
        }
        self.next(v.is_some());
    }
    fn f64(&mut self, v: Option<f64>) {
        self.fixed(v.map(f64::to_le_bytes));
    }
    fn u16(&mut self, v: Option<u16>) {
        self.fixed(v.map(u16::to_le_bytes));
    }
    fn u32(&mut self, v: Option<u32>) {
        self.fixed(v.map(u32::to_le_bytes));
    }
    fn str(&mut self, v: Option<&str>) {
        if self.next(v.is_some()) {
            let s = v.unwrap_or_default();
            self.out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            self.out.extend_from_slice(s.as_bytes());
        }
    }
}

impl BodyRef<'_> {
    /// Appends the encoding to `out` (cleared first).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.clear();
        let wide = self.product_id.is_some()
            || self.pcf.is_some()
            || self.gl_account.is_some()
            || self.gl_account_name.is_some()
            || self.classification.is_some()
            || self.supplier_named_id.is_some();
        out.push(if wide { VERSION_2 } else { VERSION_1 });
        out.extend_from_slice(if wide { &[0; 8] } else { &[0; 4] });
        let mut w = W {
            out,
            mask: 0,
            bit: 0,
        };
        w.str(self.description);
        w.f64(self.amount);
        w.str(self.currency);
        w.u32(self.naics_code);
        w.u16(self.category_in);
        w.f64(self.quantity);
        w.str(self.unit);
        w.str(self.activity_id);
        w.str(self.country);
        w.u16(Some(self.price_basis));
        w.u16(Some(self.category_source));
        w.u16(Some(self.factor_source));
        w.str(Some(self.factor_key));
        w.f64(Some(self.factor_value));
        w.u16(self.factor_year);
        w.f64(self.fx_rate);
        w.u16(self.fx_year);
        w.u16(self.cpi_from_year);
        w.u16(self.cpi_to_year);
        w.f64(self.cpi_ratio);
        w.f64(self.unit_factor);
        w.str(self.fallbacks);
        w.str(self.supplier_name);
        w.u16(Some(u16::from(self.supplier_id_given)));
        w.u16(self.own_scope);
        w.f64(self.scope_1_2_kg);
        w.str(self.upstream);
        w.str(self.assumed_currency);
        w.u16(self.capex.then_some(1));
        w.u16(self.dq);
        w.u16(self.supplier_data);
        if wide {
            w.str(self.product_id);
            w.str(self.pcf);
            w.str(self.gl_account);
            w.str(self.gl_account_name);
            w.str(self.classification);
            w.str(self.supplier_named_id);
            let mask = w.mask.to_le_bytes();
            out[1..9].copy_from_slice(&mask);
        } else {
            let mask = (w.mask as u32).to_le_bytes();
            out[1..5].copy_from_slice(&mask);
        }
    }
}

struct R<'b> {
    b: &'b [u8],
    pos: usize,
    mask: u64,
    bit: u32,
}

fn corrupt() -> StoreError {
    StoreError::corrupt("a stored line's body is corrupt")
}

impl R<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let s = self.b.get(self.pos..self.pos + n).ok_or_else(corrupt)?;
        self.pos += n;
        Ok(s)
    }
    fn present(&mut self) -> bool {
        let p = self.mask & (1 << self.bit) != 0;
        self.bit += 1;
        p
    }
    /// The next `N` bytes if the field is present.
    fn fixed<const N: usize>(&mut self) -> Result<Option<[u8; N]>> {
        if !self.present() {
            return Ok(None);
        }
        Ok(Some(self.take(N)?.try_into().map_err(|_| corrupt())?))
    }
    fn f64(&mut self) -> Result<Option<f64>> {
        Ok(self.fixed()?.map(f64::from_le_bytes))
    }
    fn u16(&mut self) -> Result<Option<u16>> {
        Ok(self.fixed()?.map(u16::from_le_bytes))
    }
    fn u32(&mut self) -> Result<Option<u32>> {
        Ok(self.fixed()?.map(u32::from_le_bytes))
    }
    fn str(&mut self) -> Result<Option<String>> {
        if !self.present() {
            return Ok(None);
        }
        let n = u32::from_le_bytes(self.take(4)?.try_into().map_err(|_| corrupt())?) as usize;
        let s = self.take(n)?;
        Ok(Some(
            std::str::from_utf8(s).map_err(|_| corrupt())?.to_owned(),
        ))
    }
}

impl Body {
    pub fn decode(b: &[u8]) -> Result<Body> {
        let (mask, pos) = match b.first() {
            Some(&VERSION_1) if b.len() >= 5 => {
                (u64::from(u32::from_le_bytes([b[1], b[2], b[3], b[4]])), 5)
            }
            Some(&VERSION_2) if b.len() >= 9 => {
                let m: [u8; 8] = b[1..9].try_into().map_err(|_| corrupt())?;
                (u64::from_le_bytes(m), 9)
            }
            _ => return Err(corrupt()),
        };
        let mut r = R {
            b,
            pos,
            mask,
            bit: 0,
        };
        Ok(Body {
            description: r.str()?,
            amount: r.f64()?,
            currency: r.str()?,
            naics_code: r.u32()?,
            category_in: r.u16()?,
            quantity: r.f64()?,
            unit: r.str()?,
            activity_id: r.str()?,
            country: r.str()?,
            price_basis: r.u16()?.unwrap_or_default(),
            category_source: r.u16()?.unwrap_or_default(),
            factor_source: r.u16()?.unwrap_or_default(),
            factor_key: r.str()?.unwrap_or_default(),
            factor_value: r.f64()?.unwrap_or_default(),
            factor_year: r.u16()?,
            fx_rate: r.f64()?,
            fx_year: r.u16()?,
            cpi_from_year: r.u16()?,
            cpi_to_year: r.u16()?,
            cpi_ratio: r.f64()?,
            unit_factor: r.f64()?,
            fallbacks: r.str()?,
            supplier_name: r.str()?,
            supplier_id_given: r.u16()?.unwrap_or(1) == 1,
            own_scope: r.u16()?,
            scope_1_2_kg: r.f64()?,
            upstream: r.str()?,
            assumed_currency: r.str()?,
            capex: r.u16()? == Some(1),
            dq: r.u16()?,
            supplier_data: r.u16()?,
            product_id: r.str()?,
            pcf: r.str()?,
            gl_account: r.str()?,
            gl_account_name: r.str()?,
            classification: r.str()?,
            supplier_named_id: r.str()?,
        })
    }

    /// The milligrams of Scope 1 and of Scope 2 this line records apart (0, 0 for lines
    /// that are not energy or fuel inputs).
    pub fn scope_1_2_mg(&self) -> (i64, i64) {
        scope_split(self.own_scope, self.scope_1_2_kg)
    }

    /// The upstream parts stored with an energy or fuel input.
    pub fn upstream_parts(&self) -> Result<Vec<Upstream>> {
        self.upstream
            .as_deref()
            .map_or(Ok(Vec::new()), Upstream::decode_all)
    }
}

impl Body {
    /// The stored factor as the engine names it (`None` for a factor no longer shipped).
    pub fn factor_ref(&self) -> Option<FactorRef> {
        let cat = vcci_core::catalog();
        match self.factor_source {
            1 | 2 => {
                let version = if self.factor_source == 1 {
                    EpaVersion::V1_3_0
                } else {
                    EpaVersion::V1_2
                };
                vcci_core::Naics::parse(&self.factor_key)
                    .ok()
                    .and_then(|n| cat.epa(version).find(n))
                    .map(|i| FactorRef::Epa {
                        version,
                        index: i as u32,
                        basis: basis_from_code(self.price_basis),
                    })
            }
            3 => cat
                .desnz
                .find(&self.factor_key)
                .map(|i| FactorRef::Desnz { index: i as u32 }),
            // The footprint itself is in `pcf`; a stored line has no profile to index.
            5 => Some(FactorRef::Pcf {
                slot: 0,
                outside_validity: false,
            }),
            _ => Some(FactorRef::Supplier {
                year: self.factor_year.unwrap_or_default(),
            }),
        }
    }

    /// The product footprint of a result from one (PACT).
    pub fn pcf_info(&self) -> Option<vcci_core::PcfInfo> {
        self.pcf
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok())
    }

    /// Set, version and unit of the stored factor; a footprint's from its `pcf`.
    pub fn factor_names(
        &self,
        basis: PriceBasis,
    ) -> (&'static str, Cow<'static, str>, Cow<'static, str>) {
        let names = factor_names(
            self.factor_source,
            &self.factor_key,
            basis,
            self.factor_year,
        );
        match (self.factor_source, self.pcf_info()) {
            (5, Some(p)) => {
                let unit = vcci_core::pact::declared_unit(&p.declared_unit)
                    .map_or("declared unit", |u| u.symbol());
                (
                    SET_PACT,
                    p.spec_version.into(),
                    format!("kg CO2e/{unit}").into(),
                )
            }
            _ => names,
        }
    }

    /// What the factor was applied to: USD of the factor's price year for a spend, the
    /// quantity in the factor's unit for an activity. The same operations, on the same
    /// stored values, as the engine's, so the result is the same to the bit.
    pub fn factor_amount(&self) -> f64 {
        match (
            self.fx_rate,
            self.amount,
            self.cpi_ratio,
            self.unit_factor,
            self.quantity,
        ) {
            (Some(fx), Some(amount), Some(cpi), _, _) => amount / fx * cpi,
            (_, _, _, Some(f), Some(q)) => q * f,
            _ => 0.0,
        }
    }

    /// The line's result by gas (see `vcci_core::calc::gases_of`), with the upstream parts
    /// stored with it: a line calculated before flights carried their WTT has none, and its
    /// gases add up to the CO2e it was booked with.
    pub fn gases(&self) -> Option<GasSplit> {
        self.gases_of(self.factor_ref()?)
    }

    fn gases_of(&self, f: FactorRef) -> Option<GasSplit> {
        let cat = vcci_core::catalog();
        let amount = self.factor_amount();
        let mut g = match f {
            FactorRef::Desnz { .. } if self.own_scope.is_some() => GasSplit::default(),
            FactorRef::Desnz { index } => {
                vcci_core::calc::desnz_split(cat, index as usize).scaled(amount)
            }
            _ => vcci_core::calc::gases_of(cat, f, self.factor_value, amount, false),
        };
        for u in self.upstream_parts().ok()? {
            if u.eeio().is_some() {
                // A hybrid's upstream share: a remainder of the sector factor, no gas split.
                g = g.plus(GasSplit::unspecified(self.hybrid()?.upstream_kg));
                continue;
            }
            let i = cat.desnz.find(&u.key)?;
            g = g.plus(vcci_core::calc::desnz_split(cat, i).scaled(amount));
        }
        Some(g)
    }

    /// A hybrid result's upstream share, recomputed from the stored spend with the same
    /// operations as the engine's (so to the bit).
    pub fn hybrid(&self) -> Option<HybridUpstream> {
        let (version, index) = self
            .upstream_parts()
            .ok()?
            .iter()
            .find_map(Upstream::eeio)?;
        let usd = self.amount? / self.fx_rate?;
        let supplier_kg = usd * self.cpi_ratio? * self.factor_value;
        vcci_core::calc::hybrid_upstream(
            vcci_core::catalog(),
            version,
            index,
            basis_from_code(self.price_basis),
            usd,
            self.cpi_from_year?,
            supplier_kg,
        )
    }

    /// Biogenic CO2 of a fuel or electricity input (kg, outside the scopes).
    pub fn biogenic_co2_kg(&self) -> Option<f64> {
        self.biogenic_of(self.factor_ref()?)
    }

    fn biogenic_of(&self, f: FactorRef) -> Option<f64> {
        match (f, self.unit_factor) {
            (FactorRef::Desnz { index }, Some(_)) => vcci_core::catalog().desnz.factors
                [index as usize]
                .biogenic_co2
                .map(|b| b * self.factor_amount()),
            _ => None,
        }
    }

    /// What the line adds to the read models beyond its CO2e, spend and count (`Extras`).
    pub fn extras(&self) -> Extras {
        let (s1, s2) = self.scope_1_2_mg();
        let f = self.factor_ref();
        extras_of(
            s1,
            s2,
            f.and_then(|f| self.gases_of(f)),
            f.and_then(|f| self.biogenic_of(f)),
        )
    }
}

/// The sums of a line kept in the category read models beyond CO2e, spend and count, in
/// mg: Scope 1 and Scope 2 recorded apart, then CO2, CH4, N2O, other gases, radiative
/// forcing, unspecified (all parts of the CO2e) and biogenic CO2 (outside the scopes).
pub type Extras = [i64; EXTRAS];
pub const EXTRAS: usize = 9;
/// Their columns, in order.
pub const EXTRA_COLUMNS: [&str; EXTRAS] = [
    "scope1_mg",
    "scope2_mg",
    "co2_mg",
    "ch4_mg",
    "n2o_mg",
    "other_gases_mg",
    "rf_mg",
    "unspecified_gas_mg",
    "biogenic_co2_mg",
];

/// Extras in mg: Scope 1 and 2 (mg), the gas split and biogenic CO2 (kg).
pub fn extras_of(s1: i64, s2: i64, gases: Option<GasSplit>, biogenic_kg: Option<f64>) -> Extras {
    let g = gases.unwrap_or_default();
    [
        s1,
        s2,
        kg_to_mg(g.co2),
        kg_to_mg(g.ch4),
        kg_to_mg(g.n2o),
        kg_to_mg(g.other),
        kg_to_mg(g.radiative_forcing),
        kg_to_mg(g.unspecified),
        biogenic_kg.map_or(0, kg_to_mg),
    ]
}

/// (Scope 1 mg, Scope 2 mg) of a line recording `kg` apart in `scope`.
pub(crate) fn scope_split(scope: Option<u16>, kg: Option<f64>) -> (i64, i64) {
    match (scope, kg) {
        (Some(1), Some(kg)) => (kg_to_mg(kg), 0),
        (Some(2), Some(kg)) => (0, kg_to_mg(kg)),
        _ => (0, 0),
    }
}

/// The kind of a hybrid result's upstream part.
pub const EEIO_UPSTREAM: &str = "eeio_upstream";

/// One upstream factor of an energy or fuel input as the body stores it: its kind, key and
/// value, one per line of text as `kind key value` (keys are slugs, without spaces).
#[derive(Clone, Debug, PartialEq)]
pub struct Upstream {
    pub kind: String,
    pub key: String,
    pub value: f64,
}

impl Upstream {
    pub(crate) fn encode_all(parts: &[vcci_core::calc::UpstreamInfo]) -> String {
        let mut out = String::new();
        for u in parts {
            out += &format!("{} {} {}\n", u.kind, u.factor.key, u.factor.value);
        }
        out
    }

    /// A hybrid result's EEIO factor, as a part of kind `eeio_upstream` keyed
    /// `epa-supply-chain/VERSION/NAICS`.
    pub(crate) fn encode_eeio(h: &HybridRef) -> String {
        let f = &vcci_core::catalog().epa(h.version).factors[h.index as usize];
        format!(
            "{EEIO_UPSTREAM} {SET_EPA}/{}/{} {}\n",
            h.version.as_str(),
            f.key,
            f.value(h.basis)
        )
    }

    /// The EPA version and factor index of an `eeio_upstream` part.
    pub fn eeio(&self) -> Option<(EpaVersion, u32)> {
        if self.kind != EEIO_UPSTREAM {
            return None;
        }
        let mut it = self.key.split('/');
        let (Some(SET_EPA), Some(v), Some(naics)) = (it.next(), it.next(), it.next()) else {
            return None;
        };
        let version = EpaVersion::parse(v).ok()?;
        let n = vcci_core::Naics::parse(naics).ok()?;
        let i = vcci_core::catalog().epa(version).find(n)?;
        Some((version, i as u32))
    }

    fn decode_all(s: &str) -> Result<Vec<Upstream>> {
        s.lines()
            .map(|l| {
                let mut it = l.splitn(3, ' ');
                match (it.next(), it.next(), it.next().and_then(|v| v.parse().ok())) {
                    (Some(kind), Some(key), Some(value)) => Ok(Upstream {
                        kind: kind.to_owned(),
                        key: key.to_owned(),
                        value,
                    }),
                    _ => Err(corrupt()),
                }
            })
            .collect()
    }
}

/// Storage codes of enums (small integers keep rows and comparisons cheap).
pub fn method_code(m: Method) -> u8 {
    match m {
        Method::SupplierSpecific => 1,
        Method::AverageData => 2,
        Method::SpendBased => 3,
        Method::Hybrid => 4,
    }
}

pub fn method_from_code(c: u8) -> Method {
    match c {
        1 => Method::SupplierSpecific,
        2 => Method::AverageData,
        4 => Method::Hybrid,
        _ => Method::SpendBased,
    }
}

pub(crate) fn source_code(s: CategorySource) -> u16 {
    match s {
        CategorySource::Line => 1,
        CategorySource::Naics => 2,
        CategorySource::Activity => 3,
        CategorySource::Default => 4,
        CategorySource::Capex => 5,
        CategorySource::Classification => 6,
    }
}

pub(crate) fn source_from_code(c: u16) -> CategorySource {
    match c {
        1 => CategorySource::Line,
        2 => CategorySource::Naics,
        3 => CategorySource::Activity,
        5 => CategorySource::Capex,
        6 => CategorySource::Classification,
        _ => CategorySource::Default,
    }
}

/// Factor set and version as one code. Append only: stored rows keep their codes.
pub(crate) fn factor_source_code(f: FactorRef) -> u16 {
    match f {
        FactorRef::Epa {
            version: EpaVersion::V1_3_0,
            ..
        } => 1,
        FactorRef::Epa {
            version: EpaVersion::V1_2,
            ..
        } => 2,
        FactorRef::Desnz { .. } => 3,
        FactorRef::Supplier { .. } => 4,
        FactorRef::Pcf { .. } => 5,
    }
}

/// Set, version and unit of a stored factor, from its code, key, price basis and the
/// supplier intensity year (`factor_year` of supplier-specific rows).
pub(crate) fn factor_names(
    code: u16,
    key: &str,
    basis: PriceBasis,
    intensity_year: Option<u16>,
) -> (&'static str, Cow<'static, str>, Cow<'static, str>) {
    let cat = vcci_core::catalog();
    match code {
        1 | 2 => {
            let v = if code == 1 {
                EpaVersion::V1_3_0
            } else {
                EpaVersion::V1_2
            };
            (
                SET_EPA,
                v.as_str().into(),
                cat.epa(v).unit_label(basis).into(),
            )
        }
        3 => {
            let unit = cat
                .desnz
                .find(key)
                .map_or(Cow::Borrowed("kg CO2e/unit"), |i| {
                    Cow::Borrowed(cat.desnz.factors[i].value_unit.as_str())
                });
            (SET_DESNZ, vcci_core::factors::desnz::VERSION.into(), unit)
        }
        5 => (
            SET_PACT,
            Cow::Borrowed(""),
            Cow::Borrowed("kg CO2e/declared unit"),
        ),
        _ => {
            let y = intensity_year.map_or_else(String::new, |y| y.to_string());
            (
                SET_SUPPLIER,
                y.clone().into(),
                format!("kg CO2e/{y} USD").into(),
            )
        }
    }
}

pub(crate) fn basis_code(b: PriceBasis) -> u16 {
    match b {
        PriceBasis::Purchaser => 0,
        PriceBasis::Producer => 1,
    }
}

pub(crate) fn basis_from_code(c: u16) -> PriceBasis {
    if c == 1 {
        PriceBasis::Producer
    } else {
        PriceBasis::Purchaser
    }
}

/// kg → integer milligrams (the read models' unit of emissions).
pub fn kg_to_mg(kg: f64) -> i64 {
    (kg * 1e6).round() as i64
}

/// USD → integer milli-USD (the read models' unit of spend).
pub fn usd_to_musd(usd: f64) -> i64 {
    (usd * 1e3).round() as i64
}

/// `kg_to_mg(co2e_kg)` of a line in SQL. SQLite computes it (same IEEE product, same
/// half-away-from-zero rounding); PostgreSQL's `round(float8)` rounds half to even, so its
/// lines carry the value computed in Rust as a column.
pub fn mg_sql(d: Dialect) -> &'static str {
    match d {
        Dialect::Sqlite => "CAST(round(co2e_kg * 1000000.0) AS INTEGER)",
        Dialect::Postgres => "co2e_mg",
    }
}

/// `usd_to_musd(spend_usd)` of a line in SQL, 0 without spend.
pub fn musd_sql(d: Dialect) -> &'static str {
    match d {
        Dialect::Sqlite => "CAST(round(COALESCE(spend_usd, 0.0) * 1000.0) AS INTEGER)",
        Dialect::Postgres => "spend_musd",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(desc in proptest::option::of(".{0,40}"), amount in proptest::option::of(-1e12f64..1e12),
                      key in "[a-z0-9/.-]{0,80}", fx in proptest::option::of(0.0f64..200.0), y in proptest::option::of(1990u16..2100)) {
            let r = BodyRef { description: desc.as_deref(), amount, currency: Some("EUR"), factor_key: &key, factor_value: 0.5,
                fx_rate: fx, fx_year: y, price_basis: 1, category_source: 2, factor_source: 3, ..Default::default() };
            let mut buf = Vec::new();
            r.encode(&mut buf);
            let b = Body::decode(&buf).unwrap();
            prop_assert_eq!(b.description, desc);
            prop_assert_eq!(b.amount, amount);
            prop_assert_eq!(b.currency.as_deref(), Some("EUR"));
            prop_assert_eq!(b.factor_key, key);
            prop_assert_eq!((b.fx_rate, b.fx_year), (fx, y));
            prop_assert_eq!((b.price_basis, b.category_source, b.factor_source), (1, 2, 3));
        }
    }

    /// A body with a product is version 2 (a 64-bit mask); one without stays version 1,
    /// 4 bytes shorter; both read back.
    #[test]
    fn product_fields_widen_the_mask() {
        let plain = BodyRef {
            factor_key: "k",
            supplier_data: Some(3),
            ..Default::default()
        };
        let mut v1 = Vec::new();
        plain.encode(&mut v1);
        assert_eq!(v1[0], 1);
        let with = BodyRef {
            product_id: Some("urn:gtin:1"),
            pcf: Some("{}"),
            ..plain
        };
        let mut v2 = Vec::new();
        with.encode(&mut v2);
        assert_eq!((v2[0], v2.len()), (2, v1.len() + 4 + 4 + 10 + 4 + 2));
        let b = Body::decode(&v2).unwrap();
        assert_eq!(
            (b.supplier_data, b.product_id.as_deref(), b.pcf.as_deref()),
            (Some(3), Some("urn:gtin:1"), Some("{}"))
        );
        let b = Body::decode(&v1).unwrap();
        assert_eq!((b.supplier_data, b.product_id), (Some(3), None));
        assert!(Body::decode(&v2[..8]).is_err());
    }

    #[test]
    fn corrupt_bodies_are_errors() {
        assert!(Body::decode(&[]).is_err());
        assert!(Body::decode(&[9, 0, 0, 0, 0]).is_err());
        assert!(Body::decode(&[1, 1, 0, 0, 0, 200, 0, 0, 0]).is_err());
    }
}
