//! The gas split of factors and results: CO2, CH4, N2O and other gases in kg CO2e, the
//! radiative-forcing uplift of flights (not a gas, and not CO2), and what a factor set does not
//! split. Biogenic CO2 is outside the scopes and kept apart from all of these.

use serde::{Deserialize, Serialize};

/// 100-year global-warming potentials of the IPCC Fifth Assessment Report (AR5), the GWPs of
/// EPA v1.3.0 and DESNZ 2024, for the gases of the EPA per-gas file. 'HFCs and PFCs,
/// unspecified' is given in kg CO2e already.
pub const AR5_GWP: &[(&str, f64)] = &[
    ("Carbon dioxide", 1.0),
    ("Methane", 28.0),
    ("Nitrous oxide", 265.0),
    ("HFC-23", 12_400.0),
    ("HFC-32", 677.0),
    ("HFC-125", 3_170.0),
    ("HFC-134a", 1_300.0),
    ("HFC-143a", 4_800.0),
    ("HFC-236fa", 8_060.0),
    ("Carbon tetrafluoride", 6_630.0),
    ("Hexafluoroethane", 11_100.0),
    ("Perfluoropropane", 8_900.0),
    ("Perfluorobutane", 9_200.0),
    ("Perfluorocyclobutane", 9_540.0),
    ("Perfluorohexane", 7_910.0),
    ("Sulfur hexafluoride", 23_500.0),
    ("Nitrogen trifluoride", 16_100.0),
    ("HFCs and PFCs, unspecified", 1.0),
];

/// The AR5 GWP of an EPA gas name.
pub fn ar5_gwp(gas: &str) -> Option<f64> {
    AR5_GWP.iter().find(|(g, _)| *g == gas).map(|(_, v)| *v)
}

/// kg CO2e by gas (per unit of a factor, or of a result; in JSON with `_kg` names).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GasSplit {
    #[serde(rename = "co2_kg")]
    pub co2: f64,
    #[serde(rename = "ch4_kg")]
    pub ch4: f64,
    #[serde(rename = "n2o_kg")]
    pub n2o: f64,
    /// HFCs, PFCs, SF6, NF3.
    #[serde(rename = "other_kg")]
    pub other: f64,
    /// The radiative-forcing uplift of flights: warming at altitude, not a gas.
    #[serde(rename = "radiative_forcing_kg")]
    pub radiative_forcing: f64,
    /// What the factor set does not split by gas (WTT factors, supplier intensities, EPA v1.2).
    #[serde(rename = "unspecified_kg")]
    pub unspecified: f64,
}

impl GasSplit {
    /// All of `kg` unsplit.
    pub fn unspecified(kg: f64) -> GasSplit {
        GasSplit {
            unspecified: kg,
            ..GasSplit::default()
        }
    }

    pub fn scaled(self, k: f64) -> GasSplit {
        GasSplit {
            co2: self.co2 * k,
            ch4: self.ch4 * k,
            n2o: self.n2o * k,
            other: self.other * k,
            radiative_forcing: self.radiative_forcing * k,
            unspecified: self.unspecified * k,
        }
    }

    pub fn plus(self, o: GasSplit) -> GasSplit {
        GasSplit {
            co2: self.co2 + o.co2,
            ch4: self.ch4 + o.ch4,
            n2o: self.n2o + o.n2o,
            other: self.other + o.other,
            radiative_forcing: self.radiative_forcing + o.radiative_forcing,
            unspecified: self.unspecified + o.unspecified,
        }
    }

    /// The sum of all parts: the result's CO2e within the rounding of the source data.
    pub fn total(&self) -> f64 {
        self.co2 + self.ch4 + self.n2o + self.other + self.radiative_forcing + self.unspecified
    }
}
