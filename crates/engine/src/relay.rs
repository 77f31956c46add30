//! The relay: one model request, in any of the three ingress protocols, from checked body to
//! upstream and back. The request is parsed once, its model chain resolved (primary, `models`
//! fallbacks or `auto`), deployments that cannot be told the request in their protocol left
//! out, credit reserved for the dearest candidate, and the route plan walked by `dispatch`.
//! Non-streaming answers are read (bounded) and rewritten for the client's protocol; streams
//! are relayed event by event as they arrive, with usage captured on the side. Every path
//! settles the request's `Meter` once.

use crate::auth::Authenticated;
use crate::billing::{Finish, Meter};
use crate::dispatch::{dispatch, AnswerBody, Outbound};
use crate::routing::{Candidate, Lease};
use crate::Engine;
use bytes::{Bytes, BytesMut};
use domain::catalog::ModelKind;
use domain::{ApiError, ErrorCode, PublicModel, RateDecision, UsageStatus};
use futures_util::{Stream, StreamExt};
use protocol::openai::{
    self, Endpoint, RequestFacts, RequestNeeds, RouteExtensions, UpstreamErrorBody,
};
use protocol::sse::SseDecoder;
use protocol::translate::{Inbound, Reply, StreamRelay};
use protocol::{Protocol, RawMap};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use upstream::{BodyStream, UpstreamError, UpstreamResponse};

/// Upstream error bodies are read up to this size; the rest is not needed for a message.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// After a stream's last event, how long the upstream's body may take to end (its chunked
/// terminator usually follows in the same packet) so that its connection goes back to the
/// pool; past it, or past `END_CHUNKS` more chunks, the body is dropped and the connection
/// closed. The client has its last event already; only the end of its response waits.
const END_GRACE: std::time::Duration = std::time::Duration::from_millis(200);
const END_CHUNKS: u32 = 16;

/// A relayed answer, ready for the HTTP layer. `provider` names the provider that answered
/// (for `X-Switchyard-Provider`).
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

/// What a client called: an OpenAI endpoint, Anthropic's Messages API, or Gemini's
/// `generateContent` (whose model and streaming are in the URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ingress {
    OpenAi(Endpoint),
    Anthropic,
    Gemini { model: String, stream: bool },
}

impl Ingress {
    /// The endpoint name usage events record.
    pub fn name(&self) -> &'static str {
        match self {
            Ingress::OpenAi(e) => e.name(),
            Ingress::Anthropic => "messages",
            Ingress::Gemini { .. } => "generate_content",
        }
    }

    pub fn protocol(&self) -> Protocol {
        match self {
            Ingress::OpenAi(_) => Protocol::OpenAi,
            Ingress::Anthropic => Protocol::Anthropic,
            Ingress::Gemini { .. } => Protocol::Gemini,
        }
    }
}

/// A request checked, admitted and planned.
struct Prepared<'a> {
    inbound: Inbound<'a>,
    candidates: Vec<Candidate>,
}

/// Seconds since the epoch, for the `created` of translated OpenAI answers.
pub(crate) fn now_secs() -> u64 {
    domain::time::wall_clock().as_secs()
}

impl Engine {
    /// Relays one model request for an authenticated caller.
    pub async fn relay(
        &self,
        auth: &Authenticated,
        ingress: Ingress,
        body: &[u8],
        request_id: &str,
    ) -> Result<Relayed, ApiError> {
        // Refused before anything is recorded: recording is what cannot keep up.
        self.usage.room().await?;
        let mut meter = Meter::start(self.usage.clone(), auth, ingress.name(), request_id);
        let mut prepared = match self.prepare(auth, ingress, body, &mut meter).await {
            Ok(p) => p,
            Err(e) => return Err(fail(meter, e)),
        };
        let out = Outbound {
            inbound: &mut prepared.inbound,
            max_response_bytes: self.settings.max_response_bytes,
        };
        let answer = match dispatch(&self.router, &prepared.candidates, out, &mut meter).await {
            Ok(a) => a,
            Err(e) => return Err(fail(meter, e)),
        };
        let provider = answer.candidate.provider.id.0.clone();
        let rate = meter.rate();
        match answer.body {
            AnswerBody::Stream { first, rest } => {
                let inbound = &prepared.inbound;
                let upstream = answer.candidate.provider.upstream.protocol();
                let relay = StreamRelay::new(
                    inbound.protocol,
                    upstream,
                    &Reply {
                        model: &answer.candidate.model.name,
                        provider: &provider,
                        created: now_secs(),
                    },
                    inbound.facts.wants_stream_usage,
                    answer.json_tool,
                );
                let mut events = RelayStream::new(rest, relay, meter, answer.lease);
                events.take_chunk(&first);
                Ok(Relayed::Stream {
                    rate,
                    events: Box::new(events),
                    provider,
                })
            }
            AnswerBody::Json(answer) => {
                if let Some(usage) = answer.usage {
                    meter.observe_usage(usage);
                }
                meter.observe_output(&answer.generated_text);
                meter.finish(Finish::ok());
                Ok(Relayed::Complete {
                    body: answer.body,
                    provider,
                    rate,
                })
            }
        }
    }

    async fn prepare<'b>(
        &self,
        auth: &Authenticated,
        ingress: Ingress,
        body: &'b [u8],
        meter: &mut Meter,
    ) -> Result<Prepared<'b>, ApiError> {
        let invalid = |m: String| ApiError::new(ErrorCode::InvalidBody, m);
        let mut obj = RawMap::borrowed(body).map_err(|e| invalid(e.to_string()))?;
        let (inbound, ext) = match ingress {
            Ingress::OpenAi(endpoint) => {
                let (ext, primary) = RouteExtensions::take(&mut obj).map_err(invalid)?;
                if let Some(p) = primary {
                    obj.set_str("model", &p);
                }
                let facts = RequestFacts::read(endpoint, &obj).map_err(invalid)?;
                let inbound = Inbound {
                    protocol: Protocol::OpenAi,
                    endpoint,
                    facts,
                    body: obj,
                };
                (inbound, ext)
            }
            Ingress::Anthropic => (
                Inbound::anthropic(obj).map_err(invalid)?,
                RouteExtensions::default(),
            ),
            Ingress::Gemini { model, stream } => (
                Inbound::gemini(&model, stream, obj).map_err(invalid)?,
                RouteExtensions::default(),
            ),
        };
        let facts = &inbound.facts;
        let endpoint = inbound.endpoint;
        meter.set_request(&facts.model, facts.stream);
        let chain = self.chain(auth, &inbound, &ext)?;
        let mut candidates = self.router.plan(&chain, &ext.provider);
        if candidates.is_empty() {
            return Err(invalid(format!(
                "no deployment of `{}` matches the request's `provider` preferences",
                facts.model
            )));
        }
        // Deployments whose protocol cannot express the request are left out; when none is
        // left, the client learns what could not be expressed.
        let mut verdicts: Vec<(Protocol, Result<(), String>)> = Vec::new();
        candidates.retain(|c| {
            let target = c.provider.upstream.protocol();
            if target == inbound.protocol {
                return true;
            }
            if let Some((_, v)) = verdicts.iter().find(|(p, _)| *p == target) {
                return v.is_ok();
            }
            let v = inbound
                .translate(target, &c.deployment().upstream_model, 1)
                .map(|_| ());
            let ok = v.is_ok();
            verdicts.push((target, v));
            ok
        });
        if candidates.is_empty() {
            let why = verdicts
                .into_iter()
                .find_map(|(_, v)| v.err())
                .unwrap_or_else(|| "no deployment can serve this request".to_owned());
            return Err(invalid(why));
        }
        // The worst case, reserved before any try: every body byte a prompt token (a BPE
        // token covers at least one byte, and the JSON around each message outweighs the
        // chat template), the most output the request allows, at the dearest candidate.
        let prompt_bytes = u64::try_from(body.len()).unwrap_or(u64::MAX);
        let worst = candidates
            .iter()
            .map(|c| {
                let max_output = match endpoint {
                    Endpoint::Embeddings => 0,
                    _ => facts
                        .max_output_tokens
                        .unwrap_or(u64::from(c.model.max_output_tokens)),
                };
                c.model
                    .price_for(c.deployment())
                    .cost(prompt_bytes, 0, max_output)
            })
            .max()
            .unwrap_or_default();
        let plan = self.plan_of(&auth.account().plan)?;
        meter.admitted(self.admit(auth, &plan, worst).await?);
        Ok(Prepared {
            inbound,
            candidates,
        })
    }

    /// The models to try, in order: `auto`'s choice, or the named model then the `models`
    /// fallbacks. Each must exist, be allowed to this key and serve this endpoint.
    fn chain(
        &self,
        auth: &Authenticated,
        inbound: &Inbound,
        ext: &RouteExtensions,
    ) -> Result<Vec<Arc<PublicModel>>, ApiError> {
        let invalid = |m: String| ApiError::new(ErrorCode::InvalidBody, m);
        let (endpoint, facts, body) = (inbound.endpoint, &inbound.facts, &inbound.body);
        let auto = &self.router.settings.auto;
        let mut chain = if auto.is_alias(&facts.model) {
            if endpoint == Endpoint::Embeddings {
                return Err(invalid(format!(
                    "`{}` chooses among chat models; name an embedding model",
                    facts.model
                )));
            }
            let prompt = crate::tokens::count_blocking(&openai::prompt_text(&body.to_vec()));
            let tokens = prompt + facts.max_output_tokens.unwrap_or(0);
            let needs = match inbound.protocol {
                Protocol::OpenAi => RequestNeeds::read(body),
                other => inbound
                    .canonical(other)
                    .map(|c| RequestNeeds::of(&c))
                    .unwrap_or_default(),
            };
            auto.choose(self.models_for(auth), needs, tokens)
                .map_err(invalid)?
        } else {
            vec![self.model_for(auth, &facts.model)?]
        };
        for name in &ext.fallbacks {
            if !chain.iter().any(|m| &m.name == name) {
                chain.push(self.model_for(auth, name)?);
            }
        }
        for model in &chain {
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
        }
        Ok(chain)
    }
}

impl Engine {
    /// Anthropic's `count_tokens` and Gemini's `countTokens`: the prompt's tokens, counted
    /// locally with the gateway's tokenizer (an estimate for models with other tokenizers).
    /// `model` must exist and be allowed to the key; nothing is billed.
    pub fn count_tokens(
        &self,
        auth: &Authenticated,
        model: &str,
        body: &[u8],
    ) -> Result<u64, ApiError> {
        self.model_for(auth, model)?;
        Ok(crate::tokens::count_blocking(&openai::prompt_text(body)))
    }
}

fn partial(code: ErrorCode) -> Finish {
    Finish {
        status: UsageStatus::Partial,
        http_status: 200,
        error_code: Some(code.as_str().to_owned()),
    }
}

fn fail(meter: Meter, mut e: ApiError) -> ApiError {
    if e.rate.is_none() {
        e.rate = meter.rate();
    }
    meter.finish(Finish::failed(&e));
    e
}

/// Maps an upstream's error answer. Client errors keep their status, message and code; the
/// upstream refusing the gateway's own credentials is the gateway's problem, not the client's.
pub(crate) async fn rejected(provider: &str, resp: UpstreamResponse) -> ApiError {
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
pub(crate) async fn read_body(
    mut body: BodyStream,
    limit: usize,
) -> Result<Vec<u8>, UpstreamError> {
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
/// upstream body, which cancels the upstream request, settles the meter as partial, and
/// gives back the deployment's concurrency slot.
pub struct RelayStream {
    upstream: BodyStream,
    decoder: SseDecoder,
    relay: StreamRelay,
    pending: VecDeque<Bytes>,
    meter: Option<Meter>,
    lease: Lease,
    /// Reading the upstream body to its end after the protocol's last event.
    ending: Option<Ending>,
}

struct Ending {
    grace: Pin<Box<tokio::time::Sleep>>,
    chunks: u32,
}

impl RelayStream {
    fn new(upstream: BodyStream, relay: StreamRelay, meter: Meter, lease: Lease) -> Self {
        Self {
            upstream,
            decoder: SseDecoder::new(),
            relay,
            pending: VecDeque::new(),
            meter: Some(meter),
            lease,
            ending: None,
        }
    }

    /// Feeds one chunk of the upstream body.
    fn take_chunk(&mut self, chunk: &[u8]) {
        match self.decoder.push(chunk) {
            Ok(frames) => self.take_frames(frames),
            Err(e) => self.fail(ErrorCode::UpstreamError, &e.to_string()),
        }
    }

    fn take_frames(&mut self, frames: Vec<protocol::sse::SseFrame>) {
        for frame in frames {
            if self.meter.is_none() {
                return;
            }
            let step = self.relay.frame(&frame, &mut self.pending);
            if let Some(m) = &mut self.meter {
                if let Some(u) = step.usage {
                    m.observe_usage(u);
                }
                m.observe_output(&step.text);
            }
            if let Some(message) = step.error {
                // The provider's own error event, already written for the client.
                self.lease.failed_midway(&message);
                self.settle(partial(ErrorCode::UpstreamError));
            } else if step.done {
                self.settle(Finish::ok());
                self.ending = Some(Ending {
                    grace: Box::pin(tokio::time::sleep(END_GRACE)),
                    chunks: 0,
                });
            }
        }
    }

    /// Ends the stream with the client protocol's error event, billing what was seen.
    fn fail(&mut self, code: ErrorCode, message: &str) {
        self.lease.failed_midway(message);
        let frames = self
            .relay
            .error(message, code.status(), code.kind(), code.as_str());
        self.pending.extend(frames);
        self.settle(partial(code));
    }

    fn settle(&mut self, finish: Finish) {
        if let Some(m) = self.meter.take() {
            m.finish(finish);
        }
    }

    /// The upstream closed before the protocol's end: complete if the protocol allows it
    /// (Gemini's stream simply ends; an OpenAI stream that delivered usage), else cut short.
    fn upstream_ended(&mut self) {
        if let Some(frame) = self.decoder.finish() {
            self.take_frames(vec![frame]);
        }
        let Some(meter) = &self.meter else { return };
        if self.relay.ended(meter.usage_seen(), &mut self.pending) {
            self.settle(Finish::ok());
        } else {
            self.fail(
                ErrorCode::UpstreamError,
                "the provider ended the stream early",
            );
        }
    }

    /// The client's stream is complete. After a clean last event, wait (briefly) for the
    /// upstream body's end, which is what lets its connection carry another request; after
    /// a failure, end at once.
    fn poll_end(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Infallible>>> {
        let Some(ending) = &mut self.ending else {
            return Poll::Ready(None);
        };
        loop {
            match self.upstream.as_mut().poll_next(cx) {
                // Nothing after the last event is relayed.
                Poll::Ready(Some(Ok(_))) if ending.chunks < END_CHUNKS => ending.chunks += 1,
                Poll::Pending => {
                    if ending.grace.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    break;
                }
                _ => break,
            }
        }
        self.ending = None;
        Poll::Ready(None)
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
                return this.poll_end(cx);
            }
            match this.upstream.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => this.take_chunk(&chunk),
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
