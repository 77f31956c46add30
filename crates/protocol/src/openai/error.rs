//! OpenAI's error body: `{"error":{"message","type","param","code"}}`.

use serde::Deserialize;
use serde_json::json;

/// The error body as clients of the OpenAI API expect it.
pub fn error_body(message: &str, kind: &str, code: &str) -> Vec<u8> {
    let body = json!({
        "error": { "message": message, "type": kind, "param": null, "code": code }
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

/// An upstream's error answer, read leniently: servers that claim OpenAI compatibility differ
/// (a string `error`, a numeric `code`, no `type`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamErrorBody {
    pub message: String,
    pub code: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Wire {
    Nested { error: Nested },
    Flat { error: String },
    Message { message: String },
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Nested {
    Object {
        message: Option<String>,
        code: Option<serde_json::Value>,
        /// Gemini's symbolic status (`INVALID_ARGUMENT`), clearer than its numeric `code`.
        status: Option<String>,
    },
    Text(String),
}

impl UpstreamErrorBody {
    pub fn parse(body: &[u8]) -> Option<Self> {
        let (message, code) = match serde_json::from_slice::<Wire>(body).ok()? {
            Wire::Nested {
                error:
                    Nested::Object {
                        message,
                        code,
                        status,
                    },
            } => (
                message.unwrap_or_default(),
                status.map(serde_json::Value::String).or(code),
            ),
            Wire::Nested {
                error: Nested::Text(m),
            }
            | Wire::Flat { error: m }
            | Wire::Message { message: m } => (m, None),
        };
        let code = code.and_then(|c| match c {
            serde_json::Value::String(s) if !s.is_empty() => Some(s),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        });
        Some(Self { message, code })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_error_shapes_servers_send() {
        let openai = br#"{"error":{"message":"context too long","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#;
        assert_eq!(
            UpstreamErrorBody::parse(openai),
            Some(UpstreamErrorBody {
                message: "context too long".into(),
                code: Some("context_length_exceeded".into())
            })
        );
        let ollama = br#"{"error":"model 'x' not found"}"#;
        assert_eq!(
            UpstreamErrorBody::parse(ollama).unwrap().message,
            "model 'x' not found"
        );
        let gemini =
            br#"{"error":{"code":400,"message":"bad schema","status":"INVALID_ARGUMENT"}}"#;
        assert_eq!(
            UpstreamErrorBody::parse(gemini).unwrap().code.as_deref(),
            Some("INVALID_ARGUMENT")
        );
        let anthropic =
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        assert_eq!(
            UpstreamErrorBody::parse(anthropic).unwrap().message,
            "Overloaded"
        );
        let vllm = br#"{"message":"bad","object":"error"}"#;
        assert_eq!(UpstreamErrorBody::parse(vllm).unwrap().message, "bad");
        assert_eq!(UpstreamErrorBody::parse(b"oops"), None);
    }
}
