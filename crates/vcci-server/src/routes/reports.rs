//! Reports as background jobs: `POST /api/v1/reports` queues one; when it has succeeded its
//! `result.download_url` serves the file.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use vcci_core::Date;
use vcci_store::StoreError;
use vcci_store::model::jobs::{Job, JobFileWriter, JobKind};
use vcci_store::model::reports::DateRange;

use crate::jobs::Outcome;
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
        .ok(200, "application/octet-stream", "")
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
    Json(b): Json<ReportBody>,
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
    let params =
        json!({"report_type": report_type, "date_from": from, "date_to": to, "format": format})
            .to_string();
    let org = caller.org_id();
    let id = app
        .db(move |db| db.create_job(org, JobKind::Report, &params, false))
        .await?;
    app.job_queued().await;
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

fn csv_row(fields: &[String]) -> String {
    let mut s = fields
        .iter()
        .map(|f| vcci_store::model::csvout::field(f).into_owned())
        .collect::<Vec<_>>()
        .join(",");
    s.push('\n');
    s
}

/// Runs a report job (on a blocking thread): computes it and stores the file.
pub(crate) fn run_report(app: &App, job: &Job) -> Result<Outcome, StoreError> {
    let p: Value = serde_json::from_str(&job.params).unwrap_or_default();
    let date = |k: &str| p[k].as_str().and_then(|s| Date::parse(s).ok());
    let range = DateRange {
        from: date("date_from"),
        to: date("date_to"),
    };
    let csv = p["format"] == "csv";
    let org = job.org_id;
    let db = app.store().connect()?;
    let (bytes, rows): (Vec<u8>, usize) = match p["report_type"].as_str().unwrap_or("") {
        "inventory" => {
            let inv = db.inventory(org, range)?;
            let n = inv.categories.len();
            if csv {
                (inv.to_csv().into_bytes(), n)
            } else {
                (to_json(&inv)?, n)
            }
        }
        "by_category" => {
            let s = db.summary(org, range, None)?;
            let n = s.by_category.len();
            if csv {
                let mut out = String::from("category,name,co2e_kg,transaction_count,share\n");
                for c in &s.by_category {
                    out += &csv_row(&[
                        c.category.to_string(),
                        c.name.to_string(),
                        c.co2e_kg.to_string(),
                        c.transaction_count.to_string(),
                        c.share.to_string(),
                    ]);
                }
                (out.into_bytes(), n)
            } else {
                (to_json(&s)?, n)
            }
        }
        "by_month" => {
            let months = db.by_month(org, range)?;
            let n = months.len();
            if csv {
                let mut out = String::from("month,co2e_kg,transaction_count");
                for c in 1..=15 {
                    out += &format!(",category_{c}_co2e_kg");
                }
                out.push('\n');
                for m in &months {
                    let mut f = vec![
                        m.month.clone(),
                        m.co2e_kg.to_string(),
                        m.transaction_count.to_string(),
                    ];
                    for c in 1..=15 {
                        f.push(
                            m.by_category
                                .get(&c.to_string())
                                .map_or(String::from("0"), |v| v.to_string()),
                        );
                    }
                    out += &csv_row(&f);
                }
                (out.into_bytes(), n)
            } else {
                (to_json(&json!({"data": months}))?, n)
            }
        }
        _ => {
            let ranked = db.by_supplier(org, range, usize::MAX)?;
            let n = ranked.len();
            if csv {
                let mut out =
                    String::from("rank,supplier_id,name,co2e_kg,transaction_count,spend_usd\n");
                for (i, s) in ranked.iter().enumerate() {
                    out += &csv_row(&[
                        (i + 1).to_string(),
                        s.supplier_id.clone().unwrap_or_default(),
                        s.name.clone().unwrap_or_default(),
                        s.co2e_kg.to_string(),
                        s.transaction_count.to_string(),
                        s.spend_usd.to_string(),
                    ]);
                }
                (out.into_bytes(), n)
            } else {
                (to_json(&json!({"data": ranked}))?, n)
            }
        }
    };
    let mut w = JobFileWriter::create(app.store(), &job.id, "report")?;
    std::io::Write::write_all(&mut w, &bytes).map_err(io)?;
    let size = w.finish().map_err(io)?;
    db.job_progress(&job.id, &app.node, rows as i64, 0)?;
    Ok(Outcome::Succeeded(json!({
        "download_url": format!("/api/v1/reports/{}/download", job.id),
        "format": if csv { "csv" } else { "json" },
        "rows": rows,
        "bytes": size,
    })))
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::Io {
        context: "storing the report".into(),
        source: e,
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec_pretty(v)
        .map_err(|e| StoreError::internal(format!("encoding the report: {e}")))
}
