//! Retries of transient failures before the first token, with capped
//! exponential backoff and jitter. A server's `Retry-After` (`Busy`,
//! `Overloaded`) is honoured exactly when it ends within the request's
//! first-token budget; a longer one is not waited out and not retried early
//! either: the error goes up at once and the router tries the next backend.

use super::Decorator;
use async_trait::async_trait;
use mongars_core::domain::GenerationRequest;
use mongars_core::ports::{GenerationStream, LlmBackend, LlmError};
use mongars_metrics::IntCounter;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    /// Wait before retry number `n` (0-based): base x 2^n, capped, with the
    /// upper half jittered.
    pub fn delay(&self, n: u32) -> Duration {
        let base = self.base.as_millis() as u64;
        let exp = base
            .saturating_mul(1u64 << n.min(16))
            .min(self.max.as_millis() as u64);
        let jitter = getrandom::u64().unwrap_or(0) % (exp / 2 + 1);
        Duration::from_millis(exp / 2 + jitter)
    }
}

pub struct RetryBackend {
    inner: Arc<dyn LlmBackend>,
    retries: u32,
    backoff: Backoff,
    counter: IntCounter,
    /// Time all attempts of one request may take before the first token.
    budget: Duration,
}

impl RetryBackend {
    pub fn new(
        inner: Arc<dyn LlmBackend>,
        retries: u32,
        backoff: Backoff,
        counter: IntCounter,
        budget: Duration,
    ) -> Self {
        Self {
            inner,
            retries,
            backoff,
            counter,
            budget,
        }
    }
}

#[async_trait]
impl Decorator for RetryBackend {
    fn inner(&self) -> &Arc<dyn LlmBackend> {
        &self.inner
    }

    async fn generate(&self, request: GenerationRequest) -> Result<GenerationStream, LlmError> {
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            match self.inner.generate(request.clone()).await {
                Err(e) if e.is_transient() && attempt < self.retries => {
                    let wait = e
                        .retry_after()
                        .unwrap_or_else(|| self.backoff.delay(attempt));
                    if started.elapsed() + wait >= self.budget {
                        tracing::debug!(backend = self.inner.name(), error = %e, wait_ms = wait.as_millis() as u64, "wait longer than the request allows; not retried");
                        return Err(e);
                    }
                    tracing::debug!(backend = self.inner.name(), error = %e, wait_ms = wait.as_millis() as u64, "retrying");
                    self.counter.inc();
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let b = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_millis(1000),
        };
        for _ in 0..50 {
            let d0 = b.delay(0).as_millis();
            assert!((50..=100).contains(&d0), "{d0}");
            let d2 = b.delay(2).as_millis();
            assert!((200..=400).contains(&d2), "{d2}");
            let d9 = b.delay(9).as_millis();
            assert!((500..=1000).contains(&d9), "{d9}");
        }
    }
}
