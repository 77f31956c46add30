//! Configuration: `switchyard.toml` (optional) with `SWITCHYARD_*` environment overrides,
//! deserialized strictly into `FileConfig` and turned by `Config::from_file` into validated
//! settings. Every error names the key path and the reason.

use crate::defaults;
use anyhow::{anyhow, bail, Context, Result};
use domain::catalog::{ModelKind, ModelPrice};
use domain::{Capabilities, Catalog, Deployment, Money, ProviderId, PublicModel, Strategy};
use indexmap::IndexMap;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use upstream::ProviderSettings;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Where the embedded database and generated secrets live.
    pub data_dir: Option<PathBuf>,
    /// The instance secret; generated into the data dir when absent. Nodes sharing a
    /// database must share it.
    pub secret_key: Option<String>,
    #[serde(default)]
    pub server: ServerFile,
    #[serde(default)]
    pub database: DatabaseFile,
    #[serde(default)]
    pub log: LogFile,
    #[serde(default)]
    pub auth: AuthFile,
    #[serde(default)]
    pub bootstrap: BootstrapFile,
    #[serde(default)]
    pub billing: BillingFile,
    /// Card payments; absent means mock top-ups.
    pub stripe: Option<StripeFile>,
    /// Providers by name; when absent, the default Ollama provider.
    pub providers: Option<IndexMap<String, ProviderFile>>,
    /// Public models by name; when absent, the default catalog.
    pub models: Option<IndexMap<String, ModelFile>>,
    #[serde(default)]
    pub routing: RoutingFile,
    #[serde(default)]
    pub usage: UsageFile,
}

/// The usage writer.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageFile {
    /// Usage events written per transaction at most.
    pub batch_size: Option<usize>,
    /// Events recorded and not yet stored at which new requests wait for the writer.
    pub backlog: Option<usize>,
    /// How long a request waits for the writer before a 503.
    pub backlog_wait_secs: Option<f64>,
}

/// Retries, backoff, circuit breakers and `model: "auto"`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingFile {
    pub max_attempts: Option<u32>,
    pub deadline_secs: Option<f64>,
    pub backoff_base_ms: Option<u64>,
    pub backoff_max_ms: Option<u64>,
    pub breaker_threshold: Option<u32>,
    pub breaker_cooldown_secs: Option<f64>,
    pub key_cooldown_secs: Option<f64>,
    #[serde(default)]
    pub auto: AutoFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoFile {
    pub enabled: Option<bool>,
    /// Model names that mean "choose for me"; default `["auto"]`.
    pub aliases: Option<Vec<String>>,
    /// The models auto may choose from; default all chat models.
    #[serde(default)]
    pub models: Vec<String>,
    /// "cheapest" (default) or "listed".
    pub prefer: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerFile {
    pub listen: Option<String>,
    pub max_body_bytes: Option<usize>,
    pub secure_cookies: Option<bool>,
    pub shutdown_grace_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseFile {
    pub url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogFile {
    pub format: Option<String>,
    pub level: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthFile {
    pub access_token_ttl_secs: Option<u64>,
    pub session_ttl_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillingFile {
    /// Requests are refused (402) below this unreserved balance.
    pub min_balance_usd: Option<Money>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StripeFile {
    pub secret_key: String,
    pub webhook_secret: String,
    pub api_base: Option<String>,
    pub success_url: Option<String>,
    pub cancel_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapFile {
    pub admin_email: Option<String>,
    pub admin_password: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderFile {
    pub kind: String,
    pub base_url: String,
    /// Name of the environment variable that holds the provider's API key (several keys
    /// may be given in it, separated by commas).
    pub api_key_env: Option<String>,
    /// More environment variables with keys; all keys are used in rotation.
    #[serde(default)]
    pub api_keys_env: Vec<String>,
    pub connect_timeout_secs: Option<f64>,
    pub first_byte_timeout_secs: Option<f64>,
    pub idle_timeout_secs: Option<f64>,
    pub total_timeout_secs: Option<f64>,
    pub max_concurrency: Option<usize>,
    pub health_check_interval_secs: Option<f64>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    /// Shorthand for a single deployment: provider and upstream model.
    pub provider: Option<String>,
    pub upstream_model: Option<String>,
    #[serde(default)]
    pub deployments: Vec<DeploymentFile>,
    pub family: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub context_length: Option<u32>,
    pub dimensions: Option<u32>,
    /// Output tokens assumed when reserving credit for a request without `max_tokens`.
    pub max_output_tokens: Option<u32>,
    pub input_price: Money,
    pub output_price: Money,
    pub cached_input_price: Option<Money>,
    pub owned_by: Option<String>,
    /// How deployments are ordered: priority (default), weighted, least-latency,
    /// lowest-cost.
    pub strategy: Option<String>,
    /// Capabilities `auto` matches requests against.
    pub supports_tools: Option<bool>,
    pub supports_vision: Option<bool>,
    pub supports_json: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentFile {
    pub provider: String,
    pub upstream_model: String,
    pub priority: Option<u32>,
    pub weight: Option<u32>,
    pub input_price: Option<Money>,
    pub output_price: Option<Money>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    /// Configured instance secret; `None` means use (or generate) the data dir's file.
    pub secret_key: Option<String>,
    pub listen: SocketAddr,
    pub database_url: String,
    pub log_format: LogFormat,
    pub log_level: String,
    pub shutdown_grace: Duration,
    pub http: http_api::HttpSettings,
    pub engine: engine::EngineSettings,
    pub admin: Option<(String, String)>,
    pub providers: Vec<ProviderSettings>,
    pub catalog: Catalog,
}

/// Default listen address: loopback, so a fresh install is not exposed by accident.
const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default upstream timeouts. Local models can take long to load, hence the generous wait
/// for the first byte.
const DEFAULT_CONNECT_TIMEOUT: f64 = 5.0;
const DEFAULT_FIRST_BYTE_TIMEOUT: f64 = 120.0;
const DEFAULT_IDLE_TIMEOUT: f64 = 60.0;
const DEFAULT_TOTAL_TIMEOUT: f64 = 600.0;
/// Output tokens reserved for a request without `max_tokens`, unless a model sets its own.
const DEFAULT_MAX_OUTPUT_TOKENS: u32 = 4096;
/// How long in-flight requests may take to finish after SIGTERM.
const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 30;

/// Environment variables that are shorthands for a config key.
const ENV_ALIASES: &[(&str, &str)] = &[
    ("SWITCHYARD_LISTEN", "server.listen"),
    ("SWITCHYARD_DATABASE_URL", "database.url"),
    ("SWITCHYARD_DATA_DIR", "data_dir"),
    ("SWITCHYARD_SECRET_KEY", "secret_key"),
    ("SWITCHYARD_LOG_FORMAT", "log.format"),
    ("SWITCHYARD_LOG_LEVEL", "log.level"),
    ("SWITCHYARD_ADMIN_EMAIL", "bootstrap.admin_email"),
    ("SWITCHYARD_ADMIN_PASSWORD", "bootstrap.admin_password"),
];

/// Reads the file (if any), applies environment overrides and validates.
pub fn load(path: Option<&Path>, env: &[(String, String)]) -> Result<Config> {
    let mut root = match path {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            text.parse::<toml::Table>()
                .map_err(|e| anyhow!("{}: {e}", p.display()))?
        }
        None => {
            let default = Path::new("switchyard.toml");
            if default.exists() {
                let text = std::fs::read_to_string(default)?;
                text.parse::<toml::Table>()
                    .map_err(|e| anyhow!("switchyard.toml: {e}"))?
            } else {
                toml::Table::new()
            }
        }
    };
    apply_env(&mut root, env)?;
    let file = deserialize(root)?;
    Config::from_file(file)
}

/// Deserializes, naming the failing key path in the message.
fn deserialize(root: toml::Table) -> Result<FileConfig> {
    serde_path_to_error::deserialize(toml::Value::Table(root)).map_err(|e| {
        let path = e.path().to_string();
        anyhow!("invalid configuration at `{path}`: {}", e.into_inner())
    })
}

/// `SWITCHYARD_A__B=v` sets key `a.b`; the aliases above set their keys. Values parse as
/// TOML (numbers, booleans) and fall back to strings.
fn apply_env(root: &mut toml::Table, env: &[(String, String)]) -> Result<()> {
    for (name, value) in env {
        let path = if let Some((_, key)) = ENV_ALIASES.iter().find(|(n, _)| n == name) {
            (*key).to_owned()
        } else if let Some(rest) = name
            .strip_prefix("SWITCHYARD_")
            .filter(|r| r.contains("__"))
        {
            rest.split("__")
                .map(str::to_lowercase)
                .collect::<Vec<_>>()
                .join(".")
        } else {
            continue;
        };
        let parsed = format!("v = {value}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(value.clone()));
        let mut table = &mut *root;
        let parts: Vec<&str> = path.split('.').collect();
        for part in &parts[..parts.len() - 1] {
            let entry = table
                .entry((*part).to_owned())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            table = entry
                .as_table_mut()
                .ok_or_else(|| anyhow!("{name}: `{part}` is not a table in the configuration"))?;
        }
        table.insert(parts[parts.len() - 1].to_owned(), parsed);
    }
    Ok(())
}

fn secs(key: &str, v: Option<f64>, default: f64) -> Result<Duration> {
    let v = v.unwrap_or(default);
    if !(v > 0.0 && v < 1e7) {
        bail!("{key}: must be a positive number of seconds, got {v}");
    }
    Ok(Duration::from_secs_f64(v))
}

impl Config {
    pub fn from_file(f: FileConfig) -> Result<Config> {
        let data_dir = f.data_dir.unwrap_or_else(|| PathBuf::from("data"));
        let listen_text = f.server.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            anyhow!("server.listen: `{listen_text}` is not an address like 127.0.0.1:8080")
        })?;
        let database_url = f
            .database
            .url
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("switchyard.db").display()));
        store::Backend::from_url(&database_url).map_err(|e| anyhow!("database.url: {e}"))?;
        let log_format = match f.log.format.as_deref().unwrap_or("text") {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => bail!("log.format: must be \"text\" or \"json\", got \"{other}\""),
        };
        let max_body_bytes = f.server.max_body_bytes.unwrap_or(10 * 1024 * 1024);
        if max_body_bytes < 1024 {
            bail!("server.max_body_bytes: must be at least 1024");
        }
        let mut engine = engine::EngineSettings::default();
        if let Some(t) = f.auth.access_token_ttl_secs {
            engine.access_token_ttl = Duration::from_secs(t.max(60));
        }
        if let Some(t) = f.auth.session_ttl_secs {
            engine.session_ttl = Duration::from_secs(t.max(60));
        }
        if let Some(floor) = f.billing.min_balance_usd {
            if floor.is_negative() {
                bail!("billing.min_balance_usd: must not be negative");
            }
            engine.min_balance = floor;
        }
        if let Some(s) = f.stripe {
            if s.secret_key.trim().is_empty() || s.webhook_secret.trim().is_empty() {
                bail!("stripe: secret_key and webhook_secret must both be set");
            }
            let site = format!("http://{listen}");
            engine.stripe = Some(engine::payments::StripeSettings {
                secret_key: s.secret_key,
                webhook_secret: s.webhook_secret,
                api_base: s
                    .api_base
                    .unwrap_or_else(|| "https://api.stripe.com".to_owned()),
                success_url: s
                    .success_url
                    .unwrap_or_else(|| format!("{site}/billing?checkout=success")),
                cancel_url: s
                    .cancel_url
                    .unwrap_or_else(|| format!("{site}/billing?checkout=cancelled")),
            });
        }
        let admin = match (f.bootstrap.admin_email, f.bootstrap.admin_password) {
            (Some(e), Some(p)) => Some((e, p)),
            (None, None) => None,
            _ => bail!("bootstrap: admin_email and admin_password must be given together"),
        };
        engine.routing = routing_settings(f.routing)?;
        if let Some(n) = f.usage.batch_size {
            engine.usage_batch_size = at_least_one("usage.batch_size", n)?;
        }
        if let Some(n) = f.usage.backlog {
            engine.usage_backlog.limit = at_least_one("usage.backlog", n)?;
        }
        engine.usage_backlog.wait = secs(
            "usage.backlog_wait_secs",
            f.usage.backlog_wait_secs,
            engine.usage_backlog.wait.as_secs_f64(),
        )?;
        let providers_file = f.providers.unwrap_or_else(defaults::providers);
        let providers = providers_file
            .into_iter()
            .map(|(name, p)| provider_settings(name, p))
            .collect::<Result<Vec<_>>>()?;
        let models_file = f.models.unwrap_or_else(defaults::models);
        let catalog = catalog(models_file, &providers)?;
        let auto = &engine.routing.auto;
        if let Some(a) = auto.aliases.iter().find(|a| catalog.get(a).is_some()) {
            bail!("routing.auto.aliases: `{a}` is also a model's name");
        }
        for m in &auto.models {
            match catalog.get(m) {
                None => bail!("routing.auto.models: no model named `{m}`"),
                Some(model) if model.kind != domain::catalog::ModelKind::Chat => {
                    bail!("routing.auto.models: `{m}` is not a chat model")
                }
                Some(_) => {}
            }
        }
        if f.secret_key.as_ref().is_some_and(|k| k.len() < 32) {
            bail!("secret_key: must be at least 32 characters");
        }
        Ok(Config {
            secret_key: f.secret_key,
            data_dir,
            listen,
            database_url,
            log_format,
            log_level: f.log.level.unwrap_or_else(|| "info".to_owned()),
            shutdown_grace: Duration::from_secs(
                f.server
                    .shutdown_grace_secs
                    .unwrap_or(DEFAULT_SHUTDOWN_GRACE_SECS),
            ),
            http: http_api::HttpSettings {
                max_body_bytes,
                secure_cookies: f.server.secure_cookies.unwrap_or(false),
            },
            engine,
            admin,
            providers,
            catalog,
        })
    }
}

fn provider_settings(name: String, p: ProviderFile) -> Result<ProviderSettings> {
    let key = |k: &str| format!("providers.{name}.{k}");
    if protocol::Protocol::from_kind(&p.kind).is_none() {
        bail!(
            "{}: unknown kind \"{}\" (known: openai, anthropic, gemini)",
            key("kind"),
            p.kind
        );
    }
    if !(p.base_url.starts_with("http://") || p.base_url.starts_with("https://")) {
        bail!(
            "{}: must start with http:// or https://, got \"{}\"",
            key("base_url"),
            p.base_url
        );
    }
    let mut api_keys = Vec::new();
    let vars = p
        .api_key_env
        .iter()
        .map(|v| (key("api_key_env"), v))
        .chain(p.api_keys_env.iter().map(|v| (key("api_keys_env"), v)));
    for (field, var) in vars {
        let value = std::env::var(var)
            .map_err(|_| anyhow!("{field}: the environment variable {var} is not set"))?;
        api_keys.extend(
            value
                .split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(str::to_owned),
        );
    }
    if let Some(n) = p.max_concurrency {
        at_least_one(&key("max_concurrency"), n)?;
    }
    let health_check_interval = p
        .health_check_interval_secs
        .map(|v| secs(&key("health_check_interval_secs"), Some(v), 0.0))
        .transpose()?;
    Ok(ProviderSettings {
        connect_timeout: secs(
            &key("connect_timeout_secs"),
            p.connect_timeout_secs,
            DEFAULT_CONNECT_TIMEOUT,
        )?,
        first_byte_timeout: secs(
            &key("first_byte_timeout_secs"),
            p.first_byte_timeout_secs,
            DEFAULT_FIRST_BYTE_TIMEOUT,
        )?,
        idle_timeout: secs(
            &key("idle_timeout_secs"),
            p.idle_timeout_secs,
            DEFAULT_IDLE_TIMEOUT,
        )?,
        total_timeout: secs(
            &key("total_timeout_secs"),
            p.total_timeout_secs,
            DEFAULT_TOTAL_TIMEOUT,
        )?,
        max_concurrency: p.max_concurrency,
        health_check_interval,
        headers: p.headers.into_iter().collect(),
        name,
        kind: p.kind,
        base_url: p.base_url,
        api_keys,
    })
}

fn catalog(models: IndexMap<String, ModelFile>, providers: &[ProviderSettings]) -> Result<Catalog> {
    let mut out = Vec::new();
    for (name, m) in models {
        let key = |k: &str| format!("models.{name}.{k}");
        if name.is_empty() || name.contains(',') || name.chars().any(char::is_whitespace) {
            bail!("models.{name}: a model name must be non-empty, without commas or spaces");
        }
        let kind = match m.kind.as_deref().unwrap_or("chat") {
            "chat" => ModelKind::Chat,
            "embedding" => ModelKind::Embedding,
            other => bail!(
                "{}: must be \"chat\" or \"embedding\", got \"{other}\"",
                key("type")
            ),
        };
        for (field, price) in [
            ("input_price", Some(m.input_price)),
            ("output_price", Some(m.output_price)),
            ("cached_input_price", m.cached_input_price),
        ] {
            if price.is_some_and(Money::is_negative) {
                bail!("{}: must not be negative", key(field));
            }
        }
        let price = ModelPrice {
            input: m.input_price,
            output: m.output_price,
            cached_input: m.cached_input_price,
        };
        let mut deployments = Vec::new();
        match (m.provider, m.upstream_model) {
            (Some(provider), Some(upstream_model)) => deployments.push(Deployment {
                provider: ProviderId(provider),
                upstream_model,
                price: None,
                priority: 0,
                weight: 1,
            }),
            (None, None) => {}
            _ => bail!(
                "{}: `provider` and `upstream_model` go together",
                key("provider")
            ),
        }
        for (i, d) in m.deployments.into_iter().enumerate() {
            let dprice = match (d.input_price, d.output_price) {
                (None, None) => None,
                (i, o) => Some(ModelPrice {
                    input: i.unwrap_or(price.input),
                    output: o.unwrap_or(price.output),
                    cached_input: price.cached_input,
                }),
            };
            deployments.push(Deployment {
                provider: ProviderId(d.provider),
                upstream_model: d.upstream_model,
                price: dprice,
                priority: d.priority.unwrap_or(u32::try_from(i).unwrap_or(u32::MAX)),
                weight: d.weight.unwrap_or(1),
            });
        }
        if deployments.is_empty() {
            bail!(
                "{}: a model needs `provider` and `upstream_model`, or `deployments`",
                key("provider")
            );
        }
        for d in &deployments {
            let Some(p) = providers.iter().find(|p| p.name == d.provider.0) else {
                bail!(
                    "{}: names provider \"{}\", which is not configured",
                    key("provider"),
                    d.provider.0
                );
            };
            if kind == ModelKind::Embedding && p.kind != "openai" {
                bail!(
                    "{}: an embedding model needs an OpenAI-compatible provider; \"{}\" is of kind \"{}\"",
                    key("provider"),
                    p.name,
                    p.kind
                );
            }
        }
        let strategy = match m.strategy.as_deref() {
            None => Strategy::default(),
            Some(text) => Strategy::parse(text).ok_or_else(|| {
                anyhow!(
                    "{}: must be one of {}, got \"{text}\"",
                    key("strategy"),
                    Strategy::NAMES
                )
            })?,
        };
        let defaults = Capabilities::default();
        let capabilities = Capabilities {
            tools: m.supports_tools.unwrap_or(defaults.tools),
            vision: m.supports_vision.unwrap_or(defaults.vision),
            json: m.supports_json.unwrap_or(defaults.json),
        };
        out.push(PublicModel {
            strategy,
            capabilities,
            family: m.family.unwrap_or_default(),
            kind,
            context_length: m.context_length.unwrap_or(8192),
            dimensions: m.dimensions,
            max_output_tokens: m.max_output_tokens.unwrap_or(DEFAULT_MAX_OUTPUT_TOKENS),
            price,
            owned_by: m.owned_by.unwrap_or_else(|| "switchyard".to_owned()),
            created: defaults::CATALOG_CREATED,
            deployments,
            name,
        });
    }
    Catalog::new(out).map_err(|e| anyhow!("models: {e}"))
}

/// `n`, or an error naming `key` when it is zero.
fn at_least_one<T: Copy + Default + PartialEq>(key: &str, n: T) -> Result<T> {
    if n == T::default() {
        bail!("{key}: must be at least 1");
    }
    Ok(n)
}

fn millis(v: Option<u64>, default: Duration) -> Duration {
    v.map_or(default, Duration::from_millis)
}

fn routing_settings(f: RoutingFile) -> Result<engine::routing::RoutingSettings> {
    use engine::routing::auto::{AutoPrefer, AutoSettings};
    let d = engine::routing::RoutingSettings::default();
    let max_attempts = at_least_one(
        "routing.max_attempts",
        f.max_attempts.unwrap_or(d.max_attempts),
    )?;
    let breaker_threshold = at_least_one(
        "routing.breaker_threshold",
        f.breaker_threshold.unwrap_or(d.breaker.threshold),
    )?;
    let enabled = f.auto.enabled.unwrap_or(true);
    let aliases = match (enabled, f.auto.aliases) {
        (false, _) => Vec::new(),
        (true, Some(a)) => a,
        (true, None) => d.auto.aliases.clone(),
    };
    let prefer = match f.auto.prefer.as_deref() {
        None | Some("cheapest") => AutoPrefer::Cheapest,
        Some("listed") => AutoPrefer::Listed,
        Some(other) => {
            bail!("routing.auto.prefer: must be \"cheapest\" or \"listed\", got \"{other}\"")
        }
    };
    Ok(engine::routing::RoutingSettings {
        max_attempts,
        deadline: secs(
            "routing.deadline_secs",
            f.deadline_secs,
            d.deadline.as_secs_f64(),
        )?,
        backoff_base: millis(f.backoff_base_ms, d.backoff_base),
        backoff_max: millis(f.backoff_max_ms, d.backoff_max),
        breaker: engine::routing::health::BreakerSettings {
            threshold: breaker_threshold,
            cooldown: secs(
                "routing.breaker_cooldown_secs",
                f.breaker_cooldown_secs,
                d.breaker.cooldown.as_secs_f64(),
            )?,
        },
        key_cooldown: secs(
            "routing.key_cooldown_secs",
            f.key_cooldown_secs,
            d.key_cooldown.as_secs_f64(),
        )?,
        auto: AutoSettings {
            aliases,
            models: f.auto.models,
            prefer,
        },
    })
}
