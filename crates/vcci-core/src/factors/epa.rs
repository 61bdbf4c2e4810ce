//! US EPA Supply Chain GHG Emission Factors (USEEIO), by NAICS-2017, kg CO2e per USD.

use serde::{Deserialize, Serialize};

use super::tables::{column, records};
use crate::gases::{GasSplit, ar5_gwp};
use crate::naics::Naics;

/// The EPA releases vcci ships.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EpaVersion {
    /// v1.3.0: GHG data year 2022, 2022 USD, AR5 GWPs. The default for spend.
    #[serde(rename = "1.3.0")]
    V1_3_0,
    /// v1.2: GHG data year 2019, 2021 USD, AR4 GWPs.
    #[serde(rename = "1.2")]
    V1_2,
}

impl EpaVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            EpaVersion::V1_3_0 => "1.3.0",
            EpaVersion::V1_2 => "1.2",
        }
    }
    pub fn parse(s: &str) -> Result<EpaVersion, String> {
        match s.trim() {
            "1.3.0" | "1.3" => Ok(EpaVersion::V1_3_0),
            "1.2" | "1.2.0" => Ok(EpaVersion::V1_2),
            other => Err(format!(
                "'{other}' is not a shipped epa-supply-chain version (1.3.0 or 1.2)"
            )),
        }
    }
    /// The dollar year the factors are expressed in.
    pub fn price_year(self) -> u16 {
        match self {
            EpaVersion::V1_3_0 => 2022,
            EpaVersion::V1_2 => 2021,
        }
    }
    /// The year of the GHG data behind the factors.
    pub fn data_year(self) -> u16 {
        match self {
            EpaVersion::V1_3_0 => 2022,
            EpaVersion::V1_2 => 2019,
        }
    }
    pub fn gwp(self) -> &'static str {
        match self {
            EpaVersion::V1_3_0 => "AR5",
            EpaVersion::V1_2 => "AR4",
        }
    }
    pub fn all() -> [EpaVersion; 2] {
        [EpaVersion::V1_3_0, EpaVersion::V1_2]
    }
}

/// Which price the spend was recorded at, which picks the factor column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PriceBasis {
    /// What the buyer paid (the default): factors *with* margins (cradle to shelf).
    #[default]
    Purchaser,
    /// Factory-gate price: factors *without* margins.
    Producer,
}

impl PriceBasis {
    pub fn as_str(self) -> &'static str {
        match self {
            PriceBasis::Purchaser => "purchaser",
            PriceBasis::Producer => "producer",
        }
    }
    pub fn parse(s: &str) -> Result<PriceBasis, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "purchaser" | "" => Ok(PriceBasis::Purchaser),
            "producer" => Ok(PriceBasis::Producer),
            other => Err(format!(
                "'{other}' is not a price basis (purchaser or producer)"
            )),
        }
    }
    /// The EPA column this basis uses.
    pub fn margins(self) -> &'static str {
        match self {
            PriceBasis::Purchaser => "with_margins",
            PriceBasis::Producer => "without_margins",
        }
    }
}

/// One NAICS row (all GHGs, CO2e).
#[derive(Clone, Debug)]
pub struct EpaFactor {
    pub naics: Naics,
    /// The NAICS code as text: the factor's key.
    pub key: String,
    pub title: String,
    pub without_margins: f64,
    pub margins: f64,
    pub with_margins: f64,
    pub useeio: Vec<String>,
}

impl EpaFactor {
    #[inline]
    pub fn value(&self, basis: PriceBasis) -> f64 {
        match basis {
            PriceBasis::Purchaser => self.with_margins,
            PriceBasis::Producer => self.without_margins,
        }
    }
}

/// One gas of one NAICS row (v1.3.0 per-gas file). `unit` is kg of the gas per USD, except
/// the 'HFCs and PFCs, unspecified' row, which is kg CO2e per USD.
#[derive(Clone, Debug)]
pub struct EpaGas {
    pub gas: String,
    pub unit: String,
    pub without_margins: f64,
    pub with_margins: f64,
}

/// One shipped release.
#[derive(Clone, Debug)]
pub struct EpaSet {
    pub version: EpaVersion,
    /// Sorted by NAICS code.
    pub factors: Vec<EpaFactor>,
    /// Per-gas rows, when the release ships them; `gas_ranges[i]` indexes `gases` for factor i.
    pub gases: Vec<EpaGas>,
    pub gas_ranges: Vec<(u32, u32)>,
    /// Per factor, the gas split in kg CO2e per USD (AR5 GWPs) with and without margins,
    /// when the release ships per-gas rows.
    pub splits: Vec<[GasSplit; 2]>,
    /// The factors' NAICS codes in order: 4 KB that stay in L1 cache, so that a lookup does
    /// not walk the (104-byte) factors (measured: a quarter of a spend line's time).
    codes: Vec<u32>,
}

fn num(s: &str) -> f64 {
    s.trim().parse().expect("EPA factor value")
}

impl EpaSet {
    pub fn parse(version: EpaVersion, co2e: &str, by_gas: Option<&str>) -> EpaSet {
        let rows = records(co2e);
        let h = &rows[0];
        let c = [
            column(h, "2017 NAICS Code"),
            column(h, "2017 NAICS Title"),
            column(h, "Supply Chain Emission Factors without Margins"),
            column(h, "Margins of Supply Chain Emission Factors"),
            column(h, "Supply Chain Emission Factors with Margins"),
            column(h, "Reference USEEIO Code"),
        ];
        let mut factors: Vec<EpaFactor> = rows[1..]
            .iter()
            .map(|r| EpaFactor {
                naics: Naics::parse(&r[c[0]]).expect("EPA NAICS code"),
                key: r[c[0]].trim().to_owned(),
                title: r[c[1]].clone(),
                without_margins: num(&r[c[2]]),
                margins: num(&r[c[3]]),
                with_margins: num(&r[c[4]]),
                useeio: r[c[5]].split(',').map(|s| s.trim().to_owned()).collect(),
            })
            .collect();
        factors.sort_by_key(|f| f.naics);
        let mut set = EpaSet {
            version,
            factors,
            gases: Vec::new(),
            gas_ranges: Vec::new(),
            splits: Vec::new(),
            codes: Vec::new(),
        };
        set.codes = set.factors.iter().map(|f| f.naics.code()).collect();
        if let Some(text) = by_gas {
            let rows = records(text);
            let h = &rows[0];
            let (n, g, u, wo, w) = (
                column(h, "2017 NAICS Code"),
                column(h, "GHG"),
                column(h, "Unit"),
                column(h, "Supply Chain Emission Factors without Margins"),
                column(h, "Supply Chain Emission Factors with Margins"),
            );
            let mut by: Vec<(u32, EpaGas)> = rows[1..]
                .iter()
                .map(|r| {
                    let code = Naics::parse(&r[n]).expect("NAICS").code();
                    let gas = EpaGas {
                        gas: r[g].clone(),
                        unit: r[u].clone(),
                        without_margins: num(&r[wo]),
                        with_margins: num(&r[w]),
                    };
                    (code, gas)
                })
                .collect();
            by.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.gas.cmp(&b.1.gas)));
            for f in &set.factors {
                let start = by.partition_point(|(c, _)| *c < f.naics.code()) as u32;
                let end = by.partition_point(|(c, _)| *c <= f.naics.code()) as u32;
                set.gas_ranges.push((start, end));
            }
            set.gases = by.into_iter().map(|(_, g)| g).collect();
            set.splits = (0..set.factors.len())
                .map(|i| {
                    let mut with = GasSplit::default();
                    let mut without = GasSplit::default();
                    for g in set.gases_of(i) {
                        let gwp = ar5_gwp(&g.gas)
                            .unwrap_or_else(|| panic!("EPA gas {:?} has no GWP in vcci", g.gas));
                        let add = |s: &mut GasSplit, v: f64| match g.gas.as_str() {
                            "Carbon dioxide" => s.co2 += v,
                            "Methane" => s.ch4 += v,
                            "Nitrous oxide" => s.n2o += v,
                            _ => s.other += v,
                        };
                        add(&mut with, g.with_margins * gwp);
                        add(&mut without, g.without_margins * gwp);
                    }
                    [with, without]
                })
                .collect();
        }
        set
    }

    /// The gas split of factor `i` per USD for `basis`, if this release ships one.
    #[inline]
    pub fn split(&self, i: usize, basis: PriceBasis) -> Option<GasSplit> {
        self.splits.get(i).map(|s| match basis {
            PriceBasis::Purchaser => s[0],
            PriceBasis::Producer => s[1],
        })
    }

    /// Index of the factor for `naics`, if the release has one.
    #[inline]
    pub fn find(&self, naics: Naics) -> Option<usize> {
        self.codes.binary_search(&naics.code()).ok()
    }

    /// Per-gas rows of factor `i` (empty when this release ships none).
    pub fn gases_of(&self, i: usize) -> &[EpaGas] {
        match self.gas_ranges.get(i) {
            Some(&(s, e)) => &self.gases[s as usize..e as usize],
            None => &[],
        }
    }

    /// The unit label of the values, e.g. "kg CO2e/2022 USD, purchaser price".
    pub fn unit_label(&self, basis: PriceBasis) -> &'static str {
        match (self.version, basis) {
            (EpaVersion::V1_3_0, PriceBasis::Purchaser) => "kg CO2e/2022 USD, purchaser price",
            (EpaVersion::V1_3_0, PriceBasis::Producer) => "kg CO2e/2022 USD, producer price",
            (EpaVersion::V1_2, PriceBasis::Purchaser) => "kg CO2e/2021 USD, purchaser price",
            (EpaVersion::V1_2, PriceBasis::Producer) => "kg CO2e/2021 USD, producer price",
        }
    }
}
