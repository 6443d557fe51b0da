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

/// An optional budget: a whole number of at least `min` or a percent such
/// as `"25%"` (`null` counts as absent).
pub(super) fn optional_budget(
    body: &Map<String, Value>,
    field: &str,
    min: u32,
) -> ApiResult<Option<commissaire_models::Budget>> {
    use commissaire_models::Budget;
    let bad = |why: String| ApiError::bad_request(format!("{field} {why}")).field(field);
    let budget = match body.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => Budget::parse(s).map_err(|e| bad(format!("is invalid: {e}")))?,
        Some(v) => match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) => Budget::Count(n),
            None => {
                return Err(bad(format!(
                    "must be a whole number of at least {min} or a percent such as \"25%\""
                )));
            }
        },
    };
    if let Budget::Count(n) = budget
        && n < min
    {
        return Err(bad(format!("must be at least {min}")));
    }
    Ok(Some(budget))
}

/// An optional list of host addresses, each a member of `hostset` (when
/// given) and none twice; errors name the item (`order[2]`).
pub(super) fn optional_hosts(
    body: &Map<String, Value>,
    field: &str,
    hostset: Option<&[String]>,
    cluster: &str,
) -> ApiResult<Vec<String>> {
    match body.get(field) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(_)) => {}
        Some(_) => {
            return Err(
                ApiError::bad_request(format!("{field} must be a list of host addresses"))
                    .field(field),
            );
        }
    }
    let list = string_list(body, field)?;
    for (i, address) in list.iter().enumerate() {
        let at = format!("{field}[{i}]");
        if list[..i].contains(address) {
            return Err(
                ApiError::bad_request(format!("{at}: '{address}' is listed twice")).field(at),
            );
        }
        if let Some(hostset) = hostset
            && !hostset.contains(address)
        {
            return Err(ApiError::bad_request(format!(
                "{at}: '{address}' is not a member of cluster '{cluster}'"
            ))
            .field(at));
        }
    }
    Ok(list)
}
