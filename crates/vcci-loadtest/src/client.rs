//! A small HTTP/1.1 client for load generation: one keep-alive connection per `Conn`, plain
//! `http://` only (load tests target loopback or a given URL; there is no TLS), bodies read
//! and counted, not kept.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Where requests go: `host:port` and the `Host` header.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: String,
    pub host: String,
}

impl Target {
    /// Parses `http://host:port` (a path is not allowed: routes are fixed by the scenario).
    pub fn parse(url: &str) -> Result<Target, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("'{url}': only http:// URLs are supported"))?;
        let host = rest.trim_end_matches('/');
        if host.is_empty() || host.contains('/') {
            return Err(format!(
                "'{url}': give the server's base URL, e.g. http://127.0.0.1:8080"
            ));
        }
        let addr = if host.contains(':') {
            host.to_owned()
        } else {
            format!("{host}:80")
        };
        Ok(Target {
            addr,
            host: host.to_owned(),
        })
    }
}

/// One request to send.
#[derive(Clone, Debug)]
pub struct Req {
    /// The scenario's name for it (the report groups by this).
    pub name: &'static str,
    pub method: &'static str,
    pub path: String,
    pub content_type: Option<&'static str>,
    pub body: Vec<u8>,
}

/// What came back.
#[derive(Clone, Copy, Debug)]
pub struct Resp {
    pub status: u16,
    pub bytes: usize,
}

#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

fn bad(m: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_owned())
}

impl Conn {
    pub async fn open(t: &Target) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(&t.addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(64 << 10),
        })
    }

    /// Sends `r` and reads the whole response. On an error the connection must be dropped.
    pub async fn send(
        &mut self,
        t: &Target,
        key: &str,
        r: &Req,
        timeout: Duration,
    ) -> std::io::Result<Resp> {
        let mut sink = None;
        match tokio::time::timeout(timeout, self.exchange(t, key, r, &mut sink)).await {
            Ok(x) => x,
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "request timed out",
            )),
        }
    }

    /// `send`, keeping the body: (status, body).
    pub async fn send_for_body(
        &mut self,
        t: &Target,
        key: &str,
        r: &Req,
        timeout: Duration,
    ) -> std::io::Result<(u16, Vec<u8>)> {
        let mut body = Some(Vec::new());
        let resp = match tokio::time::timeout(timeout, self.exchange(t, key, r, &mut body)).await {
            Ok(x) => x?,
            Err(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "request timed out",
                ));
            }
        };
        Ok((resp.status, body.unwrap_or_default()))
    }

    async fn exchange(
        &mut self,
        t: &Target,
        key: &str,
        r: &Req,
        keep: &mut Option<Vec<u8>>,
    ) -> std::io::Result<Resp> {
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {key}\r\nUser-Agent: vcci-loadtest\r\n",
            r.method, r.path, t.host
        );
        if let Some(ct) = r.content_type {
            head += &format!("Content-Type: {ct}\r\n");
        }
        if !r.body.is_empty() || r.method == "POST" {
            head += &format!("Content-Length: {}\r\n", r.body.len());
        }
        head += "\r\n";
        let mut out = head.into_bytes();
        out.extend_from_slice(&r.body);
        self.stream.write_all(&out).await?;
        self.read_response(keep).await
    }

    async fn fill(&mut self) -> std::io::Result<()> {
        let mut chunk = [0u8; 16 << 10];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    async fn read_response(&mut self, keep: &mut Option<Vec<u8>>) -> std::io::Result<Resp> {
        let end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            if self.buf.len() > 64 << 10 {
                return Err(bad("response head too long"));
            }
            self.fill().await?;
        };
        let head =
            std::str::from_utf8(&self.buf[..end]).map_err(|_| bad("response head is not UTF-8"))?;
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("no status line"))?;
        let (mut length, mut chunked) = (None, false);
        for l in lines {
            if let Some((k, v)) = l.split_once(':') {
                let k = k.trim();
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse::<usize>().ok();
                } else if k.eq_ignore_ascii_case("transfer-encoding")
                    && v.trim().eq_ignore_ascii_case("chunked")
                {
                    chunked = true;
                }
            }
        }
        self.buf.drain(..end + 4);
        let bytes = if chunked {
            self.read_chunked(keep).await?
        } else {
            let n = if status == 304 || status == 204 {
                0
            } else {
                length.unwrap_or(0)
            };
            while self.buf.len() < n {
                self.fill().await?;
            }
            if let Some(k) = keep {
                k.extend_from_slice(&self.buf[..n]);
            }
            self.buf.drain(..n);
            n
        };
        Ok(Resp { status, bytes })
    }

    async fn read_chunked(&mut self, keep: &mut Option<Vec<u8>>) -> std::io::Result<usize> {
        let mut total = 0;
        loop {
            let line_end = loop {
                if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                    break i;
                }
                self.fill().await?;
            };
            let size_text =
                std::str::from_utf8(&self.buf[..line_end]).map_err(|_| bad("bad chunk size"))?;
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| bad("bad chunk size"))?;
            self.buf.drain(..line_end + 2);
            while self.buf.len() < size + 2 {
                self.fill().await?;
            }
            if let Some(k) = keep {
                k.extend_from_slice(&self.buf[..size]);
            }
            self.buf.drain(..size + 2);
            total += size;
            if size == 0 {
                return Ok(total);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Target;

    #[test]
    fn targets() {
        let t = Target::parse("http://127.0.0.1:8080/").unwrap();
        assert_eq!(
            (t.addr.as_str(), t.host.as_str()),
            ("127.0.0.1:8080", "127.0.0.1:8080")
        );
        assert_eq!(Target::parse("http://example").unwrap().addr, "example:80");
        assert!(Target::parse("https://x").is_err());
        assert!(Target::parse("http://x/api").is_err());
    }
}
