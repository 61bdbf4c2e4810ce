//! Reports as background jobs: `POST /api/v1/reports` queues one; when it has succeeded its
//! `result.download_url` serves the file.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use vcci_core::Date;
use vcci_store::model::jobs::JobKind;

use crate::extract::JsonBody;
use crate::openapi::{Api, Op};
use crate::routes::imports::{accepted, job_of, not_finished};
use crate::{ApiError, App, Caller};

pub fn api(api: Api) -> Api {
    api.post(
        "/api/v1/reports",
        create_report,
        Op::new(
            "createReport",
            "reports",
            "Queue a report: the Scope 3 inventory, or totals by category, month or supplier",
        )
        .json_body("ReportRequest")
        .ok(202, "application/json", "JobAccepted")
        .errors(&[400]),
    )
    .get(
        "/api/v1/reports/{job_id}/download",
        download,
        Op::new(
            "downloadReport",
            "reports",
            "The finished report (CSV or JSON)",
        )
        .path_param("job_id", "The report job's id.")
        .ok(200, "text/csv,application/json", "")
        .errors(&[404, 409]),
    )
}

const TYPES: &[&str] = &["inventory", "by_category", "by_month", "by_supplier"];

#[derive(Debug, Deserialize)]
struct ReportBody {
    report_type: Option<String>,
    date_from: Option<String>,
    date_to: Option<String>,
    format: Option<String>,
}

fn field_error(field: &str, message: String) -> ApiError {
    ApiError::bad_request("invalid_report", format!("{field}: {message}"))
        .with_details(vec![json!({"path": field, "message": message})])
}

async fn create_report(
    State(app): State<Arc<App>>,
    caller: Caller,
    JsonBody(b): JsonBody<ReportBody>,
) -> Result<Response, ApiError> {
    let report_type = b.report_type.unwrap_or_default();
    if !TYPES.contains(&report_type.as_str()) {
        return Err(field_error(
            "report_type",
            format!(
                "'{report_type}' is not a report type; types are {}",
                TYPES.join(", ")
            ),
        ));
    }
    let format = b.format.unwrap_or_else(|| "json".into());
    if format != "csv" && format != "json" {
        return Err(field_error(
            "format",
            format!("'{format}' is not a format; formats are csv, json"),
        ));
    }
    let date = |name: &str, v: Option<String>| -> Result<Option<String>, ApiError> {
        v.filter(|s| !s.is_empty())
            .map(|s| {
                Date::parse(&s)
                    .map(|d| d.to_string())
                    .map_err(|m| field_error(name, m))
            })
            .transpose()
    };
    let (from, to) = (date("date_from", b.date_from)?, date("date_to", b.date_to)?);
    if let (Some(f), Some(t)) = (&from, &to)
        && f > t
    {
        return Err(field_error(
            "date_to",
            format!("{t} is before date_from {f}"),
        ));
    }
    let params = crate::telemetry::job_params(
        json!({"report_type": report_type, "date_from": from, "date_to": to, "format": format}),
    );
    let org = caller.org_id();
    let id = app
        .db(move |db| db.create_job(org, JobKind::Report, &params, false))
        .await?;
    app.job_queued(org, std::slice::from_ref(&id)).await;
    Ok(accepted(&id))
}

async fn download(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let job = job_of(&app, &caller, &id, JobKind::Report, "report").await?;
    if job.status != "succeeded" {
        return Err(not_finished("report", &job));
    }
    let p: Value = serde_json::from_str(&job.params).unwrap_or_default();
    let csv = p["format"] == "csv";
    let name = format!(
        "vcci-{}-{id}.{}",
        p["report_type"].as_str().unwrap_or("report"),
        if csv { "csv" } else { "json" }
    );
    Ok(crate::routes::imports::download(
        &app,
        &job,
        "report",
        if csv {
            "text/csv; charset=utf-8"
        } else {
            "application/json"
        },
        &name,
    ))
}
