//! Rewriting OpenAI streaming chunks on their way to the client: the public model name, the
//! usage chunk kept or stripped as the client asked, and the usage captured on the side.

use super::TokenUsage;
use crate::json::{RawMap, Splice};
use crate::sse::{data_frame, SseFrame};
use bytes::Bytes;
use serde::Deserialize;
use std::borrow::Cow;

/// What to do with one upstream frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkAction {
    /// Send these bytes to the client.
    Forward(Bytes),
    /// Send nothing (the usage chunk the client did not ask for).
    Drop,
    /// `data: [DONE]`: forward it; the stream is complete.
    Done(Bytes),
}

#[derive(Debug, Clone)]
pub struct ChunkRewriter {
    public_model: String,
    provider: String,
    /// The client did not ask for usage, so the chunk the gateway requested is removed again.
    strip_usage: bool,
}

impl ChunkRewriter {
    pub fn new(public_model: &str, client_wants_usage: bool, provider: &str) -> Self {
        Self {
            public_model: public_model.to_owned(),
            provider: provider.to_owned(),
            strip_usage: !client_wants_usage,
        }
    }

    /// Rewrites one frame; returns the action, any usage the frame carried, and the text it
    /// generated (for a token count when no usage ever arrives).
    pub fn rewrite(&self, frame: &SseFrame) -> (ChunkAction, Option<TokenUsage>, String) {
        let Some(data) = frame.data.as_deref() else {
            return (ChunkAction::Forward(frame.raw.clone()), None, String::new());
        };
        if data.trim() == "[DONE]" {
            return (
                ChunkAction::Done(data_frame(b"[DONE]")),
                None,
                String::new(),
            );
        }
        let Ok(mut chunk) = RawMap::borrowed(data.as_bytes()) else {
            return (ChunkAction::Forward(frame.raw.clone()), None, String::new());
        };
        let chars = generated_text(&chunk);
        let usage = chunk.get("usage").and_then(TokenUsage::from_raw);
        let mut strip = false;
        if self.strip_usage && chunk.contains("usage") {
            let no_choices = chunk.get("choices").is_none_or(|c| c.get().trim() == "[]");
            if usage.is_some() && no_choices {
                return (ChunkAction::Drop, usage, chars);
            }
            strip = true;
        }
        if !chunk.contains("model") && !strip {
            return (ChunkAction::Forward(frame.raw.clone()), usage, chars);
        }
        let set = [
            ("model", Splice::Str(&self.public_model)),
            ("provider", Splice::Str(&self.provider)),
        ];
        // The usual chunk, one line of JSON with a model: its frame is written in one go.
        if !strip && memchr::memchr(b'\n', data.as_bytes()).is_none() {
            let mut out = Vec::with_capacity(data.len() + 64);
            out.extend_from_slice(b"data: ");
            if chunk.splice_into(&set, &mut out) {
                out.extend_from_slice(b"\n\n");
                return (ChunkAction::Forward(Bytes::from(out)), usage, chars);
            }
        }
        if strip {
            chunk.remove("usage");
        }
        let set = if chunk.contains("model") {
            &set[..]
        } else {
            &[]
        };
        (
            ChunkAction::Forward(data_frame(&chunk.spliced(set))),
            usage,
            chars,
        )
    }
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(borrow, default)]
    delta: Option<Delta<'a>>,
    #[serde(borrow, default)]
    message: Option<Delta<'a>>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tool_calls: Option<Vec<ToolCall<'a>>>,
}

#[derive(Deserialize)]
struct ToolCall<'a> {
    #[serde(borrow, default)]
    function: Option<Function<'a>>,
}

#[derive(Deserialize)]
struct Function<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    arguments: Option<Cow<'a, str>>,
}

/// The generated text in a chunk or a whole response: content, reasoning, tool names and
/// arguments (chat `delta` or `message`), or `text` (completions).
pub fn generated_text(chunk: &RawMap<'_>) -> String {
    let mut out = String::new();
    let Ok(Some(choices)) = chunk.get_as::<Vec<Choice<'_>>>("choices") else {
        return out;
    };
    let mut push = |s: &Option<Cow<'_, str>>| {
        if let Some(s) = s {
            out.push_str(s);
        }
    };
    for c in &choices {
        if let Some(d) = c.delta.as_ref().or(c.message.as_ref()) {
            push(&d.content);
            push(&d.reasoning_content);
            for f in d
                .tool_calls
                .iter()
                .flatten()
                .filter_map(|t| t.function.as_ref())
            {
                push(&f.name);
                push(&f.arguments);
            }
        }
        push(&c.text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sse::SseDecoder;

    fn frames(s: &str) -> Vec<SseFrame> {
        SseDecoder::new().push(s.as_bytes()).unwrap()
    }

    #[test]
    fn usage_chunk_is_captured_and_stripped_when_not_requested() {
        let f = frames(concat!(
            "data: {\"id\":\"c\",\"model\":\"gemma3\",\"choices\":[{\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}\n\n",
            "data: {\"id\":\"c\",\"model\":\"gemma3\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"total_tokens\":4}}\n\n",
            "data: [DONE]\n\n"
        ));
        let r = ChunkRewriter::new("fast", false, "local");
        let (a0, u0, c0) = r.rewrite(&f[0]);
        assert_eq!(c0, "Hi");
        assert_eq!(
            a0,
            ChunkAction::Forward(Bytes::from_static(
                b"data: {\"id\":\"c\",\"model\":\"fast\",\"choices\":[{\"delta\":{\"content\":\"Hi\"}}],\"provider\":\"local\"}\n\n"
            ))
        );
        assert_eq!(u0, None);
        let (a1, u1, _) = r.rewrite(&f[1]);
        assert_eq!(a1, ChunkAction::Drop);
        assert_eq!(
            u1,
            Some(TokenUsage {
                input: 3,
                output: 1,
                cached: 0
            })
        );
        assert!(matches!(r.rewrite(&f[2]).0, ChunkAction::Done(_)));
    }

    #[test]
    fn usage_chunk_is_kept_when_the_client_asked() {
        let f = frames("data: {\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n\n");
        let (a, u, _) = ChunkRewriter::new("fast", true, "local").rewrite(&f[0]);
        assert_eq!(
            a,
            ChunkAction::Forward(Bytes::from_static(
                b"data: {\"model\":\"fast\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1},\"provider\":\"local\"}\n\n"
            ))
        );
        assert_eq!(u.unwrap().input, 3);
    }

    #[test]
    fn usage_on_a_content_chunk_is_removed_but_the_content_kept() {
        let f = frames("data: {\"model\":\"m\",\"choices\":[{\"delta\":{}}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n\n");
        let (a, u, _) = ChunkRewriter::new("fast", false, "local").rewrite(&f[0]);
        assert_eq!(
            a,
            ChunkAction::Forward(Bytes::from_static(
                b"data: {\"model\":\"fast\",\"choices\":[{\"delta\":{}}],\"provider\":\"local\"}\n\n"
            ))
        );
        assert!(u.is_some());
    }
}
