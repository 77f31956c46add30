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
                "attempts": e.attempts,
                "ledger_entry_id": e.ledger_entry_id,
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

#[derive(serde::Deserialize)]
pub struct SummaryQuery {
    group_by: String,
    /// RFC 3339; default: the start of the current month.
    from: Option<String>,
    /// RFC 3339; default: now.
    to: Option<String>,
}

/// `GET /api/usage/summary?group_by=day|model|key&from&to`.
pub async fn summary(
    State(engine): State<Arc<Engine>>,
    Session(account): Session,
    Query(q): Query<SummaryQuery>,
) -> ApiResult<Json<Value>> {
    use domain::{ErrorCode, Money, UnixMillis};
    use engine::usage::UsageGroup;
    let bad = |m: String| crate::error::ErrorResponse::new(ErrorCode::InvalidBody, m);
    let group = match q.group_by.as_str() {
        "day" => UsageGroup::Day,
        "model" => UsageGroup::Model,
        "key" => UsageGroup::Key,
        other => {
            return Err(bad(format!(
                "`group_by` must be day, model or key, not `{other}`"
            )))
        }
    };
    let time = |name: &str, v: Option<String>, default: UnixMillis| match v {
        None => Ok(default),
        Some(s) => UnixMillis::parse_rfc3339(&s)
            .ok_or_else(|| bad(format!("`{name}` must be an RFC 3339 time"))),
    };
    let now = UnixMillis::now();
    let from = time("from", q.from, now.month_start())?;
    let to = time("to", q.to, now.plus_secs(1))?;
    let totals = engine.usage_totals(&account.id, group, from, to).await?;
    let total_cost: Money = totals.iter().map(|t| t.cost).sum();
    let items: Vec<Value> = totals
        .iter()
        .map(|t| {
            json!({
                "group": t.group,
                "requests": t.requests,
                "input_tokens": t.input_tokens,
                "output_tokens": t.output_tokens,
                "cost_usd": t.cost,
            })
        })
        .collect();
    Ok(Json(json!({
        "group_by": q.group_by,
        "from": rfc3339(from),
        "to": rfc3339(to),
        "items": items,
        "total_cost_usd": total_cost,
    })))
}
