//! `vcci classify`: an organization's classification rules, its review threshold, and
//! training its model from its own lines (issue 19). What each line was classified as, and
//! why, `vcci explain` shows.

use anyhow::{Result, anyhow, bail};
use vcci_core::Date;
use vcci_core::classify::RuleKind;
use vcci_store::model::reports::DateRange;
use vcci_store::{Actor, Store};

use crate::cli::{
    ClassifyCommand, ClassifyReviewArgs, ClassifyReviewCommand, ClassifyRulesCommand, Format,
};
use crate::output::{Table, pct, tonnes};
use crate::progress::group;

pub fn classify_cmd(store: Store, c: ClassifyCommand) -> Result<()> {
    let mut db = store.connect()?;
    match c {
        ClassifyCommand::Rules(ClassifyRulesCommand::List(a)) => {
            let org = db.require_org(&a.org)?;
            let rules = db.classification_rules(org.id)?;
            if matches!(a.format, Format::Json) {
                println!("{}", serde_json::to_string_pretty(&rules)?);
                return Ok(());
            }
            let mut t = Table::new(&[
                ("id", true),
                ("kind", false),
                ("pattern", false),
                ("naics", false),
                ("category", true),
                ("capex", false),
                ("created", false),
            ]);
            for r in &rules {
                t.row(vec![
                    r.id.to_string(),
                    r.kind.into(),
                    r.pattern.clone(),
                    r.naics_code.clone(),
                    r.category.to_string(),
                    if r.capex { "yes" } else { "" }.into(),
                    format!("{} by {}", r.created_at, r.created_by),
                ]);
            }
            print!("{}", t.to_text());
        }
        ClassifyCommand::Rules(ClassifyRulesCommand::Add(a)) => {
            let org = db.require_org(&a.org)?;
            let kind = RuleKind::parse(&a.kind).ok_or_else(|| {
                anyhow!(
                    "--kind: '{}' is not gl_account, supplier or keyword",
                    a.kind
                )
            })?;
            let label = vcci_core::classify::rule_label(&a.naics, a.category, a.capex).map_err(
                |(field, m)| {
                    let flag = if field == "naics_code" {
                        "naics"
                    } else {
                        field
                    };
                    anyhow!("--{flag}: {m}")
                },
            )?;
            let r = db.add_classification_rule(org.id, kind, &a.pattern, label, &Actor::cli())?;
            println!(
                "Rule {} of '{}': {} '{}' → NAICS {}, category {}{}. It applies to lines written from now on; `vcci classify apply` applies it to stored lines.",
                r.id,
                org.name,
                r.kind,
                r.pattern,
                r.naics_code,
                r.category,
                if r.capex { ", capital" } else { "" }
            );
        }
        ClassifyCommand::Rules(ClassifyRulesCommand::Delete(a)) => {
            let org = db.require_org(&a.org)?;
            if !db.delete_classification_rule(org.id, a.id, &Actor::cli())? {
                bail!("organization '{}' has no rule {}", org.name, a.id);
            }
            println!("Deleted rule {} of '{}'.", a.id, org.name);
        }
        ClassifyCommand::Review(ClassifyReviewCommand::List(a)) => {
            let org = db.require_org(&a.org)?;
            let items = db.review_queue(org.id, None, a.limit.clamp(1, 1000))?;
            let size = db.review_queue_size(org.id)?;
            if matches!(a.format, Format::Json) {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"queue": size, "data": items})
                    )?
                );
                return Ok(());
            }
            println!(
                "'{}': {} lines to review, {} USD, {} tCO2e.",
                org.name,
                group(size.lines),
                group(size.spend_usd.round() as u64),
                tonnes(size.co2e_kg)
            );
            let mut t = Table::new(&[
                ("transaction", false),
                ("date", false),
                ("spend USD", true),
                ("supplier", false),
                ("description", false),
                ("naics", false),
                ("category", true),
                ("source", false),
                ("confidence", true),
            ]);
            for i in &items {
                let c = i.line.emission.classification.as_ref();
                t.row(vec![
                    i.line.transaction_id.clone(),
                    i.line.date.clone(),
                    group(i.spend_usd.round() as u64),
                    i.line.supplier_id.clone().unwrap_or_default(),
                    i.line.description.clone().unwrap_or_default(),
                    c.map(|c| c.label.naics.to_string()).unwrap_or_default(),
                    c.map(|c| c.label.category.number().to_string())
                        .unwrap_or_default(),
                    c.map(|c| c.source.as_str().to_owned()).unwrap_or_default(),
                    c.map(|c| format!("{:.2}", c.confidence))
                        .unwrap_or_default(),
                ]);
            }
            print!("{}", t.to_text());
        }
        ClassifyCommand::Review(ClassifyReviewCommand::Accept(a)) => review(&mut db, a, false)?,
        ClassifyCommand::Review(ClassifyReviewCommand::Correct(a)) => review(&mut db, a, true)?,
        ClassifyCommand::Apply(a) => {
            let org = db.require_org(&a.org)?;
            let r = db.reclassify_lines(vcci_core::catalog(), &org, &Actor::cli())?;
            println!(
                "Classified again {} lines of '{}': {} changed, {} of closed years kept, {} no longer calculate (they keep their result).",
                group(r.lines_read),
                org.name,
                group(r.lines_changed),
                group(r.lines_kept_closed),
                group(r.errors_total)
            );
            for e in &r.errors {
                println!("  {}: {} ({})", e.transaction_id, e.message, e.code);
            }
        }
        ClassifyCommand::Train(a) => {
            let org = db.require_org(&a.org)?;
            let r = db.train_classifier(org.id)?;
            println!(
                "Trained '{}' in {:.2} s from {} of {} lines (those carrying their own NAICS code) and {} reviewed lines.",
                org.name,
                r.seconds,
                group(u64::from(r.examples.saturating_sub(
                    r.reviews * vcci_core::classify::REVIEW_WEIGHT
                ))),
                group(r.lines_read),
                group(u64::from(r.reviews))
            );
        }
        ClassifyCommand::Coverage(a) => {
            let org = db.require_org(&a.org)?;
            let range = match a.year {
                Some(y) => DateRange {
                    from: Date::new(y, 1, 1),
                    to: Date::new(y, 12, 31),
                },
                None => DateRange::default(),
            };
            let c = db.classification_coverage(org.id, range)?;
            if matches!(a.format, Format::Json) {
                println!("{}", serde_json::to_string_pretty(&c)?);
                return Ok(());
            }
            let mut t = Table::new(&[
                ("source", false),
                ("lines", true),
                ("spend USD", true),
                ("spend", true),
                ("tCO2e", true),
                ("emissions", true),
            ]);
            for r in &c.by_source {
                t.row(vec![
                    r.source.into(),
                    group(r.totals.lines),
                    group(r.totals.spend_usd.round() as u64),
                    r.spend_share.map(pct).unwrap_or_default(),
                    tonnes(r.totals.co2e_kg),
                    r.co2e_share.map(pct).unwrap_or_default(),
                ]);
            }
            print!("{}", t.to_text());
            println!(
                "Needs review: {} lines, {} USD, {} tCO2e.",
                group(c.needs_review.lines),
                group(c.needs_review.spend_usd.round() as u64),
                tonnes(c.needs_review.co2e_kg)
            );
            if !c.largest_unclassified_suppliers.is_empty() {
                println!(
                    "Suppliers without a code, by classified spend (give them a code or a rule):"
                );
                let mut t = Table::new(&[
                    ("supplier", false),
                    ("lines", true),
                    ("spend USD", true),
                    ("tCO2e", true),
                    ("to review", true),
                ]);
                for s in &c.largest_unclassified_suppliers {
                    t.row(vec![
                        s.supplier_id.clone(),
                        group(s.totals.lines),
                        group(s.totals.spend_usd.round() as u64),
                        tonnes(s.totals.co2e_kg),
                        group(s.needs_review_lines),
                    ]);
                }
                print!("{}", t.to_text());
            }
        }
        ClassifyCommand::Status(a) => {
            let org = db.require_org(&a.org)?;
            if let Some(v) = a.review_below {
                db.set_review_threshold(org.id, v, &Actor::cli())?;
            }
            let s = db.classification_state(org.id)?;
            println!(
                "'{}': lines classified below {:.2} confidence are flagged for review; {} rules; the model learned from {} lines{}.",
                org.name,
                s.review_below,
                s.rules,
                group(u64::from(s.examples)),
                s.trained_at
                    .map(|t| format!(" (trained {t})"))
                    .unwrap_or_else(|| " (never trained)".into())
            );
        }
    }
    Ok(())
}

/// `vcci classify review accept|correct`.
fn review(db: &mut vcci_store::Db, a: ClassifyReviewArgs, correct: bool) -> Result<()> {
    use vcci_store::classify::{ReviewInput, RuleFromReview};
    let org = db.require_org(&a.org)?;
    if correct && a.naics.is_none() && a.category.is_none() && a.capex.is_none() {
        bail!("a correction gives --naics, --category or --capex");
    }
    if !correct && (a.naics.is_some() || a.category.is_some() || a.capex.is_some()) {
        bail!("accept takes no --naics, --category or --capex (use `correct`)");
    }
    let naics = a
        .naics
        .as_deref()
        .map(|n| {
            n.trim()
                .parse::<u32>()
                .ok()
                .and_then(vcci_core::Naics::from_code)
                .ok_or_else(|| anyhow!("--naics: '{n}' is not a 6-digit NAICS code"))
        })
        .transpose()?;
    let category = a
        .category
        .map(|c| {
            vcci_core::Category::new(c)
                .ok_or_else(|| anyhow!("--category: {c} is not a Scope 3 category (1 to 15)"))
        })
        .transpose()?;
    let rule = a
        .rule
        .as_deref()
        .map(|k| {
            RuleKind::parse(k)
                .map(|kind| RuleFromReview {
                    kind,
                    pattern: a.pattern.clone(),
                })
                .ok_or_else(|| anyhow!("--rule: '{k}' is not gl_account, supplier or keyword"))
        })
        .transpose()?;
    let items: Vec<ReviewInput> = a
        .ids
        .iter()
        .map(|id| ReviewInput {
            transaction_id: id.clone(),
            naics,
            category,
            capex: a.capex,
        })
        .collect();
    let r = db.review_classifications(vcci_core::catalog(), &org, &items, rule, &Actor::cli())?;
    for l in &r.reviewed {
        println!(
            "{} {}: NAICS {}, category {}{}.",
            l.transaction_id,
            l.verdict,
            l.naics_code,
            l.category,
            if l.capex { ", capital" } else { "" }
        );
    }
    println!(
        "{} lines calculated again (with the flagged lines of the same input){}; {} lines left to review.",
        group(r.lines_changed),
        if r.lines_kept_closed > 0 {
            format!(", {} of closed years kept", group(r.lines_kept_closed))
        } else {
            String::new()
        },
        group(r.queue.lines)
    );
    if let Some(rule) = &r.rule {
        println!(
            "Rule {}: {} '{}' → NAICS {}, category {}. It applies to lines written from now on.",
            rule.id, rule.kind, rule.pattern, rule.naics_code, rule.category
        );
    }
    Ok(())
}
