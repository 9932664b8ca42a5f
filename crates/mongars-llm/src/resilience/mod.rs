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

mod breaker;
mod metered;
mod retry;
mod timeout;

pub use breaker::{Breaker, BreakerBackend, BreakerPolicy, BreakerSnapshot, BreakerState};
pub use metered::{BackendStats, MeteredBackend, StatsSnapshot};
pub use retry::{Backoff, RetryBackend};
pub use timeout::{TimeoutBackend, Timeouts};
