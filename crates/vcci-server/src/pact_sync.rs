//! Pulling a supplier's footprints over PACT v3 (vcci as a data recipient): a token from the
//! host's auth server (its base URL, or discovered), then `GET /3/footprints` page by page
//! through the `Link rel="next"` headers, each page stored as received
//! (`Db::receive_footprints`: checked against the data model, immutable, with lineage) in
//! its own transaction.
//!
//! - The token is cached until its `expires_in`; a 401 (TokenExpired) mid-sync renews it
//!   once and retries the page.
//! - A footprint that breaks the schema is rejected with its id and reasons; the rest of its
//!   page is kept. A page that is not JSON, or not a list response, fails the sync with the
//!   reason (pages before it are kept).
//! - A next link must stay on the host's scheme and host: the bearer token is never sent
//!   elsewhere.
//! - Re-running a sync (after a failure, or a crash midway) stores only what is new: pages
//!   already stored are recognised footprint by footprint ("unchanged"), so nothing is lost
//!   and nothing doubled.

use serde::Serialize;
use serde_json::{Value, json};
use vcci_store::model::connections::Connection;
use vcci_store::model::pcfs::{MAX_PER_RECEIPT, RejectedFootprint};
use vcci_store::{Actor, Org, Store, StoreError};

use crate::pact_client::{HttpFailure, PactHttp, host_of};

/// Footprints asked for per page.
pub const PAGE_LIMIT: usize = 100;
/// Rejected footprints listed in a report (all are counted).
const MAX_LISTED: usize = 1000;
/// The largest page body read.
const MAX_PAGE_BYTES: usize = 64 << 20;
const MAX_PAGES: u64 = 100_000;

/// What a sync did so far.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SyncReport {
    pub pages: u64,
    pub footprints: u64,
    pub received: u64,
    pub unchanged: u64,
    pub deprecated: u64,
    pub superseded: u64,
    pub rejected_count: u64,
    pub rejected: Vec<RejectedFootprint>,
    pub lines_changed: u64,
    pub token_renewals: u64,
}

/// Why a sync stopped.
#[derive(Debug)]
pub enum SyncError {
    Http(HttpFailure),
    /// The host's auth server refused the credentials, or the host refused the token.
    Auth(String),
    /// The host answered something a PACT host may not: not JSON, not a list, a link to
    /// another host.
    Host(String),
    Store(StoreError),
    /// The node is stopping (or lost the job).
    Stopped,
}

impl std::fmt::Display for SyncError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyncError::Http(e) => e.fmt(f),
            SyncError::Auth(m) | SyncError::Host(m) => f.write_str(m),
            SyncError::Store(e) => e.fmt(f),
            SyncError::Stopped => f.write_str("stopped"),
        }
    }
}

impl From<HttpFailure> for SyncError {
    fn from(e: HttpFailure) -> Self {
        SyncError::Http(e)
    }
}

/// At most 300 characters of a host's text, for a message.
fn clip(s: &str) -> String {
    let t: String = s.chars().take(300).collect();
    if t.len() < s.len() {
        format!("{t}…")
    } else {
        t
    }
}

/// The `rel="next"` target of a Link header.
pub fn next_link(h: &reqwest::header::HeaderMap) -> Option<String> {
    for v in h.get_all(reqwest::header::LINK) {
        let v = v.to_str().ok()?;
        for part in v.split(',') {
            let (target, params) = part.split_once(';').unwrap_or((part, ""));
            let target = target.trim();
            let is_next = params.split(';').any(|p| {
                let p = p.trim().to_ascii_lowercase().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            });
            if is_next && target.starts_with('<') && target.ends_with('>') {
                return Some(target[1..target.len() - 1].to_owned());
            }
        }
    }
    None
}

async fn read_body(resp: reqwest::Response, what: &str) -> Result<Vec<u8>, SyncError> {
    if resp
        .content_length()
        .is_some_and(|n| n as usize > MAX_PAGE_BYTES)
    {
        return Err(SyncError::Host(format!(
            "{what}: larger than {MAX_PAGE_BYTES} bytes"
        )));
    }
    let b = resp
        .bytes()
        .await
        .map_err(|e| SyncError::Host(format!("{what}: the body broke off: {e}")))?;
    if b.len() > MAX_PAGE_BYTES {
        return Err(SyncError::Host(format!(
            "{what}: larger than {MAX_PAGE_BYTES} bytes"
        )));
    }
    Ok(b.to_vec())
}

fn json_of(bytes: &[u8], what: &str) -> Result<Value, SyncError> {
    serde_json::from_slice(bytes).map_err(|e| {
        SyncError::Host(format!(
            "{what}: not JSON (line {}, column {}): {e}",
            e.line(),
            e.column()
        ))
    })
}

/// The host's `{code, message}` of an error answer, for a reason.
pub(crate) async fn host_error(resp: reqwest::Response) -> String {
    let status = resp.status().as_u16();
    let body = read_body(resp, "the error").await.unwrap_or_default();
    match serde_json::from_slice::<Value>(&body) {
        Ok(v) if v.get("code").is_some() || v.get("error").is_some() => format!(
            "{status} {}: {}",
            clip(v["code"].as_str().or(v["error"].as_str()).unwrap_or("")),
            clip(
                v["message"]
                    .as_str()
                    .or(v["error_description"].as_str())
                    .unwrap_or("")
            )
        ),
        _ => format!("{status}"),
    }
}

/// The JSON of an auth server's answer (`what`), or why it refused (`refused`: the error's
/// context).
async fn auth_answer(
    resp: reqwest::Response,
    refused: &str,
    what: &str,
) -> Result<Value, SyncError> {
    if !resp.status().is_success() {
        return Err(SyncError::Auth(format!(
            "{refused}: {}",
            host_error(resp).await
        )));
    }
    json_of(&read_body(resp, what).await?, what)
}

/// The token endpoint of a connection: its auth base URL's `/auth/token`, else the one the
/// host's discovery document names.
pub(crate) async fn token_url(http: &PactHttp, c: &Connection) -> Result<String, SyncError> {
    if let Some(a) = &c.auth_base_url {
        return Ok(format!("{a}/auth/token"));
    }
    let url = format!("{}/.well-known/openid-configuration", c.base_url);
    let resp = http.send(&url, |cl| cl.get(&url)).await?;
    let v = auth_answer(
        resp,
        &format!("discovery at {url}"),
        "the discovery document",
    )
    .await?;
    let t = v["token_endpoint"]
        .as_str()
        .ok_or_else(|| SyncError::Host(format!("{url} names no token_endpoint")))?;
    if !t.starts_with("https://") {
        return Err(SyncError::Host(format!(
            "the token endpoint {} is not https",
            clip(t)
        )));
    }
    Ok(t.to_owned())
}

/// A token for the connection: cached, else asked for (client credentials, HTTP Basic).
pub(crate) async fn token(
    http: &PactHttp,
    url: &str,
    client_id: &str,
    secret: &str,
    renew: bool,
) -> Result<String, SyncError> {
    if renew {
        http.forget_token(url, client_id);
    } else if let Some(t) = http.cached_token(url, client_id) {
        return Ok(t);
    }
    let resp = http
        .send(url, |cl| {
            cl.post(url)
                .basic_auth(client_id, Some(secret))
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .header(reqwest::header::ACCEPT, "application/json")
                .body("grant_type=client_credentials")
        })
        .await?;
    let v = auth_answer(
        resp,
        "the auth server refused the client credentials",
        "the token answer",
    )
    .await?;
    let t = v["access_token"]
        .as_str()
        .filter(|t| !t.is_empty() && t.len() <= 8192)
        .ok_or_else(|| SyncError::Host("the token answer has no access_token".into()))?;
    let expires = v["expires_in"].as_u64().unwrap_or(300).clamp(1, 86_400);
    http.cache_token(url, client_id, t, expires);
    Ok(t.to_owned())
}

/// Pulls every footprint of the connection's host into `org` (as the supplier's). `progress`
/// is called after each page; returning false stops the sync (`Stopped`). On failure the
/// report so far comes with the error.
pub async fn sync(
    http: &PactHttp,
    store: &Store,
    org: &Org,
    c: &Connection,
    secret: &str,
    actor: &Actor,
    mut progress: impl FnMut(&SyncReport) -> bool,
) -> Result<SyncReport, (SyncError, SyncReport)> {
    let mut report = SyncReport::default();
    match run(
        http,
        store,
        org,
        c,
        secret,
        actor,
        &mut report,
        &mut progress,
    )
    .await
    {
        Ok(()) => Ok(report),
        Err(e) => Err((e, report)),
    }
}

#[allow(clippy::too_many_arguments)]
async fn run(
    http: &PactHttp,
    store: &Store,
    org: &Org,
    c: &Connection,
    secret: &str,
    actor: &Actor,
    report: &mut SyncReport,
    progress: &mut impl FnMut(&SyncReport) -> bool,
) -> Result<(), SyncError> {
    let token_url = token_url(http, c).await?;
    let mut bearer = token(http, &token_url, &c.client_id, secret, false).await?;
    let base_host = host_of(&c.base_url);
    let mut url = format!("{}/3/footprints?limit={PAGE_LIMIT}", c.base_url);
    let source = format!("connection {}", c.id);
    loop {
        if report.pages >= MAX_PAGES {
            return Err(SyncError::Host(format!("more than {MAX_PAGES} pages")));
        }
        let page = report.pages + 1;
        let what = format!("page {page} ({url})");
        let mut renewed = false;
        let resp = loop {
            let b = bearer.clone();
            let resp = http
                .send(&url, |cl| {
                    cl.get(&url)
                        .bearer_auth(&b)
                        .header(reqwest::header::ACCEPT, "application/json")
                })
                .await?;
            if resp.status().as_u16() == 401 && !renewed {
                // TokenExpired (or a token the host no longer knows): renew once.
                renewed = true;
                report.token_renewals += 1;
                bearer = token(http, &token_url, &c.client_id, secret, true).await?;
                continue;
            }
            break resp;
        };
        let status = resp.status();
        if status.as_u16() == 401 || status.as_u16() == 403 {
            return Err(SyncError::Auth(format!(
                "{what}: {}",
                host_error(resp).await
            )));
        }
        if !status.is_success() {
            return Err(SyncError::Host(format!(
                "{what}: {}",
                host_error(resp).await
            )));
        }
        let next = next_link(resp.headers());
        let body = json_of(&read_body(resp, &what).await?, &what)?;
        let Some(data) = body.get("data").and_then(Value::as_array) else {
            return Err(SyncError::Host(format!(
                "{what}: not a PACT list response (no \"data\" array)"
            )));
        };
        for chunk in data.chunks(MAX_PER_RECEIPT) {
            let (s, o, sid, docs, src, by) = (
                store.clone(),
                org.clone(),
                c.supplier_id.clone(),
                chunk.to_vec(),
                source.clone(),
                actor.clone(),
            );
            let r = tokio::task::spawn_blocking(move || {
                s.connect()?
                    .receive_footprints(vcci_core::catalog(), &o, &sid, &docs, &src, &by)
            })
            .await
            .map_err(|e| SyncError::Host(format!("receiving a page crashed: {e}")))?
            .map_err(SyncError::Store)?;
            report.footprints += chunk.len() as u64;
            report.received += r.received.len() as u64;
            report.unchanged += r.unchanged as u64;
            report.deprecated += r.deprecated.len() as u64;
            report.superseded += r.superseded.len() as u64;
            report.lines_changed += r.lines_changed;
            report.rejected_count += r.rejected.len() as u64;
            for mut rej in r.rejected {
                if report.rejected.len() < MAX_LISTED {
                    // The index within the whole sync.
                    rej.index += (report.footprints as usize) - chunk.len();
                    report.rejected.push(rej);
                }
            }
        }
        report.pages = page;
        if !progress(report) {
            return Err(SyncError::Stopped);
        }
        match next {
            None => return Ok(()),
            Some(n) => {
                if !n.starts_with("https://") || host_of(&n) != base_host {
                    return Err(SyncError::Host(format!(
                        "{what}: the next link {} leaves the host {base_host}",
                        clip(&n)
                    )));
                }
                if n == url {
                    return Err(SyncError::Host(format!(
                        "{what}: the next link is the page itself"
                    )));
                }
                url = n;
            }
        }
    }
}

/// The outcome recorded on the connection.
pub fn outcome_json(
    job_id: Option<&str>,
    r: &Result<SyncReport, (SyncError, SyncReport)>,
) -> Value {
    let at = vcci_store::now_rfc3339();
    match r {
        Ok(rep) => json!({"status": "succeeded", "at": at, "job_id": job_id, "report": rep}),
        Err((e, rep)) => {
            json!({"status": "failed", "at": at, "job_id": job_id, "reason": e.to_string(), "report": rep})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_links() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(
            reqwest::header::LINK,
            "<https://a/3/footprints?x=1>; rel=\"prev\", <https://a/3/footprints?x=2>; rel=\"next\""
                .parse()
                .unwrap(),
        );
        assert_eq!(next_link(&h).as_deref(), Some("https://a/3/footprints?x=2"));
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(
            reqwest::header::LINK,
            "<https://a/p2>;rel=next".parse().unwrap(),
        );
        assert_eq!(next_link(&h).as_deref(), Some("https://a/p2"));
        assert_eq!(next_link(&reqwest::header::HeaderMap::new()), None);
    }
}
