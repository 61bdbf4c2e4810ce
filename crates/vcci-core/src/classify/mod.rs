//! Line classification (issue 19): a spend line without a NAICS code gets one, with its
//! category and capital flag, from the first source that is sure of it:
//!
//! 0. a person's **review** (`Reviews`): the code someone accepted or gave for exactly this
//!    input (description, supplier and ledger account, normalized);
//! 1. the organization's **rules** (`rules.rs`): keyword, supplier, ledger account;
//! 2. the **supplier's history** (`learned.rs`): the code its learned lines mostly carry;
//! 3. the **organization model** (`learned.rs`): words, accounts and suppliers of its own
//!    classified lines;
//! 4. the **built-in model** (`builtin.rs`): the shipped vocabulary and the EPA code titles.
//!
//! A source is sure when its confidence reaches `DECIDES`; when none is, the most confident
//! answer is kept. Every answer records its source, its confidence and its evidence (the
//! rule, the history, the terms), so `vcci explain` can say why. Below the organization's
//! review threshold the line is still calculated and flagged for review; it is never
//! refused for want of a code. All of it is in-process and deterministic.

mod builtin;
mod learned;
mod rules;
mod text;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

pub use self::builtin::{Builtin, BuiltinAnswer, FALLBACK_NAICS};
pub use self::learned::{History, Learned, OrgModel};
pub use self::rules::{Rule, RuleKind, Rules, check_pattern, rule_label};
pub use self::text::words;
use crate::category::Category;
use crate::naics::Naics;
use crate::names::normalize;

/// What classification gives a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Label {
    pub naics: Naics,
    pub category: Category,
    /// A capital purchase (category 2).
    pub capex: bool,
}

impl Label {
    /// The label of a code, with the category it implies.
    pub fn of(naics: Naics) -> Label {
        Label {
            naics,
            category: Category::from_naics(naics),
            capex: false,
        }
    }
}

/// A field classification reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextField {
    Description,
    GlAccount,
    GlAccountName,
    SupplierName,
}

/// A term that weighed for an answer, in the field it was found in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Term {
    pub field: TextField,
    pub term: String,
    pub weight: f32,
}

/// A line's fields as classification reads them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Input<'a> {
    pub description: Option<&'a str>,
    pub supplier_id: Option<&'a str>,
    pub supplier_name: Option<&'a str>,
    pub gl_account: Option<&'a str>,
    pub gl_account_name: Option<&'a str>,
}

/// The normalized features of an input: computed once, read by every source, and the key of
/// the classification cache.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Features {
    pub description: Vec<String>,
    pub gl_name: Vec<String>,
    pub supplier_words: Vec<String>,
    /// The supplier as history knows it: its id if the line gave one, else its normalized
    /// name.
    pub supplier: Option<String>,
    pub supplier_id: Option<String>,
    pub gl_account: Option<String>,
}

impl Features {
    pub fn of(input: &Input<'_>) -> Features {
        let mut f = Features::default();
        if let Some(d) = input.description {
            words(d, &mut f.description);
        }
        if let Some(g) = input.gl_account_name {
            words(g, &mut f.gl_name);
        }
        let name = input.supplier_name.map(normalize).filter(|n| !n.is_empty());
        if let Some(n) = &name {
            words(n, &mut f.supplier_words);
        }
        f.supplier_id = input
            .supplier_id
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        f.supplier = f.supplier_id.clone().or(name);
        f.gl_account = input
            .gl_account
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        f
    }

    /// True when there is nothing to classify from.
    pub fn is_empty(&self) -> bool {
        self.description.is_empty()
            && self.gl_name.is_empty()
            && self.supplier_words.is_empty()
            && self.gl_account.is_none()
    }

    /// The organization model's feature keys (see `OrgModel`), deduplicated.
    pub(crate) fn keys(&self, out: &mut Vec<String>) {
        for w in &self.description {
            out.push(format!("w:{w}"));
        }
        for w in &self.gl_name {
            out.push(format!("g:{w}"));
        }
        for p in self.description.windows(2) {
            out.push(format!("b:{} {}", p[0], p[1]));
        }
        if let Some(a) = &self.gl_account {
            out.push(format!("a:{}", a.to_ascii_lowercase()));
        }
        if let Some(s) = &self.supplier {
            out.push(format!("s:{s}"));
        }
        out.sort();
        out.dedup();
    }

    /// A 64-bit hash of the features (FNV-1a over the fields with separators): the cache
    /// key of a classification, so "Uber  trip" and "UBER trips" share one entry.
    pub fn hash64(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |b: &[u8]| {
            for &x in b {
                h = (h ^ u64::from(x)).wrapping_mul(0x0100_0000_01b3);
            }
            h = (h ^ 0xff).wrapping_mul(0x0100_0000_01b3);
        };
        for part in [&self.description, &self.gl_name, &self.supplier_words] {
            for w in part {
                eat(w.as_bytes());
            }
            eat(b"\x01");
        }
        for o in [&self.supplier, &self.supplier_id, &self.gl_account] {
            eat(o.as_deref().unwrap_or("\x02").as_bytes());
        }
        h
    }
}

/// Where a classification came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Rule,
    SupplierHistory,
    OrganizationModel,
    BuiltinModel,
    /// A person accepted or corrected the code of this input (asked first; last here, as
    /// the order of the variants is part of stored content hashes).
    Review,
}

impl Source {
    pub const ALL: [Source; 5] = [
        Source::Rule,
        Source::SupplierHistory,
        Source::OrganizationModel,
        Source::BuiltinModel,
        Source::Review,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Rule => "rule",
            Source::SupplierHistory => "supplier_history",
            Source::OrganizationModel => "organization_model",
            Source::BuiltinModel => "builtin_model",
            Source::Review => "review",
        }
    }
}

/// What a reviewer did with a classification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The code was right.
    Accepted,
    /// The reviewer gave another code, category or capital flag.
    Corrected,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Accepted => "accepted",
            Verdict::Corrected => "corrected",
        }
    }
}

/// The classification a review replaced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Previous {
    #[serde(flatten)]
    pub label: Label,
    pub source: Source,
    pub confidence: f32,
}

/// A person's review of one input: the label they accepted or gave, and the trail.
#[derive(Clone, Debug, PartialEq)]
pub struct Reviewed {
    pub label: Label,
    pub evidence: Evidence,
}

/// An organization's reviews, by the hash of the reviewed input's features
/// (`Features::hash64`): a line whose input is the same after normalization gets the
/// reviewed label.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reviews(HashMap<u64, Reviewed>);

impl Reviews {
    pub fn insert(&mut self, key: u64, r: Reviewed) {
        self.0.insert(key, r);
    }

    pub fn get(&self, key: u64) -> Option<&Reviewed> {
        self.0.get(&key)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A reviewed line counts as this many learned lines in the organization model and in its
/// supplier's history: a person checked it. So one correction makes the supplier's history
/// sure (2/3 ≥ `DECIDES`) when it has no other learned lines.
pub const REVIEW_WEIGHT: u32 = 2;

/// Why a source answered as it did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Evidence {
    Rule {
        rule_id: i64,
        rule_kind: RuleKind,
        pattern: String,
    },
    SupplierHistory {
        supplier: String,
        lines: u32,
        share: f32,
    },
    Terms {
        terms: Vec<Term>,
    },
    /// A person's review of this input (of the line `transaction_id`, or of another line
    /// with the same description, supplier and ledger account).
    Review {
        verdict: Verdict,
        transaction_id: String,
        reviewed_by: String,
        reviewed_at: String,
        /// What the classifier had said.
        previous: Option<Previous>,
    },
}

/// A line's classification.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    #[serde(flatten)]
    pub label: Label,
    pub source: Source,
    /// 0 to 1; 1 for a rule.
    pub confidence: f32,
    /// Below the organization's threshold: calculated, and flagged for review.
    pub needs_review: bool,
    pub evidence: Evidence,
}

/// What classification concludes.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Classified(Classification),
    /// Purchased electricity: the company's Scope 2, which a Scope 3 spend line cannot book
    /// (its kWh, with an activity factor, give its category 3 share).
    Electricity {
        terms: Vec<Term>,
    },
}

/// Terms kept as the evidence for a code, strongest first (the trail is stored with each
/// line); the built-in model adds the capital and category hints that applied.
pub const MAX_TERMS: usize = 4;

/// A source is sure of its answer from this confidence; below, the next source is asked.
pub const DECIDES: f32 = 0.6;

/// The default review threshold of an organization.
pub const DEFAULT_REVIEW_BELOW: f32 = 0.5;

/// Classifies lines for one organization.
#[derive(Clone, Copy, Debug)]
pub struct Classifier<'a> {
    pub reviews: Option<&'a Reviews>,
    pub rules: &'a Rules,
    pub model: Option<&'a OrgModel>,
    pub builtin: &'a Builtin,
    /// Answers below this confidence are flagged for review.
    pub review_below: f32,
}

impl Classifier<'_> {
    pub fn classify(&self, input: &Input<'_>) -> Outcome {
        self.classify_features(&Features::of(input))
    }

    pub fn classify_features(&self, f: &Features) -> Outcome {
        let done = |label: Label, source: Source, confidence: f32, evidence: Evidence| {
            // Three decimals: what the trail shows is what the threshold compared.
            let confidence = round3(confidence);
            let evidence = match evidence {
                Evidence::Terms { terms } => Evidence::Terms {
                    terms: terms
                        .into_iter()
                        .map(|t| Term {
                            weight: round3(t.weight),
                            ..t
                        })
                        .collect(),
                },
                e => e,
            };
            Outcome::Classified(Classification {
                label: normalized(label),
                source,
                confidence,
                needs_review: confidence < self.review_below,
                evidence,
            })
        };
        if let Some(r) = self.reviews.and_then(|r| r.get(f.hash64())) {
            return done(r.label, Source::Review, 1.0, r.evidence.clone());
        }
        if let Some(r) = self.rules.find(f) {
            return done(
                r.label,
                Source::Rule,
                1.0,
                Evidence::Rule {
                    rule_id: r.id,
                    rule_kind: r.kind,
                    pattern: r.pattern.clone(),
                },
            );
        }
        let mut best: Option<(Label, Source, f32, Evidence)> = None;
        let mut consider = |c: (Label, Source, f32, Evidence)| {
            if best.as_ref().is_none_or(|b| c.2 > b.2) {
                best = Some(c);
            }
        };
        if let (Some(m), Some(s)) = (self.model, &f.supplier)
            && let Some(h) = m.history(s)
        {
            let c = (
                h.label,
                Source::SupplierHistory,
                h.confidence,
                Evidence::SupplierHistory {
                    supplier: s.clone(),
                    lines: h.lines,
                    share: round3(h.share),
                },
            );
            if h.confidence >= DECIDES {
                let (l, s, c, e) = c;
                return done(l, s, c, e);
            }
            consider(c);
        }
        if let Some(m) = self.model
            && let Some(p) = m.predict(f)
        {
            let c = (
                p.label,
                Source::OrganizationModel,
                p.confidence,
                Evidence::Terms { terms: p.terms },
            );
            if p.confidence >= DECIDES {
                let (l, s, c, e) = c;
                return done(l, s, c, e);
            }
            consider(c);
        }
        let fields = [
            (TextField::Description, f.description.as_slice()),
            (TextField::GlAccountName, f.gl_name.as_slice()),
            (TextField::SupplierName, f.supplier_words.as_slice()),
        ];
        match self.builtin.answer(&fields) {
            // Nothing the organization taught was sure of another answer.
            BuiltinAnswer::Electricity { terms } => return Outcome::Electricity { terms },
            BuiltinAnswer::Code {
                label,
                confidence,
                terms,
            } => consider((
                label,
                Source::BuiltinModel,
                confidence,
                Evidence::Terms { terms },
            )),
        }
        let (l, s, c, e) = best.expect("the built-in model answered with a code");
        done(l, s, c, e)
    }
}

fn round3(v: f32) -> f32 {
    (v * 1000.0).round() / 1000.0
}

/// A capital purchase is category 2.
fn normalized(mut l: Label) -> Label {
    if l.capex {
        l.category = Category::CAPITAL_GOODS;
    }
    l
}

#[cfg(test)]
mod tests;
