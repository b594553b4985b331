//! `/api/v1/instances`: the environments releases deploy to, and their steps.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use lockstep_core::{InstanceId, Invalid};
use lockstep_store::instances::{Instance, InstanceFields, StepDef};

use crate::auth::{Caller, Scope};
use crate::extract::{Json, PageQuery, Query};
use crate::{check_len, page_json, time, ApiError, ApiResult, AppState};

const MAX_STEPS: usize = 50;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepInput {
    name: String,
    run: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateInstance {
    id: String,
    name: String,
    url: String,
    #[serde(default)]
    attributes: Map<String, Value>,
    steps: Option<Vec<StepInput>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateInstance {
    name: Option<String>,
    url: Option<String>,
    attributes: Option<Map<String, Value>>,
    steps: Option<Vec<StepInput>>,
}

pub fn view(instance: &Instance) -> Value {
    json!({
        "id": instance.id,
        "name": instance.name,
        "url": instance.url,
        "attributes": instance.attributes,
        "steps": instance.steps,
        "created_at": time(instance.created_at),
        "updated_at": time(instance.updated_at),
    })
}

fn check_url(url: &str) -> Result<(), Invalid> {
    check_len("url", url, 1, 2048)?;
    let parsed = url::Url::parse(url)
        .map_err(|e| Invalid::new("url", format!("is not a valid URL: {e}")))?;
    if parsed.scheme() != "http" && parsed.scheme() != "https" {
        return Err(Invalid::new("url", "must use http or https"));
    }
    Ok(())
}

/// Checks steps and that the caller may set them: steps run commands on this host, so only
/// an admin token may.
fn check_steps(caller: &Caller, steps: Vec<StepInput>) -> ApiResult<Vec<StepDef>> {
    if !caller.has(Scope::Admin) {
        return Err(ApiError::Forbidden(
            "only an admin token may set steps".into(),
        ));
    }
    if steps.len() > MAX_STEPS {
        return Err(Invalid::new("steps", format!("at most {MAX_STEPS} steps")).into());
    }
    for (i, step) in steps.iter().enumerate() {
        check_len(&format!("steps[{i}].name"), &step.name, 1, 100)?;
        check_len(&format!("steps[{i}].run"), &step.run, 1, 8192)?;
    }
    Ok(steps
        .into_iter()
        .map(|s| StepDef {
            name: s.name,
            run: s.run,
        })
        .collect())
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(input): Json<CreateInstance>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    caller.require(&[Scope::Deploy])?;
    let id = InstanceId::parse(&input.id, "id")?;
    check_len("name", &input.name, 1, 200)?;
    check_url(&input.url)?;
    let steps = match input.steps {
        Some(steps) => check_steps(&caller, steps)?,
        None => Vec::new(),
    };
    let fields = InstanceFields {
        name: input.name,
        url: input.url,
        attributes: Value::Object(input.attributes),
        steps,
    };
    let instance = state
        .engine
        .store()
        .create_instance(id.as_str(), &fields)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(view(&instance))))
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
        .instances(page.cursor.as_deref(), page.limit()?)
        .await?;
    Ok(axum::Json(page_json(found, view)))
}

pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    caller.require_read()?;
    Ok(axum::Json(view(&state.engine.store().instance(&id).await?)))
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(input): Json<UpdateInstance>,
) -> ApiResult<axum::Json<Value>> {
    caller.require(&[Scope::Deploy])?;
    let store = state.engine.store();
    let current = store.instance(&id).await?;
    if let Some(name) = &input.name {
        check_len("name", name, 1, 200)?;
    }
    if let Some(url) = &input.url {
        check_url(url)?;
    }
    let steps = match input.steps {
        Some(steps) => check_steps(&caller, steps)?,
        None => current.steps,
    };
    let fields = InstanceFields {
        name: input.name.unwrap_or(current.name),
        url: input.url.unwrap_or(current.url),
        attributes: input
            .attributes
            .map(Value::Object)
            .unwrap_or(current.attributes),
        steps,
    };
    Ok(axum::Json(view(
        &store.update_instance(&id, &fields).await?,
    )))
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(&[Scope::Admin])?;
    state.engine.store().delete_instance(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
