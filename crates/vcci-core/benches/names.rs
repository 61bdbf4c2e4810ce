//! Supplier-name matching (one core): lookups against an index of 100,000 suppliers whose
//! names share common words, as real supplier lists do.
//!
//! Run: `cargo bench -p vcci-core --bench names`. With the item counter, divan prints names
//! per second.

use divan::{Bencher, black_box, counter::ItemsCount};
use vcci_core::names::{NameIndex, Thresholds, normalize};

fn main() {
    divan::main();
}

const SUPPLIERS: usize = 100_000;
const QUERIES: usize = 10_000;

const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ne", "ro", "ta", "vi", "zu", "ber", "dan", "gor", "hel", "jin", "kor",
    "lin", "mar", "nor", "pel", "qua", "ras", "sen", "tor", "ul", "ven", "wes", "xan", "yor",
    "zel", "bra", "cle", "dre", "fro",
];
const WORDS: &[&str] = &[
    "global",
    "services",
    "solutions",
    "industries",
    "logistics",
    "systems",
    "group",
    "holdings",
    "international",
    "technologies",
    "consulting",
    "manufacturing",
    "energy",
    "supply",
    "partners",
    "foods",
    "chemicals",
    "steel",
    "packaging",
    "transport",
];
const FORMS: &[&str] = &[
    "Inc.", "Ltd", "LLC", "GmbH", "S.A.", "S.p.A.", "BV", "KK", "Co.", "",
];

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 as usize
    }
}

fn name(r: &mut Rng) -> String {
    let mut n = String::new();
    for _ in 0..2 + r.next() % 2 {
        n.push_str(SYLLABLES[r.next() % SYLLABLES.len()]);
    }
    let mut s = format!("{}{}", n[..1].to_uppercase(), &n[1..]);
    if !r.next().is_multiple_of(3) {
        s = format!("{s} {}", WORDS[r.next() % WORDS.len()]);
    }
    format!("{s} {}", FORMS[r.next() % FORMS.len()])
}

/// The index and queries: a third typed another way (case, legal form), a third with a
/// typo, a third new names.
fn setup() -> (NameIndex<usize>, Vec<String>) {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let names: Vec<String> = (0..SUPPLIERS).map(|_| name(&mut r)).collect();
    let mut idx = NameIndex::new();
    for (i, n) in names.iter().enumerate() {
        idx.insert(n, i);
    }
    let queries = (0..QUERIES)
        .map(|q| {
            let base = &names[r.next() % names.len()];
            match q % 3 {
                0 => format!("{} INC", normalize(base).to_uppercase()),
                1 => {
                    let mut n = normalize(base);
                    let at = 1 + r.next() % (n.len() - 1);
                    n.insert(at, 'x');
                    n
                }
                _ => name(&mut r),
            }
        })
        .collect();
    (idx, queries)
}

#[divan::bench(sample_count = 10)]
fn match_names(b: Bencher) {
    let (idx, queries) = setup();
    b.counter(ItemsCount::new(queries.len())).bench(|| {
        for q in &queries {
            black_box(idx.decide(black_box(q), Thresholds::default()));
        }
    });
}

#[divan::bench(sample_count = 10)]
fn normalize_names(b: Bencher) {
    let (_, queries) = setup();
    b.counter(ItemsCount::new(queries.len())).bench(|| {
        for q in &queries {
            black_box(normalize(black_box(q)));
        }
    });
}

/// Building the index of 100,000 names (what a write that needs resolution pays once).
#[divan::bench(sample_count = 5)]
fn build_index(b: Bencher) {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let names: Vec<String> = (0..SUPPLIERS).map(|_| name(&mut r)).collect();
    b.counter(ItemsCount::new(names.len())).bench(|| {
        let mut idx = NameIndex::new();
        for (i, n) in names.iter().enumerate() {
            idx.insert(black_box(n), i);
        }
        black_box(idx.len())
    });
}
