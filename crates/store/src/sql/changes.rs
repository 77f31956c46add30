//! The change feed on SQL.

use super::SqlStore;
use crate::ports::{ChangeStore, Result, StoreError};
use async_trait::async_trait;
use domain::{AccountId, Change, ChangeKind, KeyHash, Money, UnixMillis};
use sqlx::Row;

#[async_trait]
impl ChangeStore for SqlStore {
    async fn record_change(&self, c: &Change) -> Result<()> {
        let (kind, account, key, amount, version) = match &c.kind {
            ChangeKind::Key(h) => ("key", None, Some(h.0.as_str()), None, None),
            ChangeKind::Account(a) => ("account", Some(a.as_str()), None, None, None),
            ChangeKind::Plans => ("plans", None, None, None, None),
            ChangeKind::Credit {
                account,
                amount,
                version,
            } => (
                "credit",
                Some(account.as_str()),
                None,
                Some(amount.nanos()),
                Some(*version),
            ),
        };
        sqlx::query(
            "INSERT INTO changes (id, origin, kind, account_id, key_hash, amount_nanos, version, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&c.id)
        .bind(&c.origin)
        .bind(kind)
        .bind(account)
        .bind(key)
        .bind(amount)
        .bind(version)
        .bind(c.created_at.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn changes_since(&self, since: UnixMillis) -> Result<Vec<Change>> {
        let rows = sqlx::query(
            "SELECT id, origin, kind, account_id, key_hash, amount_nanos, version, created_at
             FROM changes WHERE created_at >= $1 ORDER BY created_at, id",
        )
        .bind(since.0)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let kind: String = r.try_get("kind")?;
            let account = || -> Result<AccountId> {
                let a: Option<String> = r.try_get("account_id")?;
                a.map(AccountId)
                    .ok_or_else(|| StoreError::Backend("change without account".into()))
            };
            let kind = match kind.as_str() {
                "key" => {
                    let h: Option<String> = r.try_get("key_hash")?;
                    ChangeKind::Key(KeyHash(h.unwrap_or_default()))
                }
                "account" => ChangeKind::Account(account()?),
                "plans" => ChangeKind::Plans,
                "credit" => ChangeKind::Credit {
                    account: account()?,
                    amount: Money::from_nanos(
                        r.try_get::<Option<i64>, _>("amount_nanos")?.unwrap_or(0),
                    ),
                    version: r.try_get::<Option<i64>, _>("version")?.unwrap_or(0),
                },
                other => return Err(StoreError::Backend(format!("unknown change kind {other}"))),
            };
            out.push(Change {
                id: r.try_get("id")?,
                origin: r.try_get("origin")?,
                kind,
                created_at: UnixMillis(r.try_get("created_at")?),
            });
        }
        Ok(out)
    }

    async fn prune_changes(&self, before: UnixMillis) -> Result<()> {
        sqlx::query("DELETE FROM changes WHERE created_at < $1")
            .bind(before.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
