//! How much of an organization's spend and emissions rests on classification (issue 19),
//! by source, what needs review, and the suppliers that most need a code: one pass over the
//! lines' bodies (`CoverageAcc`), shared by `Db::classification_coverage` and the inventory.

use std::collections::HashMap;

use serde::Serialize;
use vcci_core::classify::Source;

use crate::codec::Body;
use crate::conn::{Db, Row, args};
use crate::model::orgs::OrgId;
use crate::model::reports::DateRange;
use crate::{Result, StoreError};

/// Lines, spend and emissions of one part of a coverage report.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CoverageTotals {
    pub lines: u64,
    pub spend_usd: f64,
    pub co2e_kg: f64,
}

impl CoverageTotals {
    fn add(&mut self, spend: f64, kg: f64) {
        self.lines += 1;
        self.spend_usd += spend;
        self.co2e_kg += kg;
    }
}

/// One source's part of the coverage.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CoverageRow {
    /// `given` (the line or its supplier had the code, or the line is activity, product or
    /// supplier data), or the classification source that decided.
    pub source: &'static str,
    #[serde(flatten)]
    pub totals: CoverageTotals,
    pub spend_share: Option<f64>,
    pub co2e_share: Option<f64>,
}

/// A supplier whose lines had no code and were classified.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UnclassifiedSupplier {
    /// The supplier's key ('' for lines without a supplier).
    pub supplier_id: String,
    #[serde(flatten)]
    pub totals: CoverageTotals,
    pub needs_review_lines: u64,
}

/// How much of an organization's spend and emissions rests on classification, by source;
/// what needs review; and the suppliers that most need a code.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Coverage {
    #[serde(flatten)]
    pub totals: CoverageTotals,
    pub by_source: Vec<CoverageRow>,
    pub needs_review: CoverageTotals,
    /// By classified spend, largest first.
    pub largest_unclassified_suppliers: Vec<UnclassifiedSupplier>,
}

impl Coverage {
    /// Share of the emissions from lines whose code classification gave (every source but
    /// `given`); None without emissions.
    pub fn classified_co2e_share(&self) -> Option<f64> {
        let given: f64 = self
            .by_source
            .iter()
            .filter(|r| r.source == "given")
            .map(|r| r.totals.co2e_kg)
            .sum();
        (self.totals.co2e_kg != 0.0).then(|| (self.totals.co2e_kg - given) / self.totals.co2e_kg)
    }

    /// Share of the emissions from lines flagged for review; None without emissions.
    pub fn needs_review_co2e_share(&self) -> Option<f64> {
        (self.totals.co2e_kg != 0.0).then(|| self.needs_review.co2e_kg / self.totals.co2e_kg)
    }
}

/// Suppliers listed in a coverage report, at most.
pub const COVERAGE_SUPPLIERS: usize = 20;

/// The part of a stored classification a coverage report reads.
#[derive(serde::Deserialize)]
pub(crate) struct SourceAndReview {
    pub source: Source,
    pub needs_review: bool,
}

impl SourceAndReview {
    /// The source and review flag of a stored line's classification, if it has one.
    pub(crate) fn of(b: &Body) -> Result<Option<SourceAndReview>> {
        b.classification
            .as_deref()
            .map(|c| {
                serde_json::from_str(c).map_err(|e| {
                    StoreError::corrupt(format!("a stored line's classification: {e}"))
                })
            })
            .transpose()
    }
}

/// A coverage report being summed, line by line.
#[derive(Debug, Default)]
pub(crate) struct CoverageAcc {
    totals: CoverageTotals,
    /// `given`, then `Source::ALL`.
    parts: [CoverageTotals; 6],
    review: CoverageTotals,
    suppliers: HashMap<String, UnclassifiedSupplier>,
}

impl CoverageAcc {
    /// Adds a line: its supplier key, spend, emissions and body.
    pub(crate) fn add(
        &mut self,
        supplier: Option<String>,
        spend: f64,
        kg: f64,
        c: Option<&SourceAndReview>,
    ) {
        self.totals.add(spend, kg);
        let Some(c) = c else {
            self.parts[0].add(spend, kg);
            return;
        };
        let i = Source::ALL.iter().position(|s| *s == c.source).unwrap_or(0);
        self.parts[i + 1].add(spend, kg);
        if c.needs_review {
            self.review.add(spend, kg);
        }
        if matches!(c.source, Source::OrganizationModel | Source::BuiltinModel) {
            let key = supplier.unwrap_or_default();
            let s = self
                .suppliers
                .entry(key.clone())
                .or_insert_with(|| UnclassifiedSupplier {
                    supplier_id: key,
                    totals: CoverageTotals::default(),
                    needs_review_lines: 0,
                });
            s.totals.add(spend, kg);
            s.needs_review_lines += u64::from(c.needs_review);
        }
    }

    pub(crate) fn finish(self) -> Coverage {
        let totals = self.totals;
        let share = |part: f64, whole: f64| (whole != 0.0).then(|| part / whole);
        let names = ["given"]
            .into_iter()
            .chain(Source::ALL.iter().map(|s| s.as_str()));
        let by_source = names
            .zip(self.parts)
            .map(|(source, t)| CoverageRow {
                source,
                spend_share: share(t.spend_usd, totals.spend_usd),
                co2e_share: share(t.co2e_kg, totals.co2e_kg),
                totals: t,
            })
            .collect();
        let mut largest: Vec<UnclassifiedSupplier> = self.suppliers.into_values().collect();
        largest.sort_by(|a, b| {
            b.totals
                .spend_usd
                .total_cmp(&a.totals.spend_usd)
                .then_with(|| a.supplier_id.cmp(&b.supplier_id))
        });
        largest.truncate(COVERAGE_SUPPLIERS);
        Coverage {
            totals,
            by_source,
            needs_review: self.review,
            largest_unclassified_suppliers: largest,
        }
    }
}

impl Db {
    /// The classification coverage of `org`'s lines dated in `range` (one pass over them).
    pub fn classification_coverage(&self, org: OrgId, range: DateRange) -> Result<Coverage> {
        let (from, to) = range.bounds();
        let mut acc = CoverageAcc::default();
        self.conn.for_each(
            "SELECT supplier_id, spend_usd, co2e_kg, body FROM transactions
             WHERE org_id = ?1 AND day BETWEEN ?2 AND ?3",
            args![org.0, i64::from(from), i64::from(to)],
            |r: &Row<'_>| {
                let b = Body::decode(r.blob(3)?)?;
                acc.add(
                    r.opt_string(0)?,
                    r.opt_f64(1)?.unwrap_or(0.0),
                    r.f64(2)?,
                    SourceAndReview::of(&b)?.as_ref(),
                );
                Ok(())
            },
        )?;
        Ok(acc.finish())
    }
}
