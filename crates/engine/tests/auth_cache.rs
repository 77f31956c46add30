//! The `/v1` hot path does not query the database per request: keys come from the cache,
//! which every change invalidates at once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use async_trait::async_trait;
use domain::{
    Account, AccountId, ApiKeyRecord, Catalog, ErrorCode, KeyHash, KeyId, Role, UnixMillis,
    UsageEvent,
};
use engine::accounts::SignUp;
use engine::keys::{KeyChange, NewKey};
use engine::{Engine, EngineSettings};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use store::{
    AccountStore, KeyStore, NewAccount, SessionStore, SqlStore, Store, UsagePage, UsageStore,
};

/// A store that counts key lookups by hash and delegates everything to SQLite.
struct Counting {
    inner: SqlStore,
    key_lookups: Arc<AtomicUsize>,
}

type R<T> = Result<T, store::StoreError>;

#[async_trait]
impl AccountStore for Counting {
    async fn create_account(&self, new: &NewAccount) -> R<()> {
        self.inner.create_account(new).await
    }
    async fn account_by_email(&self, e: &str) -> R<Option<(Account, String)>> {
        self.inner.account_by_email(e).await
    }
    async fn account_by_id(&self, id: &AccountId) -> R<Option<Account>> {
        self.inner.account_by_id(id).await
    }
    async fn count_accounts(&self) -> R<u64> {
        self.inner.count_accounts().await
    }
}

#[async_trait]
impl SessionStore for Counting {
    async fn create_session(
        &self,
        h: &str,
        a: &AccountId,
        now: UnixMillis,
        exp: UnixMillis,
    ) -> R<()> {
        self.inner.create_session(h, a, now, exp).await
    }
    async fn session_account(&self, h: &str, now: UnixMillis) -> R<Option<Account>> {
        self.inner.session_account(h, now).await
    }
    async fn delete_session(&self, h: &str) -> R<()> {
        self.inner.delete_session(h).await
    }
}

#[async_trait]
impl KeyStore for Counting {
    async fn insert_key(&self, k: &ApiKeyRecord) -> R<()> {
        self.inner.insert_key(k).await
    }
    async fn list_keys(&self, a: &AccountId) -> R<Vec<ApiKeyRecord>> {
        self.inner.list_keys(a).await
    }
    async fn key_by_id(&self, a: &AccountId, id: &KeyId) -> R<Option<ApiKeyRecord>> {
        self.inner.key_by_id(a, id).await
    }
    async fn key_by_hash(&self, h: &KeyHash) -> R<Option<(ApiKeyRecord, Account)>> {
        self.key_lookups.fetch_add(1, Ordering::SeqCst);
        self.inner.key_by_hash(h).await
    }
    async fn update_key(&self, k: &ApiKeyRecord) -> R<()> {
        self.inner.update_key(k).await
    }
    async fn delete_key(&self, a: &AccountId, id: &KeyId, now: UnixMillis) -> R<bool> {
        self.inner.delete_key(a, id, now).await
    }
}

#[async_trait]
impl UsageStore for Counting {
    async fn insert_usage(&self, e: &[UsageEvent]) -> R<()> {
        self.inner.insert_usage(e).await
    }
    async fn list_usage(&self, a: &AccountId, l: u32, o: u64) -> R<UsagePage> {
        self.inner.list_usage(a, l, o).await
    }
}

#[async_trait]
impl Store for Counting {
    async fn ping(&self) -> R<()> {
        self.inner.ping().await
    }
    async fn close(&self) {
        self.inner.close().await;
    }
}

#[tokio::test]
async fn repeated_requests_hit_the_cache_and_changes_invalidate_it() {
    let db = testkit::db::TestDb::sqlite();
    let inner = store::connect(db.backend.clone()).await.unwrap();
    let key_lookups = Arc::new(AtomicUsize::new(0));
    let counting = Counting {
        inner,
        key_lookups: key_lookups.clone(),
    };
    let settings = EngineSettings {
        pepper: b"pepper".to_vec(),
        ..Default::default()
    };
    let engine = Engine::new(
        Arc::new(counting),
        Catalog::default(),
        HashMap::new(),
        settings,
    );
    let account = engine
        .sign_up(SignUp {
            email: "c@example.com".into(),
            password: "long enough pw".into(),
            name: String::new(),
            role: Role::User,
        })
        .await
        .unwrap();
    let (record, secret) = engine
        .create_key(
            &account.id,
            NewKey {
                name: "k".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();

    for _ in 0..1000 {
        engine.authenticate(Some(secret.expose())).await.unwrap();
    }
    assert_eq!(
        key_lookups.load(Ordering::SeqCst),
        1,
        "one database lookup for 1000 requests"
    );

    let change = KeyChange {
        disabled: Some(true),
        ..Default::default()
    };
    engine
        .update_key(&account.id, &record.id, change)
        .await
        .unwrap();
    let err = engine
        .authenticate(Some(secret.expose()))
        .await
        .unwrap_err();
    assert_eq!(
        err.code,
        ErrorCode::InvalidApiKey,
        "the change is seen at once"
    );
    assert_eq!(
        key_lookups.load(Ordering::SeqCst),
        2,
        "after invalidation, one reload"
    );

    // Malformed and unknown keys: the checksum stops malformed ones before any lookup, and a
    // forged well-formed one is looked up once, then remembered as unknown.
    for _ in 0..100 {
        assert!(engine.authenticate(Some("sk-sy-not-a-key")).await.is_err());
    }
    assert_eq!(key_lookups.load(Ordering::SeqCst), 2);
    let forged = domain::ApiKeySecret::generate();
    for _ in 0..100 {
        assert!(engine.authenticate(Some(forged.expose())).await.is_err());
    }
    assert_eq!(key_lookups.load(Ordering::SeqCst), 3);
    engine.shutdown().await;
}
