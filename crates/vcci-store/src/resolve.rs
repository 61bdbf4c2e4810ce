//! Supplier resolution (issue 19): which existing supplier an incoming line belongs to.
//!
//! A line that names its supplier by **name only** ("ACME, Inc.") is matched against the
//! organization's suppliers and name aliases (`vcci_core::names`: normalized, then
//! Jaro-Winkler over trigram-blocked candidates):
//! - an equal normalized name, or a score at or above `link` (0.95): the line belongs to
//!   that supplier (`Line::supplier_link`), and the name is recorded as its alias;
//! - between `review` (0.85) and `link`: a new supplier keyed by the name, and the pair
//!   (new, closest) recorded for a person to merge or dismiss (`supplier_matches`);
//! - below: a new supplier.
//!
//! A line that names its supplier by **id** keeps it, unless the id is that of a supplier
//! merged into another (an `id` alias): then it belongs to the one it was merged into. A new
//! id whose name is close to an existing supplier's is recorded as a pair too (ids are
//! never linked by name alone: two ids are two suppliers until a person merges them).
//!
//! Resolution reads one organization's suppliers; it never looks at another's.

use std::collections::{HashMap, HashSet};

use vcci_core::Line;
use vcci_core::names::{Decision, NameIndex, Thresholds, normalize};

use crate::Result;
use crate::conn::{Conn, Tx, args};
use crate::model::orgs::OrgId;

/// A name recorded as an alias of a supplier.
#[derive(Clone, Debug, PartialEq)]
pub struct FoundAlias {
    pub alias: String,
    pub name: String,
    pub supplier_id: String,
    pub score: f64,
}

/// A pair of suppliers that may be one.
#[derive(Clone, Debug, PartialEq)]
pub struct FoundPair {
    pub supplier_id: String,
    pub candidate_id: String,
    pub score: f64,
}

/// What a name resolved to (memoized per resolver).
#[derive(Clone, Debug, PartialEq)]
enum Resolved {
    /// The line's own key is the supplier (existing, or new).
    Itself,
    Linked(String),
}

/// One organization's suppliers, names and aliases, for resolving the lines of one write.
#[derive(Debug)]
pub struct SupplierResolver {
    index: NameIndex<String>,
    /// Supplier keys that exist (or that this write creates).
    keys: HashSet<String>,
    /// Ids of suppliers merged into another → the supplier they belong to.
    merged_ids: HashMap<String, String>,
    thresholds: Thresholds,
    memo: HashMap<String, Resolved>,
    /// Aliases and pairs found, to record (`record`).
    pub aliases: Vec<FoundAlias>,
    pub pairs: Vec<FoundPair>,
}

impl SupplierResolver {
    /// The organization's suppliers and aliases, read with `conn`.
    pub(crate) fn load(conn: &Conn, org: OrgId) -> Result<SupplierResolver> {
        let mut index = NameIndex::new();
        let mut keys = HashSet::new();
        // Oldest name first: an equal normalized name keeps its first supplier.
        for (id, name) in conn.query(
            "SELECT supplier_id, name FROM suppliers WHERE org_id = ?1 ORDER BY updated_at, supplier_id",
            args![org.0],
            |r| Ok((r.string(0)?, r.string(1)?)),
        )? {
            index.insert(&name, id.clone());
            keys.insert(id);
        }
        let mut merged_ids = HashMap::new();
        for (kind, alias, to) in conn.query(
            "SELECT kind, alias, supplier_id FROM supplier_aliases WHERE org_id = ?1 ORDER BY created_at, alias",
            args![org.0],
            |r| Ok((r.string(0)?, r.string(1)?, r.string(2)?)),
        )? {
            if kind == "id" {
                merged_ids.insert(alias, to);
            } else {
                index.insert(&alias, to);
            }
        }
        Ok(SupplierResolver {
            index,
            keys,
            merged_ids,
            thresholds: Thresholds::default(),
            memo: HashMap::new(),
            aliases: Vec::new(),
            pairs: Vec::new(),
        })
    }

    /// Whether resolving `line` can change anything (a supplier this resolver does not know
    /// as it is named): callers load a resolver only when some line needs one.
    pub fn may_need(line: &Line, known: impl Fn(&str) -> bool) -> bool {
        line.supplier_link.is_none() && line.supplier_key().is_some_and(|k| !known(k))
    }

    /// Sets `line.supplier_link` when the line belongs to another supplier than the one it
    /// names; records what it found. A line resolved before (read back from the store)
    /// keeps its link.
    pub fn resolve(&mut self, line: &mut Line) {
        if line.supplier_link.is_some() {
            return;
        }
        if let Some(id) = line.supplier_id.as_deref() {
            if self.keys.contains(id) {
                return;
            }
            if let Some(to) = self.merged_ids.get(id) {
                line.supplier_link = Some(to.clone());
                return;
            }
            // A new id: a pair when its name is close to another supplier's.
            if let Some(name) = line.supplier_name.as_deref()
                && let Decision::Link { key, score } | Decision::Review { key, score } =
                    self.index.decide(name, self.thresholds)
                && key != id
            {
                self.pairs.push(FoundPair {
                    supplier_id: id.to_owned(),
                    candidate_id: key,
                    score,
                });
            }
            self.keys.insert(id.to_owned());
            if let Some(name) = line.supplier_name.as_deref() {
                self.index.insert(name, id.to_owned());
            }
            return;
        }
        let Some(name) = line.supplier_name.as_deref() else {
            return;
        };
        if self.keys.contains(name) {
            return;
        }
        if let Some(to) = self.merged_ids.get(name) {
            line.supplier_link = Some(to.clone());
            return;
        }
        let r = match self.memo.get(name) {
            Some(r) => r.clone(),
            None => {
                let r = self.decide(name);
                self.memo.insert(name.to_owned(), r.clone());
                r
            }
        };
        if let Resolved::Linked(key) = r {
            line.supplier_link = Some(key);
        }
    }

    fn decide(&mut self, name: &str) -> Resolved {
        match self.index.decide(name, self.thresholds) {
            Decision::Link { key, score } if key != name => {
                self.aliases.push(FoundAlias {
                    alias: normalize(name),
                    name: name.to_owned(),
                    supplier_id: key.clone(),
                    score,
                });
                Resolved::Linked(key)
            }
            Decision::Link { .. } => Resolved::Itself,
            d => {
                if let Decision::Review { key, score } = d {
                    self.pairs.push(FoundPair {
                        supplier_id: name.to_owned(),
                        candidate_id: key,
                        score,
                    });
                }
                // A new supplier keyed by its name: later spellings of it link to it.
                self.keys.insert(name.to_owned());
                self.index.insert(name, name.to_owned());
                Resolved::Itself
            }
        }
    }

    /// Takes what was found (to record after the write).
    pub fn take_found(&mut self) -> (Vec<FoundAlias>, Vec<FoundPair>) {
        (
            std::mem::take(&mut self.aliases),
            std::mem::take(&mut self.pairs),
        )
    }
}

/// Records aliases and pairs found by resolution, in `tx` (an alias or a pair known
/// already is kept as it was).
pub(crate) fn record(
    tx: &Tx<'_>,
    org: OrgId,
    aliases: &[FoundAlias],
    pairs: &[FoundPair],
) -> Result<()> {
    let now = crate::now_rfc3339();
    for a in aliases {
        tx.execute(
            "INSERT INTO supplier_aliases (org_id, kind, alias, supplier_id, name, source, score,
               created_at) VALUES (?1, 'name', ?2, ?3, ?4, 'linked', ?5, ?6)
             ON CONFLICT (org_id, kind, alias) DO NOTHING",
            args![
                org.0,
                a.alias.as_str(),
                a.supplier_id.as_str(),
                a.name.as_str(),
                a.score,
                now.as_str()
            ],
        )?;
    }
    for p in pairs {
        tx.execute(
            "INSERT INTO supplier_matches (org_id, supplier_id, candidate_id, score, status,
               created_at) VALUES (?1, ?2, ?3, ?4, 'open', ?5)
             ON CONFLICT (org_id, supplier_id, candidate_id) DO NOTHING",
            args![
                org.0,
                p.supplier_id.as_str(),
                p.candidate_id.as_str(),
                p.score,
                now.as_str()
            ],
        )?;
    }
    Ok(())
}

impl crate::conn::Db {
    /// Records what a resolver found (after the write of its lines: an alias of a line
    /// whose write failed still names its supplier rightly).
    pub fn record_resolution(&mut self, org: OrgId, r: &mut SupplierResolver) -> Result<()> {
        let (aliases, pairs) = r.take_found();
        if aliases.is_empty() && pairs.is_empty() {
            return Ok(());
        }
        let tx = self.conn.begin_immediate()?;
        record(&tx, org, &aliases, &pairs)?;
        tx.commit()
    }

    /// The organization's resolver: its suppliers and aliases.
    pub fn supplier_resolver(&self, org: OrgId) -> Result<SupplierResolver> {
        SupplierResolver::load(&self.conn, org)
    }
}

/// A candidate pair as listed for review.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SupplierMatch {
    pub id: i64,
    /// The newer supplier (made from a name or an id the organization had not seen).
    pub supplier_id: String,
    pub supplier_name: String,
    /// The existing supplier it may be.
    pub candidate_id: String,
    pub candidate_name: String,
    pub score: f64,
    pub status: String,
    pub created_at: String,
    pub decided_at: Option<String>,
    pub decided_by: Option<String>,
}

/// An alias as listed.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SupplierAlias {
    /// `name` (normalized) or `id` (of a merged supplier).
    pub kind: String,
    pub alias: String,
    pub supplier_id: String,
    /// As first seen.
    pub name: String,
    /// `linked` (by resolution) or `merged`.
    pub source: String,
    pub score: f64,
    pub merge_id: Option<i64>,
    pub created_at: String,
}

impl crate::conn::Db {
    /// Candidate pairs of `status` (`open`, `merged`, `dismissed`; all if none), best score
    /// first, both suppliers existing; with `q`, of suppliers whose id or name contains it
    /// (case-insensitive).
    pub fn supplier_matches(
        &self,
        org: OrgId,
        status: Option<&str>,
        q: Option<&str>,
        limit: usize,
    ) -> Result<Vec<SupplierMatch>> {
        use crate::model::suppliers::{contains_pattern, like_ignoring_case};
        let pattern = q.map(contains_pattern);
        let like = like_ignoring_case(self.conn.dialect());
        self.conn.query(
            &format!(
                "SELECT m.id, m.supplier_id, a.name, m.candidate_id, b.name, m.score, m.status,
                   m.created_at, m.decided_at, m.decided_by
                 FROM supplier_matches m
                 JOIN suppliers a ON a.org_id = m.org_id AND a.supplier_id = m.supplier_id
                 JOIN suppliers b ON b.org_id = m.org_id AND b.supplier_id = m.candidate_id
                 WHERE m.org_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR m.status = ?2)
                   AND (CAST(?4 AS TEXT) IS NULL OR m.supplier_id {like} ?4 ESCAPE '\\'
                        OR a.name {like} ?4 ESCAPE '\\' OR m.candidate_id {like} ?4 ESCAPE '\\'
                        OR b.name {like} ?4 ESCAPE '\\')
                 ORDER BY m.score DESC, m.id LIMIT ?3"
            ),
            args![org.0, status, limit as i64, pattern.as_deref()],
            |r| {
                Ok(SupplierMatch {
                    id: r.i64(0)?,
                    supplier_id: r.string(1)?,
                    supplier_name: r.string(2)?,
                    candidate_id: r.string(3)?,
                    candidate_name: r.string(4)?,
                    score: r.f64(5)?,
                    status: r.string(6)?,
                    created_at: r.string(7)?,
                    decided_at: r.opt_string(8)?,
                    decided_by: r.opt_string(9)?,
                })
            },
        )
    }

    /// One candidate pair.
    pub fn supplier_match(&self, org: OrgId, id: i64) -> Result<Option<(String, String, String)>> {
        self.conn.query_opt(
            "SELECT supplier_id, candidate_id, status FROM supplier_matches
             WHERE org_id = ?1 AND id = ?2",
            args![org.0, id],
            |r| Ok((r.string(0)?, r.string(1)?, r.string(2)?)),
        )
    }

    /// Dismisses an open pair (they are two suppliers); false if there is no open pair `id`.
    pub fn dismiss_supplier_match(
        &mut self,
        org: OrgId,
        id: i64,
        actor: &crate::Actor,
    ) -> Result<bool> {
        let tx = self.conn.begin_immediate()?;
        let n = tx.execute(
            "UPDATE supplier_matches SET status = 'dismissed', decided_at = ?3, decided_by = ?4
             WHERE org_id = ?1 AND id = ?2 AND status = 'open'",
            args![
                org.0,
                id,
                crate::now_rfc3339().as_str(),
                actor.label.as_str()
            ],
        )?;
        if n > 0 {
            crate::model::audit::append(
                &tx,
                org,
                actor,
                crate::model::audit::Change::new(
                    "supplier_match.dismissed",
                    id.to_string(),
                    serde_json::json!({}),
                ),
            )?;
        }
        tx.commit()?;
        Ok(n > 0)
    }

    /// The aliases of `org` (of one supplier, if given), by supplier then alias.
    pub fn supplier_aliases(
        &self,
        org: OrgId,
        supplier: Option<&str>,
        limit: usize,
    ) -> Result<Vec<SupplierAlias>> {
        self.conn.query(
            "SELECT kind, alias, supplier_id, name, source, score, merge_id, created_at
             FROM supplier_aliases WHERE org_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR supplier_id = ?2)
             ORDER BY supplier_id, kind, alias LIMIT ?3",
            args![org.0, supplier, limit as i64],
            |r| {
                Ok(SupplierAlias {
                    kind: r.string(0)?,
                    alias: r.string(1)?,
                    supplier_id: r.string(2)?,
                    name: r.string(3)?,
                    source: r.string(4)?,
                    score: r.f64(5)?,
                    merge_id: r.opt_i64(6)?,
                    created_at: r.string(7)?,
                })
            },
        )
    }
}
