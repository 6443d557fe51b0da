//! The storage service's params, typed: what each method's JSON-RPC params
//! deserialise to (a bad shape is -32602 naming what is wrong).

use commissaire_bus::RpcError;
use commissaire_models::ModelKind;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

fn model_kind<'de, D: Deserializer<'de>>(d: D) -> Result<ModelKind, D::Error> {
    let name = String::deserialize(d)?;
    ModelKind::from_name(&name).map_err(serde::de::Error::custom)
}

/// `list`: the kind to list.
#[derive(Debug, Deserialize)]
pub(crate) struct KindParams {
    /// `Host`, `Hosts`, ...
    #[serde(deserialize_with = "model_kind")]
    pub model_type_name: ModelKind,
}

/// `save`, `get`, `delete`: a kind and a record (or a list of records).
#[derive(Debug, Deserialize)]
pub(crate) struct RecordParams {
    /// The records' kind.
    #[serde(deserialize_with = "model_kind")]
    pub model_type_name: ModelKind,
    /// A record (for `get`/`delete`, its key members) or a list of them.
    #[serde(default)]
    pub model_json_data: Value,
}

impl RecordParams {
    /// The kind and the record(s); the record must be an object or a list.
    pub fn parts(self) -> Result<(ModelKind, Value), RpcError> {
        if !(self.model_json_data.is_object() || self.model_json_data.is_array()) {
            return Err(RpcError::invalid_params(
                "model_json_data (object or list) is required",
            ));
        }
        Ok((self.model_type_name, self.model_json_data))
    }
}

/// `swap`: write `model_json_data` only if `expected` is stored.
#[derive(Debug, Deserialize)]
pub(crate) struct SwapParams {
    /// The record to write.
    #[serde(flatten)]
    pub record: RecordParams,
    /// What must be stored now (`null`: nothing).
    #[serde(default)]
    pub expected: Value,
}

/// `expand`: a record and the records its list member `member` names.
#[derive(Debug, Deserialize)]
pub(crate) struct ExpandParams {
    /// The record's key.
    #[serde(flatten)]
    pub record: RecordParams,
    /// Its list member to expand (`hostset`).
    pub member: String,
    /// The kind of the records the list names.
    #[serde(deserialize_with = "model_kind")]
    pub member_type_name: ModelKind,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_unknown_kind_is_refused_by_name() {
        let e = serde_json::from_value::<KindParams>(json!({"model_type_name": "Nope"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("Nope"), "{e}");
        let e = serde_json::from_value::<RecordParams>(json!({}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("model_type_name"), "{e}");
    }

    #[test]
    fn a_record_must_be_an_object_or_a_list() {
        let p: RecordParams =
            serde_json::from_value(json!({"model_type_name": "Host", "model_json_data": 3}))
                .unwrap();
        assert!(p.parts().is_err());
        let p: SwapParams = serde_json::from_value(
            json!({"model_type_name": "Host", "model_json_data": {"address": "a"}}),
        )
        .unwrap();
        assert!(p.expected.is_null());
        assert_eq!(p.record.parts().unwrap().0, ModelKind::Host);
    }
}
