//! The write path of lines: every write of a line (an import, an API upsert, a delete, a
//! recalculation) goes through here and keeps the read models in step in the same
//! transaction.
//!
//! - `prepare.rs`: a parsed line calculated and encoded into a [`PreparedLine`].
//! - this file: the [`WriteBatch`] a caller hands over, the one outcome rule ([`decide`])
//!   and the one read-model correction ([`account`]), the [`LineWriter`] chosen for the
//!   connection's backend, and the `Db` methods callers use.
//! - `sqlite.rs`, `postgres.rs`: how each backend writes a batch (multi-row inserts in
//!   index order; binary COPY of keys and lines, with `copy.rs` encoding the rows).
//! - `partitions.rs`, `first_load.rs`, `turns.rs`: PostgreSQL's partitions created as lines
//!   arrive, an organization's first load built apart and attached, and the advisory write
//!   turns of an organization's writers.
//! - `readmodel.rs`: read-model deltas and their flush; `suppliers.rs`: supplier rows a
//!   batch needs and supplier upserts that recalculate lines; `pcfs.rs`: supplier product
//!   footprints received, which recalculate their supplier's lines; `recalc.rs`:
//!   recalculation.
//!
//! Not here: reading lines back (`model::lines`), the CSV import's threads (`import`).

mod copy;
mod first_load;
mod merge;
mod partitions;
pub mod pcfs;
mod periods;
mod postgres;
mod prepare;
pub(crate) mod readmodel;
pub mod recalc;
mod restate;
mod review;
mod sqlite;
mod suppliers;
pub(crate) mod turns;

use std::borrow::Cow;

pub use self::merge::{MergeReport, MergeView, UnmergeReport};
pub use self::postgres::EXISTING_KEYS_SQL;
pub use self::prepare::{PreparedLine, prepare};
pub use self::readmodel::{Contribution, Delta};
pub use self::recalc::{CategoryChange, Recalculation, settings_cause};
pub use self::restate::{
    Correction, MAX_CORRECTIONS, RestateRow, RestatementPreview, YearRestatement, restatement_cause,
};
pub use self::review::{Reclassified, ReclassifyError};
pub use self::suppliers::{RefusedSupplier, SupplierUpsert};
pub use self::turns::{WRITE_BUCKETS, bucket};
use crate::codec::{kg_to_mg, usd_to_musd};
use crate::conn::{Conn, Db, Dialect, Row, Tx, args};
use crate::model::audit::{self, Actor, Change, LineChange, LineDigests};
use crate::model::orgs::OrgId;
use crate::{Result, StoreError};

/// What happened to each line of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LineOutcome {
    Inserted,
    /// Replaced the stored line, whose content hash was `before`.
    Updated {
        before: i64,
    },
    /// Same fields and result as stored: nothing written.
    Unchanged,
    /// The same transaction_id appeared earlier in this import (on `first_line`).
    Duplicate {
        first_line: i64,
    },
    /// Refused: it would change `year`, a closed reporting period (the line's own year, or
    /// the year of the stored line it would move or replace).
    PeriodClosed {
        year: u16,
    },
}

/// Suppliers a batch refers to that do not exist yet: (supplier_id, name).
pub type NewSuppliers = Vec<(String, String)>;

/// A batch of prepared lines of one organization, as handed to a [`LineWriter`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct WriteBatch<'a> {
    pub org: OrgId,
    pub lines: &'a [PreparedLine],
    /// Suppliers the lines refer to that the caller did not know; inserted if missing.
    pub new_suppliers: &'a NewSuppliers,
    /// The import writing the lines: an id this import wrote or saw already is a duplicate.
    pub import_id: Option<i64>,
    /// The caller already added every line's contribution to the delta as if it were new
    /// (the import does this on its reading thread, off the writer's critical path); the
    /// writer corrects it for lines that were not inserted.
    pub counted: bool,
    /// The organization's closed years (`LineWriter::write` reads them in the batch's
    /// transaction): no line is written into or out of one.
    pub closed: &'a [u16],
    /// A restatement: the closed years are written too (the caller makes their new
    /// inventory versions in the same transaction).
    pub restating: bool,
}

impl<'a> WriteBatch<'a> {
    /// A batch written by an API call or a recalculation (no import, nothing counted).
    pub fn direct(org: OrgId, lines: &'a [PreparedLine], new_suppliers: &'a NewSuppliers) -> Self {
        WriteBatch {
            org,
            lines,
            new_suppliers,
            import_id: None,
            counted: false,
            closed: &[],
            restating: false,
        }
    }
}

/// What is stored under a line's id: its content hash, and the import (and line of it)
/// that last wrote or saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StoredKey {
    pub hash: i64,
    pub import_id: Option<i64>,
    pub source_line: Option<i64>,
    /// The stored line's date (yyyymmdd).
    pub day: u32,
}

/// The outcome rule, the one place that decides what a line does to what is stored:
/// a new id is inserted; an id this import already wrote or saw is a duplicate of the line
/// that did; the same content is unchanged (nothing rewritten); other content updates it.
/// An insert or update that would change a closed year (`closed`: the line's own year, or
/// the stored line's) is refused instead.
pub(crate) fn decide(
    stored: Option<&StoredKey>,
    p: &PreparedLine,
    import_id: Option<i64>,
    closed: &[u16],
) -> LineOutcome {
    let outcome = match stored {
        None => LineOutcome::Inserted,
        Some(k) if import_id.is_some() && k.import_id == import_id => LineOutcome::Duplicate {
            first_line: k.source_line.unwrap_or(0),
        },
        Some(k) if k.hash == p.hash => LineOutcome::Unchanged,
        Some(k) => LineOutcome::Updated { before: k.hash },
    };
    if closed.is_empty() || !matches!(outcome, LineOutcome::Inserted | LineOutcome::Updated { .. })
    {
        return outcome;
    }
    let years = [Some(p.day() / 10_000), stored.map(|k| k.day / 10_000)];
    match years
        .into_iter()
        .flatten()
        .find_map(|y| closed.iter().copied().find(|c| u32::from(*c) == y))
    {
        Some(year) => LineOutcome::PeriodClosed { year },
        None => outcome,
    }
}

/// The read-model correction that goes with an outcome, the one place that applies it:
/// an inserted line adds its contribution, an updated one replaces `old` (the stored line's)
/// with its own, and the others change nothing. With `counted`, the line's own
/// contribution is already in `delta`: it is taken out again where nothing was written.
pub(crate) fn account(
    delta: &mut Delta,
    outcome: &LineOutcome,
    p: &PreparedLine,
    old: Option<&Contribution<'_>>,
    counted: bool,
) {
    let written = matches!(outcome, LineOutcome::Inserted | LineOutcome::Updated { .. });
    if let (LineOutcome::Updated { .. }, Some(old)) = (outcome, old) {
        delta.remove(old);
    }
    match (written, counted) {
        (true, false) => delta.add(&p.contribution()),
        (false, true) => delta.remove(&p.contribution()),
        _ => {}
    }
}

/// A batch's lines split into the first line of each id and the later lines of ids repeated
/// in the batch, each in file order. Backends write the first lines together, in the order
/// that suits them, and the repeats one by one after them, which gives every line the
/// outcome it would have had with the batch written in file order.
pub(crate) fn first_occurrences(lines: &[PreparedLine]) -> (Vec<usize>, Vec<usize>) {
    let mut seen = std::collections::HashSet::with_capacity(lines.len());
    let (mut first, mut repeats) = (Vec::with_capacity(lines.len()), Vec::new());
    for (i, p) in lines.iter().enumerate() {
        if seen.insert(p.id()) {
            first.push(i);
        } else {
            repeats.push(i);
        }
    }
    (first, repeats)
}

/// Adds the lines that `outcomes` say were written (created or updated) to `d`.
pub(crate) fn record_digests(
    d: &mut LineDigests,
    lines: &[PreparedLine],
    outcomes: &[LineOutcome],
) {
    for (p, o) in lines.iter().zip(outcomes) {
        match o {
            LineOutcome::Inserted => d.push(LineChange::Created, p.id(), None, Some(p.hash)),
            LineOutcome::Updated { before } => {
                d.push(LineChange::Updated, p.id(), Some(*before), Some(p.hash));
            }
            _ => {}
        }
    }
}

/// The audit entry of lines written directly (an API upsert), if any was.
fn lines_written(tx: &Tx<'_>, org: OrgId, actor: &Actor, d: &LineDigests) -> Result<()> {
    if d.is_empty() {
        return Ok(());
    }
    let (created, updated, _) = d.counts();
    let detail = serde_json::json!({"created": created, "updated": updated});
    audit::append(
        tx,
        org,
        actor,
        Change::new("lines.written", "", detail).with_lines(d),
    )?;
    Ok(())
}

/// A batch of one organization's lines written by an API request, by `actor`.
#[derive(Clone, Copy, Debug)]
pub struct LineGroup<'a> {
    pub org: OrgId,
    pub lines: &'a [PreparedLine],
    pub new_suppliers: &'a NewSuppliers,
    pub actor: &'a Actor,
}

/// The outcome of every line of a batch, in the batch's order; an error if a backend left a
/// line undecided (a broken invariant: every line takes one of the paths).
pub(crate) fn all_decided(out: Vec<Option<LineOutcome>>) -> Result<Vec<LineOutcome>> {
    out.into_iter()
        .map(|o| o.ok_or_else(|| StoreError::internal("a line was not written")))
        .collect()
}

/// A stored line's key and read-model contribution, by id. On PostgreSQL the id is found
/// through `transaction_keys` (the lines table is partitioned by date), then the line
/// through its partition's primary key.
pub(crate) fn stored_sql(d: Dialect) -> &'static str {
    match d {
        Dialect::Sqlite => {
            "SELECT content_hash, import_id, source_line, day, category, method, data_quality,
               supplier_id, co2e_kg, spend_usd, body
             FROM transactions WHERE org_id = ?1 AND transaction_id = ?2"
        }
        // The hash and the import that last saw the line are kept with its key.
        Dialect::Postgres => {
            "SELECT k.content_hash, k.import_id, k.source_line, t.day, t.category,
               t.method, t.data_quality, t.supplier_id, t.co2e_kg, t.spend_usd, t.body
             FROM transaction_keys k JOIN transactions t
               ON t.org_id = k.org_id AND t.day = k.day AND t.transaction_id = k.transaction_id
             WHERE k.org_id = ?1 AND k.transaction_id = ?2"
        }
    }
}

/// A row of `stored_sql`, with the line's extras (Scope 1/2 apart, gases) from its body.
pub(crate) fn stored_row(r: &Row<'_>) -> Result<(StoredKey, Contribution<'static>)> {
    let (category, method) = (r.u8(4)?, r.u8(5)?);
    let extras = crate::codec::Body::decode(r.blob(10)?)?.extras();
    Ok((
        StoredKey {
            hash: r.i64(0)?,
            import_id: r.opt_i64(1)?,
            source_line: r.opt_i64(2)?,
            day: r.u32(3)?,
        },
        Contribution {
            day: r.u32(3)?,
            category,
            method,
            data_quality: r.u8(6)?,
            supplier_id: r.opt_string(7)?.map(Cow::Owned),
            co2e_mg: kg_to_mg(r.f64(8)?),
            spend_musd: r.opt_f64(9)?.map_or(0, usd_to_musd),
            extras,
        },
    ))
}

/// The stored key and contribution of `org`'s line `id`, if it exists.
pub(crate) fn stored_line(
    tx: &Tx<'_>,
    org: OrgId,
    id: &str,
) -> Result<Option<(StoredKey, Contribution<'static>)>> {
    tx.query_opt(stored_sql(tx.dialect()), args![org.0, id], stored_row)
}

/// Writes batches of lines on one connection, the way its backend writes best. Chosen for
/// the connection (`LineWriter::for_conn`); an import keeps one per writer connection for
/// the whole import, as it carries what earlier batches taught it.
#[derive(Debug)]
pub(crate) enum LineWriter {
    Sqlite(sqlite::SqliteWriter),
    Postgres(postgres::PgWriter),
}

impl LineWriter {
    /// The writer for `conn`'s backend.
    pub fn for_conn(conn: &Conn) -> LineWriter {
        match conn.dialect() {
            Dialect::Sqlite => LineWriter::Sqlite(sqlite::SqliteWriter::default()),
            Dialect::Postgres => LineWriter::Postgres(postgres::PgWriter::default()),
        }
    }

    /// A writer of the ids of one write bucket only (PostgreSQL's parallel import writers:
    /// it takes that bucket's write turn, not all of them). SQLite has one writer.
    pub fn for_bucket(conn: &Conn, bucket: u32) -> LineWriter {
        match conn.dialect() {
            Dialect::Sqlite => LineWriter::for_conn(conn),
            Dialect::Postgres => LineWriter::Postgres(postgres::PgWriter::for_bucket(bucket)),
        }
    }

    /// Makes ready, outside any transaction, what writing `lines` of `org` needs
    /// (PostgreSQL: the partitions of their years; SQLite has one table for all).
    pub fn prepare_outside_tx(
        &mut self,
        conn: &Conn,
        org: OrgId,
        lines: &[PreparedLine],
    ) -> Result<()> {
        match self {
            LineWriter::Sqlite(_) => Ok(()),
            LineWriter::Postgres(w) => w.ensure_partitions(conn, org, lines),
        }
    }

    /// Whether writing `lines` of `org` needs something made outside a transaction first
    /// (`prepare_outside_tx`): the import then commits before such a batch.
    pub fn needs_outside_tx(&self, conn: &Conn, org: OrgId, lines: &[PreparedLine]) -> bool {
        match self {
            LineWriter::Sqlite(_) => false,
            LineWriter::Postgres(_) => partitions::needs_partitions(conn, org, lines),
        }
    }

    /// Takes `org`'s write turns until `tx` ends (PostgreSQL; SQLite's write lock is the
    /// transaction's own).
    pub fn lock_org(&self, tx: &Tx<'_>, org: OrgId) -> Result<()> {
        match self {
            LineWriter::Sqlite(_) => Ok(()),
            LineWriter::Postgres(w) => turns::lock_org(tx, org, w.bucket()),
        }
    }

    /// Writes `batch` inside `tx` and records its read-model changes in `delta`, which the
    /// caller flushes before committing. Returns each line's outcome, in the batch's order.
    /// Lines dated in a closed year are refused here, before the backend sees them, unless
    /// they are sent again exactly as stored (unchanged); a line that would move or replace a
    /// stored line of a closed year is refused by the outcome rule.
    pub fn write(
        &mut self,
        tx: &Tx<'_>,
        batch: &WriteBatch<'_>,
        delta: &mut Delta,
    ) -> Result<Vec<LineOutcome>> {
        let closed = if batch.restating {
            Vec::new()
        } else {
            crate::model::periods::closed_years(tx, batch.org)?
        };
        let batch = WriteBatch {
            closed: &closed,
            ..*batch
        };
        let refused: Vec<Option<u16>> = batch
            .lines
            .iter()
            .map(|p| {
                let y = p.day() / 10_000;
                closed.iter().copied().find(|c| u32::from(*c) == y)
            })
            .collect();
        if refused.iter().all(Option::is_none) {
            suppliers::insert_new(tx, batch.org, batch.new_suppliers)?;
            return self.write_backend(tx, &batch, delta);
        }
        // Some lines are refused: the rest are written as a batch of their own.
        let kept: Vec<PreparedLine> = batch
            .lines
            .iter()
            .zip(&refused)
            .filter(|(_, r)| r.is_none())
            .map(|(p, _)| p.clone())
            .collect();
        let sub = WriteBatch {
            lines: &kept,
            ..batch
        };
        suppliers::insert_new(tx, batch.org, batch.new_suppliers)?;
        let mut written = self.write_backend(tx, &sub, delta)?.into_iter();
        let mut out = Vec::with_capacity(batch.lines.len());
        for (p, r) in batch.lines.iter().zip(refused) {
            out.push(match r {
                Some(year) => {
                    // Sent again as stored, it changes nothing: unchanged, not refused.
                    let o = match stored_line(tx, batch.org, p.id())? {
                        Some((k, _)) if k.hash == p.hash => LineOutcome::Unchanged,
                        _ => LineOutcome::PeriodClosed { year },
                    };
                    account(delta, &o, p, None, batch.counted);
                    o
                }
                None => written
                    .next()
                    .ok_or_else(|| StoreError::internal("a line was not written"))?,
            });
        }
        Ok(out)
    }

    fn write_backend(
        &mut self,
        tx: &Tx<'_>,
        batch: &WriteBatch<'_>,
        delta: &mut Delta,
    ) -> Result<Vec<LineOutcome>> {
        match self {
            LineWriter::Sqlite(w) => w.write(tx, batch, delta),
            LineWriter::Postgres(w) => w.write(tx, batch, delta),
        }
    }

    /// Whether an import into `org` can be written as a first load (PostgreSQL: the
    /// organization has no line and no partition; SQLite has no such path).
    pub fn first_load_possible(&self, conn: &Conn, org: OrgId) -> Result<bool> {
        match self {
            LineWriter::Sqlite(_) => Ok(false),
            LineWriter::Postgres(_) => first_load::possible(conn, org),
        }
    }

    /// Starts a first load of `org` in `tx` if it is still possible under the organization's
    /// write turns (which `tx` then keeps); false, and nothing changes, otherwise.
    pub fn begin_first_load(&mut self, tx: &Tx<'_>, org: OrgId) -> Result<bool> {
        match self {
            LineWriter::Sqlite(_) => Ok(false),
            LineWriter::Postgres(w) => w.begin_first_load(tx, org),
        }
    }

    /// Ends a first load: its tables get their indexes and become partitions. Last in the
    /// transaction, which should commit right after.
    pub fn finish_first_load(&mut self, tx: &Tx<'_>) -> Result<()> {
        match self {
            LineWriter::Sqlite(_) => Ok(()),
            LineWriter::Postgres(w) => w.finish_first_load(tx),
        }
    }

    /// Refreshes the planner's statistics of what a large import of `org` wrote in `years`
    /// (PostgreSQL; SQLite's planner uses no statistics unless ANALYZE was run once, and the
    /// store never runs it).
    pub fn refresh_statistics(
        &self,
        conn: &Conn,
        org: OrgId,
        years: &std::collections::BTreeSet<u16>,
    ) -> Result<()> {
        match self {
            LineWriter::Sqlite(_) => Ok(()),
            LineWriter::Postgres(_) => partitions::analyze_written(conn, org, years),
        }
    }
}

/// Accepted lines after which an import refreshes the planner's statistics.
pub(crate) const ANALYZE_AFTER_LINES: u64 = 10_000;

impl Db {
    /// Writes a batch of lines (upsert by transaction_id) and its read-model changes in one
    /// transaction.
    pub fn write_lines(
        &mut self,
        org: OrgId,
        lines: &[PreparedLine],
        new_suppliers: &NewSuppliers,
        actor: &Actor,
    ) -> Result<Vec<LineOutcome>> {
        let group = LineGroup {
            org,
            lines,
            new_suppliers,
            actor,
        };
        self.write_line_groups(&[group])
            .map(|mut outs| outs.pop().unwrap_or_default())
    }

    /// Writes several batches, of one or more organizations, in one transaction (group
    /// commit of concurrent API requests): one commit instead of one per batch. Returns
    /// each batch's outcomes. Each batch that wrote lines is an entry of its organization's
    /// audit log.
    pub fn write_line_groups(&mut self, groups: &[LineGroup<'_>]) -> Result<Vec<Vec<LineOutcome>>> {
        let mut w = LineWriter::for_conn(&self.conn);
        for g in groups {
            w.prepare_outside_tx(&self.conn, g.org, g.lines)?;
        }
        let tx = self.conn.begin_immediate()?;
        // Organizations' write turns in id order, so that two such groups cannot deadlock.
        let mut orgs: Vec<OrgId> = groups.iter().map(|g| g.org).collect();
        orgs.sort_unstable();
        orgs.dedup();
        for &org in &orgs {
            w.lock_org(&tx, org)?;
        }
        let mut deltas: Vec<Delta> = orgs.iter().map(|_| Delta::default()).collect();
        let mut outs = Vec::with_capacity(groups.len());
        for g in groups {
            let at = orgs
                .binary_search(&g.org)
                .map_err(|_| StoreError::internal("an organization of the group was not locked"))?;
            let batch = WriteBatch::direct(g.org, g.lines, g.new_suppliers);
            outs.push(w.write(&tx, &batch, &mut deltas[at])?);
        }
        for (org, mut delta) in orgs.into_iter().zip(deltas) {
            delta.flush(&tx, org)?;
        }
        // The audit entries last: appends take turns on the organization's chain head.
        for (g, out) in groups.iter().zip(&outs) {
            let mut d = LineDigests::default();
            record_digests(&mut d, g.lines, out);
            lines_written(&tx, g.org, g.actor, &d)?;
        }
        tx.commit()?;
        Ok(outs)
    }

    /// Deletes one line; false if it did not exist.
    pub fn delete_line(&mut self, org: OrgId, transaction_id: &str, actor: &Actor) -> Result<bool> {
        let w = LineWriter::for_conn(&self.conn);
        let tx = self.conn.begin_immediate()?;
        w.lock_org(&tx, org)?;
        let Some((k, c)) = stored_line(&tx, org, transaction_id)? else {
            return Ok(false);
        };
        let year = (c.day / 10_000) as u16;
        if crate::model::periods::closed_years(&tx, org)?.contains(&year) {
            return Err(StoreError::period_closed(year));
        }
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
        let mut digests = LineDigests::default();
        digests.push(LineChange::Deleted, transaction_id, Some(k.hash), None);
        let detail = serde_json::json!({"date": crate::model::lines::day_text(c.day)});
        let change = Change::new("line.deleted", transaction_id, detail).with_lines(&digests);
        audit::append(&tx, org, actor, change)?;
        tx.commit()?;
        Ok(true)
    }

    /// Rebuilds the read models from the lines.
    pub fn rebuild_read_models(&mut self, org: OrgId) -> Result<()> {
        let tx = self.conn.begin_immediate()?;
        readmodel::rebuild(&tx, org)?;
        tx.commit()?;
        Ok(())
    }
}
