//! How SQLite writes a batch: its new lines in index order, whole chunks of them per
//! multi-row INSERT, and line by line where ids exist.
//!
//! Index order: the batch's lines are written sorted by `(day, transaction_id)`, the key of
//! the date index (and, in most exports, nearly the order of the ids too), rather than in
//! the file's order. A file in random date order otherwise inserts every line at a random
//! place of both indexes. Sorting changes no outcome: only the first line of each id takes
//! the sorted pass; a later line with the same id follows in file order, as a duplicate or
//! an update of the first, exactly as without sorting. Measured in BENCHMARKS.md.

use rusqlite::{CachedStatement, Statement, params};

use super::{
    LineOutcome, StoredKey, WriteBatch, account, all_decided, decide, first_occurrences,
    stored_row, stored_sql,
};
use crate::codec::method_code;
use crate::conn::{Dialect, Row, Tx};
use crate::model::orgs::OrgId;
use crate::write::{Delta, PreparedLine};
use crate::{Result, StoreError};

/// The columns of `transactions` a write sets, in the order of `bind_at`.
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
    "review",
];

/// Lines per multi-row INSERT on the fast path.
const CHUNK: usize = 32;

/// After a chunk meets existing ids (a re-import, an update), this many following chunks go
/// line by line rather than paying for a chunk attempt each.
const SLOW_CHUNKS_AFTER_MISS: u32 = 8;

#[derive(Debug, Default)]
pub(crate) struct SqliteWriter {
    /// Chunks still to write line by line (see `SLOW_CHUNKS_AFTER_MISS`).
    slow_chunks: u32,
}

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

/// Binds one line's values to parameters `at + 1 ..= at + COLS.len()`.
fn bind_at(
    st: &mut Statement<'_>,
    at: usize,
    batch: &WriteBatch<'_>,
    p: &PreparedLine,
) -> rusqlite::Result<()> {
    let e = &p.emission;
    st.raw_bind_parameter(at + 1, batch.org.0)?;
    st.raw_bind_parameter(at + 2, p.line.transaction_id.as_deref())?;
    st.raw_bind_parameter(at + 3, p.line.date.map(|d| d.yyyymmdd()))?;
    st.raw_bind_parameter(at + 4, p.supplier_key())?;
    st.raw_bind_parameter(at + 5, e.co2e_kg)?;
    st.raw_bind_parameter(at + 6, p.spend_usd)?;
    st.raw_bind_parameter(at + 7, e.category.number())?;
    st.raw_bind_parameter(at + 8, method_code(e.method))?;
    st.raw_bind_parameter(at + 9, e.data_quality)?;
    st.raw_bind_parameter(at + 10, p.hash)?;
    st.raw_bind_parameter(at + 11, batch.import_id)?;
    st.raw_bind_parameter(at + 12, p.source_line)?;
    st.raw_bind_parameter(at + 13, &p.body[..])?;
    st.raw_bind_parameter(at + 14, i64::from(p.needs_review()))?;
    Ok(())
}

/// The order in which a batch's lines are written: the first line of each id sorted by the
/// date index's key, then the later lines of repeated ids in file order.
fn write_order(lines: &[PreparedLine]) -> (Vec<usize>, Vec<usize>) {
    let (mut first, repeats) = first_occurrences(lines);
    first.sort_unstable_by_key(|&i| (lines[i].day(), lines[i].id()));
    (first, repeats)
}

/// The statements of one batch's write (cached by the connection across batches).
struct Statements<'c> {
    chunk: CachedStatement<'c>,
    insert: CachedStatement<'c>,
    upsert: CachedStatement<'c>,
    stored: CachedStatement<'c>,
    /// The import and source line stored under an id (tells a chunk's own rows from older).
    mine: CachedStatement<'c>,
    /// Marks an unchanged line as seen by the import.
    touch: CachedStatement<'c>,
}

impl<'c> Statements<'c> {
    fn new(c: &'c rusqlite::Connection) -> Result<Self> {
        Ok(Statements {
            chunk: c.prepare_cached(&chunk_insert_sql())?,
            insert: c.prepare_cached(&insert_sql("DO NOTHING"))?,
            upsert: c.prepare_cached(&upsert_sql())?,
            stored: c.prepare_cached(stored_sql(Dialect::Sqlite))?,
            mine: c.prepare_cached(
                "SELECT import_id, source_line FROM transactions WHERE org_id = ?1 AND transaction_id = ?2",
            )?,
            touch: c.prepare_cached(
                "UPDATE transactions SET import_id = ?3, source_line = ?4 WHERE org_id = ?1 AND transaction_id = ?2",
            )?,
        })
    }
}

impl SqliteWriter {
    pub(super) fn write(
        &mut self,
        tx: &Tx<'_>,
        batch: &WriteBatch<'_>,
        delta: &mut Delta,
    ) -> Result<Vec<LineOutcome>> {
        let conn = tx
            .sqlite()
            .ok_or_else(|| StoreError::internal("the SQLite writer on another backend"))?;
        let mut st = Statements::new(conn)?;
        let (first, repeats) = write_order(batch.lines);
        let mut out: Vec<Option<LineOutcome>> = vec![None; batch.lines.len()];
        for chunk in first.chunks(CHUNK) {
            let inserted = self.try_chunk(&mut st, batch, chunk)?;
            for &i in chunk {
                let p = &batch.lines[i];
                let new = match inserted {
                    Some(n) if n == CHUNK => true,
                    Some(_) => is_mine(&mut st.mine, batch, p)?,
                    None => {
                        bind_at(&mut st.insert, 0, batch, p)?;
                        st.insert.raw_execute()? == 1
                    }
                };
                out[i] = Some(if new {
                    account(delta, &LineOutcome::Inserted, p, None, batch.counted);
                    LineOutcome::Inserted
                } else {
                    write_existing(&mut st, batch, p, delta)?
                });
            }
        }
        for i in repeats {
            out[i] = Some(write_existing(&mut st, batch, &batch.lines[i], delta)?);
        }
        all_decided(out)
    }

    /// Inserts a whole chunk of an import's lines in one statement (measured: per-statement
    /// work — cursors opened and closed on the table and both indexes — was a large part of
    /// the writer's time), skipping ids that exist; returns how many rows it inserted, or
    /// None where the chunk goes line by line. Only imports: their rows carry the import id
    /// and source line, which tell this statement's rows from older ones.
    fn try_chunk(
        &mut self,
        st: &mut Statements<'_>,
        batch: &WriteBatch<'_>,
        chunk: &[usize],
    ) -> Result<Option<usize>> {
        let eligible = batch.import_id.is_some() && chunk.len() == CHUNK && self.slow_chunks == 0;
        self.slow_chunks = self.slow_chunks.saturating_sub(1);
        if !eligible {
            return Ok(None);
        }
        for (r, &i) in chunk.iter().enumerate() {
            bind_at(&mut st.chunk, r * COLS.len(), batch, &batch.lines[i])?;
        }
        let n = st.chunk.raw_execute()?;
        if n < CHUNK {
            self.slow_chunks = SLOW_CHUNKS_AFTER_MISS;
        }
        Ok(Some(n))
    }
}

/// Whether the row stored under `p`'s id is the one this import just wrote for `p`.
fn is_mine(mine: &mut Statement<'_>, batch: &WriteBatch<'_>, p: &PreparedLine) -> Result<bool> {
    let (imp, line): (Option<i64>, Option<i64>) =
        mine.query_row(params![batch.org.0, p.id()], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(imp == batch.import_id && line == p.source_line)
}

/// A line whose id exists: a duplicate within its import, unchanged (the import that saw
/// it is recorded) or updated, by the outcome rule, with its read-model correction.
fn write_existing(
    st: &mut Statements<'_>,
    batch: &WriteBatch<'_>,
    p: &PreparedLine,
    delta: &mut Delta,
) -> Result<LineOutcome> {
    let (key, old) = stored_of(&mut st.stored, batch.org, p.id())?;
    let outcome = decide(Some(&key), p, batch.import_id, batch.closed);
    match outcome {
        LineOutcome::Unchanged if batch.import_id.is_some() => {
            st.touch
                .execute(params![batch.org.0, p.id(), batch.import_id, p.source_line])?;
        }
        LineOutcome::Updated { .. } => {
            bind_at(&mut st.upsert, 0, batch, p)?;
            st.upsert.raw_execute()?;
        }
        _ => {}
    }
    account(delta, &outcome, p, Some(&old), batch.counted);
    Ok(outcome)
}

fn stored_of(
    st: &mut Statement<'_>,
    org: OrgId,
    id: &str,
) -> Result<(StoredKey, super::Contribution<'static>)> {
    let mut rows = st.query(params![org.0, id])?;
    let r = rows.next()?.ok_or_else(|| {
        StoreError::internal(format!(
            "line {id} was refused as existing but is not stored"
        ))
    })?;
    stored_row(&Row::Sqlite(r))
}
