//! Golden fixtures: for each protocol, a request, a complete answer and a stream (with tools
//! and images), and what each is when written for the other two protocols. A refusal is
//! recorded as `{"error": message}`. `UPDATE_GOLDEN=1 cargo test -p protocol --test golden`
//! rewrites the expectations (then read the diff: it is the review).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use protocol::openai::{Endpoint, RequestFacts};
use protocol::sse::SseDecoder;
use protocol::translate::{self, Inbound, Reply, StreamRelay};
use protocol::{Protocol, RawObject};
use serde_json::{json, Map, Value};
use std::collections::VecDeque;
use std::path::PathBuf;

const ALL: [Protocol; 3] = [Protocol::OpenAi, Protocol::Anthropic, Protocol::Gemini];
const REPLY: Reply<'static> = Reply {
    model: "public",
    provider: "prov",
    created: 1_700_000_000,
};

fn inbound(from: Protocol, input: &Value) -> Inbound<'static> {
    let body = RawObject::parse(input.to_string().as_bytes()).unwrap();
    match from {
        Protocol::OpenAi => Inbound {
            protocol: from,
            endpoint: Endpoint::ChatCompletions,
            facts: RequestFacts::read(Endpoint::ChatCompletions, &body).unwrap(),
            body,
        },
        Protocol::Anthropic => Inbound::anthropic(body).unwrap(),
        Protocol::Gemini => Inbound::gemini("public", false, body).unwrap(),
    }
}

fn request(from: Protocol, to: Protocol, input: &Value) -> Value {
    match inbound(from, input).translate(to, "upstream-model", 4096) {
        Ok(out) => serde_json::from_slice(&out.body).unwrap(),
        Err(e) => json!({ "error": e }),
    }
}

fn response(from: Protocol, to: Protocol, input: &Value) -> Value {
    let r = translate::response(to, from, input.to_string().as_bytes(), &REPLY, false).unwrap();
    serde_json::from_slice(&r.body).unwrap()
}

/// The client's stream as its frames, each split into `event` and parsed `data`.
fn stream(from: Protocol, to: Protocol, input: &Value) -> Value {
    let mut relay = StreamRelay::new(to, from, &REPLY, true, false);
    let mut decoder = SseDecoder::new();
    let mut out = VecDeque::new();
    let mut usage = false;
    for chunk in input.as_array().unwrap() {
        for f in decoder.push(chunk.as_str().unwrap().as_bytes()).unwrap() {
            usage |= relay.frame(&f, &mut out).usage.is_some();
        }
    }
    let complete = relay.ended(usage, &mut out);
    assert!(complete, "{from:?} → {to:?} did not complete");
    let frames: Vec<Value> = out
        .iter()
        .map(|b| {
            let text = std::str::from_utf8(b).unwrap();
            let mut frame = Map::new();
            for line in text.lines() {
                if let Some(e) = line.strip_prefix("event: ") {
                    frame.insert("event".into(), e.into());
                }
                if let Some(d) = line.strip_prefix("data: ") {
                    let data = serde_json::from_str(d).unwrap_or_else(|_| Value::String(d.into()));
                    frame.insert("data".into(), data);
                }
            }
            Value::Object(frame)
        })
        .collect();
    Value::Array(frames)
}

fn check(kind: &str, run: fn(Protocol, Protocol, &Value) -> Value) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let update = std::env::var("UPDATE_GOLDEN").is_ok();
    for from in ALL {
        let path = dir.join(format!("{kind}_{}.json", from.name()));
        let mut fixture: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let input = fixture["input"].clone();
        let mut actual = Map::new();
        for to in ALL.into_iter().filter(|t| *t != from) {
            actual.insert(to.name().into(), run(from, to, &input));
        }
        if update {
            fixture["expected"] = Value::Object(actual);
            std::fs::write(
                &path,
                serde_json::to_string_pretty(&fixture).unwrap() + "\n",
            )
            .unwrap();
            continue;
        }
        for (to, got) in actual {
            assert_eq!(
                got,
                fixture["expected"][&to],
                "{kind} {} → {to} differs from {}",
                from.name(),
                path.display()
            );
        }
    }
}

#[test]
fn requests_match_their_golden_translations() {
    check("request", request);
}

#[test]
fn responses_match_their_golden_translations() {
    check("response", response);
}

#[test]
fn streams_match_their_golden_translations() {
    check("stream", stream);
}
