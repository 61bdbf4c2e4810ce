//! Lines calculated from supplier product footprints (PACT v3), checked against values
//! computed by hand: quantity in the declared unit × pcfExcludingBiogenicUptake ÷
//! declaredUnitAmount.

use serde_json::{Value, json};
use vcci_core::calc::FactorRef;
use vcci_core::pact::{self, Status};
use vcci_core::{
    CalcConfig, Category, Currency, Date, Line, Method, Naics, SupplierProfile, Unit, calculate,
    catalog,
};

/// A footprint of `product` with the given declared unit, amount and PCF.
fn footprint(id: &str, product: &str, unit: &str, amount: &str, pcf: &str) -> Value {
    json!({
        "id": id,
        "specVersion": "3.0.0",
        "created": "2025-01-10T00:00:00Z",
        "status": "Active",
        "companyName": "Acme Materials",
        "companyIds": ["urn:company:example:acme"],
        "productDescription": "a product",
        "productIds": [product],
        "productNameCompany": "P",
        "pcf": {
            "declaredUnitOfMeasurement": unit,
            "declaredUnitAmount": amount,
            "productMassPerDeclaredUnit": "0",
            "referencePeriodStart": "2024-01-01T00:00:00Z",
            "referencePeriodEnd": "2025-01-01T00:00:00Z",
            "pcfExcludingBiogenicUptake": pcf,
            "pcfIncludingBiogenicUptake": pcf,
            "fossilGhgEmissions": "0",
            "fossilCarbonContent": "0",
            "ipccCharacterizationFactors": ["AR6"],
            "crossSectoralStandards": ["GHGP-Product", "PACT-3.0"],
            "exemptedEmissionsPercent": "0"
        }
    })
}

const P: &str = "urn:gtin:4712345060507";
const ID: &str = "3893bb5d-da16-4dc1-9185-11d97476c254";

fn profile(docs: &[Value]) -> SupplierProfile {
    SupplierProfile {
        pcfs: vcci_core::calc::Footprints::new(
            docs.iter().map(|d| pact::parse(d).unwrap().pcf).collect(),
        ),
        ..SupplierProfile::default()
    }
}

fn line(date: &str, quantity: f64, unit: &str) -> Line {
    Line {
        transaction_id: Some("t".into()),
        date: Some(Date::parse(date).unwrap()),
        supplier_id: Some("acme".into()),
        quantity: Some(quantity),
        unit: Some(Unit::parse(unit).unwrap()),
        product_id: Some(P.into()),
        ..Line::default()
    }
}

fn calc(l: &Line, s: &SupplierProfile) -> Result<vcci_core::Emission, vcci_core::LineError> {
    calculate(catalog(), CalcConfig::default(), l, Some(s))
}

#[test]
fn five_hundred_kg_at_2_4_per_kg_is_1200_kg() {
    let s = profile(&[footprint(ID, P, "kilogram", "1", "2.4")]);
    let e = calc(&line("2025-06-01", 500.0, "kg"), &s).unwrap();
    assert_eq!(e.co2e_kg, 1200.0);
    assert_eq!(e.method, Method::SupplierSpecific);
    assert_eq!(
        e.factor,
        FactorRef::Pcf {
            slot: 0,
            outside_validity: false
        }
    );
    assert_eq!(e.category, Category::PURCHASED_GOODS);
    let r = e.record_with(catalog(), &line("2025-06-01", 500.0, "kg"), Some(&s));
    assert_eq!(r.factor.set, "pact");
    assert_eq!(r.factor.key, ID);
    assert_eq!(r.factor.version, "3.0.0");
    assert_eq!(r.factor.unit, "kg CO2e/kg");
    let p = r.product_footprint.unwrap();
    assert_eq!(p.product_id, P);
    assert_eq!(p.company_name, "Acme Materials");
    assert_eq!(p.reference_period_start, "2024-01-01T00:00:00Z");
    assert_eq!(p.reference_period_end, "2025-01-01T00:00:00Z");
    assert_eq!(
        (p.declared_unit.as_str(), p.declared_unit_amount.as_str()),
        ("kilogram", "1")
    );
    assert_eq!(p.pcf_excluding_biogenic_uptake, "2.4");
    assert!(p.valid_on_line_date && !p.validity_stated);
    assert!(r.fallbacks.is_empty(), "{:?}", r.fallbacks);
}

#[test]
fn a_pcf_per_1000_kg_is_divided_by_its_declared_amount() {
    // 2,400 kg CO2e per 1,000 kg = 2.4 per kg: 500 kg → 1,200; 0.5 t → 500 kg → 1,200.
    let s = profile(&[footprint(ID, P, "kilogram", "1000", "2400")]);
    assert_eq!(
        calc(&line("2025-06-01", 500.0, "kg"), &s).unwrap().co2e_kg,
        1200.0
    );
    let e = calc(&line("2025-06-01", 0.5, "tonnes"), &s).unwrap();
    assert_eq!(e.co2e_kg, 1200.0);
    let u = e.unit.unwrap();
    assert_eq!((u.factor, u.converted), (1000.0, 500.0));
}

#[test]
fn a_pcf_in_liters_for_a_line_in_cubic_meters() {
    // 0.5 kg CO2e per 1 liter; 2 m³ = 2,000 liters → 1,000 kg.
    let s = profile(&[footprint(ID, P, "liter", "1", "0.5")]);
    let e = calc(&line("2025-06-01", 2.0, "m3"), &s).unwrap();
    assert_eq!(e.co2e_kg, 1000.0);
    let u = e.unit.unwrap();
    assert_eq!(
        (u.from.symbol(), u.to.symbol(), u.factor),
        ("cubic metres", "litres", 1000.0)
    );
}

#[test]
fn a_pcf_for_pieces() {
    // 30 kg CO2e per 2 pieces = 15 per piece: 10 pieces → 150; a dozen → 180.
    let s = profile(&[footprint(ID, P, "piece", "2", "30")]);
    assert_eq!(
        calc(&line("2025-06-01", 10.0, "pieces"), &s)
            .unwrap()
            .co2e_kg,
        150.0
    );
    assert_eq!(
        calc(&line("2025-06-01", 1.0, "dozen"), &s).unwrap().co2e_kg,
        180.0
    );
}

#[test]
fn an_incompatible_unit_is_a_clear_error() {
    let s = profile(&[footprint(ID, P, "piece", "1", "3")]);
    let err = calc(&line("2025-06-01", 5.0, "kg"), &s).unwrap_err();
    assert_eq!((err.field, err.code), ("unit", "incompatible_unit"));
    assert!(err.message.contains(ID), "{}", err.message);
    assert!(err.message.contains("per 1 piece"), "{}", err.message);
    let mut no_qty = line("2025-06-01", 5.0, "pieces");
    no_qty.quantity = None;
    no_qty.amount = Some(100.0);
    let err = calc(&no_qty, &s).unwrap_err();
    assert_eq!(err.code, "quantity_required");
}

#[test]
fn outside_its_validity_the_pcf_is_a_recorded_temporal_fallback() {
    // Valid 2025-01-01 .. 2028-01-01 (the default: 3 years from the reference period's end).
    let s = profile(&[footprint(ID, P, "kilogram", "1", "2.4")]);
    let l = line("2024-06-01", 10.0, "kg");
    let e = calc(&l, &s).unwrap();
    assert_eq!(
        e.factor,
        FactorRef::Pcf {
            slot: 0,
            outside_validity: true
        }
    );
    assert_eq!(e.co2e_kg, 24.0);
    // No DQI: technology 1, geography 1, time 1 (2024 vs a 2024 reference period) + 1.
    assert_eq!(e.dq.temporal, 2);
    let r = e.record_with(catalog(), &l, Some(&s));
    assert_eq!(r.fallbacks[0].code, "pcf_outside_validity");
    assert!(!r.product_footprint.unwrap().valid_on_line_date);
}

#[test]
fn deprecated_footprints_are_never_used_and_the_next_method_applies() {
    let mut doc = footprint(ID, P, "kilogram", "1", "2.4");
    doc["status"] = json!("Deprecated");
    let s = SupplierProfile {
        naics: Some(Naics::parse("331110").unwrap()),
        ..profile(&[doc])
    };
    assert_eq!(s.pcfs[0].status, Status::Deprecated);
    let mut l = line("2025-06-01", 500.0, "kg");
    l.amount = Some(1000.0);
    l.currency = Some(Currency::USD);
    let e = calc(&l, &s).unwrap();
    assert_eq!(e.method, Method::SpendBased);
    let r = e.record_with(catalog(), &l, Some(&s));
    assert!(r.product_footprint.is_none());
    assert!(
        r.fallbacks.iter().any(|f| f.code == "no_product_footprint"),
        "{:?}",
        r.fallbacks
    );
}

#[test]
fn the_newest_valid_footprint_wins_and_another_product_is_ignored() {
    let old = footprint(ID, P, "kilogram", "1", "2.4");
    let mut new = footprint(
        "aaaaaaaa-da16-4dc1-9185-11d97476c254",
        P,
        "kilogram",
        "1",
        "2.0",
    );
    new["created"] = json!("2025-03-01T00:00:00Z");
    let other = footprint(
        "bbbbbbbb-da16-4dc1-9185-11d97476c254",
        "urn:gtin:0000000000000",
        "kilogram",
        "1",
        "9",
    );
    let s = profile(&[other, old, new]);
    let e = calc(&line("2025-06-01", 500.0, "kg"), &s).unwrap();
    assert_eq!(e.co2e_kg, 1000.0);
    assert_eq!(
        e.factor,
        FactorRef::Pcf {
            slot: 2,
            outside_validity: false
        }
    );
}

#[test]
fn data_quality_comes_from_the_dqi_and_the_primary_data_share() {
    // DQI 1.5 / 3.2 / 2.4 → technology 2, geography 3, time 2 (half up); a primary data share
    // of 12.9 % → completeness 4; not verified → reliability 3. Aggregate: ⌈14 / 5⌉ = 3.
    let mut doc = footprint(ID, P, "kilogram", "1", "2.4");
    doc["pcf"]["dqi"] =
        json!({"technologicalDQR": "1.5", "geographicalDQR": "3.2", "temporalDQR": "2.4"});
    doc["pcf"]["primaryDataShare"] = json!("12.9");
    let s = profile(&[doc.clone()]);
    let e = calc(&line("2025-06-01", 1.0, "kg"), &s).unwrap();
    assert_eq!(
        (
            e.dq.technological,
            e.dq.geographical,
            e.dq.temporal,
            e.dq.completeness,
            e.dq.reliability
        ),
        (2, 3, 2, 4, 3)
    );
    assert_eq!(e.data_quality, 3);
    // Verified, 85 % primary data: completeness 1, reliability 1; ⌈10 / 5⌉ = 2.
    doc["pcf"]["primaryDataShare"] = json!("85");
    doc["pcf"]["verification"] = json!({"coverage": "product level", "providerName": "An Auditor"});
    let e = calc(&line("2025-06-01", 1.0, "kg"), &profile(&[doc])).unwrap();
    assert_eq!(
        (e.dq.completeness, e.dq.reliability, e.data_quality),
        (1, 1, 2)
    );
}

#[test]
fn biogenic_uptake_is_kept_apart() {
    // PACT example 1 style: excluding 0.384, including -1.23 per 1 kg; 100 kg →
    // 38.4 kg CO2e counted, (−1.23 − 0.384) × 100 = −161.4 kg of uptake shown apart.
    let mut doc = footprint(ID, P, "kilogram", "1", "0.384");
    doc["pcf"]["pcfIncludingBiogenicUptake"] = json!("-1.23");
    let s = profile(&[doc]);
    let l = line("2025-06-01", 100.0, "kg");
    let e = calc(&l, &s).unwrap();
    assert!((e.co2e_kg - 38.4).abs() < 1e-12);
    let p = e
        .record_with(catalog(), &l, Some(&s))
        .product_footprint
        .unwrap();
    assert!(
        (p.biogenic_uptake_kg + 161.4).abs() < 1e-9,
        "{}",
        p.biogenic_uptake_kg
    );
}

#[test]
fn a_line_without_a_supplier_footprint_uses_the_next_method() {
    // An activity factor: natural gas with no footprint for the product.
    let s = profile(&[footprint(ID, "urn:gtin:other", "kilogram", "1", "2.4")]);
    let mut l = line("2025-06-01", 500.0, "kg");
    l.amount = Some(1000.0);
    l.naics = Some(Naics::parse("331110").unwrap());
    let e = calc(&l, &s).unwrap();
    assert_eq!(e.method, Method::SpendBased);
}

/// The spec's own examples parse (tests may read ../shared/pact at test time).
#[test]
fn the_spec_examples_parse() {
    let Some(dir) = vcci_core::pact::spec_dir_for_tests() else {
        return;
    };
    for name in [
        "example-1.json",
        "example-2.json",
        "example-3.json",
        "example-4.json",
    ] {
        let text = std::fs::read_to_string(dir.join("examples").join(name)).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        if let Err(e) = pact::parse(&v) {
            panic!("{name}: {e:?}");
        }
    }
}

#[test]
fn a_classified_line_from_a_footprint_keeps_the_footprint_and_shows_its_category_source() {
    use std::sync::Arc;
    use vcci_core::classify::{Classification, Evidence, Label, Source};
    let s = profile(&[footprint(ID, P, "kilogram", "1", "2.4")]);
    let mut l = line("2025-06-01", 500.0, "kg");
    l.amount = Some(900.0);
    l.classification = Some(Arc::new(Classification {
        label: Label::of(Naics::from_code(492110).unwrap()),
        source: Source::BuiltinModel,
        confidence: 0.8,
        needs_review: false,
        evidence: Evidence::Terms { terms: vec![] },
    }));
    let e = calc(&l, &s).unwrap();
    // The footprint, not the code, gives the result; the category is the classification's.
    assert_eq!(e.co2e_kg, 1200.0);
    assert_eq!(e.category, Category::UPSTREAM_TRANSPORT);
    assert!(e.classified);
    let r = e.record_with(catalog(), &l, Some(&s));
    assert_eq!(r.category_source, vcci_core::CategorySource::Classification);
    assert_eq!(
        r.classification.as_ref().map(|c| c.source),
        Some(Source::BuiltinModel)
    );
}
