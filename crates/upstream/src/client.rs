//! The HTTP client for every provider kind. The kinds differ only in their dialect: where a
//! request goes (`/chat/completions`; `/messages`; `/models/{model}:generateContent`) and how
//! the key is presented (`Authorization: Bearer`; `x-api-key` with `anthropic-version`;
//! `x-goog-api-key`). Timeouts, pooling and body limits are shared.

use crate::{
    BodyStream, ProviderSettings, Upstream, UpstreamError, UpstreamRequest, UpstreamResponse,
};
use async_trait::async_trait;
use futures_util::StreamExt;
use protocol::openai::Endpoint;
use protocol::Protocol;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use std::time::Duration;

/// Idle pooled connections are closed after this, shorter than common server keep-alives.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

pub struct HttpUpstream {
    name: String,
    protocol: Protocol,
    base_url: String,
    /// Each OpenAI endpoint's URL (or Anthropic's `/messages`), parsed once rather than per
    /// request.
    urls: [reqwest::Url; 3],
    client: reqwest::Client,
    first_byte_timeout: Duration,
    idle_timeout: Duration,
    total_timeout: Duration,
}

impl HttpUpstream {
    pub fn new(s: &ProviderSettings, protocol: Protocol) -> Result<Self, String> {
        let mut headers = HeaderMap::new();
        for key in &s.api_keys {
            key_header(protocol, key)
                .map_err(|_| "an API key contains characters not allowed in a header")?;
        }
        if protocol == Protocol::Anthropic {
            headers.insert(
                HeaderName::from_static("anthropic-version"),
                HeaderValue::from_static(protocol::anthropic::API_VERSION),
            );
        }
        for (k, v) in &s.headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| format!("`{k}` is not a valid header name"))?;
            let value = HeaderValue::from_str(v)
                .map_err(|_| format!("header `{k}` has an invalid value"))?;
            headers.insert(name, value);
        }
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(s.connect_timeout)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .tcp_nodelay(true)
            // A redirect from a model server is a misconfiguration to report, not to follow
            // with the request body and key.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("building the HTTP client: {e}"))?;
        let base_url = s.base_url.trim_end_matches('/').to_owned();
        let url = |e: Endpoint| {
            let path = match protocol {
                Protocol::Anthropic => "/messages",
                _ => e.path(),
            };
            reqwest::Url::parse(&format!("{base_url}{path}"))
                .map_err(|err| format!("base_url `{}`: {err}", s.base_url))
        };
        Ok(Self {
            name: s.name.clone(),
            protocol,
            urls: [
                url(Endpoint::ChatCompletions)?,
                url(Endpoint::Completions)?,
                url(Endpoint::Embeddings)?,
            ],
            base_url,
            client,
            first_byte_timeout: s.first_byte_timeout,
            idle_timeout: s.idle_timeout,
            total_timeout: s.total_timeout,
        })
    }
}

/// The header that presents a key in a protocol's dialect.
fn key_header(
    protocol: Protocol,
    key: &str,
) -> Result<(HeaderName, HeaderValue), reqwest::header::InvalidHeaderValue> {
    let (name, mut v) = match protocol {
        Protocol::OpenAi => (
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {key}"))?,
        ),
        Protocol::Anthropic => (
            HeaderName::from_static("x-api-key"),
            HeaderValue::from_str(key)?,
        ),
        Protocol::Gemini => (
            HeaderName::from_static("x-goog-api-key"),
            HeaderValue::from_str(key)?,
        ),
    };
    v.set_sensitive(true);
    Ok((name, v))
}

fn with_key(
    protocol: Protocol,
    mut req: reqwest::RequestBuilder,
    key: Option<&std::sync::Arc<str>>,
) -> reqwest::RequestBuilder {
    if let Some((name, v)) = key.and_then(|k| key_header(protocol, k).ok()) {
        req = req.header(name, v);
    }
    req
}

#[async_trait]
impl Upstream for HttpUpstream {
    fn name(&self) -> &str {
        &self.name
    }

    fn protocol(&self) -> Protocol {
        self.protocol
    }

    async fn send(&self, req: UpstreamRequest) -> Result<UpstreamResponse, UpstreamError> {
        let url = if self.protocol == Protocol::Gemini {
            let method = if req.stream {
                "streamGenerateContent?alt=sse"
            } else {
                "generateContent"
            };
            reqwest::Url::parse(&format!("{}/models/{}:{method}", self.base_url, req.model))
                .map_err(|e| UpstreamError::Connect(format!("the model's URL: {e}")))?
        } else {
            self.urls[match req.endpoint {
                Endpoint::ChatCompletions => 0,
                Endpoint::Completions => 1,
                Endpoint::Embeddings => 2,
            }]
            .clone()
        };
        let accept = if req.stream {
            "text/event-stream"
        } else {
            "application/json"
        };
        let started = tokio::time::Instant::now();
        let sent = with_key(self.protocol, self.client.post(url), req.api_key.as_ref())
            .header(CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, accept)
            .body(req.body)
            .send();
        let wait = self.first_byte_timeout.min(self.total_timeout);
        let resp = match tokio::time::timeout(wait, sent).await {
            Err(_) => return Err(UpstreamError::Timeout(wait)),
            Ok(Err(e)) => return Err(classify(&e)),
            Ok(Ok(r)) => r,
        };
        let header = |name| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header(CONTENT_TYPE);
        let retry_after = header(reqwest::header::RETRY_AFTER).and_then(|v| v.trim().parse().ok());
        Ok(UpstreamResponse {
            status: resp.status().as_u16(),
            content_type,
            retry_after,
            body: limited(
                resp.bytes_stream(),
                BodyLimits {
                    first_by: started + wait,
                    first_wait: wait,
                    idle: self.idle_timeout,
                    deadline: started + self.total_timeout,
                    total: self.total_timeout,
                },
            ),
        })
    }

    async fn probe(&self, api_key: Option<std::sync::Arc<str>>) -> Result<(), UpstreamError> {
        let url = format!("{}/models", self.base_url);
        let sent = with_key(self.protocol, self.client.get(url), api_key.as_ref()).send();
        match tokio::time::timeout(self.first_byte_timeout, sent).await {
            Err(_) => Err(UpstreamError::Timeout(self.first_byte_timeout)),
            Ok(Err(e)) => Err(classify(&e)),
            Ok(Ok(r)) if r.status().is_success() => Ok(()),
            Ok(Ok(r)) => Err(UpstreamError::Transport(format!(
                "the model listing answered HTTP {}",
                r.status().as_u16()
            ))),
        }
    }
}

fn classify(e: &reqwest::Error) -> UpstreamError {
    if e.is_connect() {
        UpstreamError::Connect(root_cause(e))
    } else if e.is_timeout() {
        UpstreamError::Timeout(Duration::ZERO)
    } else {
        UpstreamError::Transport(root_cause(e))
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Bounds on reading a body: the first chunk by the time-to-first-byte limit (a stream's
/// headers come at once; its first token is what takes time), later ones within the idle
/// limit, all of it by the request's total deadline.
#[derive(Clone, Copy)]
struct BodyLimits {
    first_by: tokio::time::Instant,
    first_wait: Duration,
    idle: Duration,
    deadline: tokio::time::Instant,
    total: Duration,
}

/// Ends the body with `Timeout` or `Idle` when a limit of `BodyLimits` passes.
fn limited(
    body: impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send + 'static,
    limits: BodyLimits,
) -> BodyStream {
    let body = Box::pin(body);
    Box::pin(futures_util::stream::unfold(
        Some((body, true)),
        move |state| async move {
            let (mut body, first) = state?;
            let l = &limits;
            let (until, err) = if first {
                (l.first_by, UpstreamError::Timeout(l.first_wait))
            } else {
                (
                    tokio::time::Instant::now() + l.idle,
                    UpstreamError::Idle(l.idle),
                )
            };
            let (until, err) = if l.deadline <= until {
                (l.deadline, UpstreamError::Timeout(l.total))
            } else {
                (until, err)
            };
            match tokio::time::timeout_at(until, body.next()).await {
                Err(_) => Some((Err(err), None)),
                Ok(None) => None,
                Ok(Some(Ok(chunk))) => Some((Ok(chunk), Some((body, false)))),
                Ok(Some(Err(e))) => Some((Err(UpstreamError::Transport(root_cause(&e))), None)),
            }
        },
    ))
}
