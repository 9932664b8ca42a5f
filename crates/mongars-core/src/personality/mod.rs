//! Personality and style: a profile of how each user writes, learned from
//! their messages, persisted, shown at `GET /api/v1/profile` and turned into
//! a short style instruction in the system prompt. Nothing is ever appended
//! to the model's replies. A profile is saved only over the version it was
//! read at, so replicas learning from one user at once lose no message.

mod profile;

pub use profile::{Observation, ProfileView, StyleProfile, detect_language, observe};

use crate::error::CoreError;
use crate::ports::{Clock, ProfileRepository, ProfileSave};
use std::sync::Arc;

/// Locks over users' profiles: a user's learning waits only for learning
/// of the users that share their lock, not for everyone's.
const LOCKS: usize = 64;

/// Reads and saves of one message before giving up: each lost save means
/// another process saved that user's profile in between.
const SAVE_ATTEMPTS: usize = 8;

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
        Ok(self.read(user_id).await?.profile)
    }

    /// The user's profile with the version it was read at, to learn the
    /// same turn's message over later ([`learn_over`](Self::learn_over)).
    pub async fn read(&self, user_id: i64) -> Result<ReadProfile, CoreError> {
        Ok(match self.repo.load(user_id).await? {
            Some(s) => ReadProfile {
                profile: serde_json::from_str(&s.json).unwrap_or_default(),
                version: Some(s.version),
            },
            None => ReadProfile::default(),
        })
    }

    /// Fold a message into the user's profile and store it. When another
    /// process saved the profile in between, it is read again and the
    /// message folded into that: no update is lost.
    pub async fn learn(&self, user_id: i64, message: &str) -> Result<StyleProfile, CoreError> {
        self.learn_over(user_id, message, None).await
    }

    /// [`learn`](Self::learn), starting from the profile `known` as read
    /// earlier (for the turn's prompt) rather than reading it again. Every
    /// save bumps the version and a save is stored only over the version it
    /// was read at, so a profile saved since `known` was read (by this
    /// process or another) makes the first save find another version: the
    /// profile is then read again, as [`learn`](Self::learn) would after a
    /// lost save. A chat thus reads its user's profile once, not twice.
    pub async fn learn_over(
        &self,
        user_id: i64,
        message: &str,
        mut known: Option<ReadProfile>,
    ) -> Result<StyleProfile, CoreError> {
        let _guard = self.lock_of(user_id).lock().await;
        for _ in 0..SAVE_ATTEMPTS {
            let read = match known.take() {
                Some(read) => read,
                None => self.read(user_id).await?,
            };
            let (profile, save) = self.fold(user_id, message, read)?;
            if self.repo.save(&save).await? {
                return Ok(profile);
            }
            tracing::debug!(
                user_id,
                "profile saved elsewhere meanwhile; reading it again"
            );
        }
        Err(CoreError::Unavailable(
            "the style profile kept changing while this message was learnt".into(),
        ))
    }

    /// The profile `known` (as read for a turn's prompt) with `message`
    /// folded in, and the save that stores it over the version it was read
    /// at: a turn's reply stores it in the same transaction
    /// ([`TurnRepository::complete_with_profile`]); when that save finds
    /// another version, [`learn`](Self::learn) the message instead.
    ///
    /// [`TurnRepository::complete_with_profile`]: crate::ports::TurnRepository::complete_with_profile
    pub fn fold(
        &self,
        user_id: i64,
        message: &str,
        known: ReadProfile,
    ) -> Result<(StyleProfile, ProfileSave), CoreError> {
        let ReadProfile {
            mut profile,
            version,
        } = known;
        let at = self.clock.now();
        profile.learn(message, at);
        let json = serde_json::to_string(&profile)
            .map_err(|e| CoreError::Internal(format!("profile: {e}")))?;
        let save = ProfileSave {
            user_id,
            json,
            at,
            read: version,
        };
        Ok((profile, save))
    }
}

/// A profile as read, with the version a save over it must still find
/// (`None`: the user had none yet).
#[derive(Debug, Clone, Default)]
pub struct ReadProfile {
    pub profile: StyleProfile,
    version: Option<u64>,
}

#[cfg(test)]
mod tests;
