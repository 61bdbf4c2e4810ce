//! Supplier product footprints (PACT v3): received as they are, immutable, with lineage;
//! lines naming a product are calculated with them (by import and by recalculation), and a
//! change that would alter a closed year is refused.

mod common;

use common::store;
use serde_json::{Value, json};
use vcci_store::Actor;
use vcci_store::model::audit::AuditFilter;
use vcci_store::model::pcfs::FootprintFilter;

const P: &str = "urn:gtin:4712345060507";

fn footprint(id: &str, pcf: &str, preceding: Option<&str>) -> Value {
    let mut v = json!({
        "id": id,
        "specVersion": "3.0.0",
        "created": "2025-01-10T00:00:00Z",
        "status": "Active",
        "companyName": "Acme Steel",
        "companyIds": ["urn:company:example:acme"],
        "productDescription": "Hot-rolled coil",
        "productIds": [P],
        "productNameCompany": "HRC-1",
        "pcf": {
            "declaredUnitOfMeasurement": "kilogram",
            "declaredUnitAmount": "1000",
            "productMassPerDeclaredUnit": "1000",
            "referencePeriodStart": "2023-01-01T00:00:00Z",
            "referencePeriodEnd": "2024-01-01T00:00:00Z",
            "pcfExcludingBiogenicUptake": pcf,
            "pcfIncludingBiogenicUptake": pcf,
            "fossilGhgEmissions": pcf,
            "fossilCarbonContent": "0",
            "ipccCharacterizationFactors": ["AR6"],
            "crossSectoralStandards": ["GHGP-Product"],
            "exemptedEmissionsPercent": "0"
        }
    });
    if let Some(p) = preceding {
        v["precedingPfIds"] = json!([p]);
    }
    v
}

const A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const B: &str = "bbbbbbbb-0000-4000-8000-000000000002";

/// `acme-steel`'s footprints, received through the API by `actor`.
fn receive(
    db: &mut vcci_store::Db,
    org: &vcci_store::Org,
    docs: &[Value],
    actor: &Actor,
) -> vcci_store::Result<vcci_store::model::pcfs::Receipt> {
    db.receive_footprints(vcci_core::catalog(), org, "acme-steel", docs, "api", actor)
}

fn co2e(db: &vcci_store::Db, org: vcci_store::OrgId, id: &str) -> f64 {
    db.get_line(org, id).unwrap().unwrap().emission.co2e_kg
}

#[test]
fn footprints_calculate_their_products_lines_and_keep_their_lineage() {
    let t = store();
    let org = t.org("acme");
    let other = t.org("other");
    // A line of the product before any footprint: spend-based from the line's NAICS code.
    let (r, rejects) = t.import(
        &org,
        "transaction_id,date,supplier_id,amount,currency,naics_code,quantity,unit,product_id\n\
         coil,2024-05-01,acme-steel,1000,USD,331110,500,kg,urn:gtin:4712345060507\n\
         plain,2024-05-01,acme-steel,1000,USD,331110,,,\n",
    );
    assert_eq!(r.inserted, 2, "{rejects}");
    let mut db = t.store.connect().unwrap();
    let spend = co2e(&db, org.id, "coil");
    let stored = db.get_line(org.id, "coil").unwrap().unwrap();
    assert_eq!(stored.product_id.as_deref(), Some(P));
    assert!(
        stored
            .emission
            .fallbacks
            .iter()
            .any(|f| f.code == "no_product_footprint")
    );

    // One good footprint (2,400 kg per 1,000 kg) and one broken: the good one is kept and
    // the line recalculated: 500 kg × 2400 / 1000 = 1,200 kg.
    let mut broken = footprint("cccccccc-0000-4000-8000-000000000003", "1", None);
    broken["pcf"]["declaredUnitAmount"] = json!(1000);
    let actor = Actor::key(3, "analyst", Some("req-9".into()));
    let receipt = receive(&mut db, &org, &[footprint(A, "2400", None), broken], &actor).unwrap();
    assert_eq!(receipt.received, [A]);
    assert_eq!(receipt.rejected.len(), 1);
    assert_eq!(
        receipt.rejected[0].id.as_deref(),
        Some("cccccccc-0000-4000-8000-000000000003")
    );
    assert_eq!(
        receipt.rejected[0].errors[0].path,
        "/pcf/declaredUnitAmount"
    );
    assert_eq!(receipt.lines_changed, 1);
    assert_eq!(co2e(&db, org.id, "coil"), 1200.0);
    assert_ne!(spend, 1200.0);
    let line = db.get_line(org.id, "coil").unwrap().unwrap();
    assert_eq!(line.emission.method, vcci_core::Method::SupplierSpecific);
    assert_eq!(line.emission.factor.set, "pact");
    assert_eq!(line.emission.factor.key, A);
    assert_eq!(line.emission.factor.version, "3.0.0");
    let pf = line.emission.product_footprint.unwrap();
    assert_eq!(
        (pf.declared_unit_amount.as_str(), pf.company_name.as_str()),
        ("1000", "Acme Steel")
    );
    let u = line.emission.conversions.unit.unwrap();
    assert_eq!(
        (u.from.as_str(), u.to.as_str(), u.converted),
        ("kg", "kg", 500.0)
    );
    // The other line of the supplier names no product: unchanged.
    assert_eq!(
        db.get_line(org.id, "plain")
            .unwrap()
            .unwrap()
            .emission
            .method,
        vcci_core::Method::SpendBased
    );

    // The same footprint again: unchanged. A changed one under the same id: rejected.
    let again = receive(&mut db, &org, &[footprint(A, "2400", None)], &actor).unwrap();
    assert_eq!(
        (again.received.len(), again.unchanged, again.lines_changed),
        (0, 1, 0)
    );
    let changed = receive(&mut db, &org, &[footprint(A, "9999", None)], &actor).unwrap();
    assert!(
        changed.rejected[0].errors[0].message.contains("immutable"),
        "{changed:?}"
    );
    assert_eq!(co2e(&db, org.id, "coil"), 1200.0);

    // A successor listing A: A is superseded, the line follows B (2,000 per 1,000 kg).
    let next = receive(&mut db, &org, &[footprint(B, "2000", Some(A))], &actor).unwrap();
    assert_eq!(
        (next.received.clone(), next.superseded.clone()),
        (vec![B.to_owned()], vec![A.to_owned()])
    );
    assert_eq!(co2e(&db, org.id, "coil"), 1000.0);
    let a = db.footprint(org.id, A).unwrap().unwrap();
    assert_eq!(a.footprint.superseded_by.as_deref(), Some(B));
    assert!(!a.footprint.in_use);
    assert_eq!(a.lines, 0);
    let b = db.footprint(org.id, B).unwrap().unwrap();
    assert_eq!(
        (b.lines, b.footprint.preceding_pf_ids.clone()),
        (1, vec![A.to_owned()])
    );
    assert_eq!(b.document["pcf"]["pcfExcludingBiogenicUptake"], "2000");

    // B deprecated by its host (the same document, status Deprecated): no footprint is in
    // use, and the line falls back to the next method, recorded.
    let mut dep = footprint(B, "2000", Some(A));
    dep["status"] = json!("Deprecated");
    let d = receive(&mut db, &org, &[dep], &actor).unwrap();
    assert_eq!(d.deprecated, [B]);
    assert_eq!(co2e(&db, org.id, "coil"), spend);

    // Lists and filters, and nothing of another organization.
    let all = db
        .footprints(org.id, &FootprintFilter::default(), None, 100)
        .unwrap();
    assert_eq!(
        all.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(),
        [A, B]
    );
    let by_product = FootprintFilter {
        product_id: Some(P.into()),
        ..Default::default()
    };
    assert_eq!(
        db.footprints(org.id, &by_product, None, 100).unwrap().len(),
        2
    );
    let none = FootprintFilter {
        product_id: Some("urn:gtin:1".into()),
        ..Default::default()
    };
    assert!(db.footprints(org.id, &none, None, 100).unwrap().is_empty());
    assert!(
        db.footprints(other.id, &FootprintFilter::default(), None, 100)
            .unwrap()
            .is_empty()
    );
    assert!(db.footprint(other.id, A).unwrap().is_none());

    // Each receipt that changed something is an audit entry with the lines it changed.
    let entries = db
        .audit_entries(org.id, &AuditFilter::default(), None, 100)
        .unwrap();
    let received: Vec<_> = entries
        .iter()
        .filter(|e| e.action == "pcfs.received")
        .collect();
    assert_eq!(received.len(), 3, "{entries:?}");
    assert!(
        received
            .iter()
            .all(|e| e.lines == 1 && e.actor.contains("key 3"))
    );
    assert!(db.verify_audit(org.id).unwrap().broken.is_none());
}

#[test]
fn footprints_that_would_change_a_closed_year_are_refused_whole() {
    let t = store();
    let org = t.org("acme");
    let (r, rejects) = t.import(
        &org,
        "transaction_id,date,supplier_id,amount,currency,naics_code,quantity,unit,product_id\n\
         coil,2023-05-01,acme-steel,1000,USD,331110,500,kg,urn:gtin:4712345060507\n",
    );
    assert_eq!(r.inserted, 1, "{rejects}");
    let mut db = t.store.connect().unwrap();
    db.close_period(&org, 2023, &Actor::system("test")).unwrap();
    let before = co2e(&db, org.id, "coil");
    let err = receive(
        &mut db,
        &org,
        &[footprint(A, "2400", None)],
        &Actor::system("test"),
    )
    .unwrap_err();
    assert!(
        matches!(err, vcci_store::StoreError::PeriodClosed { year: 2023, .. }),
        "{err}"
    );
    assert_eq!(co2e(&db, org.id, "coil"), before);
    assert!(db.footprint(org.id, A).unwrap().is_none());
}

#[test]
fn an_import_uses_the_footprints_already_received() {
    let t = store();
    let org = t.org("acme");
    let mut db = t.store.connect().unwrap();
    db.receive_footprints(
        vcci_core::catalog(),
        &org,
        "acme-steel",
        &[footprint(A, "2400", None)],
        "file",
        &Actor::system("test"),
    )
    .unwrap();
    let (r, rejects) = t.import(
        &org,
        "transaction_id,date,supplier_id,quantity,unit,product_id\n\
         t1,2024-05-01,acme-steel,0.5,tonnes,urn:gtin:4712345060507\n\
         t2,2024-05-01,acme-steel,3,pieces,urn:gtin:4712345060507\n",
    );
    assert_eq!((r.inserted, r.rejected), (1, 1), "{rejects}");
    assert!(
        rejects.contains("3,unit,unit: cannot convert piece"),
        "{rejects}"
    );
    assert_eq!(co2e(&db, org.id, "t1"), 1200.0);
}

#[test]
fn the_same_footprint_twice_in_a_batch_is_stored_once() {
    let t = store();
    let org = t.org("acme");
    let mut db = t.store.connect().unwrap();
    let r = receive(
        &mut db,
        &org,
        &[
            footprint(A, "2400", None),
            footprint(A, "2400", None),
            footprint(A, "9", None),
        ],
        &Actor::system("test"),
    )
    .unwrap();
    assert_eq!(
        (r.received.len(), r.unchanged, r.rejected.len()),
        (1, 1, 1),
        "{r:?}"
    );
}
