//! OpenAI chat completions ↔ the canonical form: requests, answers and stream chunks.

use super::TokenUsage;
use crate::canonical::*;
use crate::sse::{data_frame, SseFrame};
use crate::translate::read::{body, cannot, data_url, obj, put, strings, tool_json, Obj};
use crate::translate::Reply;
use bytes::Bytes;
use serde_json::{json, Map, Value};

const REQUEST_FIELDS: &[&str] = &[
    "model",
    "messages",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "stop",
    "response_format",
    "stream",
    "stream_options",
    "user",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "n",
];

/// Reads a chat completions request (routing fields already removed) for a `target`
/// provider.
pub fn decode_request(bytes: &[u8], target: &str) -> Result<ChatRequest, String> {
    let v = body(bytes)?;
    let o = obj(&v, "")?;
    o.only(REQUEST_FIELDS, target)?;
    if o.u64("n")?.is_some_and(|n| n != 1) {
        return Err(cannot("`n` other than 1", target));
    }
    let mut req = ChatRequest {
        model: o.req_str("model")?.to_owned(),
        max_tokens: match o.u64("max_completion_tokens")? {
            Some(n) => Some(n),
            None => o.u64("max_tokens")?,
        },
        temperature: o.f64("temperature")?,
        top_p: o.f64("top_p")?,
        stop: strings(o.get("stop"), "stop")?,
        stream: o.bool("stream")?.unwrap_or(false),
        user: o.str("user")?.map(str::to_owned),
        seed: o.i64("seed")?,
        presence_penalty: o.f64("presence_penalty")?,
        frequency_penalty: o.f64("frequency_penalty")?,
        parallel_tool_calls: o.bool("parallel_tool_calls")?,
        ..ChatRequest::default()
    };
    for (i, t) in o.arr("tools")?.iter().enumerate() {
        let t = obj(t, &format!("tools[{i}]"))?;
        if t.str("type")?.unwrap_or("function") != "function" {
            return Err(cannot(
                &format!("`{}` other than function", t.at("type")),
                target,
            ));
        }
        let f = t
            .child("function")?
            .ok_or_else(|| format!("`{}` is required", t.at("function")))?;
        f.only(&["name", "description", "parameters", "strict"], target)?;
        req.tools.push(ToolDef {
            name: f.req_str("name")?.to_owned(),
            description: f.str("description")?.map(str::to_owned),
            parameters: f
                .get("parameters")
                .cloned()
                .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
        });
    }
    req.tool_choice = match o.get("tool_choice") {
        None => None,
        Some(Value::String(s)) => Some(match s.as_str() {
            "auto" => ToolChoice::Auto,
            "required" => ToolChoice::Required,
            "none" => ToolChoice::None,
            other => return Err(format!("`tool_choice` `{other}` is not known")),
        }),
        Some(v) => {
            let c = obj(v, "tool_choice")?;
            let name = c
                .child("function")?
                .ok_or("`tool_choice.function` is required")?
                .req_str("name")?;
            Some(ToolChoice::Tool(name.to_owned()))
        }
    };
    req.output = match o.child("response_format")? {
        None => OutputFormat::Text,
        Some(f) => match f.req_str("type")? {
            "text" => OutputFormat::Text,
            "json_object" => OutputFormat::Json,
            "json_schema" => {
                let s = f
                    .child("json_schema")?
                    .ok_or("`response_format.json_schema` is required")?;
                OutputFormat::JsonSchema {
                    name: s.str("name")?.unwrap_or("response").to_owned(),
                    schema: s.get("schema").cloned().unwrap_or_else(|| json!({})),
                    strict: s.bool("strict")?,
                }
            }
            other => return Err(format!("`response_format.type` `{other}` is not known")),
        },
    };
    let messages = o.arr("messages")?;
    let mut leading = true;
    for (i, m) in messages.iter().enumerate() {
        let m = obj(m, &format!("messages[{i}]"))?;
        let role = m.req_str("role")?;
        match role {
            "system" | "developer" => {
                m.only(&["role", "content"], target)?;
                let text = text_of(&m, target)?;
                if leading {
                    req.system.push(text);
                } else {
                    req.messages.push(Message {
                        role: Role::System,
                        parts: vec![Part::Text(text)],
                    });
                }
                continue;
            }
            "user" => {
                m.only(&["role", "content"], target)?;
                let parts = user_parts(&m, target)?;
                // A question right after tool answers belongs to their turn (as Anthropic
                // and Gemini want it).
                match req.messages.last_mut() {
                    Some(last) if only_results(last) => last.parts.extend(parts),
                    _ => req.messages.push(Message {
                        role: Role::User,
                        parts,
                    }),
                }
            }
            "assistant" => {
                m.only(&["role", "content", "tool_calls", "refusal"], target)?;
                let mut parts = Vec::new();
                if m.get("content").is_some() {
                    let t = text_of(&m, target)?;
                    if !t.is_empty() {
                        parts.push(Part::Text(t));
                    }
                }
                for (j, c) in m.arr("tool_calls")?.iter().enumerate() {
                    let c = obj(c, &format!("{}[{j}]", m.at("tool_calls")))?;
                    let f = c
                        .child("function")?
                        .ok_or_else(|| format!("`{}` is required", c.at("function")))?;
                    parts.push(Part::ToolCall {
                        id: c.req_str("id")?.to_owned(),
                        name: f.req_str("name")?.to_owned(),
                        arguments: f.str("arguments")?.unwrap_or("{}").to_owned(),
                    });
                }
                req.messages.push(Message {
                    role: Role::Assistant,
                    parts,
                });
            }
            "tool" => {
                m.only(&["role", "content", "tool_call_id", "name"], target)?;
                let id = m.req_str("tool_call_id")?.to_owned();
                let name = m
                    .str("name")?
                    .map(str::to_owned)
                    .unwrap_or_else(|| call_name(&req.messages, &id));
                let result = Part::ToolResult {
                    id,
                    name,
                    content: vec![Part::Text(text_of(&m, target)?)],
                    is_error: false,
                };
                // Consecutive tool answers belong to one user turn.
                match req.messages.last_mut() {
                    Some(last) if only_results(last) => last.parts.push(result),
                    _ => req.messages.push(Message {
                        role: Role::User,
                        parts: vec![result],
                    }),
                }
            }
            other => {
                return Err(cannot(
                    &format!("a message with role `{other}` ({})", m.at("role")),
                    target,
                ))
            }
        }
        leading = false;
    }
    Ok(req)
}

/// A user turn made of tool answers only.
fn only_results(m: &Message) -> bool {
    m.role == Role::User
        && !m.parts.is_empty()
        && m.parts.iter().all(|p| matches!(p, Part::ToolResult { .. }))
}

/// The name of the call a tool answer answers, from the conversation so far.
pub(crate) fn call_name(messages: &[Message], id: &str) -> String {
    messages
        .iter()
        .rev()
        .flat_map(|m| m.parts.iter())
        .find_map(|p| match p {
            Part::ToolCall { id: i, name, .. } if i == id => Some(name.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

/// A message's `content` as text: a string, or text parts joined.
fn text_of(m: &Obj<'_>, target: &str) -> Result<String, String> {
    match m.get("content") {
        None => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(parts)) => {
            let mut out = String::new();
            for (i, p) in parts.iter().enumerate() {
                let p = obj(p, &format!("{}[{i}]", m.at("content")))?;
                match p.req_str("type")? {
                    "text" | "refusal" => {
                        out.push_str(p.str("text")?.or(p.str("refusal")?).unwrap_or(""))
                    }
                    other => {
                        return Err(cannot(&format!("a `{other}` part in `{}`", p.path), target))
                    }
                }
            }
            Ok(out)
        }
        Some(_) => Err(format!(
            "`{}` must be a string or an array",
            m.at("content")
        )),
    }
}

fn user_parts(m: &Obj<'_>, target: &str) -> Result<Vec<Part>, String> {
    let Some(Value::Array(items)) = m.get("content") else {
        return Ok(vec![Part::Text(text_of(m, target)?)]);
    };
    let mut parts = Vec::new();
    for (i, p) in items.iter().enumerate() {
        let p = obj(p, &format!("{}[{i}]", m.at("content")))?;
        match p.req_str("type")? {
            "text" => parts.push(Part::Text(p.req_str("text")?.to_owned())),
            "image_url" => {
                let img = match p.get("image_url") {
                    Some(Value::String(url)) => (url.clone(), None),
                    Some(v) => {
                        let img = obj(v, &p.at("image_url"))?;
                        (
                            img.req_str("url")?.to_owned(),
                            img.str("detail")?.map(str::to_owned),
                        )
                    }
                    None => return Err(format!("`{}` is required", p.at("image_url"))),
                };
                parts.push(Part::Image(image(img.0, img.1)));
            }
            other => return Err(cannot(&format!("a `{other}` part in `{}`", p.path), target)),
        }
    }
    Ok(parts)
}

fn image(url: String, detail: Option<String>) -> Image {
    match data_url(&url) {
        Some((media_type, data)) => Image::Inline {
            media_type,
            data,
            detail,
        },
        None => Image::Url { url, detail },
    }
}

/// Writes a request for an OpenAI-compatible provider.
pub fn encode_request(req: &ChatRequest, model: &str) -> Result<Vec<u8>, String> {
    const T: &str = "OpenAI-compatible";
    if req.top_k.is_some() {
        return Err(cannot("`top_k`", T));
    }
    let mut messages = Vec::new();
    for s in &req.system {
        messages.push(json!({"role": "system", "content": s}));
    }
    for (i, m) in req.messages.iter().enumerate() {
        let mut content = Vec::new();
        let mut calls = Vec::new();
        for p in &m.parts {
            match p {
                Part::Text(t) => content.push(json!({"type": "text", "text": t})),
                Part::Image(img) => {
                    if m.role != Role::User {
                        return Err(cannot(
                            &format!("an image in message {i} (not from the user)"),
                            T,
                        ));
                    }
                    content.push(image_part(img));
                }
                Part::ToolCall {
                    id,
                    name,
                    arguments,
                } => calls.push(json!({
                    "id": id, "type": "function",
                    "function": {"name": name, "arguments": arguments}
                })),
                Part::ToolResult {
                    id,
                    content: inner,
                    is_error,
                    ..
                } => {
                    let mut text = String::new();
                    if *is_error {
                        text.push_str("Error: ");
                    }
                    for c in inner {
                        match c {
                            Part::Text(t) => text.push_str(t),
                            _ => {
                                return Err(cannot(
                                    &format!("an image inside a tool result (message {i})"),
                                    T,
                                ))
                            }
                        }
                    }
                    messages.push(json!({"role": "tool", "tool_call_id": id, "content": text}));
                }
            }
        }
        let role = match m.role {
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::System => "system",
        };
        let had_results = m.parts.iter().any(|p| matches!(p, Part::ToolResult { .. }));
        if m.role == Role::User && content.is_empty() && had_results {
            continue;
        }
        let only_text = content.iter().all(|c| c["type"] == "text");
        let content = if !only_text || (m.role == Role::User && content.len() > 1) {
            Value::Array(content)
        } else if content.is_empty() && !calls.is_empty() {
            Value::Null
        } else {
            Value::String(content.iter().filter_map(|c| c["text"].as_str()).collect())
        };
        let mut msg = Map::new();
        msg.insert("role".into(), role.into());
        msg.insert("content".into(), content);
        if !calls.is_empty() {
            msg.insert("tool_calls".into(), Value::Array(calls));
        }
        messages.push(Value::Object(msg));
    }
    let mut out = Map::new();
    out.insert("model".into(), model.into());
    out.insert("messages".into(), Value::Array(messages));
    if !req.tools.is_empty() {
        let tools: Vec<Value> = req
            .tools
            .iter()
            .map(|t| json!({"type": "function", "function": tool_json(t, "parameters")}))
            .collect();
        out.insert("tools".into(), Value::Array(tools));
    }
    put(
        &mut out,
        "tool_choice",
        req.tool_choice.as_ref().map(|c| match c {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::Required => json!("required"),
            ToolChoice::None => json!("none"),
            ToolChoice::Tool(n) => json!({"type": "function", "function": {"name": n}}),
        }),
    );
    put(&mut out, "parallel_tool_calls", req.parallel_tool_calls);
    put(&mut out, "max_tokens", req.max_tokens);
    put(&mut out, "temperature", req.temperature);
    put(&mut out, "top_p", req.top_p);
    if !req.stop.is_empty() {
        out.insert("stop".into(), json!(req.stop));
    }
    match &req.output {
        OutputFormat::Text => {}
        OutputFormat::Json => {
            out.insert("response_format".into(), json!({"type": "json_object"}));
        }
        OutputFormat::JsonSchema {
            name,
            schema,
            strict,
        } => {
            let mut s = Map::new();
            s.insert("name".into(), name.clone().into());
            s.insert("schema".into(), schema.clone());
            put(&mut s, "strict", *strict);
            out.insert(
                "response_format".into(),
                json!({"type": "json_schema", "json_schema": s}),
            );
        }
    }
    if req.stream {
        out.insert("stream".into(), true.into());
        out.insert("stream_options".into(), json!({"include_usage": true}));
    }
    put(&mut out, "user", req.user.as_ref());
    put(&mut out, "seed", req.seed);
    put(&mut out, "presence_penalty", req.presence_penalty);
    put(&mut out, "frequency_penalty", req.frequency_penalty);
    serde_json::to_vec(&Value::Object(out)).map_err(|e| e.to_string())
}

fn image_part(img: &Image) -> Value {
    let (url, detail) = match img {
        Image::Url { url, detail } => (url.clone(), detail),
        Image::Inline {
            media_type,
            data,
            detail,
        } => (format!("data:{media_type};base64,{data}"), detail),
    };
    let mut i = Map::new();
    i.insert("url".into(), url.into());
    put(&mut i, "detail", detail.as_ref());
    json!({"type": "image_url", "image_url": i})
}

fn stop_reason(s: &str) -> StopReason {
    match s {
        "length" => StopReason::MaxTokens,
        "tool_calls" | "function_call" => StopReason::ToolUse,
        "content_filter" => StopReason::ContentFilter,
        _ => StopReason::EndTurn,
    }
}

fn finish_reason(s: &StopReason) -> &'static str {
    match s {
        StopReason::EndTurn | StopReason::StopSequence(_) => "stop",
        StopReason::MaxTokens => "length",
        StopReason::ToolUse => "tool_calls",
        StopReason::ContentFilter => "content_filter",
    }
}

fn usage_of(v: Option<&Value>) -> Option<TokenUsage> {
    let raw = serde_json::value::to_raw_value(v?).ok()?;
    TokenUsage::from_raw(&raw)
}

pub(crate) fn usage_json(u: &TokenUsage) -> Value {
    let mut v = json!({
        "prompt_tokens": u.input,
        "completion_tokens": u.output,
        "total_tokens": u.input + u.output,
    });
    if u.cached > 0 {
        v["prompt_tokens_details"] = json!({"cached_tokens": u.cached});
    }
    v
}

/// Reads a chat completion answer.
pub fn decode_response(bytes: &[u8]) -> Result<ChatResponse, String> {
    let v = body(bytes)?;
    let choice = &v["choices"][0];
    let msg = &choice["message"];
    let mut parts = Vec::new();
    if let Some(t) = msg["content"].as_str().filter(|t| !t.is_empty()) {
        parts.push(Part::Text(t.to_owned()));
    }
    for c in msg["tool_calls"].as_array().into_iter().flatten() {
        parts.push(Part::ToolCall {
            id: c["id"].as_str().unwrap_or_default().to_owned(),
            name: c["function"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            arguments: c["function"]["arguments"]
                .as_str()
                .unwrap_or("{}")
                .to_owned(),
        });
    }
    Ok(ChatResponse {
        id: v["id"].as_str().unwrap_or_default().to_owned(),
        model: v["model"].as_str().unwrap_or_default().to_owned(),
        parts,
        stop: stop_reason(choice["finish_reason"].as_str().unwrap_or("stop")),
        usage: usage_of(v.get("usage")),
    })
}

/// Writes a chat completion answer for an OpenAI client.
pub fn encode_response(r: &ChatResponse, reply: &Reply<'_>) -> Vec<u8> {
    let text: String = r
        .parts
        .iter()
        .filter_map(|p| match p {
            Part::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    let calls: Vec<Value> = r
        .parts
        .iter()
        .filter_map(|p| match p {
            Part::ToolCall {
                id,
                name,
                arguments,
            } => Some(json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}})),
            _ => None,
        })
        .collect();
    let mut message = json!({
        "role": "assistant",
        "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { Value::String(text) },
    });
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    let mut out = json!({
        "id": openai_id(&r.id),
        "object": "chat.completion",
        "created": reply.created,
        "model": reply.model,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish_reason(&r.stop)}],
    });
    if let Some(u) = &r.usage {
        out["usage"] = usage_json(u);
    }
    out["provider"] = reply.provider.into();
    serde_json::to_vec(&out).unwrap_or_default()
}

fn openai_id(id: &str) -> String {
    if id.is_empty() {
        "chatcmpl-switchyard".to_owned()
    } else {
        id.to_owned()
    }
}

/// Reads an OpenAI chunk stream into canonical events.
#[derive(Default)]
pub struct StreamDecoder {
    started: bool,
}

impl StreamDecoder {
    pub fn frame(&mut self, frame: &SseFrame, out: &mut Vec<StreamEvent>) {
        let Some(data) = frame.data.as_deref() else {
            return;
        };
        if data.trim() == "[DONE]" {
            out.push(StreamEvent::End);
            return;
        }
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            return;
        };
        if let Some(e) = v.get("error") {
            let m = e["message"].as_str().unwrap_or("the provider failed");
            out.push(StreamEvent::Error(m.to_owned()));
            return;
        }
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: v["id"].as_str().unwrap_or_default().to_owned(),
                model: v["model"].as_str().unwrap_or_default().to_owned(),
            });
        }
        let choice = &v["choices"][0];
        let delta = &choice["delta"];
        if let Some(t) = delta["content"].as_str().filter(|t| !t.is_empty()) {
            out.push(StreamEvent::Text(t.to_owned()));
        }
        for c in delta["tool_calls"].as_array().into_iter().flatten() {
            let index = c["index"]
                .as_u64()
                .and_then(|i| usize::try_from(i).ok())
                .unwrap_or(0);
            if let Some(name) = c["function"]["name"].as_str() {
                out.push(StreamEvent::ToolCallStart {
                    index,
                    id: c["id"]
                        .as_str()
                        .map_or_else(|| synthetic_id("call_", index), str::to_owned),
                    name: name.to_owned(),
                });
            }
            if let Some(a) = c["function"]["arguments"]
                .as_str()
                .filter(|a| !a.is_empty())
            {
                out.push(StreamEvent::ToolCallArgs {
                    index,
                    fragment: a.to_owned(),
                });
            }
        }
        if let Some(r) = choice["finish_reason"].as_str() {
            out.push(StreamEvent::Finish(stop_reason(r)));
        }
        if let Some(u) = usage_of(v.get("usage")) {
            out.push(StreamEvent::Usage(u));
        }
    }

    /// The upstream closed without `[DONE]`: complete if it delivered usage (some servers
    /// end that way), else cut short.
    pub fn finish(&mut self, usage_seen: bool, out: &mut Vec<StreamEvent>) {
        if usage_seen {
            out.push(StreamEvent::End);
        }
    }
}

/// Writes canonical events as OpenAI chunks.
pub struct StreamEncoder {
    id: String,
    model: String,
    provider: String,
    created: u64,
    wants_usage: bool,
    usage: Option<TokenUsage>,
    started: bool,
}

impl StreamEncoder {
    pub fn new(reply: &Reply<'_>, wants_usage: bool) -> Self {
        Self {
            id: String::new(),
            model: reply.model.to_owned(),
            provider: reply.provider.to_owned(),
            created: reply.created,
            wants_usage,
            usage: None,
            started: false,
        }
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> Bytes {
        let v = json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model, "provider": self.provider,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        data_frame(&serde_json::to_vec(&v).unwrap_or_default())
    }

    fn start(&mut self, id: &str, out: &mut Vec<Bytes>) {
        if !self.started {
            self.started = true;
            self.id = openai_id(id);
            out.push(self.chunk(json!({"role": "assistant", "content": ""}), None));
        }
    }

    pub fn event(&mut self, e: &StreamEvent, out: &mut Vec<Bytes>) {
        if !matches!(
            e,
            StreamEvent::Start { .. } | StreamEvent::Usage(_) | StreamEvent::Error(_)
        ) {
            self.start("", out);
        }
        match e {
            StreamEvent::Start { id, .. } => self.start(id, out),
            StreamEvent::Text(t) => out.push(self.chunk(json!({"content": t}), None)),
            StreamEvent::ToolCallStart { index, id, name } => out.push(self.chunk(
                json!({"tool_calls": [{"index": index, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]}),
                None,
            )),
            StreamEvent::ToolCallArgs { index, fragment } => out.push(self.chunk(
                json!({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}),
                None,
            )),
            StreamEvent::Finish(r) => out.push(self.chunk(json!({}), Some(finish_reason(r)))),
            StreamEvent::Usage(u) => self.usage = Some(*u),
            StreamEvent::End => {
                if let (true, Some(u)) = (self.wants_usage, &self.usage) {
                    let v = json!({
                        "id": self.id, "object": "chat.completion.chunk", "created": self.created,
                        "model": self.model, "provider": self.provider, "choices": [], "usage": usage_json(u),
                    });
                    out.push(data_frame(&serde_json::to_vec(&v).unwrap_or_default()));
                }
                out.push(data_frame(b"[DONE]"));
            }
            // Written by the relay, in the client's protocol (`translate::error_frames`).
            StreamEvent::Error(_) => {}
        }
    }
}
