//! The JSON API for people and the dashboard: accounts, keys, usage.

pub mod admin;
pub mod auth;
pub mod billing;
pub mod keys;
pub mod usage;

use domain::Account;
use serde_json::{json, Value};

/// An account as its owner sees it.
pub fn account_json(a: &Account) -> Value {
    json!({
        "id": a.id,
        "email": a.email,
        "name": a.name,
        "role": a.role,
        "status": a.status,
        "plan": a.plan,
        "created_at": super::rfc3339(a.created_at),
    })
}
