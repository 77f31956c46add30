//! The three protocols on both sides: OpenAI, Anthropic and Gemini clients calling models
//! served by OpenAI-compatible, Anthropic and Gemini providers (the fake speaks all three),
//! passed through when the protocols match and translated when they don't; each ingress
//! answering errors in its own shape; and the same billing for all.

use crate::support::{assert_error, Options, TestApp};
use reqwest::Response;
use serde_json::{json, Value};
use testkit::fake_openai::Behavior;

/// `claude` is served by an Anthropic provider, `gem` by a Gemini one; `fast` stays on the
/// OpenAI-compatible fake.
const PROVIDERS: &str = r#"
[providers.anth]
kind = "anthropic"
base_url = "{fake_v1}"
[providers.gemini]
kind = "gemini"
base_url = "{fake_gemini}"
[models.claude]
provider = "anth"
upstream_model = "claude-sonnet-4-5"
max_output_tokens = 1000
input_price = "3"
output_price = "15"
[models.gem]
provider = "gemini"
upstream_model = "gemini-2.5-flash"
input_price = "0.30"
output_price = "2.50"
"#;

/// A test app whose catalog has a model on each kind of provider (used by the SDK tests too).
pub async fn app() -> TestApp {
    TestApp::with(Options {
        extra_toml: PROVIDERS.to_owned(),
        provider_keys: vec![("anth", vec!["sk-ant-test"]), ("gemini", vec!["gm-key"])],
        ..Options::default()
    })
    .await
    .unwrap()
}

/// An SSE body as (event name, JSON data) pairs; `[DONE]` becomes `Value::Null`.
async fn events(r: Response) -> Vec<(String, Value)> {
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let text = r.text().await.unwrap();
    text.replace("\r\n", "\n")
        .split("\n\n")
        .filter(|f| !f.trim().is_empty())
        .map(|frame| {
            let mut name = String::new();
            let mut data = String::new();
            for line in frame.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    name = v.to_owned();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push_str(v);
                }
            }
            let v = if data == "[DONE]" {
                Value::Null
            } else {
                serde_json::from_str(&data).unwrap()
            };
            (name, v)
        })
        .collect()
}

impl TestApp {
    async fn messages(&self, key: &str, body: Value) -> Response {
        self.client
            .post(self.url("/v1/messages"))
            .header("x-api-key", key)
            .header("anthropic-version", "2023-06-01")
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn gemini(&self, key: &str, model_method: &str, body: Value) -> Response {
        self.client
            .post(self.url(&format!("/v1beta/models/{model_method}")))
            .header("x-goog-api-key", key)
            .json(&body)
            .send()
            .await
            .unwrap()
    }
}

fn weather_tool_openai() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openai_client_calls_a_claude_model_translated_both_ways() {
    let app = app().await;
    let (token, key) = app.user_with_key("oa-claude@example.com").await;
    let r = app
        .chat(
            &key,
            json!({"model": "claude", "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}
            ], "temperature": 0.2, "stop": ["END"]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-provider"], "anth");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "claude");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello from the fake"
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["usage"]["prompt_tokens"], 11);
    assert_eq!(body["usage"]["completion_tokens"], 7);

    // What Anthropic received: its own dialect, the key in x-api-key, max_tokens filled in.
    let got = app.fake.received().pop().unwrap();
    assert_eq!(got.path, "/v1/messages");
    assert_eq!(got.headers["x-api-key"], "sk-ant-test");
    assert_eq!(got.headers["anthropic-version"], "2023-06-01");
    assert!(got.headers.get("authorization").is_none());
    assert_eq!(
        got.body,
        json!({"model": "claude-sonnet-4-5", "max_tokens": 1000, "system": "Be brief.",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "What is this?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}]}],
            "stop_sequences": ["END"], "temperature": 0.2})
    );
    let events = app.usage_events(&token, 1).await;
    assert_eq!(events[0]["model"], "claude");
    assert_eq!(events[0]["status"], "ok");
    assert_eq!(events[0]["input_tokens"], 11);
    // 11 × $3 + 7 × $15 per million tokens.
    assert_eq!(events[0]["cost_usd"], "0.000138");
    app.assert_money_sound(&token).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openai_stream_from_claude_arrives_as_openai_chunks_with_usage() {
    let app = app().await;
    let (token, key) = app.user_with_key("oa-claude-stream@example.com").await;
    let r = app
        .chat(
            &key,
            json!({"model": "claude", "messages": [{"role": "user", "content": "hi"}],
                "stream": true, "stream_options": {"include_usage": true}}),
        )
        .await;
    let ev = events(r).await;
    assert_eq!(ev.last().unwrap().1, Value::Null, "ends with [DONE]");
    let chunks: Vec<&Value> = ev.iter().map(|(_, v)| v).filter(|v| !v.is_null()).collect();
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk" && c["model"] == "claude"));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Hello from the fake");
    let finish: Vec<&Value> = chunks
        .iter()
        .map(|c| &c["choices"][0]["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finish, [&json!("stop")]);
    let usage = &chunks.last().unwrap()["usage"];
    assert_eq!(usage["prompt_tokens"], 11);
    assert_eq!(usage["completion_tokens"], 7);
    assert_eq!(app.fake.received().pop().unwrap().body["stream"], true);
    let e = app.usage_events(&token, 1).await;
    assert_eq!(
        (e[0]["status"].as_str(), e[0]["stream"].as_bool()),
        (Some("ok"), Some(true))
    );
    assert_eq!(e[0]["output_tokens"], 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_calls_cross_from_openai_to_claude_and_gemini_and_back() {
    let app = app().await;
    let (_, key) = app.user_with_key("tools@example.com").await;
    for model in ["claude", "gem"] {
        // The conversation so far: a call and its answer, then a new question.
        let body = json!({"model": model, "tools": weather_tool_openai(), "tool_choice": "auto",
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\":21}"},
            {"role": "user", "content": "And Lyon?"}
        ]});
        app.fake.script([Behavior::ToolCall {
            name: "get_weather".into(),
            arguments: json!({"city": "Lyon"}),
        }]);
        let r = app.chat(&key, body.clone()).await;
        assert_eq!(r.status(), 200, "{model}");
        let got: Value = r.json().await.unwrap();
        let msg = &got["choices"][0]["message"];
        assert_eq!(
            got["choices"][0]["finish_reason"], "tool_calls",
            "{model}: {got}"
        );
        assert_eq!(msg["tool_calls"][0]["function"]["name"], "get_weather");
        let args: Value = serde_json::from_str(
            msg["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(args, json!({"city": "Lyon"}));
        assert!(msg["tool_calls"][0]["id"].as_str().unwrap().len() > 3);

        let sent = app.fake.received().pop().unwrap().body;
        if model == "claude" {
            assert_eq!(
                sent["tools"][0]["input_schema"]["required"],
                json!(["city"])
            );
            assert_eq!(sent["tool_choice"], json!({"type": "auto"}));
            assert_eq!(
                sent["messages"][1]["content"][0],
                json!({"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}})
            );
            assert_eq!(
                sent["messages"][2]["content"][0],
                json!({"type": "tool_result", "tool_use_id": "call_1", "content": [{"type": "text", "text": "{\"temp\":21}"}]})
            );
        } else {
            assert_eq!(
                sent["tools"][0]["functionDeclarations"][0]["name"],
                "get_weather"
            );
            assert_eq!(sent["toolConfig"]["functionCallingConfig"]["mode"], "AUTO");
            assert_eq!(sent["contents"][1]["role"], "model");
            assert_eq!(
                sent["contents"][1]["parts"][0]["functionCall"],
                json!({"id": "call_1", "name": "get_weather", "args": {"city": "Paris"}})
            );
            assert_eq!(
                sent["contents"][2]["parts"][0]["functionResponse"],
                json!({"id": "call_1", "name": "get_weather", "response": {"temp": 21}})
            );
        }

        // The same, streamed: the call arrives as OpenAI tool-call deltas.
        app.fake.script([Behavior::ToolCall {
            name: "get_weather".into(),
            arguments: json!({"city": "Lyon"}),
        }]);
        let mut streamed = body;
        streamed["stream"] = json!(true);
        let ev = events(app.chat(&key, streamed).await).await;
        let mut name = String::new();
        let mut args = String::new();
        for (_, c) in &ev {
            for t in c["choices"][0]["delta"]["tool_calls"]
                .as_array()
                .into_iter()
                .flatten()
            {
                assert_eq!(t["index"], 0);
                name.push_str(t["function"]["name"].as_str().unwrap_or(""));
                args.push_str(t["function"]["arguments"].as_str().unwrap_or(""));
            }
        }
        assert_eq!(name, "get_weather", "{model}");
        assert_eq!(
            serde_json::from_str::<Value>(&args).unwrap(),
            json!({"city": "Lyon"})
        );
        assert!(ev
            .iter()
            .any(|(_, c)| c["choices"][0]["finish_reason"] == "tool_calls"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_schema_output_reaches_claude_as_a_forced_tool_and_gemini_as_a_schema() {
    let app = app().await;
    let (_, key) = app.user_with_key("json@example.com").await;
    let schema = json!({"type": "object", "properties": {"answer": {"type": "string"}}});
    for model in ["claude", "gem"] {
        let body = json!({"model": model, "messages": [{"role": "user", "content": "JSON please"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}}});
        let r = app.chat(&key, body).await;
        assert_eq!(r.status(), 200);
        let got: Value = r.json().await.unwrap();
        let sent = app.fake.received().pop().unwrap().body;
        if model == "claude" {
            assert_eq!(
                sent["tool_choice"],
                json!({"type": "tool", "name": "json_response"})
            );
            assert_eq!(sent["tools"][0]["input_schema"], schema);
            assert_eq!(
                got["choices"][0]["message"]["content"],
                "{\"answer\":\"fake\"}"
            );
            assert_eq!(got["choices"][0]["finish_reason"], "stop");
            assert!(got["choices"][0]["message"].get("tool_calls").is_none());
        } else {
            assert_eq!(
                sent["generationConfig"]["responseMimeType"],
                "application/json"
            );
            assert_eq!(sent["generationConfig"]["responseJsonSchema"], schema);
        }
    }
    // Streamed from Claude: the forced tool's input arrives as content.
    let r = app
        .chat(
            &key,
            json!({"model": "claude", "stream": true, "messages": [{"role": "user", "content": "JSON"}],
                "response_format": {"type": "json_object"}}),
        )
        .await;
    let ev = events(r).await;
    let text: String = ev
        .iter()
        .filter_map(|(_, c)| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "{\"answer\":\"fake\"}");
    assert!(!ev
        .iter()
        .any(|(_, c)| c["choices"][0]["delta"].get("tool_calls").is_some()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anthropic_client_gets_the_exact_event_sequence_from_an_openai_model() {
    let app = app().await;
    let (token, key) = app.user_with_key("anth-fast@example.com").await;
    let body = json!({"model": "fast", "max_tokens": 64, "system": [{"type": "text", "text": "Be brief."}],
        "messages": [{"role": "user", "content": "hi"}], "metadata": {"user_id": "u-42"}});
    let r = app.messages(&key, body.clone()).await;
    assert_eq!(r.status(), 200);
    let msg: Value = r.json().await.unwrap();
    assert_eq!(msg["type"], "message");
    assert_eq!(msg["role"], "assistant");
    assert_eq!(msg["model"], "fast");
    assert_eq!(
        msg["content"],
        json!([{"type": "text", "text": "Hello from the fake"}])
    );
    assert_eq!(msg["stop_reason"], "end_turn");
    assert_eq!(msg["usage"]["input_tokens"], 11);
    assert_eq!(msg["usage"]["output_tokens"], 7);
    let sent = app.fake.received().pop().unwrap();
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(
        sent.body,
        json!({"model": "gemma3:4b", "messages": [{"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"}], "max_tokens": 64, "user": "u-42"})
    );

    let mut streamed = body;
    streamed["stream"] = json!(true);
    let ev = events(app.messages(&key, streamed).await).await;
    let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    for (name, data) in &ev {
        assert_eq!(
            data["type"],
            name.as_str(),
            "each event's data names its type"
        );
    }
    assert_eq!(ev[0].1["message"]["model"], "fast");
    assert_eq!(
        ev[2].1["content_block"],
        json!({"type": "text", "text": ""})
    );
    assert_eq!(
        ev[3].1["delta"],
        json!({"type": "text_delta", "text": "Hello"})
    );
    assert_eq!(ev[8].1["delta"]["stop_reason"], "end_turn");
    assert_eq!(ev[8].1["usage"]["output_tokens"], 7);
    assert_eq!(ev[8].1["usage"]["input_tokens"], 11);
    let used = app.usage_events(&token, 2).await;
    assert!(used
        .iter()
        .all(|e| e["endpoint"] == "messages" && e["status"] == "ok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_to_anthropic_passes_through_untouched_but_for_the_model() {
    let app = app().await;
    let (token, key) = app.user_with_key("anth-pass@example.com").await;
    // `thinking` has no translation; between Anthropic ends it passes as it is.
    let body = json!({"model": "claude", "max_tokens": 50, "thinking": {"type": "enabled", "budget_tokens": 20},
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]}]});
    let r = app.messages(&key, body.clone()).await;
    assert_eq!(r.status(), 200);
    let msg: Value = r.json().await.unwrap();
    assert_eq!(msg["model"], "claude");
    assert_eq!(msg["id"], "msg_fake");
    let mut expected = body.clone();
    expected["model"] = json!("claude-sonnet-4-5");
    let got = app.fake.received().pop().unwrap();
    assert_eq!(got.body, expected);
    assert_eq!(got.headers["x-api-key"], "sk-ant-test");

    let mut streamed = body;
    streamed["stream"] = json!(true);
    let ev = events(app.messages(&key, streamed).await).await;
    assert_eq!(ev[0].1["message"]["model"], "claude");
    assert_eq!(ev.last().unwrap().0, "message_stop");
    let e = app.usage_events(&token, 2).await;
    assert!(e
        .iter()
        .all(|e| e["input_tokens"] == 11 && e["output_tokens"] == 7));

    // The same `thinking` request to a Gemini model: refused, naming the field.
    let r = app
        .messages(
            &key,
            json!({"model": "gem", "max_tokens": 50, "thinking": {"type": "enabled", "budget_tokens": 20},
                "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(r.status(), 400);
    let err: Value = r.json().await.unwrap();
    assert_eq!(err["type"], "error");
    assert_eq!(err["error"]["type"], "invalid_request_error");
    let m = err["error"]["message"].as_str().unwrap();
    assert!(m.contains("`thinking`") && m.contains("Gemini"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anthropic_client_uses_tools_on_a_gemini_model() {
    let app = app().await;
    let (_, key) = app.user_with_key("anth-gem@example.com").await;
    app.fake.script([Behavior::ToolCall {
        name: "get_weather".into(),
        arguments: json!({"city": "Lyon"}),
    }]);
    let body = json!({"model": "gem", "max_tokens": 100,
    "tools": [{"name": "get_weather", "description": "Weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
    "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
            {"type": "text", "text": "And Lyon?"}]}
    ]});
    let r = app.messages(&key, body).await;
    assert_eq!(r.status(), 200);
    let msg: Value = r.json().await.unwrap();
    assert_eq!(msg["stop_reason"], "tool_use");
    assert_eq!(msg["content"][0]["type"], "tool_use");
    assert_eq!(msg["content"][0]["name"], "get_weather");
    assert_eq!(msg["content"][0]["input"], json!({"city": "Lyon"}));
    let sent = app.fake.received().pop().unwrap();
    assert_eq!(sent.path, "/v1beta/models/gemini-2.5-flash:generateContent");
    assert_eq!(sent.headers["x-goog-api-key"], "gm-key");
    assert_eq!(
        sent.body["contents"][2]["parts"],
        json!([{"functionResponse": {"id": "toolu_1", "name": "get_weather", "response": {"content": "sunny"}}},
            {"text": "And Lyon?"}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gemini_client_streams_from_every_kind_of_provider() {
    let app = app().await;
    let (token, key) = app.user_with_key("gem-client@example.com").await;
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {"maxOutputTokens": 64, "temperature": 0.5}});
    for model in ["fast", "claude", "gem"] {
        let r = app
            .gemini(&key, &format!("{model}:generateContent"), body.clone())
            .await;
        assert_eq!(r.status(), 200, "{model}");
        let got: Value = r.json().await.unwrap();
        assert_eq!(
            got["candidates"][0]["content"]["parts"][0]["text"], "Hello from the fake",
            "{model}"
        );
        assert_eq!(got["candidates"][0]["finishReason"], "STOP");
        assert_eq!(got["usageMetadata"]["promptTokenCount"], 11);
        assert_eq!(got["usageMetadata"]["candidatesTokenCount"], 7);
        assert_eq!(got["modelVersion"], model);

        let r = app
            .gemini(
                &key,
                &format!("{model}:streamGenerateContent?alt=sse"),
                body.clone(),
            )
            .await;
        let ev = events(r).await;
        let text: String = ev
            .iter()
            .flat_map(|(_, c)| {
                c["candidates"][0]["content"]["parts"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter_map(|p| p["text"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(text, "Hello from the fake", "{model}");
        let last = &ev.last().unwrap().1;
        assert_eq!(last["candidates"][0]["finishReason"], "STOP", "{model}");
        assert_eq!(last["usageMetadata"]["candidatesTokenCount"], 7, "{model}");
    }
    // Gemini to Gemini: the body passed as it came.
    let sent = app.fake.received().pop().unwrap();
    assert_eq!(
        sent.path,
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    );
    assert_eq!(sent.body, body);
    let e = app.usage_events(&token, 6).await;
    assert!(
        e.iter()
            .all(|e| e["status"] == "ok" && e["endpoint"] == "generate_content"),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_ingress_answers_errors_in_its_own_shape() {
    let app = app().await;
    let (_, key) = app.user_with_key("shapes@example.com").await;
    // Anthropic: bad key, missing max_tokens, unknown model, wrong content type.
    let r = app.messages("sk-sy-wrong", json!({})).await;
    assert_eq!(r.status(), 401);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["type"], "error");
    assert_eq!(e["error"]["type"], "authentication_error");
    let r = app
        .messages(
            &key,
            json!({"model": "fast", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["type"], "invalid_request_error");
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains("max_tokens"));
    let r = app
        .messages(
            &key,
            json!({"model": "nope", "max_tokens": 5, "messages": []}),
        )
        .await;
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["type"],
        "not_found_error"
    );

    // Gemini: bad key, unknown model, unknown method, stream without alt=sse.
    let body = json!({"contents": [{"parts": [{"text": "x"}]}]});
    let r = app
        .gemini("wrong", "fast:generateContent", body.clone())
        .await;
    assert_eq!(r.status(), 401);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["status"], "UNAUTHENTICATED");
    assert_eq!(e["error"]["code"], 401);
    let r = app.gemini(&key, "nope:generateContent", body.clone()).await;
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["status"],
        "NOT_FOUND"
    );
    let r = app.gemini(&key, "fast:embedContent", body.clone()).await;
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["status"],
        "NOT_FOUND"
    );
    let r = app
        .gemini(&key, "fast:streamGenerateContent", body.clone())
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["status"],
        "INVALID_ARGUMENT"
    );
    // The key in the query string works too.
    let r = app
        .client
        .post(app.url(&format!("/v1beta/models/fast:generateContent?key={key}")))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // OpenAI: a field Anthropic cannot be told is a 400 naming it, and nothing went upstream.
    let before = app.fake.received().len();
    let r = app
        .chat(&key, json!({"model": "claude", "logprobs": true, "messages": [{"role": "user", "content": "x"}]}))
        .await;
    let m = assert_error(r, 400, "invalid_body").await;
    assert!(m.contains("`logprobs`") && m.contains("Anthropic"), "{m}");
    assert_eq!(app.fake.received().len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_errors_reach_each_client_in_its_shape_and_streams_fail_in_theirs() {
    let app = app().await;
    let (token, key) = app.user_with_key("upstream-err@example.com").await;
    // Anthropic's 400 reaches an OpenAI client with its message.
    app.fake.script([Behavior::Status(
        400,
        json!({"type": "error", "error": {"type": "invalid_request_error", "message": "prompt is too long"}}),
    )]);
    let r = app
        .chat(
            &key,
            json!({"model": "claude", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    let m = assert_error(r, 400, "upstream_rejected").await;
    assert!(m.contains("prompt is too long"), "{m}");
    // Gemini's 400 reaches an Anthropic client in Anthropic's shape.
    app.fake.script([Behavior::Status(
        400,
        json!({"error": {"code": 400, "message": "bad schema", "status": "INVALID_ARGUMENT"}}),
    )]);
    let r = app
        .messages(&key, json!({"model": "gem", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}))
        .await;
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["type"], "invalid_request_error");
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains("bad schema"));
    // A Claude stream cut midway: the OpenAI client gets an error event; billed as partial.
    app.fake.script([Behavior::CutAfter(2)]);
    let ev = events(
        app.chat(&key, json!({"model": "claude", "stream": true, "messages": [{"role": "user", "content": "x"}]}))
            .await,
    )
    .await;
    assert!(
        ev.iter()
            .any(|(_, c)| c["error"]["code"] == "upstream_error"),
        "{ev:?}"
    );
    // An OpenAI stream cut midway: the Anthropic client gets an `error` event.
    app.fake.script([Behavior::CutAfter(2)]);
    let ev = events(
        app.messages(&key, json!({"model": "fast", "stream": true, "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}))
            .await,
    )
    .await;
    let (name, data) = ev.last().unwrap();
    assert_eq!(name, "error");
    assert_eq!(data["error"]["type"], "api_error");
    assert!(!ev.iter().any(|(n, _)| n == "message_stop"));
    // An Anthropic stream passed through and cut after two words: Anthropic reported its
    // usage (output 1) when the stream started; the bill counts what was streamed.
    app.fake.script([Behavior::CutAfter(2)]);
    let ev = events(
        app.messages(&key, json!({"model": "claude", "stream": true, "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}))
            .await,
    )
    .await;
    assert_eq!(ev.last().unwrap().0, "error");
    let e = app.usage_events(&token, 5).await;
    let partial: Vec<&Value> = e.iter().filter(|e| e["status"] == "partial").collect();
    assert_eq!(partial.len(), 3, "{e:?}");
    let cut = &e[0];
    assert_eq!(
        (cut["model"].as_str(), cut["status"].as_str()),
        (Some("claude"), Some("partial"))
    );
    assert_eq!(cut["input_tokens"], 11, "the reported prompt count is kept");
    assert_eq!(
        cut["output_tokens"], 2,
        "\"Hello\" and \" from\" were streamed"
    );
    assert_eq!(cut["estimated"], true);
    app.assert_money_sound(&token).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_tokens_counts_the_prompt_without_billing() {
    let app = app().await;
    let (token, key) = app.user_with_key("count@example.com").await;
    // No `anthropic-version` header: counting does not need one.
    let count = |body: Value| {
        app.client
            .post(app.url("/v1/messages/count_tokens"))
            .header("x-api-key", &key)
            .json(&body)
            .send()
    };
    let r = count(json!({"model": "claude", "system": "You are terse.", "messages": [{"role": "user", "content": "Hello there, how are you today?"}]}))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let n = r.json::<Value>().await.unwrap()["input_tokens"]
        .as_u64()
        .unwrap();
    assert!((8..40).contains(&n), "{n}");
    let r = count(json!({"model": "nope", "messages": []}))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["type"],
        "not_found_error"
    );
    // Gemini's countTokens, and its model listing.
    let r = app
        .gemini(
            &key,
            "gem:countTokens",
            json!({"contents": [{"parts": [{"text": "Hello there, how are you today?"}]}]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let t = r.json::<Value>().await.unwrap()["totalTokens"]
        .as_u64()
        .unwrap();
    assert!((5..30).contains(&t), "{t}");
    let r = app
        .client
        .get(app.url("/v1beta/models"))
        .header("x-goog-api-key", &key)
        .send()
        .await
        .unwrap();
    let listed: Value = r.json().await.unwrap();
    let names: Vec<&str> = listed["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "models/fast",
            "models/pro",
            "models/offline",
            "models/claude",
            "models/gem"
        ]
    );
    app.flushed().await;
    let (_, usage) = app.get_json("/api/usage", &token).await;
    assert_eq!(usage["total"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_on_several_kinds_fails_over_across_protocols_and_skips_what_cannot_be_said() {
    let toml = format!(
        "{PROVIDERS}{}",
        r#"
[models.mixed]
input_price = "1"
output_price = "1"
[[models.mixed.deployments]]
provider = "anth"
upstream_model = "claude-haiku"
[[models.mixed.deployments]]
provider = "fake"
upstream_model = "gemma3:4b"
"#
    );
    let app = TestApp::with(Options {
        extra_toml: toml,
        ..Options::default()
    })
    .await
    .unwrap();
    let (token, key) = app.user_with_key("mixed@example.com").await;
    // Anthropic is overloaded; the OpenAI-compatible deployment answers, in Anthropic's shape.
    app.fake.script([Behavior::Status(
        529,
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    )]);
    let r = app
        .messages(&key, json!({"model": "mixed", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-provider"], "fake");
    let msg: Value = r.json().await.unwrap();
    assert_eq!(msg["content"][0]["text"], "Hello from the fake");
    let paths: Vec<String> = app.fake.received().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, ["/v1/messages", "/v1/chat/completions"]);
    let e = app.usage_events(&token, 1).await;
    let outcomes: Vec<&str> = e[0]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["http_529", "ok"]);

    // `thinking` only Anthropic can be told: the OpenAI deployment is skipped, not tried.
    app.fake.script([Behavior::Status(
        529,
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    )]);
    let r = app
        .messages(&key, json!({"model": "mixed", "max_tokens": 20, "thinking": {"type": "enabled", "budget_tokens": 10},
            "messages": [{"role": "user", "content": "hi"}]}))
        .await;
    // The retry went to Anthropic again (the other deployment cannot take it) and answered.
    assert_eq!(r.status(), 200);
    let paths: Vec<String> = app
        .fake
        .received()
        .iter()
        .skip(2)
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(paths, ["/v1/messages", "/v1/messages"]);
    assert!(app.fake.received()[3].body.get("thinking").is_some());
}
