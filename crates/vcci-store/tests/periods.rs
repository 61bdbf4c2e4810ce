//! Reporting periods: a closed year refuses every write that would change it (imports,
//! upserts, deletes, recalculations) and keeps the valid rest; its inventory version stays
//! as it was frozen; a reopen needs a reason.

mod common;

use common::{close, store};
use vcci_store::StoreError;
use vcci_store::model::reports::DateRange;
use vcci_store::write::{LineOutcome, prepare};

fn year(y: i32) -> DateRange {
    DateRange {
        from: vcci_core::Date::parse(&format!("{y}-01-01")).ok(),
        to: vcci_core::Date::parse(&format!("{y}-12-31")).ok(),
    }
}

fn line(id: &str, date: &str, amount: f64) -> vcci_core::Line {
    vcci_core::Line {
        transaction_id: Some(id.into()),
        date: vcci_core::Date::parse(date).ok(),
        amount: Some(amount),
        currency: Some(vcci_core::Currency::USD),
        naics: vcci_core::Naics::parse("484121").ok(),
        ..Default::default()
    }
}

#[test]
fn a_closed_period_refuses_changes_and_keeps_the_valid_rest() {
    let t = store();
    let org = t.org("acme");
    let head = "transaction_id,date,amount,currency,naics_code\n";
    let (r, _) = t.import(
        &org,
        &format!("{head}a,2023-03-01,1000,USD,484121\nb,2024-03-01,1000,USD,484121\nc,2023-06-01,500,USD,484121\n"),
    );
    assert_eq!(r.inserted, 3);
    let mut db = t.store.connect().unwrap();
    let before = db.inventory(org.id, year(2023)).unwrap();
    // 1,500 USD of 2023 × 292.655/304.702 × 0.595.
    close(before.total_co2e_kg, 1500.0 * 292.655 / 304.702 * 0.595);
    let v = db
        .close_period(&org, 2023, &vcci_store::Actor::system("test"))
        .unwrap();
    assert_eq!((v.info.version, v.info.transaction_count), (1, 2));
    assert_eq!(v.info.total_co2e_kg, before.total_co2e_kg);
    assert_eq!(
        v.inventory["total_co2e_kg"],
        serde_json::json!(before.total_co2e_kg)
    );
    assert_eq!(db.closed_years(org.id).unwrap(), [2023]);
    // Closing it again is a conflict.
    assert!(matches!(
        db.close_period(&org, 2023, &vcci_store::Actor::system("test")),
        Err(StoreError::Conflict { .. })
    ));

    // An import: changes to 2023 are rejected (a changed line, a new line, a line moved
    // into 2023, a line moved out of it); the rest is kept.
    let (r, rejects) = t.import(
        &org,
        &format!(
            "{head}a,2023-03-01,2000,USD,484121\nb,2024-03-01,3000,USD,484121\nd,2023-01-05,10,USD,484121\n\
             e,2024-01-05,10,USD,484121\nc,2024-06-01,500,USD,484121\nf,2023-02-01,1,USD,484121\n"
        ),
    );
    assert_eq!((r.inserted, r.updated, r.rejected), (1, 1, 4), "{rejects}");
    let closed = "date: the 2023 reporting period is closed: its disclosed figures cannot change (an admin may reopen it with a reason)";
    for n in [2, 4, 6, 7] {
        assert!(
            rejects.contains(&format!("\n{n},date,\"{closed}\""))
                || rejects.contains(&format!("\n{n},date,{closed}")),
            "line {n}: {rejects}"
        );
    }
    // b moved into 2023 by an upsert; a re-sent unchanged 2023 line is fine.
    let profiles = Default::default();
    let p = |l| prepare(vcci_core::catalog(), &org, l, &profiles, None, None).unwrap();
    let out = db
        .write_lines(
            org.id,
            &[
                p(line("b", "2023-12-31", 3000.0)),
                p(line("c", "2023-06-01", 500.0)),
                p(line("g", "2025-01-01", 5.0)),
            ],
            &Vec::new(),
            &vcci_store::Actor::system("test"),
        )
        .unwrap();
    assert_eq!(
        out,
        [
            LineOutcome::PeriodClosed { year: 2023 },
            LineOutcome::Unchanged,
            LineOutcome::Inserted
        ]
    );
    // A delete of a 2023 line is refused, naming the period.
    match db.delete_line(org.id, "a", &vcci_store::Actor::system("test")) {
        Err(StoreError::PeriodClosed { year, .. }) => assert_eq!(year, 2023),
        other => panic!("{other:?}"),
    }
    assert!(
        db.delete_line(org.id, "e", &vcci_store::Actor::system("test"))
            .unwrap()
    );
    // A recalculation (another EPA release) keeps 2023 as disclosed and reports its lines.
    let org12 = vcci_store::Org {
        epa_version: vcci_core::EpaVersion::V1_2,
        ..org.clone()
    };
    let rc = db
        .recalculate(
            vcci_core::catalog(),
            &org,
            &org12,
            &vcci_store::Actor::system("test"),
        )
        .unwrap();
    let kept: Vec<&str> = rc
        .errors
        .iter()
        .filter(|(_, e)| e.code == "period_closed")
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(kept, ["a", "c"]);
    assert_eq!(rc.changed, 2, "b and g");
    let after = db.inventory(org.id, year(2023)).unwrap();
    assert_eq!(after.total_co2e_kg, before.total_co2e_kg);
    assert_eq!(after.transaction_count, 2);
    t.assert_read_models(&org);

    // Reopening needs a reason; then 2023 takes writes again, and a second close makes
    // version 2 while version 1 stays as it was.
    assert!(matches!(
        db.reopen_period(&org12, 2023, "  ", &vcci_store::Actor::system("test")),
        Err(StoreError::Invalid { .. })
    ));
    assert!(matches!(
        db.reopen_period(&org12, 2022, "x", &vcci_store::Actor::system("test")),
        Err(StoreError::NotFound(_))
    ));
    db.reopen_period(
        &org12,
        2023,
        "supplier invoice corrected",
        &vcci_store::Actor::system("test"),
    )
    .unwrap();
    let p2 = db.get_period(org.id, 2023).unwrap().unwrap();
    assert_eq!(
        (p2.status, p2.reopen_reason.as_deref()),
        ("open", Some("supplier invoice corrected"))
    );
    assert!(
        db.delete_line(org.id, "a", &vcci_store::Actor::system("test"))
            .unwrap()
    );
    let v2 = db
        .close_period(&org12, 2023, &vcci_store::Actor::system("test"))
        .unwrap();
    assert_eq!((v2.info.version, v2.info.transaction_count), (2, 1));
    let v1 = db.inventory_version(org.id, 2023, 1).unwrap().unwrap();
    assert_eq!(v1.info.total_co2e_kg, before.total_co2e_kg);
    assert_eq!(v1.inventory, v.inventory);
    let listed = db.list_periods(org.id).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].versions.len(), 2);
    assert_eq!(listed[0].status, "closed");
    t.assert_read_models(&org);
}

/// Supplier data and settings: a change that would alter a closed year is refused (the
/// rest of a batch kept); one that leaves the closed year as it was goes through.
#[test]
fn supplier_data_and_settings_that_would_change_a_closed_year_are_refused() {
    let t = store();
    let org = t.org("acme");
    let head = "supplier_id,name,country,naics_code,intensity_kg_per_usd,intensity_year\n";
    t.import_suppliers(
        &org,
        &format!("{head}S,S,US,484121,0.30,2023\nT,T,US,484121,,\n"),
    );
    let (r, _) = t.import(
        &org,
        "transaction_id,date,amount,currency,supplier_id\ns23,2023-03-01,1000,USD,S\ns24,2024-03-01,1000,USD,S\nt24,2024-03-01,1000,USD,T\n",
    );
    assert_eq!(r.inserted, 3);
    let mut db = t.store.connect().unwrap();
    db.close_period(&org, 2023, &vcci_store::Actor::system("test"))
        .unwrap();
    let s23 = db
        .get_line(org.id, "s23")
        .unwrap()
        .unwrap()
        .emission
        .co2e_kg;
    close(s23, 300.0);

    // A new 2023 value and a country change would change s23: refused, with the line in
    // the rejects; a 2024 value (s23 keeps its own year's) and T's change go through.
    let (r, rejects) = t.import_suppliers(
        &org,
        &format!(
            "{head}S,S,US,484121,0.50,2023\nS,S,US,484121,0.20,2024\nT,T,GB,484121,0.1,2024\n"
        ),
    );
    assert_eq!((r.inserted, r.rejected), (2, 1), "{rejects}");
    assert!(
        rejects.contains("\n2,supplier_id,supplier_id: the 2023 reporting period is closed"),
        "{rejects}"
    );
    assert!(
        rejects.contains("(1 of its lines there would change)"),
        "{rejects}"
    );
    assert_eq!(
        db.get_line(org.id, "s23")
            .unwrap()
            .unwrap()
            .emission
            .co2e_kg,
        s23
    );
    close(
        db.get_line(org.id, "s24")
            .unwrap()
            .unwrap()
            .emission
            .co2e_kg,
        200.0,
    );
    close(
        db.get_line(org.id, "t24")
            .unwrap()
            .unwrap()
            .emission
            .co2e_kg,
        100.0,
    );
    let years: Vec<_> = db
        .supplier_intensities(org.id, "S")
        .unwrap()
        .unwrap()
        .iter()
        .map(|v| (v.year, v.kg_per_usd))
        .collect();
    assert_eq!(years, [(Some(2023), 0.30), (Some(2024), 0.20)]);
    // Its country does not change supplier data's results (its own geography); its NAICS
    // code moves s23 to another category: refused.
    let (r, rejects) = t.import_suppliers(&org, &format!("{head}S,S,DE,484121,,\n"));
    assert_eq!((r.inserted, r.rejected), (1, 0), "{rejects}");
    let (r, rejects) = t.import_suppliers(&org, &format!("{head}S,S,DE,334111,,\n"));
    assert_eq!((r.inserted, r.rejected), (0, 1), "{rejects}");
    assert_eq!(
        db.get_supplier(org.id, "S")
            .unwrap()
            .unwrap()
            .supplier
            .naics_code
            .as_deref(),
        Some("484121")
    );
    // Removing the 2023 value would move s23 to the 2024 value: refused.
    assert!(matches!(
        db.remove_supplier_intensity(
            vcci_core::catalog(),
            &org,
            "S",
            Some(2023),
            &vcci_store::Actor::system("test")
        ),
        Err(StoreError::PeriodClosed { year: 2023, .. })
    ));
    // Pinning EPA v1.2 would not change s23 (the supplier's own data) but the settings
    // check covers every line: T has no 2023 line, S's 2023 line is supplier data, so
    // nothing in 2023 changes and the pin is allowed. A spend line in 2023 makes it refused.
    let mut v12 = org.clone();
    v12.epa_version = vcci_core::EpaVersion::V1_2;
    db.check_settings_change(vcci_core::catalog(), &org, &v12)
        .unwrap();
    db.reopen_period(
        &org,
        2023,
        "add a spend line",
        &vcci_store::Actor::system("test"),
    )
    .unwrap();
    t.import(
        &org,
        "transaction_id,date,amount,currency,naics_code\nx23,2023-05-01,100,USD,484121\n",
    );
    db.close_period(&org, 2023, &vcci_store::Actor::system("test"))
        .unwrap();
    match db.check_settings_change(vcci_core::catalog(), &org, &v12) {
        Err(StoreError::PeriodClosed {
            year: 2023,
            message,
        }) => {
            assert!(
                message.contains("(1 of its lines would change"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
    t.assert_read_models(&org);
}

/// The test: switching from EPA v1.2 to v1.3.0 on demo data gives a preview whose
/// restated figures equal a full recalculation under v1.3.0, to the mg; the disclosed
/// versions stay as they were until the restatement is applied, and after it.
#[test]
fn a_restatement_preview_equals_a_recalculation_and_applying_it_makes_a_version() {
    let t = store();
    let (mut sup, mut lines) = (Vec::new(), Vec::new());
    let spec = vcci_store::demo::DemoSpec {
        suppliers: 200,
        lines: 3000,
        ..Default::default()
    };
    vcci_store::demo::generate(&spec, &mut sup, &mut lines).unwrap();
    let (sup, lines) = (
        String::from_utf8(sup).unwrap(),
        String::from_utf8(lines).unwrap(),
    );
    let mut db = t.store.connect().unwrap();
    // The same data in two organizations: `old` on v1.2 (then closed), `new` on v1.3.0.
    let old = t.org("old");
    let v12 = vcci_store::Org {
        epa_version: vcci_core::EpaVersion::V1_2,
        ..old.clone()
    };
    db.recalculate(
        vcci_core::catalog(),
        &old,
        &v12,
        &vcci_store::Actor::system("test"),
    )
    .unwrap();
    let old = db.org_by_id(old.id).unwrap().unwrap();
    let new = t.org("new");
    for o in [&old, &new] {
        t.import_suppliers(o, &sup);
        let (r, rejects) = t.import(o, &lines);
        assert_eq!(r.rejected, 0, "{rejects}");
    }
    let v1: Vec<_> = [2023, 2024]
        .map(|y| {
            db.close_period(&old, y, &vcci_store::Actor::system("test"))
                .unwrap()
        })
        .to_vec();
    let mut v13 = old.clone();
    v13.epa_version = vcci_core::EpaVersion::V1_3_0;
    let p = db
        .restatement_preview(vcci_core::catalog(), &old, &v13, &Default::default())
        .unwrap();
    assert_eq!(p.cause, "EPA supply chain 1.3.0 instead of 1.2");
    assert_eq!(p.years.len(), 2);
    for y in &p.years {
        let live = db.year_figures(new.id, y.year).unwrap();
        for r in &y.categories {
            let c = r.category.unwrap();
            assert_eq!(
                r.after_co2e_kg.map(vcci_store::codec::kg_to_mg),
                live.by_category.get(&c).copied(),
                "{} category {c}",
                y.year
            );
        }
        assert_eq!(
            vcci_store::codec::kg_to_mg(y.total.after_co2e_kg.unwrap()),
            live.total_mg(&[]).unwrap()
        );
        // v1.2 and v1.3.0 differ for spend lines: affected, and significant at 5 %.
        assert!(y.lines_affected > 0 && y.lines_failing == 0);
        assert_eq!(y.significant, y.total.change_pct.unwrap().abs() >= 5.0);
        assert_eq!(y.version, 1);
    }
    // Nothing changed yet: the versions and the closed years' live figures.
    for (v, y) in v1.iter().zip([2023, 2024]) {
        let again = db.inventory_version(old.id, y, 1).unwrap().unwrap();
        assert_eq!(again.inventory, v.inventory);
        assert_eq!(
            vcci_store::codec::kg_to_mg(
                db.inventory(old.id, year(i32::from(y)))
                    .unwrap()
                    .total_co2e_kg
            ),
            vcci_store::codec::kg_to_mg(v.info.total_co2e_kg)
        );
    }
    assert!(
        db.apply_restatement(
            vcci_core::catalog(),
            &old,
            &v13,
            &Default::default(),
            " ",
            &vcci_store::Actor::system("test")
        )
        .is_err()
    );
    let made = db
        .apply_restatement(
            vcci_core::catalog(),
            &old,
            &v13,
            &Default::default(),
            "EPA v1.3.0 adopted",
            &vcci_store::Actor::system("test"),
        )
        .unwrap();
    assert_eq!(made, [(2023, 2), (2024, 2)]);
    for y in &p.years {
        let v2 = db.inventory_version(old.id, y.year, 2).unwrap().unwrap();
        assert_eq!(
            vcci_store::codec::kg_to_mg(v2.info.total_co2e_kg),
            vcci_store::codec::kg_to_mg(y.total.after_co2e_kg.unwrap())
        );
        assert!(
            v2.info
                .reason
                .starts_with("restatement: EPA v1.3.0 adopted")
        );
        let v1 = db.inventory_version(old.id, y.year, 1).unwrap().unwrap();
        assert_eq!(
            vcci_store::codec::kg_to_mg(v1.info.total_co2e_kg),
            vcci_store::codec::kg_to_mg(y.total.before_co2e_kg.unwrap())
        );
        let period = db.get_period(old.id, y.year).unwrap().unwrap();
        assert_eq!((period.status, period.version), ("closed", 2));
    }
    assert_eq!(
        db.org_by_id(old.id).unwrap().unwrap().epa_version,
        vcci_core::EpaVersion::V1_3_0
    );
    t.assert_read_models(&old);
}

#[test]
fn corrected_supplier_data_and_lines_of_a_closed_year_are_restated() {
    let t = store();
    let org = t.org("acme");
    t.import_suppliers(
        &org,
        "supplier_id,name,intensity_kg_per_usd,intensity_year\nS,Supplier,0.25,2023\n",
    );
    let (r, _) = t.import(
        &org,
        "transaction_id,date,amount,currency,naics_code,supplier_id\na,2023-03-01,1000,USD,484121,S\nb,2023-05-01,1000,USD,484121,\nc,2024-01-01,10,USD,484121,\n",
    );
    assert_eq!(r.inserted, 3);
    let mut db = t.store.connect().unwrap();
    let admin = vcci_store::Actor::key(1, "admin", None);
    let v1 = db.close_period(&org, 2023, &admin).unwrap();
    // By hand: a = 1,000 USD × 0.25 kg/USD (the supplier's 2023 value) = 250 kg;
    // b = 1,000 USD of 2023 × 292.655/304.702 (CPI to 2022 USD) × 0.595 kg/USD (484121).
    let b = 1000.0 * 292.655 / 304.702 * 0.595;
    close(v1.info.total_co2e_kg, 250.0 + b);
    // The supplier's 2023 value was wrong (0.30) and line a's amount too (2,000 USD).
    let s = vcci_store::model::suppliers::Supplier::parse(&[
        Some("S"),
        Some("Supplier"),
        None,
        None,
        Some("0.30"),
        Some("2023"),
        None,
        None,
        None,
    ])
    .unwrap();
    let mut a = vcci_core::Line {
        transaction_id: Some("a".into()),
        date: vcci_core::Date::parse("2023-03-01").ok(),
        amount: Some(2000.0),
        currency: Some(vcci_core::Currency::USD),
        naics: vcci_core::Naics::parse("484121").ok(),
        supplier_id: Some("S".into()),
        ..Default::default()
    };
    let c = vcci_store::write::Correction {
        suppliers: vec![s],
        lines: vec![a.clone()],
    };
    // Refused as plain writes (the year is closed) ...
    let p = db
        .restatement_preview(vcci_core::catalog(), &org, &org, &c)
        .unwrap();
    assert_eq!(p.years.len(), 1);
    let y = &p.years[0];
    assert_eq!((y.year, y.version, y.lines_affected), (2023, 1, 1));
    close(y.total.before_co2e_kg.unwrap(), 250.0 + b);
    close(y.total.after_co2e_kg.unwrap(), 600.0 + b);
    assert!(y.significant);
    assert!(
        p.cause.contains("corrected data of 1 supplier(s): S")
            && p.cause.contains("1 corrected line(s)"),
        "{}",
        p.cause
    );
    // ... the preview changed nothing.
    close(
        db.inventory_version(org.id, 2023, 1)
            .unwrap()
            .unwrap()
            .info
            .total_co2e_kg,
        250.0 + b,
    );
    let live = |db: &vcci_store::Db| db.summary(org.id, year(2023), None).unwrap().total_co2e_kg;
    close(live(&db), 250.0 + b);
    let made = db
        .apply_restatement(
            vcci_core::catalog(),
            &org,
            &org,
            &c,
            "supplier invoice corrected",
            &admin,
        )
        .unwrap();
    assert_eq!(made, [(2023, 2)]);
    // The restated figures are the preview's, live and in version 2; version 1 unchanged.
    close(live(&db), 600.0 + b);
    let v2 = db.inventory_version(org.id, 2023, 2).unwrap().unwrap();
    assert_eq!(
        vcci_store::codec::kg_to_mg(v2.info.total_co2e_kg),
        vcci_store::codec::kg_to_mg(y.total.after_co2e_kg.unwrap())
    );
    assert!(
        v2.info
            .reason
            .starts_with("restatement: supplier invoice corrected (corrected data"),
        "{}",
        v2.info.reason
    );
    close(
        db.inventory_version(org.id, 2023, 1)
            .unwrap()
            .unwrap()
            .info
            .total_co2e_kg,
        250.0 + b,
    );
    assert_eq!(db.list_periods(org.id).unwrap()[0].status, "closed");
    assert_eq!(
        db.supplier_intensities(org.id, "S").unwrap().unwrap()[0].kg_per_usd,
        0.30
    );
    // A line moved out of the closed year by a correction: the year loses it.
    a.date = vcci_core::Date::parse("2024-02-01").ok();
    let c = vcci_store::write::Correction {
        suppliers: vec![],
        lines: vec![a],
    };
    let p = db
        .restatement_preview(vcci_core::catalog(), &org, &org, &c)
        .unwrap();
    close(p.years[0].total.after_co2e_kg.unwrap(), b);
    assert_eq!(p.years[0].lines_affected, 1);
    // Nothing to restate is refused.
    assert!(
        db.apply_restatement(
            vcci_core::catalog(),
            &org,
            &org,
            &Default::default(),
            "x",
            &admin
        )
        .is_err()
    );
    assert!(db.verify_audit(org.id).unwrap().broken.is_none());
}
