//! `GET /health` (the process answers) and `GET /health/ready` (the database answers; the
//! status is `degraded`, still 200, while some model has no deployment able to serve it).

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
    let unavailable = engine.unavailable_models();
    let status = if unavailable.is_empty() {
        "ready"
    } else {
        "degraded"
    };
    Ok(Json(json!({
        "status": status,
        "usage_queue": engine.usage_queued(),
        "unavailable_models": unavailable,
    })))
}
