//! Organizations (tenants) and their calculation settings.

use rusqlite::{OptionalExtension, params};
use vcci_core::{CalcConfig, EpaVersion};

use crate::{Db, Result, StoreError, now_rfc3339};

/// An organization's row id. Every tenant row carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrgId(pub i64);

#[derive(Clone, Debug, PartialEq)]
pub struct Org {
    pub id: OrgId,
    pub name: String,
    pub epa_version: EpaVersion,
}

impl Org {
    pub fn calc_config(&self) -> CalcConfig {
        CalcConfig {
            epa_version: self.epa_version,
        }
    }
}

/// Organization names: 1–64 characters of letters, digits, '-', '_' and '.'.
pub fn validate_org_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "'{name}' is not a valid organization name (1-64 letters, digits, '-', '_' or '.')"
        )))
    }
}

impl Db {
    /// The organization named `name`, created if it does not exist.
    pub fn ensure_org(&self, name: &str) -> Result<Org> {
        validate_org_name(name)?;
        self.conn.execute(
            "INSERT INTO organizations (name, created_at) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
            params![name, now_rfc3339()],
        )?;
        self.org_by_name(name)?
            .ok_or_else(|| StoreError::NotFound(format!("organization {name}")))
    }

    pub fn org_by_name(&self, name: &str) -> Result<Option<Org>> {
        self.org_where("name = ?1", name)
    }

    pub fn org_by_id(&self, id: OrgId) -> Result<Option<Org>> {
        self.org_where("id = ?1", id.0)
    }

    fn org_where(&self, cond: &str, v: impl rusqlite::ToSql) -> Result<Option<Org>> {
        let sql = format!("SELECT id, name, epa_version FROM organizations WHERE {cond}");
        let row = self
            .conn
            .query_row(&sql, [v], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .optional()?;
        row.map(|(id, name, v)| {
            let epa_version = EpaVersion::parse(&v).map_err(StoreError::Invalid)?;
            Ok(Org {
                id: OrgId(id),
                name,
                epa_version,
            })
        })
        .transpose()
    }

    /// An organization that must exist.
    pub fn require_org(&self, name: &str) -> Result<Org> {
        self.org_by_name(name)?
            .ok_or_else(|| StoreError::NotFound(format!("organization '{name}'")))
    }

    /// Pins the EPA release used for this organization's spend lines. Callers recalculate.
    pub fn set_epa_version(&self, org: OrgId, v: EpaVersion) -> Result<()> {
        self.conn.execute(
            "UPDATE organizations SET epa_version = ?1 WHERE id = ?2",
            params![v.as_str(), org.0],
        )?;
        Ok(())
    }
}
