//! PostgreSQL-only parts of the write path: yearly partitions of `transactions` created as
//! data arrives, and the bulk line write through COPY into a staging table.
//!
//! A batch of lines is written in three round trips whatever its size: binary COPY of the
//! batch into a temporary staging table; one statement that inserts the keys that are new
//! into `transaction_keys` and those lines into `transactions`, returning the lines whose key
//! already existed; and, only for those (re-imports, updates), the line-by-line path that
//! compares content hashes. Measured here before the design: COPY of 1M line-shaped rows
//! ~200k rows/s, COPY into staging then one `INSERT ... ON CONFLICT DO UPDATE` of 1M rows
//! ~75k rows/s; so new lines never go through a conflict update.

use std::collections::HashMap;

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};

use crate::lines::{
    LineOutcome, NewSuppliers, PreparedLine, method_code, old_contribution, old_sql,
};
use crate::readmodel::{Delta, kg_to_mg, usd_to_musd};
use crate::sql::{Arg, Conn, Tx, args};
use crate::{OrgId, Result, StoreError, now_rfc3339};

/// Columns of a stored line, in the order of `line_args`.
const LINE_COLS: &str = "org_id, transaction_id, day, supplier_id, co2e_kg, co2e_mg, spend_usd, \
    spend_musd, category, method, data_quality, content_hash, import_id, source_line, body";

const LINE_TYPES: [Type; 15] = [
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
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::BYTEA,
];

/// Rows per multi-row statement where COPY is not used.
const ROWS_PER_STATEMENT: usize = 500;

fn line_args<'a>(org: OrgId, p: &'a PreparedLine, import_id: Option<i64>) -> [Arg<'a>; 15] {
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
        Arg::Int(p.hash),
        import_id.into(),
        p.source_line.into(),
        Arg::Blob(&p.body),
    ]
}

fn year(p: &PreparedLine) -> u32 {
    p.line.date.map_or(0, |d| d.yyyymmdd() / 10_000)
}

fn partition_ddl(y: u32) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS transactions_y{y} PARTITION OF transactions
         FOR VALUES FROM ({}) TO ({})",
        y * 10_000,
        (y + 1) * 10_000
    )
}

/// Years among `lines` whose partition this connection has not seen yet.
fn unknown_years(conn: &Conn, lines: &[PreparedLine]) -> Vec<u32> {
    let Some(pg) = conn.pg() else {
        return Vec::new();
    };
    let known = pg.partitions.borrow();
    let mut years: Vec<u32> = lines
        .iter()
        .map(year)
        .filter(|y| !known.contains(y))
        .collect();
    years.sort_unstable();
    years.dedup();
    years
}

/// Whether writing `lines` needs a partition this connection has not checked (always false
/// on SQLite). The import ends its transaction before such a batch so that the partition is
/// created outside it.
pub(crate) fn needs_partitions(conn: &Conn, lines: &[PreparedLine]) -> bool {
    !unknown_years(conn, lines).is_empty()
}

/// Advisory lock serializing partition creation across nodes.
const PARTITION_LOCK: i64 = 0x7663_6369_0002;

/// Creates the yearly partitions `lines` need, each in a short transaction of its own (a new
/// partition locks the parent table; inside a long write it would block readers until the
/// write commits). Must be called outside a transaction. No-op on SQLite.
pub(crate) fn ensure_partitions(conn: &Conn, lines: &[PreparedLine]) -> Result<()> {
    for y in unknown_years(conn, lines) {
        let name = format!("transactions_y{y}");
        let exists = conn.query_one(
            "SELECT CASE WHEN to_regclass(?1) IS NULL THEN 0 ELSE 1 END",
            args![&name],
            |r| r.i64(0),
        )?;
        if exists == 0 {
            let tx = conn.begin()?;
            tx.query_one(
                "SELECT pg_advisory_xact_lock(?1)",
                args![PARTITION_LOCK],
                |_| Ok(()),
            )?;
            tx.batch(&partition_ddl(y))?;
            tx.commit()?;
        }
        if let Some(pg) = conn.pg() {
            pg.partitions.borrow_mut().insert(y);
        }
    }
    Ok(())
}

/// Inside a transaction: partitions that are still missing are created here (an API write
/// of a new year, say), holding the parent's lock until the transaction ends.
fn ensure_partitions_in_tx(tx: &Tx<'_>, lines: &[PreparedLine]) -> Result<()> {
    for y in unknown_years(tx, lines) {
        tx.query_one(
            "SELECT pg_advisory_xact_lock(?1)",
            args![PARTITION_LOCK],
            |_| Ok(()),
        )?;
        tx.batch(&partition_ddl(y))?;
        if let Some(pg) = tx.pg() {
            // Only remembered once committed would be exact; a rollback merely costs a
            // failed insert later, which recreates nothing (the name is checked first).
            pg.partitions.borrow_mut().insert(y);
        }
    }
    Ok(())
}

const STAGING_DDL: &str = "CREATE TEMP TABLE IF NOT EXISTS vcci_staging (
    seq INTEGER NOT NULL, org_id BIGINT NOT NULL, transaction_id TEXT COLLATE \"C\" NOT NULL,
    day INTEGER NOT NULL, supplier_id TEXT COLLATE \"C\", co2e_kg DOUBLE PRECISION NOT NULL,
    co2e_mg BIGINT NOT NULL, spend_usd DOUBLE PRECISION, spend_musd BIGINT NOT NULL,
    category SMALLINT NOT NULL, method SMALLINT NOT NULL, data_quality SMALLINT NOT NULL,
    content_hash BIGINT NOT NULL, import_id BIGINT, source_line BIGINT, body BYTEA NOT NULL)";

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
    ensure_partitions_in_tx(tx, lines)?;
    // The first occurrence of each id goes through the bulk path; a later occurrence in the
    // same batch is handled after it, line by line, as it would be in order.
    let mut first: HashMap<&str, usize> = HashMap::with_capacity(lines.len());
    let mut slow: Vec<usize> = Vec::new();
    let mut bulk: Vec<usize> = Vec::with_capacity(lines.len());
    for (i, p) in lines.iter().enumerate() {
        let id = p.line.transaction_id.as_deref().unwrap_or_default();
        if first.insert(id, i).is_some() {
            slow.push(i);
        } else {
            bulk.push(i);
        }
    }
    let mut out: Vec<Option<LineOutcome>> = vec![None; lines.len()];
    if !bulk.is_empty() {
        tx.batch(STAGING_DDL)?;
        tx.batch("TRUNCATE vcci_staging")?;
        copy_staging(tx, org, lines, &bulk, import_id)?;
        let existing = tx.query(
            &format!(
                "WITH new AS (
                   INSERT INTO transaction_keys (org_id, transaction_id, day)
                   SELECT org_id, transaction_id, day FROM vcci_staging
                   ON CONFLICT DO NOTHING RETURNING transaction_id),
                 ins AS (
                   INSERT INTO transactions ({LINE_COLS})
                   SELECT {cols} FROM vcci_staging s JOIN new USING (transaction_id))
                 SELECT s.seq FROM vcci_staging s LEFT JOIN new USING (transaction_id)
                 WHERE new.transaction_id IS NULL",
                cols = LINE_COLS
                    .split(", ")
                    .map(|c| format!("s.{c}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            &[],
            |r| Ok(r.i64(0)? as usize),
        )?;
        let mut exists = vec![false; lines.len()];
        for i in existing {
            exists[i] = true;
        }
        for &i in &bulk {
            if exists[i] {
                slow.push(i);
            } else {
                if !prefilled {
                    delta.add(&lines[i].contribution());
                }
                out[i] = Some(LineOutcome::Inserted);
            }
        }
    }
    slow.sort_unstable();
    for i in slow {
        out[i] = Some(write_one(tx, org, &lines[i], import_id, delta, prefilled)?);
    }
    out.into_iter()
        .map(|o| o.ok_or_else(|| StoreError::Invalid("a line was not written".into())))
        .collect()
}

fn copy_staging(
    tx: &Tx<'_>,
    org: OrgId,
    lines: &[PreparedLine],
    bulk: &[usize],
    import_id: Option<i64>,
) -> Result<()> {
    let pg = tx.pg().expect("a PostgreSQL connection");
    let mut client = pg.client.borrow_mut();
    let sink = client.copy_in(&format!(
        "COPY vcci_staging (seq, {LINE_COLS}) FROM STDIN (FORMAT binary)"
    ))?;
    let mut types = vec![Type::INT4];
    types.extend(LINE_TYPES.iter().cloned());
    let mut w = BinaryCopyInWriter::new(sink, &types);
    for &i in bulk {
        let seq = Arg::Int(i as i64);
        let a = line_args(org, &lines[i], import_id);
        let mut row: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(16);
        row.push(&seq);
        row.extend(a.iter().map(|x| x as &(dyn ToSql + Sync)));
        w.write(&row)?;
    }
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
    let id = p.line.transaction_id.as_deref().unwrap_or_default();
    let old = tx.query_opt(
        &old_sql(crate::Dialect::Postgres),
        args![org.0, id],
        old_contribution,
    )?;
    let a = line_args(org, p, import_id);
    let Some((hash, old_import, old_line, c)) = old else {
        tx.execute(
            "INSERT INTO transaction_keys (org_id, transaction_id, day) VALUES (?1, ?2, ?3)",
            &a[..3],
        )?;
        tx.execute(
            &format!(
                "INSERT INTO transactions ({LINE_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
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
                "UPDATE transactions SET import_id = ?4, source_line = ?5
                 WHERE org_id = ?1 AND day = ?2 AND transaction_id = ?3",
                args![org.0, c.day, id, import_id, p.source_line],
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
               content_hash = ?12, import_id = ?13, source_line = ?14, body = ?15
             WHERE org_id = ?1 AND day = ?16 AND transaction_id = ?2",
            &all,
        )?;
        if p.line.date.map(|d| d.yyyymmdd()) != Some(c.day) {
            tx.execute(
                "UPDATE transaction_keys SET day = ?3 WHERE org_id = ?1 AND transaction_id = ?2",
                &a[..3],
            )?;
        }
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
