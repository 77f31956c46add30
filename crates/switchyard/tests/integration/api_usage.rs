use crate::support::{chat_body, TestApp};

#[tokio::test]
async fn usage_is_paginated_newest_first_and_private_to_its_owner() {
    let app = TestApp::start().await;
    let (alice, key) = app.user_with_key("ua@example.com").await;
    let (bob, _) = app.user_with_key("ub@example.com").await;
    for model in ["fast", "pro", "fast"] {
        assert_eq!(app.chat(&key, chat_body(model)).await.status(), 200);
    }
    app.usage_events(&alice, 3).await;
    let (status, page) = app.get_json("/api/usage?limit=2&offset=0", &alice).await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            page["total"].as_u64(),
            page["limit"].as_u64(),
            page["offset"].as_u64()
        ),
        (Some(3), Some(2), Some(0))
    );
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["model"], "fast");
    assert_eq!(items[1]["model"], "pro");
    for field in [
        "id",
        "model",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "latency_ms",
        "status",
        "error_code",
        "created_at",
    ] {
        assert!(items[0].get(field).is_some(), "{field}");
    }
    let (_, page2) = app.get_json("/api/usage?limit=2&offset=2", &alice).await;
    assert_eq!(page2["items"].as_array().unwrap().len(), 1);
    let (_, theirs) = app.get_json("/api/usage", &bob).await;
    assert_eq!(theirs["total"], 0);
    let (status, _) = app.get_json("/api/usage?limit=lots", &alice).await;
    assert_eq!(status, 400);
}
