//! Reporting periods and their inventory versions, read back. Closing and reopening are in
//! `write::periods`; the write path refuses changes to a closed year (`write`).

use serde::Serialize;
use serde_json::Value;

use crate::conn::{Conn, Db, Row, args};
use crate::model::orgs::OrgId;
use crate::{Result, StoreError};

/// A year of an organization that has been closed at least once.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Period {
    pub year: u16,
    /// `closed`, or `open` (reopened).
    pub status: &'static str,
    /// The latest inventory version (the one the last close made).
    pub version: u32,
    pub closed_at: String,
    pub closed_by: String,
    pub reopened_at: Option<String>,
    pub reopened_by: Option<String>,
    pub reopen_reason: Option<String>,
    /// Every inventory version of the year, oldest first.
    pub versions: Vec<VersionInfo>,
}

/// One inventory version of a year: what was frozen, when, by whom and why.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VersionInfo {
    pub version: u32,
    pub created_at: String,
    pub created_by: String,
    /// `close` for a version made by closing the year.
    pub reason: String,
    pub transaction_count: i64,
    pub total_co2e_kg: f64,
    /// The audit log entry that made the version (its close or restatement) and that
    /// entry's hash (hex): a disclosure can quote them, and `vcci audit verify` shows the
    /// entry still holds.
    pub audit_seq: Option<i64>,
    pub audit_hash: Option<String>,
}

/// One inventory version with the year's inventory as it was reported when it was made
/// (per category, per gas, per method; the same shape as the inventory report).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InventoryVersion {
    pub year: u16,
    #[serde(flatten)]
    pub info: VersionInfo,
    pub inventory: Value,
}

/// The years a period can be: those the factor and CPI tables could have data for.
pub const YEARS: std::ops::RangeInclusive<u16> = 1990..=2100;

/// `year`, given as `field`, checked against `YEARS`.
pub(crate) fn check_year(field: &str, year: u16) -> Result<()> {
    if YEARS.contains(&year) {
        Ok(())
    } else {
        Err(StoreError::invalid(
            field,
            format!("{year} is not a reporting year (1990–2100)"),
        ))
    }
}

const PERIOD_COLS: &str =
    "year, closed, version, closed_at, closed_by, reopened_at, reopened_by, reopen_reason";
const VERSION_COLS: &str =
    "version, created_at, created_by, reason, line_count, co2e_kg, audit_seq, audit_hash";

fn year_of(r: &Row<'_>, i: usize) -> Result<u16> {
    u16::try_from(r.i64(i)?).map_err(|_| StoreError::corrupt("a period's year is out of range"))
}

fn period_row(r: &Row<'_>) -> Result<Period> {
    Ok(Period {
        year: year_of(r, 0)?,
        status: if r.i64(1)? != 0 { "closed" } else { "open" },
        version: r.u32(2)?,
        closed_at: r.string(3)?,
        closed_by: r.string(4)?,
        reopened_at: r.opt_string(5)?,
        reopened_by: r.opt_string(6)?,
        reopen_reason: r.opt_string(7)?,
        versions: Vec::new(),
    })
}

/// The `VERSION_COLS` of a row, starting at column `o`.
fn version_row(r: &Row<'_>, o: usize) -> Result<VersionInfo> {
    Ok(VersionInfo {
        version: r.u32(o)?,
        created_at: r.string(o + 1)?,
        created_by: r.string(o + 2)?,
        reason: r.string(o + 3)?,
        transaction_count: r.i64(o + 4)?,
        total_co2e_kg: r.f64(o + 5)?,
        audit_seq: r.opt_i64(o + 6)?,
        audit_hash: r.opt_blob(o + 7)?.map(crate::model::audit::hex),
    })
}

/// The closed years of `org`, read inside the caller's transaction (the write path asks
/// under the organization's write turns, so a close is seen by every write after it).
pub(crate) fn closed_years(conn: &Conn, org: OrgId) -> Result<Vec<u16>> {
    conn.query(
        "SELECT year FROM periods WHERE org_id = ?1 AND closed = 1 ORDER BY year",
        args![org.0],
        |r| year_of(r, 0),
    )
}

impl Db {
    /// Every period of `org` (years closed at least once), by year, with their versions.
    pub fn list_periods(&self, org: OrgId) -> Result<Vec<Period>> {
        let mut periods = self.conn.query(
            &format!("SELECT {PERIOD_COLS} FROM periods WHERE org_id = ?1 ORDER BY year"),
            args![org.0],
            period_row,
        )?;
        let versions = self.conn.query(
            &format!(
                "SELECT year, {VERSION_COLS} FROM inventory_versions WHERE org_id = ?1
                 ORDER BY year, version"
            ),
            args![org.0],
            |r| Ok((year_of(r, 0)?, version_row(r, 1)?)),
        )?;
        for (y, v) in versions {
            if let Some(p) = periods.iter_mut().find(|p| p.year == y) {
                p.versions.push(v);
            }
        }
        Ok(periods)
    }

    /// One period of `org`, if the year was ever closed.
    pub fn get_period(&self, org: OrgId, year: u16) -> Result<Option<Period>> {
        Ok(self.list_periods(org)?.into_iter().find(|p| p.year == year))
    }

    /// The closed years of `org`.
    pub fn closed_years(&self, org: OrgId) -> Result<Vec<u16>> {
        closed_years(&self.conn, org)
    }

    /// One inventory version of a year, with the inventory it froze.
    pub fn inventory_version(
        &self,
        org: OrgId,
        year: u16,
        version: u32,
    ) -> Result<Option<InventoryVersion>> {
        self.conn.query_opt(
            &format!(
                "SELECT {VERSION_COLS}, inventory FROM inventory_versions
                 WHERE org_id = ?1 AND year = ?2 AND version = ?3"
            ),
            args![org.0, year, version],
            |r| {
                let inventory = serde_json::from_str(r.str(8)?)
                    .map_err(|_| StoreError::corrupt("an inventory version's inventory"))?;
                Ok(InventoryVersion {
                    year,
                    info: version_row(r, 0)?,
                    inventory,
                })
            },
        )
    }
}
