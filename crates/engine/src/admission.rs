//! Admission: per-key rate limits (RPM, TPM, concurrency) and credit reservation, decided in
//! memory before anything goes upstream. An `Admission` is held by the request's meter and
//! settled with the real cost; dropping it unsettled releases what it held.

use crate::auth::Authenticated;
use crate::wallet::{KeySpend, Wallet};
use crate::FastMap;
use crate::{internal, Engine};
use domain::{ApiError, ErrorCode, Gcra, KeyId, Money, Plan, RateDecision, UnixMillis};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// Seconds a client is told to wait when its concurrency limit is full: slots free up as
/// requests finish, so a short wait is right.
const CONCURRENCY_RETRY_SECS: u64 = 1;

/// A key's limits: the plan's, with the key's overrides (above or below) applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EffectiveLimits {
    pub rpm: u32,
    pub tpm: Option<u32>,
    pub concurrency: Option<u32>,
}

impl EffectiveLimits {
    pub fn of(plan: &Plan, key: &domain::ApiKeyRecord) -> Self {
        Self {
            rpm: key.rpm_limit.unwrap_or(plan.rpm).max(1),
            tpm: key.tpm_limit.or(plan.tpm),
            concurrency: key.concurrency_limit.or(plan.concurrency),
        }
    }
}

#[derive(Default)]
struct KeyLimiter {
    gcra: Mutex<(Gcra, Gcra)>,
    in_flight: AtomicU32,
}

#[derive(Default)]
pub struct Limiters {
    keys: RwLock<FastMap<KeyId, Arc<KeyLimiter>>>,
}

impl Limiters {
    fn get(&self, key: &KeyId) -> Arc<KeyLimiter> {
        if let Some(l) = self.keys.read().ok().and_then(|m| m.get(key).cloned()) {
            return l;
        }
        let Ok(mut map) = self.keys.write() else {
            return Arc::new(KeyLimiter::default());
        };
        map.entry(key.clone()).or_default().clone()
    }
}

/// Holds one in-flight slot; returned when dropped.
struct Slot(Arc<KeyLimiter>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A request let in: its rate-limit view, its reservation and its concurrency slot.
pub struct Admission {
    pub rate: RateDecision,
    limits: EffectiveLimits,
    slot: Slot,
    wallet: Arc<Wallet>,
    key_spend: Option<Arc<KeySpend>>,
    reserved: Money,
    settled: bool,
}

impl Admission {
    /// Replaces the reservation by the real cost and counts the tokens against TPM.
    pub fn settle(mut self, cost: Money, tokens: u64) {
        let now = UnixMillis::now();
        self.wallet.settle(now, self.reserved, cost);
        if let Some(k) = &self.key_spend {
            k.settle(self.reserved, cost);
        }
        if let Some(tpm) = self.limits.tpm {
            if let Ok(mut g) = self.slot.0.gcra.lock() {
                g.1.charge(now.0, tpm, tokens);
            }
        }
        self.settled = true;
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if !self.settled {
            self.wallet.release(self.reserved);
            if let Some(k) = &self.key_spend {
                k.release(self.reserved);
            }
        }
    }
}

fn limited(message: String, retry_after: u64, rate: RateDecision) -> ApiError {
    let mut e = ApiError::new(ErrorCode::RateLimitExceeded, message);
    e.retry_after = Some(retry_after);
    e.rate = Some(rate);
    e
}

impl Engine {
    /// The key's current request-rate view, consuming nothing (for `/v1/models`).
    pub fn rate_view(&self, auth: &Authenticated) -> Option<RateDecision> {
        let plan = self.plan_of(&auth.account().plan).ok()?;
        let limits = EffectiveLimits::of(&plan, auth.key());
        let limiter = self.limiters.get(&auth.key().id);
        let g = limiter.gcra.lock().ok()?;
        Some(g.0.peek(UnixMillis::now().0, limits.rpm))
    }

    /// Applies the key's rate limits and reserves `worst` from the account (and the key's
    /// monthly limit). Refusals: 429 `rate_limit_exceeded`, 402 `insufficient_credits`,
    /// `spend_cap_reached` or `key_limit_reached`.
    pub(crate) async fn admit(
        &self,
        auth: &Authenticated,
        plan: &Plan,
        worst: Money,
    ) -> Result<Admission, ApiError> {
        let key = auth.key();
        let limits = EffectiveLimits::of(plan, key);
        let limiter = self.limiters.get(&key.id);
        let in_flight = limiter.in_flight.fetch_add(1, Ordering::AcqRel);
        let slot = Slot(limiter.clone());
        let now = UnixMillis::now();
        let rate = {
            let mut g = limiter
                .gcra
                .lock()
                .map_err(|_| internal("rate limiter", "poisoned"))?;
            if let Some(max) = limits.concurrency {
                if in_flight >= max {
                    let view = g.0.peek(now.0, limits.rpm);
                    return Err(limited(
                        format!(
                            "this key already has {max} requests in flight (its concurrency limit)"
                        ),
                        CONCURRENCY_RETRY_SECS,
                        view,
                    ));
                }
            }
            if let Some(tpm) = limits.tpm {
                let tokens = g.1.peek(now.0, tpm);
                if tokens.remaining == 0 {
                    let wait = g.1.wait_secs(now.0, tpm);
                    let view = g.0.peek(now.0, limits.rpm);
                    return Err(limited(
                        format!("this key used its {tpm} tokens per minute"),
                        wait,
                        view,
                    ));
                }
            }
            let d = g.0.check(now.0, limits.rpm, 1);
            if !d.allowed {
                return Err(limited(
                    format!("this key is limited to {} requests per minute", limits.rpm),
                    d.retry_after_secs,
                    d,
                ));
            }
            d
        };
        let money_error = |code: ErrorCode, message: String| {
            let mut e = ApiError::new(code, message);
            e.rate = Some(rate);
            e
        };
        let wallet = self
            .wallets
            .wallet(self.store.as_ref(), &auth.account().id)
            .await
            .map_err(|e| internal("loading a balance", e))?;
        wallet
            .try_reserve(now, self.settings.min_balance, plan.monthly_cap, worst)
            .map_err(|refusal| {
                let message = match refusal {
                    crate::wallet::Refusal::Insufficient => {
                        "insufficient credits: top up your balance to continue".to_owned()
                    }
                    crate::wallet::Refusal::CapReached => format!(
                        "the {} plan's monthly spend cap of ${} is reached",
                        plan.name, plan.monthly_cap
                    ),
                };
                money_error(refusal.code(), message)
            })?;
        let key_spend = match key.monthly_limit {
            None => None,
            Some(limit) => {
                let spend = match self.wallets.key_spend(self.store.as_ref(), &key.id).await {
                    Ok(s) => s,
                    Err(e) => {
                        wallet.release(worst);
                        return Err(internal("loading a key's spend", e));
                    }
                };
                if !spend.try_reserve(limit, worst) {
                    wallet.release(worst);
                    return Err(money_error(
                        ErrorCode::KeyLimitReached,
                        format!("this key's monthly limit of ${limit} is reached"),
                    ));
                }
                Some(spend)
            }
        };
        Ok(Admission {
            rate,
            limits,
            slot,
            wallet,
            key_spend,
            reserved: worst,
            settled: false,
        })
    }
}
