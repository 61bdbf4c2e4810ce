//! Tracing end to end: `vcci serve` exports to an OTLP/HTTP receiver started here, which
//! decodes the protobufs with the protocol's own types (opentelemetry-proto).

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{BIN, Node, request_with};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message;
use serde_json::Value;

/// One exported span, flattened.
#[derive(Clone, Debug)]
struct Span {
    trace: String,
    id: String,
    parent: String,
    name: String,
    kind: i32,
    start: u64,
    end: u64,
    attrs: HashMap<String, String>,
    service: String,
}

impl Span {
    fn attr(&self, k: &str) -> &str {
        self.attrs.get(k).map_or("", String::as_str)
    }
}

/// An OTLP/HTTP receiver on loopback: every POST to /v1/traces is decoded and kept.
struct Receiver {
    addr: String,
    spans: Arc<Mutex<Vec<Span>>>,
    content_types: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let spans = Arc::new(Mutex::new(Vec::new()));
        let content_types = Arc::new(Mutex::new(Vec::new()));
        let (s, c) = (Arc::clone(&spans), Arc::clone(&content_types));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let (s, c) = (Arc::clone(&s), Arc::clone(&c));
                std::thread::spawn(move || serve(conn, &s, &c));
            }
        });
        Receiver {
            addr,
            spans,
            content_types,
        }
    }

    fn spans(&self) -> Vec<Span> {
        self.spans.lock().unwrap().clone()
    }

    /// Waits until `pred` holds of the spans received.
    fn wait_for(&self, what: &str, pred: impl Fn(&[Span]) -> bool) -> Vec<Span> {
        let started = Instant::now();
        loop {
            let spans = self.spans();
            if pred(&spans) {
                return spans;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no {what} among {} spans: {spans:#?}",
                spans.len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the span of the request whose `X-Request-Id` was `id`.
    fn request_span(&self, id: &str) -> Span {
        let spans = self.wait_for(&format!("request {id}"), |s| {
            s.iter().any(|s| s.attr("request_id") == id)
        });
        spans
            .into_iter()
            .find(|s| s.attr("request_id") == id)
            .unwrap()
    }
}

/// HTTP/1.1 requests on one connection (the exporter keeps it alive).
fn serve(conn: TcpStream, spans: &Mutex<Vec<Span>>, types: &Mutex<Vec<String>>) {
    let mut out = conn.try_clone().unwrap();
    let mut r = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (name, value) = h.split_once(':').unwrap();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap(),
                "content-type" => types.lock().unwrap().push(value.trim().to_owned()),
                _ => {}
            }
        }
        let mut body = vec![0; length];
        r.read_exact(&mut body).unwrap();
        let status = if path == "/v1/traces" {
            let req = ExportTraceServiceRequest::decode(body.as_slice()).expect("OTLP protobuf");
            spans.lock().unwrap().extend(flatten(req));
            "200 OK"
        } else {
            "404 Not Found"
        };
        write!(
            out,
            "HTTP/1.1 {status}\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n"
        )
        .unwrap();
    }
}

fn flatten(req: ExportTraceServiceRequest) -> Vec<Span> {
    let mut out = Vec::new();
    for rs in req.resource_spans {
        let resource = rs.resource.map(|r| attrs(r.attributes)).unwrap_or_default();
        let service = resource.get("service.name").cloned().unwrap_or_default();
        for ss in rs.scope_spans {
            for s in ss.spans {
                out.push(Span {
                    trace: hex(&s.trace_id),
                    id: hex(&s.span_id),
                    parent: hex(&s.parent_span_id),
                    name: s.name,
                    kind: s.kind,
                    start: s.start_time_unix_nano,
                    end: s.end_time_unix_nano,
                    attrs: attrs(s.attributes),
                    service: service.clone(),
                });
            }
        }
    }
    out
}

fn attrs(kvs: Vec<opentelemetry_proto::tonic::common::v1::KeyValue>) -> HashMap<String, String> {
    kvs.into_iter()
        .map(|kv| {
            let v = match kv.value.and_then(|v| v.value) {
                Some(Any::StringValue(s)) => s,
                Some(Any::IntValue(i)) => i.to_string(),
                Some(Any::BoolValue(b)) => b.to_string(),
                Some(Any::DoubleValue(d)) => d.to_string(),
                other => format!("{other:?}"),
            };
            (kv.key, v)
        })
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// An organization with an admin key, in a fresh data directory.
fn data_dir_with_key() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir.path())
        .args(["keys", "create", "--org", "acme", "--role", "admin"])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let key = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_owned();
    (dir, key)
}

/// `vcci serve` over `dir`, exporting to `receiver`, with `extra` arguments.
fn traced_node(dir: &std::path::Path, receiver: &Receiver, extra: &[&str]) -> Node {
    let mut cmd = Command::new(BIN);
    cmd.arg("--data-dir")
        .arg(dir)
        .args(["serve", "--listen", "127.0.0.1:0", "--warm-orgs", "0"])
        .args(["--otlp-endpoint", &format!("http://{}", receiver.addr)])
        // Every database call is "slow": each is logged, inside its request's span.
        .args(["--slow-query-ms", "0"])
        .args(extra)
        .env_remove("DATABASE_URL")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("OTEL_TRACES_SAMPLER")
        .env_remove("OTEL_SDK_DISABLED")
        .env_remove("VCCI_LOG")
        .env("VCCI_LOG_FORMAT", "json")
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("OTEL_SERVICE_NAME", "vcci-under-test");
    Node::spawn(cmd)
}

fn get(node: &Node, path: &str, headers: &[(&str, &str)]) -> u16 {
    request_with(&node.addr, "GET", path, headers, "", None).0
}

const SUMMARY: &str = "/api/v1/emissions/summary";
const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

#[test]
fn a_request_is_one_trace_with_its_database_spans_and_a_callers_trace_is_continued() {
    let receiver = Receiver::start();
    let (dir, key) = data_dir_with_key();
    let mut node = traced_node(dir.path(), &receiver, &[]);
    let auth = format!("Bearer {key}");

    // A first request: a cache miss, its key read from the database.
    let h = [
        ("Authorization", auth.as_str()),
        ("X-Request-Id", "trace-test-1"),
    ];
    assert_eq!(get(&node, SUMMARY, &h), 200);
    let server = receiver.request_span("trace-test-1");
    assert_eq!(server.name, format!("GET {SUMMARY}"), "{server:#?}");
    assert_eq!(server.kind, SpanKind::Server as i32, "{server:#?}");
    assert_eq!(server.parent, "", "a new trace's root: {server:#?}");
    assert_eq!(server.attr("http.route"), SUMMARY);
    assert_eq!(server.attr("http.request.method"), "GET");
    assert_eq!(server.attr("http.response.status_code"), "200");
    assert_eq!(server.attr("vcci.cache"), "miss");
    assert!(server.attr("vcci.org_id").parse::<i64>().unwrap() > 0);
    assert_eq!(server.service, "vcci-under-test");

    // Its database calls: children of the request's span, in its trace, within its time.
    let spans = receiver.wait_for("the request's database spans", |s| {
        s.iter().filter(|s| s.parent == server.id).count() >= 2
    });
    let trace: Vec<&Span> = spans.iter().filter(|s| s.trace == server.trace).collect();
    let db: Vec<&&Span> = trace.iter().filter(|s| s.parent == server.id).collect();
    for s in &db {
        assert_eq!(s.attr("db.system.name"), "sqlite", "{s:#?}");
        assert!(
            s.start >= server.start && s.end <= server.end,
            "{s:#?} in {server:#?}"
        );
    }
    let names: Vec<&str> = db.iter().map(|s| s.name.as_str()).collect();
    assert!(
        names.iter().any(|n| n.contains("authenticate")),
        "{names:?}"
    );
    assert!(names.iter().any(|n| n.contains("summary")), "{names:?}");
    // One trace: its only root is the request's span, and every other span's parent is in it.
    for s in &trace {
        assert!(
            s.id == server.id || trace.iter().any(|p| p.id == s.parent),
            "an orphan in the trace: {s:#?}"
        );
    }

    // The same route again, continuing a caller's trace: now answered from the cache.
    let tp = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    let h = [
        ("Authorization", auth.as_str()),
        ("X-Request-Id", "trace-test-2"),
        ("traceparent", tp.as_str()),
    ];
    assert_eq!(get(&node, SUMMARY, &h), 200);
    let continued = receiver.request_span("trace-test-2");
    assert_eq!(continued.trace, CALLER_TRACE, "{continued:#?}");
    assert_eq!(continued.parent, CALLER_SPAN, "{continued:#?}");
    assert_eq!(continued.attr("vcci.cache"), "l1", "{continued:#?}");

    // A failing request is marked an error... and an unauthenticated one names no org.
    assert_eq!(
        get(&node, SUMMARY, &[("X-Request-Id", "trace-test-3")]),
        401
    );
    let refused = receiver.request_span("trace-test-3");
    assert_eq!(refused.attr("http.response.status_code"), "401");
    assert_eq!(refused.attr("vcci.org_id"), "");

    // An import: the job is a trace of its own, with its transactions and database calls.
    let (status, body) = request_with(
        &node.addr,
        "POST",
        "/api/v1/imports",
        &[
            ("Authorization", auth.as_str()),
            ("X-Request-Id", "trace-test-import"),
        ],
        "text/csv",
        Some(common::csv("TR-", 500).into_bytes()),
    );
    assert_eq!(status, 202, "{}", String::from_utf8_lossy(&body));
    let job: Value = serde_json::from_slice(&body).unwrap();
    let job_id = job["job_id"].as_str().unwrap().to_owned();
    // The trace context kept for the run is not part of the job's parameters as shown.
    let (_, shown) = request_with(
        &node.addr,
        "GET",
        &format!("/api/v1/jobs/{job_id}"),
        &[("Authorization", auth.as_str())],
        "",
        None,
    );
    let shown: Value = serde_json::from_slice(&shown).unwrap();
    assert_eq!(shown["params"]["kind"], "transactions", "{shown}");
    assert!(shown["params"].get("traceparent").is_none(), "{shown}");
    let spans = receiver.wait_for("the import job's span", |s| {
        s.iter().any(|s| s.attr("job") == job_id)
    });
    let run = spans
        .iter()
        .find(|s| s.attr("job") == job_id)
        .unwrap()
        .clone();
    assert_eq!(run.name, "job import", "{run:#?}");
    assert_eq!(run.kind, SpanKind::Consumer as i32, "{run:#?}");
    // Queued by the upload: the job continues its trace, as a child of its span.
    let upload = receiver.request_span("trace-test-import");
    assert_eq!(run.trace, upload.trace, "{run:#?}");
    assert_eq!(run.parent, upload.id, "{run:#?}");
    assert_eq!(run.attr("vcci.org_id"), server.attr("vcci.org_id"));
    let txns: Vec<Span> = spans
        .iter()
        .filter(|s| s.parent == run.id && s.name == "import transaction")
        .cloned()
        .collect();
    let rows: u64 = txns
        .iter()
        .map(|s| s.attr("rows").parse::<u64>().unwrap())
        .sum();
    assert_eq!(rows, 500, "{txns:#?}");
    assert!(
        spans
            .iter()
            .any(|s| s.parent == run.id && s.attr("db.system.name") == "sqlite"),
        "the job's own database calls"
    );

    // A page says how many rows it holds.
    let h = [
        ("Authorization", auth.as_str()),
        ("X-Request-Id", "trace-test-4"),
    ];
    assert_eq!(get(&node, "/api/v1/transactions?limit=2", &h), 200);
    let page = receiver.request_span("trace-test-4");
    assert_eq!(page.attr("vcci.rows"), "2", "{page:#?}");
    assert_eq!(page.attr("http.route"), "/api/v1/transactions");

    // Log lines inside a traced request carry its trace and span ids.
    let log = node.log.lock().unwrap().clone();
    let line: Value = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["span"]["request_id"] == "trace-test-1")
        .unwrap_or_else(|| panic!("no log line of the request: {log}"));
    assert_eq!(line["trace_id"], server.trace.as_str(), "{line}");
    assert_eq!(line["span_id"], server.id.as_str(), "{line}");
    // The key is in no span.
    let everything = format!("{:?}", receiver.spans());
    assert!(
        !everything.contains(&key[5..]),
        "the key leaked into a span"
    );
    node.terminate();
    assert!(
        receiver
            .content_types
            .lock()
            .unwrap()
            .iter()
            .all(|t| t == "application/x-protobuf")
    );
}

#[test]
fn at_a_sampling_ratio_of_zero_nothing_is_sent_but_a_sampled_callers_trace() {
    let receiver = Receiver::start();
    let (dir, key) = data_dir_with_key();
    let mut node = traced_node(dir.path(), &receiver, &["--otlp-sampling-ratio", "0"]);
    let auth = format!("Bearer {key}");
    for i in 0..20 {
        let id = format!("unsampled-{i}");
        let h = [
            ("Authorization", auth.as_str()),
            ("X-Request-Id", id.as_str()),
        ];
        assert_eq!(get(&node, SUMMARY, &h), 200);
    }
    // A caller that did not sample its trace: neither does vcci.
    let unsampled = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-00");
    let h = [
        ("Authorization", auth.as_str()),
        ("traceparent", unsampled.as_str()),
    ];
    assert_eq!(get(&node, SUMMARY, &h), 200);
    // A caller that sampled its trace: vcci follows it (parent-based sampling).
    let sampled = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    let h = [
        ("Authorization", auth.as_str()),
        ("X-Request-Id", "sampled"),
        ("traceparent", sampled.as_str()),
    ];
    assert_eq!(get(&node, SUMMARY, &h), 200);
    // The exporter sends what it holds at shutdown: after it, everything sent is here.
    node.terminate();
    let spans = receiver.spans();
    assert!(
        spans.iter().any(|s| s.attr("request_id") == "sampled"),
        "the sampled caller's request was exported: {spans:#?}"
    );
    for s in &spans {
        assert_eq!(
            s.trace, CALLER_TRACE,
            "only the sampled caller's trace: {s:#?}"
        );
        if s.kind == SpanKind::Server as i32 {
            assert_eq!(s.attr("request_id"), "sampled", "{s:#?}");
        }
    }
}

#[test]
fn a_collector_that_is_down_fails_no_request_and_does_not_hold_up_the_shutdown() {
    let (dir, key) = data_dir_with_key();
    // A port nothing listens on.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    let mut cmd = Command::new(BIN);
    cmd.arg("--data-dir")
        .arg(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--warm-orgs", "0"])
        .args(["--otlp-endpoint", &format!("http://{addr}")])
        .env_remove("DATABASE_URL")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env("OTEL_BSP_SCHEDULE_DELAY", "50");
    let mut node = Node::spawn(cmd);
    let auth = format!("Bearer {key}");
    for i in 0..200 {
        let path = if i % 2 == 0 {
            SUMMARY
        } else {
            "/api/v1/transactions?limit=5"
        };
        assert_eq!(get(&node, path, &[("Authorization", auth.as_str())]), 200);
    }
    let started = Instant::now();
    node.terminate();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the shutdown waited {:?} for the collector",
        started.elapsed()
    );
}
