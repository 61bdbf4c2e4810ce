//! vcci-store: where vcci keeps organizations, keys, suppliers, lines and their results.
//!
//! Two backends behind one connection type (`sql.rs`): SQLite through rusqlite, the embedded
//! default, and PostgreSQL through the synchronous `postgres` client. We measured the
//! drivers on this machine class: rusqlite prepared inserts in one transaction ~600k rows/s,
//! sqlx's SQLite driver ~8k rows/s one row per statement (a thread hop each). Imports are the
//! hot path, so the store is synchronous; async callers run it on blocking threads, where a
//! synchronous PostgreSQL call costs no further thread hop (`postgres` drives its connection
//! on the calling thread). Queries, write paths and read-model updates are shared; the bulk
//! paths differ (SQLite: multi-row prepared inserts; PostgreSQL: COPY into a staging table).
//!
//! Belongs here: schema and migrations, the write paths that keep the read models in step in
//! the same transaction, report queries over the read models, the streaming CSV import.
//! Not here: how a line is calculated (vcci-core), HTTP (vcci-server).

#![forbid(unsafe_code)]

pub mod codec;
pub mod csvout;
mod db;
pub mod demo;
pub mod import;
pub mod inventory;
pub mod jobs;
pub mod keys;
pub mod lines;
pub mod orgs;
mod pg;
pub mod readmodel;
pub mod reports;
pub mod sql;
pub mod suppliers;
pub mod testing;
mod time;

pub use db::{Db, PgSettings, Store};
pub use orgs::{Org, OrgId};
pub use pg::EXISTING_KEYS_SQL;
pub use sql::Dialect;

/// Errors of the store. Messages are safe to show; SQL text never reaches them.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database error: {}", pg_message(.0))]
    Postgres(#[from] postgres::Error),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

pub use time::now_rfc3339;

fn pg_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

impl StoreError {
    /// The database could not be reached or went away (a restart, a broken connection, too
    /// many connections): the request may succeed later. Such errors are answered 503.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Postgres(e) => {
                if e.is_closed() {
                    return true;
                }
                match e.code() {
                    // Class 08 connection exceptions; admin/crash shutdown, cannot connect
                    // now; too many connections.
                    Some(c) => {
                        let c = c.code();
                        c.starts_with("08") || matches!(c, "57P01" | "57P02" | "57P03" | "53300")
                    }
                    // Not an error the server reported: the connection itself failed?
                    None => {
                        let m = e.to_string();
                        [
                            "error connecting",
                            "error communicating",
                            "connection closed",
                            "timeout waiting",
                            "unexpected message",
                        ]
                        .iter()
                        .any(|p| m.starts_with(p))
                    }
                }
            }
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                )
            }
            _ => false,
        }
    }

    /// A statement ran past the configured statement timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self, StoreError::Postgres(e) if e.code().is_some_and(|c| c.code() == "57014"))
    }

    /// A deadlock or serialization failure: the transaction can be retried as a whole.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Postgres(e) if e.code().is_some_and(|c| matches!(c.code(), "40P01" | "40001")))
    }
}
