//! Sessions port on SQL. Only the SHA-256 of a session token is stored.

use super::accounts::{account_from_row, ACCOUNT_COLUMNS};
use super::SqlStore;
use crate::ports::{Result, SessionStore};
use async_trait::async_trait;
use domain::{Account, AccountId, UnixMillis};

#[async_trait]
impl SessionStore for SqlStore {
    async fn create_session(
        &self,
        token_hash: &str,
        account: &AccountId,
        now: UnixMillis,
        expires_at: UnixMillis,
    ) -> Result<()> {
        // Expired sessions of this account are swept as new ones are made.
        sqlx::query("DELETE FROM sessions WHERE account_id = $1 AND expires_at <= $2")
            .bind(account.as_str())
            .bind(now.0)
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO sessions (token_hash, account_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(account.as_str())
        .bind(now.0)
        .bind(expires_at.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn session_account(&self, token_hash: &str, now: UnixMillis) -> Result<Option<Account>> {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM sessions s JOIN accounts a ON a.id = s.account_id
             WHERE s.token_hash = $1 AND s.expires_at > $2"
        );
        let row = sqlx::query(&sql)
            .bind(token_hash)
            .bind(now.0)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(account_from_row).transpose()
    }

    async fn delete_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
