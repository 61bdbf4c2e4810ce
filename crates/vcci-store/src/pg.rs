//! PostgreSQL-only parts of the write path: partitions of `transactions` (one per
//! organization and year) created as data arrives, the bulk line write through binary COPY,
//! an organization's first load built apart and attached (`BulkLoad`), and the read-model
//! upsert.
//!
//! A batch of new lines is written in two round trips whatever its size: binary COPY of their
//! keys straight into `transaction_keys` (under a savepoint: the key index refuses an id
//! that exists, and the batch then asks which ids exist — one array-parameter query probed in
//! the key index) and binary COPY of the lines straight into `transactions`. Only lines
//! whose id exists (re-imports, updates) take the line-by-line path that compares content
//! hashes. Writers of one organization take turns on an advisory lock
//! for the transaction, so no other writer can add one of the batch's ids between the query
//! and the COPY.
//!
//! The COPY rows are encoded here (`CopyBuf`: PostgreSQL's binary COPY format, each value
//! by `Arg`'s own `ToSql`, sent in 256 KiB messages), not through `postgres`'
//! `BinaryCopyInWriter`, which boxes every value behind a trait object in a `Vec` per row
//! and sends 4 KB messages (with the reader splitting batches by bucket as it reads, the
//! import's client CPU fell by 35–40 %: BENCHMARKS.md). A read-model flush is one statement per table, its
//! rows sent as column arrays and turned back into rows by `unnest`.
//!
//! Measured here (10,000 lines into a 1M-line table, PostgreSQL 15, 2 cores): COPY into a
//! staging table then `INSERT ... SELECT ... ON CONFLICT DO NOTHING` into both tables took
//! ~220 ms; COPY straight into the tables ~125 ms (keys 18 ms, lines 105 ms: heap ~25 ms and
//! ~25 ms per index — the primary key and the supplier and category indexes). COPY uses
//! PostgreSQL's multi-row insert; `INSERT ... SELECT` inserts row by row.

use std::collections::HashMap;
use std::io::Write;

use bytes::{BufMut, BytesMut};
use postgres::types::{IsNull, ToSql, Type};

use crate::lines::{
    LineOutcome, NewSuppliers, PreparedLine, method_code, old_contribution, old_sql,
};
use crate::readmodel::{Delta, kg_to_mg, usd_to_musd};
use crate::sql::{Arg, Conn, Tx, args};
use crate::{OrgId, Result, StoreError, now_rfc3339};

/// Columns of a stored line, in the order of `line_args`.
const LINE_COLS: &str = "org_id, transaction_id, day, supplier_id, co2e_kg, co2e_mg, spend_usd, \
    spend_musd, category, method, data_quality, body";

/// Columns of a line's key, in the order of `key_args`: where the line is, its content hash
/// and the import (and line of it) that last wrote or saw it.
const KEY_COLS: &str = "org_id, transaction_id, day, content_hash, import_id, source_line";

/// Rows per multi-row statement where COPY is not used.
const ROWS_PER_STATEMENT: usize = 500;

fn line_args(org: OrgId, p: &PreparedLine) -> [Arg<'_>; 12] {
    let e = &p.emission;
    [
        Arg::Int(org.0),
        p.line.transaction_id.as_deref().into(),
        p.line.date.map(|d| d.yyyymmdd()).into(),
        p.supplier_key().into(),
        Arg::Real(e.co2e_kg),
        Arg::Int(kg_to_mg(e.co2e_kg)),
        p.spend_usd.into(),
        Arg::Int(p.spend_usd.map_or(0, usd_to_musd)),
        e.category.number().into(),
        method_code(e.method).into(),
        e.data_quality.into(),
        Arg::Blob(&p.body),
    ]
}

fn key_args(org: OrgId, p: &PreparedLine, import_id: Option<i64>) -> [Arg<'_>; 6] {
    [
        Arg::Int(org.0),
        p.line.transaction_id.as_deref().into(),
        p.line.date.map(|d| d.yyyymmdd()).into(),
        Arg::Int(p.hash),
        import_id.into(),
        p.source_line.into(),
    ]
}

fn year(p: &PreparedLine) -> u32 {
    p.line.date.map_or(0, |d| d.yyyymmdd() / 10_000)
}

/// The partition of `transactions` that holds `org`'s lines of year `y`.
pub(crate) fn partition_name(org: OrgId, y: u32) -> String {
    format!("transactions_o{}_y{y}", org.0)
}

/// The bounds of `org`'s year `y` in the partition key `(org_id, day)`.
fn partition_bounds(org: OrgId, y: u32) -> String {
    format!(
        "FROM ({o}, {}) TO ({o}, {})",
        y * 10_000,
        (y + 1) * 10_000,
        o = org.0
    )
}

fn partition_ddl(org: OrgId, y: u32) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} PARTITION OF transactions FOR VALUES {}",
        partition_name(org, y),
        partition_bounds(org, y)
    )
}

/// Years among `lines` whose partition (for `org`) this connection has not seen yet.
fn unknown_years(conn: &Conn, org: OrgId, lines: &[PreparedLine]) -> Vec<u32> {
    let Some(pg) = conn.pg() else {
        return Vec::new();
    };
    let known = pg.partitions.borrow();
    let mut years: Vec<u32> = lines
        .iter()
        .map(year)
        .filter(|&y| !known.contains(&(org.0, y)))
        .collect();
    years.sort_unstable();
    years.dedup();
    years
}

/// Whether writing `lines` for `org` needs a partition this connection has not checked
/// (always false on SQLite). The import ends its transaction before such a batch so that
/// the partition is created outside it.
pub(crate) fn needs_partitions(conn: &Conn, org: OrgId, lines: &[PreparedLine]) -> bool {
    !unknown_years(conn, org, lines).is_empty()
}

/// Whether the table (or index) `name` exists in the connection's schema.
fn relation_exists(conn: &Conn, name: &str) -> Result<bool> {
    conn.query_one(
        "SELECT CASE WHEN to_regclass(?1) IS NULL THEN 0 ELSE 1 END",
        args![name],
        |r| Ok(r.i64(0)? == 1),
    )
}

/// Whether `org`'s partition of year `y` exists.
fn partition_exists(conn: &Conn, org: OrgId, y: u32) -> Result<bool> {
    relation_exists(conn, &partition_name(org, y))
}

/// Advisory lock serializing partition creation across nodes.
const PARTITION_LOCK: i64 = 0x7663_6369_0002;

/// Creates the partitions `org`'s `lines` need, each in a short transaction of its own (a new
/// partition locks the parent table; inside a long write it would block readers until the
/// write commits). Must be called outside a transaction. No-op on SQLite.
pub(crate) fn ensure_partitions(conn: &Conn, org: OrgId, lines: &[PreparedLine]) -> Result<()> {
    for y in unknown_years(conn, org, lines) {
        if !partition_exists(conn, org, y)? {
            let tx = conn.begin()?;
            create_partition(&tx, org, y)?;
            tx.commit()?;
        }
        if let Some(pg) = conn.pg() {
            pg.partitions.borrow_mut().insert((org.0, y));
        }
    }
    Ok(())
}

/// Creates `org`'s partition of year `y` if no node has, one node at a time, and after the
/// organization's write turns: a first load in progress may be building that partition as a
/// table of its own (`BulkLoad`), which becomes visible when it commits (without the turns,
/// the creation would wait for that commit and then fail on the name).
fn create_partition(tx: &Tx<'_>, org: OrgId, y: u32) -> Result<()> {
    lock_org(tx, org)?;
    let lock = tx
        .pg()
        .map_or(PARTITION_LOCK, |pg| pg.lock_key(PARTITION_LOCK));
    tx.query_one("SELECT pg_advisory_xact_lock(?1)", args![lock], |_| Ok(()))?;
    tx.batch(&partition_ddl(org, y))
}

/// The schema version whose migration (`0003_org_year_partitions.sql`) moves lines into
/// partitions per organization and year.
pub(crate) const ORG_PARTITIONS_VERSION: usize = 3;

/// (Organization, year) partitions made and filled per transaction by the migration.
const PARTITIONS_PER_MIGRATION_TX: usize = 100;

/// Migration 0003 (`ddl`, run once: it renames the old table to `transactions_v1`), then the
/// move of the old table's lines, `PARTITIONS_PER_MIGRATION_TX` partitions per transaction;
/// the caller then drops the old table (`ORG_PARTITIONS_DONE`) as it records the version.
/// Resumes after a crash at any point.
pub(crate) fn move_to_org_partitions(conn: &Conn, ddl: &str) -> Result<()> {
    if !relation_exists(conn, "transactions_v1")? {
        let tx = conn.begin()?;
        tx.batch(ddl)?;
        tx.commit()?;
    }
    let pairs = conn.query(
        "SELECT DISTINCT org_id, day / 10000 FROM transactions_v1 ORDER BY 1, 2",
        &[],
        |r| Ok((OrgId(r.i64(0)?), r.i64(1)? as u32)),
    )?;
    for chunk in pairs.chunks(PARTITIONS_PER_MIGRATION_TX) {
        let tx = conn.begin()?;
        // A large organization-year may take longer than a request's limit.
        tx.batch("SET LOCAL statement_timeout = 0")?;
        for &(org, y) in chunk {
            // Made and filled in one committed transaction, or not at all.
            if partition_exists(&tx, org, y)? {
                continue;
            }
            tx.batch(&partition_ddl(org, y))?;
            tx.execute(
                "INSERT INTO transactions SELECT * FROM transactions_v1
                 WHERE org_id = ?1 AND day >= ?2 AND day < ?3",
                args![org.0, i64::from(y) * 10_000, i64::from(y + 1) * 10_000],
            )?;
        }
        tx.commit()?;
    }
    Ok(())
}

/// The last step of migration 0003, in the transaction that records the version (were the
/// two apart, a restart between them would run the renames again on the new table).
pub(crate) const ORG_PARTITIONS_DONE: &str = "DROP TABLE transactions_v1";

/// Inside a transaction: partitions that are still missing are created here (an API write
/// of a new year, say), holding the parent's lock until the transaction ends.
fn ensure_partitions_in_tx(tx: &Tx<'_>, org: OrgId, lines: &[PreparedLine]) -> Result<()> {
    for y in unknown_years(tx, org, lines) {
        create_partition(tx, org, y)?;
        if let Some(pg) = tx.pg() {
            // Only remembered once committed would be exact; a rollback merely costs a
            // failed insert later, which recreates nothing (the name is checked first).
            pg.partitions.borrow_mut().insert((org.0, y));
        }
    }
    Ok(())
}

/// An organization's first large load (PostgreSQL), written in one transaction: each year of
/// its lines goes into a plain table of its own (its partition-to-be, without indexes), and
/// `finish_bulk` builds the indexes of each (sorted builds) and attaches it to
/// `transactions`. The keys go into `transaction_keys` as usual, so ids repeated in the file
/// are found there as duplicates of this import.
///
/// Measured on 1,000,000 lines (2 cores, BENCHMARKS.md): the three indexes of a line cost
/// 8.7–8.9 s of CPU inserted line by line into shared B-trees and 2.9–3.5 s built after
/// the rows. Nothing is visible before the commit (the tables are created in the
/// transaction), so a crash leaves nothing to clean up and a rerun starts again; no other
/// writer of the organization runs meanwhile (its write turns are held throughout).
#[derive(Debug, Default)]
pub(crate) struct BulkLoad {
    org: i64,
    /// Years loaded into a table of their own, to be attached (the organization had no
    /// partition when the load began, and no other writer can make one meanwhile:
    /// `create_partition` waits for the organization's write turns).
    fresh: std::collections::BTreeSet<u32>,
    /// Hashes of the ids written so far, 8-byte values where a set of the ids would hold them
    /// all (measured: ~55 MB more peak memory per 1M lines, with the read-model delta the
    /// load also holds).
    seen: std::collections::HashSet<u64>,
}

/// Whether `org` can be loaded as a first load: no line, and no partition either (one left
/// empty by deleted lines): writing into an existing partition would lock `transactions`
/// itself for the whole load, and a new partition of any organization, which needs it
/// alone, would wait as long, with every reader queued behind it. New tables are not part of
/// it until the attach. Always false on SQLite.
pub(crate) fn first_load_possible(conn: &Conn, org: OrgId) -> Result<bool> {
    if conn.pg().is_none() {
        return Ok(false);
    }
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

/// Starts an organization's first load on `tx`'s connection if the organization has no lines
/// and no partition (checked under its write turns, which the transaction keeps). False,
/// and nothing changes, otherwise or on SQLite.
pub(crate) fn begin_bulk(tx: &Tx<'_>, org: OrgId) -> Result<bool> {
    let Some(pg) = tx.pg() else {
        return Ok(false);
    };
    lock_org(tx, org)?;
    if !first_load_possible(tx, org)? {
        return Ok(false);
    }
    // Sorts of the index builds in memory (the default, 64 MB, spills a 1M-line year).
    tx.batch("SET LOCAL maintenance_work_mem = '256MB'")?;
    *pg.bulk.borrow_mut() = Some(BulkLoad {
        org: org.0,
        ..Default::default()
    });
    Ok(true)
}

/// Ends the load without attaching anything (its transaction is rolled back).
pub(crate) fn abandon_bulk(conn: &Conn) {
    if let Some(pg) = conn.pg() {
        pg.bulk.borrow_mut().take();
    }
}

/// Builds the indexes of the load's new tables, analyzes them and attaches them as
/// `transactions` partitions; last in the transaction, which should commit right after (an
/// attach holds a lock on `transactions` that makes new partitions wait).
pub(crate) fn finish_bulk(tx: &Tx<'_>) -> Result<()> {
    let Some(pg) = tx.pg() else {
        return Ok(());
    };
    let Some(load) = pg.bulk.borrow_mut().take() else {
        return Ok(());
    };
    let org = OrgId(load.org);
    for &y in &load.fresh {
        let t = partition_name(org, y);
        // The same keys as the partitioned indexes of `transactions` (0003), which the
        // attach adopts instead of building its own.
        tx.batch(&format!(
            "ALTER TABLE {t} ADD CONSTRAINT {t}_pkey PRIMARY KEY (org_id, day, transaction_id);
             CREATE INDEX {t}_supplier ON {t} (org_id, supplier_id, day, transaction_id);
             CREATE INDEX {t}_category ON {t} (org_id, category, day, transaction_id);
             ANALYZE {t}"
        ))?;
    }
    for &y in &load.fresh {
        // The CHECK constraint proves the partition bounds: no scan of the rows.
        tx.batch(&format!(
            "ALTER TABLE transactions ATTACH PARTITION {} FOR VALUES {}",
            partition_name(org, y),
            partition_bounds(org, y)
        ))?;
    }
    Ok(())
}

/// The columns of `transactions` (migration 0003), for a first load's tables. Spelled out:
/// `CREATE TABLE … (LIKE transactions)` would lock `transactions` until the load commits,
/// and a new partition of any organization, which needs the table alone, would wait as long,
/// with every reader queued behind it. A column missing here fails the attach (and the
/// first-load tests).
const LEAF_COLUMNS: &str = "org_id BIGINT NOT NULL, transaction_id TEXT COLLATE \"C\" NOT NULL,
    day INTEGER NOT NULL, supplier_id TEXT COLLATE \"C\", co2e_kg DOUBLE PRECISION NOT NULL,
    co2e_mg BIGINT NOT NULL, spend_usd DOUBLE PRECISION, spend_musd BIGINT NOT NULL,
    category SMALLINT NOT NULL, method SMALLINT NOT NULL, data_quality SMALLINT NOT NULL,
    body BYTEA NOT NULL";

/// Years of `lines[which]`, each with its lines, in year order.
fn by_year(lines: &[PreparedLine], which: &[usize]) -> std::collections::BTreeMap<u32, Vec<usize>> {
    let mut m: std::collections::BTreeMap<u32, Vec<usize>> = Default::default();
    for &i in which {
        m.entry(year(&lines[i])).or_default().push(i);
    }
    m
}

/// COPY of new lines in a first load: each year into its own table, created at its first
/// line (a plain table shaped like `transactions`, with the partition's bounds as a CHECK
/// constraint).
fn copy_bulk(tx: &Tx<'_>, org: OrgId, lines: &[PreparedLine], new: &[usize]) -> Result<()> {
    let pg = tx.pg().expect("a PostgreSQL connection");
    for (y, which) in by_year(lines, new) {
        let target = {
            let mut guard = pg.bulk.borrow_mut();
            let load = guard.as_mut().expect("a first load");
            if load.fresh.contains(&y) {
                partition_name(org, y)
            } else {
                let t = partition_name(org, y);
                tx.batch(&format!(
                    "CREATE TABLE {t} ({LEAF_COLUMNS},
                       CONSTRAINT {t}_bounds CHECK (org_id = {o} AND day >= {lo} AND day < {hi}))",
                    o = org.0,
                    lo = y * 10_000,
                    hi = (y + 1) * 10_000
                ))?;
                load.fresh.insert(y);
                t
            }
        };
        copy_in(
            tx,
            &format!("COPY {target} ({LINE_COLS}) FROM STDIN (FORMAT binary)"),
            lines,
            &which,
            |b, p| b.row(&line_args(org, p), &LINE_TYPES),
        )?;
    }
    Ok(())
}

/// Accepted lines after which an import refreshes the planner's statistics.
pub(crate) const ANALYZE_AFTER_LINES: u64 = 10_000;

/// Refreshes the planner's statistics of what a large import wrote: the partitions of
/// `years` and the read models (PostgreSQL's advice after a bulk load; no-op on SQLite).
/// Not `transaction_keys`: every query of it is an equality on its whole primary key, which
/// the planner serves by that key whatever it believes (`EXISTING_KEYS_SQL` is shaped for
/// this), and it is the largest table to sample.
///
/// Without it a fresh table keeps the statistics of an empty one until autovacuum analyzes
/// it, which may be a minute away or never (it is off on some servers, this VM's among
/// them): a page of 100 lines right after the demo was loaded took 57 ms through a bitmap
/// scan and a sort of the whole year instead of a walk down the primary key, which was the
/// 467 ms p99 of the random-page scenario in BENCHMARKS.md.
pub(crate) fn analyze_written(
    conn: &Conn,
    org: OrgId,
    years: &std::collections::BTreeSet<u16>,
) -> Result<()> {
    if conn.pg().is_none() {
        return Ok(());
    }
    let mut tables = String::from("summary_daily, summary_monthly, summary_supplier_month");
    for &y in years {
        // Only partitions that exist: a year whose lines were all rejected has none.
        let y = u32::from(y);
        if partition_exists(conn, org, y)? {
            tables += ", ";
            tables += &partition_name(org, y);
        }
    }
    conn.batch(&format!("ANALYZE {tables}"))
}

/// Advisory lock namespace of an organization's line writes (the key is this | bucket << 44 |
/// org id).
const WRITE_LOCK: i64 = 0x7663_0000_0000_0000;

/// Ids of an organization fall in this many buckets, each with a write turn of its own, so
/// that an import can write with as many connections at once (see `import.rs`).
pub const WRITE_BUCKETS: u32 = 2;

/// The bucket of a transaction id (FNV-1a: the same in every process).
pub fn bucket(transaction_id: &str) -> u32 {
    (fnv1a(transaction_id) % u64::from(WRITE_BUCKETS)) as u32
}

/// Takes the organization's write turns until the transaction ends (re-entrant): all its
/// buckets, in order, or only its own for a connection that writes one bucket's ids. Callers
/// that write several organizations in one transaction lock them in id order first.
pub(crate) fn lock_org(tx: &Tx<'_>, org: OrgId) -> Result<()> {
    let Some(pg) = tx.pg() else {
        return Ok(());
    };
    let buckets = match pg.bucket.get() {
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

/// Makes `conn` an import writer of `bucket`'s ids only (PostgreSQL; no-op on SQLite).
pub(crate) fn set_bucket(conn: &Conn, bucket: Option<u32>) {
    if let Some(pg) = conn.pg() {
        pg.bucket.set(bucket);
    }
}

/// `write_lines_tx` on PostgreSQL (see the module's doc).
pub(crate) fn write_lines(
    tx: &Tx<'_>,
    org: OrgId,
    lines: &[PreparedLine],
    new_suppliers: &NewSuppliers,
    import_id: Option<i64>,
    delta: &mut Delta,
    prefilled: bool,
) -> Result<Vec<LineOutcome>> {
    insert_suppliers(tx, org, new_suppliers)?;
    let bulk_load = tx
        .pg()
        .is_some_and(|pg| pg.bulk.borrow().as_ref().is_some_and(|b| b.org == org.0));
    if !bulk_load {
        ensure_partitions_in_tx(tx, org, lines)?;
    }
    lock_org(tx, org)?;
    // The first occurrence of each id goes through the bulk path; a later occurrence in the
    // same batch is handled after it, line by line, as it would be in order.
    let mut first: HashMap<&str, usize> = HashMap::with_capacity(lines.len());
    let mut slow: Vec<usize> = Vec::new();
    let mut bulk: Vec<usize> = Vec::with_capacity(lines.len());
    for (i, p) in lines.iter().enumerate() {
        match first.entry(id_of(p)) {
            std::collections::hash_map::Entry::Occupied(_) => slow.push(i),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(i);
                bulk.push(i);
            }
        }
    }
    let mut out: Vec<Option<LineOutcome>> = vec![None; lines.len()];
    if !bulk.is_empty() {
        let pg = tx.pg().expect("a PostgreSQL connection");
        let new = if bulk_load {
            bulk_keys(tx, org, lines, &bulk, import_id, delta, prefilled, &mut out)?
        } else {
            // Optimistic first: COPY the keys as if all were new, under a savepoint; the key
            // index refuses an existing one, and then the batch reads which of its ids exist
            // (as do the next few batches: a re-import or an update meets many).
            let mut new = None;
            if pg.probe_next.get() == 0 {
                tx.batch("SAVEPOINT vcci_bulk")?;
                match copy_keys(tx, org, lines, &bulk, import_id) {
                    Ok(()) => {
                        tx.batch("RELEASE SAVEPOINT vcci_bulk")?;
                        new = Some(bulk.clone());
                    }
                    Err(StoreError::Postgres(e))
                        if e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION) =>
                    {
                        tx.batch("ROLLBACK TO SAVEPOINT vcci_bulk")?;
                        pg.probe_next.set(8);
                    }
                    Err(e) => return Err(e),
                }
            } else {
                pg.probe_next.set(pg.probe_next.get() - 1);
            }
            match new {
                Some(n) => n,
                None => {
                    let (new, changed) = settle_existing(
                        tx, org, lines, &bulk, import_id, delta, prefilled, &mut out,
                    )?;
                    copy_keys(tx, org, lines, &new, import_id)?;
                    slow.extend(changed);
                    new
                }
            }
        };
        if bulk_load {
            copy_bulk(tx, org, lines, &new)?;
        } else {
            copy_in(
                tx,
                &format!("COPY transactions ({LINE_COLS}) FROM STDIN (FORMAT binary)"),
                lines,
                &new,
                |b, p| b.row(&line_args(org, p), &LINE_TYPES),
            )?;
        }
        for i in new {
            if !prefilled {
                delta.add(&lines[i].contribution());
            }
            out[i] = Some(LineOutcome::Inserted);
        }
    }
    slow.sort_unstable();
    for i in slow {
        if bulk_load && import_id.is_some() {
            // A later occurrence of an id in the batch: a duplicate of the first (whose
            // line is in a table that `write_one`'s lookup does not read yet).
            let f = first[id_of(&lines[i])];
            let first_line = match out[f] {
                Some(LineOutcome::Duplicate { first_line }) => first_line,
                _ => lines[f].source_line.unwrap_or(0),
            };
            if prefilled {
                delta.remove(&lines[i].contribution());
            }
            out[i] = Some(LineOutcome::Duplicate { first_line });
            continue;
        }
        out[i] = Some(write_one(tx, org, &lines[i], import_id, delta, prefilled)?);
    }
    out.into_iter()
        .map(|o| o.ok_or_else(|| StoreError::Invalid("a line was not written".into())))
        .collect()
}

/// The keys of a first load's batch (`bulk`: first occurrences in the batch): only an id whose
/// hash an earlier batch had is looked up (a duplicate of this import, or a hash collision),
/// so no savepoint is needed (hundreds of subtransactions in one transaction would overflow
/// PostgreSQL's per-backend cache of them and slow every other session's snapshots). The
/// new ids' keys are copied; their lines are returned.
#[allow(clippy::too_many_arguments)] // the write's state, as in `write_lines`
fn bulk_keys(
    tx: &Tx<'_>,
    org: OrgId,
    lines: &[PreparedLine],
    bulk: &[usize],
    import_id: Option<i64>,
    delta: &mut Delta,
    prefilled: bool,
    out: &mut [Option<LineOutcome>],
) -> Result<Vec<usize>> {
    let pg = tx.pg().expect("a PostgreSQL connection");
    // An id whose hash is already in the set (from an earlier batch: the batch's ids are
    // distinct, or from a collision) is a suspect, looked up; the others are new.
    let (mut new, suspects): (Vec<usize>, Vec<usize>) = {
        let mut guard = pg.bulk.borrow_mut();
        let load = guard.as_mut().expect("a first load");
        bulk.iter()
            .partition(|&&i| load.seen.insert(fnv1a(id_of(&lines[i]))))
    };
    if !suspects.is_empty() {
        let (fresh, changed) =
            settle_existing(tx, org, lines, &suspects, import_id, delta, prefilled, out)?;
        if !changed.is_empty() {
            // Every key of the organization is this import's: only duplicates.
            return Err(StoreError::Invalid(
                "a first load met lines it did not write".into(),
            ));
        }
        new.extend(fresh);
        new.sort_unstable();
    }
    copy_keys(tx, org, lines, &new, import_id)?;
    Ok(new)
}

/// FNV-1a, 64 bits: the same in every process (write buckets of ids, a first load's set of
/// the ids it has seen, the advisory-lock space of a schema).
pub(crate) fn fnv1a(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn id_of(p: &PreparedLine) -> &str {
    p.line.transaction_id.as_deref().unwrap_or_default()
}

fn copy_keys(
    tx: &Tx<'_>,
    org: OrgId,
    lines: &[PreparedLine],
    which: &[usize],
    import_id: Option<i64>,
) -> Result<()> {
    copy_in(
        tx,
        &format!("COPY transaction_keys ({KEY_COLS}) FROM STDIN (FORMAT binary)"),
        lines,
        which,
        |b, p| b.row(&key_args(org, p, import_id), &KEY_TYPES),
    )
}

/// The keys of an organization's ids (`$1` the organization, `$2` the ids, each once) that
/// exist: id, content hash, the import and line that last wrote or saw it.
///
/// One lookup of the key index per id, whatever the table's statistics say: each id is a
/// `LATERAL` subquery with `LIMIT 1` (harmless on a unique key), which the planner cannot
/// flatten into a join. Both flat forms were planned from the statistics, and those predate
/// the lines right after a large import (autovacuum has not analyzed the table yet):
/// `transaction_id = ANY($2)` was then served from the index on `org_id` alone, filtering
/// every key of the organization (measured: 364 ms against 5 ms for 1,667 ids; a 1M-line
/// re-import spent 55 of its 67 backend seconds there), and a join with `unnest($2)` became
/// a hash join over them. `tests/postgres.rs` checks the plan; public so that it can.
pub const EXISTING_KEYS_SQL: &str =
    "SELECT k.transaction_id, k.content_hash, k.import_id, k.source_line
     FROM unnest($2::text[]) AS u(id)
     CROSS JOIN LATERAL (
         SELECT transaction_id, content_hash, import_id, source_line FROM transaction_keys
         WHERE org_id = $1 AND transaction_id = u.id LIMIT 1
     ) k";

/// Of `bulk` (first occurrences in the batch), the lines whose id is new, and those whose id
/// exists with other content; the rest (duplicates within the import, unchanged lines) are
/// settled here. Everything comes from `transaction_keys` alone (one index probe per id, an
/// array parameter), and unchanged lines are marked as seen by this import there, in one
/// statement: the lines themselves are not rewritten, so a re-import of an unchanged file
/// stays a few round trips per batch.
#[allow(clippy::too_many_arguments)] // the write's state, as in `write_lines`
fn settle_existing(
    tx: &Tx<'_>,
    org: OrgId,
    lines: &[PreparedLine],
    bulk: &[usize],
    import_id: Option<i64>,
    delta: &mut Delta,
    prefilled: bool,
    out: &mut [Option<LineOutcome>],
) -> Result<(Vec<usize>, Vec<usize>)> {
    let ids: Vec<&str> = bulk.iter().map(|&i| id_of(&lines[i])).collect();
    let pg = tx.pg().expect("a PostgreSQL connection");
    let rows = {
        let mut client = pg.client.borrow_mut();
        let st = client.prepare_typed(EXISTING_KEYS_SQL, &[Type::INT8, Type::TEXT_ARRAY])?;
        client.query(&st, &[&org.0, &ids])?
    };
    let mut old: HashMap<&str, (i64, Option<i64>, Option<i64>)> =
        HashMap::with_capacity(rows.len());
    for r in &rows {
        old.insert(r.try_get(0)?, (r.try_get(1)?, r.try_get(2)?, r.try_get(3)?));
    }
    let (mut new, mut changed) = (Vec::new(), Vec::new());
    let (mut touch_ids, mut touch_lines) = (Vec::new(), Vec::new());
    for &i in bulk {
        let p = &lines[i];
        let Some(&(hash, old_import, old_line)) = old.get(id_of(p)) else {
            new.push(i);
            continue;
        };
        let outcome = if import_id.is_some() && old_import == import_id {
            LineOutcome::Duplicate {
                first_line: old_line.unwrap_or(0),
            }
        } else if hash == p.hash {
            touch_ids.push(id_of(p));
            touch_lines.push(p.source_line);
            LineOutcome::Unchanged
        } else {
            changed.push(i);
            continue;
        };
        if prefilled {
            // Counted as new by the caller, but nothing was written.
            delta.remove(&p.contribution());
        }
        out[i] = Some(outcome);
    }
    if let Some(imp) = import_id
        && !touch_ids.is_empty()
    {
        let mut client = pg.client.borrow_mut();
        let st = client.prepare_typed(
            "UPDATE transaction_keys k SET import_id = $2, source_line = u.line
             FROM unnest($3::text[], $4::int8[]) AS u(id, line)
             WHERE k.org_id = $1 AND k.transaction_id = u.id",
            &[Type::INT8, Type::INT8, Type::TEXT_ARRAY, Type::INT8_ARRAY],
        )?;
        client.execute(&st, &[&org.0, &imp, &touch_ids, &touch_lines])?;
    }
    Ok((new, changed))
}

/// Bytes of binary COPY data sent per message (the client's own buffering sends 4 KB
/// messages, each a separate pass through its connection).
const COPY_CHUNK: usize = 256 * 1024;

/// Column types of `line_args`, as `transactions` declares them (binary COPY has no casts).
const LINE_TYPES: [Type; 12] = [
    Type::INT8,
    Type::TEXT,
    Type::INT4,
    Type::TEXT,
    Type::FLOAT8,
    Type::INT8,
    Type::FLOAT8,
    Type::INT8,
    Type::INT2,
    Type::INT2,
    Type::INT2,
    Type::BYTEA,
];

/// Column types of `key_args`, as `transaction_keys` declares them.
const KEY_TYPES: [Type; 6] = [
    Type::INT8,
    Type::TEXT,
    Type::INT4,
    Type::INT8,
    Type::INT8,
    Type::INT8,
];

/// PostgreSQL's binary COPY format: each row its field count, each field its length (-1:
/// NULL) and its value as `Arg`'s `ToSql` encodes it for the column's type (the same
/// conversion as statement parameters), written into one buffer with no per-row values
/// or boxed parameters.
struct CopyBuf {
    buf: BytesMut,
}

impl CopyBuf {
    fn new() -> Self {
        let mut buf = BytesMut::with_capacity(COPY_CHUNK + 64 * 1024);
        buf.put_slice(b"PGCOPY\n\xff\r\n\0");
        buf.put_i32(0); // flags
        buf.put_i32(0); // header extension length
        CopyBuf { buf }
    }

    fn row(&mut self, args: &[Arg<'_>], types: &[Type]) -> Result<()> {
        debug_assert_eq!(args.len(), types.len());
        self.buf
            .put_i16(i16::try_from(args.len()).expect("a few columns"));
        for (arg, ty) in args.iter().zip(types) {
            let at = self.buf.len();
            self.buf.put_i32(0); // the length, set below
            let encoded = arg
                .to_sql(ty, &mut self.buf)
                .map_err(|e| StoreError::Invalid(format!("COPY value for a {ty} column: {e}")))?;
            let len = match encoded {
                IsNull::Yes => -1,
                IsNull::No => i32::try_from(self.buf.len() - at - 4)
                    .map_err(|_| StoreError::Invalid("a COPY field over 2 GB".into()))?,
            };
            self.buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
        }
        Ok(())
    }
}

/// Binary COPY (`sql`: `COPY ... FROM STDIN (FORMAT binary)`) of `lines[i]` for each `i` of
/// `which`, each row written by `encode`, in messages of about `COPY_CHUNK` bytes.
fn copy_in(
    tx: &Tx<'_>,
    sql: &str,
    lines: &[PreparedLine],
    which: &[usize],
    mut encode: impl FnMut(&mut CopyBuf, &PreparedLine) -> Result<()>,
) -> Result<()> {
    if which.is_empty() {
        return Ok(());
    }
    let pg = tx.pg().expect("a PostgreSQL connection");
    let mut client = pg.client.borrow_mut();
    let mut w = client.copy_in(sql)?;
    let mut b = CopyBuf::new();
    // The writer wraps the client's error (a lost connection, say) in an io::Error.
    let io = |e: std::io::Error| match e.into_inner().map(|b| b.downcast::<postgres::Error>()) {
        Some(Ok(pg)) => StoreError::Postgres(*pg),
        Some(Err(other)) => StoreError::Invalid(format!("COPY to PostgreSQL: {other}")),
        None => StoreError::Invalid("COPY to PostgreSQL failed".into()),
    };
    for &i in which {
        encode(&mut b, &lines[i])?;
        if b.buf.len() >= COPY_CHUNK {
            w.write_all(&b.buf).map_err(io)?;
            b.buf.clear();
        }
    }
    b.buf.put_i16(-1); // trailer
    w.write_all(&b.buf).map_err(io)?;
    w.finish()?;
    Ok(())
}

/// One line whose key may exist: inserted, a duplicate within its import, unchanged (the
/// import that saw it last is recorded) or updated, with the read-model changes.
fn write_one(
    tx: &Tx<'_>,
    org: OrgId,
    p: &PreparedLine,
    import_id: Option<i64>,
    delta: &mut Delta,
    prefilled: bool,
) -> Result<LineOutcome> {
    let id = id_of(p);
    let old = tx.query_opt(
        &old_sql(crate::Dialect::Postgres),
        args![org.0, id],
        old_contribution,
    )?;
    let k = key_args(org, p, import_id);
    let a = line_args(org, p);
    let Some((hash, old_import, old_line, c)) = old else {
        tx.execute(
            &format!("INSERT INTO transaction_keys ({KEY_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
            &k,
        )?;
        tx.execute(
            &format!(
                "INSERT INTO transactions ({LINE_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
            ),
            &a,
        )?;
        if !prefilled {
            delta.add(&p.contribution());
        }
        return Ok(LineOutcome::Inserted);
    };
    let outcome = if import_id.is_some() && old_import == import_id {
        LineOutcome::Duplicate {
            first_line: old_line.unwrap_or(0),
        }
    } else if hash == p.hash {
        if import_id.is_some() {
            tx.execute(
                "UPDATE transaction_keys SET import_id = ?3, source_line = ?4
                 WHERE org_id = ?1 AND transaction_id = ?2",
                args![org.0, id, import_id, p.source_line],
            )?;
        }
        LineOutcome::Unchanged
    } else {
        // Setting `day` moves the row to another partition when its year changed.
        let mut all: Vec<Arg<'_>> = a.to_vec();
        all.push(Arg::Int(i64::from(c.day)));
        tx.execute(
            "UPDATE transactions SET day = ?3, supplier_id = ?4, co2e_kg = ?5, co2e_mg = ?6,
               spend_usd = ?7, spend_musd = ?8, category = ?9, method = ?10, data_quality = ?11,
               body = ?12
             WHERE org_id = ?1 AND day = ?13 AND transaction_id = ?2",
            &all,
        )?;
        tx.execute(
            "UPDATE transaction_keys SET day = ?3, content_hash = ?4, import_id = ?5, source_line = ?6
             WHERE org_id = ?1 AND transaction_id = ?2",
            &k,
        )?;
        delta.remove(&c);
        if !prefilled {
            delta.add(&p.contribution());
        }
        LineOutcome::Updated
    };
    if prefilled && outcome != LineOutcome::Updated {
        // Counted as new by the caller, but nothing was written.
        delta.remove(&p.contribution());
    }
    Ok(outcome)
}

/// Suppliers a batch refers to that do not exist yet (multi-row inserts).
fn insert_suppliers(tx: &Tx<'_>, org: OrgId, new_suppliers: &NewSuppliers) -> Result<()> {
    if new_suppliers.is_empty() {
        return Ok(());
    }
    let now = now_rfc3339();
    let mut sorted: Vec<&(String, String)> = new_suppliers.iter().collect();
    // Key order, so that concurrent writers lock supplier rows in the same order.
    sorted.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    for chunk in sorted.chunks(ROWS_PER_STATEMENT) {
        let values: Vec<String> = (0..chunk.len())
            .map(|r| format!("(?1, ?{}, ?{}, ?2)", 3 + 2 * r, 4 + 2 * r))
            .collect();
        let mut a: Vec<Arg<'_>> = vec![Arg::Int(org.0), Arg::Text(&now)];
        for (id, name) in chunk {
            a.push(Arg::Text(id));
            a.push(Arg::Text(name));
        }
        tx.execute(
            &format!(
                "INSERT INTO suppliers (org_id, supplier_id, name, updated_at) VALUES {}
                 ON CONFLICT (org_id, supplier_id) DO NOTHING",
                values.join(", ")
            ),
            &a,
        )?;
    }
    Ok(())
}

/// One column of a read-model upsert, sent as one array parameter.
enum Column<'a> {
    Int(Vec<Option<i64>>),
    Text(Vec<Option<&'a str>>),
}

/// Adds the sums of `rows` to `table`: every column travels as one array
/// (`unnest` turns them back into rows), so a flush of thousands of keys is one statement
/// and one plan. `rows` hold the key columns then the sums, in key order, each key once.
pub(crate) fn upsert_columns(
    tx: &Tx<'_>,
    table: &str,
    cols: &str,
    key_cols: &[&str],
    sets: &str,
    rows: &[Vec<Arg<'_>>],
) -> Result<()> {
    let Some(first) = rows.first() else {
        return Ok(());
    };
    let mut columns: Vec<Column<'_>> = (0..first.len())
        .map(|c| {
            if rows.iter().any(|r| matches!(r[c], Arg::Text(_))) {
                Column::Text(Vec::with_capacity(rows.len()))
            } else {
                Column::Int(Vec::with_capacity(rows.len()))
            }
        })
        .collect();
    for row in rows {
        for (col, arg) in columns.iter_mut().zip(row) {
            match (col, *arg) {
                (Column::Int(v), Arg::Int(i)) => v.push(Some(i)),
                (Column::Int(v), Arg::Null) => v.push(None),
                (Column::Text(v), Arg::Text(s)) => v.push(Some(s)),
                (Column::Text(v), Arg::Null) => v.push(None),
                (_, other) => {
                    return Err(StoreError::Invalid(format!(
                        "read-model upsert into {table}: unexpected value {other:?}"
                    )));
                }
            }
        }
    }
    let arrays: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| match c {
            Column::Int(_) => format!("${}::int8[]", i + 1),
            Column::Text(_) => format!("${}::text[]", i + 1),
        })
        .collect();
    let sql = format!(
        "INSERT INTO {table} ({cols}) SELECT * FROM unnest({}) ON CONFLICT ({}) DO UPDATE SET {sets}",
        arrays.join(", "),
        key_cols.join(", ")
    );
    let params: Vec<&(dyn postgres::types::ToSql + Sync)> = columns
        .iter()
        .map(|c| match c {
            Column::Int(v) => v as &(dyn postgres::types::ToSql + Sync),
            Column::Text(v) => v as &(dyn postgres::types::ToSql + Sync),
        })
        .collect();
    let pg = tx.pg().expect("a PostgreSQL connection");
    pg.client.borrow_mut().execute(sql.as_str(), &params)?;
    Ok(())
}
