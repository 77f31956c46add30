//! Routing: which deployments may serve a request, in which order, and what the router
//! remembers about each of them. `plan` builds the ordered candidates for a request from the
//! model chain (primary, `models` fallbacks or `auto`), each model's strategy and the
//! request's `provider` preferences; `health` keeps breakers, cool-downs and latencies; the
//! relay walks the plan.

pub mod auto;
pub mod health;

use crate::FastMap;
use domain::{ProviderId, PublicModel, Strategy};
use health::{BreakerSettings, DeploymentHealth, HealthReport, HealthState, KeyRing};
use protocol::openai::{ProviderPrefs, SortBy};
use rand::Rng;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use upstream::Upstream;

/// Retry and breaker tunables.
#[derive(Debug, Clone)]
pub struct RoutingSettings {
    /// Tries per request at most, across all deployments.
    pub max_attempts: u32,
    /// Time allowed from the first try to an answer starting, across all tries.
    pub deadline: Duration,
    /// Backoff before a retry: a random wait up to `base × 2^(n-1)`, capped at `max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub breaker: BreakerSettings,
    /// How long a key (or key-less deployment) sits out after 401/403/429 when the upstream
    /// sent no `Retry-After`.
    pub key_cooldown: Duration,
    pub auto: auto::AutoSettings,
}

impl Default for RoutingSettings {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            deadline: Duration::from_secs(180),
            backoff_base: Duration::from_millis(25),
            backoff_max: Duration::from_secs(1),
            breaker: BreakerSettings {
                threshold: 5,
                cooldown: Duration::from_secs(30),
            },
            key_cooldown: Duration::from_secs(60),
            auto: auto::AutoSettings::default(),
        }
    }
}

/// A configured provider, as the engine receives it.
pub struct Provider {
    pub id: ProviderId,
    pub upstream: Arc<dyn Upstream>,
    pub api_keys: Vec<String>,
    pub max_concurrency: Option<usize>,
    pub health_check_interval: Option<Duration>,
}

pub(crate) struct ProviderState {
    pub id: ProviderId,
    pub upstream: Arc<dyn Upstream>,
    pub keys: KeyRing,
    slots: Option<Arc<Semaphore>>,
    max_concurrency: Option<usize>,
    health_check_interval: Option<Duration>,
}

impl ProviderState {
    /// A concurrency slot, or `None` when the provider is at its limit.
    pub fn try_slot(&self) -> Result<Option<OwnedSemaphorePermit>, ()> {
        match &self.slots {
            None => Ok(None),
            Some(s) => s.clone().try_acquire_owned().map(Some).map_err(|_| ()),
        }
    }
}

/// One deployment of one model, ready to be tried.
#[derive(Clone)]
pub(crate) struct Candidate {
    pub model: Arc<PublicModel>,
    /// Index into `model.deployments`.
    pub index: usize,
    pub provider: Arc<ProviderState>,
    pub health: Arc<DeploymentHealth>,
}

impl Candidate {
    pub fn deployment(&self) -> &domain::Deployment {
        &self.model.deployments[self.index]
    }
}

pub(crate) struct Router {
    providers: FastMap<ProviderId, Arc<ProviderState>>,
    /// By `provider/upstream_model`: one health record however many models share it.
    health: FastMap<String, Arc<DeploymentHealth>>,
    /// The same records by public model, in the order of its deployments, so a request
    /// finds them without building a key.
    by_model: FastMap<String, Vec<Arc<DeploymentHealth>>>,
    pub settings: RoutingSettings,
}

impl Router {
    pub fn new(
        providers: Vec<Provider>,
        catalog: &domain::Catalog,
        settings: RoutingSettings,
    ) -> Self {
        let providers: FastMap<_, _> = providers
            .into_iter()
            .map(|p| {
                let state = ProviderState {
                    keys: KeyRing::new(&p.api_keys),
                    slots: p.max_concurrency.map(|n| Arc::new(Semaphore::new(n))),
                    max_concurrency: p.max_concurrency,
                    health_check_interval: p.health_check_interval,
                    upstream: p.upstream,
                    id: p.id.clone(),
                };
                (p.id, Arc::new(state))
            })
            .collect();
        let mut health: FastMap<String, Arc<DeploymentHealth>> = FastMap::default();
        let mut by_model = FastMap::default();
        for m in catalog.iter() {
            let records = m
                .deployments
                .iter()
                .map(|d| {
                    health
                        .entry(d.key())
                        .or_insert_with(|| Arc::new(DeploymentHealth::new(settings.breaker)))
                        .clone()
                })
                .collect();
            by_model.insert(m.name.clone(), records);
        }
        Self {
            providers,
            health,
            by_model,
            settings,
        }
    }

    /// The health record of `model`'s deployment number `index`.
    fn health_of(&self, model: &PublicModel, index: usize) -> Option<&Arc<DeploymentHealth>> {
        self.by_model.get(&model.name)?.get(index)
    }

    fn candidate(&self, model: &Arc<PublicModel>, index: usize) -> Option<Candidate> {
        let d = &model.deployments[index];
        Some(Candidate {
            model: model.clone(),
            index,
            provider: self.providers.get(&d.provider)?.clone(),
            health: self.health_of(model, index)?.clone(),
        })
    }

    /// The candidates for a request: each model of the chain in turn, its deployments in
    /// the order its strategy (or `provider.sort`) gives, filtered and reordered by the
    /// `provider` preferences.
    pub fn plan(&self, chain: &[Arc<PublicModel>], prefs: &ProviderPrefs) -> Vec<Candidate> {
        let mut out = Vec::new();
        for model in chain {
            let strategy = match prefs.sort {
                Some(SortBy::Price) => Strategy::LowestCost,
                Some(SortBy::Latency) => Strategy::LeastLatency,
                None => model.strategy,
            };
            let mut order = self.order(model, strategy);
            order.retain(|&i| allowed(model, i, prefs));
            if !prefs.order.is_empty() {
                let rank = |i: &usize| {
                    let name = &model.deployments[*i].provider.0;
                    prefs
                        .order
                        .iter()
                        .position(|p| p == name)
                        .unwrap_or(usize::MAX)
                };
                order.sort_by_key(rank);
                if !prefs.allow_fallbacks {
                    order.retain(|i| rank(i) != usize::MAX);
                }
            } else if !prefs.allow_fallbacks {
                order.truncate(1);
            }
            out.extend(order.into_iter().filter_map(|i| self.candidate(model, i)));
        }
        out
    }

    /// Deployment indexes of `model` in strategy order.
    fn order(&self, model: &PublicModel, strategy: Strategy) -> Vec<usize> {
        let n = model.deployments.len();
        if n <= 1 {
            return (0..n).collect();
        }
        let mut rng = rand::thread_rng();
        // A weighted random key per deployment (Efraimidis–Spirakis): sorting by it draws
        // an order in which each deployment leads with probability weight / total.
        let draw: Vec<f64> = model
            .deployments
            .iter()
            .map(|d| {
                if d.weight == 0 {
                    0.0
                } else {
                    rng.gen::<f64>().powf(1.0 / f64::from(d.weight))
                }
            })
            .collect();
        let mut idx: Vec<usize> = (0..n).collect();
        let by_draw = |a: &usize, b: &usize| draw[*b].total_cmp(&draw[*a]);
        match strategy {
            Strategy::Priority => idx.sort_by(|a, b| {
                let (da, db) = (&model.deployments[*a], &model.deployments[*b]);
                da.priority.cmp(&db.priority).then_with(|| by_draw(a, b))
            }),
            Strategy::Weighted => idx.sort_by(by_draw),
            Strategy::LeastLatency => {
                // Untried deployments first (`None` sorts before any latency), so each
                // gets measured; then the fastest.
                let ewma: Vec<Option<f64>> = (0..n)
                    .map(|i| self.health_of(model, i).and_then(|h| h.ewma_ms()))
                    .collect();
                idx.sort_by(|a, b| {
                    let (ea, eb) = (ewma[*a], ewma[*b]);
                    let by_latency = match (ea, eb) {
                        (Some(x), Some(y)) => x.total_cmp(&y),
                        _ => ea.is_some().cmp(&eb.is_some()),
                    };
                    by_latency.then_with(|| by_draw(a, b))
                });
            }
            Strategy::LowestCost => idx.sort_by_key(|i| model.deployments[*i].price_rank(model)),
        }
        idx
    }

    /// Backoff before try number `attempt` (1 = first retry): full jitter.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .settings
            .backoff_base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let cap = exp.min(self.settings.backoff_max);
        if cap.is_zero() {
            return cap;
        }
        rand::thread_rng().gen_range(Duration::ZERO..=cap)
    }

    /// Providers with active health checks: (provider, interval, deployments it serves).
    pub fn health_checks(&self) -> Vec<(Arc<ProviderState>, Duration, Vec<Arc<DeploymentHealth>>)> {
        self.providers
            .values()
            .filter_map(|p| {
                let every = p.health_check_interval?;
                let prefix = format!("{}/", p.id.0);
                let deployments = self
                    .health
                    .iter()
                    .filter(|(k, _)| k.starts_with(&prefix))
                    .map(|(_, h)| h.clone())
                    .collect();
                Some((p.clone(), every, deployments))
            })
            .collect()
    }

    /// Whether some deployment of `model` could take a request now.
    pub fn model_available(&self, model: &PublicModel, now: Instant) -> bool {
        model.deployments.iter().enumerate().any(|(i, d)| {
            let keys_ok = self
                .providers
                .get(&d.provider)
                .is_some_and(|p| p.keys.all_benched_until(now).is_none());
            keys_ok && self.health_of(model, i).is_some_and(|h| h.available(now))
        })
    }

    /// Every deployment of the catalog with its health, for the admin report.
    pub fn report(&self, catalog: &domain::Catalog, now: Instant) -> Vec<DeploymentStatus> {
        let mut out: Vec<DeploymentStatus> = Vec::new();
        for m in catalog.iter() {
            for d in &m.deployments {
                let key = d.key();
                if let Some(existing) = out.iter_mut().find(|s| s.deployment == key) {
                    existing.models.push(m.name.clone());
                    continue;
                }
                let (Some(h), Some(p)) = (self.health.get(&key), self.providers.get(&d.provider))
                else {
                    continue;
                };
                let mut health = h.report(now);
                if health.state == HealthState::Healthy {
                    if let Some(until) = p.keys.all_benched_until(now) {
                        health.state = HealthState::CoolingDown;
                        health.retry_in_secs = Some(health::secs_until(now, until));
                    }
                }
                out.push(DeploymentStatus {
                    deployment: key,
                    provider: d.provider.0.clone(),
                    upstream_model: d.upstream_model.clone(),
                    models: vec![m.name.clone()],
                    health,
                    keys: p.keys.len(),
                    keys_benched: p.keys.benched(now),
                    max_concurrency: p.max_concurrency,
                });
            }
        }
        out
    }
}

/// Whether deployment `i` passes `only`, `ignore` and `max_price`.
fn allowed(model: &PublicModel, i: usize, prefs: &ProviderPrefs) -> bool {
    let d = &model.deployments[i];
    let name = &d.provider.0;
    if prefs.only.as_ref().is_some_and(|only| !only.contains(name)) {
        return false;
    }
    if prefs.ignore.contains(name) {
        return false;
    }
    if let Some(max) = &prefs.max_price {
        let price = model.price_for(d);
        if max.prompt.is_some_and(|p| price.input > p.0)
            || max.completion.is_some_and(|c| price.output > c.0)
        {
            return false;
        }
    }
    true
}

/// One deployment's line in `GET /api/admin/providers`.
#[derive(Debug, Clone)]
pub struct DeploymentStatus {
    pub deployment: String,
    pub provider: String,
    pub upstream_model: String,
    /// Public models it serves.
    pub models: Vec<String>,
    pub health: HealthReport,
    pub keys: usize,
    pub keys_benched: usize,
    pub max_concurrency: Option<usize>,
}

/// Why a candidate was passed over without a try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Passed {
    /// Breaker open; a probe may go after the instant (if known).
    BreakerOpen(Option<Instant>),
    /// Rate limited, or every key benched, until the instant.
    CoolingDown(Instant),
    /// The provider is at its concurrency limit.
    Busy,
}

/// One try at one deployment, holding its breaker entry, key, concurrency slot and
/// in-flight count until the answer is over. Dropped without a verdict (the client left),
/// it frees a half-open probe slot.
pub(crate) struct Lease {
    health: Arc<DeploymentHealth>,
    entry: health::Entry,
    key: Option<(usize, Arc<str>)>,
    provider: Arc<ProviderState>,
    started: Instant,
    /// How long the try took to its verdict, once it has one.
    took: Option<Duration>,
    _slot: Option<OwnedSemaphorePermit>,
    _flight: health::InFlight,
}

impl Router {
    /// Takes a candidate for a try now, or says why not.
    pub fn enter(&self, c: &Candidate, now: Instant) -> Result<Lease, Passed> {
        let entry = c.health.try_enter(now).map_err(|s| match s {
            health::Skip::BreakerOpen(u) => Passed::BreakerOpen(u),
            health::Skip::CoolingDown(u) => Passed::CoolingDown(u),
        })?;
        let release = |p: Passed| {
            c.health.neutral(&entry, Duration::ZERO, now, None);
            p
        };
        let key = match c.provider.keys.pick(now) {
            Ok(k) => k,
            Err(until) => return Err(release(Passed::CoolingDown(until))),
        };
        let slot = match c.provider.try_slot() {
            Ok(s) => s,
            Err(()) => return Err(release(Passed::Busy)),
        };
        Ok(Lease {
            _flight: c.health.enter_flight(),
            health: c.health.clone(),
            entry,
            key,
            provider: c.provider.clone(),
            started: now,
            took: None,
            _slot: slot,
        })
    }
}

impl Lease {
    pub fn api_key(&self) -> Option<Arc<str>> {
        self.key.as_ref().map(|(_, k)| k.clone())
    }

    /// How long the try took to its verdict, or has taken so far.
    pub fn elapsed(&self) -> Duration {
        self.took.unwrap_or_else(|| self.started.elapsed())
    }

    /// Records the verdict's time: how long the try took, and now.
    fn decide(&mut self) -> (Duration, Instant) {
        let now = Instant::now();
        let took = now.saturating_duration_since(self.started);
        self.took = Some(took);
        (took, now)
    }

    /// The answer started: the deployment is healthy.
    pub fn succeeded(&mut self) {
        let (took, now) = self.decide();
        self.health.succeeded(&self.entry, took, now);
    }

    /// The deployment failed this try.
    pub fn failed(&mut self, error: &str) {
        let (took, now) = self.decide();
        self.health.failed(&self.entry, took, now, error);
    }

    /// An answer that had started broke off.
    pub fn failed_midway(&self, error: &str) {
        self.health.failed_midway(Instant::now(), error);
    }

    /// The upstream refused the key or asked to slow down: the key (or, without keys, the
    /// deployment) sits out until `until`; no verdict on the deployment's health.
    pub fn bench(&mut self, until: Instant, error: &str) {
        let (took, now) = self.decide();
        match &self.key {
            Some((idx, _)) => self.provider.keys.bench(*idx, until),
            None => self.health.cool_down(until),
        }
        self.health.neutral(&self.entry, took, now, Some(error));
    }

    /// The try ended without a verdict on the deployment (e.g. the request was refused as
    /// invalid, which says nothing about its health).
    pub fn neutral(&mut self) {
        let (took, now) = self.decide();
        self.health.neutral(&self.entry, took, now, None);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.took.is_none() {
            let (took, now) = self.decide();
            self.health.neutral(&self.entry, took, now, None);
        }
    }
}

impl crate::Engine {
    /// Starts one background prober per provider that asks for active health checks: a
    /// failed probe opens its deployments' breakers, a passing one lets a request probe an
    /// open breaker at once.
    pub(crate) fn start_health_checks(&self) {
        for (provider, every, deployments) in self.router.health_checks() {
            let stop = self.tasks.shutdown_signal();
            self.tasks.spawn(async move {
                loop {
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(every) => {}
                    }
                    let key = provider.keys.pick(Instant::now()).ok().flatten();
                    let result = tokio::select! {
                        () = stop.cancelled() => return,
                        r = provider.upstream.probe(key.map(|(_, k)| k)) => r,
                    };
                    match result {
                        Ok(()) => deployments.iter().for_each(|d| d.probe_passed()),
                        Err(e) => {
                            tracing::warn!(provider = %provider.id.0, error = %e, "health check failed");
                            let now = Instant::now();
                            let msg = e.to_string();
                            deployments.iter().for_each(|d| d.probe_failed(now, &msg));
                        }
                    }
                }
            });
        }
    }
}
