//! Per-key rate limits: RPM (smooth, GCRA), concurrency and TPM, with exact headers.

use crate::support::{assert_error, chat_body, TestApp};
use serde_json::{json, Value};
use std::time::Duration;
use testkit::fake_openai::Behavior;

async fn key_with_limits(app: &TestApp, email: &str, limits: Value) -> (String, String) {
    let (token, key) = app.user_with_key(email).await;
    let (_, list) = app.get_json("/api/keys", &token).await;
    let id = list["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, body) = app
        .admin(
            reqwest::Method::PATCH,
            &format!("/api/admin/keys/{id}"),
            limits,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    (token, key)
}

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpm_20_refuses_the_21st_request_with_the_right_retry_after_and_then_admits() {
    let app = TestApp::start().await;
    let (_, key) = key_with_limits(&app, "rpm@example.com", json!({ "rpm_limit": 20 })).await;
    let r = app
        .client
        .get(app.url("/v1/models"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (
            header(&r, "x-ratelimit-limit"),
            header(&r, "x-ratelimit-remaining")
        ),
        ("20".into(), "20".into()),
        "listing models consumes nothing"
    );
    for i in 0..20 {
        let r = app.chat(&key, chat_body("fast")).await;
        assert_eq!(r.status(), 200, "request {}", i + 1);
        assert_eq!(header(&r, "x-ratelimit-limit"), "20");
        assert_eq!(header(&r, "x-ratelimit-remaining"), (19 - i).to_string());
    }
    let r = app.chat(&key, chat_body("fast")).await;
    assert_eq!(
        header(&r, "retry-after"),
        "3",
        "one request every 60/20 seconds"
    );
    assert_eq!(header(&r, "x-ratelimit-remaining"), "0");
    assert_eq!(header(&r, "x-ratelimit-reset"), "60");
    let msg = assert_error(r, 429, "rate_limit_exceeded").await;
    assert!(msg.contains("20 requests per minute"), "{msg}");
    tokio::time::sleep(Duration::from_millis(3_050)).await;
    assert_eq!(
        app.chat(&key, chat_body("fast")).await.status(),
        200,
        "after Retry-After it passes"
    );
    assert_eq!(
        app.chat(&key, chat_body("fast")).await.status(),
        429,
        "and only one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plans_rpm_applies_and_a_key_override_can_raise_it() {
    let app = TestApp::start().await;
    let (token, id) = app.signup_with_id("free@example.com").await;
    let key = app.create_key(&token, json!({ "name": "k" })).await;
    let secret = key["key"].as_str().unwrap();
    let r = app.chat(secret, chat_body("fast")).await;
    assert_eq!(header(&r, "x-ratelimit-limit"), "20", "the free plan's RPM");
    let path = format!("/api/admin/keys/{}", key["id"].as_str().unwrap());
    app.admin(reqwest::Method::PATCH, &path, json!({ "rpm_limit": 500 }))
        .await;
    let r = app.chat(secret, chat_body("fast")).await;
    assert_eq!(
        header(&r, "x-ratelimit-limit"),
        "500",
        "overrides apply at once"
    );
    app.set_plan(&id, "starter").await;
    app.admin(reqwest::Method::PATCH, &path, json!({ "rpm_limit": null }))
        .await;
    let r = app.chat(secret, chat_body("fast")).await;
    assert_eq!(
        header(&r, "x-ratelimit-limit"),
        "60",
        "back to the (new) plan's RPM"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrency_limit_refuses_requests_beyond_it_while_others_run() {
    let app = TestApp::start().await;
    let (_, key) =
        key_with_limits(&app, "conc@example.com", json!({ "concurrency_limit": 1 })).await;
    app.fake.script([Behavior::Slow {
        chunks: 6,
        every: Duration::from_millis(100),
    }]);
    let stream = app.chat(&key, json!({ "model": "fast", "stream": true, "messages": [{ "role": "user", "content": "hi" }] })).await;
    assert_eq!(stream.status(), 200);
    let r = app.chat(&key, chat_body("fast")).await;
    assert_eq!(header(&r, "retry-after"), "1");
    let msg = assert_error(r, 429, "rate_limit_exceeded").await;
    assert!(msg.contains("concurrency"), "{msg}");
    assert!(stream.text().await.unwrap().ends_with("data: [DONE]\n\n"));
    assert_eq!(
        app.chat(&key, chat_body("fast")).await.status(),
        200,
        "the slot is free again"
    );
}

#[tokio::test]
async fn a_tokens_per_minute_limit_counts_the_tokens_used() {
    let app = TestApp::start().await;
    let (_, key) = key_with_limits(&app, "tpm@example.com", json!({ "tpm_limit": 30 })).await;
    // Each answer uses 11 + 7 = 18 tokens: the first two fit in 30 per minute, then no more.
    assert_eq!(app.chat(&key, chat_body("fast")).await.status(), 200);
    assert_eq!(app.chat(&key, chat_body("fast")).await.status(), 200);
    let r = app.chat(&key, chat_body("fast")).await;
    let wait: u64 = header(&r, "retry-after").parse().unwrap();
    assert!((1..=60).contains(&wait), "retry after {wait}s");
    let msg = assert_error(r, 429, "rate_limit_exceeded").await;
    assert!(msg.contains("30 tokens per minute"), "{msg}");
}

#[tokio::test]
async fn the_plan_decides_which_models_a_key_may_use() {
    let app = TestApp::start().await;
    let (token, id) = app.signup_with_id("plan@example.com").await;
    let key = app.create_key(&token, json!({ "name": "k" })).await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, models) = app.get_json("/v1/models", &key).await;
    let ids = crate::support::model_ids(&models);
    assert_eq!(
        ids,
        vec!["fast", "embed", "auto"],
        "the free plan's models, and the router"
    );
    let msg = assert_error(
        app.chat(&key, chat_body("pro")).await,
        403,
        "model_not_allowed",
    )
    .await;
    assert!(msg.contains("free plan"), "{msg}");
    app.set_plan(&id, "developer").await;
    assert_eq!(
        app.chat(&key, chat_body("pro")).await.status(),
        200,
        "an upgrade applies at once"
    );
}
