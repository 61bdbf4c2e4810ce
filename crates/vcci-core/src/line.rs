//! A spend or activity line: its fields, their parsing from text, and per-line errors.
//!
//! Field names are the API's (../shared/API.md). Parsing collects every field error of a line
//! so a user can fix them all at once.

use serde::Serialize;

use crate::category::Category;
use crate::classify::Classification;
use crate::currency::Currency;
use crate::date::Date;
use crate::factors::PriceBasis;
use crate::naics::Naics;
use crate::units::Unit;

/// A column of a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    TransactionId,
    Date,
    SupplierId,
    SupplierName,
    Description,
    Amount,
    Currency,
    NaicsCode,
    Category,
    Quantity,
    Unit,
    ActivityId,
    Country,
    PriceBasis,
    Capex,
    ProductId,
    GlAccount,
    GlAccountName,
}

pub const N_FIELDS: usize = 18;

impl Field {
    pub const ALL: [Field; N_FIELDS] = [
        Field::TransactionId,
        Field::Date,
        Field::SupplierId,
        Field::SupplierName,
        Field::Description,
        Field::Amount,
        Field::Currency,
        Field::NaicsCode,
        Field::Category,
        Field::Quantity,
        Field::Unit,
        Field::ActivityId,
        Field::Country,
        Field::PriceBasis,
        Field::Capex,
        Field::ProductId,
        Field::GlAccount,
        Field::GlAccountName,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Field::TransactionId => "transaction_id",
            Field::Date => "date",
            Field::SupplierId => "supplier_id",
            Field::SupplierName => "supplier_name",
            Field::Description => "description",
            Field::Amount => "amount",
            Field::Currency => "currency",
            Field::NaicsCode => "naics_code",
            Field::Category => "category",
            Field::Quantity => "quantity",
            Field::Unit => "unit",
            Field::ActivityId => "activity_id",
            Field::Country => "country",
            Field::PriceBasis => "price_basis",
            Field::Capex => "capex",
            Field::ProductId => "product_id",
            Field::GlAccount => "gl_account",
            Field::GlAccountName => "gl_account_name",
        }
    }

    /// Matches a header name case-insensitively, ignoring surrounding spaces.
    pub fn from_header(h: &str) -> Option<Field> {
        let h = h.trim();
        Field::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(h))
    }
}

/// A problem with one line, naming the field it concerns.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LineError {
    pub field: &'static str,
    /// Stable snake_case code, e.g. `unknown_naics`.
    pub code: &'static str,
    pub message: String,
}

impl LineError {
    pub fn new(field: Field, code: &'static str, message: impl Into<String>) -> LineError {
        LineError {
            field: field.name(),
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

/// A parsed line. Everything in it is valid on its own; whether it can be calculated
/// (factor found, FX year covered, ...) is the engine's question.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Line {
    pub transaction_id: Option<String>,
    pub date: Option<Date>,
    pub supplier_id: Option<String>,
    pub supplier_name: Option<String>,
    pub description: Option<String>,
    pub amount: Option<f64>,
    pub currency: Option<Currency>,
    pub naics: Option<Naics>,
    pub category: Option<Category>,
    pub quantity: Option<f64>,
    pub unit: Option<Unit>,
    pub activity_id: Option<String>,
    pub country: Option<String>,
    pub price_basis: PriceBasis,
    /// A capital purchase: category 2 (capital goods) whatever its NAICS code.
    pub capex: bool,
    /// The product bought, as its supplier's product footprints name it (a URN such as
    /// `urn:gtin:4712345060507`): the line is calculated from the supplier's PCF of it.
    pub product_id: Option<String>,
    /// The general-ledger account the spend was booked to ("6200"), and its name ("Travel &
    /// Entertainment"): read by classification.
    pub gl_account: Option<String>,
    pub gl_account_name: Option<String>,
    /// Not parsed: the code, category and capital flag classification gave a line that has
    /// no NAICS code of its own or of its supplier (`vcci_core::classify`), with why.
    /// Shared: lines classified alike share one answer.
    pub classification: Option<std::sync::Arc<Classification>>,
    /// Not parsed: the supplier (its key) this line belongs to when that is not the one it
    /// names: its name was linked to an existing supplier by supplier resolution, or its
    /// supplier was merged into another. The line's own supplier_id and supplier_name stay
    /// as given.
    pub supplier_link: Option<String>,
}

/// Limits on free-text fields, in bytes.
pub const MAX_ID: usize = 128;
pub const MAX_NAME: usize = 256;
pub const MAX_DESCRIPTION: usize = 2048;

/// Parses a decimal number as written in an export: `1234.5`, `-20`, `1e3`. Thousands
/// separators are refused because `1,234` means 1.234 in much of Europe.
pub fn parse_number(s: &str) -> Result<f64, String> {
    let t = s.trim();
    if t.contains(',') {
        return Err(format!(
            "'{t}' contains a comma; thousands separators and decimal commas are ambiguous, write 1234.50"
        ));
    }
    let ok_chars = t
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'));
    match t.parse::<f64>() {
        Ok(v) if ok_chars && v.is_finite() && t.bytes().any(|b| b.is_ascii_digit()) => Ok(v),
        _ => Err(format!("'{t}' is not a number")),
    }
}

/// `true`/`false` (any case), `1`/`0`, `yes`/`no`.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

fn text(f: Field, v: &str, max: usize, errs: &mut Vec<LineError>) -> Option<String> {
    let t = v.trim();
    if t.is_empty() {
        return None;
    }
    if t.len() > max {
        errs.push(LineError::new(
            f,
            "too_long",
            format!("is {} bytes; the limit is {max}", t.len()),
        ));
        return None;
    }
    Some(t.to_owned())
}

impl Line {
    /// Parses a line from text values indexed like `Field::ALL`; empty means absent.
    /// Requires `date`, and either `amount` or `quantity`; `transaction_id` if `require_id`.
    pub fn parse(
        values: &[Option<&str>; N_FIELDS],
        require_id: bool,
    ) -> Result<Line, Vec<LineError>> {
        let mut errs = Vec::new();
        let get = |f: Field| values[f as usize].map(str::trim).filter(|s| !s.is_empty());
        let mut line = Line {
            transaction_id: get(Field::TransactionId)
                .and_then(|v| text(Field::TransactionId, v, MAX_ID, &mut errs)),
            ..Line::default()
        };
        if require_id
            && line.transaction_id.is_none()
            && !errs.iter().any(|e| e.field == "transaction_id")
        {
            errs.push(LineError::new(
                Field::TransactionId,
                "required",
                "is required",
            ));
        }
        match get(Field::Date) {
            None => errs.push(LineError::new(
                Field::Date,
                "required",
                "is required (YYYY-MM-DD)",
            )),
            Some(v) => match Date::parse(v) {
                Ok(d) => line.date = Some(d),
                Err(m) => errs.push(LineError::new(Field::Date, "invalid_date", m)),
            },
        }
        line.supplier_id =
            get(Field::SupplierId).and_then(|v| text(Field::SupplierId, v, MAX_ID, &mut errs));
        line.supplier_name = get(Field::SupplierName)
            .and_then(|v| text(Field::SupplierName, v, MAX_NAME, &mut errs));
        line.description = get(Field::Description)
            .and_then(|v| text(Field::Description, v, MAX_DESCRIPTION, &mut errs));
        line.activity_id =
            get(Field::ActivityId).and_then(|v| text(Field::ActivityId, v, MAX_NAME, &mut errs));
        line.country = get(Field::Country).and_then(|v| text(Field::Country, v, 64, &mut errs));
        line.product_id =
            get(Field::ProductId).and_then(|v| text(Field::ProductId, v, MAX_NAME, &mut errs));
        line.gl_account =
            get(Field::GlAccount).and_then(|v| text(Field::GlAccount, v, MAX_ID, &mut errs));
        line.gl_account_name = get(Field::GlAccountName)
            .and_then(|v| text(Field::GlAccountName, v, MAX_NAME, &mut errs));
        let num = |f: Field, errs: &mut Vec<LineError>| {
            get(f).and_then(|v| {
                parse_number(v)
                    .map_err(|m| errs.push(LineError::new(f, "invalid_number", m)))
                    .ok()
            })
        };
        line.amount = num(Field::Amount, &mut errs);
        line.quantity = num(Field::Quantity, &mut errs);
        if let Some(v) = get(Field::Currency) {
            match Currency::parse(v) {
                Ok(c) => line.currency = Some(c),
                Err(m) => errs.push(LineError::new(Field::Currency, "invalid_currency", m)),
            }
        }
        if let Some(v) = get(Field::NaicsCode) {
            match Naics::parse(v) {
                Ok(n) => line.naics = Some(n),
                Err(m) => errs.push(LineError::new(Field::NaicsCode, "invalid_naics", m)),
            }
        }
        if let Some(v) = get(Field::Category) {
            match Category::parse(v) {
                Ok(c) => line.category = Some(c),
                Err(m) => errs.push(LineError::new(Field::Category, "invalid_category", m)),
            }
        }
        if let Some(v) = get(Field::Unit) {
            match Unit::parse(v) {
                Ok(u) => line.unit = Some(u),
                Err(m) => errs.push(LineError::new(Field::Unit, "invalid_unit", m)),
            }
        }
        if let Some(v) = get(Field::PriceBasis) {
            match PriceBasis::parse(v) {
                Ok(p) => line.price_basis = p,
                Err(m) => errs.push(LineError::new(Field::PriceBasis, "invalid_price_basis", m)),
            }
        }
        if let Some(v) = get(Field::Capex) {
            match parse_bool(v) {
                Some(b) => line.capex = b,
                None => errs.push(LineError::new(
                    Field::Capex,
                    "invalid_boolean",
                    format!("'{v}' is not true or false"),
                )),
            }
        }
        let amount_given = get(Field::Amount).is_some();
        let quantity_given = get(Field::Quantity).is_some();
        if !amount_given && !quantity_given {
            errs.push(LineError::new(
                Field::Amount,
                "amount_or_quantity_required",
                "a line needs an amount (spend) or a quantity (activity)",
            ));
        }
        if errs.is_empty() { Ok(line) } else { Err(errs) }
    }

    /// A 64-bit hash of every field, used to tell an unchanged re-imported line from a
    /// changed one. Stable across builds and platforms (word-at-a-time multiply-rotate;
    /// not for adversarial inputs, only for change detection).
    /// The supplier the line belongs to: its link, else its supplier_id, else its
    /// supplier_name (a supplier known by name only is keyed by its name).
    pub fn supplier_key(&self) -> Option<&str> {
        self.supplier_link
            .as_deref()
            .or(self.supplier_id.as_deref())
            .or(self.supplier_name.as_deref())
    }

    pub fn content_hash(&self) -> u64 {
        let mut h = WordHash(0xcbf2_9ce4_8422_2325);
        let s = |h: &mut WordHash, v: Option<&str>| match v {
            Some(v) => {
                h.word(v.len() as u64 + 1);
                h.bytes(v.as_bytes());
            }
            None => h.word(0),
        };
        s(&mut h, self.transaction_id.as_deref());
        h.word(u64::from(self.date.map_or(0, |d| d.yyyymmdd())));
        s(&mut h, self.supplier_id.as_deref());
        s(&mut h, self.supplier_name.as_deref());
        s(&mut h, self.description.as_deref());
        h.word(self.amount.map_or(0, f64::to_bits));
        s(&mut h, self.currency.as_ref().map(|c| c.as_str()));
        h.word(u64::from(self.naics.map_or(0, |n| n.code())));
        h.word(u64::from(self.category.map_or(0, |c| c.number())));
        h.word(self.quantity.map_or(0, f64::to_bits));
        s(&mut h, self.unit.map(|u| u.symbol()));
        s(&mut h, self.activity_id.as_deref());
        s(&mut h, self.country.as_deref());
        s(&mut h, Some(self.price_basis.as_str()));
        // Only when set, so that lines without it hash as earlier versions did.
        if self.capex {
            h.word(0xca9e_0001);
        }
        if let Some(p) = &self.product_id {
            h.word(0x9c0d_0001);
            s(&mut h, Some(p));
        }
        if self.gl_account.is_some() || self.gl_account_name.is_some() {
            h.word(0x61ac_0001);
            s(&mut h, self.gl_account.as_deref());
            s(&mut h, self.gl_account_name.as_deref());
        }
        // The supplier it belongs to, when linked or merged: a merge rewrites the line.
        if let Some(k) = &self.supplier_link {
            h.word(0x5e11_0001);
            s(&mut h, Some(k));
        }
        h.0
    }
}

struct WordHash(u64);

impl WordHash {
    fn word(&mut self, w: u64) {
        self.0 = (self.0 ^ w)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(29);
    }
    fn bytes(&mut self, b: &[u8]) {
        let mut chunks = b.chunks_exact(8);
        for c in &mut chunks {
            self.word(u64::from_le_bytes(c.try_into().unwrap_or_default()));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.word(u64::from_le_bytes(buf));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals(pairs: &[(Field, &'static str)]) -> [Option<&'static str>; N_FIELDS] {
        let mut v = [None; N_FIELDS];
        for (f, s) in pairs {
            v[*f as usize] = Some(*s);
        }
        v
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_number(" -12.5 ").unwrap(), -12.5);
        assert_eq!(parse_number("1e3").unwrap(), 1000.0);
        assert!(parse_number("1,234.50").unwrap_err().contains("comma"));
        assert!(parse_number("12,5").is_err());
        assert!(parse_number("NaN").is_err());
        assert!(parse_number("inf").is_err());
        assert!(parse_number("$12").is_err());
        assert!(parse_number("1 000").is_err());
        assert!(parse_number(".").is_err());
    }

    #[test]
    fn collects_all_errors() {
        let v = vals(&[
            (Field::Date, "2024-13-01"),
            (Field::Amount, "1,0"),
            (Field::Currency, "eurx"),
        ]);
        let errs = Line::parse(&v, true).unwrap_err();
        let fields: Vec<_> = errs.iter().map(|e| e.field).collect();
        assert_eq!(fields, ["transaction_id", "date", "amount", "currency"]);
    }

    #[test]
    fn needs_amount_or_quantity() {
        let v = vals(&[(Field::TransactionId, "t1"), (Field::Date, "2024-01-01")]);
        let errs = Line::parse(&v, true).unwrap_err();
        assert_eq!(errs[0].code, "amount_or_quantity_required");
    }

    #[test]
    fn hash_changes_with_content() {
        let a = Line::parse(
            &vals(&[
                (Field::TransactionId, "t"),
                (Field::Date, "2024-01-01"),
                (Field::Amount, "1"),
            ]),
            true,
        )
        .unwrap();
        let mut b = a.clone();
        assert_eq!(a.content_hash(), b.content_hash());
        b.amount = Some(2.0);
        assert_ne!(a.content_hash(), b.content_hash());
    }
}
