//! A fake model server on 127.0.0.1:0. It answers in OpenAI's exact wire format (JSON with
//! `usage`; SSE chunks, the usage chunk only when `stream_options.include_usage` is set, then
//! `data: [DONE]`) and plays scripted failures, one per request, in order. The same server
//! speaks Anthropic's Messages API at `/v1/messages` (`fake_anthropic`) and Gemini's API
//! under `/v1beta` (`fake_gemini`), with the same script.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Prompt and completion tokens the fake reports for every answer.
pub const PROMPT_TOKENS: u64 = 11;
pub const COMPLETION_TOKENS: u64 = 7;
/// The words a normal answer streams, one chunk each.
pub const WORDS: [&str; 4] = ["Hello", " from", " the", " fake"];

/// What the fake does with one request.
#[derive(Debug, Clone)]
pub enum Behavior {
    /// A normal answer.
    Reply,
    /// This status with this JSON body.
    Status(u16, Value),
    /// A status with a `Retry-After` header.
    StatusRetryAfter(u16, u64, Value),
    /// Never send response headers.
    Hang,
    /// Send 200 and the headers (an event stream when streaming), then never a body byte.
    HangAfterHeaders,
    /// 200 with a body that is not JSON.
    Garbage,
    /// Stream `n` content chunks, then drop the connection without `[DONE]`.
    CutAfter(usize),
    /// Stream `n` chunks, one every `every`, then finish normally.
    Slow { chunks: usize, every: Duration },
    /// A normal answer without any usage (non-stream: no `usage` field; stream: no usage chunk).
    NoUsage,
    /// A normal non-streaming answer after `delay`, reporting `completion` output tokens.
    Costly { completion: u64, delay: Duration },
    /// An answer that calls the tool `name` with these arguments (streamed too).
    ToolCall { name: String, arguments: Value },
}

/// A request as the fake received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
    pub raw: Bytes,
}

#[derive(Default)]
pub(crate) struct Shared {
    script: Mutex<VecDeque<Behavior>>,
    received: Mutex<Vec<Received>>,
    /// Streams whose body was dropped before it finished (the gateway went away).
    streams_cancelled: AtomicUsize,
    /// When each abandoned request (hanging or mid-stream) was dropped.
    cancelled_at: Mutex<Vec<Instant>>,
    /// Status `GET /v1/models` answers with (0: 200 with a model list).
    models_status: AtomicU16,
    models_probes: AtomicUsize,
}

impl Shared {
    pub(crate) fn cancelled(&self) {
        self.cancelled_at.lock().unwrap().push(Instant::now());
    }
}

pub struct FakeOpenAi {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    connections: Arc<AtomicUsize>,
    _server: tokio::task::JoinHandle<()>,
}

impl FakeOpenAi {
    pub async fn start() -> FakeOpenAi {
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/completions", post(chat))
            .route("/v1/embeddings", post(embeddings))
            .route("/v1/models", get(models))
            .route("/v1/messages", post(crate::fake_anthropic::messages))
            .route("/v1beta/models", get(models))
            .route("/v1beta/models/{*tail}", post(crate::fake_gemini::generate))
            .with_state(shared.clone());
        let (addr, server, connections) = crate::serve_counting_connections(app).await;
        FakeOpenAi {
            addr,
            shared,
            connections,
            _server: server,
        }
    }

    /// Connections the gateway opened to this upstream so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// The base URL a provider config points at.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The base URL of a `kind = "gemini"` provider pointed at this server.
    pub fn gemini_base_url(&self) -> String {
        format!("http://{}/v1beta", self.addr)
    }

    /// Queues behaviours for the next requests; after they run out, `Reply`.
    pub fn script(&self, behaviors: impl IntoIterator<Item = Behavior>) {
        self.shared.script.lock().unwrap().extend(behaviors);
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    pub fn streams_cancelled(&self) -> usize {
        self.shared.streams_cancelled.load(Ordering::SeqCst)
    }

    /// When each abandoned request was dropped: a hanging one, or a stream cut short.
    pub fn cancelled_at(&self) -> Vec<Instant> {
        self.shared.cancelled_at.lock().unwrap().clone()
    }

    /// Makes `GET /v1/models` (the health check) answer with `status`; 200 restores the list.
    pub fn set_models_status(&self, status: u16) {
        let v = if status == 200 { 0 } else { status };
        self.shared.models_status.store(v, Ordering::SeqCst);
    }

    /// How many times `GET /v1/models` was called.
    pub fn models_probes(&self) -> usize {
        self.shared.models_probes.load(Ordering::SeqCst)
    }
}

/// Records its drop as a cancellation unless disarmed.
pub(crate) struct Abandoned<'a> {
    pub(crate) shared: &'a Shared,
}

impl Drop for Abandoned<'_> {
    fn drop(&mut self) {
        self.shared.cancelled();
    }
}

/// Waits forever; when the gateway gives up, the drop is recorded.
pub(crate) async fn hang(shared: &Shared) -> Response {
    let _guard = Abandoned { shared };
    std::future::pending().await
}

async fn models(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    shared.models_probes.fetch_add(1, Ordering::SeqCst);
    shared.received.lock().unwrap().push(Received {
        path: "/v1/models".to_owned(),
        headers,
        body: Value::Null,
        raw: Bytes::new(),
    });
    match shared.models_status.load(Ordering::SeqCst) {
        0 => axum::Json(json!({ "object": "list", "data": [
            { "id": "gemma3:4b", "object": "model", "created": 1_700_000_000, "owned_by": "fake" }
        ] }))
        .into_response(),
        code => (
            StatusCode::from_u16(code).unwrap(),
            axum::Json(json!({ "error": { "message": "unhealthy" } })),
        )
            .into_response(),
    }
}

pub(crate) fn next(
    shared: &Shared,
    path: &str,
    headers: HeaderMap,
    raw: Bytes,
) -> (Behavior, Value) {
    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    shared.received.lock().unwrap().push(Received {
        path: path.to_owned(),
        headers,
        body: body.clone(),
        raw,
    });
    let behavior = shared
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Behavior::Reply);
    (behavior, body)
}

/// The failures every protocol's fake plays alike: a status with a body (and `Retry-After`),
/// a hang, garbage. `None` for the behaviours each protocol answers in its own way.
pub(crate) async fn scripted_failure(shared: &Shared, behavior: &Behavior) -> Option<Response> {
    Some(match behavior {
        Behavior::Status(code, v) => {
            (StatusCode::from_u16(*code).unwrap(), axum::Json(v.clone())).into_response()
        }
        Behavior::StatusRetryAfter(code, secs, v) => (
            StatusCode::from_u16(*code).unwrap(),
            [("retry-after", secs.to_string())],
            axum::Json(v.clone()),
        )
            .into_response(),
        Behavior::Hang => hang(shared).await,
        Behavior::Garbage => (StatusCode::OK, "<html>surprise</html>").into_response(),
        _ => return None,
    })
}

fn usage() -> Value {
    json!({
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": COMPLETION_TOKENS,
        "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS
    })
}

fn chunk(model: &str, text: &str, finish: Option<&str>) -> Value {
    json!({
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": model,
        "system_fingerprint": "fp_fake",
        "choices": [{ "index": 0, "delta": { "content": text }, "logprobs": null, "finish_reason": finish }]
    })
}

fn sse(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

async fn chat(
    State(shared): State<Arc<Shared>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let (mut behavior, body) = next(&shared, uri.path(), headers, raw);
    // A forced function is called, with `{"answer": "fake"}`.
    if let (Behavior::Reply, Some(name)) =
        (&behavior, body["tool_choice"]["function"]["name"].as_str())
    {
        behavior = Behavior::ToolCall {
            name: name.to_owned(),
            arguments: json!({"answer": "fake"}),
        };
    }
    let model = body["model"].as_str().unwrap_or("unknown").to_owned();
    let stream = body["stream"].as_bool().unwrap_or(false);
    let include_usage = body["stream_options"]["include_usage"]
        .as_bool()
        .unwrap_or(false);
    if let Some(r) = scripted_failure(&shared, &behavior).await {
        return r;
    }
    match behavior {
        Behavior::HangAfterHeaders => {
            let shared = shared.clone();
            let never = async_stream(move |tx| async move {
                let _guard = Abandoned { shared: &shared };
                // Nothing is ever sent; the wait ends when the gateway drops the body.
                tx.closed().await;
            });
            let kind = if stream {
                "text/event-stream"
            } else {
                "application/json"
            };
            Response::builder()
                .header("content-type", kind)
                .body(Body::from_stream(never))
                .unwrap()
        }
        b if stream => stream_answer(shared, model, include_usage, b),
        b => {
            let mut reported = usage();
            if let Behavior::Costly { completion, delay } = b {
                tokio::time::sleep(delay).await;
                reported["completion_tokens"] = json!(completion);
                reported["total_tokens"] = json!(PROMPT_TOKENS + completion);
            }
            let mut answer = json!({
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": 1_700_000_000,
                "model": model,
                "choices": [{
                    "index": 0,
                    "message": { "role": "assistant", "content": WORDS.concat() },
                    "logprobs": null,
                    "finish_reason": "stop"
                }],
                "usage": reported,
                "system_fingerprint": "fp_fake"
            });
            if matches!(b, Behavior::NoUsage) {
                answer.as_object_mut().unwrap().remove("usage");
            }
            if let Behavior::ToolCall { name, arguments } = &b {
                answer["choices"][0]["message"] = json!({
                    "role": "assistant", "content": null,
                    "tool_calls": [{"id": "call_fake1", "type": "function",
                        "function": {"name": name, "arguments": arguments.to_string()}}]
                });
                answer["choices"][0]["finish_reason"] = json!("tool_calls");
            }
            axum::Json(answer).into_response()
        }
    }
}

/// Counts a stream as cancelled if it is dropped before its last chunk.
pub(crate) struct CancelGuard {
    pub(crate) shared: Arc<Shared>,
    pub(crate) finished: bool,
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if !self.finished {
            self.shared.streams_cancelled.fetch_add(1, Ordering::SeqCst);
            self.shared.cancelled();
        }
    }
}

fn stream_answer(
    shared: Arc<Shared>,
    model: String,
    include_usage: bool,
    behavior: Behavior,
) -> Response {
    let call = match &behavior {
        Behavior::ToolCall { name, arguments } => Some((name.clone(), arguments.to_string())),
        _ => None,
    };
    let (count, every, cut, with_usage) = match behavior {
        Behavior::ToolCall { .. } => (0, Duration::ZERO, false, include_usage),
        Behavior::CutAfter(n) => (n, Duration::ZERO, true, include_usage),
        Behavior::Slow { chunks, every } => (chunks, every, false, include_usage),
        Behavior::NoUsage => (WORDS.len(), Duration::ZERO, false, false),
        _ => (WORDS.len(), Duration::ZERO, false, include_usage),
    };
    let events = async_stream(move |tx| async move {
        let mut guard = CancelGuard {
            shared,
            finished: false,
        };
        let role = json!({
            "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1_700_000_000,
            "model": model, "choices": [{ "index": 0, "delta": { "role": "assistant", "content": "" }, "finish_reason": null }]
        });
        if tx.send(Ok(sse(&role))).await.is_err() {
            return;
        }
        for i in 0..count {
            if !every.is_zero() {
                tokio::select! {
                    () = tokio::time::sleep(every) => {}
                    () = tx.closed() => return,
                }
            }
            let word = WORDS[i % WORDS.len()];
            if tx.send(Ok(sse(&chunk(&model, word, None)))).await.is_err() {
                return;
            }
        }
        if cut {
            guard.finished = true;
            cut_stream(&tx).await;
            return;
        }
        let mut finish = "stop";
        if let Some((name, args)) = &call {
            // The call in two chunks: id and name, then the arguments in two pieces.
            let (a, b) = args.split_at(args.len() / 2);
            let mut first = chunk(&model, "", None);
            first["choices"][0]["delta"] = json!({"tool_calls": [{"index": 0, "id": "call_fake1", "type": "function", "function": {"name": name, "arguments": ""}}]});
            let _ = tx.send(Ok(sse(&first))).await;
            for piece in [a, b] {
                let mut c = chunk(&model, "", None);
                c["choices"][0]["delta"] =
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]});
                let _ = tx.send(Ok(sse(&c))).await;
            }
            finish = "tool_calls";
        }
        let mut last = chunk(&model, "", Some(finish));
        last["choices"][0]["delta"] = json!({});
        if include_usage {
            last["usage"] = Value::Null;
        }
        let _ = tx.send(Ok(sse(&last))).await;
        if with_usage {
            let u = json!({
                "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1_700_000_000,
                "model": model, "choices": [], "usage": usage()
            });
            let _ = tx.send(Ok(sse(&u))).await;
        }
        let _ = tx.send(Ok(Bytes::from_static(b"data: [DONE]\n\n"))).await;
        guard.finished = true;
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(events))
        .unwrap()
}

pub(crate) type Item = Result<Bytes, std::io::Error>;

/// Ends a stream with a transport error (`Behavior::CutAfter`), once the events sent before
/// it had time to be written out: hyper drops a connection whose body fails without flushing
/// what it buffered, so an error right behind the events could lose them, and the cut would
/// then come (as timing had it) before the first event rather than after the n-th.
pub(crate) async fn cut_stream(tx: &tokio::sync::mpsc::Sender<Item>) {
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = tx.send(Err(std::io::Error::other("connection cut"))).await;
}

/// A stream fed by a producer task through a small channel; dropping the stream stops it.
pub(crate) fn async_stream<F, Fut>(produce: F) -> impl futures_util::Stream<Item = Item>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Item>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Item>(1);
    #[allow(clippy::disallowed_methods)]
    tokio::spawn(produce(tx));
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

async fn embeddings(
    State(shared): State<Arc<Shared>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let (behavior, body) = next(&shared, uri.path(), headers, raw);
    if let Some(r) = scripted_failure(&shared, &behavior).await {
        return r;
    }
    let inputs = match &body["input"] {
        Value::Array(a) => a.len(),
        _ => 1,
    };
    let data: Vec<Value> = (0..inputs)
        .map(
            |i| json!({ "object": "embedding", "index": i, "embedding": [0.25, -0.5, 0.125, 1.0] }),
        )
        .collect();
    axum::Json(json!({
        "object": "list",
        "data": data,
        "model": body["model"],
        "usage": { "prompt_tokens": PROMPT_TOKENS, "total_tokens": PROMPT_TOKENS }
    }))
    .into_response()
}
