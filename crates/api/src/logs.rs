//! `/api/v1/logs`: read a release's action log; receivers append their own lines to it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

use lockstep_core::Invalid;
use lockstep_store::logs::LogEntry;

use crate::auth::{Caller, Scope};
use crate::extract::Json;
use crate::{time, ApiResult, AppState};

pub const STATUSES: [&str; 4] = ["info", "success", "warning", "error"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Append {
    message: String,
    status: Option<String>,
}

pub fn view(entry: &LogEntry) -> Value {
    json!({
        "id": entry.id,
        "parent_id": entry.parent_id,
        "release": entry.release_id,
        "kind": entry.kind,
        "status": entry.status,
        "message": entry.message,
        "actor": entry.actor,
        "created_at": time(entry.created_at),
    })
}

fn parse_id(text: &str) -> Result<i64, Invalid> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| Invalid::new("id", "a log id is a positive integer"))
}

/// The entry and everything under it, in the order it was written.
pub async fn subtree(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    caller.require(&[Scope::Read, Scope::Deploy, Scope::Hook])?;
    let entries = state.engine.store().log_subtree(parse_id(&id)?).await?;
    let entries: Vec<_> = entries.iter().map(view).collect();
    Ok(axum::Json(json!({"entries": entries})))
}

pub async fn append(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(input): Json<Append>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    caller.require(&[Scope::Hook])?;
    let parent = parse_id(&id)?;
    if input.message.trim().is_empty() {
        return Err(Invalid::new("message", "must not be empty").into());
    }
    if input.message.len() > lockstep_store::logs::MAX_MESSAGE {
        return Err(Invalid::new("message", "must be at most 4096 bytes").into());
    }
    let status = input.status.unwrap_or_else(|| "info".into());
    if !STATUSES.contains(&status.as_str()) {
        let message = format!("must be one of {}", STATUSES.join(", "));
        return Err(Invalid::new("status", message).into());
    }
    let entry = state
        .engine
        .store()
        .append_receiver_log(parent, &status, &input.message, &caller.actor())
        .await?;
    if let Some(release_id) = &entry.release_id {
        state.engine.changes().fire(release_id);
    }
    Ok((StatusCode::CREATED, axum::Json(view(&entry))))
}
