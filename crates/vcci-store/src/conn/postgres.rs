//! Connecting to PostgreSQL: settings, the connection with its cache of prepared
//! statements, and the advisory-lock key space of its schema.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

use postgres::types::ToSql;

use super::{Arg, Conn};
use crate::Result;

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

/// A PostgreSQL connection with a cache of prepared statements.
pub(crate) struct PgConn {
    /// Always `Some` but in `Drop`.
    pub(crate) client: RefCell<PgClient>,
    stmts: RefCell<HashMap<String, postgres::Statement>>,
    /// Tables this connection has seen exist (they are only ever added while it lives, or
    /// a write that assumed one fails and is retried): spares a catalogue query per write.
    known_tables: RefCell<HashSet<String>>,
    /// Mixed into every advisory lock key (`lock_key`): a hash of the schema the store uses
    /// (however it was chosen: settings, URL options, the role's search_path), so that stores
    /// in different schemas of one database never wait for each other's locks
    /// (organization ids repeat across schemas).
    lock_space: i64,
}

/// The client, taken out again when the connection is dropped.
pub(crate) struct PgClient(Option<postgres::Client>);

impl std::ops::Deref for PgClient {
    type Target = postgres::Client;
    fn deref(&self) -> &postgres::Client {
        self.0.as_ref().expect("a live client")
    }
}

impl std::ops::DerefMut for PgClient {
    fn deref_mut(&mut self) -> &mut postgres::Client {
        self.0.as_mut().expect("a live client")
    }
}

impl Drop for PgConn {
    /// `postgres` closes a connection by blocking on its own small runtime, which tokio
    /// forbids on a thread that drives async tasks: there the client is closed on a thread
    /// of its own (a pool dropped at the end of an async `main` or test, say).
    fn drop(&mut self) {
        let Some(client) = self.client.get_mut().0.take() else {
            return;
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            let _ = std::thread::Builder::new()
                .name("vcci-pg-close".into())
                .spawn(move || drop(client));
        } else {
            drop(client);
        }
    }
}

impl std::fmt::Debug for PgConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConn").finish_non_exhaustive()
    }
}

/// Prepared statements kept per connection; dynamic SQL (filters, IN lists) is bounded by
/// clearing the cache when it grows past this.
const MAX_CACHED_STATEMENTS: usize = 512;

/// FNV-1a, 64 bits: the same in every process (the advisory-lock space of a schema, write
/// buckets of ids, a first load's set of the ids it has seen).
pub(crate) fn fnv1a(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl PgConn {
    /// A connection whose tables are those of `schema` (its `current_schema()`).
    fn new(client: postgres::Client, schema: &str) -> PgConn {
        // A hash of the schema name, the same in every process; none for `public`, the
        // usual deployment (its keys are the plain ones).
        let lock_space = if schema == "public" {
            0
        } else {
            fnv1a(schema) as i64
        };
        PgConn {
            lock_space,
            client: RefCell::new(PgClient(Some(client))),
            stmts: RefCell::new(HashMap::new()),
            known_tables: RefCell::new(HashSet::new()),
        }
    }

    /// The advisory lock key of `key` for this connection's schema.
    pub(crate) fn lock_key(&self, key: i64) -> i64 {
        key ^ self.lock_space
    }

    /// Whether this connection has seen the table `name` exist.
    pub(crate) fn knows_table(&self, name: &str) -> bool {
        self.known_tables.borrow().contains(name)
    }

    /// Remembers that the table `name` exists.
    pub(crate) fn learn_table(&self, name: String) {
        self.known_tables.borrow_mut().insert(name);
    }

    pub(super) fn statement(&self, sql: &str) -> Result<postgres::Statement> {
        if let Some(st) = self.stmts.borrow().get(sql) {
            return Ok(st.clone());
        }
        let st = self.client.borrow_mut().prepare(&pg_placeholders(sql))?;
        let mut cache = self.stmts.borrow_mut();
        if cache.len() >= MAX_CACHED_STATEMENTS {
            cache.clear();
        }
        cache.insert(sql.to_owned(), st.clone());
        Ok(st)
    }

    pub(super) fn params<'a>(args: &'a [Arg<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
        args.iter().map(|a| a as &(dyn ToSql + Sync)).collect()
    }
}

/// `?N` placeholders as PostgreSQL's `$N`. The store's SQL has no `?` anywhere else.
fn pg_placeholders(sql: &str) -> String {
    sql.replace('?', "$")
}

/// Inheritance children (partitions) in the schema from which connections use custom plans
/// only.
const CUSTOM_PLANS_FROM: i64 = 256;

/// The store's address for logs (no password).
pub(super) fn describe(config: &postgres::Config, settings: &PgSettings) -> String {
    format!(
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
    )
}

pub(super) fn connect(config: &postgres::Config, settings: &PgSettings) -> Result<Conn> {
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
    // Advisory lock keys are per schema (`PgConn::lock_key`); the partitions of the
    // schema's tables decide the plan cache mode.
    let row = client.query_one(
        "SELECT current_schema()::text,
           (SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE c.relnamespace = to_regnamespace(current_schema()::text))",
        &[],
    )?;
    let schema: Option<String> = row.get(0);
    let partitions: i64 = row.get(1);
    // With one partition per organization and year, a prepared statement's generic plan
    // covers every partition, and PostgreSQL builds one at a statement's sixth execution to
    // compare it with the custom plans: measured 2.5 s for a list query over 2,700
    // partitions (after which it kept the custom plans, pruned to the organization's few).
    // Past `CUSTOM_PLANS_FROM` partitions, connections plan every execution for its
    // parameters instead; below, generic plans are kept, as they are cheaper (forcing custom
    // plans with 3 partitions took random line details from 19,064 to 11,436 req/s).
    if partitions > CUSTOM_PLANS_FROM {
        client.batch_execute("SET plan_cache_mode = force_custom_plan")?;
    }
    let conn = PgConn::new(client, schema.as_deref().unwrap_or("public"));
    Ok(Conn::Pg(Box::new(conn)))
}
