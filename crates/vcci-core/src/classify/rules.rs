//! An organization's classification rules: a ledger account, a supplier or a keyword of the
//! description decides the line's code. Rules come first: they are the organization's own
//! word on its data.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::text::words;
use super::{Features, Label};
use crate::category::Category;
use crate::naics::Naics;
use crate::names::normalize;

/// What a rule matches on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// The line's `gl_account`, exactly (case-insensitive), or every account starting with
    /// the pattern's text before a trailing `*` ("62*").
    GlAccount,
    /// The line's supplier: its id, or its name as normalized for matching (case, accents,
    /// punctuation and legal forms do not matter).
    Supplier,
    /// Words of the description or of the account name, in order ("car hire").
    Keyword,
}

impl RuleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::GlAccount => "gl_account",
            RuleKind::Supplier => "supplier",
            RuleKind::Keyword => "keyword",
        }
    }

    pub fn parse(s: &str) -> Option<RuleKind> {
        Some(match s {
            "gl_account" => RuleKind::GlAccount,
            "supplier" => RuleKind::Supplier,
            "keyword" => RuleKind::Keyword,
            _ => return None,
        })
    }
}

/// A rule as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub id: i64,
    pub kind: RuleKind,
    pub pattern: String,
    pub label: Label,
}

/// A rule's label from its parts as given: the NAICS code, the category (default: the one the
/// code implies) and the capital flag (category 2). An error names the part, `naics_code` or
/// `category`, and says what is wrong.
pub fn rule_label(
    naics: &str,
    category: Option<u8>,
    capex: bool,
) -> Result<Label, (&'static str, String)> {
    let naics = Naics::parse(naics).map_err(|m| ("naics_code", m))?;
    if capex && category.is_some_and(|c| c != 2) {
        return Err((
            "category",
            "a capital purchase (capex) is category 2".into(),
        ));
    }
    let category = match category {
        Some(c) => Category::new(c)
            .ok_or_else(|| ("category", format!("{c} is not a category (1 to 15)")))?,
        None => Category::from_naics(naics),
    };
    Ok(Label {
        naics,
        category,
        capex,
    })
}

/// Checks a rule's pattern; the error says what is wrong with it.
pub fn check_pattern(kind: RuleKind, pattern: &str) -> Result<(), String> {
    let p = pattern.trim();
    if p.is_empty() {
        return Err("is empty".into());
    }
    if p.len() > 256 {
        return Err(format!("is {} bytes; the limit is 256", p.len()));
    }
    if p.chars().any(char::is_control) {
        return Err("contains a control character".into());
    }
    match kind {
        RuleKind::GlAccount if p.trim_end_matches('*').contains('*') => {
            Err("may hold '*' only at its end".into())
        }
        RuleKind::GlAccount if p == "*" => Err("'*' alone would match every account".into()),
        RuleKind::Supplier if normalize(p).is_empty() => Err(format!(
            "'{p}' has nothing left once its legal form is dropped"
        )),
        RuleKind::Keyword => {
            let mut ws = Vec::new();
            words(p, &mut ws);
            if ws.is_empty() {
                Err(format!("'{p}' has no word that classification reads"))
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
}

/// An organization's rules, indexed.
#[derive(Clone, Debug, Default)]
pub struct Rules {
    rules: Vec<Rule>,
    gl_exact: HashMap<String, usize>,
    /// (prefix, rule), longest prefix first.
    gl_prefix: Vec<(String, usize)>,
    supplier: HashMap<String, usize>,
    /// (words, rule), most words first.
    keyword: Vec<(Vec<String>, usize)>,
}

impl Rules {
    /// Indexes `rules`; where two match the same thing, the lower id wins.
    pub fn new(mut rules: Vec<Rule>) -> Rules {
        rules.sort_by_key(|r| r.id);
        let mut r = Rules::default();
        for (i, rule) in rules.iter().enumerate() {
            let p = rule.pattern.trim();
            match rule.kind {
                RuleKind::GlAccount => match p.strip_suffix('*') {
                    Some(prefix) => r.gl_prefix.push((prefix.to_ascii_lowercase(), i)),
                    None => {
                        r.gl_exact.entry(p.to_ascii_lowercase()).or_insert(i);
                    }
                },
                RuleKind::Supplier => {
                    r.supplier.entry(p.to_owned()).or_insert(i);
                    let n = normalize(p);
                    if !n.is_empty() {
                        r.supplier.entry(n).or_insert(i);
                    }
                }
                RuleKind::Keyword => {
                    let mut ws = Vec::new();
                    words(p, &mut ws);
                    if !ws.is_empty() {
                        r.keyword.push((ws, i));
                    }
                }
            }
        }
        r.gl_prefix
            .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
        r.keyword
            .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
        r.rules = rules;
        r
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// The rule deciding a line: a keyword rule (the most words, then the lowest id), else a
    /// supplier rule, else an account rule (exact, then the longest prefix).
    pub fn find(&self, f: &Features) -> Option<&Rule> {
        for (ws, i) in &self.keyword {
            if contains(&f.description, ws) || contains(&f.gl_name, ws) {
                return Some(&self.rules[*i]);
            }
        }
        for key in [f.supplier_id.as_deref(), f.supplier.as_deref()]
            .into_iter()
            .flatten()
        {
            if let Some(i) = self.supplier.get(key) {
                return Some(&self.rules[*i]);
            }
        }
        if let Some(gl) = &f.gl_account {
            let gl = gl.to_ascii_lowercase();
            if let Some(i) = self.gl_exact.get(&gl) {
                return Some(&self.rules[*i]);
            }
            if let Some((_, i)) = self.gl_prefix.iter().find(|(p, _)| gl.starts_with(p)) {
                return Some(&self.rules[*i]);
            }
        }
        None
    }
}

fn contains(hay: &[String], needle: &[String]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}
