//! Calling model servers. `Upstream` is the one interface; the kinds (openai, anthropic,
//! gemini) share one HTTP client and differ in dialect (`client`), chosen once in `registry`.

mod client;
mod pool;
mod registry;

pub use registry::build;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;
use std::pin::Pin;
use std::time::Duration;

/// How to reach and talk to one configured provider.
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    /// The provider's configured name, e.g. `ollama`.
    pub name: String,
    /// The wire protocol it speaks: `openai`, `anthropic` or `gemini`.
    pub kind: String,
    /// Base URL including the API prefix, e.g. `http://127.0.0.1:11434/v1`.
    pub base_url: String,
    /// API keys, used in rotation; empty for servers that need none.
    pub api_keys: Vec<String>,
    pub connect_timeout: Duration,
    /// Time allowed until the first byte of the answer's body (a stream's first event).
    pub first_byte_timeout: Duration,
    /// Longest silence allowed between two chunks of a body.
    pub idle_timeout: Duration,
    /// Longest a whole request may take, body included (streams too).
    pub total_timeout: Duration,
    /// Requests in flight to this provider at most; `None` is unlimited.
    pub max_concurrency: Option<usize>,
    /// How often to probe the provider (`GET /models`); `None` means no active checks.
    pub health_check_interval: Option<Duration>,
    /// Extra headers sent on every request.
    pub headers: Vec<(String, String)>,
}

/// A request to an upstream, already in its wire format.
#[derive(Debug, Clone)]
pub struct UpstreamRequest {
    pub endpoint: protocol::openai::Endpoint,
    /// The provider's name for the model (Gemini puts it in the URL).
    pub model: String,
    pub body: Bytes,
    pub stream: bool,
    /// The API key to send, chosen by the caller from the provider's keys.
    pub api_key: Option<std::sync::Arc<str>>,
}

pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, UpstreamError>> + Send>>;

/// The upstream's answer: status and headers, with the body still streaming.
pub struct UpstreamResponse {
    pub status: u16,
    pub content_type: Option<String>,
    /// `Retry-After` in seconds, when the upstream sent one.
    pub retry_after: Option<u64>,
    pub body: BodyStream,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    #[error("could not connect: {0}")]
    Connect(String),
    #[error("no response within {0:?}")]
    Timeout(Duration),
    #[error("the body stalled for more than {0:?}")]
    Idle(Duration),
    #[error("transport error: {0}")]
    Transport(String),
}

#[async_trait]
pub trait Upstream: Send + Sync {
    fn name(&self) -> &str;
    /// The wire protocol requests and answers are in.
    fn protocol(&self) -> protocol::Protocol;
    /// Sends a request and returns once the response headers are in.
    async fn send(&self, req: UpstreamRequest) -> Result<UpstreamResponse, UpstreamError>;
    /// A cheap liveness probe (the provider's model listing); `Ok` when it answers 2xx.
    async fn probe(&self, api_key: Option<std::sync::Arc<str>>) -> Result<(), UpstreamError>;
}
