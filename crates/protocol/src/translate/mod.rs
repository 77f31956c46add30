//! Between protocols: a client's request written for a provider, the provider's answer and
//! stream written back for the client. When both sides speak the same protocol the body
//! passes through with only the model name changed; otherwise it goes through the canonical
//! form (`crate::canonical`), and what the target cannot express is refused by name.

pub(crate) mod read;

use crate::canonical::{ChatRequest, OutputFormat, Protocol, StreamEvent};
use crate::openai::{
    self, ChunkAction, ChunkRewriter, ClientResponse, Endpoint, RequestFacts, TokenUsage,
};
use crate::sse::{data_frame, SseFrame};
use crate::{anthropic, gemini, RawMap};
use bytes::Bytes;
use std::collections::VecDeque;

/// How an answer is labelled for the client: the public model, the provider that answered,
/// and the creation time OpenAI answers carry.
#[derive(Debug, Clone, Copy)]
pub struct Reply<'a> {
    pub model: &'a str,
    pub provider: &'a str,
    pub created: u64,
}

/// A client's request, as it arrived, ready to be written for any provider.
#[derive(Debug, Clone)]
pub struct Inbound<'a> {
    pub protocol: Protocol,
    /// The OpenAI endpoint; chat for the other protocols.
    pub endpoint: Endpoint,
    pub facts: RequestFacts,
    /// The body without gateway-only fields.
    pub body: RawMap<'a>,
}

impl<'a> Inbound<'a> {
    /// A Messages API body.
    pub fn anthropic(body: RawMap<'a>) -> Result<Self, String> {
        let model: String = body.get_as("model")?.ok_or("`model` is required")?;
        if body.get("messages").is_none() {
            return Err("`messages` is required".to_owned());
        }
        let max: u64 = body
            .get_as("max_tokens")?
            .ok_or("`max_tokens` is required")?;
        let stream = body.get_as::<bool>("stream")?.unwrap_or(false);
        Ok(Self {
            protocol: Protocol::Anthropic,
            endpoint: Endpoint::ChatCompletions,
            facts: RequestFacts {
                model,
                stream,
                wants_stream_usage: true,
                max_output_tokens: Some(max),
            },
            body,
        })
    }

    /// A `generateContent` body; the model and streaming come from the URL.
    pub fn gemini(model: &str, stream: bool, body: RawMap<'a>) -> Result<Self, String> {
        if body.get("contents").is_none() {
            return Err("`contents` is required".to_owned());
        }
        #[derive(serde::Deserialize)]
        struct Generation {
            #[serde(rename = "maxOutputTokens", alias = "max_output_tokens")]
            max: Option<u64>,
        }
        let max = match body.get_as::<Generation>("generationConfig")? {
            Some(g) => g.max,
            None => body
                .get_as::<Generation>("generation_config")?
                .and_then(|g| g.max),
        };
        Ok(Self {
            protocol: Protocol::Gemini,
            endpoint: Endpoint::ChatCompletions,
            facts: RequestFacts {
                model: model.to_owned(),
                stream,
                wants_stream_usage: true,
                max_output_tokens: max,
            },
            body,
        })
    }

    /// The request in canonical form, read for a `target` provider (named in errors).
    pub fn canonical(&self, target: Protocol) -> Result<ChatRequest, String> {
        let bytes = self.body.to_vec();
        let t = target.title();
        match self.protocol {
            Protocol::OpenAi => openai::convert::decode_request(&bytes, t),
            Protocol::Anthropic => anthropic::decode_request(&bytes, t),
            Protocol::Gemini => {
                gemini::decode_request(&bytes, &self.facts.model, self.facts.stream, t)
            }
        }
    }

    /// The body for a `target` provider serving `upstream_model`. `default_max_tokens` fills
    /// in Anthropic's required `max_tokens` when the client set none.
    pub fn body_for(
        &mut self,
        target: Protocol,
        upstream_model: &str,
        default_max_tokens: u64,
    ) -> Result<Outgoing, String> {
        if target == self.protocol {
            let body = match target {
                Protocol::OpenAi => openai::upstream_body(&self.body, &self.facts, upstream_model),
                Protocol::Anthropic => self
                    .body
                    .spliced(&[("model", crate::json::Splice::Str(upstream_model))]),
                Protocol::Gemini => self.body.spliced(&[]),
            };
            return Ok(Outgoing {
                body: Bytes::from(body),
                json_tool: false,
            });
        }
        self.translate(target, upstream_model, default_max_tokens)
    }

    /// The body for a provider of another protocol, through the canonical form.
    pub fn translate(
        &self,
        target: Protocol,
        upstream_model: &str,
        default_max_tokens: u64,
    ) -> Result<Outgoing, String> {
        if self.endpoint != Endpoint::ChatCompletions {
            return Err(format!(
                "{} can only be served by OpenAI-compatible providers",
                self.endpoint.name()
            ));
        }
        let mut req = self.canonical(target)?;
        req.stream = self.facts.stream;
        let json_tool = target == Protocol::Anthropic && req.output != OutputFormat::Text;
        let body = match target {
            Protocol::OpenAi => openai::convert::encode_request(&req, upstream_model)?,
            Protocol::Anthropic => {
                req.max_tokens.get_or_insert(default_max_tokens);
                anthropic::encode_request(&req, upstream_model)?
            }
            Protocol::Gemini => gemini::encode_request(&req)?,
        };
        Ok(Outgoing {
            body: Bytes::from(body),
            json_tool,
        })
    }
}

/// A request written for one provider.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub body: Bytes,
    /// JSON output was asked of an Anthropic provider through the forced JSON tool, so its
    /// answer's tool input is the text (see `anthropic`).
    pub json_tool: bool,
}

/// A provider's complete answer, written for the client. `None` when it is not a JSON object.
pub fn response(
    client: Protocol,
    upstream: Protocol,
    body: &[u8],
    reply: &Reply<'_>,
    json_tool: bool,
) -> Option<ClientResponse> {
    if client == upstream {
        return match client {
            Protocol::OpenAi => openai::client_response(body, reply.model, reply.provider),
            Protocol::Anthropic => pass_response(body, "model", reply.model, |b| {
                anthropic::decode_response(b, false)
            }),
            Protocol::Gemini => {
                pass_response(body, "modelVersion", reply.model, gemini::decode_response)
            }
        };
    }
    let canonical = match upstream {
        Protocol::OpenAi => openai::convert::decode_response(body),
        Protocol::Anthropic => anthropic::decode_response(body, json_tool),
        Protocol::Gemini => gemini::decode_response(body),
    }
    .ok()?;
    let out = match client {
        Protocol::OpenAi => openai::convert::encode_response(&canonical, reply),
        Protocol::Anthropic => anthropic::encode_response(&canonical, reply),
        Protocol::Gemini => gemini::encode_response(&canonical, reply),
    };
    Some(ClientResponse {
        body: out,
        usage: canonical.usage,
        generated_text: canonical.generated_text(),
    })
}

/// An Anthropic or Gemini answer passed through: only the public model is written (into
/// `model_key`); usage and generated text are read on the side.
fn pass_response(
    body: &[u8],
    model_key: &str,
    public_model: &str,
    decode: impl Fn(&[u8]) -> Result<crate::canonical::ChatResponse, String>,
) -> Option<ClientResponse> {
    let mut obj = crate::RawMap::borrowed(body).ok()?;
    let answer = decode(body).ok()?;
    if obj.contains(model_key) {
        obj.set(model_key, public_model);
    }
    Some(ClientResponse {
        body: obj.to_vec(),
        usage: answer.usage,
        generated_text: if answer.usage.is_none() {
            answer.generated_text()
        } else {
            String::new()
        },
    })
}

/// What one upstream frame came to.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StreamStep {
    pub usage: Option<TokenUsage>,
    /// Generated text, for a token count when no usage arrives.
    pub text: String,
    /// The answer is complete.
    pub done: bool,
    /// The provider reported an error mid-stream.
    pub error: Option<String>,
}

enum Decoder {
    OpenAi(openai::convert::StreamDecoder),
    Anthropic(anthropic::StreamDecoder),
    Gemini(gemini::StreamDecoder),
}

impl Decoder {
    fn frame(&mut self, frame: &SseFrame, out: &mut Vec<StreamEvent>) {
        match self {
            Decoder::OpenAi(d) => d.frame(frame, out),
            Decoder::Anthropic(d) => d.frame(frame, out),
            Decoder::Gemini(d) => d.frame(frame, out),
        }
    }

    fn finish(&mut self, usage_seen: bool, out: &mut Vec<StreamEvent>) {
        match self {
            Decoder::OpenAi(d) => d.finish(usage_seen, out),
            Decoder::Anthropic(d) => d.finish(usage_seen, out),
            Decoder::Gemini(d) => d.finish(usage_seen, out),
        }
    }
}

enum Encoder {
    OpenAi(openai::convert::StreamEncoder),
    Anthropic(anthropic::StreamEncoder),
    Gemini(gemini::StreamEncoder),
}

enum Mode {
    OpenAi(ChunkRewriter),
    Anthropic(anthropic::PassThrough),
    Gemini(gemini::PassThrough),
    Translate(Box<Translation>),
}

/// A stream read in one protocol and written in another, event by event.
struct Translation {
    decoder: Decoder,
    encoder: Encoder,
    /// The client's stream has had its end (or error).
    ended: bool,
    /// The answer ended normally.
    complete: bool,
}

/// A stream on its way from a provider to a client, one event at a time.
pub struct StreamRelay {
    client: Protocol,
    mode: Mode,
}

impl StreamRelay {
    pub fn new(
        client: Protocol,
        upstream: Protocol,
        reply: &Reply<'_>,
        wants_usage: bool,
        json_tool: bool,
    ) -> Self {
        let mode = if client == upstream {
            match client {
                Protocol::OpenAi => {
                    Mode::OpenAi(ChunkRewriter::new(reply.model, wants_usage, reply.provider))
                }
                Protocol::Anthropic => Mode::Anthropic(anthropic::PassThrough::new(reply.model)),
                Protocol::Gemini => Mode::Gemini(gemini::PassThrough::new(reply.model)),
            }
        } else {
            Mode::Translate(Box::new(Translation {
                decoder: match upstream {
                    Protocol::OpenAi => Decoder::OpenAi(Default::default()),
                    Protocol::Anthropic => {
                        Decoder::Anthropic(anthropic::StreamDecoder::new(json_tool))
                    }
                    Protocol::Gemini => Decoder::Gemini(Default::default()),
                },
                encoder: match client {
                    Protocol::OpenAi => {
                        Encoder::OpenAi(openai::convert::StreamEncoder::new(reply, wants_usage))
                    }
                    Protocol::Anthropic => Encoder::Anthropic(anthropic::StreamEncoder::new(reply)),
                    Protocol::Gemini => Encoder::Gemini(gemini::StreamEncoder::new(reply)),
                },
                ended: false,
                complete: false,
            }))
        };
        Self { client, mode }
    }

    /// One upstream frame: what to send the client goes to `out`.
    pub fn frame(&mut self, frame: &SseFrame, out: &mut VecDeque<Bytes>) -> StreamStep {
        match &mut self.mode {
            Mode::OpenAi(r) => {
                let (action, usage, text) = r.rewrite(frame);
                let mut step = StreamStep {
                    usage,
                    text,
                    ..StreamStep::default()
                };
                match action {
                    ChunkAction::Forward(b) => out.push_back(b),
                    ChunkAction::Drop => {}
                    ChunkAction::Done(b) => {
                        out.push_back(b);
                        step.done = true;
                    }
                }
                step
            }
            Mode::Anthropic(p) => seen(p.frame(frame), out),
            Mode::Gemini(p) => seen(p.frame(frame), out),
            Mode::Translate(t) => {
                let mut events = Vec::new();
                t.decoder.frame(frame, &mut events);
                t.encode(self.client, &events, out)
            }
        }
    }

    /// The upstream closed. Returns whether the answer was complete; when it was, the
    /// protocol's closing events are in `out`.
    pub fn ended(&mut self, usage_seen: bool, out: &mut VecDeque<Bytes>) -> bool {
        match &mut self.mode {
            Mode::OpenAi(_) => {
                if usage_seen {
                    out.push_back(data_frame(b"[DONE]"));
                }
                usage_seen
            }
            Mode::Anthropic(_) => false,
            // Usage comes with every Gemini chunk: only a finish reason shows the end.
            Mode::Gemini(p) => p.finished,
            Mode::Translate(t) => {
                let mut events = Vec::new();
                t.decoder.finish(usage_seen, &mut events);
                t.encode(self.client, &events, out);
                t.complete
            }
        }
    }

    /// The client's error event for a failure mid-stream.
    pub fn error(&self, message: &str, status: u16, kind: &str, code: &str) -> Vec<Bytes> {
        error_frames(self.client, message, status, kind, code)
    }
}

/// A mid-stream failure as a client of `client`'s protocol reads it: OpenAI's error chunk and
/// `[DONE]`, Anthropic's `error` event, Gemini's error object.
fn error_frames(
    client: Protocol,
    message: &str,
    status: u16,
    kind: &str,
    code: &str,
) -> Vec<Bytes> {
    match client {
        Protocol::OpenAi => vec![
            data_frame(&openai::error_body(message, kind, code)),
            data_frame(b"[DONE]"),
        ],
        Protocol::Anthropic => vec![anthropic::error_event(message, status)],
        Protocol::Gemini => vec![data_frame(&gemini::error_body(message, status))],
    }
}

fn seen(s: anthropic::Seen, out: &mut VecDeque<Bytes>) -> StreamStep {
    out.push_back(s.frame);
    StreamStep {
        usage: s.usage,
        text: s.text,
        done: s.done,
        error: s.error,
    }
}

impl Translation {
    /// Writes decoded events for the client; what they came to for the meter.
    fn encode(
        &mut self,
        client: Protocol,
        events: &[StreamEvent],
        out: &mut VecDeque<Bytes>,
    ) -> StreamStep {
        let mut step = StreamStep::default();
        let mut frames = Vec::new();
        for e in events {
            if self.ended {
                break;
            }
            match e {
                StreamEvent::Usage(u) => step.usage = Some(*u),
                StreamEvent::Text(t) => step.text.push_str(t),
                StreamEvent::ToolCallStart { name, .. } => step.text.push_str(name),
                StreamEvent::ToolCallArgs { fragment, .. } => step.text.push_str(fragment),
                StreamEvent::End => {
                    step.done = true;
                    self.ended = true;
                    self.complete = true;
                }
                StreamEvent::Error(m) => {
                    frames.extend(error_frames(
                        client,
                        m,
                        502,
                        "upstream_error",
                        "upstream_error",
                    ));
                    step.error = Some(m.clone());
                    self.ended = true;
                }
                _ => {}
            }
            match &mut self.encoder {
                Encoder::OpenAi(enc) => enc.event(e, &mut frames),
                Encoder::Anthropic(enc) => enc.event(e, &mut frames),
                Encoder::Gemini(enc) => enc.event(e, &mut frames),
            }
        }
        out.extend(frames);
        step
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPLY: Reply<'static> = Reply {
        model: "m",
        provider: "p",
        created: 0,
    };

    fn feed(relay: &mut StreamRelay, text: &str) -> bool {
        let mut d = crate::sse::SseDecoder::new();
        let mut out = VecDeque::new();
        let mut usage = false;
        for f in d.push(text.as_bytes()).unwrap() {
            usage |= relay.frame(&f, &mut out).usage.is_some();
        }
        relay.ended(usage, &mut out)
    }

    #[test]
    fn a_gemini_stream_that_stops_before_its_finish_reason_is_incomplete() {
        let chunk = r#"data: {"candidates":[{"content":{"parts":[{"text":"Hel"}]}}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":1}}

"#;
        for client in [Protocol::Gemini, Protocol::OpenAi, Protocol::Anthropic] {
            let mut relay = StreamRelay::new(client, Protocol::Gemini, &REPLY, true, false);
            assert!(!feed(&mut relay, chunk), "{client:?}");
        }
        let done = format!(
            "{chunk}{}",
            r#"data: {"candidates":[{"content":{"parts":[{"text":"lo"}]},"finishReason":"STOP"}]}

"#
        );
        for client in [Protocol::Gemini, Protocol::OpenAi, Protocol::Anthropic] {
            let mut relay = StreamRelay::new(client, Protocol::Gemini, &REPLY, true, false);
            assert!(feed(&mut relay, &done), "{client:?}");
        }
    }

    #[test]
    fn an_anthropic_stream_without_message_stop_is_incomplete() {
        let s = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":3}}}\n\n";
        for client in [Protocol::Anthropic, Protocol::OpenAi, Protocol::Gemini] {
            let mut relay = StreamRelay::new(client, Protocol::Anthropic, &REPLY, true, false);
            assert!(!feed(&mut relay, s), "{client:?}");
        }
    }
}
