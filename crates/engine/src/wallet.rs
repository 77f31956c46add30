//! Money in memory: each account's balance, in-flight reservations and month spend, and each
//! limited key's month spend. Loaded from the database once per account (or key) and kept up
//! to date by settlement and credits, so admission never waits on the database.
//!
//! Clustering (a later issue) moves this state to Redis behind the same operations:
//! `try_reserve`, `settle`, `release`, `credit`, each one atomic script.

use crate::FastMap;
use domain::{AccountId, ErrorCode, KeyId, Money, UnixMillis};
use std::sync::{Arc, Mutex, RwLock};
use store::{Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalletView {
    pub balance: Money,
    pub reserved: Money,
    pub month_spend: Money,
}

#[derive(Debug)]
struct WalletState {
    balance: Money,
    reserved: Money,
    month: UnixMillis,
    month_spend: Money,
}

impl WalletState {
    fn roll(&mut self, now: UnixMillis) {
        let month = now.month_start();
        if month != self.month {
            self.month = month;
            self.month_spend = Money::ZERO;
        }
    }
}

#[derive(Debug)]
pub struct Wallet {
    state: Mutex<WalletState>,
    /// The account's balance version when loaded: ledger entries up to it are included.
    loaded_version: i64,
}

/// Why credit could not be reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Insufficient,
    CapReached,
}

impl Wallet {
    fn lock(&self) -> std::sync::MutexGuard<'_, WalletState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn view(&self, now: UnixMillis) -> WalletView {
        let mut s = self.lock();
        s.roll(now);
        WalletView {
            balance: s.balance,
            reserved: s.reserved,
            month_spend: s.month_spend,
        }
    }

    /// Reserves `worst` if the balance not yet reserved is at least `floor` and the month's
    /// spend plus reservations is under `cap`. The last request admitted may therefore
    /// overspend by at most its own worst case: that is the overspend bound.
    pub fn try_reserve(
        &self,
        now: UnixMillis,
        floor: Money,
        cap: Money,
        worst: Money,
    ) -> Result<(), Refusal> {
        let mut s = self.lock();
        s.roll(now);
        if s.balance - s.reserved < floor {
            return Err(Refusal::Insufficient);
        }
        if s.month_spend + s.reserved >= cap {
            return Err(Refusal::CapReached);
        }
        s.reserved += worst;
        Ok(())
    }

    /// Replaces a reservation by the real cost.
    pub fn settle(&self, now: UnixMillis, reserved: Money, cost: Money) {
        let mut s = self.lock();
        s.roll(now);
        s.reserved -= reserved;
        s.balance -= cost;
        s.month_spend += cost;
    }

    pub fn release(&self, reserved: Money) {
        self.lock().reserved -= reserved;
    }

    fn credit(&self, amount: Money) {
        self.lock().balance += amount;
    }
}

/// A key's spend this month, for its `monthly_limit`.
#[derive(Debug)]
pub struct KeySpend {
    state: Mutex<(UnixMillis, Money, Money)>,
}

impl KeySpend {
    fn lock(&self) -> std::sync::MutexGuard<'_, (UnixMillis, Money, Money)> {
        let mut g = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let month = UnixMillis::now().month_start();
        if g.0 != month {
            *g = (month, Money::ZERO, g.2);
        }
        g
    }

    /// Reserves `worst` unless spend plus reservations already reached `limit`.
    pub fn try_reserve(&self, limit: Money, worst: Money) -> bool {
        let mut g = self.lock();
        if g.1 + g.2 >= limit {
            return false;
        }
        g.2 += worst;
        true
    }

    pub fn settle(&self, reserved: Money, cost: Money) {
        let mut g = self.lock();
        g.2 -= reserved;
        g.1 += cost;
    }

    pub fn release(&self, reserved: Money) {
        self.lock().2 -= reserved;
    }

    pub fn spent(&self) -> Money {
        self.lock().1
    }
}

#[derive(Default)]
pub struct Wallets {
    accounts: RwLock<FastMap<AccountId, Arc<Wallet>>>,
    keys: RwLock<FastMap<KeyId, Arc<KeySpend>>>,
    /// Credits hold this exclusively while they write the ledger and apply the amount; loads
    /// hold it shared while they read the balance and install the wallet. So a load never
    /// misses a credit nor sees one twice. Both are rare; requests never touch it.
    gate: tokio::sync::RwLock<()>,
}

impl Wallets {
    /// The account's wallet, loading it from the database the first time.
    pub async fn wallet(
        &self,
        store: &dyn Store,
        account: &AccountId,
    ) -> Result<Arc<Wallet>, StoreError> {
        if let Some(w) = self
            .accounts
            .read()
            .ok()
            .and_then(|m| m.get(account).cloned())
        {
            return Ok(w);
        }
        let _gate = self.gate.read().await;
        let now = UnixMillis::now();
        let snap = store.account_money(account, now.month_start()).await?;
        let Ok(mut map) = self.accounts.write() else {
            return Err(StoreError::Backend("wallet map poisoned".into()));
        };
        let wallet = map.entry(account.clone()).or_insert_with(|| {
            Arc::new(Wallet {
                state: Mutex::new(WalletState {
                    balance: snap.balance,
                    reserved: Money::ZERO,
                    month: now.month_start(),
                    month_spend: snap.month_spend,
                }),
                loaded_version: snap.version,
            })
        });
        Ok(wallet.clone())
    }

    /// The key's month spend, loading it the first time.
    pub async fn key_spend(
        &self,
        store: &dyn Store,
        key: &KeyId,
    ) -> Result<Arc<KeySpend>, StoreError> {
        if let Some(k) = self.keys.read().ok().and_then(|m| m.get(key).cloned()) {
            return Ok(k);
        }
        let month = UnixMillis::now().month_start();
        let spent = store.key_month_spend(key, month).await?;
        let Ok(mut map) = self.keys.write() else {
            return Err(StoreError::Backend("key spend map poisoned".into()));
        };
        let entry = map.entry(key.clone()).or_insert_with(|| {
            Arc::new(KeySpend {
                state: Mutex::new((month, spent, Money::ZERO)),
            })
        });
        Ok(entry.clone())
    }

    /// Runs `write` (which appends ledger entries and returns the net amount per account)
    /// and applies the amounts to loaded wallets, excluding concurrent loads.
    pub async fn credit<F, T, E>(&self, write: F) -> Result<T, E>
    where
        F: std::future::Future<Output = Result<(T, Vec<(AccountId, Money)>), E>>,
    {
        let _gate = self.gate.write().await;
        let (out, amounts) = write.await?;
        for (account, amount) in amounts {
            if let Some(w) = self
                .accounts
                .read()
                .ok()
                .and_then(|m| m.get(&account).cloned())
            {
                w.credit(amount);
            }
        }
        Ok(out)
    }
}

impl Wallets {
    /// Applies a ledger entry written by another process, unless this wallet was loaded
    /// after it (then its balance already includes it).
    pub async fn apply_foreign(&self, account: &AccountId, amount: Money, version: i64) {
        let _gate = self.gate.write().await;
        if let Some(w) = self
            .accounts
            .read()
            .ok()
            .and_then(|m| m.get(account).cloned())
        {
            if version > w.loaded_version {
                w.credit(amount);
            }
        }
    }
}

impl Refusal {
    pub fn code(self) -> ErrorCode {
        match self {
            Refusal::Insufficient => ErrorCode::InsufficientCredits,
            Refusal::CapReached => ErrorCode::SpendCapReached,
        }
    }
}
