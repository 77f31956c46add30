//! The usage writer on its own: settled requests per second into SQLite or Postgres (event
//! row, ledger debit and balance update each), and how deep its queue gets at a steady rate.

use anyhow::{Context, Result};
use domain::{
    Account, AccountId, AccountStatus, ApiKeyRecord, ApiKeySecret, KeyId, Money, Role, UnixMillis,
    UsageEvent, UsageId, UsageStatus,
};
use engine::tasks::Tasks;
use engine::usage::{Backlog, UsageSink};
use std::sync::Arc;
use std::time::Duration;
use store::{AccountStore, KeyStore, NewAccount, Store};
use testkit::db::{Kind, TestDb};
use tokio::time::Instant;

pub struct WriterFigures {
    /// Events written per second, fed as fast as the writer takes them.
    pub capacity_per_sec: f64,
    pub events: usize,
    /// The deepest the queue got while fed at `steady_rate` per second.
    pub steady_rate: u32,
    pub steady_max_queued: usize,
}

fn event(account: &AccountId, key: &KeyId) -> UsageEvent {
    UsageEvent {
        id: UsageId::generate(),
        account_id: account.clone(),
        key_id: key.clone(),
        endpoint: "chat.completions".into(),
        public_model: "bench".into(),
        upstream_model: "bench-model".into(),
        provider: "bench".into(),
        input_tokens: 12,
        output_tokens: 7,
        cached_tokens: 0,
        cost: Money::from_nanos(9_000),
        estimated: false,
        latency_ms: 1,
        status: UsageStatus::Ok,
        http_status: 200,
        error_code: None,
        request_id: "bench".into(),
        stream: false,
        created_at: UnixMillis::now(),
        attempts: vec![domain::Attempt {
            deployment: "bench/bench-model".into(),
            outcome: "ok".into(),
            latency_ms: 1,
        }],
        ledger_entry_id: None,
    }
}

/// `None` when the backend is not reachable.
pub async fn measure(kind: Kind, events: usize, steady_rate: u32) -> Result<Option<WriterFigures>> {
    let Some(db) = TestDb::of(kind).await else {
        return Ok(None);
    };
    let store = Arc::new(
        store::connect(db.backend.clone())
            .await
            .context("connecting")?,
    );
    let account = AccountId::generate();
    store
        .create_account(&NewAccount {
            account: Account {
                id: account.clone(),
                email: "bench@example.com".into(),
                name: "Bench".into(),
                role: Role::User,
                status: AccountStatus::Active,
                plan: "free".into(),
                created_at: UnixMillis::now(),
            },
            email_lower: "bench@example.com".into(),
            password_hash: "-".into(),
            initial_credit: None,
        })
        .await?;
    let secret = ApiKeySecret::generate();
    let key = ApiKeyRecord {
        id: KeyId::generate(),
        account_id: account.clone(),
        name: "bench".into(),
        prefix: secret.display_prefix(),
        hash: secret.hash(&domain::api_key::Pepper::new(b"bench")),
        disabled: false,
        monthly_limit: None,
        allowed_models: None,
        expires_at: None,
        rpm_limit: None,
        tpm_limit: None,
        concurrency_limit: None,
        created_at: UnixMillis::now(),
        last_used_at: None,
    };
    store.insert_key(&key).await?;
    let store: Arc<dyn Store> = store;
    let batch = engine::EngineSettings::default().usage_batch_size;

    // Capacity: as fast as the writer takes them (the feeder backs off when the queue is
    // half full, so none wait in overflow tasks).
    let tasks = Tasks::new();
    let sink = UsageSink::start(store.clone(), &tasks, batch, Backlog::default());
    let started = Instant::now();
    for i in 0..events {
        if i % 1_000 == 0 {
            while sink.queued() > 30_000 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        sink.record(event(&account, &key.id));
    }
    sink.close();
    tasks.drain().await;
    let capacity_per_sec = events as f64 / started.elapsed().as_secs_f64();

    // A steady rate for three seconds: the queue should stay near one batch.
    let tasks = Tasks::new();
    let sink = UsageSink::start(store.clone(), &tasks, batch, Backlog::default());
    let per_ms = (steady_rate / 1_000).max(1) as usize;
    let mut max_queued = 0;
    let t0 = Instant::now();
    for ms in 0..3_000u64 {
        tokio::time::sleep_until(t0 + Duration::from_millis(ms)).await;
        for _ in 0..per_ms {
            sink.record(event(&account, &key.id));
        }
        max_queued = max_queued.max(sink.queued());
    }
    sink.close();
    tasks.drain().await;
    drop(db);
    Ok(Some(WriterFigures {
        capacity_per_sec,
        events,
        steady_rate,
        steady_max_queued: max_queued,
    }))
}
