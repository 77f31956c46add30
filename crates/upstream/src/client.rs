//! The HTTP client for every provider kind. The kinds differ only in their dialect: where a
//! request goes (`/chat/completions`; `/messages`; `/models/{model}:generateContent`) and how
//! the key is presented (`Authorization: Bearer`; `x-api-key` with `anthropic-version`;
//! `x-goog-api-key`). Timeouts, pooling and body limits are shared.

use crate::pool::{Http1Pool, Lease};
use crate::{ProviderSettings, Upstream, UpstreamError, UpstreamRequest, UpstreamResponse};
use async_trait::async_trait;
use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{Method, Request, Uri};
use http_body_util::{BodyDataStream, BodyExt, Full};
use hyper::body::Incoming;
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

/// hyper-util's pooled client (HTTP/1.1, or HTTP/2 where TLS negotiates it) over rustls
/// with the Mozilla roots. Redirects are never followed: a redirect from a model server is a
/// misconfiguration to report, not to follow with the request body and key.
type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// How requests reach an upstream.
enum Transport {
    /// `http://` (a self-hosted server): kept-alive HTTP/1.1 connections of our own
    /// (`pool::Http1Pool`); requests carry their URI in origin form.
    Plain(Http1Pool),
    /// `https://`: hyper-util's client; requests carry their absolute URI.
    Tls(Box<HttpClient>),
}

impl Transport {
    /// The response head, and for a pooled connection the lease that gives it back once
    /// the body has been read to its end.
    async fn request(
        &self,
        req: Request<Full<Bytes>>,
    ) -> Result<(http::Response<Incoming>, Option<Lease>), UpstreamError> {
        match self {
            Transport::Plain(pool) => pool.send(req).await.map(|(r, l)| (r, Some(l))),
            Transport::Tls(client) => client
                .request(req)
                .await
                .map(|r| (r, None))
                .map_err(|e| classify(&e)),
        }
    }

    /// `url` (absolute, checked) as this transport's requests carry it.
    fn target(&self, url: Uri) -> Uri {
        match self {
            Transport::Plain(_) => url
                .path_and_query()
                .map_or_else(|| Uri::from_static("/"), |pq| Uri::from(pq.clone())),
            Transport::Tls(_) => url,
        }
    }
}

pub struct HttpUpstream {
    name: String,
    protocol: Protocol,
    base_url: String,
    /// Each OpenAI endpoint's URL (or Anthropic's `/messages`) as the transport sends it,
    /// parsed once rather than per request.
    urls: [Uri; 3],
    /// The `Host` header for plain-HTTP upstreams, made once: hyper's client would format
    /// it for every request. (Over TLS the connection may be HTTP/2, which carries the
    /// authority itself; the client sets what is needed there.)
    host: Option<HeaderValue>,
    /// Sent with every request: the dialect's version header and the operator's own.
    headers: HeaderMap,
    transport: Transport,
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
        let host = plain_http_host(&urls[0]);
        let transport = match urls[0].host() {
            Some(name) if host.is_some() => Transport::Plain(Http1Pool::new(
                name,
                urls[0].port_u16().unwrap_or(80),
                s.connect_timeout,
                POOL_IDLE_TIMEOUT,
            )),
            _ => Transport::Tls(Box::new(http_client(s.connect_timeout)?)),
        };
        let urls = urls.map(|u| transport.target(u));
        Ok(Self {
            name: s.name.clone(),
            protocol,
            host,
            urls,
            base_url,
            headers,
            transport,
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
            let url = parse_url(&format!("{}/models/{}:{method}", self.base_url, req.model))
                .map_err(|e| UpstreamError::Connect(format!("the model's URL: {e}")))?;
            self.transport.target(url)
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
        let (resp, lease) = tokio::select! {
            biased;
            r = self.transport.request(request) => r?,
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
                lease,
            }),
        })
    }

    async fn probe(&self, api_key: Option<Arc<str>>) -> Result<(), UpstreamError> {
        let url = parse_url(&format!("{}/models", self.base_url))
            .map_err(|e| UpstreamError::Connect(format!("the listing's URL: {e}")))?;
        let url = self.transport.target(url);
        let request = self.request(Method::GET, url, api_key.as_ref(), Bytes::new());
        // The listing's body is not read: its connection is closed, not kept.
        match tokio::time::timeout(self.first_byte_timeout, self.transport.request(request)).await {
            Err(_) => Err(UpstreamError::Timeout(self.first_byte_timeout)),
            Ok(Err(e)) => Err(e),
            Ok(Ok((r, _))) if r.status().is_success() => Ok(()),
            Ok(Ok((r, _))) => Err(UpstreamError::Transport(format!(
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

pub(crate) fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
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

/// A body that ends with `Timeout` or `Idle` when a limit of `BodyLimits` passes. One
/// timer, moved on with each chunk, rather than one per chunk.
struct Limited {
    body: BodyDataStream<Incoming>,
    timer: Pin<Box<tokio::time::Sleep>>,
    limits: BodyLimits,
    first: bool,
    done: bool,
    /// The pooled connection the body comes on, given back at the body's end.
    lease: Option<Lease>,
}

impl Limited {
    fn release(&mut self) {
        if let Some(lease) = self.lease.take() {
            lease.release();
        }
    }
}

impl futures_util::Stream for Limited {
    type Item = Result<Bytes, UpstreamError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match futures_util::Stream::poll_next(Pin::new(&mut this.body), cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.first = false;
                let until = this.limits.next();
                this.timer.as_mut().reset(until);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(None) => {
                this.done = true;
                this.release();
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                this.done = true;
                Poll::Ready(Some(Err(UpstreamError::Transport(root_cause(&e)))))
            }
            Poll::Pending => match this.timer.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.done = true;
                    let at = this.timer.deadline();
                    Poll::Ready(Some(Err(this.limits.late(this.first, at))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl Drop for Limited {
    /// A reader that stops at its protocol's last event (an SSE stream's `[DONE]`) drops the
    /// body before seeing its end. When that end has already arrived, the connection is
    /// still good: give it back. Otherwise (the client went away mid-answer) hyper closes
    /// it, which is also what tells the upstream to stop generating.
    fn drop(&mut self) {
        if self.lease.is_none() || self.done {
            return;
        }
        let mut cx = Context::from_waker(std::task::Waker::noop());
        if let Poll::Ready(None) =
            futures_util::Stream::poll_next(Pin::new(&mut self.body), &mut cx)
        {
            self.release();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::tests::{server, After};
    use futures_util::StreamExt;
    use std::sync::atomic::Ordering;

    fn local(port: u16) -> HttpUpstream {
        let settings = ProviderSettings {
            name: "local".into(),
            kind: "openai".into(),
            base_url: format!("http://127.0.0.1:{port}/v1"),
            api_keys: vec![],
            connect_timeout: Duration::from_secs(5),
            first_byte_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(30),
            max_concurrency: None,
            health_check_interval: None,
            headers: vec![],
        };
        HttpUpstream::new(&settings, Protocol::OpenAi).unwrap()
    }

    fn chat(stream: bool) -> UpstreamRequest {
        UpstreamRequest {
            endpoint: Endpoint::ChatCompletions,
            model: "m".into(),
            body: Bytes::from_static(b"{}"),
            stream,
            api_key: None,
        }
    }

    /// Reads a stream to its end; the text.
    async fn read_stream(up: &HttpUpstream) -> String {
        let body = up.send(chat(true)).await.unwrap().body;
        let chunks: Vec<_> = body.collect().await;
        chunks
            .into_iter()
            .map(|c| String::from_utf8(c.unwrap().to_vec()).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn plain_http_upstreams_reuse_connections_for_answers_and_streams_read_to_their_end() {
        let (port, accepted, heads) = server(After::KeepOpen).await;
        let up = local(port);
        for _ in 0..3 {
            let body = up.send(chat(false)).await.unwrap().body;
            let chunks: Vec<_> = body.collect().await;
            assert_eq!(chunks.len(), 1);
            assert!(read_stream(&up).await.ends_with("data: [DONE]\n\n"));
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        let heads = heads.lock().unwrap();
        assert_eq!(heads.len(), 6);
        assert!(heads[0].starts_with("POST /v1/chat/completions HTTP/1.1\r\n"));
        assert!(heads[0].contains(&format!("host: 127.0.0.1:{port}")));
    }

    #[tokio::test]
    async fn a_stream_dropped_before_its_end_closes_its_connection() {
        let (port, accepted, _) = server(After::KeepOpen).await;
        let up = local(port);
        let mut body = up.send(chat(true)).await.unwrap().body;
        let first = body.next().await.unwrap().unwrap();
        assert!(!String::from_utf8_lossy(&first).contains("[DONE]"));
        drop(body);
        read_stream(&up).await;
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

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
