//! Transactions (spend and activity lines) with their results: the batched write path, reads,
//! deletes and recalculation. Every write updates the read models in the same transaction.

use std::borrow::Cow;
use std::collections::HashMap;

use rusqlite::Statement;
use serde::Serialize;
use vcci_core::EpaVersion;
use vcci_core::calc::{
    Conversions, EmissionRecord, FactorInfo, FactorRef, FallbackInfo, SpendInfo, UnitInfo,
};
use vcci_core::factors::{SET_DESNZ, SET_EPA, SET_SUPPLIER};
use vcci_core::{
    Catalog, CategorySource, Currency, Date, Emission, Line, LineError, Method, Naics, PriceBasis,
    SupplierProfile, Unit,
};

use crate::codec::{Body, BodyRef};
use crate::readmodel::{Contribution, Delta, kg_to_mg, usd_to_musd};
use crate::sql::{Arg, Row, Tx, args};
use crate::{Db, Dialect, Org, OrgId, Result, StoreError, now_rfc3339};

/// A line that was calculated and is ready to be written.
#[derive(Clone, Debug)]
pub struct PreparedLine {
    pub line: Line,
    pub emission: Emission,
    /// The spend in USD of the spend year, when the line has an amount that converts.
    pub spend_usd: Option<f64>,
    /// Hash of the line's fields and result, to detect unchanged re-imports.
    pub hash: i64,
    /// Physical line in the source file, for imports.
    pub source_line: Option<i64>,
    /// Everything that is not a column, encoded (see codec.rs).
    pub(crate) body: Vec<u8>,
}

/// Calculates `line` for `org`, given the supplier profiles the caller knows.
pub fn prepare(
    cat: &'static Catalog,
    org: &Org,
    line: Line,
    suppliers: &HashMap<String, SupplierProfile>,
    source_line: Option<i64>,
) -> Result<PreparedLine, LineError> {
    let supplier_key = line
        .supplier_id
        .as_deref()
        .or(line.supplier_name.as_deref());
    let profile = supplier_key.and_then(|k| suppliers.get(k));
    let emission = vcci_core::calculate(cat, org.calc_config(), &line, profile)?;
    let spend_usd = match (&emission.spend, line.amount) {
        (Some(s), _) => Some(s.usd),
        (None, Some(a)) => {
            let c = line.currency.unwrap_or(Currency::USD);
            if c == Currency::USD {
                Some(a)
            } else {
                let year = line.date.map_or(0, |d| d.year());
                cat.fx
                    .series(c)
                    .and_then(|s| s.get(year).ok())
                    .map(|v| a / v.value)
            }
        }
        (None, None) => None,
    };
    let mut h = line.content_hash();
    for v in [
        emission.co2e_kg.to_bits(),
        u64::from(emission.data_quality),
        u64::from(emission.category.number()),
    ] {
        h = (h ^ v).wrapping_mul(0x0100_0000_01b3);
    }
    let factor = emission.factor_info(cat, supplier_key);
    let fb = emission.fallback_info(&line);
    let fallbacks = (!fb.is_empty()).then(|| serde_json::to_string(&fb).unwrap_or_default());
    let s = emission.spend.as_ref();
    let mut body = Vec::with_capacity(96);
    BodyRef {
        description: line.description.as_deref(),
        amount: line.amount,
        currency: line.currency.as_ref().map(|c| c.as_str()),
        naics_code: line.naics.map(|n| n.code()),
        category_in: line.category.map(|c| u16::from(c.number())),
        quantity: line.quantity,
        unit: line.unit.map(|u| u.symbol()),
        activity_id: line.activity_id.as_deref(),
        country: line.country.as_deref(),
        price_basis: basis_code(line.price_basis),
        category_source: source_code(emission.category_source),
        factor_source: factor_source_code(emission.factor),
        factor_key: &factor.key,
        factor_value: factor.value,
        factor_year: match emission.factor {
            FactorRef::Supplier { year } => Some(year),
            _ => None,
        },
        fx_rate: s.map(|s| s.fx_rate),
        fx_year: s.map(|s| s.fx_year),
        cpi_from_year: s.map(|s| s.cpi_from_year),
        cpi_to_year: s.map(|s| s.cpi_to_year),
        cpi_ratio: s.map(|s| s.cpi_ratio),
        unit_factor: emission.unit.map(|u| u.factor),
        fallbacks: fallbacks.as_deref(),
        supplier_name: line.supplier_name.as_deref(),
        supplier_id_given: line.supplier_id.is_some(),
    }
    .encode(&mut body);
    Ok(PreparedLine {
        line,
        emission,
        spend_usd,
        hash: h as i64,
        source_line,
        body,
    })
}

impl PreparedLine {
    /// Supplier the line belongs to: its supplier_id, else its supplier_name.
    pub fn supplier_key(&self) -> Option<&str> {
        self.line
            .supplier_id
            .as_deref()
            .or(self.line.supplier_name.as_deref())
    }

    pub(crate) fn contribution(&self) -> Contribution<'_> {
        Contribution {
            day: self.line.date.map_or(0, |d| d.yyyymmdd()),
            category: self.emission.category.number(),
            method: method_code(self.emission.method),
            data_quality: self.emission.data_quality,
            supplier_id: self.supplier_key().map(Cow::Borrowed),
            co2e_mg: kg_to_mg(self.emission.co2e_kg),
            spend_musd: self.spend_usd.map_or(0, usd_to_musd),
        }
    }
}

/// Storage codes of enums (small integers keep rows and comparisons cheap).
pub fn method_code(m: Method) -> u8 {
    match m {
        Method::SupplierSpecific => 1,
        Method::AverageData => 2,
        Method::SpendBased => 3,
    }
}

pub fn method_from_code(c: u8) -> Method {
    match c {
        1 => Method::SupplierSpecific,
        2 => Method::AverageData,
        _ => Method::SpendBased,
    }
}

fn source_code(s: CategorySource) -> u16 {
    match s {
        CategorySource::Line => 1,
        CategorySource::Naics => 2,
        CategorySource::Activity => 3,
        CategorySource::Default => 4,
    }
}

fn source_from_code(c: u16) -> CategorySource {
    match c {
        1 => CategorySource::Line,
        2 => CategorySource::Naics,
        3 => CategorySource::Activity,
        _ => CategorySource::Default,
    }
}

/// Factor set and version as one code. Append only: stored rows keep their codes.
fn factor_source_code(f: FactorRef) -> u16 {
    match f {
        FactorRef::Epa {
            version: EpaVersion::V1_3_0,
            ..
        } => 1,
        FactorRef::Epa {
            version: EpaVersion::V1_2,
            ..
        } => 2,
        FactorRef::Desnz { .. } => 3,
        FactorRef::Supplier { .. } => 4,
    }
}

/// Set, version and unit of a stored factor, from its code, key, price basis and the
/// supplier intensity year (`factor_year` of supplier-specific rows).
pub(crate) fn factor_names(
    code: u16,
    key: &str,
    basis: PriceBasis,
    intensity_year: Option<u16>,
) -> (&'static str, Cow<'static, str>, Cow<'static, str>) {
    let cat = vcci_core::catalog();
    match code {
        1 | 2 => {
            let v = if code == 1 {
                EpaVersion::V1_3_0
            } else {
                EpaVersion::V1_2
            };
            (
                SET_EPA,
                v.as_str().into(),
                cat.epa(v).unit_label(basis).into(),
            )
        }
        3 => {
            let unit = cat
                .desnz
                .find(key)
                .map_or(Cow::Borrowed("kg CO2e/unit"), |i| {
                    Cow::Borrowed(cat.desnz.factors[i].value_unit.as_str())
                });
            (SET_DESNZ, vcci_core::factors::desnz::VERSION.into(), unit)
        }
        _ => {
            let y = intensity_year.map_or_else(String::new, |y| y.to_string());
            (
                SET_SUPPLIER,
                y.clone().into(),
                format!("kg CO2e/{y} USD").into(),
            )
        }
    }
}

fn basis_code(b: PriceBasis) -> u16 {
    match b {
        PriceBasis::Purchaser => 0,
        PriceBasis::Producer => 1,
    }
}

fn basis_from_code(c: u16) -> PriceBasis {
    if c == 1 {
        PriceBasis::Producer
    } else {
        PriceBasis::Purchaser
    }
}

/// What happened to each line of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LineOutcome {
    Inserted,
    Updated,
    /// Same fields and result as stored: nothing written.
    Unchanged,
    /// The same transaction_id appeared earlier in this import (on `first_line`).
    Duplicate {
        first_line: i64,
    },
}

const COLS: &[&str] = &[
    "org_id",
    "transaction_id",
    "day",
    "supplier_id",
    "co2e_kg",
    "spend_usd",
    "category",
    "method",
    "data_quality",
    "content_hash",
    "import_id",
    "source_line",
    "body",
];

fn insert_sql(on_conflict: &str) -> String {
    let marks: Vec<String> = (1..=COLS.len()).map(|i| format!("?{i}")).collect();
    format!(
        "INSERT INTO transactions ({}) VALUES ({}) ON CONFLICT (org_id, transaction_id) {on_conflict}",
        COLS.join(", "),
        marks.join(", ")
    )
}

fn upsert_sql() -> String {
    let sets: Vec<String> = COLS[2..]
        .iter()
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    insert_sql(&format!("DO UPDATE SET {}", sets.join(", ")))
}

fn bind(
    st: &mut Statement<'_>,
    org: OrgId,
    p: &PreparedLine,
    import_id: Option<i64>,
) -> rusqlite::Result<()> {
    bind_at(st, 0, org, p, import_id)
}

/// Binds one line's values to parameters `at + 1 ..= at + COLS.len()`.
fn bind_at(
    st: &mut Statement<'_>,
    at: usize,
    org: OrgId,
    p: &PreparedLine,
    import_id: Option<i64>,
) -> rusqlite::Result<()> {
    let e = &p.emission;
    st.raw_bind_parameter(at + 1, org.0)?;
    st.raw_bind_parameter(at + 2, p.line.transaction_id.as_deref())?;
    st.raw_bind_parameter(at + 3, p.line.date.map(|d| d.yyyymmdd()))?;
    st.raw_bind_parameter(at + 4, p.supplier_key())?;
    st.raw_bind_parameter(at + 5, e.co2e_kg)?;
    st.raw_bind_parameter(at + 6, p.spend_usd)?;
    st.raw_bind_parameter(at + 7, e.category.number())?;
    st.raw_bind_parameter(at + 8, method_code(e.method))?;
    st.raw_bind_parameter(at + 9, e.data_quality)?;
    st.raw_bind_parameter(at + 10, p.hash)?;
    st.raw_bind_parameter(at + 11, import_id)?;
    st.raw_bind_parameter(at + 12, p.source_line)?;
    st.raw_bind_parameter(at + 13, &p.body[..])?;
    Ok(())
}

/// Lines per multi-row INSERT on the fast path.
const CHUNK: usize = 32;

/// A multi-row INSERT of `CHUNK` lines that skips existing keys. `OR IGNORE` rather than an
/// INSERT that can abort: an abortable multi-row statement (and NOT NULL constraints make
/// every statement abortable unless the whole statement ignores) needs a statement journal,
/// which copies every page it touches — measured, randomly ordered files imported ~40%
/// slower. Our rows never violate NOT NULL; if one did, the row would be missing and the
/// per-line check after a short count fails loudly.
fn chunk_insert_sql() -> String {
    let row: Vec<String> = (0..CHUNK)
        .map(|r| {
            let marks: Vec<String> = (1..=COLS.len())
                .map(|i| format!("?{}", r * COLS.len() + i))
                .collect();
            format!("({})", marks.join(", "))
        })
        .collect();
    format!(
        "INSERT OR IGNORE INTO transactions ({}) VALUES {}",
        COLS.join(", "),
        row.join(", ")
    )
}

/// Inserts the new lines of `chunk` (exactly `CHUNK` lines) in one statement; returns how
/// many rows were inserted.
fn insert_chunk(
    st: &mut Statement<'_>,
    org: OrgId,
    chunk: &[PreparedLine],
    import_id: Option<i64>,
) -> rusqlite::Result<usize> {
    for (r, p) in chunk.iter().enumerate() {
        bind_at(st, r * COLS.len(), org, p, import_id)?;
    }
    st.raw_execute()
}

const OLD_COLS: &str = "content_hash, import_id, source_line, day, category, method, data_quality,
    supplier_id, co2e_kg, spend_usd";

/// The stored hash, import, source line and read-model contribution of a line by id. On
/// PostgreSQL the id is found through `transaction_keys` (the lines table is partitioned by
/// date), then the line through its partition's primary key.
pub(crate) fn old_sql(d: Dialect) -> String {
    match d {
        Dialect::Sqlite => {
            format!("SELECT {OLD_COLS} FROM transactions WHERE org_id = ?1 AND transaction_id = ?2")
        }
        // The hash and the import that last saw the line are kept with its key.
        Dialect::Postgres => "SELECT k.content_hash, k.import_id, k.source_line, t.day, t.category,
               t.method, t.data_quality, t.supplier_id, t.co2e_kg, t.spend_usd
             FROM transaction_keys k JOIN transactions t
               ON t.org_id = k.org_id AND t.day = k.day AND t.transaction_id = k.transaction_id
             WHERE k.org_id = ?1 AND k.transaction_id = ?2"
            .to_owned(),
    }
}

/// A row of `old_sql`.
pub(crate) type OldLine = (i64, Option<i64>, Option<i64>, Contribution<'static>);

pub(crate) fn old_contribution(r: &Row<'_>) -> Result<OldLine> {
    Ok((
        r.i64(0)?,
        r.opt_i64(1)?,
        r.opt_i64(2)?,
        Contribution {
            day: r.u32(3)?,
            category: r.u8(4)?,
            method: r.u8(5)?,
            data_quality: r.u8(6)?,
            supplier_id: r.opt_string(7)?.map(Cow::Owned),
            co2e_mg: kg_to_mg(r.f64(8)?),
            spend_musd: r.opt_f64(9)?.map_or(0, usd_to_musd),
        },
    ))
}

/// Suppliers a batch refers to that do not exist yet: (supplier_id, name).
pub type NewSuppliers = Vec<(String, String)>;

impl Db {
    /// Writes a batch of lines (upsert by transaction_id) and its read-model changes in one
    /// transaction. With an `import_id`, a transaction_id seen earlier in the same import is
    /// a duplicate and is not written.
    pub fn write_lines(
        &mut self,
        org: OrgId,
        lines: &[PreparedLine],
        new_suppliers: &NewSuppliers,
        import_id: Option<i64>,
    ) -> Result<Vec<LineOutcome>> {
        crate::pg::ensure_partitions(&self.conn, org, lines)?;
        let tx = self.conn.begin()?;
        let mut delta = Delta::default();
        let out = write_lines_tx(&tx, org, lines, new_suppliers, import_id, &mut delta, false)?;
        delta.flush(&tx, org)?;
        tx.commit()?;
        Ok(out)
    }

    /// Writes several batches, of one or more organizations, in one transaction (group
    /// commit of concurrent API requests): one commit instead of one per batch.
    pub fn write_line_groups(
        &mut self,
        groups: &[(OrgId, &[PreparedLine], &NewSuppliers)],
    ) -> Result<()> {
        for (org, lines, _) in groups {
            crate::pg::ensure_partitions(&self.conn, *org, lines)?;
        }
        let tx = self.conn.begin()?;
        // Organizations' write turns in id order, so that two such groups cannot deadlock.
        let mut orgs: Vec<OrgId> = groups.iter().map(|g| g.0).collect();
        orgs.sort_unstable();
        orgs.dedup();
        for org in orgs {
            crate::pg::lock_org(&tx, org)?;
        }
        let mut deltas: Vec<(OrgId, Delta)> = Vec::new();
        for (org, lines, new_suppliers) in groups {
            let at = match deltas.iter().position(|(o, _)| o == org) {
                Some(i) => i,
                None => {
                    deltas.push((*org, Delta::default()));
                    deltas.len() - 1
                }
            };
            write_lines_tx(
                &tx,
                *org,
                lines,
                new_suppliers,
                None,
                &mut deltas[at].1,
                false,
            )?;
        }
        for (org, mut delta) in deltas {
            delta.flush(&tx, org)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Deletes one line; false if it did not exist.
    pub fn delete_line(&mut self, org: OrgId, transaction_id: &str) -> Result<bool> {
        let tx = self.conn.begin()?;
        crate::pg::lock_org(&tx, org)?;
        let old = tx.query_opt(
            &old_sql(tx.dialect()),
            args![org.0, transaction_id],
            old_contribution,
        )?;
        let Some((_, _, _, c)) = old else {
            return Ok(false);
        };
        tx.execute(
            "DELETE FROM transactions WHERE org_id = ?1 AND day = ?2 AND transaction_id = ?3",
            args![org.0, c.day, transaction_id],
        )?;
        if tx.dialect() == Dialect::Postgres {
            tx.execute(
                "DELETE FROM transaction_keys WHERE org_id = ?1 AND transaction_id = ?2",
                args![org.0, transaction_id],
            )?;
        }
        let mut d = Delta::default();
        d.remove(&c);
        d.flush(&tx, org)?;
        tx.commit()?;
        Ok(true)
    }

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

    /// Recalculates stored lines of `org` (all, or those of the given suppliers) with the
    /// current factors, settings and supplier profiles; returns (lines changed, errors).
    /// A line that can no longer be calculated keeps its previous result and is reported.
    pub fn recalculate(
        &mut self,
        cat: &'static Catalog,
        org: &Org,
        only_suppliers: Option<&[String]>,
    ) -> Result<(u64, Vec<(String, LineError)>)> {
        let profiles = self.supplier_profiles(org.id)?;
        let tx = self.conn.begin()?;
        let out = recalculate_tx(&tx, cat, org, &profiles, only_suppliers)?;
        tx.commit()?;
        Ok(out)
    }

    /// Rebuilds the read models from the lines.
    pub fn rebuild_read_models(&mut self, org: OrgId) -> Result<()> {
        let tx = self.conn.begin()?;
        crate::readmodel::rebuild(&tx, org)?;
        tx.commit()?;
        Ok(())
    }
}

/// `Db::recalculate` inside a caller's transaction.
pub(crate) fn recalculate_tx(
    tx: &Tx<'_>,
    cat: &'static Catalog,
    org: &Org,
    profiles: &HashMap<String, SupplierProfile>,
    only_suppliers: Option<&[String]>,
) -> Result<(u64, Vec<(String, LineError)>)> {
    let mut changed = 0u64;
    let mut errors = Vec::new();
    let mut batch = Vec::new();
    let mut after = String::new();
    loop {
        let lines = load_lines(tx, org.id, &after, only_suppliers, 5000)?;
        let Some(last) = lines.last() else { break };
        after = last.0.clone();
        for (_, line) in lines {
            let id = line.transaction_id.clone().unwrap_or_default();
            match prepare(cat, org, line, profiles, None) {
                Ok(p) => batch.push(p),
                Err(e) => errors.push((id, e)),
            }
        }
        let mut delta = Delta::default();
        let outcomes = write_lines_tx(tx, org.id, &batch, &Vec::new(), None, &mut delta, false)?;
        delta.flush(tx, org.id)?;
        changed += outcomes
            .iter()
            .filter(|o| **o == LineOutcome::Updated)
            .count() as u64;
        batch.clear();
    }
    Ok((changed, errors))
}

/// Writes `lines` inside `tx` and records their read-model changes in `delta`, which the
/// caller flushes before committing. With `counted`, the caller already added every line's
/// contribution to `delta` as if it were new (the import does this on its reading thread,
/// off the writer's critical path); it is corrected here for lines that were not inserted.
pub(crate) fn write_lines_tx(
    tx: &Tx<'_>,
    org: OrgId,
    lines: &[PreparedLine],
    new_suppliers: &NewSuppliers,
    import_id: Option<i64>,
    delta: &mut Delta,
    counted: bool,
) -> Result<Vec<LineOutcome>> {
    match tx.sqlite() {
        Some(conn) => {
            write_lines_sqlite(conn, org, lines, new_suppliers, import_id, delta, counted)
        }
        None => crate::pg::write_lines(tx, org, lines, new_suppliers, import_id, delta, counted),
    }
}

/// `write_lines_tx` on SQLite: multi-row prepared inserts for runs of new lines, line by
/// line where keys exist.
fn write_lines_sqlite(
    tx: &rusqlite::Connection,
    org: OrgId,
    lines: &[PreparedLine],
    new_suppliers: &NewSuppliers,
    import_id: Option<i64>,
    delta: &mut Delta,
    counted: bool,
) -> Result<Vec<LineOutcome>> {
    use rusqlite::params;
    if !new_suppliers.is_empty() {
        let now = now_rfc3339();
        let mut st = tx.prepare_cached(
            "INSERT INTO suppliers (org_id, supplier_id, name, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (org_id, supplier_id) DO NOTHING",
        )?;
        for (id, name) in new_suppliers {
            st.execute(params![org.0, id, name, now])?;
        }
    }
    let mut ins = tx.prepare_cached(&insert_sql("DO NOTHING"))?;
    let mut ups = tx.prepare_cached(&upsert_sql())?;
    let mut old = tx.prepare_cached(&old_sql(Dialect::Sqlite))?;
    let mut touch = tx.prepare_cached(
        "UPDATE transactions SET import_id = ?3, source_line = ?4 WHERE org_id = ?1 AND transaction_id = ?2",
    )?;
    let prefilled = counted;
    let mut out = Vec::with_capacity(lines.len());
    // Fast path: whole chunks of new lines in one statement each (measured: per-statement
    // work — cursors opened and closed on the table and both indexes — was a large part of
    // the writer's time). Chunks with any existing key fall through to the line-by-line path.
    let mut chunked = tx.prepare_cached(&chunk_insert_sql())?;
    let mut mine = tx.prepare_cached(
        "SELECT import_id, source_line FROM transactions WHERE org_id = ?1 AND transaction_id = ?2",
    )?;
    // After a chunk meets existing keys (a re-import, an update), the next few chunks go
    // line by line rather than paying for a chunk attempt each.
    let mut slow_chunks = 0u32;
    for chunk in lines.chunks(CHUNK) {
        // Fast path (imports only: their rows carry the import id and source line, which
        // tell this statement's rows from older ones): whole chunks in one statement each
        // (measured: per-statement work — cursors opened and closed on the table and both
        // indexes — was a large part of the writer's time).
        let mut inserted_here: Option<usize> = None;
        if import_id.is_some() && chunk.len() == CHUNK && slow_chunks == 0 {
            let n = insert_chunk(&mut chunked, org, chunk, import_id)?;
            if n < CHUNK {
                slow_chunks = 8;
            }
            inserted_here = Some(n);
        }
        slow_chunks = slow_chunks.saturating_sub(1);
        for p in chunk {
            let inserted = match inserted_here {
                Some(n) if n == CHUNK => true,
                Some(_) => {
                    let id = p.line.transaction_id.as_deref().unwrap_or_default();
                    let (imp, line): (Option<i64>, Option<i64>) =
                        mine.query_row(params![org.0, id], |r| Ok((r.get(0)?, r.get(1)?)))?;
                    imp == import_id && line == p.source_line
                }
                None => {
                    bind(&mut ins, org, p, import_id)?;
                    ins.raw_execute()? == 1
                }
            };
            if inserted {
                if !prefilled {
                    delta.add(&p.contribution());
                }
                out.push(LineOutcome::Inserted);
                continue;
            }
            let id = p.line.transaction_id.as_deref().unwrap_or_default();
            let (hash, old_import, old_line, c) = {
                let mut rows = old.query(params![org.0, id])?;
                let r = rows
                    .next()?
                    .ok_or_else(|| StoreError::NotFound(format!("line {id}")))?;
                old_contribution(&Row::Sqlite(r))?
            };
            let outcome = if import_id.is_some() && old_import == import_id {
                LineOutcome::Duplicate {
                    first_line: old_line.unwrap_or(0),
                }
            } else if hash == p.hash {
                if import_id.is_some() {
                    touch.execute(params![org.0, id, import_id, p.source_line])?;
                }
                LineOutcome::Unchanged
            } else {
                bind(&mut ups, org, p, import_id)?;
                ups.raw_execute()?;
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
            out.push(outcome);
        }
    }
    Ok(out)
}

/// A stored line as reads return it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredLine {
    pub transaction_id: String,
    pub date: String,
    pub supplier_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supplier_name: Option<String>,
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
    pub emission: EmissionRecord,
}

pub(crate) const READ_COLS: &str =
    "transaction_id, day, supplier_id, co2e_kg, category, method, data_quality, body";

fn day_text(day: u32) -> String {
    Date::from_yyyymmdd(day).map_or_else(|| day.to_string(), |d| d.to_string())
}

pub(crate) fn stored_line(r: &Row<'_>) -> Result<StoredLine> {
    stored_line_at(r, 0)
}

/// `stored_line` for a row whose `READ_COLS` start at column `o`.
fn stored_line_at(r: &Row<'_>, o: usize) -> Result<StoredLine> {
    let category: u8 = r.u8(o + 4)?;
    let b = Body::decode(r.blob(o + 7)?)?;
    let price_basis = basis_from_code(b.price_basis);
    let (factor_set, factor_version, factor_unit) =
        factor_names(b.factor_source, &b.factor_key, price_basis, b.factor_year);
    let spend = match (b.fx_rate, b.amount, b.cpi_ratio) {
        (Some(fx_rate), Some(amount), Some(cpi_ratio)) => {
            let usd = amount / fx_rate;
            Some(SpendInfo {
                amount,
                currency: b.currency.clone().unwrap_or_else(|| "USD".into()),
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
    let unit_conv = match (b.unit_factor, b.quantity) {
        (Some(factor), Some(q)) => {
            let cat = vcci_core::catalog();
            let to = b
                .activity_id
                .as_deref()
                .and_then(|k| cat.desnz.find(k))
                .map(|i| cat.desnz.factors[i].unit.symbol().to_owned())
                .unwrap_or_default();
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
    let fallbacks: Vec<FallbackInfo> = b
        .fallbacks
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default();
    Ok(StoredLine {
        transaction_id: r.string(o)?,
        date: day_text(r.u32(o + 1)?),
        supplier_id: r.opt_string(o + 2)?,
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
            factor: FactorInfo {
                set: factor_set.into(),
                version: factor_version,
                key: b.factor_key.into(),
                value: b.factor_value,
                unit: factor_unit,
            },
            conversions: Conversions {
                spend,
                unit: unit_conv,
            },
            fallbacks,
        },
    })
}

/// Lines as `Line`s again (for recalculation), keyset-paged by transaction_id.
fn load_lines(
    tx: &Tx<'_>,
    org: OrgId,
    after: &str,
    only: Option<&[String]>,
    limit: i64,
) -> Result<Vec<(String, Line)>> {
    let mut sql = match tx.dialect() {
        Dialect::Sqlite => String::from(
            "SELECT transaction_id, day, supplier_id, body FROM transactions t
             WHERE org_id = ?1 AND transaction_id > ?2",
        ),
        Dialect::Postgres => String::from(
            "SELECT k.transaction_id, t.day, t.supplier_id, t.body FROM transaction_keys k
             JOIN transactions t ON t.org_id = k.org_id AND t.day = k.day AND t.transaction_id = k.transaction_id
             WHERE k.org_id = ?1 AND k.transaction_id > ?2",
        ),
    };
    let mut args: Vec<Arg<'_>> = vec![Arg::Int(org.0), Arg::Text(after), Arg::Int(limit)];
    if let Some(ids) = only {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = (0..ids.len()).map(|i| format!("?{}", i + 4)).collect();
        sql.push_str(&format!(" AND t.supplier_id IN ({})", marks.join(", ")));
        args.extend(ids.iter().map(|s| Arg::Text(s)));
    }
    sql.push_str(match tx.dialect() {
        Dialect::Sqlite => " ORDER BY transaction_id LIMIT ?3",
        Dialect::Postgres => " ORDER BY k.transaction_id LIMIT ?3",
    });
    tx.query(&sql, &args, |r| {
        let bad = |m: String| StoreError::Invalid(format!("stored line: {m}"));
        let id = r.string(0)?;
        let b = Body::decode(r.blob(3)?)?;
        let supplier_id = r.opt_string(2)?;
        Ok((
            id.clone(),
            Line {
                transaction_id: Some(id),
                date: Some(Date::from_yyyymmdd(r.u32(1)?).ok_or_else(|| bad("bad day".into()))?),
                // The stored supplier_id is the line's supplier key (its id, else its name).
                supplier_id: if b.supplier_id_given {
                    supplier_id
                } else {
                    None
                },
                supplier_name: b.supplier_name,
                description: b.description,
                amount: b.amount,
                currency: b
                    .currency
                    .map(|c| Currency::parse(&c))
                    .transpose()
                    .map_err(bad)?,
                naics: b.naics_code.and_then(Naics::from_code),
                category: b
                    .category_in
                    .and_then(|c| u8::try_from(c).ok())
                    .and_then(vcci_core::Category::new),
                quantity: b.quantity,
                unit: b.unit.map(|u| Unit::parse(&u)).transpose().map_err(bad)?,
                activity_id: b.activity_id,
                country: b.country,
                price_basis: basis_from_code(b.price_basis),
            },
        ))
    })
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
