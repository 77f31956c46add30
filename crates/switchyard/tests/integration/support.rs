//! `TestApp`: a running gateway with a fake upstream, a database of its own and helpers that
//! act as a user would.

use reqwest::{Client, Response};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use store::AccountStore;
use switchyard::config::{Config, FileConfig};
use testkit::db::{Kind, TestDb};
use testkit::fake_openai::FakeOpenAi;
use tokio_util::sync::CancellationToken;

pub const PASSWORD: &str = "correct-horse-battery";
/// The administrator every test app starts with.
pub const ADMIN_EMAIL: &str = "admin@example.com";

pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub fake: FakeOpenAi,
    pub db: TestDb,
    shutdown: CancellationToken,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// Options a test may change.
pub struct Options {
    pub kind: Kind,
    /// Extra TOML appended to the generated config (see `with` for its placeholders).
    pub extra_toml: String,
    pub first_byte_timeout: f64,
    pub extra_routes: axum::Router<Arc<engine::Engine>>,
    /// API keys given to providers by name (as the environment would).
    pub provider_keys: Vec<(&'static str, Vec<&'static str>)>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            kind: Kind::Sqlite,
            extra_toml: String::new(),
            first_byte_timeout: 10.0,
            extra_routes: axum::Router::new(),
            provider_keys: Vec::new(),
        }
    }
}

/// The test catalog: two chat models and an embedding model on the fake, and one model on a
/// provider whose port is closed.
pub fn config_toml(db_url: &str, data_dir: &str, fake: &str, first_byte_timeout: f64) -> String {
    format!(
        r#"
data_dir = "{data_dir}"
secret_key = "test-secret-test-secret-test-secret-0123"
[bootstrap]
admin_email = "{ADMIN_EMAIL}"
admin_password = "{PASSWORD}"
[server]
max_body_bytes = 65536
shutdown_grace_secs = 10
[database]
url = "{db_url}"
[providers.fake]
kind = "openai"
base_url = "{fake}"
first_byte_timeout_secs = {first_byte_timeout}
idle_timeout_secs = 5
[providers.closed]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
connect_timeout_secs = 2
[models.fast]
provider = "fake"
upstream_model = "gemma3:4b"
family = "gemma"
context_length = 32768
input_price = "0.10"
output_price = "0.30"
[models.pro]
provider = "fake"
upstream_model = "qwen3:32b"
family = "qwen"
input_price = "0.50"
output_price = "1.50"
[models.embed]
type = "embedding"
provider = "fake"
upstream_model = "nomic-embed-text"
dimensions = 768
input_price = "0.05"
output_price = "0"
[models.offline]
provider = "closed"
upstream_model = "gone"
input_price = "1"
output_price = "1"
"#
    )
}

pub fn parse_config(toml_text: &str) -> Config {
    let file: FileConfig = toml::from_str(toml_text).expect("test config parses");
    Config::from_file(file).expect("test config is valid")
}

impl TestApp {
    pub async fn start() -> TestApp {
        Self::with(Options::default())
            .await
            .expect("sqlite always available")
    }

    /// `None` when the backend is unavailable outside CI.
    pub async fn with(opts: Options) -> Option<TestApp> {
        let fake = FakeOpenAi::start().await;
        let db = TestDb::of(opts.kind).await?;
        let data_dir = tempfile::tempdir().unwrap().keep();
        let mut text = config_toml(
            &db.url,
            &data_dir.display().to_string(),
            &fake.base_url(),
            opts.first_byte_timeout,
        );
        // `{fake_v1}` and `{fake_gemini}` in extra TOML name the fake's OpenAI/Anthropic and
        // Gemini base URLs.
        text.push_str(
            &opts
                .extra_toml
                .replace("{fake_v1}", &fake.base_url())
                .replace("{fake_gemini}", &fake.gemini_base_url()),
        );
        let mut config = parse_config(&text);
        for (name, keys) in &opts.provider_keys {
            let p = config
                .providers
                .iter_mut()
                .find(|p| p.name == *name)
                .expect("a configured provider");
            p.api_keys = keys.iter().map(|k| (*k).to_owned()).collect();
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let signal = shutdown.clone();
        #[allow(clippy::disallowed_methods)]
        let server = tokio::spawn(async move {
            switchyard::serve::serve_with(
                config,
                listener,
                async move { signal.cancelled().await },
                opts.extra_routes,
            )
            .await
        });
        let client = Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let app = TestApp {
            base,
            client,
            fake,
            db,
            shutdown,
            server: Some(server),
        };
        app.wait_ready().await;
        Some(app)
    }

    async fn wait_ready(&self) {
        for _ in 0..200 {
            if let Ok(r) = self.client.get(self.url("/health/ready")).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("gateway did not become ready");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Graceful shutdown, as on SIGTERM; returns once usage is flushed.
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(h) = self.server.take() {
            h.await.unwrap().unwrap();
        }
    }

    /// A direct connection to this test's database, for checking what was stored.
    pub async fn store(&self) -> store::SqlStore {
        store::connect(self.db.backend.clone()).await.unwrap()
    }

    pub async fn signup(&self, email: &str) -> String {
        self.signup_with_id(email).await.0
    }

    /// Signs up; returns the access token and the account id.
    pub async fn signup_with_id(&self, email: &str) -> (String, String) {
        let r = self
            .client
            .post(self.url("/api/auth/signup"))
            .json(&json!({ "email": email, "password": PASSWORD, "name": "Test User" }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "signup of {email}");
        let body: Value = r.json().await.unwrap();
        (
            body["access_token"].as_str().unwrap().to_owned(),
            body["user"]["id"].as_str().unwrap().to_owned(),
        )
    }

    /// A fresh administrator access token.
    pub async fn admin_token(&self) -> String {
        let r = self
            .client
            .post(self.url("/api/auth/login"))
            .json(&json!({ "email": ADMIN_EMAIL, "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "admin login");
        r.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// An admin call; returns status and body.
    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        let token = self.admin_token().await;
        let r = self
            .client
            .request(method, self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn set_plan(&self, account_id: &str, plan: &str) {
        let (status, body) = self
            .admin(
                reqwest::Method::PATCH,
                &format!("/api/admin/accounts/{account_id}"),
                json!({ "plan": plan }),
            )
            .await;
        assert_eq!((status, body["plan"].as_str()), (200, Some(plan)), "{body}");
    }

    /// Adds (or with a negative amount, deducts) credit as an administrator.
    pub async fn credit(&self, account_id: &str, amount: &str) {
        let (status, body) = self
            .admin(
                reqwest::Method::POST,
                &format!("/api/admin/accounts/{account_id}/credits"),
                json!({ "amount_usd": amount, "reason": "test" }),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }

    pub async fn create_key(&self, token: &str, body: Value) -> Value {
        let r = self
            .client
            .post(self.url("/api/keys"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "create key");
        r.json().await.unwrap()
    }

    /// A new user on the `team` plan (every model, 1000 RPM) with one unrestricted key:
    /// (session token, key secret).
    pub async fn user_with_key(&self, email: &str) -> (String, String) {
        let (token, id) = self.signup_with_id(email).await;
        self.set_plan(&id, "team").await;
        let key = self.create_key(&token, json!({ "name": "test" })).await;
        (token, key["key"].as_str().unwrap().to_owned())
    }

    pub async fn post_v1(&self, key: &str, path: &str, body: Value) -> Response {
        self.client
            .post(self.url(&format!("/v1{path}")))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn chat(&self, key: &str, body: Value) -> Response {
        self.post_v1(key, "/chat/completions", body).await
    }

    pub async fn get_json(&self, path: &str, bearer: &str) -> (u16, Value) {
        let r = self
            .client
            .get(self.url(path))
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Waits until the account behind `token` has `n` usage events, and returns them.
    pub async fn usage_events(&self, token: &str, n: u64) -> Vec<Value> {
        for _ in 0..250 {
            let (status, body) = self.get_json("/api/usage?limit=500", token).await;
            assert_eq!(status, 200);
            // Items and total come from two queries; wait until both show all `n`.
            let items = body["items"].as_array().unwrap();
            if body["total"].as_u64() == Some(n) && items.len() as u64 == n {
                return items.clone();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (_, body) = self.get_json("/api/usage?limit=500", token).await;
        panic!("expected {n} usage events, have {}", body["total"]);
    }

    pub async fn account_count(&self) -> u64 {
        self.store().await.count_accounts().await.unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A request body with the usual chat fields.
pub fn chat_body(model: &str) -> Value {
    json!({ "model": model, "messages": [{ "role": "user", "content": "Say hello" }] })
}

/// Asserts an OpenAI-shaped error with this status and code; returns the message.
pub async fn assert_error(r: Response, status: u16, code: &str) -> String {
    assert_eq!(r.status().as_u16(), status, "status");
    assert_eq!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], code, "code in {body}");
    assert!(body["error"]["type"].is_string(), "type in {body}");
    let message = body["error"]["message"].as_str().unwrap().to_owned();
    assert!(!message.is_empty());
    message
}

impl TestApp {
    /// Waits until the usage writer has written everything queued.
    pub async fn flushed(&self) {
        for _ in 0..500 {
            let r = self
                .client
                .get(self.url("/health/ready"))
                .send()
                .await
                .unwrap();
            let body: Value = r.json().await.unwrap();
            // Counts every event not yet stored, the writer's batch included.
            if body["usage_queue"] == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("usage queue never drained");
    }

    /// The money invariant, checked after every money scenario: nothing reserved, and every
    /// balance equals the sum of its ledger.
    pub async fn assert_money_sound(&self, token: &str) {
        self.flushed().await;
        let (_, balance) = self.get_json("/api/billing/balance", token).await;
        assert_eq!(
            balance["reserved_usd"], "0.00",
            "no reservation left: {balance}"
        );
        let (status, verify) = self
            .admin(
                reqwest::Method::GET,
                "/api/admin/ledger/verify",
                Value::Null,
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(verify["ok"], true, "balance == sum of ledger: {verify}");
    }

    pub async fn balance(&self, token: &str) -> Value {
        let (status, body) = self.get_json("/api/billing/balance", token).await;
        assert_eq!(status, 200);
        body
    }
}

/// Runs an async test body on SQLite and on Postgres.
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let opts = $crate::support::Options {
                    kind: testkit::db::Kind::Sqlite,
                    ..Default::default()
                };
                let app = $crate::support::TestApp::with(opts).await.unwrap();
                ($body)(app).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let opts = $crate::support::Options {
                    kind: testkit::db::Kind::Postgres,
                    ..Default::default()
                };
                let Some(app) = $crate::support::TestApp::with(opts).await else {
                    return;
                };
                ($body)(app).await;
            }
        }
    };
}

/// The `id`s of a `/v1/models` listing, in order.
pub fn model_ids(listing: &Value) -> Vec<&str> {
    listing["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect()
}
