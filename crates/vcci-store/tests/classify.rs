//! Classification in the write path (issue 19): lines without a NAICS code are classified,
//! calculated, explained and flagged; rules come first and stay in their organization; the
//! organization's own coded lines teach the supplier history and its model; electricity is
//! refused as Scope 2; recalculation keeps what a line was classified as.

mod common;

use common::{close, store};
use vcci_core::classify::{Evidence, Label, RuleKind, Source};
use vcci_core::{Category, CategorySource, Naics, catalog};
use vcci_store::Actor;

fn label(code: u32) -> Label {
    Label::of(Naics::from_code(code).unwrap())
}

/// The classification line `id` of `org` was calculated with.
fn classification_of(
    db: &vcci_store::Db,
    org: &vcci_store::Org,
    id: &str,
) -> vcci_core::classify::Classification {
    let line = db.get_line(org.id, id).unwrap().unwrap();
    line.emission.classification.expect("classified")
}

const HEADER: &str =
    "transaction_id,date,supplier_name,description,amount,currency,gl_account,gl_account_name\n";

#[test]
fn lines_without_a_code_are_classified_calculated_explained_and_flagged() {
    let t = store();
    let org = t.org("acme");
    let csv = format!(
        "{HEADER}\
         c1,2022-05-01,London Taxi Co,Taxi airport->client,100,USD,6230,Travel & Entertainment\n\
         c2,2022-05-02,Marriott Hotels,Room 2 nights Berlin,200,USD,6220,Travel - Hotels\n\
         c3,2022-05-03,Octopus Energy,Electricity bill March,500,USD,6010,Utilities\n\
         c4,2022-05-04,,INV-2231 / 7781,50,USD,,\n"
    );
    let (r, rejects) = t.import(&org, &csv);
    assert_eq!(
        (r.lines_read, r.inserted, r.rejected),
        (4, 3, 1),
        "{rejects}"
    );
    // Electricity is the company's Scope 2: refused with the field and the reason.
    assert!(rejects.contains("4,description,"), "{rejects}");
    assert!(
        rejects.contains("purchased_energy") || rejects.contains("Scope 2"),
        "{rejects}"
    );
    let db = t.store.connect().unwrap();

    // The taxi: NAICS 485310 from the built-in model; 100 USD of 2022 × 0.566 kg/USD (EPA
    // v1.3.0, 485310, with margins) = 56.6 kg, business travel.
    let c1 = db.get_line(org.id, "c1").unwrap().unwrap();
    assert_eq!(c1.naics_code, None, "the line's own code stays absent");
    assert_eq!(c1.gl_account.as_deref(), Some("6230"));
    assert_eq!(
        c1.gl_account_name.as_deref(),
        Some("Travel & Entertainment")
    );
    close(c1.emission.co2e_kg, 100.0 * 0.566);
    assert_eq!(c1.emission.category, 6);
    assert_eq!(c1.emission.category_source, CategorySource::Classification);
    assert_eq!(c1.emission.factor.key, "485310");
    let c = c1.emission.classification.as_ref().expect("classified");
    assert_eq!(c.label, label(485310));
    assert_eq!(c.source, Source::BuiltinModel);
    assert!(c.confidence >= 0.5 && !c.needs_review, "{c:?}");
    let Evidence::Terms { terms } = &c.evidence else {
        panic!("{c:?}")
    };
    assert!(terms.iter().any(|t| t.term == "taxi"), "{terms:?}");
    // A classified code is an assumption: completeness 1 + 1.
    let dq = c1.emission.data_quality_indicators.unwrap();
    assert_eq!(dq.completeness, 2);

    // The hotel: 721110, 200 × 0.145 = 29 kg.
    let c2 = db.get_line(org.id, "c2").unwrap().unwrap();
    close(c2.emission.co2e_kg, 200.0 * 0.145);
    assert_eq!(
        c2.emission.classification.as_ref().unwrap().label,
        label(721110)
    );

    // Nothing to go on: the fallback code, confidence 0, flagged for review, completeness 3.
    let c4 = db.get_line(org.id, "c4").unwrap().unwrap();
    let c = c4.emission.classification.as_ref().unwrap();
    assert_eq!(c.label.naics.code(), vcci_core::classify::FALLBACK_NAICS);
    assert!(c.needs_review);
    assert_eq!(c4.emission.data_quality_indicators.unwrap().completeness, 3);
    t.assert_read_models(&org);
}

#[test]
fn a_line_with_its_own_code_is_not_classified() {
    let t = store();
    let org = t.org("acme");
    let (r, rejects) = t.import(
        &org,
        "transaction_id,date,description,amount,currency,naics_code\n\
         k1,2022-01-01,Taxi to airport,100,USD,334111\n",
    );
    assert_eq!(r.inserted, 1, "{rejects}");
    let k1 = t
        .store
        .connect()
        .unwrap()
        .get_line(org.id, "k1")
        .unwrap()
        .unwrap();
    assert_eq!(k1.emission.classification, None);
    assert_eq!(k1.emission.category_source, CategorySource::Naics);
    assert_eq!(k1.emission.factor.key, "334111");
}

#[test]
fn rules_beat_the_model_and_stay_in_their_organization() {
    let t = store();
    let (a, b) = (t.org("a"), t.org("b"));
    let mut db = t.store.connect().unwrap();
    let rule = db
        .add_classification_rule(
            a.id,
            RuleKind::Keyword,
            "airport",
            label(485320),
            &Actor::system("test"),
        )
        .unwrap();
    let line = |id: &str| {
        format!("{HEADER}{id},2022-05-01,London Taxi Co,Taxi airport->client,100,USD,6230,Travel\n")
    };
    t.import(&a, &line("r1"));
    t.import(&b, &line("r1"));
    let ra = db.get_line(a.id, "r1").unwrap().unwrap();
    let ca = ra.emission.classification.unwrap();
    assert_eq!((ca.source, ca.label), (Source::Rule, label(485320)));
    assert_eq!(ca.confidence, 1.0);
    assert_eq!(
        ca.evidence,
        Evidence::Rule {
            rule_id: rule.id,
            rule_kind: RuleKind::Keyword,
            pattern: "airport".into()
        }
    );
    // The same line in another organization: its own (built-in) answer, not a's rule or a's
    // cached answer.
    let cb = classification_of(&db, &b, "r1");
    assert_eq!((cb.source, cb.label), (Source::BuiltinModel, label(485310)));
    // Deleting the rule: the next line is the model's again (no stale cached answer).
    assert!(
        db.delete_classification_rule(a.id, rule.id, &Actor::system("test"))
            .unwrap()
    );
    assert!(
        !db.delete_classification_rule(b.id, rule.id, &Actor::system("test"))
            .unwrap()
    );
    t.import(&a, &line("r2"));
    let c2 = classification_of(&db, &a, "r2");
    assert_eq!(c2.source, Source::BuiltinModel);
    // Rules are checked when added.
    let e = db
        .add_classification_rule(
            a.id,
            RuleKind::GlAccount,
            "6*0",
            label(485310),
            &Actor::system("t"),
        )
        .unwrap_err();
    assert!(e.to_string().contains("pattern"), "{e}");
}

#[test]
fn coded_lines_teach_supplier_history_and_the_organization_model() {
    let t = store();
    let org = t.org("acme");
    let (r, rejects) = t.import(
        &org,
        "transaction_id,date,supplier_name,description,amount,currency,naics_code,gl_account,gl_account_name\n\
         h1,2022-01-01,Nordwind Logistik GmbH,Tour 4471 Hamburg,900,USD,484121,5200,Freight\n\
         h2,2022-01-02,Nordwind Logistik GmbH,Tour 4502 Bremen,700,USD,484121,5200,Freight\n\
         h3,2022-01-03,Labco,Reagent kit A,300,USD,325199,7410,Lab consumables\n\
         h4,2022-01-04,Labco,Reagent kit B,310,USD,325199,7410,Lab consumables\n\
         h5,2022-01-05,Labco,Reagent kit C,320,USD,325199,7410,Lab consumables\n",
    );
    assert_eq!(r.inserted, 5, "{rejects}");
    let mut db = t.store.connect().unwrap();
    let report = db.train_classifier(org.id).unwrap();
    assert_eq!((report.lines_read, report.examples), (5, 5));
    assert_eq!(db.classification_state(org.id).unwrap().examples, 5);
    let (r, rejects) = t.import(
        &org,
        &format!(
            "{HEADER}\
             n1,2022-02-01,NORDWIND LOGISTIK,Sammelrechnung KW 12,800,USD,,\n\
             n2,2022-02-02,Other Lab Supplies,Pipette tips 200ul reagent kit,50,USD,7410,Lab consumables\n"
        ),
    );
    assert_eq!(r.inserted, 2, "{rejects}");
    let n1 = classification_of(&db, &org, "n1");
    assert_eq!(
        (n1.source, n1.label),
        (Source::SupplierHistory, label(484121))
    );
    assert_eq!(
        n1.evidence,
        Evidence::SupplierHistory {
            supplier: "nordwind logistik".into(),
            lines: 2,
            share: 1.0
        }
    );
    let n2 = classification_of(&db, &org, "n2");
    assert_eq!(
        (n2.source, n2.label),
        (Source::OrganizationModel, label(325199))
    );
}

#[test]
fn recalculation_keeps_what_a_line_was_classified_as() {
    let t = store();
    let org = t.org("acme");
    t.import(
        &org,
        &format!("{HEADER}k1,2022-05-01,London Taxi Co,Taxi airport->client,100,USD,6230,Travel\n"),
    );
    let mut db = t.store.connect().unwrap();
    let before = db.get_line(org.id, "k1").unwrap().unwrap();
    // A rule added later applies to lines written from now on, not to a recalculation.
    db.add_classification_rule(
        org.id,
        RuleKind::Keyword,
        "taxi",
        label(485320),
        &Actor::system("t"),
    )
    .unwrap();
    let r = db
        .recalculate(catalog(), &org, &org, &Actor::system("t"))
        .unwrap();
    assert_eq!(r.changed, 0);
    let after = db.get_line(org.id, "k1").unwrap().unwrap();
    assert_eq!(after, before);
    assert_eq!(after.emission.category, Category::BUSINESS_TRAVEL.number());
    t.assert_read_models(&org);
}

#[test]
fn coverage_splits_spend_and_emissions_by_source() {
    let t = store();
    let org = t.org("acme");
    let mut db = t.store.connect().unwrap();
    db.add_classification_rule(
        org.id,
        RuleKind::Keyword,
        "hotel",
        label(721110),
        &Actor::system("t"),
    )
    .unwrap();
    let (r, rejects) = t.import(
        &org,
        "transaction_id,date,supplier_name,description,amount,currency,naics_code\n\
         g1,2022-01-01,Dell,Laptops,1000,USD,334111\n\
         r1,2022-01-02,Marriott,Hotel Berlin,200,USD,\n\
         b1,2022-01-03,London Taxi Co,Taxi to client,100,USD,\n\
         b2,2022-01-04,London Taxi Co,Taxi to airport,50,USD,\n\
         f1,2022-01-05,Mystery Ltd,INV-7781,10,USD,\n\
         y1,2023-01-05,Mystery Ltd,INV-7782,10,USD,\n",
    );
    assert_eq!(r.inserted, 6, "{rejects}");
    let range = vcci_store::model::reports::DateRange {
        from: vcci_core::Date::new(2022, 1, 1),
        to: vcci_core::Date::new(2022, 12, 31),
    };
    let c = db.classification_coverage(org.id, range).unwrap();
    assert_eq!(c.totals.lines, 5);
    close(c.totals.spend_usd, 1360.0);
    let row = |s: &str| c.by_source.iter().find(|r| r.source == s).unwrap();
    // Laptops: 1000 × 0.058 (334111) = 58; the hotel by the rule: 200 × 0.145 = 29; the
    // taxis: 150 × 0.566 = 84.9; the unknown line: 10 × the fallback's factor.
    assert_eq!(row("given").totals.lines, 1);
    close(row("given").totals.co2e_kg, 58.0);
    close(row("rule").totals.co2e_kg, 29.0);
    assert_eq!(row("builtin_model").totals.lines, 3);
    close(row("builtin_model").totals.spend_usd, 160.0);
    close(row("given").spend_share.unwrap(), 1000.0 / 1360.0);
    let kg: f64 = c.by_source.iter().map(|r| r.totals.co2e_kg).sum();
    close(kg, c.totals.co2e_kg);
    // Only the line with nothing to go on needs review.
    assert_eq!(c.needs_review.lines, 1);
    close(c.needs_review.spend_usd, 10.0);
    // Suppliers without a code, by classified spend (rules and history are not listed).
    let names: Vec<&str> = c
        .largest_unclassified_suppliers
        .iter()
        .map(|s| s.supplier_id.as_str())
        .collect();
    assert_eq!(names, ["London Taxi Co", "Mystery Ltd"]);
    assert_eq!(c.largest_unclassified_suppliers[1].needs_review_lines, 1);
}
