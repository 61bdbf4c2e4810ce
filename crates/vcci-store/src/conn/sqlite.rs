//! Connecting to the embedded SQLite file: pragmas and the busy handler.

use std::path::Path;

use rusqlite::Connection;

use super::Conn;
use crate::Result;

pub(super) fn connect(path: &Path) -> Result<Conn> {
    let mut conn = Connection::open(path)?;
    // 8 KiB pages suit ~300-byte transaction rows; the page size only takes effect when the
    // file is created.
    conn.execute_batch(
        "PRAGMA page_size = 8192;
         PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -32768;
         PRAGMA foreign_keys = ON;",
    )?;
    conn.busy_handler(Some(busy))?;
    Ok(Conn::Sqlite(conn))
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
