use super::*;

fn n(code: u32) -> Naics {
    Naics::from_code(code).unwrap()
}

fn input<'a>(description: &'a str, supplier: &'a str, gl: &'a str) -> Input<'a> {
    Input {
        description: Some(description),
        supplier_name: (!supplier.is_empty()).then_some(supplier),
        gl_account_name: (!gl.is_empty()).then_some(gl),
        ..Input::default()
    }
}

fn classifier<'a>(rules: &'a Rules, model: Option<&'a OrgModel>) -> Classifier<'a> {
    Classifier {
        reviews: None,
        rules,
        model,
        builtin: Builtin::get(),
        review_below: DEFAULT_REVIEW_BELOW,
    }
}

fn classified(o: Outcome) -> Classification {
    match o {
        Outcome::Classified(c) => c,
        o => panic!("not classified: {o:?}"),
    }
}

#[test]
fn the_shipped_vocabulary_parses_over_both_epa_sets() {
    let v = include_str!("../../data/classify/vocabulary.txt");
    let cat = crate::factors::catalog();
    Builtin::parse(v, &cat.epa_1_3_0).unwrap();
    Builtin::parse(v, &cat.epa_1_2).unwrap();
}

#[test]
fn vocabulary_errors_name_the_line() {
    let cat = crate::factors::catalog();
    let e = Builtin::parse("# x\n999999: foo\n", &cat.epa_1_3_0).unwrap_err();
    assert!(e.contains("line 2") && e.contains("999999"), "{e}");
    let e = Builtin::parse("511210/16: foo\n", &cat.epa_1_3_0).unwrap_err();
    assert!(e.contains("line 1") && e.contains("16"), "{e}");
    let e = Builtin::parse("511210: foo=x\n", &cat.epa_1_3_0).unwrap_err();
    assert!(e.contains("weight of 'foo'"), "{e}");
}

#[test]
fn builtin_reads_descriptions_accounts_and_suppliers() {
    let rules = Rules::default();
    let c = classifier(&rules, None);
    let cases = [
        ("Adobe CC annual renewal", "", "", 511210, 1),
        (
            "Taxi airport->client",
            "",
            "Travel & Entertainment",
            485310,
            6,
        ),
        ("Room 2 nights, Berlin", "Marriott Hotels", "", 721110, 6),
        ("Inbound sea freight 2x40HC", "", "", 483111, 4),
        ("Skip hire - general waste", "", "", 562111, 5),
        ("Office rent Q3", "", "", 531120, 8),
        (
            "Dell Latitude laptops x12",
            "",
            "Fixed assets - IT",
            334111,
            2,
        ),
        ("Diesel for generators", "", "", 324110, 3),
        ("Monthly season ticket loan", "", "", 485111, 7),
    ];
    for (d, s, g, code, cat) in cases {
        let r = classified(c.classify(&input(d, s, g)));
        assert_eq!(
            (r.label.naics.code(), r.label.category.number()),
            (code, cat),
            "{d}: {r:?}"
        );
        assert_eq!(r.source, Source::BuiltinModel);
        let Evidence::Terms { terms } = &r.evidence else {
            panic!("{r:?}")
        };
        assert!(!terms.is_empty(), "{d}: no evidence");
    }
    // The capital purchase is flagged as one.
    let r = classified(c.classify(&input("Dell Latitude laptops x12", "", "Fixed assets - IT")));
    assert!(r.label.capex);
}

#[test]
fn nothing_to_go_on_gives_the_fallback_for_review() {
    let rules = Rules::default();
    let c = classifier(&rules, None);
    let r = classified(c.classify(&input("INV-2231 / 7781", "", "")));
    assert_eq!(r.label.naics.code(), FALLBACK_NAICS);
    assert_eq!(r.confidence, 0.0);
    assert!(r.needs_review);
}

#[test]
fn electricity_is_not_scope_3_spend() {
    let rules = Rules::default();
    let c = classifier(&rules, None);
    match c.classify(&input(
        "Electricity bill March",
        "Octopus Energy",
        "Utilities",
    )) {
        Outcome::Electricity { terms } => {
            assert!(
                terms.iter().any(|t| t.term.contains("electricity")),
                "{terms:?}"
            )
        }
        o => panic!("{o:?}"),
    }
    // Gas and water are spend like any other (category 3 and 1).
    let r = classified(c.classify(&input("Natural gas supply", "", "Utilities")));
    assert_eq!(r.label.naics.code(), 221210);
}

#[test]
fn rules_beat_the_models() {
    let rule = |id, kind, pattern: &str, code| Rule {
        id,
        kind,
        pattern: pattern.into(),
        label: Label::of(n(code)),
    };
    let rules = Rules::new(vec![
        rule(1, RuleKind::GlAccount, "6200", 481111),
        rule(2, RuleKind::GlAccount, "62*", 561510),
        rule(3, RuleKind::Supplier, "ACME, Inc.", 332710),
        rule(4, RuleKind::Keyword, "car hire", 532112),
    ]);
    // The org model is sure of something else for all of these.
    let mut model = OrgModel::new();
    for _ in 0..5 {
        model.learn(
            &Features::of(&Input {
                description: Some("car hire"),
                supplier_name: Some("Acme Inc"),
                gl_account: Some("6200"),
                ..Input::default()
            }),
            Label::of(n(541611)),
        );
    }
    let c = classifier(&rules, Some(&model));
    let with = |d: &'static str, s: Option<&'static str>, gl: Option<&'static str>| {
        classified(c.classify(&Input {
            description: Some(d),
            supplier_name: s,
            gl_account: gl,
            ..Input::default()
        }))
    };
    // The keyword rule first, whatever the supplier and account.
    let r = with("Car hire Heathrow", Some("Acme Inc"), Some("6200"));
    assert_eq!((r.source, r.label.naics.code()), (Source::Rule, 532112));
    assert_eq!(r.confidence, 1.0);
    assert!(!r.needs_review);
    assert_eq!(
        r.evidence,
        Evidence::Rule {
            rule_id: 4,
            rule_kind: RuleKind::Keyword,
            pattern: "car hire".into()
        }
    );
    // The supplier rule matches the name however it is typed.
    let r = with("widgets", Some("ACME INCORPORATED"), Some("6200"));
    assert_eq!(r.label.naics.code(), 332710);
    // An exact account beats a prefix; a prefix matches the rest.
    assert_eq!(with("x", None, Some("6200")).label.naics.code(), 481111);
    assert_eq!(with("x", None, Some("6210")).label.naics.code(), 561510);
    assert_ne!(with("x", None, Some("6300")).source, Source::Rule);
}

#[test]
fn supplier_history_decides_for_known_suppliers() {
    let rules = Rules::default();
    let mut model = OrgModel::new();
    let f = |d: &'static str| {
        Features::of(&Input {
            description: Some(d),
            supplier_name: Some("Nordwind Logistik GmbH"),
            ..Input::default()
        })
    };
    // Two lines of the supplier carried road freight.
    model.learn(&f("Tour 4471 Hamburg"), Label::of(n(484121)));
    model.learn(&f("Tour 4502 Bremen"), Label::of(n(484121)));
    let c = classifier(&rules, Some(&model));
    // A line whose description says nothing the built-in model knows (and one that says
    // "office supplies") is the supplier's usual.
    for d in ["Sammelrechnung KW 12", "office supplies"] {
        let r = classified(c.classify(&Input {
            description: Some(d),
            supplier_name: Some("NORDWIND LOGISTIK"),
            ..Input::default()
        }));
        assert_eq!(r.source, Source::SupplierHistory, "{d}");
        assert_eq!(r.label.naics.code(), 484121);
        assert!((r.confidence - 2.0 / 3.0).abs() < 1e-3);
        assert_eq!(
            r.evidence,
            Evidence::SupplierHistory {
                supplier: "nordwind logistik".into(),
                lines: 2,
                share: 1.0
            }
        );
    }
    // A supplier selling several things (no clear majority) leaves the line to the models.
    model.learn(&f("Kartons"), Label::of(n(322211)));
    model.learn(&f("Paletten"), Label::of(n(321920)));
    let c = classifier(&rules, Some(&model));
    let r = classified(c.classify(&Input {
        description: Some("office supplies"),
        supplier_name: Some("Nordwind Logistik"),
        ..Input::default()
    }));
    assert_ne!(r.source, Source::SupplierHistory);
}

#[test]
fn a_correction_changes_the_next_classification_of_similar_lines() {
    let rules = Rules::default();
    let mut model = OrgModel::new();
    let line = |d: &'static str| {
        Features::of(&Input {
            description: Some(d),
            gl_account: Some("7410"),
            gl_account_name: Some("Lab consumables"),
            ..Input::default()
        })
    };
    // Before: the built-in model reads "lab consumables".
    let before =
        classified(classifier(&rules, Some(&model)).classify_features(&line("Pipette tips 200ul")));
    assert_eq!(before.label.naics.code(), 423490);
    // The analyst corrects a line of the account to "other basic organic chemicals" ...
    let corrected = Label::of(n(325199));
    model.unlearn(&line("Pipette tips 1000ul"), before.label);
    model.learn(&line("Pipette tips 1000ul"), corrected);
    model.learn(&line("Reagent kit"), corrected);
    // ... and the next similar line follows.
    let after =
        classified(classifier(&rules, Some(&model)).classify_features(&line("Pipette tips 10ul")));
    assert_eq!(after.label, corrected);
    assert_eq!(after.source, Source::OrganizationModel);
    let Evidence::Terms { terms } = &after.evidence else {
        panic!()
    };
    assert!(
        terms
            .iter()
            .any(|t| t.term == "7410" && t.field == TextField::GlAccount)
    );
}

#[test]
fn unlearning_restores_the_counts() {
    let mut model = OrgModel::new();
    let f = Features::of(&input("Courier to Leeds", "DHL", ""));
    model.learn(&f, Label::of(n(492110)));
    let once = model.clone();
    model.learn(&f, Label::of(n(484121)));
    model.unlearn(&f, Label::of(n(484121)));
    assert_eq!(model.predict(&f), once.predict(&f));
    assert_eq!(model.examples(), 1);
}

#[test]
fn features_hash_ignores_case_spacing_and_plurals() {
    let a = Features::of(&input("Uber  trip", "Uber B.V.", ""));
    let b = Features::of(&input("UBER trips", "UBER BV", ""));
    assert_eq!(a.hash64(), b.hash64());
    let c = Features::of(&input("Uber trip", "Lyft", ""));
    assert_ne!(a.hash64(), c.hash64());
}

#[test]
fn rule_patterns_are_checked() {
    assert!(check_pattern(RuleKind::GlAccount, "6*00").is_err());
    assert!(check_pattern(RuleKind::GlAccount, "*").is_err());
    assert!(check_pattern(RuleKind::GlAccount, "62*").is_ok());
    assert!(check_pattern(RuleKind::Supplier, "Ltd.").is_err());
    assert!(check_pattern(RuleKind::Keyword, "the of").is_err());
    assert!(check_pattern(RuleKind::Keyword, "").is_err());
    assert!(check_pattern(RuleKind::Keyword, "car\u{0}hire").is_err());
}

#[test]
fn a_review_decides_its_input_before_rules_and_counts_double() {
    let rules = Rules::new(vec![Rule {
        id: 1,
        kind: RuleKind::Keyword,
        pattern: "figma".into(),
        label: Label::of(n(541511)),
    }]);
    let reviewed_input = Input {
        description: Some("Figma  seats, annual"),
        supplier_name: Some("Figma, Inc."),
        ..Input::default()
    };
    let corrected = Label::of(n(511210));
    let mut reviews = Reviews::default();
    reviews.insert(
        Features::of(&reviewed_input).hash64(),
        Reviewed {
            label: corrected,
            evidence: Evidence::Review {
                verdict: Verdict::Corrected,
                transaction_id: "T-1".into(),
                reviewed_by: "key 3 (analyst)".into(),
                reviewed_at: "2026-12-05T10:00:00Z".into(),
                previous: None,
            },
        },
    );
    let mut model = OrgModel::new();
    model.learn_weighted(&Features::of(&reviewed_input), corrected, REVIEW_WEIGHT);
    let c = Classifier {
        reviews: Some(&reviews),
        ..classifier(&rules, Some(&model))
    };
    // The same input, typed differently: the review, sure.
    let same = classified(c.classify(&Input {
        description: Some("FIGMA seats annual"),
        supplier_name: Some("Figma Inc"),
        ..Input::default()
    }));
    assert_eq!(
        (same.label, same.source, same.confidence),
        (corrected, Source::Review, 1.0)
    );
    assert!(!same.needs_review);
    // Another line: the rule still decides it ...
    let other = classified(c.classify(&Input {
        description: Some("Figma plugin"),
        ..Input::default()
    }));
    assert_eq!(other.source, Source::Rule);
    // ... and the supplier's history, one reviewed line counted twice, is sure (2/3).
    let history = model.history("figma").unwrap();
    assert_eq!(history.lines, REVIEW_WEIGHT);
    assert!((history.confidence - 2.0 / 3.0).abs() < 1e-6 && history.confidence >= DECIDES);
    model.unlearn_weighted(&Features::of(&reviewed_input), corrected, REVIEW_WEIGHT);
    assert_eq!(model, {
        let mut m = OrgModel::new();
        m.learn(&Features::of(&reviewed_input), corrected);
        m.unlearn(&Features::of(&reviewed_input), corrected);
        m
    });
}
