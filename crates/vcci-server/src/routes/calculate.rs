//! `POST /api/v1/emissions/calculate`: calculate up to 1,000 lines without storing them.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use vcci_core::line::LineError;
use vcci_core::{Line, catalog};

use crate::error::line_error_json;
use crate::extract::JsonBody;
use crate::input::{parse_line, resolve_suppliers, supplier_keys};
use crate::openapi::{Api, Op};
use crate::{ApiError, App, Caller};

pub const MAX_CALCULATE_LINES: usize = 1000;

pub fn api(api: Api) -> Api {
    api.post(
        "/api/v1/emissions/calculate",
        calculate,
        Op::new(
            "calculate",
            "emissions",
            "Calculate up to 1,000 lines without storing them",
        )
        .json_body("Calculate")
        .json("CalculateResult")
        .errors(&[400, 413]),
    )
}

#[derive(Debug, Deserialize)]
struct CalculateBody {
    lines: Vec<Value>,
}

async fn calculate(
    State(app): State<Arc<App>>,
    caller: Caller,
    JsonBody(body): JsonBody<CalculateBody>,
) -> Result<Json<Value>, ApiError> {
    if body.lines.len() > MAX_CALCULATE_LINES {
        return Err(ApiError::bad_request(
            "too_many_lines",
            format!(
                "at most {MAX_CALCULATE_LINES} lines per request; got {}",
                body.lines.len()
            ),
        ));
    }
    let mut parsed: Vec<Result<Line, Vec<LineError>>> =
        body.lines.iter().map(|v| parse_line(v, false)).collect();
    // Only the suppliers these lines name (measured: loading every supplier profile of the
    // demo organization took most of a 100-line request).
    let keys = supplier_keys(parsed.iter().filter_map(|l| l.as_ref().ok()));
    // The organization's classifier only when a line may need it (no code, no activity).
    let may_classify = parsed
        .iter()
        .filter_map(|l| l.as_ref().ok())
        .any(vcci_store::classify::may_need_classification);
    let org = caller.org_id();
    let (profiles, classifier) = if keys.is_empty() && !may_classify {
        (Default::default(), None)
    } else {
        let (lines, profiles, classifier) = app
            .db(move |db| {
                let mut profiles = if keys.is_empty() {
                    Default::default()
                } else {
                    db.supplier_profiles_for(org, &keys)?
                };
                // A supplier named as the store does not know it: resolved as a write
                // would resolve it (nothing is recorded).
                resolve_suppliers(db, org, &mut parsed, &mut profiles)?;
                let classifier = if may_classify {
                    Some(db.load_classifier(org)?)
                } else {
                    None
                };
                Ok::<_, vcci_store::StoreError>((parsed, profiles, classifier))
            })
            .await?;
        parsed = lines;
        (profiles, classifier)
    };
    let cfg = caller.org.calc_config();
    let mut total = 0.0;
    let results: Vec<Value> = parsed
        .into_iter()
        .enumerate()
        .map(|(i, line)| {
            let prefix = format!("lines[{i}]");
            let mut line = match line {
                Ok(l) => l,
                Err(errs) => return json!({"index": i, "error": line_error_json(&prefix, &errs)}),
            };
            let profile = line.supplier_key().and_then(|k| profiles.get(k));
            if let Some(c) = &classifier
                && let Err(e) = vcci_store::classify::classify_line(c, &mut line, profile)
            {
                return json!({"index": i, "error": line_error_json(&prefix, &[e])});
            }
            match vcci_core::calculate(catalog(), cfg, &line, profile) {
                Ok(e) => {
                    total += e.co2e_kg;
                    json!({"index": i, "emission": e.record_with(catalog(), &line, profile)})
                }
                Err(e) => json!({"index": i, "error": line_error_json(&prefix, &[e])}),
            }
        })
        .collect();
    Ok(Json(json!({"results": results, "total_co2e_kg": total})))
}
