//! What the router knows about each deployment and provider key: a circuit breaker, a
//! cool-down after rate limiting, recent outcomes for error rate and latency percentiles, an
//! EWMA of time to first byte, and requests in flight. All in memory, per node; every update
//! is a short critical section, never I/O.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Outcomes kept per deployment for the report.
const RECENT_CAP: usize = 1000;
/// The window the error rate and percentiles cover.
pub const RECENT_WINDOW: Duration = Duration::from_secs(300);
/// Weight of the newest sample in the latency EWMA.
const EWMA_ALPHA: f64 = 0.3;

/// Breaker thresholds, from configuration.
#[derive(Debug, Clone, Copy)]
pub struct BreakerSettings {
    /// Consecutive failures that open the breaker.
    pub threshold: u32,
    /// How long an open breaker skips the deployment before a probe may go through.
    pub cooldown: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Breaker {
    Closed,
    /// Skipped until the instant; then one probe is let through.
    Open(Instant),
    /// A probe is deciding; `true` while it is in flight.
    HalfOpen(bool),
}

/// How a deployment looks from outside, for reports and readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthState {
    Healthy,
    /// Rate limited (or every key benched) until a known time.
    CoolingDown,
    /// The circuit breaker is open: no requests until its cool-down ends.
    Open,
    /// The cool-down is over (or a health check passed): the next request is a probe.
    HalfOpen,
}

impl HealthState {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Healthy => "healthy",
            HealthState::CoolingDown => "cooling_down",
            HealthState::Open => "open",
            HealthState::HalfOpen => "half_open",
        }
    }
}

struct Sample {
    at: Instant,
    ok: bool,
    latency_ms: u32,
}

struct Inner {
    breaker: Breaker,
    consecutive_failures: u32,
    /// Rate limited until then (a deployment without keys to bench).
    cool_until: Option<Instant>,
    ewma_ms: Option<f64>,
    recent: VecDeque<Sample>,
    last_error: Option<String>,
}

/// One deployment's health.
pub struct DeploymentHealth {
    inner: Mutex<Inner>,
    in_flight: AtomicUsize,
    breaker: BreakerSettings,
}

/// Why a deployment cannot take a request now, and when it might.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    BreakerOpen(Option<Instant>),
    CoolingDown(Instant),
}

/// Entry granted by the breaker; the attempt reports back through it.
#[derive(Debug)]
pub struct Entry {
    /// This attempt is the half-open probe.
    probe: bool,
}

/// A summary for the providers report.
#[derive(Debug, Clone)]
pub struct HealthReport {
    pub state: HealthState,
    pub consecutive_failures: u32,
    /// Seconds until an open breaker lets a probe through, or a cool-down ends.
    pub retry_in_secs: Option<u64>,
    pub requests: usize,
    pub error_rate: f64,
    pub p50_ms: Option<u32>,
    pub p95_ms: Option<u32>,
    pub ewma_ms: Option<u32>,
    pub in_flight: usize,
    pub last_error: Option<String>,
}

impl DeploymentHealth {
    pub fn new(breaker: BreakerSettings) -> Self {
        Self {
            inner: Mutex::new(Inner {
                breaker: Breaker::Closed,
                consecutive_failures: 0,
                cool_until: None,
                ewma_ms: None,
                recent: VecDeque::new(),
                last_error: None,
            }),
            in_flight: AtomicUsize::new(0),
            breaker,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock only means another request panicked mid-update; the numbers
        // inside are still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks to send a request now. An open breaker past its cool-down turns half-open and
    /// lets exactly this caller through as the probe.
    pub fn try_enter(&self, now: Instant) -> Result<Entry, Skip> {
        let mut g = self.lock();
        if let Some(until) = g.cool_until {
            if now < until {
                return Err(Skip::CoolingDown(until));
            }
            g.cool_until = None;
        }
        match g.breaker {
            Breaker::Closed => Ok(Entry { probe: false }),
            Breaker::Open(until) if now < until => Err(Skip::BreakerOpen(Some(until))),
            Breaker::Open(_) | Breaker::HalfOpen(false) => {
                g.breaker = Breaker::HalfOpen(true);
                Ok(Entry { probe: true })
            }
            Breaker::HalfOpen(true) => Err(Skip::BreakerOpen(None)),
        }
    }

    /// The attempt got an answer: close the breaker, learn the latency.
    pub fn succeeded(&self, _entry: &Entry, latency: Duration, now: Instant) {
        let ms = millis(latency);
        let mut g = self.lock();
        g.breaker = Breaker::Closed;
        g.consecutive_failures = 0;
        let exact = latency.as_secs_f64() * 1000.0;
        g.ewma_ms = Some(match g.ewma_ms {
            Some(prev) => prev + EWMA_ALPHA * (exact - prev),
            None => exact,
        });
        push(&mut g.recent, now, true, ms);
    }

    /// The attempt failed in a way that counts against the deployment: a probe reopens the
    /// breaker; enough consecutive failures open it.
    pub fn failed(&self, entry: &Entry, latency: Duration, now: Instant, error: &str) {
        let mut g = self.lock();
        self.fail_locked(&mut g, entry.probe, now, error);
        push(&mut g.recent, now, false, millis(latency));
    }

    /// A stream that had started died: counts as a failure without touching latency.
    pub fn failed_midway(&self, now: Instant, error: &str) {
        let mut g = self.lock();
        self.fail_locked(&mut g, false, now, error);
        if let Some(last) = g.recent.back_mut() {
            last.ok = false;
        }
    }

    fn fail_locked(&self, g: &mut Inner, probe: bool, now: Instant, error: &str) {
        g.consecutive_failures = g.consecutive_failures.saturating_add(1);
        g.last_error = Some(error.to_owned());
        if probe || g.consecutive_failures >= self.breaker.threshold {
            g.breaker = Breaker::Open(now + self.breaker.cooldown);
        }
    }

    /// The attempt ended without a verdict on the deployment (rate limited, its key refused,
    /// the client left): a probe slot is freed for the next request.
    pub fn neutral(&self, entry: &Entry, latency: Duration, now: Instant, error: Option<&str>) {
        let mut g = self.lock();
        if entry.probe && g.breaker == Breaker::HalfOpen(true) {
            g.breaker = Breaker::HalfOpen(false);
        }
        if let Some(e) = error {
            g.last_error = Some(e.to_owned());
            push(&mut g.recent, now, false, millis(latency));
        }
    }

    /// The deployment said "slow down" and there is no key to bench: skip it until `until`.
    pub fn cool_down(&self, until: Instant) {
        let mut g = self.lock();
        g.cool_until = Some(g.cool_until.map_or(until, |u| u.max(until)));
    }

    /// An active health check failed: open the breaker as if the threshold was reached.
    pub fn probe_failed(&self, now: Instant, error: &str) {
        let mut g = self.lock();
        g.last_error = Some(format!("health check: {error}"));
        if !matches!(g.breaker, Breaker::Open(u) if u > now) {
            g.breaker = Breaker::Open(now + self.breaker.cooldown);
        }
    }

    /// An active health check passed: an open breaker goes half-open so the next request
    /// probes it at once.
    pub fn probe_passed(&self) {
        let mut g = self.lock();
        if matches!(g.breaker, Breaker::Open(_)) {
            g.breaker = Breaker::HalfOpen(false);
        }
    }

    /// EWMA of time to first byte in ms; `None` before the first success.
    pub fn ewma_ms(&self) -> Option<f64> {
        self.lock().ewma_ms
    }

    pub fn enter_flight(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// Whether a request could go here now (ignoring concurrency limits).
    pub fn available(&self, now: Instant) -> bool {
        let g = self.lock();
        let cooling = g.cool_until.is_some_and(|u| now < u);
        let open = match g.breaker {
            Breaker::Closed | Breaker::HalfOpen(false) => false,
            Breaker::Open(until) => now < until,
            Breaker::HalfOpen(true) => true,
        };
        !cooling && !open
    }

    pub fn report(&self, now: Instant) -> HealthReport {
        let mut g = self.lock();
        while g
            .recent
            .front()
            .is_some_and(|s| now.duration_since(s.at) > RECENT_WINDOW)
        {
            g.recent.pop_front();
        }
        let requests = g.recent.len();
        let failures = g.recent.iter().filter(|s| !s.ok).count();
        let mut latencies: Vec<u32> = g
            .recent
            .iter()
            .filter(|s| s.ok)
            .map(|s| s.latency_ms)
            .collect();
        latencies.sort_unstable();
        let (state, retry_in) = match (g.breaker, g.cool_until) {
            (Breaker::Open(until), _) if now < until => (HealthState::Open, Some(until)),
            (Breaker::Open(_), _) => (HealthState::HalfOpen, None),
            (Breaker::HalfOpen(_), _) => (HealthState::HalfOpen, None),
            (Breaker::Closed, Some(until)) if now < until => {
                (HealthState::CoolingDown, Some(until))
            }
            _ => (HealthState::Healthy, None),
        };
        HealthReport {
            state,
            consecutive_failures: g.consecutive_failures,
            retry_in_secs: retry_in.map(|u| secs_until(now, u)),
            requests,
            error_rate: if requests == 0 {
                0.0
            } else {
                failures as f64 / requests as f64
            },
            p50_ms: percentile(&latencies, 50),
            p95_ms: percentile(&latencies, 95),
            ewma_ms: g.ewma_ms.map(|v| v.round() as u32),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            last_error: g.last_error.clone(),
        }
    }
}

/// Counts a request in flight until dropped.
pub struct InFlight(Arc<DeploymentHealth>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

fn push(recent: &mut VecDeque<Sample>, at: Instant, ok: bool, latency_ms: u32) {
    if recent.len() == RECENT_CAP {
        recent.pop_front();
    }
    recent.push_back(Sample { at, ok, latency_ms });
}

fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

/// Whole seconds from `now` until `until`, rounded up (what `Retry-After` carries).
pub fn secs_until(now: Instant, until: Instant) -> u64 {
    let d = until.saturating_duration_since(now);
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[u32], p: usize) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// A provider's API keys, used round-robin; a key that was refused or rate limited sits out
/// until its bench time passes.
pub struct KeyRing {
    keys: Vec<Arc<str>>,
    next: AtomicUsize,
    benched: Mutex<Vec<Option<Instant>>>,
}

impl KeyRing {
    pub fn new(keys: &[String]) -> Self {
        Self {
            keys: keys.iter().map(|k| Arc::from(k.as_str())).collect(),
            next: AtomicUsize::new(0),
            benched: Mutex::new(vec![None; keys.len()]),
        }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The next key not on the bench: `Ok(None)` when the provider uses no keys, `Err` with
    /// the earliest return when every key is benched.
    pub fn pick(&self, now: Instant) -> Result<Option<(usize, Arc<str>)>, Instant> {
        if self.keys.is_empty() {
            return Ok(None);
        }
        let benched = self.benched.lock().unwrap_or_else(|p| p.into_inner());
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.keys.len();
        for i in 0..n {
            let idx = (start + i) % n;
            if benched[idx].is_none_or(|until| now >= until) {
                return Ok(Some((idx, self.keys[idx].clone())));
            }
        }
        Err(benched.iter().flatten().min().copied().unwrap_or(now))
    }

    pub fn bench(&self, idx: usize, until: Instant) {
        let mut benched = self.benched.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = benched.get_mut(idx) {
            *slot = Some(slot.map_or(until, |u| u.max(until)));
        }
    }

    /// Keys benched now.
    pub fn benched(&self, now: Instant) -> usize {
        let benched = self.benched.lock().unwrap_or_else(|p| p.into_inner());
        benched.iter().flatten().filter(|u| now < **u).count()
    }

    /// When every key is benched, the earliest return.
    pub fn all_benched_until(&self, now: Instant) -> Option<Instant> {
        if self.keys.is_empty() {
            return None;
        }
        let benched = self.benched.lock().unwrap_or_else(|p| p.into_inner());
        let mut earliest = None;
        for b in benched.iter() {
            match b {
                Some(u) if now < *u => earliest = Some(earliest.map_or(*u, |e: Instant| e.min(*u))),
                _ => return None,
            }
        }
        earliest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> BreakerSettings {
        BreakerSettings {
            threshold: 3,
            cooldown: Duration::from_secs(10),
        }
    }

    #[test]
    fn breaker_opens_after_threshold_then_probes_once() {
        let h = DeploymentHealth::new(settings());
        let t0 = Instant::now();
        let ms = Duration::from_millis(5);
        for _ in 0..2 {
            let e = h.try_enter(t0).unwrap();
            h.failed(&e, ms, t0, "boom");
        }
        let e = h.try_enter(t0).unwrap();
        assert!(h.available(t0));
        h.failed(&e, ms, t0, "boom");
        assert_eq!(
            h.try_enter(t0).unwrap_err(),
            Skip::BreakerOpen(Some(t0 + Duration::from_secs(10)))
        );
        assert_eq!(h.report(t0).state, HealthState::Open);
        // After the cool-down exactly one probe goes through.
        let later = t0 + Duration::from_secs(11);
        let probe = h.try_enter(later).unwrap();
        assert!(probe.probe);
        assert_eq!(h.try_enter(later).unwrap_err(), Skip::BreakerOpen(None));
        // A failed probe reopens at once, for a full cool-down.
        h.failed(&probe, ms, later, "still down");
        assert!(h.try_enter(later + Duration::from_secs(5)).is_err());
        let probe = h.try_enter(later + Duration::from_secs(11)).unwrap();
        h.succeeded(&probe, ms, later);
        assert!(!h.try_enter(later + Duration::from_secs(11)).unwrap().probe);
        assert_eq!(h.report(later).state, HealthState::Healthy);
    }

    #[test]
    fn a_neutral_probe_frees_the_slot() {
        let h = DeploymentHealth::new(BreakerSettings {
            threshold: 1,
            cooldown: Duration::ZERO,
        });
        let t = Instant::now();
        let e = h.try_enter(t).unwrap();
        h.failed(&e, Duration::ZERO, t, "x");
        let probe = h.try_enter(t).unwrap();
        assert!(h.try_enter(t).is_err());
        h.neutral(&probe, Duration::ZERO, t, None);
        assert!(h.try_enter(t).unwrap().probe);
    }

    #[test]
    fn report_has_error_rate_and_percentiles() {
        let h = DeploymentHealth::new(settings());
        let t = Instant::now();
        for ms in 1..=100u64 {
            let e = h.try_enter(t).unwrap();
            h.succeeded(&e, Duration::from_millis(ms), t);
        }
        let e = h.try_enter(t).unwrap();
        h.failed(&e, Duration::ZERO, t, "x");
        let r = h.report(t);
        assert_eq!(r.requests, 101);
        assert_eq!(r.p50_ms, Some(50));
        assert_eq!(r.p95_ms, Some(95));
        assert!((r.error_rate - 1.0 / 101.0).abs() < 1e-9);
        assert_eq!(r.consecutive_failures, 1);
    }

    #[test]
    fn keys_rotate_and_sit_out_their_bench() {
        let ring = KeyRing::new(&["a".into(), "b".into()]);
        let t = Instant::now();
        let first = ring.pick(t).unwrap().unwrap();
        let second = ring.pick(t).unwrap().unwrap();
        assert_ne!(first.1, second.1);
        ring.bench(first.0, t + Duration::from_secs(5));
        for _ in 0..4 {
            assert_eq!(ring.pick(t).unwrap().unwrap().1, second.1);
        }
        ring.bench(second.0, t + Duration::from_secs(3));
        assert_eq!(ring.pick(t).unwrap_err(), t + Duration::from_secs(3));
        assert_eq!(ring.all_benched_until(t), Some(t + Duration::from_secs(3)));
        assert!(ring.pick(t + Duration::from_secs(4)).unwrap().is_some());
        assert!(KeyRing::new(&[]).pick(t).unwrap().is_none());
    }
}
