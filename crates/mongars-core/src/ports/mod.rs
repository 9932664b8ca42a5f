//! Port traits: what the core needs from the outside world. Adapters live in
//! other crates (`mongars-store` for the database); tests may supply their own.

use crate::domain::{NewUser, StoredUser, User};
use crate::error::CoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Failures of a repository, reduced to what the core can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepoError {
    /// A unique constraint refused the write.
    #[error("duplicate key")]
    Duplicate,
    /// The store cannot be reached or timed out.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("store error: {0}")]
    Other(String),
}

/// What a storage failure means to a caller of the core.
impl From<RepoError> for CoreError {
    fn from(e: RepoError) -> Self {
        match e {
            RepoError::Duplicate => CoreError::Internal("unexpected duplicate key".into()),
            RepoError::Unavailable(m) => CoreError::Unavailable(m),
            RepoError::Other(m) => CoreError::Internal(m),
        }
    }
}

#[async_trait]
pub trait UserRepository: Send + Sync {
    /// Insert an account. `Duplicate` when the username (case-insensitive) exists.
    async fn insert(&self, user: NewUser) -> Result<User, RepoError>;
    /// Insert an admin only if no admin exists, atomically. `Ok(None)` when one does.
    async fn insert_first_admin(&self, user: NewUser) -> Result<Option<User>, RepoError>;
    /// Look up by the case-folded username.
    async fn find_by_key(&self, username_key: &str) -> Result<Option<StoredUser>, RepoError>;
    /// Look up by id.
    async fn find_by_id(&self, id: i64) -> Result<Option<User>, RepoError>;
    /// All accounts, sorted by username.
    async fn list(&self) -> Result<Vec<User>, RepoError>;
    async fn count_admins(&self) -> Result<u64, RepoError>;
    /// Replace the hash. With `revoke`, bump the token version so that every
    /// token issued before stops working.
    async fn update_password(&self, id: i64, hash: &str, revoke: bool) -> Result<(), RepoError>;
    /// Disable or enable; always revokes outstanding tokens.
    async fn set_disabled(&self, id: i64, disabled: bool) -> Result<(), RepoError>;
    async fn record_login(&self, id: i64, at: DateTime<Utc>) -> Result<(), RepoError>;
}

/// Storage of API keys (hashes only).
#[async_trait]
pub trait ApiKeyRepository: Send + Sync {
    async fn insert(&self, key: &crate::domain::NewApiKey) -> Result<(), RepoError>;
    /// The user's keys not revoked, newest first.
    async fn list(&self, user_id: i64) -> Result<Vec<crate::domain::ApiKey>, RepoError>;
    /// The key with this hash if it has not been revoked.
    async fn find_by_hash(&self, hash: &str) -> Result<Option<crate::domain::ApiKey>, RepoError>;
    /// A key of the user by id if it has not been revoked.
    async fn get(&self, user_id: i64, id: &str)
    -> Result<Option<crate::domain::ApiKey>, RepoError>;
    /// Revoke a key of the user; `false` when there is no such key.
    async fn revoke(&self, user_id: i64, id: &str, at: DateTime<Utc>) -> Result<bool, RepoError>;
    /// Record a use.
    async fn touch(&self, id: &str, at: DateTime<Utc>) -> Result<(), RepoError>;
}

/// A counter of password attempts in a fixed window, one per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureWindow {
    pub failures: u32,
    /// Unix milliseconds at which the window opened.
    pub started_at_ms: i64,
}

/// Storage of password-attempt counters, shared by every replica that
/// shares the store. Counting is one atomic statement, so concurrent
/// attempts on any replica each see a distinct count.
#[async_trait]
pub trait LoginThrottleStore: Send + Sync {
    /// The open window of `key` at `now_ms`, if any.
    async fn window(
        &self,
        key: &str,
        now_ms: i64,
        window_ms: i64,
    ) -> Result<Option<FailureWindow>, RepoError>;
    /// Count one attempt against each of `keys` (one or two) in a single
    /// atomic step, and return their windows with it counted, in the order
    /// of `keys`; a key whose window has closed starts a new one.
    async fn count(
        &self,
        keys: &[&str],
        now_ms: i64,
        window_ms: i64,
    ) -> Result<Vec<FailureWindow>, RepoError>;
    /// Take back one attempt counted in the window opened at `started_at_ms`
    /// (nothing if that window has since been replaced or cleared).
    async fn uncount(&self, key: &str, started_at_ms: i64) -> Result<(), RepoError>;
    /// In one step: forget the count of `cleared`, and take back one attempt
    /// from `taken_back` (key, window start) if given.
    async fn settle(&self, cleared: &str, taken_back: Option<(&str, i64)>)
    -> Result<(), RepoError>;
    /// Forget closed windows; returns how many were removed.
    async fn purge_expired(&self, now_ms: i64, window_ms: i64) -> Result<u64, RepoError>;
}

/// One dependency that `/ready` checks.
#[async_trait]
pub trait HealthCheck: Send + Sync {
    fn name(&self) -> &'static str;
    /// `Err` carries a short reason safe to show an operator.
    async fn check(&self) -> Result<(), String>;
}

mod clock;
mod embed;
mod fleet;
mod llm;
mod memory;
mod peer;
mod realtime;
mod research;
mod training;
mod turns;

pub use clock::{Clock, ManualClock, SystemClock};
pub use embed::{EmbedError, Embedder, Embeddings, MAX_EMBED_BATCH, dot, embed_one, normalize};
pub use fleet::{
    BackendReport, ChainEntry, ModelFleet, ModelsView, ProvisionResult, RoleProvision, RoleView,
};
pub use llm::{
    BackendHealth, GenerationStream, LlmBackend, LlmError, ProgressSink, ProvisionOutcome,
    PullProgress, Reservation, count_prompt, estimate_prompt_tokens, read_to_end,
};
pub use memory::{ForgetReport, MemoryRepository, ProfileRepository, ProfileSave, StoredProfile};
pub use peer::{PeerDirectory, PeerRepository};
pub use realtime::{Event, EventBus, RateLimiter, TicketClaims, TicketStore};
pub use research::{Reference, ResearchProvider, ResearchQuery};
pub use training::{
    AdapterRepository, CurationRepository, Feedback, NewDataset, RunRepository, SampleCounts,
};
pub use turns::TurnRepository;
