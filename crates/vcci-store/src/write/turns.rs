//! Write turns (PostgreSQL): the writers of one organization take turns on advisory locks
//! held until their transaction ends, so that no other writer adds one of a batch's ids
//! between the batch's lookup of its ids and its COPY. An organization's ids fall in
//! `WRITE_BUCKETS` buckets, each with a turn of its own, so that an import can write with
//! as many connections at once; API writes take every bucket's turn.

use crate::Result;
use crate::conn::{Tx, args, fnv1a};
use crate::model::orgs::OrgId;

/// Advisory lock namespace of an organization's line writes (the key is this | bucket << 44 |
/// org id).
const WRITE_LOCK: i64 = 0x7663_0000_0000_0000;

/// Ids of an organization fall in this many buckets, each with a write turn of its own.
pub const WRITE_BUCKETS: u32 = 2;

/// The bucket of a transaction id (FNV-1a: the same in every process).
pub fn bucket(transaction_id: &str) -> u32 {
    (fnv1a(transaction_id) % u64::from(WRITE_BUCKETS)) as u32
}

/// Takes `org`'s write turns until the transaction ends (re-entrant): all its buckets, in
/// order, or only `bucket`'s for a writer of one bucket's ids. Callers that write several
/// organizations in one transaction lock them in id order first. PostgreSQL only.
pub(crate) fn lock_org(tx: &Tx<'_>, org: OrgId, bucket: Option<u32>) -> Result<()> {
    let Some(pg) = tx.pg() else {
        return Ok(());
    };
    let buckets = match bucket {
        Some(b) => b..b + 1,
        None => 0..WRITE_BUCKETS,
    };
    for b in buckets {
        tx.query_one(
            "SELECT pg_advisory_xact_lock(?1)",
            args![pg.lock_key(WRITE_LOCK | (i64::from(b) << 44) | (org.0 & 0x0fff_ffff_ffff))],
            |_| Ok(()),
        )?;
    }
    Ok(())
}
