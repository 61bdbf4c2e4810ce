//! Year over year: comparisons with the previous and the base year, intensity per
//! denominator, and target progress, against sums computed by hand.

mod common;

use common::{close, store};
use vcci_store::model::reporting::{Denominator, ReportingSettings, TargetSpec};

#[test]
fn years_compare_by_category_and_targets_follow_the_linear_path() {
    let t = store();
    let org = t.org("acme");
    t.import(
        &org,
        "transaction_id,date,amount,currency,naics_code\n\
         a,2022-03-01,1000,USD,484121\nb,2022-04-01,1000,USD,334111\n\
         c,2023-03-01,1000,USD,484121\nd,2024-03-01,1000,USD,484121\n",
    );
    let mut db = t.store.connect().unwrap();
    // By hand: 2022: 1,000 × 0.595 (category 4) and 1,000 × 0.058 (category 1);
    // 2023: 1,000 × 292.655/304.702 × 0.595; 2024: 1,000 × 292.655/313.689 × 0.595.
    let (c22, c1_22) = (595.0, 58.0);
    let c23 = 1000.0 * 292.655 / 304.702 * 0.595;
    let c24 = 1000.0 * 292.655 / 313.689 * 0.595;
    db.set_reporting_settings(
        org.id,
        &ReportingSettings {
            base_year: Some(2022),
            significance_threshold: 0.05,
        },
        &vcci_store::Actor::system("test"),
    )
    .unwrap();
    db.close_period(&org, 2023, &vcci_store::Actor::system("test"))
        .unwrap();
    let c = db.compare_years(org.id, 2024, None).unwrap();
    assert_eq!((c.previous_year, c.base_year), (2023, Some(2022)));
    assert_eq!(c.sources[&2023], "version 1");
    assert_eq!(c.sources[&2024], "live");
    let r4 = &c.categories[3];
    assert_eq!(r4.category, Some(4));
    close(r4.year_co2e_kg.unwrap(), c24);
    close(r4.previous_year_co2e_kg.unwrap(), c23);
    close(r4.base_year_co2e_kg.unwrap(), c22);
    close(r4.change_vs_previous_kg.unwrap(), c24 - c23);
    close(
        r4.change_vs_previous_pct.unwrap(),
        (c24 - c23) / c23 * 100.0,
    );
    close(r4.change_vs_base_pct.unwrap(), (c24 - c22) / c22 * 100.0);
    // Category 1 has data in the base year only: nulls, not zeros.
    let r1 = &c.categories[0];
    assert_eq!((r1.year_co2e_kg, r1.base_year_co2e_kg), (None, Some(c1_22)));
    assert_eq!(r1.change_vs_base_pct, None);
    close(c.total.base_year_co2e_kg.unwrap(), c22 + c1_22);
    close(
        c.total.change_vs_base_pct.unwrap(),
        (c24 - (c22 + c1_22)) / (c22 + c1_22) * 100.0,
    );

    // Per unit of revenue (M USD): 2024 12, 2022 10, none for 2023.
    for (year, value) in [(2022, 10.0), (2024, 12.0)] {
        db.set_denominator(
            org.id,
            &Denominator {
                name: "revenue".into(),
                year,
                value,
                unit: "M USD".into(),
            },
            &vcci_store::Actor::system("test"),
        )
        .unwrap();
    }
    let c = db.compare_years(org.id, 2024, Some("revenue")).unwrap();
    let i = c.intensity.unwrap();
    close(i.year_kg_per_unit.unwrap(), c24 / 12.0);
    close(i.base_year_kg_per_unit.unwrap(), (c22 + c1_22) / 10.0);
    assert_eq!(i.previous_year_kg_per_unit, None);
    close(
        i.change_vs_base_pct.unwrap(),
        (c24 / 12.0 - (c22 + c1_22) / 10.0) / ((c22 + c1_22) / 10.0) * 100.0,
    );
    assert!(db.compare_years(org.id, 2024, Some("headcount")).is_err());
    assert!(
        db.set_denominator(
            org.id,
            &Denominator {
                name: "revenue".into(),
                year: 2024,
                value: -1.0,
                unit: String::new()
            },
            &vcci_store::Actor::system("test"),
        )
        .is_err()
    );

    // A target: category 4 down 40 % from 2022 by 2026. Path in 2024: 595 − 238 × 2/4 = 476.
    let target = db
        .add_target(
            org.id,
            &TargetSpec {
                name: "freight -40%",
                categories: &[4],
                base_year: 2022,
                target_year: 2026,
                reduction_pct: 40.0,
            },
            &vcci_store::Actor::system("test"),
        )
        .unwrap();
    assert_eq!(target.categories, [4]);
    let p = &db.target_progress(org.id, 2024).unwrap()[0];
    close(p.base_year_co2e_kg.unwrap(), c22);
    close(p.target_co2e_kg.unwrap(), 357.0);
    assert_eq!(p.years.len(), 3);
    let y24 = &p.years[2];
    assert_eq!(y24.year, 2024);
    close(y24.path_co2e_kg, 476.0);
    close(y24.co2e_kg.unwrap(), c24);
    assert_eq!(y24.on_track, Some(false));
    close(y24.reduction_pct.unwrap(), (c22 - c24) / c22 * 100.0);
    close(p.years[0].path_co2e_kg, 595.0);
    assert_eq!(p.years[0].on_track, Some(true));
    // Bad targets are refused, naming the field.
    for (cats, b, tg, pct) in [
        (vec![16], 2022, 2026, 10.0),
        (vec![], 2026, 2022, 10.0),
        (vec![], 2022, 2026, 0.0),
    ] {
        assert!(
            db.add_target(
                org.id,
                &TargetSpec {
                    name: "x",
                    categories: &cats,
                    base_year: b,
                    target_year: tg,
                    reduction_pct: pct,
                },
                &vcci_store::Actor::system("test"),
            )
            .is_err()
        );
    }
}
