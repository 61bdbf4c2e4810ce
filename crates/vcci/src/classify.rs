//! `vcci classify`: an organization's classification rules, its review threshold, and
//! training its model from its own lines (issue 19). What each line was classified as, and
//! why, `vcci explain` shows.

use anyhow::{Result, anyhow, bail};
use vcci_core::Date;
use vcci_core::classify::RuleKind;
use vcci_store::model::reports::DateRange;
use vcci_store::{Actor, Store};

use crate::cli::{ClassifyCommand, ClassifyRulesCommand, Format};
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
                "Rule {} of '{}': {} '{}' → NAICS {}, category {}{}. It applies to lines written from now on.",
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
        ClassifyCommand::Train(a) => {
            let org = db.require_org(&a.org)?;
            let r = db.train_classifier(org.id)?;
            println!(
                "Trained '{}' in {:.2} s: {} of {} lines carry their own NAICS code and were learned from.",
                org.name,
                r.seconds,
                group(u64::from(r.examples)),
                group(r.lines_read)
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
