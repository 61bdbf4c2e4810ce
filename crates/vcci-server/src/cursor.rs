//! Opaque, tamper-evident pagination cursors: `hex(payload).hex(hmac)`.
//!
//! The payload names the list, the organization and the last row's sort key; the HMAC-SHA256
//! (key: a secret kept in the database, so every node accepts every node's cursors) makes a
//! changed or foreign cursor an `invalid_cursor` error instead of a different page.

use sha2::{Digest, Sha256};

use crate::ApiError;

/// Signs and checks cursors.
#[derive(Clone)]
pub struct CursorKey(Vec<u8>);

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey(<redacted>)")
    }
}

fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let (mut ipad, mut opad) = ([0x36u8; 64], [0x5cu8; 64]);
    for i in 0..64 {
        ipad[i] ^= k[i];
        opad[i] ^= k[i];
    }
    let inner = Sha256::new()
        .chain_update(ipad)
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(opad)
        .chain_update(inner)
        .finalize()
        .into()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn invalid() -> ApiError {
    ApiError::bad_request(
        "invalid_cursor",
        "the cursor is not valid for this list; start again without a cursor",
    )
}

impl CursorKey {
    pub fn new(secret: Vec<u8>) -> CursorKey {
        CursorKey(secret)
    }

    /// A cursor for `parts` of list `kind` of organization `org`.
    pub fn sign(&self, kind: &str, org: i64, parts: &[&str]) -> String {
        let mut payload = format!("{kind}\u{1f}{org}");
        for p in parts {
            payload.push('\u{1f}');
            payload.push_str(p);
        }
        let mac = hmac(&self.0, payload.as_bytes());
        format!("{}.{}", hex(payload.as_bytes()), hex(&mac[..16]))
    }

    /// The parts of a cursor signed for `kind` and `org`, or `invalid_cursor`.
    pub fn verify(
        &self,
        cursor: &str,
        kind: &str,
        org: i64,
        n_parts: usize,
    ) -> Result<Vec<String>, ApiError> {
        if cursor.len() > 4096 {
            return Err(invalid());
        }
        let (p, m) = cursor.split_once('.').ok_or_else(invalid)?;
        let payload = unhex(p).ok_or_else(invalid)?;
        let mac = unhex(m).ok_or_else(invalid)?;
        let expected = hmac(&self.0, &payload);
        // Constant-time comparison of the tag.
        if mac.len() != 16
            || mac
                .iter()
                .zip(&expected[..16])
                .fold(0u8, |a, (x, y)| a | (x ^ y))
                != 0
        {
            return Err(invalid());
        }
        let text = String::from_utf8(payload).map_err(|_| invalid())?;
        let mut fields = text.split('\u{1f}');
        if fields.next() != Some(kind) || fields.next() != Some(org.to_string().as_str()) {
            return Err(invalid());
        }
        let parts: Vec<String> = fields.map(str::to_owned).collect();
        if parts.len() != n_parts {
            return Err(invalid());
        }
        Ok(parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tampering() {
        let k = CursorKey::new(vec![7; 32]);
        let c = k.sign("tx", 1, &["20240101", "TX-1"]);
        assert_eq!(k.verify(&c, "tx", 1, 2).unwrap(), ["20240101", "TX-1"]);
        assert!(
            k.verify(&c, "tx", 2, 2).is_err(),
            "another organization's cursor"
        );
        assert!(
            k.verify(&c, "suppliers", 1, 2).is_err(),
            "another list's cursor"
        );
        let mut bad = c.clone().into_bytes();
        bad[3] = if bad[3] == b'0' { b'1' } else { b'0' };
        assert!(
            k.verify(std::str::from_utf8(&bad).unwrap(), "tx", 1, 2)
                .is_err()
        );
        assert!(k.verify("zz", "tx", 1, 2).is_err());
        assert!(
            CursorKey::new(vec![8; 32]).verify(&c, "tx", 1, 2).is_err(),
            "another deployment's key"
        );
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
