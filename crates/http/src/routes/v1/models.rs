//! `GET /v1/models` and `GET /v1/models/{id}`: OpenAI's shape, only what the key may use,
//! with context length and prices as extra fields.

use crate::error::ApiResult;
use crate::extract::ApiKeyAuth;
use axum::extract::{Path, State};
use axum::Json;
use domain::catalog::ModelKind;
use domain::PublicModel;
use engine::Engine;
use serde_json::{json, Value};
use std::sync::Arc;

fn model_json(m: &PublicModel) -> Value {
    json!({
        "id": m.name,
        "object": "model",
        "created": m.created,
        "owned_by": m.owned_by,
        "family": m.family,
        "type": match m.kind { ModelKind::Chat => "chat", ModelKind::Embedding => "embedding" },
        "context_length": m.context_length,
        "dimensions": m.dimensions,
        "pricing": {
            "currency": "USD",
            "unit": "1M tokens",
            "input": m.price.input,
            "output": m.price.output,
            "cached_input": m.price.cached_input,
        },
    })
}

pub async fn list(State(engine): State<Arc<Engine>>, ApiKeyAuth(auth): ApiKeyAuth) -> Json<Value> {
    let data: Vec<Value> = engine
        .models_for(&auth)
        .iter()
        .map(|m| model_json(m))
        .collect();
    Json(json!({ "object": "list", "data": data }))
}

pub async fn get(
    State(engine): State<Arc<Engine>>,
    ApiKeyAuth(auth): ApiKeyAuth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let model = engine.model_for(&auth, &id)?;
    Ok(Json(model_json(&model)))
}
