//! Decorators that wrap any [`LlmBackend`](mongars_core::ports::LlmBackend),
//! innermost first:
//!
//! 1. [`TimeoutBackend`]: `generate` returns only once the first event has
//!    arrived (or fails with `Timeout` after the first-token limit), and the
//!    whole reply is cut at the total limit. Failures that a backend reports
//!    on its stream before any text therefore surface as `Err` from
//!    `generate`, where the layers above can retry or fail over.
//! 2. [`RetryBackend`]: transient failures before the first token are tried
//!    again with capped exponential backoff and jitter.
//! 3. [`BreakerBackend`]: the circuit breaker.
//! 4. [`MeteredBackend`]: metrics, last latency and last error for health.
//!
//! The router then tries the guarded backends of a role in order.

use async_trait::async_trait;
use mongars_core::domain::{ChatMessage, GenerationRequest, ModelRole};
use mongars_core::ports::{
    BackendHealth, GenerationStream, LlmBackend, LlmError, ProgressSink, ProvisionOutcome,
    Reservation,
};
use std::sync::Arc;

mod breaker;
mod metered;
mod retry;
mod timeout;

pub use breaker::{Breaker, BreakerBackend, BreakerPolicy, BreakerSnapshot, BreakerState};
pub use metered::{BackendStats, MeteredBackend, StatsSnapshot};
pub use retry::{Backoff, RetryBackend};

pub use timeout::{TimeoutBackend, Timeouts};

/// A layer that changes only `generate`; [`Decorated`] passes every other
/// call of [`LlmBackend`] through to [`Decorator::inner`].
#[async_trait]
pub trait Decorator: Send + Sync {
    fn inner(&self) -> &Arc<dyn LlmBackend>;
    async fn generate(&self, request: GenerationRequest) -> Result<GenerationStream, LlmError>;
}

/// A [`Decorator`] as a backend.
pub struct Decorated<D>(pub D);

#[async_trait]
impl<D: Decorator> LlmBackend for Decorated<D> {
    fn name(&self) -> &str {
        self.0.inner().name()
    }
    fn model(&self) -> &str {
        self.0.inner().model()
    }
    fn context_window(&self) -> usize {
        self.0.inner().context_window()
    }
    async fn count_tokens(
        &self,
        role: ModelRole,
        prompts: &[Vec<ChatMessage>],
    ) -> Result<Vec<usize>, LlmError> {
        self.0.inner().count_tokens(role, prompts).await
    }
    async fn generate(&self, request: GenerationRequest) -> Result<GenerationStream, LlmError> {
        self.0.generate(request).await
    }
    fn reserve(&self, role: ModelRole) -> Result<Reservation, u64> {
        self.0.inner().reserve(role)
    }
    async fn health(&self) -> BackendHealth {
        self.0.inner().health().await
    }
    async fn provision(
        &self,
        force: bool,
        progress: ProgressSink,
    ) -> Result<ProvisionOutcome, LlmError> {
        self.0.inner().provision(force, progress).await
    }
}
