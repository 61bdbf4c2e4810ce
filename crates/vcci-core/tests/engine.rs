//! Emissions checked against values computed by hand from the formulas of DESIGN.md and the
//! shipped factors (the factor, FX and CPI values are quoted from the data files in comments).

use proptest::prelude::*;
use vcci_core::calc::{FactorRef, fallback};
use vcci_core::{
    Boundary, CalcConfig, Category, CategorySource, Currency, Date, EpaVersion, Line, Method,
    Naics, PriceBasis, SupplierData, SupplierIntensity, SupplierProfile, Unit, calculate, catalog,
};

fn spend(date: &str, amount: f64, currency: &str, naics: &str) -> Line {
    Line {
        transaction_id: Some("t".into()),
        date: Some(Date::parse(date).unwrap()),
        amount: Some(amount),
        currency: Some(Currency::parse(currency).unwrap()),
        naics: Some(Naics::parse(naics).unwrap()),
        ..Line::default()
    }
}

fn activity(date: &str, quantity: f64, unit: &str, key: &str) -> Line {
    Line {
        transaction_id: Some("t".into()),
        date: Some(Date::parse(date).unwrap()),
        quantity: Some(quantity),
        unit: Some(Unit::parse(unit).unwrap()),
        activity_id: Some(key.into()),
        ..Line::default()
    }
}

fn calc(line: &Line) -> vcci_core::Emission {
    calculate(catalog(), CalcConfig::default(), line, None).unwrap()
}

fn close(a: f64, b: f64) {
    assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "{a} != {b}");
}

#[test]
fn usd_in_the_factor_year_is_amount_times_factor() {
    // 484121 General Freight Trucking, Long-Distance, Truckload: 0.595 kg CO2e/2022 USD with margins.
    let e = calc(&spend("2022-06-30", 1000.0, "USD", "484121"));
    close(e.co2e_kg, 595.0);
    assert_eq!(e.method, Method::SpendBased);
    assert_eq!(e.category, Category::UPSTREAM_TRANSPORT);
    assert_eq!(e.category_source, CategorySource::Naics);
    assert_eq!(e.data_quality, 4);
    let s = e.spend.unwrap();
    assert_eq!((s.fx_rate, s.cpi_ratio), (1.0, 1.0));
}

#[test]
fn euro_spend_in_2023() {
    // 334111: 0.058 kg/2022 USD. EUR 2023 = 0.9245 per USD. CPI-U 2022 = 292.655, 2023 = 304.702.
    // 1000 / 0.9245 = 1081.6658 USD2023; × 292.655/304.702 = 1038.8989 USD2022; × 0.058 = 60.2562.
    let e = calc(&spend("2023-03-15", 1000.0, "eur", "334111"));
    close(e.co2e_kg, 60.256_197_475_500_97);
    let s = e.spend.unwrap();
    assert_eq!(s.fx_rate, 0.9245);
    assert_eq!(s.fx_year, 2023);
    close(s.cpi_ratio, 292.655 / 304.702);
    assert_eq!((s.cpi_from_year, s.cpi_to_year), (2023, 2022));
}

#[test]
fn cpi_ratio_deflates_later_dollars() {
    // 2024 dollars buy less than 2022 dollars, so they are worth fewer 2022 USD:
    // 1000 × 292.655/313.689 × 0.084 (541511) = 78.3675. The inverted ratio would give 90.04.
    let e = calc(&spend("2024-01-01", 1000.0, "USD", "541511"));
    close(e.co2e_kg, 78.367_491_368_839_84);
    assert!(e.spend.unwrap().cpi_ratio < 1.0);
    // And 2019 dollars are worth more 2022 dollars.
    let e = calc(&spend("2019-01-01", 1000.0, "USD", "541511"));
    assert!(e.spend.unwrap().cpi_ratio > 1.0);
}

#[test]
fn producer_price_uses_factor_without_margins() {
    // 334111 without margins = 0.030.
    let mut l = spend("2022-01-01", 1000.0, "USD", "334111");
    l.price_basis = PriceBasis::Producer;
    close(calc(&l).co2e_kg, 30.0);
}

#[test]
fn pinned_epa_1_2_uses_2021_dollars() {
    // v1.2 484121 = 1.115 kg/2021 USD; 2022 spend: × 270.970/292.655 → 1032.3813.
    let cfg = CalcConfig {
        epa_version: EpaVersion::V1_2,
        ..CalcConfig::default()
    };
    let e = calculate(
        catalog(),
        cfg,
        &spend("2022-05-01", 1000.0, "USD", "484121"),
        None,
    )
    .unwrap();
    close(e.co2e_kg, 1_032.381_302_215_92);
    let r = e.record(catalog(), &spend("2022-05-01", 1000.0, "USD", "484121"));
    assert_eq!(
        (&*r.factor.set, &*r.factor.version, &*r.factor.key),
        ("epa-supply-chain", "1.2", "484121")
    );
    assert_eq!(r.factor.unit, "kg CO2e/2021 USD, purchaser price");
}

#[test]
fn year_after_tables_falls_back_and_is_recorded() {
    // 2026: no FX or CPI yet. EUR 2025 = 0.8845, CPI 2025 = 321.943. 562111 = 0.988.
    // 2500 / 0.8845 × 292.655/321.943 × 0.988 = 2538.4936.
    let l = spend("2026-02-01", 2500.0, "EUR", "562111");
    let e = calc(&l);
    close(e.co2e_kg, 2_538.493_628_937_44);
    assert_eq!(e.fallbacks, fallback::FX_YEAR | fallback::CPI_YEAR);
    // Temporal: 2026 activity vs the factor's 2022 data (4 years → 2), + 2 table years
    // substituted → 4. Aggregate: ceil((4 + 4 + 3 + 1 + 2) / 5) = 3, never better than the
    // technological 4 → 4.
    assert_eq!(
        (
            e.dq.technological,
            e.dq.temporal,
            e.dq.geographical,
            e.dq.completeness,
            e.dq.reliability
        ),
        (4, 4, 3, 1, 2)
    );
    assert_eq!(e.data_quality, 4);
    assert_eq!(e.category, Category::WASTE);
    let r = e.record(catalog(), &l);
    let codes: Vec<_> = r.fallbacks.iter().map(|f| f.code.as_str()).collect();
    assert_eq!(codes, ["fx_year", "cpi_year"]);
    assert_eq!(
        r.fallbacks[0].message,
        "no EUR rate for 2026 yet; the 2025 rate was used"
    );
}

#[test]
fn supplier_specific_wins_and_converts_currency_and_year() {
    // Intensity 0.25 kg/2023 USD. 500 GBP in 2024: 500 / 0.7824 × 304.702/313.689 × 0.25 = 155.1877.
    let s =
        SupplierProfile::with_intensity(Some(Naics::parse("334111").unwrap()), 0.25, Some(2023));
    let mut l = spend("2024-07-01", 500.0, "GBP", "484121");
    l.supplier_id = Some("ACME".into());
    let e = calculate(catalog(), CalcConfig::default(), &l, Some(&s)).unwrap();
    close(e.co2e_kg, 155.187_660_598_362_3);
    assert_eq!(e.method, Method::SupplierSpecific);
    // The supplier's own data (technological and geographical 1), another year's value a
    // year apart (1, +1 for the fallback), complete (1), not verified (reliability 3):
    // ceil(8 / 5) = 2. 1 needs verified data of the line's year.
    assert_eq!(e.fallbacks, fallback::INTENSITY_OTHER_YEAR);
    assert_eq!(
        (
            e.dq.technological,
            e.dq.temporal,
            e.dq.geographical,
            e.dq.completeness,
            e.dq.reliability
        ),
        (1, 2, 1, 1, 3)
    );
    assert_eq!(e.data_quality, 2);
    // The line's own NAICS decides the category.
    assert_eq!(e.category, Category::UPSTREAM_TRANSPORT);
    let r = e.record(catalog(), &l);
    assert_eq!(
        (&*r.factor.set, &*r.factor.key, &*r.factor.version),
        ("supplier", "ACME", "2023")
    );
}

#[test]
fn supplier_without_intensity_year_assumes_spend_year() {
    let s = SupplierProfile::with_intensity(None, 0.5, None);
    let mut l = spend("2023-01-01", 100.0, "USD", "484121");
    l.naics = None;
    let e = calculate(catalog(), CalcConfig::default(), &l, Some(&s)).unwrap();
    close(e.co2e_kg, 50.0);
    assert_eq!(e.fallbacks, fallback::INTENSITY_YEAR_ASSUMED);
    assert_eq!(e.category_source, CategorySource::Default);
}

#[test]
fn naics_from_supplier_when_line_has_none() {
    let s = SupplierProfile {
        naics: Some(Naics::parse("721110").unwrap()),
        ..Default::default()
    };
    let mut l = spend("2022-01-01", 200.0, "USD", "721110");
    l.naics = None;
    let e = calculate(catalog(), CalcConfig::default(), &l, Some(&s)).unwrap();
    close(e.co2e_kg, 200.0 * 0.145);
    assert_eq!(e.category, Category::BUSINESS_TRAVEL);
    assert_eq!(e.fallbacks, fallback::NAICS_FROM_SUPPLIER);
}

#[test]
fn freight_tonne_km() {
    // HGV (all diesel), all HGVs, average laden: 0.09752 kg CO2e/tonne.km.
    let e = calc(&activity(
        "2024-03-01",
        500.0,
        "t.km",
        "freighting-goods/hgv-all-diesel/all-hgvs/average-laden/tonne.km",
    ));
    close(e.co2e_kg, 48.76);
    assert_eq!(e.method, Method::AverageData);
    assert_eq!(e.category, Category::UPSTREAM_TRANSPORT);
    assert_eq!(e.category_source, CategorySource::Activity);
    // Technological 2 (activity factor), temporal 1 (2024 factor, 2024 activity),
    // geographical 3 (UK factor, country not given), completeness 1, reliability 2
    // (national dataset): ceil(9 / 5) = 2.
    assert_eq!(e.data_quality, 2);
}

#[test]
fn flight_in_passenger_miles_is_converted() {
    // Long-haul economy with RF: 0.20011 kg/passenger.km; 1000 p.mile = 1609.344 p.km → 322.0458,
    // plus its WTT 0.02461 kg/passenger.km → 39.6060; 361.6518 in all.
    let e = calc(&activity(
        "2024-03-01",
        1000.0,
        "passenger.mile",
        "business-travel-air/flights/long-haul-to-from-uk/economy-class/with-rf/passenger.km",
    ));
    close(e.co2e_kg, 1609.344 * 0.20011 + 1609.344 * 0.02461);
    close(e.co2e_kg, 361.651_783_68);
    let u = e.unit.unwrap();
    assert_eq!(
        (u.from.symbol(), u.to.symbol(), u.factor),
        ("passenger.mile", "passenger.km", 1.609344)
    );
    assert_eq!(e.category, Category::BUSINESS_TRAVEL);
}

#[test]
fn hotel_nights_and_waste_tonnes() {
    close(
        calc(&activity(
            "2024-01-01",
            3.0,
            "nights",
            "hotel-stay/hotel-stay/uk/room-per-night",
        ))
        .co2e_kg,
        31.2,
    );
    // Food and drink waste to landfill: 700.20961 kg/tonne; 2500 kg = 2.5 t → 1750.524025.
    let e = calc(&activity(
        "2024-01-01",
        2500.0,
        "kg",
        "waste-disposal/refuse/organic-food-and-drink-waste/landfill/tonnes",
    ));
    close(e.co2e_kg, 1_750.524_025);
    assert_eq!(e.category, Category::WASTE);
}

#[test]
fn activity_beats_spend_and_line_category_wins() {
    let mut l = activity(
        "2024-01-01",
        10.0,
        "tkm",
        "freighting-goods/hgv-all-diesel/all-hgvs/average-laden/tonne.km",
    );
    l.amount = Some(1000.0);
    l.naics = Some(Naics::parse("484121").unwrap());
    l.category = Some(Category::new(9).unwrap());
    let e = calc(&l);
    assert_eq!(e.method, Method::AverageData);
    assert_eq!(e.category.number(), 9);
    assert_eq!(e.category_source, CategorySource::Line);
}

#[test]
fn credit_notes_are_negative_emissions() {
    close(
        calc(&spend("2022-01-01", -1000.0, "USD", "484121")).co2e_kg,
        -595.0,
    );
}

fn err(line: &Line) -> (String, String, String) {
    let e = calculate(catalog(), CalcConfig::default(), line, None).unwrap_err();
    (e.field.to_string(), e.code.to_string(), e.message)
}

#[test]
fn errors_name_field_and_value() {
    let (f, c, m) = err(&spend("2022-01-01", 1.0, "USD", "999999"));
    assert_eq!((f.as_str(), c.as_str()), ("naics_code", "unknown_naics"));
    assert_eq!(m, "NAICS 999999 has no factor in epa-supply-chain 1.3.0");

    let (f, c, m) = err(&spend("2022-01-01", 1.0, "PLN", "484121"));
    assert_eq!((f.as_str(), c.as_str()), ("currency", "no_fx_rate"));
    assert!(m.starts_with("no exchange rate for PLN"), "{m}");

    let (f, c, m) = err(&spend("2009-12-31", 1.0, "EUR", "484121"));
    assert_eq!((f.as_str(), c.as_str()), ("date", "year_before_table"));
    assert_eq!(m, "the EUR FX table starts in 2010; year 2009 is before it");

    let (f, _, m) = err(&spend("1999-12-31", 1.0, "USD", "484121"));
    assert_eq!(f, "date");
    assert_eq!(m, "the CPI-U table starts in 2000; year 1999 is before it");

    let (f, c, m) = err(&activity(
        "2024-01-01",
        1.0,
        "kg",
        "freighting-goods/hgv-all-diesel/all-hgvs/average-laden/tonne.km",
    ));
    assert_eq!((f.as_str(), c.as_str()), ("unit", "incompatible_unit"));
    assert!(m.starts_with("cannot convert kg (mass) to tonne.km"), "{m}");

    let (f, c, _) = err(&activity("2024-01-01", 1.0, "kg", "no/such/key"));
    assert_eq!(
        (f.as_str(), c.as_str()),
        ("activity_id", "unknown_activity")
    );

    let mut l = spend("2022-01-01", 1.0, "USD", "484121");
    l.naics = None;
    assert_eq!(err(&l).1, "naics_required");

    let mut l = activity("2024-01-01", 1.0, "kg", "x");
    l.activity_id = None;
    assert_eq!(err(&l).1, "activity_required");
}

#[test]
fn shipped_data_spot_checks() {
    let c = catalog();
    assert_eq!(c.epa_1_3_0.factors.len(), 1016);
    assert_eq!(c.epa_1_2.factors.len(), 1016);
    assert_eq!(c.epa_1_3_0.gases.len(), 18 * 1016);
    assert_eq!(c.desnz.factors.len(), 2616);
    // with = without + margins, within the files' 3-decimal rounding.
    for f in c.epa_1_3_0.factors.iter().chain(&c.epa_1_2.factors) {
        assert!(
            (f.with_margins - f.without_margins - f.margins).abs() <= 0.0015,
            "{}",
            f.naics
        );
    }
    let hgv = c
        .get(
            "desnz",
            "freighting-goods/hgv-all-diesel/all-hgvs/average-laden/tonne.km",
            None,
        )
        .unwrap();
    assert_eq!(hgv.value, 0.09752);
    assert_eq!(c.get("desnz", "business-travel-air/flights/long-haul-to-from-uk/economy-class/without-rf/passenger.km", None).unwrap().value, 0.11812);
    assert_eq!(c.cpi.series.get(2022).unwrap().value, 292.655);
    assert_eq!(
        c.fx.series(Currency::parse("EUR").unwrap())
            .unwrap()
            .get(2022)
            .unwrap()
            .value,
        0.9493
    );
}

#[test]
fn search_finds_hgv_average_laden_tkm() {
    let q = vcci_core::factors::FactorQuery {
        text: Some("HGV, average laden, t.km".into()),
        ..Default::default()
    };
    let keys: Vec<String> = catalog().search(&q).map(|f| f.key).collect();
    assert!(
        keys.contains(
            &"freighting-goods/hgv-all-diesel/all-hgvs/average-laden/tonne.km".to_string()
        ),
        "{keys:?}"
    );
    assert!(keys.iter().all(|k| k.ends_with("tonne.km")));
}

proptest! {
    /// usd_in_factor_year × cpi(spend_year) = usd × cpi(factor_year): the ratio's direction.
    #[test]
    fn price_year_conversion(year in 2010u16..=2025, amount in -1e7f64..1e7, cur in 0usize..21) {
        let c = catalog();
        let (currency, series) = &c.fx.rates[cur];
        let mut l = spend(&format!("{year}-06-01"), amount, currency.as_str(), "541511");
        l.currency = Some(*currency);
        let e = calc(&l);
        let s = e.spend.unwrap();
        let cpi = |y| c.cpi.series.get(y).unwrap().value;
        let usd = amount / series.get(year).unwrap().value;
        prop_assert!((s.usd - usd).abs() <= 1e-9 * usd.abs().max(1.0));
        prop_assert!((s.usd_price_year * cpi(year) - usd * cpi(2022)).abs() <= 1e-6 * (usd * cpi(2022)).abs().max(1.0));
        prop_assert!((e.co2e_kg - s.usd_price_year * 0.084).abs() <= 1e-9 * e.co2e_kg.abs().max(1.0));
    }

    /// Emissions are linear in the amount and keep its sign.
    #[test]
    fn linear_in_amount(amount in -1e6f64..1e6, k in 0.001f64..1000.0, year in 2000u16..2030) {
        let a = calc(&spend(&format!("{year}-01-01"), amount, "USD", "331110")).co2e_kg;
        let b = calc(&spend(&format!("{year}-01-01"), amount * k, "USD", "331110")).co2e_kg;
        prop_assert!((b - a * k).abs() <= 1e-9 * b.abs().max(1.0));
        prop_assert!(a == 0.0 || a.signum() == amount.signum());
    }
}

// --- Scope boundaries: energy and fuel inputs (issue 16, item 1) ---

const UK_ELECTRICITY: &str = "uk-electricity/electricity-generated/electricity-uk/kwh";
const NATURAL_GAS_GROSS: &str = "fuels/gaseous-fuels/natural-gas/kwh-gross-cv";

#[test]
fn uk_electricity_counts_only_its_upstream_in_category_3() {
    // Generation 0.20705 kg/kWh is Scope 2. Category 3: WTT of generation 0.0459, T&D losses
    // 0.0183, WTT of T&D 0.00397 kg/kWh. 100,000 kWh → 4,590 + 1,830 + 397 = 6,817 kg.
    let e = calc(&activity("2024-03-01", 100_000.0, "kWh", UK_ELECTRICITY));
    close(e.co2e_kg, 6_817.0);
    assert_eq!(e.category, Category::FUEL_ENERGY);
    assert_eq!(e.method, Method::AverageData);
    close(e.scope_1_2_kg.unwrap(), 20_705.0);
    let rec = e.record(
        catalog(),
        &activity("2024-03-01", 100_000.0, "kWh", UK_ELECTRICITY),
    );
    let own = rec.scope_1_2.unwrap();
    assert_eq!((own.scope, own.counted_in_scope_3), (2, false));
    close(own.co2e_kg, 20_705.0);
    assert_eq!(rec.factor.key, UK_ELECTRICITY);
    assert_eq!(rec.factor.scope.as_deref(), Some("Scope 2"));
    let parts: Vec<(&str, &str, f64)> = rec
        .upstream
        .iter()
        .map(|u| (u.kind.as_ref(), u.factor.key.as_ref(), u.co2e_kg))
        .collect();
    assert_eq!(parts.len(), 3);
    assert_eq!(
        (parts[0].0, parts[0].1),
        (
            "wtt",
            "wtt-uk-electricity/wtt-uk-electricity-generation/electricity-uk/kwh"
        )
    );
    assert_eq!(
        (parts[1].0, parts[1].1),
        (
            "td_losses",
            "transmission-and-distribution/t-and-d-uk-electricity/electricity-uk/kwh"
        )
    );
    assert_eq!(
        (parts[2].0, parts[2].1),
        (
            "wtt_td_losses",
            "wtt-uk-electricity/wtt-uk-electricity-t-and-d/electricity-uk/kwh"
        )
    );
    close(parts[0].2, 4_590.0);
    close(parts[1].2, 1_830.0);
    close(parts[2].2, 397.0);
    assert!(
        rec.upstream
            .iter()
            .all(|u| u.factor.scope.as_deref() == Some("Scope 3"))
    );
    // Generation counts nothing in Scope 3: the total is the three upstream parts only.
    close(parts.iter().map(|p| p.2).sum::<f64>(), e.co2e_kg);
}

#[test]
fn natural_gas_counts_its_well_to_tank_only() {
    // Scope 1 combustion 0.1829 kg/kWh (Gross CV); WTT- fuels natural gas 0.03021 kg/kWh.
    let l = activity("2024-03-01", 100_000.0, "kWh (Gross CV)", NATURAL_GAS_GROSS);
    let e = calc(&l);
    close(e.co2e_kg, 3_021.0);
    close(e.scope_1_2_kg.unwrap(), 18_290.0);
    let rec = e.record(catalog(), &l);
    assert_eq!(rec.scope_1_2.as_ref().unwrap().scope, 1);
    assert_eq!(rec.upstream.len(), 1);
    assert_eq!(
        rec.upstream[0].factor.key,
        "wtt-fuels/gaseous-fuels/natural-gas/kwh-gross-cv"
    );
    assert_eq!(rec.category, 3);
}

#[test]
fn district_heat_adds_distribution_losses() {
    // District heat 0.17965 (Scope 2); WTT 0.03341, distribution losses 0.00946 and their
    // WTT 0.00176 kg/kWh: 1,000 kWh → 33.41 + 9.46 + 1.76 = 44.63 kg.
    let e = calc(&activity(
        "2024-03-01",
        1_000.0,
        "kWh",
        "heat-and-steam/heat-and-steam/district-heat-and-steam/kwh",
    ));
    close(e.co2e_kg, 44.63);
    close(e.scope_1_2_kg.unwrap(), 179.65);
}

#[test]
fn leased_asset_electricity_stays_scope_3_in_full() {
    // "Managed assets- electricity" is Scope 3 (categories 8 and 13): booked in full.
    let key = "managed-assets-electricity/electricity-generated/electricity-uk/kwh";
    let mut l = activity("2024-03-01", 100_000.0, "kWh", key);
    let e = calc(&l);
    close(e.co2e_kg, 20_705.0);
    assert_eq!(e.category.number(), 8);
    assert_eq!(e.scope_1_2_kg, None);
    l.category = Some(Category::new(13).unwrap());
    assert_eq!(calc(&l).category.number(), 13);
    assert!(e.record(catalog(), &l).upstream.is_empty());
}

#[test]
fn scope_1_2_factors_without_upstream_or_in_another_category_are_rejected() {
    let key = catalog()
        .desnz
        .factors
        .iter()
        .find(|f| f.sheet == "Refrigerant & other")
        .unwrap()
        .key
        .clone();
    let (f, c, m) = err(&activity("2024-03-01", 10.0, "kg", &key));
    assert_eq!(
        (f.as_str(), c.as_str()),
        ("activity_id", "no_upstream_factor")
    );
    assert!(
        m.starts_with(&format!(
            "'{key}' is a Scope 1 factor (Refrigerant & other)"
        )),
        "{m}"
    );
    let mut l = activity("2024-03-01", 1.0, "kWh", UK_ELECTRICITY);
    l.category = Some(Category::new(8).unwrap());
    let (f, c, _) = err(&l);
    assert_eq!((f.as_str(), c.as_str()), ("category", "scope_1_2_factor"));
    l.category = Some(Category::FUEL_ENERGY);
    close(calc(&l).co2e_kg, 0.06817);
}

#[test]
fn every_scope_1_2_factor_has_its_upstream_except_the_listed_ones() {
    // The workbook has no upstream factor for refrigerants and three liquid fuels; every
    // other Scope 1 or 2 row finds its WTT (and T&D) factors, all Scope 3, in its unit.
    let c = catalog();
    let mut without = Vec::new();
    for f in &c.desnz.factors {
        match f.scope.own() {
            // Flights (Scope 3) carry their WTT; no other Scope 3 factor has upstream parts.
            None => assert!(
                f.upstream.is_empty() || f.sheet == "Business travel- air",
                "{}",
                f.key
            ),
            Some(_) if f.upstream.is_empty() => {
                if f.sheet != "Refrigerant & other" {
                    without.push(f.key.as_str())
                }
            }
            Some(_) => {
                for u in &f.upstream {
                    let up = &c.desnz.factors[u.index as usize];
                    assert_eq!(up.scope, vcci_core::factors::Scope::Three, "{}", f.key);
                    assert_eq!(up.unit, f.unit, "{} → {}", f.key, up.key);
                }
            }
        }
    }
    assert_eq!(
        without,
        [
            "fuels/liquid-fuels/lubricants/litres",
            "fuels/liquid-fuels/naphtha/litres",
            "fuels/liquid-fuels/waste-oils/litres"
        ]
    );
}

// --- Currency never silently assumed (issue 16, item 4) ---

#[test]
fn a_line_without_currency_is_in_the_organizations_default_and_says_so() {
    let mut l = spend("2023-03-15", 1000.0, "EUR", "334111");
    let eur = calc(&l);
    l.currency = None;
    let cfg = CalcConfig {
        default_currency: Currency::parse("EUR").unwrap(),
        ..CalcConfig::default()
    };
    let e = calculate(catalog(), cfg, &l, None).unwrap();
    // The same figure as the line in EUR (60.2562 kg, see euro_spend_in_2023), recorded.
    close(e.co2e_kg, eur.co2e_kg);
    assert_eq!(
        e.fallbacks & fallback::CURRENCY_ASSUMED,
        fallback::CURRENCY_ASSUMED
    );
    assert_eq!(e.data_quality, eur.data_quality);
    let rec = e.record(catalog(), &l);
    assert_eq!(rec.fallbacks[0].code, "currency_assumed");
    assert_eq!(
        rec.fallbacks[0].message,
        "the line gives no currency; the organization's default EUR was assumed"
    );
    // USD by default, recorded as well; a line that names its currency records nothing.
    let usd = calc(&l);
    close(usd.co2e_kg, 1000.0 * 292.655 / 304.702 * 0.058);
    assert_ne!(usd.fallbacks & fallback::CURRENCY_ASSUMED, 0);
    assert_eq!(eur.fallbacks & fallback::CURRENCY_ASSUMED, 0);
    // An activity line's amount is not converted: nothing assumed there.
    let mut a = activity(
        "2024-03-01",
        10.0,
        "tkm",
        "freighting-goods/hgv-all-diesel/all-hgvs/average-laden/tonne.km",
    );
    a.amount = Some(50.0);
    assert_eq!(calc(&a).fallbacks, 0);
}

// --- Flights: radiative forcing and WTT (issue 16, item 2) ---

const LONG_HAUL_ECONOMY: &str =
    "business-travel-air/flights/long-haul-to-from-uk/economy-class/with-rf/passenger.km";
const LONG_HAUL_ECONOMY_NO_RF: &str =
    "business-travel-air/flights/long-haul-to-from-uk/economy-class/without-rf/passenger.km";

#[test]
fn flights_with_rf_by_default_plus_their_wtt() {
    // 11,000 p.km × 0.20011 (with RF) = 2,201.21 kg; WTT 11,000 × 0.02461 = 270.71 kg.
    let l = activity("2024-05-01", 11_000.0, "passenger.km", LONG_HAUL_ECONOMY);
    let e = calc(&l);
    close(e.co2e_kg, 2_201.21 + 270.71);
    assert_eq!(e.category.number(), 6);
    assert_eq!(e.scope_1_2_kg, None);
    assert_eq!(e.fallbacks, 0);
    let rec = e.record(catalog(), &l);
    assert_eq!(rec.upstream.len(), 1);
    assert_eq!(rec.upstream[0].kind, "wtt");
    assert_eq!(
        rec.upstream[0].factor.key,
        "wtt-business-travel-air/wtt-flights/long-haul-to-from-uk/economy-class/with-rf/passenger.km"
    );
    close(rec.upstream[0].co2e_kg, 270.71);
    // The RF uplift (0.20011 − 0.11812 = 0.08199 per p.km) is stated apart: 901.89 kg.
    let rf = rec.radiative_forcing.unwrap();
    assert!(rf.included);
    close(rf.uplift_kg, 901.89);
}

#[test]
fn an_organization_without_rf_gets_the_without_rf_factor_whatever_the_line_names() {
    let cfg = CalcConfig {
        flights_with_rf: false,
        ..CalcConfig::default()
    };
    // 11,000 × 0.11812 = 1,299.32 kg, + WTT 270.71 kg.
    for key in [LONG_HAUL_ECONOMY_NO_RF, LONG_HAUL_ECONOMY] {
        let l = activity("2024-05-01", 11_000.0, "passenger.km", key);
        let e = calculate(catalog(), cfg, &l, None).unwrap();
        close(e.co2e_kg, 1_299.32 + 270.71);
        let rec = e.record(catalog(), &l);
        assert_eq!(rec.factor.key, LONG_HAUL_ECONOMY_NO_RF);
        assert_eq!(rec.radiative_forcing.as_ref().unwrap().uplift_kg, 0.0);
        assert!(!rec.radiative_forcing.unwrap().included);
        let codes: Vec<&str> = rec.fallbacks.iter().map(|f| f.code.as_str()).collect();
        if key == LONG_HAUL_ECONOMY {
            assert_eq!(codes, ["rf_setting"]);
            assert_eq!(
                rec.fallbacks[0].message,
                "the line names its flight's factor with radiative forcing; the organization reports flights without it, so that factor was used"
            );
        } else {
            assert!(codes.is_empty());
        }
    }
    // With RF (the default), a line naming the without-RF factor gets the with-RF one.
    let e = calc(&activity(
        "2024-05-01",
        11_000.0,
        "passenger.km",
        LONG_HAUL_ECONOMY_NO_RF,
    ));
    close(e.co2e_kg, 2_201.21 + 270.71);
    assert_eq!(e.fallbacks, fallback::RF_SETTING);
}

#[test]
fn every_flight_has_its_rf_pair_and_its_wtt() {
    let c = catalog();
    let flights: Vec<_> = c
        .desnz
        .factors
        .iter()
        .filter(|f| f.sheet == "Business travel- air")
        .collect();
    assert!(!flights.is_empty());
    for f in flights {
        let (with, pair) = f.rf.unwrap_or_else(|| panic!("{}", f.key));
        let p = &c.desnz.factors[pair as usize];
        assert_eq!(p.rf.unwrap().0, !with, "{}", f.key);
        assert!(with == (f.value >= p.value), "{}: RF adds", f.key);
        assert_eq!(f.upstream.len(), 1, "{}", f.key);
        let w = &c.desnz.factors[f.upstream[0].index as usize];
        assert_eq!(
            (w.sheet.as_str(), w.unit),
            ("WTT- business travel- air", f.unit)
        );
    }
}

// --- Capital purchases (issue 16, item 7) ---

#[test]
fn a_capital_purchase_is_category_2_whatever_its_naics_code() {
    // 334111 (computers) is purchased goods (1) unless the line says it is capex.
    let mut l = spend("2022-06-30", 1000.0, "USD", "334111");
    assert_eq!(calc(&l).category.number(), 1);
    l.capex = true;
    let e = calc(&l);
    assert_eq!(
        (e.category.number(), e.category_source),
        (2, CategorySource::Capex)
    );
    close(e.co2e_kg, 58.0);
    // Also for trucking (4 otherwise) and for an activity line.
    let mut t = spend("2022-06-30", 1000.0, "USD", "484121");
    t.capex = true;
    assert_eq!(calc(&t).category.number(), 2);
    let mut a = activity(
        "2024-03-01",
        10.0,
        "tkm",
        "freighting-goods/hgv-all-diesel/all-hgvs/average-laden/tonne.km",
    );
    a.capex = true;
    assert_eq!(calc(&a).category.number(), 2);
    // A line naming category 2 agrees; another category contradicts capex.
    l.category = Some(Category::CAPITAL_GOODS);
    assert_eq!(calc(&l).category_source, CategorySource::Line);
    l.category = Some(Category::new(1).unwrap());
    let (f, c, m) = err(&l);
    assert_eq!((f.as_str(), c.as_str()), ("category", "capex_category"));
    assert_eq!(
        m,
        "capex=true makes a line capital goods (category 2); category 1 contradicts it"
    );
    // Energy is never a capital good.
    let mut el = activity("2024-03-01", 1.0, "kWh", UK_ELECTRICITY);
    el.capex = true;
    assert_eq!(err(&el).0, "capex");
}

#[test]
fn capex_parses_as_a_boolean_and_changes_the_hash() {
    use vcci_core::line::{Field, N_FIELDS};
    let mut v: [Option<&str>; N_FIELDS] = [None; N_FIELDS];
    v[Field::TransactionId as usize] = Some("t");
    v[Field::Date as usize] = Some("2024-01-01");
    v[Field::Amount as usize] = Some("1");
    let plain = Line::parse(&v, true).unwrap();
    assert!(!plain.capex);
    for (text, want) in [
        ("true", true),
        ("TRUE", true),
        ("1", true),
        ("yes", true),
        ("false", false),
        ("0", false),
    ] {
        v[Field::Capex as usize] = Some(text);
        assert_eq!(Line::parse(&v, true).unwrap().capex, want, "{text}");
    }
    v[Field::Capex as usize] = Some("maybe");
    let e = Line::parse(&v, true).unwrap_err();
    assert_eq!((e[0].field, e[0].code), ("capex", "invalid_boolean"));
    v[Field::Capex as usize] = Some("true");
    assert_ne!(
        Line::parse(&v, true).unwrap().content_hash(),
        plain.content_hash()
    );
    v[Field::Capex as usize] = Some("false");
    assert_eq!(
        Line::parse(&v, true).unwrap().content_hash(),
        plain.content_hash()
    );
}

// --- Data quality as the GHG Protocol defines it (issue 16, item 6) ---

#[test]
fn data_quality_indicators_follow_the_documented_rules() {
    use vcci_core::calc::DataQuality;
    let dq = |l: &Line, s: Option<&SupplierProfile>| {
        let e = calculate(catalog(), CalcConfig::default(), l, s).unwrap();
        let d = e.dq;
        assert_eq!(e.data_quality, d.aggregate());
        assert_eq!(DataQuality::unpack(d.pack()), d);
        (
            d.technological,
            d.temporal,
            d.geographical,
            d.completeness,
            d.reliability,
            e.data_quality,
        )
    };
    // US EPA factors: a US line is geographically 1, a German one 4, an unstated one 3.
    let mut l = spend("2022-06-30", 1000.0, "USD", "484121");
    l.country = Some("United States".into());
    assert_eq!(dq(&l, None), (4, 1, 1, 1, 2, 4));
    l.country = Some("DE".into());
    assert_eq!(dq(&l, None), (4, 1, 4, 1, 2, 4));
    l.country = None;
    assert_eq!(dq(&l, None), (4, 1, 3, 1, 2, 4));
    // The supplier's country stands in for the line's.
    let s = SupplierProfile {
        naics: Some(Naics::parse("484121").unwrap()),
        country: Some("GB".into()),
        ..Default::default()
    };
    let mut l = spend("2022-06-30", 1000.0, "USD", "484121");
    l.supplier_id = Some("S".into());
    assert_eq!(dq(&l, Some(&s)), (4, 1, 4, 1, 2, 4));
    // DESNZ factors are UK: a UK line is 1 (aggregate ceil(7/5) = 2).
    let mut a = activity(
        "2024-03-01",
        10.0,
        "tkm",
        "freighting-goods/hgv-all-diesel/all-hgvs/average-laden/tonne.km",
    );
    a.country = Some("UK".into());
    assert_eq!(dq(&a, None), (2, 1, 1, 1, 2, 2));
    // Temporal: DESNZ 2024 data on 2018 activity: 6 years → 3.
    let old = activity(
        "2018-03-01",
        10.0,
        "tkm",
        "freighting-goods/hgv-all-diesel/all-hgvs/average-laden/tonne.km",
    );
    assert_eq!(dq(&old, None).1, 3);
    // Completeness: each assumption (currency, the supplier's NAICS) lowers it by one.
    let mut g = spend("2022-06-30", 1000.0, "USD", "484121");
    g.currency = None;
    g.naics = None;
    g.supplier_id = Some("S".into());
    let s = SupplierProfile {
        naics: Some(Naics::parse("484121").unwrap()),
        ..Default::default()
    };
    assert_eq!(dq(&g, Some(&s)).3, 3);
    // Aggregate: 1 only when all five are 1; never better than technological.
    let all = |v| DataQuality {
        technological: v,
        temporal: v,
        geographical: v,
        completeness: v,
        reliability: v,
    };
    assert_eq!(all(1).aggregate(), 1);
    assert_eq!(
        DataQuality {
            reliability: 2,
            ..all(1)
        }
        .aggregate(),
        2
    );
    assert_eq!(
        DataQuality {
            technological: 4,
            ..all(1)
        }
        .aggregate(),
        4
    );
    assert_eq!(all(5).aggregate(), 5);
}

// --- Gases and biogenic CO2 (issue 16, item 5) ---

#[test]
fn spend_gases_from_the_epa_per_gas_file_with_ar5_gwps() {
    // 484121, 1,000 USD of 2022 (kg of gas per USD × AR5 GWP × 1,000):
    // CO2 0.555 → 555; CH4 7.64e-4 × 28 → 21.392; N2O 2.28e-5 × 265 → 6.042;
    // other: HFC-143a 2.15e-7 × 4,800 + HFC-125 7.84e-7 × 3,170 + HFC-134a 1.28e-6 × 1,300
    // + HFC-32 5.35e-7 × 677 + 'HFCs and PFCs, unspecified' 6.15e-3 (kg CO2e) + SF6, CF4,
    // HFC-23, C2F6, c-C4F8, HFC-236fa, NF3, C4F10, C3F8, C6F14 → 12.0501.
    // Sum 594.484 against the file's 0.595 × 1,000: the per-gas rows have 3 significant digits.
    let l = spend("2022-06-30", 1000.0, "USD", "484121");
    let e = calc(&l);
    let g = e.gases(catalog());
    close(g.co2, 555.0);
    close(g.ch4, 21.392);
    close(g.n2o, 6.042);
    assert!((g.other - 12.050_086_97).abs() < 1e-9, "{}", g.other);
    assert_eq!((g.radiative_forcing, g.unspecified), (0.0, 0.0));
    assert!((g.total() - e.co2e_kg).abs() < 0.001 * e.co2e_kg);
    assert_eq!(e.record(catalog(), &l).gases, Some(g));
    // EPA v1.2 ships no per-gas file: all unspecified.
    let cfg = CalcConfig {
        epa_version: EpaVersion::V1_2,
        ..CalcConfig::default()
    };
    let e = calculate(catalog(), cfg, &l, None).unwrap();
    assert_eq!(
        e.gases(catalog()),
        vcci_core::gases::GasSplit::unspecified(e.co2e_kg)
    );
}

#[test]
fn energy_and_flight_gases_keep_rf_and_unsplit_wtt_apart() {
    // UK electricity, 100,000 kWh: T&D losses split by the workbook (CO2 0.01811, CH4 8e-05,
    // N2O 0.00011 per kWh → 1,811 + 8 + 11), the two WTT parts unsplit (4,590 + 397 = 4,987):
    // 6,817 in all. Biogenic CO2 0.11507 kg/kWh → 11,507 kg, outside the scopes.
    let e = calc(&activity("2024-03-01", 100_000.0, "kWh", UK_ELECTRICITY));
    let g = e.gases(catalog());
    close(g.co2, 1_811.0);
    close(g.ch4, 8.0);
    close(g.n2o, 11.0);
    close(g.unspecified, 4_987.0);
    close(g.total(), 6_817.0);
    close(e.biogenic_co2_kg(catalog()).unwrap(), 11_507.0);
    // 11,000 p.km long-haul economy with RF: the gases of the flight without RF (CO2 0.11712,
    // CH4 1e-05, N2O 0.00099 per p.km → 1,288.32 + 0.11 + 10.89), the RF uplift 901.89 apart
    // (not CO2), the WTT 270.71 unsplit: 2,471.92 in all.
    let e = calc(&activity(
        "2024-05-01",
        11_000.0,
        "passenger.km",
        LONG_HAUL_ECONOMY,
    ));
    let g = e.gases(catalog());
    close(g.co2, 1_288.32);
    close(g.ch4, 0.11);
    close(g.n2o, 10.89);
    close(g.radiative_forcing, 901.89);
    close(g.unspecified, 270.71);
    close(g.total(), e.co2e_kg);
    assert_eq!(e.biogenic_co2_kg(catalog()), None);
    // A bioethanol litre: Scope 1 recorded apart, WTT in category 3, 1.52 kg biogenic CO2.
    let b = calc(&activity(
        "2024-05-01",
        10.0,
        "litres",
        "bioenergy/biofuel/bioethanol/litres",
    ));
    close(b.biogenic_co2_kg(catalog()).unwrap(), 15.2);
}

#[test]
fn the_gases_of_every_shipped_factor_add_up_to_its_co2e() {
    let c = catalog();
    // EPA v1.3.0, both price bases: within the per-gas rows' rounding (3 significant
    // digits): 0.0015 kg/USD, except these 13 factors, all within 0.0044 kg/USD (0.4 %).
    let mut exceptions = Vec::new();
    for (i, f) in c.epa_1_3_0.factors.iter().enumerate() {
        for basis in [PriceBasis::Purchaser, PriceBasis::Producer] {
            let s = c.epa_1_3_0.split(i, basis).unwrap();
            let d = (s.total() - f.value(basis)).abs();
            assert!(
                d <= 0.0044 && d <= 0.004 * f.value(basis).max(1.0),
                "{} {basis:?}: {d}",
                f.key
            );
            if d > 0.0015 {
                exceptions.push(format!("{} {}", f.key, basis.as_str()));
            }
        }
    }
    exceptions.sort();
    assert_eq!(
        exceptions,
        [
            "112111 purchaser",
            "112112 purchaser",
            "112120 producer",
            "112130 purchaser",
            "311514 producer",
            "324121 producer",
            "325120 purchaser",
            "327310 producer",
            "327310 purchaser",
            "327410 producer",
            "327410 purchaser",
            "327420 producer",
            "327420 purchaser",
        ],
        "{exceptions:?}"
    );
    // DESNZ: every factor the workbook splits, within 0.05 % (its 5-decimal rounding).
    let mut split = 0;
    for (i, f) in c.desnz.factors.iter().enumerate() {
        if f.gas_split().is_none() {
            continue;
        }
        split += 1;
        let g = f.gas_split().unwrap();
        let d = (g.total() - f.value).abs();
        // (With RF, the workbook counts the uplift as CO2; vcci moves it apart, below.)
        assert!(
            d <= 1e-5 || d <= 5e-4 * f.value.abs(),
            "{}: {} vs {}",
            f.key,
            g.total(),
            f.value
        );
        // A result of one unit adds up to the factor (with its upstream parts) exactly as
        // far as the split goes.
        let r = vcci_core::calc::gases_of(
            c,
            vcci_core::calc::FactorRef::Desnz { index: i as u32 },
            f.value,
            1.0,
            f.scope.own().is_some(),
        );
        let want = if f.scope.own().is_some() {
            0.0
        } else {
            f.value
        } + f
            .upstream
            .iter()
            .map(|u| c.desnz.factors[u.index as usize].value)
            .sum::<f64>();
        assert!(
            (r.total() - want).abs() <= 1e-5 + 5e-4 * want.abs(),
            "{}",
            f.key
        );
    }
    assert_eq!(split, 1302);
}

#[test]
fn physical_data_wins_over_a_suppliers_intensity() {
    // 500 t.km of HGV freight (0.09752 kg/t.km → 48.76 kg) bought for 1,000 USD from a
    // supplier whose intensity is 0.5 kg/USD: the physical data decides.
    let s = SupplierProfile::with_intensity(None, 0.5, Some(2024));
    let mut l = activity(
        "2024-03-01",
        500.0,
        "t.km",
        "freighting-goods/hgv-all-diesel/all-hgvs/average-laden/tonne.km",
    );
    l.amount = Some(1000.0);
    l.currency = Some(Currency::USD);
    l.supplier_id = Some("S".into());
    let e = calculate(catalog(), CalcConfig::default(), &l, Some(&s)).unwrap();
    assert_eq!(e.method, Method::AverageData);
    close(e.co2e_kg, 48.76);
    // Without the physical data, the supplier's intensity: 1,000 × 0.5 = 500 kg.
    l.activity_id = None;
    l.quantity = None;
    l.unit = None;
    let e = calculate(catalog(), CalcConfig::default(), &l, Some(&s)).unwrap();
    assert_eq!(e.method, Method::SupplierSpecific);
    close(e.co2e_kg, 500.0);
}

fn intensity(year: Option<u16>, kg: f64, boundary: Boundary, verified: bool) -> SupplierIntensity {
    SupplierIntensity {
        year,
        kg_per_usd: kg,
        data: SupplierData {
            boundary,
            verified,
            boundary_stated: true,
        },
    }
}

fn at_supplier(date: &str, usd: f64) -> Line {
    let mut l = spend(date, usd, "USD", "484121");
    l.naics = None;
    l.supplier_id = Some("S".into());
    l
}

#[test]
fn a_suppliers_intensity_of_the_lines_own_year_is_used() {
    // The example: 1,000,000 USD in 2022 at a 2022 intensity of 0.30 is 300,000 kg,
    // and stays so when a 2024 value of 0.20 is added.
    let mut s = SupplierProfile {
        intensities: vec![intensity(Some(2022), 0.30, Boundary::CradleToGate, false)],
        ..Default::default()
    };
    let l = at_supplier("2022-05-01", 1_000_000.0);
    let e = calculate(catalog(), CalcConfig::default(), &l, Some(&s)).unwrap();
    close(e.co2e_kg, 300_000.0);
    s.intensities
        .push(intensity(Some(2024), 0.20, Boundary::CradleToGate, false));
    let e2 = calculate(catalog(), CalcConfig::default(), &l, Some(&s)).unwrap();
    assert_eq!(e2.co2e_kg, e.co2e_kg);
    assert_eq!(e2.fallbacks, 0);
    // A 2024 line uses the 2024 value: 1,000 × 0.20 = 200 kg.
    let e = calculate(
        catalog(),
        CalcConfig::default(),
        &at_supplier("2024-01-10", 1000.0),
        Some(&s),
    )
    .unwrap();
    close(e.co2e_kg, 200.0);
    assert_eq!(e.factor, FactorRef::Supplier { year: 2024 });
}

#[test]
fn another_years_intensity_is_a_temporal_fallback_with_a_penalty() {
    // A 2023 line, values for 2022 (0.30) and 2024 (0.20): both a year away, the earlier
    // wins. 1,000 USD of 2023 in 2022 USD × 0.30 = 1,000 × 292.655 / 304.702 × 0.30.
    let s = SupplierProfile {
        intensities: vec![
            intensity(Some(2024), 0.20, Boundary::CradleToGate, true),
            intensity(Some(2022), 0.30, Boundary::CradleToGate, true),
        ],
        ..Default::default()
    };
    let l = at_supplier("2023-03-01", 1000.0);
    let e = calculate(catalog(), CalcConfig::default(), &l, Some(&s)).unwrap();
    close(e.co2e_kg, 288.138_902_928_106_8);
    assert_eq!(e.factor, FactorRef::Supplier { year: 2022 });
    assert_eq!(e.fallbacks, fallback::INTENSITY_OTHER_YEAR);
    // Verified cradle-to-gate: 1 everywhere but temporal, a year apart (1) + the penalty.
    assert_eq!(e.dq.temporal, 2);
    assert_eq!(
        (e.dq.technological, e.dq.reliability, e.data_quality),
        (1, 1, 2)
    );
    let r = e.record(catalog(), &l);
    let f = r
        .fallbacks
        .iter()
        .find(|f| f.code == "intensity_other_year")
        .unwrap();
    assert_eq!(
        f.message,
        "the supplier has no intensity for 2023; its 2022 value was used (temporal data quality lowered by one)"
    );
    // Of its own year, it is a 1: verified cradle-to-gate data only.
    let e = calculate(
        catalog(),
        CalcConfig::default(),
        &at_supplier("2024-03-01", 1000.0),
        Some(&s),
    )
    .unwrap();
    assert_eq!(e.data_quality, 1);
    // An undated value serves before another year's.
    let mut s2 = s.clone();
    s2.intensities
        .push(intensity(None, 0.5, Boundary::CradleToGate, true));
    let e = calculate(catalog(), CalcConfig::default(), &l, Some(&s2)).unwrap();
    close(e.co2e_kg, 500.0);
    assert_eq!(e.fallbacks, fallback::INTENSITY_YEAR_ASSUMED);
}

#[test]
fn an_unstated_boundary_is_read_as_cradle_to_gate_and_said_so() {
    let s = SupplierProfile::with_intensity(None, 0.25, Some(2024));
    let l = at_supplier("2024-03-01", 1000.0);
    let e = calculate(catalog(), CalcConfig::default(), &l, Some(&s)).unwrap();
    assert_eq!(e.method, Method::SupplierSpecific);
    close(e.co2e_kg, 250.0);
    let r = e.record(catalog(), &l);
    let d = r.supplier_data.as_ref().unwrap();
    assert_eq!(
        (d.boundary, d.boundary_stated, d.verified),
        (Boundary::CradleToGate, false, false)
    );
    assert!(r.fallbacks.iter().any(|f| f.code == "boundary_not_stated"));
    // Scope 1, 2 and upstream 3: supplier-specific, but technological 2 (a company
    // boundary standing in for the product's).
    let s = SupplierProfile {
        intensities: vec![intensity(
            Some(2024),
            0.25,
            Boundary::Scope123Upstream,
            true,
        )],
        ..Default::default()
    };
    let e = calculate(catalog(), CalcConfig::default(), &l, Some(&s)).unwrap();
    assert_eq!(e.method, Method::SupplierSpecific);
    assert_eq!((e.dq.technological, e.data_quality), (2, 2));
}

#[test]
fn a_scope_1_2_intensity_is_hybrid_with_the_eeio_upstream_share() {
    // 10,000 USD in 2024 at a supplier (NAICS 484121, EPA v1.3.0 0.595 kg/2022 USD with
    // margins) whose verified Scope 1+2 intensity for 2024 is 0.10 kg/USD:
    // - supplier share: 10,000 × 0.10 = 1,000 kg;
    // - EEIO cradle-to-gate: 10,000 × 292.655 / 313.689 × 0.595 = 5,551.0306 kg;
    // - upstream share: 5,551.0306 − 1,000 = 4,551.0306 kg.
    let s = SupplierProfile {
        naics: Some(Naics::parse("484121").unwrap()),
        country: Some("US".into()),
        intensities: vec![intensity(Some(2024), 0.10, Boundary::Scope12, true)],
        pcfs: Default::default(),
    };
    let l = at_supplier("2024-06-01", 10_000.0);
    let e = calculate(catalog(), CalcConfig::default(), &l, Some(&s)).unwrap();
    assert_eq!(e.method, Method::Hybrid);
    let h = e.hybrid_upstream(catalog()).unwrap();
    close(h.cradle_to_gate_kg, 5_551.030_638_626_154);
    close(h.upstream_kg, 4_551.030_638_626_154);
    close(e.co2e_kg, 5_551.030_638_626_154);
    // Technological 3 (supplier data for part, sector averages for the rest), temporal 1,
    // geographical 1 (US supplier, US factor), complete, verified with national data (2).
    assert_eq!(
        (
            e.dq.technological,
            e.dq.temporal,
            e.dq.geographical,
            e.dq.completeness,
            e.dq.reliability
        ),
        (3, 1, 1, 1, 2)
    );
    assert_eq!(e.data_quality, 3);
    let r = e.record(catalog(), &l);
    assert_eq!(r.method, Method::Hybrid);
    let hy = r.supplier_data.unwrap().hybrid.unwrap();
    close(hy.supplier_scope_1_2_kg, 1000.0);
    assert_eq!(
        (
            &*hy.eeio_factor.set,
            &*hy.eeio_factor.key,
            hy.eeio_factor.value
        ),
        ("epa-supply-chain", "484121", 0.595)
    );
    close(hy.eeio_cpi_ratio, 292.655 / 313.689);
    // No gas split for either part.
    let g = r.gases.unwrap();
    close(g.unspecified, e.co2e_kg);
    // A supplier whose Scope 1+2 alone exceeds the estimate: 10,000 × 0.7 = 7,000 kg, and
    // no upstream share, said in the trail.
    let s = SupplierProfile {
        intensities: vec![intensity(Some(2024), 0.7, Boundary::Scope12, false)],
        ..s
    };
    let e = calculate(catalog(), CalcConfig::default(), &l, Some(&s)).unwrap();
    close(e.co2e_kg, 7000.0);
    assert_eq!(e.hybrid_upstream(catalog()).unwrap().upstream_kg, 0.0);
    let r = e.record(catalog(), &l);
    assert!(r.fallbacks.iter().any(|f| f.code == "hybrid_upstream_zero"));
    // Without a NAICS code anywhere, the upstream share cannot be found.
    let s = SupplierProfile { naics: None, ..s };
    let err = calculate(catalog(), CalcConfig::default(), &l, Some(&s)).unwrap_err();
    assert_eq!(err.code, "naics_required");
}

/// A classification of `code` (built-in model, confidence `c`, flagged below 0.5).
fn classified(
    code: u32,
    capex: bool,
    c: f32,
) -> Option<std::sync::Arc<vcci_core::classify::Classification>> {
    use vcci_core::classify::{Classification, Evidence, Label, Source};
    let naics = Naics::from_code(code).unwrap();
    Some(std::sync::Arc::new(Classification {
        label: Label {
            capex,
            category: if capex {
                Category::CAPITAL_GOODS
            } else {
                Category::from_naics(naics)
            },
            naics,
        },
        source: Source::BuiltinModel,
        confidence: c,
        needs_review: c < 0.5,
        evidence: Evidence::Terms { terms: vec![] },
    }))
}

#[test]
fn a_classified_spend_line_is_the_coded_line_with_an_assumption_recorded() {
    // 100 USD of 2022 taxi: 100 × 0.566 (EPA v1.3.0 485310, with margins) = 56.6 kg, as if
    // the line had the code, but its category comes from the classification and its
    // completeness counts the assumption (+1, +2 when flagged for review).
    let mut l = spend("2022-05-01", 100.0, "USD", "485310");
    let coded = calc(&l);
    l.naics = None;
    l.classification = classified(485310, false, 0.7);
    let e = calc(&l);
    assert_eq!(e.co2e_kg, coded.co2e_kg);
    close(e.co2e_kg, 56.6);
    assert_eq!(
        (e.category, e.category_source),
        (Category::BUSINESS_TRAVEL, CategorySource::Classification)
    );
    assert!(e.classified);
    assert_eq!((coded.dq.completeness, e.dq.completeness), (1, 2));
    l.classification = classified(485310, false, 0.3);
    assert_eq!(calc(&l).dq.completeness, 3);
    // A capital purchase by classification is category 2; the line's own category wins.
    l.classification = classified(334111, true, 0.9);
    assert_eq!(calc(&l).category, Category::CAPITAL_GOODS);
    l.category = Some(Category::PURCHASED_GOODS);
    assert_eq!(calc(&l).category_source, CategorySource::Line);
    // The line's own code, or its supplier's, is used before any classification.
    let mut own = spend("2022-05-01", 100.0, "USD", "721110");
    own.classification = classified(485310, false, 0.9);
    let e = calc(&own);
    assert!(!e.classified);
    assert_eq!(e.factor_value, 0.145);
    assert_eq!(e.record(catalog(), &own).classification, None);
}

#[test]
fn a_supplier_intensity_line_takes_only_its_category_from_classification() {
    // 1000 USD of 2023 at the supplier's 0.5 kg/USD: the classification gives the category,
    // not the factor, and does not count against completeness.
    let s = SupplierProfile::with_intensity(None, 0.5, Some(2023));
    let mut l = spend("2023-03-01", 1000.0, "USD", "484121");
    l.naics = None;
    l.classification = classified(484121, false, 0.8);
    let e = calculate(catalog(), CalcConfig::default(), &l, Some(&s)).unwrap();
    assert_eq!(e.method, Method::SupplierSpecific);
    assert_eq!(e.category, Category::UPSTREAM_TRANSPORT);
    assert_eq!(e.category_source, CategorySource::Classification);
    assert!(e.classified);
    assert_eq!(e.dq.completeness, 1);
}
