//! `GET /api/usage?limit&offset`: the caller's usage events, newest first.

use crate::error::ApiResult;
use crate::extract::Query;
use crate::extract::Session;
use crate::routes::{rfc3339, Listing, Page};
use axum::extract::State;
use axum::Json;
use engine::Engine;
use serde_json::{json, Value};
use std::sync::Arc;

pub async fn list(
    State(engine): State<Arc<Engine>>,
    Session(account): Session,
    Query(page): Query<Page>,
) -> ApiResult<Json<Listing<Value>>> {
    let (limit, offset) = (page.limit(), page.offset());
    let found = engine.list_usage(&account.id, limit, offset).await?;
    let items = found
        .items
        .iter()
        .map(|e| {
            json!({
                "id": e.id,
                "key_id": e.key_id,
                "endpoint": e.endpoint,
                "model": e.public_model,
                "upstream_model": e.upstream_model,
                "provider": e.provider,
                "input_tokens": e.input_tokens,
                "output_tokens": e.output_tokens,
                "cached_tokens": e.cached_tokens,
                "cost_usd": e.cost,
                "estimated": e.estimated,
                "latency_ms": e.latency_ms,
                "status": e.status.as_str(),
                "http_status": e.http_status,
                "error_code": e.error_code,
                "stream": e.stream,
                "request_id": e.request_id,
                "created_at": rfc3339(e.created_at),
            })
        })
        .collect();
    Ok(Json(Listing {
        items,
        total: found.total,
        limit,
        offset,
    }))
}
