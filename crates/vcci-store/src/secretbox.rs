//! Secrets kept encrypted at rest (the client secrets of PACT connections): AES-256-GCM
//! with a key from configuration (`VCCI_SECRET_KEY`, 32 bytes as 64 hex digits), a random
//! nonce per secret, and the row's identity as associated data, so that a sealed secret
//! copied to another row does not open. The key never touches the database.
//!
//! Sealed format: version byte 1, the 12-byte nonce, the ciphertext and its 16-byte tag.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use crate::{Result, StoreError};

/// The key secrets are sealed with.
pub struct SecretKey(LessSafeKey);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl SecretKey {
    /// A key from 64 hex digits (e.g. `openssl rand -hex 32`).
    pub fn from_hex(s: &str) -> std::result::Result<SecretKey, String> {
        let s = s.trim();
        if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(
                "the secret key must be 64 hex digits (32 bytes; `openssl rand -hex 32`)".into(),
            );
        }
        let bytes: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap_or(0))
            .collect();
        let key =
            UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| "not an AES-256 key".to_owned())?;
        Ok(SecretKey(LessSafeKey::new(key)))
    }

    /// Seals `plain`, bound to `aad` (the row it belongs to).
    pub fn seal(&self, aad: &str, plain: &str) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce)
            .map_err(|e| StoreError::internal(format!("no randomness: {e}")))?;
        let mut buf = plain.as_bytes().to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                &mut buf,
            )
            .map_err(|_| StoreError::internal("sealing a secret failed"))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + buf.len());
        out.push(1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        Ok(out)
    }

    /// Opens a sealed secret of row `aad`; an error if the key is another or the data was
    /// changed or moved.
    pub fn open(&self, aad: &str, sealed: &[u8]) -> Result<String> {
        let bad = || {
            StoreError::invalid(
                "secret_key",
                "a stored secret does not open with this key (another VCCI_SECRET_KEY, or the data was changed)",
            )
        };
        if sealed.len() < 1 + NONCE_LEN + 16 || sealed[0] != 1 {
            return Err(bad());
        }
        let nonce: [u8; NONCE_LEN] = sealed[1..1 + NONCE_LEN].try_into().map_err(|_| bad())?;
        let mut buf = sealed[1 + NONCE_LEN..].to_vec();
        let plain = self
            .0
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                &mut buf,
            )
            .map_err(|_| bad())?;
        String::from_utf8(plain.to_vec()).map_err(|_| bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_only_with_its_key_and_row() {
        let k = SecretKey::from_hex(&"ab".repeat(32)).unwrap();
        let s = k.seal("org 1 conn a", "s3cret").unwrap();
        assert!(!s.windows(6).any(|w| w == b"s3cret"));
        assert_eq!(k.open("org 1 conn a", &s).unwrap(), "s3cret");
        assert!(k.open("org 2 conn a", &s).is_err());
        let other = SecretKey::from_hex(&"cd".repeat(32)).unwrap();
        assert!(other.open("org 1 conn a", &s).is_err());
        let mut t = s.clone();
        let last = t.len() - 1;
        t[last] ^= 1;
        assert!(k.open("org 1 conn a", &t).is_err());
        assert!(SecretKey::from_hex("short").is_err());
        assert_eq!(format!("{k:?}"), "SecretKey(<redacted>)");
    }
}
