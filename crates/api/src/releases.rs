//! `/api/v1/releases`: start, list, inspect and cancel releases.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

use lockstep_core::ids::ReleaseId;
use lockstep_core::release::state;
use lockstep_core::{InstanceId, Invalid, Tag};
use lockstep_engine::runner;
use lockstep_store::releases::{Ending, GateItem, Release};
use lockstep_store::{Store, StoreError};

use crate::auth::{Caller, Scope};
use crate::extract::{Json, Query};
use crate::{check_len, time, time_opt, ApiError, ApiResult, AppState};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartRelease {
    instance: String,
    tag: String,
    #[serde(default)]
    zero_downtime: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListReleases {
    instance: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cancel {
    message: String,
}

fn waiting_view(event: &str, item: &GateItem) -> Value {
    let on = if item.lock_id.is_some() {
        "lock"
    } else {
        "response"
    };
    json!({
        "event": event,
        "on": on,
        "delivery": item.delivery_id,
        "webhook": item.webhook_id,
        "url": item.url,
        "lock": item.lock_id,
        "attempts": item.attempts,
        "delivery_status": item.status,
        "since": time(item.since),
    })
}

/// A release with what it waits on, if it waits at a gate.
pub async fn view(store: &Store, release: &Release) -> Result<Value, StoreError> {
    let mut waiting = Vec::new();
    if release.stage == lockstep_core::Stage::Queued {
        let head = store.head_of_queue(&release.instance_id).await?;
        if let Some(head) = head.filter(|h| *h != release.id) {
            waiting.push(json!({"on": "release", "release": head}));
        }
    }
    if let Some(event) = release.stage.event() {
        for item in store.gate(&release.id, event).await? {
            if item.pending() {
                waiting.push(waiting_view(event.as_str(), &item));
            }
        }
    }
    Ok(json!({
        "id": release.id,
        "instance": release.instance_id,
        "tag": release.tag,
        "zero_downtime": release.zero_downtime,
        "state": state(release.stage, !waiting.is_empty()),
        "stage": release.stage.as_str(),
        "stage_since": time(release.stage_since),
        "parent_log": release.parent_log,
        "step_index": release.step_index,
        "failure_reason": release.failure_reason,
        "waiting_on": waiting,
        "created_by": release.created_by,
        "created_at": time(release.created_at),
        "updated_at": time(release.updated_at),
        "finished_at": time_opt(release.finished_at),
    }))
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(input): Json<StartRelease>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    caller.require(&[Scope::Deploy])?;
    let instance = InstanceId::parse(&input.instance, "instance")?;
    let tag = Tag::parse(&input.tag, "tag")?;
    let store = state.engine.store();
    let id = ReleaseId::generate();
    let created = store
        .create_release(
            id.as_str(),
            instance.as_str(),
            tag.as_str(),
            input.zero_downtime,
            &caller.actor(),
        )
        .await;
    let release = match created {
        Err(StoreError::NotFound("instance")) => {
            let message = format!("no instance {:?}", instance.as_str());
            return Err(Invalid::new("instance", message).into());
        }
        other => other?,
    };
    tracing::info!(release_id = release.id, tag = release.tag, "release queued");
    state.engine.wake(&release.id);
    Ok((
        StatusCode::CREATED,
        axum::Json(view(store, &release).await?),
    ))
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ListReleases>,
) -> ApiResult<axum::Json<Value>> {
    caller.require_read()?;
    let limit = crate::extract::PageQuery {
        limit: query.limit,
        cursor: None,
    }
    .limit()?;
    let store = state.engine.store();
    let page = store
        .releases(query.instance.as_deref(), query.cursor.as_deref(), limit)
        .await?;
    let mut items = Vec::new();
    for release in &page.items {
        items.push(view(store, release).await?);
    }
    Ok(axum::Json(
        json!({"items": items, "next_cursor": page.next_cursor}),
    ))
}

pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    caller.require_read()?;
    let store = state.engine.store();
    let release = store.release(&id).await?;
    Ok(axum::Json(view(store, &release).await?))
}

/// An operator stops a release from any stage short of its end; its open locks are
/// settled as cancelled and the cancel is logged with who did it and why.
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(input): Json<Cancel>,
) -> ApiResult<axum::Json<Value>> {
    caller.require(&[Scope::Deploy])?;
    check_len("message", &input.message, 1, 1000)?;
    let store = state.engine.store();
    let release = store.release(&id).await?;
    let reason = format!("cancelled by an operator: {}", input.message);
    let ended = runner::end(
        &state.engine,
        &release,
        Ending::Cancelled,
        &reason,
        &caller.actor(),
    )
    .await?;
    if !ended {
        let stage = store.release(&id).await?.stage;
        return Err(ApiError::Conflict(format!(
            "the release has already ended ({stage})"
        )));
    }
    let release = store.release(&id).await?;
    Ok(axum::Json(view(store, &release).await?))
}
