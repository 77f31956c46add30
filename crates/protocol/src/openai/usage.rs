//! Token usage as OpenAI reports it.

use serde::Deserialize;
use serde_json::value::RawValue;

/// Token counts of one request, in the gateway's terms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenUsage {
    pub input: u64,
    pub output: u64,
    /// Prompt tokens served from cache; a subset of `input`.
    pub cached: u64,
}

#[derive(Deserialize)]
struct Wire {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    prompt_tokens_details: Option<Details>,
}

#[derive(Deserialize)]
struct Details {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

impl TokenUsage {
    /// Reads an OpenAI `usage` object; `None` for `null` or anything unreadable.
    pub fn from_raw(raw: &RawValue) -> Option<Self> {
        let w: Wire = serde_json::from_str::<Option<Wire>>(raw.get()).ok()??;
        Some(Self {
            input: w.prompt_tokens,
            output: w.completion_tokens,
            cached: w
                .prompt_tokens_details
                .and_then(|d| d.cached_tokens)
                .unwrap_or(0),
        })
    }
}
