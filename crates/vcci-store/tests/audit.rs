//! The audit log: every change is an entry with who, when, what and the request; imports
//! are one entry plus per-line digests; the hash chain tells an edited, deleted or
//! reordered entry, and names the first one broken.

mod common;

use common::store;
use vcci_store::Actor;
use vcci_store::model::audit::{AuditFilter, LineChange, line_key};
use vcci_store::model::keys::Role;
use vcci_store::testing::execute_sql;
use vcci_store::write::prepare;

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

fn all(db: &vcci_store::Db, org: vcci_store::OrgId) -> Vec<vcci_store::model::audit::AuditEntry> {
    db.audit_entries(org, &AuditFilter::default(), None, 1000)
        .unwrap()
}

#[test]
fn every_change_is_an_entry_and_the_chain_tells_tampering() {
    let t = store();
    let org = t.org("acme");
    let other = t.org("other");
    let (r, _) = t.import(
        &org,
        "transaction_id,date,amount,currency,naics_code\na,2023-03-01,1000,USD,484121\nb,2023-04-01,1000,USD,484121\nc,2024-01-01,10,USD,484121\n",
    );
    assert_eq!(r.inserted, 3);
    let mut db = t.store.connect().unwrap();
    let api = Actor::key(7, "analyst", Some("req-1".into()));
    let profiles = Default::default();
    let p = prepare(
        vcci_core::catalog(),
        &org,
        line("a", "2023-03-01", 2000.0),
        &profiles,
        None,
        None,
    )
    .unwrap();
    let a_after = p.hash;
    db.write_lines(org.id, &[p], &Vec::new(), &api).unwrap();
    assert!(db.delete_line(org.id, "c", &api).unwrap());
    let admin = Actor::key(1, "admin", Some("req-2".into()));
    let key = db.create_key(org.id, Role::Viewer, &admin).unwrap();
    assert!(db.revoke_key(&key, &admin).unwrap());
    db.close_period(&org, 2023, &admin).unwrap();
    db.reopen_period(&org, 2023, "a supplier invoice was corrected", &admin)
        .unwrap();
    let v2 = db.close_period(&org, 2023, &admin).unwrap();

    let entries = all(&db, org.id);
    let actions: Vec<&str> = entries.iter().rev().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "import",
            "lines.written",
            "line.deleted",
            "key.created",
            "key.revoked",
            "period.closed",
            "period.reopened",
            "period.closed"
        ]
    );
    // Newest first, seq 8 down to 1, each linked to the one before.
    assert_eq!(
        entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=8).rev().collect::<Vec<_>>()
    );
    for w in entries.windows(2) {
        assert_eq!(w[0].prev_hash, w[1].hash);
    }
    let import = &entries[7];
    assert_eq!((import.role.as_str(), import.lines), ("system", 3));
    assert_eq!(import.detail["status"], "succeeded");
    let write = &entries[6];
    assert_eq!((write.key_id, write.role.as_str()), (Some(7), "analyst"));
    assert_eq!(write.request_id.as_deref(), Some("req-1"));
    assert_eq!(write.actor, "key 7 (analyst)");
    assert_eq!(
        (
            write.detail["created"].as_u64(),
            write.detail["updated"].as_u64()
        ),
        (Some(0), Some(1))
    );
    assert_eq!(
        entries[1].detail["reason"],
        "a supplier invoice was corrected"
    );
    // The version a close made names the entry that attests it.
    assert_eq!(v2.info.audit_seq, Some(8));
    assert_eq!(
        v2.info.audit_hash.as_deref(),
        Some(entries[0].hash.as_str())
    );
    // Another organization's chain is its own.
    assert!(all(&db, other.id).is_empty());

    // The line digests: the import created a, b, c; the upsert updated a (before = what
    // the import wrote); the delete removed c.
    let d = db.audit_line_digests(org.id, 1).unwrap().unwrap();
    assert_eq!(d.len(), 3);
    assert!(
        d.iter()
            .all(|x| x.change == LineChange::Created && x.before.is_none())
    );
    let a_created = d.iter().find(|x| x.id_hash == line_key("a")).unwrap();
    let up = &db.audit_line_digests(org.id, 2).unwrap().unwrap()[0];
    assert_eq!(
        (up.change, up.before, up.after),
        (LineChange::Updated, a_created.after, Some(a_after))
    );
    let del = &db.audit_line_digests(org.id, 3).unwrap().unwrap()[0];
    assert_eq!(
        (del.change, del.after, del.id_hash),
        (LineChange::Deleted, None, line_key("c"))
    );
    // A line's history, newest first.
    let f = AuditFilter {
        line: Some("a".into()),
        ..Default::default()
    };
    let h: Vec<i64> = db
        .audit_entries(org.id, &f, None, 10)
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(h, [2, 1]);
    // Filters: a family of actions, a key, a cursor.
    let f = AuditFilter {
        action: Some("period.".into()),
        ..Default::default()
    };
    assert_eq!(db.audit_entries(org.id, &f, None, 10).unwrap().len(), 3);
    let f = AuditFilter {
        key_id: Some(7),
        ..Default::default()
    };
    assert_eq!(db.audit_entries(org.id, &f, None, 10).unwrap().len(), 2);
    let page = db
        .audit_entries(org.id, &AuditFilter::default(), Some(4), 2)
        .unwrap();
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 2]);

    let v = db.verify_audit(org.id).unwrap();
    assert!(v.broken.is_none(), "{v:?}");
    assert_eq!((v.entries, v.lines, v.head_seq), (8, 5, 8));

    let o = org.id.0;
    let broken = |db: &vcci_store::Db| {
        let v = db.verify_audit(org.id).unwrap();
        v.broken.map(|b| (b.seq, b.reason))
    };
    // An edited entry: its hash no longer matches.
    let sql = |s: &str| s.replace("ORG", &o.to_string());
    execute_sql(&db, &sql("UPDATE audit_log SET detail = '{\"reason\":\"nothing\"}' WHERE org_id = ORG AND seq = 7")).unwrap();
    let (seq, why) = broken(&db).unwrap();
    assert_eq!(seq, 7);
    assert!(why.contains("edited"), "{why}");
    execute_sql(&db, &sql("UPDATE audit_log SET detail = '{\"reason\":\"a supplier invoice was corrected\"}' WHERE org_id = ORG AND seq = 7")).unwrap();
    assert_eq!(broken(&db), None);
    // A changed line digest of the import.
    execute_sql(
        &db,
        &sql("UPDATE audit_line_digests SET digests = substr(digests, 1, 25) WHERE org_id = ORG"),
    )
    .unwrap();
    let (seq, why) = broken(&db).unwrap();
    assert_eq!(seq, 1);
    assert!(why.contains("line digests"), "{why}");
    // Two entries swapped (their seq exchanged).
    let t2 = store();
    let (db, org) = fresh_chain(&t2);
    let o = org.id.0;
    let sql = |s: &str| s.replace("ORG", &o.to_string());
    execute_sql(
        &db,
        &sql("UPDATE audit_log SET seq = 100 WHERE org_id = ORG AND seq = 2"),
    )
    .unwrap();
    execute_sql(
        &db,
        &sql("UPDATE audit_log SET seq = 2 WHERE org_id = ORG AND seq = 3"),
    )
    .unwrap();
    execute_sql(
        &db,
        &sql("UPDATE audit_log SET seq = 3 WHERE org_id = ORG AND seq = 100"),
    )
    .unwrap();
    let v = db.verify_audit(org.id).unwrap().broken.unwrap();
    assert_eq!(v.seq, 2);
    assert!(v.reason.contains("reordered"), "{}", v.reason);
    // A deleted entry in the middle.
    let t3 = store();
    let (db, org) = fresh_chain(&t3);
    let sql = |s: &str| s.replace("ORG", &org.id.0.to_string());
    execute_sql(
        &db,
        &sql("DELETE FROM audit_log WHERE org_id = ORG AND seq = 2"),
    )
    .unwrap();
    let v = db.verify_audit(org.id).unwrap().broken.unwrap();
    assert_eq!(v.seq, 3);
    assert!(v.reason.contains("entry 2 is missing"), "{}", v.reason);
    // The last entry deleted: the head tells it.
    let t4 = store();
    let (db, org) = fresh_chain(&t4);
    let sql = |s: &str| s.replace("ORG", &org.id.0.to_string());
    execute_sql(
        &db,
        &sql("DELETE FROM audit_log WHERE org_id = ORG AND seq = 4"),
    )
    .unwrap();
    let v = db.verify_audit(org.id).unwrap().broken.unwrap();
    assert_eq!(v.seq, 4);
    assert!(v.reason.contains("removed"), "{}", v.reason);
}

/// A store with four entries of one organization: key created and revoked, a reporting
/// setting, a denominator.
fn fresh_chain(t: &common::TestStore) -> (vcci_store::Db, vcci_store::Org) {
    let org = t.org("acme");
    let mut db = t.store.connect().unwrap();
    let cli = Actor::cli();
    let key = db.create_key(org.id, Role::Analyst, &cli).unwrap();
    db.revoke_key(&key, &cli).unwrap();
    db.set_reporting_settings(
        org.id,
        &vcci_store::model::reporting::ReportingSettings {
            base_year: Some(2022),
            significance_threshold: 0.05,
        },
        &cli,
    )
    .unwrap();
    db.set_denominator(
        org.id,
        &vcci_store::model::reporting::Denominator {
            name: "revenue".into(),
            year: 2022,
            value: 10.0,
            unit: "M USD".into(),
        },
        &cli,
    )
    .unwrap();
    assert_eq!(all(&db, org.id).len(), 4);
    assert!(db.verify_audit(org.id).unwrap().broken.is_none());
    (db, org)
}

#[test]
fn settings_restatements_and_suppliers_are_entries_with_their_lines() {
    let t = store();
    let org = t.org("acme");
    t.import_suppliers(
        &org,
        "supplier_id,name,intensity_kg_per_usd,intensity_year\nS,Supplier,0.5,2023\n",
    );
    let (r, _) = t.import(
        &org,
        "transaction_id,date,amount,currency,naics_code,supplier_id\na,2023-03-01,1000,USD,484121,S\nb,2024-03-01,1000,USD,484121,\n",
    );
    assert_eq!(r.inserted, 2);
    let mut db = t.store.connect().unwrap();
    let cli = Actor::cli();
    // A setting changed: one entry with the cause and the lines it rewrote (b, a spend
    // line without supplier data; a is calculated from the supplier's intensity).
    let v12 = vcci_store::Org {
        epa_version: vcci_core::EpaVersion::V1_2,
        ..org.clone()
    };
    let rc = db
        .recalculate(vcci_core::catalog(), &org, &v12, &cli)
        .unwrap();
    assert_eq!(rc.changed, 1);
    let e = &all(&db, org.id)[0];
    assert_eq!((e.action.as_str(), e.lines), ("settings.changed", 1));
    assert!(
        e.detail["cause"].as_str().unwrap().contains("1.2"),
        "{}",
        e.detail
    );
    assert_eq!(e.role, "cli");
    // A supplier's intensity changed: its line recalculated, in the same entry.
    let s = vcci_store::model::suppliers::Supplier::parse(&[
        Some("S"),
        Some("Supplier"),
        None,
        None,
        Some("0.25"),
        Some("2023"),
        None,
        None,
        None,
    ])
    .unwrap();
    let up = db
        .upsert_suppliers(vcci_core::catalog(), &v12, &[s], &cli)
        .unwrap();
    assert_eq!(up.recalculated, 1);
    let e = &all(&db, v12.id)[0];
    assert_eq!(
        (e.action.as_str(), e.subject.as_str(), e.lines),
        ("suppliers.upserted", "S", 1)
    );
    assert_eq!(e.detail["suppliers"][0]["intensity"]["kg_per_usd"], 0.25);
    // A restatement of closed years: one entry, and a new version of each year it changes
    // (2024's spend line; 2023's line is calculated from supplier data), attested by it.
    db.close_period(&v12, 2023, &cli).unwrap();
    db.close_period(&v12, 2024, &cli).unwrap();
    let v13 = vcci_store::Org {
        epa_version: vcci_core::EpaVersion::V1_3_0,
        ..v12.clone()
    };
    let made = db
        .apply_restatement(
            vcci_core::catalog(),
            &v12,
            &v13,
            &Default::default(),
            "EPA v1.3 adopted",
            &cli,
        )
        .unwrap();
    assert_eq!(made, [(2024, 2)]);
    let e = &all(&db, org.id)[0];
    assert_eq!(e.action, "restatement.applied");
    assert_eq!(e.detail["reason"], "EPA v1.3 adopted");
    assert_eq!(e.detail["versions"][0]["version"], 2);
    let v = db.inventory_version(org.id, 2024, 2).unwrap().unwrap();
    assert_eq!(v.info.audit_seq, Some(e.seq));
    assert!(db.inventory_version(org.id, 2023, 2).unwrap().is_none());
    let v = db.verify_audit(org.id).unwrap();
    assert!(v.broken.is_none() && v.unsealed_imports.is_empty(), "{v:?}");
}
