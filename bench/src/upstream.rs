//! The fake upstream: an OpenAI-compatible server as cheap as it can be, so the figures are
//! the gateway's. A non-streaming chat gets a fixed answer with a usage block; a streaming one
//! gets `chunks` content chunks (one every `interval_us`), a usage chunk and `[DONE]`. The
//! request body may carry `"bench": {"chunks", "interval_us", "latency_us"}` to change that per
//! request (the gateway passes unknown fields through).

use crate::{serve_http1, Body, BoxError};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use serde::Deserialize;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Deserialize, Default)]
struct Probe {
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    bench: Controls,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(default)]
struct Controls {
    chunks: usize,
    interval_us: u64,
    latency_us: u64,
}

impl Default for Controls {
    fn default() -> Self {
        Self {
            chunks: 50,
            interval_us: 0,
            latency_us: 0,
        }
    }
}

const ANSWER: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"bench-model","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from the bench upstream."},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":7,"total_tokens":19},"system_fingerprint":"fp_bench"}"#;
const CHUNK: &str = "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"bench-model\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" token\"},\"finish_reason\":null}]}\n\n";
const LAST: &str = "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"bench-model\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n";
const USAGE: &str = "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"bench-model\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":50,\"total_tokens\":62}}\n\n";
const MODELS: &str = r#"{"object":"list","data":[{"id":"bench-model","object":"model","created":1700000000,"owned_by":"bench"}]}"#;

pub async fn run(listen: SocketAddr) -> anyhow::Result<()> {
    serve_http1(listen, |req| async move { Ok(answer(req).await) }).await
}

async fn answer(req: Request<Incoming>) -> Response<Body> {
    if req.method() == hyper::Method::GET {
        return json(MODELS);
    }
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return json("{}"),
    };
    let probe: Probe = serde_json::from_slice(&body).unwrap_or_default();
    let c = probe.bench;
    if c.latency_us > 0 {
        tokio::time::sleep(Duration::from_micros(c.latency_us)).await;
    }
    if !probe.stream {
        return json(ANSWER);
    }
    let every = Duration::from_micros(c.interval_us);
    let frames = futures_util::stream::unfold(0usize, move |i| async move {
        let text = match i {
            i if i < c.chunks => {
                if i > 0 && !every.is_zero() {
                    tokio::time::sleep(every).await;
                }
                CHUNK
            }
            i if i == c.chunks => LAST,
            i if i == c.chunks + 1 => USAGE,
            i if i == c.chunks + 2 => "data: [DONE]\n\n",
            _ => return None,
        };
        Some((
            Ok::<_, BoxError>(Frame::data(Bytes::from_static(text.as_bytes()))),
            i + 1,
        ))
    });
    let mut resp = Response::new(StreamBody::new(frames).boxed_unsync());
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/event-stream"),
    );
    resp
}

fn json(text: &'static str) -> Response<Body> {
    let mut resp = Response::new(
        Full::new(Bytes::from_static(text.as_bytes()))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}
