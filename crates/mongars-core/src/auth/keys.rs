//! API keys of the auth service: making, listing, revoking and checking
//! them. See `domain::api_key` for what a key is.

use super::service::{AuthService, Principal};
use crate::domain::{ApiKey, KeyName, NewApiKey, Username, key_hash, parse_key_days};
use crate::error::CoreError;

/// Uses closer together than this are recorded once.
const TOUCH_EVERY_SECS: i64 = 60;

impl AuthService {
    /// A new key for `owner`, valid for `expires_in_days` (or until
    /// revoked); the secret is in the result and nowhere else.
    pub async fn create_key(
        &self,
        owner: &Principal,
        name: &str,
        expires_in_days: Option<u32>,
    ) -> Result<NewApiKey, CoreError> {
        let name = KeyName::parse(name)?;
        let days = parse_key_days(expires_in_days)?;
        let new = NewApiKey::generate(owner.id, owner.version, name, self.clock.now(), days)?;
        self.keys.insert(&new).await?;
        tracing::info!(user_id = owner.id, key = %new.key.prefix, "API key created");
        Ok(new)
    }

    /// [`Self::create_key`] for an account named by an operator (CLI).
    pub async fn create_key_for(
        &self,
        username: &Username,
        name: &str,
        expires_in_days: Option<u32>,
    ) -> Result<NewApiKey, CoreError> {
        let owner = self.principal_of(username).await?;
        self.create_key(&owner, name, expires_in_days).await
    }

    /// The keys of `user_id` still usable, newest first.
    pub async fn list_keys(&self, user_id: i64) -> Result<Vec<ApiKey>, CoreError> {
        let now = self.clock.now();
        let version = self
            .users
            .find_by_id(user_id)
            .await?
            .map(|u| u.token_version);
        let keys = self.keys.list(user_id).await?;
        Ok(keys
            .into_iter()
            .filter(|k| Some(k.version) == version && !k.expired(now))
            .collect())
    }

    /// Revoke a key of `user_id` at once (404 when there is no such key).
    /// Sockets opened through it close at their next check.
    pub async fn revoke_key(&self, user_id: i64, id: &str) -> Result<(), CoreError> {
        if !self.keys.revoke(user_id, id, self.clock.now()).await? {
            return Err(CoreError::NotFound("API key"));
        }
        tracing::info!(user_id, key_id = id, "API key revoked");
        Ok(())
    }

    /// The account an operator names, as a principal of its own.
    pub async fn principal_of(&self, username: &Username) -> Result<Principal, CoreError> {
        let user = self.find(username).await?;
        Ok(Principal {
            id: user.id,
            username: user.username,
            role: user.role,
            version: user.token_version,
            key_id: None,
        })
    }

    /// Check a key: known, not revoked or expired, made at the owner's
    /// current token version, owner enabled. Acts with the owner's current
    /// role.
    pub(super) async fn authenticate_key(&self, secret: &str) -> Result<Principal, CoreError> {
        let Some(key) = self.keys.find_by_hash(&key_hash(secret)).await? else {
            return Err(CoreError::InvalidToken);
        };
        let now = self.clock.now();
        let Some(user) = self.users.find_by_id(key.user_id).await? else {
            return Err(CoreError::InvalidToken);
        };
        if key.expired(now) || user.disabled || user.token_version != key.version {
            tracing::debug!(user_id = user.id, key = %key.prefix, "API key refused");
            return Err(CoreError::InvalidToken);
        }
        let stale = key
            .last_used_at
            .is_none_or(|t| (now - t).num_seconds() >= TOUCH_EVERY_SECS);
        if stale && let Err(e) = self.keys.touch(&key.id, now).await {
            tracing::warn!(error = %e, "could not record an API key's use");
        }
        Ok(Principal {
            id: user.id,
            username: user.username,
            role: user.role,
            version: user.token_version,
            key_id: Some(key.id),
        })
    }

    /// Whether the key `id` of `user_id` may still be used.
    pub(super) async fn key_active(&self, user_id: i64, id: &str) -> Result<bool, CoreError> {
        let key = self.keys.get(user_id, id).await?;
        Ok(key.is_some_and(|k| !k.expired(self.clock.now())))
    }
}
