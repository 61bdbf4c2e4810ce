//! Classification over HTTP (issue 19): rules managed by role, lines written and calculated
//! without a NAICS code classified with their trail, Scope 2 electricity refused by path,
//! and the cache's counters in /metrics.

mod common;

use axum::http::StatusCode;
use common::{call, env, get};

/// `call` on the router of `e` (shorter lines).
async fn at(
    r: &axum::Router,
    method: &str,
    path: &str,
    key: Option<&String>,
    body: Option<serde_json::Value>,
) -> (StatusCode, serde_json::Value) {
    call(r, method, path, key.map(String::as_str), body).await
}
use serde_json::json;

#[tokio::test]
async fn rules_and_classified_lines_over_http() {
    let e = env();
    let r = &e.router;
    // A viewer may read the state and the rules but not add one.
    let (s, v) = at(r, "GET", "/api/v1/classification", Some(&e.viewer), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["rules"], 0);
    assert_eq!(v["review_below"], 0.5);
    let rule = json!({"kind": "keyword", "pattern": "car hire", "naics_code": "532111"});
    let (s, _) = at(
        r,
        "POST",
        "/api/v1/classification/rules",
        Some(&e.viewer),
        Some(rule.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Bad input names the field.
    let bad = json!({"kind": "colour", "pattern": "x", "naics_code": "532111"});
    let (s, v) = at(
        r,
        "POST",
        "/api/v1/classification/rules",
        Some(&e.analyst),
        Some(bad),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["details"][0]["path"], "kind", "{v}");
    let bad = json!({"kind": "keyword", "pattern": "widgets", "naics_code": "999999"});
    let (s, v) = at(
        r,
        "POST",
        "/api/v1/classification/rules",
        Some(&e.analyst),
        Some(bad),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["details"][0]["path"], "naics_code", "{v}");
    // An analyst adds one.
    let (s, added) = at(
        r,
        "POST",
        "/api/v1/classification/rules",
        Some(&e.analyst),
        Some(rule),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{added}");
    assert_eq!(added["category"], 6);
    let (_, list) = at(
        r,
        "GET",
        "/api/v1/classification/rules",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(list["rules"][0]["pattern"], "car hire");
    // Another organization sees none of it.
    let (_, other) = at(
        r,
        "GET",
        "/api/v1/classification/rules",
        Some(&e.other),
        None,
    )
    .await;
    assert_eq!(other["rules"], json!([]));

    // Lines without a code: classified by the rule, by the built-in model; electricity
    // refused with its JSON path.
    let lines = json!({"transactions": [
        {"transaction_id": "x1", "date": "2022-06-01", "amount": 300, "currency": "USD",
         "description": "Car hire Glasgow 3 days", "gl_account": "6230", "gl_account_name": "Travel"},
        {"transaction_id": "x2", "date": "2022-06-02", "amount": 100, "currency": "USD",
         "description": "Courier to Leeds", "supplier_name": "DHL Express"},
        {"transaction_id": "x3", "date": "2022-06-03", "amount": 900, "currency": "USD",
         "description": "Electricity bill June", "supplier_name": "Octopus Energy"},
    ]});
    let (s, v) = at(
        r,
        "POST",
        "/api/v1/transactions",
        Some(&e.analyst),
        Some(lines),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["accepted"], 2, "{v}");
    let rej = &v["rejected"][0];
    assert_eq!(rej["index"], 2);
    assert_eq!(
        rej["error"]["details"][0]["path"], "transactions[2].description",
        "{v}"
    );
    assert_eq!(rej["error"]["code"], "purchased_energy", "{v}");

    let (_, x1) = at(r, "GET", "/api/v1/transactions/x1", Some(&e.viewer), None).await;
    let c = &x1["emission"]["classification"];
    assert_eq!(c["source"], "rule", "{x1}");
    assert_eq!(c["naics"], "532111");
    assert_eq!(c["evidence"]["kind"], "rule");
    assert_eq!(c["evidence"]["pattern"], "car hire");
    assert_eq!(x1["emission"]["category_source"], "classification");
    assert_eq!(x1["gl_account_name"], "Travel");
    let (_, x2) = at(r, "GET", "/api/v1/transactions/x2", Some(&e.viewer), None).await;
    assert_eq!(
        x2["emission"]["classification"]["source"], "builtin_model",
        "{x2}"
    );
    assert_eq!(x2["emission"]["classification"]["naics"], "492110");
    assert_eq!(x2["emission"]["category"], 4);

    // The calculate endpoint classifies the same way, storing nothing.
    let calc = json!({"lines": [{"date": "2022-06-01", "amount": 100, "currency": "USD",
        "description": "Hotel 2 nights", "supplier_name": "Premier Inn"}]});
    let (s, v) = at(
        r,
        "POST",
        "/api/v1/emissions/calculate",
        Some(&e.viewer),
        Some(calc),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["results"][0]["emission"]["classification"]["naics"], "721110",
        "{v}"
    );
    // 100 USD of 2022 × 0.145 kg/USD (EPA v1.3.0, 721110).
    let kg = v["total_co2e_kg"].as_f64().unwrap();
    assert!((kg - 14.5).abs() < 1e-9, "{kg}");

    // Training reads the organization's coded lines (the seed's two).
    let (s, t) = at(
        r,
        "POST",
        "/api/v1/classification/train",
        Some(&e.analyst),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(t["examples"], 2, "{t}");
    // The threshold is the admin's.
    let set = json!({"review_below": 0.7});
    let (s, _) = at(
        r,
        "PUT",
        "/api/v1/classification/settings",
        Some(&e.analyst),
        Some(set.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = at(
        r,
        "PUT",
        "/api/v1/classification/settings",
        Some(&e.admin),
        Some(set),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["review_below"], 0.7);
    let (s, _) = at(
        r,
        "PUT",
        "/api/v1/classification/settings",
        Some(&e.admin),
        Some(json!({"review_below": 2})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // Deleting: 204, then 404; another organization cannot delete it.
    let path = format!("/api/v1/classification/rules/{}", added["id"]);
    let (s, _) = at(r, "DELETE", &path, Some(&e.other), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = at(r, "DELETE", &path, Some(&e.analyst), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = at(r, "DELETE", &path, Some(&e.analyst), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Coverage: the seed's two coded lines are `given`; x1 by the rule, x2 by the model.
    let (s, cov) = at(
        r,
        "GET",
        "/api/v1/classification/coverage",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{cov}");
    assert_eq!(cov["lines"], 4, "{cov}");
    let by: Vec<(String, u64)> = cov["by_source"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["source"].as_str().unwrap().to_owned(),
                r["lines"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(by[0], ("given".into(), 2));
    assert!(by.contains(&("rule".into(), 1)) && by.contains(&("builtin_model".into(), 1)));
    let (s, _) = at(
        r,
        "GET",
        "/api/v1/classification/coverage?date_from=x",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // The counters are in /metrics.
    let (s, _, m) = get(r, "/metrics", None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        m.contains("vcci_classification_cache_total{result=\"miss\"}"),
        "{m}"
    );
    assert!(
        m.contains("vcci_classified_lines_total{source=\"rule\"}"),
        "{m}"
    );
    assert!(
        m.contains("vcci_classification_purchased_energy_total"),
        "{m}"
    );
}

#[tokio::test]
async fn the_review_queue_over_http() {
    let e = env();
    let r = &e.router;
    let lines = json!({"transactions": [
        {"transaction_id": "q1", "date": "2022-06-01", "amount": 500, "currency": "USD", "description": "INV-7781", "supplier_name": "Mystery Ltd"},
        {"transaction_id": "q2", "date": "2022-06-02", "amount": 300, "currency": "USD", "description": "INV-0042", "supplier_name": "Zeta GmbH"},
        {"transaction_id": "q3", "date": "2022-06-03", "amount": 100, "currency": "USD", "description": "REF 99", "supplier_name": "Omega SA"},
        {"transaction_id": "c1", "date": "2022-06-04", "amount": 100, "currency": "USD", "description": "Laptops", "naics_code": "334111"},
    ]});
    let (s, v) = at(
        r,
        "POST",
        "/api/v1/transactions",
        Some(&e.analyst),
        Some(lines),
    )
    .await;
    assert_eq!((s, &v["accepted"]), (StatusCode::OK, &json!(4)), "{v}");
    // The queue, largest spend first, two per page; a viewer may read it.
    let (s, p1) = at(
        r,
        "GET",
        "/api/v1/classification/review?limit=2",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{p1}");
    assert_eq!(p1["queue"]["lines"], 3);
    assert_eq!(p1["queue"]["spend_usd"], 900.0);
    let ids = |p: &serde_json::Value| -> Vec<String> {
        p["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["transaction_id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&p1), ["q1", "q2"]);
    assert_eq!(p1["data"][0]["spend_usd"], 500.0);
    assert_eq!(
        p1["data"][0]["emission"]["classification"]["needs_review"],
        true
    );
    let cursor = p1["page_info"]["end_cursor"].as_str().unwrap();
    let (_, p2) = at(
        r,
        "GET",
        &format!("/api/v1/classification/review?limit=2&cursor={cursor}"),
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(ids(&p2), ["q3"]);
    assert_eq!(p2["page_info"]["has_next_page"], false);
    // Another organization's key cannot use the cursor, and sees an empty queue.
    let (s, _) = at(
        r,
        "GET",
        &format!("/api/v1/classification/review?cursor={cursor}"),
        Some(&e.other),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (_, o) = at(
        r,
        "GET",
        "/api/v1/classification/review",
        Some(&e.other),
        None,
    )
    .await;
    assert_eq!(o["queue"]["lines"], 0);

    // Reviews: a viewer may not; errors name the item's field.
    let analyst = e.analyst.clone();
    let review = |b: serde_json::Value| {
        let key = analyst.clone();
        async move {
            call(
                r,
                "POST",
                "/api/v1/classification/review",
                Some(&key),
                Some(b),
            )
            .await
        }
    };
    let (s, _) = at(
        r,
        "POST",
        "/api/v1/classification/review",
        Some(&e.viewer),
        Some(json!({"items": [{"transaction_id": "q1"}]})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = review(
        json!({"items": [{"transaction_id": "q1"}, {"transaction_id": "q2", "naics_code": "12"}]}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        v["error"]["details"][0]["path"], "items[1].naics_code",
        "{v}"
    );
    let (s, v) = review(json!({"items": [{"transaction_id": "c1"}]})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        v["error"]["details"][0]["path"], "items[0].transaction_id",
        "{v}"
    );
    let (s, v) =
        review(json!({"items": [{"transaction_id": "q1"}], "rule": {"kind": "keyword"}})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["details"][0]["path"], "rule.pattern", "{v}");
    // A correction that makes a supplier rule; an acceptance.
    let (s, v) = review(json!({"items": [{"transaction_id": "q1", "naics_code": "541511"}], "rule": {"kind": "supplier"}})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["reviewed"][0]["verdict"], "corrected");
    assert_eq!(v["rule"]["pattern"], "Mystery Ltd");
    assert_eq!(v["queue"]["lines"], 2);
    let (s, v) = review(json!({"items": [{"transaction_id": "q2"}]})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (&v["reviewed"][0]["verdict"], &v["rule"]),
        (&json!("accepted"), &json!(null))
    );
    let (_, q1) = at(r, "GET", "/api/v1/transactions/q1", Some(&e.viewer), None).await;
    let c = &q1["emission"]["classification"];
    assert_eq!(
        (&c["source"], &c["naics"], &c["evidence"]["kind"]),
        (&json!("review"), &json!("541511"), &json!("review")),
        "{q1}"
    );
    assert_eq!(c["evidence"]["previous"]["source"], "builtin_model");
    // 500 USD of 2022 × 0.084 kg/USD (541511 with margins).
    assert!(
        (q1["emission"]["co2e_kg"].as_f64().unwrap() - 42.0).abs() < 1e-9,
        "{q1}"
    );
    let (_, p) = at(
        r,
        "GET",
        "/api/v1/classification/review",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(ids(&p), ["q3"]);
    // Reclassifying reads the machine-classified lines only (q3); a viewer may not.
    let (s, _) = at(
        r,
        "POST",
        "/api/v1/classification/reclassify",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, rc) = at(
        r,
        "POST",
        "/api/v1/classification/reclassify",
        Some(&e.analyst),
        None,
    )
    .await;
    assert_eq!(
        (s, &rc["lines_read"], &rc["lines_changed"]),
        (StatusCode::OK, &json!(1), &json!(0)),
        "{rc}"
    );
    // Coverage shows the reviewed spend.
    let (_, cov) = at(
        r,
        "GET",
        "/api/v1/classification/coverage",
        Some(&e.viewer),
        None,
    )
    .await;
    let row = cov["by_source"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["source"] == "review")
        .unwrap()
        .clone();
    assert_eq!(
        (&row["lines"], &row["spend_usd"]),
        (&json!(2), &json!(800.0)),
        "{cov}"
    );
    assert_eq!(cov["needs_review"]["lines"], 1);
}

#[tokio::test]
async fn supplier_resolution_over_http() {
    let e = env();
    let r = &e.router;
    let (s, v) = at(r, "POST", "/api/v1/suppliers", Some(&e.analyst), Some(json!({"suppliers": [
        {"supplier_id": "SUP-1", "name": "Acme Inc", "intensity_kg_per_usd": 0.5, "intensity_year": 2022},
    ]}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let lines = json!({"transactions": [
        {"transaction_id": "n1", "date": "2022-06-01", "amount": 100, "currency": "USD", "supplier_name": "ACME, Inc.", "naics_code": "334111"},
        {"transaction_id": "n2", "date": "2022-06-02", "amount": 100, "currency": "USD", "supplier_name": "Acma Ltd", "naics_code": "334111"},
    ]});
    let (s, v) = at(
        r,
        "POST",
        "/api/v1/transactions",
        Some(&e.analyst),
        Some(lines),
    )
    .await;
    assert_eq!((s, &v["accepted"]), (StatusCode::OK, &json!(2)), "{v}");
    // n1 belongs to SUP-1 (and takes its intensity: 100 × 0.5); n2 is a new supplier.
    let (_, n1) = at(r, "GET", "/api/v1/transactions/n1", Some(&e.viewer), None).await;
    assert_eq!(
        (&n1["supplier_id"], &n1["supplier_as_named"]),
        (&json!("SUP-1"), &json!("ACME, Inc.")),
        "{n1}"
    );
    assert!(
        (n1["emission"]["co2e_kg"].as_f64().unwrap() - 50.0).abs() < 1e-9,
        "{n1}"
    );
    // The calculate endpoint resolves names the same way (storing nothing): 10 × 0.5.
    let calc = json!({"lines": [{"date": "2022-07-01", "amount": 10, "currency": "USD",
        "supplier_name": "ACME INCORPORATED", "naics_code": "334111"}]});
    let (s, c) = at(
        r,
        "POST",
        "/api/v1/emissions/calculate",
        Some(&e.viewer),
        Some(calc),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert!(
        (c["total_co2e_kg"].as_f64().unwrap() - 5.0).abs() < 1e-9,
        "{c}"
    );
    let (_, a) = at(
        r,
        "GET",
        "/api/v1/supplier-aliases?supplier_id=SUP-1",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(a["aliases"][0]["alias"], "acme", "{a}");
    // The close name is a pair to review; another organization sees none of it.
    let (s, m) = at(r, "GET", "/api/v1/supplier-matches", Some(&e.viewer), None).await;
    assert_eq!(s, StatusCode::OK, "{m}");
    assert_eq!(
        (
            &m["matches"][0]["supplier_id"],
            &m["matches"][0]["candidate_id"]
        ),
        (&json!("Acma Ltd"), &json!("SUP-1")),
        "{m}"
    );
    let pair = m["matches"][0]["id"].as_i64().unwrap();
    let (_, o) = at(
        r,
        "GET",
        "/api/v1/supplier-matches?status=all",
        Some(&e.other),
        None,
    )
    .await;
    assert_eq!(o["matches"], json!([]));
    let (s, _) = at(
        r,
        "POST",
        &format!("/api/v1/supplier-matches/{pair}/merge"),
        Some(&e.other),
        None,
    )
    .await;
    assert!(
        s == StatusCode::NOT_FOUND || s == StatusCode::FORBIDDEN,
        "{s}"
    );
    let (s, v) = at(
        r,
        "GET",
        "/api/v1/supplier-matches?status=maybe",
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    // A viewer may not merge; an analyst merges the pair: n2 is SUP-1's, at its intensity.
    let (s, _) = at(
        r,
        "POST",
        &format!("/api/v1/supplier-matches/{pair}/merge"),
        Some(&e.viewer),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, mg) = at(
        r,
        "POST",
        &format!("/api/v1/supplier-matches/{pair}/merge"),
        Some(&e.analyst),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{mg}");
    assert_eq!(
        (&mg["from"], &mg["into"], &mg["lines_moved"]),
        (&json!("Acma Ltd"), &json!("SUP-1"), &json!(1))
    );
    let (_, n2) = at(r, "GET", "/api/v1/transactions/n2", Some(&e.viewer), None).await;
    assert_eq!(n2["supplier_id"], "SUP-1");
    assert!(
        (n2["emission"]["co2e_kg"].as_f64().unwrap() - 50.0).abs() < 1e-9,
        "{n2}"
    );
    let (s, _) = at(
        r,
        "POST",
        &format!("/api/v1/supplier-matches/{pair}/merge"),
        Some(&e.analyst),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    // Undone: n2 is Acma Ltd's again, by its code: 100 × 0.058 (334111 with margins).
    let id = mg["merge_id"].as_i64().unwrap();
    let (s, u) = at(
        r,
        "POST",
        &format!("/api/v1/supplier-merges/{id}/undo"),
        Some(&e.analyst),
        None,
    )
    .await;
    assert_eq!((s, &u["lines_moved"]), (StatusCode::OK, &json!(1)), "{u}");
    let (_, n2) = at(r, "GET", "/api/v1/transactions/n2", Some(&e.viewer), None).await;
    assert_eq!(n2["supplier_id"], "Acma Ltd");
    assert!(
        (n2["emission"]["co2e_kg"].as_f64().unwrap() - 5.8).abs() < 1e-9,
        "{n2}"
    );
    let (_, ms) = at(r, "GET", "/api/v1/supplier-merges", Some(&e.viewer), None).await;
    assert!(ms["merges"][0]["unmerged_at"].is_string(), "{ms}");
    // Merging by ids; bad bodies and unknown suppliers are named.
    let (s, v) = at(
        r,
        "POST",
        "/api/v1/supplier-merges",
        Some(&e.analyst),
        Some(json!({"from": "nope", "into": "SUP-1"})),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let (s, v) = at(
        r,
        "POST",
        "/api/v1/supplier-merges",
        Some(&e.analyst),
        Some(json!({"from": "", "into": "SUP-1"})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = at(
        r,
        "POST",
        "/api/v1/supplier-merges",
        Some(&e.analyst),
        Some(json!({"from": "Acma Ltd", "into": "SUP-1"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}
