//! `POST /v1/chat/completions`, `/v1/completions` and `/v1/embeddings`: the relayed endpoints.
//! The body goes to the engine as bytes; streams go out as SSE, unbuffered. `relay` serves the
//! Anthropic and Gemini routes too.

use crate::error::{rate_headers, ApiResult};
use crate::extract::{ApiKeyAuth, JsonBytes, RequestIdHeader};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use engine::relay::{Ingress, Relayed};
use engine::Engine;
use protocol::openai::Endpoint;
use std::sync::Arc;

static X_ACCEL_BUFFERING: header::HeaderName = header::HeaderName::from_static("x-accel-buffering");

/// Names the deployment that answered.
pub const PROVIDER_HEADER: &str = "x-switchyard-provider";

pub(crate) async fn relay(
    engine: Arc<Engine>,
    auth: ApiKeyAuth,
    request_id: RequestIdHeader,
    body: JsonBytes,
    ingress: Ingress,
) -> ApiResult<Response> {
    let relayed = engine
        .relay(&auth.0, ingress, &body.0, request_id.as_str())
        .await
        .inspect_err(|e| {
            // The gateway's or an upstream's failure: worth an operator's look, by request id.
            if e.code.status() >= 500 {
                tracing::warn!(
                    request_id = request_id.as_str(),
                    code = e.code.as_str(),
                    error = %e.message,
                    "request failed"
                );
            }
        })?;
    let (mut resp, provider, rate) = match relayed {
        Relayed::Complete {
            body,
            provider,
            rate,
        } => (
            ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
            provider,
            rate,
        ),
        Relayed::Stream {
            events,
            provider,
            rate,
        } => (
            (
                [
                    (header::CONTENT_TYPE, "text/event-stream"),
                    (header::CACHE_CONTROL, "no-cache"),
                    (X_ACCEL_BUFFERING.clone(), "no"),
                ],
                Body::from_stream(events),
            )
                .into_response(),
            provider,
            rate,
        ),
    };
    // Room for the headers added below and the request id, without the map regrowing.
    resp.headers_mut().reserve(6);
    if let Ok(v) = HeaderValue::from_str(&provider) {
        static PROVIDER: header::HeaderName = header::HeaderName::from_static(PROVIDER_HEADER);
        resp.headers_mut().insert(PROVIDER.clone(), v);
    }
    if let Some(rate) = &rate {
        rate_headers(resp.headers_mut(), rate);
    }
    Ok(resp)
}

pub async fn chat_completions(
    State(engine): State<Arc<Engine>>,
    auth: ApiKeyAuth,
    request_id: RequestIdHeader,
    body: JsonBytes,
) -> ApiResult<Response> {
    relay(
        engine,
        auth,
        request_id,
        body,
        Ingress::OpenAi(Endpoint::ChatCompletions),
    )
    .await
}

pub async fn completions(
    State(engine): State<Arc<Engine>>,
    auth: ApiKeyAuth,
    request_id: RequestIdHeader,
    body: JsonBytes,
) -> ApiResult<Response> {
    relay(
        engine,
        auth,
        request_id,
        body,
        Ingress::OpenAi(Endpoint::Completions),
    )
    .await
}

pub async fn embeddings(
    State(engine): State<Arc<Engine>>,
    auth: ApiKeyAuth,
    request_id: RequestIdHeader,
    body: JsonBytes,
) -> ApiResult<Response> {
    relay(
        engine,
        auth,
        request_id,
        body,
        Ingress::OpenAi(Endpoint::Embeddings),
    )
    .await
}
