//! Storage of conversation turns.

use super::RepoError;
use crate::domain::{NewTurn, Turn, TurnCompletion};
use async_trait::async_trait;

#[async_trait]
pub trait TurnRepository: Send + Sync {
    /// Store the user's message as a pending turn.
    async fn start(&self, turn: NewTurn) -> Result<(), RepoError>;
    /// Store the reply; the turn becomes complete.
    async fn complete(&self, id: &str, completion: &TurnCompletion) -> Result<(), RepoError>;
    /// Mark the turn failed with a stable error code; the message stays.
    async fn fail(&self, id: &str, error_code: &str) -> Result<(), RepoError>;
    /// How many complete turns the user has (in `session_id` when given).
    async fn count_complete(
        &self,
        user_id: i64,
        session_id: Option<&str>,
    ) -> Result<u64, RepoError>;
    /// Complete turns of a user, newest first; only those of `session_id`
    /// when given.
    async fn recent(
        &self,
        user_id: i64,
        session_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Turn>, RepoError>;
}
