//! UK DESNZ/DEFRA GHG conversion factors 2024 v1.1 (activity-based), from the tidy CSV.
//!
//! Keys are built from the workbook's own labels, slugged and joined with '/':
//! `sheet/activity/dim1/dim2/column_group/unit` (empty parts left out), e.g.
//! `freighting-goods/hgv-all-diesel/all-hgvs/average-laden/tonne.km`. They are unique
//! (checked by a test) and stable as long as the workbook's labels are.

use std::collections::HashMap;

use super::tables::{column, records};
use crate::category::Category;
use crate::gases::GasSplit;
use crate::units::Unit;

pub const VERSION: &str = "2024-v1.1";
pub const DEFAULT_YEAR: u16 = 2024;

/// The GHG Protocol scope of a factor, as the workbook labels it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Direct emissions of the reporting company (fuels burnt, owned vehicles, refrigerants).
    One,
    /// Purchased electricity, heat and steam.
    Two,
    Three,
    /// Biogenic CO2, outside the scopes.
    Outside,
}

impl Scope {
    pub fn parse(label: &str) -> Option<Scope> {
        match label {
            "Scope 1" => Some(Scope::One),
            "Scope 2" => Some(Scope::Two),
            "Scope 3" => Some(Scope::Three),
            "Outside of Scopes" => Some(Scope::Outside),
            _ => None,
        }
    }

    /// The workbook's label: "Scope 1", "Scope 2", "Scope 3", "Outside of Scopes".
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::One => "Scope 1",
            Scope::Two => "Scope 2",
            Scope::Three => "Scope 3",
            Scope::Outside => "Outside of Scopes",
        }
    }

    /// 1 or 2 for the reporting company's own emissions, which a Scope 3 total never counts.
    pub fn own(self) -> Option<u8> {
        match self {
            Scope::One => Some(1),
            Scope::Two => Some(2),
            _ => None,
        }
    }
}

/// What an upstream factor of an energy or fuel input accounts for (GHG Protocol category 3,
/// activities a to c).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UpstreamKind {
    /// Well-to-tank: extracting, refining and transporting the fuel, or the fuels of the
    /// electricity or heat generated.
    Wtt,
    /// Generation of the electricity (or heat) lost in transmission and distribution.
    TdLosses,
    /// Well-to-tank of the electricity (or heat) lost in transmission and distribution.
    WttTdLosses,
}

impl UpstreamKind {
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamKind::Wtt => "wtt",
            UpstreamKind::TdLosses => "td_losses",
            UpstreamKind::WttTdLosses => "wtt_td_losses",
        }
    }

    pub fn parse(s: &str) -> Option<UpstreamKind> {
        [
            UpstreamKind::Wtt,
            UpstreamKind::TdLosses,
            UpstreamKind::WttTdLosses,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// An upstream factor of a Scope 1 or 2 factor: per unit of the same activity, in the same
/// unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Upstream {
    pub kind: UpstreamKind,
    pub index: u32,
}

/// One activity factor (kg CO2e per unit) with its gas split where the workbook gives one.
#[derive(Clone, Debug)]
pub struct DesnzFactor {
    pub key: String,
    pub sheet: String,
    pub scope: Scope,
    pub activity: String,
    pub dims: Vec<(String, String)>,
    pub column_group: String,
    pub unit_label: String,
    pub unit: Unit,
    /// "kg CO2e/<unit>", the unit of `value`.
    pub value_unit: String,
    pub year: u16,
    pub region: String,
    pub value: f64,
    /// kg CO2e of CO2, CH4 and N2O per unit.
    pub co2: Option<f64>,
    pub ch4: Option<f64>,
    pub n2o: Option<f64>,
    pub category: Category,
    /// For a Scope 1 or 2 factor: the Scope 3 factors of its upstream emissions (category 3),
    /// found by `link_upstream`. Empty when the workbook has none. For a flight: its WTT.
    pub upstream: Vec<Upstream>,
    /// A flight: whether the factor includes radiative forcing, and the same flight's factor
    /// with the other choice.
    pub rf: Option<(bool, u32)>,
    /// kg of biogenic CO2 per unit, outside the scopes ("Outside of scopes" sheet), for
    /// bioenergy, forecourt fuels with a biofuel blend and UK electricity.
    pub biogenic_co2: Option<f64>,
}

impl DesnzFactor {
    /// A readable name: "Freighting goods › HGV (all diesel) › All HGVs › Average laden".
    /// The workbook's gas split per unit, where it gives one.
    pub fn gas_split(&self) -> Option<GasSplit> {
        Some(GasSplit {
            co2: self.co2?,
            ch4: self.ch4.unwrap_or(0.0),
            n2o: self.n2o.unwrap_or(0.0),
            ..GasSplit::default()
        })
    }

    pub fn name(&self) -> String {
        let mut parts = vec![self.sheet.as_str(), self.activity.as_str()];
        parts.extend(self.dims.iter().map(|(_, v)| v.as_str()));
        if !self.column_group.is_empty() {
            parts.push(&self.column_group);
        }
        parts.join(" › ")
    }
}

#[derive(Clone, Debug)]
pub struct DesnzSet {
    pub factors: Vec<DesnzFactor>,
    by_key: HashMap<String, u32>,
}

/// Lower-case, '&' → "and", '%' → "pct", anything but letters, digits and '.' → '-'.
pub fn slug(s: &str) -> String {
    let s = s
        .to_lowercase()
        .replace('&', " and ")
        .replace('%', " pct ")
        .replace('+', " plus ");
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || c == '.' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}

impl DesnzSet {
    pub fn parse(text: &str) -> DesnzSet {
        let rows = records(text);
        let h = &rows[0];
        let col = |n| column(h, n);
        let (sheet, scope, activity) = (col("sheet"), col("scope"), col("activity"));
        let (d1n, d1, d2n, d2) = (col("dim1_name"), col("dim1"), col("dim2_name"), col("dim2"));
        let (unit, year, group, ghg, value) = (
            col("unit"),
            col("year"),
            col("column_group"),
            col("ghg_unit"),
            col("value"),
        );
        let mut factors: Vec<DesnzFactor> = Vec::new();
        let mut by_key: HashMap<String, u32> = HashMap::new();
        // Biogenic CO2 per unit by "fuel/unit" (slugged).
        let mut biogenic: HashMap<String, f64> = HashMap::new();
        for r in &rows[1..] {
            let parts = [&r[sheet], &r[activity], &r[d1], &r[d2], &r[group], &r[unit]];
            let key = parts
                .iter()
                .filter(|p| !p.is_empty())
                .map(|p| slug(p))
                .collect::<Vec<_>>()
                .join("/");
            let v: f64 = r[value].parse().expect("DESNZ value");
            let gas = match r[ghg].as_str() {
                "kg CO2e" => None,
                "kg CO2e of CO2 per unit" => Some(0),
                "kg CO2e of CH4 per unit" => Some(1),
                "kg CO2e of N2O per unit" => Some(2),
                // Energy-content rows (SECR kWh tabs) are not emission factors.
                _ => continue,
            };
            if let Some(g) = gas {
                // Biogenic CO2 (outside the scopes) has a CO2 row and no CO2e row.
                if r[sheet] == "Outside of scopes" && g == 0 {
                    let dim = if r[d2].is_empty() { &r[d1] } else { &r[d2] };
                    biogenic.insert(format!("{}/{}", slug(dim), slug(&r[unit])), v);
                    continue;
                }
                // The CO2e row always precedes its gas rows in the tidy file.
                let Some(&i) = by_key.get(&key) else { continue };
                let f = &mut factors[i as usize];
                match g {
                    0 => f.co2 = Some(v),
                    1 => f.ch4 = Some(v),
                    _ => f.n2o = Some(v),
                }
                continue;
            }
            let Ok(u) = Unit::parse(&r[unit]) else {
                panic!("DESNZ unit {:?} is not known to vcci", r[unit])
            };
            let mut dims = Vec::new();
            for (n, d) in [(d1n, d1), (d2n, d2)] {
                if !r[d].is_empty() {
                    dims.push((r[n].clone(), r[d].clone()));
                }
            }
            let region = if r[sheet] == "Hotel stay" {
                r[d1].clone()
            } else {
                "UK".to_owned()
            };
            let f = DesnzFactor {
                key: key.clone(),
                sheet: r[sheet].clone(),
                scope: Scope::parse(&r[scope])
                    .unwrap_or_else(|| panic!("DESNZ scope {:?} is not known to vcci", r[scope])),
                activity: r[activity].clone(),
                dims,
                column_group: r[group].clone(),
                unit_label: r[unit].clone(),
                unit: u,
                value_unit: format!("kg CO2e/{}", u.symbol()),
                year: r[year].parse().unwrap_or(DEFAULT_YEAR),
                region,
                value: v,
                co2: None,
                ch4: None,
                n2o: None,
                category: Category::from_desnz_sheet(&r[sheet]),
                upstream: Vec::new(),
                rf: None,
                biogenic_co2: None,
            };
            let prev = by_key.insert(key, factors.len() as u32);
            assert!(prev.is_none(), "DESNZ keys must be unique");
            factors.push(f);
        }
        // Biogenic CO2 belongs to the fuels (and the UK grid) it is burnt in: matched by the
        // fuel (or grid) and the unit, on the sheets that burn them.
        for f in &mut factors {
            if matches!(f.sheet.as_str(), "Bioenergy" | "Fuels" | "UK electricity")
                && let Some((_, fuel)) = f.dims.last()
            {
                f.biogenic_co2 = biogenic
                    .get(&format!("{}/{}", slug(fuel), slug(&f.unit_label)))
                    .copied();
            }
        }
        let mut set = DesnzSet { factors, by_key };
        set.link_upstream();
        set.pair_rf();
        set
    }

    /// Pairs each flight factor with and without radiative forcing (`.../with-rf/...` and
    /// `.../without-rf/...`, the same flight otherwise).
    fn pair_rf(&mut self) {
        let mut pairs = Vec::new();
        for (i, f) in self.factors.iter().enumerate() {
            let (with, other) = if f.key.contains("/with-rf/") {
                (true, f.key.replacen("/with-rf/", "/without-rf/", 1))
            } else if f.key.contains("/without-rf/") {
                (false, f.key.replacen("/without-rf/", "/with-rf/", 1))
            } else {
                continue;
            };
            if let Some(&j) = self.by_key.get(&other) {
                pairs.push((i, (with, j)));
            }
        }
        for (i, rf) in pairs {
            self.factors[i].rf = Some(rf);
        }
    }

    /// Finds the upstream factors of every Scope 1 and 2 factor (GHG Protocol category 3):
    ///
    /// - UK electricity: WTT of generation, T&D losses and WTT of T&D losses (sheets
    ///   "WTT- UK electricity" and "Transmission and distribution");
    /// - heat and steam: its WTT; district heat also its distribution losses and their WTT;
    /// - fuels, bioenergy and owned vehicles: the row of the matching WTT sheet for the same
    ///   fuel or vehicle, in the same unit ("WTT- fuels", "WTT- bioenergy",
    ///   "WTT- delivery vehs & freight", "WTT- pass vehs & travel- land");
    /// - UK electricity for EVs: the T&D losses of "UK electricity T&D for EVs" and the WTT of
    ///   the same car or van ("WTT- pass vehs & travel- land", "WTT- delivery vehs & freight").
    ///
    /// Refrigerants and other Scope 1 rows have no upstream factor in the workbook.
    ///
    /// Flights (Scope 3) get the WTT of the same flight ("WTT- business travel- air"): their
    /// fuel's upstream emissions belong with the trip, in category 6.
    fn link_upstream(&mut self) {
        use UpstreamKind::*;
        const ELECTRICITY: &[(UpstreamKind, &str)] = &[
            (
                Wtt,
                "wtt-uk-electricity/wtt-uk-electricity-generation/electricity-uk/kwh",
            ),
            (
                TdLosses,
                "transmission-and-distribution/t-and-d-uk-electricity/electricity-uk/kwh",
            ),
            (
                WttTdLosses,
                "wtt-uk-electricity/wtt-uk-electricity-t-and-d/electricity-uk/kwh",
            ),
        ];
        const HEAT: &[(&str, &[(UpstreamKind, &str)])] = &[
            (
                "heat-and-steam/heat-and-steam/onsite-heat-and-steam/kwh",
                &[(
                    Wtt,
                    "wtt-heat-and-steam/wtt-heat-and-steam/onsite-heat-and-steam/kwh",
                )],
            ),
            (
                "heat-and-steam/heat-and-steam/district-heat-and-steam/kwh",
                &[
                    (
                        Wtt,
                        "wtt-heat-and-steam/wtt-heat-and-steam/district-heat-and-steam/kwh",
                    ),
                    (
                        TdLosses,
                        "transmission-and-distribution/distribution-district-heat-and-steam/5-pct-loss/kwh",
                    ),
                    (
                        WttTdLosses,
                        "wtt-heat-and-steam/wtt-district-heat-and-steam-distribution/5-pct-loss/kwh",
                    ),
                ],
            ),
        ];
        // (sheet of the Scope 1/2 rows, sheet of their upstream rows, kind) for the rows
        // matched by activity, dimensions, column group and unit.
        const BY_ROW: &[(&str, &str, UpstreamKind)] = &[
            ("Fuels", "WTT- fuels", Wtt),
            ("Bioenergy", "WTT- bioenergy", Wtt),
            ("Delivery vehicles", "WTT- delivery vehs & freight", Wtt),
            ("Passenger vehicles", "WTT- pass vehs & travel- land", Wtt),
            (
                "UK electricity for EVs",
                "UK electricity T&D for EVs",
                TdLosses,
            ),
            (
                "UK electricity for EVs",
                "WTT- pass vehs & travel- land",
                Wtt,
            ),
            (
                "UK electricity for EVs",
                "WTT- delivery vehs & freight",
                Wtt,
            ),
            ("Business travel- air", "WTT- business travel- air", Wtt),
        ];
        let row_key = |f: &DesnzFactor, sheet: &str| {
            let activity = slug(&f.activity);
            let activity = activity.strip_prefix("wtt-").unwrap_or(&activity);
            // The one label the WTT sheet spells differently.
            let activity = if activity == "hgvs-refrigerated-all-diesel" {
                "hgv-refrigerated-all-diesel"
            } else {
                activity
            };
            let mut k = format!("{}/{activity}", slug(sheet));
            for (_, v) in &f.dims {
                k.push('/');
                k.push_str(&slug(v));
            }
            k.push('/');
            k.push_str(&slug(&f.column_group));
            k.push('/');
            k.push_str(&slug(&f.unit_label));
            k
        };
        let upstream_sheets: HashMap<String, u32> = self
            .factors
            .iter()
            .enumerate()
            .filter(|(_, f)| BY_ROW.iter().any(|(_, up, _)| *up == f.sheet))
            .map(|(i, f)| (row_key(f, &f.sheet), i as u32))
            .collect();
        let find = |key: &str| self.by_key.get(key).copied();
        let mut links: Vec<(usize, Vec<Upstream>)> = Vec::new();
        for (i, f) in self.factors.iter().enumerate() {
            if f.scope.own().is_none() && f.sheet != "Business travel- air" {
                continue;
            }
            let explicit: Option<&[(UpstreamKind, &str)]> = if f.sheet == "UK electricity" {
                Some(ELECTRICITY)
            } else {
                HEAT.iter().find(|(k, _)| *k == f.key).map(|(_, ups)| *ups)
            };
            let ups: Vec<Upstream> = match explicit {
                Some(list) => list
                    .iter()
                    .filter_map(|(kind, key)| {
                        find(key).map(|index| Upstream { kind: *kind, index })
                    })
                    .collect(),
                None => BY_ROW
                    .iter()
                    .filter(|(own, _, _)| *own == f.sheet)
                    .filter_map(|(_, up, kind)| {
                        upstream_sheets
                            .get(&row_key(f, up))
                            .map(|&index| Upstream { kind: *kind, index })
                    })
                    .collect(),
            };
            links.push((i, ups));
        }
        for (i, ups) in links {
            self.factors[i].upstream = ups;
        }
    }

    #[inline]
    pub fn find(&self, key: &str) -> Option<usize> {
        self.by_key.get(key.trim()).map(|&i| i as usize)
    }
}
