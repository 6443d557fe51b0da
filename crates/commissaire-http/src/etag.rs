//! Conditional GETs. Every 200 answer to a GET under `/api/v0` carries a
//! weak `ETag` made from its body (xxh3-128: a fingerprint, not a secret);
//! a GET whose `If-None-Match` names it (or is `*`) is answered
//! `304 Not Modified` with no body, so a client polling an unchanged list
//! gets a few hundred bytes instead of the list. The tag is of the JSON body
//! as the handler made it: compression (outside this layer) does not change
//! it, which a weak tag allows.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The tag of `body`: `W/"<32 hex digits>"`.
pub fn tag_of(body: &[u8]) -> String {
    format!("W/\"{:032x}\"", xxhash_rust::xxh3::xxh3_128(body))
}

/// Whether `if_none_match` (the header's value) names `tag`: `*`, or one
/// of its comma-separated tags, compared weakly (a `W/` prefix ignored).
pub fn matches(if_none_match: &str, tag: &str) -> bool {
    let plain = |t: &str| t.trim().trim_start_matches("W/").to_string();
    let tag = plain(tag);
    if_none_match
        .split(',')
        .any(|t| t.trim() == "*" || plain(t) == tag)
}

/// The layer (`axum::middleware::from_fn`).
pub async fn etag(request: Request, next: Next) -> Response {
    if request.method() != Method::GET {
        return next.run(request).await;
    }
    let wanted = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let response = next.run(request).await;
    if response.status() != StatusCode::OK {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(e) => {
            return crate::error::ApiError::new(
                StatusCode::BAD_GATEWAY,
                format!("the answer could not be read: {e}"),
            )
            .into_response();
        }
    };
    let tag = tag_of(&bytes);
    if let Ok(value) = HeaderValue::from_str(&tag) {
        parts.headers.insert(header::ETAG, value);
    }
    if wanted.is_some_and(|w| matches(&w, &tag)) {
        parts.status = StatusCode::NOT_MODIFIED;
        parts.headers.remove(header::CONTENT_LENGTH);
        parts.headers.remove(header::CONTENT_TYPE);
        return Response::from_parts(parts, Body::empty());
    }
    Response::from_parts(parts, Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_is_weak_and_follows_the_body() {
        let a = tag_of(b"[1,2]");
        assert!(
            a.starts_with("W/\"") && a.ends_with('"') && a.len() == 36,
            "{a}"
        );
        assert_eq!(a, tag_of(b"[1,2]"));
        assert_ne!(a, tag_of(b"[1,2,3]"));
    }

    #[test]
    fn if_none_match_names_a_tag_weakly_or_with_a_star() {
        let tag = tag_of(b"x");
        assert!(matches(&tag, &tag));
        assert!(matches(tag.trim_start_matches("W/"), &tag));
        assert!(matches(&format!("\"other\", {tag}"), &tag));
        assert!(matches("*", &tag));
        assert!(!matches("\"other\"", &tag));
        assert!(!matches("", &tag));
    }
}
