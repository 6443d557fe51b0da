//! Commissaire data models.
//!
//! Every record Commissaire stores or returns is one of the structs in this
//! crate. Their JSON shapes follow the original documentation exactly
//! (`docs/api.md`): unknown members are ignored, missing members take their
//! documented defaults, and enumerated members (statuses, OS names, network and
//! container manager types) are checked, with errors that name the member.
//!
//! Code that handles records generically (the storage service, the bus) works
//! on [`serde_json::Value`]s and uses [`ModelKind`] to validate, normalise and
//! strip hidden members from them.

mod kind;
mod types;

pub use kind::ModelKind;
pub use types::*;

use serde::{Serialize, de::DeserializeOwned};

/// The date format used in every timestamp (`%Y-%m-%dT%H:%M:%S.%f`, UTC, no zone),
/// as the original used.
pub const DATE_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6f";

/// The current UTC time in [`DATE_FORMAT`].
pub fn now_iso() -> String {
    chrono::Utc::now().format(DATE_FORMAT).to_string()
}

/// Parses a timestamp written in [`DATE_FORMAT`].
pub fn parse_iso(value: &str) -> Option<chrono::NaiveDateTime> {
    chrono::NaiveDateTime::parse_from_str(value, DATE_FORMAT).ok()
}

/// Why a model could not be built or is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// The model type name is not one Commissaire knows.
    #[error("unknown model type '{0}'")]
    UnknownModel(String),
    /// The JSON does not describe a valid instance; `field` names the member at fault.
    #[error("{model} instance is invalid: {field}: {reason}")]
    Invalid {
        /// Model type name, e.g. `Host`.
        model: &'static str,
        /// The member at fault (`.` when the whole document is wrong).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl ModelError {
    /// Builds an [`ModelError::Invalid`].
    pub fn invalid(
        model: &'static str,
        field: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        ModelError::Invalid {
            model,
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The member this error is about, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            ModelError::Invalid { field, .. } => Some(field),
            ModelError::UnknownModel(_) => None,
        }
    }
}

/// Behaviour shared by every model struct.
pub trait Model: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// The model's type name as used on the bus (`Host`, `Cluster`, ...).
    const NAME: &'static str;
    /// Members left out of the "safe" JSON shown to users and notifications.
    const HIDDEN: &'static [&'static str] = &[];

    /// The primary key (address or name); empty for models without one.
    fn primary_key(&self) -> String;

    /// Checks the constraints that serde's typing does not express.
    fn validate(&self) -> Result<(), ModelError> {
        Ok(())
    }

    /// Builds and validates an instance from JSON, naming the member at fault on error.
    fn from_json(value: serde_json::Value) -> Result<Self, ModelError> {
        let model: Self = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            ModelError::invalid(Self::NAME, path, e.into_inner().to_string())
        })?;
        model.validate()?;
        Ok(model)
    }

    /// The full JSON of the instance, hidden members included (what is stored).
    fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("models always serialise")
    }

    /// The JSON shown to users: hidden members removed.
    fn to_safe_json(&self) -> serde_json::Value {
        let mut value = self.to_json();
        if let Some(map) = value.as_object_mut() {
            for hidden in Self::HIDDEN {
                map.remove(*hidden);
            }
        }
        value
    }
}

/// Checks that a name (cluster, network, container manager) is usable in a URL path.
pub(crate) fn check_name(model: &'static str, field: &str, value: &str) -> Result<(), ModelError> {
    if value.is_empty() {
        return Err(ModelError::invalid(model, field, "must not be empty"));
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(ModelError::invalid(
            model,
            field,
            format!("'{value}' may only contain letters, digits, '_' and '-'"),
        ));
    }
    Ok(())
}

/// Checks that a host address is usable in a URL path (IP address or host name).
pub(crate) fn check_address(model: &'static str, value: &str) -> Result<(), ModelError> {
    if value.is_empty() {
        return Err(ModelError::invalid(model, "address", "must not be empty"));
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | ':'))
    {
        return Err(ModelError::invalid(
            model,
            "address",
            format!("'{value}' is not an IP address or host name"),
        ));
    }
    Ok(())
}
