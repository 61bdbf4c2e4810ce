//! PostgreSQL's partitions of `transactions` (one per organization and year, named by
//! `schema`), created as lines arrive, and their statistics refreshed after large imports.

use std::collections::BTreeSet;

use super::PreparedLine;
use super::turns::lock_org;
use crate::Result;
use crate::conn::{Conn, Tx, args};
use crate::model::orgs::OrgId;
use crate::schema::{partition_ddl, partition_exists, partition_name};

/// Advisory lock serializing partition creation across nodes.
const PARTITION_LOCK: i64 = 0x7663_6369_0002;

fn year(p: &PreparedLine) -> u32 {
    p.day() / 10_000
}

/// Years among `lines` whose partition (for `org`) this connection has not seen yet.
fn unknown_years(conn: &Conn, org: OrgId, lines: &[PreparedLine]) -> Vec<u32> {
    let Some(pg) = conn.pg() else {
        return Vec::new();
    };
    let mut years: Vec<u32> = lines.iter().map(year).collect();
    years.sort_unstable();
    years.dedup();
    years.retain(|&y| !pg.knows_table(&partition_name(org.0, y)));
    years
}

/// Whether writing `lines` for `org` needs a partition this connection has not checked.
/// The import ends its transaction before such a batch so that the partition is created
/// outside it.
pub(super) fn needs_partitions(conn: &Conn, org: OrgId, lines: &[PreparedLine]) -> bool {
    !unknown_years(conn, org, lines).is_empty()
}

fn learn(conn: &Conn, org: OrgId, y: u32) {
    if let Some(pg) = conn.pg() {
        pg.learn_table(partition_name(org.0, y));
    }
}

/// Creates the partitions `org`'s `lines` need, each in a short transaction of its own (a new
/// partition locks the parent table; inside a long write it would block readers until the
/// write commits). Must be called outside a transaction. `bucket`: the writer's write turn.
pub(super) fn ensure(
    conn: &Conn,
    org: OrgId,
    lines: &[PreparedLine],
    bucket: Option<u32>,
) -> Result<()> {
    for y in unknown_years(conn, org, lines) {
        if !partition_exists(conn, org.0, y)? {
            let tx = conn.begin()?;
            create(&tx, org, y, bucket)?;
            tx.commit()?;
        }
        learn(conn, org, y);
    }
    Ok(())
}

/// Inside a transaction: partitions that are still missing are created here (an API write
/// of a new year, say), holding the parent's lock until the transaction ends.
pub(super) fn ensure_in_tx(
    tx: &Tx<'_>,
    org: OrgId,
    lines: &[PreparedLine],
    bucket: Option<u32>,
) -> Result<()> {
    for y in unknown_years(tx, org, lines) {
        create(tx, org, y, bucket)?;
        // Only remembered once committed would be exact; a rollback merely costs a failed
        // insert later, which recreates nothing (the name is checked first).
        learn(tx, org, y);
    }
    Ok(())
}

/// Creates `org`'s partition of year `y` if no node has, one node at a time, and after the
/// organization's write turns: a first load in progress may be building that partition as a
/// table of its own (`first_load.rs`), which becomes visible when it commits (without the
/// turns, the creation would wait for that commit and then fail on the name).
fn create(tx: &Tx<'_>, org: OrgId, y: u32, bucket: Option<u32>) -> Result<()> {
    lock_org(tx, org, bucket)?;
    let lock = tx
        .pg()
        .map_or(PARTITION_LOCK, |pg| pg.lock_key(PARTITION_LOCK));
    tx.query_one("SELECT pg_advisory_xact_lock(?1)", args![lock], |_| Ok(()))?;
    tx.batch(&partition_ddl(org.0, y))
}

/// Refreshes the planner's statistics of what a large import wrote: the partitions of
/// `years` and the read models (PostgreSQL's advice after a bulk load).
/// Not `transaction_keys`: every query of it is an equality on its whole primary key, which
/// the planner serves by that key whatever it believes (`EXISTING_KEYS_SQL` is shaped for
/// this), and it is the largest table to sample.
///
/// Without it a fresh table keeps the statistics of an empty one until autovacuum analyzes
/// it, which may be a minute away or never (it is off on some servers, this VM's among
/// them): a page of 100 lines right after the demo was loaded took 57 ms through a bitmap
/// scan and a sort of the whole year instead of a walk down the primary key, which was the
/// 467 ms p99 of the random-page scenario in BENCHMARKS.md.
pub(super) fn analyze_written(conn: &Conn, org: OrgId, years: &BTreeSet<u16>) -> Result<()> {
    let mut tables = String::from("summary_daily, summary_monthly, summary_supplier_month");
    for &y in years {
        // Only partitions that exist: a year whose lines were all rejected has none.
        let y = u32::from(y);
        if partition_exists(conn, org.0, y)? {
            tables += ", ";
            tables += &partition_name(org.0, y);
        }
    }
    conn.batch(&format!("ANALYZE {tables}"))
}
