//! PACT end to end over real HTTPS (certificates made by `openssl` at test time):
//! - a round trip between two vcci servers: A publishes footprints (several pages, a
//!   deprecation with its successor), B connects, syncs and calculates lines with them;
//! - the client's faults against a PACT host the test controls: 5xx, 429 with Retry-After,
//!   401 TokenExpired mid-sync, malformed JSON, a footprint that breaks the schema, a slow
//!   host, a host down (the breaker opens, other hosts go on, a half-open probe recovers it),
//!   and a sync stopped midway and run again.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vcci_server::pact_client::{HttpConfig, PactHttp};
use vcci_server::pact_sync::SyncError;
use vcci_store::model::keys::Role;
use vcci_store::secretbox::SecretKey;
use vcci_store::{Actor, Store};

use common::pact_host::*;

/// A node over `store` that can hold connections (a secret key) and trusts the test CA.
fn pact_app(store: &Store, certs: &Certs) -> Arc<vcci_server::App> {
    vcci_server::App::new(
        store.clone(),
        vcci_server::AppConfig {
            secret_key: Some(Arc::new(key())),
            pact_http: HttpConfig {
                ca_file: Some(certs.ca.clone()),
                ..HttpConfig::default()
            },
            ..common::config(store)
        },
    )
    .unwrap()
}

/// A GET over HTTPS with an API key: the JSON body.
/// The host's admin creates an API client named `name`; the recipient connects to the host
/// with it (`connection` gives the rest). Returns (the client with its secret, the
/// connection).
async fn link(
    http: &PactHttp,
    (host_url, host_admin, name): (&str, &str, &str),
    (url, key, mut connection): (&str, &str, Value),
) -> (Value, Value) {
    let (s, c) = api(
        http,
        reqwest::Method::POST,
        &format!("{host_url}/api/v1/pact/clients"),
        host_admin,
        Some(json!({ "name": name })),
    )
    .await;
    assert_eq!(s, 201, "{c}");
    connection["base_url"] = json!(host_url);
    connection["client_id"] = c["client_id"].clone();
    connection["client_secret"] = c["client_secret"].clone();
    let (s, conn) = api(
        http,
        reqwest::Method::POST,
        &format!("{url}/api/v1/pact/connections"),
        key,
        Some(connection),
    )
    .await;
    assert_eq!(s, 201, "{conn}");
    (c, conn)
}

async fn get_json(http: &PactHttp, url: &str, key: &str) -> Value {
    api(http, reqwest::Method::GET, url, key, None).await.1
}

/// Polls a job's status URL until it ends (at most a minute).
async fn wait_job(http: &PactHttp, url: &str, key: &str) -> Value {
    let started = Instant::now();
    loop {
        let (_, j) = api(http, reqwest::Method::GET, url, key, None).await;
        if j["status"] == "succeeded" || j["status"] == "failed" {
            return j;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the job did not end: {j}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A JSON request over HTTPS with an API key.
async fn api(
    http: &PactHttp,
    method: reqwest::Method,
    url: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = http.client().request(method, url).bearer_auth(key);
    if let Some(b) = body {
        r = r
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let resp = r.send().await.unwrap();
    let s = resp.status().as_u16();
    let b = resp.bytes().await.unwrap();
    (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_vcci_servers_exchange_footprints_over_https() {
    let Some(certs) = certs() else { return };
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let db_a = vcci_store::testing::fresh_store(dir_a.path()).unwrap();
    let db_b = vcci_store::testing::fresh_store(dir_b.path()).unwrap();
    // A publishes 250 footprints (3 pages of 100), then a new version of product 7.
    let (a_admin, a_org) = vcci_store::testing::blocking(|| {
        let mut db = db_a.store.connect().unwrap();
        let org = db.ensure_org("acme-steel").unwrap();
        let docs: Vec<Value> = (0..250).map(|i| footprint(i, "2400")).collect();
        let p = db
            .publish_footprints(org.id, &docs, &Actor::system("test"))
            .unwrap();
        assert_eq!(p.published.len(), 250);
        let mut next = footprint(7, "2000");
        next.as_object_mut().unwrap().remove("id");
        let p = db
            .publish_footprints(org.id, &[next], &Actor::system("test"))
            .unwrap();
        assert_eq!(p.deprecated, ["00000007-0000-4000-8000-000000000000"]);
        (
            db.create_key(org.id, Role::Admin, &Actor::system("test"))
                .unwrap(),
            org,
        )
    });
    let _ = a_org;
    // A answers its customers' requests through a connection to them: it needs a key and
    // to trust the test CA too.
    let app_a = pact_app(&db_a.store, &certs);
    let background_a = app_a.start_background();
    let (addr_a, _stop_a) = serve_tls(vcci_server::build_app(app_a), &certs, "127.0.0.1:0").await;
    let a_url = format!("https://localhost:{}", addr_a.port());

    let b_key = vcci_store::testing::blocking(|| {
        let db = db_b.store.connect().unwrap();
        let org = db.ensure_org("buyer").unwrap();
        db.create_key(org.id, Role::Admin, &Actor::system("test"))
            .unwrap()
    });
    let app_b = pact_app(&db_b.store, &certs);
    let background = app_b.start_background();
    let (addr_b, _stop_b) = serve_tls(
        vcci_server::build_app(Arc::clone(&app_b)),
        &certs,
        "127.0.0.1:0",
    )
    .await;
    let b_url = format!("https://localhost:{}", addr_b.port());
    let client = PactHttp::new(HttpConfig {
        ca_file: Some(certs.ca.clone()),
        ..HttpConfig::default()
    })
    .unwrap();
    use reqwest::Method;

    // A's admin creates a client for B; B connects with it (the auth server discovered),
    // with lines naming two products.
    let (c, conn) = link(
        &client,
        (&a_url, &a_admin, "Buyer Inc."),
        (&b_url, &b_key, json!({"supplier_id": "acme-steel"})),
    )
    .await;
    assert!(
        !conn
            .to_string()
            .contains(c["client_secret"].as_str().unwrap()),
        "the secret is never returned"
    );
    // A line of product 7 before the sync: spend-based (its supplier has no footprint yet).
    let (s, v) = api(&client, Method::POST, &format!("{b_url}/api/v1/transactions"), &b_key, Some(json!({"transactions": [
        {"transaction_id": "p7", "date": "2025-05-01", "supplier_id": "acme-steel", "quantity": 500, "unit": "kg",
         "product_id": "urn:gtin:0000000000007", "amount": 1000, "currency": "USD", "naics_code": "331110"},
    ]}))).await;
    assert_eq!((s, v["accepted"].clone()), (200, json!(1)), "{v}");
    let l = get_json(&client, &format!("{b_url}/api/v1/transactions/p7"), &b_key).await;
    assert_eq!(l["emission"]["method"], "spend_based", "{l}");
    let (s, v) = api(
        &client,
        Method::POST,
        &format!(
            "{b_url}/api/v1/pact/connections/{}/sync",
            conn["id"].as_str().unwrap()
        ),
        &b_key,
        None,
    )
    .await;
    assert_eq!(s, 202, "{v}");
    let status_url = format!("{b_url}{}", v["status_url"].as_str().unwrap());
    let job = wait_job(&client, &status_url, &b_key).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let r = &job["result"];
    assert_eq!(
        (
            r["pages"].clone(),
            r["footprints"].clone(),
            r["received"].clone()
        ),
        (json!(3), json!(251), json!(251)),
        "{job}"
    );
    // The sync recalculated product 7's line from the successor (2,000 per 1,000 kg); a line
    // of product 3 written now uses its footprint (2,400 per 1,000 kg).
    let (s, v) = api(&client, Method::POST, &format!("{b_url}/api/v1/transactions"), &b_key, Some(json!({"transactions": [
        {"transaction_id": "p3", "date": "2025-05-01", "supplier_id": "acme-steel", "quantity": 2, "unit": "tonnes", "product_id": "urn:gtin:0000000000003"},
    ]}))).await;
    assert_eq!((s, v["accepted"].clone()), (200, json!(1)), "{v}");
    assert_eq!(job["result"]["lines_changed"], 1, "{job}");
    let l = get_json(&client, &format!("{b_url}/api/v1/transactions/p7"), &b_key).await;
    assert_eq!(l["emission"]["co2e_kg"], 1000.0, "{l}");
    assert_eq!(
        l["emission"]["product_footprint"]["company_name"],
        "Acme Steel"
    );
    let l = get_json(&client, &format!("{b_url}/api/v1/transactions/p3"), &b_key).await;
    assert_eq!(l["emission"]["co2e_kg"], 4800.0, "{l}");
    // The deprecated footprint is kept, not in use; its successor names it.
    let f = get_json(
        &client,
        &format!("{b_url}/api/v1/footprints/00000007-0000-4000-8000-000000000000"),
        &b_key,
    )
    .await;
    assert_eq!(
        (f["status"].clone(), f["in_use"].clone()),
        (json!("Deprecated"), json!(false)),
        "{f}"
    );
    // A second sync stores nothing new.
    let (_, v) = api(
        &client,
        Method::POST,
        &format!(
            "{b_url}/api/v1/pact/connections/{}/sync",
            conn["id"].as_str().unwrap()
        ),
        &b_key,
        None,
    )
    .await;
    let status_url = format!("{b_url}{}", v["status_url"].as_str().unwrap());
    let job = wait_job(&client, &status_url, &b_key).await;
    assert_eq!(
        (
            job["result"]["received"].clone(),
            job["result"]["unchanged"].clone()
        ),
        (json!(0), json!(251)),
        "{job}"
    );
    let cs = get_json(&client, &format!("{b_url}/api/v1/pact/connections"), &b_key).await;
    assert_eq!(cs["connections"][0]["last_sync"]["status"], "succeeded");
    assert_eq!(cs["connections"][0]["breaker"], "closed");
    // The client's series are on B's /metrics; no secret anywhere in them.
    let m = client
        .client()
        .get(format!("{b_url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains(&format!(
            "vcci_pact_http_requests_total{{host=\"localhost:{}\"}}",
            addr_a.port()
        )),
        "{m}"
    );
    assert!(!m.contains(c["client_secret"].as_str().unwrap()));

    // Asynchronous requests. The two exchange credentials both ways: B gives A a client of
    // its own, and A connects to B with it (to answer at B's /3/events).
    link(
        &client,
        (&b_url, &b_key, "Acme Steel (supplier)"),
        (
            &a_url,
            &a_admin,
            json!({"supplier_id": "buyer", "notify_published": true}),
        ),
    )
    .await;
    // A publishes a footprint of product 300 after B's sync; B has a line of it.
    vcci_store::testing::blocking(|| {
        let mut db = db_a.store.connect().unwrap();
        let org = db.org_by_name("acme-steel").unwrap().unwrap();
        db.publish_footprints(org.id, &[footprint(300, "3000")], &Actor::system("test"))
            .unwrap();
    });
    let (s, v) = api(&client, Method::POST, &format!("{b_url}/api/v1/transactions"), &b_key, Some(json!({"transactions": [
        {"transaction_id": "p300", "date": "2025-05-01", "supplier_id": "acme-steel", "quantity": 100, "unit": "kg",
         "product_id": "urn:gtin:0000000000300", "amount": 500, "currency": "USD", "naics_code": "331110"},
    ]}))).await;
    assert_eq!(v["accepted"], 1, "{s} {v}");
    // B asks for product 300 (A has it) and for a product A does not have.
    let conn_url = format!(
        "{b_url}/api/v1/pact/connections/{}/requests",
        conn["id"].as_str().unwrap()
    );
    let (s, r1) = api(
        &client,
        Method::POST,
        &conn_url,
        &b_key,
        Some(json!({"productId": ["urn:gtin:0000000000300"]})),
    )
    .await;
    assert_eq!((s, r1["status"].clone()), (201, json!("pending")), "{r1}");
    let (s, r2) = api(
        &client,
        Method::POST,
        &conn_url,
        &b_key,
        Some(json!({"productId": ["urn:gtin:9999999999999"], "comment": "please"})),
    )
    .await;
    assert_eq!(s, 201, "{r2}");
    let (s, bad) = api(
        &client,
        Method::POST,
        &conn_url,
        &b_key,
        Some(json!({"productId": ["not-a-urn"]})),
    )
    .await;
    assert_eq!(s, 400, "{bad}");
    // A answers both asynchronously at B's /3/events.
    let started = Instant::now();
    let reqs = loop {
        let v = get_json(&client, &format!("{b_url}/api/v1/pact/requests"), &b_key).await;
        let done = v["requests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["status"] == "fulfilled" || r["status"] == "rejected")
            .count();
        if done == 2 {
            break v;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the requests were not answered: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let by_id = |id: &Value| {
        reqs["requests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == *id)
            .unwrap()
            .clone()
    };
    let f = by_id(&r1["id"]);
    assert_eq!(f["status"], "fulfilled", "{f}");
    assert_eq!(f["answer"]["received"].as_array().unwrap().len(), 1, "{f}");
    let r = by_id(&r2["id"]);
    assert_eq!(
        (r["status"].clone(), r["answer"]["error"]["code"].clone()),
        (json!("rejected"), json!("NotFound")),
        "{r}"
    );
    // The fulfilled footprint recalculated B's line: 100 kg × 3,000 / 1,000 = 300 kg.
    let l = get_json(
        &client,
        &format!("{b_url}/api/v1/transactions/p300"),
        &b_key,
    )
    .await;
    assert_eq!(l["emission"]["co2e_kg"], 300.0, "{l}");
    // A's side shows the incoming requests and their answers.
    let v = get_json(&client, &format!("{a_url}/api/v1/pact/requests"), &a_admin).await;
    let incoming: Vec<&Value> = v["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["direction"] == "incoming")
        .collect();
    assert_eq!(incoming.len(), 2, "{v}");
    assert!(
        incoming.iter().any(|r| r["status"] == "fulfilled")
            && incoming.iter().any(|r| r["status"] == "rejected"),
        "{v}"
    );
    // A publishes product 301 through its API: B's host is told (PublishedEvent), B syncs
    // its connection to A and has the footprint without asking.
    let (s, v) = api(
        &client,
        Method::POST,
        &format!("{a_url}/api/v1/pact/published"),
        &a_admin,
        Some(json!({"footprints": [footprint(301, "1000")]})),
    )
    .await;
    assert_eq!((s, v["notices_queued"].clone()), (200, json!(1)), "{v}");
    let started = Instant::now();
    loop {
        let f = get_json(
            &client,
            &format!("{b_url}/api/v1/footprints?product_id=urn:gtin:0000000000301"),
            &b_key,
        )
        .await;
        if f["data"].as_array().is_some_and(|d| d.len() == 1) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the published footprint did not reach B: {f}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    background.stop().await;
    background_a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_survives_a_faulty_host() {
    let Some(certs) = certs() else { return };
    let all = (PAGES * PER_PAGE) as usize;
    let faults = Arc::new(Faults::default());
    let (addr, _stop) = serve_tls(fake_host(Arc::clone(&faults)), &certs, "127.0.0.1:0").await;
    let base = format!("https://localhost:{}", addr.port());
    let host = format!("localhost:{}", addr.port());

    // 5xx twice, then a 429 with Retry-After, then 401 TokenExpired after page 1: the sync
    // retries, waits, renews its token, and completes.
    let r = recipient();
    let c = connection(&r, &base);
    let h = http(&certs, Duration::from_secs(5));
    faults.server_errors.store(2, Ordering::SeqCst);
    faults.throttles.store(1, Ordering::SeqCst);
    *faults.expire_after_page.lock().unwrap() = Some(1);
    let t = Instant::now();
    let rep = run_sync(&h, &r, &c, None)
        .await
        .unwrap_or_else(|(e, _)| panic!("{e}"));
    assert!(
        t.elapsed() >= Duration::from_secs(1),
        "Retry-After was not respected"
    );
    assert_eq!(
        (rep.pages, rep.received, rep.token_renewals),
        (4, all as u64, 1)
    );
    let mut m = String::new();
    h.render_metrics(&mut m);
    assert!(
        m.contains(&format!(
            "vcci_pact_http_errors_total{{host=\"{host}\",kind=\"status\"}} 2"
        )),
        "{m}"
    );
    assert!(
        m.contains(&format!(
            "vcci_pact_http_errors_total{{host=\"{host}\",kind=\"throttled\"}} 1"
        )),
        "{m}"
    );
    assert!(
        m.contains(&format!("vcci_pact_breaker_state{{host=\"{host}\"}} 0")),
        "{m}"
    );

    // Malformed JSON on page 2: the sync fails with the reason, page 1 is kept; run again
    // once the host is fixed: everything, nothing twice.
    let r = recipient();
    let c = connection(&r, &base);
    *faults.malformed_page.lock().unwrap() = Some(2);
    let (e, rep) = run_sync(&h, &r, &c, None).await.unwrap_err();
    assert!(
        e.to_string().contains("page 2") && e.to_string().contains("not JSON"),
        "{e}"
    );
    assert_eq!((rep.pages, stored(&r)), (1, PER_PAGE as usize));
    *faults.malformed_page.lock().unwrap() = None;
    let rep = run_sync(&h, &r, &c, None)
        .await
        .unwrap_or_else(|(e, _)| panic!("{e}"));
    assert_eq!(
        (rep.unchanged, rep.received as usize, stored(&r)),
        (PER_PAGE as u64, all - PER_PAGE as usize, all)
    );

    // A footprint that breaks the schema: rejected with its id and reason, the rest kept.
    let r = recipient();
    let c = connection(&r, &base);
    *faults.bad_footprint_page.lock().unwrap() = Some(3);
    let rep = run_sync(&h, &r, &c, None)
        .await
        .unwrap_or_else(|(e, _)| panic!("{e}"));
    *faults.bad_footprint_page.lock().unwrap() = None;
    assert_eq!(rep.rejected_count, 1);
    let bad = &rep.rejected[0];
    assert_eq!(
        bad.id.as_deref(),
        Some("00000035-0000-4000-8000-000000000000")
    );
    assert_eq!(
        (bad.index, bad.errors[0].path.as_str()),
        (53, "/pcf/declaredUnitAmount")
    );
    assert_eq!(stored(&r), all - 1);

    // Stopped after page 2 (a crash, a node going down) and run again: nothing lost, nothing
    // twice.
    let r = recipient();
    let c = connection(&r, &base);
    let (e, _) = run_sync(&h, &r, &c, Some(2)).await.unwrap_err();
    assert!(matches!(e, SyncError::Stopped));
    assert_eq!(stored(&r), 2 * PER_PAGE as usize);
    let rep = run_sync(&h, &r, &c, None)
        .await
        .unwrap_or_else(|(e, _)| panic!("{e}"));
    assert_eq!((rep.unchanged, stored(&r)), (2 * PER_PAGE as u64, all));

    // A host slower than the request timeout: the sync fails saying so.
    let slow = http(&certs, Duration::from_millis(300));
    *faults.delay.lock().unwrap() = Duration::from_millis(800);
    let (e, _) = run_sync(&slow, &r, &c, None).await.unwrap_err();
    *faults.delay.lock().unwrap() = Duration::ZERO;
    assert!(e.to_string().contains("timed out"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_down_opens_its_breaker_others_go_on_and_a_probe_recovers_it() {
    let Some(certs) = certs() else { return };
    let up = Arc::new(Faults::default());
    let (up_addr, _up_stop) = serve_tls(fake_host(Arc::clone(&up)), &certs, "127.0.0.1:0").await;
    // A port that nothing listens on (yet).
    let down_addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let h = http(&certs, Duration::from_secs(2));
    let r = recipient();
    let down = connection(&r, &format!("https://localhost:{}", down_addr.port()));
    let other = connection(&r, &format!("https://localhost:{}", up_addr.port()));
    let down_host = format!("localhost:{}", down_addr.port());

    // Three attempts refused: the breaker opens, the sync fails with the reason.
    let (e, _) = run_sync(&h, &r, &down, None).await.unwrap_err();
    assert!(e.to_string().contains(&down_host), "{e}");
    assert_eq!(h.breaker_state(&down_host), "open");
    // While open, no request goes out.
    let (e, _) = run_sync(&h, &r, &down, None).await.unwrap_err();
    assert!(e.to_string().contains("circuit breaker is open"), "{e}");
    // Another host is unaffected.
    let rep = run_sync(&h, &r, &other, None)
        .await
        .unwrap_or_else(|(e, _)| panic!("{e}"));
    assert_eq!(rep.pages, 4);
    // The host comes back on its port; after the cooldown a half-open probe goes through and
    // closes the breaker.
    let back = Arc::new(Faults::default());
    let (_, _back_stop) = serve_tls(fake_host(back), &certs, &down_addr.to_string()).await;
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(h.breaker_state(&down_host), "half_open");
    let rep = run_sync(&h, &r, &down, None)
        .await
        .unwrap_or_else(|(e, _)| panic!("{e}"));
    assert_eq!(rep.pages, 4);
    assert_eq!(h.breaker_state(&down_host), "closed");
    let mut m = String::new();
    h.render_metrics(&mut m);
    assert!(
        m.contains(&format!(
            "vcci_pact_http_errors_total{{host=\"{down_host}\",kind=\"network\"}} 3"
        )),
        "{m}"
    );
}

/// Secrets are sealed in the database and never in answers or logs of the connection.
#[test]
fn connection_secrets_are_sealed_at_rest() {
    let r = recipient();
    let c = connection(&r, "https://pact.example.com");
    let db = r.store.connect().unwrap();
    assert_eq!(db.connection_secret(r.org.id, &c.id, &key()).unwrap(), "s");
    let wrong = SecretKey::from_hex(&"00".repeat(32)).unwrap();
    assert!(db.connection_secret(r.org.id, &c.id, &wrong).is_err());
    let listed = serde_json::to_string(&db.connections(r.org.id).unwrap()).unwrap();
    assert!(!listed.contains("\"s\""), "{listed}");
}
