use crate::support::{assert_error, TestApp};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use testkit::fake_openai::{Behavior, COMPLETION_TOKENS, PROMPT_TOKENS, WORDS};

fn stream_body(model: &str) -> Value {
    json!({ "model": model, "stream": true, "messages": [{ "role": "user", "content": "Say hello" }] })
}

/// The same request without streaming.
fn answer_body(model: &str) -> Value {
    json!({ "model": model, "messages": [{ "role": "user", "content": "Say hello" }] })
}

/// The `data:` payloads of an SSE body, in order.
fn events(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            e.strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not a data event: {e:?}"))
                .to_owned()
        })
        .collect()
}

fn content(events: &[String]) -> String {
    events
        .iter()
        .filter(|e| *e != "[DONE]")
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

#[tokio::test]
async fn stream_is_relayed_in_openai_format_without_the_usage_chunk_it_did_not_ask_for() {
    let app = TestApp::start().await;
    let (token, key) = app.user_with_key("s1@example.com").await;
    let r = app.chat(&key, stream_body("fast")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    assert_eq!(r.headers()["x-switchyard-provider"], "fake");
    let ev = events(&r.text().await.unwrap());
    assert_eq!(
        ev.len(),
        1 + WORDS.len() + 1 + 1,
        "role, words, finish, [DONE]: {ev:?}"
    );
    assert_eq!(ev.last().unwrap(), "[DONE]");
    assert_eq!(content(&ev), WORDS.concat());
    for e in &ev[..ev.len() - 1] {
        let v: Value = serde_json::from_str(e).unwrap();
        assert_eq!(v["model"], "fast");
        assert!(v.get("usage").is_none(), "usage stripped: {e}");
    }
    let finish: Value = serde_json::from_str(&ev[ev.len() - 2]).unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");

    let sent = &app.fake.received()[0].body;
    assert_eq!(
        sent["stream_options"],
        json!({ "include_usage": true }),
        "the gateway asked for usage"
    );
    let e = &app.usage_events(&token, 1).await[0];
    assert_eq!(
        (e["input_tokens"].as_u64(), e["output_tokens"].as_u64()),
        (Some(PROMPT_TOKENS), Some(COMPLETION_TOKENS))
    );
    assert_eq!(e["stream"], true);
    assert_eq!(e["status"], "ok");
    assert_eq!(e["estimated"], false);
    assert_eq!(e["cost_usd"], "0.0000032");
}

#[tokio::test]
async fn the_usage_chunk_is_kept_when_the_client_asks_for_it() {
    let app = TestApp::start().await;
    let (_, key) = app.user_with_key("s2@example.com").await;
    let mut body = stream_body("fast");
    body["stream_options"] = json!({ "include_usage": true });
    let ev = events(&app.chat(&key, body).await.text().await.unwrap());
    let usage: Value = serde_json::from_str(&ev[ev.len() - 2]).unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["prompt_tokens"], PROMPT_TOKENS);
    assert_eq!(usage["model"], "fast");
    assert_eq!(ev.last().unwrap(), "[DONE]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_forwarded_as_they_arrive_not_buffered() {
    let app = TestApp::start().await;
    let (_, key) = app.user_with_key("s3@example.com").await;
    app.fake.script([Behavior::Slow {
        chunks: 5,
        every: Duration::from_millis(300),
    }]);
    let started = Instant::now();
    let r = app.chat(&key, stream_body("fast")).await;
    let mut body = r.bytes_stream();
    let mut seen = String::new();
    let mut first_word_at = None;
    while let Some(chunk) = body.next().await {
        seen.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        if first_word_at.is_none() && seen.contains(WORDS[0]) {
            first_word_at = Some(started.elapsed());
        }
    }
    let total = started.elapsed();
    let first = first_word_at.expect("saw the first word");
    assert!(
        total >= Duration::from_millis(1500),
        "the fake took {total:?}"
    );
    assert!(
        first < Duration::from_millis(1000),
        "first word after {first:?} of {total:?}: buffered"
    );
}

#[tokio::test]
async fn an_upstream_dying_mid_stream_ends_with_an_error_event_and_bills_what_was_seen() {
    let app = TestApp::start().await;
    let (token, key) = app.user_with_key("s4@example.com").await;
    app.fake.script([Behavior::CutAfter(2)]);
    let r = app.chat(&key, stream_body("fast")).await;
    assert_eq!(r.status(), 200);
    let ev = events(&r.text().await.unwrap());
    assert_eq!(content(&ev), WORDS[..2].concat());
    let err: Value = serde_json::from_str(&ev[ev.len() - 2]).unwrap();
    assert_eq!(err["error"]["code"], "upstream_error");
    assert_eq!(err["error"]["type"], "upstream_error");
    assert_eq!(ev.last().unwrap(), "[DONE]");
    let e = &app.usage_events(&token, 1).await[0];
    assert_eq!(e["status"], "partial");
    assert_eq!(e["estimated"], true);
    assert_eq!(
        e["output_tokens"],
        engine::tokens::count(&WORDS[..2].concat())
    );
    assert_eq!(e["error_code"], "upstream_error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_going_away_cancels_the_upstream_and_is_billed_partially() {
    let app = TestApp::start().await;
    let (token, key) = app.user_with_key("s5@example.com").await;
    app.fake.script([Behavior::Slow {
        chunks: 100,
        every: Duration::from_millis(50),
    }]);
    let r = app.chat(&key, stream_body("fast")).await;
    let mut body = r.bytes_stream();
    let mut seen = String::new();
    while !seen.contains(WORDS[1]) {
        seen.push_str(std::str::from_utf8(&body.next().await.unwrap().unwrap()).unwrap());
    }
    drop(body);
    let left = Instant::now();
    let deadline = left + Duration::from_secs(5);
    while app.fake.streams_cancelled() == 0 {
        assert!(Instant::now() < deadline, "upstream stream never cancelled");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let lag = app.fake.cancelled_at()[0].saturating_duration_since(left);
    assert!(lag < Duration::from_millis(100), "cancelled after {lag:?}");
    let e = &app.usage_events(&token, 1).await[0];
    assert_eq!(e["status"], "partial");
    assert_eq!(e["error_code"], "client_disconnected");
    assert_eq!(e["estimated"], true);
    assert!(
        e["output_tokens"].as_u64().unwrap() >= 1,
        "tokens produced so far are billed"
    );
    // The abandoned stream's upstream connection was closed, not kept for the next request.
    let r = app.chat(&key, answer_body("fast")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.fake.connections(), 2);
}

#[tokio::test]
async fn an_upstream_error_before_the_stream_starts_is_a_plain_error_response() {
    let app = TestApp::start().await;
    let (_, key) = app.user_with_key("s6@example.com").await;
    app.fake.script(std::iter::repeat_n(
        Behavior::Status(503, json!({ "error": { "message": "overloaded" } })),
        3,
    ));
    let msg = assert_error(
        app.chat(&key, stream_body("fast")).await,
        503,
        "upstream_unavailable",
    )
    .await;
    assert!(msg.contains("overloaded"), "{msg}");
}

#[tokio::test]
async fn streams_and_answers_one_after_another_share_one_upstream_connection() {
    let app = TestApp::start().await;
    let (_, key) = app.user_with_key("reuse@example.com").await;
    for _ in 0..3 {
        let r = app.chat(&key, stream_body("fast")).await;
        assert_eq!(r.status(), 200);
        assert!(r.text().await.unwrap().ends_with("data: [DONE]\n\n"));
        let r = app.chat(&key, answer_body("fast")).await;
        assert_eq!(r.status(), 200);
        r.text().await.unwrap();
    }
    assert_eq!(
        app.fake.connections(),
        1,
        "the stream's connection went back to the pool after its last event"
    );
}
