//! SQLite migrations (`migrations/sqlite`), tracked in `PRAGMA user_version`.

use crate::Result;
use crate::conn::Conn;

const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/sqlite/0001_init.sql"),
    include_str!("../../migrations/sqlite/0002_secrets.sql"),
    include_str!("../../migrations/sqlite/0003_jobs.sql"),
    include_str!("../../migrations/sqlite/0004_monthly.sql"),
    include_str!("../../migrations/sqlite/0005_scope_1_2_apart.sql"),
    include_str!("../../migrations/sqlite/0006_org_settings.sql"),
    include_str!("../../migrations/sqlite/0007_gases.sql"),
    include_str!("../../migrations/sqlite/0008_supplier_intensities.sql"),
    include_str!("../../migrations/sqlite/0009_periods.sql"),
    include_str!("../../migrations/sqlite/0010_reporting.sql"),
    include_str!("../../migrations/sqlite/0011_audit.sql"),
    include_str!("../../migrations/sqlite/0012_pcfs.sql"),
    include_str!("../../migrations/sqlite/0013_classification.sql"),
    include_str!("../../migrations/sqlite/0014_classification_review.sql"),
    include_str!("../../migrations/sqlite/0015_supplier_resolution.sql"),
];

/// The migrations in order (tests build a previous version's database from a prefix).
#[cfg(test)]
pub(crate) fn migrations() -> &'static [&'static str] {
    MIGRATIONS
}

pub(super) fn migrate(conn: &Conn) -> Result<()> {
    let version = conn.query_one("PRAGMA user_version", &[], |r| r.i64(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.begin()?;
        tx.batch(sql)?;
        tx.batch(&format!("PRAGMA user_version = {}", i + 1))?;
        tx.commit()?;
    }
    Ok(())
}
