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
        Op::new("addClassificationRule", "classification", "Add a rule: lines without a NAICS code whose ledger account, supplier or description matches get its code, category and capital flag, before any model is asked. A rule of the same kind and pattern is replaced. Applies to lines written from now on")
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

async fn train(State(app): State<Arc<App>>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Analyst)?;
    let org = caller.org_id();
    let r = app
        .db_write(org, move |db| db.train_classifier(org))
        .await?;
    Ok(Json(json!(r)))
}
