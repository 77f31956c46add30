//! `POST /v1/chat/completions`, `/v1/completions` and `/v1/embeddings`: the relayed endpoints.
//! The body goes to the engine as bytes; streams go out as SSE, unbuffered. `relay` serves the
//! Anthropic and Gemini routes too.

use crate::error::{rate_headers, ApiResult};
use crate::extract::{ApiKeyAuth, JsonBytes, RequestIdHeader};
use axum::body::Body;
use axum::extract::{FromRequestParts, Request};
use axum::http::{header, HeaderMap, HeaderValue};
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
    // Sized once for every header a relayed answer carries (the stream's two, the provider,
    // three rate limits, the request id): built up from empty, the map would grow twice.
    let mut headers = HeaderMap::with_capacity(8);
    let (body, provider, rate) = match relayed {
        Relayed::Complete {
            body,
            provider,
            rate,
        } => {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            (Body::from(body), provider, rate)
        }
        Relayed::Stream {
            events,
            provider,
            rate,
        } => {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            headers.insert(X_ACCEL_BUFFERING.clone(), HeaderValue::from_static("no"));
            (Body::from_stream(events), provider, rate)
        }
    };
    if let Ok(v) = HeaderValue::from_str(&provider) {
        static PROVIDER: header::HeaderName = header::HeaderName::from_static(PROVIDER_HEADER);
        headers.insert(PROVIDER.clone(), v);
    }
    if let Some(rate) = &rate {
        rate_headers(&mut headers, rate);
    }
    let mut resp = Response::new(body);
    *resp.headers_mut() = headers;
    Ok(resp)
}

/// `POST /v1/chat/completions`, `/v1/completions` or `/v1/embeddings`, as the app's
/// dispatcher calls it (and the router, for the same paths): the key, then the request id,
/// then the body (of at most `max_body` bytes), each rejected as its extractor would.
pub(crate) async fn openai(
    engine: Arc<Engine>,
    req: Request,
    endpoint: Endpoint,
    max_body: usize,
) -> Response {
    let (mut parts, body) = req.into_parts();
    let relayed = async {
        let auth = ApiKeyAuth::from_request_parts(&mut parts, &engine).await?;
        let request_id = RequestIdHeader::of(&parts.headers);
        let body = JsonBytes::read(&parts.headers, body, max_body).await?;
        relay(engine, auth, request_id, body, Ingress::OpenAi(endpoint)).await
    };
    relayed.await.into_response()
}
