//! Password-attempt throttling, for logins and password changes.
//!
//! Attempts are counted in fixed windows per username and per client address.
//! An attempt is counted before its password is checked, in one atomic step
//! per key (on whichever database, shared by every replica), and refused at
//! once when the count goes past the limit: however many guesses arrive
//! together, at most the limit of them ever reach the password check. A
//! refused attempt is taken back, so it never counts. A right password then
//! clears the username's counter and takes the attempt back from the
//! address's (a successful login is not a failure); a wrong one stays
//! counted. Past a limit the answer is `auth.throttled` (429 with
//! `Retry-After`) until the window closes, without checking the password,
//! so a guessing attack cannot even spend our CPU.

use crate::error::CoreError;
use crate::ports::{FailureWindow, LoginThrottleStore};
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

/// The counters one attempt touches.
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

/// An attempt let through to the password check; say how it went with
/// [`LoginThrottle::succeeded`] or [`LoginThrottle::failed`] (an attempt
/// whose check could not be made is taken back by
/// [`LoginThrottle::unless_failed`]).
#[must_use = "settle the attempt once the password is checked"]
pub struct Attempt {
    keys: AttemptKeys,
    user: FailureWindow,
    address: Option<FailureWindow>,
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

    /// Count an attempt against both keys (one atomic step), or refuse it
    /// (`Throttled`, and taken back) when either is past its limit.
    pub async fn begin(&self, keys: AttemptKeys, now_ms: i64) -> Result<Attempt, CoreError> {
        let mut names = vec![keys.user.as_str()];
        names.extend(keys.address.as_deref());
        let windows = self.store.count(&names, now_ms, self.window_ms()).await?;
        let limits = [
            self.policy.max_failures_per_user,
            self.policy.max_failures_per_address,
        ];
        let over = windows
            .iter()
            .zip(limits)
            .filter(|(w, max)| w.failures > *max)
            .map(|(w, _)| *w)
            .max_by_key(|w| w.started_at_ms);
        if let Some(win) = over {
            for (key, w) in names.iter().zip(&windows) {
                self.store.uncount(key, w.started_at_ms).await?;
            }
            return Err(self.throttled(win, now_ms));
        }
        let (user, address) = (windows[0], windows.get(1).copied());
        Ok(Attempt {
            keys,
            user,
            address,
        })
    }

    /// The password was right: the username's count is forgotten and the
    /// attempt taken back from the address's.
    pub async fn succeeded(&self, attempt: Attempt) -> Result<(), CoreError> {
        let back = attempt.keys.address.as_deref().zip(attempt.address);
        let back = back.map(|(key, w)| (key, w.started_at_ms));
        Ok(self.store.settle(&attempt.keys.user, back).await?)
    }

    /// The password was wrong: the attempt stays counted.
    pub fn failed(&self, _attempt: Attempt) {}

    /// Go on with `checked`, the outcome of looking the password up and
    /// checking it; when that failed (the store or the hasher), the attempt
    /// is taken back and the error returned.
    pub async fn unless_failed<T>(
        &self,
        attempt: Attempt,
        checked: Result<T, CoreError>,
    ) -> Result<(Attempt, T), CoreError> {
        match checked {
            Ok(v) => Ok((attempt, v)),
            Err(e) => {
                self.abandoned(attempt).await;
                Err(e)
            }
        }
    }

    /// The password could not be checked: the attempt is taken back. Errors
    /// here are only logged.
    async fn abandoned(&self, attempt: Attempt) {
        let mut undo = vec![(&attempt.keys.user, attempt.user)];
        if let (Some(key), Some(win)) = (&attempt.keys.address, attempt.address) {
            undo.push((key, win));
        }
        for (key, win) in undo {
            if let Err(e) = self.store.uncount(key, win.started_at_ms).await {
                tracing::warn!(error = %e, "could not take back a password attempt");
            }
        }
    }

    fn throttled(&self, win: FailureWindow, now_ms: i64) -> CoreError {
        let wait_ms = (win.started_at_ms + self.window_ms() - now_ms).max(0);
        CoreError::Throttled {
            retry_after_secs: (wait_ms as u64).div_ceil(1000).max(1),
        }
    }

    /// Drop closed windows; run now and then.
    pub async fn purge(&self, now_ms: i64) -> Result<u64, CoreError> {
        Ok(self.store.purge_expired(now_ms, self.window_ms()).await?)
    }
}
