//! Group commit of API upserts: requests queue their lines here, and whoever gets the
//! node's write turn writes every request queued by then in one transaction (one commit
//! instead of one per request). The turn itself is taken by the route
//! (`routes::transactions`); this module holds the queue and the write.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{Value, json};
use vcci_core::catalog;
use vcci_store::write::{LineGroup, LineOutcome, NewSuppliers, PreparedLine, prepare};
use vcci_store::{Actor, Db, Org, OrgId};

use crate::error::{ApiError, line_error_json};
use crate::input::{parse_line, resolve_suppliers, supplier_keys};

/// The upserts waiting for the write turn.
#[derive(Debug, Default)]
pub(crate) struct GroupCommit {
    queue: Mutex<Vec<PendingUpsert>>,
}

impl GroupCommit {
    /// Queues `lines` of `org`; the receiver gets the request's answer once written.
    pub fn push(
        &self,
        org: Org,
        actor: Actor,
        lines: Vec<Value>,
    ) -> tokio::sync::oneshot::Receiver<Result<Value, ApiError>> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(PendingUpsert {
                org,
                actor,
                lines,
                reply,
            });
        rx
    }

    /// Everything queued so far (for the holder of the write turn).
    pub fn take(&self) -> Vec<PendingUpsert> {
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// A batch upsert waiting for the write turn.
#[derive(Debug)]
pub(crate) struct PendingUpsert {
    org: Org,
    /// Who sent it (its audit entry's).
    actor: Actor,
    lines: Vec<Value>,
    reply: tokio::sync::oneshot::Sender<Result<Value, ApiError>>,
}

type Reply = (
    tokio::sync::oneshot::Sender<Result<Value, ApiError>>,
    Result<Value, ApiError>,
);

/// Prepares each queued upsert and writes them all in one transaction (each alone if that
/// fails, so one request's fault is not another's). Returns the answers and the new
/// generation of each organization written.
pub(crate) fn write_group(
    db: &mut Db,
    batch: Vec<PendingUpsert>,
) -> (Vec<Reply>, Vec<(OrgId, u64)>) {
    let mut ready = Vec::new();
    let mut replies: Vec<Reply> = Vec::new();
    for p in batch {
        match prepare_upsert(db, &p.org, &p.lines) {
            Ok((lines, new, answer, resolver)) => {
                if let Some(mut r) = resolver
                    && let Err(e) = db.record_resolution(p.org.id, &mut r)
                {
                    // The aliases and pairs are found again by the next write that needs them.
                    tracing::warn!(error = %e, "recording supplier aliases");
                }
                ready.push((p.reply, p.org.id, p.actor, lines, new, answer));
            }
            Err(e) => replies.push((p.reply, Err(ApiError::from(e)))),
        }
    }
    let groups: Vec<LineGroup<'_>> = ready
        .iter()
        .map(|(_, org, actor, lines, new, _)| LineGroup {
            org: *org,
            lines,
            new_suppliers: new,
            actor,
        })
        .collect();
    let together = db.write_line_groups(&groups);
    drop(groups);
    let mut orgs: Vec<OrgId> = ready.iter().map(|r| r.1).collect();
    for (k, (reply, org, actor, lines, new, answer)) in ready.into_iter().enumerate() {
        let result = match &together {
            Ok(outs) => Ok(answer.finish(&lines, &outs[k])),
            Err(_) => db
                .write_lines(org, &lines, &new, &actor)
                .map(|outs| answer.finish(&lines, &outs))
                .map_err(ApiError::from),
        };
        replies.push((reply, result));
    }
    orgs.sort_unstable();
    orgs.dedup();
    let generations = orgs
        .into_iter()
        .filter_map(|o| db.generation(o).ok().map(|g| (o, g)))
        .collect();
    (replies, generations)
}

/// The answer to an upsert before its lines are written: the lines rejected so far, and the
/// request index of each prepared line (the last line of its id).
struct Answer {
    total: usize,
    rejected: Vec<(usize, Value)>,
    index: Vec<usize>,
}

impl Answer {
    /// `accepted` and `rejected` (by index), with the lines the write refused (a closed
    /// reporting period) among the rejected.
    fn finish(mut self, lines: &[PreparedLine], outcomes: &[LineOutcome]) -> Value {
        for ((p, o), &i) in lines.iter().zip(outcomes).zip(&self.index) {
            if let LineOutcome::PeriodClosed { year } = o {
                let e = vcci_core::LineError::new(
                    vcci_core::Field::Date,
                    "period_closed",
                    vcci_store::StoreError::period_closed(*year).to_string(),
                );
                self.rejected.push((
                    i,
                    json!({"index": i, "transaction_id": p.id(), "error": line_error_json(&format!("transactions[{i}]"), &[e])}),
                ));
            }
        }
        self.rejected.sort_by_key(|r| r.0);
        let rejected: Vec<Value> = self.rejected.into_iter().map(|r| r.1).collect();
        json!({"accepted": self.total - rejected.len(), "rejected": rejected})
    }
}

/// Parses and calculates a batch: the lines to write, suppliers to create, and the answer
/// (`accepted`, `rejected` by index with the JSON path of each problem).
fn prepare_upsert(db: &Db, org: &Org, lines: &[Value]) -> Result<Prepared, vcci_store::StoreError> {
    let mut parsed: Vec<_> = lines.iter().map(|v| parse_line(v, true)).collect();
    let keys = supplier_keys(parsed.iter().filter_map(|l| l.as_ref().ok()));
    let mut profiles = db.supplier_profiles_for(org.id, &keys)?;
    // Suppliers not known as named: resolved (linked names, merged ids) before calculation.
    let resolver = resolve_suppliers(db, org.id, &mut parsed, &mut profiles)?;
    let classifier = if parsed
        .iter()
        .filter_map(|l| l.as_ref().ok())
        .any(vcci_store::classify::may_need_classification)
    {
        Some(db.load_classifier(org.id)?)
    } else {
        None
    };
    let mut prepared: Vec<PreparedLine> = Vec::with_capacity(lines.len());
    let mut index: Vec<usize> = Vec::with_capacity(lines.len());
    let mut new_suppliers = Vec::new();
    let mut rejected = Vec::new();
    // Later lines with the same transaction_id win, as in a sequence of upserts.
    let mut position: HashMap<String, usize> = HashMap::new();
    for (i, (v, line)) in lines.iter().zip(parsed).enumerate() {
        let prefix = format!("transactions[{i}]");
        let id = v.get("transaction_id").cloned().unwrap_or(Value::Null);
        let line = match line {
            Ok(l) => l,
            Err(errs) => {
                rejected.push((i, json!({"index": i, "transaction_id": id, "error": line_error_json(&prefix, &errs)})));
                continue;
            }
        };
        match prepare(catalog(), org, line, &profiles, None, classifier.as_deref()) {
            Ok(p) => {
                if let Some(k) = p.supplier_key()
                    && !profiles.contains_key(k)
                {
                    new_suppliers.push((
                        k.to_owned(),
                        p.line.supplier_name.clone().unwrap_or_else(|| k.to_owned()),
                    ));
                    profiles.insert(k.to_owned(), Default::default());
                }
                let key = p.line.transaction_id.clone().unwrap_or_default();
                match position.get(&key) {
                    Some(&at) => {
                        prepared[at] = p;
                        index[at] = i;
                    }
                    None => {
                        position.insert(key, prepared.len());
                        prepared.push(p);
                        index.push(i);
                    }
                }
            }
            Err(e) => rejected.push((
                i,
                json!({"index": i, "transaction_id": id, "error": line_error_json(&prefix, &[e])}),
            )),
        }
    }
    let answer = Answer {
        total: lines.len(),
        rejected,
        index,
    };
    Ok((prepared, new_suppliers, answer, resolver))
}

/// A prepared upsert: its lines, the suppliers it creates, its answer so far, and the
/// resolver whose findings (aliases, pairs) are recorded with it.
type Prepared = (
    Vec<PreparedLine>,
    NewSuppliers,
    Answer,
    Option<vcci_store::resolve::SupplierResolver>,
);
