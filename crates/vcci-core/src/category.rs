//! GHG Protocol Scope 3 categories and the documented mapping that assigns one to a line
//! that does not name its own (from its NAICS code or its activity factor).
//!
//! The mapping is written out in docs/CALCULATION.md; change both together.

use serde::{Deserialize, Serialize};

use crate::naics::Naics;

/// A Scope 3 category, 1 to 15.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Category(u8);

/// The GHG Protocol names, index 0 = category 1.
pub const CATEGORY_NAMES: [&str; 15] = [
    "Purchased goods and services",
    "Capital goods",
    "Fuel- and energy-related activities",
    "Upstream transportation and distribution",
    "Waste generated in operations",
    "Business travel",
    "Employee commuting",
    "Upstream leased assets",
    "Downstream transportation and distribution",
    "Processing of sold products",
    "Use of sold products",
    "End-of-life treatment of sold products",
    "Downstream leased assets",
    "Franchises",
    "Investments",
];

impl Category {
    pub const PURCHASED_GOODS: Category = Category(1);
    pub const CAPITAL_GOODS: Category = Category(2);
    pub const FUEL_ENERGY: Category = Category(3);
    pub const UPSTREAM_TRANSPORT: Category = Category(4);
    pub const WASTE: Category = Category(5);
    pub const BUSINESS_TRAVEL: Category = Category(6);
    pub const COMMUTING: Category = Category(7);
    pub const UPSTREAM_LEASED: Category = Category(8);

    /// Builds a category from its number; `None` outside 1..=15.
    pub fn new(n: u8) -> Option<Category> {
        (1..=15).contains(&n).then_some(Category(n))
    }

    /// Parses "4", " 4 " or "4.0"-free integers only.
    pub fn parse(s: &str) -> Result<Category, String> {
        let t = s.trim();
        t.parse::<u8>()
            .ok()
            .and_then(Category::new)
            .ok_or_else(|| format!("'{t}' is not a Scope 3 category (an integer 1 to 15)"))
    }

    pub fn number(self) -> u8 {
        self.0
    }

    pub fn name(self) -> &'static str {
        CATEGORY_NAMES[self.0 as usize - 1]
    }

    /// All fifteen, in order.
    pub fn all() -> impl Iterator<Item = Category> {
        (1..=15).map(Category)
    }

    /// The category a spend line falls in by its NAICS-2017 code.
    ///
    /// Transport and warehousing (48–49) is upstream transport (4) except passenger
    /// transport (air, ground, scenic and water), which is business travel (6); waste
    /// management (562) and sewage treatment (221320: the company's wastewater) are 5;
    /// traveller accommodation (7211) and passenger car rental (532111) are 6; construction
    /// (23) is capital goods (2); utilities and fuels (2211, 2212, 324) are fuel- and
    /// energy-related (3); lessors of real estate (5311), passenger car leasing (532112: an
    /// asset the company operates under a lease, not a trip), truck and trailer rental and
    /// leasing (532120) and machinery and equipment rental and leasing (5324) are upstream
    /// leased assets (8); everything else is purchased goods and services (1).
    pub fn from_naics(n: Naics) -> Category {
        let code = n.code();
        let p2 = code / 10_000;
        let p3 = code / 1_000;
        let p4 = code / 100;
        match (p2, p3, p4, code) {
            (_, _, _, 481111 | 481211 | 481219 | 483112 | 483114 | 483212) => {
                Category::BUSINESS_TRAVEL
            }
            (_, _, _, 532112 | 532120) | (_, _, 5324, _) => Category::UPSTREAM_LEASED,
            (_, _, _, 221320) => Category::WASTE,
            (_, 485 | 487, _, _) => Category::BUSINESS_TRAVEL,
            (48 | 49, _, _, _) => Category::UPSTREAM_TRANSPORT,
            (_, 562, _, _) => Category::WASTE,
            (_, _, 7211 | 5321, _) => Category::BUSINESS_TRAVEL,
            (23, _, _, _) => Category::CAPITAL_GOODS,
            (_, 324, _, _) | (_, _, 2211 | 2212, _) => Category::FUEL_ENERGY,
            (_, _, 5311, _) => Category::UPSTREAM_LEASED,
            _ => Category::PURCHASED_GOODS,
        }
    }

    /// The category an activity factor implies, by its DESNZ worksheet.
    pub fn from_desnz_sheet(sheet: &str) -> Category {
        let s = sheet.to_ascii_lowercase();
        if s.contains("freight") || s.contains("delivery") {
            Category::UPSTREAM_TRANSPORT
        } else if s.contains("waste") || s.contains("water treatment") {
            Category::WASTE
        } else if s.contains("business travel")
            || s.contains("hotel")
            || s.contains("pass vehs")
            || s.contains("passenger vehicles")
            || s.contains("for evs")
        {
            Category::BUSINESS_TRAVEL
        } else if s.contains("homeworking") {
            Category::COMMUTING
        } else if s.contains("managed assets") {
            Category::UPSTREAM_LEASED
        } else if s.contains("fuel")
            || s.contains("bioenergy")
            || s.contains("electricity")
            || s.contains("heat")
            || s.contains("transmission")
        {
            Category::FUEL_ENERGY
        } else {
            Category::PURCHASED_GOODS
        }
    }
}

impl TryFrom<u8> for Category {
    type Error = String;
    fn try_from(n: u8) -> Result<Self, String> {
        Category::new(n).ok_or_else(|| format!("{n} is not a Scope 3 category (1 to 15)"))
    }
}

impl From<Category> for u8 {
    fn from(c: Category) -> u8 {
        c.0
    }
}

impl std::fmt::Display for Category {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Where a result's category came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CategorySource {
    /// The line named it.
    Line,
    /// Derived from the NAICS code (of the line, or of its supplier).
    Naics,
    /// Derived from the activity factor's worksheet.
    Activity,
    /// Nothing to derive it from: purchased goods and services.
    Default,
    /// The line is a capital purchase (`capex`): capital goods.
    Capex,
    /// The line's classification (`vcci_core::classify`) gave it, with its code.
    Classification,
}

impl CategorySource {
    pub fn as_str(self) -> &'static str {
        match self {
            CategorySource::Line => "line",
            CategorySource::Naics => "naics",
            CategorySource::Activity => "activity",
            CategorySource::Default => "default",
            CategorySource::Capex => "capex",
            CategorySource::Classification => "classification",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "line" => CategorySource::Line,
            "naics" => CategorySource::Naics,
            "activity" => CategorySource::Activity,
            "default" => CategorySource::Default,
            "capex" => CategorySource::Capex,
            "classification" => CategorySource::Classification,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cat(code: &str) -> u8 {
        Category::from_naics(Naics::parse(code).unwrap()).number()
    }

    #[test]
    fn naics_mapping() {
        assert_eq!(cat("484121"), 4); // long-distance trucking
        assert_eq!(cat("532120"), 8); // truck and trailer leasing: a leased asset, not travel
        assert_eq!(cat("532111"), 6); // passenger car rental: a trip
        assert_eq!(cat("532490"), 8); // machinery and equipment leasing
        assert_eq!(cat("532420"), 8); // office machinery leasing
        assert_eq!(cat("532310"), 1); // general rental centres
        assert_eq!(cat("221320"), 5); // sewage treatment: wastewater
        assert_eq!(cat("221310"), 1); // water supply
        assert_eq!(cat("481112"), 4); // scheduled air freight
        assert_eq!(cat("481111"), 6); // scheduled passenger air
        assert_eq!(cat("485310"), 6); // taxi
        assert_eq!(cat("493110"), 4); // warehousing
        assert_eq!(cat("562111"), 5); // solid waste collection
        assert_eq!(cat("721110"), 6); // hotels
        assert_eq!(cat("532111"), 6); // car rental
        assert_eq!(cat("532112"), 8); // passenger car leasing
        assert_eq!(cat("483112"), 6); // deep sea passenger
        assert_eq!(cat("483114"), 6); // coastal and Great Lakes passenger
        assert_eq!(cat("483212"), 6); // inland water passenger
        assert_eq!(cat("483111"), 4); // deep sea freight
        assert_eq!(cat("483211"), 4); // inland water freight
        assert_eq!(cat("236220"), 2); // commercial building construction
        assert_eq!(cat("221210"), 3); // natural gas distribution
        assert_eq!(cat("324110"), 3); // refineries
        assert_eq!(cat("531120"), 8); // lessors of non-residential buildings
        assert_eq!(cat("334111"), 1); // computers
        assert_eq!(cat("541511"), 1); // custom programming
    }

    #[test]
    fn sheet_mapping() {
        assert_eq!(Category::from_desnz_sheet("Freighting goods").number(), 4);
        assert_eq!(
            Category::from_desnz_sheet("WTT- delivery vehs & freight").number(),
            4
        );
        assert_eq!(
            Category::from_desnz_sheet("Business travel- air").number(),
            6
        );
        assert_eq!(Category::from_desnz_sheet("Hotel stay").number(), 6);
        assert_eq!(Category::from_desnz_sheet("Waste disposal").number(), 5);
        assert_eq!(Category::from_desnz_sheet("WTT- fuels").number(), 3);
        assert_eq!(Category::from_desnz_sheet("Homeworking").number(), 7);
        assert_eq!(
            Category::from_desnz_sheet("Managed assets- vehicles").number(),
            8
        );
        assert_eq!(Category::from_desnz_sheet("Material use").number(), 1);
    }

    #[test]
    fn parse_bounds() {
        assert!(Category::parse("0").is_err());
        assert!(Category::parse("16").is_err());
        assert!(Category::parse("x").is_err());
        assert_eq!(Category::parse(" 15 ").unwrap().name(), "Investments");
    }
}
