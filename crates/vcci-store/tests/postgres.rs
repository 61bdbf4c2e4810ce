//! What only the PostgreSQL store has: partitions per organization and year created as lines
//! arrive, an organization's first load built apart and attached, lines
//! moving between partitions when their date changes, and indexes that serve every list
//! filter and sort of the API (checked on the plans). Run when VCCI_TEST_DATABASE_URL is set
//! (CI's second pass); the shared suites cover the rest on both backends.

mod common;

use vcci_core::Date;
use vcci_store::import::ImportTarget;
use vcci_store::model::lines::LineFilter;

fn postgres(t: &common::TestStore) -> Option<postgres::Client> {
    let (url, schema) = t.db.postgres()?;
    let config: postgres::Config = url.parse().unwrap();
    let mut c = config.connect(postgres::NoTls).unwrap();
    c.batch_execute(&format!("SET search_path = {schema}"))
        .unwrap();
    Some(c)
}

fn skip() {
    eprintln!("skipped: PostgreSQL only (set VCCI_TEST_DATABASE_URL)");
}

fn partitions(c: &mut postgres::Client) -> Vec<String> {
    c.query(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'transactions'::regclass ORDER BY 1",
        &[],
    )
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

fn count(c: &mut postgres::Client, table: &str) -> i64 {
    c.query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .unwrap()
        .get(0)
}

#[test]
fn partitions_are_created_as_lines_arrive_and_a_new_date_moves_a_line() {
    let t = common::store();
    let Some(mut c) = postgres(&t) else {
        return skip();
    };
    let org = t.org("acme");
    assert!(
        partitions(&mut c).is_empty(),
        "no partition before any line"
    );
    let (r, rejects) = t.import(
        &org,
        "transaction_id,date,amount,naics_code\na,2023-02-01,100,484121\nb,2023-12-31,50,484121\nc,2025-01-01,10,484121\n",
    );
    assert_eq!((r.inserted, rejects.lines().count()), (3, 1), "{rejects}");
    // One partition per organization and year.
    let part = |y: u32| format!("transactions_o{}_y{y}", org.id.0);
    assert_eq!(partitions(&mut c), [part(2023), part(2025)]);
    assert_eq!(count(&mut c, &part(2023)), 2);
    // A corrected date in a year without a partition: the partition is made and the line
    // moves (its key now points at the new day).
    let (r, _) = t.import(
        &org,
        "transaction_id,date,amount,naics_code\nb,2024-01-02,50,484121\n",
    );
    assert_eq!(r.updated, 1);
    assert_eq!(partitions(&mut c), [part(2023), part(2024), part(2025)]);
    assert_eq!(count(&mut c, &part(2023)), 1);
    assert_eq!(count(&mut c, &part(2024)), 1);
    // Another organization's lines of the same year go to a partition of its own.
    let other = t.org("globex");
    let (r, _) = t.import(
        &other,
        "transaction_id,date,amount,naics_code
a,2023-05-01,100,484121
",
    );
    assert_eq!(r.inserted, 1);
    assert_eq!(
        count(&mut c, &format!("transactions_o{}_y2023", other.id.0)),
        1
    );
    assert_eq!(count(&mut c, &part(2023)), 1);
    let day: i32 = c
        .query_one(
            "SELECT day FROM transaction_keys WHERE transaction_id = 'b'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(day, 20240102);
    let db = t.store.connect().unwrap();
    assert_eq!(
        db.get_line(org.id, "b").unwrap().unwrap().date,
        "2024-01-02"
    );
    assert_eq!(db.line_count(org.id).unwrap(), 3);
    // Deleting removes the line and its key.
    let mut db = db;
    assert!(
        db.delete_line(org.id, "a", &vcci_store::Actor::system("test"))
            .unwrap()
    );
    assert!(db.get_line(org.id, "a").unwrap().is_none());
    assert_eq!(
        count(
            &mut c,
            &format!("transaction_keys WHERE org_id = {}", org.id.0)
        ),
        2
    );
    t.assert_read_models(&org);
}

#[test]
fn every_list_filter_and_sort_is_served_by_an_index() {
    let t = common::store();
    let Some(mut c) = postgres(&t) else {
        return skip();
    };
    let org = t.org("acme");
    let mut csv = String::from("transaction_id,date,supplier_id,amount,naics_code\n");
    let naics = ["484121", "334111", "541511", "562111"];
    for i in 0..20_000 {
        csv += &format!(
            "T{i:06},{}-{:02}-{:02},S{:03},{}.5,{}\n",
            2022 + i % 3,
            i % 12 + 1,
            i % 28 + 1,
            i % 300,
            i % 900 + 1,
            naics[i % 4]
        );
    }
    let (r, _) = t.import(&org, &csv);
    assert_eq!(r.inserted, 20_000);
    // This schema's tables only: a database-wide ANALYZE would refresh the statistics that
    // other tests, running at the same time, need stale.
    c.batch_execute("ANALYZE transactions, transaction_keys")
        .unwrap();
    let db = t.store.connect().unwrap();
    let d = |s: &str| Some(Date::parse(s).unwrap());
    let filters = [
        ("no filter", LineFilter::default()),
        (
            "supplier",
            LineFilter {
                supplier_id: Some("S007".into()),
                ..Default::default()
            },
        ),
        (
            "category",
            LineFilter {
                category: Some(4),
                ..Default::default()
            },
        ),
        (
            "dates",
            LineFilter {
                from: d("2023-03-01"),
                to: d("2023-05-31"),
                ..Default::default()
            },
        ),
        (
            "supplier and dates",
            LineFilter {
                supplier_id: Some("S007".into()),
                from: d("2023-01-01"),
                to: d("2023-12-31"),
                ..Default::default()
            },
        ),
        (
            "category and dates",
            LineFilter {
                category: Some(1),
                from: d("2024-01-01"),
                to: d("2024-06-30"),
                ..Default::default()
            },
        ),
    ];
    for (name, f) in &filters {
        for after in [None, Some((20230615, "T010000"))] {
            let plan = db
                .explain_list_lines(org.id, f, after, 100)
                .unwrap()
                .join("\n");
            // Served in order by an index: no scan of a whole partition, no sort.
            assert!(!plan.contains("Seq Scan"), "{name}: {plan}");
            assert!(!plan.contains("Sort"), "{name}: {plan}");
            assert!(plan.contains("Index"), "{name}: {plan}");
            if f.supplier_id.is_some() {
                assert!(
                    plan.contains("supplier"),
                    "{name}: not the supplier index: {plan}"
                );
            } else if f.category.is_some() {
                assert!(
                    plan.contains("category"),
                    "{name}: not the category index: {plan}"
                );
            }
            // A date range reads only its years' partitions.
            if let Some(from) = f.from {
                let y = &from.to_string()[..4];
                let part = |y: &str| format!("transactions_o{}_y{y}", org.id.0);
                assert!(plan.contains(&part(y)), "{name}: {plan}");
                for other in ["2022", "2023", "2024"].iter().filter(|o| **o != y) {
                    assert!(
                        !plan.contains(&part(other)),
                        "{name}: partition {other} not pruned: {plan}"
                    );
                }
            }
            // The plan is the listing's: it returns what the API pages.
            let lines = db.list_lines(org.id, f, after, 100).unwrap();
            assert!(after.is_some() || !lines.is_empty(), "{name}");
        }
    }
    // A line by id goes through its key, then its partition's primary key.
    let plan: Vec<String> = c
        .query(
            "EXPLAIN SELECT * FROM transactions t WHERE t.org_id = 1 AND t.transaction_id = 'T000001'
               AND t.day = (SELECT day FROM transaction_keys WHERE org_id = 1 AND transaction_id = 'T000001')",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let plan = plan.join("\n");
    assert!(plan.contains("transaction_keys_pkey"), "{plan}");
    assert!(!plan.contains("Seq Scan"), "{plan}");
}

/// Adding to read-model rows (what every write transaction does) updates them in place (HOT):
/// their pages keep room for the new versions, so no index entry is written per update
/// (migration 0002; measured effect in BENCHMARKS.md).
#[test]
fn read_model_updates_stay_on_their_page() {
    let t = common::store();
    let Some(mut c) = postgres(&t) else {
        return skip();
    };
    let mut tx = c.transaction().unwrap();
    // The shape of a flush (`write/postgres.rs`, `upsert_columns`): 2,000 supplier-months, then the same
    // rows again; pg_stat_xact_* counts this transaction's row operations as they happen.
    let upsert = "INSERT INTO summary_supplier_month
                    (org_id, supplier_id, month, co2e_mg, spend_musd, line_count)
                  SELECT 7, 'S' || i, 202401, 1, 1, 1 FROM generate_series(1, 2000) AS i
                  ON CONFLICT (org_id, supplier_id, month) DO UPDATE SET
                    co2e_mg = summary_supplier_month.co2e_mg + excluded.co2e_mg,
                    spend_musd = summary_supplier_month.spend_musd + excluded.spend_musd,
                    line_count = summary_supplier_month.line_count + excluded.line_count";
    tx.batch_execute(upsert).unwrap();
    tx.batch_execute(upsert).unwrap();
    let (updated, hot): (i64, i64) = {
        let r = tx
            .query_one(
                "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables
                 WHERE relid = 'summary_supplier_month'::regclass",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(updated, 2000);
    assert!(hot >= 1900, "only {hot} of {updated} updates were HOT");
    let sum: i64 = tx
        .query_one(
            "SELECT sum(line_count)::int8 FROM summary_supplier_month WHERE org_id = 7",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(sum, 4000);
}

/// The probe for ids that exist (re-imports, updates) is one key-index lookup per id even
/// while the table's statistics predate its lines, as they do right after a large import
/// (before autovacuum analyzes it): a plan that scans the organization's keys instead made
/// re-imports ~5× slower (BENCHMARKS.md).
#[test]
fn existing_keys_are_probed_per_id_whatever_the_statistics() {
    let t = common::store();
    let Some(mut c) = postgres(&t) else {
        return skip();
    };
    let org = t.org("acme");
    // Two imports each too small to refresh the statistics (`reltuples` stays -1: never
    // analyzed), as a table is right after a large import where autovacuum is slow or off
    // (off for this table here, whatever the server does).
    c.batch_execute("ALTER TABLE transaction_keys SET (autovacuum_enabled = false)")
        .unwrap();
    for part in 0..2 {
        let mut csv = String::from("transaction_id,date,amount,naics_code\n");
        for i in part * 9_000..(part + 1) * 9_000 {
            csv += &format!(
                "T{i:06},2024-{:02}-{:02},{}.5,484121\n",
                i % 12 + 1,
                i % 28 + 1,
                i
            );
        }
        let (r, _) = t.import(&org, &csv);
        assert_eq!(r.inserted, 9_000);
    }
    let never: f32 = c
        .query_one(
            "SELECT reltuples FROM pg_class WHERE oid = 'transaction_keys'::regclass",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(never, -1.0, "the keys were never analyzed");
    let ids: Vec<String> = (5_000..6_000).map(|i| format!("T{i:06}")).collect();
    // Plans made for these very values, as the client's one-off prepared statements get.
    c.batch_execute("SET plan_cache_mode = force_custom_plan")
        .unwrap();
    let st = c
        .prepare(&format!("EXPLAIN {}", vcci_store::EXISTING_KEYS_SQL))
        .unwrap();
    let plan: Vec<String> = c
        .query(&st, &[&org.id.0, &ids])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let plan = plan.join("\n");
    assert!(
        plan.contains("transaction_keys_pkey")
            && plan.contains("Index Cond")
            && plan.contains("transaction_id = "),
        "the key index is probed by id: {plan}"
    );
    assert!(!plan.contains("Seq Scan on transaction_keys"), "{plan}");
    assert!(
        !plan.contains("Filter: "),
        "no organization-wide filter: {plan}"
    );
    let found = c
        .query(vcci_store::EXISTING_KEYS_SQL, &[&org.id.0, &ids])
        .unwrap();
    assert_eq!(found.len(), 1_000);
}

/// An import of many lines refreshes the planner's statistics of what it wrote (the year's
/// partition, the read models); a small one leaves that to autovacuum.
#[test]
fn a_large_import_refreshes_the_statistics() {
    let t = common::store();
    let Some(mut c) = postgres(&t) else {
        return skip();
    };
    let org = t.org("acme");
    // Autovacuum must not analyze behind the test's back, whatever the server's settings.
    let part = |y: u32| format!("transactions_o{}_y{y}", org.id.0);
    c.batch_execute(&format!(
        "CREATE TABLE {} PARTITION OF transactions
           FOR VALUES FROM ({o}, 20230000) TO ({o}, 20240000) WITH (autovacuum_enabled = false);
         ALTER TABLE transaction_keys SET (autovacuum_enabled = false)",
        part(2023),
        o = org.id.0
    ))
    .unwrap();
    let mut reltuples = |table: &str| -> f32 {
        c.query_one(
            "SELECT reltuples FROM pg_class WHERE oid = to_regclass($1)",
            &[&table],
        )
        .unwrap()
        .get(0)
    };
    let lines = |from: usize, n: usize, year: u32| {
        let mut csv = String::from("transaction_id,date,amount,naics_code\n");
        for i in from..from + n {
            csv += &format!("T{i:06},{year}-03-{:02},{i}.5,484121\n", i % 28 + 1);
        }
        csv
    };
    let (r, _) = t.import(&org, &lines(0, 100, 2023));
    assert_eq!(r.inserted, 100);
    assert_eq!(reltuples(&part(2023)), -1.0, "not analyzed after 100 lines");
    assert_eq!(reltuples("transaction_keys"), -1.0);
    let (r, _) = t.import(&org, &lines(100, 10_000, 2024));
    assert_eq!(r.inserted, 10_000);
    assert_eq!(reltuples(&part(2024)), 10_000.0);
    assert!(reltuples("summary_daily") > 0.0);
    assert!(reltuples("summary_supplier_month") > 0.0);
    // Only the partitions the import wrote.
    assert_eq!(reltuples(&part(2023)), -1.0);
}

fn year_lines(from: usize, n: usize) -> String {
    let mut csv = String::from("transaction_id,date,amount,naics_code,supplier_id\n");
    for i in from..from + n {
        csv += &format!(
            "T{i:06},{}-{:02}-{:02},{i}.5,484121,S{}\n",
            2022 + i % 3,
            i % 12 + 1,
            i % 28 + 1,
            i % 40
        );
    }
    csv
}

fn bulk() -> vcci_store::import::ImportOptions {
    vcci_store::import::ImportOptions {
        batch_size: 500,
        first_load_in_bulk: true,
        ..Default::default()
    }
}

/// An organization's first load builds each year's partition apart (a plain table, sorted
/// index builds) and attaches it, with the same indexes as every partition. The next import
/// is an ordinary one, as is a load into an organization that has a partition.
#[test]
fn a_first_load_builds_its_partitions_apart_and_attaches_them() {
    let t = common::store();
    let Some(mut c) = postgres(&t) else {
        return skip();
    };
    let org = t.org("acme");
    let part = |y: u32| format!("transactions_o{}_y{y}", org.id.0);
    let (r, rejects) = t.import_with(&org, year_lines(0, 3_000).as_bytes(), &bulk());
    assert_eq!(r.unwrap().inserted, 3_000, "{rejects}");
    assert_eq!(partitions(&mut c), [part(2022), part(2023), part(2024)]);
    let constraints = |c: &mut postgres::Client, t: &str| -> Vec<String> {
        c.query(
            "SELECT conname::text FROM pg_constraint WHERE conrelid = $1::text::regclass ORDER BY 1",
            &[&t],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
    };
    // Built apart: the bounds as a CHECK constraint (which spared the attach a scan).
    assert_eq!(
        constraints(&mut c, &part(2023)),
        [
            format!("{}_bounds", part(2023)),
            format!("{}_pkey", part(2023))
        ]
    );
    for y in [2022, 2023, 2024] {
        assert_eq!(count(&mut c, &part(y)), 1_000);
        // Each of its three indexes is a partition of one of `transactions`' indexes.
        let attached: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_inherits i JOIN pg_index x ON x.indexrelid = i.inhrelid
                 WHERE x.indrelid = $1::text::regclass
                   AND i.inhparent IN ('transactions_pkey'::regclass,
                       'transactions_supplier'::regclass, 'transactions_category'::regclass)",
                &[&part(y)],
            )
            .unwrap()
            .get(0);
        assert_eq!(attached, 3, "{}", part(y));
    }
    let reltuples: f32 = c
        .query_one(
            "SELECT reltuples FROM pg_class WHERE oid = $1::text::regclass",
            &[&part(2024)],
        )
        .unwrap()
        .get(0);
    assert_eq!(reltuples, 1_000.0, "analyzed by the load");
    t.assert_read_models(&org);
    let db = t.store.connect().unwrap();
    assert_eq!(db.line_count(org.id).unwrap(), 3_000);
    assert_eq!(
        db.get_line(org.id, "T000004").unwrap().unwrap().date,
        "2023-05-05"
    );
    let supplier = LineFilter {
        supplier_id: Some("S7".into()),
        ..Default::default()
    };
    assert_eq!(
        db.list_lines(org.id, &supplier, None, 100).unwrap().len(),
        75
    );

    // The organization has lines now: the same option writes as usual.
    let (r, _) = t.import_with(&org, year_lines(3_000, 30).as_bytes(), &bulk());
    assert_eq!(r.unwrap().inserted, 30);
    assert_eq!(count(&mut c, &part(2023)), 1_010);
    t.assert_read_models(&org);

    // An organization without lines but with a partition (its only line deleted) writes as
    // usual too: a load into an existing partition would lock `transactions` throughout.
    let other = t.org("globex");
    t.import(
        &other,
        "transaction_id,date,amount,naics_code\nx,2022-06-01,1,484121\n",
    );
    let mut db = t.store.connect().unwrap();
    assert!(
        db.delete_line(other.id, "x", &vcci_store::Actor::system("test"))
            .unwrap()
    );
    let (r, _) = t.import_with(&other, year_lines(0, 300).as_bytes(), &bulk());
    assert_eq!(r.unwrap().inserted, 300);
    let p2023 = format!("transactions_o{}_y2023", other.id.0);
    assert_eq!(count(&mut c, &p2023), 100);
    assert_eq!(
        constraints(&mut c, &p2023),
        [format!("{p2023}_pkey")],
        "made by the ordinary path"
    );
    t.assert_read_models(&other);
}

/// A first load that fails part way keeps nothing: no partition, no key, no read-model row;
/// the next import starts from scratch.
#[test]
fn a_failed_first_load_leaves_nothing() {
    struct FailsAfter(std::io::Cursor<Vec<u8>>, u64);
    impl std::io::Read for FailsAfter {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.position() >= self.1 {
                return Err(std::io::Error::other("the upload broke off"));
            }
            self.0.read(buf)
        }
    }
    let t = common::store();
    let Some(mut c) = postgres(&t) else {
        return skip();
    };
    let org = t.org("acme");
    let csv = year_lines(0, 5_000);
    let input = FailsAfter(std::io::Cursor::new(csv.clone().into_bytes()), 150_000);
    let (r, _) = t.import_with(&org, input, &bulk());
    assert!(r.is_err());
    assert!(partitions(&mut c).is_empty());
    assert_eq!(count(&mut c, "transaction_keys"), 0);
    assert_eq!(count(&mut c, "summary_daily"), 0);
    assert_eq!(count(&mut c, "summary_supplier_month"), 0);
    let tables: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()
               AND tablename LIKE 'transactions_o%'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(tables, 0, "no table left behind");
    let (r, _) = t.import_with(&org, csv.as_bytes(), &bulk());
    assert_eq!(r.unwrap().inserted, 5_000);
    assert_eq!(partitions(&mut c).len(), 3);
    t.assert_read_models(&org);
}

/// Migration 0003 moves the lines of a schema at version 2 (one partition per year, shared by
/// the organizations) into partitions per organization and year, a hundred per transaction,
/// resuming a migration that stopped part way, and every line, key and read model stays as
/// it was.
#[test]
fn migration_3_moves_lines_into_partitions_per_organization_and_year() {
    struct Dropped<'a>(&'a str, String);
    impl Drop for Dropped<'_> {
        fn drop(&mut self) {
            vcci_store::testing::drop_schema(self.0, &self.1);
        }
    }
    let t = common::store();
    let Some(mut c) = postgres(&t) else {
        return skip();
    };
    let (acme, globex) = (t.org("acme"), t.org("globex"));
    t.import(&acme, &year_lines(0, 600));
    t.import(&globex, &year_lines(1_000, 90));
    // The same data in a schema at version 2.
    let (url, current) = t.db.postgres().unwrap();
    let old = Dropped(url, vcci_store::testing::new_schema(url).unwrap());
    let v2 = &old.1;
    c.batch_execute(&format!("SET search_path = {v2}")).unwrap();
    c.batch_execute(include_str!("../migrations/postgres/0001_init.sql"))
        .unwrap();
    c.batch_execute(include_str!(
        "../migrations/postgres/0002_readmodel_fillfactor.sql"
    ))
    .unwrap();
    c.batch_execute(
        "CREATE TABLE vcci_schema_migrations (
             version BIGINT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now());
         INSERT INTO vcci_schema_migrations (version) VALUES (1), (2)",
    )
    .unwrap();
    for y in 2022..=2024 {
        c.batch_execute(&format!(
            "CREATE TABLE transactions_y{y} PARTITION OF transactions
               FOR VALUES FROM ({y}0000) TO ({})",
            (y + 1) * 10_000
        ))
        .unwrap();
    }
    for table in [
        "organizations",
        "suppliers",
        "imports",
        "transaction_keys",
        "transactions",
        "summary_daily",
        "summary_monthly",
        "summary_supplier_month",
    ] {
        // The columns the version-2 table has that the current one still has (later
        // migrations add some and move some: a supplier's intensity is a history now).
        let cols: Vec<String> = c
            .query(
                "SELECT column_name::text FROM information_schema.columns
                 WHERE table_schema = $1 AND table_name = $2
                   AND column_name IN (SELECT column_name FROM information_schema.columns
                                       WHERE table_schema = $3 AND table_name = $2)
                 ORDER BY ordinal_position",
                &[v2, &table, &current],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let cols = cols.join(", ");
        c.batch_execute(&format!(
            "INSERT INTO {v2}.{table} ({cols}) SELECT {cols} FROM {current}.{table}"
        ))
        .unwrap();
    }
    // Copied ids: the identities continue after them, as they would have.
    c.batch_execute(
        "SELECT setval(pg_get_serial_sequence('imports', 'id'), max(id)) FROM imports;
         SELECT setval(pg_get_serial_sequence('organizations', 'id'), max(id)) FROM organizations",
    )
    .unwrap();
    assert_eq!(count(&mut c, "transactions_y2023"), 230);
    // 40 more organizations (ids 1001-1040, lines only), a line in each year: more partitions
    // than one migration transaction makes.
    c.batch_execute(&format!(
        "INSERT INTO transactions SELECT g, transaction_id, day, supplier_id, co2e_kg, co2e_mg,
           spend_usd, spend_musd, category, method, data_quality, body
         FROM transactions, generate_series(1001, 1040) g
         WHERE org_id = {} AND transaction_id IN ('T000000', 'T000001', 'T000002')",
        acme.id.0
    ))
    .unwrap();
    // A migration interrupted part way: the renames done, acme's 2023 moved.
    c.batch_execute(include_str!(
        "../migrations/postgres/0003_org_year_partitions.sql"
    ))
    .unwrap();
    c.batch_execute(&format!(
        "CREATE TABLE transactions_o{a}_y2023 PARTITION OF transactions
           FOR VALUES FROM ({a}, 20230000) TO ({a}, 20240000);
         INSERT INTO transactions SELECT * FROM transactions_v1 WHERE org_id = {a} AND day / 10000 = 2023",
        a = acme.id.0
    ))
    .unwrap();

    let store = vcci_store::Store::open_postgres(
        url,
        vcci_store::PgSettings {
            schema: Some(v2.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    let mut expected = Vec::new();
    for org in [acme.id.0, globex.id.0].into_iter().chain(1001..=1040) {
        for y in 2022..=2024 {
            expected.push(format!("transactions_o{org}_y{y}"));
        }
    }
    expected.sort();
    assert_eq!(partitions(&mut c), expected);
    assert_eq!(
        count(&mut c, &format!("transactions_o{}_y2023", acme.id.0)),
        200
    );
    assert_eq!(
        count(&mut c, &format!("transactions_o{}_y2023", globex.id.0)),
        30
    );
    let moved: i64 = c
        .query_one(
            &format!(
                "SELECT count(*) FROM {v2}.transactions n JOIN {current}.transactions o
                   USING (org_id, day, transaction_id)
                 WHERE n.body = o.body AND n.co2e_mg = o.co2e_mg AND n.supplier_id = o.supplier_id"
            ),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(moved, 690, "every line, unchanged");
    assert_eq!(count(&mut c, "transactions"), 810, "each line once");
    assert_eq!(count(&mut c, "transactions_o1040_y2024"), 1);
    let left: Vec<String> = c
        .query("SELECT to_regclass('transactions_v1')::text", &[])
        .unwrap()
        .iter()
        .filter_map(|r| r.get::<_, Option<String>>(0))
        .collect();
    assert!(left.is_empty(), "the old table is dropped");
    let mut db = store.connect().unwrap();
    // What the later migrations leave to the binary (the read models' gas sums).
    db.finish_migrations().unwrap();
    for org in [&acme, &globex] {
        assert!(db.verify_read_models(org.id).unwrap().is_empty());
    }
    assert_eq!(db.line_count(acme.id).unwrap(), 600);
    assert_eq!(
        db.get_line(globex.id, "T001004").unwrap().unwrap().date,
        "2024-09-25"
    );
    // New lines go to the new partitions.
    drop(db);
    let mut rejects = vcci_store::import::RejectsWriter::new(Vec::new()).unwrap();
    let r = vcci_store::import::import_transactions(
        &ImportTarget {
            store: &store,
            catalog: vcci_core::catalog(),
            org: &acme,
            source: "test.csv",
            options: &Default::default(),
            actor: &vcci_store::Actor::system("test"),
        },
        year_lines(5_000, 3).as_bytes(),
        &mut rejects,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(r.inserted, 3);
    assert_eq!(
        count(&mut c, &format!("transactions_o{}_y2023", acme.id.0)),
        201
    );
}

/// Reads its input slowly (`pause` per read of at most 4 KiB), like an upload from afar.
struct Slow(std::io::Cursor<Vec<u8>>, std::time::Duration);

impl std::io::Read for Slow {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        std::thread::sleep(self.1);
        let n = buf.len().min(4096);
        self.0.read(&mut buf[..n])
    }
}

/// A first load commits once, at the end, so its job's heartbeat comes from a connection of
/// its own meanwhile (else the job would look abandoned and run twice); and a load whose job
/// was taken over by another worker stops and keeps nothing.
#[test]
fn a_first_load_keeps_its_jobs_heartbeat_and_stops_when_the_job_is_lost() {
    use vcci_store::import::JobLink;
    use vcci_store::model::jobs::JobKind;
    let t = common::store();
    let Some(mut c) = postgres(&t) else {
        return skip();
    };
    let org = t.org("acme");
    let csv = year_lines(0, 3_000); // ~120 KB: ~30 reads of 4 KiB, 60 ms each
    let job = |t: &common::TestStore| {
        let mut db = t.store.connect().unwrap();
        let id = db.create_job(org.id, JobKind::Import, "{}", false).unwrap();
        let claimed = db.claim_job("node-a").unwrap().unwrap();
        assert_eq!(claimed.id, id);
        id
    };
    let opts = |id: &str| vcci_store::import::ImportOptions {
        batch_size: 200,
        first_load_in_bulk: true,
        job: Some(JobLink {
            id: id.to_owned(),
            worker: "node-a".into(),
        }),
        ..Default::default()
    };
    let beat = |c: &mut postgres::Client, id: &str| -> (i64, i64, i64) {
        let r = c
            .query_one(
                "SELECT heartbeat_at, processed, bytes_read FROM jobs WHERE id = $1",
                &[&id],
            )
            .unwrap();
        (r.get(0), r.get(1), r.get(2))
    };

    let id = job(&t);
    let (first, _, _) = beat(&mut c, &id);
    let pause = std::time::Duration::from_millis(60);
    let (r, beats) = std::thread::scope(|s| {
        let running = s.spawn(|| {
            t.import_with(
                &org,
                Slow(std::io::Cursor::new(csv.clone().into_bytes()), pause),
                &opts(&id),
            )
        });
        let mut beats = std::collections::BTreeSet::new();
        while !running.is_finished() {
            let (at, processed, bytes) = beat(&mut c, &id);
            // Before the commit (which records the lines): heartbeats with the bytes read
            // so far as the job's progress.
            if at > first && processed == 0 {
                assert!(bytes > 0, "the bytes read so far are the job's progress");
                beats.insert(at);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        (running.join().unwrap().0, beats)
    });
    let r = r.unwrap();
    assert_eq!(r.inserted, 3_000);
    assert!(beats.len() >= 2, "heartbeats during the load: {beats:?}");
    assert_eq!(
        beat(&mut c, &id).1,
        r.lines_read as i64,
        "recorded at the commit"
    );
    t.assert_read_models(&org);

    // Another organization's first load, whose job another worker takes over part way.
    let other = t.org("globex");
    let mut db = t.store.connect().unwrap();
    let id = db
        .create_job(other.id, JobKind::Import, "{}", false)
        .unwrap();
    db.claim_job("node-a").unwrap().unwrap();
    let r = std::thread::scope(|s| {
        let running = s.spawn(|| {
            t.import_with(
                &other,
                Slow(std::io::Cursor::new(csv.clone().into_bytes()), pause),
                &opts(&id),
            )
        });
        std::thread::sleep(std::time::Duration::from_millis(300));
        c.execute(
            "UPDATE jobs SET claimed_by = 'node-b' WHERE id = $1",
            &[&id],
        )
        .unwrap();
        running.join().unwrap().0
    });
    assert!(
        matches!(r, Err(vcci_store::import::ImportError::JobLost)),
        "{r:?}"
    );
    assert_eq!(
        count(
            &mut c,
            &format!("transaction_keys WHERE org_id = {}", other.id.0)
        ),
        0
    );
    assert_eq!(
        count(
            &mut c,
            &format!(
                "pg_tables WHERE schemaname = current_schema() AND tablename LIKE 'transactions_o{}_%'",
                other.id.0
            )
        ),
        0
    );
}

/// A write to an organization whose first load is building a partition it needs waits for
/// the load (the organization's write turns) and then goes into the attached partition.
#[test]
fn a_write_during_a_first_load_waits_for_it() {
    let t = common::store();
    let Some(mut c) = postgres(&t) else {
        return skip();
    };
    let org = t.org("acme");
    let csv = year_lines(0, 3_000);
    let pause = std::time::Duration::from_millis(20);
    let (load, write) = std::thread::scope(|s| {
        let load = s.spawn(|| {
            t.import_with(
                &org,
                Slow(std::io::Cursor::new(csv.clone().into_bytes()), pause),
                &bulk(),
            )
        });
        // 500 ms into the ~1.2 s the input takes to arrive: the load's first batches (of
        // 500 lines, ~20 KB) are written, its table for 2023 among them.
        std::thread::sleep(std::time::Duration::from_millis(500));
        assert!(!load.is_finished(), "the load ended too soon");
        // Meanwhile `transactions` is free: another organization's new partition, which
        // needs the table alone, is made at once.
        c.batch_execute(
            "SET lock_timeout = '200ms';
             CREATE TABLE transactions_o99999_y2020 PARTITION OF transactions
               FOR VALUES FROM (99999, 20200000) TO (99999, 20210000);
             RESET lock_timeout",
        )
        .unwrap();
        assert!(!load.is_finished(), "the load ended too soon");
        let line = "transaction_id,date,amount,naics_code\nw1,2023-07-01,10,484121\n";
        let write = t.import_with(&org, line.as_bytes(), &Default::default()).0;
        assert!(load.is_finished(), "the write did not wait for the load");
        (load.join().unwrap().0, write)
    });
    assert_eq!(load.unwrap().inserted, 3_000);
    assert_eq!(write.unwrap().inserted, 1);
    assert_eq!(
        count(&mut c, &format!("transactions_o{}_y2023", org.id.0)),
        1_001
    );
    t.assert_read_models(&org);
}

/// With many partitions (organizations × years), connections plan each execution for its
/// parameters: a generic plan would cover every partition (measured: 2.5 s to build one over
/// 2,700). With few, they keep PostgreSQL's default, whose generic plans are cheaper.
#[test]
fn connections_use_custom_plans_once_there_are_many_partitions() {
    let t = common::store();
    let Some(mut c) = postgres(&t) else {
        return skip();
    };
    let mode = |t: &common::TestStore| {
        t.store
            .connect()
            .unwrap()
            .pg_setting("plan_cache_mode")
            .unwrap()
            .unwrap()
    };
    assert_eq!(mode(&t), "auto");
    for org in 0..260 {
        c.batch_execute(&format!(
            "CREATE TABLE transactions_o{o}_y2024 PARTITION OF transactions
               FOR VALUES FROM ({o}, 20240000) TO ({o}, 20250000)",
            o = 5_000 + org
        ))
        .unwrap();
    }
    assert_eq!(mode(&t), "force_custom_plan");
}
