//! Opening the database: which backend, connection settings, migrations.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;

use crate::sql::{Conn, Dialect, PgConn, args};
use crate::{Result, StoreError};

const SQLITE_MIGRATIONS: &[&str] = &[
    include_str!("../migrations/sqlite/0001_init.sql"),
    include_str!("../migrations/sqlite/0002_secrets.sql"),
    include_str!("../migrations/sqlite/0003_jobs.sql"),
    include_str!("../migrations/sqlite/0004_monthly.sql"),
];

const PG_MIGRATIONS: &[&str] = &[
    include_str!("../migrations/postgres/0001_init.sql"),
    include_str!("../migrations/postgres/0002_readmodel_fillfactor.sql"),
    include_str!("../migrations/postgres/0003_org_year_partitions.sql"),
];

/// Settings of PostgreSQL connections (SQLite has none that a deployment tunes).
#[derive(Clone, Debug)]
pub struct PgSettings {
    /// Longest a connection attempt waits.
    pub connect_timeout: Duration,
    /// Longest one statement may run before the server cancels it (0 = no limit).
    pub statement_timeout: Duration,
    /// Schema to work in (default: the server's `search_path`). Tests use one per test.
    pub schema: Option<String>,
}

impl Default for PgSettings {
    fn default() -> Self {
        PgSettings {
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(60),
            schema: None,
        }
    }
}

/// Where the data lives: a SQLite file or a PostgreSQL database. Cheap to clone;
/// connections are opened as needed.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Arc<Backend>,
}

// Behind an `Arc`, one per store: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Backend {
    Sqlite(PathBuf),
    Postgres {
        config: postgres::Config,
        settings: PgSettings,
    },
}

/// One connection with vcci's settings applied.
#[derive(Debug)]
pub struct Db {
    pub(crate) conn: Conn,
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
        Store::open(Backend::Sqlite(path.to_owned()))
    }

    /// Opens the PostgreSQL database at `url` (`postgres://user@host:port/db`) and applies
    /// pending migrations (one node at a time, under an advisory lock).
    pub fn open_postgres(url: &str, settings: PgSettings) -> Result<Store> {
        let config: postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Invalid(format!("invalid PostgreSQL URL: {e}")))?;
        if let Some(s) = &settings.schema
            && !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(StoreError::Invalid(format!("invalid schema name '{s}'")));
        }
        Store::open(Backend::Postgres { config, settings })
    }

    fn open(backend: Backend) -> Result<Store> {
        let store = Store {
            backend: Arc::new(backend),
        };
        let db = store.connect()?;
        match db.conn.dialect() {
            Dialect::Sqlite => db.migrate_sqlite()?,
            Dialect::Postgres => db.migrate_pg()?,
        }
        Ok(store)
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
            Backend::Postgres { config, settings } => format!(
                "postgres://{}@{}/{}{}",
                config.get_user().unwrap_or(""),
                config
                    .get_hosts()
                    .first()
                    .map(|h| match h {
                        postgres::config::Host::Tcp(h) => h.clone(),
                        postgres::config::Host::Unix(p) => p.display().to_string(),
                    })
                    .unwrap_or_default(),
                config.get_dbname().unwrap_or(""),
                settings
                    .schema
                    .as_deref()
                    .map_or(String::new(), |s| format!(" (schema {s})"))
            ),
        }
    }

    /// A new connection. Cheap enough for a CLI command; servers keep a few around.
    pub fn connect(&self) -> Result<Db> {
        match &*self.backend {
            Backend::Sqlite(path) => connect_sqlite(path),
            Backend::Postgres { config, settings } => connect_pg(config, settings),
        }
    }
}

/// Partitions of `transactions` from which PostgreSQL connections use custom plans only.
const CUSTOM_PLANS_FROM: i64 = 256;

fn connect_sqlite(path: &Path) -> Result<Db> {
    let mut conn = Connection::open(path)?;
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
    Ok(Db {
        conn: Conn::Sqlite(conn),
    })
}

fn connect_pg(config: &postgres::Config, settings: &PgSettings) -> Result<Db> {
    let mut config = config.clone();
    // Options given in the URL (`?options=...`) are kept; ours follow.
    let mut options = config
        .get_options()
        .map_or(String::new(), |o| format!("{o} "));
    options.push_str(&format!(
        "-c statement_timeout={}",
        settings.statement_timeout.as_millis()
    ));
    if let Some(s) = &settings.schema {
        options.push_str(&format!(" -c search_path={s}"));
    }
    config
        .options(&options)
        .connect_timeout(settings.connect_timeout)
        .application_name("vcci");
    let mut client = config.connect(postgres::NoTls)?;
    // Advisory lock keys are per schema (`PgConn::lock_key`).
    let schema: Option<String> = client
        .query_one("SELECT current_schema()::text", &[])?
        .get(0);
    // With one partition of `transactions` per organization and year, a prepared statement's
    // generic plan covers every partition, and PostgreSQL builds one at a statement's sixth
    // execution to compare it with the custom plans: measured 2.5 s for a list query over
    // 2,700 partitions (after which it kept the custom plans, pruned to the organization's
    // few). Past `CUSTOM_PLANS_FROM` partitions, connections plan every execution for its
    // parameters instead; below, generic plans are kept, as they are cheaper (forcing custom
    // plans with 3 partitions took random line details from 19,064 to 11,436 req/s).
    let partitions: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = to_regclass('transactions')",
            &[],
        )?
        .get(0);
    if partitions > CUSTOM_PLANS_FROM {
        client.batch_execute("SET plan_cache_mode = force_custom_plan")?;
    }
    let conn = PgConn::new(client, schema.as_deref().unwrap_or("public"));
    Ok(Db {
        conn: Conn::Pg(Box::new(conn)),
    })
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

/// Advisory lock key under which PostgreSQL migrations run (one node at a time).
const PG_MIGRATION_LOCK: i64 = 0x7663_6369_0001;

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

    /// The 32-byte secret `name`, created at random on first use (shared by all nodes).
    pub fn secret(&self, name: &str) -> Result<Vec<u8>> {
        let mut fresh = [0u8; 32];
        getrandom::fill(&mut fresh)
            .map_err(|e| StoreError::Invalid(format!("no randomness: {e}")))?;
        self.conn.execute(
            "INSERT INTO server_secrets (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
            args![name, &fresh[..]],
        )?;
        self.conn.query_one(
            "SELECT value FROM server_secrets WHERE name = ?1",
            args![name],
            |r| Ok(r.blob(0)?.to_vec()),
        )
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

    fn migrate_sqlite(&self) -> Result<()> {
        let c = self.conn.sqlite().expect("a SQLite connection");
        let version: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        for (i, sql) in SQLITE_MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = self.conn.begin()?;
            tx.batch(sql)?;
            tx.batch(&format!("PRAGMA user_version = {}", i + 1))?;
            tx.commit()?;
        }
        Ok(())
    }

    fn migrate_pg(&self) -> Result<()> {
        let lock = self
            .conn
            .pg()
            .map_or(PG_MIGRATION_LOCK, |pg| pg.lock_key(PG_MIGRATION_LOCK));
        self.conn
            .query_one("SELECT pg_advisory_lock(?1)", args![lock], |_| Ok(()))?;
        let result = (|| {
            self.conn.batch(
                "CREATE TABLE IF NOT EXISTS vcci_schema_migrations (
                     version BIGINT PRIMARY KEY,
                     applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
                 )",
            )?;
            let version = self.conn.query_one(
                "SELECT COALESCE(MAX(version), 0) FROM vcci_schema_migrations",
                &[],
                |r| r.i64(0),
            )?;
            for (i, sql) in PG_MIGRATIONS.iter().enumerate().skip(version as usize) {
                if i + 1 == crate::pg::ORG_PARTITIONS_VERSION {
                    // Its own transactions (see the file); recorded below once complete.
                    crate::pg::move_to_org_partitions(&self.conn, sql)?;
                }
                let tx = self.conn.begin()?;
                if i + 1 == crate::pg::ORG_PARTITIONS_VERSION {
                    tx.batch(crate::pg::ORG_PARTITIONS_DONE)?;
                } else {
                    tx.batch(sql)?;
                }
                tx.execute(
                    "INSERT INTO vcci_schema_migrations (version) VALUES (?1)",
                    args![i as i64 + 1],
                )?;
                tx.commit()?;
            }
            Ok(())
        })();
        self.conn
            .query_one("SELECT pg_advisory_unlock(?1)", args![lock], |_| Ok(()))?;
        result
    }
}
