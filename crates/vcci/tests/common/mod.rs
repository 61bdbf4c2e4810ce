//! Helpers for tests that run `vcci serve` processes over PostgreSQL and Redis: a schema of
//! their own, nodes on loopback, a small blocking HTTP client.

#![allow(dead_code)] // each test file uses part of it

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_vcci");

/// PostgreSQL and Redis of the tests (VCCI_TEST_DATABASE_URL, VCCI_TEST_REDIS_URL); None
/// skips the test (the CI's second pass sets both).
pub fn services() -> Option<(String, String)> {
    let pg = vcci_store::testing::test_database_url();
    let redis = std::env::var("VCCI_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty());
    match (pg, redis) {
        (Some(p), Some(r)) => Some((p, r)),
        _ => {
            eprintln!(
                "skipped: needs VCCI_TEST_DATABASE_URL and VCCI_TEST_REDIS_URL (CI's second pass sets them)"
            );
            None
        }
    }
}

/// A schema of its own in the test database, dropped at the end.
pub struct Schema {
    pub url: String,
    pub name: String,
    /// `url` with the schema as the connection's search_path, for `vcci --database-url`.
    pub node_url: String,
}

impl Schema {
    pub fn new(url: &str) -> Schema {
        let name = vcci_store::testing::new_schema(url).unwrap();
        let sep = if url.contains('?') { '&' } else { '?' };
        Schema {
            url: url.to_owned(),
            node_url: format!("{url}{sep}options=-c%20search_path%3D{name}"),
            name,
        }
    }

    /// Runs a `vcci` command on this schema; returns stdout (panics on failure).
    pub fn vcci(&self, args: &[&str]) -> String {
        let o = Command::new(BIN)
            .args(args)
            .env("DATABASE_URL", &self.node_url)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "vcci {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// A new API key of `org` with `role` (the CLI prints it on its last line).
    pub fn key(&self, org: &str, role: &str) -> String {
        let out = self.vcci(&["keys", "create", "--org", org, "--role", role]);
        out.lines().last().unwrap().trim().to_owned()
    }

    /// A query's first column, as text.
    pub fn sql(&self, query: &str) -> Vec<String> {
        let config: postgres::Config = self.url.parse().unwrap();
        vcci_store::testing::blocking(|| {
            let mut c = config.connect(postgres::NoTls).unwrap();
            c.batch_execute(&format!("SET search_path = {}", self.name))
                .unwrap();
            c.simple_query(query)
                .unwrap()
                .into_iter()
                .filter_map(|m| match m {
                    postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
                    _ => None,
                })
                .collect()
        })
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        vcci_store::testing::drop_schema(&self.url, &self.name);
    }
}

/// One `vcci serve` process on loopback.
pub struct Node {
    pub child: Child,
    pub addr: String,
    pub log: Arc<Mutex<String>>,
}

impl Node {
    /// Starts `vcci serve` with `args` and waits for it to listen.
    pub fn start(schema: &Schema, args: &[&str]) -> Node {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env("DATABASE_URL", &schema.node_url);
        Node::spawn(cmd)
    }

    /// Starts `cmd` (a `vcci … serve --listen 127.0.0.1:0 …`) and waits for it to listen;
    /// its standard error is kept in `log`.
    pub fn spawn(mut cmd: Command) -> Node {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let l = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line
                    .strip_prefix("vcci listening on http://")
                    .and_then(|r| r.split_whitespace().next())
                    && let Some(t) = tx.take()
                {
                    let _ = t.send(addr.to_owned());
                }
                let mut l = l.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("node did not start: {}", log.lock().unwrap()));
        Node { child, addr, log }
    }

    pub fn get(&self, path: &str, key: Option<&str>) -> (u16, Value) {
        request(&self.addr, "GET", path, key, None)
    }

    pub fn post(&self, path: &str, key: &str, body: &Value) -> (u16, Value) {
        request(&self.addr, "POST", path, Some(key), Some(body))
    }

    /// Waits until /ready answers with `checks.redis == redis`, the start's cache warming
    /// done (its requests would otherwise share the node with the test's first ones).
    pub fn wait_ready(&self, redis: &str) -> Value {
        let started = Instant::now();
        loop {
            let (_, v) = self.get("/ready", None);
            if v["checks"]["redis"] == redis && v["status"] != "warming" {
                return v;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{} never reported redis {redis}: {v}",
                self.addr
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the node as a service manager does (SIGTERM) and waits for it to exit.
    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One HTTP/1.1 request on a fresh connection: (status, JSON body or Null).
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let (status, raw) = request_raw(
        addr,
        method,
        path,
        key,
        "application/json",
        body.map(|b| b.to_string().into_bytes()),
    );
    (status, serde_json::from_slice(&raw).unwrap_or(Value::Null))
}

/// As `request`, with any body and content type; the raw response body.
pub fn request_raw(
    addr: &str,
    method: &str,
    path: &str,
    key: Option<&str>,
    content_type: &str,
    body: Option<Vec<u8>>,
) -> (u16, Vec<u8>) {
    let auth = key.map(|k| format!("Bearer {k}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| ("Authorization", a))
        .into_iter()
        .collect();
    request_with(addr, method, path, &headers, content_type, body)
}

/// As `request_raw`, with any request headers.
pub fn request_with(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    content_type: &str,
    body: Option<Vec<u8>>,
) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let body = body.unwrap_or_default();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        head += &format!("Content-Type: {content_type}\r\n");
    }
    for (name, value) in headers {
        head += &format!("{name}: {value}\r\n");
    }
    head += "\r\n";
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(std::str::from_utf8(&b[..i]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&b[i + 2..i + 2 + n]);
        b = &b[i + 2 + n + 2..];
    }
    out
}

/// A free loopback port (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A Redis server of the test's own on `port` (it can be stopped without disturbing other
/// tests); killed on drop.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    pub fn start(port: u16) -> PrivateRedis {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (Debian package redis-server)");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        PrivateRedis {
            port,
            child: Some(child),
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A CSV of `n` lines with ids `{prefix}{i}`.
pub fn csv(prefix: &str, n: usize) -> String {
    let mut s = String::from("transaction_id,date,amount,currency,naics_code\n");
    for i in 0..n {
        s += &format!(
            "{prefix}{i:07},2024-{:02}-{:02},{}.25,USD,484121\n",
            i % 12 + 1,
            i % 28 + 1,
            i % 997 + 1
        );
    }
    s
}

/// Polls a job until it ends; returns its JSON.
pub fn finished(node: &Node, key: &str, id: &str, limit: Duration) -> Value {
    let started = Instant::now();
    loop {
        let (_, j) = node.get(&format!("/api/v1/jobs/{id}"), Some(key));
        if j["status"] == "succeeded" || j["status"] == "failed" {
            return j;
        }
        assert!(started.elapsed() < limit, "job {id} did not finish: {j}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Uploads a CSV import; returns the job id.
pub fn upload(node: &Node, key: &str, csv: &str) -> String {
    let (s, b) = request_raw(
        &node.addr,
        "POST",
        "/api/v1/imports",
        Some(key),
        "text/csv",
        Some(csv.as_bytes().to_vec()),
    );
    let v: Value = serde_json::from_slice(&b).unwrap_or(Value::Null);
    assert_eq!(s, 202, "{v}");
    v["job_id"].as_str().unwrap().to_owned()
}
