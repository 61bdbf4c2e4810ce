//! The `vcci` command line as users and scripts drive it.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn vcci(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vcci"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("VCCI_DATA_DIR")
        .output()
        .unwrap()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn demo_imports_and_prints_an_inventory() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(&vcci(
        dir.path(),
        &["demo", "--lines", "3000", "--suppliers", "100"],
    ));
    assert!(out.contains("Scope 3 emissions of 'demo'"), "{out}");
    assert!(out.contains("Purchased goods and services"));
    let not_reported = out
        .lines()
        .find(|l| l.starts_with("Not reported (no data): categories "))
        .expect("categories without data are listed");
    assert!(
        not_reported.ends_with("7, 9, 10, 11, 12, 13, 14, 15"),
        "{not_reported}"
    );
    assert!(
        !out.contains("       7  "),
        "a category without data is not shown as a row"
    );
    // The demo's electricity and gas lines: Scope 1 and 2 recorded apart, not in the total.
    assert!(
        out.lines()
            .any(|l| l.starts_with("Recorded apart, not in the Scope 3 total: Scope 1 ")),
        "{out}"
    );
    let json = ok(&vcci(
        dir.path(),
        &[
            "report", "--org", "demo", "--by", "category", "--format", "json",
        ],
    ));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["transaction_count"], 3000);
    let by_cat: f64 = v["by_category"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["co2e_kg"].as_f64().unwrap())
        .sum();
    assert!((by_cat - v["total_co2e_kg"].as_f64().unwrap()).abs() < 1e-3);
    let months = ok(&vcci(
        dir.path(),
        &[
            "report", "--org", "demo", "--by", "month", "--year", "2024", "--format", "csv",
        ],
    ));
    assert_eq!(months.lines().count(), 13, "{months}");
    assert!(months.lines().nth(1).unwrap().starts_with("2024-01,"));
    let sup = ok(&vcci(
        dir.path(),
        &[
            "report", "--org", "demo", "--by", "supplier", "--limit", "5", "--format", "csv",
        ],
    ));
    assert_eq!(sup.lines().count(), 6);
    let verify = ok(&vcci(dir.path(), &["verify", "--org", "demo"]));
    assert!(verify.contains("agree with the 3,000 lines"), "{verify}");
    let explain = ok(&vcci(
        dir.path(),
        &["explain", "--org", "demo", "TX-2023-00000001"],
    ));
    let line: serde_json::Value = serde_json::from_str(&explain).unwrap();
    assert!(line["emission"]["factor"]["set"].is_string());
}

#[test]
fn keys_are_printed_alone_on_the_last_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(&vcci(
        dir.path(),
        &["keys", "create", "--org", "acme", "--role", "analyst"],
    ));
    let key = out.lines().last().unwrap();
    assert!(
        key.starts_with("vcci_")
            && key.len() == 69
            && key[5..].bytes().all(|b| b.is_ascii_hexdigit()),
        "{out}"
    );
    ok(&vcci(dir.path(), &["keys", "revoke", key]));
    let again = vcci(dir.path(), &["keys", "revoke", key]);
    assert!(!again.status.success());
}

#[test]
fn failures_exit_non_zero_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["report", "--org", "nobody"][..],
        &["import", "/no/such/file.csv", "--org", "acme"],
        &["report", "--org", "x", "--from", "2024-02-30"],
        &["factors", "show", "desnz", "no/such/key"],
        &["calculate", "--org", "x", "--epa-version", "9"],
    ] {
        let o = vcci(dir.path(), args);
        assert!(!o.status.success(), "{args:?}");
        let err = String::from_utf8(o.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("vcci: error: "), "{err}");
    }
    let o = Command::new(env!("CARGO_BIN_EXE_vcci"))
        .args(["--data-dir"])
        .arg(dir.path())
        .args(["report", "--org", "x"])
        .env("DATABASE_URL", "mysql://localhost/x")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("use sqlite:PATH or postgres://"));
    // An unreachable PostgreSQL server: one clear line, non-zero exit, no hang.
    let o = Command::new(env!("CARGO_BIN_EXE_vcci"))
        .args(["report", "--org", "x", "--db-connect-timeout", "2"])
        .env("DATABASE_URL", "postgres://vcci@127.0.0.1:1/x")
        .output()
        .unwrap();
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(!o.status.success());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("opening the PostgreSQL database"), "{err}");
}

#[test]
fn import_reads_standard_input_and_writes_rejects() {
    let dir = tempfile::tempdir().unwrap();
    let rejects = dir.path().join("r.csv");
    let mut child = Command::new(env!("CARGO_BIN_EXE_vcci"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["import", "-", "--org", "acme", "--rejects"])
        .arg(&rejects)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"transaction_id,date,amount,naics_code\na,2022-01-01,1000,484121\nb,2022-01-01,x,484121\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.contains("2 lines read, 1 accepted (1 new, 0 updated), 0 unchanged, 1 rejected"),
        "{err}"
    );
    let r = std::fs::read_to_string(&rejects).unwrap();
    assert_eq!(
        r,
        "line,column,error,original\n3,amount,amount: 'x' is not a number,\"b,2022-01-01,x,484121\"\n"
    );
    let out = ok(&vcci(
        dir.path(),
        &["report", "--org", "acme", "--format", "csv"],
    ));
    assert_eq!(
        out,
        "category,name,tCO2e,share,lines\n4,Upstream transportation and distribution,0.595,100.0%,1\n"
    );
}

#[test]
fn factor_search_finds_keys_by_words() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(&vcci(
        dir.path(),
        &[
            "factors", "search", "HGV", "average", "laden", "t.km", "--format", "csv", "--limit",
            "100",
        ],
    ));
    assert!(out.contains("desnz,2024-v1.1,freighting-goods/hgv-all-diesel/all-hgvs/average-laden/tonne.km,0.09752,tonne.km,Scope 3,"), "{out}");
    let json = ok(&vcci(
        dir.path(),
        &[
            "factors",
            "show",
            "epa-supply-chain",
            "484121",
            "--version",
            "1.2",
        ],
    ));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        (v["value"].as_f64(), v["price_year"].as_u64()),
        (Some(1.115), Some(2021))
    );
}

/// Kill an import with SIGKILL once part of it is committed, run it again, and compare with
/// a clean import: nothing lost, nothing duplicated, same totals to the milligram.
#[test]
fn a_killed_import_resumes_without_loss_or_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let lines = 400_000;
    let spec = vcci_store::demo::DemoSpec {
        suppliers: 500,
        lines,
        ..Default::default()
    };
    let csv = dir.path().join("big.csv");
    let suppliers = dir.path().join("suppliers.csv");
    {
        let mut s = std::fs::File::create(&suppliers).unwrap();
        let mut t = std::io::BufWriter::new(std::fs::File::create(&csv).unwrap());
        vcci_store::demo::generate(&spec, &mut s, &mut t).unwrap();
        t.flush().unwrap();
    }
    let crashed = dir.path().join("crashed");
    let clean = dir.path().join("clean");
    for d in [&crashed, &clean] {
        ok(&vcci(
            d,
            &[
                "import",
                suppliers.to_str().unwrap(),
                "--org",
                "acme",
                "--kind",
                "suppliers",
            ],
        ));
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_vcci"))
        .arg("--data-dir")
        .arg(&crashed)
        .args(["import"])
        .arg(&csv)
        .args(["--org", "acme", "--batch-size", "20000"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "import ended before any progress was shown"
        );
        let committed: u64 = line
            .split(" committed")
            .next()
            .and_then(|s| s.rsplit(' ').next())
            .map(|n| n.replace(',', ""))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if committed > 0 {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let store = vcci_store::Store::open_dir(&crashed).unwrap();
    let db = store.connect().unwrap();
    let org = db.require_org("acme").unwrap();
    let partial = db.line_count(org.id).unwrap();
    assert!(
        partial > 0 && partial < lines as i64,
        "the kill should land mid-import ({partial} lines stored)"
    );
    assert!(
        db.verify_read_models(org.id).unwrap().is_empty(),
        "committed batches are consistent"
    );

    let again = vcci(
        &crashed,
        &["import", csv.to_str().unwrap(), "--org", "acme"],
    );
    let msg = String::from_utf8(again.stderr.clone()).unwrap();
    assert!(again.status.success(), "{msg}");
    assert!(msg.contains("0 rejected"), "{msg}");
    assert_eq!(db.line_count(org.id).unwrap(), lines as i64);
    assert!(db.verify_read_models(org.id).unwrap().is_empty());

    ok(&vcci(
        &clean,
        &["import", csv.to_str().unwrap(), "--org", "acme"],
    ));
    let a = ok(&vcci(
        &crashed,
        &["report", "--org", "acme", "--format", "json"],
    ));
    let b = ok(&vcci(
        &clean,
        &["report", "--org", "acme", "--format", "json"],
    ));
    assert_eq!(a, b);
}

#[test]
fn loadtest_fails_an_slo_with_a_nonzero_exit_and_writes_reports() {
    let dir = tempfile::tempdir().unwrap();
    let (html, json) = (dir.path().join("r.html"), dir.path().join("r.json"));
    let o = vcci(
        dir.path(),
        &[
            "loadtest",
            "--self-host",
            "--self-host-lines",
            "2000",
            "--duration",
            "2",
            "--rate",
            "100",
            "--scenario",
            "read-heavy",
            "--quiet",
            // No request is answered in under a microsecond: this SLO must fail.
            "--slo-p99-ms",
            "0.001",
            "--html",
            html.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ],
    );
    assert!(
        !o.status.success(),
        "an SLO failed, so the exit status is non-zero"
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("vcci: error: SLO failed: p99 latency"),
        "{err}"
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("SLO FAILED.") && out.contains("transaction detail"),
        "{out}"
    );
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["passed"], false);
    assert!(report["total"]["requests"].as_u64().unwrap() >= 150);
    assert_eq!(report["total"]["errors"], 0);
    // The HTML report opens in headless Chromium and draws its charts.
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("SLO failed"));
    let chromium = Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
        .arg(format!("file://{}", html.display()))
        .output();
    match chromium {
        Ok(c) => {
            let dom = String::from_utf8_lossy(&c.stdout);
            assert!(c.status.success(), "{}", String::from_utf8_lossy(&c.stderr));
            assert_eq!(dom.matches("<svg class=\"chart\"").count(), 2, "two charts");
            for s in ["requests", "p50", "p95", "p99"] {
                assert!(
                    dom.contains(&format!("data-series=\"{s}\"")),
                    "series {s} drawn"
                );
            }
            let shot = dir.path().join("r.png");
            let c = Command::new("chromium")
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--window-size=1100,1400",
                ])
                .arg(format!("--screenshot={}", shot.display()))
                .arg(format!("file://{}", html.display()))
                .output()
                .unwrap();
            assert!(c.status.success());
            assert!(
                std::fs::metadata(&shot).unwrap().len() > 10_000,
                "a rendered page"
            );
        }
        Err(_) if std::env::var_os("VCCI_REQUIRE_TOOLS").is_none() => {
            eprintln!("chromium is not installed: the browser check is skipped (CI requires it)");
        }
        Err(e) => panic!("chromium is required (VCCI_REQUIRE_TOOLS): {e}"),
    }
}

#[test]
fn loadtest_refuses_bad_arguments_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    for (args, want) in [
        (
            vec!["loadtest", "--self-host", "--scenario", "chaos"],
            "'chaos' is not a scenario",
        ),
        (
            vec!["loadtest", "--url", "https://x", "--key", "k"],
            "only http:// URLs",
        ),
        (
            vec!["loadtest", "--self-host", "--duration", "99999"],
            "--duration must be",
        ),
    ] {
        let o = vcci(dir.path(), &args);
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

#[test]
fn server_logs_are_json_lines_carrying_the_request_id() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vcci"))
        .arg("--data-dir")
        .arg(dir.path())
        // No cache warming: /ready answers 200 at once (else 503 `warming` for a moment).
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--slow-query-ms",
            "0",
            "--warm-orgs",
            "0",
        ])
        .env_remove("VCCI_LOG")
        .env_remove("VCCI_LOG_FORMAT")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Standard error is a pipe, not a terminal: logs are JSON lines.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let next = || {
        rx.recv_timeout(std::time::Duration::from_secs(30))
            .expect("a line on standard error")
    };
    let addr = loop {
        let line = next();
        if let Some(rest) = line.strip_prefix("vcci listening on http://") {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        s,
        "GET /ready HTTP/1.1\r\nHost: x\r\nX-Request-Id: log-test-1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    // Every database call is "slow" at 0 ms: the readiness check's is logged.
    let entry: serde_json::Value = loop {
        let line = next();
        if line.contains("log-test-1") {
            break serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(entry["level"], "WARN", "{entry}");
    assert_eq!(entry["message"], "slow database call", "{entry}");
    assert_eq!(entry["span"]["request_id"], "log-test-1", "{entry}");
    assert!(
        entry["target"].as_str().unwrap().starts_with("vcci_server"),
        "{entry}"
    );
    assert!(
        entry["query"].as_str().unwrap().contains("ready"),
        "{entry}"
    );
    assert!(entry["timestamp"].is_string(), "{entry}");
}

#[test]
fn an_organizations_default_currency_is_assumed_recorded_and_changed_by_recalculation() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("eu.csv");
    std::fs::write(
        &csv,
        "transaction_id,date,amount,naics_code\nx1,2023-03-15,1000,334111\n",
    )
    .unwrap();
    let csv = csv.to_str().unwrap();
    ok(&vcci(
        dir.path(),
        &[
            "import",
            csv,
            "--org",
            "eu",
            "--default-currency",
            "EUR",
            "-q",
        ],
    ));
    let explain = |dir: &Path| -> serde_json::Value {
        serde_json::from_str(&ok(&vcci(dir, &["explain", "--org", "eu", "x1"]))).unwrap()
    };
    // 1000 EUR of 2023 (0.9245 EUR/USD; CPI 292.655/304.702; 0.058 kg/2022 USD).
    let e = &explain(dir.path())["emission"];
    assert!(
        (e["co2e_kg"].as_f64().unwrap() - 60.256_197_475_500_97).abs() < 1e-9,
        "{e}"
    );
    assert_eq!(e["conversions"]["spend"]["currency"], "EUR");
    assert_eq!(e["fallbacks"][0]["code"], "currency_assumed");
    // An existing organization's default is not changed in passing.
    let o = vcci(
        dir.path(),
        &[
            "keys",
            "create",
            "--org",
            "eu",
            "--role",
            "viewer",
            "--default-currency",
            "USD",
        ],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("exists with default currency EUR, not USD"),
        "{err}"
    );
    // Changing it recalculates the lines that name no currency, and says so.
    let o = vcci(
        dir.path(),
        &["calculate", "--org", "eu", "--default-currency", "USD"],
    );
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("default currency USD, flights with radiative forcing: 1 lines changed"),
        "{err}"
    );
    assert!(err.contains(" 1 Purchased goods and services"), "{err}");
    let e = &explain(dir.path())["emission"];
    assert!((e["co2e_kg"].as_f64().unwrap() - 1000.0 * 292.655 / 304.702 * 0.058).abs() < 1e-9);
    assert_eq!(
        e["fallbacks"][0]["message"],
        "the line gives no currency; the organization's default USD was assumed"
    );
}

#[test]
fn flights_follow_the_organizations_radiative_forcing_choice() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("f.csv");
    std::fs::write(
        &csv,
        "transaction_id,date,quantity,unit,activity_id\nf1,2024-05-01,11000,passenger.km,business-travel-air/flights/long-haul-to-from-uk/economy-class/with-rf/passenger.km\n",
    )
    .unwrap();
    ok(&vcci(
        dir.path(),
        &["import", csv.to_str().unwrap(), "--org", "air", "-q"],
    ));
    let explain = |dir: &Path| -> serde_json::Value {
        serde_json::from_str(&ok(&vcci(dir, &["explain", "--org", "air", "f1"]))).unwrap()
    };
    // With RF by default: 2,201.21 + WTT 270.71 kg.
    let e = &explain(dir.path())["emission"];
    assert!(
        (e["co2e_kg"].as_f64().unwrap() - 2_471.92).abs() < 1e-6,
        "{e}"
    );
    assert_eq!(e["radiative_forcing"]["included"], true);
    let o = vcci(
        dir.path(),
        &["calculate", "--org", "air", "--flights-rf", "without"],
    );
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("flights without radiative forcing: 1 lines changed"),
        "{err}"
    );
    assert!(err.contains(" 6 Business travel"), "{err}");
    // Without: 1,299.32 + 270.71 kg, the line's named factor swapped and said so.
    let e = &explain(dir.path())["emission"];
    assert!(
        (e["co2e_kg"].as_f64().unwrap() - 1_570.03).abs() < 1e-6,
        "{e}"
    );
    assert_eq!(e["radiative_forcing"]["included"], false);
    assert_eq!(e["fallbacks"][0]["code"], "rf_setting");
    assert_eq!(
        e["factor"]["key"],
        "business-travel-air/flights/long-haul-to-from-uk/economy-class/without-rf/passenger.km"
    );
}

#[test]
fn supplier_intensities_are_listed_removed_and_explained() {
    let dir = tempfile::tempdir().unwrap();
    let sup = dir.path().join("s.csv");
    std::fs::write(
        &sup,
        "supplier_id,name,naics_code,intensity_kg_per_usd,intensity_year,intensity_source,intensity_boundary,intensity_verified\n\
         S,Supplier,484121,0.30,2022,CDP 2023,cradle_to_gate,true\n\
         S,Supplier,484121,0.10,2024,,scope_1_2,false\n",
    )
    .unwrap();
    let lines = dir.path().join("l.csv");
    std::fs::write(
        &lines,
        "transaction_id,date,amount,currency,supplier_id\na,2022-05-01,1000000,USD,S\n",
    )
    .unwrap();
    let (sup, lines) = (sup.to_str().unwrap(), lines.to_str().unwrap());
    ok(&vcci(
        dir.path(),
        &["import", sup, "--org", "o", "--kind", "suppliers", "-q"],
    ));
    ok(&vcci(dir.path(), &["import", lines, "--org", "o", "-q"]));
    // One row per year: both values are set.
    let table = ok(&vcci(
        dir.path(),
        &["suppliers", "intensities", "--org", "o", "S"],
    ));
    assert!(
        table.lines().nth(2).unwrap().starts_with("2022  "),
        "{table}"
    );
    assert!(
        table.lines().nth(3).unwrap().starts_with("2024  "),
        "{table}"
    );
    assert_eq!(table.lines().count(), 4, "{table}");
    let json: serde_json::Value = serde_json::from_str(&ok(&vcci(
        dir.path(),
        &[
            "suppliers",
            "intensities",
            "--org",
            "o",
            "S",
            "--format",
            "json",
        ],
    )))
    .unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2, "{json}");
    assert_eq!(json[1]["boundary"], "scope_1_2");
    let explain = || -> serde_json::Value {
        serde_json::from_str(&ok(&vcci(dir.path(), &["explain", "--org", "o", "a"]))).unwrap()
    };
    let e = explain();
    assert_eq!(e["emission"]["method"], "supplier_specific");
    assert!((e["emission"]["co2e_kg"].as_f64().unwrap() - 300_000.0).abs() < 1e-6);
    let out = ok(&vcci(
        dir.path(),
        &["suppliers", "remove-intensity", "--org", "o", "S", "2022"],
    ));
    assert!(
        out.contains("Removed the 2022 intensity of 'S'; 1 lines recalculated."),
        "{out}"
    );
    let e = explain();
    assert_eq!(e["emission"]["method"], "hybrid");
    assert_eq!(
        e["emission"]["supplier_data"]["hybrid"]["eeio_factor"]["key"],
        "484121"
    );
    let o = vcci(
        dir.path(),
        &["suppliers", "remove-intensity", "--org", "o", "S", "2022"],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("supplier 'S' has no 2022 intensity"));
}

#[test]
fn periods_are_closed_listed_shown_and_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("l.csv");
    std::fs::write(
        &csv,
        "transaction_id,date,amount,currency,naics_code\na,2023-03-01,1000,USD,484121\nb,2024-03-01,1000,USD,484121\n",
    )
    .unwrap();
    let csv = csv.to_str().unwrap();
    ok(&vcci(dir.path(), &["import", csv, "--org", "o", "-q"]));
    let out = ok(&vcci(
        dir.path(),
        &["period", "close", "--org", "o", "2023"],
    ));
    assert!(
        out.starts_with("Closed 2023 of 'o' as inventory version 1: 1 lines,"),
        "{out}"
    );
    // The EPA pin would change 2023: refused, naming the period; nothing is changed.
    let o = vcci(
        dir.path(),
        &["calculate", "--org", "o", "--epa-version", "1.2"],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("the 2023 reporting period is closed"), "{err}");
    assert!(
        err.contains("see the change with --preview, apply it with --restate REASON"),
        "{err}"
    );
    // The preview: 2023's one line under v1.2 against its disclosed v1.3.0 figure; nothing
    // changes.
    let preview = ok(&vcci(
        dir.path(),
        &[
            "calculate",
            "--org",
            "o",
            "--epa-version",
            "1.2",
            "--preview",
        ],
    ));
    assert!(preview.starts_with("Restatement preview: EPA supply chain 1.2 instead of 1.3.0 (significance threshold 5 %)"), "{preview}");
    assert!(
        preview.contains("2023 (version 1): 1 lines affected"),
        "{preview}"
    );
    let list = ok(&vcci(dir.path(), &["period", "list", "--org", "o"]));
    assert!(
        list.lines().nth(2).unwrap().starts_with("2023  closed"),
        "{list}"
    );
    let v: serde_json::Value = serde_json::from_str(&ok(&vcci(
        dir.path(),
        &["period", "show", "--org", "o", "2023", "--version", "1"],
    )))
    .unwrap();
    assert_eq!(v["transaction_count"], 1);
    assert!(
        (v["inventory"]["total_co2e_kg"].as_f64().unwrap() - 1000.0 * 292.655 / 304.702 * 0.595)
            .abs()
            < 1e-6
    );
    let out = ok(&vcci(
        dir.path(),
        &[
            "calculate",
            "--org",
            "o",
            "--epa-version",
            "1.2",
            "--restate",
            "EPA v1.2 for comparability",
        ],
    ));
    assert!(out.contains("2023 is now version 2"), "{out}");
    let v2: serde_json::Value = serde_json::from_str(&ok(&vcci(
        dir.path(),
        &["period", "show", "--org", "o", "2023", "--version", "2"],
    )))
    .unwrap();
    assert!(
        v2["reason"]
            .as_str()
            .unwrap()
            .starts_with("restatement: EPA v1.2 for comparability"),
        "{v2}"
    );
    assert_eq!(v2["inventory"]["settings"]["epa_version"], "1.2", "{v2}");
    let o = vcci(
        dir.path(),
        &["period", "reopen", "--org", "o", "2023", "--reason", ""],
    );
    assert!(!o.status.success());
    ok(&vcci(
        dir.path(),
        &[
            "period",
            "reopen",
            "--org",
            "o",
            "2023",
            "--reason",
            "pin EPA v1.2",
        ],
    ));
    ok(&vcci(
        dir.path(),
        &["calculate", "--org", "o", "--epa-version", "1.2"],
    ));
    let p: serde_json::Value = serde_json::from_str(&ok(&vcci(
        dir.path(),
        &["period", "show", "--org", "o", "2023"],
    )))
    .unwrap();
    assert_eq!(
        (p["status"].as_str(), p["reopen_reason"].as_str()),
        (Some("open"), Some("pin EPA v1.2"))
    );
    assert!(
        p["reopened_by"]
            .as_str()
            .unwrap()
            .starts_with("command line ("),
        "{p}"
    );
}

#[test]
fn the_audit_log_is_listed_and_its_chain_verified_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("l.csv");
    std::fs::write(
        &csv,
        "transaction_id,date,amount,currency,naics_code\na,2023-03-01,1000,USD,484121\nb,2024-03-01,1000,USD,484121\n",
    )
    .unwrap();
    ok(&vcci(
        dir.path(),
        &["import", csv.to_str().unwrap(), "--org", "o", "-q"],
    ));
    ok(&vcci(
        dir.path(),
        &["period", "close", "--org", "o", "2023"],
    ));
    ok(&vcci(
        dir.path(),
        &[
            "period",
            "reopen",
            "--org",
            "o",
            "2023",
            "--reason",
            "late invoice",
        ],
    ));
    let list = ok(&vcci(dir.path(), &["audit", "--org", "o"]));
    let rows: Vec<&str> = list.lines().skip(2).collect();
    assert_eq!(rows.len(), 3, "{list}");
    assert!(
        rows[0].contains("period.reopened") && rows[0].contains("late invoice"),
        "{list}"
    );
    assert!(
        rows[2].contains("import") && rows[2].contains("command line ("),
        "{list}"
    );
    let json: serde_json::Value = serde_json::from_str(&ok(&vcci(
        dir.path(),
        &["audit", "--org", "o", "--line", "a", "--format", "json"],
    )))
    .unwrap();
    assert_eq!(json.as_array().unwrap().len(), 1, "{json}");
    assert_eq!(
        (json[0]["action"].as_str(), json[0]["lines"].as_i64()),
        (Some("import"), Some(2))
    );
    let out = ok(&vcci(dir.path(), &["audit", "verify", "--org", "o"]));
    assert!(out.contains("3 entries covering 2 line changes"), "{out}");
    assert!(out.contains("The chain is intact."), "{out}");
    // An entry edited behind vcci's back: verify fails, naming it.
    {
        let store = vcci_store::Store::open_dir(dir.path()).unwrap();
        let db = store.connect().unwrap();
        vcci_store::testing::execute_sql(
            &db,
            "UPDATE audit_log SET detail = '{\"reason\":\"typo\"}' WHERE seq = 3",
        )
        .unwrap();
    }
    let o = vcci(dir.path(), &["audit", "verify", "--org", "o"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("the chain is broken at entry 3: its hash does not match its content"),
        "{err}"
    );
}

#[test]
fn years_are_compared_and_targets_listed_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("l.csv");
    std::fs::write(
        &csv,
        "transaction_id,date,amount,currency,naics_code\na,2022-03-01,1000,USD,484121\nb,2023-03-01,1000,USD,484121\n",
    )
    .unwrap();
    ok(&vcci(
        dir.path(),
        &["import", csv.to_str().unwrap(), "--org", "o", "-q"],
    ));
    ok(&vcci(
        dir.path(),
        &["period", "base-year", "--org", "o", "2022"],
    ));
    ok(&vcci(
        dir.path(),
        &[
            "denominator",
            "--org",
            "o",
            "--name",
            "revenue",
            "--year",
            "2023",
            "--value",
            "2",
            "--unit",
            "M USD",
        ],
    ));
    let out = ok(&vcci(
        dir.path(),
        &[
            "compare",
            "--org",
            "o",
            "--year",
            "2023",
            "--denominator",
            "revenue",
        ],
    ));
    // 2023: 1,000 × 292.655/304.702 × 0.595 = 571.475 kg; 2022: 595 kg; −3.95 %.
    let row = out
        .lines()
        .find(|l| l.trim_start().starts_with("4 Upstream"))
        .unwrap();
    assert!(
        row.contains("0.571") && row.contains("0.595") && row.contains("-4.0%"),
        "{out}"
    );
    assert!(
        out.contains("kg CO2e per M USD revenue: 2023 285.7"),
        "{out}"
    );
    ok(&vcci(
        dir.path(),
        &[
            "target",
            "add",
            "--org",
            "o",
            "--name",
            "t",
            "--base-year",
            "2022",
            "--target-year",
            "2030",
            "--reduction-pct",
            "42",
        ],
    ));
    let t: serde_json::Value = serde_json::from_str(&ok(&vcci(
        dir.path(),
        &["target", "list", "--org", "o", "--through", "2023"],
    )))
    .unwrap();
    assert_eq!(t[0]["years"].as_array().unwrap().len(), 2, "{t}");
    // The path in 2023: 595 − (595 − 345.1) / 8 = 563.7625 kg; 571.475 kg is above it.
    assert_eq!(t[0]["years"][1]["path_co2e_kg"], 563.7625, "{t}");
    assert_eq!(t[0]["years"][1]["on_track"], false, "{t}");
}

#[test]
fn corrected_data_of_a_closed_year_is_restated_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("l.csv");
    std::fs::write(
        &csv,
        "transaction_id,date,amount,currency,naics_code\na,2023-03-01,1000,USD,484121\n",
    )
    .unwrap();
    ok(&vcci(
        dir.path(),
        &["import", csv.to_str().unwrap(), "--org", "o", "-q"],
    ));
    ok(&vcci(
        dir.path(),
        &["period", "close", "--org", "o", "2023"],
    ));
    let fix = dir.path().join("fix.json");
    std::fs::write(
        &fix,
        r#"{"transactions": [{"transaction_id": "a", "date": "2023-03-01", "amount": 3000, "currency": "USD", "naics_code": "484121"}]}"#,
    )
    .unwrap();
    let fix = fix.to_str().unwrap();
    // By hand: 1,000 and 3,000 USD of 2023 × 292.655/304.702 × 0.595 kg/USD.
    let kg = |usd: f64| usd * 292.655 / 304.702 * 0.595;
    let p: serde_json::Value = serde_json::from_str(&ok(&vcci(
        dir.path(),
        &[
            "calculate",
            "--org",
            "o",
            "--corrections",
            fix,
            "--preview",
            "--format",
            "json",
        ],
    )))
    .unwrap();
    let t = &p["years"][0]["total"];
    assert!(
        (t["before_co2e_kg"].as_f64().unwrap() - kg(1000.0)).abs() < 1e-6,
        "{p}"
    );
    assert!(
        (t["after_co2e_kg"].as_f64().unwrap() - kg(3000.0)).abs() < 1e-6,
        "{p}"
    );
    let out = ok(&vcci(
        dir.path(),
        &[
            "calculate",
            "--org",
            "o",
            "--corrections",
            fix,
            "--restate",
            "invoice corrected",
        ],
    ));
    assert!(
        out.contains("1 corrected line(s)") && out.contains("2023 is now version 2"),
        "{out}"
    );
    let audit: serde_json::Value = serde_json::from_str(&ok(&vcci(
        dir.path(),
        &[
            "audit",
            "--org",
            "o",
            "--action",
            "restatement.applied",
            "--format",
            "json",
        ],
    )))
    .unwrap();
    assert_eq!(audit[0]["detail"]["reason"], "invoice corrected", "{audit}");
    assert_eq!(audit[0]["lines"], 1, "{audit}");
    // A bad correction is named by its path.
    std::fs::write(
        dir.path().join("bad.json"),
        r#"{"transactions": [{"transaction_id": "a", "date": "2023-02-30", "amount": 1}]}"#,
    )
    .unwrap();
    let bad = dir.path().join("bad.json");
    let o = vcci(
        dir.path(),
        &[
            "calculate",
            "--org",
            "o",
            "--corrections",
            bad.to_str().unwrap(),
            "--preview",
        ],
    );
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("transactions[0].date"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn classification_rules_training_and_explain_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let csv = d.join("lines.csv");
    std::fs::write(
        &csv,
        "transaction_id,date,supplier_name,description,amount,currency,naics_code,gl_account,gl_account_name\n\
         a1,2022-04-01,Pixelforge,Backend dev sprint 14,5000,USD,541511,6320,Contractors\n\
         a2,2022-04-02,Northlight,Taxi to client,80,USD,,6230,Travel\n\
         a3,2022-04-03,Mystery Ltd,INV-7781,300,USD,,,\n",
    )
    .unwrap();
    ok(&vcci(
        d,
        &["import", csv.to_str().unwrap(), "--org", "acme"],
    ));
    // The review queue; a correction; the queue is empty.
    let out = ok(&vcci(d, &["classify", "review", "list", "--org", "acme"]));
    assert!(
        out.contains("1 lines to review, 300 USD") && out.contains("a3"),
        "{out}"
    );
    let o = vcci(d, &["classify", "review", "correct", "--org", "acme", "a3"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--naics"));
    let out = ok(&vcci(
        d,
        &[
            "classify", "review", "correct", "--org", "acme", "a3", "--naics", "541611",
        ],
    ));
    assert!(
        out.contains("a3 corrected: NAICS 541611") && out.contains("0 lines left to review"),
        "{out}"
    );
    let out = ok(&vcci(d, &["explain", "--org", "acme", "a3"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["emission"]["classification"]["source"], "review", "{out}");
    assert_eq!(
        v["emission"]["classification"]["evidence"]["verdict"],
        "corrected"
    );
    // The line without a code is explained with its classification.
    let out = ok(&vcci(d, &["explain", "--org", "acme", "a2"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let c = &v["emission"]["classification"];
    assert_eq!(c["naics"], "485310", "{out}");
    assert_eq!(c["source"], "builtin_model");
    assert_eq!(c["evidence"]["kind"], "terms");
    assert_eq!(v["emission"]["category_source"], "classification");
    // A rule, listed; bad arguments are one line naming the flag.
    let out = ok(&vcci(
        d,
        &[
            "classify",
            "rules",
            "add",
            "--org",
            "acme",
            "--kind",
            "gl_account",
            "--pattern",
            "63*",
            "--naics",
            "541511",
        ],
    ));
    assert!(
        out.contains("Rule 1 of 'acme': gl_account '63*' → NAICS 541511"),
        "{out}"
    );
    // Applied to the stored lines the machine classified (a2; a3 was reviewed): a2's
    // account (6230) is not 63*, so nothing changes.
    let out = ok(&vcci(d, &["classify", "apply", "--org", "acme"]));
    assert!(
        out.contains("Classified again 1 lines of 'acme': 0 changed"),
        "{out}"
    );
    let out = ok(&vcci(
        d,
        &[
            "classify", "rules", "list", "--org", "acme", "--format", "json",
        ],
    ));
    let rules: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rules[0]["pattern"], "63*");
    let o = vcci(
        d,
        &[
            "classify",
            "rules",
            "add",
            "--org",
            "acme",
            "--kind",
            "colour",
            "--pattern",
            "x",
            "--naics",
            "541511",
        ],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--kind"));
    // Training learns from the line with its own code.
    let out = ok(&vcci(d, &["classify", "train", "--org", "acme"]));
    assert!(
        out.contains(
            "from 1 of 3 lines (those carrying their own NAICS code) and 1 reviewed lines"
        ),
        "{out}"
    );
    let out = ok(&vcci(
        d,
        &[
            "classify",
            "status",
            "--org",
            "acme",
            "--review-below",
            "0.6",
        ],
    ));
    assert!(
        out.contains("below 0.60 confidence") && out.contains("1 rules"),
        "{out}"
    );
    let out = ok(&vcci(
        d,
        &["classify", "rules", "delete", "--org", "acme", "1"],
    ));
    assert!(out.contains("Deleted rule 1"), "{out}");
    let o = vcci(d, &["classify", "rules", "delete", "--org", "acme", "1"]);
    assert!(!o.status.success());
}

#[test]
fn supplier_pairs_merges_and_aliases_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sup = d.join("suppliers.csv");
    std::fs::write(&sup, "supplier_id,name\nSUP-1,Acme Inc\n").unwrap();
    ok(&vcci(
        d,
        &[
            "import",
            sup.to_str().unwrap(),
            "--org",
            "acme",
            "--kind",
            "suppliers",
        ],
    ));
    let csv = d.join("lines.csv");
    std::fs::write(
        &csv,
        "transaction_id,date,supplier_name,amount,currency,naics_code\n\
         l1,2022-04-01,\"ACME, Inc.\",100,USD,334111\n\
         l2,2022-04-02,Acma Ltd,100,USD,334111\n",
    )
    .unwrap();
    ok(&vcci(
        d,
        &["import", csv.to_str().unwrap(), "--org", "acme"],
    ));
    let out = ok(&vcci(d, &["suppliers", "aliases", "--org", "acme"]));
    assert!(out.contains("SUP-1") && out.contains("ACME, Inc."), "{out}");
    let out = ok(&vcci(
        d,
        &["suppliers", "matches", "--org", "acme", "--format", "json"],
    ));
    let m: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (&m[0]["supplier_id"], &m[0]["candidate_id"]),
        (&serde_json::json!("Acma Ltd"), &serde_json::json!("SUP-1")),
        "{out}"
    );
    let o = vcci(
        d,
        &["suppliers", "matches", "--org", "acme", "--status", "maybe"],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--status"));
    let out = ok(&vcci(
        d,
        &[
            "suppliers",
            "merge",
            "--org",
            "acme",
            "--from",
            "Acma Ltd",
            "--into",
            "SUP-1",
        ],
    ));
    assert!(
        out.contains("Merged 'Acma Ltd' into 'SUP-1' (merge 1): 1 lines moved"),
        "{out}"
    );
    let l2: serde_json::Value =
        serde_json::from_str(&ok(&vcci(d, &["explain", "--org", "acme", "l2"]))).unwrap();
    assert_eq!(l2["supplier_id"], "SUP-1");
    let out = ok(&vcci(d, &["suppliers", "merges", "--org", "acme"]));
    assert!(out.contains("Acma Ltd") && out.contains("SUP-1"), "{out}");
    let out = ok(&vcci(d, &["suppliers", "unmerge", "--org", "acme", "1"]));
    assert!(
        out.contains("'Acma Ltd' is a supplier again, with 1 lines"),
        "{out}"
    );
    let o = vcci(d, &["suppliers", "unmerge", "--org", "acme", "1"]);
    assert!(!o.status.success());
}
