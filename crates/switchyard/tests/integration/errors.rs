use crate::support::{assert_error, Options, TestApp};
use serde_json::json;

#[tokio::test]
async fn malformed_requests_get_400_invalid_body_naming_the_problem() {
    let app = TestApp::start().await;
    let (token, key) = app.user_with_key("bad@example.com").await;
    let raw = |body: &'static str| {
        app.client
            .post(app.url("/v1/chat/completions"))
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let msg = assert_error(
        raw("{\"model\": \"fast\",").await.unwrap(),
        400,
        "invalid_body",
    )
    .await;
    assert!(msg.contains("not valid JSON"), "{msg}");
    let msg = assert_error(
        raw("{\"messages\": []}").await.unwrap(),
        400,
        "invalid_body",
    )
    .await;
    assert_eq!(msg, "missing required field `model`");
    let msg = assert_error(
        raw("{\"model\": \"fast\"}").await.unwrap(),
        400,
        "invalid_body",
    )
    .await;
    assert_eq!(msg, "missing required field `messages`");
    let msg = assert_error(raw("[1,2]").await.unwrap(), 400, "invalid_body").await;
    assert!(msg.contains("JSON object"));
    let msg = assert_error(
        raw("{\"model\":\"fast\",\"model\":\"pro\",\"messages\":[]}")
            .await
            .unwrap(),
        400,
        "invalid_body",
    )
    .await;
    assert!(msg.contains("more than once"));
    let msg = assert_error(
        raw("{\"model\":\"fast\",\"messages\":[],\"stream\":\"yes\"}")
            .await
            .unwrap(),
        400,
        "invalid_body",
    )
    .await;
    assert!(msg.contains("`stream`"));
    assert_error(
        raw("{\"model\":\"gpt-9\",\"messages\":[]}").await.unwrap(),
        404,
        "model_not_found",
    )
    .await;
    assert!(
        app.fake.received().is_empty(),
        "nothing bad reached the upstream"
    );
    let events = app.usage_events(&token, 7).await;
    assert!(events
        .iter()
        .all(|e| e["status"] == "error" && e["cost_usd"] == "0.00"));
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_the_error_shape() {
    let app = TestApp::start().await;
    let (_, key) = app.user_with_key("routes@example.com").await;
    let r = app
        .client
        .post(app.url("/v1/audio/speech"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    let msg = assert_error(r, 404, "endpoint_not_supported").await;
    assert!(msg.contains("/v1/audio/speech"));
    let r = app
        .client
        .get(app.url("/api/nothing"))
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "not_found").await;
    let r = app
        .client
        .delete(app.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_error(r, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn oversized_and_non_json_bodies_are_refused() {
    let app = TestApp::start().await;
    let (_, key) = app.user_with_key("size@example.com").await;
    let huge = "x".repeat(70_000);
    let r = app
        .chat(
            &key,
            json!({ "model": "fast", "messages": [{ "role": "user", "content": huge }] }),
        )
        .await;
    assert_error(r, 413, "body_too_large").await;
    let r = app
        .client
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .header("content-type", "text/plain")
        .body("{\"model\":\"fast\",\"messages\":[]}")
        .send()
        .await
        .unwrap();
    assert_error(r, 415, "unsupported_media_type").await;
    assert!(app.fake.received().is_empty());
}

async fn boom() -> &'static str {
    let v: Vec<u8> = Vec::new();
    #[allow(clippy::indexing_slicing)]
    let _ = v[3];
    "unreachable"
}

#[tokio::test]
async fn a_panicking_handler_becomes_a_500_in_the_error_shape() {
    let extra = axum::Router::new().route("/debug/boom", axum::routing::get(boom));
    let app = TestApp::with(Options {
        extra_routes: extra,
        ..Default::default()
    })
    .await
    .unwrap();
    let r = app.client.get(app.url("/debug/boom")).send().await.unwrap();
    assert!(r.headers().contains_key("x-request-id"));
    assert_error(r, 500, "internal_error").await;
    let r = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 200, "the server carries on");
}
