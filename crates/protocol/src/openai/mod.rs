//! The OpenAI wire format: endpoints, usage, errors and streaming chunks. Requests and
//! responses pass through as `RawObject`s; only the fields the gateway needs are typed.

pub mod convert;
mod error;
mod routing;
mod stream;
mod usage;

pub use error::{error_body, UpstreamErrorBody};
pub use routing::{MaxPrice, ProviderPrefs, RequestNeeds, RouteExtensions, SortBy};
pub use stream::{generated_text, ChunkAction, ChunkRewriter};
pub use usage::TokenUsage;

use crate::json::{RawMap, Splice};

/// The OpenAI endpoints the gateway relays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    ChatCompletions,
    Completions,
    Embeddings,
}

impl Endpoint {
    /// Path below the provider's base URL (which ends in `/v1` or equivalent).
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "/chat/completions",
            Endpoint::Completions => "/completions",
            Endpoint::Embeddings => "/embeddings",
        }
    }

    /// Name recorded on usage events.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "chat.completions",
            Endpoint::Completions => "completions",
            Endpoint::Embeddings => "embeddings",
        }
    }

    pub fn can_stream(self) -> bool {
        !matches!(self, Endpoint::Embeddings)
    }

    /// The field that must be present besides `model`.
    pub fn required_field(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "messages",
            Endpoint::Completions => "prompt",
            Endpoint::Embeddings => "input",
        }
    }
}

/// What the gateway reads from a client's request body; the body itself stays raw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestFacts {
    pub model: String,
    pub stream: bool,
    /// The client asked for the usage chunk (`stream_options.include_usage`).
    pub wants_stream_usage: bool,
    /// `max_completion_tokens` or `max_tokens`.
    pub max_output_tokens: Option<u64>,
}

#[derive(serde::Deserialize)]
struct StreamOptions {
    include_usage: Option<bool>,
}

impl RequestFacts {
    /// Checks the fields the endpoint requires and reads the ones the gateway acts on.
    pub fn read(endpoint: Endpoint, body: &RawMap<'_>) -> Result<Self, String> {
        let model: String = body
            .get_as("model")?
            .ok_or_else(|| "missing required field `model`".to_owned())?;
        if model.is_empty() {
            return Err("field `model` must not be empty".to_owned());
        }
        let required = endpoint.required_field();
        // Present and not null; the value itself was checked as JSON when the body was read.
        if body.get(required).is_none_or(|v| v.get() == "null") {
            return Err(format!("missing required field `{required}`"));
        }
        let stream = body.get_as::<bool>("stream")?.unwrap_or(false);
        if stream && !endpoint.can_stream() {
            return Err(format!("`stream` is not supported on {}", endpoint.name()));
        }
        let wants_stream_usage = body
            .get_as::<StreamOptions>("stream_options")?
            .and_then(|o| o.include_usage)
            .unwrap_or(false);
        let max_output_tokens = match body.get_as::<u64>("max_completion_tokens")? {
            Some(n) => Some(n),
            None => body.get_as::<u64>("max_tokens")?,
        };
        Ok(Self {
            model,
            stream,
            wants_stream_usage,
            max_output_tokens,
        })
    }
}

/// The text a request sends the model, in any of the three protocols: strings under
/// `content`, `text`, `prompt`, `input` and `system` at any depth (messages, Anthropic blocks,
/// Gemini parts), and tool definitions as written. Used to count prompt tokens when an
/// upstream reports none, and by `count_tokens`.
pub fn prompt_text(body: &[u8]) -> String {
    const TEXT_KEYS: [&str; 5] = ["content", "text", "prompt", "input", "system"];
    fn collect(v: &serde_json::Value, take: bool, out: &mut String) {
        match v {
            serde_json::Value::String(s) if take => {
                out.push_str(s);
                out.push('\n');
            }
            serde_json::Value::Array(items) => items.iter().for_each(|i| collect(i, take, out)),
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    if k == "tools" {
                        out.push_str(&v.to_string());
                    } else {
                        collect(v, TEXT_KEYS.contains(&k.as_str()), out);
                    }
                }
            }
            _ => {}
        }
    }
    let mut out = String::new();
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        collect(&v, false, &mut out);
    }
    out
}

/// Prepares a client body for an upstream: the upstream's model name, and for streams the
/// usage chunk requested so the gateway always learns the token counts.
pub fn upstream_body(body: &RawMap<'_>, facts: &RequestFacts, upstream_model: &str) -> Vec<u8> {
    let set = [
        ("model", Splice::Str(upstream_model)),
        ("stream_options", Splice::Json(r#"{"include_usage":true}"#)),
    ];
    if facts.stream && !facts.wants_stream_usage {
        body.spliced(&set)
    } else {
        body.spliced(&set[..1])
    }
}

/// A non-streaming answer rewritten for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientResponse {
    pub body: Vec<u8>,
    /// The usage the upstream reported, if any.
    pub usage: Option<TokenUsage>,
    /// The generated text, for a token count when `usage` is missing (empty otherwise).
    pub generated_text: String,
}

/// Rewrites a non-streaming response for the client: `model` shows the public name and
/// `provider` the provider that answered (as OpenRouter does). `None` when the body is not a
/// JSON object.
pub fn client_response(body: &[u8], public_model: &str, provider: &str) -> Option<ClientResponse> {
    let obj = RawMap::borrowed(body).ok()?;
    let usage = obj.get("usage").and_then(TokenUsage::from_raw);
    // Only needed to count tokens when the upstream reported none.
    let generated_text = if usage.is_none() {
        generated_text(&obj)
    } else {
        String::new()
    };
    let set = [
        ("model", Splice::Str(public_model)),
        ("provider", Splice::Str(provider)),
    ];
    // The model is named back only where the upstream named one.
    let set = if obj.contains("model") {
        &set[..]
    } else {
        &set[1..]
    };
    let body_out = obj.spliced(set);
    Some(ClientResponse {
        body: body_out,
        usage,
        generated_text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(s: &str) -> crate::RawObject {
        crate::RawObject::parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn facts_require_model_and_the_endpoint_field() {
        let e = RequestFacts::read(Endpoint::ChatCompletions, &obj(r#"{"messages":[]}"#));
        assert_eq!(e.unwrap_err(), "missing required field `model`");
        let e = RequestFacts::read(Endpoint::ChatCompletions, &obj(r#"{"model":"fast"}"#));
        assert_eq!(e.unwrap_err(), "missing required field `messages`");
        let e = RequestFacts::read(
            Endpoint::Embeddings,
            &obj(r#"{"model":"e","input":"x","stream":true}"#),
        );
        assert!(e.unwrap_err().contains("stream"));
        let f = RequestFacts::read(
            Endpoint::ChatCompletions,
            &obj(r#"{"model":"fast","messages":[],"stream":true,"max_tokens":9,"stream_options":{"include_usage":true}}"#),
        )
        .unwrap();
        assert_eq!(
            f,
            RequestFacts {
                model: "fast".into(),
                stream: true,
                wants_stream_usage: true,
                max_output_tokens: Some(9)
            }
        );
    }

    #[test]
    fn upstream_body_rewrites_model_and_asks_for_usage_only_when_streaming() {
        let cases = [
            (
                r#"{"model":"fast","messages":[],"stream":true,"seed":7}"#,
                r#"{"model":"gemma3","messages":[],"stream":true,"seed":7,"stream_options":{"include_usage":true}}"#,
            ),
            (
                r#"{"model":"fast","messages":[]}"#,
                r#"{"model":"gemma3","messages":[]}"#,
            ),
            (
                r#"{"model":"fast","stream":true,"stream_options":{"include_usage":false},"messages":[]}"#,
                r#"{"model":"gemma3","stream":true,"stream_options":{"include_usage":true},"messages":[]}"#,
            ),
        ];
        for (body, expected) in cases {
            // Spliced from the client's bytes, and written out from an owned map: the same.
            let borrowed = RawMap::borrowed(body.as_bytes()).unwrap();
            for b in [borrowed.clone(), borrowed.into_owned()] {
                let f = RequestFacts::read(Endpoint::ChatCompletions, &b).unwrap();
                let out = upstream_body(&b, &f, "gemma3");
                assert_eq!(String::from_utf8(out).unwrap(), expected);
            }
        }
    }

    #[test]
    fn prompt_text_gathers_what_the_model_reads() {
        let body = br#"{"model":"m","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"Hi"},{"type":"image_url","image_url":{"url":"x"}}]}]}"#;
        assert_eq!(prompt_text(body), "Be brief.\nHi\n");
        assert_eq!(prompt_text(br#"{"model":"e","input":["a","b"]}"#), "a\nb\n");
        assert_eq!(prompt_text(b"nope"), "");
    }

    #[test]
    fn client_response_shows_public_model_and_reads_usage() {
        let r = client_response(
            br#"{"id":"x","model":"gemma3","choices":[{"message":{"content":"Hey"}}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}"#,
            "fast",
            "local",
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(r.body).unwrap(),
            r#"{"id":"x","model":"fast","choices":[{"message":{"content":"Hey"}}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7},"provider":"local"}"#
        );
        assert_eq!(
            r.usage,
            Some(TokenUsage {
                input: 5,
                output: 2,
                cached: 0
            })
        );
        assert_eq!(r.generated_text, "", "not needed: usage was reported");
        let r = client_response(
            br#"{"model":"gemma3","choices":[{"message":{"content":"Hey"}}]}"#,
            "fast",
            "local",
        )
        .unwrap();
        assert_eq!((r.usage, r.generated_text.as_str()), (None, "Hey"));
        assert!(client_response(b"<html>", "fast", "local").is_none());
    }
}
