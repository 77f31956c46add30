//! Accounts port on SQL.

use super::{conflict_or, SqlStore};
use crate::ports::{AccountStore, NewAccount, Result, StoreError};
use async_trait::async_trait;
use domain::{Account, AccountId, AccountStatus, Role, UnixMillis};
use sqlx::any::AnyRow;
use sqlx::Row;

pub(super) const ACCOUNT_COLUMNS: &str =
    "a.id, a.email, a.name, a.role, a.status, a.plan, a.created_at";

pub(super) fn account_from_row(row: &AnyRow) -> Result<Account> {
    account_from_prefixed_row(row, "")
}

/// Reads account columns named `{prefix}id`, `{prefix}email`, … (joins alias them).
pub(super) fn account_from_prefixed_row(row: &AnyRow, prefix: &str) -> Result<Account> {
    let col = |name: &str| format!("{prefix}{name}");
    let role: String = row.try_get(col("role").as_str())?;
    let status: String = row.try_get(col("status").as_str())?;
    Ok(Account {
        id: AccountId(row.try_get(col("id").as_str())?),
        email: row.try_get(col("email").as_str())?,
        name: row.try_get(col("name").as_str())?,
        role: Role::parse(&role).ok_or_else(|| StoreError::Backend(format!("bad role {role}")))?,
        status: AccountStatus::parse(&status)
            .ok_or_else(|| StoreError::Backend(format!("bad status {status}")))?,
        plan: row.try_get(col("plan").as_str())?,
        created_at: UnixMillis(row.try_get(col("created_at").as_str())?),
    })
}

#[async_trait]
impl AccountStore for SqlStore {
    async fn create_account(&self, new: &NewAccount) -> Result<()> {
        let a = &new.account;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO accounts (id, email, email_lower, name, password_hash, role, status, plan, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(a.id.as_str())
        .bind(&a.email)
        .bind(&new.email_lower)
        .bind(&a.name)
        .bind(&new.password_hash)
        .bind(a.role.as_str())
        .bind(a.status.as_str())
        .bind(&a.plan)
        .bind(a.created_at.0)
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_or(e, "email"))?;
        if let Some(credit) = &new.initial_credit {
            super::ledger::append_in(&mut tx, credit, super::ledger::new_entry_id(), a.created_at)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn account_by_email(&self, email_lower: &str) -> Result<Option<(Account, String)>> {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS}, a.password_hash FROM accounts a WHERE a.email_lower = $1"
        );
        let row = sqlx::query(&sql)
            .bind(email_lower)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((account_from_row(&r)?, r.try_get("password_hash")?)))
            .transpose()
    }

    async fn account_by_id(&self, id: &AccountId) -> Result<Option<Account>> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.id = $1");
        let row = sqlx::query(&sql)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(account_from_row).transpose()
    }

    async fn count_accounts(&self) -> Result<u64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM accounts")
            .fetch_one(&self.pool)
            .await?;
        super::get_u64(&row, "n")
    }

    async fn set_account_status(&self, id: &AccountId, status: AccountStatus) -> Result<bool> {
        let done = sqlx::query("UPDATE accounts SET status = $1 WHERE id = $2")
            .bind(status.as_str())
            .bind(id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
