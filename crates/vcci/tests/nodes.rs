//! Several `vcci serve` processes sharing one PostgreSQL and one Redis, as behind a load
//! balancer: writes on one node are read on another at once, rate limits are shared, an
//! import runs exactly once, and a node killed mid-import is finished by another with no
//! line lost or duplicated. Needs VCCI_TEST_DATABASE_URL and VCCI_TEST_REDIS_URL (set by
//! CI's second pass); skipped without them.

mod common;

use std::time::Duration;

use common::{Node, Schema, csv, finished, services, upload};
use serde_json::json;

/// Two nodes over `schema`, sharing `redis` under the schema's own key prefix, with `extra`
/// flags; both have reached Redis.
fn two_nodes(schema: &Schema, redis: &str, extra: &[&str]) -> (Node, Node) {
    let prefix = format!("{}:", schema.name);
    let mut args = vec!["--redis-url", redis, "--redis-prefix", &prefix];
    args.extend_from_slice(extra);
    let (a, b) = (Node::start(schema, &args), Node::start(schema, &args));
    a.wait_ready("ok");
    b.wait_ready("ok");
    (a, b)
}

fn line(id: &str, amount: f64) -> serde_json::Value {
    json!({"transaction_id": id, "date": "2024-05-17", "amount": amount, "currency": "USD", "naics_code": "484121"})
}

#[test]
fn a_write_on_one_node_is_read_on_the_other_at_once() {
    let Some((pg, redis)) = services() else {
        return;
    };
    let schema = Schema::new(&pg);
    let key = schema.key("acme", "admin");
    let (a, b) = two_nodes(&schema, &redis, &["--rate-limit", "0"]);
    let mut expected = 0;
    for i in 0..25 {
        // B's caches (in process and in Redis) hold the summary and the list before the write.
        let (s, before) = b.get("/api/v1/emissions/summary", Some(&key));
        assert_eq!(s, 200, "{before}");
        assert_eq!(before["transaction_count"], expected);
        let (s, _) = b.get("/api/v1/transactions?limit=5", Some(&key));
        assert_eq!(s, 200);
        let id = format!("n{i:03}");
        let (s, w) = a.post(
            "/api/v1/transactions",
            &key,
            &json!({"transactions": [line(&id, 100.0 + f64::from(i))]}),
        );
        assert_eq!((s, &w["accepted"]), (200, &json!(1)), "{w}");
        expected += 1;
        // Read on B right after A answered: never the cached, older answer.
        let (s, after) = b.get("/api/v1/emissions/summary", Some(&key));
        assert_eq!(s, 200);
        assert_eq!(
            after["transaction_count"], expected,
            "write {i} not seen on B"
        );
        let (_, page) = b.get("/api/v1/transactions?limit=5", Some(&key));
        assert!(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l["transaction_id"] == id),
            "write {i} missing from B's list: {page}"
        );
        let (s, one) = b.get(&format!("/api/v1/transactions/{id}"), Some(&key));
        assert_eq!(s, 200, "{one}");
        // And the other way round, for an update of the same line.
        let (s, _) = b.post(
            "/api/v1/transactions",
            &key,
            &json!({"transactions": [line(&id, 1.0)]}),
        );
        assert_eq!(s, 200);
        let (_, one) = a.get(&format!("/api/v1/transactions/{id}"), Some(&key));
        assert_eq!(one["amount"], 1.0, "B's update not seen on A: {one}");
    }
    // The shared cache level was used: B answered some reads from entries A computed, or
    // the reverse.
    let metrics = |n: &Node| common::request_raw(&n.addr, "GET", "/metrics", None, "", None).1;
    let text = String::from_utf8(metrics(&a)).unwrap() + &String::from_utf8(metrics(&b)).unwrap();
    assert!(text.contains("vcci_cache_up{level=\"redis\"} 1"), "{text}");
}

/// A period closed on one node is enforced at once on the other (the write path reads the
/// closed years inside each write's transaction), and so is its reopening.
#[test]
fn a_close_on_one_node_is_enforced_at_once_on_the_other() {
    let Some((pg, redis)) = services() else {
        return;
    };
    let schema = Schema::new(&pg);
    let key = schema.key("acme", "admin");
    let (a, b) = two_nodes(&schema, &redis, &["--rate-limit", "0"]);
    for round in 0..3 {
        let id = format!("c{round}");
        let (s, w) = b.post(
            "/api/v1/transactions",
            &key,
            &json!({"transactions": [line(&id, 100.0)]}),
        );
        assert_eq!((s, &w["accepted"]), (200, &json!(1)), "{w}");
        let (s, c) = a.post("/api/v1/periods/2024/close", &key, &json!({}));
        assert_eq!(s, 200, "{c}");
        // Right after A answered: B refuses a change to 2024, and its delete.
        let (s, w) = b.post(
            "/api/v1/transactions",
            &key,
            &json!({"transactions": [line(&id, 200.0)]}),
        );
        assert_eq!((s, &w["accepted"]), (200, &json!(0)), "{w}");
        assert_eq!(w["rejected"][0]["error"]["code"], "period_closed", "{w}");
        let (s, d) = common::request(
            &b.addr,
            "DELETE",
            &format!("/api/v1/transactions/{id}"),
            Some(&key),
            None,
        );
        assert_eq!(
            (s, d["error"]["code"].as_str()),
            (409, Some("period_closed")),
            "{d}"
        );
        let (s, p) = b.get("/api/v1/periods/2024", Some(&key));
        assert_eq!((s, p["status"].as_str()), (200, Some("closed")), "{p}");
        let (s, r) = a.post(
            "/api/v1/periods/2024/reopen",
            &key,
            &json!({"reason": format!("round {round}")}),
        );
        assert_eq!(s, 200, "{r}");
        let (s, w) = b.post(
            "/api/v1/transactions",
            &key,
            &json!({"transactions": [line(&id, 300.0)]}),
        );
        assert_eq!((s, &w["accepted"]), (200, &json!(1)), "{w}");
    }
    let (_, p) = b.get("/api/v1/periods/2024", Some(&key));
    assert_eq!(p["versions"].as_array().unwrap().len(), 3, "{p}");
}

#[test]
fn rate_limits_are_shared_by_the_nodes() {
    let Some((pg, redis)) = services() else {
        return;
    };
    let schema = Schema::new(&pg);
    let key = schema.key("acme", "viewer");
    // 1 request/s sustained, bursts of 2 (--rate-limit sets burst = 2 × rate).
    let (a, b) = two_nodes(&schema, &redis, &["--rate-limit", "1"]);
    let codes: Vec<u16> = (0..4)
        .map(|i| {
            let n = if i % 2 == 0 { &a } else { &b };
            n.get("/api/v1/emissions/summary", Some(&key)).0
        })
        .collect();
    // Per node, each would allow its own burst of 2: all four would pass.
    assert_eq!(&codes[..2], &[200, 200], "{codes:?}");
    assert!(
        codes[2..].contains(&429),
        "the nodes did not share the bucket: {codes:?}"
    );
    assert!(
        codes.iter().filter(|c| **c == 200).count() <= 3,
        "{codes:?}"
    );
}

#[test]
fn imports_uploaded_to_either_node_run_exactly_once() {
    six_imports_on_two_nodes(&[]);
}

#[test]
fn concurrent_first_loads_of_one_organization_run_exactly_once() {
    // Every job asks for a first load (--bulk-load-mb 0): the one that takes the
    // organization's write turns first loads in bulk; the others, waiting for those turns,
    // find lines there and import as usual.
    six_imports_on_two_nodes(&["--bulk-load-mb", "0"]);
}

fn six_imports_on_two_nodes(extra: &[&str]) {
    let Some((pg, redis)) = services() else {
        return;
    };
    let schema = Schema::new(&pg);
    let key = schema.key("acme", "admin");
    let mut args = vec!["--rate-limit", "0"];
    args.extend_from_slice(extra);
    let (a, b) = two_nodes(&schema, &redis, &args);
    let mut jobs = Vec::new();
    for i in 0..6 {
        let node = if i % 2 == 0 { &a } else { &b };
        jobs.push(upload(node, &key, &csv(&format!("J{i}-"), 5_000)));
    }
    for id in &jobs {
        let j = finished(&a, &key, id, Duration::from_secs(120));
        assert_eq!(j["status"], "succeeded", "{j}");
        assert_eq!(j["attempts"], 1, "run more than once: {j}");
        assert_eq!(j["result"]["accepted"], 5_000, "{j}");
        assert_eq!(
            j["result"]["unchanged"], 0,
            "a second run would find its lines: {j}"
        );
    }
    let (_, s) = b.get("/api/v1/emissions/summary", Some(&key));
    assert_eq!(s["transaction_count"], 30_000);
    let per_job = schema.sql("SELECT max(attempts) FROM jobs");
    assert_eq!(per_job, ["1"]);
    if !extra.is_empty() {
        // One first load, whose partition carries its bounds constraint.
        let bounds = schema.sql(
            "SELECT count(*) FROM pg_constraint WHERE connamespace = current_schema()::regnamespace
               AND conname LIKE 'transactions_o%_bounds'",
        );
        assert_eq!(bounds, ["1"]);
    }
    let out = schema.vcci(&["verify", "--org", "acme"]);
    assert!(out.contains("agree"), "{out}");
}

#[test]
fn a_node_killed_mid_import_is_finished_by_another_without_loss_or_duplicates() {
    let Some((pg, redis)) = services() else {
        return;
    };
    let schema = Schema::new(&pg);
    let key = schema.key("acme", "admin");
    let prefix = format!("{}:", schema.name);
    let args = [
        "--redis-url",
        &redis,
        "--redis-prefix",
        &prefix,
        "--rate-limit",
        "0",
        "--job-stale",
        "2",
    ];
    let mut a = Node::start(&schema, &args);
    let n = 300_000;
    let id = upload(&a, &key, &csv("K", n));
    // Wait until A has committed part of the lines, then kill it without warning.
    let started = std::time::Instant::now();
    loop {
        let (_, j) = a.get(&format!("/api/v1/jobs/{id}"), Some(&key));
        let done = j["progress"]["processed"].as_i64().unwrap_or(0);
        if done > 0 && done < n as i64 {
            break;
        }
        assert_ne!(
            j["status"], "succeeded",
            "finished before the kill: use more lines"
        );
        assert!(started.elapsed() < Duration::from_secs(120), "{j}");
        std::thread::sleep(Duration::from_millis(5));
    }
    a.kill();
    let committed: i64 = schema.sql("SELECT count(*) FROM transaction_keys")[0]
        .parse()
        .unwrap();
    assert!(committed > 0 && committed < n as i64, "{committed}");
    // Another node finds the job orphaned (no heartbeat for 2 s) and runs it again.
    let b = Node::start(&schema, &args);
    let j = finished(&b, &key, &id, Duration::from_secs(180));
    assert_eq!(j["status"], "succeeded", "{j}");
    assert_eq!(j["attempts"], 2, "{j}");
    assert_eq!(
        j["result"]["unchanged"], committed,
        "committed lines were not redone: {j}"
    );
    assert_eq!(
        j["result"]["inserted"].as_i64().unwrap() + committed,
        n as i64,
        "{j}"
    );
    assert_eq!(j["result"]["accepted"], n, "{j}");
    // Exactly the file's lines, each once, and read models that agree with them.
    let (_, s) = b.get("/api/v1/emissions/summary", Some(&key));
    assert_eq!(s["transaction_count"], n);
    assert_eq!(
        schema.sql("SELECT count(*) FROM transactions"),
        [n.to_string()]
    );
    assert_eq!(
        schema.sql("SELECT count(*) - count(DISTINCT transaction_id) FROM transactions"),
        ["0"]
    );
    let out = schema.vcci(&["verify", "--org", "acme"]);
    assert!(out.contains("agree"), "{out}");
    // The audit log: the killed run is sealed by the recovery with the lines it committed,
    // the second run with the rest; the chain holds and nothing is left unsealed.
    let (_, v) = b.get("/api/v1/audit/verify", Some(&key));
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["unsealed_imports"], serde_json::json!([]), "{v}");
    let (_, l) = b.get("/api/v1/audit?action=import", Some(&key));
    let runs = l["data"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{l}");
    assert_eq!(
        (
            runs[1]["detail"]["status"].as_str(),
            runs[1]["actor"].as_str(),
            runs[1]["lines"].as_i64()
        ),
        (Some("interrupted"), Some("job recovery"), Some(committed)),
        "{l}"
    );
    assert_eq!(runs[0]["detail"]["status"], "succeeded", "{l}");
    assert_eq!(
        runs[0]["lines"].as_i64().unwrap() + committed,
        n as i64,
        "{l}"
    );
    assert!(
        runs[0]["actor"].as_str().unwrap().ends_with("(admin)"),
        "{l}"
    );
}

#[test]
fn a_node_killed_mid_first_load_leaves_nothing_and_another_redoes_it() {
    // An organization's first load (here whatever its size: --bulk-load-mb 0) is one
    // transaction: killed part way, nothing of it stays, and the node that recovers the job
    // loads the whole file again as a first load.
    let Some((pg, redis)) = services() else {
        return;
    };
    let schema = Schema::new(&pg);
    let key = schema.key("acme", "admin");
    let prefix = format!("{}:", schema.name);
    let args = [
        "--redis-url",
        &redis,
        "--redis-prefix",
        &prefix,
        "--rate-limit",
        "0",
        "--job-stale",
        "2",
        "--bulk-load-mb",
        "0",
    ];
    let mut a = Node::start(&schema, &args);
    let n = 300_000;
    let id = upload(&a, &key, &csv("F", n));
    // Wait until A's load is under way (its heartbeat records the bytes read), then kill it.
    let started = std::time::Instant::now();
    loop {
        let (_, j) = a.get(&format!("/api/v1/jobs/{id}"), Some(&key));
        assert_ne!(
            j["status"], "succeeded",
            "finished before the kill: use more lines"
        );
        if j["status"] == "running" && j["progress"]["bytes_read"].as_i64().unwrap_or(0) > 0 {
            assert_eq!(j["progress"]["processed"], 0, "{j}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "{j}");
        std::thread::sleep(Duration::from_millis(5));
    }
    a.kill();
    assert_eq!(schema.sql("SELECT count(*) FROM transaction_keys"), ["0"]);
    assert_eq!(
        schema.sql(
            "SELECT count(*) FROM pg_tables
           WHERE schemaname = current_schema() AND tablename LIKE 'transactions_o%'"
        ),
        ["0"]
    );
    let b = Node::start(&schema, &args);
    let j = finished(&b, &key, &id, Duration::from_secs(180));
    assert_eq!(j["status"], "succeeded", "{j}");
    assert_eq!(j["attempts"], 2, "{j}");
    assert_eq!(j["result"]["inserted"], n, "{j}");
    assert_eq!(j["result"]["unchanged"], 0, "{j}");
    let (_, s) = b.get("/api/v1/emissions/summary", Some(&key));
    assert_eq!(s["transaction_count"], n);
    assert_eq!(
        schema.sql("SELECT count(*) - count(DISTINCT transaction_id) FROM transactions"),
        ["0"]
    );
    // Built apart and attached: the partition carries the load's bounds constraint.
    let bounds = schema.sql(
        "SELECT count(*) FROM pg_constraint WHERE connamespace = current_schema()::regnamespace
           AND conname LIKE 'transactions_o%_y2024_bounds'",
    );
    assert_eq!(bounds, ["1"]);
    let out = schema.vcci(&["verify", "--org", "acme"]);
    assert!(out.contains("agree"), "{out}");
}
