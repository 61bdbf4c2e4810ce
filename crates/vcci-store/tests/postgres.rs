//! What only the PostgreSQL store has: yearly partitions created as lines arrive, lines
//! moving between partitions when their date changes, and indexes that serve every list
//! filter and sort of the API (checked on the plans). Run when VCCI_TEST_DATABASE_URL is set
//! (CI's second pass); the shared suites cover the rest on both backends.

mod common;

use vcci_core::Date;
use vcci_store::lines::LineFilter;

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
    assert_eq!(
        partitions(&mut c),
        ["transactions_y2023", "transactions_y2025"]
    );
    assert_eq!(count(&mut c, "transactions_y2023"), 2);
    // A corrected date in a year without a partition: the partition is made and the line
    // moves (its key now points at the new day).
    let (r, _) = t.import(
        &org,
        "transaction_id,date,amount,naics_code\nb,2024-01-02,50,484121\n",
    );
    assert_eq!(r.updated, 1);
    assert_eq!(
        partitions(&mut c),
        [
            "transactions_y2023",
            "transactions_y2024",
            "transactions_y2025"
        ]
    );
    assert_eq!(count(&mut c, "transactions_y2023"), 1);
    assert_eq!(count(&mut c, "transactions_y2024"), 1);
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
    assert!(db.delete_line(org.id, "a").unwrap());
    assert!(db.get_line(org.id, "a").unwrap().is_none());
    assert_eq!(count(&mut c, "transaction_keys"), 2);
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
                assert!(
                    plan.contains(&format!("transactions_y{y}")),
                    "{name}: {plan}"
                );
                for other in ["2022", "2023", "2024"].iter().filter(|o| **o != y) {
                    assert!(
                        !plan.contains(&format!("transactions_y{other}")),
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
    // The shape of a flush (`pg::upsert_columns`): 2,000 supplier-months, then the same
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
    c.batch_execute(
        "CREATE TABLE transactions_y2023 PARTITION OF transactions
           FOR VALUES FROM (20230000) TO (20240000) WITH (autovacuum_enabled = false);
         ALTER TABLE transaction_keys SET (autovacuum_enabled = false)",
    )
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
    assert_eq!(
        reltuples("transactions_y2023"),
        -1.0,
        "not analyzed after 100 lines"
    );
    assert_eq!(reltuples("transaction_keys"), -1.0);
    let (r, _) = t.import(&org, &lines(100, 10_000, 2024));
    assert_eq!(r.inserted, 10_000);
    assert_eq!(reltuples("transactions_y2024"), 10_000.0);
    assert!(reltuples("summary_daily") > 0.0);
    assert!(reltuples("summary_supplier_month") > 0.0);
    // Only the partitions the import wrote.
    assert_eq!(reltuples("transactions_y2023"), -1.0);
}
