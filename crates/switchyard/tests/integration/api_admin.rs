//! `/api/admin`: only administrators, and every change takes effect at once.

use crate::support::{assert_error, chat_body, TestApp};
use serde_json::json;

#[tokio::test]
async fn admin_routes_refuse_everyone_but_administrators() {
    let app = TestApp::start().await;
    let (token, _) = app.user_with_key("user@example.com").await;
    for path in [
        "/api/admin/plans",
        "/api/admin/accounts",
        "/api/admin/ledger/verify",
    ] {
        let r = app
            .client
            .get(app.url(path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_error(r, 403, "forbidden").await;
        let r = app.client.get(app.url(path)).send().await.unwrap();
        assert_error(r, 401, "unauthenticated").await;
    }
}

#[tokio::test]
async fn plans_are_listed_and_edited() {
    let app = TestApp::start().await;
    let (status, plans) = app
        .admin(reqwest::Method::GET, "/api/admin/plans", json!(null))
        .await;
    assert_eq!(status, 200);
    let rows: Vec<(String, String, String, u64)> = plans["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["monthly_price_usd"].as_str().unwrap().to_owned(),
                p["included_credits_usd"].as_str().unwrap().to_owned(),
                p["rpm"].as_u64().unwrap(),
            )
        })
        .collect();
    let expect = [
        ("free", "0.00", "1.00", 20),
        ("starter", "10.00", "12.00", 60),
        ("pro", "20.00", "25.00", 120),
        ("developer", "49.00", "65.00", 300),
        ("team", "199.00", "275.00", 1000),
    ];
    let expect: Vec<(String, String, String, u64)> = expect
        .iter()
        .map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.to_string(), *d))
        .collect();
    assert_eq!(rows, expect);
    assert_eq!(
        plans["items"][2]["allowed_models"],
        json!(["fast", "qwen-fast", "qwen-pro", "deepseek-code", "embed"])
    );

    let (status, body) = app
        .admin(reqwest::Method::PUT, "/api/admin/plans/free", json!({ "monthly_price_usd": 0, "included_credits_usd": "2.50", "monthly_cap_usd": 5, "allowed_models": ["fast"], "rpm": 7 }))
        .await;
    assert_eq!(status, 200, "{body}");
    let (token, _) = app.signup_with_id("later@example.com").await;
    assert_eq!(
        app.balance(&token).await["balance_usd"],
        "2.50",
        "new accounts get the edited credits"
    );
    let key = app.create_key(&token, json!({ "name": "k" })).await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app.chat(&key, chat_body("fast")).await;
    assert_eq!(r.headers()["x-ratelimit-limit"], "7");
    let (status, body) = app.admin(reqwest::Method::PUT, "/api/admin/plans/bad", json!({ "monthly_price_usd": 0, "included_credits_usd": 0, "monthly_cap_usd": 1, "allowed_models": ["gpt-9"], "rpm": 5 })).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_body"))
    );
}

#[tokio::test]
async fn accounts_are_listed_credited_and_disabled() {
    let app = TestApp::start().await;
    let (token, key) = app.user_with_key("acct@example.com").await;
    let (_, list) = app
        .admin(reqwest::Method::GET, "/api/admin/accounts", json!(null))
        .await;
    assert_eq!(list["total"], 2);
    let me = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["email"] == "acct@example.com")
        .unwrap()
        .clone();
    assert_eq!(me["balance_usd"], "1.00");
    let id = me["id"].as_str().unwrap();

    let (status, entry) = app
        .admin(
            reqwest::Method::POST,
            &format!("/api/admin/accounts/{id}/credits"),
            json!({ "amount_usd": 12.5, "reason": "goodwill" }),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(
        (
            entry["kind"].as_str(),
            entry["amount_usd"].as_str(),
            entry["reason"].as_str()
        ),
        (Some("grant"), Some("12.50"), Some("goodwill"))
    );
    let (_, entry) = app
        .admin(
            reqwest::Method::POST,
            &format!("/api/admin/accounts/{id}/credits"),
            json!({ "amount_usd": "-0.5", "reason": "correction" }),
        )
        .await;
    assert_eq!(entry["kind"], "adjustment");
    assert_eq!(app.balance(&token).await["balance_usd"], "13.00");
    let (status, _) = app
        .admin(
            reqwest::Method::POST,
            &format!("/api/admin/accounts/{id}/credits"),
            json!({ "amount_usd": 0, "reason": "x" }),
        )
        .await;
    assert_eq!(status, 400);

    let (status, _) = app
        .admin(
            reqwest::Method::PATCH,
            &format!("/api/admin/accounts/{id}"),
            json!({ "status": "disabled" }),
        )
        .await;
    assert_eq!(status, 200);
    assert_error(app.chat(&key, chat_body("fast")).await, 403, "forbidden").await;
    app.admin(
        reqwest::Method::PATCH,
        &format!("/api/admin/accounts/{id}"),
        json!({ "status": "active" }),
    )
    .await;
    assert_eq!(app.chat(&key, chat_body("fast")).await.status(), 200);
    let (status, _) = app
        .admin(
            reqwest::Method::PATCH,
            &format!("/api/admin/accounts/{id}"),
            json!({ "plan": "platinum" }),
        )
        .await;
    assert_eq!(status, 400);
    app.assert_money_sound(&token).await;
}
