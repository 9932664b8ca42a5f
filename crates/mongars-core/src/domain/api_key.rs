//! Per-user API keys: long-lived bearer credentials for tools (the official
//! `openai` clients, scripts) that cannot log in every hour.
//!
//! A key is `mg_` followed by 256 random bits in hex. Only its SHA-256 is
//! stored (a key is as random as a hash output, so a slow hash would add
//! nothing), with the first characters kept apart as a prefix users can
//! recognise it by. A key acts as its owner with the owner's current role,
//! and dies when the owner is disabled or changes password: it remembers the
//! account's token version at creation, like a token does.

use crate::error::CoreError;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// What every key starts with.
pub const KEY_PREFIX: &str = "mg_";
/// Random bytes in a key.
const KEY_BYTES: usize = 32;
/// Characters of the key (after `mg_`) shown in listings.
const SHOWN: usize = 8;
/// Longest name.
pub const KEY_NAME_MAX: usize = 64;
/// Longest lifetime a key may be given, in days (about ten years).
pub const KEY_MAX_DAYS: u32 = 3650;

/// A key as stored and listed: never the secret.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    pub id: String,
    pub user_id: i64,
    pub name: String,
    /// `mg_` and the first characters of the key.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The owner's token version when the key was made.
    pub version: i64,
}

impl ApiKey {
    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }
}

/// A key being made: what is stored, and the secret shown once.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub key: ApiKey,
    pub hash: String,
    pub secret: String,
}

impl NewApiKey {
    /// A fresh random key for `user_id` (at token version `version`).
    pub fn generate(
        user_id: i64,
        version: i64,
        name: KeyName,
        now: DateTime<Utc>,
        expires_in_days: Option<u32>,
    ) -> Result<Self, CoreError> {
        let mut raw = [0u8; KEY_BYTES];
        getrandom::fill(&mut raw).map_err(|e| CoreError::Internal(format!("rng: {e}")))?;
        let body: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let secret = format!("{KEY_PREFIX}{body}");
        let key = ApiKey {
            id: uuid::Uuid::new_v4().to_string(),
            user_id,
            name: name.0,
            prefix: format!("{KEY_PREFIX}{}", &body[..SHOWN]),
            created_at: now,
            last_used_at: None,
            expires_at: expires_in_days.map(|d| now + chrono::Duration::days(i64::from(d))),
            version,
        };
        Ok(Self {
            hash: key_hash(&secret),
            key,
            secret,
        })
    }
}

/// Whether a bearer credential is shaped like an API key (not a JWT).
pub fn looks_like_key(token: &str) -> bool {
    token.len() == KEY_PREFIX.len() + KEY_BYTES * 2
        && token.starts_with(KEY_PREFIX)
        && token[KEY_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// The stored form of a key: SHA-256, hex.
pub fn key_hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A key's name: 1-64 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyName(String);

impl KeyName {
    pub fn parse(raw: &str) -> Result<Self, CoreError> {
        let name = raw.trim();
        let n = name.chars().count();
        if n == 0 || n > KEY_NAME_MAX || name.chars().any(char::is_control) {
            return Err(CoreError::validation(
                "name",
                format!("name must be 1 to {KEY_NAME_MAX} characters, without control characters"),
            ));
        }
        Ok(Self(name.to_string()))
    }
}

/// A lifetime in days: 1 to [`KEY_MAX_DAYS`].
pub fn parse_key_days(days: Option<u32>) -> Result<Option<u32>, CoreError> {
    match days {
        Some(d) if d == 0 || d > KEY_MAX_DAYS => Err(CoreError::validation(
            "expires_in_days",
            format!("expires_in_days must be 1 to {KEY_MAX_DAYS}"),
        )),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_recognisable_and_stored_only_as_a_hash() {
        let name = KeyName::parse(" laptop ").unwrap();
        let now = Utc::now();
        let a = NewApiKey::generate(1, 0, name.clone(), now, Some(30)).unwrap();
        let b = NewApiKey::generate(1, 0, name, now, None).unwrap();
        assert_ne!(a.secret, b.secret);
        assert!(looks_like_key(&a.secret), "{}", a.secret);
        assert!(a.secret.starts_with(&a.key.prefix));
        assert_eq!(a.key.prefix.len(), 11);
        assert_eq!(a.hash, key_hash(&a.secret));
        assert!(!a.hash.contains(&a.secret[3..]));
        assert_eq!(a.key.name, "laptop");
        assert_eq!(a.key.expires_at, Some(now + chrono::Duration::days(30)));
        assert!(!a.key.expired(now) && a.key.expired(now + chrono::Duration::days(31)));
        assert!(b.key.expires_at.is_none() && !b.key.expired(now));
    }

    #[test]
    fn only_key_shaped_credentials_are_keys() {
        assert!(!looks_like_key("eyJhbGciOiJIUzI1NiJ9.e30.sig"));
        assert!(!looks_like_key("mg_short"));
        assert!(!looks_like_key(&format!("mg_{}", "G".repeat(64))));
        assert!(looks_like_key(&format!("mg_{}", "a".repeat(64))));
    }

    #[test]
    fn names_and_lifetimes_are_bounded() {
        assert!(KeyName::parse("").is_err());
        assert!(KeyName::parse("a\u{7}").is_err());
        assert!(KeyName::parse(&"n".repeat(65)).is_err());
        assert!(parse_key_days(Some(0)).is_err());
        assert!(parse_key_days(Some(3651)).is_err());
        assert_eq!(parse_key_days(Some(90)).unwrap(), Some(90));
    }
}
