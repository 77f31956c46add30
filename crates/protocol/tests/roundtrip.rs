//! Property tests of the canonical form: a request or answer written in any protocol and read
//! back is the same value (for what every protocol can express), and no input, however broken,
//! makes a parser panic (the same entry points the cargo-fuzz targets drive).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use protocol::canonical::*;
use protocol::openai::TokenUsage;
use protocol::translate::Reply;
use protocol::{anthropic, fuzzing, gemini, openai::convert as oa};
use serde_json::json;

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ,.!?é€\n\"\\\\]{1,24}"
}

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z_]{0,11}"
}

/// A JSON object as compact text with sorted keys (what every encoder writes back).
fn json_object() -> impl Strategy<Value = String> {
    prop::collection::btree_map(name(), text(), 0..3).prop_map(|m| json!(m).to_string())
}

fn image() -> impl Strategy<Value = Part> {
    (
        prop::sample::select(vec!["image/png", "image/jpeg", "image/webp"]),
        "[A-Za-z0-9+/]{4,16}",
    )
        .prop_map(|(m, d)| {
            Part::Image(Image::Inline {
                media_type: m.to_owned(),
                data: format!("{d}=="),
                detail: None,
            })
        })
}

/// A conversation: user turns (text and images) and assistant turns (text, then calls) whose
/// calls are answered in the next user turn, by id and name.
fn messages() -> impl Strategy<Value = Vec<Message>> {
    let turn = (
        prop::collection::vec(prop_oneof![text().prop_map(Part::Text), image()], 1..3),
        prop::option::of(text()),
        prop::collection::vec((name(), json_object(), json_object()), 0..3),
    );
    prop::collection::vec(turn, 1..4).prop_map(|turns| {
        let mut out = Vec::new();
        let mut n = 0;
        for (user, said, calls) in turns {
            // A question after tool answers is part of their turn (the canonical form).
            match out.last_mut() {
                Some(Message {
                    role: Role::User,
                    parts,
                }) => parts.extend(user),
                _ => out.push(Message {
                    role: Role::User,
                    parts: user,
                }),
            }
            let mut parts: Vec<Part> = said.into_iter().map(Part::Text).collect();
            let mut results = Vec::new();
            for (name, args, answer) in calls {
                n += 1;
                let id = format!("call_{n}");
                parts.push(Part::ToolCall {
                    id: id.clone(),
                    name: name.clone(),
                    arguments: args,
                });
                results.push(Part::ToolResult {
                    id,
                    name,
                    content: vec![Part::Text(answer)],
                    is_error: false,
                });
            }
            if parts.is_empty() {
                continue;
            }
            out.push(Message {
                role: Role::Assistant,
                parts,
            });
            if !results.is_empty() {
                out.push(Message {
                    role: Role::User,
                    parts: results,
                });
            }
        }
        out
    })
}

fn quarter() -> impl Strategy<Value = f64> {
    (0u32..8).prop_map(|q| f64::from(q) * 0.25)
}

fn request(json_output: bool) -> impl Strategy<Value = ChatRequest> {
    let tools = prop::collection::vec((name(), prop::option::of(text())), 0..3);
    (
        prop::collection::vec(text(), 0..3),
        messages(),
        tools,
        prop::option::of(0u8..4),
        1u64..5000,
        prop::option::of(quarter()),
        prop::option::of(quarter()),
        prop::collection::vec(text(), 0..3),
        0u8..3,
    )
        .prop_map(
            move |(system, messages, tools, choice, max, temperature, top_p, stop, output)| {
                let tools: Vec<ToolDef> = tools
                    .into_iter()
                    .map(|(name, description)| ToolDef {
                        name,
                        description,
                        parameters: json!({"type": "object", "properties": {"x": {"type": "string"}}}),
                    })
                    .collect();
                let tool_choice = choice.map(|c| match c {
                    0 => ToolChoice::Auto,
                    1 => ToolChoice::Required,
                    2 => ToolChoice::None,
                    _ => ToolChoice::Tool(tools.first().map_or("f".to_owned(), |t| t.name.clone())),
                });
                ChatRequest {
                    model: "m".into(),
                    system,
                    messages,
                    tools,
                    tool_choice,
                    max_tokens: Some(max),
                    temperature,
                    top_p,
                    stop,
                    output: match (json_output, output) {
                        (true, 1) => OutputFormat::Json,
                        (true, 2) => OutputFormat::JsonSchema {
                            name: "response".into(),
                            schema: json!({"type": "object"}),
                            strict: None,
                        },
                        _ => OutputFormat::Text,
                    },
                    ..ChatRequest::default()
                }
            },
        )
}

fn response() -> impl Strategy<Value = ChatResponse> {
    (
        text(),
        prop::collection::vec((name(), json_object()), 0..3),
        0u8..3,
        (0u64..100_000, 0u64..10_000, 0u64..100),
    )
        .prop_map(|(said, calls, stop, (input, output, cached))| {
            let mut parts = vec![Part::Text(said)];
            let called = !calls.is_empty();
            for (i, (name, arguments)) in calls.into_iter().enumerate() {
                parts.push(Part::ToolCall {
                    id: format!("call_{i}"),
                    name,
                    arguments,
                });
            }
            ChatResponse {
                id: "resp-1".into(),
                model: "public".into(),
                parts,
                stop: match (called, stop) {
                    (true, _) => StopReason::ToolUse,
                    (false, 0) => StopReason::EndTurn,
                    (false, 1) => StopReason::MaxTokens,
                    _ => StopReason::ContentFilter,
                },
                usage: Some(TokenUsage {
                    input: input + cached,
                    output,
                    cached,
                }),
            }
        })
}

const REPLY: Reply<'static> = Reply {
    model: "public",
    provider: "p",
    created: 1,
};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn requests_survive_openai(req in request(true)) {
        let wire = oa::encode_request(&req, "m").unwrap();
        prop_assert_eq!(oa::decode_request(&wire, "test").unwrap(), req);
    }

    #[test]
    fn requests_survive_anthropic(req in request(false)) {
        let wire = anthropic::encode_request(&req, "m").unwrap();
        prop_assert_eq!(anthropic::decode_request(&wire, "test").unwrap(), req);
    }

    #[test]
    fn requests_survive_gemini(req in request(true)) {
        let wire = gemini::encode_request(&req).unwrap();
        prop_assert_eq!(gemini::decode_request(&wire, "m", false, "test").unwrap(), req);
    }

    #[test]
    fn answers_survive_every_protocol(r in response()) {
        let back = oa::decode_response(&oa::encode_response(&r, &REPLY)).unwrap();
        prop_assert_eq!(&back, &r);
        let back = anthropic::decode_response(&anthropic::encode_response(&r, &REPLY), false).unwrap();
        prop_assert_eq!(&back, &r);
        let back = gemini::decode_response(&gemini::encode_response(&r, &REPLY)).unwrap();
        prop_assert_eq!(&back, &r);
    }

    #[test]
    fn no_bytes_make_a_parser_panic(data in prop::collection::vec(any::<u8>(), 0..512)) {
        fuzzing::request(Protocol::OpenAi, &data);
        fuzzing::request(Protocol::Anthropic, &data);
        fuzzing::request(Protocol::Gemini, &data);
        fuzzing::response(&data);
        fuzzing::stream(&data);
    }

    /// Random JSON reaches deeper than random bytes: shapes the parsers must reject by value.
    #[test]
    fn no_json_makes_a_parser_panic(v in json_value(), a in any::<u8>(), b in any::<u8>()) {
        let text = v.to_string();
        for from in [Protocol::OpenAi, Protocol::Anthropic, Protocol::Gemini] {
            fuzzing::request(from, text.as_bytes());
        }
        let mut framed = vec![a, b];
        framed.extend_from_slice(text.as_bytes());
        fuzzing::response(&framed);
        let mut sse = vec![a, b, 7];
        sse.extend_from_slice(format!("data: {text}\n\nevent: message_delta\ndata: {text}\n\n").as_bytes());
        fuzzing::stream(&sse);
    }
}

/// JSON values built from the field names the parsers look for.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let keys = prop::sample::select(vec![
        "model",
        "messages",
        "role",
        "content",
        "type",
        "text",
        "tool_calls",
        "function",
        "arguments",
        "name",
        "id",
        "tools",
        "contents",
        "parts",
        "functionCall",
        "args",
        "functionResponse",
        "response",
        "max_tokens",
        "system",
        "tool_choice",
        "image_url",
        "url",
        "source",
        "input",
        "tool_use_id",
        "choices",
        "delta",
        "candidates",
        "usageMetadata",
        "usage",
        "index",
        "content_block",
        "generationConfig",
        "stream",
        "user",
        "assistant",
        "tool",
        "model",
        "image",
        "base64",
        "tool_use",
        "tool_result",
    ]);
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        keys.clone().prop_map(serde_json::Value::from),
        "[a-z{}\\[\\]\":,]{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(keys.clone(), inner, 0..6).prop_map(|m| {
                serde_json::Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    })
}
