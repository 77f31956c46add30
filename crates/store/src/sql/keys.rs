//! API keys port on SQL. Deleted keys stay as rows (usage events reference them) with
//! `deleted_at` set, and are invisible to every query here.

use super::accounts::{account_from_prefixed_row, ACCOUNT_COLUMNS};
use super::{conflict_or, get_opt_u32, SqlStore};
use crate::ports::{KeyStore, Result};
use async_trait::async_trait;
use domain::{Account, AccountId, ApiKeyRecord, KeyHash, KeyId, Money, UnixMillis};
use sqlx::any::AnyRow;
use sqlx::Row;

const KEY_COLUMNS: &str = "k.id, k.account_id, k.name, k.prefix, k.hash, k.disabled, \
    k.monthly_limit_nanos, k.allowed_models, k.expires_at, k.rpm_limit, k.tpm_limit, \
    k.concurrency_limit, k.created_at, k.last_used_at";

fn key_from_row(row: &AnyRow) -> Result<ApiKeyRecord> {
    let allowed: Option<String> = row.try_get("allowed_models")?;
    Ok(ApiKeyRecord {
        id: KeyId(row.try_get("id")?),
        account_id: AccountId(row.try_get("account_id")?),
        name: row.try_get("name")?,
        prefix: row.try_get("prefix")?,
        hash: KeyHash(row.try_get("hash")?),
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        monthly_limit: row
            .try_get::<Option<i64>, _>("monthly_limit_nanos")?
            .map(Money::from_nanos),
        allowed_models: allowed.and_then(|s| split_models(&s)),
        expires_at: row.try_get::<Option<i64>, _>("expires_at")?.map(UnixMillis),
        rpm_limit: get_opt_u32(row, "rpm_limit")?,
        tpm_limit: get_opt_u32(row, "tpm_limit")?,
        concurrency_limit: get_opt_u32(row, "concurrency_limit")?,
        created_at: UnixMillis(row.try_get("created_at")?),
        last_used_at: row
            .try_get::<Option<i64>, _>("last_used_at")?
            .map(UnixMillis),
    })
}

/// Model lists are stored comma-separated (configuration refuses commas in model names).
pub(super) fn split_models(s: &str) -> Option<Vec<String>> {
    Some(
        s.split(',')
            .filter(|m| !m.is_empty())
            .map(str::to_owned)
            .collect(),
    )
}

pub(super) fn models_text(models: &Option<Vec<String>>) -> Option<String> {
    models.as_ref().map(|m| m.join(","))
}

#[async_trait]
impl KeyStore for SqlStore {
    async fn insert_key(&self, k: &ApiKeyRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO api_keys (id, account_id, name, prefix, hash, disabled, monthly_limit_nanos,
                allowed_models, expires_at, rpm_limit, tpm_limit, concurrency_limit, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(k.id.as_str())
        .bind(k.account_id.as_str())
        .bind(&k.name)
        .bind(&k.prefix)
        .bind(&k.hash.0)
        .bind(i64::from(k.disabled))
        .bind(k.monthly_limit.map(Money::nanos))
        .bind(models_text(&k.allowed_models))
        .bind(k.expires_at.map(|t| t.0))
        .bind(k.rpm_limit.map(i64::from))
        .bind(k.tpm_limit.map(i64::from))
        .bind(k.concurrency_limit.map(i64::from))
        .bind(k.created_at.0)
        .execute(&self.pool)
        .await
        .map_err(|e| conflict_or(e, "key hash"))?;
        Ok(())
    }

    async fn list_keys(&self, account: &AccountId) -> Result<Vec<ApiKeyRecord>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys k
             WHERE k.account_id = $1 AND k.deleted_at IS NULL ORDER BY k.created_at DESC, k.id DESC"
        );
        let rows = sqlx::query(&sql)
            .bind(account.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(key_from_row).collect()
    }

    async fn key_by_id(&self, account: &AccountId, id: &KeyId) -> Result<Option<ApiKeyRecord>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys k
             WHERE k.id = $1 AND k.account_id = $2 AND k.deleted_at IS NULL"
        );
        let row = sqlx::query(&sql)
            .bind(id.as_str())
            .bind(account.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(key_from_row).transpose()
    }

    async fn find_key(&self, id: &KeyId) -> Result<Option<ApiKeyRecord>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys k WHERE k.id = $1 AND k.deleted_at IS NULL"
        );
        let row = sqlx::query(&sql)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(key_from_row).transpose()
    }

    async fn key_by_hash(&self, hash: &KeyHash) -> Result<Option<(ApiKeyRecord, Account)>> {
        self.key_lookups
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let sql = format!(
            "SELECT {KEY_COLUMNS}, {} FROM api_keys k JOIN accounts a ON a.id = k.account_id
             WHERE k.hash = $1 AND k.deleted_at IS NULL",
            ACCOUNT_COLUMNS
                .split(", ")
                .map(|c| format!("{c} AS acct_{}", &c[2..]))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let Some(row) = sqlx::query(&sql)
            .bind(&hash.0)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let key = key_from_row(&row)?;
        let account = account_from_prefixed_row(&row, "acct_")?;
        Ok(Some((key, account)))
    }

    async fn update_key(&self, k: &ApiKeyRecord) -> Result<()> {
        sqlx::query(
            "UPDATE api_keys SET name = $1, disabled = $2, monthly_limit_nanos = $3,
                allowed_models = $4, expires_at = $5, rpm_limit = $6, tpm_limit = $7,
                concurrency_limit = $8
             WHERE id = $9 AND account_id = $10 AND deleted_at IS NULL",
        )
        .bind(&k.name)
        .bind(i64::from(k.disabled))
        .bind(k.monthly_limit.map(Money::nanos))
        .bind(models_text(&k.allowed_models))
        .bind(k.expires_at.map(|t| t.0))
        .bind(k.rpm_limit.map(i64::from))
        .bind(k.tpm_limit.map(i64::from))
        .bind(k.concurrency_limit.map(i64::from))
        .bind(k.id.as_str())
        .bind(k.account_id.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn delete_key(&self, account: &AccountId, id: &KeyId, now: UnixMillis) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE api_keys SET deleted_at = $1, disabled = 1
             WHERE id = $2 AND account_id = $3 AND deleted_at IS NULL",
        )
        .bind(now.0)
        .bind(id.as_str())
        .bind(account.as_str())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }
}
