//! The `switchyard` program as an operator runs it: no config, a config file, SIGTERM, and
//! the admin command.

use crate::support::{config_toml, PASSWORD};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::{AccountStore, Store, UsageStore};
use testkit::fake_openai::{Behavior, FakeOpenAi};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

struct Gateway {
    child: Child,
    base: String,
    logs: Arc<Mutex<String>>,
}

/// Starts `switchyard serve` in `dir` on a free port and waits until it listens.
async fn spawn_gateway(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Gateway {
    spawn_gateway_on(None, dir, args, env).await
}

/// `spawn_gateway`, pinned to one core with `taskset` when `core` is given (as a 1-vCPU
/// container or the benchmark runs it).
async fn spawn_gateway_on(
    core: Option<u32>,
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> Gateway {
    let mut cmd = match core {
        Some(core) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(core.to_string()).arg(BIN);
            c
        }
        None => Command::new(BIN),
    };
    cmd.current_dir(dir)
        .args(["--log-json"])
        .args(args)
        .env("SWITCHYARD_LISTEN", "127.0.0.1:0")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let logs = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = tokio::sync::oneshot::channel();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let sink = logs.clone();
    #[allow(clippy::disallowed_methods)]
    tokio::spawn(async move {
        let mut tx = Some(tx);
        while let Ok(Some(line)) = lines.next_line().await {
            sink.lock().unwrap().push_str(&line);
            sink.lock().unwrap().push('\n');
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                if v["message"] == "switchyard is listening" {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(v["addr"].as_str().unwrap().to_owned());
                    }
                }
            }
        }
    });
    let addr = tokio::time::timeout(Duration::from_secs(30), rx)
        .await
        .unwrap_or_else(|_| panic!("gateway did not start; logs:\n{}", logs.lock().unwrap()))
        .unwrap_or_else(|_| panic!("gateway exited; logs:\n{}", logs.lock().unwrap()));
    Gateway {
        child,
        base: format!("http://{addr}"),
        logs,
    }
}

impl Gateway {
    /// Signs up through the running gateway; returns the access token.
    async fn signup(&self, client: &reqwest::Client, email: &str) -> String {
        let body: Value = client
            .post(format!("{}/api/auth/signup", self.base))
            .json(&json!({ "email": email, "password": PASSWORD, "name": "Operator Test" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// `GET /v1/models` with `key`.
    async fn models(&self, client: &reqwest::Client, key: &str) -> Value {
        let url = format!("{}/v1/models", self.base);
        client
            .get(url)
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Mints a key for the signed-in user; returns the creation response.
    async fn create_key(&self, client: &reqwest::Client, token: &str) -> Value {
        client
            .post(format!("{}/api/keys", self.base))
            .bearer_auth(token)
            .json(&json!({ "name": "k" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

async fn sigterm(child: &Child) {
    let pid = child.id().unwrap().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn with_no_configuration_it_starts_on_sqlite_with_the_default_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let mut gw = spawn_gateway(dir.path(), &["serve"], &[]).await;
    let client = reqwest::Client::new();
    let token = gw.signup(&client, "new@example.com").await;
    let key = gw.create_key(&client, &token).await;
    let models = gw.models(&client, key["key"].as_str().unwrap()).await;
    // A new account is on the free plan: its key sees the free plan's models.
    let ids = crate::support::model_ids(&models);
    assert_eq!(ids, vec!["fast", "embed", "auto"]);
    assert_eq!(models["data"][1]["dimensions"], 768);
    assert_eq!(models["data"][2]["type"], "router");

    let data = dir.path().join("data");
    assert!(data.join("switchyard.db").exists());
    let secret = data.join("secret.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let first_secret = std::fs::read_to_string(&secret).unwrap();
    sigterm(&gw.child).await;
    assert!(gw.child.wait().await.unwrap().success());

    // The operator moves the account to the developer plan with the CLI.
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .args([
            "admin",
            "set-plan",
            "--email",
            "new@example.com",
            "--plan",
            "developer",
        ])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("now on the developer plan"));

    // A restart keeps the secret, so existing keys and sessions keep working.
    let gw2 = spawn_gateway(dir.path(), &["serve"], &[]).await;
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), first_secret);
    let r = client
        .get(format!("{}/api/auth/me", gw2.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let models = gw2.models(&client, key["key"].as_str().unwrap()).await;
    let ids = crate::support::model_ids(&models);
    assert_eq!(
        ids,
        vec![
            "fast",
            "qwen-fast",
            "qwen-pro",
            "deepseek-code",
            "deepseek-reason",
            "embed",
            "auto"
        ]
    );
    let prices: Vec<(&str, &str)> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["type"] != "router")
        .map(|m| {
            (
                m["pricing"]["input"].as_str().unwrap(),
                m["pricing"]["output"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        prices,
        vec![
            ("0.10", "0.30"),
            ("0.10", "0.30"),
            ("0.50", "1.50"),
            ("0.60", "1.80"),
            ("0.30", "0.90"),
            ("0.05", "0.00")
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_streams_finish_and_writes_their_usage_before_exit() {
    sigterm_case(None).await;
}

/// On one core the gateway runs a current-thread runtime; shutting down there keeps every
/// request's usage too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_one_core_it_runs_one_thread_and_sigterm_still_writes_all_usage() {
    sigterm_case(Some(0)).await;
}

async fn sigterm_case(core: Option<u32>) {
    let fake = FakeOpenAi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gw.db");
    let db_url = format!("sqlite://{}", db.display());
    let toml = config_toml(
        &db_url,
        &dir.path().join("data").display().to_string(),
        &fake.base_url(),
        10.0,
    );
    std::fs::write(dir.path().join("switchyard.toml"), toml).unwrap();
    let mut gw = spawn_gateway_on(core, dir.path(), &["serve"], &[]).await;
    let one_thread =
        core.is_some() || std::thread::available_parallelism().map_or(1, usize::from) == 1;
    let flavor = if one_thread {
        "CurrentThread"
    } else {
        "MultiThread"
    };
    let listening = gw.logs.lock().unwrap().clone();
    assert!(
        listening.contains(&format!("\"runtime\":\"{flavor}\"")),
        "{listening}"
    );
    let client = reqwest::Client::new();
    let prompt = "the secret prompt text 7f3a9";
    let token = gw.signup(&client, "term@example.com").await;
    let key = gw.create_key(&client, &token).await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..5 {
        let r = client
            .post(format!("{}/v1/chat/completions", gw.base))
            .bearer_auth(&key)
            .json(&json!({ "model": "fast", "messages": [{ "role": "user", "content": prompt }] }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    // A request every deployment fails: its failures are logged under its request id.
    fake.script(std::iter::repeat_n(
        Behavior::Status(500, json!({ "error": { "message": "boom" } })),
        3,
    ));
    let r = client
        .post(format!("{}/v1/chat/completions", gw.base))
        .bearer_auth(&key)
        .header("x-request-id", "req-failing-42")
        .json(&json!({ "model": "fast", "messages": [{ "role": "user", "content": prompt }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    fake.script([Behavior::Slow {
        chunks: 8,
        every: Duration::from_millis(150),
    }]);
    let stream = client
        .post(format!("{}/v1/chat/completions", gw.base))
        .bearer_auth(&key)
        .json(&json!({ "model": "fast", "stream": true, "messages": [{ "role": "user", "content": prompt }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    sigterm(&gw.child).await;
    let text = stream.text().await.unwrap();
    assert!(
        text.ends_with("data: [DONE]\n\n"),
        "the in-flight stream completed: {text}"
    );
    let status = tokio::time::timeout(Duration::from_secs(20), gw.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "clean exit");

    let store = store::connect(store::Backend::Sqlite { path: db })
        .await
        .unwrap();
    let (account, _) = store
        .account_by_email("term@example.com")
        .await
        .unwrap()
        .unwrap();
    let events = store.list_usage(&account.id, 100, 0).await.unwrap();
    assert_eq!(
        events.total, 7,
        "every request's usage was written before exit"
    );
    let (failed, ok): (Vec<_>, Vec<_>) = events
        .items
        .iter()
        .partition(|e| e.request_id == "req-failing-42");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].status, domain::UsageStatus::Error);
    assert!(ok.iter().all(|e| e.status == domain::UsageStatus::Ok));
    assert!(events.items[0].stream);
    store.close().await;

    let logs = gw.logs.lock().unwrap().clone();
    assert!(logs.contains("stopped; all usage written"), "{logs}");
    let logged = |message: &str| {
        logs.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|l| l["message"] == message && l["request_id"] == "req-failing-42")
            .count()
    };
    assert_eq!(logged("upstream try failed"), 3, "{logs}");
    assert_eq!(logged("request failed"), 1, "{logs}");
    assert!(
        !logs.contains("finished processing request"),
        "no per-request lines at the default level: {logs}"
    );
    for secret in [key.as_str(), PASSWORD, prompt, token.as_str()] {
        assert!(!logs.contains(secret), "logs leak {secret:?}");
    }
}

#[tokio::test]
async fn with_debug_logging_each_request_is_logged_in_a_span_with_its_id() {
    let dir = tempfile::tempdir().unwrap();
    let mut gw = spawn_gateway(
        dir.path(),
        &["serve"],
        &[("RUST_LOG", "info,http_api=debug,tower_http=debug")],
    )
    .await;
    let client = reqwest::Client::new();
    let r = client
        .get(format!("{}/v1/models", gw.base))
        .header("x-request-id", "req-debug-7")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["x-request-id"], "req-debug-7");
    // A request without an id gets one, and its span names it.
    let r = client
        .get(format!("{}/health", gw.base))
        .send()
        .await
        .unwrap();
    let made = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(made.len(), 36, "a UUID: {made}");
    sigterm(&gw.child).await;
    let _ = tokio::time::timeout(Duration::from_secs(20), gw.child.wait()).await;
    let logs = gw.logs.lock().unwrap().clone();
    let finished = |id: &str| {
        logs.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|l| {
                l["message"] == "finished processing request" && l["span"]["request_id"] == id
            })
            .count()
    };
    assert_eq!(finished("req-debug-7"), 1, "{logs}");
    assert_eq!(finished(&made), 1, "{logs}");
}

#[tokio::test]
async fn an_invalid_configuration_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("[providers.ollama]\nkind = \"openai\"\nbase_url = \"ftp://x\"\n", "providers.ollama.base_url"),
        ("[server]\nlisten = \"everywhere\"\n", "server.listen"),
        ("[server]\nlisn = \"127.0.0.1:1\"\n", "server"),
        ("[models.x]\nprovider = \"nope\"\nupstream_model = \"m\"\ninput_price = \"1\"\noutput_price = \"1\"\n", "models.x.provider"),
        ("[models.x]\nprovider = \"ollama\"\nupstream_model = \"m\"\ninput_price = 1e-3\noutput_price = \"1\"\n", "models.x.input_price"),
        ("[usage]\nbatch_size = 0\n", "usage.batch_size: must be at least 1"),
        ("[usage]\nbacklog = 0\n", "usage.backlog: must be at least 1"),
        ("[routing]\nmax_attempts = 0\n", "routing.max_attempts: must be at least 1"),
        ("[routing]\nbreaker_threshold = 0\n", "routing.breaker_threshold: must be at least 1"),
    ];
    for (toml, key) in cases {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, toml).unwrap();
        let out = Command::new(BIN)
            .current_dir(dir.path())
            .args(["--config", path.to_str().unwrap(), "serve"])
            .output()
            .await
            .unwrap();
        assert!(!out.status.success(), "{toml} should fail");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(key),
            "error for {toml:?} names `{key}`: {stderr}"
        );
    }
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .env("SWITCHYARD_SERVER__SHUTDOWN_GRACE_SECS", "soon")
        .arg("serve")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.shutdown_grace_secs"));
}

#[tokio::test]
async fn admin_create_user_makes_an_admin_who_can_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .args([
            "admin",
            "create-user",
            "--email",
            "root@example.com",
            "--password",
            PASSWORD,
            "--admin",
        ])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("created admin account"));
    let again = Command::new(BIN)
        .current_dir(dir.path())
        .args([
            "admin",
            "create-user",
            "--email",
            "ROOT@example.com",
            "--password",
            PASSWORD,
        ])
        .output()
        .await
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    let gw = spawn_gateway(dir.path(), &["serve"], &[]).await;
    let r = reqwest::Client::new()
        .post(format!("{}/api/auth/login", gw.base))
        .json(&json!({ "email": "root@example.com", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["user"]["role"], "admin");
}

#[tokio::test]
async fn the_first_admin_can_come_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let gw = spawn_gateway(
        dir.path(),
        &["serve"],
        &[
            ("SWITCHYARD_ADMIN_EMAIL", "boss@example.com"),
            ("SWITCHYARD_ADMIN_PASSWORD", PASSWORD),
        ],
    )
    .await;
    let r = reqwest::Client::new()
        .post(format!("{}/api/auth/login", gw.base))
        .json(&json!({ "email": "boss@example.com", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["user"]["role"], "admin");
    let store = store::connect(store::Backend::Sqlite {
        path: dir.path().join("data/switchyard.db"),
    })
    .await
    .unwrap();
    assert_eq!(store.count_accounts().await.unwrap(), 1);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_cli_changes_reach_a_running_server_within_a_second_or_two() {
    let dir = tempfile::tempdir().unwrap();
    let gw = spawn_gateway(dir.path(), &["serve"], &[]).await;
    let client = reqwest::Client::new();
    let token = gw.signup(&client, "live@example.com").await;
    let key = gw.create_key(&client, &token).await;
    let secret = key["key"].as_str().unwrap().to_owned();
    let get = |path: &'static str, bearer: String| {
        let url = format!("{}{path}", gw.base);
        let client = client.clone();
        async move { client.get(url).bearer_auth(bearer).send().await.unwrap() }
    };
    // Load the balance and cache the key in the server before the CLI changes them.
    let balance: Value = get("/api/billing/balance", token.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(balance["balance_usd"], "1.00");
    assert_eq!(get("/v1/models", secret.clone()).await.status(), 200);

    let cli = |args: Vec<String>| {
        let dir = dir.path().to_owned();
        async move {
            let out = Command::new(BIN)
                .current_dir(dir)
                .args(args)
                .output()
                .await
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
    };
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    let out = cli(s(&[
        "admin",
        "grant-credits",
        "--email",
        "live@example.com",
        "--amount",
        "2.5",
        "--reason",
        "thanks",
    ]))
    .await;
    assert!(out.contains("balance now 3.50"), "{out}");
    cli(s(&[
        "admin",
        "set-plan",
        "--email",
        "live@example.com",
        "--plan",
        "team",
    ]))
    .await;
    cli(s(&[
        "admin",
        "set-key-limits",
        "--key-id",
        key["id"].as_str().unwrap(),
        "--rpm",
        "7",
    ]))
    .await;

    let mut seen = (Value::Null, 0, String::new());
    for _ in 0..100 {
        let balance: Value = get("/api/billing/balance", token.clone())
            .await
            .json()
            .await
            .unwrap();
        let r = get("/v1/models", secret.clone()).await;
        let limit = r
            .headers()
            .get("x-ratelimit-limit")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let models: Value = r.json().await.unwrap();
        seen = (
            balance["balance_usd"].clone(),
            models["data"].as_array().unwrap().len(),
            limit,
        );
        if seen == (json!("3.50"), 7, "7".to_owned()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        seen,
        (json!("3.50"), 7, "7".to_owned()),
        "credit applied once, plan and key limit followed"
    );
    // A second look much later still shows the credit exactly once.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let balance: Value = get("/api/billing/balance", token.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(balance["balance_usd"], "3.50");

    // An account the server has not loaded yet: its first load already includes the credit,
    // and the change arriving afterwards must not add it again.
    let late_token = gw.signup(&client, "late@example.com").await;
    cli(s(&[
        "admin",
        "grant-credits",
        "--email",
        "late@example.com",
        "--amount",
        "4",
        "--reason",
        "r",
    ]))
    .await;
    let first: Value = get("/api/billing/balance", late_token.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["balance_usd"], "5.00");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let later: Value = get("/api/billing/balance", late_token.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(later["balance_usd"], "5.00", "not counted twice");

    let verify = cli(s(&["admin", "verify-ledger"])).await;
    assert!(verify.contains("ledger ok"), "{verify}");
}
