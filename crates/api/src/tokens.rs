//! `/api/v1/tokens`: API tokens with scopes. A token's secret is shown once, at creation.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

use lockstep_core::ids::TokenId;
use lockstep_core::secret::{generate_token, hash_token, API_TOKEN_PREFIX};
use lockstep_core::Invalid;
use lockstep_store::tokens::ApiToken;

use crate::auth::{Caller, Scope};
use crate::extract::{Json, PageQuery, Query};
use crate::{check_len, page_json, time, time_opt, ApiResult, AppState};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    name: String,
    scopes: Vec<String>,
}

pub fn view(token: &ApiToken) -> Value {
    json!({
        "id": token.id,
        "name": token.name,
        "scopes": token.scopes,
        "created_at": time(token.created_at),
        "last_used_at": time_opt(token.last_used_at),
        "revoked_at": time_opt(token.revoked_at),
    })
}

fn check_scopes(scopes: &[String]) -> Result<(), Invalid> {
    if scopes.is_empty() {
        return Err(Invalid::new("scopes", "must name at least one scope"));
    }
    for (i, scope) in scopes.iter().enumerate() {
        if Scope::parse(scope).is_none() {
            let message = format!("{scope:?} is not a scope; use admin, deploy, hook or read");
            return Err(Invalid::new(format!("scopes[{i}]"), message));
        }
    }
    Ok(())
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(input): Json<CreateToken>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    caller.require(&[Scope::Admin])?;
    check_len("name", &input.name, 1, 100)?;
    check_scopes(&input.scopes)?;
    let mut scopes = input.scopes;
    scopes.sort();
    scopes.dedup();
    let id = TokenId::generate();
    let secret = generate_token(API_TOKEN_PREFIX);
    let token = state
        .engine
        .store()
        .create_token(id.as_str(), &input.name, &hash_token(&secret), &scopes)
        .await?;
    let mut body = view(&token);
    body["token"] = Value::String(secret);
    Ok((StatusCode::CREATED, axum::Json(body)))
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(page): Query<PageQuery>,
) -> ApiResult<axum::Json<Value>> {
    caller.require(&[Scope::Admin])?;
    let found = state
        .engine
        .store()
        .tokens(page.cursor.as_deref(), page.limit()?)
        .await?;
    Ok(axum::Json(page_json(found, view)))
}

pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(&[Scope::Admin])?;
    state.engine.store().revoke_token(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
