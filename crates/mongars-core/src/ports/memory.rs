//! Storage of long-term memories and style profiles.
//!
//! Every change to a user's memories bumps that user's revision and returns
//! it, so that a vector index built at revision `r` can apply the change in
//! place when the new revision is `r + 1`, and reload otherwise (another
//! replica wrote in between).

use super::RepoError;
use crate::domain::{Memory, MemoryKind, MemoryUpdate, MemoryVector, NewMemory};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// What forgetting a user removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ForgetReport {
    pub turns: u64,
    pub memories: u64,
    pub profile: bool,
    /// Training samples, ratings and dataset items.
    pub training: u64,
}

#[async_trait]
pub trait MemoryRepository: Send + Sync {
    /// Insert; returns the new revision.
    async fn insert(&self, memory: NewMemory) -> Result<u64, RepoError>;
    /// Rewrite a live memory of the user; `None` when there is none with this id.
    async fn update(
        &self,
        user_id: i64,
        id: &str,
        update: MemoryUpdate,
    ) -> Result<Option<u64>, RepoError>;
    /// Mark `old_id` replaced by `new_id` (which must exist). Returns the
    /// revision, `None` when `old_id` is not a live memory of the user.
    async fn supersede(
        &self,
        user_id: i64,
        old_id: &str,
        new_id: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<u64>, RepoError>;
    /// Delete a memory of the user; `None` when there is none with this id.
    async fn delete(&self, user_id: i64, id: &str) -> Result<Option<u64>, RepoError>;
    /// A live memory of the user (not superseded, not expired at `now`).
    async fn get(
        &self,
        user_id: i64,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Memory>, RepoError>;
    /// Live memories of the user with these ids, in no particular order.
    async fn get_many(
        &self,
        user_id: i64,
        ids: &[String],
        now: DateTime<Utc>,
    ) -> Result<Vec<Memory>, RepoError>;
    /// Live memories of one kind, most recently updated first.
    async fn list(
        &self,
        user_id: i64,
        kind: MemoryKind,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<Memory>, RepoError>;
    /// Live facts about `slot`.
    async fn with_slot(
        &self,
        user_id: i64,
        slot: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Memory>, RepoError>;
    /// The user's current revision (0 before any memory).
    async fn revision(&self, user_id: i64) -> Result<u64, RepoError>;
    /// Every live vector of the user and the revision they belong to.
    async fn vectors(
        &self,
        user_id: i64,
        now: DateTime<Utc>,
    ) -> Result<(u64, Vec<MemoryVector>), RepoError>;
    /// Delete memories whose `expires_at` has passed; how many.
    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64, RepoError>;
    /// Remove every turn, memory, vector and profile of the user; the
    /// account stays.
    async fn forget_user(&self, user_id: i64) -> Result<ForgetReport, RepoError>;
}

/// A style profile as stored: its JSON and the version it was saved at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredProfile {
    pub json: String,
    pub version: u64,
}

/// A style profile to store over the version it was read at (`read`,
/// `None`: the user had none), as [`ProfileRepository::save`] stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileSave {
    pub user_id: i64,
    pub json: String,
    pub at: DateTime<Utc>,
    pub read: Option<u64>,
}

/// Style profiles, stored as JSON text by the personality service. Saves
/// are conditional on the version read, so that processes learning from
/// one user at once never overwrite each other's update.
#[async_trait]
pub trait ProfileRepository: Send + Sync {
    async fn load(&self, user_id: i64) -> Result<Option<StoredProfile>, RepoError>;
    /// Store the profile if it is still at the version it was read at
    /// (`save.read`; `None`: there was no profile). False when another save
    /// came in between: nothing is written, and the caller reads again.
    async fn save(&self, save: &ProfileSave) -> Result<bool, RepoError>;
}
