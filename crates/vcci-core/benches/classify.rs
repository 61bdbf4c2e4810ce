//! Line classification (one core): the lines of the evaluation set
//! (`tests/data/classify_eval.csv`), classified cold (normalization, then the built-in model
//! and an empty organization model) and classified from a cache of earlier answers keyed by
//! the normalized features, as an import does for repeated lines.
//!
//! Run: `cargo bench -p vcci-core --bench classify`. With the item counter, divan prints
//! lines per second.

use std::collections::HashMap;

use divan::{Bencher, black_box, counter::ItemsCount};
use vcci_core::classify::{
    Builtin, Classifier, DEFAULT_REVIEW_BELOW, Features, Input, OrgModel, Outcome, Rules,
};

fn main() {
    divan::main();
}

/// (description, supplier, account, account name) of each evaluation line.
fn lines() -> Vec<[String; 4]> {
    include_str!("../tests/data/classify_eval.csv")
        .lines()
        .skip(1)
        .map(|l| {
            // The bench needs the text, not exact CSV: quoted commas are rare in the set, and
            // a field split at one still reads as text.
            let f: Vec<String> = l
                .split(',')
                .map(|s| s.trim_matches('"').to_owned())
                .collect();
            [f[0].clone(), f[1].clone(), f[2].clone(), f[3].clone()]
        })
        .collect()
}

fn input(l: &[String; 4]) -> Input<'_> {
    Input {
        description: Some(&l[0]),
        supplier_name: Some(&l[1]),
        gl_account: Some(&l[2]),
        gl_account_name: Some(&l[3]),
        ..Input::default()
    }
}

#[divan::bench]
fn cold(b: Bencher) {
    let ls = lines();
    let rules = Rules::default();
    let model = OrgModel::new();
    let c = Classifier {
        reviews: None,
        rules: &rules,
        model: Some(&model),
        builtin: Builtin::get(),
        review_below: DEFAULT_REVIEW_BELOW,
    };
    b.counter(ItemsCount::new(ls.len())).bench(|| {
        let mut n = 0u32;
        for l in &ls {
            if let Outcome::Classified(x) = c.classify(black_box(&input(l))) {
                n += x.label.naics.code() & 1;
            }
        }
        n
    });
}

#[divan::bench]
fn cached(b: Bencher) {
    let ls = lines();
    let rules = Rules::default();
    let c = Classifier {
        reviews: None,
        rules: &rules,
        model: None,
        builtin: Builtin::get(),
        review_below: DEFAULT_REVIEW_BELOW,
    };
    let cache: HashMap<u64, Outcome> = ls
        .iter()
        .map(|l| {
            let f = Features::of(&input(l));
            (f.hash64(), c.classify_features(&f))
        })
        .collect();
    b.counter(ItemsCount::new(ls.len())).bench(|| {
        let mut n = 0usize;
        for l in &ls {
            let f = Features::of(black_box(&input(l)));
            n += usize::from(cache.contains_key(&f.hash64()));
        }
        n
    });
}
