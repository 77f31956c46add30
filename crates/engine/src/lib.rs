//! The use cases, free of HTTP: accounts and sessions, keys and their cache, authentication,
//! the relay to upstreams, settlement and the usage writer. `http` calls in; `store` and
//! `upstream` are called out to through their interfaces.

pub mod accounts;
pub mod admin;
pub mod admission;
pub mod auth;
pub mod billing;
pub mod credits;
mod dispatch;
pub mod feed;
pub mod keys;
pub mod models;
pub mod payments;
pub mod plans;
pub mod relay;
pub mod routing;
pub mod tasks;
pub mod tokens;
pub mod usage;
pub mod wallet;

use domain::{ApiError, Catalog, ErrorCode};
use std::sync::Arc;
use std::time::Duration;
use store::Store;

/// The maps a request looks up (keys by hash, limiters, wallets, plans, deployment health):
/// foldhash, seeded per process, instead of SipHash, which cost ~2% of a relayed request.
/// Their keys are ids the gateway made and HMACs under its secret pepper, never text a
/// client chooses, so there is no collision flood to resist.
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// Tunables the engine takes from configuration.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Lifetime of the `access_token` returned by login.
    pub access_token_ttl: Duration,
    /// Lifetime of the browser session cookie.
    pub session_ttl: Duration,
    /// A non-streaming upstream answer larger than this is refused.
    pub max_response_bytes: usize,
    /// Usage events written per transaction at most.
    pub usage_batch_size: usize,
    /// How far the usage writer may fall behind before requests wait for it.
    pub usage_backlog: usage::Backlog,
    /// The instance secret that peppers stored key and session hashes.
    pub pepper: Vec<u8>,
    /// Requests are refused (402) when the unreserved balance is below this.
    pub min_balance: domain::Money,
    /// Card payments, when configured.
    pub stripe: Option<payments::StripeSettings>,
    /// How often changes made by other processes are picked up.
    pub change_poll: Duration,
    /// Retries, backoff, circuit breakers and `auto`.
    pub routing: routing::RoutingSettings,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            access_token_ttl: Duration::from_secs(3600),
            session_ttl: Duration::from_secs(7 * 24 * 3600),
            max_response_bytes: 64 * 1024 * 1024,
            usage_batch_size: 1000,
            usage_backlog: usage::Backlog::default(),
            pepper: Vec::new(),
            min_balance: domain::Money::from_nanos(1_000_000),
            stripe: None,
            change_poll: Duration::from_secs(1),
            routing: routing::RoutingSettings::default(),
        }
    }
}

/// Everything a request needs, built once at start-up and shared.
pub struct Engine {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) catalog: Catalog,
    pub(crate) router: routing::Router,
    pub(crate) keys: auth::KeyCache,
    pub(crate) plans: plans::PlanBook,
    pub(crate) wallets: wallet::Wallets,
    pub(crate) limiters: admission::Limiters,
    /// Outbound HTTP that is not a model upstream (payments).
    pub(crate) http: reqwest::Client,
    /// This process's id in the change feed.
    pub(crate) node_id: String,
    pub(crate) feed: feed::Feed,
    pub(crate) usage: usage::UsageSink,
    pub(crate) tasks: tasks::Tasks,
    pub(crate) settings: EngineSettings,
    /// `settings.pepper`, keyed once.
    pub(crate) pepper: domain::api_key::Pepper,
}

impl Engine {
    /// Loads plans, wires the engine and starts the usage writer.
    pub async fn start(
        store: Arc<dyn Store>,
        catalog: Catalog,
        providers: Vec<routing::Provider>,
        settings: EngineSettings,
    ) -> Result<Arc<Self>, store::StoreError> {
        let plans = plans::PlanBook::load(store.as_ref()).await?;
        let tasks = tasks::Tasks::new();
        let usage = usage::UsageSink::start(
            store.clone(),
            &tasks,
            settings.usage_batch_size,
            settings.usage_backlog,
        );
        let engine = Arc::new(Self {
            store,
            router: routing::Router::new(providers, &catalog, settings.routing.clone()),
            catalog,
            keys: auth::KeyCache::default(),
            plans,
            wallets: wallet::Wallets::default(),
            limiters: admission::Limiters::default(),
            http: reqwest::Client::new(),
            node_id: domain::UsageId::generate().0,
            feed: feed::Feed::default(),
            usage,
            tasks,
            pepper: domain::api_key::Pepper::new(&settings.pepper),
            settings,
        });
        engine.start_feed(engine.settings.change_poll);
        engine.start_health_checks();
        Ok(engine)
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn tasks(&self) -> &tasks::Tasks {
        &self.tasks
    }

    /// Public models none of whose deployments could take a request now.
    pub fn unavailable_models(&self) -> Vec<String> {
        let now = std::time::Instant::now();
        self.catalog
            .iter()
            .filter(|m| !self.router.model_available(m, now))
            .map(|m| m.name.clone())
            .collect()
    }

    /// Model names that ask the router to choose (`auto`).
    pub fn auto_aliases(&self) -> &[String] {
        &self.router.settings.auto.aliases
    }

    /// Every deployment's health, for operators.
    pub fn deployment_health(&self) -> Vec<routing::DeploymentStatus> {
        self.router.report(&self.catalog, std::time::Instant::now())
    }

    /// Readiness: the database answers.
    pub async fn ready(&self) -> Result<(), ApiError> {
        self.store.ping().await.map_err(|e| {
            ApiError::new(
                ErrorCode::ServiceUnavailable,
                format!("database not ready: {e}"),
            )
        })
    }

    /// After the HTTP server has stopped: waits for background work, flushes every queued
    /// usage event, then closes the database.
    pub async fn shutdown(&self) {
        self.usage.close();
        self.tasks.drain().await;
        self.store.close().await;
    }
}

/// Logs a storage failure once, where it becomes a client-visible error.
pub(crate) fn internal(context: &str, e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "{context}");
    ApiError::new(ErrorCode::Internal, "internal error; see the gateway's log")
}
