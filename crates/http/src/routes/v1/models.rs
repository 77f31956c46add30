//! `GET /v1/models` and `GET /v1/models/{id}`: OpenAI's shape, only what the key may use,
//! with context length and prices as extra fields, and the `auto` router alias. A request with
//! an `anthropic-version` header (the Anthropic SDK's) gets Anthropic's shape instead.

use crate::error::{rate_headers, ApiResult};
use crate::extract::ApiKeyAuth;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
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

/// `auto` (and any other alias): the router picks a model per request.
fn router_json(alias: &str) -> Value {
    json!({
        "id": alias,
        "object": "model",
        "created": 0,
        "owned_by": "switchyard",
        "type": "router",
        "description": "Chooses, per request, the cheapest model this key may use that can serve it (tools, images, JSON output, context length); the response's `model` names the one that answered.",
    })
}

/// The Anthropic SDK sends `anthropic-version` on every request.
fn anthropic(headers: &HeaderMap) -> bool {
    headers.contains_key("anthropic-version")
}

/// A model as Anthropic's Models API describes one.
fn anthropic_json(m: &PublicModel) -> Value {
    json!({
        "type": "model",
        "id": m.name,
        "display_name": m.name,
        "created_at": domain::UnixMillis(m.created.saturating_mul(1000)).to_rfc3339(),
    })
}

pub async fn list(
    State(engine): State<Arc<Engine>>,
    ApiKeyAuth(auth): ApiKeyAuth,
    headers: HeaderMap,
) -> Response {
    let models = engine.models_for(&auth);
    if anthropic(&headers) {
        let data: Vec<Value> = models
            .iter()
            .filter(|m| m.kind == ModelKind::Chat)
            .map(|m| anthropic_json(m))
            .collect();
        let first = data.first().map(|m| m["id"].clone());
        let last = data.last().map(|m| m["id"].clone());
        return with_rate(
            &engine,
            &auth,
            json!({ "data": data, "has_more": false, "first_id": first, "last_id": last }),
        );
    }
    let mut data: Vec<Value> = models.iter().map(|m| model_json(m)).collect();
    if models.iter().any(|m| m.kind == ModelKind::Chat) {
        data.extend(engine.auto_aliases().iter().map(|a| router_json(a)));
    }
    with_rate(&engine, &auth, json!({ "object": "list", "data": data }))
}

pub async fn get(
    State(engine): State<Arc<Engine>>,
    ApiKeyAuth(auth): ApiKeyAuth,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if anthropic(&headers) {
        let model = engine.model_for(&auth, &id)?;
        return Ok(with_rate(&engine, &auth, anthropic_json(&model)));
    }
    if engine.auto_aliases().contains(&id) {
        return Ok(with_rate(&engine, &auth, router_json(&id)));
    }
    let model = engine.model_for(&auth, &id)?;
    Ok(with_rate(&engine, &auth, model_json(&model)))
}
