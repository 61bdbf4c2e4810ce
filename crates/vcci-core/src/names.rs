//! Supplier names as people type them: normalization, similarity and a blocked index for
//! matching an incoming name against an organization's suppliers (issue 19, supplier
//! resolution; the store and the import use this module for linking, aliases and review).
//!
//! - `normalize`: case, accents (Latin letters folded to ASCII), punctuation, `&`, a
//!   leading "the", and trailing legal forms (Inc, Ltd, LLC, GmbH, SA, S.p.A., KK, BV, …),
//!   so that "ACME, Inc.", "Acme Inc" and "ACME INCORPORATED" are all `acme`.
//! - `jaro_winkler`: the similarity of two normalized names, 0 to 1.
//! - `NameIndex`: the names of one organization, indexed by character trigrams, so that a
//!   lookup scores a name against a few candidates, not against all.
//! - `Decision`: linked at or above `link`, a candidate pair for review between `review`
//!   and `link`, a new supplier below. "Acme Inc" and "Acma Ltd" score 0.883: with the
//!   default thresholds (0.95, 0.85) that is a pair to review, never a merge.

use std::collections::HashMap;

/// Legal forms dropped from the end of a name (after punctuation and accents are gone,
/// dots inside a form removed: "S.p.A." is `spa`, "S.A." is `sa`). Several may follow
/// each other ("Acme Holdings Co Ltd" keeps "holdings").
const LEGAL_FORMS: &[&str] = &[
    "inc",
    "incorporated",
    "corp",
    "corporation",
    "co",
    "company",
    "ltd",
    "limited",
    "llc",
    "llp",
    "lp",
    "plc",
    "gmbh",
    "mbh",
    "ag",
    "kg",
    "se",
    "sa",
    "sas",
    "sarl",
    "spa",
    "srl",
    "sl",
    "kk",
    "bv",
    "nv",
    "ab",
    "as",
    "asa",
    "oy",
    "oyj",
    "publ",
    "pty",
    "pte",
    "bhd",
    "sdn",
];

/// The name as matching sees it: lowercase ASCII words separated by one space, without a
/// leading "the" or trailing legal forms. Empty when nothing but punctuation or legal forms
/// was given (then the name matches nothing).
pub fn normalize(name: &str) -> String {
    let mut folded = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            // Dots join the letters of an abbreviation ("S.p.A." is one word).
            '.' => {}
            '&' | '+' => folded.push_str(" and "),
            c if c.is_ascii_alphanumeric() => folded.push(c.to_ascii_lowercase()),
            c => match fold(c) {
                Some(s) => folded.push_str(s),
                None if c.is_alphanumeric() => folded.extend(c.to_lowercase()),
                None => folded.push(' '),
            },
        }
    }
    // Letters standing alone in a row are one abbreviation: "S. A.", "A/S", "B V".
    let mut words: Vec<String> = Vec::new();
    let mut run = false;
    for w in folded.split_whitespace() {
        let single = w.chars().count() == 1;
        match words.last_mut() {
            Some(last) if single && run => last.push_str(w),
            _ => words.push(w.to_owned()),
        }
        run = single;
    }
    let mut words: Vec<&str> = words.iter().map(String::as_str).collect();
    if words.len() > 1 && words[0] == "the" {
        words.remove(0);
    }
    while words.len() > 1
        && let Some(last) = words.last()
        && LEGAL_FORMS.contains(last)
    {
        words.pop();
    }
    // "Acme and Co": the "and" left before a dropped form goes too.
    if words.len() > 1 && words.last() == Some(&"and") {
        words.pop();
    }
    if words.len() == 1 && LEGAL_FORMS.contains(&words[0]) {
        words.clear();
    }
    words.join(" ")
}

/// Latin letters with diacritics (and ligatures) folded to ASCII.
pub(crate) fn fold(c: char) -> Option<&'static str> {
    Some(match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' | 'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å'
        | 'Ā' | 'Ă' | 'Ą' => "a",
        'æ' | 'Æ' => "ae",
        'ç' | 'ć' | 'č' | 'Ç' | 'Ć' | 'Č' => "c",
        'ď' | 'đ' | 'Ď' | 'Đ' | 'ð' | 'Ð' => "d",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' | 'È' | 'É' | 'Ê' | 'Ë' | 'Ē' | 'Ė' | 'Ę'
        | 'Ě' => "e",
        'ğ' | 'Ğ' => "g",
        'ì' | 'í' | 'î' | 'ï' | 'ī' | 'į' | 'ı' | 'Ì' | 'Í' | 'Î' | 'Ï' | 'Ī' | 'Į' | 'İ' => {
            "i"
        }
        'ł' | 'ľ' | 'ĺ' | 'Ł' | 'Ľ' | 'Ĺ' => "l",
        'ñ' | 'ń' | 'ň' | 'Ñ' | 'Ń' | 'Ň' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' | 'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' | 'Ō'
        | 'Ő' => "o",
        'œ' | 'Œ' => "oe",
        'ř' | 'ŕ' | 'Ř' | 'Ŕ' => "r",
        'ś' | 'š' | 'ş' | 'ș' | 'Ś' | 'Š' | 'Ş' | 'Ș' => "s",
        'ß' => "ss",
        'ť' | 'ţ' | 'ț' | 'Ť' | 'Ţ' | 'Ț' => "t",
        'þ' | 'Þ' => "th",
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' | 'ų' | 'Ù' | 'Ú' | 'Û' | 'Ü' | 'Ū' | 'Ů' | 'Ű'
        | 'Ų' => "u",
        'ý' | 'ÿ' | 'Ý' | 'Ÿ' => "y",
        'ź' | 'ż' | 'ž' | 'Ź' | 'Ż' | 'Ž' => "z",
        _ => return None,
    })
}

/// The Jaro-Winkler similarity of two strings (by characters), 0 (nothing alike) to 1
/// (equal): the Jaro similarity raised for a common prefix of up to 4 characters, with the
/// usual scale of 0.1.
pub fn jaro_winkler(a: &str, b: &str) -> f64 {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let j = jaro(&a, &b);
    let prefix = a.iter().zip(&b).take(4).take_while(|(x, y)| x == y).count();
    j + prefix as f64 * 0.1 * (1.0 - j)
}

fn jaro(a: &[char], b: &[char]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let window = (a.len().max(b.len()) / 2).saturating_sub(1);
    let mut b_used = vec![false; b.len()];
    let mut a_matched = Vec::with_capacity(a.len());
    for (i, ca) in a.iter().enumerate() {
        let lo = i.saturating_sub(window);
        let hi = (i + window + 1).min(b.len());
        for j in lo..hi {
            if !b_used[j] && b[j] == *ca {
                b_used[j] = true;
                a_matched.push(*ca);
                break;
            }
        }
    }
    let m = a_matched.len();
    if m == 0 {
        return 0.0;
    }
    let b_matched = b.iter().zip(&b_used).filter(|(_, u)| **u).map(|(c, _)| c);
    let transpositions = a_matched
        .iter()
        .zip(b_matched)
        .filter(|(x, y)| x != y)
        .count()
        / 2;
    let m = m as f64;
    (m / a.len() as f64 + m / b.len() as f64 + (m - transpositions as f64) / m) / 3.0
}

/// What to do with an incoming name.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision<K> {
    /// The same supplier: link the name to `key` (recording it as an alias).
    Link { key: K, score: f64 },
    /// Perhaps the same: a candidate pair for review, the best match first.
    Review { key: K, score: f64 },
    /// No supplier is close: a new one.
    New,
}

/// Thresholds of a decision (an organization's settings).
#[derive(Clone, Copy, Debug)]
pub struct Thresholds {
    pub link: f64,
    pub review: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            link: 0.95,
            review: 0.85,
        }
    }
}

/// The names of one organization's suppliers and aliases, normalized and indexed by
/// character trigrams.
///
/// A lookup takes the query's rarest trigrams (`PROBE_GRAMS`: a typo breaks at most three,
/// so a name that differs by one still shares some of them), counts how many of them each
/// indexed name shares, and scores only the `VERIFY` names sharing most with Jaro-Winkler.
/// Common trigrams (of "global", "services") have long lists and are never the rarest, so
/// a lookup reads a few short lists whatever the index's size.
#[derive(Debug)]
pub struct NameIndex<K> {
    names: Vec<(String, K)>,
    /// The length of each name (bytes, at most u16::MAX), apart: read for every candidate.
    lens: Vec<u16>,
    exact: HashMap<String, u32>,
    grams: HashMap<u64, Vec<u32>>,
}

impl<K> Default for NameIndex<K> {
    fn default() -> Self {
        NameIndex {
            names: Vec::new(),
            lens: Vec::new(),
            exact: HashMap::new(),
            grams: HashMap::new(),
        }
    }
}

/// A lookup's working memory, kept per thread: a count per indexed name (at most
/// `PROBE_GRAMS`, so a byte) and the names touched.
#[derive(Default)]
struct Scratch {
    counts: Vec<u8>,
    touched: Vec<u32>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

/// Trigrams read per lookup (the rarest of the query's). Measured: with 4, the test below
/// finds 1,771 of 1,776 names with a letter inserted (in 20,000 names), and
/// benches/names.rs makes ~50,000 lookups/s against 100,000 names; with 6, 1,775 and
/// ~32,000/s.
const PROBE_GRAMS: usize = 4;
/// Names scored with Jaro-Winkler per lookup (those sharing most probed trigrams).
const VERIFY: usize = 24;

/// The character trigrams of a normalized name, padded with a space at each end, each
/// packed in a u64 (21 bits per character); sorted, without repeats.
fn trigrams(normalized: &str) -> Vec<u64> {
    let chars: Vec<u64> = std::iter::once(' ')
        .chain(normalized.chars())
        .chain(std::iter::once(' '))
        .map(u64::from)
        .collect();
    let mut g: Vec<u64> = chars
        .windows(3)
        .map(|w| (w[0] << 42) | (w[1] << 21) | w[2])
        .collect();
    g.sort_unstable();
    g.dedup();
    g
}

impl<K: Clone> NameIndex<K> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a name of supplier `key` (its name or an alias). A name whose normalized form
    /// is already in the index keeps its first supplier.
    pub fn insert(&mut self, name: &str, key: K) {
        let n = normalize(name);
        if n.is_empty() || self.exact.contains_key(&n) {
            return;
        }
        let at = self.names.len() as u32;
        for g in trigrams(&n) {
            self.grams.entry(g).or_default().push(at);
        }
        self.exact.insert(n.clone(), at);
        self.lens.push(u16::try_from(n.len()).unwrap_or(u16::MAX));
        self.names.push((n, key));
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The decision for an incoming `name`: an equal normalized name links at once;
    /// otherwise the best Jaro-Winkler score among the candidates its trigrams find.
    pub fn decide(&self, name: &str, t: Thresholds) -> Decision<K> {
        let n = normalize(name);
        if n.is_empty() {
            return Decision::New;
        }
        if let Some(&i) = self.exact.get(&n) {
            return Decision::Link {
                key: self.names[i as usize].1.clone(),
                score: 1.0,
            };
        }
        let mut lists: Vec<&[u32]> = trigrams(&n)
            .iter()
            .filter_map(|g| self.grams.get(g).map(Vec::as_slice))
            .collect();
        lists.sort_by_key(|l| l.len());
        lists.truncate(PROBE_GRAMS);
        // Counted in a dense array per thread (a hash map costs ~10× more per increment).
        let candidates = SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let Scratch { counts, touched } = &mut *scratch;
            if counts.len() < self.names.len() {
                counts.resize(self.names.len(), 0);
            }
            for l in lists {
                for &i in l {
                    let c = &mut counts[i as usize];
                    if *c == 0 {
                        touched.push(i);
                    }
                    *c += 1;
                }
            }
            // Most shared first; among equals, the closest in length (Jaro-Winkler
            // penalizes a difference in length, and a short name shares its few trigrams
            // with many longer ones), then by insertion order, so that the outcome is
            // deterministic. One u64 per candidate: fewer shared, length difference, index.
            let len = u16::try_from(n.len()).unwrap_or(u16::MAX);
            let mut candidates: Vec<u64> = touched
                .iter()
                .map(|&i| {
                    let fewer = u64::from(u8::MAX - counts[i as usize]);
                    let diff = u64::from(self.lens[i as usize].abs_diff(len));
                    (fewer << 48) | (diff << 32) | u64::from(i)
                })
                .collect();
            for &i in touched.iter() {
                counts[i as usize] = 0;
            }
            touched.clear();
            if candidates.len() > VERIFY {
                candidates.select_nth_unstable(VERIFY);
                candidates.truncate(VERIFY);
            }
            candidates
        });
        let mut best: Option<(f64, u32)> = None;
        for key in candidates {
            let i = key as u32;
            let s = jaro_winkler(&n, &self.names[i as usize].0);
            if best.is_none_or(|(bs, bi)| s > bs || (s == bs && i < bi)) {
                best = Some((s, i));
            }
        }
        match best {
            Some((score, i)) if score >= t.link => Decision::Link {
                key: self.names[i as usize].1.clone(),
                score,
            },
            Some((score, i)) if score >= t.review => Decision::Review {
                key: self.names[i as usize].1.clone(),
                score,
            },
            _ => Decision::New,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_of_one_name_normalize_alike() {
        for v in [
            "ACME, Inc.",
            "Acme Inc",
            "ACME INCORPORATED",
            "acme",
            "  Acme   Inc ",
            "The Acme Company",
            "Acme Co., Ltd.",
            "Acme & Co",
        ] {
            assert_eq!(normalize(v), "acme", "{v:?}");
        }
        assert_eq!(normalize("Müller GmbH"), "muller");
        assert_eq!(normalize("Société Générale S.A."), "societe generale");
        assert_eq!(normalize("Fiat S.p.A."), "fiat");
        assert_eq!(normalize("Toyota Tsusho KK"), "toyota tsusho");
        assert_eq!(normalize("Philips B.V."), "philips");
        assert_eq!(normalize("Smith & Wesson"), "smith and wesson");
        assert_eq!(normalize("Ørsted A/S"), "orsted");
        assert_eq!(normalize("Renault S. A."), "renault");
        assert_eq!(normalize("Skanska AB (publ)"), "skanska");
        // A legal form alone, or punctuation alone, is no name.
        assert_eq!(normalize("Inc."), "");
        assert_eq!(normalize("..."), "");
        // Non-Latin letters are kept, lowercased.
        assert_eq!(normalize("Ωmega Ltd"), "ωmega");
    }

    #[test]
    fn jaro_winkler_matches_the_published_examples() {
        // Winkler's examples (1990), as in the literature: MARTHA/MARHTA, DWAYNE/DUANE,
        // DIXON/DICKSONX.
        let close = |a: &str, b: &str, want: f64| {
            let got = jaro_winkler(a, b);
            assert!((got - want).abs() < 0.001, "{a}/{b}: {got} vs {want}");
        };
        close("martha", "marhta", 0.961);
        close("dwayne", "duane", 0.840);
        close("dixon", "dicksonx", 0.813);
        close("acme", "acme", 1.0);
        close("abc", "xyz", 0.0);
        close("", "", 1.0);
        close("acme", "", 0.0);
        // Symmetric.
        assert_eq!(jaro_winkler("acme", "acma"), jaro_winkler("acma", "acme"));
    }

    #[test]
    fn variants_link_near_misses_go_to_review_and_strangers_are_new() {
        let mut idx = NameIndex::new();
        idx.insert("Acme Inc", 1);
        idx.insert("Globex Corporation", 2);
        idx.insert("Initech LLC", 3);
        idx.insert("ACME, Inc.", 9); // same normalized name: keeps supplier 1
        assert_eq!(idx.len(), 3);
        let t = Thresholds::default();
        for v in ["ACME INCORPORATED", "Acme, Inc.", "acme llc"] {
            assert_eq!(
                idx.decide(v, t),
                Decision::Link { key: 1, score: 1.0 },
                "{v}"
            );
        }
        // A typo links.
        match idx.decide("Globexx Corp", t) {
            Decision::Link { key: 2, score } => assert!(score >= 0.95),
            d => panic!("{d:?}"),
        }
        // "Acma Ltd" is not merged with "Acme Inc": close enough only to be reviewed.
        match idx.decide("Acma Ltd", t) {
            Decision::Review { key: 1, score } => {
                assert!((score - 0.883).abs() < 0.001, "{score}")
            }
            d => panic!("{d:?}"),
        }
        assert_eq!(idx.decide("Umbrella Pharmaceuticals", t), Decision::New);
        assert_eq!(idx.decide("Ltd", t), Decision::New);
        // A name sharing no trigram with any other is compared with none.
        assert_eq!(idx.decide("Zyx", t), Decision::New);
    }

    /// Over 20,000 generated names that share syllables and common words: a name typed
    /// another way always links to its supplier, and one with a letter inserted still finds
    /// it (linked or for review) nearly always, despite the lookup reading only a few
    /// trigram lists.
    #[test]
    fn variants_and_typos_find_their_supplier_in_a_large_index() {
        const SYL: &[&str] = &[
            "ka", "lo", "mi", "ne", "ro", "ta", "vi", "zu", "ber", "dan", "gor", "hel", "jin",
            "kor", "lin", "mar", "nor", "pel", "qua", "ras", "sen", "tor", "ul", "ven",
        ];
        const WORDS: &[&str] = &["global", "services", "logistics", "steel", "foods", ""];
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as usize
        };
        let mut idx = NameIndex::new();
        let mut names = Vec::new();
        for i in 0..20_000 {
            let mut n: String = (0..3).map(|_| SYL[next() % SYL.len()]).collect();
            n = format!("{n} {} Ltd", WORDS[next() % WORDS.len()]);
            if idx.exact.contains_key(&normalize(&n)) {
                continue;
            }
            idx.insert(&n, i);
            names.push((n, i));
        }
        let t = Thresholds::default();
        let (mut found, mut tried) = (0, 0);
        for (n, key) in names.iter().step_by(10) {
            assert_eq!(
                idx.decide(
                    &format!("{} INC.", n.trim_end_matches(" Ltd").to_uppercase()),
                    t
                ),
                Decision::Link {
                    key: *key,
                    score: 1.0
                }
            );
            let mut typo = normalize(n);
            let at = 1 + next() % (typo.len() - 1);
            typo.insert(at, 'x');
            tried += 1;
            match idx.decide(&typo, t) {
                Decision::Link { key: k, .. } | Decision::Review { key: k, .. } if k == *key => {
                    found += 1
                }
                _ => {}
            }
        }
        assert!(found * 100 >= tried * 95, "{found} of {tried}");
    }

    /// A short name shares its few trigrams with many longer names: the candidates of the
    /// same length are scored first, so "Acma Ltd" still meets "Acme Inc" among hundreds of
    /// older "Acme …" names.
    #[test]
    fn a_short_name_finds_its_match_among_many_longer_ones() {
        let mut idx = NameIndex::new();
        for i in 0..300 {
            idx.insert(&format!("Acme Division {i} Holdings"), i);
            idx.insert(&format!("Cinema Works {i}"), 1000 + i);
        }
        idx.insert("Acme Inc", 9999);
        match idx.decide("Acma Ltd", Thresholds::default()) {
            Decision::Review { key, score } => {
                assert_eq!(key, 9999);
                assert!((score - 0.883).abs() < 0.001, "{score}");
            }
            d => panic!("{d:?}"),
        }
    }
}
