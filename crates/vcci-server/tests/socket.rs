//! The server over a real TCP socket: keep-alive, compression, and a graceful shutdown that
//! finishes the request in flight.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod common;
use common::{blocking, env};

/// Reads from `s` until `buf` holds at least `want` bytes.
async fn fill(s: &mut TcpStream, buf: &mut Vec<u8>, want: usize) {
    while buf.len() < want {
        let mut chunk = [0u8; 8192];
        let n = s.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed mid-body");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Reads one HTTP/1.1 response: (status, lower-cased headers, body).
async fn read_response(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let mut chunk = [0u8; 8192];
        let n = s.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed before a response head");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
    buf.drain(..head_end + 4);
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    let h = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let body = if let Some(len) = h("content-length") {
        let len: usize = len.parse().unwrap();
        fill(s, buf, len).await;
        buf.drain(..len).collect()
    } else if h("transfer-encoding").as_deref() == Some("chunked") {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
                    break i;
                }
                let n = buf.len() + 1;
                fill(s, buf, n).await;
            };
            let size =
                usize::from_str_radix(std::str::from_utf8(&buf[..line_end]).unwrap().trim(), 16)
                    .unwrap();
            buf.drain(..line_end + 2);
            fill(s, buf, size + 2).await;
            body.extend(buf.drain(..size));
            buf.drain(..2);
            if size == 0 {
                break body;
            }
        }
    } else {
        Vec::new()
    };
    (status, headers, body)
}

async fn start(
    e: &common::Env,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let router = e.router.clone();
    let server = tokio::spawn(vcci_server::serve(listener, router, async move {
        let _ = rx.await;
    }));
    (addr, tx, server)
}

#[tokio::test]
async fn keep_alive_serves_several_requests_on_one_connection() {
    let e = env();
    let (addr, stop, server) = start(&e).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut buf = Vec::new();
    for path in [
        "/health",
        "/api/v1/emissions/summary",
        "/api/v1/transactions/t1",
        "/health",
    ] {
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
            e.viewer
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let (status, headers, body) = read_response(&mut s, &mut buf).await;
        assert_eq!(status, 200, "{path}");
        assert!(
            !headers
                .iter()
                .any(|(k, v)| k == "connection" && v == "close")
        );
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert!(v.is_object());
    }
    stop.send(()).unwrap();
    drop(s);
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn responses_are_compressed_on_the_wire() {
    let e = env();
    let (addr, stop, server) = start(&e).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut buf = Vec::new();
    let mut sizes = Vec::new();
    for enc in ["identity", "gzip", "br", "zstd"] {
        let req = format!(
            "GET /api/v1/factors?set=desnz&limit=300 HTTP/1.1\r\nHost: x\r\nAccept-Encoding: {enc}\r\nAuthorization: Bearer {}\r\n\r\n",
            e.viewer
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let (status, headers, body) = read_response(&mut s, &mut buf).await;
        assert_eq!(status, 200);
        let coding = headers
            .iter()
            .find(|(k, _)| k == "content-encoding")
            .map(|(_, v)| v.as_str());
        if enc == "identity" {
            assert_eq!(coding, None);
        } else {
            assert_eq!(coding, Some(enc));
            assert!(headers.iter().any(|(k, v)| k == "vary" && v.to_ascii_lowercase().contains("accept-encoding")));
        }
        sizes.push(body.len());
    }
    assert!(sizes[1..].iter().all(|n| n * 4 < sizes[0]), "{sizes:?}");
    stop.send(()).unwrap();
    drop(s);
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn graceful_shutdown_finishes_the_request_in_flight() {
    let e = env();
    let (addr, stop, server) = start(&e).await;
    let body = r#"{"transactions": [{"transaction_id": "inflight", "date": "2024-01-01", "amount": 10, "naics_code": "484121"}]}"#;
    let (first, rest) = body.split_at(40);
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /api/v1/transactions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nAuthorization: Bearer {}\r\n\r\n",
        body.len(),
        e.analyst
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(first.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Shut down while the request's body is still arriving.
    stop.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !server.is_finished(),
        "the server waits for the request in flight"
    );
    // New connections are no longer accepted.
    let refused = match TcpStream::connect(addr).await {
        Err(_) => true,
        Ok(mut c) => {
            let _ = c
                .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                .await;
            let mut b = [0u8; 16];
            matches!(
                tokio::time::timeout(Duration::from_secs(2), c.read(&mut b)).await,
                Ok(Ok(0)) | Ok(Err(_)) | Err(_)
            )
        }
    };
    assert!(refused, "a new connection was served after shutdown began");
    s.write_all(rest.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let (status, _, resp) = read_response(&mut s, &mut buf).await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&resp).unwrap();
    assert_eq!(v["accepted"], 1);
    drop(s);
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("server stopped")
        .unwrap()
        .unwrap();
    // The line was stored.
    let stored = blocking(|| {
        let db = e.store.connect().unwrap();
        let acme = db.require_org("acme").unwrap();
        db.get_line(acme.id, "inflight").unwrap().is_some()
    });
    assert!(stored);
}
