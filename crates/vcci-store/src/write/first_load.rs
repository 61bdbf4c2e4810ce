//! An organization's first large load (PostgreSQL), written in one transaction: each year of
//! its lines goes into a plain table of its own (its partition-to-be, without indexes), and
//! `finish` builds the indexes of each (sorted builds) and attaches it to `transactions`.
//! The keys go into `transaction_keys` as usual, so ids repeated in the file are found there
//! as duplicates of this import.
//!
//! Measured on 1,000,000 lines (2 cores, BENCHMARKS.md): the three indexes of a line cost
//! 8.7–8.9 s of CPU inserted line by line into shared B-trees and 2.9–3.5 s built after
//! the rows. Nothing is visible before the commit (the tables are created in the
//! transaction), so a crash leaves nothing to clean up and a rerun starts again; no other
//! writer of the organization runs meanwhile (its write turns are held throughout).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::PreparedLine;
use super::copy::copy_lines;
use crate::Result;
use crate::conn::{Conn, Tx, args, fnv1a};
use crate::model::orgs::OrgId;
use crate::schema::{partition_bounds, partition_name};

/// A first load in progress on a writer's connection.
#[derive(Debug)]
pub(super) struct FirstLoad {
    pub org: OrgId,
    /// Years loaded into a table of their own, to be attached (the organization had no
    /// partition when the load began, and no other writer can make one meanwhile:
    /// partition creation waits for the organization's write turns).
    fresh: BTreeSet<u32>,
    /// Hashes of the ids written so far, 8-byte values where a set of the ids would hold them
    /// all (measured: ~55 MB more peak memory per 1M lines, with the read-model delta the
    /// load also holds).
    seen: HashSet<u64>,
}

/// Whether `org` can be loaded as a first load: no line, and no partition either (one left
/// empty by deleted lines): writing into an existing partition would lock `transactions`
/// itself for the whole load, and a new partition of any organization, which needs it
/// alone, would wait as long, with every reader queued behind it. New tables are not part of
/// it until the attach.
pub(super) fn possible(conn: &Conn, org: OrgId) -> Result<bool> {
    let prefix = format!("transactions_o{}_y", org.0);
    conn.query_one(
        "SELECT CASE WHEN EXISTS (SELECT 1 FROM transaction_keys WHERE org_id = ?1)
           OR EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                      WHERE i.inhparent = 'transactions'::regclass
                        AND starts_with(c.relname::text, ?2))
         THEN 0 ELSE 1 END",
        args![org.0, &prefix],
        |r| Ok(r.i64(0)? == 1),
    )
}

/// The columns of `transactions` (migrations 0003 and 0013), for a first load's tables. Spelled out:
/// `CREATE TABLE … (LIKE transactions)` would lock `transactions` until the load commits,
/// and a new partition of any organization, which needs the table alone, would wait as long,
/// with every reader queued behind it. A column missing here fails the attach (and the
/// first-load tests).
const LEAF_COLUMNS: &str = "org_id BIGINT NOT NULL, transaction_id TEXT COLLATE \"C\" NOT NULL,
    day INTEGER NOT NULL, supplier_id TEXT COLLATE \"C\", co2e_kg DOUBLE PRECISION NOT NULL,
    co2e_mg BIGINT NOT NULL, spend_usd DOUBLE PRECISION, spend_musd BIGINT NOT NULL,
    category SMALLINT NOT NULL, method SMALLINT NOT NULL, data_quality SMALLINT NOT NULL,
    body BYTEA NOT NULL, review SMALLINT NOT NULL DEFAULT 0";

impl FirstLoad {
    /// Starts a first load of `org` in `tx` (whose caller holds the organization's write
    /// turns and checked `possible` under them).
    pub fn begin(tx: &Tx<'_>, org: OrgId) -> Result<FirstLoad> {
        // Sorts of the index builds in memory (the default, 64 MB, spills a 1M-line year).
        tx.batch("SET LOCAL maintenance_work_mem = '256MB'")?;
        Ok(FirstLoad {
            org,
            fresh: BTreeSet::new(),
            seen: HashSet::new(),
        })
    }

    /// Splits `which` (first occurrences of ids in a batch) into ids new to the load and
    /// suspects: an id whose hash an earlier batch had (a duplicate of this import, or a
    /// hash collision), to be looked up. So no savepoint is needed (hundreds of
    /// subtransactions in one transaction would overflow PostgreSQL's per-backend cache of
    /// them and slow every other session's snapshots).
    pub fn split_new(
        &mut self,
        lines: &[PreparedLine],
        which: &[usize],
    ) -> (Vec<usize>, Vec<usize>) {
        which
            .iter()
            .partition(|&&i| self.seen.insert(fnv1a(lines[i].id())))
    }

    /// COPY of new lines: each year into its own table, created at its first line (a plain
    /// table shaped like `transactions`, with the partition's bounds as a CHECK constraint).
    pub fn copy(&mut self, tx: &Tx<'_>, lines: &[PreparedLine], new: &[usize]) -> Result<()> {
        let org = self.org;
        let mut by_year: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for &i in new {
            by_year.entry(lines[i].day() / 10_000).or_default().push(i);
        }
        for (y, which) in by_year {
            let t = partition_name(org.0, y);
            if self.fresh.insert(y) {
                tx.batch(&format!(
                    "CREATE TABLE {t} ({LEAF_COLUMNS},
                       CONSTRAINT {t}_bounds CHECK (org_id = {o} AND day >= {lo} AND day < {hi}))",
                    o = org.0,
                    lo = y * 10_000,
                    hi = (y + 1) * 10_000
                ))?;
            }
            copy_lines(tx, &t, org, lines, &which)?;
        }
        Ok(())
    }

    /// Builds the indexes of the load's new tables, analyzes them and attaches them as
    /// `transactions` partitions; last in the transaction, which should commit right after
    /// (an attach holds a lock on `transactions` that makes new partitions wait).
    pub fn finish(self, tx: &Tx<'_>) -> Result<()> {
        let org = self.org;
        for &y in &self.fresh {
            let t = partition_name(org.0, y);
            // The same keys as the partitioned indexes of `transactions` (0003), which the
            // attach adopts instead of building its own.
            tx.batch(&format!(
                "ALTER TABLE {t} ADD CONSTRAINT {t}_pkey PRIMARY KEY (org_id, day, transaction_id);
                 CREATE INDEX {t}_supplier ON {t} (org_id, supplier_id, day, transaction_id);
                 CREATE INDEX {t}_category ON {t} (org_id, category, day, transaction_id);
                 CREATE INDEX {t}_review ON {t} (org_id, spend_usd DESC, transaction_id)
                   WHERE review = 1;
                 ANALYZE {t}"
            ))?;
        }
        for &y in &self.fresh {
            // The CHECK constraint proves the partition bounds: no scan of the rows.
            tx.batch(&format!(
                "ALTER TABLE transactions ATTACH PARTITION {} FOR VALUES {}",
                partition_name(org.0, y),
                partition_bounds(org.0, y)
            ))?;
        }
        Ok(())
    }
}
