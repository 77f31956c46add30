//! Card payments: Checkout sessions on (a fake) Stripe, and the signed webhook crediting once.

use crate::support::{assert_error, Options, TestApp};
use engine::payments::sign;
use serde_json::{json, Value};
use testkit::fake_stripe::{FakeStripe, SECRET_KEY};

const WEBHOOK_SECRET: &str = "whsec_test_secret";

async fn app_with_stripe() -> (TestApp, FakeStripe) {
    let stripe = FakeStripe::start().await;
    let extra_toml = format!(
        "\n[stripe]\nsecret_key = \"{SECRET_KEY}\"\nwebhook_secret = \"{WEBHOOK_SECRET}\"\napi_base = \"{}\"\nsuccess_url = \"https://example.com/ok\"\ncancel_url = \"https://example.com/no\"\n",
        stripe.api_base()
    );
    let app = TestApp::with(Options {
        extra_toml,
        ..Default::default()
    })
    .await
    .unwrap();
    (app, stripe)
}

fn completed(event_id: &str, session: &str, account: &str, cents: i64) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": event_id,
        "object": "event",
        "type": "checkout.session.completed",
        "data": { "object": {
            "id": session, "object": "checkout.session", "client_reference_id": account,
            "amount_total": cents, "currency": "usd", "payment_status": "paid"
        } }
    }))
    .unwrap()
}

async fn deliver(app: &TestApp, body: &[u8], signature: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/billing/stripe/webhook"))
        .header("content-type", "application/json")
        .header("stripe-signature", signature)
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
}

fn now() -> i64 {
    domain::UnixMillis::now().as_secs()
}

#[tokio::test]
async fn checkout_creates_a_stripe_session_for_the_account() {
    let (app, stripe) = app_with_stripe().await;
    let (token, id) = app.signup_with_id("card@example.com").await;
    let r = app
        .client
        .post(app.url("/api/billing/checkout"))
        .bearer_auth(&token)
        .json(&json!({ "amount_usd": 25 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["url"], "https://checkout.stripe.com/c/pay/cs_test_1");
    let sent = &stripe.sessions()[0];
    assert_eq!(sent["mode"], "payment");
    assert_eq!(sent["client_reference_id"], id);
    assert_eq!(sent["line_items[0][price_data][unit_amount]"], "2500");
    assert_eq!(sent["line_items[0][price_data][currency]"], "usd");
    assert_eq!(sent["success_url"], "https://example.com/ok");
    let r = app
        .client
        .post(app.url("/api/billing/topup"))
        .bearer_auth(&token)
        .json(&json!({ "amount_usd": 10 }))
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "topup_not_allowed").await;
}

#[tokio::test]
async fn a_signed_webhook_credits_once_per_payment() {
    let (app, _stripe) = app_with_stripe().await;
    let (token, id) = app.signup_with_id("paid@example.com").await;
    let body = completed("evt_1", "cs_test_9", &id, 2500);
    let r = deliver(&app, &body, &sign(&body, WEBHOOK_SECRET, now())).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["result"], "credited");
    assert_eq!(app.balance(&token).await["balance_usd"], "26.00");

    // The same event again, and another event for the same session: nothing more.
    let r = deliver(&app, &body, &sign(&body, WEBHOOK_SECRET, now())).await;
    assert_eq!(
        r.json::<Value>().await.unwrap()["result"],
        "already_credited"
    );
    let again = completed("evt_2", "cs_test_9", &id, 2500);
    let r = deliver(&app, &again, &sign(&again, WEBHOOK_SECRET, now())).await;
    assert_eq!(
        r.json::<Value>().await.unwrap()["result"],
        "already_credited"
    );
    assert_eq!(app.balance(&token).await["balance_usd"], "26.00");
    let (_, tx) = app.get_json("/api/billing/transactions", &token).await;
    assert_eq!(tx["items"][0]["reference"], "stripe:cs_test_9");
    app.assert_money_sound(&token).await;
}

#[tokio::test]
async fn bad_or_stale_signatures_are_refused_and_credit_nothing() {
    let (app, _stripe) = app_with_stripe().await;
    let (token, id) = app.signup_with_id("forged@example.com").await;
    let body = completed("evt_x", "cs_test_x", &id, 50_000);
    for signature in [
        sign(&body, "whsec_wrong", now()),
        sign(&body, WEBHOOK_SECRET, now() - 301),
        format!("t={},v1=deadbeef", now()),
        "garbage".to_owned(),
    ] {
        assert_error(
            deliver(&app, &body, &signature).await,
            400,
            "invalid_signature",
        )
        .await;
    }
    let tampered = completed("evt_x", "cs_test_x", &id, 5_000_000);
    assert_error(
        deliver(&app, &tampered, &sign(&body, WEBHOOK_SECRET, now())).await,
        400,
        "invalid_signature",
    )
    .await;
    let unpaid = serde_json::to_vec(&json!({ "id": "evt_u", "type": "checkout.session.completed", "data": { "object": { "id": "cs_u", "client_reference_id": id, "amount_total": 100, "currency": "usd", "payment_status": "unpaid" } } })).unwrap();
    let r = deliver(&app, &unpaid, &sign(&unpaid, WEBHOOK_SECRET, now())).await;
    assert_eq!(r.json::<Value>().await.unwrap()["result"], "ignored");
    assert_eq!(app.balance(&token).await["balance_usd"], "1.00");
}

#[tokio::test]
async fn without_stripe_checkout_is_refused_and_mock_top_ups_work() {
    let app = TestApp::start().await;
    let (token, _) = app.signup_with_id("mock@example.com").await;
    let r = app
        .client
        .post(app.url("/api/billing/checkout"))
        .bearer_auth(&token)
        .json(&json!({ "amount_usd": 25 }))
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "payments_disabled").await;
    assert_eq!(app.balance(&token).await["payments"], "mock");
}
