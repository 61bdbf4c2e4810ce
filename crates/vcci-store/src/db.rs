//! Opening the database: file location, connection settings, migrations.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::{Result, StoreError};

const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/sqlite/0001_init.sql"),
    include_str!("../migrations/sqlite/0002_secrets.sql"),
    include_str!("../migrations/sqlite/0003_jobs.sql"),
    include_str!("../migrations/sqlite/0004_monthly.sql"),
];

/// The SQLite store: a database file; connections are opened as needed.
#[derive(Debug, Clone)]
pub struct Store {
    path: PathBuf,
}

/// One connection with vcci's settings applied.
#[derive(Debug)]
pub struct Db {
    pub(crate) conn: Connection,
}

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
        let store = Store {
            path: path.to_owned(),
        };
        let mut db = store.connect()?;
        db.migrate()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A new connection. Cheap enough for a CLI command; servers keep a few around.
    pub fn connect(&self) -> Result<Db> {
        let mut conn = Connection::open(&self.path)?;
        // 8 KiB pages suit ~300-byte transaction rows in WITHOUT ROWID tables; the page size
        // only takes effect when the file is created.
        conn.execute_batch(
            "PRAGMA page_size = 8192;
             PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA temp_store = MEMORY;
             PRAGMA cache_size = -32768;
             PRAGMA foreign_keys = ON;",
        )?;
        conn.busy_handler(Some(busy))?;
        Ok(Db { conn })
    }
}

/// Waits for another connection's write lock: polls every 50 µs for the first 5 ms, then
/// every 0.5 ms, up to ~10 s. SQLite's default handler backs off to 100 ms sleeps, which
/// measured as multi-second tail latencies for API writes while another writer was busy.
fn busy(attempt: i32) -> bool {
    const FAST: i32 = 100;
    const LIMIT: i32 = FAST + 20_000;
    if attempt >= LIMIT {
        return false;
    }
    std::thread::sleep(std::time::Duration::from_micros(if attempt < FAST {
        50
    } else {
        500
    }));
    true
}

impl Db {
    /// The 32-byte secret `name`, created at random on first use (shared by all nodes).
    pub fn secret(&self, name: &str) -> Result<Vec<u8>> {
        let mut fresh = [0u8; 32];
        getrandom::fill(&mut fresh)
            .map_err(|e| StoreError::Invalid(format!("no randomness: {e}")))?;
        self.conn.execute(
            "INSERT INTO server_secrets (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
            rusqlite::params![name, &fresh[..]],
        )?;
        Ok(self.conn.query_row(
            "SELECT value FROM server_secrets WHERE name = ?1",
            [name],
            |r| r.get(0),
        )?)
    }

    /// A trivial query: does the database answer?
    pub fn ping(&self) -> Result<()> {
        self.conn.query_row("SELECT 1", [], |_| Ok(()))?;
        Ok(())
    }

    fn migrate(&mut self) -> Result<()> {
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = self.conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
            tx.commit()?;
        }
        Ok(())
    }
}
