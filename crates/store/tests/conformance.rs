//! The storage conformance suite: every port's contract, run against SQLite and Postgres.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use domain::api_key::Pepper;
use domain::{
    Account, AccountId, AccountStatus, ApiKeyRecord, ApiKeySecret, KeyId, Money, Role, UnixMillis,
    UsageEvent, UsageId, UsageStatus,
};
use domain::{LedgerKind, NewLedgerEntry};
use store::{
    AccountStore, ChangeStore, KeyStore, LedgerStore, NewAccount, PlanStore, SessionStore,
    SqlStore, Store, StoreError, UsageGroup, UsageStore,
};
use testkit::db::{Kind, TestDb};

/// Runs `body` on each backend that is available (Postgres is required when CI=true).
macro_rules! on_every_backend {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test]
            async fn sqlite() {
                run(Kind::Sqlite, $body).await;
            }
            #[tokio::test]
            async fn postgres() {
                run(Kind::Postgres, $body).await;
            }
        }
    };
}

async fn run<F, Fut>(kind: Kind, body: F)
where
    F: FnOnce(SqlStore) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let Some(db) = TestDb::of(kind).await else {
        return;
    };
    let store = store::connect(db.backend.clone()).await.expect("connect");
    body(store).await;
    drop(db);
}

fn account(email: &str) -> NewAccount {
    NewAccount {
        account: Account {
            id: AccountId::generate(),
            email: email.to_owned(),
            name: "Test".into(),
            role: Role::User,
            status: AccountStatus::Active,
            plan: "free".into(),
            created_at: UnixMillis(1_700_000_000_000),
        },
        email_lower: email.to_lowercase(),
        password_hash: "$argon2id$fake".into(),
        initial_credit: None,
    }
}

/// A new account granted `amount` dollars at creation.
fn granted(email: &str, amount: &str) -> NewAccount {
    let mut a = account(email);
    a.initial_credit = Some(credit(&a.account.id, LedgerKind::Grant, amount, None));
    a
}

fn key(account: &AccountId, created_at: i64) -> (ApiKeySecret, ApiKeyRecord) {
    let secret = ApiKeySecret::generate();
    let rec = ApiKeyRecord {
        id: KeyId::generate(),
        account_id: account.clone(),
        name: "k".into(),
        prefix: secret.display_prefix(),
        hash: secret.hash(&Pepper::new(b"pepper")),
        disabled: false,
        monthly_limit: Some("12.5".parse().unwrap()),
        allowed_models: Some(vec!["fast".into(), "embed".into()]),
        expires_at: None,
        rpm_limit: Some(20),
        tpm_limit: None,
        concurrency_limit: Some(3),
        created_at: UnixMillis(created_at),
        last_used_at: None,
    };
    (secret, rec)
}

fn event(account: &AccountId, key: &KeyId, at: i64, cost: i64) -> UsageEvent {
    UsageEvent {
        id: UsageId::generate(),
        account_id: account.clone(),
        key_id: key.clone(),
        endpoint: "chat.completions".into(),
        public_model: "fast".into(),
        upstream_model: "gemma3".into(),
        provider: "ollama".into(),
        input_tokens: 10,
        output_tokens: 5,
        cached_tokens: 0,
        cost: Money::from_nanos(cost),
        estimated: false,
        latency_ms: 42,
        status: UsageStatus::Ok,
        http_status: 200,
        error_code: None,
        request_id: "req".into(),
        stream: true,
        created_at: UnixMillis(at),
        attempts: vec![
            domain::Attempt {
                deployment: "a/m1".into(),
                outcome: "http_503".into(),
                latency_ms: 3,
            },
            domain::Attempt {
                deployment: "b/m2".into(),
                outcome: "ok".into(),
                latency_ms: 39,
            },
        ],
        ledger_entry_id: None,
    }
}

on_every_backend!(
    accounts_are_unique_by_case_insensitive_email,
    |s: SqlStore| async move {
        let a = account("Alice@Example.com");
        s.create_account(&a).await.unwrap();
        let dup = account("alice@example.COM");
        assert!(matches!(
            s.create_account(&dup).await,
            Err(StoreError::Conflict("email"))
        ));
        let (found, hash) = s
            .account_by_email("alice@example.com")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found, a.account);
        assert_eq!(hash, "$argon2id$fake");
        assert_eq!(
            s.account_by_id(&a.account.id).await.unwrap(),
            Some(a.account.clone())
        );
        assert_eq!(s.count_accounts().await.unwrap(), 1);
        assert!(s
            .account_by_email("bob@example.com")
            .await
            .unwrap()
            .is_none());
    }
);

on_every_backend!(
    sessions_expire_and_can_be_deleted,
    |s: SqlStore| async move {
        let a = account("s@example.com");
        s.create_account(&a).await.unwrap();
        let id = &a.account.id;
        s.create_session("h1", id, UnixMillis(1000), UnixMillis(2000))
            .await
            .unwrap();
        assert_eq!(
            s.session_account("h1", UnixMillis(1500))
                .await
                .unwrap()
                .unwrap()
                .id,
            *id
        );
        assert!(s
            .session_account("h1", UnixMillis(2000))
            .await
            .unwrap()
            .is_none());
        s.create_session("h2", id, UnixMillis(1000), UnixMillis(9000))
            .await
            .unwrap();
        s.delete_session("h2").await.unwrap();
        assert!(s
            .session_account("h2", UnixMillis(1500))
            .await
            .unwrap()
            .is_none());
    }
);

on_every_backend!(
    keys_round_trip_and_stay_with_their_account,
    |s: SqlStore| async move {
        let a = account("k@example.com");
        let b = account("other@example.com");
        s.create_account(&a).await.unwrap();
        s.create_account(&b).await.unwrap();
        let (secret, mut k1) = key(&a.account.id, 1000);
        let (_, k2) = key(&a.account.id, 2000);
        s.insert_key(&k1).await.unwrap();
        s.insert_key(&k2).await.unwrap();
        let listed = s.list_keys(&a.account.id).await.unwrap();
        assert_eq!(
            listed,
            vec![k2.clone(), k1.clone()],
            "newest first, all fields kept"
        );
        assert!(s.list_keys(&b.account.id).await.unwrap().is_empty());
        assert!(
            s.key_by_id(&b.account.id, &k1.id).await.unwrap().is_none(),
            "not another's key"
        );
        let (by_hash, owner) = s
            .key_by_hash(&secret.hash(&Pepper::new(b"pepper")))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(by_hash, k1);
        assert_eq!(owner, a.account);

        k1.name = "renamed".into();
        k1.disabled = true;
        k1.allowed_models = None;
        k1.monthly_limit = None;
        k1.expires_at = Some(UnixMillis(5000));
        s.update_key(&k1).await.unwrap();
        assert_eq!(
            s.key_by_id(&a.account.id, &k1.id).await.unwrap(),
            Some(k1.clone())
        );

        assert!(!s
            .delete_key(&b.account.id, &k1.id, UnixMillis(6000))
            .await
            .unwrap());
        assert!(s
            .delete_key(&a.account.id, &k1.id, UnixMillis(6000))
            .await
            .unwrap());
        assert!(s
            .key_by_hash(&secret.hash(&Pepper::new(b"pepper")))
            .await
            .unwrap()
            .is_none());
        assert!(s.key_by_id(&a.account.id, &k1.id).await.unwrap().is_none());
        assert_eq!(s.list_keys(&a.account.id).await.unwrap(), vec![k2]);
    }
);

on_every_backend!(
    usage_batches_are_written_and_paginated_newest_first,
    |s: SqlStore| async move {
        let a = account("u@example.com");
        s.create_account(&a).await.unwrap();
        let (_, k) = key(&a.account.id, 1000);
        s.insert_key(&k).await.unwrap();
        let events: Vec<_> = (0..1203)
            .map(|i| event(&a.account.id, &k.id, 10_000 + i, i))
            .collect();
        s.insert_usage(&events).await.unwrap();
        let page = s.list_usage(&a.account.id, 2, 0).await.unwrap();
        assert_eq!(page.total, 1203);
        // The whole (one-account, one-month) batch is paid by one debit.
        let debit = page.items[0].ledger_entry_id.clone();
        assert!(debit.is_some());
        assert!(page.items.iter().all(|e| e.ledger_entry_id == debit));
        let read: Vec<UsageEvent> = page
            .items
            .into_iter()
            .map(|e| UsageEvent {
                ledger_entry_id: None,
                ..e
            })
            .collect();
        assert_eq!(read, vec![events[1202].clone(), events[1201].clone()]);
        let last = s.list_usage(&a.account.id, 10, 1200).await.unwrap();
        assert_eq!(last.items.len(), 3);
        assert_eq!(last.items[2], events[0]);
        let key_after = s.key_by_id(&a.account.id, &k.id).await.unwrap().unwrap();
        assert_eq!(key_after.last_used_at, Some(UnixMillis(10_000 + 1202)));
        s.ping().await.unwrap();
    }
);

fn m(s: &str) -> Money {
    s.parse().unwrap()
}

fn credit(
    account: &AccountId,
    kind: LedgerKind,
    amount: &str,
    reference: Option<&str>,
) -> NewLedgerEntry {
    NewLedgerEntry {
        account_id: account.clone(),
        kind,
        amount: m(amount),
        reason: "test".into(),
        reference: reference.map(str::to_owned),
    }
}

on_every_backend!(plans_are_seeded_and_editable, |s: SqlStore| async move {
    let plans = s.list_plans().await.unwrap();
    let names: Vec<&str> = plans.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, vec!["free", "starter", "pro", "developer", "team"]);
    let free = &plans[0];
    assert_eq!(free.included_credits, m("1"));
    assert_eq!(free.rpm, 20);
    assert_eq!(
        free.allowed_models,
        Some(vec!["fast".to_owned(), "embed".to_owned()])
    );
    assert_eq!(plans[3].allowed_models, None);
    assert_eq!(
        (
            plans[4].monthly_price,
            plans[4].included_credits,
            plans[4].rpm
        ),
        (m("199"), m("275"), 1000)
    );
    let mut edited = free.clone();
    edited.rpm = 25;
    edited.tpm = Some(10_000);
    s.upsert_plan(&edited, UnixMillis(1)).await.unwrap();
    assert_eq!(s.list_plans().await.unwrap()[0], edited);
});

on_every_backend!(
    ledger_moves_balances_and_top_ups_credit_once,
    |s: SqlStore| async move {
        let mut a = granted("l@example.com", "1");
        a.account.created_at = UnixMillis(0);
        s.create_account(&a).await.unwrap();
        let id = a.account.id.clone();
        let written = s
            .append_ledger(
                &[
                    credit(&id, LedgerKind::Topup, "10", Some("pay_1")),
                    credit(&id, LedgerKind::Adjustment, "-0.25", None),
                ],
                UnixMillis(5),
            )
            .await
            .unwrap();
        assert_eq!(written[1].balance_after, m("10.75"));
        let again = s
            .append_ledger(
                &[credit(&id, LedgerKind::Topup, "10", Some("pay_1"))],
                UnixMillis(6),
            )
            .await;
        assert!(
            matches!(again, Err(StoreError::Conflict("reference"))),
            "{again:?}"
        );
        let money = s.account_money(&id, UnixMillis(0)).await.unwrap();
        assert_eq!(money.balance, m("10.75"));
        let (entries, total) = s.list_ledger(&id, 10, 0).await.unwrap();
        assert_eq!(total, 3);
        assert_eq!(entries[0].amount, m("-0.25"));
        assert_eq!(entries[2].kind, LedgerKind::Grant);
        assert!(s.ledger_mismatches().await.unwrap().is_empty());
    }
);

on_every_backend!(
    a_usage_batch_is_debited_once_per_account_and_month,
    |s: SqlStore| async move {
        let mut a = granted("d@example.com", "1");
        a.account.created_at = UnixMillis(0);
        s.create_account(&a).await.unwrap();
        let id = a.account.id.clone();
        let (_, k) = key(&id, 1000);
        s.insert_key(&k).await.unwrap();
        // A second account's events in the same batch, interleaved.
        let b = granted("d2@example.com", "2");
        s.create_account(&b).await.unwrap();
        let (_, kb) = key(&b.account.id, 1000);
        s.insert_key(&kb).await.unwrap();
        let mut free = event(&id, &k.id, 20_000, 0);
        free.status = UsageStatus::Error;
        // 1970-02-01T00:00:00.005Z: a month of its own.
        let february = 31 * 86_400_000 + 5;
        let events = vec![
            event(&id, &k.id, 10_000, 1_500),
            event(&b.account.id, &kb.id, 10_001, 7),
            event(&id, &k.id, february, 250),
            free,
            event(&b.account.id, &kb.id, 10_002, 3),
            event(&id, &k.id, 10_003, 100),
        ];
        s.insert_usage(&events).await.unwrap();

        // B: one debit for both its events, dated at the last.
        let (b_entries, _) = s.list_ledger(&b.account.id, 10, 0).await.unwrap();
        let b_debits: Vec<(i64, i64, &str, Option<&str>, i64)> = b_entries
            .iter()
            .filter(|e| e.kind == LedgerKind::Usage)
            .map(|e| {
                (
                    e.amount.nanos(),
                    e.balance_after.nanos(),
                    e.reason.as_str(),
                    e.reference.as_deref(),
                    e.created_at.0,
                )
            })
            .collect();
        assert_eq!(
            b_debits,
            [(-10, 2_000_000_000 - 10, "2 requests", None, 10_002)]
        );

        // A: January's two paying events in one debit; February's alone, read as a
        // per-request entry (endpoint and model, the event as reference).
        let (entries, total) = s.list_ledger(&id, 10, 0).await.unwrap();
        assert_eq!(
            total, 3,
            "the grant and a debit per month; the free event moves no money"
        );
        let newest_first: Vec<(i64, i64, &str, Option<&str>)> = entries
            .iter()
            .map(|e| {
                (
                    e.amount.nanos(),
                    e.balance_after.nanos(),
                    e.reason.as_str(),
                    e.reference.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            newest_first,
            [
                (
                    -250,
                    1_000_000_000 - 1_850,
                    "chat.completions fast",
                    Some(events[2].id.as_str())
                ),
                (-1_600, 1_000_000_000 - 1_600, "2 requests", None),
                (1_000_000_000, 1_000_000_000, "test", None),
            ]
        );
        assert!(s.ledger_mismatches().await.unwrap().is_empty());

        // Every paying event names its debit, and each debit is the sum of its events.
        let stored = s.list_usage(&id, 10, 0).await.unwrap().items;
        for debit in entries.iter().filter(|e| e.kind == LedgerKind::Usage) {
            let paid: Money = stored
                .iter()
                .filter(|e| e.ledger_entry_id.as_deref() == Some(debit.id.as_str()))
                .map(|e| e.cost)
                .sum();
            assert_eq!(paid, -debit.amount);
        }
        assert!(stored
            .iter()
            .all(|e| e.ledger_entry_id.is_some() == (e.cost > Money::ZERO)));

        let money = s.account_money(&id, UnixMillis(0)).await.unwrap();
        assert_eq!(money.balance, Money::from_nanos(1_000_000_000 - 1_850));
        assert_eq!(money.month_spend, Money::from_nanos(1_850));
        assert_eq!(
            s.account_money(&id, UnixMillis(february).month_start())
                .await
                .unwrap()
                .month_spend,
            Money::from_nanos(250)
        );
        // The key's spend per month: January's two paying events, February's one, and
        // nothing in March; any instant in a month names that month.
        for (at, spent) in [
            (0, 1_600),
            (10_000, 1_600),
            (february, 250),
            (UnixMillis(february).month_start().0, 250),
            (2 * 31 * 86_400_000, 0),
        ] {
            assert_eq!(
                s.key_month_spend(&k.id, UnixMillis(at)).await.unwrap(),
                Money::from_nanos(spent),
                "at {at}"
            );
        }
        assert_eq!(
            s.key_month_spend(&kb.id, UnixMillis(0)).await.unwrap(),
            Money::from_nanos(10)
        );

        let by_day = s
            .usage_totals(&id, UsageGroup::Day, UnixMillis(0), UnixMillis(i64::MAX))
            .await
            .unwrap();
        let days: Vec<(&str, u64, Money)> = by_day
            .iter()
            .map(|t| (t.group.as_str(), t.requests, t.cost))
            .collect();
        assert_eq!(
            days,
            vec![
                ("1970-01-01", 3, Money::from_nanos(1_600)),
                ("1970-02-01", 1, Money::from_nanos(250))
            ]
        );
        let by_model = s
            .usage_totals(&id, UsageGroup::Model, UnixMillis(0), UnixMillis(i64::MAX))
            .await
            .unwrap();
        assert_eq!(by_model.len(), 1);
        assert_eq!(
            (
                by_model[0].group.as_str(),
                by_model[0].input_tokens,
                by_model[0].output_tokens
            ),
            ("fast", 40, 20)
        );
        let by_key = s
            .usage_totals(
                &id,
                UsageGroup::Key,
                UnixMillis(10_001),
                UnixMillis(i64::MAX),
            )
            .await
            .unwrap();
        assert_eq!(
            (by_key[0].group.as_str(), by_key[0].requests),
            (k.id.as_str(), 3)
        );

        // A later batch adds to the month's row.
        s.insert_usage(&[event(&id, &k.id, february + 1, 50)])
            .await
            .unwrap();
        assert_eq!(
            s.key_month_spend(&k.id, UnixMillis(february))
                .await
                .unwrap(),
            Money::from_nanos(300)
        );
        assert_eq!(
            s.key_month_spend(&k.id, UnixMillis(0)).await.unwrap(),
            Money::from_nanos(1_600)
        );
    }
);

on_every_backend!(
    accounts_list_with_balances_and_plans_change,
    |s: SqlStore| async move {
        let a = account("p@example.com");
        s.create_account(&a).await.unwrap();
        assert!(s.set_account_plan(&a.account.id, "pro").await.unwrap());
        assert!(!s
            .set_account_plan(&AccountId::generate(), "pro")
            .await
            .unwrap());
        let (items, total) = s.list_accounts(10, 0).await.unwrap();
        assert_eq!(total, 1);
        assert_eq!(items[0].0.plan, "pro");
        assert_eq!(items[0].1, Money::ZERO);
    }
);

on_every_backend!(
    the_change_feed_round_trips_and_balance_versions_count_entries,
    |s: SqlStore| async move {
        use domain::{Change, ChangeKind, KeyHash};
        let a = granted("feed@example.com", "1");
        s.create_account(&a).await.unwrap();
        let id = a.account.id.clone();
        assert_eq!(
            s.account_money(&id, UnixMillis(0)).await.unwrap().version,
            1
        );
        let written = s
            .append_ledger(&[credit(&id, LedgerKind::Grant, "2", None)], UnixMillis(10))
            .await
            .unwrap();
        assert_eq!(written[0].balance_version, 2);
        assert_eq!(
            s.account_money(&id, UnixMillis(0)).await.unwrap().version,
            2
        );

        let changes = vec![
            Change {
                id: "c1".into(),
                origin: "n1".into(),
                kind: ChangeKind::Key(KeyHash("h".into())),
                created_at: UnixMillis(100),
            },
            Change {
                id: "c2".into(),
                origin: "n1".into(),
                kind: ChangeKind::Account(id.clone()),
                created_at: UnixMillis(200),
            },
            Change {
                id: "c3".into(),
                origin: "n2".into(),
                kind: ChangeKind::Plans,
                created_at: UnixMillis(300),
            },
            Change {
                id: "c4".into(),
                origin: "n2".into(),
                kind: ChangeKind::Credit {
                    account: id.clone(),
                    amount: m("-2.5"),
                    version: 7,
                },
                created_at: UnixMillis(400),
            },
        ];
        for c in &changes {
            s.record_change(c).await.unwrap();
        }
        assert_eq!(s.changes_since(UnixMillis(0)).await.unwrap(), changes);
        assert_eq!(
            s.changes_since(UnixMillis(300)).await.unwrap(),
            changes[2..].to_vec()
        );
        s.prune_changes(UnixMillis(250)).await.unwrap();
        assert_eq!(s.changes_since(UnixMillis(0)).await.unwrap().len(), 2);
    }
);

on_every_backend!(
    a_usage_batch_that_fails_writes_nothing_and_the_next_one_is_written,
    |s: SqlStore| async move {
        let a = granted("batch@example.com", "1");
        s.create_account(&a).await.unwrap();
        let id = a.account.id.clone();
        let (_, k) = key(&id, 1000);
        s.insert_key(&k).await.unwrap();
        // The same event twice: its second row breaks the primary key after the first row
        // (and, on a larger batch, earlier statements) went in.
        let first = event(&id, &k.id, 10_000, 1_000);
        let mut batch: Vec<UsageEvent> = (0..150)
            .map(|i| event(&id, &k.id, 10_001 + i, 10))
            .collect();
        batch.push(first.clone());
        batch.push(first);
        assert!(s.insert_usage(&batch).await.is_err());
        assert_eq!(s.list_usage(&id, 10, 0).await.unwrap().total, 0);
        let money = s.account_money(&id, UnixMillis(0)).await.unwrap();
        assert_eq!(money.balance, m("1"), "no debit of the failed batch stays");
        assert_eq!(s.list_ledger(&id, 10, 0).await.unwrap().1, 1);

        // The writer's connection is usable again, in a transaction of its own.
        batch.pop();
        s.insert_usage(&batch).await.unwrap();
        assert_eq!(s.list_usage(&id, 10, 0).await.unwrap().total, 151);
        let money = s.account_money(&id, UnixMillis(0)).await.unwrap();
        assert_eq!(
            money.balance,
            Money::from_nanos(1_000_000_000 - 1_000 - 1_500)
        );
        assert!(s.ledger_mismatches().await.unwrap().is_empty());
    }
);

/// A database from before `key_spend` (migration 6) gets each key's month spend from the
/// usage events already in it when it is migrated.
async fn key_spend_is_backfilled_from_earlier_events(kind: Kind) {
    let Some(db) = TestDb::of(kind).await else {
        return;
    };
    let s = store::connect(db.backend.clone()).await.unwrap();
    let a = granted("backfill@example.com", "1");
    s.create_account(&a).await.unwrap();
    let id = a.account.id.clone();
    let (_, k) = key(&id, 1000);
    s.insert_key(&k).await.unwrap();
    let february = 31 * 86_400_000 + 5;
    s.insert_usage(&[
        event(&id, &k.id, 10_000, 1_500),
        event(&id, &k.id, february, 250),
        event(&id, &k.id, 10_003, 100),
        event(&id, &k.id, 10_004, 0),
    ])
    .await
    .unwrap();
    s.close().await;
    // Back to version 5: no spend table, the index on the events' key again.
    let pool = sqlx::AnyPool::connect(&db.url).await.unwrap();
    for sql in [
        "DROP TABLE key_spend",
        "DELETE FROM switchyard_migrations WHERE version = 6",
        "CREATE INDEX usage_events_key_time ON usage_events(key_id, created_at)",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    pool.close().await;

    let s = store::connect(db.backend.clone()).await.unwrap();
    for (at, spent) in [(0, 1_600), (february, 250), (2 * february, 0)] {
        assert_eq!(
            s.key_month_spend(&k.id, UnixMillis(at)).await.unwrap(),
            Money::from_nanos(spent),
            "{kind:?} at {at}"
        );
    }
    s.close().await;
}

#[tokio::test]
async fn key_spend_is_backfilled_on_sqlite() {
    key_spend_is_backfilled_from_earlier_events(Kind::Sqlite).await;
}

#[tokio::test]
async fn key_spend_is_backfilled_on_postgres() {
    key_spend_is_backfilled_from_earlier_events(Kind::Postgres).await;
}

/// An account's usage listing walks its index backwards (the index is ascending, so that new
/// events are appended to an account's range): no sort, whatever the number of events.
#[tokio::test]
async fn the_usage_listing_reads_its_index_without_sorting_on_sqlite() {
    let Some(db) = TestDb::of(Kind::Sqlite).await else {
        return;
    };
    store::connect(db.backend.clone())
        .await
        .unwrap()
        .close()
        .await;
    let pool = sqlx::AnyPool::connect(&db.url).await.unwrap();
    let plan: Vec<String> = sqlx::query(
        "EXPLAIN QUERY PLAN SELECT * FROM usage_events WHERE account_id = 'a' \
         ORDER BY created_at DESC, id DESC LIMIT 50 OFFSET 0",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .iter()
    .map(|row| sqlx::Row::get::<String, _>(row, "detail"))
    .collect();
    pool.close().await;
    let plan = plan.join("; ");
    assert!(
        plan.contains("USING INDEX usage_events_account_time"),
        "{plan}"
    );
    assert!(!plan.contains("TEMP B-TREE"), "{plan}");
}
