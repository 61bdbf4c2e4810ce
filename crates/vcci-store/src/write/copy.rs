//! Binary COPY into PostgreSQL: the rows of lines and of their keys encoded here
//! (`CopyBuf`: PostgreSQL's binary COPY format, each value by `Arg`'s own `ToSql`, sent in
//! 256 KiB messages), not through `postgres`' `BinaryCopyInWriter`, which boxes every value
//! behind a trait object in a `Vec` per row and sends 4 KB messages (with the reader
//! splitting batches by bucket as it reads, the import's client CPU fell by 35–40 %:
//! BENCHMARKS.md).

use std::io::Write;

use bytes::{BufMut, BytesMut};
use postgres::types::{IsNull, ToSql, Type};

use super::PreparedLine;
use crate::codec::{kg_to_mg, method_code, usd_to_musd};
use crate::conn::{Arg, Tx};
use crate::model::orgs::OrgId;
use crate::{Result, StoreError};

/// Columns of a stored line, in the order of `line_args`.
pub(super) const LINE_COLS: &str = "org_id, transaction_id, day, supplier_id, co2e_kg, co2e_mg, spend_usd, \
    spend_musd, category, method, data_quality, body, review";

/// Columns of a line's key, in the order of `key_args`: where the line is, its content hash
/// and the import (and line of it) that last wrote or saw it.
pub(super) const KEY_COLS: &str =
    "org_id, transaction_id, day, content_hash, import_id, source_line";

pub(super) fn line_args(org: OrgId, p: &PreparedLine) -> [Arg<'_>; 13] {
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
        Arg::Blob(&p.body),
        Arg::Int(i64::from(p.needs_review())),
    ]
}

pub(super) fn key_args(org: OrgId, p: &PreparedLine, import_id: Option<i64>) -> [Arg<'_>; 6] {
    [
        Arg::Int(org.0),
        p.line.transaction_id.as_deref().into(),
        p.line.date.map(|d| d.yyyymmdd()).into(),
        Arg::Int(p.hash),
        import_id.into(),
        p.source_line.into(),
    ]
}

/// Bytes of binary COPY data sent per message (the client's own buffering sends 4 KB
/// messages, each a separate pass through its connection).
const COPY_CHUNK: usize = 256 * 1024;

/// Column types of `line_args`, as `transactions` declares them (binary COPY has no casts).
pub(super) const LINE_TYPES: [Type; 13] = [
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
    Type::BYTEA,
    Type::INT2,
];

/// Column types of `key_args`, as `transaction_keys` declares them.
pub(super) const KEY_TYPES: [Type; 6] = [
    Type::INT8,
    Type::TEXT,
    Type::INT4,
    Type::INT8,
    Type::INT8,
    Type::INT8,
];

/// PostgreSQL's binary COPY format: each row its field count, each field its length (-1:
/// NULL) and its value as `Arg`'s `ToSql` encodes it for the column's type (the same
/// conversion as statement parameters), written into one buffer with no per-row values
/// or boxed parameters.
pub(super) struct CopyBuf {
    buf: BytesMut,
}

impl CopyBuf {
    fn new() -> Self {
        let mut buf = BytesMut::with_capacity(COPY_CHUNK + 64 * 1024);
        buf.put_slice(b"PGCOPY\n\xff\r\n\0");
        buf.put_i32(0); // flags
        buf.put_i32(0); // header extension length
        CopyBuf { buf }
    }

    pub(super) fn row(&mut self, args: &[Arg<'_>], types: &[Type]) -> Result<()> {
        debug_assert_eq!(args.len(), types.len());
        self.buf
            .put_i16(i16::try_from(args.len()).expect("a few columns"));
        for (arg, ty) in args.iter().zip(types) {
            let at = self.buf.len();
            self.buf.put_i32(0); // the length, set below
            let encoded = arg
                .to_sql(ty, &mut self.buf)
                .map_err(|e| StoreError::internal(format!("COPY value for a {ty} column: {e}")))?;
            let len = match encoded {
                IsNull::Yes => -1,
                IsNull::No => i32::try_from(self.buf.len() - at - 4)
                    .map_err(|_| StoreError::invalid("body", "a line of over 2 GB"))?,
            };
            self.buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
        }
        Ok(())
    }
}

/// Binary COPY (`sql`: `COPY ... FROM STDIN (FORMAT binary)`) of `lines[i]` for each `i` of
/// `which`, each row written by `encode`, in messages of about `COPY_CHUNK` bytes.
pub(super) fn copy_in(
    tx: &Tx<'_>,
    sql: &str,
    lines: &[PreparedLine],
    which: &[usize],
    mut encode: impl FnMut(&mut CopyBuf, &PreparedLine) -> Result<()>,
) -> Result<()> {
    if which.is_empty() {
        return Ok(());
    }
    let pg = tx.pg().expect("a PostgreSQL connection");
    let mut client = pg.client.borrow_mut();
    let mut w = client.copy_in(sql)?;
    let mut b = CopyBuf::new();
    // The writer wraps the client's error (a lost connection, say) in an io::Error.
    let io = |e: std::io::Error| match e.into_inner().map(|b| b.downcast::<postgres::Error>()) {
        Some(Ok(pg)) => StoreError::from(*pg),
        Some(Err(other)) => StoreError::Unavailable(format!("COPY to PostgreSQL: {other}")),
        None => StoreError::Unavailable("COPY to PostgreSQL failed".into()),
    };
    for &i in which {
        encode(&mut b, &lines[i])?;
        if b.buf.len() >= COPY_CHUNK {
            w.write_all(&b.buf).map_err(io)?;
            b.buf.clear();
        }
    }
    b.buf.put_i16(-1); // trailer
    w.write_all(&b.buf).map_err(io)?;
    w.finish()?;
    Ok(())
}

/// COPY of the keys of `lines[which]` into `transaction_keys`.
pub(super) fn copy_keys(
    tx: &Tx<'_>,
    org: OrgId,
    lines: &[PreparedLine],
    which: &[usize],
    import_id: Option<i64>,
) -> Result<()> {
    copy_in(
        tx,
        &format!("COPY transaction_keys ({KEY_COLS}) FROM STDIN (FORMAT binary)"),
        lines,
        which,
        |b, p| b.row(&key_args(org, p, import_id), &KEY_TYPES),
    )
}

/// COPY of `lines[which]` into `table` (`transactions`, or a first load's table).
pub(super) fn copy_lines(
    tx: &Tx<'_>,
    table: &str,
    org: OrgId,
    lines: &[PreparedLine],
    which: &[usize],
) -> Result<()> {
    copy_in(
        tx,
        &format!("COPY {table} ({LINE_COLS}) FROM STDIN (FORMAT binary)"),
        lines,
        which,
        |b, p| b.row(&line_args(org, p), &LINE_TYPES),
    )
}
