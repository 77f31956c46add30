//! The fake server's Gemini side: `POST /v1beta/models/{model}:generateContent` and
//! `:streamGenerateContent?alt=sse` in the Gemini API's exact wire format (camelCase JSON;
//! one `GenerateContentResponse` per SSE event, `\r\n\r\n` between them, no end marker; the
//! last carries `finishReason` and the full `usageMetadata`). Unknown fields and a missing
//! `contents` are refused with 400 in Gemini's error shape.

use crate::fake_openai::{
    async_stream, next, scripted_failure, Behavior, CancelGuard, Shared, COMPLETION_TOKENS,
    PROMPT_TOKENS, WORDS,
};
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const FIELDS: [&str; 8] = [
    "contents",
    "systemInstruction",
    "tools",
    "toolConfig",
    "generationConfig",
    "safetySettings",
    "cachedContent",
    "model",
];

fn error(code: u16, status: &str, message: &str) -> Response {
    (
        StatusCode::from_u16(code).unwrap(),
        axum::Json(json!({"error": {"code": code, "message": message, "status": status}})),
    )
        .into_response()
}

fn check(body: &Value) -> Option<String> {
    let obj = body.as_object()?;
    if let Some(k) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Some(format!(
            "Invalid JSON payload received. Unknown name \"{k}\": Cannot find field."
        ));
    }
    let contents = body["contents"].as_array().filter(|c| !c.is_empty());
    if contents.is_none() {
        return Some("* GenerateContentRequest.contents: contents is not specified".into());
    }
    for c in contents.into_iter().flatten() {
        if !matches!(c["role"].as_str(), None | Some("user" | "model")) {
            return Some("Please use a valid role: user, model.".into());
        }
    }
    None
}

fn usage(output: u64) -> Value {
    json!({"promptTokenCount": PROMPT_TOKENS, "candidatesTokenCount": output,
           "totalTokenCount": PROMPT_TOKENS + output})
}

fn response(model: &str, parts: Value, finish: Option<&str>, output: u64) -> Value {
    let mut cand = json!({"content": {"role": "model", "parts": parts}, "index": 0});
    if let Some(f) = finish {
        cand["finishReason"] = json!(f);
    }
    json!({"candidates": [cand], "usageMetadata": usage(output), "modelVersion": model,
           "responseId": "resp-fake"})
}

pub(crate) async fn generate(
    State(shared): State<Arc<Shared>>,
    Path(tail): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let path = format!("/v1beta/models/{tail}");
    let (behavior, body) = next(&shared, &path, headers, raw);
    let Some((model, method)) = tail.rsplit_once(':') else {
        return error(404, "NOT_FOUND", "no such method");
    };
    let stream = match method {
        "generateContent" => false,
        "streamGenerateContent" => true,
        _ => return error(404, "NOT_FOUND", "no such method"),
    };
    if let Some(problem) = check(&body) {
        return error(400, "INVALID_ARGUMENT", &problem);
    }
    let forced = &body["toolConfig"]["functionCallingConfig"];
    let call = match &behavior {
        Behavior::ToolCall { name, arguments } => Some((name.clone(), arguments.clone())),
        _ if forced["mode"] == "ANY" => Some((
            forced["allowedFunctionNames"][0]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            json!({"answer": "fake"}),
        )),
        _ => None,
    };
    if let Some(r) = scripted_failure(&shared, &behavior).await {
        return r;
    }
    let parts = match &call {
        Some((name, args)) => json!([{"functionCall": {"name": name, "args": args}}]),
        None => json!([{"text": WORDS.concat()}]),
    };
    if !stream {
        return axum::Json(response(model, parts, Some("STOP"), COMPLETION_TOKENS)).into_response();
    }
    if !query.unwrap_or_default().split('&').any(|p| p == "alt=sse") {
        return error(
            400,
            "INVALID_ARGUMENT",
            "this fake streams only with alt=sse",
        );
    }
    let (cut, every) = match behavior {
        Behavior::CutAfter(n) => (Some(n), Duration::ZERO),
        Behavior::Slow { every, .. } => (None, every),
        _ => (None, Duration::ZERO),
    };
    let model = model.to_owned();
    let events = async_stream(move |tx| async move {
        let mut guard = CancelGuard {
            shared,
            finished: false,
        };
        let chunks: Vec<Value> = match call {
            Some(_) => vec![response(&model, parts, Some("STOP"), COMPLETION_TOKENS)],
            None => WORDS
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    let last = i + 1 == WORDS.len();
                    let out = if last {
                        COMPLETION_TOKENS
                    } else {
                        u64::try_from(i).unwrap() + 1
                    };
                    response(&model, json!([{"text": w}]), last.then_some("STOP"), out)
                })
                .collect(),
        };
        for (i, c) in chunks.into_iter().enumerate() {
            if cut == Some(i) {
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
            if tx
                .send(Ok(Bytes::from(format!("data: {c}\r\n\r\n"))))
                .await
                .is_err()
            {
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
