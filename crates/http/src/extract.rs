//! Extractors: API keys for `/v1`, sessions for `/api`, and bodies, each rejecting in the one
//! error vocabulary.

use crate::error::ErrorResponse;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts, HeaderMap, HeaderName, HeaderValue};
use domain::{Account, ErrorCode};
use engine::auth::Authenticated;
use engine::Engine;
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// The browser session cookie's name.
pub const SESSION_COOKIE: &str = "switchyard_session";

/// The raw API key a `/v1` request presented, from (in order) `Authorization: Bearer`,
/// `X-Api-Key`, `x-goog-api-key` or the `key` query parameter.
pub fn presented_key(parts: &Parts) -> Option<&str> {
    static X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
    static X_GOOG_API_KEY: HeaderName = HeaderName::from_static("x-goog-api-key");
    let h = |name: &HeaderName| parts.headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(auth) = h(&header::AUTHORIZATION) {
        let token = auth
            .strip_prefix("Bearer ")
            .or_else(|| auth.strip_prefix("bearer "));
        return Some(token.unwrap_or(auth).trim());
    }
    if let Some(k) = h(&X_API_KEY).or_else(|| h(&X_GOOG_API_KEY)) {
        return Some(k.trim());
    }
    parts.uri.query().and_then(|q| {
        q.split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == "key")
            .map(|(_, v)| v)
    })
}

/// The request's `X-Request-Id` (the router's layer sets one when the client sent none),
/// taken without copying the rest of the headers.
pub struct RequestIdHeader(pub Option<HeaderValue>);

impl RequestIdHeader {
    pub fn of(headers: &HeaderMap) -> Self {
        Self(headers.get(&crate::request_id::REQUEST_ID).cloned())
    }

    pub fn as_str(&self) -> &str {
        self.0
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestIdHeader {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::of(&parts.headers))
    }
}

/// A `/v1` caller with a valid API key.
pub struct ApiKeyAuth(pub Authenticated);

impl FromRequestParts<Arc<Engine>> for ApiKeyAuth {
    type Rejection = ErrorResponse;

    async fn from_request_parts(
        parts: &mut Parts,
        engine: &Arc<Engine>,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(engine.authenticate(presented_key(parts)).await?))
    }
}

/// The session tokens a request carries: `Authorization: Bearer` and/or the cookie.
pub fn session_tokens(headers: &HeaderMap) -> (Option<String>, Option<String>) {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned());
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_owned());
    (bearer, cookie)
}

/// An `/api` caller signed in by access token or session cookie.
pub struct Session(pub Account);

impl FromRequestParts<Arc<Engine>> for Session {
    type Rejection = ErrorResponse;

    async fn from_request_parts(
        parts: &mut Parts,
        engine: &Arc<Engine>,
    ) -> Result<Self, Self::Rejection> {
        let (bearer, cookie) = session_tokens(&parts.headers);
        let token = bearer.or(cookie).unwrap_or_default();
        Ok(Self(engine.session_account(&token).await?))
    }
}

/// An `/api/admin` caller: signed in and an administrator.
pub struct AdminSession;

impl FromRequestParts<Arc<Engine>> for AdminSession {
    type Rejection = ErrorResponse;

    async fn from_request_parts(
        parts: &mut Parts,
        engine: &Arc<Engine>,
    ) -> Result<Self, Self::Rejection> {
        let Session(account) = Session::from_request_parts(parts, engine).await?;
        if account.role != domain::Role::Admin {
            return Err(ErrorResponse::new(
                ErrorCode::Forbidden,
                "administrators only",
            ));
        }
        Ok(Self)
    }
}

/// Checks that a body is declared as JSON (a missing Content-Type is tolerated).
fn require_json(headers: &HeaderMap) -> Result<(), ErrorResponse> {
    match headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        None => Ok(()),
        Some(ct)
            if ct
                .split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json")) =>
        {
            Ok(())
        }
        Some(ct) => Err(ErrorResponse::new(
            ErrorCode::UnsupportedMediaType,
            format!("the body must be JSON (Content-Type: application/json), not `{ct}`"),
        )),
    }
}

/// The raw body of a JSON request, size-limited by the router's body limit.
pub struct JsonBytes(pub Bytes);

impl JsonBytes {
    /// Reads a JSON body of at most `limit` bytes: the relayed endpoints' way, which the app
    /// dispatches without the router (and so without axum's body-limit extension).
    pub(crate) async fn read(
        headers: &HeaderMap,
        body: axum::body::Body,
        limit: usize,
    ) -> Result<Self, ErrorResponse> {
        use http_body_util::BodyExt as _;
        require_json(headers)?;
        match http_body_util::Limited::new(body, limit).collect().await {
            Ok(collected) => Ok(Self(collected.to_bytes())),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(body_too_large()),
            Err(e) => Err(unreadable_body(e)),
        }
    }
}

fn body_too_large() -> ErrorResponse {
    ErrorResponse::new(ErrorCode::BodyTooLarge, "the request body is too large")
}

fn unreadable_body(e: impl std::fmt::Display) -> ErrorResponse {
    ErrorResponse::new(
        ErrorCode::InvalidBody,
        format!("could not read the body: {e}"),
    )
}

impl<S: Send + Sync> FromRequest<S> for JsonBytes {
    type Rejection = ErrorResponse;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        require_json(req.headers())?;
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                body_too_large()
            } else {
                unreadable_body(rejection)
            }
        })?;
        Ok(Self(bytes))
    }
}

/// A typed JSON body; errors name the field serde complained about.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ErrorResponse;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let JsonBytes(bytes) = JsonBytes::from_request(req, state).await?;
        serde_json::from_slice(&bytes).map(Json).map_err(|e| {
            ErrorResponse::new(ErrorCode::InvalidBody, format!("invalid JSON body: {e}"))
        })
    }
}

/// Query parameters; a malformed one is a 400 in the usual shape.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ErrorResponse;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e| {
                ErrorResponse::new(
                    ErrorCode::InvalidBody,
                    format!("invalid query: {}", e.body_text()),
                )
            })
    }
}
