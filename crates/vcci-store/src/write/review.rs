//! A reviewer's verdict on classified lines (issue 19; the queue and the remembered reviews
//! are `classify::review`). A verdict, in one transaction with its audit entry:
//! - writes the line again with a classification of source `review` (confidence 1, its
//!   evidence the verdict, the reviewer, the time and what the classifier had said), and
//!   with it every other flagged line of the same input (description, supplier and ledger
//!   account, normalized), read models and all;
//! - remembers the input's label (`classification_reviews`): later lines with that input
//!   get it, before any rule or model;
//! - teaches the organization model the line, counted `REVIEW_WEIGHT` times (a second
//!   verdict on an input unlearns the first), so similar lines follow; the model is stored
//!   and the classification generation changes, so no cached answer of before is served;
//! - with `rule`, also adds the rule the reviewer asked for (supplier, ledger account or
//!   keyword) with the reviewed label.
//!
//! A line of a closed year cannot change (`PeriodClosed`, nothing written); other flagged
//! lines of the same input in closed years keep their flag until a restatement.

use std::collections::HashMap;

use serde_json::json;
use vcci_core::classify::{
    Classification, Evidence, Features, Input, Label, OrgModel, Previous, REVIEW_WEIGHT, RuleKind,
    Source, Verdict,
};
use vcci_core::{Catalog, Category, Line};

use super::LineWriter;
use super::recalc::{Recalculated, Rewrite, stored_as_line};
use crate::classify::{MAX_REVIEW_ITEMS, ReviewInput, ReviewReport, ReviewedLine, RuleFromReview};
use crate::conn::{Db, Dialect, Row, Tx, args};
use crate::model::audit::{self, Actor, Change};
use crate::model::orgs::{Org, OrgId};
use crate::{Result, StoreError};

/// The stored line `id` of `org` as a `Line`, if any.
fn line_by_id(tx: &Tx<'_>, org: OrgId, id: &str) -> Result<Option<Line>> {
    let sql = match tx.dialect() {
        Dialect::Sqlite => {
            "SELECT transaction_id, day, supplier_id, body FROM transactions
             WHERE org_id = ?1 AND transaction_id = ?2"
        }
        Dialect::Postgres => {
            "SELECT t.transaction_id, t.day, t.supplier_id, t.body FROM transactions t
             WHERE t.org_id = ?1 AND t.transaction_id = ?2
               AND t.day = (SELECT day FROM transaction_keys WHERE org_id = ?1 AND transaction_id = ?2)"
        }
    };
    tx.query_opt(sql, args![org.0, id], as_line)
}

fn as_line(r: &Row<'_>) -> Result<Line> {
    stored_as_line(r.string(0)?, r.u32(1)?, r.opt_string(2)?, r.blob(3)?)
}

/// The input classification reads from a line.
fn features(line: &Line) -> Features {
    Features::of(&Input {
        description: line.description.as_deref(),
        supplier_id: line.supplier_id.as_deref(),
        supplier_name: line.supplier_name.as_deref(),
        gl_account: line.gl_account.as_deref(),
        gl_account_name: line.gl_account_name.as_deref(),
    })
}

/// The label a verdict gives a line classified `current`.
fn verdict_label(current: Label, input: &ReviewInput) -> Label {
    let mut l = match input.naics {
        Some(n) => Label {
            naics: n,
            category: Category::from_naics(n),
            capex: false,
        },
        None => current,
    };
    if let Some(c) = input.category {
        l.category = c;
    }
    if let Some(x) = input.capex {
        l.capex = x;
        if !x && input.category.is_none() && l.category == Category::CAPITAL_GOODS {
            l.category = Category::from_naics(l.naics);
        }
    }
    if l.capex {
        l.category = Category::CAPITAL_GOODS;
    }
    l
}

impl Db {
    /// Records a reviewer's verdicts on classified lines (see the module's comment): all of
    /// them or none. Errors name the item (`items[2].transaction_id`).
    pub fn review_classifications(
        &mut self,
        cat: &'static Catalog,
        org: &Org,
        items: &[ReviewInput],
        rule: Option<RuleFromReview>,
        actor: &Actor,
    ) -> Result<ReviewReport> {
        if items.is_empty() {
            return Err(StoreError::invalid("items", "names no line"));
        }
        if items.len() > MAX_REVIEW_ITEMS {
            return Err(StoreError::invalid(
                "items",
                format!(
                    "{} lines; a review names at most {MAX_REVIEW_ITEMS}",
                    items.len()
                ),
            ));
        }
        if rule.is_some() && items.len() != 1 {
            return Err(StoreError::invalid(
                "rule",
                "a rule is made from one reviewed line",
            ));
        }
        let epa = cat.epa(org.epa_version);
        let profiles = self.supplier_profiles(org.id)?;
        let tx = self.conn.begin_immediate()?;
        crate::write::turns::lock_org(&tx, org.id, None)?;
        let classifier = crate::classify::load(&tx, org.id)?;
        let mut model = classifier.model().cloned().unwrap_or_else(OrgModel::new);
        let at = crate::now_rfc3339();
        // Input hash → the reviewed classification, for the lines to write again.
        let mut by_input: HashMap<u64, std::sync::Arc<Classification>> = HashMap::new();
        let mut lines: Vec<Line> = Vec::new();
        let mut reviewed = Vec::with_capacity(items.len());
        let mut audit_items = Vec::with_capacity(items.len());
        let mut first_line: Option<(Line, Label)> = None;
        let mut seen = std::collections::HashSet::new();
        let closed = crate::model::periods::closed_years(&tx, org.id)?;
        for (i, item) in items.iter().enumerate() {
            let path = format!("items[{i}].transaction_id");
            if !seen.insert(item.transaction_id.as_str()) {
                return Err(StoreError::invalid(path, "names a line named before"));
            }
            let mut line = line_by_id(&tx, org.id, &item.transaction_id)?.ok_or_else(|| {
                StoreError::invalid(&path, format!("no line '{}'", item.transaction_id))
            })?;
            let year = line.date.map_or(0, |d| d.year());
            if closed.contains(&year) {
                return Err(StoreError::PeriodClosed {
                    year,
                    message: format!(
                        "line '{}': {}; a restatement is the way to change disclosed figures",
                        item.transaction_id,
                        crate::error::period_closed_message(year)
                    ),
                });
            }
            let Some(current) = line.classification.clone() else {
                return Err(StoreError::invalid(
                    path,
                    format!(
                        "line '{}' was not classified (it has a code, or activity data)",
                        item.transaction_id
                    ),
                ));
            };
            if let Some(n) = item.naics
                && epa.find(n).is_none()
            {
                return Err(StoreError::invalid(
                    format!("items[{i}].naics_code"),
                    format!("{n} has no factor in the organization's EPA set"),
                ));
            }
            let label = verdict_label(current.label, item);
            let verdict = if label == current.label {
                Verdict::Accepted
            } else {
                Verdict::Corrected
            };
            let f = features(&line);
            let key = f.hash64();
            // An input reviewed before: its earlier verdict is unlearned first.
            let earlier = tx.query_opt(
                "SELECT naics, category, capex FROM classification_reviews
                 WHERE org_id = ?1 AND input_hash = ?2",
                args![org.id.0, key as i64],
                |r| crate::classify::label_of(r.i64(0)?, r.i64(1)?, r.i64(2)?),
            )?;
            if let Some(old) = earlier {
                model.unlearn_weighted(&f, old, REVIEW_WEIGHT);
            }
            model.learn_weighted(&f, label, REVIEW_WEIGHT);
            // What the classifier had said (a line reviewed again keeps the first answer).
            let previous = match (&current.source, &current.evidence) {
                (Source::Review, Evidence::Review { previous, .. }) => previous.clone(),
                _ => Some(Previous {
                    label: current.label,
                    source: current.source,
                    confidence: current.confidence,
                }),
            };
            let previous_json = previous
                .as_ref()
                .map(|p| serde_json::to_string(p).unwrap_or_default());
            tx.execute(
                "DELETE FROM classification_reviews WHERE org_id = ?1 AND input_hash = ?2",
                args![org.id.0, key as i64],
            )?;
            tx.execute(
                "INSERT INTO classification_reviews (org_id, input_hash, naics, category, capex,
                   verdict, transaction_id, reviewed_by, reviewed_at, previous, description,
                   supplier_id, supplier_name, gl_account, gl_account_name)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                args![
                    org.id.0,
                    key as i64,
                    i64::from(label.naics.code()),
                    i64::from(label.category.number()),
                    i64::from(label.capex),
                    verdict.as_str(),
                    item.transaction_id.as_str(),
                    actor.label.as_str(),
                    at.as_str(),
                    previous_json.as_deref(),
                    line.description.as_deref(),
                    line.supplier_id.as_deref(),
                    line.supplier_name.as_deref(),
                    line.gl_account.as_deref(),
                    line.gl_account_name.as_deref()
                ],
            )?;
            let c = std::sync::Arc::new(Classification {
                label,
                source: Source::Review,
                confidence: 1.0,
                needs_review: false,
                evidence: Evidence::Review {
                    verdict,
                    transaction_id: item.transaction_id.clone(),
                    reviewed_by: actor.label.clone(),
                    reviewed_at: at.clone(),
                    previous: previous.clone(),
                },
            });
            by_input.insert(key, c.clone());
            line.classification = Some(c);
            audit_items.push(json!({
                "transaction_id": item.transaction_id,
                "verdict": verdict.as_str(),
                "naics_code": label.naics.to_string(),
                "category": label.category.number(),
                "capex": label.capex,
                "previous": previous,
            }));
            reviewed.push(ReviewedLine {
                transaction_id: item.transaction_id.clone(),
                verdict: verdict.as_str(),
                naics_code: label.naics.to_string(),
                category: label.category.number(),
                capex: label.capex,
            });
            if first_line.is_none() {
                first_line = Some((line.clone(), label));
            }
            lines.push(line);
        }
        // Flagged lines of the same inputs follow (their review is the same question).
        let mut kept_closed = 0u64;
        let flagged = tx.query(
            "SELECT transaction_id, day, supplier_id, body FROM transactions
             WHERE org_id = ?1 AND review = 1",
            args![org.id.0],
            as_line,
        )?;
        for mut line in flagged {
            if seen.contains(line.transaction_id.as_deref().unwrap_or_default()) {
                continue;
            }
            let Some(c) = by_input.get(&features(&line).hash64()) else {
                continue;
            };
            if closed.contains(&line.date.map_or(0, |d| d.year())) {
                kept_closed += 1;
                continue;
            }
            line.classification = Some(c.clone());
            lines.push(line);
        }
        let mut out = Recalculated::default();
        let mut writer = LineWriter::for_conn(&tx);
        Rewrite {
            org,
            profiles: &profiles,
            classifier: None,
            restating: false,
        }
        .write(&tx, cat, &mut writer, lines, &mut out)?;
        if let Some((id, e)) = out.errors.first() {
            // A line that no longer calculates with the reviewed label (a code without a
            // factor in a set the line needs): nothing is written.
            return Err(StoreError::invalid(
                "items",
                format!(
                    "line '{id}' does not calculate with the reviewed label: {}",
                    e.message
                ),
            ));
        }
        let rule = match rule {
            None => None,
            Some(r) => {
                let (line, label) = first_line.expect("one item");
                let pattern = match (r.kind, r.pattern) {
                    (_, Some(p)) => p,
                    (RuleKind::Supplier, None) => line
                        .supplier_id
                        .clone()
                        .or(line.supplier_name.clone())
                        .ok_or_else(|| {
                            StoreError::invalid("rule.pattern", "the line has no supplier")
                        })?,
                    (RuleKind::GlAccount, None) => line.gl_account.clone().ok_or_else(|| {
                        StoreError::invalid("rule.pattern", "the line has no gl_account")
                    })?,
                    (RuleKind::Keyword, None) => {
                        return Err(StoreError::invalid(
                            "rule.pattern",
                            "a keyword rule needs its pattern (the words to match)",
                        ));
                    }
                };
                Some(crate::classify::insert_rule(
                    &tx, org.id, r.kind, &pattern, label, actor,
                )?)
            }
        };
        let text = serde_json::to_string(&model)
            .map_err(|e| StoreError::internal(format!("serializing the model: {e}")))?;
        crate::classify::ensure_state(&tx, org.id)?;
        tx.execute(
            "UPDATE classification_state SET examples = ?2, model = ?3 WHERE org_id = ?1",
            args![org.id.0, i64::from(model.examples()), text.as_str()],
        )?;
        crate::classify::bump_generation(&tx, org.id)?;
        audit::append(
            &tx,
            org.id,
            actor,
            Change::new(
                "classification.reviewed",
                items[0].transaction_id.clone(),
                json!({"items": audit_items, "lines_changed": out.changed,
                       "lines_kept_closed": kept_closed}),
            )
            .with_lines(&out.digests),
        )?;
        let queue = crate::classify::queue_size(&tx, org.id)?;
        tx.commit()?;
        Ok(ReviewReport {
            reviewed,
            lines_changed: out.changed,
            lines_kept_closed: kept_closed,
            rule,
            queue,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vcci_core::Naics;

    fn n(c: u32) -> Naics {
        Naics::from_code(c).unwrap()
    }

    /// Lines classified before the review flag existed are flagged from their bodies by
    /// `finish_migrations`, once.
    #[test]
    fn finishing_the_migration_flags_lines_stored_before() {
        let dir = tempfile::tempdir().unwrap();
        let t = crate::testing::fresh_store(dir.path()).unwrap();
        let mut db = t.store.connect().unwrap();
        let org = db.ensure_org("old").unwrap();
        let c = db.load_classifier(org.id).unwrap();
        let lines: Vec<_> = [("a", "INV-1", 10.0), ("b", "Taxi to the airport", 20.0)]
            .into_iter()
            .map(|(id, d, usd)| {
                let line = Line {
                    transaction_id: Some(id.into()),
                    date: vcci_core::Date::parse("2022-02-10").ok(),
                    description: Some(d.into()),
                    amount: Some(usd),
                    currency: Some(vcci_core::Currency::USD),
                    ..Line::default()
                };
                super::super::prepare(
                    vcci_core::catalog(),
                    &org,
                    line,
                    &HashMap::new(),
                    None,
                    Some(&c),
                )
                .unwrap()
            })
            .collect();
        db.write_lines(org.id, &lines, &Vec::new(), &Actor::system("t"))
            .unwrap();
        assert_eq!(db.review_queue_size(org.id).unwrap().lines, 1);
        // As the previous version stored them.
        db.conn
            .execute("UPDATE transactions SET review = 0", &[])
            .unwrap();
        db.conn
            .execute(
                "INSERT INTO maintenance (name) VALUES ('review_flags')",
                &[],
            )
            .unwrap();
        assert_eq!(db.review_queue_size(org.id).unwrap().lines, 0);
        db.finish_migrations().unwrap();
        let q = db.review_queue(org.id, None, 10).unwrap();
        assert_eq!(q.len(), 1);
        assert_eq!(q[0].line.transaction_id, "a");
        let pending = db
            .conn
            .query_one("SELECT COUNT(*) FROM maintenance", &[], |r| r.i64(0))
            .unwrap();
        assert_eq!(pending, 0);
    }

    #[test]
    fn a_verdict_keeps_what_it_does_not_change() {
        let current = Label::of(n(541511));
        let accept = ReviewInput::default();
        assert_eq!(verdict_label(current, &accept), current);
        let code = ReviewInput {
            naics: Some(n(511210)),
            ..ReviewInput::default()
        };
        assert_eq!(verdict_label(current, &code), Label::of(n(511210)));
        let capex = ReviewInput {
            capex: Some(true),
            ..ReviewInput::default()
        };
        let l = verdict_label(current, &capex);
        assert_eq!(
            (l.naics, l.category, l.capex),
            (n(541511), Category::CAPITAL_GOODS, true)
        );
        let uncapex = ReviewInput {
            capex: Some(false),
            ..ReviewInput::default()
        };
        assert_eq!(verdict_label(l, &uncapex), current);
    }
}

/// What reclassifying an organization's lines did.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Reclassified {
    /// Lines classified by the machine (every source but a review), read.
    pub lines_read: u64,
    /// Lines whose classification or result changed.
    pub lines_changed: u64,
    /// Lines of closed years, left as they are.
    pub lines_kept_closed: u64,
    /// Lines that no longer calculate (they keep their result), with why (100 at most).
    pub errors: Vec<ReclassifyError>,
    pub errors_total: u64,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ReclassifyError {
    pub transaction_id: String,
    pub code: &'static str,
    pub message: String,
}

impl Db {
    /// Classifies again every line of `org` that the machine classified (a rule, the
    /// supplier's history, a model; a reviewed line keeps its review) with the current
    /// rules, reviews and model, in one transaction with its audit entry
    /// (`lines.reclassified`, with the lines' digests). Lines of closed years keep what they
    /// were disclosed with. Rules and training apply to lines written after them; this
    /// applies them to the lines already stored.
    pub fn reclassify_lines(
        &mut self,
        cat: &'static Catalog,
        org: &Org,
        actor: &Actor,
    ) -> Result<Reclassified> {
        let profiles = self.supplier_profiles(org.id)?;
        let tx = self.conn.begin_immediate()?;
        super::turns::lock_org(&tx, org.id, None)?;
        let classifier = crate::classify::load(&tx, org.id)?;
        let closed = crate::model::periods::closed_years(&tx, org.id)?;
        let mut out = Recalculated::default();
        let mut writer = LineWriter::for_conn(&tx);
        let (mut read, mut kept) = (0u64, 0u64);
        let mut after = String::new();
        loop {
            let page = super::recalc::load_lines(&tx, org.id, &after, None, None, 5000)?;
            let Some(last) = page.last() else { break };
            after = last.0.clone();
            let mut lines = Vec::new();
            for (_, mut line) in page {
                let machine = line
                    .classification
                    .as_ref()
                    .is_some_and(|c| c.source != Source::Review);
                if !machine {
                    continue;
                }
                read += 1;
                if closed.contains(&line.date.map_or(0, |d| d.year())) {
                    kept += 1;
                    continue;
                }
                line.classification = None;
                lines.push(line);
            }
            Rewrite {
                org,
                profiles: &profiles,
                classifier: Some(&classifier),
                restating: false,
            }
            .write(&tx, cat, &mut writer, lines, &mut out)?;
        }
        audit::append(
            &tx,
            org.id,
            actor,
            Change::new(
                "lines.reclassified",
                "",
                json!({"lines_read": read, "lines_changed": out.changed,
                       "lines_kept_closed": kept, "errors": out.errors.len()}),
            )
            .with_lines(&out.digests),
        )?;
        tx.commit()?;
        let errors_total = out.errors.len() as u64;
        Ok(Reclassified {
            lines_read: read,
            lines_changed: out.changed,
            lines_kept_closed: kept,
            errors: out
                .errors
                .into_iter()
                .take(100)
                .map(|(id, e)| ReclassifyError {
                    transaction_id: id,
                    code: e.code,
                    message: e.message,
                })
                .collect(),
            errors_total,
        })
    }
}
