//! The read models agree with a full recomputation after any sequence of writes.

mod common;

use proptest::prelude::*;
use vcci_core::{Currency, Date, Line, Naics, Unit, catalog};
use vcci_store::model::reports::DateRange;
use vcci_store::write::prepare;

#[derive(Debug, Clone)]
enum Op {
    Upsert {
        id: u8,
        day: u16,
        amount: f64,
        supplier: u8,
        naics: usize,
        eur: bool,
    },
    Delete {
        id: u8,
    },
    Recalculate,
}

const NAICS: [&str; 4] = ["484121", "334111", "562111", "721110"];
/// Energy inputs (Scope 2 and Scope 1 factors): their Scope 1/2 is recorded apart.
const ENERGY: [(&str, &str); 2] = [
    (
        "uk-electricity/electricity-generated/electricity-uk/kwh",
        "kWh",
    ),
    (
        "fuels/gaseous-fuels/natural-gas/kwh-gross-cv",
        "kWh (Gross CV)",
    ),
];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..12, 0u16..800, -5000.0f64..50_000.0, 0u8..4, 0usize..6, any::<bool>())
            .prop_map(|(id, day, amount, supplier, naics, eur)| Op::Upsert { id, day, amount, supplier, naics, eur }),
        2 => (0u8..12).prop_map(|id| Op::Delete { id }),
        1 => Just(Op::Recalculate),
    ]
}

fn date(day: u16) -> Date {
    // Days from 2022-01-01, spread over ~26 months (no leap days before 2024-02).
    let (y, mut d) = (2022 + day / 365, day % 365);
    let mut m = 1u8;
    for len in [31u16, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] {
        if d < len {
            break;
        }
        d -= len;
        m += 1;
    }
    Date::new(y, m, d as u8 + 1).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn read_models_match_recomputation(ops in proptest::collection::vec(op(), 1..40)) {
        let t = common::store();
        let org = t.org("acme");
        let mut db = t.store.connect().unwrap();
        let profiles = Default::default();
        for op in ops {
            match op {
                Op::Upsert { id, day, amount, supplier, naics, eur } => {
                    let mut line = Line {
                        transaction_id: Some(format!("t{id}")),
                        date: Some(date(day)),
                        supplier_id: (supplier > 0).then(|| format!("S{supplier}")),
                        ..Line::default()
                    };
                    let amount = (amount * 100.0).round() / 100.0;
                    if let Some((key, unit)) = naics.checked_sub(NAICS.len()).map(|i| ENERGY[i]) {
                        line.quantity = Some(amount);
                        line.unit = Some(Unit::parse(unit).unwrap());
                        line.activity_id = Some(key.into());
                    } else {
                        line.amount = Some(amount);
                        line.currency = Some(Currency::parse(if eur { "EUR" } else { "USD" }).unwrap());
                        line.naics = Some(Naics::parse(NAICS[naics]).unwrap());
                    }
                    let p = prepare(catalog(), &org, line, &profiles, None, None).unwrap();
                    let new: Vec<(String, String)> = p.supplier_key().map(|k| (k.to_owned(), k.to_owned())).into_iter().collect();
                    db.write_lines(org.id, &[p], &new, &vcci_store::Actor::system("test")).unwrap();
                }
                Op::Delete { id } => {
                    db.delete_line(org.id, &format!("t{id}"), &vcci_store::Actor::system("test")).unwrap();
                }
                Op::Recalculate => {
                    db.recalculate(catalog(), &org, &org, &vcci_store::Actor::system("test")).unwrap();
                }
            }
        }
        let diffs = db.verify_read_models(org.id).unwrap();
        prop_assert!(diffs.is_empty(), "{diffs:?}");
        let s = db.summary(org.id, DateRange::default(), None).unwrap();
        let lines: Vec<f64> = (0..12).filter_map(|i| db.get_line(org.id, &format!("t{i}")).unwrap()).map(|l| l.emission.co2e_kg).collect();
        prop_assert_eq!(s.transaction_count, lines.len() as i64);
        let sum: f64 = lines.iter().sum();
        prop_assert!((s.total_co2e_kg - sum).abs() <= 1e-6 * lines.len() as f64 + 1e-9, "{} vs {}", s.total_co2e_kg, sum);
        // What energy inputs record apart is summed apart, by scope, and nowhere else.
        let stored: Vec<_> = (0..12).filter_map(|i| db.get_line(org.id, &format!("t{i}")).unwrap()).collect();
        for scope in [1u8, 2] {
            let apart: f64 = stored.iter().filter_map(|l| l.emission.scope_1_2.as_ref()).filter(|o| o.scope == scope).map(|o| o.co2e_kg).sum();
            let got = if scope == 1 { s.scope_1_2_recorded_apart.scope_1_kg } else { s.scope_1_2_recorded_apart.scope_2_kg };
            prop_assert!((got - apart).abs() <= 1e-6 * stored.len() as f64 + 1e-9, "scope {}: {} vs {}", scope, got, apart);
        }
        db.rebuild_read_models(org.id).unwrap();
        let rebuilt = db.summary(org.id, DateRange::default(), None).unwrap();
        prop_assert_eq!(&rebuilt, &s);
        let by_cat: i64 = s.by_category.iter().map(|c| c.transaction_count).sum();
        prop_assert_eq!(by_cat, s.transaction_count);
        let no_data = s.categories_without_data.len() + s.by_category.len();
        prop_assert_eq!(no_data, 15);
        // Any date range: whole months come from the monthly model and edge days from the
        // daily one; the totals equal the lines in the range, and by-month agrees.
        for (a, b) in [(0u16, 799u16), (13, 400), (31, 58), (45, 45), (200, 612), (59, 89)] {
            let range = DateRange { from: Some(date(a)), to: Some(date(b)) };
            let s = db.summary(org.id, range, None).unwrap();
            let in_range: Vec<f64> = (0..12)
                .filter_map(|i| db.get_line(org.id, &format!("t{i}")).unwrap())
                .filter(|l| l.date >= date(a).to_string() && l.date <= date(b).to_string())
                .map(|l| l.emission.co2e_kg)
                .collect();
            prop_assert_eq!(s.transaction_count, in_range.len() as i64, "range {}..{}", a, b);
            let sum: f64 = in_range.iter().sum();
            prop_assert!((s.total_co2e_kg - sum).abs() <= 1e-6 * in_range.len() as f64 + 1e-9);
            let months = db.by_month(org.id, range).unwrap();
            let month_count: i64 = months.iter().map(|m| m.transaction_count).sum();
            prop_assert_eq!(month_count, s.transaction_count);
        }
    }
}
