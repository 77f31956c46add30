use crate::support::{assert_error, chat_body, TestApp};
use serde_json::{json, Value};

#[tokio::test]
async fn a_key_is_shown_once_and_listed_by_prefix_only() {
    let app = TestApp::start().await;
    let token = app.signup("k1@example.com").await;
    let created = app
        .create_key(&token, json!({ "name": "laptop", "monthly_limit_usd": "12.5", "allowed_models": ["fast"], "expires_at": "2099-01-01T00:00:00Z" }))
        .await;
    let secret = created["key"].as_str().unwrap();
    assert!(
        secret.starts_with("sk-sy-") && secret.len() == 44,
        "{secret}"
    );
    assert_eq!(created["prefix"], &secret[..10]);
    assert_eq!(created["monthly_limit_usd"], "12.50");
    assert_eq!(created["allowed_models"], json!(["fast"]));
    assert_eq!(created["expires_at"], "2099-01-01T00:00:00.000Z");

    let (status, list) = app.get_json("/api/keys", &token).await;
    assert_eq!(status, 200);
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], created["id"]);
    assert_eq!(items[0]["prefix"], created["prefix"]);
    assert!(
        items[0].get("key").is_none(),
        "the secret is never shown again"
    );
    assert!(!list.to_string().contains(secret));
}

#[tokio::test]
async fn users_never_see_or_touch_each_others_keys() {
    let app = TestApp::start().await;
    let alice = app.signup("alice@example.com").await;
    let bob = app.signup("bob@example.com").await;
    let key = app.create_key(&alice, json!({ "name": "alice's" })).await;
    let id = key["id"].as_str().unwrap();
    let path = format!("/api/keys/{id}");

    let (_, list) = app.get_json("/api/keys", &bob).await;
    assert_eq!(list["items"], json!([]));
    let (status, _) = app.get_json(&path, &bob).await;
    assert_eq!(status, 404);
    let r = app
        .client
        .patch(app.url(&path))
        .bearer_auth(&bob)
        .json(&json!({ "disabled": true }))
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "not_found").await;
    let r = app
        .client
        .delete(app.url(&path))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "not_found").await;

    let (status, still) = app.get_json(&path, &alice).await;
    assert_eq!(status, 200);
    assert_eq!(still["disabled"], false);
    let r = app
        .chat(key["key"].as_str().unwrap(), chat_body("fast"))
        .await;
    assert_eq!(r.status(), 200, "bob's attempts changed nothing");
}

#[tokio::test]
async fn disabled_key_is_rejected_immediately_and_works_again_when_enabled() {
    let app = TestApp::start().await;
    let (token, key) = app.user_with_key("dis@example.com").await;
    assert_eq!(
        app.chat(&key, chat_body("fast")).await.status(),
        200,
        "cached as valid"
    );
    let (_, list) = app.get_json("/api/keys", &token).await;
    let path = format!("/api/keys/{}", list["items"][0]["id"].as_str().unwrap());

    let r = app
        .client
        .patch(app.url(&path))
        .bearer_auth(&token)
        .json(&json!({ "disabled": true, "name": "paused" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let patched: Value = r.json().await.unwrap();
    assert_eq!(
        (patched["disabled"].as_bool(), patched["name"].as_str()),
        (Some(true), Some("paused"))
    );
    let msg = assert_error(
        app.chat(&key, chat_body("fast")).await,
        401,
        "invalid_api_key",
    )
    .await;
    assert!(msg.contains("disabled"), "{msg}");

    app.client
        .patch(app.url(&path))
        .bearer_auth(&token)
        .json(&json!({ "disabled": false }))
        .send()
        .await
        .unwrap();
    assert_eq!(app.chat(&key, chat_body("fast")).await.status(), 200);
}

#[tokio::test]
async fn deleted_key_stops_working_at_once() {
    let app = TestApp::start().await;
    let (token, key) = app.user_with_key("del@example.com").await;
    assert_eq!(app.chat(&key, chat_body("fast")).await.status(), 200);
    let (_, list) = app.get_json("/api/keys", &token).await;
    let path = format!("/api/keys/{}", list["items"][0]["id"].as_str().unwrap());
    let r = app
        .client
        .delete(app.url(&path))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_error(
        app.chat(&key, chat_body("fast")).await,
        401,
        "invalid_api_key",
    )
    .await;
    let (_, list) = app.get_json("/api/keys", &token).await;
    assert_eq!(list["items"], json!([]));
    let r = app
        .client
        .delete(app.url(&path))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "not_found").await;
}

#[tokio::test]
async fn expired_key_is_rejected() {
    let app = TestApp::start().await;
    let token = app.signup("exp@example.com").await;
    let r = app
        .client
        .post(app.url("/api/keys"))
        .bearer_auth(&token)
        .json(&json!({ "name": "old", "expires_at": "2001-01-01T00:00:00Z" }))
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "invalid_body").await;
    let key = app.create_key(&token, json!({ "name": "soon" })).await;
    let secret = key["key"].as_str().unwrap();
    assert_eq!(app.chat(secret, chat_body("fast")).await.status(), 200);
    let path = format!("/api/keys/{}", key["id"].as_str().unwrap());
    let r = app
        .client
        .patch(app.url(&path))
        .bearer_auth(&token)
        .json(&json!({ "expires_at": "2001-01-01T00:00:00Z" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let msg = assert_error(
        app.chat(secret, chat_body("fast")).await,
        401,
        "invalid_api_key",
    )
    .await;
    assert!(msg.contains("expired"), "{msg}");
    let r = app
        .client
        .patch(app.url(&path))
        .bearer_auth(&token)
        .json(&json!({ "expires_at": null }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["expires_at"], Value::Null);
    assert_eq!(app.chat(secret, chat_body("fast")).await.status(), 200);
}

#[tokio::test]
async fn key_scope_limits_models_listed_and_callable() {
    let app = TestApp::start().await;
    let token = app.signup("scope@example.com").await;
    let key = app
        .create_key(
            &token,
            json!({ "name": "embed only", "allowed_models": ["embed"] }),
        )
        .await;
    let secret = key["key"].as_str().unwrap();
    let (status, models) = app.get_json("/v1/models", secret).await;
    assert_eq!(status, 200);
    let ids = crate::support::model_ids(&models);
    assert_eq!(ids, vec!["embed"]);
    assert_error(
        app.chat(secret, chat_body("fast")).await,
        403,
        "model_not_allowed",
    )
    .await;
    let (status, _) = app.get_json("/v1/models/fast", secret).await;
    assert_eq!(status, 403);
    let r = app
        .client
        .post(app.url("/api/keys"))
        .bearer_auth(&token)
        .json(&json!({ "name": "x", "allowed_models": ["gpt-9"] }))
        .send()
        .await
        .unwrap();
    let msg = assert_error(r, 400, "invalid_body").await;
    assert!(msg.contains("gpt-9"));
}

#[tokio::test]
async fn keys_are_accepted_in_every_documented_place_and_nowhere_else() {
    let app = TestApp::start().await;
    let (token, key) = app.user_with_key("where@example.com").await;
    let get =
        |req: reqwest::RequestBuilder| async move { req.send().await.unwrap().status().as_u16() };
    assert_eq!(
        get(app.client.get(app.url("/v1/models")).bearer_auth(&key)).await,
        200
    );
    assert_eq!(
        get(app
            .client
            .get(app.url("/v1/models"))
            .header("x-api-key", &key))
        .await,
        200
    );
    assert_eq!(
        get(app
            .client
            .get(app.url("/v1/models"))
            .header("x-goog-api-key", &key))
        .await,
        200
    );
    assert_eq!(
        get(app.client.get(app.url(&format!("/v1/models?key={key}")))).await,
        200
    );
    assert_eq!(get(app.client.get(app.url("/v1/models"))).await, 401);
    assert_eq!(
        get(app.client.get(app.url("/v1/models")).bearer_auth(&token)).await,
        401,
        "session tokens are not API keys"
    );
    let mut typo = key.clone().into_bytes();
    typo[20] = if typo[20] == b'x' { b'y' } else { b'x' };
    let typo = String::from_utf8(typo).unwrap();
    let msg = assert_error(
        app.client
            .get(app.url("/v1/models"))
            .bearer_auth(&typo)
            .send()
            .await
            .unwrap(),
        401,
        "invalid_api_key",
    )
    .await;
    assert_eq!(msg, "invalid API key");
}
