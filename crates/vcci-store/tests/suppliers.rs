//! Supplier resolution (issue 19): names typed a dozen ways link to one supplier, a close but
//! different name is a pair to review (never a merge), and merges and their undoing move
//! lines, read models and supplier data exactly (a property test over random sequences).

mod common;

use std::collections::HashMap;

use common::{close, store};
use proptest::prelude::*;
use vcci_core::catalog;
use vcci_store::Actor;

#[test]
fn names_link_to_their_supplier_and_close_names_are_pairs_to_review() {
    let t = store();
    let org = t.org("acme");
    let (r, rejects) = t.import_suppliers(
        &org,
        "supplier_id,name,country\nSUP-1,Acme Inc,US\nSUP-2,Nordwind Logistik GmbH,DE\n",
    );
    assert_eq!(r.inserted, 2, "{rejects}");
    let (r, rejects) = t.import(
        &org,
        "transaction_id,date,supplier_name,description,amount,currency,naics_code\n\
         l1,2022-01-01,\"ACME, Inc.\",Widgets,100,USD,334111\n\
         l2,2022-01-02,ACME INCORPORATED,Widgets,100,USD,334111\n\
         l3,2022-01-03,Acme Inc,Widgets,100,USD,334111\n\
         l4,2022-01-04,Acma Ltd,Widgets,100,USD,334111\n\
         l5,2022-01-05,Nordwind Logistik,Freight,100,USD,484121\n\
         l6,2022-01-06,Zeta Widgets,Widgets,100,USD,334111\n\
         l7,2022-01-07,\"ZETA WIDGETS, LLC\",Widgets,100,USD,334111\n",
    );
    assert_eq!(r.inserted, 7, "{rejects}");
    let db = t.store.connect().unwrap();
    let key = |id: &str| {
        let l = db.get_line(org.id, id).unwrap().unwrap();
        (l.supplier_id, l.supplier_as_named)
    };
    // Every spelling of Acme belongs to SUP-1; the line keeps the name it gave.
    assert_eq!(key("l1"), (Some("SUP-1".into()), Some("ACME, Inc.".into())));
    assert_eq!(
        key("l2"),
        (Some("SUP-1".into()), Some("ACME INCORPORATED".into()))
    );
    assert_eq!(key("l3").0.as_deref(), Some("SUP-1"));
    assert_eq!(key("l5").0.as_deref(), Some("SUP-2"));
    // "Acma Ltd" is close to "Acme Inc" (0.883) but not the same: a new supplier, and a
    // pair to review.
    assert_eq!(key("l4"), (Some("Acma Ltd".into()), None));
    let pairs = db.supplier_matches(org.id, Some("open"), None, 10).unwrap();
    assert_eq!(pairs.len(), 1, "{pairs:?}");
    assert_eq!(
        db.supplier_matches(org.id, None, Some("acma"), 10)
            .unwrap()
            .len(),
        1
    );
    assert!(
        db.supplier_matches(org.id, None, Some("zeta"), 10)
            .unwrap()
            .is_empty()
    );
    assert!(
        db.supplier_matches(org.id, None, Some("%"), 10)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        (
            pairs[0].supplier_id.as_str(),
            pairs[0].candidate_id.as_str()
        ),
        ("Acma Ltd", "SUP-1")
    );
    assert!(pairs[0].score > 0.85 && pairs[0].score < 0.95, "{pairs:?}");
    // A new supplier known by name: its later spellings link to it.
    assert_eq!(key("l6"), (Some("Zeta Widgets".into()), None));
    assert_eq!(
        key("l7"),
        (
            Some("Zeta Widgets".into()),
            Some("ZETA WIDGETS, LLC".into())
        )
    );
    // The aliases recorded.
    let aliases = db.supplier_aliases(org.id, Some("SUP-1"), 10).unwrap();
    let names: Vec<&str> = aliases.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["ACME, Inc."], "one normalized alias: acme");
    // Per supplier, the read models follow the links.
    t.assert_read_models(&org);
    let s = db.get_supplier(org.id, "SUP-1").unwrap().unwrap();
    assert_eq!(s.emissions.transaction_count, 3, "{s:?}");
    // A supplier file's new id named like an existing supplier: a pair, never a link (two
    // ids are two suppliers until a person merges them).
    let (r, _) = t.import_suppliers(&org, "supplier_id,name\nSUP-3,ACME Incorporated\n");
    assert_eq!(r.inserted, 1);
    let pairs = db.supplier_matches(org.id, Some("open"), None, 10).unwrap();
    let p = pairs
        .iter()
        .find(|p| p.supplier_id == "SUP-3")
        .expect("a pair for SUP-3");
    assert_eq!((p.candidate_id.as_str(), p.score), ("SUP-1", 1.0));
    // Dismissed: no longer open.
    assert!(
        db_mut(&t)
            .dismiss_supplier_match(org.id, p.id, &Actor::system("t"))
            .unwrap()
    );
    assert!(
        !db_mut(&t)
            .dismiss_supplier_match(org.id, p.id, &Actor::system("t"))
            .unwrap()
    );
    assert_eq!(
        db.supplier_matches(org.id, Some("dismissed"), None, 10)
            .unwrap()
            .len(),
        1
    );
    // Another organization links nothing to acme's suppliers.
    let other = t.org("other");
    let (r, _) = t.import(
        &other,
        "transaction_id,date,supplier_name,description,amount,currency,naics_code\n\
         o1,2022-01-01,\"ACME, Inc.\",Widgets,100,USD,334111\n",
    );
    assert_eq!(r.inserted, 1);
    let o1 = db.get_line(other.id, "o1").unwrap().unwrap();
    assert_eq!(o1.supplier_id.as_deref(), Some("ACME, Inc."));
    assert!(
        db.supplier_matches(other.id, None, None, 10)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_merge_moves_lines_and_data_and_its_undoing_restores_them() {
    let t = store();
    let org = t.org("acme");
    t.import_suppliers(
        &org,
        "supplier_id,name,intensity_kg_per_usd,intensity_year\n\
         SUP-A,Acme Inc,,\n\
         SUP-B,Acme Europe,0.5,2022\n",
    );
    let (r, rejects) = t.import(
        &org,
        "transaction_id,date,supplier_id,supplier_name,amount,currency,naics_code\n\
         a1,2022-03-01,SUP-A,,200,USD,541511\n\
         b1,2022-03-02,SUP-B,,100,USD,541511\n\
         b2,2022-03-03,,Acme Europe,40,USD,541511\n",
    );
    assert_eq!(r.inserted, 3, "{rejects}");
    let mut db = t.store.connect().unwrap();
    let kg =
        |db: &vcci_store::Db, id: &str| db.get_line(org.id, id).unwrap().unwrap().emission.co2e_kg;
    // Before: a1 by its code, 200 × 0.084 = 16.8; b1 and b2 by SUP-B's intensity, × 0.5.
    close(kg(&db, "a1"), 16.8);
    close(kg(&db, "b1"), 50.0);
    close(kg(&db, "b2"), 20.0);
    let before: Vec<_> = ["a1", "b1", "b2"]
        .iter()
        .map(|id| db.get_line(org.id, id).unwrap().unwrap())
        .collect();
    let by = Actor::system("t");
    assert!(
        db.merge_suppliers(catalog(), &org, "SUP-B", "SUP-B", &by)
            .is_err()
    );
    assert!(matches!(
        db.merge_suppliers(catalog(), &org, "SUP-X", "SUP-A", &by),
        Err(vcci_store::StoreError::NotFound(_))
    ));
    let m = db
        .merge_suppliers(catalog(), &org, "SUP-B", "SUP-A", &by)
        .unwrap();
    assert_eq!((m.lines_moved, m.intensity_years_moved), (2, 1));
    // SUP-A has SUP-B's 2022 intensity now: its own line too is supplier-specific,
    // 200 × 0.5 = 100; b1 and b2 belong to SUP-A at the same 0.5.
    close(kg(&db, "a1"), 100.0);
    close(kg(&db, "b1"), 50.0);
    let b1 = db.get_line(org.id, "b1").unwrap().unwrap();
    assert_eq!(
        (b1.supplier_id.as_deref(), b1.supplier_as_named.as_deref()),
        (Some("SUP-A"), Some("SUP-B"))
    );
    assert!(db.get_supplier(org.id, "SUP-B").unwrap().is_none());
    assert_eq!(
        db.get_supplier(org.id, "SUP-A")
            .unwrap()
            .unwrap()
            .emissions
            .transaction_count,
        3
    );
    t.assert_read_models(&org);
    // Lines that name SUP-B later, by id or by name, belong to SUP-A.
    let (r, _) = t.import(
        &org,
        "transaction_id,date,supplier_id,supplier_name,amount,currency,naics_code\n\
         b3,2022-04-01,SUP-B,,10,USD,541511\n\
         b4,2022-04-02,,ACME EUROPE,10,USD,541511\n",
    );
    assert_eq!(r.inserted, 2);
    for id in ["b3", "b4"] {
        let l = db.get_line(org.id, id).unwrap().unwrap();
        assert_eq!(l.supplier_id.as_deref(), Some("SUP-A"), "{id}");
    }
    // Undone: every line of SUP-B, the later ones too, goes back with its result.
    let u = db
        .unmerge_suppliers(catalog(), &org, m.merge_id, &by)
        .unwrap();
    assert_eq!(u.lines_moved, 4);
    let after: Vec<_> = ["a1", "b1", "b2"]
        .iter()
        .map(|id| db.get_line(org.id, id).unwrap().unwrap())
        .collect();
    assert_eq!(after, before);
    for id in ["b3", "b4"] {
        let l = db.get_line(org.id, id).unwrap().unwrap();
        assert_eq!(l.supplier_id.as_deref(), Some("SUP-B"), "{id}");
        close(l.emission.co2e_kg, 5.0);
    }
    let b = db.get_supplier(org.id, "SUP-B").unwrap().unwrap();
    assert_eq!(b.supplier.intensities.len(), 1);
    assert!(
        db.get_supplier(org.id, "SUP-A")
            .unwrap()
            .unwrap()
            .supplier
            .intensities
            .is_empty()
    );
    t.assert_read_models(&org);
    assert!(matches!(
        db.unmerge_suppliers(catalog(), &org, m.merge_id, &by),
        Err(vcci_store::StoreError::Conflict { .. })
    ));
    let audit = db
        .audit_entries(
            org.id,
            &vcci_store::model::audit::AuditFilter {
                action: Some("supplier.".into()),
                ..Default::default()
            },
            None,
            10,
        )
        .unwrap();
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["supplier.unmerged", "supplier.merged"]);
}

fn db_mut(t: &common::TestStore) -> vcci_store::Db {
    t.store.connect().unwrap()
}

/// A supplier of the property test: its key (an id, or its name for one known by name), its
/// name, and its intensity's year and value.
type TestSupplier = (&'static str, &'static str, Option<(u16, f64)>);

const SUPPLIERS: [TestSupplier; 4] = [
    ("S0", "Alpha Co", Some((2022, 0.3))),
    ("S1", "Beta Industries", None),
    ("S2", "Gamma Freight", Some((2023, 0.2))),
    ("Delta Ltd", "Delta Ltd", Some((2022, 0.7))),
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]
    /// After any sequence of merges and undoings: the read models equal a recomputation,
    /// every line's result equals a recalculation, every line belongs to the supplier its
    /// own supplier was merged into; undoing all of them gives back every line as it was.
    #[test]
    fn merges_and_undoing_leave_read_models_equal_to_a_recomputation(
        lines in proptest::collection::vec((0usize..4, 2022u16..2024, 1u32..1000), 4..12),
        ops in proptest::collection::vec((0usize..4, 0usize..4, proptest::bool::weighted(0.25)), 2..9),
    ) {
        let t = store();
        let org = t.org("acme");
        let mut csv = String::from("supplier_id,name,intensity_kg_per_usd,intensity_year\n");
        for (id, name, i) in SUPPLIERS.iter().take(3) {
            let (y, v) = i.map_or((String::new(), String::new()), |(y, v)| (y.to_string(), v.to_string()));
            csv += &format!("{id},{name},{v},{y}\n");
        }
        t.import_suppliers(&org, &csv);
        let mut csv = String::from("transaction_id,date,supplier_id,supplier_name,amount,currency,naics_code\n");
        for (i, (s, y, usd)) in lines.iter().enumerate() {
            let (id, name, _) = SUPPLIERS[*s];
            if *s == 3 {
                csv += &format!("t{i},{y}-05-01,,{name},{usd},USD,334111\n");
            } else {
                csv += &format!("t{i},{y}-05-01,{id},,{usd},USD,334111\n");
            }
        }
        let (r, rejects) = t.import(&org, &csv);
        prop_assert_eq!(r.inserted as usize, lines.len(), "{}", rejects);
        let mut db = t.store.connect().unwrap();
        // Delta Ltd is a supplier known by name: give it its intensity.
        t.import_suppliers(&org, "supplier_id,name,intensity_kg_per_usd,intensity_year\nDelta Ltd,Delta Ltd,0.7,2022\n");
        let snapshot = |db: &vcci_store::Db| -> Vec<vcci_store::model::lines::StoredLine> {
            (0..lines.len()).map(|i| db.get_line(org.id, &format!("t{i}")).unwrap().unwrap()).collect()
        };
        let initial = snapshot(&db);
        // Active merges (id, from, into), oldest first: a supplier's lines belong to the
        // end of its chain of merges.
        let mut merges: Vec<(i64, usize, usize)> = Vec::new();
        let by = Actor::system("t");
        for (from, into, undo) in ops {
            if undo {
                if let Some((id, _, _)) = merges.pop() {
                    db.unmerge_suppliers(catalog(), &org, id, &by).unwrap();
                    check(&t, &db, &org, &lines, &owners(&merges))?;
                }
                continue;
            }
            // Only suppliers that exist (not merged away) merge.
            let merged_away = |s: usize| merges.iter().any(|m| m.1 == s);
            if from == into || merged_away(from) || merged_away(into) {
                continue;
            }
            let m = db.merge_suppliers(catalog(), &org, SUPPLIERS[from].0, SUPPLIERS[into].0, &by).unwrap();
            merges.push((m.merge_id, from, into));
            check(&t, &db, &org, &lines, &owners(&merges))?;
        }
        let owner = owners(&merges);
        check(&t, &db, &org, &lines, &owner)?;
        while let Some((id, _, _)) = merges.pop() {
            db.unmerge_suppliers(catalog(), &org, id, &by).unwrap();
        }
        prop_assert_eq!(snapshot(&db), initial);
        t.assert_read_models(&org);
    }
}

/// The supplier each supplier's lines belong to under the active merges.
fn owners(merges: &[(i64, usize, usize)]) -> HashMap<usize, usize> {
    (0..4)
        .map(|s| {
            let mut x = s;
            while let Some(m) = merges.iter().find(|m| m.1 == x) {
                x = m.2;
            }
            (s, x)
        })
        .collect()
}

fn check(
    t: &common::TestStore,
    db: &vcci_store::Db,
    org: &vcci_store::Org,
    lines: &[(usize, u16, u32)],
    owner: &HashMap<usize, usize>,
) -> Result<(), TestCaseError> {
    let diffs = db.verify_read_models(org.id).unwrap();
    prop_assert!(diffs.is_empty(), "{:?}", diffs);
    for (i, (s, _, _)) in lines.iter().enumerate() {
        let l = db.get_line(org.id, &format!("t{i}")).unwrap().unwrap();
        prop_assert_eq!(
            l.supplier_id.as_deref(),
            Some(SUPPLIERS[owner[s]].0),
            "line t{}",
            i
        );
    }
    // Every stored result is what a recalculation gives now.
    let mut db2 = t.store.connect().unwrap();
    let r = db2
        .recalculate(catalog(), org, org, &Actor::system("check"))
        .unwrap();
    prop_assert_eq!(r.changed, 0);
    Ok(())
}
