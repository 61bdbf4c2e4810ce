//! Reading stored lines: one line with its result and audit trail, keyset-paged listings
//! with filters, counts. The write path is `write`.

use serde::Serialize;
use std::borrow::Cow;

use vcci_core::calc::{
    Conversions, EmissionRecord, FactorInfo, FallbackInfo, OwnScopeInfo, SpendInfo,
    SupplierDataInfo, UnitInfo, UpstreamInfo, desnz_info,
};
use vcci_core::factors::{SET_DESNZ, SET_EPA};
use vcci_core::{Date, PriceBasis};

use crate::Result;
use crate::codec::{Body, EEIO_UPSTREAM, basis_from_code, method_from_code, source_from_code};
use crate::conn::{Arg, Db, Dialect, Row, args};
use crate::model::orgs::OrgId;

/// A stored line as reads return it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredLine {
    pub transaction_id: String,
    pub date: String,
    /// The supplier the line belongs to (its key: an id, or the name of a supplier known by
    /// name only).
    pub supplier_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supplier_name: Option<String>,
    /// The supplier the line named (its supplier_id, or its supplier_name) when it belongs
    /// to another: its name was linked to an existing supplier, or its supplier was merged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supplier_as_named: Option<String>,
    pub description: Option<String>,
    pub amount: Option<f64>,
    pub currency: Option<String>,
    pub naics_code: Option<String>,
    pub category: Option<u8>,
    pub quantity: Option<f64>,
    pub unit: Option<String>,
    pub activity_id: Option<String>,
    pub country: Option<String>,
    pub price_basis: PriceBasis,
    /// A capital purchase (category 2 whatever its NAICS code).
    pub capex: bool,
    /// The product bought, as its supplier's footprints name it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    /// The ledger account the spend was booked to, and its name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gl_account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gl_account_name: Option<String>,
    pub emission: EmissionRecord,
}

pub(crate) const READ_COLS: &str =
    "transaction_id, day, supplier_id, co2e_kg, category, method, data_quality, body";

pub(crate) fn day_text(day: u32) -> String {
    Date::from_yyyymmdd(day).map_or_else(|| day.to_string(), |d| d.to_string())
}

pub(crate) fn stored_line(r: &Row<'_>) -> Result<StoredLine> {
    stored_line_at(r, 0)
}

/// `stored_line` for a row whose `READ_COLS` start at column `o`.
pub(crate) fn stored_line_at(r: &Row<'_>, o: usize) -> Result<StoredLine> {
    let category: u8 = r.u8(o + 4)?;
    let b = Body::decode(r.blob(o + 7)?)?;
    let price_basis = basis_from_code(b.price_basis);
    let (factor_set, factor_version, factor_unit) = b.factor_names(price_basis);
    let product_footprint = b.pcf_info();
    let classification = match b.classification.as_deref() {
        Some(c) => Some(serde_json::from_str(c).map_err(|e| {
            crate::StoreError::corrupt(format!("a stored line's classification: {e}"))
        })?),
        None => None,
    };
    let spend = match (b.fx_rate, b.amount, b.cpi_ratio) {
        (Some(fx_rate), Some(amount), Some(cpi_ratio)) => {
            let usd = amount / fx_rate;
            Some(SpendInfo {
                amount,
                currency: b
                    .currency
                    .clone()
                    .or_else(|| b.assumed_currency.clone())
                    .unwrap_or_else(|| "USD".into()),
                fx_rate,
                fx_year: b.fx_year.unwrap_or_default(),
                amount_usd: usd,
                cpi_from_year: b.cpi_from_year.unwrap_or_default(),
                cpi_to_year: b.cpi_to_year.unwrap_or_default(),
                cpi_ratio,
                amount_usd_price_year: usd * cpi_ratio,
                price_basis: (factor_set == SET_EPA).then(|| price_basis.margins().to_owned()),
            })
        }
        _ => None,
    };
    let cat = vcci_core::catalog();
    let unit_conv = match (b.unit_factor, b.quantity) {
        (Some(factor), Some(q)) => {
            let to = match &product_footprint {
                Some(p) => vcci_core::pact::declared_unit(&p.declared_unit)
                    .map(|u| u.symbol().to_owned())
                    .unwrap_or_default(),
                None => b
                    .activity_id
                    .as_deref()
                    .and_then(|k| cat.desnz.find(k))
                    .map(|i| cat.desnz.factors[i].unit.symbol().to_owned())
                    .unwrap_or_default(),
            };
            Some(UnitInfo {
                quantity: q,
                from: b.unit.clone().unwrap_or_default(),
                to,
                factor,
                converted: q * factor,
            })
        }
        _ => None,
    };
    // The line's own DESNZ factor, looked up once.
    let own = (factor_set == SET_DESNZ)
        .then(|| cat.desnz.find(&b.factor_key))
        .flatten();
    let scope = own.map(|i| Cow::Borrowed(cat.desnz.factors[i].scope.as_str()));
    let converted = unit_conv.as_ref().map_or(0.0, |u| u.converted);
    let upstream: Vec<UpstreamInfo> = b
        .upstream_parts()?
        .into_iter()
        // A hybrid's EEIO part is named in `supplier_data`.
        .filter(|u| u.kind != EEIO_UPSTREAM)
        .map(|u| {
            let factor = match cat.desnz.find(&u.key) {
                // As stored: the value the line was calculated with.
                Some(i) => FactorInfo {
                    value: u.value,
                    ..desnz_info(&cat.desnz.factors[i])
                },
                None => FactorInfo {
                    set: SET_DESNZ.into(),
                    version: vcci_core::factors::desnz::VERSION.into(),
                    unit: Cow::Borrowed("kg CO2e/unit"),
                    scope: None,
                    key: u.key.clone().into(),
                    value: u.value,
                },
            };
            UpstreamInfo {
                kind: u.kind.into(),
                co2e_kg: converted * u.value,
                factor,
            }
        })
        .collect();
    let radiative_forcing = own.and_then(|i| vcci_core::calc::rf_info(cat, i, converted));
    let gases = b.gases();
    let supplier_data = b
        .supplier_data
        .and_then(vcci_core::calc::SupplierData::unpack)
        .map(|d| {
            let hybrid = b.hybrid().map(|h| (b.factor_amount() * b.factor_value, h));
            SupplierDataInfo::new(d, hybrid)
        });
    let biogenic_co2_kg = b.biogenic_co2_kg();
    let scope_1_2 = match (b.own_scope, b.scope_1_2_kg) {
        (Some(s), Some(kg)) => Some(OwnScopeInfo {
            scope: u8::try_from(s).unwrap_or_default(),
            co2e_kg: kg,
            counted_in_scope_3: false,
        }),
        _ => None,
    };
    let fallbacks: Vec<FallbackInfo> = b
        .fallbacks
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default();
    let supplier_id = r.opt_string(o + 2)?;
    let supplier_as_named = match (b.supplier_id_given, &b.supplier_named_id) {
        (true, named) => named.clone(),
        (false, _) => b
            .supplier_name
            .clone()
            .filter(|n| supplier_id.as_ref().is_some_and(|k| k != n)),
    };
    Ok(StoredLine {
        transaction_id: r.string(o)?,
        date: day_text(r.u32(o + 1)?),
        supplier_id,
        supplier_as_named,
        supplier_name: b.supplier_name,
        description: b.description,
        amount: b.amount,
        currency: b.currency,
        naics_code: b.naics_code.map(|n| n.to_string()),
        category: b.category_in.and_then(|c| u8::try_from(c).ok()),
        quantity: b.quantity,
        unit: b.unit,
        activity_id: b.activity_id,
        country: b.country,
        price_basis,
        capex: b.capex,
        product_id: b.product_id,
        gl_account: b.gl_account,
        gl_account_name: b.gl_account_name,
        emission: EmissionRecord {
            co2e_kg: r.f64(o + 3)?,
            category,
            category_name: vcci_core::Category::new(category)
                .map(|c| c.name())
                .unwrap_or_default()
                .into(),
            category_source: source_from_code(b.category_source),
            method: method_from_code(r.u8(o + 5)?),
            data_quality: r.u8(o + 6)?,
            data_quality_indicators: b.dq.map(vcci_core::calc::DataQuality::unpack),
            factor: FactorInfo {
                set: factor_set.into(),
                version: factor_version,
                key: b.factor_key.into(),
                value: b.factor_value,
                unit: factor_unit,
                scope,
            },
            conversions: Conversions {
                spend,
                unit: unit_conv,
            },
            fallbacks,
            upstream,
            radiative_forcing,
            scope_1_2,
            gases,
            biogenic_co2_kg,
            supplier_data,
            product_footprint,
            classification,
        },
    })
}

impl Db {
    /// One stored line with its result.
    pub fn get_line(&self, org: OrgId, transaction_id: &str) -> Result<Option<StoredLine>> {
        let sql = match self.conn.dialect() {
            Dialect::Sqlite => format!(
                "SELECT {READ_COLS} FROM transactions WHERE org_id = ?1 AND transaction_id = ?2"
            ),
            Dialect::Postgres => format!(
                "SELECT {READ_COLS} FROM transactions t WHERE t.org_id = ?1 AND t.transaction_id = ?2
                   AND t.day = (SELECT day FROM transaction_keys WHERE org_id = ?1 AND transaction_id = ?2)"
            ),
        };
        self.conn
            .query_opt(&sql, args![org.0, transaction_id], stored_line)
    }

    /// Number of lines of `org`.
    pub fn line_count(&self, org: OrgId) -> Result<i64> {
        self.conn.query_one(
            "SELECT COUNT(*) FROM transactions WHERE org_id = ?1",
            args![org.0],
            |r| r.i64(0),
        )
    }
}

/// Filters of a line listing (all optional, combined with AND).
#[derive(Clone, Debug, Default)]
pub struct LineFilter {
    pub supplier_id: Option<String>,
    pub category: Option<u8>,
    pub from: Option<Date>,
    pub to: Option<Date>,
}

impl Db {
    /// Lines in `(date desc, transaction_id desc)` order after the keyset position `after`
    /// (`(yyyymmdd, transaction_id)` of the last line of the previous page), at most `limit`.
    /// SQLite serves it by the `(org_id, day, transaction_id)` index and checks the other
    /// filters on the rows it yields; PostgreSQL has an index per filter (supplier, category),
    /// each in the same order, in every partition.
    pub fn list_lines(
        &self,
        org: OrgId,
        f: &LineFilter,
        after: Option<(u32, &str)>,
        limit: usize,
    ) -> Result<Vec<(u32, StoredLine)>> {
        let (sql, args) = list_query(org, f, after, limit);
        self.conn
            .query(&sql, &args, |r| Ok((r.u32(0)?, stored_line_at(r, 1)?)))
    }

    /// The database's plan for `list_lines` with these arguments, one line of text per step
    /// (PostgreSQL `EXPLAIN`, SQLite `EXPLAIN QUERY PLAN`): shows which index serves a
    /// listing's filters and order.
    pub fn explain_list_lines(
        &self,
        org: OrgId,
        f: &LineFilter,
        after: Option<(u32, &str)>,
        limit: usize,
    ) -> Result<Vec<String>> {
        let (sql, args) = list_query(org, f, after, limit);
        match self.conn.dialect() {
            Dialect::Postgres => self
                .conn
                .query(&format!("EXPLAIN {sql}"), &args, |r| r.string(0)),
            Dialect::Sqlite => self
                .conn
                .query(&format!("EXPLAIN QUERY PLAN {sql}"), &args, |r| r.string(3)),
        }
    }
}

/// The SQL and arguments of `Db::list_lines`.
fn list_query<'a>(
    org: OrgId,
    f: &'a LineFilter,
    after: Option<(u32, &'a str)>,
    limit: usize,
) -> (String, Vec<Arg<'a>>) {
    let mut sql = format!(
        "SELECT day, {READ_COLS} FROM transactions WHERE org_id = ?1 AND day BETWEEN ?2 AND ?3"
    );
    let mut args: Vec<Arg<'_>> = vec![
        Arg::Int(org.0),
        Arg::Int(i64::from(f.from.map_or(0, |d| d.yyyymmdd()))),
        Arg::Int(i64::from(f.to.map_or(99_999_999, |d| d.yyyymmdd()))),
    ];
    if let Some((day, id)) = after {
        args.push(Arg::Int(i64::from(day)));
        args.push(Arg::Text(id));
        sql += &format!(
            " AND (day, transaction_id) < (?{}, ?{})",
            args.len() - 1,
            args.len()
        );
    }
    if let Some(s) = &f.supplier_id {
        args.push(Arg::Text(s));
        sql += &format!(" AND supplier_id = ?{}", args.len());
    }
    if let Some(c) = f.category {
        args.push(Arg::Int(i64::from(c)));
        sql += &format!(" AND category = ?{}", args.len());
    }
    args.push(Arg::Int(limit as i64));
    sql += &format!(
        " ORDER BY day DESC, transaction_id DESC LIMIT ?{}",
        args.len()
    );
    (sql, args)
}
