use crate::support::{assert_error, TestApp, PASSWORD};
use serde_json::{json, Value};

#[tokio::test]
async fn signup_returns_a_token_and_a_session_cookie_and_both_work() {
    let app = TestApp::start().await;
    let r = app
        .client
        .post(app.url("/api/auth/signup"))
        .json(&json!({ "email": "Alice@Example.com", "password": PASSWORD, "name": "Alice" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.starts_with("switchyard_session=sy_sess_"),
        "{cookie}"
    );
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/")
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["user"]["email"], "Alice@Example.com");
    assert_eq!(body["user"]["role"], "user");
    assert_eq!(body["user"]["plan"], "free");
    let token = body["access_token"].as_str().unwrap();

    let (status, me) = app.get_json("/api/auth/me", token).await;
    assert_eq!(status, 200);
    assert_eq!(me["name"], "Alice");

    let session = cookie.split(';').next().unwrap();
    let r = app
        .client
        .get(app.url("/api/auth/me"))
        .header("cookie", session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap()["email"],
        "Alice@Example.com"
    );
}

#[tokio::test]
async fn login_is_case_insensitive_on_email_and_rejects_wrong_passwords() {
    let app = TestApp::start().await;
    app.signup("bob@example.com").await;
    let login = |email: &'static str, password: &'static str| {
        app.client
            .post(app.url("/api/auth/login"))
            .json(&json!({ "email": email, "password": password }))
            .send()
    };
    let r = login("BOB@example.COM", PASSWORD).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("set-cookie"));
    let body: Value = r.json().await.unwrap();
    assert!(body["access_token"]
        .as_str()
        .unwrap()
        .starts_with("sy_sess_"));

    assert_error(
        login("bob@example.com", "wrong-password-123")
            .await
            .unwrap(),
        401,
        "invalid_credentials",
    )
    .await;
    let unknown = assert_error(
        login("nobody@example.com", PASSWORD).await.unwrap(),
        401,
        "invalid_credentials",
    )
    .await;
    assert_eq!(
        unknown, "wrong email or password",
        "unknown emails are not revealed"
    );
}

#[tokio::test]
async fn logout_ends_the_session_at_once() {
    let app = TestApp::start().await;
    let token = app.signup("carol@example.com").await;
    let r = app
        .client
        .post(app.url("/api/auth/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let r = app
        .client
        .get(app.url("/api/auth/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "unauthenticated").await;
}

#[tokio::test]
async fn signup_validates_email_password_and_uniqueness() {
    let app = TestApp::start().await;
    let signup = |email: &'static str, password: &'static str| {
        app.client
            .post(app.url("/api/auth/signup"))
            .json(&json!({ "email": email, "password": password, "name": "x" }))
            .send()
    };
    let msg = assert_error(
        signup("dave@example.com", "short").await.unwrap(),
        400,
        "weak_password",
    )
    .await;
    assert!(msg.contains("at least 10 characters"), "{msg}");
    assert_error(
        signup("not-an-email", PASSWORD).await.unwrap(),
        400,
        "invalid_email",
    )
    .await;
    assert_eq!(
        signup("dave@example.com", PASSWORD).await.unwrap().status(),
        201
    );
    assert_error(
        signup("DAVE@EXAMPLE.COM", PASSWORD).await.unwrap(),
        409,
        "email_taken",
    )
    .await;
    let r = app
        .client
        .post(app.url("/api/auth/signup"))
        .json(&json!({ "email": "e@example.com" }))
        .send()
        .await
        .unwrap();
    let msg = assert_error(r, 400, "invalid_body").await;
    assert!(msg.contains("password"), "names the missing field: {msg}");
    assert_eq!(
        app.account_count().await,
        2,
        "the admin and dave: no partial accounts from bad input"
    );
}

#[tokio::test]
async fn api_routes_need_a_session_and_refuse_api_keys() {
    let app = TestApp::start().await;
    let (_, key) = app.user_with_key("erin@example.com").await;
    let r = app.client.get(app.url("/api/keys")).send().await.unwrap();
    assert_error(r, 401, "unauthenticated").await;
    let r = app
        .client
        .get(app.url("/api/keys"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "unauthenticated").await;
    let r = app
        .client
        .get(app.url("/api/auth/me"))
        .bearer_auth("sy_sess_forged")
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "unauthenticated").await;
}
