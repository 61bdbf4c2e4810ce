//! The schema: opening a store applies its pending migrations (one folder of SQL files per
//! backend, embedded), and the names and DDL of PostgreSQL's partitions of `transactions`.
//!
//! Belongs here: what the tables are. Not here: reading or writing them (`model`, `write`).

mod postgres;
mod sqlite;

use std::path::Path;

pub(crate) use self::postgres::{
    partition_bounds, partition_ddl, partition_exists, partition_name,
};
use crate::conn::{Backend, Dialect, PgSettings, Store};

/// SQLite's migrations in order, for tests that build an older database.
#[cfg(test)]
pub(crate) fn sqlite_migrations() -> &'static [&'static str] {
    sqlite::migrations()
}
use crate::{Result, StoreError};

impl Store {
    /// Opens (creating if needed) `vcci.db` in `data_dir` and applies pending migrations.
    pub fn open_dir(data_dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::Io {
            context: format!("creating data directory {}", data_dir.display()),
            source,
        })?;
        Store::open_file(&data_dir.join("vcci.db"))
    }

    /// Opens (creating if needed) the database file at `path` and applies pending migrations.
    pub fn open_file(path: &Path) -> Result<Store> {
        Store::open(Backend::Sqlite(path.to_owned()))
    }

    /// Opens the PostgreSQL database at `url` (`postgres://user@host:port/db`) and applies
    /// pending migrations (one node at a time, under an advisory lock).
    pub fn open_postgres(url: &str, settings: PgSettings) -> Result<Store> {
        let config: ::postgres::Config = url.parse().map_err(|e| {
            StoreError::invalid("database_url", format!("invalid PostgreSQL URL: {e}"))
        })?;
        if let Some(s) = &settings.schema
            && !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(StoreError::invalid(
                "schema",
                format!("invalid schema name '{s}'"),
            ));
        }
        Store::open(Backend::Postgres { config, settings })
    }

    fn open(backend: Backend) -> Result<Store> {
        let store = Store::unmigrated(backend);
        let db = store.connect()?;
        match db.conn.dialect() {
            Dialect::Sqlite => sqlite::migrate(&db.conn)?,
            Dialect::Postgres => postgres::migrate(&db.conn)?,
        }
        Ok(store)
    }
}
