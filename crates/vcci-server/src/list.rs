//! Conventions shared by list and detail routes: `limit`, `cursor`, `fields=`, the page shape.

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::ApiError;

pub const DEFAULT_LIMIT: usize = 100;

/// The query of a detail route: only `fields=`.
#[derive(Debug, serde::Deserialize)]
pub struct FieldsQuery {
    pub fields: Option<String>,
}
pub const MAX_LIMIT: usize = 1000;

/// `limit`: 1..=1000, default 100.
pub fn limit(v: Option<&str>) -> Result<usize, ApiError> {
    match v.filter(|s| !s.is_empty()) {
        None => Ok(DEFAULT_LIMIT),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(param_error(
                "limit",
                format!("'{s}' is not an integer from 1 to {MAX_LIMIT}"),
            )),
        },
    }
}

pub fn param_error(name: &str, message: String) -> ApiError {
    ApiError::bad_request("invalid_parameter", format!("{name}: {message}"))
        .with_details(vec![json!({"parameter": name, "message": message})])
}

/// The requested `fields=a,b,c`, each checked against the resource's `allowed` fields.
pub fn fields(v: Option<&str>, allowed: &[&str]) -> Result<Option<Vec<String>>, ApiError> {
    let Some(s) = v.filter(|s| !s.trim().is_empty()) else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for f in s.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        if !allowed.contains(&f) {
            return Err(param_error(
                "fields",
                format!("'{f}' is not a field; fields are {}", allowed.join(", ")),
            ));
        }
        out.push(f.to_owned());
    }
    Ok(Some(out))
}

/// `item` as JSON, reduced to `fields` when given.
pub fn select<T: Serialize>(item: &T, fields: Option<&[String]>) -> Result<Value, ApiError> {
    let v = serde_json::to_value(item).map_err(ApiError::internal)?;
    Ok(match (fields, v) {
        (Some(fs), Value::Object(mut m)) => {
            let mut out = Map::new();
            for f in fs {
                if let Some(x) = m.remove(f) {
                    out.insert(f.clone(), x);
                }
            }
            Value::Object(out)
        }
        (_, v) => v,
    })
}

/// `{"data": [...], "page_info": {"has_next_page", "end_cursor"}}`.
pub fn page(data: Vec<Value>, end_cursor: Option<String>) -> Value {
    json!({"data": data, "page_info": {"has_next_page": end_cursor.is_some(), "end_cursor": end_cursor}})
}

/// Turns up to `limit + 1` fetched rows into a page: the first `limit` as JSON, and a cursor
/// for the last of them when more rows follow.
pub fn paged<R>(
    mut rows: Vec<R>,
    limit: usize,
    cursor: impl Fn(&R) -> String,
    to_json: impl Fn(&R) -> Result<Value, ApiError>,
) -> Result<Value, ApiError> {
    let more = rows.len() > limit;
    rows.truncate(limit);
    let end_cursor = if more { rows.last().map(&cursor) } else { None };
    let data = rows.iter().map(to_json).collect::<Result<Vec<_>, _>>()?;
    Ok(page(data, end_cursor))
}

/// A numeric part of a verified cursor (a signed cursor always parses; this guards the format).
pub fn cursor_number<T: std::str::FromStr>(part: &str) -> Result<T, ApiError> {
    part.parse()
        .map_err(|_| ApiError::bad_request("invalid_cursor", "the cursor is not valid"))
}

/// The parts of the request's `cursor`, if any, checked for this list and organization.
pub fn cursor_parts(
    keys: &crate::CursorKey,
    cursor: Option<&str>,
    kind: &str,
    org: i64,
    n: usize,
) -> Result<Option<Vec<String>>, ApiError> {
    cursor
        .filter(|c| !c.is_empty())
        .map(|c| keys.verify(c, kind, org, n))
        .transpose()
}
