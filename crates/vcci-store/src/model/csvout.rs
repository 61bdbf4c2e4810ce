//! Writing CSV: field quoting, spreadsheet-formula neutralizing, and lines with their
//! emissions as rows (the export).

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::model::lines::StoredLine;

/// A text field as CSV: quoted when it holds a comma, quote or line break. Text starting with
/// `=`, `+`, `-`, `@`, tab or carriage return is prefixed with `'` so that a spreadsheet
/// opening the file does not run it as a formula (OWASP "CSV injection").
pub fn field(s: &str) -> Cow<'_, str> {
    let guarded: Cow<'_, str> = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{s}"))
    } else {
        Cow::Borrowed(s)
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        Cow::Owned(format!("\"{}\"", guarded.replace('"', "\"\"")))
    } else {
        guarded
    }
}

/// Columns of the transactions export: the line's fields, then its result and audit trail.
pub const LINE_COLUMNS: &[&str] = &[
    "transaction_id",
    "date",
    "supplier_id",
    "supplier_name",
    "description",
    "amount",
    "currency",
    "naics_code",
    "category",
    "quantity",
    "unit",
    "activity_id",
    "country",
    "co2e_kg",
    "emission_category",
    "method",
    "data_quality",
    "factor_set",
    "factor_version",
    "factor_key",
    "factor_value",
    "factor_unit",
    "fx_rate",
    "cpi_ratio",
    "amount_usd_price_year",
    "unit_factor",
    "fallbacks",
    "factor_scope",
    "scope_1_2",
    "scope_1_2_kg",
    "upstream",
    "capex",
    "co2_kg",
    "ch4_kg",
    "n2o_kg",
    "other_gases_kg",
    "radiative_forcing_kg",
    "unspecified_gas_kg",
    "biogenic_co2_kg",
];

/// The header row of the export.
pub fn line_header() -> String {
    let mut s = LINE_COLUMNS.join(",");
    s.push('\n');
    s
}

fn opt_num(out: &mut String, v: Option<f64>) {
    if let Some(v) = v {
        let _ = write!(out, "{v}");
    }
    out.push(',');
}

fn opt_text(out: &mut String, v: Option<&str>) {
    if let Some(v) = v {
        out.push_str(&field(v));
    }
    out.push(',');
}

/// Appends `l` as one row of the export.
pub fn write_line(out: &mut String, l: &StoredLine) {
    let e = &l.emission;
    opt_text(out, Some(&l.transaction_id));
    opt_text(out, Some(&l.date));
    opt_text(out, l.supplier_id.as_deref());
    opt_text(out, l.supplier_name.as_deref());
    opt_text(out, l.description.as_deref());
    opt_num(out, l.amount);
    opt_text(out, l.currency.as_deref());
    opt_text(out, l.naics_code.as_deref());
    opt_num(out, l.category.map(f64::from));
    opt_num(out, l.quantity);
    opt_text(out, l.unit.as_deref());
    opt_text(out, l.activity_id.as_deref());
    opt_text(out, l.country.as_deref());
    opt_num(out, Some(e.co2e_kg));
    opt_num(out, Some(f64::from(e.category)));
    opt_text(out, Some(e.method.as_str()));
    opt_num(out, Some(f64::from(e.data_quality)));
    opt_text(out, Some(&e.factor.set));
    opt_text(out, Some(&e.factor.version));
    opt_text(out, Some(&e.factor.key));
    opt_num(out, Some(e.factor.value));
    opt_text(out, Some(&e.factor.unit));
    let spend = e.conversions.spend.as_ref();
    opt_num(out, spend.map(|s| s.fx_rate));
    opt_num(out, spend.map(|s| s.cpi_ratio));
    opt_num(out, spend.map(|s| s.amount_usd_price_year));
    opt_num(out, e.conversions.unit.as_ref().map(|u| u.factor));
    let fallbacks: Vec<&str> = e.fallbacks.iter().map(|f| f.code.as_str()).collect();
    opt_text(out, Some(&fallbacks.join(";")));
    opt_text(out, e.factor.scope.as_deref());
    // An energy or fuel input: its Scope 1 or 2 recorded apart (not in co2e_kg), and the
    // category 3 parts co2e_kg sums, as `kind factor_key kg` joined by ';'.
    opt_num(out, e.scope_1_2.as_ref().map(|o| f64::from(o.scope)));
    opt_num(out, e.scope_1_2.as_ref().map(|o| o.co2e_kg));
    let upstream: Vec<String> = e
        .upstream
        .iter()
        .map(|u| format!("{} {} {}", u.kind, u.factor.key, u.co2e_kg))
        .collect();
    opt_text(out, Some(&upstream.join(";")));
    out.push_str(if l.capex { "true," } else { "false," });
    let g = e.gases;
    for v in [
        g.map(|g| g.co2),
        g.map(|g| g.ch4),
        g.map(|g| g.n2o),
        g.map(|g| g.other),
        g.map(|g| g.radiative_forcing),
        g.map(|g| g.unspecified),
    ] {
        opt_num(out, v);
    }
    if let Some(b) = e.biogenic_co2_kg {
        let _ = write!(out, "{b}");
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn quoting_and_formulas() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(field("+1"), "'+1");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
    }
}
