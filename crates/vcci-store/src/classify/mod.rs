//! Classification in the store (issue 19): an organization's rules and learned model
//! (`classification_rules`, `classification_state`), loaded as an `OrgClassifier` by the
//! write paths; the process-wide cache of answers by normalized input; the counters
//! `/metrics` shows; and training the model from the organization's lines.
//!
//! What is learned from: lines whose NAICS code the organization gave (on the line), and
//! the inputs a person reviewed (`review.rs`, each counted `REVIEW_WEIGHT` times). The
//! classifier's own answers are never learned from, so it cannot reinforce its mistakes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Instant;

use serde::Serialize;
use serde_json::json;
use vcci_core::classify::{
    Builtin, Classification, Classifier, DEFAULT_REVIEW_BELOW, Features, Input, Label, OrgModel,
    Outcome, REVIEW_WEIGHT, Reviews, Rule, RuleKind, Rules, Source, Term, check_pattern,
};
use vcci_core::{Category, Line, Naics};

use crate::codec::Body;
use crate::conn::Tx;
use crate::conn::{Conn, Db, Row, args};
use crate::model::audit::{self, Actor, Change};
use crate::model::orgs::OrgId;
use crate::{Result, StoreError};

mod review;

pub use self::review::{
    MAX_REVIEW_ITEMS, QueueSize, ReviewInput, ReviewItem, ReviewReport, ReviewedLine,
    RuleFromReview,
};
pub(crate) use self::review::{flag_stored_lines, queue_size};
pub use crate::model::coverage::{
    COVERAGE_SUPPLIERS, Coverage, CoverageRow, CoverageTotals, UnclassifiedSupplier,
};

/// An organization's classifier, as loaded for a write.
#[derive(Clone, Debug)]
pub struct OrgClassifier {
    org: OrgId,
    /// Changes with every rule, setting or model change (a new unique value): the cache
    /// key's part that makes older answers unreachable.
    generation: i64,
    reviews: Reviews,
    rules: Rules,
    model: Option<OrgModel>,
    review_below: f32,
}

/// Answers kept at most (all organizations); the cache is emptied when full.
const CACHE_CAPACITY: usize = 200_000;

/// Keys remembered as seen once, at most (see `Cache`).
const SEEN_CAPACITY: usize = 1_000_000;

/// (organization, generation, hash of the input): the hash is of the raw fields (bit 0
/// clear) or of the normalized features (bit 0 set), so an exact repeat skips normalizing.
type CacheKey = (i64, i64, u64);

/// An answer as cached: a classification shared by every line it is given to, with its
/// trail's JSON serialized once.
#[derive(Clone, Debug)]
pub enum Answer {
    Classified {
        classification: Arc<Classification>,
        json: Arc<str>,
    },
    Electricity(Vec<Term>),
}

/// The answers cached, and the keys seen once. An answer is cached the second time its key
/// is seen: a file whose every description is unique (an invoice number in each) would
/// otherwise fill the cache with answers never asked for again (each with its trail), while
/// a recurring input costs one more computation.
#[derive(Default)]
struct Cache {
    answers: HashMap<CacheKey, Answer>,
    seen: std::collections::HashSet<CacheKey>,
}

impl Cache {
    /// Caches `a` under `key` if the key was seen before; else remembers it as seen.
    fn offer(&mut self, key: CacheKey, a: &Answer) {
        if self.answers.contains_key(&key) {
            return;
        }
        if !self.seen.insert(key) {
            self.seen.remove(&key);
            if self.answers.len() >= CACHE_CAPACITY {
                self.answers.clear();
            }
            self.answers.insert(key, a.clone());
        } else if self.seen.len() >= SEEN_CAPACITY {
            self.seen.clear();
        }
    }
}

static CACHE: LazyLock<Mutex<Cache>> = LazyLock::new(|| Mutex::new(Cache::default()));

/// A cached answer (counted as a hit).
fn cached(key: &CacheKey) -> Option<Answer> {
    let a = CACHE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .answers
        .get(key)
        .cloned();
    if a.is_some() {
        HITS.fetch_add(1, Ordering::Relaxed);
    }
    a
}

/// FNV-1a over the raw fields of a line that classification reads.
fn raw_hash(line: &Line) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for f in [
        &line.description,
        &line.supplier_id,
        &line.supplier_name,
        &line.gl_account,
        &line.gl_account_name,
    ] {
        match f {
            Some(v) => {
                for &b in v.as_bytes() {
                    h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
                }
                h = (h ^ 0xfe).wrapping_mul(0x0100_0000_01b3);
            }
            None => h = (h ^ 0xff).wrapping_mul(0x0100_0000_01b3),
        }
    }
    h
}

static HITS: AtomicU64 = AtomicU64::new(0);
static MISSES: AtomicU64 = AtomicU64::new(0);
static BY_SOURCE: [AtomicU64; 5] = [const { AtomicU64::new(0) }; 5];
static ENERGY: AtomicU64 = AtomicU64::new(0);
static REVIEW: AtomicU64 = AtomicU64::new(0);

/// Counters since the process started, for `/metrics`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ClassifyStats {
    pub cache_hits: u64,
    pub cache_misses: u64,
    /// Lines classified, by source (`Source::ALL` order).
    pub by_source: [(&'static str, u64); 5],
    /// Lines flagged for review.
    pub needs_review: u64,
    /// Lines refused as purchased energy (Scope 2).
    pub purchased_energy: u64,
}

pub fn stats() -> ClassifyStats {
    let mut by_source = [("", 0); 5];
    for (i, s) in Source::ALL.iter().enumerate() {
        by_source[i] = (s.as_str(), BY_SOURCE[i].load(Ordering::Relaxed));
    }
    ClassifyStats {
        cache_hits: HITS.load(Ordering::Relaxed),
        cache_misses: MISSES.load(Ordering::Relaxed),
        by_source,
        needs_review: REVIEW.load(Ordering::Relaxed),
        purchased_energy: ENERGY.load(Ordering::Relaxed),
    }
}

/// Whether `line` needs classification unless its supplier has a code: a spend without a
/// code and without an activity factor, not classified yet. Callers load an organization's
/// classifier only when some line may need it.
pub fn may_need_classification(line: &Line) -> bool {
    line.classification.is_none()
        && line.naics.is_none()
        && line.activity_id.is_none()
        && line.amount.is_some()
}

/// Classifies `line` when it needs a code (a spend without one of its own or of its
/// supplier, and without an activity factor) and has no classification yet; returns the
/// classification's JSON when it gave one. A line that reads as purchased electricity or
/// heat is refused (`purchased_energy`).
pub fn classify_line(
    classifier: &OrgClassifier,
    line: &mut Line,
    profile: Option<&vcci_core::SupplierProfile>,
) -> std::result::Result<Option<Arc<str>>, vcci_core::LineError> {
    let needs = may_need_classification(line) && profile.and_then(|p| p.naics).is_none();
    if !needs {
        return Ok(None);
    }
    match classifier.classify(line) {
        Answer::Classified {
            classification,
            json,
        } => {
            line.classification = Some(classification);
            Ok(Some(json))
        }
        Answer::Electricity(terms) => Err(purchased_energy(&terms)),
    }
}

/// The refusal of a line classification reads as purchased electricity or heat.
fn purchased_energy(terms: &[Term]) -> vcci_core::LineError {
    use vcci_core::classify::TextField;
    use vcci_core::line::Field;
    let said: Vec<String> = terms.iter().map(|t| format!("'{}'", t.term)).collect();
    let field = match terms.first().map(|t| t.field) {
        Some(TextField::GlAccountName) => Field::GlAccountName,
        Some(TextField::SupplierName) => Field::SupplierName,
        _ => Field::Description,
    };
    vcci_core::LineError::new(
        field,
        "purchased_energy",
        format!(
            "reads as purchased electricity or heat ({}): that is the company's Scope 2, not \
             Scope 3 spend; import its kWh with an activity_id (`vcci factors search \
             electricity`) to book its category 3 share, or give the line a naics_code",
            said.join(", ")
        ),
    )
}

impl OrgClassifier {
    /// The built-in model alone (an organization without rules or a model).
    pub fn builtin(org: OrgId) -> OrgClassifier {
        OrgClassifier {
            org,
            generation: 0,
            reviews: Reviews::default(),
            rules: Rules::default(),
            model: None,
            review_below: DEFAULT_REVIEW_BELOW,
        }
    }

    pub fn review_below(&self) -> f32 {
        self.review_below
    }

    /// The organization model, if trained or taught by reviews.
    pub fn model(&self) -> Option<&OrgModel> {
        self.model.as_ref()
    }

    /// Classifies a line from its description, supplier and ledger account. Answers are
    /// cached by the input (raw, then normalized), the organization and the generation.
    pub fn classify(&self, line: &Line) -> Answer {
        let raw = (self.org.0, self.generation, raw_hash(line) & !1);
        let answer = match cached(&raw) {
            Some(a) => a,
            None => {
                let f = Features::of(&Input {
                    description: line.description.as_deref(),
                    supplier_id: line.supplier_id.as_deref(),
                    supplier_name: line.supplier_name.as_deref(),
                    gl_account: line.gl_account.as_deref(),
                    gl_account_name: line.gl_account_name.as_deref(),
                });
                let normalized = (self.org.0, self.generation, f.hash64() | 1);
                let a = cached(&normalized).unwrap_or_else(|| {
                    MISSES.fetch_add(1, Ordering::Relaxed);
                    self.compute(&f)
                });
                let mut c = CACHE.lock().unwrap_or_else(|e| e.into_inner());
                c.offer(normalized, &a);
                c.offer(raw, &a);
                a
            }
        };
        match &answer {
            Answer::Classified { classification, .. } => {
                let i = Source::ALL
                    .iter()
                    .position(|s| *s == classification.source)
                    .unwrap_or(0);
                BY_SOURCE[i].fetch_add(1, Ordering::Relaxed);
                if classification.needs_review {
                    REVIEW.fetch_add(1, Ordering::Relaxed);
                }
            }
            Answer::Electricity(_) => {
                ENERGY.fetch_add(1, Ordering::Relaxed);
            }
        }
        answer
    }

    fn compute(&self, f: &Features) -> Answer {
        let out = Classifier {
            reviews: Some(&self.reviews),
            rules: &self.rules,
            model: self.model.as_ref(),
            builtin: Builtin::get(),
            review_below: self.review_below,
        }
        .classify_features(f);
        match out {
            Outcome::Classified(c) => Answer::Classified {
                json: serde_json::to_string(&c).unwrap_or_default().into(),
                classification: Arc::new(c),
            },
            Outcome::Electricity { terms } => Answer::Electricity(terms),
        }
    }
}

/// A rule as the API and CLI show it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RuleView {
    pub id: i64,
    pub kind: &'static str,
    pub pattern: String,
    pub naics_code: String,
    pub category: u8,
    pub capex: bool,
    pub created_at: String,
    pub created_by: String,
}

/// The learned state of an organization, as the API and CLI show it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassificationState {
    pub generation: i64,
    pub review_below: f64,
    /// Lines the organization model learned from.
    pub examples: u32,
    pub trained_at: Option<String>,
    pub rules: usize,
}

/// What training did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrainReport {
    /// Lines read, and those learned from (they carry their own NAICS code).
    pub lines_read: u64,
    pub examples: u32,
    /// Reviewed inputs learned from (each counts `REVIEW_WEIGHT` in `examples`).
    pub reviews: u32,
    pub seconds: f64,
    pub generation: i64,
}

/// Limits: rules per organization.
pub const MAX_RULES: i64 = 10_000;

pub(crate) fn label_of(naics: i64, category: i64, capex: i64) -> Result<Label> {
    let bad = || StoreError::corrupt("a classification rule's label is out of range");
    let naics = u32::try_from(naics)
        .ok()
        .and_then(Naics::from_code)
        .ok_or_else(bad)?;
    let category = u8::try_from(category)
        .ok()
        .and_then(Category::new)
        .ok_or_else(bad)?;
    Ok(Label {
        naics,
        category,
        capex: capex != 0,
    })
}

fn rule_rows(conn: &Conn, org: OrgId) -> Result<Vec<(Rule, String, String)>> {
    conn.query(
        "SELECT id, kind, pattern, naics, category, capex, created_at, created_by
             FROM classification_rules WHERE org_id = ?1 ORDER BY id",
        args![org.0],
        |r| {
            let kind = RuleKind::parse(r.str(1)?)
                .ok_or_else(|| StoreError::corrupt("a classification rule's kind"))?;
            Ok((
                Rule {
                    id: r.i64(0)?,
                    kind,
                    pattern: r.string(2)?,
                    label: label_of(r.i64(3)?, r.i64(4)?, r.i64(5)?)?,
                },
                r.string(6)?,
                r.string(7)?,
            ))
        },
    )
}

/// Classifiers loaded, by organization: reused while the organization's generation is the
/// same (one small query instead of reading the rules and parsing the model).
static LOADED: LazyLock<Mutex<HashMap<i64, Arc<OrgClassifier>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The organization's classifier (its rules, model and threshold), read with `conn`.
pub(crate) fn load(conn: &Conn, org: OrgId) -> Result<Arc<OrgClassifier>> {
    let generation = conn
        .query_opt(
            "SELECT generation FROM classification_state WHERE org_id = ?1",
            args![org.0],
            |r| r.i64(0),
        )?
        .unwrap_or(0);
    if let Some(c) = LOADED.lock().unwrap_or_else(|e| e.into_inner()).get(&org.0)
        && c.generation == generation
    {
        return Ok(c.clone());
    }
    let c = Arc::new(load_fresh(conn, org)?);
    let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    if loaded.len() >= 10_000 {
        loaded.clear();
    }
    loaded.insert(org.0, c.clone());
    Ok(c)
}

fn load_fresh(conn: &Conn, org: OrgId) -> Result<OrgClassifier> {
    let rules: Vec<Rule> = rule_rows(conn, org)?.into_iter().map(|r| r.0).collect();
    let state = conn.query_opt(
        "SELECT generation, review_below, model FROM classification_state WHERE org_id = ?1",
        args![org.0],
        |r| Ok((r.i64(0)?, r.f64(1)?, r.opt_string(2)?)),
    )?;
    let (generation, review_below, model) = match state {
        Some((g, rb, m)) => (g, rb as f32, m),
        None => (0, DEFAULT_REVIEW_BELOW, None),
    };
    let model = match model {
        Some(m) => Some(serde_json::from_str::<OrgModel>(&m).map_err(|e| {
            StoreError::corrupt(format!("the classification model does not parse: {e}"))
        })?),
        None => None,
    };
    Ok(OrgClassifier {
        org,
        generation,
        reviews: review::load_reviews(conn, org)?,
        rules: Rules::new(rules),
        model: model.filter(|m| m.examples() > 0),
        review_below,
    })
}

impl Db {
    /// The organization's rules, oldest first.
    pub fn classification_rules(&self, org: OrgId) -> Result<Vec<RuleView>> {
        Ok(rule_rows(&self.conn, org)?
            .into_iter()
            .map(|(r, at, by)| RuleView {
                id: r.id,
                kind: r.kind.as_str(),
                pattern: r.pattern,
                naics_code: r.label.naics.to_string(),
                category: r.label.category.number(),
                capex: r.label.capex,
                created_at: at,
                created_by: by,
            })
            .collect())
    }

    /// The organization's classifier: its rules, model and threshold.
    pub fn load_classifier(&self, org: OrgId) -> Result<Arc<OrgClassifier>> {
        load(&self.conn, org)
    }

    /// The organization's learned state and settings.
    pub fn classification_state(&self, org: OrgId) -> Result<ClassificationState> {
        let rules = self.conn.query_one(
            "SELECT COUNT(*) FROM classification_rules WHERE org_id = ?1",
            args![org.0],
            |r| r.i64(0),
        )? as usize;
        let s = self.conn.query_opt(
            "SELECT generation, review_below, examples, trained_at FROM classification_state
             WHERE org_id = ?1",
            args![org.0],
            |r| {
                Ok(ClassificationState {
                    generation: r.i64(0)?,
                    review_below: r.f64(1)?,
                    examples: u32::try_from(r.i64(2)?).unwrap_or(0),
                    trained_at: r.opt_string(3)?,
                    rules,
                })
            },
        )?;
        Ok(s.unwrap_or(ClassificationState {
            generation: 0,
            review_below: f64::from(DEFAULT_REVIEW_BELOW),
            examples: 0,
            trained_at: None,
            rules,
        }))
    }

    /// Adds a rule. A rule of the same kind and pattern is replaced (its id changes).
    pub fn add_classification_rule(
        &mut self,
        org: OrgId,
        kind: RuleKind,
        pattern: &str,
        label: Label,
        actor: &Actor,
    ) -> Result<RuleView> {
        if vcci_core::catalog()
            .epa(vcci_core::EpaVersion::V1_3_0)
            .find(label.naics)
            .is_none()
        {
            return Err(StoreError::invalid(
                "naics_code",
                format!("{} has no factor in the EPA set", label.naics),
            ));
        }
        let tx = self.conn.begin_immediate()?;
        let view = insert_rule(&tx, org, kind, pattern, label, actor)?;
        tx.commit()?;
        Ok(view)
    }

    /// Deletes a rule; false if the organization has none of that id.
    pub fn delete_classification_rule(
        &mut self,
        org: OrgId,
        id: i64,
        actor: &Actor,
    ) -> Result<bool> {
        let tx = self.conn.begin_immediate()?;
        let n = tx.execute(
            "DELETE FROM classification_rules WHERE org_id = ?1 AND id = ?2",
            args![org.0, id],
        )?;
        if n > 0 {
            changed(
                &tx,
                org,
                actor,
                Change::new("classification_rule.deleted", id.to_string(), json!({})),
            )?;
        }
        tx.commit()?;
        Ok(n > 0)
    }

    /// Sets the confidence below which classified lines are flagged for review (0 to 1).
    pub fn set_review_threshold(&mut self, org: OrgId, below: f64, actor: &Actor) -> Result<()> {
        if !(0.0..=1.0).contains(&below) {
            return Err(StoreError::invalid(
                "review_below",
                format!("{below} is not between 0 and 1"),
            ));
        }
        let tx = self.conn.begin_immediate()?;
        ensure_state(&tx, org)?;
        tx.execute(
            "UPDATE classification_state SET review_below = ?2 WHERE org_id = ?1",
            args![org.0, below],
        )?;
        changed(
            &tx,
            org,
            actor,
            Change::new(
                "classification.settings",
                "",
                json!({"review_below": below}),
            ),
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Trains the organization model from scratch over every line of `org` that carries
    /// its own NAICS code and every reviewed input, and stores it.
    pub fn train_classifier(&mut self, org: OrgId) -> Result<TrainReport> {
        let t0 = Instant::now();
        let mut model = OrgModel::new();
        let mut read = 0u64;
        self.conn.for_each(
            "SELECT supplier_id, body FROM transactions WHERE org_id = ?1",
            args![org.0],
            |r: &Row<'_>| {
                read += 1;
                let b = Body::decode(r.blob(1)?)?;
                let Some(naics) = b.naics_code.and_then(Naics::from_code) else {
                    return Ok(());
                };
                let supplier_id = r.opt_string(0)?.filter(|_| b.supplier_id_given);
                let f = Features::of(&Input {
                    description: b.description.as_deref(),
                    supplier_id: supplier_id.as_deref(),
                    supplier_name: b.supplier_name.as_deref(),
                    gl_account: b.gl_account.as_deref(),
                    gl_account_name: b.gl_account_name.as_deref(),
                });
                let category = b
                    .category_in
                    .and_then(|c| u8::try_from(c).ok())
                    .and_then(Category::new);
                let label = Label {
                    naics,
                    category: if b.capex {
                        Category::CAPITAL_GOODS
                    } else {
                        category.unwrap_or_else(|| Category::from_naics(naics))
                    },
                    capex: b.capex,
                };
                model.learn(&f, label);
                Ok(())
            },
        )?;
        let reviewed = review::reviewed_inputs(&self.conn, org)?;
        for (f, label) in &reviewed {
            model.learn_weighted(f, *label, REVIEW_WEIGHT);
        }
        let examples = model.examples();
        let text = serde_json::to_string(&model)
            .map_err(|e| StoreError::corrupt(format!("serializing the model: {e}")))?;
        let tx = self.conn.begin_immediate()?;
        ensure_state(&tx, org)?;
        tx.execute(
            "UPDATE classification_state SET examples = ?2, trained_at = ?3, model = ?4
             WHERE org_id = ?1",
            args![
                org.0,
                i64::from(examples),
                crate::now_rfc3339().as_str(),
                text.as_str()
            ],
        )?;
        let generation = bump_generation(&tx, org)?;
        tx.commit()?;
        Ok(TrainReport {
            lines_read: read,
            examples,
            reviews: reviewed.len() as u32,
            seconds: t0.elapsed().as_secs_f64(),
            generation,
        })
    }
}

/// Adds a rule in `tx` (its code checked by the caller; its pattern, trimmed, here),
/// replacing one of the same kind and pattern, with its audit entry and a new generation.
pub(crate) fn insert_rule(
    tx: &Tx<'_>,
    org: OrgId,
    kind: RuleKind,
    pattern: &str,
    label: Label,
    actor: &Actor,
) -> Result<RuleView> {
    let pattern = pattern.trim();
    check_pattern(kind, pattern).map_err(|m| StoreError::invalid("pattern", m))?;
    let label = Label {
        category: if label.capex {
            Category::CAPITAL_GOODS
        } else {
            label.category
        },
        ..label
    };
    let n = tx.query_one(
        "SELECT COUNT(*) FROM classification_rules WHERE org_id = ?1",
        args![org.0],
        |r| r.i64(0),
    )?;
    if n >= MAX_RULES {
        return Err(StoreError::invalid(
            "pattern",
            format!("the organization has {MAX_RULES} rules, the most it may have"),
        ));
    }
    tx.execute(
        "DELETE FROM classification_rules WHERE org_id = ?1 AND kind = ?2 AND pattern = ?3",
        args![org.0, kind.as_str(), pattern],
    )?;
    let at = crate::now_rfc3339();
    let by = actor.label.clone();
    let id = tx.query_one(
        "INSERT INTO classification_rules
         (org_id, kind, pattern, naics, category, capex, created_at, created_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
        args![
            org.0,
            kind.as_str(),
            pattern,
            i64::from(label.naics.code()),
            i64::from(label.category.number()),
            i64::from(label.capex),
            at.as_str(),
            by.as_str()
        ],
        |r| r.i64(0),
    )?;
    changed(
        tx,
        org,
        actor,
        Change::new(
            "classification_rule.created",
            id.to_string(),
            json!({"kind": kind.as_str(), "pattern": pattern,
                   "naics_code": label.naics.to_string(),
                   "category": label.category.number(), "capex": label.capex}),
        ),
    )?;
    Ok(RuleView {
        id,
        kind: kind.as_str(),
        pattern: pattern.to_owned(),
        naics_code: label.naics.to_string(),
        category: label.category.number(),
        capex: label.capex,
        created_at: at,
        created_by: by,
    })
}

/// A change of the organization's rules or settings: a new generation (older cached answers
/// are unreachable) and its audit entry, in `tx`.
fn changed(tx: &Tx<'_>, org: OrgId, actor: &Actor, change: Change<'_>) -> Result<()> {
    bump_generation(tx, org)?;
    audit::append(tx, org, actor, change)?;
    Ok(())
}

pub(crate) fn ensure_state(tx: &Tx<'_>, org: OrgId) -> Result<()> {
    tx.execute(
        "INSERT INTO classification_state (org_id, generation, review_below, examples)
         VALUES (?1, 0, ?2, 0) ON CONFLICT (org_id) DO NOTHING",
        args![org.0, f64::from(DEFAULT_REVIEW_BELOW)],
    )?;
    Ok(())
}

/// Gives the organization a new generation; returns it. Generations are unique rather
/// than counted: the answer cache and the loaded classifiers are keyed by organization id
/// and generation, and two stores in one process (tests) have the same organization ids.
pub(crate) fn bump_generation(tx: &Tx<'_>, org: OrgId) -> Result<i64> {
    ensure_state(tx, org)?;
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).map_err(|e| StoreError::internal(format!("no randomness: {e}")))?;
    // Positive and never 0 (0 is an organization without state: the built-in model alone).
    let g = (u64::from_le_bytes(b) >> 2) as i64 + 1;
    tx.execute(
        "UPDATE classification_state SET generation = ?2 WHERE org_id = ?1",
        args![org.0, g],
    )?;
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An answer is cached the second time its key is seen; a key seen once costs a set
    /// entry, not an answer.
    #[test]
    fn answers_are_cached_on_their_second_sighting() {
        let mut c = Cache::default();
        let a = Answer::Electricity(Vec::new());
        let key = (1, 2, 3);
        c.offer(key, &a);
        assert!(c.answers.is_empty() && c.seen.contains(&key));
        c.offer(key, &a);
        assert!(c.answers.contains_key(&key) && c.seen.is_empty());
        c.offer(key, &a);
        assert_eq!((c.answers.len(), c.seen.len()), (1, 0));
    }
}
