//! Routing and resilience: several deployments per model, strategies, retries and failover,
//! key rotation, circuit breakers, health checks, concurrency caps, the OpenRouter-style
//! `models` / `provider` request fields, `auto`, and cancellation when the client leaves.
//! The test app's own fake is provider `fake`; each test adds fakes as it needs them.

use crate::support::{assert_error, chat_body, Options, TestApp};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use testkit::fake_openai::{Behavior, FakeOpenAi};

/// A provider table for an extra fake.
fn provider(name: &str, fake: &FakeOpenAi, extra: &str) -> String {
    format!(
        "[providers.{name}]\nkind = \"openai\"\nbase_url = \"{}\"\n{extra}\n",
        fake.base_url()
    )
}

/// `[models.NAME]` at $1 / $2 per million tokens with the given strategy, and one deployment
/// table per `(provider, upstream model, extra lines)`.
fn model(name: &str, strategy: &str, deployments: &[(&str, &str, &str)]) -> String {
    let mut toml = format!(
        "\n[models.{name}]\ninput_price = \"1.00\"\noutput_price = \"2.00\"\nstrategy = \"{strategy}\"\n"
    );
    for (provider, upstream, extra) in deployments {
        toml.push_str(&format!(
            "[[models.{name}.deployments]]\nprovider = \"{provider}\"\nupstream_model = \"{upstream}\"\n{extra}\n"
        ));
    }
    toml
}

/// `[models.duo]`: provider `fake` (priority 1, the dearer) and `b` (priority 2), with the
/// given strategy.
fn duo(strategy: &str) -> String {
    model(
        "duo",
        strategy,
        &[
            (
                "fake",
                "a-model",
                "priority = 1\ninput_price = \"2.00\"\noutput_price = \"4.00\"",
            ),
            (
                "b",
                "b-model",
                "priority = 2\ninput_price = \"0.50\"\noutput_price = \"1.00\"",
            ),
        ],
    )
}

async fn app_with(toml: String) -> TestApp {
    TestApp::with(Options {
        first_byte_timeout: 0.5,
        extra_toml: toml,
        ..Default::default()
    })
    .await
    .unwrap()
}

/// Chat requests a fake received (not health probes).
fn chats(fake: &FakeOpenAi) -> Vec<testkit::fake_openai::Received> {
    fake.received()
        .into_iter()
        .filter(|r| r.path == "/v1/chat/completions")
        .collect()
}

fn attempts(event: &Value) -> Vec<(String, String)> {
    event["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["deployment"].as_str().unwrap().to_owned(),
                a["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

async fn providers_report(app: &TestApp) -> Vec<Value> {
    let (status, body) = app
        .admin(reqwest::Method::GET, "/api/admin/providers", Value::Null)
        .await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().unwrap().clone()
}

fn deployment<'a>(report: &'a [Value], name: &str) -> &'a Value {
    report
        .iter()
        .find(|d| d["deployment"] == name)
        .unwrap_or_else(|| panic!("no deployment {name} in {report:?}"))
}

async fn readiness(app: &TestApp) -> Value {
    let r = reqwest::get(app.url("/health/ready")).await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn a_failing_deployment_fails_over_to_the_next_and_every_attempt_is_recorded() {
    let b = FakeOpenAi::start().await;
    let app = app_with(provider("b", &b, "") + &duo("priority")).await;
    let (token, key) = app.user_with_key("failover@example.com").await;
    app.fake.script([Behavior::Status(
        500,
        json!({ "error": { "message": "boom" } }),
    )]);
    let r = app.chat(&key, chat_body("duo")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-provider"], "b");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["model"], "duo");
    assert_eq!(body["provider"], "b");
    assert_eq!(chats(&b)[0].body["model"], "b-model");

    let e = &app.usage_events(&token, 1).await[0];
    assert_eq!(e["provider"], "b");
    assert_eq!(e["upstream_model"], "b-model");
    assert_eq!(
        attempts(e),
        pairs(&[("fake/a-model", "http_500"), ("b/b-model", "ok")])
    );
    // Billed at the deployment that answered: 11 × 0.50/M + 7 × 1.00/M.
    assert_eq!(e["cost_usd"], "0.0000125");

    // The next request goes back to the first priority, which answers again.
    let r = app.chat(&key, chat_body("duo")).await;
    assert_eq!(r.headers()["x-switchyard-provider"], "fake");
    assert_eq!(chats(&b).len(), 1);

    // A rate limit moves on too, and the limited deployment sits out its Retry-After.
    app.fake.script([Behavior::StatusRetryAfter(
        429,
        30,
        json!({ "error": { "message": "slow down" } }),
    )]);
    for _ in 0..2 {
        let r = app.chat(&key, chat_body("duo")).await;
        assert_eq!(r.headers()["x-switchyard-provider"], "b");
    }
    let events = app.usage_events(&token, 4).await;
    assert_eq!(
        attempts(&events[1]),
        pairs(&[("fake/a-model", "http_429"), ("b/b-model", "ok")])
    );
    assert_eq!(attempts(&events[0]), pairs(&[("b/b-model", "ok")]));
    let report = providers_report(&app).await;
    let a = deployment(&report, "fake/a-model");
    assert_eq!(a["state"], "cooling_down");
    assert!(a["retry_in_secs"].as_u64().unwrap() > 25);
    assert_eq!(
        readiness(&app).await["unavailable_models"],
        json!([]),
        "duo still has b"
    );
    app.assert_money_sound(&token).await;
}

#[tokio::test]
async fn a_refused_connection_and_a_hang_before_headers_fail_over() {
    let b = FakeOpenAi::start().await;
    let toml = provider("b", &b, "")
        + &model(
            "far",
            "priority",
            &[
                ("closed", "gone", "priority = 1"),
                ("b", "b-model", "priority = 2"),
            ],
        )
        + &duo("priority");
    let app = app_with(toml).await;
    let (token, key) = app.user_with_key("refused@example.com").await;
    assert_eq!(app.chat(&key, chat_body("far")).await.status(), 200);
    let e = &app.usage_events(&token, 1).await[0];
    assert_eq!(
        attempts(e),
        pairs(&[("closed/gone", "connect_error"), ("b/b-model", "ok")])
    );

    app.fake.script([Behavior::Hang]);
    let started = Instant::now();
    let r = app.chat(&key, chat_body("duo")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-provider"], "b");
    assert!(started.elapsed() < Duration::from_secs(3));
    let e = &app.usage_events(&token, 2).await[0];
    assert_eq!(
        attempts(e),
        pairs(&[("fake/a-model", "timeout"), ("b/b-model", "ok")])
    );
    // The hung request was abandoned, not left open.
    assert_eq!(app.fake.cancelled_at().len(), 1);
}

#[tokio::test]
async fn a_stream_that_stalls_before_its_first_event_fails_over_but_one_cut_midway_does_not() {
    let b = FakeOpenAi::start().await;
    let app = app_with(provider("b", &b, "") + &duo("priority")).await;
    let (token, key) = app.user_with_key("stall@example.com").await;
    let stream = |model: &str| json!({ "model": model, "stream": true, "messages": [{ "role": "user", "content": "Say hello" }] });
    // Headers, then silence: the first-byte limit (0.5 s) covers the first event, so this
    // is a timeout before any byte and another deployment may answer.
    app.fake.script([Behavior::HangAfterHeaders]);
    let r = app.chat(&key, stream("duo")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-provider"], "b");
    let text = r.text().await.unwrap();
    assert!(
        text.contains("Hello") && text.ends_with("data: [DONE]\n\n"),
        "{text}"
    );
    let e = &app.usage_events(&token, 1).await[0];
    assert_eq!(e["status"], "ok");
    assert_eq!(
        attempts(e),
        pairs(&[("fake/a-model", "timeout"), ("b/b-model", "ok")])
    );

    // Once bytes have gone to the client there is no retry, fallbacks or not.
    app.fake.script([Behavior::CutAfter(2)]);
    let mut body = stream("duo");
    body["models"] = json!(["fast"]);
    let r = app.chat(&key, body).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.contains("\"upstream_error\""), "{text}");
    assert_eq!(chats(&b).len(), 1, "b was not tried after the cut");
    let e = &app.usage_events(&token, 2).await[0];
    assert_eq!(e["status"], "partial");
    assert_eq!(attempts(e), pairs(&[("fake/a-model", "ok")]));
}

#[tokio::test]
async fn a_stream_that_trickles_slower_than_the_idle_limit_ends_with_an_error_event() {
    let slow = FakeOpenAi::start().await;
    let toml = provider("slow", &slow, "idle_timeout_secs = 0.3")
        + r#"
[models.drip]
provider = "slow"
upstream_model = "drip-model"
input_price = "1"
output_price = "1"
"#;
    let app = app_with(toml).await;
    let (token, key) = app.user_with_key("trickle@example.com").await;
    // The first event comes at once; the next after 0.6 s of silence.
    slow.script([Behavior::Slow {
        chunks: 3,
        every: Duration::from_millis(600),
    }]);
    let r = app
        .chat(
            &key,
            json!({ "model": "drip", "stream": true, "messages": [{ "role": "user", "content": "hi" }] }),
        )
        .await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let events: Vec<&str> = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .collect();
    let error: Value = serde_json::from_str(events[events.len() - 2]).unwrap();
    assert_eq!(error["error"]["code"], "upstream_timeout", "{text}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("stalled"),
        "{error}"
    );
    assert_eq!(events.last(), Some(&"[DONE]"));
    assert_eq!(chats(&slow).len(), 1, "bytes had gone out: no retry");
    let e = &app.usage_events(&token, 1).await[0];
    assert_eq!(e["status"], "partial");
    assert_eq!(e["error_code"], "upstream_timeout");
    let report = providers_report(&app).await;
    assert_eq!(
        deployment(&report, "slow/drip-model")["consecutive_failures"],
        1
    );
}

#[tokio::test]
async fn invalid_json_from_the_upstream_is_retried() {
    let app = app_with(String::new()).await;
    let (token, key) = app.user_with_key("garbage@example.com").await;
    app.fake.script([Behavior::Garbage]);
    let r = app.chat(&key, chat_body("fast")).await;
    assert_eq!(r.status(), 200);
    let e = &app.usage_events(&token, 1).await[0];
    assert_eq!(
        attempts(e),
        pairs(&[
            ("fake/gemma3:4b", "invalid_response"),
            ("fake/gemma3:4b", "ok")
        ])
    );
}

#[tokio::test]
async fn a_request_error_is_never_retried() {
    let b = FakeOpenAi::start().await;
    let app = app_with(provider("b", &b, "") + &duo("priority")).await;
    let (_, key) = app.user_with_key("final@example.com").await;
    app.fake.script([Behavior::Status(
        400,
        json!({ "error": { "message": "bad tool schema", "code": "invalid_tools" } }),
    )]);
    let msg = assert_error(app.chat(&key, chat_body("duo")).await, 400, "invalid_tools").await;
    assert_eq!(msg, "bad tool schema");
    assert!(chats(&b).is_empty());
}

#[tokio::test]
async fn weighted_strategy_splits_traffic_by_weight() {
    let b = FakeOpenAi::start().await;
    let toml = provider("b", &b, "")
        + &model(
            "split",
            "weighted",
            &[
                ("fake", "a-model", "weight = 1"),
                ("b", "b-model", "weight = 1"),
                ("fake", "never", "weight = 0"),
            ],
        );
    let app = app_with(toml).await;
    let (_, key) = app.user_with_key("weighted@example.com").await;
    for _ in 0..60 {
        assert_eq!(app.chat(&key, chat_body("split")).await.status(), 200);
    }
    let (to_a, to_b) = (chats(&app.fake).len(), chats(&b).len());
    assert_eq!(to_a + to_b, 60);
    // Binomial(60, ½): outside 15..=45 with probability below 1e-4.
    assert!((15..=45).contains(&to_a), "a got {to_a}, b got {to_b}");
    assert!(
        chats(&app.fake)
            .iter()
            .all(|r| r.body["model"] == "a-model"),
        "a weight of 0 is only a last resort"
    );
}

#[tokio::test]
async fn lowest_cost_and_least_latency_strategies_pick_their_deployment() {
    let b = FakeOpenAi::start().await;
    let toml = provider("b", &b, "")
        + &duo("lowest-cost")
        + &model(
            "quick",
            "least-latency",
            &[("fake", "slow-model", ""), ("b", "quick-model", "")],
        );
    let app = app_with(toml).await;
    let (token, key) = app.user_with_key("cheap@example.com").await;
    for _ in 0..3 {
        let r = app.chat(&key, chat_body("duo")).await;
        assert_eq!(r.headers()["x-switchyard-provider"], "b", "b is cheaper");
    }
    let e = &app.usage_events(&token, 3).await[0];
    assert_eq!(e["cost_usd"], "0.0000125");

    // `fake` answers slowly; once both have been measured, `b` gets the traffic.
    app.fake.script(std::iter::repeat_n(
        Behavior::Costly {
            completion: 7,
            delay: Duration::from_millis(300),
        },
        10,
    ));
    let mut served = Vec::new();
    for _ in 0..6 {
        let r = app.chat(&key, chat_body("quick")).await;
        served.push(
            r.headers()["x-switchyard-provider"]
                .to_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert!(
        served[2..].iter().all(|p| p == "b"),
        "after one try each, the faster deployment leads: {served:?}"
    );
    let report = providers_report(&app).await;
    let slow = deployment(&report, "fake/slow-model")["ewma_ms"]
        .as_u64()
        .unwrap();
    let quick = deployment(&report, "b/quick-model")["ewma_ms"]
        .as_u64()
        .unwrap();
    assert!(slow >= 300 && quick < slow, "ewma {slow} vs {quick}");
}

#[tokio::test]
async fn a_rate_limited_key_is_benched_for_its_retry_after_and_the_next_key_used() {
    let app = TestApp::with(Options {
        provider_keys: vec![("fake", vec!["sk-one", "sk-two"])],
        ..Default::default()
    })
    .await
    .unwrap();
    let (_, key) = app.user_with_key("keys@example.com").await;
    app.fake.script([Behavior::StatusRetryAfter(
        429,
        30,
        json!({ "error": { "message": "quota" } }),
    )]);
    for _ in 0..3 {
        assert_eq!(app.chat(&key, chat_body("fast")).await.status(), 200);
    }
    let auth: Vec<String> = chats(&app.fake)
        .iter()
        .map(|r| r.headers["authorization"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        auth,
        [
            "Bearer sk-one",
            "Bearer sk-two",
            "Bearer sk-two",
            "Bearer sk-two"
        ],
        "sk-one sits out its 30 s"
    );
    let report = providers_report(&app).await;
    let d = deployment(&report, "fake/gemma3:4b");
    assert_eq!(d["keys"], 2);
    assert_eq!(d["keys_benched"], 1);
    assert_eq!(d["state"], "healthy");
}

#[tokio::test]
async fn a_circuit_breaker_opens_after_consecutive_failures_and_a_half_open_probe_closes_it() {
    let app = app_with(
        "[routing]\nmax_attempts = 1\nbreaker_threshold = 2\nbreaker_cooldown_secs = 1\n"
            .to_owned(),
    )
    .await;
    let (_, key) = app.user_with_key("breaker@example.com").await;
    let boom = Behavior::Status(500, json!({ "error": { "message": "boom" } }));
    app.fake.script([boom.clone(), boom]);
    for _ in 0..2 {
        assert_error(
            app.chat(&key, chat_body("fast")).await,
            503,
            "upstream_unavailable",
        )
        .await;
    }
    let r = app.chat(&key, chat_body("fast")).await;
    assert_eq!(r.headers()["retry-after"], "1");
    let msg = assert_error(r, 503, "upstream_unavailable").await;
    assert!(msg.contains("circuit breakers open"), "{msg}");
    assert_eq!(chats(&app.fake).len(), 2, "an open breaker sends nothing");

    let report = providers_report(&app).await;
    let d = deployment(&report, "fake/gemma3:4b");
    assert_eq!(d["state"], "open");
    assert_eq!(d["consecutive_failures"], 2);
    assert_eq!(d["last_error"], "provider `fake` failed (HTTP 500): boom");
    assert_eq!(d["models"], json!(["fast"]));
    assert_eq!(deployment(&report, "fake/qwen3:32b")["state"], "healthy");
    let ready = readiness(&app).await;
    assert_eq!(ready["status"], "degraded");
    assert_eq!(ready["unavailable_models"], json!(["fast"]));
    // Other models on the same provider are unaffected.
    assert_eq!(app.chat(&key, chat_body("pro")).await.status(), 200);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let report = providers_report(&app).await;
    assert_eq!(deployment(&report, "fake/gemma3:4b")["state"], "half_open");
    assert_eq!(app.chat(&key, chat_body("fast")).await.status(), 200);
    let report = providers_report(&app).await;
    assert_eq!(deployment(&report, "fake/gemma3:4b")["state"], "healthy");
    assert_eq!(readiness(&app).await["status"], "ready");
}

#[tokio::test]
async fn a_failed_health_check_takes_a_deployment_out_until_it_passes() {
    let b = FakeOpenAi::start().await;
    let toml = provider("b", &b, "health_check_interval_secs = 0.1")
        + &duo("priority").replace("priority = 1", "priority = 3");
    let app = TestApp::with(Options {
        extra_toml: toml,
        provider_keys: vec![("b", vec!["sk-b"])],
        ..Default::default()
    })
    .await
    .unwrap();
    let (_, key) = app.user_with_key("probe@example.com").await;
    let wait_for = |state: &'static str| {
        let app = &app;
        async move {
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let report = providers_report(app).await;
                if deployment(&report, "b/b-model")["state"] == state {
                    return;
                }
                assert!(Instant::now() < deadline, "never {state}: {report:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    b.set_models_status(503);
    wait_for("open").await;
    assert_eq!(
        readiness(&app).await["unavailable_models"],
        json!([]),
        "duo still has `fake`"
    );
    // `b` leads by priority but is skipped while its checks fail.
    let r = app.chat(&key, chat_body("duo")).await;
    assert_eq!(r.headers()["x-switchyard-provider"], "fake");
    assert!(chats(&b).is_empty());
    // A passing check lets the next request probe at once; its success closes the breaker.
    b.set_models_status(200);
    wait_for("half_open").await;
    let r = app.chat(&key, chat_body("duo")).await;
    assert_eq!(r.headers()["x-switchyard-provider"], "b");
    wait_for("healthy").await;
    let probe = b
        .received()
        .into_iter()
        .find(|r| r.path == "/v1/models")
        .unwrap();
    assert_eq!(probe.headers["authorization"], "Bearer sk-b");
    assert!(b.models_probes() >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_at_its_concurrency_limit_passes_requests_to_the_next_deployment() {
    let b = FakeOpenAi::start().await;
    let toml = provider("b", &b, "max_concurrency = 1")
        + &duo("priority").replace("priority = 1", "priority = 3");
    let app = app_with(toml).await;
    let (_, key) = app.user_with_key("busy@example.com").await;
    b.script([Behavior::Costly {
        completion: 7,
        delay: Duration::from_millis(1500),
    }]);
    let first = app.chat(&key, chat_body("duo"));
    let second = async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        app.chat(&key, chat_body("duo")).await
    };
    let (first, second) = tokio::join!(first, second);
    assert_eq!(first.headers()["x-switchyard-provider"], "b");
    assert_eq!(second.headers()["x-switchyard-provider"], "fake");
    assert_eq!(chats(&b).len(), 1);
}

#[tokio::test]
async fn models_and_route_name_fallback_models() {
    let app = app_with(String::new()).await;
    let (token, key) = app.user_with_key("models@example.com").await;
    let messages = json!([{ "role": "user", "content": "Say hello" }]);
    // `models` alone: the first is the model, the rest its fallbacks.
    let r = app
        .chat(
            &key,
            json!({ "models": ["offline", "pro"], "route": "fallback", "messages": messages }),
        )
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["model"], "pro", "the model that answered");
    let e = &app.usage_events(&token, 1).await[0];
    assert_eq!(e["model"], "pro");
    assert_eq!(
        attempts(e),
        pairs(&[("closed/gone", "connect_error"), ("fake/qwen3:32b", "ok")])
    );
    // Neither field reaches the upstream.
    let sent = &chats(&app.fake)[0].body;
    assert!(sent.get("models").is_none() && sent.get("route").is_none());
    assert_eq!(sent["model"], "qwen3:32b");

    let r = app
        .chat(
            &key,
            json!({ "model": "offline", "models": ["fast"], "messages": messages }),
        )
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["model"], "fast");

    let bad = |body: Value| {
        let app = &app;
        let key = key.clone();
        async move { app.chat(&key, body).await }
    };
    let msg = assert_error(
        bad(json!({ "model": "fast", "route": "sideways", "messages": messages })).await,
        400,
        "invalid_body",
    )
    .await;
    assert!(msg.contains("route"), "{msg}");
    assert_error(
        bad(json!({ "model": "fast", "models": ["nope"], "messages": messages })).await,
        404,
        "model_not_found",
    )
    .await;
    let msg = assert_error(
        bad(json!({ "model": "fast", "models": ["embed"], "messages": messages })).await,
        400,
        "invalid_body",
    )
    .await;
    assert!(msg.contains("embed"), "{msg}");
}

#[tokio::test]
async fn provider_preferences_order_filter_and_sort_deployments() {
    let b = FakeOpenAi::start().await;
    let app = app_with(provider("b", &b, "") + &duo("priority")).await;
    let (_, key) = app.user_with_key("prefs@example.com").await;
    let with = |provider: Value| json!({ "model": "duo", "provider": provider, "messages": [{ "role": "user", "content": "hi" }] });
    let served = |r: &reqwest::Response| {
        r.headers()["x-switchyard-provider"]
            .to_str()
            .unwrap()
            .to_owned()
    };
    for (prefs, want) in [
        (json!({ "order": ["b"] }), "b"),
        (json!({ "only": ["b"] }), "b"),
        (json!({ "ignore": ["fake"] }), "b"),
        (json!({ "sort": "price" }), "b"),
        (json!({ "order": ["fake", "b"] }), "fake"),
        (json!(null), "fake"),
    ] {
        let r = app.chat(&key, with(prefs.clone())).await;
        assert_eq!(r.status(), 200, "{prefs}");
        assert_eq!(served(&r), want, "{prefs}");
    }
    let sent = chats(&b).pop().unwrap().body;
    assert!(sent.get("provider").is_none(), "not sent upstream");

    // No fallbacks allowed: the failure of the only allowed deployment is the answer.
    let boom = Behavior::Status(500, json!({ "error": { "message": "boom" } }));
    app.fake.script(std::iter::repeat_n(boom.clone(), 3));
    let before = chats(&b).len();
    let r = app
        .chat(
            &key,
            with(json!({ "order": ["fake"], "allow_fallbacks": false })),
        )
        .await;
    assert_error(r, 503, "upstream_unavailable").await;
    assert_eq!(chats(&b).len(), before);
    // Allowed, the same failure falls through to `b`.
    app.fake.script([boom]);
    let r = app.chat(&key, with(json!({ "order": ["fake"] }))).await;
    assert_eq!(served(&r), "b");

    let msg = assert_error(
        app.chat(&key, with(json!({ "max_price": { "prompt": "0.10" } })))
            .await,
        400,
        "invalid_body",
    )
    .await;
    assert!(msg.contains("`provider` preferences"), "{msg}");
    // Within b's price (0.50 / 1.00 per million), only b qualifies.
    let r = app
        .chat(
            &key,
            with(json!({ "max_price": { "prompt": "1", "completion": "1" } })),
        )
        .await;
    assert_eq!(served(&r), "b");
    let msg = assert_error(
        app.chat(&key, with(json!({ "only": ["b"], "colour": "red" })))
            .await,
        400,
        "invalid_body",
    )
    .await;
    assert!(msg.contains("colour"), "{msg}");
}

#[tokio::test]
async fn auto_picks_the_cheapest_model_that_can_serve_the_request() {
    let toml = r#"
[models.seer]
provider = "fake"
upstream_model = "llava"
input_price = "3"
output_price = "3"
supports_vision = true
"#
    .to_owned();
    let app = app_with(toml).await;
    let (token, key) = app.user_with_key("auto@example.com").await;
    let (_, listing) = app.get_json("/v1/models", &key).await;
    assert!(crate::support::model_ids(&listing).contains(&"auto"));

    let r = app.chat(&key, chat_body("auto")).await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["model"], "fast", "the cheapest chat model");
    let picture = json!({
        "model": "auto",
        "messages": [{ "role": "user", "content": [
            { "type": "text", "text": "What is this?" },
            { "type": "image_url", "image_url": { "url": "data:image/png;base64,AAAA" } }
        ] }]
    });
    let r = app.chat(&key, picture).await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["model"], "seer", "the only model that sees images");
    assert_eq!(chats(&app.fake).last().unwrap().body["model"], "llava");
    let events = app.usage_events(&token, 2).await;
    assert_eq!(events[0]["model"], "seer");
    assert_eq!(events[1]["model"], "fast");
    // Nothing can serve a prompt longer than every context.
    let msg = assert_error(
        app.chat(
            &key,
            json!({ "model": "auto", "max_tokens": 5_000_000, "messages": [{ "role": "user", "content": "Write a lot" }] }),
        )
        .await,
        400,
        "invalid_body",
    )
    .await;
    assert!(msg.contains("context length"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_leaving_before_the_answer_cancels_the_upstream_at_once() {
    let app = TestApp::start().await;
    let (token, key) = app.user_with_key("leave@example.com").await;
    app.fake.script([Behavior::Hang]);
    let pending = app.chat(&key, chat_body("fast"));
    assert!(
        tokio::time::timeout(Duration::from_millis(300), pending)
            .await
            .is_err(),
        "the fake hangs"
    );
    let left = Instant::now();
    let deadline = left + Duration::from_secs(5);
    let cancelled = loop {
        if let Some(at) = app.fake.cancelled_at().first() {
            break *at;
        }
        assert!(
            Instant::now() < deadline,
            "the upstream request was never dropped"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let lag = cancelled.saturating_duration_since(left);
    assert!(lag < Duration::from_millis(100), "cancelled after {lag:?}");
    let e = &app.usage_events(&token, 1).await[0];
    assert_eq!(e["error_code"], "client_disconnected");
    assert_eq!(e["http_status"], 499);
    // The prompt reached the upstream, so it is billed (counted, as no usage came back).
    assert_eq!(e["status"], "partial");
    assert_eq!(e["estimated"], true);
    assert_eq!(e["output_tokens"], 0);
    assert!(e["input_tokens"].as_u64().unwrap() > 0);
    app.assert_money_sound(&token).await;
}

#[tokio::test]
async fn the_admin_provider_report_is_for_admins_only() {
    let app = TestApp::start().await;
    let (token, _) = app.user_with_key("nosy@example.com").await;
    let (status, _) = app.get_json("/api/admin/providers", &token).await;
    assert_eq!(status, 403);
    let report = providers_report(&app).await;
    let names: Vec<&str> = report
        .iter()
        .map(|d| d["deployment"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "fake/gemma3:4b",
            "fake/qwen3:32b",
            "fake/nomic-embed-text",
            "closed/gone"
        ]
    );
    let d = deployment(&report, "fake/gemma3:4b");
    assert_eq!(d["state"], "healthy");
    assert_eq!(d["keys"], 0);
    assert_eq!(d["in_flight"], 0);
    assert!(d["p50_ms"].is_null());
}

#[tokio::test]
async fn streaming_through_a_stream_keeps_the_provider_on_every_chunk() {
    let app = TestApp::start().await;
    let (_, key) = app.user_with_key("chunks@example.com").await;
    let r = app
        .chat(
            &key,
            json!({ "model": "fast", "stream": true, "messages": [{ "role": "user", "content": "hi" }] }),
        )
        .await;
    let mut body = r.bytes_stream();
    let mut text = String::new();
    while let Some(c) = body.next().await {
        text.push_str(std::str::from_utf8(&c.unwrap()).unwrap());
    }
    let chunks: Vec<Value> = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(!chunks.is_empty());
    assert!(chunks
        .iter()
        .all(|c| c["provider"] == "fake" && c["model"] == "fast"));
}

#[test]
fn auto_settings_that_cannot_work_are_refused_at_start() {
    let base = crate::support::config_toml(
        "sqlite::memory:",
        "/tmp/unused",
        "http://127.0.0.1:9/v1",
        1.0,
    );
    let refused = |extra: &str| {
        let file: switchyard::config::FileConfig =
            toml::from_str(&format!("{base}{extra}")).unwrap();
        switchyard::config::Config::from_file(file)
            .unwrap_err()
            .to_string()
    };
    let msg = refused("[routing.auto]\naliases = [\"fast\"]\n");
    assert!(msg.contains("`fast` is also a model's name"), "{msg}");
    let msg = refused("[routing.auto]\nmodels = [\"nope\"]\n");
    assert!(msg.contains("no model named `nope`"), "{msg}");
    let msg = refused("[routing.auto]\nmodels = [\"embed\"]\n");
    assert!(msg.contains("`embed` is not a chat model"), "{msg}");
}
