//! Key management for their owner: mint (the secret is returned once), list, change, delete.
//! Every change invalidates the auth cache at once.

use crate::{internal, Engine};
use domain::{
    AccountId, ApiError, ApiKeyRecord, ApiKeySecret, ErrorCode, KeyId, Money, UnixMillis,
};

/// Longest key name accepted.
const MAX_NAME_CHARS: usize = 100;

/// What a new key may be given.
#[derive(Debug, Clone, Default)]
pub struct NewKey {
    pub name: String,
    pub monthly_limit: Option<Money>,
    pub allowed_models: Option<Vec<String>>,
    pub expires_at: Option<UnixMillis>,
}

/// A change to a key; `None` leaves a field alone, `Some(None)` clears an optional one.
#[derive(Debug, Clone, Default)]
pub struct KeyChange {
    pub name: Option<String>,
    pub disabled: Option<bool>,
    pub monthly_limit: Option<Option<Money>>,
    pub allowed_models: Option<Option<Vec<String>>>,
    pub expires_at: Option<Option<UnixMillis>>,
}

impl Engine {
    pub async fn create_key(
        &self,
        account: &AccountId,
        req: NewKey,
    ) -> Result<(ApiKeyRecord, ApiKeySecret), ApiError> {
        let name = self.valid_name(&req.name)?;
        self.valid_limit(req.monthly_limit)?;
        self.valid_models(req.allowed_models.as_deref())?;
        if let Some(exp) = req.expires_at {
            if exp <= UnixMillis::now() {
                return Err(ApiError::new(
                    ErrorCode::InvalidBody,
                    "`expires_at` must be in the future",
                ));
            }
        }
        let secret = ApiKeySecret::generate();
        let record = ApiKeyRecord {
            id: KeyId::generate(),
            account_id: account.clone(),
            name,
            prefix: secret.display_prefix(),
            hash: secret.hash(&self.pepper),
            disabled: false,
            monthly_limit: req.monthly_limit,
            allowed_models: req.allowed_models,
            expires_at: req.expires_at,
            rpm_limit: None,
            tpm_limit: None,
            concurrency_limit: None,
            created_at: UnixMillis::now(),
            last_used_at: None,
        };
        self.store
            .insert_key(&record)
            .await
            .map_err(|e| internal("storing a key", e))?;
        self.keys.invalidate_key(&record.hash);
        Ok((record, secret))
    }

    pub async fn list_keys(&self, account: &AccountId) -> Result<Vec<ApiKeyRecord>, ApiError> {
        self.store
            .list_keys(account)
            .await
            .map_err(|e| internal("listing keys", e))
    }

    pub async fn get_key(&self, account: &AccountId, id: &KeyId) -> Result<ApiKeyRecord, ApiError> {
        self.store
            .key_by_id(account, id)
            .await
            .map_err(|e| internal("reading a key", e))?
            .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such key"))
    }

    pub async fn update_key(
        &self,
        account: &AccountId,
        id: &KeyId,
        change: KeyChange,
    ) -> Result<ApiKeyRecord, ApiError> {
        let mut key = self.get_key(account, id).await?;
        if let Some(name) = change.name {
            key.name = self.valid_name(&name)?;
        }
        if let Some(disabled) = change.disabled {
            key.disabled = disabled;
        }
        if let Some(limit) = change.monthly_limit {
            self.valid_limit(limit)?;
            key.monthly_limit = limit;
        }
        if let Some(models) = change.allowed_models {
            self.valid_models(models.as_deref())?;
            key.allowed_models = models;
        }
        if let Some(exp) = change.expires_at {
            key.expires_at = exp;
        }
        self.save_key(&key).await?;
        Ok(key)
    }

    pub async fn delete_key(&self, account: &AccountId, id: &KeyId) -> Result<(), ApiError> {
        let key = self.get_key(account, id).await?;
        let deleted = self
            .store
            .delete_key(account, id, UnixMillis::now())
            .await
            .map_err(|e| internal("deleting a key", e))?;
        self.keys.invalidate_key(&key.hash);
        self.publish(domain::ChangeKind::Key(key.hash.clone()))
            .await;
        if deleted {
            Ok(())
        } else {
            Err(ApiError::new(ErrorCode::NotFound, "no such key"))
        }
    }

    /// Writes a changed key and makes every process forget its cached grant.
    pub(crate) async fn save_key(&self, key: &ApiKeyRecord) -> Result<(), ApiError> {
        self.store
            .update_key(key)
            .await
            .map_err(|e| internal("updating a key", e))?;
        self.keys.invalidate_key(&key.hash);
        self.publish(domain::ChangeKind::Key(key.hash.clone()))
            .await;
        Ok(())
    }

    fn valid_name(&self, name: &str) -> Result<String, ApiError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            return Err(ApiError::new(
                ErrorCode::InvalidBody,
                format!("`name` must be 1 to {MAX_NAME_CHARS} characters"),
            ));
        }
        Ok(name.to_owned())
    }

    fn valid_limit(&self, limit: Option<Money>) -> Result<(), ApiError> {
        match limit {
            Some(l) if l.is_negative() => Err(ApiError::new(
                ErrorCode::InvalidBody,
                "`monthly_limit_usd` must not be negative",
            )),
            _ => Ok(()),
        }
    }

    fn valid_models(&self, models: Option<&[String]>) -> Result<(), ApiError> {
        for m in models.unwrap_or_default() {
            if self.catalog.get(m).is_none() {
                return Err(ApiError::new(
                    ErrorCode::InvalidBody,
                    format!("`allowed_models` names `{m}`, which is not a model of this gateway"),
                ));
            }
        }
        Ok(())
    }
}
