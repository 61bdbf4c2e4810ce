//! A PACT sync job: pulls a connection's footprints (`pact_sync.rs`), reporting progress
//! (footprints read) with each page; the outcome is the job's result and the connection's
//! last sync. A node that stops mid-sync puts the job back in the queue; the re-run stores
//! only what is new.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use serde_json::{Value, json};
use vcci_store::model::jobs::Job;
use vcci_store::{Actor, StoreError};

use super::Outcome;
use crate::App;
use crate::pact_sync::{SyncError, outcome_json, sync};

pub(super) async fn run(app: &App, job: &Job) -> Result<Outcome, StoreError> {
    let p: Value = serde_json::from_str(&job.params).unwrap_or_default();
    let id = p["connection_id"].as_str().unwrap_or_default().to_owned();
    let org_id = job.org_id;
    let Some(key) = app.config.secret_key.clone() else {
        return Ok(Outcome::Failed(json!([{"message":
            "this node has no secret key (VCCI_SECRET_KEY): it cannot open connection secrets"}])));
    };
    let cid = id.clone();
    let found = app
        .db(move |db| {
            let org = db.org_by_id(org_id)?;
            let c = db.connection(org_id, &cid)?;
            let secret = match &c {
                Some(_) => Some(db.connection_secret(org_id, &cid, &key)?),
                None => None,
            };
            Ok((org, c, secret))
        })
        .await;
    let (org, conn, secret) = match found {
        Ok((Some(org), Some(c), Some(s))) => (org, c, s),
        Ok(_) => {
            return Ok(Outcome::Failed(
                json!([{"message": format!("connection '{id}' no longer exists")}]),
            ));
        }
        Err(e) => return Ok(Outcome::Failed(json!([{"message": e.message}]))),
    };
    let actor: Actor =
        serde_json::from_value(p["actor"].clone()).unwrap_or_else(|_| Actor::system("pact sync"));
    let store = app.store().clone();
    // Progress goes to the database from a task of its own, once a second (the callback
    // runs on the async runtime, where no database call may block); it also tells whether
    // the job is still this node's.
    let read = Arc::new(AtomicI64::new(0));
    let lost = Arc::new(AtomicBool::new(false));
    let beat = {
        let (read, lost, store) = (Arc::clone(&read), Arc::clone(&lost), store.clone());
        let (jid, node) = (job.id.clone(), app.node.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            loop {
                tick.tick().await;
                let n = read.load(Ordering::Relaxed);
                let (s, j, nd) = (store.clone(), jid.clone(), node.clone());
                let mine = tokio::task::spawn_blocking(move || {
                    s.connect().and_then(|db| db.job_progress(&j, &nd, n, 0))
                })
                .await;
                if let Ok(Ok(false)) = mine {
                    lost.store(true, Ordering::Relaxed);
                }
            }
        })
    };
    let r = sync(
        &app.pact_http,
        &store,
        &org,
        &conn,
        &secret,
        &actor,
        |rep| {
            read.store(rep.footprints as i64, Ordering::Relaxed);
            !app.stopping() && !lost.load(Ordering::Relaxed)
        },
    )
    .await;
    beat.abort();
    if let Err((SyncError::Stopped, _)) = &r {
        return Ok(Outcome::Interrupted);
    }
    let outcome = outcome_json(Some(&job.id), &r);
    let cid = conn.id.clone();
    let o = outcome.clone();
    if let Err(e) = app.db(move |db| db.record_sync(org_id, &cid, &o)).await {
        tracing::warn!(error = %e.message, "recording a sync's outcome");
    }
    Ok(match r {
        Ok(rep) => {
            let mut v = json!(rep);
            v["connection_id"] = json!(conn.id);
            Outcome::Succeeded(v)
        }
        Err((e, rep)) => Outcome::Failed(json!([{"message": e.to_string(), "report": rep}])),
    })
}
