//! `POST /api/auth/signup`, `/login`, `/logout` and `GET /api/auth/me`.

use super::account_json;
use crate::app::HttpSettings;
use crate::error::ApiResult;
use crate::extract::{session_tokens, Json, Session, SESSION_COOKIE};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::Role;
use engine::accounts::{LoginTokens, SignUp};
use engine::Engine;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignUpBody {
    email: String,
    password: String,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    email: String,
    password: String,
}

fn cookie(settings: &HttpSettings, value: &str, max_age: u64) -> HeaderValue {
    let secure = if settings.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let c = format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    );
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn logged_in(settings: &HttpSettings, status: StatusCode, t: LoginTokens) -> Response {
    let body = json!({
        "access_token": t.access_token,
        "token_type": "bearer",
        "expires_in": t.access_expires_in,
        "user": account_json(&t.account),
    });
    let mut resp = (status, axum::Json(body)).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        cookie(settings, &t.session_token, t.session_expires_in),
    );
    resp
}

pub async fn signup(
    State(engine): State<Arc<Engine>>,
    axum::Extension(settings): axum::Extension<Arc<HttpSettings>>,
    Json(body): Json<SignUpBody>,
) -> ApiResult<Response> {
    let account = engine
        .sign_up(SignUp {
            email: body.email.clone(),
            password: body.password.clone(),
            name: body.name,
            role: Role::User,
        })
        .await?;
    let tokens = engine.login(&account.email, &body.password).await?;
    Ok(logged_in(&settings, StatusCode::CREATED, tokens))
}

pub async fn login(
    State(engine): State<Arc<Engine>>,
    axum::Extension(settings): axum::Extension<Arc<HttpSettings>>,
    Json(body): Json<LoginBody>,
) -> ApiResult<Response> {
    let tokens = engine.login(&body.email, &body.password).await?;
    Ok(logged_in(&settings, StatusCode::OK, tokens))
}

pub async fn logout(
    State(engine): State<Arc<Engine>>,
    axum::Extension(settings): axum::Extension<Arc<HttpSettings>>,
    _session: Session,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (bearer, cookie_token) = session_tokens(&headers);
    let tokens: Vec<&str> = bearer
        .iter()
        .chain(cookie_token.iter())
        .map(String::as_str)
        .collect();
    engine.logout(&tokens).await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, cookie(&settings, "", 0));
    Ok(resp)
}

pub async fn me(Session(account): Session) -> axum::Json<serde_json::Value> {
    axum::Json(account_json(&account))
}
