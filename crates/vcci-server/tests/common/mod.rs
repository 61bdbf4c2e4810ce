//! The test harness shared by the API test files: a store with two organizations and keys
//! of each role, the router over it, and a JSON request helper.

#![allow(dead_code)] // each test file uses part of it

pub mod pact_host;

use std::sync::Arc;
use vcci_store::import::ImportTarget;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;
use vcci_store::Store;
use vcci_store::import::{ImportOptions, RejectsWriter, import_transactions};
use vcci_store::model::keys::Role;

pub struct Env {
    pub db: vcci_store::testing::TestDb,
    pub dir: tempfile::TempDir,
    pub app: Arc<vcci_server::App>,
    pub store: Store,
    pub router: Router,
    pub admin: String,
    pub viewer: String,
    pub analyst: String,
    pub other: String,
}

/// A node's settings for tests over `store`: with Redis when VCCI_TEST_REDIS_URL is set,
/// under a key prefix of that store's own (tests share one Redis; nodes over one store
/// share their prefix, like the nodes of one deployment).
pub fn config(store: &Store) -> vcci_server::AppConfig {
    vcci_server::AppConfig {
        pool_size: 2,
        redis: redis_url().map(|url| vcci_server::shared::RedisConfig {
            url,
            prefix: format!(
                "vcci-test:{:016x}:",
                xxhash_rust::xxh3::xxh3_64(store.describe().as_bytes())
            ),
            timeout: std::time::Duration::from_millis(200),
        }),
        ..Default::default()
    }
}

/// The Redis that tests use, if any (VCCI_TEST_REDIS_URL).
pub fn redis_url() -> Option<String> {
    std::env::var("VCCI_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

pub fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let test_db = vcci_store::testing::fresh_store(dir.path()).unwrap();
    let store = test_db.store.clone();
    let keys = blocking(|| seed(&store));
    let app: Arc<vcci_server::App> = vcci_server::App::new(store.clone(), config(&store)).unwrap();
    Env {
        db: test_db,
        dir,
        app: Arc::clone(&app),
        store,
        router: vcci_server::build_app(app),
        admin: keys.0,
        viewer: keys.1,
        analyst: keys.2,
        other: keys.3,
    }
}

pub use vcci_store::testing::blocking;

/// Two organizations with a few lines each, and keys: (acme admin, viewer, analyst, other's
/// admin).
pub fn seed(store: &Store) -> (String, String, String, String) {
    let db = store.connect().unwrap();
    let acme = db.ensure_org("acme").unwrap();
    let other = db.ensure_org("other").unwrap();
    let csv = "transaction_id,date,amount,currency,naics_code\nt1,2022-03-01,1000,USD,484121\nt2,2023-03-15,1000,EUR,334111\n";
    let mut rejects = RejectsWriter::new(Vec::new()).unwrap();
    import_transactions(
        &ImportTarget {
            store,
            catalog: vcci_core::catalog(),
            org: &acme,
            source: "t.csv",
            options: &ImportOptions::default(),
            actor: &vcci_store::Actor::system("test"),
        },
        csv.as_bytes(),
        &mut rejects,
        &mut |_| {},
    )
    .unwrap();
    let mut rejects = RejectsWriter::new(Vec::new()).unwrap();
    import_transactions(
        &ImportTarget {
            store,
            catalog: vcci_core::catalog(),
            org: &other,
            source: "o.csv",
            options: &ImportOptions::default(),
            actor: &vcci_store::Actor::system("test"),
        },
        "transaction_id,date,amount,naics_code\nsecret,2022-01-01,5,484121\n".as_bytes(),
        &mut rejects,
        &mut |_| {},
    )
    .unwrap();
    (
        db.create_key(acme.id, Role::Admin, &vcci_store::Actor::system("test"))
            .unwrap(),
        db.create_key(acme.id, Role::Viewer, &vcci_store::Actor::system("test"))
            .unwrap(),
        db.create_key(acme.id, Role::Analyst, &vcci_store::Actor::system("test"))
            .unwrap(),
        db.create_key(other.id, Role::Admin, &vcci_store::Actor::system("test"))
            .unwrap(),
    )
}

/// A new key of `role` for the organization `org`.
pub fn create_key(store: &Store, org: &str, role: Role) -> String {
    blocking(|| {
        let db = store.connect().unwrap();
        let org = db.require_org(org).unwrap();
        db.create_key(org.id, role, &vcci_store::Actor::system("test"))
            .unwrap()
    })
}

/// Revokes `key`; true if it was valid.
pub fn revoke_key(store: &Store, key: &str) -> bool {
    blocking(|| {
        store
            .connect()
            .unwrap()
            .revoke_key(key, &vcci_store::Actor::system("test"))
            .unwrap()
    })
}

/// POSTs `csv` to the import route; returns (status, body).
pub async fn upload(
    router: &Router,
    key: &str,
    csv: impl Into<Body>,
    ty: &str,
) -> (StatusCode, Value) {
    post_raw(router, "/api/v1/imports", key, ty, csv).await
}

/// POSTs `body` as `ty` to `uri`; returns (status, the answer as JSON or Null).
pub async fn post_raw(
    router: &Router,
    uri: &str,
    key: &str,
    ty: &str,
    body: impl Into<Body>,
) -> (StatusCode, Value) {
    let res = router
        .clone()
        .oneshot(
            Request::builder()
                .method("POST")
                .uri(uri)
                .header("authorization", format!("Bearer {key}"))
                .header("content-type", ty)
                .body(body.into())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = res.status();
    let b = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, serde_json::from_slice(&b).unwrap_or(Value::Null))
}

pub async fn call(
    router: &Router,
    method: &str,
    uri: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    let req = match body {
        Some(b) => req
            .header("content-type", "application/json")
            .body(Body::from(b.to_string()))
            .unwrap(),
        None => req.body(Body::empty()).unwrap(),
    };
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 24)
        .await
        .unwrap();
    let v = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (status, v)
}

/// GETs `uri` (with `key` as the API key, if any): status, headers and the body as text.
pub async fn get(
    router: &Router,
    uri: &str,
    key: Option<&str>,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let mut r = Request::builder().uri(uri);
    if let Some(k) = key {
        r = r.header("authorization", format!("Bearer {k}"));
    }
    let res = router
        .clone()
        .oneshot(r.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = res.into_parts();
    let b = axum::body::to_bytes(body, 1 << 26).await.unwrap();
    (
        parts.status,
        parts.headers,
        String::from_utf8(b.to_vec()).unwrap(),
    )
}

/// The PACT Tech Specs v3 folder (../shared/pact), read at test time only.
pub fn pact_spec_dir() -> Option<std::path::PathBuf> {
    vcci_core::pact::spec_dir_for_tests()
}

/// Validates PACT answers against the schemas of the spec's openapi.yaml.
pub struct PactSchemas {
    doc: Value,
}

impl PactSchemas {
    pub fn load() -> Option<PactSchemas> {
        let dir = pact_spec_dir()?;
        let text = std::fs::read_to_string(dir.join("openapi.yaml")).unwrap();
        let mut doc: Value = serde_norway::from_str(&text).unwrap();
        // The event schemas write `properties: {$ref: '#/components/schemas/BaseEvent/
        // properties', type: ..., data: ...}`, meaning "BaseEvent's properties, and these";
        // a JSON Schema validator reads `$ref` there as a property's schema (a string, not a
        // schema). Merge them as intended.
        let base = doc["components"]["schemas"]["BaseEvent"]["properties"].clone();
        if let Some(schemas) = doc["components"]["schemas"].as_object_mut() {
            for s in schemas.values_mut() {
                let Some(props) = s.get_mut("properties").and_then(Value::as_object_mut) else {
                    continue;
                };
                if props.get("$ref").and_then(Value::as_str)
                    == Some("#/components/schemas/BaseEvent/properties")
                {
                    props.remove("$ref");
                    for (k, v) in base.as_object().into_iter().flatten() {
                        props.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
            }
        }
        // Some descriptions are `{$ref: ...}` to a parameter's text: annotations, but not
        // strings, which the meta-schema wants. Drop those.
        fn strip(v: &mut Value) {
            match v {
                Value::Object(o) => {
                    if o.get("description").is_some_and(|d| !d.is_string()) {
                        o.remove("description");
                    }
                    o.values_mut().for_each(strip);
                }
                Value::Array(a) => a.iter_mut().for_each(strip),
                _ => {}
            }
        }
        strip(&mut doc);
        Some(PactSchemas { doc })
    }

    /// Checks `value` against the schema at `pointer` (a JSON Pointer into the document);
    /// panics with every violation.
    pub fn check(&self, pointer: &str, value: &Value) {
        let schema = self
            .doc
            .pointer(pointer)
            .unwrap_or_else(|| panic!("{pointer} is not in openapi.yaml"));
        let root = serde_json::json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": self.doc["components"],
            "allOf": [schema],
        });
        let v = jsonschema::options()
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|e| panic!("{pointer}: {e}"));
        let errors: Vec<String> = v
            .iter_errors(value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{pointer}: {errors:#?}\n{value:#}");
    }

    pub fn list(&self, v: &Value) {
        self.check(
            "/paths/~13~1footprints/get/responses/200/content/application~1json/schema",
            v,
        );
    }
    pub fn get(&self, v: &Value) {
        self.check(
            "/paths/~13~1footprints~1{id}/get/responses/200/content/application~1json/schema",
            v,
        );
    }
    pub fn error(&self, v: &Value) {
        self.check("/components/schemas/Error", v);
    }
}

/// A PACT v3 footprint of `product` at `pcf` kg CO2e per 1,000 kg.
pub fn pact_footprint(id: &str, product: &str, pcf: &str) -> Value {
    serde_json::json!({
        "id": id, "specVersion": "3.0.0", "created": "2025-01-10T00:00:00Z", "status": "Active",
        "companyName": "Acme Steel", "companyIds": ["urn:company:example:acme"],
        "productDescription": "Hot-rolled coil", "productIds": [product], "productNameCompany": "HRC-1",
        "pcf": {
            "declaredUnitOfMeasurement": "kilogram", "declaredUnitAmount": "1000",
            "productMassPerDeclaredUnit": "1000",
            "referencePeriodStart": "2023-01-01T00:00:00Z", "referencePeriodEnd": "2024-01-01T00:00:00Z",
            "pcfExcludingBiogenicUptake": pcf, "pcfIncludingBiogenicUptake": pcf,
            "fossilGhgEmissions": pcf, "fossilCarbonContent": "0",
            "ipccCharacterizationFactors": ["AR6"], "crossSectoralStandards": ["GHGP-Product"],
            "exemptedEmissionsPercent": "0"
        }
    })
}
