//! The web dashboard end to end: `vcci serve --demo` on loopback, driven in headless
//! Chromium by e2e/dashboard.mjs (playwright-core). Screenshots of each page land in
//! target/tmp/dashboard-screenshots. Needs node, `npm ci --prefix e2e` and chromium;
//! `.ci/run` installs them and sets VCCI_REQUIRE_TOOLS=1 so that nothing is skipped there.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tools_ready(e2e: &Path) -> bool {
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let pw = e2e.join("node_modules/playwright-core").exists();
    let chromium = Command::new("chromium")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if node && pw && chromium {
        return true;
    }
    assert!(
        std::env::var_os("VCCI_REQUIRE_TOOLS").is_none(),
        "VCCI_REQUIRE_TOOLS: node ({node}), e2e/node_modules/playwright-core ({pw}) and chromium ({chromium}) are required"
    );
    eprintln!("dashboard end-to-end test skipped: needs node, `npm ci --prefix e2e` and chromium");
    false
}

#[test]
fn the_dashboard_end_to_end_in_headless_chromium() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let e2e = root.join("e2e");
    if !tools_ready(&e2e) {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_vcci");
    let mut child = Command::new(bin)
        .arg("--data-dir")
        .arg(data.path())
        .args([
            "serve",
            "--demo",
            "--listen",
            "127.0.0.1:0",
            "--rate-limit",
            "0",
        ])
        .env_remove("DATABASE_URL")
        // PACT connections are created from the dashboard: their secrets need a key.
        .env("VCCI_SECRET_KEY", "3c".repeat(32))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let server = Server(child);
    // The key is printed on the line after "Demo API key"; the address on stderr. Both
    // streams are read to their end on threads of their own: a reader dropped early would
    // make the server's next line fail with a broken pipe (and end it), and one left unread
    // would block it once the pipe's buffer is full.
    let drain = |r: Box<dyn std::io::Read + Send>, pick: fn(&str, &mut bool) -> Option<String>| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut state = false;
            for l in BufReader::new(r).lines().map_while(Result::ok) {
                if let Some(v) = pick(&l, &mut state) {
                    let _ = tx.send(v);
                }
            }
        });
        rx
    };
    let key = drain(Box::new(stdout), |l, after_title| {
        if *after_title {
            *after_title = false;
            return Some(l.to_owned());
        }
        *after_title = l.starts_with("Demo API key");
        None
    })
    .recv_timeout(Duration::from_secs(120))
    .expect("a demo key is printed");
    let addr = drain(Box::new(stderr), |l, _| {
        l.strip_prefix("vcci listening on ")
            .map(|s| s.split(' ').next().unwrap().to_owned())
    })
    .recv_timeout(Duration::from_secs(120))
    .expect("the listening address is printed");
    let started = Instant::now();
    while std::net::TcpStream::connect(addr.trim_start_matches("http://")).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the server did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
    let out = Command::new("node")
        .arg(e2e.join("dashboard.mjs"))
        .arg(&addr)
        .arg(&key)
        .arg(bin)
        .arg(data.path())
        .arg(&shots)
        .current_dir(&e2e)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    assert!(out.status.success(), "the dashboard checks failed:\n{text}");
    for page in [
        "signin",
        "overview",
        "transactions",
        "import",
        "factors",
        "periods",
        "overview-mobile",
        "revoked",
    ] {
        let p = shots.join(format!("{page}.png"));
        assert!(
            std::fs::metadata(&p).is_ok_and(|m| m.len() > 5_000),
            "screenshot {}",
            p.display()
        );
    }
    drop(server);
}
