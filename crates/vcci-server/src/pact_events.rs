//! PACT events (CloudEvents 1.0, structured JSON): sending ours to a host's `/3/events`
//! through a connection (its token, renewed once on 401), and the events vcci sends: a
//! `RequestCreatedEvent` asking a supplier for footprints, a `RequestFulfilledEvent` or
//! `RequestRejectedEvent` answering a customer.

use serde_json::{Value, json};
use vcci_store::model::connections::Connection;

use crate::pact_client::PactHttp;
use crate::pact_sync::{SyncError, host_error, token, token_url};

pub const REQUEST_CREATED: &str = "org.wbcsd.pact.ProductFootprint.RequestCreatedEvent.3";
pub const REQUEST_FULFILLED: &str = "org.wbcsd.pact.ProductFootprint.RequestFulfilledEvent.3";
pub const REQUEST_REJECTED: &str = "org.wbcsd.pact.ProductFootprint.RequestRejectedEvent.3";
pub const PUBLISHED: &str = "org.wbcsd.pact.ProductFootprint.PublishedEvent.3";

/// A CloudEvent of `kind` from `source` (`//host/3/events`) with `data`.
pub fn event(kind: &str, id: &str, source: &str, data: Value) -> Value {
    json!({
        "type": kind,
        "specversion": "1.0",
        "id": id,
        "source": source,
        "time": vcci_store::now_rfc3339(),
        "data": data,
    })
}

/// Our event source: `//host/3/events` of a base URL.
pub fn source_of(base_url: &str) -> String {
    format!("//{}/3/events", crate::pact_client::host_of(base_url))
}

/// Posts `event` to the connection's host's `/3/events` (retries, backoff and the breaker
/// of the client; the token renewed once on 401).
pub async fn send(
    http: &PactHttp,
    c: &Connection,
    secret: &str,
    event: &Value,
) -> Result<(), SyncError> {
    let token_url = token_url(http, c).await?;
    let mut bearer = token(http, &token_url, &c.client_id, secret, false).await?;
    let url = format!("{}/3/events", c.base_url);
    let body = event.to_string();
    let mut renewed = false;
    loop {
        let b = bearer.clone();
        let resp = http
            .send(&url, |cl| {
                cl.post(&url)
                    .bearer_auth(&b)
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/cloudevents+json",
                    )
                    .body(body.clone())
            })
            .await?;
        let status = resp.status();
        if status.as_u16() == 401 && !renewed {
            renewed = true;
            bearer = token(http, &token_url, &c.client_id, secret, true).await?;
            continue;
        }
        if status.is_success() {
            return Ok(());
        }
        let why = host_error(resp).await;
        return Err(if status.as_u16() == 401 || status.as_u16() == 403 {
            SyncError::Auth(format!("{url}: {why}"))
        } else {
            SyncError::Host(format!("{url} refused the event: {why}"))
        });
    }
}
