//! Administration: accounts, plans and per-key limits. Each change is written, then the
//! in-memory state that depends on it is invalidated, so it applies to the next request.

use crate::{internal, Engine};
use domain::{Account, AccountId, AccountStatus, ApiError, ApiKeyRecord, ErrorCode, KeyId, Money};

/// Per-key limit overrides; `None` leaves a field alone, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct KeyLimits {
    pub rpm: Option<Option<u32>>,
    pub tpm: Option<Option<u32>>,
    pub concurrency: Option<Option<u32>>,
}

impl Engine {
    pub async fn account(&self, id: &AccountId) -> Result<Account, ApiError> {
        self.store
            .account_by_id(id)
            .await
            .map_err(|e| internal("reading an account", e))?
            .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such account"))
    }

    pub async fn account_by_email(&self, email: &str) -> Result<Account, ApiError> {
        let normalized = domain::Email::parse(email)
            .map(|e| e.normalized())
            .unwrap_or_default();
        self.store
            .account_by_email(&normalized)
            .await
            .map_err(|e| internal("reading an account", e))?
            .map(|(a, _)| a)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::NotFound,
                    format!("no account with email {email}"),
                )
            })
    }

    pub async fn list_accounts(
        &self,
        limit: u32,
        offset: u64,
    ) -> Result<(Vec<(Account, Money)>, u64), ApiError> {
        self.store
            .list_accounts(limit, offset)
            .await
            .map_err(|e| internal("listing accounts", e))
    }

    /// Moves an account to another plan; its keys see the new plan on their next request.
    pub async fn set_account_plan(&self, id: &AccountId, plan: &str) -> Result<Account, ApiError> {
        self.plans.get(plan).ok_or_else(|| {
            ApiError::new(ErrorCode::InvalidBody, format!("no plan named `{plan}`"))
        })?;
        let found = self
            .store
            .set_account_plan(id, plan)
            .await
            .map_err(|e| internal("changing a plan", e))?;
        if !found {
            return Err(ApiError::new(ErrorCode::NotFound, "no such account"));
        }
        self.keys.invalidate_account(id);
        self.publish(domain::ChangeKind::Account(id.clone())).await;
        self.account(id).await
    }

    /// Disables or re-enables an account; a disabled account's keys stop at once.
    pub async fn set_account_status(
        &self,
        id: &AccountId,
        status: AccountStatus,
    ) -> Result<Account, ApiError> {
        let found = self
            .store
            .set_account_status(id, status)
            .await
            .map_err(|e| internal("changing an account's status", e))?;
        if !found {
            return Err(ApiError::new(ErrorCode::NotFound, "no such account"));
        }
        self.keys.invalidate_account(id);
        self.publish(domain::ChangeKind::Account(id.clone())).await;
        self.account(id).await
    }

    /// Overrides a key's RPM, TPM or concurrency, above or below its plan's.
    pub async fn set_key_limits(
        &self,
        id: &KeyId,
        limits: KeyLimits,
    ) -> Result<ApiKeyRecord, ApiError> {
        let mut key = self
            .store
            .find_key(id)
            .await
            .map_err(|e| internal("reading a key", e))?
            .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such key"))?;
        for (name, v) in [
            ("rpm_limit", limits.rpm),
            ("tpm_limit", limits.tpm),
            ("concurrency_limit", limits.concurrency),
        ] {
            if v == Some(Some(0)) {
                return Err(ApiError::new(
                    ErrorCode::InvalidBody,
                    format!("`{name}` must be at least 1 (or null to use the plan's)"),
                ));
            }
        }
        if let Some(v) = limits.rpm {
            key.rpm_limit = v;
        }
        if let Some(v) = limits.tpm {
            key.tpm_limit = v;
        }
        if let Some(v) = limits.concurrency {
            key.concurrency_limit = v;
        }
        self.save_key(&key).await?;
        Ok(key)
    }
}
