//! `GET /health` (the process answers) and `GET /health/ready` (the database answers).

use crate::error::ApiResult;
use axum::extract::State;
use axum::Json;
use engine::Engine;
use serde_json::{json, Value};
use std::sync::Arc;

pub async fn live() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

pub async fn ready(State(engine): State<Arc<Engine>>) -> ApiResult<Json<Value>> {
    engine.ready().await?;
    Ok(Json(
        json!({ "status": "ready", "usage_queue": engine.usage_queued() }),
    ))
}
