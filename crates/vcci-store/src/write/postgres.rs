//! How PostgreSQL writes a batch (`PgWriter`).
//!
//! A batch of new lines is written in two round trips whatever its size: binary COPY of their
//! keys straight into `transaction_keys` (under a savepoint: the key index refuses an id
//! that exists, and the batch then asks which ids exist — one array-parameter query probed in
//! the key index) and binary COPY of the lines straight into `transactions` (`copy.rs`).
//! Only lines whose id exists (re-imports, updates) take the line-by-line path. Writers of
//! one organization take turns (`turns.rs`) for the transaction, so no other writer can add
//! one of the batch's ids between the query and the COPY. A read-model flush is one
//! statement per table, its rows sent as column arrays and turned back into rows by
//! `unnest` (`upsert_columns`).
//!
//! Measured here (10,000 lines into a 1M-line table, PostgreSQL 15, 2 cores): COPY into a
//! staging table then `INSERT ... SELECT ... ON CONFLICT DO NOTHING` into both tables took
//! ~220 ms; COPY straight into the tables ~125 ms (keys 18 ms, lines 105 ms: heap ~25 ms and
//! ~25 ms per index — the primary key and the supplier and category indexes). COPY uses
//! PostgreSQL's multi-row insert; `INSERT ... SELECT` inserts row by row.

use std::collections::HashMap;

use postgres::types::Type;

use super::copy::{KEY_COLS, LINE_COLS, copy_keys, copy_lines, key_args, line_args};
use super::first_load::{self, FirstLoad};
use super::{
    Delta, LineOutcome, PreparedLine, StoredKey, WriteBatch, account, all_decided, decide,
    first_occurrences, partitions, stored_line, turns,
};
use crate::conn::{Arg, Conn, Tx, args};
use crate::model::orgs::OrgId;
use crate::{Result, StoreError};

/// Batches after a refused optimistic COPY that look up their ids first.
const PROBE_AFTER_CONFLICT: u32 = 8;

/// Rows per multi-row statement where COPY is not used.
pub(super) const ROWS_PER_STATEMENT: usize = 500;

/// A PostgreSQL writer's state across the batches it writes.
#[derive(Debug, Default)]
pub(crate) struct PgWriter {
    /// Batches still to look up their ids before writing, after a batch met existing ones.
    probe_next: u32,
    /// The write bucket whose ids this writer alone writes (an import's parallel writers),
    /// or None for every bucket.
    bucket: Option<u32>,
    /// An organization's first load in progress on this writer's transaction.
    first_load: Option<FirstLoad>,
}

/// Where a batch's lines stand after their keys were settled.
struct Settled {
    /// Lines whose id is new: their keys are written, their lines still to COPY.
    new: Vec<usize>,
    /// Lines to write one by one (ids that exist with other content, later lines of ids
    /// repeated in the batch).
    one_by_one: Vec<usize>,
}

impl PgWriter {
    pub(super) fn for_bucket(bucket: u32) -> PgWriter {
        PgWriter {
            bucket: Some(bucket),
            ..PgWriter::default()
        }
    }

    pub(super) fn bucket(&self) -> Option<u32> {
        self.bucket
    }

    pub(super) fn ensure_partitions(
        &self,
        conn: &Conn,
        org: OrgId,
        lines: &[PreparedLine],
    ) -> Result<()> {
        if self.first_load.as_ref().is_some_and(|f| f.org == org) {
            return Ok(());
        }
        partitions::ensure(conn, org, lines, self.bucket)
    }

    pub(super) fn begin_first_load(&mut self, tx: &Tx<'_>, org: OrgId) -> Result<bool> {
        turns::lock_org(tx, org, self.bucket)?;
        if !first_load::possible(tx, org)? {
            return Ok(false);
        }
        self.first_load = Some(FirstLoad::begin(tx, org)?);
        Ok(true)
    }

    pub(super) fn finish_first_load(&mut self, tx: &Tx<'_>) -> Result<()> {
        match self.first_load.take() {
            Some(load) => load.finish(tx),
            None => Ok(()),
        }
    }

    pub(super) fn write(
        &mut self,
        tx: &Tx<'_>,
        batch: &WriteBatch<'_>,
        delta: &mut Delta,
    ) -> Result<Vec<LineOutcome>> {
        let (org, lines) = (batch.org, batch.lines);
        let loading = self.first_load.as_ref().is_some_and(|f| f.org == org);
        if !loading {
            partitions::ensure_in_tx(tx, org, lines, self.bucket)?;
        }
        turns::lock_org(tx, org, self.bucket)?;
        let mut out: Vec<Option<LineOutcome>> = vec![None; lines.len()];
        let Settled {
            new,
            mut one_by_one,
        } = self.settle_keys(tx, batch, delta, &mut out)?;
        match self.first_load.as_mut() {
            Some(load) if loading => load.copy(tx, lines, &new)?,
            _ => copy_lines(tx, "transactions", org, lines, &new)?,
        }
        for i in new {
            account(
                delta,
                &LineOutcome::Inserted,
                &lines[i],
                None,
                batch.counted,
            );
            out[i] = Some(LineOutcome::Inserted);
        }
        one_by_one.sort_unstable();
        let first: HashMap<&str, usize> = if loading {
            lines
                .iter()
                .enumerate()
                .rev()
                .map(|(i, p)| (p.id(), i))
                .collect()
        } else {
            HashMap::new()
        };
        for i in one_by_one {
            out[i] = Some(match first.get(lines[i].id()) {
                // In a first load, the first line of the id is in a table that `write_one`'s
                // lookup does not read yet: this line is compared with it directly.
                Some(&f) if f != i => repeat_in_first_load(batch, i, f, &out, delta),
                _ => write_one(tx, batch, &lines[i], delta)?,
            });
        }
        all_decided(out)
    }

    /// Writes the keys of the batch's new ids and settles the lines whose id exists where
    /// the keys alone decide (duplicates, unchanged lines); returns the rest.
    fn settle_keys(
        &mut self,
        tx: &Tx<'_>,
        batch: &WriteBatch<'_>,
        delta: &mut Delta,
        out: &mut [Option<LineOutcome>],
    ) -> Result<Settled> {
        let (first, repeats) = first_occurrences(batch.lines);
        let mut s = Settled {
            new: Vec::new(),
            one_by_one: repeats,
        };
        if first.is_empty() {
            return Ok(s);
        }
        if let Some(load) = self.first_load.as_mut().filter(|f| f.org == batch.org) {
            let (mut new, suspects) = load.split_new(batch.lines, &first);
            if !suspects.is_empty() {
                let (fresh, changed) = settle_existing(tx, batch, &suspects, delta, out)?;
                if !changed.is_empty() {
                    // Every key of the organization is this import's: only duplicates.
                    return Err(StoreError::internal(
                        "a first load met lines it did not write",
                    ));
                }
                new.extend(fresh);
                new.sort_unstable();
            }
            copy_keys(tx, batch.org, batch.lines, &new, batch.import_id)?;
            s.new = new;
            return Ok(s);
        }
        // Optimistic first: COPY the keys as if all were new, under a savepoint; the key
        // index refuses an existing one, and then the batch reads which of its ids exist (as
        // do the next few batches: a re-import or an update meets many).
        if self.probe_next == 0 {
            tx.batch("SAVEPOINT vcci_bulk")?;
            match copy_keys(tx, batch.org, batch.lines, &first, batch.import_id) {
                Ok(()) => {
                    tx.batch("RELEASE SAVEPOINT vcci_bulk")?;
                    s.new = first;
                    return Ok(s);
                }
                Err(e) if e.is_unique_violation() => {
                    tx.batch("ROLLBACK TO SAVEPOINT vcci_bulk")?;
                    self.probe_next = PROBE_AFTER_CONFLICT;
                }
                Err(e) => return Err(e),
            }
        } else {
            self.probe_next -= 1;
        }
        let (new, changed) = settle_existing(tx, batch, &first, delta, out)?;
        copy_keys(tx, batch.org, batch.lines, &new, batch.import_id)?;
        s.new = new;
        s.one_by_one.extend(changed);
        Ok(s)
    }
}

/// A later line of an id whose first line a first load wrote in this batch: the outcome
/// rule against that line's key, as if it were stored.
fn repeat_in_first_load(
    batch: &WriteBatch<'_>,
    i: usize,
    f: usize,
    out: &[Option<LineOutcome>],
    delta: &mut Delta,
) -> LineOutcome {
    let first_line = match out[f] {
        Some(LineOutcome::Duplicate { first_line }) => Some(first_line),
        _ => batch.lines[f].source_line,
    };
    let key = StoredKey {
        hash: batch.lines[f].hash,
        import_id: batch.import_id,
        source_line: first_line,
        day: batch.lines[f].day(),
    };
    let p = &batch.lines[i];
    let outcome = decide(Some(&key), p, batch.import_id, batch.closed);
    account(delta, &outcome, p, None, batch.counted);
    outcome
}

/// The keys of an organization's ids (`$1` the organization, `$2` the ids, each once) that
/// exist: id, content hash, the import and line that last wrote or saw it.
///
/// One lookup of the key index per id, whatever the table's statistics say: each id is a
/// `LATERAL` subquery with `LIMIT 1` (harmless on a unique key), which the planner cannot
/// flatten into a join. Both flat forms were planned from the statistics, and those predate
/// the lines right after a large import (autovacuum has not analyzed the table yet):
/// `transaction_id = ANY($2)` was then served from the index on `org_id` alone, filtering
/// every key of the organization (measured: 364 ms against 5 ms for 1,667 ids; a 1M-line
/// re-import spent 55 of its 67 backend seconds there), and a join with `unnest($2)` became
/// a hash join over them. `tests/postgres.rs` checks the plan; public so that it can.
pub const EXISTING_KEYS_SQL: &str =
    "SELECT k.transaction_id, k.content_hash, k.import_id, k.source_line, k.day
     FROM unnest($2::text[]) AS u(id)
     CROSS JOIN LATERAL (
         SELECT transaction_id, content_hash, import_id, source_line, day FROM transaction_keys
         WHERE org_id = $1 AND transaction_id = u.id LIMIT 1
     ) k";

/// Of `which` (first occurrences in the batch), the lines whose id is new, and those whose
/// id exists with other content; the rest (duplicates within the import, unchanged lines)
/// are settled here. Everything comes from `transaction_keys` alone (one index probe per
/// id, an array parameter), and unchanged lines are marked as seen by this import there, in
/// one statement: the lines themselves are not rewritten, so a re-import of an unchanged
/// file stays a few round trips per batch.
fn settle_existing(
    tx: &Tx<'_>,
    batch: &WriteBatch<'_>,
    which: &[usize],
    delta: &mut Delta,
    out: &mut [Option<LineOutcome>],
) -> Result<(Vec<usize>, Vec<usize>)> {
    let lines = batch.lines;
    let ids: Vec<&str> = which.iter().map(|&i| lines[i].id()).collect();
    let pg = tx
        .pg()
        .ok_or_else(|| StoreError::internal("the PostgreSQL writer on another backend"))?;
    let rows = {
        let mut client = pg.client.borrow_mut();
        let st = client.prepare_typed(EXISTING_KEYS_SQL, &[Type::INT8, Type::TEXT_ARRAY])?;
        client.query(&st, &[&batch.org.0, &ids])?
    };
    let mut stored: HashMap<&str, StoredKey> = HashMap::with_capacity(rows.len());
    for r in &rows {
        stored.insert(
            r.try_get(0)?,
            StoredKey {
                hash: r.try_get(1)?,
                import_id: r.try_get(2)?,
                source_line: r.try_get(3)?,
                day: u32::try_from(r.try_get::<_, i32>(4)?)
                    .map_err(|_| StoreError::corrupt("a stored line's day"))?,
            },
        );
    }
    let (mut new, mut changed) = (Vec::new(), Vec::new());
    let (mut touch_ids, mut touch_lines) = (Vec::new(), Vec::new());
    for &i in which {
        let p = &lines[i];
        let outcome = decide(stored.get(p.id()), p, batch.import_id, batch.closed);
        match outcome {
            LineOutcome::Inserted => {
                new.push(i);
                continue;
            }
            LineOutcome::Updated { .. } => {
                changed.push(i);
                continue;
            }
            LineOutcome::Unchanged => {
                touch_ids.push(p.id());
                touch_lines.push(p.source_line);
            }
            LineOutcome::Duplicate { .. } | LineOutcome::PeriodClosed { .. } => {}
        }
        account(delta, &outcome, p, None, batch.counted);
        out[i] = Some(outcome);
    }
    if let Some(imp) = batch.import_id
        && !touch_ids.is_empty()
    {
        let mut client = pg.client.borrow_mut();
        let st = client.prepare_typed(
            "UPDATE transaction_keys k SET import_id = $2, source_line = u.line
             FROM unnest($3::text[], $4::int8[]) AS u(id, line)
             WHERE k.org_id = $1 AND k.transaction_id = u.id",
            &[Type::INT8, Type::INT8, Type::TEXT_ARRAY, Type::INT8_ARRAY],
        )?;
        client.execute(&st, &[&batch.org.0, &imp, &touch_ids, &touch_lines])?;
    }
    Ok((new, changed))
}

/// One line whose key may exist, by the outcome rule: inserted, a duplicate within its
/// import, unchanged (the import that saw it last is recorded) or updated, with its
/// read-model correction.
fn write_one(
    tx: &Tx<'_>,
    batch: &WriteBatch<'_>,
    p: &PreparedLine,
    delta: &mut Delta,
) -> Result<LineOutcome> {
    let (org, id) = (batch.org, p.id());
    let stored = stored_line(tx, org, id)?;
    let outcome = decide(
        stored.as_ref().map(|s| &s.0),
        p,
        batch.import_id,
        batch.closed,
    );
    let k = key_args(org, p, batch.import_id);
    let a = line_args(org, p);
    match (&outcome, &stored) {
        (LineOutcome::Inserted, _) => {
            tx.execute(
                &format!(
                    "INSERT INTO transaction_keys ({KEY_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
                ),
                &k,
            )?;
            tx.execute(
                &format!(
                    "INSERT INTO transactions ({LINE_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
                ),
                &a,
            )?;
        }
        (LineOutcome::Unchanged, _) if batch.import_id.is_some() => {
            tx.execute(
                "UPDATE transaction_keys SET import_id = ?3, source_line = ?4
                 WHERE org_id = ?1 AND transaction_id = ?2",
                args![org.0, id, batch.import_id, p.source_line],
            )?;
        }
        (LineOutcome::Updated { .. }, Some((_, old))) => {
            // Setting `day` moves the row to another partition when its year changed.
            let mut all: Vec<Arg<'_>> = a.to_vec();
            all.push(Arg::Int(i64::from(old.day)));
            tx.execute(
                "UPDATE transactions SET day = ?3, supplier_id = ?4, co2e_kg = ?5, co2e_mg = ?6,
                   spend_usd = ?7, spend_musd = ?8, category = ?9, method = ?10, data_quality = ?11,
                   body = ?12, review = ?13
                 WHERE org_id = ?1 AND day = ?14 AND transaction_id = ?2",
                &all,
            )?;
            tx.execute(
                "UPDATE transaction_keys SET day = ?3, content_hash = ?4, import_id = ?5, source_line = ?6
                 WHERE org_id = ?1 AND transaction_id = ?2",
                &k,
            )?;
        }
        _ => {}
    }
    account(
        delta,
        &outcome,
        p,
        stored.as_ref().map(|s| &s.1),
        batch.counted,
    );
    Ok(outcome)
}

/// One column of a read-model upsert, sent as one array parameter.
enum Column<'a> {
    Int(Vec<Option<i64>>),
    Text(Vec<Option<&'a str>>),
}

/// Adds the sums of `rows` to `table`: every column travels as one array
/// (`unnest` turns them back into rows), so a flush of thousands of keys is one statement
/// and one plan. `rows` hold the key columns then the sums, in key order, each key once.
pub(crate) fn upsert_columns(
    tx: &Tx<'_>,
    table: &str,
    cols: &str,
    key_cols: &[&str],
    sets: &str,
    rows: &[Vec<Arg<'_>>],
) -> Result<()> {
    let Some(first) = rows.first() else {
        return Ok(());
    };
    let mut columns: Vec<Column<'_>> = (0..first.len())
        .map(|c| {
            if rows.iter().any(|r| matches!(r[c], Arg::Text(_))) {
                Column::Text(Vec::with_capacity(rows.len()))
            } else {
                Column::Int(Vec::with_capacity(rows.len()))
            }
        })
        .collect();
    for row in rows {
        for (col, arg) in columns.iter_mut().zip(row) {
            match (col, *arg) {
                (Column::Int(v), Arg::Int(i)) => v.push(Some(i)),
                (Column::Int(v), Arg::Null) => v.push(None),
                (Column::Text(v), Arg::Text(s)) => v.push(Some(s)),
                (Column::Text(v), Arg::Null) => v.push(None),
                (_, other) => {
                    return Err(StoreError::internal(format!(
                        "read-model upsert into {table}: unexpected value {other:?}"
                    )));
                }
            }
        }
    }
    let arrays: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| match c {
            Column::Int(_) => format!("${}::int8[]", i + 1),
            Column::Text(_) => format!("${}::text[]", i + 1),
        })
        .collect();
    let sql = format!(
        "INSERT INTO {table} ({cols}) SELECT * FROM unnest({}) ON CONFLICT ({}) DO UPDATE SET {sets}",
        arrays.join(", "),
        key_cols.join(", ")
    );
    let params: Vec<&(dyn postgres::types::ToSql + Sync)> = columns
        .iter()
        .map(|c| match c {
            Column::Int(v) => v as &(dyn postgres::types::ToSql + Sync),
            Column::Text(v) => v as &(dyn postgres::types::ToSql + Sync),
        })
        .collect();
    let pg = tx.pg().expect("a PostgreSQL connection");
    pg.client.borrow_mut().execute(sql.as_str(), &params)?;
    Ok(())
}
