//! Failed-login throttling.
//!
//! Failures are counted in fixed windows per username and per client address.
//! Once a key reaches its limit, logins for it are refused with
//! `auth.throttled` (429 and `Retry-After`) until its window closes, without
//! checking the password, so a guessing attack cannot even spend our CPU.
//! A successful login clears the username's counter, never the address's.

use crate::error::CoreError;
use crate::ports::LoginThrottleStore;
use std::net::IpAddr;
use std::sync::Arc;

#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    pub window_secs: u64,
    pub max_failures_per_user: u32,
    pub max_failures_per_address: u32,
}

pub struct LoginThrottle {
    store: Arc<dyn LoginThrottleStore>,
    policy: ThrottlePolicy,
}

/// The counters one login attempt touches.
pub struct AttemptKeys {
    user: String,
    address: Option<String>,
}

impl AttemptKeys {
    pub fn new(username: &str, address: Option<IpAddr>) -> Self {
        Self {
            user: format!("user:{}", username.to_ascii_lowercase()),
            address: address.map(|a| format!("addr:{a}")),
        }
    }
}

impl LoginThrottle {
    pub fn new(store: Arc<dyn LoginThrottleStore>, policy: ThrottlePolicy) -> Self {
        Self { store, policy }
    }

    pub fn policy(&self) -> ThrottlePolicy {
        self.policy
    }

    fn window_ms(&self) -> i64 {
        self.policy.window_secs as i64 * 1000
    }

    /// `Err(Throttled)` when either counter is at its limit.
    pub async fn check(&self, keys: &AttemptKeys, now_ms: i64) -> Result<(), CoreError> {
        let mut wait_ms = 0i64;
        let mut limits = vec![(&keys.user, self.policy.max_failures_per_user)];
        if let Some(addr) = &keys.address {
            limits.push((addr, self.policy.max_failures_per_address));
        }
        for (key, max) in limits {
            if let Some(w) = self.store.window(key, now_ms, self.window_ms()).await?
                && w.failures >= max
            {
                wait_ms = wait_ms.max(w.started_at_ms + self.window_ms() - now_ms);
            }
        }
        if wait_ms > 0 {
            let retry_after_secs = (wait_ms as u64).div_ceil(1000).max(1);
            return Err(CoreError::Throttled { retry_after_secs });
        }
        Ok(())
    }

    pub async fn record_failure(&self, keys: &AttemptKeys, now_ms: i64) -> Result<(), CoreError> {
        self.store
            .record_failure(&keys.user, now_ms, self.window_ms())
            .await?;
        if let Some(addr) = &keys.address {
            self.store
                .record_failure(addr, now_ms, self.window_ms())
                .await?;
        }
        Ok(())
    }

    pub async fn record_success(&self, keys: &AttemptKeys) -> Result<(), CoreError> {
        Ok(self.store.clear(&keys.user).await?)
    }

    /// Drop closed windows; run now and then.
    pub async fn purge(&self, now_ms: i64) -> Result<u64, CoreError> {
        Ok(self.store.purge_expired(now_ms, self.window_ms()).await?)
    }
}
