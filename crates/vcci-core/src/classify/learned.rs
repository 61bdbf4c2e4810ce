//! What an organization's own classified lines teach: the code each supplier's lines mostly
//! carry (supplier history), and a model of which words, ledger accounts and suppliers go
//! with which code (the organization model). Both are counts, so training is incremental:
//! a line adds its counts, a correction removes the old label's and adds the new one's.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{Features, Label, Term, TextField};

/// Label counts of one feature (or of one supplier).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Counts {
    total: u32,
    /// (label index, count), unordered; a feature seldom has more than a few labels.
    by_label: Vec<(u32, u32)>,
}

impl Counts {
    fn add(&mut self, label: u32, delta: i64) {
        match self.by_label.iter().position(|x| x.0 == label) {
            Some(i) => {
                let c = (i64::from(self.by_label[i].1) + delta).max(0) as u32;
                if c == 0 {
                    self.by_label.swap_remove(i);
                } else {
                    self.by_label[i].1 = c;
                }
            }
            None if delta > 0 => self.by_label.push((label, delta as u32)),
            None => {}
        }
        self.total = self.by_label.iter().map(|x| x.1).sum();
    }

    /// The most frequent label, its count; ties to the lower label index.
    fn top(&self) -> Option<(u32, u32)> {
        self.by_label
            .iter()
            .copied()
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
    }
}

/// An organization's learned state. Serializable, to be stored and loaded whole.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OrgModel {
    labels: Vec<Label>,
    /// Feature → label counts. Features are `w:word` (description words), `g:word` (account
    /// name words),
    /// `b:word word` (description word pairs), `a:account` (the ledger account number) and
    /// `s:supplier` (the supplier's key).
    features: HashMap<String, Counts>,
    /// Supplier key → label counts of its lines.
    suppliers: HashMap<String, Counts>,
    /// Lines learned from (net of those unlearned; a weighted line counts its weight).
    examples: u32,
}

/// The supplier-history answer.
#[derive(Clone, Debug, PartialEq)]
pub struct History {
    pub label: Label,
    /// Lines of the supplier learned from, and the share carrying `label`.
    pub lines: u32,
    pub share: f32,
    pub confidence: f32,
}

/// The organization model's answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Learned {
    pub label: Label,
    pub confidence: f32,
    /// The features that weighed most for `label`, strongest first.
    pub terms: Vec<Term>,
}

fn feature_weight(key: &str) -> f32 {
    match key.as_bytes().first() {
        Some(b'a') => 1.5,
        Some(b's') => 1.0,
        Some(b'b') => 1.2,
        Some(b'g') => 0.7,
        _ => 1.0,
    }
}

impl OrgModel {
    pub fn new() -> OrgModel {
        OrgModel::default()
    }

    /// Lines learned from.
    pub fn examples(&self) -> u32 {
        self.examples
    }

    fn label_index(&mut self, label: Label) -> u32 {
        match self.labels.iter().position(|l| *l == label) {
            Some(i) => i as u32,
            None => {
                self.labels.push(label);
                (self.labels.len() - 1) as u32
            }
        }
    }

    /// Learns that a line with these features carries `label`.
    pub fn learn(&mut self, f: &Features, label: Label) {
        self.update(f, label, 1);
    }

    /// Forgets a line learned before with `label` (its correction learns the new one).
    pub fn unlearn(&mut self, f: &Features, label: Label) {
        self.unlearn_weighted(f, label, 1);
    }

    /// Learns a line as `weight` lines (a reviewed line: `REVIEW_WEIGHT`).
    pub fn learn_weighted(&mut self, f: &Features, label: Label, weight: u32) {
        self.update(f, label, i64::from(weight));
    }

    /// Forgets a line learned with `learn_weighted` and the same weight.
    pub fn unlearn_weighted(&mut self, f: &Features, label: Label, weight: u32) {
        if self.labels.contains(&label) {
            self.update(f, label, -i64::from(weight));
        }
    }

    fn update(&mut self, f: &Features, label: Label, delta: i64) {
        let l = self.label_index(label);
        let mut keys = Vec::new();
        f.keys(&mut keys);
        for k in keys {
            let c = self.features.entry(k.clone()).or_default();
            c.add(l, delta);
            if c.total == 0 {
                self.features.remove(&k);
            }
        }
        if let Some(s) = &f.supplier {
            let c = self.suppliers.entry(s.clone()).or_default();
            c.add(l, delta);
            if c.total == 0 {
                self.suppliers.remove(s);
            }
        }
        self.examples = (i64::from(self.examples) + delta).max(0) as u32;
    }

    /// The code the supplier's learned lines mostly carry.
    pub fn history(&self, supplier: &str) -> Option<History> {
        let c = self.suppliers.get(supplier)?;
        let (l, n) = c.top()?;
        let share = n as f32 / c.total as f32;
        Some(History {
            label: self.labels[l as usize],
            lines: c.total,
            share,
            // More lines and a clearer majority give more confidence: one line 0.5, two
            // agreeing 0.67, four 0.8.
            confidence: share * c.total as f32 / (c.total as f32 + 1.0),
        })
    }

    /// The label the line's features point to: each known feature votes for the labels of
    /// the lines that had it, in proportion, weighted by how rare the feature is.
    pub fn predict(&self, f: &Features) -> Option<Learned> {
        if self.examples == 0 {
            return None;
        }
        let mut keys = Vec::new();
        f.keys(&mut keys);
        let n = self.examples as f32;
        let mut scores: Vec<(u32, f32)> = Vec::new();
        let mut votes: Vec<(u32, f32, usize)> = Vec::new();
        // (label, lines) : how many learned lines back each label through the features.
        let mut support: Vec<(u32, u32)> = Vec::new();
        for (ki, k) in keys.iter().enumerate() {
            let Some(c) = self.features.get(k) else {
                continue;
            };
            let idf = (1.0 + n / c.total as f32).ln();
            let w = feature_weight(k) * idf;
            for &(l, cnt) in &c.by_label {
                // A feature seen once is weak evidence: its share is shrunk.
                let v = w * cnt as f32 / (c.total as f32 + 1.0);
                match scores.iter_mut().find(|x| x.0 == l) {
                    Some(x) => x.1 += v,
                    None => scores.push((l, v)),
                }
                votes.push((l, v, ki));
                match support.iter_mut().find(|x| x.0 == l) {
                    Some(x) => x.1 += cnt,
                    None => support.push((l, cnt)),
                }
            }
        }
        let total: f32 = scores.iter().map(|x| x.1).sum();
        let &(best, s) = scores
            .iter()
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))?;
        let share = s / total;
        let backing = support.iter().find(|x| x.0 == best).map_or(0, |x| x.1) as f32;
        let mut terms: Vec<Term> = votes
            .iter()
            .filter(|v| v.0 == best)
            .map(|&(_, v, ki)| {
                let k = &keys[ki];
                Term {
                    field: match k.as_bytes()[0] {
                        b's' => TextField::SupplierName,
                        b'a' => TextField::GlAccount,
                        b'g' => TextField::GlAccountName,
                        _ => TextField::Description,
                    },
                    term: k[2..].to_owned(),
                    weight: v,
                }
            })
            .collect();
        terms.sort_by(|a, b| b.weight.total_cmp(&a.weight));
        terms.truncate(super::MAX_TERMS);
        Some(Learned {
            label: self.labels[best as usize],
            // A clear majority backed by many learned feature matches: near 1. One word
            // shared with one learned line is weak (0.25 at most), so a model that has
            // seen little does not overrule the built-in one.
            confidence: share * backing / (backing + 3.0),
            terms,
        })
    }
}
