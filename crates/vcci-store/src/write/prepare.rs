//! A parsed line made ready to write: calculated (vcci-core), with its spend in USD, a hash
//! of its fields and result (unchanged re-imports are recognised by it), and everything
//! that is not a column encoded into its body (`codec.rs`).

use std::borrow::Cow;
use std::collections::HashMap;

use vcci_core::calc::FactorRef;
use vcci_core::{Catalog, Currency, Emission, Line, LineError, SupplierProfile};

use super::readmodel::Contribution;
use crate::Result;
use crate::classify::{OrgClassifier, classify_line};
use crate::codec::{
    BodyRef, Extras, basis_code, extras_of, factor_source_code, kg_to_mg, method_code, scope_split,
    source_code, usd_to_musd,
};
use crate::model::orgs::Org;

/// A line that was calculated and is ready to be written.
#[derive(Clone, Debug)]
pub struct PreparedLine {
    pub line: Line,
    pub emission: Emission,
    /// The spend in USD of the spend year, when the line has an amount that converts.
    pub spend_usd: Option<f64>,
    /// Hash of the line's fields and result, to detect unchanged re-imports.
    pub hash: i64,
    /// Physical line in the source file, for imports.
    pub source_line: Option<i64>,
    /// Everything that is not a column, encoded (see codec.rs).
    pub(crate) body: Vec<u8>,
    /// What the line adds to the read models beyond CO2e, spend and count, computed once
    /// here (an import counts a line, and may take it out again, on different threads).
    extras: Extras,
}

/// Calculates `line` for `org`, given the supplier profiles the caller knows. A spend line
/// without a NAICS code of its own or of its supplier is classified first by `classifier`
/// (without one, it needs a code as before).
pub fn prepare(
    cat: &'static Catalog,
    org: &Org,
    mut line: Line,
    suppliers: &HashMap<String, SupplierProfile>,
    source_line: Option<i64>,
    classifier: Option<&OrgClassifier>,
) -> Result<PreparedLine, LineError> {
    let mut classification_json = None;
    if let Some(c) = classifier {
        let profile = line.supplier_key().and_then(|k| suppliers.get(k));
        classification_json = classify_line(c, &mut line, profile)?;
    }
    let supplier_key = line.supplier_key();
    let profile = supplier_key.and_then(|k| suppliers.get(k));
    let emission = vcci_core::calculate(cat, org.calc_config(), &line, profile)?;
    let spend_usd = spend_usd(cat, &line, &emission, org.default_currency);
    let mut h = line.content_hash();
    for v in [
        emission.co2e_kg.to_bits(),
        u64::from(emission.data_quality),
        u64::from(emission.category.number()),
    ] {
        h = (h ^ v).wrapping_mul(0x0100_0000_01b3);
    }
    // The fallbacks are part of the audit trail: a change of them (a default currency set
    // later, say) rewrites the line.
    if emission.fallbacks != 0 {
        h = (h ^ u64::from(emission.fallbacks)).wrapping_mul(0x0100_0000_01b3);
    }
    // The data-quality indicators too (lines stored before they existed are rewritten
    // with them by the next recalculation or re-import).
    h = (h ^ (u64::from(emission.dq.pack()) << 8)).wrapping_mul(0x0100_0000_01b3);
    // And what is known of a supplier's intensity (its boundary, verification, statement).
    if let Some(d) = emission.supplier {
        h = (h ^ (u64::from(d.pack()) << 32)).wrapping_mul(0x0100_0000_01b3);
    }
    // And the classification it used: its source and review flag are part of the trail.
    if let Some(c) = line.classification.as_ref().filter(|_| emission.classified) {
        let v = u64::from(c.label.naics.code())
            | u64::from(c.label.category.number()) << 20
            | u64::from(c.label.capex) << 28
            | (c.source as u64) << 29
            | u64::from(c.needs_review) << 32
            | u64::from(c.confidence.to_bits()) << 33;
        h = (h ^ v).wrapping_mul(0x0100_0000_01b3);
    }
    let body = encode_body(
        cat,
        &line,
        &emission,
        supplier_key,
        profile,
        classification_json.as_deref(),
    );
    let (s1, s2) = scope_split(own_scope(cat, &emission), emission.scope_1_2_kg);
    let extras = extras_of(
        s1,
        s2,
        Some(emission.gases(cat)),
        emission.biogenic_co2_kg(cat),
    );
    Ok(PreparedLine {
        line,
        emission,
        spend_usd,
        hash: h as i64,
        source_line,
        body,
        extras,
    })
}

/// The line's spend in USD of the spend year, when it has an amount that converts.
fn spend_usd(
    cat: &Catalog,
    line: &Line,
    emission: &Emission,
    default_currency: Currency,
) -> Option<f64> {
    match (&emission.spend, line.amount) {
        (Some(s), _) => Some(s.usd),
        (None, Some(a)) => {
            let c = line.currency.unwrap_or(default_currency);
            if c == Currency::USD {
                Some(a)
            } else {
                let year = line.date.map_or(0, |d| d.year());
                cat.fx
                    .series(c)
                    .and_then(|s| s.get(year).ok())
                    .map(|v| a / v.value)
            }
        }
        (None, None) => None,
    }
}

/// Everything of the line and its result that is not a column (codec.rs).
fn encode_body(
    cat: &'static Catalog,
    line: &Line,
    emission: &Emission,
    supplier_key: Option<&str>,
    profile: Option<&SupplierProfile>,
    classification_json: Option<&str>,
) -> Vec<u8> {
    let factor = emission.factor_info(cat, supplier_key, profile);
    let pcf = emission
        .pcf_info(line, profile)
        .map(|p| serde_json::to_string(&p).unwrap_or_default());
    let fb = emission.fallback_info(line);
    let fallbacks = (!fb.is_empty()).then(|| serde_json::to_string(&fb).unwrap_or_default());
    let s = emission.spend.as_ref();
    let own_scope = own_scope(cat, emission);
    let parts = emission.upstream_info(cat);
    let upstream = match emission.hybrid {
        Some(h) => Some(crate::codec::Upstream::encode_eeio(&h)),
        None => (!parts.is_empty()).then(|| crate::codec::Upstream::encode_all(&parts)),
    };
    // Serialized once per distinct answer by the classifier (a line classified before, read
    // back for a recalculation, is serialized here).
    let classification: Option<std::borrow::Cow<'_, str>> = if emission.classified {
        match (classification_json, &line.classification) {
            (Some(j), _) => Some(j.into()),
            (None, Some(c)) => Some(serde_json::to_string(&**c).unwrap_or_default().into()),
            (None, None) => None,
        }
    } else {
        None
    };
    let mut body = Vec::with_capacity(96);
    BodyRef {
        description: line.description.as_deref(),
        amount: line.amount,
        currency: line.currency.as_ref().map(|c| c.as_str()),
        naics_code: line.naics.map(|n| n.code()),
        category_in: line.category.map(|c| u16::from(c.number())),
        quantity: line.quantity,
        unit: line.unit.map(|u| u.symbol()),
        activity_id: line.activity_id.as_deref(),
        country: line.country.as_deref(),
        price_basis: basis_code(line.price_basis),
        category_source: source_code(emission.category_source),
        factor_source: factor_source_code(emission.factor),
        factor_key: &factor.key,
        factor_value: factor.value,
        factor_year: match emission.factor {
            FactorRef::Supplier { year } => Some(year),
            _ => None,
        },
        fx_rate: s.map(|s| s.fx_rate),
        fx_year: s.map(|s| s.fx_year),
        cpi_from_year: s.map(|s| s.cpi_from_year),
        cpi_to_year: s.map(|s| s.cpi_to_year),
        cpi_ratio: s.map(|s| s.cpi_ratio),
        unit_factor: emission.unit.map(|u| u.factor),
        fallbacks: fallbacks.as_deref(),
        supplier_name: line.supplier_name.as_deref(),
        supplier_id_given: line.supplier_id.is_some(),
        own_scope,
        scope_1_2_kg: emission.scope_1_2_kg,
        upstream: upstream.as_deref(),
        assumed_currency: s
            .filter(|_| line.currency.is_none())
            .map(|s| s.currency.as_str()),
        capex: line.capex,
        dq: Some(emission.dq.pack()),
        supplier_data: emission.supplier.map(|d| d.pack()),
        product_id: line.product_id.as_deref(),
        pcf: pcf.as_deref(),
        gl_account: line.gl_account.as_deref(),
        gl_account_name: line.gl_account_name.as_deref(),
        classification: classification.as_deref(),
        supplier_named_id: line.supplier_link.as_ref().and(line.supplier_id.as_deref()),
    }
    .encode(&mut body);
    body
}

/// 1 or 2 for an energy or fuel input (its factor's own scope), else None.
fn own_scope(cat: &Catalog, emission: &Emission) -> Option<u16> {
    match (emission.factor, emission.scope_1_2_kg) {
        (FactorRef::Desnz { index }, Some(_)) => {
            cat.desnz.factors[index as usize].scope.own().map(u16::from)
        }
        _ => None,
    }
}

impl PreparedLine {
    /// The line's transaction_id ('' where it has none: lines are parsed with ids).
    pub fn id(&self) -> &str {
        self.line.transaction_id.as_deref().unwrap_or_default()
    }

    /// The line's date as yyyymmdd (0 where it has none).
    pub fn day(&self) -> u32 {
        self.line.date.map_or(0, |d| d.yyyymmdd())
    }

    /// Supplier the line belongs to: its link, else its supplier_id, else its
    /// supplier_name.
    pub fn supplier_key(&self) -> Option<&str> {
        self.line.supplier_key()
    }

    /// Whether the line's result rests on a classification flagged for review (its
    /// `review` column: the review queue).
    pub fn needs_review(&self) -> bool {
        self.emission.classified
            && self
                .line
                .classification
                .as_ref()
                .is_some_and(|c| c.needs_review)
    }

    pub(crate) fn contribution(&self) -> Contribution<'_> {
        Contribution {
            day: self.line.date.map_or(0, |d| d.yyyymmdd()),
            category: self.emission.category.number(),
            method: method_code(self.emission.method),
            data_quality: self.emission.data_quality,
            supplier_id: self.supplier_key().map(Cow::Borrowed),
            co2e_mg: kg_to_mg(self.emission.co2e_kg),
            spend_musd: self.spend_usd.map_or(0, usd_to_musd),
            extras: self.extras,
        }
    }
}
