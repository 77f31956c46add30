use crate::support::{assert_error, chat_body, Options, TestApp};
use sqlx::{Connection, Executor};
use std::time::{Duration, Instant};

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

#[tokio::test]
async fn usage_summary_totals_by_model_day_and_key() {
    let app = TestApp::start().await;
    let (token, key) = app.user_with_key("sum@example.com").await;
    for model in ["fast", "pro", "pro"] {
        assert_eq!(app.chat(&key, chat_body(model)).await.status(), 200);
    }
    app.usage_events(&token, 3).await;
    let (status, by_model) = app
        .get_json("/api/usage/summary?group_by=model", &token)
        .await;
    assert_eq!(status, 200);
    let items = by_model["items"].as_array().unwrap();
    assert_eq!(
        (
            items[0]["group"].as_str(),
            items[0]["requests"].as_u64(),
            items[0]["cost_usd"].as_str()
        ),
        (Some("pro"), Some(2), Some("0.000032"))
    );
    assert_eq!(
        (items[1]["group"].as_str(), items[1]["cost_usd"].as_str()),
        (Some("fast"), Some("0.0000032"))
    );
    assert_eq!(by_model["total_cost_usd"], "0.0000352");
    let (_, by_day) = app
        .get_json("/api/usage/summary?group_by=day", &token)
        .await;
    let today = domain::UnixMillis::now().to_rfc3339()[..10].to_owned();
    assert_eq!(by_day["items"][0]["group"], today);
    assert_eq!(by_day["items"][0]["input_tokens"], 33);
    let (_, by_key) = app
        .get_json("/api/usage/summary?group_by=key", &token)
        .await;
    assert_eq!(by_key["items"].as_array().unwrap().len(), 1);
    let (status, _) = app
        .get_json("/api/usage/summary?group_by=week", &token)
        .await;
    assert_eq!(status, 400);
    let (_, past) = app
        .get_json(
            "/api/usage/summary?group_by=model&from=2020-01-01T00:00:00Z&to=2020-02-01T00:00:00Z",
            &token,
        )
        .await;
    assert_eq!(past["items"], serde_json::json!([]));
}

/// The database stops taking writes (another process holds SQLite's write lock). Requests
/// run while the writer is less than `usage.backlog` events behind; past that a request waits
/// for it, is refused with 503 when it does not catch up in time, and goes through as soon as
/// it does. Nothing is lost: every request that ran is stored and billed once.
#[tokio::test]
async fn requests_wait_for_a_writer_that_falls_behind_and_nothing_is_lost() {
    let app = TestApp::with(Options {
        extra_toml: "[usage]\nbacklog = 2\nbacklog_wait_secs = 1\n".to_owned(),
        ..Options::default()
    })
    .await
    .unwrap();
    let (token, key) = app.user_with_key("backlog@example.com").await;
    let mut lock = sqlx::AnyConnection::connect(&app.db.url).await.unwrap();
    lock.execute("BEGIN IMMEDIATE").await.unwrap();
    for _ in 0..2 {
        assert_eq!(app.chat(&key, chat_body("fast")).await.status(), 200);
    }

    let started = Instant::now();
    let r = app.chat(&key, chat_body("fast")).await;
    let waited = started.elapsed();
    assert_eq!(
        r.headers().get("retry-after").and_then(|v| v.to_str().ok()),
        Some("1")
    );
    assert_error(r, 503, "service_unavailable").await;
    assert!(
        waited >= Duration::from_millis(900),
        "refused after {waited:?}"
    );

    // A request waiting when the database comes back goes through once the writer caught up.
    let (r, ()) = tokio::join!(app.chat(&key, chat_body("fast")), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        lock.execute("ROLLBACK").await.unwrap();
    });
    assert_eq!(r.status(), 200);

    // The two before, the one that waited; the refused one never ran.
    let events = app.usage_events(&token, 3).await;
    assert!(events.iter().all(|e| e["status"] == "ok"), "{events:?}");
    app.assert_money_sound(&token).await;
}
