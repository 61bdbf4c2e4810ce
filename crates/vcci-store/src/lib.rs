//! vcci-store: where vcci keeps organizations, keys, suppliers, lines and their results.
//!
//! SQLite through rusqlite is the embedded default. We measured the drivers on this machine
//! class: rusqlite prepared inserts in one transaction ~600k rows/s, sqlx's SQLite driver
//! ~8k rows/s one row per statement (a thread hop each). Imports are the hot path, so the
//! store is synchronous rusqlite; async callers run it on blocking threads.
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
pub mod readmodel;
pub mod reports;
pub mod suppliers;
mod time;

pub use db::{Db, Store};
pub use orgs::{Org, OrgId};

/// Errors of the store. Messages are safe to show; SQL text never reaches them.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
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
