//! PACT requests for footprints (the spec's asynchronous events): ours to a supplier
//! (`outgoing`: a `RequestCreatedEvent` sent through a connection, answered by a
//! `RequestFulfilledEvent` or `RequestRejectedEvent` at our `/3/events`), and our customers'
//! to us (`incoming`: answered to the requester's `/3/events`). Each keeps its criteria, its
//! state and the answer.

use serde::Serialize;
use serde_json::Value;

use crate::conn::{Db, args};
use crate::model::orgs::OrgId;
use crate::{Result, StoreError, now_rfc3339};

/// A request as the API lists it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PactRequest {
    /// The id of its `RequestCreatedEvent`.
    pub id: String,
    pub direction: String,
    pub connection_id: Option<String>,
    pub client_id: Option<String>,
    /// The requester's event source (incoming).
    pub source: Option<String>,
    /// The event's `data`: productId, companyId, geography, ...
    pub criteria: Value,
    /// outgoing: `pending`, `fulfilled`, `rejected`, `send_failed`; incoming: `pending`,
    /// `fulfilled`, `rejected`, `answer_failed`.
    pub status: String,
    pub answer: Option<Value>,
    pub created_at: String,
    pub updated_at: String,
}

const COLS: &str = "id, direction, connection_id, client_id, source, criteria, status, answer, created_at, updated_at";

fn row(r: &crate::conn::Row<'_>) -> Result<PactRequest> {
    Ok(PactRequest {
        id: r.string(0)?,
        direction: r.string(1)?,
        connection_id: r.opt_string(2)?,
        client_id: r.opt_string(3)?,
        source: r.opt_string(4)?,
        criteria: serde_json::from_str(r.str(5)?).unwrap_or(Value::Null),
        status: r.string(6)?,
        answer: r.opt_str(7)?.and_then(|s| serde_json::from_str(s).ok()),
        created_at: r.string(8)?,
        updated_at: r.string(9)?,
    })
}

impl Db {
    /// Records a request: `outgoing` through `connection_id`, or `incoming` from our client
    /// `client_id` with the requester's `source`.
    #[allow(clippy::too_many_arguments)]
    pub fn record_pact_request(
        &self,
        org: OrgId,
        id: &str,
        direction: &str,
        connection_id: Option<&str>,
        client_id: Option<&str>,
        source: Option<&str>,
        criteria: &Value,
        status: &str,
    ) -> Result<PactRequest> {
        if id.is_empty() || id.len() > 256 {
            return Err(StoreError::invalid(
                "id",
                "an event id must be 1 to 256 bytes",
            ));
        }
        let now = now_rfc3339();
        let n = self.conn.execute(
            "INSERT INTO pact_requests (org_id, id, direction, connection_id, client_id, source,
               criteria, status, answer, created_at, updated_at)
             VALUES (?9, ?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, ?8, ?8) ON CONFLICT DO NOTHING",
            args![
                id,
                direction,
                connection_id,
                client_id,
                source,
                &criteria.to_string(),
                status,
                &now,
                org.0
            ],
        )?;
        if n == 0 {
            return Err(StoreError::Conflict {
                message: format!("request event '{id}' was received before"),
                sqlstate: None,
            });
        }
        self.pact_request(org, id)?
            .ok_or_else(|| StoreError::internal("a request just recorded is missing"))
    }

    pub fn pact_request(&self, org: OrgId, id: &str) -> Result<Option<PactRequest>> {
        self.conn.query_opt(
            &format!("SELECT {COLS} FROM pact_requests WHERE org_id = ?1 AND id = ?2"),
            args![org.0, id],
            row,
        )
    }

    /// Sets a request's state and answer; false if it is not in `from`.
    pub fn answer_pact_request(
        &self,
        org: OrgId,
        id: &str,
        from: &str,
        status: &str,
        answer: &Value,
    ) -> Result<bool> {
        Ok(self.conn.execute(
            "UPDATE pact_requests SET status = ?4, answer = ?5, updated_at = ?6
             WHERE org_id = ?1 AND id = ?2 AND status = ?3",
            args![org.0, id, from, status, &answer.to_string(), &now_rfc3339()],
        )? == 1)
    }

    /// The organization's requests, newest first.
    pub fn pact_requests(&self, org: OrgId, limit: usize) -> Result<Vec<PactRequest>> {
        self.conn.query(
            &format!(
                "SELECT {COLS} FROM pact_requests WHERE org_id = ?1 ORDER BY created_at DESC, id LIMIT {}",
                limit.clamp(1, 1000)
            ),
            args![org.0],
            row,
        )
    }
}
