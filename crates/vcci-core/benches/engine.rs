//! Throughput of the pure calculation engine (one core).
//!
//! Run: `cargo bench -p vcci-core --bench engine`. Divan prints the time per batch and, with
//! the item counter, lines per second.

use divan::{Bencher, black_box, counter::ItemsCount};
use vcci_core::{
    Boundary, CalcConfig, Currency, Date, Line, Naics, SupplierData, SupplierIntensity,
    SupplierProfile, Unit, calculate, catalog,
};

fn main() {
    divan::main();
}

const N: usize = 100_000;

/// Deterministic lines: real NAICS codes from the shipped set, five currencies, 2019–2026
/// (so some FX/CPI fallbacks are taken), a few credit notes.
fn spend_lines() -> Vec<Line> {
    let cat = catalog();
    let codes: Vec<Naics> = cat.epa_1_3_0.factors.iter().map(|f| f.naics).collect();
    let currencies: Vec<Currency> = ["USD", "EUR", "GBP", "JPY", "CAD"]
        .iter()
        .map(|c| Currency::parse(c).unwrap())
        .collect();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..N)
        .map(|i| Line {
            transaction_id: Some(format!("t{i}")),
            date: Date::new(
                2019 + (next() % 8) as u16,
                1 + (next() % 12) as u8,
                1 + (next() % 28) as u8,
            ),
            amount: Some((next() % 100_000) as f64 / 7.0 - 100.0),
            currency: Some(currencies[(next() % 5) as usize]),
            naics: Some(codes[(next() as usize) % codes.len()]),
            ..Line::default()
        })
        .collect()
}

/// Spend lines with their gas split (CO2, CH4, N2O, other, from the EPA per-gas file), as
/// the write path computes it for every line.
#[divan::bench]
fn spend_based_with_gases(b: Bencher) {
    let lines = spend_lines();
    let cat = catalog();
    let cfg = CalcConfig::default();
    b.counter(ItemsCount::new(N)).bench(|| {
        let mut total = 0.0;
        for l in &lines {
            if let Ok(e) = calculate(cat, cfg, black_box(l), None) {
                let g = e.gases(cat);
                total += g.co2 + g.ch4 + g.n2o + g.other;
            }
        }
        total
    });
}

#[divan::bench]
fn spend_based(b: Bencher) {
    let lines = spend_lines();
    let cat = catalog();
    let cfg = CalcConfig::default();
    b.counter(ItemsCount::new(N)).bench(|| {
        let mut total = 0.0;
        for l in &lines {
            total += calculate(cat, cfg, black_box(l), None).map_or(0.0, |e| e.co2e_kg);
        }
        total
    });
}

#[divan::bench]
fn supplier_specific(b: Bencher) {
    supplier_lines(b, SupplierProfile::with_intensity(None, 0.3, Some(2023)));
}

/// A supplier with a value for each of three years (the line's own year, else the nearest).
#[divan::bench]
fn supplier_history(b: Bencher) {
    supplier_bench(b, Boundary::CradleToGate);
}

/// A supplier with Scope 1+2 values for three years: the hybrid method (its share plus the
/// EEIO upstream share of its NAICS code).
#[divan::bench]
fn hybrid(b: Bencher) {
    supplier_bench(b, Boundary::Scope12);
}

fn supplier_bench(b: Bencher, boundary: Boundary) {
    let profile = SupplierProfile {
        naics: Naics::parse("484121").ok(),
        country: None,
        intensities: [2022, 2023, 2024]
            .map(|y| SupplierIntensity {
                year: Some(y),
                kg_per_usd: 0.3,
                data: SupplierData {
                    boundary,
                    verified: true,
                    boundary_stated: true,
                },
            })
            .to_vec(),
        pcfs: Default::default(),
    };
    supplier_lines(b, profile);
}

/// The spend lines at a supplier of `profile`.
fn supplier_lines(b: Bencher, profile: SupplierProfile) {
    let lines = spend_lines();
    let cat = catalog();
    let cfg = CalcConfig::default();
    b.counter(ItemsCount::new(N)).bench(|| {
        let mut total = 0.0;
        for l in &lines {
            total += calculate(cat, cfg, black_box(l), Some(&profile)).map_or(0.0, |e| e.co2e_kg);
        }
        total
    });
}

/// Lines naming one of a supplier's 50 products, each with three footprints (two Active of
/// different validity, one Deprecated): the PACT product-level method, with the unit
/// conversion from the line's unit to the declared unit.
#[divan::bench]
fn product_footprints(b: Bencher) {
    let doc = |i: usize, v: usize, status: &str, amount: &str| {
        serde_json::json!({
            "id": format!("{i:08x}-0000-4000-8000-{v:012x}"), "specVersion": "3.0.0",
            "created": format!("2025-0{}-01T00:00:00Z", v + 1), "status": status,
            "companyName": "Acme", "companyIds": ["urn:company:acme"], "productDescription": "p",
            "productIds": [format!("urn:gtin:{i:013}")], "productNameCompany": "p",
            "pcf": {
                "declaredUnitOfMeasurement": "kilogram", "declaredUnitAmount": amount,
                "productMassPerDeclaredUnit": amount,
                "referencePeriodStart": format!("{}-01-01T00:00:00Z", 2019 + v * 2),
                "referencePeriodEnd": format!("{}-01-01T00:00:00Z", 2020 + v * 2),
                "pcfExcludingBiogenicUptake": "2.4", "pcfIncludingBiogenicUptake": "2.1",
                "fossilGhgEmissions": "2.4", "fossilCarbonContent": "0",
                "ipccCharacterizationFactors": ["AR6"], "crossSectoralStandards": ["PACT-3.0"],
                "exemptedEmissionsPercent": "0"
            }
        })
    };
    let mut pcfs = Vec::new();
    for i in 0..50 {
        for (v, status) in [(0, "Active"), (1, "Active"), (2, "Deprecated")] {
            let d = doc(i, v, status, if i % 2 == 0 { "1" } else { "1000" });
            pcfs.push(vcci_core::pact::parse(&d).unwrap().pcf);
        }
    }
    let profile = SupplierProfile {
        pcfs: vcci_core::calc::Footprints::new(pcfs),
        ..SupplierProfile::default()
    };
    let units = [Unit::parse("kg").unwrap(), Unit::parse("tonnes").unwrap()];
    let lines: Vec<Line> = spend_lines()
        .into_iter()
        .enumerate()
        .map(|(i, l)| Line {
            supplier_id: Some("acme".into()),
            quantity: l.amount.map(f64::abs),
            unit: Some(units[i % 2]),
            product_id: Some(format!("urn:gtin:{:013}", i % 50)),
            amount: None,
            ..l
        })
        .collect();
    let cat = catalog();
    let cfg = CalcConfig::default();
    b.counter(ItemsCount::new(N)).bench(|| {
        let mut total = 0.0;
        for l in &lines {
            total += calculate(cat, cfg, black_box(l), Some(&profile)).map_or(0.0, |e| e.co2e_kg);
        }
        total
    });
}

#[divan::bench]
fn activity_based(b: Bencher) {
    let cat = catalog();
    let cfg = CalcConfig::default();
    let keys = [
        (
            "freighting-goods/hgv-all-diesel/all-hgvs/average-laden/tonne.km",
            "t.km",
        ),
        (
            "business-travel-air/flights/long-haul-to-from-uk/economy-class/with-rf/passenger.km",
            "passenger.mile",
        ),
        ("hotel-stay/hotel-stay/uk/room-per-night", "nights"),
        (
            "waste-disposal/refuse/commercial-and-industrial-waste/landfill/tonnes",
            "kg",
        ),
    ];
    let lines: Vec<Line> = (0..N)
        .map(|i| {
            let (k, u) = keys[i % keys.len()];
            Line {
                date: Date::new(2024, 1, 1),
                quantity: Some(i as f64),
                unit: Some(Unit::parse(u).unwrap()),
                activity_id: Some(k.into()),
                ..Line::default()
            }
        })
        .collect();
    b.counter(ItemsCount::new(N)).bench(|| {
        let mut total = 0.0;
        for l in &lines {
            total += calculate(cat, cfg, black_box(l), None).map_or(0.0, |e| e.co2e_kg);
        }
        total
    });
}
