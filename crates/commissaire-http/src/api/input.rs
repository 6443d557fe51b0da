//! Checking request input: names, addresses and the members of JSON
//! bodies, each error naming the member at fault (400).

use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};

/// Checks a name from the path or body (`[A-Za-z0-9_-]+`).
pub fn check_name(field: &str, value: &str) -> ApiResult<()> {
    if value.is_empty()
        || value.len() > 253
        || !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(ApiError::bad_request(format!(
            "{field} '{value}' is invalid: use 1 to 253 letters, digits, '_' or '-'"
        ))
        .field(field));
    }
    Ok(())
}

/// Checks a host address from the path or body.
pub fn check_address(field: &str, value: &str) -> ApiResult<()> {
    if value.is_empty()
        || value.len() > 253
        || !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | ':'))
    {
        return Err(ApiError::bad_request(format!(
            "{field} '{value}' is not an IP address or host name"
        ))
        .field(field));
    }
    Ok(())
}

pub(super) fn optional_string(body: &Map<String, Value>, field: &str) -> ApiResult<Option<String>> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::bad_request(format!("{field} must be a string")).field(field)),
    }
}

/// An optional whole number of at least `min` (`null` counts as absent).
pub(super) fn optional_count(
    body: &Map<String, Value>,
    field: &str,
    min: u64,
) -> ApiResult<Option<u32>> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if n >= min && n <= u64::from(u32::MAX) => Ok(Some(n as u32)),
            _ => Err(ApiError::bad_request(format!(
                "{field} must be a whole number of at least {min}"
            ))
            .field(field)),
        },
    }
}

pub(super) fn string_list(body: &Map<String, Value>, field: &str) -> ApiResult<Vec<String>> {
    let err =
        || ApiError::bad_request(format!("{field} must be a list of host addresses")).field(field);
    let items = body.get(field).and_then(Value::as_array).ok_or_else(err)?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let address = item.as_str().ok_or_else(err)?;
        check_address(field, address)?;
        out.push(address.to_string());
    }
    Ok(out)
}
