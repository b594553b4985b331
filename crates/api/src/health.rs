//! Liveness and metrics, served without a token.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use serde_json::json;

use crate::{ApiResult, AppState};

pub async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    match state.engine.store().ping().await {
        Ok(()) => (StatusCode::OK, axum::Json(json!({"status": "ok"}))),
        Err(err) => {
            tracing::warn!(error = %err, "health check could not reach the database");
            let body = json!({"status": "unavailable", "reason": "database unreachable"});
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body))
        }
    }
}

pub async fn metrics(State(state): State<AppState>) -> ApiResult<impl IntoResponse> {
    let store = state.engine.store();
    let releases = store.release_counts().await?;
    let deliveries = store.delivery_counts().await?;
    let open_locks = store.open_lock_count().await?;
    let text = state
        .engine
        .metrics()
        .render(&releases, &deliveries, open_locks);
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    Ok(([(header::CONTENT_TYPE, content_type)], text))
}
