//! Text as the classifier sees it: words lowercased, accents folded, plurals reduced, numbers
//! and filler words dropped. The vocabulary is normalized by the same function, so a term
//! matches whatever case, accents or plural it is written in.

use crate::names::fold;

/// Words that carry no meaning for classification.
const STOP: &[&str] = &[
    "a",
    "an",
    "and",
    "the",
    "of",
    "for",
    "to",
    "in",
    "on",
    "at",
    "by",
    "with",
    "from",
    "per",
    "via",
    "inv",
    "invoice",
    "ref",
    "po",
    "no",
    "nr",
    "num",
    "qty",
    "x",
    "re",
    "our",
    "we",
    "is",
    "be",
    "or",
    "as",
    "into",
    "incl",
    "including",
    "plus",
    "fy",
    "q1",
    "q2",
    "q3",
    "q4",
    "jan",
    "feb",
    "mar",
    "apr",
    "may",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
    "january",
    "february",
    "march",
    "april",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "monthly",
    "annual",
    "yearly",
    "quarterly",
    "inc",
    "ltd",
    "llc",
    "gmbh",
    "plc",
    "corp",
    "co",
    "sa",
    "bv",
    "ag",
];

/// Appends the normalized words of `text` to `out` (after what it holds).
pub fn words(text: &str, out: &mut Vec<String>) {
    let mut cur = String::new();
    let mut chars = text.chars().peekable();
    let mut prev_alnum = false;
    while let Some(c) = chars.next() {
        // `&` between letters joins them: "T&E", "R&D", "PP&E" stay one word; elsewhere it
        // is "and" (dropped).
        if c == '&' && prev_alnum && chars.peek().is_some_and(|n| n.is_alphanumeric()) {
            cur.push('&');
            continue;
        }
        // An apostrophe inside a word is dropped: "McDonald's" is `mcdonalds`.
        if (c == '\'' || c == '’') && prev_alnum {
            continue;
        }
        if c.is_ascii_alphanumeric() {
            cur.push(c.to_ascii_lowercase());
            prev_alnum = true;
            continue;
        }
        if !c.is_ascii() {
            if let Some(s) = fold(c) {
                cur.push_str(s);
                prev_alnum = true;
                continue;
            }
            if c.is_alphanumeric() {
                cur.extend(c.to_lowercase());
                prev_alnum = true;
                continue;
            }
        }
        flush(&mut cur, out);
        prev_alnum = false;
    }
    flush(&mut cur, out);
}

fn flush(cur: &mut String, out: &mut Vec<String>) {
    if cur.is_empty() {
        return;
    }
    let w = std::mem::take(cur);
    // Numbers (amounts, dates, invoice numbers) say nothing of what was bought; words with
    // digits and letters ("o2", "3pl", "s3", "m365") may.
    if w.bytes().all(|b| b.is_ascii_digit()) || STOP.contains(&w.as_str()) {
        return;
    }
    out.push(stem(w));
}

/// Plurals reduced to the singular: "supplies" → "supply", "boxes" → "box", "taxis" →
/// "taxi"; words of three letters or less, and "ss"/"us"/"is" endings, are kept.
fn stem(mut w: String) -> String {
    let n = w.len();
    if n <= 3 || !w.is_ascii() {
        return w;
    }
    if w == "taxis" {
        w.truncate(4);
        return w;
    }
    if w.ends_with("ies") && n > 4 {
        w.truncate(n - 3);
        w.push('y');
    } else if (w.ends_with("xes")
        || w.ends_with("ches")
        || w.ends_with("shes")
        || w.ends_with("sses"))
        && n > 4
    {
        w.truncate(n - 2);
    } else if w.ends_with('s') && !w.ends_with("ss") && !w.ends_with("us") && !w.ends_with("is") {
        w.truncate(n - 1);
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ws(s: &str) -> Vec<String> {
        let mut v = Vec::new();
        words(s, &mut v);
        v
    }

    #[test]
    fn normalizes() {
        assert_eq!(ws("Office Supplies (Q3) - inv #4471"), ["office", "supply"]);
        assert_eq!(ws("T&E: Taxis & Hotels"), ["t&e", "taxi", "hotel"]);
        assert_eq!(ws("McDonald's, Café Crème"), ["mcdonald", "cafe", "creme"]);
        assert_eq!(ws("Boxes, glasses, business"), ["box", "glass", "business"]);
        assert_eq!(ws("3PL storage 2024-03"), ["3pl", "storage"]);
        assert_eq!(ws("Mwst. Gebühren"), ["mwst", "gebuhren"]);
    }
}
