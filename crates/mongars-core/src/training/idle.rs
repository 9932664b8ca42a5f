//! When the node is idle: the time of the last generation request, kept by
//! a wrapper around the backend every chat goes through. Training runs
//! start only after a quiet spell and pause at the next step when a
//! request arrives.

use crate::domain::{ChatMessage, GenerationRequest, ModelRole};
use crate::ports::{
    BackendHealth, Clock, GenerationStream, LlmBackend, LlmError, ProgressSink, ProvisionOutcome,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Generation requests seen by this node.
pub struct Activity {
    clock: Arc<dyn Clock>,
    /// Unix milliseconds of the latest request (the start, before any).
    last_ms: AtomicI64,
    /// Requests since start: a change means a request came.
    count: AtomicU64,
}

impl Activity {
    /// Counted from now: a node that just started is not idle yet.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        let now = clock.now().timestamp_millis();
        Self {
            clock,
            last_ms: AtomicI64::new(now),
            count: AtomicU64::new(0),
        }
    }

    /// A request arrived.
    pub fn touch(&self) {
        self.last_ms
            .store(self.clock.now().timestamp_millis(), Ordering::SeqCst);
        self.count.fetch_add(1, Ordering::SeqCst);
    }

    /// How many requests so far (compare two readings to see whether one
    /// came in between).
    pub fn requests(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }

    pub fn last(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.last_ms.load(Ordering::SeqCst)).unwrap_or_default()
    }

    /// Whether no request came for `quiet` (by the injected clock).
    pub fn idle_for(&self, quiet: chrono::Duration) -> bool {
        self.clock.now() - self.last() >= quiet
    }
}

/// A backend whose requests are counted as activity.
pub struct Watched {
    inner: Arc<dyn LlmBackend>,
    activity: Arc<Activity>,
}

impl Watched {
    pub fn new(inner: Arc<dyn LlmBackend>, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

#[async_trait]
impl LlmBackend for Watched {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn model(&self) -> &str {
        self.inner.model()
    }

    fn context_window(&self) -> usize {
        self.inner.context_window()
    }

    async fn count_tokens(
        &self,
        role: ModelRole,
        prompts: &[Vec<ChatMessage>],
    ) -> Result<Vec<usize>, LlmError> {
        self.inner.count_tokens(role, prompts).await
    }

    async fn generate(&self, request: GenerationRequest) -> Result<GenerationStream, LlmError> {
        self.activity.touch();
        self.inner.generate(request).await
    }

    fn reserve(&self, role: ModelRole) -> Result<crate::ports::Reservation, u64> {
        self.inner.reserve(role)
    }

    async fn health(&self) -> BackendHealth {
        self.inner.health().await
    }

    async fn provision(
        &self,
        force: bool,
        progress: ProgressSink,
    ) -> Result<ProvisionOutcome, LlmError> {
        self.inner.provision(force, progress).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::ManualClock;

    #[test]
    fn idle_counts_from_the_start_and_from_each_request() {
        let clock = Arc::new(ManualClock::new());
        let a = Activity::new(clock.clone());
        let minute = chrono::Duration::minutes(1);
        assert!(!a.idle_for(minute), "a node that just started is not idle");
        clock.advance(std::time::Duration::from_secs(61));
        assert!(a.idle_for(minute));
        let seen = a.requests();
        a.touch();
        assert_ne!(a.requests(), seen);
        assert!(!a.idle_for(minute));
        clock.advance(std::time::Duration::from_secs(61));
        assert!(a.idle_for(minute));
    }
}
