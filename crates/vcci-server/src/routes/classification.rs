//! Line classification (issue 19): the organization's rules, its review threshold, and
//! training its model from its own lines. What a line was classified as, and why, is in
//! its trail (`emission.classification`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use vcci_core::classify::{Label, RuleKind};
use vcci_store::classify::{MAX_REVIEW_ITEMS, ReviewInput, RuleFromReview};
use vcci_store::model::keys::Role;

use crate::conditional::CacheCtx;
use crate::extract::JsonBody;
use crate::list::{Query, date_range};
use crate::openapi::{Api, Op};
use crate::{ApiError, App, Caller};

pub fn api(api: Api) -> Api {
    api.get(
        "/api/v1/classification",
        get_state,
        Op::new("getClassification", "classification", "The organization's classification state: review threshold, rules, lines its model learned from, when it was trained")
            .json("ClassificationState"),
    )
    .put(
        "/api/v1/classification/settings",
        put_settings,
        Op::new("setClassificationSettings", "classification", "Set the confidence below which classified lines are flagged for review (0 to 1; default 0.5). Applies to lines classified from now on")
            .role("admin")
            .json_body("ClassificationSettings")
            .json("ClassificationState")
            .errors(&[400, 403]),
    )
    .get(
        "/api/v1/classification/rules",
        list_rules,
        Op::new("listClassificationRules", "classification", "The organization's classification rules, oldest first")
            .json("ClassificationRules"),
    )
    .post(
        "/api/v1/classification/rules",
        add_rule,
        Op::new("addClassificationRule", "classification", "Add a rule: lines without a NAICS code whose ledger account, supplier or description matches get its code, category and capital flag, before any model is asked. A rule of the same kind and pattern is replaced. Applies to lines written from now on; POST /api/v1/classification/reclassify applies it to stored lines")
            .role("analyst")
            .json_body("ClassificationRuleInput")
            .ok(201, "application/json", "ClassificationRule")
            .errors(&[400, 403]),
    )
    .delete(
        "/api/v1/classification/rules/{id}",
        delete_rule,
        Op::new("deleteClassificationRule", "classification", "Delete a rule")
            .role("analyst")
            .path_param_of("id", "integer", "The rule's id.")
            .ok(204, "", "")
            .errors(&[400, 403, 404]),
    )
    .get(
        "/api/v1/classification/coverage",
        coverage,
        Op::new("getClassificationCoverage", "classification", "How much of the spend and emissions rests on classification, by source (`given`: the line or its supplier had the code); what needs review; the suppliers without a code with the most classified spend (at most 20)")
            .query("date_from", "date", "First day (inclusive).")
            .query("date_to", "date", "Last day (inclusive).")
            .json("ClassificationCoverage")
            .errors(&[400]),
    )
    .get(
        "/api/v1/classification/review",
        review_queue,
        Op::new("listClassificationReview", "classification", "The review queue: lines whose classification was below the organization's threshold, largest spend first, each with its classification and evidence; `queue` is the size of the whole queue")
            .paged()
            .json("ClassificationReviewPage")
            .errors(&[400]),
    )
    .post(
        "/api/v1/classification/review",
        review,
        Op::new("reviewClassifications", "classification", "Accept (no code given) or correct (naics_code, category, capex) the classification of lines, all or none: each line, and every flagged line with the same description, supplier and ledger account, is calculated again with the reviewed label (source `review`), later lines with that input get it, and the organization model learns it. With `rule`, one reviewed line also becomes a rule (its supplier, its ledger account, or a keyword pattern). A line of a closed year is refused (409)")
            .role("analyst")
            .json_body("ClassificationReviewInput")
            .json("ClassificationReviewResult")
            .errors(&[400, 403, 409]),
    )
    .post(
        "/api/v1/classification/reclassify",
        reclassify,
        Op::new("reclassifyLines", "classification", "Classify again every stored line the machine classified (not reviewed ones) with today's rules, reviews and model, in one transaction with its audit entry; closed years keep their lines. Rules and training apply to lines written after them; this applies them to the lines already stored")
            .role("analyst")
            .json("ClassificationReclassified")
            .errors(&[403]),
    )
    .post(
        "/api/v1/classification/train",
        train,
        Op::new("trainClassification", "classification", "Train the organization model again from every line that carries its own NAICS code (the classifier's own answers are never learned from)")
            .role("analyst")
            .json("ClassificationTraining")
            .errors(&[403]),
    )
}

async fn get_state(State(app): State<Arc<App>>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let org = caller.org_id();
    let s = app.db(move |db| db.classification_state(org)).await?;
    Ok(Json(json!(s)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsBody {
    review_below: f64,
}

async fn put_settings(
    State(app): State<Arc<App>>,
    caller: Caller,
    JsonBody(body): JsonBody<SettingsBody>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Admin)?;
    let org = caller.org_id();
    let by = caller.actor();
    let s = app
        .db_write(org, move |db| {
            db.set_review_threshold(org, body.review_below, &by)?;
            db.classification_state(org)
        })
        .await?;
    Ok(Json(json!(s)))
}

async fn list_rules(State(app): State<Arc<App>>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let org = caller.org_id();
    let rules = app.db(move |db| db.classification_rules(org)).await?;
    Ok(Json(json!({ "rules": rules })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleBody {
    kind: String,
    pattern: String,
    naics_code: String,
    category: Option<u8>,
    #[serde(default)]
    capex: bool,
}

/// A 400 naming the body's field, as store validation errors are.
fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    let message = message.into();
    ApiError::bad_request("invalid", message.clone())
        .with_details(vec![json!({"path": field, "message": message})])
}

/// The label a rule body gives, or the error naming the field.
fn rule_label(b: &RuleBody) -> Result<(RuleKind, Label), ApiError> {
    let kind = RuleKind::parse(&b.kind).ok_or_else(|| {
        invalid(
            "kind",
            format!(
                "'{}' is not a rule kind (gl_account, supplier, keyword)",
                b.kind
            ),
        )
    })?;
    let label = vcci_core::classify::rule_label(&b.naics_code, b.category, b.capex)
        .map_err(|(field, m)| invalid(field, m))?;
    Ok((kind, label))
}

async fn add_rule(
    State(app): State<Arc<App>>,
    caller: Caller,
    JsonBody(body): JsonBody<RuleBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require(Role::Analyst)?;
    let (kind, label) = rule_label(&body)?;
    let org = caller.org_id();
    let by = caller.actor();
    let rule = app
        .db_write(org, move |db| {
            db.add_classification_rule(org, kind, &body.pattern, label, &by)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(json!(rule))))
}

async fn delete_rule(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Role::Analyst)?;
    let n: i64 = id.parse().map_err(|_| {
        ApiError::bad_request(
            "invalid_id",
            format!("'{id}' is not a rule id (an integer)"),
        )
    })?;
    let org = caller.org_id();
    let by = caller.actor();
    if app
        .db_write(org, move |db| db.delete_classification_rule(org, n, &by))
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("classification rule {n}")))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CoverageQuery {
    date_from: Option<String>,
    date_to: Option<String>,
}

async fn coverage(
    State(app): State<Arc<App>>,
    caller: Caller,
    ctx: CacheCtx,
    Query(q): Query<CoverageQuery>,
) -> Response {
    let org = caller.org_id();
    // Answers depend only on the lines: cached, retired by the next write like the summary.
    app.cached(org, ctx, async {
        let range = date_range(q.date_from.as_deref(), q.date_to.as_deref())?;
        app.db(move |db| db.classification_coverage(org, range))
            .await
    })
    .await
}

const REVIEW_CURSOR: &str = "classification_review";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReviewQuery {
    limit: Option<String>,
    cursor: Option<String>,
}

async fn review_queue(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(q): Query<ReviewQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = crate::list::limit(q.limit.as_deref())?;
    let org = caller.org_id();
    let after =
        crate::list::cursor_parts(app.cursors(), q.cursor.as_deref(), REVIEW_CURSOR, org.0, 2)?
            .map(|p| Ok::<_, ApiError>((crate::list::cursor_number::<f64>(&p[0])?, p[1].clone())))
            .transpose()?;
    let (rows, size) = app
        .db(move |db| {
            Ok((
                db.review_queue(org, after, limit + 1)?,
                db.review_queue_size(org)?,
            ))
        })
        .await?;
    let page = crate::list::paged(
        rows,
        limit,
        |i| {
            app.cursors().sign(
                REVIEW_CURSOR,
                org.0,
                &[&i.spend_usd.to_string(), &i.line.transaction_id],
            )
        },
        Ok,
    )?;
    let mut out = json!(page);
    out["queue"] = json!(size);
    Ok(Json(out))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReviewBody {
    items: Vec<ReviewItemBody>,
    rule: Option<ReviewRuleBody>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReviewItemBody {
    transaction_id: String,
    naics_code: Option<String>,
    category: Option<u8>,
    capex: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReviewRuleBody {
    kind: String,
    pattern: Option<String>,
}

/// The store's verdicts from a review body, or the error naming the field.
fn review_inputs(b: &ReviewBody) -> Result<Vec<ReviewInput>, ApiError> {
    if b.items.len() > MAX_REVIEW_ITEMS {
        return Err(invalid(
            "items",
            format!(
                "{} lines; a review names at most {MAX_REVIEW_ITEMS}",
                b.items.len()
            ),
        ));
    }
    b.items
        .iter()
        .enumerate()
        .map(|(i, it)| {
            let naics = match it.naics_code.as_deref() {
                None => None,
                Some(code) => Some(
                    code.trim()
                        .parse::<u32>()
                        .ok()
                        .and_then(vcci_core::Naics::from_code)
                        .ok_or_else(|| {
                            invalid(
                                &format!("items[{i}].naics_code"),
                                format!("'{code}' is not a 6-digit NAICS code"),
                            )
                        })?,
                ),
            };
            let category = match it.category {
                None => None,
                Some(c) => Some(vcci_core::Category::new(c).ok_or_else(|| {
                    invalid(
                        &format!("items[{i}].category"),
                        format!("{c} is not a Scope 3 category (1 to 15)"),
                    )
                })?),
            };
            Ok(ReviewInput {
                transaction_id: it.transaction_id.clone(),
                naics,
                category,
                capex: it.capex,
            })
        })
        .collect()
}

async fn review(
    State(app): State<Arc<App>>,
    caller: Caller,
    JsonBody(body): JsonBody<ReviewBody>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Analyst)?;
    let items = review_inputs(&body)?;
    let rule = match &body.rule {
        None => None,
        Some(r) => Some(RuleFromReview {
            kind: RuleKind::parse(&r.kind).ok_or_else(|| {
                invalid(
                    "rule.kind",
                    format!(
                        "'{}' is not a rule kind (gl_account, supplier, keyword)",
                        r.kind
                    ),
                )
            })?,
            pattern: r.pattern.clone(),
        }),
    };
    let org = caller.org.clone();
    let id = caller.org_id();
    let by = caller.actor();
    let r = app
        .db_write(id, move |db| {
            db.review_classifications(vcci_core::catalog(), &org, &items, rule, &by)
        })
        .await?;
    Ok(Json(json!(r)))
}

async fn reclassify(State(app): State<Arc<App>>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Analyst)?;
    let org = caller.org.clone();
    let by = caller.actor();
    let r = app
        .db_write(org.id, move |db| {
            db.reclassify_lines(vcci_core::catalog(), &org, &by)
        })
        .await?;
    Ok(Json(json!(r)))
}

async fn train(State(app): State<Arc<App>>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Analyst)?;
    let org = caller.org_id();
    let r = app
        .db_write(org, move |db| db.train_classifier(org))
        .await?;
    Ok(Json(json!(r)))
}
