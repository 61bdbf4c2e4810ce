//! `vcci pact`: supplier product footprints (PACT Tech Specs v3) received from a file, and
//! listed with their status and lineage.

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;
use vcci_core::catalog;
use vcci_core::pact::Status;
use vcci_store::model::pcfs::{FootprintFilter, MAX_PER_RECEIPT};
use vcci_store::{Actor, Store};

use crate::cli::{
    Format, OrgFormatArgs, PactClientArgs, PactClientsCommand, PactCommand, PactConnectArgs,
    PactImportArgs, PactListArgs, PactPublishArgs, PactSyncArgs,
};
use crate::output::Table;
use crate::progress::group;

/// Footprint files larger than this are refused (1,000 footprints of a few KB each).
const MAX_FILE_BYTES: u64 = 64 << 20;

pub fn pact_cmd(store: Store, c: PactCommand) -> Result<()> {
    match c {
        PactCommand::Import(a) => import(store, a),
        PactCommand::Footprints(a) => list(store, a),
        PactCommand::Publish(a) => publish(store, a),
        PactCommand::Clients(c) => clients(store, c),
        PactCommand::Connect(a) => connect(store, a),
        PactCommand::Connections(a) => connections(store, a),
        PactCommand::Sync(a) => sync(store, a),
    }
}

/// The client settings of the command line.
pub fn http_config(a: &PactClientArgs) -> vcci_server::pact_client::HttpConfig {
    vcci_server::pact_client::HttpConfig {
        ca_file: a.pact_ca_file.clone(),
        ..Default::default()
    }
}

/// The configured secret key, if any.
pub fn secret_key(a: &PactClientArgs) -> Result<Option<vcci_store::secretbox::SecretKey>> {
    a.secret_key
        .as_deref()
        .filter(|k| !k.is_empty())
        .map(|k| {
            vcci_store::secretbox::SecretKey::from_hex(k).map_err(|e| anyhow!("--secret-key: {e}"))
        })
        .transpose()
}

fn require_key(a: &PactClientArgs) -> Result<vcci_store::secretbox::SecretKey> {
    secret_key(a)?.ok_or_else(|| {
        anyhow!("connection secrets are stored encrypted: set VCCI_SECRET_KEY (or --secret-key) to 64 hex digits (`openssl rand -hex 32`)")
    })
}

fn connect(store: Store, a: PactConnectArgs) -> Result<()> {
    let key = require_key(&a.pact)?;
    let secret = match a.client_secret.filter(|s| !s.is_empty()) {
        Some(s) => s,
        None => {
            eprint!("client secret: ");
            let mut s = String::new();
            std::io::stdin().read_line(&mut s)?;
            s.trim().to_owned()
        }
    };
    let db = store.connect()?;
    let org = db.require_org(&a.org)?;
    let c = db.create_connection(
        org.id,
        &vcci_store::model::connections::NewConnection {
            supplier_id: a.supplier,
            base_url: a.url,
            auth_base_url: a.auth_url,
            client_id: a.client_id,
            client_secret: secret,
            notify_published: a.notify_published,
        },
        &key,
        &Actor::cli(),
    )?;
    println!(
        "Connection {} to {} for supplier '{}'; sync it with `vcci pact sync --org {} {}`.",
        c.id, c.base_url, c.supplier_id, org.name, c.id
    );
    Ok(())
}

fn connections(store: Store, a: OrgFormatArgs) -> Result<()> {
    let db = store.connect()?;
    let org = db.require_org(&a.org)?;
    let list = db.connections(org.id)?;
    if matches!(a.format, Format::Json) {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    let mut t = Table::new(&[
        ("id", false),
        ("supplier", false),
        ("host", false),
        ("client_id", false),
        ("last sync", false),
    ]);
    for c in list {
        let last = c.last_sync.as_ref().map_or(String::new(), |s| {
            format!(
                "{} {} {}",
                s["status"].as_str().unwrap_or(""),
                s["at"].as_str().unwrap_or(""),
                s["reason"].as_str().unwrap_or("")
            )
        });
        t.row(vec![c.id, c.supplier_id, c.base_url, c.client_id, last]);
    }
    print!("{}", t.to_text());
    Ok(())
}

fn sync(store: Store, a: PactSyncArgs) -> Result<()> {
    let key = require_key(&a.pact)?;
    let db = store.connect()?;
    let org = db.require_org(&a.org)?;
    let c = db
        .connection(org.id, &a.connection)?
        .ok_or_else(|| anyhow!("'{}' has no connection '{}'", org.name, a.connection))?;
    let secret = db.connection_secret(org.id, &c.id, &key)?;
    drop(db);
    let http =
        vcci_server::pact_client::PactHttp::new(http_config(&a.pact)).map_err(|e| anyhow!(e))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let r = runtime.block_on(vcci_server::pact_sync::sync(
        &http,
        &store,
        &org,
        &c,
        &secret,
        &Actor::cli(),
        |rep| {
            eprintln!(
                "page {}: {} footprints read, {} new, {} rejected",
                rep.pages, rep.footprints, rep.received, rep.rejected_count
            );
            true
        },
    ));
    let outcome = vcci_server::pact_sync::outcome_json(None, &r);
    store.connect()?.record_sync(org.id, &c.id, &outcome)?;
    match r {
        Ok(rep) => {
            if matches!(a.format, Format::Json) {
                println!("{}", serde_json::to_string_pretty(&rep)?);
            } else {
                println!(
                    "Synced {}: {} pages, {} footprints ({} new, {} unchanged, {} deprecated, {} rejected); {} lines recalculated.",
                    c.id,
                    rep.pages,
                    rep.footprints,
                    rep.received,
                    rep.unchanged,
                    rep.deprecated,
                    rep.rejected_count,
                    group(rep.lines_changed)
                );
                print_rejected(&rep.rejected);
            }
            Ok(())
        }
        Err((e, rep)) => bail!(
            "the sync of {} failed after {} pages ({} footprints kept): {e}",
            c.id,
            rep.pages,
            rep.received
        ),
    }
}

/// Reads a footprint file (at most 64 MiB of JSON).
fn read_footprints(path: &std::path::Path) -> Result<Vec<Value>> {
    let len = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    if len > MAX_FILE_BYTES {
        bail!(
            "{} is {} bytes; at most {MAX_FILE_BYTES} at once",
            path.display(),
            group(len)
        );
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| {
        anyhow!(
            "{}: not JSON (line {}, column {}): {e}",
            path.display(),
            e.line(),
            e.column()
        )
    })?;
    let docs = footprints_of(v)?;
    if docs.len() > MAX_PER_RECEIPT {
        bail!(
            "{} footprints; at most {MAX_PER_RECEIPT} per file (split it)",
            docs.len()
        );
    }
    Ok(docs)
}

fn print_rejected(rejected: &[vcci_store::model::pcfs::RejectedFootprint]) {
    for rej in rejected {
        for e in &rej.errors {
            eprintln!(
                "footprint {} ({}): {}: {}",
                rej.index,
                rej.id.as_deref().unwrap_or("no id"),
                if e.path.is_empty() { "/" } else { &e.path },
                e.message
            );
        }
    }
}

fn publish(store: Store, a: PactPublishArgs) -> Result<()> {
    let docs = read_footprints(&a.file)?;
    let mut db = store.connect()?;
    let org = db.require_org(&a.org)?;
    let r = db.publish_footprints(org.id, &docs, &Actor::cli())?;
    let notices = match a.public_url.as_deref().filter(|u| !u.is_empty()) {
        Some(u) => db
            .queue_published_notices(
                org.id,
                &r.published,
                &vcci_server::pact_events::source_of(u),
            )?
            .len(),
        None => 0,
    };
    if matches!(a.format, Format::Json) {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "'{}': {} footprints published, {} unchanged, {} deprecated (superseded), {} rejected.",
            org.name,
            r.published.len(),
            r.unchanged,
            r.deprecated.len(),
            r.rejected.len()
        );
        for id in &r.published {
            println!("published {id}");
        }
        if notices > 0 {
            println!("{notices} customers' hosts will be told by a running `vcci serve`.");
        }
        print_rejected(&r.rejected);
    }
    if !r.rejected.is_empty() && r.published.is_empty() && r.unchanged == 0 {
        bail!("no footprint of the file was published");
    }
    Ok(())
}

fn clients(store: Store, c: PactClientsCommand) -> Result<()> {
    let db = store.connect()?;
    match c {
        PactClientsCommand::Create(a) => {
            let org = db.require_org(&a.org)?;
            let n = db.create_pact_client(org.id, &a.name, &Actor::cli())?;
            println!(
                "PACT client for '{}' of '{}' (the secret is shown once):",
                n.client.name, org.name
            );
            println!("client_id:     {}", n.client.client_id);
            println!("client_secret: {}", n.client_secret);
        }
        PactClientsCommand::List(a) => {
            let org = db.require_org(&a.org)?;
            let list = db.pact_clients(org.id)?;
            if matches!(a.format, Format::Json) {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                let mut t = Table::new(&[
                    ("client_id", false),
                    ("name", false),
                    ("created", false),
                    ("revoked", false),
                ]);
                for c in list {
                    t.row(vec![
                        c.client_id,
                        c.name,
                        c.created_at,
                        c.revoked_at.unwrap_or_default(),
                    ]);
                }
                print!("{}", t.to_text());
            }
        }
        PactClientsCommand::Revoke(a) => {
            let org = db.require_org(&a.org)?;
            if !db.revoke_pact_client(org.id, &a.client_id, &Actor::cli())? {
                bail!("'{}' has no active PACT client '{}'", org.name, a.client_id);
            }
            println!("Revoked {}.", a.client_id);
        }
    }
    Ok(())
}

/// The footprints of a file: one ProductFootprint, an array, or `{"data": [...]}`.
fn footprints_of(v: Value) -> Result<Vec<Value>> {
    match v {
        Value::Array(a) => Ok(a),
        Value::Object(mut o) if o.contains_key("data") => match o.remove("data") {
            Some(Value::Array(a)) => Ok(a),
            _ => bail!("`data` must be an array of ProductFootprint objects"),
        },
        v @ Value::Object(_) => Ok(vec![v]),
        _ => bail!(
            "the file must hold a ProductFootprint, an array of them, or a PACT list response"
        ),
    }
}

fn import(store: Store, a: PactImportArgs) -> Result<()> {
    let docs = read_footprints(&a.file)?;
    let mut db = store.connect()?;
    let org = db.require_org(&a.org)?;
    let source = format!("file {}", a.file.display());
    let r = db.receive_footprints(catalog(), &org, &a.supplier, &docs, &source, &Actor::cli())?;
    if matches!(a.format, Format::Json) {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "Supplier '{}': {} footprints received, {} unchanged, {} deprecated, {} superseded, \
             {} rejected; {} lines recalculated.",
            a.supplier,
            r.received.len(),
            r.unchanged,
            r.deprecated.len(),
            r.superseded.len(),
            r.rejected.len(),
            group(r.lines_changed)
        );
        print_rejected(&r.rejected);
    }
    if !r.rejected.is_empty()
        && r.received.is_empty()
        && r.unchanged == 0
        && r.deprecated.is_empty()
    {
        bail!("no footprint of the file was accepted");
    }
    Ok(())
}

fn list(store: Store, a: PactListArgs) -> Result<()> {
    let db = store.connect()?;
    let org = db.require_org(&a.org)?;
    let status = a
        .status
        .as_deref()
        .map(|s| {
            Status::parse(s).ok_or_else(|| anyhow!("--status: '{s}' is not Active or Deprecated"))
        })
        .transpose()?;
    let filter = FootprintFilter {
        supplier_id: a.supplier,
        product_id: a.product,
        status,
    };
    let rows = db.footprints(org.id, &filter, None, a.limit)?;
    if matches!(a.format, Format::Json) {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    let mut t = Table::new(&[
        ("id", false),
        ("supplier", false),
        ("status", false),
        ("in use", false),
        ("products", false),
        ("company", false),
        ("supersedes", false),
        ("superseded by", false),
    ]);
    for f in &rows {
        t.row(vec![
            f.id.clone(),
            f.supplier_id.clone(),
            f.status.clone(),
            if f.in_use { "yes" } else { "no" }.into(),
            f.product_ids.join(" "),
            f.company_name.clone(),
            f.preceding_pf_ids.join(" "),
            f.superseded_by.clone().unwrap_or_default(),
        ]);
    }
    if matches!(a.format, Format::Csv) {
        print!("{}", t.to_csv());
    } else {
        print!("{}", t.to_text());
    }
    Ok(())
}
