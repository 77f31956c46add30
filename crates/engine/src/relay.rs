//! The relay: one `/v1` request from checked body to upstream and back. Non-streaming answers
//! are read (bounded) and rewritten; streams are relayed event by event as they arrive, with
//! usage captured on the side. Every path settles the request's `Meter` exactly once.

use crate::auth::Authenticated;
use crate::billing::{Finish, Meter};
use crate::Engine;
use bytes::{Bytes, BytesMut};
use domain::catalog::ModelKind;
use domain::{ApiError, ErrorCode, RateDecision, UsageStatus};
use futures_util::{Stream, StreamExt};
use protocol::openai::{
    self, ChunkAction, ChunkRewriter, Endpoint, RequestFacts, UpstreamErrorBody,
};
use protocol::sse::{data_frame, SseDecoder};
use protocol::RawObject;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use upstream::{BodyStream, Upstream, UpstreamError, UpstreamRequest, UpstreamResponse};

/// Upstream error bodies are read up to this size; the rest is not needed for a message.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// A relayed answer, ready for the HTTP layer.
pub enum Relayed {
    Complete {
        body: Vec<u8>,
        provider: String,
        rate: Option<RateDecision>,
    },
    Stream {
        events: Box<RelayStream>,
        provider: String,
        rate: Option<RateDecision>,
    },
}

/// A request checked and bound to a deployment.
struct Prepared {
    facts: RequestFacts,
    provider: String,
    upstream: Arc<dyn Upstream>,
    body: Bytes,
}

impl Engine {
    /// Relays one OpenAI-protocol request for an authenticated caller.
    pub async fn relay(
        &self,
        auth: &Authenticated,
        endpoint: Endpoint,
        body: &[u8],
        request_id: &str,
    ) -> Result<Relayed, ApiError> {
        let mut meter = Meter::start(self.usage.clone(), auth, endpoint.name(), request_id);
        let prepared = match self.prepare(auth, endpoint, body, &mut meter).await {
            Ok(p) => p,
            Err(e) => return Err(fail(meter, e)),
        };
        let response = match call(&prepared, endpoint).await {
            Ok(r) => r,
            Err(e) => return Err(fail(meter, e)),
        };
        let Prepared {
            facts, provider, ..
        } = prepared;
        if facts.stream {
            let is_sse = response
                .content_type
                .as_deref()
                .is_some_and(|t| t.starts_with("text/event-stream"));
            if !is_sse {
                let e = ApiError::new(
                    ErrorCode::UpstreamError,
                    format!("provider `{provider}` answered a streaming request without an event stream"),
                );
                return Err(fail(meter, e));
            }
            let rewriter = ChunkRewriter::new(&facts.model, facts.wants_stream_usage);
            let rate = meter.rate();
            return Ok(Relayed::Stream {
                rate,
                events: Box::new(RelayStream::new(response.body, rewriter, meter)),
                provider,
            });
        }
        let raw = match read_body(response.body, self.settings.max_response_bytes).await {
            Ok(b) => b,
            Err(e) => return Err(fail(meter, from_upstream(&provider, e))),
        };
        let Some(answer) = openai::client_response(&raw, &facts.model) else {
            let e = ApiError::new(
                ErrorCode::UpstreamError,
                format!("provider `{provider}` answered with a body that is not a JSON object"),
            );
            return Err(fail(meter, e));
        };
        if let Some(usage) = answer.usage {
            meter.observe_usage(usage);
        }
        meter.observe_output(&answer.generated_text);
        let rate = meter.rate();
        meter.finish(Finish::ok());
        Ok(Relayed::Complete {
            body: answer.body,
            provider,
            rate,
        })
    }

    async fn prepare(
        &self,
        auth: &Authenticated,
        endpoint: Endpoint,
        body: &[u8],
        meter: &mut Meter,
    ) -> Result<Prepared, ApiError> {
        let invalid = |m: String| ApiError::new(ErrorCode::InvalidBody, m);
        let mut obj = RawObject::parse(body).map_err(|e| invalid(e.to_string()))?;
        let facts = RequestFacts::read(endpoint, &obj).map_err(invalid)?;
        meter.set_request(&facts.model, facts.stream);
        let model = self.model_for(auth, &facts.model)?;
        let embeds = matches!(model.kind, ModelKind::Embedding);
        if embeds != (endpoint == Endpoint::Embeddings) {
            let want = if embeds {
                "/v1/embeddings"
            } else {
                "/v1/chat/completions or /v1/completions"
            };
            return Err(invalid(format!(
                "the model `{}` cannot serve {}; use {want}",
                model.name,
                endpoint.name()
            )));
        }
        let unavailable = || {
            ApiError::new(
                ErrorCode::UpstreamUnavailable,
                format!("no deployment of `{}` is available", model.name),
            )
        };
        let deployment = model.deployments.first().ok_or_else(unavailable)?;
        let upstream = self
            .upstreams
            .get(&deployment.provider)
            .ok_or_else(unavailable)?;
        let prompt_bytes = u64::try_from(body.len()).unwrap_or(u64::MAX);
        let price = model.price_for(deployment);
        meter.set_deployment(&deployment.provider.0, &deployment.upstream_model, price);
        // The worst case: every body byte a prompt token (a BPE token covers at least one
        // byte, and the JSON around each message outweighs the chat template), and the
        // most output the request allows.
        let max_output = match endpoint {
            Endpoint::Embeddings => 0,
            _ => facts
                .max_output_tokens
                .unwrap_or(u64::from(model.max_output_tokens)),
        };
        let worst = price.cost(prompt_bytes, 0, max_output);
        let plan = self.plan_of(&auth.account().plan)?;
        meter.admitted(self.admit(auth, &plan, worst).await?);
        let body = Bytes::from(openai::upstream_body(
            &mut obj,
            &facts,
            &deployment.upstream_model,
        ));
        meter.set_prompt(body.clone());
        Ok(Prepared {
            facts,
            provider: deployment.provider.0.clone(),
            upstream: upstream.clone(),
            body,
        })
    }
}

fn fail(meter: Meter, mut e: ApiError) -> ApiError {
    if e.rate.is_none() {
        e.rate = meter.rate();
    }
    meter.finish(Finish::failed(&e));
    e
}

/// Sends the request; a non-2xx answer becomes the matching client error.
async fn call(p: &Prepared, endpoint: Endpoint) -> Result<UpstreamResponse, ApiError> {
    let req = UpstreamRequest {
        endpoint,
        body: p.body.clone(),
        stream: p.facts.stream,
    };
    let resp = p
        .upstream
        .send(req)
        .await
        .map_err(|e| from_upstream(&p.provider, e))?;
    if (200..300).contains(&resp.status) {
        return Ok(resp);
    }
    Err(rejected(&p.provider, resp).await)
}

/// Maps a transport failure to the client's error.
fn from_upstream(provider: &str, e: UpstreamError) -> ApiError {
    let code = match e {
        UpstreamError::Timeout(_) | UpstreamError::Idle(_) => ErrorCode::UpstreamTimeout,
        UpstreamError::Connect(_) | UpstreamError::Transport(_) => ErrorCode::UpstreamError,
    };
    ApiError::new(code, format!("provider `{provider}`: {e}"))
}

/// Maps an upstream's error answer. Client errors keep their status, message and code; the
/// upstream refusing the gateway's own credentials is the gateway's problem, not the client's.
async fn rejected(provider: &str, resp: UpstreamResponse) -> ApiError {
    let status = resp.status;
    let retry_after = resp.retry_after;
    let body = read_body(resp.body, MAX_ERROR_BODY)
        .await
        .unwrap_or_default();
    let parsed = UpstreamErrorBody::parse(&body);
    let detail = parsed
        .as_ref()
        .map(|p| p.message.clone())
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| format!("HTTP {status}"));
    let mut e = match status {
        401 | 403 | 407 => ApiError::new(
            ErrorCode::UpstreamError,
            format!("provider `{provider}` refused the gateway's credentials (HTTP {status})"),
        ),
        429 => ApiError::new(
            ErrorCode::RateLimitExceeded,
            format!("provider `{provider}` is rate limiting: {detail}"),
        ),
        400..=499 => {
            let mut e = ApiError::new(ErrorCode::UpstreamRejected(status), detail);
            e.upstream_code = parsed.and_then(|p| p.code);
            e
        }
        503 => ApiError::new(
            ErrorCode::UpstreamUnavailable,
            format!("provider `{provider}` is unavailable: {detail}"),
        ),
        504 => ApiError::new(
            ErrorCode::UpstreamTimeout,
            format!("provider `{provider}` timed out: {detail}"),
        ),
        _ => ApiError::new(
            ErrorCode::UpstreamError,
            format!("provider `{provider}` failed (HTTP {status}): {detail}"),
        ),
    };
    e.retry_after = retry_after;
    e
}

/// Reads a whole body, failing past `limit` bytes.
async fn read_body(mut body: BodyStream, limit: usize) -> Result<Vec<u8>, UpstreamError> {
    let mut out = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        if out.len() + chunk.len() > limit {
            return Err(UpstreamError::Transport(format!(
                "answer larger than {limit} bytes"
            )));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.to_vec())
}

/// A stream being relayed to the client. Dropping it (the client went away) drops the
/// upstream body, which cancels the upstream request, and settles the meter as partial.
pub struct RelayStream {
    upstream: BodyStream,
    decoder: SseDecoder,
    rewriter: ChunkRewriter,
    pending: VecDeque<Bytes>,
    meter: Option<Meter>,
}

impl RelayStream {
    fn new(upstream: BodyStream, rewriter: ChunkRewriter, meter: Meter) -> Self {
        Self {
            upstream,
            decoder: SseDecoder::new(),
            rewriter,
            pending: VecDeque::new(),
            meter: Some(meter),
        }
    }

    fn take_frames(&mut self, frames: Vec<protocol::sse::SseFrame>) {
        for frame in frames {
            if self.meter.is_none() {
                return;
            }
            let (action, usage, text) = self.rewriter.rewrite(&frame);
            if let Some(m) = &mut self.meter {
                if let Some(u) = usage {
                    m.observe_usage(u);
                }
                m.observe_output(&text);
            }
            match action {
                ChunkAction::Forward(b) => self.pending.push_back(b),
                ChunkAction::Drop => {}
                ChunkAction::Done(b) => {
                    self.pending.push_back(b);
                    self.settle(Finish::ok());
                }
            }
        }
    }

    /// Ends the stream with an OpenAI-shaped error event and `[DONE]`, billing what was seen.
    fn fail(&mut self, code: ErrorCode, message: &str) {
        let body = openai::error_body(message, code.kind(), code.as_str());
        self.pending.push_back(data_frame(&body));
        self.pending.push_back(data_frame(b"[DONE]"));
        self.settle(Finish {
            status: UsageStatus::Partial,
            http_status: 200,
            error_code: Some(code.as_str().to_owned()),
        });
    }

    fn settle(&mut self, finish: Finish) {
        if let Some(m) = self.meter.take() {
            m.finish(finish);
        }
    }

    /// The upstream ended without `[DONE]`: complete if it delivered usage, else cut short.
    fn upstream_ended(&mut self) {
        if let Some(frame) = self.decoder.finish() {
            self.take_frames(vec![frame]);
        }
        let Some(meter) = &self.meter else { return };
        if meter.usage_seen() {
            self.pending.push_back(data_frame(b"[DONE]"));
            self.settle(Finish::ok());
        } else {
            self.fail(
                ErrorCode::UpstreamError,
                "the provider ended the stream early",
            );
        }
    }
}

impl Stream for RelayStream {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(bytes) = this.pending.pop_front() {
                return Poll::Ready(Some(Ok(bytes)));
            }
            if this.meter.is_none() {
                return Poll::Ready(None);
            }
            match this.upstream.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => match this.decoder.push(&chunk) {
                    Ok(frames) => this.take_frames(frames),
                    Err(e) => this.fail(ErrorCode::UpstreamError, &e.to_string()),
                },
                Poll::Ready(Some(Err(e))) => {
                    let code = match e {
                        UpstreamError::Idle(_) | UpstreamError::Timeout(_) => {
                            ErrorCode::UpstreamTimeout
                        }
                        _ => ErrorCode::UpstreamError,
                    };
                    this.fail(code, &format!("the provider's stream failed: {e}"));
                }
                Poll::Ready(None) => this.upstream_ended(),
            }
        }
    }
}
