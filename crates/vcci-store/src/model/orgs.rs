//! Organizations (tenants) and their calculation settings.

use crate::conn::{Arg, Db, Tx, args};
use vcci_core::{CalcConfig, Currency, EpaVersion};

use crate::{Result, StoreError, now_rfc3339};

/// An organization's row id. Every tenant row carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrgId(pub i64);

#[derive(Clone, Debug, PartialEq)]
pub struct Org {
    pub id: OrgId,
    pub name: String,
    pub epa_version: EpaVersion,
    /// The currency of its lines that name none.
    pub default_currency: Currency,
    /// Flights with radiative forcing (the default) or without.
    pub flights_with_rf: bool,
}

impl Org {
    pub fn calc_config(&self) -> CalcConfig {
        CalcConfig {
            epa_version: self.epa_version,
            default_currency: self.default_currency,
            flights_with_rf: self.flights_with_rf,
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
        Err(StoreError::invalid(
            "org",
            format!(
                "'{name}' is not a valid organization name (1-64 letters, digits, '-', '_' or '.')"
            ),
        ))
    }
}

impl Db {
    /// The organization named `name`, created (default currency USD) if it does not exist.
    pub fn ensure_org(&self, name: &str) -> Result<Org> {
        self.ensure_org_with(name, None)
    }

    /// The organization named `name`, created with `currency` (USD if `None`) as its
    /// default currency if it does not exist. An existing organization whose default
    /// currency differs from a given one is a conflict (change it with
    /// `Db::recalculate` with the new setting).
    pub fn ensure_org_with(&self, name: &str, currency: Option<Currency>) -> Result<Org> {
        validate_org_name(name)?;
        let c = currency.unwrap_or(Currency::USD);
        self.conn.execute(
            "INSERT INTO organizations (name, created_at, default_currency) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO NOTHING",
            args![name, &now_rfc3339(), c.as_str()],
        )?;
        let org = self
            .org_by_name(name)?
            .ok_or_else(|| StoreError::NotFound(format!("organization {name}")))?;
        if let Some(c) = currency
            && c != org.default_currency
        {
            return Err(StoreError::invalid(
                "default_currency",
                format!(
                    "organization '{name}' exists with default currency {}, not {c}; \
                     change it with `vcci calculate --org {name} --default-currency {c}`",
                    org.default_currency
                ),
            ));
        }
        Ok(org)
    }

    pub fn org_by_name(&self, name: &str) -> Result<Option<Org>> {
        self.org_where("name = ?1", Arg::Text(name))
    }

    pub fn org_by_id(&self, id: OrgId) -> Result<Option<Org>> {
        self.org_where("id = ?1", Arg::Int(id.0))
    }

    fn org_where(&self, cond: &str, v: Arg<'_>) -> Result<Option<Org>> {
        let sql = format!(
            "SELECT id, name, epa_version, default_currency, flights_with_rf FROM organizations
             WHERE {cond}"
        );
        let row = self.conn.query_opt(&sql, &[v], |r| {
            Ok((
                r.i64(0)?,
                r.string(1)?,
                r.string(2)?,
                r.string(3)?,
                r.i64(4)?,
            ))
        })?;
        row.map(|(id, name, v, c, rf)| {
            let epa_version = EpaVersion::parse(&v).map_err(StoreError::corrupt)?;
            let default_currency = Currency::parse(&c).map_err(StoreError::corrupt)?;
            Ok(Org {
                id: OrgId(id),
                name,
                epa_version,
                default_currency,
                flights_with_rf: rf != 0,
            })
        })
        .transpose()
    }

    /// An organization that must exist.
    pub fn require_org(&self, name: &str) -> Result<Org> {
        self.org_by_name(name)?
            .ok_or_else(|| StoreError::NotFound(format!("organization '{name}'")))
    }
}

/// Marks a change of `org`'s data inside `tx` (see the `generation` column).
pub(crate) fn bump_generation(tx: &Tx<'_>, org: OrgId) -> Result<()> {
    tx.execute(
        "UPDATE organizations SET generation = generation + 1 WHERE id = ?1",
        args![org.0],
    )?;
    Ok(())
}

/// What API nodes poll to keep their caches and key lookups current.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Generations {
    /// Each organization's data generation.
    pub orgs: Vec<(OrgId, u64)>,
    /// Changes whenever a key is revoked or an organization's settings change: cached key
    /// lookups, which carry their organization's settings, are then dropped.
    pub revoked_keys: u64,
}

impl Db {
    /// The data generation of `org` (0 for an unknown organization).
    pub fn generation(&self, org: OrgId) -> Result<u64> {
        Ok(self
            .conn
            .query_opt(
                "SELECT generation FROM organizations WHERE id = ?1",
                args![org.0],
                |r| r.i64(0),
            )?
            .unwrap_or(0) as u64)
    }

    /// The `n` organizations whose data changed most (the highest generations: every write
    /// of lines, suppliers or periods bumps it), most first: what a node warms its cache for.
    pub fn most_active_orgs(&self, n: usize) -> Result<Vec<Org>> {
        let ids = self.conn.query(
            "SELECT id FROM organizations ORDER BY generation DESC, id LIMIT ?1",
            args![n as i64],
            |r| r.i64(0),
        )?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(o) = self.org_by_id(OrgId(id))? {
                out.push(o);
            }
        }
        Ok(out)
    }

    /// Every organization's generation and the count of revoked keys.
    pub fn generations(&self) -> Result<Generations> {
        let orgs = self
            .conn
            .query("SELECT id, generation FROM organizations", &[], |r| {
                Ok((OrgId(r.i64(0)?), r.i64(1)? as u64))
            })?;
        let revoked_keys = self.conn.query_one(
            "SELECT CAST((SELECT count(revoked_at) FROM api_keys)
                  + (SELECT COALESCE(SUM(settings_version), 0) FROM organizations) AS BIGINT)",
            &[],
            |r| r.i64(0),
        )? as u64;
        Ok(Generations { orgs, revoked_keys })
    }
}
