//! The messages replicas exchange on the channel, version 1: one JSON
//! object each, with `"v": 1` and a `type`.
//!
//! ```json
//! {"v":1,"type":"invalidate","issuer":"https://iam.example.com","tenant":"school-1","user":"user-1"}
//! {"v":1,"type":"invalidate_all"}
//! {"v":1,"type":"revoke_token","jti":"0b6f4c1e","exp":1900000000}
//! {"v":1,"type":"revoke_user","user":"user-1","tenant":"school-1","before":1800000000}
//! {"v":1,"type":"token_version","user":"user-2","version":4}
//! ```
//!
//! Revocations are stored as the same text in the revocations sorted set.
//! Anything else — not JSON, not an object, another version, an unknown
//! type or field, a value of the wrong type, more than
//! [`MAX_MESSAGE_BYTES`] — is refused with a reason, and the caller logs
//! and ignores it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::revocation::Revocation;

/// The version this crate writes and reads.
pub const MESSAGE_VERSION: u64 = 1;

/// Messages longer than this are refused unread.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// One message on the channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Message {
    /// Drop the cached permissions of one caller, at every level.
    Invalidate(Invalidation),
    /// Drop every cached permission set.
    InvalidateAll,
    /// A revocation.
    Revoke(Revocation),
}

/// The caller whose permissions changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Invalidation {
    pub(crate) issuer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tenant: Option<String>,
    pub(crate) user: String,
}

impl Message {
    /// Reads a message; the error says why it is refused.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(format!(
                "{} bytes is over the {MAX_MESSAGE_BYTES}-byte limit",
                bytes.len()
            ));
        }
        let value: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
        let Value::Object(mut object) = value else {
            return Err("not a JSON object".into());
        };
        match object.remove("v") {
            Some(Value::Number(v)) if v.as_u64() == Some(MESSAGE_VERSION) => {}
            Some(v) => return Err(format!("version {v} is not {MESSAGE_VERSION}")),
            None => return Err("no version (\"v\")".into()),
        }
        let kind = match object.get("type") {
            Some(Value::String(kind)) => kind.clone(),
            _ => return Err("no \"type\" string".into()),
        };
        let value = Value::Object(object);
        match kind.as_str() {
            "invalidate" => {
                let Value::Object(mut fields) = value else {
                    unreachable!("an object")
                };
                fields.remove("type");
                serde_json::from_value(Value::Object(fields))
                    .map(Message::Invalidate)
                    .map_err(|e| format!("invalidate: {e}"))
            }
            "invalidate_all" => match value {
                Value::Object(fields) if fields.len() == 1 => Ok(Message::InvalidateAll),
                _ => Err("invalidate_all takes no fields".into()),
            },
            _ => serde_json::from_value(value)
                .map(Message::Revoke)
                .map_err(|e| format!("{kind}: {e}")),
        }
    }

    /// The message as sent: compact JSON, `v` and `type` first.
    pub(crate) fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Tagged<'a, T: Serialize> {
            v: u64,
            #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
            kind: Option<&'static str>,
            #[serde(flatten)]
            body: &'a T,
        }
        let text = match self {
            Message::Invalidate(who) => serde_json::to_string(&Tagged {
                v: MESSAGE_VERSION,
                kind: Some("invalidate"),
                body: who,
            }),
            Message::InvalidateAll => serde_json::to_string(&Tagged {
                v: MESSAGE_VERSION,
                kind: Some("invalidate_all"),
                body: &Map::new(),
            }),
            // The revocation's own tag names its type.
            Message::Revoke(revocation) => serde_json::to_string(&Tagged {
                v: MESSAGE_VERSION,
                kind: None,
                body: revocation,
            }),
        };
        text.unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_message_reads_and_writes_back_the_same() {
        for text in [
            r#"{"v":1,"type":"invalidate","issuer":"https://iam.example.com","tenant":"school-1","user":"user-1"}"#,
            r#"{"v":1,"type":"invalidate","issuer":"https://iam.example.com","user":"user-1"}"#,
            r#"{"v":1,"type":"invalidate_all"}"#,
            r#"{"v":1,"type":"revoke_token","jti":"0b6f4c1e","exp":1900000000}"#,
            r#"{"v":1,"type":"revoke_user","user":"user-1","tenant":"school-1","before":1800000000}"#,
            r#"{"v":1,"type":"token_version","user":"user-2","version":4}"#,
        ] {
            let message = Message::parse(text.as_bytes()).unwrap();
            assert_eq!(message.to_json(), text);
        }
    }

    #[test]
    fn what_does_not_fit_is_refused_with_a_reason() {
        let huge = format!(
            r#"{{"v":1,"type":"revoke_token","jti":"{}"}}"#,
            "x".repeat(MAX_MESSAGE_BYTES)
        );
        for (text, reason) in [
            ("", "not JSON"),
            ("\u{0}\u{1}garbage", "not JSON"),
            ("[1,2]", "not a JSON object"),
            (r#"{"type":"invalidate_all"}"#, "no version"),
            (r#"{"v":2,"type":"invalidate_all"}"#, "version 2"),
            (r#"{"v":"1","type":"invalidate_all"}"#, "version \"1\""),
            (r#"{"v":1}"#, "no \"type\""),
            (r#"{"v":1,"type":"flush_everything"}"#, "flush_everything"),
            (r#"{"v":1,"type":"invalidate","user":"u"}"#, "invalidate"),
            (
                r#"{"v":1,"type":"invalidate","issuer":"i","user":"u","role":"x"}"#,
                "invalidate",
            ),
            (r#"{"v":1,"type":"invalidate_all","user":"u"}"#, "no fields"),
            (
                r#"{"v":1,"type":"revoke_user","user":"u","before":-5}"#,
                "revoke_user",
            ),
            (r#"{"v":1,"type":"revoke_token","jti":7}"#, "revoke_token"),
            (huge.as_str(), "over the"),
        ] {
            let error = Message::parse(text.as_bytes()).unwrap_err();
            assert!(error.contains(reason), "{text:.60}: {error}");
        }
    }
}
