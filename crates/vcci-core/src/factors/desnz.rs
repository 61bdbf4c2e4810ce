//! UK DESNZ/DEFRA GHG conversion factors 2024 v1.1 (activity-based), from the tidy CSV.
//!
//! Keys are built from the workbook's own labels, slugged and joined with '/':
//! `sheet/activity/dim1/dim2/column_group/unit` (empty parts left out), e.g.
//! `freighting-goods/hgv-all-diesel/all-hgvs/average-laden/tonne.km`. They are unique
//! (checked by a test) and stable as long as the workbook's labels are.

use std::collections::HashMap;

use super::tables::{column, records};
use crate::category::Category;
use crate::units::Unit;

pub const VERSION: &str = "2024-v1.1";
pub const DEFAULT_YEAR: u16 = 2024;

/// One activity factor (kg CO2e per unit) with its gas split where the workbook gives one.
#[derive(Clone, Debug)]
pub struct DesnzFactor {
    pub key: String,
    pub sheet: String,
    pub scope: String,
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
}

impl DesnzFactor {
    /// A readable name: "Freighting goods › HGV (all diesel) › All HGVs › Average laden".
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
                scope: r[scope].clone(),
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
            };
            let prev = by_key.insert(key, factors.len() as u32);
            assert!(prev.is_none(), "DESNZ keys must be unique");
            factors.push(f);
        }
        DesnzSet { factors, by_key }
    }

    #[inline]
    pub fn find(&self, key: &str) -> Option<usize> {
        self.by_key.get(key.trim()).map(|&i| i as usize)
    }
}
