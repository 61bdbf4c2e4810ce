//! Connections to suppliers' PACT hosts (vcci as a data recipient): the supplier, the host's
//! base URL, its auth base URL (or discovery through /.well-known/openid-configuration), the
//! client id, and the client secret sealed with the configured key (`secretbox`), never
//! returned. The last sync's outcome is kept with the connection.

use serde::Serialize;
use serde_json::{Value, json};

use crate::conn::{Db, args};
use crate::model::audit::{self, Actor, Change};
use crate::model::orgs::OrgId;
use crate::secretbox::SecretKey;
use crate::{Result, StoreError, now_rfc3339};

/// A connection as reads show it (never its secret).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Connection {
    pub id: String,
    pub supplier_id: String,
    pub base_url: String,
    /// None: discovered from the host's /.well-known/openid-configuration.
    pub auth_base_url: Option<String>,
    pub client_id: String,
    pub created_at: String,
    pub updated_at: String,
    /// The last sync: `{status, at, job_id, ...report or reason}`.
    pub last_sync: Option<Value>,
    /// A customer's host: told of the footprints we publish (PublishedEvent).
    pub notify_published: bool,
}

/// What creating a connection takes.
#[derive(Clone, Debug)]
pub struct NewConnection {
    pub supplier_id: String,
    pub base_url: String,
    pub auth_base_url: Option<String>,
    pub client_id: String,
    pub client_secret: String,
    pub notify_published: bool,
}

impl std::fmt::Display for NewConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at {}", self.supplier_id, self.base_url)
    }
}

/// An https URL without user info, query or fragment, without its trailing slash.
pub fn https_base(field: &str, url: &str) -> Result<String> {
    let bad = |m: &str| StoreError::invalid(field, format!("'{url}' {m}"));
    let u = url.trim();
    if u.len() > 2048 {
        return Err(StoreError::invalid(field, "is longer than 2048 bytes"));
    }
    let rest = u
        .strip_prefix("https://")
        .ok_or_else(|| bad("must be an https:// URL (PACT requires HTTPS)"))?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || host.contains('@') {
        return Err(bad("has no host, or has user info"));
    }
    if u.contains('?')
        || u.contains('#')
        || u.bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(bad("must have no query, fragment or spaces"));
    }
    Ok(u.trim_end_matches('/').to_owned())
}

fn aad(org: OrgId, id: &str) -> String {
    format!("vcci-pact-connection:{}:{id}", org.0)
}

const COLS: &str = "id, supplier_id, base_url, auth_base_url, client_id, created_at, updated_at, \
                    last_sync, notify_published";

fn row(r: &crate::conn::Row<'_>) -> Result<Connection> {
    Ok(Connection {
        id: r.string(0)?,
        supplier_id: r.string(1)?,
        base_url: r.string(2)?,
        auth_base_url: r.opt_string(3)?,
        client_id: r.string(4)?,
        created_at: r.string(5)?,
        updated_at: r.string(6)?,
        last_sync: r.opt_str(7)?.and_then(|s| serde_json::from_str(s).ok()),
        notify_published: r.i64(8)? != 0,
    })
}

impl Db {
    /// Registers a connection; the secret is sealed with `key`. An audit entry (never the
    /// secret).
    pub fn create_connection(
        &self,
        org: OrgId,
        c: &NewConnection,
        key: &SecretKey,
        actor: &Actor,
    ) -> Result<Connection> {
        let supplier = c.supplier_id.trim();
        if supplier.is_empty() || supplier.len() > vcci_core::line::MAX_ID {
            return Err(StoreError::invalid("supplier_id", "must be 1 to 128 bytes"));
        }
        let base = https_base("base_url", &c.base_url)?;
        let auth = c
            .auth_base_url
            .as_deref()
            .filter(|u| !u.trim().is_empty())
            .map(|u| https_base("auth_base_url", u))
            .transpose()?;
        if c.client_id.is_empty() || c.client_id.len() > 256 || c.client_id.contains(':') {
            return Err(StoreError::invalid(
                "client_id",
                "must be 1 to 256 bytes, without ':'",
            ));
        }
        if c.client_secret.is_empty() || c.client_secret.len() > 1024 {
            return Err(StoreError::invalid(
                "client_secret",
                "must be 1 to 1024 bytes",
            ));
        }
        let id = format!("conn-{}", &crate::model::published::new_uuid()?[..8]);
        let sealed = key.seal(&aad(org, &id), &c.client_secret)?;
        let now = now_rfc3339();
        let tx = self.conn.begin_immediate()?;
        tx.execute(
            "INSERT INTO pact_connections (org_id, id, supplier_id, base_url, auth_base_url, client_id,
               secret_sealed, created_at, updated_at, notify_published)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9)",
            args![org.0, &id, supplier, &base, auth.as_deref(), &c.client_id, &sealed, &now, i64::from(c.notify_published)],
        )?;
        let detail = json!({"supplier_id": supplier, "base_url": base, "auth_base_url": auth,
            "client_id": c.client_id, "notify_published": c.notify_published});
        audit::append(
            &tx,
            org,
            actor,
            Change::new("pact_connection.created", id.clone(), detail),
        )?;
        tx.commit()?;
        Ok(Connection {
            id,
            supplier_id: supplier.to_owned(),
            base_url: base,
            auth_base_url: auth,
            client_id: c.client_id.clone(),
            created_at: now.clone(),
            updated_at: now,
            last_sync: None,
            notify_published: c.notify_published,
        })
    }

    pub fn connections(&self, org: OrgId) -> Result<Vec<Connection>> {
        self.conn.query(
            &format!("SELECT {COLS} FROM pact_connections WHERE org_id = ?1 ORDER BY id"),
            args![org.0],
            row,
        )
    }

    pub fn connection(&self, org: OrgId, id: &str) -> Result<Option<Connection>> {
        self.conn.query_opt(
            &format!("SELECT {COLS} FROM pact_connections WHERE org_id = ?1 AND id = ?2"),
            args![org.0, id],
            row,
        )
    }

    /// The connection's client secret, opened with `key`.
    pub fn connection_secret(&self, org: OrgId, id: &str, key: &SecretKey) -> Result<String> {
        let sealed = self
            .conn
            .query_opt(
                "SELECT secret_sealed FROM pact_connections WHERE org_id = ?1 AND id = ?2",
                args![org.0, id],
                |r| Ok(r.blob(0)?.to_vec()),
            )?
            .ok_or_else(|| StoreError::NotFound(format!("connection '{id}'")))?;
        key.open(&aad(org, id), &sealed)
    }

    /// Records the outcome of a sync.
    pub fn record_sync(&self, org: OrgId, id: &str, outcome: &Value) -> Result<()> {
        self.conn.execute(
            "UPDATE pact_connections SET last_sync = ?3, updated_at = ?4 WHERE org_id = ?1 AND id = ?2",
            args![org.0, id, &outcome.to_string(), &now_rfc3339()],
        )?;
        Ok(())
    }

    /// Queues a notice of footprints `pf_ids` just published to every customer connection
    /// (`notify_published`): a `pact_notify` job each, its event from `source` (our
    /// `//host/3/events`). Returns the jobs.
    pub fn queue_published_notices(
        &self,
        org: OrgId,
        pf_ids: &[String],
        source: &str,
    ) -> Result<Vec<String>> {
        if pf_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut jobs = Vec::new();
        for c in self
            .connections(org)?
            .into_iter()
            .filter(|c| c.notify_published)
        {
            let params =
                json!({"connection_id": c.id, "pf_ids": pf_ids, "source": source}).to_string();
            jobs.push(self.create_job(
                org,
                crate::model::jobs::JobKind::PactNotify,
                &params,
                false,
            )?);
        }
        Ok(jobs)
    }

    /// Removes a connection (its received footprints stay); false if there is none.
    pub fn delete_connection(&self, org: OrgId, id: &str, actor: &Actor) -> Result<bool> {
        let tx = self.conn.begin_immediate()?;
        let n = tx.execute(
            "DELETE FROM pact_connections WHERE org_id = ?1 AND id = ?2",
            args![org.0, id],
        )?;
        if n > 0 {
            audit::append(
                &tx,
                org,
                actor,
                Change::new("pact_connection.deleted", id, json!({})),
            )?;
        }
        tx.commit()?;
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_https_without_query() {
        assert_eq!(
            https_base("u", "https://h.example/pact/").unwrap(),
            "https://h.example/pact"
        );
        for bad in [
            "http://h",
            "https://",
            "https://u:p@h",
            "https://h/?x=1",
            "ftp://h",
            "https://h /",
        ] {
            assert!(https_base("u", bad).is_err(), "{bad}");
        }
    }
}
