//! Connections: one connection type over both backends (SQLite through rusqlite,
//! PostgreSQL through the synchronous `postgres` client), so that the store's queries are
//! written once and behave alike on both; transactions, rows, bound values, and the
//! [`Store`] that opens connections. A file per backend connects (`sqlite.rs`,
//! `postgres.rs`).
//!
//! SQL is written with numbered placeholders (`?1`, `?2`, ...), which SQLite takes as they
//! are and which become `$1`, `$2` for PostgreSQL. Where the dialects really differ (bulk
//! paths, DDL, a few expressions) callers branch on [`Conn::dialect`].
//!
//! Belongs here: binding, rows, statement caching, transactions, connecting.
//! Not here: any table of the store's (`schema` creates them; `model` and `write` use them).

mod postgres;
mod sqlite;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ::postgres::types::{IsNull, ToSql, Type, to_sql_checked};

pub use self::postgres::PgSettings;
pub(crate) use self::postgres::{PgConn, fnv1a};
use crate::{Result, StoreError};

/// Which SQL dialect a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A bound value. Integers bind to whatever integer or float type PostgreSQL expects for the
/// parameter, so one call site serves both backends.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Arg<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

macro_rules! arg_from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Arg<'_> {
            fn from(v: $t) -> Self {
                Arg::Int(i64::from(v))
            }
        }
    )*};
}
arg_from_int!(i64, i32, i16, u32, u16, u8, bool);

impl From<f64> for Arg<'_> {
    fn from(v: f64) -> Self {
        Arg::Real(v)
    }
}
impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Text(v)
    }
}
impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Arg::Text(v)
    }
}
impl<'a> From<&'a [u8]> for Arg<'a> {
    fn from(v: &'a [u8]) -> Self {
        Arg::Blob(v)
    }
}
impl<'a> From<&'a Vec<u8>> for Arg<'a> {
    fn from(v: &'a Vec<u8>) -> Self {
        Arg::Blob(v)
    }
}
impl<'a, T: Into<Arg<'a>>> From<Option<T>> for Arg<'a> {
    fn from(v: Option<T>) -> Self {
        v.map_or(Arg::Null, Into::into)
    }
}

/// `args![a, b, c]`: a slice of [`Arg`]s.
macro_rules! args {
    ($($e:expr),* $(,)?) => { &[$($crate::conn::Arg::from($e)),*][..] };
}
pub(crate) use args;

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match *self {
            Arg::Null => ValueRef::Null,
            Arg::Int(v) => ValueRef::Integer(v),
            Arg::Real(v) => ValueRef::Real(v),
            Arg::Text(s) => ValueRef::Text(s.as_bytes()),
            Arg::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

impl ToSql for Arg<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match *self {
            Arg::Null => Ok(IsNull::Yes),
            Arg::Int(v) => match *ty {
                Type::INT2 => i16::try_from(v)?.to_sql(ty, out),
                Type::INT4 => i32::try_from(v)?.to_sql(ty, out),
                Type::FLOAT8 => (v as f64).to_sql(ty, out),
                Type::TEXT => v.to_string().to_sql(ty, out),
                _ => v.to_sql(ty, out),
            },
            Arg::Real(v) => match *ty {
                Type::FLOAT4 => (v as f32).to_sql(ty, out),
                _ => v.to_sql(ty, out),
            },
            Arg::Text(s) => s.to_sql(ty, out),
            Arg::Blob(b) => b.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// One result row of either backend; getters convert to the store's Rust types.
pub(crate) enum Row<'a> {
    Sqlite(&'a rusqlite::Row<'a>),
    Pg(&'a ::postgres::Row),
}

fn pg_int(r: &::postgres::Row, i: usize) -> Result<Option<i64>> {
    let ty = r.columns()[i].type_().clone();
    Ok(match ty {
        Type::INT2 => r.try_get::<_, Option<i16>>(i)?.map(i64::from),
        Type::INT4 => r.try_get::<_, Option<i32>>(i)?.map(i64::from),
        _ => r.try_get::<_, Option<i64>>(i)?,
    })
}

fn null(i: usize) -> StoreError {
    StoreError::corrupt(format!("unexpected NULL in result column {i}"))
}

fn int_range(i: usize) -> StoreError {
    StoreError::corrupt(format!("integer out of range in result column {i}"))
}

impl Row<'_> {
    pub fn opt_i64(&self, i: usize) -> Result<Option<i64>> {
        match self {
            Row::Sqlite(r) => Ok(r.get(i)?),
            Row::Pg(r) => pg_int(r, i),
        }
    }

    pub fn i64(&self, i: usize) -> Result<i64> {
        self.opt_i64(i)?.ok_or_else(|| null(i))
    }

    pub fn u32(&self, i: usize) -> Result<u32> {
        u32::try_from(self.i64(i)?).map_err(|_| int_range(i))
    }

    pub fn u8(&self, i: usize) -> Result<u8> {
        u8::try_from(self.i64(i)?).map_err(|_| int_range(i))
    }

    pub fn opt_f64(&self, i: usize) -> Result<Option<f64>> {
        match self {
            Row::Sqlite(r) => Ok(r.get(i)?),
            Row::Pg(r) => Ok(match *r.columns()[i].type_() {
                Type::FLOAT4 => r.try_get::<_, Option<f32>>(i)?.map(f64::from),
                Type::FLOAT8 => r.try_get::<_, Option<f64>>(i)?,
                _ => pg_int(r, i)?.map(|v| v as f64),
            }),
        }
    }

    pub fn f64(&self, i: usize) -> Result<f64> {
        self.opt_f64(i)?.ok_or_else(|| null(i))
    }

    pub fn opt_str(&self, i: usize) -> Result<Option<&str>> {
        match self {
            Row::Sqlite(r) => match r.get_ref(i)? {
                rusqlite::types::ValueRef::Null => Ok(None),
                v => Ok(Some(v.as_str().map_err(rusqlite::Error::from)?)),
            },
            Row::Pg(r) => Ok(r.try_get::<_, Option<&str>>(i)?),
        }
    }

    pub fn str(&self, i: usize) -> Result<&str> {
        self.opt_str(i)?.ok_or_else(|| null(i))
    }

    pub fn opt_string(&self, i: usize) -> Result<Option<String>> {
        Ok(self.opt_str(i)?.map(str::to_owned))
    }

    pub fn string(&self, i: usize) -> Result<String> {
        Ok(self.str(i)?.to_owned())
    }

    pub fn opt_blob(&self, i: usize) -> Result<Option<&[u8]>> {
        match self {
            Row::Sqlite(r) => match r.get_ref(i)? {
                rusqlite::types::ValueRef::Null => Ok(None),
                v => Ok(Some(v.as_blob().map_err(rusqlite::Error::from)?)),
            },
            Row::Pg(r) => Ok(r.try_get::<_, Option<&[u8]>>(i)?),
        }
    }

    pub fn blob(&self, i: usize) -> Result<&[u8]> {
        match self {
            Row::Sqlite(r) => Ok(r.get_ref(i)?.as_blob().map_err(rusqlite::Error::from)?),
            Row::Pg(r) => Ok(r.try_get::<_, &[u8]>(i)?),
        }
    }
}

/// A connection to either backend.
#[derive(Debug)]
pub(crate) enum Conn {
    Sqlite(rusqlite::Connection),
    Pg(Box<PgConn>),
}

impl Conn {
    pub fn dialect(&self) -> Dialect {
        match self {
            Conn::Sqlite(_) => Dialect::Sqlite,
            Conn::Pg(_) => Dialect::Postgres,
        }
    }

    /// The rusqlite connection, for SQLite-only paths.
    pub fn sqlite(&self) -> Option<&rusqlite::Connection> {
        match self {
            Conn::Sqlite(c) => Some(c),
            Conn::Pg(_) => None,
        }
    }

    pub fn pg(&self) -> Option<&PgConn> {
        match self {
            Conn::Pg(c) => Some(c),
            Conn::Sqlite(_) => None,
        }
    }

    /// Runs one statement; returns the number of rows it changed.
    pub fn execute(&self, sql: &str, args: &[Arg<'_>]) -> Result<u64> {
        match self {
            Conn::Sqlite(c) => {
                Ok(c.prepare_cached(sql)?
                    .execute(rusqlite::params_from_iter(args))? as u64)
            }
            Conn::Pg(c) => {
                let st = c.statement(sql)?;
                Ok(c.client.borrow_mut().execute(&st, &PgConn::params(args))?)
            }
        }
    }

    /// Runs a query and maps every row with `f`.
    pub fn query<T>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        mut f: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        match self {
            Conn::Sqlite(c) => {
                let mut st = c.prepare_cached(sql)?;
                let mut rows = st.query(rusqlite::params_from_iter(args))?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    out.push(f(&Row::Sqlite(r))?);
                }
                Ok(out)
            }
            Conn::Pg(c) => {
                let st = c.statement(sql)?;
                let rows = c.client.borrow_mut().query(&st, &PgConn::params(args))?;
                rows.iter().map(|r| f(&Row::Pg(r))).collect()
            }
        }
    }

    /// Runs a query and hands each row to `f` as it arrives (PostgreSQL streams the rows
    /// rather than buffering the result). `f` must not use this connection.
    pub fn for_each(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        mut f: impl FnMut(&Row<'_>) -> Result<()>,
    ) -> Result<()> {
        match self {
            Conn::Sqlite(c) => {
                let mut st = c.prepare_cached(sql)?;
                let mut rows = st.query(rusqlite::params_from_iter(args))?;
                while let Some(r) = rows.next()? {
                    f(&Row::Sqlite(r))?;
                }
                Ok(())
            }
            Conn::Pg(c) => {
                use ::postgres::fallible_iterator::FallibleIterator;
                let st = c.statement(sql)?;
                let mut client = c.client.borrow_mut();
                let mut rows = client.query_raw(&st, args.iter())?;
                while let Some(r) = rows.next()? {
                    f(&Row::Pg(&r))?;
                }
                Ok(())
            }
        }
    }

    /// The first row of a query, if any.
    pub fn query_opt<T>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<Option<T>> {
        match self {
            Conn::Sqlite(c) => {
                let mut st = c.prepare_cached(sql)?;
                let mut rows = st.query(rusqlite::params_from_iter(args))?;
                match rows.next()? {
                    Some(r) => Ok(Some(f(&Row::Sqlite(r))?)),
                    None => Ok(None),
                }
            }
            Conn::Pg(c) => {
                let st = c.statement(sql)?;
                let rows = c.client.borrow_mut().query(&st, &PgConn::params(args))?;
                rows.first().map(|r| f(&Row::Pg(r))).transpose()
            }
        }
    }

    /// The one row a query must return.
    pub fn query_one<T>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<T> {
        self.query_opt(sql, args, f)?
            .ok_or_else(|| StoreError::internal("a query that returns a row returned none"))
    }

    /// Runs statements without parameters (DDL, settings).
    pub fn batch(&self, sql: &str) -> Result<()> {
        match self {
            Conn::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Conn::Pg(c) => Ok(c.client.borrow_mut().batch_execute(sql)?),
        }
    }

    /// Starts a transaction, rolled back unless committed.
    pub fn begin(&self) -> Result<Tx<'_>> {
        self.batch("BEGIN")?;
        Ok(Tx {
            conn: self,
            open: true,
        })
    }

    /// A transaction that takes SQLite's write lock at once (so a read-then-write inside it
    /// cannot be overtaken); on PostgreSQL an ordinary one, whose callers lock rows instead.
    pub fn begin_immediate(&self) -> Result<Tx<'_>> {
        self.batch(match self {
            Conn::Sqlite(_) => "BEGIN IMMEDIATE",
            Conn::Pg(_) => "BEGIN",
        })?;
        Ok(Tx {
            conn: self,
            open: true,
        })
    }

    /// True when the connection can no longer be used (the server closed it).
    pub fn is_broken(&self) -> bool {
        match self {
            Conn::Sqlite(_) => false,
            Conn::Pg(c) => c
                .client
                .try_borrow()
                .map_or(true, |client| client.is_closed()),
        }
    }
}

/// An open transaction. Dereferences to its connection.
#[derive(Debug)]
pub(crate) struct Tx<'a> {
    conn: &'a Conn,
    open: bool,
}

impl Tx<'_> {
    pub fn commit(mut self) -> Result<()> {
        self.open = false;
        self.conn.batch("COMMIT")
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        self.conn
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.open {
            // Best effort: a broken connection has no transaction left to roll back.
            let _ = self.conn.batch("ROLLBACK");
        }
    }
}

/// Where the data lives: a SQLite file or a PostgreSQL database. Cheap to clone;
/// connections are opened as needed. `schema` opens one (and migrates it).
#[derive(Debug, Clone)]
pub struct Store {
    backend: Arc<Backend>,
}

// Behind an `Arc`, one per store: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Backend {
    Sqlite(PathBuf),
    Postgres {
        config: ::postgres::Config,
        settings: PgSettings,
    },
}

/// One connection with vcci's settings applied.
#[derive(Debug)]
pub struct Db {
    pub(crate) conn: Conn,
}

impl Store {
    /// A store of `backend`, not yet migrated (`schema` does that).
    pub(crate) fn unmigrated(backend: Backend) -> Store {
        Store {
            backend: Arc::new(backend),
        }
    }

    /// The SQLite file, for the embedded backend.
    pub fn path(&self) -> Option<&Path> {
        match &*self.backend {
            Backend::Sqlite(p) => Some(p),
            Backend::Postgres { .. } => None,
        }
    }

    pub fn dialect(&self) -> Dialect {
        match &*self.backend {
            Backend::Sqlite(_) => Dialect::Sqlite,
            Backend::Postgres { .. } => Dialect::Postgres,
        }
    }

    /// What the store is, for logs (no password).
    pub fn describe(&self) -> String {
        match &*self.backend {
            Backend::Sqlite(p) => format!("sqlite:{}", p.display()),
            Backend::Postgres { config, settings } => postgres::describe(config, settings),
        }
    }

    /// A new connection. Cheap enough for a CLI command; servers keep a few around.
    pub fn connect(&self) -> Result<Db> {
        let conn = match &*self.backend {
            Backend::Sqlite(path) => sqlite::connect(path)?,
            Backend::Postgres { config, settings } => postgres::connect(config, settings)?,
        };
        Ok(Db { conn })
    }
}

impl Db {
    /// A PostgreSQL run-time setting of this connection (`current_setting`; None on SQLite),
    /// for diagnostics.
    pub fn pg_setting(&self, name: &str) -> Result<Option<String>> {
        if self.conn.pg().is_none() {
            return Ok(None);
        }
        self.conn
            .query_one("SELECT current_setting(?1)", args![name], |r| r.string(0))
            .map(Some)
    }

    /// A trivial query: does the database answer?
    pub fn ping(&self) -> Result<()> {
        self.conn.query_one("SELECT 1", &[], |_| Ok(()))
    }

    /// Which backend this connection talks to.
    pub fn dialect(&self) -> Dialect {
        self.conn.dialect()
    }

    /// True when the server closed this connection (it must not be reused).
    pub fn is_broken(&self) -> bool {
        self.conn.is_broken()
    }
}
