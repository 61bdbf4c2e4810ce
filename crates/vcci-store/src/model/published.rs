//! The organization's own product footprints, published to its customers over PACT v3
//! (`/3/footprints`), and the PACT API clients those customers use.
//!
//! Published footprints are immutable but for their status: publishing a new version of a
//! product gives it a new id that lists the old one in `precedingPfIds`, and the old one
//! becomes Deprecated (its served document says so). A client sees only its own
//! organization's footprints; its secret is stored as a SHA-256 hash.

use serde::Serialize;
use serde_json::{Value, json};
use vcci_core::pact::{self, PactError};

use super::keys::{constant_time_eq, hash};
use crate::conn::{Db, args};
use crate::model::audit::{self, Actor, Change};
use crate::model::orgs::OrgId;
use crate::model::pcfs::RejectedFootprint;
use crate::{Result, StoreError, now_rfc3339};

/// The spec version vcci writes on footprints published without one.
pub const SPEC_VERSION: &str = "3.0.3";

/// What publishing did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Publication {
    /// Ids newly published.
    pub published: Vec<String>,
    /// Footprints published before with the same content.
    pub unchanged: usize,
    /// Ids now Deprecated: superseded by a new version.
    pub deprecated: Vec<String>,
    pub rejected: Vec<RejectedFootprint>,
}

/// A published footprint as the organization's own API lists it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PublishedFootprint {
    pub id: String,
    pub status: String,
    pub created: String,
    pub product_ids: Vec<String>,
    pub preceding_pf_ids: Vec<String>,
    pub published_at: String,
    pub updated_at: String,
}

/// A PACT API client (never its secret).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PactClient {
    pub client_id: String,
    pub name: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// A new client with its secret, shown once.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NewPactClient {
    #[serde(flatten)]
    pub client: PactClient,
    pub client_secret: String,
}

fn random_hex(n: usize) -> Result<String> {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).map_err(|e| StoreError::internal(format!("no randomness: {e}")))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// A random (version 4) UUID.
pub fn new_uuid() -> Result<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| StoreError::internal(format!("no randomness: {e}")))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn list_of(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

/// The product ids of a document, sorted, to tell versions of one product apart.
fn products_key(v: &Value) -> Vec<String> {
    let mut p: Vec<String> = v["productIds"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    p.sort();
    p
}

impl Db {
    /// Publishes the organization's own footprints. A document may leave out `id`,
    /// `created`, `specVersion` and `status` (vcci writes a new UUID, now, 3.0.3 and Active);
    /// everything else is checked against the v3 data model, and a broken footprint is
    /// rejected with every reason while the rest is published. A footprint whose products are
    /// those of an Active published one, and that names no predecessor, is its new version:
    /// it lists the old one in `precedingPfIds` and the old one becomes Deprecated. The same
    /// id with other content is rejected (footprints are immutable).
    pub fn publish_footprints(
        &mut self,
        org: OrgId,
        docs: &[Value],
        actor: &Actor,
    ) -> Result<Publication> {
        crate::model::pcfs::check_batch(docs)?;
        let now = now_rfc3339();
        let mut out = Publication::default();
        let tx = self.conn.begin_immediate()?;
        let active = tx.query(
            "SELECT id, document FROM published_pcfs WHERE org_id = ?1 AND status = 'Active' ORDER BY id",
            args![org.0],
            |r| Ok((r.string(0)?, r.string(1)?)),
        )?;
        let mut active: Vec<(String, Vec<String>)> = active
            .into_iter()
            .map(|(id, d)| {
                let v: Value = serde_json::from_str(&d).unwrap_or_default();
                (id, products_key(&v))
            })
            .collect();
        for (index, d) in docs.iter().enumerate() {
            let Some(o) = d.as_object() else {
                out.rejected.push(RejectedFootprint {
                    index,
                    id: None,
                    errors: vec![PactError {
                        path: String::new(),
                        message: "a ProductFootprint must be a JSON object".into(),
                    }],
                });
                continue;
            };
            let mut doc = Value::Object(o.clone());
            let given_id = o.contains_key("id");
            if !given_id {
                doc["id"] = json!(new_uuid()?);
            }
            if !o.contains_key("created") {
                doc["created"] = json!(now);
            }
            if !o.contains_key("specVersion") {
                doc["specVersion"] = json!(SPEC_VERSION);
            }
            if !o.contains_key("status") {
                doc["status"] = json!("Active");
            }
            // A new version of an Active footprint of the same products.
            let key = products_key(&doc);
            let predecessors: Vec<String> = if o.contains_key("precedingPfIds") {
                Vec::new()
            } else {
                active
                    .iter()
                    .filter(|(id, p)| *p == key && Some(id.as_str()) != doc["id"].as_str())
                    .map(|(id, _)| id.clone())
                    .collect()
            };
            let f = match pact::parse(&doc) {
                Ok(f) => f,
                Err(errors) => {
                    out.rejected.push(RejectedFootprint {
                        index,
                        id: pact::id_of(&doc).map(str::to_owned),
                        errors,
                    });
                    continue;
                }
            };
            let id = f.pcf.id.clone();
            let old = tx.query_opt(
                "SELECT document FROM published_pcfs WHERE org_id = ?1 AND id = ?2",
                args![org.0, &id],
                |r| r.string(0),
            )?;
            if let Some(old) = old {
                let old: Value = serde_json::from_str(&old)
                    .map_err(|e| StoreError::corrupt(format!("a published footprint: {e}")))?;
                if given_id && old == doc {
                    out.unchanged += 1;
                } else {
                    out.rejected.push(RejectedFootprint {
                        index,
                        id: Some(id.clone()),
                        errors: vec![PactError {
                            path: "/id".into(),
                            message: format!(
                                "footprint {id} is published with other content; published \
                                 footprints are immutable: publish the new version without an id \
                                 (or with a new one)"
                            ),
                        }],
                    });
                }
                continue;
            }
            if !predecessors.is_empty() {
                doc["precedingPfIds"] = json!(predecessors);
            }
            let preceding: Vec<String> = doc["precedingPfIds"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_ascii_lowercase))
                        .collect()
                })
                .unwrap_or_default();
            tx.execute(
                "INSERT INTO published_pcfs (org_id, id, status, created, product_ids, preceding,
                   document, published_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
                args![
                    org.0,
                    &id,
                    f.pcf.status.as_str(),
                    &pact::format_datetime(f.pcf.created),
                    &serde_json::to_string(&f.pcf.product_ids).unwrap_or_default(),
                    &serde_json::to_string(&preceding).unwrap_or_default(),
                    &serde_json::to_string(&doc).unwrap_or_default(),
                    &now
                ],
            )?;
            for pre in preceding.iter().filter(|p| **p != id) {
                if self::deprecate(&tx, org, pre, &now)? {
                    out.deprecated.push(pre.clone());
                    active.retain(|(a, _)| a != pre);
                }
            }
            if f.pcf.status == pact::Status::Active {
                active.push((id.clone(), key));
            }
            out.published.push(id);
        }
        if !out.published.is_empty() {
            let detail = json!({
                "published": out.published,
                "deprecated": out.deprecated,
                "rejected": out.rejected.len(),
            });
            audit::append(&tx, org, actor, Change::new("pcfs.published", "", detail))?;
        }
        tx.commit()?;
        Ok(out)
    }

    /// The organization's published footprints after id `after`, by id, at most `limit`,
    /// with their documents as served.
    pub fn published_documents(
        &self,
        org: OrgId,
        after: &str,
        limit: usize,
    ) -> Result<Vec<(String, Value)>> {
        let rows = self.conn.query(
            &format!(
                "SELECT id, document FROM published_pcfs WHERE org_id = ?1 AND id > ?2 ORDER BY id LIMIT {}",
                limit.clamp(1, 10_000)
            ),
            args![org.0, after],
            |r| Ok((r.string(0)?, r.string(1)?)),
        )?;
        rows.into_iter()
            .map(|(id, d)| {
                let v = serde_json::from_str(&d)
                    .map_err(|e| StoreError::corrupt(format!("a published footprint: {e}")))?;
                Ok((id, v))
            })
            .collect()
    }

    /// One published footprint's document.
    pub fn published_document(&self, org: OrgId, id: &str) -> Result<Option<Value>> {
        let d = self.conn.query_opt(
            "SELECT document FROM published_pcfs WHERE org_id = ?1 AND id = ?2",
            args![org.0, &id.to_ascii_lowercase()],
            |r| r.string(0),
        )?;
        d.map(|d| {
            serde_json::from_str(&d)
                .map_err(|e| StoreError::corrupt(format!("a published footprint: {e}")))
        })
        .transpose()
    }

    /// The organization's published footprints as its own API lists them.
    pub fn published_footprints(
        &self,
        org: OrgId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<PublishedFootprint>> {
        self.conn.query(
            &format!(
                "SELECT id, status, created, product_ids, preceding, published_at, updated_at
                 FROM published_pcfs WHERE org_id = ?1 AND id > ?2 ORDER BY id LIMIT {}",
                limit.min(10_000)
            ),
            args![org.0, after.unwrap_or("")],
            |r| {
                Ok(PublishedFootprint {
                    id: r.string(0)?,
                    status: r.string(1)?,
                    created: r.string(2)?,
                    product_ids: list_of(r.str(3)?),
                    preceding_pf_ids: list_of(r.str(4)?),
                    published_at: r.string(5)?,
                    updated_at: r.string(6)?,
                })
            },
        )
    }

    /// Creates a PACT API client for a customer of `org`; the secret is returned once and
    /// only its hash kept. An entry of the audit log (the client id, never the secret).
    pub fn create_pact_client(
        &self,
        org: OrgId,
        name: &str,
        actor: &Actor,
    ) -> Result<NewPactClient> {
        let name = name.trim();
        if name.is_empty() || name.len() > 256 {
            return Err(StoreError::invalid("name", "must be 1 to 256 bytes"));
        }
        let client_id = format!("vcci-pact-{}", random_hex(12)?);
        let secret = random_hex(32)?;
        let now = now_rfc3339();
        let tx = self.conn.begin_immediate()?;
        tx.execute(
            "INSERT INTO pact_clients (client_id, org_id, name, secret_hash, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            args![&client_id, org.0, name, &hex(&hash(&secret)), &now],
        )?;
        audit::append(
            &tx,
            org,
            actor,
            Change::new(
                "pact_client.created",
                client_id.clone(),
                json!({"name": name}),
            ),
        )?;
        tx.commit()?;
        Ok(NewPactClient {
            client: PactClient {
                client_id,
                name: name.to_owned(),
                created_at: now,
                revoked_at: None,
            },
            client_secret: secret,
        })
    }

    /// The organization of a client whose secret matches, if it is not revoked.
    pub fn verify_pact_client(&self, client_id: &str, secret: &str) -> Result<Option<OrgId>> {
        let row = self.conn.query_opt(
            "SELECT org_id, secret_hash FROM pact_clients WHERE client_id = ?1 AND revoked_at IS NULL",
            args![client_id],
            |r| Ok((r.i64(0)?, r.string(1)?)),
        )?;
        Ok(match row {
            Some((org, h)) if constant_time_eq(h.as_bytes(), hex(&hash(secret)).as_bytes()) => {
                Some(OrgId(org))
            }
            _ => None,
        })
    }

    /// Whether a client exists, belongs to `org` and is not revoked (a token's check).
    pub fn pact_client_active(&self, org: OrgId, client_id: &str) -> Result<bool> {
        Ok(self
            .conn
            .query_opt(
                "SELECT 1 FROM pact_clients WHERE client_id = ?1 AND org_id = ?2 AND revoked_at IS NULL",
                args![client_id, org.0],
                |r| r.i64(0),
            )?
            .is_some())
    }

    pub fn pact_clients(&self, org: OrgId) -> Result<Vec<PactClient>> {
        self.conn.query(
            "SELECT client_id, name, created_at, revoked_at FROM pact_clients WHERE org_id = ?1 ORDER BY created_at, client_id",
            args![org.0],
            |r| {
                Ok(PactClient {
                    client_id: r.string(0)?,
                    name: r.string(1)?,
                    created_at: r.string(2)?,
                    revoked_at: r.opt_string(3)?,
                })
            },
        )
    }

    /// Revokes a client of `org`; false if it has none such (or it was revoked).
    pub fn revoke_pact_client(&self, org: OrgId, client_id: &str, actor: &Actor) -> Result<bool> {
        let tx = self.conn.begin_immediate()?;
        let n = tx.execute(
            "UPDATE pact_clients SET revoked_at = ?3 WHERE client_id = ?1 AND org_id = ?2 AND revoked_at IS NULL",
            args![client_id, org.0, &now_rfc3339()],
        )?;
        if n > 0 {
            audit::append(
                &tx,
                org,
                actor,
                Change::new("pact_client.revoked", client_id, json!({})),
            )?;
        }
        tx.commit()?;
        Ok(n > 0)
    }
}

/// Marks a published footprint Deprecated (its document too); true if it was Active.
fn deprecate(tx: &crate::conn::Conn, org: OrgId, id: &str, now: &str) -> Result<bool> {
    let doc = tx.query_opt(
        "SELECT document FROM published_pcfs WHERE org_id = ?1 AND id = ?2 AND status = 'Active'",
        args![org.0, id],
        |r| r.string(0),
    )?;
    let Some(doc) = doc else { return Ok(false) };
    let mut v: Value = serde_json::from_str(&doc)
        .map_err(|e| StoreError::corrupt(format!("a published footprint: {e}")))?;
    v["status"] = json!("Deprecated");
    tx.execute(
        "UPDATE published_pcfs SET status = 'Deprecated', document = ?3, updated_at = ?4
         WHERE org_id = ?1 AND id = ?2",
        args![
            org.0,
            id,
            &serde_json::to_string(&v).unwrap_or_default(),
            now
        ],
    )?;
    Ok(true)
}
