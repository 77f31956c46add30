//! Accounts and sessions: sign-up, login (argon2id), logout, and resolving a session or
//! access token on `/api`. Not on the `/v1` hot path, so these may use the database.

use crate::{internal, Engine};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use domain::account::password_problem;
use domain::{Account, AccountId, AccountStatus, ApiError, Email, ErrorCode, Role, UnixMillis};
use rand::RngCore;
use store::{NewAccount, StoreError};

/// The plan new accounts start on.
pub const DEFAULT_PLAN: &str = "free";
/// Session tokens carry this prefix so they are never mistaken for API keys.
const SESSION_PREFIX: &str = "sy_sess_";

/// What sign-up and admin creation take.
#[derive(Debug, Clone)]
pub struct SignUp {
    pub email: String,
    pub password: String,
    pub name: String,
    pub role: Role,
}

/// A successful login: the token for `Authorization: Bearer` and the cookie session.
#[derive(Debug, Clone)]
pub struct LoginTokens {
    pub access_token: String,
    pub access_expires_in: u64,
    pub session_token: String,
    pub session_expires_in: u64,
    pub account: Account,
}

impl Engine {
    /// Creates an account after validating email and password.
    pub async fn sign_up(&self, req: SignUp) -> Result<Account, ApiError> {
        let email = Email::parse(&req.email).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidEmail,
                format!("`{}` is not a valid email address", req.email.trim()),
            )
        })?;
        if let Some(problem) = password_problem(&req.password) {
            return Err(ApiError::new(ErrorCode::WeakPassword, problem));
        }
        let name = req.name.trim();
        if name.chars().count() > 200 {
            return Err(ApiError::new(
                ErrorCode::InvalidBody,
                "name is too long (200 characters at most)",
            ));
        }
        let password_hash = hash_password(req.password).await?;
        let account = Account {
            id: AccountId::generate(),
            email: email.as_str().to_owned(),
            name: name.to_owned(),
            role: req.role,
            status: AccountStatus::Active,
            plan: DEFAULT_PLAN.to_owned(),
            created_at: UnixMillis::now(),
        };
        let plan = self.plan_of(DEFAULT_PLAN)?;
        let initial_credit =
            (plan.included_credits > domain::Money::ZERO).then(|| domain::NewLedgerEntry {
                account_id: account.id.clone(),
                kind: domain::LedgerKind::Grant,
                amount: plan.included_credits,
                reason: format!("{} plan included credits", plan.name),
                reference: None,
            });
        let new = NewAccount {
            account: account.clone(),
            email_lower: email.normalized(),
            password_hash,
            initial_credit,
        };
        match self.store.create_account(&new).await {
            Ok(()) => Ok(account),
            Err(StoreError::Conflict(_)) => Err(ApiError::new(
                ErrorCode::EmailTaken,
                "an account with this email already exists",
            )),
            Err(e) => Err(internal("creating an account", e)),
        }
    }

    /// Checks credentials and opens two sessions: a short-lived access token and a cookie.
    /// An unknown email costs the same hashing work as a wrong password, so response time
    /// does not reveal which emails are registered.
    pub async fn login(&self, email: &str, password: &str) -> Result<LoginTokens, ApiError> {
        let bad = || ApiError::new(ErrorCode::InvalidCredentials, "wrong email or password");
        let normalized = Email::parse(email)
            .map(|e| e.normalized())
            .unwrap_or_default();
        let found = if normalized.is_empty() {
            None
        } else {
            self.store
                .account_by_email(&normalized)
                .await
                .map_err(|e| internal("looking up an account", e))?
        };
        let stored_hash = found.as_ref().map(|(_, h)| h.clone());
        let ok = verify_password(password.to_owned(), stored_hash).await;
        let Some((account, _)) = found.filter(|_| ok) else {
            return Err(bad());
        };
        if account.status != AccountStatus::Active {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "this account is disabled",
            ));
        }
        let access_token = self
            .open_session(&account.id, self.settings.access_token_ttl)
            .await?;
        let session_token = self
            .open_session(&account.id, self.settings.session_ttl)
            .await?;
        Ok(LoginTokens {
            access_token,
            access_expires_in: self.settings.access_token_ttl.as_secs(),
            session_token,
            session_expires_in: self.settings.session_ttl.as_secs(),
            account,
        })
    }

    async fn open_session(
        &self,
        account: &AccountId,
        ttl: std::time::Duration,
    ) -> Result<String, ApiError> {
        let mut raw = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let token = format!("{SESSION_PREFIX}{}", hex::encode(raw));
        let now = UnixMillis::now();
        let ttl_secs = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        self.store
            .create_session(
                &self.token_hash(&token),
                account,
                now,
                now.plus_secs(ttl_secs),
            )
            .await
            .map_err(|e| internal("opening a session", e))?;
        Ok(token)
    }

    /// The account behind a session or access token, if it is valid and active.
    pub async fn session_account(&self, token: &str) -> Result<Account, ApiError> {
        let unauthenticated = || {
            ApiError::new(
                ErrorCode::Unauthenticated,
                "sign in first: the session is missing, expired or invalid",
            )
        };
        if !token.starts_with(SESSION_PREFIX) {
            return Err(unauthenticated());
        }
        let account = self
            .store
            .session_account(&self.token_hash(token), UnixMillis::now())
            .await
            .map_err(|e| internal("reading a session", e))?
            .ok_or_else(unauthenticated)?;
        if account.status != AccountStatus::Active {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "this account is disabled",
            ));
        }
        Ok(account)
    }

    /// Ends the given sessions (the access token and/or the cookie).
    pub async fn logout(&self, tokens: &[&str]) -> Result<(), ApiError> {
        for token in tokens {
            self.store
                .delete_session(&self.token_hash(token))
                .await
                .map_err(|e| internal("ending a session", e))?;
        }
        Ok(())
    }

    pub async fn account_count(&self) -> Result<u64, ApiError> {
        self.store
            .count_accounts()
            .await
            .map_err(|e| internal("counting accounts", e))
    }
}

impl Engine {
    fn token_hash(&self, token: &str) -> String {
        self.pepper.hash(token)
    }
}

/// Hashes with argon2id (RFC 9106 defaults of the `argon2` crate) off the async threads.
async fn hash_password(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
    })
    .await
    .map_err(|e| internal("hashing a password", e))?
    .map_err(|e| internal("hashing a password", e))
}

/// A real argon2id hash of a random secret, verified against when the email is unknown.
static DUMMY_HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();

async fn verify_password(password: String, stored: Option<String>) -> bool {
    let known = stored.is_some();
    let ok = tokio::task::spawn_blocking(move || {
        let hash = stored.unwrap_or_else(|| {
            DUMMY_HASH
                .get_or_init(|| {
                    let salt = SaltString::generate(&mut rand::rngs::OsRng);
                    let secret = salt.as_str().to_owned();
                    Argon2::default()
                        .hash_password(secret.as_bytes(), &salt)
                        .map(|h| h.to_string())
                        .unwrap_or_default()
                })
                .clone()
        });
        PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false);
    ok && known
}
