//! The review loop of classification (issue 19), its reading side: the queue of lines
//! flagged for review, largest spend first (the `review` column and its partial index), and
//! the organization's remembered reviews, which its classifier asks first and training
//! learns from. The verdicts themselves are written by `write::review`.

use serde::Serialize;
use vcci_core::classify::{
    Evidence, Features, Input, Label, Previous, Reviewed, Reviews, RuleKind, Verdict,
};
use vcci_core::{Category, Naics};

use super::{RuleView, label_of};
use crate::conn::{Arg, Db, Row, Tx, args};
use crate::model::lines::{READ_COLS, StoredLine, stored_line_at};
use crate::model::orgs::OrgId;
use crate::{Result, StoreError};

/// A line of the review queue: the line with its result and classification, and its spend.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReviewItem {
    pub spend_usd: f64,
    #[serde(flatten)]
    pub line: StoredLine,
}

/// How much waits for review.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct QueueSize {
    pub lines: u64,
    pub spend_usd: f64,
    pub co2e_kg: f64,
}

/// A reviewer's verdict on one line: accept its classification (no field given), or
/// correct it. A new code without a category takes the code's category and no capital
/// flag; a category or capital flag alone keeps the code.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReviewInput {
    pub transaction_id: String,
    pub naics: Option<Naics>,
    pub category: Option<Category>,
    pub capex: Option<bool>,
}

/// A rule to make from a reviewed line, with its label: of its supplier, its ledger
/// account, or a keyword (which needs the pattern).
#[derive(Clone, Debug, PartialEq)]
pub struct RuleFromReview {
    pub kind: RuleKind,
    pub pattern: Option<String>,
}

/// What a review did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReviewReport {
    /// Per reviewed line: the verdict and the label.
    pub reviewed: Vec<ReviewedLine>,
    /// Lines written again (the reviewed ones and flagged lines of the same inputs).
    pub lines_changed: u64,
    /// Flagged lines of the same inputs left as they are: of a closed year.
    pub lines_kept_closed: u64,
    pub rule: Option<RuleView>,
    pub queue: QueueSize,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReviewedLine {
    pub transaction_id: String,
    pub verdict: &'static str,
    pub naics_code: String,
    pub category: u8,
    pub capex: bool,
}

/// Lines a review names at most.
pub const MAX_REVIEW_ITEMS: usize = 1000;

/// The organization's reviews, for its classifier.
pub(super) fn load_reviews(conn: &crate::conn::Conn, org: OrgId) -> Result<Reviews> {
    let mut reviews = Reviews::default();
    for (key, r) in conn.query(
        "SELECT input_hash, naics, category, capex, verdict, transaction_id, reviewed_by,
           reviewed_at, previous FROM classification_reviews WHERE org_id = ?1",
        args![org.0],
        |r| Ok((r.i64(0)? as u64, reviewed_row(r, 1)?)),
    )? {
        reviews.insert(key, r);
    }
    Ok(reviews)
}

/// A `classification_reviews` row from its `naics` column on.
fn reviewed_row(r: &Row<'_>, o: usize) -> Result<Reviewed> {
    let verdict = match r.str(o + 3)? {
        "accepted" => Verdict::Accepted,
        "corrected" => Verdict::Corrected,
        v => return Err(StoreError::corrupt(format!("a review's verdict '{v}'"))),
    };
    let previous = r
        .opt_string(o + 7)?
        .map(|p| serde_json::from_str::<Previous>(&p))
        .transpose()
        .map_err(|e| StoreError::corrupt(format!("a review's previous classification: {e}")))?;
    Ok(Reviewed {
        label: label_of(r.i64(o)?, r.i64(o + 1)?, r.i64(o + 2)?)?,
        evidence: Evidence::Review {
            verdict,
            transaction_id: r.string(o + 4)?,
            reviewed_by: r.string(o + 5)?,
            reviewed_at: r.string(o + 6)?,
            previous,
        },
    })
}

/// The inputs of the organization's reviews with their labels, to train the model again.
pub(super) fn reviewed_inputs(
    conn: &crate::conn::Conn,
    org: OrgId,
) -> Result<Vec<(Features, Label)>> {
    conn.query(
        "SELECT description, supplier_id, supplier_name, gl_account, gl_account_name, naics,
           category, capex FROM classification_reviews WHERE org_id = ?1",
        args![org.0],
        |r| {
            let (d, si, sn, ga, gn) = (
                r.opt_string(0)?,
                r.opt_string(1)?,
                r.opt_string(2)?,
                r.opt_string(3)?,
                r.opt_string(4)?,
            );
            let f = Features::of(&Input {
                description: d.as_deref(),
                supplier_id: si.as_deref(),
                supplier_name: sn.as_deref(),
                gl_account: ga.as_deref(),
                gl_account_name: gn.as_deref(),
            });
            Ok((f, label_of(r.i64(5)?, r.i64(6)?, r.i64(7)?)?))
        },
    )
}

/// Sets the review flag of `org`'s stored lines from their bodies (lines classified before
/// the flag existed: `Db::finish_migrations`).
pub(crate) fn flag_stored_lines(tx: &Tx<'_>, org: OrgId) -> Result<()> {
    let mut flagged: Vec<(u32, String)> = Vec::new();
    tx.for_each(
        "SELECT transaction_id, day, body FROM transactions WHERE org_id = ?1",
        args![org.0],
        |r: &Row<'_>| {
            let b = crate::codec::Body::decode(r.blob(2)?)?;
            let c = crate::model::coverage::SourceAndReview::of(&b)?;
            if c.is_some_and(|c| c.needs_review) {
                flagged.push((r.u32(1)?, r.string(0)?));
            }
            Ok(())
        },
    )?;
    for (day, id) in flagged {
        tx.execute(
            "UPDATE transactions SET review = 1 WHERE org_id = ?1 AND day = ?2 AND transaction_id = ?3",
            args![org.0, day, id.as_str()],
        )?;
    }
    Ok(())
}

pub(crate) fn queue_size(conn: &crate::conn::Conn, org: OrgId) -> Result<QueueSize> {
    conn.query_one(
        "SELECT COUNT(*), COALESCE(SUM(spend_usd), 0), COALESCE(SUM(co2e_kg), 0)
         FROM transactions WHERE org_id = ?1 AND review = 1",
        args![org.0],
        |r| {
            Ok(QueueSize {
                lines: r.i64(0)? as u64,
                spend_usd: r.f64(1)?,
                co2e_kg: r.f64(2)?,
            })
        },
    )
}

impl Db {
    /// Lines flagged for review, largest spend first (then by transaction_id), after
    /// `after` (the spend and id of the last line of the previous page).
    pub fn review_queue(
        &self,
        org: OrgId,
        after: Option<(f64, String)>,
        limit: usize,
    ) -> Result<Vec<ReviewItem>> {
        let limit = limit as i64;
        let base = format!(
            "SELECT spend_usd, {READ_COLS} FROM transactions WHERE org_id = ?1 AND review = 1"
        );
        let (sql, args): (String, Vec<Arg<'_>>) = match &after {
            None => (
                format!("{base} ORDER BY spend_usd DESC, transaction_id LIMIT ?2"),
                vec![Arg::Int(org.0), Arg::Int(limit)],
            ),
            Some((spend, id)) => (
                format!(
                    "{base} AND (spend_usd < ?2 OR (spend_usd = ?2 AND transaction_id > ?3))
                     ORDER BY spend_usd DESC, transaction_id LIMIT ?4"
                ),
                vec![
                    Arg::Int(org.0),
                    Arg::Real(*spend),
                    Arg::Text(id),
                    Arg::Int(limit),
                ],
            ),
        };
        self.conn.query(&sql, &args, |r| {
            Ok(ReviewItem {
                spend_usd: r.opt_f64(0)?.unwrap_or(0.0),
                line: stored_line_at(r, 1)?,
            })
        })
    }

    /// How many lines, how much spend and how many emissions wait for review.
    pub fn review_queue_size(&self, org: OrgId) -> Result<QueueSize> {
        queue_size(&self.conn, org)
    }
}
