//! `/api/v1/locks`: receivers release the locks they were sent; operators list, inspect
//! and force them by public id.

use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{json, Value};

use lockstep_core::secret::hash_token;
use lockstep_core::Invalid;
use lockstep_store::locks::{Lock, LockKey};

use crate::auth::{Caller, Scope};
use crate::extract::{Json, Query};
use crate::{check_len, page_json, time, time_opt, ApiResult, AppState};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseByToken {
    lock: String,
    outcome: Option<String>,
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForceRelease {
    outcome: Option<String>,
    message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Extend {
    lock: String,
    seconds: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListLocks {
    status: Option<String>,
    release: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

pub fn view(lock: &Lock) -> Value {
    json!({
        "id": lock.id,
        "release": lock.release_id,
        "delivery": lock.delivery_id,
        "event": lock.event,
        "status": lock.status,
        "outcome": lock.outcome,
        "message": lock.message,
        "released_by": lock.released_by,
        "released_at": time_opt(lock.released_at),
        "expires_at": time_opt(lock.expires_at),
        "created_at": time(lock.created_at),
    })
}

fn check_outcome(outcome: Option<String>) -> Result<String, Invalid> {
    match outcome.as_deref() {
        None | Some("continue") => Ok("continue".into()),
        Some("abort") => Ok("abort".into()),
        Some(other) => Err(Invalid::new(
            "outcome",
            format!("{other:?} is not an outcome; use \"continue\" or \"abort\""),
        )),
    }
}

async fn settle(
    state: &AppState,
    key: LockKey<'_>,
    outcome: &str,
    message: &str,
    actor: &str,
) -> ApiResult<Value> {
    let (lock, _) = state
        .engine
        .store()
        .settle_lock(key, outcome, message, actor)
        .await?;
    tracing::info!(
        lock_id = lock.id,
        release_id = lock.release_id,
        outcome,
        "lock released"
    );
    state.engine.wake(&lock.release_id);
    Ok(view(&lock))
}

/// A receiver releases the lock it was sent. The same call again is answered the same way;
/// another outcome after the lock settled is a conflict.
pub async fn release_by_token(
    State(state): State<AppState>,
    caller: Caller,
    Json(input): Json<ReleaseByToken>,
) -> ApiResult<axum::Json<Value>> {
    caller.require(&[Scope::Hook])?;
    check_len("lock", &input.lock, 1, 200)?;
    let outcome = check_outcome(input.outcome)?;
    let message = input.message.unwrap_or_default();
    check_len("message", &message, 0, 4096)?;
    let hash = hash_token(&input.lock);
    let lock = settle(
        &state,
        LockKey::TokenHash(&hash),
        &outcome,
        &message,
        &caller.actor(),
    )
    .await?;
    Ok(axum::Json(lock))
}

/// The receiver holding a lock with an expiry moves the expiry to `seconds` from now.
pub async fn extend(
    State(state): State<AppState>,
    caller: Caller,
    Json(input): Json<Extend>,
) -> ApiResult<axum::Json<Value>> {
    caller.require(&[Scope::Hook])?;
    check_len("lock", &input.lock, 1, 200)?;
    if !(1..=30 * 24 * 3600).contains(&input.seconds) {
        return Err(Invalid::new("seconds", "must be between 1 and 2592000 (30 days)").into());
    }
    let hash = hash_token(&input.lock);
    let store = state.engine.store();
    let lock = store
        .extend_lock(&hash, input.seconds, &caller.actor())
        .await?;
    state.engine.nudge_expiry();
    Ok(axum::Json(view(&lock)))
}

/// An operator settles a lock by its public id; a message saying why is required.
pub async fn release_by_id(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(input): Json<ForceRelease>,
) -> ApiResult<axum::Json<Value>> {
    caller.require(&[Scope::Deploy])?;
    let outcome = check_outcome(input.outcome)?;
    check_len("message", &input.message, 1, 4096)?;
    let actor = format!("operator {}", caller.actor());
    let lock = settle(&state, LockKey::Id(&id), &outcome, &input.message, &actor).await?;
    Ok(axum::Json(lock))
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ListLocks>,
) -> ApiResult<axum::Json<Value>> {
    caller.require(&[Scope::Read, Scope::Deploy, Scope::Hook])?;
    if let Some(status) = &query.status {
        if !["open", "released", "cancelled"].contains(&status.as_str()) {
            return Err(Invalid::new("status", "must be open, released or cancelled").into());
        }
    }
    let limit = crate::extract::PageQuery {
        limit: query.limit,
        cursor: None,
    }
    .limit()?;
    let page = state
        .engine
        .store()
        .locks(
            query.status.as_deref(),
            query.release.as_deref(),
            query.cursor.as_deref(),
            limit,
        )
        .await?;
    Ok(axum::Json(page_json(page, view)))
}

pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    caller.require(&[Scope::Read, Scope::Deploy, Scope::Hook])?;
    Ok(axum::Json(view(&state.engine.store().lock(&id).await?)))
}
