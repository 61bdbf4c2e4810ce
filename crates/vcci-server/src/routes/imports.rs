//! CSV imports as background jobs, and job status.
//!
//! `POST /api/v1/imports` streams the request body into the database in 1 MiB chunks (never
//! buffering the file), then queues an import job; any node's worker runs it. The job's
//! status, progress, outcome and rejected lines are at `GET /api/v1/jobs/{job_id}`.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use vcci_store::model::jobs::{CHUNK_BYTES, Job, JobKind};
use vcci_store::model::keys::Role;

use crate::job_view::job_json;
use crate::list::{Query, param_error};
use crate::openapi::{Api, Op};
use crate::{ApiError, App, Caller};

pub fn api(api: Api) -> Api {
    api.post(
        "/api/v1/imports",
        create_import,
        Op::new(
            "createImport",
            "jobs",
            "Import a CSV of lines (or suppliers) as a background job; the body is streamed",
        )
        .role("analyst")
        .query("kind", "string", "transactions (default) or suppliers.")
        .raw_body("text/csv")
        .ok(202, "application/json", "JobAccepted")
        .errors(&[400, 403, 413, 415]),
    )
    .get(
        "/api/v1/jobs/{job_id}",
        get_job,
        Op::new(
            "getJob",
            "jobs",
            "A background job's status, progress, result and errors",
        )
        .path_param("job_id", "The job's id.")
        .json("Job")
        .errors(&[404]),
    )
    .get(
        "/api/v1/jobs/{job_id}/rejects.csv",
        get_rejects,
        Op::new(
            "getImportRejects",
            "jobs",
            "Every rejected line of an import: line,column,error,original",
        )
        .path_param("job_id", "The job's id.")
        .ok(200, "text/csv", "")
        .errors(&[404, 409]),
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportQuery {
    kind: Option<String>,
}

/// 202 with the job's id and where to watch it.
pub fn accepted(job_id: &str) -> Response {
    let url = format!("/api/v1/jobs/{job_id}");
    let mut r = (
        StatusCode::ACCEPTED,
        Json(json!({"job_id": job_id, "status_url": url})),
    )
        .into_response();
    r.headers_mut()
        .insert(header::LOCATION, crate::error::header(&url));
    r
}

async fn create_import(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(q): Query<ImportQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    caller.require(Role::Analyst)?;
    let kind = match q.kind.as_deref().filter(|k| !k.is_empty()) {
        None | Some("transactions") => "transactions",
        Some("suppliers") => "suppliers",
        Some(k) => {
            return Err(param_error(
                "kind",
                format!("'{k}' is not an import kind; kinds are transactions, suppliers"),
            ));
        }
    };
    let ty = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = ty
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if !matches!(media.as_str(), "text/csv" | "application/csv") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("an import body must be Content-Type: text/csv; got '{ty}'"),
        ));
    }
    let org = caller.org_id();
    let params = crate::telemetry::job_params(json!({"kind": kind, "actor": caller.actor()}));
    let id = app
        .db(move |db| db.create_job(org, JobKind::Import, &params, true))
        .await?;
    match upload(&app, &id, body).await {
        Ok(total) => {
            let jid = id.clone();
            app.db(move |db| db.queue_upload(&jid, total as i64))
                .await?;
            app.job_queued(org, std::slice::from_ref(&id)).await;
            Ok(accepted(&id))
        }
        Err(e) => {
            let jid = id.clone();
            if let Err(d) = app.db(move |db| db.delete_job(&jid)).await {
                tracing::error!(job = %id, error = %d.message, "removing a failed upload");
            }
            Err(e)
        }
    }
}

/// Streams `body` into the job's `input` file; returns its size.
async fn upload(app: &App, id: &str, body: Body) -> Result<u64, ApiError> {
    let max = app.config.max_import_bytes;
    let mut stream = body.into_data_stream();
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK_BYTES);
    let mut seq = 0i64;
    let mut total = 0u64;
    loop {
        let next = stream.next().await;
        let done = next.is_none();
        if let Some(chunk) = next {
            let chunk = chunk.map_err(|e| {
                ApiError::bad_request("invalid_body", format!("reading the upload failed: {e}"))
            })?;
            total += chunk.len() as u64;
            if total > max {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("an import may be at most {max} bytes"),
                ));
            }
            buf.extend_from_slice(&chunk);
        }
        while buf.len() >= CHUNK_BYTES || (done && !buf.is_empty()) {
            let n = buf.len().min(CHUNK_BYTES);
            let part: Vec<u8> = buf.drain(..n).collect();
            let (jid, s) = (id.to_owned(), seq);
            app.db(move |db| db.put_job_chunk(&jid, "input", s, &part))
                .await?;
            seq += 1;
        }
        if done {
            return Ok(total);
        }
    }
}

/// Job ids are 32 hex digits; anything else is not found without asking the database.
pub fn check_job_id(id: &str) -> Result<(), ApiError> {
    if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(ApiError::not_found(format!("job '{id}'")))
    }
}

async fn get_job(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    check_job_id(&id)?;
    let org = caller.org_id();
    let shown = id.clone();
    let job = app
        .db(move |db| db.get_job(org, &id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("job '{shown}'")))?;
    Ok(Json(job_json(&job)))
}

/// A stored job file as a response body, read chunk by chunk.
pub fn file_body(app: &Arc<App>, job: String, name: &'static str) -> Body {
    let app = Arc::clone(app);
    let stream = futures_util::stream::unfold(Some(0i64), move |seq| {
        let app = Arc::clone(&app);
        let job = job.clone();
        async move {
            let s = seq?;
            match app.db(move |db| db.job_chunk(&job, name, s)).await {
                Ok(Some(chunk)) => Some((Ok(axum::body::Bytes::from(chunk)), Some(s + 1))),
                Ok(None) => None,
                Err(e) => Some((Err(std::io::Error::other(e.message)), None)),
            }
        }
    });
    // Fused: a compressing layer polls again after the end, which `unfold` forbids (it
    // panicked, and the client saw a broken chunked response).
    Body::from_stream(futures_util::StreamExt::fuse(stream))
}

/// The caller's job `id` of `kind` (`what` names it in the 404).
pub async fn job_of(
    app: &App,
    caller: &Caller,
    id: &str,
    kind: JobKind,
    what: &str,
) -> Result<Job, ApiError> {
    check_job_id(id)?;
    let org = caller.org_id();
    let jid = id.to_owned();
    app.db(move |db| db.get_job(org, &jid))
        .await?
        .filter(|j| j.kind == kind)
        .ok_or_else(|| ApiError::not_found(format!("{what} '{id}'")))
}

/// 409 `job_not_finished`.
pub fn not_finished(what: &str, job: &Job) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "job_not_finished",
        format!("{what} '{}' is {}", job.id, job.status),
    )
}

/// File `name` of a job as a download named `filename`.
pub fn download(
    app: &Arc<App>,
    job: &Job,
    name: &'static str,
    content_type: &'static str,
    filename: &str,
) -> Response {
    let mut r = file_body(app, job.id.clone(), name).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_DISPOSITION,
        crate::error::header(&format!("attachment; filename=\"{filename}\"")),
    );
    r
}

async fn get_rejects(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let job = job_of(&app, &caller, &id, JobKind::Import, "import job").await?;
    if job.status != "succeeded" && job.status != "failed" {
        return Err(not_finished("job", &job));
    }
    Ok(download(
        &app,
        &job,
        "rejects",
        "text/csv; charset=utf-8",
        &format!("rejects-{id}.csv"),
    ))
}
