//! PostgreSQL migrations (`migrations/postgres`, tracked in `vcci_schema_migrations`, one
//! node at a time under an advisory lock), and the partitions of `transactions`: one per
//! organization and year, named `transactions_o{org}_y{year}`, created as lines arrive
//! (`write::partitions`).

use crate::Result;
use crate::conn::{Conn, args};

const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/postgres/0001_init.sql"),
    include_str!("../../migrations/postgres/0002_readmodel_fillfactor.sql"),
    include_str!("../../migrations/postgres/0003_org_year_partitions.sql"),
    include_str!("../../migrations/postgres/0004_scope_1_2_apart.sql"),
    include_str!("../../migrations/postgres/0005_org_settings.sql"),
    include_str!("../../migrations/postgres/0006_gases.sql"),
    include_str!("../../migrations/postgres/0007_supplier_intensities.sql"),
    include_str!("../../migrations/postgres/0008_periods.sql"),
    include_str!("../../migrations/postgres/0009_reporting.sql"),
    include_str!("../../migrations/postgres/0010_audit.sql"),
    include_str!("../../migrations/postgres/0011_pcfs.sql"),
    include_str!("../../migrations/postgres/0012_classification.sql"),
    include_str!("../../migrations/postgres/0013_classification_review.sql"),
    include_str!("../../migrations/postgres/0014_supplier_resolution.sql"),
];

/// Advisory lock key under which PostgreSQL migrations run (one node at a time).
const MIGRATION_LOCK: i64 = 0x7663_6369_0001;

/// The schema version whose migration (`0003_org_year_partitions.sql`) moves lines into
/// partitions per organization and year.
const ORG_PARTITIONS_VERSION: usize = 3;

/// (Organization, year) partitions made and filled per transaction by the migration.
const PARTITIONS_PER_MIGRATION_TX: usize = 100;

/// The last step of migration 0003, in the transaction that records the version (were the
/// two apart, a restart between them would run the renames again on the new table).
const ORG_PARTITIONS_DONE: &str = "DROP TABLE transactions_v1";

/// The partition of `transactions` that holds organization `org`'s lines of year `y`.
pub(crate) fn partition_name(org: i64, y: u32) -> String {
    format!("transactions_o{org}_y{y}")
}

/// The bounds of `org`'s year `y` in the partition key `(org_id, day)`.
pub(crate) fn partition_bounds(org: i64, y: u32) -> String {
    format!(
        "FROM ({org}, {}) TO ({org}, {})",
        y * 10_000,
        (y + 1) * 10_000
    )
}

/// Creates `org`'s partition of year `y` unless it exists.
pub(crate) fn partition_ddl(org: i64, y: u32) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} PARTITION OF transactions FOR VALUES {}",
        partition_name(org, y),
        partition_bounds(org, y)
    )
}

/// Whether the table (or index) `name` exists in the connection's schema.
pub(crate) fn relation_exists(conn: &Conn, name: &str) -> Result<bool> {
    conn.query_one(
        "SELECT CASE WHEN to_regclass(?1) IS NULL THEN 0 ELSE 1 END",
        args![name],
        |r| Ok(r.i64(0)? == 1),
    )
}

/// Whether `org`'s partition of year `y` exists.
pub(crate) fn partition_exists(conn: &Conn, org: i64, y: u32) -> Result<bool> {
    relation_exists(conn, &partition_name(org, y))
}

pub(super) fn migrate(conn: &Conn) -> Result<()> {
    let lock = conn
        .pg()
        .map_or(MIGRATION_LOCK, |pg| pg.lock_key(MIGRATION_LOCK));
    conn.query_one("SELECT pg_advisory_lock(?1)", args![lock], |_| Ok(()))?;
    let result = apply_pending(conn);
    conn.query_one("SELECT pg_advisory_unlock(?1)", args![lock], |_| Ok(()))?;
    result
}

fn apply_pending(conn: &Conn) -> Result<()> {
    conn.batch(
        "CREATE TABLE IF NOT EXISTS vcci_schema_migrations (
             version BIGINT PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )?;
    let version = conn.query_one(
        "SELECT COALESCE(MAX(version), 0) FROM vcci_schema_migrations",
        &[],
        |r| r.i64(0),
    )?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let special = i + 1 == ORG_PARTITIONS_VERSION;
        if special {
            // Its own transactions (see the file); recorded below once complete.
            move_to_org_partitions(conn, sql)?;
        }
        let tx = conn.begin()?;
        tx.batch(if special { ORG_PARTITIONS_DONE } else { sql })?;
        tx.execute(
            "INSERT INTO vcci_schema_migrations (version) VALUES (?1)",
            args![i as i64 + 1],
        )?;
        tx.commit()?;
    }
    Ok(())
}

/// Migration 0003 (`ddl`, run once: it renames the old table to `transactions_v1`), then the
/// move of the old table's lines, `PARTITIONS_PER_MIGRATION_TX` partitions per transaction;
/// the caller then drops the old table (`ORG_PARTITIONS_DONE`) as it records the version.
/// Resumes after a crash at any point.
fn move_to_org_partitions(conn: &Conn, ddl: &str) -> Result<()> {
    if !relation_exists(conn, "transactions_v1")? {
        let tx = conn.begin()?;
        tx.batch(ddl)?;
        tx.commit()?;
    }
    let pairs = conn.query(
        "SELECT DISTINCT org_id, day / 10000 FROM transactions_v1 ORDER BY 1, 2",
        &[],
        |r| Ok((r.i64(0)?, r.i64(1)? as u32)),
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
                args![org, i64::from(y) * 10_000, i64::from(y + 1) * 10_000],
            )?;
        }
        tx.commit()?;
    }
    Ok(())
}
