//! A PACT host the tests control (certificates made by `openssl`, a fake host with faults
//! to set) and a recipient that syncs from it: shared by `pact.rs` and `pact_trace.rs`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use vcci_server::pact_client::{HttpConfig, PactHttp};
use vcci_server::pact_sync::{SyncError, sync};
use vcci_store::model::connections::NewConnection;
use vcci_store::secretbox::SecretKey;
use vcci_store::{Actor, Store};

/// A CA and a certificate for localhost and 127.0.0.1 signed by it, made with openssl.
pub struct Certs {
    pub _dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub fn certs() -> Option<Certs> {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = |args: &[&str]| {
        std::process::Command::new("openssl")
            .args(args)
            .current_dir(d)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    std::fs::write(
        d.join("leaf.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let ok = run(&[
        &["req", "-x509"][..],
        &ec[..],
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=vcci test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ][..],
    ]
    .concat())
        && run(&[
            &["req"][..],
            &ec[..],
            &[
                "-keyout",
                "key.pem",
                "-out",
                "leaf.csr",
                "-subj",
                "/CN=localhost",
            ][..],
        ]
        .concat())
        && run(&[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "cert.pem",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
        ]);
    if !ok {
        assert!(
            std::env::var("VCCI_REQUIRE_TOOLS").is_err(),
            "openssl is needed to make the test certificates"
        );
        eprintln!("skipped: openssl could not make the test certificates");
        return None;
    }
    Some(Certs {
        ca: d.join("ca.pem"),
        cert: d.join("cert.pem"),
        key: d.join("key.pem"),
        _dir: dir,
    })
}

/// Serves `router` over TLS on `addr` (port 0: any) until the returned sender is dropped.
pub async fn serve_tls(
    router: Router,
    certs: &Certs,
    addr: &str,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let tls = vcci_server::tls_config(&certs.cert, &certs.key).unwrap();
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let local = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(vcci_server::serve_tls(listener, router, tls, async move {
        let _ = rx.await;
    }));
    (local, tx)
}

/// Footprint `i`: product `urn:gtin:{i:013}` at `pcf` kg CO2e per 1,000 kg.
pub fn footprint(i: usize, pcf: &str) -> Value {
    super::pact_footprint(
        &format!("{i:08x}-0000-4000-8000-000000000000"),
        &format!("urn:gtin:{i:013}"),
        pcf,
    )
}

pub fn key() -> SecretKey {
    SecretKey::from_hex(&"5a".repeat(32)).unwrap()
}

/// A PACT host whose faults the test sets.
#[derive(Default)]
pub struct Faults {
    /// 500s to answer before the next success.
    pub server_errors: AtomicU32,
    /// 429s (Retry-After: 1) to answer.
    pub throttles: AtomicU32,
    /// Expire the token once page N has been served.
    pub expire_after_page: Mutex<Option<u32>>,
    /// Answer page N with broken JSON.
    pub malformed_page: Mutex<Option<u32>>,
    /// Put a footprint that breaks the schema on page N.
    pub bad_footprint_page: Mutex<Option<u32>>,
    /// Sleep this long before answering a page.
    pub delay: Mutex<Duration>,
    pub token_generation: AtomicU32,
    pub tokens_issued: AtomicU32,
    /// The `traceparent` of each request for a page.
    pub traceparents: Mutex<Vec<String>>,
}

pub const PAGES: u32 = 4;
pub const PER_PAGE: u32 = 25;

pub async fn fake_token(State(f): State<Arc<Faults>>) -> Response {
    f.tokens_issued.fetch_add(1, Ordering::SeqCst);
    let g = f.token_generation.load(Ordering::SeqCst);
    axum::Json(
        json!({"access_token": format!("tok-{g}"), "token_type": "bearer", "expires_in": 3600}),
    )
    .into_response()
}

pub async fn fake_discovery(headers: HeaderMap) -> Response {
    let host = headers["host"].to_str().unwrap().to_owned();
    axum::Json(json!({"issuer": format!("https://{host}"), "token_endpoint": format!("https://{host}/auth/token")})).into_response()
}

pub async fn fake_list(
    State(f): State<Arc<Faults>>,
    headers: HeaderMap,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    if let Some(tp) = headers.get("traceparent") {
        f.traceparents
            .lock()
            .unwrap()
            .push(tp.to_str().unwrap().to_owned());
    }
    let delay = *f.delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if f.server_errors.load(Ordering::SeqCst) > 0 {
        f.server_errors.fetch_sub(1, Ordering::SeqCst);
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({"code": "InternalError", "message": "x"})),
        )
            .into_response();
    }
    if f.throttles.load(Ordering::SeqCst) > 0 {
        f.throttles.fetch_sub(1, Ordering::SeqCst);
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            "slow down",
        )
            .into_response();
    }
    let g = f.token_generation.load(Ordering::SeqCst);
    if headers.get("authorization").and_then(|h| h.to_str().ok())
        != Some(&format!("Bearer tok-{g}"))
    {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"code": "TokenExpired", "message": "expired"})),
        )
            .into_response();
    }
    let page: u32 = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    if *f.malformed_page.lock().unwrap() == Some(page) {
        return (
            StatusCode::OK,
            [("content-type", "application/json")],
            "{\"data\": [ {\"id\": ",
        )
            .into_response();
    }
    let mut data: Vec<Value> = (0..PER_PAGE)
        .map(|i| footprint(((page - 1) * PER_PAGE + i) as usize, "2400"))
        .collect();
    if *f.bad_footprint_page.lock().unwrap() == Some(page) {
        data[3]["pcf"]["declaredUnitAmount"] = json!(1000);
    }
    let mut r = axum::Json(json!({ "data": data })).into_response();
    if page < PAGES {
        let host = headers["host"].to_str().unwrap();
        r.headers_mut().insert(
            "link",
            format!(
                "<https://{host}/3/footprints?page={}>; rel=\"next\"",
                page + 1
            )
            .parse()
            .unwrap(),
        );
    }
    if *f.expire_after_page.lock().unwrap() == Some(page) {
        *f.expire_after_page.lock().unwrap() = None;
        f.token_generation.fetch_add(1, Ordering::SeqCst);
    }
    r
}

pub fn fake_host(f: Arc<Faults>) -> Router {
    Router::new()
        .route("/.well-known/openid-configuration", get(fake_discovery))
        .route("/auth/token", post(fake_token))
        .route("/3/footprints", get(fake_list))
        .with_state(f)
}

pub struct Recipient {
    pub store: Store,
    pub org: vcci_store::Org,
    // Dropped last: the database (a PostgreSQL schema is dropped with it).
    pub _db: vcci_store::testing::TestDb,
    pub _dir: tempfile::TempDir,
}

pub fn recipient() -> Recipient {
    let dir = tempfile::tempdir().unwrap();
    let db = vcci_store::testing::fresh_store(dir.path()).unwrap();
    let store = db.store.clone();
    let org =
        vcci_store::testing::blocking(|| store.connect().unwrap().ensure_org("buyer").unwrap());
    Recipient {
        store,
        org,
        _db: db,
        _dir: dir,
    }
}

pub fn connection(r: &Recipient, base: &str) -> vcci_store::model::connections::Connection {
    vcci_store::testing::blocking(|| {
        r.store
            .connect()
            .unwrap()
            .create_connection(
                r.org.id,
                &NewConnection {
                    supplier_id: "acme-steel".into(),
                    base_url: base.into(),
                    auth_base_url: None,
                    client_id: "c".into(),
                    client_secret: "s".into(),
                    notify_published: false,
                },
                &key(),
                &Actor::system("test"),
            )
            .unwrap()
    })
}

pub fn stored(r: &Recipient) -> usize {
    vcci_store::testing::blocking(|| {
        r.store
            .connect()
            .unwrap()
            .footprints(r.org.id, &Default::default(), None, 10_000)
            .unwrap()
            .len()
    })
}

pub fn http(certs: &Certs, timeout: Duration) -> PactHttp {
    PactHttp::new(HttpConfig {
        ca_file: Some(certs.ca.clone()),
        request_timeout: timeout,
        connect_timeout: Duration::from_millis(500),
        backoff: Duration::from_millis(20),
        max_attempts: 4,
        breaker_failures: 3,
        breaker_cooldown: Duration::from_millis(400),
        ..HttpConfig::default()
    })
    .unwrap()
}

pub async fn run_sync(
    http: &PactHttp,
    r: &Recipient,
    c: &vcci_store::model::connections::Connection,
    stop_after_page: Option<u64>,
) -> Result<vcci_server::pact_sync::SyncReport, (SyncError, vcci_server::pact_sync::SyncReport)> {
    sync(
        http,
        &r.store,
        &r.org,
        c,
        "s",
        &Actor::system("test"),
        |rep| stop_after_page.is_none_or(|p| rep.pages < p),
    )
    .await
}
