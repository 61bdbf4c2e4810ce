//! Subcommand implementations: each opens the store and calls into the libraries.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use vcci_core::factors::FactorQuery;
use vcci_core::{Date, EpaVersion, catalog};
use vcci_store::import::{
    ImportOptions, ImportReport, ImportTarget, RejectsWriter, import_suppliers, import_transactions,
};
use vcci_store::model::keys::Role;
use vcci_store::model::reports::DateRange;
use vcci_store::{Actor, Store, demo};

use crate::cli::*;
use crate::output::{Table, pct, tonnes};
use crate::progress::{Progress, group};

pub fn run(cli: Cli) -> Result<()> {
    let store_args = cli.store;
    match cli.command {
        Command::Serve(a) => serve_cmd(&store_args, a),
        Command::Demo(a) => demo_cmd(&store_args, a),
        Command::Import(a) => import_cmd(&store_args, a).map(|_| ()),
        Command::Report(a) => report_cmd(&store_args, a),
        Command::Explain(a) => explain_cmd(&store_args, a),
        Command::Calculate(a) => calculate_cmd(&store_args, a),
        Command::Verify(a) => verify_cmd(&store_args, a),
        Command::Factors(FactorsCommand::Search(a)) => factors_search(a),
        Command::Factors(FactorsCommand::Show(a)) => factors_show(a),
        Command::Keys(KeysCommand::Create(a)) => keys_create(&store_args, a),
        Command::Keys(KeysCommand::Revoke(a)) => keys_revoke(&store_args, a),
        Command::Suppliers(SuppliersCommand::Intensities(a)) => intensities_cmd(&store_args, a),
        Command::Period(c) => period_cmd(&store_args, c),
        Command::Compare(a) => compare_cmd(&store_args, a),
        Command::Audit(a) => audit_cmd(&store_args, a),
        Command::Pact(c) => crate::pact::pact_cmd(open_store(&store_args)?, c),
        Command::Target(c) => target_cmd(&store_args, c),
        Command::Denominator(a) => denominator_cmd(&store_args, a),
        Command::Suppliers(SuppliersCommand::RemoveIntensity(a)) => {
            remove_intensity_cmd(&store_args, a)
        }
        Command::Suppliers(c) => crate::resolution::resolution_cmd(open_store(&store_args)?, c),
        Command::Loadtest(a) => crate::loadtest::loadtest_cmd(a),
        Command::Classify(c) => crate::classify::classify_cmd(open_store(&store_args)?, c),
    }
}

fn open_store(a: &StoreArgs) -> Result<Store> {
    let store = open_store_migrated(a)?;
    store
        .connect()?
        .finish_migrations()
        .context("finishing the database's migrations")?;
    Ok(store)
}

/// The store, its schema migrated (`open_store` also finishes what the migrations leave).
fn open_store_migrated(a: &StoreArgs) -> Result<Store> {
    match a.database_url.as_deref().filter(|u| !u.is_empty()) {
        None => Store::open_dir(&a.data_dir)
            .with_context(|| format!("opening the database in {}", a.data_dir.display())),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let secs = |v: f64, flag: &str| {
                if v >= 0.0 && v.is_finite() {
                    Ok(std::time::Duration::from_secs_f64(v))
                } else {
                    Err(anyhow!("{flag} must be a number of seconds >= 0"))
                }
            };
            let settings = vcci_store::PgSettings {
                connect_timeout: secs(a.db_connect_timeout, "--db-connect-timeout")?,
                statement_timeout: secs(a.db_statement_timeout, "--db-statement-timeout")?,
                schema: None,
            };
            Store::open_postgres(url, settings).context("opening the PostgreSQL database")
        }
        Some(url) => {
            let path = url
                .strip_prefix("sqlite://")
                .or_else(|| url.strip_prefix("sqlite:"))
                .ok_or_else(|| anyhow!("unsupported database URL scheme in DATABASE_URL/--database-url: use sqlite:PATH or postgres://USER@HOST:PORT/DB"))?;
            if let Some(dir) = Path::new(path)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            Store::open_file(Path::new(path))
                .with_context(|| format!("opening the database {path}"))
        }
    }
}

fn serve_cmd(sa: &StoreArgs, a: ServeArgs) -> Result<()> {
    let store = open_store(sa)?;
    let demo_key = if a.demo {
        let db = store.connect()?;
        let has_lines = match db.org_by_name("demo")? {
            Some(org) => db.line_count(org.id)? > 0,
            None => false,
        };
        drop(db);
        if !has_lines {
            demo_cmd(
                sa,
                DemoArgs {
                    org: "demo".into(),
                    lines: 200_000,
                    suppliers: 3000,
                    first_year: 2023,
                    seed: 42,
                    out_dir: None,
                    generate_only: false,
                },
            )?;
        }
        let db = store.connect()?;
        let org = db.require_org("demo")?;
        Some(db.create_key(org.id, Role::Admin, &Actor::system("serve --demo"))?)
    } else {
        None
    };
    let tls = match (&a.tls_cert, &a.tls_key) {
        (Some(c), Some(k)) => Some(vcci_server::tls_config(c, k).map_err(|e| anyhow!(e))?),
        _ => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&a.listen).await.with_context(|| format!("listening on {}", a.listen))?;
        let addr = listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        eprintln!("vcci listening on {scheme}://{addr} (data: {})", store.describe());
        if let Some(key) = &demo_key {
            println!("Demo API key (admin, organization 'demo'):\n{key}\n");
            println!("Try:");
            println!("  curl -s http://{addr}/health");
            println!("  curl -s -H 'Authorization: Bearer {key}' http://{addr}/api/v1/emissions/summary");
            println!("  curl -s -H 'Authorization: Bearer {key}' 'http://{addr}/api/v1/transactions?limit=2'");
            println!("  curl -s -H 'Authorization: Bearer {key}' -H 'Content-Type: text/csv' --data-binary @lines.csv http://{addr}/api/v1/imports");
            println!("API reference: http://{addr}/docs");
        }
        if !(a.request_timeout > 0.0 && a.request_timeout.is_finite()) {
            anyhow::bail!("--request-timeout must be a positive number of seconds");
        }
        let config = vcci_server::AppConfig {
            pool_size: a.pool_size.max(1),
            rate_limit: vcci_server::RateLimit { rate: a.rate_limit, burst: (a.rate_limit * 2.0).max(1.0) },
            cache: vcci_server::cache::CacheConfig {
                max_entries: a.cache_entries,
                max_bytes: a.cache_mb << 20,
                ttl: std::time::Duration::from_secs(a.cache_ttl),
            },
            request_timeout: std::time::Duration::from_secs_f64(a.request_timeout),
            max_import_bytes: a.max_import_mb << 20,
            slow_query: std::time::Duration::from_millis(a.slow_query_ms),
            warm_orgs: a.warm_orgs,
            warm_timeout: std::time::Duration::from_secs(a.warm_secs.clamp(1, 600)),
            redis: a.redis_url.as_deref().filter(|u| !u.is_empty()).map(|url| vcci_server::shared::RedisConfig {
                url: url.to_owned(),
                prefix: a.redis_prefix.clone(),
                timeout: std::time::Duration::from_millis(a.redis_timeout_ms.max(1)),
            }),
            poll_interval: std::time::Duration::from_millis(a.poll_ms.max(10)),
            job_stale: std::time::Duration::from_secs_f64(if a.job_stale.is_finite() && a.job_stale > 0.0 { a.job_stale } else { 30.0 }),
            bulk_load_bytes: a.bulk_load_mb.saturating_mul(1 << 20),
            pact_behind_tls_proxy: a.pact_behind_tls_proxy,
            public_url: a.public_url.clone().filter(|u| !u.is_empty()),
            pact_http: crate::pact::http_config(&a.pact),
            secret_key: crate::pact::secret_key(&a.pact)?.map(Arc::new),
            profiling: a.profiling,
            events_heartbeat: std::time::Duration::from_secs_f64(if a.events_heartbeat.is_finite() { a.events_heartbeat.clamp(0.1, 3600.0) } else { 15.0 }),
            events_max_streams: a.events_max_streams,
        };
        let app = vcci_server::App::new(store, config).context("preparing the API")?;
        let background = app.start_background();
        // On the signal, live-update streams end, so that the server's wait for open
        // responses ends too.
        let shutdown = {
            let app = Arc::clone(&app);
            async move {
                shutdown_signal().await;
                app.begin_shutdown();
            }
        };
        let served = match &tls {
            Some(tls) => vcci_server::serve_tls(listener, vcci_server::build_app(app), Arc::clone(tls), shutdown).await.context("serving HTTPS"),
            None => vcci_server::serve(listener, vcci_server::build_app(app), shutdown).await.context("serving HTTP"),
        };
        // Requests are finished; a running import stops after its current batch and is
        // queued again for the next start.
        background.stop().await;
        served
    })
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    eprintln!("vcci: shutting down, finishing requests in flight");
}

fn demo_cmd(sa: &StoreArgs, a: DemoArgs) -> Result<()> {
    if !a.generate_only {
        open_store(sa)?; // fail early on a bad data directory, before generating
    }
    let dir = a
        .out_dir
        .clone()
        .unwrap_or_else(|| sa.data_dir.join("demo"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let spec = demo::DemoSpec {
        suppliers: a.suppliers,
        lines: a.lines,
        first_year: a.first_year,
        years: 3,
        seed: a.seed,
    };
    let (sp, tp) = (dir.join("suppliers.csv"), dir.join("transactions.csv"));
    {
        let mut s = BufWriter::new(
            File::create(&sp).with_context(|| format!("creating {}", sp.display()))?,
        );
        let mut t = BufWriter::new(
            File::create(&tp).with_context(|| format!("creating {}", tp.display()))?,
        );
        demo::generate(&spec, &mut s, &mut t).context("writing the demo data")?;
        s.flush()?;
        t.flush()?;
    }
    eprintln!(
        "Generated {} suppliers and {} lines in {}",
        group(a.suppliers as u64),
        group(a.lines as u64),
        dir.display()
    );
    if a.generate_only {
        return Ok(());
    }
    let base = |file: PathBuf, kind| ImportArgs {
        file,
        org: a.org.clone(),
        default_currency: None,
        kind,
        rejects: None,
        batch_size: 50_000,
        max_record_bytes: 1 << 20,
        bulk_load_mb: vcci_store::import::BULK_LOAD_BYTES >> 20,
        quiet: false,
    };
    import_cmd(sa, base(sp, ImportKind::Suppliers))?;
    import_cmd(sa, base(tp, ImportKind::Transactions))?;
    println!();
    report_cmd(
        sa,
        ReportArgs {
            org: a.org.clone(),
            by: ReportBy::Category,
            from: None,
            to: None,
            year: None,
            format: Format::Table,
            limit: 20,
        },
    )?;
    println!();
    println!(
        "Next: vcci report --org {} --by month | supplier | method | quality   (--format csv|json)",
        a.org
    );
    println!(
        "      vcci explain --org {} TX-{}-00000001",
        a.org, a.first_year
    );
    println!("      vcci factors search hotel UK");
    Ok(())
}

fn import_cmd(sa: &StoreArgs, a: ImportArgs) -> Result<ImportReport> {
    let store = open_store(sa)?;
    let db = store.connect()?;
    let org = db.ensure_org_with(&a.org, currency_arg(a.default_currency.as_deref())?)?;
    drop(db);
    let stdin = a.file.as_os_str() == "-";
    let (input, total, source): (Box<dyn Read>, Option<u64>, String) = if stdin {
        (Box::new(std::io::stdin().lock()), None, "stdin".into())
    } else {
        let f = File::open(&a.file).with_context(|| format!("opening {}", a.file.display()))?;
        let len = f.metadata().ok().map(|m| m.len());
        (Box::new(f), len, a.file.display().to_string())
    };
    let rejects_path = a.rejects.clone().unwrap_or_else(|| {
        if stdin {
            PathBuf::from("stdin.rejects.csv")
        } else {
            PathBuf::from(format!("{}.rejects.csv", a.file.display()))
        }
    });
    let rf = File::create(&rejects_path)
        .with_context(|| format!("creating rejects file {}", rejects_path.display()))?;
    let mut rejects = RejectsWriter::new(BufWriter::new(rf))?;
    let opts = ImportOptions {
        max_record_bytes: a.max_record_bytes,
        batch_size: a.batch_size.clamp(1, 10_000),
        commit_lines: a.batch_size.max(1),
        job: None,
        first_load_in_bulk: total.is_some_and(|n| n >= a.bulk_load_mb.saturating_mul(1 << 20)),
        ..ImportOptions::default()
    };
    let mut progress = Progress::new(a.quiet, total);
    let target = ImportTarget {
        store: &store,
        catalog: catalog(),
        org: &org,
        source: &source,
        options: &opts,
        actor: &Actor::cli(),
    };
    let report = match a.kind {
        ImportKind::Transactions => {
            import_transactions(&target, input, &mut rejects, &mut |p| progress.update(p))
        }
        ImportKind::Suppliers => import_suppliers(&target, input, &mut rejects),
    };
    progress.finish();
    rejects
        .into_inner()
        .flush()
        .context("writing the rejects file")?;
    let report = report.with_context(|| format!("importing {source}"))?;
    let what = if a.kind == ImportKind::Suppliers {
        "suppliers"
    } else {
        "lines"
    };
    let mut msg = format!(
        "Imported {source} into '{}': {} {what} read, {} accepted",
        org.name,
        group(report.lines_read),
        group(report.inserted + report.updated)
    );
    if a.kind == ImportKind::Transactions {
        msg += &format!(
            " ({} new, {} updated), {} unchanged",
            group(report.inserted),
            group(report.updated),
            group(report.unchanged)
        );
    }
    msg += &format!(
        ", {} rejected in {:.2} s",
        group(report.rejected),
        report.seconds
    );
    if report.seconds > 0.0 {
        msg += &format!(
            " ({} lines/s)",
            group((report.lines_read as f64 / report.seconds) as u64)
        );
    }
    eprintln!("{msg}");
    if !report.ignored_columns.is_empty() {
        eprintln!("Ignored columns: {}", report.ignored_columns.join(", "));
    }
    if report.rejected > 0 {
        eprintln!(
            "Rejected lines (line, column, reason, original) are in {}",
            rejects_path.display()
        );
    } else {
        let _ = std::fs::remove_file(&rejects_path);
    }
    Ok(report)
}

fn parse_range(a: &ReportArgs) -> Result<DateRange> {
    if let Some(y) = a.year {
        return Ok(DateRange {
            from: Date::new(y, 1, 1),
            to: Date::new(y, 12, 31),
        });
    }
    let p = |s: &Option<String>, flag: &str| -> Result<Option<Date>> {
        s.as_deref()
            .map(|v| Date::parse(v).map_err(|m| anyhow!("--{flag}: {m}")))
            .transpose()
    };
    Ok(DateRange {
        from: p(&a.from, "from")?,
        to: p(&a.to, "to")?,
    })
}

fn report_cmd(sa: &StoreArgs, a: ReportArgs) -> Result<()> {
    let store = open_store(sa)?;
    let db = store.connect()?;
    let org = db.require_org(&a.org)?;
    let range = parse_range(&a)?;
    let period = match (range.from, range.to) {
        (None, None) => "all dates".to_owned(),
        (f, t) => format!(
            "{} to {}",
            f.map_or("start".into(), |d| d.to_string()),
            t.map_or("end".into(), |d| d.to_string())
        ),
    };
    let mut out = String::new();
    match a.by {
        ReportBy::Category | ReportBy::Method | ReportBy::Quality => {
            let s = db.summary(org.id, range, None)?;
            if a.format == Format::Json {
                out = serde_json::to_string_pretty(&s)? + "\n";
            } else {
                let mut t;
                match a.by {
                    ReportBy::Category => {
                        t = Table::new(&[
                            ("category", true),
                            ("name", false),
                            ("tCO2e", true),
                            ("share", true),
                            ("lines", true),
                        ]);
                        for c in &s.by_category {
                            t.row(vec![
                                c.category.to_string(),
                                c.name.into(),
                                tonnes(c.co2e_kg),
                                pct(c.share),
                                group(c.transaction_count as u64),
                            ]);
                        }
                    }
                    ReportBy::Method => {
                        t = Table::new(&[
                            ("method", false),
                            ("tCO2e", true),
                            ("share", true),
                            ("lines", true),
                        ]);
                        for m in &s.by_method {
                            t.row(vec![
                                m.method.as_str().into(),
                                tonnes(m.co2e_kg),
                                pct(m.share),
                                group(m.transaction_count as u64),
                            ]);
                        }
                    }
                    _ => {
                        t = Table::new(&[("data_quality", true), ("tCO2e", true), ("lines", true)]);
                        for q in &s.by_data_quality {
                            t.row(vec![
                                q.data_quality.to_string(),
                                tonnes(q.co2e_kg),
                                group(q.transaction_count as u64),
                            ]);
                        }
                    }
                }
                if a.format == Format::Csv {
                    out = t.to_csv();
                } else {
                    out += &format!("Scope 3 emissions of '{}', {period}\n\n", org.name);
                    out += &t.to_text();
                    out += &format!(
                        "\nTotal: {} tCO2e from {} lines, spend {} USD; weighted data quality {}\n",
                        tonnes(s.total_co2e_kg),
                        group(s.transaction_count as u64),
                        money(s.spend_usd),
                        s.weighted_data_quality
                            .map_or("n/a".into(), |q| format!("{q:.2} (1 best, 5 worst)"))
                    );
                    if a.by == ReportBy::Category {
                        let none: Vec<String> = s
                            .categories_without_data
                            .iter()
                            .map(|c| c.to_string())
                            .collect();
                        out += &format!(
                            "Not reported (no data): categories {}\n",
                            if none.is_empty() {
                                "none".into()
                            } else {
                                none.join(", ")
                            }
                        );
                    }
                    let apart = s.scope_1_2_recorded_apart;
                    if apart.scope_1_kg != 0.0 || apart.scope_2_kg != 0.0 {
                        out += &format!(
                            "Recorded apart, not in the Scope 3 total: Scope 1 {} tCO2e, Scope 2 {} tCO2e \
                             (energy and fuel inputs; their upstream emissions are in category 3)\n",
                            tonnes(apart.scope_1_kg),
                            tonnes(apart.scope_2_kg)
                        );
                    }
                    let g = s.by_gas;
                    out += &format!(
                        "By gas (tCO2e): CO2 {}, CH4 {}, N2O {}, other gases {}, radiative forcing {}, not split by the factor set {}\n",
                        tonnes(g.co2),
                        tonnes(g.ch4),
                        tonnes(g.n2o),
                        tonnes(g.other),
                        tonnes(g.radiative_forcing),
                        tonnes(g.unspecified)
                    );
                    if s.biogenic_co2_kg != 0.0 {
                        out += &format!(
                            "Biogenic CO2, outside the scopes: {} t\n",
                            tonnes(s.biogenic_co2_kg)
                        );
                    }
                }
            }
        }
        ReportBy::Month => {
            let months = db.by_month(org.id, range)?;
            if a.format == Format::Json {
                out = serde_json::to_string_pretty(&months)? + "\n";
            } else {
                let mut cats: Vec<String> = months
                    .iter()
                    .flat_map(|m| m.by_category.keys().cloned())
                    .collect();
                cats.sort_by_key(|c| c.parse::<u8>().unwrap_or(0));
                cats.dedup();
                let mut headers: Vec<(String, bool)> = vec![
                    ("month".into(), false),
                    ("tCO2e".into(), true),
                    ("lines".into(), true),
                ];
                headers.extend(cats.iter().map(|c| (format!("cat {c}"), true)));
                let h: Vec<(&str, bool)> = headers.iter().map(|(s, n)| (s.as_str(), *n)).collect();
                let mut t = Table::new(&h);
                for m in &months {
                    let mut row = vec![
                        m.month.clone(),
                        tonnes(m.co2e_kg),
                        group(m.transaction_count as u64),
                    ];
                    row.extend(cats.iter().map(|c| {
                        m.by_category
                            .get(c)
                            .map_or_else(|| "-".into(), |v| tonnes(*v))
                    }));
                    t.row(row);
                }
                out = if a.format == Format::Csv {
                    t.to_csv()
                } else {
                    format!(
                        "Emissions by month of '{}' (tCO2e), {period}\n\n{}",
                        org.name,
                        t.to_text()
                    )
                };
            }
        }
        ReportBy::Supplier => {
            let rows = db.by_supplier(org.id, range, a.limit)?;
            if a.format == Format::Json {
                out = serde_json::to_string_pretty(&rows)? + "\n";
            } else {
                let mut t = Table::new(&[
                    ("rank", true),
                    ("supplier_id", false),
                    ("name", false),
                    ("tCO2e", true),
                    ("spend_usd", true),
                    ("lines", true),
                ]);
                for (i, r) in rows.iter().enumerate() {
                    t.row(vec![
                        (i + 1).to_string(),
                        r.supplier_id
                            .clone()
                            .unwrap_or_else(|| "(no supplier)".into()),
                        r.name.clone().unwrap_or_default(),
                        tonnes(r.co2e_kg),
                        format!("{:.2}", r.spend_usd),
                        group(r.transaction_count as u64),
                    ]);
                }
                out = if a.format == Format::Csv {
                    t.to_csv()
                } else {
                    format!(
                        "Top suppliers of '{}' by emissions, {period}\n\n{}",
                        org.name,
                        t.to_text()
                    )
                };
            }
        }
    }
    print!("{out}");
    Ok(())
}

/// 1809063422.5 → "1,809,063,422.50" (sign kept).
fn money(v: f64) -> String {
    let cents = (v.abs() * 100.0).round() as u64;
    let sign = if v < 0.0 && cents > 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", group(cents / 100), cents % 100)
}

fn explain_cmd(sa: &StoreArgs, a: ExplainArgs) -> Result<()> {
    let store = open_store(sa)?;
    let db = store.connect()?;
    let org = db.require_org(&a.org)?;
    let line = db.get_line(org.id, &a.transaction_id)?.ok_or_else(|| {
        anyhow!(
            "no line '{}' in organization '{}'",
            a.transaction_id,
            org.name
        )
    })?;
    println!("{}", serde_json::to_string_pretty(&line)?);
    Ok(())
}

/// A `--default-currency` value, checked.
fn currency_arg(v: Option<&str>) -> Result<Option<vcci_core::Currency>> {
    v.map(|c| vcci_core::Currency::parse(c).map_err(|m| anyhow!("--default-currency: {m}")))
        .transpose()
}

fn calculate_cmd(sa: &StoreArgs, a: CalculateArgs) -> Result<()> {
    let store = open_store(sa)?;
    let mut db = store.connect()?;
    let mut org = db.require_org(&a.org)?;
    // The settings asked for, checked against the closed periods before any is set.
    let before = org.clone();
    if let Some(v) = &a.epa_version {
        org.epa_version = EpaVersion::parse(v).map_err(|m| anyhow!("--epa-version: {m}"))?;
    }
    if let Some(c) = currency_arg(a.default_currency.as_deref())? {
        org.default_currency = c;
    }
    if let Some(rf) = a.flights_rf {
        org.flights_with_rf = rf == crate::cli::RfArg::With;
    }
    let corrections = match &a.corrections {
        None => vcci_store::write::Correction::default(),
        Some(path) => {
            if !a.preview && a.restate.is_none() {
                bail!("--corrections goes with --preview or --restate REASON");
            }
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow!("reading {}: {e}", path.display()))?;
            let v: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| anyhow!("{}: not JSON: {e}", path.display()))?;
            vcci_server::corrections_from_json(v).map_err(|e| {
                let details: Vec<String> = e.details.iter().map(|d| d.to_string()).collect();
                anyhow!("{}: {} {}", path.display(), e.message, details.join("; "))
            })?
        }
    };
    if a.preview {
        let p = db.restatement_preview(catalog(), &before, &org, &corrections)?;
        print_preview(&p, a.format)?;
        return Ok(());
    }
    if let Some(reason) = &a.restate {
        let made = db.apply_restatement(
            catalog(),
            &before,
            &org,
            &corrections,
            reason,
            &Actor::cli(),
        )?;
        println!(
            "Restated '{}' ({}): {}",
            org.name,
            vcci_store::write::restatement_cause(&before, &org, &corrections),
            if made.is_empty() {
                "no closed year changed (the lines were written and recalculated)".to_owned()
            } else {
                made.iter()
                    .map(|(y, v)| format!("{y} is now version {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        );
        return Ok(());
    }
    if org != before {
        db.check_settings_change(catalog(), &before, &org)
            .map_err(|e| {
                anyhow!("{e}; see the change with --preview, apply it with --restate REASON")
            })?;
    }
    let r = db.recalculate(catalog(), &before, &org, &Actor::cli())?;
    eprintln!(
        "Recalculated '{}' with epa-supply-chain {}, default currency {}, flights {} radiative forcing: {} lines changed",
        org.name,
        org.epa_version.as_str(),
        org.default_currency,
        if org.flights_with_rf {
            "with"
        } else {
            "without"
        },
        group(r.changed)
    );
    if !r.categories.is_empty() {
        eprintln!(
            "  category                                   kg CO2e before      kg CO2e after   lines"
        );
    }
    for c in &r.categories {
        let name = vcci_core::Category::new(c.category).map_or("?", |c| c.name());
        let lines = if c.lines_before == c.lines_after {
            group(c.lines_after as u64)
        } else {
            format!("{} -> {}", c.lines_before, c.lines_after)
        };
        eprintln!(
            "  {:>2} {:<38} {:>17.3}  {:>17.3}   {lines}",
            c.category, name, c.co2e_kg_before, c.co2e_kg_after
        );
    }
    if r.scope_1_2_before != r.scope_1_2_after {
        eprintln!(
            "  Scope 1/2 recorded apart (not in Scope 3): scope 1 {:.3} -> {:.3} kg, scope 2 {:.3} -> {:.3} kg",
            r.scope_1_2_before.scope_1_kg,
            r.scope_1_2_after.scope_1_kg,
            r.scope_1_2_before.scope_2_kg,
            r.scope_1_2_after.scope_2_kg
        );
    }
    // Lines of closed periods keep their disclosed results: expected, said once.
    let (closed, failed): (Vec<_>, Vec<_>) = r
        .errors
        .iter()
        .partition(|(_, e)| e.code == "period_closed");
    if !closed.is_empty() {
        eprintln!(
            "  {} lines of closed periods kept their disclosed results (a restatement, or a reopen, changes them)",
            group(closed.len() as u64)
        );
    }
    for (id, e) in failed.iter().take(20) {
        eprintln!("  {id}: kept its previous result: {e}");
    }
    if !failed.is_empty() {
        bail!("{} lines could not be recalculated", failed.len());
    }
    Ok(())
}

fn print_preview(p: &vcci_store::write::RestatementPreview, format: Format) -> Result<()> {
    if matches!(format, Format::Json) {
        println!("{}", serde_json::to_string_pretty(p)?);
        return Ok(());
    }
    println!(
        "Restatement preview: {} (significance threshold {} %)",
        p.cause,
        p.significance_threshold * 100.0
    );
    if p.years.is_empty() {
        println!("No closed period: nothing disclosed would change.");
    }
    for y in &p.years {
        println!(
            "\n{} (version {}): {} lines affected{}{}",
            y.year,
            y.version,
            group(y.lines_affected),
            if y.lines_failing > 0 {
                format!(
                    ", {} would keep their result (not calculable)",
                    y.lines_failing
                )
            } else {
                String::new()
            },
            if y.significant {
                "; significant"
            } else {
                "; below the threshold"
            }
        );
        let mut t = Table::new(&[
            ("category", false),
            ("disclosed tCO2e", true),
            ("restated tCO2e", true),
            ("change", true),
            ("%", true),
        ]);
        let t3 = |v: Option<f64>| v.map_or(String::new(), |kg| format!("{:.3}", kg / 1000.0));
        for r in y.categories.iter().chain(std::iter::once(&y.total)) {
            t.row(vec![
                r.category
                    .map_or(r.name.to_owned(), |n| format!("{n:>2} {}", r.name)),
                t3(r.before_co2e_kg),
                t3(r.after_co2e_kg),
                format!("{:+.3}", r.change_kg / 1000.0),
                r.change_pct.map_or(String::new(), |x| format!("{x:+.2}")),
            ]);
        }
        print!(
            "{}",
            match format {
                Format::Csv => t.to_csv(),
                _ => t.to_text(),
            }
        );
    }
    Ok(())
}

fn verify_cmd(sa: &StoreArgs, a: OrgArg) -> Result<()> {
    let store = open_store(sa)?;
    let db = store.connect()?;
    let org = db.require_org(&a.org)?;
    let diffs = db.verify_read_models(org.id)?;
    if diffs.is_empty() {
        println!(
            "Read models of '{}' agree with the {} lines.",
            org.name,
            group(db.line_count(org.id)? as u64)
        );
        Ok(())
    } else {
        for d in diffs.iter().take(20) {
            eprintln!("  {d}");
        }
        bail!("{} read-model rows disagree with the lines", diffs.len())
    }
}

fn factors_search(a: FactorSearchArgs) -> Result<()> {
    let q = FactorQuery {
        text: Some(a.text.join(" ")).filter(|t| !t.is_empty()),
        set: a.set.clone(),
        region: a.region.clone(),
        year: a.year,
        unit: a.unit.clone(),
    };
    let found: Vec<_> = catalog().search(&q).take(a.limit).collect();
    match a.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&found)?),
        f => {
            let mut t = Table::new(&[
                ("set", false),
                ("version", false),
                ("key", false),
                ("value", true),
                ("unit", false),
                ("scope", false),
                ("name", false),
            ]);
            for v in &found {
                t.row(vec![
                    v.set.into(),
                    v.version.into(),
                    v.key.clone(),
                    format!("{}", v.value),
                    v.unit.clone(),
                    v.scope.clone().unwrap_or_default(),
                    v.name.clone(),
                ]);
            }
            print!(
                "{}",
                if f == Format::Csv {
                    t.to_csv()
                } else {
                    t.to_text()
                }
            );
            if f == Format::Table && found.len() == a.limit {
                println!(
                    "(first {} shown; use --limit or more words to narrow)",
                    a.limit
                );
            }
        }
    }
    Ok(())
}

fn factors_show(a: FactorShowArgs) -> Result<()> {
    let f = catalog()
        .get(&a.set, &a.key, a.version.as_deref())
        .ok_or_else(|| {
            anyhow!(
                "no factor '{}' in set '{}'{}",
                a.key,
                a.set,
                a.version
                    .map(|v| format!(" version {v}"))
                    .unwrap_or_default()
            )
        })?;
    println!("{}", serde_json::to_string_pretty(&f)?);
    Ok(())
}

fn audit_cmd(sa: &StoreArgs, a: AuditArgs) -> Result<()> {
    let store = open_store(sa)?;
    let db = store.connect()?;
    if let Some(AuditCommand::Verify(v)) = a.command {
        let org = db.require_org(&v.org)?;
        let r = db.verify_audit(org.id)?;
        if matches!(v.format, Format::Json) {
            println!("{}", serde_json::to_string_pretty(&r)?);
        } else {
            println!(
                "Audit log of '{}': {} entries covering {} line changes; head: entry {} ({})",
                org.name,
                group(r.entries),
                group(r.lines),
                r.head_seq,
                r.head_hash
            );
            if !r.unsealed_imports.is_empty() {
                println!(
                    "Imports not sealed yet (running, or stopped without an end): {:?}",
                    r.unsealed_imports
                );
            }
        }
        return match r.broken {
            None => {
                if !matches!(v.format, Format::Json) {
                    println!("The chain is intact.");
                }
                Ok(())
            }
            Some(b) => bail!("the chain is broken at entry {}: {}", b.seq, b.reason),
        };
    }
    let l = a.list;
    let org = db.require_org(l.org.as_deref().unwrap_or_default())?;
    let filter = vcci_store::model::audit::AuditFilter {
        action: l.action,
        subject: l.subject,
        key_id: l.key_id,
        since: l.since,
        until: l.until,
        line: l.line,
    };
    let entries = db.audit_entries(org.id, &filter, l.before, l.limit.clamp(1, 100_000))?;
    if matches!(l.format, Format::Json) {
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(());
    }
    let mut t = Table::new(&[
        ("seq", true),
        ("at", false),
        ("who", false),
        ("request", false),
        ("action", false),
        ("subject", false),
        ("lines", true),
        ("detail", false),
        ("hash", false),
    ]);
    for e in &entries {
        let mut detail = e.detail.to_string();
        if detail.len() > 80 && matches!(l.format, Format::Table) {
            let cut = (0..=77)
                .rev()
                .find(|i| detail.is_char_boundary(*i))
                .unwrap_or(0);
            detail = format!("{}...", &detail[..cut]);
        }
        t.row(vec![
            e.seq.to_string(),
            e.at.clone(),
            e.actor.clone(),
            e.request_id.clone().unwrap_or_default(),
            e.action.clone(),
            e.subject.clone(),
            group(e.lines as u64),
            detail,
            e.hash[..16].to_owned(),
        ]);
    }
    print!(
        "{}",
        match l.format {
            Format::Csv => t.to_csv(),
            _ => t.to_text(),
        }
    );
    Ok(())
}

fn period_cmd(sa: &StoreArgs, c: PeriodCommand) -> Result<()> {
    let store = open_store(sa)?;
    let mut db = store.connect()?;
    match c {
        PeriodCommand::Close(a) => {
            let org = db.require_org(&a.org)?;
            let v = db.close_period(&org, a.year, &Actor::cli())?;
            println!(
                "Closed {} of '{}' as inventory version {}: {} lines, {:.3} tCO2e. Writes that would change {} are refused until it is reopened.",
                a.year,
                org.name,
                v.info.version,
                group(v.info.transaction_count as u64),
                v.info.total_co2e_kg / 1000.0,
                a.year
            );
        }
        PeriodCommand::Reopen(a) => {
            let org = db.require_org(&a.org)?;
            db.reopen_period(&org, a.year, &a.reason, &Actor::cli())?;
            println!("Reopened {} of '{}': {}", a.year, org.name, a.reason.trim());
        }
        PeriodCommand::List(a) => {
            let org = db.require_org(&a.org)?;
            let periods = db.list_periods(org.id)?;
            if matches!(a.format, Format::Json) {
                println!("{}", serde_json::to_string_pretty(&periods)?);
                return Ok(());
            }
            let mut t = Table::new(&[
                ("year", false),
                ("status", false),
                ("version", true),
                ("tCO2e", true),
                ("lines", true),
                ("closed", false),
                ("reopened", false),
            ]);
            for p in &periods {
                let latest = p.versions.last();
                t.row(vec![
                    p.year.to_string(),
                    p.status.to_owned(),
                    p.version.to_string(),
                    latest.map_or(String::new(), |v| {
                        format!("{:.3}", v.total_co2e_kg / 1000.0)
                    }),
                    latest.map_or(String::new(), |v| group(v.transaction_count as u64)),
                    format!("{} by {}", p.closed_at, p.closed_by),
                    p.reopen_reason.clone().map_or(String::new(), |r| {
                        format!("{}: {r}", p.reopened_at.clone().unwrap_or_default())
                    }),
                ]);
            }
            print!(
                "{}",
                match a.format {
                    Format::Csv => t.to_csv(),
                    _ => t.to_text(),
                }
            );
        }
        PeriodCommand::BaseYear(a) => {
            let org = db.require_org(&a.org)?;
            db.set_reporting_settings(
                org.id,
                &vcci_store::model::reporting::ReportingSettings {
                    base_year: Some(a.year),
                    significance_threshold: a.threshold,
                },
                &Actor::cli(),
            )?;
            println!(
                "Base year of '{}': {}; significance threshold {} %",
                org.name,
                a.year,
                a.threshold * 100.0
            );
        }
        PeriodCommand::Show(a) => {
            let org = db.require_org(&a.org)?;
            let json = match a.version {
                Some(v) => serde_json::to_string_pretty(
                    &db.inventory_version(org.id, a.year, v)?
                        .ok_or_else(|| anyhow!("no version {v} of {} in '{}'", a.year, org.name))?,
                )?,
                None => serde_json::to_string_pretty(
                    &db.get_period(org.id, a.year)?
                        .ok_or_else(|| anyhow!("{} of '{}' was never closed", a.year, org.name))?,
                )?,
            };
            println!("{json}");
        }
    }
    Ok(())
}

fn compare_cmd(sa: &StoreArgs, a: CompareArgs) -> Result<()> {
    let store = open_store(sa)?;
    let db = store.connect()?;
    let org = db.require_org(&a.org)?;
    let c = db.compare_years(org.id, a.year, a.denominator.as_deref())?;
    if matches!(a.format, Format::Json) {
        println!("{}", serde_json::to_string_pretty(&c)?);
        return Ok(());
    }
    let base = c.base_year.map_or("base".to_owned(), |b| b.to_string());
    let (y, p) = (c.year.to_string(), c.previous_year.to_string());
    let vs_p = format!("vs {p}");
    let vs_b = format!("vs {base}");
    let mut t = Table::new(&[
        ("category", false),
        (&y, true),
        (&p, true),
        (&base, true),
        (&vs_p, true),
        (&vs_b, true),
    ]);
    let t3 = |v: Option<f64>| v.map_or(String::new(), |kg| format!("{:.3}", kg / 1000.0));
    let pc = |v: Option<f64>| v.map_or(String::new(), |x| format!("{x:+.1}%"));
    for r in c.categories.iter().chain(std::iter::once(&c.total)) {
        if r.year_co2e_kg.is_none()
            && r.previous_year_co2e_kg.is_none()
            && r.base_year_co2e_kg.is_none()
        {
            continue;
        }
        let name = r
            .category
            .map_or(r.name.to_owned(), |n| format!("{n:>2} {}", r.name));
        t.row(vec![
            name,
            t3(r.year_co2e_kg),
            t3(r.previous_year_co2e_kg),
            t3(r.base_year_co2e_kg),
            pc(r.change_vs_previous_pct),
            pc(r.change_vs_base_pct),
        ]);
    }
    println!("tCO2e of '{}' by category", org.name);
    let sources: Vec<String> = c.sources.iter().map(|(y, s)| format!("{y}: {s}")).collect();
    println!("(figures: {})\n", sources.join(", "));
    print!(
        "{}",
        match a.format {
            Format::Csv => t.to_csv(),
            _ => t.to_text(),
        }
    );
    if let Some(i) = &c.intensity {
        let v = |x: Option<f64>| x.map_or("-".to_owned(), |x| format!("{x:.4}"));
        println!(
            "\nkg CO2e per {} {}: {} {}, {} {}, base {} ({} vs previous, {} vs base)",
            i.unit,
            i.denominator,
            c.year,
            v(i.year_kg_per_unit),
            c.previous_year,
            v(i.previous_year_kg_per_unit),
            v(i.base_year_kg_per_unit),
            pc(i.change_vs_previous_pct),
            pc(i.change_vs_base_pct)
        );
    }
    Ok(())
}

fn target_cmd(sa: &StoreArgs, c: TargetCommand) -> Result<()> {
    let store = open_store(sa)?;
    let mut db = store.connect()?;
    match c {
        TargetCommand::Add(a) => {
            let org = db.require_org(&a.org)?;
            let t = db.add_target(
                org.id,
                &vcci_store::model::reporting::TargetSpec {
                    name: &a.name,
                    categories: &a.categories,
                    base_year: a.base_year,
                    target_year: a.target_year,
                    reduction_pct: a.reduction_pct,
                },
                &Actor::cli(),
            )?;
            println!(
                "Target {} of '{}': {} % less than {} by {}",
                t.id, org.name, t.reduction_pct, t.base_year, t.target_year
            );
        }
        TargetCommand::List(a) => {
            let org = db.require_org(&a.org)?;
            let ts = db.target_progress(org.id, a.through.unwrap_or(2100))?;
            println!("{}", serde_json::to_string_pretty(&ts)?);
        }
    }
    Ok(())
}

fn denominator_cmd(sa: &StoreArgs, a: DenominatorArgs) -> Result<()> {
    let store = open_store(sa)?;
    let mut db = store.connect()?;
    let org = db.require_org(&a.org)?;
    db.set_denominator(
        org.id,
        &vcci_store::model::reporting::Denominator {
            name: a.name.clone(),
            year: a.year,
            value: a.value,
            unit: a.unit.clone(),
        },
        &Actor::cli(),
    )?;
    println!(
        "{} of '{}' in {}: {} {}",
        a.name, org.name, a.year, a.value, a.unit
    );
    Ok(())
}

fn intensities_cmd(sa: &StoreArgs, a: SupplierIntensitiesArgs) -> Result<()> {
    let store = open_store(sa)?;
    let db = store.connect()?;
    let org = db.require_org(&a.org)?;
    let h = db
        .supplier_intensities(org.id, &a.supplier_id)?
        .ok_or_else(|| {
            anyhow!(
                "no supplier '{}' in organization '{}'",
                a.supplier_id,
                org.name
            )
        })?;
    if matches!(a.format, Format::Json) {
        println!("{}", serde_json::to_string_pretty(&h)?);
        return Ok(());
    }
    let mut t = Table::new(&[
        ("year", false),
        ("kg CO2e/USD", true),
        ("boundary", false),
        ("stated", false),
        ("verified", false),
        ("source", false),
        ("updated", false),
    ]);
    let yes = |b: bool| if b { "yes" } else { "no" }.to_owned();
    for v in &h {
        t.row(vec![
            v.year.map_or("undated".to_owned(), |y| y.to_string()),
            v.kg_per_usd.to_string(),
            v.boundary.as_str().to_owned(),
            yes(v.boundary_stated),
            yes(v.verified),
            v.source.clone().unwrap_or_default(),
            v.updated_at.clone(),
        ]);
    }
    print!(
        "{}",
        match a.format {
            Format::Csv => t.to_csv(),
            _ => t.to_text(),
        }
    );
    Ok(())
}

fn remove_intensity_cmd(sa: &StoreArgs, a: SupplierRemoveIntensityArgs) -> Result<()> {
    let year =
        vcci_store::model::suppliers::parse_intensity_year(&a.year).map_err(|m| anyhow!(m))?;
    let store = open_store(sa)?;
    let mut db = store.connect()?;
    let org = db.require_org(&a.org)?;
    let shown = year.map_or("undated".to_owned(), |y| y.to_string());
    match db.remove_supplier_intensity(catalog(), &org, &a.supplier_id, year, &Actor::cli())? {
        Some(n) => {
            println!(
                "Removed the {shown} intensity of '{}'; {} lines recalculated.",
                a.supplier_id,
                group(n)
            );
            Ok(())
        }
        None => bail!("supplier '{}' has no {shown} intensity", a.supplier_id),
    }
}

fn keys_create(sa: &StoreArgs, a: KeyCreateArgs) -> Result<()> {
    let store = open_store(sa)?;
    let db = store.connect()?;
    let org = db.ensure_org_with(&a.org, currency_arg(a.default_currency.as_deref())?)?;
    let role = match a.role {
        RoleArg::Admin => Role::Admin,
        RoleArg::Analyst => Role::Analyst,
        RoleArg::Viewer => Role::Viewer,
    };
    let key = db.create_key(org.id, role, &Actor::cli())?;
    println!(
        "Created a {} key for organization '{}'. It is shown only once; store it safely:",
        role.as_str(),
        org.name
    );
    println!("{key}");
    Ok(())
}

fn keys_revoke(sa: &StoreArgs, a: KeyRevokeArgs) -> Result<()> {
    let store = open_store(sa)?;
    let db = store.connect()?;
    if db.revoke_key(&a.key, &Actor::cli())? {
        println!("Revoked.");
        Ok(())
    } else {
        bail!("no active key matches")
    }
}
