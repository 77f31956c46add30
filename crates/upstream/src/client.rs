//! The HTTP client for every provider kind. The kinds differ only in their dialect: where a
//! request goes (`/chat/completions`; `/messages`; `/models/{model}:generateContent`) and how
//! the key is presented (`Authorization: Bearer`; `x-api-key` with `anthropic-version`;
//! `x-goog-api-key`). Timeouts, pooling and body limits are shared.

use crate::{ProviderSettings, Upstream, UpstreamError, UpstreamRequest, UpstreamResponse};
use async_trait::async_trait;
use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use protocol::openai::Endpoint;
use protocol::Protocol;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// Idle pooled connections are closed after this, shorter than common server keep-alives.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// hyper's pooled client (HTTP/1.1, or HTTP/2 where TLS negotiates it) over rustls with the
/// Mozilla roots; plain `http://` for self-hosted servers. Redirects are never followed: a
/// redirect from a model server is a misconfiguration to report, not to follow with the
/// request body and key.
type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

pub struct HttpUpstream {
    name: String,
    protocol: Protocol,
    base_url: String,
    /// Each OpenAI endpoint's URL (or Anthropic's `/messages`), parsed once rather than per
    /// request.
    urls: [Uri; 3],
    /// The `Host` header for plain-HTTP upstreams, made once: hyper's client would format
    /// it for every request. (Over TLS the connection may be HTTP/2, which carries the
    /// authority itself; the client sets what is needed there.)
    host: Option<HeaderValue>,
    /// Sent with every request: the dialect's version header and the operator's own.
    headers: HeaderMap,
    client: HttpClient,
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
        let base_url = s.base_url.trim_end_matches('/').to_owned();
        let url = |e: Endpoint| {
            let path = match protocol {
                Protocol::Anthropic => "/messages",
                _ => e.path(),
            };
            parse_url(&format!("{base_url}{path}"))
                .map_err(|err| format!("base_url `{}`: {err}", s.base_url))
        };
        let urls = [
            url(Endpoint::ChatCompletions)?,
            url(Endpoint::Completions)?,
            url(Endpoint::Embeddings)?,
        ];
        Ok(Self {
            name: s.name.clone(),
            protocol,
            host: plain_http_host(&urls[0]),
            urls,
            base_url,
            headers,
            client: http_client(s.connect_timeout)?,
            first_byte_timeout: s.first_byte_timeout,
            idle_timeout: s.idle_timeout,
            total_timeout: s.total_timeout,
        })
    }

    /// A request with the provider's headers and the dialect's key header.
    fn request(
        &self,
        method: Method,
        uri: Uri,
        key: Option<&Arc<str>>,
        body: Bytes,
    ) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = method;
        *req.uri_mut() = uri;
        let headers = req.headers_mut();
        headers.reserve(self.headers.len() + 4);
        if let Some(host) = &self.host {
            headers.insert(http::header::HOST, host.clone());
        }
        for (name, value) in &self.headers {
            headers.insert(name.clone(), value.clone());
        }
        if let Some((name, value)) = key.and_then(|k| key_header(self.protocol, k).ok()) {
            headers.insert(name, value);
        }
        req
    }
}

fn http_client(connect_timeout: Duration) -> Result<HttpClient, String> {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    http.enforce_http(false);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
        .map_err(|e| format!("setting up TLS: {e}"))?
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_timer(TokioTimer::new())
        .build(https))
}

/// `Host` for an `http://` URL, as hyper's client would write it (the port only when it is
/// not 80).
fn plain_http_host(url: &Uri) -> Option<HeaderValue> {
    if url.scheme_str() != Some("http") {
        return None;
    }
    let host = url.host()?;
    let value = match url.port_u16() {
        Some(port) if port != 80 => HeaderValue::from_str(&format!("{host}:{port}")),
        _ => HeaderValue::from_str(host),
    };
    value.ok()
}

/// An absolute `http://` or `https://` URL.
fn parse_url(url: &str) -> Result<Uri, String> {
    let uri: Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| e.to_string())?;
    match uri.scheme_str() {
        Some("http" | "https") if uri.host().is_some_and(|h| !h.is_empty()) => Ok(uri),
        _ => Err("an http:// or https:// URL is needed".to_owned()),
    }
}

/// The header that presents a key in a protocol's dialect.
fn key_header(
    protocol: Protocol,
    key: &str,
) -> Result<(HeaderName, HeaderValue), http::header::InvalidHeaderValue> {
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
            parse_url(&format!("{}/models/{}:{method}", self.base_url, req.model))
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
        let mut request = self.request(Method::POST, url, req.api_key.as_ref(), req.body);
        let headers = request.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static(accept));
        let started = tokio::time::Instant::now();
        let wait = self.first_byte_timeout.min(self.total_timeout);
        // One timer serves the whole exchange: the answer's head and first chunk are due by
        // `wait`, and the body reader moves it on for each later chunk.
        let mut timer = Box::pin(tokio::time::sleep_until(started + wait));
        let resp = tokio::select! {
            biased;
            r = self.client.request(request) => match r {
                Ok(r) => r,
                Err(e) => return Err(classify(&e)),
            },
            () = &mut timer => return Err(UpstreamError::Timeout(wait)),
        };
        let (parts, body) = resp.into_parts();
        let header = |name| {
            parts
                .headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
        };
        Ok(UpstreamResponse {
            status: parts.status.as_u16(),
            content_type: header(CONTENT_TYPE).map(str::to_owned),
            retry_after: header(http::header::RETRY_AFTER).and_then(|v| v.trim().parse().ok()),
            body: Box::pin(Limited {
                body: body.into_data_stream(),
                timer,
                limits: BodyLimits {
                    first_wait: wait,
                    idle: self.idle_timeout,
                    deadline: started + self.total_timeout,
                    total: self.total_timeout,
                },
                first: true,
                done: false,
            }),
        })
    }

    async fn probe(&self, api_key: Option<Arc<str>>) -> Result<(), UpstreamError> {
        let url = parse_url(&format!("{}/models", self.base_url))
            .map_err(|e| UpstreamError::Connect(format!("the listing's URL: {e}")))?;
        let request = self.request(Method::GET, url, api_key.as_ref(), Bytes::new());
        match tokio::time::timeout(self.first_byte_timeout, self.client.request(request)).await {
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

fn classify(e: &hyper_util::client::legacy::Error) -> UpstreamError {
    if e.is_connect() {
        UpstreamError::Connect(root_cause(e))
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
    first_wait: Duration,
    idle: Duration,
    deadline: tokio::time::Instant,
    total: Duration,
}

impl BodyLimits {
    /// When the chunk after one that arrived now is due.
    fn next(&self) -> tokio::time::Instant {
        (tokio::time::Instant::now() + self.idle).min(self.deadline)
    }

    /// The error for a chunk late at the timer's current deadline.
    fn late(&self, first: bool, at: tokio::time::Instant) -> UpstreamError {
        if at >= self.deadline {
            UpstreamError::Timeout(self.total)
        } else if first {
            UpstreamError::Timeout(self.first_wait)
        } else {
            UpstreamError::Idle(self.idle)
        }
    }
}

pin_project_lite::pin_project! {
    /// A body that ends with `Timeout` or `Idle` when a limit of `BodyLimits` passes. One
    /// timer, moved on with each chunk, rather than one per chunk.
    struct Limited<B> {
        #[pin]
        body: B,
        timer: Pin<Box<tokio::time::Sleep>>,
        limits: BodyLimits,
        first: bool,
        done: bool,
    }
}

impl<B> futures_util::Stream for Limited<B>
where
    B: futures_util::Stream<Item = Result<Bytes, hyper::Error>>,
{
    type Item = Result<Bytes, UpstreamError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        if *this.done {
            return Poll::Ready(None);
        }
        match this.body.poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                *this.first = false;
                let until = this.limits.next();
                this.timer.as_mut().reset(until);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(None) => {
                *this.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                *this.done = true;
                Poll::Ready(Some(Err(UpstreamError::Transport(root_cause(&e)))))
            }
            Poll::Pending => match this.timer.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    *this.done = true;
                    let at = this.timer.deadline();
                    Poll::Ready(Some(Err(this.limits.late(*this.first, at))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_header_is_made_for_plain_http_as_hyper_would() {
        let host = |u: &str| plain_http_host(&parse_url(u).unwrap());
        assert_eq!(
            host("http://127.0.0.1:11434/v1/chat").unwrap(),
            "127.0.0.1:11434"
        );
        assert_eq!(
            host("http://vllm.internal/v1/chat").unwrap(),
            "vllm.internal"
        );
        assert_eq!(
            host("http://vllm.internal:80/v1/chat").unwrap(),
            "vllm.internal"
        );
        assert_eq!(host("https://api.openai.com/v1/chat"), None);
    }
}
