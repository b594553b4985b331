//! `/api/v1/webhooks`: subscriptions. Secrets are write-only: responses say `has_secret`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use lockstep_core::ids::WebhookId;
use lockstep_core::retry::Schedule;
use lockstep_core::{Event, InstanceId, Invalid, WebhookUrl};
use lockstep_engine::sender::CaCertificate;
use lockstep_store::webhooks::{Subscription, Webhook, WebhookFields};

use crate::auth::{Caller, Scope};
use crate::extract::{Json, PageQuery, Query};
use crate::{check_len, page_json, time, time_opt, ApiError, ApiResult, AppState};

pub const DEFAULT_TIMEOUT: i64 = 60;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionInput {
    event: String,
    #[serde(default)]
    locking: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    url: String,
    secret: Option<String>,
    events: Vec<SubscriptionInput>,
    instances: Option<Vec<String>>,
    enabled: Option<bool>,
    timeout_seconds: Option<i64>,
    retry_schedule: Option<String>,
    description: Option<String>,
    lock_timeout_seconds: Option<i64>,
    lock_default_outcome: Option<String>,
    ca_certificate: Option<String>,
    headers: Option<Map<String, Value>>,
}

/// Every field optional; `secret: null` removes the secret, an absent one keeps it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhook {
    url: Option<String>,
    #[serde(default, deserialize_with = "explicit")]
    secret: Option<Value>,
    events: Option<Vec<SubscriptionInput>>,
    #[serde(default, deserialize_with = "explicit")]
    instances: Option<Value>,
    enabled: Option<bool>,
    timeout_seconds: Option<i64>,
    #[serde(default, deserialize_with = "explicit")]
    retry_schedule: Option<Value>,
    description: Option<String>,
    #[serde(default, deserialize_with = "explicit")]
    lock_timeout_seconds: Option<Value>,
    lock_default_outcome: Option<String>,
    #[serde(default, deserialize_with = "explicit")]
    ca_certificate: Option<Value>,
    #[serde(default, deserialize_with = "explicit")]
    headers: Option<Value>,
}

/// Reads a PATCH field that is present, keeping an explicit `null` (remove the setting)
/// apart from an absent field (keep it), which plain `Option` would merge.
fn explicit<'de, D: serde::Deserializer<'de>>(field: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(field).map(Some)
}

pub fn view(webhook: &Webhook) -> Value {
    let events: Vec<_> = webhook
        .events
        .iter()
        .map(|s| json!({"event": s.event.as_str(), "locking": s.locking}))
        .collect();
    json!({
        "id": webhook.id,
        "url": webhook.url,
        "has_secret": webhook.secret.is_some(),
        "events": events,
        "instances": webhook.instances,
        "enabled": webhook.enabled,
        "disabled_reason": webhook.disabled_reason,
        "disabled_at": time_opt(webhook.disabled_at),
        "timeout_seconds": webhook.timeout_seconds,
        "retry_schedule": webhook.retry_schedule,
        "description": webhook.description,
        "lock_timeout_seconds": webhook.lock_timeout_seconds,
        "lock_default_outcome": webhook.lock_default_outcome,
        "ca_certificate": webhook.ca_certificate,
        "headers": headers_view(&webhook.headers),
        "created_at": time(webhook.created_at),
        "updated_at": time(webhook.updated_at),
    })
}

/// Parses the URL and refuses one the outbound policy would block; it is checked again,
/// with fresh DNS answers, at every send.
fn checked_url(state: &AppState, text: &str) -> Result<WebhookUrl, Invalid> {
    let url = WebhookUrl::parse(text, "url")?;
    state
        .engine
        .guard()
        .check_url(url.url())
        .map_err(|refusal| Invalid::new("url", refusal))?;
    Ok(url)
}

fn check_secret(secret: &str) -> Result<(), Invalid> {
    check_len("secret", secret, 1, 256)?;
    // The secret travels in a header too, so it must be plain visible ASCII.
    if !secret.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Invalid::new(
            "secret",
            "must be printable ASCII without spaces",
        ));
    }
    Ok(())
}

/// A lock may hold a release for up to thirty days before its default outcome applies.
fn check_lock_timeout(seconds: i64) -> Result<i64, Invalid> {
    if !(1..=30 * 24 * 3600).contains(&seconds) {
        return Err(Invalid::new(
            "lock_timeout_seconds",
            "must be between 1 and 2592000 (30 days)",
        ));
    }
    Ok(seconds)
}

fn check_default_outcome(outcome: &str) -> Result<String, Invalid> {
    match outcome {
        "continue" | "abort" => Ok(outcome.to_owned()),
        _ => Err(Invalid::new(
            "lock_default_outcome",
            "must be \"continue\" or \"abort\"",
        )),
    }
}

fn check_events(input: Vec<SubscriptionInput>) -> Result<Vec<Subscription>, Invalid> {
    if input.is_empty() {
        return Err(Invalid::new("events", "must name at least one event"));
    }
    let mut events: Vec<Subscription> = Vec::new();
    for (i, item) in input.iter().enumerate() {
        let field = format!("events[{i}].event");
        let event = Event::parse_field(&item.event, &field)?;
        if item.locking && !event.can_lock() {
            return Err(Invalid::new(
                format!("events[{i}].locking"),
                format!("{event} never locks"),
            ));
        }
        if events.iter().any(|e| e.event == event) {
            return Err(Invalid::new(field, format!("{event} is listed twice")));
        }
        events.push(Subscription {
            event,
            locking: item.locking,
        });
    }
    Ok(events)
}

fn check_instances(list: Vec<String>) -> Result<Vec<String>, Invalid> {
    if list.len() > 1000 {
        return Err(Invalid::new("instances", "at most 1000 instances"));
    }
    for (i, id) in list.iter().enumerate() {
        InstanceId::parse(id, &format!("instances[{i}]"))?;
    }
    Ok(list)
}

fn check_timeout(seconds: i64) -> Result<i64, Invalid> {
    if !(1..=300).contains(&seconds) {
        return Err(Invalid::new("timeout_seconds", "must be between 1 and 300"));
    }
    Ok(seconds)
}

fn check_schedule(text: &str) -> Result<String, Invalid> {
    Ok(Schedule::parse(text, "retry_schedule")?.to_text())
}

/// Refuses CA certificate text the sender could not trust, so no delivery fails on it later.
fn check_ca(pem: String) -> Result<String, Invalid> {
    CaCertificate::parse(&pem).map_err(|e| Invalid::new("ca_certificate", e.to_string()))?;
    Ok(pem)
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(input): Json<CreateWebhook>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    caller.require(&[Scope::Admin])?;
    let url = checked_url(&state, &input.url)?;
    if let Some(secret) = &input.secret {
        check_secret(secret)?;
    }
    let description = input.description.unwrap_or_default();
    check_len("description", &description, 0, 1000)?;
    let fields = WebhookFields {
        url: url.as_str().to_owned(),
        secret: Some(input.secret),
        events: check_events(input.events)?,
        instances: input.instances.map(check_instances).transpose()?,
        enabled: input.enabled.unwrap_or(true),
        timeout_seconds: check_timeout(input.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT))?,
        retry_schedule: input
            .retry_schedule
            .as_deref()
            .map(check_schedule)
            .transpose()?,
        description,
        lock_timeout_seconds: input
            .lock_timeout_seconds
            .map(check_lock_timeout)
            .transpose()?,
        lock_default_outcome: input
            .lock_default_outcome
            .as_deref()
            .map(check_default_outcome)
            .transpose()?,
        ca_certificate: input.ca_certificate.map(check_ca).transpose()?,
        headers: check_headers(input.headers.map(Value::Object))?,
    };
    let id = WebhookId::generate();
    let webhook = state
        .engine
        .store()
        .create_webhook(id.as_str(), &fields)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(view(&webhook))))
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(page): Query<PageQuery>,
) -> ApiResult<axum::Json<Value>> {
    caller.require_read()?;
    let found = state
        .engine
        .store()
        .webhooks(page.cursor.as_deref(), page.limit()?)
        .await?;
    Ok(axum::Json(page_json(found, view)))
}

pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    caller.require_read()?;
    Ok(axum::Json(view(&state.engine.store().webhook(&id).await?)))
}

/// Reads an optional, nullable text field of a PATCH body.
fn nullable_text(value: Value, field: &str) -> Result<Option<String>, Invalid> {
    match value {
        Value::Null => Ok(None),
        Value::String(text) => Ok(Some(text)),
        _ => Err(Invalid::new(field, "must be a string or null")),
    }
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(input): Json<UpdateWebhook>,
) -> ApiResult<axum::Json<Value>> {
    caller.require(&[Scope::Admin])?;
    let store = state.engine.store();
    let current = store.webhook(&id).await?;
    let url = match &input.url {
        Some(url) => checked_url(&state, url)?.as_str().to_owned(),
        None => current.url.clone(),
    };
    let secret = match input.secret {
        Some(value) => {
            let secret = nullable_text(value, "secret")?;
            if let Some(text) = &secret {
                check_secret(text)?;
            }
            Some(secret)
        }
        None => None,
    };
    let instances = match input.instances {
        Some(Value::Null) => None,
        Some(value) => {
            let list: Vec<String> = serde_json::from_value(value)
                .map_err(|_| Invalid::new("instances", "must be a list of instance ids or null"))?;
            Some(check_instances(list)?)
        }
        None => current.instances.clone(),
    };
    let retry_schedule = match input.retry_schedule {
        Some(value) => nullable_text(value, "retry_schedule")?
            .as_deref()
            .map(check_schedule)
            .transpose()?,
        None => current.retry_schedule.clone(),
    };
    if let Some(description) = &input.description {
        check_len("description", description, 0, 1000)?;
    }
    let lock_timeout_seconds = match input.lock_timeout_seconds {
        Some(Value::Null) => None,
        Some(value) => {
            let seconds = value.as_i64().ok_or_else(|| {
                Invalid::new(
                    "lock_timeout_seconds",
                    "must be a number of seconds or null",
                )
            })?;
            Some(check_lock_timeout(seconds)?)
        }
        None => current.lock_timeout_seconds,
    };
    let lock_default_outcome = match input.lock_default_outcome.as_deref() {
        Some(outcome) => Some(check_default_outcome(outcome)?),
        None => current.lock_default_outcome.clone(),
    };
    let ca_certificate = match input.ca_certificate {
        Some(value) => nullable_text(value, "ca_certificate")?
            .map(check_ca)
            .transpose()?,
        None => current.ca_certificate.clone(),
    };
    let fields = WebhookFields {
        url,
        secret,
        events: match input.events {
            Some(events) => check_events(events)?,
            None => current.events.clone(),
        },
        instances,
        enabled: input.enabled.unwrap_or(current.enabled),
        timeout_seconds: check_timeout(input.timeout_seconds.unwrap_or(current.timeout_seconds))?,
        retry_schedule,
        description: input.description.unwrap_or(current.description),
        lock_timeout_seconds,
        lock_default_outcome,
        ca_certificate,
        headers: match input.headers {
            Some(value) => check_headers(Some(value))?,
            None => current.headers.clone(),
        },
    };
    if current.enabled && !fields.enabled {
        let reason = format!("was disabled by {}", caller.actor());
        wake_all(&state, store.stand_down_webhook(&id, &reason).await?);
    }
    Ok(axum::Json(view(&store.update_webhook(&id, &fields).await?)))
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(&[Scope::Admin])?;
    let store = state.engine.store();
    store.webhook(&id).await?;
    let reason = format!("was deleted by {}", caller.actor());
    wake_all(&state, store.stand_down_webhook(&id, &reason).await?);
    store.delete_webhook(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sends a sample delivery now and answers with what the endpoint did. Nothing is stored
/// and the result never counts against the webhook's health.
pub async fn test(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    caller.require(&[Scope::Admin])?;
    let webhook = state.engine.store().webhook(&id).await?;
    if webhook.events.is_empty() {
        return Err(ApiError::Conflict(
            "the webhook subscribes to no event".into(),
        ));
    }
    let answer = state.engine.test_webhook(&webhook).await;
    Ok(axum::Json(json!({
        "ok": answer.failure.is_none(),
        "status_code": answer.status,
        "error_kind": answer.failure.map(|f| f.as_str()),
        "error": answer.error,
        "location": answer.location,
        "duration_ms": answer.duration.as_millis() as u64,
        "response_body": answer.body,
        "response_truncated": answer.truncated,
    })))
}

/// The most a rotated key may keep signing beside its successor.
const MAX_OVERLAP: i64 = 7 * 24 * 3600;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Rotate {
    overlap_seconds: Option<i64>,
}

fn keys_view(keys: &lockstep_store::signing::SigningKeys) -> Value {
    let overlapping = keys
        .previous_until
        .is_some_and(|until| until > lockstep_core::time::now_ms());
    json!({
        "key": keys.current,
        "previous_key": keys.previous.as_ref().filter(|_| overlapping),
        "previous_key_expires_at": keys.previous_until.filter(|_| overlapping).map(time),
    })
}

/// The webhook's signing key, for the receiver's configuration. Admins only.
pub async fn signing_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    caller.require(&[Scope::Admin])?;
    let keys = state.engine.store().signing_keys(&id).await?;
    Ok(axum::Json(keys_view(&keys)))
}

/// A new signing key; the old one keeps signing beside it for `overlap_seconds`
/// (default one day), so receivers can switch without missing a delivery.
pub async fn rotate_signing_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(input): Json<Rotate>,
) -> ApiResult<axum::Json<Value>> {
    caller.require(&[Scope::Admin])?;
    let overlap = input.overlap_seconds.unwrap_or(24 * 3600);
    if !(0..=MAX_OVERLAP).contains(&overlap) {
        let message = format!("must be between 0 and {MAX_OVERLAP} (7 days)");
        return Err(Invalid::new("overlap_seconds", message).into());
    }
    let store = state.engine.store();
    let keys = store.rotate_signing_key(&id, overlap * 1000).await?;
    tracing::info!(webhook_id = id, overlap, "signing key rotated");
    Ok(axum::Json(keys_view(&keys)))
}

/// Header names Lockstep sets itself, or that would change how the request is framed.
const RESERVED_HEADERS: [&str; 12] = [
    "accept",
    "connection",
    "content-length",
    "content-type",
    "expect",
    "host",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
];
const RESERVED_PREFIXES: [&str; 3] = ["x-mdoq-", "webhook-", "proxy-"];
const MAX_HEADERS: usize = 20;

/// Checks custom headers: `{"Name": "value"}` or `null` for none. Names must be valid and
/// must not collide with the contract's headers; values are printable and at most 1 KiB.
fn check_headers(input: Option<Value>) -> Result<Vec<(String, String)>, Invalid> {
    let map = match input {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(map)) => map,
        Some(_) => {
            return Err(Invalid::new(
                "headers",
                "must be an object of names to values",
            ))
        }
    };
    if map.len() > MAX_HEADERS {
        return Err(Invalid::new(
            "headers",
            format!("at most {MAX_HEADERS} headers"),
        ));
    }
    let mut headers = Vec::new();
    for (name, value) in map {
        let field = format!("headers.{name}");
        let lower = name.to_ascii_lowercase();
        let valid_name = !name.is_empty()
            && name.len() <= 100
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !valid_name {
            return Err(Invalid::new(field, "is not a valid header name"));
        }
        if RESERVED_HEADERS.contains(&lower.as_str())
            || RESERVED_PREFIXES.iter().any(|p| lower.starts_with(p))
        {
            return Err(Invalid::new(
                field,
                "is set by Lockstep and cannot be overridden",
            ));
        }
        let Value::String(value) = value else {
            return Err(Invalid::new(field, "must be a string"));
        };
        if value.len() > 1024 || !value.bytes().all(|b| b == b'\t' || (32..127).contains(&b)) {
            return Err(Invalid::new(
                field,
                "must be at most 1 KiB of printable ASCII",
            ));
        }
        headers.push((name, value));
    }
    Ok(headers)
}

/// Headers as shown: values that look like credentials are replaced, since responses are
/// read by anyone with a `read` token.
fn headers_view(headers: &[(String, String)]) -> Value {
    let shown: Map<String, Value> = headers
        .iter()
        .map(|(name, value)| {
            let value = if looks_like_credential(name, value) {
                "[redacted]"
            } else {
                value
            };
            (name.clone(), Value::String(value.to_owned()))
        })
        .collect();
    Value::Object(shown)
}

fn looks_like_credential(name: &str, value: &str) -> bool {
    let name = name.to_ascii_lowercase();
    let words = [
        "auth",
        "token",
        "secret",
        "key",
        "password",
        "cookie",
        "session",
        "signature",
    ];
    let schemes = ["bearer ", "basic ", "token ", "digest "];
    words.iter().any(|w| name.contains(w))
        || schemes
            .iter()
            .any(|s| value.to_ascii_lowercase().starts_with(s))
}

/// Wakes the releases whose locks a webhook's standing down settled.
fn wake_all(state: &AppState, releases: Vec<String>) {
    for release in releases {
        state.engine.wake(&release);
    }
}
