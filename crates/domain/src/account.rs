//! Accounts: who signs in, with which role, and the rules for emails and passwords.

use crate::{AccountId, UnixMillis};
use serde::{Deserialize, Serialize};

/// Passwords shorter than this are refused (NIST 800-63B asks for at least 8; we ask 10).
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Upper bound so hashing cost stays bounded.
pub const MAX_PASSWORD_CHARS: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountStatus {
    Active,
    Disabled,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::Disabled => "disabled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(AccountStatus::Active),
            "disabled" => Some(AccountStatus::Disabled),
            _ => None,
        }
    }
}

/// A validated email address, kept as typed; uniqueness compares `normalized()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// A pragmatic check: one `@`, a non-empty local part, a dotted domain of sane characters,
    /// no spaces, at most 254 characters (RFC 5321's limit).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if s.len() > 254 || s.chars().any(char::is_whitespace) {
            return None;
        }
        let (local, domain) = s.split_once('@')?;
        let labels_ok = domain.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
        let ok = !local.is_empty()
            && local.len() <= 64
            && !local.contains('@')
            && domain.contains('.')
            && labels_ok;
        ok.then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-insensitive form used for uniqueness and login.
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }
}

/// Why a password was refused.
pub fn password_problem(password: &str) -> Option<String> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_CHARS {
        Some(format!(
            "password is too short: use at least {MIN_PASSWORD_CHARS} characters"
        ))
    } else if n > MAX_PASSWORD_CHARS {
        Some(format!(
            "password is too long: use at most {MAX_PASSWORD_CHARS} characters"
        ))
    } else {
        None
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub status: AccountStatus,
    pub plan: String,
    pub created_at: UnixMillis,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_validated_and_normalized() {
        let e = Email::parse(" Alice@Example.COM ").unwrap();
        assert_eq!(e.as_str(), "Alice@Example.COM");
        assert_eq!(e.normalized(), "alice@example.com");
        for bad in [
            "",
            "alice",
            "@example.com",
            "alice@",
            "alice@localhost",
            "a b@x.io",
            "a@b@c.io",
            "a@-x.io",
            "a@x..io",
        ] {
            assert!(Email::parse(bad).is_none(), "{bad:?} should be invalid");
        }
    }

    #[test]
    fn short_passwords_are_refused_with_a_reason() {
        assert!(password_problem("short").unwrap().contains("at least 10"));
        assert!(password_problem("exactly10!").is_none());
    }
}
