//! Query parameters and pages, shared by every route: `limit`, `cursor`, `fields=`, dates,
//! the error of a bad parameter, the page shape. Routes parse their parameters here only.

use serde::Serialize;
use serde_json::{Map, Value, json};

use vcci_core::Date;

use crate::ApiError;

pub const DEFAULT_LIMIT: usize = 100;

/// The query of a detail route: only `fields=`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
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

/// An item of a response: whole (serialized straight from its type, the fast path), or
/// reduced to the `fields=` asked for.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Item<T> {
    Whole(T),
    Fields(Value),
}

/// `item`, reduced to `fields` when given.
pub fn item<T: Serialize>(item: T, fields: Option<&[String]>) -> Result<Item<T>, ApiError> {
    match fields {
        None => Ok(Item::Whole(item)),
        Some(_) => select(&item, fields).map(Item::Fields),
    }
}

#[derive(Debug, Serialize)]
pub struct PageInfo {
    pub has_next_page: bool,
    pub end_cursor: Option<String>,
}

/// `{"data": [...], "page_info": {"has_next_page", "end_cursor"}}`.
#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub page_info: PageInfo,
}

/// Turns up to `limit + 1` fetched rows into a page: the first `limit` as items, and a
/// cursor for the last of them when more rows follow.
pub fn paged<R, T>(
    mut rows: Vec<R>,
    limit: usize,
    cursor: impl Fn(&R) -> String,
    to_item: impl Fn(R) -> Result<T, ApiError>,
) -> Result<Page<T>, ApiError> {
    let more = rows.len() > limit;
    rows.truncate(limit);
    // The request's span says how many rows the page holds.
    crate::telemetry::current_attribute("vcci.rows", rows.len() as i64);
    let end_cursor = if more { rows.last().map(&cursor) } else { None };
    let data = rows
        .into_iter()
        .map(to_item)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page {
        data,
        page_info: PageInfo {
            has_next_page: end_cursor.is_some(),
            end_cursor,
        },
    })
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

/// The query string as `T`, with unknown parameters refused: a misspelt filter must not be
/// silently ignored (nor make endless distinct cache entries). Errors use the API's shape.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for Query<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| Query(q.0))
            .map_err(|e| {
                let m = e.body_text();
                let m = m
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&m)
                    .to_owned();
                ApiError::bad_request("invalid_parameter", format!("query string: {m}"))
                    .with_details(vec![json!({"parameter": "query", "message": m})])
            })
    }
}

/// Parses an optional `YYYY-MM-DD` query parameter, naming it in the error.
pub(crate) fn date_param(name: &str, v: Option<&str>) -> Result<Option<Date>, ApiError> {
    v.filter(|s| !s.is_empty())
        .map(|s| {
            Date::parse(s).map_err(|m| {
                ApiError::bad_request("invalid_parameter", format!("{name}: {m}"))
                    .with_details(vec![serde_json::json!({"parameter": name, "message": m})])
            })
        })
        .transpose()
}

/// The `date_from`, `date_to` parameters as a date range.
pub(crate) fn date_range(
    from: Option<&str>,
    to: Option<&str>,
) -> Result<vcci_store::model::reports::DateRange, ApiError> {
    Ok(vcci_store::model::reports::DateRange {
        from: date_param("date_from", from)?,
        to: date_param("date_to", to)?,
    })
}

/// A text filter parameter: empty is none; at most 256 bytes.
pub fn text_param(name: &str, v: Option<String>) -> Result<Option<String>, ApiError> {
    match v.filter(|s| !s.is_empty()) {
        Some(s) if s.len() > 256 => Err(param_error(name, "is longer than 256 bytes".into())),
        v => Ok(v),
    }
}
