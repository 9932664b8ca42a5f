//! Accounts: usernames, passwords, roles.

use crate::error::CoreError;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::fmt;

/// Longest username accepted at registration.
pub const USERNAME_MAX: usize = 150;
/// Shortest password accepted for a new account or a password change.
pub const PASSWORD_MIN: usize = 8;
/// Longest password accepted anywhere (hashing cost is bounded).
pub const PASSWORD_MAX: usize = 256;

/// A valid username: 1-150 of `[A-Za-z0-9_-]`. Comparison and uniqueness are
/// case-insensitive through [`Username::key`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, CoreError> {
        if raw.is_empty() || raw.chars().count() > USERNAME_MAX {
            return Err(CoreError::validation(
                "username",
                format!("username must be 1 to {USERNAME_MAX} characters"),
            ));
        }
        if !raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(CoreError::validation(
                "username",
                "username may contain only letters, digits, '_' and '-'",
            ));
        }
        Ok(Self(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-folded form used for lookups and uniqueness.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A password in memory. Debug never shows it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// A password offered at login: 1-256 characters, no other rule (the rules
    /// of the day it was set may have been different).
    pub fn for_login(raw: &str) -> Result<Self, CoreError> {
        Self::bounded(raw, 1, "password")
    }

    /// A password for a new account or a change: 8-256 characters.
    pub fn new_secret(raw: &str, field: &'static str) -> Result<Self, CoreError> {
        Self::bounded(raw, PASSWORD_MIN, field)
    }

    fn bounded(raw: &str, min: usize, field: &'static str) -> Result<Self, CoreError> {
        let n = raw.chars().count();
        if n < min || n > PASSWORD_MAX {
            return Err(CoreError::validation(
                field,
                format!("password must be {min} to {PASSWORD_MAX} characters"),
            ));
        }
        Ok(Self(raw.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([REDACTED])")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    User,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
        }
    }

    /// Parse the stored form; anything unknown is the least privileged role.
    pub fn from_stored(s: &str) -> Self {
        if s == "admin" {
            Role::Admin
        } else {
            Role::User
        }
    }
}

/// An account as the rest of the system sees it (no password hash).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub disabled: bool,
    /// Bumped on password change or disable; tokens carry the version they
    /// were issued under and are refused once it moves.
    pub token_version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

impl User {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// An account with its password hash, as repositories return it.
#[derive(Debug, Clone)]
pub struct StoredUser {
    pub user: User,
    pub password_hash: String,
}

/// What is needed to create an account.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: Username,
    pub password_hash: String,
    pub role: Role,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        for ok in ["a", "Alice_01", "x-y", &"z".repeat(150)] {
            assert!(Username::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "é", "a.b", "a@b", &"z".repeat(151), "Ω"] {
            assert!(Username::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Username::parse("AliCe").unwrap().key(), "alice");
    }

    #[test]
    fn passwords() {
        assert!(Password::new_secret("1234567", "password").is_err());
        assert!(Password::new_secret("12345678", "password").is_ok());
        assert!(Password::for_login("x").is_ok());
        assert!(Password::for_login("").is_err());
        assert!(Password::for_login(&"p".repeat(257)).is_err());
        let p = Password::for_login("hunter2").unwrap();
        assert!(!format!("{p:?}").contains("hunter2"));
    }
}
