//! The JSON body a receiver is sent.
//!
//! The body is serialised once, when its delivery is created, and the stored bytes are what
//! every attempt sends. Field names and meaning follow the vendor contract; `event` (and
//! `reason`, for `release_failed`) are Lockstep's additions, which receivers must tolerate.

use serde::Serialize;
use serde_json::Value;

use crate::Event;

/// What a payload says of the release.
#[derive(Debug, Clone, Serialize)]
pub struct ReleaseFacts<'a> {
    pub tag: &'a str,
    pub zero_downtime: bool,
}

/// One delivery's body, before it is serialised.
#[derive(Debug, Serialize)]
pub struct Payload<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<&'a str>,
    /// The instance as it was when the event fired.
    pub instance: &'a Value,
    /// The id of the release's root action-log entry.
    pub parent_log: i64,
    /// The lock token, present only on a locking delivery.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock: Option<&'a str>,
    pub release: ReleaseFacts<'a>,
    pub event: &'static str,
    /// Why the release failed; only on `release_failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
}

impl<'a> Payload<'a> {
    pub fn new(
        event: Event,
        instance: &'a Value,
        parent_log: i64,
        release: ReleaseFacts<'a>,
    ) -> Self {
        Payload {
            secret: None,
            instance,
            parent_log,
            lock: None,
            release,
            event: event.as_str(),
            reason: None,
        }
    }

    /// The exact bytes to send, on every attempt.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising borrowed strings, a `Value` and plain numbers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Replaces the secret and the lock token in a stored body, so the body can be shown.
pub fn redacted(body: &[u8]) -> Value {
    let mut value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if let Some(map) = value.as_object_mut() {
        for key in ["secret", "lock"] {
            if let Some(field) = map.get_mut(key) {
                *field = Value::String("[redacted]".into());
            }
        }
    }
    value
}

/// Hides the body's secret and lock token wherever they appear in `text`, such as a
/// response from an endpoint that echoes what it was sent.
pub fn redact_in(body: &[u8], text: &str) -> String {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return text.to_owned();
    };
    let mut text = text.to_owned();
    for key in ["secret", "lock"] {
        if let Some(hidden) = value
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            text = text.replace(hidden, "[redacted]");
        }
    }
    text
}

/// The shared secret carried in a stored body, for the `X-MDOQ-Secret` header.
pub fn secret_of(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    value.get("secret")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn facts() -> ReleaseFacts<'static> {
        ReleaseFacts {
            tag: "v2.4.1",
            zero_downtime: true,
        }
    }

    #[test]
    fn a_plain_payload_has_no_secret_and_no_lock() {
        let instance = json!({"id": "shop"});
        let body = Payload::new(Event::AfterRelease, &instance, 1234, facts()).to_bytes();
        let text = String::from_utf8(body).unwrap();
        assert_eq!(
            text,
            concat!(
                r#"{"instance":{"id":"shop"},"parent_log":1234,"#,
                r#""release":{"tag":"v2.4.1","zero_downtime":true},"event":"after_release"}"#
            )
        );
    }

    #[test]
    fn secret_and_lock_appear_when_set_and_are_redacted_for_display() {
        let instance = json!({});
        let mut payload = Payload::new(Event::BeforeRelease, &instance, 7, facts());
        payload.secret = Some("s3cret");
        payload.lock = Some("lsl_token");
        let body = payload.to_bytes();
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["secret"], "s3cret");
        assert_eq!(value["lock"], "lsl_token");
        assert_eq!(secret_of(&body).as_deref(), Some("s3cret"));
        let shown = redacted(&body);
        assert_eq!(shown["secret"], "[redacted]");
        assert_eq!(shown["lock"], "[redacted]");
        assert_eq!(shown["parent_log"], 7);
    }
}
