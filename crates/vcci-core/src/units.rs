//! Physical units and dimensional conversion.
//!
//! Every unit has a dimension and a factor to that dimension's base unit (kg, kWh, litre,
//! km, tonne.km, passenger.km, room-night, FTE-hour). Conversion between units of the
//! same dimension is exact arithmetic on those factors; between dimensions it is an error.
//! Energy on a net or gross calorific-value basis is its own dimension: turning one into the
//! other depends on the fuel, so it is not a unit conversion.

use serde::{Deserialize, Serialize};

/// What a unit measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    Mass,
    Energy,
    EnergyNetCv,
    EnergyGrossCv,
    Volume,
    Distance,
    FreightDistance,
    PassengerDistance,
    RoomNight,
    FteHour,
    Area,
    Count,
    Time,
    DataTransfer,
}

impl Dimension {
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Mass => "mass",
            Dimension::Energy => "energy",
            Dimension::EnergyNetCv => "energy (net CV)",
            Dimension::EnergyGrossCv => "energy (gross CV)",
            Dimension::Volume => "volume",
            Dimension::Distance => "distance",
            Dimension::FreightDistance => "freight distance (tonne.km)",
            Dimension::PassengerDistance => "passenger distance (passenger.km)",
            Dimension::RoomNight => "room-nights",
            Dimension::FteHour => "FTE working hours",
            Dimension::Area => "area",
            Dimension::Count => "pieces",
            Dimension::Time => "time",
            Dimension::DataTransfer => "data transfer (megabit.second)",
        }
    }
}

/// A known unit: index into `UNITS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Unit(u8);

struct UnitDef {
    symbol: &'static str,
    dim: Dimension,
    to_base: f64,
    aliases: &'static [&'static str],
}

const MILE_KM: f64 = 1.609_344;

// Aliases are compared after lower-casing and removing spaces, '_' and '-'.
const UNITS: &[UnitDef] = &[
    UnitDef {
        symbol: "kg",
        dim: Dimension::Mass,
        to_base: 1.0,
        aliases: &["kg", "kgs", "kilogram", "kilograms"],
    },
    UnitDef {
        symbol: "g",
        dim: Dimension::Mass,
        to_base: 0.001,
        aliases: &["g", "gram", "grams"],
    },
    UnitDef {
        symbol: "tonnes",
        dim: Dimension::Mass,
        to_base: 1000.0,
        aliases: &["t", "tonne", "tonnes", "metricton", "metrictons"],
    },
    UnitDef {
        symbol: "lb",
        dim: Dimension::Mass,
        to_base: 0.453_592_37,
        aliases: &["lb", "lbs", "pound", "pounds"],
    },
    UnitDef {
        symbol: "short ton",
        dim: Dimension::Mass,
        to_base: 907.184_74,
        aliases: &["shortton", "shorttons", "uston", "ustons"],
    },
    UnitDef {
        symbol: "long ton",
        dim: Dimension::Mass,
        to_base: 1_016.046_908_8,
        aliases: &["longton", "longtons"],
    },
    UnitDef {
        symbol: "kWh",
        dim: Dimension::Energy,
        to_base: 1.0,
        aliases: &["kwh"],
    },
    UnitDef {
        symbol: "Wh",
        dim: Dimension::Energy,
        to_base: 0.001,
        aliases: &["wh"],
    },
    UnitDef {
        symbol: "MWh",
        dim: Dimension::Energy,
        to_base: 1000.0,
        aliases: &["mwh"],
    },
    UnitDef {
        symbol: "GWh",
        dim: Dimension::Energy,
        to_base: 1_000_000.0,
        aliases: &["gwh"],
    },
    UnitDef {
        symbol: "MJ",
        dim: Dimension::Energy,
        to_base: 1.0 / 3.6,
        aliases: &["mj"],
    },
    UnitDef {
        symbol: "GJ",
        dim: Dimension::Energy,
        to_base: 1000.0 / 3.6,
        aliases: &["gj"],
    },
    UnitDef {
        symbol: "therm",
        dim: Dimension::Energy,
        to_base: 29.307_107,
        aliases: &["therm", "therms"],
    },
    UnitDef {
        symbol: "kWh (Net CV)",
        dim: Dimension::EnergyNetCv,
        to_base: 1.0,
        aliases: &["kwh(netcv)", "kwhnetcv", "kwhnet", "kwh(net)"],
    },
    UnitDef {
        symbol: "MWh (Net CV)",
        dim: Dimension::EnergyNetCv,
        to_base: 1000.0,
        aliases: &["mwh(netcv)", "mwhnetcv"],
    },
    UnitDef {
        symbol: "GJ (Net CV)",
        dim: Dimension::EnergyNetCv,
        to_base: 1000.0 / 3.6,
        aliases: &["gj(netcv)", "gjnetcv"],
    },
    UnitDef {
        symbol: "kWh (Gross CV)",
        dim: Dimension::EnergyGrossCv,
        to_base: 1.0,
        aliases: &["kwh(grosscv)", "kwhgrosscv", "kwhgross"],
    },
    UnitDef {
        symbol: "MWh (Gross CV)",
        dim: Dimension::EnergyGrossCv,
        to_base: 1000.0,
        aliases: &["mwh(grosscv)", "mwhgrosscv"],
    },
    UnitDef {
        symbol: "GJ (Gross CV)",
        dim: Dimension::EnergyGrossCv,
        to_base: 1000.0 / 3.6,
        aliases: &["gj(grosscv)", "gjgrosscv"],
    },
    UnitDef {
        symbol: "litres",
        dim: Dimension::Volume,
        to_base: 1.0,
        aliases: &["l", "litre", "litres", "liter", "liters"],
    },
    UnitDef {
        symbol: "ml",
        dim: Dimension::Volume,
        to_base: 0.001,
        aliases: &["ml", "millilitre", "millilitres"],
    },
    UnitDef {
        symbol: "cubic metres",
        dim: Dimension::Volume,
        to_base: 1000.0,
        aliases: &[
            "m3",
            "m³",
            "cubicmetre",
            "cubicmetres",
            "cubicmeter",
            "cubicmeters",
        ],
    },
    UnitDef {
        symbol: "million litres",
        dim: Dimension::Volume,
        to_base: 1_000_000.0,
        aliases: &["millionlitres", "millionliters", "megalitre", "megalitres"],
    },
    UnitDef {
        symbol: "US gallon",
        dim: Dimension::Volume,
        to_base: 3.785_411_784,
        aliases: &["usgal", "usgallon", "usgallons"],
    },
    UnitDef {
        symbol: "UK gallon",
        dim: Dimension::Volume,
        to_base: 4.546_09,
        aliases: &[
            "ukgal",
            "ukgallon",
            "ukgallons",
            "imperialgallon",
            "imperialgallons",
        ],
    },
    UnitDef {
        symbol: "km",
        dim: Dimension::Distance,
        to_base: 1.0,
        aliases: &[
            "km",
            "kms",
            "kilometre",
            "kilometres",
            "kilometer",
            "kilometers",
            "vkm",
            "vehiclekm",
        ],
    },
    UnitDef {
        symbol: "m",
        dim: Dimension::Distance,
        to_base: 0.001,
        aliases: &["m", "metre", "metres", "meter", "meters"],
    },
    UnitDef {
        symbol: "miles",
        dim: Dimension::Distance,
        to_base: MILE_KM,
        aliases: &["mi", "mile", "miles", "vehiclemile", "vehiclemiles"],
    },
    UnitDef {
        symbol: "nautical miles",
        dim: Dimension::Distance,
        to_base: 1.852,
        aliases: &["nmi", "nauticalmile", "nauticalmiles"],
    },
    UnitDef {
        symbol: "tonne.km",
        dim: Dimension::FreightDistance,
        to_base: 1.0,
        aliases: &[
            "tonne.km",
            "tkm",
            "t.km",
            "tonnekm",
            "tonnekilometre",
            "tonnekilometres",
            "tonne.kilometre",
        ],
    },
    UnitDef {
        symbol: "tonne.mile",
        dim: Dimension::FreightDistance,
        to_base: MILE_KM,
        aliases: &["tonne.mile", "tonnemile", "tonnemiles", "t.mile", "tmi"],
    },
    UnitDef {
        symbol: "short ton.mile",
        dim: Dimension::FreightDistance,
        to_base: 0.907_184_74 * MILE_KM,
        aliases: &[
            "tonmile",
            "tonmiles",
            "ton.mile",
            "shortton.mile",
            "shorttonmile",
        ],
    },
    UnitDef {
        symbol: "passenger.km",
        dim: Dimension::PassengerDistance,
        to_base: 1.0,
        aliases: &[
            "passenger.km",
            "pkm",
            "p.km",
            "passengerkm",
            "passengerkilometre",
            "passengerkilometres",
        ],
    },
    UnitDef {
        symbol: "passenger.mile",
        dim: Dimension::PassengerDistance,
        to_base: MILE_KM,
        aliases: &[
            "passenger.mile",
            "pmi",
            "p.mile",
            "passengermile",
            "passengermiles",
        ],
    },
    UnitDef {
        symbol: "room-night",
        dim: Dimension::RoomNight,
        to_base: 1.0,
        aliases: &[
            "roomnight",
            "roomnights",
            "roompernight",
            "night",
            "nights",
            "hotelnight",
            "hotelnights",
        ],
    },
    UnitDef {
        symbol: "FTE-hour",
        dim: Dimension::FteHour,
        to_base: 1.0,
        aliases: &["ftehour", "ftehours", "perfteworkinghour", "fteworkinghour"],
    },
    // The declared units of PACT product footprints beyond the above (PACT Tech Specs v3,
    // `declaredUnitOfMeasurement`): square meter, piece, hour, megabit second.
    UnitDef {
        symbol: "m²",
        dim: Dimension::Area,
        to_base: 1.0,
        aliases: &[
            "m²",
            "m2",
            "sqm",
            "squaremetre",
            "squaremetres",
            "squaremeter",
            "squaremeters",
        ],
    },
    UnitDef {
        symbol: "ft²",
        dim: Dimension::Area,
        to_base: 0.092_903_04,
        aliases: &["ft²", "ft2", "sqft", "squarefoot", "squarefeet"],
    },
    UnitDef {
        symbol: "piece",
        dim: Dimension::Count,
        to_base: 1.0,
        aliases: &[
            "piece", "pieces", "pc", "pcs", "each", "ea", "item", "items",
        ],
    },
    UnitDef {
        symbol: "dozen",
        dim: Dimension::Count,
        to_base: 12.0,
        aliases: &["dozen", "doz"],
    },
    UnitDef {
        symbol: "hour",
        dim: Dimension::Time,
        to_base: 1.0,
        aliases: &["h", "hr", "hrs", "hour", "hours"],
    },
    UnitDef {
        symbol: "megabit.second",
        dim: Dimension::DataTransfer,
        to_base: 1.0,
        aliases: &[
            "megabit.second",
            "megabitsecond",
            "megabitseconds",
            "mbit.s",
            "mbits",
        ],
    },
];

fn normalize(s: &str) -> String {
    s.trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Why two units cannot be converted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("cannot convert {from} ({from_dim}) to {to} ({to_dim})")]
pub struct IncompatibleUnits {
    pub from: &'static str,
    pub from_dim: &'static str,
    pub to: &'static str,
    pub to_dim: &'static str,
}

impl Unit {
    /// Parses a unit name in the many spellings exports use ("t.km", "tonne-km", "Miles", ...).
    pub fn parse(s: &str) -> Result<Unit, String> {
        let n = normalize(s);
        UNITS
            .iter()
            .position(|u| u.aliases.iter().any(|a| *a == n))
            .map(|i| Unit(i as u8))
            .ok_or_else(|| format!("'{}' is not a known unit", s.trim()))
    }

    fn def(self) -> &'static UnitDef {
        &UNITS[self.0 as usize]
    }

    /// The canonical symbol, e.g. "tonne.km".
    pub fn symbol(self) -> &'static str {
        self.def().symbol
    }

    pub fn dimension(self) -> Dimension {
        self.def().dim
    }

    /// The multiplier that turns a quantity in `self` into one in `to`.
    pub fn factor_to(self, to: Unit) -> Result<f64, IncompatibleUnits> {
        let (a, b) = (self.def(), to.def());
        if a.dim != b.dim {
            return Err(IncompatibleUnits {
                from: a.symbol,
                from_dim: a.dim.as_str(),
                to: b.symbol,
                to_dim: b.dim.as_str(),
            });
        }
        if self == to {
            return Ok(1.0);
        }
        Ok(a.to_base / b.to_base)
    }

    /// Every known unit, for documentation and tests.
    pub fn all() -> impl Iterator<Item = Unit> {
        (0..UNITS.len() as u8).map(Unit)
    }
}

impl std::fmt::Display for Unit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.symbol())
    }
}

impl Serialize for Unit {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.symbol())
    }
}

impl<'de> Deserialize<'de> for Unit {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Unit::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn u(s: &str) -> Unit {
        Unit::parse(s).unwrap()
    }

    #[test]
    fn spellings() {
        assert_eq!(u("t.km"), u("tonne.km"));
        assert_eq!(u("Tonne-km"), u("tkm"));
        assert_eq!(u("Room per night"), u("room-night"));
        assert_eq!(u("kWh (Net CV)").dimension(), Dimension::EnergyNetCv);
        assert_eq!(u("per FTE Working Hour").dimension(), Dimension::FteHour);
        assert_eq!(u("cubic metres"), u("m3"));
        assert!(Unit::parse("furlongs").is_err());
    }

    #[test]
    fn aliases_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for d in UNITS {
            for a in d.aliases {
                assert_eq!(normalize(a), *a, "alias {a} must be normalized");
                assert!(seen.insert(*a), "alias {a} twice");
            }
        }
    }

    #[test]
    fn known_conversions() {
        assert_eq!(u("miles").factor_to(u("km")).unwrap(), 1.609344);
        assert_eq!(u("tonnes").factor_to(u("kg")).unwrap(), 1000.0);
        assert!((u("GJ").factor_to(u("kWh")).unwrap() - 277.777_777_777_777_8).abs() < 1e-9);
        assert!((u("MJ").factor_to(u("kWh")).unwrap() - 1.0 / 3.6).abs() < 1e-15);
        assert_eq!(u("m3").factor_to(u("litres")).unwrap(), 1000.0);
        assert_eq!(u("litres").factor_to(u("million litres")).unwrap(), 1e-6);
        assert!((u("passenger.mile").factor_to(u("p.km")).unwrap() - 1.609344).abs() < 1e-15);
    }

    #[test]
    fn incompatible_is_an_error() {
        let e = u("kg").factor_to(u("km")).unwrap_err();
        assert_eq!(e.to_string(), "cannot convert kg (mass) to km (distance)");
        assert!(u("kWh (Net CV)").factor_to(u("kWh")).is_err());
        assert!(u("tonne.km").factor_to(u("km")).is_err());
    }

    fn any_unit() -> impl Strategy<Value = Unit> {
        (0..UNITS.len() as u8).prop_map(Unit)
    }

    proptest! {
        #[test]
        fn round_trip(a in any_unit(), b in any_unit(), q in -1e9f64..1e9) {
            match (a.factor_to(b), b.factor_to(a)) {
                (Ok(f), Ok(g)) => {
                    let back = q * f * g;
                    prop_assert!((back - q).abs() <= 1e-9 * q.abs().max(1.0));
                }
                (Err(_), Err(_)) => prop_assert_ne!(a.dimension(), b.dimension()),
                _ => prop_assert!(false, "conversion must be symmetric in possibility"),
            }
        }

        #[test]
        fn transitive(a in any_unit(), b in any_unit(), c in any_unit()) {
            if let (Ok(ab), Ok(bc), Ok(ac)) = (a.factor_to(b), b.factor_to(c), a.factor_to(c)) {
                prop_assert!((ab * bc - ac).abs() <= 1e-12 * ac.abs());
            }
        }
    }
}
