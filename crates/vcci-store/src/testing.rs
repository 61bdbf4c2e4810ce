//! Fresh stores for tests: SQLite in a temporary directory, or, when
//! `VCCI_TEST_DATABASE_URL` names a PostgreSQL database, a new schema of that database
//! (dropped again when the `TestDb` is dropped). The same suites run on both backends:
//! `cargo test` uses SQLite; CI runs the suite again with the variable set.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::Result;
use crate::conn::{PgSettings, Store};

/// The variable that selects PostgreSQL for tests.
pub const TEST_DATABASE_URL: &str = "VCCI_TEST_DATABASE_URL";

/// A test's store; a PostgreSQL schema is dropped with it.
#[derive(Debug)]
pub struct TestDb {
    pub store: Store,
    schema: Option<(String, String)>,
}

/// The PostgreSQL URL tests should use, if any.
pub fn test_database_url() -> Option<String> {
    std::env::var(TEST_DATABASE_URL)
        .ok()
        .filter(|u| !u.is_empty())
}

/// A new, empty store: PostgreSQL (a schema of its own) when `VCCI_TEST_DATABASE_URL` is set,
/// else SQLite in `dir`.
pub fn fresh_store(dir: &Path) -> Result<TestDb> {
    blocking(|| fresh_store_here(dir))
}

fn fresh_store_here(dir: &Path) -> Result<TestDb> {
    let t = fresh_store_migrated(dir)?;
    t.store.connect()?.finish_migrations()?;
    Ok(t)
}

fn fresh_store_migrated(dir: &Path) -> Result<TestDb> {
    match test_database_url() {
        None => Ok(TestDb {
            store: Store::open_dir(dir)?,
            schema: None,
        }),
        Some(url) => {
            let schema = new_schema(&url)?;
            let store = Store::open_postgres(
                &url,
                PgSettings {
                    schema: Some(schema.clone()),
                    ..PgSettings::default()
                },
            )?;
            Ok(TestDb {
                store,
                schema: Some((url, schema)),
            })
        }
    }
}

/// Creates a uniquely named schema in the database at `url` and returns its name.
pub fn new_schema(url: &str) -> Result<String> {
    static N: AtomicU64 = AtomicU64::new(0);
    let mut r = [0u8; 4];
    getrandom::fill(&mut r)
        .map_err(|e| crate::StoreError::internal(format!("no randomness: {e}")))?;
    let name = format!(
        "vcci_t{}_{}_{:08x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        u32::from_le_bytes(r)
    );
    blocking(|| {
        let mut client = connect(url)?;
        client.batch_execute(&format!("CREATE SCHEMA {name}"))?;
        Ok(name)
    })
}

/// Drops a schema made by `new_schema` (best effort).
pub fn drop_schema(url: &str, schema: &str) {
    blocking(|| {
        if let Ok(mut client) = connect(url) {
            let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
        }
    })
}

fn connect(url: &str) -> Result<postgres::Client> {
    let config: postgres::Config = url.parse().map_err(|e| {
        crate::StoreError::invalid(
            "VCCI_TEST_DATABASE_URL",
            format!("invalid PostgreSQL URL: {e}"),
        )
    })?;
    Ok(config.connect(postgres::NoTls)?)
}

impl TestDb {
    /// The schema and URL of a PostgreSQL test store.
    pub fn postgres(&self) -> Option<(&str, &str)> {
        self.schema.as_ref().map(|(u, s)| (u.as_str(), s.as_str()))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((url, schema)) = &self.schema {
            drop_schema(url, schema);
        }
    }
}

/// Runs `f` on a thread of its own and returns its result. Async tests call the store
/// through this: the PostgreSQL client blocks on a runtime of its own, which tokio forbids on
/// a thread that drives async tasks.
pub fn blocking<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// Runs `sql` (fixed text of a test, never user input) on `db` as it is: tests use it to
/// do what the store never does, such as tampering with the audit log. Returns the rows
/// changed.
pub fn execute_sql(db: &crate::Db, sql: &str) -> Result<u64> {
    db.conn.execute(sql, &[])
}
