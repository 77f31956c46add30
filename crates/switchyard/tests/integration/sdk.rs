//! The official Python SDKs against the gateway, each with the two-line change users make:
//! `openai`, `anthropic` and `google-genai`. They live in the project's venv (`scripts/test`
//! installs them); without it the tests are skipped, except under CI=true where they must run.

use crate::support::TestApp;
use std::path::PathBuf;
use tokio::process::Command;

fn venv_python() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join(".venv/bin/python");
    python.exists().then_some(python)
}

/// Runs `tests/sdk/{script}` with the gateway's base URL (plus `suffix`) and a key; `None`
/// when there is no venv (outside CI). Asserts the script printed `ALL OK`.
async fn run_script(app: &TestApp, script: &str, suffix: &str, key: &str) -> Option<()> {
    let Some(python) = venv_python() else {
        assert!(
            std::env::var("CI").is_err(),
            "CI=true but .venv is missing: run scripts/test"
        );
        eprintln!("skipping: no .venv with the SDKs (scripts/test creates it)");
        return None;
    };
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sdk")
        .join(script);
    let out = Command::new(python)
        .arg(path)
        .env("SWITCHYARD_BASE_URL", format!("{}{suffix}", app.base))
        .env("SWITCHYARD_BASE", &app.base)
        .env("SWITCHYARD_API_KEY", key)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{script} failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("ALL OK"), "{stdout}");
    Some(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_openai_python_sdk_works_against_the_gateway() {
    let app = TestApp::start().await;
    let (token, key) = app.user_with_key("sdk@example.com").await;
    if run_script(&app, "openai_sdk.py", "/v1", &key)
        .await
        .is_none()
    {
        return;
    }
    // chat, stream, embeddings; the models list and the error call write no usage or an error event.
    let events = app.usage_events(&token, 4).await;
    assert!(events
        .iter()
        .any(|e| e["stream"] == true && e["status"] == "ok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_anthropic_python_sdk_works_against_the_gateway() {
    let app = crate::protocols::app().await;
    let (token, key) = app.user_with_key("sdk-anthropic@example.com").await;
    if run_script(&app, "anthropic_sdk.py", "", &key)
        .await
        .is_none()
    {
        return;
    }
    // Per model: create, stream, tool call, its answer, streamed tool call; plus the two
    // refused requests (unknown model, `thinking` for Gemini) recorded as errors.
    let events = app.usage_events(&token, 17).await;
    assert_eq!(events.iter().filter(|e| e["status"] == "ok").count(), 15);
    assert!(events.iter().all(|e| e["endpoint"] == "messages"));
    app.assert_money_sound(&token).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_google_genai_sdk_works_against_the_gateway() {
    let app = crate::protocols::app().await;
    let (token, key) = app.user_with_key("sdk-gemini@example.com").await;
    if run_script(&app, "gemini_sdk.py", "", &key).await.is_none() {
        return;
    }
    // Per model: generate, stream, tool call, its answer; plus the unknown model.
    let events = app.usage_events(&token, 13).await;
    assert_eq!(events.iter().filter(|e| e["status"] == "ok").count(), 12);
    assert!(events.iter().all(|e| e["endpoint"] == "generate_content"));
    app.assert_money_sound(&token).await;
}
