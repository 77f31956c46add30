//! The Gemini API (`generateContent`, `streamGenerateContent?alt=sse`): errors, and requests,
//! answers and streams ↔ the canonical form. Gemini reads both camelCase and snake_case field
//! names, so both are accepted here; what is written is camelCase.
//!
//! Gemini has no ids on function calls in older clients: a call without one gets `call_N`, and
//! an answer without one is matched to the latest unanswered call of that name.

use crate::canonical::*;
use crate::openai::TokenUsage;
use crate::sse::{data_frame, SseFrame};
use crate::translate::read::{
    arguments_object, body, cannot, obj, put, role_name, strings, tool_json, Obj,
};
use crate::translate::Reply;
use bytes::Bytes;
use serde_json::{json, Map, Value};

const T: &str = "Gemini";

/// Gemini's `status` for an HTTP status.
pub fn error_status(status: u16) -> &'static str {
    match status {
        400 | 405 | 413 | 415 | 422 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        402 => "FAILED_PRECONDITION",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ALREADY_EXISTS",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    }
}

/// `{"error":{"code","message","status"}}`.
pub fn error_body(message: &str, status: u16) -> Vec<u8> {
    let v = json!({"error": {"code": status, "message": message, "status": error_status(status)}});
    serde_json::to_vec(&v).unwrap_or_default()
}

/// Media types Gemini can be told for an image URL, by its extension.
fn media_type_of(url: &str) -> Option<&'static str> {
    let path = url
        .split(['?', '#'])
        .next()
        .unwrap_or(url)
        .to_ascii_lowercase();
    [
        (".png", "image/png"),
        (".jpg", "image/jpeg"),
        (".jpeg", "image/jpeg"),
        (".webp", "image/webp"),
        (".gif", "image/gif"),
        (".heic", "image/heic"),
    ]
    .into_iter()
    .find(|(ext, _)| path.ends_with(ext))
    .map(|(_, t)| t)
}

/// Gemini's OpenAPI-style schemas spell types in capitals (`OBJECT`); JSON Schema does not.
fn lower_types(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let v = match (k.as_str(), v) {
                        ("type", Value::String(s)) => Value::String(s.to_ascii_lowercase()),
                        _ => lower_types(v),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(lower_types).collect()),
        other => other.clone(),
    }
}

const REQUEST_FIELDS: &[&str] = &[
    "model",
    "contents",
    "systemInstruction",
    "system_instruction",
    "tools",
    "toolConfig",
    "tool_config",
    "generationConfig",
    "generation_config",
];

const GENERATION_FIELDS: &[&str] = &[
    "temperature",
    "topP",
    "top_p",
    "topK",
    "top_k",
    "maxOutputTokens",
    "max_output_tokens",
    "stopSequences",
    "stop_sequences",
    "candidateCount",
    "candidate_count",
    "responseMimeType",
    "response_mime_type",
    "responseSchema",
    "response_schema",
    "responseJsonSchema",
    "response_json_schema",
    "presencePenalty",
    "presence_penalty",
    "frequencyPenalty",
    "frequency_penalty",
    "seed",
];

/// Reads the first spelling present of a field as a typed value.
fn pick<'a, R>(
    o: &Obj<'a>,
    names: [&str; 2],
    read: impl Fn(&Obj<'a>, &str) -> Result<Option<R>, String>,
) -> Result<Option<R>, String> {
    match read(o, names[0])? {
        Some(v) => Ok(Some(v)),
        None => read(o, names[1]),
    }
}

/// Reads a `generateContent` body; the model and whether it streams come from the URL.
pub fn decode_request(
    bytes: &[u8],
    model: &str,
    stream: bool,
    target: &str,
) -> Result<ChatRequest, String> {
    let v = body(bytes)?;
    let o = obj(&v, "")?;
    o.only(REQUEST_FIELDS, target)?;
    let mut req = ChatRequest {
        model: model.to_owned(),
        stream,
        ..ChatRequest::default()
    };
    if let Some(s) = o.get_any(&["systemInstruction", "system_instruction"]) {
        let s = obj(s, "systemInstruction")?;
        for (i, p) in s.arr("parts")?.iter().enumerate() {
            let p = obj(p, &format!("systemInstruction.parts[{i}]"))?;
            p.only(&["text"], target)?;
            req.system.push(p.req_str("text")?.to_owned());
        }
    }
    if let Some(g) = o.get_any(&["generationConfig", "generation_config"]) {
        let g = obj(g, "generationConfig")?;
        g.only(GENERATION_FIELDS, target)?;
        req.temperature = g.f64("temperature")?;
        req.top_p = pick(&g, ["topP", "top_p"], Obj::f64)?;
        req.top_k = pick(&g, ["topK", "top_k"], Obj::u64)?;
        req.max_tokens = pick(&g, ["maxOutputTokens", "max_output_tokens"], Obj::u64)?;
        req.stop = strings(
            g.get_any(&["stopSequences", "stop_sequences"]),
            "stopSequences",
        )?;
        req.presence_penalty = pick(&g, ["presencePenalty", "presence_penalty"], Obj::f64)?;
        req.frequency_penalty = pick(&g, ["frequencyPenalty", "frequency_penalty"], Obj::f64)?;
        req.seed = g.i64("seed")?;
        if pick(&g, ["candidateCount", "candidate_count"], Obj::u64)?.is_some_and(|n| n != 1) {
            return Err(cannot(
                "`generationConfig.candidateCount` other than 1",
                target,
            ));
        }
        let mime = pick(&g, ["responseMimeType", "response_mime_type"], Obj::str)?;
        let schema = g
            .get_any(&["responseJsonSchema", "response_json_schema"])
            .cloned()
            .or_else(|| {
                g.get_any(&["responseSchema", "response_schema"])
                    .map(lower_types)
            });
        req.output = match (mime, schema) {
            (Some("application/json"), Some(schema)) => OutputFormat::JsonSchema {
                name: "response".to_owned(),
                schema,
                strict: None,
            },
            (Some("application/json"), None) => OutputFormat::Json,
            (None | Some("text/plain"), None) => OutputFormat::Text,
            (Some(m), _) if m != "application/json" && m != "text/plain" => {
                return Err(cannot(&format!("`responseMimeType` `{m}`"), target))
            }
            _ => {
                return Err(
                    "`responseSchema` needs `responseMimeType: application/json`".to_owned(),
                )
            }
        };
    }
    for (i, t) in o.arr("tools")?.iter().enumerate() {
        let t = obj(t, &format!("tools[{i}]"))?;
        t.only(&["functionDeclarations", "function_declarations"], target)?;
        let decls = t
            .get_any(&["functionDeclarations", "function_declarations"])
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for (j, d) in decls.iter().enumerate() {
            let d = obj(d, &format!("tools[{i}].functionDeclarations[{j}]"))?;
            d.only(
                &[
                    "name",
                    "description",
                    "parameters",
                    "parametersJsonSchema",
                    "parameters_json_schema",
                ],
                target,
            )?;
            let parameters = d
                .get_any(&["parametersJsonSchema", "parameters_json_schema"])
                .cloned()
                .or_else(|| d.get("parameters").map(lower_types))
                .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
            req.tools.push(ToolDef {
                name: d.req_str("name")?.to_owned(),
                description: d.str("description")?.map(str::to_owned),
                parameters,
            });
        }
    }
    if let Some(c) = o.get_any(&["toolConfig", "tool_config"]) {
        let c = obj(c, "toolConfig")?;
        c.only(
            &["functionCallingConfig", "function_calling_config"],
            target,
        )?;
        if let Some(f) = c.get_any(&["functionCallingConfig", "function_calling_config"]) {
            let f = obj(f, "toolConfig.functionCallingConfig")?;
            f.only(
                &["mode", "allowedFunctionNames", "allowed_function_names"],
                target,
            )?;
            let allowed = strings(
                f.get_any(&["allowedFunctionNames", "allowed_function_names"]),
                "allowedFunctionNames",
            )?;
            req.tool_choice = match (f.str("mode")?.unwrap_or("AUTO"), allowed.as_slice()) {
                ("AUTO" | "MODE_UNSPECIFIED", []) => Some(ToolChoice::Auto),
                ("NONE", []) => Some(ToolChoice::None),
                ("ANY" | "VALIDATED", []) => Some(ToolChoice::Required),
                ("ANY" | "VALIDATED", [one]) => Some(ToolChoice::Tool(one.clone())),
                _ => {
                    return Err(cannot(
                        "this `toolConfig.functionCallingConfig` (several allowed functions, or a mode other than AUTO, ANY or NONE)",
                        target,
                    ))
                }
            };
        }
    }
    // Calls seen so far: id, name, answered.
    let mut calls: Vec<(String, String, bool)> = Vec::new();
    let contents = o.arr("contents")?;
    if contents.is_empty() {
        return Err("`contents` is required".to_owned());
    }
    for (i, c) in contents.iter().enumerate() {
        let c = obj(c, &format!("contents[{i}]"))?;
        c.only(&["role", "parts"], target)?;
        let role = match c.str("role")?.unwrap_or("user") {
            "user" | "function" | "tool" => Role::User,
            "model" => Role::Assistant,
            other => return Err(format!("`{}` `{other}` is not known", c.at("role"))),
        };
        let mut parts = Vec::new();
        for (j, p) in c.arr("parts")?.iter().enumerate() {
            let p = obj(p, &format!("{}[{j}]", c.at("parts")))?;
            parts.push(part(&p, &mut calls, target)?);
        }
        req.messages.push(Message { role, parts });
    }
    Ok(req)
}

fn part(
    p: &Obj<'_>,
    calls: &mut Vec<(String, String, bool)>,
    target: &str,
) -> Result<Part, String> {
    // A thought signature is Gemini's own token for its reasoning; no other provider reads it.
    const SIG: [&str; 2] = ["thoughtSignature", "thought_signature"];
    if let Some(t) = p.str("text")? {
        p.only(&["text", SIG[0], SIG[1]], target)?;
        return Ok(Part::Text(t.to_owned()));
    }
    if let Some(d) = p.get_any(&["inlineData", "inline_data"]) {
        p.only(&["inlineData", "inline_data"], target)?;
        let d = obj(d, &p.at("inlineData"))?;
        return Ok(Part::Image(Image::Inline {
            media_type: pick(&d, ["mimeType", "mime_type"], Obj::str)?
                .ok_or_else(|| format!("`{}` is required", d.at("mimeType")))?
                .to_owned(),
            data: d.req_str("data")?.to_owned(),
            detail: None,
        }));
    }
    if let Some(d) = p.get_any(&["fileData", "file_data"]) {
        p.only(&["fileData", "file_data"], target)?;
        let d = obj(d, &p.at("fileData"))?;
        return Ok(Part::Image(Image::Url {
            url: pick(&d, ["fileUri", "file_uri"], Obj::str)?
                .ok_or_else(|| format!("`{}` is required", d.at("fileUri")))?
                .to_owned(),
            detail: None,
        }));
    }
    if let Some(f) = p.get_any(&["functionCall", "function_call"]) {
        p.only(&["functionCall", "function_call", SIG[0], SIG[1]], target)?;
        let f = obj(f, &p.at("functionCall"))?;
        let name = f.req_str("name")?.to_owned();
        let id = f
            .str("id")?
            .map_or_else(|| synthetic_id("call_", calls.len()), str::to_owned);
        calls.push((id.clone(), name.clone(), false));
        return Ok(Part::ToolCall {
            id,
            name,
            arguments: f
                .get("args")
                .map_or_else(|| "{}".to_owned(), Value::to_string),
        });
    }
    if let Some(f) = p.get_any(&["functionResponse", "function_response"]) {
        p.only(&["functionResponse", "function_response"], target)?;
        let f = obj(f, &p.at("functionResponse"))?;
        let name = f.req_str("name")?.to_owned();
        let id = match f.str("id")? {
            Some(id) => id.to_owned(),
            None => calls
                .iter()
                .rev()
                .find(|(_, n, answered)| *n == name && !answered)
                .map_or_else(
                    || synthetic_id("call_", calls.len()),
                    |(id, _, _)| id.clone(),
                ),
        };
        if let Some(c) = calls.iter_mut().find(|(i, _, _)| *i == id) {
            c.2 = true;
        }
        return Ok(Part::ToolResult {
            id,
            name,
            content: vec![Part::Text(
                f.get("response")
                    .map_or_else(|| "{}".to_owned(), Value::to_string),
            )],
            is_error: false,
        });
    }
    Err(cannot(&format!("this part ({})", p.path), target))
}

/// Writes a `generateContent` body (the model goes in the URL).
pub fn encode_request(req: &ChatRequest) -> Result<Vec<u8>, String> {
    let mut out = Map::new();
    let mut contents = Vec::new();
    for (i, m) in req.messages.iter().enumerate() {
        let role = role_name(m.role, "model", i, T)?;
        let at = format!("messages[{i}]");
        let parts = m
            .parts
            .iter()
            .map(|p| part_json(p, &at))
            .collect::<Result<Vec<_>, _>>()?;
        contents.push(json!({"role": role, "parts": parts}));
    }
    out.insert("contents".into(), Value::Array(contents));
    if !req.system.is_empty() {
        let parts: Vec<Value> = req.system.iter().map(|s| json!({"text": s})).collect();
        out.insert("systemInstruction".into(), json!({"parts": parts}));
    }
    if !req.tools.is_empty() {
        let decls: Vec<Value> = req
            .tools
            .iter()
            .map(|t| tool_json(t, "parametersJsonSchema"))
            .collect();
        out.insert("tools".into(), json!([{"functionDeclarations": decls}]));
    }
    if req.parallel_tool_calls == Some(false) {
        return Err(cannot("`parallel_tool_calls: false`", T));
    }
    if let Some(c) = &req.tool_choice {
        let f = match c {
            ToolChoice::Auto => json!({"mode": "AUTO"}),
            ToolChoice::None => json!({"mode": "NONE"}),
            ToolChoice::Required => json!({"mode": "ANY"}),
            ToolChoice::Tool(n) => json!({"mode": "ANY", "allowedFunctionNames": [n]}),
        };
        out.insert("toolConfig".into(), json!({"functionCallingConfig": f}));
    }
    let mut g = Map::new();
    put(&mut g, "temperature", req.temperature);
    put(&mut g, "topP", req.top_p);
    put(&mut g, "topK", req.top_k);
    put(&mut g, "maxOutputTokens", req.max_tokens);
    if !req.stop.is_empty() {
        g.insert("stopSequences".into(), json!(req.stop));
    }
    put(&mut g, "presencePenalty", req.presence_penalty);
    put(&mut g, "frequencyPenalty", req.frequency_penalty);
    put(&mut g, "seed", req.seed);
    match &req.output {
        OutputFormat::Text => {}
        OutputFormat::Json => {
            g.insert("responseMimeType".into(), "application/json".into());
        }
        OutputFormat::JsonSchema { schema, .. } => {
            g.insert("responseMimeType".into(), "application/json".into());
            g.insert("responseJsonSchema".into(), schema.clone());
        }
    }
    if !g.is_empty() {
        out.insert("generationConfig".into(), Value::Object(g));
    }
    if req.user.is_some() {
        return Err(cannot("an end-user id (`user`, `metadata.user_id`)", T));
    }
    serde_json::to_vec(&Value::Object(out)).map_err(|e| e.to_string())
}

fn part_json(p: &Part, at: &str) -> Result<Value, String> {
    Ok(match p {
        Part::Text(t) => json!({"text": t}),
        Part::Image(Image::Inline {
            media_type,
            data,
            detail,
        }) => {
            crate::anthropic::no_detail(detail.as_deref(), at)?;
            json!({"inlineData": {"mimeType": media_type, "data": data}})
        }
        Part::Image(Image::Url { url, detail }) => {
            crate::anthropic::no_detail(detail.as_deref(), at)?;
            let media = media_type_of(url).ok_or_else(|| {
                cannot(
                    &format!("an image URL without a known image extension ({at}); send it inline as a data: URL"),
                    T,
                )
            })?;
            json!({"fileData": {"mimeType": media, "fileUri": url}})
        }
        Part::ToolCall {
            id,
            name,
            arguments,
        } => json!({"functionCall": {
            "id": id, "name": name,
            "args": arguments_object(arguments, &format!("{at}: the arguments of tool call `{id}`"))?,
        }}),
        Part::ToolResult {
            id,
            name,
            content,
            is_error,
        } => {
            if name.is_empty() {
                return Err(format!(
                    "{at}: the tool result for `{id}` names no function and no earlier call has that id; Gemini needs the function's name"
                ));
            }
            let mut text = String::new();
            for c in content {
                match c {
                    Part::Text(t) => text.push_str(t),
                    _ => return Err(cannot(&format!("an image inside a tool result ({at})"), T)),
                }
            }
            let response = if *is_error {
                json!({"error": text})
            } else {
                match serde_json::from_str::<Value>(&text) {
                    Ok(v @ Value::Object(_)) => v,
                    _ => json!({"content": text}),
                }
            };
            json!({"functionResponse": {"id": id, "name": name, "response": response}})
        }
    })
}

pub fn usage_of(u: &Value) -> Option<TokenUsage> {
    if !u.is_object() {
        return None;
    }
    let n = |k: &str| u[k].as_u64().unwrap_or(0);
    Some(TokenUsage {
        input: n("promptTokenCount") + n("toolUsePromptTokenCount"),
        output: n("candidatesTokenCount") + n("thoughtsTokenCount"),
        cached: n("cachedContentTokenCount"),
    })
}

fn usage_json(u: &TokenUsage) -> Value {
    let mut v = json!({
        "promptTokenCount": u.input,
        "candidatesTokenCount": u.output,
        "totalTokenCount": u.input + u.output,
    });
    if u.cached > 0 {
        v["cachedContentTokenCount"] = u.cached.into();
    }
    v
}

fn stop_reason(s: &str, called: bool) -> StopReason {
    match s {
        "MAX_TOKENS" => StopReason::MaxTokens,
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => {
            StopReason::ContentFilter
        }
        _ if called => StopReason::ToolUse,
        _ => StopReason::EndTurn,
    }
}

fn finish_reason(s: &StopReason) -> &'static str {
    match s {
        StopReason::MaxTokens => "MAX_TOKENS",
        StopReason::ContentFilter => "SAFETY",
        _ => "STOP",
    }
}

/// Text and calls of the first candidate; `calls` numbers calls without ids, which get ids
/// unique to the answer (`call_{responseId}_{n}`) so a conversation never repeats one.
fn candidate_parts(v: &Value, calls: &mut usize, parts: &mut Vec<Part>) {
    let prefix = match v["responseId"].as_str() {
        Some(r) if !r.is_empty() => format!("call_{r}_"),
        _ => "call_".to_owned(),
    };
    for p in v["candidates"][0]["content"]["parts"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if p["thought"] == true {
            continue;
        }
        if let Some(t) = p["text"].as_str() {
            parts.push(Part::Text(t.to_owned()));
        } else if let Some(f) = p.get("functionCall") {
            let id = f["id"]
                .as_str()
                .map_or_else(|| synthetic_id(&prefix, *calls), str::to_owned);
            *calls += 1;
            parts.push(Part::ToolCall {
                id,
                name: f["name"].as_str().unwrap_or_default().to_owned(),
                arguments: f
                    .get("args")
                    .map_or_else(|| "{}".to_owned(), Value::to_string),
            });
        }
    }
}

pub fn decode_response(bytes: &[u8]) -> Result<ChatResponse, String> {
    let v = body(bytes)?;
    let mut parts = Vec::new();
    let mut calls = 0;
    candidate_parts(&v, &mut calls, &mut parts);
    Ok(ChatResponse {
        id: v["responseId"].as_str().unwrap_or_default().to_owned(),
        model: v["modelVersion"].as_str().unwrap_or_default().to_owned(),
        parts,
        stop: stop_reason(
            v["candidates"][0]["finishReason"]
                .as_str()
                .unwrap_or("STOP"),
            calls > 0,
        ),
        usage: usage_of(&v["usageMetadata"]),
    })
}

pub fn encode_response(r: &ChatResponse, reply: &Reply<'_>) -> Vec<u8> {
    let mut parts = Vec::new();
    for p in &r.parts {
        match p {
            Part::Text(t) => parts.push(json!({"text": t})),
            Part::ToolCall {
                id,
                name,
                arguments,
            } => parts.push(json!({"functionCall": {
                "id": id, "name": name,
                "args": serde_json::from_str::<Value>(arguments).unwrap_or_else(|_| json!({})),
            }})),
            _ => {}
        }
    }
    let mut v = json!({
        "candidates": [{
            "content": {"role": "model", "parts": parts},
            "finishReason": finish_reason(&r.stop),
            "index": 0,
        }],
        "modelVersion": reply.model,
        "responseId": r.id,
        "provider": reply.provider,
    });
    if let Some(u) = &r.usage {
        v["usageMetadata"] = usage_json(u);
    }
    serde_json::to_vec(&v).unwrap_or_default()
}

/// Reads a Gemini SSE stream (one `GenerateContentResponse` per event, no end marker).
#[derive(Default)]
pub struct StreamDecoder {
    started: bool,
    calls: usize,
    finished: bool,
    ended: bool,
}

impl StreamDecoder {
    pub fn frame(&mut self, frame: &SseFrame, out: &mut Vec<StreamEvent>) {
        let Some(v) = frame
            .data
            .as_deref()
            .and_then(|d| serde_json::from_str::<Value>(d).ok())
        else {
            return;
        };
        if let Some(e) = v.get("error") {
            let m = e["message"].as_str().unwrap_or("the provider failed");
            out.push(StreamEvent::Error(m.to_owned()));
            return;
        }
        let usage = usage_of(&v["usageMetadata"]);
        if !self.started {
            self.started = true;
            // Usage first: Gemini reports the prompt's tokens from the first chunk, and an
            // Anthropic client's `message_start` can carry them.
            if let Some(u) = usage {
                out.push(StreamEvent::Usage(u));
            }
            out.push(StreamEvent::Start {
                id: v["responseId"].as_str().unwrap_or_default().to_owned(),
                model: v["modelVersion"].as_str().unwrap_or_default().to_owned(),
            });
        }
        let mut parts = Vec::new();
        let before = self.calls;
        candidate_parts(&v, &mut self.calls, &mut parts);
        for (k, p) in parts.into_iter().enumerate() {
            match p {
                Part::Text(t) if !t.is_empty() => out.push(StreamEvent::Text(t)),
                Part::ToolCall {
                    id,
                    name,
                    arguments,
                } => {
                    let index = before + k;
                    out.push(StreamEvent::ToolCallStart { index, id, name });
                    out.push(StreamEvent::ToolCallArgs {
                        index,
                        fragment: arguments,
                    });
                }
                _ => {}
            }
        }
        if let Some(r) = v["candidates"][0]["finishReason"].as_str() {
            self.finished = true;
            out.push(StreamEvent::Finish(stop_reason(r, self.calls > 0)));
        }
        if let Some(u) = usage {
            out.push(StreamEvent::Usage(u));
        }
    }

    /// Gemini's stream simply ends: complete once a `finishReason` came (usage comes with
    /// every chunk, so it proves nothing).
    pub fn finish(&mut self, _usage_seen: bool, out: &mut Vec<StreamEvent>) {
        if self.finished && !self.ended {
            self.ended = true;
            out.push(StreamEvent::End);
        }
    }
}

/// Writes canonical events as Gemini stream chunks. Text goes out as it comes; a function
/// call goes out whole (Gemini has no partial arguments) when the answer ends.
pub struct StreamEncoder {
    id: String,
    model: String,
    provider: String,
    calls: Vec<(usize, String, String, String)>,
    stop: Option<StopReason>,
    usage: Option<TokenUsage>,
    ended: bool,
}

impl StreamEncoder {
    pub fn new(reply: &Reply<'_>) -> Self {
        Self {
            id: String::new(),
            model: reply.model.to_owned(),
            provider: reply.provider.to_owned(),
            calls: Vec::new(),
            stop: None,
            usage: None,
            ended: false,
        }
    }

    fn chunk(&self, parts: Vec<Value>, finish: Option<&StopReason>) -> Bytes {
        let mut cand = json!({"content": {"role": "model", "parts": parts}, "index": 0});
        if let Some(f) = finish {
            cand["finishReason"] = finish_reason(f).into();
        }
        let mut v = json!({
            "candidates": [cand], "modelVersion": self.model, "responseId": self.id,
            "provider": self.provider,
        });
        if let (Some(u), Some(_)) = (&self.usage, finish) {
            v["usageMetadata"] = usage_json(u);
        }
        data_frame(&serde_json::to_vec(&v).unwrap_or_default())
    }

    pub fn event(&mut self, e: &StreamEvent, out: &mut Vec<Bytes>) {
        if self.ended {
            return;
        }
        match e {
            StreamEvent::Start { id, .. } => self.id.clone_from(id),
            StreamEvent::Text(t) => out.push(self.chunk(vec![json!({"text": t})], None)),
            StreamEvent::ToolCallStart { index, id, name } => {
                self.calls
                    .push((*index, id.clone(), name.clone(), String::new()));
            }
            StreamEvent::ToolCallArgs { index, fragment } => {
                if let Some(c) = self.calls.iter_mut().find(|c| c.0 == *index) {
                    c.3.push_str(fragment);
                }
            }
            StreamEvent::Finish(r) => self.stop = Some(r.clone()),
            StreamEvent::Usage(u) => self.usage = Some(*u),
            StreamEvent::End => {
                let mut parts: Vec<Value> = self
                    .calls
                    .iter()
                    .map(|(_, id, name, args)| {
                        let args = serde_json::from_str::<Value>(if args.is_empty() {
                            "{}"
                        } else {
                            args
                        })
                        .unwrap_or_else(|_| json!({}));
                        json!({"functionCall": {"id": id, "name": name, "args": args}})
                    })
                    .collect();
                if parts.is_empty() {
                    parts.push(json!({"text": ""}));
                }
                let stop = self.stop.clone().unwrap_or(StopReason::EndTurn);
                out.push(self.chunk(parts, Some(&stop)));
                self.ended = true;
            }
            // Written by the relay, in the client's protocol (`translate::error_frames`).
            StreamEvent::Error(_) => self.ended = true,
        }
    }
}

/// A Gemini stream passed through: `modelVersion` shows the public model; usage, text and the
/// finish read on the side.
pub struct PassThrough {
    model: String,
    pub finished: bool,
}

impl PassThrough {
    pub fn new(public_model: &str) -> Self {
        Self {
            model: public_model.to_owned(),
            finished: false,
        }
    }

    pub fn frame(&mut self, frame: &SseFrame) -> crate::anthropic::Seen {
        let mut seen = crate::anthropic::Seen {
            frame: frame.raw.clone(),
            usage: None,
            text: String::new(),
            done: false,
            error: None,
        };
        let Some(data) = frame.data.as_deref() else {
            return seen;
        };
        let Ok(mut obj) = crate::RawMap::borrowed(data.as_bytes()) else {
            return seen;
        };
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            return seen;
        };
        if let Some(e) = v.get("error") {
            seen.error = Some(
                e["message"]
                    .as_str()
                    .unwrap_or("the provider failed")
                    .to_owned(),
            );
            return seen;
        }
        seen.usage = usage_of(&v["usageMetadata"]);
        let mut parts = Vec::new();
        candidate_parts(&v, &mut 0, &mut parts);
        seen.text = generated_text(&parts);
        if v["candidates"][0]["finishReason"].is_string() {
            self.finished = true;
        }
        if obj.contains("modelVersion") {
            obj.set_str("modelVersion", &self.model);
            seen.frame = data_frame(&obj.to_vec());
        }
        seen
    }
}
