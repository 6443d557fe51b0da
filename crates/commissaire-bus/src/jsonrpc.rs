//! JSON-RPC 2.0 messages as they travel on the bus.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The JSON-RPC error codes Commissaire uses.
pub mod codes {
    /// The message is not valid JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// The message is not a valid request (also: the parameters do not describe a valid record).
    pub const INVALID_REQUEST: i64 = -32600;
    /// No such method.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// The parameters are missing or of the wrong shape.
    pub const INVALID_PARAMS: i64 = -32602;
    /// The service failed.
    pub const INTERNAL_ERROR: i64 = -32603;
    /// The record looked up does not exist.
    pub const STORAGE_LOOKUP_ERROR: i64 = -20000;
    /// The container manager refused or failed.
    pub const CONTAINER_MANAGER_ERROR: i64 = -20001;
    /// Something referred to does not exist.
    pub const NOT_FOUND: i64 = 404;
    /// The operation is not allowed in the record's current state.
    pub const METHOD_NOT_ALLOWED: i64 = 405;
    /// The request conflicts with what is stored.
    pub const CONFLICT: i64 = 409;
    /// The service could not reach something it depends on (store, remote API).
    pub const UNAVAILABLE: i64 = 503;
}

/// The `error` member of a JSON-RPC response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{message} (code {code})")]
pub struct RpcError {
    /// One of [`codes`].
    pub code: i64,
    /// What went wrong, for humans.
    pub message: String,
    /// Extra structured detail (e.g. `{"field": "status"}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    /// An error with a code and message.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// Adds structured detail.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// [`codes::STORAGE_LOOKUP_ERROR`].
    pub fn lookup(message: impl Into<String>) -> Self {
        Self::new(codes::STORAGE_LOOKUP_ERROR, message)
    }

    /// [`codes::INVALID_PARAMS`].
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(codes::INVALID_PARAMS, message)
    }

    /// [`codes::INVALID_REQUEST`].
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(codes::INVALID_REQUEST, message)
    }

    /// [`codes::INTERNAL_ERROR`].
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(codes::INTERNAL_ERROR, message)
    }

    /// [`codes::CONFLICT`].
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(codes::CONFLICT, message)
    }

    /// [`codes::NOT_FOUND`].
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(codes::NOT_FOUND, message)
    }

    /// [`codes::UNAVAILABLE`].
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(codes::UNAVAILABLE, message)
    }
}

/// A JSON-RPC request; without `id` it is a notification (no reply).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Always `"2.0"`.
    pub jsonrpc: String,
    /// Request id; absent for notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Value>,
    /// The method: the last segment of the routing key.
    pub method: String,
    /// Named (object) or positional (array) parameters.
    #[serde(default)]
    pub params: Value,
    /// The HTTP request this call is made for (an extension member:
    /// [`crate::request_id`]); services log it, nothing else reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl Request {
    /// A request with a fresh id.
    pub fn new(method: impl Into<String>, params: Value) -> Self {
        Request {
            jsonrpc: "2.0".into(),
            id: Some(Value::String(uuid::Uuid::new_v4().to_string())),
            method: method.into(),
            params,
            request_id: crate::request_id::current(),
        }
    }

    /// A notification (no id, no reply).
    pub fn notification(method: impl Into<String>, params: Value) -> Self {
        Request {
            jsonrpc: "2.0".into(),
            id: None,
            method: method.into(),
            params,
            request_id: crate::request_id::current(),
        }
    }
}

/// A JSON-RPC response: exactly one of `result` and `error` is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// Always `"2.0"`.
    pub jsonrpc: String,
    /// The id of the request answered (`null` when it could not be read).
    pub id: Value,
    /// The result on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// The error on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RpcError>,
}

impl Response {
    /// A successful response.
    pub fn success(id: Value, result: Value) -> Self {
        Response {
            jsonrpc: "2.0".into(),
            id,
            result: Some(result),
            error: None,
        }
    }

    /// A failed response.
    pub fn failure(id: Value, error: RpcError) -> Self {
        Response {
            jsonrpc: "2.0".into(),
            id,
            result: None,
            error: Some(error),
        }
    }

    /// The result, or the error as an [`RpcError`].
    pub fn into_result(self) -> Result<Value, RpcError> {
        match (self.error, self.result) {
            (Some(e), _) => Err(e),
            (None, r) => Ok(r.unwrap_or(Value::Null)),
        }
    }
}

/// The method name for a routing key: its last dot-separated segment.
pub fn method_of(routing_key: &str) -> &str {
    routing_key.rsplit('.').next().unwrap_or(routing_key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_and_response_shapes() {
        let r = Request::new("get", json!({"model_type_name": "Host"}));
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["jsonrpc"], "2.0");
        assert!(v["id"].is_string());
        let n = serde_json::to_value(Request::notification("investigate", json!([]))).unwrap();
        assert!(n.get("id").is_none());
        let ok = Response::success(json!(1), json!([]));
        assert_eq!(
            serde_json::to_value(&ok).unwrap(),
            json!({"jsonrpc": "2.0", "id": 1, "result": []})
        );
        let err = Response::failure(json!(1), RpcError::lookup("no Host 1.2.3.4"));
        assert_eq!(
            serde_json::to_value(&err).unwrap(),
            json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -20000, "message": "no Host 1.2.3.4"}})
        );
        assert_eq!(
            err.into_result().unwrap_err().code,
            codes::STORAGE_LOOKUP_ERROR
        );
        assert_eq!(method_of("jobs.clusterexec.restart"), "restart");
        assert_eq!(method_of("get"), "get");
    }
}
