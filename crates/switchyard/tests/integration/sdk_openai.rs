//! The official `openai` Python SDK against the gateway: the two-line change users make.
//! The SDK lives in the project's venv (`scripts/test` installs it); without it the test is
//! skipped, except under CI=true where it must run.

use crate::support::TestApp;
use std::path::PathBuf;
use tokio::process::Command;

fn venv_python() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join(".venv/bin/python");
    python.exists().then_some(python)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_openai_python_sdk_works_against_the_gateway() {
    let Some(python) = venv_python() else {
        assert!(
            std::env::var("CI").is_err(),
            "CI=true but .venv is missing: run scripts/test"
        );
        eprintln!("skipping: no .venv with the openai SDK (scripts/test creates it)");
        return;
    };
    let app = TestApp::start().await;
    let (token, key) = app.user_with_key("sdk@example.com").await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/openai_sdk.py");
    let out = Command::new(python)
        .arg(script)
        .env("SWITCHYARD_BASE_URL", format!("{}/v1", app.base))
        .env("SWITCHYARD_API_KEY", &key)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "SDK script failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("ALL OK"), "{stdout}");
    // chat, stream, embeddings; the models list and the error call write no usage or an error event.
    let events = app.usage_events(&token, 4).await;
    assert!(events
        .iter()
        .any(|e| e["stream"] == true && e["status"] == "ok"));
}
