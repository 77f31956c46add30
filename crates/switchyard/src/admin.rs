//! `switchyard admin …`: operator commands that act on the configured database directly,
//! through the same engine operations as `/api/admin`.

use crate::config::Config;
use crate::serve::build_engine;
use anyhow::{anyhow, bail, Result};
use domain::{KeyId, Money, Role};
use engine::accounts::SignUp;
use engine::admin::KeyLimits;
use engine::Engine;
use std::future::Future;
use std::sync::Arc;

/// Runs `op` on a fresh engine and shuts it down cleanly, whatever `op` returned.
async fn with_engine<F, Fut>(config: &Config, op: F) -> Result<String>
where
    F: FnOnce(Arc<Engine>) -> Fut,
    Fut: Future<Output = Result<String>>,
{
    let engine = build_engine(config).await?;
    let result = op(engine.clone()).await;
    engine.shutdown().await;
    result
}

fn api(e: domain::ApiError) -> anyhow::Error {
    anyhow!("{}", e.message)
}

/// Creates an account (an admin with `admin = true`).
pub async fn create_user(
    config: &Config,
    email: &str,
    password: &str,
    name: &str,
    admin: bool,
) -> Result<String> {
    let role = if admin { Role::Admin } else { Role::User };
    let signup = SignUp {
        email: email.to_owned(),
        password: password.to_owned(),
        name: name.to_owned(),
        role,
    };
    with_engine(config, |engine| async move {
        let account = engine.sign_up(signup).await.map_err(api)?;
        Ok(format!(
            "created {} account {} <{}>",
            role.as_str(),
            account.id,
            account.email
        ))
    })
    .await
}

/// Moves an account to a plan.
pub async fn set_plan(config: &Config, email: &str, plan: &str) -> Result<String> {
    with_engine(config, |engine| async move {
        let account = engine.account_by_email(email).await.map_err(api)?;
        let account = engine
            .set_account_plan(&account.id, plan)
            .await
            .map_err(api)?;
        Ok(format!(
            "{} is now on the {} plan",
            account.email, account.plan
        ))
    })
    .await
}

/// Grants (positive) or deducts (negative) credit, as a ledger entry.
pub async fn grant_credits(
    config: &Config,
    email: &str,
    amount: &str,
    reason: &str,
) -> Result<String> {
    let amount: Money = amount.parse().map_err(|e| anyhow!("--amount: {e}"))?;
    with_engine(config, |engine| async move {
        let account = engine.account_by_email(email).await.map_err(api)?;
        let entry = engine
            .admin_credit(&account.id, amount, reason)
            .await
            .map_err(api)?;
        Ok(format!(
            "{} {} USD for {}; balance now {} USD",
            entry.kind.as_str(),
            entry.amount,
            account.email,
            entry.balance_after
        ))
    })
    .await
}

/// Sets a key's limit overrides; 0 clears one (back to the plan's).
pub async fn set_key_limits(
    config: &Config,
    key: &str,
    rpm: Option<u32>,
    tpm: Option<u32>,
    concurrency: Option<u32>,
) -> Result<String> {
    let set = |v: Option<u32>| v.map(|n| (n > 0).then_some(n));
    let limits = KeyLimits {
        rpm: set(rpm),
        tpm: set(tpm),
        concurrency: set(concurrency),
    };
    let id = KeyId(key.to_owned());
    with_engine(config, |engine| async move {
        let key = engine.set_key_limits(&id, limits).await.map_err(api)?;
        let show = |v: Option<u32>| v.map_or("plan".to_owned(), |n| n.to_string());
        Ok(format!(
            "key {}: rpm {}, tpm {}, concurrency {}",
            key.id,
            show(key.rpm_limit),
            show(key.tpm_limit),
            show(key.concurrency_limit)
        ))
    })
    .await
}

/// Checks that every balance equals the sum of its ledger; fails if any does not.
pub async fn verify_ledger(config: &Config) -> Result<String> {
    with_engine(config, |engine| async move {
        let mismatches = engine.verify_ledger().await.map_err(api)?;
        if mismatches.is_empty() {
            return Ok("ledger ok: every balance equals the sum of its entries".to_owned());
        }
        let lines: Vec<String> = mismatches
            .iter()
            .map(|m| {
                format!(
                    "  account {}: balance {} but ledger sums to {}",
                    m.account, m.balance, m.ledger_sum
                )
            })
            .collect();
        bail!(
            "ledger mismatch in {} account(s):\n{}",
            mismatches.len(),
            lines.join("\n")
        )
    })
    .await
}
