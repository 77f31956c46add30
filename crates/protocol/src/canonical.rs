//! The one internal representation a chat request, its answer and its stream pass through
//! when the client's protocol and the provider's differ. Each protocol module reads its wire
//! format into these types and writes them back out; nothing here knows a wire format.
//!
//! Reading never fails for a valid request of the source protocol: whatever it says has a
//! place here. Writing fails, with a message naming the field, when the target protocol has
//! no way to say something, so nothing is dropped silently.

use crate::openai::TokenUsage;
use serde_json::Value;

/// The wire protocols Switchyard speaks, on either side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    OpenAi,
    Anthropic,
    Gemini,
}

impl Protocol {
    /// From a provider's configured `kind`.
    pub fn from_kind(kind: &str) -> Option<Self> {
        match kind {
            "openai" => Some(Self::OpenAi),
            "anthropic" => Some(Self::Anthropic),
            "gemini" => Some(Self::Gemini),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
            Self::Gemini => "gemini",
        }
    }

    /// How error messages name a provider speaking this protocol.
    pub fn title(self) -> &'static str {
        match self {
            Self::OpenAi => "OpenAI-compatible",
            Self::Anthropic => "Anthropic",
            Self::Gemini => "Gemini",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatRequest {
    pub model: String,
    /// System prompt blocks, in order.
    pub system: Vec<String>,
    pub messages: Vec<Message>,
    pub tools: Vec<ToolDef>,
    pub tool_choice: Option<ToolChoice>,
    /// `false` forbids more than one tool call per turn.
    pub parallel_tool_calls: Option<bool>,
    pub max_tokens: Option<u64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<u64>,
    pub stop: Vec<String>,
    pub output: OutputFormat,
    pub stream: bool,
    /// An end-user id for the provider's abuse tracking.
    pub user: Option<String>,
    pub seed: Option<i64>,
    pub presence_penalty: Option<f64>,
    pub frequency_penalty: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
    /// A system message in the middle of a conversation (OpenAI allows it).
    System,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: Role,
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Text(String),
    Image(Image),
    /// A call the assistant made. `arguments` is JSON text (an object).
    ToolCall {
        id: String,
        name: String,
        arguments: String,
    },
    /// The caller's answer to a tool call. `name` is empty when the source did not say and
    /// it could not be found from the call.
    ToolResult {
        id: String,
        name: String,
        content: Vec<Part>,
        is_error: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Image {
    Url {
        url: String,
        /// OpenAI's `detail` hint, when one was given.
        detail: Option<String>,
    },
    Inline {
        media_type: String,
        /// Base64, as it came.
        data: String,
        detail: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ToolDef {
    pub name: String,
    pub description: Option<String>,
    /// JSON schema of the arguments.
    pub parameters: Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    Auto,
    /// Some tool must be called.
    Required,
    None,
    Tool(String),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub enum OutputFormat {
    #[default]
    Text,
    /// Any JSON object.
    Json,
    JsonSchema {
        name: String,
        schema: Value,
        strict: Option<bool>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    EndTurn,
    MaxTokens,
    /// One of the request's stop sequences ended the answer (which one, when known).
    StopSequence(Option<String>),
    ToolUse,
    ContentFilter,
}

/// A complete, non-streamed answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    pub id: String,
    pub model: String,
    /// Text and tool calls, in order.
    pub parts: Vec<Part>,
    pub stop: StopReason,
    pub usage: Option<TokenUsage>,
}

impl ChatResponse {
    /// What the model generated, for a token count when no usage was reported.
    pub fn generated_text(&self) -> String {
        generated_text(&self.parts)
    }
}

/// The generated text of answer parts: text, and the names and arguments of tool calls.
pub fn generated_text(parts: &[Part]) -> String {
    let mut out = String::new();
    for p in parts {
        match p {
            Part::Text(t) => out.push_str(t),
            Part::ToolCall {
                name, arguments, ..
            } => {
                out.push_str(name);
                out.push_str(arguments);
            }
            _ => {}
        }
    }
    out
}

/// One step of a streamed answer.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// The answer began.
    Start {
        id: String,
        model: String,
    },
    Text(String),
    /// A tool call began; `index` counts the answer's tool calls from 0.
    ToolCallStart {
        index: usize,
        id: String,
        name: String,
    },
    /// More of a tool call's JSON arguments.
    ToolCallArgs {
        index: usize,
        fragment: String,
    },
    Finish(StopReason),
    /// Usage so far (the last one seen is the total).
    Usage(TokenUsage),
    /// The answer is complete.
    End,
    /// The provider reported an error mid-stream.
    Error(String),
}

/// Default ids for answers and calls that came without one.
pub(crate) fn synthetic_id(prefix: &str, n: usize) -> String {
    format!("{prefix}{n}")
}
