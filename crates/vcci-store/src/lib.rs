//! vcci-store: where vcci keeps organizations, keys, suppliers, lines and their results.
//!
//! Two backends behind one connection type: SQLite through rusqlite, the embedded default,
//! and PostgreSQL through the synchronous `postgres` client. We measured the drivers on
//! this machine class: rusqlite prepared inserts in one transaction ~600k rows/s, sqlx's
//! SQLite driver ~8k rows/s one row per statement (a thread hop each). Imports are the hot
//! path, so the store is synchronous; async callers run it on blocking threads, where a
//! synchronous PostgreSQL call costs no further thread hop (`postgres` drives its connection
//! on the calling thread).
//!
//! The modules are layers; each uses only those above it in this list (docs/STORAGE.md has
//! the picture, and `scripts/check-module-cycles.py` checks it):
//!
//! - `error`, `time`, `codec`: the error type, clocks, how values are stored.
//! - `conn`: connections, transactions, rows, bound values, the `Store` that opens them.
//! - `schema`: migrations and PostgreSQL's partition names; opening a store migrates it.
//! - `model`: organizations, keys, suppliers, jobs and imports, reads of lines, reports.
//! - `write`: the write path of lines and their read models.
//! - `import`: the streaming CSV import. `demo`, `testing`: demo data, test helpers.
//!
//! Not here: how a line is calculated (vcci-core), HTTP (vcci-server).

#![forbid(unsafe_code)]

pub mod classify;
pub mod codec;
pub mod conn;
pub mod demo;
mod error;
pub mod import;
pub mod model;
pub mod resolve;
mod schema;
pub mod secretbox;
pub mod testing;
mod time;
pub mod write;

pub use conn::{Db, Dialect, PgSettings, Store};
pub use error::{Result, StoreError};
pub use model::audit::Actor;
pub use model::orgs::{Org, OrgId};
pub use time::now_rfc3339;
pub use write::EXISTING_KEYS_SQL;
