//! Anthropic's Messages API: `POST /v1/messages` and `POST /v1/messages/count_tokens`. Keys
//! come as `x-api-key` (or Bearer); `anthropic-version` is accepted and not needed. Errors are
//! in Anthropic's shape (the router layers `in_shape_of` on these routes).

use crate::error::{ApiResult, ErrorResponse};
use crate::extract::{ApiKeyAuth, JsonBytes, RequestIdHeader};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use domain::ErrorCode;
use engine::relay::Ingress;
use engine::Engine;
use std::sync::Arc;

pub async fn messages(
    State(engine): State<Arc<Engine>>,
    auth: ApiKeyAuth,
    request_id: RequestIdHeader,
    body: JsonBytes,
) -> ApiResult<Response> {
    super::v1::relay::relay(engine, auth, request_id, body, Ingress::Anthropic).await
}

pub async fn count_tokens(
    State(engine): State<Arc<Engine>>,
    auth: ApiKeyAuth,
    body: JsonBytes,
) -> ApiResult<Response> {
    let invalid = |m: &str| ErrorResponse::new(ErrorCode::InvalidBody, m);
    let v: serde_json::Value = serde_json::from_slice(&body.0)
        .map_err(|e| invalid(&format!("the body is not valid JSON: {e}")))?;
    let model = v["model"]
        .as_str()
        .ok_or_else(|| invalid("`model` is required"))?;
    if !v["messages"].is_array() {
        return Err(invalid("`messages` is required"));
    }
    let n = engine.count_tokens(&auth.0, model, &body.0)?;
    Ok(axum::Json(serde_json::json!({ "input_tokens": n })).into_response())
}
