//! The Anthropic Messages API: errors, and requests, answers and event streams ↔ the
//! canonical form.
//!
//! JSON output has no request field in the Messages API, so JSON mode is expressed the way
//! Anthropic's own guide does it: one tool whose input schema is the wanted schema, forced by
//! `tool_choice`; the call's input comes back to the client as the answer's text.

use crate::canonical::*;
use crate::openai::TokenUsage;
use crate::sse::{named_frame, SseFrame};
use crate::translate::read::{
    arguments_object, body, cannot, obj, put, role_name, strings, tool_json, Obj,
};
use crate::translate::Reply;
use bytes::Bytes;
use serde_json::{json, Map, Value};

/// The API version sent to Anthropic providers.
pub const API_VERSION: &str = "2023-06-01";
/// The tool that carries JSON output (see the module comment).
pub const JSON_TOOL: &str = "json_response";
const T: &str = "Anthropic";

/// Anthropic's error `type` for an HTTP status.
pub fn error_type(status: u16) -> &'static str {
    match status {
        400 | 405 | 409 | 415 | 422 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        504 => "timeout_error",
        _ => "api_error",
    }
}

/// `{"type":"error","error":{"type","message"}}`.
pub fn error_body(message: &str, status: u16) -> Vec<u8> {
    let v = json!({"type": "error", "error": {"type": error_type(status), "message": message}});
    serde_json::to_vec(&v).unwrap_or_default()
}

/// An `error` event, as a stream reports a failure after it started.
pub fn error_event(message: &str, status: u16) -> Bytes {
    named_frame("error", &error_body(message, status))
}

const REQUEST_FIELDS: &[&str] = &[
    "model",
    "max_tokens",
    "messages",
    "system",
    "stop_sequences",
    "temperature",
    "top_p",
    "top_k",
    "metadata",
    "stream",
    "tools",
    "tool_choice",
];

/// `cache_control` is a caching hint for Anthropic's servers; it does not change the answer,
/// so it is accepted (and has nothing to become) on every block.
const HINTS: &str = "cache_control";

pub fn decode_request(bytes: &[u8], target: &str) -> Result<ChatRequest, String> {
    let v = body(bytes)?;
    let o = obj(&v, "")?;
    o.only(REQUEST_FIELDS, target)?;
    let mut req = ChatRequest {
        model: o.req_str("model")?.to_owned(),
        max_tokens: o.u64("max_tokens")?,
        temperature: o.f64("temperature")?,
        top_p: o.f64("top_p")?,
        top_k: o.u64("top_k")?,
        stop: strings(o.get("stop_sequences"), "stop_sequences")?,
        stream: o.bool("stream")?.unwrap_or(false),
        ..ChatRequest::default()
    };
    if let Some(m) = o.child("metadata")? {
        m.only(&["user_id"], target)?;
        req.user = m.str("user_id")?.map(str::to_owned);
    }
    match o.get("system") {
        None => {}
        Some(Value::String(s)) => req.system.push(s.clone()),
        Some(Value::Array(blocks)) => {
            for (i, b) in blocks.iter().enumerate() {
                let b = obj(b, &format!("system[{i}]"))?;
                b.only(&["type", "text", HINTS], target)?;
                req.system.push(b.req_str("text")?.to_owned());
            }
        }
        Some(_) => return Err("`system` must be a string or an array of blocks".to_owned()),
    }
    for (i, t) in o.arr("tools")?.iter().enumerate() {
        let t = obj(t, &format!("tools[{i}]"))?;
        if let Some(kind) = t.str("type")?.filter(|k| *k != "custom") {
            return Err(cannot(
                &format!("the server tool `{kind}` ({})", t.path),
                target,
            ));
        }
        t.only(
            &["type", "name", "description", "input_schema", HINTS],
            target,
        )?;
        req.tools.push(ToolDef {
            name: t.req_str("name")?.to_owned(),
            description: t.str("description")?.map(str::to_owned),
            parameters: t
                .get("input_schema")
                .cloned()
                .ok_or_else(|| format!("`{}` is required", t.at("input_schema")))?,
        });
    }
    if let Some(c) = o.child("tool_choice")? {
        c.only(&["type", "name", "disable_parallel_tool_use"], target)?;
        req.tool_choice = Some(match c.req_str("type")? {
            "auto" => ToolChoice::Auto,
            "any" => ToolChoice::Required,
            "none" => ToolChoice::None,
            "tool" => ToolChoice::Tool(c.req_str("name")?.to_owned()),
            other => return Err(format!("`tool_choice.type` `{other}` is not known")),
        });
        req.parallel_tool_calls = c.bool("disable_parallel_tool_use")?.map(|d| !d);
    }
    let messages = o.arr("messages")?;
    if messages.is_empty() && o.get("messages").is_none() {
        return Err("`messages` is required".to_owned());
    }
    for (i, m) in messages.iter().enumerate() {
        let m = obj(m, &format!("messages[{i}]"))?;
        m.only(&["role", "content"], target)?;
        let role = match m.req_str("role")? {
            "user" => Role::User,
            "assistant" => Role::Assistant,
            other => return Err(format!("`{}` `{other}` is not known", m.at("role"))),
        };
        let parts = blocks(&m, "content", &req.messages, target)?;
        req.messages.push(Message { role, parts });
    }
    Ok(req)
}

/// A message's or tool result's `content`: a string or content blocks.
fn blocks(m: &Obj<'_>, key: &str, history: &[Message], target: &str) -> Result<Vec<Part>, String> {
    let items = match m.get(key) {
        None => return Ok(Vec::new()),
        Some(Value::String(s)) => return Ok(vec![Part::Text(s.clone())]),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(format!("`{}` must be a string or an array", m.at(key))),
    };
    let mut parts = Vec::new();
    for (i, b) in items.iter().enumerate() {
        let b = obj(b, &format!("{}[{i}]", m.at(key)))?;
        match b.req_str("type")? {
            "text" => {
                b.only(&["type", "text", HINTS], target)?;
                parts.push(Part::Text(b.req_str("text")?.to_owned()));
            }
            "image" => {
                b.only(&["type", "source", HINTS], target)?;
                let s = b
                    .child("source")?
                    .ok_or_else(|| format!("`{}` is required", b.at("source")))?;
                parts.push(Part::Image(match s.req_str("type")? {
                    "base64" => Image::Inline {
                        media_type: s.req_str("media_type")?.to_owned(),
                        data: s.req_str("data")?.to_owned(),
                        detail: None,
                    },
                    "url" => Image::Url {
                        url: s.req_str("url")?.to_owned(),
                        detail: None,
                    },
                    other => {
                        return Err(cannot(
                            &format!("an image source of type `{other}` ({})", s.path),
                            target,
                        ))
                    }
                }));
            }
            "tool_use" => {
                b.only(&["type", "id", "name", "input", HINTS], target)?;
                parts.push(Part::ToolCall {
                    id: b.req_str("id")?.to_owned(),
                    name: b.req_str("name")?.to_owned(),
                    arguments: b
                        .get("input")
                        .map_or_else(|| "{}".to_owned(), Value::to_string),
                });
            }
            "tool_result" => {
                b.only(
                    &["type", "tool_use_id", "content", "is_error", HINTS],
                    target,
                )?;
                let id = b.req_str("tool_use_id")?.to_owned();
                parts.push(Part::ToolResult {
                    name: crate::openai::convert::call_name(history, &id),
                    id,
                    content: blocks(&b, "content", history, target)?,
                    is_error: b.bool("is_error")?.unwrap_or(false),
                });
            }
            other => return Err(cannot(&format!("a `{other}` block ({})", b.path), target)),
        }
    }
    Ok(parts)
}

fn block_json(p: &Part, at: &str) -> Result<Option<Value>, String> {
    Ok(Some(match p {
        Part::Text(t) if t.is_empty() => return Ok(None),
        Part::Text(t) => json!({"type": "text", "text": t}),
        Part::Image(Image::Inline {
            media_type,
            data,
            detail,
        }) => {
            no_detail(detail.as_deref(), at)?;
            json!({"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}})
        }
        Part::Image(Image::Url { url, detail }) => {
            no_detail(detail.as_deref(), at)?;
            json!({"type": "image", "source": {"type": "url", "url": url}})
        }
        Part::ToolCall {
            id,
            name,
            arguments,
        } => json!({
            "type": "tool_use", "id": id, "name": name,
            "input": arguments_object(arguments, &format!("{at}: the arguments of tool call `{id}`"))?,
        }),
        Part::ToolResult {
            id,
            content,
            is_error,
            ..
        } => {
            let inner: Vec<Value> = content
                .iter()
                .map(|c| block_json(c, at))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .flatten()
                .collect();
            let mut b = json!({"type": "tool_result", "tool_use_id": id, "content": inner});
            if *is_error {
                b["is_error"] = true.into();
            }
            b
        }
    }))
}

/// An image `detail` other than `auto` asks for something Anthropic cannot be told.
pub(crate) fn no_detail(detail: Option<&str>, at: &str) -> Result<(), String> {
    match detail {
        None | Some("auto") => Ok(()),
        Some(d) => Err(cannot(
            &format!("image `detail: {d}` ({at})"),
            "Anthropic or Gemini",
        )),
    }
}

/// Writes a Messages request. `max_tokens` must be set (the caller fills in the model's
/// limit when the client gave none).
pub fn encode_request(req: &ChatRequest, model: &str) -> Result<Vec<u8>, String> {
    let mut out = Map::new();
    out.insert("model".into(), model.into());
    out.insert("max_tokens".into(), req.max_tokens.unwrap_or(4096).into());
    if !req.system.is_empty() {
        let system = if req.system.len() == 1 {
            Value::String(req.system[0].clone())
        } else {
            Value::Array(
                req.system
                    .iter()
                    .map(|s| json!({"type": "text", "text": s}))
                    .collect(),
            )
        };
        out.insert("system".into(), system);
    }
    let mut messages = Vec::new();
    for (i, m) in req.messages.iter().enumerate() {
        let role = role_name(m.role, "assistant", i, T)?;
        let at = format!("messages[{i}]");
        let content: Vec<Value> = m
            .parts
            .iter()
            .map(|p| block_json(p, &at))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect();
        messages.push(json!({"role": role, "content": content}));
    }
    out.insert("messages".into(), Value::Array(messages));
    let mut tools: Vec<Value> = req
        .tools
        .iter()
        .map(|t| tool_json(t, "input_schema"))
        .collect();
    let mut choice = req.tool_choice.as_ref().map(|c| match c {
        ToolChoice::Auto => json!({"type": "auto"}),
        ToolChoice::Required => json!({"type": "any"}),
        ToolChoice::None => json!({"type": "none"}),
        ToolChoice::Tool(n) => json!({"type": "tool", "name": n}),
    });
    match &req.output {
        OutputFormat::Text => {}
        format => {
            if !tools.is_empty() {
                return Err(cannot("JSON output together with tools", T));
            }
            let schema = match format {
                OutputFormat::JsonSchema { schema, .. } => schema.clone(),
                _ => json!({"type": "object"}),
            };
            tools.push(json!({
                "name": JSON_TOOL,
                "description": "Give the answer as a JSON value matching this schema.",
                "input_schema": schema,
            }));
            choice = Some(json!({"type": "tool", "name": JSON_TOOL}));
        }
    }
    if let (Some(false), Some(c)) = (req.parallel_tool_calls, choice.as_mut()) {
        c["disable_parallel_tool_use"] = true.into();
    } else if req.parallel_tool_calls == Some(false) && !tools.is_empty() {
        choice = Some(json!({"type": "auto", "disable_parallel_tool_use": true}));
    }
    if !tools.is_empty() {
        out.insert("tools".into(), Value::Array(tools));
    }
    put(&mut out, "tool_choice", choice);
    if !req.stop.is_empty() {
        out.insert("stop_sequences".into(), json!(req.stop));
    }
    put(&mut out, "temperature", req.temperature);
    put(&mut out, "top_p", req.top_p);
    put(&mut out, "top_k", req.top_k);
    if let Some(u) = &req.user {
        out.insert("metadata".into(), json!({"user_id": u}));
    }
    if req.stream {
        out.insert("stream".into(), true.into());
    }
    for (field, set) in [
        ("seed", req.seed.is_some()),
        ("presence_penalty", req.presence_penalty.is_some()),
        ("frequency_penalty", req.frequency_penalty.is_some()),
    ] {
        if set {
            return Err(cannot(&format!("`{field}`"), T));
        }
    }
    serde_json::to_vec(&Value::Object(out)).map_err(|e| e.to_string())
}

/// Anthropic's usage: `input_tokens` excludes cache reads and writes, which the gateway
/// counts as input.
pub fn usage_of(u: &Value) -> Option<TokenUsage> {
    if !u.is_object() {
        return None;
    }
    let n = |k: &str| u[k].as_u64().unwrap_or(0);
    let cached = n("cache_read_input_tokens");
    Some(TokenUsage {
        input: n("input_tokens") + cached + n("cache_creation_input_tokens"),
        output: n("output_tokens"),
        cached,
    })
}

fn usage_json(u: &TokenUsage) -> Value {
    json!({
        "input_tokens": u.input.saturating_sub(u.cached),
        "output_tokens": u.output,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": u.cached,
    })
}

fn stop_reason(s: &str, sequence: Option<&str>) -> StopReason {
    match s {
        "max_tokens" | "model_context_window_exceeded" => StopReason::MaxTokens,
        "stop_sequence" => StopReason::StopSequence(sequence.map(str::to_owned)),
        "tool_use" => StopReason::ToolUse,
        "refusal" => StopReason::ContentFilter,
        _ => StopReason::EndTurn,
    }
}

fn stop_json(s: &StopReason) -> (&'static str, Value) {
    match s {
        StopReason::EndTurn => ("end_turn", Value::Null),
        StopReason::MaxTokens => ("max_tokens", Value::Null),
        StopReason::StopSequence(q) => (
            "stop_sequence",
            q.clone().map_or(Value::Null, Value::String),
        ),
        StopReason::ToolUse => ("tool_use", Value::Null),
        StopReason::ContentFilter => ("refusal", Value::Null),
    }
}

/// Reads a Messages answer. With `json_tool`, the forced JSON tool's input becomes the text.
pub fn decode_response(bytes: &[u8], json_tool: bool) -> Result<ChatResponse, String> {
    let v = body(bytes)?;
    let mut parts = Vec::new();
    let mut stop = stop_reason(
        v["stop_reason"].as_str().unwrap_or("end_turn"),
        v["stop_sequence"].as_str(),
    );
    for b in v["content"].as_array().into_iter().flatten() {
        match b["type"].as_str() {
            Some("text") => parts.push(Part::Text(
                b["text"].as_str().unwrap_or_default().to_owned(),
            )),
            Some("tool_use") if json_tool && b["name"] == JSON_TOOL => {
                parts.push(Part::Text(b["input"].to_string()));
                if stop == StopReason::ToolUse {
                    stop = StopReason::EndTurn;
                }
            }
            Some("tool_use") => parts.push(Part::ToolCall {
                id: b["id"].as_str().unwrap_or_default().to_owned(),
                name: b["name"].as_str().unwrap_or_default().to_owned(),
                arguments: b["input"].to_string(),
            }),
            _ => {}
        }
    }
    Ok(ChatResponse {
        id: v["id"].as_str().unwrap_or_default().to_owned(),
        model: v["model"].as_str().unwrap_or_default().to_owned(),
        parts,
        stop,
        usage: usage_of(&v["usage"]),
    })
}

fn message_id(id: &str) -> String {
    if id.is_empty() {
        "msg_switchyard".to_owned()
    } else {
        id.to_owned()
    }
}

pub fn encode_response(r: &ChatResponse, reply: &Reply<'_>) -> Vec<u8> {
    let content: Vec<Value> = r
        .parts
        .iter()
        .filter_map(|p| match p {
            Part::Text(t) => Some(json!({"type": "text", "text": t})),
            Part::ToolCall {
                id,
                name,
                arguments,
            } => Some(json!({
                "type": "tool_use", "id": id, "name": name,
                "input": serde_json::from_str::<Value>(arguments).unwrap_or_else(|_| json!({})),
            })),
            _ => None,
        })
        .collect();
    let (reason, sequence) = stop_json(&r.stop);
    let v = json!({
        "id": message_id(&r.id),
        "type": "message",
        "role": "assistant",
        "model": reply.model,
        "content": content,
        "stop_reason": reason,
        "stop_sequence": sequence,
        "usage": usage_json(&r.usage.unwrap_or_default()),
        "provider": reply.provider,
    });
    serde_json::to_vec(&v).unwrap_or_default()
}

/// Reads an Anthropic event stream into canonical events.
#[derive(Default)]
pub struct StreamDecoder {
    json_tool: bool,
    /// Content block index → tool call ordinal (`None` for text and the JSON tool's block).
    blocks: Vec<Option<usize>>,
    /// The block that carries JSON output as text.
    json_block: Option<usize>,
    tools: usize,
    usage: TokenUsage,
    stop: Option<StopReason>,
}

impl StreamDecoder {
    pub fn new(json_tool: bool) -> Self {
        Self {
            json_tool,
            ..Self::default()
        }
    }

    pub fn frame(&mut self, frame: &SseFrame, out: &mut Vec<StreamEvent>) {
        let Some(v) = frame
            .data
            .as_deref()
            .and_then(|d| serde_json::from_str::<Value>(d).ok())
        else {
            return;
        };
        let index = v["index"].as_u64().and_then(|i| usize::try_from(i).ok());
        match v["type"].as_str().unwrap_or_default() {
            "message_start" => {
                let m = &v["message"];
                if let Some(u) = usage_of(&m["usage"]) {
                    self.usage = u;
                }
                out.push(StreamEvent::Start {
                    id: m["id"].as_str().unwrap_or_default().to_owned(),
                    model: m["model"].as_str().unwrap_or_default().to_owned(),
                });
            }
            "content_block_start" => {
                let b = &v["content_block"];
                let at = index.unwrap_or(self.blocks.len());
                if self.blocks.len() <= at {
                    self.blocks.resize(at + 1, None);
                }
                match b["type"].as_str() {
                    Some("tool_use") if self.json_tool && b["name"] == JSON_TOOL => {
                        self.json_block = Some(at);
                    }
                    Some("tool_use") => {
                        let n = self.tools;
                        self.tools += 1;
                        self.blocks[at] = Some(n);
                        out.push(StreamEvent::ToolCallStart {
                            index: n,
                            id: b["id"].as_str().unwrap_or_default().to_owned(),
                            name: b["name"].as_str().unwrap_or_default().to_owned(),
                        });
                    }
                    Some("text") => {
                        if let Some(t) = b["text"].as_str().filter(|t| !t.is_empty()) {
                            out.push(StreamEvent::Text(t.to_owned()));
                        }
                    }
                    _ => {}
                }
            }
            "content_block_delta" => {
                let d = &v["delta"];
                match d["type"].as_str() {
                    Some("text_delta") => {
                        if let Some(t) = d["text"].as_str() {
                            out.push(StreamEvent::Text(t.to_owned()));
                        }
                    }
                    Some("input_json_delta") => {
                        let fragment = d["partial_json"].as_str().unwrap_or_default().to_owned();
                        if index.is_some() && index == self.json_block {
                            out.push(StreamEvent::Text(fragment));
                        } else if let Some(Some(n)) = index.and_then(|i| self.blocks.get(i)) {
                            out.push(StreamEvent::ToolCallArgs {
                                index: *n,
                                fragment,
                            });
                        }
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(u) = v["usage"].as_object() {
                    let n = |k: &str| u.get(k).and_then(Value::as_u64);
                    if let Some(o) = n("output_tokens") {
                        self.usage.output = o;
                    }
                    if let Some(i) = n("input_tokens") {
                        let cached = n("cache_read_input_tokens").unwrap_or(self.usage.cached);
                        self.usage.input =
                            i + cached + n("cache_creation_input_tokens").unwrap_or(0);
                        self.usage.cached = cached;
                    }
                }
                let d = &v["delta"];
                if let Some(r) = d["stop_reason"].as_str() {
                    let mut stop = stop_reason(r, d["stop_sequence"].as_str());
                    if self.json_block.is_some() && stop == StopReason::ToolUse {
                        stop = StopReason::EndTurn;
                    }
                    self.stop = Some(stop.clone());
                    out.push(StreamEvent::Finish(stop));
                }
                out.push(StreamEvent::Usage(self.usage));
            }
            "message_stop" => out.push(StreamEvent::End),
            "error" => out.push(StreamEvent::Error(
                v["error"]["message"]
                    .as_str()
                    .unwrap_or("the provider failed")
                    .to_owned(),
            )),
            _ => {}
        }
    }

    /// The upstream closed without `message_stop`: the answer was cut short.
    pub fn finish(&mut self, _usage_seen: bool, _out: &mut Vec<StreamEvent>) {}
}

/// Writes canonical events as Anthropic's event sequence: `message_start`, a `ping`, content
/// blocks (start, deltas, stop), `message_delta` with the stop reason and usage, and
/// `message_stop`.
pub struct StreamEncoder {
    model: String,
    provider: String,
    started: bool,
    /// The open block: its index and whether it is text.
    open: Option<(usize, Option<usize>)>,
    next_block: usize,
    /// Tool call ordinal → its block index.
    tool_blocks: Vec<(usize, usize)>,
    stop: Option<StopReason>,
    usage: TokenUsage,
    ended: bool,
}

impl StreamEncoder {
    pub fn new(reply: &Reply<'_>) -> Self {
        Self {
            model: reply.model.to_owned(),
            provider: reply.provider.to_owned(),
            started: false,
            open: None,
            next_block: 0,
            tool_blocks: Vec::new(),
            stop: None,
            usage: TokenUsage::default(),
            ended: false,
        }
    }

    fn emit(out: &mut Vec<Bytes>, event: &str, v: &Value) {
        out.push(named_frame(
            event,
            &serde_json::to_vec(v).unwrap_or_default(),
        ));
    }

    fn start(&mut self, id: &str, out: &mut Vec<Bytes>) {
        if self.started {
            return;
        }
        self.started = true;
        let msg = json!({
            "type": "message_start",
            "message": {
                "id": message_id(id), "type": "message", "role": "assistant",
                "model": self.model, "provider": self.provider, "content": [],
                "stop_reason": null, "stop_sequence": null,
                "usage": usage_json(&self.usage),
            }
        });
        Self::emit(out, "message_start", &msg);
        Self::emit(out, "ping", &json!({"type": "ping"}));
    }

    fn close(&mut self, out: &mut Vec<Bytes>) {
        if let Some((index, _)) = self.open.take() {
            Self::emit(
                out,
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": index}),
            );
        }
    }

    fn open(&mut self, tool: Option<usize>, block: Value, out: &mut Vec<Bytes>) -> usize {
        self.close(out);
        let index = self.next_block;
        self.next_block += 1;
        self.open = Some((index, tool));
        Self::emit(
            out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": block}),
        );
        index
    }

    pub fn event(&mut self, e: &StreamEvent, out: &mut Vec<Bytes>) {
        if self.ended {
            return;
        }
        if !matches!(
            e,
            StreamEvent::Start { .. } | StreamEvent::Usage(_) | StreamEvent::Error(_)
        ) {
            self.start("", out);
        }
        match e {
            StreamEvent::Start { id, .. } => self.start(id, out),
            StreamEvent::Text(t) => {
                let index = match self.open {
                    Some((i, None)) => i,
                    _ => self.open(None, json!({"type": "text", "text": ""}), out),
                };
                Self::emit(
                    out,
                    "content_block_delta",
                    &json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": t}}),
                );
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                let block = self.open(
                    Some(*index),
                    json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                    out,
                );
                self.tool_blocks.push((*index, block));
            }
            StreamEvent::ToolCallArgs { index, fragment } => {
                if let Some((_, block)) = self.tool_blocks.iter().find(|(t, _)| t == index) {
                    Self::emit(
                        out,
                        "content_block_delta",
                        &json!({"type": "content_block_delta", "index": block, "delta": {"type": "input_json_delta", "partial_json": fragment}}),
                    );
                }
            }
            StreamEvent::Finish(r) => self.stop = Some(r.clone()),
            StreamEvent::Usage(u) => self.usage = *u,
            StreamEvent::End => {
                self.close(out);
                let (reason, sequence) =
                    stop_json(self.stop.as_ref().unwrap_or(&StopReason::EndTurn));
                Self::emit(
                    out,
                    "message_delta",
                    &json!({"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": sequence}, "usage": usage_json(&self.usage)}),
                );
                Self::emit(out, "message_stop", &json!({"type": "message_stop"}));
                self.ended = true;
            }
            // Written by the relay, in the client's protocol (`translate::error_frames`).
            StreamEvent::Error(_) => self.ended = true,
        }
    }
}

/// Rewrites an Anthropic stream passed through unchanged but for the public model name in
/// `message_start`; reads usage and text on the side.
pub struct PassThrough {
    model: String,
    usage: Option<TokenUsage>,
}

/// What one passed-through frame carried.
pub struct Seen {
    pub frame: Bytes,
    pub usage: Option<TokenUsage>,
    pub text: String,
    pub done: bool,
    pub error: Option<String>,
}

impl PassThrough {
    pub fn new(public_model: &str) -> Self {
        Self {
            model: public_model.to_owned(),
            usage: None,
        }
    }

    pub fn frame(&mut self, frame: &SseFrame) -> Seen {
        let mut seen = Seen {
            frame: frame.raw.clone(),
            usage: None,
            text: String::new(),
            done: false,
            error: None,
        };
        let Some(mut v) = frame
            .data
            .as_deref()
            .and_then(|d| serde_json::from_str::<Value>(d).ok())
        else {
            return seen;
        };
        match v["type"].as_str().unwrap_or_default() {
            "message_start" => {
                self.usage = usage_of(&v["message"]["usage"]);
                seen.usage = self.usage;
                if v["message"].get("model").is_some() {
                    v["message"]["model"] = self.model.clone().into();
                    seen.frame =
                        named_frame("message_start", &serde_json::to_vec(&v).unwrap_or_default());
                }
            }
            "content_block_delta" => {
                let d = &v["delta"];
                seen.text = d["text"]
                    .as_str()
                    .or(d["partial_json"].as_str())
                    .or(d["thinking"].as_str())
                    .unwrap_or_default()
                    .to_owned();
            }
            "message_delta" => {
                let mut u = self.usage.unwrap_or_default();
                let n = |k: &str| v["usage"][k].as_u64();
                if let Some(o) = n("output_tokens") {
                    u.output = o;
                }
                if let Some(i) = n("input_tokens") {
                    let cached = n("cache_read_input_tokens").unwrap_or(u.cached);
                    u.input = i + cached + n("cache_creation_input_tokens").unwrap_or(0);
                    u.cached = cached;
                }
                self.usage = Some(u);
                seen.usage = Some(u);
            }
            "message_stop" => seen.done = true,
            "error" => {
                seen.error = Some(
                    v["error"]["message"]
                        .as_str()
                        .unwrap_or("the provider failed")
                        .to_owned(),
                )
            }
            _ => {}
        }
        seen
    }
}
