//! A report job: computed from the read models and stored as the job's file (CSV or JSON).

use serde_json::{Value, json};
use vcci_core::Date;
use vcci_store::model::jobs::{Job, JobFileWriter};
use vcci_store::model::reports::DateRange;
use vcci_store::{Db, OrgId, StoreError};

use super::Outcome;
use crate::App;

fn csv_row(fields: &[String]) -> String {
    let mut s = fields
        .iter()
        .map(|f| vcci_store::model::csvout::field(f).into_owned())
        .collect::<Vec<_>>()
        .join(",");
    s.push('\n');
    s
}

/// Runs a report job (on a blocking thread): computes it and stores the file.
pub(super) fn run(app: &App, job: &Job) -> Result<Outcome, StoreError> {
    let p: Value = serde_json::from_str(&job.params).unwrap_or_default();
    let date = |k: &str| p[k].as_str().and_then(|s| Date::parse(s).ok());
    let range = DateRange {
        from: date("date_from"),
        to: date("date_to"),
    };
    let csv = p["format"] == "csv";
    let db = app.store().connect()?;
    let report = Report {
        db: &db,
        org: job.org_id,
        range,
        csv,
    };
    let (bytes, rows) = match p["report_type"].as_str().unwrap_or("") {
        "inventory" => report.inventory()?,
        "by_category" => report.by_category()?,
        "by_month" => report.by_month()?,
        _ => report.by_supplier()?,
    };
    let mut w = JobFileWriter::create(app.store(), &job.id, "report")?;
    std::io::Write::write_all(&mut w, &bytes).map_err(io)?;
    let size = w.finish().map_err(io)?;
    db.job_progress(&job.id, &app.node, rows as i64, 0)?;
    Ok(Outcome::Succeeded(json!({
        "download_url": format!("/api/v1/reports/{}/download", job.id),
        "format": if csv { "csv" } else { "json" },
        "rows": rows,
        "bytes": size,
    })))
}

/// One report's inputs; each type gives (the file's bytes, its rows).
struct Report<'a> {
    db: &'a Db,
    org: OrgId,
    range: DateRange,
    csv: bool,
}

type Rendered = (Vec<u8>, usize);

impl Report<'_> {
    fn inventory(&self) -> Result<Rendered, StoreError> {
        let inv = self.db.inventory(self.org, self.range)?;
        let n = inv.categories.len();
        Ok(if self.csv {
            (inv.to_csv().into_bytes(), n)
        } else {
            (to_json(&inv)?, n)
        })
    }

    fn by_category(&self) -> Result<Rendered, StoreError> {
        let s = self.db.summary(self.org, self.range, None)?;
        let n = s.by_category.len();
        if !self.csv {
            return Ok((to_json(&s)?, n));
        }
        let mut out = String::from("category,name,co2e_kg,transaction_count,share\n");
        for c in &s.by_category {
            out += &csv_row(&[
                c.category.to_string(),
                c.name.to_string(),
                c.co2e_kg.to_string(),
                c.transaction_count.to_string(),
                c.share.to_string(),
            ]);
        }
        Ok((out.into_bytes(), n))
    }

    fn by_month(&self) -> Result<Rendered, StoreError> {
        let months = self.db.by_month(self.org, self.range)?;
        let n = months.len();
        if !self.csv {
            return Ok((to_json(&json!({"data": months}))?, n));
        }
        let mut out = String::from("month,co2e_kg,transaction_count");
        for c in 1..=15 {
            out += &format!(",category_{c}_co2e_kg");
        }
        out.push('\n');
        for m in &months {
            let mut f = vec![
                m.month.clone(),
                m.co2e_kg.to_string(),
                m.transaction_count.to_string(),
            ];
            for c in 1..=15 {
                f.push(
                    m.by_category
                        .get(&c.to_string())
                        .map_or(String::from("0"), |v| v.to_string()),
                );
            }
            out += &csv_row(&f);
        }
        Ok((out.into_bytes(), n))
    }

    fn by_supplier(&self) -> Result<Rendered, StoreError> {
        let ranked = self.db.by_supplier(self.org, self.range, usize::MAX)?;
        let n = ranked.len();
        if !self.csv {
            return Ok((to_json(&json!({"data": ranked}))?, n));
        }
        let mut out = String::from("rank,supplier_id,name,co2e_kg,transaction_count,spend_usd\n");
        for (i, s) in ranked.iter().enumerate() {
            out += &csv_row(&[
                (i + 1).to_string(),
                s.supplier_id.clone().unwrap_or_default(),
                s.name.clone().unwrap_or_default(),
                s.co2e_kg.to_string(),
                s.transaction_count.to_string(),
                s.spend_usd.to_string(),
            ]);
        }
        Ok((out.into_bytes(), n))
    }
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::Io {
        context: "storing the report".into(),
        source: e,
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec_pretty(v)
        .map_err(|e| StoreError::internal(format!("encoding the report: {e}")))
}
