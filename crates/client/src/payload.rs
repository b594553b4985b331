//! The bodies a receiver is sent, parsed leniently.
//!
//! Lockstep follows a hosting vendor's webhook contract and may add fields to it (`event`,
//! `reason`); so does the vendor. Every type here ignores fields it does not know, and an
//! event name it does not know parses as [`Event::Unknown`], so a receiver built on this
//! crate keeps working when the sender grows.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::secret::{verify_secret, SecretError};

/// A named point of a release that webhooks subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// Before any step of the release runs.
    BeforeRelease,
    /// After the steps, before the release is marked completed.
    BeforeReleaseComplete,
    /// After the release completed.
    AfterRelease,
    /// The release failed or was cancelled; never locks.
    ReleaseFailed,
    /// An event this version of the crate does not know.
    #[serde(other)]
    Unknown,
}

impl Event {
    pub const ALL: [Event; 4] = [
        Event::BeforeRelease,
        Event::BeforeReleaseComplete,
        Event::AfterRelease,
        Event::ReleaseFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Event::BeforeRelease => "before_release",
            Event::BeforeReleaseComplete => "before_release_complete",
            Event::AfterRelease => "after_release",
            Event::ReleaseFailed => "release_failed",
            Event::Unknown => "unknown",
        }
    }

    /// Parses an event name; a name this crate does not know is [`Event::Unknown`].
    pub fn parse(text: &str) -> Event {
        Event::ALL
            .into_iter()
            .find(|e| e.as_str() == text)
            .unwrap_or(Event::Unknown)
    }
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The instance a release deploys to, as it was when the event fired.
///
/// The vendor contract calls this "all instance information" and fixes none of its fields,
/// so the whole object is kept; the accessors read the fields Lockstep sends.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InstanceSnapshot(pub Map<String, Value>);

impl InstanceSnapshot {
    pub fn id(&self) -> Option<&str> {
        self.text("id")
    }

    pub fn name(&self) -> Option<&str> {
        self.text("name")
    }

    pub fn url(&self) -> Option<&str> {
        self.text("url")
    }

    /// A free-form attribute set on the instance.
    pub fn attribute(&self, key: &str) -> Option<&Value> {
        self.0.get("attributes")?.get(key)
    }

    /// Any field, as sent.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    fn text(&self, key: &str) -> Option<&str> {
        self.0.get(key)?.as_str()
    }
}

/// What a payload says of the release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseFacts {
    pub tag: String,
    #[serde(default)]
    pub zero_downtime: bool,
}

/// The body of a `before_release`, `before_release_complete`, `after_release` or
/// `release_failed` request.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Payload {
    /// The webhook's shared secret, when one is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub instance: InstanceSnapshot,
    /// The id of the release's root action-log entry: append your own lines under it.
    pub parent_log: i64,
    /// The lock token, only on a locking delivery: the release waits until it is released.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<String>,
    pub release: ReleaseFacts,
    /// Lockstep names the event in the body too; the vendor only in its configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<Event>,
    /// Why the release failed; only on `release_failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The body could not be read as a payload.
#[derive(Debug, thiserror::Error)]
#[error("the request body is not a release payload: {0}")]
pub struct PayloadError(#[from] serde_json::Error);

impl Payload {
    /// Parses a request body.
    pub fn from_slice(body: &[u8]) -> Result<Payload, PayloadError> {
        Ok(serde_json::from_slice(body)?)
    }

    /// The event, from the body or else from the `X-MDOQ-Event` header's value.
    pub fn event_or(&self, header: Option<&str>) -> Option<Event> {
        self.event.or_else(|| header.map(Event::parse))
    }

    /// Whether the release waits until this delivery's lock is released.
    pub fn is_locking(&self) -> bool {
        self.lock.is_some()
    }

    /// Checks the request's secret (the `X-MDOQ-Secret` header's value and the body's
    /// `secret`) against the one configured for the webhook, in constant time.
    pub fn verify_secret(&self, expected: &str, header: Option<&str>) -> Result<(), SecretError> {
        verify_secret(expected, header, self.secret.as_deref())
    }
}

/// Leaves out the secret and the lock token, so a payload can be logged.
impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |present: bool| if present { "[redacted]" } else { "none" };
        f.debug_struct("Payload")
            .field("secret", &hidden(self.secret.is_some()))
            .field("instance", &self.instance)
            .field("parent_log", &self.parent_log)
            .field("lock", &hidden(self.lock.is_some()))
            .field("release", &self.release)
            .field("event", &self.event)
            .field("reason", &self.reason)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VENDOR_BODY: &str = r#"{"secret": "s3cret", "instance": {"id": 7, "name": "Shop",
        "php_version": "8.3"}, "parent_log": 1234, "lock": "abc",
        "release": {"tag": "v2.4.1", "zero_downtime": true}}"#;

    #[test]
    fn a_vendor_body_without_an_event_field_parses_and_keeps_unknown_instance_fields() {
        let payload = Payload::from_slice(VENDOR_BODY.as_bytes()).unwrap();
        assert_eq!(payload.parent_log, 1234);
        assert_eq!(payload.release.tag, "v2.4.1");
        assert!(payload.release.zero_downtime);
        assert!(payload.is_locking());
        assert_eq!(payload.event, None);
        assert_eq!(payload.instance.get("php_version").unwrap(), "8.3");
        assert_eq!(payload.instance.get("id").unwrap(), 7);
        assert_eq!(payload.instance.id(), None);
        assert_eq!(payload.instance.name(), Some("Shop"));
        assert_eq!(
            payload.event_or(Some("after_release")),
            Some(Event::AfterRelease)
        );
    }

    #[test]
    fn unknown_fields_and_unknown_events_are_tolerated() {
        let body = r#"{"instance": {"id": "shop", "name": "Shop", "url": "https://x",
            "attributes": {"php": "8.3"}}, "parent_log": 5, "release": {"tag": "v1"},
            "event": "after_rollback", "added_later": [1, 2]}"#;
        let payload = Payload::from_slice(body.as_bytes()).unwrap();
        assert_eq!(payload.event, Some(Event::Unknown));
        assert_eq!(payload.instance.id(), Some("shop"));
        assert_eq!(payload.instance.url(), Some("https://x"));
        assert_eq!(payload.instance.attribute("php").unwrap(), "8.3");
        assert!(!payload.release.zero_downtime);
        assert!(!payload.is_locking());
    }

    #[test]
    fn a_body_without_parent_log_is_refused_with_the_reason() {
        let err = Payload::from_slice(br#"{"instance": {}, "release": {"tag": "v1"}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("parent_log"), "{err}");
    }

    #[test]
    fn debug_output_never_shows_the_secret_or_the_lock_token() {
        let payload = Payload::from_slice(VENDOR_BODY.as_bytes()).unwrap();
        let shown = format!("{payload:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("\"abc\""),
            "{shown}"
        );
        assert!(shown.contains("[redacted]"));
    }

    #[test]
    fn every_known_event_parses_from_its_own_name() {
        for event in Event::ALL {
            assert_eq!(Event::parse(event.as_str()), event);
            let json = serde_json::to_string(&event).unwrap();
            assert_eq!(json, format!("\"{event}\""));
        }
        assert_eq!(Event::parse("nope"), Event::Unknown);
    }
}
