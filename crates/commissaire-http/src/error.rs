//! API errors: an HTTP status and a JSON body `{"error": "...", "field": "..."}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use commissaire_bus::{BusError, codes};
use commissaire_models::ModelError;
use commissaire_storage_client::StorageCallError;
use serde_json::json;

/// An error answered to an API client.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What went wrong.
    pub message: String,
    /// The request member at fault, if one is.
    pub field: Option<String>,
}

impl ApiError {
    /// An error with a status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            field: None,
        }
    }

    /// Names the member at fault.
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 409.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    /// 403.
    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "Forbidden: authentication failed or missing",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"error": self.message});
        if let Some(field) = self.field {
            body["field"] = json!(field);
        }
        (self.status, Json(body)).into_response()
    }
}

impl From<ModelError> for ApiError {
    fn from(e: ModelError) -> Self {
        let field = e.field().map(str::to_string);
        let mut err = ApiError::bad_request(e.to_string());
        err.field = field;
        err
    }
}

impl From<BusError> for ApiError {
    fn from(e: BusError) -> Self {
        match &e {
            BusError::Unavailable(_) | BusError::Timeout { .. } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("a backing service is unavailable: {e}"),
            ),
            BusError::Rpc(rpc) => {
                let status = match rpc.code {
                    codes::STORAGE_LOOKUP_ERROR | codes::NOT_FOUND => StatusCode::NOT_FOUND,
                    codes::CONFLICT => StatusCode::CONFLICT,
                    codes::METHOD_NOT_ALLOWED => StatusCode::METHOD_NOT_ALLOWED,
                    codes::INVALID_REQUEST | codes::INVALID_PARAMS => StatusCode::BAD_REQUEST,
                    codes::UNAVAILABLE => StatusCode::SERVICE_UNAVAILABLE,
                    codes::CONTAINER_MANAGER_ERROR => StatusCode::BAD_GATEWAY,
                    _ => StatusCode::INTERNAL_SERVER_ERROR,
                };
                let field = rpc
                    .data
                    .as_ref()
                    .and_then(|d| d.get("field"))
                    .and_then(|f| f.as_str())
                    .map(str::to_string);
                ApiError {
                    status,
                    message: rpc.message.clone(),
                    field,
                }
            }
            BusError::Protocol(_)
            | BusError::UnsupportedUri(_)
            | BusError::Unroutable(_)
            | BusError::InvalidUri(_) => ApiError::new(StatusCode::BAD_GATEWAY, e.to_string()),
        }
    }
}

impl From<StorageCallError> for ApiError {
    fn from(e: StorageCallError) -> Self {
        match e {
            StorageCallError::NotFound(m) => ApiError::not_found(m),
            StorageCallError::Conflict { message, .. } => ApiError::conflict(message),
            StorageCallError::Bus(b) => b.into(),
            StorageCallError::Decode(m) => ApiError::new(StatusCode::BAD_GATEWAY, m),
        }
    }
}

/// The result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;
