use crate::support::{assert_error, TestApp};
use serde_json::json;

#[tokio::test]
async fn models_are_listed_in_openai_shape_with_prices() {
    let app = TestApp::start().await;
    let (_, key) = app.user_with_key("models@example.com").await;
    let (status, body) = app.get_json("/v1/models", &key).await;
    assert_eq!(status, 200);
    assert_eq!(body["object"], "list");
    let data = body["data"].as_array().unwrap();
    let ids: Vec<&str> = data.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        vec!["fast", "pro", "embed", "offline", "auto"],
        "configuration order, then the router"
    );
    let fast = &data[0];
    assert_eq!(fast["object"], "model");
    assert_eq!(fast["owned_by"], "switchyard");
    assert_eq!(fast["context_length"], 32768);
    assert_eq!(
        fast["pricing"],
        json!({ "currency": "USD", "unit": "1M tokens", "input": "0.10", "output": "0.30", "cached_input": null })
    );
    assert_eq!(data[2]["type"], "embedding");
    assert_eq!(data[2]["dimensions"], 768);
    assert!(
        !body.to_string().contains("gemma3:4b"),
        "upstream names stay private"
    );

    assert_eq!(data[4]["type"], "router");
    assert_eq!(data[4]["owned_by"], "switchyard");
    let (status, auto) = app.get_json("/v1/models/auto", &key).await;
    assert_eq!((status, &auto["type"]), (200, &json!("router")));

    let (status, one) = app.get_json("/v1/models/pro", &key).await;
    assert_eq!(status, 200);
    assert_eq!(one["id"], "pro");
    let r = app
        .client
        .get(app.url("/v1/models/gpt-9"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "model_not_found").await;
}
