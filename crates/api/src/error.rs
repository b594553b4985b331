//! The API's one error type: every failure a client can see, with its status code.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use lockstep_core::Invalid;
use lockstep_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body is not the JSON we expect (syntax, wrong type, unknown field).
    #[error("{message}")]
    Malformed {
        message: String,
        field: Option<String>,
    },
    /// 422: well-formed input that breaks a rule.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// 401: no token, or one we do not know.
    #[error("a valid API token is required: send `Authorization: Bearer <token>`")]
    Unauthenticated,
    /// 403: the token's scopes do not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// 404
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 409
    #[error("{0}")]
    Conflict(String),
    /// 413
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    /// 415
    #[error("the request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    /// 429: too many failed authentications from this address; retry after the seconds.
    #[error("too many failed authentications from this address; retry in {0} seconds")]
    TooManyRequests(u64),
    /// 500: the detail is logged here, once, and never sent.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn malformed(message: impl Into<String>, field: Option<String>) -> Self {
        ApiError::Malformed {
            message: message.into(),
            field,
        }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Malformed { .. } => (StatusCode::BAD_REQUEST, "malformed_request"),
            ApiError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
            ApiError::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            ApiError::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::TooManyRequests(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(what) => ApiError::NotFound(what),
            StoreError::Conflict(message) => ApiError::Conflict(message),
            StoreError::Invalid(invalid) => ApiError::Invalid(invalid),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> Self {
        match err.downcast::<StoreError>() {
            Ok(store) => store.into(),
            Err(other) => ApiError::Internal(format!("{other:#}")),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let ApiError::Internal(detail) = &self {
            tracing::error!(detail, "request failed");
        }
        let field = match &self {
            ApiError::Malformed { field, .. } => field.clone(),
            ApiError::Invalid(invalid) => Some(invalid.field.clone()),
            _ => None,
        };
        let message = match &self {
            ApiError::Invalid(invalid) => format!("{}: {}", invalid.field, invalid.message),
            other => other.to_string(),
        };
        let body = json!({"error": {"code": code, "message": message, "field": field}});
        let mut response = (status, axum::Json(body)).into_response();
        if let ApiError::TooManyRequests(seconds) = self {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(seconds),
            );
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
