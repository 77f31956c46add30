//! `POST /api/keys`, `GET /api/keys`, `GET|PATCH|DELETE /api/keys/{id}`: a user's own keys.
//! The secret appears once, in the creation response.

use crate::error::{ApiResult, ErrorResponse};
use crate::extract::{Json, Session};
use crate::routes::rfc3339;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::{ApiKeyRecord, ErrorCode, JsonMoney, KeyId, UnixMillis};
use engine::keys::{KeyChange, NewKey};
use engine::Engine;
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};
use std::sync::Arc;

fn key_json(k: &ApiKeyRecord) -> Value {
    json!({
        "id": k.id,
        "name": k.name,
        "prefix": k.prefix,
        "disabled": k.disabled,
        "monthly_limit_usd": k.monthly_limit,
        "allowed_models": k.allowed_models,
        "expires_at": k.expires_at.map(rfc3339),
        "rpm_limit": k.rpm_limit,
        "tpm_limit": k.tpm_limit,
        "concurrency_limit": k.concurrency_limit,
        "created_at": rfc3339(k.created_at),
        "last_used_at": k.last_used_at.map(rfc3339),
    })
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

fn parse_time(s: Option<String>) -> Result<Option<UnixMillis>, ErrorResponse> {
    s.map(|s| {
        UnixMillis::parse_rfc3339(&s).ok_or_else(|| {
            ErrorResponse::new(
                ErrorCode::InvalidBody,
                format!("`expires_at` must be an RFC 3339 time, got `{s}`"),
            )
        })
    })
    .transpose()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    name: String,
    monthly_limit_usd: Option<JsonMoney>,
    allowed_models: Option<Vec<String>>,
    expires_at: Option<String>,
}

pub async fn create(
    State(engine): State<Arc<Engine>>,
    Session(account): Session,
    Json(body): Json<CreateBody>,
) -> ApiResult<Response> {
    let req = NewKey {
        name: body.name,
        monthly_limit: body.monthly_limit_usd.map(|m| m.0),
        allowed_models: body.allowed_models,
        expires_at: parse_time(body.expires_at)?,
    };
    let (record, secret) = engine.create_key(&account.id, req).await?;
    let mut out = key_json(&record);
    out["key"] = Value::String(secret.expose().to_owned());
    Ok((StatusCode::CREATED, axum::Json(out)).into_response())
}

pub async fn list(
    State(engine): State<Arc<Engine>>,
    Session(account): Session,
) -> ApiResult<axum::Json<Value>> {
    let keys = engine.list_keys(&account.id).await?;
    let items: Vec<Value> = keys.iter().map(key_json).collect();
    Ok(axum::Json(json!({ "items": items })))
}

pub async fn get(
    State(engine): State<Arc<Engine>>,
    Session(account): Session,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    let key = engine.get_key(&account.id, &KeyId(id)).await?;
    Ok(axum::Json(key_json(&key)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchBody {
    name: Option<String>,
    disabled: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    monthly_limit_usd: Option<Option<JsonMoney>>,
    #[serde(default, deserialize_with = "nullable")]
    allowed_models: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "nullable")]
    expires_at: Option<Option<String>>,
}

pub async fn update(
    State(engine): State<Arc<Engine>>,
    Session(account): Session,
    Path(id): Path<String>,
    Json(body): Json<PatchBody>,
) -> ApiResult<axum::Json<Value>> {
    let change = KeyChange {
        name: body.name,
        disabled: body.disabled,
        monthly_limit: body.monthly_limit_usd.map(|m| m.map(|m| m.0)),
        allowed_models: body.allowed_models,
        expires_at: body.expires_at.map(parse_time).transpose()?,
    };
    let key = engine.update_key(&account.id, &KeyId(id), change).await?;
    Ok(axum::Json(key_json(&key)))
}

pub async fn delete(
    State(engine): State<Arc<Engine>>,
    Session(account): Session,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    engine.delete_key(&account.id, &KeyId(id)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
