//! API-key authentication: who a caller is (`Caller`), and the node's memory of verified
//! keys (`KeyCache`: by the SHA-256 of the presented key, for a minute; revocations clear
//! it). The key is checked against the stored hash by `App::authenticate`; the extractor
//! that reads `Authorization: Bearer <key>` is in `extract.rs`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use vcci_store::model::keys::Role;
use vcci_store::{Actor, Org, OrgId};

use crate::error::ApiError;

/// The authenticated caller: one organization and one role.
#[derive(Debug, Clone)]
pub struct Caller {
    pub org: Org,
    pub role: Role,
    /// The API key's id (never its secret).
    pub key_id: i64,
    /// This request's id (`X-Request-Id`), recorded with the changes it makes.
    pub request_id: Option<String>,
}

impl Caller {
    /// 403 unless the caller's role is at least `role` (viewer < analyst < admin).
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(ApiError::forbidden(role.as_str()))
        }
    }

    pub fn org_id(&self) -> OrgId {
        self.org.id
    }

    /// Who, as the audit log records a change: the key's id and role, and the request.
    pub fn actor(&self) -> Actor {
        Actor::key(self.key_id, self.role.as_str(), self.request_id.clone())
    }
}

/// The caller of one of the node's own cache-warming requests (`warm.rs`), as a request
/// extension: only code in this process can set one, never a request from the network.
#[derive(Clone, Debug)]
pub(crate) struct Warming {
    pub caller: Caller,
    /// Also store every answer in the shared level (after its failover: the answers this
    /// node holds in memory are hits here, and would not be written there otherwise).
    pub refill_shared: bool,
}

/// How long a verified key is trusted before it is checked again (a revocation is picked up
/// sooner, by the generation poll).
const KEY_TTL: Duration = Duration::from_secs(60);
const MAX_CACHED_KEYS: usize = 10_000;

/// Verified keys by the SHA-256 of the presented key: (caller, key id, when verified).
#[derive(Debug, Default)]
pub(crate) struct KeyCache {
    keys: Mutex<HashMap<[u8; 32], (Caller, i64, Instant)>>,
}

/// The digest under which a presented key is remembered.
pub(crate) fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

impl KeyCache {
    /// The caller and key id of a key verified less than `KEY_TTL` ago.
    pub fn get(&self, digest: &[u8; 32]) -> Option<(Caller, i64)> {
        let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        keys.get(digest)
            .filter(|(_, _, at)| at.elapsed() < KEY_TTL)
            .map(|(c, id, _)| (c.clone(), *id))
    }

    /// Remembers a verified key (forgetting all once `MAX_CACHED_KEYS` are held).
    pub fn insert(&self, digest: [u8; 32], caller: Caller, key_id: i64) {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if keys.len() >= MAX_CACHED_KEYS {
            keys.clear();
        }
        keys.insert(digest, (caller, key_id, Instant::now()));
    }

    /// Forgets every key (a key was revoked somewhere).
    pub fn clear(&self) {
        self.keys.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}
