//! Typed request input: the path's names and addresses, checked, and JSON
//! object bodies, each rejection an [`ApiError`] (400 with a JSON body
//! naming the member at fault), as axum's `customize-extractor-error`
//! example does.
//!
//! A handler that takes a [`Name`] or an [`Address`] holds one that passed
//! its check: the API below never sees an unchecked path segment.

use std::fmt;
use std::ops::Deref;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::api::{check_address, check_name};
use crate::error::{ApiError, ApiResult};

/// A checked name (`[A-Za-z0-9_-]{1,253}`): a cluster, network or container
/// manager; the `{name}` of a path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Name(String);

/// A checked host address (an IP address or host name); the `{address}`
/// of a path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Address(String);

impl Name {
    /// Checks `value` as the member `field` ("name").
    pub fn parse(field: &str, value: impl Into<String>) -> ApiResult<Name> {
        let value = value.into();
        check_name(field, &value)?;
        Ok(Name(value))
    }
}

impl Address {
    /// Checks `value` as the member `field` ("address").
    pub fn parse(field: &str, value: impl Into<String>) -> ApiResult<Address> {
        let value = value.into();
        check_address(field, &value)?;
        Ok(Address(value))
    }
}

macro_rules! text_newtype {
    ($t:ty) => {
        impl Deref for $t {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }
        impl PartialEq<$t> for String {
            fn eq(&self, other: &$t) -> bool {
                *self == other.0
            }
        }
        impl PartialEq<&$t> for String {
            fn eq(&self, other: &&$t) -> bool {
                *self == other.0
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}
text_newtype!(Name);
text_newtype!(Address);

/// The path's parameters as strings; a path axum cannot decode (bad
/// percent-encoding, ...) is a 400 naming the path.
async fn path_params<T, S>(parts: &mut Parts, state: &S) -> ApiResult<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    Path::<T>::from_request_parts(parts, state)
        .await
        .map(|Path(p)| p)
        .map_err(|e| ApiError::bad_request(format!("the path is invalid: {}", e.body_text())))
}

impl<S: Send + Sync> FromRequestParts<S> for Name {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Name::parse("name", path_params::<String, S>(parts, state).await?)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Address {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Address::parse("address", path_params::<String, S>(parts, state).await?)
    }
}

/// `{name}/hosts/{address}`: a cluster and one of its (would-be) members.
#[derive(Debug, Clone)]
pub struct Member {
    /// The cluster.
    pub name: Name,
    /// The host.
    pub address: Address,
}

impl<S: Send + Sync> FromRequestParts<S> for Member {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let (name, address) = path_params::<(String, String), S>(parts, state).await?;
        Ok(Member {
            name: Name::parse("name", name)?,
            address: Address::parse("address", address)?,
        })
    }
}

/// A request body that is a JSON object; an empty body is `{}` (the
/// original accepted a bare `PUT`). Anything else is a 400 saying why.
#[derive(Debug, Clone, Default)]
pub struct JsonObject(pub Map<String, Value>);

impl JsonObject {
    /// Parses a body by the rules above.
    pub fn parse(body: &[u8]) -> ApiResult<JsonObject> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonObject::default());
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(JsonObject(map)),
            Ok(_) => Err(ApiError::bad_request(
                "the request body must be a JSON object",
            )),
            Err(e) => Err(ApiError::bad_request(format!(
                "the request body is not valid JSON: {e}"
            ))),
        }
    }
}

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|e| ApiError::new(e.status(), e.body_text()))?;
        JsonObject::parse(&body)
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use serde_json::json;

    use super::*;

    #[test]
    fn names_and_addresses_are_checked_naming_the_member() {
        assert_eq!(&*Name::parse("name", "honeynut").unwrap(), "honeynut");
        let e = Name::parse("name", "bad name").unwrap_err();
        assert_eq!(
            (e.status, e.field.as_deref()),
            (StatusCode::BAD_REQUEST, Some("name"))
        );
        assert!(Address::parse("address", "10.0.0.1").is_ok());
        assert!(Address::parse("address", "fe80::1").is_ok());
        let e = Address::parse("address", "a/b").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("address"));
        assert_eq!(json!(Name::parse("name", "x").unwrap()), json!("x"));
    }

    #[test]
    fn a_body_is_an_object_and_empty_is_empty() {
        assert!(JsonObject::parse(b"").unwrap().0.is_empty());
        assert!(JsonObject::parse(b"  \n").unwrap().0.is_empty());
        assert_eq!(JsonObject::parse(br#"{"a": 1}"#).unwrap().0["a"], 1);
        for bad in [&b"[1]"[..], b"3", b"{", b"\"s\""] {
            let e = JsonObject::parse(bad).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad:?}");
        }
    }
}

/// The user the request was authenticated as (the authentication layer
/// puts it in the request's extensions; `anonymous` without it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User(pub String);

impl<S: Send + Sync> FromRequestParts<S> for User {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<User>()
            .cloned()
            .unwrap_or_else(|| User(crate::auth::ANONYMOUS_USER.to_string())))
    }
}
