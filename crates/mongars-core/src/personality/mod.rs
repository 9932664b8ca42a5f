//! Personality and style: a profile of how each user writes, learned from
//! their messages, persisted, shown at `GET /api/v1/profile` and turned into
//! a short style instruction in the system prompt. Nothing is ever appended
//! to the model's replies.

mod profile;

pub use profile::{Observation, ProfileView, StyleProfile, detect_language, observe};

use crate::error::CoreError;
use crate::ports::{Clock, ProfileRepository};
use std::sync::Arc;

/// Locks over users' profiles: a user's learning waits only for learning
/// of the users that share their lock, not for everyone's.
const LOCKS: usize = 64;

pub struct PersonalityService {
    repo: Arc<dyn ProfileRepository>,
    clock: Arc<dyn Clock>,
    /// Serialise read-modify-write of one profile within this process; a
    /// user's is `locks[user_id mod LOCKS]`.
    locks: Box<[tokio::sync::Mutex<()>]>,
}

impl PersonalityService {
    pub fn new(repo: Arc<dyn ProfileRepository>, clock: Arc<dyn Clock>) -> Self {
        Self {
            repo,
            clock,
            locks: (0..LOCKS).map(|_| tokio::sync::Mutex::new(())).collect(),
        }
    }

    fn lock_of(&self, user_id: i64) -> &tokio::sync::Mutex<()> {
        &self.locks[user_id.rem_euclid(LOCKS as i64) as usize]
    }

    /// The user's profile (empty before their first message).
    pub async fn profile(&self, user_id: i64) -> Result<StyleProfile, CoreError> {
        Ok(self
            .repo
            .load(user_id)
            .await?
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or_default())
    }

    /// Fold a message into the user's profile and store it.
    pub async fn learn(&self, user_id: i64, message: &str) -> Result<StyleProfile, CoreError> {
        let _guard = self.lock_of(user_id).lock().await;
        let mut profile = self.profile(user_id).await?;
        let now = self.clock.now();
        profile.learn(message, now);
        let json = serde_json::to_string(&profile)
            .map_err(|e| CoreError::Internal(format!("profile: {e}")))?;
        self.repo.save(user_id, &json, now).await?;
        Ok(profile)
    }
}

#[cfg(test)]
mod tests;
