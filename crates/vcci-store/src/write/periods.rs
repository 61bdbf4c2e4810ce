//! Closing and reopening a reporting period. A close runs under the organization's write
//! turns (PostgreSQL) or SQLite's write lock, like every write of lines: a write either
//! commits before it (and is part of the version it freezes) or sees the year closed.

use serde_json::json;

use crate::conn::{Db, Tx, args};
use crate::model::audit::{self, Actor, Appended, Change};
use crate::model::orgs::{Org, bump_generation};
use crate::model::periods::{InventoryVersion, check_year, closed_years};
use crate::model::reports::DateRange;
use crate::{Result, StoreError, now_rfc3339};

impl Db {
    /// Closes `year` of `org`: freezes its results as the next inventory version (the
    /// year's inventory as reported now, and every line of the year as stored) and marks
    /// the year closed, with its entry in the audit log, by `actor`. An error if the year is
    /// closed already.
    pub fn close_period(
        &mut self,
        org: &Org,
        year: u16,
        actor: &Actor,
    ) -> Result<InventoryVersion> {
        let by = actor.label.as_str();
        check_year("year", year)?;
        let now = now_rfc3339();
        let tx = self.conn.begin_immediate()?;
        super::turns::lock_org(&tx, org.id, None)?;
        if closed_years(&tx, org.id)?.contains(&year) {
            return Err(StoreError::Conflict {
                message: format!("the {year} reporting period is closed already"),
                sqlstate: None,
            });
        }
        let frozen = self.freeze(&tx, org, year, "close", by, &now)?;
        let version = frozen.version;
        tx.execute(
            "INSERT INTO periods (org_id, year, closed, version, closed_at, closed_by)
             VALUES (?1, ?2, 1, ?3, ?4, ?5)
             ON CONFLICT (org_id, year) DO UPDATE SET closed = 1, version = excluded.version,
               closed_at = excluded.closed_at, closed_by = excluded.closed_by",
            args![org.id.0, year, version, now.as_str(), by],
        )?;
        bump_generation(&tx, org.id)?;
        let change = Change::new("period.closed", year.to_string(), frozen.detail(None));
        let entry = audit::append(&tx, org.id, actor, change)?;
        attest(&tx, org, year, version, entry)?;
        tx.commit()?;
        self.inventory_version(org.id, year, version)?
            .ok_or_else(|| StoreError::internal("a version just made is not stored"))
    }

    /// Freezes `year` of `org` as its next inventory version inside `tx` (under the
    /// organization's write turns): the year's inventory as reported now and every line of
    /// the year as stored. Returns the version and its totals.
    pub(crate) fn freeze(
        &self,
        tx: &Tx<'_>,
        org: &Org,
        year: u16,
        reason: &str,
        by: &str,
        now: &str,
    ) -> Result<Frozen> {
        let version: u32 = tx.query_one(
            "SELECT CAST(COALESCE(MAX(version), 0) + 1 AS BIGINT) FROM inventory_versions
             WHERE org_id = ?1 AND year = ?2",
            args![org.id.0, year],
            |r| r.u32(0),
        )?;
        let (from, to) = (u32::from(year) * 10_000, u32::from(year) * 10_000 + 1231);
        tx.execute(
            "INSERT INTO inventory_version_lines (org_id, year, version, transaction_id, day,
               supplier_id, co2e_kg, category, method, data_quality, body)
             SELECT org_id, ?2, ?3, transaction_id, day, supplier_id, co2e_kg, category, method,
               data_quality, body
             FROM transactions WHERE org_id = ?1 AND day BETWEEN ?4 AND ?5",
            args![org.id.0, year, version, from, to],
        )?;
        // The year's inventory as the report gives it, read inside this transaction.
        let range = DateRange {
            from: vcci_core::Date::from_yyyymmdd(from + 101),
            to: vcci_core::Date::from_yyyymmdd(to),
        };
        let inventory = self.inventory(org.id, range)?;
        let json = serde_json::to_string(&inventory)
            .map_err(|e| StoreError::internal(format!("an inventory as JSON: {e}")))?;
        tx.execute(
            "INSERT INTO inventory_versions (org_id, year, version, created_at, created_by,
               reason, line_count, co2e_kg, inventory)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            args![
                org.id.0,
                year,
                version,
                now,
                by,
                reason,
                inventory.transaction_count,
                inventory.total_co2e_kg,
                json.as_str()
            ],
        )?;
        Ok(Frozen {
            year,
            version,
            line_count: inventory.transaction_count,
            co2e_kg: inventory.total_co2e_kg,
        })
    }

    /// Reopens a closed `year` of `org`, recording who and why. Its versions stay
    /// readable; writes to the year are accepted again until it is closed anew.
    pub fn reopen_period(
        &mut self,
        org: &Org,
        year: u16,
        reason: &str,
        actor: &Actor,
    ) -> Result<()> {
        check_year("year", year)?;
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(StoreError::invalid(
                "reason",
                "a reopen needs a written reason",
            ));
        }
        if reason.len() > 2000 {
            return Err(StoreError::invalid(
                "reason",
                format!("is {} bytes; the limit is 2000", reason.len()),
            ));
        }
        let tx = self.conn.begin_immediate()?;
        super::turns::lock_org(&tx, org.id, None)?;
        let n = tx.execute(
            "UPDATE periods SET closed = 0, reopened_at = ?3, reopened_by = ?4, reopen_reason = ?5
             WHERE org_id = ?1 AND year = ?2 AND closed = 1",
            args![
                org.id.0,
                year,
                now_rfc3339().as_str(),
                actor.label.as_str(),
                reason
            ],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "a closed {year} reporting period"
            )));
        }
        bump_generation(&tx, org.id)?;
        let detail = json!({"reason": reason});
        audit::append(
            &tx,
            org.id,
            actor,
            Change::new("period.reopened", year.to_string(), detail),
        )?;
        tx.commit()
    }
}

/// A version `freeze` made.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Frozen {
    pub year: u16,
    pub version: u32,
    pub line_count: i64,
    pub co2e_kg: f64,
}

impl Frozen {
    /// The version as its audit entry records it (`reason`: a restatement's).
    pub fn detail(&self, reason: Option<&str>) -> serde_json::Value {
        let mut d = json!({
            "year": self.year,
            "version": self.version,
            "transaction_count": self.line_count,
            "total_co2e_kg": self.co2e_kg,
        });
        if let Some(r) = reason {
            d["reason"] = json!(r);
        }
        d
    }
}

/// Records on version `version` of `year` the audit entry that made it.
pub(crate) fn attest(tx: &Tx<'_>, org: &Org, year: u16, version: u32, e: Appended) -> Result<()> {
    tx.execute(
        "UPDATE inventory_versions SET audit_seq = ?4, audit_hash = ?5
         WHERE org_id = ?1 AND year = ?2 AND version = ?3",
        args![org.id.0, year, version, e.seq, &e.hash[..]],
    )?;
    Ok(())
}
