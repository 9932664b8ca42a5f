//! Storage of what training learns from and what it makes.

use super::RepoError;
use crate::domain::training::{
    Adapter, Dataset, DatasetItem, Rating, Sample, SampleStatus, TrainingRun,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// A user's rating of one of their turns.
#[derive(Debug, Clone, PartialEq)]
pub struct Feedback {
    pub turn_id: String,
    pub user_id: i64,
    pub rating: Rating,
    pub correction: Option<String>,
    pub at: DateTime<Utc>,
}

/// How many samples are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SampleCounts {
    pub ready: u64,
    pub held: u64,
    pub dropped: u64,
}

/// A dataset about to be stored; its version is given by the store.
#[derive(Debug, Clone)]
pub struct NewDataset {
    pub id: String,
    pub content_hash: String,
    pub seed: i64,
    pub held_out_share: f64,
    pub items: Vec<DatasetItem>,
    pub created_at: DateTime<Utc>,
    pub created_by: Option<i64>,
}

#[async_trait]
pub trait CurationRepository: Send + Sync {
    /// Whether the user agreed that their exchanges may train the model.
    async fn consent(&self, user_id: i64) -> Result<bool, RepoError>;
    /// Record the user's choice. Withdrawing deletes their samples (those
    /// already copied into dataset versions stay there until the user is
    /// forgotten); returns how many were deleted.
    async fn set_consent(&self, user_id: i64, consent: bool) -> Result<u64, RepoError>;
    /// A turn of the user: its message and, when complete, its reply.
    async fn turn(
        &self,
        user_id: i64,
        turn_id: &str,
    ) -> Result<Option<(String, Option<String>)>, RepoError>;
    /// Store a rating, replacing the turn's earlier one.
    async fn save_feedback(&self, feedback: &Feedback) -> Result<(), RepoError>;
    /// Store a sample, replacing the one made from the same turn.
    async fn save_sample(&self, sample: &Sample) -> Result<(), RepoError>;
    /// Delete the sample made from a turn of the user; whether there was one.
    async fn remove_turn_sample(&self, user_id: i64, turn_id: &str) -> Result<bool, RepoError>;
    /// Samples in `status`, oldest first.
    async fn samples(&self, status: SampleStatus, limit: u32) -> Result<Vec<Sample>, RepoError>;
    async fn sample_counts(&self) -> Result<SampleCounts, RepoError>;
    /// Move a held sample to `status` (ready or dropped). `None` when there
    /// is no held sample with this id.
    async fn review(
        &self,
        id: &str,
        status: SampleStatus,
        by: i64,
        at: DateTime<Utc>,
    ) -> Result<Option<Sample>, RepoError>;
    /// Ready samples of users who consent now, by id.
    async fn dataset_candidates(&self) -> Result<Vec<Sample>, RepoError>;
    /// Store a dataset version and its items in one step.
    async fn insert_dataset(&self, dataset: &NewDataset) -> Result<Dataset, RepoError>;
    /// Every dataset version, newest first.
    async fn datasets(&self) -> Result<Vec<Dataset>, RepoError>;
    async fn dataset(&self, id: &str) -> Result<Option<Dataset>, RepoError>;
    /// The items of a dataset, by sample id.
    async fn dataset_items(&self, id: &str) -> Result<Vec<DatasetItem>, RepoError>;
}

/// The adapter registry.
#[async_trait]
pub trait AdapterRepository: Send + Sync {
    /// Register an adapter; its `version` is given by the store (one more
    /// than the highest) and returned.
    async fn insert(&self, adapter: &Adapter) -> Result<Adapter, RepoError>;
    /// Every adapter, newest first.
    async fn list(&self) -> Result<Vec<Adapter>, RepoError>;
    async fn get(&self, id: &str) -> Result<Option<Adapter>, RepoError>;
    /// Approve a candidate; `false` when it is not one.
    async fn approve(&self, id: &str, by: i64, at: DateTime<Utc>) -> Result<bool, RepoError>;
    /// Reject an adapter that is not active; `false` when it is active or
    /// unknown.
    async fn reject(&self, id: &str) -> Result<bool, RepoError>;
    /// Make an approved adapter the active one, in one step: the one
    /// active before is retired and the activation recorded. `false` when
    /// the adapter is not approved.
    async fn activate(&self, id: &str, by: i64, at: DateTime<Utc>) -> Result<bool, RepoError>;
    /// Undo the latest activation: its adapter is retired and the one
    /// active before it is active again. `None` when nothing was activated;
    /// `Some(None)` when the bare model is active again.
    async fn rollback(&self, at: DateTime<Utc>) -> Result<Option<Option<Adapter>>, RepoError>;
    /// The adapter new replies should be generated with.
    async fn active(&self) -> Result<Option<Adapter>, RepoError>;
}

/// Training runs: queued by operators, taken by the node's idle scheduler
/// (or the CLI), their progress written as they go.
#[async_trait]
pub trait RunRepository: Send + Sync {
    async fn insert(&self, run: &TrainingRun) -> Result<(), RepoError>;
    async fn get(&self, id: &str) -> Result<Option<TrainingRun>, RepoError>;
    /// The newest runs first.
    async fn list(&self, limit: u32) -> Result<Vec<TrainingRun>, RepoError>;
    /// The oldest run with work left (queued, paused, or running when its
    /// process stopped), if any.
    async fn next_open(&self) -> Result<Option<TrainingRun>, RepoError>;
    /// Take the run for this process: it must be queued or paused, or
    /// running without a word since `stale_before` (its process stopped).
    /// `false` when another process has it.
    async fn claim(
        &self,
        id: &str,
        at: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> Result<bool, RepoError>;
    /// Write the run's state and figures as they are now.
    async fn save(&self, run: &TrainingRun) -> Result<(), RepoError>;
}
