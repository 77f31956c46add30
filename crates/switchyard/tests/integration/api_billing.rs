//! The money path over HTTP: balances, the ledger, top-ups, exact debits, pre-flight refusals
//! and the overspend bound — on SQLite and Postgres.

use crate::on_both_backends;
use crate::support::{assert_error, chat_body, TestApp};
use serde_json::{json, Value};
use std::time::Duration;
use testkit::fake_openai::Behavior;

on_both_backends!(
    a_new_account_starts_on_free_with_its_credits,
    |app: TestApp| async move {
        let (token, _) = app.signup_with_id("new@example.com").await;
        let b = app.balance(&token).await;
        assert_eq!(b["balance_usd"], "1.00");
        assert_eq!(b["plan_name"], "free");
        assert_eq!(b["monthly_spend_usd"], "0.00");
        assert_eq!(b["monthly_cap_usd"], "5.00");
        let (_, tx) = app.get_json("/api/billing/transactions", &token).await;
        assert_eq!(tx["total"], 1);
        assert_eq!(tx["items"][0]["kind"], "grant");
        assert_eq!(tx["items"][0]["amount_usd"], "1.00");
        assert_eq!(tx["items"][0]["balance_after_usd"], "1.00");
        app.assert_money_sound(&token).await;
    }
);

on_both_backends!(
    mock_top_ups_take_the_allowed_amounts_only,
    |app: TestApp| async move {
        let (token, _) = app.signup_with_id("top@example.com").await;
        let topup = |amount: Value| {
            app.client
                .post(app.url("/api/billing/topup"))
                .bearer_auth(&token)
                .json(&json!({ "amount_usd": amount }))
                .send()
        };
        let r = topup(json!(25)).await.unwrap();
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["balance_usd"], "26.00");
        assert_eq!(body["transaction"]["kind"], "topup");
        assert_eq!(topup(json!("10.00")).await.unwrap().status(), 200);
        let msg = assert_error(topup(json!(7)).await.unwrap(), 400, "topup_not_allowed").await;
        assert!(msg.contains("10, 25, 50, 100 or 500"), "{msg}");
        assert_error(topup(json!(-10)).await.unwrap(), 400, "topup_not_allowed").await;
        assert_error(topup(json!("ten")).await.unwrap(), 400, "invalid_body").await;
        assert_eq!(app.balance(&token).await["balance_usd"], "36.00");
        app.assert_money_sound(&token).await;
    }
);

on_both_backends!(
    every_request_is_debited_exactly_once_with_its_usage_event,
    |app: TestApp| async move {
        let (token, key) = app.user_with_key("spend@example.com").await;
        for _ in 0..3 {
            assert_eq!(app.chat(&key, chat_body("pro")).await.status(), 200);
        }
        // Every try fails (three by default): the request fails and costs nothing.
        app.fake.script(std::iter::repeat_n(
            Behavior::Status(500, json!({ "error": { "message": "boom" } })),
            3,
        ));
        assert_eq!(app.chat(&key, chat_body("pro")).await.status(), 503);
        // 3 × (11 × 0.50/M + 7 × 1.50/M) = 3 × 0.000016; the failed call costs nothing.
        let b = app.balance(&token).await;
        assert_eq!(b["balance_usd"], "0.999952");
        assert_eq!(b["monthly_spend_usd"], "0.000048");
        app.assert_money_sound(&token).await;
        let (_, tx) = app
            .get_json("/api/billing/transactions?limit=10", &token)
            .await;
        let usage: Vec<&Value> = tx["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "usage")
            .collect();
        // The writer debits each batch once: every paid call names its debit, and each
        // debit is the sum of the calls it names.
        let events = app.usage_events(&token, 4).await;
        let paid: Vec<&Value> = events.iter().filter(|e| e["status"] == "ok").collect();
        assert_eq!(paid.len(), 3);
        let usd = |v: &Value| v.as_str().unwrap().parse::<domain::Money>().unwrap();
        for debit in &usage {
            let covered: domain::Money = paid
                .iter()
                .filter(|e| e["ledger_entry_id"] == debit["id"])
                .map(|e| usd(&e["cost_usd"]))
                .sum();
            assert_eq!(covered, -usd(&debit["amount_usd"]), "{debit}");
        }
        assert!(paid.iter().all(|e| e["cost_usd"] == "0.000016"
            && usage.iter().any(|d| d["id"] == e["ledger_entry_id"])));
        assert_eq!(usage[0]["balance_after_usd"], "0.999952");
    }
);

on_both_backends!(
    refusals_before_going_upstream_are_402_with_clear_codes,
    |app: TestApp| async move {
        let (token, id) = app.signup_with_id("broke@example.com").await;
        app.set_plan(&id, "team").await;
        let key = app
            .create_key(
                &token,
                json!({ "name": "k", "monthly_limit_usd": "0.00002" }),
            )
            .await;
        let key = key["key"].as_str().unwrap().to_owned();
        // The key's limit: 0.000016 per call; the second call is admitted (0.000016 < 0.00002),
        // the third refused.
        assert_eq!(app.chat(&key, chat_body("pro")).await.status(), 200);
        assert_eq!(app.chat(&key, chat_body("pro")).await.status(), 200);
        let msg = assert_error(
            app.chat(&key, chat_body("pro")).await,
            402,
            "key_limit_reached",
        )
        .await;
        assert!(msg.contains("0.00002"), "{msg}");

        // The balance floor (0.001): leave 0.0009 and every key of the account is refused.
        let other = app.create_key(&token, json!({ "name": "unlimited" })).await;
        let other = other["key"].as_str().unwrap().to_owned();
        let left = app.balance(&token).await["balance_usd"]
            .as_str()
            .unwrap()
            .to_owned();
        let left: f64 = left.parse().unwrap();
        let deduct = format!("-{:.9}", left - 0.0009);
        app.credit(&id, &deduct).await;
        assert_eq!(app.balance(&token).await["balance_usd"], "0.0009");
        let msg = assert_error(
            app.chat(&other, chat_body("fast")).await,
            402,
            "insufficient_credits",
        )
        .await;
        assert!(msg.contains("top up"), "{msg}");
        assert_eq!(
            app.fake.received().len(),
            2,
            "refused calls never reach the upstream"
        );

        // A top-up lifts the refusal at once.
        let r = app
            .client
            .post(app.url("/api/billing/topup"))
            .bearer_auth(&token)
            .json(&json!({ "amount_usd": 10 }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(app.chat(&other, chat_body("fast")).await.status(), 200);
        app.assert_money_sound(&token).await;
    }
);

on_both_backends!(
    the_plans_monthly_spend_cap_stops_spending,
    |app: TestApp| async move {
        let (token, id) = app.signup_with_id("cap@example.com").await;
        let (status, _) = app
        .admin(
            reqwest::Method::PUT,
            "/api/admin/plans/tiny",
            json!({ "monthly_price_usd": 0, "included_credits_usd": 0, "monthly_cap_usd": "0.00004", "rpm": 100 }),
        )
        .await;
        assert_eq!(status, 200);
        app.set_plan(&id, "tiny").await;
        let key = app.create_key(&token, json!({ "name": "k" })).await["key"]
            .as_str()
            .unwrap()
            .to_owned();
        for _ in 0..3 {
            assert_eq!(app.chat(&key, chat_body("pro")).await.status(), 200);
        }
        let msg = assert_error(
            app.chat(&key, chat_body("pro")).await,
            402,
            "spend_cap_reached",
        )
        .await;
        assert!(msg.contains("tiny"), "{msg}");
        let b = app.balance(&token).await;
        assert_eq!(
            (
                b["monthly_spend_usd"].as_str(),
                b["monthly_cap_usd"].as_str()
            ),
            (Some("0.000048"), Some("0.00004"))
        );
        app.assert_money_sound(&token).await;
    }
);

on_both_backends!(
    concurrent_requests_never_spend_more_than_the_balance_plus_one_worst_case,
    |app: TestApp| async move {
        let (token, id) = app.signup_with_id("race@example.com").await;
        app.set_plan(&id, "team").await;
        app.credit(&id, "-0.99").await;
        assert_eq!(app.balance(&token).await["balance_usd"], "0.01");
        let key = app.create_key(&token, json!({ "name": "k" })).await["key"]
            .as_str()
            .unwrap()
            .to_owned();
        // Each call really costs 11 × 0.50/M + 1000 × 1.50/M = 0.0015055; about six fit in $0.01.
        app.fake.script((0..200).map(|_| Behavior::Costly {
            completion: 1000,
            delay: Duration::from_millis(30),
        }));
        let body = json!({ "model": "pro", "max_tokens": 1000, "messages": [{ "role": "user", "content": "Say hello" }] });
        let worst_case =
            (serde_json::to_vec(&body).unwrap().len() as f64) * 0.5e-6 + 1000.0 * 1.5e-6;
        let calls = (0..200).map(|_| app.chat(&key, body.clone()));
        let results = futures_util::future::join_all(calls).await;
        let ok = results.iter().filter(|r| r.status() == 200).count();
        let refused = results.iter().filter(|r| r.status() == 402).count();
        assert_eq!(
            ok + refused,
            200,
            "every call either ran or was refused for credit"
        );
        assert!(ok >= 6, "the credit that exists is used: {ok} calls ran");
        assert!(
            refused >= 150,
            "the balance ran out: only {refused} refused"
        );

        app.assert_money_sound(&token).await;
        let (_, tx) = app
            .get_json("/api/billing/transactions?limit=500", &token)
            .await;
        let debits: Vec<f64> = tx["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "usage")
            .map(|e| -e["amount_usd"].as_str().unwrap().parse::<f64>().unwrap())
            .collect();
        let events = app.usage_events(&token, 200).await;
        let billed = events
            .iter()
            .filter(|e| e["status"] == "ok" && e["ledger_entry_id"].is_string())
            .count();
        assert_eq!(billed, ok, "every call that ran is billed");
        let spent: f64 = debits.iter().sum();
        assert!(
            spent <= 0.01 + worst_case + 1e-12,
            "spent {spent} > balance + one worst case {worst_case}"
        );
        let balance: f64 = app.balance(&token).await["balance_usd"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            balance >= -worst_case - 1e-12,
            "balance {balance} below the bound"
        );
    }
);
