//! The fake server's Anthropic side: `POST /v1/messages` in the Messages API's exact wire
//! format. It checks requests the way Anthropic does (an `anthropic-version` header,
//! `max_tokens`, `messages`, known fields only, non-empty text blocks) and answers 400 in
//! Anthropic's error shape otherwise, so a translator's mistake fails a test.
//!
//! A forced tool (`tool_choice: {type: "tool"}`) is called with `{"answer": "fake"}`.

use crate::fake_openai::{
    async_stream, next, scripted_failure, Behavior, CancelGuard, Shared, COMPLETION_TOKENS,
    PROMPT_TOKENS, WORDS,
};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const FIELDS: [&str; 15] = [
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
    "thinking",
    "service_tier",
    "container",
];

fn invalid(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"type": "error", "error": {"type": "invalid_request_error", "message": message}})),
    )
        .into_response()
}

/// What the real API would refuse, if anything.
fn check(headers: &HeaderMap, body: &Value) -> Option<String> {
    if !headers.contains_key("anthropic-version") {
        return Some("anthropic-version: header is required".into());
    }
    let Some(obj) = body.as_object() else {
        return Some("body must be a JSON object".into());
    };
    if let Some(k) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Some(format!("{k}: Extra inputs are not permitted"));
    }
    if !body["max_tokens"].is_u64() {
        return Some("max_tokens: Field required".into());
    }
    let Some(messages) = body["messages"].as_array() else {
        return Some("messages: Field required".into());
    };
    for (i, m) in messages.iter().enumerate() {
        if !matches!(m["role"].as_str(), Some("user" | "assistant")) {
            return Some(format!("messages.{i}.role: must be user or assistant"));
        }
        if let Some(blocks) = m["content"].as_array() {
            for b in blocks {
                if b["type"] == "text" && b["text"].as_str().is_none_or(str::is_empty) {
                    return Some(format!(
                        "messages.{i}: text content blocks must be non-empty"
                    ));
                }
                if b["type"] == "tool_use" && !b["input"].is_object() {
                    return Some(format!("messages.{i}: tool_use.input must be an object"));
                }
            }
        }
    }
    None
}

fn usage(output: u64) -> Value {
    json!({
        "input_tokens": PROMPT_TOKENS, "output_tokens": output,
        "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
    })
}

fn event(name: &str, v: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {v}\n\n"))
}

pub(crate) async fn messages(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let (behavior, body) = next(&shared, "/v1/messages", headers.clone(), raw);
    if let Some(problem) = check(&headers, &body) {
        return invalid(&problem);
    }
    let model = body["model"].as_str().unwrap_or("unknown").to_owned();
    let stream = body["stream"].as_bool().unwrap_or(false);
    let call = match (&behavior, &body["tool_choice"]) {
        (Behavior::ToolCall { name, arguments }, _) => Some((name.clone(), arguments.clone())),
        (_, c) if c["type"] == "tool" => Some((
            c["name"].as_str().unwrap_or_default().to_owned(),
            json!({"answer": "fake"}),
        )),
        _ => None,
    };
    if let Some(r) = scripted_failure(&shared, &behavior).await {
        return r;
    }
    if stream {
        let cut = match behavior {
            Behavior::CutAfter(n) => Some(n),
            _ => None,
        };
        let every = match behavior {
            Behavior::Slow { every, .. } => every,
            _ => Duration::ZERO,
        };
        return stream_answer(shared, model, call, cut, every);
    }
    if let Behavior::Costly { delay, .. } = behavior {
        tokio::time::sleep(delay).await;
    }
    let (content, stop) = match &call {
        Some((name, input)) => (
            json!([{"type": "tool_use", "id": "toolu_fake1", "name": name, "input": input}]),
            "tool_use",
        ),
        None => (
            json!([{"type": "text", "text": WORDS.concat()}]),
            "end_turn",
        ),
    };
    axum::Json(json!({
        "id": "msg_fake", "type": "message", "role": "assistant", "model": model,
        "content": content, "stop_reason": stop, "stop_sequence": null,
        "usage": usage(COMPLETION_TOKENS),
    }))
    .into_response()
}

fn stream_answer(
    shared: Arc<Shared>,
    model: String,
    call: Option<(String, Value)>,
    cut: Option<usize>,
    every: Duration,
) -> Response {
    let events = async_stream(move |tx| async move {
        let mut guard = CancelGuard {
            shared,
            finished: false,
        };
        let mut send = Vec::new();
        send.push(event(
            "message_start",
            &json!({"type": "message_start", "message": {
            "id": "msg_fake", "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": null, "stop_sequence": null, "usage": usage(1)}}),
        ));
        send.push(event("ping", &json!({"type": "ping"})));
        let stop = if let Some((name, input)) = &call {
            let args = input.to_string();
            let (a, b) = args.split_at(args.len() / 2);
            send.push(event("content_block_start", &json!({"type": "content_block_start", "index": 0,
                "content_block": {"type": "tool_use", "id": "toolu_fake1", "name": name, "input": {}}})));
            for piece in [a, b] {
                send.push(event(
                    "content_block_delta",
                    &json!({"type": "content_block_delta", "index": 0,
                    "delta": {"type": "input_json_delta", "partial_json": piece}}),
                ));
            }
            send.push(event(
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": 0}),
            ));
            "tool_use"
        } else {
            send.push(event(
                "content_block_start",
                &json!({"type": "content_block_start", "index": 0,
                "content_block": {"type": "text", "text": ""}}),
            ));
            for w in WORDS {
                send.push(event(
                    "content_block_delta",
                    &json!({"type": "content_block_delta", "index": 0,
                    "delta": {"type": "text_delta", "text": w}}),
                ));
            }
            send.push(event(
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": 0}),
            ));
            "end_turn"
        };
        send.push(event(
            "message_delta",
            &json!({"type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": null},
            "usage": {"output_tokens": COMPLETION_TOKENS}}),
        ));
        send.push(event("message_stop", &json!({"type": "message_stop"})));
        for (i, e) in send.into_iter().enumerate() {
            // `CutAfter(n)`: message_start, ping, block start, then n deltas, then the cut.
            if cut.is_some_and(|n| i == 3 + n) {
                guard.finished = true;
                crate::fake_openai::cut_stream(&tx).await;
                return;
            }
            if !every.is_zero() && i > 0 {
                tokio::select! {
                    () = tokio::time::sleep(every) => {}
                    () = tx.closed() => return,
                }
            }
            if tx.send(Ok(e)).await.is_err() {
                return;
            }
        }
        guard.finished = true;
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(events))
        .unwrap()
}
