use crate::support::{assert_error, chat_body, TestApp};
use serde_json::{json, Value};
use testkit::fake_openai::{Behavior, COMPLETION_TOKENS, PROMPT_TOKENS, WORDS};

#[tokio::test]
async fn chat_body_passes_through_with_only_the_model_rewritten() {
    let app = TestApp::start().await;
    let (_, key) = app.user_with_key("pass@example.com").await;
    let sent = json!({
        "model": "fast",
        "messages": [{ "role": "user", "content": "What's the weather in Paris? \u{e9}" }],
        "tools": [{ "type": "function", "function": { "name": "get_weather", "parameters": { "type": "object", "properties": { "city": { "type": "string" } } } } }],
        "tool_choice": "auto",
        "response_format": { "type": "json_object" },
        "n": 2,
        "seed": 42,
        "logprobs": true,
        "temperature": 0.25,
        "a_field_from_the_future": { "nested": [1, 2.5, null] }
    });
    let r = app.chat(&key, sent.clone()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-provider"], "fake");
    assert_eq!(r.headers()["content-type"], "application/json");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["model"], "fast", "clients see the public name");
    assert_eq!(body["choices"][0]["message"]["content"], WORDS.concat());
    assert_eq!(body["usage"]["prompt_tokens"], PROMPT_TOKENS);

    let received = app.fake.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].path, "/v1/chat/completions");
    let mut expected = sent;
    expected["model"] = json!("gemma3:4b");
    assert_eq!(received[0].body, expected, "every other field untouched");
    assert!(
        received[0].body.get("stream_options").is_none(),
        "non-streaming requests are not changed"
    );
    let authority = app.fake.base_url();
    let authority = authority
        .trim_start_matches("http://")
        .trim_end_matches("/v1");
    assert_eq!(
        received[0].headers["host"], authority,
        "Host names the upstream"
    );
    assert_eq!(received[0].headers.get_all("host").iter().count(), 1);
}

#[tokio::test]
async fn each_call_writes_a_usage_event_with_exact_cost() {
    let app = TestApp::start().await;
    let (token, key) = app.user_with_key("cost@example.com").await;
    assert_eq!(app.chat(&key, chat_body("pro")).await.status(), 200);
    let events = app.usage_events(&token, 1).await;
    let e = &events[0];
    assert_eq!(e["model"], "pro");
    assert_eq!(e["upstream_model"], "qwen3:32b");
    assert_eq!(e["provider"], "fake");
    assert_eq!(e["endpoint"], "chat.completions");
    assert_eq!(e["input_tokens"], PROMPT_TOKENS);
    assert_eq!(e["output_tokens"], COMPLETION_TOKENS);
    // 11 × 0.50/M + 7 × 1.50/M = 0.0000055 + 0.0000105
    assert_eq!(e["cost_usd"], "0.000016");
    assert_eq!(e["status"], "ok");
    assert_eq!(e["http_status"], 200);
    assert_eq!(e["error_code"], Value::Null);
    assert_eq!(e["estimated"], false);
    assert_eq!(e["stream"], false);
    assert!(e["latency_ms"].as_u64().is_some());
}

#[tokio::test]
async fn completions_and_embeddings_are_relayed_and_billed() {
    let app = TestApp::start().await;
    let (token, key) = app.user_with_key("emb@example.com").await;
    let r = app
        .post_v1(
            &key,
            "/embeddings",
            json!({ "model": "embed", "input": ["a", "b"], "encoding_format": "float" }),
        )
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["model"], "embed");
    assert_eq!(body["data"].as_array().unwrap().len(), 2);
    let r = app
        .post_v1(
            &key,
            "/completions",
            json!({ "model": "fast", "prompt": "Once upon", "max_tokens": 5 }),
        )
        .await;
    assert_eq!(r.status(), 200);
    let received = app.fake.received();
    assert_eq!(received[0].path, "/v1/embeddings");
    assert_eq!(received[0].body["encoding_format"], "float");
    assert_eq!(received[1].path, "/v1/completions");
    assert_eq!(received[1].body["prompt"], "Once upon");

    let events = app.usage_events(&token, 2).await;
    let emb = events
        .iter()
        .find(|e| e["endpoint"] == "embeddings")
        .unwrap();
    // 11 × 0.05/M
    assert_eq!(emb["cost_usd"], "0.00000055");
    assert_eq!(emb["output_tokens"], 0);
    assert!(events
        .iter()
        .any(|e| e["endpoint"] == "completions" && e["status"] == "ok"));
}

#[tokio::test]
async fn a_model_is_only_served_on_the_endpoint_it_supports() {
    let app = TestApp::start().await;
    let (_, key) = app.user_with_key("kind@example.com").await;
    let msg = assert_error(
        app.chat(&key, chat_body("embed")).await,
        400,
        "invalid_body",
    )
    .await;
    assert!(msg.contains("/v1/embeddings"), "{msg}");
    let r = app
        .post_v1(
            &key,
            "/embeddings",
            json!({ "model": "fast", "input": "x" }),
        )
        .await;
    assert_error(r, 400, "invalid_body").await;
    assert!(app.fake.received().is_empty());
}

#[tokio::test]
async fn upstream_client_errors_reach_the_client_with_their_status_and_message() {
    let app = TestApp::start().await;
    let (token, key) = app.user_with_key("u4xx@example.com").await;
    app.fake.script([Behavior::Status(
        400,
        json!({ "error": { "message": "This model's maximum context length is 8192 tokens", "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded" } }),
    )]);
    let msg = assert_error(
        app.chat(&key, chat_body("fast")).await,
        400,
        "context_length_exceeded",
    )
    .await;
    assert_eq!(msg, "This model's maximum context length is 8192 tokens");
    app.fake.script([Behavior::Status(
        404,
        json!({ "error": "model 'gemma3:4b' not found" }),
    )]);
    // A 404 is the deployment's fault, not the request's: that deployment gets no more
    // tries, and with no other deployment the model is unavailable.
    let msg = assert_error(
        app.chat(&key, chat_body("fast")).await,
        503,
        "upstream_unavailable",
    )
    .await;
    assert!(msg.contains("1 try failed"), "{msg}");
    assert!(msg.contains("model 'gemma3:4b' not found"), "{msg}");
    assert_eq!(app.fake.received().len(), 2, "the 404 was not retried");

    let events = app.usage_events(&token, 2).await;
    for e in &events {
        assert_eq!(e["status"], "error");
        assert_eq!(e["cost_usd"], "0.00", "failed calls cost nothing");
    }
    assert_eq!(events[1]["error_code"], "context_length_exceeded");
    assert_eq!(events[1]["http_status"], 400);
}

#[tokio::test]
async fn upstream_refusing_the_gateways_credentials_is_a_gateway_error() {
    let app = TestApp::start().await;
    let (_, key) = app.user_with_key("cred@example.com").await;
    app.fake.script([Behavior::Status(401, json!({ "error": { "message": "Incorrect API key provided: sk-upstr***", "code": "invalid_api_key" } }))]);
    // The provider's only key is benched, so there is nothing left to try.
    let msg = assert_error(
        app.chat(&key, chat_body("fast")).await,
        503,
        "upstream_unavailable",
    )
    .await;
    assert!(msg.contains("refused the gateway's credentials"), "{msg}");
    assert!(msg.contains("`fast`"), "{msg}");
    assert!(
        !msg.contains("sk-upstr"),
        "the upstream's message about its key is not relayed"
    );
}

#[tokio::test]
async fn when_every_try_fails_the_client_gets_503_504_or_429_naming_the_model() {
    // Two tries per request, and a breaker that never opens, so each failure is seen alone.
    let app = TestApp::with(crate::support::Options {
        first_byte_timeout: 0.5,
        extra_toml: "[routing]\nmax_attempts = 2\nbreaker_threshold = 100\n".to_owned(),
        ..Default::default()
    })
    .await
    .unwrap();
    let (token, key) = app.user_with_key("fail@example.com").await;
    let twice = |b: Behavior| app.fake.script([b.clone(), b]);
    twice(Behavior::Garbage);
    let msg = assert_error(
        app.chat(&key, chat_body("fast")).await,
        503,
        "upstream_unavailable",
    )
    .await;
    assert!(msg.contains("`fast`") && msg.contains("2 tries"), "{msg}");
    assert!(msg.contains("not a JSON object"), "{msg}");
    let msg = assert_error(
        app.chat(&key, chat_body("offline")).await,
        503,
        "upstream_unavailable",
    )
    .await;
    assert!(msg.contains("could not connect"), "{msg}");
    twice(Behavior::Status(
        503,
        json!({ "error": { "message": "loading model" } }),
    ));
    let msg = assert_error(
        app.chat(&key, chat_body("fast")).await,
        503,
        "upstream_unavailable",
    )
    .await;
    assert!(msg.contains("loading model"));
    twice(Behavior::Status(
        500,
        json!({ "error": { "message": "boom" } }),
    ));
    assert_error(
        app.chat(&key, chat_body("fast")).await,
        503,
        "upstream_unavailable",
    )
    .await;
    twice(Behavior::Hang);
    let msg = assert_error(
        app.chat(&key, chat_body("fast")).await,
        504,
        "upstream_timeout",
    )
    .await;
    assert!(msg.contains("did not answer in time"), "{msg}");
    // A rate limit cools the deployment for its Retry-After; the second try has nowhere to go.
    app.fake.script([Behavior::StatusRetryAfter(
        429,
        7,
        json!({ "error": { "message": "slow down" } }),
    )]);
    let r = app.chat(&key, chat_body("fast")).await;
    assert_eq!(r.headers()["retry-after"], "7");
    assert_error(r, 429, "rate_limit_exceeded").await;

    let events = app.usage_events(&token, 6).await;
    let codes: Vec<&str> = events
        .iter()
        .rev()
        .map(|e| e["error_code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        vec![
            "upstream_unavailable",
            "upstream_unavailable",
            "upstream_unavailable",
            "upstream_unavailable",
            "upstream_timeout",
            "rate_limit_exceeded"
        ]
    );
    let outcomes = |e: &Value| -> Vec<String> {
        e["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["outcome"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        outcomes(&events[5]),
        ["invalid_response", "invalid_response"]
    );
    assert_eq!(outcomes(&events[4]), ["connect_error", "connect_error"]);
    assert_eq!(outcomes(&events[3]), ["http_503", "http_503"]);
    assert_eq!(outcomes(&events[1]), ["timeout", "timeout"]);
    assert_eq!(outcomes(&events[0]), ["http_429"]);
    assert!(events
        .iter()
        .all(|e| e["cost_usd"] == "0.00" && e["status"] == "error"));
}

#[tokio::test]
async fn a_non_stream_answer_without_usage_is_billed_on_an_estimate() {
    let app = TestApp::start().await;
    let (token, key) = app.user_with_key("nousage@example.com").await;
    app.fake.script([Behavior::NoUsage]);
    assert_eq!(app.chat(&key, chat_body("fast")).await.status(), 200);
    let e = &app.usage_events(&token, 1).await[0];
    assert_eq!(e["estimated"], true);
    assert!(e["input_tokens"].as_u64().unwrap() > 0);
    // Counted with o200k_base: "Hello from the fake" is 4 tokens, "Say hello" 2.
    assert_eq!(e["output_tokens"], engine::tokens::count(&WORDS.concat()));
    assert_eq!(e["output_tokens"], 4);
    assert_eq!(e["input_tokens"], engine::tokens::count("Say hello\n"));
    assert_ne!(e["cost_usd"], "0.00", "never billed as free");
}
