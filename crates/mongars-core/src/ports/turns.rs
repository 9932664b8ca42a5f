//! Storage of conversation turns.

use super::{ProfileSave, RepoError};
use crate::domain::{NewTurn, NewestOrdinal, Turn, TurnCompletion};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[async_trait]
pub trait TurnRepository: Send + Sync {
    /// Store the user's message as a pending turn.
    async fn start(&self, turn: NewTurn) -> Result<(), RepoError>;
    /// Store the reply; the turn becomes complete.
    async fn complete(&self, id: &str, completion: &TurnCompletion) -> Result<(), RepoError>;
    /// [`complete`](Self::complete), and in the same transaction the
    /// user's style profile saved as [`ProfileRepository::save`] would:
    /// one write where there were two. Whether the profile was saved
    /// (false: another save came in between, and the turn is complete
    /// all the same); a turn that is not pending saves nothing.
    ///
    /// [`ProfileRepository::save`]: super::ProfileRepository::save
    async fn complete_with_profile(
        &self,
        id: &str,
        completion: &TurnCompletion,
        profile: &ProfileSave,
    ) -> Result<bool, RepoError>;
    /// Mark the turn failed with a stable error code; the message stays.
    async fn fail(&self, id: &str, error_code: &str) -> Result<(), RepoError>;
    /// The distinct owners of pending turns (turns without one are left out).
    async fn pending_owners(&self) -> Result<Vec<String>, RepoError>;
    /// Fail every pending turn of `owner` with `error_code`; how many.
    async fn fail_pending_of(&self, owner: &str, error_code: &str) -> Result<u64, RepoError>;
    /// Fail every turn still pending that was started before `before`; how many.
    async fn fail_pending_before(
        &self,
        before: DateTime<Utc>,
        error_code: &str,
    ) -> Result<u64, RepoError>;
    /// How many complete turns the user has ever had (in `session_id` when
    /// given), in working memory or not: a count that only grows, which
    /// keeps the history window's steps aligned once working memory is full.
    /// It reads the whole history: only for turns stored without ordinals.
    async fn count_history(&self, user_id: i64, session_id: Option<&str>)
    -> Result<u64, RepoError>;
    /// The ordinals of the user's newest complete turn, and of the newest
    /// complete turn in `session_id` when given (else `NoTurn`): one row
    /// each, whatever the history's length.
    async fn newest_ordinals(
        &self,
        user_id: i64,
        session_id: Option<&str>,
    ) -> Result<(NewestOrdinal, NewestOrdinal), RepoError>;
    /// Complete turns of a user in working memory at `now`, newest first;
    /// only those of `session_id` when given.
    async fn recent(
        &self,
        user_id: i64,
        session_id: Option<&str>,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<Turn>, RepoError>;
    /// Take all but the user's newest `keep` turns out of working memory
    /// (nothing is written when no more are held); how many left.
    async fn trim_working(&self, user_id: i64, keep: u32) -> Result<u64, RepoError>;
    /// Take every turn whose working-memory time has passed out of it; how many.
    async fn purge_working(&self, now: DateTime<Utc>) -> Result<u64, RepoError>;
    /// The trace of a turn of the user: `None` when there is no such turn,
    /// `Some(None)` when it has no trace.
    async fn trace(&self, user_id: i64, id: &str) -> Result<Option<Option<String>>, RepoError>;
}
