//! `/api/v1/deliveries`: deliveries and their attempts, and redelivery.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{json, Value};

use lockstep_core::payload::redacted;
use lockstep_core::time::parse_rfc3339;
use lockstep_core::Invalid;
use lockstep_store::deliveries::{Attempt, Delivery, DeliveryFilter};

use crate::auth::{Caller, Scope};
use crate::extract::{PageQuery, Query};
use crate::{page_json, time, time_opt, ApiResult, AppState};

pub const STATUSES: [&str; 4] = ["pending", "succeeded", "failed", "cancelled"];

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListDeliveries {
    status: Option<String>,
    webhook: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

fn time_param(field: &str, text: Option<&str>) -> Result<Option<i64>, Invalid> {
    text.map(|t| parse_rfc3339(t).ok_or_else(|| Invalid::new(field, "must be an RFC 3339 time")))
        .transpose()
}

/// Deliveries across releases, newest first: `?status=failed&webhook=wh_…&since=…&until=…`.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ListDeliveries>,
) -> ApiResult<axum::Json<Value>> {
    caller.require_read()?;
    if let Some(status) = &query.status {
        if !STATUSES.contains(&status.as_str()) {
            let message = format!("must be one of {}", STATUSES.join(", "));
            return Err(Invalid::new("status", message).into());
        }
    }
    let filter = DeliveryFilter {
        status: query.status.as_deref(),
        webhook: query.webhook.as_deref(),
        since: time_param("since", query.since.as_deref())?,
        until: time_param("until", query.until.as_deref())?,
        before: query.cursor.as_deref(),
    };
    let limit = PageQuery {
        limit: query.limit,
        cursor: None,
    }
    .limit()?;
    let page = state.engine.store().deliveries(&filter, limit).await?;
    Ok(axum::Json(page_json(page, |d| view(d, None))))
}

fn attempt_view(attempt: &Attempt) -> Value {
    json!({
        "number": attempt.number,
        "started_at": time(attempt.started_at),
        "duration_ms": attempt.duration_ms,
        "status_code": attempt.status_code,
        "error_kind": attempt.error_kind,
        "error": attempt.error,
        "location": attempt.location,
        "response_body": attempt.response_body,
        "response_truncated": attempt.response_truncated,
    })
}

/// A delivery; the payload is shown with its secret and lock token redacted.
pub fn view(delivery: &Delivery, attempts: Option<&[Attempt]>) -> Value {
    let mut body = json!({
        "id": delivery.id,
        "release": delivery.release_id,
        "webhook": delivery.webhook_id,
        "event": delivery.event,
        "locking": delivery.locking,
        "url": delivery.url,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "next_attempt_at": time_opt(delivery.next_attempt_at),
        "created_at": time(delivery.created_at),
        "updated_at": time(delivery.updated_at),
    });
    if let Some(attempts) = attempts {
        body["attempt_log"] = attempts.iter().map(attempt_view).collect();
        body["payload"] = redacted(&delivery.body);
    }
    body
}

pub async fn of_release(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    caller.require_read()?;
    let store = state.engine.store();
    store.release(&id).await?;
    let mut items = Vec::new();
    for delivery in store.release_deliveries(&id).await? {
        let attempts = store.attempts(&delivery.id).await?;
        items.push(view(&delivery, Some(&attempts)));
    }
    Ok(axum::Json(json!({"items": items, "next_cursor": null})))
}

pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    caller.require_read()?;
    let store = state.engine.store();
    let delivery = store.delivery(&id).await?;
    let attempts = store.attempts(&id).await?;
    Ok(axum::Json(view(&delivery, Some(&attempts))))
}

/// A new attempt of the same delivery: same id, same bytes.
pub async fn redeliver(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    caller.require(&[Scope::Deploy])?;
    let delivery = state.engine.store().redeliver(&id, &caller.actor()).await?;
    state.engine.nudge_dispatcher();
    Ok((StatusCode::ACCEPTED, axum::Json(view(&delivery, None))))
}
