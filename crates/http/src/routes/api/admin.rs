//! `/api/admin`: plans, accounts (plan, status, credit), per-key limit overrides, and the
//! health of every upstream deployment.

use super::account_json;
use super::billing::entry_json;
use crate::error::ApiResult;
use crate::extract::{AdminSession, Json, Query};
use crate::routes::{Listing, Page};
use axum::extract::{Path, State};
use domain::{AccountId, AccountStatus, JsonMoney, KeyId, Plan};
use engine::admin::KeyLimits;
use engine::Engine;
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};
use std::sync::Arc;

fn plan_json(p: &Plan) -> Value {
    json!({
        "name": p.name,
        "monthly_price_usd": p.monthly_price,
        "included_credits_usd": p.included_credits,
        "monthly_cap_usd": p.monthly_cap,
        "allowed_models": p.allowed_models,
        "rpm": p.rpm,
        "tpm": p.tpm,
        "concurrency": p.concurrency,
    })
}

pub async fn list_plans(
    State(engine): State<Arc<Engine>>,
    _admin: AdminSession,
) -> axum::Json<Value> {
    let items: Vec<Value> = engine.plans().iter().map(|p| plan_json(p)).collect();
    axum::Json(json!({ "items": items }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanBody {
    monthly_price_usd: JsonMoney,
    included_credits_usd: JsonMoney,
    monthly_cap_usd: JsonMoney,
    allowed_models: Option<Vec<String>>,
    rpm: u32,
    tpm: Option<u32>,
    concurrency: Option<u32>,
}

/// `PUT /api/admin/plans/{name}`: creates or replaces a plan.
pub async fn put_plan(
    State(engine): State<Arc<Engine>>,
    _admin: AdminSession,
    Path(name): Path<String>,
    Json(b): Json<PlanBody>,
) -> ApiResult<axum::Json<Value>> {
    let plan = Plan {
        name,
        monthly_price: b.monthly_price_usd.0,
        included_credits: b.included_credits_usd.0,
        monthly_cap: b.monthly_cap_usd.0,
        allowed_models: b.allowed_models,
        rpm: b.rpm,
        tpm: b.tpm,
        concurrency: b.concurrency,
    };
    let saved = engine.save_plan(plan).await?;
    Ok(axum::Json(plan_json(&saved)))
}

pub async fn list_accounts(
    State(engine): State<Arc<Engine>>,
    _admin: AdminSession,
    Query(page): Query<Page>,
) -> ApiResult<axum::Json<Listing<Value>>> {
    let (limit, offset) = (page.limit(), page.offset());
    let (accounts, total) = engine.list_accounts(limit, offset).await?;
    let items = accounts
        .iter()
        .map(|(a, balance)| {
            let mut v = account_json(a);
            v["balance_usd"] = json!(balance);
            v
        })
        .collect();
    Ok(axum::Json(Listing {
        items,
        total,
        limit,
        offset,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountPatch {
    plan: Option<String>,
    status: Option<AccountStatus>,
}

pub async fn patch_account(
    State(engine): State<Arc<Engine>>,
    _admin: AdminSession,
    Path(id): Path<String>,
    Json(b): Json<AccountPatch>,
) -> ApiResult<axum::Json<Value>> {
    let id = AccountId(id);
    let mut account = engine.account(&id).await?;
    if let Some(plan) = b.plan {
        account = engine.set_account_plan(&id, &plan).await?;
    }
    if let Some(status) = b.status {
        account = engine.set_account_status(&id, status).await?;
    }
    Ok(axum::Json(account_json(&account)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreditBody {
    amount_usd: JsonMoney,
    reason: String,
}

pub async fn credit_account(
    State(engine): State<Arc<Engine>>,
    _admin: AdminSession,
    Path(id): Path<String>,
    Json(b): Json<CreditBody>,
) -> ApiResult<(axum::http::StatusCode, axum::Json<Value>)> {
    let entry = engine
        .admin_credit(&AccountId(id), b.amount_usd.0, &b.reason)
        .await?;
    Ok((
        axum::http::StatusCode::CREATED,
        axum::Json(entry_json(&entry)),
    ))
}

fn nullable<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<u32>>, D::Error> {
    Option::<u32>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyLimitsBody {
    #[serde(default, deserialize_with = "nullable")]
    rpm_limit: Option<Option<u32>>,
    #[serde(default, deserialize_with = "nullable")]
    tpm_limit: Option<Option<u32>>,
    #[serde(default, deserialize_with = "nullable")]
    concurrency_limit: Option<Option<u32>>,
}

/// `PATCH /api/admin/keys/{id}`: limit overrides for any key.
pub async fn patch_key(
    State(engine): State<Arc<Engine>>,
    _admin: AdminSession,
    Path(id): Path<String>,
    Json(b): Json<KeyLimitsBody>,
) -> ApiResult<axum::Json<Value>> {
    let limits = KeyLimits {
        rpm: b.rpm_limit,
        tpm: b.tpm_limit,
        concurrency: b.concurrency_limit,
    };
    let key = engine.set_key_limits(&KeyId(id), limits).await?;
    Ok(axum::Json(json!({
        "id": key.id,
        "account_id": key.account_id,
        "rpm_limit": key.rpm_limit,
        "tpm_limit": key.tpm_limit,
        "concurrency_limit": key.concurrency_limit,
    })))
}

/// `GET /api/admin/ledger/verify`: accounts whose balance is not the sum of their ledger.
pub async fn verify_ledger(
    State(engine): State<Arc<Engine>>,
    _admin: AdminSession,
) -> ApiResult<axum::Json<Value>> {
    let mismatches = engine.verify_ledger().await?;
    let items: Vec<Value> = mismatches
        .iter()
        .map(|m| json!({ "account_id": m.account, "balance_usd": m.balance, "ledger_sum_usd": m.ledger_sum }))
        .collect();
    Ok(axum::Json(
        json!({ "ok": items.is_empty(), "mismatches": items }),
    ))
}

/// `GET /api/admin/providers`: every deployment's breaker state, latency, error rate and keys.
pub async fn providers(
    State(engine): State<Arc<Engine>>,
    _admin: AdminSession,
) -> ApiResult<axum::Json<Value>> {
    let items: Vec<Value> = engine
        .deployment_health()
        .iter()
        .map(|d| {
            let h = &d.health;
            json!({
                "deployment": d.deployment,
                "provider": d.provider,
                "upstream_model": d.upstream_model,
                "models": d.models,
                "state": h.state.as_str(),
                "consecutive_failures": h.consecutive_failures,
                "retry_in_secs": h.retry_in_secs,
                "requests_5m": h.requests,
                "error_rate_5m": h.error_rate,
                "p50_ms": h.p50_ms,
                "p95_ms": h.p95_ms,
                "ewma_ms": h.ewma_ms,
                "in_flight": h.in_flight,
                "last_error": h.last_error,
                "keys": d.keys,
                "keys_benched": d.keys_benched,
                "max_concurrency": d.max_concurrency,
            })
        })
        .collect();
    Ok(axum::Json(json!({ "items": items })))
}
