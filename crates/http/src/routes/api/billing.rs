//! `/api/billing`: balance, transactions, mock top-ups, Stripe Checkout and its webhook.

use crate::error::ApiResult;
use crate::extract::{Json, JsonBytes, Query, Session};
use crate::routes::{rfc3339, Listing, Page};
use axum::extract::State;
use axum::http::HeaderMap;
use domain::{JsonMoney, LedgerEntry};
use engine::payments::WebhookOutcome;
use engine::Engine;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

pub fn entry_json(e: &LedgerEntry) -> Value {
    json!({
        "id": e.id,
        "kind": e.kind.as_str(),
        "amount_usd": e.amount,
        "balance_after_usd": e.balance_after,
        "reason": e.reason,
        "reference": e.reference,
        "created_at": rfc3339(e.created_at),
    })
}

pub async fn balance(
    State(engine): State<Arc<Engine>>,
    Session(account): Session,
) -> ApiResult<axum::Json<Value>> {
    let b = engine.balance(&account.id, &account.plan).await?;
    Ok(axum::Json(json!({
        "balance_usd": b.balance,
        "reserved_usd": b.reserved,
        "plan_name": b.plan_name,
        "monthly_spend_usd": b.monthly_spend,
        "monthly_cap_usd": b.monthly_cap,
        "payments": if engine.payments_enabled() { "stripe" } else { "mock" },
    })))
}

pub async fn transactions(
    State(engine): State<Arc<Engine>>,
    Session(account): Session,
    Query(page): Query<Page>,
) -> ApiResult<axum::Json<Listing<Value>>> {
    let (limit, offset) = (page.limit(), page.offset());
    let (entries, total) = engine.transactions(&account.id, limit, offset).await?;
    Ok(axum::Json(Listing {
        items: entries.iter().map(entry_json).collect(),
        total,
        limit,
        offset,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmountBody {
    amount_usd: JsonMoney,
}

pub async fn topup(
    State(engine): State<Arc<Engine>>,
    Session(account): Session,
    Json(body): Json<AmountBody>,
) -> ApiResult<axum::Json<Value>> {
    let entry = engine.mock_topup(&account.id, body.amount_usd.0).await?;
    Ok(axum::Json(
        json!({ "transaction": entry_json(&entry), "balance_usd": entry.balance_after }),
    ))
}

pub async fn checkout(
    State(engine): State<Arc<Engine>>,
    Session(account): Session,
    Json(body): Json<AmountBody>,
) -> ApiResult<axum::Json<Value>> {
    let session = engine.checkout(&account.id, body.amount_usd.0).await?;
    Ok(axum::Json(json!({ "id": session.id, "url": session.url })))
}

/// Public (authenticated by its signature). The raw body is verified byte for byte.
pub async fn stripe_webhook(
    State(engine): State<Arc<Engine>>,
    headers: HeaderMap,
    JsonBytes(body): JsonBytes,
) -> ApiResult<axum::Json<Value>> {
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    let outcome = engine.stripe_webhook(signature, &body).await?;
    let result = match outcome {
        WebhookOutcome::Credited { .. } => "credited",
        WebhookOutcome::AlreadyCredited => "already_credited",
        WebhookOutcome::Ignored => "ignored",
    };
    Ok(axum::Json(json!({ "received": true, "result": result })))
}
