//! Anthropic's Messages API: `POST /v1/messages` and `POST /v1/messages/count_tokens`. Keys
//! come as `x-api-key` (or Bearer); `anthropic-version` is accepted and not needed. Errors are
//! in Anthropic's shape (the router layers `in_shape_of` on these routes).

use crate::error::ApiResult;
use crate::extract::{ApiKeyAuth, JsonBytes};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use engine::relay::Ingress;
use engine::Engine;
use std::sync::Arc;

pub async fn messages(
    State(engine): State<Arc<Engine>>,
    auth: ApiKeyAuth,
    headers: HeaderMap,
    body: JsonBytes,
) -> ApiResult<Response> {
    super::v1::relay::relay(engine, auth, headers, body, Ingress::Anthropic).await
}

pub async fn count_tokens(
    State(engine): State<Arc<Engine>>,
    auth: ApiKeyAuth,
    body: JsonBytes,
) -> ApiResult<Response> {
    let n = engine.count_tokens(&auth.0, &body.0)?;
    Ok(axum::Json(serde_json::json!({ "input_tokens": n })).into_response())
}
