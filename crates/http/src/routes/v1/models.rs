//! `GET /v1/models` and `GET /v1/models/{id}`: OpenAI's shape, only what the key may use,
//! with context length and prices as extra fields.

use crate::error::{rate_headers, ApiResult};
use crate::extract::ApiKeyAuth;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
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

/// Adds the key's current rate-limit view (listing models consumes none of it).
fn with_rate(engine: &Engine, auth: &engine::auth::Authenticated, body: Value) -> Response {
    let mut resp = Json(body).into_response();
    if let Some(rate) = engine.rate_view(auth) {
        rate_headers(resp.headers_mut(), &rate);
    }
    resp
}

pub async fn list(State(engine): State<Arc<Engine>>, ApiKeyAuth(auth): ApiKeyAuth) -> Response {
    let data: Vec<Value> = engine
        .models_for(&auth)
        .iter()
        .map(|m| model_json(m))
        .collect();
    with_rate(&engine, &auth, json!({ "object": "list", "data": data }))
}

pub async fn get(
    State(engine): State<Arc<Engine>>,
    ApiKeyAuth(auth): ApiKeyAuth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let model = engine.model_for(&auth, &id)?;
    Ok(with_rate(&engine, &auth, model_json(&model)))
}
