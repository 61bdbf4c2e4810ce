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
    // The inventory carries the same coverage, and per category the classified shares:
    // category 1 is the laptops (58 kg, given) and the unknown line (10 × 0.127 = 1.27 kg,
    // flagged); category 6 is the hotel and the taxis, all classified.
    let inv = db.inventory(org.id, range).unwrap();
    assert_eq!(inv.classification, c);
    let cat = |n: u8| inv.categories.iter().find(|x| x.category == n).unwrap();
    close(cat(1).classified_share.unwrap(), 1.27 / 59.27);
    close(cat(1).needs_review_share.unwrap(), 1.27 / 59.27);
    close(cat(6).classified_share.unwrap(), 1.0);
    close(cat(6).needs_review_share.unwrap(), 0.0);
    assert_eq!(cat(2).classified_share, None, "not reported");
    let csv = inv.to_csv();
    assert!(
        csv.lines()
            .next()
            .unwrap()
            .ends_with(",classified_share,needs_review_share")
    );
    // (29 + 84.9 + 1.27) / 173.17 of the emissions rest on classification; 1.27 / 173.17
    // need review.
    assert!(
        csv.contains("classified share 0.6651; needing review 0.0073"),
        "{csv}"
    );
}

/// The review loop: the queue by spend; a correction rewrites the line and the flagged lines
/// of the same input (read models and all), not a closed year's; it is remembered for the
/// same input, teaches the supplier's history, and can make a rule; errors name the item.
#[test]
fn reviews_correct_lines_teach_the_classifier_and_keep_closed_years() {
    use vcci_store::classify::{ReviewInput, RuleFromReview};
    let t = store();
    let org = t.org("acme");
    let (r, rejects) = t.import(
        &org,
        "transaction_id,date,supplier_name,description,amount,currency,naics_code\n\
         y1,2021-03-01,Mystery Ltd,INV-7781,40,USD,\n\
         q1,2022-01-05,Mystery Ltd,INV-7781,500,USD,\n\
         q2,2022-02-05,MYSTERY LTD.,inv 7781,20,USD,\n\
         q3,2022-03-05,Zeta GmbH,INV-0042,100,USD,\n\
         g1,2022-01-01,Dell,Laptops,1000,USD,334111\n",
    );
    assert_eq!(r.inserted, 5, "{rejects}");
    let mut db = t.store.connect().unwrap();
    let by = Actor::system("reviewer");
    db.close_period(&org, 2021, &by).unwrap();

    // The queue: flagged lines, largest spend first, paged.
    let size = db.review_queue_size(org.id).unwrap();
    assert_eq!(size.lines, 4);
    close(size.spend_usd, 660.0);
    let page = db.review_queue(org.id, None, 2).unwrap();
    let ids: Vec<&str> = page
        .iter()
        .map(|i| i.line.transaction_id.as_str())
        .collect();
    assert_eq!(ids, ["q1", "q3"]);
    let last = page.last().unwrap();
    let rest = db
        .review_queue(
            org.id,
            Some((last.spend_usd, last.line.transaction_id.clone())),
            10,
        )
        .unwrap();
    let ids: Vec<&str> = rest
        .iter()
        .map(|i| i.line.transaction_id.as_str())
        .collect();
    assert_eq!(ids, ["y1", "q2"]);
    // Nothing to go on: 500 USD of 2022 × 0.127 (561990, EPA v1.3.0 with margins).
    close(page[0].line.emission.co2e_kg, 500.0 * 0.127);

    // Bad verdicts name the item; nothing is written.
    let item = |id: &str, naics: Option<u32>| ReviewInput {
        transaction_id: id.into(),
        naics: naics.and_then(Naics::from_code),
        ..ReviewInput::default()
    };
    let e = db
        .review_classifications(
            catalog(),
            &org,
            &[item("q1", None), item("nope", None)],
            None,
            &by,
        )
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("items[1].transaction_id: no line 'nope'"),
        "{e}"
    );
    let e = db
        .review_classifications(catalog(), &org, &[item("g1", None)], None, &by)
        .unwrap_err();
    assert!(e.to_string().contains("was not classified"), "{e}");
    let e = db
        .review_classifications(catalog(), &org, &[item("y1", None)], None, &by)
        .unwrap_err();
    assert!(
        matches!(e, vcci_store::StoreError::PeriodClosed { year: 2021, .. }),
        "{e}"
    );
    assert_eq!(db.review_queue_size(org.id).unwrap().lines, 4);

    // The analyst corrects q1 to custom programming (541511).
    let r = db
        .review_classifications(catalog(), &org, &[item("q1", Some(541511))], None, &by)
        .unwrap();
    assert_eq!(r.reviewed[0].verdict, "corrected");
    // q1 and q2 (the same input, typed differently) are written again; y1 keeps its year.
    assert_eq!((r.lines_changed, r.lines_kept_closed), (2, 1));
    assert_eq!(r.queue.lines, 2);
    for (id, usd) in [("q1", 500.0), ("q2", 20.0)] {
        let c = classification_of(&db, &org, id);
        assert_eq!(
            (c.label, c.source, c.needs_review),
            (label(541511), Source::Review, false)
        );
        let Evidence::Review {
            verdict,
            transaction_id,
            previous,
            ..
        } = &c.evidence
        else {
            panic!("{c:?}")
        };
        assert_eq!(*verdict, vcci_core::classify::Verdict::Corrected);
        assert_eq!(transaction_id, "q1");
        let p = previous.as_ref().unwrap();
        assert_eq!(
            (p.label.naics.code(), p.source),
            (561990, Source::BuiltinModel)
        );
        let line = db.get_line(org.id, id).unwrap().unwrap();
        // 541511: 0.084 kg/USD with margins.
        close(line.emission.co2e_kg, usd * 0.084);
        // A reviewed code is no longer an assumption awaiting review: completeness 1 + 1.
        assert_eq!(
            line.emission.data_quality_indicators.unwrap().completeness,
            2
        );
    }
    t.assert_read_models(&org);
    let y1 = classification_of(&db, &org, "y1");
    assert!(y1.needs_review && y1.source == Source::BuiltinModel);
    let audit = db
        .audit_entries(
            org.id,
            &vcci_store::model::audit::AuditFilter {
                action: Some("classification.reviewed".into()),
                ..Default::default()
            },
            None,
            10,
        )
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].lines, 2);
    assert_eq!(audit[0].detail["items"][0]["previous"]["naics"], "561990");

    // Lines imported later: the same input gets the review (numbers are not words: "INV
    // 7781" is "INV-7781", as any invoice number would be); another line of the supplier
    // its history (one reviewed line counts twice: 2/3).
    let (r, rejects) = t.import(
        &org,
        "transaction_id,date,supplier_name,description,amount,currency\n\
         n1,2022-06-01,Mystery Ltd,INV 7781,10,USD\n\
         n2,2022-06-02,Mystery Ltd,Annual maintenance fee,10,USD\n",
    );
    assert_eq!(r.inserted, 2, "{rejects}");
    let n1 = classification_of(&db, &org, "n1");
    assert_eq!((n1.label, n1.source), (label(541511), Source::Review));
    let n2 = classification_of(&db, &org, "n2");
    assert_eq!(
        (n2.label, n2.source),
        (label(541511), Source::SupplierHistory)
    );
    assert!(!n2.needs_review);

    // Accepting q3 with a supplier rule: the rule has the line's label and its supplier.
    let r = db
        .review_classifications(
            catalog(),
            &org,
            &[item("q3", None)],
            Some(RuleFromReview {
                kind: RuleKind::Supplier,
                pattern: None,
            }),
            &by,
        )
        .unwrap();
    assert_eq!(r.reviewed[0].verdict, "accepted");
    let rule = r.rule.unwrap();
    assert_eq!(
        (rule.kind, rule.pattern.as_str()),
        ("supplier", "Zeta GmbH")
    );
    assert_eq!(rule.naics_code, "561990");
    assert_eq!(r.queue.lines, 1, "only the closed year's line waits");
    let (r, rejects) = t.import(
        &org,
        "transaction_id,date,supplier_name,description,amount,currency\n\
         z1,2022-07-01,ZETA GMBH,Consulting day,10,USD\n",
    );
    assert_eq!(r.inserted, 1, "{rejects}");
    assert_eq!(classification_of(&db, &org, "z1").source, Source::Rule);

    // Training again keeps what the reviews taught.
    let trained = db.train_classifier(org.id).unwrap();
    assert_eq!(trained.reviews, 2);
    assert_eq!(trained.examples, 1 + 2 * vcci_core::classify::REVIEW_WEIGHT);
    t.assert_read_models(&org);
}

/// Reclassifying applies today's rules to stored lines the machine classified; reviewed lines
/// and closed years keep what they had.
#[test]
fn reclassifying_applies_new_rules_to_stored_lines_but_not_to_reviews_or_closed_years() {
    use vcci_store::classify::ReviewInput;
    let t = store();
    let org = t.org("acme");
    let (r, rejects) = t.import(
        &org,
        &format!(
            "{HEADER}\
             y1,2021-05-01,London Taxi Co,Taxi airport->client,100,USD,6230,Travel\n\
             k1,2022-05-01,London Taxi Co,Taxi airport->client,100,USD,6230,Travel\n\
             k2,2022-05-02,Northlight Cabs,Taxi to the station,50,USD,6230,Travel\n\
             k3,2022-05-03,Acme Rentals,Car hire 3 days,200,USD,6230,Travel\n"
        ),
    );
    assert_eq!(r.inserted, 4, "{rejects}");
    let mut db = t.store.connect().unwrap();
    let by = Actor::system("t");
    db.close_period(&org, 2021, &by).unwrap();
    // k2 was reviewed: a person accepted its code.
    db.review_classifications(
        catalog(),
        &org,
        &[ReviewInput {
            transaction_id: "k2".into(),
            ..ReviewInput::default()
        }],
        None,
        &by,
    )
    .unwrap();
    let k2 = db.get_line(org.id, "k2").unwrap().unwrap();
    // The organization decides taxis are booked as car rental (532111, 0.11 kg/USD).
    db.add_classification_rule(org.id, RuleKind::Keyword, "taxi", label(532111), &by)
        .unwrap();
    let r = db.reclassify_lines(catalog(), &org, &by).unwrap();
    // Read: y1, k1, k3 (k2 is reviewed); y1 is of a closed year; k1 changes (k3's answer
    // is the same as before).
    assert_eq!(
        (r.lines_read, r.lines_kept_closed, r.lines_changed),
        (3, 1, 1),
        "{r:?}"
    );
    let k1 = db.get_line(org.id, "k1").unwrap().unwrap();
    let c = k1.emission.classification.as_ref().unwrap();
    assert_eq!((c.label, c.source), (label(532111), Source::Rule));
    // 100 USD of 2022 × 0.11.
    close(k1.emission.co2e_kg, 11.0);
    assert_eq!(db.get_line(org.id, "k2").unwrap().unwrap(), k2);
    assert_eq!(
        classification_of(&db, &org, "y1").label,
        label(485310),
        "the closed year keeps its code"
    );
    t.assert_read_models(&org);
}
