//! The query of a list endpoint: filters, `limit` and an opaque `continue`
//! token, and the page they select.
//!
//! Without a query a list answers what it always did: a JSON array of every
//! item. Filters alone keep that shape, with only the items that pass. A
//! `limit` (or a `continue` token) asks for a page:
//! `{"items": [...], "total": N, "continue": TOKEN | null}` where `total`
//! counts every item that passes the filters and `continue` fetches the next
//! page (null on the last). Items are in the order of their key (a host's
//! address, a cluster's name); a page starts after the last key of the one
//! before, so items created or deleted meanwhile do not shift it.
//!
//! A filter is `NAME=VALUE`, several values (comma separated or the filter
//! repeated) match any of them; several filters must all match. An unknown
//! parameter, a bad value, limit or token is a 400 naming the parameter.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};

/// The largest page.
pub const MAX_LIMIT: usize = 10_000;

/// A filter an endpoint accepts.
#[derive(Debug, Clone, Copy)]
pub struct FilterSpec {
    /// The query parameter.
    pub param: &'static str,
    /// The values it may take (`None`: any value).
    pub values: Option<&'static [&'static str]>,
}

impl FilterSpec {
    /// A filter that takes any value.
    pub const fn any(param: &'static str) -> Self {
        FilterSpec {
            param,
            values: None,
        }
    }

    /// A filter that takes one of `values`.
    pub const fn one_of(param: &'static str, values: &'static [&'static str]) -> Self {
        FilterSpec {
            param,
            values: Some(values),
        }
    }
}

/// What a `continue` token carries (base64url JSON: opaque to clients).
#[derive(Debug, Serialize, Deserialize)]
struct Token {
    /// The last key of the page before.
    #[serde(rename = "a")]
    after: String,
    /// The filters it was made for, canonical.
    #[serde(rename = "f")]
    filters: String,
    /// The page size.
    #[serde(rename = "l")]
    limit: usize,
}

/// A parsed list query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    filters: BTreeMap<&'static str, BTreeSet<String>>,
    limit: Option<usize>,
    after: Option<String>,
}

impl ListQuery {
    /// Reads the raw query string (`None`: no query) of an endpoint whose
    /// filters are `specs`.
    pub fn parse(raw: Option<&str>, specs: &[FilterSpec]) -> ApiResult<ListQuery> {
        let mut query = ListQuery::default();
        let mut token = None;
        let Some(raw) = raw else {
            return Ok(query);
        };
        for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
            match key.as_ref() {
                "limit" => {
                    let n = value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or_else(|| {
                            ApiError::bad_request(format!(
                                "limit must be a number from 1 to {MAX_LIMIT}, not '{value}'"
                            ))
                            .field("limit")
                        })?;
                    query.limit = Some(n);
                }
                "continue" => token = Some(decode(&value)?),
                param => {
                    let spec = specs
                        .iter()
                        .find(|s| s.param == param)
                        .ok_or_else(|| unknown_parameter(param, specs))?;
                    let set = query.filters.entry(spec.param).or_default();
                    for v in value.split(',').map(str::trim) {
                        check_value(spec, v)?;
                        set.insert(v.to_string());
                    }
                }
            }
        }
        if let Some(token) = token {
            if token.filters != query.canonical_filters() {
                return Err(ApiError::bad_request(format!(
                    "continue: this token belongs to a query with other filters ({}); send \
                     the same filters, or start again without it",
                    if token.filters.is_empty() {
                        "none"
                    } else {
                        &token.filters
                    }
                ))
                .field("continue"));
            }
            query.limit = query.limit.or(Some(token.limit));
            query.after = Some(token.after);
        }
        Ok(query)
    }

    /// No filter, no page: the list answers what it always did.
    pub fn is_plain(&self) -> bool {
        self.filters.is_empty() && !self.is_paged()
    }

    /// Whether a page (the envelope) is asked for.
    pub fn is_paged(&self) -> bool {
        self.limit.is_some()
    }

    /// The values asked for with filter `param`, if it is used.
    pub fn filter(&self, param: &str) -> Option<&BTreeSet<String>> {
        self.filters.get(param)
    }

    /// Whether `value` passes filter `param` (true when it is not used).
    pub fn passes(&self, param: &str, value: Option<&str>) -> bool {
        self.filter(param)
            .is_none_or(|wanted| value.is_some_and(|v| wanted.contains(v)))
    }

    /// The query in one canonical form (a cache key).
    pub fn canonical(&self) -> String {
        format!(
            "{}|{}|{}",
            self.canonical_filters(),
            self.limit.map(|l| l.to_string()).unwrap_or_default(),
            self.after.as_deref().unwrap_or("")
        )
    }

    fn canonical_filters(&self) -> String {
        self.filters
            .iter()
            .map(|(k, v)| format!("{k}={}", v.iter().cloned().collect::<Vec<_>>().join(",")))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// The answer: `items` (key and item, every one that passed the
    /// filters) as the plain array or as a page.
    pub fn answer(&self, mut items: Vec<(String, Value)>) -> Value {
        items.sort_by(|a, b| a.0.cmp(&b.0));
        let Some(limit) = self.limit else {
            return Value::Array(items.into_iter().map(|(_, v)| v).collect());
        };
        let total = items.len();
        let start = match &self.after {
            Some(after) => items.partition_point(|(k, _)| k.as_str() <= after.as_str()),
            None => 0,
        };
        let page: Vec<(String, Value)> = items.into_iter().skip(start).take(limit + 1).collect();
        let more = page.len() > limit;
        let page: Vec<(String, Value)> = page.into_iter().take(limit).collect();
        let next = match page.last() {
            Some((last, _)) if more => Value::String(encode(&Token {
                after: last.clone(),
                filters: self.canonical_filters(),
                limit,
            })),
            _ => Value::Null,
        };
        json!({
            "items": page.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
            "total": total,
            "continue": next,
        })
    }
}

fn check_value(spec: &FilterSpec, value: &str) -> ApiResult<()> {
    if value.is_empty() {
        return Err(ApiError::bad_request(format!(
            "{}: an empty value matches nothing",
            spec.param
        ))
        .field(spec.param));
    }
    if let Some(values) = spec.values
        && !values.contains(&value)
    {
        let known: Vec<&str> = values.iter().copied().filter(|v| !v.is_empty()).collect();
        return Err(ApiError::bad_request(format!(
            "{}: '{value}' is not one of {}",
            spec.param,
            known.join(", ")
        ))
        .field(spec.param));
    }
    Ok(())
}

fn unknown_parameter(param: &str, specs: &[FilterSpec]) -> ApiError {
    let mut known: Vec<&str> = specs.iter().map(|s| s.param).collect();
    known.extend(["limit", "continue"]);
    let hint = commissaire_service::did_you_mean(param, known.iter().copied())
        .map(|k| format!("; did you mean '{k}'?"))
        .unwrap_or_default();
    ApiError::bad_request(format!(
        "unknown query parameter '{param}' (known: {}){hint}",
        known.join(", ")
    ))
    .field(param)
}

fn encode(token: &Token) -> String {
    let json = serde_json::to_vec(token).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

fn decode(text: &str) -> ApiResult<Token> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim())
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Token>(&bytes).ok())
        .filter(|t| (1..=MAX_LIMIT).contains(&t.limit))
        .ok_or_else(|| {
            ApiError::bad_request(
                "continue is not a token this server gave (send the query again without it)",
            )
            .field("continue")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECS: &[FilterSpec] = &[
        FilterSpec::one_of("status", &["active", "failed"]),
        FilterSpec::any("source"),
    ];

    fn items(n: usize) -> Vec<(String, Value)> {
        (0..n).map(|i| (format!("k{i:03}"), json!(i))).collect()
    }

    fn err(raw: &str) -> ApiError {
        ListQuery::parse(Some(raw), SPECS).expect_err(raw)
    }

    #[test]
    fn no_query_is_plain_and_answers_the_array() {
        let q = ListQuery::parse(None, SPECS).unwrap();
        assert!(q.is_plain());
        assert_eq!(q.answer(items(3)), json!([0, 1, 2]));
        assert!(ListQuery::parse(Some(""), SPECS).unwrap().is_plain());
    }

    #[test]
    fn filters_take_several_values_and_keep_the_array() {
        let q = ListQuery::parse(Some("status=active,failed&source=a&source=b"), SPECS).unwrap();
        assert!(!q.is_plain() && !q.is_paged());
        assert!(q.passes("status", Some("failed")));
        assert!(!q.passes("status", Some("")));
        assert!(!q.passes("source", None));
        assert!(q.passes("os", Some("anything")));
        assert_eq!(q.answer(items(2)), json!([0, 1]));
    }

    #[test]
    fn pages_follow_their_continue_tokens_to_the_end() {
        let mut seen = Vec::new();
        let mut raw = "limit=4".to_string();
        loop {
            let page = ListQuery::parse(Some(&raw), SPECS)
                .unwrap()
                .answer(items(10));
            assert_eq!(page["total"], 10);
            seen.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["continue"].as_str() {
                Some(token) => raw = format!("continue={token}"),
                None => break,
            }
        }
        assert_eq!(seen, (0..10).map(|i| json!(i)).collect::<Vec<_>>());
    }

    #[test]
    fn an_exact_last_page_has_no_token() {
        let page = ListQuery::parse(Some("limit=5"), SPECS)
            .unwrap()
            .answer(items(5));
        assert_eq!(page["continue"], Value::Null);
        let page = ListQuery::parse(Some("limit=5"), SPECS)
            .unwrap()
            .answer(vec![]);
        assert_eq!(page, json!({"items": [], "total": 0, "continue": null}));
    }

    #[test]
    fn bad_queries_name_the_parameter() {
        assert_eq!(err("statu=active").field.as_deref(), Some("statu"));
        assert!(
            err("statu=active")
                .message
                .contains("did you mean 'status'")
        );
        assert_eq!(err("status=activ").field.as_deref(), Some("status"));
        assert_eq!(err("status=").field.as_deref(), Some("status"));
        for raw in ["limit=0", "limit=-1", "limit=x", "limit=10001"] {
            assert_eq!(err(raw).field.as_deref(), Some("limit"), "{raw}");
        }
        for raw in ["continue=", "continue=nonsense", "continue=e30"] {
            assert_eq!(err(raw).field.as_deref(), Some("continue"), "{raw}");
        }
    }

    #[test]
    fn a_token_is_refused_with_other_filters() {
        let page = ListQuery::parse(Some("limit=1&status=active"), SPECS)
            .unwrap()
            .answer(items(3));
        let token = page["continue"].as_str().unwrap();
        assert!(ListQuery::parse(Some(&format!("status=active&continue={token}")), SPECS).is_ok());
        let e = err(&format!("status=failed&continue={token}"));
        assert_eq!(e.field.as_deref(), Some("continue"));
    }
}
