//! Lockstep's HTTP API (v1): JSON over HTTP with bearer tokens.
//!
//! One module per resource; [`error`] holds the one error type, [`extract`] the extractors
//! that report bad input in that shape, [`auth`] the tokens and their scopes.

pub mod auth;
pub mod deliveries;
pub mod error;
pub mod events;
pub mod extract;
pub mod health;
pub mod instances;
pub mod locks;
pub mod logs;
pub mod releases;
pub mod throttle;
pub mod tokens;
pub mod webhooks;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;

use lockstep_engine::Engine;

pub use error::{ApiError, ApiResult};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub throttle: std::sync::Arc<throttle::AuthThrottle>,
}

/// The whole API as one router, for the server and for tests alike.
pub fn app(engine: Engine) -> Router {
    let state = AppState {
        engine,
        throttle: Default::default(),
    };
    let v1 = Router::new()
        .route("/instances", post(instances::create).get(instances::list))
        .route(
            "/instances/{id}",
            get(instances::show)
                .patch(instances::update)
                .delete(instances::delete),
        )
        .route("/webhooks", post(webhooks::create).get(webhooks::list))
        .route(
            "/webhooks/{id}",
            get(webhooks::show)
                .patch(webhooks::update)
                .delete(webhooks::delete),
        )
        .route("/webhooks/{id}/test", post(webhooks::test))
        .route("/webhooks/{id}/signing-key", get(webhooks::signing_key))
        .route(
            "/webhooks/{id}/signing-key/rotate",
            post(webhooks::rotate_signing_key),
        )
        .route("/releases", post(releases::create).get(releases::list))
        .route("/releases/{id}", get(releases::show))
        .route("/releases/{id}/cancel", post(releases::cancel))
        .route("/releases/{id}/events", get(events::stream))
        .route("/releases/{id}/deliveries", get(deliveries::of_release))
        .route("/deliveries", get(deliveries::list))
        .route("/deliveries/{id}", get(deliveries::show))
        .route("/deliveries/{id}/redeliver", post(deliveries::redeliver))
        .route("/locks", get(locks::list))
        .route("/locks/release", post(locks::release_by_token))
        .route("/locks/extend", post(locks::extend))
        .route("/locks/{id}", get(locks::show))
        .route("/locks/{id}/release", post(locks::release_by_id))
        .route("/logs/{id}", get(logs::subtree))
        .route("/logs/{id}/entries", post(logs::append))
        .route("/tokens", post(tokens::create).get(tokens::list))
        .route("/tokens/{id}", axum::routing::delete(tokens::revoke));
    Router::new()
        .nest("/api/v1", v1)
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(health::metrics))
        .fallback(|| async { ApiError::NotFound("route") })
        // The JSON extractor enforces its own limit; this bounds every other body.
        .layer(DefaultBodyLimit::max(extract::MAX_BODY))
        .with_state(state)
}

/// Stored milliseconds as RFC 3339, for responses.
pub(crate) fn time(ms: i64) -> String {
    lockstep_core::time::rfc3339(ms)
}

pub(crate) fn time_opt(ms: Option<i64>) -> Option<String> {
    ms.map(time)
}

/// A page of items as JSON: `{"items": […], "next_cursor": …}`.
pub(crate) fn page_json<T>(
    page: lockstep_store::Page<T>,
    view: impl Fn(&T) -> serde_json::Value,
) -> serde_json::Value {
    let items: Vec<_> = page.items.iter().map(view).collect();
    serde_json::json!({"items": items, "next_cursor": page.next_cursor})
}

/// Checks a text field's length in characters, naming the field when it is wrong.
pub(crate) fn check_len(
    field: &str,
    value: &str,
    min: usize,
    max: usize,
) -> Result<(), lockstep_core::Invalid> {
    let n = value.chars().count();
    if n < min || n > max {
        let rule = if min == 0 {
            format!("must be at most {max} characters")
        } else {
            format!("must be {min} to {max} characters")
        };
        return Err(lockstep_core::Invalid::new(field, rule));
    }
    Ok(())
}
