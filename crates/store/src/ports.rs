//! The storage ports. Every backend implements all of them and passes one conformance suite.

use async_trait::async_trait;
use domain::{Account, AccountId, ApiKeyRecord, KeyHash, KeyId, UnixMillis, UsageEvent};

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
}

#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Fails with `Conflict("email")` when the normalized email is taken.
    async fn create_account(&self, new: &NewAccount) -> Result<()>;
    /// The account and its password hash.
    async fn account_by_email(&self, email_lower: &str) -> Result<Option<(Account, String)>>;
    async fn account_by_id(&self, id: &AccountId) -> Result<Option<Account>>;
    async fn count_accounts(&self) -> Result<u64>;
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

#[async_trait]
pub trait UsageStore: Send + Sync {
    /// Writes a batch in one transaction (and marks the keys used).
    async fn insert_usage(&self, events: &[UsageEvent]) -> Result<()>;
    /// The account's events, newest first.
    async fn list_usage(&self, account: &AccountId, limit: u32, offset: u64) -> Result<UsagePage>;
}

/// Everything the engine needs from storage.
#[async_trait]
pub trait Store: AccountStore + SessionStore + KeyStore + UsageStore {
    /// Checks the backend answers (readiness).
    async fn ping(&self) -> Result<()>;
    /// Closes connections after the last write.
    async fn close(&self);
}
