//! The JSON envelopes messages travel in: the body as is, with its
//! routing metadata.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::BusError;

/// A message as it is stored in queues and published on channels.
#[derive(Serialize)]
pub(super) struct OutEnvelope<'a> {
    pub(super) id: &'a str,
    pub(super) routing_key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) reply_to: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) correlation_id: Option<&'a str>,
    pub(super) body: &'a RawValue,
}

/// A message as read back.
#[derive(Deserialize)]
pub(super) struct InEnvelope {
    pub(super) routing_key: String,
    #[serde(default)]
    pub(super) reply_to: Option<String>,
    #[serde(default)]
    pub(super) correlation_id: Option<String>,
    pub(super) body: Box<RawValue>,
}

/// A reply as pushed onto a client's reply list.
#[derive(Serialize, Deserialize)]
pub(super) struct ReplyEnvelope<'a> {
    pub(super) correlation_id: String,
    #[serde(borrow)]
    pub(super) body: &'a RawValue,
}

/// `body` as a raw JSON value, or a protocol error if it is not JSON.
pub(super) fn raw_json(body: &[u8]) -> Result<&RawValue, BusError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| BusError::Protocol(format!("message body is not UTF-8: {e}")))?;
    serde_json::from_str(text)
        .map_err(|e| BusError::Protocol(format!("message body is not JSON: {e}")))
}

pub(super) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, BusError> {
    serde_json::to_vec(value).map_err(|e| BusError::Protocol(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_keep_the_body_as_is() {
        let body = br#"{"jsonrpc":"2.0","method":"get","params":{"a":[1, 2]}}"#;
        let envelope = encode(&OutEnvelope {
            id: "1",
            routing_key: "storage.get",
            reply_to: Some("commissaire:ex:reply:c"),
            correlation_id: Some("1"),
            body: raw_json(body).unwrap(),
        })
        .unwrap();
        let back: InEnvelope = serde_json::from_slice(&envelope).unwrap();
        assert_eq!(back.body.get().as_bytes(), body);
        assert_eq!(back.routing_key, "storage.get");
        assert_eq!(back.reply_to.as_deref(), Some("commissaire:ex:reply:c"));
        let value: serde_json::Value = serde_json::from_slice(&envelope).unwrap();
        assert_eq!(value["body"]["params"]["a"][1], 2);
        assert!(raw_json(b"not json").is_err());
    }
}
