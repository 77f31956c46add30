//! The storage ports. Every backend implements all of them and passes one conformance suite.

use async_trait::async_trait;
use domain::{
    Account, AccountId, ApiKeyRecord, KeyHash, KeyId, LedgerEntry, Money, NewLedgerEntry, Plan,
    UnixMillis, UsageEvent,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was hit; carries the rule's name (e.g. `email`).
    #[error("conflict on {0}")]
    Conflict(&'static str),
    #[error("storage backend error: {0}")]
    Backend(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Backend(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

#[derive(Debug, Clone)]
pub struct NewAccount {
    pub account: Account,
    pub email_lower: String,
    pub password_hash: String,
    /// Credit written to the ledger in the same transaction (the plan's included credits).
    pub initial_credit: Option<NewLedgerEntry>,
}

#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Fails with `Conflict("email")` when the normalized email is taken.
    async fn create_account(&self, new: &NewAccount) -> Result<()>;
    /// The account and its password hash.
    async fn account_by_email(&self, email_lower: &str) -> Result<Option<(Account, String)>>;
    async fn account_by_id(&self, id: &AccountId) -> Result<Option<Account>>;
    async fn count_accounts(&self) -> Result<u64>;
    /// `false` when there is no such account.
    async fn set_account_status(
        &self,
        id: &AccountId,
        status: domain::AccountStatus,
    ) -> Result<bool>;
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn create_session(
        &self,
        token_hash: &str,
        account: &AccountId,
        now: UnixMillis,
        expires_at: UnixMillis,
    ) -> Result<()>;
    /// The account of an unexpired session.
    async fn session_account(&self, token_hash: &str, now: UnixMillis) -> Result<Option<Account>>;
    async fn delete_session(&self, token_hash: &str) -> Result<()>;
}

#[async_trait]
pub trait KeyStore: Send + Sync {
    async fn insert_key(&self, key: &ApiKeyRecord) -> Result<()>;
    /// The account's keys that are not deleted, newest first.
    async fn list_keys(&self, account: &AccountId) -> Result<Vec<ApiKeyRecord>>;
    /// A key of this account, unless deleted.
    async fn key_by_id(&self, account: &AccountId, id: &KeyId) -> Result<Option<ApiKeyRecord>>;
    /// Any live key by id, whoever owns it (administration).
    async fn find_key(&self, id: &KeyId) -> Result<Option<ApiKeyRecord>>;
    /// A live (not deleted) key by hash, with its account: the auth cache's miss path.
    async fn key_by_hash(&self, hash: &KeyHash) -> Result<Option<(ApiKeyRecord, Account)>>;
    /// Writes the mutable fields (name, disabled, limits, scope, expiry).
    async fn update_key(&self, key: &ApiKeyRecord) -> Result<()>;
    /// Marks a key deleted; `false` when it was not there.
    async fn delete_key(&self, account: &AccountId, id: &KeyId, now: UnixMillis) -> Result<bool>;
}

#[derive(Debug, Clone)]
pub struct UsagePage {
    pub items: Vec<UsageEvent>,
    pub total: u64,
}

/// How usage totals are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageGroup {
    /// UTC day, as `YYYY-MM-DD`.
    Day,
    Model,
    Key,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageTotal {
    /// The day, model name or key id.
    pub group: String,
    pub requests: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost: Money,
}

#[async_trait]
pub trait UsageStore: Send + Sync {
    /// Writes a batch in one transaction: the events, a ledger debit for each event that cost
    /// something (moving its account's balance), and the keys' last use.
    async fn insert_usage(&self, events: &[UsageEvent]) -> Result<()>;
    /// The account's events, newest first.
    async fn list_usage(&self, account: &AccountId, limit: u32, offset: u64) -> Result<UsagePage>;
    /// Totals of the account's events in `[from, to)`, largest cost first (days: oldest first).
    async fn usage_totals(
        &self,
        account: &AccountId,
        group: UsageGroup,
        from: UnixMillis,
        to: UnixMillis,
    ) -> Result<Vec<UsageTotal>>;
}

#[async_trait]
pub trait PlanStore: Send + Sync {
    async fn list_plans(&self) -> Result<Vec<Plan>>;
    /// Creates or replaces a plan.
    async fn upsert_plan(&self, plan: &Plan, now: UnixMillis) -> Result<()>;
}

/// An account's money as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MoneySnapshot {
    pub balance: Money,
    /// The balance version read together with the balance.
    pub version: i64,
    /// Usage debits since the start of the month asked about.
    pub month_spend: Money,
}

/// An account whose stored balance is not the sum of its ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerMismatch {
    pub account: AccountId,
    pub balance: Money,
    pub ledger_sum: Money,
}

#[async_trait]
pub trait LedgerStore: Send + Sync {
    /// Appends entries in one transaction, each moving its account's balance. If a top-up's
    /// reference was already credited, nothing is written: `Conflict("reference")`.
    async fn append_ledger(
        &self,
        entries: &[NewLedgerEntry],
        now: UnixMillis,
    ) -> Result<Vec<LedgerEntry>>;
    /// The account's entries, newest first, and their count.
    async fn list_ledger(
        &self,
        account: &AccountId,
        limit: u32,
        offset: u64,
    ) -> Result<(Vec<LedgerEntry>, u64)>;
    async fn account_money(
        &self,
        account: &AccountId,
        month_start: UnixMillis,
    ) -> Result<MoneySnapshot>;
    /// What a key spent in the calendar month (UTC) that starts at, or holds, `month_start`.
    async fn key_month_spend(&self, key: &KeyId, month_start: UnixMillis) -> Result<Money>;
    /// Every account whose balance differs from the sum of its ledger (empty when sound).
    async fn ledger_mismatches(&self) -> Result<Vec<LedgerMismatch>>;
    /// `false` when there is no such account.
    async fn set_account_plan(&self, account: &AccountId, plan: &str) -> Result<bool>;
    /// Accounts with their balances, oldest first, and their count.
    async fn list_accounts(&self, limit: u32, offset: u64) -> Result<(Vec<(Account, Money)>, u64)>;
}

#[async_trait]
pub trait ChangeStore: Send + Sync {
    async fn record_change(&self, change: &domain::Change) -> Result<()>;
    /// Changes made at or after `since`, oldest first.
    async fn changes_since(&self, since: UnixMillis) -> Result<Vec<domain::Change>>;
    /// Deletes changes older than `before`.
    async fn prune_changes(&self, before: UnixMillis) -> Result<()>;
}

/// Everything the engine needs from storage.
#[async_trait]
pub trait Store:
    AccountStore + SessionStore + KeyStore + UsageStore + PlanStore + LedgerStore + ChangeStore
{
    /// Checks the backend answers (readiness).
    async fn ping(&self) -> Result<()>;
    /// Closes connections after the last write.
    async fn close(&self);
}
