//! The main user journey on Postgres (the other tests run on SQLite; the storage conformance
//! suite covers every port on both).

use crate::support::{chat_body, Options, TestApp};
use serde_json::json;
use testkit::db::Kind;

#[tokio::test]
async fn signup_key_chat_stream_and_usage_work_on_postgres() {
    let Some(mut app) = TestApp::with(Options {
        kind: Kind::Postgres,
        ..Default::default()
    })
    .await
    else {
        return;
    };
    let (token, key) = app.user_with_key("pg@example.com").await;
    assert_eq!(app.chat(&key, chat_body("fast")).await.status(), 200);
    let r = app.chat(&key, json!({ "model": "fast", "stream": true, "messages": [{ "role": "user", "content": "hi" }] })).await;
    assert!(r.text().await.unwrap().ends_with("data: [DONE]\n\n"));
    let events = app.usage_events(&token, 2).await;
    assert!(events
        .iter()
        .all(|e| e["cost_usd"] == "0.0000032" && e["status"] == "ok"));
    let (_, list) = app.get_json("/api/keys", &token).await;
    assert!(
        list["items"][0]["last_used_at"].is_string(),
        "marked used by the usage writer"
    );
    app.stop().await;
}
