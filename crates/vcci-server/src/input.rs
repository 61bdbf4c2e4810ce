//! Lines given as JSON (the calculate and upsert bodies): parsed like CSV text, so that both
//! inputs accept and reject the same values.

use serde_json::Value;
use vcci_core::Line;
use vcci_core::line::{Field, LineError, N_FIELDS};

/// Text values of a JSON line, indexed like `Field::ALL`: strings as they are, numbers in
/// their JSON spelling (then parsed like CSV text), null as absent.
fn line_values(v: &Value) -> Result<[Option<String>; N_FIELDS], Vec<LineError>> {
    let Some(obj) = v.as_object() else {
        return Err(vec![LineError {
            field: "",
            code: "invalid_line",
            message: "a line must be a JSON object".into(),
        }]);
    };
    let mut out: [Option<String>; N_FIELDS] = Default::default();
    let mut errs = Vec::new();
    for f in Field::ALL {
        match obj.get(f.name()) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => out[f as usize] = Some(s.clone()),
            Some(Value::Number(n)) => out[f as usize] = Some(n.to_string()),
            Some(Value::Bool(b)) if f == Field::Capex => out[f as usize] = Some(b.to_string()),
            Some(_) => errs.push(LineError::new(
                f,
                "invalid_type",
                if f == Field::Capex {
                    "must be a boolean"
                } else {
                    "must be a string or a number"
                },
            )),
        }
    }
    if errs.is_empty() { Ok(out) } else { Err(errs) }
}

/// The distinct supplier keys (id, else name) that `lines` name.
pub(crate) fn supplier_keys<'a>(lines: impl Iterator<Item = &'a Line>) -> Vec<String> {
    let mut keys: Vec<String> = lines
        .filter_map(Line::supplier_key)
        .map(str::to_owned)
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// Parses a JSON line (`require_id`: transaction_id must be present).
pub(crate) fn parse_line(v: &Value, require_id: bool) -> Result<Line, Vec<LineError>> {
    let owned = line_values(v)?;
    let mut values: [Option<&str>; N_FIELDS] = [None; N_FIELDS];
    for (slot, s) in values.iter_mut().zip(&owned) {
        *slot = s.as_deref();
    }
    Line::parse(&values, require_id)
}

/// Resolves the suppliers of `lines` that `profiles` does not know as named (linked names,
/// merged ids: `vcci_store::resolve`), and adds the profiles of the suppliers they were linked
/// to. The resolver, if one was needed, holds what it found (for a write to record).
pub(crate) fn resolve_suppliers<E>(
    db: &vcci_store::Db,
    org: vcci_store::OrgId,
    lines: &mut [Result<Line, E>],
    profiles: &mut std::collections::HashMap<String, vcci_core::SupplierProfile>,
) -> Result<Option<vcci_store::resolve::SupplierResolver>, vcci_store::StoreError> {
    use vcci_store::resolve::SupplierResolver;
    let needs = |l: &Line, p: &std::collections::HashMap<String, _>| {
        SupplierResolver::may_need(l, |k| p.contains_key(k))
    };
    if !lines
        .iter()
        .filter_map(|l| l.as_ref().ok())
        .any(|l| needs(l, profiles))
    {
        return Ok(None);
    }
    let mut r = db.supplier_resolver(org)?;
    for l in lines.iter_mut().filter_map(|l| l.as_mut().ok()) {
        if needs(l, profiles) {
            r.resolve(l);
        }
    }
    let linked: Vec<String> = lines
        .iter()
        .filter_map(|l| l.as_ref().ok()?.supplier_link.clone())
        .filter(|k| !profiles.contains_key(k))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    profiles.extend(db.supplier_profiles_for(org, &linked)?);
    Ok(Some(r))
}
