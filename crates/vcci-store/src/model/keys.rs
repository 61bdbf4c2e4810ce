//! API keys: random secrets shown once, stored only as SHA-256 hashes.
//!
//! Keys carry 256 bits of randomness, so a fast hash is enough (no password stretching is
//! needed against guessing); lookups are by hash, and the stored hash is compared again in
//! constant time.

use crate::conn::args;
use sha2::{Digest, Sha256};

use crate::conn::Db;
use crate::model::audit::{self, Actor};
use crate::model::orgs::OrgId;
use crate::{Result, StoreError, now_rfc3339};

/// What a key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Viewer,
    Analyst,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Analyst => "analyst",
            Role::Viewer => "viewer",
        }
    }
    pub fn parse(s: &str) -> Result<Role> {
        match s {
            "admin" => Ok(Role::Admin),
            "analyst" => Ok(Role::Analyst),
            "viewer" => Ok(Role::Viewer),
            _ => Err(StoreError::invalid(
                "role",
                format!("'{s}' is not a role (admin, analyst or viewer)"),
            )),
        }
    }
}

/// A verified key's identity.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyIdentity {
    pub key_id: i64,
    pub org: OrgId,
    pub role: Role,
}

pub(crate) fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Db {
    /// Creates a key and returns its secret text; only its hash is stored. The creation is
    /// an entry of the organization's audit log (the key's id and role, never the key).
    pub fn create_key(&self, org: OrgId, role: Role, actor: &Actor) -> Result<String> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret)
            .map_err(|e| StoreError::internal(format!("no randomness: {e}")))?;
        let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        let key = format!("vcci_{hex}");
        let tx = self.conn.begin_immediate()?;
        let id = tx.query_one(
            "INSERT INTO api_keys (org_id, key_hash, prefix, role, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
             RETURNING id",
            args![org.0, &hash(&key)[..], &key[..13], role.as_str(), &now_rfc3339()],
            |r| r.i64(0),
        )?;
        audit::key_change(&tx, org, actor, "key.created", id, role.as_str())?;
        tx.commit()?;
        Ok(key)
    }

    /// The identity of a valid, unrevoked key.
    pub fn verify_key(&self, key: &str) -> Result<Option<KeyIdentity>> {
        let h = hash(key);
        let row = self.conn.query_opt(
            "SELECT id, org_id, role, key_hash FROM api_keys WHERE key_hash = ?1 AND revoked_at IS NULL",
            args![&h[..]],
            |r| Ok((r.i64(0)?, r.i64(1)?, r.string(2)?, r.blob(3)?.to_vec())),
        )?;
        match row {
            Some((id, org, role, stored)) if constant_time_eq(&stored, &h) => {
                Ok(Some(KeyIdentity {
                    key_id: id,
                    org: OrgId(org),
                    role: Role::parse(&role)?,
                }))
            }
            _ => Ok(None),
        }
    }

    /// Which of these key ids are revoked (or gone).
    pub fn revoked_among(&self, ids: &[i64]) -> Result<Vec<i64>> {
        let mut out = Vec::new();
        for &id in ids {
            let live = self.conn.query_opt(
                "SELECT id FROM api_keys WHERE id = ?1 AND revoked_at IS NULL",
                args![id],
                |r| r.i64(0),
            )?;
            if live.is_none() {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// Revokes a key by its secret; true if it existed. The revocation is an entry of its
    /// organization's audit log.
    pub fn revoke_key(&self, key: &str, actor: &Actor) -> Result<bool> {
        let tx = self.conn.begin_immediate()?;
        let revoked = tx.query_opt(
            "UPDATE api_keys SET revoked_at = ?1 WHERE key_hash = ?2 AND revoked_at IS NULL
             RETURNING id, org_id, role",
            args![&now_rfc3339(), &hash(key)[..]],
            |r| Ok((r.i64(0)?, OrgId(r.i64(1)?), r.string(2)?)),
        )?;
        let Some((id, org, role)) = revoked else {
            return Ok(false);
        };
        audit::key_change(&tx, org, actor, "key.revoked", id, &role)?;
        tx.commit()?;
        Ok(true)
    }
}

impl Db {
    /// The 32-byte secret `name`, created at random on first use (shared by all nodes).
    pub fn secret(&self, name: &str) -> Result<Vec<u8>> {
        let mut fresh = [0u8; 32];
        getrandom::fill(&mut fresh)
            .map_err(|e| StoreError::internal(format!("no randomness: {e}")))?;
        self.conn.execute(
            "INSERT INTO server_secrets (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
            args![name, &fresh[..]],
        )?;
        self.conn.query_one(
            "SELECT value FROM server_secrets WHERE name = ?1",
            args![name],
            |r| Ok(r.blob(0)?.to_vec()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_hashed_and_verified() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::Store::open_dir(dir.path()).unwrap();
        let db = store.connect().unwrap();
        let org = db.ensure_org("acme").unwrap();
        let key = db.create_key(org.id, Role::Analyst, &Actor::cli()).unwrap();
        assert!(key.starts_with("vcci_") && key.len() == 69);
        let stored: Vec<u8> = db
            .conn
            .query_one("SELECT key_hash FROM api_keys", &[], |r| {
                Ok(r.blob(0)?.to_vec())
            })
            .unwrap();
        assert_ne!(stored, key.as_bytes());
        let id = db.verify_key(&key).unwrap().unwrap();
        assert_eq!((id.org, id.role), (org.id, Role::Analyst));
        assert!(db.verify_key("vcci_wrong").unwrap().is_none());
        assert!(db.revoke_key(&key, &Actor::cli()).unwrap());
        assert!(db.verify_key(&key).unwrap().is_none());
    }
}
