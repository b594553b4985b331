//! What the API answers with, and what it is sent.
//!
//! Answers ignore fields they do not know and fill missing ones with defaults, so a newer
//! server does not break an older client. Times are kept as the RFC 3339 text the server
//! sends.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::payload::Event;

/// One page of a list, and the cursor of the next page if there is one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// Which page of a list to fetch.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    /// At most this many items (the server allows 1 to 500; its default is 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the page before.
    pub cursor: Option<String>,
}

/// A deployable environment, with the commands a release runs on it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Instance {
    pub id: String,
    pub name: String,
    pub url: String,
    pub attributes: Map<String, Value>,
    pub steps: Vec<Step>,
    pub created_at: String,
    pub updated_at: String,
}

/// One command of a release's core phase, run as `sh -c RUN`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub name: String,
    pub run: String,
}

/// A new instance. Steps may only be set with an admin token.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NewInstance {
    pub id: String,
    pub name: String,
    pub url: String,
    pub attributes: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<Step>>,
}

/// A subscription of a webhook to one event, holding the release there when `locking`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub event: Event,
    #[serde(default)]
    pub locking: bool,
}

/// A webhook as the API shows it; its secret is never sent back, only whether it has one.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    pub has_secret: bool,
    pub events: Vec<Subscription>,
    pub instances: Option<Vec<String>>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<String>,
    pub timeout_seconds: i64,
    pub retry_schedule: Option<String>,
    pub description: String,
    pub created_at: String,
    pub updated_at: String,
}

/// A new webhook; fields left `None` take the server's defaults.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NewWebhook {
    pub url: String,
    pub events: Vec<Subscription>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Only releases of these instances; `None` for every instance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instances: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// What a webhook's endpoint did with a sample delivery.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct WebhookTest {
    pub ok: bool,
    pub status_code: Option<u16>,
    pub error_kind: Option<String>,
    pub error: Option<String>,
    pub location: Option<String>,
    pub duration_ms: u64,
    pub response_body: Option<String>,
    pub response_truncated: bool,
}

/// A release: where it is, and what it waits on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Release {
    pub id: String,
    pub instance: String,
    pub tag: String,
    pub zero_downtime: bool,
    /// A summary for people: `queued`, `running`, `waiting`, `succeeded`, `failed`,
    /// `cancelled`.
    pub state: String,
    /// The stage: `queued`, `before_release`, `steps`, …, `closed`, `failed`, `cancelled`.
    pub stage: String,
    pub stage_since: String,
    /// The release's root action-log entry.
    pub parent_log: i64,
    pub step_index: i64,
    pub failure_reason: Option<String>,
    pub waiting_on: Vec<Waiting>,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
}

impl Release {
    /// Whether the release has ended, one way or another.
    pub fn is_finished(&self) -> bool {
        matches!(self.stage.as_str(), "closed" | "failed" | "cancelled")
    }

    /// Whether the release ended as it should.
    pub fn succeeded(&self) -> bool {
        self.stage == "closed"
    }
}

/// One delivery a release waits on at its gate.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Waiting {
    pub event: String,
    /// `lock` (until released) or `response` (until the first attempt ends).
    pub on: String,
    pub delivery: String,
    pub webhook: String,
    pub url: String,
    pub lock: Option<String>,
    pub attempts: i64,
    pub since: String,
    /// `pending`, `succeeded`, `failed` (no attempt left) or `cancelled`.
    pub delivery_status: String,
    /// For `on: release`: the release of the same instance this one is queued behind.
    pub release: Option<String>,
}

/// How a lock is released: let the release go on, or fail it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Continue,
    Abort,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Continue => "continue",
            Outcome::Abort => "abort",
        }
    }
}

/// A lock as operators see it; its token is never shown.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Lock {
    pub id: String,
    pub release: String,
    pub delivery: String,
    pub event: String,
    /// `open`, `released` or `cancelled`.
    pub status: String,
    pub outcome: Option<String>,
    pub message: Option<String>,
    pub released_by: Option<String>,
    pub released_at: Option<String>,
    pub created_at: String,
}

/// How an action-log entry went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogStatus {
    #[default]
    Info,
    Success,
    Warning,
    Error,
}

impl LogStatus {
    pub const ALL: [LogStatus; 4] = [
        LogStatus::Info,
        LogStatus::Success,
        LogStatus::Warning,
        LogStatus::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LogStatus::Info => "info",
            LogStatus::Success => "success",
            LogStatus::Warning => "warning",
            LogStatus::Error => "error",
        }
    }

    pub fn parse(text: &str) -> Option<LogStatus> {
        LogStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// One entry of a release's action log.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogEntry {
    pub id: i64,
    pub parent_id: Option<i64>,
    pub release: Option<String>,
    /// `release`, `stage`, `event`, `step`, `output`, `delivery`, `lock`, `receiver`, …
    pub kind: String,
    /// `info`, `success`, `warning` or `error`; text, so new statuses do not break readers.
    pub status: String,
    pub message: String,
    pub actor: Option<String>,
    pub created_at: String,
}

/// An API token as listed; its secret is shown only once, by [`CreatedToken`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Token {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

/// A token just created, with its secret, which the server will not show again.
#[derive(Clone, Serialize, Deserialize)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub info: Token,
    #[serde(rename = "token")]
    pub secret: String,
}

impl std::fmt::Debug for CreatedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedToken")
            .field("info", &self.info)
            .field("secret", &"[redacted]")
            .finish()
    }
}

/// One webhook's message for one event of one release, with its attempts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Delivery {
    pub id: String,
    pub release: Option<String>,
    pub webhook: String,
    pub event: String,
    pub locking: bool,
    pub url: String,
    /// `pending`, `succeeded`, `failed` or `cancelled`.
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub attempt_log: Vec<Attempt>,
}

/// One HTTP request of a delivery and what came back.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Attempt {
    pub number: i64,
    pub started_at: String,
    pub duration_ms: i64,
    pub status_code: Option<i64>,
    pub error_kind: Option<String>,
    pub error: Option<String>,
    pub location: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_release_from_a_newer_server_with_extra_fields_still_reads() {
        let body = r#"{"id": "rel_1", "instance": "shop", "tag": "v1", "stage": "closed",
            "state": "succeeded", "parent_log": 3, "waiting_on": [], "new_field": {"x": 1}}"#;
        let release: Release = serde_json::from_str(body).unwrap();
        assert!(release.is_finished() && release.succeeded());
        assert_eq!(release.parent_log, 3);
        assert_eq!(release.failure_reason, None);
    }

    #[test]
    fn a_created_token_reads_its_secret_but_never_debug_prints_it() {
        let body = r#"{"id": "tok_1", "name": "ci", "scopes": ["hook"], "token": "lsk_abc"}"#;
        let created: CreatedToken = serde_json::from_str(body).unwrap();
        assert_eq!(created.secret, "lsk_abc");
        assert_eq!(created.info.scopes, ["hook"]);
        assert!(!format!("{created:?}").contains("lsk_abc"));
    }

    #[test]
    fn outcomes_and_log_statuses_use_the_api_spelling() {
        assert_eq!(serde_json::to_string(&Outcome::Abort).unwrap(), "\"abort\"");
        for status in LogStatus::ALL {
            assert_eq!(LogStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(LogStatus::parse("fatal"), None);
    }
}
