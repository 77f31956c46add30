//! `switchyard admin …`: operator commands that act on the configured database directly.

use crate::config::Config;
use crate::serve::build_engine;
use anyhow::{anyhow, Result};
use domain::Role;
use engine::accounts::SignUp;

/// Creates an account (an admin with `admin = true`).
pub async fn create_user(
    config: &Config,
    email: &str,
    password: &str,
    name: &str,
    admin: bool,
) -> Result<String> {
    let engine = build_engine(config).await?;
    let role = if admin { Role::Admin } else { Role::User };
    let signup = SignUp {
        email: email.to_owned(),
        password: password.to_owned(),
        name: name.to_owned(),
        role,
    };
    let result = engine.sign_up(signup).await;
    engine.shutdown().await;
    let account = result.map_err(|e| anyhow!("{}", e.message))?;
    Ok(format!(
        "created {} account {} <{}>",
        role.as_str(),
        account.id,
        account.email
    ))
}
