//! Extractors that answer bad input in the API's own error shape.

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use lockstep_core::Invalid;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ApiError;

/// The largest request body accepted.
pub const MAX_BODY: usize = 1024 * 1024;

/// A JSON body parsed into `T`; errors name the field that was wrong.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = read_body(req.into_body()).await?;
        parse(&bytes).map(Json)
    }
}

async fn read_body(body: Body) -> Result<bytes::Bytes, ApiError> {
    axum::body::to_bytes(body, MAX_BODY).await.map_err(|err| {
        let too_large = std::error::Error::source(&err)
            .is_some_and(|s| s.to_string().contains("length limit"))
            || err.to_string().contains("length limit");
        if too_large {
            ApiError::TooLarge(MAX_BODY)
        } else {
            ApiError::malformed("the request body could not be read", None)
        }
    })
}

/// Parses JSON, reporting the path of the field that failed (`events[1].event`). Text with
/// a NUL character is refused here, naming its field: no database stores it.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|err| ApiError::malformed(format!("invalid JSON body: {err}"), None))?;
    if let Some(field) = nul_in(&value, "") {
        let field = if field.is_empty() {
            "body".to_owned()
        } else {
            field
        };
        return Err(Invalid::new(field, "must not contain the NUL character").into());
    }
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let field = (path != ".").then_some(path);
        ApiError::malformed(format!("invalid JSON body: {}", err.inner()), field)
    })
}

/// The path of the first string (or object key) holding U+0000.
fn nul_in(value: &Value, path: &str) -> Option<String> {
    match value {
        Value::String(text) => text.contains('\0').then(|| path.to_owned()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_in(item, &format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            let here = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            if key.contains('\0') {
                return Some(here);
            }
            nul_in(item, &here)
        }),
        _ => None,
    }
}

/// Query parameters parsed into `T`, with errors in the API's shape.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str(query)
            .map(Query)
            .map_err(|err| ApiError::malformed(format!("invalid query string: {err}"), None))
    }
}

/// Page parameters shared by every list.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn limit(&self) -> Result<i64, ApiError> {
        match self.limit {
            None => Ok(50),
            Some(n) if (1..=500).contains(&n) => Ok(n),
            Some(_) => {
                Err(lockstep_core::Invalid::new("limit", "must be between 1 and 500").into())
            }
        }
    }
}
