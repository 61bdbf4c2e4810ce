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
