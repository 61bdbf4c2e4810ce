//! The built-in model: the shipped vocabulary (`data/classify/vocabulary.txt`) of procurement
//! terms, ledger account names and supplier names, each weighing for a NAICS code, a category
//! or the capital flag; and, for words the vocabulary lacks, the titles of the EPA set's
//! codes. It needs nothing of the organization, so it answers from the first line.

use std::collections::HashMap;
use std::sync::LazyLock;

use super::text::words;
use super::{Label, Term, TextField};
use crate::category::Category;
use crate::factors::epa::EpaSet;
use crate::naics::Naics;

/// What a vocabulary term weighs for.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Target {
    /// A NAICS code, with the category it implies or the one its line names.
    Code {
        naics: Naics,
        category: Option<Category>,
    },
    Capex,
    Category(Category),
    /// Purchased electricity (the company's Scope 2).
    Electricity,
}

/// A term's contribution: the target and its weight.
type Weighted = (u32, f32);

#[derive(Debug)]
pub struct Builtin {
    targets: Vec<Target>,
    /// Terms (normalized words joined by one space) and what they weigh for.
    terms: HashMap<String, Vec<Weighted>, Fnv>,
    /// The most words of a term starting with each word (a word starting no longer term
    /// is looked up alone).
    longest: HashMap<String, u8, Fnv>,
    /// Title words of the EPA set's producing industries, each with the codes whose title
    /// has it and a weight (rarer words and shorter titles weigh more).
    titles: HashMap<String, Vec<(Naics, f32)>, Fnv>,
}

/// FNV-1a: the vocabulary's keys are short words, and SipHash's setup cost dominated.
#[derive(Clone, Copy, Debug, Default)]
struct FnvHasher(u64);

impl std::hash::Hasher for FnvHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

type Fnv = std::hash::BuildHasherDefault<FnvHasher>;

/// The built-in model's answer.
#[derive(Clone, Debug, PartialEq)]
pub enum BuiltinAnswer {
    Code {
        label: Label,
        confidence: f32,
        terms: Vec<Term>,
    },
    /// The line is purchased electricity: Scope 2, not Scope 3 spend.
    Electricity { terms: Vec<Term> },
}

/// How much a field's words count.
fn field_weight(f: TextField) -> f32 {
    match f {
        TextField::Description => 1.0,
        TextField::GlAccountName | TextField::GlAccount => 0.9,
        TextField::SupplierName => 0.8,
    }
}

/// A capital-purchase or category hint applies from this score (one strong term).
const HINT_MIN: f32 = 2.0;
/// Title matches count this much of a vocabulary match.
const TITLE_WEIGHT: f32 = 0.5;
/// The code given when nothing matched: "All Other Support Services", confidence 0, so the
/// line is calculated and flagged for review.
pub const FALLBACK_NAICS: u32 = 561990;

/// Title words that say nothing of the industry.
const GENERIC: &[&str] = &[
    "manufacturing",
    "service",
    "other",
    "all",
    "except",
    "product",
    "activity",
    "related",
    "support",
    "office",
    "industry",
    "miscellaneous",
    "general",
    "establishment",
    "including",
    "purpose",
    "specialty",
    "special",
    "similar",
    "nec",
    "made",
    "purchased",
    "operation",
    "based",
    "type",
    "than",
    "new",
];

static BUILTIN: LazyLock<Builtin> = LazyLock::new(|| {
    Builtin::parse(
        include_str!("../../data/classify/vocabulary.txt"),
        &crate::factors::catalog().epa_1_3_0,
    )
    .expect("the shipped vocabulary parses (tested)")
});

impl Builtin {
    /// The shipped model over the EPA v1.3.0 codes (both EPA versions have the same codes).
    pub fn get() -> &'static Builtin {
        &BUILTIN
    }

    /// Parses a vocabulary; every code must be one of `epa`'s.
    pub fn parse(vocabulary: &str, epa: &EpaSet) -> Result<Builtin, String> {
        let mut b = Builtin {
            targets: Vec::new(),
            terms: HashMap::default(),
            longest: HashMap::default(),
            titles: HashMap::default(),
        };
        for (i, raw) in vocabulary.lines().enumerate() {
            let at = |m: String| format!("vocabulary line {}: {m}", i + 1);
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (head, list) = line.split_once(':').ok_or_else(|| at("no ':'".into()))?;
            let head = head.trim();
            let target = if head == "@capex" {
                Target::Capex
            } else if head == "@scope2" {
                Target::Electricity
            } else if let Some(c) = head.strip_prefix("@cat ") {
                Target::Category(parse_category(c).map_err(at)?)
            } else {
                let (code, cat) = match head.split_once('/') {
                    Some((code, c)) => (code, Some(parse_category(c).map_err(at)?)),
                    None => (head, None),
                };
                let naics = Naics::parse(code).map_err(at)?;
                if epa.find(naics).is_none() {
                    return Err(at(format!("{naics} is not a code of the EPA set")));
                }
                Target::Code {
                    naics,
                    category: cat,
                }
            };
            let t = b.targets.len() as u32;
            b.targets.push(target);
            for item in list.split(',') {
                let item = item.trim();
                if item.is_empty() {
                    continue;
                }
                let (term, weight) = match item.rsplit_once('=') {
                    Some((term, w)) => (
                        term,
                        w.trim()
                            .parse::<f32>()
                            .map_err(|_| at(format!("weight of '{term}' is not a number")))?,
                    ),
                    None => (item, 1.0),
                };
                let mut ws = Vec::new();
                words(term, &mut ws);
                if ws.is_empty() {
                    continue; // a term made only of filler words
                }
                let l = b.longest.entry(ws[0].clone()).or_default();
                *l = (*l).max(ws.len() as u8);
                let entry = b.terms.entry(ws.join(" ")).or_default();
                match entry.iter_mut().find(|(x, _)| *x == t) {
                    Some(e) => e.1 = e.1.max(weight),
                    None => entry.push((t, weight)),
                }
            }
        }
        b.index_titles(epa);
        Ok(b)
    }

    fn index_titles(&mut self, epa: &EpaSet) {
        let mut per_code: Vec<(Naics, Vec<String>)> = Vec::new();
        for f in &epa.factors {
            let t = &f.title;
            // Trade (wholesale, retail) resells what industries make: a purchase is
            // classified by what was made or done.
            if t.contains("Wholesalers") || t.contains("Stores") || t.contains("Dealers") {
                continue;
            }
            let mut ws = Vec::new();
            words(t, &mut ws);
            ws.retain(|w| !GENERIC.contains(&w.as_str()) && w.len() > 2);
            ws.sort();
            ws.dedup();
            per_code.push((f.naics, ws));
        }
        let mut df: HashMap<&str, u32> = HashMap::new();
        for (_, ws) in &per_code {
            for w in ws {
                *df.entry(w).or_default() += 1;
            }
        }
        let n = per_code.len() as f32;
        let mut titles: HashMap<String, Vec<(Naics, f32)>, Fnv> = HashMap::default();
        for (naics, ws) in &per_code {
            let len = (ws.len().max(1) as f32).sqrt();
            for w in ws {
                let idf = (n / df[w.as_str()] as f32).ln();
                titles
                    .entry(w.clone())
                    .or_default()
                    .push((*naics, idf / len));
            }
        }
        self.titles = titles;
    }

    /// Classifies the words of a line's fields.
    pub fn answer(&self, fields: &[(TextField, &[String])]) -> BuiltinAnswer {
        let mut scores: Vec<(u32, f32)> = Vec::new();
        let mut matched: Vec<(u32, Term)> = Vec::new();
        let mut unmatched: Vec<(TextField, &str)> = Vec::new();
        let mut key = String::new();
        for &(field, ws) in fields {
            let fw = field_weight(field);
            let mut i = 0;
            while i < ws.len() {
                // The longest term starting here.
                let mut hit = None;
                let longest = self.longest.get(ws[i].as_str()).map_or(0, |&l| l as usize);
                for n in (1..=longest.min(ws.len() - i)).rev() {
                    key.clear();
                    for (k, w) in ws[i..i + n].iter().enumerate() {
                        if k > 0 {
                            key.push(' ');
                        }
                        key.push_str(w);
                    }
                    if let Some(ts) = self.terms.get(key.as_str()) {
                        hit = Some((n, ts));
                        break;
                    }
                }
                match hit {
                    Some((n, ts)) => {
                        for &(t, w) in ts {
                            let w = w * fw;
                            add(&mut scores, t, w);
                            matched.push((
                                t,
                                Term {
                                    field,
                                    term: key.clone(),
                                    weight: w,
                                },
                            ));
                        }
                        i += n;
                    }
                    None => {
                        if field != TextField::SupplierName {
                            unmatched.push((field, &ws[i]));
                        }
                        i += 1;
                    }
                }
            }
        }
        // Codes, electricity, capex and category hints, each summed.
        let mut best: Option<(u32, f32)> = None;
        let mut second: f32 = 0.0;
        let mut electricity = 0.0f32;
        let mut capex = 0.0f32;
        let mut hint: Option<(Category, f32)> = None;
        let mut by_code: Vec<(Naics, f32, u32)> = Vec::new();
        for &(t, s) in &scores {
            match self.targets[t as usize] {
                Target::Code { naics, .. } => match by_code.iter_mut().find(|c| c.0 == naics) {
                    Some(c) => {
                        if s > c.1 {
                            c.2 = t;
                        }
                        c.1 += s;
                    }
                    None => by_code.push((naics, s, t)),
                },
                Target::Electricity => electricity += s,
                Target::Capex => capex += s,
                Target::Category(c) => {
                    if hint.is_none_or(|(_, h)| s > h) {
                        hint = Some((c, s));
                    }
                }
            }
        }
        by_code.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        if let Some(&(naics, s, t)) = by_code.first() {
            best = Some((t, s));
            // A runner-up weighs against the answer as much as it disagrees with it: another
            // category fully, the same category half, the same industry group a quarter.
            let category = |t: u32| match self.targets[t as usize] {
                Target::Code { naics, category } => {
                    category.unwrap_or_else(|| Category::from_naics(naics))
                }
                _ => Category::PURCHASED_GOODS,
            };
            for &(n2, s2, t2) in &by_code[1..] {
                let w = if n2.code() / 100 == naics.code() / 100 {
                    0.25
                } else if category(t2) == category(t) {
                    0.5
                } else {
                    1.0
                };
                second = second.max(s2 * w);
            }
        }
        let best_score = best.map_or(0.0, |b| b.1);
        if electricity > best_score {
            return BuiltinAnswer::Electricity {
                terms: matched
                    .into_iter()
                    .filter(|(t, _)| self.targets[*t as usize] == Target::Electricity)
                    .map(|(_, m)| m)
                    .collect(),
            };
        }
        let (naics, category, confidence, mut terms) = match best {
            Some((t, s)) => {
                let Target::Code { naics, category } = self.targets[t as usize] else {
                    unreachable!("by_code holds code targets")
                };
                let terms: Vec<Term> = matched
                    .iter()
                    .filter(|(x, _)| {
                        matches!(self.targets[*x as usize], Target::Code { naics: n, .. } if n == naics)
                    })
                    .map(|(_, m)| m.clone())
                    .collect();
                (naics, category, confidence(s, second), terms)
            }
            None => match self.by_title(&unmatched) {
                Some((naics, s, second, terms)) => (
                    naics,
                    None,
                    confidence(s * TITLE_WEIGHT, second * TITLE_WEIGHT),
                    terms,
                ),
                None => (
                    Naics::from_code(FALLBACK_NAICS).expect("a six-digit code"),
                    None,
                    0.0,
                    Vec::new(),
                ),
            },
        };
        terms.sort_by(|a, b| b.weight.total_cmp(&a.weight));
        terms.truncate(super::MAX_TERMS);
        let capex = capex >= HINT_MIN;
        let hinted = hint.filter(|(_, s)| *s >= HINT_MIN).map(|(c, _)| c);
        for (t, m) in &matched {
            match self.targets[*t as usize] {
                Target::Capex if capex => terms.push(m.clone()),
                Target::Category(c) if Some(c) == hinted => terms.push(m.clone()),
                _ => {}
            }
        }
        let category = if capex {
            Category::CAPITAL_GOODS
        } else {
            hinted
                .or(category)
                .unwrap_or_else(|| Category::from_naics(naics))
        };
        BuiltinAnswer::Code {
            label: Label {
                naics,
                category,
                capex,
            },
            confidence,
            terms,
        }
    }

    /// The code whose title shares the most (weighted) words with the unmatched words.
    fn by_title(&self, unmatched: &[(TextField, &str)]) -> Option<(Naics, f32, f32, Vec<Term>)> {
        let mut scores: Vec<(Naics, f32)> = Vec::new();
        for &(_, w) in unmatched {
            for &(n, s) in self.titles.get(w).map_or(&[][..], Vec::as_slice) {
                match scores.iter_mut().find(|x| x.0 == n) {
                    Some(x) => x.1 += s,
                    None => scores.push((n, s)),
                }
            }
        }
        // Highest score; ties to the lower code, so the answer does not depend on order.
        scores.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let (naics, s) = *scores.first()?;
        let second = scores.get(1).map_or(0.0, |x| x.1);
        let terms = unmatched
            .iter()
            .filter(|(_, w)| {
                self.titles
                    .get(*w)
                    .is_some_and(|v| v.iter().any(|(n, _)| *n == naics))
            })
            .map(|&(field, w)| Term {
                field,
                term: format!("title:{w}"),
                weight: s,
            })
            .collect();
        Some((naics, s, second, terms))
    }
}

fn add(scores: &mut Vec<(u32, f32)>, t: u32, w: f32) {
    match scores.iter_mut().find(|x| x.0 == t) {
        Some(x) => x.1 += w,
        None => scores.push((t, w)),
    }
}

/// From the best score and the runner-up's: more evidence raises it (one strong term of
/// weight 3 gives 0.75), a close second lowers it (an equal one halves it).
fn confidence(best: f32, second: f32) -> f32 {
    if best <= 0.0 {
        return 0.0;
    }
    (best / (best + 1.0)) * (1.0 - 0.5 * (second / best).min(1.0))
}

fn parse_category(s: &str) -> Result<Category, String> {
    s.trim()
        .parse::<u8>()
        .ok()
        .and_then(Category::new)
        .ok_or_else(|| format!("'{s}' is not a category (1 to 15)"))
}
